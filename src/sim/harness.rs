//! The server plumbing every simulator shares: a loopback listener on `127.0.0.1:0` served in
//! the background until [`SimServer::shutdown`] or drop, per-route request counts, a latency
//! knob and a queue of injected faults, applied by the [`observe`] middleware.
//!
//! Each simulator composes a [`SimServer`] and keeps its own routes, state and fault type: what
//! a failure looks like on the wire (an HTML page, `{"message"}`, `{"status":"fail"}`) is the
//! upstream's, so the fault type says it through [`SimFault`]. Nothing here knows any
//! upstream's shapes, and no simulator's state lives here.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long [`SimServer::shutdown`] lets open connections finish before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// What an injected fault does to the request it hits.
#[derive(Debug)]
pub enum Effect {
    /// Wait this long, then answer normally (a hanging upstream).
    Delay(Duration),
    /// Answer this instead of the route.
    Answer(Response),
}

/// A simulator's injectable failure, which knows how its upstream would answer it.
pub trait SimFault: Clone + Send + 'static {
    /// The effect on the request this fault is applied to.
    fn effect(self) -> Effect;
}

/// Locks a simulator's state, shrugging off poisoning: a panicking test thread must not take
/// every later request down with it.
pub fn lock<T>(state: &Mutex<T>) -> MutexGuard<'_, T> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `code` as a status, 500 when it is not a valid one.
pub fn status_or_500(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// What [`observe`] counts and applies; shared between the handle and the middleware.
pub struct Traffic<F> {
    state: Mutex<TrafficState<F>>,
    stop: CancellationToken,
}

struct TrafficState<F> {
    /// Each fault with the route it is aimed at (`None`: the next request, whatever it is).
    faults: VecDeque<(Option<&'static str>, F)>,
    latency: Duration,
    counts: HashMap<String, u64>,
}

impl<F> Traffic<F> {
    fn lock(&self) -> MutexGuard<'_, TrafficState<F>> {
        lock(&self.state)
    }

    /// Resolves when the server stops: what a route that never answers (an upstream that leaves
    /// the request hanging) waits on, so the server still shuts down promptly.
    pub async fn stopped(&self) {
        self.stop.cancelled().await;
    }

    /// Sleeps for `duration` unless the server stops first; false when it stopped.
    async fn wait(&self, duration: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(duration) => true,
            () = self.stop.cancelled() => false,
        }
    }
}

/// The middleware a simulator layers around its routes: counts the request under
/// `"<METHOD> <route>"`, then applies the latency and the first queued fault aimed at this
/// route (or at any). Layer it outside anything that may refuse a request, so refusals count.
pub async fn observe<F: SimFault>(
    State(traffic): State<Arc<Traffic<F>>>,
    request: Request,
    next: Next,
) -> Response {
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str());
    let route = matched.unwrap_or_else(|| request.uri().path());
    let key = format!("{} {route}", request.method());
    let (latency, fault) = {
        let mut state = traffic.lock();
        *state.counts.entry(key).or_default() += 1;
        let index = state
            .faults
            .iter()
            .position(|(aim, _)| aim.is_none() || *aim == matched);
        let fault = index
            .and_then(|i| state.faults.remove(i))
            .map(|(_, fault)| fault);
        (state.latency, fault)
    };
    if !latency.is_zero() && !traffic.wait(latency).await {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match fault.map(SimFault::effect) {
        None => next.run(request).await,
        Some(Effect::Delay(duration)) => {
            if !traffic.wait(duration).await {
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
            next.run(request).await
        }
        Some(Effect::Answer(response)) => response,
    }
}

/// A simulator's running server on `127.0.0.1`. Dropping it stops the server; so does
/// [`SimServer::shutdown`], after which connections are refused.
pub struct SimServer<F> {
    addr: SocketAddr,
    traffic: Arc<Traffic<F>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl<F> fmt::Debug for SimServer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_as("SimServer", f)
    }
}

impl<F: SimFault> SimServer<F> {
    /// Binds `127.0.0.1:0` and serves the router `app` builds in the background; the port
    /// accepts connections as soon as this returns. `app` gets the [`Traffic`] to layer
    /// [`observe`] with; `name` (e.g. "fake Plex server") is for the log.
    pub async fn start(
        name: &'static str,
        app: impl FnOnce(Arc<Traffic<F>>) -> Router,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let traffic = Arc::new(Traffic {
            state: Mutex::new(TrafficState {
                faults: VecDeque::new(),
                latency: Duration::ZERO,
                counts: HashMap::new(),
            }),
            stop: CancellationToken::new(),
        });
        let app = app(traffic.clone());
        let stop = traffic.stop.clone();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "{name} stopped with an error");
            }
        });
        Ok(Self {
            addr,
            traffic,
            task: Mutex::new(Some(task)),
        })
    }

    /// Makes the next `n` requests (to any path) fail with `fault`.
    pub fn fail_next(&self, n: usize, fault: F) {
        let mut state = self.traffic.lock();
        state.faults.extend(std::iter::repeat_n((None, fault), n));
    }

    /// Makes the next `n` requests routed to `route` (as declared, e.g.
    /// `"/api/status-page/{slug}"`) fail with `fault`; other routes are unaffected.
    pub fn fail_next_on_route(&self, route: &'static str, n: usize, fault: F) {
        let mut state = self.traffic.lock();
        state
            .faults
            .extend(std::iter::repeat_n((Some(route), fault), n));
    }
}

