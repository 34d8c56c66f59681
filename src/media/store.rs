//! The `media_requests` and `request_followers` queries. Plain functions over a `&Connection`
//! (or the write transaction), every statement through the prepared-statement cache.
//!
//! The list statements are built from a small set of shapes ([`ListSpec`]) and name the index
//! they walk (`INDEXED BY`): each shape has an index whose order is the sort order, so a page
//! is a range walk that stops after `limit` rows, whatever page it is, and the plan cannot drift
//! with the statistics. `tests/api/media_plans.rs` checks every shape with `EXPLAIN QUERY PLAN`.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::AppResult;
use crate::integrations::overseerr::model::{MediaType, RequestState};
use crate::time::Rfc3339Ms;

/// The statuses that count as active for the dedupe rule (everything but declined and failed).
pub const ACTIVE: &str = "status NOT IN ('declined', 'failed')";

/// The statuses reconciliation looks at.
pub const OPEN_STATUSES: [&str; 4] = ["pending", "approved", "processing", "partially_available"];

/// Where a request came from (the `source` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestSource {
    /// Asked for in the dashboard or through the API.
    Manual,
    /// Made by the Plex watchlist sync (`crate::watchlist`).
    Watchlist,
}

impl RequestSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Watchlist => "watchlist",
        }
    }

    /// The stored name back to the enum (the column is CHECKed to be one of the two).
    pub fn parse(text: &str) -> Self {
        if text == "watchlist" {
            Self::Watchlist
        } else {
            Self::Manual
        }
    }
}

/// One `media_requests` row, as the API shows it (`MediaRequest` of SPEC section 3).
#[derive(Debug, Clone)]
pub struct RequestRow {
    pub id: String,
    pub user_id: String,
    pub title: String,
    pub media_type: MediaType,
    pub tmdb_id: i64,
    /// The stored JSON (`[1,2]` or `"all"`), sent as it is.
    pub seasons: Option<Box<RawValue>>,
    pub is_4k: bool,
    pub status: String,
    pub overseerr_id: Option<i64>,
    pub poster_path: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub completed_at_ms: Option<i64>,
    /// Whether the caller follows it.
    pub following: bool,
    /// Where it came from.
    pub source: RequestSource,
    /// The owner's username (admin lists only).
    pub username: Option<String>,
}

impl RequestRow {
    /// The status as the enum, if it is one we know (the column has a CHECK).
    pub fn state(&self) -> Option<RequestState> {
        parse_state(&self.status)
    }
}

/// A stored status name back to the enum.
pub fn parse_state(text: &str) -> Option<RequestState> {
    Some(match text {
        "pending" => RequestState::Pending,
        "approved" => RequestState::Approved,
        "processing" => RequestState::Processing,
        "partially_available" => RequestState::PartiallyAvailable,
        "available" => RequestState::Available,
        "declined" => RequestState::Declined,
        "failed" => RequestState::Failed,
        _ => return None,
    })
}

/// Who asked (admin lists).
#[derive(Debug, Serialize)]
struct RequestedBy<'a> {
    id: &'a str,
    username: &'a str,
}

/// The JSON shape.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestJson<'a> {
    id: &'a str,
    user_id: &'a str,
    title: &'a str,
    media_type: &'static str,
    tmdb_id: i64,
    seasons: Option<&'a RawValue>,
    is4k: bool,
    status: &'a str,
    overseerr_id: Option<i64>,
    poster_path: Option<&'a str>,
    created_at: Rfc3339Ms,
    updated_at: Rfc3339Ms,
    completed_at: Option<Rfc3339Ms>,
    following: bool,
    source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    requested_by: Option<RequestedBy<'a>>,
}

impl Serialize for RequestRow {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RequestJson {
            id: &self.id,
            user_id: &self.user_id,
            title: &self.title,
            media_type: self.media_type.as_str(),
            tmdb_id: self.tmdb_id,
            seasons: self.seasons.as_deref(),
            is4k: self.is_4k,
            status: &self.status,
            overseerr_id: self.overseerr_id,
            poster_path: self.poster_path.as_deref(),
            created_at: Rfc3339Ms(self.created_at_ms),
            updated_at: Rfc3339Ms(self.updated_at_ms),
            completed_at: self.completed_at_ms.map(Rfc3339Ms),
            following: self.following,
            source: self.source.as_str(),
            requested_by: self.username.as_deref().map(|username| RequestedBy {
                id: &self.user_id,
                username,
            }),
        }
        .serialize(serializer)
    }
}

