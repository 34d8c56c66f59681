//! A fake Overseerr (UPSTREAMS.md 2): the public `GET /api/v1/status` (and
//! `/api/v1/status/appdata`), with Overseerr's `{"message": ...}` error body on failures and
//! unknown paths; and, behind [`FakeOverseerr::api_key`] in `X-Api-Key` (with `X-API-User`
//! choosing the acting user), search and the five discover rows over a small catalogue, movie
//! and TV details, the user list and requests (create, list, count, get, delete, approve,
//! decline), in the `routes` and `library` submodules. It also fires webhook notifications at
//! MediaNest ([`FakeOverseerr::fire_webhook`]).
//!
//! A test or the demo steers it through [`FakeOverseerr`]'s methods: the version and update
//! state, injected failures and latency and per-endpoint request counts (from the
//! [`SimServer`] harness), the last `X-Api-Key` and `X-API-User` seen, and (in `control`) the
//! catalogue, users, auto-approve, quotas and request and media statuses. State sits behind a
//! `std` mutex that is never held across an `.await`.

use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::harness::{self, Effect, SimFault, SimServer, Traffic};

mod control;
pub mod images;
mod issues;
mod library;
#[cfg(test)]
mod media_tests;
mod routes;

pub use control::{FakeNotification, WebhookTemplate};
pub use issues::{FakeIssue, FakeIssueComment, SentIssueWebhook};
pub use library::{
    DEFAULT_SEARCH_PAGE_SIZE, FakeOverseerrUser, FakeRequest, FakeTitle, default_admin,
    default_catalogue, permission,
};

/// The version the fake reports until told otherwise (the final Overseerr line).
pub const DEFAULT_VERSION: &str = "1.33.2";
/// The version a Seerr-flavoured fake reports (seerr-team/seerr's chart at 3.1.0).
pub const DEFAULT_SEERR_VERSION: &str = "3.1.0";

pub use crate::integrations::overseerr::Flavor;
/// The API key the fake expects on authenticated routes until told otherwise.
pub const DEFAULT_API_KEY: &str = "fake-overseerr-api-key";

/// A failure to inject into the next responses (see [`SimServer::fail_next`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and Overseerr's `{"message": ...}` body.
    Status(u16),
    /// 200 with a body that is not valid JSON.
    Garbage,
    /// Wait this long, then answer normally.
    Hang(Duration),
}

impl SimFault for Fault {
    fn effect(self) -> Effect {
        match self {
            Self::Hang(duration) => Effect::Delay(duration),
            Self::Status(code) => {
                let status = harness::status_or_500(code);
                Effect::Answer(message(
                    status,
                    status.canonical_reason().unwrap_or("Error"),
                ))
            }
            Self::Garbage => Effect::Answer(
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                    r#"{"version":"1.33.2","commitTag":"v1.3"#,
                )
                    .into_response(),
            ),
        }
    }
}

/// A running fake Overseerr on `127.0.0.1`. Dropping it stops the server; so does
/// [`SimServer::shutdown`], after which connections are refused. The [`SimServer`] it derefs
/// to has the shared controls: `url`, `fail_next`, `set_latency`, `requests`, `shutdown`.
pub struct FakeOverseerr {
    server: SimServer<Fault>,
    shared: Arc<Shared>,
}

impl Deref for FakeOverseerr {
    type Target = SimServer<Fault>;

    fn deref(&self) -> &SimServer<Fault> {
        &self.server
    }
}

impl std::fmt::Debug for FakeOverseerr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.server.fmt_as("FakeOverseerr", f)
    }
}

struct Shared {
    state: Mutex<SimState>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SimState> {
        harness::lock(&self.state)
    }
}

