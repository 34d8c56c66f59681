//! The delivery worker: sends the outbox's due rows ([`super::outbox`]) and records each outcome.
//!
//! - Each channel has its own bound of deliveries in flight
//!   (`notifications.per_channel_concurrency`), so a slow or broken channel never holds up
//!   another; sends run on the blocking pool with the senders' own timeouts, never on a request
//!   path.
//! - A passing failure (timeout, refused connection, HTTP 429/5xx, SMTP 4xx) is tried again
//!   after `retry_min_secs`, doubling with jitter up to `retry_max_secs`, and given up
//!   `give_up_hours` after the notification was made. A lasting one (another 4xx, SMTP 5xx, a
//!   bad target, a push endpoint's 404/410, which also removes that device) fails at once.
//! - At most `max_per_user_hour` messages go to one user on one channel per hour; more wait (they
//!   are never dropped). A `service.*` row whose service had a message on that channel less than
//!   `flap_window_secs` ago waits for the window's end, folding later flaps into itself.
//! - Rows that were being sent when the process died are sent again at start; every try of one
//!   row carries the row's id as its idempotency key (webhook `Idempotency-Key`, email
//!   `Message-ID`, Web Push `Topic`).
//! - The target (address, topic, token, URL) is read when sending, so a changed address applies
//!   to what is still waiting, and a channel turned off since skips its rows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};
use serde_json::Value;
use tokio::sync::Semaphore;

use super::channel_settings::{self, Kind};
use super::channels::{self, Class, Message, SendError};
use super::prefs::{self, Target};
use crate::config::NotificationsConfig;
use crate::error::AppResult;
use crate::push::{self, Outcome, PushMessage, PushOptions, Pusher};
use crate::state::AppState;

const HOUR_MS: i64 = 3600 * 1000;
/// Longest sleep when nothing is due (a fallback: commits and finished sends wake the worker).
const IDLE_POLL: Duration = Duration::from_secs(30);
/// A row `sending` for longer than this was left by a send whose outcome could not be recorded
/// (every send is bounded far below it): it is tried again.
const STALE_SENDING_MS: i64 = 10 * 60 * 1000;
/// How often a pass looks for such rows.
const RECLAIM_EVERY_MS: i64 = 60 * 1000;
/// The wait after a pass failed (e.g. the database was busy) before the next.
const AFTER_ERROR: Duration = Duration::from_secs(1);
/// Due rows looked at per channel and pass.
const CANDIDATES: i64 = 256;
/// Web Push payload texts are cut to fit the push services' 4 kB.
const PUSH_TITLE_CHARS: usize = 120;
const PUSH_BODY_CHARS: usize = 600;
/// Where posters come from (Seerr's `posterPath` is a TMDB image path).
const TMDB_POSTER_BASE: &str = "https://image.tmdb.org/t/p/w342";

/// One claimed row.
#[derive(Debug, Clone)]
struct Claimed {
    id: String,
    notification_id: String,
    user_id: String,
    channel: Kind,
    device: Option<String>,
    event: String,
    collapsed: i64,
    attempts: i64,
    created_at: i64,
}

/// How one try went.
#[derive(Debug, Clone)]
enum Tried {
    Delivered,
    /// Nothing to send to any more (channel or device turned off, notification pruned).
    Skipped(String),
    Failed(String, Class),
}

/// The pusher of the last subject used: one HTTP agent (and its connections) for every push,
/// rebuilt only when the admin changes the subject.
type PusherCache = Arc<Mutex<Option<(String, Pusher)>>>;

