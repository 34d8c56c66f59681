//! The health-check manager (SPEC section 8): a background task that checks every enabled
//! service concurrently each `health.interval_secs` — Plex `GET /identity`, Overseerr
//! `GET /api/v1/status`, the Uptime Kuma status page, whose monitors become `kuma:<id>`
//! services — writes the cycle in one transaction, tells admins about outages (after two failed
//! checks in a row, so a blip pages no one) and recoveries, and publishes `service.status`
//! events.
//!
//! A cycle never outlasts its budget: each check is bounded by its client's timeout and the
//! cycle as a whole by [`clients::cycle_budget`]. Cycles never overlap: a refresh waits for a
//! running cycle, then runs its own unless a cycle started after it asked (so many refreshes
//! at once make at most two cycles).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::clients::{self, ServiceClients};
use super::store::{self, CheckResult, Health};
use crate::error::{AppError, AppResult};
use crate::integrations::uptime_kuma::{KumaStatus, MetricsOutcome, SlugError};
use crate::service_config::ServiceName;
use crate::state::AppState;

/// Failed checks in a row before admins hear about an outage.
pub const NOTIFY_AFTER_FAILURES: u32 = 2;

/// Connection tests (`POST /admin/services/{name}/test`) in flight at once, as many as one
/// upstream allows.
pub const MAX_TESTS_IN_FLIGHT: usize = crate::integrations::upstream::DEFAULT_MAX_IN_FLIGHT;

/// The manager's memory between cycles.
#[derive(Debug)]
pub struct HealthManager {
    /// Serialises cycles (the loop and refreshes).
    cycle: tokio::sync::Mutex<()>,
    /// Cycles started so far; each cycle's number is this count when it starts.
    started: AtomicU64,
    /// The number of the last cycle whose results were stored.
    stored: AtomicU64,
    /// When the last cycle finished (Unix ms), for the refresh rate limit.
    last_cycle_at: Mutex<Option<i64>>,
    /// Failed checks in a row per service, and whether admins were told it is down.
    failures: Mutex<HashMap<String, (u32, bool)>>,
    /// Gates the admin's connection tests, which bypass the live clients' limits.
    tests: Arc<Semaphore>,
}

impl Default for HealthManager {
    fn default() -> Self {
        Self {
            cycle: tokio::sync::Mutex::default(),
            started: AtomicU64::default(),
            stored: AtomicU64::default(),
            last_cycle_at: Mutex::default(),
            failures: Mutex::default(),
            tests: Arc::new(Semaphore::new(MAX_TESTS_IN_FLIGHT)),
        }
    }
}

impl HealthManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// The gate of the admin's connection tests.
    pub fn test_gate(&self) -> &Arc<Semaphore> {
        &self.tests
    }

    /// When the last cycle finished.
    pub fn last_cycle_at(&self) -> Option<i64> {
        *self.last_cycle_at.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The loop: a first cycle at once, then one per interval, until shutdown.
pub async fn run(state: AppState) {
    let token = state.shutdown_token().clone();
    let interval = Duration::from_secs(state.config().health.interval_secs);
    let mut ticker = tokio::time::interval(interval);
    // A cycle that ran long delays the next one rather than causing a burst.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if let Err(e) = run_cycle(&state).await {
            tracing::warn!(error = %e, "health check cycle failed");
        }
    }
}

