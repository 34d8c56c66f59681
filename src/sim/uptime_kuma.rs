//! A fake Uptime Kuma (UPSTREAMS.md 3.1, 3.2, 3.7): one public status page at
//! `GET /api/status-page/{slug}` and its heartbeats at `GET /api/status-page/heartbeat/{slug}`,
//! as release 1.23, 2.0 or 2.1 serves them ([`KumaVersion`]), with Kuma's quirks, read in
//! `louislam/uptime-kuma` `server/routers/status-page-router.js` and `server/model/status_page.js`
//! at tags 1.23.16, 2.0.0 and 2.1.0:
//!
//! - an unknown slug: 1.23's page route returns without ever answering (the request hangs until
//!   the client gives up); 2.0 and later answer 404 `{"status":"fail","msg":"Status Page Not
//!   Found"}`. The heartbeat route answers 200 with empty maps on every release (the slug's id
//!   is looked up, nothing matches it).
//! - slugs: 1.23 compares the slug exactly as stored (case-sensitive: a page's slug can be
//!   edited to mixed case); 2.0 and later lowercase the requested slug first.
//! - heartbeat maps keyed by the monitor id as a string, zone-less UTC times, history capped at
//!   50 (1.23) or 100 beats.
//! - incidents (`server/model/status_page.js` `getStatusPageData`, `server/model/incident.js`):
//!   1.23 and 2.0 send one pinned active incident as `incident` (or null); 2.1 sends every
//!   pinned active one as `incidents[]`, newest first, and adds
//!   `GET /api/status-page/{slug}/incident-history?cursor=` (all of them, pinned or not, active
//!   or resolved, 10 a page: `{ok, incidents, total, nextCursor, hasMore}`). Before 2.1 that path
//!   falls to the web app's catch-all and answers 200 with the HTML page.
//! - `GET /metrics` (`server/server.js` `app.get("/metrics", apiAuth, ...)`, `server/auth.js`
//!   `apiAuth`, `server/rate-limiter.js`): with API keys in use, HTTP Basic whose password is a
//!   key `uk<id>_<secret>` (any username); every check takes from a 60-a-minute limiter, and a
//!   refused or limited check is a bare 401 with `WWW-Authenticate: Basic`. Every monitor is
//!   there, on a page or not, with `server/prometheus.js`'s label sets: `monitor_name, _type,
//!   _url, _hostname, _port` on 1.23; `monitor_id` first on 2.0; on 2.1 the monitor's tags
//!   (sanitised, sorted) before those, and `monitor_uptime_ratio` with a `window` label (the
//!   fake leaves out 2.1's `monitor_response_time_seconds` and the certificate families).
//!
//! A test or the demo steers it through [`FakeUptimeKuma`]'s methods: monitors added at run
//! time (on the page or on none) and set up, down, slow, pending, in maintenance or flapping
//! (alternating on every heartbeat read); whether every heartbeat read adds a beat
//! ([`HeartbeatMode`]); incidents posted, unpinned or resolved; the page's slug; the API key;
//! injected failures (for any endpoint or one of them), latency and request counts.
//! State sits behind a `std` mutex that is never held across an `.await`.

use std::collections::VecDeque;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::harness::{self, Effect, SimFault, SimServer, Traffic};
use crate::clock::{SharedClock, SystemClock};

/// The ping an up monitor reports unless it is [`MonitorState::Slow`].
pub const UP_PING_MS: u64 = 23;
/// The group [`FakeUptimeKuma::add_monitor`] puts monitors in.
pub const DEFAULT_GROUP: &str = "Services";
/// Beats kept per monitor (what 2.x serves; 1.23 serves the last 50 of them).
const MAX_BEATS: usize = 100;
const PAGE_ROUTE: &str = "/api/status-page/{slug}";
const HEARTBEAT_ROUTE: &str = "/api/status-page/heartbeat/{slug}";
const HISTORY_ROUTE: &str = "/api/status-page/{slug}/incident-history";
const METRICS_ROUTE: &str = "/metrics";
/// API-key checks a minute (`apiRateLimiter` in `server/rate-limiter.js`).
const API_CHECKS_PER_MINUTE: u32 = 60;
/// Incidents per history page (`INCIDENT_PAGE_SIZE` in 2.1.0 `src/util.ts`).
const INCIDENT_PAGE_SIZE: usize = 10;

/// Which release to behave as (`louislam/uptime-kuma` tags 1.23.16, 2.0.0, 2.1.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KumaVersion {
    /// 1.23.x: slugs matched exactly (case-sensitive), an unknown slug never answered on the
    /// page route, `incident` (object or null), `googleAnalyticsId`, times with milliseconds,
    /// 50 beats.
    V1_23,
    /// 2.0.x: slugs lowercased, an unknown slug answered 404, still `incident`;
    /// `autoRefreshInterval` beside `googleAnalyticsId`, times in whole seconds, 100 beats.
    V2_0,
    /// 2.1 and later: as 2.0, with `incidents[]` instead of `incident` and `analytics*` instead
    /// of `googleAnalyticsId`.
    V2_1,
}

impl KumaVersion {
    /// The current 2.x (2.1 and later).
    pub const V2: Self = Self::V2_1;

    /// Whether the routes lowercase the requested slug (2.0 and later).
    fn lowercases_slugs(self) -> bool {
        self != Self::V1_23
    }
}

/// What a monitor's next beats say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorState {
    /// Up, answering in [`UP_PING_MS`].
    Up,
    /// Down (no ping).
    Down,
    /// Up, answering in this many ms.
    Slow(u64),
    /// Failing but still within its retries.
    Pending,
    Maintenance,
    /// Down, up, down... : every heartbeat read adds a beat opposite to the last one.
    Flapping,
}

/// When beats are added for monitors that are not flapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatMode {
    /// Only when [`FakeUptimeKuma::set_state`] is called (and one on `add_monitor`).
    PerSet,
    /// Also on every heartbeat read, as if Kuma checked between two polls.
    PerRequest,
}

