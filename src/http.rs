//! The HTTP edge: what every request passes through, and the one place that turns an error into
//! the envelope a client sees.
//!
//! [`edge`] (one middleware, so the per-request cost stays small) assigns the correlation id and
//! the request span, bounds the request time, catches panics, renders error envelopes (with the
//! correlation id, `Retry-After`, and a generic message for anything internal), queues every 5xx
//! for `error_logs`, adds the security headers and records the request for monitoring.
//! [`ApiJson`] is the JSON body extractor whose rejections answer in the same envelope.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, FromRequest, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::error::{AppError, ErrorCode, ErrorReport};
use crate::state::AppState;

/// The correlation id header (SPEC section 3).
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// Largest JSON body accepted (SPEC section 2).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The routes allowed to run longer than `server.request_timeout_secs`: the fresh copy and
/// "back up now" (`GET` of the second is the listing, quick either way).
const LONG_RUNNING_ROUTES: [&str; 2] = ["/api/v1/admin/backup", "/api/v1/admin/backups"];
/// Its limit.
const LONG_RUNNING_LIMIT: Duration = Duration::from_secs(30 * 60);

/// Per-request facts shared between the edge and the handlers (request extension).
#[derive(Debug)]
pub struct RequestContext {
    /// The request's correlation id.
    pub correlation_id: Arc<str>,
    /// Set by the authentication extractor once it knows who is calling, so a logged 5xx names
    /// the user.
    pub user_id: OnceLock<String>,
}

/// Headers sent on every response, computed once at start.
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl SecurityHeaders {
    /// The headers of SPEC section 2; HSTS only when served over https.
    pub fn new(https: bool) -> Self {
        let mut headers = vec![
            (
                header::CONTENT_SECURITY_POLICY,
                // form-action: a form injected into a page cannot post elsewhere; base-uri: an
                // injected <base> cannot re-point the page's relative script and API URLs.
                // manifest-src and worker-src: the installable app's manifest and service worker
                // come from this origin only (as default-src already says, made explicit).
                HeaderValue::from_static(
                    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; \
                     form-action 'self'; base-uri 'none'; manifest-src 'self'; worker-src 'self'",
                ),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            ),
        ];
        if https {
            headers.push((
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000; includeSubDomains"),
            ));
        }
        Self { headers }
    }
}

/// An entry for `error_logs`, written off the request path by the error-log writer.
#[derive(Debug, Clone)]
pub struct ErrorLogEntry {
    pub correlation_id: String,
    pub user_id: Option<String>,
    pub code: &'static str,
    pub message: String,
    pub path: String,
    pub method: String,
    pub status: u16,
    pub detail: Option<String>,
    pub at_ms: i64,
}

/// Keeps a valid incoming correlation id (1-64 of `[A-Za-z0-9._-]`), else makes a new UUID.
pub fn correlation_id(headers: &HeaderMap) -> Arc<str> {
    let mut buf = [0; uuid::fmt::Hyphenated::LENGTH];
    Arc::from(correlation_id_in(headers, &mut buf))
}

/// [`correlation_id`] without allocating: the incoming id, or a new UUID written into `buf`.
fn correlation_id_in<'a>(
    headers: &'a HeaderMap,
    buf: &'a mut [u8; uuid::fmt::Hyphenated::LENGTH],
) -> &'a str {
    match headers
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_valid_correlation_id(v))
    {
        Some(incoming) => incoming,
        None => uuid::Uuid::new_v4().hyphenated().encode_lower(buf),
    }
}

