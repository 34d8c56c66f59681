//! The one helper for blocking upstream calls (SPEC section 8).
//!
//! An [`Upstream`] owns, per service: a `ureq` agent (keep-alive pool, connect timeout, User-Agent,
//! non-2xx statuses returned as responses rather than errors), a semaphore that bounds how many
//! calls may be in flight, and the whole-call timeout. [`Upstream::call`] is the single door to
//! the blocking pool: it takes a permit, runs the closure with `spawn_blocking` inside the current
//! tracing span, re-raises panics, and turns an [`UpstreamFailure`] into the catalog's
//! [`AppError::Upstream`]. [`Upstream::send`] adds the retry policy for idempotent GETs on top.
//!
//! This module must not know any upstream's URLs or shapes, and must never log a token: every URL
//! and every failure text passes through [`redact`], and header values are never logged at all.

use std::fmt;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use ureq::http::Response;
use ureq::{Agent, Body, RequestBuilder};

use super::breaker::{Breaker, Outcome};
use crate::clock::SharedClock;
use crate::error::{AppError, AppResult, ErrorCode};

/// How long establishing a connection (DNS, TCP, TLS) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The whole-call timeout when a service does not configure its own `timeoutMs`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(5000);
/// Calls in flight per upstream by default; more wait for a permit.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 8;
/// Responses larger than this are refused (read as an `UPSTREAM_ERROR`).
pub const MAX_RESPONSE_BYTES: u64 = 10 * 1024 * 1024;
/// Retries after the first attempt of an idempotent GET.
pub const MAX_RETRIES: u32 = 2;

/// The first retry waits about this long; each later one twice as long as the one before.
const BASE_BACKOFF: Duration = Duration::from_millis(200);
/// A retry is only worth starting if at least this much of the deadline is left after the backoff.
const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(100);
/// How much of an error body is read and kept for the log.
const SNIPPET_READ_BYTES: u64 = 4096;
const SNIPPET_CHARS: usize = 200;

/// Per-upstream settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamOptions {
    /// Whole-call deadline: waiting for a permit, every attempt, backoffs and reading the body.
    pub timeout: Duration,
    /// Calls allowed in flight at once.
    pub max_in_flight: usize,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

impl UpstreamOptions {
    /// Defaults with the service's `timeoutMs`.
    pub fn with_timeout_ms(timeout_ms: u64) -> Self {
        Self {
            timeout: Duration::from_millis(timeout_ms),
            ..Self::default()
        }
    }
}

/// Why an upstream call failed, before it becomes an [`AppError`].
///
/// Callers see this inside their closures, so they can treat some cases as answers (a 404 that
/// means "no such PIN", a 401 that means "token revoked") before the generic mapping applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// No connection could be made (refused, unknown host, unreachable network). Safe to retry:
    /// the upstream never saw the request.
    Connect(String),
    /// The connection broke after it was made, or the exchange was not valid HTTP.
    Transport(String),
    /// The call's deadline passed.
    Timeout,
    /// A status the caller did not expect.
    Status {
        status: u16,
        /// The start of the body, redacted, for the log.
        body_snippet: String,
        /// Seconds from a numeric `Retry-After` header.
        retry_after: Option<u64>,
    },
    /// A response arrived but could not be used: wrong shape, not JSON/XML, or over the size cap.
    Decode(String),
}

impl UpstreamFailure {
    /// Whether an idempotent request may be tried again after this failure.
    fn is_retryable(&self) -> bool {
        match self {
            Self::Connect(_) => true,
            Self::Status { status, .. } => is_retryable_status(*status),
            Self::Transport(_) | Self::Timeout | Self::Decode(_) => false,
        }
    }

