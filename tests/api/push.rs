//! Web Push: the VAPID key kept across restarts, the public-key route, subscriptions (validation,
//! own only) and sending to a real push service on loopback (`medianest::sim::push`) that checks
//! the VAPID JWT and decrypts the payload with the subscriber's private key.

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use medianest::push::{Outcome, PushMessage, PushOptions, Pusher, Urgency, subscriptions};
use medianest::sim::push::FakePushService;
use serde_json::json;

use crate::support::{
    self, TestState, assert_error, call, file_db, insert_user, new_session, restart,
};

const KEY_PATH: &str = "/api/v1/push/vapid-public-key";
const SUBS_PATH: &str = "/api/v1/me/push-subscriptions";
/// A valid uncompressed P-256 point and auth secret, for endpoints never called.
const P256DH: &str =
    "BLn9b-VR0ca83knDNZ32dCHGyjJp-1riX9ZTN40MqV8K_LpQmLqxC_DoHvqvFXO_nGdAB4W9dogZb_sM-uV4JbY";
const AUTH: &str = "_ordMnz7uTCmrpBTeUV4Bw";

fn subscription(endpoint: &str, p256dh: &str, auth: &str) -> serde_json::Value {
    json!({"endpoint": endpoint, "expirationTime": null, "keys": {"p256dh": p256dh, "auth": auth}})
}

async fn user_token(t: &TestState, name: &str) -> (String, String) {
    let id = insert_user(&t.state, name, None, "user", None).await;
    let token = new_session(&t.state, &id).await.token;
    (id, token)
}

