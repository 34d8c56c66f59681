//! The media-request calls against the fake Overseerr over real TCP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use super::*;
use crate::clock::SystemClock;
use crate::error::{AppError, ErrorCode};
use crate::sim::overseerr::{FakeOverseerr, FakeOverseerrUser, Fault, permission};

const CREATE: &str = "POST /api/v1/request";
const GET_ONE: &str = "GET /api/v1/request/{id}";

fn client(fake: &FakeOverseerr) -> Overseerr {
    Overseerr::new(
        &fake.url(),
        Some(fake.api_key()),
        UpstreamOptions::with_timeout_ms(3000),
        Arc::new(SystemClock),
    )
}

/// A fake with Plex users alice (2), bob (3) and carol (4).
async fn fake_with_users() -> FakeOverseerr {
    let fake = FakeOverseerr::start().await.unwrap();
    fake.add_user(FakeOverseerrUser::plex(2, Some(2002), "alice"));
    fake.add_user(FakeOverseerrUser::plex(3, None, "bob"));
    fake.add_user(FakeOverseerrUser::plex(4, Some(4004), "carol"));
    fake
}

fn upstream_code(e: &AppError) -> ErrorCode {
    match e {
        AppError::Upstream { code, .. } => *code,
        other => panic!("expected an upstream error, got {other:?}"),
    }
}

async fn create(
    overseerr: &Overseerr,
    user: Option<i64>,
    media_type: MediaType,
    id: i64,
    seasons: Seasons,
) -> CreateOutcome {
    overseerr
        .create_request(user, media_type, id, seasons, false)
        .await
        .unwrap()
}

fn created(outcome: CreateOutcome) -> MediaRequest {
    match outcome {
        CreateOutcome::Created(request) => *request,
        other => panic!("expected a new request, got {other:?}"),
    }
}

#[tokio::test]
async fn search_encodes_strictly_and_reaches_the_fake_intact() {
    let fake = FakeOverseerr::start().await.unwrap();
    let overseerr = client(&fake);
    let tricky = "Mission: Impossible (1996)!*' +";
    let page = overseerr.search(tricky, 1).await.unwrap();
    assert_eq!(page.total_results, 0);
    let (raw, decoded) = fake.last_search_query().unwrap();
    assert_eq!(decoded, tricky);
    assert_eq!(raw, "Mission%3A%20Impossible%20%281996%29%21%2A%27%20%2B");

    let page = overseerr.search("don't look", 1).await.unwrap();
    assert_eq!(page.results.len(), 1);
    assert_eq!(page.results[0].title, "Don't Look Up");
    assert_eq!(page.results[0].year, Some(2021));

    let page = overseerr.search("mission: impossible", 1).await.unwrap();
    assert_eq!(page.results[0].id, 954);
    assert_eq!(page.results[0].media_type, SearchMediaType::Movie);
}

#[tokio::test]
async fn search_pages_skip_people_and_show_media_info() {
    let fake = FakeOverseerr::start().await.unwrap();
    fake.add_person(6385, "Matrix Person");
    let overseerr = client(&fake);
    let page = overseerr.search("matrix", 1).await.unwrap();
    assert_eq!(page.total_results, 3, "two movies and a person");
    let titles: Vec<_> = page.results.iter().map(|r| r.title.as_str()).collect();
    assert_eq!(titles, ["The Matrix", "The Matrix Reloaded"]);
    assert!(page.results.iter().all(|r| r.media_info.is_none()));
    assert_eq!(
        page.results[0].poster_path.as_deref(),
        Some("/f89U3ADr1oiB1s9GkdPOEpXUk5H.jpg")
    );

    fake.set_search_page_size(1);
    let first = overseerr.search("matrix", 1).await.unwrap();
    let second = overseerr.search("matrix", 2).await.unwrap();
    assert_eq!((first.page, first.total_pages), (1, 3));
    assert_eq!(first.results[0].id, 603);
    assert_eq!((second.page, second.results[0].id), (2, 604));
    let third = overseerr.search("matrix", 3).await.unwrap();
    assert!(third.results.is_empty(), "the person is left out");
    assert_eq!(overseerr.search("matrix", 0).await.unwrap().page, 1);

    fake.set_search_page_size(20);
    fake.set_media_available(MediaType::Movie, 603);
    let page = overseerr.search("the matrix", 1).await.unwrap();
    let info = page.results[0].media_info.as_ref().unwrap();
    assert_eq!(info.status, MediaStatus::Available);
    assert_eq!(info.tmdb_id, Some(603));
    let show = overseerr.search("thrones", 1).await.unwrap();
    assert_eq!(show.results[0].media_type, SearchMediaType::Tv);
    assert_eq!(show.results[0].year, Some(2011));
}