    /// The error a client sees, with the service's display name and this failure as log detail.
    pub fn into_app_error(self, service: &'static str) -> AppError {
        let (code, retry_after) = match &self {
            Self::Connect(_) | Self::Transport(_) => (ErrorCode::ServiceUnavailable, None),
            Self::Timeout => (ErrorCode::UpstreamTimeout, None),
            // Being rate limited upstream is "unavailable for now", not a broken response.
            Self::Status {
                status: 429,
                retry_after,
                ..
            } => (ErrorCode::ServiceUnavailable, *retry_after),
            Self::Status { status, .. } if (300..400).contains(status) => {
                // Not followed (secrets must not go to an address nobody configured): the
                // admin has to set the final address, and the answer says so.
                tracing::warn!(service, detail = %self, "upstream answered with a redirect");
                return AppError::Api {
                    code: ErrorCode::UpstreamError,
                    service: Some(service),
                    details: Some(serde_json::json!({
                        "reason": format!("{service} {REDIRECT_REASON}"),
                    })),
                    retry_after: None,
                };
            }
            Self::Status { .. } | Self::Decode(_) => (ErrorCode::UpstreamError, None),
        };
        AppError::Upstream {
            code,
            service,
            detail: self.to_string(),
            retry_after,
        }
    }
}

impl fmt::Display for UpstreamFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every variant's text was redacted when it was built; redact again in case a caller
        // built one by hand.
        match self {
            Self::Connect(detail) => write!(f, "could not connect: {}", redact(detail)),
            Self::Transport(detail) => write!(f, "connection failed: {}", redact(detail)),
            Self::Timeout => f.write_str("did not answer before the deadline"),
            Self::Status {
                status,
                body_snippet,
                ..
            } => write!(f, "HTTP {status}: {}", redact(body_snippet)),
            Self::Decode(detail) => write!(f, "unusable response: {}", redact(detail)),
        }
    }
}

/// Why a 3xx answer is an error, after the service's name.
pub const REDIRECT_REASON: &str =
    "answered with a redirect to another address; set the service URL to the final address";

/// A 3xx answer as a failure: redirects are never followed, as a redirect keeps custom headers
/// (`X-Plex-Token`, `X-Api-Key`: ureq-proto's `client/redirect.rs` strips only `Authorization`
/// and `Cookie`) and would send them to whatever `Location` names. The log gets the target's
/// origin (never its path or query).
fn redirect_failure(response: &Response<Body>) -> UpstreamFailure {
    let target = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| url::Url::parse(v).ok())
        .map_or_else(
            || "a relative or missing Location".to_owned(),
            |u| u.origin().ascii_serialization(),
        );
    UpstreamFailure::Status {
        status: response.status().as_u16(),
        body_snippet: redact(&format!("{REDIRECT_REASON} (Location: {target})")),
        retry_after: None,
    }
}

fn is_retryable_status(status: u16) -> bool {
    matches!(status, 502..=504)
}

/// Sorts a `ureq` error into the failure kinds that map to different client answers.
pub fn classify(error: ureq::Error) -> UpstreamFailure {
    use std::io::ErrorKind;
    match error {
        ureq::Error::Timeout(_) => UpstreamFailure::Timeout,
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => {
            UpstreamFailure::Connect(error.to_string())
        }
        ureq::Error::ConnectProxyFailed(_) => UpstreamFailure::Connect(redact(&error.to_string())),
        ureq::Error::Io(e) => match e.kind() {
            ErrorKind::TimedOut | ErrorKind::WouldBlock => UpstreamFailure::Timeout,
            ErrorKind::ConnectionRefused
            | ErrorKind::AddrNotAvailable
            | ErrorKind::NetworkUnreachable
            | ErrorKind::HostUnreachable
            | ErrorKind::NetworkDown => UpstreamFailure::Connect(redact(&e.to_string())),
            _ => UpstreamFailure::Transport(redact(&e.to_string())),
        },
        ureq::Error::BodyExceedsLimit(_) => UpstreamFailure::Decode(format!(
            "the response is larger than {MAX_RESPONSE_BYTES} bytes"
        )),
        other => UpstreamFailure::Transport(redact(&other.to_string())),
    }
}