impl<F> SimServer<F> {
    /// The base URL, e.g. `http://127.0.0.1:41234` (what the service's `url` setting takes).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Delays every response by `latency` until set back to zero (a slow or hanging upstream).
    pub fn set_latency(&self, latency: Duration) {
        self.traffic.lock().latency = latency;
    }

    /// Requests received by an endpoint, named `"<METHOD> <route>"` as routed, e.g.
    /// `"GET /identity"` or `"GET /api/v2/pins/{id}"`; unrouted paths count under their raw
    /// path. Refused and injected-fault requests count too.
    pub fn requests(&self, endpoint: &str) -> u64 {
        self.traffic
            .lock()
            .counts
            .get(endpoint)
            .copied()
            .unwrap_or(0)
    }

    /// Requests received in total.
    pub fn total_requests(&self) -> u64 {
        self.traffic.lock().counts.values().sum()
    }

    /// Stops the server: new connections are refused at once, open ones get a short grace.
    pub async fn shutdown(&self) {
        self.traffic.stop.cancel();
        let task = lock(&self.task).take();
        if let Some(task) = task {
            let abort = task.abort_handle();
            if tokio::time::timeout(SHUTDOWN_GRACE, task).await.is_err() {
                abort.abort();
            }
        }
    }

    /// Debug output for a simulator handle: its type name and address.
    pub fn fmt_as(&self, type_name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(type_name)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl<F> Drop for SimServer<F> {
    fn drop(&mut self) {
        self.traffic.stop.cancel();
    }
}

/// Helpers for the simulators' own tests: a plain client over the real gateway.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod testing {
    use crate::error::{AppError, ErrorCode};
    use crate::integrations::upstream::{Request, Upstream, UpstreamOptions, read_text};

    fn gateway() -> Upstream {
        Upstream::new("Simulator", UpstreamOptions::with_timeout_ms(2000))
    }

    /// Sends `request` and returns the status and the body as text.
    pub async fn fetch(request: Request) -> (u16, String) {
        gateway()
            .send(request, |r| {
                let status = r.status().as_u16();
                Ok((status, read_text(r)?))
            })
            .await
            .unwrap()
    }

    /// Asserts that a GET of `url` finds nobody listening (the simulator stopped).
    pub async fn assert_refused(url: String) {
        let e = gateway()
            .send(Request::get(url), |r| Ok(r.status().as_u16()))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                AppError::Upstream {
                    code: ErrorCode::ServiceUnavailable,
                    ..
                }
            ),
            "{e:?}"
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use axum::middleware;
    use axum::routing::get;

    use super::testing::{assert_refused, fetch};
    use super::*;
    use crate::integrations::upstream::Request as UpRequest;

    #[derive(Debug, Clone)]
    enum Fault {
        Status(u16),
        Hang(Duration),
    }

    impl SimFault for Fault {
        fn effect(self) -> Effect {
            match self {
                Self::Status(code) => Effect::Answer(status_or_500(code).into_response()),
                Self::Hang(duration) => Effect::Delay(duration),
            }
        }
    }

    async fn start() -> SimServer<Fault> {
        SimServer::start("test server", |traffic| {
            Router::new()
                .route("/a/{id}", get(|| async { "a" }))
                .route("/b", get(|| async { "b" }))
                .layer(middleware::from_fn_with_state(traffic, observe::<Fault>))
        })
        .await
        .unwrap()
    }

    async fn status(url: String) -> u16 {
        fetch(UpRequest::get(url)).await.0
    }

    #[tokio::test]
    async fn counts_by_route_and_aims_faults_at_one_route() {
        let server = start().await;
        server.fail_next_on_route("/a/{id}", 1, Fault::Status(418));
        server.fail_next(1, Fault::Status(500));
        // The untargeted fault is queued second but is the first one that fits /b.
        assert_eq!(status(format!("{}/b", server.url())).await, 500);
        assert_eq!(status(format!("{}/a/1", server.url())).await, 418);
        assert_eq!(status(format!("{}/a/2", server.url())).await, 200);
        assert_eq!(status(format!("{}/nope", server.url())).await, 404);
        assert_eq!(server.requests("GET /a/{id}"), 2);
        assert_eq!(server.requests("GET /b"), 1);
        assert_eq!(server.requests("GET /nope"), 1);
        assert_eq!(server.total_requests(), 4);
    }

    #[tokio::test]
    async fn latency_and_hang_delay_then_answer() {
        let server = start().await;
        server.set_latency(Duration::from_millis(60));
        server.fail_next(1, Fault::Hang(Duration::from_millis(60)));
        let began = std::time::Instant::now();
        assert_eq!(status(format!("{}/b", server.url())).await, 200);
        assert!(began.elapsed() >= Duration::from_millis(120));
    }

    #[tokio::test]
    async fn a_stopped_server_refuses_connections() {
        let server = start().await;
        let url = format!("{}/b", server.url());
        server.shutdown().await;
        assert_refused(url).await;
    }
}
