//! The `error_logs` table: every 5xx the edge answers is queued by `AppState::log_error` and
//! written here in batches, off the request path, so a failing request is not slowed (or failed
//! again) by its own bookkeeping. The dashboard's own error reports are stored here too
//! ([`record_client_errors`]: a quota per user, repeats counted on one row), and the admin pages read the table through [`list`],
//! [`by_correlation`] and [`count_since`].

use rusqlite::{Connection, OptionalExtension, Row};
use serde::Serialize;
use tokio::sync::mpsc;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{AppResult, ErrorCode};
use crate::http::ErrorLogEntry;
use crate::state::AppState;
use crate::time::rfc3339;

/// The 5xx codes that are counted rather than stored row by row: the caller reached something
/// not set up, or an upstream failed. Nobody signed in: never a row (a stranger can cause as many
/// as they like). A signed-in user: at most one row per code every [`SIGNED_IN_ROW_EVERY_MS`]
/// (the first shows the admin what happened; a user repeating a failing search or image must not
/// fill the disk). `/metrics` shows what was counted instead (`medianest_unlogged_errors_total`).
pub const UNLOGGED_CODES: [ErrorCode; 4] = [
    ErrorCode::ServiceNotConfigured,
    ErrorCode::ServiceUnavailable,
    ErrorCode::UpstreamError,
    ErrorCode::UpstreamTimeout,
];

/// How often a signed-in user's failures of one [`UNLOGGED_CODES`] code are written as a row.
pub const SIGNED_IN_ROW_EVERY_MS: i64 = 60_000;

/// Users remembered at most; past it, entries older than the interval are dropped first, then
/// the whole map (a few extra rows, never an unbounded map).
const MAX_REMEMBERED: usize = 10_000;

/// Counts of the 5xx of [`UNLOGGED_CODES`] not written as rows, in its order, and when each
/// signed-in user last had one written.
#[derive(Debug, Default)]
pub struct UnloggedErrors {
    counts: [AtomicU64; UNLOGGED_CODES.len()],
    last_row: std::sync::Mutex<std::collections::HashMap<(String, usize), i64>>,
}

impl UnloggedErrors {
    /// Whether a 5xx of `code` for `user` is counted instead of written: true for every
    /// anonymous one of [`UNLOGGED_CODES`], and for a signed-in user's when one of that code was
    /// written for them less than [`SIGNED_IN_ROW_EVERY_MS`] ago.
    pub fn count(&self, code: ErrorCode, user: Option<&str>, now_ms: i64) -> bool {
        let Some(i) = UNLOGGED_CODES.iter().position(|c| *c == code) else {
            return false;
        };
        if let Some(user) = user {
            let mut last = self.last_row.lock().unwrap_or_else(|e| e.into_inner());
            let key = (user.to_owned(), i);
            let due = last
                .get(&key)
                .is_none_or(|at| now_ms - at >= SIGNED_IN_ROW_EVERY_MS);
            if due {
                if last.len() >= MAX_REMEMBERED {
                    last.retain(|_, at| now_ms - *at < SIGNED_IN_ROW_EVERY_MS);
                    if last.len() >= MAX_REMEMBERED {
                        last.clear();
                    }
                }
                last.insert(key, now_ms);
                return false;
            }
        }
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        true
    }

    /// `(code, count)` of every counted code.
    pub fn snapshot(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        UNLOGGED_CODES
            .iter()
            .zip(&self.counts)
            .map(|(code, n)| (code.as_str(), n.load(Ordering::Relaxed)))
    }
}

/// Most entries written in one transaction.
const BATCH: usize = 64;

/// Drains the queue until shutdown, then writes what is left.
pub async fn run_writer(state: AppState, mut rx: mpsc::Receiver<ErrorLogEntry>) {
    let token = state.shutdown_token().clone();
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    return;
                }
            }
            () = token.cancelled() => {
                while let Ok(entry) = rx.try_recv() {
                    batch.push(entry);
                }
                if !batch.is_empty() {
                    write_batch(&state, std::mem::take(&mut batch)).await;
                }
                return;
            }
        }
        write_batch(&state, std::mem::take(&mut batch)).await;
    }
}

async fn write_batch(state: &AppState, batch: Vec<ErrorLogEntry>) {
    let count = batch.len();
    let result = state.db().write(move |tx| insert_all(tx, &batch)).await;
    if let Err(e) = result {
        tracing::warn!(error = %e, count, "could not store error log entries");
    }
}

