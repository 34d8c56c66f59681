//! Embedded schema migrations. Each file in `migrations/` is compiled into the binary, applied in
//! order, each in one transaction, and the schema version is `PRAGMA user_version` (the number of
//! migrations applied). Running them again is a no-op.

use rusqlite::Connection;

use crate::error::{AppError, AppResult};

/// `(version, name, sql)` in order; version N is the Nth file.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "0001_initial",
        include_str!("../../migrations/0001_initial.sql"),
    ),
    (
        2,
        "0002_media_requests",
        include_str!("../../migrations/0002_media_requests.sql"),
    ),
    (
        3,
        "0003_media_list_cover",
        include_str!("../../migrations/0003_media_list_cover.sql"),
    ),
    (
        4,
        "0004_login_lockout",
        include_str!("../../migrations/0004_login_lockout.sql"),
    ),
    (
        5,
        "0005_download_failed_items",
        include_str!("../../migrations/0005_download_failed_items.sql"),
    ),
    (
        6,
        "0006_notification_channels",
        include_str!("../../migrations/0006_notification_channels.sql"),
    ),
    (
        7,
        "0007_push_subscriptions",
        include_str!("../../migrations/0007_push_subscriptions.sql"),
    ),
    (
        8,
        "0008_notification_outbox",
        include_str!("../../migrations/0008_notification_outbox.sql"),
    ),
    (
        9,
        "0009_notification_prefs",
        include_str!("../../migrations/0009_notification_prefs.sql"),
    ),
    (
        10,
        "0010_notification_deliveries_by_notification",
        include_str!("../../migrations/0010_notification_deliveries_by_notification.sql"),
    ),
    (
        11,
        "0011_youtube_subscriptions",
        include_str!("../../migrations/0011_youtube_subscriptions.sql"),
    ),
    (
        12,
        "0012_youtube_subscription_episodes",
        include_str!("../../migrations/0012_youtube_subscription_episodes.sql"),
    ),
    (
        13,
        "0013_youtube_retention",
        include_str!("../../migrations/0013_youtube_retention.sql"),
    ),
    (
        14,
        "0014_youtube_subscription_folders",
        include_str!("../../migrations/0014_youtube_subscription_folders.sql"),
    ),
    (
        15,
        "0015_plex_watchlist",
        include_str!("../../migrations/0015_plex_watchlist.sql"),
    ),
    (
        16,
        "0016_problem_reports",
        include_str!("../../migrations/0016_problem_reports.sql"),
    ),
    (
        17,
        "0017_problem_report_fixes",
        include_str!("../../migrations/0017_problem_report_fixes.sql"),
    ),
];

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub from: i64,
    pub to: i64,
}

/// The version the code expects.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Applies every migration newer than the database's `user_version`.
pub fn apply(conn: &mut Connection) -> AppResult<Applied> {
    let from: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if from > latest_version() {
        return Err(AppError::internal(format!(
            "the database schema (version {from}) is newer than this MediaNest (version {}); \
             run the newer release or restore a backup",
            latest_version()
        )));
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > from) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .map_err(|e| AppError::internal(format!("migration {name}: {e}")))?;
        // PRAGMA takes no bound parameters; the version is our own integer.
        tx.execute_batch(&format!("PRAGMA user_version = {version};"))?;
        tx.commit()?;
        tracing::info!(migration = name, "applied migration");
    }
    if from < latest_version() {
        conn.execute_batch("ANALYZE;")?;
        super::keep_plans_stable(conn)?;
    }
    Ok(Applied {
        from,
        to: latest_version(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_migrations_is_embedded_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let embedded: Vec<String> = MIGRATIONS.iter().map(|m| format!("{}.sql", m.1)).collect();
        assert_eq!(files, embedded);
        for (i, (version, name, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, i as i64 + 1);
            assert!(name.starts_with(&format!("{version:04}_")));
        }
    }

    #[test]
    fn applying_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        let first = apply(&mut conn).unwrap();
        assert_eq!(
            first,
            Applied {
                from: 0,
                to: latest_version()
            }
        );
        let schema = |c: &Connection| -> Vec<String> {
            let mut s = c
                .prepare("SELECT type || name || ifnull(sql, '') FROM sqlite_master ORDER BY name")
                .unwrap();
            s.query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let before = schema(&conn);
        let second = apply(&mut conn).unwrap();
        assert_eq!(second.from, second.to);
        assert_eq!(schema(&conn), before);
    }

    #[test]
    fn a_newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA user_version = 999;").unwrap();
        let e = apply(&mut conn).unwrap_err().to_string();
        assert!(e.contains("newer"), "{e}");
    }
}
