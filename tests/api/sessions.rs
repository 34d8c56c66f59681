//! Sessions (SPEC section 2): the cookie's flags, only a hash stored, CSRF for cookie writes (and
//! not for Bearer), sign-out of one or all sessions, listing and revoking one's sessions, expiry
//! and the sliding window, all checked on the very next request (the session cache must never
//! keep an ended session alive).

use axum::Router;
use axum::http::StatusCode;
use medianest::Config;
use medianest::config::Secret;
use medianest::time::rfc3339;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::support::{
    self, SESSION_COOKIE, SignedIn, TestState, assert_error, call, insert_user, login, sign_in,
    sql_text,
};

const ADMIN_PASSWORD: &str = "configured admin pw 1";
const ALICE_PASSWORD: &str = "alice's long password";
const HOUR_MS: i64 = 3600 * 1000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// A well-formed session id that belongs to nobody.
const NO_SUCH_SESSION: &str = "0190a0a0-0000-7000-8000-000000000000";

/// A prepared state with the configured admin and `alice` (a user with a password).
async fn setup_with(edit: impl FnOnce(&mut Config)) -> (TestState, Router, String) {
    let t = support::test_state_with(|c| {
        c.admin.password = Some(Secret::new(ADMIN_PASSWORD));
        edit(c);
    });
    support::prepare(&t).await;
    let alice = insert_user(&t.state, "alice", None, "user", Some(ALICE_PASSWORD)).await;
    let app = t.router();
    (t, app, alice)
}

async fn setup() -> (TestState, Router, String) {
    setup_with(|_| {}).await
}

async fn session_status_by_cookie(app: &Router, token: &str) -> StatusCode {
    call("GET", "/api/v1/auth/session")
        .session(token)
        .send(app)
        .await
        .status
}

async fn session_status(app: &Router, token: &str) -> StatusCode {
    call("GET", "/api/v1/auth/session")
        .bearer(token)
        .send(app)
        .await
        .status
}

/// Signs alice in with `User-Agent: agent`.
async fn alice_from(app: &Router, agent: &str) -> SignedIn {
    SignedIn::from_response(
        call("POST", "/api/v1/auth/login")
            .header("user-agent", agent)
            .json(json!({ "username": "alice", "password": ALICE_PASSWORD }))
            .send(app)
            .await,
    )
}

