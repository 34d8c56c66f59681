//! Live-event streams (`GET /api/v1/events`) are capped per user (`limits.events_per_user`) and
//! per client address (`limits.events_per_ip`): one more answers `RATE_LIMITED` in the envelope,
//! and a place comes back when a stream ends, whether the client goes or the server shuts down.

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::StreamExt;
use medianest::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

use crate::support::{
    self, RunningServer, TestResponse, TestState, assert_error, eventually, insert_user,
    new_session,
};

const DEADLINE: Duration = Duration::from_secs(10);

async fn setup(edit: impl FnOnce(&mut Config)) -> (TestState, Router, Vec<String>) {
    let t = support::test_state_with(edit);
    let mut tokens = Vec::new();
    for name in ["ann", "bob", "cyd"] {
        let id = insert_user(&t.state, name, None, "user", None).await;
        tokens.push(new_session(&t.state, &id).await.token);
    }
    let app = t.router();
    (t, app, tokens)
}

/// Opens a stream as `token` from `ip`: the open response (body unread) or the error read whole.
async fn open(app: &Router, token: &str, ip: &str) -> Result<Response, TestResponse> {
    let request = support::call("GET", "/api/v1/events")
        .bearer(token)
        .peer(ip)
        .build();
    let response = app.clone().oneshot(request).await.unwrap();
    if response.status() == StatusCode::OK {
        return Ok(response);
    }
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Err(TestResponse {
        status,
        headers,
        body,
    })
}

fn refused(result: Result<Response, TestResponse>, limit: u32, whose: &str) {
    let r = result.expect_err("one stream too many");
    let error = assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert_eq!(error["details"]["limit"], limit, "{error}");
    assert_eq!(
        r.header("retry-after"),
        Some("5"),
        "a client knows when to try again"
    );
    let reason = error["details"]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("At most {limit} live-update streams")) && reason.contains(whose),
        "{reason}"
    );
}

#[tokio::test]
async fn a_user_may_hold_five_streams_and_a_sixth_waits_for_one_to_end() {
    let (t, app, tokens) = setup(|_| {}).await;
    let mut streams = Vec::new();
    for n in 0..5 {
        // Different addresses: only the per-user cap is in play.
        let ip = format!("198.51.100.{n}");
        streams.push(open(&app, &tokens[0], &ip).await.expect("within the cap"));
    }
    refused(open(&app, &tokens[0], "198.51.100.9").await, 5, "account");
    // Another user is not affected.
    let bob = open(&app, &tokens[1], "198.51.100.9").await.expect("bob");
    assert_eq!(t.state.events().open_streams(), 6);

    // The client goes away: its stream is dropped and the place is free.
    drop(streams.pop());
    assert_eq!(t.state.events().open_streams(), 5);
    streams.push(
        open(&app, &tokens[0], "198.51.100.9")
            .await
            .expect("a freed place"),
    );
    refused(open(&app, &tokens[0], "198.51.100.9").await, 5, "account");

    // Shutdown ends every stream; each gives its place back as it ends.
    t.state.events().close();
    for response in streams.into_iter().chain([bob]) {
        let mut body = response.into_body().into_data_stream();
        let ended =
            tokio::time::timeout(DEADLINE, async { while body.next().await.is_some() {} }).await;
        assert!(ended.is_ok(), "a stream outlived the shutdown");
    }
    assert_eq!(t.state.events().open_streams(), 0);
}

#[tokio::test]
async fn an_address_may_hold_its_own_number_of_streams_across_users() {
    let (t, app, tokens) = setup(|c| {
        c.limits.events_per_ip = 3;
        c.limits.events_per_user = 10;
    })
    .await;
    let mut streams = Vec::new();
    for token in [&tokens[0], &tokens[0], &tokens[1]] {
        streams.push(
            open(&app, token, "203.0.113.7")
                .await
                .expect("within the cap"),
        );
    }
    // The same client over an IPv6 socket is the same address.
    refused(
        open(&app, &tokens[2], "::ffff:203.0.113.7").await,
        3,
        "address",
    );
    // Another address is not affected.
    streams.push(
        open(&app, &tokens[2], "203.0.113.8")
            .await
            .expect("other address"),
    );
    drop(streams.swap_remove(0));
    streams.push(
        open(&app, &tokens[2], "203.0.113.7")
            .await
            .expect("a freed place"),
    );
    assert_eq!(t.state.events().open_streams(), 4);
}

/// Over a real socket: a client that disconnects gives its place back without any help.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnected_client_gives_its_place_back() {
    let (t, app, tokens) = setup(|c| c.limits.events_per_user = 1).await;
    let server = RunningServer::start(&t.state, app).await;
    let addr = server.addr;
    let head = format!(
        "GET /api/v1/events HTTP/1.1\r\nHost: medianest.test\r\nAuthorization: Bearer {}\r\n\r\n",
        tokens[0]
    );
    let mut first = TcpStream::connect(addr).await.unwrap();
    first.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(DEADLINE, first.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    let answer = |head: String| async move {
        let mut second = TcpStream::connect(addr).await.unwrap();
        second.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(DEADLINE, second.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        (String::from_utf8_lossy(&buf[..n]).into_owned(), second)
    };
    let (text, _) = answer(head.clone()).await;
    assert!(text.starts_with("HTTP/1.1 429"), "{text}");

    drop(first);
    let _held = eventually(DEADLINE, "the place to come back", || {
        let head = head.clone();
        async move {
            let (text, stream) = answer(head).await;
            text.starts_with("HTTP/1.1 200").then_some(stream)
        }
    })
    .await;
    assert_eq!(t.state.events().open_streams(), 1);
    server.stop().await.unwrap();
}
