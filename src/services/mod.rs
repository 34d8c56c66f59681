//! Service health: the connections to Plex, Overseerr and Uptime Kuma (their clients and admin
//! settings), the health-check manager, the status API and the circuit-breaker admin.

pub mod admin;
pub mod api;
pub mod clients;
pub mod manager;
pub mod store;

use axum::http::Method;

use crate::routes::{Access, Routes};

/// The service routes (under `/api/v1`).
pub fn routes() -> Routes {
    Routes::new()
        .add(Method::GET, "/services", Access::User, api::list_services)
        .add(
            Method::GET,
            "/services/{name}",
            Access::User,
            api::get_service,
        )
        .add(
            Method::GET,
            "/services/{name}/history",
            Access::User,
            api::service_history,
        )
        .add(
            Method::GET,
            "/admin/services",
            Access::Admin,
            admin::list_services,
        )
        .add(
            Method::PUT,
            "/admin/services/{name}",
            Access::Admin,
            admin::update_service,
        )
        .add(
            Method::POST,
            "/admin/services/{name}/test",
            Access::Admin,
            admin::test_service,
        )
        .add(
            Method::GET,
            "/admin/integrations",
            Access::Admin,
            admin::list_integrations,
        )
        .add(
            Method::POST,
            "/admin/integrations/{name}/reset",
            Access::Admin,
            admin::reset_integration,
        )
}

/// The clients of the configured services, loading them from the database on first use.
pub async fn clients(
    state: &crate::state::AppState,
) -> crate::error::AppResult<std::sync::Arc<clients::ServiceClients>> {
    if let Some(current) = state.service_clients().loaded() {
        return Ok(current);
    }
    admin::rebuild_clients(state).await?;
    state
        .service_clients()
        .loaded()
        .ok_or_else(|| crate::error::AppError::internal("service clients did not load"))
}

/// The background task: load the clients from the database, then check forever.
pub async fn run(state: crate::state::AppState) {
    if let Err(e) = admin::rebuild_clients(&state).await {
        tracing::warn!(error = %e, "could not load the service settings");
    }
    manager::run(state).await;
}
