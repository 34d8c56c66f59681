//! `GET /dashboard`: everything the home page shows, in one call (SPEC section 6).
//!
//! The answer has a per-user part (the user, request counts and the five newest requests,
//! download counts, unread notifications, recently added Plex items), cached for 15 s as
//! finished JSON bytes and dropped when that user's requests, downloads or notifications change,
//! and the service list, composed at answer time from the status cache's bytes. A hot dashboard
//! is therefore two byte copies.
//!
//! Dropping: the request code drops the owner's and followers' entries itself before it
//! answers; everything else (downloads, notifications made elsewhere) is caught by [`watch`],
//! which follows the live-event bus and drops the entries of the users an event is for.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use crate::auth::CurrentUser;
use crate::cache::{CacheStats, TtlCache};
use crate::clock::SharedClock;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::events::{Audience, kind};
use crate::media::store::{self as requests, RequestRow};
use crate::routes::{Access, Routes};
use crate::state::AppState;
use crate::users::{self, UserView};

/// How long a user's part is kept.
pub const TTL: Duration = Duration::from_secs(15);
/// How many recent requests the home page shows.
const RECENT: u32 = 5;

/// The per-user dashboard cache.
pub struct DashboardCache {
    parts: TtlCache<String, Bytes>,
}

impl std::fmt::Debug for DashboardCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardCache").finish_non_exhaustive()
    }
}

impl DashboardCache {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            parts: TtlCache::new("dashboard", 4096, clock),
        }
    }

    /// Drops one user's part.
    pub fn forget(&self, user_id: &str) {
        self.parts.invalidate(&user_id.to_owned());
    }

    /// Drops every part.
    pub fn clear(&self) {
        self.parts.clear();
    }

    pub fn stats(&self) -> CacheStats {
        self.parts.stats()
    }
}

pub fn routes() -> Routes {
    Routes::new().add(Method::GET, "/dashboard", Access::User, dashboard)
}

/// The per-user part.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    user: UserView,
    requests: RequestCounts,
    downloads: DownloadCounts,
    notifications: NotificationCounts,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestCounts {
    total: i64,
    by_status: std::collections::BTreeMap<String, i64>,
    recent: Vec<RequestRow>,
}

#[derive(Serialize)]
struct DownloadCounts {
    active: i64,
    queued: i64,
}

#[derive(Serialize)]
struct NotificationCounts {
    unread: i64,
}

/// Reads the user's part, adds the recently added Plex items, and serializes it without its
/// closing brace, ready to be extended with the services.
async fn load_part(state: &AppState, user_id: String) -> AppResult<Bytes> {
    let recently_added = recently_added_json(state, &user_id).await;
    let part = state
        .db()
        .run(move |conn| {
            // One read transaction: every count sees the same moment.
            let tx = conn.transaction()?;
            let user = users::by_id(&tx, &user_id)?
                .ok_or_else(|| AppError::new(ErrorCode::Unauthorized))?;
            let by_status: std::collections::BTreeMap<String, i64> =
                requests::counts_by_status(&tx, &user_id)?
                    .into_iter()
                    .collect();
            let recent = requests::recent(&tx, &user_id, RECENT)?;
            let (active, queued) = download_counts(&tx, &user_id)?;
            let unread = crate::notifications::unread_count(&tx, &user_id)?;
            Ok(Part {
                user: user.view(),
                requests: RequestCounts {
                    total: by_status.values().sum(),
                    by_status,
                    recent,
                },
                downloads: DownloadCounts { active, queued },
                notifications: NotificationCounts { unread },
            })
        })
        .await?;
    let mut bytes = serde_json::to_vec(&part).map_err(AppError::internal)?;
    // `{...}` -> `{...` so the other parts can follow.
    bytes.pop();
    bytes.extend_from_slice(b",\"recentlyAdded\":");
    bytes.extend_from_slice(&recently_added);
    Ok(Bytes::from(bytes))
}

/// Running and queued downloads of a user.
fn download_counts(conn: &rusqlite::Connection, user_id: &str) -> AppResult<(i64, i64)> {
    let mut stmt = conn.prepare_cached(
        "SELECT status, count(*) FROM youtube_downloads
          WHERE user_id = ?1 AND status IN ('downloading', 'queued')
          GROUP BY status",
    )?;
    let mut active = 0;
    let mut queued = 0;
    for row in stmt.query_map([user_id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })? {
        let (status, n) = row?;
        if status == "downloading" {
            active = n;
        } else {
            queued = n;
        }
    }
    Ok((active, queued))
}

/// `GET /dashboard`.
pub async fn dashboard(State(state): State<AppState>, user: CurrentUser) -> AppResult<Response> {
    let user_id = user.user_id().to_owned();
    let loader_state = state.clone();
    let loader_user = user_id.clone();
    let part = state
        .dashboard()
        .parts
        .get_or_load(user_id, TTL, move || async move {
            load_part(&loader_state, loader_user).await
        })
        .await?;
    let hit = part.is_hit();
    let services = crate::services::api::list_json(&state).await?;
    let mut body = Vec::with_capacity(part.value.len() + services.len() + 48);
    body.extend_from_slice(b"{\"success\":true,\"data\":");
    body.extend_from_slice(&part.value);
    body.extend_from_slice(b",\"services\":");
    body.extend_from_slice(&services);
    body.extend_from_slice(b"}}");
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    response.headers_mut().insert(
        "x-cache",
        HeaderValue::from_static(if hit { "HIT" } else { "MISS" }),
    );
    Ok(response)
}

/// Recently added Plex items for the home page; `[]` when Plex is not set up, cannot be reached
/// or is slow (the rest of the home page must not fail because of Plex).
/// Plex gets this long before the home page goes out without its items (a hanging Plex must not
/// hold the whole page for the service's full timeout).
const PLEX_WAIT: Duration = Duration::from_millis(1500);

async fn recently_added_json(state: &AppState, user_id: &str) -> Bytes {
    tokio::time::timeout(PLEX_WAIT, crate::plex::recently_added_json(state, user_id))
        .await
        .unwrap_or_else(|_| Bytes::from_static(b"[]"))
}

/// Follows the event bus and drops the parts of the users an event concerns. Download progress
/// does not change the counts and is skipped; a lagging receiver drops everything. It
/// subscribes when called, so no event published after this returns is missed.
pub fn watch(state: AppState) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut events = state.events().subscribe();
    async move { follow(state, &mut events).await }
}

async fn follow(
    state: AppState,
    events: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<crate::events::Event>>,
) {
    let token = state.shutdown_token().clone();
    loop {
        let event = tokio::select! {
            () = token.cancelled() => return,
            event = events.recv() => event,
        };
        match event {
            Ok(event) => {
                if !matches!(
                    event.kind,
                    kind::DOWNLOAD_UPDATED | kind::NOTIFICATION_CREATED | kind::REQUEST_UPDATED
                ) {
                    continue;
                }
                match &event.audience {
                    Audience::User(id) => state.dashboard().forget(id),
                    Audience::Users(ids) | Audience::UsersAndAdmins(ids) => {
                        for id in ids {
                            state.dashboard().forget(id);
                        }
                    }
                    Audience::Admins | Audience::Everyone => state.dashboard().clear(),
                }
            }
            Err(RecvError::Lagged(_)) => state.dashboard().clear(),
            Err(RecvError::Closed) => return,
        }
    }
}
