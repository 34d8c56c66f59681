//! The admin's notification channels (issue 14): settings with write-only secrets encrypted at
//! rest, validation, and test sends through every channel to real servers on loopback (an SMTP
//! server speaking SMTP, fakes of ntfy, Gotify, Discord and a webhook receiver).

use axum::Router;
use axum::http::StatusCode;
use medianest::sim::notify::{FakeNotify, Fault, Flavor};
use medianest::sim::smtp::SmtpSink;
use serde_json::{Value, json};

use crate::support::{
    TestResponse, TestState, assert_error, call, file_db, insert_user, new_session, test_state,
    test_state_with, test_state_with_db, text_value,
};

const BASE: &str = "/api/v1/admin/notifications/channels";

struct World {
    t: TestState,
    app: Router,
    admin: String,
}

async fn world_from(t: TestState) -> World {
    let app = t.router();
    let id = insert_user(&t.state, "admin", None, "admin", None).await;
    let admin = new_session(&t.state, &id).await.token;
    World { t, app, admin }
}

async fn world() -> World {
    world_from(test_state()).await
}

impl World {
    async fn get(&self, kind: &str) -> TestResponse {
        call("GET", &format!("{BASE}/{kind}"))
            .bearer(&self.admin)
            .send(&self.app)
            .await
    }

    async fn put(&self, kind: &str, body: Value) -> TestResponse {
        call("PUT", &format!("{BASE}/{kind}"))
            .bearer(&self.admin)
            .json(body)
            .send(&self.app)
            .await
    }

    async fn test_send(&self, kind: &str, to: &str) -> TestResponse {
        call("POST", &format!("{BASE}/{kind}/test"))
            .bearer(&self.admin)
            .json(json!({ "to": to }))
            .send(&self.app)
            .await
    }
}

fn fields(error: &Value) -> Value {
    error["details"]["fields"].clone()
}

#[tokio::test]
async fn a_channel_never_saved_reads_as_disabled_with_defaults() {
    let w = world().await;
    let r = w.get("ntfy").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.data(),
        json!({"kind": "ntfy", "enabled": false, "url": "https://ntfy.sh", "tokenSet": false, "updatedAt": null,
               "health": {"pending": 0, "retrying": 0, "delivered24h": 0, "failed24h": 0, "lastDeliveredAt": null,
                          "lastFailedAt": null, "lastError": null, "lastErrorAt": null}})
    );
    assert_eq!(w.get("email").await.data()["passwordSet"], false);
    assert_eq!(w.get("webhook").await.data()["allowedHosts"], json!([]));
    let r = w.get("slack").await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test]
