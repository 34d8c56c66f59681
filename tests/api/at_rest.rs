//! Secrets at rest (SPEC section 2): after a first run, a password change, password and Plex
//! sign-ins and a clean shutdown, the raw bytes of the database file (and its WAL, if one is
//! left) contain no password, no session token and no Plex token. CSRF tokens are stored as they
//! are, which is what shows the scan reads the rows it should.

use std::path::Path;
use std::sync::Arc;

use axum::http::StatusCode;
use medianest::auth::first_run::INITIAL_PASSWORD_FILE;
use medianest::clock::ManualClock;
use medianest::config::{PlexSignup, Secret};
use medianest::sim::plex::FakePlexServer;
use medianest::sim::plextv::{FakeAccount, FakePlexTv};
use serde_json::json;

use crate::support::{self, SignedIn, call, sign_in};

const NEW_PASSWORD: &str = "the admin's new passphrase";
const MACHINE_ID: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567";

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

fn read_if_present(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_file_holds_no_password_session_token_or_plex_token() {
    let clock = Arc::new(ManualClock::new(support::START_MS));
    let plex_tv = FakePlexTv::start_with_clock(clock.clone()).await.unwrap();
    let server = FakePlexServer::start().await.unwrap();
    let owner = FakeAccount::new(1, "owner");
    let guest = FakeAccount::new(2, "guest");
    plex_tv.add_account(owner.clone());
    plex_tv.add_account(guest.clone());
    plex_tv.set_owner(owner.id, MACHINE_ID);
    plex_tv.share(guest.id, MACHINE_ID);
    server.set_machine_identifier(MACHINE_ID);
    server.set_token(&owner.token);
    let t = support::test_state_with_clock(
        clock,
        |c| {
            c.plex.tv_url = plex_tv.url();
            c.auth.plex_signup = PlexSignup::ServerMembers;
            c.services.plex.url = Some(server.url());
            c.services.plex.api_key = Some(Secret::new(owner.token.clone()));
        },
        support::file_db,
    );
    support::prepare(&t).await;
    let app = t.router();

    // First run, then the forced change.
    let initial =
        std::fs::read_to_string(t.state.config().data_dir.join(INITIAL_PASSWORD_FILE)).unwrap();
    let initial = initial.trim().to_owned();
    let first = sign_in(&app, "admin", &initial).await;
    let r = call("POST", "/api/v1/auth/password")
        .bearer(&first.token)
        .json(json!({ "currentPassword": initial, "newPassword": NEW_PASSWORD }))
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    // A browser (cookie) and a script (Bearer).
    let browser = sign_in(&app, "admin", NEW_PASSWORD).await;
    let r = call("GET", "/api/v1/auth/session")
        .session(&browser.token)
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let script = sign_in(&app, "admin", NEW_PASSWORD).await;
    let r = call("GET", "/api/v1/auth/sessions")
        .bearer(&script.token)
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::OK);

    // A Plex sign-in stores the user's Plex token.
    let pin = call("POST", "/api/v1/auth/plex/pin").send(&app).await;
    let pin_id = pin.data()["pinId"].as_str().unwrap().to_owned();
    let pin_cookie = pin.set_cookie("medianest_pin").unwrap().value;
    assert!(plex_tv.authorize_pin(plex_tv.last_pin_id().unwrap(), &guest.token));
    let plex = SignedIn::from_response(
        call("POST", &format!("/api/v1/auth/plex/pin/{pin_id}/poll"))
            .cookie("medianest_pin", &pin_cookie)
            .send(&app)
            .await,
    );

    let db_path = t.state.config().database_path();
    drop(app);
    t.state.shutdown().await.unwrap();
    let mut wal_path = db_path.clone().into_os_string();
    wal_path.push("-wal");
    let mut bytes = std::fs::read(&db_path).unwrap();
    bytes.extend(read_if_present(Path::new(&wal_path)));

    // The scan sees the session rows: their CSRF tokens are stored as they are.
    for csrf in [&browser.csrf, &script.csrf, &plex.csrf] {
        assert!(contains(&bytes, csrf), "the scan misses the session rows");
    }
    for (what, secret) in [
        ("the initial admin password", initial.as_str()),
        ("the new admin password", NEW_PASSWORD),
        ("the first session's token", first.token.as_str()),
        ("the browser's session token", browser.token.as_str()),
        ("the script's session token", script.token.as_str()),
        ("the Plex sign-in's session token", plex.token.as_str()),
        ("the user's Plex token", guest.token.as_str()),
        ("the Plex server token", owner.token.as_str()),
    ] {
        assert!(
            !contains(&bytes, secret),
            "{what} is in {} in the clear",
            db_path.display()
        );
    }
}
