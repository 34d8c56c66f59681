//! The Overseerr client (UPSTREAMS.md 2), which also fits Jellyseerr and Seerr (same `/api/v1`).
//! Here: `GET /api/v1/status`, the public health probe. In `api`: search, details, users and
//! requests, and in `discover` the five discover rows, all [`Overseerr`] methods built on
//! [`Overseerr::request`]. In [`model`]: the
//! answers' types and [`medianest_status`], the one mapping of Overseerr's status numbers to
//! MediaNest's. In [`webhook`]: reading the webhook notifications Overseerr posts to MediaNest.
//!
//! It only speaks Overseerr's HTTP and turns answers into plain types. The API key travels in
//! the `X-Api-Key` header (Overseerr accepts no other form), never in a URL.

use std::fmt;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
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
mod discover;
pub mod issues;
pub mod model;
pub mod webhook;

pub use api::encode_query_value;
pub use discover::DiscoverRow;
pub use issues::{Issue, IssueChange, IssueComment, IssueOutcome, IssueStatus, IssueType};
pub use model::{
    CreateOutcome, MediaInfo, MediaRequest, MediaRequestStatus, MediaStatus, MediaType,
    MovieDetails, OverseerrUser, PageInfo, RefusalReason, RequestCount, RequestFilter,
    RequestMedia, RequestPage, RequestSeason, RequestSort, RequestState, SearchMediaType,
    SearchPage, SearchResult, SeasonAvailability, Seasons, TvDetails, TvSeason, UserPage,
    medianest_status,
};
pub use webhook::{NotificationType, Requester, WebhookError, WebhookEvent};

/// The display name in client messages ("Seerr is temporarily unavailable."), for Seerr and
/// Overseerr alike.
pub const SERVICE_NAME: &str = "Seerr";
/// Where Overseerr's API lives below its base URL.
const API_PREFIX: &str = "/api/v1";

/// A client for one Overseerr (or Jellyseerr / Seerr). Cheap to clone; clones share the
/// detected [`Flavor`].
#[derive(Clone)]
pub struct Overseerr {
    http: ClientBase,
    api_key: Option<String>,
    flavor: Arc<Mutex<Option<Flavor>>>,
}

/// Which program answers: Seerr (3.x, the merged Overseerr + Jellyseerr, and Jellyseerr before
/// it) or the archived Overseerr (1.33/1.34). They share `/api/v1`, but only Seerr has request
/// status `COMPLETED`, media statuses `BLOCKLISTED`/`DELETED`, the request list's
/// `mediaType`/`sortDirection` parameters and `filter=completed|deleted`, and Jellyfin users;
/// and `"all"` seasons means season 0 too on Overseerr only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    Seerr,
    Overseerr,
}

impl Flavor {
    /// The product name ("Seerr", "Overseerr").
    pub fn name(self) -> &'static str {
        match self {
            Self::Seerr => "Seerr",
            Self::Overseerr => "Overseerr",
        }
    }

    /// Tells them apart from the JSON of `GET /api/v1/status` and, when it could be read,
    /// `GET /api/v1/settings/public` (both public on either program).
    ///
    /// `/status` has the same shape on both (server/routes/index.ts in seerr-team/seerr and
    /// sct/overseerr); the public settings differ: Seerr's `fullPublicSettings`
    /// (server/lib/settings/index.ts in seerr-team/seerr) has `mediaServerType`,
    /// `enableSpecialEpisodes`, `hideBlocklisted`, `mediaServerLogin`, `jellyfinExternalHost`
    /// and `discoverRegion`/`streamingRegion`, Overseerr's (server/lib/settings.ts in
    /// sct/overseerr, 1.34.0) has none of them and `region` instead. Any of those keys means
    /// Seerr. Without the settings the version decides: Overseerr never left 1.x, Jellyseerr is
    /// 2.x and Seerr 3.x.
    pub fn detect(status: &Value, public_settings: Option<&Value>) -> Self {
        const SEERR_ONLY: [&str; 7] = [
            "mediaServerType",
            "enableSpecialEpisodes",
            "hideBlocklisted",
            "mediaServerLogin",
            "jellyfinExternalHost",
            "discoverRegion",
            "streamingRegion",
        ];
        if let Some(Value::Object(settings)) = public_settings {
            return if SEERR_ONLY.iter().any(|k| settings.contains_key(*k)) {
                Self::Seerr
            } else {
                Self::Overseerr
            };
        }
        let major = status
            .get("version")
            .and_then(Value::as_str)
            .map(|v| v.trim().trim_start_matches('v'))
            .and_then(|v| v.split('.').next())
            .and_then(|m| m.parse::<u64>().ok());
        match major {
            Some(m) if m >= 2 => Self::Seerr,
            _ => Self::Overseerr,
        }
    }
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
            flavor: Arc::new(Mutex::new(None)),
        }
    }

    /// Which program this is (see [`Flavor::detect`]), asked once and kept with the client
    /// (and its clones): `GET /settings/public`, and only when that cannot be read,
    /// `GET /status` for the version. A failure to ask is not kept: the next call asks again.
    pub async fn flavor(&self) -> AppResult<Flavor> {
        if let Some(known) = self.known_flavor() {
            return Ok(known);
        }
        // Optional (a proxy may hide it), so whatever it answers never counts for the breaker.
        let settings = self
            .upstream()
            .send(
                self.request(Method::Get, "/settings/public")
                    .caller_chosen(),
                |response| read_json::<Value>(expect_success(response)?),
            )
            .await
            .ok()
            .filter(Value::is_object);
        let status = match settings {
            Some(_) => Value::Null,
            None => {
                self.upstream()
                    .send(self.request(Method::Get, "/status"), |response| {
                        read_json::<Value>(expect_success(response)?)
                    })
                    .await?
            }
        };
        let flavor = Flavor::detect(&status, settings.as_ref());
        *self.flavor.lock().unwrap_or_else(|e| e.into_inner()) = Some(flavor);
        Ok(flavor)
    }

    /// The flavour found so far, without asking.
    pub fn known_flavor(&self) -> Option<Flavor> {
        *self.flavor.lock().unwrap_or_else(|e| e.into_inner())
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