async fn the_smtp_password_is_write_only_and_encrypted_at_rest() {
    let w = world().await;
    let body = json!({
        "enabled": true, "host": "smtp.example.com", "port": 2525, "security": "starttls",
        "username": "mailer", "password": "hunter2-very-secret", "from": "MediaNest <nest@example.com>"
    });
    let r = w.put("email", body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let data = r.data();
    assert_eq!(data["passwordSet"], true);
    assert_eq!(data["host"], "smtp.example.com");
    assert_eq!(data["port"], 2525);
    assert!(data.get("password").is_none(), "{data}");
    assert!(!r.text().contains("hunter2"));
    assert!(!w.get("email").await.text().contains("hunter2"));

    let stored = text_value(
        &w.t.state,
        "SELECT settings || '|' || coalesce(secret, '') FROM notification_channels WHERE kind = 'email'",
        vec![],
    )
    .await
    .unwrap();
    assert!(!stored.contains("hunter2"), "plaintext at rest: {stored}");
    assert!(stored.len() > "|".len() + 10, "{stored}");

    // Omitted: kept. Null: cleared.
    let r = w
        .put("email", json!({"enabled": true, "host": "SMTP.example.com", "port": 2525, "from": "nest@example.com"}))
        .await;
    assert_eq!(r.data()["passwordSet"], true, "{}", r.text());
    assert_eq!(r.data()["security"], "starttls", "the default security");
    let r = w
        .put(
            "email",
            json!({"enabled": true, "host": "smtp.example.com", "from": "nest@example.com"}),
        )
        .await;
    let e = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert!(
        fields(&e).get("password").is_some(),
        "another port needs the password again: {e}"
    );
    let r = w
        .put("email", json!({"enabled": true, "host": "smtp.example.com", "from": "nest@example.com", "password": "x"}))
        .await;
    assert_eq!(r.data()["passwordSet"], true, "{}", r.text());
    assert_eq!(r.data()["port"], 587, "the port defaults by security");
    let r = w
        .put("email", json!({"enabled": false, "password": null}))
        .await;
    assert_eq!(r.data()["passwordSet"], false, "{}", r.text());
    let secret = text_value(
        &w.t.state,
        "SELECT coalesce(secret, 'none') FROM notification_channels WHERE kind = 'email'",
        vec![],
    )
    .await;
    assert_eq!(secret.as_deref(), Some("none"));
}

#[tokio::test]
async fn the_ntfy_token_is_masked_and_kept_until_cleared_with_an_empty_string() {
    let w = world().await;
    let r = w
        .put(
            "ntfy",
            json!({"enabled": true, "url": "https://ntfy.example.com/", "token": "tk_abc"}),
        )
        .await;
    assert_eq!(r.data()["tokenSet"], true, "{}", r.text());
    assert_eq!(r.data()["url"], "https://ntfy.example.com");
    assert!(!r.text().contains("tk_abc"));
    let r = w
        .put(
            "ntfy",
            json!({"enabled": true, "url": "https://NTFY.example.com:443/"}),
        )
        .await;
    assert_eq!(
        r.data()["tokenSet"],
        true,
        "same server: kept; {}",
        r.text()
    );
    // Another server: the token must be given again, so it never goes where it was not meant to.
    let r = w.put("ntfy", json!({"enabled": true})).await;
    let e = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert!(fields(&e).get("token").is_some(), "{e}");
    let r = w
        .put("ntfy", json!({"enabled": true, "token": "tk_public"}))
        .await;
    assert_eq!(r.data()["tokenSet"], true);
    assert_eq!(
        r.data()["url"],
        "https://ntfy.sh",
        "an empty URL is the public server"
    );
    let r = w.put("ntfy", json!({"enabled": true, "token": ""})).await;
    assert_eq!(r.data()["tokenSet"], false);
}

#[tokio::test]
async fn bad_settings_answer_validation_errors_per_field() {
    let w = world().await;
    let r = w
        .put(
            "email",
            json!({"enabled": true, "host": "smtp.example.com:25", "port": 70000,
                   "security": "ssl", "from": "not an address", "password": 5, "colour": "red"}),
        )
        .await;
    let e = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    let f = fields(&e);
    for field in ["host", "port", "security", "from", "password", "colour"] {
        assert!(f.get(field).is_some(), "{field} missing in {f}");
    }
    let r = w.put("email", json!({"enabled": true})).await;
    let f = fields(&assert_error(
        &r,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
    ));
    assert!(f.get("host").is_some() && f.get("from").is_some(), "{f}");
    let r = w
        .put(
            "email",
            json!({"enabled": true, "host": "h", "from": "a@b.c\r\nBcc: x@y.z"}),
        )
        .await;
    assert!(
        fields(&assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR"
        ))
        .get("from")
        .is_some()
    );

    let r = w
        .put(
            "gotify",
            json!({"enabled": true, "url": "ftp://gotify.lan"}),
        )
        .await;
    assert!(
        fields(&assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR"
        ))
        .get("url")
        .is_some()
    );
    let r = w
        .put(
            "ntfy",
            json!({"enabled": true, "url": "https://user:pw@ntfy.lan"}),
        )
        .await;
    assert!(
        fields(&assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR"
        ))
        .get("url")
        .is_some()
    );
    let r = w
        .put(
            "webhook",
            json!({"enabled": true, "allowedHosts": ["ok.example.com", "http://x/y"]}),
        )
        .await;
    assert!(
        fields(&assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR"
        ))
        .get("allowedHosts[1]")
        .is_some()
    );
    let r = w
        .put(
            "webpush",
            json!({"enabled": true, "subject": "http://example.com"}),
        )
        .await;
    assert!(
        fields(&assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR"
        ))
        .get("subject")
        .is_some()
    );
    let r = w
        .put(
            "webpush",
            json!({"enabled": true, "subject": "mailto:admin@example.com"}),
        )
        .await;
    assert_eq!(
        r.data()["subject"],
        "mailto:admin@example.com",
        "{}",
        r.text()
    );
    let r = w.put("discord", json!({"enabled": "yes"})).await;
    assert!(
        fields(&assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR"
        ))
        .get("enabled")
        .is_some()
    );
}

