//! The request endpoints: create, the caller's list and the admin list, one request, delete,
//! follow and unfollow, approve and decline.
//!
//! Another user's request answers 404 for reading and deleting, exactly like an id that does not
//! exist, so ids reveal nothing. Following is the one thing anyone may do with any request id
//! (that is its purpose: "notify me too" on a title someone else asked for); it answers only
//! whether the caller follows.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::changes::{self, Origin};
use super::search::{details, overseerr};
use super::store::{self, ListSpec, NewRequest, Order, Position, RequestRow, RequestSource, Sort};
use super::{Details, USER_MAP_MISS_TTL, USER_MAP_TTL};
use crate::auth::{AdminUser, CurrentUser};
use crate::error::{AppError, AppResult, ErrorCode, is_unique_violation};
use crate::http::{ApiJson, optional_json};
use crate::integrations::overseerr::{CreateOutcome, MediaType, Overseerr, RefusalReason, Seasons};
use crate::pagination::PageQuery;
use crate::response::ApiResponse;
use crate::state::AppState;
use crate::time::parse_rfc3339;

/// An hour, the quota window.
const HOUR_MS: i64 = 3_600_000;
/// Highest season number accepted.
const MAX_SEASON: u32 = 1000;
/// Most seasons in one request.
const MAX_SEASONS: usize = 100;
/// Longest decline reason.
const MAX_REASON_CHARS: usize = 500;

// ---------------------------------------------------------------------------------------------
// Create

/// `POST /media/requests` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateBody {
    media_type: String,
    tmdb_id: Value,
    #[serde(default)]
    seasons: Option<Value>,
    #[serde(default)]
    is4k: Option<bool>,
}

/// A checked create body: what [`request_title`] asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct NewInput {
    pub media_type: MediaType,
    pub tmdb_id: i64,
    /// `Seasons::All` becomes the show's numbered seasons (see [`explicit_seasons`]).
    pub seasons: Seasons,
    pub is_4k: bool,
}

/// Who asks for a title: their user id, and whether they are an admin (admins have no quota).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    pub user_id: String,
    pub is_admin: bool,
}