/// An HTTP method. Only `Get` is ever retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

/// One request to send with [`Upstream::send`]: method, URL, headers and an optional body.
///
/// `Debug` shows the redacted URL and the header names only, so a request can be logged.
#[derive(Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Option<(&'static str, Vec<u8>)>,
    caller_chosen: bool,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| *name).collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &redact(&self.url))
            .field("headers", &names)
            .field("body_bytes", &self.body.as_ref().map(|(_, b)| b.len()))
            .field("caller_chosen", &self.caller_chosen)
            .finish()
    }
}

impl Request {
    /// A request without headers or body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            caller_chosen: false,
        }
    }

    /// Marks the request as depending on what a caller chose (an image path, a title id, a search
    /// text): whatever the upstream answers to it (any status, a body that does not decode, one
    /// over the size cap) still reaches the caller as an error, but counts as an answer for the
    /// breaker. Only a refused or broken connection and a timeout count as the upstream failing,
    /// so no caller can open the breaker for everyone by asking for something odd.
    pub fn caller_chosen(mut self) -> Self {
        self.caller_chosen = true;
        self
    }

    /// A GET (idempotent: retried on connect errors, 502, 503 and 504).
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    /// A POST (never retried).
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    /// Adds a header. Values are never logged, so tokens belong here, not in the URL.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Sets the body and its content type.
    pub fn body(mut self, content_type: &'static str, bytes: Vec<u8>) -> Self {
        self.body = Some((content_type, bytes));
        self
    }

    /// Sets a JSON body.
    pub fn json<B: serde::Serialize>(self, body: &B) -> AppResult<Self> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| AppError::internal(format!("encode upstream request body: {e}")))?;
        Ok(self.body("application/json", bytes))
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The URL (may hold secrets in its query; pass it through [`redact`] before logging).
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// A blocking-call gateway to one upstream. Cheap to clone; clones share the agent and permits.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

struct Inner {
    name: &'static str,
    agent: Agent,
    permits: Arc<Semaphore>,
    timeout: Duration,
    breaker: Breaker,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.inner.name)
            .field("timeout", &self.inner.timeout)
            .field("available_permits", &self.inner.permits.available_permits())
            .finish()
    }
}

impl Upstream {
    /// A gateway named `name`, the display name used in client messages ("Plex", "plex.tv",
    /// "Overseerr", "Uptime Kuma").
    pub fn new(name: &'static str, options: UpstreamOptions) -> Self {
        Self::with_clock(name, options, crate::clock::system())
    }

