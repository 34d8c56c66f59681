//! The Overseerr client (UPSTREAMS.md 2), which also fits Jellyseerr and Seerr (same `/api/v1`).
//! Here: `GET /api/v1/status`, the public health probe. In `api`: search, details, users and
//! requests, all [`Overseerr`] methods built on [`Overseerr::request`]. In [`model`]: the
//! answers' types and [`medianest_status`], the one mapping of Overseerr's status numbers to
//! MediaNest's. In [`webhook`]: reading the webhook notifications Overseerr posts to MediaNest.
//!
//! It only speaks Overseerr's HTTP and turns answers into plain types. The API key travels in
//! the `X-Api-Key` header (Overseerr accepts no other form), never in a URL.

use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use crate::clock::SharedClock;
use crate::error::AppResult;
use crate::integrations::client::ClientBase;
use crate::integrations::upstream::{
    Method, Request, Upstream, UpstreamFailure, UpstreamOptions, expect_success, read_json,
};

mod api;
#[cfg(test)]
mod api_tests;
pub mod model;
pub mod webhook;

pub use api::encode_query_value;
pub use model::{
    CreateOutcome, MediaInfo, MediaRequest, MediaRequestStatus, MediaStatus, MediaType,
    MovieDetails, OverseerrUser, PageInfo, RefusalReason, RequestCount, RequestFilter,
    RequestMedia, RequestPage, RequestSeason, RequestSort, RequestState, SearchMediaType,
    SearchPage, SearchResult, SeasonAvailability, Seasons, TvDetails, TvSeason, UserPage,
    medianest_status,
};
pub use webhook::{NotificationType, Requester, WebhookError, WebhookEvent};

/// The display name in client messages ("Overseerr is temporarily unavailable.").
pub const SERVICE_NAME: &str = "Overseerr";
/// Where Overseerr's API lives below its base URL.
const API_PREFIX: &str = "/api/v1";

/// A client for one Overseerr (or Jellyseerr / Seerr). Cheap to clone.
#[derive(Clone)]
pub struct Overseerr {
    http: ClientBase,
    api_key: Option<String>,
}

impl fmt::Debug for Overseerr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Overseerr")
            .field("base", &self.http.base_url())
            .field("api_key", &self.api_key.as_ref().map(|_| "REDACTED"))
            .field("upstream", self.http.upstream())
            .finish()
    }
}

/// What `GET /api/v1/status` says about the install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverseerrStatus {
    /// e.g. `1.33.2`.
    pub version: String,
    /// e.g. `v1.33.2`, or a commit hash on develop builds.
    pub commit_tag: Option<String>,
    pub update_available: Option<bool>,
    pub commits_behind: Option<u64>,
    pub restart_required: Option<bool>,
}

impl Overseerr {
    /// A client for the install at `url` (e.g. `http://127.0.0.1:5055`; a trailing `/api/v1`
    /// is accepted too). `api_key` goes with every call when present.
    pub fn new(
        url: &str,
        api_key: Option<String>,
        options: UpstreamOptions,
        clock: SharedClock,
    ) -> Self {
        let base = url.trim().trim_end_matches('/');
        let base = base.strip_suffix(API_PREFIX).unwrap_or(base);
        Self {
            http: ClientBase::new(SERVICE_NAME, base, options, clock),
            api_key: api_key.filter(|k| !k.is_empty()),
        }
    }

    /// The gateway the calls go through (its breaker is what the admin pages show).
    pub fn upstream(&self) -> &Upstream {
        self.http.upstream()
    }

    /// The base URL, without `/api/v1` or a trailing slash.
    pub fn base_url(&self) -> &str {
        self.http.base_url()
    }

    /// A request to `path_and_query` below `/api/v1` (e.g. `/status`), asking for JSON, with the
    /// API key when there is one.
    pub fn request(&self, method: Method, path_and_query: &str) -> Request {
        let request = self
            .http
            .request(method, &format!("{API_PREFIX}{path_and_query}"));
        match &self.api_key {
            Some(key) => request.header("X-Api-Key", key.clone()),
            None => request,
        }
    }

