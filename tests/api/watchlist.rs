//! Plex watchlist auto-requests end to end: the portal reads watchlists from the simulated
//! plex.tv discover provider and makes requests in the simulated Seerr, over real HTTP, on a
//! WAL database file. Checks are driven by `watchlist::sync::run_due` and the manual clock (the
//! background loop is not started in tests), so nothing sleeps.

use axum::http::StatusCode;
use medianest::auth::plex::PIN_COOKIE;
use medianest::integrations::overseerr::{MediaStatus, MediaType};
use medianest::sim::overseerr::FakeOverseerrUser;
use medianest::sim::plex_discover::{FakeItem, FakePlexDiscover, Fault};
use medianest::sim::plextv::{FakeAccount, FakePlexTv};
use medianest::sim::uptime_kuma::KumaVersion;
use medianest::watchlist::sync::run_due;
use serde_json::{Value, json};

use crate::support::services::{ServiceWorld, world_on};
use crate::support::{
    TestResponse, call, eventually, file_db, insert_user, new_session, scalar, sql_text,
};

/// More than the interval plus its jitter (15 min + 10 %).
const NEXT_CHECK_MS: i64 = 17 * 60 * 1000;

fn inception() -> FakeItem {
    FakeItem::movie(27205, "Inception", 2010)
}
fn reloaded() -> FakeItem {
    FakeItem::movie(604, "The Matrix Reloaded", 2003)
}
fn mission() -> FakeItem {
    FakeItem::movie(954, "Mission: Impossible", 1996)
}
fn breaking_bad() -> FakeItem {
    FakeItem::show(1396, "Breaking Bad", 2008)
}

/// The portal with Seerr, plex.tv and the discover provider simulated; "user" signed in with
/// Plex (account 2, a stored token the provider knows), "other" a second user, both Seerr
/// users.
struct Watch {
    w: ServiceWorld,
    tv: FakePlexTv,
    discover: FakePlexDiscover,
    account: FakeAccount,
    other_id: String,
    other: String,
}

