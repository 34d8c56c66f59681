//! The fake Seerr's issues: `POST /api/v1/issue`, `GET /api/v1/issue/{id}`,
//! `POST /api/v1/issue/{id}/comment` and `POST /api/v1/issue/{id}/{resolved|open}`, and the
//! `ISSUE_*` webhook notifications they cause.
//!
//! Behaviour copied from seerr-team/seerr (the same in sct/overseerr 1.34.0):
//! - server/routes/issue.ts: create needs `MANAGE_ISSUES` or `CREATE_ISSUES` (else the guard's
//!   403), answers **200** with the issue, 404 `Media does not exist.` for an unknown
//!   `mediaId`; get, comment and status answer 500 `Issue not found.` for an unknown id; a user
//!   without `MANAGE_ISSUES` may only comment on (403) or change the status of (401) their own
//!   issue; a status other than `resolved`/`open` is a 400.
//! - server/constants/issue.ts: `IssueType` 1-4, `IssueStatus` OPEN = 1, RESOLVED = 2.
//! - server/subscriber/IssueSubscriber.ts: `ISSUE_CREATED` after the insert, `ISSUE_RESOLVED` /
//!   `ISSUE_REOPENED` only when the status really changes, `message` is the first comment,
//!   `extra` has "Affected Season" / "Affected Episode".
//!   server/subscriber/IssueCommentSubscriber.ts: `ISSUE_COMMENT` for every comment but the
//!   first. All of them with `notifySystem: true`, so the webhook agent sends them.
//! - server/lib/notifications/agents/webhook.ts and the default `jsonPayload` in
//!   server/lib/settings/index.ts: the body below, every value a string, `issue_type` and
//!   `issue_status` the enum keys (`VIDEO`, `OPEN`), user text filled in by
//!   `String.replace` (so `$$`, `$&`, `` $` ``, `$'` are rewritten), no comment id.
//!
//! The agent sends without waiting for anyone (the subscribers do not await it), so the fake
//! posts each webhook from a spawned task once the state is unlocked, after the route's answer
//! is computed.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::library::{Reply, guard_refusal, permission, stamp};
use super::routes::{authenticate, bad_request, respond};
use super::{FakeOverseerr, Shared, SimState};
use crate::integrations::overseerr::model::int;
use crate::integrations::overseerr::webhook::template_filled;
use crate::integrations::overseerr::{MediaType, NotificationType};

/// A comment of a [`FakeIssue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeIssueComment {
    pub id: i64,
    /// The Seerr user who wrote it.
    pub user: i64,
    pub message: String,
}

/// An issue as the fake holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeIssue {
    pub id: i64,
    /// 1 video, 2 audio, 3 subtitles, 4 other.
    pub issue_type: i64,
    /// 1 open, 2 resolved.
    pub status: i64,
    pub problem_season: i64,
    pub problem_episode: i64,
    pub media_id: i64,
    pub media_type: MediaType,
    pub tmdb_id: i64,
    pub created_by: i64,
    pub modified_by: Option<i64>,
    /// The first is the report's message.
    pub comments: Vec<FakeIssueComment>,
    created: i64,
    updated: i64,
}

/// A webhook the fake sent about an issue, and MediaNest's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentIssueWebhook {
    pub kind: NotificationType,
    pub issue_id: i64,
    /// MediaNest's status, or the transport error.
    pub answer: Result<u16, String>,
}

/// The issues and what was sent about them.
#[derive(Debug, Default)]
pub(super) struct Issues {
    list: BTreeMap<i64, FakeIssue>,
    next_id: i64,
    next_comment_id: i64,
    tick: i64,
    pub(super) sent: Vec<SentIssueWebhook>,
}

/// A notification to send once the state is unlocked: kind, issue, comment (ISSUE_COMMENT).
type Pending = (NotificationType, i64, Option<i64>);

/// `IssueTypeName` (server/constants/issue.ts): the word in the `event` text.
fn type_name(issue_type: i64) -> &'static str {
    match issue_type {
        1 => "Video",
        2 => "Audio",
        3 => "Subtitle",
        _ => "Other",
    }
}

