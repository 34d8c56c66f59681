//! What admins see and do for notifications (issue 14): the delivery log
//! (`GET /admin/notifications/deliveries`), each channel's health line on
//! `GET /admin/notifications/channels[/{kind}]`, and announcements (`POST /admin/announcements`).
//!
//! The delivery worker does not exist on this branch yet, so the log's rows are inserted with SQL
//! the way the outbox stores them (migration 0008); announcements go through the real route.

use std::collections::HashSet;

use axum::Router;
use axum::http::StatusCode;
use medianest::time::rfc3339;
use serde_json::{Value, json};

use crate::support::{
    START_MS, TestResponse, TestState, assert_error, call, insert_user, new_session, scalar,
    sql_text, test_state,
};

const LOG: &str = "/api/v1/admin/notifications/deliveries";
const CHANNELS: &str = "/api/v1/admin/notifications/channels";
const ANNOUNCE: &str = "/api/v1/admin/announcements";
const HOUR_MS: i64 = 3_600_000;

struct World {
    t: TestState,
    app: Router,
    admin_id: String,
    admin: String,
}

async fn world() -> World {
    let t = test_state();
    let app = t.router();
    let admin_id = insert_user(&t.state, "admin", None, "admin", None).await;
    let admin = new_session(&t.state, &admin_id).await.token;
    World {
        t,
        app,
        admin_id,
        admin,
    }
}

/// One row of `notification_deliveries` as the outbox would write it.
struct Row {
    id: String,
    user: String,
    channel: &'static str,
    status: &'static str,
    attempts: i64,
    created_at: i64,
    updated_at: i64,
    delivered_at: Option<i64>,
    last_error: Option<&'static str>,
}

impl Row {
    fn new(id: impl Into<String>, user: &str, channel: &'static str, status: &'static str) -> Self {
        Self {
            id: id.into(),
            user: user.to_owned(),
            channel,
            status,
            attempts: 0,
            created_at: START_MS,
            updated_at: START_MS,
            delivered_at: None,
            last_error: None,
        }
    }

    fn at(mut self, created_at: i64) -> Self {
        self.created_at = created_at;
        self.updated_at = created_at;
        self
    }
}

impl World {
    async fn get(&self, path: &str) -> TestResponse {
        call("GET", path).bearer(&self.admin).send(&self.app).await
    }

    /// Stores `rows`, each with a notification of its own titled after the row's id.
    async fn insert(&self, rows: Vec<Row>) {
        self.t
            .state
            .db()
            .write(move |tx| {
                for row in rows {
                    let made = medianest::notifications::create(
                        tx,
                        &row.user,
                        "request.status",
                        &format!("Title of {}", row.id),
                        "message",
                        None,
                        row.created_at,
                    )?;
                    tx.execute(
                        "INSERT INTO notification_deliveries (id, notification_id, user_id,
                             channel, event, status, attempts, next_attempt_at, last_error,
                             created_at, updated_at, delivered_at)
                         VALUES (?1, ?2, ?3, ?4, 'request.available', ?5, ?6, ?7, ?8, ?9, ?10,
                                 ?11)",
                        rusqlite::params![
                            row.id,
                            made.id,
                            row.user,
                            row.channel,
                            row.status,
                            row.attempts,
                            row.created_at + 60_000,
                            row.last_error,
                            row.created_at,
                            row.updated_at,
                            row.delivered_at
                        ],
                    )?;
                }
                Ok(())
            })
            .await
            .unwrap();
    }

    /// Every page of the log at `query` (`limit` rows a page), checking each is newest first;
    /// inserts `between` after the first page.
    async fn all_pages(&self, query: &str, limit: u32, mut between: Vec<Row>) -> Vec<Value> {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("{LOG}?limit={limit}{query}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let r = self.get(&path).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            let page = r.data().as_array().unwrap().clone();
            assert!(page.len() <= limit as usize);
            assert_eq!(r.json()["meta"]["limit"], json!(limit));
            seen.extend(page);
            if !between.is_empty() {
                self.insert(std::mem::take(&mut between)).await;
            }
            match r.json()["meta"]["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        for pair in seen.windows(2) {
            let key = |d: &Value| (d["createdAt"].as_str().unwrap().to_owned(), id(d));
            assert!(key(&pair[0]) > key(&pair[1]), "newest first: {pair:?}");
        }
        seen
    }
}

fn id(d: &Value) -> String {
    d["id"].as_str().unwrap().to_owned()
}

fn ids(list: &[Value]) -> HashSet<String> {
    list.iter().map(id).collect()
}

fn fields(error: &Value) -> Value {
    error["details"]["fields"].clone()
}

