//! Problem reports end to end through the simulated Seerr and its ISSUE_* webhooks: a report is
//! sent as the user's Seerr account and stored with Seerr's issue id; an admin's resolve with a
//! comment reaches Seerr and notifies the reporter once, whatever the webhooks echo; comments and
//! reopens made in Seerr notify; redeliveries change nothing; bad input, titles that are not
//! available and a Seerr that is down store nothing.

use std::time::Duration;

use axum::http::StatusCode;
use medianest::integrations::overseerr::{MediaType, NotificationType};
use medianest::sim::overseerr::permission;
use serde_json::{Value, json};

use crate::media::{HOOK_SECRET, Media, media_world_with};
use crate::support::{RunningServer, assert_error, eventually, insert_user, new_session, scalar};

/// A media world whose Seerr sends its webhooks to a running MediaNest, where "user" (Seerr
/// user 10) may report issues, The Matrix (603) is available and Game of Thrones (1399)
/// partially.
struct World {
    m: Media,
    server: RunningServer,
    hook: String,
}

async fn world() -> World {
    world_with(|_| {}).await
}

async fn world_with(configure: impl FnOnce(&mut medianest::Config)) -> World {
    let m = media_world_with(configure).await;
    let server = RunningServer::start(&m.w.t.state, m.w.app.clone()).await;
    let hook = format!("http://{}/api/v1/webhooks/seerr", server.addr);
    let seerr = &m.w.overseerr;
    seerr.set_webhook_target(&hook, Some(HOOK_SECRET));
    seerr.set_permissions(10, permission::REQUEST | permission::CREATE_ISSUES);
    seerr.set_permissions(11, permission::REQUEST | permission::CREATE_ISSUES);
    seerr.set_media_available(MediaType::Movie, 603);
    seerr.set_season_status(
        1399,
        1,
        medianest::integrations::overseerr::MediaStatus::Available,
    );
    World { m, server, hook }
}

impl World {
    async fn report(&self, token: &str, body: Value) -> crate::support::TestResponse {
        self.m.post(token, "/api/v1/media/problems", body).await
    }

    async fn problems_notified(&self, user_id: &str) -> Vec<Value> {
        let token = new_session(&self.m.w.t.state, user_id).await.token;
        let r = self.m.get(&token, "/api/v1/notifications?limit=100").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.data()
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| {
                n["type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("problem."))
            })
            .cloned()
            .collect()
    }

    async fn rows(&self) -> i64 {
        scalar(
            &self.m.w.t.state,
            "SELECT count(*) FROM problem_reports",
            vec![],
        )
        .await
    }

    /// Waits until Seerr has had MediaNest's answer to `n` issue webhooks.
    async fn webhooks_answered(&self, n: usize) -> Vec<(NotificationType, u16)> {
        eventually(Duration::from_secs(10), "the issue webhooks", || async {
            let sent = self.m.w.overseerr.issue_webhooks();
            (sent.len() >= n).then(|| {
                sent.iter()
                    .map(|s| (s.kind.clone(), s.answer.clone().unwrap_or(0)))
                    .collect()
            })
        })
        .await
    }

