//! `cargo bench --bench notify`: one `MEDIA_AVAILABLE` for a request with 500 followers.
//!
//! The real server (`medianest::bootstrap` + `medianest::serve`, a WAL database file in a temp
//! dir) on 127.0.0.1, the owner and 500 followers each with ntfy turned on to their own topic,
//! ntfy enabled by the admin and pointing at a fake ntfy server on loopback. For each round a
//! webhook moves one approved request to available: the figure is the time from sending the
//! webhook to its 200 (the request path writes the status change, 501 bell notifications and
//! 501 outbox rows in one transaction), then the time until the delivery worker has all 501
//! messages accepted by the fake. The same rounds with the channel turned off give the webhook's
//! time without outbox rows, for comparison.
//!
//! Settings: `BENCH_ROUNDS` (5), `BENCH_FOLLOWERS` (500). Nothing here talks to anything but
//! 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use medianest::AppState;
use medianest::notifications::prefs;
use medianest::sim::notify::{FakeNotify, Flavor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SECRET: &str = "bench-webhook-secret-0123456789";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Users, their choices, and `rounds` approved requests each followed by every follower.
async fn seed(state: &AppState, followers: usize, rounds: usize, ntfy_url: String) {
    let now = state.clock().now_ms();
    let cipher = state.cipher().clone();
    state
        .db()
        .write(move |tx| {
            let enabled: BTreeMap<String, bool> = [("ntfy".to_owned(), true)].into();
            let mut users = Vec::with_capacity(followers + 1);
            for i in 0..=followers {
                let id = uuid::Uuid::now_v7().to_string();
                tx.execute(
                    "INSERT INTO users (id, username, role, created_at) VALUES (?1, ?2, 'user', ?3)",
                    rusqlite::params![id, format!("member{i}"), now],
                )?;
                let targets = prefs::Targets {
                    ntfy_topic: Some(format!("member{i}")),
                    ..prefs::Targets::default()
                };
                prefs::save(tx, &cipher, &id, &enabled, &targets, None, now)?;
                users.push(id);
            }
            tx.execute(
                "INSERT INTO notification_channels (kind, enabled, settings, updated_at)
                 VALUES ('ntfy', 1, ?1, ?2)",
                rusqlite::params![serde_json::json!({ "url": ntfy_url }).to_string(), now],
            )?;
            for round in 0..rounds * 2 {
                let id = uuid::Uuid::now_v7().to_string();
                tx.execute(
                    "INSERT INTO media_requests
                         (id, user_id, title, media_type, tmdb_id, status, overseerr_id,
                          poster_path, created_at, updated_at)
                     VALUES (?1, ?2, ?3, 'movie', ?4, 'approved', ?4, '/poster.jpg', ?5, ?5)",
                    rusqlite::params![
                        id,
                        users[0],
                        format!("Film {round}"),
                        i64::try_from(round).unwrap() + 1,
                        now
                    ],
                )?;
                for follower in &users[1..] {
                    tx.execute(
                        "INSERT INTO request_followers (request_id, user_id, created_at)
                         VALUES (?1, ?2, ?3)",
                        rusqlite::params![id, follower, now],
                    )?;
                }
            }
            Ok(())
        })
        .await
        .unwrap();
}

async fn set_channel(state: &AppState, on: bool) {
    state
        .db()
        .write(move |tx| {
            tx.execute(
                "UPDATE notification_channels SET enabled = ?1 WHERE kind = 'ntfy'",
                [i64::from(on)],
            )?;
            Ok(())
        })
        .await
        .unwrap();
}

/// Sends the webhook over a fresh connection and answers the time to its status line.
async fn fire(addr: std::net::SocketAddr, overseerr_id: usize) -> Duration {
    let body = format!(
        r#"{{"notification_type":"MEDIA_AVAILABLE","subject":"Film","request":{{"request_id":"{overseerr_id}"}}}}"#
    );
    let head = format!(
        "POST /api/v1/webhooks/overseerr HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {SECRET}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let started = Instant::now();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        answer.extend_from_slice(&buf[..n]);
        if n == 0 || answer.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    took
}

async fn count(state: &AppState, sql: &'static str) -> i64 {
    state
        .db()
        .read(move |conn| Ok(conn.query_row(sql, [], |r| r.get(0))?))
        .await
        .unwrap()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds = env_usize("BENCH_ROUNDS", 5);
    let followers = env_usize("BENCH_FOLLOWERS", 500);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let mut config = medianest::Config {
            data_dir: dir.path().join("data"),
            ..Default::default()
        };
        config.log.level = "warn".into();
        config.admin.password = Some(medianest::config::Secret::new("bench-admin-password"));
        config.webhooks.overseerr_secret = Some(medianest::config::Secret::new(SECRET));
        let state = tokio::task::spawn_blocking(move || {
            medianest::bootstrap(config, medianest::clock::system())
        })
        .await
        .unwrap()
        .unwrap();
        let fake = FakeNotify::start(Flavor::Ntfy(None)).await.unwrap();
        seed(&state, followers, rounds, fake.url()).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(medianest::serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));

        // Without outbox rows: the channel off.
        set_channel(&state, false).await;
        let mut off = Vec::new();
        for round in 0..rounds {
            off.push(ms(fire(addr, rounds + round + 1).await));
        }
        assert_eq!(
            count(&state, "SELECT count(*) FROM notification_deliveries").await,
            0
        );

        set_channel(&state, true).await;
        let mut on = Vec::new();
        let mut drained = Vec::new();
        let per_round = i64::try_from(followers + 1).unwrap();
        for round in 0..rounds {
            let before = fake.received().len();
            let started = Instant::now();
            on.push(ms(fire(addr, round + 1).await));
            // Done when every row of this round is recorded as delivered (the fake has the
            // message a moment before the worker records it).
            let want = per_round * i64::try_from(round + 1).unwrap();
            let deadline = Instant::now() + Duration::from_secs(120);
            while count(
                &state,
                "SELECT count(*) FROM notification_deliveries WHERE status = 'delivered'",
            )
            .await
                < want
            {
                assert!(Instant::now() < deadline, "deliveries did not finish");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            drained.push(ms(started.elapsed()));
            assert_eq!(fake.received().len(), before + followers + 1);
        }
        let total = fake.received().len();
        let distinct: std::collections::BTreeSet<_> = fake
            .received()
            .iter()
            .map(|r| (r.path.clone(), r.header("title").map(str::to_owned)))
            .collect();
        assert_eq!(distinct.len(), total, "a message arrived twice");

        println!("| figure ({followers} followers, {rounds} rounds) | median | max |");
        println!("|---|---|---|");
        let row = |name: &str, v: &[f64]| {
            let max = v.iter().copied().fold(0.0, f64::max);
            println!("| {name} | {:.1} ms | {:.1} ms |", median(v.to_vec()), max);
        };
        row("webhook answered, channel off (no outbox rows)", &off);
        row(
            &format!("webhook answered, {} outbox rows written", followers + 1),
            &on,
        );
        row(
            &format!("webhook sent to all {} delivered", followers + 1),
            &drained,
        );
        let rate: Vec<f64> = drained
            .iter()
            .map(|d| (followers + 1) as f64 / (d / 1000.0))
            .collect();
        println!(
            "| deliveries per second (per_channel_concurrency = {}) | {:.0} | |",
            state.config().notifications.per_channel_concurrency,
            median(rate)
        );
        println!("\n{total} messages accepted by the fake ntfy, none twice.");
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    });
}
