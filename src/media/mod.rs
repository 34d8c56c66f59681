//! Media requests through Overseerr (SPEC section 6): search, discover rows and details (cached, annotated with
//! what was requested here), creating requests as the user's own Overseerr account, the request
//! lists, follow, admin approve/decline, the Overseerr webhook, and the reconciliation job that
//! heals lost webhooks.
//!
//! The rules of a new request live in [`requests::create`]: one active request per title (the
//! database enforces it with a partial unique index, and an in-process lock per title makes the
//! second of two concurrent requests wait and then see the first), the hourly quota counted from
//! the table, and nothing stored unless Overseerr accepted the request.

pub mod changes;
pub mod discover;
pub mod reconcile;
pub mod requests;
pub mod search;
pub mod store;
pub mod webhook;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::Method;

use crate::cache::{CacheStats, TtlCache};
use crate::clock::SharedClock;
use crate::error::{AppError, ErrorCode};
use crate::integrations::overseerr::{
    DiscoverRow, MediaType, MovieDetails, RequestState, SearchPage, TvDetails,
};
use crate::routes::{Access, Routes};

/// Search answers are shared by every user for this long (SPEC section 7).
pub const SEARCH_TTL: Duration = Duration::from_secs(120);
/// Title details.
pub const DETAILS_TTL: Duration = Duration::from_secs(300);
/// A user's Overseerr account id (found by reading Overseerr's whole user list).
pub const USER_MAP_TTL: Duration = Duration::from_secs(3600);
/// A user with no Overseerr account is looked up again after this long.
pub const USER_MAP_MISS_TTL: Duration = Duration::from_secs(300);
/// How long a webhook about a request id no row has yet is kept for that row (a create call
/// answers within its timeout; after this the change is reconciliation's).
pub const EARLY_WEBHOOK_TTL_MS: i64 = 600_000;
/// At most this many such webhooks are kept (the oldest goes first).
pub const EARLY_WEBHOOK_MAX: usize = 256;

/// A webhook's change kept for the row that is about to appear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EarlyChange {
    pub to: RequestState,
    pub reason: Option<String>,
    at_ms: i64,
}

/// A title's details, either kind.
#[derive(Debug, Clone)]
pub enum Details {
    Movie(MovieDetails),
    Tv(TvDetails),
}

/// The key of the per-title lock: `(tmdbId, mediaType, is4k)`.
type TitleKey = (i64, MediaType, bool);

/// The caches and locks of the feature, kept in the state.
pub struct MediaState {
    pub(crate) search: TtlCache<(String, u32), Arc<SearchPage>>,
    /// Discover rows by row and page, kept as long as search answers ([`SEARCH_TTL`]).
    pub(crate) discover: TtlCache<(DiscoverRow, u32), Arc<SearchPage>>,
    pub(crate) details: TtlCache<(MediaType, i64), Option<Arc<Details>>>,
    /// MediaNest user id -> Overseerr user id (`None`: no account there).
    pub(crate) user_map: TtlCache<String, Option<i64>>,
    titles: Mutex<HashMap<TitleKey, Arc<tokio::sync::Mutex<()>>>>,
    /// Per-user locks: a user's requests count the quota and insert in turn.
    users: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Overseerr request id -> the change a webhook brought before the row existed.
    early: Mutex<HashMap<i64, EarlyChange>>,
}

impl std::fmt::Debug for MediaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaState").finish_non_exhaustive()
    }
}