#[tokio::test]
async fn details_for_movies_and_shows_and_404() {
    let fake = FakeOverseerr::start().await.unwrap();
    let overseerr = client(&fake);
    let movie = overseerr.movie(603).await.unwrap().unwrap();
    assert_eq!(movie.title, "The Matrix");
    assert_eq!(movie.year, Some(1999));
    assert_eq!(movie.genres, ["Drama"]);
    assert!(movie.media_info.is_none());
    assert_eq!(overseerr.movie(1).await.unwrap(), None);
    assert_eq!(overseerr.tv(603).await.unwrap(), None, "TMDB ids per type");

    fake.set_season_status(1399, 1, MediaStatus::Available);
    let tv = overseerr.tv(1399).await.unwrap().unwrap();
    assert_eq!(tv.title, "Game of Thrones");
    assert_eq!(tv.tvdb_id, Some(121361));
    assert_eq!(tv.number_of_seasons, Some(8));
    assert_eq!(tv.seasons.len(), 9, "specials included");
    assert_eq!(
        (tv.seasons[0].season_number, tv.seasons[0].episode_count),
        (0, 3)
    );
    assert_eq!(tv.seasons[1].status, Some(MediaStatus::Available));
    assert_eq!(tv.seasons[2].status, None);
    assert_eq!(
        tv.media_info.unwrap().status,
        MediaStatus::PartiallyAvailable
    );

    fake.fail_next(1, Fault::Status(500));
    let e = overseerr.movie(603).await.unwrap_err();
    assert_eq!(
        upstream_code(&e),
        ErrorCode::UpstreamError,
        "500 is not 404"
    );
}

#[tokio::test]
async fn users_page_and_find_user_reads_every_page() {
    let fake = fake_with_users().await;
    for id in 10..160 {
        fake.add_user(FakeOverseerrUser::plex(
            id,
            Some(10_000 + id),
            &format!("user{id}"),
        ));
    }
    let overseerr = client(&fake);
    let page = overseerr.users(100, 0).await.unwrap();
    assert_eq!(page.results.len(), 100);
    assert_eq!(page.page_info.results, 154);
    assert_eq!(page.page_info.pages, 2);
    let alice = &page.results[1];
    assert_eq!(
        (alice.id, alice.plex_username.as_deref(), alice.plex_id),
        (2, Some("alice"), Some(2002))
    );
    assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
    let tail = overseerr.users(100, 100).await.unwrap();
    assert_eq!((tail.results.len(), tail.page_info.page), (54, 2));

    let found = |p, e| {
        let overseerr = overseerr.clone();
        async move { overseerr.find_user(p, e, None).await.unwrap().map(|u| u.id) }
    };
    assert_eq!(found(Some(10_155), None).await, Some(155), "page 2");
    assert_eq!(found(None, Some("BOB@example.com")).await, Some(3));
    assert_eq!(found(Some(4004), Some("bob@example.com")).await, Some(4));
    assert_eq!(found(None, Some("user150@example.com")).await, Some(150));
    assert_eq!(found(None, Some("bob")).await, None, "never by name");
    assert_eq!(found(Some(1), Some("y")).await, Some(1));
    assert_eq!(found(Some(99_999), Some("y")).await, None);
    assert_eq!(fake.requests("GET /api/v1/user"), 2 + 7 * 2);
}

