//! Browsing Plex through the portal (`/api/v1/plex/*`) against the fake Plex server: what each
//! endpoint shows, paging, validation, the image proxy, caching (counted on the fake's side),
//! stale answers, failures and an unconfigured Plex.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use medianest::sim::plex::{COMPOSITE_JPEG, Fault, NewItem, THUMB_PNG};
use serde_json::Value;

use crate::support::services::{ServiceWorld, refused_url, world};
use crate::support::{TestResponse, assert_error, call, insert_user, new_session, test_state};

/// Library keys and rating keys of the seeded fake.
struct Seeded {
    movies: String,
    shows: String,
    empty: String,
    iron: String,
    saga: String,
}

/// The proxied thumb link of the first film in Movies.
async fn first_thumb(w: &ServiceWorld, s: &Seeded) -> String {
    let r = w
        .get(
            &w.user,
            &format!("/api/v1/plex/libraries/{}/items", s.movies),
        )
        .await;
    r.data()[0]["thumb"].as_str().unwrap().to_owned()
}

/// A world whose fake Plex has Movies (5 films, one collection), TV Shows (2) and an empty
/// library.
async fn seeded() -> (ServiceWorld, Seeded) {
    let w = world().await;
    let plex = &w.plex;
    plex.set_friendly_name("Basement");
    let movies = plex.add_library("movie", "Movies", "/data/movies");
    let shows = plex.add_library("show", "TV Shows", "/data/tv");
    let empty = plex.add_library("movie", "Home Videos", "/data/home");
    let iron = plex
        .add_item(&movies, NewItem::new("Iron Man", 2008).summary("A suit."))
        .unwrap();
    let iron2 = plex
        .add_item(&movies, NewItem::new("Iron Man 2", 2010))
        .unwrap();
    for (title, year) in [("Up", 2009), ("Heat", 1995), ("Alien", 1979)] {
        plex.add_item(&movies, NewItem::new(title, year)).unwrap();
    }
    plex.add_item(&shows, NewItem::new("The Iron Chef", 1993))
        .unwrap();
    plex.add_item(&shows, NewItem::new("Bluey", 2018)).unwrap();
    let saga = plex
        .add_collection(&movies, "Iron Man Saga", &[&iron, &iron2])
        .unwrap();
    let seeded = Seeded {
        movies,
        shows,
        empty,
        iron,
        saga,
    };
    (w, seeded)
}

/// Asserts that nothing in the response gives PMS away: neither its token nor its address.
fn assert_no_secrets(w: &ServiceWorld, r: &TestResponse) {
    let token = w.plex.token();
    let addr = w.plex.addr().to_string();
    let body = String::from_utf8_lossy(&r.body);
    assert!(!body.contains(&token), "token in the body: {body}");
    assert!(!body.contains(&addr), "PMS address in the body: {body}");
    for (name, value) in &r.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        assert!(!value.contains(&token), "token in header {name}");
        assert!(!value.contains(&addr), "PMS address in header {name}");
    }
}

fn titles(data: &Value) -> Vec<String> {
    data.as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn server_and_libraries_are_shown_and_cached() {
    let (w, s) = seeded().await;
    let r = w.get(&w.user, "/api/v1/plex/server").await;
    assert_eq!(r.header("x-cache"), Some("MISS"));
    assert_no_secrets(&w, &r);
    let server = r.data();
    assert_eq!(server["name"], "Basement");
    assert_eq!(server["machineIdentifier"], w.plex.machine_identifier());
    assert_eq!(server["version"], medianest::sim::plex::VERSION);
    assert_eq!(server["platform"], "Linux");

    let r = w.get(&w.user, "/api/v1/plex/libraries").await;
    assert_no_secrets(&w, &r);
    let libraries = r.data();
    let list = libraries.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["key"], s.movies.as_str());
    assert_eq!(list[0]["type"], "movie");
    assert_eq!(list[0]["title"], "Movies");
    assert_eq!(list[0]["itemCount"], 5);
    assert_eq!(list[1]["itemCount"], 2);
    assert_eq!(list[2]["itemCount"], 0);

    // The second call of the same user is served from the cache: no new upstream call.
    let sections = w.plex.requests("GET /library/sections");
    let r = w.get(&w.user, "/api/v1/plex/libraries").await;
    assert_eq!(r.header("x-cache"), Some("HIT"));
    assert_eq!(r.data(), libraries);
    let r = w.get(&w.user, "/api/v1/plex/server").await;
    assert_eq!(r.header("x-cache"), Some("HIT"));
    assert_eq!(w.plex.requests("GET /library/sections"), sections);
    assert_eq!(w.plex.requests("GET /"), 1);

    // The hits and misses show where the other caches' do.
    let r = w.get(&w.admin, "/api/v1/admin/performance").await;
    let cache = &r.data()["cache"];
    assert_eq!(cache["plex_libraries"]["hits"], 1, "{cache}");
    assert_eq!(cache["plex_libraries"]["misses"], 1, "{cache}");
    assert_eq!(cache["plex_server"]["hits"], 1, "{cache}");
}