/// `IssueType[n]`: the enum key the webhook's `issue_type` carries.
fn type_key(issue_type: i64) -> &'static str {
    match issue_type {
        1 => "VIDEO",
        2 => "AUDIO",
        3 => "SUBTITLES",
        4 => "OTHER",
        _ => "",
    }
}

fn status_key(status: i64) -> &'static str {
    match status {
        1 => "OPEN",
        2 => "RESOLVED",
        _ => "",
    }
}

fn not_found() -> Reply {
    (500, Some(json!({"message": "Issue not found."})))
}

impl Issues {
    fn now(&mut self) -> i64 {
        self.tick += 1;
        self.tick
    }
}

/// The issue routes' guard, `isAuthenticated([MANAGE_ISSUES, CREATE_ISSUES], {type: 'or'})`
/// (server/routes/issue.ts): `user` holds either permission.
fn passes_guard(state: &SimState, user: i64) -> bool {
    state
        .library
        .user(user)
        .is_some_and(|u| u.has(&[permission::MANAGE_ISSUES, permission::CREATE_ISSUES]))
}

fn manages_issues(state: &SimState, user: i64) -> bool {
    state
        .library
        .user(user)
        .is_some_and(|u| u.has(&[permission::MANAGE_ISSUES]))
}

fn issue_json(state: &SimState, issue: &FakeIssue) -> Value {
    let library = &state.library;
    let comments: Vec<Value> = issue
        .comments
        .iter()
        .map(|c| {
            json!({"id": c.id, "message": c.message, "user": library.user_value(c.user),
                   "createdAt": stamp(issue.created), "updatedAt": stamp(issue.updated)})
        })
        .collect();
    json!({
        "id": issue.id, "issueType": issue.issue_type, "status": issue.status,
        "problemSeason": issue.problem_season, "problemEpisode": issue.problem_episode,
        "media": library.media_value(issue.media_type, issue.tmdb_id),
        "createdBy": library.user_value(issue.created_by),
        "modifiedBy": issue.modified_by.map_or(Value::Null, |u| library.user_value(u)),
        "comments": comments,
        "createdAt": stamp(issue.created), "updatedAt": stamp(issue.updated),
    })
}

/// `POST /issue` as `acting`, from the JSON `body`.
fn create(state: &mut SimState, acting: i64, body: &Value) -> (Reply, Vec<Pending>) {
    if !passes_guard(state, acting) {
        return (guard_refusal(), Vec::new());
    }
    let Some(body) = body.as_object() else {
        return (
            bad_request(".body", "request.body should be object"),
            Vec::new(),
        );
    };
    let number = |key: &str| body.get(key).filter(|v| v.is_number()).and_then(int);
    let Some(media_id) = number("mediaId") else {
        return (
            (404, Some(json!({"message": "Media does not exist."}))),
            Vec::new(),
        );
    };
    let Some((media_type, tmdb_id)) = state.library.media_by_id(media_id) else {
        return (
            (404, Some(json!({"message": "Media does not exist."}))),
            Vec::new(),
        );
    };
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let now = state.issues.now();
    state.issues.next_id += 1;
    state.issues.next_comment_id += 1;
    let issue = FakeIssue {
        id: state.issues.next_id,
        issue_type: number("issueType").unwrap_or(0),
        status: 1,
        problem_season: number("problemSeason").unwrap_or(0),
        problem_episode: number("problemEpisode").unwrap_or(0),
        media_id,
        media_type,
        tmdb_id,
        created_by: acting,
        modified_by: None,
        comments: vec![FakeIssueComment {
            id: state.issues.next_comment_id,
            user: acting,
            message,
        }],
        created: now,
        updated: now,
    };
    let id = issue.id;
    let reply = (200, Some(issue_json(state, &issue)));
    state.issues.list.insert(id, issue);
    (reply, vec![(NotificationType::IssueCreated, id, None)])
}

