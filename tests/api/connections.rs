//! What a socket may hold (`serve_app` and `medianest::conn`), over real loopback connections:
//! a request head must arrive within `server.header_read_timeout_secs`, a kept-alive connection
//! is closed after `server.keepalive_idle_secs` without a request (never one with a request in
//! flight or a live-event stream), connections over `server.max_connections_per_ip` are closed
//! as soon as they are accepted while other clients are still served, and at
//! `server.max_connections` the longest-idle kept-alive connection makes room for a newcomer
//! (the newcomer is closed only when every connection has a request in flight).
//!
//! Linux routes all of 127.0.0.0/8 to loopback, so a client socket bound to 127.0.0.2 is a
//! second client address.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use medianest::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::support::{self, RunningServer, TestState, eventually, insert_user, new_session};

/// Longest a test waits for something that should happen within a timeout of a second or two.
const DEADLINE: Duration = Duration::from_secs(10);

/// A connection from `local` (an address on loopback) to `addr`.
async fn connect_from(local: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(local.parse().unwrap(), 0))
        .unwrap();
    socket.connect(addr).await.unwrap()
}

/// Reads until the server closes the connection (EOF or reset); the time that took, or `None`
/// when it was still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    let read_to_end = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, read_to_end)
        .await
        .ok()
        .map(|()| started.elapsed())
}

/// Sends `GET path` on a kept-alive connection and reads one response with a
/// `Content-Length` body; returns the status and the body.
async fn request(stream: &mut TcpStream, path: &str) -> (u16, String) {
    let head = format!("GET {path} HTTP/1.1\r\nHost: medianest.test\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if data.len() >= end + 4 + length {
                    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                    let body = String::from_utf8_lossy(&data[end + 4..end + 4 + length]);
                    return (status, body.into_owned());
                }
            }
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the response ended: {data:?}");
            data.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .expect("a response in time")
}

/// `GET /health` over a new connection from `local`; the status.
async fn health_from(local: &str, addr: SocketAddr) -> u16 {
    let mut stream = connect_from(local, addr).await;
    request(&mut stream, "/health").await.0
}

fn state(edit: impl FnOnce(&mut Config)) -> TestState {
    support::test_state_with(|c| {
        // Long unless a test shortens them: an idle test connection must stay open.
        c.server.header_read_timeout_secs = 60;
        c.server.keepalive_idle_secs = 60;
        edit(c);
    })
}