/// Runs one cycle now (or waits for the one running) and returns when its results are stored.
pub async fn run_cycle(state: &AppState) -> AppResult<()> {
    let manager = state.health_manager();
    let asked_after = manager.started.load(Ordering::SeqCst);
    let _turn = manager.cycle.lock().await;
    // A cycle that started after we asked has stored its results while we waited: they are as
    // fresh as ours would be. (One that was already running when we asked is not: it may have
    // used the clients from before a settings change.)
    if manager.stored.load(Ordering::SeqCst) > asked_after {
        return Ok(());
    }
    let number = manager.started.fetch_add(1, Ordering::SeqCst) + 1;
    let clients = super::clients(state).await?;
    let budget = clients::cycle_budget(&clients);
    let results = match tokio::time::timeout(budget, check_all(state, &clients)).await {
        Ok(results) => results,
        Err(_) => {
            tracing::warn!(
                budget_ms = budget.as_millis() as u64,
                "health checks overran their budget"
            );
            return Err(AppError::internal("health checks overran their budget"));
        }
    };
    let now = state.clock().now_ms();
    let notify = failures_to_report(manager, &results);
    let kuma_checked = results
        .iter()
        .any(|r| r.name == ServiceName::UptimeKuma.as_str() && r.health.is_available())
        || clients.kuma.is_none();
    let to_store = results.clone();
    let created = state
        .db()
        .write(move |tx| {
            // Monitors no longer on the page go, but only when the page was actually read.
            let retire = if kuma_checked { Some("kuma:") } else { None };
            let transitions = store::record_cycle(tx, &to_store, now, retire)?;
            let mut created = Vec::new();
            for (result, down) in &notify {
                let (title, message) = if *down {
                    (
                        format!("{} is down", result.display_name),
                        format!(
                            "{} failed {NOTIFY_AFTER_FAILURES} checks in a row: {}",
                            result.display_name,
                            result.message.as_deref().unwrap_or("no answer")
                        ),
                    )
                } else {
                    (
                        format!("{} is back", result.display_name),
                        format!("{} answers again.", result.display_name),
                    )
                };
                let kind = if *down { "service.down" } else { "service.up" };
                let metadata = serde_json::json!({ "service": result.name });
                created.extend(crate::notifications::create_for_admins(
                    tx,
                    kind,
                    &title,
                    &message,
                    Some(metadata),
                    now,
                )?);
            }
            Ok((transitions, created))
        })
        .await;
    let (transitions, created) = created?;
    *manager
        .last_cycle_at
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some(now);
    manager.stored.store(number, Ordering::SeqCst);
    for t in &transitions {
        tracing::info!(service = %t.name, from = t.from.as_str(), to = t.to.as_str(), "service status changed");
    }
    crate::notifications::publish_all_created(state.events(), &created);
    super::api::after_cycle(state, &results).await;
    Ok(())
}

/// Updates the failure counts and returns the services whose outage (true) or recovery (false)
/// admins must hear about now.
fn failures_to_report(
    manager: &HealthManager,
    results: &[CheckResult],
) -> Vec<(CheckResult, bool)> {
    let mut failures = manager.failures.lock().unwrap_or_else(|e| e.into_inner());
    let mut report = Vec::new();
    for result in results {
        let entry = failures.entry(result.name.clone()).or_insert((0, false));
        match result.health {
            Health::Down => {
                entry.0 = entry.0.saturating_add(1);
                if entry.0 >= NOTIFY_AFTER_FAILURES && !entry.1 {
                    entry.1 = true;
                    report.push((result.clone(), true));
                }
            }
            Health::Up | Health::Degraded => {
                if entry.1 {
                    report.push((result.clone(), false));
                }
                *entry = (0, false);
            }
            Health::Disabled | Health::Unknown => *entry = (0, false),
        }
    }
    report
}

/// Checks every service concurrently.
async fn check_all(state: &AppState, clients: &ServiceClients) -> Vec<CheckResult> {
    let degraded_ms = state.config().health.degraded_ms as i64;
    let plex = check_plex(clients, degraded_ms);
    let overseerr = check_overseerr(clients, degraded_ms);
    let kuma = check_kuma(clients, degraded_ms);
    let (plex, overseerr, mut kuma) = tokio::join!(plex, overseerr, kuma);
    let mut results = vec![plex, overseerr];
    results.append(&mut kuma);
    results
}

