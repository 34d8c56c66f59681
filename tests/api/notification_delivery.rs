//! Notification delivery (issue 14): the outbox rows written with the change that caused them,
//! and the delivery worker sending them to real servers on loopback (fakes of ntfy, Discord, a
//! webhook receiver and a push service): retries with backoff, lasting failures, per-channel
//! independence, the per-user rate limit, service flaps folded, and deliveries interrupted by a
//! stop sent again with the same idempotency key.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use medianest::clock::Clock as _;
use medianest::error::AppError;
use medianest::notifications::{self, prefs, worker};
use medianest::sim::notify::{FakeNotify, Fault, Flavor};
use medianest::sim::push::FakePushService;
use serde_json::{Value, json};

use crate::support::{
    TestState, call, eventually, file_db, insert_user, new_session, scalar, test_state_with_db,
};

const WAIT: Duration = Duration::from_secs(20);

struct World {
    t: TestState,
    app: Router,
    admin: String,
    admin_id: String,
    user_id: String,
    ntfy: FakeNotify,
    discord: FakeNotify,
    hooks: FakeNotify,
}

async fn world_with(edit: impl FnOnce(&mut medianest::Config) + Send) -> World {
    let ntfy = FakeNotify::start(Flavor::Ntfy(None)).await.unwrap();
    let discord = FakeNotify::start(Flavor::Discord).await.unwrap();
    let hooks = FakeNotify::start(Flavor::Webhook).await.unwrap();
    let discord_url = discord.url();
    let edit = move |c: &mut medianest::Config| {
        c.notifications.discord_base_url = discord_url;
        c.push.allow_http_endpoints = true;
        edit(c);
    };
    let t = test_state_with_db(edit, file_db);
    let app = t.router();
    let admin_id = insert_user(&t.state, "admin", Some("admin@home.example"), "admin", None).await;
    let admin = new_session(&t.state, &admin_id).await.token;
    let user_id = insert_user(&t.state, "mia", Some("mia@home.example"), "user", None).await;
    let w = World {
        t,
        app,
        admin,
        admin_id,
        user_id,
        ntfy,
        discord,
        hooks,
    };
    w.channel("ntfy", json!({"enabled": true, "url": w.ntfy.url()}))
        .await;
    w.channel("discord", json!({"enabled": true})).await;
    let hook_host = w.hooks.url().trim_start_matches("http://").to_owned();
    w.channel(
        "webhook",
        json!({"enabled": true, "allowedHosts": [hook_host]}),
    )
    .await;
    w
}

/// On a database file (WAL), as in production: the test's polling reads never wait for the
/// worker's writes (a shared-cache in-memory database locks whole tables).
async fn world() -> World {
    world_with(|_| {}).await
}

impl World {
    async fn channel(&self, kind: &str, body: Value) {
        let r = call(
            "PUT",
            &format!("/api/v1/admin/notifications/channels/{kind}"),
        )
        .bearer(&self.admin)
        .json(body)
        .send(&self.app)
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }

    /// The user's choices, stored as the settings page stores them.
    async fn choose(&self, user_id: &str, on: &[&str], targets: prefs::Targets) {
        let state = self.t.state.clone();
        let user_id = user_id.to_owned();
        let enabled: BTreeMap<String, bool> =
            ["email", "ntfy", "gotify", "discord", "webhook", "webpush"]
                .iter()
                .map(|k| ((*k).to_owned(), on.contains(k)))
                .collect();
        let now = self.t.clock.now_ms();
        self.t
            .state
            .db()
            .write(move |tx| {
                prefs::save(tx, state.cipher(), &user_id, &enabled, &targets, None, now)
            })
            .await
            .unwrap();
    }

    fn start_worker(&self) {
        self.t.state.spawn_task(worker::run(self.t.state.clone()));
    }

