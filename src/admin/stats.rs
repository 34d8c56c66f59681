//! `GET /admin/performance` (the request monitor's window plus memory, cache and pool figures,
//! SPEC section 10) and `GET /admin/stats` (counts for the admin overview).
//!
//! Every count comes from an index: grouped counts walk a covering index in its order (no
//! sort), the per-day counts are 30 range counts on `media_requests_created`. The one exception
//! is the downloaded bytes, which read every `youtube_downloads` row (no index carries
//! `bytes_done`); that table is small next to `media_requests`.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::auth::AdminUser;
use crate::error::{AppError, AppResult};
use crate::monitor::{PerformanceStats, process_rss_bytes};
use crate::response::ApiResponse;
use crate::state::AppState;
use crate::time::rfc3339;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Days in `requests.perDay`, today included.
pub const PER_DAY_DAYS: i64 = 30;

/// Default and largest `?window=` of `/admin/performance`, in minutes.
const DEFAULT_WINDOW: u32 = 5;
const MAX_WINDOW: u32 = 60;

/// One cache's figures.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheFigures {
    pub hits: u64,
    pub misses: u64,
    pub hit_rate: f64,
}

/// Every cache by name.
fn cache_figures(state: &AppState) -> BTreeMap<&'static str, CacheFigures> {
    state
        .cache_stats()
        .into_iter()
        .map(|c| {
            (
                c.name,
                CacheFigures {
                    hits: c.hits,
                    misses: c.misses,
                    hit_rate: c.hit_rate,
                },
            )
        })
        .collect()
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Memory {
    rss_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PoolFigures {
    pool_size: u32,
    idle: u32,
    wait_ms: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Performance {
    #[serde(flatten)]
    requests: PerformanceStats,
    memory: Memory,
    cache: BTreeMap<&'static str, CacheFigures>,
    db: PoolFigures,
}

/// `?window=` in minutes.
#[derive(Debug, Deserialize)]
pub struct PerformanceQuery {
    window: Option<String>,
}

/// `GET /admin/performance?window=` (minutes, 1-60, default 5).
pub async fn get_performance(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(query): Query<PerformanceQuery>,
) -> AppResult<ApiResponse> {
    let window = match query.window.as_deref() {
        None | Some("") => DEFAULT_WINDOW,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|w| (1..=MAX_WINDOW).contains(w))
            .ok_or_else(|| {
                AppError::validation([(
                    "window",
                    format!("must be a whole number of minutes from 1 to {MAX_WINDOW}"),
                )])
            })?,
    };
    let pool = state.db().stats();
    let body = Performance {
        requests: state.monitor().stats(window, state.clock().now_ms()),
        memory: Memory {
            rss_bytes: process_rss_bytes(),
        },
        cache: cache_figures(&state),
        db: PoolFigures {
            pool_size: pool.pool_size,
            idle: pool.idle,
            wait_ms: pool.wait_ms,
        },
    };
    Ok(ApiResponse::ok(&body))
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct UserCounts {
    total: i64,
    active: i64,
    suspended: i64,
    /// Active admins.
    admins: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DayCount {
    /// `YYYY-MM-DD` (UTC).
    date: String,
    count: i64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestCounts {
    total: i64,
    by_status: BTreeMap<String, i64>,
    by_type: BTreeMap<String, i64>,
    per_day: Vec<DayCount>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct DownloadCounts {
    by_status: BTreeMap<String, i64>,
    bytes: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorCounts {
    last24h: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DatabaseSize {
    size_bytes: u64,
    wal_bytes: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Stats {
    users: UserCounts,
    requests: RequestCounts,
    downloads: DownloadCounts,
    errors: ErrorCounts,
    database: DatabaseSize,
    cache: BTreeMap<&'static str, CacheFigures>,
    uptime_seconds: u64,
    version: &'static str,
}

/// Users by status (covering `users_status_created`).
pub const USERS_BY_STATUS: &str = "SELECT status, count(*) FROM users GROUP BY status";
/// Active admins (`users_status_created`, then the role).
pub const ACTIVE_ADMINS: &str =
    "SELECT count(*) FROM users WHERE status = 'active' AND role = 'admin'";
/// Requests by status (covering `media_requests_status_created`).
pub const REQUESTS_BY_STATUS: &str = "SELECT status, count(*) FROM media_requests GROUP BY status";
/// Requests by type (covering `media_requests_type_status`).
pub const REQUESTS_BY_TYPE: &str =
    "SELECT media_type, count(*) FROM media_requests GROUP BY media_type";
/// Requests per UTC day from `?1` to `?2` (day starts): one range count per day on
/// `media_requests_created`, so empty days answer 0 and nothing is sorted.
pub const REQUESTS_PER_DAY: &str = "WITH RECURSIVE days(start) AS (
         SELECT ?1 UNION ALL SELECT start + 86400000 FROM days WHERE start < ?2
     )
     SELECT start, (SELECT count(*) FROM media_requests
                    WHERE created_at >= days.start AND created_at < days.start + 86400000)
     FROM days";
/// Downloads by status and all bytes downloaded (walks `youtube_downloads_status_created`, reading
/// each row for `bytes_done`).
pub const DOWNLOADS_BY_STATUS: &str =
    "SELECT status, count(*), total(bytes_done) FROM youtube_downloads GROUP BY status";

const REQUEST_STATUSES: [&str; 7] = [
    "pending",
    "approved",
    "processing",
    "partially_available",
    "available",
    "declined",
    "failed",
];
const MEDIA_TYPES: [&str; 2] = ["movie", "tv"];
const DOWNLOAD_STATUSES: [&str; 5] = ["queued", "downloading", "completed", "failed", "cancelled"];

/// Runs a `SELECT key, count(*) ... GROUP BY key` into a map that lists every known key.
fn grouped(conn: &Connection, sql: &str, known: &[&str]) -> AppResult<BTreeMap<String, i64>> {
    let mut map: BTreeMap<String, i64> = known.iter().map(|k| ((*k).to_owned(), 0)).collect();
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (key, count) = row?;
        map.insert(key, count);
    }
    Ok(map)
}

fn user_counts(conn: &Connection) -> AppResult<UserCounts> {
    let by_status = grouped(conn, USERS_BY_STATUS, &["active", "suspended"])?;
    let active = by_status.get("active").copied().unwrap_or(0);
    let suspended = by_status.get("suspended").copied().unwrap_or(0);
    Ok(UserCounts {
        total: by_status.values().sum(),
        active,
        suspended,
        admins: conn
            .prepare_cached(ACTIVE_ADMINS)?
            .query_row([], |r| r.get(0))?,
    })
}

fn request_counts(conn: &Connection, now_ms: i64) -> AppResult<RequestCounts> {
    let by_status = grouped(conn, REQUESTS_BY_STATUS, &REQUEST_STATUSES)?;
    let by_type = grouped(conn, REQUESTS_BY_TYPE, &MEDIA_TYPES)?;
    let today = now_ms.div_euclid(DAY_MS) * DAY_MS;
    let first = today - (PER_DAY_DAYS - 1) * DAY_MS;
    let mut stmt = conn.prepare_cached(REQUESTS_PER_DAY)?;
    let per_day = stmt
        .query_map([first, today], |r| {
            let start: i64 = r.get(0)?;
            Ok(DayCount {
                date: rfc3339(start).chars().take(10).collect(),
                count: r.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RequestCounts {
        total: by_status.values().sum(),
        by_status,
        by_type,
        per_day,
    })
}

fn download_counts(conn: &Connection) -> AppResult<DownloadCounts> {
    let mut counts = DownloadCounts {
        by_status: DOWNLOAD_STATUSES
            .iter()
            .map(|s| ((*s).to_owned(), 0))
            .collect(),
        bytes: 0,
    };
    let mut stmt = conn.prepare_cached(DOWNLOADS_BY_STATUS)?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, f64>(2)?,
        ))
    })?;
    for row in rows {
        let (status, count, bytes) = row?;
        counts.by_status.insert(status, count);
        // total() is a float so it cannot overflow; byte counts stay far below 2^53.
        counts.bytes += bytes as i64;
    }
    Ok(counts)
}

/// `GET /admin/stats`.
pub async fn get_stats(State(state): State<AppState>, _admin: AdminUser) -> AppResult<ApiResponse> {
    let now = state.clock().now_ms();
    let (users, requests, downloads, errors_24h) = state
        .db()
        .run(move |conn| {
            // One read transaction: all counts describe the same moment.
            let tx = conn.transaction()?;
            let out = (
                user_counts(&tx)?,
                request_counts(&tx, now)?,
                download_counts(&tx)?,
                crate::error_log::count_since(&tx, now - DAY_MS)?,
            );
            tx.finish()?;
            Ok(out)
        })
        .await?;
    let (size_bytes, wal_bytes) = state.db().file_sizes();
    let body = Stats {
        users,
        requests,
        downloads,
        errors: ErrorCounts {
            last24h: errors_24h,
        },
        database: DatabaseSize {
            size_bytes,
            wal_bytes,
        },
        cache: cache_figures(&state),
        uptime_seconds: state.uptime().as_secs(),
        version: crate::VERSION,
    };
    Ok(ApiResponse::ok(&body))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use axum::http::StatusCode;
    use rusqlite::types::Value as Sql;

    use super::super::testing::{START_MS, TestApp};
    use super::*;

    #[tokio::test]
    async fn performance_window_is_validated() {
        let t = TestApp::new().await;
        for bad in ["0", "61", "abc", "-1", "1.5"] {
            let r = t
                .admin_get(&format!("/api/v1/admin/performance?window={bad}"))
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
            assert!(r.json["error"]["details"]["fields"]["window"].is_string());
        }
        let r = t.admin_get("/api/v1/admin/performance?window=60").await;
        assert_eq!(r.status, StatusCode::OK);
        let r = t.admin_get("/api/v1/admin/performance").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        let d = &r.json["data"];
        // The requests above (and the sign-in) are in the window.
        assert!(d["totalRequests"].as_u64().unwrap() >= 7, "{d}");
        for key in [
            "requestsPerSecond",
            "averageMs",
            "p50Ms",
            "p95Ms",
            "p99Ms",
            "slowRequests",
            "errorRate",
            "statusCounts",
            "topSlowPaths",
        ] {
            assert!(d.get(key).is_some(), "{key} in {d}");
        }
        assert!(d["statusCounts"]["400"].as_u64().unwrap() >= 5);
        assert!(d["memory"]["rssBytes"].as_u64().unwrap() > 0);
        assert!(d["cache"]["sessions"]["hitRate"].is_number(), "{d}");
        assert!(d["db"]["poolSize"].as_u64().unwrap() > 0);
        assert!(d["db"]["idle"].is_number() && d["db"]["waitMs"].is_number());
    }

    #[tokio::test]
    async fn stats_count_what_exists() {
        let t = TestApp::new().await;
        t.add_user("u1", None, "user", "active", START_MS).await;
        let u2 = t.add_user("u2", None, "admin", "suspended", START_MS).await;
        let day = DAY_MS;
        // Two requests today, one yesterday, one 40 days ago (outside perDay).
        // Different titles: one active request per title is all the schema allows.
        for (tmdb_id, (id, ty, status, at)) in [
            ("a", "movie", "pending", START_MS),
            ("b", "tv", "available", START_MS - 1000),
            ("c", "movie", "pending", START_MS - day),
            ("d", "movie", "declined", START_MS - 40 * day),
        ]
        .into_iter()
        .enumerate()
        {
            t.exec(
                "INSERT INTO media_requests (id, user_id, title, media_type, tmdb_id, status,
                                             created_at, updated_at)
                 VALUES (?1, ?2, 'T', ?3, ?6, ?4, ?5, ?5)",
                vec![
                    Sql::Text(id.into()),
                    Sql::Text(u2.clone()),
                    Sql::Text(ty.into()),
                    Sql::Text(status.into()),
                    Sql::Integer(at),
                    Sql::Integer(tmdb_id as i64 + 1),
                ],
            )
            .await;
        }
        t.exec(
            "INSERT INTO youtube_downloads (id, user_id, url, kind, status, bytes_done, created_at)
             VALUES ('d1', ?1, 'u', 'video', 'completed', 1500, 1),
                    ('d2', ?1, 'u', 'video', 'failed', 20, 1)",
            vec![Sql::Text(u2.clone())],
        )
        .await;
        t.exec(
            "INSERT INTO error_logs (correlation_id, error_code, error_message, created_at)
             VALUES ('x', 'E', 'm', ?1), ('y', 'E', 'm', ?2)",
            vec![
                Sql::Integer(START_MS - 1000),
                Sql::Integer(START_MS - 2 * day),
            ],
        )
        .await;

        let r = t.admin_get("/api/v1/admin/stats").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        let d = &r.json["data"];
        assert_eq!(
            d["users"],
            serde_json::json!({"total": 3, "active": 2, "suspended": 1, "admins": 1})
        );
        assert_eq!(d["requests"]["total"], 4);
        assert_eq!(d["requests"]["byStatus"]["pending"], 2);
        assert_eq!(d["requests"]["byStatus"]["approved"], 0);
        assert_eq!(d["requests"]["byType"]["movie"], 3);
        assert_eq!(d["requests"]["byType"]["tv"], 1);
        let per_day = d["requests"]["perDay"].as_array().unwrap();
        assert_eq!(per_day.len(), 30);
        let today = &per_day[29];
        assert_eq!(today["date"], &crate::time::rfc3339(START_MS)[..10]);
        // START_MS - 1000 is still the same UTC day at this START_MS.
        assert_eq!(today["count"], 2);
        assert_eq!(per_day[28]["count"], 1);
        assert_eq!(
            per_day
                .iter()
                .map(|p| p["count"].as_i64().unwrap())
                .sum::<i64>(),
            3
        );
        assert_eq!(d["downloads"]["byStatus"]["completed"], 1);
        assert_eq!(d["downloads"]["byStatus"]["queued"], 0);
        assert_eq!(d["downloads"]["bytes"], 1520);
        assert_eq!(d["errors"]["last24h"], 1);
        assert_eq!(d["database"]["sizeBytes"], 0, "memory database");
        assert!(d["cache"]["sessions"].is_object());
        assert!(d["uptimeSeconds"].is_u64());
        assert_eq!(d["version"], crate::VERSION);
    }

    /// Every statement of the admin pages, with what EXPLAIN QUERY PLAN may show. The only
    /// accepted full pass is the downloads one (see the module documentation).
    #[tokio::test]
    async fn admin_queries_use_indexes() {
        let db = crate::db::Db::open_memory().unwrap();
        let users = super::super::users::list_sql(
            &[
                crate::users::Status::Active,
                crate::users::Status::Suspended,
            ],
            21,
        );
        let one_status = super::super::users::list_sql(&[crate::users::Status::Active], 21);
        let statements: Vec<String> = vec![
            users,
            one_status,
            super::super::users::OTHER_ACTIVE_ADMINS.into(),
            format!("{}20", crate::error_log::LIST),
            format!("{}20", crate::error_log::BY_CORRELATION),
            crate::error_log::COUNT_SINCE.into(),
            USERS_BY_STATUS.into(),
            ACTIVE_ADMINS.into(),
            REQUESTS_BY_STATUS.into(),
            REQUESTS_BY_TYPE.into(),
            REQUESTS_PER_DAY.into(),
            DOWNLOADS_BY_STATUS.into(),
        ];
        let plans = db
            .run(move |conn| {
                conn.execute_batch("ANALYZE")?;
                let mut out = Vec::new();
                for sql in statements {
                    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                    let nulls = vec![rusqlite::types::Value::Null; stmt.parameter_count()];
                    let lines = stmt
                        .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))?
                        .collect::<Result<Vec<_>, _>>()?;
                    out.push((sql, lines));
                }
                Ok(out)
            })
            .await
            .unwrap();
        for (sql, lines) in plans {
            for line in &lines {
                assert!(!line.contains("TEMP B-TREE"), "{line}\n{sql}");
                let scan_of_table = line.starts_with("SCAN ")
                    && !line.contains("USING COVERING INDEX")
                    && !line.starts_with("SCAN days")
                    && !line.starts_with("SCAN CONSTANT ROW");
                let allowed = sql == DOWNLOADS_BY_STATUS
                    && line.contains("USING INDEX youtube_downloads_status_created");
                assert!(!scan_of_table || allowed, "{line}\n{sql}");
            }
        }
    }
}