/// A body's `mediaType` (`movie` or `tv`) and `tmdbId` (a positive 32-bit whole number), each
/// `None` with its complaint added to `fields` when it is not one.
pub(crate) fn check_title(
    media_type: &str,
    tmdb_id: &Value,
    fields: &mut Vec<(&'static str, String)>,
) -> (Option<MediaType>, Option<i64>) {
    let parsed = MediaType::parse(media_type).filter(|_| matches!(media_type, "movie" | "tv"));
    if parsed.is_none() {
        fields.push(("mediaType", "must be \"movie\" or \"tv\"".into()));
    }
    let id = tmdb_id
        .as_i64()
        .filter(|n| (1..=i64::from(i32::MAX)).contains(n));
    if id.is_none() {
        fields.push(("tmdbId", "must be a positive integer".into()));
    }
    (parsed, id)
}

fn validate(body: CreateBody) -> AppResult<NewInput> {
    let mut fields: Vec<(&str, String)> = Vec::new();
    let (media_type, tmdb_id) = check_title(&body.media_type, &body.tmdb_id, &mut fields);
    let seasons = match (&body.seasons, media_type) {
        (None | Some(Value::Null), _) => Some(Seasons::All),
        (Some(_), Some(MediaType::Movie)) => {
            fields.push(("seasons", "only TV requests have seasons".into()));
            None
        }
        (Some(Value::String(s)), _) if s == "all" => Some(Seasons::All),
        (Some(Value::Array(items)), _) => {
            let numbers: Option<Vec<u32>> = items
                .iter()
                .map(|v| {
                    v.as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .filter(|n| *n <= MAX_SEASON)
                })
                .collect();
            match numbers {
                Some(mut list) if !list.is_empty() && list.len() <= MAX_SEASONS => {
                    list.sort_unstable();
                    list.dedup();
                    Some(Seasons::List(list))
                }
                _ => {
                    fields.push((
                        "seasons",
                        format!(
                            "must be \"all\" or a list of 1 to {MAX_SEASONS} season numbers (0-{MAX_SEASON})"
                        ),
                    ));
                    None
                }
            }
        }
        (Some(_), _) => {
            fields.push((
                "seasons",
                "must be \"all\" or a list of season numbers".into(),
            ));
            None
        }
    };
    match (media_type, tmdb_id, seasons) {
        (Some(media_type), Some(tmdb_id), Some(seasons)) if fields.is_empty() => Ok(NewInput {
            media_type,
            tmdb_id,
            seasons,
            is_4k: body.is4k.unwrap_or(false),
        }),
        _ => Err(AppError::validation(fields)),
    }
}

fn seasons_json(media_type: MediaType, seasons: &Seasons) -> Option<String> {
    (media_type == MediaType::Tv).then(|| match seasons {
        Seasons::All => "\"all\"".to_owned(),
        Seasons::List(list) => json!(list).to_string(),
    })
}

/// The seasons to send for a TV request. `"all"` is not sent: it means every TMDB season
/// including the specials (season 0) on Overseerr (server/entity/MediaRequest.ts in sct/overseerr
/// 1.34.0) and every season but the specials on Seerr (the same file in seerr-team/seerr), so
/// "all" becomes the explicit list of the show's numbered seasons from its details
/// (`GET /tv/{id}`), which means the same on both. A show whose details list no numbered season
/// keeps `"all"` (the upstream then answers that nothing is left to request).
fn explicit_seasons(asked: &Seasons, details: &Details) -> Seasons {
    let (Seasons::All, Details::Tv(show)) = (asked, details) else {
        return asked.clone();
    };
    let mut list: Vec<u32> = show
        .seasons
        .iter()
        .filter_map(|s| u32::try_from(s.season_number).ok())
        .filter(|n| *n > 0)
        .collect();
    list.sort_unstable();
    list.dedup();
    if list.is_empty() {
        Seasons::All
    } else {
        Seasons::List(list)
    }
}

/// What identifies a user in Overseerr: plex id, email and, for a Jellyfin-backed Seerr only,
/// the username (see `find_user`).
type Profile = (Option<String>, Option<String>, String);

/// The user's Overseerr account id, cached (an hour when found, five minutes when not).
pub(crate) async fn overseerr_user(
    state: &AppState,
    client: &Overseerr,
    user_id: &str,
) -> AppResult<Option<i64>> {
    if let Some(known) = state.media().user_map.get(&user_id.to_owned()) {
        return Ok(known);
    }
    let id = user_id.to_owned();
    let profile: Option<Profile> = state
        .db()
        .run(move |conn| {
            use rusqlite::OptionalExtension;
            Ok(conn
                .prepare_cached("SELECT plex_id, email, username FROM users WHERE id = ?1")?
                .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?)
        })
        .await?;
    let Some((plex_id, email, username)) = profile else {
        return Ok(None);
    };
    let plex_id = plex_id.and_then(|p| p.parse::<i64>().ok());
    let found = client
        .find_user(plex_id, email.as_deref(), Some(&username))
        .await?
        .map(|u| u.id);
    let ttl = if found.is_some() {
        USER_MAP_TTL
    } else {
        USER_MAP_MISS_TTL
    };
    state
        .media()
        .user_map
        .insert(user_id.to_owned(), found, ttl);
    Ok(found)
}

fn already_requested(id: &str, status: &str, mine: bool) -> AppError {
    AppError::new(ErrorCode::AlreadyRequested).with_details(json!({
        "requestId": id,
        "status": status,
        "mine": mine,
    }))
}

fn refused(message: &str) -> AppError {
    AppError::new(ErrorCode::Forbidden).with_details(json!({ "reason": message }))
}

/// `POST /media/requests`: 201 with the new request.
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<CreateBody>,
) -> AppResult<ApiResponse> {
    let input = validate(body)?;
    let who = Requester {
        user_id: user.user_id().to_owned(),
        is_admin: user.is_admin(),
    };
    let row = request_title(&state, &who, input, RequestSource::Manual).await?;
    Ok(ApiResponse::created(&row))
}