    /// Makes a notification the way the features do: inside a write transaction, published
    /// after the commit.
    async fn notify(&self, user_id: &str, kind: &str, title: &str, metadata: Value) {
        let user = user_id.to_owned();
        let (kind, title) = (kind.to_owned(), title.to_owned());
        let now = self.t.clock.now_ms();
        let made = self
            .t
            .state
            .db()
            .write(move |tx| {
                notifications::create(
                    tx,
                    &user,
                    &kind,
                    &title,
                    "What happened.",
                    Some(metadata),
                    now,
                )
            })
            .await
            .unwrap();
        notifications::publish_created(self.t.state.events(), user_id, &made);
    }

    async fn count(&self, filter: &str) -> i64 {
        scalar(
            &self.t.state,
            &format!("SELECT count(*) FROM notification_deliveries WHERE {filter}"),
            vec![],
        )
        .await
    }

    async fn rows(&self) -> Vec<Value> {
        self.t
            .state
            .db()
            .read(|conn| {
                let mut stmt = conn.prepare(
                    "SELECT id, channel, event, status, attempts, next_attempt_at, last_error,
                            collapsed, created_at, push_subscription_id
                       FROM notification_deliveries ORDER BY created_at, id",
                )?;
                let rows = stmt
                    .query_map([], |r| {
                        Ok(json!({
                            "id": r.get::<_, String>(0)?,
                            "channel": r.get::<_, String>(1)?,
                            "event": r.get::<_, String>(2)?,
                            "status": r.get::<_, String>(3)?,
                            "attempts": r.get::<_, i64>(4)?,
                            "next": r.get::<_, i64>(5)?,
                            "error": r.get::<_, Option<String>>(6)?,
                            "collapsed": r.get::<_, i64>(7)?,
                            "created": r.get::<_, i64>(8)?,
                            "device": r.get::<_, Option<String>>(9)?,
                        }))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await
            .unwrap()
    }

    async fn wait_for(&self, what: &str, filter: &str, n: i64) {
        eventually(WAIT, what, || async {
            (self.count(filter).await == n).then_some(())
        })
        .await;
    }

    /// Moves the clock to `at_ms` and wakes the worker (it sleeps on the wall clock).
    fn advance_to(&self, at_ms: i64) {
        let now = self.t.clock.now_ms();
        if at_ms > now {
            self.t.clock.advance(at_ms - now);
        }
        self.t.state.events().wake_outbox();
    }
}

fn ntfy_and_discord(topic: &str, discord: &FakeNotify) -> prefs::Targets {
    prefs::Targets {
        ntfy_topic: Some(topic.into()),
        discord_url: Some(format!("{}/api/webhooks/1/token-a", discord.url())),
        ..prefs::Targets::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_chosen_channel_gets_the_message_and_a_rolled_back_change_sends_nothing() {
    let w = world().await;
    w.choose(
        &w.user_id,
        &["ntfy", "discord"],
        ntfy_and_discord("mia-films", &w.discord),
    )
    .await;
    w.start_worker();

    w.notify(
        &w.user_id,
        "download.completed",
        "Download finished",
        json!({"downloadId": "d-1", "title": "Big Buck Bunny"}),
    )
    .await;
    // A change that rolls back takes its notification and deliveries with it.
    let user = w.user_id.clone();
    let now = w.t.clock.now_ms();
    let failed =
        w.t.state
            .db()
            .write(move |tx| {
                notifications::create(
                    tx,
                    &user,
                    "download.failed",
                    "Download failed",
                    "x",
                    None,
                    now,
                )?;
                Err::<(), _>(AppError::internal("the change failed"))
            })
            .await;
    assert!(failed.is_err());
    // A notification that is only for the bell makes no delivery.
    w.notify(
        &w.user_id,
        "request.status",
        "Request processing",
        json!({"status": "processing"}),
    )
    .await;

    w.wait_for("both delivered", "status = 'delivered'", 2)
        .await;
    assert_eq!(w.count("1").await, 2);
    let got = w.ntfy.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/mia-films");
    assert_eq!(
        got[0].header("title"),
        Some("Download finished: Big Buck Bunny")
    );
    assert_eq!(got[0].header("tags"), Some("arrow_down"));
    assert_eq!(got[0].body, "What happened.");
    let embed = w.discord.received()[0].json();
    assert_eq!(
        embed["embeds"][0]["title"],
        "Download finished: Big Buck Bunny"
    );
    for row in w.rows().await {
        assert_eq!(row["attempts"], 1, "{row}");
        assert_eq!(row["event"], "download.completed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_channel_retries_with_backoff_while_another_delivers_then_gives_up() {
    let w = world().await;
    w.choose(
        &w.user_id,
        &["ntfy", "discord"],
        ntfy_and_discord("mia", &w.discord),
    )
    .await;
    w.ntfy
        .fail_next(1, Fault::Status(500, "down for maintenance"));
    w.start_worker();
    let start = w.t.clock.now_ms();
    w.notify(&w.user_id, "announcement", "Movie night", json!({}))
        .await;

    w.wait_for(
        "discord delivered",
        "channel = 'discord' AND status = 'delivered'",
        1,
    )
    .await;
    w.wait_for(
        "ntfy retried later",
        "channel = 'ntfy' AND attempts = 1 AND status = 'pending'",
        1,
    )
    .await;
    let ntfy = w
        .rows()
        .await
        .into_iter()
        .find(|r| r["channel"] == "ntfy")
        .unwrap();
    let wait = ntfy["next"].as_i64().unwrap() - start;
    assert!(
        (60_000..=75_000).contains(&wait),
        "first retry after {wait} ms"
    );
    assert!(
        ntfy["error"].as_str().unwrap().contains("HTTP 500"),
        "{ntfy}"
    );

    w.advance_to(ntfy["next"].as_i64().unwrap());
    w.wait_for(
        "ntfy delivered on the retry",
        "channel = 'ntfy' AND status = 'delivered' AND attempts = 2",
        1,
    )
    .await;
    assert_eq!(w.ntfy.received().len(), 1);

    // A receiver that stays broken: tries double up to 6 h apart, then it is given up at 24 h.
    w.ntfy.fail_next(1000, Fault::Status(503, "busy"));
    w.notify(&w.user_id, "announcement", "Second", json!({}))
        .await;
    let made = w.t.clock.now_ms();
    let mut waits = Vec::new();
    let mut attempts = 0;
    loop {
        let filter = format!(
            "channel = 'ntfy' AND event = 'announcement' AND created_at = {made} AND attempts > {attempts} AND status != 'sending'"
        );
        w.wait_for("the next try", &filter, 1).await;
        let row = w
            .rows()
            .await
            .into_iter()
            .find(|r| r["channel"] == "ntfy" && r["created"] == made)
            .unwrap();
        attempts = row["attempts"].as_i64().unwrap();
        if row["status"] == "failed" {
            assert!(
                row["error"]
                    .as_str()
                    .unwrap()
                    .starts_with("gave up after 24 h"),
                "{row}"
            );
            break;
        }
        assert_eq!(row["status"], "pending");
        waits.push(row["next"].as_i64().unwrap() - w.t.clock.now_ms());
        w.advance_to(row["next"].as_i64().unwrap());
        assert!(attempts < 30, "never gave up");
    }
    assert!(
        w.t.clock.now_ms() - made <= 24 * 3600 * 1000,
        "tried past 24 h"
    );
    assert!(
        waits
            .windows(2)
            .all(|p| p[1] >= p[0] || p[1] >= 6 * 3600 * 1000 - 1),
        "{waits:?}"
    );
    assert!(waits.iter().all(|&ms| ms <= 6 * 3600 * 1000), "{waits:?}");
    assert!(*waits.last().unwrap() >= 5 * 3600 * 1000, "{waits:?}");
    // Discord got both, each once.
    assert_eq!(w.discord.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lasting_refusal_fails_at_once_and_a_gone_push_device_is_removed() {
    let w = world().await;
    let push = FakePushService::start().await.unwrap();
    w.channel(
        "webpush",
        json!({"enabled": true, "subject": "mailto:owner@home.example"}),
    )
    .await;
    let user = new_session(&w.t.state, &w.user_id).await.token;
    let device = push.subscribe();
    let r = call("POST", "/api/v1/me/push-subscriptions")
        .bearer(&user)
        .json(device.to_json())
        .send(&w.app)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    w.choose(
        &w.user_id,
        &["ntfy", "webpush"],
        ntfy_and_discord("mia", &w.discord),
    )
    .await;
    w.ntfy.fail_next(1, Fault::Status(403, "forbidden topic"));
    w.start_worker();

    w.notify(
        &w.user_id,
        "request.status",
        "Now available",
        json!({"status": "available", "requestId": "r-1", "title": "Amélie"}),
    )
    .await;
    w.wait_for(
        "ntfy failed",
        "channel = 'ntfy' AND status = 'failed' AND attempts = 1",
        1,
    )
    .await;
    w.wait_for(
        "push delivered",
        "channel = 'webpush' AND status = 'delivered'",
        1,
    )
    .await;
    let pushed = push.received();
    assert_eq!(pushed.len(), 1);
    assert_eq!(pushed[0].payload["title"], "Now available: Amélie");
    assert_eq!(pushed[0].payload["url"], "/requests");
    assert_eq!(pushed[0].subject, "mailto:owner@home.example");
    assert!(pushed[0].topic.is_some());

    // The browser unsubscribed: the push service answers 410 and the device goes.
    push.unsubscribe(&device.token);
    w.notify(&w.user_id, "announcement", "Hello", json!({}))
        .await;
    w.wait_for(
        "push failed",
        "channel = 'webpush' AND status = 'failed'",
        1,
    )
    .await;
    let subscriptions = scalar(
        &w.t.state,
        "SELECT count(*) FROM push_subscriptions",
        vec![],
    )
    .await;
    assert_eq!(subscriptions, 0);
    let rows = w.rows().await;
    let gone = rows
        .iter()
        .find(|r| r["channel"] == "webpush" && r["status"] == "failed")
        .unwrap();
    assert!(gone["error"].as_str().unwrap().contains("gone"), "{gone}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_holds_messages_back_and_service_flaps_fold_into_one() {
    let w = world_with(|c| c.notifications.max_per_user_hour = 3).await;
    w.choose(&w.user_id, &["ntfy"], ntfy_and_discord("mia", &w.discord))
        .await;
    w.choose(&w.admin_id, &["ntfy"], ntfy_and_discord("ops", &w.discord))
        .await;
    w.start_worker();
    let start = w.t.clock.now_ms();
    for i in 0..5 {
        w.notify(&w.user_id, "announcement", &format!("News {i}"), json!({}))
            .await;
    }
    w.wait_for(
        "three delivered",
        "user_id IN (SELECT id FROM users WHERE username = 'mia') AND status = 'delivered'",
        3,
    )
    .await;
    w.wait_for(
        "two held back",
        "status = 'pending' AND last_error LIKE 'held back%'",
        2,
    )
    .await;
    let held: Vec<Value> = w
        .rows()
        .await
        .into_iter()
        .filter(|r| r["status"] == "pending")
        .collect();
    for row in &held {
        let at = row["next"].as_i64().unwrap();
        assert!(at >= start + 3600 * 1000, "{row}");
    }
    assert_eq!(w.ntfy.received().len(), 3);
    w.advance_to(start + 3600 * 1000 + 1000);
    w.wait_for("all five", "status = 'delivered'", 5).await;

    // Plex flaps four times in a few minutes: the admin hears of the first at once and of the
    // rest in one message at the end of the window, with the latest state.
    let plex = json!({"service": "plex"});
    w.notify(&w.admin_id, "service.down", "Plex is down", plex.clone())
        .await;
    w.wait_for(
        "the first flap",
        "event = 'service.down' AND status = 'delivered'",
        1,
    )
    .await;
    let first_sent = w.t.clock.now_ms();
    for (kind, title) in [
        ("service.up", "Plex is back"),
        ("service.down", "Plex is down"),
        ("service.up", "Plex is back"),
    ] {
        w.t.clock.advance(60_000);
        w.notify(&w.admin_id, kind, title, plex.clone()).await;
    }
    let window_end = first_sent + 15 * 60 * 1000;
    w.wait_for(
        "the rest waiting as one until the window ends",
        &format!(
            "collapse_key = 'service:plex' AND status = 'pending' AND collapsed = 2 \
             AND next_attempt_at = {window_end}"
        ),
        1,
    )
    .await;
    let waiting = w
        .rows()
        .await
        .into_iter()
        .find(|r| r["status"] == "pending")
        .unwrap();
    assert_eq!(waiting["event"], "service.recovered");
    assert_eq!(
        waiting["next"].as_i64().unwrap(),
        first_sent + 15 * 60 * 1000
    );
    w.advance_to(first_sent + 15 * 60 * 1000);
    w.wait_for(
        "the folded message",
        "collapse_key = 'service:plex' AND status = 'delivered'",
        2,
    )
    .await;
    let to_ops: Vec<_> = w
        .ntfy
        .received()
        .into_iter()
        .filter(|r| r.path == "/ops")
        .collect();
    assert_eq!(to_ops.len(), 2);
    assert_eq!(to_ops[1].header("title"), Some("Plex is back"));
    assert!(
        to_ops[1]
            .body
            .contains("(2 more changes since the last message.)"),
        "{}",
        to_ops[1].body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_cut_off_by_a_stop_is_sent_again_with_the_same_key() {
    let w = world_with(|_| {}).await;
    let url = format!("{}/hooks/mia", w.hooks.url());
    w.choose(
        &w.user_id,
        &["webhook"],
        prefs::Targets {
            webhook_url: Some(url),
            ..prefs::Targets::default()
        },
    )
    .await;
    w.notify(&w.user_id, "announcement", "Movie night", json!({}))
        .await;
    // As a process killed in the middle of the send leaves it.
    let id: String = w.rows().await[0]["id"].as_str().unwrap().to_owned();
    w.t.state
        .db()
        .write({
            let id = id.clone();
            move |tx| {
                tx.execute(
                    "UPDATE notification_deliveries SET status = 'sending', attempts = 1 WHERE id = ?1",
                    [&id],
                )?;
                Ok(())
            }
        })
        .await
        .unwrap();
    w.start_worker();
    w.wait_for("sent again", "status = 'delivered' AND attempts = 2", 1)
        .await;
    let got = w.hooks.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("idempotency-key"), Some(id.as_str()));
    assert_eq!(got[0].json()["event"], "announcement");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_the_admin_turns_off_skips_what_waits_and_others_are_never_enqueued() {
    let w = world().await;
    w.choose(
        &w.user_id,
        &["ntfy", "discord"],
        ntfy_and_discord("mia", &w.discord),
    )
    .await;
    // Discord off before anything is made: nothing is written for it.
    w.channel("discord", json!({"enabled": false})).await;
    w.notify(&w.user_id, "announcement", "One", json!({})).await;
    assert_eq!(w.count("channel = 'discord'").await, 0);
    assert_eq!(w.count("channel = 'ntfy' AND status = 'pending'").await, 1);
    // ntfy off while the row waits: it is skipped, not sent.
    w.channel("ntfy", json!({"enabled": false, "url": w.ntfy.url()}))
        .await;
    w.start_worker();
    w.wait_for("skipped", "status = 'skipped'", 1).await;
    assert!(w.ntfy.received().is_empty());

    // A suspended account gets nothing more, even what was already waiting.
    w.channel("ntfy", json!({"enabled": true, "url": w.ntfy.url()}))
        .await;
    // The row is written while the account is active and the suspension commits with it, so
    // the running worker can never send it in between (it only sees committed rows).
    let user = w.user_id.clone();
    let now = w.t.clock.now_ms();
    w.t.state
        .db()
        .write(move |tx| {
            notifications::create(
                tx,
                &user,
                "announcement",
                "Two",
                "What happened.",
                None,
                now,
            )?;
            tx.execute(
                "UPDATE users SET status = 'suspended' WHERE id = ?1",
                [&user],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(
        w.count("channel = 'ntfy'").await,
        2,
        "the second row was enqueued"
    );
    w.t.state.events().wake_outbox();
    w.wait_for("skipped too", "status = 'skipped'", 2).await;
    assert!(w.ntfy.received().is_empty());
}
