//! MediaNest: the front door of a home media server, as one binary.
//!
//! [`router`] builds the whole HTTP application from an [`AppState`]; [`serve`] runs it on a
//! listener the caller has already bound until a shutdown future resolves; [`bootstrap`] turns a
//! [`Config`] into a ready state (data directory, database, migrations). `main.rs` only wires these
//! to the command line.

pub mod admin;
pub mod auth;
pub mod backups;
pub mod blocking;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod conn;
pub mod crypto;
pub mod dashboard;
pub mod data_dir;
pub mod db;
pub mod demo;
pub mod doctor;
pub mod error;
pub mod error_log;
pub mod events;
pub mod health;
pub mod home;
pub mod housekeeping;
pub mod http;
pub mod images;
pub mod integrations;
pub mod media;
pub mod metrics;
pub mod monitor;
pub mod net;
pub mod notifications;
pub mod pagination;
pub mod platform;
pub mod plex;
pub mod problems;
pub mod push;
pub mod ratelimit;
pub mod response;
pub mod routes;
pub mod service_config;
pub mod services;
pub mod sim;
pub mod state;
pub mod time;
pub mod users;
pub mod watchlist;
pub mod youtube;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::net::TcpListener;

pub use config::Config;
pub use state::AppState;

/// The version of this build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A failure to start: the message is one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    DataDir(#[from] data_dir::DataDirError),
    #[error("database: {0}")]
    Database(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Prepares the data directory, opens and migrates the database, checks the secret key against
/// it, creates the first admin when there are no users, and builds the state.
/// Blocking (file, database and hashing work); call before the runtime serves requests.
pub fn bootstrap(config: Config, clock: clock::SharedClock) -> Result<AppState, StartError> {
    platform::fs::check_data_dir(&config.data_dir, config.database.allow_network_fs)
        .map_err(data_dir::DataDirError)?;
    let data = data_dir::DataDir::prepare(&config)?;
    // One server per data directory; `medianest restore` checks this lock too.
    let lock = backups::lock::DataLock::acquire(&data.path)
        .map_err(|e| data_dir::DataDirError(format!("{e}; stop it first")))?;
    let migrating = backups::before_migration(&config, clock.now_ms())
        .map_err(StartError::Database)?
        .is_some();
    let db = db::Db::open_file(&config.database_path(), config.database.pool_size)
        .map_err(|e| StartError::Database(e.to_string()))?;
    prepare_database(&db, &config, &data, clock.now_ms())?;
    if !migrating {
        backups::remove_pre_migration_backups(&config);
    }
    let state = AppState::new(config, db, data, clock);
    state.backups().hold_lock(lock);
    Ok(state)
}

/// The start-up checks that need the database: the secret key matches it, and an admin exists.
pub fn prepare_database(
    db: &db::Db,
    config: &Config,
    data: &data_dir::DataDir,
    now_ms: i64,
) -> Result<(), StartError> {
    let conn = db
        .connection_blocking()
        .map_err(|e| StartError::Database(e.to_string()))?;
    let cipher = crypto::Cipher::new(&data.secret_key);
    cipher.verify_against(&conn).map_err(StartError::Database)?;
    service_config::seed(&conn, config, &cipher, now_ms)
        .map_err(|e| StartError::Database(e.to_string()))?;
    auth::first_run::ensure_admin(&conn, config, now_ms).map_err(StartError::Database)
}

/// Every API route: the table the router is built from (and the authorization tests walk).
pub fn api_routes() -> routes::Routes {
    routes::Routes::new()
        .merge(health::api_routes())
        .merge(auth::routes())
        .merge(services::routes())
        .merge(admin::routes())
        .merge(backups::routes())
        .merge(doctor::routes())
        .merge(notifications::routes())
        .merge(notifications::prefs::routes())
        .merge(notifications::admin_log::routes())
        .merge(notifications::announcements::routes())
        .merge(events::routes())
        .merge(media::routes())
        .merge(problems::routes())
        .merge(home::routes())
        .merge(youtube::routes())
        .merge(youtube::subscriptions::routes())
        .merge(plex::routes())
        .merge(push::routes())
        .merge(images::routes())
        .merge(watchlist::routes())
        .prefixed("/api/v1")
        .merge(health::routes())
        .merge(metrics::routes())
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    // The per-IP limit is checked in front of the router, on each connection (`ratelimit::Gate`
    // in `serve_app`), before anything is spent on a request.
    with_edge(api_routes().into_router(), state)
}

/// Wraps routes in the layers every response passes through: fallbacks for unknown paths (the
/// dashboard's files and pages, or the API's 404) and methods, the body limit and the edge
/// middleware (`http::edge`).
pub fn with_edge(routes: Router<AppState>, state: AppState) -> Router {
    let dashboard = dashboard::Dashboard::with_base(state.config().server.base());
    let app = routes
        .fallback(move |req| dashboard.clone().fallback(req))
        .method_not_allowed_fallback(http::method_not_allowed)
        .layer(DefaultBodyLimit::max(http::MAX_BODY_BYTES))
        // Outermost: sees every response, including the fallbacks' and the body limit's.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::edge,
        ))
        .with_state(state.clone());
    with_base_path(app, state)
}

