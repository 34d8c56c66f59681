//! Each user's notification choices (issue 14), `GET/PUT /api/v1/me/notifications`: the
//! defaults, a round trip, write-only secrets encrypted at rest, every validation case, the
//! admin-only events, and CSRF on the cookie write. The admin's channel settings are made
//! through the admin's own route, as an admin would.

use axum::Router;
use axum::http::StatusCode;
use medianest::notifications::channel_settings::Kind;
use medianest::notifications::prefs::{self, Target};
use serde_json::{Value, json};

use crate::support::{
    TestResponse, TestState, assert_error, call, insert_user, new_session, sql_text, test_state,
    text_value,
};

const PATH: &str = "/api/v1/me/notifications";
const DISCORD_URL: &str = "https://discord.com/api/webhooks/123/secret-discord-token";
const WEBHOOK_URL: &str = "https://hooks.example.com/medianest/secret-path";
const GOTIFY_TOKEN: &str = "AsecretGotifyTok";

struct World {
    t: TestState,
    app: Router,
    admin: String,
    /// "ann", a user with an account address.
    ann_id: String,
    ann: String,
}

async fn world() -> World {
    let t = test_state();
    let app = t.router();
    let admin_id = insert_user(&t.state, "admin", None, "admin", None).await;
    let admin = new_session(&t.state, &admin_id).await.token;
    let ann_id = insert_user(&t.state, "ann", Some("ann@example.com"), "user", None).await;
    let ann = new_session(&t.state, &ann_id).await.token;
    World {
        t,
        app,
        admin,
        ann_id,
        ann,
    }
}

impl World {
    /// The admin turns channels on (all but email unless asked), through the admin's route.
    async fn admin_enables(&self, kinds: &[&str]) {
        for kind in kinds {
            let body = match *kind {
                "email" => {
                    json!({"enabled": true, "host": "smtp.example.com", "from": "nest@example.com"})
                }
                "gotify" => json!({"enabled": true, "url": "https://gotify.example.com"}),
                "webhook" => json!({"enabled": true, "allowedHosts": ["hooks.example.com"]}),
                "webpush" => json!({"enabled": true, "subject": "mailto:admin@example.com"}),
                _ => json!({"enabled": true}),
            };
            let r = call(
                "PUT",
                &format!("/api/v1/admin/notifications/channels/{kind}"),
            )
            .bearer(&self.admin)
            .json(body)
            .send(&self.app)
            .await;
            assert_eq!(r.status, StatusCode::OK, "{kind}: {}", r.text());
        }
    }

    async fn get(&self, token: &str) -> Value {
        call("GET", PATH).bearer(token).send(&self.app).await.data()
    }

    async fn put(&self, token: &str, body: Value) -> TestResponse {
        call("PUT", PATH)
            .bearer(token)
            .json(body)
            .send(&self.app)
            .await
    }

    async fn target(&self, kind: Kind) -> Option<Target> {
        let cipher = self.t.state.cipher().clone();
        let id = self.ann_id.clone();
        self.t
            .state
            .db()
            .read(move |conn| prefs::target(conn, &cipher, &id, kind))
            .await
            .unwrap()
    }

    async fn channels_for(&self, event: &str) -> Vec<&'static str> {
        let id = self.ann_id.clone();
        let event = event.to_owned();
        self.t
            .state
            .db()
            .read(move |conn| prefs::channels_for_event(conn, &id, &event))
            .await
            .unwrap()
            .into_iter()
            .map(Kind::as_str)
            .collect()
    }
}

fn fields(r: &TestResponse) -> Value {
    r.json()["error"]["details"]["fields"].clone()
}

const USER_EVENTS: [&str; 8] = [
    "request.approved",
    "request.declined",
    "request.available",
    "request.failed",
    "problem.updated",
    "download.completed",
    "download.failed",
    "announcement",
];