/// One of the two endpoints, to aim a fault at (see [`FakeUptimeKuma::fail_next_on`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /api/status-page/{slug}`.
    Page,
    /// `GET /api/status-page/heartbeat/{slug}`.
    Heartbeat,
    /// `GET /api/status-page/{slug}/incident-history` (2.1).
    History,
}

impl Endpoint {
    /// The route it is served on.
    fn route(self) -> &'static str {
        match self {
            Self::Page => PAGE_ROUTE,
            Self::Heartbeat => HEARTBEAT_ROUTE,
            Self::History => HISTORY_ROUTE,
        }
    }
}

/// A failure to inject into the next responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and Kuma's `{"status":"fail","msg":...}` body.
    Status(u16),
    /// 200 with a body that is not valid JSON.
    Garbage,
    /// Wait this long, then answer normally.
    Hang(Duration),
    /// Answer exactly this (as `application/json`), e.g. an older release's failure shape.
    Body { status: u16, body: String },
}

impl SimFault for Fault {
    fn effect(self) -> Effect {
        match self {
            Self::Hang(duration) => Effect::Delay(duration),
            Self::Status(code) => {
                let status = harness::status_or_500(code);
                Effect::Answer(fail(status, status.canonical_reason().unwrap_or("Error")))
            }
            Self::Garbage => {
                Effect::Answer(json_text(StatusCode::OK, r#"{"heartbeatList":{"1":[{"sta"#))
            }
            Self::Body { status, body } => Effect::Answer(json_text(
                StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                &body,
            )),
        }
    }
}

/// A running fake Uptime Kuma on `127.0.0.1`. Dropping it stops the server; so does
/// [`SimServer::shutdown`], after which connections are refused. The [`SimServer`] it derefs
/// to has the shared controls: `url`, `fail_next`, `set_latency`, `requests`, `shutdown`.
pub struct FakeUptimeKuma {
    server: SimServer<Fault>,
    shared: Arc<Shared>,
}

/// What the handlers get: the state, and the traffic (to hang until the server stops).
#[derive(Clone)]
struct Sim {
    shared: Arc<Shared>,
    traffic: Arc<Traffic<Fault>>,
}

impl Deref for FakeUptimeKuma {
    type Target = SimServer<Fault>;

    fn deref(&self) -> &SimServer<Fault> {
        &self.server
    }
}

impl std::fmt::Debug for FakeUptimeKuma {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.server.fmt_as("FakeUptimeKuma", f)
    }
}

struct Shared {
    state: Mutex<SimState>,
    clock: SharedClock,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SimState> {
        harness::lock(&self.state)
    }
}

struct SimState {
    /// As stored in Kuma (case kept).
    slug: String,
    title: String,
    version: KumaVersion,
    mode: HeartbeatMode,
    /// Group names in page order.
    groups: Vec<String>,
    monitors: Vec<Monitor>,
    /// Oldest first.
    incidents: Vec<Incident>,
    next_incident_id: i64,
    /// The one API key, when keys are in use.
    api_key: Option<String>,
    /// The API limiter's minute: when it began (ms) and the checks it took.
    api_window: (i64, u32),
}

struct Incident {
    id: i64,
    title: String,
    content: String,
    pin: bool,
    active: bool,
    created_ms: i64,
}

struct Monitor {
    id: i64,
    name: String,
    /// Its page group; empty for a monitor on no page (only `/metrics` shows it).
    group: String,
    /// Tag names and values (2.1 turns them into labels).
    tags: Vec<(String, String)>,
    state: MonitorState,
    /// Oldest first.
    beats: VecDeque<Beat>,
}

#[derive(Clone, Copy)]
struct Beat {
    status: u8,
    time_ms: i64,
    ping: Option<u64>,
}

impl SimState {
    /// Whether a requested slug names the page: exactly on 1.23 (`R.findOne("status_page",
    /// " slug = ? ")` on the raw parameter), lowercased first on 2.x.
    fn serves(&self, requested: &str) -> bool {
        if self.version.lowercases_slugs() {
            requested.to_lowercase() == self.slug
        } else {
            requested == self.slug
        }
    }
}

impl Monitor {
    /// Adds the beat its state calls for at `now_ms`.
    fn beat(&mut self, now_ms: i64) {
        let (status, ping) = match self.state {
            MonitorState::Up => (1, Some(UP_PING_MS)),
            MonitorState::Slow(ms) => (1, Some(ms)),
            MonitorState::Down => (0, None),
            MonitorState::Pending => (2, None),
            MonitorState::Maintenance => (3, None),
            MonitorState::Flapping => match self.beats.back() {
                Some(last) if last.status == 1 => (0, None),
                _ => (1, Some(UP_PING_MS)),
            },
        };
        if self.beats.len() == MAX_BEATS {
            self.beats.pop_front();
        }
        self.beats.push_back(Beat {
            status,
            time_ms: now_ms,
            ping,
        });
    }
}

impl FakeUptimeKuma {
    /// Binds `127.0.0.1:0`, serves the status page `slug` (stored as given) as `version` would
    /// in the background and returns the handle; the port accepts connections as soon as this
    /// returns.
    pub async fn start(slug: &str, version: KumaVersion) -> std::io::Result<Self> {
        Self::start_with_clock(slug, version, Arc::new(SystemClock)).await
    }

