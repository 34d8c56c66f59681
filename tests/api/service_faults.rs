//! Fault tests of service health (SPEC section 8) against the simulators: upstreams refusing
//! connections, hanging past their timeout, answering 500, answering garbage and answering
//! slowly. The status endpoint answers within its own bound with the right status and message;
//! the breaker opens after 5 failures and closes after recovery; hanging upstreams starve
//! neither the database nor the async workers; and an outage reaches `GET /events` within one
//! check interval even with a client connected that never reads.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use medianest::events::{Audience, Event, kind};
use medianest::sim::overseerr::Fault;
use medianest::sim::plex::Fault as PlexFault;
use medianest::sim::uptime_kuma::{Endpoint, Fault as KumaFault, KumaVersion};
use medianest::time::rfc3339;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::services::{ServiceWorld, refused_url, world, world_on, world_with};
use crate::support::{RunningServer, START_MS, call, insert_user, new_session};

/// The services' whole-call timeout in these tests.
const TIMEOUT_MS: u64 = 1000;
/// What the status endpoint may take beyond the slowest check's timeout.
const SLACK: Duration = Duration::from_millis(1000);
const SERVICES: [&str; 3] = ["plex", "overseerr", "uptime_kuma"];

/// `GET /services?refresh=true` as the admin: the list and how long it took.
async fn refresh(w: &ServiceWorld) -> (Vec<Value>, Duration) {
    let began = Instant::now();
    let r = w.get(&w.admin, "/api/v1/services?refresh=true").await;
    let took = began.elapsed();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    (r.data().as_array().unwrap().clone(), took)
}

fn entry<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list:?}"))
}

/// Every service (and the Kuma monitors) up again, after a fault.
async fn all_up(w: &ServiceWorld) {
    let (list, _) = refresh(w).await;
    for s in &list {
        assert_eq!(s["status"], "up", "{s}");
    }
}