/// Puts `app` under `server.base_path` (`http::BasePath`): unchanged at the root.
pub fn with_base_path(app: Router, state: AppState) -> Router {
    if state.config().server.base().is_empty() {
        return app;
    }
    Router::new().fallback_service(http::BasePath { app, state })
}

/// Serves `state` on `listener` until `shutdown` resolves, then lets in-flight requests finish
/// (up to `server.shutdown_grace_secs`), stops the background tasks and checkpoints the database.
pub async fn serve<F>(listener: TcpListener, state: AppState, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let app = router(state.clone());
    serve_app(listener, state, app, shutdown).await
}

/// [`serve`] with a given application (tests add routes to the real one with [`with_edge`]).
///
/// The accept loop is ours rather than `axum::serve`'s so that connections still busy when the
/// grace period ends can be cut: each connection is a task in a `JoinSet` that shutdown aborts,
/// and only then is the database checkpointed. It also bounds what sockets can hold (`conn`):
/// open connections in total and per client address (over a cap, a connection is closed as
/// soon as it is accepted, so the listen backlog never fills; at the total cap the longest-idle
/// kept-alive connection is closed first to make room), the time for a request head and
/// the idle time of a kept-alive connection; failed accepts back off.
pub async fn serve_app<F>(
    listener: TcpListener,
    state: AppState,
    app: Router,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    use hyper_util::rt::TokioIo;
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    let server = &state.config().server;
    let grace = Duration::from_secs(server.shutdown_grace_secs);
    let limits = conn::ConnectionLimits::new(server);
    let timeouts = conn::Timeouts::new(server);
    state.start_background();
    metrics::MetricsAccess::log_at_start(state.config());
    conn::warn_if_over_file_limit(server);
    // No hyper timer: the head and idle times are `conn`'s (see there why not hyper's).
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = conn::Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
    let mut accept_log = conn::Throttle::new(Duration::from_secs(1));
    let mut refusal_log = conn::Throttle::new(Duration::from_secs(1));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => {
                    backoff.reset();
                    pair
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait, longer each time, rather than
                    // spin, and say so at most once a second.
                    let wait = backoff.next_wait();
                    if let Some(held_back) = accept_log.ready() {
                        tracing::warn!(
                            error = %e,
                            retry_ms = wait.as_millis() as u64,
                            open = limits.open(),
                            held_back,
                            "accept failed"
                        );
                    }
                    tokio::select! {
                        () = tokio::time::sleep(wait) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
            // Reap finished connection tasks so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let slot = match limits.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                // Closed at once: a refused client learns it now and holds nothing.
                drop(stream);
                if let Some(held_back) = refusal_log.ready() {
                    tracing::warn!(
                        peer = %peer.ip(),
                        limit = refusal.key(),
                        open = limits.open(),
                        held_back,
                        "connection refused: too many open connections"
                    );
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let activity = slot.activity();
        let requests = activity.clone();
        let service = tower::ServiceBuilder::new()
            .map_future(move |response| {
                conn::tracked_response(response, requests.request_started())
            })
            .service(ratelimit::Gate::new(app.clone(), state.clone(), peer));
        let io = TokioIo::new(conn::Watched::new(stream, activity.clone()));
        let connection = builder.serve_connection(io, TowerToHyperService::new(service));
        let watched = graceful.watch(connection);
        connections.spawn(async move {
            let _slot = slot;
            conn::drive(watched, &activity, timeouts).await;
        });
    }
    drop(listener);
    // Live-event streams never end by themselves: end them now, or they would hold the
    // graceful shutdown for the whole grace period.
    state.events().close();
    tracing::info!("shutting down: finishing in-flight requests");
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            "requests still running after the grace period; closing them"
        );
    }
    connections.shutdown().await;
    if let Err(e) = state.shutdown().await {
        tracing::warn!(error = %e, "shutdown was not clean");
    }
    tracing::info!("stopped");
    Ok(())
}