async fn slow() -> &'static str {
    // The handler's own work, longer than the idle and head timeouts of the test.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    "slow but answered"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_or_silent_connection_is_closed_after_the_header_timeout() {
    let t = state(|c| c.server.header_read_timeout_secs = 1);
    let server = RunningServer::start(&t.state, t.router()).await;
    let addr = server.addr;

    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET /health HTTP/1.1\r\nHost: medianest.test\r\n")
        .await
        .unwrap();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    // Trickling bytes does not buy time: the head clock started with the first one.
    let mut trickle = TcpStream::connect(addr).await.unwrap();
    let trickling = async {
        for byte in b"GET /health HTTP/1.1\r\nHost: x\r\n" {
            if trickle.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        closed_within(&mut trickle, DEADLINE).await
    };
    let (half_closed, silent_closed, trickle_closed) = tokio::join!(
        closed_within(&mut half, DEADLINE),
        closed_within(&mut silent, DEADLINE),
        trickling,
    );
    for (what, closed) in [
        ("half-sent", half_closed),
        ("silent", silent_closed),
        ("trickling", trickle_closed),
    ] {
        let after = closed.unwrap_or_else(|| panic!("the {what} connection is still open"));
        assert!(
            after < Duration::from_secs(5),
            "{what}: closed after {after:?}"
        );
    }
    // A whole request on a new connection is still answered.
    assert_eq!(health_from("127.0.0.1", addr).await, 200);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_but_a_slow_request_is_not() {
    let t = state(|c| {
        c.server.header_read_timeout_secs = 1;
        c.server.keepalive_idle_secs = 1;
    });
    let routes = Router::new()
        .route("/api/v1/test/fast", get(|| async { "fast" }))
        .route("/api/v1/test/slow", get(slow));
    let app = medianest::with_edge(routes, t.state.clone());
    let server = RunningServer::start(&t.state, app).await;

    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(request(&mut stream, "/api/v1/test/fast").await.0, 200);
    // Kept alive: a second request on the same connection, after a pause shorter than the
    // idle time, is answered even though it takes longer than both timeouts.
    assert_eq!(
        request(&mut stream, "/api/v1/test/slow").await,
        (200, "slow but answered".to_owned())
    );
    let idle_for = closed_within(&mut stream, DEADLINE)
        .await
        .expect("the idle connection was closed");
    assert!(
        idle_for >= Duration::from_millis(800) && idle_for < Duration::from_secs(5),
        "closed {idle_for:?} after the last response"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_event_stream_outlives_the_idle_timeout() {
    let t = state(|c| {
        c.server.header_read_timeout_secs = 1;
        c.server.keepalive_idle_secs = 1;
    });
    let user = insert_user(&t.state, "ann", None, "user", None).await;
    let token = new_session(&t.state, &user).await.token;
    let server = RunningServer::start(&t.state, t.router()).await;

    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "GET /api/v1/events HTTP/1.1\r\nHost: medianest.test\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, "retry: 5000").await;
    // Nothing to send for three idle timeouts (the stream's own keep-alive is every 15 s).
    assert_eq!(
        closed_within(&mut stream, Duration::from_secs(3)).await,
        None,
        "the stream was cut"
    );
    t.state.events().publish(medianest::events::Event::new(
        medianest::events::kind::SERVICE_STATUS,
        medianest::events::Audience::Everyone,
        &serde_json::json!({"still": "here"}),
    ));
    read_until(&mut stream, &mut seen, r#"{"still":"here"}"#).await;
    drop(stream);
    server.stop().await.unwrap();
}

/// Reads into `seen` until it contains `needle`.
async fn read_until(stream: &mut TcpStream, seen: &mut Vec<u8>, needle: &str) {
    let mut buf = [0u8; 4096];
    let read = async {
        while !String::from_utf8_lossy(seen).contains(needle) {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed before {needle:?}: {}",
                String::from_utf8_lossy(seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .unwrap_or_else(|_| panic!("no {needle:?} in time"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_per_ip_cap_a_connection_is_closed_at_once_and_other_clients_are_served() {
    let t = state(|c| c.server.max_connections_per_ip = 3);
    let server = RunningServer::start(&t.state, t.router()).await;
    let addr = server.addr;

    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from("127.0.0.1", addr).await);
    }
    // Accepted in order, so the fourth is the one over the cap.
    let mut fourth = connect_from("127.0.0.1", addr).await;
    let closed = closed_within(&mut fourth, DEADLINE).await;
    assert!(
        closed.is_some_and(|after| after < Duration::from_secs(2)),
        "the fourth connection from one address was not closed at once: {closed:?}"
    );
    // Another client is served meanwhile, and the held connections still work.
    assert_eq!(health_from("127.0.0.2", addr).await, 200);
    assert_eq!(request(&mut held[0], "/health").await.0, 200);

    // One closes: its place is free again.
    drop(held.pop());
    eventually(DEADLINE, "a place for 127.0.0.1 again", || async move {
        let mut stream = connect_from("127.0.0.1", addr).await;
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: medianest.test\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.ok()?;
        answer.starts_with("HTTP/1.1 200").then_some(())
    })
    .await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_total_cap_holds_for_everyone_and_trusted_proxies_only_skip_the_per_ip_cap() {
    let t = state(|c| {
        c.server.max_connections = 5;
        c.server.max_connections_per_ip = 1;
        c.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()].into();
    });
    let server = RunningServer::start(&t.state, t.router()).await;
    let addr = server.addr;

    // The proxy carries several clients: three connections from it are fine.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from("127.0.0.1", addr).await);
    }
    held.push(connect_from("127.0.0.2", addr).await);
    // An ordinary client's second connection is over the per-IP cap (4 of 5 open).
    let mut second = connect_from("127.0.0.2", addr).await;
    assert!(closed_within(&mut second, DEADLINE).await.is_some());
    held.push(connect_from("127.0.0.3", addr).await);
    // Five open: over the total for anybody, the proxy included.
    for local in ["127.0.0.4", "127.0.0.1"] {
        let mut extra = connect_from(local, addr).await;
        let closed = closed_within(&mut extra, DEADLINE).await;
        assert!(
            closed.is_some_and(|after| after < Duration::from_secs(2)),
            "{local}: {closed:?}"
        );
    }
    for stream in &mut held {
        assert_eq!(request(stream, "/health").await.0, 200);
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_total_cap_the_longest_idle_connection_makes_room_for_a_newcomer() {
    let t = state(|c| c.server.max_connections = 4);
    let server = RunningServer::start(&t.state, t.router()).await;
    let addr = server.addr;

    // One group of clients holds every place with kept-alive connections that each answered
    // one cheap request and now wait (as under the rate limit and inside the idle time).
    let mut held = Vec::new();
    for local in ["127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3"] {
        let mut stream = connect_from(local, addr).await;
        assert_eq!(request(&mut stream, "/health").await.0, 200);
        held.push(stream);
    }
    // Someone else is served all the same.
    assert_eq!(health_from("127.0.0.4", addr).await, 200);
    // The connection idle the longest (the first) was closed to make room, and only it.
    let closed = closed_within(&mut held[0], DEADLINE).await;
    assert!(
        closed.is_some(),
        "the longest-idle connection is still open"
    );
    for stream in &mut held[1..] {
        assert_eq!(request(stream, "/health").await.0, 200);
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_total_cap_with_every_request_in_flight_the_newcomer_is_closed() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let t = state(|c| c.server.max_connections = 3);
    let started = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(tokio::sync::Notify::new());
    let routes = {
        let (started, release) = (started.clone(), release.clone());
        Router::new().route(
            "/api/v1/test/held",
            get(move || {
                let (started, release) = (started.clone(), release.clone());
                async move {
                    let released = release.notified();
                    started.fetch_add(1, Ordering::SeqCst);
                    released.await;
                    "released"
                }
            }),
        )
    };
    let app = medianest::with_edge(routes, t.state.clone());
    let server = RunningServer::start(&t.state, app).await;
    let addr = server.addr;

    let mut held = Vec::new();
    for local in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        let mut stream = connect_from(local, addr).await;
        stream
            .write_all(b"GET /api/v1/test/held HTTP/1.1\r\nHost: medianest.test\r\n\r\n")
            .await
            .unwrap();
        held.push(stream);
    }
    let counter = started.clone();
    eventually(DEADLINE, "three requests in flight", || {
        let counter = counter.clone();
        async move { (counter.load(Ordering::SeqCst) == 3).then_some(()) }
    })
    .await;
    // No connection is idle: the newcomer is the one closed, at once.
    let mut newcomer = connect_from("127.0.0.5", addr).await;
    let closed = closed_within(&mut newcomer, DEADLINE).await;
    assert!(
        closed.is_some_and(|after| after < Duration::from_secs(2)),
        "the newcomer was not closed: {closed:?}"
    );
    // The requests in flight were not cut.
    release.notify_waiters();
    for stream in &mut held {
        let mut seen = Vec::new();
        read_until(stream, &mut seen, "released").await;
    }
    server.stop().await.unwrap();
}