/// Each of the three services with the same fault at once: every one is reported with its own
/// status and message, the monitors of the Kuma page are not marked down, and the refresh
/// answers within the timeout plus a little (the checks run concurrently).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_gets_its_status_and_message_within_the_bound() {
    let w = world_with(KumaVersion::V2, |c| c.health.degraded_ms = 200).await;
    for s in SERVICES {
        w.set_timeout_ms(s, TIMEOUT_MS).await;
    }
    all_up(&w).await;
    let bound = Duration::from_millis(TIMEOUT_MS) + SLACK;
    let check = |list: &[Value], status: &str, message: &dyn Fn(&str) -> String| {
        for (name, display) in [
            ("plex", "Plex"),
            // The client's messages say Seerr for Seerr and Overseerr alike; the card's
            // displayName names the one detected.
            ("overseerr", "Seerr"),
            ("uptime_kuma", "Uptime Kuma"),
        ] {
            let s = entry(list, name);
            assert_eq!(s["status"], status, "{s}");
            assert_eq!(s["message"], message(display), "{s}");
        }
        for monitor in ["kuma:1", "kuma:2"] {
            assert_eq!(entry(list, monitor)["status"], "up", "not 'all down'");
        }
    };

    // 500.
    w.plex.fail_next(1, PlexFault::Status(500));
    w.overseerr.fail_next(1, Fault::Status(500));
    w.kuma
        .fail_next_on(Endpoint::Page, 1, KumaFault::Status(500));
    let (list, took) = refresh(&w).await;
    check(&list, "down", &|d| {
        format!("{d} returned an unexpected response.")
    });
    assert!(took < bound, "{took:?}");
    for s in SERVICES {
        assert_eq!(entry(&list, s)["responseTimeMs"], Value::Null);
    }
    all_up(&w).await;

    // Garbage JSON with a 200.
    w.plex.fail_next(1, PlexFault::Garbage);
    w.overseerr.fail_next(1, Fault::Garbage);
    w.kuma
        .fail_next_on(Endpoint::Heartbeat, 1, KumaFault::Garbage);
    let (list, took) = refresh(&w).await;
    check(&list, "down", &|d| {
        format!("{d} returned an unexpected response.")
    });
    assert!(took < bound, "{took:?}");
    all_up(&w).await;

    // Hanging past the timeout: cut off at the timeout, not when the upstream gives up.
    let forever = Duration::from_secs(60);
    w.plex.fail_next(1, PlexFault::Hang(forever));
    w.overseerr.fail_next(1, Fault::Hang(forever));
    w.kuma
        .fail_next_on(Endpoint::Page, 1, KumaFault::Hang(forever));
    let (list, took) = refresh(&w).await;
    check(&list, "down", &|d| format!("{d} did not answer in time."));
    assert!(took >= Duration::from_millis(TIMEOUT_MS), "{took:?}");
    assert!(took < bound, "the checks ran one after another: {took:?}");
    all_up(&w).await;

    // Slow but within the timeout: degraded, with the time it took.
    let slow = Duration::from_millis(400);
    w.plex.set_latency(slow);
    w.overseerr.set_latency(slow);
    w.kuma.set_latency(slow);
    let (list, took) = refresh(&w).await;
    for name in SERVICES {
        let s = entry(&list, name);
        assert_eq!(s["status"], "degraded", "{s}");
        let ms = s["responseTimeMs"].as_i64().unwrap();
        assert!((400..TIMEOUT_MS as i64).contains(&ms), "{s}");
        assert_eq!(s["message"], format!("Slow: answered in {ms} ms."));
    }
    assert!(took < bound, "{took:?}");
    w.plex.set_latency(Duration::ZERO);
    w.overseerr.set_latency(Duration::ZERO);
    w.kuma.set_latency(Duration::ZERO);
    all_up(&w).await;

    // Refusing connections.
    for s in SERVICES {
        w.set_url(s, &refused_url()).await;
    }
    let (list, took) = refresh(&w).await;
    check(&list, "down", &|d| {
        format!("{d} is temporarily unavailable.")
    });
    assert!(took < bound, "{took:?}");
}

