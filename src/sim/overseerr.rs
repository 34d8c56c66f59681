//! A fake Overseerr (UPSTREAMS.md 2): the public `GET /api/v1/status` (and
//! `/api/v1/status/appdata`), with Overseerr's `{"message": ...}` error body on failures and
//! unknown paths; and, behind [`FakeOverseerr::api_key`] in `X-Api-Key` (with `X-API-User`
//! choosing the acting user), search over a small catalogue, movie and TV details, the user
//! list and requests (create, list, count, get, delete, approve, decline), in the `routes`
//! and `library` submodules. It also fires webhook notifications at MediaNest
//! ([`FakeOverseerr::fire_webhook`]).
//!
//! A test or the demo steers it through [`FakeOverseerr`]'s methods: the version and update
//! state, injected failures and latency, per-endpoint request counts, the last `X-Api-Key`
//! and `X-API-User` seen, and (in `control`) the catalogue, users, auto-approve, quotas and
//! request and media statuses. State sits behind a `std` mutex that is never held across an
//! `.await`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

mod control;
mod library;
#[cfg(test)]
mod media_tests;
mod routes;

pub use control::{FakeNotification, WebhookTemplate};
pub use library::{
    DEFAULT_SEARCH_PAGE_SIZE, FakeOverseerrUser, FakeRequest, FakeTitle, default_admin,
    default_catalogue, permission,
};

/// The version the fake reports until told otherwise (the final Overseerr line).
pub const DEFAULT_VERSION: &str = "1.33.2";
/// The API key the fake expects on authenticated routes until told otherwise.
pub const DEFAULT_API_KEY: &str = "fake-overseerr-api-key";
/// How long [`FakeOverseerr::shutdown`] lets open connections finish before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A failure to inject into the next responses (see [`FakeOverseerr::fail_next`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and Overseerr's `{"message": ...}` body.
    Status(u16),
    /// 200 with a body that is not valid JSON.
    Garbage,
    /// Wait this long, then answer normally.
    Hang(Duration),
}

/// A running fake Overseerr on `127.0.0.1`. Dropping it stops the server; so does
/// [`FakeOverseerr::shutdown`], after which connections are refused.
pub struct FakeOverseerr {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for FakeOverseerr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeOverseerr")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

struct Shared {
    state: Mutex<SimState>,
    stop: CancellationToken,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SimState> {
        // A panicking test thread must not take every later request down with it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps for `duration` unless the server stops first; false when it stopped.
    async fn wait(&self, duration: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(duration) => true,
            () = self.stop.cancelled() => false,
        }
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
    faults: VecDeque<Fault>,
    latency: Duration,
    counts: HashMap<String, u64>,
}

impl FakeOverseerr {
    /// Binds `127.0.0.1:0`, starts serving in the background and returns the handle; the port
    /// accepts connections as soon as this returns.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
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
                faults: VecDeque::new(),
                latency: Duration::ZERO,
                counts: HashMap::new(),
            }),
            stop: CancellationToken::new(),
        });
        let app = router(shared.clone());
        let stop = shared.stop.clone();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "fake Overseerr stopped with an error");
            }
        });
        Ok(Self {
            addr,
            shared,
            task: Mutex::new(Some(task)),
        })
    }

    /// The base URL, e.g. `http://127.0.0.1:41234` (use as `services.overseerr.url`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
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

    /// Makes the next `n` requests (to any path) fail with `fault`.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut state = self.shared.lock();
        state.faults.extend(std::iter::repeat_n(fault, n));
    }

    /// Delays every response by `latency` until set back to zero (a slow or hanging Overseerr).
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    /// Requests received by an endpoint, named `"<METHOD> <route>"` as routed, e.g.
    /// `"GET /api/v1/status"`; unrouted paths count under their raw path. Injected-fault
    /// requests count too.
    pub fn requests(&self, endpoint: &str) -> u64 {
        self.shared
            .lock()
            .counts
            .get(endpoint)
            .copied()
            .unwrap_or(0)
    }

    /// Requests received in total.
    pub fn total_requests(&self) -> u64 {
        self.shared.lock().counts.values().sum()
    }

    /// Stops the server: new connections are refused at once, open ones get a short grace.
    pub async fn shutdown(&self) {
        self.shared.stop.cancel();
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let abort = task.abort_handle();
            if tokio::time::timeout(SHUTDOWN_GRACE, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for FakeOverseerr {
    fn drop(&mut self) {
        self.shared.stop.cancel();
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/status/appdata", get(appdata))
        .merge(routes::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(shared.clone(), observe))
        .with_state(shared)
}

/// Counts the request and notes its key, then applies latency and any injected fault.
async fn observe(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |m| m.as_str().to_owned(),
    );
    let key = format!("{} {route}", request.method());
    let headers = request.headers();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (api_key, api_user) = (header("x-api-key"), header("x-api-user"));
    let (latency, fault) = {
        let mut state = shared.lock();
        *state.counts.entry(key).or_default() += 1;
        state.last_api_key = api_key;
        state.last_api_user = api_user;
        (state.latency, state.faults.pop_front())
    };
    if !latency.is_zero() && !shared.wait(latency).await {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match fault {
        None => next.run(request).await,
        Some(Fault::Hang(duration)) => {
            if !shared.wait(duration).await {
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
            next.run(request).await
        }
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            message(status, status.canonical_reason().unwrap_or("Error"))
        }
        Some(Fault::Garbage) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            r#"{"version":"1.33.2","commitTag":"v1.3"#,
        )
            .into_response(),
    }
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

async fn appdata() -> Response {
    axum::Json(json!({"appData": true, "appDataPath": "/app/config"})).into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::error::{AppError, ErrorCode};
    use crate::integrations::upstream::{
        Request as UpRequest, Upstream, UpstreamOptions, read_text,
    };

    async fn fetch(request: UpRequest) -> (u16, String) {
        Upstream::new("Overseerr", UpstreamOptions::with_timeout_ms(2000))
            .send(request, |r| {
                let status = r.status().as_u16();
                Ok((status, read_text(r)?))
            })
            .await
            .unwrap()
    }

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
        let e = Upstream::new("Overseerr", UpstreamOptions::with_timeout_ms(2000))
            .send(UpRequest::get(url), |r| Ok(r.status().as_u16()))
            .await
            .unwrap_err();
        assert!(matches!(
            e,
            AppError::Upstream {
                code: ErrorCode::ServiceUnavailable,
                ..
            }
        ));
    }
}
