//! Accounts and sessions: password and Plex sign-in, sessions, CSRF, the extractors that decide
//! who is calling, and the first admin account.

pub mod extract;
pub mod first_run;
pub mod handlers;
pub mod password;
pub mod plex;
pub mod session;

pub use extract::{AdminUser, Authenticated, CurrentUser};

use axum::http::Method;

use crate::routes::{Access, Routes};

/// The `/auth` routes (under `/api/v1`).
pub fn routes() -> Routes {
    Routes::new()
        .add(Method::POST, "/auth/login", Access::Public, handlers::login)
        .add(Method::POST, "/auth/logout", Access::User, handlers::logout)
        .add(
            Method::GET,
            "/auth/session",
            Access::User,
            handlers::current_session,
        )
        .add(
            Method::POST,
            "/auth/password",
            Access::User,
            handlers::change_password,
        )
        .add(
            Method::POST,
            "/auth/plex/pin",
            Access::Public,
            plex::create_pin,
        )
        .add(
            Method::POST,
            "/auth/plex/pin/{pin_id}/poll",
            Access::Public,
            plex::poll_pin,
        )
        .add(
            Method::GET,
            "/auth/sessions",
            Access::User,
            handlers::list_sessions,
        )
        .add(
            Method::DELETE,
            "/auth/sessions/{id}",
            Access::User,
            handlers::revoke_session,
        )
}