    /// [`Upstream::new`] whose circuit breaker reads `clock`.
    pub fn with_clock(name: &'static str, options: UpstreamOptions, clock: SharedClock) -> Self {
        let config = Agent::config_builder()
            // ureq 3 would otherwise turn 4xx/5xx into an error and drop the body, which holds
            // the upstream's explanation (UPSTREAMS.md section 5).
            .http_status_as_error(false)
            // Never follow a redirect: it would carry X-Plex-Token / X-Api-Key to whatever
            // address `Location` names. A 3xx is answered as an error (`redirect_failure`).
            .max_redirects(0)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(options.timeout))
            .user_agent(format!("MediaNest/{}", crate::VERSION))
            .build();
        Self {
            inner: Arc::new(Inner {
                name,
                agent: Agent::new_with_config(config),
                permits: Arc::new(Semaphore::new(options.max_in_flight.max(1))),
                timeout: options.timeout,
                breaker: Breaker::new(name, clock),
            }),
        }
    }

    /// The display name.
    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// This upstream's circuit breaker.
    pub fn breaker(&self) -> &Breaker {
        &self.inner.breaker
    }

    /// The whole-call timeout.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Runs blocking `ureq` work on the blocking pool behind this upstream's semaphore.
    ///
    /// Waiting for the permit counts against the timeout; the agent's own global timeout bounds
    /// each request `f` makes. A failure becomes `AppError::Upstream` (see
    /// [`UpstreamFailure::into_app_error`]); a panic in `f` is re-raised here.
    pub async fn call<F, T>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&Agent) -> Result<T, UpstreamFailure> + Send + 'static,
        T: Send + 'static,
    {
        let deadline = Instant::now() + self.inner.timeout;
        self.run(deadline, false, move |agent, _| f(agent)).await
    }

    /// Sends `request` and hands the final response, whatever its status, to `handle`.
    ///
    /// GETs are retried (at most [`MAX_RETRIES`] times) on connect errors, 502, 503 and 504 with
    /// exponential backoff, as long as the call's deadline leaves room; other methods are sent
    /// once. Use [`expect_success`], [`read_json`] and [`read_text`] inside `handle`.
    pub async fn send<T, H>(&self, request: Request, handle: H) -> AppResult<T>
    where
        H: FnOnce(Response<Body>) -> Result<T, UpstreamFailure> + Send + 'static,
        T: Send + 'static,
    {
        let deadline = Instant::now() + self.inner.timeout;
        let name = self.inner.name;
        let caller_chosen = request.caller_chosen;
        self.run(deadline, caller_chosen, move |agent, deadline| {
            let response = send_blocking(agent, &request, deadline, name)?;
            handle(response)
        })
        .await
    }

    /// [`Upstream::send`] that expects a 2xx JSON body of type `T`.
    pub async fn get_json<T>(&self, request: Request) -> AppResult<T>
    where
        T: DeserializeOwned + Send + 'static,
    {
        self.send(request, |response| read_json(expect_success(response)?))
            .await
    }

    /// The single place every call passes: permit, blocking pool, span, panic, error mapping.
    // Circuit breakers (SPEC section 8) hook in here: refuse before the permit while open, and
    // record the outcome after the task returns.
    async fn run<F, T>(&self, deadline: Instant, caller_chosen: bool, f: F) -> AppResult<T>
    where
        F: FnOnce(&Agent, Instant) -> Result<T, UpstreamFailure> + Send + 'static,
        T: Send + 'static,
    {
        let name = self.inner.name;
        // While the breaker is open, fail at once instead of waiting on a dead service.
        let admission = self
            .inner
            .breaker
            .admit()
            .map_err(|seconds| AppError::Upstream {
                code: ErrorCode::ServiceUnavailable,
                service: name,
                detail: "circuit breaker open".into(),
                retry_after: Some(seconds),
            })?;
        let acquire = self.inner.permits.clone().acquire_owned();
        let permit = match tokio::time::timeout_at(
            tokio::time::Instant::from_std(deadline),
            acquire,
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(AppError::internal(format!("{name} gateway closed"))),
            Err(_) => {
                tracing::warn!(service = name, "no free slot for an upstream call in time");
                return Err(UpstreamFailure::Timeout.into_app_error(name));
            }
        };
        let agent = self.inner.agent.clone();
        let span = tracing::Span::current();
        let handle = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let _permit = permit;
            f(&agent, deadline)
        });
        match handle.await {
            Ok(Ok(value)) => {
                self.inner.breaker.record(admission, Outcome::Success);
                Ok(value)
            }
            Ok(Err(failure)) => {
                tracing::warn!(service = name, error = %failure, "upstream call failed");
                self.inner
                    .breaker
                    .record(admission, breaker_outcome(&failure, caller_chosen));
                Err(failure.into_app_error(name))
            }
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(AppError::internal(format!("{name} call task: {e}"))),
        }
    }
}

/// What a failed call means to the breaker. A 4xx is the upstream answering. For a request that
/// depends on what a caller chose ([`Request::caller_chosen`]) any answer is one, even a 5xx or a
/// body that cannot be used: only a connection that fails or a deadline that passes counts.
pub fn breaker_outcome(failure: &UpstreamFailure, caller_chosen: bool) -> Outcome {
    match failure {
        UpstreamFailure::Connect(_) | UpstreamFailure::Transport(_) | UpstreamFailure::Timeout => {
            Outcome::Failure
        }
        UpstreamFailure::Status { status, .. } if (400..500).contains(status) => Outcome::Success,
        UpstreamFailure::Status { .. } | UpstreamFailure::Decode(_) if caller_chosen => {
            Outcome::Success
        }
        UpstreamFailure::Status { .. } | UpstreamFailure::Decode(_) => Outcome::Failure,
    }
}