async fn watch_world(edit: impl FnOnce(&mut medianest::Config)) -> Watch {
    let tv = FakePlexTv::start().await.unwrap();
    let discover = FakePlexDiscover::start().await.unwrap();
    let (tv_url, discover_url) = (tv.url(), discover.url());
    let w = world_on(
        KumaVersion::V2,
        |c| {
            c.plex.tv_url = tv_url;
            c.plex.discover_url = discover_url;
            edit(c);
        },
        file_db,
    )
    .await;
    w.overseerr
        .add_user(FakeOverseerrUser::plex(10, Some(2), "user"));
    w.overseerr
        .add_user(FakeOverseerrUser::plex(11, None, "other"));
    let account = FakeAccount::new(2, "user");
    tv.add_account(account.clone());
    discover.add_account(&account.token);
    for item in [inception(), reloaded(), mission(), breaking_bad()] {
        discover.add_item(item);
    }
    let encrypted = w.t.state.cipher().encrypt(&account.token).unwrap();
    w.t.state
        .db()
        .write(move |tx| {
            tx.execute(
                "UPDATE users SET email = 'user@example.com', plex_id = '2',
                        plex_username = 'user', plex_token = ?1
                  WHERE username = 'user'",
                [encrypted],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let other_id = insert_user(&w.t.state, "other", Some("other@example.com"), "user", None).await;
    let other = new_session(&w.t.state, &other_id).await.token;
    Watch {
        w,
        tv,
        discover,
        account,
        other_id,
        other,
    }
}

impl Watch {
    async fn send(
        &self,
        method: &str,
        token: &str,
        path: &str,
        body: Option<Value>,
    ) -> TestResponse {
        let mut c = call(method, path).bearer(token);
        if let Some(body) = body {
            c = c.json(body);
        }
        c.send(&self.w.app).await
    }

    async fn switch(&self, token: &str, enabled: bool) -> TestResponse {
        self.send(
            "PUT",
            token,
            "/api/v1/me/watchlist",
            Some(json!({ "enabled": enabled })),
        )
        .await
    }

    async fn state_of(&self, token: &str) -> Value {
        let r = self.send("GET", token, "/api/v1/me/watchlist", None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.data()
    }

    /// One scheduler pass; returns how many users were checked.
    async fn pass(&self) -> usize {
        run_due(&self.w.t.state).await.unwrap()
    }

    /// The next check is due.
    fn later(&self) {
        self.w.t.clock.advance(NEXT_CHECK_MS);
    }

    async fn count(&self, sql: &str, params: Vec<rusqlite::types::Value>) -> i64 {
        scalar(&self.w.t.state, sql, params).await
    }

    async fn requests_of(&self, user_id: &str) -> i64 {
        self.count(
            "SELECT count(*) FROM media_requests WHERE user_id = ?1",
            vec![sql_text(user_id)],
        )
        .await
    }

    async fn notifications(&self, user_id: &str, kind: &str) -> Vec<Value> {
        let token = new_session(&self.w.t.state, user_id).await.token;
        let r = self
            .send("GET", &token, "/api/v1/notifications?limit=100", None)
            .await;
        r.data()
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["type"] == kind)
            .cloned()
            .collect()
    }

    /// My requests, as the list shows them.
    async fn my_requests(&self, token: &str) -> Vec<Value> {
        let r = self
            .send("GET", token, "/api/v1/media/requests?limit=100", None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.data().as_array().unwrap().clone()
    }
}

/// The watchlist changing between checks: each new item becomes one request of the user (a
/// show with all its numbered seasons), marked as from the watchlist in the lists and in the
/// status notifications; nothing is requested twice, even after an item is removed and added
/// back; a check before the next one is due does nothing; an item the provider dropped (404)
/// or answers under `Video` does not stop the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changing_watchlist_becomes_requests_once() {
    let x = watch_world(|_| {}).await;
    let (user, user_id) = (x.w.user.clone(), x.w.user_id.clone());
    let off = x.state_of(&user).await;
    assert_eq!(off["available"], true, "{off}");
    assert_eq!(off["plexLinked"], true, "{off}");
    assert_eq!(off["enabled"], false, "off by default: {off}");
    assert_eq!(x.pass().await, 0, "nobody switched it on");

    x.discover
        .watchlist_add(&x.account.token, &inception().rating_key);
    x.discover
        .watchlist_add(&x.account.token, &breaking_bad().rating_key);
    x.discover.answer_as_video(&breaking_bad().rating_key);
    let r = x.switch(&user, true).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.data()["enabled"], true);

    assert_eq!(x.pass().await, 1);
    let mine = x.my_requests(&user).await;
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert!(mine.iter().all(|r| r["source"] == "watchlist"), "{mine:?}");
    let show = mine.iter().find(|r| r["mediaType"] == "tv").unwrap();
    assert_eq!(show["tmdbId"], 1396);
    assert_eq!(
        show["seasons"],
        json!([1, 2, 3, 4, 5]),
        "every numbered season"
    );
    let told = x.notifications(&user_id, "watchlist.requested").await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0]["message"].as_str().unwrap().contains("Inception"),
        "{told:?}"
    );
    let after = x.state_of(&user).await;
    assert!(after["lastSyncAt"].is_string(), "{after}");
    assert_eq!(after["lastResult"], "ok");
    assert_eq!(after["paused"], false);

    // Not due yet: nothing is read.
    let listed = x
        .discover
        .requests("GET /library/sections/watchlist/{filter}");
    assert_eq!(x.pass().await, 0);
    assert_eq!(
        x.discover
            .requests("GET /library/sections/watchlist/{filter}"),
        listed
    );

    // Due again with the same list: no request, no lookup, no notification.
    let looked_up = x.discover.requests("GET /library/metadata/{rating_key}");
    x.later();
    assert_eq!(x.pass().await, 1);
    assert_eq!(x.requests_of(&user_id).await, 2);
    assert_eq!(
        x.discover.requests("GET /library/metadata/{rating_key}"),
        looked_up
    );
    assert_eq!(
        x.notifications(&user_id, "watchlist.requested").await.len(),
        1
    );

    // A new item, and one the provider no longer knows.
    x.discover
        .watchlist_add(&x.account.token, &reloaded().rating_key);
    x.discover
        .watchlist_add(&x.account.token, &mission().rating_key);
    x.discover.drop_metadata(&mission().rating_key);
    x.later();
    assert_eq!(x.pass().await, 1);
    assert_eq!(x.requests_of(&user_id).await, 3);
    assert_eq!(
        x.count(
            "SELECT count(*) FROM watchlist_items WHERE outcome = 'unmatched'",
            vec![]
        )
        .await,
        1
    );

    // Removed and added back: still requested once (the request is noted, not made again).
    x.discover
        .watchlist_remove(&x.account.token, &inception().rating_key);
    x.later();
    assert_eq!(x.pass().await, 1);
    x.discover
        .watchlist_add(&x.account.token, &inception().rating_key);
    x.later();
    assert_eq!(x.pass().await, 1);
    assert_eq!(x.requests_of(&user_id).await, 3);
    assert_eq!(
        x.count(
            "SELECT count(*) FROM media_requests WHERE tmdb_id = 27205",
            vec![]
        )
        .await,
        1
    );

    // The request's status notification says where it came from.
    let id = mine.iter().find(|r| r["tmdbId"] == 27205).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = x
        .send(
            "POST",
            &x.w.admin,
            &format!("/api/v1/admin/requests/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let status = x.notifications(&user_id, "request.status").await;
    assert!(
        status.iter().any(|n| n["message"]
            .as_str()
            .unwrap()
            .contains("from a Plex watchlist")),
        "{status:?}"
    );
    // The admin list shows the source too.
    let r = x
        .send("GET", &x.w.admin, "/api/v1/admin/requests?limit=100", None)
        .await;
    assert!(
        r.data()
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["source"] == "watchlist"),
        "{}",
        r.text()
    );

    // Switched off: no more checks.
    assert_eq!(x.switch(&user, false).await.status, StatusCode::OK);
    x.later();
    assert_eq!(x.pass().await, 0);
}

/// A title someone else already asked for here is followed, not requested again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_someone_else_requested_is_followed() {
    let x = watch_world(|_| {}).await;
    let r = x
        .send(
            "POST",
            &x.other,
            "/api/v1/media/requests",
            Some(json!({"mediaType": "movie", "tmdbId": 604})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let theirs = r.data()["id"].as_str().unwrap().to_owned();
    assert_eq!(r.data()["source"], "manual");

    x.discover
        .watchlist_add(&x.account.token, &reloaded().rating_key);
    x.switch(&x.w.user, true).await;
    assert_eq!(x.pass().await, 1);
    assert_eq!(x.requests_of(&x.w.user_id).await, 0);
    assert_eq!(
        x.count(
            "SELECT count(*) FROM request_followers WHERE request_id = ?1 AND user_id = ?2",
            vec![sql_text(&theirs), sql_text(&x.w.user_id)],
        )
        .await,
        1
    );
    let told = x.notifications(&x.w.user_id, "watchlist.requested").await;
    assert!(
        told[0]["message"]
            .as_str()
            .unwrap()
            .contains("Already requested by someone else"),
        "{told:?}"
    );
    // The follower hears about the other user's request.
    let r = x
        .send(
            "POST",
            &x.w.admin,
            &format!("/api/v1/admin/requests/{theirs}/approve"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        x.notifications(&x.w.user_id, "request.status").await.len(),
        1
    );
    assert_eq!(
        x.notifications(&x.other_id, "request.status").await.len(),
        1
    );
}

/// Over the hourly quota the rest waits for a later check and the user is told once; once
/// under it again, the next item is requested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quota_holds_items_back_and_the_user_is_told_once() {
    let x = watch_world(|c| c.quotas.requests_per_hour = 1).await;
    for item in [inception(), reloaded(), mission()] {
        x.discover.watchlist_add(&x.account.token, &item.rating_key);
    }
    x.switch(&x.w.user, true).await;
    assert_eq!(x.pass().await, 1);
    assert_eq!(x.requests_of(&x.w.user_id).await, 1);
    assert_eq!(
        x.notifications(&x.w.user_id, "watchlist.quota").await.len(),
        1
    );
    assert_eq!(x.state_of(&x.w.user).await["waitingForQuota"], true);

    // Still within the hour: nothing more, and no second message.
    x.later();
    assert_eq!(x.pass().await, 1);
    assert_eq!(x.requests_of(&x.w.user_id).await, 1);
    assert_eq!(
        x.notifications(&x.w.user_id, "watchlist.quota").await.len(),
        1
    );

    // An hour on: one more request (the quota allows one an hour).
    x.w.t.clock.advance(60 * 60 * 1000);
    assert_eq!(x.pass().await, 1);
    assert_eq!(x.requests_of(&x.w.user_id).await, 2);
    assert_eq!(
        x.count("SELECT count(*) FROM media_requests", vec![]).await,
        2
    );
}

/// plex.tv refusing the token pauses the user's sync and tells them once; a Plex sign-in with
/// a fresh token resumes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_pauses_once_and_a_plex_sign_in_resumes() {
    let x = watch_world(|_| {}).await;
    x.discover
        .watchlist_add(&x.account.token, &inception().rating_key);
    x.switch(&x.w.user, true).await;
    x.discover.expire_token(&x.account.token);
    assert_eq!(x.pass().await, 1);
    let paused = x.state_of(&x.w.user).await;
    assert_eq!(paused["paused"], true, "{paused}");
    assert_eq!(paused["pausedReason"], "token_expired");
    assert!(paused["nextCheckAt"].is_null(), "{paused}");
    assert_eq!(
        x.notifications(&x.w.user_id, "watchlist.paused")
            .await
            .len(),
        1
    );
    assert_eq!(x.requests_of(&x.w.user_id).await, 0);

    // Paused: no checks, no more messages.
    let calls = x.discover.total_requests();
    x.later();
    assert_eq!(x.pass().await, 0);
    assert_eq!(x.discover.total_requests(), calls);
    assert_eq!(
        x.notifications(&x.w.user_id, "watchlist.paused")
            .await
            .len(),
        1
    );

    // Signing in with Plex again stores a new token and resumes the sync.
    let fresh = FakeAccount {
        token: "fresh-token-0123456789".into(),
        ..x.account.clone()
    };
    x.tv.add_account(fresh.clone());
    x.discover.add_account(&fresh.token);
    x.discover
        .watchlist_add(&fresh.token, &inception().rating_key);
    let r = call("POST", "/api/v1/auth/plex/pin").send(&x.w.app).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let pin_id = r.data()["pinId"].as_str().unwrap().to_owned();
    let cookie = r.set_cookie(PIN_COOKIE).unwrap().value;
    assert!(x.tv.authorize_pin(x.tv.last_pin_id().unwrap(), &fresh.token));
    let r = call("POST", &format!("/api/v1/auth/plex/pin/{pin_id}/poll"))
        .cookie(PIN_COOKIE, &cookie)
        .send(&x.w.app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let resumed = x.state_of(&x.w.user).await;
    assert_eq!(resumed["paused"], false, "{resumed}");
    assert_eq!(x.pass().await, 1);
    assert_eq!(x.requests_of(&x.w.user_id).await, 1);
}

/// The admin's switch off: nobody can switch it on and no check runs, even for a user whose
/// sync was on before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switched_off_by_the_admin_nothing_happens() {
    let x = watch_world(|c| c.plex.watchlist_sync = false).await;
    x.discover
        .watchlist_add(&x.account.token, &inception().rating_key);
    let r = x.switch(&x.w.user, true).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert_eq!(x.state_of(&x.w.user).await["available"], false);
    let id = x.w.user_id.clone();
    x.w.t
        .state
        .db()
        .write(move |tx| medianest::watchlist::store::set_enabled(tx, &id, true, 0, 0))
        .await
        .unwrap();
    assert_eq!(x.pass().await, 0);
    assert_eq!(x.discover.total_requests(), 0);
    assert_eq!(x.requests_of(&x.w.user_id).await, 0);
}

/// A user without a Plex sign-in cannot switch it on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_plex_users_can_switch_it_on() {
    let x = watch_world(|_| {}).await;
    let state = x.state_of(&x.other).await;
    assert_eq!(state["plexLinked"], false, "{state}");
    let r = x.switch(&x.other, true).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    let r = x
        .send(
            "PUT",
            &x.other,
            "/api/v1/me/watchlist",
            Some(json!({"enabled": "yes"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
}

/// A title already on the server is not requested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_available_title_is_not_requested() {
    let x = watch_world(|_| {}).await;
    x.w.overseerr
        .set_media_status(MediaType::Movie, 27205, MediaStatus::Available);
    x.discover
        .watchlist_add(&x.account.token, &inception().rating_key);
    x.switch(&x.w.user, true).await;
    assert_eq!(x.pass().await, 1);
    assert_eq!(x.requests_of(&x.w.user_id).await, 0);
    assert_eq!(
        x.count(
            "SELECT count(*) FROM watchlist_items WHERE outcome = 'available' AND tmdb_id = 27205",
            vec![]
        )
        .await,
        1
    );
    assert!(
        x.notifications(&x.w.user_id, "watchlist.requested")
            .await
            .is_empty()
    );
}

/// The discover provider failing (5xx, garbage) is an outage: the check backs off and tries
/// again later, the user is neither paused nor told, and once it answers the item is
/// requested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_outage_backs_off_and_never_pauses() {
    let x = watch_world(|_| {}).await;
    x.discover
        .watchlist_add(&x.account.token, &inception().rating_key);
    x.switch(&x.w.user, true).await;
    // Every attempt of the first check (the gateway retries a 503).
    x.discover.fail_next(3, Fault::Status(503));
    assert_eq!(x.pass().await, 1);
    let state = x.state_of(&x.w.user).await;
    assert_eq!(state["paused"], false, "{state}");
    assert_eq!(state["lastResult"], "failed", "{state}");
    assert!(state["nextCheckAt"].is_string(), "{state}");
    assert!(
        x.notifications(&x.w.user_id, "watchlist.paused")
            .await
            .is_empty()
    );

    // A broken answer is no token problem either.
    x.later();
    x.discover.fail_next(1, Fault::Garbage);
    assert_eq!(x.pass().await, 1);
    let state = x.state_of(&x.w.user).await;
    assert_eq!(state["paused"], false, "{state}");
    assert_eq!(state["lastResult"], "failed", "{state}");
    assert_eq!(x.requests_of(&x.w.user_id).await, 0);

    // Backed off: twice the interval after two failures; then it works.
    x.later();
    assert_eq!(x.pass().await, 0, "still backing off");
    x.w.t.clock.advance(2 * NEXT_CHECK_MS);
    assert_eq!(x.pass().await, 1);
    assert_eq!(x.state_of(&x.w.user).await["lastResult"], "ok");
    assert_eq!(x.requests_of(&x.w.user_id).await, 1);
}

/// A watchlist longer than a page is read to its end, page by page, and a check looks up at
/// most `MAX_NEW_PER_CHECK` new items: the rest come in the next checks, each exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_watchlist_is_paged_and_worked_through_in_bounded_checks() {
    use medianest::sim::overseerr::FakeTitle;
    use medianest::watchlist::client::PAGE_SIZE;
    use medianest::watchlist::sync::MAX_NEW_PER_CHECK;

    let x = watch_world(|c| c.quotas.requests_per_hour = 1000).await;
    let n = PAGE_SIZE as usize + 5;
    for i in 0..n as i64 {
        let id = 900_000 + i;
        x.w.overseerr
            .add_title(FakeTitle::movie(id, &format!("Film {id}"), "2020-01-01"));
        let item = FakeItem::movie(id, &format!("Film {id}"), 2020);
        x.discover.add_item(item.clone());
        x.discover.watchlist_add(&x.account.token, &item.rating_key);
    }
    x.switch(&x.w.user, true).await;
    let mut checks = 0;
    while x.requests_of(&x.w.user_id).await < n as i64 {
        assert_eq!(x.pass().await, 1);
        checks += 1;
        assert!(checks <= n.div_ceil(MAX_NEW_PER_CHECK), "too many checks");
        assert!(
            x.discover.requests("GET /library/metadata/{rating_key}")
                <= (checks * MAX_NEW_PER_CHECK) as u64
        );
        x.later();
    }
    assert_eq!(checks, n.div_ceil(MAX_NEW_PER_CHECK));
    // Every check read both pages.
    assert_eq!(
        x.discover
            .requests("GET /library/sections/watchlist/{filter}"),
        2 * checks as u64
    );
    assert_eq!(x.pass().await, 1);
    assert_eq!(x.requests_of(&x.w.user_id).await, n as i64);
    assert_eq!(
        x.discover.requests("GET /library/metadata/{rating_key}"),
        n as u64,
        "each item looked up once"
    );
}

/// The client against the simulated provider: paging, both metadata shapes, 404 for a dropped
/// item, and 401 for a token it does not know (a refusal, not an error).
#[tokio::test]
async fn the_discover_client_reads_pages_metadata_and_refusals() {
    use medianest::integrations::plextv::TokenOutcome;
    use medianest::watchlist::client::{ItemKind, PlexDiscover};

    let discover = FakePlexDiscover::start().await.unwrap();
    let clock = std::sync::Arc::new(medianest::clock::ManualClock::new(crate::support::START_MS));
    let client = PlexDiscover::new(&discover.url(), "client-id", clock);
    discover.add_account("tok");
    for item in [inception(), reloaded(), mission(), breaking_bad()] {
        discover.add_item(item.clone());
        discover.watchlist_add("tok", &item.rating_key);
    }
    let TokenOutcome::Accepted(page) = client.watchlist_page("tok", 0, 3).await.unwrap() else {
        panic!("refused");
    };
    assert_eq!((page.total_size, page.listed), (4, 3));
    assert_eq!(
        page.items[0].rating_key,
        breaking_bad().rating_key,
        "newest first"
    );
    assert_eq!(page.items[0].kind, ItemKind::Show);
    let TokenOutcome::Accepted(rest) = client.watchlist_page("tok", 3, 3).await.unwrap() else {
        panic!("refused");
    };
    assert_eq!(rest.listed, 1);
    assert_eq!(rest.items[0].rating_key, inception().rating_key);

    let TokenOutcome::Accepted(Some(meta)) = client
        .metadata("tok", &inception().rating_key)
        .await
        .unwrap()
    else {
        panic!("no metadata");
    };
    assert_eq!((meta.kind, meta.tmdb_id), (ItemKind::Movie, Some(27205)));
    discover.answer_as_video(&breaking_bad().rating_key);
    let TokenOutcome::Accepted(Some(meta)) = client
        .metadata("tok", &breaking_bad().rating_key)
        .await
        .unwrap()
    else {
        panic!("no metadata");
    };
    assert_eq!((meta.kind, meta.tmdb_id), (ItemKind::Show, Some(1396)));
    discover.drop_metadata(&mission().rating_key);
    assert_eq!(
        client.metadata("tok", &mission().rating_key).await.unwrap(),
        TokenOutcome::Accepted(None)
    );
    assert_eq!(
        client.metadata("tok", "../users").await.unwrap(),
        TokenOutcome::Accepted(None),
        "not sent"
    );
    assert_eq!(
        client.watchlist_page("nobody", 0, 3).await.unwrap(),
        TokenOutcome::Rejected
    );
    discover.expire_token("tok");
    assert_eq!(
        client
            .metadata("tok", &inception().rating_key)
            .await
            .unwrap(),
        TokenOutcome::Rejected
    );
}

/// A provider that hangs is given up on at the client's deadline: an upstream timeout (which
/// the sync treats as an outage), never a token refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_provider_is_given_up_on_at_the_deadline() {
    use medianest::error::ErrorCode;
    use medianest::watchlist::client::PlexDiscover;
    use std::time::{Duration, Instant};

    let discover = FakePlexDiscover::start().await.unwrap();
    discover.add_account("tok");
    discover.set_latency(Duration::from_secs(30));
    let clock = std::sync::Arc::new(medianest::clock::ManualClock::new(crate::support::START_MS));
    let client = PlexDiscover::with_timeout(
        &discover.url(),
        "client-id",
        clock,
        Duration::from_millis(400),
    );
    let began = Instant::now();
    let e = client.watchlist_page("tok", 0, 50).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::UpstreamTimeout, "{e}");
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    discover.set_latency(Duration::ZERO);
    discover.shutdown().await;
}

