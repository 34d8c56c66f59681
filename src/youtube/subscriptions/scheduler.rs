//! The subscription scheduler: checks due subscriptions and queues their new videos through the
//! existing download queue (so progress, cancel, retry and the per-user disk budget apply).
//!
//! - At most [`MAX_CHECKS`] checks run at once and a subscription never overlaps itself.
//! - The next check is the interval later with up to a tenth more at random, so subscriptions
//!   made together drift apart instead of hitting YouTube in the same second.
//! - A check lists the newest [`LIST_NEWEST`] items of the channel's tabs (`/videos`, and
//!   `/shorts` and `/streams` unless skipped: the `/videos` tab never holds them, see
//!   `src/youtube/listing.rs`), drops what the archive already has, what is not downloadable,
//!   older than `after`, filtered by the title patterns, a Short or a stream when skipped, and
//!   anything live right now. The rest go into the archive as `queued`, each with its download
//!   row, in one transaction with the check's outcome.
//! - YouTube refusing (bot check, HTTP 429) backs the subscription off (15 min, doubling up to a
//!   day) and tells the admins once what to do; other failures back off the same way. One
//!   subscription's failure never touches another.
//! - "Check now" (`POST /youtube/subscriptions/{id}/check`) makes it due and wakes this loop.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::model::{CheckOutcome, NewItem, Subscription};
use super::{art, store};
use crate::error::AppResult;
use crate::state::AppState;
use crate::youtube::listing::{self, ListError, ListedItem};

/// Checks running at once.
pub const MAX_CHECKS: usize = 2;
/// Items listed per tab and check (how far back a check looks).
pub const LIST_NEWEST: u32 = 50;
/// Longest sleep when nothing is due.
const IDLE: Duration = Duration::from_secs(60);

/// Runs until shutdown.
pub async fn run(state: AppState) {
    let gate = Arc::new(Semaphore::new(MAX_CHECKS));
    let running: Arc<Mutex<HashSet<String>>> = Arc::default();
    let wake = state.youtube().subscriptions_waker();
    let shutdown = state.shutdown_token().clone();
    loop {
        let wait = match pass(&state, &gate, &running).await {
            Ok(wait) => wait,
            Err(e) => {
                tracing::warn!(error = %e, "subscription pass failed; trying again shortly");
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

async fn pass(
    state: &AppState,
    gate: &Arc<Semaphore>,
    running: &Arc<Mutex<HashSet<String>>>,
) -> AppResult<Duration> {
    let now = state.clock().now_ms();
    let due = state
        .db()
        .read(move |conn| store::due(conn, now, 32))
        .await?;
    for sub in due {
        if !running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sub.id.clone())
        {
            continue;
        }
        let Ok(permit) = gate.clone().try_acquire_owned() else {
            running
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&sub.id);
            break;
        };
        let state2 = state.clone();
        let running = running.clone();
        state.spawn_task(async move {
            let id = sub.id.clone();
            if let Err(e) = check(&state2, sub).await {
                tracing::error!(subscription = %id, error = %e, "subscription check failed");
            }
            drop(permit);
            running
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
            state2.youtube().wake_subscriptions();
        });
    }
    let next = state.db().read(store::next_check_at).await?;
    let now = state.clock().now_ms();
    Ok(match next {
        Some(at) if at > now => {
            Duration::from_millis(u64::try_from(at - now).unwrap_or(0)).min(IDLE)
        }
        // Due now but running or waiting for a free check: a finished check wakes the loop.
        _ => IDLE,
    })
}

/// The URLs a check lists: a channel's tabs, or the playlist.
fn tabs(sub: &Subscription) -> Vec<String> {
    if sub.kind != "channel" {
        return vec![sub.url.clone()];
    }
    let base = sub.url.trim_end_matches("/videos");
    let mut urls = vec![format!("{base}/videos")];
    if !sub.skip_shorts {
        urls.push(format!("{base}/shorts"));
    }
    if !sub.skip_live {
        urls.push(format!("{base}/streams"));
    }
    urls
}

/// What a listing says about the channel or playlist itself.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// The channel's name, or the playlist's title.
    pub title: Option<String>,
    pub channel_id: Option<String>,
    pub avatar: Option<String>,
    pub banner: Option<String>,
}

impl Source {
    fn of(sub: &Subscription, listing: &listing::Listing) -> Self {
        let title = if sub.kind == "channel" {
            listing.channel.clone().or_else(|| {
                // `Channel - Videos` without its tab.
                listing
                    .title
                    .rsplit_once(" - ")
                    .map(|(name, _)| name.to_owned())
            })
        } else {
            Some(listing.title.clone())
        };
        let cut = |t: String| crate::youtube::ytdlp::truncate_chars(t.trim(), 500);
        Self {
            title: title.filter(|t| !t.trim().is_empty()).map(cut),
            channel_id: listing.channel_id.clone().filter(|c| c.len() <= 64),
            avatar: listing.avatar.clone().filter(|u| u.len() <= 2048),
            banner: listing.banner.clone().filter(|u| u.len() <= 2048),
        }
    }
}

/// What a check keeps of a listing (the subscription's settings, patterns compiled).
struct Filters {
    after: Option<String>,
    skip_shorts: bool,
    skip_live: bool,
    include: Option<regex::Regex>,
    exclude: Option<regex::Regex>,
}

impl Filters {
    fn of(sub: &Subscription) -> Self {
        let compile = |p: &Option<String>| {
            p.as_deref().and_then(|p| {
                regex::RegexBuilder::new(p)
                    .case_insensitive(true)
                    .size_limit(256 * 1024)
                    .build()
                    .ok()
            })
        };
        Self {
            after: sub.after.clone(),
            skip_shorts: sub.skip_shorts,
            skip_live: sub.skip_live,
            include: compile(&sub.include),
            exclude: compile(&sub.exclude),
        }
    }

    /// Why `item` is not taken, or `None` to take it.
    fn refusal(&self, item: &ListedItem) -> Option<&'static str> {
        if !item.availability.downloadable() {
            return Some("not downloadable");
        }
        if item.is_live {
            return Some("live now or upcoming");
        }
        if self.skip_live && item.was_live {
            return Some("a stream");
        }
        if self.skip_shorts && item.is_short {
            return Some("a Short");
        }
        if let (Some(after), Some(date)) = (&self.after, item.upload_date)
            && date.to_string().as_str() < after.as_str()
        {
            return Some("older than the start date");
        }
        let title = item.title.as_str();
        if self.include.as_ref().is_some_and(|re| !re.is_match(title)) {
            return Some("title not included");
        }
        if self.exclude.as_ref().is_some_and(|re| re.is_match(title)) {
            return Some("title excluded");
        }
        None
    }
}

