//! Password sign-in, sign-out, the current session, password change, and a user's sessions.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::extract::{Authenticated, CurrentUser};
use super::first_run::initial_password_path;
use super::password;
use super::session::{NewSession, Sessions, clear_cookie, cookie};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::{ApiJson, ClientIp};
use crate::ratelimit::{WindowState, login_failures};
use crate::response::ApiResponse;
use crate::state::AppState;
use crate::time::rfc3339;
use crate::users::{self, User, UserView};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginBody {
    username: String,
    password: String,
    #[serde(default)]
    remember_me: bool,
}

/// What a successful sign-in answers (password or Plex).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedIn {
    /// Only in PIN poll answers: `true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorized: Option<bool>,
    pub user: UserView,
    pub token: String,
    pub csrf_token: String,
    pub expires_at: String,
}

/// The sign-in answer with the session cookie.
pub fn signed_in_response(
    state: &AppState,
    user: &User,
    session: &NewSession,
    authorized: Option<bool>,
) -> Response {
    let body = SignedIn {
        authorized,
        user: user.view(),
        token: session.token.clone(),
        csrf_token: session.csrf_token.clone(),
        expires_at: rfc3339(session.expires_at),
    };
    let mut response = ApiResponse::ok(&body).into_response();
    let secure = state.config().server.cookies_secure();
    if let Ok(v) = HeaderValue::from_str(&cookie(
        &session.token,
        session,
        secure,
        state.sessions().lifetime_ms(true),
        state.config().server.cookie_path(),
    )) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `POST /auth/login`.
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginBody>,
) -> AppResult<Response> {
    let mut fields = Vec::new();
    let login = body.username.trim().to_owned();
    if login.is_empty() || login.chars().count() > 320 {
        fields.push(("username", "must be 1 to 320 characters"));
    }
    if body.password.is_empty() || body.password.chars().count() > password::MAX_LEN {
        fields.push(("password", "must be 1 to 256 characters"));
    }
    if !fields.is_empty() {
        return Err(AppError::validation(fields));
    }
    let now = state.clock().now_ms();
    // Each attempt is counted before its password is hashed (so parallel guesses cannot all pass
    // the check) and refunded when the password was right; `attempt` gives it back if this
    // future ends before the result is known.
    let mut attempt = PendingAttempt::new(state.clone());
    if let Some(ip) = ip {
        let reserved = state
            .limiters()
            .login_ip_reserve(ip, now)
            .map_err(rate_limited)?;
        attempt.ip = Some((ip, reserved));
    }
    let limit = state.limiters().login_failures_per_username();
    let delay_max = state.limiters().login_delay_max_secs();
    let client = ip.map_or_else(|| "-".to_owned(), crate::net::client_key_text);
    let lookup_login = login.clone();
    let reserved = state
        .db()
        .write(move |tx| {
            let user = users::by_login(tx, &lookup_login)?;
            // Failures count against the account, whichever of its names was typed.
            let account = user.as_ref().map_or(lookup_login, |u| u.username.clone());
            let reservation =
                login_failures::reserve(tx, &account, &client, limit, delay_max, now)?;
            Ok(reservation.map(|r| (user, r)))
        })
        .await;
    // On a refusal or an error, dropping `attempt` gives the per-IP reservation back.
    let (user, reservation) = reserved?.map_err(rate_limited)?;
    attempt.reservation = Some(reservation);
    // Verify even for an unknown user (against a dummy hash) so both take the same time. The
    // wait for the CPU gate is bounded so that a busy server answers 503 (and gives the attempt
    // back) before the request times out.
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let gate_wait = (state.request_timeout() / 2).min(MAX_GATE_WAIT);
    let ok = match password::verify_within(state.cpu_gate(), gate_wait, body.password, hash).await {
        Ok(ok) => ok,
        Err(e) => {
            // Not a guess that was checked: give the attempt back.
            attempt.release().await;
            return Err(e);
        }
    };
    let (ip_reservation, reservation) = attempt.settle();
    let Some(reservation) = reservation else {
        return Err(AppError::internal("sign-in reservation missing"));
    };
    let Some(user) = user.filter(|_| ok) else {
        let mut response = AppError::new(ErrorCode::InvalidCredentials).into_response();
        reservation.window.apply(&mut response);
        return Ok(response);
    };
    if let Some((ip, reserved)) = &ip_reservation {
        state.limiters().login_ip_refund(*ip, reserved);
    }
    if user.status != users::Status::Active {
        state
            .db()
            .write(move |tx| login_failures::refund(tx, &reservation))
            .await?;
        return Err(AppError::new(ErrorCode::AccountSuspended));
    }
    let ua = user_agent(&headers);
    let ip_text = ip.map(|i| i.to_string());
    let remember = body.remember_me;
    let user_id = user.id.clone();
    let sessions_state = state.clone();
    let window = reservation.window;
    let session = state
        .db()
        .write(move |tx| {
            login_failures::refund(tx, &reservation)?;
            tx.prepare_cached("UPDATE users SET last_login_at = ?1 WHERE id = ?2")?
                .execute(rusqlite::params![now, user_id])?;
            sessions_state.sessions().create(
                tx,
                &user_id,
                remember,
                ua.as_deref(),
                ip_text.as_deref(),
                now,
            )
        })
        .await?;
    let user = User {
        last_login_at: Some(now),
        ..user
    };
    tracing::info!(user = %user.username, "signed in with a password");
    let mut response = signed_in_response(&state, &user, &session, None);
    // A success clears this client's failures at the account.
    WindowState {
        remaining: window.limit,
        ..window
    }
    .apply(&mut response);
    Ok(response)
}

