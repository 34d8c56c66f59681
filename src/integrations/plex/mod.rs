//! The Plex Media Server client (UPSTREAMS.md 1.3 and 1.4): `GET /identity` (the health probe)
//! here, reading the library in [`library`], and what the YouTube hand-off writes (scans,
//! collections) in [`handoff`]; the wire shapes and the plain types handed out are in [`model`].
//!
//! It only speaks PMS's HTTP and turns answers into plain types; what an answer means for a
//! status tile or a page is its caller's business. The server token travels in the
//! `X-Plex-Token` header, never in a URL, so it cannot reach a log line or an error detail.

mod handoff;
mod library;
mod model;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod sim_tests;

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::clock::SharedClock;
use crate::error::AppResult;
use crate::integrations::client::ClientBase;
use crate::integrations::upstream::{
    Method, Request, Upstream, UpstreamFailure, UpstreamOptions, expect_success, read_json,
};

/// The display name in client messages ("Plex did not answer in time.").
pub const SERVICE_NAME: &str = "Plex";

pub use handoff::{is_under, search_type};
pub use library::{is_image_path, is_plex_key};
pub use model::{ItemsPage, PlexImage, PlexMetadata, PlexSection, PlexServerInfo};

/// A client for one Plex Media Server. Cheap to clone.
#[derive(Clone)]
pub struct PlexServer {
    http: ClientBase,
    token: Option<String>,
    /// The server's `machineIdentifier`, learnt once (collection URIs need it). A client is
    /// rebuilt when the settings change, so it cannot outlive a change of server.
    machine_identifier: Arc<OnceLock<String>>,
}

impl fmt::Debug for PlexServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlexServer")
            .field("base", &self.http.base_url())
            .field("token", &self.token.as_ref().map(|_| "REDACTED"))
            .field("upstream", self.http.upstream())
            .finish()
    }
}

/// What `GET /identity` tells about the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlexIdentity {
    /// The server's stable id; collection URIs (`server://{id}/...`) need it.
    pub machine_identifier: String,
    /// The PMS build, e.g. `1.41.3.9314-a0bfb8370`.
    pub version: String,
    /// The operating system, when the answer carries it (`/identity` usually does not).
    pub platform: Option<String>,
    /// Whether the server is claimed by a Plex account.
    pub claimed: Option<bool>,
    /// Only newer PMS builds send it.
    pub api_version: Option<String>,
}

impl PlexServer {
    /// A client for the server at `url` (e.g. `http://127.0.0.1:32400`). `token` is the server
    /// owner's token, sent with every call when present.
    pub fn new(
        url: &str,
        token: Option<String>,
        options: UpstreamOptions,
        clock: SharedClock,
    ) -> Self {
        Self {
            http: ClientBase::new(SERVICE_NAME, url, options, clock),
            token: token.filter(|t| !t.is_empty()),
            machine_identifier: Arc::new(OnceLock::new()),
        }
    }

    /// The gateway the calls go through (its breaker is what the admin pages show).
    pub fn upstream(&self) -> &Upstream {
        self.http.upstream()
    }

    /// The base URL without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.http.base_url()
    }

    /// Whether the client has a server token (library calls need one; `/identity` does not).
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// A request to `path_and_query` asking for JSON, with the token when there is one.
    pub fn request(&self, method: Method, path_and_query: &str) -> Request {
        // The base asks for JSON, without which PMS answers XML (UPSTREAMS.md 1.4 item 4).
        self.authorize(self.http.request(method, path_and_query))
    }

    /// Adds the product headers and the token (when there is one) to `request`.
    fn authorize(&self, request: Request) -> Request {
        let request = request
            .header("X-Plex-Product", crate::integrations::plextv::PRODUCT)
            .header("X-Plex-Version", crate::VERSION);
        match &self.token {
            Some(token) => request.header("X-Plex-Token", token.clone()),
            None => request,
        }
    }

    /// `GET /identity`: the machine identifier and version. PMS answers it without a token.
    pub async fn identity(&self) -> AppResult<PlexIdentity> {
        let request = self.request(Method::Get, "/identity");
        self.upstream()
            .send(request, |response| {
                let wire: IdentityWire = read_container(read_json(expect_success(response)?)?)?;
                PlexIdentity::from_wire(wire)
            })
            .await
    }
}