#[tokio::test]
async fn create_as_the_admin_auto_approves_and_as_a_user_waits() {
    let fake = fake_with_users().await;
    let overseerr = client(&fake);

    let admin = created(create(&overseerr, None, MediaType::Movie, 603, Seasons::All).await);
    assert_eq!(fake.last_api_user(), None, "no X-API-User header");
    assert_eq!(admin.status, MediaRequestStatus::Approved);
    assert_eq!(admin.media_status(), MediaStatus::Pending);
    assert_eq!(
        admin.state(),
        RequestState::Approved,
        "auto-approved starts approved"
    );
    assert_eq!(admin.requested_by.as_ref().unwrap().id, 1);
    assert_eq!(admin.tmdb_id(), Some(603));
    assert_eq!(admin.media_type, Some(MediaType::Movie));
    let later = overseerr.get_request(admin.id).await.unwrap().unwrap();
    assert_eq!(later.state(), RequestState::Processing);

    let alice = created(
        create(
            &overseerr,
            Some(2),
            MediaType::Tv,
            1399,
            Seasons::List(vec![1, 2]),
        )
        .await,
    );
    assert_eq!(fake.last_api_user().as_deref(), Some("2"));
    assert_eq!(alice.status, MediaRequestStatus::Pending);
    assert_eq!(alice.state(), RequestState::Pending);
    assert_eq!(
        alice
            .requested_by
            .as_ref()
            .unwrap()
            .plex_username
            .as_deref(),
        Some("alice")
    );
    let seasons: Vec<_> = alice.seasons.iter().map(|s| s.season_number).collect();
    assert_eq!(seasons, [1, 2]);
    let held = fake.request(alice.id).unwrap();
    assert_eq!((held.requested_by, held.is4k), (2, false));

    fake.set_auto_approve(true);
    let bob = created(create(&overseerr, Some(3), MediaType::Movie, 27205, Seasons::All).await);
    assert_eq!(bob.status, MediaRequestStatus::Approved);
    assert_eq!(bob.modified_by.as_ref().unwrap().id, 3);
    fake.set_auto_approve(false);

    // Overseerr 1.33: "all" is every TMDB season, the specials (0) included, minus what is
    // already requested (server/entity/MediaRequest.ts in sct/overseerr 1.34.0).
    let carol = created(create(&overseerr, Some(4), MediaType::Tv, 1399, Seasons::All).await);
    let seasons: Vec<_> = carol.seasons.iter().map(|s| s.season_number).collect();
    assert_eq!(seasons, [0, 3, 4, 5, 6, 7, 8]);
    assert_eq!(fake.requests(CREATE), 4);
}

#[tokio::test]
async fn duplicates_nothing_left_and_refusals_are_outcomes() {
    let fake = fake_with_users().await;
    let overseerr = client(&fake);
    created(create(&overseerr, Some(2), MediaType::Movie, 603, Seasons::All).await);
    match create(&overseerr, Some(3), MediaType::Movie, 603, Seasons::All).await {
        CreateOutcome::AlreadyRequested { message } => {
            assert_eq!(message, "Request for this media already exists.");
        }
        other => panic!("{other:?}"),
    }
    // A 4K request is a different request.
    let four_k = overseerr
        .create_request(None, MediaType::Movie, 603, Seasons::All, true)
        .await
        .unwrap();
    assert!(created(four_k).is4k);

    created(
        create(
            &overseerr,
            Some(2),
            MediaType::Tv,
            1396,
            Seasons::List(vec![1]),
        )
        .await,
    );
    match create(
        &overseerr,
        Some(3),
        MediaType::Tv,
        1396,
        Seasons::List(vec![1]),
    )
    .await
    {
        CreateOutcome::NothingToRequest { message } => {
            assert_eq!(message, "No seasons available to request");
        }
        other => panic!("{other:?}"),
    }

    fake.set_quota(2, Some(1), None);
    match create(&overseerr, Some(2), MediaType::Movie, 27205, Seasons::All).await {
        CreateOutcome::Refused { reason, message } => {
            assert_eq!(reason, RefusalReason::Quota);
            assert_eq!(message, "Movie Quota exceeded.");
        }
        other => panic!("{other:?}"),
    }
    fake.set_permissions(3, 0);
    match create(&overseerr, Some(3), MediaType::Movie, 27205, Seasons::All).await {
        CreateOutcome::Refused { reason, .. } => assert_eq!(reason, RefusalReason::Permission),
        other => panic!("{other:?}"),
    }
    match create(&overseerr, Some(99), MediaType::Movie, 27205, Seasons::All).await {
        CreateOutcome::Refused { reason, .. } => assert_eq!(reason, RefusalReason::AccessDenied),
        other => panic!("{other:?}"),
    }
    // Anything else (here a 500: a title the fake's TMDB does not know) is an error.
    let e = overseerr
        .create_request(Some(4), MediaType::Movie, 1, Seasons::All, false)
        .await
        .unwrap_err();
    assert_eq!(upstream_code(&e), ErrorCode::UpstreamError);
    assert_eq!(fake.requests(CREATE), 9, "each sent once");
}