#[tokio::test]
async fn email_test_send_speaks_smtp_with_auth_and_delivers_the_title_and_link() {
    let sink = SmtpSink::start(Some(("mailer".into(), "s3cret pass".into())))
        .await
        .unwrap();
    let t = test_state_with(|c| c.server.public_url = Some("https://media.example.com".into()));
    let w = world_from(t).await;
    let r = w
        .put(
            "email",
            json!({"enabled": true, "host": "127.0.0.1", "port": sink.addr().port(),
                   "security": "none", "username": "mailer", "password": "s3cret pass",
                   "from": "MediaNest <nest@example.com>"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = w.test_send("email", "ann@example.com").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.data(), json!({"delivered": true}));
    let mails = sink.received();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.auth_user.as_deref(), Some("mailer"));
    assert_eq!(mail.from, "nest@example.com");
    assert_eq!(mail.to, ["ann@example.com"]);
    assert!(
        mail.data.contains("\r\nTo: ann@example.com\r\n")
            || mail.data.starts_with("To: ann@example.com\r\n")
            || mail.data.contains("To: ann@example.com\r\n"),
        "{}",
        mail.data
    );
    assert!(
        mail.data
            .contains("Subject: MediaNest test notification\r\n"),
        "{}",
        mail.data
    );
    assert!(
        mail.data.contains("https://media.example.com"),
        "{}",
        mail.data
    );

    // A refused recipient is the mail server's permanent answer, shown to the admin.
    sink.fail_next_rcpt("550 5.1.1 No such user here");
    let r = w.test_send("email", "nobody@example.com").await;
    let e = assert_error(&r, StatusCode::BAD_GATEWAY, "UPSTREAM_ERROR");
    assert_eq!(e["details"]["smtpCode"], 550, "{e}");
    assert_eq!(e["details"]["class"], "permanent", "{e}");

    // A wrong password: 535 from the server.
    w.put(
        "email",
        json!({"enabled": true, "host": "127.0.0.1", "port": sink.addr().port(),
        "security": "none", "username": "mailer", "password": "wrong", "from": "nest@example.com"}),
    )
    .await;
    let r = w.test_send("email", "ann@example.com").await;
    let e = assert_error(&r, StatusCode::BAD_GATEWAY, "UPSTREAM_ERROR");
    assert_eq!(e["details"]["smtpCode"], 535, "{e}");
    assert_eq!(sink.auth_failures(), 1);
    assert_eq!(sink.received().len(), 1);

    // STARTTLS is required when chosen: a server that does not offer it gets nothing in clear.
    w.put("email", json!({"enabled": true, "host": "127.0.0.1", "port": sink.addr().port(),
        "security": "starttls", "username": "mailer", "password": "s3cret pass", "from": "nest@example.com"})).await;
    let attempts = sink.auth_attempts();
    let r = w.test_send("email", "ann@example.com").await;
    assert_error(&r, StatusCode::BAD_GATEWAY, "UPSTREAM_ERROR");
    assert_eq!(
        sink.auth_attempts(),
        attempts,
        "no credentials were sent in clear"
    );
    assert_eq!(sink.received().len(), 1);

    let r = w.test_send("email", "not-an-address").await;
    assert!(
        fields(&assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR"
        ))
        .get("to")
        .is_some()
    );
}

#[tokio::test]
async fn ntfy_test_send_posts_the_documented_headers_with_the_token() {
    let fake = FakeNotify::start(Flavor::Ntfy(Some("tk_family".into())))
        .await
        .unwrap();
    let t = test_state_with(|c| c.server.public_url = Some("https://media.example.com".into()));
    let w = world_from(t).await;
    w.put(
        "ntfy",
        json!({"enabled": true, "url": fake.url(), "token": "tk_family"}),
    )
    .await;
    let r = w.test_send("ntfy", "family_movies").await;
    assert_eq!(r.data(), json!({"delivered": true}), "{}", r.text());
    let got = fake.received();
    assert_eq!(got.len(), 1);
    let req = &got[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/family_movies");
    assert_eq!(req.header("title"), Some("MediaNest test notification"));
    assert_eq!(req.header("tags"), Some("test"));
    assert_eq!(req.header("click"), Some("https://media.example.com"));
    assert!(
        req.body.contains("ntfy notifications from MediaNest work"),
        "{}",
        req.body
    );

    // Without the right token ntfy answers 401: permanent, shown as the upstream's error.
    w.put(
        "ntfy",
        json!({"enabled": true, "url": fake.url(), "token": "tk_wrong"}),
    )
    .await;
    let r = w.test_send("ntfy", "family_movies").await;
    let e = assert_error(&r, StatusCode::BAD_GATEWAY, "UPSTREAM_ERROR");
    assert_eq!(e["details"]["upstreamStatus"], 401, "{e}");
    assert_eq!(e["details"]["upstreamMessage"], "unauthorized", "{e}");
    assert_eq!(e["details"]["class"], "permanent", "{e}");

    let r = w.test_send("ntfy", "bad/topic").await;
    assert!(
        fields(&assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR"
        ))
        .get("to")
        .is_some()
    );
}