/// `POST /issue/{id}/comment` as `acting`.
fn comment(state: &mut SimState, acting: i64, id: i64, message: &str) -> (Reply, Vec<Pending>) {
    if !passes_guard(state, acting) {
        return (guard_refusal(), Vec::new());
    }
    let manager = manages_issues(state, acting);
    let Some(issue) = state.issues.list.get(&id) else {
        return (not_found(), Vec::new());
    };
    if issue.created_by != acting && !manager {
        let text = "You do not have permission to comment on this issue.";
        return ((403, Some(json!({"message": text}))), Vec::new());
    }
    let now = state.issues.now();
    state.issues.next_comment_id += 1;
    let comment_id = state.issues.next_comment_id;
    let Some(issue) = state.issues.list.get_mut(&id) else {
        return (not_found(), Vec::new());
    };
    issue.comments.push(FakeIssueComment {
        id: comment_id,
        user: acting,
        message: message.to_owned(),
    });
    issue.updated = now;
    let issue = issue.clone();
    (
        (200, Some(issue_json(state, &issue))),
        vec![(NotificationType::IssueComment, id, Some(comment_id))],
    )
}

/// `POST /issue/{id}/{status}` as `acting`.
fn set_status(state: &mut SimState, acting: i64, id: i64, word: &str) -> (Reply, Vec<Pending>) {
    if !passes_guard(state, acting) {
        return (guard_refusal(), Vec::new());
    }
    let manager = manages_issues(state, acting);
    let Some(issue) = state.issues.list.get(&id) else {
        return (not_found(), Vec::new());
    };
    if !manager && issue.created_by != acting {
        let text = "You do not have permission to modify this issue.";
        return ((401, Some(json!({"message": text}))), Vec::new());
    }
    let to = match word {
        "resolved" => 2,
        "open" => 1,
        _ => {
            let text = "You must provide a valid status";
            return ((400, Some(json!({"message": text}))), Vec::new());
        }
    };
    let now = state.issues.now();
    let Some(issue) = state.issues.list.get_mut(&id) else {
        return (not_found(), Vec::new());
    };
    let from = issue.status;
    issue.status = to;
    issue.modified_by = Some(acting);
    issue.updated = now;
    let issue = issue.clone();
    // beforeUpdate in IssueSubscriber.ts: only a real change notifies.
    let pending = match (from, to) {
        (1, 2) => vec![(NotificationType::IssueResolved, id, None)],
        (2, 1) => vec![(NotificationType::IssueReopened, id, None)],
        _ => Vec::new(),
    };
    ((200, Some(issue_json(state, &issue))), pending)
}

/// The body the webhook agent sends for `kind` about `issue_id` (and `comment_id`), in the
/// default template; `None` when the issue is unknown.
fn payload(
    state: &SimState,
    kind: &NotificationType,
    issue_id: i64,
    comment_id: Option<i64>,
) -> Option<Value> {
    let issue = state.issues.list.get(&issue_id)?;
    let library = &state.library;
    let title = library.title(issue.media_type, issue.tmdb_id);
    let name = |user: i64| {
        library
            .user(user)
            .map(|u| (u.email.clone().unwrap_or_default(), u.display_name.clone()))
            .unwrap_or_default()
    };
    let (reporter_email, reporter_name) = name(issue.created_by);
    let avatar = |user: i64| format!("https://plex.tv/users/{user:016x}/avatar?c=1712345678");
    let what = match issue.issue_type {
        4 => String::new(),
        n => format!("{} ", type_name(n)),
    };
    let event = match kind {
        NotificationType::IssueCreated => format!("New {what}Issue Reported"),
        NotificationType::IssueResolved => format!("{what}Issue Resolved"),
        NotificationType::IssueReopened => format!("{what}Issue Reopened"),
        _ => format!("New Comment on {what}Issue"),
    };
    let comment = comment_id
        .and_then(|cid| issue.comments.iter().find(|c| c.id == cid))
        .map_or(Value::Null, |c| {
            let (email, display) = name(c.user);
            // parseKeys fills each "{{key}}" with String.replace (webhook.ts), `$` patterns
            // and all.
            json!({
                "comment_message": template_filled("comment_message", &c.message),
                "commentedBy_email": template_filled("commentedBy_email", &email),
                "commentedBy_username": template_filled("commentedBy_username", &display),
                "commentedBy_avatar": avatar(c.user),
                "commentedBy_settings_discordId": "", "commentedBy_settings_telegramChatId": "",
            })
        });
    let mut extra = Vec::new();
    if issue.media_type == MediaType::Tv && issue.problem_season > 0 {
        extra.push(json!({"name": "Affected Season", "value": issue.problem_season.to_string()}));
        if issue.problem_episode > 0 {
            extra.push(
                json!({"name": "Affected Episode", "value": issue.problem_episode.to_string()}),
            );
        }
    }
    let status = |is4k| {
        library
            .media_status(issue.media_type, issue.tmdb_id, is4k)
            .name()
            .unwrap_or("UNKNOWN")
    };
    Some(json!({
        "notification_type": kind.as_str(),
        "event": event,
        "subject": title.map(super::FakeTitle::subject).unwrap_or_default(),
        "message": issue
            .comments
            .first()
            .map(|c| template_filled("message", &c.message))
            .unwrap_or_default(),
        "image": title
            .and_then(|t| t.poster_path.as_deref())
            .map(|p| format!("https://image.tmdb.org/t/p/w600_and_h900_bestv2{p}"))
            .unwrap_or_default(),
        "media": {
            "media_type": issue.media_type.as_str(),
            "tmdbId": issue.tmdb_id.to_string(),
            "tvdbId": title.and_then(|t| t.tvdb_id).map(|id| id.to_string()).unwrap_or_default(),
            "status": status(false), "status4k": status(true),
        },
        "request": null,
        "issue": {
            "issue_id": issue.id.to_string(),
            "issue_type": type_key(issue.issue_type),
            "issue_status": status_key(issue.status),
            "reportedBy_email": reporter_email,
            "reportedBy_username": reporter_name,
            "reportedBy_avatar": avatar(issue.created_by),
            "reportedBy_settings_discordId": "",
            "reportedBy_settings_telegramChatId": "",
        },
        "comment": comment,
        "extra": extra,
    }))
}