#[tokio::test]
async fn the_defaults_are_email_to_the_account_and_push_to_subscribed_devices() {
    let w = world().await;
    let v = w.get(&w.ann).await;
    assert_eq!(
        v["channels"],
        json!({
            "email": {"enabled": true, "available": false, "address": null, "defaultAddress": "ann@example.com"},
            "ntfy": {"enabled": false, "available": false, "topic": null, "server": "https://ntfy.sh"},
            "gotify": {"enabled": false, "available": false, "tokenSet": false, "server": null},
            "discord": {"enabled": false, "available": false, "urlSet": false},
            "webhook": {"enabled": false, "available": false, "urlSet": false, "allowedHosts": []},
            "webpush": {"enabled": false, "available": false, "devices": 0},
        })
    );
    let events = v["events"].as_object().unwrap();
    assert_eq!(events.len(), USER_EVENTS.len(), "{v}");
    for event in USER_EVENTS {
        assert_eq!(events[event], json!(["email"]), "{event}");
    }
    assert_eq!(v["updatedAt"], Value::Null);

    // A subscribed browser turns Web Push on by default; the admin's switches show.
    w.admin_enables(&["email", "webpush", "ntfy"]).await;
    let r = call("POST", "/api/v1/me/push-subscriptions")
        .bearer(&w.ann)
        .json(json!({"endpoint": "https://fcm.googleapis.com/send/ann", "expirationTime": null,
            "keys": {"p256dh": "BLn9b-VR0ca83knDNZ32dCHGyjJp-1riX9ZTN40MqV8K_LpQmLqxC_DoHvqvFXO_nGdAB4W9dogZb_sM-uV4JbY",
                     "auth": "_ordMnz7uTCmrpBTeUV4Bw"}}))
        .send(&w.app)
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let v = w.get(&w.ann).await;
    assert_eq!(
        v["channels"]["webpush"],
        json!({"enabled": true, "available": true, "devices": 1})
    );
    assert_eq!(v["channels"]["email"]["available"], true);
    assert_eq!(v["channels"]["ntfy"]["available"], true);
    assert_eq!(
        v["events"]["request.available"],
        json!(["email", "webpush"])
    );
    assert_eq!(
        w.channels_for("request.available").await,
        ["email", "webpush"]
    );

    // An admin also chooses for the admin events; a user without an address has no email.
    let a = w.get(&w.admin).await;
    assert_eq!(a["events"].as_object().unwrap().len(), 11, "{a}");
    assert_eq!(a["events"]["service.down"], json!([]));
    assert_eq!(a["channels"]["email"]["enabled"], false);
    assert_eq!(a["channels"]["email"]["defaultAddress"], Value::Null);
}