impl MediaState {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            search: TtlCache::new("overseerr_search", 512, clock.clone()),
            discover: TtlCache::new("overseerr_discover", 256, clock.clone()),
            details: TtlCache::new("overseerr_details", 1024, clock.clone()),
            user_map: TtlCache::new("overseerr_users", 1024, clock),
            titles: Mutex::new(HashMap::new()),
            users: Mutex::new(HashMap::new()),
            early: Mutex::new(HashMap::new()),
        }
    }

    /// Keeps the change a webhook brought for Overseerr request `overseerr_id`, which no row
    /// has yet; a later webhook about the same id replaces it. Bounded in age and number.
    pub(crate) fn hold_early(
        &self,
        overseerr_id: i64,
        to: RequestState,
        reason: Option<String>,
        now_ms: i64,
    ) {
        let mut early = self.early.lock().unwrap_or_else(|e| e.into_inner());
        early.retain(|_, c| now_ms - c.at_ms < EARLY_WEBHOOK_TTL_MS);
        if early.len() >= EARLY_WEBHOOK_MAX
            && !early.contains_key(&overseerr_id)
            && let Some(oldest) = early.iter().min_by_key(|(_, c)| c.at_ms).map(|(k, _)| *k)
        {
            early.remove(&oldest);
        }
        early.insert(
            overseerr_id,
            EarlyChange {
                to,
                reason,
                at_ms: now_ms,
            },
        );
    }

    /// Takes the change kept for `overseerr_id`, if one is (and is not too old).
    pub(crate) fn take_early(&self, overseerr_id: i64, now_ms: i64) -> Option<EarlyChange> {
        let mut early = self.early.lock().unwrap_or_else(|e| e.into_inner());
        early
            .remove(&overseerr_id)
            .filter(|c| now_ms - c.at_ms < EARLY_WEBHOOK_TTL_MS)
    }

    /// The counters of the caches.
    pub fn stats(&self) -> Vec<CacheStats> {
        vec![
            self.search.stats(),
            self.discover.stats(),
            self.details.stats(),
            self.user_map.stats(),
        ]
    }

    /// Forgets everything learnt from Overseerr (its settings changed).
    pub fn clear(&self) {
        self.search.clear();
        self.discover.clear();
        self.details.clear();
        self.user_map.clear();
    }

    /// Takes the lock of one title: concurrent requests for it take turns, so the second sees
    /// the row the first stored. Locks nobody holds are dropped on the way.
    pub(crate) async fn lock_title(&self, key: TitleKey) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut titles = self.titles.lock().unwrap_or_else(|e| e.into_inner());
            titles.retain(|_, lock| Arc::strong_count(lock) > 1);
            titles.entry(key).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// Takes the lock of one user: their requests take turns from the quota count to the
    /// insert, so parallel requests for different titles cannot all pass a count that none of
    /// them has added to yet. Taken after the title lock, never before.
    pub(crate) async fn lock_user(&self, user_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
            users.retain(|_, lock| Arc::strong_count(lock) > 1);
            users.entry(user_id.to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

/// The "Seerr is not set up" error.
pub(crate) fn not_configured() -> AppError {
    AppError::Api {
        code: ErrorCode::ServiceNotConfigured,
        service: Some(crate::integrations::overseerr::SERVICE_NAME),
        details: None,
        retry_after: None,
    }
}

/// The routes of the feature.
pub fn routes() -> Routes {
    Routes::new()
        .add(Method::GET, "/media/search", Access::User, search::search)
        .add(
            Method::GET,
            "/media/discover/{row}",
            Access::User,
            discover::discover_row,
        )
        .add(
            Method::GET,
            "/media/movie/{tmdbId}",
            Access::User,
            search::movie,
        )
        .add(Method::GET, "/media/tv/{tmdbId}", Access::User, search::tv)
        .add(
            Method::POST,
            "/media/requests",
            Access::User,
            requests::create,
        )
        .add(
            Method::GET,
            "/media/requests",
            Access::User,
            requests::list_mine,
        )
        .add(
            Method::GET,
            "/media/requests/{id}",
            Access::User,
            requests::get_one,
        )
        .add(
            Method::DELETE,
            "/media/requests/{id}",
            Access::User,
            requests::delete_one,
        )
        .add(
            Method::POST,
            "/media/requests/{id}/follow",
            Access::User,
            requests::follow,
        )
        .add(
            Method::DELETE,
            "/media/requests/{id}/follow",
            Access::User,
            requests::unfollow,
        )
        .add(
            Method::GET,
            "/admin/requests",
            Access::Admin,
            requests::list_all,
        )
        .add(
            Method::POST,
            "/admin/requests/{id}/approve",
            Access::Admin,
            requests::approve,
        )
        .add(
            Method::POST,
            "/admin/requests/{id}/decline",
            Access::Admin,
            requests::decline,
        )
        // The Seerr name, and the old one that existing Overseerr setups post to.
        .add(
            Method::POST,
            "/webhooks/seerr",
            Access::Secret,
            webhook::receive,
        )
        .add(
            Method::POST,
            "/webhooks/overseerr",
            Access::Secret,
            webhook::receive,
        )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::SystemClock;

    #[test]
    fn early_webhooks_are_bounded_in_number_and_age_and_taken_once() {
        let media = MediaState::new(Arc::new(SystemClock));
        for id in 0..EARLY_WEBHOOK_MAX as i64 + 10 {
            media.hold_early(id, RequestState::Approved, None, 1000 + id);
        }
        assert_eq!(media.early.lock().unwrap().len(), EARLY_WEBHOOK_MAX);
        assert_eq!(media.take_early(0, 2000), None, "the oldest went first");
        let last = EARLY_WEBHOOK_MAX as i64 + 9;
        media.hold_early(last, RequestState::Declined, Some("no".into()), 2000);
        let got = media.take_early(last, 2001).unwrap();
        assert_eq!(
            (got.to, got.reason.as_deref()),
            (RequestState::Declined, Some("no"))
        );
        assert_eq!(media.take_early(last, 2001), None, "taken once");
        assert_eq!(
            media.take_early(20, 1020 + EARLY_WEBHOOK_TTL_MS),
            None,
            "too old"
        );
    }
}