    /// [`FakeUptimeKuma::start`] with an injected clock for the beat times.
    pub async fn start_with_clock(
        slug: &str,
        version: KumaVersion,
        clock: SharedClock,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(SimState {
                slug: slug.to_owned(),
                title: "Home Services".to_owned(),
                version,
                mode: HeartbeatMode::PerSet,
                groups: Vec::new(),
                monitors: Vec::new(),
                incidents: Vec::new(),
                next_incident_id: 1,
                api_key: None,
                api_window: (0, 0),
            }),
            clock,
        });
        let server = SimServer::start("fake Uptime Kuma", |traffic| {
            router(shared.clone(), traffic)
        })
        .await?;
        Ok(Self { server, shared })
    }

    /// The slug of the one page served, as stored.
    pub fn slug(&self) -> String {
        self.shared.lock().slug.clone()
    }

    /// Changes the page's stored slug, as an admin editing the page does (1.23's
    /// `saveStatusPage` takes `[A-Za-z0-9-]`, mixed case included).
    pub fn set_slug(&self, slug: &str) {
        self.shared.lock().slug = slug.to_owned();
    }

    /// Sets the page title.
    pub fn set_title(&self, title: &str) {
        self.shared.lock().title = title.to_owned();
    }

    /// Switches the release (an upgrade of Kuma under a running MediaNest).
    pub fn set_version(&self, version: KumaVersion) {
        self.shared.lock().version = version;
    }

    /// Sets when beats are added; see [`HeartbeatMode`].
    pub fn set_heartbeat_mode(&self, mode: HeartbeatMode) {
        self.shared.lock().mode = mode;
    }

    /// Adds (or replaces, by id) an up monitor with one beat, in [`DEFAULT_GROUP`].
    pub fn add_monitor(&self, id: i64, name: &str) {
        self.add_monitor_in_group(DEFAULT_GROUP, id, name);
    }

    /// Adds (or replaces, by id) an up monitor with one beat, in `group` (created after the
    /// existing groups when new).
    pub fn add_monitor_in_group(&self, group: &str, id: i64, name: &str) {
        let now = self.shared.clock.now_ms();
        let mut state = self.shared.lock();
        if !state.groups.iter().any(|g| g == group) {
            state.groups.push(group.to_owned());
        }
        state.monitors.retain(|m| m.id != id);
        let mut monitor = Monitor {
            id,
            name: name.to_owned(),
            group: group.to_owned(),
            tags: Vec::new(),
            state: MonitorState::Up,
            beats: VecDeque::new(),
        };
        monitor.beat(now);
        state.monitors.push(monitor);
    }

    /// Adds (or replaces, by id) an up monitor that is on no status page: only `/metrics`
    /// shows it.
    pub fn add_private_monitor(&self, id: i64, name: &str) {
        let now = self.shared.clock.now_ms();
        let mut state = self.shared.lock();
        state.monitors.retain(|m| m.id != id);
        let mut monitor = Monitor {
            id,
            name: name.to_owned(),
            group: String::new(),
            tags: Vec::new(),
            state: MonitorState::Up,
            beats: VecDeque::new(),
        };
        monitor.beat(now);
        state.monitors.push(monitor);
    }

    /// Tags a monitor (`(name, value)`; 2.1's `/metrics` makes labels of them).
    pub fn set_tags(&self, id: i64, tags: &[(&str, &str)]) {
        if let Some(m) = self.shared.lock().monitors.iter_mut().find(|m| m.id == id) {
            m.tags = tags
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect();
        }
    }

    /// Creates the API key `uk<id>_<secret>` (`None` deletes them all): from then on
    /// `/metrics` takes only it, as Kuma does once a key exists.
    pub fn set_api_key(&self, key: Option<&str>) {
        self.shared.lock().api_key = key.map(str::to_owned);
    }

    /// Takes a monitor off the page; false when there was none with `id`.
    pub fn remove_monitor(&self, id: i64) -> bool {
        let mut state = self.shared.lock();
        let before = state.monitors.len();
        state.monitors.retain(|m| m.id != id);
        state.monitors.len() != before
    }

    /// Sets a monitor's state and, unless it is flapping, adds a beat saying so. False when
    /// there is no monitor with `id`.
    pub fn set_state(&self, id: i64, monitor_state: MonitorState) -> bool {
        let now = self.shared.clock.now_ms();
        let mut state = self.shared.lock();
        let Some(monitor) = state.monitors.iter_mut().find(|m| m.id == id) else {
            return false;
        };
        monitor.state = monitor_state;
        if monitor_state != MonitorState::Flapping {
            monitor.beat(now);
        }
        true
    }

    /// Forgets a monitor's beats, as for a monitor that has not been checked yet.
    pub fn clear_heartbeats(&self, id: i64) {
        if let Some(m) = self.shared.lock().monitors.iter_mut().find(|m| m.id == id) {
            m.beats.clear();
        }
    }

    /// Beats stored for a monitor (at most 100; 1.23 serves the last 50).
    pub fn heartbeat_count(&self, id: i64) -> usize {
        self.shared
            .lock()
            .monitors
            .iter()
            .find(|m| m.id == id)
            .map_or(0, |m| m.beats.len())
    }

    /// Pins an incident `(title, content)` with style `warning` on the page, resolving the
    /// ones before it, or (`None`) resolves them all.
    pub fn set_incident(&self, incident: Option<(&str, &str)>) {
        {
            let mut state = self.shared.lock();
            for old in state.incidents.iter_mut().filter(|i| i.active) {
                old.active = false;
                old.pin = false;
            }
        }
        if let Some((title, content)) = incident {
            self.post_incident(title, content);
        }
    }

    /// Posts one more pinned, active incident (2.1's `postIncident` keeps the others pinned);
    /// returns its id.
    pub fn post_incident(&self, title: &str, content: &str) -> i64 {
        let now = self.shared.clock.now_ms();
        let mut state = self.shared.lock();
        let id = state.next_incident_id;
        state.next_incident_id += 1;
        state.incidents.push(Incident {
            id,
            title: title.to_owned(),
            content: content.to_owned(),
            pin: true,
            active: true,
            created_ms: now,
        });
        id
    }

    /// Unpins every incident, as Kuma's `unpinIncident` does: they leave the page but stay
    /// active (the 2.1 history still shows them so).
    pub fn unpin_incidents(&self) {
        for incident in &mut self.shared.lock().incidents {
            incident.pin = false;
        }
    }

    /// Makes the next `n` requests to `endpoint` fail with `fault`; the other one is unaffected.
    /// (`fail_next`, from the harness, aims at any endpoint.)
    pub fn fail_next_on(&self, endpoint: Endpoint, n: usize, fault: Fault) {
        self.server.fail_next_on_route(endpoint.route(), n, fault);
    }
}

fn router(shared: Arc<Shared>, traffic: Arc<Traffic<Fault>>) -> Router {
    Router::new()
        .route(PAGE_ROUTE, get(page))
        .route(HEARTBEAT_ROUTE, get(heartbeats))
        .route(HISTORY_ROUTE, get(incident_history))
        .route(METRICS_ROUTE, get(metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            traffic.clone(),
            harness::observe::<Fault>,
        ))
        .with_state(Sim { shared, traffic })
}

