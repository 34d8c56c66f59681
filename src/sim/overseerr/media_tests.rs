//! The fake's own answers: auth shapes, the search encoding check, the discover rows' parameters,
//! body validation and webhook delivery. The client's use of every route is tested in
//! `integrations::overseerr::api_tests`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::*;
use crate::integrations::overseerr::{
    MediaStatus, MediaType, NotificationType, RequestState, WebhookEvent,
};
use crate::integrations::upstream::Request as UpRequest;

async fn fetch(request: UpRequest) -> (u16, Value) {
    let (status, text) = crate::sim::harness::testing::fetch(request).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn get(fake: &FakeOverseerr, path_and_query: &str) -> UpRequest {
    UpRequest::get(format!("{}/api/v1{path_and_query}", fake.url()))
        .header("X-Api-Key", fake.api_key())
}

fn post_json(fake: &FakeOverseerr, path: &str, body: Value) -> UpRequest {
    UpRequest::post(format!("{}/api/v1{path}", fake.url()))
        .header("X-Api-Key", fake.api_key())
        .json(&body)
        .unwrap()
}

#[tokio::test]
async fn search_refuses_what_is_not_strictly_encoded() {
    let fake = FakeOverseerr::start().await.unwrap();
    for raw in [
        "the+matrix",
        "don't",
        "%28x)",
        "mission:impossible",
        "a!",
        "a*",
    ] {
        let (status, body) = fetch(get(&fake, &format!("/search?query={raw}"))).await;
        assert_eq!(status, 400, "{raw}");
        assert_eq!(
            body["message"],
            "Parameter 'query' must be url encoded. Its value may not contain reserved characters."
        );
        assert_eq!(body["errors"][0]["path"], ".query.query");
    }
    assert_eq!(fake.last_search_query(), None);
    let (status, body) = fetch(get(&fake, "/search?query=the%20matrix&page=1")).await;
    assert_eq!(status, 200);
    assert_eq!(body["results"][0]["title"], "The Matrix");
    assert_eq!(body["results"][0]["mediaType"], "movie");
    assert!(body["results"][0].get("mediaInfo").is_none());
    let (status, _) = fetch(get(&fake, "/search?page=1")).await;
    assert_eq!(status, 400, "query is required");
    let (status, _) = fetch(get(&fake, "/search?query=x&page=two")).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn auth_answers_in_overseerr_shapes() {
    let fake = FakeOverseerr::start().await.unwrap();
    let url = format!("{}/api/v1/movie/603", fake.url());
    let (status, body) = fetch(UpRequest::get(&url)).await;
    assert_eq!(status, 401);
    assert_eq!(body["message"], "cookie 'connect.sid' required");
    let (status, body) = fetch(UpRequest::get(&url).header("X-Api-Key", "wrong")).await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"status": 403, "error": "You do not have permission to access this endpoint"})
    );
    let (status, _) = fetch(get(&fake, "/movie/603").header("X-API-User", "77")).await;
    assert_eq!(status, 403, "an unknown X-API-User");
    let (status, _) = fetch(get(&fake, "/movie/603").header("X-API-User", "1")).await;
    assert_eq!(status, 200);
    let (status, _) = fetch(UpRequest::get(format!("{}/api/v1/status", fake.url()))).await;
    assert_eq!(status, 200, "status stays public");
    assert_eq!(fake.requests("GET /api/v1/movie/{id}"), 4);
}

