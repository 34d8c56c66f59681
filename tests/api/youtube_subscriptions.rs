//! YouTube subscriptions and download profiles (issue 15), through the router: an admin's
//! subscription is active and due at once, a user's is a proposal an admin approves or declines
//! (the owner is notified), the per-user quota holds under parallel proposals, pause and
//! resume, every validation case, duplicates, profiles and the in-use guard, the archive's
//! paging, and CSRF on cookie writes.

use axum::Router;
use axum::http::StatusCode;
use medianest::youtube::subscriptions::model::NewItem;
use medianest::youtube::subscriptions::store;
use serde_json::{Value, json};

use crate::support::{
    START_MS, TestResponse, TestState, assert_error, call, insert_user, new_session,
    test_state_with,
};

const SUBS: &str = "/api/v1/youtube/subscriptions";
const PROFILES: &str = "/api/v1/admin/youtube/profiles";

struct World {
    t: TestState,
    app: Router,
    admin: String,
    ann_id: String,
    ann: String,
    bob: String,
}

async fn world_with(max_per_user: u32) -> World {
    let t = test_state_with(|c| c.youtube.max_subscriptions_per_user = max_per_user);
    let app = t.router();
    let admin_id = insert_user(&t.state, "admin", None, "admin", None).await;
    let admin = new_session(&t.state, &admin_id).await.token;
    let ann_id = insert_user(&t.state, "ann", None, "user", None).await;
    let ann = new_session(&t.state, &ann_id).await.token;
    let bob_id = insert_user(&t.state, "bob", None, "user", None).await;
    let bob = new_session(&t.state, &bob_id).await.token;
    World {
        t,
        app,
        admin,
        ann_id,
        ann,
        bob,
    }
}

async fn world() -> World {
    world_with(5).await
}