#[tokio::test]
async fn posts_are_never_retried_and_gets_are() {
    let fake = fake_with_users().await;
    let overseerr = client(&fake);
    fake.fail_next(1, Fault::Status(503));
    let e = overseerr
        .create_request(Some(2), MediaType::Movie, 603, Seasons::All, false)
        .await
        .unwrap_err();
    assert_eq!(upstream_code(&e), ErrorCode::UpstreamError);
    assert_eq!(fake.requests(CREATE), 1);

    let request = created(create(&overseerr, Some(2), MediaType::Movie, 603, Seasons::All).await);
    fake.fail_next(1, Fault::Status(503));
    assert!(overseerr.get_request(request.id).await.unwrap().is_some());
    assert_eq!(fake.requests(GET_ONE), 2, "one retry");
    fake.fail_next(1, Fault::Status(503));
    overseerr.approve_request(request.id).await.unwrap_err();
    assert_eq!(fake.requests("POST /api/v1/request/{id}/approve"), 1);
}

#[tokio::test]
async fn get_approve_decline_delete_and_404_versus_failure() {
    let fake = fake_with_users().await;
    let overseerr = client(&fake);
    let one = created(create(&overseerr, Some(2), MediaType::Movie, 603, Seasons::All).await);
    let two = created(create(&overseerr, Some(3), MediaType::Movie, 954, Seasons::All).await);

    let got = overseerr.get_request(one.id).await.unwrap().unwrap();
    assert_eq!((got.id, got.state()), (one.id, RequestState::Pending));
    assert_eq!(fake.last_api_user(), None, "reads run as the admin");

    let approved = overseerr.approve_request(one.id).await.unwrap().unwrap();
    assert_eq!(approved.status, MediaRequestStatus::Approved);
    assert_eq!(approved.state(), RequestState::Processing);
    assert_eq!(approved.modified_by.unwrap().id, 1);

    let declined = overseerr.decline_request(two.id).await.unwrap().unwrap();
    assert_eq!(declined.state(), RequestState::Declined);
    assert_eq!(
        fake.media_status(MediaType::Movie, 954),
        MediaStatus::Unknown
    );

    fake.set_media_available(MediaType::Movie, 603);
    let available = overseerr.get_request(one.id).await.unwrap().unwrap();
    assert_eq!(available.state(), RequestState::Available);

    assert!(overseerr.delete_request(two.id).await.unwrap());
    assert!(!overseerr.delete_request(two.id).await.unwrap());
    assert_eq!(overseerr.get_request(two.id).await.unwrap(), None);
    assert_eq!(overseerr.approve_request(999).await.unwrap(), None);
    assert_eq!(overseerr.decline_request(999).await.unwrap(), None);

    fake.fail_next(1, Fault::Status(500));
    let e = overseerr.get_request(one.id).await.unwrap_err();
    assert_eq!(upstream_code(&e), ErrorCode::UpstreamError);
    fake.fail_next(1, Fault::Status(500));
    let e = overseerr.delete_request(one.id).await.unwrap_err();
    assert_eq!(upstream_code(&e), ErrorCode::UpstreamError);
    fake.fail_next(1, Fault::Garbage);
    let e = overseerr.get_request(one.id).await.unwrap_err();
    assert_eq!(upstream_code(&e), ErrorCode::UpstreamError);
}

#[tokio::test]
async fn seerr_numbers_are_kept_and_mapped() {
    let fake = fake_with_users().await;
    let overseerr = client(&fake);
    let r = created(create(&overseerr, Some(2), MediaType::Movie, 603, Seasons::All).await);
    fake.set_request_status(r.id, MediaRequestStatus::Completed);
    fake.set_media_status(MediaType::Movie, 603, MediaStatus::Deleted);
    let got = overseerr.get_request(r.id).await.unwrap().unwrap();
    assert_eq!(got.status, MediaRequestStatus::Completed);
    assert_eq!(got.media_status(), MediaStatus::Deleted);
    assert_eq!(got.state(), RequestState::Available);

    fake.set_request_status(r.id, MediaRequestStatus::Unrecognized(42));
    fake.set_media_status(MediaType::Movie, 603, MediaStatus::Unrecognized(9));
    let got = overseerr.get_request(r.id).await.unwrap().unwrap();
    assert_eq!(got.status, MediaRequestStatus::Unrecognized(42));
    assert_eq!(got.media_status(), MediaStatus::Unrecognized(9));
    assert_eq!(got.state(), RequestState::Pending);
}