/// Posts the pending notifications to the webhook target (when one is set) from a spawned
/// task each, noting MediaNest's answers in the state.
fn send(shared: &Arc<Shared>, state: &SimState, pending: Vec<Pending>) {
    let Some((url, authorization)) = state.webhook.clone() else {
        return;
    };
    for (kind, issue_id, comment_id) in pending {
        let Some(body) = payload(state, &kind, issue_id, comment_id) else {
            continue;
        };
        let shared = shared.clone();
        let (url, authorization) = (url.clone(), authorization.clone());
        tokio::spawn(async move {
            let bytes = serde_json::to_vec(&body).unwrap_or_default();
            let answer = super::control::post_webhook(&url, authorization.as_deref(), bytes).await;
            shared.lock().issues.sent.push(SentIssueWebhook {
                kind,
                issue_id,
                answer,
            });
        });
    }
}

/// Authenticates, runs `f` with the state locked, sends its notifications, answers.
fn run(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    f: impl FnOnce(&mut SimState, i64) -> (Reply, Vec<Pending>),
) -> Response {
    let reply = {
        let mut state = shared.lock();
        match authenticate(&state, headers) {
            Ok(acting) => {
                let (reply, pending) = f(&mut state, acting);
                send(shared, &state, pending);
                reply
            }
            Err(reply) => reply,
        }
    };
    respond(reply)
}

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v1/issue", post(create_route))
        .route("/api/v1/issue/{id}", get(get_route))
        .route("/api/v1/issue/{id}/comment", post(comment_route))
        .route("/api/v1/issue/{id}/{status}", post(status_route))
}

async fn create_route(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let hook_first = {
        let state = shared.lock();
        state.hook_on_create == Some(NotificationType::IssueCreated)
    };
    if !hook_first {
        return run(&shared, &headers, |state, acting| {
            create(state, acting, &body)
        });
    }
    // `set_webhook_on_create(Some(IssueCreated))`: the agent's ISSUE_CREATED (sent from
    // IssueSubscriber.afterInsert, not awaited by the route) reaches MediaNest and is answered
    // before the route's own answer does.
    let (reply, hook) = {
        let mut state = shared.lock();
        match authenticate(&state, &headers) {
            Ok(acting) => {
                let (reply, pending) = create(&mut state, acting, &body);
                let hook = pending.first().and_then(|(kind, issue_id, comment_id)| {
                    let body = payload(&state, kind, *issue_id, *comment_id)?;
                    let (url, authorization) = state.webhook.clone()?;
                    Some((url, authorization, kind.clone(), *issue_id, body))
                });
                (reply, hook)
            }
            Err(reply) => (reply, None),
        }
    };
    if let Some((url, authorization, kind, issue_id, body)) = hook {
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let answer = super::control::post_webhook(&url, authorization.as_deref(), bytes).await;
        shared.lock().issues.sent.push(SentIssueWebhook {
            kind,
            issue_id,
            answer,
        });
    }
    respond(reply)
}