fn json_text(status: StatusCode, body: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_owned(),
    )
        .into_response()
}

/// Kuma's `sendHttpError` shape.
fn fail(status: StatusCode, msg: &str) -> Response {
    (status, axum::Json(json!({"status": "fail", "msg": msg}))).into_response()
}

async fn not_found() -> Response {
    fail(StatusCode::NOT_FOUND, "Not Found")
}

/// Kuma answers both endpoints through `apicache`, which sets these.
fn cached(max_age: u32, body: Value) -> Response {
    (
        [(header::CACHE_CONTROL, format!("max-age={max_age}"))],
        axum::Json(body),
    )
        .into_response()
}

async fn page(State(sim): State<Sim>, Path(slug): Path<String>) -> Response {
    let (body, version) = {
        let state = sim.shared.lock();
        (page_body(&state, &slug), state.version)
    };
    match body {
        Some(body) => cached(300, body),
        // 1.23.16: `if (!statusPage) { return null; }` — no response is ever sent.
        None if version == KumaVersion::V1_23 => {
            sim.traffic.stopped().await;
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        // 2.0.0: `sendHttpError(response, "Status Page Not Found")`, a 404 for "not found".
        None => fail(StatusCode::NOT_FOUND, "Status Page Not Found"),
    }
}

/// The page's JSON, or `None` when `slug` names no page.
fn page_body(state: &SimState, slug: &str) -> Option<Value> {
    if !state.serves(slug) {
        return None;
    }
    let groups: Vec<Value> = state
        .groups
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let monitors: Vec<Value> = state
                .monitors
                .iter()
                .filter(|m| &m.group == name)
                .map(|m| json!({"id": m.id, "name": m.name, "sendUrl": 0, "type": "http"}))
                .collect();
            json!({"id": index + 1, "name": name, "weight": index + 1, "monitorList": monitors})
        })
        .collect();
    // `pin = 1 AND active = 1`, newest first (2.1's order; 1.23's `findOne` takes one).
    let mut pinned: Vec<Value> = state
        .incidents
        .iter()
        .rev()
        .filter(|i| i.pin && i.active)
        .map(|i| incident_json(i, state.version))
        .collect();
    let incident = (!pinned.is_empty()).then(|| pinned.remove(0));
    let mut config = json!({
        "slug": state.slug, "title": state.title, "description": null, "icon": "/icon.svg",
        "theme": "auto", "published": true, "showTags": false, "customCSS": "body {\n  \n}\n",
        "footerText": null, "showPoweredBy": true, "showCertificateExpiry": false,
    });
    let mut body = Map::new();
    match state.version {
        KumaVersion::V1_23 => {
            extend(&mut config, json!({"googleAnalyticsId": null}));
            body.insert("incident".into(), incident.unwrap_or(Value::Null));
        }
        KumaVersion::V2_0 => {
            extend(
                &mut config,
                json!({"autoRefreshInterval": 300, "googleAnalyticsId": null}),
            );
            body.insert("incident".into(), incident.unwrap_or(Value::Null));
        }
        KumaVersion::V2_1 => {
            extend(
                &mut config,
                json!({"autoRefreshInterval": 300, "analyticsId": null,
                       "analyticsScriptUrl": null, "analyticsType": null,
                       "showOnlyLastHeartbeat": false, "rssTitle": null}),
            );
            body.insert(
                "incidents".into(),
                Value::Array(incident.into_iter().chain(pinned).collect()),
            );
        }
    }
    body.insert("config".into(), config);
    body.insert("publicGroupList".into(), Value::Array(groups));
    body.insert("maintenanceList".into(), json!([]));
    Some(Value::Object(body))
}

/// An incident's public JSON: 1.23's `toPublicJSON` has no `active`; 2.1's adds it and the
/// page id.
fn incident_json(incident: &Incident, version: KumaVersion) -> Value {
    let mut json = json!({
        "id": incident.id, "style": "warning", "title": incident.title,
        "content": incident.content, "pin": incident.pin,
        "createdDate": beat_time(incident.created_ms, KumaVersion::V2_1),
        "lastUpdatedDate": null,
    });
    if version == KumaVersion::V2_1 {
        extend(
            &mut json,
            json!({"active": incident.active, "status_page_id": 1}),
        );
    }
    json
}

/// `GET /api/status-page/{slug}/incident-history?cursor=` (2.1): the page's incidents newest
/// first, 10 at a time, before `cursor` (a `createdDate`). Older releases have no such route:
/// the web app's catch-all answers it with the HTML page.
async fn incident_history(
    State(sim): State<Sim>,
    Path(slug): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let state = sim.shared.lock();
    if state.version != KumaVersion::V2_1 {
        return (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!DOCTYPE html><html><head><title>Uptime Kuma</title></head><body></body></html>",
        )
            .into_response();
    }
    if !state.serves(&slug) {
        return fail(StatusCode::NOT_FOUND, "Status Page Not Found");
    }
    let cursor = query.as_deref().and_then(|q| {
        q.split('&')
            .find_map(|p| p.strip_prefix("cursor="))
            .map(|c| {
                percent_encoding::percent_decode_str(&c.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            })
    });
    let newest_first: Vec<&Incident> = state
        .incidents
        .iter()
        .rev()
        .filter(|i| {
            cursor
                .as_deref()
                .is_none_or(|c| beat_time(i.created_ms, KumaVersion::V2_1).as_str() < c)
        })
        .collect();
    let page: Vec<Value> = newest_first
        .iter()
        .take(INCIDENT_PAGE_SIZE)
        .map(|i| incident_json(i, KumaVersion::V2_1))
        .collect();
    let has_more = newest_first.len() > INCIDENT_PAGE_SIZE;
    let next_cursor = has_more
        .then(|| newest_first.get(INCIDENT_PAGE_SIZE - 1))
        .flatten()
        .map(|i| beat_time(i.created_ms, KumaVersion::V2_1));
    cached(
        300,
        json!({"ok": true, "incidents": page, "total": state.incidents.len(),
               "nextCursor": next_cursor, "hasMore": has_more}),
    )
}

/// `GET /metrics` behind `apiAuth`.
async fn metrics(State(sim): State<Sim>, headers: axum::http::HeaderMap) -> Response {
    let now = sim.shared.clock.now_ms();
    let mut state = sim.shared.lock();
    let password = basic_password(&headers);
    let Some(key) = state.api_key.clone() else {
        // No key yet: Kuma checks the admin's username and password, which the fake has not.
        return unauthorized();
    };
    // `apiAuthorizer`: refused at once while the limiter's minute is used up; otherwise the key
    // is checked and a check is taken, whatever the outcome.
    if now - state.api_window.0 >= 60_000 {
        state.api_window = (now, 0);
    }
    if state.api_window.1 >= API_CHECKS_PER_MINUTE {
        return unauthorized();
    }
    state.api_window.1 += 1;
    if !password.is_some_and(|p| key_matches(&p, &key)) {
        return unauthorized();
    }
    let body = metrics_text(&state);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// express-basic-auth's refusal with `challenge: true`: 401, an empty body.
fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic")],
        "",
    )
        .into_response()
}