#[tokio::test]
async fn lists_page_filter_sort_and_count() {
    let fake = fake_with_users().await;
    let overseerr = client(&fake);
    let mut ids = Vec::new();
    for (user, id) in [(2, 603), (3, 954), (4, 27205), (2, 646_380)] {
        ids.push(
            created(create(&overseerr, Some(user), MediaType::Movie, id, Seasons::All).await).id,
        );
    }
    let page = overseerr
        .requests(3, 0, RequestFilter::All, RequestSort::Added, None)
        .await
        .unwrap();
    assert_eq!(
        page.page_info,
        PageInfo {
            pages: 2,
            page_size: 3,
            results: 4,
            page: 1
        }
    );
    let got: Vec<_> = page.results.iter().map(|r| r.id).collect();
    assert_eq!(got, [ids[3], ids[2], ids[1]], "newest first");
    let rest = overseerr
        .requests(3, 3, RequestFilter::All, RequestSort::Added, None)
        .await
        .unwrap();
    assert_eq!(rest.results.len(), 1);
    assert_eq!(rest.page_info.page, 2);

    overseerr.approve_request(ids[0]).await.unwrap();
    overseerr.decline_request(ids[1]).await.unwrap();
    let modified = overseerr
        .requests(10, 0, RequestFilter::All, RequestSort::Modified, None)
        .await
        .unwrap();
    let got: Vec<_> = modified.results.iter().map(|r| r.id).collect();
    assert_eq!(got, [ids[1], ids[0], ids[3], ids[2]]);
    let pending = overseerr
        .requests(10, 0, RequestFilter::Pending, RequestSort::Added, None)
        .await
        .unwrap();
    let got: Vec<_> = pending.results.iter().map(|r| r.id).collect();
    assert_eq!(got, [ids[3], ids[2]]);
    let processing = overseerr
        .requests(10, 0, RequestFilter::Processing, RequestSort::Added, None)
        .await
        .unwrap();
    assert_eq!(processing.results.len(), 1);
    assert_eq!(processing.results[0].state(), RequestState::Processing);
    fake.set_media_available(MediaType::Movie, 603);
    let available = overseerr
        .requests(10, 0, RequestFilter::Available, RequestSort::Added, None)
        .await
        .unwrap();
    assert_eq!(available.results[0].id, ids[0]);

    let count = overseerr.request_count().await.unwrap();
    assert_eq!(
        (
            count.total,
            count.movie,
            count.tv,
            count.pending,
            count.approved
        ),
        (4, 4, 0, 2, 1)
    );
    assert_eq!(
        (count.declined, count.available, count.completed),
        (1, 1, None)
    );
}

#[tokio::test]
async fn a_wrong_key_is_an_upstream_error() {
    let fake = FakeOverseerr::start().await.unwrap();
    fake.set_api_key("the-right-key");
    let overseerr = Overseerr::new(
        &fake.url(),
        Some("wrong".into()),
        UpstreamOptions::with_timeout_ms(2000),
        Arc::new(SystemClock),
    );
    let e = overseerr.search("matrix", 1).await.unwrap_err();
    assert_eq!(upstream_code(&e), ErrorCode::UpstreamError);
    match overseerr
        .create_request(None, MediaType::Movie, 603, Seasons::All, false)
        .await
        .unwrap()
    {
        CreateOutcome::Refused { reason, .. } => assert_eq!(reason, RefusalReason::AccessDenied),
        other => panic!("{other:?}"),
    }
    // Non-admin users may not list users.
    fake.set_api_key("k");
    let overseerr = client(&fake);
    fake.add_user(FakeOverseerrUser {
        permissions: permission::REQUEST,
        ..FakeOverseerrUser::plex(1, None, "demoted")
    });
    let e = overseerr.users(10, 0).await.unwrap_err();
    assert_eq!(upstream_code(&e), ErrorCode::UpstreamError);
}

