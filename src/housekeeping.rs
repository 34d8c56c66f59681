//! Housekeeping: an hourly task that deletes what has outlived its retention (SPEC section 8).
//!
//! Deletes go in batches of at most [`BATCH`] rows per statement, each its own short write
//! transaction, so the single SQLite writer is never held for long and requests keep flowing.

use std::time::Duration;

use crate::db::Db;
use crate::error::AppResult;
use crate::state::AppState;

/// Most rows one DELETE statement removes.
pub const BATCH: i64 = 10_000;

/// How often housekeeping runs.
pub const INTERVAL: Duration = Duration::from_secs(3600);

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Longest rate-limit window any limiter uses; a window that started earlier has ended.
pub const MAX_RATE_WINDOW_MS: i64 = 3600 * 1000;

/// One retention rule: rows of `table` whose `column` is before `now - age_ms` go.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub table: &'static str,
    pub column: &'static str,
    pub age_ms: i64,
}

/// The retention rules, one per table that grows.
pub const RULES: &[Rule] = &[
    Rule {
        table: "service_metrics",
        column: "timestamp",
        age_ms: 30 * DAY_MS,
    },
    Rule {
        table: "session_tokens",
        column: "expires_at",
        age_ms: 0,
    },
    Rule {
        table: "notifications",
        column: "created_at",
        age_ms: 90 * DAY_MS,
    },
    Rule {
        table: "service_incidents",
        column: "created_at",
        age_ms: 90 * DAY_MS,
    },
    Rule {
        table: "error_logs",
        column: "created_at",
        age_ms: 30 * DAY_MS,
    },
    Rule {
        table: "rate_limits",
        column: "window_start",
        age_ms: MAX_RATE_WINDOW_MS,
    },
];

/// Rows deleted per table in one pass.
pub type Report = Vec<(&'static str, u64)>;

/// Runs every rule once at `now_ms`.
pub async fn run_once(db: &Db, now_ms: i64, batch: i64) -> AppResult<Report> {
    let mut report = Vec::with_capacity(RULES.len());
    for rule in RULES {
        let cutoff = now_ms - rule.age_ms;
        // Table and column names come from the constant list above, never from input.
        let sql = format!(
            "DELETE FROM {table} WHERE rowid IN \
             (SELECT rowid FROM {table} WHERE {column} < ?1 LIMIT ?2)",
            table = rule.table,
            column = rule.column,
        );
        let mut total = 0u64;
        loop {
            let sql = sql.clone();
            let deleted = db
                .write(move |tx| Ok(tx.execute(&sql, rusqlite::params![cutoff, batch])?))
                .await?;
            total += deleted as u64;
            if (deleted as i64) < batch {
                break;
            }
            // Let waiting writers in between batches.
            tokio::task::yield_now().await;
        }
        report.push((rule.table, total));
    }
    Ok(report)
}

/// The background loop: one pass shortly after start, then every hour, until shutdown.
pub async fn run(state: AppState) {
    let token = state.shutdown_token().clone();
    let mut delay = Duration::from_secs(60);
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = INTERVAL;
        let now = state.clock().now_ms();
        match run_once(state.db(), now, BATCH).await {
            Ok(report) => {
                let deleted: u64 = report.iter().map(|(_, n)| n).sum();
                if deleted > 0 {
                    tracing::info!(?report, "housekeeping removed old rows");
                }
            }
            Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
        }
    }
}