/// The correlation id rule of SPEC section 3.
pub fn is_valid_correlation_id(v: &str) -> bool {
    (1..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The edge middleware; see the module documentation.
pub async fn edge(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let cid = correlation_id(req.headers());
    let ctx = Arc::new(RequestContext {
        correlation_id: cid.clone(),
        user_id: OnceLock::new(),
    });
    req.extensions_mut().insert(ctx.clone());
    let method = req.method().clone();
    // Both are reference-counted: no allocation per request.
    let uri = req.uri().clone();
    let path = uri.path();
    // A debug-level span: at `info` the fmt subscriber would build it (a registry slot and the
    // fields formatted into a string) on every request, about 5% of a cached API request's CPU
    // in a profile. The edge's own events name the correlation id themselves, so a failure can
    // be found in the log by the id the client was shown at any level.
    let span = tracing::debug_span!("request", cid = %cid, method = %method, path = %path);

    let limit = match route.as_ref().map(MatchedPath::as_str) {
        // Copying a large database before the first byte goes out can take longer than any
        // ordinary request; it is an admin's deliberate action.
        Some(route) if LONG_RUNNING_ROUTES.contains(&route) => LONG_RUNNING_LIMIT,
        _ => state.request_timeout(),
    };
    let inner = AssertUnwindSafe(next.run(req)).catch_unwind();
    let outcome = tokio::time::timeout(limit, inner)
        .instrument(span.clone())
        .await;
    let mut response = match outcome {
        Ok(Ok(response)) => response,
        Ok(Err(panic)) => {
            let what = panic_message(panic.as_ref());
            span.in_scope(
                || tracing::error!(cid = %cid, method = %method, path, panic = %what, "handler panicked"),
            );
            AppError::internal(format!("panic: {what}")).into_response()
        }
        Err(_) => {
            span.in_scope(|| {
                tracing::warn!(cid = %cid, method = %method, path, limit_secs = limit.as_secs(), "request timed out");
            });
            AppError::new(ErrorCode::RequestTimeout).into_response()
        }
    };

    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        render_error(&state, &mut response, &cid, &ctx, &method, path, &span);
    }

    finish_headers(&state, response.headers_mut(), &cid, path);

    let elapsed = started.elapsed();
    let route_name = route.as_ref().map_or("<unmatched>", MatchedPath::as_str);
    let slow = state.monitor().record(
        route_name,
        method.as_str(),
        status.as_u16(),
        elapsed,
        state.clock().now_ms(),
    );
    if slow {
        span.in_scope(|| {
            tracing::warn!(
                cid = %cid,
                method = %method,
                path = %path,
                route = route_name,
                status = status.as_u16(),
                ms = elapsed.as_millis() as u64,
                "slow request"
            );
        });
    } else {
        span.in_scope(|| {
            tracing::debug!(
                status = status.as_u16(),
                us = elapsed.as_micros() as u64,
                "request"
            );
        });
    }
    response
}

/// The headers every response gets: the correlation id, the security headers and, for the API,
/// `Cache-Control` (unless the handler chose one).
fn finish_headers(state: &AppState, headers: &mut HeaderMap, cid: &str, path: &str) {
    let security = &state.edge().security.headers;
    // One growth of the map instead of one per insert.
    headers.reserve(security.len() + 2);
    if let Ok(v) = HeaderValue::from_str(cid) {
        headers.insert(CORRELATION_HEADER, v);
    }
    for (name, value) in security {
        headers.entry(name).or_insert_with(|| value.clone());
    }
    if path.starts_with("/api/") {
        headers
            .entry(header::CACHE_CONTROL)
            .or_insert_with(|| HeaderValue::from_static("private, no-cache"));
    }
}

/// The start of every `RATE_LIMITED` envelope, up to the correlation id: built once from the
/// catalog (the test `rate_limited_answers_match_the_envelope` keeps it equal to what
/// [`render_error`] writes).
fn rate_limited_head() -> &'static [u8] {
    static HEAD: OnceLock<Vec<u8>> = OnceLock::new();
    HEAD.get_or_init(|| {
        let (code, _, message) = ErrorCode::RateLimited.info();
        let message = serde_json::to_string(message).unwrap_or_else(|_| "\"\"".to_owned());
        format!(
            "{{\"success\":false,\"error\":{{\"code\":\"{code}\",\"message\":{message},\"correlationId\":\""
        )
        .into_bytes()
    })
}

