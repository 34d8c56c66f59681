//! What an admin sees of notification delivery: the delivery log
//! (`GET /admin/notifications/deliveries`) and each channel's health line ([`health`], shown with
//! the channel's settings by `channel_settings`).
//!
//! Both only read `notification_deliveries` (the outbox, which is also the log: migration 0008);
//! writing it belongs to the outbox and the delivery worker. Every query here walks one of that
//! table's indexes in order, so a page or a health line costs the same however long the log is
//! (the tests check the query plans).

use axum::extract::{Query, State};
use axum::http::Method;
use rusqlite::{Connection, Row};
use serde::{Deserialize, Serialize};

use super::channel_settings::Kind;
use crate::auth::AdminUser;
use crate::error::{AppError, AppResult};
use crate::pagination::{PageQuery, finish_page};
use crate::response::ApiResponse;
use crate::routes::{Access, Routes};
use crate::state::AppState;
use crate::time::rfc3339;

/// The statuses a delivery can have (the table's CHECK).
pub const STATUSES: [&str; 5] = ["pending", "sending", "delivered", "failed", "skipped"];

/// The health line's window.
pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// How long after it was created a delivery may still change: the worker gives up after 24 h
/// of retries; twice that leaves room for rate-limit delays. Rows older than this are final, so
/// the health line's 24 h figures only read rows created within the window plus this.
const SETTLE_MS: i64 = 2 * DAY_MS;

/// One row of the delivery log.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: String,
    pub notification_id: String,
    pub user_id: String,
    pub username: String,
    pub channel: String,
    pub event: String,
    /// The notification's title.
    pub title: String,
    pub status: String,
    pub attempts: i64,
    /// How many later rows folded into this one (repeated service flaps).
    pub collapsed: i64,
    /// When the worker tries next; `null` once the row is final (delivered, failed, skipped).
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
    /// `created_at` as stored (Unix ms): the sort key.
    #[serde(skip)]
    pub created_at_ms: i64,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    let status: String = row.get(7)?;
    let next_attempt_at: i64 = row.get(10)?;
    let created_at_ms: i64 = row.get(12)?;
    let delivered_at: Option<i64> = row.get(13)?;
    let waiting = matches!(status.as_str(), "pending" | "sending");
    Ok(Delivery {
        id: row.get(0)?,
        notification_id: row.get(1)?,
        user_id: row.get(2)?,
        username: row.get(3)?,
        channel: row.get(4)?,
        event: row.get(5)?,
        title: row.get(6)?,
        status,
        attempts: row.get(8)?,
        collapsed: row.get(9)?,
        next_attempt_at: waiting.then(|| rfc3339(next_attempt_at)),
        last_error: row.get(11)?,
        created_at: rfc3339(created_at_ms),
        delivered_at: delivered_at.map(rfc3339),
        created_at_ms,
    })
}

/// The log's filters (already checked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub status: Option<String>,
    pub channel: Option<String>,
}

impl Filter {
    /// The cursor scope: a cursor made for one filter is refused by another.
    fn scope(&self) -> String {
        format!(
            "notification_deliveries|{}|{}",
            self.status.as_deref().unwrap_or(""),
            self.channel.as_deref().unwrap_or("")
        )
    }
}