/// Sends `request` from blocking code, retrying GETs within `deadline` (see [`Upstream::send`]).
///
/// Returns the last response even when its status is retryable: the caller decides what the
/// status means.
pub fn send_blocking(
    agent: &Agent,
    request: &Request,
    deadline: Instant,
    service: &'static str,
) -> Result<Response<Body>, UpstreamFailure> {
    let mut retries = 0;
    loop {
        let started = Instant::now();
        let budget = deadline.saturating_duration_since(started);
        if budget.is_zero() {
            return Err(UpstreamFailure::Timeout);
        }
        let result = send_once(agent, request, budget);
        let elapsed_ms = started.elapsed().as_millis();
        let retryable = match &result {
            Ok(response) => {
                tracing::debug!(
                    service,
                    method = request.method.as_str(),
                    url = %redact(&request.url),
                    status = response.status().as_u16(),
                    elapsed_ms,
                    retries,
                    "upstream answered"
                );
                is_retryable_status(response.status().as_u16())
            }
            Err(failure) => {
                tracing::debug!(
                    service,
                    method = request.method.as_str(),
                    url = %redact(&request.url),
                    error = %failure,
                    elapsed_ms,
                    retries,
                    "upstream attempt failed"
                );
                failure.is_retryable()
            }
        };
        if !retryable || request.method != Method::Get || retries >= MAX_RETRIES {
            return result;
        }
        let wait = backoff(retries, rand::rng().random_range(0.8..=1.2));
        // Never start a retry that could not finish inside the caller's deadline.
        if Instant::now() + wait + MIN_ATTEMPT_TIME > deadline {
            return result;
        }
        // Dropping an unread response closes its connection instead of returning it to the pool.
        drop(result);
        std::thread::sleep(wait);
        retries += 1;
    }
}

/// The wait before retry number `retry` (0-based): 200 ms x 2^retry, scaled by `jitter`
/// (0.8..=1.2, so concurrent callers do not retry in lockstep).
pub fn backoff(retry: u32, jitter: f64) -> Duration {
    BASE_BACKOFF
        .saturating_mul(1u32 << retry.min(16))
        .mul_f64(jitter.clamp(0.8, 1.2))
}

fn send_once(
    agent: &Agent,
    request: &Request,
    budget: Duration,
) -> Result<Response<Body>, UpstreamFailure> {
    let url = request.url.as_str();
    let result = match request.method {
        Method::Get => prepare(agent.get(url), request, budget).call(),
        Method::Delete => prepare(agent.delete(url), request, budget).call(),
        Method::Post | Method::Put | Method::Patch => {
            let builder = match request.method {
                Method::Put => agent.put(url),
                Method::Patch => agent.patch(url),
                _ => agent.post(url),
            };
            let builder = prepare(builder, request, budget);
            match &request.body {
                Some((content_type, bytes)) => builder
                    .header("Content-Type", *content_type)
                    .send(bytes.as_slice()),
                None => builder.send_empty(),
            }
        }
    };
    match result {
        Ok(response) if response.status().is_redirection() => Err(redirect_failure(&response)),
        other => other.map_err(classify),
    }
}

fn prepare<B>(
    builder: RequestBuilder<B>,
    request: &Request,
    budget: Duration,
) -> RequestBuilder<B> {
    let mut builder = builder;
    for (name, value) in &request.headers {
        builder = builder.header(*name, value.as_str());
    }
    // What is left of the caller's deadline, so retries never run past it.
    builder.config().timeout_global(Some(budget)).build()
}