/// Makes a request for `who`: the one way a request is made, whoever asks (the dashboard and
/// the API through [`create`], the Plex watchlist sync in `crate::watchlist`). It applies the
/// dedupe rule (`ALREADY_REQUESTED` with `requestId` and `mine` when the title has an active
/// request), the hourly quota (`QUOTA_EXCEEDED`), asks Seerr as the user's own account, and
/// stores the row with its `source`.
pub async fn request_title(
    state: &AppState,
    who: &Requester,
    input: NewInput,
    source: RequestSource,
) -> AppResult<RequestRow> {
    let state = state.clone();
    let client = overseerr(&state).await?;
    let caller = who.user_id.clone();
    // Concurrent requests for one title take turns from here to the insert.
    let _turn = state
        .media()
        .lock_title((input.tmdb_id, input.media_type, input.is_4k))
        .await;
    // And one user's requests take turns from the quota count to the insert (admins have no
    // quota).
    let _user_turn = if who.is_admin {
        None
    } else {
        Some(state.media().lock_user(&caller).await)
    };

    let now = state.clock().now_ms();
    let (existing, (recent, oldest)) = {
        let caller = caller.clone();
        let input = input.clone();
        state
            .db()
            .run(move |conn| {
                let existing =
                    store::active_for(conn, input.tmdb_id, input.media_type, input.is_4k)?;
                let quota = store::created_since(conn, &caller, now - HOUR_MS + 1)?;
                Ok((existing, quota))
            })
            .await?
    };
    if let Some((id, owner, status)) = existing {
        return Err(already_requested(&id, &status, owner == caller));
    }
    let limit = i64::from(state.config().quotas.requests_per_hour);
    if !who.is_admin && recent >= limit {
        let wait_ms = (oldest + HOUR_MS - now).max(1000);
        return Err(AppError::new(ErrorCode::QuotaExceeded)
            .with_details(json!({ "limit": limit, "windowSeconds": 3600 }))
            .with_retry_after(u64::try_from((wait_ms + 999) / 1000).unwrap_or(1)));
    }

    let (found, _) = details(&state, input.media_type, input.tmdb_id).await?;
    let found = found.ok_or_else(|| AppError::new(ErrorCode::NotFound))?;
    let (title, poster_path) = match found.as_ref() {
        Details::Movie(m) => (m.title.clone(), m.poster_path.clone()),
        Details::Tv(t) => (t.title.clone(), t.poster_path.clone()),
    };
    let seasons = explicit_seasons(&input.seasons, &found);

    let as_user = match overseerr_user(&state, &client, &caller).await? {
        Some(id) => Some(id),
        None if who.is_admin || state.config().overseerr.fallback_to_admin => None,
        None => {
            return Err(refused(
                "Your account is not linked to a Seerr user. Ask the server owner to import you into Seerr.",
            ));
        }
    };
    let outcome = client
        .create_request(
            as_user,
            input.media_type,
            input.tmdb_id,
            seasons.clone(),
            input.is_4k,
        )
        .await?;
    let created = match outcome {
        CreateOutcome::Created(r) => r,
        CreateOutcome::AlreadyRequested { message }
        | CreateOutcome::NothingToRequest { message } => {
            return Err(AppError::new(ErrorCode::AlreadyRequested)
                .with_details(json!({ "reason": message })));
        }
        CreateOutcome::Refused {
            reason: RefusalReason::Quota,
            message,
        } => {
            return Err(AppError::new(ErrorCode::QuotaExceeded)
                .with_details(json!({ "reason": message }))
                .with_retry_after(3600));
        }
        CreateOutcome::Refused {
            reason: RefusalReason::AccessDenied,
            ..
        } => {
            // The mapping may be stale (the user was removed from Overseerr): look again next time.
            state.media().user_map.invalidate(&caller);
            return Err(AppError::Upstream {
                code: ErrorCode::UpstreamError,
                service: crate::integrations::overseerr::SERVICE_NAME,
                detail: "Seerr refused the API key or the user id".into(),
                retry_after: None,
            });
        }
        CreateOutcome::Refused {
            reason: RefusalReason::Blocklisted,
            message,
        } => {
            // Seerr's 403 "This media is blocklisted." (server/routes/request.ts): final, the
            // admin put the title on the blocklist; nothing to retry.
            return Err(AppError::new(ErrorCode::Forbidden).with_details(json!({
                "reason": "This title is on the server's blocklist and cannot be requested.",
                "blocklisted": true,
                "upstreamMessage": message,
            })));
        }
        CreateOutcome::Refused { message, .. } => return Err(refused(&message)),
    };

    let new = NewRequest {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: caller.clone(),
        title,
        media_type: input.media_type,
        tmdb_id: input.tmdb_id,
        seasons: seasons_json(input.media_type, &seasons),
        is_4k: input.is_4k,
        status: created.state(),
        overseerr_id: Some(created.id),
        poster_path,
        source,
        now_ms: state.clock().now_ms(),
    };
    let stored = {
        let new = new.clone();
        let caller = caller.clone();
        state
            .db()
            .write(move |tx| match store::insert(tx, &new) {
                Ok(()) => Ok(store::get(tx, &caller, &new.id)?),
                Err(e) if is_unique_violation(&e) => Ok(None),
                Err(e) => Err(e.into()),
            })
            .await
    };
    let mut row = match stored {
        Ok(Some(row)) => row,
        other => {
            // Another MediaNest process stored the title first, or the write failed: take back
            // what Overseerr just created so nothing is left half-done.
            if let Err(e) = client.delete_request(created.id).await {
                tracing::warn!(overseerr_id = created.id, error = %e, "could not withdraw an Overseerr request after a failed insert");
            }
            return Err(match other {
                Err(e) => e,
                _ => AppError::new(ErrorCode::AlreadyRequested),
            });
        }
    };
    state.dashboard().forget(&caller);
    let caller_id = caller.clone();
    changes::publish_updated(&state, &row, "", vec![caller]);
    // A webhook about this request that came before Overseerr's answer was kept for the row.
    if let Some(early) = state.media().take_early(created.id, state.clock().now_ms())
        && let changes::Applied::Changed { .. } =
            changes::apply(&state, &row.id, early.to, Origin::Webhook, early.reason).await?
    {
        let (caller, id) = (caller_id.clone(), row.id.clone());
        if let Some(changed) = state
            .db()
            .run(move |conn| store::get(conn, &caller, &id))
            .await?
        {
            row = changed;
        }
    }
    Ok(row)
}

