//! Accounts (SPEC sections 1, 2 and 11): the first-run admin and its forced password change, the
//! configured admin password, the password policy, sign-in by username or email, one answer for
//! an unknown user and a wrong password, and the failed sign-in limits per username (kept across
//! a restart) and per client IP.

use std::os::unix::fs::PermissionsExt;

use axum::http::StatusCode;
use medianest::Config;
use medianest::auth::first_run::INITIAL_PASSWORD_FILE;
use medianest::config::Secret;
use medianest::routes::Access;
use serde_json::json;

use crate::support::{
    self, TestResponse, assert_error, call, insert_user, login, sign_in, sql_text,
};

const ADMIN_PASSWORD: &str = "configured admin pw 1";
const ALICE_PASSWORD: &str = "alice's long password";
const NEW_PASSWORD: &str = "a brand new passphrase";
/// The failed sign-in window (SPEC section 11).
const WINDOW_MS: i64 = 15 * 60 * 1000;

fn with_admin_password(config: &mut Config) {
    config.admin.password = Some(Secret::new(ADMIN_PASSWORD));
}

/// A prepared state with the configured admin and `Alice` (alice@example.com) who has a password.
async fn with_alice(edit: impl FnOnce(&mut Config)) -> (support::TestState, String) {
    let t = support::test_state_with(|c| {
        with_admin_password(c);
        edit(c);
    });
    support::prepare(&t).await;
    let alice = insert_user(
        &t.state,
        "Alice",
        Some("alice@example.com"),
        "user",
        Some(ALICE_PASSWORD),
    )
    .await;
    (t, alice)
}

async fn change_password(
    app: &axum::Router,
    token: &str,
    current: &str,
    new: &str,
) -> TestResponse {
    call("POST", "/api/v1/auth/password")
        .bearer(token)
        .json(json!({ "currentPassword": current, "newPassword": new }))
        .send(app)
        .await
}