/// The answer's media type, lowercased, without parameters (`image/png; q=1` -> `image/png`);
/// empty when it has none.
pub fn media_type(response: &Response<Body>) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Passes a 2xx response through; anything else becomes [`UpstreamFailure::Status`].
pub fn expect_success(response: Response<Body>) -> Result<Response<Body>, UpstreamFailure> {
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(status_failure(response))
    }
}

/// Describes an unexpected status: the code, `Retry-After` in seconds if numeric, and the start of
/// the body (redacted) for the log.
pub fn status_failure(mut response: Response<Body>) -> UpstreamFailure {
    if response.status().is_redirection() {
        return redirect_failure(&response);
    }
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut bytes = Vec::new();
    // Best effort: the status is what matters, the snippet only helps the reader of the log.
    let _ = response
        .body_mut()
        .as_reader()
        .take(SNIPPET_READ_BYTES)
        .read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let snippet: String = text.trim().chars().take(SNIPPET_CHARS).collect();
    UpstreamFailure::Status {
        status,
        body_snippet: redact(&snippet),
        retry_after,
    }
}

/// Reads the whole body, refusing more than [`MAX_RESPONSE_BYTES`].
pub fn read_body(mut response: Response<Body>) -> Result<Vec<u8>, UpstreamFailure> {
    response
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE_BYTES)
        .read_to_vec()
        .map_err(classify)
}

/// Reads the body as UTF-8 text, with the size cap.
pub fn read_text(response: Response<Body>) -> Result<String, UpstreamFailure> {
    String::from_utf8(read_body(response)?)
        .map_err(|_| UpstreamFailure::Decode("the body is not UTF-8".into()))
}

/// Reads the body as JSON of type `T`, with the size cap.
///
/// The failure names the path and position but not serde's message, which can quote values
/// (a token in a field of an unexpected type would otherwise reach the log).
pub fn read_json<T: DeserializeOwned>(response: Response<Body>) -> Result<T, UpstreamFailure> {
    let bytes = read_body(response)?;
    parse_json(&bytes)
}

/// Parses JSON as [`read_json`] does; for bodies already in memory.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, UpstreamFailure> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let inner = e.inner();
        UpstreamFailure::Decode(format!(
            "unexpected JSON at `{}` ({:?} error at line {}, column {})",
            e.path(),
            inner.classify(),
            inner.line(),
            inner.column()
        ))
    })
}

/// Parameter names whose values are secrets, compared ASCII case-insensitively.
const SECRET_KEYS: [&str; 9] = [
    "x-plex-token",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "authtoken",
    "auth_token",
    "accesstoken",
    "access_token",
];