/// Takes out of `take` (oldest first) what retention would prune at once: uploads older than
/// `keep_days` days, and all but the newest `keep_latest`. Returns them with the reason.
fn outside_retention(
    take: &mut Vec<ListedItem>,
    keep_latest: Option<i64>,
    keep_days: Option<i64>,
    now_ms: i64,
) -> Vec<(ListedItem, &'static str)> {
    let mut out = Vec::new();
    if let Some(days) = keep_days {
        let cutoff = time::OffsetDateTime::from_unix_timestamp(now_ms / 1000 - days * 86_400)
            .map(|t| t.date())
            .ok();
        let (old, kept): (Vec<_>, Vec<_>) = std::mem::take(take)
            .into_iter()
            .partition(|i| matches!((i.upload_date, cutoff), (Some(d), Some(c)) if d < c));
        *take = kept;
        out.extend(old.into_iter().map(|i| (i, "older than the days kept")));
    }
    if let Some(n) = keep_latest.and_then(|n| usize::try_from(n).ok())
        && take.len() > n
    {
        let newest = take.split_off(take.len() - n);
        let older = std::mem::replace(take, newest);
        out.extend(older.into_iter().map(|i| (i, "beyond the newest kept")));
    }
    out
}

/// The next check: the interval later plus up to a tenth at random.
fn next_check(now: i64, interval_secs: i64) -> i64 {
    let interval_ms = interval_secs.max(60).saturating_mul(1000);
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let jitter = (interval_ms as f64 * 0.1 * rand::random::<f64>()) as i64;
    now + interval_ms + jitter
}

