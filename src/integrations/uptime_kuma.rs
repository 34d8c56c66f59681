//! The Uptime Kuma client (UPSTREAMS.md 3): one public status page, read from
//! `GET /api/status-page/{slug}` (title, groups, monitors, incidents) and
//! `GET /api/status-page/heartbeat/{slug}` (recent beats and 24 h uptime per monitor), joined
//! into one [`KumaPage`]. With an API key it also reads `GET /metrics` ([`UptimeKuma::metrics`]),
//! which has every monitor, on a page or not.
//!
//! Both the 1.23 and the 2.x shapes are read: `incident` (one object or null, 1.23 and 2.0) and
//! `incidents[]` (2.1, with `GET /api/status-page/{slug}/incident-history` beside it, whose
//! first page adds the active incidents an admin unpinned from the page),
//! heartbeat times with and without milliseconds, monitor ids as numbers or strings and as the
//! string keys of the heartbeat maps, and arrays that are missing or null. A malformed entry is
//! skipped rather than failing the page.
//!
//! An unknown slug is a configuration problem, not an outage: it comes back as
//! `SERVICE_NOT_CONFIGURED`, which [`SlugError::of`] recognises, never as "every monitor down",
//! and never counts against the breaker. Kuma 2.x answers it 404; 1.23 never answers it at all
//! (`louislam/uptime-kuma` 1.23.16 `server/routers/status-page-router.js` returns without a
//! response), while its heartbeat route answers 200 with empty maps. So the page and the
//! heartbeats are asked for at once: when the heartbeats come back empty, a page that does not
//! answer within the timeout is an unknown slug (Kuma just answered the heartbeats, so it is
//! not down). The slug is sent as configured: 1.23
//! matches it case-sensitively, 2.x lowercases it itself.
//! What a monitor's state means for MediaNest's own status is the health manager's business.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use time::PrimitiveDateTime;
use time::macros::format_description;
use ureq::Body;
use ureq::http::Response;

use crate::clock::SharedClock;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::integrations::client::ClientBase;
use crate::integrations::upstream::{
    Method, Request, Upstream, UpstreamFailure, UpstreamOptions, expect_success, read_json,
    send_blocking,
};

/// The display name in client messages ("Uptime Kuma is not set up yet.").
pub const SERVICE_NAME: &str = "Uptime Kuma";

/// A slug is one path segment; encode everything but the unreserved characters.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The least time between two reads of `/metrics` by one client: Kuma allows 60 API-key checks
/// a minute for all its keys together (`server/rate-limiter.js`), and health checks, refreshes
/// and connection tests must leave most of them to other users of the key.
pub const METRICS_MIN_GAP_MS: i64 = 10_000;

/// A client for one Uptime Kuma status page. Cheap to clone.
#[derive(Clone)]
pub struct UptimeKuma {
    http: ClientBase,
    slug: String,
    api_key: Option<String>,
    clock: SharedClock,
    /// When `/metrics` was last asked (ms) and its answer (`None`: it failed), shared by clones.
    last_metrics: Arc<Mutex<Option<LastMetrics>>>,
    /// Whether the Kuma has 2.1's incident-history route, as its last page showed.
    history_route: Arc<AtomicU8>,
}

/// When `/metrics` was last asked (ms) and what it answered (`None`: it failed).
type LastMetrics = (i64, Option<MetricsOutcome>);

/// A sample line's metric name, labels and value.
type Sample<'a> = (&'a str, Vec<(String, String)>, &'a str);

/// One monitor as `/metrics` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct KumaMetricsMonitor {
    /// `monitor_id` (2.0 and later; 1.23 has only the name).
    pub id: Option<i64>,
    pub name: String,
    pub kind: Option<String>,
    pub status: KumaStatus,
    /// `monitor_response_time`; Kuma writes -1 when the beat had none.
    pub response_ms: Option<u64>,
}

/// What `/metrics` answered.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricsOutcome {
    /// Every monitor Kuma has.
    Monitors(Vec<KumaMetricsMonitor>),
    /// 401: the key is wrong, expired or deactivated, or Kuma's 60-a-minute limit is used up
    /// (Kuma answers all of them alike).
    KeyRefused,
}

impl fmt::Debug for UptimeKuma {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UptimeKuma")
            .field("base", &self.http.base_url())
            .field("slug", &self.slug)
            .field("api_key", &self.api_key.as_ref().map(|_| "REDACTED"))
            .field("upstream", self.http.upstream())
            .finish()
    }
}

/// A monitor's state, from its latest heartbeat (`0` down, `1` up, `2` pending,
/// `3` maintenance).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KumaStatus {
    Up,
    Down,
    /// Failing but not yet past its retries.
    Pending,
    Maintenance,
    /// No heartbeat yet, or a status code this client does not know.
    Unknown,
}

impl KumaStatus {
    /// The status for Kuma's numeric code.
    pub fn from_code(code: i64) -> Self {
        match code {
            0 => Self::Down,
            1 => Self::Up,
            2 => Self::Pending,
            3 => Self::Maintenance,
            _ => Self::Unknown,
        }
    }

    /// `up`, `down`, `pending`, `maintenance` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
            Self::Pending => "pending",
            Self::Maintenance => "maintenance",
            Self::Unknown => "unknown",
        }
    }
}

/// One monitor of the page, joined with its latest heartbeat.
#[derive(Debug, Clone, PartialEq)]
pub struct KumaMonitor {
    pub id: i64,
    pub name: String,
    /// The page group it is shown in.
    pub group: Option<String>,
    pub status: KumaStatus,
    /// The latest beat's response time.
    pub ping_ms: Option<u64>,
    /// The latest beat's message; public pages usually send it empty, which reads as `None`.
    pub message: Option<String>,
    /// Uptime over 24 h as a fraction 0..=1 (not a percentage).
    pub uptime_24h: Option<f64>,
    /// When the latest beat happened, Unix ms.
    pub last_heartbeat_ms: Option<i64>,
}

/// An incident of the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KumaIncident {
    pub title: String,
    pub content: Option<String>,
    /// `info`, `warning`, `danger`, `primary`, `light` or `dark`.
    pub style: Option<String>,
    /// Kuma's id, when sent.
    pub id: Option<i64>,
    /// Not resolved yet (2.1 says; a page's own incidents always are).
    pub active: bool,
    /// `createdDate`, Unix ms.
    pub created_ms: Option<i64>,
}

/// A status page: its title, its monitors in page order, and its incidents.
#[derive(Debug, Clone, PartialEq)]
pub struct KumaPage {
    pub title: String,
    pub monitors: Vec<KumaMonitor>,
    /// The active incidents: those pinned on the page, then (2.1) active ones from the history.
    pub incidents: Vec<KumaIncident>,
    /// The newest incidents of the 2.1 history (active and resolved); `None` before 2.1.
    pub incident_history: Option<Vec<KumaIncident>>,
}

