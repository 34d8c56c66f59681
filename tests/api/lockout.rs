//! Sign-in lockouts under attack (issue 11): parallel guesses cannot get past the limits (each
//! attempt is reserved before its password is hashed), a lockout holds the username only for the
//! client that failed while other clients only meet a growing delay, IPv6 clients count by their
//! /64, and behind a reverse proxy on a `[::]` listener the forwarded client is the one limited.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::StatusCode;
use medianest::Config;
use medianest::config::Secret;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{self, RunningServer, TestResponse, assert_error, call, insert_user};

const ADMIN_PASSWORD: &str = "configured admin pw 1";

fn with_admin_password(config: &mut Config) {
    config.admin.password = Some(Secret::new(ADMIN_PASSWORD));
}

async fn prepared(edit: impl FnOnce(&mut Config)) -> support::TestState {
    let t = support::test_state_with(|c| {
        with_admin_password(c);
        edit(c);
    });
    support::prepare(&t).await;
    t
}

/// One `POST /api/v1/auth/login` over a fresh connection to a real server; the status and body.
async fn post_login(
    addr: SocketAddr,
    forwarded: Option<&str>,
    username: &str,
    password: &str,
) -> (u16, String) {
    let body = json!({ "username": username, "password": password }).to_string();
    let forwarded = forwarded.map_or(String::new(), |f| format!("X-Forwarded-For: {f}\r\n"));
    let request = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n{forwarded}Connection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).await.unwrap();
        text
    };
    let text = tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .expect("an answer within 60 s");
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    (status, text)
}