/// The password of an HTTP Basic `Authorization` header.
fn basic_password(headers: &axum::http::HeaderMap) -> Option<String> {
    use base64::Engine as _;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':').map(|(_, p)| p.to_owned())
}

/// `verifyAPIKey`: the id between `uk` and `_`, the secret after it.
fn key_matches(given: &str, key: &str) -> bool {
    let split = |k: &str| -> Option<(String, String)> {
        let (id, secret) = k.strip_prefix("uk")?.split_once('_')?;
        Some((id.to_owned(), secret.to_owned()))
    };
    matches!((split(given), split(key)), (Some(a), Some(b)) if a == b)
}

/// `Prometheus.sanitizeForPrometheus` (2.1): letters, digits and `_`, not starting with a digit.
fn sanitize_label(text: &str) -> String {
    let kept: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    kept.trim_start_matches(|c: char| !(c.is_ascii_alphabetic() || c == '_'))
        .to_owned()
}

/// A label value as prom-client writes it.
fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('"', "\\\"")
}

/// The exposition text: a few of the default process metrics, then the monitor families.
fn metrics_text(state: &SimState) -> String {
    let version = state.version;
    let mut out = String::from(
        "# HELP process_cpu_user_seconds_total Total user CPU time spent in seconds.\n\
         # TYPE process_cpu_user_seconds_total counter\n\
         process_cpu_user_seconds_total 12.5\n\
         # HELP nodejs_eventloop_lag_seconds Lag of event loop in seconds.\n\
         # TYPE nodejs_eventloop_lag_seconds gauge\n\
         nodejs_eventloop_lag_seconds 0.004\n",
    );
    // 2.1: every tag name is a label of every monitor (empty when it lacks the tag).
    let mut tag_names: Vec<String> = state
        .monitors
        .iter()
        .flat_map(|m| m.tags.iter().map(|(n, _)| sanitize_label(n)))
        .filter(|n| !n.is_empty())
        .collect();
    tag_names.sort_by_key(|n| n.to_lowercase());
    tag_names.dedup();
    let labels = |m: &Monitor| -> String {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if version == KumaVersion::V2_1 {
            for name in &tag_names {
                let mut values: Vec<String> = m
                    .tags
                    .iter()
                    .filter(|(n, _)| &sanitize_label(n) == name)
                    .map(|(_, v)| sanitize_label(v))
                    .filter(|v| !v.is_empty())
                    .collect();
                values.sort();
                pairs.push((name.clone(), values.join(",")));
            }
        }
        if version != KumaVersion::V1_23 {
            pairs.push(("monitor_id".into(), m.id.to_string()));
        }
        pairs.push(("monitor_name".into(), m.name.clone()));
        pairs.push(("monitor_type".into(), "http".into()));
        pairs.push((
            "monitor_url".into(),
            format!("http://{}.lan/", m.name.to_lowercase().replace(' ', "-")),
        ));
        // Unset columns print as `null`.
        pairs.push(("monitor_hostname".into(), "null".into()));
        pairs.push(("monitor_port".into(), "null".into()));
        pairs
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", label_value(v)))
            .collect::<Vec<_>>()
            .join(",")
    };
    let latest = |m: &Monitor| m.beats.back().copied();
    let mut family = |name: &str, help: &str, value: &dyn Fn(&Monitor) -> Option<String>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for m in &state.monitors {
            if let Some(v) = value(m) {
                out.push_str(&format!("{name}{{{}}} {v}\n", labels(m)));
            }
        }
    };
    family(
        "monitor_response_time",
        "Monitor Response Time (ms)",
        &|m| latest(m).map(|b| b.ping.map_or("-1".to_owned(), |p| p.to_string())),
    );
    family(
        "monitor_status",
        "Monitor Status (1 = UP, 0= DOWN, 2= PENDING, 3= MAINTENANCE)",
        &|m| latest(m).map(|b| b.status.to_string()),
    );
    if version == KumaVersion::V2_1 {
        out.push_str(
            "# HELP monitor_uptime_ratio Uptime ratio calculated over sliding window specified by the 'window' label. (0.0 - 1.0)\n\
             # TYPE monitor_uptime_ratio gauge\n",
        );
        for m in state.monitors.iter().filter(|m| !m.beats.is_empty()) {
            let up = m.beats.iter().filter(|b| b.status == 1).count() as f64;
            let ratio = up / m.beats.len() as f64;
            for window in ["1d", "30d", "365d"] {
                out.push_str(&format!(
                    "monitor_uptime_ratio{{{},window=\"{window}\"}} {ratio}\n",
                    labels(m)
                ));
            }
        }
    }
    out
}

fn extend(target: &mut Value, more: Value) {
    if let (Value::Object(target), Value::Object(more)) = (target, more) {
        target.extend(more);
    }
}