/// The columns every row query selects, in [`from_row`] order; `?1` is the caller (for
/// `following`).
const COLUMNS: &str = "r.id, r.user_id, r.title, r.media_type, r.tmdb_id, r.seasons, r.is_4k,
       r.status, r.overseerr_id, r.poster_path, r.created_at, r.updated_at, r.completed_at,
       EXISTS (SELECT 1 FROM request_followers f WHERE f.request_id = r.id AND f.user_id = ?1),
       r.source";

/// [`COLUMNS`] on the caller's own list, where `following` is always false (`?1` stays bound).
const OWN_COLUMNS: &str = "r.id, r.user_id, r.title, r.media_type, r.tmdb_id, r.seasons, r.is_4k,
       r.status, r.overseerr_id, r.poster_path, r.created_at, r.updated_at, r.completed_at,
       0 + (?1 IS NULL), r.source";

fn from_row(row: &Row<'_>) -> rusqlite::Result<RequestRow> {
    let media_type: String = row.get(3)?;
    let seasons: Option<String> = row.get(5)?;
    Ok(RequestRow {
        id: row.get(0)?,
        user_id: row.get(1)?,
        title: row.get(2)?,
        // The column is CHECKed to be one of the two.
        media_type: MediaType::parse(&media_type).unwrap_or(MediaType::Movie),
        tmdb_id: row.get(4)?,
        // The column is CHECKed to be valid JSON.
        seasons: seasons.and_then(|s| RawValue::from_string(s).ok()),
        is_4k: row.get(6)?,
        status: row.get(7)?,
        overseerr_id: row.get(8)?,
        poster_path: row.get(9)?,
        created_at_ms: row.get(10)?,
        updated_at_ms: row.get(11)?,
        completed_at_ms: row.get(12)?,
        following: row.get(13)?,
        source: RequestSource::parse(&row.get::<_, String>(14)?),
        username: None,
    })
}

/// A new row.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub id: String,
    pub user_id: String,
    pub title: String,
    pub media_type: MediaType,
    pub tmdb_id: i64,
    pub seasons: Option<String>,
    pub is_4k: bool,
    pub status: RequestState,
    pub overseerr_id: Option<i64>,
    pub poster_path: Option<String>,
    pub source: RequestSource,
    pub now_ms: i64,
}

/// Inserts a request; a unique violation means an active request for the title exists.
pub fn insert(conn: &Connection, new: &NewRequest) -> rusqlite::Result<()> {
    let completed = (new.status == RequestState::Available).then_some(new.now_ms);
    conn.prepare_cached(
        "INSERT INTO media_requests (id, user_id, title, media_type, tmdb_id, seasons, is_4k,
                                     status, overseerr_id, poster_path, created_at, updated_at,
                                     completed_at, source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12, ?13)",
    )?
    .execute(params![
        new.id,
        new.user_id,
        new.title,
        new.media_type.as_str(),
        new.tmdb_id,
        new.seasons,
        new.is_4k,
        new.status.as_str(),
        new.overseerr_id,
        new.poster_path,
        new.now_ms,
        completed,
        new.source.as_str(),
    ])?;
    Ok(())
}

/// One request by id, seen by `caller` (for `following`).
pub fn get(conn: &Connection, caller: &str, id: &str) -> AppResult<Option<RequestRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM media_requests r WHERE r.id = ?2"
        ))?
        .query_row([caller, id], from_row)
        .optional()?)
}

/// The active request for a title, if any (the dedupe rule), via the partial unique index.
pub fn active_for(
    conn: &Connection,
    tmdb_id: i64,
    media_type: MediaType,
    is_4k: bool,
) -> AppResult<Option<(String, String, String)>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, user_id, status FROM media_requests INDEXED BY media_requests_active
              WHERE tmdb_id = ?1 AND media_type = ?2 AND is_4k = ?3
                AND status NOT IN ('declined', 'failed')",
        )?
        .query_row(params![tmdb_id, media_type.as_str(), is_4k], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?)
}

/// What search results are annotated with: the requests here for one title.
#[derive(Debug, Clone)]
pub struct TitleRequest {
    pub id: String,
    pub user_id: String,
    pub status: String,
    pub is_4k: bool,
    pub created_at_ms: i64,
    pub following: bool,
}