const INSERT: &str = "INSERT INTO error_logs (correlation_id, user_id, error_code, error_message,
                                              request_path, request_method, status_code, metadata,
                                              created_at)
                      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

fn insert_all(conn: &rusqlite::Connection, batch: &[ErrorLogEntry]) -> AppResult<()> {
    let mut stmt = conn.prepare_cached(INSERT)?;
    for e in batch {
        let metadata = e
            .detail
            .as_ref()
            .map(|d| serde_json::json!({ "detail": d }).to_string());
        stmt.execute(rusqlite::params![
            e.correlation_id,
            e.user_id,
            e.code,
            e.message,
            e.path,
            e.method,
            e.status,
            metadata,
            e.at_ms,
        ])?;
    }
    Ok(())
}

/// One error the dashboard reported (`POST /errors/report`), ready to store.
#[derive(Debug, Clone)]
pub struct ClientError {
    pub correlation_id: String,
    pub user_id: String,
    pub code: String,
    pub message: String,
    /// The page the error happened on, else the report endpoint's path.
    pub path: String,
    /// JSON: level, stack, context.
    pub metadata: serde_json::Value,
    pub at_ms: i64,
}

/// The request method stored for errors the dashboard reported.
pub const CLIENT_METHOD: &str = "CLIENT";

/// The window of the per-user report quota and of de-duplication.
pub const CLIENT_WINDOW_MS: i64 = 3600 * 1000;

/// Rows the user's reports made in the window, and when the oldest of them was made (walks
/// `error_logs_user`).
const CLIENT_ROWS_SINCE: &str = "SELECT count(*), min(created_at) FROM error_logs
                                  WHERE user_id = ?1 AND request_method = 'CLIENT'
                                    AND created_at > ?2";

/// The row an identical report (same user, code, message and page) made in the window.
const CLIENT_SAME: &str = "SELECT id FROM error_logs
                            WHERE user_id = ?1 AND request_method = 'CLIENT' AND created_at > ?2
                              AND error_code = ?3 AND error_message = ?4 AND request_path = ?5
                            ORDER BY created_at DESC LIMIT 1";

/// A repeat bumps the row's count and last-seen time (kept in its metadata).
const CLIENT_BUMP: &str = "UPDATE error_logs
                              SET metadata = json_set(coalesce(metadata, '{}'),
                                    '$.occurrences',
                                    coalesce(json_extract(metadata, '$.occurrences'), 1) + ?2,
                                    '$.lastSeen', ?3)
                            WHERE id = ?1";

/// What [`record_client_errors`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    /// New rows.
    pub inserted: usize,
    /// Rows an identical earlier report made that counted these entries.
    pub merged: usize,
    /// Entries recorded (on new rows or counted on earlier ones).
    pub entries: usize,
    /// New entries left out because the user's quota for the window was used up.
    pub over_quota: usize,
    /// When the quota's oldest row leaves the window (ms), if any entry was left out.
    pub free_at_ms: Option<i64>,
}