async fn public_key(app: &Router, token: &str) -> String {
    let r = call("GET", KEY_PATH).bearer(token).send(app).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.data()["publicKey"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_vapid_key_is_made_once_private_and_kept_across_restarts() {
    let t = support::test_state_with_db(|_| {}, file_db);
    support::prepare(&t).await;
    let (_, token) = user_token(&t, "alice").await;
    let before = public_key(&t.router(), &token).await;
    let raw = URL_SAFE_NO_PAD.decode(&before).unwrap();
    assert_eq!(raw.len(), 65, "uncompressed P-256 point");
    assert_eq!(raw[0], 0x04);
    assert!(!before.contains('='), "no padding");
    let path = t.state.config().data_dir.join("vapid.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let file = std::fs::read_to_string(&path).unwrap();
    let t = restart(t).await;
    assert_eq!(std::fs::read_to_string(&path).unwrap(), file);
    assert_eq!(public_key(&t.router(), &token).await, before);
}

#[tokio::test]
async fn subscriptions_are_validated_field_by_field() {
    let t = support::test_state();
    let app = t.router();
    let (_, token) = user_token(&t, "alice").await;
    let post = |body: serde_json::Value| call("POST", SUBS_PATH).bearer(&token).json(body);
    let cases = [
        (subscription("not a url", P256DH, AUTH), "endpoint"),
        (
            subscription("ftp://fcm.googleapis.com/x", P256DH, AUTH),
            "endpoint",
        ),
        (
            subscription("http://fcm.googleapis.com/x", P256DH, AUTH),
            "endpoint",
        ),
        // http to loopback needs push.allow_http_endpoints; https to the home network never.
        (
            subscription("http://127.0.0.1:9/x", P256DH, AUTH),
            "endpoint",
        ),
        (
            subscription("https://192.168.1.10/x", P256DH, AUTH),
            "endpoint",
        ),
        // A name on the home network (or resolving to it) is not a push service.
        (
            subscription(
                "https://ha.home.example.com:8123/api/webhook/x",
                P256DH,
                AUTH,
            ),
            "endpoint",
        ),
        (
            subscription("https://evil-push.apple.com.example.net/x", P256DH, AUTH),
            "endpoint",
        ),
        (
            subscription("https://fcm.googleapis.com/x", &P256DH[..40], AUTH),
            "keys.p256dh",
        ),
        // 65 bytes but not a point on the curve.
        (
            subscription(
                "https://fcm.googleapis.com/x",
                &URL_SAFE_NO_PAD.encode([4u8; 65]),
                AUTH,
            ),
            "keys.p256dh",
        ),
        (
            subscription("https://fcm.googleapis.com/x", P256DH, "c2hvcnQ"),
            "keys.auth",
        ),
        (
            subscription("https://fcm.googleapis.com/x", P256DH, "not base64!"),
            "keys.auth",
        ),
    ];
    for (body, field) in cases {
        let r = post(body.clone()).send(&app).await;
        let error = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert!(
            error["details"]["fields"][field].is_string(),
            "{body}: {error}"
        );
    }
    let missing = post(json!({"endpoint": "https://fcm.googleapis.com/x"}))
        .send(&app)
        .await;
    assert_error(&missing, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    // Nothing was stored.
    let r = call("GET", SUBS_PATH).bearer(&token).send(&app).await;
    assert_eq!(r.data(), json!([]));

    // With the switch on, http to loopback is accepted (tests and the demo).
    let t = support::test_state_with(|c| c.push.allow_http_endpoints = true);
    let (_, token) = user_token(&t, "alice").await;
    let r = call("POST", SUBS_PATH)
        .bearer(&token)
        .json(subscription("http://127.0.0.1:9/x", P256DH, AUTH))
        .send(&t.router())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

#[tokio::test]
async fn users_list_and_delete_only_their_own_subscriptions() {
    let t = support::test_state();
    let app = t.router();
    let (alice_id, alice) = user_token(&t, "alice").await;
    let (_, bob) = user_token(&t, "bob").await;
    let body = subscription("https://fcm.googleapis.com/send/phone", P256DH, AUTH);
    let first = call("POST", SUBS_PATH)
        .bearer(&alice)
        .header("user-agent", "Firefox on the phone")
        .json(body.clone())
        .send(&app)
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    let id = first.data()["id"].as_str().unwrap().to_owned();
    // The same browser again: the row is updated, not duplicated.
    let again = call("POST", SUBS_PATH)
        .bearer(&alice)
        .json(body)
        .send(&app)
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    assert_eq!(again.data()["id"], id.as_str());

    let list = call("GET", SUBS_PATH)
        .bearer(&alice)
        .send(&app)
        .await
        .data();
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0]["id"], id.as_str());
    assert_eq!(rows[0]["service"], "fcm.googleapis.com");
    let text = list.to_string();
    assert!(!text.contains(P256DH) && !text.contains(AUTH) && !text.contains("/send/phone"));

    let bobs = call("GET", SUBS_PATH).bearer(&bob).send(&app).await.data();
    assert_eq!(bobs, json!([]));
    let path = format!("{SUBS_PATH}/{id}");
    let r = call("DELETE", &path).bearer(&bob).send(&app).await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    let r = call("DELETE", &path).bearer(&alice).send(&app).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = call("DELETE", &path).bearer(&alice).send(&app).await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    let left = support::scalar(
        &t.state,
        "SELECT count(*) FROM push_subscriptions WHERE user_id = ?1",
        vec![support::sql_text(&alice_id)],
    )
    .await;
    assert_eq!(left, 0);
}

#[tokio::test]
async fn a_user_keeps_at_most_the_cap_of_subscriptions() {
    let t = support::test_state();
    let app = t.router();
    let (_, token) = user_token(&t, "alice").await;
    for i in 0..subscriptions::MAX_PER_USER {
        let body = subscription(&format!("https://fcm.googleapis.com/s/{i}"), P256DH, AUTH);
        let r = call("POST", SUBS_PATH)
            .bearer(&token)
            .json(body)
            .send(&app)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
    let body = subscription("https://fcm.googleapis.com/s/one-more", P256DH, AUTH);
    let r = call("POST", SUBS_PATH)
        .bearer(&token)
        .json(body)
        .send(&app)
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    // Renewing one already held is still fine.
    let body = subscription("https://fcm.googleapis.com/s/0", P256DH, AUTH);
    let r = call("POST", SUBS_PATH)
        .bearer(&token)
        .json(body)
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn a_browser_subscribing_under_another_account_moves_to_it() {
    let t = support::test_state();
    let app = t.router();
    let (_, alice) = user_token(&t, "alice").await;
    let (_, bob) = user_token(&t, "bob").await;
    let body = subscription(
        "https://fcm.googleapis.com/send/shared-tablet",
        P256DH,
        AUTH,
    );
    let first = call("POST", SUBS_PATH)
        .bearer(&alice)
        .json(body.clone())
        .send(&app)
        .await;
    let id = first.data()["id"].as_str().unwrap().to_owned();
    let moved = call("POST", SUBS_PATH)
        .bearer(&bob)
        .json(body)
        .send(&app)
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text());
    assert_eq!(moved.data()["id"], id.as_str());
    let alices = call("GET", SUBS_PATH)
        .bearer(&alice)
        .send(&app)
        .await
        .data();
    assert_eq!(alices, json!([]));
    let bobs = call("GET", SUBS_PATH).bearer(&bob).send(&app).await.data();
    assert_eq!(bobs[0]["id"], id.as_str());
}

/// A state that accepts loopback endpoints, a user, the fake push service and one subscription
/// made through the API as a browser would.
struct PushSetup {
    t: TestState,
    service: FakePushService,
    token: String,
    subscription_id: String,
    browser: medianest::sim::push::BrowserSubscription,
}

async fn push_setup(edit: impl FnOnce(&mut medianest::Config)) -> PushSetup {
    let t = support::test_state_with(|c| {
        c.push.allow_http_endpoints = true;
        c.push.subject = "mailto:owner@home.example".into();
        edit(c);
    });
    let service = FakePushService::start().await.unwrap();
    let (_, token) = user_token(&t, "alice").await;
    let browser = service.subscribe();
    let r = call("POST", SUBS_PATH)
        .bearer(&token)
        .json(browser.to_json())
        .send(&t.router())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let subscription_id = r.data()["id"].as_str().unwrap().to_owned();
    PushSetup {
        t,
        service,
        token,
        subscription_id,
        browser,
    }
}

impl PushSetup {
    async fn send(&self, options: &PushOptions) -> Outcome {
        let id = self.subscription_id.clone();
        let sub = self
            .t
            .state
            .db()
            .run(move |c| subscriptions::get(c, &id))
            .await
            .unwrap()
            .expect("the subscription is stored");
        Pusher::from_state(&self.t.state)
            .send(&self.t.state, sub, &message(), options)
            .await
            .unwrap()
    }

    async fn stored(&self) -> bool {
        let id = self.subscription_id.clone();
        self.t
            .state
            .db()
            .run(move |c| subscriptions::get(c, &id))
            .await
            .unwrap()
            .is_some()
    }
}

fn message() -> PushMessage {
    PushMessage {
        title: "The Matrix is available".into(),
        body: "Your request is ready to watch.".into(),
        url: Some("https://media.home.example/requests/42".into()),
        icon: Some("https://media.home.example/icons/192.png".into()),
        image: Some("https://media.home.example/api/v1/plex/image?path=/poster".into()),
        tag: Some("request-42".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_push_verifies_and_decrypts_at_the_push_service() {
    let s = push_setup(|_| {}).await;
    let options = PushOptions {
        ttl_secs: 3600,
        urgency: Urgency::High,
        topic: Some("request-42".into()),
    };
    assert_eq!(s.send(&options).await, Outcome::Delivered);
    assert_eq!(s.service.refused(), Vec::<String>::new());
    let received = s.service.received();
    assert_eq!(received.len(), 1);
    let push = &received[0];
    assert_eq!(push.token, s.browser.token);
    assert_eq!(
        push.payload,
        json!({
            "title": "The Matrix is available",
            "body": "Your request is ready to watch.",
            "url": "https://media.home.example/requests/42",
            "icon": "https://media.home.example/icons/192.png",
            "image": "https://media.home.example/api/v1/plex/image?path=/poster",
            "tag": "request-42",
        })
    );
    assert_eq!(push.ttl, "3600");
    assert_eq!(push.urgency.as_deref(), Some("high"));
    assert_eq!(push.topic.as_deref(), Some("request-42"));
    assert_eq!(push.subject, "mailto:owner@home.example");
    assert!(push.expires_in_secs <= 24 * 60 * 60);
    // Signed with the key browsers subscribe with.
    assert_eq!(push.vapid_key, public_key(&s.t.router(), &s.token).await);
    let list = call("GET", SUBS_PATH)
        .bearer(&s.token)
        .send(&s.t.router())
        .await
        .data();
    assert!(list[0]["lastSuccessAt"].is_string(), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_subscription_is_deleted_at_once() {
    let s = push_setup(|_| {}).await;
    s.service.fail_next(1, 410);
    assert_eq!(s.send(&PushOptions::default()).await, Outcome::Gone);
    assert!(!s.stored().await, "410 deletes the subscription");

    // 404 (the push service forgot the subscription) too.
    let s = push_setup(|_| {}).await;
    s.service.unsubscribe(&s.browser.token);
    assert_eq!(s.send(&PushOptions::default()).await, Outcome::Gone);
    assert!(!s.stored().await, "404 deletes the subscription");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_transient_and_other_refusals_permanent() {
    let s = push_setup(|_| {}).await;
    for status in [500, 503, 429] {
        s.service.fail_next(1, status);
        let outcome = s.send(&PushOptions::default()).await;
        assert!(
            matches!(&outcome, Outcome::Transient(r) if r.contains(&status.to_string())),
            "{status}: {outcome:?}"
        );
    }
    s.service.fail_next(1, 400);
    assert!(matches!(
        s.send(&PushOptions::default()).await,
        Outcome::Permanent(_)
    ));
    assert!(s.stored().await, "only 404/410 delete the subscription");
    assert!(s.service.received().is_empty());
    // Nothing is retried here: one request per send.
    assert_eq!(s.service.total_requests(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_service_that_hangs_is_a_transient_failure_after_the_timeout() {
    let s = push_setup(|c| c.push.timeout_secs = 1).await;
    s.service.set_latency(Duration::from_secs(30));
    let outcome = s.send(&PushOptions::default()).await;
    assert!(
        matches!(&outcome, Outcome::Transient(r) if r.contains("timed out")),
        "{outcome:?}"
    );
    assert!(s.stored().await);
}

/// Posts `body` with `authorization` to `endpoint` as a push would; answers the status.
async fn raw_push(endpoint: String, authorization: String, body: Vec<u8>) -> u16 {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        agent
            .post(&endpoint)
            .header("TTL", "60")
            .header("Content-Encoding", "aes128gcm")
            .header("Authorization", authorization)
            .send(&body[..])
            .unwrap()
            .status()
            .as_u16()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_push_service_refuses_a_wrong_audience_a_wrong_key_and_a_payload_for_another_browser()
 {
    use web_push_native::{Auth, p256};
    let tmp = tempfile::tempdir().unwrap();
    let key = medianest::push::VapidKey::load_or_create(tmp.path()).unwrap();
    let service = FakePushService::start().await.unwrap();
    let browser = service.subscribe();
    let encrypt_to = |p256dh: &str, auth: &str| {
        let public =
            p256::PublicKey::from_sec1_bytes(&URL_SAFE_NO_PAD.decode(p256dh).unwrap()).unwrap();
        let auth = Auth::clone_from_slice(&URL_SAFE_NO_PAD.decode(auth).unwrap());
        web_push_native::encrypt(br#"{"title":"t","body":"b"}"#.to_vec(), &public, &auth).unwrap()
    };
    let subject = "mailto:owner@home.example";
    let right = key.authorization(&service.origin(), subject).unwrap();
    let wrong_port = key.authorization("http://127.0.0.1:1", subject).unwrap();
    // The audience must be this service's origin, port included.
    let status = raw_push(
        browser.endpoint.clone(),
        wrong_port,
        encrypt_to(&browser.p256dh, &browser.auth),
    )
    .await;
    assert_eq!(status, 403);
    // A body encrypted to another browser does not decrypt.
    let status = raw_push(
        browser.endpoint.clone(),
        right.clone(),
        encrypt_to(P256DH, AUTH),
    )
    .await;
    assert_eq!(status, 400);
    // A token whose `k` is another key than the one that signed it fails.
    let forged = right.replace(key.public_key_b64(), P256DH);
    let status = raw_push(
        browser.endpoint.clone(),
        forged,
        encrypt_to(&browser.p256dh, &browser.auth),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(service.refused().len(), 3, "{:?}", service.refused());
    assert!(service.received().is_empty());
    // And the right one passes.
    let status = raw_push(
        browser.endpoint,
        right,
        encrypt_to(&browser.p256dh, &browser.auth),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(service.received().len(), 1);
}
