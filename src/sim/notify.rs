//! Fake notification receivers: ntfy, Gotify, a Discord webhook and a plain webhook receiver,
//! each a real HTTP server on loopback that checks requests the way the real service does (read
//! from their docs: https://docs.ntfy.sh/publish/, https://gotify.net/docs/pushmsg,
//! https://discord.com/developers/docs/resources/webhook#execute-webhook), answers in their
//! shapes (including their error bodies), and keeps every request it accepted for inspection
//! (all of them, or the newest [`FakeNotify::keep_at_most`]).
//!
//! The ntfy fake also answers ntfy's polling read (`GET /<topic>/json?poll=1`, one JSON message
//! per line, https://docs.ntfy.sh/subscribe/api/), so the demo can show what it received.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::harness::{Effect, SimFault, SimServer, lock, observe, status_or_500};

/// Which service the fake plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavor {
    /// ntfy; with `Some(token)` the server wants `Authorization: Bearer <token>`.
    Ntfy(Option<String>),
    /// Gotify, knowing these application tokens.
    Gotify(Vec<String>),
    /// Discord's webhook endpoint.
    Discord,
    /// Any webhook receiver.
    Webhook,
}

/// A failure to answer instead of the normal response.
#[derive(Debug, Clone)]
pub enum Fault {
    /// This status with this body.
    Status(u16, &'static str),
}

impl SimFault for Fault {
    fn effect(self) -> Effect {
        match self {
            Self::Status(code, body) => Effect::Answer((status_or_500(code), body).into_response()),
        }
    }
}

/// One request the fake accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    pub body: String,
    /// When it arrived (Unix seconds).
    pub time: u64,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Clone)]
struct Shared {
    flavor: Flavor,
    received: Arc<Mutex<Vec<Received>>>,
    keep: Arc<AtomicUsize>,
}

/// A running fake receiver.
pub struct FakeNotify {
    server: SimServer<Fault>,
    received: Arc<Mutex<Vec<Received>>>,
    keep: Arc<AtomicUsize>,
}

impl fmt::Debug for FakeNotify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.server.fmt_as("FakeNotify", f)
    }
}

impl FakeNotify {
    /// Starts a fake of `flavor` on `127.0.0.1:0`.
    pub async fn start(flavor: Flavor) -> std::io::Result<Self> {
        let received = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::new(AtomicUsize::new(usize::MAX));
        let shared = Shared {
            flavor,
            received: received.clone(),
            keep: keep.clone(),
        };
        let server = SimServer::start("fake notification receiver", |traffic| {
            Router::new().fallback(receive).with_state(shared).layer(
                axum::middleware::from_fn_with_state(traffic, observe::<Fault>),
            )
        })
        .await?;
        Ok(Self {
            server,
            received,
            keep,
        })
    }

    /// Keeps only the newest `n` requests from now on (bounded memory for a long-running demo).
    pub fn keep_at_most(&self, n: usize) {
        self.keep.store(n, Ordering::Relaxed);
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Makes the next `n` requests fail with `fault`.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        self.server.fail_next(n, fault);
    }

    /// Waits this long before answering each request (cut short by [`FakeNotify::shutdown`]).
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.server.set_latency(latency);
    }

    /// Every request accepted so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.received).clone()
    }

    /// Stops the server; later connections are refused.
    pub async fn shutdown(&self) {
        self.server.shutdown().await;
    }
}

async fn receive(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = Received {
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    if method == Method::GET
        && let Flavor::Ntfy(_) = shared.flavor
    {
        return ntfy_poll(&shared, &request.path);
    }
    if method != Method::POST && method != Method::PUT {
        return (StatusCode::METHOD_NOT_ALLOWED, "method not allowed").into_response();
    }
    let answer = match &shared.flavor {
        Flavor::Ntfy(token) => ntfy(token.as_deref(), &request),
        Flavor::Gotify(tokens) => gotify(tokens, &request),
        Flavor::Discord => discord(&request),
        Flavor::Webhook => Ok((StatusCode::OK, json!({ "ok": true }))),
    };
    match answer {
        Ok((status, body)) => {
            let mut received = lock(&shared.received);
            received.push(request);
            let excess = received
                .len()
                .saturating_sub(shared.keep.load(Ordering::Relaxed));
            received.drain(..excess);
            drop(received);
            if status == StatusCode::NO_CONTENT {
                status.into_response()
            } else {
                (status, axum::Json(body)).into_response()
            }
        }
        Err((status, body)) => (status, axum::Json(body)).into_response(),
    }
}

/// ntfy's polling read: `GET /<topic>/json?poll=1` answers the topic's messages kept so far,
/// oldest first, one JSON object per line (`id`, `time`, `event`, `topic`, `title`, `message`,
/// `tags`, `click`, `attach`), then ends.
fn ntfy_poll(shared: &Shared, path: &str) -> Response {
    let Some(topic) = path
        .strip_prefix('/')
        .and_then(|p| p.strip_suffix("/json"))
        .filter(|t| !t.is_empty() && !t.contains('/'))
    else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "code": 40401, "http": 404, "error": "page not found" })),
        )
            .into_response();
    };
    let mut lines = String::new();
    for (i, r) in lock(&shared.received)
        .iter()
        .enumerate()
        .filter(|(_, r)| r.path.trim_start_matches('/') == topic)
    {
        let mut message = json!({
            "id": format!("sim{i}"), "time": r.time, "event": "message", "topic": topic,
            "message": r.body,
        });
        if let Some(title) = r.header("title") {
            message["title"] = json!(crate::sim::smtp::header(
                &format!("Title: {title}\r\n\r\n"),
                "Title"
            ));
        }
        if let Some(tags) = r.header("tags") {
            message["tags"] = json!(tags.split(',').map(str::trim).collect::<Vec<_>>());
        }
        if let Some(click) = r.header("click") {
            message["click"] = json!(click);
        }
        if let Some(attach) = r.header("attach") {
            message["attach"] = json!({ "url": attach });
        }
        lines.push_str(&message.to_string());
        lines.push('\n');
    }
    (
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        lines,
    )
        .into_response()
}