// ---------------------------------------------------------------------------------------------
// Lists

/// The list filters as received.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    status: Option<String>,
    media_type: Option<String>,
    q: Option<String>,
    from: Option<String>,
    to: Option<String>,
    sort: Option<String>,
    order: Option<String>,
    user_id: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// A date (`2026-11-24`, the start of that day in UTC) or an RFC 3339 time, in ms. `end`
/// moves a bare date to the end of its day.
fn parse_time(text: &str, end: bool) -> Option<i64> {
    if let Some(ms) = parse_rfc3339(text) {
        return Some(ms);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text, &format).ok()?;
    let start = date.midnight().assume_utc().unix_timestamp() * 1000;
    Some(if end { start + 86_400_000 } else { start })
}

fn parse_list(query: &ListQuery, owner: Option<String>, admin: bool) -> AppResult<ListSpec> {
    let mut fields: Vec<(&str, String)> = Vec::new();
    let none_if_empty =
        |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
    let status = none_if_empty(&query.status).map(|s| store::parse_state(&s).ok_or(()));
    let status = match status {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(())) => {
            fields.push((
                "status",
                "must be one of pending, approved, processing, partially_available, available, declined, failed".into(),
            ));
            None
        }
    };
    let media_type = match none_if_empty(&query.media_type).as_deref() {
        None => None,
        Some("movie") => Some(MediaType::Movie),
        Some("tv") => Some(MediaType::Tv),
        Some(_) => {
            fields.push(("mediaType", "must be movie or tv".into()));
            None
        }
    };
    let q = none_if_empty(&query.q);
    if q.as_ref().is_some_and(|q| q.chars().count() > 100) {
        fields.push(("q", "must be at most 100 characters".into()));
    }
    let mut time_field = |name: &'static str, value: &Option<String>, end: bool| {
        let text = value.as_deref().filter(|s| !s.is_empty())?;
        let parsed = parse_time(text, end);
        if parsed.is_none() {
            fields.push((
                name,
                "must be a date (2026-11-24) or an RFC 3339 time".into(),
            ));
        }
        parsed
    };
    let from_ms = time_field("from", &query.from, false);
    let to_ms = time_field("to", &query.to, true);
    let sort = match none_if_empty(&query.sort).as_deref() {
        None | Some("created_at" | "createdAt") => Sort::CreatedAt,
        Some("title") => Sort::Title,
        Some("status") => Sort::Status,
        Some(_) => {
            fields.push(("sort", "must be created_at, title or status".into()));
            Sort::CreatedAt
        }
    };
    let order = match none_if_empty(&query.order).as_deref() {
        None => match sort {
            Sort::CreatedAt => Order::Desc,
            Sort::Title | Sort::Status => Order::Asc,
        },
        Some("asc") => Order::Asc,
        Some("desc") => Order::Desc,
        Some(_) => {
            fields.push(("order", "must be asc or desc".into()));
            Order::Desc
        }
    };
    let user_id = match owner {
        Some(owner) => Some(owner),
        None => none_if_empty(&query.user_id),
    };
    if !fields.is_empty() {
        return Err(AppError::validation(fields));
    }
    Ok(ListSpec {
        user_id,
        status,
        media_type,
        q,
        from_ms,
        to_ms,
        sort,
        order,
        with_owner: admin,
    })
}