    /// With `overseerr.fallback_to_admin`: the MediaNest admin is Seerr's owner (user 1, by
    /// email) and a new user "kim" has no Seerr account, so kim's reports are made as user 1.
    /// Kim's id and session.
    async fn kim_without_seerr_account(&self) -> (String, String) {
        let state = &self.m.w.t.state;
        state
            .db()
            .write(|tx| {
                tx.execute(
                    "UPDATE users SET email = 'owner@example.com' WHERE role = 'admin'",
                    [],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        state.media().clear();
        let kim = insert_user(state, "kim", Some("kim@example.com"), "user", None).await;
        let token = new_session(state, &kim).await.token;
        (kim, token)
    }

    /// The user reports `body`: the report's id and Seerr issue id, once Seerr has had
    /// MediaNest's answer to its `ISSUE_CREATED`.
    async fn reported(&self, body: Value) -> (String, i64) {
        let r = self.report(&self.m.w.user, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let id = r.data()["id"].as_str().unwrap().to_owned();
        let issue_id = r.data()["seerrIssueId"].as_i64().unwrap();
        self.webhooks_answered(1).await;
        (id, issue_id)
    }

    async fn problem(&self, token: &str, id: &str) -> Value {
        let r = self
            .m
            .get(token, &format!("/api/v1/media/problems/{id}"))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.data().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_goes_to_seerr_as_the_user_and_is_stored_with_its_issue_id() {
    let w = world().await;
    let r = w
        .report(
            &w.m.w.user,
            json!({"mediaType": "tv", "tmdbId": 1399, "type": "subtitles",
                   "message": "Subtitles drift after ten minutes", "season": 1, "episode": 3}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let problem = r.data().clone();
    let issue_id = problem["seerrIssueId"].as_i64().unwrap();
    assert_eq!(problem["status"], "open");
    assert_eq!(problem["type"], "subtitles");
    assert_eq!(problem["title"], "Game of Thrones");
    assert_eq!(
        (problem["season"].as_i64(), problem["episode"].as_i64()),
        (Some(1), Some(3))
    );

    let issue = w.m.w.overseerr.issue(issue_id).unwrap();
    assert_eq!(issue.created_by, 10, "made as the user's Seerr account");
    assert_eq!(
        (
            issue.issue_type,
            issue.problem_season,
            issue.problem_episode
        ),
        (3, 1, 3)
    );
    assert_eq!(
        issue.comments[0].message,
        "Subtitles drift after ten minutes"
    );

    // ISSUE_CREATED comes back and finds the row: still one, nobody notified.
    let sent = w.webhooks_answered(1).await;
    assert_eq!(sent, [(NotificationType::IssueCreated, 200)]);
    assert_eq!(w.rows().await, 1);
    assert!(w.problems_notified(&w.m.w.user_id).await.is_empty());

    let mine = w.m.get(&w.m.w.user, "/api/v1/media/problems").await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.text());
    assert_eq!(mine.data().as_array().unwrap().len(), 1);
    let theirs = w.m.get(&w.m.other, "/api/v1/media/problems").await;
    assert!(theirs.data().as_array().unwrap().is_empty());
    let id = problem["id"].as_str().unwrap();
    let hidden =
        w.m.get(&w.m.other, &format!("/api/v1/media/problems/{id}"))
            .await;
    assert_error(&hidden, StatusCode::NOT_FOUND, "NOT_FOUND");
    w.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_resolves_with_a_comment_and_the_reporter_is_notified_once() {
    let w = world().await;
    let (id, issue_id) = w
        .reported(json!({"mediaType": "movie", "tmdbId": 603, "type": "audio",
                                    "message": "No sound"}))
        .await;

    let open =
        w.m.get(&w.m.w.admin, "/api/v1/admin/problems?status=open")
            .await;
    assert_eq!(open.status, StatusCode::OK, "{}", open.text());
    assert_eq!(open.data()[0]["id"], id.as_str());
    assert_eq!(open.data()[0]["username"], "user");

    let r =
        w.m.post(
            &w.m.w.admin,
            &format!("/api/v1/admin/problems/{id}/resolve"),
            json!({"comment": "Replaced the file"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.data()["status"], "resolved");
    assert_eq!(r.data()["comments"][0]["message"], "Replaced the file");

    let issue = w.m.w.overseerr.issue(issue_id).unwrap();
    assert_eq!(issue.status, 2, "resolved on Seerr");
    assert_eq!(issue.comments.last().unwrap().message, "Replaced the file");
    assert_eq!(
        issue.comments.last().unwrap().user,
        1,
        "the API key's admin"
    );

    // ISSUE_COMMENT and ISSUE_RESOLVED echo the change: both answered, nothing more happens.
    let sent = w.webhooks_answered(3).await;
    assert!(
        sent.contains(&(NotificationType::IssueComment, 200)),
        "{sent:?}"
    );
    assert!(
        sent.contains(&(NotificationType::IssueResolved, 200)),
        "{sent:?}"
    );
    let got = w.problems_notified(&w.m.w.user_id).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["type"], "problem.resolved");
    assert!(
        got[0]["message"]
            .as_str()
            .unwrap()
            .contains("Replaced the file"),
        "{got:?}"
    );
    let stored = w.problem(&w.m.w.user, &id).await;
    assert_eq!(stored["commentCount"], 1);
    assert_eq!(stored["comments"].as_array().unwrap().len(), 1);

    // The reporter answers here: sent to Seerr as them, echoed back without notifying them.
    let r =
        w.m.post(
            &w.m.w.user,
            &format!("/api/v1/media/problems/{id}/comments"),
            json!({"message": "Thanks, it plays now"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.data()["commentCount"], 2);
    let last =
        w.m.w
            .overseerr
            .issue(issue_id)
            .unwrap()
            .comments
            .last()
            .cloned()
            .unwrap();
    assert_eq!(
        (last.user, last.message.as_str()),
        (10, "Thanks, it plays now")
    );
    let sent = w.webhooks_answered(4).await;
    assert_eq!(
        sent.iter()
            .filter(|(k, _)| *k == NotificationType::IssueComment)
            .count(),
        2
    );
    assert_eq!(w.problem(&w.m.w.user, &id).await["commentCount"], 2);
    assert_eq!(w.problems_notified(&w.m.w.user_id).await.len(), 1);
    // Someone else cannot comment on it.
    let r =
        w.m.post(
            &w.m.other,
            &format!("/api/v1/media/problems/{id}/comments"),
            json!({"message": "me too"}),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");

    let open = w.m.get(&w.m.w.admin, "/api/v1/admin/problems").await;
    assert!(
        open.data().as_array().unwrap().is_empty(),
        "{}",
        open.text()
    );
    let resolved =
        w.m.get(&w.m.w.admin, "/api/v1/admin/problems?status=resolved")
            .await;
    assert_eq!(resolved.data().as_array().unwrap().len(), 1);
    w.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_and_reopens_made_in_seerr_notify_and_redeliveries_change_nothing() {
    let w = world().await;
    let (id, issue_id) = w
        .reported(json!({"mediaType": "movie", "tmdbId": 603, "type": "video",
                                    "message": "Green artefacts"}))
        .await;
    let seerr = &w.m.w.overseerr;

    // The Seerr admin comments in Seerr's UI.
    assert_eq!(seerr.comment_in_seerr(1, issue_id, "Which minute?"), 200);
    w.webhooks_answered(2).await;
    let got = w.problems_notified(&w.m.w.user_id).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["type"], "problem.comment");
    assert!(
        got[0]["message"]
            .as_str()
            .unwrap()
            .contains("Which minute?")
    );

    // The same comment delivered again: no new comment, no new notification.
    let again = seerr
        .issue_webhook_payload(&NotificationType::IssueComment, issue_id)
        .unwrap();
    let status = post_hook(&w.hook, &again).await;
    assert_eq!(status, 200);
    assert_eq!(w.problem(&w.m.w.user, &id).await["commentCount"], 1);
    assert_eq!(w.problems_notified(&w.m.w.user_id).await.len(), 1);

    // The reporter answers in Seerr: stored, but they are not told about their own words.
    assert_eq!(seerr.comment_in_seerr(10, issue_id, "Around 00:42"), 200);
    w.webhooks_answered(3).await;
    assert_eq!(w.problem(&w.m.w.user, &id).await["commentCount"], 2);
    assert_eq!(w.problems_notified(&w.m.w.user_id).await.len(), 1);

    // Resolved then reopened in Seerr: one notification each, redeliveries none.
    assert_eq!(
        seerr.set_issue_status_in_seerr(1, issue_id, "resolved"),
        200
    );
    w.webhooks_answered(4).await;
    assert_eq!(seerr.set_issue_status_in_seerr(1, issue_id, "open"), 200);
    w.webhooks_answered(5).await;
    let reopened = seerr
        .issue_webhook_payload(&NotificationType::IssueReopened, issue_id)
        .unwrap();
    assert_eq!(reopened["issue"]["issue_status"], "OPEN");
    assert_eq!(post_hook(&w.hook, &reopened).await, 200);
    let mut kinds: Vec<String> = w
        .problems_notified(&w.m.w.user_id)
        .await
        .iter()
        .map(|n| n["type"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        ["problem.comment", "problem.reopened", "problem.resolved"]
    );
    assert_eq!(w.problem(&w.m.w.user, &id).await["status"], "open");
    w.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issue_made_in_seerr_is_stored_for_its_reporter_or_ignored() {
    let w = world().await;
    let seerr = &w.m.w.overseerr;
    // "user" reports in Seerr's own UI: MediaNest adopts it for them.
    let issue = seerr
        .report_issue_in_seerr(10, MediaType::Movie, 603, 2, "Audio out of sync", (0, 0))
        .unwrap();
    w.webhooks_answered(1).await;
    let stored = eventually(Duration::from_secs(5), "the adopted problem", || async {
        let r = w.m.get(&w.m.w.user, "/api/v1/media/problems").await;
        r.data().as_array().and_then(|a| a.first().cloned())
    })
    .await;
    assert_eq!(stored["seerrIssueId"], issue);
    assert_eq!(stored["type"], "audio");
    assert_eq!(stored["message"], "Audio out of sync");
    assert_eq!(stored["title"], "The Matrix");
    // The Seerr admin (nobody here) reports one: ignored cleanly.
    seerr
        .report_issue_in_seerr(1, MediaType::Movie, 603, 1, "Pixelated", (0, 0))
        .unwrap();
    let sent = w.webhooks_answered(2).await;
    assert_eq!(sent[1], (NotificationType::IssueCreated, 200));
    assert_eq!(w.rows().await, 1);
    w.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_reports_titles_not_available_and_a_seerr_that_is_down_store_nothing() {
    let w = world().await;
    let user = &w.m.w.user;
    for (body, field) in [
        (
            json!({"mediaType": "movie", "tmdbId": 603, "type": "smell", "message": "x"}),
            "type",
        ),
        (
            json!({"mediaType": "movie", "tmdbId": 603, "type": "video", "message": "  "}),
            "message",
        ),
        (
            json!({"mediaType": "movie", "tmdbId": 603, "type": "video", "message": "x".repeat(2001)}),
            "message",
        ),
        (
            json!({"mediaType": "movie", "tmdbId": 603, "type": "video", "message": "x", "season": 1}),
            "season",
        ),
        (
            json!({"mediaType": "tv", "tmdbId": 1399, "type": "video", "message": "x", "episode": 1}),
            "episode",
        ),
        (
            json!({"mediaType": "tv", "tmdbId": 1399, "type": "video", "message": "x", "season": 12}),
            "season",
        ),
        (
            json!({"mediaType": "tv", "tmdbId": 1399, "type": "video", "message": "x", "season": 8, "episode": 7}),
            "episode",
        ),
        (
            json!({"mediaType": "book", "tmdbId": 1, "type": "video", "message": "x"}),
            "mediaType",
        ),
    ] {
        let r = w.report(user, body.clone()).await;
        let e = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert!(e["details"]["fields"][field].is_string(), "{body}: {e}");
    }
    // Inception was never requested, let alone downloaded.
    let r = w
        .report(
            user,
            json!({"mediaType": "movie", "tmdbId": 27205, "type": "video", "message": "x"}),
        )
        .await;
    assert_error(&r, StatusCode::CONFLICT, "CONFLICT");
    let r = w
        .report(
            user,
            json!({"mediaType": "movie", "tmdbId": 999_999, "type": "video", "message": "x"}),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    // A Seerr account without the issue permission.
    w.m.w.overseerr.set_permissions(10, permission::REQUEST);
    let r = w
        .report(
            user,
            json!({"mediaType": "movie", "tmdbId": 603, "type": "video", "message": "x"}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
    w.m.w
        .overseerr
        .set_permissions(10, permission::REQUEST | permission::CREATE_ISSUES);
    // Seerr fails the create call, then is gone.
    w.m.w.overseerr.fail_next_on_route(
        "/api/v1/issue",
        1,
        medianest::sim::overseerr::Fault::Status(500),
    );
    let r = w
        .report(
            user,
            json!({"mediaType": "movie", "tmdbId": 603, "type": "video", "message": "x"}),
        )
        .await;
    // assert_error also checks the correlation id in the body against the header.
    assert_error(&r, StatusCode::BAD_GATEWAY, "UPSTREAM_ERROR");
    w.m.w
        .set_url("overseerr", &crate::support::services::refused_url())
        .await;
    w.m.w.t.state.media().clear();
    let r = w
        .report(
            user,
            json!({"mediaType": "movie", "tmdbId": 603, "type": "video", "message": "x"}),
        )
        .await;
    assert!(
        (502..=504).contains(&r.status.as_u16()),
        "{}: {}",
        r.status,
        r.text()
    );
    assert_eq!(w.rows().await, 0);
    assert!(w.m.w.overseerr.issues().is_empty());
    w.server.stop().await.unwrap();
}

/// Posts a webhook body as Seerr's agent does.
async fn post_hook(url: &str, body: &Value) -> u16 {
    let (url, body) = (url.to_owned(), serde_json::to_vec(body).unwrap());
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        agent
            .post(&url)
            .header("Authorization", HOOK_SECRET)
            .header("Content-Type", "application/json")
            .send(&body[..])
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_reports_at_most_ten_problems_an_hour() {
    let w = world().await;
    let (user, now) = (w.m.w.user_id.clone(), w.m.w.t.state.clock().now_ms());
    w.m.w
        .t
        .state
        .db()
        .write(move |tx| {
            for n in 0..10 {
                tx.execute(
                    "INSERT INTO problem_reports (id, user_id, media_type, tmdb_id, title,
                                                  seerr_media_id, seerr_issue_id, problem_type,
                                                  message, created_at, updated_at)
                     VALUES (?1, ?2, 'movie', 603, 'The Matrix', 1, ?3, 'video', 'x', ?4, ?4)",
                    rusqlite::params![format!("p{n}"), user, 1000 + n, now - 60_000],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let body = json!({"mediaType": "movie", "tmdbId": 603, "type": "video", "message": "x"});
    let r = w.report(&w.m.w.user, body.clone()).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "QUOTA_EXCEEDED");
    assert!(w.m.w.overseerr.issues().is_empty(), "Seerr was not asked");
    // Admins are not counted.
    let r = w.report(&w.m.w.admin, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    w.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolve_seerr_refuses_is_a_403_and_changes_nothing_there() {
    let w = world().await;
    let (id, issue_id) = w
        .reported(
            json!({"mediaType": "movie", "tmdbId": 603, "type": "audio", "message": "No sound"}),
        )
        .await;
    // The admin's own Seerr account (found by email) may report issues but not manage them.
    let seerr = &w.m.w.overseerr;
    seerr.add_user(medianest::sim::overseerr::FakeOverseerrUser::plex(
        12, None, "boss",
    ));
    assert!(seerr.set_permissions(12, permission::REQUEST | permission::CREATE_ISSUES));
    w.m.w
        .t
        .state
        .db()
        .write(|tx| {
            tx.execute(
                "UPDATE users SET email = 'boss@example.com' WHERE role = 'admin'",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    w.m.w.t.state.media().clear();
    let r =
        w.m.post(
            &w.m.w.admin,
            &format!("/api/v1/admin/problems/{id}/resolve"),
            json!({"comment": "Replaced the file"}),
        )
        .await;
    let e = assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
    assert!(
        e["details"]["reason"]
            .as_str()
            .unwrap()
            .contains("Manage Issues"),
        "{e}"
    );
    let issue = seerr.issue(issue_id).unwrap();
    assert_eq!(issue.status, 1, "still open on Seerr");
    assert_eq!(issue.comments.len(), 1, "no comment left behind on Seerr");
    let stored = w.problem(&w.m.w.user, &id).await;
    assert_eq!(
        (stored["status"].as_str(), stored["commentCount"].as_i64()),
        (Some("open"), Some(0))
    );
    w.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_reports_cannot_pass_the_hourly_cap_and_comments_have_one() {
    let w = world().await;
    let body = json!({"mediaType": "movie", "tmdbId": 603, "type": "video", "message": "x"});
    let sent =
        futures_util::future::join_all((0..20).map(|_| w.report(&w.m.w.user, body.clone()))).await;
    let created = sent
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    let refused = sent
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((created, refused), (10, 10));
    assert_eq!(w.m.w.overseerr.issues().len(), 10, "Seerr got exactly ten");
    assert_eq!(w.rows().await, 10);

    // Comments: 30 an hour for a user.
    let id = sent
        .iter()
        .find(|r| r.status == StatusCode::CREATED)
        .unwrap()
        .data()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (user, problem, now) = (
        w.m.w.user_id.clone(),
        id.clone(),
        w.m.w.t.state.clock().now_ms(),
    );
    w.m.w
        .t
        .state
        .db()
        .write(move |tx| {
            for n in 0..30 {
                tx.execute(
                    "INSERT INTO problem_comments (id, problem_id, user_id, author, message,
                                                   created_at)
                     VALUES (?1, ?2, ?3, 'user', ?4, ?5)",
                    rusqlite::params![
                        format!("c{n}"),
                        problem,
                        user,
                        format!("n{n}"),
                        now - 60_000
                    ],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let path = format!("/api/v1/media/problems/{id}/comments");
    let r =
        w.m.post(&w.m.w.user, &path, json!({"message": "one more"}))
            .await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "QUOTA_EXCEEDED");
    assert!(
        w.m.w
            .overseerr
            .issues()
            .iter()
            .all(|i| i.comments.len() == 1),
        "Seerr was not asked"
    );
    // Admins are not counted.
    let r =
        w.m.post(&w.m.w.admin, &path, json!({"message": "looking"}))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    w.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_made_as_the_admin_stays_the_reporters_when_the_webhook_wins_the_race() {
    let w = world_with(|c| c.overseerr.fallback_to_admin = true).await;
    let (kim, token) = w.kim_without_seerr_account().await;
    w.m.w
        .overseerr
        .set_webhook_on_create(Some(NotificationType::IssueCreated));
    let r = w
        .report(
            &token,
            json!({"mediaType": "movie", "tmdbId": 603, "type": "video", "message": "Blocky"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    // ISSUE_CREATED was answered before the create call was.
    let sent = w.m.w.overseerr.issue_webhooks();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0].kind.clone(), sent[0].answer.clone()),
        (NotificationType::IssueCreated, Ok(200))
    );
    let issue_id = r.data()["seerrIssueId"].as_i64().unwrap();
    assert_eq!(w.m.w.overseerr.issue(issue_id).unwrap().created_by, 1);
    assert_eq!(r.data()["userId"], kim.as_str(), "{}", r.text());
    assert_eq!(r.data()["message"], "Blocky");
    assert_eq!(w.rows().await, 1);
    let mine = w.m.get(&token, "/api/v1/media/problems").await;
    assert_eq!(mine.data().as_array().unwrap().len(), 1, "{}", mine.text());
    let admins = w.m.get(&w.m.w.admin, "/api/v1/media/problems").await;
    assert!(
        admins.data().as_array().unwrap().is_empty(),
        "{}",
        admins.text()
    );
    w.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seerr_replies_reach_a_reporter_whose_report_was_made_as_the_admin() {
    let w = world_with(|c| c.overseerr.fallback_to_admin = true).await;
    let (kim, token) = w.kim_without_seerr_account().await;
    let r = w
        .report(
            &token,
            json!({"mediaType": "movie", "tmdbId": 603, "type": "video", "message": "Blocky"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.data()["id"].as_str().unwrap().to_owned();
    let issue_id = r.data()["seerrIssueId"].as_i64().unwrap();
    let seerr = &w.m.w.overseerr;
    assert_eq!(seerr.issue(issue_id).unwrap().created_by, 1);
    w.webhooks_answered(1).await;

    // Seerr's owner (the account the issue was made as) replies in Seerr: kim is told.
    assert_eq!(seerr.comment_in_seerr(1, issue_id, "Which minute?"), 200);
    w.webhooks_answered(2).await;
    let got = w.problems_notified(&kim).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["type"], "problem.comment");

    // Kim answers here: sent as the account the issue was created as, stored once.
    let r =
        w.m.post(
            &token,
            &format!("/api/v1/media/problems/{id}/comments"),
            json!({"message": "Around 00:42"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let last = seerr
        .issue(issue_id)
        .unwrap()
        .comments
        .last()
        .cloned()
        .unwrap();
    assert_eq!((last.user, last.message.as_str()), (1, "Around 00:42"));
    w.webhooks_answered(3).await;
    assert_eq!(w.problem(&token, &id).await["commentCount"], 2);
    assert_eq!(w.problems_notified(&kim).await.len(), 1);
    w.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_status_webhook_does_not_undo_a_newer_status() {
    let w = world().await;
    let (id, issue_id) = w
        .reported(
            json!({"mediaType": "movie", "tmdbId": 603, "type": "video", "message": "Blocky"}),
        )
        .await;
    let seerr = &w.m.w.overseerr;
    let resolved = {
        assert_eq!(
            seerr.set_issue_status_in_seerr(1, issue_id, "resolved"),
            200
        );
        w.webhooks_answered(2).await;
        seerr
            .issue_webhook_payload(&NotificationType::IssueResolved, issue_id)
            .unwrap()
    };
    assert_eq!(seerr.set_issue_status_in_seerr(1, issue_id, "open"), 200);
    w.webhooks_answered(3).await;
    assert_eq!(w.problem(&w.m.w.user, &id).await["status"], "open");
    // The ISSUE_RESOLVED delivered again, late: Seerr says open, so nothing changes.
    assert_eq!(post_hook(&w.hook, &resolved).await, 200);
    assert_eq!(w.problem(&w.m.w.user, &id).await["status"], "open");
    assert_eq!(w.problems_notified(&w.m.w.user_id).await.len(), 2);
    w.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoes_are_told_apart_by_seerr_account_and_rewritten_text() {
    let w = world().await;
    let (id, issue_id) = w
        .reported(
            json!({"mediaType": "movie", "tmdbId": 603, "type": "video", "message": "Blocky"}),
        )
        .await;
    let path = format!("/api/v1/media/problems/{id}/comments");
    // `$` patterns come back rewritten by Seerr's template filling: still the same comment.
    let text = "It costs $$5 to fix, see $& and $' here";
    let r = w.m.post(&w.m.w.user, &path, json!({"message": text})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let sent = w.webhooks_answered(2).await;
    assert_eq!(sent[1], (NotificationType::IssueComment, 200));
    let echo =
        w.m.w
            .overseerr
            .issue_webhook_payload(&NotificationType::IssueComment, issue_id)
            .unwrap();
    assert_eq!(
        echo["comment"]["comment_message"],
        "It costs $5 to fix, see {{comment_message}} and  here"
    );
    assert_eq!(w.problem(&w.m.w.user, &id).await["commentCount"], 1);

    // The reporter says "Thanks" here, then Seerr's owner says the same in Seerr: two comments,
    // and the reporter hears about the owner's.
    let r =
        w.m.post(&w.m.w.user, &path, json!({"message": "Thanks"}))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    w.webhooks_answered(3).await;
    assert_eq!(w.m.w.overseerr.comment_in_seerr(1, issue_id, "Thanks"), 200);
    w.webhooks_answered(4).await;
    let stored = w.problem(&w.m.w.user, &id).await;
    assert_eq!(stored["commentCount"], 3, "{stored}");
    let got = w.problems_notified(&w.m.w.user_id).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["type"], "problem.comment");
    w.server.stop().await.unwrap();
}

/// A resolve made in Seerr whose webhook never arrived (here refused for a wrong secret) is
/// picked up by the reconciliation round, which notifies the reporter once; the next round has
/// nothing open left to ask about.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolve_whose_webhook_was_lost_is_reconciled() {
    let w = world().await;
    let (id, issue_id) = w
        .reported(json!({"mediaType": "tv", "tmdbId": 1399, "type": "video",
                   "message": "Blocky picture in the battle"}))
        .await;

    w.m.w
        .overseerr
        .set_webhook_target(&w.hook, Some("not-the-secret"));
    let answered =
        w.m.w
            .overseerr
            .set_issue_status_in_seerr(1, issue_id, "resolved");
    assert!((200..300).contains(&answered), "{answered}");
    let sent = w.webhooks_answered(2).await;
    assert_eq!(
        sent[1],
        (NotificationType::IssueResolved, 401),
        "the webhook is lost"
    );
    assert_eq!(w.problem(&w.m.w.user, &id).await["status"], "open");

    let round = medianest::media::reconcile::run_once(&w.m.w.t.state)
        .await
        .unwrap();
    assert_eq!(
        (round.problems.checked, round.problems.changed),
        (1, 1),
        "{round:?}"
    );
    assert_eq!(w.problem(&w.m.w.user, &id).await["status"], "resolved");
    assert_eq!(w.problems_notified(&w.m.w.user_id).await.len(), 1);

    let again = medianest::media::reconcile::run_once(&w.m.w.t.state)
        .await
        .unwrap();
    assert_eq!(again.problems.checked, 0, "{again:?}");
    assert_eq!(w.problems_notified(&w.m.w.user_id).await.len(), 1);
    w.server.stop().await.unwrap();
}