#[tokio::test]
async fn gotify_test_send_uses_the_key_header_and_extras_and_reports_a_500() {
    let fake = FakeNotify::start(Flavor::Gotify(vec!["AppTok.123".into()]))
        .await
        .unwrap();
    let t = test_state_with(|c| c.server.public_url = Some("https://media.example.com".into()));
    let w = world_from(t).await;
    w.put("gotify", json!({"enabled": true, "url": fake.url()}))
        .await;
    let r = w.test_send("gotify", "AppTok.123").await;
    assert_eq!(r.data(), json!({"delivered": true}), "{}", r.text());
    let req = &fake.received()[0];
    assert_eq!(req.path, "/message");
    assert_eq!(req.header("x-gotify-key"), Some("AppTok.123"));
    let body = req.json();
    assert_eq!(body["title"], "MediaNest test notification");
    assert_eq!(body["priority"], 5);
    assert_eq!(
        body["extras"]["client::notification"]["click"]["url"],
        "https://media.example.com"
    );

    fake.fail_next(1, Fault::Status(500, r#"{"error":"Internal Server Error","errorCode":500,"errorDescription":"database is locked"}"#));
    let r = w.test_send("gotify", "AppTok.123").await;
    let e = assert_error(&r, StatusCode::BAD_GATEWAY, "UPSTREAM_ERROR");
    assert_eq!(e["details"]["upstreamStatus"], 500, "{e}");
    assert_eq!(e["details"]["upstreamMessage"], "database is locked", "{e}");
    assert_eq!(e["details"]["class"], "transient", "{e}");

    let r = w.test_send("gotify", "NotAToken").await;
    let e = assert_error(&r, StatusCode::BAD_GATEWAY, "UPSTREAM_ERROR");
    assert_eq!(e["details"]["upstreamStatus"], 401, "{e}");
}

#[tokio::test]
async fn discord_test_send_posts_an_embed_and_refuses_other_hosts() {
    let fake = FakeNotify::start(Flavor::Discord).await.unwrap();
    let base = fake.url();
    let t = test_state_with(|c| {
        c.notifications.discord_base_url = base.clone();
        c.server.public_url = Some("https://media.example.com".into());
    });
    let w = world_from(t).await;
    w.put("discord", json!({"enabled": true})).await;
    let hook = format!("{}/api/webhooks/123/tok-abc", fake.url());
    let r = w.test_send("discord", &hook).await;
    assert_eq!(r.data(), json!({"delivered": true}), "{}", r.text());
    let req = &fake.received()[0];
    assert_eq!(req.path, "/api/webhooks/123/tok-abc");
    let embed = &req.json()["embeds"][0];
    assert_eq!(embed["title"], "MediaNest test notification");
    assert_eq!(embed["url"], "https://media.example.com");
    assert!(embed["description"].as_str().unwrap().contains("discord"));

    for other in [
        "https://evil.example.com/api/webhooks/123/tok".to_owned(),
        "https://discord.com/api/webhooks/123/tok".to_owned(),
        format!("{}/not/a/webhook", fake.url()),
    ] {
        let r = w.test_send("discord", &other).await;
        let e = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert!(fields(&e).get("to").is_some(), "{other}: {e}");
    }
    assert_eq!(fake.received().len(), 1);
}

#[tokio::test]
async fn webhook_test_send_posts_the_documented_json_to_allowed_hosts_only() {
    let fake = FakeNotify::start(Flavor::Webhook).await.unwrap();
    let w = world().await;
    let target = format!("{}/hooks/medianest", fake.url());

    // No allowed hosts: the channel is off.
    w.put("webhook", json!({"enabled": true, "allowedHosts": []}))
        .await;
    let r = w.test_send("webhook", &target).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");

    w.put(
        "webhook",
        json!({"enabled": true, "allowedHosts": ["127.0.0.1"]}),
    )
    .await;
    let r = w.test_send("webhook", &target).await;
    assert_eq!(r.data(), json!({"delivered": true}), "{}", r.text());
    let req = &fake.received()[0];
    assert_eq!(req.path, "/hooks/medianest");
    assert!(
        req.header("idempotency-key")
            .is_some_and(|k| k.starts_with("test-"))
    );
    let body = req.json();
    assert_eq!(body["event"], "test");
    assert_eq!(body["title"], "MediaNest test notification");
    assert!(body["message"].is_string());
    assert!(body.get("url").is_some() && body.get("image").is_some());
    assert!(
        body["sentAt"].as_str().is_some_and(|s| s.ends_with('Z')),
        "{body}"
    );

    // 404 from the receiver: permanent.
    fake.fail_next(1, Fault::Status(404, "no such hook"));
    let r = w.test_send("webhook", &target).await;
    let e = assert_error(&r, StatusCode::BAD_GATEWAY, "UPSTREAM_ERROR");
    assert_eq!(e["details"]["upstreamStatus"], 404, "{e}");
    assert_eq!(e["details"]["upstreamMessage"], "no such hook", "{e}");
    assert_eq!(e["details"]["class"], "permanent", "{e}");

    // Unreachable: a clear 502, transient.
    fake.shutdown().await;
    let r = w.test_send("webhook", &target).await;
    let e = assert_error(&r, StatusCode::BAD_GATEWAY, "UPSTREAM_ERROR");
    assert_eq!(e["details"]["class"], "transient", "{e}");
}

#[tokio::test]
async fn a_disabled_channel_is_not_tested() {
    let w = world().await;
    let r = w.test_send("ntfy", "topic").await;
    assert_error(&r, StatusCode::CONFLICT, "CONFLICT");
    let r = w.test_send("webpush", "x").await;
    assert_error(&r, StatusCode::CONFLICT, "CONFLICT");
    let r = call("POST", &format!("{BASE}/ntfy/test"))
        .bearer(&w.admin)
        .json(json!({}))
        .send(&w.app)
        .await;
    assert!(
        fields(&assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR"
        ))
        .get("to")
        .is_some()
    );
}

#[tokio::test]
async fn the_database_file_holds_no_channel_secret() {
    let w = world_from(test_state_with_db(|_| {}, file_db)).await;
    let password = "smtp-password-that-must-not-leak";
    let token = "tk_ntfy_token_that_must_not_leak";
    let r = w
        .put("email", json!({"enabled": false, "host": "smtp.example.com", "from": "n@example.com", "password": password}))
        .await;
    assert_eq!(r.data()["passwordSet"], true, "{}", r.text());
    let r = w
        .put("ntfy", json!({"enabled": true, "token": token}))
        .await;
    assert_eq!(r.data()["tokenSet"], true, "{}", r.text());
    let db_path = w.t.state.config().database_path();
    let mut wal = db_path.clone().into_os_string();
    wal.push("-wal");
    let mut bytes = std::fs::read(&db_path).unwrap();
    bytes.extend(std::fs::read(&wal).unwrap_or_default());
    // The scan reads the rows: the non-secret host is there in plain text.
    let has = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(has("smtp.example.com"));
    assert!(!has(password), "the SMTP password is stored in plain text");
    assert!(!has(token), "the ntfy token is stored in plain text");
}

#[tokio::test]
async fn a_receiver_that_never_answers_is_a_504_within_the_send_bound() {
    let fake = FakeNotify::start(Flavor::Webhook).await.unwrap();
    // Longer than the senders' 10 s bound and the app's 30 s request timeout.
    fake.set_latency(std::time::Duration::from_secs(120));
    let w = world().await;
    w.put(
        "webhook",
        json!({"enabled": true, "allowedHosts": ["127.0.0.1"]}),
    )
    .await;
    let r = w
        .test_send("webhook", &format!("{}/slow", fake.url()))
        .await;
    let e = assert_error(&r, StatusCode::GATEWAY_TIMEOUT, "UPSTREAM_TIMEOUT");
    assert_eq!(e["details"]["class"], "transient", "{e}");
    fake.shutdown().await;
}