/// The answer to a request the per-IP limit refused (see `ratelimit::Gate`): the same envelope
/// and headers as any other error, written from the prebuilt head with one allocation for the
/// body and one for the header map.
pub(crate) fn rate_limited(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
    wait: u64,
) -> Response {
    let mut buf = [0; uuid::fmt::Hyphenated::LENGTH];
    let cid = correlation_id_in(headers, &mut buf);
    let head = rate_limited_head();
    let mut seconds = itoa::Buffer::new();
    let seconds = seconds.format(wait);
    let mut body = Vec::with_capacity(head.len() + cid.len() + seconds.len() + 18);
    body.extend_from_slice(head);
    body.extend_from_slice(cid.as_bytes());
    body.extend_from_slice(b"\",\"retryAfter\":");
    body.extend_from_slice(seconds.as_bytes());
    body.extend_from_slice(b"}}");
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let out = response.headers_mut();
    *out = HeaderMap::with_capacity(state.edge().security.headers.len() + 5);
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    out.insert(header::RETRY_AFTER, HeaderValue::from(wait));
    finish_headers(state, out, cid, path);
    response
}

/// Writes the error envelope into `response` (keeping its status and headers) and queues 5xx for
/// `error_logs`. A response that already has a body and no report (e.g. `/health/ready`'s 503)
/// is left as it is.
fn render_error(
    state: &AppState,
    response: &mut Response,
    cid: &str,
    ctx: &RequestContext,
    method: &Method,
    path: &str,
    span: &tracing::Span,
) {
    let status = response.status();
    let report = match response.extensions_mut().remove::<ErrorReport>() {
        Some(report) => report,
        None if response.body().size_hint().exact() == Some(0) || status_is_rejection(response) => {
            ErrorReport::from_code(code_for_status(status))
        }
        None => return,
    };
    let body = ErrorEnvelope {
        success: false,
        error: ErrorBody {
            code: report.code.as_str(),
            message: &report.message,
            correlation_id: cid,
            details: report.details.as_ref(),
            retry_after: report.retry_after,
        },
    };
    if let Some(seconds) = report.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    *response.body_mut() = Body::from(bytes);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.remove(header::CONTENT_LENGTH);

    if status.is_server_error() {
        // The fault is a missing setup or an upstream: counted for /metrics, not stored row by
        // row (anonymous: never; a signed-in user: once a minute per code), as a caller could
        // repeat it without end.
        let user = ctx.user_id.get().map(String::as_str);
        if state
            .unlogged_errors()
            .count(report.code, user, state.clock().now_ms())
        {
            span.in_scope(|| {
                tracing::debug!(code = report.code.as_str(), "request failed (counted)");
            });
            return;
        }
        span.in_scope(|| {
            tracing::error!(
                cid,
                method = %method,
                path,
                code = report.code.as_str(),
                status = status.as_u16(),
                detail = report.internal_detail.as_deref().unwrap_or(""),
                "request failed"
            );
        });
        state.log_error(ErrorLogEntry {
            correlation_id: cid.to_owned(),
            user_id: ctx.user_id.get().cloned(),
            code: report.code.as_str(),
            message: report.message,
            path: path.to_owned(),
            method: method.as_str().to_owned(),
            status: status.as_u16(),
            detail: report.internal_detail,
            at_ms: state.clock().now_ms(),
        });
    }
}

#[derive(serde::Serialize)]
struct ErrorEnvelope<'a> {
    success: bool,
    error: ErrorBody<'a>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    code: &'static str,
    message: &'a str,
    correlation_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
}

/// axum's own rejections (bad path or query parameters) answer in plain text; they get the
/// envelope too.
fn status_is_rejection(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/plain"))
}