/// Every request made here for a title (few: at most one active per 4K flag), seen by `caller`.
pub fn for_title(
    conn: &Connection,
    caller: &str,
    tmdb_id: i64,
    media_type: MediaType,
) -> AppResult<Vec<TitleRequest>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.id, r.user_id, r.status, r.is_4k, r.created_at,
                EXISTS (SELECT 1 FROM request_followers f
                         WHERE f.request_id = r.id AND f.user_id = ?1)
           FROM media_requests r INDEXED BY media_requests_tmdb
          WHERE r.tmdb_id = ?2 AND r.media_type = ?3",
    )?;
    let rows = stmt
        .query_map(params![caller, tmdb_id, media_type.as_str()], |r| {
            Ok(TitleRequest {
                id: r.get(0)?,
                user_id: r.get(1)?,
                status: r.get(2)?,
                is_4k: r.get(3)?,
                created_at_ms: r.get(4)?,
                following: r.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// A request made here for a title, with who made it: what an admin's title page lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TitleRequester {
    pub id: String,
    pub user_id: String,
    /// The user's display name, else their username.
    pub name: String,
    pub status: String,
    pub is_4k: bool,
    /// The JSON list of requested seasons (TV), as stored.
    pub seasons: Option<String>,
    pub overseerr_id: Option<i64>,
    pub created_at_ms: i64,
}

/// The requests for one title with their users: a walk of `media_requests_tmdb`, each user found
/// by primary key.
const REQUESTERS_SQL: &str =
    "SELECT r.id, r.user_id, COALESCE(NULLIF(trim(u.name), ''), u.username), r.status,
        r.is_4k, r.seasons, r.overseerr_id, r.created_at
   FROM media_requests r INDEXED BY media_requests_tmdb
   JOIN users u ON u.id = r.user_id
  WHERE r.tmdb_id = ?1 AND r.media_type = ?2";

/// Every request made here for a title with its requester, newest first (a title has few: at
/// most one active per 4K flag, so they are sorted here rather than by the database).
pub fn requesters_for_title(
    conn: &Connection,
    tmdb_id: i64,
    media_type: MediaType,
) -> AppResult<Vec<TitleRequester>> {
    let mut stmt = conn.prepare_cached(REQUESTERS_SQL)?;
    let mut rows = stmt
        .query_map(params![tmdb_id, media_type.as_str()], |r| {
            Ok(TitleRequester {
                id: r.get(0)?,
                user_id: r.get(1)?,
                name: r.get(2)?,
                status: r.get(3)?,
                is_4k: r.get(4)?,
                seasons: r.get(5)?,
                overseerr_id: r.get(6)?,
                created_at_ms: r.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.sort_by(|a, b| (b.created_at_ms, &b.id).cmp(&(a.created_at_ms, &a.id)));
    Ok(rows)
}

/// The requests `user_id` made since `since_ms` and the oldest of them (the quota rule).
pub fn created_since(conn: &Connection, user_id: &str, since_ms: i64) -> AppResult<(i64, i64)> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*), coalesce(min(created_at), 0)
               FROM media_requests INDEXED BY media_requests_user_created
              WHERE user_id = ?1 AND created_at >= ?2",
        )?
        .query_row(params![user_id, since_ms], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

/// Deletes a request (followers go by cascade).
pub fn delete(conn: &Connection, id: &str) -> AppResult<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM media_requests WHERE id = ?1")?
        .execute([id])?
        > 0)
}

/// Sets the status (and `completed_at` on the way to available); `false` when nothing changed.
pub fn set_status(
    conn: &Connection,
    id: &str,
    state: RequestState,
    now_ms: i64,
) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached(
            "UPDATE media_requests
                SET status = ?2, updated_at = ?3,
                    completed_at = CASE WHEN ?2 = 'available' THEN coalesce(completed_at, ?3)
                                        ELSE completed_at END
              WHERE id = ?1 AND status <> ?2",
        )?
        .execute(params![id, state.as_str(), now_ms])?
        > 0)
}

/// The row a webhook is about: by Seerr's request id, else the active row for the title. When
/// the event names a request id that no row carries, only a row not yet linked to any Seerr
/// request may stand in for it: a row linked to another Seerr request is another request
/// (say the 4K one, or one made in Seerr's own UI), and must not take this one's status.
pub fn find_for_webhook(
    conn: &Connection,
    overseerr_id: Option<i64>,
    title: Option<(i64, MediaType, Option<bool>)>,
) -> AppResult<Option<RequestRow>> {
    if let Some(oid) = overseerr_id {
        let found = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM media_requests r INDEXED BY media_requests_overseerr
                  WHERE r.overseerr_id = ?2 AND r.overseerr_id IS NOT NULL
                  LIMIT 1"
            ))?
            .query_row(params!["", oid], from_row)
            .optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    let Some((tmdb_id, media_type, is_4k)) = title else {
        return Ok(None);
    };
    // Non-4K first: a webhook that does not tell is about the ordinary request.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM media_requests r INDEXED BY media_requests_active
          WHERE r.tmdb_id = ?2 AND r.media_type = ?3 AND r.is_4k IN (0, 1)
            AND r.status NOT IN ('declined', 'failed')"
    ))?;
    let mut rows = stmt
        .query_map(params!["", tmdb_id, media_type.as_str()], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(is_4k) = is_4k {
        rows.retain(|r| r.is_4k == is_4k);
    }
    if overseerr_id.is_some() {
        rows.retain(|r| r.overseerr_id.is_none());
    }
    rows.sort_by_key(|r| r.is_4k);
    Ok(rows.into_iter().next())
}