/// (last_used_at, expires_at) of the session whose token is `token`.
async fn session_row(t: &TestState, token: &str) -> (i64, i64) {
    let hash = hex(&Sha256::digest(token.as_bytes()));
    let last_used = support::scalar(
        &t.state,
        "SELECT last_used_at FROM session_tokens WHERE token_hash = ?1",
        vec![sql_text(&hash)],
    )
    .await;
    let expires = support::scalar(
        &t.state,
        "SELECT expires_at FROM session_tokens WHERE token_hash = ?1",
        vec![sql_text(&hash)],
    )
    .await;
    (last_used, expires)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn the_session_cookie_is_httponly_lax_site_wide_and_not_persistent_by_default() {
    let (_t, app, _) = setup().await;
    let r = login(&app, "alice", ALICE_PASSWORD).await;
    let token = r.data()["token"].as_str().unwrap().to_owned();
    let cookie = r.set_cookie(SESSION_COOKIE).expect("a session cookie");
    assert_eq!(cookie.value, token, "the cookie carries the body's token");
    assert!(cookie.has("HttpOnly"), "{cookie:?}");
    assert_eq!(cookie.attribute("SameSite"), Some("Lax"), "{cookie:?}");
    assert_eq!(cookie.attribute("Path"), Some("/"), "{cookie:?}");
    assert!(!cookie.has("Secure"), "plain http by default: {cookie:?}");
    assert!(
        !cookie.has("Max-Age") && !cookie.has("Expires"),
        "a browser-session cookie without rememberMe: {cookie:?}"
    );
    assert_eq!(session_status_by_cookie(&app, &token).await, StatusCode::OK);
}

#[tokio::test]
async fn remember_me_makes_the_cookie_and_the_session_last_thirty_days() {
    let (t, app, _) = setup().await;
    let r = call("POST", "/api/v1/auth/login")
        .json(json!({ "username": "alice", "password": ALICE_PASSWORD, "rememberMe": true }))
        .send(&app)
        .await;
    let data = r.data();
    assert_eq!(data["expiresAt"], rfc3339(support::START_MS + 30 * DAY_MS));
    let cookie = r.set_cookie(SESSION_COOKIE).unwrap();
    assert_eq!(
        cookie.attribute("Max-Age"),
        Some((30 * 24 * 3600).to_string().as_str())
    );
    // Still valid after a day and more, when a plain session would have ended.
    t.clock.advance(DAY_MS + HOUR_MS);
    let token = data["token"].as_str().unwrap();
    assert_eq!(session_status(&app, token).await, StatusCode::OK);
}

#[tokio::test]
async fn cookies_are_secure_behind_https_or_when_configured() {
    for (what, edit) in [
        (
            "an https public_url",
            Box::new(|c: &mut Config| {
                c.server.public_url = Some("https://media.example.com".into())
            }) as Box<dyn FnOnce(&mut Config)>,
        ),
        (
            "server.secure_cookies",
            Box::new(|c: &mut Config| c.server.secure_cookies = true),
        ),
    ] {
        let (_t, app, _) = setup_with(edit).await;
        let r = login(&app, "alice", ALICE_PASSWORD).await;
        let cookie = r.set_cookie(SESSION_COOKIE).unwrap();
        assert!(cookie.has("Secure"), "{what}: {cookie:?}");
        assert!(cookie.has("HttpOnly"), "{what}: {cookie:?}");
        let token = r.data()["token"].as_str().unwrap().to_owned();
        let out = call("POST", "/api/v1/auth/logout")
            .bearer(&token)
            .send(&app)
            .await;
        let cleared = out.set_cookie(SESSION_COOKIE).unwrap();
        assert!(cleared.has("Secure"), "{what}: the clearing cookie too");
    }
    let (_t, app, _) =
        setup_with(|c| c.server.public_url = Some("http://media.example.com".into())).await;
    let r = login(&app, "alice", ALICE_PASSWORD).await;
    assert!(!r.set_cookie(SESSION_COOKIE).unwrap().has("Secure"));
}

#[tokio::test]
async fn only_the_sha256_of_a_session_token_is_stored() {
    let (t, app, alice) = setup().await;
    let signed = sign_in(&app, "alice", ALICE_PASSWORD).await;
    let rows = {
        let alice = alice.clone();
        t.state
            .db()
            .run(move |c| {
                let mut stmt = c.prepare("SELECT * FROM session_tokens WHERE user_id = ?1")?;
                let columns = stmt.column_count();
                let rows = stmt
                    .query_map([alice], |r| {
                        (0..columns)
                            .map(|i| r.get::<_, rusqlite::types::Value>(i))
                            .collect::<Result<Vec<_>, _>>()
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
            .unwrap()
    };
    assert_eq!(rows.len(), 1);
    let texts: Vec<String> = rows[0]
        .iter()
        .filter_map(|v| match v {
            rusqlite::types::Value::Text(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    assert!(
        texts.iter().all(|v| !v.contains(&signed.token)),
        "the token is stored in the clear: {texts:?}"
    );
    let expected = hex(&Sha256::digest(signed.token.as_bytes()));
    let stored = support::text_value(
        &t.state,
        "SELECT token_hash FROM session_tokens WHERE user_id = ?1",
        vec![sql_text(&alice)],
    )
    .await;
    assert_eq!(stored.as_deref(), Some(expected.as_str()));
}

#[tokio::test]
async fn cookie_writes_need_this_sessions_csrf_token_and_our_own_origin() {
    let (_t, app, _) = setup().await;
    let alice = sign_in(&app, "alice", ALICE_PASSWORD).await;
    let other_browser = sign_in(&app, "alice", ALICE_PASSWORD).await;
    // A write that passes authentication answers 404 (no such session): nothing is changed.
    let write = || {
        call(
            "DELETE",
            &format!("/api/v1/auth/sessions/{NO_SUCH_SESSION}"),
        )
        .session(&alice.token)
        .header("host", "media.local:4000")
    };
    let refused = [
        ("no X-CSRF-Token", write()),
        ("a wrong X-CSRF-Token", write().csrf("not-the-token")),
        ("another session's token", write().csrf(&other_browser.csrf)),
        (
            "a foreign Origin",
            write()
                .csrf(&alice.csrf)
                .header("origin", "http://evil.example"),
        ),
    ];
    for (what, request) in refused {
        let r = request.send(&app).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {}", r.text());
        assert_error(&r, StatusCode::FORBIDDEN, "CSRF_TOKEN_INVALID");
    }
    for (what, request) in [
        ("the right token", write().csrf(&alice.csrf)),
        (
            "the right token from our own origin",
            write()
                .csrf(&alice.csrf)
                .header("origin", "http://media.local:4000"),
        ),
    ] {
        let r = request.send(&app).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{what}: {}", r.text());
    }
    // Reads never need it, and the refusals did not end the session.
    assert_eq!(
        session_status_by_cookie(&app, &alice.token).await,
        StatusCode::OK
    );
    let r = call("POST", "/api/v1/auth/logout")
        .session(&alice.token)
        .csrf(&alice.csrf)
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn with_a_public_url_the_origin_must_be_exactly_that() {
    let (_t, app, _) =
        setup_with(|c| c.server.public_url = Some("https://media.example.com".into())).await;
    let alice = sign_in(&app, "alice", ALICE_PASSWORD).await;
    let write = |origin: &str| {
        call(
            "DELETE",
            &format!("/api/v1/auth/sessions/{NO_SUCH_SESSION}"),
        )
        .session(&alice.token)
        .csrf(&alice.csrf)
        .header("host", "media.example.com")
        .header("origin", origin)
    };
    let r = write("https://media.example.com").send(&app).await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    for origin in [
        "http://media.example.com",
        "https://media.example.com.evil.io",
    ] {
        let r = write(origin).send(&app).await;
        assert_error(&r, StatusCode::FORBIDDEN, "CSRF_TOKEN_INVALID");
    }
}

#[tokio::test]
async fn bearer_requests_need_no_csrf_token() {
    let (_t, app, _) = setup().await;
    let alice = sign_in(&app, "alice", ALICE_PASSWORD).await;
    let r = call(
        "DELETE",
        &format!("/api/v1/auth/sessions/{NO_SUCH_SESSION}"),
    )
    .bearer(&alice.token)
    .header("origin", "http://script.example")
    .send(&app)
    .await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    let r = call("POST", "/api/v1/auth/logout")
        .bearer(&alice.token)
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        session_status(&app, &alice.token).await,
        StatusCode::UNAUTHORIZED
    );
}

/// A reverse proxy with Basic auth in front sends `Authorization: Basic ...` on every request:
/// the session cookie still signs the browser in (as a cookie, so writes still need CSRF). A
/// Bearer header wins over the cookie even when its token is bad.
#[tokio::test]
async fn a_non_bearer_authorization_header_falls_back_to_the_session_cookie() {
    let (_t, app, _) = setup().await;
    let alice = sign_in(&app, "alice", ALICE_PASSWORD).await;
    let basic = "Basic cHJveHl1c2VyOnByb3h5cGFzcw==";

    let r = call("GET", "/api/v1/auth/session")
        .header("authorization", basic)
        .session(&alice.token)
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.data()["user"]["id"], alice.user_id.as_str());

    // Cookie-authenticated, so a write without the CSRF token is refused as one.
    let revoke = format!("/api/v1/auth/sessions/{NO_SUCH_SESSION}");
    let r = call("DELETE", &revoke)
        .header("authorization", basic)
        .session(&alice.token)
        .send(&app)
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "CSRF_TOKEN_INVALID");
    let r = call("DELETE", &revoke)
        .header("authorization", basic)
        .session(&alice.token)
        .csrf(&alice.csrf)
        .send(&app)
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");

    // Basic alone is nobody.
    let r = call("GET", "/api/v1/auth/session")
        .header("authorization", basic)
        .send(&app)
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

    // A bad Bearer token with a good cookie: the Bearer token is the one judged.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let r = call("GET", "/api/v1/auth/session")
            .header("authorization", &format!("{scheme} not-a-session-token"))
            .session(&alice.token)
            .send(&app)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{scheme}: {}", r.text());
        // The scheme is case-insensitive for a good token too.
        let r = call("GET", "/api/v1/auth/session")
            .header("authorization", &format!("{scheme} {}", alice.token))
            .send(&app)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{scheme}: {}", r.text());
    }
}

#[tokio::test]
async fn logout_clears_the_cookie_and_ends_only_this_session_at_once() {
    let (t, app, alice_id) = setup().await;
    let this = sign_in(&app, "alice", ALICE_PASSWORD).await;
    let other = sign_in(&app, "alice", ALICE_PASSWORD).await;
    // Cached now: the logout must drop the cache entry, not wait for it to expire.
    assert_eq!(
        session_status_by_cookie(&app, &this.token).await,
        StatusCode::OK
    );

    let r = call("POST", "/api/v1/auth/logout")
        .session(&this.token)
        .csrf(&this.csrf)
        .send(&app)
        .await;
    assert_eq!(r.data()["sessionsEnded"], 1);
    let cleared = r.set_cookie(SESSION_COOKIE).expect("the cookie is cleared");
    assert_eq!(cleared.value, "");
    assert_eq!(cleared.attribute("Max-Age"), Some("0"));
    assert_eq!(cleared.attribute("Path"), Some("/"));

    let r = call("GET", "/api/v1/auth/session")
        .session(&this.token)
        .send(&app)
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert_eq!(
        session_status(&app, &this.token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(session_status(&app, &other.token).await, StatusCode::OK);
    let left = support::scalar(
        &t.state,
        "SELECT count(*) FROM session_tokens WHERE user_id = ?1",
        vec![sql_text(&alice_id)],
    )
    .await;
    assert_eq!(left, 1);
}

#[tokio::test]
async fn logout_all_ends_every_session_of_the_user_and_no_one_elses() {
    let (_t, app, _) = setup().await;
    let sessions = [
        sign_in(&app, "alice", ALICE_PASSWORD).await,
        sign_in(&app, "alice", ALICE_PASSWORD).await,
        sign_in(&app, "alice", ALICE_PASSWORD).await,
    ];
    let admin = sign_in(&app, "admin", ADMIN_PASSWORD).await;
    for s in &sessions {
        assert_eq!(session_status(&app, &s.token).await, StatusCode::OK);
    }
    let r = call("POST", "/api/v1/auth/logout?all=true")
        .bearer(&sessions[0].token)
        .send(&app)
        .await;
    assert_eq!(r.data()["sessionsEnded"], 3);
    for s in &sessions {
        assert_eq!(
            session_status(&app, &s.token).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(session_status(&app, &admin.token).await, StatusCode::OK);
}

#[tokio::test]
async fn the_session_list_shows_ones_own_sessions_and_marks_the_current_one() {
    let (_t, app, _) = setup().await;
    let laptop = alice_from(&app, "laptop-browser").await;
    let _script = alice_from(&app, "backup-script").await;
    let admin = sign_in(&app, "admin", ADMIN_PASSWORD).await;

    let list = call("GET", "/api/v1/auth/sessions")
        .session(&laptop.token)
        .send(&app)
        .await
        .data();
    let list = list.as_array().unwrap();
    assert_eq!(
        list.len(),
        2,
        "alice's two sessions, not the admin's: {list:?}"
    );
    for entry in list {
        for field in [
            "id",
            "createdAt",
            "lastUsedAt",
            "expiresAt",
            "userAgent",
            "ip",
            "current",
        ] {
            assert!(entry.get(field).is_some(), "{field} missing in {entry}");
        }
        let is_laptop = entry["userAgent"] == "laptop-browser";
        assert_eq!(entry["current"], is_laptop, "{entry}");
    }
    let admins = call("GET", "/api/v1/auth/sessions")
        .bearer(&admin.token)
        .send(&app)
        .await
        .data();
    assert_eq!(admins.as_array().unwrap().len(), 1);
    assert_eq!(admins[0]["current"], true);
}

/// The id of the session of `owner_token`'s user that is not the current one.
async fn other_session_id(app: &Router, owner_token: &str) -> String {
    let list = call("GET", "/api/v1/auth/sessions")
        .bearer(owner_token)
        .send(app)
        .await
        .data();
    list.as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .expect("another session")
}

#[tokio::test]
async fn revoking_one_of_ones_sessions_ends_it_at_once() {
    let (_t, app, _) = setup().await;
    let laptop = sign_in(&app, "alice", ALICE_PASSWORD).await;
    let phone = sign_in(&app, "alice", ALICE_PASSWORD).await;
    assert_eq!(session_status(&app, &phone.token).await, StatusCode::OK);
    let phone_id = other_session_id(&app, &laptop.token).await;

    let r = call("DELETE", &format!("/api/v1/auth/sessions/{phone_id}"))
        .session(&laptop.token)
        .csrf(&laptop.csrf)
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        session_status(&app, &phone.token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(session_status(&app, &laptop.token).await, StatusCode::OK);
    let again = call("DELETE", &format!("/api/v1/auth/sessions/{phone_id}"))
        .bearer(&laptop.token)
        .send(&app)
        .await;
    assert_error(&again, StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test]
async fn another_users_session_cannot_be_revoked_and_is_not_revealed() {
    let (_t, app, _) = setup().await;
    let admin = sign_in(&app, "admin", ADMIN_PASSWORD).await;
    let admin_elsewhere = sign_in(&app, "admin", ADMIN_PASSWORD).await;
    let alice = sign_in(&app, "alice", ALICE_PASSWORD).await;
    let admins_session = other_session_id(&app, &admin.token).await;

    let r = call("DELETE", &format!("/api/v1/auth/sessions/{admins_session}"))
        .bearer(&alice.token)
        .send(&app)
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(
        session_status(&app, &admin_elsewhere.token).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_session_past_its_expiry_answers_session_expired() {
    let (t, app, _) = setup().await;
    let alice = sign_in(&app, "alice", ALICE_PASSWORD).await;
    assert_eq!(session_status(&app, &alice.token).await, StatusCode::OK);
    t.clock.advance(DAY_MS + 1000);
    let r = call("GET", "/api/v1/auth/session")
        .bearer(&alice.token)
        .send(&app)
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "SESSION_EXPIRED");
    let r = call("GET", "/api/v1/auth/session")
        .session(&alice.token)
        .send(&app)
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "SESSION_EXPIRED");
}

#[tokio::test]
async fn using_a_session_slides_its_expiry_at_most_once_a_minute() {
    let (t, app, _) = setup().await;
    let t0 = support::START_MS;
    let alice = sign_in(&app, "alice", ALICE_PASSWORD).await;
    assert_eq!(session_row(&t, &alice.token).await, (t0, t0 + DAY_MS));

    t.clock.advance(61_000);
    let r = call("GET", "/api/v1/auth/session")
        .bearer(&alice.token)
        .send(&app)
        .await;
    let slid = t0 + 61_000 + DAY_MS;
    assert_eq!(r.data()["expiresAt"], rfc3339(slid));
    assert_eq!(
        session_row(&t, &alice.token).await,
        (t0 + 61_000, slid),
        "last_used_at and expires_at written"
    );

    t.clock.advance(1000);
    assert_eq!(session_status(&app, &alice.token).await, StatusCode::OK);
    assert_eq!(
        session_row(&t, &alice.token).await,
        (t0 + 61_000, slid),
        "not written again within the minute"
    );

    // Past the first expiry, inside the slid one.
    t.clock.set(t0 + DAY_MS + 30_000);
    assert_eq!(session_status(&app, &alice.token).await, StatusCode::OK);
}
