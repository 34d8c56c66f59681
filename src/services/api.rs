//! The status API: `GET /services`, `GET /services/{name}`, `GET /services/{name}/history`.
//!
//! The list is one snapshot shared by every user, cached for 30 s as the finished envelope bytes
//! (a cached answer costs a copy of an `Arc`), refreshed after every check cycle, and served with
//! `X-Cache: HIT|MISS`. `?refresh=true` runs the checks now: at once for admins, at most once per
//! 10 s (for everyone together) for other users.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::store::{self, CheckResult, Health, StatusRow};
use crate::auth::CurrentUser;
use crate::cache::TtlCache;
use crate::clock::SharedClock;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::integrations::breaker::BreakerState;
use crate::response::ApiResponse;
use crate::service_config::ServiceName;
use crate::state::AppState;
use crate::time::rfc3339;

/// How long the list is cached.
pub const CACHE_TTL: Duration = Duration::from_secs(30);
/// How often a non-admin may trigger a refresh (for everyone together).
pub const USER_REFRESH_MS: i64 = 10_000;
/// How long the 7- and 30-day uptimes are kept (they move slowly and cost the most to compute).
const LONG_UPTIME_TTL: Duration = Duration::from_secs(600);

/// `ServiceStatus` of SPEC section 6.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    pub name: String,
    pub display_name: String,
    pub status: Health,
    pub response_time_ms: Option<i64>,
    pub message: Option<String>,
    pub last_check_at: Option<String>,
    pub last_change_at: Option<String>,
    pub uptime24h: Option<f64>,
    pub uptime7d: Option<f64>,
    pub uptime30d: Option<f64>,
    pub url: Option<String>,
    pub breaker: BreakerState,
    pub stale: bool,
}

/// The cached list: the rows and the finished response body.
#[derive(Debug)]
pub struct Snapshot {
    pub list: Vec<ServiceStatus>,
    pub body: Bytes,
    /// Just the list (`data`).
    pub list_json: Bytes,
}

/// The status caches kept in the state.
pub struct StatusCache {
    snapshot: TtlCache<(), Arc<Snapshot>>,
    long_uptime: TtlCache<String, (Option<f64>, Option<f64>)>,
    last_user_refresh: std::sync::Mutex<i64>,
}

impl std::fmt::Debug for StatusCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusCache").finish_non_exhaustive()
    }
}

impl StatusCache {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            snapshot: TtlCache::new("service_status", 4, clock.clone()),
            long_uptime: TtlCache::new("service_uptime", 1024, clock),
            last_user_refresh: std::sync::Mutex::new(i64::MIN / 2),
        }
    }

    /// Cache statistics.
    pub fn stats(&self) -> crate::cache::CacheStats {
        self.snapshot.stats()
    }

    /// Forgets the list (after settings change).
    pub fn invalidate(&self) {
        self.snapshot.clear();
    }
}