/// The owner and followers of a request: who hears about its changes.
pub fn audience(conn: &Connection, request_id: &str, owner: &str) -> AppResult<Vec<String>> {
    let mut users = vec![owner.to_owned()];
    let mut stmt =
        conn.prepare_cached("SELECT user_id FROM request_followers WHERE request_id = ?1")?;
    for user in stmt.query_map([request_id], |r| r.get::<_, String>(0))? {
        let user = user?;
        if !users.contains(&user) {
            users.push(user);
        }
    }
    Ok(users)
}

/// Follows a request; `false` when already following.
pub fn follow(conn: &Connection, request_id: &str, user_id: &str, now_ms: i64) -> AppResult<bool> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO request_followers (request_id, user_id, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (request_id, user_id) DO NOTHING",
        )?
        .execute(params![request_id, user_id, now_ms])?
        > 0)
}

/// Stops following; `false` when not following.
pub fn unfollow(conn: &Connection, request_id: &str, user_id: &str) -> AppResult<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM request_followers WHERE request_id = ?1 AND user_id = ?2")?
        .execute([request_id, user_id])?
        > 0)
}

/// Rows per [`open_batch`].
pub const OPEN_BATCH: usize = 200;

/// One open status's requests with an Overseerr id after `after` (oldest first, at most
/// [`OPEN_BATCH`]), for reconciliation: `(id, overseerr_id, status, created_at)`.
pub fn open_batch(
    conn: &Connection,
    status: &str,
    after: (i64, &str),
) -> AppResult<Vec<(String, i64, String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, overseerr_id, status, created_at
           FROM media_requests INDEXED BY media_requests_status_created
          WHERE status = ?1 AND (created_at, id) > (?2, ?3) AND overseerr_id IS NOT NULL
          ORDER BY created_at, id
          LIMIT 200",
    )?;
    let rows = stmt
        .query_map(params![status, after.0, after.1], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Counts for the dashboard: total and by status.
pub fn counts_by_status(conn: &Connection, user_id: &str) -> AppResult<Vec<(String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT status, count(*) FROM media_requests INDEXED BY media_requests_user_status
          WHERE user_id = ?1 GROUP BY status",
    )?;
    let rows = stmt
        .query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// How to sort a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    CreatedAt,
    Title,
    Status,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    Asc,
    Desc,
}

/// The filters and sort of a list, validated.
#[derive(Debug, Clone)]
pub struct ListSpec {
    /// Whose requests: the caller's for `/media/requests`, an optional `userId` for admins.
    pub user_id: Option<String>,
    pub status: Option<RequestState>,
    pub media_type: Option<MediaType>,
    /// Title contains (case-insensitive for ASCII).
    pub q: Option<String>,
    pub from_ms: Option<i64>,
    /// Exclusive.
    pub to_ms: Option<i64>,
    pub sort: Sort,
    pub order: Order,
    /// Add the owner's username (admin lists).
    pub with_owner: bool,
}

/// A position in a list: the last row's sort key. `text` is the title or status (empty when
/// sorting by date), `at` the creation time (0 when sorting by title).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub text: String,
    pub at: i64,
    pub id: String,
}

impl Position {
    /// The position of a row in a list sorted by `sort`.
    pub fn of(row: &RequestRow, sort: Sort) -> Self {
        match sort {
            Sort::CreatedAt => Self {
                text: String::new(),
                at: row.created_at_ms,
                id: row.id.clone(),
            },
            Sort::Title => Self {
                text: row.title.clone(),
                at: 0,
                id: row.id.clone(),
            },
            Sort::Status => Self {
                text: row.status.clone(),
                at: row.created_at_ms,
                id: row.id.clone(),
            },
        }
    }
}