/// Hides secret values in a URL or a piece of text: query or form parameters such as
/// `X-Plex-Token=...`, `token=...`, `apiKey=...`, `api_key=...`, and JSON fields such as
/// `"authToken": "..."`. Used for every URL that is logged and every failure detail.
pub fn redact(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let at_boundary = i == 0 || !is_name_byte(bytes[i - 1]);
        let secret = at_boundary.then(|| secret_value_at(bytes, i)).flatten();
        if let Some((value_start, value_end)) = secret {
            // Both ends sit next to ASCII bytes, so they are char boundaries.
            out.push_str(&text[copied..value_start]);
            out.push_str("REDACTED");
            copied = value_end;
            i = value_end;
            continue;
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// If a secret key starts at `start`, the byte range of its non-empty value.
fn secret_value_at(bytes: &[u8], start: usize) -> Option<(usize, usize)> {
    let rest = &bytes[start..];
    let key = SECRET_KEYS.iter().find(|key| {
        rest.len() > key.len()
            && rest[..key.len()].eq_ignore_ascii_case(key.as_bytes())
            && !is_name_byte(rest[key.len()])
    })?;
    let mut j = start + key.len();
    if bytes[j] == b'=' {
        j += 1;
    } else if bytes[j] == b'"' && start > 0 && bytes[start - 1] == b'"' {
        // A JSON field: "key" : "value" (or an unquoted number).
        j += 1;
        j = skip_spaces(bytes, j);
        if bytes.get(j) != Some(&b':') {
            return None;
        }
        j = skip_spaces(bytes, j + 1);
        if bytes.get(j) == Some(&b'"') {
            j += 1;
        } else if bytes[j..].starts_with(b"null") {
            return None;
        }
    } else {
        return None;
    }
    let end = bytes[j..]
        .iter()
        .position(|b| {
            b.is_ascii_whitespace()
                || matches!(
                    b,
                    b'&' | b'#' | b'"' | b'\'' | b',' | b';' | b'<' | b'>' | b'}'
                )
        })
        .map_or(bytes.len(), |n| j + n);
    (end > j).then_some((j, end))
}

fn skip_spaces(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn redacts_tokens_in_urls() {
        assert_eq!(
            redact("https://pms:32400/library/sections?X-Plex-Token=abc123&type=1"),
            "https://pms:32400/library/sections?X-Plex-Token=REDACTED&type=1"
        );
        assert_eq!(
            redact("http://kuma/metrics?x-plex-token=abc#frag"),
            "http://kuma/metrics?x-plex-token=REDACTED#frag"
        );
        assert_eq!(
            redact("/api?apiKey=k1&api_key=k2&token=k3&API-KEY=k4"),
            "/api?apiKey=REDACTED&api_key=REDACTED&token=REDACTED&API-KEY=REDACTED"
        );
        assert_eq!(redact("/x?access_token=a.b.c"), "/x?access_token=REDACTED");
    }

    #[test]
    fn redacts_tokens_in_json_and_text() {
        assert_eq!(
            redact(r#"{"id":1,"authToken":"CxoUzBTSV5hsxjTpFKaf","code":"x"}"#),
            r#"{"id":1,"authToken":"REDACTED","code":"x"}"#
        );
        assert_eq!(
            redact(r#"{"authToken" : "abc", "accessToken":"def"}"#),
            r#"{"authToken" : "REDACTED", "accessToken":"REDACTED"}"#
        );
        assert_eq!(redact(r#"{"authToken":null}"#), r#"{"authToken":null}"#);
        assert_eq!(redact("token=abc failed"), "token=REDACTED failed");
    }

    #[test]
    fn leaves_harmless_text_alone() {
        for text in [
            "https://plex.tv/api/v2/pins?strong=true",
            "mytoken=abc",
            "tokens=abc",
            "the token is missing",
            "token=",
            "X-Plex-Token",
            "naïve café ?token",
            "",
        ] {
            assert_eq!(redact(text), text);
        }
        assert_eq!(redact("é?token=ü&x"), "é?token=REDACTED&x");
    }

    #[test]
    fn backoff_doubles_within_jitter() {
        assert_eq!(backoff(0, 1.0), Duration::from_millis(200));
        assert_eq!(backoff(1, 1.0), Duration::from_millis(400));
        assert_eq!(backoff(0, 0.8), Duration::from_millis(160));
        assert_eq!(backoff(1, 1.2), Duration::from_millis(480));
        assert_eq!(
            backoff(0, 5.0),
            Duration::from_millis(240),
            "jitter is clamped"
        );
    }

    #[test]
    fn failures_map_to_catalog_codes() {
        let code = |f: UpstreamFailure| match f.into_app_error("Overseerr") {
            AppError::Upstream {
                code, retry_after, ..
            } => (code, retry_after),
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(
            code(UpstreamFailure::Connect("refused".into())),
            (ErrorCode::ServiceUnavailable, None)
        );
        assert_eq!(
            code(UpstreamFailure::Timeout),
            (ErrorCode::UpstreamTimeout, None)
        );
        let status = |status, retry_after| UpstreamFailure::Status {
            status,
            body_snippet: String::new(),
            retry_after,
        };
        assert_eq!(
            code(status(429, Some(9))),
            (ErrorCode::ServiceUnavailable, Some(9))
        );
        assert_eq!(code(status(500, None)), (ErrorCode::UpstreamError, None));
        assert_eq!(code(status(404, None)), (ErrorCode::UpstreamError, None));
        assert_eq!(
            code(UpstreamFailure::Decode("x".into())),
            (ErrorCode::UpstreamError, None)
        );
    }

    #[test]
    fn only_failures_to_answer_count_for_caller_chosen_requests() {
        let status = |status| UpstreamFailure::Status {
            status,
            body_snippet: String::new(),
            retry_after: None,
        };
        let decode = || UpstreamFailure::Decode("not an image".into());
        for chosen in [false, true] {
            for failure in [
                UpstreamFailure::Connect("refused".into()),
                UpstreamFailure::Transport("reset".into()),
                UpstreamFailure::Timeout,
            ] {
                assert_eq!(breaker_outcome(&failure, chosen), Outcome::Failure);
            }
            assert_eq!(breaker_outcome(&status(404), chosen), Outcome::Success);
        }
        assert_eq!(breaker_outcome(&status(500), false), Outcome::Failure);
        assert_eq!(breaker_outcome(&decode(), false), Outcome::Failure);
        assert_eq!(breaker_outcome(&status(500), true), Outcome::Success);
        assert_eq!(breaker_outcome(&status(503), true), Outcome::Success);
        assert_eq!(breaker_outcome(&decode(), true), Outcome::Success);
    }

    #[test]
    fn failure_detail_is_redacted() {
        let e = UpstreamFailure::Transport("GET /x?X-Plex-Token=secret1 reset".into())
            .into_app_error("Plex");
        assert!(!e.to_string().contains("secret1"), "{e}");
    }

    #[test]
    fn decode_errors_do_not_quote_values() {
        #[derive(Debug, serde::Deserialize)]
        struct Wire {
            #[allow(dead_code)]
            id: i64,
        }
        let err = parse_json::<Wire>(br#"{"id":"SECRETVALUE"}"#).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`id`"), "{text}");
        assert!(!text.contains("SECRETVALUE"), "{text}");
    }

    #[tokio::test]
    async fn refused_connections_are_connect_failures() {
        // Bind, note the port, close: nothing listens there now.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);
        let upstream = Upstream::new("Uptime Kuma", UpstreamOptions::with_timeout_ms(2000));
        let r = upstream
            .call(move |agent| agent.get(&url).call().map_err(classify))
            .await;
        match r {
            Err(AppError::Upstream { code, service, .. }) => {
                assert_eq!(code, ErrorCode::ServiceUnavailable);
                assert_eq!(service, "Uptime Kuma");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_panic_in_call_is_re_raised() {
        let upstream = Upstream::new("Plex", UpstreamOptions::default());
        let task = tokio::spawn(async move {
            upstream
                .call(|_| -> Result<(), UpstreamFailure> { panic!("boom in the blocking pool") })
                .await
        });
        assert!(task.await.unwrap_err().is_panic());
    }

    #[tokio::test]
    async fn waiting_for_a_permit_counts_against_the_timeout() {
        let upstream = Upstream::new(
            "Plex",
            UpstreamOptions {
                timeout: Duration::from_millis(150),
                max_in_flight: 1,
            },
        );
        let busy = upstream.clone();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let holder = tokio::spawn(async move {
            busy.call(move |_| {
                let _ = started_tx.send(());
                std::thread::sleep(Duration::from_millis(400));
                Ok(())
            })
            .await
        });
        started_rx.await.unwrap();
        let began = Instant::now();
        let r = upstream.call(|_| Ok(())).await;
        assert!(matches!(
            r,
            Err(AppError::Upstream {
                code: ErrorCode::UpstreamTimeout,
                ..
            })
        ));
        assert!(began.elapsed() < Duration::from_millis(350));
        holder.await.unwrap().unwrap();
    }
}