/// Why the configured slug cannot name a status page. Both are configuration errors
/// (`SERVICE_NOT_CONFIGURED`), distinct from Kuma being down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlugError {
    /// Not a slug Kuma accepts: letters, digits and single `-` between them.
    Invalid,
    /// Kuma has no status page with this slug.
    Unknown,
}

impl SlugError {
    /// The `details.reason` the error carries.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Invalid => "invalid status page slug",
            Self::Unknown => "unknown status page slug",
        }
    }

    /// `SERVICE_NOT_CONFIGURED` for Uptime Kuma with `details: {reason, slug}`.
    pub fn into_app_error(self, slug: &str) -> AppError {
        AppError::Api {
            code: ErrorCode::ServiceNotConfigured,
            service: Some(SERVICE_NAME),
            details: Some(json!({ "reason": self.reason(), "slug": slug })),
            retry_after: None,
        }
    }

    /// Recognises an error made by [`SlugError::into_app_error`].
    pub fn of(error: &AppError) -> Option<Self> {
        let AppError::Api {
            code: ErrorCode::ServiceNotConfigured,
            service: Some(SERVICE_NAME),
            details: Some(details),
            ..
        } = error
        else {
            return None;
        };
        let reason = details.get("reason").and_then(Value::as_str)?;
        [Self::Invalid, Self::Unknown]
            .into_iter()
            .find(|e| e.reason() == reason)
    }
}

/// The slug to send (trimmed, case kept), or why Kuma could not have a page with it.
///
/// Kuma's `checkSlug` (`server/socket-handlers/status-page-socket-handler.js`, 1.23.16 and 2.x)
/// takes `^[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*$`. The case is kept: 1.23 looks the slug up exactly
/// as sent, and a page edited there can have capitals; 2.x lowercases what it is sent.
pub fn check_slug(slug: &str) -> Result<String, SlugError> {
    let slug = slug.trim();
    let valid = !slug.is_empty()
        && slug
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()));
    if valid {
        Ok(slug.to_owned())
    } else {
        Err(SlugError::Invalid)
    }
}

impl UptimeKuma {
    /// A client for the status page `slug` of the Kuma at `url` (e.g. `http://127.0.0.1:3001`).
    /// The slug is checked when the page is read, so a bad one shows up as a configuration
    /// error on the status tile. `api_key` is kept for `/metrics`; the status page is public.
    pub fn new(
        url: &str,
        slug: impl Into<String>,
        api_key: Option<String>,
        options: UpstreamOptions,
        clock: SharedClock,
    ) -> Self {
        Self {
            http: ClientBase::new(SERVICE_NAME, url, options, clock.clone()),
            slug: slug.into(),
            api_key: api_key.filter(|k| !k.is_empty()),
            clock,
            last_metrics: Arc::default(),
            history_route: Arc::new(AtomicU8::new(HISTORY_UNKNOWN)),
        }
    }

    /// Whether an API key is set, so [`Self::metrics`] reads `/metrics`.
    pub fn has_metrics(&self) -> bool {
        self.api_key.is_some()
    }

    /// Every monitor from `GET /metrics`, with the API key as the HTTP Basic password (any
    /// user name: `server/auth.js` `apiAuthorizer` checks only the password, `uk<id>_<secret>`).
    /// `None` without a key. Asked at most once per [`METRICS_MIN_GAP_MS`]; in between the last
    /// answer is given again (`None` after a failure), so no caller can spend Kuma's 60 checks
    /// a minute.
    pub async fn metrics(&self) -> AppResult<Option<MetricsOutcome>> {
        use base64::Engine as _;
        let Some(key) = &self.api_key else {
            return Ok(None);
        };
        let now = self.clock.now_ms();
        if let Some((at, outcome)) = self.last_metrics_now()
            && now - at < METRICS_MIN_GAP_MS
        {
            return Ok(outcome);
        }
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("medianest:{key}"));
        let request = self
            .http
            .request(Method::Get, "/metrics")
            .header("Accept", "text/plain")
            .header("Authorization", format!("Basic {credentials}"));
        let outcome = self
            .upstream()
            .send(request, |response| {
                if response.status().as_u16() == 401 {
                    return Ok(MetricsOutcome::KeyRefused);
                }
                let text = crate::integrations::upstream::read_text(expect_success(response)?)?;
                Ok(MetricsOutcome::Monitors(parse_metrics(&text)))
            })
            .await;
        // A failed read is remembered too: the limit counts attempts.
        let remembered = outcome.as_ref().ok().cloned();
        *self
            .last_metrics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((now, remembered));
        outcome.map(Some)
    }

    fn last_metrics_now(&self) -> Option<LastMetrics> {
        self.last_metrics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The gateway the calls go through (its breaker is what the admin pages show).
    pub fn upstream(&self) -> &Upstream {
        self.http.upstream()
    }

    /// The base URL without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.http.base_url()
    }

    /// The slug as configured.
    pub fn slug(&self) -> &str {
        &self.slug
    }

    fn request(&self, path: &str) -> Request {
        self.http.request(Method::Get, path)
    }

    /// Reads the heartbeats and the status page (and 2.1's incident history) at once and joins
    /// them.
    ///
    /// An invalid slug fails before any request; an unknown one fails with
    /// [`SlugError::Unknown`] (a 404 from 2.x, or 1.23's silence on the page while the
    /// heartbeats come back empty), and the breaker counts it as an answer. Transport, status
    /// and shape failures are the usual upstream errors.
    pub async fn status_page(&self) -> AppResult<KumaPage> {
        let slug = check_slug(&self.slug).map_err(|e| e.into_app_error(&self.slug))?;
        let segment = utf8_percent_encode(&slug, PATH_SEGMENT).to_string();
        let beats_request = self.request(&format!("/api/status-page/heartbeat/{segment}"));
        let page_request = self.request(&format!("/api/status-page/{segment}"));
        // The history is asked beside the others once a page showed it is a 2.1 (`incidents[]`);
        // the first time, after the page; never for an older release.
        let history_known = self.history_route.load(Ordering::Relaxed);
        let (beats, page, mut history) = tokio::join!(
            self.upstream().get_json::<HeartbeatWire>(beats_request),
            self.page_or_silence(page_request),
            async {
                if history_known == HISTORY_YES {
                    self.incident_history(&segment).await
                } else {
                    None
                }
            },
        );
        let beats = beats?;
        let page = match page? {
            PageAnswer::Page(page) => *page,
            PageAnswer::NotFound => return Err(SlugError::Unknown.into_app_error(&slug)),
            // The heartbeats say which silence this is: none for an unknown slug on 1.23 (which
            // answers them with empty maps), else the page route hanging.
            PageAnswer::Silent if beats.is_empty() => {
                tracing::info!(
                    service = SERVICE_NAME,
                    "the status page did not answer after empty heartbeats: unknown slug"
                );
                return Err(SlugError::Unknown.into_app_error(&slug));
            }
            PageAnswer::Silent => {
                return Err(UpstreamFailure::Timeout.into_app_error(SERVICE_NAME));
            }
        };
        let has_history = page.incidents.as_ref().is_some_and(Value::is_array);
        let now_known = if has_history { HISTORY_YES } else { HISTORY_NO };
        self.history_route.store(now_known, Ordering::Relaxed);
        if has_history && history_known != HISTORY_YES {
            history = self.incident_history(&segment).await;
        } else if !has_history {
            history = None;
        }
        let mut page = join(page, beats, &slug);
        if let Some(history) = &history {
            for incident in history.iter().filter(|i| i.active) {
                if !page
                    .incidents
                    .iter()
                    .any(|p| p.id.is_some() && p.id == incident.id)
                {
                    page.incidents.push(incident.clone());
                }
            }
        }
        page.incident_history = history;
        Ok(page)
    }

    /// The first page of `GET /api/status-page/{slug}/incident-history` (2.1), newest first,
    /// or `None` when it cannot be read: the page has been read, so the history failing does
    /// not fail the check.
    async fn incident_history(&self, segment: &str) -> Option<Vec<KumaIncident>> {
        let request = self.request(&format!("/api/status-page/{segment}/incident-history"));
        let answer: AppResult<HistoryWire> = self.upstream().get_json(request).await;
        match answer {
            Ok(history) => Some(incidents_of(history.incidents.as_ref(), false)),
            Err(e) => {
                tracing::debug!(error = %e, "no Uptime Kuma incident history");
                None
            }
        }
    }

    /// The page, Kuma's "no such page", or silence: no answer within the timeout, which Kuma
    /// 1.23 gives an unknown slug. The silence is not recorded as a failure by the breaker: the
    /// heartbeats, asked at the same time, tell whether Kuma is answering at all.
    async fn page_or_silence(&self, request: Request) -> AppResult<PageAnswer> {
        let deadline = Instant::now() + self.upstream().timeout();
        self.upstream()
            .call(
                move |agent| match send_blocking(agent, &request, deadline, SERVICE_NAME) {
                    Err(UpstreamFailure::Timeout) => Ok(PageAnswer::Silent),
                    other => Ok(match read_page(other?)? {
                        Some(page) => PageAnswer::Page(Box::new(page)),
                        None => PageAnswer::NotFound,
                    }),
                },
            )
            .await
    }
}

