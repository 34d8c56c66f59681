//! Sign-in with Plex (the PIN flow of UPSTREAMS.md 1.2).
//!
//! `POST /auth/plex/pin` creates a plex.tv PIN and keeps it server-side under an id of our own,
//! bound to the browser that asked for it by a random secret in an HttpOnly cookie; the plex.tv
//! PIN id never leaves the server, and a PIN created by one browser cannot be completed by
//! another. `POST /auth/plex/pin/{pinId}/poll` asks plex.tv whether the user approved; once they
//! have, it finds or creates the MediaNest user (subject to `auth.plex_signup`), stores the Plex
//! token encrypted, and signs the browser in exactly as a password sign-in does.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::handlers::signed_in_response;
use super::session::{new_token, read_cookie};
use crate::cache::TtlCache;
use crate::clock::SharedClock;
use crate::config::PlexSignup;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::ClientIp;
use crate::integrations::plextv::{PinState, PlexTv, PlexUser};
use crate::notifications;
use crate::response::ApiResponse;
use crate::service_config::ServiceName;
use crate::state::AppState;
use crate::time::rfc3339;
use crate::users::{self, Status, User};

/// The cookie that binds a pending PIN to the browser that created it.
pub const PIN_COOKIE: &str = "medianest_pin";
/// How often the dashboard should poll.
pub const POLL_INTERVAL_MS: u64 = 2000;
/// How long an expired PIN is remembered, so its poll answers 410 rather than 404.
const EXPIRED_GRACE: Duration = Duration::from_secs(3600);

/// A PIN waiting for the user to approve it on app.plex.tv.
#[derive(Debug)]
pub struct PendingPin {
    plex_pin_id: i64,
    expires_at: i64,
    browser_hash: [u8; 32],
}

/// The Plex sign-in machinery kept in the state.
pub struct PlexAuth {
    plextv: PlexTv,
    pins: TtlCache<String, Arc<PendingPin>>,
    machine_ids: TtlCache<String, String>,
}

impl std::fmt::Debug for PlexAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlexAuth").finish_non_exhaustive()
    }
}

impl PlexAuth {
    pub fn new(tv_url: &str, client_id: &str, clock: SharedClock) -> Self {
        Self {
            plextv: PlexTv::new(tv_url, client_id, clock.clone()),
            pins: TtlCache::new("plex_pins", 10_000, clock.clone()),
            machine_ids: TtlCache::new("plex_machine_id", 8, clock),
        }
    }

    /// The plex.tv client.
    pub fn plextv(&self) -> &PlexTv {
        &self.plextv
    }
}

fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PinCreated {
    pin_id: String,
    code: String,
    auth_url: String,
    expires_at: String,
    poll_interval_ms: u64,
}

