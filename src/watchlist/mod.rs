//! Plex watchlist auto-requests (issue 16): a Plex user may switch on "request what I add to my
//! Plex watchlist"; a background sync ([`sync`]) then reads their watchlist from plex.tv's
//! discover provider ([`client`]) with their stored Plex token and turns new items into their
//! requests, through the same code path as `POST /media/requests`.
//!
//! This module owns `GET/PUT /me/watchlist`, the `watchlist_*` tables ([`store`]) and the
//! provider client; it reaches other features only through their public functions
//! (`media::requests::request_title`, `media::store::follow`, `notifications::create`). The
//! admin's switch is the config key `plex.watchlist_sync`: off, no check runs and nobody can
//! switch the sync on.

pub mod client;
pub mod store;
pub mod sync;

use std::sync::Arc;

use axum::extract::State;
use axum::http::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Notify;

use crate::auth::CurrentUser;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::ApiJson;
use crate::response::ApiResponse;
use crate::routes::{Access, Routes};
use crate::state::AppState;
use crate::time::Rfc3339Ms;

use client::PlexDiscover;

/// The feature's state, kept in [`AppState`].
pub struct Watchlist {
    client: PlexDiscover,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Watchlist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchlist")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl Watchlist {
    /// The provider client for `config.plex.discover_url`, sending `client_id` as
    /// `X-Plex-Client-Identifier`.
    pub fn new(config: &Config, client_id: &str, clock: SharedClock) -> Self {
        Self {
            client: PlexDiscover::new(&config.plex.discover_url, client_id, clock),
            wake: Arc::new(Notify::new()),
        }
    }

    /// The discover provider client.
    pub fn client(&self) -> &PlexDiscover {
        &self.client
    }

    /// What the sync loop waits on besides its timer.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Wakes the sync loop (a user switched the sync on, or signed in with Plex again).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// The user's routes (under `/api/v1`).
pub fn routes() -> Routes {
    Routes::new()
        .add(Method::GET, "/me/watchlist", Access::User, get_my_watchlist)
        .add(
            Method::PUT,
            "/me/watchlist",
            Access::User,
            update_my_watchlist,
        )
}

/// `GET/PUT /me/watchlist` answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct View {
    /// Whether the admin left the feature on.
    available: bool,
    /// Whether the user signed in with Plex (has a stored token): only they can use it.
    plex_linked: bool,
    enabled: bool,
    last_sync_at: Option<Rfc3339Ms>,
    next_check_at: Option<Rfc3339Ms>,
    /// `ok` or `failed` (plex.tv or Seerr unreachable; retried later).
    last_result: Option<String>,
    paused: bool,
    /// `token_expired` (sign in with Plex again to resume) or `no_token`.
    paused_reason: Option<String>,
    /// Whether an item waits for the user's request quota.
    waiting_for_quota: bool,
}

async fn view(state: &AppState, user_id: &str) -> AppResult<View> {
    let id = user_id.to_owned();
    let (linked, sync) = state
        .db()
        .read(move |conn| {
            let linked: bool = conn
                .prepare_cached("SELECT plex_token IS NOT NULL FROM users WHERE id = ?1")?
                .query_row([&id], |r| r.get(0))?;
            Ok((linked, store::get(conn, &id)?))
        })
        .await?;
    Ok(View {
        available: state.config().plex.watchlist_sync,
        plex_linked: linked,
        enabled: sync.enabled,
        last_sync_at: sync.last_sync_at.map(Rfc3339Ms),
        next_check_at: sync
            .next_check_at
            .filter(|_| sync.enabled && sync.paused_at.is_none())
            .map(Rfc3339Ms),
        last_result: sync.last_result,
        paused: sync.paused_at.is_some(),
        paused_reason: sync.paused_reason,
        waiting_for_quota: sync.quota_told,
    })
}

/// `GET /me/watchlist`.
pub async fn get_my_watchlist(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<ApiResponse> {
    Ok(ApiResponse::ok(&view(&state, user.user_id()).await?))
}

/// `PUT /me/watchlist` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    enabled: bool,
}

/// `PUT /me/watchlist` `{enabled}`: switching on needs the admin's switch on and a Plex
/// sign-in; the first check is due at once.
pub async fn update_my_watchlist(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<UpdateBody>,
) -> AppResult<ApiResponse> {
    let current = view(&state, user.user_id()).await?;
    if body.enabled && !current.available {
        return Err(AppError::new(ErrorCode::Conflict).with_details(json!({
            "reason": "The server's admin turned Plex watchlist requests off.",
        })));
    }
    if body.enabled && !current.plex_linked {
        return Err(AppError::new(ErrorCode::Conflict).with_details(json!({
            "reason": "Sign in with Plex first: only Plex accounts have a watchlist here.",
        })));
    }
    let now = state.clock().now_ms();
    let id = user.user_id().to_owned();
    let enabled = body.enabled;
    state
        .db()
        .write(move |tx| store::set_enabled(tx, &id, enabled, now, now))
        .await?;
    if enabled {
        state.watchlist().wake();
    }
    tracing::info!(user_id = %user.user_id(), enabled, "watchlist sync switched");
    Ok(ApiResponse::ok(&view(&state, user.user_id()).await?))
}
