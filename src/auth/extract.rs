//! Who is calling: the extractors every protected handler takes.
//!
//! - [`Authenticated`]: any valid session of an active user, even one that must change its
//!   password (only `GET /auth/session`, `POST /auth/password` and `POST /auth/logout` take it).
//! - [`CurrentUser`]: an active user who may use the app.
//! - [`AdminUser`]: the same, with the admin role.
//!
//! Each checks, in order: a token (Bearer header, else the session cookie; another
//! `Authorization` scheme is ignored), the session, the account status, CSRF for
//! cookie-authenticated writes, the per-user rate limit. Suspension, role changes and
//! revocations drop the session cache, so they apply from the next request.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use subtle::ConstantTimeEq;

use super::session::{COOKIE, SessionInfo, read_cookie};
use crate::error::{AppError, ErrorCode};
use crate::http::RequestContext;
use crate::state::AppState;
use crate::users::{Role, Status};

/// A signed-in caller, as far as the session goes.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub session: Arc<SessionInfo>,
    /// The raw token, to revoke this very session on logout.
    pub token: String,
    /// True when the token came in a Bearer header (scripts), false for the cookie.
    pub via_bearer: bool,
}

/// An active user allowed to use the app.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Authenticated);

/// An active admin.
#[derive(Debug, Clone)]
pub struct AdminUser(pub Authenticated);

impl Authenticated {
    pub fn user_id(&self) -> &str {
        &self.session.user_id
    }

    pub fn is_admin(&self) -> bool {
        self.session.role == Role::Admin
    }
}

impl CurrentUser {
    pub fn user_id(&self) -> &str {
        self.0.user_id()
    }

    pub fn is_admin(&self) -> bool {
        self.0.is_admin()
    }
}

impl AdminUser {
    pub fn user_id(&self) -> &str {
        self.0.user_id()
    }
}

/// The caller's token and whether it came as Bearer. A Bearer header wins (even a bad one: a
/// script's wrong token must not fall back to a browser cookie); any other `Authorization`
/// scheme (Basic auth a reverse proxy adds or passes through) is not ours, so the session
/// cookie is read as if it were absent.
fn token_from(parts: &Parts) -> Option<(String, bool)> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION)
        && let Some(token) = bearer_token(value.as_bytes())
    {
        let token = std::str::from_utf8(token).ok()?;
        return Some((token.trim().to_owned(), true));
    }
    read_cookie(&parts.headers, COOKIE).map(|t| (t.to_owned(), false))
}

/// The credentials of a `Bearer` `Authorization` value (the scheme is case-insensitive, RFC 9110
/// section 11.1), or `None` for another scheme.
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(rest)
}

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The origin a same-origin request's `Origin` header carries: `server.public_url`'s, else the
/// host the browser used (`http::RequestAddress`: the request's `Host`, or a trusted proxy's
/// `X-Forwarded-Host`; scheme unknown behind a proxy, so only host and port are compared).
fn origin_allowed(state: &AppState, parts: &Parts) -> bool {
    let Some(origin) = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    let server = &state.config().server;
    if let Some(public) = server.public_origin() {
        return public == origin;
    }
    let address = crate::http::RequestAddress::of(
        server,
        parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>(),
        &parts.headers,
    );
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    address
        .host
        .is_some_and(|host| origin_host.eq_ignore_ascii_case(host))
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(found) = parts.extensions.get::<Authenticated>() {
            return Ok(found.clone());
        }
        let (token, via_bearer) =
            token_from(parts).ok_or_else(|| AppError::new(ErrorCode::Unauthorized))?;
        if token.is_empty() || token.len() > 128 {
            return Err(AppError::new(ErrorCode::Unauthorized));
        }
        let now = state.clock().now_ms();
        let session = state.sessions().lookup(state.db(), &token, now).await?;
        if let Some(ctx) = parts.extensions.get::<Arc<RequestContext>>() {
            let _ = ctx.user_id.set(session.user_id.clone());
        }
        if session.status != Status::Active {
            return Err(AppError::new(ErrorCode::AccountSuspended));
        }
        if !via_bearer && is_write(&parts.method) {
            let given = parts
                .headers
                .get("x-csrf-token")
                .map(|v| v.as_bytes())
                .unwrap_or(b"");
            let matches: bool = given.ct_eq(session.csrf_token.as_bytes()).into();
            if !matches || !origin_allowed(state, parts) {
                return Err(AppError::new(ErrorCode::CsrfTokenInvalid));
            }
        }
        state.limiters().check_user(&session.user_id)?;
        let found = Authenticated {
            session,
            token,
            via_bearer,
        };
        parts.extensions.insert(found.clone());
        Ok(found)
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let auth = Authenticated::from_request_parts(parts, state).await?;
        if auth.session.requires_password_change {
            return Err(AppError::new(ErrorCode::PasswordChangeRequired));
        }
        Ok(Self(auth))
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let CurrentUser(auth) = CurrentUser::from_request_parts(parts, state).await?;
        if auth.session.role != Role::Admin {
            return Err(AppError::new(ErrorCode::Forbidden));
        }
        Ok(Self(auth))
    }
}