#[tokio::test]
async fn choices_round_trip_and_secrets_stay_write_only() {
    let w = world().await;
    w.admin_enables(&["email", "ntfy", "gotify", "discord", "webhook"])
        .await;
    let body = json!({
        "channels": {
            "email": {"enabled": true, "address": "ann.films@example.org"},
            "ntfy": {"enabled": true, "topic": "ann_movies-1"},
            "gotify": {"enabled": true, "token": GOTIFY_TOKEN},
            "discord": {"enabled": true, "url": DISCORD_URL},
            "webhook": {"enabled": true, "url": WEBHOOK_URL},
            "webpush": {"enabled": false},
        },
        "events": {
            "request.available": ["email", "ntfy", "discord"],
            "download.failed": [],
        },
    });
    let r = w.put(&w.ann, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for secret in [GOTIFY_TOKEN, "secret-discord-token", "secret-path"] {
        assert!(!r.text().contains(secret), "{secret} in {}", r.text());
    }
    let v = w.get(&w.ann).await;
    assert_eq!(v, r.data());
    assert_eq!(
        v["channels"],
        json!({
            "email": {"enabled": true, "available": true, "address": "ann.films@example.org", "defaultAddress": "ann@example.com"},
            "ntfy": {"enabled": true, "available": true, "topic": "ann_movies-1", "server": "https://ntfy.sh"},
            "gotify": {"enabled": true, "available": true, "tokenSet": true, "server": "https://gotify.example.com"},
            "discord": {"enabled": true, "available": true, "urlSet": true},
            "webhook": {"enabled": true, "available": true, "urlSet": true, "allowedHosts": ["hooks.example.com"]},
            "webpush": {"enabled": false, "available": false, "devices": 0},
        })
    );
    let all = json!(["email", "ntfy", "gotify", "discord", "webhook"]);
    assert_eq!(
        v["events"]["request.available"],
        json!(["email", "ntfy", "discord"])
    );
    assert_eq!(v["events"]["download.failed"], json!([]));
    assert_eq!(v["events"]["request.approved"], all);
    assert!(v["updatedAt"].is_string());

    // What the delivery side reads.
    assert_eq!(
        w.target(Kind::Gotify).await,
        Some(Target::Gotify(GOTIFY_TOKEN.into()))
    );
    assert_eq!(
        w.target(Kind::Webhook).await,
        Some(Target::Webhook(WEBHOOK_URL.into()))
    );
    assert_eq!(w.channels_for("download.failed").await, Vec::<&str>::new());
    assert_eq!(
        w.channels_for("request.available").await,
        ["email", "ntfy", "discord"]
    );

    // Encrypted at rest: no target in the clear.
    let stored = text_value(
        &w.t.state,
        "SELECT targets FROM notification_prefs WHERE user_id = ?1",
        vec![sql_text(&w.ann_id)],
    )
    .await
    .unwrap();
    for secret in [
        GOTIFY_TOKEN,
        "secret-discord-token",
        "ann_movies",
        "ann.films",
    ] {
        assert!(!stored.contains(secret), "{secret} stored in the clear");
    }

    // Omitted secrets are kept; the other fields change.
    let r = w
        .put(
            &w.ann,
            json!({"channels": {"gotify": {"enabled": true}, "discord": {"enabled": false}, "ntfy": {"topic": "ann-2"}}}),
        )
        .await;
    let v = r.data();
    assert_eq!(v["channels"]["gotify"]["tokenSet"], true);
    assert_eq!(
        v["channels"]["discord"],
        json!({"enabled": false, "available": true, "urlSet": true})
    );
    assert_eq!(v["channels"]["ntfy"]["topic"], "ann-2");
    assert_eq!(v["events"]["request.available"], json!(["email", "ntfy"]));
    assert_eq!(
        w.target(Kind::Gotify).await,
        Some(Target::Gotify(GOTIFY_TOKEN.into()))
    );
    assert_eq!(w.target(Kind::Discord).await, None, "off");

    // An empty string clears one (the channel must then be off).
    let r = w
        .put(&w.ann, json!({"channels": {"discord": {"url": ""}, "gotify": {"enabled": false, "token": ""}}}))
        .await;
    let v = r.data();
    assert_eq!(v["channels"]["discord"]["urlSet"], false);
    assert_eq!(v["channels"]["gotify"]["tokenSet"], false);
    let r = w
        .put(&w.ann, json!({"channels": {"webhook": {"url": ""}}}))
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert!(
        fields(&r).get("channels.webhook.url").is_some(),
        "{}",
        r.text()
    );

    // `events: null` goes back to the defaults.
    let v = w.put(&w.ann, json!({"events": null})).await.data();
    assert_eq!(
        v["events"]["download.failed"],
        json!(["email", "ntfy", "webhook"])
    );
}

#[tokio::test]
async fn every_bad_value_is_a_field_error_and_nothing_is_saved() {
    let w = world().await;
    w.admin_enables(&["ntfy", "gotify", "discord", "webhook"])
        .await;
    let bob_id = insert_user(&w.t.state, "bob", None, "user", None).await;
    let bob = new_session(&w.t.state, &bob_id).await.token;
    let long_email = format!("{}@example.com", "a".repeat(250));
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "no address",
            json!({"channels": {"email": {"address": "not an address"}}}),
            "channels.email.address",
        ),
        (
            "header injection",
            json!({"channels": {"email": {"address": "a@example.com\r\nBcc: x@example.com"}}}),
            "channels.email.address",
        ),
        (
            "two addresses",
            json!({"channels": {"email": {"address": "a@example.com, b@example.com"}}}),
            "channels.email.address",
        ),
        (
            "a long address",
            json!({"channels": {"email": {"address": long_email}}}),
            "channels.email.address",
        ),
        (
            "a slash in a topic",
            json!({"channels": {"ntfy": {"topic": "a/b"}}}),
            "channels.ntfy.topic",
        ),
        (
            "a long topic",
            json!({"channels": {"ntfy": {"topic": "a".repeat(65)}}}),
            "channels.ntfy.topic",
        ),
        (
            "a space in a token",
            json!({"channels": {"gotify": {"token": "ab cd"}}}),
            "channels.gotify.token",
        ),
        (
            "a long token",
            json!({"channels": {"gotify": {"token": "A".repeat(65)}}}),
            "channels.gotify.token",
        ),
        (
            "another host",
            json!({"channels": {"discord": {"url": "https://evil.example/api/webhooks/1/a"}}}),
            "channels.discord.url",
        ),
        (
            "a look-alike host",
            json!({"channels": {"discord": {"url": "https://discord.com.evil.example/api/webhooks/1/a"}}}),
            "channels.discord.url",
        ),
        (
            "plain http",
            json!({"channels": {"discord": {"url": "http://discord.com/api/webhooks/1/a"}}}),
            "channels.discord.url",
        ),
        (
            "not a webhook path",
            json!({"channels": {"discord": {"url": "https://discord.com/api/users/1/a"}}}),
            "channels.discord.url",
        ),
        (
            "a host not allowed",
            json!({"channels": {"webhook": {"url": "https://other.example.com/x"}}}),
            "channels.webhook.url",
        ),
        (
            "the home network",
            json!({"channels": {"webhook": {"url": "http://192.168.1.1/admin"}}}),
            "channels.webhook.url",
        ),
        (
            "a user in the URL",
            json!({"channels": {"webhook": {"url": "https://u:p@hooks.example.com/x"}}}),
            "channels.webhook.url",
        ),
        (
            "an unknown channel",
            json!({"channels": {"slack": {"enabled": true}}}),
            "channels.slack",
        ),
        (
            "an unknown field",
            json!({"channels": {"ntfy": {"colour": "red"}}}),
            "channels.ntfy.colour",
        ),
        (
            "enabled not a bool",
            json!({"channels": {"ntfy": {"enabled": "yes"}}}),
            "channels.ntfy.enabled",
        ),
        (
            "a target not a string",
            json!({"channels": {"ntfy": {"topic": 5}}}),
            "channels.ntfy.topic",
        ),
        (
            "a channel not an object",
            json!({"channels": {"ntfy": true}}),
            "channels.ntfy",
        ),
        (
            "an unknown event",
            json!({"events": {"request.maybe": []}}),
            "events.request.maybe",
        ),
        (
            "an unknown channel for an event",
            json!({"events": {"request.available": ["slack"]}}),
            "events.request.available",
        ),
        (
            "an event to a channel that is off",
            json!({"events": {"request.available": ["gotify"]}}),
            "events.request.available",
        ),
        (
            "an event list not a list",
            json!({"events": {"request.available": "ntfy"}}),
            "events.request.available",
        ),
        (
            "on without a topic",
            json!({"channels": {"ntfy": {"enabled": true}}}),
            "channels.ntfy.topic",
        ),
        (
            "on without a token",
            json!({"channels": {"gotify": {"enabled": true}}}),
            "channels.gotify.token",
        ),
        (
            "on without a URL",
            json!({"channels": {"discord": {"enabled": true}}}),
            "channels.discord.url",
        ),
        (
            "an unknown top-level field",
            json!({"channel": {}}),
            "channel",
        ),
    ];
    for (what, body, field) in cases {
        let r = w.put(&w.ann, body).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert!(
            fields(&r).get(field).is_some_and(Value::is_string),
            "{what}: wanted a {field} error, got {}",
            r.text()
        );
    }
    // The admin-disabled refusal says so.
    let r = w
        .put(&w.ann, json!({"channels": {"webpush": {"enabled": true}}}))
        .await;
    assert!(
        fields(&r)["channels.webpush.enabled"]
            .as_str()
            .unwrap()
            .contains("not enabled by the admin"),
        "{}",
        r.text()
    );
    // Email is off for bob (no account address) and the admin has not enabled it: turning it
    // on is refused, saying so; without an address it would also need one.
    let r = w
        .put(
            &bob,
            json!({"channels": {"email": {"enabled": true, "address": "bob@example.net"}}}),
        )
        .await;
    assert!(
        fields(&r)["channels.email.enabled"]
            .as_str()
            .unwrap()
            .contains("not enabled by the admin"),
        "{}",
        r.text()
    );
    assert!(
        fields(&r).get("channels.email.address").is_none(),
        "{}",
        r.text()
    );
    let r = w
        .put(&bob, json!({"channels": {"email": {"enabled": true}}}))
        .await;
    assert!(
        fields(&r).get("channels.email.address").is_some(),
        "{}",
        r.text()
    );

    // Bodies that are not JSON, or not an object, answer in the envelope.
    for raw in ["{\"channels\":", "not json", "[1, 2]", "\"x\""] {
        let request = axum::http::Request::builder()
            .method("PUT")
            .uri(PATH)
            .header("authorization", format!("Bearer {}", w.ann))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(raw))
            .unwrap();
        let r = crate::support::send(&w.app, request).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{raw}: {}", r.text());
        assert_eq!(r.json()["success"], false, "{raw}");
    }

    // None of it was saved.
    assert_eq!(w.get(&w.ann).await["updatedAt"], Value::Null);
    assert_eq!(w.target(Kind::Ntfy).await, None);
}