/// One check of `sub`.
pub async fn check(state: &AppState, sub: Subscription) -> AppResult<()> {
    let program = crate::youtube::downloader(state)?;
    let pass = crate::youtube::passthrough(state).await;
    let mut listed: Vec<ListedItem> = Vec::new();
    let mut failure: Option<ListError> = None;
    let mut source: Option<Source> = None;
    for url in tabs(&sub) {
        match listing::list_newest(&program, &url, LIST_NEWEST, &pass, listing::LIST_TIMEOUT).await
        {
            Ok(listing) => {
                if source.is_none() {
                    source = Some(Source::of(&sub, &listing));
                }
                listed.extend(listing.items);
            }
            // A channel without Shorts or streams has no such tab.
            Err(ListError::NotFound(_)) if !url.ends_with("/videos") && sub.kind == "channel" => {}
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let now = state.clock().now_ms();
    if let Some(error) = failure {
        let blocked = error.is_refusal();
        let text = format!("{}. {}", error.reason(), error.hint());
        let outcome = if blocked {
            CheckOutcome::Blocked {
                error: text.clone(),
            }
        } else {
            CheckOutcome::Failed {
                error: text.clone(),
            }
        };
        let next = now + store::backoff_delay_ms(sub.consecutive_failures + 1);
        let id = sub.id.clone();
        let first = sub.consecutive_failures == 0;
        let name = sub.title.clone().unwrap_or_else(|| sub.url.clone());
        let made = state
            .db()
            .write(move |tx| {
                store::record_check(tx, &id, &outcome, now, next)?;
                if blocked && first {
                    return crate::notifications::create_for_admins(
                        tx,
                        "subscription.blocked",
                        "YouTube refused a subscription check",
                        &format!("{name}: {text}"),
                        Some(serde_json::json!({ "subscriptionId": id })),
                        now,
                    );
                }
                Ok(Vec::new())
            })
            .await?;
        crate::notifications::publish_all_created(state.events(), &made);
        tracing::warn!(subscription = %sub.id, blocked, "subscription check failed; backing off");
        return Ok(());
    }
    // The name is learnt once: it names the show's folder, which must not move.
    let mut show = sub.folder.clone();
    if let Some(source) = source {
        let id = sub.id.clone();
        show = state
            .db()
            .write(move |tx| store::record_source(tx, &id, &source))
            .await?;
    }
    if let Some(show) = &show {
        art::ensure(state, &sub, show).await;
    }
    let filters = Filters::of(&sub);
    let id = sub.id.clone();
    let ids: Vec<String> = listed.iter().map(|item| item.id.clone()).collect();
    let archived = state
        .db()
        .read(move |conn| store::archived_among(conn, &id, &ids))
        .await?;
    let mut seen = HashSet::new();
    // Oldest first, so the queue downloads in upload order (listings are newest first; reversed
    // before the stable sort, so a day's uploads keep their order too).
    let mut take: Vec<ListedItem> = listed
        .into_iter()
        .rev()
        .filter(|item| !archived.contains(&item.id) && seen.insert(item.id.clone()))
        .filter(|item| filters.refusal(item).is_none())
        .collect();
    take.sort_by_key(|item| item.upload_date);
    // What retention would prune at once is not downloaded at all: it enters the archive as
    // skipped (so it never comes back).
    let outside = outside_retention(&mut take, sub.keep_latest, sub.keep_days, now);
    let (quality, format) = profile_choice(state, sub.profile_id.clone()).await?;
    let next = next_check(now, sub.interval_secs);
    let sub_id = sub.id.clone();
    let owner = sub.user_id.clone();
    let queued = state
        .db()
        .write(move |tx| {
            let mut items = Vec::with_capacity(take.len());
            for item in &take {
                let download_id = uuid::Uuid::now_v7().to_string();
                tx.prepare_cached(
                    "INSERT INTO youtube_downloads (id, user_id, url, kind, title, quality, format, created_at)
                     VALUES (?1, ?2, ?3, 'video', ?4, ?5, ?6, ?7)",
                )?
                .execute(rusqlite::params![
                    download_id,
                    owner,
                    format!("https://www.youtube.com/watch?v={}", item.id),
                    item.title,
                    quality,
                    format,
                    now
                ])?;
                items.push(NewItem {
                    video_id: item.id.clone(),
                    status: "queued".into(),
                    reason: None,
                    title: Some(item.title.clone()),
                    upload_date: item.upload_date.map(|d| d.to_string()),
                    download_id: Some(download_id),
                });
            }
            let added = store::record_items(tx, &sub_id, &items, now)?;
            let count = u32::try_from(added.len()).unwrap_or(u32::MAX);
            let skipped: Vec<NewItem> = outside
                .iter()
                .map(|(item, reason)| NewItem {
                    video_id: item.id.clone(),
                    status: "skipped".into(),
                    reason: Some((*reason).into()),
                    title: Some(item.title.clone()),
                    upload_date: item.upload_date.map(|d| d.to_string()),
                    download_id: None,
                })
                .collect();
            store::record_items(tx, &sub_id, &skipped, now)?;
            store::record_check(tx, &sub_id, &CheckOutcome::Ok { new_items: count }, now, next)?;
            Ok(count)
        })
        .await?;
    if queued > 0 {
        state.youtube().wake();
    }
    tracing::info!(subscription = %sub.id, queued, "subscription checked");
    // Retention on every successful check; its failure is not the check's.
    if let Err(e) = super::retention::prune(state, &sub.id).await {
        tracing::warn!(subscription = %sub.id, error = %e, "retention failed");
    }
    Ok(())
}

/// The download quality and container of the subscription's profile (the defaults without one).
async fn profile_choice(state: &AppState, profile: Option<String>) -> AppResult<(String, String)> {
    let Some(id) = profile else {
        return Ok((crate::youtube::ytdlp::Quality::DEFAULT.into(), "mp4".into()));
    };
    let profile = state
        .db()
        .read(move |conn| store::get_profile(conn, &id))
        .await?;
    Ok(match profile {
        Some(p) => (
            p.max_height
                .map_or_else(|| "best".to_owned(), |h| h.to_string()),
            p.container,
        ),
        None => (crate::youtube::ytdlp::Quality::DEFAULT.into(), "mp4".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::youtube::listing::Availability;

    fn item(title: &str, date: &str) -> ListedItem {
        ListedItem {
            id: "abcdefghijk".into(),
            title: title.into(),
            url: "https://www.youtube.com/watch?v=abcdefghijk".into(),
            upload_date: time::Date::parse(
                date,
                &time::format_description::well_known::Iso8601::DATE,
            )
            .ok(),
            duration_secs: Some(600),
            is_short: false,
            is_live: false,
            was_live: false,
            availability: Availability::Unknown,
        }
    }

    #[test]
    fn a_check_keeps_what_the_settings_allow() {
        let filters = Filters {
            after: Some("2026-02-01".into()),
            skip_shorts: true,
            skip_live: true,
            include: regex::Regex::new("(?i)review").ok(),
            exclude: regex::Regex::new("(?i)sponsored").ok(),
        };
        assert_eq!(filters.refusal(&item("A Review", "2026-03-01")), None);
        assert_eq!(
            filters.refusal(&item("A Review", "2026-01-31")),
            Some("older than the start date")
        );
        assert_eq!(
            filters.refusal(&item("Unboxing", "2026-03-01")),
            Some("title not included")
        );
        assert_eq!(
            filters.refusal(&item("Sponsored review", "2026-03-01")),
            Some("title excluded")
        );
        let short = ListedItem {
            is_short: true,
            ..item("Review short", "2026-03-01")
        };
        assert_eq!(filters.refusal(&short), Some("a Short"));
        let stream = ListedItem {
            was_live: true,
            ..item("Review stream", "2026-03-01")
        };
        assert_eq!(filters.refusal(&stream), Some("a stream"));
        let live = ListedItem {
            is_live: true,
            ..item("Review live", "2026-03-01")
        };
        let keep_all = Filters {
            after: None,
            skip_shorts: false,
            skip_live: false,
            include: None,
            exclude: None,
        };
        assert_eq!(keep_all.refusal(&live), Some("live now or upcoming"));
        assert_eq!(keep_all.refusal(&stream), None);
        assert_eq!(keep_all.refusal(&short), None);
        let private = ListedItem {
            availability: Availability::Private,
            ..item("Review", "2026-03-01")
        };
        assert_eq!(keep_all.refusal(&private), Some("not downloadable"));
    }

    #[test]
    fn what_retention_would_prune_at_once_is_not_taken() {
        let dated = |day: &str| ListedItem {
            id: format!("id{day}"),
            ..item("A video", day)
        };
        // 2026-03-10 12:00 UTC.
        let now = 1_773_144_000_000;
        let mut take: Vec<ListedItem> = ["2026-03-01", "2026-03-05", "2026-03-08", "2026-03-09"]
            .iter()
            .map(|d| dated(d))
            .collect();
        let out = outside_retention(&mut take, Some(2), Some(7), now);
        let kept: Vec<&str> = take.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(kept, ["id2026-03-08", "id2026-03-09"]);
        let reasons: Vec<(&str, &str)> = out.iter().map(|(i, r)| (i.id.as_str(), *r)).collect();
        assert_eq!(
            reasons,
            [
                ("id2026-03-01", "older than the days kept"),
                ("id2026-03-05", "beyond the newest kept")
            ]
        );
        let mut all = vec![dated("2026-03-09")];
        assert!(outside_retention(&mut all, None, None, now).is_empty());
        assert_eq!(all.len(), 1);
    }

    #[test]
    fn the_next_check_is_the_interval_plus_at_most_a_tenth() {
        for _ in 0..100 {
            let at = next_check(1_000, 3600);
            assert!(
                (1_000 + 3_600_000..=1_000 + 3_960_000).contains(&at),
                "{at}"
            );
        }
    }
}
