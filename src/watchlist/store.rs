//! The `watchlist_sync` and `watchlist_items` queries: each user's switch and sync state, and
//! the watchlist items a sync already handled. Plain functions over a `&Connection` (or the
//! write transaction).

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::AppResult;

/// Why a user's sync is paused.
pub const PAUSED_TOKEN_EXPIRED: &str = "token_expired";
/// The user has no stored Plex token (signed in another way since, or the token was removed).
pub const PAUSED_NO_TOKEN: &str = "no_token";

/// A user's sync state (a missing row reads as switched off).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncState {
    pub enabled: bool,
    pub next_check_at: Option<i64>,
    pub last_sync_at: Option<i64>,
    pub last_result: Option<String>,
    pub failures: i64,
    pub paused_at: Option<i64>,
    pub paused_reason: Option<String>,
    pub quota_told: bool,
}

/// The user's sync state.
pub fn get(conn: &Connection, user_id: &str) -> AppResult<SyncState> {
    Ok(conn
        .prepare_cached(
            "SELECT enabled, next_check_at, last_sync_at, last_result, failures, paused_at,
                    paused_reason, quota_told
               FROM watchlist_sync WHERE user_id = ?1",
        )?
        .query_row([user_id], |r| {
            Ok(SyncState {
                enabled: r.get(0)?,
                next_check_at: Some(r.get(1)?),
                last_sync_at: r.get(2)?,
                last_result: r.get(3)?,
                failures: r.get(4)?,
                paused_at: r.get(5)?,
                paused_reason: r.get(6)?,
                quota_told: r.get(7)?,
            })
        })
        .optional()?
        .unwrap_or_default())
}

/// Switches the sync on (first check at `next_check_at`) or off for the user.
pub fn set_enabled(
    conn: &Connection,
    user_id: &str,
    enabled: bool,
    next_check_at: i64,
    now_ms: i64,
) -> AppResult<()> {
    conn.prepare_cached(
        "INSERT INTO watchlist_sync (user_id, enabled, next_check_at, updated_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (user_id) DO UPDATE
            SET enabled = excluded.enabled, updated_at = excluded.updated_at,
                next_check_at = CASE WHEN excluded.enabled = 1 AND watchlist_sync.enabled = 0
                                     THEN excluded.next_check_at
                                     ELSE watchlist_sync.next_check_at END",
    )?
    .execute(params![user_id, enabled, next_check_at, now_ms])?;
    Ok(())
}

/// The statement [`due`] runs (kept apart so a test can check its plan).
pub const DUE_SQL: &str = "SELECT user_id FROM watchlist_sync INDEXED BY watchlist_sync_due
  WHERE enabled = 1 AND paused_at IS NULL AND next_check_at <= ?1
  ORDER BY next_check_at, user_id LIMIT ?2";

/// Users whose check is due at `now_ms`, the longest waiting first.
pub fn due(conn: &Connection, now_ms: i64, limit: u32) -> AppResult<Vec<String>> {
    let mut stmt = conn.prepare_cached(DUE_SQL)?;
    let rows = stmt
        .query_map(params![now_ms, limit], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(rows)
}

/// The statement [`next_due_at`] runs: the range bound makes it a search of the index from its
/// start (the first row is the answer), not a scan.
pub const NEXT_DUE_SQL: &str =
    "SELECT next_check_at FROM watchlist_sync INDEXED BY watchlist_sync_due
  WHERE enabled = 1 AND paused_at IS NULL AND next_check_at >= ?1
  ORDER BY next_check_at LIMIT 1";

/// When the next check is due, if any user's sync is on and not paused.
pub fn next_due_at(conn: &Connection) -> AppResult<Option<i64>> {
    Ok(conn
        .prepare_cached(NEXT_DUE_SQL)?
        .query_row([i64::MIN], |r| r.get(0))
        .optional()?)
}

/// The rating keys of the items already handled for the user.
pub fn handled_keys(conn: &Connection, user_id: &str) -> AppResult<HashSet<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT rating_key FROM watchlist_items WHERE user_id = ?1")?;
    let keys = stmt
        .query_map([user_id], |r| r.get(0))?
        .collect::<Result<HashSet<String>, _>>()?;
    Ok(keys)
}

/// What the sync did with one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandledItem {
    pub rating_key: String,
    pub title: String,
    /// `movie` or `tv`, when known.
    pub media_type: Option<&'static str>,
    pub tmdb_id: Option<i64>,
    /// One of the `outcome` values of the table.
    pub outcome: &'static str,
    pub request_id: Option<String>,
}

