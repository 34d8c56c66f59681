//! The HTTP edge (SPEC sections 2-4): the error envelope for every kind of failure, correlation
//! ids, security headers, `Retry-After`, and 5xx stored in `error_logs`.
//!
//! There is no production JSON route yet, so the body and panic cases run the real edge
//! (`medianest::with_edge`) around test routes.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use medianest::error::{AppError, ErrorCode};
use medianest::http::ApiJson;
use medianest::response::ApiResponse;
use serde::{Deserialize, Serialize};

use crate::support::{self, TestState, assert_error, get as get_path, post_json, send};

const PANIC_TEXT: &str = "secret panic detail 7f3a";

#[derive(Debug, Deserialize, Serialize)]
struct Echo {
    name: String,
    count: u32,
}

async fn echo(ApiJson(body): ApiJson<Echo>) -> impl IntoResponse {
    ApiResponse::ok(&body)
}

async fn panics() -> &'static str {
    panic!("{PANIC_TEXT}")
}

async fn rate_limited() -> Result<(), AppError> {
    Err(AppError::new(ErrorCode::RateLimited).with_retry_after(7))
}

/// The real edge around test routes that the production router does not have yet.
fn test_app(t: &TestState) -> Router {
    let routes = Router::new()
        .route("/api/v1/test/echo", post(echo))
        .route("/api/v1/test/panic", get(panics))
        .route("/api/v1/test/limited", get(rate_limited))
        .route("/api/v1/test/forever", get(std::future::pending::<()>));
    medianest::with_edge(routes, t.state.clone())
}

#[tokio::test]
async fn unknown_api_path_is_not_found_in_the_envelope() {
    let t = support::test_state();
    let r = get_path(&t.router(), "/api/v1/no/such/thing").await;
    let error = assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(error["message"], "The requested resource was not found.");
    // `details` and `retryAfter` only when they apply.
    assert!(error.get("details").is_none(), "{error}");
    assert!(error.get("retryAfter").is_none(), "{error}");
}

#[tokio::test]
async fn wrong_method_is_method_not_allowed_in_the_envelope() {
    let t = support::test_state();
    let app = t.router();
    for path in ["/api/v1/health", "/health"] {
        let r = send(&app, Request::post(path).body(Body::empty()).unwrap()).await;
        assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    }
}