/// The page query for `filter`, newest first, strictly after `(?1, ?2)` = `(created_at, id)`,
/// status `?3` and channel `?4` when filtered. Each filter has an index that starts with it and
/// continues with `(created_at, id)`, so SQLite walks it backwards and stops after `limit` rows;
/// the joins are lookups by primary key.
fn log_sql(filter: &Filter, limit: u32) -> String {
    let mut conditions = Vec::new();
    if filter.status.is_some() {
        conditions.push("d.status = ?3");
    }
    if filter.channel.is_some() {
        conditions.push("d.channel = ?4");
    }
    conditions.push("(d.created_at, d.id) < (?1, ?2)");
    // The limit goes into the text: a bound LIMIT makes SQLite re-prepare on every execution.
    format!(
        "SELECT d.id, d.notification_id, d.user_id, coalesce(u.username, ''), d.channel, d.event,
                coalesce(n.title, ''), d.status, d.attempts, d.collapsed, d.next_attempt_at,
                d.last_error, d.created_at, d.delivered_at
           FROM notification_deliveries AS d
           LEFT JOIN notifications AS n ON n.id = d.notification_id
           LEFT JOIN users AS u ON u.id = d.user_id
          WHERE {}
          ORDER BY d.created_at DESC, d.id DESC
          LIMIT {limit}",
        conditions.join(" AND ")
    )
}

/// A page of the delivery log, newest first, strictly after `before` (`(i64::MAX, "")` for the
/// first page).
pub fn list(
    conn: &Connection,
    filter: &Filter,
    before: (i64, &str),
    limit: u32,
) -> AppResult<Vec<Delivery>> {
    let mut stmt = conn.prepare_cached(&log_sql(filter, limit))?;
    // Unused numbered parameters are simply left unbound.
    let mut params: Vec<(usize, rusqlite::types::Value)> =
        vec![(1, before.0.into()), (2, before.1.to_owned().into())];
    if let Some(status) = &filter.status {
        params.push((3, status.clone().into()));
    }
    if let Some(channel) = &filter.channel {
        params.push((4, channel.clone().into()));
    }
    for (index, value) in params {
        stmt.raw_bind_parameter(index, value)?;
    }
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(from_row(row)?);
    }
    Ok(out)
}

/// A channel's health line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// Waiting to be sent (including retries).
    pub pending: i64,
    /// Of those, the ones that failed at least once and wait for another attempt.
    pub retrying: i64,
    #[serde(rename = "delivered24h")]
    pub delivered_24h: i64,
    /// Given up on (permanent failures and retries that ran out) in the last 24 h.
    #[serde(rename = "failed24h")]
    pub failed_24h: i64,
    pub last_delivered_at: Option<String>,
    pub last_failed_at: Option<String>,
    /// The newest error an attempt got (a retrying row's or a failed one's).
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
}

// `+channel`: walk the (few) pending rows by status, not the channel's whole history.
const HEALTH_PENDING: &str = "SELECT count(*), coalesce(sum(attempts > 0), 0)
       FROM notification_deliveries WHERE status = ?2 AND +channel = ?1";

const HEALTH_WINDOW: &str = "SELECT
        coalesce(sum(status = 'delivered' AND delivered_at >= ?3), 0),
        coalesce(sum(status = 'failed' AND updated_at >= ?3), 0),
        max(CASE WHEN status = 'delivered' THEN delivered_at END),
        max(CASE WHEN status = 'failed' THEN updated_at END)
       FROM notification_deliveries WHERE channel = ?1 AND created_at >= ?2";

// SQLite takes the bare columns of an aggregate query with a single max() from the row that
// has the maximum: the error of the newest failed attempt, with no sort.
const HEALTH_LAST_ERROR: &str = "SELECT last_error, max(updated_at)
       FROM notification_deliveries
      WHERE channel = ?1 AND created_at >= ?2 AND last_error IS NOT NULL
        AND status IN ('pending', 'sending', 'failed')";

/// Beyond the window (a quiet channel): the newest row of a status.
const HEALTH_NEWEST: &str = "SELECT delivered_at, updated_at, last_error
       FROM notification_deliveries WHERE channel = ?1 AND status = ?2
      ORDER BY created_at DESC, id DESC LIMIT 1";

/// `(delivered_at, updated_at, last_error)` of a channel's newest row of one status.
type Newest = (Option<i64>, i64, Option<String>);

