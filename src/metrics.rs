//! `GET /metrics`: the Prometheus text of SPEC section 10, gathered from the monitor, the database
//! pool, the caches and the service and download tables. Protected by `metrics.token` when set.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::{AppError, AppResult, ErrorCode};
use crate::monitor::{MetricFamily, MetricKind, process_rss_bytes, write_gauge};
use crate::routes::{Access, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::new().add(Method::GET, "/metrics", Access::Secret, metrics)
}

/// True when the request carries the configured bearer token (or none is configured).
fn authorized(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(token) = &state.config().metrics.token else {
        return true;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    given.as_bytes().ct_eq(token.expose().as_bytes()).into()
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> AppResult<Response> {
    if !authorized(&state, &headers) {
        return Err(AppError::new(ErrorCode::Unauthorized));
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