async fn get_route(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    run(&shared, &headers, |state, acting| {
        let found = id
            .parse::<i64>()
            .ok()
            .and_then(|id| state.issues.list.get(&id));
        let Some(issue) = found else {
            return (not_found(), Vec::new());
        };
        let viewer = state
            .library
            .user(acting)
            .is_some_and(|u| u.has(&[permission::MANAGE_ISSUES, permission::VIEW_ISSUES]));
        if issue.created_by != acting && !viewer {
            let text = "You do not have permission to view this issue.";
            return ((403, Some(json!({"message": text}))), Vec::new());
        }
        ((200, Some(issue_json(state, issue))), Vec::new())
    })
}

async fn comment_route(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    run(&shared, &headers, |state, acting| match id.parse() {
        Ok(id) => comment(state, acting, id, &message),
        Err(_) => (not_found(), Vec::new()),
    })
}

async fn status_route(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((id, status)): Path<(String, String)>,
) -> Response {
    run(&shared, &headers, |state, acting| match id.parse() {
        Ok(id) => set_status(state, acting, id, &status),
        Err(_) => (not_found(), Vec::new()),
    })
}

impl FakeOverseerr {
    /// The issues, by id.
    pub fn issues(&self) -> Vec<FakeIssue> {
        self.shared.lock().issues.list.values().cloned().collect()
    }

    /// One issue.
    pub fn issue(&self, id: i64) -> Option<FakeIssue> {
        self.shared.lock().issues.list.get(&id).cloned()
    }

    /// The issue webhooks sent so far, with MediaNest's answers (in the order they came back).
    pub fn issue_webhooks(&self) -> Vec<SentIssueWebhook> {
        self.shared.lock().issues.sent.clone()
    }

    /// What Seerr's own web UI does when `user` reports an issue about a title there (its media
    /// row must exist) about `(season, episode)` (0 for none): the issue, and its `ISSUE_CREATED` to
    /// the webhook target. The issue id.
    pub fn report_issue_in_seerr(
        &self,
        user: i64,
        media_type: MediaType,
        tmdb_id: i64,
        issue_type: i64,
        message: &str,
        (season, episode): (i64, i64),
    ) -> Option<i64> {
        let mut state = self.shared.lock();
        let media_id = state.library.media_id(media_type, tmdb_id)?;
        let body = json!({"issueType": issue_type, "message": message, "mediaId": media_id,
                          "problemSeason": season, "problemEpisode": episode});
        let (reply, pending) = create(&mut state, user, &body);
        send(&self.shared, &state, pending);
        reply.1.and_then(|b| b.get("id").and_then(int))
    }

    /// `user` comments on issue `id` in Seerr's web UI (`ISSUE_COMMENT` follows); the status
    /// Seerr's route answers.
    pub fn comment_in_seerr(&self, user: i64, id: i64, message: &str) -> u16 {
        let mut state = self.shared.lock();
        let (reply, pending) = comment(&mut state, user, id, message);
        send(&self.shared, &state, pending);
        reply.0
    }

    /// `user` resolves (`"resolved"`) or reopens (`"open"`) issue `id` in Seerr's web UI.
    pub fn set_issue_status_in_seerr(&self, user: i64, id: i64, status: &str) -> u16 {
        let mut state = self.shared.lock();
        let (reply, pending) = set_status(&mut state, user, id, status);
        send(&self.shared, &state, pending);
        reply.0
    }

    /// The body the agent would send for `kind` about issue `id` (its latest comment for
    /// `ISSUE_COMMENT`), for a test that redelivers it.
    pub fn issue_webhook_payload(&self, kind: &NotificationType, id: i64) -> Option<Value> {
        let state = self.shared.lock();
        let comment = state
            .issues
            .list
            .get(&id)
            .and_then(|i| i.comments.last())
            .map(|c| c.id)
            .filter(|_| *kind == NotificationType::IssueComment);
        payload(&state, kind, id, comment)
    }
}