#[tokio::test]
async fn request_bodies_are_validated() {
    let fake = FakeOverseerr::start().await.unwrap();
    for body in [
        json!({"mediaId": 603}),
        json!({"mediaType": "music", "mediaId": 603}),
        json!({"mediaType": "movie", "mediaId": "603"}),
        json!({"mediaType": "tv", "mediaId": 1399, "seasons": "some"}),
        json!({"mediaType": "tv", "mediaId": 1399, "seasons": [-1]}),
        json!([1]),
    ] {
        let (status, reply) = fetch(post_json(&fake, "/request", body.clone())).await;
        assert_eq!(status, 400, "{body}");
        assert!(reply["message"].is_string());
    }
    let (status, reply) = fetch(post_json(
        &fake,
        "/request",
        json!({"mediaType": "tv", "mediaId": 1399, "seasons": [0, 1], "is4k": false}),
    ))
    .await;
    assert_eq!(status, 201);
    assert_eq!(reply["type"], "tv");
    assert_eq!(
        reply["seasons"][0]["seasonNumber"], 0,
        "specials when asked"
    );
    assert_eq!(reply["media"]["tmdbId"], 1399);
    assert_eq!(reply["media"]["tvdbId"], 121361);
    assert_eq!(reply["requestedBy"]["id"], 1);
    let (status, _) = fetch(get(&fake, "/request?filter=bogus")).await;
    assert_eq!(status, 400);
    let (status, _) = fetch(get(&fake, "/request?sort=bogus")).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn users_see_only_their_own_requests_and_delete_only_pending_ones() {
    let fake = FakeOverseerr::start().await.unwrap();
    fake.add_user(FakeOverseerrUser::plex(2, None, "alice"));
    fake.add_user(FakeOverseerrUser::plex(3, None, "bob"));
    let as_user = |r: UpRequest, id: &str| r.header("X-API-User", id);
    let body = json!({"mediaType": "movie", "mediaId": 603});
    let (_, mine) = fetch(as_user(post_json(&fake, "/request", body), "2")).await;
    let id = mine["id"].as_i64().unwrap();
    let (status, list) = fetch(as_user(get(&fake, "/request"), "3")).await;
    assert_eq!(
        (status, list["pageInfo"]["results"].clone()),
        (200, json!(0))
    );
    let (status, _) = fetch(as_user(get(&fake, &format!("/request/{id}")), "3")).await;
    assert_eq!(status, 403);
    let (status, _) = fetch(as_user(get(&fake, "/request?requestedBy=2"), "3")).await;
    assert_eq!(status, 403);
    let (status, _) = fetch(as_user(
        post_json(&fake, &format!("/request/{id}/approve"), json!({})),
        "3",
    ))
    .await;
    assert_eq!(status, 403, "approving needs MANAGE_REQUESTS");
    let delete = |who: &str| {
        UpRequest::new(
            crate::integrations::upstream::Method::Delete,
            format!("{}/api/v1/request/{id}", fake.url()),
        )
        .header("X-Api-Key", fake.api_key())
        .header("X-API-User", who.to_owned())
    };
    assert_eq!(fetch(delete("3")).await.0, 401, "not bob's");
    assert_eq!(fetch(delete("2")).await.0, 204);
    assert!(fake.request(id).is_none());
    assert_eq!(
        fake.media_status(MediaType::Movie, 603),
        MediaStatus::Unknown
    );
}

/// A stand-in for MediaNest's webhook endpoint that keeps what it receives.
async fn receiver() -> (String, Arc<Mutex<Vec<(Option<String>, Bytes)>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    let app = axum::Router::new().route(
        "/api/v1/webhooks/overseerr",
        post(move |headers: HeaderMap, body: Bytes| {
            let store = store.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                store.lock().unwrap().push((auth, body));
                "ok"
            }
        }),
    );
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let url = format!(
        "http://{}/api/v1/webhooks/overseerr",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

#[tokio::test]
async fn webhooks_reach_the_receiver_in_both_spellings() {
    let fake = FakeOverseerr::start().await.unwrap();
    fake.add_user(FakeOverseerrUser::plex(2, None, "alice"));
    let (url, received) = receiver().await;
    let (_, request) = fetch(
        post_json(
            &fake,
            "/request",
            json!({"mediaType": "tv", "mediaId": 1399, "seasons": [1, 2]}),
        )
        .header("X-API-User", "2"),
    )
    .await;
    let id = request["id"].as_i64().unwrap();

    let pending = FakeNotification::about(NotificationType::MediaPending, id);
    let status = fake
        .fire_webhook(&url, Some("Bearer s3cret"), &pending)
        .await
        .unwrap();
    assert_eq!(status, 200);
    fake.set_media_available(MediaType::Tv, 1399);
    let available = FakeNotification::about(NotificationType::MediaAvailable, id)
        .in_template(WebhookTemplate::CamelCase);
    fake.fire_webhook(&url, None, &available).await.unwrap();
    fake.fire_webhook(&url, Some("x"), &FakeNotification::test())
        .await
        .unwrap();

    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].0.as_deref(), Some("Bearer s3cret"), "sent verbatim");
    assert_eq!(got[1].0, None, "no header when none is configured");

    let raw: Value = serde_json::from_slice(&got[0].1).unwrap();
    assert_eq!(
        raw["request"]["request_id"],
        json!(id.to_string()),
        "strings"
    );
    assert_eq!(raw["media"]["tmdbId"], "1399");
    assert_eq!(raw["event"], "New Series Request");
    assert_eq!(raw["subject"], "Game of Thrones (2011)");
    let first = WebhookEvent::parse(&got[0].1).unwrap();
    assert_eq!(first.notification_type, NotificationType::MediaPending);
    assert_eq!(first.request_id, Some(id));
    assert_eq!(
        (first.media_type, first.tmdb_id),
        (Some(MediaType::Tv), Some(1399))
    );
    assert_eq!(first.tvdb_id, Some(121361));
    assert_eq!(first.media_status, Some(MediaStatus::Pending));
    assert_eq!(first.requested_seasons, [1, 2]);
    let by = first.requested_by.unwrap();
    assert_eq!(
        (by.email.as_deref(), by.username.as_deref()),
        (Some("alice@example.com"), Some("alice"))
    );

    let raw: Value = serde_json::from_slice(&got[1].1).unwrap();
    assert_eq!(raw["request"]["requestId"], json!(id), "numbers");
    let second = WebhookEvent::parse(&got[1].1).unwrap();
    assert_eq!(
        second.notification_type.request_state(),
        Some(RequestState::Available)
    );
    assert_eq!(second.request_id, Some(id));
    assert_eq!(second.media_status, Some(MediaStatus::Available));
    assert_eq!(
        second.event.as_deref(),
        Some("Series Request Now Available")
    );

    let test = WebhookEvent::parse(&got[2].1).unwrap();
    assert_eq!(test.notification_type, NotificationType::TestNotification);
    assert_eq!((test.request_id, test.tmdb_id), (None, None));
}

