//! [`AppState`]: everything a handler or background task may use, built once at start and cloned
//! cheaply (one `Arc`). Nothing here is global: tests build as many states as they like.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use tokio::sync::Semaphore;

use crate::auth::plex::PlexAuth;
use crate::auth::session::Sessions;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::crypto::Cipher;
use crate::data_dir::DataDir;
use crate::db::Db;
use crate::error::AppResult;
use crate::events::EventBus;
use crate::health::HealthProbe;
use crate::home::DashboardCache;
use crate::http::{ErrorLogEntry, SecurityHeaders};
use crate::media::MediaState;
use crate::monitor::Monitor;
use crate::pagination::CursorCodec;
use crate::ratelimit::Limiters;
use crate::services::api::StatusCache;
use crate::services::clients::Clients;
use crate::services::manager::HealthManager;

/// How many 5xx reports may wait for the error-log writer before new ones are dropped (and
/// counted): a flood of failures must not grow memory without bound.
const ERROR_LOG_QUEUE: usize = 1024;

/// CPU-heavy jobs (password hashing) at once: one per core of a small server. Argon2 takes
/// 19 MiB per job, so this also bounds the memory a burst of sign-ins can take.
const CPU_JOBS: usize = 2;

/// The shared application state.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<Config>,
    db: Db,
    clock: SharedClock,
    monitor: Monitor,
    edge: EdgeSettings,
    data: DataDir,
    health: HealthProbe,
    sessions: Sessions,
    limiters: Limiters,
    cipher: Cipher,
    cursors: CursorCodec,
    plex_auth: PlexAuth,
    events: EventBus,
    service_clients: Clients,
    status_cache: StatusCache,
    plex_caches: crate::plex::PlexCaches,
    health_manager: HealthManager,
    media: MediaState,
    problems: crate::problems::Problems,
    dashboard: DashboardCache,
    youtube: crate::youtube::Youtube,
    backups: crate::backups::Backups,
    images: crate::images::TmdbImages,
    watchlist: crate::watchlist::Watchlist,
    cpu: Arc<Semaphore>,
    started: Instant,
    error_log: mpsc::Sender<ErrorLogEntry>,
    error_log_rx: std::sync::Mutex<Option<mpsc::Receiver<ErrorLogEntry>>>,
    error_log_dropped: AtomicU64,
    unlogged_errors: crate::error_log::UnloggedErrors,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// Settings of the HTTP edge, computed once.
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    pub security: SecurityHeaders,
    pub request_timeout: Duration,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.inner.config)
            .field("db", &self.inner.db)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Assembles the state from its parts; `crate::bootstrap` does this for the real server.
    pub fn new(config: Config, db: Db, data: DataDir, clock: SharedClock) -> Self {
        let (tx, rx) = mpsc::channel(ERROR_LOG_QUEUE);
        let edge = EdgeSettings {
            security: SecurityHeaders::new(config.server.is_https()),
            request_timeout: crate::http::request_timeout(config.server.request_timeout_secs),
        };
        Self {
            inner: Arc::new(Inner {
                monitor: Monitor::new(config.monitor.slow_ms),
                health: HealthProbe::new(clock.clone()),
                sessions: Sessions::new(&config, clock.clone()),
                limiters: Limiters::new(&config.limits),
                cipher: Cipher::new(&data.secret_key),
                cursors: CursorCodec::new(&data.secret_key),
                plex_auth: PlexAuth::new(&config.plex.tv_url, &data.plex_client_id, clock.clone()),
                events: EventBus::default(),
                service_clients: Clients::default(),
                status_cache: StatusCache::new(clock.clone()),
                plex_caches: crate::plex::PlexCaches::new(
                    config.plex.image_cache_mb.saturating_mul(1024 * 1024),
                    config.plex.browse_cache_mb.saturating_mul(1024 * 1024),
                    clock.clone(),
                ),
                health_manager: HealthManager::new(),
                media: MediaState::new(clock.clone()),
                problems: crate::problems::Problems::new(),
                dashboard: DashboardCache::new(clock.clone()),
                youtube: crate::youtube::Youtube::new(clock.clone(), &config.youtube),
                backups: crate::backups::Backups::default(),
                images: crate::images::TmdbImages::new(&config, clock.clone()),
                watchlist: crate::watchlist::Watchlist::new(
                    &config,
                    &data.plex_client_id,
                    clock.clone(),
                ),
                cpu: Arc::new(Semaphore::new(CPU_JOBS)),
                config: Arc::new(config),
                db,
                clock,
                edge,
                data,
                started: Instant::now(),
                error_log: tx,
                error_log_rx: std::sync::Mutex::new(Some(rx)),
                error_log_dropped: AtomicU64::new(0),
                unlogged_errors: crate::error_log::UnloggedErrors::default(),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    pub fn monitor(&self) -> &Monitor {
        &self.inner.monitor
    }

    pub fn edge(&self) -> &EdgeSettings {
        &self.inner.edge
    }

    pub fn data_dir(&self) -> &DataDir {
        &self.inner.data
    }

    /// Scheduled backups and their status.
    pub fn backups(&self) -> &crate::backups::Backups {
        &self.inner.backups
    }

    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    pub fn limiters(&self) -> &Limiters {
        &self.inner.limiters
    }

    pub fn cipher(&self) -> &Cipher {
        &self.inner.cipher
    }

    /// The Plex sign-in machinery (plex.tv client, pending PINs).
    pub fn plex_auth(&self) -> &PlexAuth {
        &self.inner.plex_auth
    }

    /// The live-event bus (`GET /events`).
    pub fn events(&self) -> &EventBus {
        &self.inner.events
    }

    /// The clients of the configured services.
    pub fn service_clients(&self) -> &Clients {
        &self.inner.service_clients
    }

    /// The service status caches.
    pub fn status_cache(&self) -> &StatusCache {
        &self.inner.status_cache
    }

    /// The Plex browse and image caches.
    pub fn plex_caches(&self) -> &crate::plex::PlexCaches {
        &self.inner.plex_caches
    }

    /// The health-check manager's memory.
    pub fn health_manager(&self) -> &HealthManager {
        &self.inner.health_manager
    }

    /// Media-request caches and per-title locks.
    pub fn media(&self) -> &MediaState {
        &self.inner.media
    }

    /// The problem reports' state (a lock per Seerr issue).
    pub fn problems(&self) -> &crate::problems::Problems {
        &self.inner.problems
    }

    /// The per-user `GET /dashboard` cache.
    pub fn dashboard(&self) -> &DashboardCache {
        &self.inner.dashboard
    }

    /// The YouTube downloads' memory (running downloads, metadata cache).
    pub fn youtube(&self) -> &crate::youtube::Youtube {
        &self.inner.youtube
    }

    /// Posters and backdrops (`crate::images`): their disk cache and image host.
    pub fn images(&self) -> &crate::images::TmdbImages {
        &self.inner.images
    }

    /// Plex watchlist auto-requests: the discover provider client and the sync's waker.
    pub fn watchlist(&self) -> &crate::watchlist::Watchlist {
        &self.inner.watchlist
    }

    /// Signs and checks page cursors.
    pub fn cursors(&self) -> &CursorCodec {
        &self.inner.cursors
    }

    /// The gate for CPU-heavy blocking work (password hashing).
    pub fn cpu_gate(&self) -> &Arc<Semaphore> {
        &self.inner.cpu
    }

    pub fn health_probe(&self) -> &HealthProbe {
        &self.inner.health
    }

    pub fn request_timeout(&self) -> Duration {
        self.inner.edge.request_timeout
    }

    /// Statistics of every cache, for `/metrics` and `/admin/performance`.
    pub fn cache_stats(&self) -> Vec<crate::cache::CacheStats> {
        let mut stats = vec![
            self.inner.sessions.cache_stats(),
            self.inner.health.cache_stats(),
            self.inner.status_cache.stats(),
            self.inner.dashboard.stats(),
            self.inner.youtube.cache_stats(),
        ];
        stats.extend(self.inner.media.stats());
        stats.extend(self.inner.plex_caches.stats());
        stats
    }

    /// Time since this state was built.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// Cancelled when the server shuts down; background loops watch it.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// Spawns a background task that shutdown waits for.
    pub fn spawn_task<F>(&self, future: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.inner.tasks.spawn(future);
    }

    /// Queues a 5xx for `error_logs`; never waits. When the queue is full the entry is dropped
    /// and counted (it is in the log either way).
    pub fn log_error(&self, entry: ErrorLogEntry) {
        if self.inner.error_log.try_send(entry).is_err() {
            self.inner.error_log_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// 5xx reports dropped because the writer fell behind.
    pub fn error_logs_dropped(&self) -> u64 {
        self.inner.error_log_dropped.load(Ordering::Relaxed)
    }

    /// Anonymous 5xx counted instead of stored (`crate::error_log::UNLOGGED_CODES`).
    pub fn unlogged_errors(&self) -> &crate::error_log::UnloggedErrors {
        &self.inner.unlogged_errors
    }

    /// Starts the background tasks: the error-log writer and housekeeping.
    pub fn start_background(&self) {
        let rx = self
            .inner
            .error_log_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(rx) = rx {
            self.spawn_task(crate::error_log::run_writer(self.clone(), rx));
        }
        self.spawn_task(crate::housekeeping::run(self.clone()));
        self.spawn_task(crate::housekeeping::watch_memory(self.clone()));
        self.spawn_task(crate::auth::session::watch_auth_epoch(self.clone()));
        self.spawn_task(crate::services::run(self.clone()));
        self.spawn_task(crate::home::watch(self.clone()));
        self.spawn_task(crate::media::reconcile::run(self.clone()));
        self.spawn_task(crate::youtube::worker::run(self.clone()));
        self.spawn_task(crate::backups::run(self.clone()));
        self.spawn_task(crate::notifications::worker::run(self.clone()));
        self.spawn_task(crate::youtube::subscriptions::scheduler::run(self.clone()));
        self.spawn_task(crate::watchlist::sync::run(self.clone()));
    }

    /// Stops background tasks (bounded wait) and checkpoints the database.
    pub async fn shutdown(&self) -> AppResult<()> {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        if tokio::time::timeout(Duration::from_secs(10), self.inner.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("background tasks did not stop within 10 s");
        }
        let db = self.inner.db.clone();
        let checkpoint = self.config().database.checkpoint_on_exit;
        tokio::task::spawn_blocking(move || db.close_blocking(checkpoint))
            .await
            .map_err(|e| crate::error::AppError::internal(format!("close database: {e}")))?
    }
}
