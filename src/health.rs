//! Health endpoints: `GET /health` (liveness, no database), `GET /health/ready` (the database
//! answers and is migrated; 503 naming the failing check otherwise) and `GET /api/v1/health` (the
//! summary the dashboard and monitoring tools read).
//!
//! The database probe is shared: its result is kept for [`PROBE_TTL`] and concurrent callers wait
//! for one probe, so a monitoring tool hammering `/api/v1/health` costs the database next to
//! nothing.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::cache::TtlCache;
use crate::clock::SharedClock;
use crate::db::Db;
use crate::response::{ApiResponse, plain_json};
use crate::routes::{Access, Routes};
use crate::state::AppState;

/// How long one database probe answers for.
pub const PROBE_TTL: Duration = Duration::from_secs(1);

/// Longest a probe may take before the database counts as down.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the database probe found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DbCheck {
    pub status: &'static str,
    pub latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Services by status, from `service_status`.
    #[serde(skip)]
    pub services: ServiceCounts,
}

/// Services by status.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ServiceCounts {
    pub up: u32,
    pub down: u32,
    pub degraded: u32,
}

/// The shared, briefly cached database probe.
pub struct HealthProbe {
    cache: TtlCache<(), DbCheck>,
}

impl HealthProbe {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            cache: TtlCache::new("health", 1, clock),
        }
    }

    /// Hit and miss counts of the probe cache.
    pub fn cache_stats(&self) -> crate::cache::CacheStats {
        self.cache.stats()
    }

    /// The latest probe, running one when the last is older than [`PROBE_TTL`].
    pub async fn database(&self, db: &Db) -> DbCheck {
        let db = db.clone();
        let lookup = self
            .cache
            .get_or_load((), PROBE_TTL, move || async move {
                Ok::<_, std::convert::Infallible>(probe(&db).await)
            })
            .await;
        match lookup {
            Ok(found) => found.value,
            Err(never) => match never {},
        }
    }
}

async fn probe(db: &Db) -> DbCheck {
    let started = Instant::now();
    let work = db.run(|conn| {
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let mut counts = ServiceCounts::default();
        let mut stmt =
            conn.prepare_cached("SELECT status, count(*) FROM service_status GROUP BY status")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let n: u32 = row.get(1)?;
            match row.get_ref(0)?.as_str().unwrap_or("") {
                "up" => counts.up = n,
                "down" => counts.down = n,
                "degraded" => counts.degraded = n,
                _ => {}
            }
        }
        Ok((version, counts))
    });
    let outcome = tokio::time::timeout(PROBE_TIMEOUT, work).await;
    let latency_ms = (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    let latest = crate::db::migrations::latest_version();
    match outcome {
        Ok(Ok((version, services))) if version >= latest => DbCheck {
            status: "ok",
            latency_ms,
            schema_version: Some(version),
            message: None,
            services,
        },
        Ok(Ok((version, _))) => DbCheck {
            status: "error",
            latency_ms,
            schema_version: Some(version),
            message: Some(format!("schema version {version}, want {latest}")),
            services: ServiceCounts::default(),
        },
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "database health probe failed");
            DbCheck {
                status: "error",
                latency_ms,
                schema_version: None,
                message: Some("the database cannot be read".into()),
                services: ServiceCounts::default(),
            }
        }
        Err(_) => DbCheck {
            status: "error",
            latency_ms,
            schema_version: None,
            message: Some(format!(
                "the database did not answer within {} s",
                PROBE_TIMEOUT.as_secs()
            )),
            services: ServiceCounts::default(),
        },
    }
}

/// Routes outside `/api/v1`.
pub fn routes() -> Routes {
    Routes::new()
        .add(Method::GET, "/health", Access::Public, liveness)
        .add(Method::GET, "/health/ready", Access::Public, readiness)
}

/// Routes under `/api/v1`.
pub fn api_routes() -> Routes {
    Routes::new().add(Method::GET, "/health", Access::Public, api_health)
}

async fn liveness() -> Response {
    plain_json(StatusCode::OK, &serde_json::json!({ "status": "ok" }))
}

async fn readiness(State(state): State<AppState>) -> Response {
    let db = state.health_probe().database(state.db()).await;
    let ok = db.status == "ok";
    let body = serde_json::json!({
        "status": if ok { "ready" } else { "unavailable" },
        "checks": { "database": db },
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    plain_json(status, &body)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiHealth<'a> {
    status: &'static str,
    version: &'static str,
    uptime_seconds: u64,
    database: &'a DbCheck,
    services: ServiceCounts,
}

async fn api_health(State(state): State<AppState>) -> Response {
    let db = state.health_probe().database(state.db()).await;
    let status = if db.status != "ok" {
        "error"
    } else if db.services.down > 0 || db.services.degraded > 0 {
        "degraded"
    } else {
        "ok"
    };
    ApiResponse::ok(&ApiHealth {
        status,
        version: crate::VERSION,
        uptime_seconds: state.uptime().as_secs(),
        database: &db,
        services: db.services,
    })
    .into_response()
}
