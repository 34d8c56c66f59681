//! Sign-in with Plex (SPEC sections 1, 2 and 11; UPSTREAMS.md 1.2) against a fake plex.tv and a
//! fake Plex Media Server on loopback: the whole PIN flow, who may sign up under each
//! `auth.plex_signup` policy, PINs bound to the browser that made them, expiry, plex.tv or the
//! server being down (nothing stored), refreshing an existing user, the Plex token encrypted at
//! rest, the admins told about a new user, and the PIN creation limit.
//!
//! The fake plex.tv runs on the test state's manual clock, so PIN expiry needs no sleeping.

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use medianest::clock::ManualClock;
use medianest::config::{Config, PlexSignup, Secret};
use medianest::db::Db;
use medianest::sim::plex::FakePlexServer;
use medianest::sim::plextv::{FakeAccount, FakePlexTv};
use medianest::time::rfc3339;

use crate::support::{
    self, SESSION_COOKIE, SignedIn, TestResponse, TestState, assert_error, call, sql_text,
};

const ADMIN_PASSWORD: &str = "configured admin pw 1";
const MACHINE_ID: &str = "96f2fe7a78c9dc1f16a16bedbe90f98149be16b4";
const PIN_COOKIE: &str = "medianest_pin";

/// The portal, plex.tv and the owner's Plex server.
struct World {
    t: TestState,
    app: Router,
    tv: FakePlexTv,
    server: FakePlexServer,
    /// The server owner's plex.tv account; its token is the server token.
    owner: FakeAccount,
}

/// A browser that asked for a PIN: the id MediaNest gave it and its PIN cookie.
#[derive(Debug, Clone)]
struct Browser {
    pin_id: String,
    cookie: String,
    /// plex.tv's own PIN id, which only the fake (the "user on app.plex.tv") knows.
    plex_pin_id: i64,
}

async fn world(signup: PlexSignup) -> World {
    world_with(signup, |_| {}).await
}

async fn world_with(signup: PlexSignup, edit: impl FnOnce(&mut Config)) -> World {
    let clock = Arc::new(ManualClock::new(support::START_MS));
    let tv = FakePlexTv::start_with_clock(clock.clone()).await.unwrap();
    let server = FakePlexServer::start().await.unwrap();
    let owner = FakeAccount::new(1, "owner");
    tv.add_account(owner.clone());
    tv.set_owner(owner.id, MACHINE_ID);
    server.set_machine_identifier(MACHINE_ID);
    server.set_token(&owner.token);
    let t = support::test_state_with_clock(
        clock,
        |c| {
            c.admin.password = Some(Secret::new(ADMIN_PASSWORD));
            c.plex.tv_url = tv.url();
            c.auth.plex_signup = signup;
            c.services.plex.url = Some(server.url());
            c.services.plex.api_key = Some(Secret::new(owner.token.clone()));
            edit(c);
        },
        |_| Db::open_memory().unwrap(),
    );
    support::prepare(&t).await;
    let app = t.router();
    World {
        t,
        app,
        tv,
        server,
        owner,
    }
}

impl World {
    /// A plex.tv account the fake knows.
    fn account(&self, id: i64, username: &str) -> FakeAccount {
        let account = FakeAccount::new(id, username);
        self.tv.add_account(account.clone());
        account
    }

    /// An account the owner shares the server with.
    fn shared_account(&self, id: i64, username: &str) -> FakeAccount {
        let account = self.account(id, username);
        self.tv.share(id, MACHINE_ID);
        account
    }

    async fn create_pin(&self) -> TestResponse {
        call("POST", "/api/v1/auth/plex/pin").send(&self.app).await
    }

    /// `POST /auth/plex/pin` as a new browser.
    async fn new_browser(&self) -> Browser {
        let r = self.create_pin().await;
        let data = r.data();
        let cookie = r.set_cookie(PIN_COOKIE).expect("a PIN cookie");
        Browser {
            pin_id: data["pinId"].as_str().unwrap().to_owned(),
            cookie: cookie.value,
            plex_pin_id: self.tv.last_pin_id().expect("plex.tv saw the PIN"),
        }
    }