/// The cursor scope of a list: a cursor only works with the list and sort that made it.
fn scope(spec: &ListSpec, admin: bool) -> String {
    let sort = match spec.sort {
        Sort::CreatedAt => "created_at",
        Sort::Title => "title",
        Sort::Status => "status",
    };
    let order = match spec.order {
        Order::Asc => "asc",
        Order::Desc => "desc",
    };
    let list = if admin { "admin" } else { "mine" };
    format!("media_requests.{list}.{sort}.{order}")
}

async fn list(
    state: &AppState,
    caller: &str,
    query: ListQuery,
    owner: Option<String>,
    admin: bool,
) -> AppResult<ApiResponse> {
    let spec = parse_list(&query, owner, admin)?;
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    let limit = page.limit()?;
    let scope = scope(&spec, admin);
    let after: Option<Position> = match page.cursor() {
        Some(c) => Some(state.cursors().decode(&scope, c)?),
        None => None,
    };
    let caller = caller.to_owned();
    let page = state
        .db()
        .read(move |conn| store::list_json(conn, &spec, &caller, after.as_ref(), limit))
        .await?;
    let next_cursor = page
        .next
        .map(|position| state.cursors().encode(&scope, &position));
    Ok(ApiResponse::raw_with_meta(
        &page.json,
        &crate::response::PageMeta { limit, next_cursor },
    ))
}

/// `GET /media/requests`: the caller's requests.
pub async fn list_mine(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<ListQuery>,
) -> AppResult<ApiResponse> {
    if query.user_id.is_some() {
        return Err(AppError::validation([(
            "userId",
            "is for the admin list (/admin/requests)",
        )]));
    }
    let caller = user.user_id().to_owned();
    list(&state, &caller, query, Some(caller.clone()), false).await
}

/// `GET /admin/requests`: everyone's requests, optionally one user's.
pub async fn list_all(
    State(state): State<AppState>,
    admin: AdminUser,
    Query(query): Query<ListQuery>,
) -> AppResult<ApiResponse> {
    list(&state, admin.user_id(), query, None, true).await
}

// ---------------------------------------------------------------------------------------------
// One request

/// The request if the caller may see it (owner or admin), else `NOT_FOUND`.
async fn visible(state: &AppState, user: &CurrentUser, id: String) -> AppResult<RequestRow> {
    let caller = user.user_id().to_owned();
    let admin = user.is_admin();
    state
        .db()
        .run(move |conn| store::get(conn, &caller, &id))
        .await?
        .filter(|row| admin || row.user_id == user.user_id())
        .ok_or_else(|| AppError::new(ErrorCode::NotFound))
}