/// The catalog code for a bare status from outside our handlers.
fn code_for_status(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::FORBIDDEN => ErrorCode::Forbidden,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
        StatusCode::CONFLICT => ErrorCode::Conflict,
        StatusCode::REQUEST_TIMEOUT => ErrorCode::RequestTimeout,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::DatabaseBusy,
        s if s.is_client_error() => ErrorCode::ValidationError,
        _ => ErrorCode::InternalError,
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

/// Fallback for paths no route matches.
pub async fn not_found() -> AppError {
    AppError::new(ErrorCode::NotFound)
}

/// Fallback for a known path with the wrong method.
pub async fn method_not_allowed() -> AppError {
    AppError::new(ErrorCode::MethodNotAllowed)
}

/// The client's address: the socket peer, or the first untrusted hop of `X-Forwarded-For` when
/// the peer is a trusted proxy. Addresses are canonical (an IPv4-mapped peer, as a `[::]`
/// listener reports IPv4 clients, is the IPv4 address). An untrusted peer that sends
/// `X-Forwarded-For` is logged, at most once an hour, naming `server.trusted_proxies`.
/// Allocates nothing: it runs on every request.
pub fn client_ip(
    peer: Option<&ConnectInfo<SocketAddr>>,
    headers: &HeaderMap,
    trusted: &crate::net::TrustedProxies,
) -> Option<std::net::IpAddr> {
    let peer = peer.map(|c| c.0.ip().to_canonical())?;
    if !trusted.contains(peer) {
        if headers.contains_key("x-forwarded-for") {
            trusted.warn_untrusted_forwarded(peer);
        }
        return Some(peer);
    }
    // Walk from the nearest hop back, skipping our own proxies. A hop that does not parse stops
    // the walk at the peer: what lies left of it was written by the client, not by a proxy.
    for value in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(value) = value.to_str() else {
            return Some(peer);
        };
        for hop in value.rsplit(',') {
            let Some(ip) = forwarded_hop(hop) else {
                return Some(peer);
            };
            if !trusted.contains(ip) {
                return Some(ip);
            }
        }
    }
    Some(peer)
}

/// One `X-Forwarded-For` entry: an address, or an address with a port as some proxies append
/// it (`203.0.113.7:5123`, `[2001:db8::7]:5123`, `[2001:db8::7]`).
fn forwarded_hop(hop: &str) -> Option<std::net::IpAddr> {
    let hop = hop.trim();
    let ip = hop
        .parse::<std::net::IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse::<std::net::Ipv6Addr>().ok())
                .map(std::net::IpAddr::V6)
        })?;
    Some(ip.to_canonical())
}

/// The caller's IP address as [`client_ip`] decides it (`None` without a socket peer, as in
/// router tests).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl axum::extract::FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        Ok(Self(client_ip(
            peer,
            &parts.headers,
            &state.config().server.trusted_proxies,
        )))
    }
}

/// The scheme and host the browser used for a request, as far as the server can tell: the
/// request's `Host` over http, or, from a trusted proxy (`server.trusted_proxies`), its
/// `X-Forwarded-Proto` and `X-Forwarded-Host`. Forwarded headers from any other peer are
/// ignored: a client could write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestAddress<'a> {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// `host` or `host:port`; None when the request names no usable host.
    pub host: Option<&'a str>,
}

impl<'a> RequestAddress<'a> {
    /// Worked out from the socket peer and the request headers.
    pub fn of(
        server: &crate::config::ServerConfig,
        peer: Option<&ConnectInfo<SocketAddr>>,
        headers: &'a HeaderMap,
    ) -> Self {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                // A proxy chain may list several values: the first is the client-facing one
                // (the README's proxy configurations set these headers, never append to them).
                .and_then(|v| v.split(',').next())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        // Host names (with `_`, as container and NetBIOS names have), IPv4 and bracketed IPv6
        // addresses, a port: nothing that could change the meaning of a URL built from it.
        let host_ok = |h: &&str| {
            h.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
            })
        };
        let mut address = Self {
            scheme: "http",
            host: header("host").filter(host_ok),
        };
        let trusted =
            peer.is_some_and(|c| server.trusted_proxies.contains(c.0.ip().to_canonical()));
        if trusted {
            match header("x-forwarded-proto") {
                Some(p) if p.eq_ignore_ascii_case("https") => address.scheme = "https",
                _ => {}
            }
            if let Some(host) = header("x-forwarded-host").filter(host_ok) {
                address.host = Some(host);
            }
        }
        address
    }
}

