//! The authorization matrix: every route of the router's own table (`medianest::api_routes()`,
//! the list the router is built from) called as an anonymous client, a user, another user and an
//! admin, each against a fresh state, with the status each must get.
//!
//! A route in the table without a line in [`MATRIX`] fails the test, so a new route cannot ship
//! without someone deciding who may call it. A line for a route that is not in the table (yet)
//! only prints a warning. The lines must also agree with the access the table declares.
//!
//! `{id}`-style parameters name resources owned by "user" (see [`fill`]): another user and the
//! admin reach someone else's resource, the owner their own.

use std::fmt;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use medianest::routes::{Access, RouteInfo};
use medianest::sim::plextv::FakePlexTv;
use tower::ServiceExt;

use crate::support::{self, TestState, call, insert_user, new_session};

/// What a caller must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Any 2xx.
    Success,
    /// Exactly this status.
    Status(u16),
}

const OK: Want = Want::Success;
const E400: Want = Want::Status(400);
const E401: Want = Want::Status(401);
const E403: Want = Want::Status(403);
const E404: Want = Want::Status(404);
const E409: Want = Want::Status(409);
const E503: Want = Want::Status(503);

impl Want {
    fn accepts(self, status: StatusCode) -> bool {
        match self {
            Self::Success => status.is_success(),
            Self::Status(code) => status.as_u16() == code,
        }
    }

    fn denies(self) -> bool {
        matches!(self, Self::Status(401 | 403))
    }
}

impl fmt::Display for Want {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Success => f.write_str("2xx"),
            Self::Status(code) => write!(f, "{code}"),
        }
    }
}

/// The callers, in the order of each line's statuses.
#[derive(Debug, Clone, Copy)]
enum Caller {
    Anonymous,
    User,
    OtherUser,
    Admin,
}

const CALLERS: [Caller; 4] = [
    Caller::Anonymous,
    Caller::User,
    Caller::OtherUser,
    Caller::Admin,
];