/// The longest a sign-in waits for the CPU gate (half the request timeout when that is shorter).
const MAX_GATE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A sign-in attempt counted (per IP in memory, per account and client in the database) whose
/// password result is not known yet. Dropped before [`PendingAttempt::settle`] (the edge's
/// request timeout or a closed connection dropped the handler, or it returned early), it gives
/// both reservations back: the caller never learns a result, so the attempt was no guess, and a
/// right password that timed out must not count as a failure.
struct PendingAttempt {
    state: AppState,
    ip: Option<(std::net::IpAddr, WindowState)>,
    reservation: Option<login_failures::Reservation>,
}

impl PendingAttempt {
    fn new(state: AppState) -> Self {
        Self {
            state,
            ip: None,
            reservation: None,
        }
    }

    /// The result is known: hands both reservations to the caller, to keep or refund.
    fn settle(
        mut self,
    ) -> (
        Option<(std::net::IpAddr, WindowState)>,
        Option<login_failures::Reservation>,
    ) {
        (self.ip.take(), self.reservation.take())
    }

    /// Gives both reservations back now, waiting for the database.
    async fn release(mut self) {
        self.release_ip();
        if let Some(r) = self.reservation.take() {
            let _ = self
                .state
                .db()
                .write(move |tx| login_failures::release(tx, &r))
                .await;
        }
    }

    fn release_ip(&mut self) {
        if let Some((ip, reserved)) = self.ip.take() {
            self.state.limiters().login_ip_refund(ip, &reserved);
        }
    }
}

impl Drop for PendingAttempt {
    fn drop(&mut self) {
        self.release_ip();
        if let Some(r) = self.reservation.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let db = self.state.db().clone();
            runtime.spawn(async move {
                if let Err(e) = db.write(move |tx| login_failures::release(tx, &r)).await {
                    tracing::warn!(error = %e, "could not give back a dropped sign-in attempt");
                }
            });
        }
    }
}

fn rate_limited(wait: u64) -> AppError {
    AppError::new(ErrorCode::RateLimited).with_retry_after(wait)
}