/// The absolute URL of the application's root as the browser reaches it, no trailing slash
/// (`https://home.example/medianest`), for the absolute URLs MediaNest hands out (the Plex
/// sign-in's way back, the webhook URL shown to admins): `server.public_url`'s origin when it is
/// set, else the [`RequestAddress`]; then `server.base_path`.
#[derive(Debug, Clone)]
pub struct ExternalBase(pub String);

impl ExternalBase {
    /// The absolute URL of `path` (an application path starting with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }

    /// Worked out from the configuration, the socket peer and the request headers.
    pub fn from_request(
        server: &crate::config::ServerConfig,
        peer: Option<&ConnectInfo<SocketAddr>>,
        headers: &HeaderMap,
    ) -> Self {
        let base = server.base();
        if let Some(origin) = server.public_origin() {
            return Self(format!("{origin}{base}"));
        }
        let address = RequestAddress::of(server, peer, headers);
        let host = address.host.unwrap_or("localhost");
        Self(format!("{}://{host}{base}", address.scheme))
    }
}

impl axum::extract::FromRequestParts<AppState> for ExternalBase {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self::from_request(
            &state.config().server,
            parts.extensions.get::<ConnectInfo<SocketAddr>>(),
            &parts.headers,
        ))
    }
}

/// Serves the application under `server.base_path` (see [`crate::with_base_path`]): a request
/// inside it goes on with the prefix removed from its path; the base path itself without its
/// slash is redirected to it with one (308, the query kept); anything else is a 404 in the
/// error envelope, with the same headers as every answer.
#[derive(Clone)]
pub struct BasePath {
    pub(crate) app: axum::Router,
    pub(crate) state: AppState,
}

impl tower::Service<Request> for BasePath {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = futures_util::future::Either<
        std::future::Ready<Result<Response, std::convert::Infallible>>,
        <axum::Router as tower::Service<Request>>::Future,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        tower::Service::<Request>::poll_ready(&mut self.app, cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        use futures_util::future::Either;
        let server = &self.state.config().server;
        let base = server.base();
        let path = req.uri().path();
        let query = req
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let Some(inner) = server.app_path(path) else {
            let response = if path == base {
                let mut r = Response::new(Body::empty());
                *r.status_mut() = StatusCode::PERMANENT_REDIRECT;
                if let Ok(v) = HeaderValue::from_str(&format!("{base}/{query}")) {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                let mut buf = [0; uuid::fmt::Hyphenated::LENGTH];
                let cid = correlation_id_in(req.headers(), &mut buf);
                finish_headers(&self.state, r.headers_mut(), cid, path);
                r
            } else {
                outside_base(&self.state, req.headers(), path)
            };
            return Either::Left(std::future::ready(Ok(response)));
        };
        let rewritten = format!("{inner}{query}");
        let mut parts = req.uri().clone().into_parts();
        match rewritten.parse() {
            Ok(pq) => parts.path_and_query = Some(pq),
            Err(_) => {
                let response = outside_base(&self.state, req.headers(), path);
                return Either::Left(std::future::ready(Ok(response)));
            }
        }
        if let Ok(uri) = axum::http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
        Either::Right(self.app.call(req))
    }
}

/// The 404 for a path outside `server.base_path`: the standard envelope and headers.
fn outside_base(state: &AppState, headers: &HeaderMap, path: &str) -> Response {
    let mut buf = [0; uuid::fmt::Hyphenated::LENGTH];
    let cid = correlation_id_in(headers, &mut buf);
    let (code, _, message) = ErrorCode::NotFound.info();
    let body = serde_json::json!({
        "success": false,
        "error": {"code": code, "message": message, "correlationId": cid},
    });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::NOT_FOUND;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Cache-Control as for the API: the path is what the client asked, not ours.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    finish_headers(state, response.headers_mut(), cid, path);
    response
}

/// A JSON body; bad bodies answer `UNSUPPORTED_MEDIA_TYPE`, `PAYLOAD_TOO_LARGE`, `INVALID_JSON`
/// or `VALIDATION_ERROR` with `details.fields`, in the envelope.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json_content_type(req.headers()) {
            return Err(AppError::new(ErrorCode::UnsupportedMediaType));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::new(ErrorCode::PayloadTooLarge)
            } else {
                AppError::new(ErrorCode::InvalidJson)
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

pub fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5
            && essence[..essence.len() - 5].starts_with("application/")
            && essence.to_ascii_lowercase().ends_with("+json"))
}