/// Logs a warning, at most once a minute, while resident memory is above
/// `monitor.memory_warn_mb`.
pub async fn watch_memory(state: AppState) {
    let token = state.shutdown_token().clone();
    let limit = state
        .config()
        .monitor
        .memory_warn_mb
        .saturating_mul(1024 * 1024);
    let mut ticker = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if let Some(rss) = crate::monitor::process_rss_bytes()
            && rss > limit
        {
            tracing::warn!(
                rss_mb = rss / (1024 * 1024),
                limit_mb = state.config().monitor.memory_warn_mb,
                "resident memory is above monitor.memory_warn_mb"
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    async fn count(db: &Db, table: &'static str) -> i64 {
        db.run(
            move |c| Ok(c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?),
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn old_rows_go_and_recent_rows_stay_in_small_batches() {
        let db = Db::open_memory().unwrap();
        db.write(|tx| {
            tx.execute(
                "INSERT INTO users (id, username, created_at) VALUES ('u1', 'ann', 0)",
                [],
            )?;
            for i in 0..25i64 {
                // 25 metrics 31 days old, 3 from today.
                tx.execute(
                    "INSERT INTO service_metrics (service_name, metric_name, metric_value, timestamp)
                     VALUES ('plex', 'up', 1, ?1)",
                    [NOW - 31 * DAY_MS - i],
                )?;
            }
            for i in 0..3i64 {
                tx.execute(
                    "INSERT INTO service_metrics (service_name, metric_name, metric_value, timestamp)
                     VALUES ('plex', 'up', 1, ?1)",
                    [NOW - i],
                )?;
            }
            tx.execute_batch(&format!(
                "INSERT INTO session_tokens (id, user_id, token_hash, csrf_token, created_at, last_used_at, expires_at)
                   VALUES ('s1', 'u1', 'h1', 'c', 0, 0, {expired}), ('s2', 'u1', 'h2', 'c', 0, 0, {live});
                 INSERT INTO notifications (id, user_id, type, title, message, created_at)
                   VALUES ('n1', 'u1', 't', 't', 'm', {old_n}), ('n2', 'u1', 't', 't', 'm', {new_n});
                 INSERT INTO error_logs (correlation_id, error_code, error_message, created_at)
                   VALUES ('c1', 'INTERNAL_ERROR', 'x', {old_e}), ('c2', 'INTERNAL_ERROR', 'x', {new_e});
                 INSERT INTO rate_limits (key, endpoint, request_count, window_start)
                   VALUES ('login:ann', 'login', 3, {old_w}), ('login:bob', 'login', 1, {new_w});",
                expired = NOW - 1,
                live = NOW + DAY_MS,
                old_n = NOW - 91 * DAY_MS,
                new_n = NOW - 89 * DAY_MS,
                old_e = NOW - 31 * DAY_MS,
                new_e = NOW - DAY_MS,
                old_w = NOW - 2 * MAX_RATE_WINDOW_MS,
                new_w = NOW - 60_000,
            ))?;
            Ok(())
        })
        .await
        .unwrap();

        // A batch of 10 makes three statements for the 25 old metrics.
        let report = run_once(&db, NOW, 10).await.unwrap();
        let deleted: std::collections::HashMap<_, _> = report.into_iter().collect();
        assert_eq!(deleted["service_metrics"], 25);
        assert_eq!(deleted["session_tokens"], 1);
        assert_eq!(deleted["notifications"], 1);
        assert_eq!(deleted["error_logs"], 1);
        assert_eq!(deleted["rate_limits"], 1);
        assert_eq!(count(&db, "service_metrics").await, 3);
        assert_eq!(count(&db, "session_tokens").await, 1);
        assert_eq!(count(&db, "notifications").await, 1);
        assert_eq!(count(&db, "error_logs").await, 1);
        assert_eq!(count(&db, "rate_limits").await, 1);

        let again = run_once(&db, NOW, 10).await.unwrap();
        assert!(again.iter().all(|(_, n)| *n == 0));
    }

    #[tokio::test]
    async fn every_rule_has_an_index_on_its_column() {
        let db = Db::open_memory().unwrap();
        for rule in RULES {
            let plan: String = db
                .run(move |c| {
                    let sql = format!(
                        "EXPLAIN QUERY PLAN SELECT rowid FROM {} WHERE {} < 1 LIMIT 10",
                        rule.table, rule.column
                    );
                    let mut stmt = c.prepare(&sql)?;
                    let rows: Vec<String> = stmt
                        .query_map([], |r| r.get::<_, String>(3))?
                        .collect::<Result<_, _>>()?;
                    Ok(rows.join("; "))
                })
                .await
                .unwrap();
            assert!(
                plan.contains("USING") && plan.contains("INDEX"),
                "{}: {plan}",
                rule.table
            );
        }
    }
}