/// `GET /media/requests/{id}`.
pub async fn get_one(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<ApiResponse> {
    Ok(ApiResponse::ok(&visible(&state, &user, id).await?))
}

#[derive(Debug, Serialize)]
struct Deleted {
    deleted: bool,
}

/// `DELETE /media/requests/{id}`: the owner while it is pending, an admin always; it goes from
/// Overseerr too (first, so a failure there leaves both as they were).
pub async fn delete_one(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<ApiResponse> {
    let row = visible(&state, &user, id).await?;
    if !user.is_admin() && row.status != "pending" {
        return Err(AppError::new(ErrorCode::Conflict).with_details(json!({
            "reason": "Only pending requests can be withdrawn.",
            "status": row.status,
        })));
    }
    if let Some(oid) = row.overseerr_id {
        let clients = crate::services::clients(&state).await?;
        // Gone there already is fine; Overseerr switched off since leaves the row ours to drop.
        if let Some(client) = clients.overseerr.clone() {
            client.delete_request(oid).await?;
        }
    }
    let owner = row.user_id.clone();
    let id = row.id.clone();
    let audience = state
        .db()
        .write(move |tx| {
            let audience = store::audience(tx, &id, &owner)?;
            store::delete(tx, &id)?;
            Ok(audience)
        })
        .await?;
    for user in &audience {
        state.dashboard().forget(user);
    }
    let mut gone = row;
    let previous = std::mem::replace(&mut gone.status, "deleted".to_owned());
    changes::publish_updated(&state, &gone, &previous, audience);
    Ok(ApiResponse::ok(&Deleted { deleted: true }))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Following {
    request_id: String,
    following: bool,
}

/// `POST /media/requests/{id}/follow`.
pub async fn follow(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<ApiResponse> {
    let caller = user.user_id().to_owned();
    let now = state.clock().now_ms();
    let request_id = id.clone();
    state
        .db()
        .write(move |tx| {
            let row =
                store::get(tx, &caller, &id)?.ok_or_else(|| AppError::new(ErrorCode::NotFound))?;
            if row.user_id == caller {
                return Err(AppError::new(ErrorCode::Conflict).with_details(json!({
                    "reason": "You made this request: you hear about it already.",
                })));
            }
            store::follow(tx, &id, &caller, now)?;
            Ok(())
        })
        .await?;
    Ok(ApiResponse::ok(&Following {
        request_id,
        following: true,
    }))
}

/// `DELETE /media/requests/{id}/follow`.
pub async fn unfollow(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<ApiResponse> {
    let caller = user.user_id().to_owned();
    let request_id = id.clone();
    state
        .db()
        .write(move |tx| {
            store::get(tx, &caller, &id)?.ok_or_else(|| AppError::new(ErrorCode::NotFound))?;
            store::unfollow(tx, &id, &caller)?;
            Ok(())
        })
        .await?;
    Ok(ApiResponse::ok(&Following {
        request_id,
        following: false,
    }))
}

// ---------------------------------------------------------------------------------------------
// Approve and decline

/// The request and its Overseerr id, or 404 / 409.
async fn for_review(state: &AppState, caller: &str, id: String) -> AppResult<(RequestRow, i64)> {
    let caller = caller.to_owned();
    let row = state
        .db()
        .run(move |conn| store::get(conn, &caller, &id))
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::NotFound))?;
    let oid = row.overseerr_id.ok_or_else(|| {
        AppError::new(ErrorCode::Conflict)
            .with_details(json!({ "reason": "This request is not linked to Seerr." }))
    })?;
    Ok((row, oid))
}

fn gone_from_overseerr() -> AppError {
    AppError::new(ErrorCode::Conflict)
        .with_details(json!({ "reason": "Overseerr no longer has this request." }))
}

/// The row after a review, as the caller sees it (`following` is the caller's).
async fn reviewed(state: &AppState, caller: &str, id: String) -> AppResult<RequestRow> {
    let caller = caller.to_owned();
    state
        .db()
        .run(move |conn| store::get(conn, &caller, &id))
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::NotFound))
}

/// `POST /admin/requests/{id}/approve`.
pub async fn approve(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
) -> AppResult<ApiResponse> {
    let (row, oid) = for_review(&state, admin.user_id(), id).await?;
    let client = overseerr(&state).await?;
    let answer = client
        .approve_request(oid)
        .await?
        .ok_or_else(gone_from_overseerr)?;
    changes::apply(&state, &row.id, answer.state(), Origin::Admin, None).await?;
    let row = reviewed(&state, admin.user_id(), row.id).await?;
    Ok(ApiResponse::ok(&row))
}

/// `{reason?}` of a decline.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeclineBody {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /admin/requests/{id}/decline` with an optional `{reason}` (an empty body is fine).
pub async fn decline(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<ApiResponse> {
    let body: DeclineBody = optional_json(&headers, &body)?;
    let reason = body
        .reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
    {
        return Err(AppError::validation([(
            "reason",
            format!("must be at most {MAX_REASON_CHARS} characters"),
        )]));
    }
    let (row, oid) = for_review(&state, admin.user_id(), id).await?;
    let client = overseerr(&state).await?;
    client
        .decline_request(oid)
        .await?
        .ok_or_else(gone_from_overseerr)?;
    changes::apply(
        &state,
        &row.id,
        crate::integrations::overseerr::RequestState::Declined,
        Origin::Admin,
        reason,
    )
    .await?;
    let row = reviewed(&state, admin.user_id(), row.id).await?;
    Ok(ApiResponse::ok(&row))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(value: Value) -> AppResult<NewInput> {
        validate(serde_json::from_value(value).map_err(AppError::internal)?)
    }

    #[test]
    fn create_bodies_are_checked() {
        let ok = body(json!({"mediaType": "tv", "tmdbId": 1399, "seasons": [2, 1, 2]})).ok();
        assert_eq!(
            ok.map(|i| i.seasons),
            Some(Seasons::List(vec![1, 2])),
            "sorted, deduplicated"
        );
        let ok = body(json!({"mediaType": "movie", "tmdbId": 603, "is4k": true})).ok();
        assert_eq!(ok.map(|i| (i.tmdb_id, i.is_4k)), Some((603, true)));
        for bad in [
            json!({"mediaType": "book", "tmdbId": 1}),
            json!({"mediaType": "movie", "tmdbId": 0}),
            json!({"mediaType": "movie", "tmdbId": "603"}),
            json!({"mediaType": "movie", "tmdbId": 1.5}),
            json!({"mediaType": "movie", "tmdbId": 1, "seasons": [1]}),
            json!({"mediaType": "tv", "tmdbId": 1, "seasons": []}),
            json!({"mediaType": "tv", "tmdbId": 1, "seasons": [-1]}),
            json!({"mediaType": "tv", "tmdbId": 1, "seasons": "some"}),
            json!({"mediaType": "tv", "tmdbId": 1, "seasons": [1.5]}),
        ] {
            let e = body(bad.clone()).err().map(|e| e.code());
            assert_eq!(e, Some(ErrorCode::ValidationError), "{bad}");
        }
    }

    #[test]
    fn times_are_dates_or_rfc3339() {
        assert_eq!(parse_time("1970-01-02", false), Some(86_400_000));
        assert_eq!(parse_time("1970-01-01", true), Some(86_400_000));
        assert_eq!(parse_time("1970-01-01T00:00:01Z", true), Some(1000));
        assert_eq!(parse_time("yesterday", false), None);
    }

    #[test]
    fn list_filters_are_checked() {
        let q = |status: &str, sort: &str| ListQuery {
            status: Some(status.into()),
            sort: Some(sort.into()),
            ..ListQuery::default()
        };
        assert!(parse_list(&q("approved", "title"), Some("u".into()), false).is_ok());
        assert!(parse_list(&q("nope", "title"), Some("u".into()), false).is_err());
        assert!(parse_list(&q("pending", "size"), Some("u".into()), false).is_err());
        let spec = parse_list(&ListQuery::default(), None, true).ok();
        assert_eq!(
            spec.map(|s| (s.sort, s.order)),
            Some((Sort::CreatedAt, Order::Desc))
        );
    }
}