/// Deliveries in flight per user, channel and device (the rate limit counts them).
type InFlight = Arc<Mutex<HashMap<(String, &'static str, Option<String>), u32>>>;

/// Runs until shutdown.
pub async fn run(state: AppState) {
    let now = state.clock().now_ms();
    match state
        .db()
        .write(move |tx| {
            Ok(tx.execute(
                "UPDATE notification_deliveries
                    SET status = 'pending', next_attempt_at = ?1, updated_at = ?1,
                        last_error = 'interrupted by a restart; sent again'
                  WHERE status = 'sending'",
                [now],
            )?)
        })
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            deliveries = n,
            "notification deliveries interrupted by a stop are sent again"
        ),
        Err(e) => tracing::error!(error = %e, "cannot recover interrupted notification deliveries"),
    }
    let per_channel = state.config().notifications.per_channel_concurrency as usize;
    let gates: Vec<(Kind, Arc<Semaphore>)> = Kind::ALL
        .into_iter()
        .map(|k| (k, Arc::new(Semaphore::new(per_channel))))
        .collect();
    let in_flight: InFlight = Arc::default();
    let pushers: PusherCache = Arc::default();
    let wake = state.events().outbox_waker();
    let shutdown = state.shutdown_token().clone();
    let mut last_reclaim = now;
    loop {
        let wait = match pass(&state, &gates, &in_flight, &pushers, &mut last_reclaim).await {
            Ok(wait) => wait,
            Err(e) => {
                tracing::warn!(error = %e, "notification delivery pass failed; trying again shortly");
                AFTER_ERROR
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Claims what is due on every channel with room and starts sending it; answers how long to
/// wait before the next pass when nothing wakes the worker first.
async fn pass(
    state: &AppState,
    gates: &[(Kind, Arc<Semaphore>)],
    in_flight: &InFlight,
    pushers: &PusherCache,
    last_reclaim: &mut i64,
) -> AppResult<Duration> {
    let config = state.config().notifications.clone();
    let now = state.clock().now_ms();
    // Which channels have rows due (a read: a pass with nothing to do writes nothing).
    let due: Vec<String> = state
        .db()
        .read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT DISTINCT channel FROM notification_deliveries
                  WHERE status = 'pending' AND next_attempt_at <= ?1",
            )?;
            let rows = stmt
                .query_map([now], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(rows)
        })
        .await?;
    let rooms: Vec<(Kind, usize)> = gates
        .iter()
        .filter(|(kind, _)| due.iter().any(|c| c == kind.as_str()))
        .map(|(kind, gate)| (*kind, gate.available_permits()))
        .filter(|(_, room)| *room > 0)
        .collect();
    let reclaim = now - *last_reclaim >= RECLAIM_EVERY_MS || now < *last_reclaim;
    if reclaim {
        *last_reclaim = now;
    }
    // Everything a pass changes, in one write transaction.
    let claimed = if rooms.is_empty() && !reclaim {
        Vec::new()
    } else {
        let busy = in_flight.clone();
        state
            .db()
            .write(move |tx| {
                if reclaim {
                    let stale = tx
                        .prepare_cached(
                            "UPDATE notification_deliveries
                                SET status = 'pending', next_attempt_at = ?1, updated_at = ?1
                              WHERE status = 'sending' AND updated_at < ?2",
                        )?
                        .execute(rusqlite::params![now, now - STALE_SENDING_MS])?;
                    if stale > 0 {
                        tracing::warn!(
                            deliveries = stale,
                            "notification deliveries stuck in sending are tried again"
                        );
                    }
                }
                let mut all = Vec::new();
                for (kind, room) in rooms {
                    all.extend(claim(tx, kind, room, now, &config, &busy)?);
                }
                Ok(all)
            })
            .await?
    };
    for row in claimed {
        let Some((_, gate)) = gates.iter().find(|(kind, _)| *kind == row.channel) else {
            continue;
        };
        let Ok(permit) = gate.clone().try_acquire_owned() else {
            // Only this loop takes permits and it claimed no more than were free; a row left
            // `sending` here is reclaimed after STALE_SENDING_MS.
            continue;
        };
        let key = (
            row.user_id.clone(),
            row.channel.as_str(),
            row.device.clone(),
        );
        *in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_insert(0) += 1;
        let state2 = state.clone();
        let pushers = pushers.clone();
        let guard = Busy {
            in_flight: in_flight.clone(),
            key,
            state: state.clone(),
        };
        state.spawn_task(async move {
            // Released (count down, worker woken) however the task ends, a panic included.
            let _guard = guard;
            let tried = attempt(&state2, &row, permit, &pushers).await;
            record_retrying(&state2, &row, tried).await;
        });
    }
    // Sleep until the next row is due; rows due now wait for a finished send to wake us.
    let now = state.clock().now_ms();
    let next: Option<i64> = state
        .db()
        .read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT min(next_attempt_at) FROM notification_deliveries WHERE status = 'pending'",
                )?
                .query_row([], |r| r.get(0))?)
        })
        .await?;
    Ok(match next {
        Some(at) if at > now => {
            Duration::from_millis(u64::try_from(at - now).unwrap_or(0)).min(IDLE_POLL)
        }
        _ => IDLE_POLL,
    })
}