#[derive(Debug, Deserialize)]
pub struct LogoutQuery {
    #[serde(default)]
    all: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LoggedOut {
    sessions_ended: usize,
}

/// `POST /auth/logout` (`?all=true` ends every session of the user).
pub async fn logout(
    State(state): State<AppState>,
    auth: Authenticated,
    Query(query): Query<LogoutQuery>,
) -> AppResult<Response> {
    let user_id = auth.user_id().to_owned();
    let session_id = auth.session.session_id.clone();
    let all = query.all;
    let ended = state
        .db()
        .write(move |tx| {
            if all {
                Sessions::delete_all(tx, &user_id, None)
            } else {
                Sessions::delete_one(tx, &user_id, &session_id).map(usize::from)
            }
        })
        .await?;
    if all {
        state.sessions().forget_all();
    } else {
        state.sessions().forget_token(&auth.token);
    }
    let mut response = ApiResponse::ok(&LoggedOut {
        sessions_ended: ended,
    })
    .into_response();
    let secure = state.config().server.cookies_secure();
    if let Ok(v) = HeaderValue::from_str(&clear_cookie(secure, state.config().server.cookie_path()))
    {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionUser<'a> {
    id: &'a str,
    username: &'a str,
    email: Option<&'a str>,
    name: Option<&'a str>,
    role: users::Role,
    plex_username: Option<&'a str>,
    image: Option<&'a str>,
    requires_password_change: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CurrentSession<'a> {
    user: SessionUser<'a>,
    csrf_token: &'a str,
    expires_at: String,
}

/// `GET /auth/session`: answered from the session cache (every change to the user drops it).
pub async fn current_session(auth: Authenticated) -> AppResult<Response> {
    let s = &auth.session;
    Ok(ApiResponse::ok(&CurrentSession {
        user: SessionUser {
            id: &s.user_id,
            username: &s.username,
            email: s.email.as_deref(),
            name: s.name.as_deref(),
            role: s.role,
            plex_username: s.plex_username.as_deref(),
            image: s.image.as_deref(),
            requires_password_change: s.requires_password_change,
        },
        csrf_token: &s.csrf_token,
        expires_at: rfc3339(s.expires_at),
    })
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordBody {
    current_password: String,
    new_password: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PasswordChanged {
    other_sessions_ended: usize,
}

/// `POST /auth/password`: local accounts; ends the user's other sessions.
pub async fn change_password(
    State(state): State<AppState>,
    auth: Authenticated,
    ApiJson(body): ApiJson<PasswordBody>,
) -> AppResult<Response> {
    if let Err(reason) = password::check_policy(&body.new_password) {
        return Err(AppError::validation([("newPassword", reason)]));
    }
    if body.new_password == body.current_password {
        return Err(AppError::validation([(
            "newPassword",
            "must differ from the current password",
        )]));
    }
    let user_id = auth.user_id().to_owned();
    let user = state
        .db()
        .run(move |conn| users::by_id(conn, &user_id))
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::Unauthorized))?;
    let Some(hash) = user.password_hash.clone() else {
        return Err(AppError::validation([(
            "currentPassword",
            "this account signs in with Plex and has no password here",
        )]));
    };
    if !password::verify(state.cpu_gate(), body.current_password, Some(hash)).await? {
        return Err(AppError::validation([(
            "currentPassword",
            "is not correct",
        )]));
    }
    let new_hash = password::hash(state.cpu_gate(), body.new_password).await?;
    let user_id = user.id.clone();
    let keep = auth.session.session_id.clone();
    let ended = state
        .db()
        .write(move |tx| {
            tx.prepare_cached(
                "UPDATE users SET password_hash = ?1, requires_password_change = 0 WHERE id = ?2",
            )?
            .execute(rusqlite::params![new_hash, user_id])?;
            Sessions::delete_all(tx, &user_id, Some(&keep))
        })
        .await?;
    state.sessions().forget_all();
    if user.requires_password_change {
        let path = initial_password_path(&state.config().data_dir);
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::info!("removed {} after the password change", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(error = %e, "could not remove {}", path.display()),
        }
    }
    tracing::info!(user = %user.username, "password changed");
    Ok(ApiResponse::ok(&PasswordChanged {
        other_sessions_ended: ended,
    })
    .into_response())
}

/// `GET /auth/sessions`.
pub async fn list_sessions(
    State(state): State<AppState>,
    CurrentUser(auth): CurrentUser,
) -> AppResult<Response> {
    let user_id = auth.user_id().to_owned();
    let current = auth.session.session_id.clone();
    let now = state.clock().now_ms();
    let list = state
        .db()
        .run(move |conn| Sessions::list(conn, &user_id, &current, now))
        .await?;
    Ok(ApiResponse::with_meta(
        &list,
        &crate::response::PageMeta {
            limit: 100,
            next_cursor: None,
        },
    )
    .into_response())
}

/// `DELETE /auth/sessions/{id}`: only one's own; another's id is simply not found.
pub async fn revoke_session(
    State(state): State<AppState>,
    CurrentUser(auth): CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let user_id = auth.user_id().to_owned();
    let deleted = state
        .db()
        .write(move |tx| Sessions::delete_one(tx, &user_id, &id))
        .await?;
    if !deleted {
        return Err(AppError::new(ErrorCode::NotFound));
    }
    state.sessions().forget_all();
    Ok(ApiResponse::ok(&serde_json::json!({ "revoked": true })).into_response())
}