#[tokio::test]
async fn firing_at_nothing_is_an_error() {
    let fake = FakeOverseerr::start().await.unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    drop(listener);
    assert!(
        fake.fire_webhook(&url, None, &FakeNotification::test())
            .await
            .is_err()
    );
}

/// Public settings: Seerr 3.x (server/lib/settings/index.ts in seerr-team/seerr) has
/// `mediaServerType` and friends; Overseerr 1.33 (server/lib/settings.ts in sct/overseerr
/// 1.34.0) has `region` instead. `Flavor::detect` reads either; `/status` looks the same.
#[tokio::test]
async fn public_settings_and_status_tell_seerr_3_from_overseerr_1_33() {
    for flavor in [Flavor::Seerr, Flavor::Overseerr] {
        let fake = FakeOverseerr::start_as(flavor).await.unwrap();
        let public = UpRequest::get(format!("{}/api/v1/settings/public", fake.url()));
        let (status, settings) = fetch(public).await;
        assert_eq!(status, 200, "public, no key");
        let (_, info) = fetch(UpRequest::get(format!("{}/api/v1/status", fake.url()))).await;
        assert_eq!(
            settings.get("mediaServerType").is_some(),
            flavor == Flavor::Seerr
        );
        assert_eq!(
            settings.get("region").is_some(),
            flavor == Flavor::Overseerr
        );
        assert_eq!(Flavor::detect(&info, Some(&settings)), flavor);
        assert_eq!(Flavor::detect(&info, None), flavor, "by version: {info}");
    }
}

/// Both run express-openapi-validator without `allowUnknownQueryParameters` (server/index.ts),
/// against overseerr-api.yml (sct/overseerr 1.34.0) or seerr-api.yml (seerr-team/seerr): the
/// request list's `mediaType`, `sortDirection` and `filter=completed` are Seerr 3.x only.
#[tokio::test]
async fn the_validator_refuses_seerr_only_parameters_on_overseerr_1_33() {
    for (flavor, ok) in [(Flavor::Seerr, 200), (Flavor::Overseerr, 400)] {
        let fake = FakeOverseerr::start_as(flavor).await.unwrap();
        let (status, body) = fetch(get(&fake, "/request?take=5&mediaType=movie")).await;
        assert_eq!(status, ok, "{flavor:?}: {body}");
        if ok == 400 {
            assert_eq!(body["message"], "Unknown query parameter 'mediaType'");
        }
        let (status, _) = fetch(get(&fake, "/request?sortDirection=asc")).await;
        assert_eq!(status, ok, "{flavor:?}");
        let (status, _) = fetch(get(&fake, "/request?filter=completed")).await;
        assert_eq!(status, ok, "{flavor:?}");
        let (status, _) = fetch(get(&fake, "/request?filter=available&nope=1")).await;
        assert_eq!(status, 400, "{flavor:?}: unknown everywhere");
    }
}