const CHANNEL_KINDS: [&str; 6] = ["email", "ntfy", "gotify", "discord", "webhook", "webpush"];
const STATUSES: [&str; 5] = ["pending", "sending", "delivered", "failed", "skipped"];

#[tokio::test]
async fn the_delivery_log_pages_newest_first_with_no_gaps_or_duplicates() {
    let w = world().await;
    let ann = insert_user(&w.t.state, "ann", None, "user", None).await;
    // 60 rows over every channel and status; every third pair shares a millisecond, so the id
    // breaks ties.
    let mut rows = Vec::new();
    for i in 0..60i64 {
        let channel = CHANNEL_KINDS[(i % 6) as usize];
        let status = STATUSES[(i % 5) as usize];
        let user = if i % 2 == 0 { &ann } else { &w.admin_id };
        rows.push(
            Row::new(format!("row-{i:03}"), user, channel, status).at(START_MS + (i / 2) * 1_000),
        );
    }
    w.insert(rows).await;

    // Newer rows arriving between pages shift nothing.
    let newer = (0..5)
        .map(|i| Row::new(format!("new-{i}"), &ann, "ntfy", "pending").at(START_MS + HOUR_MS + i))
        .collect();
    let seen = w.all_pages("", 7, newer).await;
    assert_eq!(seen.len(), 60, "no duplicates, no gaps");
    assert_eq!(ids(&seen).len(), 60);
    assert!(ids(&seen).iter().all(|i| i.starts_with("row-")));

    // Everything, now with the newer rows first.
    let everything = w.all_pages("", 100, vec![]).await;
    assert_eq!(everything.len(), 65);
    assert_eq!(id(&everything[0]), "new-4");

    // Each filter: exactly the matching rows, paged.
    let failed = w.all_pages("&status=failed", 4, vec![]).await;
    assert_eq!(failed.len(), 12);
    assert!(failed.iter().all(|d| d["status"] == "failed"));
    let ntfy = w.all_pages("&channel=ntfy", 4, vec![]).await;
    assert_eq!(ntfy.len(), 15, "10 rows + 5 newer");
    assert!(ntfy.iter().all(|d| d["channel"] == "ntfy"));
    // ntfy is i % 6 == 1, sending i % 5 == 1: i = 1 and 31.
    let both = w.all_pages("&status=sending&channel=ntfy", 1, vec![]).await;
    assert_eq!(
        both.iter().map(id).collect::<Vec<_>>(),
        vec!["row-031", "row-001"]
    );
    let pending_ntfy = w.all_pages("&status=pending&channel=ntfy", 2, vec![]).await;
    // Pending is i % 5 == 0: i = 25 and 55, and the 5 newer rows.
    assert_eq!(pending_ntfy.len(), 7);
}

#[tokio::test]
async fn a_log_entry_has_the_documented_shape() {
    let w = world().await;
    let ann = insert_user(&w.t.state, "ann", None, "user", None).await;
    let mut pending = Row::new("d-pending", &ann, "email", "pending").at(START_MS + 1);
    pending.attempts = 2;
    pending.last_error = Some("SMTP 451: try later");
    let mut delivered = Row::new("d-done", &ann, "ntfy", "delivered").at(START_MS);
    delivered.attempts = 1;
    delivered.delivered_at = Some(START_MS + 500);
    w.insert(vec![pending, delivered]).await;
    let r = w.get(LOG).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let data = r.data();
    let notification_id = data[0]["notificationId"].as_str().unwrap().to_owned();
    assert_eq!(
        data[0],
        json!({
            "id": "d-pending",
            "notificationId": notification_id,
            "userId": ann,
            "username": "ann",
            "channel": "email",
            "event": "request.available",
            "title": "Title of d-pending",
            "status": "pending",
            "attempts": 2,
            "collapsed": 0,
            "nextAttemptAt": rfc3339(START_MS + 60_001),
            "lastError": "SMTP 451: try later",
            "createdAt": rfc3339(START_MS + 1),
            "deliveredAt": null,
        })
    );
    // A final row has no next attempt.
    assert_eq!(data[1]["nextAttemptAt"], Value::Null);
    assert_eq!(data[1]["deliveredAt"], rfc3339(START_MS + 500));
    assert_eq!(r.json()["meta"], json!({"limit": 20, "nextCursor": null}));
}