/// The result for a service that is not checked (disabled, or not set up).
pub(crate) fn disabled(name: ServiceName, clients: &ServiceClients) -> CheckResult {
    let configured = clients
        .config(name)
        .is_some_and(|c| c.url.as_deref().is_some_and(|u| !u.is_empty()));
    CheckResult {
        name: name.as_str().into(),
        display_name: name.display_name().into(),
        health: Health::Disabled,
        response_time_ms: None,
        message: Some(if configured {
            "Disabled by an admin.".into()
        } else {
            "Not set up.".into()
        }),
    }
}

/// Turns a timed call's outcome into a check result.
fn judge<T>(
    name: ServiceName,
    started: Instant,
    outcome: &AppResult<T>,
    degraded_ms: i64,
    describe: impl FnOnce(&T) -> Option<String>,
) -> CheckResult {
    let elapsed = started.elapsed().as_millis() as i64;
    let (health, message, response_time_ms) = match outcome {
        Ok(value) => {
            let health = if elapsed > degraded_ms {
                Health::Degraded
            } else {
                Health::Up
            };
            let mut message = describe(value);
            if health == Health::Degraded {
                message = Some(format!("Slow: answered in {elapsed} ms."));
            }
            (health, message, Some(elapsed))
        }
        Err(e) => (Health::Down, Some(e.report().message), None),
    };
    CheckResult {
        name: name.as_str().into(),
        display_name: name.display_name().into(),
        health,
        response_time_ms,
        message,
    }
}

async fn check_plex(clients: &ServiceClients, degraded_ms: i64) -> CheckResult {
    let Some(plex) = &clients.plex else {
        return disabled(ServiceName::Plex, clients);
    };
    let started = Instant::now();
    let outcome = plex.identity().await;
    judge(ServiceName::Plex, started, &outcome, degraded_ms, |id| {
        Some(format!("Plex Media Server {}", id.version))
    })
}

async fn check_overseerr(clients: &ServiceClients, degraded_ms: i64) -> CheckResult {
    let Some(overseerr) = &clients.overseerr else {
        return disabled(ServiceName::Overseerr, clients);
    };
    let started = Instant::now();
    let outcome = overseerr.status().await;
    // Timed without the flavour question below (asked once per client).
    let mut result = judge(
        ServiceName::Overseerr,
        started,
        &outcome,
        degraded_ms,
        |_| None,
    );
    let flavor = match &outcome {
        Ok(_) => overseerr.flavor().await.ok(),
        Err(_) => overseerr.known_flavor(),
    };
    // The card names what answers: Seerr or Overseerr (the generic name until it is known).
    let product = flavor.map_or(ServiceName::Overseerr.display_name(), |f| f.name());
    if let (Ok(status), Health::Up) = (&outcome, result.health) {
        result.message = Some(format!("{product} {}", status.version));
    }
    result.display_name = product.into();
    result
}

/// Uptime Kuma itself, plus one result per monitor on its status page.
async fn check_kuma(clients: &ServiceClients, degraded_ms: i64) -> Vec<CheckResult> {
    let Some(kuma) = &clients.kuma else {
        return vec![disabled(ServiceName::UptimeKuma, clients)];
    };
    let started = Instant::now();
    // `/metrics` (with an API key) is read beside the page, never after it.
    let (outcome, metrics) = tokio::join!(kuma.status_page(), kuma.metrics());
    let own = judge(
        ServiceName::UptimeKuma,
        started,
        &outcome,
        degraded_ms,
        |page| {
            let mut message = format!(
                "Status page \"{}\", {} monitors",
                page.title,
                page.monitors.len()
            );
            // Kuma's active incidents (1.23/2.0 `incident`, 2.1 `incidents[]` and history).
            let titles: Vec<&str> = page.incidents.iter().map(|i| i.title.as_str()).collect();
            if !titles.is_empty() {
                message.push_str(&format!("; incident: {}", titles.join(", ")));
            }
            Some(message)
        },
    );
    let mut results = vec![own];
    match outcome {
        Ok(page) => {
            for monitor in page.monitors {
                let (health, message) = monitor_health(
                    monitor.status,
                    monitor.message,
                    monitor.ping_ms,
                    degraded_ms,
                );
                results.push(CheckResult {
                    name: format!("kuma:{}", monitor.id),
                    display_name: monitor.name,
                    health,
                    response_time_ms: monitor.ping_ms.map(|p| p as i64),
                    message,
                });
            }
        }
        Err(e) => {
            // A slug Kuma does not know is the admin's configuration to fix, not an outage of
            // Kuma (which answered) or of every monitor: Kuma reads `unknown` with the reason,
            // no admin is paged that it is down, no sample counts against its uptime, and the
            // monitors keep their last known state (they are not re-checked, not marked down).
            let reason = match SlugError::of(&e) {
                Some(SlugError::Unknown) => Some(format!(
                    "Configuration error: status page slug \"{}\" not found in Uptime Kuma \
                     (Kuma 1.23 matches its case exactly).",
                    kuma.slug().trim()
                )),
                Some(SlugError::Invalid) => {
                    Some("Configuration error: the status page slug is not valid.".into())
                }
                None => None,
            };
            if let Some(reason) = reason {
                results[0].health = Health::Unknown;
                results[0].message = Some(reason);
            }
        }
    }
    add_metrics(&mut results, metrics, degraded_ms);
    results
}