/// `POST /auth/plex/pin`.
pub async fn create_pin(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    external: crate::http::ExternalBase,
) -> AppResult<Response> {
    let now = state.clock().now_ms();
    let window = match ip {
        Some(ip) => Some(
            state
                .limiters()
                .pin_hit(ip, now)
                .map_err(|wait| AppError::new(ErrorCode::RateLimited).with_retry_after(wait))?,
        ),
        None => None,
    };
    let plex = state.plex_auth();
    let pin = plex.plextv.create_pin().await?;
    let pin_id = new_token();
    let secret = new_token();
    let ttl_ms = (pin.expires_at - now).max(0) as u64;
    plex.pins.insert(
        pin_id.clone(),
        Arc::new(PendingPin {
            plex_pin_id: pin.id,
            expires_at: pin.expires_at,
            browser_hash: hash_secret(&secret),
        }),
        Duration::from_millis(ttl_ms) + EXPIRED_GRACE,
    );
    let body = PinCreated {
        // Once approved, Plex sends its tab back to our home page (under the base path): by
        // then the polling tab has usually signed in, and the shared cookie signs this one in.
        auth_url: plex.plextv.auth_url(
            &state.config().plex.app_url,
            &pin.code,
            Some(&external.url("/")),
        ),
        pin_id,
        code: pin.code,
        expires_at: rfc3339(pin.expires_at),
        poll_interval_ms: POLL_INTERVAL_MS,
    };
    let mut response = ApiResponse::ok(&body).into_response();
    let cookie = format!(
        "{PIN_COOKIE}={secret}; Path={}/api/v1/auth/plex; HttpOnly; SameSite=Lax; Max-Age={}{}",
        state.config().server.base(),
        ttl_ms / 1000 + 60,
        if state.config().server.cookies_secure() {
            "; Secure"
        } else {
            ""
        }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    if let Some(w) = window {
        w.apply(&mut response);
    }
    Ok(response)
}

#[derive(Debug, Serialize)]
struct Pending {
    authorized: bool,
}

/// `POST /auth/plex/pin/{pinId}/poll`.
pub async fn poll_pin(
    State(state): State<AppState>,
    Path(pin_id): Path<String>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let plex = state.plex_auth();
    let not_found = || AppError::new(ErrorCode::PinNotFound);
    let pending = plex.pins.get(&pin_id).ok_or_else(not_found)?;
    let secret = read_cookie(&headers, PIN_COOKIE).ok_or_else(not_found)?;
    let same_browser: bool = hash_secret(secret).ct_eq(&pending.browser_hash).into();
    if !same_browser {
        return Err(not_found());
    }
    let now = state.clock().now_ms();
    if now >= pending.expires_at {
        return Err(AppError::new(ErrorCode::PinExpired));
    }
    let pin = match plex.plextv.get_pin(pending.plex_pin_id).await? {
        PinState::NotFound => {
            plex.pins.invalidate(&pin_id);
            return Err(not_found());
        }
        PinState::Found(pin) => pin,
    };
    let Some(token) = pin.auth_token else {
        return Ok(ApiResponse::ok(&Pending { authorized: false }).into_response());
    };
    // Claim the PIN: of two polls racing past this point, one signs in and the other finds
    // nothing, as a second poll after the first would.
    if plex.pins.take(&pin_id).is_none() {
        return Err(not_found());
    }
    let account = plex
        .plextv
        .user(&token)
        .await?
        .or_error(|| AppError::new(ErrorCode::PlexTokenExpired))?;
    let user = sign_up_or_refresh(&state, &account, &token, now).await?;
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let user_id = user.id.clone();
    let sessions_state = state.clone();
    let session = state
        .db()
        .write(move |tx| {
            tx.prepare_cached("UPDATE users SET last_login_at = ?1 WHERE id = ?2")?
                .execute(rusqlite::params![now, user_id])?;
            sessions_state
                .sessions()
                .create(tx, &user_id, false, ua.as_deref(), None, now)
        })
        .await?;
    let user = User {
        last_login_at: Some(now),
        ..user
    };
    tracing::info!(user = %user.username, "signed in with Plex");
    let mut response = signed_in_response(&state, &user, &session, Some(true));
    let clear = format!(
        "{PIN_COOKIE}=; Path={}/api/v1/auth/plex; HttpOnly; SameSite=Lax; Max-Age=0{}",
        state.config().server.base(),
        if state.config().server.cookies_secure() {
            "; Secure"
        } else {
            ""
        }
    );
    if let Ok(v) = HeaderValue::from_str(&clear) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// Finds the user for a Plex account (refreshing what Plex knows) or creates one when the
/// sign-up policy allows it.
async fn sign_up_or_refresh(
    state: &AppState,
    account: &PlexUser,
    token: &str,
    now: i64,
) -> AppResult<User> {
    let plex_id = account.id.to_string();
    let encrypted = state.cipher().encrypt(token)?;
    let lookup_id = plex_id.clone();
    let existing = state
        .db()
        .run(move |conn| users::by_plex_id(conn, &lookup_id))
        .await?;
    if let Some(user) = existing {
        if user.status != Status::Active {
            return Err(AppError::new(ErrorCode::AccountSuspended));
        }
        let account = account.clone();
        let id = user.id.clone();
        state
            .db()
            .write(move |tx| {
                // The username or email may now belong to another account here; keep the old
                // one then.
                tx.prepare_cached(
                    "UPDATE users SET plex_username = ?1, name = ?2, image = ?3, plex_token = ?4,
                            email = CASE WHEN ?5 IS NULL OR EXISTS
                                (SELECT 1 FROM users WHERE email = ?5 AND id <> ?6)
                              THEN email ELSE ?5 END,
                            username = CASE WHEN EXISTS
                                (SELECT 1 FROM users WHERE username = ?1 AND id <> ?6)
                              THEN username ELSE ?1 END
                     WHERE id = ?6",
                )?
                .execute(rusqlite::params![
                    account.username,
                    account.title,
                    account.thumb,
                    encrypted,
                    account.email,
                    id
                ])?;
                // A fresh token: a watchlist sync paused on the old one resumes.
                crate::watchlist::store::resume(tx, &id, now)
            })
            .await
            .map(|resumed| {
                if resumed {
                    state.watchlist().wake();
                }
            })?;
        state.sessions().forget_all();
        let id = user.id.clone();
        return state
            .db()
            .run(move |conn| users::by_id(conn, &id))
            .await?
            .ok_or_else(|| AppError::new(ErrorCode::Unauthorized));
    }

    match state.config().auth.plex_signup {
        PlexSignup::Open => {}
        PlexSignup::Closed => return Err(AppError::new(ErrorCode::PlexSignupClosed)),
        PlexSignup::ServerMembers => {
            if !is_server_member(state, account).await? {
                tracing::info!(plex_user = %account.username, "refused a Plex sign-up: not a member of this server");
                return Err(AppError::new(ErrorCode::PlexSignupClosed));
            }
        }
    }

    let account = account.clone();
    let id = users::new_id();
    let new_id = id.clone();
    let notified = state
        .db()
        .write(move |tx| {
            let taken = |sql: &str, value: &str| -> AppResult<bool> {
                Ok(tx.prepare_cached(sql)?.query_row([value], |r| r.get(0))?)
            };
            // A local account may already use the Plex username or email.
            let username = if taken(
                "SELECT EXISTS (SELECT 1 FROM users WHERE username = ?1)",
                &account.username,
            )? {
                format!("{}-{}", account.username, account.id)
            } else {
                account.username.clone()
            };
            let email = match &account.email {
                Some(e) if !taken("SELECT EXISTS (SELECT 1 FROM users WHERE email = ?1)", e)? => {
                    Some(e.clone())
                }
                _ => None,
            };
            tx.prepare_cached(
                "INSERT INTO users (id, username, email, name, plex_id, plex_username, plex_token,
                                    image, role, status, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'user', 'active', ?9)",
            )?
            .execute(rusqlite::params![
                new_id,
                username,
                email,
                account.title,
                plex_id,
                account.username,
                encrypted,
                account.thumb,
                now
            ])?;
            // Tell the admins someone new signed up.
            let message = format!(
                "{} signed in with Plex for the first time.",
                account.username
            );
            let metadata =
                serde_json::json!({ "userId": new_id, "plexUsername": account.username });
            notifications::create_for_admins(
                tx,
                "user.signup",
                "New user",
                &message,
                Some(metadata),
                now,
            )
        })
        .await?;
    notifications::publish_all_created(state.events(), &notified);
    tracing::info!(user_id = %id, "created a user from a Plex sign-in");
    state
        .db()
        .run(move |conn| users::by_id(conn, &id))
        .await?
        .ok_or_else(|| AppError::internal("the new user vanished"))
}

/// Is the account the owner of the configured Plex server, or in the owner's share list for it?
async fn is_server_member(state: &AppState, account: &PlexUser) -> AppResult<bool> {
    let clients = crate::services::clients(state).await?;
    let admin_token = clients
        .config(ServiceName::Plex)
        .and_then(|c| c.api_key.clone());
    let (Some(server), Some(admin_token)) = (clients.plex.clone(), admin_token) else {
        // Nobody can be checked against a server that is not set up: say so.
        return Err(AppError::Api {
            code: ErrorCode::ServiceNotConfigured,
            service: Some("Plex"),
            details: None,
            retry_after: None,
        });
    };
    let refused = || AppError::Upstream {
        code: ErrorCode::UpstreamError,
        service: "plex.tv",
        detail: "the Plex server token was refused".into(),
        retry_after: None,
    };
    let auth = state.plex_auth();
    let owner = auth.plextv.user(&admin_token).await?.or_error(refused)?;
    if owner.id == account.id {
        return Ok(true);
    }
    let machine_id = auth
        .machine_ids
        .get_or_load(
            server.base_url().to_owned(),
            Duration::from_secs(3600),
            move || async move { Ok::<_, AppError>(server.identity().await?.machine_identifier) },
        )
        .await?
        .value;
    let shares = auth
        .plextv
        .shared_users(&admin_token)
        .await?
        .or_error(refused)?;
    Ok(shares
        .iter()
        .any(|s| s.id == account.id && s.server_machine_ids.contains(&machine_id)))
}