    /// Polls `pin_id` with `cookie` as the browser's PIN cookie (or none).
    async fn poll(&self, pin_id: &str, cookie: Option<&str>) -> TestResponse {
        let mut request = call("POST", &format!("/api/v1/auth/plex/pin/{pin_id}/poll"));
        if let Some(cookie) = cookie {
            request = request.cookie(PIN_COOKIE, cookie);
        }
        request.send(&self.app).await
    }

    async fn poll_as(&self, browser: &Browser) -> TestResponse {
        self.poll(&browser.pin_id, Some(&browser.cookie)).await
    }

    /// The whole flow for `account`: a PIN, approval on "app.plex.tv", the poll's answer.
    async fn sign_in_with_plex(&self, account: &FakeAccount) -> TestResponse {
        let browser = self.new_browser().await;
        assert!(self.tv.authorize_pin(browser.plex_pin_id, &account.token));
        self.poll_as(&browser).await
    }

    async fn count(&self, sql: &str) -> i64 {
        support::scalar(&self.t.state, sql, vec![]).await
    }

    async fn plex_user_id(&self, plex_id: i64) -> Option<String> {
        support::text_value(
            &self.t.state,
            "SELECT id FROM users WHERE plex_id = ?1",
            vec![sql_text(&plex_id.to_string())],
        )
        .await
    }

    async fn stored_plex_token(&self, plex_id: i64) -> String {
        support::text_value(
            &self.t.state,
            "SELECT plex_token FROM users WHERE plex_id = ?1",
            vec![sql_text(&plex_id.to_string())],
        )
        .await
        .expect("a stored Plex token")
    }

    /// Users, sessions and notifications: what a refused or failed sign-in must leave alone.
    async fn footprint(&self) -> (i64, i64, i64) {
        (
            self.count("SELECT count(*) FROM users").await,
            self.count("SELECT count(*) FROM session_tokens").await,
            self.count("SELECT count(*) FROM notifications").await,
        )
    }
}

#[tokio::test]
async fn a_shared_plex_user_signs_up_through_the_whole_pin_flow() {
    let w = world(PlexSignup::ServerMembers).await;
    let guest = w.shared_account(2, "guest");

    let r = w.create_pin().await;
    let data = r.data();
    let pin_id = data["pinId"].as_str().unwrap().to_owned();
    let plex_pin_id = w.tv.last_pin_id().unwrap();
    assert!(
        !r.text().contains(&plex_pin_id.to_string()),
        "plex.tv's PIN id stays on the server: {}",
        r.text()
    );
    let code = data["code"].as_str().unwrap();
    assert_eq!(code.len(), 25, "a strong code for app.plex.tv");
    let auth_url = data["authUrl"].as_str().unwrap();
    assert!(
        auth_url.starts_with("https://app.plex.tv/auth#?clientID=")
            && auth_url.contains(&format!("&code={code}"))
            && auth_url.contains("context%5Bdevice%5D%5Bproduct%5D=MediaNest"),
        "{auth_url}"
    );
    assert_eq!(data["pollIntervalMs"], 2000);
    assert_eq!(data["expiresAt"], rfc3339(support::START_MS + 1800 * 1000));
    let cookie = r.set_cookie(PIN_COOKIE).expect("the PIN cookie");
    assert!(cookie.has("HttpOnly"), "{cookie:?}");
    assert_eq!(cookie.attribute("SameSite"), Some("Lax"));
    assert_eq!(cookie.attribute("Path"), Some("/api/v1/auth/plex"));
    let browser = Browser {
        pin_id,
        cookie: cookie.value,
        plex_pin_id,
    };

    let pending = w.poll_as(&browser).await;
    assert_eq!(pending.data(), serde_json::json!({ "authorized": false }));
    assert!(pending.set_cookie(SESSION_COOKIE).is_none());

    assert!(w.tv.authorize_pin(browser.plex_pin_id, &guest.token));
    let r = w.poll_as(&browser).await;
    let data = r.data();
    assert_eq!(data["authorized"], true);
    assert_eq!(data["user"]["username"], "guest");
    assert_eq!(data["user"]["plexUsername"], "guest");
    assert_eq!(data["user"]["email"], "guest@example.com");
    assert_eq!(data["user"]["role"], "user");
    assert_eq!(data["user"]["image"], guest.thumb.clone().unwrap().as_str());
    let session = r.set_cookie(SESSION_COOKIE).expect("a session cookie");
    assert!(session.has("HttpOnly"));
    let cleared = r.set_cookie(PIN_COOKIE).expect("the PIN cookie is cleared");
    assert_eq!(cleared.attribute("Max-Age"), Some("0"));
    let signed = SignedIn::from_response(r);
    assert_eq!(session.value, signed.token);
    let current = call("GET", "/api/v1/auth/session")
        .session(&signed.token)
        .send(&w.app)
        .await
        .data();
    assert_eq!(current["user"]["id"], signed.user_id.as_str());
    assert_eq!(current["csrfToken"], signed.csrf.as_str());

    assert_eq!(w.plex_user_id(guest.id).await, Some(signed.user_id.clone()));
    // The PIN is used up.
    assert_error(
        &w.poll_as(&browser).await,
        StatusCode::NOT_FOUND,
        "PIN_NOT_FOUND",
    );
}