/// The health line of `kind` at `now_ms`.
pub fn health(conn: &Connection, kind: Kind, now_ms: i64) -> AppResult<Health> {
    let channel = kind.as_str();
    let since = now_ms.saturating_sub(DAY_MS);
    let created_since = since.saturating_sub(SETTLE_MS);
    let (pending, retrying) = conn
        .prepare_cached(HEALTH_PENDING)?
        .query_row(rusqlite::params![channel, "pending"], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })?;
    let (delivered_24h, failed_24h, mut last_delivered, mut last_failed) = conn
        .prepare_cached(HEALTH_WINDOW)?
        .query_row(rusqlite::params![channel, created_since, since], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        })?;
    let (mut last_error, mut last_error_at) = conn
        .prepare_cached(HEALTH_LAST_ERROR)?
        .query_row(rusqlite::params![channel, created_since], |r| {
            Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<i64>>(1)?))
        })?;
    let newest = |status: &str| -> AppResult<Option<Newest>> {
        use rusqlite::OptionalExtension;
        Ok(conn
            .prepare_cached(HEALTH_NEWEST)?
            .query_row(rusqlite::params![channel, status], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?)
    };
    if last_delivered.is_none() {
        last_delivered = newest("delivered")?.and_then(|(at, _, _)| at);
    }
    if (last_failed.is_none() || last_error.is_none())
        && let Some((_, at, error)) = newest("failed")?
    {
        last_failed = last_failed.or(Some(at));
        if last_error.is_none() && error.is_some() {
            last_error = error;
            last_error_at = Some(at);
        }
    }
    Ok(Health {
        pending,
        retrying,
        delivered_24h,
        failed_24h,
        last_delivered_at: last_delivered.map(rfc3339),
        last_failed_at: last_failed.map(rfc3339),
        last_error_at: last_error.as_ref().and(last_error_at).map(rfc3339),
        last_error,
    })
}

/// The delivery log route (under `/api/v1`).
pub fn routes() -> Routes {
    Routes::new().add(
        Method::GET,
        "/admin/notifications/deliveries",
        Access::Admin,
        list_deliveries,
    )
}