impl ListSpec {
    /// One user's requests, newest first, unfiltered: the default list.
    pub fn newest_of(user_id: &str) -> Self {
        Self {
            user_id: Some(user_id.to_owned()),
            status: None,
            media_type: None,
            q: None,
            from_ms: None,
            to_ms: None,
            sort: Sort::CreatedAt,
            order: Order::Desc,
            with_owner: false,
        }
    }

    /// The index the list walks: its order is the sort order, after the equality filters.
    pub fn index(&self) -> &'static str {
        let by_user = self.user_id.is_some();
        match (self.sort, by_user) {
            (Sort::Title, true) => "media_requests_user_title",
            (Sort::Title, false) => "media_requests_title",
            (Sort::Status, true) => "media_requests_user_status",
            (Sort::Status, false) => "media_requests_status_created",
            (Sort::CreatedAt, true) => {
                if self.status.is_some() {
                    "media_requests_user_status"
                } else if self.media_type.is_some() {
                    "media_requests_user_type_created"
                } else {
                    "media_requests_user_created"
                }
            }
            (Sort::CreatedAt, false) => {
                if self.status.is_some() {
                    "media_requests_status_created"
                } else if self.media_type.is_some() {
                    "media_requests_type_created"
                } else {
                    "media_requests_created"
                }
            }
        }
    }

    /// The statement and its parameters for a page of `limit` rows after `after`, as seen by
    /// `caller`.
    pub fn statement(
        &self,
        caller: &str,
        after: Option<&Position>,
        limit: u32,
    ) -> (String, Vec<SqlValue>) {
        let mut params: Vec<SqlValue> = vec![SqlValue::Text(caller.to_owned())];
        let bind = |params: &mut Vec<SqlValue>, value: SqlValue| {
            params.push(value);
            format!("?{}", params.len())
        };
        let mut conditions = Vec::new();
        if let Some(user) = &self.user_id {
            let p = bind(&mut params, SqlValue::Text(user.clone()));
            conditions.push(format!("r.user_id = {p}"));
        }
        if let Some(status) = self.status {
            let p = bind(&mut params, SqlValue::Text(status.as_str().to_owned()));
            conditions.push(format!("r.status = {p}"));
        }
        if let Some(media_type) = self.media_type {
            let p = bind(&mut params, SqlValue::Text(media_type.as_str().to_owned()));
            conditions.push(format!("r.media_type = {p}"));
        }
        if let Some(q) = &self.q {
            let p = bind(&mut params, SqlValue::Text(crate::db::contains_pattern(q)));
            conditions.push(format!("r.title LIKE {p} ESCAPE '\\'"));
        }
        // The date bounds are filters (`+` keeps them out of the index choice: mixed with the
        // keyset's row-value range they make SQLite skip-scan and sort). On a first page sorted
        // by date, the bound the walk starts from becomes the starting position instead.
        if let Some(from) = self.from_ms {
            let p = bind(&mut params, SqlValue::Integer(from));
            conditions.push(format!("+r.created_at >= {p}"));
            if after.is_none() && self.sort == Sort::CreatedAt && self.order == Order::Asc {
                conditions.push(format!("(r.created_at, r.id) >= ({p}, '')"));
            }
        }
        if let Some(to) = self.to_ms {
            let p = bind(&mut params, SqlValue::Integer(to));
            conditions.push(format!("+r.created_at < {p}"));
            if after.is_none() && self.sort == Sort::CreatedAt && self.order == Order::Desc {
                conditions.push(format!("(r.created_at, r.id) < ({p}, '')"));
            }
        }
        let cmp = match self.order {
            Order::Asc => ">",
            Order::Desc => "<",
        };
        if let Some(pos) = after {
            let id = bind(&mut params, SqlValue::Text(pos.id.clone()));
            let condition = match self.sort {
                Sort::CreatedAt => {
                    let at = bind(&mut params, SqlValue::Integer(pos.at));
                    format!("(r.created_at, r.id) {cmp} ({at}, {id})")
                }
                Sort::Title => {
                    let text = bind(&mut params, SqlValue::Text(pos.text.clone()));
                    format!("(r.title, r.id) {cmp} ({text}, {id})")
                }
                Sort::Status => {
                    let text = bind(&mut params, SqlValue::Text(pos.text.clone()));
                    let at = bind(&mut params, SqlValue::Integer(pos.at));
                    format!("(r.status, r.created_at, r.id) {cmp} ({text}, {at}, {id})")
                }
            };
            conditions.push(condition);
        }
        let dir = match self.order {
            Order::Asc => "ASC",
            Order::Desc => "DESC",
        };
        let order = match self.sort {
            Sort::CreatedAt => format!("r.created_at {dir}, r.id {dir}"),
            Sort::Title => format!("r.title {dir}, r.id {dir}"),
            Sort::Status => format!("r.status {dir}, r.created_at {dir}, r.id {dir}"),
        };
        // A subquery, not a join: the request index stays the only loop, so its order is the
        // page order (a join lets the planner put `users` outside and sort afterwards).
        let owner_col = if self.with_owner {
            ", (SELECT u.username FROM users u WHERE u.id = r.user_id)"
        } else {
            ""
        };
        // LIMIT is written into the text, not bound: SQLite re-prepares a statement on every
        // execution when its LIMIT is a parameter (the planner reads the value).
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        // Nobody follows their own request (follow refuses it): on one's own list the column is
        // a constant, which spares a lookup per row.
        let columns = if self.user_id.as_deref() == Some(caller) {
            OWN_COLUMNS
        } else {
            COLUMNS
        };
        let sql = format!(
            "SELECT {columns}{owner_col} FROM media_requests r INDEXED BY {}{where_clause} ORDER BY {order} LIMIT {limit}",
            self.index()
        );
        (sql, params)
    }
}