#[tokio::test]
async fn only_admins_choose_channels_for_the_admin_events() {
    let w = world().await;
    w.admin_enables(&["ntfy"]).await;
    for event in ["service.down", "service.recovered", "user.signup"] {
        let r = w.put(&w.ann, json!({"events": {(event): []}})).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(
            fields(&r)[format!("events.{event}")],
            "only admins receive this event",
            "{}",
            r.text()
        );
    }
    let v = w.get(&w.ann).await;
    assert!(v["events"].get("service.down").is_none(), "{v}");

    let r = w
        .put(
            &w.admin,
            json!({"channels": {"ntfy": {"enabled": true, "topic": "ops"}},
                   "events": {"service.down": ["ntfy"], "announcement": []}}),
        )
        .await;
    let v = r.data();
    assert_eq!(v["events"]["service.down"], json!(["ntfy"]));
    assert_eq!(v["events"]["user.signup"], json!(["ntfy"]));
    assert_eq!(v["events"]["announcement"], json!([]));
}

#[tokio::test]
async fn a_cookie_write_needs_the_csrf_token() {
    let w = world().await;
    w.admin_enables(&["ntfy"]).await;
    let session = new_session(&w.t.state, &w.ann_id).await;
    let body = json!({"channels": {"ntfy": {"enabled": true, "topic": "ann"}}});
    let r = call("GET", PATH).session(&session.token).send(&w.app).await;
    assert_eq!(r.status, StatusCode::OK, "reads need no token");
    let refused = [
        call("PUT", PATH).session(&session.token).json(body.clone()),
        call("PUT", PATH)
            .session(&session.token)
            .csrf("not-the-token")
            .json(body.clone()),
        call("PUT", PATH)
            .session(&session.token)
            .csrf(&session.csrf_token)
            .header("origin", "http://evil.example")
            .json(body.clone()),
    ];
    for request in refused {
        let r = request.send(&w.app).await;
        assert_error(&r, StatusCode::FORBIDDEN, "CSRF_TOKEN_INVALID");
    }
    assert_eq!(w.target(Kind::Ntfy).await, None);
    let r = call("PUT", PATH)
        .session(&session.token)
        .csrf(&session.csrf_token)
        .json(body)
        .send(&w.app)
        .await;
    assert_eq!(r.data()["channels"]["ntfy"]["topic"], "ann");
    assert_eq!(w.target(Kind::Ntfy).await, Some(Target::Ntfy("ann".into())));
}