/// Overseerr failing in every way in turn: 5 failures in a row open the breaker (a 4xx is an
/// answer and starts the count again); while open, checks fail at once without a call; after
/// 30 s one probe goes through, a failed probe re-opens it for twice as long, a good one closes
/// it. Admins hear of the outage once and of the recovery once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_after_five_failures_and_closes_after_recovery() {
    let w = world().await;
    w.set_timeout_ms("overseerr", TIMEOUT_MS).await;
    let calls = || w.overseerr.requests("GET /api/v1/status");
    let failures = |b: &Value| b["consecutiveFailures"].as_u64().unwrap();

    w.cycle().await;
    for fault in [
        Fault::Status(500),
        Fault::Garbage,
        Fault::Hang(Duration::from_secs(60)),
        // Not 502-504: those are retried, and the retry gets the good answer.
        Fault::Status(501),
    ] {
        w.overseerr.fail_next(1, fault);
        w.t.clock.advance(1000);
        w.cycle().await;
        assert_eq!(w.status("overseerr").await, "down");
    }
    let b = w.breaker("overseerr").await;
    assert_eq!((b["state"].as_str(), failures(&b)), (Some("closed"), 4));

    // A 4xx: the service answered. Down (the probe wants a 2xx) but no breaker failure.
    w.overseerr.fail_next(1, Fault::Status(404));
    w.t.clock.advance(1000);
    w.cycle().await;
    assert_eq!(w.status("overseerr").await, "down");
    assert_eq!(failures(&w.breaker("overseerr").await), 0);

    w.overseerr.fail_next(5, Fault::Status(500));
    for n in 1..=5 {
        w.t.clock.advance(1000);
        w.cycle().await;
        assert_eq!(failures(&w.breaker("overseerr").await), n);
    }
    let opened_at = START_MS + 10_000;
    let b = w.breaker("overseerr").await;
    assert_eq!(b["state"], "open");
    assert_eq!(b["openedAt"], rfc3339(opened_at));
    assert_eq!(b["retryAt"], rfc3339(opened_at + 30_000));

    // Open: no call, an answer at once.
    let before = calls();
    w.t.clock.advance(29_999);
    let (list, took) = refresh(&w).await;
    let s = entry(&list, "overseerr");
    assert_eq!(s["status"], "down");
    assert_eq!(s["message"], "Seerr is temporarily unavailable.");
    assert_eq!(s["breaker"], "open");
    assert_eq!(calls(), before, "an open breaker calls nobody");
    assert!(took < Duration::from_millis(500), "{took:?}");

    // Half-open after 30 s: one probe; it fails, so open again for 60 s.
    w.t.clock.advance(1);
    assert_eq!(w.breaker("overseerr").await["state"], "half_open");
    w.overseerr.fail_next(1, Fault::Status(500));
    w.cycle().await;
    assert_eq!(calls(), before + 1, "one probe");
    let b = w.breaker("overseerr").await;
    assert_eq!(b["state"], "open");
    let reopened = opened_at + 30_000;
    assert_eq!(b["retryAt"], rfc3339(reopened + 60_000));
    w.t.clock.advance(59_999);
    w.cycle().await;
    assert_eq!(calls(), before + 1);

    // Recovered: the next probe closes it.
    w.t.clock.advance(1);
    w.cycle().await;
    assert_eq!(calls(), before + 2);
    let b = w.breaker("overseerr").await;
    assert_eq!((b["state"].as_str(), failures(&b)), (Some("closed"), 0));
    let s = w.service("overseerr").await;
    assert_eq!(s["status"], "up");
    assert_eq!(s["breaker"], "closed");

    assert_eq!(w.notifications(&w.admin_id, "service.down").await, 1);
    assert_eq!(w.notifications(&w.admin_id, "service.up").await, 1);
    assert_eq!(w.notifications(&w.user_id, "service.down").await, 0);
}

/// Plex refusing connections: the breaker opens after 5 checks; when a server listens on that
/// address again, the probe after the open period closes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_open_the_breaker_until_the_server_is_back() {
    let w = world().await;
    let url = refused_url();
    w.set_url("plex", &url).await;
    // Short: each refused check retries twice within it.
    w.set_timeout_ms("plex", 500).await;
    for n in 1..=5 {
        w.cycle().await;
        let s = w.service("plex").await;
        assert_eq!(s["status"], "down");
        assert_eq!(s["message"], "Plex is temporarily unavailable.");
        assert_eq!(w.breaker("plex").await["consecutiveFailures"], n);
    }
    assert_eq!(w.breaker("plex").await["state"], "open");

    // The server comes back on the same address (a forwarder to the fake Plex).
    let addr = url.trim_start_matches("http://").to_owned();
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    let target = w.plex.addr();
    let forwarder = tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    w.t.clock.advance(29_999);
    w.cycle().await;
    assert_eq!(w.plex.requests("GET /identity"), 0, "still open");
    w.t.clock.advance(1);
    w.cycle().await;
    assert_eq!(w.plex.requests("GET /identity"), 1, "the probe");
    let s = w.service("plex").await;
    assert_eq!(s["status"], "up");
    assert_eq!(s["breaker"], "closed");
    assert_eq!(w.breaker("plex").await["consecutiveFailures"], 0);
    forwarder.abort();
}

/// N concurrent handlers stuck on a hanging Overseerr (connection tests and admin refreshes)
/// while other requests keep coming: liveness (async workers only), a database-backed
/// authenticated list and the status list must each keep answering quickly. The runtime has
/// the production's bounds (2 workers here, `max_blocking_threads(64)` as in `src/main.rs`), and
/// N exceeds the blocking pool: only the upstream gates keep the database's threads free.
#[test]
fn a_hanging_upstream_starves_neither_the_database_nor_the_workers() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(hanging_upstream_scenario());
}

