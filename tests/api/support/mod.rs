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
use medianest::clock::{Clock, ManualClock};
use medianest::data_dir::DataDir;
use medianest::db::Db;
use medianest::{AppState, Config};
use tempfile::TempDir;
use tower::ServiceExt;

pub mod services;

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
    test_state_with_clock(Arc::new(ManualClock::new(START_MS)), edit, open)
}

/// [`test_state_with_db`] on a given clock (to share it with a fake upstream).
pub fn test_state_with_clock(
    clock: Arc<ManualClock>,
    edit: impl FnOnce(&mut Config),
    open: impl FnOnce(&Config) -> Db,
) -> TestState {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(&dir);
    edit(&mut config);
    let data = DataDir::prepare_with(&config, Some(&test_secret_key())).unwrap();
    let db = open(&config);
    let state = AppState::new(config, db, data, clock.clone());
    TestState {
        state,
        clock,
        _dir: dir,
    }
}

/// The secret key of every test state. It comes in like `MEDIANEST_SECRET_KEY` would, so no
/// test reads the real environment.
fn test_secret_key() -> String {
    base64::engine::general_purpose::STANDARD.encode([42u8; 32])
}

/// Opens (and migrates) the database file in the configuration's data dir.
pub fn file_db(config: &Config) -> Db {
    Db::open_file(&config.database_path(), 4).unwrap()
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

// ---------------------------------------------------------------------------------------------
// Accounts and sessions

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "medianest_session";

/// Runs the start-up database work of `medianest::bootstrap` over a test state: the secret key
/// check, the service connection seeds and the first admin (argon2, so on the blocking pool).
pub async fn prepare(t: &TestState) {
    let state = t.state.clone();
    let now = t.clock.now_ms();
    tokio::task::spawn_blocking(move || {
        medianest::prepare_database(state.db(), state.config(), state.data_dir(), now)
    })
    .await
    .unwrap()
    .unwrap();
}

/// Stops `t` as the server does (background tasks, WAL checkpoint) and starts a new state over
/// the same data directory, database file and clock: a restart.
pub async fn restart(t: TestState) -> TestState {
    let config = t.state.config().clone();
    t.state.shutdown().await.unwrap();
    let TestState { state, clock, _dir } = t;
    drop(state);
    let data = DataDir::prepare_with(&config, Some(&test_secret_key())).unwrap();
    let db = file_db(&config);
    let state = AppState::new(config, db, data, clock.clone());
    let restarted = TestState { state, clock, _dir };
    prepare(&restarted).await;
    restarted
}

/// A request under construction: `call("POST", path).bearer(token).json(body).send(&app)`.
#[derive(Debug)]
pub struct Call {
    builder: axum::http::request::Builder,
    cookies: Vec<String>,
    body: Option<String>,
}

/// Starts a request.
pub fn call(method: &str, path: &str) -> Call {
    Call {
        builder: Request::builder().method(method).uri(path),
        cookies: Vec::new(),
        body: None,
    }
}

impl Call {
    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// Adds `name=value` to the `Cookie` header.
    pub fn cookie(mut self, name: &str, value: &str) -> Self {
        self.cookies.push(format!("{name}={value}"));
        self
    }

    /// The session cookie.
    pub fn session(self, token: &str) -> Self {
        self.cookie(SESSION_COOKIE, token)
    }

    /// `X-CSRF-Token`.
    pub fn csrf(self, token: &str) -> Self {
        self.header("x-csrf-token", token)
    }

    /// Any header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    /// The socket peer the server would see (router tests have none otherwise).
    pub fn peer(mut self, ip: &str) -> Self {
        let addr = SocketAddr::new(ip.parse().unwrap(), 40_000);
        self.builder = self.builder.extension(axum::extract::ConnectInfo(addr));
        self
    }

    /// A JSON body with its content type.
    pub fn json(mut self, body: serde_json::Value) -> Self {
        self.body = Some(body.to_string());
        self.header("content-type", "application/json")
    }

    /// The finished request.
    pub fn build(self) -> Request<Body> {
        let mut builder = self.builder;
        if !self.cookies.is_empty() {
            builder = builder.header("cookie", self.cookies.join("; "));
        }
        builder
            .body(self.body.map_or_else(Body::empty, Body::from))
            .unwrap()
    }

    /// Sends it through `app`.
    pub async fn send(self, app: &Router) -> TestResponse {
        send(app, self.build()).await
    }
}

/// A `Set-Cookie` header split into its name, value and attributes.
#[derive(Debug, Clone)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    /// Attribute names in lowercase, with their values (`""` for flags).
    pub attributes: Vec<(String, String)>,
}

