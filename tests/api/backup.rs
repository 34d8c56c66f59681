//! `backup_file` while writes run: the copy is consistent and holds everything committed before
//! the backup began.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use medianest::db::{Db, backup_file};
use rusqlite::Connection;

use crate::support;

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