/// Stores reported client errors (call inside one write transaction; no status code). An entry
/// identical to one the user reported in the last hour (same code, message and page) adds to
/// that row's `occurrences` and `lastSeen` instead of making a row; new rows are made while the
/// user has made fewer than `quota` in the last hour, the rest are left out and counted.
pub fn record_client_errors(
    conn: &Connection,
    errors: &[(ClientError, u32)],
    quota: u32,
    now_ms: i64,
) -> AppResult<Recorded> {
    let mut done = Recorded::default();
    let Some(user_id) = errors.first().map(|(e, _)| e.user_id.as_str()) else {
        return Ok(done);
    };
    let since = now_ms - CLIENT_WINDOW_MS;
    let (mut rows, oldest): (i64, Option<i64>) = conn
        .prepare_cached(CLIENT_ROWS_SINCE)?
        .query_row(rusqlite::params![user_id, since], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let last_seen = rfc3339(now_ms);
    let mut insert = conn.prepare_cached(INSERT)?;
    for (e, times) in errors {
        let same: Option<i64> = conn
            .prepare_cached(CLIENT_SAME)?
            .query_row(
                rusqlite::params![e.user_id, since, e.code, e.message, e.path],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = same {
            conn.prepare_cached(CLIENT_BUMP)?
                .execute(rusqlite::params![id, times, last_seen])?;
            done.merged += 1;
            done.entries += *times as usize;
            continue;
        }
        if rows >= i64::from(quota) {
            done.over_quota += 1;
            done.free_at_ms = Some(oldest.unwrap_or(now_ms) + CLIENT_WINDOW_MS);
            continue;
        }
        let mut metadata = e.metadata.clone();
        if *times > 1
            && let Some(m) = metadata.as_object_mut()
        {
            m.insert("occurrences".into(), (*times).into());
            m.insert("lastSeen".into(), last_seen.clone().into());
        }
        insert.execute(rusqlite::params![
            e.correlation_id,
            e.user_id,
            e.code,
            e.message,
            e.path,
            CLIENT_METHOD,
            None::<i64>,
            metadata.to_string(),
            e.at_ms,
        ])?;
        rows += 1;
        done.inserted += 1;
        done.entries += *times as usize;
    }
    Ok(done)
}

/// An `error_logs` row as the admin pages show it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorLogView {
    pub id: i64,
    pub correlation_id: String,
    pub user_id: Option<String>,
    pub code: String,
    pub message: String,
    pub path: Option<String>,
    pub method: Option<String>,
    pub status_code: Option<i64>,
    pub metadata: Option<serde_json::Value>,
    pub created_at: String,
    /// The sort key, for the page cursor.
    #[serde(skip)]
    pub created_at_ms: i64,
}

impl ErrorLogView {
    /// Reads a row selected as in [`LIST`].
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        let metadata: Option<String> = row.get(8)?;
        let created_at_ms: i64 = row.get(9)?;
        Ok(Self {
            id: row.get(0)?,
            correlation_id: row.get(1)?,
            user_id: row.get(2)?,
            code: row.get(3)?,
            message: row.get(4)?,
            path: row.get(5)?,
            method: row.get(6)?,
            status_code: row.get(7)?,
            // The column is CHECKed json_valid, so this only fails on a hand-edited row.
            metadata: metadata
                .map(|m| serde_json::from_str(&m).unwrap_or(serde_json::Value::String(m))),
            created_at: rfc3339(created_at_ms),
            created_at_ms,
        })
    }
}

/// Newest first: keyset page after `(created_at, id)`; the page size is appended. Walks `error_logs_created` (whose entries
/// end with the rowid, so it also orders by id); a `code` filter is applied on that walk.
pub const LIST: &str =
    "SELECT id, correlation_id, user_id, error_code, error_message, request_path,
                               request_method, status_code, metadata, created_at
                        FROM error_logs
                        WHERE (created_at, id) < (?1, ?2) AND (?3 IS NULL OR error_code = ?3)
                        ORDER BY created_at DESC, id DESC
                        LIMIT ";

/// Every entry of one correlation id in insertion order (the index ends with the rowid); the
/// maximum is appended.
pub const BY_CORRELATION: &str = "SELECT id, correlation_id, user_id, error_code, error_message,
                                         request_path, request_method, status_code, metadata,
                                         created_at
                                  FROM error_logs WHERE correlation_id = ?1
                                  ORDER BY id LIMIT ";

/// Entries since a time.
pub const COUNT_SINCE: &str = "SELECT count(*) FROM error_logs WHERE created_at >= ?1";

/// Up to `fetch` entries older than `before` = `(created_at, id)`, newest first, optionally only
/// those with `code`.
pub fn list(
    conn: &Connection,
    code: Option<&str>,
    before: (i64, i64),
    fetch: u32,
) -> AppResult<Vec<ErrorLogView>> {
    // The limit goes into the text: a bound LIMIT makes SQLite re-prepare on every execution.
    let mut stmt = conn.prepare_cached(&format!("{LIST}{fetch}"))?;
    let rows = stmt.query_map(
        rusqlite::params![before.0, before.1, code],
        ErrorLogView::from_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Up to `max` entries logged under `correlation_id`, oldest first.
pub fn by_correlation(
    conn: &Connection,
    correlation_id: &str,
    max: u32,
) -> AppResult<Vec<ErrorLogView>> {
    let mut stmt = conn.prepare_cached(&format!("{BY_CORRELATION}{max}"))?;
    let rows = stmt.query_map([correlation_id], ErrorLogView::from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Number of entries created at or after `since_ms`.
pub fn count_since(conn: &Connection, since_ms: i64) -> AppResult<i64> {
    Ok(conn
        .prepare_cached(COUNT_SINCE)?
        .query_row([since_ms], |r| r.get(0))?)
}