struct SimState {
    version: String,
    update_available: bool,
    commits_behind: u64,
    restart_required: bool,
    api_key: String,
    last_api_key: Option<String>,
    last_api_user: Option<String>,
    library: library::Library,
    /// Where the demo controls send webhooks, and their `Authorization`.
    webhook: Option<(String, Option<String>)>,
    /// A notification sent (to `webhook`) about each new request *before* the create call is
    /// answered (see [`FakeOverseerr::set_webhook_on_create`]).
    hook_on_create: Option<crate::integrations::overseerr::NotificationType>,
    /// Issues and the webhooks sent about them.
    issues: issues::Issues,
}

impl FakeOverseerr {
    /// Binds `127.0.0.1:0`, starts serving in the background and returns the handle; the port
    /// accepts connections as soon as this returns.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_as(Flavor::Overseerr).await
    }

    /// As [`Self::start`], playing `flavor`: Seerr 3.x or Overseerr 1.33 (see
    /// [`Self::set_flavor`]).
    pub async fn start_as(flavor: Flavor) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(SimState {
                version: DEFAULT_VERSION.to_owned(),
                update_available: false,
                commits_behind: 0,
                restart_required: false,
                api_key: DEFAULT_API_KEY.to_owned(),
                last_api_key: None,
                last_api_user: None,
                library: library::Library::default(),
                webhook: None,
                hook_on_create: None,
                issues: issues::Issues::default(),
            }),
        });
        let server =
            SimServer::start("fake Overseerr", |traffic| router(shared.clone(), traffic)).await?;
        let fake = Self { server, shared };
        fake.set_flavor(flavor);
        Ok(fake)
    }

    /// Plays Seerr (3.x: `COMPLETED` requests, the blocklist, `"all"` without specials, Jellyfin
    /// users, its public settings and wider query parameters) or Overseerr (1.33/1.34). Moves a
    /// default version to the flavour's.
    pub fn set_flavor(&self, flavor: Flavor) {
        let mut state = self.shared.lock();
        state.library.flavor = flavor;
        if matches!(
            state.version.as_str(),
            DEFAULT_VERSION | DEFAULT_SEERR_VERSION
        ) {
            state.version = match flavor {
                Flavor::Seerr => DEFAULT_SEERR_VERSION,
                Flavor::Overseerr => DEFAULT_VERSION,
            }
            .to_owned();
        }
    }

    /// The flavour played.
    pub fn flavor(&self) -> Flavor {
        self.shared.lock().library.flavor
    }

    /// Seerr's `enableSpecialEpisodes` setting (off by default: season 0 is never requested).
    pub fn set_special_episodes(&self, on: bool) {
        self.shared.lock().library.special_episodes = on;
    }

    /// The API key authenticated routes expect in `X-Api-Key`.
    pub fn api_key(&self) -> String {
        self.shared.lock().api_key.clone()
    }

    /// Sets the expected API key.
    pub fn set_api_key(&self, key: &str) {
        self.shared.lock().api_key = key.to_owned();
    }

    /// Sets the reported `version` (and `commitTag` = `v<version>`).
    pub fn set_version(&self, version: &str) {
        self.shared.lock().version = version.to_owned();
    }

    /// Sets `updateAvailable` and `commitsBehind`.
    pub fn set_update(&self, update_available: bool, commits_behind: u64) {
        let mut state = self.shared.lock();
        state.update_available = update_available;
        state.commits_behind = commits_behind;
    }

    /// Sets `restartRequired`.
    pub fn set_restart_required(&self, restart_required: bool) {
        self.shared.lock().restart_required = restart_required;
    }

    /// The `X-Api-Key` header of the latest request, `None` when it had none.
    pub fn last_api_key(&self) -> Option<String> {
        self.shared.lock().last_api_key.clone()
    }
}

fn router(shared: Arc<Shared>, traffic: Arc<Traffic<Fault>>) -> Router {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/status/appdata", get(appdata))
        .route("/api/v1/settings/public", get(public_settings))
        .merge(routes::routes())
        .merge(issues::routes())
        .route("/tmdb-images/{size}/{file}", get(images::serve))
        .route(
            "/demo/requests/{id}/{action}",
            axum::routing::post(demo_action),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            traffic,
            harness::observe::<Fault>,
        ))
        // Outermost, so a request an injected fault answers still leaves its key behind.
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            note_credentials,
        ))
        .with_state(shared)
}