impl SetCookie {
    fn parse(line: &str) -> Self {
        let mut parts = line.split(';').map(str::trim);
        let (name, value) = parts.next().unwrap().split_once('=').unwrap();
        let attributes = parts
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.to_ascii_lowercase(), v.to_owned()),
                None => (p.to_ascii_lowercase(), String::new()),
            })
            .collect();
        Self {
            name: name.to_owned(),
            value: value.to_owned(),
            attributes,
        }
    }

    /// An attribute's value (`Some("")` for a flag that is set).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.attributes
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a flag such as `HttpOnly` is set.
    pub fn has(&self, flag: &str) -> bool {
        self.attribute(flag).is_some()
    }
}

impl TestResponse {
    /// Every `Set-Cookie` header of the response.
    pub fn set_cookies(&self) -> Vec<SetCookie> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| SetCookie::parse(v.to_str().unwrap()))
            .collect()
    }

    /// The `Set-Cookie` for `name`, if the response sets it.
    pub fn set_cookie(&self, name: &str) -> Option<SetCookie> {
        self.set_cookies().into_iter().find(|c| c.name == name)
    }

    /// `data` of a success envelope; panics with the body when the response is not a success.
    pub fn data(&self) -> serde_json::Value {
        assert!(
            self.status.is_success(),
            "expected success, got {}: {}",
            self.status,
            self.text()
        );
        let body = self.json();
        assert_eq!(body["success"], true, "{body}");
        body["data"].clone()
    }
}

/// What a sign-in hands the client.
#[derive(Debug)]
pub struct SignedIn {
    pub user_id: String,
    pub token: String,
    pub csrf: String,
    pub response: TestResponse,
}

impl SignedIn {
    /// Reads a successful `POST /auth/login` (or PIN poll) answer.
    pub fn from_response(response: TestResponse) -> Self {
        let data = response.data();
        Self {
            user_id: data["user"]["id"].as_str().unwrap().to_owned(),
            token: data["token"].as_str().unwrap().to_owned(),
            csrf: data["csrfToken"].as_str().unwrap().to_owned(),
            response,
        }
    }
}

/// `POST /api/v1/auth/login` with `username` and `password`.
pub async fn login(app: &Router, username: &str, password: &str) -> TestResponse {
    call("POST", "/api/v1/auth/login")
        .json(serde_json::json!({ "username": username, "password": password }))
        .send(app)
        .await
}

/// Signs in and returns the session; panics unless the sign-in succeeds.
pub async fn sign_in(app: &Router, username: &str, password: &str) -> SignedIn {
    SignedIn::from_response(login(app, username, password).await)
}

/// Inserts a user directly (no password unless `password` is given; argon2 only then) and
/// returns its id.
pub async fn insert_user(
    state: &AppState,
    username: &str,
    email: Option<&str>,
    role: &str,
    password: Option<&str>,
) -> String {
    let hash = password.map(|p| medianest::auth::password::hash_blocking(p).unwrap());
    let id = medianest::users::new_id();
    let (i, u, e, r) = (
        id.clone(),
        username.to_owned(),
        email.map(str::to_owned),
        role.to_owned(),
    );
    state
        .db()
        .write(move |tx| {
            tx.execute(
                "INSERT INTO users (id, username, email, role, status, password_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, 'active', ?5, ?6)",
                rusqlite::params![i, u, e, r, hash, START_MS],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    id
}

/// A new session for `user_id`, made the way sign-ins make them (no HTTP, no argon2).
pub async fn new_session(state: &AppState, user_id: &str) -> medianest::auth::session::NewSession {
    let sessions = state.clone();
    let user_id = user_id.to_owned();
    let now = state.clock().now_ms();
    state
        .db()
        .write(move |tx| {
            sessions
                .sessions()
                .create(tx, &user_id, false, Some("test"), None, now)
        })
        .await
        .unwrap()
}

/// One integer from SQL (counts, flags).
pub async fn scalar(state: &AppState, sql: &str, params: Vec<rusqlite::types::Value>) -> i64 {
    let sql = sql.to_owned();
    state
        .db()
        .run(move |c| Ok(c.query_row(&sql, rusqlite::params_from_iter(params), |r| r.get(0))?))
        .await
        .unwrap()
}

/// One optional text value from SQL.
pub async fn text_value(
    state: &AppState,
    sql: &str,
    params: Vec<rusqlite::types::Value>,
) -> Option<String> {
    let sql = sql.to_owned();
    state
        .db()
        .run(move |c| {
            use rusqlite::OptionalExtension;
            Ok(c.query_row(&sql, rusqlite::params_from_iter(params), |r| {
                r.get::<_, Option<String>>(0)
            })
            .optional()?
            .flatten())
        })
        .await
        .unwrap()
}

/// A text SQL parameter.
pub fn sql_text(value: &str) -> rusqlite::types::Value {
    rusqlite::types::Value::Text(value.to_owned())
}