/// Runs a list statement.
pub fn list(
    conn: &Connection,
    spec: &ListSpec,
    caller: &str,
    after: Option<&Position>,
    limit: u32,
) -> AppResult<Vec<RequestRow>> {
    let (sql, params) = spec.statement(caller, after, limit);
    let mut stmt = conn.prepare_cached(&sql)?;
    let with_owner = spec.with_owner;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params), |row| {
            let mut out = from_row(row)?;
            if with_owner {
                out.username = Some(row.get(15)?);
            }
            Ok(out)
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// A page written straight to JSON.
#[derive(Debug)]
pub struct JsonPage {
    /// The rows as a JSON array.
    pub json: Vec<u8>,
    /// Where the next page starts, when there is one.
    pub next: Option<Position>,
}

/// A JSON string: copied as it is when nothing in it needs escaping (ids, statuses, most
/// titles), through serde_json's escaping otherwise.
fn push_str(out: &mut Vec<u8>, text: &str) -> AppResult<()> {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(&mut *out, text)
            .map_err(|e| crate::error::AppError::internal(format!("serialize: {e}")))
    }
}

fn push_opt_str(out: &mut Vec<u8>, text: Option<&str>) -> AppResult<()> {
    match text {
        Some(text) => push_str(out, text),
        None => {
            out.extend_from_slice(b"null");
            Ok(())
        }
    }
}