/// `"METHOD /path"` as in the route table, a JSON body (`""` for none), and what
/// [anonymous, user, other user, admin] get.
#[rustfmt::skip]
const MATRIX: &[(&str, &str, [Want; 4])] = &[
    // route                                        body                                                  anon  user  other admin
    ("GET /health",                                 "",                                                   [OK,   OK,   OK,   OK]),
    ("GET /health/ready",                           "",                                                   [OK,   OK,   OK,   OK]),
    // metrics.token is set: a session token is not it.
    ("GET /metrics",                                "",                                                   [E401, E401, E401, E401]),
    ("GET /api/v1/health",                          "",                                                   [OK,   OK,   OK,   OK]),
    ("POST /api/v1/auth/login",                     r#"{"username":"nobody","password":"not it at all"}"#, [E401, E401, E401, E401]),
    ("POST /api/v1/auth/logout",                    "",                                                   [E401, OK,   OK,   OK]),
    ("GET /api/v1/auth/session",                    "",                                                   [E401, OK,   OK,   OK]),
    // The fixture users sign in with Plex: no password to change.
    ("POST /api/v1/auth/password",                  r#"{"currentPassword":"old password 1","newPassword":"new password 2"}"#, [E401, E400, E400, E400]),
    ("POST /api/v1/auth/plex/pin",                  "",                                                   [OK,   OK,   OK,   OK]),
    ("POST /api/v1/auth/plex/pin/{pin_id}/poll",    "",                                                   [E404, E404, E404, E404]),
    ("GET /api/v1/auth/sessions",                   "",                                                   [E401, OK,   OK,   OK]),
    ("DELETE /api/v1/auth/sessions/{id}",           "",                                                   [E401, OK,   E404, E404]),
    ("GET /api/v1/admin/users",                     "",                                                   [E401, E403, E403, OK]),
    ("PATCH /api/v1/admin/users/{id}",              r#"{"role":"user"}"#,                                 [E401, E403, E403, OK]),
    ("DELETE /api/v1/admin/users/{id}",             "",                                                   [E401, E403, E403, OK]),
    ("GET /api/v1/admin/errors",                    "",                                                   [E401, E403, E403, OK]),
    ("GET /api/v1/admin/errors/{correlation_id}",   "",                                                   [E401, E403, E403, OK]),
    ("GET /api/v1/admin/performance",               "",                                                   [E401, E403, E403, OK]),
    ("GET /api/v1/admin/stats",                     "",                                                   [E401, E403, E403, OK]),
    ("GET /api/v1/admin/backup",                    "",                                                   [E401, E403, E403, OK]),
    ("GET /api/v1/admin/backups",                   "",                                                   [E401, E403, E403, OK]),
    ("POST /api/v1/admin/backups",                  "",                                                   [E401, E403, E403, OK]),
    ("GET /api/v1/admin/backups/{name}",            "",                                                   [E401, E403, E403, E404]),
    ("GET /api/v1/admin/doctor",                    "",                                                   [E401, E403, E403, OK]),
    ("POST /api/v1/errors/report",                  r#"{"errors":[{"level":"error","message":"boom"}]}"#, [E401, OK,   OK,   OK]),
    ("GET /api/v1/notifications",                   "",                                                   [E401, OK,   OK,   OK]),
    ("POST /api/v1/notifications/read-all",         "",                                                   [E401, OK,   OK,   OK]),
    ("POST /api/v1/notifications/{id}/read",        "",                                                   [E401, OK,   E404, E404]),
    ("GET /api/v1/services",                        "",                                                   [E401, OK,   OK,   OK]),
    ("GET /api/v1/services/{name}",                 "",                                                   [E401, OK,   OK,   OK]),
    ("GET /api/v1/services/{name}/history",         "",                                                   [E401, OK,   OK,   OK]),
    ("GET /api/v1/admin/services",                  "",                                                   [E401, E403, E403, OK]),
    ("PUT /api/v1/admin/services/{name}",           r#"{"enabled":false}"#,                               [E401, E403, E403, OK]),
    // Nothing listens on the discard port: the test answers ok=false at once.
    ("POST /api/v1/admin/services/{name}/test",     r#"{"url":"http://127.0.0.1:9"}"#,                    [E401, E403, E403, OK]),
    ("GET /api/v1/admin/integrations",              "",                                                   [E401, E403, E403, OK]),
    ("POST /api/v1/admin/integrations/{name}/reset", "",                                                  [E401, E403, E403, OK]),
    // Overseerr is not set up in the fixture: 503 once past validation and authorization.
    ("GET /api/v1/media/search",                    "",                                                   [E401, E400, E400, E400]),
    ("GET /api/v1/media/discover/{row}",            "",                                                   [E401, E503, E503, E503]),
    ("GET /api/v1/media/movie/{tmdbId}",            "",                                                   [E401, E503, E503, E503]),
    ("GET /api/v1/media/tv/{tmdbId}",               "",                                                   [E401, E503, E503, E503]),
    ("POST /api/v1/media/requests",                 r#"{"mediaType":"movie","tmdbId":603}"#,              [E401, E503, E503, E503]),
    ("GET /api/v1/media/requests",                  "",                                                   [E401, OK,   OK,   OK]),
    ("GET /api/v1/media/requests/{id}",             "",                                                   [E401, OK,   E404, OK]),
    // The fixture request has no Overseerr id: deleting it needs no Overseerr.
    ("DELETE /api/v1/media/requests/{id}",          "",                                                   [E401, OK,   E404, OK]),
    // Anyone may follow someone else's request; the owner hears about it already.
    ("POST /api/v1/media/requests/{id}/follow",     "",                                                   [E401, E409, OK,   OK]),
    ("DELETE /api/v1/media/requests/{id}/follow",   "",                                                   [E401, OK,   OK,   OK]),
    // Seerr is not set up here: a valid report or comment gets as far as asking for it.
    ("POST /api/v1/media/problems",                 r#"{"mediaType":"movie","tmdbId":603,"type":"video","message":"No sound"}"#, [E401, E503, E503, E503]),
    ("GET /api/v1/media/problems",                  "",                                                   [E401, OK,   OK,   OK]),
    ("GET /api/v1/media/problems/{id}",             "",                                                   [E401, OK,   E404, OK]),
    ("POST /api/v1/media/problems/{id}/comments",   r#"{"message":"Still broken"}"#,                      [E401, E503, E404, E503]),
    ("GET /api/v1/admin/problems",                  "",                                                   [E401, E403, E403, OK]),
    ("POST /api/v1/admin/problems/{id}/resolve",    r#"{"comment":"Fixed"}"#,                             [E401, E403, E403, E503]),
    ("POST /api/v1/admin/problems/{id}/reopen",     "",                                                   [E401, E403, E403, E503]),
    ("GET /api/v1/admin/requests",                  "",                                                   [E401, E403, E403, OK]),
    ("POST /api/v1/admin/requests/{id}/approve",    "",                                                   [E401, E403, E403, E409]),
    ("POST /api/v1/admin/requests/{id}/decline",    r#"{"reason":"no"}"#,                                 [E401, E403, E403, E409]),
    // A session token is not the webhook secret.
    ("POST /api/v1/webhooks/seerr",                 r#"{"notification_type":"TEST_NOTIFICATION"}"#,       [E401, E401, E401, E401]),
    ("POST /api/v1/webhooks/overseerr",             r#"{"notification_type":"TEST_NOTIFICATION"}"#,       [E401, E401, E401, E401]),
    ("GET /api/v1/dashboard",                       "",                                                   [E401, OK,   OK,   OK]),
    // yt-dlp is not installed in the fixture: submitting is refused before anything else.
    ("GET /api/v1/youtube/metadata",                "",                                                   [E401, E400, E400, E400]),
    ("POST /api/v1/youtube/downloads",              r#"{"url":"https://youtu.be/dQw4w9WgXcQ"}"#,          [E401, E503, E503, E503]),
    ("GET /api/v1/youtube/downloads",               "",                                                   [E401, OK,   OK,   OK]),
    ("GET /api/v1/youtube/downloads/{id}",          "",                                                   [E401, OK,   E404, OK]),
    // The fixture download is queued: it can be cancelled, not retried.
    ("DELETE /api/v1/youtube/downloads/{id}",       "",                                                   [E401, OK,   E404, OK]),
    ("POST /api/v1/youtube/downloads/{id}/retry",   "",                                                   [E401, E409, E404, E409]),
    ("GET /api/v1/admin/notifications/channels/{kind}", "",                                            [E401, E403, E403, OK]),
    ("PUT /api/v1/admin/notifications/channels/{kind}", r#"{"enabled":false}"#,                          [E401, E403, E403, OK]),
    ("POST /api/v1/admin/notifications/channels/{kind}/test", r#"{"to":"topic"}"#,                       [E401, E403, E403, E409]),
    ("GET /api/v1/admin/notifications/channels",    "",                                                   [E401, E403, E403, OK]),
    ("GET /api/v1/admin/notifications/deliveries",  "",                                                   [E401, E403, E403, OK]),
    ("POST /api/v1/admin/announcements",            r#"{"title":"Hello","message":"To everyone."}"#,      [E401, E403, E403, OK]),
    ("GET /api/v1/admin/downloads",                 "",                                                   [E401, E403, E403, OK]),
    ("GET /api/v1/admin/youtube/settings",          "",                                                   [E401, E403, E403, OK]),
    ("PUT /api/v1/admin/youtube/cookies",           r##"{"content":"# Netscape HTTP Cookie File\n"}"##,    [E401, E403, E403, OK]),
    ("DELETE /api/v1/admin/youtube/cookies",        "",                                                   [E401, E403, E403, OK]),
    ("PUT /api/v1/admin/youtube/extra-args",        r#"{"args":["--js-runtimes","node"]}"#,               [E401, E403, E403, OK]),
    // The fixture subscription is a proposal of "user": the owner may still change it; pause
    // and resume refuse a proposal.
    ("GET /api/v1/youtube/subscriptions",           "",                                                   [E401, OK,   OK,   OK]),
    ("POST /api/v1/youtube/subscriptions",          r#"{"url":"https://www.youtube.com/@authzchannel"}"#, [E401, OK,   OK,   OK]),
    ("GET /api/v1/youtube/subscriptions/{id}",      "",                                                   [E401, OK,   E404, OK]),
    ("PATCH /api/v1/youtube/subscriptions/{id}",    r#"{"keepLatest":5}"#,                                [E401, OK,   E404, OK]),
    ("DELETE /api/v1/youtube/subscriptions/{id}",   "",                                                   [E401, OK,   E404, OK]),
    ("GET /api/v1/youtube/subscriptions/{id}/items", "",                                                  [E401, OK,   E404, OK]),
    // The fixture subscription has no title yet, so no avatar: 404 for everyone who may see it.
    ("GET /api/v1/youtube/subscriptions/{id}/avatar", "",                                                 [E401, E404, E404, E404]),
    ("PATCH /api/v1/youtube/subscriptions/{id}/items/{itemId}", r#"{"keep":true}"#,                        [E401, OK,   E404, OK]),
    ("DELETE /api/v1/youtube/subscriptions/{id}/items/{itemId}", "",                                       [E401, OK,   E404, OK]),
    ("POST /api/v1/youtube/subscriptions/{id}/pause", "",                                                 [E401, E403, E403, E409]),
    ("POST /api/v1/youtube/subscriptions/{id}/resume", "",                                                [E401, E403, E403, E409]),
    ("POST /api/v1/youtube/subscriptions/{id}/check", "",                                                 [E401, E403, E403, E409]),
    ("POST /api/v1/admin/youtube/subscriptions/{id}/approve", "",                                         [E401, E403, E403, OK]),
    ("POST /api/v1/admin/youtube/subscriptions/{id}/decline", r#"{"reason":"no"}"#,                       [E401, E403, E403, OK]),
    ("GET /api/v1/admin/youtube/profiles",          "",                                                   [E401, E403, E403, OK]),
    ("POST /api/v1/admin/youtube/profiles",         r#"{"name":"Authz"}"#,                                [E401, E403, E403, OK]),
    ("GET /api/v1/admin/youtube/profiles/{id}",     "",                                                   [E401, E403, E403, OK]),
    ("PUT /api/v1/admin/youtube/profiles/{id}",     r#"{"name":"Renamed"}"#,                              [E401, E403, E403, OK]),
    ("DELETE /api/v1/admin/youtube/profiles/{id}",  "",                                                   [E401, E403, E403, OK]),
    // Plex is not set up in the fixture: signed-in callers get SERVICE_NOT_CONFIGURED, or the
    // validation error that comes first.
    ("GET /api/v1/plex/server",                     "",                                                   [E401, E503, E503, E503]),
    ("GET /api/v1/plex/libraries",                  "",                                                   [E401, E503, E503, E503]),
    ("GET /api/v1/plex/libraries/{key}/items",      "",                                                   [E401, E503, E503, E503]),
    ("GET /api/v1/plex/search",                     "",                                                   [E401, E400, E400, E400]),
    ("GET /api/v1/plex/recently-added",             "",                                                   [E401, E503, E503, E503]),
    ("GET /api/v1/plex/libraries/{key}/collections", "",                                                  [E401, E503, E503, E503]),
    ("GET /api/v1/plex/collections/{rating_key}",   "",                                                   [E401, E503, E503, E503]),
    ("GET /api/v1/plex/image",                      "",                                                   [E401, E400, E400, E400]),
    // An unknown size: refused before any fetch (the fixture has no image host).
    ("GET /api/v1/images/tmdb/{size}/{*file}",      "",                                                   [E401, E400, E400, E400]),
    // Server-Sent Events: only the head is read.
    ("GET /api/v1/events",                          "",                                                   [E401, OK,   OK,   OK]),
    ("GET /api/v1/push/vapid-public-key",           "",                                                   [E401, OK,   OK,   OK]),
    ("POST /api/v1/me/push-subscriptions",          PUSH_SUBSCRIPTION,                                    [E401, OK,   OK,   OK]),
    ("GET /api/v1/me/push-subscriptions",           "",                                                   [E401, OK,   OK,   OK]),
    ("DELETE /api/v1/me/push-subscriptions/{id}",   "",                                                   [E401, OK,   E404, E404]),
    ("GET /api/v1/me/notifications",                "",                                                   [E401, OK,   OK,   OK]),
    ("PUT /api/v1/me/notifications",                r#"{"events":null}"#,                                 [E401, OK,   OK,   OK]),
    ("GET /api/v1/me/watchlist",                    "",                                                   [E401, OK,   OK,   OK]),
    ("PUT /api/v1/me/watchlist",                    r#"{"enabled":false}"#,                               [E401, OK,   OK,   OK]),
];

/// A browser's `PushSubscription` (a real P-256 point; the endpoint is never called).
const PUSH_SUBSCRIPTION: &str = r#"{"endpoint":"https://fcm.googleapis.com/send/authz","expirationTime":null,"keys":{"p256dh":"BLn9b-VR0ca83knDNZ32dCHGyjJp-1riX9ZTN40MqV8K_LpQmLqxC_DoHvqvFXO_nGdAB4W9dogZb_sM-uV4JbY","auth":"_ordMnz7uTCmrpBTeUV4Bw"}}"#;

fn route_key(route: &RouteInfo) -> String {
    format!("{} {}", route.method, route.path)
}

/// Which routes lack a line (failures) and which lines name no route (warnings).
fn coverage(table: &[RouteInfo]) -> (Vec<String>, Vec<String>) {
    let missing = table
        .iter()
        .map(route_key)
        .filter(|key| !MATRIX.iter().any(|(k, _, _)| k == key))
        .map(|key| format!("{key}: no line in MATRIX (tests/api/authz.rs) says who may call it"))
        .collect();
    let unused = MATRIX
        .iter()
        .filter(|(k, _, _)| !table.iter().any(|r| route_key(r) == *k))
        .map(|(k, _, _)| format!("{k}: in MATRIX but not in the route table (yet)"))
        .collect();
    (missing, unused)
}

/// A line must agree with the access the table declares for its route.
fn agrees_with_access(access: Access, want: &[Want; 4]) -> Result<(), String> {
    let [anonymous, user, other, admin] = *want;
    let ok = match access {
        // A session neither opens nor closes a public route.
        Access::Public => user == anonymous && other == anonymous && admin == anonymous,
        Access::User => anonymous == E401 && !user.denies() && !other.denies() && !admin.denies(),
        Access::Admin => anonymous == E401 && user == E403 && other == E403 && !admin.denies(),
        Access::Secret => anonymous == E401,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the table says {access:?} but the line says [{anonymous}, {user}, {other}, {admin}]"
        ))
    }
}

/// A fresh state with three signed-in accounts and resources owned by "user".
struct Fixture {
    _t: TestState,
    app: Router,
    user_id: String,
    user_token: String,
    /// A second session of "user", for routes that end a session.
    user_spare_session: String,
    other_token: String,
    admin_token: String,
    /// An `error_logs` entry of "user".
    correlation_id: String,
    /// A notification of "user".
    user_notification: String,
    /// A media request of "user" (pending, not linked to Overseerr).
    user_request: String,
    /// A problem report of "user".
    user_problem: String,
    /// A queued download of "user".
    user_download: String,
    /// A push subscription of "user".
    user_push_subscription: String,
    /// A YouTube subscription "user" proposed.
    user_youtube_subscription: String,
    /// A download profile no subscription uses.
    youtube_profile: String,
    /// A downloaded item (no files) of that subscription.
    user_youtube_item: String,
}

impl Fixture {
    async fn new(plex_tv_url: &str) -> Self {
        let t = support::test_state_with(|c| {
            c.plex.tv_url = plex_tv_url.to_owned();
            c.metrics.token = Some(medianest::config::Secret::new("metrics-token-0123"));
            c.webhooks.overseerr_secret = Some(medianest::config::Secret::new("hook-secret-0123"));
        });
        let state = &t.state;
        let user_id = insert_user(state, "user", None, "user", None).await;
        let other_id = insert_user(state, "other", None, "user", None).await;
        let admin_id = insert_user(state, "admin", None, "admin", None).await;
        let user_token = new_session(state, &user_id).await.token;
        let user_spare_session = new_session(state, &user_id).await.id;
        let other_token = new_session(state, &other_id).await.token;
        let admin_token = new_session(state, &admin_id).await.token;
        let correlation_id = "authz-matrix-cid".to_owned();
        let user_notification = medianest::users::new_id();
        let user_request = medianest::users::new_id();
        let user_problem = medianest::users::new_id();
        let problem = user_problem.clone();
        let user_download = medianest::users::new_id();
        let user_push_subscription = medianest::users::new_id();
        let push_subscription = user_push_subscription.clone();
        let user_youtube_subscription = medianest::users::new_id();
        let youtube_profile = medianest::users::new_id();
        let (yt_subscription, yt_profile) =
            (user_youtube_subscription.clone(), youtube_profile.clone());
        let user_youtube_item = medianest::users::new_id();
        let (yt_item, yt_item_sub) = (user_youtube_item.clone(), user_youtube_subscription.clone());
        let (cid, owner, notification, request, download) = (
            correlation_id.clone(),
            user_id.clone(),
            user_notification.clone(),
            user_request.clone(),
            user_download.clone(),
        );
        state
            .db()
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO error_logs (correlation_id, user_id, error_code, error_message,
                                             created_at)
                     VALUES (?1, ?2, 'INTERNAL_ERROR', 'boom', ?3)",
                    rusqlite::params![cid, owner, support::START_MS],
                )?;
                tx.execute(
                    "INSERT INTO service_status (id, service_name, display_name, status,
                                                 last_check_at)
                     VALUES ('s1', 'plex', 'Plex', 'up', ?1)",
                    [support::START_MS],
                )?;
                tx.execute(
                    "INSERT INTO notifications (id, user_id, type, title, message, created_at)
                     VALUES (?1, ?2, 'request.updated', 'Approved', 'A Film was approved', ?3)",
                    rusqlite::params![notification, owner, support::START_MS],
                )?;
                tx.execute(
                    "INSERT INTO media_requests (id, user_id, title, media_type, tmdb_id, status,
                                                 created_at, updated_at)
                     VALUES (?1, ?2, 'A Film', 'movie', 603, 'pending', ?3, ?3)",
                    rusqlite::params![request, owner, support::START_MS],
                )?;
                tx.execute(
                    "INSERT INTO problem_reports (id, user_id, media_type, tmdb_id, title,
                                                  seerr_media_id, seerr_issue_id, problem_type,
                                                  message, created_at, updated_at)
                     VALUES (?1, ?2, 'movie', 603, 'A Film', 1, 1, 'video', 'No sound', ?3, ?3)",
                    rusqlite::params![problem, owner, support::START_MS],
                )?;
                tx.execute(
                    "INSERT INTO youtube_downloads (id, user_id, url, kind, created_at)
                     VALUES (?1, ?2, 'https://www.youtube.com/watch?v=dQw4w9WgXcQ', 'video', ?3)",
                    rusqlite::params![download, owner, support::START_MS],
                )?;
                tx.execute(
                    "INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth,
                                                     created_at)
                     VALUES (?1, ?2, 'https://fcm.googleapis.com/send/fixture', 'k', 'a', ?3)",
                    rusqlite::params![push_subscription, owner, support::START_MS],
                )?;
                tx.execute(
                    "INSERT INTO youtube_subscriptions (id, user_id, url, kind, source_id, status,
                                                        created_at, updated_at)
                     VALUES (?1, ?2, 'https://www.youtube.com/@fixture/videos', 'channel',
                             '@fixture', 'proposed', ?3, ?3)",
                    rusqlite::params![yt_subscription, owner, support::START_MS],
                )?;
                tx.execute(
                    "INSERT INTO youtube_profiles (id, name, created_at, updated_at)
                     VALUES (?1, 'Fixture', ?2, ?2)",
                    rusqlite::params![yt_profile, support::START_MS],
                )?;
                tx.execute(
                    "INSERT INTO youtube_subscription_items (id, subscription_id, video_id, status,
                                                             created_at, updated_at)
                     VALUES (?1, ?2, 'dQw4w9WgXcQ', 'downloaded', ?3, ?3)",
                    rusqlite::params![yt_item, yt_item_sub, support::START_MS],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let app = t.router();
        Self {
            _t: t,
            app,
            user_id,
            user_token,
            user_spare_session,
            other_token,
            admin_token,
            correlation_id,
            user_notification,
            user_request,
            user_problem,
            user_download,
            user_push_subscription,
            user_youtube_subscription,
            youtube_profile,
            user_youtube_item,
        }
    }

    fn token(&self, caller: Caller) -> Option<&str> {
        match caller {
            Caller::Anonymous => None,
            Caller::User => Some(&self.user_token),
            Caller::OtherUser => Some(&self.other_token),
            Caller::Admin => Some(&self.admin_token),
        }
    }
}

/// The concrete path: each `{param}` becomes the fixture's resource of that kind.
fn fill(template: &str, fx: &Fixture) -> Result<String, String> {
    let mut parts = Vec::new();
    for segment in template.split('/') {
        let Some(param) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
            parts.push(segment.to_owned());
            continue;
        };
        let value = match param {
            "pin_id" => "no-such-pin".to_owned(),
            "key" | "rating_key" => "1".to_owned(),
            "correlation_id" => fx.correlation_id.clone(),
            "name" if template.starts_with("/api/v1/admin/integrations/") => "plex_tv".to_owned(),
            // A valid backup name that no file has.
            "name" if template.starts_with("/api/v1/admin/backups/") => {
                "medianest-20250101-000000.db".to_owned()
            }
            "name" => "plex".to_owned(),
            "id" if template.starts_with("/api/v1/auth/sessions/") => fx.user_spare_session.clone(),
            "id" if template.starts_with("/api/v1/admin/users/") => fx.user_id.clone(),
            "id" if template.starts_with("/api/v1/notifications/") => fx.user_notification.clone(),
            "id" if template.starts_with("/api/v1/media/problems/")
                || template.starts_with("/api/v1/admin/problems/") =>
            {
                fx.user_problem.clone()
            }
            "id" if template.starts_with("/api/v1/media/requests/")
                || template.starts_with("/api/v1/admin/requests/") =>
            {
                fx.user_request.clone()
            }
            "tmdbId" => "603".to_owned(),
            "row" => "trending".to_owned(),
            "size" if template.starts_with("/api/v1/images/") => "w9999".to_owned(),
            "*file" if template.starts_with("/api/v1/images/") => "a.jpg".to_owned(),
            "kind" => "ntfy".to_owned(),
            "id" if template.starts_with("/api/v1/youtube/downloads/") => fx.user_download.clone(),
            "id" if template.starts_with("/api/v1/me/push-subscriptions/") => {
                fx.user_push_subscription.clone()
            }
            "id" if template.starts_with("/api/v1/youtube/subscriptions/")
                || template.starts_with("/api/v1/admin/youtube/subscriptions/") =>
            {
                fx.user_youtube_subscription.clone()
            }
            "itemId" if template.starts_with("/api/v1/youtube/subscriptions/") => {
                fx.user_youtube_item.clone()
            }
            "id" if template.starts_with("/api/v1/admin/youtube/profiles/") => {
                fx.youtube_profile.clone()
            }
            _ => {
                return Err(format!(
                    "no fixture for {{{param}}}: add one to `fill` in tests/api/authz.rs"
                ));
            }
        };
        parts.push(value);
    }
    Ok(parts.join("/"))
}

/// The status and body of one call; an event stream's body is not read (it never ends), and
/// dropping it hangs up.
async fn answer(app: &Router, request: Request<Body>) -> (StatusCode, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let streaming = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if streaming {
        return (status, "<event stream>".to_owned());
    }
    let body = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_kind_of_caller_as_the_matrix_says() {
    let plex_tv = FakePlexTv::start().await.unwrap();
    let table = medianest::api_routes().table();
    let (mut failures, warnings) = coverage(&table);
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    let mut calls = 0;
    for route in &table {
        let key = route_key(route);
        let Some((_, body, want)) = MATRIX.iter().find(|(k, _, _)| *k == key) else {
            continue;
        };
        if let Err(e) = agrees_with_access(route.access, want) {
            failures.push(format!("{key}: {e}"));
        }
        for (caller, want) in CALLERS.into_iter().zip(*want) {
            let fx = Fixture::new(&plex_tv.url()).await;
            let path = match fill(&route.path, &fx) {
                Ok(path) => path,
                Err(e) => {
                    failures.push(format!("{key}: {e}"));
                    break;
                }
            };
            let mut request = call(route.method.as_str(), &path);
            if let Some(token) = fx.token(caller) {
                request = request.bearer(token);
            }
            if !body.is_empty() {
                request = request.json(serde_json::from_str(body).unwrap());
            }
            let (status, text) = answer(&fx.app, request.build()).await;
            calls += 1;
            if !want.accepts(status) {
                failures.push(format!(
                    "{key} as {caller:?}: expected {want}, got {status}: {}",
                    text.chars().take(300).collect::<String>()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "authorization matrix ({calls} calls):\n{}",
        failures.join("\n")
    );
    assert!(calls >= 4 * 12, "only {calls} calls were made");
}

#[test]
fn a_route_without_a_line_fails_and_a_line_without_a_route_only_warns() {
    let mut table = medianest::api_routes().table();
    table.retain(|r| r.path != "/api/v1/auth/sessions");
    table.push(RouteInfo {
        method: Method::GET,
        path: "/api/v1/brand/new".into(),
        access: Access::User,
    });
    let (missing, unused) = coverage(&table);
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(
        missing[0].starts_with("GET /api/v1/brand/new:"),
        "{missing:?}"
    );
    assert!(
        unused
            .iter()
            .any(|w| w.starts_with("GET /api/v1/auth/sessions:")),
        "{unused:?}"
    );
}

#[test]
fn lines_that_contradict_the_declared_access_are_caught() {
    assert!(agrees_with_access(Access::Admin, &[E401, E403, E403, OK]).is_ok());
    assert!(agrees_with_access(Access::Admin, &[E401, OK, E403, OK]).is_err());
    assert!(agrees_with_access(Access::User, &[OK, OK, OK, OK]).is_err());
    assert!(agrees_with_access(Access::User, &[E401, OK, E404, E404]).is_ok());
    assert!(agrees_with_access(Access::Public, &[E401, OK, OK, OK]).is_err());
    assert!(agrees_with_access(Access::Public, &[E401, E401, E401, E401]).is_ok());
}