#[tokio::test]
async fn the_plex_token_is_stored_encrypted() {
    let w = world(PlexSignup::ServerMembers).await;
    let guest = w.shared_account(2, "guest");
    SignedIn::from_response(w.sign_in_with_plex(&guest).await);
    let stored = w.stored_plex_token(guest.id).await;
    assert!(stored.starts_with("v1:"), "{stored}");
    assert!(!stored.contains(&guest.token), "{stored}");
    assert_eq!(w.t.state.cipher().decrypt(&stored).unwrap(), guest.token);
}

#[tokio::test]
async fn admins_are_told_about_a_new_plex_user() {
    let w = world(PlexSignup::ServerMembers).await;
    let guest = w.shared_account(2, "guest");
    let new_user = SignedIn::from_response(w.sign_in_with_plex(&guest).await).user_id;
    let admin_id = support::text_value(
        &w.t.state,
        "SELECT id FROM users WHERE username = 'admin'",
        vec![],
    )
    .await
    .unwrap();
    let told = support::scalar(
        &w.t.state,
        "SELECT count(*) FROM notifications
         WHERE user_id = ?1 AND type = 'user.signup' AND json_extract(metadata, '$.userId') = ?2",
        vec![sql_text(&admin_id), sql_text(&new_user)],
    )
    .await;
    assert_eq!(told, 1);
    let others = support::scalar(
        &w.t.state,
        "SELECT count(*) FROM notifications WHERE user_id <> ?1",
        vec![sql_text(&admin_id)],
    )
    .await;
    assert_eq!(others, 0, "only admins are told");
}

#[tokio::test]
async fn the_server_owner_signs_in_without_being_in_the_share_list() {
    let w = world(PlexSignup::ServerMembers).await;
    let r = w.sign_in_with_plex(&w.owner).await;
    assert_eq!(r.data()["user"]["plexUsername"], "owner");
}

#[tokio::test]
async fn a_plex_account_without_a_share_is_refused_and_nothing_is_stored() {
    let w = world(PlexSignup::ServerMembers).await;
    let stranger = w.account(3, "stranger");
    // Shared a different server: still not a member of this one.
    let elsewhere = w.account(4, "elsewhere");
    w.tv.share(elsewhere.id, "another-server-machine-id");
    let before = w.footprint().await;
    for account in [&stranger, &elsewhere] {
        let r = w.sign_in_with_plex(account).await;
        assert_error(&r, StatusCode::FORBIDDEN, "PLEX_SIGNUP_CLOSED");
        assert!(r.set_cookie(SESSION_COOKIE).is_none());
        assert_eq!(
            w.plex_user_id(account.id).await,
            None,
            "{}",
            account.username
        );
    }
    assert_eq!(w.footprint().await, before);
}