impl World {
    async fn send(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> TestResponse {
        let mut request = call(method, path).bearer(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send(&self.app).await
    }

    /// Subscribes (or proposes) and answers the subscription's JSON.
    async fn subscribe(&self, token: &str, body: Value) -> Value {
        let r = self.send("POST", SUBS, token, Some(body)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        r.json()["data"].clone()
    }

    async fn notifications(&self, token: &str) -> Vec<Value> {
        let r = self.send("GET", "/api/v1/notifications", token, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()["data"].as_array().unwrap().clone()
    }

    async fn due_ids(&self, now: i64) -> Vec<String> {
        self.t
            .state
            .db()
            .run(move |conn| store::due(conn, now, 100))
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect()
    }
}

fn rfc3339(ms: i64) -> String {
    medianest::time::rfc3339(ms)
}

fn field_names(error: &Value) -> Vec<String> {
    let mut names: Vec<String> = error["details"]["fields"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn an_admins_subscription_is_active_and_due_at_once() {
    let w = world().await;
    let s = w
        .subscribe(
            &w.admin,
            json!({"url": "https://m.youtube.com/@SomeChannel/shorts?si=abc", "interval_hours": 1.5,
                   "keepLatest": 20, "keep_days": 30, "after": "2024-01-31", "include": "review",
                   "exclude": "(?i)sponsored", "skipShorts": true, "skip_live": false}),
        )
        .await;
    assert_eq!(s["url"], "https://www.youtube.com/@somechannel/videos");
    assert_eq!(
        (&s["kind"], &s["sourceId"], &s["status"]),
        (&json!("channel"), &json!("@somechannel"), &json!("active"))
    );
    assert_eq!(s["intervalHours"], 1.5);
    assert_eq!((&s["keepLatest"], &s["keepDays"]), (&json!(20), &json!(30)));
    assert_eq!(
        (&s["after"], &s["include"]),
        (&json!("2024-01-31"), &json!("review"))
    );
    assert_eq!(
        (&s["skipShorts"], &s["skipLive"]),
        (&json!(true), &json!(false))
    );
    assert_eq!(s["nextCheckAt"], rfc3339(START_MS));
    assert_eq!(s["lastCheckAt"], Value::Null);
    assert_eq!(
        (&s["itemCount"], &s["consecutiveFailures"]),
        (&json!(0), &json!(0))
    );
    assert_eq!(s["username"], "admin");
    let id = s["id"].as_str().unwrap().to_owned();
    assert_eq!(w.due_ids(START_MS).await, [id.as_str()]);

    // Defaults: 6 hours, live streams skipped, nothing else.
    let p = w
        .subscribe(
            &w.admin,
            json!({"url": "https://www.youtube.com/playlist?list=PLt5yu3-wZAlSLRHmI1qNm0wjyVNWw1pCU&index=3"}),
        )
        .await;
    assert_eq!(p["kind"], "playlist");
    assert_eq!(
        p["url"],
        "https://www.youtube.com/playlist?list=PLt5yu3-wZAlSLRHmI1qNm0wjyVNWw1pCU"
    );
    assert_eq!(p["intervalHours"], 6.0);
    assert_eq!(
        (&p["skipShorts"], &p["skipLive"]),
        (&json!(false), &json!(true))
    );
    assert_eq!(
        (&p["keepLatest"], &p["profileId"]),
        (&Value::Null, &Value::Null)
    );

    let r = w.send("GET", &format!("{SUBS}/{id}"), &w.admin, None).await;
    assert_eq!(r.json()["data"], s);
}

#[tokio::test]
async fn a_users_proposal_is_approved_and_the_owner_is_notified() {
    let w = world().await;
    let s = w
        .subscribe(
            &w.ann,
            json!({"url": "https://www.youtube.com/channel/UCiu-3thuViMebBjw_5nWYrA"}),
        )
        .await;
    let id = s["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (&s["status"], &s["nextCheckAt"]),
        (&json!("proposed"), &Value::Null)
    );
    assert!(
        w.due_ids(i64::MAX).await.is_empty(),
        "a proposal is never due"
    );
    let told = w.notifications(&w.admin).await;
    assert_eq!(told[0]["type"], "subscription.proposed");
    assert_eq!(told[0]["metadata"]["subscriptionId"], json!(id));

    // The owner may change the proposal while it is open.
    let r = w
        .send(
            "PATCH",
            &format!("{SUBS}/{id}"),
            &w.ann,
            Some(json!({"keepLatest": 3, "after": null})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["data"]["keepLatest"], 3);

    w.t.clock.advance(60_000);
    let r = w
        .send(
            "POST",
            &format!("/api/v1/admin/youtube/subscriptions/{id}/approve"),
            &w.admin,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let approved = r.json()["data"].clone();
    assert_eq!(approved["status"], "active");
    assert_eq!(approved["nextCheckAt"], rfc3339(START_MS + 60_000));
    assert_eq!(approved["decidedAt"], rfc3339(START_MS + 60_000));
    assert_eq!(w.due_ids(START_MS + 60_000).await, [id.as_str()]);

    let told = w.notifications(&w.ann).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["type"], "subscription.approved");
    assert_eq!(told[0]["metadata"]["subscriptionId"], json!(id));
    assert!(
        told[0]["message"]
            .as_str()
            .unwrap()
            .contains("UCiu-3thuViMebBjw_5nWYrA")
    );

    // Approved: settings are the admins' now; approving twice is a conflict.
    let r = w
        .send(
            "PATCH",
            &format!("{SUBS}/{id}"),
            &w.ann,
            Some(json!({"keepLatest": 4})),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
    let r = w
        .send(
            "PATCH",
            &format!("{SUBS}/{id}"),
            &w.admin,
            Some(json!({"intervalHours": 0.25})),
        )
        .await;
    assert_eq!(r.json()["data"]["intervalHours"], 0.25);
    let r = w
        .send(
            "POST",
            &format!("/api/v1/admin/youtube/subscriptions/{id}/approve"),
            &w.admin,
            None,
        )
        .await;
    let e = assert_error(&r, StatusCode::CONFLICT, "CONFLICT");
    assert_eq!(e["details"]["status"], "active");
}

#[tokio::test]
async fn a_declined_proposal_tells_the_reason_and_frees_the_url_and_the_quota() {
    let w = world_with(1).await;
    let url = "https://www.youtube.com/@declined";
    let s = w.subscribe(&w.ann, json!({ "url": url })).await;
    let id = s["id"].as_str().unwrap();
    let r = w
        .send(
            "POST",
            &format!("/api/v1/admin/youtube/subscriptions/{id}/decline"),
            &w.admin,
            Some(json!({"reason": "  Not family friendly  "})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let declined = r.json()["data"].clone();
    assert_eq!(
        (&declined["status"], &declined["declineReason"]),
        (&json!("declined"), &json!("Not family friendly"))
    );
    let told = w.notifications(&w.ann).await;
    assert_eq!(told[0]["type"], "subscription.declined");
    assert!(
        told[0]["message"]
            .as_str()
            .unwrap()
            .ends_with(": Not family friendly")
    );
    assert_eq!(told[0]["metadata"]["reason"], "Not family friendly");

    // The same URL may be proposed again, within the quota of 1; declined without a body.
    let again = w.subscribe(&w.ann, json!({ "url": url })).await;
    let again_id = again["id"].as_str().unwrap();
    assert_ne!(again_id, id);
    let r = call(
        "POST",
        &format!("/api/v1/admin/youtube/subscriptions/{again_id}/decline"),
    )
    .bearer(&w.admin)
    .send(&w.app)
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["data"]["declineReason"], Value::Null);
    let r = w
        .send(
            "POST",
            &format!("/api/v1/admin/youtube/subscriptions/{again_id}/decline"),
            &w.admin,
            Some(json!({"reason": "x".repeat(501)})),
        )
        .await;
    let e = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(field_names(&e), ["reason"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_proposals_never_pass_the_quota() {
    let w = world_with(3).await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (app, token) = (w.app.clone(), w.ann.clone());
        tasks.push(tokio::spawn(async move {
            call("POST", SUBS)
                .bearer(&token)
                .json(json!({ "url": format!("https://www.youtube.com/@channel{i:03}") }))
                .send(&app)
                .await
        }));
    }
    let mut created = 0;
    for task in tasks {
        let r = task.await.unwrap();
        if r.status == StatusCode::CREATED {
            created += 1;
        } else {
            let e = assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "QUOTA_EXCEEDED");
            assert_eq!(e["details"]["limit"], 3);
            assert_eq!(e["details"]["quota"], "youtube.max_subscriptions_per_user");
        }
    }
    assert_eq!(created, 3);
    // Approved and paused ones still count; another user and the admins are not limited by ann's.
    let r = w.send("GET", SUBS, &w.ann, None).await;
    let first = r.json()["data"][0]["id"].as_str().unwrap().to_owned();
    w.send(
        "POST",
        &format!("/api/v1/admin/youtube/subscriptions/{first}/approve"),
        &w.admin,
        None,
    )
    .await;
    w.send("POST", &format!("{SUBS}/{first}/pause"), &w.admin, None)
        .await;
    let r = w
        .send(
            "POST",
            SUBS,
            &w.ann,
            Some(json!({"url": "https://www.youtube.com/@onemore"})),
        )
        .await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "QUOTA_EXCEEDED");
    w.subscribe(&w.bob, json!({"url": "https://www.youtube.com/@onemore"}))
        .await;
    for i in 0..4 {
        w.subscribe(
            &w.admin,
            json!({ "url": format!("https://www.youtube.com/@admin{i}") }),
        )
        .await;
    }
    // Deleting one frees a place.
    let r = w
        .send("DELETE", &format!("{SUBS}/{first}"), &w.ann, None)
        .await;
    assert_eq!(r.json()["data"], json!({"deleted": true}));
    w.subscribe(&w.ann, json!({"url": "https://www.youtube.com/@another"}))
        .await;
}

#[tokio::test]
async fn pause_and_resume() {
    let w = world().await;
    let s = w
        .subscribe(
            &w.admin,
            json!({"url": "https://www.youtube.com/user/SomeOne"}),
        )
        .await;
    let id = s["id"].as_str().unwrap().to_owned();
    let r = w
        .send("POST", &format!("{SUBS}/{id}/pause"), &w.ann, None)
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
    let r = w
        .send("POST", &format!("{SUBS}/{id}/pause"), &w.admin, None)
        .await;
    assert_eq!(
        (
            &r.json()["data"]["status"],
            &r.json()["data"]["nextCheckAt"]
        ),
        (&json!("paused"), &Value::Null)
    );
    assert!(w.due_ids(i64::MAX).await.is_empty());
    let r = w
        .send("POST", &format!("{SUBS}/{id}/pause"), &w.admin, None)
        .await;
    assert_error(&r, StatusCode::CONFLICT, "CONFLICT");

    w.t.clock.advance(3_600_000);
    let r = w
        .send("POST", &format!("{SUBS}/{id}/resume"), &w.admin, None)
        .await;
    let resumed = r.json()["data"].clone();
    assert_eq!(resumed["status"], "active");
    assert_eq!(resumed["nextCheckAt"], rfc3339(START_MS + 3_600_000));
    assert_eq!(w.due_ids(START_MS + 3_600_000).await, [id.as_str()]);

    let proposal = w
        .subscribe(&w.ann, json!({"url": "https://www.youtube.com/c/Proposal"}))
        .await;
    let pid = proposal["id"].as_str().unwrap();
    for action in ["pause", "resume"] {
        let r = w
            .send("POST", &format!("{SUBS}/{pid}/{action}"), &w.admin, None)
            .await;
        let e = assert_error(&r, StatusCode::CONFLICT, "CONFLICT");
        assert_eq!(e["details"]["status"], "proposed");
    }
    let r = w
        .send("POST", &format!("{SUBS}/nope/resume"), &w.admin, None)
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test]
async fn bad_input_is_named_field_by_field() {
    let w = world().await;
    let r = w
        .send(
            "POST",
            SUBS,
            &w.admin,
            Some(
                json!({"url": "https://www.youtube.com/@fine", "intervalHours": 200,
                        "keepLatest": 0, "keepDays": 4000, "after": "2024-02-30",
                        "include": "(", "exclude": "e".repeat(201), "skipShorts": "yes",
                        "skipLive": null, "profile": 3, "colour": "red"}),
            ),
        )
        .await;
    let e = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(
        field_names(&e),
        [
            "after",
            "colour",
            "exclude",
            "include",
            "intervalHours",
            "keepDays",
            "keepLatest",
            "profile",
            "skipLive",
            "skipShorts"
        ]
    );
    assert_eq!(
        e["details"]["fields"]["include"],
        "is not a valid regular expression"
    );
    let r = w
        .send("POST", SUBS, &w.admin, Some(json!({"interval_hours": 1})))
        .await;
    let e = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(field_names(&e), ["url"]);
    let r = w
        .send("POST", SUBS, &w.admin, Some(json!(["not", "an", "object"])))
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    for url in [
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        "https://www.youtube.com/@x;rm -rf ~",
        "https://evil.example/@handle",
        "--exec=sh",
    ] {
        let r = w
            .send("POST", SUBS, &w.admin, Some(json!({ "url": url })))
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_YOUTUBE_URL");
    }
    let r = w
        .send(
            "POST",
            SUBS,
            &w.admin,
            Some(json!({"url": "https://www.youtube.com/@fine", "profile": "no-such-profile"})),
        )
        .await;
    let e = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(field_names(&e), ["profile"]);
    let r = w
        .send("GET", &format!("{SUBS}?status=gone"), &w.admin, None)
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    // A PATCH cannot move the URL, and is checked like a create.
    let s = w
        .subscribe(&w.admin, json!({"url": "https://www.youtube.com/@fine"}))
        .await;
    let id = s["id"].as_str().unwrap();
    let r = w
        .send(
            "PATCH",
            &format!("{SUBS}/{id}"),
            &w.admin,
            Some(json!({"url": "https://www.youtube.com/@other", "keepDays": 0})),
        )
        .await;
    let e = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(field_names(&e), ["keepDays", "url"]);
    assert!(nothing_stored_but(&w, 1).await);
}

async fn nothing_stored_but(w: &World, n: i64) -> bool {
    crate::support::scalar(
        &w.t.state,
        "SELECT count(*) FROM youtube_subscriptions",
        vec![],
    )
    .await
        == n
}

#[tokio::test]
async fn a_duplicate_names_the_existing_subscription() {
    let w = world().await;
    let s = w
        .subscribe(&w.ann, json!({"url": "https://www.youtube.com/@Dup"}))
        .await;
    for (token, url) in [
        (&w.admin, "https://youtube.com/@dup/videos"),
        (&w.bob, "https://www.youtube.com/@DUP/streams?x=1"),
    ] {
        let r = w
            .send("POST", SUBS, token, Some(json!({ "url": url })))
            .await;
        let e = assert_error(&r, StatusCode::CONFLICT, "CONFLICT");
        assert_eq!(e["details"]["existing"]["id"], s["id"]);
        assert_eq!(e["details"]["existing"]["status"], "proposed");
    }
}

#[tokio::test]
async fn users_see_their_own_and_admins_everyones() {
    let w = world().await;
    let a = w
        .subscribe(&w.ann, json!({"url": "https://www.youtube.com/@anns"}))
        .await;
    let b = w
        .subscribe(&w.bob, json!({"url": "https://www.youtube.com/@bobs"}))
        .await;
    let m = w
        .subscribe(&w.admin, json!({"url": "https://www.youtube.com/@admins"}))
        .await;
    let ids = |r: TestResponse| {
        r.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(w.send("GET", SUBS, &w.ann, None).await),
        [a["id"].as_str().unwrap()]
    );
    assert_eq!(
        ids(w.send("GET", SUBS, &w.admin, None).await),
        [
            m["id"].as_str().unwrap(),
            b["id"].as_str().unwrap(),
            a["id"].as_str().unwrap()
        ]
    );
    assert_eq!(
        ids(w
            .send(
                "GET",
                &format!("{SUBS}?status=proposed&limit=1"),
                &w.admin,
                None
            )
            .await),
        [b["id"].as_str().unwrap()]
    );
    let r = w
        .send("GET", &format!("{SUBS}?limit=2"), &w.admin, None)
        .await;
    let cursor = r.json()["meta"]["nextCursor"].as_str().unwrap().to_owned();
    let r = w
        .send(
            "GET",
            &format!("{SUBS}?limit=2&cursor={cursor}"),
            &w.admin,
            None,
        )
        .await;
    assert_eq!(ids(r), [a["id"].as_str().unwrap()]);
    // A cursor of the unfiltered list is not one of the proposals' list.
    let r = w
        .send(
            "GET",
            &format!("{SUBS}?status=proposed&cursor={cursor}"),
            &w.admin,
            None,
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_CURSOR");
    for (method, suffix) in [("GET", ""), ("DELETE", ""), ("GET", "/items")] {
        let r = w
            .send(
                method,
                &format!("{SUBS}/{}{suffix}", a["id"].as_str().unwrap()),
                &w.bob,
                None,
            )
            .await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    }
}

#[tokio::test]
async fn profiles_are_managed_and_one_in_use_stays() {
    let w = world().await;
    let r = w
        .send(
            "POST",
            PROFILES,
            &w.admin,
            Some(json!({"name": "Plex 1080p", "maxHeight": 1080, "container": "mp4",
                        "subtitles": {"languages": ["en", "de"], "mode": "sidecar"},
                        "sponsorblock": {"mode": "remove", "categories": ["sponsor", "selfpromo"]}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let p = r.json()["data"].clone();
    let pid = p["id"].as_str().unwrap().to_owned();
    assert_eq!(
        p,
        json!({"id": pid, "name": "Plex 1080p", "maxHeight": 1080, "container": "mp4",
               "subtitles": {"languages": ["en", "de"], "mode": "sidecar"},
               "sponsorblock": {"mode": "remove", "categories": ["sponsor", "selfpromo"]},
               "subscriptions": 0, "createdAt": rfc3339(START_MS), "updatedAt": rfc3339(START_MS)})
    );
    let r = w
        .send(
            "POST",
            PROFILES,
            &w.admin,
            Some(json!({"name": "plex 1080P"})),
        )
        .await;
    let e = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(field_names(&e), ["name"]);
    let r = w
        .send(
            "POST",
            PROFILES,
            &w.admin,
            Some(json!({"name": "Bad", "sponsorblock": {"mode": "remove", "categories": ["poi_highlight"]}})),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    let r = w
        .send(
            "PUT",
            &format!("{PROFILES}/{pid}"),
            &w.admin,
            Some(json!({"name": "Plex 720p", "maxHeight": 720,
                        "sponsorblock": {"mode": "mark", "categories": ["chapter"]}})),
        )
        .await;
    let updated = r.json()["data"].clone();
    assert_eq!(
        (&updated["name"], &updated["maxHeight"]),
        (&json!("Plex 720p"), &json!(720))
    );
    assert_eq!(
        updated["subtitles"],
        json!({"languages": [], "mode": "embedded"})
    );
    let r = w
        .send(
            "PUT",
            &format!("{PROFILES}/nope"),
            &w.admin,
            Some(json!({"name": "x"})),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");

    let s = w
        .subscribe(
            &w.ann,
            json!({"url": "https://www.youtube.com/@profiled", "profile": pid}),
        )
        .await;
    assert_eq!(s["profileId"], json!(pid));
    let r = w.send("GET", PROFILES, &w.admin, None).await;
    assert_eq!(r.json()["data"][0]["subscriptions"], 1);
    let r = w
        .send("DELETE", &format!("{PROFILES}/{pid}"), &w.admin, None)
        .await;
    let e = assert_error(&r, StatusCode::CONFLICT, "CONFLICT");
    assert_eq!(e["details"]["subscriptions"], json!([s["id"]]));
    // Once no subscription uses it, it goes.
    let sid = s["id"].as_str().unwrap();
    let r = w
        .send(
            "PATCH",
            &format!("{SUBS}/{sid}"),
            &w.ann,
            Some(json!({"profile": null})),
        )
        .await;
    assert_eq!(r.json()["data"]["profileId"], Value::Null);
    let r = w
        .send("DELETE", &format!("{PROFILES}/{pid}"), &w.admin, None)
        .await;
    assert_eq!(r.json()["data"], json!({"deleted": true}));
    let r = w
        .send("GET", &format!("{PROFILES}/{pid}"), &w.admin, None)
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test]
async fn the_archive_pages_newest_first() {
    let w = world().await;
    let s = w
        .subscribe(&w.ann, json!({"url": "https://www.youtube.com/@archived"}))
        .await;
    let id = s["id"].as_str().unwrap().to_owned();
    for batch in 0..3_i64 {
        let sub = id.clone();
        w.t.state
            .db()
            .write(move |tx| {
                let items: Vec<NewItem> = (0..5)
                    .map(|i| NewItem {
                        video_id: format!("vid{batch}xxxxxx{i}"),
                        status: if i == 0 { "skipped" } else { "queued" }.to_owned(),
                        reason: (i == 0).then(|| "short".to_owned()),
                        title: Some(format!("Video {batch}.{i}")),
                        upload_date: Some("2025-05-01".to_owned()),
                        download_id: None,
                    })
                    .collect();
                store::record_items(tx, &sub, &items, START_MS + batch * 1000)
            })
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut path = format!("{SUBS}/{id}/items?limit=4");
    loop {
        let r = w.send("GET", &path, &w.ann, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let body = r.json();
        for item in body["data"].as_array().unwrap() {
            seen.push((
                item["createdAt"].as_str().unwrap().to_owned(),
                item["videoId"].as_str().unwrap().to_owned(),
            ));
        }
        match body["meta"]["nextCursor"].as_str() {
            Some(c) => path = format!("{SUBS}/{id}/items?limit=4&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 15);
    assert_eq!(seen[0].0, rfc3339(START_MS + 2000), "newest batch first");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.0.cmp(&a.0));
    assert_eq!(
        seen.iter().map(|s| &s.0).collect::<Vec<_>>(),
        sorted.iter().map(|s| &s.0).collect::<Vec<_>>()
    );
    let mut unique: Vec<&String> = seen.iter().map(|s| &s.1).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 15, "no duplicates across pages");

    let r = w
        .send("GET", &format!("{SUBS}/{id}/items?limit=1"), &w.ann, None)
        .await;
    let first = r.json()["data"][0].clone();
    assert_eq!(first["status"], "queued");
    assert_eq!(first["files"], json!([]));
    assert_eq!(first["keep"], false);
    let r = w.send("GET", &format!("{SUBS}/{id}"), &w.ann, None).await;
    assert_eq!(r.json()["data"]["itemCount"], 15);
    // A cursor of another subscription's archive is refused.
    let other = w
        .subscribe(&w.ann, json!({"url": "https://www.youtube.com/@other"}))
        .await;
    let r = w
        .send("GET", &format!("{SUBS}/{id}/items?limit=1"), &w.ann, None)
        .await;
    let cursor = r.json()["meta"]["nextCursor"].as_str().unwrap().to_owned();
    let r = w
        .send(
            "GET",
            &format!(
                "{SUBS}/{}/items?cursor={cursor}",
                other["id"].as_str().unwrap()
            ),
            &w.ann,
            None,
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_CURSOR");
    let r = w
        .send("GET", &format!("{SUBS}/{id}/items?limit=0"), &w.ann, None)
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
}

#[tokio::test]
async fn cookie_writes_need_the_csrf_token() {
    let w = world().await;
    let session = new_session(&w.t.state, &w.ann_id).await;
    let body = json!({"url": "https://www.youtube.com/@csrf"});
    let r = call("POST", SUBS)
        .session(&session.token)
        .json(body.clone())
        .send(&w.app)
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "CSRF_TOKEN_INVALID");
    let r = call("POST", SUBS)
        .session(&session.token)
        .csrf(&session.csrf_token)
        .json(body)
        .send(&w.app)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = call("GET", SUBS).session(&session.token).send(&w.app).await;
    assert_eq!(r.status, StatusCode::OK);
}