#[tokio::test]
async fn a_body_over_one_mib_is_payload_too_large() {
    let t = support::test_state();
    let app = test_app(&t);
    // Valid JSON, so only the size can be the reason.
    let big = format!(
        r#"{{"name":"{}","count":1}}"#,
        "a".repeat(medianest::http::MAX_BODY_BYTES)
    );
    let r = post_json(&app, "/api/v1/test/echo", big).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");

    // Just under the limit is accepted.
    let padding = medianest::http::MAX_BODY_BYTES - 100;
    let fits = format!(r#"{{"name":"{}","count":1}}"#, "a".repeat(padding));
    let r = post_json(&app, "/api/v1/test/echo", fits).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn a_streamed_body_over_one_mib_is_payload_too_large() {
    let t = support::test_state();
    let app = test_app(&t);
    // No Content-Length: the limit must hold while the body streams in.
    let chunk = axum::body::Bytes::from(vec![b' '; 64 * 1024]);
    let chunks = (0..20).map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
    let body = Body::from_stream(futures_util::stream::iter(chunks));
    let request = Request::post("/api/v1/test/echo")
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let r = send(&app, request).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn a_request_over_the_time_limit_answers_an_error_envelope() {
    let t = support::test_state_with(|c| c.server.request_timeout_secs = 1);
    let app = test_app(&t);
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        get_path(&app, "/api/v1/test/forever"),
    )
    .await
    .expect("the edge bounds the request time");
    assert_error(&r, StatusCode::REQUEST_TIMEOUT, "REQUEST_TIMEOUT");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_unsupported_media_type() {
    let t = support::test_state();
    let app = test_app(&t);
    for content_type in [Some("text/plain"), None] {
        let mut request = Request::post("/api/v1/test/echo");
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let body = Body::from(r#"{"name":"a","count":1}"#);
        let r = send(&app, request.body(body).unwrap()).await;
        assert_error(
            &r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        );
    }
}

#[tokio::test]
async fn broken_json_is_invalid_json() {
    let t = support::test_state();
    let app = test_app(&t);
    for body in [
        r#"{"name": "a", "count": "#,
        "",
        "{name: 1}",
        r#"{"name":"a","count":1} x"#,
    ] {
        let r = post_json(&app, "/api/v1/test/echo", body).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_JSON");
    }
}

/// A body that is not JSON at all is `INVALID_JSON`, even when a value before the point where
/// it breaks off has the wrong type: the syntax is judged before the shape.
#[tokio::test]
async fn a_truncated_body_is_invalid_json_even_after_a_wrong_value() {
    let t = support::test_state();
    let app = test_app(&t);
    for body in [r#"{"name": 5, "count": "#, "[1, 2"] {
        let r = post_json(&app, "/api/v1/test/echo", body).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_JSON");
    }
}

#[tokio::test]
async fn a_wrong_shape_is_a_validation_error_naming_the_field() {
    let t = support::test_state();
    let app = test_app(&t);
    let r = post_json(&app, "/api/v1/test/echo", r#"{"name":"a","count":"many"}"#).await;
    let error = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    let reason = error["details"]["fields"]["count"].as_str();
    assert!(reason.is_some_and(|s| !s.is_empty()), "{error}");

    let r = post_json(&app, "/api/v1/test/echo", r#"{"count":1}"#).await;
    let error = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert!(error["details"]["fields"]["name"].is_string(), "{error}");

    // The same route answers a good body, so the failures above are about the body.
    let r = post_json(&app, "/api/v1/test/echo", r#"{"name":"a","count":3}"#).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let body = r.json();
    assert_eq!(body["success"], true);
    assert_eq!(body["data"]["name"], "a");
    assert_eq!(body["data"]["count"], 3);
}

#[tokio::test]
async fn a_panic_is_a_generic_internal_error() {
    let t = support::test_state();
    let app = test_app(&t);
    let r = get_path(&app, "/api/v1/test/panic").await;
    let error = assert_error(&r, StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR");
    assert_eq!(error["message"], "Something went wrong. Please try again.");
    assert!(!r.text().contains(PANIC_TEXT), "{}", r.text());
    assert!(!r.text().contains("panic"), "{}", r.text());
    // The server keeps serving after a panic.
    let r = post_json(&app, "/api/v1/test/echo", r#"{"name":"a","count":1}"#).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn retry_after_header_matches_the_body() {
    let t = support::test_state();
    let r = get_path(&test_app(&t), "/api/v1/test/limited").await;
    let error = assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert_eq!(error["retryAfter"], 7, "{error}");
    assert_eq!(r.header("retry-after"), Some("7"));
}

/// One request over a real socket (so the server sees a peer): status, lower-cased headers and
/// body.
fn raw_get(
    addr: std::net::SocketAddr,
    path: &str,
    extra: &str,
) -> (u16, std::collections::HashMap<String, String>, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

/// The per-IP limit answers in front of the router (`ratelimit::Gate`) from a prebuilt envelope:
/// the same JSON as any other `RATE_LIMITED` error renders (bar the wait), with the same headers;
/// refusals are counted in the request monitor; the dashboard's files are not limited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_answers_match_the_envelope() {
    let t = support::test_state_with(|c| {
        c.limits.ip_per_second = 1;
        c.limits.ip_burst = 2;
    });
    let server = support::RunningServer::start(&t.state, t.router()).await;
    let addr = server.addr;
    let cid = "x-correlation-id: flood.1\r\n";
    let (refused, page) = tokio::task::spawn_blocking(move || {
        for _ in 0..2 {
            assert_eq!(raw_get(addr, "/api/v1/health", cid).0, 200);
        }
        let refused = raw_get(addr, "/api/v1/health", cid);
        let fresh = raw_get(addr, "/api/v1/health", "");
        let page = raw_get(addr, "/", "");
        ((refused, fresh), page)
    })
    .await
    .unwrap();
    let ((status, headers, body), (fresh_status, fresh_headers, fresh_body)) = refused;
    assert_eq!(status, 429, "{body}");
    let refused: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(refused["error"]["correlationId"], "flood.1");
    let wait = refused["error"]["retryAfter"].as_u64().unwrap();
    assert!((1..=2).contains(&wait), "{refused}");
    assert_eq!(headers["retry-after"], wait.to_string());
    assert_eq!(headers["x-correlation-id"], "flood.1");

    // The handler-rendered envelope, with the same correlation id and wait.
    let rendered = send(
        &test_app(&t),
        get_with_cid("/api/v1/test/limited", "flood.1"),
    )
    .await;
    let mut expected = rendered.json();
    expected["error"]["retryAfter"] = wait.into();
    assert_eq!(refused, expected);
    for name in [
        "content-type",
        "content-security-policy",
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
        "cache-control",
    ] {
        assert_eq!(
            headers.get(name).map(String::as_str),
            rendered.header(name),
            "{name}"
        );
    }

    // Without an incoming id the refusal makes its own, in the body and the header alike.
    assert_eq!(fresh_status, 429);
    let fresh: serde_json::Value = serde_json::from_str(&fresh_body).unwrap();
    assert_eq!(
        fresh["error"]["correlationId"],
        fresh_headers["x-correlation-id"]
    );
    assert_eq!(fresh_headers["x-correlation-id"].len(), 36);

    // The dashboard is not limited; the refusals are counted.
    assert_eq!(page.0, 200);
    let mut metrics = String::new();
    t.state.monitor().write_prometheus(&mut metrics);
    let refusals = metrics
        .lines()
        .find(|l| l.contains("route=\"<rate-limited>\"") && l.contains("status=\"429\""))
        .unwrap_or_else(|| panic!("refusals are not in the monitor:\n{metrics}"));
    assert!(refusals.ends_with(" 2"), "{refusals}");
    server.stop().await.unwrap();
}

fn get_with_cid(path: &str, cid: &str) -> Request<Body> {
    Request::get(path)
        .header("x-correlation-id", cid)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn a_valid_correlation_id_is_kept() {
    let t = support::test_state();
    let app = t.router();
    for path in ["/health", "/api/v1/health", "/api/v1/nope"] {
        let r = send(&app, get_with_cid(path, "check.42")).await;
        assert_eq!(r.header("x-correlation-id"), Some("check.42"), "{path}");
    }
    let longest = "a".repeat(64);
    let r = send(&app, get_with_cid("/api/v1/nope", &longest)).await;
    let error = assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(error["correlationId"], longest.as_str());
}

#[tokio::test]
async fn an_invalid_correlation_id_is_replaced_by_a_uuid() {
    let t = support::test_state();
    let app = t.router();
    for bad in ["bad id <script>", &"x".repeat(65)] {
        for path in ["/health", "/api/v1/nope"] {
            let r = send(&app, get_with_cid(path, bad)).await;
            let cid = r.header("x-correlation-id").expect("correlation id");
            assert_ne!(cid, bad);
            assert!(uuid::Uuid::parse_str(cid).is_ok(), "{cid} is not a UUID");
            assert!(!r.text().contains("<script>"), "{}", r.text());
        }
    }
}

#[tokio::test]
async fn every_response_has_a_fresh_correlation_id() {
    let t = support::test_state();
    let app = t.router();
    let mut seen = std::collections::HashSet::new();
    for path in [
        "/health",
        "/health/ready",
        "/api/v1/health",
        "/metrics",
        "/nope",
    ] {
        let r = get_path(&app, path).await;
        let cid = r.header("x-correlation-id").expect(path).to_owned();
        assert!(uuid::Uuid::parse_str(&cid).is_ok(), "{path}: {cid}");
        assert!(seen.insert(cid), "{path} reused a correlation id");
    }
}

const CSP: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; manifest-src 'self'; worker-src 'self'";

#[tokio::test]
async fn security_headers_are_on_every_response_and_no_hsts_over_http() {
    let t = support::test_state();
    let app = t.router();
    let panic_app = test_app(&t);
    let responses = [
        get_path(&app, "/health").await,
        get_path(&app, "/api/v1/health").await,
        get_path(&app, "/api/v1/nope").await,
        get_path(&panic_app, "/api/v1/test/panic").await,
    ];
    for r in &responses {
        assert_eq!(r.header("content-security-policy"), Some(CSP));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        assert_eq!(r.header("referrer-policy"), Some("same-origin"));
        assert_eq!(r.header("strict-transport-security"), None);
    }
}

#[tokio::test]
async fn hsts_is_sent_when_the_public_url_is_https() {
    let t = support::test_state_with(|c| {
        c.server.public_url = Some("https://media.example.com".into());
    });
    let app = t.router();
    for path in ["/health", "/api/v1/nope"] {
        let r = get_path(&app, path).await;
        let hsts = r.header("strict-transport-security").expect("HSTS");
        assert!(hsts.starts_with("max-age="), "{hsts}");
        assert_eq!(r.header("content-security-policy"), Some(CSP));
    }
    let t = support::test_state_with(|c| {
        c.server.public_url = Some("http://media.example.com".into());
    });
    let r = get_path(&t.router(), "/health").await;
    assert_eq!(r.header("strict-transport-security"), None);
}

#[tokio::test]
async fn every_5xx_is_stored_in_error_logs_with_its_correlation_id() {
    let t = support::test_state();
    t.state.start_background();
    let app = test_app(&t);
    let r = send(&app, get_with_cid("/api/v1/test/panic", "panic.log-1")).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);

    let db = t.state.db().clone();
    let row = support::eventually(Duration::from_secs(5), "the error_logs row", || {
        let db = db.clone();
        async move {
            db.run(|c| {
                use rusqlite::OptionalExtension;
                Ok(c.query_row(
                    "SELECT error_code, status_code, request_path, request_method, error_message
                     FROM error_logs WHERE correlation_id = 'panic.log-1'",
                    [],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, String>(4)?,
                        ))
                    },
                )
                .optional()?)
            })
            .await
            // A shared-cache memory database answers "locked" rather than waiting while the
            // background writers (error log, health checks) hold a table: look again.
            .unwrap_or(None)
        }
    })
    .await;
    assert_eq!(row.0, "INTERNAL_ERROR");
    assert_eq!(row.1, 500);
    assert_eq!(row.2, "/api/v1/test/panic");
    assert_eq!(row.3, "GET");
    assert!(
        !row.4.contains(PANIC_TEXT),
        "the stored message is the public one"
    );
    t.state.shutdown().await.unwrap();
}