#[tokio::test]
async fn log_filters_and_cursors_are_checked() {
    let w = world().await;
    let rows = (0..3)
        .map(|i| Row::new(format!("r{i}"), &w.admin_id, "ntfy", "failed").at(START_MS + i))
        .collect();
    w.insert(rows).await;

    let r = w
        .get(&format!("{LOG}?status=lost&channel=slack&limit=0"))
        .await;
    let e = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    let f = fields(&e);
    assert_eq!(
        f["status"],
        "must be one of pending, sending, delivered, failed, skipped"
    );
    assert_eq!(
        f["channel"],
        "must be one of email, ntfy, gotify, discord, webhook, webpush"
    );
    let r = w.get(&format!("{LOG}?limit=0")).await;
    assert!(
        fields(&assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR"
        ))["limit"]
            .is_string()
    );
    // Empty filters read as none.
    let r = w.get(&format!("{LOG}?status=&channel=")).await;
    assert_eq!(r.data().as_array().unwrap().len(), 3);

    // A cursor works only with the filters it was made for, and a forged one nowhere.
    let r = w.get(&format!("{LOG}?limit=1&status=failed")).await;
    let cursor = r.json()["meta"]["nextCursor"].as_str().unwrap().to_owned();
    let r = w
        .get(&format!("{LOG}?limit=1&status=failed&cursor={cursor}"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(id(&r.data()[0]), "r1");
    for other in [
        "",
        "&channel=ntfy",
        "&status=failed&channel=ntfy",
        "&status=pending",
    ] {
        let r = w
            .get(&format!("{LOG}?limit=1{other}&cursor={cursor}"))
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_CURSOR");
    }
    let r = w.get(&format!("{LOG}?cursor=bm90LWEtY3Vyc29y")).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_CURSOR");
}

#[tokio::test]
async fn each_channel_shows_its_health_line() {
    let mut w = world().await;
    let now = START_MS + 10 * 24 * HOUR_MS;
    w.t.clock.set(now);
    // A session of this day (the first one expired).
    w.admin = new_session(&w.t.state, &w.admin_id).await.token;
    let u = w.admin_id.clone();
    let mut retrying = Row::new("retrying", &u, "ntfy", "pending").at(now - HOUR_MS);
    retrying.attempts = 3;
    retrying.updated_at = now - 60_000;
    retrying.last_error = Some("HTTP 500: Internal Server Error");
    let fresh = Row::new("fresh", &u, "ntfy", "pending").at(now - 1_000);
    let mut done = Row::new("done", &u, "ntfy", "delivered").at(now - 2 * HOUR_MS);
    done.delivered_at = Some(now - 2 * HOUR_MS + 5);
    let mut old_done = Row::new("old-done", &u, "ntfy", "delivered").at(now - 48 * HOUR_MS);
    old_done.delivered_at = Some(now - 48 * HOUR_MS);
    let mut failed = Row::new("failed", &u, "ntfy", "failed").at(now - 5 * HOUR_MS);
    failed.updated_at = now - 4 * HOUR_MS;
    failed.last_error = Some("HTTP 404: topic not found");
    let mut mail = Row::new("mail", &u, "email", "delivered").at(now - 10);
    mail.delivered_at = Some(now - 5);
    w.insert(vec![retrying, fresh, done, old_done, failed, mail])
        .await;

    let iso = rfc3339;
    let r = w.get(&format!("{CHANNELS}/ntfy")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.data()["health"],
        json!({
            "pending": 2,
            "retrying": 1,
            "delivered24h": 1,
            "failed24h": 1,
            "lastDeliveredAt": iso(now - 2 * HOUR_MS + 5),
            "lastFailedAt": iso(now - 4 * HOUR_MS),
            "lastError": "HTTP 500: Internal Server Error",
            "lastErrorAt": iso(now - 60_000),
        })
    );

    // The list: all six in order, settings as the single GET shows them (secrets masked).
    let r = call("PUT", &format!("{CHANNELS}/ntfy"))
        .bearer(&w.admin)
        .json(
            json!({"enabled": true, "url": "https://ntfy.example.com", "token": "tk_secret_value"}),
        )
        .send(&w.app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = w.get(CHANNELS).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(!r.text().contains("tk_secret_value"));
    let list = r.data().as_array().unwrap().clone();
    let kinds: Vec<&str> = list.iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, CHANNEL_KINDS);
    for channel in &list {
        let kind = channel["kind"].as_str().unwrap();
        let single = w.get(&format!("{CHANNELS}/{kind}")).await;
        assert_eq!(&single.data(), channel, "{kind}");
    }
    assert_eq!(list[1]["tokenSet"], true);
    assert_eq!(list[1]["url"], "https://ntfy.example.com");
    assert_eq!(list[0]["passwordSet"], false);
    assert_eq!(list[0]["health"]["delivered24h"], 1);
    assert_eq!(list[0]["health"]["lastError"], Value::Null);
    assert_eq!(list[2]["health"]["pending"], 0);
    assert_eq!(list[2]["health"]["lastDeliveredAt"], Value::Null);
}

#[tokio::test]
async fn an_announcement_reaches_every_active_users_bell() {
    let w = world().await;
    let ann = insert_user(&w.t.state, "ann", None, "user", None).await;
    let bob = insert_user(&w.t.state, "bob", None, "user", None).await;
    let gone = insert_user(&w.t.state, "gone", None, "user", None).await;
    let ann_token = new_session(&w.t.state, &ann).await.token;
    let bob_token = new_session(&w.t.state, &bob).await.token;
    w.t.state
        .db()
        .write({
            let gone = gone.clone();
            move |tx| {
                tx.execute(
                    "UPDATE users SET status = 'suspended' WHERE id = ?1",
                    [gone],
                )?;
                Ok(())
            }
        })
        .await
        .unwrap();
    let mut events = w.t.state.events().subscribe();

    let r = call("POST", ANNOUNCE)
        .bearer(&w.admin)
        .json(json!({"title": "Maintenance tonight", "message": "The server restarts at 22:00.\nBack by 22:15."}))
        .send(&w.app)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.data(), json!({"recipients": 3}));

    for token in [&ann_token, &bob_token, &w.admin] {
        let r = call("GET", "/api/v1/notifications")
            .bearer(token)
            .send(&w.app)
            .await;
        let first = r.data()[0].clone();
        assert_eq!(first["type"], "announcement", "{}", r.text());
        assert_eq!(first["title"], "Maintenance tonight");
        assert_eq!(
            first["message"],
            "The server restarts at 22:00.\nBack by 22:15."
        );
        assert_eq!(first["metadata"], json!({"announcement": true}));
        assert_eq!(r.json()["meta"]["unreadCount"], 1);
    }
    let suspended = scalar(
        &w.t.state,
        "SELECT count(*) FROM notifications WHERE user_id = ?1",
        vec![sql_text(&gone)],
    )
    .await;
    assert_eq!(suspended, 0, "a suspended user hears nothing");

    // Each bell was told live, after the commit.
    let mut told = HashSet::new();
    while let Ok(event) = events.try_recv() {
        if event.kind == medianest::events::kind::NOTIFICATION_CREATED {
            told.insert(format!("{:?}", event.audience));
        }
    }
    assert_eq!(told.len(), 3, "{told:?}");
}