/// The demo's Plex users have watchlists whose titles the demo's Seerr knows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_plex_users_have_watchlists() {
    use medianest::integrations::plextv::TokenOutcome;
    use medianest::watchlist::client::PlexDiscover;

    let sims = medianest::demo::Simulators::start().await.unwrap();
    let mut config = medianest::Config::default();
    sims.configure(&mut config);
    assert_eq!(config.plex.discover_url, sims.plex_discover.url());
    let clock = std::sync::Arc::new(medianest::clock::ManualClock::new(crate::support::START_MS));
    let client = PlexDiscover::new(&config.plex.discover_url, "client-id", clock);
    let catalogue: Vec<i64> = sims.overseerr.titles().iter().map(|t| t.tmdb_id).collect();
    for name in ["alice", "bob"] {
        let token = sims.plex_discover.token_named(name).unwrap();
        let TokenOutcome::Accepted(page) = client.watchlist_page(&token, 0, 50).await.unwrap()
        else {
            panic!("{name}'s token refused");
        };
        assert_eq!(page.items.len(), 2, "{name}: {page:?}");
        for item in &page.items {
            let TokenOutcome::Accepted(Some(meta)) =
                client.metadata(&token, &item.rating_key).await.unwrap()
            else {
                panic!("no metadata for {item:?}");
            };
            let tmdb = meta.tmdb_id.unwrap();
            assert!(catalogue.contains(&tmdb), "{tmdb} not in {catalogue:?}");
        }
    }
    sims.shutdown().await;
}

