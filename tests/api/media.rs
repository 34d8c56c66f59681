//! Media requests end to end against the Overseerr simulator: search, request, webhooks,
//! reconciliation, the dedupe and quota rules, visibility of other users' requests, paging,
//! approve/decline and the dashboard.

use std::time::Duration;

use axum::http::StatusCode;
use medianest::config::Secret;
use medianest::events::kind;
use medianest::integrations::overseerr::{
    Flavor, MediaRequestStatus, MediaStatus, MediaType, NotificationType,
};
use medianest::sim::overseerr::{FakeNotification, FakeOverseerrUser, FakeTitle, WebhookTemplate};
use serde_json::{Value, json};

use crate::support::services::{ServiceWorld, refused_url, world_with};
use crate::support::{
    RunningServer, TestResponse, assert_error, call, insert_user, new_session, scalar,
};

pub(crate) const HOOK_SECRET: &str = "hook-secret-0123456789";

/// The service world plus a second user ("other") and one Overseerr has never heard of
/// ("stranger"); "user" and "other" are Overseerr users 10 and 11.
pub(crate) struct Media {
    pub w: ServiceWorld,
    pub other_id: String,
    pub other: String,
    pub stranger: String,
}

pub(crate) async fn media_world() -> Media {
    media_world_with(|_| {}).await
}