/// A JSON body that may be left out: an empty (or blank) body is `T::default()`; otherwise it
/// must be sent as JSON (415) and parse as [`parse_json`] does.
pub fn optional_json<T: DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    if !is_json_content_type(headers) {
        return Err(AppError::new(ErrorCode::UnsupportedMediaType));
    }
    parse_json(body)
}

/// Parses JSON, telling syntax errors (`INVALID_JSON`) from shape errors (`VALIDATION_ERROR`
/// naming the field).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    // Syntax first: a wrong value before the point where the text breaks off must not turn a
    // broken body into a validation error. IgnoredAny checks without building anything.
    if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() {
        return Err(AppError::new(ErrorCode::InvalidJson));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    match value {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if !matches!(inner.classify(), serde_json::error::Category::Data) {
                return Err(AppError::new(ErrorCode::InvalidJson));
            }
            let text = inner.to_string();
            let reason = text
                .rsplit_once(" at line ")
                .map_or(text.as_str(), |(head, _)| head)
                .to_owned();
            // serde says "missing field `name`" at the parent's path; name the field itself.
            let (field, reason) = match reason.strip_prefix("missing field `") {
                Some(rest) => {
                    let name = rest.trim_end_matches('`');
                    let field = if path == "." {
                        name.to_owned()
                    } else {
                        format!("{path}.{name}")
                    };
                    (field, "is required".to_owned())
                }
                None => (if path == "." { "body".to_owned() } else { path }, reason),
            };
            Err(AppError::validation([(field, reason)]))
        }
    }
}

/// Whether `If-None-Match` names `etag` (or `*`); weak forms match too (RFC 9110 13.1.2).
pub fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

/// An image answer with its validator: 304 with no body when `If-None-Match` names `etag`,
/// else the bytes as `content_type` (`image/jpeg` when it is not a header value); either way
/// `ETag`, `Cache-Control: cache_control` and `X-Cache: HIT|MISS`.
pub fn image_response(
    request: &HeaderMap,
    etag: &str,
    content_type: &str,
    bytes: Bytes,
    cache_control: &'static str,
    hit: bool,
) -> Response {
    let mut response = if etag_matches(request, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let content_type = HeaderValue::from_str(content_type)
            .unwrap_or_else(|_| HeaderValue::from_static("image/jpeg"));
        ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
    };
    let out = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(etag) {
        out.insert(header::ETAG, etag);
    }
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    out.insert(
        "x-cache",
        HeaderValue::from_static(if hit { "HIT" } else { "MISS" }),
    );
    response
}

