//! The `error_logs` table: every 5xx the edge answers is queued by `AppState::log_error` and
//! written here in batches, off the request path, so a failing request is not slowed (or failed
//! again) by its own bookkeeping. The dashboard's own error reports are stored here too
//! ([`insert_client_errors`]), and the admin pages read the table through [`list`],
//! [`by_correlation`] and [`count_since`].

use rusqlite::{Connection, Row};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::AppResult;
use crate::http::ErrorLogEntry;
use crate::state::AppState;
use crate::time::rfc3339;

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

/// Stores reported client errors (call inside one write transaction); no status code.
pub fn insert_client_errors(conn: &Connection, errors: &[ClientError]) -> AppResult<usize> {
    let mut stmt = conn.prepare_cached(INSERT)?;
    for e in errors {
        stmt.execute(rusqlite::params![
            e.correlation_id,
            e.user_id,
            e.code,
            e.message,
            e.path,
            CLIENT_METHOD,
            None::<i64>,
            e.metadata.to_string(),
            e.at_ms,
        ])?;
    }
    Ok(errors.len())
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