/// Adds the monitors `/metrics` knows and the page does not (by id; by name on 1.23, whose
/// metrics carry no id), and says on Kuma's own result what `/metrics` answered.
fn add_metrics(
    results: &mut Vec<CheckResult>,
    metrics: AppResult<Option<MetricsOutcome>>,
    degraded_ms: i64,
) {
    let note = match metrics {
        Ok(None) => return,
        Err(e) => {
            tracing::debug!(error = %e, "Uptime Kuma /metrics could not be read");
            return;
        }
        Ok(Some(MetricsOutcome::KeyRefused)) => {
            "/metrics refused the API key (wrong, expired or deactivated, or its 60 checks a \
             minute are used up)"
                .to_owned()
        }
        Ok(Some(MetricsOutcome::Monitors(list))) => {
            let mut added = 0;
            for monitor in list {
                let by_name = || {
                    results
                        .iter()
                        .skip(1)
                        .find(|r| r.display_name == monitor.name)
                        .map(|r| r.name.clone())
                };
                let name = match monitor.id {
                    Some(id) => format!("kuma:{id}"),
                    None => by_name().unwrap_or_else(|| format!("kuma:name:{}", monitor.name)),
                };
                if results.iter().any(|r| r.name == name) {
                    continue;
                }
                let (health, message) =
                    monitor_health(monitor.status, None, monitor.response_ms, degraded_ms);
                results.push(CheckResult {
                    name,
                    display_name: monitor.name,
                    health,
                    response_time_ms: monitor.response_ms.map(|p| p as i64),
                    message,
                });
                added += 1;
            }
            format!("{added} more monitors from /metrics")
        }
    };
    let own = &mut results[0];
    own.message = Some(match own.message.take() {
        Some(message) => format!("{message}; {note}"),
        None => note,
    });
}

/// A Kuma monitor's health and message from its state and latest response time.
fn monitor_health(
    status: KumaStatus,
    message: Option<String>,
    ping_ms: Option<u64>,
    degraded_ms: i64,
) -> (Health, Option<String>) {
    let (health, message) = match status {
        KumaStatus::Up => (Health::Up, message),
        KumaStatus::Down => (Health::Down, message),
        KumaStatus::Pending => (
            Health::Degraded,
            Some(message.unwrap_or_else(|| "Pending.".into())),
        ),
        KumaStatus::Maintenance => (Health::Degraded, Some("In maintenance.".into())),
        KumaStatus::Unknown => (Health::Unknown, Some("No heartbeat yet.".into())),
    };
    let health = match (health, ping_ms) {
        (Health::Up, Some(p)) if p as i64 > degraded_ms => Health::Degraded,
        (h, _) => h,
    };
    (health, message)
}