/// A strong validator for `bytes`: the start of their SHA-256, quoted.
pub fn strong_etag(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Longest time a single request may take.
pub fn request_timeout(secs: u64) -> Duration {
    Duration::from_secs(secs.max(1))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn etags_match_strong_weak_and_star() {
        let etag = strong_etag(b"image bytes");
        assert_eq!(etag.len(), 34);
        assert_ne!(etag, strong_etag(b"other bytes"));
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
            etag_matches(&headers, &etag)
        };
        assert!(with(&etag));
        assert!(with(&format!("\"x\", W/{etag}")));
        assert!(with("*"));
        assert!(!with("\"something else\""));
        assert!(!etag_matches(&HeaderMap::new(), &etag));
    }

    #[test]
    fn correlation_ids_follow_the_rule() {
        assert!(is_valid_correlation_id("check.42"));
        assert!(is_valid_correlation_id("a-b_c.D9"));
        assert!(!is_valid_correlation_id(""));
        assert!(!is_valid_correlation_id("bad id"));
        assert!(!is_valid_correlation_id("<script>"));
        assert!(!is_valid_correlation_id(&"x".repeat(65)));
        assert!(is_valid_correlation_id(&"x".repeat(64)));
    }

    #[test]
    fn json_content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_json_content_type(&h));
        for (ct, ok) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/vnd.api+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
            ("+json", false),
        ] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            assert_eq!(is_json_content_type(&h), ok, "{ct}");
        }
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        age: u32,
    }

    fn fields(e: AppError) -> serde_json::Value {
        e.report().details.unwrap()["fields"].clone()
    }

    #[test]
    fn json_errors_are_classified() {
        assert_eq!(
            parse_json::<Body>(b"{not json").unwrap_err().code(),
            ErrorCode::InvalidJson
        );
        assert_eq!(
            parse_json::<Body>(b"").unwrap_err().code(),
            ErrorCode::InvalidJson
        );
        assert_eq!(
            parse_json::<Body>(br#"{"name":"a","age":1} trailing"#)
                .unwrap_err()
                .code(),
            ErrorCode::InvalidJson
        );
        let e = parse_json::<Body>(br#"{"name":"a","age":"old"}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::ValidationError);
        assert!(fields(e)["age"].as_str().unwrap().contains("invalid type"));
        let e = parse_json::<Body>(br#"{"name":"a"}"#).unwrap_err();
        assert_eq!(fields(e)["age"], "is required");
        assert!(parse_json::<Body>(br#"{"name":"a","age":3}"#).is_ok());
    }

    fn trusted(entries: &[&str]) -> crate::net::TrustedProxies {
        entries
            .iter()
            .map(|e| e.parse().unwrap())
            .collect::<Vec<crate::net::IpRange>>()
            .into()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 10.0.0.2"),
        );
        let peer = ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 5555)));
        let proxy: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        let inner_proxy: std::net::IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            client_ip(Some(&peer), &h, &trusted(&[])),
            Some(proxy),
            "untrusted peer"
        );
        assert_eq!(
            client_ip(Some(&peer), &h, &trusted(&["10.0.0.1", "10.0.0.2"])),
            Some("203.0.113.9".parse().unwrap())
        );
        assert_eq!(
            client_ip(Some(&peer), &h, &trusted(&["10.0.0.1"])),
            Some(inner_proxy),
            "the first untrusted hop"
        );
        assert_eq!(
            client_ip(Some(&peer), &h, &trusted(&["10.0.0.0/8"])),
            Some("203.0.113.9".parse().unwrap()),
            "a CIDR range covers both proxies"
        );
        // Several headers are one list, in order.
        h.append("x-forwarded-for", HeaderValue::from_static("198.51.100.4"));
        assert_eq!(
            client_ip(Some(&peer), &h, &trusted(&["10.0.0.0/8"])),
            Some("198.51.100.4".parse().unwrap())
        );
    }

    #[test]
    fn forwarded_for_hops_with_ports_are_read_and_garbage_stops_the_walk() {
        let peer = ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 5555)));
        let proxies = trusted(&["10.0.0.0/8"]);
        let with = |value: &'static str| {
            let mut h = HeaderMap::new();
            h.insert("x-forwarded-for", HeaderValue::from_static(value));
            client_ip(Some(&peer), &h, &proxies)
        };
        let ip = |s: &str| Some(s.parse::<std::net::IpAddr>().unwrap());
        // A proxy that appends `ip:port` / `[v6]:port`: the hop is the address.
        assert_eq!(with("203.0.113.9:51234"), ip("203.0.113.9"));
        assert_eq!(with("[2001:db8::7]:51234"), ip("2001:db8::7"));
        assert_eq!(with("[2001:db8::7]"), ip("2001:db8::7"));
        assert_eq!(with("[::ffff:203.0.113.9]:80"), ip("203.0.113.9"));
        assert_eq!(
            with("198.51.100.1, 203.0.113.9:51234, 10.0.0.2:443"),
            ip("203.0.113.9"),
            "the client's own entry left of the proxy's is not believed"
        );
        // A hop that does not parse ends the walk: nothing left of it is believed, the client is
        // the nearest trusted hop.
        assert_eq!(with("198.51.100.1, 203.0.113.9:x"), ip("10.0.0.1"));
        assert_eq!(with("198.51.100.1, unknown, 10.0.0.2"), ip("10.0.0.1"));
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("198.51.100.1"));
        h.append("x-forwarded-for", HeaderValue::from_static("_hidden"));
        assert_eq!(client_ip(Some(&peer), &h, &proxies), ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_for_from_an_untrusted_peer_is_reported() {
        use crate::clock::Clock;
        let now = || crate::clock::SystemClock.now_ms();
        let peer = ConnectInfo(SocketAddr::from(([192, 0, 2, 5], 5555)));
        let mut h = HeaderMap::new();
        let quiet = trusted(&["10.0.0.1"]);
        client_ip(Some(&peer), &h, &quiet);
        assert!(quiet.forwarded_warning_due(now()), "no header, no warning");

        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        let warned = trusted(&["10.0.0.1"]);
        assert_eq!(
            client_ip(Some(&peer), &h, &warned),
            Some("192.0.2.5".parse().unwrap())
        );
        assert!(
            !warned.forwarded_warning_due(now()),
            "client_ip has just warned; the next warning waits an hour"
        );
    }

    #[test]
    fn an_ipv4_mapped_peer_is_its_ipv4_address() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        let mapped: std::net::IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let peer = ConnectInfo(SocketAddr::new(mapped, 5555));
        assert_eq!(
            client_ip(Some(&peer), &h, &trusted(&["127.0.0.1"])),
            Some("203.0.113.9".parse().unwrap()),
            "a [::] listener's IPv4 proxy is trusted"
        );
        assert_eq!(
            client_ip(Some(&peer), &HeaderMap::new(), &trusted(&[])),
            Some("127.0.0.1".parse().unwrap()),
            "and is the IPv4 client when not a proxy"
        );
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("::ffff:198.51.100.7"),
        );
        assert_eq!(
            client_ip(Some(&peer), &h, &trusted(&["127.0.0.1"])),
            Some("198.51.100.7".parse().unwrap()),
            "forwarded hops are canonical too"
        );
    }

    #[test]
    fn the_external_base_takes_only_safe_hosts_and_trusted_forwarded_headers() {
        let mut server = crate::config::ServerConfig {
            base_path: "/medianest".into(),
            trusted_proxies: trusted(&["10.0.0.1"]),
            ..Default::default()
        };
        let proxy = ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 5555)));
        let client = ConnectInfo(SocketAddr::from(([192, 0, 2, 5], 5555)));
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (name, value) in pairs {
                h.insert(*name, HeaderValue::from_static(value));
            }
            h
        };
        let base = |peer: &ConnectInfo<SocketAddr>,
                    h: &HeaderMap,
                    server: &crate::config::ServerConfig| {
            ExternalBase::from_request(server, Some(peer), h).0
        };
        let h = headers(&[("host", "[::1]:4000")]);
        assert_eq!(base(&client, &h, &server), "http://[::1]:4000/medianest");
        // A Host that would change the URL's meaning is not used.
        let h = headers(&[("host", "evil.example/x?")]);
        assert_eq!(base(&client, &h, &server), "http://localhost/medianest");
        // Container and NetBIOS names may have `_`.
        let h = headers(&[("host", "media_nest:4000")]);
        assert_eq!(
            base(&client, &h, &server),
            "http://media_nest:4000/medianest"
        );
        // A chain of proxies: the first (client-facing) value counts.
        let h = headers(&[
            ("host", "127.0.0.1:4000"),
            ("x-forwarded-proto", "https, http"),
            ("x-forwarded-host", "home.example:8443, inner.example"),
        ]);
        assert_eq!(
            base(&proxy, &h, &server),
            "https://home.example:8443/medianest"
        );
        assert_eq!(
            base(&client, &h, &server),
            "http://127.0.0.1:4000/medianest"
        );
        server.public_url = Some("https://media.example.com/medianest/".into());
        assert_eq!(
            base(&proxy, &h, &server),
            "https://media.example.com/medianest"
        );
    }
}