fn push_int(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn push_time(out: &mut Vec<u8>, ms: i64) {
    out.push(b'"');
    if let Some(text) = Rfc3339Ms(ms).bytes() {
        out.extend_from_slice(&text);
    }
    out.push(b'"');
}

/// One row as JSON, written by hand from the row's borrowed values: the hot path of the lists
/// (no intermediate strings, no serializer state). Same shape as `RequestRow`'s `Serialize`,
/// which a test compares it with.
fn write_row(row: &Row<'_>, with_owner: bool, out: &mut Vec<u8>) -> AppResult<()> {
    let bad = |i: usize| move |e| crate::error::AppError::internal(format!("column {i}: {e}"));
    let text = |i: usize| -> AppResult<&str> { row.get_ref(i)?.as_str().map_err(bad(i)) };
    let opt_text =
        |i: usize| -> AppResult<Option<&str>> { row.get_ref(i)?.as_str_or_null().map_err(bad(i)) };
    let user_id = text(1)?;
    out.extend_from_slice(b"{\"id\":");
    push_str(out, text(0)?)?;
    out.extend_from_slice(b",\"userId\":");
    push_str(out, user_id)?;
    out.extend_from_slice(b",\"title\":");
    push_str(out, text(2)?)?;
    out.extend_from_slice(if text(3)? == "tv" {
        b",\"mediaType\":\"tv\",\"tmdbId\":"
    } else {
        b",\"mediaType\":\"movie\",\"tmdbId\":"
    });
    push_int(out, row.get(4)?);
    out.extend_from_slice(b",\"seasons\":");
    match opt_text(5)? {
        // The column is CHECKed to be valid JSON: written as it is, like the RawValue it is
        // elsewhere.
        Some(json) => out.extend_from_slice(json.as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(if row.get::<_, bool>(6)? {
        b",\"is4k\":true,\"status\":"
    } else {
        b",\"is4k\":false,\"status\":"
    });
    push_str(out, text(7)?)?;
    out.extend_from_slice(b",\"overseerrId\":");
    match row.get::<_, Option<i64>>(8)? {
        Some(n) => push_int(out, n),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"posterPath\":");
    push_opt_str(out, opt_text(9)?)?;
    out.extend_from_slice(b",\"createdAt\":");
    push_time(out, row.get(10)?);
    out.extend_from_slice(b",\"updatedAt\":");
    push_time(out, row.get(11)?);
    out.extend_from_slice(b",\"completedAt\":");
    match row.get::<_, Option<i64>>(12)? {
        Some(ms) => push_time(out, ms),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(if row.get::<_, bool>(13)? {
        b",\"following\":true"
    } else {
        b",\"following\":false"
    });
    out.extend_from_slice(if text(14)? == "watchlist" {
        b",\"source\":\"watchlist\""
    } else {
        b",\"source\":\"manual\""
    });
    if with_owner {
        out.extend_from_slice(b",\"requestedBy\":{\"id\":");
        push_str(out, user_id)?;
        out.extend_from_slice(b",\"username\":");
        push_str(out, text(15)?)?;
        out.push(b'}');
    }
    out.push(b'}');
    Ok(())
}

/// The position of a row (read from the row itself) in a list sorted by `sort`.
fn position_of_row(row: &Row<'_>, sort: Sort) -> AppResult<Position> {
    let id: String = row.get(0)?;
    Ok(match sort {
        Sort::CreatedAt => Position {
            text: String::new(),
            at: row.get(10)?,
            id,
        },
        Sort::Title => Position {
            text: row.get(2)?,
            at: 0,
            id,
        },
        Sort::Status => Position {
            text: row.get(7)?,
            at: row.get(10)?,
            id,
        },
    })
}

/// [`list`] written straight to JSON bytes: the hot path of the request lists. Reads up to
/// `limit + 1` rows; the extra one only says whether there is a next page.
pub fn list_json(
    conn: &Connection,
    spec: &ListSpec,
    caller: &str,
    after: Option<&Position>,
    limit: u32,
) -> AppResult<JsonPage> {
    let (sql, params) = spec.statement(caller, after, limit + 1);
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut json = Vec::with_capacity(64 + 480 * limit as usize);
    json.push(b'[');
    let mut written = 0u32;
    let mut last = None;
    let mut more = false;
    while let Some(row) = rows.next()? {
        if written == limit {
            more = true;
            break;
        }
        if written > 0 {
            json.push(b',');
        }
        write_row(row, spec.with_owner, &mut json)?;
        written += 1;
        if written == limit {
            last = Some(position_of_row(row, spec.sort)?);
        }
    }
    json.push(b']');
    Ok(JsonPage {
        json,
        next: if more { last } else { None },
    })
}

/// The user's most recent requests (dashboard).
pub fn recent(conn: &Connection, user_id: &str, limit: u32) -> AppResult<Vec<RequestRow>> {
    list(conn, &ListSpec::newest_of(user_id), user_id, None, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unwrap_used)]
    fn a_titles_requesters_are_read_through_indexes_newest_first() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrations::apply(&mut conn).unwrap();
        crate::db::assert_indexed(&conn, REQUESTERS_SQL);
        conn.execute_batch(
            "INSERT INTO users (id, username, name, created_at) VALUES ('a', 'ann', 'Ann B', 0),
                                                                   ('b', 'bob', ' ', 0);
             INSERT INTO media_requests (id, user_id, title, media_type, tmdb_id, status,
                                         created_at, updated_at)
             VALUES ('r1', 'a', 'T', 'tv', 7, 'declined', 1, 1),
                    ('r2', 'b', 'T', 'tv', 7, 'pending', 2, 2),
                    ('r3', 'b', 'T', 'movie', 7, 'pending', 3, 3);",
        )
        .unwrap();
        let got: Vec<(String, String)> = requesters_for_title(&conn, 7, MediaType::Tv)
            .unwrap()
            .into_iter()
            .map(|r| (r.id, r.name))
            .collect();
        assert_eq!(
            got,
            [("r2".into(), "bob".into()), ("r1".into(), "Ann B".into())],
            "a blank display name falls back to the username"
        );
    }

    /// A page statement is prepared once per connection, not once per execution (a bound
    /// LIMIT or STAT4 samples would make SQLite re-prepare it every time).
    #[test]
    #[allow(clippy::unwrap_used)]
    fn list_statements_are_not_re_prepared() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrations::apply(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO users (id, username, created_at) VALUES ('u', 'u', 0)",
            [],
        )
        .unwrap();
        for i in 0..300 {
            conn.execute(
                "INSERT INTO media_requests (id, user_id, title, media_type, tmdb_id, status,
                                             created_at, updated_at)
                 VALUES (?1, 'u', 'T', 'movie', ?2, 'pending', ?2, ?2)",
                params![format!("r{i:04}"), i + 1],
            )
            .unwrap();
        }
        conn.execute_batch("ANALYZE").unwrap();
        crate::db::keep_plans_stable(&conn).unwrap();
        let spec = ListSpec::newest_of("u");
        let mut after = None;
        for _ in 0..4 {
            let page = list_json(&conn, &spec, "u", after.as_ref(), 20).unwrap();
            after = page.next;
        }
        let (sql, _) = spec.statement("u", after.as_ref(), 21);
        let stmt = conn.prepare_cached(&sql).unwrap();
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
        assert!(stmt.get_status(rusqlite::StatementStatus::Run) >= 3);
    }

    /// The hand-written JSON of the lists is exactly what `RequestRow` serializes to.
    #[test]
    #[allow(clippy::unwrap_used)]
    fn hand_written_rows_match_the_serialized_ones() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrations::apply(&mut conn).unwrap();
        conn.execute_batch(
            r#"INSERT INTO users (id, username, created_at) VALUES ('u', 'Zoë "z" \ tab', 0);
               INSERT INTO media_requests (id, user_id, title, media_type, tmdb_id, seasons,
                   is_4k, status, overseerr_id, poster_path, created_at, updated_at, completed_at)
               VALUES ('a', 'u', 'Plain', 'movie', 1, NULL, 0, 'pending', NULL, NULL, 5, 6, NULL),
                      ('b', 'u', 'Quote " back \ ctl' || char(9) || ' é', 'tv', 2, '[1,2]', 1,
                       'available', 77, '/p.jpg', 1795000000123, 1795000000124, 1795000000125);
               INSERT INTO request_followers VALUES ('b', 'u', 0);"#,
        )
        .unwrap();
        for with_owner in [false, true] {
            let spec = ListSpec {
                user_id: None,
                order: Order::Asc,
                with_owner,
                ..ListSpec::newest_of("u")
            };
            let page = list_json(&conn, &spec, "u", None, 10).unwrap();
            let rows = list(&conn, &spec, "u", None, 10).unwrap();
            assert_eq!(
                String::from_utf8(page.json).unwrap(),
                serde_json::to_string(&rows).unwrap()
            );
            assert!(rows[1].following);
        }
    }

    /// A webhook names Seerr request 9; the only active row for the title is linked to Seerr
    /// request 7 (another request for the same title): it is not this webhook's row. A row not
    /// yet linked (here the 4K one) stands in, and an event without a request id takes the
    /// title's row.
    #[test]
    #[allow(clippy::unwrap_used)]
    fn a_webhook_with_a_request_id_never_lands_on_another_linked_request() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrations::apply(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, username, created_at) VALUES ('u', 'u', 0);
             INSERT INTO media_requests (id, user_id, title, media_type, tmdb_id, status,
                                         overseerr_id, created_at, updated_at)
             VALUES ('linked', 'u', 'T', 'movie', 42, 'pending', 7, 1, 1);",
        )
        .unwrap();
        let title = Some((42, MediaType::Movie, None));
        assert!(find_for_webhook(&conn, Some(9), title).unwrap().is_none());
        assert_eq!(
            find_for_webhook(&conn, Some(7), title).unwrap().unwrap().id,
            "linked"
        );
        assert_eq!(
            find_for_webhook(&conn, None, title).unwrap().unwrap().id,
            "linked"
        );
        conn.execute_batch(
            "INSERT INTO media_requests (id, user_id, title, media_type, tmdb_id, is_4k,
                                         status, overseerr_id, created_at, updated_at)
             VALUES ('unlinked', 'u', 'T 4K', 'movie', 42, 1, 'pending', NULL, 2, 2);",
        )
        .unwrap();
        assert_eq!(
            find_for_webhook(&conn, Some(9), title).unwrap().unwrap().id,
            "unlinked"
        );
    }

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(
            crate::db::contains_pattern("50% off_x\\"),
            "%50\\% off\\_x\\\\%"
        );
    }
}