pub(crate) async fn media_world_with(edit: impl FnOnce(&mut medianest::Config)) -> Media {
    let w = world_with(medianest::sim::uptime_kuma::KumaVersion::V2, |c| {
        c.webhooks.overseerr_secret = Some(Secret::new(HOOK_SECRET));
        edit(c);
    })
    .await;
    w.overseerr
        .add_user(FakeOverseerrUser::plex(10, None, "user"));
    w.overseerr
        .add_user(FakeOverseerrUser::plex(11, None, "other"));
    // Overseerr accounts are found by email (the fake gives `{name}@example.com`).
    w.t.state
        .db()
        .write(|tx| {
            tx.execute(
                "UPDATE users SET email = 'user@example.com' WHERE username = 'user'",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let other_id = insert_user(&w.t.state, "other", Some("other@example.com"), "user", None).await;
    let other = new_session(&w.t.state, &other_id).await.token;
    let stranger_id = insert_user(
        &w.t.state,
        "stranger",
        Some("stranger@example.com"),
        "user",
        None,
    )
    .await;
    let stranger = new_session(&w.t.state, &stranger_id).await.token;
    Media {
        w,
        other_id,
        other,
        stranger,
    }
}

impl Media {
    pub(crate) async fn get(&self, token: &str, path: &str) -> TestResponse {
        call("GET", path).bearer(token).send(&self.w.app).await
    }

    pub(crate) async fn post(&self, token: &str, path: &str, body: Value) -> TestResponse {
        call("POST", path)
            .bearer(token)
            .json(body)
            .send(&self.w.app)
            .await
    }

    pub(crate) async fn delete(&self, token: &str, path: &str) -> TestResponse {
        call("DELETE", path).bearer(token).send(&self.w.app).await
    }

    pub(crate) async fn request_movie(&self, token: &str, tmdb_id: i64) -> TestResponse {
        self.post(
            token,
            "/api/v1/media/requests",
            json!({"mediaType": "movie", "tmdbId": tmdb_id}),
        )
        .await
    }

    async fn rows(&self) -> i64 {
        scalar(
            &self.w.t.state,
            "SELECT count(*) FROM media_requests",
            vec![],
        )
        .await
    }

    async fn notifications_of(&self, user_id: &str) -> Vec<Value> {
        let token = new_session(&self.w.t.state, user_id).await.token;
        let r = self.get(&token, "/api/v1/notifications?limit=100").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.data()
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["type"] == "request.status")
            .cloned()
            .collect()
    }

    async fn status_of(&self, id: &str) -> String {
        let r = self
            .get(&self.w.admin, &format!("/api/v1/media/requests/{id}"))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.data()["status"].as_str().unwrap().to_owned()
    }
}

/// A page of `n` extra movies, ids from `first`.
pub(crate) fn extra_movies(w: &ServiceWorld, first: i64, n: i64) {
    for id in first..first + n {
        w.overseerr
            .add_title(FakeTitle::movie(id, &format!("Film {id}"), "2020-01-01"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_request_approve_available_notifies_owner_and_follower_once_each() {
    let m = media_world().await;
    let server = RunningServer::start(&m.w.t.state, m.w.app.clone()).await;
    let hook = format!("http://{}/api/v1/webhooks/overseerr", server.addr);
    let mut events = m.w.t.state.events().subscribe();

    // Search: a space and a parenthesis go out strictly percent-encoded.
    let r = m
        .get(
            &m.w.user,
            "/api/v1/media/search?query=the%20matrix%20(1999)",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let (sent, decoded) = m.w.overseerr.last_search_query().unwrap();
    assert_eq!(decoded, "the matrix (1999)");
    assert!(sent.contains("the%20matrix%20%281999%29"), "{sent}");
    let r = m.get(&m.w.user, "/api/v1/media/search?query=matrix").await;
    let matrix = r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["tmdbId"] == 603)
        .cloned()
        .unwrap();
    assert_eq!(matrix["requested"], false);
    assert_eq!(matrix["availability"], "unknown");
    assert!(r.json()["meta"]["totalResults"].as_i64().unwrap() >= 1);

    // Request as the user's own Overseerr account.
    let r = m.request_movie(&m.w.user, 603).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let created = r.data();
    assert_eq!(created["status"], "pending");
    assert_eq!(created["title"], "The Matrix");
    assert_eq!(created["following"], false);
    assert_eq!(m.w.overseerr.last_api_user().as_deref(), Some("10"));
    let id = created["id"].as_str().unwrap().to_owned();
    let oid = created["overseerrId"].as_i64().unwrap();

    // Search now says it is requested here, and by whom.
    let r = m.get(&m.other, "/api/v1/media/search?query=matrix").await;
    let mark = r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["tmdbId"] == 603)
        .cloned()
        .unwrap();
    assert_eq!(mark["requested"], true);
    assert_eq!(mark["request"]["id"], id.as_str());
    assert_eq!(mark["request"]["mine"], false);

    // Someone else asking again: 409 naming the request, which they may follow.
    let r = m.request_movie(&m.other, 603).await;
    let e = assert_error(&r, StatusCode::CONFLICT, "ALREADY_REQUESTED");
    assert_eq!(e["details"]["requestId"], id.as_str());
    let r = m
        .post(
            &m.other,
            &format!("/api/v1/media/requests/{id}/follow"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    // Overseerr approves and says so.
    assert!(
        m.w.overseerr
            .set_request_status(oid, MediaRequestStatus::Approved)
    );
    let approved = FakeNotification::about(NotificationType::MediaApproved, oid);
    let status =
        m.w.overseerr
            .fire_webhook(&hook, Some(HOOK_SECRET), &approved)
            .await
            .unwrap();
    assert_eq!(status, 200);
    assert_eq!(m.status_of(&id).await, "approved");
    // A replay changes nothing and notifies nobody again.
    let status =
        m.w.overseerr
            .fire_webhook(&hook, Some(HOOK_SECRET), &approved)
            .await
            .unwrap();
    assert_eq!(status, 200);
    assert_eq!(m.notifications_of(&m.w.user_id).await.len(), 1);
    assert_eq!(m.notifications_of(&m.other_id).await.len(), 1);

    // Available, in the camelCase spelling of a custom template.
    m.w.overseerr.set_media_available(MediaType::Movie, 603);
    let available = FakeNotification::about(NotificationType::MediaAvailable, oid)
        .in_template(WebhookTemplate::CamelCase);
    for _ in 0..2 {
        let status =
            m.w.overseerr
                .fire_webhook(&hook, Some(HOOK_SECRET), &available)
                .await
                .unwrap();
        assert_eq!(status, 200);
    }
    let r = m
        .get(&m.w.user, &format!("/api/v1/media/requests/{id}"))
        .await;
    assert_eq!(r.data()["status"], "available");
    assert!(r.data()["completedAt"].is_string());
    for user in [&m.w.user_id, &m.other_id] {
        let got = m.notifications_of(user).await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0]["title"], "Now available");
        assert_eq!(got[0]["metadata"]["requestId"], id.as_str());
        // The title's poster comes along, for the notification list.
        assert_eq!(
            got[0]["metadata"]["posterPath"],
            "/f89U3ADr1oiB1s9GkdPOEpXUk5H.jpg"
        );
    }
    // The follower sees it as followed; the live events went to both.
    let r = m.get(&m.other, "/api/v1/media/search?query=matrix").await;
    let mark = r.data()[0]["request"].clone();
    assert_eq!(mark["following"], true);
    let mut updates = Vec::new();
    while let Ok(event) = events.try_recv() {
        if event.kind == kind::REQUEST_UPDATED {
            let data: Value = serde_json::from_str(&event.data).unwrap();
            assert!(event.audience.includes(&m.w.user_id, false));
            // The creation goes to the owner (and admins); the changes to the follower too.
            assert_eq!(
                event.audience.includes(&m.other_id, false),
                data["previousStatus"] != "",
                "{data}"
            );
            updates.push(data["status"].as_str().unwrap_or_default().to_owned());
        }
    }
    assert_eq!(updates, ["pending", "approved", "available"]);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_authorization_and_unknown_requests() {
    let m = media_world().await;
    let app = &m.w.app;
    let body = json!({"notification_type": "MEDIA_APPROVED", "request": {"request_id": "987"}});
    let hook = "/api/v1/webhooks/overseerr";
    let r = call("POST", hook).json(body.clone()).send(app).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "WEBHOOK_UNAUTHORIZED");
    let r = call("POST", hook)
        .header("authorization", "not the secret")
        .json(body.clone())
        .send(app)
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "WEBHOOK_UNAUTHORIZED");
    // Unknown request, test notification, unknown type: 200, nothing changes.
    for body in [
        body.clone(),
        json!({"notification_type": "TEST_NOTIFICATION", "media": null, "request": null}),
        json!({"notificationType": "ISSUE_CREATED", "subject": null}),
        json!({"notification_type": "MEDIA_AVAILABLE", "media": {"tmdbId": "", "media_type": null}}),
    ] {
        let r = call("POST", hook)
            .header("authorization", HOOK_SECRET)
            .json(body.clone())
            .send(app)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{body}: {}", r.text());
        assert_eq!(r.data()["handled"], false);
    }
    let request = axum::http::Request::post(hook)
        .header("authorization", HOOK_SECRET)
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{not json"))
        .unwrap();
    let r = crate::support::send(app, request).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_JSON");

    // No secret configured: the webhook is not set up.
    let m = media_world_with(|c| c.webhooks.overseerr_secret = None).await;
    let r = call("POST", hook)
        .header("authorization", HOOK_SECRET)
        .json(body)
        .send(&m.w.app)
        .await;
    assert_error(
        &r,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_NOT_CONFIGURED",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_without_a_request_id_finds_the_active_request_by_title() {
    let m = media_world().await;
    let r = m.request_movie(&m.w.user, 27205).await;
    let id = r.data()["id"].as_str().unwrap().to_owned();
    let r = call("POST", "/api/v1/webhooks/overseerr")
        .header("authorization", format!("Bearer {HOOK_SECRET}").as_str())
        .json(json!({
            "notification_type": "MEDIA_DECLINED",
            "media": {"media_type": "movie", "tmdbId": "27205"},
            "request": {"request_id": ""},
            "reason": "Not in 2010"
        }))
        .send(&m.w.app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.data()["changed"], true);
    assert_eq!(m.status_of(&id).await, "declined");
    let got = m.notifications_of(&m.w.user_id).await;
    assert_eq!(got[0]["message"], "Inception was declined: Not in 2010");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overseerr_down_or_failing_stores_nothing() {
    let m = media_world().await;
    // Details are cached by a first look, so only the request itself fails below.
    let r = m.get(&m.w.user, "/api/v1/media/movie/603").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    m.w.overseerr.fail_next_on_route(
        "/api/v1/request",
        1,
        medianest::sim::overseerr::Fault::Status(500),
    );
    let r = m.request_movie(&m.w.user, 603).await;
    let e = assert_error(&r, StatusCode::BAD_GATEWAY, "UPSTREAM_ERROR");
    assert!(e["message"].as_str().unwrap().contains("Seerr"), "{e}");
    assert_eq!(m.rows().await, 0);

    m.w.set_url("overseerr", &refused_url()).await;
    m.w.t.state.media().clear();
    let r = m.request_movie(&m.w.user, 603).await;
    let e = assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
    assert!(e["correlationId"].is_string());
    assert_eq!(m.rows().await, 0);
    // The rest of the app keeps working.
    let r = m.get(&m.w.user, "/api/v1/media/requests").await;
    assert_eq!(r.status, StatusCode::OK);

    // Not configured at all.
    let m = media_world_with(|c| c.services.overseerr.url = None).await;
    let r = m.request_movie(&m.w.user, 603).await;
    assert_error(
        &r,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_NOT_CONFIGURED",
    );
    assert_eq!(m.rows().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_requests_an_hour_then_quota_exceeded_with_retry_after() {
    let m = media_world().await;
    extra_movies(&m.w, 5000, 22);
    for (i, id) in (5000..5020).enumerate() {
        let r = m.request_movie(&m.w.user, id).await;
        assert_eq!(r.status, StatusCode::CREATED, "request {i}: {}", r.text());
        m.w.t.clock.advance(60_000);
    }
    let r = m.request_movie(&m.w.user, 5020).await;
    let e = assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "QUOTA_EXCEEDED");
    // The oldest is 20 minutes old: it leaves the window in 40.
    assert_eq!(e["retryAfter"], 40 * 60);
    assert_eq!(r.header("retry-after"), Some("2400"));
    assert_eq!(m.rows().await, 20);
    // Admins are exempt; the window moves on.
    let r = m.request_movie(&m.w.admin, 5020).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    m.w.t.clock.advance(40 * 60_000);
    let r = m.request_movie(&m.w.user, 5021).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_requests_make_one_row() {
    let m = media_world().await;
    let mut tokens = vec![m.w.user.clone(), m.other.clone()];
    for i in 0..6 {
        let email = format!("fan{i}@example.com");
        let id = insert_user(&m.w.t.state, &format!("fan{i}"), Some(&email), "user", None).await;
        m.w.overseerr
            .add_user(FakeOverseerrUser::plex(20 + i, None, &format!("fan{i}")));
        tokens.push(new_session(&m.w.t.state, &id).await.token);
    }
    let mut calls = tokio::task::JoinSet::new();
    for token in tokens {
        let app = m.w.app.clone();
        calls.spawn(async move {
            call("POST", "/api/v1/media/requests")
                .bearer(&token)
                .json(json!({"mediaType": "tv", "tmdbId": 1399, "seasons": [1, 2]}))
                .send(&app)
                .await
        });
    }
    let mut created = 0;
    let mut conflicts = 0;
    while let Some(r) = calls.join_next().await {
        let r = r.unwrap();
        match r.status {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => conflicts += 1,
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    assert_eq!((created, conflicts), (1, 7));
    assert_eq!(m.rows().await, 1);
    assert_eq!(
        m.w.overseerr.requests("POST /api/v1/request"),
        1,
        "one Overseerr request"
    );
    let seasons = medianest_seasons(&m).await;
    assert_eq!(seasons, "[1,2]");
}

async fn medianest_seasons(m: &Media) -> String {
    crate::support::text_value(
        &m.w.t.state,
        "SELECT seasons FROM media_requests LIMIT 1",
        vec![],
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_reads_deletes_or_lists_someone_elses_request() {
    let m = media_world().await;
    let r = m.request_movie(&m.w.user, 603).await;
    let id = r.data()["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/media/requests/{id}");
    assert_error(
        &m.get(&m.other, &path).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    assert_error(
        &m.delete(&m.other, &path).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    let r = m.get(&m.other, "/api/v1/media/requests").await;
    assert_eq!(r.data(), json!([]));
    // Not through the admin list either, and not by naming the owner.
    let r = m
        .get(
            &m.other,
            &format!("/api/v1/admin/requests?userId={}", m.w.user_id),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
    let r = m
        .get(
            &m.other,
            &format!("/api/v1/media/requests?userId={}", m.w.user_id),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    // Following answers only whether one follows; an unknown id is 404.
    let r = m
        .post(
            &m.other,
            "/api/v1/media/requests/no-such-id/follow",
            json!({}),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    // The owner and an admin do see it.
    assert_eq!(m.get(&m.w.user, &path).await.status, StatusCode::OK);
    let r = m.get(&m.w.admin, "/api/v1/admin/requests").await;
    assert_eq!(r.data()[0]["requestedBy"]["username"], "user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_heals_a_missed_webhook() {
    let m = media_world().await;
    let r = m.request_movie(&m.w.user, 954).await;
    let id = r.data()["id"].as_str().unwrap().to_owned();
    let oid = r.data()["overseerrId"].as_i64().unwrap();
    let report = medianest::media::reconcile::run_once(&m.w.t.state)
        .await
        .unwrap();
    assert_eq!((report.checked, report.changed), (1, 0));
    // Overseerr approves and the title arrives; no webhook reaches MediaNest.
    m.w.overseerr
        .set_request_status(oid, MediaRequestStatus::Approved);
    m.w.overseerr.set_media_available(MediaType::Movie, 954);
    let report = medianest::media::reconcile::run_once(&m.w.t.state)
        .await
        .unwrap();
    assert_eq!((report.checked, report.changed), (1, 1));
    assert_eq!(m.status_of(&id).await, "available");
    let got = m.notifications_of(&m.w.user_id).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["metadata"]["origin"], "reconcile");
    // Final requests are not looked at again.
    let report = medianest::media::reconcile::run_once(&m.w.t.state)
        .await
        .unwrap();
    assert_eq!(report.checked, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_users_are_refused_unless_the_fallback_is_on() {
    let m = media_world().await;
    let r = m.request_movie(&m.stranger, 603).await;
    let e = assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
    assert!(e["details"]["reason"].as_str().unwrap().contains("Seerr"));
    assert_eq!(m.rows().await, 0);
    let m = media_world_with(|c| c.overseerr.fallback_to_admin = true).await;
    let r = m.request_movie(&m.stranger, 603).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(
        m.w.overseerr.last_api_user(),
        None,
        "sent as the API key's admin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_approve_and_decline_rules() {
    let m = media_world().await;
    let r = m.request_movie(&m.w.user, 603).await;
    let first = r.data()["id"].as_str().unwrap().to_owned();
    let first_oid = r.data()["overseerrId"].as_i64().unwrap();
    // The owner withdraws a pending request: gone here and in Overseerr.
    let r = m
        .delete(&m.w.user, &format!("/api/v1/media/requests/{first}"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(m.w.overseerr.request(first_oid).is_none());
    assert_eq!(m.rows().await, 0);

    // Approved: the owner may no longer withdraw it; an admin may.
    let r = m.request_movie(&m.w.user, 604).await;
    let id = r.data()["id"].as_str().unwrap().to_owned();
    let oid = r.data()["overseerrId"].as_i64().unwrap();
    let r = m
        .post(
            &m.w.admin,
            &format!("/api/v1/admin/requests/{id}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // Approved in Overseerr, which hands it on at once: processing.
    assert_eq!(r.data()["status"], "processing");
    assert_eq!(
        m.w.overseerr.request(oid).unwrap().status,
        MediaRequestStatus::Approved
    );
    let r = m
        .delete(&m.w.user, &format!("/api/v1/media/requests/{id}"))
        .await;
    assert_error(&r, StatusCode::CONFLICT, "CONFLICT");

    // Decline with a reason, which the owner reads.
    let r = m.request_movie(&m.w.user, 954).await;
    let declined = r.data()["id"].as_str().unwrap().to_owned();
    let r = m
        .post(
            &m.w.admin,
            &format!("/api/v1/admin/requests/{declined}/decline"),
            json!({"reason": "We have it on DVD"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.data()["status"], "declined");
    let got = m.notifications_of(&m.w.user_id).await;
    assert_eq!(
        got[0]["message"],
        "Mission: Impossible was declined: We have it on DVD"
    );
    // A declined title may be asked for again.
    let r = m.request_movie(&m.other, 954).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());

    let r = m
        .delete(&m.w.admin, &format!("/api/v1/media/requests/{id}"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(m.w.overseerr.request(oid).is_none());
}

/// Inserts `n` requests of `user_id` straight into the table, one a second from `start_ms`.
pub(crate) async fn seed_rows(m: &Media, user_id: &str, first: i64, n: i64, start_ms: i64) {
    let user = user_id.to_owned();
    m.w.t
        .state
        .db()
        .write(move |tx| {
            let mut stmt = tx.prepare(
                "INSERT INTO media_requests (id, user_id, title, media_type, tmdb_id, status,
                                             created_at, updated_at)
                 VALUES (?1, ?2, ?3, 'movie', ?4, ?5, ?6, ?6)",
            )?;
            for i in first..first + n {
                let status = ["pending", "approved", "available", "declined"][(i % 4) as usize];
                stmt.execute(rusqlite::params![
                    uuid::Uuid::now_v7().to_string(),
                    user,
                    format!("Title {:04}", (i * 7919) % 1000),
                    100_000 + i,
                    status,
                    start_ms + i * 1000,
                ])?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

/// Follows `nextCursor` from `path` to the end, inserting rows between pages with `between`.
async fn walk(
    m: &Media,
    token: &str,
    path: &str,
    mut between: impl AsyncFnMut(usize),
) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0.. {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=7&cursor={c}"),
            None => format!("{path}{sep}limit=7"),
        };
        let r = m.get(token, &url).await;
        assert_eq!(r.status, StatusCode::OK, "{url}: {}", r.text());
        all.extend(r.data().as_array().unwrap().iter().cloned());
        match r.json()["meta"]["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        between(page).await;
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_paging_has_no_duplicates_or_gaps_while_rows_are_added() {
    let m = media_world().await;
    let start = crate::support::START_MS - 10_000_000;
    seed_rows(&m, &m.w.user_id, 0, 40, start).await;
    seed_rows(&m, &m.other_id, 1000, 5, start).await;

    let mut added = 0;
    for (path, sorted_by) in [
        ("/api/v1/media/requests", "createdAt"),
        ("/api/v1/media/requests?sort=title", "title"),
        ("/api/v1/media/requests?sort=status&order=desc", "status"),
        ("/api/v1/media/requests?status=pending", "createdAt"),
    ] {
        let rows = walk(&m, &m.w.user, path, async |page| {
            // Newer rows (and, for title sort, rows anywhere in the order) arrive meanwhile.
            seed_rows(
                &m,
                &m.w.user_id,
                2000 + added,
                2,
                start + 500_000 + page as i64,
            )
            .await;
            added += 2;
        })
        .await;
        let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
        let unique: std::collections::HashSet<&str> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "{path}: duplicates");
        assert!(rows.iter().all(|r| r["userId"] == m.w.user_id.as_str()));
        // Every row that existed before the walk is there (no gaps).
        let before = if path.contains("status=pending") {
            10
        } else {
            40
        };
        let old = rows
            .iter()
            .filter(|r| r["tmdbId"].as_i64().unwrap() < 100_000 + 1000)
            .count();
        assert!(old >= before, "{path}: {old} of {before} rows");
        // And the order holds.
        let keys: Vec<String> = rows
            .iter()
            .map(|r| r[sorted_by].as_str().unwrap().to_owned())
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        if path.contains("order=desc") || sorted_by == "createdAt" {
            sorted.reverse();
        }
        assert_eq!(keys, sorted, "{path}");
    }

    // Tampered, foreign and malformed cursors.
    let r = m.get(&m.w.user, "/api/v1/media/requests?limit=2").await;
    let cursor = r.json()["meta"]["nextCursor"].as_str().unwrap().to_owned();
    let mut chars: Vec<char> = cursor.chars().collect();
    chars[3] = if chars[3] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    for bad in [
        format!("/api/v1/media/requests?cursor={tampered}"),
        format!("/api/v1/media/requests?sort=title&cursor={cursor}"),
        "/api/v1/media/requests?cursor=%%%".to_owned(),
    ] {
        let r = m.get(&m.w.user, &bad).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_CURSOR");
    }
    for bad in [
        "/api/v1/media/requests?limit=0",
        "/api/v1/media/requests?status=lost",
        "/api/v1/media/requests?sort=size",
        "/api/v1/media/requests?from=last-week",
    ] {
        let r = m.get(&m.w.user, bad).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_narrow_the_list() {
    let m = media_world().await;
    let start = crate::support::START_MS - 10_000_000;
    seed_rows(&m, &m.w.user_id, 0, 12, start).await;
    let count = |r: TestResponse| r.data().as_array().unwrap().len();
    assert_eq!(
        count(
            m.get(&m.w.user, "/api/v1/media/requests?status=approved")
                .await
        ),
        3
    );
    assert_eq!(
        count(
            m.get(&m.w.user, "/api/v1/media/requests?mediaType=tv")
                .await
        ),
        0
    );
    assert_eq!(
        count(m.get(&m.w.user, "/api/v1/media/requests?q=title%200").await),
        12
    );
    let first = medianest::time::rfc3339(start);
    let fifth = medianest::time::rfc3339(start + 4000);
    let r = m
        .get(
            &m.w.user,
            &format!("/api/v1/media/requests?from={first}&to={fifth}"),
        )
        .await;
    assert_eq!(count(r), 4, "to is exclusive");
    let r = m
        .get(
            &m.w.admin,
            "/api/v1/admin/requests?status=pending&mediaType=movie",
        )
        .await;
    assert_eq!(count(r), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_cached_per_user_and_dropped_on_change() {
    let m = media_world().await;
    let movies = m.w.plex.add_library("movie", "Movies", "/data/movies");
    m.w.plex
        .add_item(&movies, medianest::sim::plex::NewItem::new("Arrival", 2016))
        .unwrap();
    tokio::spawn(medianest::home::watch(m.w.t.state.clone()));
    m.w.cycle().await;
    let r = m.get(&m.w.user, "/api/v1/dashboard").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-cache"), Some("MISS"));
    let d = r.data();
    assert_eq!(d["user"]["username"], "user");
    assert_eq!(d["requests"]["total"], 0);
    assert_eq!(d["notifications"]["unread"], 0);
    assert_eq!(d["downloads"], json!({"active": 0, "queued": 0}));
    assert!(d["services"].as_array().unwrap().len() >= 3, "{d}");
    assert_eq!(d["recentlyAdded"][0]["title"], "Arrival", "{d}");
    let thumb = d["recentlyAdded"][0]["thumb"].as_str().unwrap_or_default();
    assert!(
        thumb.is_empty() || thumb.starts_with("/api/v1/plex/image?"),
        "{thumb}"
    );
    let r = m.get(&m.w.user, "/api/v1/dashboard").await;
    assert_eq!(r.header("x-cache"), Some("HIT"));

    // A new request drops the owner's dashboard at once.
    m.request_movie(&m.w.user, 603).await;
    let r = m.get(&m.w.user, "/api/v1/dashboard").await;
    assert_eq!(r.header("x-cache"), Some("MISS"));
    let d = r.data();
    assert_eq!(d["requests"]["total"], 1);
    assert_eq!(d["requests"]["byStatus"]["pending"], 1);
    assert_eq!(d["requests"]["recent"][0]["title"], "The Matrix");

    // A notification made elsewhere reaches it through the event bus. (The bus also carried
    // the request's own event, which may drop the part once more: wait for a hit first.)
    crate::support::eventually(Duration::from_secs(5), "a cached dashboard", || async {
        let r = m.get(&m.w.user, "/api/v1/dashboard").await;
        (r.header("x-cache") == Some("HIT")).then_some(())
    })
    .await;
    let state = m.w.t.state.clone();
    let user = m.w.user_id.clone();
    let made = state
        .db()
        .write(move |tx| {
            medianest::notifications::create(tx, &user, "test", "Hi", "Hello", None, 1)
        })
        .await
        .unwrap();
    medianest::notifications::publish_created(m.w.t.state.events(), &m.w.user_id, &made);
    crate::support::eventually(Duration::from_secs(5), "dashboard dropped", || async {
        let r = m.get(&m.w.user, "/api/v1/dashboard").await;
        (r.data()["notifications"]["unread"] == 1).then_some(())
    })
    .await;
    // Others' dashboards stay as they were.
    let r = m.get(&m.other, "/api/v1/dashboard").await;
    assert_eq!(r.data()["requests"]["total"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_requests_for_different_titles_stop_at_the_quota() {
    let m = media_world_with(|c| c.quotas.requests_per_hour = 3).await;
    extra_movies(&m.w, 7000, 10);
    let mut calls = tokio::task::JoinSet::new();
    for tmdb_id in 7000..7010 {
        let (app, token) = (m.w.app.clone(), m.w.user.clone());
        calls.spawn(async move {
            call("POST", "/api/v1/media/requests")
                .bearer(&token)
                .json(json!({"mediaType": "movie", "tmdbId": tmdb_id}))
                .send(&app)
                .await
        });
    }
    let (mut created, mut over) = (0, 0);
    while let Some(r) = calls.join_next().await {
        let r = r.unwrap();
        match r.status {
            StatusCode::CREATED => created += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "QUOTA_EXCEEDED");
                over += 1;
            }
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    assert_eq!((created, over), (3, 7));
    assert_eq!(m.rows().await, 3);
    assert_eq!(m.w.overseerr.requests("POST /api/v1/request"), 3);
}

/// Titles Overseerr does not know are 404 for the caller and never count against the breaker,
/// however many a user asks for, to read or to request. Both upstreams answer such an id with
/// 500 `{"message":"Unable to retrieve movie."}` / `"Unable to retrieve series."`
/// (server/routes/movie.ts and server/routes/tv.ts in seerr-team/seerr 3.x and sct/overseerr
/// 1.33).
#[tokio::test]
async fn unknown_titles_are_not_found_and_leave_overseerr_up() {
    for flavor in [Flavor::Seerr, Flavor::Overseerr] {
        let m = media_world().await;
        let w = &m.w;
        w.overseerr.set_flavor(flavor);
        for n in 0..10 {
            let kind = if n % 2 == 0 { "movie" } else { "tv" };
            let r = m
                .get(&w.user, &format!("/api/v1/media/{kind}/{}", 900_000 + n))
                .await;
            assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
            let r = m
                .post(
                    &w.user,
                    "/api/v1/media/requests",
                    json!({"mediaType": kind, "tmdbId": 800_000 + n}),
                )
                .await;
            assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
            let b = w.breaker("overseerr").await;
            assert_eq!(b["state"], "closed", "{flavor:?} after {n}: {b}");
            assert_eq!(b["consecutiveFailures"], 0, "{flavor:?} after {n}: {b}");
        }
        assert_eq!(w.overseerr.requests("GET /api/v1/movie/{id}"), 10);
        assert_eq!(w.overseerr.requests("GET /api/v1/tv/{id}"), 10);
        assert_eq!(w.overseerr.requests("POST /api/v1/request"), 0);
        assert_eq!(m.rows().await, 0);
        w.cycle().await;
        assert_eq!(w.status("overseerr").await, "up");
        let r = m.get(&w.user, "/api/v1/media/movie/603").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
}

/// A MediaNest account named like an Overseerr account (here its admin, `owner`) is not that
/// account: matching is by plex.tv id, then email, never by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_shared_with_an_overseerr_admin_is_not_a_match() {
    let m = media_world().await;
    let id = insert_user(
        &m.w.t.state,
        "owner",
        Some("someone@elsewhere.example"),
        "user",
        None,
    )
    .await;
    let token = new_session(&m.w.t.state, &id).await.token;
    let r = m.request_movie(&token, 603).await;
    assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
    assert_eq!(m.rows().await, 0);
    assert_eq!(m.w.overseerr.requests("POST /api/v1/request"), 0);
    // By email (any case) the same person is found.
    m.w.overseerr
        .add_user(FakeOverseerrUser::plex(12, None, "zed"));
    let id = insert_user(&m.w.t.state, "alias", Some("Zed@Example.com"), "user", None).await;
    let token = new_session(&m.w.t.state, &id).await.token;
    let r = m.request_movie(&token, 603).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(m.w.overseerr.last_api_user().as_deref(), Some("12"));
}

/// A TV request for some seasons of a show is available once *its* seasons are, though the
/// show stays partially available: reconciliation reads `GET /request/{id}`'s `media.seasons[]`
/// (server/routes/request.ts, both upstreams) and then stops looking at the request. Seerr 3.x
/// marks the request COMPLETED (server/subscriber/MediaSubscriber.ts in seerr-team/seerr);
/// Overseerr 1.33 leaves it APPROVED (sct/overseerr has no COMPLETED).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tv_request_for_some_seasons_becomes_available_and_is_not_polled_again() {
    for flavor in [Flavor::Seerr, Flavor::Overseerr] {
        let m = media_world().await;
        m.w.overseerr.set_flavor(flavor);
        let r = m
            .post(
                &m.w.user,
                "/api/v1/media/requests",
                json!({"mediaType": "tv", "tmdbId": 1396, "seasons": [1, 2]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{flavor:?}: {}", r.text());
        let id = r.data()["id"].as_str().unwrap().to_owned();
        let oid = r.data()["overseerrId"].as_i64().unwrap();
        m.w.overseerr
            .set_request_status(oid, MediaRequestStatus::Approved);
        for season in [1, 2] {
            m.w.overseerr
                .set_season_status(1396, season, MediaStatus::Available);
        }
        assert_eq!(
            m.w.overseerr.media_status(MediaType::Tv, 1396),
            MediaStatus::PartiallyAvailable
        );
        let expected = match flavor {
            Flavor::Seerr => MediaRequestStatus::Completed,
            Flavor::Overseerr => MediaRequestStatus::Approved,
        };
        assert_eq!(m.w.overseerr.request(oid).unwrap().status, expected);
        let report = medianest::media::reconcile::run_once(&m.w.t.state)
            .await
            .unwrap();
        assert_eq!((report.checked, report.changed), (1, 1), "{flavor:?}");
        assert_eq!(m.status_of(&id).await, "available", "{flavor:?}");
        let report = medianest::media::reconcile::run_once(&m.w.t.state)
            .await
            .unwrap();
        assert_eq!(report.checked, 0, "{flavor:?}: no longer polled");
    }
}

/// A TV request for "all" seasons (or none named) asks the upstream for the show's numbered
/// seasons by name, read from `GET /tv/{id}`: `"all"` would take the specials too on Overseerr
/// 1.33 (server/entity/MediaRequest.ts in sct/overseerr 1.34.0) and not on Seerr 3.x (the same
/// file in seerr-team/seerr), so the explicit list means the same on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_seasons_are_sent_as_the_explicit_list_without_specials() {
    for flavor in [Flavor::Seerr, Flavor::Overseerr] {
        let m = media_world().await;
        m.w.overseerr.set_flavor(flavor);
        for (tmdb_id, body) in [
            (
                1396,
                json!({"mediaType": "tv", "tmdbId": 1396, "seasons": "all"}),
            ),
            (1399, json!({"mediaType": "tv", "tmdbId": 1399})),
        ] {
            let r = m.post(&m.w.user, "/api/v1/media/requests", body).await;
            assert_eq!(r.status, StatusCode::CREATED, "{flavor:?}: {}", r.text());
            let oid = r.data()["overseerrId"].as_i64().unwrap();
            let numbered: Vec<u32> =
                m.w.overseerr
                    .titles()
                    .iter()
                    .find(|t| t.tmdb_id == tmdb_id)
                    .unwrap()
                    .seasons
                    .iter()
                    .map(|(n, _)| *n)
                    .filter(|n| *n > 0)
                    .collect();
            assert_eq!(
                m.w.overseerr.request(oid).unwrap().seasons,
                numbered,
                "{flavor:?} {tmdb_id}: no season 0"
            );
            assert_eq!(
                r.data()["seasons"],
                json!(numbered),
                "{flavor:?}: the row keeps the list"
            );
        }
    }
}

/// A webhook can reach MediaNest before the upstream's answer to the create call does (Seerr
/// 3.x and Overseerr 1.33 notify from the request's subscribers, before the route answers:
/// server/subscriber/MediaRequestSubscriber.ts). The simulator sends it, and waits for
/// MediaNest's answer, before answering the create: the change is kept for the row that
/// appears and applied to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_beats_the_create_answer_is_applied_to_the_new_row() {
    for flavor in [Flavor::Seerr, Flavor::Overseerr] {
        let m = media_world().await;
        let server = RunningServer::start(&m.w.t.state, m.w.app.clone()).await;
        // The new path for Seerr, the old one that Overseerr setups keep.
        let path = match flavor {
            Flavor::Seerr => "seerr",
            Flavor::Overseerr => "overseerr",
        };
        let hook = format!("http://{}/api/v1/webhooks/{path}", server.addr);
        m.w.overseerr.set_flavor(flavor);
        m.w.overseerr.set_webhook_target(&hook, Some(HOOK_SECRET));
        m.w.overseerr
            .set_webhook_on_create(Some(NotificationType::MediaApproved));
        let r = m.request_movie(&m.w.user, 954).await;
        assert_eq!(r.status, StatusCode::CREATED, "{flavor:?}: {}", r.text());
        assert_eq!(r.data()["status"], "approved", "{flavor:?}");
        let id = r.data()["id"].as_str().unwrap().to_owned();
        assert_eq!(m.status_of(&id).await, "approved");
        let got = m.notifications_of(&m.w.user_id).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["metadata"]["origin"], "webhook");
        server.stop().await.unwrap();
    }
}

/// MEDIA_AVAILABLE is sent per request once its own seasons are in, while the show may stay
/// PARTIALLY_AVAILABLE (server/subscriber/MediaRequestSubscriber.ts, Seerr 3.x and Overseerr
/// 1.33): the request is available.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_available_on_a_partially_available_show_is_available() {
    let m = media_world().await;
    let server = RunningServer::start(&m.w.t.state, m.w.app.clone()).await;
    let hook = format!("http://{}/api/v1/webhooks/overseerr", server.addr);
    let r = m
        .post(
            &m.w.user,
            "/api/v1/media/requests",
            json!({"mediaType": "tv", "tmdbId": 1399, "seasons": [1]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.data()["id"].as_str().unwrap().to_owned();
    let oid = r.data()["overseerrId"].as_i64().unwrap();
    m.w.overseerr
        .set_request_status(oid, MediaRequestStatus::Approved);
    m.w.overseerr
        .set_season_status(1399, 1, MediaStatus::Available);
    let available = FakeNotification::about(NotificationType::MediaAvailable, oid);
    let body = m.w.overseerr.webhook_payload(&available);
    assert_eq!(body["media"]["status"], "PARTIALLY_AVAILABLE");
    let status =
        m.w.overseerr
            .fire_webhook(&hook, Some(HOOK_SECRET), &available)
            .await
            .unwrap();
    assert_eq!(status, 200);
    assert_eq!(m.status_of(&id).await, "available");
    server.stop().await.unwrap();
}

/// The webhook agent has no 4K variable (server/lib/notifications/agents/webhook.ts, both
/// upstreams): a notification without a request id is matched by title, and "4K" in its event
/// text picks the 4K request over the ordinary one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4k_event_without_a_request_id_finds_the_4k_row() {
    let m = media_world().await;
    let r = m.request_movie(&m.w.user, 603).await;
    let plain = r.data()["id"].as_str().unwrap().to_owned();
    let r = m
        .post(
            &m.w.admin,
            "/api/v1/media/requests",
            json!({"mediaType": "movie", "tmdbId": 603, "is4k": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let four_k = r.data()["id"].as_str().unwrap().to_owned();
    let r = call("POST", "/api/v1/webhooks/overseerr")
        .header("authorization", HOOK_SECRET)
        .json(json!({
            "notification_type": "MEDIA_AVAILABLE",
            "event": "4K Movie Request Now Available",
            "media": {"media_type": "movie", "tmdbId": "603", "status": "PENDING",
                      "status4k": "AVAILABLE"},
            "request": {"request_id": ""},
        }))
        .send(&m.w.app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.data()["requestId"], four_k.as_str());
    assert_eq!(m.status_of(&four_k).await, "available");
    assert_eq!(m.status_of(&plain).await, "pending");
}

/// Seerr 3.x answers a request for a blocklisted title with 403 "This media is blocklisted."
/// (server/entity/MediaRequest.ts and server/routes/request.ts in seerr-team/seerr): the user
/// gets a 403 that says so, nothing is stored, and the breaker does not count it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocklisted_title_is_a_clear_403() {
    let m = media_world().await;
    m.w.overseerr.set_flavor(Flavor::Seerr);
    m.w.overseerr
        .set_media_status(MediaType::Movie, 604, MediaStatus::Blocklisted);
    let r = m.request_movie(&m.w.user, 604).await;
    let e = assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
    assert_eq!(e["details"]["blocklisted"], true, "{e}");
    assert!(
        e["details"]["reason"]
            .as_str()
            .unwrap()
            .contains("blocklist"),
        "{e}"
    );
    assert_eq!(
        e["details"]["upstreamMessage"],
        "This media is blocklisted."
    );
    assert_eq!(m.rows().await, 0);
    let b = m.w.breaker("overseerr").await;
    assert_eq!(b["consecutiveFailures"], 0, "{b}");
}

/// The service card names what answers: Seerr 3.x or Overseerr 1.33, told apart by
/// `/api/v1/settings/public` (server/lib/settings/index.ts in seerr-team/seerr against
/// server/lib/settings.ts in sct/overseerr 1.34.0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_card_says_seerr_or_overseerr() {
    for (flavor, name, version) in [
        (Flavor::Seerr, "Seerr", "3.1.0"),
        (Flavor::Overseerr, "Overseerr", "1.33.2"),
    ] {
        let m = media_world().await;
        m.w.overseerr.set_flavor(flavor);
        m.w.cycle().await;
        let card = m.w.service("overseerr").await;
        assert_eq!(card["displayName"], name, "{card}");
        assert_eq!(card["message"], format!("{name} {version}"), "{card}");
        assert_eq!(card["status"], "up");
        m.w.cycle().await;
        assert_eq!(
            m.w.overseerr.requests("GET /api/v1/settings/public"),
            1,
            "asked once per client"
        );
    }
}

/// A Jellyfin-backed Seerr 3.x has users without a Plex id, with a `jellyfinUsername`
/// (server/entity/User.ts in seerr-team/seerr; Overseerr 1.33 has no such users): they are
/// found by email, then by that name, which never finds the server's admin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jellyfin_users_of_seerr_are_matched_by_email_then_jellyfin_name() {
    let m = media_world().await;
    m.w.overseerr.set_flavor(Flavor::Seerr);
    m.w.overseerr.add_user(FakeOverseerrUser::jellyfin(
        20,
        "jo",
        Some("jo@home.example"),
    ));
    m.w.overseerr
        .add_user(FakeOverseerrUser::jellyfin(21, "kim", None));
    let mut boss = FakeOverseerrUser::jellyfin(22, "boss", None);
    boss.permissions = medianest::sim::overseerr::permission::ADMIN;
    m.w.overseerr.add_user(boss);
    for (name, email, tmdb_id, expected) in [
        ("joanna", "jo@home.example", 603, Some("20")),
        ("kim", "kim@elsewhere.example", 604, Some("21")),
        ("boss", "boss@elsewhere.example", 954, None),
    ] {
        let id = insert_user(&m.w.t.state, name, Some(email), "user", None).await;
        let token = new_session(&m.w.t.state, &id).await.token;
        let r = m.request_movie(&token, tmdb_id).await;
        match expected {
            Some(user) => {
                assert_eq!(r.status, StatusCode::CREATED, "{name}: {}", r.text());
                assert_eq!(m.w.overseerr.last_api_user().as_deref(), Some(user));
            }
            None => {
                assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
            }
        }
    }
}