/// One delivery's place in the in-flight count; dropping it gives the place back and wakes
/// the worker.
struct Busy {
    in_flight: InFlight,
    key: (String, &'static str, Option<String>),
    state: AppState,
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut busy = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = busy.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                busy.remove(&self.key);
            }
        }
        drop(busy);
        self.state.events().wake_outbox();
    }
}

/// [`record`], tried a few times: a row whose outcome is not stored would be sent again.
async fn record_retrying(state: &AppState, row: &Claimed, tried: Tried) {
    let mut tried = Some(tried);
    for wait_ms in [0, 200, 1000, 5000] {
        if wait_ms > 0 {
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        }
        let Some(this) = tried.take() else { return };
        match record(state, row, this.clone()).await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(delivery = %row.id, error = %e, "cannot record a notification delivery");
                tried = Some(this);
            }
        }
    }
}

/// In one write transaction: picks up to `room` due rows of `kind` that may go now, marks them
/// `sending` and returns them; due rows held back by the rate limit or a flap window get their
/// new time instead.
fn claim(
    conn: &Connection,
    kind: Kind,
    room: usize,
    now: i64,
    config: &NotificationsConfig,
    in_flight: &InFlight,
) -> AppResult<Vec<Claimed>> {
    let candidates = {
        let mut stmt = conn.prepare_cached(
            "SELECT id, notification_id, user_id, push_subscription_id, event, collapse_key,
                    collapsed, attempts, created_at
               FROM notification_deliveries
              WHERE status = 'pending' AND next_attempt_at <= ?1 AND channel = ?2
              ORDER BY next_attempt_at, id
              LIMIT ?3",
        )?;
        stmt.query_map(rusqlite::params![now, kind.as_str(), CANDIDATES], |r| {
            Ok((
                Claimed {
                    id: r.get(0)?,
                    notification_id: r.get(1)?,
                    user_id: r.get(2)?,
                    channel: kind,
                    device: r.get(3)?,
                    event: r.get(4)?,
                    collapsed: r.get(6)?,
                    attempts: r.get(7)?,
                    created_at: r.get(8)?,
                },
                r.get::<_, Option<String>>(5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?
    };
    let window_ms = i64::try_from(config.flap_window_secs)
        .unwrap_or(i64::MAX / 4)
        .saturating_mul(1000);
    let mut taken: HashMap<(String, Option<String>), u32> = HashMap::new();
    let mut out = Vec::new();
    for (row, collapse_key) in candidates {
        if out.len() >= room {
            break;
        }
        if let Some(key) = collapse_key {
            let last: Option<i64> = conn
                // A message of the key still being sent counts as sent now.
                .prepare_cached(
                    "SELECT max(CASE WHEN status = 'sending' THEN ?5 ELSE delivered_at END)
                       FROM notification_deliveries
                      WHERE user_id = ?1 AND channel = ?2 AND collapse_key = ?3
                        AND push_subscription_id IS ?4",
                )?
                .query_row(
                    rusqlite::params![row.user_id, kind.as_str(), key, row.device, now],
                    |r| r.get(0),
                )?;
            if let Some(last) = last
                && last.saturating_add(window_ms) > now
            {
                postpone(conn, &row.id, last.saturating_add(window_ms), None, now)?;
                continue;
            }
        }
        let (sent, oldest): (i64, Option<i64>) = conn
            .prepare_cached(
                "SELECT count(*), min(delivered_at) FROM notification_deliveries
                  WHERE user_id = ?1 AND channel = ?2 AND delivered_at > ?3
                    AND push_subscription_id IS ?4",
            )?
            .query_row(
                rusqlite::params![row.user_id, kind.as_str(), now - HOUR_MS, row.device],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
        let busy = in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(row.user_id.clone(), kind.as_str(), row.device.clone()))
            .copied()
            .unwrap_or(0);
        let mine = taken
            .entry((row.user_id.clone(), row.device.clone()))
            .or_insert(0);
        let used = sent + i64::from(busy) + i64::from(*mine);
        let max = i64::from(config.max_per_user_hour);
        if used >= max && sent < max {
            // Sends in flight fill the hour: look again when they end (each end wakes the
            // worker), as they may fail and leave room.
            continue;
        }
        if used >= max {
            // When the oldest message of the hour leaves the window.
            let at = oldest.map_or(now + 60_000, |o| o + HOUR_MS).max(now + 1000);
            let reason = format!(
                "held back: more than {} messages in an hour to this user on this channel",
                config.max_per_user_hour
            );
            // Every due row of this user on this channel moves at once, so a backlog of one
            // person never fills the pass and holds up everyone else.
            conn.prepare_cached(
                "UPDATE notification_deliveries
                    SET next_attempt_at = ?5, last_error = ?6, updated_at = ?4
                  WHERE status = 'pending' AND channel = ?2 AND user_id = ?1
                    AND push_subscription_id IS ?3 AND next_attempt_at <= ?4",
            )?
            .execute(rusqlite::params![
                row.user_id,
                kind.as_str(),
                row.device,
                now,
                at,
                reason
            ])?;
            continue;
        }
        *mine += 1;
        conn.prepare_cached(
            "UPDATE notification_deliveries
                SET status = 'sending', attempts = attempts + 1, updated_at = ?2
              WHERE id = ?1 AND status = 'pending'",
        )?
        .execute(rusqlite::params![row.id, now])?;
        out.push(row);
    }
    Ok(out)
}

fn postpone(conn: &Connection, id: &str, at: i64, reason: Option<&str>, now: i64) -> AppResult<()> {
    conn.prepare_cached(
        "UPDATE notification_deliveries
            SET next_attempt_at = ?2, last_error = coalesce(?3, last_error), updated_at = ?4
          WHERE id = ?1",
    )?
    .execute(rusqlite::params![id, at, reason, now])?;
    Ok(())
}

/// What sending needs, read in one go.
struct Context {
    message: Message,
    channel: channel_settings::ChannelRow,
    target: Option<Target>,
    device: Option<push::Subscription>,
}

/// Reads the notification, the channel's settings and the user's target.
fn context(
    conn: &Connection,
    cipher: &crate::crypto::Cipher,
    row: &Claimed,
    links: &Links,
) -> AppResult<Option<Context>> {
    let Some((title, body, metadata)) = conn
        .prepare_cached("SELECT title, message, metadata FROM notifications WHERE id = ?1")?
        .query_row([&row.notification_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })
        .optional()?
    else {
        return Ok(None);
    };
    let metadata: Option<Value> = metadata.and_then(|m| serde_json::from_str(&m).ok());
    let poster: Option<String> = match metadata
        .as_ref()
        .and_then(|m| m.get("requestId"))
        .and_then(Value::as_str)
    {
        Some(request) => conn
            .prepare_cached("SELECT poster_path FROM media_requests WHERE id = ?1")?
            .query_row([request], |r| r.get::<_, Option<String>>(0))
            .optional()?
            .flatten()
            .filter(|p| p.starts_with('/') && p.len() < 200 && !p.contains(".."))
            .map(|p| format!("{TMDB_POSTER_BASE}{p}")),
        None => None,
    };
    // The bell's title is short ("Now available"); elsewhere the message names the title.
    let title = match metadata
        .as_ref()
        .and_then(|m| m.get("title"))
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
    {
        Some(name) => format!("{title}: {}", name.trim()),
        None => title,
    };
    let body = match row.collapsed {
        0 => body,
        n => format!(
            "{body}\n({n} more change{} since the last message.)",
            if n == 1 { "" } else { "s" }
        ),
    };
    let message = Message {
        title,
        body,
        link: links.absolute(&row.event),
        image: poster,
        tags: tags(&row.event).iter().map(|t| (*t).to_owned()).collect(),
        event: row.event.clone(),
        idempotency_key: row.id.clone(),
    };
    let active: bool = conn
        .prepare_cached("SELECT status = 'active' FROM users WHERE id = ?1")?
        .query_row([&row.user_id], |r| r.get(0))
        .optional()?
        .unwrap_or(false);
    if !active {
        return Ok(None);
    }
    let channel = channel_settings::load(conn, row.channel, cipher)?;
    let target = prefs::target(conn, cipher, &row.user_id, row.channel)?;
    // A browser subscribed again by someone else (a shared computer) is theirs now.
    let device = match &row.device {
        Some(id) => push::subscriptions::get(conn, id)?.filter(|d| d.user_id == row.user_id),
        None => None,
    };
    Ok(Some(Context {
        message,
        channel,
        target,
        device,
    }))
}

/// ntfy tags (emoji short codes) per event.
fn tags(event: &str) -> &'static [&'static str] {
    match event {
        "request.approved" => &["thumbsup"],
        "request.available" => &["white_check_mark"],
        "request.declined" | "request.failed" | "download.failed" => &["x"],
        "download.completed" => &["arrow_down"],
        "problem.updated" => &["wrench"],
        "service.down" => &["rotating_light"],
        "service.recovered" => &["green_circle"],
        "user.signup" => &["wave"],
        "announcement" => &["loudspeaker"],
        _ => &[],
    }
}

/// Dashboard links: absolute ones (from `server.public_url`) for email and the like, paths
/// under the base for the service worker.
#[derive(Debug, Clone)]
struct Links {
    public_url: Option<String>,
    base: String,
}

impl Links {
    fn new(state: &AppState) -> Self {
        let server = &state.config().server;
        Self {
            public_url: server
                .public_url
                .as_deref()
                .map(|u| u.trim_end_matches('/').to_owned()),
            base: server.base().to_owned(),
        }
    }

    fn page(event: &str) -> &'static str {
        match event.split('.').next() {
            // The problem list is on the My requests page.
            Some("request" | "problem") => "/requests",
            Some("download") => "/downloads",
            Some("service") => "/",
            _ if event == "user.signup" => "/admin/users",
            _ => "/notifications",
        }
    }

    fn absolute(&self, event: &str) -> Option<String> {
        let public = self.public_url.as_deref()?;
        // public_url holds the base path when there is one (checked at load).
        let origin_and_base = if self.base.is_empty() || public.ends_with(&self.base) {
            public.to_owned()
        } else {
            format!("{public}{}", self.base)
        };
        Some(format!("{origin_and_base}{}", Self::page(event)))
    }

    fn path(&self, event: &str) -> String {
        format!("{}{}", self.base, Self::page(event))
    }
}

/// One try: reads what it needs, sends on the blocking pool holding the channel's permit.
async fn attempt(
    state: &AppState,
    row: &Claimed,
    permit: tokio::sync::OwnedSemaphorePermit,
    pushers: &PusherCache,
) -> Tried {
    let links = Links::new(state);
    let cipher = state.cipher().clone();
    let read_row = row.clone();
    let read_links = links.clone();
    let context = state
        .db()
        .read(move |conn| context(conn, &cipher, &read_row, &read_links))
        .await;
    let context = match context {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Tried::Skipped(
                "the notification or its user no longer exists, or the account is suspended".into(),
            );
        }
        Err(e) => return Tried::Failed(format!("cannot read the delivery: {e}"), Class::Transient),
    };
    if !context.channel.enabled {
        return Tried::Skipped("the admin turned this channel off".into());
    }
    let Some(target) = context.target else {
        return Tried::Skipped("the user turned this channel off or has no address for it".into());
    };
    let message = context.message;
    if row.channel == Kind::Webpush {
        let Some(device) = context.device else {
            return Tried::Skipped("the device was unsubscribed".into());
        };
        drop(permit);
        return push_to(
            state,
            pushers,
            &context.channel,
            device,
            &message,
            &links,
            &row.event,
        )
        .await;
    }
    let settings = context.channel;
    let discord_base = state.config().notifications.discord_base_url.clone();
    let sent_at = crate::time::rfc3339(state.clock().now_ms());
    let sent = crate::blocking::run_with_permit(permit, move || {
        Ok(match target {
            Target::Email(to) => match settings.email() {
                Some(s) => channels::email::send(&s, &to, &message),
                None => Err(SendError::InvalidSettings("email is not set up".into())),
            },
            Target::Ntfy(topic) => channels::ntfy::send(&settings.ntfy(), &topic, &message),
            Target::Gotify(token) => match settings.gotify() {
                Some(s) => channels::gotify::send(&s, &token, &message),
                None => Err(SendError::InvalidSettings(
                    "Gotify has no server URL".into(),
                )),
            },
            Target::Discord(url) => channels::discord::send(&discord_base, &url, &message),
            Target::Webhook(url) => {
                channels::webhook::send(&settings.webhook(), &url, &message, &sent_at)
            }
            Target::WebPush => Err(SendError::InvalidTarget("not a push channel".into())),
        })
    })
    .await;
    match sent {
        Ok(Ok(())) => Tried::Delivered,
        Ok(Err(e)) => Tried::Failed(e.to_string(), e.class()),
        Err(e) => Tried::Failed(e.to_string(), Class::Transient),
    }
}

/// Web Push to one device, signed with the admin's subject when set (else `push.subject`).
async fn push_to(
    state: &AppState,
    pushers: &PusherCache,
    channel: &channel_settings::ChannelRow,
    device: push::Subscription,
    message: &Message,
    links: &Links,
    event: &str,
) -> Tried {
    let mut config = state.config().push.clone();
    if let Some(subject) = channel
        .settings
        .get("subject")
        .and_then(Value::as_str)
        .filter(|s| push::check_subject(s).is_ok())
    {
        subject.clone_into(&mut config.subject);
    }
    let pusher = {
        let mut cached = pushers.lock().unwrap_or_else(PoisonError::into_inner);
        match cached.as_ref() {
            Some((subject, pusher)) if *subject == config.subject => pusher.clone(),
            _ => {
                let pusher = Pusher::new(&config, state.data_dir().vapid.clone());
                *cached = Some((config.subject.clone(), pusher.clone()));
                pusher
            }
        }
    };
    let push_message = PushMessage {
        title: crate::youtube::ytdlp::truncate_chars(&message.title, PUSH_TITLE_CHARS),
        body: crate::youtube::ytdlp::truncate_chars(&message.body, PUSH_BODY_CHARS),
        url: Some(links.path(event)),
        icon: Some(format!("{}/icons/icon-192.png", links.base)),
        image: None,
        tag: Some(message.idempotency_key.clone()),
    };
    let options = PushOptions {
        topic: Some(push::send::topic_for(&message.idempotency_key)),
        ..PushOptions::default()
    };
    match pusher.send(state, device, &push_message, &options).await {
        Ok(Outcome::Delivered) => Tried::Delivered,
        Ok(Outcome::Gone) => Tried::Failed(
            "the push service says this device is gone (404/410); its subscription was removed"
                .into(),
            Class::Permanent,
        ),
        Ok(Outcome::Permanent(reason)) => Tried::Failed(reason, Class::Permanent),
        Ok(Outcome::Transient(reason)) => Tried::Failed(reason, Class::Transient),
        Err(e) => Tried::Failed(e.to_string(), Class::Transient),
    }
}

/// The wait before try number `attempts + 1`: `min * 2^(attempts-1)` capped at `max`, plus up
/// to a quarter more at random so that many failed rows do not retry in step.
pub fn backoff_ms(attempts: i64, config: &NotificationsConfig, jitter: f64) -> i64 {
    let min = i64::try_from(config.retry_min_secs)
        .unwrap_or(60)
        .saturating_mul(1000);
    let max = i64::try_from(config.retry_max_secs)
        .unwrap_or(21_600)
        .saturating_mul(1000);
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let base = min.saturating_mul(1_i64 << doublings).min(max);
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let extra = (base as f64 * 0.25 * jitter.clamp(0.0, 1.0)) as i64;
    (base + extra).min(max)
}

/// Stores how a try went.
async fn record(state: &AppState, row: &Claimed, tried: Tried) -> AppResult<()> {
    let now = state.clock().now_ms();
    let config = state.config().notifications.clone();
    let give_up_ms = i64::try_from(config.give_up_hours).unwrap_or(24) * HOUR_MS;
    let (status, error, next) = match tried {
        Tried::Delivered => ("delivered", None, now),
        Tried::Skipped(reason) => ("skipped", Some(reason), now),
        Tried::Failed(error, Class::Permanent) => ("failed", Some(error), now),
        Tried::Failed(error, Class::Transient) => {
            let next = now + backoff_ms(row.attempts + 1, &config, rand::random::<f64>());
            if next - row.created_at > give_up_ms {
                (
                    "failed",
                    Some(format!("gave up after {} h: {error}", config.give_up_hours)),
                    now,
                )
            } else {
                ("pending", Some(error), next)
            }
        }
    };
    match status {
        "delivered" => {
            tracing::info!(delivery = %row.id, channel = row.channel.as_str(), event = %row.event, "notification delivered")
        }
        "pending" => {
            tracing::warn!(delivery = %row.id, channel = row.channel.as_str(), error = error.as_deref().unwrap_or(""), "notification delivery failed; will retry")
        }
        _ => {
            tracing::warn!(delivery = %row.id, channel = row.channel.as_str(), status, error = error.as_deref().unwrap_or(""), "notification not delivered")
        }
    }
    let error = error.map(|e| e.chars().take(1000).collect::<String>());
    let id = row.id.clone();
    state
        .db()
        .write(move |tx| {
            tx.prepare_cached(
                "UPDATE notification_deliveries
                    SET status = ?2, last_error = ?3, next_attempt_at = ?4, updated_at = ?5,
                        delivered_at = CASE WHEN ?2 = 'delivered' THEN ?5 ELSE delivered_at END
                  WHERE id = ?1 AND status = 'sending'",
            )?
            .execute(rusqlite::params![id, status, error, next, now])?;
            Ok(())
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_minimum_up_to_the_maximum_with_bounded_jitter() {
        let config = NotificationsConfig::default();
        assert_eq!(backoff_ms(1, &config, 0.0), 60_000);
        assert_eq!(backoff_ms(2, &config, 0.0), 120_000);
        assert_eq!(backoff_ms(3, &config, 0.0), 240_000);
        assert_eq!(backoff_ms(1, &config, 1.0), 75_000);
        assert_eq!(backoff_ms(20, &config, 0.0), 6 * 3600 * 1000);
        assert_eq!(backoff_ms(20, &config, 1.0), 6 * 3600 * 1000);
        assert_eq!(backoff_ms(1000, &config, 0.5), 6 * 3600 * 1000);
    }

    #[test]
    fn links_name_the_page_under_the_public_url() {
        let links = Links {
            public_url: Some("https://home.example/medianest".into()),
            base: "/medianest".into(),
        };
        assert_eq!(
            links.absolute("request.available").as_deref(),
            Some("https://home.example/medianest/requests")
        );
        assert_eq!(links.path("download.failed"), "/medianest/downloads");
        assert_eq!(links.path("user.signup"), "/medianest/admin/users");
        let none = Links {
            public_url: None,
            base: String::new(),
        };
        assert_eq!(none.absolute("announcement"), None);
        assert_eq!(none.path("announcement"), "/notifications");
    }
}