#[tokio::test]
async fn library_items_page_through_with_offset_and_limit() {
    let (w, s) = seeded().await;
    let path = format!("/api/v1/plex/libraries/{}/items?offset=1&limit=2", s.movies);
    let r = w.get(&w.user, &path).await;
    assert_no_secrets(&w, &r);
    let body = r.json();
    assert_eq!(body["meta"]["offset"], 1);
    assert_eq!(body["meta"]["limit"], 2);
    assert_eq!(body["meta"]["total"], 5);
    assert_eq!(titles(&body["data"]), ["Iron Man 2", "Up"]);
    let item = &body["data"][0];
    for field in [
        "ratingKey",
        "type",
        "title",
        "year",
        "summary",
        "thumb",
        "duration",
        "addedAt",
        "viewCount",
    ] {
        assert!(item.get(field).is_some(), "no {field} in {item}");
    }
    assert_eq!(item["type"], "movie");
    assert_eq!(item["year"], 2010);
    assert!(item["summary"].is_null());
    assert!(item["addedAt"].as_str().unwrap().ends_with('Z'));
    let thumb = item["thumb"].as_str().unwrap();
    assert!(
        thumb.starts_with("/api/v1/plex/image?path=%2Flibrary%2Fmetadata%2F"),
        "{thumb}"
    );

    // Defaults, the end of the list, and a library PMS answers without any Metadata key.
    let r = w
        .get(
            &w.user,
            &format!("/api/v1/plex/libraries/{}/items", s.movies),
        )
        .await;
    assert_eq!(r.json()["meta"]["limit"], 20);
    assert_eq!(r.data().as_array().unwrap().len(), 5);
    let r = w
        .get(
            &w.user,
            &format!("/api/v1/plex/libraries/{}/items?offset=5", s.movies),
        )
        .await;
    assert_eq!(r.data(), serde_json::json!([]));
    let r = w
        .get(
            &w.user,
            &format!("/api/v1/plex/libraries/{}/items", s.empty),
        )
        .await;
    assert_eq!(r.data(), serde_json::json!([]));
    assert_eq!(r.json()["meta"]["total"], 0);

    // The upstream saw the paging headers for the first page only once: the repeat is a hit.
    let before = w.plex.requests("GET /library/sections/{key}/all");
    let r = w.get(&w.user, &path).await;
    assert_eq!(r.header("x-cache"), Some("HIT"));
    assert_eq!(w.plex.requests("GET /library/sections/{key}/all"), before);
}

#[tokio::test]
async fn bad_parameters_are_clear_400s() {
    let (w, s) = seeded().await;
    let items = |q: &str| format!("/api/v1/plex/libraries/{}/items?{q}", s.movies);
    for (path, field) in [
        (items("limit=0"), "limit"),
        (items("limit=101"), "limit"),
        (items("limit=ten"), "limit"),
        (items("offset=-1"), "offset"),
        ("/api/v1/plex/libraries/abc/items".to_owned(), "key"),
        (
            "/api/v1/plex/libraries/1%2F..%2F2/collections".to_owned(),
            "key",
        ),
        ("/api/v1/plex/collections/x1".to_owned(), "ratingKey"),
        ("/api/v1/plex/search".to_owned(), "query"),
        ("/api/v1/plex/search?query=%20%20".to_owned(), "query"),
        (
            format!("/api/v1/plex/search?query={}", "a".repeat(101)),
            "query",
        ),
        ("/api/v1/plex/search?query=up&limit=51".to_owned(), "limit"),
        ("/api/v1/plex/recently-added?limit=51".to_owned(), "limit"),
        ("/api/v1/plex/recently-added?limit=0".to_owned(), "limit"),
    ] {
        let r = w.get(&w.user, &path).await;
        let error = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert!(
            error["details"]["fields"][field].is_string(),
            "{path}: {error}"
        );
    }
    // An unknown library or collection is not there, which is no fault of Plex's.
    let r = w.get(&w.user, "/api/v1/plex/libraries/99/items").await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    let r = w.get(&w.user, "/api/v1/plex/collections/424242").await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    // Not retried. (The collection and its items are asked for together, and the first 404
    // drops the other call, which may or may not have gone out yet: 0 or 1, never more.)
    assert!(w.plex.requests("GET /library/collections/{key}") <= 1);
}