/// A title removed while a check pages through the watchlist shifts the next one onto a page
/// already read: that read is not whole, so the title it missed is not forgotten and never
/// looked at (or requested) again.
#[tokio::test]
async fn a_title_removed_while_pages_are_read_forgets_nothing_it_missed() {
    use medianest::sim::overseerr::FakeTitle;
    use medianest::watchlist::client::PAGE_SIZE;

    let x = watch_world(|c| c.quotas.requests_per_hour = 1000).await;
    let n = PAGE_SIZE as usize + 5;
    let mut keys = Vec::new();
    for i in 0..n as i64 {
        let id = 910_000 + i;
        x.w.overseerr
            .add_title(FakeTitle::movie(id, &format!("Film {id}"), "2020-01-01"));
        let item = FakeItem::movie(id, &format!("Film {id}"), 2020);
        x.discover.add_item(item.clone());
        x.discover.watchlist_add(&x.account.token, &item.rating_key);
        keys.push(item.rating_key);
    }
    x.switch(&x.w.user, true).await;
    while x.requests_of(&x.w.user_id).await < n as i64 {
        x.pass().await;
        x.later();
    }
    let looked_up = x.discover.requests("GET /library/metadata/{rating_key}");
    assert_eq!(looked_up, n as u64);

    // The newest title goes while the first page is being read: the 51st moves onto page one.
    x.discover
        .remove_after_next_page(&x.account.token, &keys[n - 1]);
    assert_eq!(x.pass().await, 1);
    x.later();
    assert_eq!(x.pass().await, 1);
    assert_eq!(
        x.discover.requests("GET /library/metadata/{rating_key}"),
        looked_up,
        "no title looked up twice"
    );
    assert_eq!(x.requests_of(&x.w.user_id).await, n as i64);
}