/// Seerr 3.x refuses a blocklisted title with 403 "This media is blocklisted."
/// (server/entity/MediaRequest.ts, server/routes/request.ts in seerr-team/seerr) and marks an
/// approved request COMPLETED once its own seasons are available
/// (server/subscriber/MediaSubscriber.ts); Overseerr 1.33 has neither.
#[tokio::test]
async fn seerr_3_blocklists_and_completes_and_overseerr_1_33_does_not() {
    let fake = FakeOverseerr::start_as(Flavor::Seerr).await.unwrap();
    fake.set_media_status(MediaType::Movie, 604, MediaStatus::Blocklisted);
    let (status, body) = fetch(post_json(
        &fake,
        "/request",
        json!({"mediaType": "movie", "mediaId": 604}),
    ))
    .await;
    assert_eq!(
        (status, body),
        (403, json!({"message": "This media is blocklisted."}))
    );
    for flavor in [Flavor::Seerr, Flavor::Overseerr] {
        let fake = FakeOverseerr::start_as(flavor).await.unwrap();
        let (status, body) = fetch(post_json(
            &fake,
            "/request",
            json!({"mediaType": "tv", "mediaId": 1396, "seasons": [1, 2]}),
        ))
        .await;
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_i64().unwrap();
        fake.set_season_status(1396, 1, MediaStatus::Available);
        fake.set_season_status(1396, 2, MediaStatus::Available);
        let (_, one) = fetch(get(&fake, &format!("/request/{id}"))).await;
        let want = match flavor {
            Flavor::Seerr => 5,
            Flavor::Overseerr => 2,
        };
        assert_eq!(one["status"], want, "{flavor:?}");
        assert_eq!(one["media"]["status"], 4, "the show stays partial");
        assert_eq!(one["media"]["seasons"].as_array().unwrap().len(), 2);
        let (_, list) = fetch(get(&fake, "/request")).await;
        assert!(
            list["results"][0]["media"].get("seasons").is_none(),
            "the list has no media.seasons"
        );
    }
}

/// `"all"`: Overseerr 1.33 takes the specials too (server/entity/MediaRequest.ts in
/// sct/overseerr 1.34.0), Seerr 3.x does not (the same file in seerr-team/seerr).
#[tokio::test]
async fn all_seasons_take_the_specials_on_overseerr_1_33_only() {
    for (flavor, first) in [(Flavor::Seerr, 1), (Flavor::Overseerr, 0)] {
        let fake = FakeOverseerr::start_as(flavor).await.unwrap();
        let (status, body) = fetch(post_json(
            &fake,
            "/request",
            json!({"mediaType": "tv", "mediaId": 1396, "seasons": "all"}),
        ))
        .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["seasons"][0]["seasonNumber"], first, "{flavor:?}");
    }
}

#[tokio::test]
async fn discover_rows_want_the_key_and_only_listed_parameters() {
    let fake = FakeOverseerr::start().await.unwrap();
    let bare = UpRequest::get(format!("{}/api/v1/discover/trending", fake.url()));
    let (status, body) = fetch(bare).await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["path"], ".headers.cookie");

    // Seerr's spec lists only `page` and `language` on trending and upcoming, the filters too
    // on the popular rows.
    let (status, body) = fetch(get(&fake, "/discover/movies/upcoming?sortBy=x")).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["path"], ".query.sortBy");
    let (status, _) = fetch(get(&fake, "/discover/movies?sortBy=popularity.desc")).await;
    assert_eq!(status, 200);
    let (status, body) = fetch(get(&fake, "/discover/tv?page=two")).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["path"], ".query.page");

    // Upcoming: released after the fake's today only; trending: people too, as TMDB mixes them.
    let (status, body) = fetch(get(&fake, "/discover/tv/upcoming?page=1&language=en")).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Harbour Lights"]);
    let (_, body) = fetch(get(&fake, "/discover/trending")).await;
    let kinds: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["mediaType"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"person"), "{kinds:?}");
    assert_eq!(body["totalResults"], kinds.len());
}