#[tokio::test]
async fn closed_signup_admits_only_existing_users() {
    let w = world(PlexSignup::Closed).await;
    let shared = w.shared_account(2, "guest");
    let r = w.sign_in_with_plex(&shared).await;
    assert_error(&r, StatusCode::FORBIDDEN, "PLEX_SIGNUP_CLOSED");
    assert_eq!(w.plex_user_id(shared.id).await, None);

    let known = w.account(5, "known");
    let id = support::insert_user(&w.t.state, "known", None, "user", None).await;
    let (user, plex_id) = (id.clone(), known.id.to_string());
    w.t.state
        .db()
        .write(move |tx| {
            tx.execute(
                "UPDATE users SET plex_id = ?1 WHERE id = ?2",
                rusqlite::params![plex_id, user],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let r = w.sign_in_with_plex(&known).await;
    assert_eq!(SignedIn::from_response(r).user_id, id);
}

#[tokio::test]
async fn open_signup_admits_any_plex_account_without_asking_for_the_share_list() {
    let w = world(PlexSignup::Open).await;
    let stranger = w.account(3, "stranger");
    let r = w.sign_in_with_plex(&stranger).await;
    assert_eq!(r.data()["user"]["plexUsername"], "stranger");
    assert_eq!(w.tv.requests("GET /api/users"), 0);
}

#[tokio::test]
async fn a_suspended_plex_user_cannot_sign_in() {
    let w = world(PlexSignup::ServerMembers).await;
    let guest = w.shared_account(2, "guest");
    let id = SignedIn::from_response(w.sign_in_with_plex(&guest).await).user_id;
    w.t.state
        .db()
        .write(move |tx| {
            tx.execute("UPDATE users SET status = 'suspended' WHERE id = ?1", [id])?;
            tx.execute("DELETE FROM session_tokens", [])?;
            Ok(())
        })
        .await
        .unwrap();
    let r = w.sign_in_with_plex(&guest).await;
    assert_error(&r, StatusCode::FORBIDDEN, "ACCOUNT_SUSPENDED");
    assert_eq!(w.count("SELECT count(*) FROM session_tokens").await, 0);
}

#[tokio::test]
async fn a_pin_polled_from_another_browser_is_not_found() {
    let w = world(PlexSignup::ServerMembers).await;
    let guest = w.shared_account(2, "guest");
    let mine = w.new_browser().await;
    let theirs = w.new_browser().await;
    assert!(w.tv.authorize_pin(mine.plex_pin_id, &guest.token));

    for (what, cookie) in [
        ("no PIN cookie", None),
        ("another browser's PIN cookie", Some(theirs.cookie.as_str())),
        ("a made-up PIN cookie", Some("made-up")),
    ] {
        let r = w.poll(&mine.pin_id, cookie).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{what}: {}", r.text());
        assert_error(&r, StatusCode::NOT_FOUND, "PIN_NOT_FOUND");
    }
    assert_eq!(w.plex_user_id(guest.id).await, None);
    // The browser that made it still completes it.
    SignedIn::from_response(w.poll_as(&mine).await);
}

#[tokio::test]
async fn an_unknown_pin_is_not_found() {
    let w = world(PlexSignup::ServerMembers).await;
    let browser = w.new_browser().await;
    let r = w.poll("no-such-pin", Some(&browser.cookie)).await;
    assert_error(&r, StatusCode::NOT_FOUND, "PIN_NOT_FOUND");
    let r = w
        .poll(&browser.plex_pin_id.to_string(), Some(&browser.cookie))
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "PIN_NOT_FOUND");
}

#[tokio::test]
async fn an_expired_pin_is_gone_even_if_it_was_approved_in_time() {
    let w = world(PlexSignup::ServerMembers).await;
    let guest = w.shared_account(2, "guest");
    w.tv.set_pin_lifetime(120);
    let browser = w.new_browser().await;
    assert_eq!(w.poll_as(&browser).await.data()["authorized"], false);
    assert!(w.tv.authorize_pin(browser.plex_pin_id, &guest.token));
    let before = w.footprint().await;

    w.t.clock.advance(120 * 1000);
    let r = w.poll_as(&browser).await;
    assert_error(&r, StatusCode::GONE, "PIN_EXPIRED");
    assert_eq!(w.footprint().await, before);
}

#[tokio::test]
async fn plex_tv_down_answers_503_and_stores_nothing() {
    let w = world(PlexSignup::ServerMembers).await;
    let guest = w.shared_account(2, "guest");
    let browser = w.new_browser().await;
    assert!(w.tv.authorize_pin(browser.plex_pin_id, &guest.token));
    let before = w.footprint().await;
    w.tv.shutdown().await;

    let r = w.poll_as(&browser).await;
    let error = assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
    assert!(
        error["message"].as_str().unwrap().contains("plex.tv"),
        "{error}"
    );
    assert_eq!(w.footprint().await, before);

    let r = w.create_pin().await;
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
    assert!(r.set_cookie(PIN_COOKIE).is_none(), "no PIN to bind");
}

#[tokio::test]
async fn the_plex_server_down_answers_503_and_stores_nothing() {
    let w = world(PlexSignup::ServerMembers).await;
    let guest = w.shared_account(2, "guest");
    let before = w.footprint().await;
    w.server.shutdown().await;
    let r = w.sign_in_with_plex(&guest).await;
    let error = assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
    assert!(
        error["message"].as_str().unwrap().contains("Plex"),
        "{error}"
    );
    assert_eq!(w.footprint().await, before);
}

#[tokio::test]
async fn server_members_without_a_configured_plex_server_is_not_configured() {
    let w = world_with(PlexSignup::ServerMembers, |c| {
        c.services.plex.url = None;
        c.services.plex.api_key = None;
    })
    .await;
    let guest = w.shared_account(2, "guest");
    let before = w.footprint().await;
    let r = w.sign_in_with_plex(&guest).await;
    assert_error(
        &r,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_NOT_CONFIGURED",
    );
    assert_eq!(w.footprint().await, before);
}

#[tokio::test]
async fn an_existing_plex_user_is_refreshed_on_sign_in() {
    let w = world(PlexSignup::ServerMembers).await;
    let guest = w.shared_account(2, "guest");
    let id = SignedIn::from_response(w.sign_in_with_plex(&guest).await).user_id;

    // The same plex.tv account, renamed, with a new email, avatar and token.
    let renamed = FakeAccount {
        username: "guest-renamed".into(),
        title: "Guest Renamed".into(),
        email: Some("renamed@example.com".into()),
        thumb: Some("https://plex.tv/users/new/avatar?c=2".into()),
        ..FakeAccount::new(guest.id, "guest-renamed")
    };
    w.tv.add_account(renamed.clone());
    let r = w.sign_in_with_plex(&renamed).await;
    let user = r.data()["user"].clone();
    assert_eq!(user["id"], id.as_str(), "the same user");
    assert_eq!(user["plexUsername"], "guest-renamed");
    assert_eq!(user["email"], "renamed@example.com");
    assert_eq!(user["image"], "https://plex.tv/users/new/avatar?c=2");
    let stored = w.stored_plex_token(guest.id).await;
    assert_eq!(w.t.state.cipher().decrypt(&stored).unwrap(), renamed.token);
    assert_eq!(
        w.count("SELECT count(*) FROM users WHERE plex_id IS NOT NULL")
            .await,
        1
    );
    assert_eq!(
        w.count("SELECT count(*) FROM notifications WHERE type = 'user.signup'")
            .await,
        1,
        "only a new user is announced"
    );
    assert_eq!(
        user["username"], "guest-renamed",
        "SPEC 1: username refreshed"
    );
}

#[tokio::test]
async fn pin_creation_is_limited_to_ten_per_ip_with_rate_limit_headers() {
    let w = world(PlexSignup::ServerMembers).await;
    let window_ms = 15 * 60 * 1000;
    let reset = (support::START_MS - support::START_MS % window_ms + window_ms) / 1000;
    let from = |ip: &str| call("POST", "/api/v1/auth/plex/pin").peer(ip);
    for remaining in (0..10).rev() {
        let r = from("192.0.2.20").send(&w.app).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.header("x-ratelimit-limit"), Some("10"));
        assert_eq!(
            r.header("x-ratelimit-remaining"),
            Some(remaining.to_string().as_str())
        );
        assert_eq!(
            r.header("x-ratelimit-reset"),
            Some(reset.to_string().as_str())
        );
    }
    let r = from("192.0.2.20").send(&w.app).await;
    let error = assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert_eq!(
        r.header("retry-after"),
        Some(error["retryAfter"].to_string().as_str())
    );
    assert_eq!(
        w.tv.requests("POST /api/v2/pins"),
        10,
        "the 11th never left"
    );
    assert_eq!(from("192.0.2.21").send(&w.app).await.status, StatusCode::OK);

    w.t.clock.advance(window_ms);
    assert_eq!(from("192.0.2.20").send(&w.app).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_pin_polled_twice_at_once_signs_in_once() {
    // The dashboard polls every 2 s; with a slow plex.tv, or two tabs, two polls overlap.
    let w = world(PlexSignup::ServerMembers).await;
    let guest = w.shared_account(2, "guest");
    let browser = w.new_browser().await;
    assert!(w.tv.authorize_pin(browser.plex_pin_id, &guest.token));
    let (first, second) = tokio::join!(w.poll_as(&browser), w.poll_as(&browser));
    let mut answers = [(first.status, first.text()), (second.status, second.text())];
    answers.sort();
    assert_eq!(
        (answers[0].0, answers[1].0),
        (StatusCode::OK, StatusCode::NOT_FOUND),
        "one sign-in, then the PIN is used up: {answers:?}"
    );
    assert!(answers[1].1.contains("PIN_NOT_FOUND"), "{answers:?}");
    assert_eq!(
        w.count("SELECT count(*) FROM users WHERE plex_id IS NOT NULL")
            .await,
        1
    );
    assert_eq!(w.count("SELECT count(*) FROM session_tokens").await, 1);
}

/// plex.tv answers some revoked tokens 422 "Invalid token": the user is asked to sign in with
/// Plex again (401 `PLEX_TOKEN_EXPIRED`), not told plex.tv is broken, and nothing is stored.
#[tokio::test]
async fn a_token_plex_tv_calls_invalid_with_422_is_an_expired_sign_in() {
    let w = world(PlexSignup::ServerMembers).await;
    let guest = w.shared_account(2, "guest");
    let browser = w.new_browser().await;
    assert!(w.tv.authorize_pin(browser.plex_pin_id, &guest.token));
    w.tv.revoke_token(&guest.token);
    let before = w.footprint().await;

    let r = w.poll_as(&browser).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "PLEX_TOKEN_EXPIRED");
    assert!(r.set_cookie(SESSION_COOKIE).is_none());
    assert_eq!(w.footprint().await, before);
    let breaker =
        w.t.state
            .plex_auth()
            .plextv()
            .upstream()
            .breaker()
            .snapshot();
    assert_eq!(breaker.consecutive_failures, 0, "plex.tv answered");
}

/// Under `server.base_path` the PIN cookie is scoped to the API under it, and Plex sends its tab
/// back to the home page under it, on the host the browser used.
#[tokio::test]
async fn under_a_base_path_the_pin_cookie_and_the_way_back_include_it() {
    let w = world_with(PlexSignup::ServerMembers, |c| {
        c.server.base_path = "/medianest".into();
    })
    .await;
    let r = call("POST", "/medianest/api/v1/auth/plex/pin")
        .header("host", "home.example:8080")
        .send(&w.app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let cookie = r.set_cookie(PIN_COOKIE).expect("the PIN cookie");
    assert_eq!(
        cookie.attribute("Path"),
        Some("/medianest/api/v1/auth/plex")
    );
    let auth_url = r.data()["authUrl"].as_str().unwrap().to_owned();
    assert!(
        auth_url.ends_with("&forwardUrl=http%3A%2F%2Fhome.example%3A8080%2Fmedianest%2F"),
        "{auth_url}"
    );
}