/// `POST /demo/requests/{id}/{approve|available|decline}`: what an Overseerr admin and the
/// *arr apps would do to a request, followed by the webhook Overseerr sends about it (to the
/// target of [`FakeOverseerr::set_webhook_target`]). For the demo and browser tests, which drive
/// the binary from outside; answers `{"webhookStatus": <MediaNest's answer or null>}`.
async fn demo_action(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path((id, action)): axum::extract::Path<(i64, String)>,
) -> Response {
    use crate::integrations::overseerr::{MediaRequestStatus, MediaStatus, NotificationType};
    let (body, target) = {
        let mut state = shared.lock();
        let Some(request) = state.library.request(id).cloned() else {
            return message(StatusCode::NOT_FOUND, "Request not found.");
        };
        let (status, media, kind) = match action.as_str() {
            "approve" => (
                MediaRequestStatus::Approved,
                MediaStatus::Processing,
                NotificationType::MediaApproved,
            ),
            "available" => (
                MediaRequestStatus::Approved,
                MediaStatus::Available,
                NotificationType::MediaAvailable,
            ),
            "decline" => (
                MediaRequestStatus::Declined,
                MediaStatus::Unknown,
                NotificationType::MediaDeclined,
            ),
            _ => return message(StatusCode::NOT_FOUND, "Unknown action."),
        };
        state.library.set_request_status(id, status);
        state
            .library
            .set_media_status(request.media_type, request.tmdb_id, media);
        let body = control::payload(&state, &FakeNotification::about(kind, id));
        (body, state.webhook.clone())
    };
    let fired = match target {
        Some((url, authorization)) => {
            let bytes = serde_json::to_vec(&body).unwrap_or_default();
            control::post_webhook(&url, authorization.as_deref(), bytes)
                .await
                .ok()
        }
        None => None,
    };
    axum::Json(json!({ "webhookStatus": fired })).into_response()
}

/// Notes the request's `X-Api-Key` and `X-API-User` (see [`FakeOverseerr::last_api_key`]).
async fn note_credentials(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (api_key, api_user) = (header("x-api-key"), header("x-api-user"));
    {
        let mut state = shared.lock();
        state.last_api_key = api_key;
        state.last_api_user = api_user;
    }
    next.run(request).await
}

/// Overseerr's error shape for route and validator errors (UPSTREAMS.md 2.2, shape 1).
fn message(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({ "message": text }))).into_response()
}

async fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not Found")
}

async fn status(State(shared): State<Arc<Shared>>) -> Response {
    let body = {
        let state = shared.lock();
        json!({
            "version": state.version,
            "commitTag": format!("v{}", state.version),
            "updateAvailable": state.update_available,
            "commitsBehind": state.commits_behind,
            "restartRequired": state.restart_required,
        })
    };
    axum::Json(body).into_response()
}

/// `GET /api/v1/settings/public` (no authentication on either), a subset of the real keys with
/// their defaults: Seerr's `fullPublicSettings` (server/lib/settings/index.ts in
/// seerr-team/seerr develop) or Overseerr's (server/lib/settings.ts in sct/overseerr 1.34.0).
async fn public_settings(State(shared): State<Arc<Shared>>) -> Response {
    let state = shared.lock();
    let mut body = json!({
        "initialized": true, "applicationTitle": state.library.flavor.name(),
        "applicationUrl": "", "hideAvailable": false, "localLogin": true,
        "movie4kEnabled": false, "series4kEnabled": false, "originalLanguage": "",
        "partialRequestsEnabled": true, "cacheImages": false, "vapidPublic": "",
        "enablePushRegistration": false, "locale": "en", "emailEnabled": false,
        "newPlexLogin": true,
    });
    match state.library.flavor {
        Flavor::Overseerr => body["region"] = json!(""),
        Flavor::Seerr => {
            body["hideBlocklisted"] = json!(false);
            body["mediaServerLogin"] = json!(true);
            body["jellyfinExternalHost"] = json!("");
            body["discoverRegion"] = json!("");
            body["streamingRegion"] = json!("");
            // 1 Plex, 2 Jellyfin, 3 Emby, 4 not configured (server/constants/server.ts).
            body["mediaServerType"] = json!(1);
            body["enableSpecialEpisodes"] = json!(state.library.special_episodes);
            body["userEmailRequired"] = json!(false);
            body["youtubeUrl"] = json!("");
        }
    }
    axum::Json(body).into_response()
}