type Answer = Result<(StatusCode, Value), (StatusCode, Value)>;

/// ntfy: `POST /<topic>`; error bodies are `{code, http, error}`.
fn ntfy(token: Option<&str>, r: &Received) -> Answer {
    let topic = r.path.trim_start_matches('/');
    let error = |http: u16, code: u32, error: &str| {
        Err((
            status_or_500(http),
            json!({ "code": code, "http": http, "error": error }),
        ))
    };
    if topic.is_empty() || topic.contains('/') {
        return error(404, 40401, "page not found");
    }
    if let Some(token) = token
        && r.header("authorization") != Some(&format!("Bearer {token}"))
    {
        return error(401, 40101, "unauthorized");
    }
    Ok((
        StatusCode::OK,
        json!({
            "id": "sim", "event": "message", "topic": topic,
            "title": r.header("title"), "message": r.body,
        }),
    ))
}

/// Gotify: `POST /message` with a known `X-Gotify-Key` and JSON with a `message`.
fn gotify(tokens: &[String], r: &Received) -> Answer {
    let error = |code: u16, name: &str, description: &str| {
        Err((
            status_or_500(code),
            json!({ "error": name, "errorCode": code, "errorDescription": description }),
        ))
    };
    if r.path != "/message" {
        return error(404, "Not Found", "page not found");
    }
    if !r
        .header("x-gotify-key")
        .is_some_and(|k| tokens.iter().any(|t| t == k))
    {
        return error(
            401,
            "Unauthorized",
            "you need to provide a valid access token or user credentials to access this api",
        );
    }
    let body = r.json();
    if !body.get("message").is_some_and(Value::is_string) {
        return error(400, "Bad Request", "Field 'message' is required");
    }
    Ok((
        StatusCode::OK,
        json!({ "id": 1, "appid": 1, "message": body["message"] }),
    ))
}

/// Discord: `POST /api/webhooks/{id}/{token}` with `content` or `embeds`; 204 without `?wait`.
fn discord(r: &Received) -> Answer {
    let segments: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
    if !matches!(segments.as_slice(), ["api", "webhooks", id, token] if !id.is_empty() && !token.is_empty())
    {
        return Err((
            StatusCode::NOT_FOUND,
            json!({ "message": "404: Not Found", "code": 0 }),
        ));
    }
    let body = r.json();
    let has_embeds = body
        .get("embeds")
        .and_then(Value::as_array)
        .is_some_and(|e| !e.is_empty() && e.iter().all(Value::is_object));
    if !has_embeds && !body.get("content").is_some_and(Value::is_string) {
        return Err((
            StatusCode::BAD_REQUEST,
            json!({ "message": "Cannot send an empty message", "code": 50006 }),
        ));
    }
    Ok((StatusCode::NO_CONTENT, Value::Null))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::integrations::upstream::Request;
    use crate::sim::harness::testing::fetch;

    #[tokio::test]
    async fn ntfy_keeps_the_newest_messages_and_answers_its_polling_read_per_topic() {
        let ntfy = FakeNotify::start(Flavor::Ntfy(None)).await.unwrap();
        ntfy.keep_at_most(2);
        for (topic, title, body) in [
            ("ann", "Dune", "first"),
            ("ann", "=?UTF-8?B?QW3DqWxpZQ==?=", "second"),
            ("bob", "Arrival", "third"),
        ] {
            let request = Request::post(format!("{}/{topic}", ntfy.url()))
                .header("Title", title)
                .header("Click", "https://media.example.com/requests/1")
                .header("Tags", "tada, movie")
                .body("text/plain", body.as_bytes().to_vec());
            assert_eq!(fetch(request).await.0, 200);
        }
        let bodies: Vec<_> = ntfy.received().into_iter().map(|r| r.body).collect();
        assert_eq!(bodies, ["second", "third"]);

        let (status, text) = fetch(Request::get(format!("{}/ann/json?poll=1", ntfy.url()))).await;
        assert_eq!(status, 200);
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert_eq!(lines[0]["event"], "message");
        assert_eq!(lines[0]["topic"], "ann");
        assert_eq!(lines[0]["title"], "Amélie");
        assert_eq!(lines[0]["message"], "second");
        assert_eq!(lines[0]["tags"], json!(["tada", "movie"]));
        assert_eq!(lines[0]["click"], "https://media.example.com/requests/1");
        assert!(lines[0]["time"].as_u64().unwrap() > 0);
        let (status, _) = fetch(Request::get(format!("{}/a/b/json", ntfy.url()))).await;
        assert_eq!(status, 404);
    }
}
