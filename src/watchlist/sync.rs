//! The watchlist sync: checks each enabled user's Plex watchlist when due and turns new items
//! into requests of that user (Seerr's `server/lib/watchlistsync.ts` does the same job; its
//! rules are followed where they fit: shows are asked for with all seasons, available titles
//! are skipped, and a failure on one item or user never stops the others).
//!
//! - [`run`] is the background loop started with the server; [`run_due`] is one pass over the
//!   users that are due, which the loop and the tests call.
//! - At most [`MAX_CHECKS`] users are checked at once; provider calls go through the
//!   [`PlexDiscover`](super::client::PlexDiscover) gateway (blocking pool, bounded timeout,
//!   breaker). Each user's next check is the interval later plus up to a tenth at random, so
//!   users drift apart instead of hitting plex.tv together.
//! - Per new item (items handled before are in `watchlist_items` and never asked for again):
//!   its TMDB id from the online metadata; available: noted and skipped; an active request
//!   here by someone else: followed; else a request through
//!   [`request_title`](crate::media::requests::request_title), the same path as
//!   `POST /media/requests`, marked `source = 'watchlist'`. Over quota: the item stays for a
//!   later check and the user is told once (until a request of theirs goes through again).
//! - plex.tv refusing the token (401, or 422 "Invalid token") pauses the user's sync and tells
//!   them once; the next Plex sign-in lifts the pause (`crate::auth::plex`). An outage or a
//!   timeout of the provider or of Seerr is not the user's doing: the check backs off (the
//!   interval doubled per failure, at most [`MAX_BACKOFF_MS`]) and never pauses.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;

use super::client::{ItemKind, PAGE_SIZE, WatchlistEntry};
use super::store::{self, HandledItem, PAUSED_NO_TOKEN, PAUSED_TOKEN_EXPIRED};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::integrations::overseerr::{MediaStatus, MediaType, Seasons};
use crate::integrations::plextv::TokenOutcome;
use crate::media::Details;
use crate::media::requests::{NewInput, Requester, request_title};
use crate::media::store::RequestSource;
use crate::notifications;
use crate::state::AppState;

/// Users checked at once.
pub const MAX_CHECKS: usize = 4;
/// Users taken per pass (the rest are due in the next one, right after).
const PASS_USERS: u32 = 32;
/// The most watchlist items read per check (pages of [`PAGE_SIZE`]).
pub const MAX_ITEMS: u32 = 500;
/// The most new items looked up per check; the rest wait for the next check.
pub const MAX_NEW_PER_CHECK: usize = 25;
/// The longest backoff after failed checks.
pub const MAX_BACKOFF_MS: i64 = 6 * 3_600_000;
/// Longest sleep when nothing is due (the loop also wakes when a user switches the sync on).
const IDLE: Duration = Duration::from_secs(60);