async fn hanging_upstream_scenario() {
    const TESTS: usize = 96;
    const REFRESHES: usize = 32;
    const HANG_TIMEOUT_MS: u64 = 3000;
    // A starved pool or worker would hold a probe for the whole hang (3 s); a third of it
    // tells that apart from a busy machine's scheduling delays.
    let quick = Duration::from_millis(HANG_TIMEOUT_MS / 3);
    // A database file, as in production: WAL readers are not blocked by the cycle's writes
    // (the shared-cache memory database of other tests locks tables instead).
    let w = world_on(
        KumaVersion::V2,
        |c| {
            // The probes below are many; the rate limits are not what this test is about.
            c.limits.ip_per_second = 1_000_000;
            c.limits.ip_burst = 1_000_000;
            c.limits.user_per_minute = 1_000_000;
        },
        crate::support::file_db,
    )
    .await;
    w.cycle().await;
    w.set_timeout_ms("overseerr", HANG_TIMEOUT_MS).await;
    w.overseerr.set_latency(Duration::from_secs(60));

    let began = Instant::now();
    let mut stuck = tokio::task::JoinSet::new();
    for i in 0..TESTS + REFRESHES {
        let app = w.app.clone();
        let admin = w.admin.clone();
        stuck.spawn(async move {
            let r = if i < TESTS {
                call("POST", "/api/v1/admin/services/overseerr/test")
                    .bearer(&admin)
                    .json(json!({}))
                    .send(&app)
                    .await
            } else {
                call("GET", "/api/v1/services?refresh=true")
                    .bearer(&admin)
                    .send(&app)
                    .await
            };
            (i < TESTS, r)
        });
    }

    let probes = [
        ("/health", None),
        ("/api/v1/notifications", Some(w.user.clone())),
        ("/api/v1/services", Some(w.user.clone())),
    ];
    let mut worst = [Duration::ZERO; 3];
    let mut rounds = 0;
    let mut answers = Vec::new();
    while !stuck.is_empty() {
        for (i, (path, token)) in probes.iter().enumerate() {
            let mut request = call("GET", path);
            if let Some(token) = token {
                request = request.bearer(token);
            }
            let t = Instant::now();
            let r = tokio::time::timeout(Duration::from_secs(30), request.send(&w.app))
                .await
                .expect("the probe answered at all");
            worst[i] = worst[i].max(t.elapsed());
            assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
        }
        rounds += 1;
        while let Some(done) = stuck.try_join_next() {
            answers.push(done.unwrap());
        }
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "the stuck handlers did not finish"
        );
    }
    let hung_for = began.elapsed();
    for (i, (path, _)) in probes.iter().enumerate() {
        assert!(
            worst[i] < quick,
            "{path} took {:?} while Overseerr hung ({rounds} rounds)",
            worst[i]
        );
    }
    assert!(
        hung_for >= Duration::from_millis(HANG_TIMEOUT_MS),
        "the handlers were stuck for {hung_for:?} only"
    );
    assert!(rounds >= 5, "only {rounds} rounds of probes");

    assert_eq!(answers.len(), TESTS + REFRESHES);
    for (test, r) in &answers {
        let data = r.data();
        if *test {
            assert_eq!(data["ok"], false, "{data}");
            assert_eq!(data["error"], "Seerr did not answer in time.");
        } else {
            let s = entry(data.as_array().unwrap(), "overseerr");
            assert_eq!(s["status"], "down", "{s}");
            assert_eq!(s["message"], "Seerr did not answer in time.");
        }
    }
    w.overseerr.set_latency(Duration::ZERO);
}

/// A live-event client over TCP: the raw stream, scanned for frames.
struct SseClient {
    stream: TcpStream,
    buf: Vec<u8>,
    scanned: usize,
}

