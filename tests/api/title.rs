//! The title pages' details (`GET /api/v1/media/{movie|tv}/{tmdbId}`) against the simulated
//! Seerr over real HTTP: the facts a page shows, the caller's request mark and follow state,
//! who asked for it (admins only; requests made here and on Seerr itself), "Watch in Plex",
//! and the input checks.

use axum::http::StatusCode;
use medianest::integrations::overseerr::{MediaStatus, MediaType};
use medianest::sim::overseerr::FakeOverseerrUser;
use serde_json::{Value, json};

use crate::media::{Media, media_world, media_world_with};
use crate::support::assert_error;
use crate::support::services::refused_url;

async fn details(m: &Media, token: &str, path: &str) -> Value {
    let r = m.get(token, path).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
    r.data()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_has_its_facts_seasons_request_mark_and_requesters_for_admins_only() {
    let m = media_world().await;
    let w = &m.w;
    // Before anyone asked: nothing requested, nobody to list, nothing to watch.
    let d = details(&m, &w.user, "/api/v1/media/tv/1399").await;
    assert_eq!(d["title"], "Game of Thrones");
    assert_eq!(d["year"], 2011);
    assert_eq!(d["genres"], json!(["Drama"]));
    assert_eq!(d["runtime"], 55, "an episode's minutes");
    assert!(d["posterPath"].as_str().unwrap().starts_with('/'), "{d}");
    assert!(d["backdropPath"].as_str().unwrap().starts_with('/'), "{d}");
    assert_eq!(d["seasons"].as_array().unwrap().len(), 9);
    assert_eq!(d["requested"], false);
    assert_eq!(d["request"], Value::Null);
    assert_eq!(d["plexUrl"], Value::Null);
    assert!(d.get("requesters").is_none(), "{d}");
    let d = details(&m, &w.admin, "/api/v1/media/tv/1399").await;
    assert_eq!(d["requesters"], json!([]));

    // The user asks for two seasons here; someone asks for another on Seerr itself.
    let r = m
        .post(
            &w.user,
            "/api/v1/media/requests",
            json!({"mediaType": "tv", "tmdbId": 1399, "seasons": [1, 2]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.data()["id"].as_str().unwrap().to_owned();
    let mut carol = FakeOverseerrUser::plex(12, None, "carol");
    carol.display_name = "Carol on Seerr".into();
    w.overseerr.add_user(carol);
    let on_seerr = w
        .overseerr
        .request_on_seerr(12, MediaType::Tv, 1396, Some(vec![1]))
        .expect("Seerr took it");

    // The requester sees it as theirs; someone else sees it to follow, without the list.
    let mine = details(&m, &w.user, "/api/v1/media/tv/1399").await;
    assert_eq!(mine["request"]["id"], id.as_str());
    assert_eq!(mine["request"]["mine"], true);
    assert_eq!(mine["request"]["status"], "pending");
    assert!(mine.get("requesters").is_none(), "{mine}");
    let theirs = details(&m, &m.other, "/api/v1/media/tv/1399").await;
    assert_eq!(theirs["requested"], true);
    assert_eq!(theirs["request"]["mine"], false);
    assert_eq!(theirs["request"]["following"], false);
    assert!(theirs.get("requesters").is_none(), "{theirs}");
    let r = m
        .post(
            &m.other,
            &format!("/api/v1/media/requests/{id}/follow"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let theirs = details(&m, &m.other, "/api/v1/media/tv/1399").await;
    assert_eq!(theirs["request"]["following"], true);
    let r = m
        .delete(&m.other, &format!("/api/v1/media/requests/{id}/follow"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let theirs = details(&m, &m.other, "/api/v1/media/tv/1399").await;
    assert_eq!(theirs["request"]["following"], false);

    // The admin sees who asked: the request made here, with its seasons and its user.
    let d = details(&m, &w.admin, "/api/v1/media/tv/1399").await;
    let askers = d["requesters"].as_array().unwrap();
    assert_eq!(
        askers.len(),
        1,
        "the Seerr copy of our own request is not listed twice: {d}"
    );
    assert_eq!(askers[0]["source"], "medianest");
    assert_eq!(askers[0]["name"], "user");
    assert_eq!(askers[0]["userId"], w.user_id.as_str());
    assert_eq!(askers[0]["requestId"], id.as_str());
    assert_eq!(askers[0]["seasons"], json!([1, 2]));
    assert_eq!(askers[0]["status"], "pending");
    assert!(askers[0]["createdAt"].is_string());
    // And one made on Seerr only, named by its Seerr account.
    let d = details(&m, &w.admin, "/api/v1/media/tv/1396").await;
    let askers = d["requesters"].as_array().unwrap();
    assert_eq!(askers.len(), 1, "{d}");
    assert_eq!(askers[0]["source"], "seerr");
    assert_eq!(askers[0]["name"], "Carol on Seerr");
    assert_eq!(askers[0]["overseerrId"], on_seerr);
    assert_eq!(askers[0]["requestId"], Value::Null);
    assert_eq!(askers[0]["seasons"], json!([1]));
    // Nothing was asked for here, so a user has nothing to follow.
    let d = details(&m, &w.user, "/api/v1/media/tv/1396").await;
    assert_eq!(d["request"], Value::Null);
    assert!(d.get("requesters").is_none(), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_available_title_links_to_the_item_in_the_plex_web_app() {
    let m = media_world().await;
    let w = &m.w;
    // Requested and on its way: nothing to watch yet.
    w.overseerr
        .set_media_status(MediaType::Movie, 603, MediaStatus::Processing);
    let d = details(&m, &w.user, "/api/v1/media/movie/603").await;
    assert_eq!(d["availability"], "processing");
    assert_eq!(d["plexUrl"], Value::Null);

    // Available, with the Plex item Seerr's scan matched: the link names MediaNest's own Plex
    // server and that item.
    w.overseerr.set_media_available(MediaType::Movie, 604);
    w.overseerr.set_rating_key(MediaType::Movie, 604, "5150");
    let d = details(&m, &w.user, "/api/v1/media/movie/604").await;
    assert_eq!(d["availability"], "available");
    let app_url = w.t.state.config().plex.app_url.clone();
    assert_eq!(
        d["plexUrl"],
        format!(
            "{app_url}/desktop#!/server/{}/details?key=%2Flibrary%2Fmetadata%2F5150",
            w.plex.machine_identifier()
        )
    );
    // A partially available show links too.
    w.overseerr
        .set_season_status(1396, 1, MediaStatus::Available);
    let d = details(&m, &w.user, "/api/v1/media/tv/1396").await;
    assert_eq!(d["availability"], "partially_available");
    let url = d["plexUrl"].as_str().unwrap();
    let prefix = format!(
        "{app_url}/desktop#!/server/{}/details?key=%2Flibrary%2Fmetadata%2F",
        w.plex.machine_identifier()
    );
    let key = url.strip_prefix(&prefix).unwrap_or_else(|| panic!("{url}"));
    assert!(
        !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()),
        "{url}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_plex_server_the_link_is_the_one_seerr_built() {
    let m = media_world_with(|c| c.services.plex.url = Some(refused_url())).await;
    let w = &m.w;
    w.overseerr.set_plex_server(
        "0a1b2c3d4e5f",
        Some("https://plex.example.net/web/index.html"),
    );
    w.overseerr.set_media_available(MediaType::Movie, 603);
    w.overseerr.set_rating_key(MediaType::Movie, 603, "777");
    let d = details(&m, &w.user, "/api/v1/media/movie/603").await;
    assert_eq!(
        d["plexUrl"],
        "https://plex.example.net/web/index.html#!/server/0a1b2c3d4e5f/details?key=%2Flibrary%2Fmetadata%2F777"
    );
    // A rating key that is not a plain number never goes into a link.
    w.overseerr.set_media_available(MediaType::Movie, 954);
    w.overseerr
        .set_rating_key(MediaType::Movie, 954, "1/../../evil");
    let d = details(&m, &w.user, "/api/v1/media/movie/954").await;
    assert_eq!(d["availability"], "available");
    assert_eq!(d["plexUrl"], Value::Null, "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_titles_are_404_and_bad_ids_400() {
    let m = media_world().await;
    let w = &m.w;
    for path in ["/api/v1/media/movie/999999", "/api/v1/media/tv/999999"] {
        assert_error(
            &m.get(&w.user, path).await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        );
    }
    for bad in ["abc", "0", "-5", "1.5", "99999999999"] {
        for kind in ["movie", "tv"] {
            let r = m.get(&w.user, &format!("/api/v1/media/{kind}/{bad}")).await;
            let e = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
            assert!(e["details"].to_string().contains("tmdbId"), "{e}");
        }
    }
    assert_eq!(
        w.overseerr.requests("GET /api/v1/movie/{id}"),
        1,
        "bad ids never reach Seerr"
    );
}