async fn heartbeats(State(sim): State<Sim>, Path(slug): Path<String>) -> Response {
    let shared = &sim.shared;
    let now = shared.clock.now_ms();
    let mut state = shared.lock();
    // An unknown slug's id is undefined and the monitor query matches nothing, so every release
    // answers 200 with empty maps (status-page-router.js, 1.23.16 and 2.x).
    if !state.serves(&slug) {
        return cached(60, json!({"heartbeatList": {}, "uptimeList": {}}));
    }
    let (version, mode) = (state.version, state.mode);
    // `LIMIT 50` on 1.23.16, `LIMIT 100` from 2.0.0.
    let served = match version {
        KumaVersion::V1_23 => 50,
        KumaVersion::V2_0 | KumaVersion::V2_1 => MAX_BEATS,
    };
    let mut list = Map::new();
    let mut uptime = Map::new();
    // Only monitors in the page's public groups.
    for monitor in state.monitors.iter_mut().filter(|m| !m.group.is_empty()) {
        if monitor.state == MonitorState::Flapping || mode == HeartbeatMode::PerRequest {
            monitor.beat(now);
        }
        let skip = monitor.beats.len().saturating_sub(served);
        let beats: Vec<Value> = monitor
            .beats
            .iter()
            .skip(skip)
            .map(|b| {
                json!({"status": b.status, "time": beat_time(b.time_ms, version), "msg": "",
                       "ping": b.ping})
            })
            .collect();
        list.insert(monitor.id.to_string(), Value::Array(beats));
        if !monitor.beats.is_empty() {
            // An approximation of Kuma's 24 h figure: the share of stored beats that are up.
            let up = monitor.beats.iter().filter(|b| b.status == 1).count();
            let ratio = up as f64 / monitor.beats.len() as f64;
            uptime.insert(format!("{}_24", monitor.id), json!(ratio));
        }
    }
    cached(60, json!({"heartbeatList": list, "uptimeList": uptime}))
}

