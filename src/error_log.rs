//! The `error_logs` table: every 5xx the edge answers is queued by `AppState::log_error` and
//! written here in batches, off the request path, so a failing request is not slowed (or failed
//! again) by its own bookkeeping.

use tokio::sync::mpsc;

use crate::error::AppResult;
use crate::http::ErrorLogEntry;
use crate::state::AppState;

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

fn insert_all(conn: &rusqlite::Connection, batch: &[ErrorLogEntry]) -> AppResult<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO error_logs (correlation_id, user_id, error_code, error_message, request_path,
                                 request_method, status_code, metadata, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
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