#[tokio::test]
async fn announcements_are_validated_and_need_the_csrf_token_from_a_browser() {
    let w = world().await;
    let send = |body: Value| call("POST", ANNOUNCE).bearer(&w.admin).json(body);
    let r = send(json!({"title": "", "message": "x".repeat(2001)}))
        .send(&w.app)
        .await;
    let e = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(
        fields(&e),
        json!({"title": "is required", "message": "must be at most 2000 characters"})
    );
    let r = send(json!({"title": "Bell\u{7}", "message": "fine", "to": "all"}))
        .send(&w.app)
        .await;
    let e = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(
        fields(&e),
        json!({"title": "must be one line without control characters", "to": "unknown field"})
    );
    let r = send(json!({"title": "t".repeat(121), "message": "a\u{1b}[31m"}))
        .send(&w.app)
        .await;
    let e = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(fields(&e)["title"], "must be at most 120 characters");
    assert_eq!(
        fields(&e)["message"],
        "must not contain control characters (line breaks are fine)"
    );
    let r = call("POST", ANNOUNCE)
        .bearer(&w.admin)
        .header("content-type", "application/json")
        .send(&w.app)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let nothing = scalar(&w.t.state, "SELECT count(*) FROM notifications", vec![]).await;
    assert_eq!(nothing, 0);

    // With the session cookie (a browser): only with this session's CSRF token.
    let session = new_session(&w.t.state, &w.admin_id).await;
    let body = json!({"title": "Hello", "message": "From the admin page."});
    let r = call("POST", ANNOUNCE)
        .session(&session.token)
        .json(body.clone())
        .send(&w.app)
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "CSRF_TOKEN_INVALID");
    let r = call("POST", ANNOUNCE)
        .session(&session.token)
        .csrf(&session.csrf_token)
        .json(body)
        .send(&w.app)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.data(), json!({"recipients": 1}));

    // Not for users.
    let ann = insert_user(&w.t.state, "ann", None, "user", None).await;
    let ann_token = new_session(&w.t.state, &ann).await.token;
    let r = call("POST", ANNOUNCE)
        .bearer(&ann_token)
        .json(json!({"title": "Hi", "message": "all"}))
        .send(&w.app)
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
}