/// Zone-less UTC, with milliseconds on 1.23 and whole seconds on 2.x.
fn beat_time(ms: i64, version: KumaVersion) -> String {
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return String::new();
    };
    let seconds = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    match version {
        KumaVersion::V1_23 => format!("{seconds}.{:03}", t.millisecond()),
        KumaVersion::V2_0 | KumaVersion::V2_1 => seconds,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::error::ErrorCode;
    use crate::integrations::upstream::{Request as UpRequest, Upstream, UpstreamOptions};
    use crate::sim::harness::testing::assert_refused;

    const PAGE: &str = "GET /api/status-page/{slug}";
    const BEATS: &str = "GET /api/status-page/heartbeat/{slug}";

    async fn fetch(url: String) -> (u16, Value) {
        let (status, text) = crate::sim::harness::testing::fetch(UpRequest::get(url)).await;
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get_page(fake: &FakeUptimeKuma, slug: &str) -> (u16, Value) {
        fetch(format!("{}/api/status-page/{slug}", fake.url())).await
    }

    async fn get_beats(fake: &FakeUptimeKuma, slug: &str) -> (u16, Value) {
        fetch(format!("{}/api/status-page/heartbeat/{slug}", fake.url())).await
    }

    #[tokio::test]
    async fn serves_the_2x_shape() {
        let clock = Arc::new(ManualClock::new(1_746_122_280_123));
        let fake = FakeUptimeKuma::start_with_clock("home", KumaVersion::V2, clock)
            .await
            .unwrap();
        fake.add_monitor(1, "Plex");
        fake.set_incident(Some(("Down", "Upgrading")));
        let (status, page) = get_page(&fake, "home").await;
        assert_eq!(status, 200);
        assert_eq!(page["config"]["autoRefreshInterval"], 300);
        assert!(page["config"].get("googleAnalyticsId").is_none());
        assert!(page.get("incident").is_none());
        assert_eq!(page["incidents"][0]["title"], "Down");
        assert_eq!(page["publicGroupList"][0]["name"], DEFAULT_GROUP);
        assert_eq!(page["publicGroupList"][0]["monitorList"][0]["id"], 1);
        let (status, beats) = get_beats(&fake, "home").await;
        assert_eq!(status, 200);
        assert_eq!(
            beats["heartbeatList"]["1"],
            json!([{"status": 1, "time": "2025-05-01 17:58:00", "msg": "", "ping": UP_PING_MS}])
        );
        assert_eq!(beats["uptimeList"]["1_24"], 1.0);
    }

    #[tokio::test]
    async fn serves_the_1_23_shape() {
        let clock = Arc::new(ManualClock::new(1_746_122_280_123));
        let fake = FakeUptimeKuma::start_with_clock("home", KumaVersion::V1_23, clock)
            .await
            .unwrap();
        fake.add_monitor(1, "Plex");
        let (_, page) = get_page(&fake, "home").await;
        assert!(page["incident"].is_null());
        assert!(page.get("incidents").is_none());
        assert!(page["config"].get("googleAnalyticsId").is_some());
        assert!(page["config"].get("autoRefreshInterval").is_none());
        fake.set_incident(Some(("Down", "Upgrading")));
        assert_eq!(
            get_page(&fake, "home").await.1["incident"]["content"],
            "Upgrading"
        );
        let (_, beats) = get_beats(&fake, "home").await;
        assert_eq!(
            beats["heartbeatList"]["1"][0]["time"],
            "2025-05-01 17:58:00.123"
        );
    }

    /// 2.0.0 and 2.1.0 `status-page-router.js`: the slug is lowercased, an unknown one is 404
    /// on the page and 200 with empty maps on the heartbeats.
    #[tokio::test]
    async fn v2_an_unknown_slug_is_404_on_the_page_and_empty_on_the_heartbeats() {
        for version in [KumaVersion::V2_0, KumaVersion::V2_1] {
            let fake = FakeUptimeKuma::start("home", version).await.unwrap();
            fake.add_monitor(1, "Plex");
            assert_eq!(
                get_page(&fake, "other").await,
                (
                    404,
                    json!({"status": "fail", "msg": "Status Page Not Found"})
                )
            );
            assert_eq!(
                get_beats(&fake, "other").await,
                (200, json!({"heartbeatList": {}, "uptimeList": {}}))
            );
            assert_eq!(get_page(&fake, "HOME").await.0, 200, "lowercased");
            assert!(get_beats(&fake, "HoMe").await.1["heartbeatList"]["1"].is_array());
            assert_eq!(fake.requests(PAGE), 2);
            assert_eq!(fake.requests(BEATS), 2);
        }
    }

    /// 1.23.16 `status-page-router.js`: an unknown slug gets no answer at all on the page
    /// route (the handler returns `null` without responding), empty maps on the heartbeats;
    /// slugs are compared exactly as stored.
    #[tokio::test]
    async fn v1_23_never_answers_an_unknown_slug_and_matches_case() {
        let fake = FakeUptimeKuma::start("home", KumaVersion::V1_23)
            .await
            .unwrap();
        fake.add_monitor(1, "Plex");
        let patient = Upstream::new("Simulator", UpstreamOptions::with_timeout_ms(300));
        let e = patient
            .send(
                UpRequest::get(format!("{}/api/status-page/other", fake.url())),
                |r| Ok(r.status().as_u16()),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::UpstreamTimeout, "{e:?}");
        assert_eq!(
            get_beats(&fake, "other").await,
            (200, json!({"heartbeatList": {}, "uptimeList": {}}))
        );
        assert_eq!(
            get_beats(&fake, "HOME").await.1,
            json!({"heartbeatList": {}, "uptimeList": {}}),
            "case-sensitive"
        );
        fake.set_slug("Home");
        assert_eq!(fake.slug(), "Home");
        assert_eq!(get_page(&fake, "Home").await.0, 200);
        assert!(get_beats(&fake, "Home").await.1["heartbeatList"]["1"].is_array());
        // A server with a request left hanging still stops.
        let hanging = tokio::spawn({
            let url = format!("{}/api/status-page/home", fake.url());
            let gateway = Upstream::new("Simulator", UpstreamOptions::with_timeout_ms(5000));
            async move {
                gateway
                    .send(UpRequest::get(url), |r| Ok(r.status().as_u16()))
                    .await
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while fake.requests(PAGE) < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "the request never arrived"
            );
            tokio::task::yield_now().await;
        }
        let began = std::time::Instant::now();
        fake.shutdown().await;
        assert!(began.elapsed() < Duration::from_secs(1));
        // Whatever the client makes of the cut (a 503 or a broken connection), it is not left
        // waiting for its own timeout.
        let _ = hanging.await.unwrap();
        assert!(began.elapsed() < Duration::from_secs(2));
    }

    /// 2.1.0 `status-page-router.js` and `StatusPage.getIncidentHistory`: every incident,
    /// newest first, 10 a page with a `createdDate` cursor; before 2.1 the path is the web
    /// app's catch-all (`app.get("*")` in `server/server.js`), 200 with HTML.
    #[tokio::test]
    async fn v2_1_serves_the_incident_history_in_pages() {
        let clock = Arc::new(ManualClock::new(1_746_122_280_000));
        let fake = FakeUptimeKuma::start_with_clock("home", KumaVersion::V2_1, clock.clone())
            .await
            .unwrap();
        for n in 0..12 {
            fake.post_incident(&format!("I{n}"), "c");
            clock.advance(1000);
        }
        fake.unpin_incidents();
        let history = |query: &str| {
            fetch(format!(
                "{}/api/status-page/HOME/incident-history{query}",
                fake.url()
            ))
        };
        let (status, first) = history("").await;
        assert_eq!(status, 200);
        assert_eq!(first["ok"], true);
        assert_eq!(first["total"], 12);
        assert_eq!(first["hasMore"], true);
        assert_eq!(first["incidents"].as_array().unwrap().len(), 10);
        assert_eq!(first["incidents"][0]["title"], "I11");
        assert_eq!(first["incidents"][0]["active"], true);
        assert_eq!(first["incidents"][0]["pin"], false);
        let cursor = first["nextCursor"].as_str().unwrap().to_owned();
        assert_eq!(cursor, first["incidents"][9]["createdDate"]);
        let (_, second) = history(&format!("?cursor={}", cursor.replace(' ', "%20"))).await;
        let titles: Vec<&str> = second["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["title"].as_str().unwrap())
            .collect();
        assert_eq!(titles, ["I1", "I0"]);
        assert_eq!(
            (second["hasMore"].clone(), second["nextCursor"].clone()),
            (json!(false), Value::Null)
        );
        let (_, page) = get_page(&fake, "home").await;
        assert_eq!(page["incidents"], json!([]), "unpinned: off the page");
        assert_eq!(history_of(&fake, "nope").await.0, 404);

        fake.set_version(KumaVersion::V2_0);
        let (status, body) = history_of(&fake, "home").await;
        assert_eq!(status, 200);
        assert!(body.as_str().unwrap().starts_with("<!DOCTYPE html>"));
    }

    async fn get_metrics(fake: &FakeUptimeKuma, password: &str) -> (u16, String) {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("anyone:{password}"));
        crate::sim::harness::testing::fetch(
            UpRequest::get(format!("{}/metrics", fake.url()))
                .header("Authorization", format!("Basic {basic}")),
        )
        .await
    }

    /// `server/prometheus.js`: 1.23.16's labels, 2.0.0's `monitor_id` first, 2.1.0's tags
    /// first and its window families; `server/auth.js` + `server/rate-limiter.js`: the key as
    /// the Basic password, 60 checks a minute, a bare 401 otherwise.
    #[tokio::test]
    async fn metrics_have_each_versions_labels_behind_the_key_and_the_limit() {
        let clock = Arc::new(ManualClock::new(1_746_122_280_000));
        let fake = FakeUptimeKuma::start_with_clock("home", KumaVersion::V1_23, clock.clone())
            .await
            .unwrap();
        fake.add_monitor(1, "Plex");
        fake.add_private_monitor(2, "NAS");
        fake.set_tags(2, &[("Room", "cellar"), ("env", "prod")]);
        assert_eq!(
            get_metrics(&fake, "uk1_key").await.0,
            401,
            "no key in Kuma yet"
        );
        fake.set_api_key(Some("uk1_key"));
        let (status, text) = get_metrics(&fake, "uk1_key").await;
        assert_eq!(status, 200);
        assert!(text.contains(
            "monitor_status{monitor_name=\"NAS\",monitor_type=\"http\",monitor_url=\"http://nas.lan/\",monitor_hostname=\"null\",monitor_port=\"null\"} 1\n"
        ), "{text}");
        assert!(!text.contains("monitor_id"));
        fake.set_version(KumaVersion::V2_0);
        let text = get_metrics(&fake, "uk1_key").await.1;
        assert!(
            text.contains("monitor_status{monitor_id=\"2\",monitor_name=\"NAS\","),
            "{text}"
        );
        fake.set_version(KumaVersion::V2_1);
        let text = get_metrics(&fake, "uk1_key").await.1;
        assert!(
            text.contains("monitor_status{env=\"\",Room=\"\",monitor_id=\"1\","),
            "{text}"
        );
        assert!(
            text.contains("monitor_status{env=\"prod\",Room=\"cellar\",monitor_id=\"2\","),
            "{text}"
        );
        assert!(text.contains("window=\"30d\"} 1\n"), "{text}");
        assert_eq!(get_metrics(&fake, "uk1_wrong").await.0, 401);
        assert_eq!(get_metrics(&fake, "uk2_key").await.0, 401);

        // 5 checks so far this minute (the one before any key was the login limiter's); 55 more
        // pass, the next is refused until the minute ends.
        for _ in 0..55 {
            assert_eq!(get_metrics(&fake, "uk1_key").await.0, 200);
        }
        let (status, body) = get_metrics(&fake, "uk1_key").await;
        assert_eq!((status, body.as_str()), (401, ""));
        clock.advance(60_000);
        assert_eq!(get_metrics(&fake, "uk1_key").await.0, 200);
    }

    async fn history_of(fake: &FakeUptimeKuma, slug: &str) -> (u16, Value) {
        fetch(format!(
            "{}/api/status-page/{slug}/incident-history",
            fake.url()
        ))
        .await
    }

    #[tokio::test]
    async fn states_flapping_and_history() {
        let fake = FakeUptimeKuma::start("home", KumaVersion::V1_23)
            .await
            .unwrap();
        fake.add_monitor(1, "A");
        fake.add_monitor(2, "B");
        assert!(!fake.set_state(3, MonitorState::Down), "no such monitor");
        assert!(fake.set_state(1, MonitorState::Flapping));
        let statuses = |beats: &Value, id: &str| -> Vec<u64> {
            beats["heartbeatList"][id]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["status"].as_u64().unwrap())
                .collect()
        };
        get_page(&fake, "home").await;
        let (_, beats) = get_beats(&fake, "home").await;
        assert_eq!(statuses(&beats, "1"), vec![1, 0]);
        let (_, beats) = get_beats(&fake, "home").await;
        assert_eq!(statuses(&beats, "1"), vec![1, 0, 1]);
        assert_eq!(statuses(&beats, "2"), vec![1], "per set: steady");
        assert_eq!(beats["uptimeList"]["1_24"], 2.0 / 3.0);

        fake.set_state(2, MonitorState::Slow(900));
        fake.set_state(2, MonitorState::Pending);
        fake.set_state(2, MonitorState::Maintenance);
        fake.set_state(2, MonitorState::Down);
        let (_, beats) = get_beats(&fake, "home").await;
        assert_eq!(statuses(&beats, "2"), vec![1, 1, 2, 3, 0]);
        assert_eq!(beats["heartbeatList"]["2"][1]["ping"], 900);
        assert!(beats["heartbeatList"]["2"][4]["ping"].is_null());

        fake.set_heartbeat_mode(HeartbeatMode::PerRequest);
        for _ in 0..120 {
            get_beats(&fake, "home").await;
        }
        assert_eq!(fake.heartbeat_count(2), MAX_BEATS);
        let (_, beats) = get_beats(&fake, "home").await;
        assert_eq!(statuses(&beats, "2").len(), 50, "1.23 serves 50");
        fake.set_version(KumaVersion::V2);
        let (_, beats) = get_beats(&fake, "home").await;
        assert_eq!(statuses(&beats, "2").len(), MAX_BEATS);

        fake.clear_heartbeats(2);
        fake.set_heartbeat_mode(HeartbeatMode::PerSet);
        let (_, beats) = get_beats(&fake, "home").await;
        assert_eq!(beats["heartbeatList"]["2"], json!([]));
        assert!(beats["uptimeList"].get("2_24").is_none());
        assert!(fake.remove_monitor(2));
        let (_, page) = get_page(&fake, "home").await;
        assert_eq!(
            page["publicGroupList"][0]["monitorList"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn aimed_faults_hit_only_their_endpoint() {
        let fake = FakeUptimeKuma::start("home", KumaVersion::V2)
            .await
            .unwrap();
        fake.fail_next_on(Endpoint::Heartbeat, 1, Fault::Status(500));
        fake.fail_next(1, Fault::Garbage);
        assert_eq!(get_page(&fake, "home").await.0, 200, "garbage is 200");
        assert!(get_page(&fake, "home").await.1.is_object(), "no fault left");
        let (status, body) = get_beats(&fake, "home").await;
        assert_eq!(status, 500);
        assert_eq!(body["status"], "fail");
        assert_eq!(get_beats(&fake, "home").await.0, 200);
        fake.fail_next(
            1,
            Fault::Body {
                status: 200,
                body: r#"{"ok":false}"#.into(),
            },
        );
        assert_eq!(get_page(&fake, "home").await.1, json!({"ok": false}));
        fake.fail_next(1, Fault::Hang(Duration::from_millis(100)));
        let began = std::time::Instant::now();
        get_page(&fake, "home").await;
        assert!(began.elapsed() >= Duration::from_millis(100));
        assert_eq!(fake.requests(PAGE), 4);
        assert_eq!(fake.total_requests(), 6);
    }

    #[tokio::test]
    async fn a_stopped_fake_refuses_connections() {
        let fake = FakeUptimeKuma::start("home", KumaVersion::V2)
            .await
            .unwrap();
        let url = format!("{}/api/status-page/home", fake.url());
        fake.shutdown().await;
        assert_refused(url).await;
    }
}
