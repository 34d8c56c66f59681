//! Shared helpers of the API test binary: a fresh application state per test (its own temporary
//! data directory, in-memory or file database and manual clock), a `oneshot` request helper, the
//! real edge with extra test routes, and a server on an already-bound loopback port.
//!
//! Logs stay quiet unless `TEST_LOG=1`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use base64::Engine;
use medianest::clock::ManualClock;
use medianest::data_dir::DataDir;
use medianest::db::Db;
use medianest::{AppState, Config};
use tempfile::TempDir;
use tower::ServiceExt;

/// Where the manual clock of every test state starts (mid-2025, Unix ms).
pub const START_MS: i64 = 1_750_000_000_000;

/// Largest response body the helpers read.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Installs a tracing subscriber that writes through the test harness, only when `TEST_LOG` is
/// set; otherwise the tests stay silent.
pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("debug"));
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
    });
}

/// A state for one test and what it must outlive.
pub struct TestState {
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    /// The temporary directory holding the data dir; removed when the test ends.
    pub _dir: TempDir,
}

impl TestState {
    /// The production router over this state.
    pub fn router(&self) -> Router {
        medianest::router(self.state.clone())
    }
}

/// A configuration whose data dir is inside `dir`.
pub fn config_in(dir: &TempDir) -> Config {
    Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    }
}

/// A fresh state: default configuration, migrated in-memory database, temp data dir.
pub fn test_state() -> TestState {
    test_state_with(|_| {})
}

/// [`test_state`] with the configuration adjusted by `edit`.
pub fn test_state_with(edit: impl FnOnce(&mut Config)) -> TestState {
    test_state_with_db(edit, |_| Db::open_memory().unwrap())
}

/// [`test_state`] with the configuration adjusted by `edit` and the database made by `open`
/// (given the configuration, e.g. to open a file in its data dir).
pub fn test_state_with_db(
    edit: impl FnOnce(&mut Config),
    open: impl FnOnce(&Config) -> Db,
) -> TestState {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(&dir);
    edit(&mut config);
    // The key comes in like MEDIANEST_SECRET_KEY would, so no test reads the real environment.
    let key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    let data = DataDir::prepare_with(&config, Some(&key)).unwrap();
    let db = open(&config);
    let clock = Arc::new(ManualClock::new(START_MS));
    let state = AppState::new(config, db, data, clock.clone());
    TestState {
        state,
        clock,
        _dir: dir,
    }
}

/// A response read to the end.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    /// The body as JSON; panics with the body text when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// Sends one request through `app` (no network) and reads the whole response.
pub async fn send(app: &Router, request: Request<Body>) -> TestResponse {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, MAX_RESPONSE_BYTES)
        .await
        .unwrap();
    TestResponse {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// `GET path`.
pub async fn get(app: &Router, path: &str) -> TestResponse {
    send(app, Request::get(path).body(Body::empty()).unwrap()).await
}

/// `POST path` with a JSON content type and `body`.
pub async fn post_json(app: &Router, path: &str, body: impl Into<Body>) -> TestResponse {
    let request = Request::post(path)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap();
    send(app, request).await
}

/// Checks the error envelope of SPEC section 3 and returns its `error` object: `success` is
/// false, the code and status match, and the correlation id in the body is the one in the
/// `X-Correlation-ID` header.
pub fn assert_error(response: &TestResponse, status: StatusCode, code: &str) -> serde_json::Value {
    assert_eq!(response.status, status, "body: {}", response.text());
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "error bodies are JSON"
    );
    let body = response.json();
    assert_eq!(body["success"], false, "{body}");
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    let header = response
        .header("x-correlation-id")
        .expect("X-Correlation-ID header");
    assert_eq!(error["correlationId"], header, "{body}");
    error.clone()
}

/// A server running `app` over `state` on a loopback port, stopped by [`RunningServer::stop`].
pub struct RunningServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    result: Option<std::io::Result<()>>,
}

impl RunningServer {
    /// Binds `127.0.0.1:0` first, then serves on that listener: the port accepts connections
    /// before this returns, so no test waits for a server to come up.
    pub async fn start(state: &AppState, app: Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(medianest::serve_app(listener, state.clone(), app, shutdown));
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
            result: None,
        }
    }

    /// Sends the shutdown signal without waiting.
    pub fn trigger_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits up to `limit` for `serve_app` to return; true when it has. Only for showing that
    /// it does *not* return early: a bounded wait is the only way to observe an absence.
    pub async fn returns_within(&mut self, limit: Duration) -> bool {
        if self.result.is_some() {
            return true;
        }
        let Some(task) = self.task.as_mut() else {
            return true;
        };
        match tokio::time::timeout(limit, task).await {
            Ok(joined) => {
                self.result = Some(joined.unwrap());
                self.task = None;
                true
            }
            Err(_) => false,
        }
    }

    /// Signals shutdown and waits (bounded) for `serve_app` to return.
    pub async fn stop(mut self) -> std::io::Result<()> {
        self.trigger_shutdown();
        assert!(
            self.returns_within(Duration::from_secs(20)).await,
            "serve_app did not return within 20 s of the shutdown signal"
        );
        self.result.take().unwrap()
    }
}

/// Polls `check` until it returns `Some`, failing the test after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One blocking HTTP/1.1 request over a fresh connection; returns the status and body.
/// `Connection: close`, so the body is everything until the server closes.
pub fn raw_http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