/// Builds the list from the database, the clients (URL, breaker) and the clock.
async fn load(state: &AppState) -> AppResult<Arc<Snapshot>> {
    let mut rows = state.db().run(|conn| store::all(conn)).await?;
    let now = state.clock().now_ms();
    let clients = super::clients(state).await?;
    let interval_ms = state.config().health.interval_secs as i64 * 1000;
    // Before its first check a service has no row, but it is no less known: `unknown`.
    for name in ServiceName::ALL {
        if !rows.iter().any(|r| r.name == name.as_str()) {
            rows.push(not_checked(name, &clients));
        }
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    let mut list = Vec::with_capacity(rows.len());
    for row in rows {
        let owner = owner_of(&row.name);
        let (uptime7d, uptime30d) = match row.last_check_at {
            Some(_) => long_uptimes(state, &row.name, now).await?,
            // Never checked: no samples (and nothing to cache).
            None => (None, None),
        };
        let url = owner
            .and_then(|o| clients.config(o))
            .and_then(|c| c.url.as_deref())
            .and_then(public_url);
        let breaker = owner
            .and_then(|o| {
                clients
                    .breakers()
                    .into_iter()
                    .find(|(n, _)| *n == o)
                    .map(|(_, b)| b.state)
            })
            .unwrap_or(BreakerState::Closed);
        list.push(view(
            row,
            now,
            interval_ms,
            uptime7d,
            uptime30d,
            url,
            breaker,
        ));
    }
    let list_json = serde_json::to_vec(&list)
        .map_err(|e| AppError::internal(format!("serialize services: {e}")))?;
    let mut body = Vec::with_capacity(list_json.len() + 32);
    body.extend_from_slice(b"{\"success\":true,\"data\":");
    body.extend_from_slice(&list_json);
    body.push(b'}');
    Ok(Arc::new(Snapshot {
        list,
        body: Bytes::from(body),
        list_json: Bytes::from(list_json),
    }))
}

/// The service list as a JSON array (from the cache), for the dashboard.
pub async fn list_json(state: &AppState) -> AppResult<Bytes> {
    Ok(snapshot(state).await?.0.list_json.clone())
}

/// The row of a service not checked yet: `unknown`, or `disabled` when it will not be checked.
fn not_checked(name: ServiceName, clients: &super::clients::ServiceClients) -> StatusRow {
    let result = if clients.config(name).is_some_and(|c| c.is_usable()) {
        CheckResult {
            name: name.as_str().into(),
            display_name: name.display_name().into(),
            health: Health::Unknown,
            response_time_ms: None,
            message: Some("Not checked yet.".into()),
        }
    } else {
        super::manager::disabled(name, clients)
    };
    StatusRow {
        name: result.name,
        display_name: result.display_name,
        health: result.health,
        response_time_ms: None,
        message: result.message,
        last_check_at: None,
        last_change_at: None,
        uptime_24h: None,
    }
}

fn view(
    row: StatusRow,
    now: i64,
    interval_ms: i64,
    uptime7d: Option<f64>,
    uptime30d: Option<f64>,
    url: Option<String>,
    breaker: BreakerState,
) -> ServiceStatus {
    // Two missed cycles: whatever we show is old news. (Never checked is no news.)
    let stale = !matches!(row.health, Health::Disabled)
        && row.last_check_at.is_some_and(|t| now - t > 2 * interval_ms);
    ServiceStatus {
        name: row.name,
        display_name: row.display_name,
        status: row.health,
        response_time_ms: row.response_time_ms,
        message: row.message,
        last_check_at: row.last_check_at.map(rfc3339),
        last_change_at: row.last_change_at.map(rfc3339),
        uptime24h: row.uptime_24h,
        uptime7d,
        uptime30d,
        url,
        breaker,
        stale,
    }
}

/// A service URL as every user may see it: no user name or password, no query, no fragment (a
/// key may sit in either). `None` when it does not parse. Admin settings show the URL as stored.
pub fn public_url(url: &str) -> Option<String> {
    let mut parsed = url::Url::parse(url).ok()?;
    parsed.set_username("").ok()?;
    parsed.set_password(None).ok()?;
    parsed.set_query(None);
    parsed.set_fragment(None);
    let text = parsed.to_string();
    Some(match text.strip_suffix('/') {
        Some(base) if parsed.path() == "/" => base.to_owned(),
        _ => text,
    })
}

/// The service whose client serves a status row (`kuma:<id>` rows belong to Uptime Kuma).
fn owner_of(name: &str) -> Option<ServiceName> {
    if name.starts_with("kuma:") {
        Some(ServiceName::UptimeKuma)
    } else {
        ServiceName::parse(name)
    }
}

async fn long_uptimes(
    state: &AppState,
    name: &str,
    now: i64,
) -> AppResult<(Option<f64>, Option<f64>)> {
    let db = state.db().clone();
    let key = name.to_owned();
    let name = name.to_owned();
    Ok(state
        .status_cache()
        .long_uptime
        .get_or_load(key, LONG_UPTIME_TTL, move || async move {
            db.run(move |conn| {
                let day = 24 * 3600 * 1000;
                Ok((
                    store::uptime(conn, &name, now - 7 * day)?,
                    store::uptime(conn, &name, now - 30 * day)?,
                ))
            })
            .await
        })
        .await?
        .value)
}

/// The cached list (and whether it came from the cache).
async fn snapshot(state: &AppState) -> AppResult<(Arc<Snapshot>, bool)> {
    let loader_state = state.clone();
    let found = state
        .status_cache()
        .snapshot
        .get_or_load(
            (),
            CACHE_TTL,
            move || async move { load(&loader_state).await },
        )
        .await?;
    Ok((found.value.clone(), found.is_hit()))
}

/// Called by the manager after each stored cycle: fresh list in the cache, events out.
pub async fn after_cycle(state: &AppState, results: &[CheckResult]) {
    state.status_cache().snapshot.clear();
    match snapshot(state).await {
        Ok((snap, _)) => {
            for status in snap
                .list
                .iter()
                .filter(|s| results.iter().any(|r| r.name == s.name))
            {
                state.events().publish(crate::events::Event::new(
                    crate::events::kind::SERVICE_STATUS,
                    crate::events::Audience::Everyone,
                    status,
                ));
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not rebuild the service status list"),
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    refresh: Option<String>,
}

/// Runs the checks now when asked and allowed.
async fn maybe_refresh(state: &AppState, user: &CurrentUser, query: &ListQuery) -> AppResult<bool> {
    let wanted = matches!(query.refresh.as_deref(), Some("true" | "1"));
    if !wanted {
        return Ok(false);
    }
    if !user.is_admin() {
        let now = state.clock().now_ms();
        let mut last = state
            .status_cache()
            .last_user_refresh
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if now - *last < USER_REFRESH_MS {
            return Ok(false);
        }
        *last = now;
    }
    super::manager::run_cycle(state).await?;
    Ok(true)
}

fn with_cache_header(mut response: Response, hit: bool) -> Response {
    response.headers_mut().insert(
        "x-cache",
        HeaderValue::from_static(if hit { "HIT" } else { "MISS" }),
    );
    response
}

/// `GET /services`.
pub async fn list_services(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<ListQuery>,
) -> AppResult<Response> {
    let refreshed = maybe_refresh(&state, &user, &query).await?;
    let (snap, hit) = snapshot(&state).await?;
    let response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        snap.body.clone(),
    )
        .into_response();
    Ok(with_cache_header(response, hit && !refreshed))
}

/// `GET /services/{name}`.
pub async fn get_service(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(name): Path<String>,
    Query(query): Query<ListQuery>,
) -> AppResult<Response> {
    let refreshed = maybe_refresh(&state, &user, &query).await?;
    let (snap, hit) = snapshot(&state).await?;
    let status = snap
        .list
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| AppError::new(ErrorCode::NotFound))?;
    Ok(with_cache_header(
        ApiResponse::ok(status).into_response(),
        hit && !refreshed,
    ))
}

#[derive(Debug, Deserialize, Default)]
pub struct HistoryQuery {
    window: Option<String>,
}

#[derive(Debug, Serialize)]
struct History {
    buckets: Vec<store::Bucket>,
}

/// `GET /services/{name}/history?window=24h|7d|30d`: at most 96 buckets.
pub async fn service_history(
    State(state): State<AppState>,
    _user: CurrentUser,
    Path(name): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> AppResult<Response> {
    let hour = 3600 * 1000;
    let (span, count) = match query.window.as_deref().unwrap_or("24h") {
        "24h" => (24 * hour, 96),
        "7d" => (7 * 24 * hour, 84),
        "30d" => (30 * 24 * hour, 90),
        _ => {
            return Err(AppError::validation([("window", "must be 24h, 7d or 30d")]));
        }
    };
    let (snap, _) = snapshot(&state).await?;
    if !snap.list.iter().any(|s| s.name == name) {
        return Err(AppError::new(ErrorCode::NotFound));
    }
    let now = state.clock().now_ms();
    let buckets = state
        .db()
        .run(move |conn| store::history(conn, &name, now - span, now, count))
        .await?;
    Ok(ApiResponse::ok(&History { buckets }).into_response())
}
