//! Graceful shutdown of `serve_app`: new connections are refused at once, the request in flight
//! still gets its answer, `serve_app` returns `Ok`, and the WAL is folded into the database.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use medianest::db::Db;
use tokio::sync::Notify;

use crate::support::{self, RunningServer};

/// The test's hold on the waiting handler.
#[derive(Clone, Default)]
struct Gate {
    entered: Arc<Notify>,
    release: Arc<Notify>,
}

async fn wait_for_release(State(gate): State<Gate>) -> &'static str {
    gate.entered.notify_one();
    gate.release.notified().await;
    "released"
}

fn wal_size(db_path: &std::path::Path) -> Option<u64> {
    let mut wal = db_path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(PathBuf::from(wal)).ok().map(|m| m.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_refuses_new_connections_but_finishes_the_request_in_flight() {
    let t = support::test_state_with_db(
        |_| {},
        |config| Db::open_file(&config.database_path(), 4).unwrap(),
    );
    let db_path = t.state.config().database_path();
    t.state
        .db()
        .write(|tx| {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES ('shutdown-test', 'x')",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    assert!(
        wal_size(&db_path).unwrap_or(0) > 0,
        "the write should sit in the WAL before shutdown"
    );

    let gate = Gate::default();
    let routes = Router::new().route(
        "/api/v1/test/wait",
        get(wait_for_release).with_state(gate.clone()),
    );
    let app = medianest::with_edge(routes, t.state.clone());
    let mut server = RunningServer::start(&t.state, app).await;
    let addr = server.addr;

    let in_flight =
        tokio::task::spawn_blocking(move || support::raw_http_get(addr, "/api/v1/test/wait"));
    tokio::time::timeout(Duration::from_secs(10), gate.entered.notified())
        .await
        .expect("the request reached the handler");

    server.trigger_shutdown();
    support::eventually(
        Duration::from_secs(5),
        "new connections to be refused",
        || async move { tokio::net::TcpStream::connect(addr).await.err().map(|_| ()) },
    )
    .await;
    assert!(
        !server.returns_within(Duration::from_millis(300)).await,
        "serve_app returned while a request was still in flight"
    );

    gate.release.notify_one();
    let (status, body) = in_flight.await.unwrap().expect("the in-flight request");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "released");

    server.stop().await.expect("serve_app returns Ok");
    assert_eq!(
        wal_size(&db_path).unwrap_or(0),
        0,
        "the WAL is checkpointed on shutdown"
    );
    let conn = rusqlite::Connection::open(&db_path).unwrap();
    let value: String = conn
        .query_row(
            "SELECT value FROM settings WHERE key = 'shutdown-test'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(value, "x");
}

/// `server.shutdown_grace_secs` bounds the wait: a request still running when it is over is
/// cut off, so nothing answers (or touches the database) after `serve_app` has returned and the
/// WAL has been checkpointed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_still_running_after_the_grace_period_is_cut_off() {
    let t = support::test_state_with(|c| c.server.shutdown_grace_secs = 1);
    let gate = Gate::default();
    let routes = Router::new().route(
        "/api/v1/test/wait",
        get(wait_for_release).with_state(gate.clone()),
    );
    let app = medianest::with_edge(routes, t.state.clone());
    let server = RunningServer::start(&t.state, app).await;
    let addr = server.addr;

    let in_flight =
        tokio::task::spawn_blocking(move || support::raw_http_get(addr, "/api/v1/test/wait"));
    tokio::time::timeout(Duration::from_secs(10), gate.entered.notified())
        .await
        .expect("the request reached the handler");

    // Returns after the one-second grace period, with the handler still waiting.
    server.stop().await.expect("serve_app returns Ok");

    gate.release.notify_one();
    let answer = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .expect("the client finished")
        .unwrap();
    assert!(
        !matches!(answer, Ok((200, _))),
        "the request was answered after serve_app had returned: {answer:?}"
    );
}
