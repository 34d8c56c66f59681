//! An admin's changes to an account take effect on that account's very next request (SPEC
//! sections 1 and 2): suspending ends its sessions and its sign-ins, a role change opens or closes
//! the admin routes at once, and deleting a user removes everything that hangs off it. Every case
//! first makes the victim's session hot in the session cache, so a change that forgot to drop the
//! cache would show.

use axum::Router;
use axum::http::StatusCode;
use serde_json::json;

use crate::support::{
    self, TestResponse, TestState, assert_error, call, insert_user, login, sign_in, sql_text,
};

const ADMIN_PASSWORD: &str = "configured admin pw 1";
const ALICE_PASSWORD: &str = "alice's long password";

async fn setup() -> (TestState, Router, String, String) {
    let t = support::test_state_with(|c| {
        c.admin.password = Some(medianest::config::Secret::new(ADMIN_PASSWORD));
    });
    support::prepare(&t).await;
    let alice = insert_user(
        &t.state,
        "alice",
        Some("alice@example.com"),
        "user",
        Some(ALICE_PASSWORD),
    )
    .await;
    let app = t.router();
    let admin = sign_in(&app, "admin", ADMIN_PASSWORD).await.token;
    (t, app, alice, admin)
}

async fn patch_user(app: &Router, admin: &str, id: &str, body: serde_json::Value) -> TestResponse {
    let r = call("PATCH", &format!("/api/v1/admin/users/{id}"))
        .bearer(admin)
        .json(body)
        .send(app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r
}

async fn get_as(app: &Router, token: &str, path: &str) -> TestResponse {
    call("GET", path).bearer(token).send(app).await
}

#[tokio::test]
async fn suspending_a_user_ends_their_sessions_on_the_next_request() {
    let (_t, app, alice_id, admin) = setup().await;
    let laptop = sign_in(&app, "alice", ALICE_PASSWORD).await;
    let phone = sign_in(&app, "alice", ALICE_PASSWORD).await;
    for s in [&laptop, &phone] {
        let r = get_as(&app, &s.token, "/api/v1/auth/session").await;
        assert_eq!(r.status, StatusCode::OK);
    }

    patch_user(&app, &admin, &alice_id, json!({ "status": "suspended" })).await;
    for s in [&laptop, &phone] {
        let r = get_as(&app, &s.token, "/api/v1/auth/session").await;
        assert!(
            matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
            "a suspended user's session still answers {}: {}",
            r.status,
            r.text()
        );
        let code = r.json()["error"]["code"].clone();
        assert!(
            code == "UNAUTHORIZED" || code == "ACCOUNT_SUSPENDED",
            "{code}"
        );
    }
    assert_error(
        &login(&app, "alice", ALICE_PASSWORD).await,
        StatusCode::FORBIDDEN,
        "ACCOUNT_SUSPENDED",
    );

    patch_user(&app, &admin, &alice_id, json!({ "status": "active" })).await;
    sign_in(&app, "alice", ALICE_PASSWORD).await;
}

#[tokio::test]
async fn a_role_change_opens_and_closes_the_admin_routes_on_the_next_request() {
    let (_t, app, alice_id, admin) = setup().await;
    let alice = sign_in(&app, "alice", ALICE_PASSWORD).await;
    let r = get_as(&app, &alice.token, "/api/v1/admin/users").await;
    assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");

    patch_user(&app, &admin, &alice_id, json!({ "role": "admin" })).await;
    let r = get_as(&app, &alice.token, "/api/v1/admin/users").await;
    assert_eq!(r.status, StatusCode::OK, "promoted: {}", r.text());
    let session = get_as(&app, &alice.token, "/api/v1/auth/session")
        .await
        .data();
    assert_eq!(session["user"]["role"], "admin");

    patch_user(&app, &admin, &alice_id, json!({ "role": "user" })).await;
    let r = get_as(&app, &alice.token, "/api/v1/admin/users").await;
    assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
}

/// Rows of `table` whose `column` is `value`.
async fn rows(t: &TestState, table: &str, column: &str, value: &str) -> i64 {
    support::scalar(
        &t.state,
        &format!("SELECT count(*) FROM {table} WHERE {column} = ?1"),
        vec![sql_text(value)],
    )
    .await
}

/// Gives `user_id` one row in every table that belongs to a user; returns the request's id.
async fn give_data(t: &TestState, user_id: &str, tmdb_id: i64) -> String {
    let request_id = medianest::users::new_id();
    let (user, request) = (user_id.to_owned(), request_id.clone());
    t.state
        .db()
        .write(move |tx| {
            let now = support::START_MS;
            tx.execute(
                "INSERT INTO media_requests (id, user_id, title, media_type, tmdb_id, created_at,
                                             updated_at)
                 VALUES (?1, ?2, 'A Film', 'movie', ?3, ?4, ?4)",
                rusqlite::params![request, user, tmdb_id, now],
            )?;
            tx.execute(
                "INSERT INTO youtube_downloads (id, user_id, url, kind, created_at)
                 VALUES (?1, ?2, 'https://www.youtube.com/watch?v=dQw4w9WgXcQ', 'video', ?3)",
                rusqlite::params![medianest::users::new_id(), user, now],
            )?;
            tx.execute(
                "INSERT INTO notifications (id, user_id, type, title, message, created_at)
                 VALUES (?1, ?2, 'request.updated', 'Approved', 'A Film was approved', ?3)",
                rusqlite::params![medianest::users::new_id(), user, now],
            )?;
            tx.execute(
                "INSERT INTO error_logs (correlation_id, user_id, error_code, error_message,
                                         created_at)
                 VALUES ('cid-' || ?1, ?1, 'INTERNAL_ERROR', 'boom', ?2)",
                rusqlite::params![user, now],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    request_id
}

async fn follow(t: &TestState, user_id: &str, request_id: &str) {
    let (user, request) = (user_id.to_owned(), request_id.to_owned());
    t.state
        .db()
        .write(move |tx| {
            tx.execute(
                "INSERT INTO request_followers (request_id, user_id, created_at)
                 VALUES (?1, ?2, ?3)",
                rusqlite::params![request, user, support::START_MS],
            )?;
            Ok(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn deleting_a_user_cascades_and_ends_their_sessions_at_once() {
    let (t, app, alice_id, admin) = setup().await;
    let admin_id = support::text_value(
        &t.state,
        "SELECT id FROM users WHERE username = 'admin'",
        vec![],
    )
    .await
    .unwrap();
    let alice = sign_in(&app, "alice", ALICE_PASSWORD).await;
    sign_in(&app, "alice", ALICE_PASSWORD).await;
    let alices_request = give_data(&t, &alice_id, 101).await;
    let admins_request = give_data(&t, &admin_id, 202).await;
    follow(&t, &alice_id, &admins_request).await;
    follow(&t, &admin_id, &alices_request).await;
    assert_eq!(
        get_as(&app, &alice.token, "/api/v1/auth/session")
            .await
            .status,
        StatusCode::OK
    );

    let r = call("DELETE", &format!("/api/v1/admin/users/{alice_id}"))
        .bearer(&admin)
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    let r = get_as(&app, &alice.token, "/api/v1/auth/session").await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert_error(
        &login(&app, "alice", ALICE_PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_CREDENTIALS",
    );
    for (table, column) in [
        ("users", "id"),
        ("session_tokens", "user_id"),
        ("media_requests", "user_id"),
        ("youtube_downloads", "user_id"),
        ("notifications", "user_id"),
        ("request_followers", "user_id"),
        ("error_logs", "user_id"),
    ] {
        assert_eq!(
            rows(&t, table, column, &alice_id).await,
            0,
            "{table}.{column} still names the deleted user"
        );
    }
    assert_eq!(
        rows(&t, "request_followers", "request_id", &alices_request).await,
        0,
        "follows of the deleted user's request go with it"
    );
    // The error log keeps its entry, without the user.
    assert_eq!(
        rows(
            &t,
            "error_logs",
            "correlation_id",
            &format!("cid-{alice_id}")
        )
        .await,
        1
    );
    // Everyone else's data stays.
    for (table, column) in [
        ("media_requests", "user_id"),
        ("youtube_downloads", "user_id"),
        ("notifications", "user_id"),
        ("error_logs", "user_id"),
        ("session_tokens", "user_id"),
    ] {
        assert_eq!(rows(&t, table, column, &admin_id).await, 1, "{table}");
    }
    assert_eq!(
        get_as(&app, &admin, "/api/v1/auth/session").await.status,
        StatusCode::OK
    );
}