/// Remembers that `item` was handled, so no later check asks for it again.
pub fn record(conn: &Connection, user_id: &str, item: &HandledItem, now_ms: i64) -> AppResult<()> {
    let title: String = item.title.chars().take(500).collect();
    conn.prepare_cached(
        "INSERT INTO watchlist_items (user_id, rating_key, title, media_type, tmdb_id, outcome,
                                     request_id, handled_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (user_id, rating_key) DO UPDATE
            SET title = excluded.title, media_type = excluded.media_type,
                tmdb_id = excluded.tmdb_id, outcome = excluded.outcome,
                request_id = excluded.request_id, handled_at = excluded.handled_at",
    )?
    .execute(params![
        user_id,
        item.rating_key,
        title,
        item.media_type,
        item.tmdb_id,
        item.outcome,
        item.request_id,
        now_ms
    ])?;
    Ok(())
}

/// Forgets the handled items no longer on the watchlist (`listed` is the whole watchlist), so
/// the table stays the size of the watchlist; an item added back is looked at again (a request
/// still active for it is then only noted).
pub fn forget_unlisted(
    conn: &Connection,
    user_id: &str,
    listed: &HashSet<String>,
) -> AppResult<usize> {
    let gone: Vec<String> = handled_keys(conn, user_id)?
        .into_iter()
        .filter(|k| !listed.contains(k))
        .collect();
    let mut stmt =
        conn.prepare_cached("DELETE FROM watchlist_items WHERE user_id = ?1 AND rating_key = ?2")?;
    for key in &gone {
        stmt.execute(params![user_id, key])?;
    }
    Ok(gone.len())
}

/// Notes a check that read the watchlist; the next one is due at `next_check_at`.
pub fn finish_ok(
    conn: &Connection,
    user_id: &str,
    now_ms: i64,
    next_check_at: i64,
) -> AppResult<()> {
    conn.prepare_cached(
        "UPDATE watchlist_sync SET last_sync_at = ?2, last_result = 'ok', failures = 0,
                next_check_at = ?3, updated_at = ?2
          WHERE user_id = ?1",
    )?
    .execute(params![user_id, now_ms, next_check_at])?;
    Ok(())
}

/// Notes a check that failed for a reason outside the user's control (the provider or Seerr
/// down); the next one is due at `next_check_at`. Returns the failures in a row, this one
/// included.
pub fn finish_failed(
    conn: &Connection,
    user_id: &str,
    now_ms: i64,
    next_check_at: i64,
) -> AppResult<i64> {
    Ok(conn
        .prepare_cached(
            "UPDATE watchlist_sync SET last_result = 'failed', failures = failures + 1,
                    next_check_at = ?3, updated_at = ?2
              WHERE user_id = ?1
          RETURNING failures",
        )?
        .query_row(params![user_id, now_ms, next_check_at], |r| r.get(0))
        .optional()?
        .unwrap_or(1))
}

/// Pauses the user's sync; `true` when it was not paused before (tell the user then, once).
pub fn pause(conn: &Connection, user_id: &str, reason: &str, now_ms: i64) -> AppResult<bool> {
    Ok(conn
        .prepare_cached(
            "UPDATE watchlist_sync SET paused_at = ?2, paused_reason = ?3, updated_at = ?2
              WHERE user_id = ?1 AND paused_at IS NULL",
        )?
        .execute(params![user_id, now_ms, reason])?
        > 0)
}

/// Lifts a pause (a new Plex sign-in stored a fresh token); the next check is due at once.
/// `true` when the user's sync was paused.
pub fn resume(conn: &Connection, user_id: &str, now_ms: i64) -> AppResult<bool> {
    Ok(conn
        .prepare_cached(
            "UPDATE watchlist_sync SET paused_at = NULL, paused_reason = NULL, failures = 0,
                    next_check_at = ?2, updated_at = ?2
              WHERE user_id = ?1 AND paused_at IS NOT NULL",
        )?
        .execute(params![user_id, now_ms])?
        > 0)
}

/// Sets whether the user was told about their quota; `true` when that changed.
pub fn set_quota_told(conn: &Connection, user_id: &str, told: bool) -> AppResult<bool> {
    Ok(conn
        .prepare_cached(
            "UPDATE watchlist_sync SET quota_told = ?2 WHERE user_id = ?1 AND quota_told <> ?2",
        )?
        .execute(params![user_id, told])?
        > 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::db::Db;

    #[test]
    fn the_due_query_walks_its_index() {
        let db = Db::open_memory().unwrap();
        let conn = db.connection_blocking().unwrap();
        for sql in [DUE_SQL, NEXT_DUE_SQL] {
            let lines = crate::db::assert_indexed(&conn, sql);
            assert!(
                lines.iter().any(|l| l.contains("watchlist_sync_due")),
                "{lines:?}"
            );
        }
        // The items a check compares with: a search of the primary key's prefix.
        let lines = crate::db::query_plan(
            &conn,
            "SELECT rating_key FROM watchlist_items WHERE user_id = ?1",
        );
        assert_eq!(
            lines,
            ["SEARCH watchlist_items USING PRIMARY KEY (user_id=?)"],
            "{lines:?}"
        );
    }
}