/// A concrete path for a route template (every `{param}` becomes a placeholder).
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if s.starts_with('{') {
                "0190a0a0-0000-7000-8000-000000000000"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn first_run_writes_a_private_password_file_and_forces_a_change() {
    let t = support::test_state();
    support::prepare(&t).await;
    let app = t.router();
    let file = t.state.config().data_dir.join(INITIAL_PASSWORD_FILE);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{} must be private", file.display());
    let initial = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert_eq!(initial.chars().count(), 20, "{initial:?}");

    let current = sign_in(&app, "admin", &initial).await;
    let elsewhere = sign_in(&app, "admin", &initial).await;
    let leaving = sign_in(&app, "admin", &initial).await;

    let session = call("GET", "/api/v1/auth/session")
        .bearer(&current.token)
        .send(&app)
        .await
        .data();
    assert_eq!(session["user"]["requiresPasswordChange"], true, "{session}");

    // Every signed-in route but the three that lead out of this state refuses.
    let exempt = [
        ("GET", "/api/v1/auth/session"),
        ("POST", "/api/v1/auth/password"),
        ("POST", "/api/v1/auth/logout"),
    ];
    let mut refused = Vec::new();
    for route in medianest::api_routes().table() {
        let method = route.method.as_str();
        if !matches!(route.access, Access::User | Access::Admin)
            || exempt.contains(&(method, route.path.as_str()))
        {
            continue;
        }
        let r = call(method, &concrete(&route.path))
            .bearer(&current.token)
            .json(json!({}))
            .send(&app)
            .await;
        assert_eq!(
            (r.status, r.json()["error"]["code"].clone()),
            (StatusCode::FORBIDDEN, json!("PASSWORD_CHANGE_REQUIRED")),
            "{method} {} while a password change is pending: {}",
            route.path,
            r.text()
        );
        refused.push(route.path);
    }
    assert!(
        refused.iter().any(|p| p == "/api/v1/auth/sessions"),
        "the route table lost /auth/sessions: {refused:?}"
    );

    // Signing out is allowed while the change is pending.
    let r = call("POST", "/api/v1/auth/logout")
        .bearer(&leaving.token)
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    let r = change_password(&app, &current.token, &initial, NEW_PASSWORD).await;
    assert_eq!(
        r.data()["otherSessionsEnded"],
        1,
        "the other browser's session ends"
    );
    assert!(!file.exists(), "the initial password file is removed");

    let r = call("GET", "/api/v1/auth/session")
        .bearer(&elsewhere.token)
        .send(&app)
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let session = call("GET", "/api/v1/auth/session")
        .bearer(&current.token)
        .send(&app)
        .await
        .data();
    assert_eq!(session["user"]["requiresPasswordChange"], false);
    let r = call("GET", "/api/v1/auth/sessions")
        .bearer(&current.token)
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    assert_error(
        &login(&app, "admin", &initial).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_CREDENTIALS",
    );
    sign_in(&app, "admin", NEW_PASSWORD).await;
}

#[tokio::test]
async fn a_configured_admin_password_writes_no_file_and_forces_no_change() {
    let t = support::test_state_with(with_admin_password);
    support::prepare(&t).await;
    let app = t.router();
    let file = t.state.config().data_dir.join(INITIAL_PASSWORD_FILE);
    assert!(!file.exists(), "{} must not be written", file.display());

    let admin = sign_in(&app, "admin", ADMIN_PASSWORD).await;
    let session = call("GET", "/api/v1/auth/session")
        .bearer(&admin.token)
        .send(&app)
        .await
        .data();
    assert_eq!(session["user"]["requiresPasswordChange"], false);
    assert_eq!(session["user"]["role"], "admin");
    let r = call("GET", "/api/v1/auth/sessions")
        .bearer(&admin.token)
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn new_passwords_must_have_10_to_256_characters_and_the_current_one_must_match() {
    let (t, _) = with_alice(|_| {}).await;
    let app = t.router();
    let alice = sign_in(&app, "alice", ALICE_PASSWORD).await;

    for bad in ["x".repeat(9), "x".repeat(257)] {
        let r = change_password(&app, &alice.token, ALICE_PASSWORD, &bad).await;
        let error = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert!(
            error["details"]["fields"]["newPassword"].is_string(),
            "{} characters: {error}",
            bad.len()
        );
    }
    let r = change_password(&app, &alice.token, "not the password", NEW_PASSWORD).await;
    let error = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert!(
        error["details"]["fields"]["currentPassword"].is_string(),
        "{error}"
    );
    // Nothing changed so far.
    sign_in(&app, "alice", ALICE_PASSWORD).await;

    let shortest = "y".repeat(10);
    let longest = "z".repeat(256);
    let r = change_password(&app, &alice.token, ALICE_PASSWORD, &shortest).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = change_password(&app, &alice.token, &shortest, &longest).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    sign_in(&app, "alice", &longest).await;
}

#[tokio::test]
async fn sign_in_by_username_or_email_ignores_case() {
    let (t, alice_id) = with_alice(|_| {}).await;
    let app = t.router();
    for name in [
        "Alice",
        "alice",
        "ALICE",
        "alice@example.com",
        "Alice@Example.COM",
    ] {
        let signed = sign_in(&app, name, ALICE_PASSWORD).await;
        assert_eq!(signed.user_id, alice_id, "signing in as {name}");
        let data = signed.response.data();
        assert_eq!(data["user"]["username"], "Alice");
        assert_eq!(
            data["expiresAt"],
            medianest::time::rfc3339(support::START_MS + 24 * 3600 * 1000),
            "a session lasts auth.session_hours"
        );
    }
    // The password is not case-insensitive.
    assert_error(
        &login(&app, "alice", &ALICE_PASSWORD.to_uppercase()).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_CREDENTIALS",
    );
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_answer() {
    let (t, _) = with_alice(|_| {}).await;
    let app = t.router();
    let attempt = |username: &'static str| {
        call("POST", "/api/v1/auth/login")
            // The same correlation id, so the bodies may be compared byte for byte.
            .header("x-correlation-id", "same-id")
            .json(json!({ "username": username, "password": "not the password" }))
            .send(&app)
    };
    let wrong_password = attempt("alice").await;
    let unknown_user = attempt("nobody-by-this-name").await;
    assert_error(
        &wrong_password,
        StatusCode::UNAUTHORIZED,
        "INVALID_CREDENTIALS",
    );
    assert_eq!(unknown_user.status, wrong_password.status);
    assert_eq!(
        unknown_user.text(),
        wrong_password.text(),
        "the bodies must not tell the two apart"
    );
    assert!(unknown_user.set_cookie(support::SESSION_COOKIE).is_none());
    assert!(wrong_password.set_cookie(support::SESSION_COOKIE).is_none());
}

/// Asserts a 429 `RATE_LIMITED` whose `Retry-After` header equals the body's `retryAfter`;
/// returns the seconds.
fn assert_rate_limited(r: &TestResponse) -> i64 {
    let error = assert_error(r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    let seconds = error["retryAfter"].as_i64().expect("retryAfter");
    assert_eq!(
        r.header("retry-after"),
        Some(seconds.to_string().as_str()),
        "Retry-After header and body agree"
    );
    seconds
}

async fn fail_logins(app: &axum::Router, username: &str, times: usize) {
    for _ in 0..times {
        let r = login(app, username, "not the password").await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
}

#[tokio::test]
async fn five_failures_lock_a_username_even_against_the_right_password() {
    let (t, _) = with_alice(|_| {}).await;
    let app = t.router();
    fail_logins(&app, "alice", 5).await;

    let wait = assert_rate_limited(&login(&app, "alice", ALICE_PASSWORD).await);
    assert!(
        (1..=15 * 60).contains(&wait),
        "retryAfter {wait} s is within the 15 minute window"
    );
    assert_rate_limited(&login(&app, "ALICE", ALICE_PASSWORD).await);
    // Other accounts are not affected.
    sign_in(&app, "admin", ADMIN_PASSWORD).await;

    t.clock.advance((wait - 1) * 1000);
    assert_rate_limited(&login(&app, "alice", ALICE_PASSWORD).await);
    t.clock.advance(1000);
    sign_in(&app, "alice", ALICE_PASSWORD).await;
}

#[tokio::test]
async fn failures_under_the_email_count_against_the_same_account() {
    let (t, _) = with_alice(|_| {}).await;
    let app = t.router();
    fail_logins(&app, "alice", 3).await;
    fail_logins(&app, "alice@example.com", 2).await;
    // Five wrong guesses at one account, whichever name they used.
    assert_rate_limited(&login(&app, "alice", ALICE_PASSWORD).await);
    assert_rate_limited(&login(&app, "alice@example.com", ALICE_PASSWORD).await);
}

#[tokio::test]
async fn a_lockout_survives_a_restart_and_ends_with_its_window() {
    let t = support::test_state_with_db(with_admin_password, support::file_db);
    support::prepare(&t).await;
    fail_logins(&t.router(), "admin", 5).await;
    assert_rate_limited(&login(&t.router(), "admin", ADMIN_PASSWORD).await);

    let t = support::restart(t).await;
    let app = t.router();
    assert_rate_limited(&login(&app, "admin", ADMIN_PASSWORD).await);
    // Counted per (username, client) (a router test has no peer: client `-`) and per username.
    for key in ["login:admin|-", "login:admin"] {
        let stored = support::scalar(
            &t.state,
            "SELECT request_count FROM rate_limits WHERE key = ?1",
            vec![sql_text(key)],
        )
        .await;
        assert_eq!(
            stored, 5,
            "the failures are counted in rate_limits as {key}"
        );
    }

    t.clock.advance(WINDOW_MS);
    sign_in(&app, "admin", ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn twenty_failures_from_one_ip_lock_that_ip_only() {
    let (t, _) = with_alice(|_| {}).await;
    let app = t.router();
    let from = |ip: &str, username: &str, password: &str| {
        call("POST", "/api/v1/auth/login")
            .peer(ip)
            .json(json!({ "username": username, "password": password }))
    };
    // Different usernames, so no username reaches its own limit.
    for i in 0..20 {
        let r = from("192.0.2.10", &format!("guess{i}"), "not the password")
            .send(&app)
            .await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
    assert_rate_limited(&from("192.0.2.10", "alice", ALICE_PASSWORD).send(&app).await);
    let r = from("192.0.2.11", "alice", ALICE_PASSWORD).send(&app).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    t.clock.advance(WINDOW_MS);
    let r = from("192.0.2.10", "alice", ALICE_PASSWORD).send(&app).await;
    assert_eq!(r.status, StatusCode::OK, "a new window: {}", r.text());
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_the_one_limited() {
    let (t, _) =
        with_alice(|c| c.server.trusted_proxies = vec!["10.0.0.1".parse().unwrap()].into()).await;
    let app = t.router();
    let from = |peer: &str, forwarded: &str, username: &str, password: &str| {
        call("POST", "/api/v1/auth/login")
            .peer(peer)
            .header("x-forwarded-for", forwarded)
            .json(json!({ "username": username, "password": password }))
    };
    for i in 0..20 {
        let r = from("10.0.0.1", "203.0.113.7", &format!("guess{i}"), "nope nope")
            .send(&app)
            .await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
    assert_rate_limited(
        &from("10.0.0.1", "203.0.113.7", "alice", ALICE_PASSWORD)
            .send(&app)
            .await,
    );
    // Another client behind the same proxy, and a direct client that forges the header.
    for (peer, forwarded) in [("10.0.0.1", "203.0.113.8"), ("198.51.100.1", "203.0.113.7")] {
        let r = from(peer, forwarded, "alice", ALICE_PASSWORD)
            .send(&app)
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "peer {peer}, X-Forwarded-For {forwarded}: {}",
            r.text()
        );
    }
}