/// The request that opens `GET /events` with a bearer token.
fn events_request(token: &str) -> String {
    format!(
        "GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
}

impl SseClient {
    async fn open(addr: std::net::SocketAddr, token: &str) -> Self {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(events_request(token).as_bytes())
            .await
            .unwrap();
        let mut client = Self {
            stream,
            buf: Vec::new(),
            scanned: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        client
            .until(deadline, |text| text.contains("retry: 5000"))
            .await;
        assert!(
            String::from_utf8_lossy(&client.buf).starts_with("HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&client.buf)
        );
        client
    }

    /// Reads until `done` holds for the text not yet scanned, or panics at `deadline`. Text
    /// once scanned is not looked at again (but for a short overlap, for a marker that arrived
    /// in two reads).
    async fn until(&mut self, deadline: Instant, mut done: impl FnMut(&str) -> bool) {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if done(&String::from_utf8_lossy(&self.buf[self.scanned..])) {
                return;
            }
            self.scanned = self.buf.len().saturating_sub(64);
            let n = tokio::time::timeout_at(deadline.into(), self.stream.read(&mut chunk))
                .await
                .expect("the awaited frame in time")
                .unwrap();
            assert!(n > 0, "the stream ended");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next `event: <kind>` frame whose data satisfies `wanted`.
    async fn next_event(
        &mut self,
        kind: &str,
        deadline: Instant,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        let marker = format!("event: {kind}\ndata: ");
        loop {
            let text = String::from_utf8_lossy(&self.buf[self.scanned..]).into_owned();
            if let Some(at) = text.find(&marker) {
                let start = at + marker.len();
                if let Some(len) = text[start..].find('\n') {
                    self.scanned += start + len;
                    let data: Value = serde_json::from_str(&text[start..start + len]).unwrap();
                    if wanted(&data) {
                        return data;
                    }
                    continue;
                }
            }
            let mut chunk = vec![0u8; 64 * 1024];
            let n = tokio::time::timeout_at(deadline.into(), self.stream.read(&mut chunk))
                .await
                .unwrap_or_else(|_| panic!("no {kind} event in time"))
                .unwrap();
            assert!(n > 0, "the stream ended");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The health-check loop (`health.interval_secs = 5`, the minimum) runs in `serve_app`. Once
/// Overseerr goes away, a signed-in client of `GET /events` gets the `service.status` event
/// within one interval plus the check's timeout, while another client that never reads its
/// stream is flooded past the bus's capacity: it is skipped ahead (told `lagged`) and holds up
/// neither the checks nor the other client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_reaches_live_clients_within_one_check_interval() {
    const CHECK_TIMEOUT_MS: u64 = 2000;
    let w = world_with(KumaVersion::V2, |c| c.health.interval_secs = 5).await;
    w.set_timeout_ms("overseerr", CHECK_TIMEOUT_MS).await;
    let interval = Duration::from_secs(w.t.state.config().health.interval_secs);
    let stalled_id = insert_user(&w.t.state, "stalled", None, "user", None).await;
    let stalled_token = new_session(&w.t.state, &stalled_id).await.token;

    // The loop's first cycle runs at start: wait for it on the bus.
    let mut bus = w.t.state.events().subscribe();
    let server = RunningServer::start(&w.t.state, w.app.clone()).await;
    let first = Instant::now() + Duration::from_secs(15);
    loop {
        let e = tokio::time::timeout_at(first.into(), bus.recv())
            .await
            .expect("the first cycle in time")
            .unwrap();
        let data: Value = serde_json::from_str(&e.data).unwrap();
        if e.kind == kind::SERVICE_STATUS && data["name"] == "overseerr" {
            assert_eq!(data["status"], "up", "{data}");
            break;
        }
    }
    drop(bus);

    // A client that never reads, with a tiny receive buffer, flooded far past what the socket
    // buffers and the bus hold for it.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(1024).unwrap();
    let mut stalled = socket.connect(server.addr).await.unwrap();
    stalled
        .write_all(events_request(&stalled_token).as_bytes())
        .await
        .unwrap();
    let mut reader = SseClient::open(server.addr, &w.user).await;
    let pad = "x".repeat(2048);
    let flooding = Instant::now();
    for n in 0..8000 {
        w.t.state.events().publish(Event::new(
            kind::DOWNLOAD_PROGRESS,
            Audience::User(stalled_id.clone()),
            &json!({"n": n, "pad": pad}),
        ));
    }
    assert!(
        flooding.elapsed() < Duration::from_secs(2),
        "publishing waited for a reader: {:?}",
        flooding.elapsed()
    );

    // The outage.
    w.overseerr.shutdown().await;
    let outage = Instant::now();
    let bound = interval + Duration::from_millis(CHECK_TIMEOUT_MS);
    let event = reader
        .next_event(
            kind::SERVICE_STATUS,
            outage + bound + Duration::from_secs(10),
            |d| d["name"] == "overseerr" && d["status"] != "up",
        )
        .await;
    let took = outage.elapsed();
    assert_eq!(event["status"], "down", "{event}");
    assert_eq!(event["message"], "Seerr is temporarily unavailable.");
    assert!(took < bound, "the event came {took:?} after the outage");

    // The client that did not read was skipped ahead, not waited for.
    let mut lagged = SseClient {
        stream: stalled,
        buf: Vec::new(),
        scanned: 0,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    lagged
        .until(deadline, |text| text.contains("event: lagged"))
        .await;
    drop(lagged);
    drop(reader);
    server.stop().await.unwrap();
}

/// A loopback listener that counts the connections it gets and answers each request with
/// `answer`; its URL and the count.
async fn listener_answering(
    answer: String,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    (url, count)
}

/// A service that answers with a redirect: the redirect is not followed (it would carry
/// X-Plex-Token / X-Api-Key, which a redirect keeps, to the new address), the call fails with
/// 502 `UPSTREAM_ERROR` saying why, and the connection test says the same to the admin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_followed_and_fails_with_a_clear_message() {
    use std::sync::atomic::Ordering;
    let w = world().await;
    let (elsewhere, reached) =
        listener_answering("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".into()).await;
    let (redirector, asked) = listener_answering(format!(
        "HTTP/1.1 302 Found\r\nLocation: {elsewhere}/stolen\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    ))
    .await;
    for service in SERVICES {
        w.set_url(service, &redirector).await;
    }

    let r = w.get(&w.user, "/api/v1/plex/libraries").await;
    let error = crate::support::assert_error(&r, StatusCode::BAD_GATEWAY, "UPSTREAM_ERROR");
    assert_eq!(
        error["details"]["reason"],
        "Plex answered with a redirect to another address; set the service URL to the final \
         address",
        "{error}"
    );
    let r = w.get(&w.user, "/api/v1/media/search?query=matrix").await;
    let error = crate::support::assert_error(&r, StatusCode::BAD_GATEWAY, "UPSTREAM_ERROR");
    assert!(
        error["details"]["reason"]
            .as_str()
            .is_some_and(|m| m.starts_with("Seerr answered with a redirect")),
        "{error}"
    );
    for (service, display, key) in [
        ("plex", "Plex", Some(w.plex.token())),
        (
            "overseerr",
            "Seerr",
            Some(crate::support::services::OVERSEERR_KEY.to_owned()),
        ),
        ("uptime_kuma", "Uptime Kuma", None),
    ] {
        let mut body = json!({"url": redirector});
        if let Some(key) = key {
            body["apiKey"] = json!(key);
        }
        let r = w.test_service(service, body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.data()["ok"], false, "{}", r.text());
        assert_eq!(
            r.data()["error"],
            format!(
                "{display} answered with a redirect to another address; set the service URL \
                 to the final address"
            ),
            "{}",
            r.text()
        );
    }
    assert!(asked.load(Ordering::SeqCst) >= 5, "the services were asked");
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "a redirect was followed to another address"
    );
}
