//! `GET /metrics`: the Prometheus text of SPEC section 10, gathered from the monitor, the database
//! pool, the caches and the service and download tables. Protected by `metrics.token` when set;
//! without a token it is open only on a loopback listen address, and wants an admin session
//! otherwise (see [`MetricsAccess`]).

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::auth::AdminUser;
use crate::config::Config;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::monitor::{MetricFamily, MetricKind, process_rss_bytes, write_gauge};
use crate::routes::{Access, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::new().add(Method::GET, "/metrics", Access::Secret, metrics)
}

/// Who may read `/metrics`, as the configuration decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsAccess {
    /// `metrics.token` is set: `Authorization: Bearer <token>`.
    Token,
    /// No token and a non-loopback listen address: the text (routes, request counts, service
    /// names) is not for the network, so only a signed-in admin may read it.
    AdminSession,
    /// No token and a loopback listen address: only this machine can connect. A request a
    /// reverse proxy forwarded comes from the network all the same and wants an admin session:
    /// one that carries `X-Forwarded-For` or `Forwarded`, or whose socket peer is one of
    /// `server.trusted_proxies` (nginx's plain `proxy_pass` adds no header at all).
    Open,
}

impl MetricsAccess {
    /// The rule for `config`.
    pub fn of(config: &Config) -> Self {
        if config.metrics.token.is_some() {
            Self::Token
        } else if config.server.listen.ip().is_loopback() {
            Self::Open
        } else {
            Self::AdminSession
        }
    }

    /// Logs the rule at start, so an operator scraping without a token learns why it fails.
    pub fn log_at_start(config: &Config) {
        match Self::of(config) {
            Self::Token => tracing::info!("/metrics wants the metrics.token bearer token"),
            Self::AdminSession => tracing::warn!(
                listen = %config.server.listen,
                "/metrics is not on a loopback address and metrics.token is not set: only an \
                 admin session may read it; set metrics.token for a Prometheus scraper"
            ),
            Self::Open => tracing::info!(
                "/metrics is open to this machine (loopback listen address, no metrics.token); \
                 requests forwarded by a proxy (carrying X-Forwarded-For or Forwarded, or from a \
                 server.trusted_proxies address) need an admin session"
            ),
        }
    }
}

/// True when the request carries the configured bearer token.
fn token_matches(token: &str, headers: &HeaderMap) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            // The scheme is case-insensitive (RFC 9110), as for session tokens.
            let (scheme, rest) = v.split_at_checked(7)?;
            scheme.eq_ignore_ascii_case("bearer ").then_some(rest)
        })
        .unwrap_or("");
    given.as_bytes().ct_eq(token.as_bytes()).into()
}

/// Whether a proxy forwarded the request: it says so (Caddy and Traefik, and nginx when told to,
/// add one of these headers), or it came from a configured proxy, which may add nothing.
fn forwarded(state: &AppState, parts: &Parts) -> bool {
    let headers = &parts.headers;
    headers.contains_key("x-forwarded-for")
        || headers.contains_key(header::FORWARDED)
        || parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .is_some_and(|peer| {
                state
                    .config()
                    .server
                    .trusted_proxies
                    .contains(peer.0.ip().to_canonical())
            })
}

async fn metrics(State(state): State<AppState>, mut parts: Parts) -> AppResult<Response> {
    match (
        MetricsAccess::of(state.config()),
        &state.config().metrics.token,
    ) {
        (MetricsAccess::Token, Some(token)) => {
            if !token_matches(token.expose(), &parts.headers) {
                return Err(AppError::new(ErrorCode::Unauthorized));
            }
        }
        (MetricsAccess::Open, _) if !forwarded(&state, &parts) => {}
        // Only asked here, so a token scrape never looks a session up.
        _ => {
            AdminUser::from_request_parts(&mut parts, &state).await?;
        }
    }
    let (services, downloads) = state
        .db()
        .run(|conn| {
            let mut services = Vec::new();
            let mut stmt = conn.prepare_cached(
                "SELECT service_name, status, response_time_ms FROM service_status ORDER BY service_name",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                services.push((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                ));
            }
            let mut downloads = Vec::new();
            let mut stmt = conn.prepare_cached(
                "SELECT status, count(*) FROM youtube_downloads GROUP BY status ORDER BY status",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                downloads.push((r.get::<_, String>(0)?, r.get::<_, i64>(1)?));
            }
            Ok((services, downloads))
        })
        .await?;

    let mut out = String::with_capacity(8 * 1024);
    state.monitor().write_prometheus(&mut out);

    let mut up = MetricFamily::new(
        &mut out,
        "medianest_service_up",
        "1 when the service's last check passed (up or degraded).",
        MetricKind::Gauge,
    );
    for (name, status, _) in &services {
        let value = if matches!(status.as_str(), "up" | "degraded") {
            1.0
        } else {
            0.0
        };
        up.sample(&[("service", name)], value);
    }
    let mut rt = MetricFamily::new(
        &mut out,
        "medianest_service_response_time_seconds",
        "Response time of the service's last check.",
        MetricKind::Gauge,
    );
    for (name, _, ms) in &services {
        if let Some(ms) = ms {
            rt.sample(&[("service", name)], *ms as f64 / 1000.0);
        }
    }

    let mut cache = MetricFamily::new(
        &mut out,
        "medianest_cache_requests_total",
        "Cache lookups by cache and result.",
        MetricKind::Counter,
    );
    for s in state.cache_stats() {
        cache.sample(&[("cache", s.name), ("result", "hit")], s.hits as f64);
        cache.sample(&[("cache", s.name), ("result", "miss")], s.misses as f64);
    }

    let pool = state.db().stats();
    let mut conns = MetricFamily::new(
        &mut out,
        "medianest_db_pool_connections",
        "SQLite pool connections by state.",
        MetricKind::Gauge,
    );
    conns.sample(&[("state", "idle")], f64::from(pool.idle));
    conns.sample(
        &[("state", "active")],
        f64::from(pool.connections.saturating_sub(pool.idle)),
    );
    conns.sample(&[("state", "max")], f64::from(pool.pool_size));

    let mut dl = MetricFamily::new(
        &mut out,
        "medianest_downloads",
        "YouTube downloads by status.",
        MetricKind::Gauge,
    );
    for status in ["queued", "downloading", "completed", "failed", "cancelled"] {
        let n = downloads
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n);
        dl.sample(&[("status", status)], n as f64);
    }

    let mut unlogged = MetricFamily::new(
        &mut out,
        "medianest_unlogged_errors_total",
        "Anonymous 5xx (not set up, upstream faults) counted instead of stored in the error log.",
        MetricKind::Counter,
    );
    for (code, n) in state.unlogged_errors().snapshot() {
        unlogged.sample(&[("code", code)], n as f64);
    }

    if let Some(rss) = process_rss_bytes() {
        write_gauge(
            &mut out,
            "medianest_process_resident_memory_bytes",
            "Resident memory of the MediaNest process.",
            &[],
            rss as f64,
        );
    }
    write_gauge(
        &mut out,
        "medianest_build_info",
        "Build information.",
        &[("version", crate::VERSION)],
        1.0,
    );

    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        out,
    )
        .into_response())
}
