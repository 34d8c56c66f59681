//! Discover rows (`GET /api/v1/media/discover/{row}`) against the simulated Seerr over real
//! HTTP: each row's cards and paging, the same badges search shows, input checks, the cache,
//! and Seerr failing.

use axum::http::StatusCode;
use medianest::integrations::overseerr::{MediaStatus, MediaType};
use medianest::media::SEARCH_TTL;
use medianest::sim::overseerr::Fault;
use serde_json::Value;

use crate::media::{Media, media_world};
use crate::support::assert_error;
use crate::support::services::refused_url;

const ROWS: [&str; 5] = [
    "trending",
    "popular-movies",
    "popular-tv",
    "upcoming-movies",
    "upcoming-tv",
];

/// The cards of one page of a row, after checking the answer is a 200 with paging meta.
async fn row_cards(m: &Media, token: &str, path: &str) -> (Vec<Value>, Value) {
    let r = m.get(token, path).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
    let cards = r.data().as_array().unwrap().clone();
    (cards, r.json()["meta"].clone())
}

fn ids(cards: &[Value]) -> Vec<i64> {
    cards
        .iter()
        .map(|c| c["tmdbId"].as_i64().unwrap())
        .collect()
}

fn card(cards: &[Value], tmdb_id: i64) -> Value {
    cards
        .iter()
        .find(|c| c["tmdbId"] == tmdb_id)
        .cloned()
        .unwrap_or_else(|| panic!("no card {tmdb_id} in {cards:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_row_answers_cards_with_posters_of_its_kind() {
    let m = media_world().await;
    for row in ROWS {
        let (cards, meta) =
            row_cards(&m, &m.w.user, &format!("/api/v1/media/discover/{row}")).await;
        assert!(!cards.is_empty(), "{row}");
        assert_eq!(meta["row"], row);
        assert_eq!(meta["page"], 1, "{row}");
        assert!(meta["totalPages"].as_i64().unwrap() >= 1, "{row}");
        for c in &cards {
            assert!(c["title"].is_string(), "{row}: {c}");
            assert!(c["year"].is_i64(), "{row}: {c}");
            assert!(
                c["posterPath"].as_str().unwrap().starts_with('/'),
                "{row}: {c}"
            );
            assert!(
                c["backdropPath"].as_str().unwrap().starts_with('/'),
                "{row}: {c}"
            );
            assert_eq!(c["availability"], "unknown", "{row}: {c}");
            assert_eq!(c["requested"], false, "{row}: {c}");
        }
        let kinds: Vec<&str> = cards
            .iter()
            .map(|c| c["mediaType"].as_str().unwrap())
            .collect();
        let got = ids(&cards);
        match row {
            "trending" => {
                assert!(
                    kinds.contains(&"movie") && kinds.contains(&"tv"),
                    "{kinds:?}"
                );
                // Seerr's trending holds people too; they are no cards.
                assert!(!got.contains(&6384), "{got:?}");
            }
            "popular-movies" => {
                assert!(kinds.iter().all(|k| *k == "movie"), "{kinds:?}");
                assert!(got.contains(&603) && got.contains(&687_163), "{got:?}");
            }
            "popular-tv" => {
                assert!(kinds.iter().all(|k| *k == "tv"), "{kinds:?}");
                assert!(got.contains(&1399), "{got:?}");
            }
            "upcoming-movies" => assert_eq!(got, [687_163], "released films are not upcoming"),
            "upcoming-tv" => assert_eq!(got, [250_001]),
            _ => unreachable!(),
        }
    }
    let (trending, _) = row_cards(&m, &m.w.user, "/api/v1/media/discover/trending").await;
    let matrix = card(&trending, 603);
    assert_eq!(matrix["title"], "The Matrix");
    assert_eq!(matrix["year"], 1999);
    assert_eq!(matrix["posterPath"], "/f89U3ADr1oiB1s9GkdPOEpXUk5H.jpg");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_page_through_seerr_pages() {
    let m = media_world().await;
    m.w.overseerr.set_search_page_size(2);
    let movies =
        m.w.overseerr
            .titles()
            .iter()
            .filter(|t| t.media_type == MediaType::Movie)
            .count() as i64;
    let pages = (movies + 1) / 2;
    let mut seen = Vec::new();
    for page in 1..=pages {
        let path = format!("/api/v1/media/discover/popular-movies?page={page}");
        let (cards, meta) = row_cards(&m, &m.w.user, &path).await;
        assert_eq!(meta["page"], page);
        assert_eq!(meta["totalPages"], pages);
        assert_eq!(meta["totalResults"], movies);
        assert!(!cards.is_empty() && cards.len() <= 2, "{cards:?}");
        seen.extend(ids(&cards));
    }
    let mut unique = seen.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len() as i64, movies, "every movie once: {seen:?}");
    // Past the last page: an empty page, not an error.
    let past = pages + 1;
    let path = format!("/api/v1/media/discover/popular-movies?page={past}");
    let (cards, meta) = row_cards(&m, &m.w.user, &path).await;
    assert!(cards.is_empty());
    assert_eq!(meta["page"], past);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cards_carry_the_badges_search_shows() {
    let m = media_world().await;
    let r = m.request_movie(&m.w.user, 603).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let request_id = r.data()["id"].as_str().unwrap().to_owned();
    m.w.overseerr.set_media_available(MediaType::Movie, 27205);
    m.w.overseerr
        .set_media_status(MediaType::Tv, 1399, MediaStatus::PartiallyAvailable);

    let (cards, _) = row_cards(&m, &m.other, "/api/v1/media/discover/popular-movies").await;
    let requested = card(&cards, 603);
    assert_eq!(requested["requested"], true, "{requested}");
    assert_eq!(requested["request"]["id"], request_id.as_str());
    assert_eq!(requested["request"]["status"], "pending");
    assert_eq!(requested["request"]["mine"], false);
    let available = card(&cards, 27205);
    assert_eq!(available["availability"], "available", "{available}");
    assert_eq!(available["requested"], false);
    assert_eq!(card(&cards, 954)["availability"], "unknown");

    let (shows, _) = row_cards(&m, &m.other, "/api/v1/media/discover/popular-tv").await;
    assert_eq!(card(&shows, 1399)["availability"], "partially_available");

    // The same fields, the same values as a search result for the same title.
    let (found, _) = row_cards(&m, &m.other, "/api/v1/media/search?query=matrix").await;
    let searched = card(&found, 603);
    for field in [
        "availability",
        "requested",
        "request",
        "posterPath",
        "title",
        "year",
    ] {
        assert_eq!(searched[field], requested[field], "{field}");
    }

    // The caller's own request says so; a decision shows at once (the badge is not cached).
    let (cards, _) = row_cards(&m, &m.w.user, "/api/v1/media/discover/popular-movies").await;
    assert_eq!(card(&cards, 603)["request"]["mine"], true);
    let r = m
        .post(
            &m.w.admin,
            &format!("/api/v1/admin/requests/{request_id}/approve"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let (cards, _) = row_cards(&m, &m.w.user, "/api/v1/media/discover/popular-movies").await;
    let r = m
        .get(&m.w.user, &format!("/api/v1/media/requests/{request_id}"))
        .await;
    let now = r.data()["status"].clone();
    assert_ne!(now, "pending");
    assert_eq!(card(&cards, 603)["request"]["status"], now);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_and_pages_are_refused_naming_the_field() {
    let m = media_world().await;
    for row in ["movies", "Trending", "popular", "upcoming"] {
        let r = m
            .get(&m.w.user, &format!("/api/v1/media/discover/{row}"))
            .await;
        let e = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert!(e["details"]["fields"]["row"].is_string(), "{row}: {e}");
    }
    for page in ["0", "501", "-1", "x", "1.5"] {
        let r = m
            .get(
                &m.w.user,
                &format!("/api/v1/media/discover/trending?page={page}"),
            )
            .await;
        let e = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert!(e["details"]["fields"]["page"].is_string(), "{page}: {e}");
        assert!(e["details"]["fields"].get("row").is_none(), "{page}: {e}");
    }
    for path in ["trending", "movies", "tv", "movies/upcoming", "tv/upcoming"] {
        let endpoint = format!("GET /api/v1/discover/{path}");
        assert_eq!(m.w.overseerr.requests(&endpoint), 0, "{endpoint}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_are_shared_for_the_search_ttl_then_asked_again_or_served_stale() {
    let m = media_world().await;
    let endpoint = "GET /api/v1/discover/trending";
    row_cards(&m, &m.w.user, "/api/v1/media/discover/trending").await;
    assert_eq!(m.w.overseerr.requests(endpoint), 1);
    // Shared by every user; the badges are still each caller's own.
    row_cards(&m, &m.other, "/api/v1/media/discover/trending?page=1").await;
    assert_eq!(m.w.overseerr.requests(endpoint), 1);
    // Another page is another answer.
    row_cards(&m, &m.w.user, "/api/v1/media/discover/trending?page=2").await;
    assert_eq!(m.w.overseerr.requests(endpoint), 2);

    // Past the TTL Seerr is asked again; when it fails then, the last answer is served stale.
    m.w.t.clock.advance(SEARCH_TTL.as_millis() as i64 + 1);
    let (_, meta) = row_cards(&m, &m.w.user, "/api/v1/media/discover/trending").await;
    assert_eq!(m.w.overseerr.requests(endpoint), 3);
    assert_eq!(meta["stale"], false);
    m.w.t.clock.advance(SEARCH_TTL.as_millis() as i64 + 1);
    m.w.overseerr
        .fail_next_on_route("/api/v1/discover/trending", 1, Fault::Status(500));
    let (cards, meta) = row_cards(&m, &m.w.user, "/api/v1/media/discover/trending").await;
    assert_eq!(m.w.overseerr.requests(endpoint), 4);
    assert_eq!(meta["stale"], true);
    assert!(!cards.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seerr_failing_or_down_is_a_clear_502_or_503() {
    let m = media_world().await;
    m.w.overseerr
        .fail_next_on_route("/api/v1/discover/movies/upcoming", 1, Fault::Status(500));
    let r = m
        .get(&m.w.user, "/api/v1/media/discover/upcoming-movies")
        .await;
    let e = assert_error(&r, StatusCode::BAD_GATEWAY, "UPSTREAM_ERROR");
    assert!(e["message"].as_str().unwrap().contains("Seerr"), "{e}");
    // A failure is not cached: the next look gets the row.
    row_cards(&m, &m.w.user, "/api/v1/media/discover/upcoming-movies").await;

    m.w.set_url("overseerr", &refused_url()).await;
    m.w.t.state.media().clear();
    let r = m.get(&m.w.user, "/api/v1/media/discover/trending").await;
    let e = assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
    assert!(e["correlationId"].is_string(), "{e}");
}
