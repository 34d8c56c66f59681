//! Each user's notification choices: which of their channels are on, where each goes, and which
//! channels get which event. The outbox reads [`channels_for_event`] when a notification is made
//! (inside that transaction, no secrets needed) and the delivery worker reads [`target`] when it
//! sends (the targets are encrypted at rest).

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::channel_settings::Kind;
use crate::crypto::Cipher;
use crate::error::{AppError, AppResult};

/// The events a user can choose channels for, in the order the settings page shows them.
pub const EVENTS: [&str; 10] = [
    "request.approved",
    "request.declined",
    "request.available",
    "request.failed",
    "download.completed",
    "download.failed",
    "service.down",
    "service.recovered",
    "user.signup",
    "announcement",
];

/// Where a user's channel goes, as stored (encrypted) in `notification_prefs.targets`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ntfy_topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gotify_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discord_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
}

/// Where one delivery goes, resolved when it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Email(String),
    Ntfy(String),
    Gotify(String),
    Discord(String),
    Webhook(String),
    /// Web Push goes to the delivery's own subscription.
    WebPush,
}

/// The stored row, parsed; `None` fields mean "never set".
#[derive(Debug, Clone, Default)]
pub struct Stored {
    pub enabled: BTreeMap<String, bool>,
    pub targets: Option<String>,
    pub events: Option<BTreeMap<String, Vec<String>>>,
}

/// Reads a user's stored row (none when they never saved their choices).
pub fn load(conn: &Connection, user_id: &str) -> AppResult<Option<Stored>> {
    let row = conn
        .prepare_cached(
            "SELECT enabled, targets, events FROM notification_prefs WHERE user_id = ?1",
        )?
        .query_row([user_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })
        .optional()?;
    Ok(row.map(|(enabled, targets, events)| Stored {
        // Both columns are CHECKed to be valid JSON and only written by this module.
        enabled: serde_json::from_str(&enabled).unwrap_or_default(),
        targets,
        events: events.and_then(|e| serde_json::from_str(&e).ok()),
    }))
}

/// Whether a user who never chose has `kind` on: email when their account has an address (the
/// Plex account's), Web Push when they subscribed a browser; nothing else.
fn default_enabled(conn: &Connection, user_id: &str, kind: Kind) -> AppResult<bool> {
    Ok(match kind {
        Kind::Email => conn
            .prepare_cached("SELECT email IS NOT NULL FROM users WHERE id = ?1")?
            .query_row([user_id], |r| r.get::<_, bool>(0))
            .optional()?
            .unwrap_or(false),
        Kind::Webpush => conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM push_subscriptions WHERE user_id = ?1)")?
            .query_row([user_id], |r| r.get::<_, bool>(0))?,
        _ => false,
    })
}

/// The channels (besides the in-app bell) the user wants `event` on: those they turned on (or
/// that are on by default), filtered by their per-event choice when they made one (the default
/// is every channel they turned on). Does not check whether the admin enabled the channel.
pub fn channels_for_event(conn: &Connection, user_id: &str, event: &str) -> AppResult<Vec<Kind>> {
    let stored = load(conn, user_id)?;
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let on = match stored.as_ref().and_then(|s| s.enabled.get(kind.as_str())) {
            Some(on) => *on,
            None => default_enabled(conn, user_id, kind)?,
        };
        if !on {
            continue;
        }
        let chosen = stored
            .as_ref()
            .and_then(|s| s.events.as_ref())
            .and_then(|events| events.get(event))
            .is_none_or(|list| list.iter().any(|k| k == kind.as_str()));
        if chosen {
            out.push(kind);
        }
    }
    Ok(out)
}

/// Where the user's `kind` channel goes now, or `None` when it is off or has no target (the
/// delivery is then skipped). Email falls back on the account's address.
pub fn target(
    conn: &Connection,
    cipher: &Cipher,
    user_id: &str,
    kind: Kind,
) -> AppResult<Option<Target>> {
    let stored = load(conn, user_id)?;
    let on = match stored.as_ref().and_then(|s| s.enabled.get(kind.as_str())) {
        Some(on) => *on,
        None => default_enabled(conn, user_id, kind)?,
    };
    if !on {
        return Ok(None);
    }
    let targets: Targets = match stored.as_ref().and_then(|s| s.targets.as_deref()) {
        Some(sealed) => serde_json::from_str(&cipher.decrypt(sealed)?).unwrap_or_default(),
        None => Targets::default(),
    };
    Ok(match kind {
        Kind::Email => match targets.email {
            Some(address) => Some(Target::Email(address)),
            None => conn
                .prepare_cached("SELECT email FROM users WHERE id = ?1")?
                .query_row([user_id], |r| r.get::<_, Option<String>>(0))
                .optional()?
                .flatten()
                .map(Target::Email),
        },
        Kind::Ntfy => targets.ntfy_topic.map(Target::Ntfy),
        Kind::Gotify => targets.gotify_token.map(Target::Gotify),
        Kind::Discord => targets.discord_url.map(Target::Discord),
        Kind::Webhook => targets.webhook_url.map(Target::Webhook),
        Kind::Webpush => Some(Target::WebPush),
    })
}

/// Stores a user's choices (the routes validate before calling this).
pub fn save(
    conn: &Connection,
    cipher: &Cipher,
    user_id: &str,
    enabled: &BTreeMap<String, bool>,
    targets: &Targets,
    events: Option<&BTreeMap<String, Vec<String>>>,
    now_ms: i64,
) -> AppResult<()> {
    let json = |e: serde_json::Error| AppError::internal(format!("notification choices: {e}"));
    let sealed = cipher.encrypt(&serde_json::to_string(targets).map_err(json)?)?;
    conn.prepare_cached(
        "INSERT INTO notification_prefs (user_id, enabled, targets, events, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (user_id) DO UPDATE SET enabled = excluded.enabled,
             targets = excluded.targets, events = excluded.events, updated_at = excluded.updated_at",
    )?
    .execute(rusqlite::params![
        user_id,
        serde_json::to_string(enabled).map_err(json)?,
        sealed,
        events
            .map(serde_json::to_string)
            .transpose()
            .map_err(json)?,
        now_ms
    ])?;
    Ok(())
}