    /// `GET /api/v1/status`: the version and update state. Public, but the key is sent when set
    /// so a proxy in front that wants it is satisfied.
    pub async fn status(&self) -> AppResult<OverseerrStatus> {
        let request = self.request(Method::Get, "/status");
        self.upstream()
            .send(request, |response| {
                OverseerrStatus::from_wire(read_json(expect_success(response)?)?)
            })
            .await
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct StatusWire {
    version: Option<String>,
    commit_tag: Option<String>,
    update_available: Option<bool>,
    // A number on every known release; read leniently so a string cannot fail the probe.
    commits_behind: Option<Value>,
    restart_required: Option<bool>,
}

impl OverseerrStatus {
    fn from_wire(wire: StatusWire) -> Result<Self, UpstreamFailure> {
        let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        // Without a version the answer is not Overseerr's (another program on the port).
        let Some(version) = non_empty(wire.version) else {
            return Err(UpstreamFailure::Decode("status without version".into()));
        };
        let commits_behind = wire.commits_behind.and_then(|v| match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        });
        Ok(Self {
            version,
            commit_tag: non_empty(wire.commit_tag),
            update_available: wire.update_available,
            commits_behind,
            restart_required: wire.restart_required,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::clock::SystemClock;
    use crate::error::{AppError, ErrorCode};
    use crate::integrations::breaker::BreakerState;
    use crate::integrations::upstream::parse_json;
    use crate::sim::overseerr::{FakeOverseerr, Fault};

    const STATUS: &str = "GET /api/v1/status";

    fn client(fake: &FakeOverseerr, api_key: Option<&str>, timeout_ms: u64) -> Overseerr {
        Overseerr::new(
            &fake.url(),
            api_key.map(str::to_owned),
            UpstreamOptions::with_timeout_ms(timeout_ms),
            Arc::new(SystemClock),
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
    async fn status_parses_and_sends_the_key_when_set() {
        let fake = FakeOverseerr::start().await.unwrap();
        fake.set_version("1.34.0");
        fake.set_update(true, 3);
        let status = client(&fake, Some("key-123"), 2000).status().await.unwrap();
        assert_eq!(
            status,
            OverseerrStatus {
                version: "1.34.0".into(),
                commit_tag: Some("v1.34.0".into()),
                update_available: Some(true),
                commits_behind: Some(3),
                restart_required: Some(false),
            }
        );
        assert_eq!(fake.last_api_key().as_deref(), Some("key-123"));

        client(&fake, None, 2000).status().await.unwrap();
        assert_eq!(fake.last_api_key(), None, "public: no key, no header");
        assert_eq!(fake.requests(STATUS), 2);
    }

    #[tokio::test]
    async fn a_base_url_with_the_api_prefix_works() {
        let fake = FakeOverseerr::start().await.unwrap();
        let overseerr = Overseerr::new(
            &format!("{}/api/v1/", fake.url()),
            Some(String::new()),
            UpstreamOptions::default(),
            Arc::new(SystemClock),
        );
        assert_eq!(overseerr.base_url(), fake.url());
        overseerr.status().await.unwrap();
        assert_eq!(fake.last_api_key(), None, "an empty key is no key");
    }

    #[tokio::test]
    async fn garbage_and_500_are_upstream_errors() {
        let fake = FakeOverseerr::start().await.unwrap();
        let overseerr = client(&fake, None, 2000);
        fake.fail_next(1, Fault::Garbage);
        let e = overseerr.status().await.unwrap_err();
        assert_eq!(code_of(&e), ErrorCode::UpstreamError);
        assert_eq!(e.code().status().as_u16(), 502);

        fake.fail_next(1, Fault::Status(500));
        let e = overseerr.status().await.unwrap_err();
        assert_eq!(code_of(&e), ErrorCode::UpstreamError);
        assert_eq!(e.code().status().as_u16(), 502);
        assert_eq!(fake.requests(STATUS), 2, "neither is retried");
        overseerr.status().await.unwrap();
    }

    #[tokio::test]
    async fn refused_is_service_unavailable() {
        let fake = FakeOverseerr::start().await.unwrap();
        let overseerr = client(&fake, None, 2000);
        fake.shutdown().await;
        let e = overseerr.status().await.unwrap_err();
        assert_eq!(code_of(&e), ErrorCode::ServiceUnavailable);
        assert_eq!(e.code().status().as_u16(), 503);
    }

    #[tokio::test]
    async fn hanging_is_a_timeout_within_the_bound() {
        let fake = FakeOverseerr::start().await.unwrap();
        fake.fail_next(1, Fault::Hang(Duration::from_secs(5)));
        let overseerr = client(&fake, None, 300);
        let began = Instant::now();
        let e = overseerr.status().await.unwrap_err();
        let took = began.elapsed();
        assert_eq!(code_of(&e), ErrorCode::UpstreamTimeout);
        assert_eq!(e.code().status().as_u16(), 504);
        assert!(took >= Duration::from_millis(250), "{took:?}");
        assert!(took < Duration::from_millis(1000), "{took:?}");
    }

    #[tokio::test]
    async fn failures_feed_the_breaker() {
        let fake = FakeOverseerr::start().await.unwrap();
        let overseerr = client(&fake, None, 2000);
        fake.fail_next(5, Fault::Status(500));
        for _ in 0..5 {
            overseerr.status().await.unwrap_err();
        }
        assert_eq!(overseerr.upstream().breaker().state(), BreakerState::Open);
        let e = overseerr.status().await.unwrap_err();
        assert_eq!(code_of(&e), ErrorCode::ServiceUnavailable);
        assert_eq!(fake.requests(STATUS), 5, "an open breaker sends nothing");
    }

    #[test]
    fn missing_optional_fields_parse() {
        let parse = |json: &str| {
            parse_json::<StatusWire>(json.as_bytes()).and_then(OverseerrStatus::from_wire)
        };
        assert_eq!(
            parse(r#"{"version":"2.0.1"}"#).unwrap(),
            OverseerrStatus {
                version: "2.0.1".into(),
                commit_tag: None,
                update_available: None,
                commits_behind: None,
                restart_required: None,
            }
        );
        let odd = parse(
            r#"{"version":"1.33.2","commitTag":"","updateAvailable":null,"commitsBehind":"7","extra":[1]}"#,
        )
        .unwrap();
        assert_eq!((odd.commit_tag, odd.commits_behind), (None, Some(7)));
        assert!(parse(r#"{"commitTag":"v1"}"#).is_err());
        assert!(parse(r#"{"version":""}"#).is_err());
        assert!(parse(r#"[]"#).is_err());
    }
}