async fn appdata() -> Response {
    axum::Json(json!({"appData": true, "appDataPath": "/app/config"})).into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::integrations::upstream::Request as UpRequest;
    use crate::sim::harness::testing::{assert_refused, fetch};

    #[tokio::test]
    async fn status_has_the_documented_shape() {
        let fake = FakeOverseerr::start().await.unwrap();
        fake.set_restart_required(true);
        let (status, body) = fetch(UpRequest::get(format!("{}/api/v1/status", fake.url()))).await;
        assert_eq!(status, 200);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            json!({"version": DEFAULT_VERSION, "commitTag": format!("v{DEFAULT_VERSION}"),
                   "updateAvailable": false, "commitsBehind": 0, "restartRequired": true})
        );
        let (status, body) = fetch(UpRequest::get(format!(
            "{}/api/v1/status/appdata",
            fake.url()
        )))
        .await;
        assert_eq!(status, 200);
        assert!(body.contains("appDataPath"));
        assert_eq!(fake.requests("GET /api/v1/status"), 1);
        assert_eq!(fake.total_requests(), 2);
    }

    #[tokio::test]
    async fn faults_answer_in_overseerr_shapes_then_clear() {
        let fake = FakeOverseerr::start().await.unwrap();
        let url = format!("{}/api/v1/status", fake.url());
        fake.fail_next(1, Fault::Status(500));
        fake.fail_next(1, Fault::Garbage);
        let (status, body) = fetch(UpRequest::get(&url)).await;
        assert_eq!(status, 500);
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["message"],
            "Internal Server Error"
        );
        let (status, body) = fetch(UpRequest::get(&url)).await;
        assert_eq!(status, 200);
        assert!(serde_json::from_str::<Value>(&body).is_err());
        assert_eq!(fetch(UpRequest::get(&url)).await.0, 200);

        let (status, body) = fetch(UpRequest::get(format!("{}/api/v1/nope", fake.url()))).await;
        assert_eq!(status, 404);
        assert!(body.contains("message"));
        assert_eq!(fake.requests("GET /api/v1/nope"), 1);
    }

    #[tokio::test]
    async fn latency_and_hang_delay_the_answer() {
        let fake = FakeOverseerr::start().await.unwrap();
        let url = format!("{}/api/v1/status", fake.url());
        fake.set_latency(Duration::from_millis(100));
        fake.fail_next(1, Fault::Hang(Duration::from_millis(100)));
        let began = std::time::Instant::now();
        assert_eq!(fetch(UpRequest::get(&url)).await.0, 200);
        assert!(began.elapsed() >= Duration::from_millis(200));
        fake.set_latency(Duration::ZERO);
    }

    #[tokio::test]
    async fn records_the_api_key_and_refuses_after_shutdown() {
        let fake = FakeOverseerr::start().await.unwrap();
        fake.set_api_key("k2");
        assert_eq!(fake.api_key(), "k2");
        let url = format!("{}/api/v1/status", fake.url());
        fetch(UpRequest::get(&url).header("X-Api-Key", "k2")).await;
        assert_eq!(fake.last_api_key().as_deref(), Some("k2"));
        fake.shutdown().await;
        assert_refused(url).await;
    }
}