/// Switching the sync off while a check works through new titles stops it before the next
/// title: nothing more is requested in the user's name.
#[tokio::test]
async fn switching_off_during_a_check_stops_it_before_the_next_title() {
    use medianest::sim::overseerr::FakeTitle;

    let x = watch_world(|c| c.quotas.requests_per_hour = 1000).await;
    for i in 0..10_i64 {
        let id = 920_000 + i;
        x.w.overseerr
            .add_title(FakeTitle::movie(id, &format!("Film {id}"), "2020-01-01"));
        let item = FakeItem::movie(id, &format!("Film {id}"), 2020);
        x.discover.add_item(item.clone());
        x.discover.watchlist_add(&x.account.token, &item.rating_key);
    }
    x.switch(&x.w.user, true).await;
    // Each lookup takes a while, so the switch lands while the check is under way.
    x.discover
        .set_latency(std::time::Duration::from_millis(150));
    let state = x.w.t.state.clone();
    let check = tokio::spawn(async move { run_due(&state).await.unwrap() });
    eventually(
        std::time::Duration::from_secs(10),
        "the check's first lookup",
        || async { (x.discover.requests("GET /library/metadata/{rating_key}") >= 1).then_some(()) },
    )
    .await;
    x.switch(&x.w.user, false).await;
    assert_eq!(check.await.unwrap(), 1);
    let made = x.requests_of(&x.w.user_id).await;
    assert!(made <= 2, "{made} requests made after the switch went off");
    assert!(
        x.discover.requests("GET /library/metadata/{rating_key}") <= 2,
        "no title looked at after the switch went off"
    );
}