/// PMS wraps every JSON answer in `{"MediaContainer": {...}}`.
#[derive(Debug, Deserialize)]
struct Container<T> {
    #[serde(rename = "MediaContainer", default = "Option::default")]
    media_container: Option<T>,
}

/// The `MediaContainer` of a PMS answer, or a decode failure when it is missing (an HTML page
/// from a proxy, or another program on the port).
fn read_container<T: DeserializeOwned>(container: Container<T>) -> Result<T, UpstreamFailure> {
    container
        .media_container
        .ok_or_else(|| UpstreamFailure::Decode("no MediaContainer in the answer".into()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct IdentityWire {
    machine_identifier: Option<String>,
    version: Option<String>,
    platform: Option<String>,
    // `true`/`false` on current builds, `0`/`1` or strings on some older ones.
    claimed: Option<Value>,
    api_version: Option<String>,
}

impl PlexIdentity {
    fn from_wire(wire: IdentityWire) -> Result<Self, UpstreamFailure> {
        let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        let (Some(machine_identifier), Some(version)) =
            (non_empty(wire.machine_identifier), non_empty(wire.version))
        else {
            return Err(UpstreamFailure::Decode(
                "identity without machineIdentifier or version".into(),
            ));
        };
        Ok(Self {
            machine_identifier,
            version,
            platform: non_empty(wire.platform),
            claimed: wire.claimed.as_ref().and_then(lenient_bool),
            api_version: non_empty(wire.api_version),
        })
    }
}

/// A PMS boolean: `true`, `1` or `"1"` (and their false forms).
fn lenient_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        Value::String(s) => match s.as_str() {
            "1" | "true" => Some(true),
            "0" | "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::{IntoResponse, Response};

    use super::*;
    use crate::error::{AppError, ErrorCode};

    const IDENTITY_JSON: &str = r#"{"MediaContainer":{"size":0,"claimed":true,
        "machineIdentifier":"96f2fe7a78c9dc1f16a16bedbe90f98149be16b4","version":"1.41.3.9314-a0bfb8370"}}"#;

    /// How the stand-in PMS answers `/identity`.
    #[derive(Clone, Copy)]
    enum Answer {
        Identity,
        Status(u16),
        Garbage,
        Hang,
    }

    #[derive(Clone)]
    struct Stand {
        answer: Arc<Mutex<Answer>>,
        seen: Arc<Mutex<Vec<HeaderMap>>>,
    }

    /// A stand-in PMS on a loopback port: `/identity` answers as told and records the headers.
    async fn stand_in() -> (String, Stand) {
        let stand = Stand {
            answer: Arc::new(Mutex::new(Answer::Identity)),
            seen: Arc::new(Mutex::new(Vec::new())),
        };
        let app = axum::Router::new()
            .route("/identity", axum::routing::get(identity))
            .with_state(stand.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, stand)
    }

    async fn identity(State(stand): State<Stand>, headers: HeaderMap) -> Response {
        stand.seen.lock().unwrap().push(headers);
        let answer = *stand.answer.lock().unwrap();
        let json = [(header::CONTENT_TYPE, "application/json")];
        match answer {
            Answer::Identity => (json, IDENTITY_JSON).into_response(),
            Answer::Status(code) => (
                StatusCode::from_u16(code).unwrap(),
                [(header::CONTENT_TYPE, "text/html")],
                "<html><head><title>Error</title></head></html>",
            )
                .into_response(),
            Answer::Garbage => (json, r#"{"MediaContainer":{"machineIdent"#).into_response(),
            Answer::Hang => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                (json, IDENTITY_JSON).into_response()
            }
        }
    }

    fn client(url: &str, token: Option<&str>, timeout_ms: u64) -> PlexServer {
        PlexServer::new(
            url,
            token.map(str::to_owned),
            UpstreamOptions::with_timeout_ms(timeout_ms),
            crate::clock::system(),
        )
    }

    fn code_of(e: &AppError) -> ErrorCode {
        match e {
            AppError::Upstream { code, service, .. } => {
                assert_eq!(*service, SERVICE_NAME);
                *code
            }
            other => panic!("expected an upstream error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn identity_over_tcp_sends_json_accept_and_the_token() {
        let (url, stand) = stand_in().await;
        let identity = client(&url, Some("owner-token"), 2000)
            .identity()
            .await
            .unwrap();
        assert_eq!(
            identity.machine_identifier,
            "96f2fe7a78c9dc1f16a16bedbe90f98149be16b4"
        );
        assert_eq!(identity.version, "1.41.3.9314-a0bfb8370");
        client(&url, None, 2000).identity().await.unwrap();
        let seen = stand.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0]["accept"], "application/json");
        assert_eq!(seen[0]["x-plex-token"], "owner-token");
        assert!(seen[1].get("x-plex-token").is_none(), "no token, no header");
    }

    #[tokio::test]
    async fn failures_map_to_catalog_codes() {
        let (url, stand) = stand_in().await;
        let plex = client(&url, None, 2000);
        let answer = |a| *stand.answer.lock().unwrap() = a;

        answer(Answer::Garbage);
        let e = plex.identity().await.unwrap_err();
        assert_eq!(code_of(&e), ErrorCode::UpstreamError);
        assert_eq!(e.code().status().as_u16(), 502);

        answer(Answer::Status(500));
        let e = plex.identity().await.unwrap_err();
        assert_eq!(code_of(&e), ErrorCode::UpstreamError);
        assert_eq!(e.code().status().as_u16(), 502);

        // PMS's HTML 401 page is read as a status, not fed to the JSON parser.
        answer(Answer::Status(401));
        let e = plex.identity().await.unwrap_err();
        assert!(e.to_string().contains("401"), "{e}");
        assert_eq!(stand.seen.lock().unwrap().len(), 3, "none retried");

        answer(Answer::Hang);
        let began = Instant::now();
        let e = client(&url, None, 300).identity().await.unwrap_err();
        let took = began.elapsed();
        assert_eq!(code_of(&e), ErrorCode::UpstreamTimeout);
        assert_eq!(e.code().status().as_u16(), 504);
        assert!(took >= Duration::from_millis(250), "{took:?}");
        assert!(took < Duration::from_millis(1000), "{took:?}");
    }

    #[tokio::test]
    async fn refused_is_service_unavailable() {
        // Bind, note the port, close: nothing listens there now.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let e = client(&url, None, 2000).identity().await.unwrap_err();
        assert_eq!(code_of(&e), ErrorCode::ServiceUnavailable);
        assert_eq!(e.code().status().as_u16(), 503);
    }

    #[test]
    fn identity_parses_old_and_new_shapes() {
        let parse = |json: &str| {
            let container: Container<IdentityWire> = serde_json::from_str(json).unwrap();
            read_container(container).and_then(PlexIdentity::from_wire)
        };
        let newer = parse(
            r#"{"MediaContainer":{"size":0,"apiVersion":"1.1.1","claimed":true,
                "machineIdentifier":"96f2fe7a78c9dc1f16a16bedbe90f98149be16b4",
                "version":"1.41.3.9314-a0bfb8370"}}"#,
        )
        .unwrap();
        assert_eq!(
            newer,
            PlexIdentity {
                machine_identifier: "96f2fe7a78c9dc1f16a16bedbe90f98149be16b4".into(),
                version: "1.41.3.9314-a0bfb8370".into(),
                platform: None,
                claimed: Some(true),
                api_version: Some("1.1.1".into()),
            }
        );
        let older = parse(
            r#"{"MediaContainer":{"size":"0","claimed":"0","machineIdentifier":"m",
                "version":"1.20.0","platform":"Linux","unknown":{"x":[1]}}}"#,
        )
        .unwrap();
        assert_eq!(older.claimed, Some(false));
        assert_eq!(older.platform.as_deref(), Some("Linux"));
        assert_eq!(older.api_version, None);
        let minimal =
            parse(r#"{"MediaContainer":{"machineIdentifier":"m","version":"v"}}"#).unwrap();
        assert_eq!((minimal.claimed, minimal.platform), (None, None));

        for bad in [
            r#"{}"#,
            r#"{"MediaContainer":null}"#,
            r#"{"MediaContainer":{"version":"1.2"}}"#,
            r#"{"MediaContainer":{"machineIdentifier":"","version":"1.2"}}"#,
        ] {
            assert!(
                matches!(parse(bad), Err(UpstreamFailure::Decode(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn debug_hides_the_token() {
        let plex = PlexServer::new(
            "http://pms:32400/",
            Some("secret-token-1".into()),
            UpstreamOptions::default(),
            crate::clock::system(),
        );
        assert_eq!(plex.base_url(), "http://pms:32400");
        assert!(!format!("{plex:?}").contains("secret-token-1"));
        assert!(!format!("{:?}", plex.request(Method::Get, "/identity")).contains("secret"));
    }
}