/// `mediaType` and `filter=completed|deleted` go to Seerr 3.x (seerr-api.yml in
/// seerr-team/seerr) and never to Overseerr 1.33, whose validator refuses them with 400
/// (overseerr-api.yml in sct/overseerr 1.34.0): there the type is filtered here, `completed`
/// is asked as `available` and `deleted` is not asked at all. The flavour is asked once.
#[tokio::test]
async fn seerr_only_list_parameters_are_sent_to_seerr_only() {
    for flavor in [Flavor::Seerr, Flavor::Overseerr] {
        let fake = fake_with_users().await;
        fake.set_flavor(flavor);
        let overseerr = client(&fake);
        let movie = created(create(&overseerr, Some(2), MediaType::Movie, 603, Seasons::All).await);
        let show = created(
            create(
                &overseerr,
                Some(3),
                MediaType::Tv,
                1396,
                Seasons::List(vec![1]),
            )
            .await,
        );
        overseerr.approve_request(movie.id).await.unwrap();
        overseerr.approve_request(show.id).await.unwrap();
        fake.set_media_available(MediaType::Movie, 603);
        let ids = |page: RequestPage| page.results.iter().map(|r| r.id).collect::<Vec<_>>();
        let done = overseerr
            .requests(
                10,
                0,
                RequestFilter::Completed,
                RequestSort::Added,
                Some(MediaType::Movie),
            )
            .await
            .unwrap();
        assert_eq!(ids(done), [movie.id], "{flavor:?}");
        let shows = overseerr
            .requests(
                10,
                0,
                RequestFilter::All,
                RequestSort::Added,
                Some(MediaType::Tv),
            )
            .await
            .unwrap();
        assert_eq!(ids(shows), [show.id], "{flavor:?}");
        let before = fake.requests("GET /api/v1/request");
        let gone = overseerr
            .requests(10, 0, RequestFilter::Deleted, RequestSort::Added, None)
            .await
            .unwrap();
        assert!(gone.results.is_empty());
        let asked = fake.requests("GET /api/v1/request") - before;
        assert_eq!(asked, u64::from(flavor == Flavor::Seerr), "{flavor:?}");
        assert_eq!(overseerr.known_flavor(), Some(flavor));
        assert_eq!(
            fake.requests("GET /api/v1/settings/public"),
            1,
            "asked once"
        );
    }
}

/// Without readable public settings the version decides: Overseerr stayed on 1.x, Jellyseerr
/// is 2.x, Seerr 3.x.
#[test]
fn the_flavor_is_detected_from_settings_then_version() {
    use serde_json::json;
    let status = |v: &str| json!({"version": v, "commitTag": format!("v{v}")});
    assert_eq!(
        Flavor::detect(&status("1.33.2"), Some(&json!({"region": ""}))),
        Flavor::Overseerr
    );
    assert_eq!(
        Flavor::detect(&status("1.33.2"), Some(&json!({"mediaServerType": 2}))),
        Flavor::Seerr,
        "the settings win"
    );
    assert_eq!(Flavor::detect(&status("3.0.1"), None), Flavor::Seerr);
    assert_eq!(Flavor::detect(&status("2.7.3"), None), Flavor::Seerr);
    assert_eq!(Flavor::detect(&status("1.34.0"), None), Flavor::Overseerr);
    assert_eq!(Flavor::detect(&json!({}), None), Flavor::Overseerr);
    assert_eq!(
        Flavor::detect(&status("develop-abc"), None),
        Flavor::Overseerr
    );
}

/// Public settings that cannot be read (a proxy hiding them) leave the version of `/status` to
/// decide (Seerr 3.x here), cost the breaker nothing, and are not kept: the flavour is.
#[tokio::test]
async fn without_public_settings_the_version_tells_the_flavor() {
    let fake = FakeOverseerr::start_as(Flavor::Seerr).await.unwrap();
    fake.fail_next_on_route("/api/v1/settings/public", 1, Fault::Status(500));
    let overseerr = client(&fake);
    assert_eq!(overseerr.known_flavor(), None);
    assert_eq!(overseerr.flavor().await.unwrap(), Flavor::Seerr);
    assert_eq!(fake.requests("GET /api/v1/status"), 1);
    assert_eq!(
        overseerr
            .upstream()
            .breaker()
            .snapshot()
            .consecutive_failures,
        0
    );
    assert_eq!(overseerr.clone().flavor().await.unwrap(), Flavor::Seerr);
    assert_eq!(
        fake.requests("GET /api/v1/settings/public"),
        1,
        "kept by clones too"
    );
}