/// `?status=&channel=&limit=&cursor=`.
#[derive(Debug, Deserialize)]
pub struct DeliveriesQuery {
    status: Option<String>,
    channel: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn parse_filter(query: &DeliveriesQuery) -> AppResult<Filter> {
    let mut errors = Vec::new();
    let given = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
    let status = given(&query.status);
    if let Some(s) = &status
        && !STATUSES.contains(&s.as_str())
    {
        errors.push(("status", format!("must be one of {}", STATUSES.join(", "))));
    }
    let channel = given(&query.channel);
    if let Some(c) = &channel
        && Kind::parse(c).is_none()
    {
        let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        errors.push(("channel", format!("must be one of {}", kinds.join(", "))));
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    Ok(Filter { status, channel })
}

/// `GET /admin/notifications/deliveries`: the delivery log, newest first, optionally one status
/// and/or one channel. Meta `{limit, nextCursor}`.
pub async fn list_deliveries(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(query): Query<DeliveriesQuery>,
) -> AppResult<ApiResponse> {
    let filter = parse_filter(&query)?;
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    let limit = page.limit()?;
    let scope = filter.scope();
    let before: (i64, String) = match page.cursor() {
        Some(c) => state.cursors().decode(&scope, c)?,
        // Sorts after every row: ids are never empty.
        None => (i64::MAX, String::new()),
    };
    let query_filter = filter.clone();
    let rows = state
        .db()
        .read(move |conn| list(conn, &query_filter, (before.0, &before.1), limit + 1))
        .await?;
    let (rows, next_cursor) = finish_page(state.cursors(), &scope, rows, limit, |d| {
        (d.created_at_ms, d.id.clone())
    });
    Ok(ApiResponse::with_meta(
        &rows,
        &crate::response::PageMeta { limit, next_cursor },
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::admin::testing::{START_MS, TestApp};

    /// Inserts `n` deliveries per channel and status, each for its own notification, spread over
    /// 30 users (the worker does not exist on this branch, so the rows go in with SQL).
    async fn seed(t: &TestApp, n: i64) {
        let mut users = Vec::new();
        for u in 0..30 {
            users.push(
                t.add_user(&format!("u{u}"), None, "user", "active", START_MS)
                    .await,
            );
        }
        t.state
            .db()
            .write(move |tx| {
                let mut i = 0;
                for kind in Kind::ALL {
                    for status in STATUSES {
                        for _ in 0..n {
                            i += 1;
                            let user = &users[usize::try_from(i).unwrap() % users.len()];
                            let at = START_MS - i * 60_000;
                            let made =
                                crate::notifications::create(tx, user, "test", "T", "m", None, at)?;
                            tx.execute(
                                "INSERT INTO notification_deliveries (id, notification_id,
                                     user_id, channel, event, status, next_attempt_at,
                                     created_at, updated_at)
                                 VALUES (?1, ?2, ?3, ?4, 'test', ?5, ?6, ?6, ?6)",
                                rusqlite::params![
                                    format!("d{i:05}"),
                                    made.id,
                                    user,
                                    kind.as_str(),
                                    status,
                                    at
                                ],
                            )?;
                        }
                    }
                }
                Ok(())
            })
            .await
            .unwrap();
    }

    fn plan(conn: &Connection, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        // The plan does not depend on the values; any will do.
        let params = vec!["x"; stmt.parameter_count()];
        stmt.query_map(rusqlite::params_from_iter(params), |r| {
            r.get::<_, String>(3)
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    #[tokio::test]
    async fn log_and_health_queries_use_the_indexes_without_sorting() {
        let t = TestApp::new().await;
        seed(&t, 20).await;
        let plans = t
            .state
            .db()
            .run(|conn| {
                // With statistics too, as after the ANALYZE on migration and shutdown.
                conn.execute_batch("ANALYZE")?;
                let mut statements = Vec::new();
                for status in [None, Some("failed".to_owned())] {
                    for channel in [None, Some("ntfy".to_owned())] {
                        let filter = Filter {
                            status: status.clone(),
                            channel,
                        };
                        statements.push(log_sql(&filter, 21));
                    }
                }
                statements.extend(
                    [
                        HEALTH_PENDING,
                        HEALTH_WINDOW,
                        HEALTH_LAST_ERROR,
                        HEALTH_NEWEST,
                    ]
                    .map(str::to_owned),
                );
                Ok(statements
                    .into_iter()
                    .map(|sql| {
                        let lines = plan(conn, &sql);
                        (sql, lines)
                    })
                    .collect::<Vec<_>>())
            })
            .await
            .unwrap();
        for (sql, lines) in plans {
            assert!(
                lines.iter().any(|l| l.contains("notification_deliveries")),
                "{sql}: {lines:?}"
            );
            for line in &lines {
                assert!(!line.starts_with("SCAN"), "{sql}: {lines:?}");
                assert!(!line.contains("TEMP B-TREE"), "{sql}: {lines:?}");
                if line.starts_with("SEARCH") {
                    assert!(line.contains("INDEX"), "{sql}: {lines:?}");
                }
            }
        }
    }

    #[tokio::test]
    async fn the_health_line_counts_the_last_day() {
        let t = TestApp::new().await;
        let user = t.admin_id.clone();
        let now = START_MS + 10 * DAY_MS;
        t.state
            .db()
            .write(move |tx| {
                let made =
                    crate::notifications::create(tx, &user, "test", "T", "m", None, START_MS)?;
                // (id, channel, status, attempts, created, updated, delivered, error)
                type Seeded<'a> = (
                    &'a str,
                    &'a str,
                    &'a str,
                    i64,
                    i64,
                    i64,
                    Option<i64>,
                    Option<&'a str>,
                );
                let rows: [Seeded<'_>; 9] = [
                    ("a", "ntfy", "pending", 0, now - 10, now - 10, None, None),
                    (
                        "b",
                        "ntfy",
                        "pending",
                        2,
                        now - 3_600_000,
                        now - 60_000,
                        None,
                        Some("HTTP 500"),
                    ),
                    (
                        "c",
                        "ntfy",
                        "delivered",
                        1,
                        now - 7_200_000,
                        now - 7_200_000,
                        Some(now - 7_200_000),
                        None,
                    ),
                    (
                        "d",
                        "ntfy",
                        "delivered",
                        1,
                        now - 2 * DAY_MS,
                        now - 2 * DAY_MS,
                        Some(now - 2 * DAY_MS),
                        None,
                    ),
                    (
                        "e",
                        "ntfy",
                        "failed",
                        1,
                        now - 5_000_000,
                        now - 4_000_000,
                        None,
                        Some("HTTP 404"),
                    ),
                    (
                        "f",
                        "ntfy",
                        "failed",
                        9,
                        now - 3 * DAY_MS,
                        now - 2 * DAY_MS - 5,
                        None,
                        Some("old"),
                    ),
                    // Created before the window, delivered inside it after retries.
                    (
                        "g",
                        "ntfy",
                        "delivered",
                        5,
                        now - DAY_MS - 3_600_000,
                        now - 1_000,
                        Some(now - 1_000),
                        Some("HTTP 502"),
                    ),
                    (
                        "h",
                        "email",
                        "delivered",
                        1,
                        now - 100,
                        now - 100,
                        Some(now - 100),
                        None,
                    ),
                    ("i", "ntfy", "skipped", 0, now - 100, now - 100, None, None),
                ];
                for (id, channel, status, attempts, created, updated, delivered, error) in rows {
                    tx.execute(
                        "INSERT INTO notification_deliveries (id, notification_id, user_id,
                             channel, event, status, attempts, next_attempt_at, created_at,
                             updated_at, delivered_at, last_error)
                         VALUES (?1, ?2, ?3, ?4, 'test', ?5, ?6, ?7, ?7, ?8, ?9, ?10)",
                        rusqlite::params![
                            id, made.id, user, channel, status, attempts, created, updated,
                            delivered, error
                        ],
                    )?;
                }
                Ok(())
            })
            .await
            .unwrap();
        let (ntfy, gotify, email) = t
            .state
            .db()
            .run(move |conn| {
                Ok((
                    health(conn, Kind::Ntfy, now)?,
                    health(conn, Kind::Gotify, now)?,
                    health(conn, Kind::Email, now)?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(
            ntfy,
            Health {
                pending: 2,
                retrying: 1,
                delivered_24h: 2,
                failed_24h: 1,
                last_delivered_at: Some(rfc3339(now - 1_000)),
                last_failed_at: Some(rfc3339(now - 4_000_000)),
                last_error: Some("HTTP 500".into()),
                last_error_at: Some(rfc3339(now - 60_000)),
            }
        );
        assert_eq!(gotify, Health::default());
        assert_eq!(email.delivered_24h, 1);
        assert_eq!(email.last_error, None);

        // A week later nothing is recent; the newest outcomes still show.
        let later = now + 7 * DAY_MS;
        let quiet = t
            .state
            .db()
            .run(move |conn| health(conn, Kind::Ntfy, later))
            .await
            .unwrap();
        assert_eq!(quiet.delivered_24h, 0);
        assert_eq!(quiet.failed_24h, 0);
        assert_eq!(quiet.pending, 2);
        // The newest delivered row by creation.
        assert_eq!(quiet.last_delivered_at, Some(rfc3339(now - 7_200_000)));
        assert_eq!(quiet.last_failed_at, Some(rfc3339(now - 4_000_000)));
        assert_eq!(quiet.last_error.as_deref(), Some("HTTP 404"));
        assert_eq!(quiet.last_error_at, Some(rfc3339(now - 4_000_000)));
    }
}