#[tokio::test]
async fn search_and_recently_added() {
    let (w, s) = seeded().await;
    let r = w.get(&w.user, "/api/v1/plex/search?query=iron").await;
    assert_no_secrets(&w, &r);
    let found = r.data();
    assert_eq!(
        titles(&found),
        ["Iron Man", "Iron Man 2", "The Iron Chef", "Iron Man Saga"]
    );
    assert_eq!(found[0]["ratingKey"], s.iron.as_str());
    assert_eq!(found[0]["summary"], "A suit.");
    assert_eq!(found[3]["type"], "collection");
    let r = w
        .get(&w.user, "/api/v1/plex/search?query=Iron&limit=1")
        .await;
    assert_eq!(titles(&r.data()), ["Iron Man"]);
    // Hubs without matches come without Metadata.
    let r = w.get(&w.user, "/api/v1/plex/search?query=zzz").await;
    assert_eq!(r.data(), serde_json::json!([]));
    // Cached by query (case folded) and limit.
    let before = w.plex.requests("GET /hubs/search");
    let r = w.get(&w.user, "/api/v1/plex/search?query=IRON").await;
    assert_eq!(r.header("x-cache"), Some("HIT"));
    assert_eq!(w.plex.requests("GET /hubs/search"), before);

    let r = w.get(&w.user, "/api/v1/plex/recently-added?limit=3").await;
    assert_eq!(titles(&r.data()), ["Bluey", "The Iron Chef", "Alien"]);
    let r = w.get(&w.user, "/api/v1/plex/recently-added").await;
    assert_eq!(r.data().as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn recently_added_for_the_dashboard_is_cached() {
    let (w, _) = seeded().await;
    let state = &w.t.state;
    let first = medianest::plex::recently_added_for(state, &w.user_id, 10)
        .await
        .unwrap();
    assert_eq!(first.len(), 7);
    assert_eq!(first[0].title, "Bluey");
    let second = medianest::plex::recently_added_for(state, &w.user_id, 10)
        .await
        .unwrap();
    assert_eq!(first, second);
    assert_eq!(w.plex.requests("GET /library/recentlyAdded"), 1);
    // The same list as the endpoint's for that user and limit.
    let r = w.get(&w.user, "/api/v1/plex/recently-added?limit=10").await;
    assert_eq!(r.header("x-cache"), Some("HIT"));

    // As JSON for the home page, from the same cache.
    let json = medianest::plex::recently_added_json(state, &w.user_id).await;
    let json: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(json, r.data());
    assert_eq!(w.plex.requests("GET /library/recentlyAdded"), 1);
    // Plex down with nothing held (another user): an empty list, not an error.
    w.plex.shutdown().await;
    let json = medianest::plex::recently_added_json(state, &w.admin_id).await;
    assert_eq!(json.as_ref(), b"[]");
}

#[tokio::test]
async fn collections_of_a_library_and_one_with_its_items() {
    let (w, s) = seeded().await;
    let r = w
        .get(
            &w.user,
            &format!("/api/v1/plex/libraries/{}/collections", s.movies),
        )
        .await;
    assert_no_secrets(&w, &r);
    let list = r.data();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["ratingKey"], s.saga.as_str());
    assert_eq!(list[0]["title"], "Iron Man Saga");
    assert_eq!(list[0]["subtype"], "movie");
    assert_eq!(list[0]["childCount"], 2);
    assert!(
        list[0]["thumb"]
            .as_str()
            .unwrap()
            .starts_with("/api/v1/plex/image?path=%2Flibrary%2Fcollections%2F")
    );
    let r = w
        .get(
            &w.user,
            &format!("/api/v1/plex/libraries/{}/collections", s.shows),
        )
        .await;
    assert_eq!(r.data(), serde_json::json!([]));

    let r = w
        .get(&w.user, &format!("/api/v1/plex/collections/{}", s.saga))
        .await;
    let detail = r.data();
    assert_eq!(detail["title"], "Iron Man Saga");
    assert_eq!(titles(&detail["items"]), ["Iron Man", "Iron Man 2"]);
}

#[tokio::test]
async fn images_are_proxied_with_etags_and_no_token() {
    let (w, s) = seeded().await;
    let thumb = first_thumb(&w, &s).await;

    let r = w.get(&w.user, &thumb).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_no_secrets(&w, &r);
    assert_eq!(r.body.as_ref(), THUMB_PNG);
    assert_eq!(r.header("content-type"), Some("image/png"));
    assert_eq!(r.header("x-cache"), Some("MISS"));
    assert_eq!(r.header("cache-control"), Some("private, max-age=3600"));
    let etag = r.header("etag").unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    // Again: from the cache, same validator; with the validator: 304 and no body.
    let r = w.get(&w.user, &thumb).await;
    assert_eq!(r.header("x-cache"), Some("HIT"));
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let r = call("GET", &thumb)
        .bearer(&w.user)
        .header("if-none-match", &etag)
        .send(&w.app)
        .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert_eq!(
        w.plex.requests("GET /library/metadata/{key}/thumb/{at}"),
        1,
        "one upstream fetch for three requests"
    );

    // Sized: PMS's photo transcoder, cached apart.
    let r = w
        .get(&w.user, &format!("{thumb}&width=200&height=300"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(r.body.as_ref(), COMPOSITE_JPEG);
    assert_ne!(r.header("etag"), Some(etag.as_str()));
    assert_eq!(w.plex.requests("GET /photo/:/transcode"), 1);

    // An image PMS does not have.
    let r = w
        .get(
            &w.user,
            "/api/v1/plex/image?path=/library/metadata/999/thumb/1",
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test]
async fn image_paths_outside_the_library_are_refused() {
    let (w, _) = seeded().await;
    let before = w.plex.total_requests();
    for path in [
        "",
        "/identity",
        "%2Fidentity",
        "/library/../identity",
        "%2Flibrary%2F..%2Fidentity",
        "/library/%2e%2e/identity",
        "%2Flibrary%2F%252e%252e%2Fidentity",
        "http://evil.example/library/metadata/1/thumb/2",
        "//evil.example/library/metadata",
        "/library/metadata/1/thumb/2%3FX-Plex-Token%3Dx",
        "/library/metadata/1/thumb/2%26url%3Dhttp://evil",
        "/library/metadata/1/thumb/2%23x",
        "/library//metadata/1",
        "/library/metadata%5C..%5C..%5Cidentity",
    ] {
        let r = w
            .get(&w.user, &format!("/api/v1/plex/image?path={path}"))
            .await;
        let error = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert!(
            error["details"]["fields"]["path"].is_string(),
            "{path}: {error}"
        );
    }
    for size in ["width=0", "height=5000", "width=big"] {
        let r = w
            .get(
                &w.user,
                &format!("/api/v1/plex/image?path=/library/metadata/1/thumb/2&{size}"),
            )
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    }
    assert_eq!(w.plex.total_requests(), before, "nothing reached Plex");
}

/// What a signed-in user asks the image proxy for never trips Plex's breaker: lists and
/// endpoints with side effects are refused before PMS is called, and what PMS answers to an
/// image path (an error page, a page that is not an image) is the caller's error only.
#[tokio::test]
async fn image_paths_a_user_chooses_never_open_the_plex_breaker() {
    let (w, s) = seeded().await;
    let before = w.plex.total_requests();
    for _ in 0..10 {
        let r = w
            .get(&w.user, "/api/v1/plex/image?path=/library/sections")
            .await;
        let error = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert!(error["details"]["fields"]["path"].is_string(), "{error}");
    }
    for path in [
        format!("/library/sections/{}/refresh", s.movies),
        format!("%2Flibrary%2Fsections%2F{}%2Frefresh", s.movies),
        format!(
            "%2Fphoto%2F%3A%2Ftranscode%3Furl%3D%252Flibrary%252Fsections%252F{}%252Frefresh",
            s.movies
        ),
        "/library/metadata/1/thumb/2%3Fx%3D1".to_owned(),
    ] {
        let r = w
            .get(&w.user, &format!("/api/v1/plex/image?path={path}"))
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    }
    assert_eq!(
        w.plex.requests("GET /library/sections/{key}/refresh"),
        0,
        "no scan was started"
    );
    assert_eq!(w.plex.total_requests(), before, "nothing reached Plex");

    // PMS answering an image path with a page, a list or an error: 502 each time, never counted.
    let thumb = first_thumb(&w, &s).await;
    let route = "/library/metadata/{key}/thumb/{at}";
    w.plex.fail_next_on_route(route, 4, Fault::Page);
    w.plex.fail_next_on_route(route, 3, Fault::Garbage);
    w.plex.fail_next_on_route(route, 3, Fault::Status(500));
    for n in 0..10 {
        let r = w.get(&w.user, &thumb).await;
        assert_error(&r, StatusCode::BAD_GATEWAY, "UPSTREAM_ERROR");
        assert_no_secrets(&w, &r);
        let b = w.breaker("plex").await;
        assert_eq!(b["state"], "closed", "after {n}: {b}");
        assert_eq!(b["consecutiveFailures"], 0, "after {n}: {b}");
    }
    // PMS still answers everyone.
    let r = w.get(&w.user, &thumb).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.as_ref(), THUMB_PNG);
    let r = w.get(&w.user, "/api/v1/plex/libraries").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

/// A collection or section a user names is theirs to choose: PMS failing on it (an error page, a
/// 500, garbage) is a 502 for that user and never counts for the breaker.
#[tokio::test]
async fn collections_a_user_chooses_never_open_the_plex_breaker() {
    let (w, s) = seeded().await;
    let collection = format!("/api/v1/plex/collections/{}", s.saga);
    // The collection and its children may be asked for together: each failed view uses up one
    // fault or two, so the loop runs until PMS answers again.
    w.plex
        .fail_next_on_route("/library/collections/{key}", 4, Fault::Status(500));
    w.plex
        .fail_next_on_route("/library/collections/{key}", 4, Fault::Page);
    w.plex
        .fail_next_on_route("/library/collections/{key}/children", 8, Fault::Garbage);
    let mut failed = 0;
    let r = loop {
        let r = w.get(&w.user, &collection).await;
        if r.status == StatusCode::OK {
            break r;
        }
        failed += 1;
        assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{failed}: {}", r.text());
        let b = w.breaker("plex").await;
        assert_eq!(b["state"], "closed", "after {failed}: {b}");
        assert_eq!(b["consecutiveFailures"], 0, "after {failed}: {b}");
        assert!(failed < 30, "PMS never answered again");
    };
    assert!(failed >= 8, "only {failed} failed views");
    assert_eq!(r.data()["title"], "Iron Man Saga");
}

/// A `/photo/:/transcode` path (as PMS itself hands out) passes when its `url` is an image path.
#[tokio::test]
async fn transcoder_paths_of_images_are_proxied() {
    let (w, s) = seeded().await;
    let thumb = first_thumb(&w, &s).await;
    let inner = thumb.strip_prefix("/api/v1/plex/image?path=").unwrap();
    let transcode = format!(
        "/api/v1/plex/image?path=%2Fphoto%2F%3A%2Ftranscode%3Fwidth%3D200%26height%3D300%26minSize%3D1%26url%3D{}",
        inner.replace('%', "%25")
    );
    let r = w.get(&w.user, &transcode).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(r.body.as_ref(), COMPOSITE_JPEG);
    assert_eq!(w.plex.requests("GET /photo/:/transcode"), 1);
    // The size given twice is refused.
    let r = w.get(&w.user, &format!("{transcode}&width=100")).await;
    let error = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert!(error["details"]["fields"]["width"].is_string(), "{error}");
}

/// Plex really down: the image proxy's refused connections still open the breaker.
#[tokio::test]
async fn refused_image_calls_still_open_the_plex_breaker() {
    let (w, _) = seeded().await;
    w.set_url("plex", &refused_url()).await;
    for n in 0..5 {
        let r = w
            .get(
                &w.user,
                &format!("/api/v1/plex/image?path=/library/metadata/1/thumb/{n}"),
            )
            .await;
        assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
    }
    assert_eq!(w.breaker("plex").await["state"], "open");
}

#[tokio::test]
async fn an_expired_answer_is_served_stale_when_plex_fails() {
    let (w, _) = seeded().await;
    let fresh = w.get(&w.user, "/api/v1/plex/libraries").await.data();
    w.t.clock.advance(601_000);
    w.plex
        .fail_next_on_route("/library/sections", 1, Fault::Status(500));
    let r = w.get(&w.user, "/api/v1/plex/libraries").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let body = r.json();
    assert_eq!(body["data"], fresh);
    assert_eq!(body["meta"]["stale"], true);
    assert_eq!(body["meta"]["staleAgeSeconds"], 601);
    // Plex is back: a fresh answer, no longer marked.
    let r = w.get(&w.user, "/api/v1/plex/libraries").await;
    assert!(r.json().get("meta").is_none(), "{}", r.text());
}

#[tokio::test]
async fn plex_down_or_hanging_is_a_bounded_error() {
    let (w, s) = seeded().await;
    w.set_timeout_ms("plex", 600).await;
    w.plex.set_latency(Duration::from_secs(5));
    let began = Instant::now();
    let r = w.get(&w.user, "/api/v1/plex/recently-added").await;
    let took = began.elapsed();
    let error = assert_error(&r, StatusCode::GATEWAY_TIMEOUT, "UPSTREAM_TIMEOUT");
    assert_eq!(error["message"], "Plex did not answer in time.");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_no_secrets(&w, &r);
    w.plex.set_latency(Duration::ZERO);

    w.plex.fail_next(3, Fault::Garbage);
    let r = w
        .get(
            &w.user,
            &format!("/api/v1/plex/libraries/{}/items", s.shows),
        )
        .await;
    assert_error(&r, StatusCode::BAD_GATEWAY, "UPSTREAM_ERROR");

    w.set_url("plex", &refused_url()).await;
    let r = w.get(&w.user, "/api/v1/plex/server").await;
    let error = assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
    assert_eq!(error["message"], "Plex is temporarily unavailable.");
}

#[tokio::test]
async fn without_plex_every_endpoint_says_not_configured() {
    let t = test_state();
    let user_id = insert_user(&t.state, "user", None, "user", None).await;
    let token = new_session(&t.state, &user_id).await.token;
    let app = t.router();
    for path in [
        "/api/v1/plex/server",
        "/api/v1/plex/libraries",
        "/api/v1/plex/libraries/1/items",
        "/api/v1/plex/search?query=up",
        "/api/v1/plex/recently-added",
        "/api/v1/plex/libraries/1/collections",
        "/api/v1/plex/collections/1",
        "/api/v1/plex/image?path=/library/metadata/1/thumb/2",
    ] {
        let r = call("GET", path).bearer(&token).send(&app).await;
        let error = assert_error(
            &r,
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_NOT_CONFIGURED",
        );
        assert_eq!(error["message"], "Plex is not set up yet.", "{path}");
    }
    let e = medianest::plex::recently_added_for(&t.state, &user_id, 10)
        .await
        .unwrap_err();
    assert_eq!(e.code(), medianest::error::ErrorCode::ServiceNotConfigured);
    let json = medianest::plex::recently_added_json(&t.state, &user_id).await;
    assert_eq!(json.as_ref(), b"[]");
}

#[tokio::test]
async fn a_plex_url_without_a_server_token_is_not_configured_either() {
    let (w, _) = seeded().await;
    w.t.state
        .db()
        .write(|tx| {
            tx.execute(
                "UPDATE service_config SET api_key = NULL WHERE service_name = 'plex'",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    medianest::services::admin::rebuild_clients(&w.t.state)
        .await
        .unwrap();
    let r = w.get(&w.user, "/api/v1/plex/libraries").await;
    assert_error(
        &r,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_NOT_CONFIGURED",
    );
    assert_eq!(w.plex.requests("GET /library/sections"), 0);
}
