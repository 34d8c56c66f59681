//! `backup_file` while writes run: the copy is consistent and holds everything committed before
//! the backup began. The backups of `backup.dir`: the schedule on a manual clock and pruning, a
//! failed backup (no partial file, shown to admins, retried at the next slot), the pre-migration
//! backup at start, the data-dir lock, and the admin routes (list, back up now, download).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use medianest::backups::{self, BackupKind};
use medianest::clock::Clock as _;
use medianest::config::BackupSchedule;
use medianest::db::{Db, backup_file};
use rusqlite::Connection;

use crate::support::{self, assert_error, call, insert_user, new_session};

/// Rows written before the writer starts, so the copy takes a while.
const PREFILL: i64 = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_writes_is_consistent_and_complete() {
    support::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("live.db");
    let dst = dir.path().join("copy.db");
    let db = Db::open_file(&src, 4).unwrap();

    db.write(|tx| {
        let mut stmt = tx.prepare(
            "INSERT INTO error_logs (correlation_id, error_code, error_message, created_at)
             VALUES (?1, 'INTERNAL_ERROR', ?2, ?3)",
        )?;
        for i in 0..PREFILL {
            stmt.execute(rusqlite::params![format!("pre-{i}"), "x".repeat(200), i])?;
        }
        Ok(())
    })
    .await
    .unwrap();

    // The writer counts its commits; each commit adds exactly one row.
    let committed = Arc::new(AtomicI64::new(PREFILL));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, committed, stop) = (db.clone(), committed.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0i64;
            while !stop.load(Ordering::SeqCst) {
                db.write(move |tx| {
                    tx.execute(
                        "INSERT INTO error_logs (correlation_id, error_code, error_message, created_at)
                         VALUES (?1, 'INTERNAL_ERROR', 'during', ?2)",
                        rusqlite::params![format!("live-{i}"), i],
                    )?;
                    Ok(())
                })
                .await
                .unwrap();
                committed.fetch_add(1, Ordering::SeqCst);
                i += 1;
            }
        })
    };
    support::eventually(Duration::from_secs(10), "the writer to commit", || {
        let n = committed.load(Ordering::SeqCst);
        async move { (n > PREFILL + 10).then_some(()) }
    })
    .await;

    let before = committed.load(Ordering::SeqCst);
    let (s, d) = (src.clone(), dst.clone());
    let bytes = tokio::task::spawn_blocking(move || backup_file(&s, &d, false))
        .await
        .unwrap()
        .unwrap();
    let after = committed.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();

    assert!(bytes > 0);
    assert!(
        after > before,
        "no write committed while the backup ran, so this proves nothing"
    );
    let copy = Connection::open(&dst).unwrap();
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let rows: i64 = copy
        .query_row("SELECT count(*) FROM error_logs", [], |r| r.get(0))
        .unwrap();
    assert!(
        rows >= before,
        "the copy has {rows} rows, {before} were committed before the backup began"
    );
    assert!(
        rows <= after,
        "the copy has {rows} rows, only {after} exist"
    );
    // The copy is one committed state: every writer row up to the last is there, no gaps.
    let live: i64 = copy
        .query_row(
            "SELECT count(*) FROM error_logs WHERE correlation_id LIKE 'live-%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(live, rows - PREFILL);
    if live > 0 {
        let last = format!("live-{}", live - 1);
        let present: i64 = copy
            .query_row(
                "SELECT count(*) FROM error_logs WHERE correlation_id = ?1",
                [&last],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(present, 1, "{last} is missing: the copy has a gap");
    }
}

const HOUR_MS: i64 = 3600 * 1000;

/// The names in `dir`, sorted (none when it does not exist).
fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn the_schedule_follows_the_clock_and_keeps_the_newest_backups() {
    let t = support::test_state_with(|c| {
        c.backup.schedule = BackupSchedule::Hourly;
        c.backup.keep = 3;
    });
    let dir = t.state.config().backup_dir();
    std::fs::create_dir_all(&dir).unwrap();
    // Neither a pre-migration backup nor a file of another name is pruned.
    let pre = backups::BackupName::pre_migration(2, support::START_MS - 10 * HOUR_MS).name;
    std::fs::write(dir.join(&pre), b"kept").unwrap();
    std::fs::write(dir.join("notes.txt"), b"mine").unwrap();

    assert!(backups::tick(&t.state).await, "no backup yet: one is due");
    assert!(!backups::tick(&t.state).await, "same hour: nothing due");
    t.clock.advance(HOUR_MS / 2);
    assert!(!backups::tick(&t.state).await, "still the same hour");
    let mut expected = vec![backups::BackupName::scheduled(support::START_MS).name];
    for hour in 1..=4 {
        t.clock.set(support::START_MS + hour * HOUR_MS);
        assert!(backups::tick(&t.state).await, "hour {hour}");
        expected.push(backups::BackupName::scheduled(t.clock.now_ms()).name);
    }
    let listed = backups::list(&dir);
    let scheduled: Vec<&str> = listed
        .iter()
        .filter(|f| f.kind == BackupKind::Scheduled)
        .map(|f| f.name.as_str())
        .collect();
    let newest: Vec<&str> = expected.iter().rev().take(3).map(String::as_str).collect();
    assert_eq!(scheduled, newest, "the newest three, newest first");
    let mut all = names(&dir);
    all.retain(|n| !newest.contains(&n.as_str()));
    assert_eq!(all, vec!["notes.txt".to_owned(), pre]);
    for f in &listed {
        assert_eq!(
            medianest::db::check_file(&dir.join(&f.name)).is_ok(),
            f.kind == BackupKind::Scheduled,
            "{}",
            f.name
        );
    }

    // A restarted server (a fresh state) finds the newest backup's slot and waits for the next.
    let restarted = support::test_state_with(|c| {
        c.backup.schedule = BackupSchedule::Hourly;
        c.backup.dir = Some(dir.clone());
    });
    restarted.clock.set(t.clock.now_ms() + 60_000);
    assert!(!backups::tick(&restarted.state).await);
    restarted.clock.advance(HOUR_MS);
    assert!(backups::tick(&restarted.state).await);

    let off = support::test_state_with(|c| c.backup.schedule = BackupSchedule::Off);
    assert!(!backups::tick(&off.state).await);
    assert!(!off.state.config().backup_dir().exists());
}

#[tokio::test]
async fn a_failed_backup_leaves_no_file_is_shown_to_admins_and_is_retried_at_the_next_slot() {
    let t = support::test_state_with(|c| c.backup.schedule = BackupSchedule::Hourly);
    let app = t.router();
    let admin = insert_user(&t.state, "admin", None, "admin", None).await;
    let admin = new_session(&t.state, &admin).await.token;
    let dir = t.state.config().backup_dir();
    std::fs::create_dir_all(&dir).unwrap();
    // A directory where the backup's file must go: the copy is written and checked, the rename
    // fails.
    let blocker = dir.join(backups::BackupName::scheduled(support::START_MS).name);
    std::fs::create_dir(&blocker).unwrap();
    std::fs::write(blocker.join("x"), b"x").unwrap();

    assert!(backups::tick(&t.state).await);
    assert_eq!(
        names(&dir),
        vec![blocker.file_name().unwrap().to_string_lossy().into_owned()]
    );
    let r = call("GET", "/api/v1/admin/backups")
        .bearer(&admin)
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let data = &r.json()["data"];
    assert!(data["backups"].as_array().unwrap().is_empty(), "{data}");
    let error = data["lastError"]["message"].as_str().unwrap();
    assert!(error.contains("rename"), "{data}");
    assert_eq!(data["lastSuccess"], serde_json::Value::Null);

    // "Back up now" fails the same way with a 500 and leaves nothing either.
    let r = call("POST", "/api/v1/admin/backups")
        .bearer(&admin)
        .send(&app)
        .await;
    assert_error(&r, StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR");
    assert_eq!(names(&dir).len(), 1);

    // Not again within the slot; at the next one it works and the error is gone.
    std::fs::remove_dir_all(&blocker).unwrap();
    assert!(!backups::tick(&t.state).await);
    t.clock.advance(HOUR_MS);
    assert!(backups::tick(&t.state).await);
    let r = call("GET", "/api/v1/admin/backups")
        .bearer(&admin)
        .send(&app)
        .await;
    let data = &r.json()["data"];
    assert_eq!(data["backups"].as_array().unwrap().len(), 1, "{data}");
    assert_eq!(data["lastError"], serde_json::Value::Null, "{data}");

    // backup.dir is a file: nothing is created, the reason is shown.
    let file_dir = tempfile::NamedTempFile::new().unwrap();
    let t = support::test_state_with(|c| {
        c.backup.schedule = BackupSchedule::Daily;
        c.backup.dir = Some(file_dir.path().to_owned());
    });
    assert!(backups::tick(&t.state).await);
    let status = t.state.backups().status();
    assert!(
        status.last_error.unwrap().message.contains("cannot create"),
        "the reason names the directory"
    );
    assert_eq!(std::fs::read(file_dir.path()).unwrap(), b"");
}

#[tokio::test]
async fn admins_list_create_and_download_backups_and_nobody_else_does() {
    let t = support::test_state();
    let app = t.router();
    let admin = insert_user(&t.state, "admin", None, "admin", None).await;
    let admin = new_session(&t.state, &admin).await.token;
    let user = insert_user(&t.state, "user", None, "user", None).await;
    let user = new_session(&t.state, &user).await.token;

    let r = call("GET", "/api/v1/admin/backups")
        .bearer(&admin)
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let data = &r.json()["data"];
    assert_eq!(data["schedule"], "daily");
    assert_eq!(data["keep"], 7);
    assert!(data["backups"].as_array().unwrap().is_empty());

    let r = call("POST", "/api/v1/admin/backups")
        .bearer(&admin)
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let created = r.json()["data"].clone();
    let name = created["name"].as_str().unwrap().to_owned();
    assert_eq!(name, backups::BackupName::scheduled(support::START_MS).name);
    let path = t.state.config().backup_dir().join(&name);
    let size = std::fs::metadata(&path).unwrap().len();
    assert_eq!(created["size"], size);

    let r = call("GET", "/api/v1/admin/backups")
        .bearer(&admin)
        .send(&app)
        .await;
    let data = &r.json()["data"];
    assert_eq!(data["backups"][0]["name"], name.as_str(), "{data}");
    assert_eq!(data["backups"][0]["size"], size);
    assert_eq!(data["backups"][0]["kind"], "scheduled");
    assert_eq!(
        data["backups"][0]["createdAt"],
        medianest::time::rfc3339(support::START_MS)
    );
    assert_eq!(data["lastSuccess"]["message"], name.as_str());

    let r = call("GET", &format!("/api/v1/admin/backups/{name}"))
        .bearer(&admin)
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/vnd.sqlite3"));
    assert_eq!(
        r.header("content-disposition"),
        Some(format!("attachment; filename=\"{name}\"").as_str())
    );
    assert_eq!(r.body.as_ref(), std::fs::read(&path).unwrap().as_slice());

    // Names outside the two patterns, escapes included, are 404 without touching the disk; so
    // is a valid name that is a link to a file elsewhere.
    std::fs::write(t.state.config().data_dir.join("other.db"), b"x").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        t.state.config().data_dir.join("other.db"),
        t.state
            .config()
            .backup_dir()
            .join("medianest-20250101-000000.db"),
    )
    .unwrap();
    for bad in [
        "medianest-20250615-150843.db",
        "medianest-20250101-000000.db",
        "other.db",
        "..%2Fmedianest.db",
        "%2E%2E%2Fsecret.key",
        "..%2F..%2Fetc%2Fpasswd",
        "medianest-20250615-150843.db%00",
        "medianest-20250615-150843.db-wal",
    ] {
        let r = call("GET", &format!("/api/v1/admin/backups/{bad}"))
            .bearer(&admin)
            .send(&app)
            .await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    }

    for (method, path) in [
        ("GET", "/api/v1/admin/backups".to_owned()),
        ("POST", "/api/v1/admin/backups".to_owned()),
        ("GET", format!("/api/v1/admin/backups/{name}")),
    ] {
        let r = call(method, &path).bearer(&user).send(&app).await;
        assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
        let r = call(method, &path).send(&app).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    // The user's attempts changed nothing (the link is not listed either).
    assert_eq!(backups::list(&t.state.config().backup_dir()).len(), 1);
}

/// A start that finds an older schema backs the database up first and keeps that backup; the
/// next start (nothing to migrate) removes it. A failing pre-migration backup stops the start
/// and migrates nothing. While a state holds the data dir, another start is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_backs_up_before_migrating_and_the_next_start_removes_it() {
    use medianest::db::migrations::{MIGRATIONS, latest_version};
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config_in(&dir);
    config.admin.password = Some(medianest::config::Secret::new("correct horse battery"));
    std::fs::create_dir_all(&config.data_dir).unwrap();
    let old = latest_version() - 1;
    {
        let conn = Connection::open(config.database_path()).unwrap();
        // WAL, as a server leaves it.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        for (version, _, sql) in MIGRATIONS.iter().filter(|m| m.0 <= old) {
            conn.execute_batch(sql).unwrap();
            conn.execute_batch(&format!("PRAGMA user_version = {version};"))
                .unwrap();
        }
    }
    let clock: medianest::clock::SharedClock =
        std::sync::Arc::new(medianest::clock::ManualClock::new(support::START_MS));
    let backup_dir = config.backup_dir();

    // backup.dir is a file: the start stops, naming both versions, and the schema stays old.
    let blocked = {
        let mut c = config.clone();
        c.backup.dir = Some(dir.path().join("a-file"));
        std::fs::write(dir.path().join("a-file"), b"").unwrap();
        c
    };
    let c = clock.clone();
    let e = tokio::task::spawn_blocking(move || medianest::bootstrap(blocked, c).err())
        .await
        .unwrap()
        .expect("the start is refused");
    let e = e.to_string();
    assert!(
        e.contains(&format!(
            "from schema version {old} to {}",
            latest_version()
        )),
        "{e}"
    );
    assert_eq!(medianest::db::check_file(&config.database_path()), Ok(old));

    let (c, k) = (config.clone(), clock.clone());
    let state = tokio::task::spawn_blocking(move || medianest::bootstrap(c, k))
        .await
        .unwrap()
        .unwrap();
    let pre = backups::BackupName::pre_migration(old, support::START_MS).name;
    assert_eq!(names(&backup_dir), vec![pre.clone()]);
    assert_eq!(medianest::db::check_file(&backup_dir.join(&pre)), Ok(old));

    // The data dir is held while the state lives.
    let (c, k) = (config.clone(), clock.clone());
    let e = tokio::task::spawn_blocking(move || medianest::bootstrap(c, k).err())
        .await
        .unwrap()
        .expect("a second start on the same data dir is refused");
    assert!(
        e.to_string().contains("in use by a running MediaNest"),
        "{e}"
    );

    state.shutdown().await.unwrap();
    drop(state);
    let (c, k) = (config.clone(), clock.clone());
    let state = tokio::task::spawn_blocking(move || medianest::bootstrap(c, k))
        .await
        .unwrap()
        .unwrap();
    assert!(names(&backup_dir).is_empty(), "{:?}", names(&backup_dir));
    state.shutdown().await.unwrap();
}