/// What the status page route answered.
enum PageAnswer {
    Page(Box<PageWire>),
    /// Kuma said it has no such page (2.x's 404).
    NotFound,
    /// Nothing within the timeout.
    Silent,
}

/// [`UptimeKuma::history_route`]: not known yet, 2.1 (has it), older (has not).
const HISTORY_UNKNOWN: u8 = 0;
const HISTORY_YES: u8 = 1;
const HISTORY_NO: u8 = 2;

/// The page, or `None` when Kuma says it has no page with this slug: 404
/// `{"status":"fail","msg":"Status Page Not Found"}`, or the same failure body with another
/// status from older releases and proxies.
fn read_page(response: Response<Body>) -> Result<Option<PageWire>, UpstreamFailure> {
    if response.status().as_u16() == 404 {
        return Ok(None);
    }
    let wire: PageWire = read_json(expect_success(response)?)?;
    if wire.config.is_some() {
        return Ok(Some(wire));
    }
    let failed = wire.status.as_ref().and_then(Value::as_str) == Some("fail")
        || wire.ok.as_ref().and_then(Value::as_bool) == Some(false);
    let msg = wire.msg.as_ref().and_then(Value::as_str).unwrap_or("");
    if failed && msg.to_ascii_lowercase().contains("not found") {
        return Ok(None);
    }
    Err(UpstreamFailure::Decode("status page without config".into()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PageWire {
    config: Option<ConfigWire>,
    /// 1.23 and 2.0: one object or null.
    incident: Option<Value>,
    /// 2.1 and later.
    incidents: Option<Value>,
    public_group_list: Option<Value>,
    // The failure shape.
    status: Option<Value>,
    ok: Option<Value>,
    msg: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ConfigWire {
    title: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct GroupWire {
    name: Option<String>,
    monitor_list: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MonitorWire {
    id: Option<Value>,
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct IncidentWire {
    id: Option<Value>,
    title: Option<String>,
    content: Option<String>,
    style: Option<String>,
    /// 2.1 only (1.23's public JSON has no `active`).
    active: Option<Value>,
    created_date: Option<Value>,
}

/// `{ok, incidents, total, nextCursor, hasMore}` (2.1.0 `status-page-router.js`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct HistoryWire {
    incidents: Option<Value>,
}

/// The incidents of a JSON array with a title; `active_by_default` for those that do not say.
fn incidents_of(list: Option<&Value>, active_by_default: bool) -> Vec<KumaIncident> {
    entries::<IncidentWire>(list)
        .into_iter()
        .filter_map(|i| incident_of(i, active_by_default))
        .collect()
}

fn incident_of(wire: IncidentWire, active_by_default: bool) -> Option<KumaIncident> {
    let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    Some(KumaIncident {
        title: non_empty(wire.title)?,
        content: non_empty(wire.content),
        style: non_empty(wire.style),
        id: wire.id.as_ref().and_then(lenient_i64),
        active: match wire.active {
            Some(Value::Bool(b)) => b,
            Some(Value::Number(n)) => n.as_i64() != Some(0),
            _ => active_by_default,
        },
        created_ms: wire
            .created_date
            .as_ref()
            .and_then(Value::as_str)
            .and_then(parse_beat_time),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct HeartbeatWire {
    /// Monitor id (as a string) -> beats, oldest first.
    heartbeat_list: Option<HashMap<String, Value>>,
    /// `"<id>_24"` -> uptime fraction.
    uptime_list: Option<HashMap<String, Value>>,
}

impl HeartbeatWire {
    /// No monitor at all: what an unknown slug (or a page without public monitors) gets.
    fn is_empty(&self) -> bool {
        self.heartbeat_list.as_ref().is_none_or(HashMap::is_empty)
            && self.uptime_list.as_ref().is_none_or(HashMap::is_empty)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BeatWire {
    status: Option<Value>,
    time: Option<Value>,
    msg: Option<String>,
    ping: Option<Value>,
}

/// The monitors in a Prometheus text answer of Kuma's `/metrics`: `monitor_status` and
/// `monitor_response_time` samples, whatever the label set (`server/prometheus.js`: 1.23
/// `monitor_name, _type, _url, _hostname, _port`; 2.0 adds `monitor_id`; 2.1 puts a label per
/// tag first), labels in any order, values escaped (`\"`, `\\`, `\n`). Other families (process,
/// Node.js, HTTP, 2.1's windows) and lines that do not parse are skipped.
pub fn parse_metrics(text: &str) -> Vec<KumaMetricsMonitor> {
    // Keyed by id, else by name (1.23).
    let mut order: Vec<String> = Vec::new();
    let mut found: HashMap<String, KumaMetricsMonitor> = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, labels, value)) = sample(line) else {
            continue;
        };
        if name != "monitor_status" && name != "monitor_response_time" {
            continue;
        }
        let label = |k: &str| labels.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let Some(monitor_name) = label("monitor_name") else {
            continue;
        };
        let id = label("monitor_id").and_then(|v| v.parse::<i64>().ok());
        let key = id.map_or_else(|| format!("name:{monitor_name}"), |id| format!("id:{id}"));
        let entry = found.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            KumaMetricsMonitor {
                id,
                name: monitor_name,
                kind: label("monitor_type").filter(|t| t != "null"),
                status: KumaStatus::Unknown,
                response_ms: None,
            }
        });
        if name == "monitor_status" {
            entry.status = value
                .parse::<f64>()
                .ok()
                .map_or(KumaStatus::Unknown, |v| KumaStatus::from_code(v as i64));
        } else {
            entry.response_ms = value
                .parse::<f64>()
                .ok()
                .filter(|v| *v >= 0.0)
                .map(|v| v.round() as u64);
        }
    }
    order.into_iter().filter_map(|k| found.remove(&k)).collect()
}

/// `name{label="value",...} value [timestamp]` (or without labels).
fn sample(line: &str) -> Option<Sample<'_>> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut labels = Vec::new();
    let mut rest = &line[name_end..];
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        let end;
        loop {
            // Skip separators.
            while let Some((_, c)) = chars.peek() {
                if *c == ',' || c.is_whitespace() {
                    chars.next();
                } else {
                    break;
                }
            }
            match chars.peek() {
                Some((i, '}')) => {
                    end = *i + 1;
                    break;
                }
                None => return None,
                _ => {}
            }
            let mut key = String::new();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()? {
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    (_, '"') => break,
                    (_, c) => value.push(c),
                }
            }
            labels.push((key.trim().to_owned(), value));
        }
        rest = after.get(end..)?;
    }
    let value = rest.split_whitespace().next()?;
    Some((name, labels, value))
}

/// The entries of an optional JSON array that parse as `T`; anything else is skipped.
fn entries<T: DeserializeOwned>(value: Option<&Value>) -> Vec<T> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| T::deserialize(item).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Joins the page's monitors with their latest beats and uptimes.
fn join(page: PageWire, beats: HeartbeatWire, slug: &str) -> KumaPage {
    let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    let title = page
        .config
        .and_then(|c| non_empty(c.title))
        .unwrap_or_else(|| slug.to_owned());

    // The page's incidents are pinned and active by definition (`pin = 1 AND active = 1`).
    let mut incidents = incidents_of(page.incidents.as_ref(), true);
    if let Some(one) = page.incident.as_ref().filter(|v| v.is_object()) {
        incidents.extend(
            IncidentWire::deserialize(one)
                .ok()
                .and_then(|i| incident_of(i, true)),
        );
    }

    let heartbeats = beats.heartbeat_list.unwrap_or_default();
    let uptimes = beats.uptime_list.unwrap_or_default();
    let mut seen = HashSet::new();
    let mut monitors = Vec::new();
    for group in entries::<GroupWire>(page.public_group_list.as_ref()) {
        let group_name = non_empty(group.name);
        for monitor in entries::<MonitorWire>(group.monitor_list.as_ref()) {
            let Some(id) = monitor.id.as_ref().and_then(lenient_i64) else {
                continue;
            };
            if !seen.insert(id) {
                continue;
            }
            let latest = heartbeats
                .get(&id.to_string())
                .and_then(Value::as_array)
                .and_then(|beats| beats.last())
                .and_then(|beat| BeatWire::deserialize(beat).ok())
                .unwrap_or_default();
            monitors.push(KumaMonitor {
                id,
                name: non_empty(monitor.name).unwrap_or_else(|| format!("Monitor {id}")),
                group: group_name.clone(),
                status: latest
                    .status
                    .as_ref()
                    .map_or(KumaStatus::Unknown, status_of),
                ping_ms: latest.ping.as_ref().and_then(lenient_f64).and_then(|p| {
                    // Whole ms; ping monitors report fractions.
                    (p >= 0.0).then(|| p.round() as u64)
                }),
                message: non_empty(latest.msg),
                uptime_24h: uptimes
                    .get(&format!("{id}_24"))
                    .and_then(lenient_f64)
                    .map(|u| u.clamp(0.0, 1.0)),
                last_heartbeat_ms: latest
                    .time
                    .as_ref()
                    .and_then(Value::as_str)
                    .and_then(parse_beat_time),
            });
        }
    }
    KumaPage {
        title,
        monitors,
        incidents,
        incident_history: None,
    }
}

fn status_of(value: &Value) -> KumaStatus {
    match value {
        // Very old releases sent booleans.
        Value::Bool(up) => {
            if *up {
                KumaStatus::Up
            } else {
                KumaStatus::Down
            }
        }
        other => lenient_i64(other).map_or(KumaStatus::Unknown, KumaStatus::from_code),
    }
}

/// A whole number sent as a number or a numeric string.
fn lenient_i64(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A finite number sent as a number or a numeric string.
fn lenient_f64(value: &Value) -> Option<f64> {
    let n = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }?;
    n.is_finite().then_some(n)
}

/// A heartbeat time in Unix ms. Kuma sends UTC as `YYYY-MM-DD HH:mm:ss(.SSS)` without a zone;
/// RFC 3339 is accepted too.
fn parse_beat_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Some(ms) = crate::time::parse_rfc3339(text) {
        return Some(ms);
    }
    let naive = text.replacen('T', " ", 1);
    let naive = naive.strip_suffix('Z').unwrap_or(&naive);
    let format = format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    let t = PrimitiveDateTime::parse(naive, format).ok()?.assume_utc();
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::clock::ManualClock;
    use crate::integrations::breaker::BreakerState;
    use crate::integrations::upstream::parse_json;
    use crate::sim::uptime_kuma::{
        Endpoint, FakeUptimeKuma, Fault, HeartbeatMode, KumaVersion, MonitorState,
    };

    const PAGE: &str = "GET /api/status-page/{slug}";
    const BEATS: &str = "GET /api/status-page/heartbeat/{slug}";
    /// 2025-05-01 18:00:00.250 UTC.
    const NOW: i64 = 1_746_122_400_250;

    fn client(fake: &FakeUptimeKuma, slug: &str, timeout_ms: u64) -> UptimeKuma {
        UptimeKuma::new(
            &fake.url(),
            slug,
            Some("uk1_secret".into()),
            UpstreamOptions::with_timeout_ms(timeout_ms),
            crate::clock::system(),
        )
    }

    async fn started(version: KumaVersion) -> (FakeUptimeKuma, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(NOW));
        let fake = FakeUptimeKuma::start_with_clock("home", version, clock.clone())
            .await
            .unwrap();
        (fake, clock)
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

    async fn page_reads_in(version: KumaVersion) {
        let (fake, clock) = started(version).await;
        fake.set_title("Home Services");
        fake.add_monitor(1, "Plex");
        fake.add_monitor(2, "Overseerr");
        fake.add_monitor_in_group("Infra", 7, "NAS");
        fake.add_monitor(9, "New");
        fake.clear_heartbeats(9);
        clock.advance(60_000);
        assert!(fake.set_state(2, MonitorState::Down));
        assert!(fake.set_state(7, MonitorState::Slow(1500)));
        fake.set_incident(Some(("Plex maintenance", "Upgrading PMS")));

        let page = client(&fake, "home", 2000).status_page().await.unwrap();
        assert_eq!(page.title, "Home Services");
        assert_eq!(
            page.incidents,
            vec![KumaIncident {
                title: "Plex maintenance".into(),
                content: Some("Upgrading PMS".into()),
                style: Some("warning".into()),
                id: Some(1),
                active: true,
                created_ms: Some(NOW - 250 + 60_000),
            }]
        );
        let ids: Vec<i64> = page.monitors.iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![1, 2, 9, 7], "page order, groups in turn");
        let [plex, overseerr, new, nas] = page.monitors.as_slice() else {
            panic!("four monitors")
        };
        assert_eq!(plex.name, "Plex");
        assert_eq!(plex.group.as_deref(), Some("Services"));
        assert_eq!(plex.status, KumaStatus::Up);
        assert_eq!(plex.ping_ms, Some(crate::sim::uptime_kuma::UP_PING_MS));
        assert_eq!(plex.message, None, "public pages hide messages");
        assert_eq!(plex.uptime_24h, Some(1.0));
        let whole_seconds = matches!(version, KumaVersion::V2);
        let expected_time = if whole_seconds { NOW - 250 } else { NOW };
        assert_eq!(plex.last_heartbeat_ms, Some(expected_time));

        assert_eq!(overseerr.status, KumaStatus::Down);
        assert_eq!(overseerr.ping_ms, None);
        assert_eq!(overseerr.uptime_24h, Some(0.5));
        assert_eq!(overseerr.last_heartbeat_ms, Some(expected_time + 60_000));

        assert_eq!(new.status, KumaStatus::Unknown, "no beats yet");
        assert_eq!(
            (new.ping_ms, new.uptime_24h, new.last_heartbeat_ms),
            (None, None, None)
        );

        assert_eq!(nas.group.as_deref(), Some("Infra"));
        assert_eq!(nas.status, KumaStatus::Up);
        assert_eq!(nas.ping_ms, Some(1500));
        assert_eq!(fake.requests(PAGE), 1);
        assert_eq!(fake.requests(BEATS), 1);
    }

    #[tokio::test]
    async fn reads_a_2x_page() {
        page_reads_in(KumaVersion::V2).await;
    }

    #[tokio::test]
    async fn reads_a_1_23_page() {
        page_reads_in(KumaVersion::V1_23).await;
    }

    /// Kuma 2.0 and later answer an unknown slug 404 and lowercase the slug they are sent.
    #[tokio::test]
    async fn an_unknown_slug_on_2x_is_a_configuration_error() {
        for version in [KumaVersion::V2_0, KumaVersion::V2_1] {
            let (fake, _) = started(version).await;
            fake.add_monitor(1, "Plex");
            let kuma = client(&fake, "Nope", 2000);
            let e = kuma.status_page().await.unwrap_err();
            assert_eq!(SlugError::of(&e), Some(SlugError::Unknown), "{version:?}");
            assert_eq!(e.code(), ErrorCode::ServiceNotConfigured);
            let report = e.report();
            assert_eq!(report.message, "Uptime Kuma is not set up yet.");
            assert_eq!(report.details.unwrap()["slug"], "Nope", "as configured");
            assert_eq!(fake.requests(PAGE), 1, "a 404 is an answer, not retried");
            for _ in 0..5 {
                kuma.status_page().await.unwrap_err();
            }
            assert_eq!(
                kuma.upstream().breaker().state(),
                BreakerState::Closed,
                "Kuma answered; it is not down"
            );
            // 2.x lowercases the slug it is sent.
            client(&fake, " HOME ", 2000).status_page().await.unwrap();
        }
    }

    /// Kuma 1.23 never answers an unknown slug on the page route and answers its heartbeats
    /// with empty maps: that is the slug, not Kuma down, and the breaker stays closed.
    #[tokio::test]
    async fn an_unknown_slug_on_1_23_is_a_configuration_error_not_a_timeout() {
        let (fake, _) = started(KumaVersion::V1_23).await;
        fake.add_monitor(1, "Plex");
        let kuma = client(&fake, "nope", 300);
        for _ in 0..6 {
            let began = Instant::now();
            let e = kuma.status_page().await.unwrap_err();
            assert_eq!(SlugError::of(&e), Some(SlugError::Unknown), "{e:?}");
            assert!(began.elapsed() < Duration::from_millis(1500), "bounded");
        }
        assert_eq!(fake.requests(BEATS), 6);
        assert_eq!(fake.requests(PAGE), 6);
        let breaker = kuma.upstream().breaker().snapshot();
        assert_eq!(breaker.state, BreakerState::Closed);
        assert_eq!(
            breaker.consecutive_failures, 0,
            "Kuma answered the heartbeats"
        );
    }

    /// 1.23 looks the slug up exactly as sent; a page's slug may have been edited to capitals.
    #[tokio::test]
    async fn slugs_are_case_sensitive_on_1_23_only() {
        let (fake, _) = started(KumaVersion::V1_23).await;
        fake.add_monitor(1, "Plex");
        let e = client(&fake, "HOME", 300).status_page().await.unwrap_err();
        assert_eq!(SlugError::of(&e), Some(SlugError::Unknown));
        fake.set_slug("Home");
        let page = client(&fake, "Home", 300).status_page().await.unwrap();
        assert_eq!(page.monitors.len(), 1);
        let e = client(&fake, "home", 300).status_page().await.unwrap_err();
        assert_eq!(SlugError::of(&e), Some(SlugError::Unknown));
        // The same Kuma upgraded to 2.x: the slug it is sent is lowercased, so only a
        // lowercase stored slug can be reached, by any spelling.
        fake.set_slug("home");
        fake.set_version(KumaVersion::V2_0);
        client(&fake, "Home", 300).status_page().await.unwrap();
    }

    /// A known 1.23 page whose route hangs is a real timeout (not recorded against the breaker:
    /// the heartbeats, asked at the same time, answered); a page without public monitors (empty
    /// heartbeats too) that answers is read.
    #[tokio::test]
    async fn silence_is_a_slug_error_only_after_empty_heartbeats() {
        let (fake, _) = started(KumaVersion::V1_23).await;
        fake.add_monitor(1, "Plex");
        fake.fail_next_on(Endpoint::Page, 1, Fault::Hang(Duration::from_secs(5)));
        let kuma = client(&fake, "home", 300);
        let e = kuma.status_page().await.unwrap_err();
        assert_eq!(code_of(&e), ErrorCode::UpstreamTimeout);
        assert_eq!(kuma.upstream().breaker().snapshot().consecutive_failures, 0);

        let (empty, _) = started(KumaVersion::V1_23).await;
        let page = client(&empty, "home", 300).status_page().await.unwrap();
        assert!(page.monitors.is_empty());
    }

    const HISTORY: &str = "GET /api/status-page/{slug}/incident-history";

    /// 2.1: every pinned incident in `incidents[]`, and the history route, whose active
    /// entries include incidents an admin unpinned from the page.
    #[tokio::test]
    async fn reads_2_1_incidents_and_their_history() {
        let (fake, clock) = started(KumaVersion::V2_1).await;
        fake.add_monitor(1, "Plex");
        fake.post_incident("Old", "Fixed long ago");
        fake.set_incident(None);
        clock.advance(60_000);
        fake.post_incident("Unpinned", "Still going");
        fake.unpin_incidents();
        clock.advance(60_000);
        fake.post_incident("Disk", "Replacing a disk");
        clock.advance(60_000);
        fake.post_incident("Power", "On battery");
        let page = client(&fake, "home", 2000).status_page().await.unwrap();
        let titles: Vec<&str> = page.incidents.iter().map(|i| i.title.as_str()).collect();
        assert_eq!(
            titles,
            ["Power", "Disk", "Unpinned"],
            "pinned newest first, then the rest"
        );
        assert!(page.incidents.iter().all(|i| i.active));
        let history = page.incident_history.unwrap();
        let seen: Vec<(&str, bool)> = history
            .iter()
            .map(|i| (i.title.as_str(), i.active))
            .collect();
        assert_eq!(
            seen,
            [
                ("Power", true),
                ("Disk", true),
                ("Unpinned", true),
                ("Old", false)
            ]
        );
        assert_eq!(history[0].created_ms, Some(NOW - 250 + 180_000));
        assert_eq!(fake.requests(HISTORY), 1);

        // A history that cannot be read leaves the page as it is.
        fake.fail_next_on(Endpoint::History, 1, Fault::Garbage);
        let page = client(&fake, "home", 2000).status_page().await.unwrap();
        assert_eq!(page.incidents.len(), 2);
        assert_eq!(page.incident_history, None);
    }

    /// 1.23 and 2.0: one pinned incident as `incident`, and no history route asked for.
    #[tokio::test]
    async fn reads_the_one_incident_before_2_1() {
        for version in [KumaVersion::V1_23, KumaVersion::V2_0] {
            let (fake, _) = started(version).await;
            fake.add_monitor(1, "Plex");
            let page = client(&fake, "home", 2000).status_page().await.unwrap();
            assert!(page.incidents.is_empty());
            fake.post_incident("Disk", "Replacing a disk");
            let page = client(&fake, "home", 2000).status_page().await.unwrap();
            let titles: Vec<&str> = page.incidents.iter().map(|i| i.title.as_str()).collect();
            assert_eq!(titles, ["Disk"], "{version:?}");
            assert_eq!(page.incident_history, None);
            assert_eq!(fake.requests(HISTORY), 0, "{version:?}");
        }
    }

    const METRICS: &str = "GET /metrics";

    fn keyed(fake: &FakeUptimeKuma, key: &str, clock: &Arc<ManualClock>) -> UptimeKuma {
        UptimeKuma::new(
            &fake.url(),
            "home",
            Some(key.into()),
            UpstreamOptions::with_timeout_ms(2000),
            clock.clone(),
        )
    }

    /// `/metrics` has every monitor, on the page or not, in each release's label set
    /// (`server/prometheus.js` at 1.23.16, 2.0.0, 2.1.0).
    #[tokio::test]
    async fn metrics_cover_every_monitor_in_each_label_set() {
        for version in [KumaVersion::V1_23, KumaVersion::V2_0, KumaVersion::V2_1] {
            let (fake, clock) = started(version).await;
            fake.set_api_key(Some("uk1_s3cret"));
            fake.add_monitor(1, "Plex");
            fake.add_private_monitor(9, "Printer \"Office\"");
            fake.set_tags(9, &[("room", "office"), ("2nd floor", "")]);
            assert!(fake.set_state(9, MonitorState::Down));
            fake.add_monitor(3, "NAS");
            assert!(fake.set_state(3, MonitorState::Slow(1500)));
            let kuma = keyed(&fake, "uk1_s3cret", &clock);
            let Some(MetricsOutcome::Monitors(monitors)) = kuma.metrics().await.unwrap() else {
                panic!("{version:?}: no monitors")
            };
            let seen: Vec<(Option<i64>, &str, KumaStatus, Option<u64>)> = monitors
                .iter()
                .map(|m| (m.id, m.name.as_str(), m.status, m.response_ms))
                .collect();
            let id = |n: i64| (version != KumaVersion::V1_23).then_some(n);
            assert_eq!(
                seen,
                [
                    (
                        id(1),
                        "Plex",
                        KumaStatus::Up,
                        Some(crate::sim::uptime_kuma::UP_PING_MS)
                    ),
                    (id(9), "Printer \"Office\"", KumaStatus::Down, None),
                    (id(3), "NAS", KumaStatus::Up, Some(1500)),
                ],
                "{version:?}"
            );
            assert_eq!(monitors[0].kind.as_deref(), Some("http"));
        }
    }

    #[test]
    fn metrics_parse_labels_in_any_order_with_escapes() {
        let text = "# HELP monitor_status x\n# TYPE monitor_status gauge\n\
            monitor_status{media=\"a,b\",monitor_id=\"4\",monitor_name=\"Back\\\\slash \\\"q\\\" \\nline\",monitor_type=\"ping\",monitor_url=\"null\",monitor_hostname=\"nas.lan\",monitor_port=\"null\"} 0\n\
            monitor_response_time{monitor_port=\"null\",monitor_name=\"Back\\\\slash \\\"q\\\" \\nline\",monitor_id=\"4\"} -1\n\
            monitor_status{monitor_name=\"Old\"} 3 1746122400000\n\
            monitor_status{monitor_id=\"5\"} 1\n\
            monitor_status{monitor_name=\"Broken\" 1\n\
            http_request_duration_seconds_bucket{le=\"0.1\",path=\"/metrics\"} 3\n\
            monitor_uptime_ratio{monitor_id=\"4\",monitor_name=\"x\",window=\"1d\"} 0.5\n";
        let monitors = parse_metrics(text);
        assert_eq!(
            monitors,
            vec![
                KumaMetricsMonitor {
                    id: Some(4),
                    name: "Back\\slash \"q\" \nline".into(),
                    kind: Some("ping".into()),
                    status: KumaStatus::Down,
                    response_ms: None,
                },
                KumaMetricsMonitor {
                    id: None,
                    name: "Old".into(),
                    kind: None,
                    status: KumaStatus::Maintenance,
                    response_ms: None,
                },
            ],
            "no name, a broken line and other families are skipped"
        );
        assert!(parse_metrics("<html>Uptime Kuma</html>").is_empty());
    }

    /// HTTP Basic with the key as the password; Kuma answers a wrong key and a used-up
    /// minute alike (401), and the client asks at most once per 10 s.
    #[tokio::test]
    async fn metrics_take_the_key_and_respect_the_limit() {
        let (fake, clock) = started(KumaVersion::V2_1).await;
        fake.add_monitor(1, "Plex");
        let kuma = keyed(&fake, "uk1_s3cret", &clock);
        assert_eq!(
            kuma.metrics().await.unwrap(),
            Some(MetricsOutcome::KeyRefused),
            "no key made in Kuma yet"
        );
        fake.set_api_key(Some("uk1_s3cret"));
        assert_eq!(
            kuma.metrics().await.unwrap(),
            Some(MetricsOutcome::KeyRefused),
            "the answer is kept for 10 s"
        );
        assert_eq!(fake.requests(METRICS), 1);
        clock.advance(METRICS_MIN_GAP_MS);
        assert!(matches!(
            kuma.metrics().await.unwrap(),
            Some(MetricsOutcome::Monitors(m)) if m.len() == 1
        ));
        assert_eq!(fake.requests(METRICS), 2);
        clock.advance(METRICS_MIN_GAP_MS);
        let wrong = keyed(&fake, "uk1_other", &clock);
        assert_eq!(
            wrong.metrics().await.unwrap(),
            Some(MetricsOutcome::KeyRefused)
        );
        let other_id = keyed(&fake, "uk2_s3cret", &clock);
        assert_eq!(
            other_id.metrics().await.unwrap(),
            Some(MetricsOutcome::KeyRefused)
        );
        assert_eq!(
            kuma.upstream().breaker().snapshot().consecutive_failures,
            0,
            "a refused key is an answer"
        );
        let none = UptimeKuma::new(
            &fake.url(),
            "home",
            None,
            UpstreamOptions::with_timeout_ms(2000),
            clock.clone(),
        );
        assert!(!none.has_metrics());
        assert_eq!(none.metrics().await.unwrap(), None);
        assert_eq!(fake.requests(METRICS), 4);
    }

    #[tokio::test]
    async fn an_invalid_slug_sends_nothing() {
        let (fake, _) = started(KumaVersion::V2).await;
        for slug in [
            "",
            "  ",
            "home/../x",
            "ho me",
            "home?x=1",
            "hóme",
            "a_b",
            "-home",
            "home-",
            "ho--me",
        ] {
            let e = client(&fake, slug, 2000).status_page().await.unwrap_err();
            assert_eq!(SlugError::of(&e), Some(SlugError::Invalid), "{slug:?}");
        }
        assert_eq!(fake.total_requests(), 0);
        assert_eq!(check_slug(" My-Page-2 ").unwrap(), "My-Page-2");
        assert_eq!(SlugError::of(&AppError::new(ErrorCode::NotFound)), None);
        assert_eq!(
            SlugError::of(&AppError::new(ErrorCode::ServiceNotConfigured)),
            None
        );
    }

    #[tokio::test]
    async fn pending_and_maintenance_map_through() {
        let (fake, _) = started(KumaVersion::V2).await;
        fake.add_monitor(1, "A");
        fake.add_monitor(2, "B");
        fake.set_state(1, MonitorState::Pending);
        fake.set_state(2, MonitorState::Maintenance);
        let page = client(&fake, "home", 2000).status_page().await.unwrap();
        let statuses: Vec<KumaStatus> = page.monitors.iter().map(|m| m.status).collect();
        assert_eq!(statuses, vec![KumaStatus::Pending, KumaStatus::Maintenance]);
    }

    #[tokio::test]
    async fn a_flapping_monitor_alternates_between_reads() {
        let (fake, _) = started(KumaVersion::V1_23).await;
        fake.add_monitor(1, "Flappy");
        fake.add_monitor(2, "Steady");
        fake.set_state(1, MonitorState::Flapping);
        let kuma = client(&fake, "home", 2000);
        let mut seen = Vec::new();
        for _ in 0..4 {
            let page = kuma.status_page().await.unwrap();
            seen.push(page.monitors[0].status);
            assert_eq!(page.monitors[1].status, KumaStatus::Up);
        }
        assert_eq!(
            seen,
            vec![
                KumaStatus::Down,
                KumaStatus::Up,
                KumaStatus::Down,
                KumaStatus::Up
            ]
        );
    }

    #[tokio::test]
    async fn per_request_history_grows_with_each_read() {
        let (fake, _) = started(KumaVersion::V1_23).await;
        fake.set_heartbeat_mode(HeartbeatMode::PerRequest);
        fake.add_monitor(1, "A");
        let kuma = client(&fake, "home", 2000);
        for _ in 0..60 {
            kuma.status_page().await.unwrap();
        }
        assert_eq!(fake.heartbeat_count(1), 61);
        let page = kuma.status_page().await.unwrap();
        assert_eq!(page.monitors[0].status, KumaStatus::Up);
    }

    #[tokio::test]
    async fn garbage_and_500_are_upstream_errors() {
        let (fake, _) = started(KumaVersion::V2).await;
        fake.add_monitor(1, "A");
        let kuma = client(&fake, "home", 2000);
        fake.fail_next_on(Endpoint::Heartbeat, 1, Fault::Garbage);
        let e = kuma.status_page().await.unwrap_err();
        assert_eq!(code_of(&e), ErrorCode::UpstreamError);
        assert_eq!(e.code().status().as_u16(), 502);

        fake.fail_next_on(Endpoint::Page, 1, Fault::Garbage);
        let e = kuma.status_page().await.unwrap_err();
        assert_eq!(code_of(&e), ErrorCode::UpstreamError);

        fake.fail_next_on(Endpoint::Heartbeat, 1, Fault::Status(500));
        let e = kuma.status_page().await.unwrap_err();
        assert_eq!(code_of(&e), ErrorCode::UpstreamError);
        assert_eq!(e.code().status().as_u16(), 502);
        fake.fail_next_on(Endpoint::Page, 1, Fault::Status(500));
        let e = kuma.status_page().await.unwrap_err();
        assert_eq!(code_of(&e), ErrorCode::UpstreamError);
        assert_eq!(fake.requests(BEATS), 4, "a 500 is not retried");
        assert_eq!(fake.requests(PAGE), 4);
        kuma.status_page().await.unwrap();
    }

    #[tokio::test]
    async fn refused_is_service_unavailable() {
        let (fake, _) = started(KumaVersion::V2).await;
        let kuma = client(&fake, "home", 2000);
        fake.shutdown().await;
        let e = kuma.status_page().await.unwrap_err();
        assert_eq!(code_of(&e), ErrorCode::ServiceUnavailable);
        assert_eq!(e.code().status().as_u16(), 503);
    }

    #[tokio::test]
    async fn hanging_is_a_timeout_within_the_bound() {
        let (fake, _) = started(KumaVersion::V2).await;
        fake.add_monitor(1, "A");
        fake.fail_next_on(Endpoint::Heartbeat, 1, Fault::Hang(Duration::from_secs(5)));
        let kuma = client(&fake, "home", 300);
        let began = Instant::now();
        let e = kuma.status_page().await.unwrap_err();
        let took = began.elapsed();
        assert_eq!(code_of(&e), ErrorCode::UpstreamTimeout);
        assert_eq!(e.code().status().as_u16(), 504);
        assert!(took >= Duration::from_millis(250), "{took:?}");
        assert!(took < Duration::from_millis(1000), "{took:?}");
    }

    #[test]
    fn missing_and_drifting_fields_parse() {
        let page: PageWire = parse_json(
            br#"{"config":{"slug":"home","title":null},"incident":null,
                 "publicGroupList":[
                   {"name":"A","monitorList":[{"id":"3","name":"Str id"},{"name":"no id"},
                                              {"id":4},"junk",{"id":3,"name":"dup"}]},
                   {"name":"Empty"},
                   {"name":"Null list","monitorList":null},
                   42,
                   {"monitorList":[{"id":5.0,"name":"float id"},{"id":6,"name":"Six"}]}
                 ]}"#,
        )
        .unwrap();
        let beats: HeartbeatWire = parse_json(
            br#"{"heartbeatList":{
                   "3":[{"status":1,"time":"2025-05-01 17:58:00.123","ping":23},
                        {"status":"0","time":"2025-05-01T17:59:02Z","msg":"timeout","ping":12.6}],
                   "4":[],
                   "6":[{"status":true,"time":"garbage","ping":null}],
                   "99":[{"status":1}]},
                 "uptimeList":{"3_24":"0.75","4_24":1.7,"6_24":null,"3_720":0.1}}"#,
        )
        .unwrap();
        let page = join(page, beats, "home");
        assert_eq!(page.title, "home", "no title: the slug");
        assert!(page.incidents.is_empty());
        let m: Vec<(i64, &str, KumaStatus)> = page
            .monitors
            .iter()
            .map(|m| (m.id, m.name.as_str(), m.status))
            .collect();
        assert_eq!(
            m,
            vec![
                (3, "Str id", KumaStatus::Down),
                (4, "Monitor 4", KumaStatus::Unknown),
                (6, "Six", KumaStatus::Up),
            ],
            "a float id, a missing id and a non-object entry are skipped"
        );
        let three = &page.monitors[0];
        assert_eq!(three.ping_ms, Some(13));
        assert_eq!(three.message.as_deref(), Some("timeout"));
        assert_eq!(three.uptime_24h, Some(0.75));
        assert_eq!(three.last_heartbeat_ms, Some(1_746_122_342_000));
        assert_eq!(page.monitors[1].uptime_24h, Some(1.0), "clamped");
        assert_eq!(page.monitors[2].last_heartbeat_ms, None);
        assert_eq!(page.monitors[2].group, None);

        let empty = join(PageWire::default(), HeartbeatWire::default(), "x");
        assert!(empty.monitors.is_empty());

        let both: PageWire = parse_json(
            br#"{"config":{"title":"T"},"incidents":[{"title":"new","style":"info"},{"content":"no title"}],
                 "incident":{"title":"old","content":"c"}}"#,
        )
        .unwrap();
        let titles: Vec<String> = join(both, HeartbeatWire::default(), "x")
            .incidents
            .into_iter()
            .map(|i| i.title)
            .collect();
        assert_eq!(titles, vec!["new", "old"]);
    }

    #[test]
    fn beat_times_parse_in_every_seen_format() {
        assert_eq!(
            parse_beat_time("2025-05-01 17:58:00.123"),
            Some(1_746_122_280_123)
        );
        assert_eq!(
            parse_beat_time("2025-05-01 17:58:00"),
            Some(1_746_122_280_000)
        );
        assert_eq!(
            parse_beat_time("2025-05-01T17:58:00.5Z"),
            Some(1_746_122_280_500)
        );
        assert_eq!(
            parse_beat_time("2025-05-01T19:58:00+02:00"),
            Some(1_746_122_280_000)
        );
        assert_eq!(parse_beat_time("yesterday"), None);
    }

    #[tokio::test]
    async fn other_not_found_shapes_are_unknown_slugs_too() {
        let (fake, _) = started(KumaVersion::V1_23).await;
        let kuma = client(&fake, "home", 2000);
        let answer = |status: u16, body: &str| Fault::Body {
            status,
            body: body.to_owned(),
        };
        fake.fail_next_on(
            Endpoint::Page,
            1,
            answer(200, r#"{"ok":false,"msg":"Status Page Not Found"}"#),
        );
        let e = kuma.status_page().await.unwrap_err();
        assert_eq!(SlugError::of(&e), Some(SlugError::Unknown));
        fake.fail_next_on(Endpoint::Page, 1, answer(404, "<html>Cannot GET</html>"));
        let e = kuma.status_page().await.unwrap_err();
        assert_eq!(SlugError::of(&e), Some(SlugError::Unknown));

        // Kuma's other failures (403 for anything but "not found") are not about the slug.
        fake.fail_next_on(
            Endpoint::Page,
            1,
            answer(403, r#"{"status":"fail","msg":"SQLITE_ERROR"}"#),
        );
        let e = kuma.status_page().await.unwrap_err();
        assert_eq!(code_of(&e), ErrorCode::UpstreamError);
        fake.fail_next_on(
            Endpoint::Page,
            1,
            answer(200, r#"{"ok":false,"msg":"Something else"}"#),
        );
        let e = kuma.status_page().await.unwrap_err();
        assert_eq!(code_of(&e), ErrorCode::UpstreamError);
    }
}
