//! MediaNest: the front door of a home media server, as one binary.
//!
//! [`router`] builds the whole HTTP application from an [`AppState`]; [`serve`] runs it on a
//! listener the caller has already bound until a shutdown future resolves; [`bootstrap`] turns a
//! [`Config`] into a ready state (data directory, database, migrations). `main.rs` only wires these
//! to the command line.

pub mod auth;
pub mod blocking;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod data_dir;
pub mod db;
pub mod error;
pub mod error_log;
pub mod health;
pub mod housekeeping;
pub mod http;
pub mod integrations;
pub mod metrics;
pub mod monitor;
pub mod pagination;
pub mod ratelimit;
pub mod response;
pub mod routes;
pub mod sim;
pub mod state;
pub mod time;
pub mod users;

use std::future::Future;
use std::net::SocketAddr;
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
    let data = data_dir::DataDir::prepare(&config)?;
    let db = db::Db::open_file(&config.database_path(), config.database.pool_size)
        .map_err(|e| StartError::Database(e.to_string()))?;
    prepare_database(&db, &config, &data, clock.now_ms())?;
    auth::password::warm_up();
    Ok(AppState::new(config, db, data, clock))
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
    crypto::Cipher::new(&data.secret_key)
        .verify_against(&conn)
        .map_err(StartError::Database)?;
    auth::first_run::ensure_admin(&conn, config, now_ms).map_err(StartError::Database)
}

/// Every API route: the table the router is built from (and the authorization tests walk).
pub fn api_routes() -> routes::Routes {
    routes::Routes::new()
        .merge(health::api_routes())
        .merge(auth::routes())
        .prefixed("/api/v1")
        .merge(health::routes())
        .merge(metrics::routes())
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let routes = api_routes()
        .into_router()
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ratelimit::limit_ip,
        ));
    with_edge(routes, state)
}

/// Wraps routes in the layers every response passes through: fallbacks for unknown paths and
/// methods, the body limit and the edge middleware (`http::edge`).
pub fn with_edge(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .fallback(http::not_found)
        .method_not_allowed_fallback(http::method_not_allowed)
        .layer(DefaultBodyLimit::max(http::MAX_BODY_BYTES))
        // Outermost: sees every response, including the fallbacks' and the body limit's.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::edge,
        ))
        .with_state(state)
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
pub async fn serve_app<F>(
    listener: TcpListener,
    state: AppState,
    app: Router,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let grace = Duration::from_secs(state.config().server.shutdown_grace_secs);
    state.start_background();
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let stopping = std::sync::Arc::new(tokio::sync::Notify::new());
    let signal = {
        let stopping = stopping.clone();
        async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            stopping.notify_one();
        }
    };
    let server = axum::serve(listener, app).with_graceful_shutdown(signal);
    let forced = async {
        stopping.notified().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server.into_future() => result?,
        () = forced => {
            tracing::warn!(grace_secs = grace.as_secs(), "requests still running after the grace period; closing them");
        }
    }
    if let Err(e) = state.shutdown().await {
        tracing::warn!(error = %e, "shutdown was not clean");
    }
    tracing::info!("stopped");
    Ok(())
}