/// Runs until shutdown; returns at once when the admin switched the feature off.
pub async fn run(state: AppState) {
    if !state.config().plex.watchlist_sync {
        return;
    }
    let wake = state.watchlist().waker();
    let shutdown = state.shutdown_token().clone();
    loop {
        let wait = match run_due(&state).await {
            Ok(_) => until_next(&state).await,
            Err(e) => {
                tracing::warn!(error = %e, "watchlist pass failed; trying again shortly");
                Duration::from_secs(5)
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

async fn until_next(state: &AppState) -> Duration {
    let next = state.db().read(store::next_due_at).await.ok().flatten();
    let now = state.clock().now_ms();
    match next {
        Some(at) if at > now => {
            Duration::from_millis(u64::try_from(at - now).unwrap_or(0)).min(IDLE)
        }
        Some(_) => Duration::from_millis(100),
        None => IDLE,
    }
}

/// One pass: checks every user whose check is due (at most [`MAX_CHECKS`] at once) and
/// returns how many were checked. Does nothing when the admin switched the feature off.
pub async fn run_due(state: &AppState) -> AppResult<usize> {
    if !state.config().plex.watchlist_sync {
        return Ok(0);
    }
    let now = state.clock().now_ms();
    let due = state
        .db()
        .read(move |conn| store::due(conn, now, PASS_USERS))
        .await?;
    let checked = due.len();
    futures_util::stream::iter(due)
        .for_each_concurrent(MAX_CHECKS, |user_id| async move {
            // Shutting down: the users not started yet are due again at the next start.
            if state.shutdown_token().is_cancelled() {
                return;
            }
            if let Err(e) = check_user(state, &user_id).await {
                tracing::warn!(user_id = %user_id, error = %e, "watchlist check failed");
                // Whatever it was, the user is not checked again at once.
                let now = state.clock().now_ms();
                let next = backoff_at(state, now, 1);
                let id = user_id.clone();
                let _ = state
                    .db()
                    .write(move |tx| store::finish_failed(tx, &id, now, next))
                    .await;
            }
        })
        .await;
    Ok(checked)
}

/// The interval in ms.
fn interval_ms(state: &AppState) -> i64 {
    i64::try_from(state.config().plex.watchlist_interval_mins)
        .unwrap_or(15)
        .saturating_mul(60_000)
}

/// `base` ms from `now`, plus up to a tenth of it at random.
fn jittered(now: i64, base: i64) -> i64 {
    let jitter = (base as f64 * 0.1 * rand::random::<f64>()) as i64;
    now.saturating_add(base).saturating_add(jitter)
}

/// When to look again after `failures` failed checks in a row.
fn backoff_at(state: &AppState, now: i64, failures: i64) -> i64 {
    let shift = u32::try_from(failures.clamp(1, 6) - 1).unwrap_or(0);
    let base = interval_ms(state)
        .saturating_mul(1 << shift)
        .min(MAX_BACKOFF_MS);
    jittered(now, base)
}

/// Why a check stopped early.
enum Stop {
    /// plex.tv refused the token.
    TokenRejected,
    /// The provider or Seerr failed (down, slow, odd answer): try again later.
    Outage(AppError),
}

/// What a check did, for the user's summary.
#[derive(Default)]
struct Done {
    requested: Vec<String>,
    followed: Vec<String>,
    over_quota: bool,
}

/// Checks one user's watchlist now.
pub async fn check_user(state: &AppState, user_id: &str) -> AppResult<()> {
    let now = state.clock().now_ms();
    let id = user_id.to_owned();
    let account: Option<(Option<String>, String, String)> = state
        .db()
        .read(move |conn| {
            use rusqlite::OptionalExtension;
            Ok(conn
                .prepare_cached("SELECT plex_token, role, status FROM users WHERE id = ?1")?
                .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?)
        })
        .await?;
    let Some((stored_token, role, status)) = account else {
        return Ok(());
    };
    if status != "active" {
        let next = jittered(now, interval_ms(state));
        let id = user_id.to_owned();
        return state
            .db()
            .write(move |tx| store::finish_ok(tx, &id, now, next))
            .await;
    }
    let Some(stored_token) = stored_token else {
        return pause(state, user_id, PAUSED_NO_TOKEN).await;
    };
    let token = state.cipher().decrypt(&stored_token)?;
    let who = Requester {
        user_id: user_id.to_owned(),
        is_admin: role == "admin",
    };

    let items = match read_watchlist(state, &token).await {
        Ok(items) => items,
        Err(Stop::TokenRejected) => return pause(state, user_id, PAUSED_TOKEN_EXPIRED).await,
        Err(Stop::Outage(e)) => return failed(state, user_id, &e).await,
    };
    let (items, complete) = items;
    let id = user_id.to_owned();
    let listed: HashSet<String> = items.iter().map(|i| i.rating_key.clone()).collect();
    let handled = state
        .db()
        .write(move |tx| {
            if complete {
                store::forget_unlisted(tx, &id, &listed)?;
            }
            store::handled_keys(tx, &id)
        })
        .await?;
    let fresh: Vec<WatchlistEntry> = items
        .into_iter()
        .filter(|i| !handled.contains(&i.rating_key))
        .take(MAX_NEW_PER_CHECK)
        .collect();

    let mut done = Done::default();
    let mut stop = None;
    for item in fresh {
        // Shutting down: stop between items (each is recorded as it is done), so shutdown waits
        // for one item at most; the rest are looked at by the next check.
        if state.shutdown_token().is_cancelled() {
            break;
        }
        // Switched off (or paused) while this check runs: nothing more in the user's name.
        let id = user_id.to_owned();
        let sync = state.db().read(move |conn| store::get(conn, &id)).await?;
        if !sync.enabled || sync.paused_at.is_some() {
            break;
        }
        match handle_item(state, &who, &token, &item, &mut done).await {
            Ok(Some(handled)) => {
                let id = user_id.to_owned();
                let now = state.clock().now_ms();
                state
                    .db()
                    .write(move |tx| store::record(tx, &id, &handled, now))
                    .await?;
            }
            // Left for a later check (over quota, or Seerr refused it for now).
            Ok(None) => {}
            Err(s) => {
                stop = Some(s);
                break;
            }
        }
        if done.over_quota {
            break;
        }
    }
    // The outcome is stored before the user is told, so a page that reloads the state when the
    // notification arrives shows this check.
    let finished = match stop {
        Some(Stop::TokenRejected) => pause(state, user_id, PAUSED_TOKEN_EXPIRED).await,
        Some(Stop::Outage(e)) => failed(state, user_id, &e).await,
        None => {
            let now = state.clock().now_ms();
            let next = jittered(now, interval_ms(state));
            let id = user_id.to_owned();
            state
                .db()
                .write(move |tx| store::finish_ok(tx, &id, now, next))
                .await
        }
    };
    tell(state, user_id, &done).await?;
    finished
}

/// The whole watchlist (up to [`MAX_ITEMS`]), and whether it was read whole: to the end, with
/// the same `totalSize` on every page. Pages go by offset, so a title removed while they are
/// read shifts the next one onto a page already read; such a read is not whole, and what it
/// missed must not be forgotten.
async fn read_watchlist(
    state: &AppState,
    token: &str,
) -> Result<(Vec<WatchlistEntry>, bool), Stop> {
    let client = state.watchlist().client();
    let mut items = Vec::new();
    let mut start = 0u32;
    let mut first_total = None;
    loop {
        let page = match client.watchlist_page(token, start, PAGE_SIZE).await {
            Ok(TokenOutcome::Accepted(page)) => page,
            Ok(TokenOutcome::Rejected) => return Err(Stop::TokenRejected),
            Err(e) => return Err(Stop::Outage(e)),
        };
        let steady = *first_total.get_or_insert(page.total_size) == page.total_size;
        items.extend(page.items);
        start = start.saturating_add(page.listed);
        if !steady {
            return Ok((items, false));
        }
        if page.listed == 0 || start >= page.total_size {
            return Ok((items, start == page.total_size));
        }
        if start >= MAX_ITEMS {
            return Ok((items, false));
        }
    }
}

fn handled(item: &WatchlistEntry, outcome: &'static str) -> HandledItem {
    HandledItem {
        rating_key: item.rating_key.clone(),
        title: item.title.clone(),
        media_type: None,
        tmdb_id: None,
        outcome,
        request_id: None,
    }
}

/// One new item: `Some` with what became of it, `None` to look at it again next time.
async fn handle_item(
    state: &AppState,
    who: &Requester,
    token: &str,
    item: &WatchlistEntry,
    done: &mut Done,
) -> Result<Option<HandledItem>, Stop> {
    if item.kind == ItemKind::Other {
        return Ok(Some(handled(item, "unmatched")));
    }
    let client = state.watchlist().client();
    let meta = match client.metadata(token, &item.rating_key).await {
        Ok(TokenOutcome::Accepted(meta)) => meta,
        Ok(TokenOutcome::Rejected) => return Err(Stop::TokenRejected),
        Err(e) => return Err(Stop::Outage(e)),
    };
    let (Some(meta), kind) = (meta, item.kind) else {
        return Ok(Some(handled(item, "unmatched")));
    };
    let media_type = match (meta.kind, kind) {
        (ItemKind::Movie, _) | (ItemKind::Other, ItemKind::Movie) => MediaType::Movie,
        (ItemKind::Show, _) | (ItemKind::Other, ItemKind::Show) => MediaType::Tv,
        _ => return Ok(Some(handled(item, "unmatched"))),
    };
    let Some(tmdb_id) = meta.tmdb_id else {
        return Ok(Some(handled(item, "unmatched")));
    };
    let title = if meta.title.is_empty() {
        item.title.clone()
    } else {
        meta.title.clone()
    };
    let mut out = HandledItem {
        rating_key: item.rating_key.clone(),
        title: title.clone(),
        media_type: Some(media_type.as_str()),
        tmdb_id: Some(tmdb_id),
        outcome: "requested",
        request_id: None,
    };

    // On the server already: nothing to ask for (Seerr skips a movie in any known state and a
    // show only when fully available; a movie requested in Seerr itself is answered below).
    let details = match crate::media::search::details(state, media_type, tmdb_id).await {
        Ok((details, _)) => details,
        Err(e) => return Err(Stop::Outage(e)),
    };
    let Some(details) = details else {
        out.outcome = "unmatched";
        return Ok(Some(out));
    };
    let status = match details.as_ref() {
        Details::Movie(m) => m.media_info.as_ref().map(|i| i.status),
        Details::Tv(t) => t.media_info.as_ref().map(|i| i.status),
    };
    if status == Some(MediaStatus::Available) {
        out.outcome = "available";
        return Ok(Some(out));
    }

    let input = NewInput {
        media_type,
        tmdb_id,
        // Seerr's watchlist sync asks for every season of a show.
        seasons: Seasons::All,
        is_4k: false,
    };
    match request_title(state, who, input, RequestSource::Watchlist).await {
        Ok(row) => {
            done.requested.push(row.title.clone());
            out.request_id = Some(row.id);
            Ok(Some(out))
        }
        Err(e) => match e.code() {
            ErrorCode::AlreadyRequested => {
                let details = error_details(&e);
                let request_id = details
                    .and_then(|d| d.get("requestId"))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned);
                let mine = details
                    .and_then(|d| d.get("mine"))
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(false);
                match request_id {
                    Some(request_id) if !mine => {
                        follow(state, &who.user_id, &request_id).await?;
                        done.followed.push(title);
                        out.outcome = "followed";
                        out.request_id = Some(request_id);
                    }
                    other => {
                        out.outcome = "existing";
                        out.request_id = other;
                    }
                }
                Ok(Some(out))
            }
            ErrorCode::QuotaExceeded => {
                done.over_quota = true;
                Ok(None)
            }
            ErrorCode::NotFound => {
                out.outcome = "unmatched";
                Ok(Some(out))
            }
            ErrorCode::Forbidden => {
                let blocklisted = error_details(&e)
                    .and_then(|d| d.get("blocklisted"))
                    .is_some_and(|v| v == true);
                if blocklisted {
                    out.outcome = "refused";
                    Ok(Some(out))
                } else {
                    // Not linked to a Seerr user yet: the admin may fix that; look again later.
                    tracing::info!(user_id = %who.user_id, tmdb_id, reason = ?error_details(&e), "watchlist item refused for now");
                    Ok(None)
                }
            }
            _ => Err(Stop::Outage(e)),
        },
    }
}

fn error_details(e: &AppError) -> Option<&serde_json::Value> {
    match e {
        AppError::Api { details, .. } => details.as_ref(),
        _ => None,
    }
}

/// Makes the user a follower of someone else's request (the follow of
/// `POST /media/requests/{id}/follow`).
async fn follow(state: &AppState, user_id: &str, request_id: &str) -> Result<(), Stop> {
    let (user, id) = (user_id.to_owned(), request_id.to_owned());
    let now = state.clock().now_ms();
    state
        .db()
        .write(move |tx| crate::media::store::follow(tx, &id, &user, now))
        .await
        .map_err(Stop::Outage)?;
    state.dashboard().forget(user_id);
    Ok(())
}

/// Tells the user what the check did: one summary of the requests and follows, and once
/// (until a request goes through again) that an item waits for their quota.
async fn tell(state: &AppState, user_id: &str, done: &Done) -> AppResult<()> {
    let now = state.clock().now_ms();
    let user = user_id.to_owned();
    let requested = done.requested.clone();
    let followed = done.followed.clone();
    let over_quota = done.over_quota;
    let limit = state.config().quotas.requests_per_hour;
    let made = state
        .db()
        .write(move |tx| {
            let mut made = Vec::new();
            if !requested.is_empty() || !followed.is_empty() {
                let mut parts = Vec::new();
                if !requested.is_empty() {
                    parts.push(format!("Requested {}.", requested.join(", ")));
                }
                if !followed.is_empty() {
                    parts.push(format!(
                        "Already requested by someone else, you will hear about it too: {}.",
                        followed.join(", ")
                    ));
                }
                let metadata = json!({"requested": requested, "followed": followed});
                made.push((
                    user.clone(),
                    notifications::create(
                        tx,
                        &user,
                        "watchlist.requested",
                        "From your Plex watchlist",
                        &parts.join(" "),
                        Some(metadata),
                        now,
                    )?,
                ));
            }
            if !requested.is_empty() {
                store::set_quota_told(tx, &user, false)?;
            }
            if over_quota && store::set_quota_told(tx, &user, true)? {
                let message = format!(
                    "Some titles on your Plex watchlist wait for your request quota \
                     ({limit} an hour). They will be requested by themselves once you are under it."
                );
                made.push((
                    user.clone(),
                    notifications::create(
                        tx,
                        &user,
                        "watchlist.quota",
                        "Watchlist requests wait for your quota",
                        &message,
                        Some(json!({"limit": limit})),
                        now,
                    )?,
                ));
            }
            Ok(made)
        })
        .await?;
    notifications::publish_all_created(state.events(), &made);
    Ok(())
}

/// Pauses the user's sync and tells them once.
async fn pause(state: &AppState, user_id: &str, reason: &'static str) -> AppResult<()> {
    let now = state.clock().now_ms();
    let user = user_id.to_owned();
    let made = state
        .db()
        .write(move |tx| {
            if !store::pause(tx, &user, reason, now)? {
                return Ok(None);
            }
            let message = if reason == PAUSED_TOKEN_EXPIRED {
                "Plex no longer accepts your sign-in, so your watchlist is not checked. \
                 Sign in with Plex again to resume."
            } else {
                "Your account has no Plex sign-in, so your watchlist is not checked. \
                 Sign in with Plex to resume."
            };
            let made = notifications::create(
                tx,
                &user,
                "watchlist.paused",
                "Watchlist requests paused",
                message,
                Some(json!({"reason": reason})),
                now,
            )?;
            Ok(Some(made))
        })
        .await?;
    if let Some(made) = made {
        tracing::info!(user_id, reason, "watchlist sync paused");
        notifications::publish_created(state.events(), user_id, &made);
    }
    Ok(())
}

/// Notes a failed check (never a pause) and when to look again.
async fn failed(state: &AppState, user_id: &str, error: &AppError) -> AppResult<()> {
    tracing::warn!(user_id, error = %error, "watchlist check failed; backing off");
    let now = state.clock().now_ms();
    let user = user_id.to_owned();
    let state2 = state.clone();
    state
        .db()
        .write(move |tx| {
            let failures = store::get(tx, &user)?.failures + 1;
            let next = backoff_at(&state2, now, failures);
            store::finish_failed(tx, &user, now, next)?;
            Ok(())
        })
        .await
}