/// Sends `n` wrong passwords at once (username `username(i)`) to a real server; the answers'
/// statuses counted as (401 INVALID_CREDENTIALS, 429 RATE_LIMITED).
async fn parallel_failures(
    addr: SocketAddr,
    n: usize,
    username: impl Fn(usize) -> String,
) -> (usize, usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let username = username(i);
        tasks.spawn(async move { post_login(addr, None, &username, "not the password").await });
    }
    let (mut refused, mut limited) = (0, 0);
    while let Some(joined) = tasks.join_next().await {
        let (status, text) = joined.unwrap();
        match status {
            401 => {
                assert!(text.contains("INVALID_CREDENTIALS"), "{text}");
                refused += 1;
            }
            429 => {
                assert!(text.contains("RATE_LIMITED"), "{text}");
                assert!(text.to_ascii_lowercase().contains("retry-after:"), "{text}");
                limited += 1;
            }
            other => panic!("unexpected {other}: {text}"),
        }
    }
    (refused, limited)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_parallel_wrong_passwords_for_one_username_are_five_guesses() {
    // All at once from one address: more connections than server.max_connections_per_ip.
    let t = prepared(|c| c.server.max_connections_per_ip = 128).await;
    let server = RunningServer::start(&t.state, t.router()).await;
    let (refused, limited) = parallel_failures(server.addr, 60, |_| "admin".to_owned()).await;
    assert_eq!(
        (refused, limited),
        (5, 55),
        "only login_failures_per_username passwords may be checked"
    );
    // The right password from the same client is locked out too.
    let (status, _) = post_login(server.addr, None, "admin", ADMIN_PASSWORD).await;
    assert_eq!(status, 429);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_parallel_wrong_passwords_from_one_ip_are_twenty_guesses() {
    // All at once from one address: more connections than server.max_connections_per_ip.
    let t = prepared(|c| c.server.max_connections_per_ip = 128).await;
    let server = RunningServer::start(&t.state, t.router()).await;
    // Different usernames, so only the per-IP limit applies.
    let (refused, limited) = parallel_failures(server.addr, 100, |i| format!("guess{i}")).await;
    assert_eq!(
        (refused, limited),
        (20, 80),
        "only login_failures_per_ip passwords may be checked"
    );
    server.stop().await.unwrap();
}

/// Sends `n` wrong passwords for `username` at once through the router, each from its own IP.
async fn parallel_failures_from_many_ips(
    app: &axum::Router,
    n: usize,
    username: &str,
) -> Vec<TestResponse> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let app = app.clone();
        let username = username.to_owned();
        tasks.spawn(async move {
            call("POST", "/api/v1/auth/login")
                .peer(&format!("198.51.100.{}", i + 1))
                .json(json!({ "username": username, "password": "not the password" }))
                .send(&app)
                .await
        });
    }
    let mut answers = Vec::new();
    while let Some(r) = tasks.join_next().await {
        answers.push(r.unwrap());
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_guesses_from_one_address_meet_its_delay_after_five_failures() {
    let t = prepared(|_| {}).await;
    let app = t.router();
    // Five failures at the account from five addresses: no delay yet, each gets its guess.
    let answers = parallel_failures_from_many_ips(&app, 5, "admin").await;
    assert!(answers.iter().all(|r| r.status == StatusCode::UNAUTHORIZED));
    // Then twenty at once from one address: its first is checked, the rest wait after it.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let app = app.clone();
        tasks.spawn(async move {
            login_from("203.0.113.50", "admin", "guess")
                .send(&app)
                .await
        });
    }
    let (mut refused, mut limited) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        match r.unwrap().status {
            StatusCode::UNAUTHORIZED => refused += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((refused, limited), (1, 19));
}

fn login_from(ip: &str, username: &str, password: &str) -> support::Call {
    call("POST", "/api/v1/auth/login")
        .peer(ip)
        .json(json!({ "username": username, "password": password }))
}

/// The 429's `retryAfter`, checked against the `Retry-After` header.
fn retry_after(r: &TestResponse) -> i64 {
    let error = assert_error(r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    let seconds = error["retryAfter"].as_i64().unwrap();
    assert_eq!(r.header("retry-after"), Some(seconds.to_string().as_str()));
    seconds
}

#[tokio::test]
async fn an_attacker_locks_only_itself_out_and_the_admin_signs_in_at_once() {
    let t = prepared(|_| {}).await;
    let app = t.router();
    let attacker = "203.0.113.66";
    for _ in 0..5 {
        let r = login_from(attacker, "admin", "guess").send(&app).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
    // The attacker is locked out of the admin for the rest of the 15 minutes.
    let wait = retry_after(
        &login_from(attacker, "admin", ADMIN_PASSWORD)
            .send(&app)
            .await,
    );
    assert!(wait > 60, "{wait}");

    // The admin, elsewhere, has not tried lately: it signs in at once.
    let admin = "192.0.2.1";
    let r = login_from(admin, "admin", ADMIN_PASSWORD).send(&app).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // And the attacker is still locked out.
    retry_after(
        &login_from(attacker, "admin", ADMIN_PASSWORD)
            .send(&app)
            .await,
    );
}

#[tokio::test]
async fn failures_from_many_addresses_make_each_clients_delay_grow_to_its_cap() {
    let t = prepared(|c| c.limits.login_delay_max_secs = 8).await;
    let app = t.router();
    for i in 1..=5 {
        let r = login_from(&format!("198.51.100.{i}"), "admin", "guess")
            .send(&app)
            .await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
    // A client that has not tried gets its attempt at once; its next one waits after it, the
    // longer the more failures the account has had (2 s after the sixth, then 4, 8, 8).
    let guesser = "203.0.113.9";
    let fail = || login_from(guesser, "admin", "guess").send(&app);
    assert_error(
        &fail().await,
        StatusCode::UNAUTHORIZED,
        "INVALID_CREDENTIALS",
    );
    for expected in [2, 4, 8, 8] {
        assert_eq!(retry_after(&fail().await), expected);
        t.clock.advance(expected * 1000 - 1);
        assert_eq!(retry_after(&fail().await), 1, "1 ms early");
        t.clock.advance(1);
        assert_error(
            &fail().await,
            StatusCode::UNAUTHORIZED,
            "INVALID_CREDENTIALS",
        );
    }
    assert!(retry_after(&fail().await) > 60, "five failures: locked out");
    // The owner, meanwhile, signs in at once.
    let r = login_from("192.0.2.1", "admin", ADMIN_PASSWORD)
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

/// Attackers at several addresses poll the account every 10 ms (they would win the first slot
/// after any shared delay and restart it); the owner's client, which has not tried, signs in on
/// its first try. Through a real server, the attackers' addresses forwarded by a trusted proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn polling_attackers_cannot_keep_the_owner_out() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let t = prepared(|c| {
        c.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()].into();
    })
    .await;
    let server = RunningServer::start(&t.state, t.router()).await;
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let checked = Arc::new(AtomicUsize::new(0));
    let mut attackers = tokio::task::JoinSet::new();
    for i in 1..=6 {
        let (stop, checked) = (stop.clone(), checked.clone());
        attackers.spawn(async move {
            let me = format!("203.0.113.{i}");
            let mut every = tokio::time::interval(Duration::from_millis(10));
            while !stop.load(Ordering::SeqCst) {
                every.tick().await;
                let (status, text) = post_login(addr, Some(&me), "admin", "guess").await;
                match status {
                    401 => {
                        checked.fetch_add(1, Ordering::SeqCst);
                    }
                    429 => {}
                    other => panic!("unexpected {other}: {text}"),
                }
            }
        });
    }
    let wait_for_checked = |n: usize| {
        let checked = checked.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while checked.load(Ordering::SeqCst) < n {
                assert!(tokio::time::Instant::now() < deadline, "attackers stalled");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    // The account has its five failures and more; then, each time the delay ends, an attacker
    // wins the next slot at once.
    wait_for_checked(5).await;
    for _ in 0..3 {
        let before = checked.load(Ordering::SeqCst);
        t.clock.advance(30_000);
        wait_for_checked(before + 1).await;
    }
    // The owner's first try, right after an attacker's failure.
    let (status, text) = post_login(addr, Some("192.0.2.1"), "admin", ADMIN_PASSWORD).await;
    stop.store(true, Ordering::SeqCst);
    while let Some(joined) = attackers.join_next().await {
        joined.unwrap();
    }
    assert_eq!(status, 200, "the owner signs in at once: {text}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn ipv6_clients_in_one_64_share_a_lockout() {
    let t = prepared(|_| {}).await;
    let alice = insert_user(&t.state, "alice", None, "user", Some("alice's password 1")).await;
    assert!(!alice.is_empty());
    let app = t.router();
    // Five addresses of one /64: one client.
    for i in 1..=5 {
        let r = login_from(&format!("2001:db8:7:8::{i}"), "alice", "guess")
            .send(&app)
            .await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
    let wait = retry_after(
        &login_from("2001:db8:7:8:ffff::1", "alice", "alice's password 1")
            .send(&app)
            .await,
    );
    assert!(wait > 60, "the /64 is locked out, not delayed: {wait}");
    // Another /64 only waits out the delay.
    t.clock.advance(1000);
    let r = login_from("2001:db8:7:9::1", "alice", "alice's password 1")
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn a_proxy_range_is_trusted_for_x_forwarded_for() {
    let t = prepared(|c| {
        c.server.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()].into();
    })
    .await;
    let app = t.router();
    let from = |forwarded: &str, password: &str| {
        login_from("10.20.30.40", "admin", password).header("x-forwarded-for", forwarded)
    };
    for _ in 0..5 {
        let r = from("203.0.113.7", "guess").send(&app).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
    assert!(retry_after(&from("203.0.113.7", ADMIN_PASSWORD).send(&app).await) > 60);
    t.clock.advance(1000);
    let r = from("203.0.113.8", ADMIN_PASSWORD).send(&app).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dual_stack_listener_believes_its_ipv4_proxy() {
    let t = prepared(|c| {
        c.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()].into();
    })
    .await;
    // `[::]` reports an IPv4 peer as ::ffff:127.0.0.1.
    let listener = tokio::net::TcpListener::bind("[::]:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(medianest::serve_app(
        listener,
        t.state.clone(),
        t.router(),
        async move {
            let _ = stopped.await;
        },
    ));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..5 {
        let (status, text) = post_login(addr, Some("203.0.113.7"), "admin", "guess").await;
        assert_eq!(status, 401, "{text}");
    }
    let (status, _) = post_login(addr, Some("203.0.113.7"), "admin", ADMIN_PASSWORD).await;
    assert_eq!(status, 429, "the forwarded client is locked out");
    t.clock.advance(1000);
    let (status, text) = post_login(addr, Some("203.0.113.8"), "admin", ADMIN_PASSWORD).await;
    assert_eq!(
        status, 200,
        "another client behind the proxy signs in: {text}"
    );
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// The `rate_limits` counts of the admin's sign-in rows: (this client's, the account's). The
/// test database is a shared-cache memory one, whose readers meet table locks while the sign-in
/// writes: a busy read is asked again (for up to a few seconds), any other error fails.
async fn admin_login_counts(t: &support::TestState) -> (i64, i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let read = t
            .state
            .db()
            .run(|conn| {
                let sum = |like: &str| -> rusqlite::Result<i64> {
                    conn.query_row(
                        "SELECT coalesce(sum(request_count), 0) FROM rate_limits WHERE key LIKE ?1",
                        [like],
                        |r| r.get(0),
                    )
                };
                Ok((sum("login:admin|%")?, sum("login:admin")?))
            })
            .await;
        match read {
            Ok(counts) => return counts,
            Err(e) if e.code() == medianest::error::ErrorCode::DatabaseBusy => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "busy for 5 s: {e:?}"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => panic!("reading the sign-in counts: {e:?}"),
        }
    }
}

/// Takes every slot of the CPU gate, so no password can be checked until it is dropped.
async fn hold_cpu_gate(t: &support::TestState) -> tokio::sync::OwnedSemaphorePermit {
    let gate = t.state.cpu_gate().clone();
    let all = u32::try_from(gate.available_permits()).unwrap();
    gate.acquire_many_owned(all).await.unwrap()
}

#[tokio::test]
async fn a_busy_cpu_gate_answers_503_and_the_attempt_is_not_counted() {
    let t = prepared(|c| {
        c.server.request_timeout_secs = 1;
        c.limits.login_failures_per_ip = 1;
        c.limits.login_failures_per_username = 1;
    })
    .await;
    let app = t.router();
    let busy = hold_cpu_gate(&t).await;
    // The wait for the gate is bounded below the request timeout: a 503, not a 408.
    let r = login_from("192.0.2.1", "admin", ADMIN_PASSWORD)
        .send(&app)
        .await;
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
    assert!(r.header("retry-after").is_some());
    assert_eq!(admin_login_counts(&t).await, (0, 0), "given back");
    drop(busy);
    // The one attempt allowed per client and per address is still there.
    let r = login_from("192.0.2.1", "admin", ADMIN_PASSWORD)
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_dropped_before_its_result_is_not_counted() {
    let t = prepared(|c| {
        c.limits.login_failures_per_ip = 1;
        c.limits.login_failures_per_username = 1;
    })
    .await;
    let app = t.router();
    let busy = hold_cpu_gate(&t).await;
    let pending = {
        let app = app.clone();
        tokio::spawn(async move {
            login_from("192.0.2.1", "admin", ADMIN_PASSWORD)
                .send(&app)
                .await
        })
    };
    // The attempt is reserved, then waits for the gate; the request is dropped there (as the
    // edge's request timeout or a closed connection drops it).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while admin_login_counts(&t).await != (1, 1) {
        assert!(tokio::time::Instant::now() < deadline, "never reserved");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    pending.abort();
    assert!(pending.await.unwrap_err().is_cancelled());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while admin_login_counts(&t).await != (0, 0) {
        assert!(tokio::time::Instant::now() < deadline, "never given back");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(busy);
    let r = login_from("192.0.2.1", "admin", ADMIN_PASSWORD)
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}
