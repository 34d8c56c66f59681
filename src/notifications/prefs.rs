//! Each user's notification choices: which of their channels are on, where each goes, and which
//! channels get which event. The outbox reads [`channels_for_event`] when a notification is made
//! (inside that transaction, no secrets needed) and the delivery worker reads [`target`] when it
//! sends (the targets are encrypted at rest).
//!
//! Routes: `GET/PUT /me/notifications`, the signed-in user's own choices only. The Gotify token
//! and the Discord and webhook URLs are write-only (a read says `tokenSet` / `urlSet`; a PUT
//! that omits one keeps it, `""` or `null` clears it). Targets are checked here as the senders
//! check them (`channels::*::check_*`), so a user can only name hosts the admin allows. Whether
//! the admin turned a channel on is not this module's to enforce at delivery time.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::Method;
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::channel_settings::{self, ChannelRow, Kind};
use super::channels::{discord, email, gotify, ntfy, webhook};
use crate::auth::CurrentUser;
use crate::crypto::Cipher;
use crate::error::{AppError, AppResult};
use crate::http::ApiJson;
use crate::response::ApiResponse;
use crate::routes::{Access, Routes};
use crate::state::AppState;
use crate::time::rfc3339;

/// The events a user can choose channels for, in the order the settings page shows them.
pub const EVENTS: [&str; 11] = [
    "request.approved",
    "request.declined",
    "request.available",
    "request.failed",
    "problem.updated",
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
    pub updated_at: i64,
}

/// Reads a user's stored row (none when they never saved their choices).
pub fn load(conn: &Connection, user_id: &str) -> AppResult<Option<Stored>> {
    let row = conn
        .prepare_cached(
            "SELECT enabled, targets, events, updated_at FROM notification_prefs
             WHERE user_id = ?1",
        )?
        .query_row([user_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .optional()?;
    Ok(row.map(|(enabled, targets, events, updated_at)| Stored {
        // Both columns are CHECKed to be valid JSON and only written by this module.
        enabled: serde_json::from_str(&enabled).unwrap_or_default(),
        targets,
        events: events.and_then(|e| serde_json::from_str(&e).ok()),
        updated_at,
    }))
}

/// Whether the user has `kind` on: their stored choice, else the default.
fn is_on(conn: &Connection, user_id: &str, stored: Option<&Stored>, kind: Kind) -> AppResult<bool> {
    match stored.and_then(|s| s.enabled.get(kind.as_str())) {
        Some(on) => Ok(*on),
        None => default_enabled(conn, user_id, kind),
    }
}

/// The stored targets, decrypted (none stored reads as none set).
fn unseal(cipher: &Cipher, stored: Option<&Stored>) -> AppResult<Targets> {
    Ok(match stored.and_then(|s| s.targets.as_deref()) {
        Some(sealed) => serde_json::from_str(&cipher.decrypt(sealed)?).unwrap_or_default(),
        None => Targets::default(),
    })
}

/// The account's own address (a Plex account's email), the email channel's default target.
fn account_email(conn: &Connection, user_id: &str) -> AppResult<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT email FROM users WHERE id = ?1")?
        .query_row([user_id], |r| r.get::<_, Option<String>>(0))
        .optional()?
        .flatten()
        .filter(|e| !e.trim().is_empty()))
}

/// Whether a user who never chose has `kind` on: email when their account has an address (the
/// Plex account's), Web Push when they subscribed a browser; nothing else.
fn default_enabled(conn: &Connection, user_id: &str, kind: Kind) -> AppResult<bool> {
    Ok(match kind {
        Kind::Email => account_email(conn, user_id)?.is_some(),
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
        if !is_on(conn, user_id, stored.as_ref(), kind)? {
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
    if !is_on(conn, user_id, stored.as_ref(), kind)? {
        return Ok(None);
    }
    let targets = unseal(cipher, stored.as_ref())?;
    Ok(match kind {
        Kind::Email => match targets.email {
            Some(address) => Some(Target::Email(address)),
            None => account_email(conn, user_id)?.map(Target::Email),
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

/// Events only admins receive: a non-admin neither sees nor chooses them.
pub const ADMIN_EVENTS: [&str; 3] = ["service.down", "service.recovered", "user.signup"];

/// The events a user may choose channels for, in [`EVENTS`] order.
pub fn receivable_events(is_admin: bool) -> impl Iterator<Item = &'static str> {
    EVENTS
        .into_iter()
        .filter(move |e| is_admin || !ADMIN_EVENTS.contains(e))
}

/// The API field holding a channel's target (Web Push goes to the user's subscribed devices).
fn target_field(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Email => Some("address"),
        Kind::Ntfy => Some("topic"),
        Kind::Gotify => Some("token"),
        Kind::Discord | Kind::Webhook => Some("url"),
        Kind::Webpush => None,
    }
}

fn label(kind: Kind) -> &'static str {
    match kind {
        Kind::Email => "Email",
        Kind::Ntfy => "ntfy",
        Kind::Gotify => "Gotify",
        Kind::Discord => "Discord",
        Kind::Webhook => "Webhook",
        Kind::Webpush => "Web Push",
    }
}

impl Targets {
    fn slot(&mut self, kind: Kind) -> Option<&mut Option<String>> {
        match kind {
            Kind::Email => Some(&mut self.email),
            Kind::Ntfy => Some(&mut self.ntfy_topic),
            Kind::Gotify => Some(&mut self.gotify_token),
            Kind::Discord => Some(&mut self.discord_url),
            Kind::Webhook => Some(&mut self.webhook_url),
            Kind::Webpush => None,
        }
    }
}

/// Whether the admin turned `row`'s channel on with what it needs to send.
fn available(row: &ChannelRow) -> bool {
    row.enabled
        && match row.kind {
            Kind::Email => row.email().is_some(),
            Kind::Gotify => row.gotify().is_some(),
            // An empty allowed-host list turns webhooks off.
            Kind::Webhook => !row.webhook().allowed_hosts.is_empty(),
            Kind::Ntfy | Kind::Discord | Kind::Webpush => true,
        }
}

/// Per receivable event, the channels that get it: those in `on`, filtered by the stored
/// choice for that event when there is one.
fn effective_events(
    on: &[Kind],
    stored: Option<&BTreeMap<String, Vec<String>>>,
    is_admin: bool,
) -> BTreeMap<String, Vec<String>> {
    receivable_events(is_admin)
        .map(|event| {
            let choice = stored.and_then(|m| m.get(event));
            let list = on
                .iter()
                .filter(|k| choice.is_none_or(|l| l.iter().any(|c| c == k.as_str())))
                .map(|k| k.as_str().to_owned())
                .collect();
            (event.to_owned(), list)
        })
        .collect()
}

fn device_count(conn: &Connection, user_id: &str) -> AppResult<i64> {
    Ok(conn
        .prepare_cached("SELECT COUNT(*) FROM push_subscriptions WHERE user_id = ?1")?
        .query_row([user_id], |r| r.get(0))?)
}

/// What `GET /me/notifications` shows: each channel's state (never a write-only secret) and
/// the effective per-event choice.
fn view(conn: &Connection, cipher: &Cipher, user_id: &str, is_admin: bool) -> AppResult<Value> {
    let stored = load(conn, user_id)?;
    let targets = unseal(cipher, stored.as_ref())?;
    let mut channels = Map::new();
    let mut on = Vec::new();
    for kind in Kind::ALL {
        let row = channel_settings::load(conn, kind, cipher)?;
        let enabled = is_on(conn, user_id, stored.as_ref(), kind)?;
        if enabled {
            on.push(kind);
        }
        let mut c = Map::new();
        c.insert("enabled".into(), json!(enabled));
        c.insert("available".into(), json!(available(&row)));
        match kind {
            Kind::Email => {
                c.insert("address".into(), json!(targets.email));
                c.insert(
                    "defaultAddress".into(),
                    json!(account_email(conn, user_id)?),
                );
            }
            Kind::Ntfy => {
                c.insert("topic".into(), json!(targets.ntfy_topic));
                c.insert("server".into(), json!(row.ntfy().url));
            }
            Kind::Gotify => {
                c.insert("tokenSet".into(), json!(targets.gotify_token.is_some()));
                c.insert("server".into(), json!(row.gotify().map(|g| g.url)));
            }
            Kind::Discord => {
                c.insert("urlSet".into(), json!(targets.discord_url.is_some()));
            }
            Kind::Webhook => {
                c.insert("urlSet".into(), json!(targets.webhook_url.is_some()));
                c.insert("allowedHosts".into(), json!(row.webhook().allowed_hosts));
            }
            Kind::Webpush => {
                c.insert("devices".into(), json!(device_count(conn, user_id)?));
            }
        }
        channels.insert(kind.as_str().into(), Value::Object(c));
    }
    let events = effective_events(
        &on,
        stored.as_ref().and_then(|s| s.events.as_ref()),
        is_admin,
    );
    Ok(json!({
        "channels": channels,
        "events": events,
        "updatedAt": stored.map(|s| rfc3339(s.updated_at)),
    }))
}

/// The user's routes (under `/api/v1`).
pub fn routes() -> Routes {
    Routes::new()
        .add(
            Method::GET,
            "/me/notifications",
            Access::User,
            get_my_notifications,
        )
        .add(
            Method::PUT,
            "/me/notifications",
            Access::User,
            update_my_notifications,
        )
}

/// `GET /me/notifications`.
pub async fn get_my_notifications(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<ApiResponse> {
    let cipher = state.cipher().clone();
    let user_id = user.user_id().to_owned();
    let is_admin = user.0.is_admin();
    let data = state
        .db()
        .read(move |conn| view(conn, &cipher, &user_id, is_admin))
        .await?;
    Ok(ApiResponse::ok(&data))
}

/// `PUT /me/notifications` `{channels: {kind: {enabled, target}}, events: {event: [kind]}}`:
/// channels left out keep their state, `events` left out keeps the per-event choice (a channel
/// turned on then gets every event), `events: null` goes back to the defaults.
pub async fn update_my_notifications(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> AppResult<ApiResponse> {
    let is_admin = user.0.is_admin();
    let update = parse_update(&body, is_admin).map_err(AppError::validation)?;
    let cipher = state.cipher().clone();
    let user_id = user.user_id().to_owned();
    let discord_base = state.config().notifications.discord_base_url.clone();
    let now = state.clock().now_ms();
    let data = state
        .db()
        .write(move |tx| {
            apply(tx, &cipher, &user_id, is_admin, &discord_base, update, now)?;
            view(tx, &cipher, &user_id, is_admin)
        })
        .await?;
    Ok(ApiResponse::ok(&data))
}

/// A target field of a PUT.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    Keep,
    Clear,
    Set(String),
}

#[derive(Debug)]
struct ChannelUpdate {
    kind: Kind,
    enabled: Option<bool>,
    target: Change,
}

#[derive(Debug)]
enum EventsUpdate {
    Keep,
    Reset,
    Set(BTreeMap<String, Vec<Kind>>),
}

#[derive(Debug)]
struct Update {
    channels: Vec<ChannelUpdate>,
    events: EventsUpdate,
}

type FieldErrors = Vec<(String, String)>;

/// Checks the shape of a PUT body; every problem is reported at once, by field.
fn parse_update(body: &Map<String, Value>, is_admin: bool) -> Result<Update, FieldErrors> {
    let mut bad: FieldErrors = Vec::new();
    for key in body.keys() {
        if key != "channels" && key != "events" {
            bad.push((
                key.clone(),
                "unknown field (expected channels and events)".into(),
            ));
        }
    }
    let mut channels = Vec::new();
    match body.get("channels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let Some(kind) = Kind::parse(name) else {
                    bad.push((
                        format!("channels.{name}"),
                        "unknown channel (expected email, ntfy, gotify, discord, webhook or webpush)"
                            .into(),
                    ));
                    continue;
                };
                let Value::Object(fields) = value else {
                    bad.push((format!("channels.{name}"), "must be an object".into()));
                    continue;
                };
                let target_name = target_field(kind);
                for key in fields.keys() {
                    if key != "enabled" && Some(key.as_str()) != target_name {
                        bad.push((
                            format!("channels.{name}.{key}"),
                            "unknown field for this channel".into(),
                        ));
                    }
                }
                let enabled = match fields.get("enabled") {
                    None => None,
                    Some(Value::Bool(b)) => Some(*b),
                    Some(_) => {
                        bad.push((
                            format!("channels.{name}.enabled"),
                            "must be true or false".into(),
                        ));
                        None
                    }
                };
                let target = match target_name.map(|f| (f, fields.get(f))) {
                    None | Some((_, None)) => Change::Keep,
                    Some((_, Some(Value::Null))) => Change::Clear,
                    Some((_, Some(Value::String(s)))) if s.trim().is_empty() => Change::Clear,
                    Some((_, Some(Value::String(s)))) => Change::Set(s.clone()),
                    Some((field, Some(_))) => {
                        bad.push((
                            format!("channels.{name}.{field}"),
                            "must be a string (\"\" clears it)".into(),
                        ));
                        Change::Keep
                    }
                };
                channels.push(ChannelUpdate {
                    kind,
                    enabled,
                    target,
                });
            }
        }
        Some(_) => bad.push(("channels".into(), "must be an object of channels".into())),
    }
    let events = match body.get("events") {
        None => EventsUpdate::Keep,
        Some(Value::Null) => EventsUpdate::Reset,
        Some(Value::Object(map)) => {
            let mut out = BTreeMap::new();
            for (event, value) in map {
                let field = format!("events.{event}");
                if !EVENTS.contains(&event.as_str()) {
                    bad.push((field, "unknown event".into()));
                    continue;
                }
                if !is_admin && ADMIN_EVENTS.contains(&event.as_str()) {
                    bad.push((field, "only admins receive this event".into()));
                    continue;
                }
                let Value::Array(items) = value else {
                    bad.push((field, "must be a list of channels".into()));
                    continue;
                };
                let mut kinds = Vec::new();
                for item in items {
                    match item.as_str().and_then(Kind::parse) {
                        Some(kind) if !kinds.contains(&kind) => kinds.push(kind),
                        Some(_) => {}
                        None => bad.push((field.clone(), format!("unknown channel {item}"))),
                    }
                }
                out.insert(event.clone(), kinds);
            }
            EventsUpdate::Set(out)
        }
        Some(_) => {
            bad.push((
                "events".into(),
                "must be an object of event: [channels], or null for the defaults".into(),
            ));
            EventsUpdate::Keep
        }
    };
    if bad.is_empty() {
        Ok(Update { channels, events })
    } else {
        Err(bad)
    }
}

/// Checks a target as its sender will and returns it as stored.
fn check_target(
    kind: Kind,
    raw: &str,
    row: &ChannelRow,
    discord_base: &str,
) -> Result<String, String> {
    if raw.contains(['\r', '\n']) {
        return Err("must be on one line".into());
    }
    let value = raw.trim();
    match kind {
        Kind::Email => {
            if value.len() > 254 {
                return Err("must be at most 254 characters".into());
            }
            let mailbox = email::check_mailbox(value)?;
            if mailbox.name.is_some() {
                return Err("must be only the address, e.g. name@example.com".into());
            }
            Ok(mailbox.email.to_string())
        }
        Kind::Ntfy => ntfy::check_topic(value).map(|()| value.to_owned()),
        Kind::Gotify => {
            if value.len() > 64 {
                return Err("must be 1 to 64 characters".into());
            }
            gotify::check_token(value)
                .map(|()| value.to_owned())
                .map_err(|r| format!("{r} (no spaces)"))
        }
        Kind::Discord | Kind::Webhook if value.len() > 2048 => {
            Err("must be at most 2048 characters".into())
        }
        Kind::Discord => discord::check_webhook_url(value, discord_base).map(|_| value.to_owned()),
        Kind::Webhook => webhook::check_target(value, &row.webhook()).map(|_| value.to_owned()),
        Kind::Webpush => Err("Web Push has no target here".into()),
    }
}

/// Applies a parsed PUT to the stored choices, refusing (with every field at once) a target
/// that does not check out, a channel turned on that the admin has not enabled or that has
/// nowhere to go, and an event routed to a channel that is not on.
fn apply(
    conn: &Connection,
    cipher: &Cipher,
    user_id: &str,
    is_admin: bool,
    discord_base: &str,
    update: Update,
    now_ms: i64,
) -> AppResult<()> {
    let stored = load(conn, user_id)?;
    let mut targets = unseal(cipher, stored.as_ref())?;
    let mut enabled = stored
        .as_ref()
        .map(|s| s.enabled.clone())
        .unwrap_or_default();
    let mut rows = Vec::new();
    let mut was_on = Vec::new();
    for kind in Kind::ALL {
        rows.push(channel_settings::load(conn, kind, cipher)?);
        if is_on(conn, user_id, stored.as_ref(), kind)? {
            was_on.push(kind);
        }
    }
    let row_of = |kind: Kind| rows.iter().find(|r| r.kind == kind);
    let mut bad: FieldErrors = Vec::new();
    for change in &update.channels {
        let kind = change.kind;
        let name = kind.as_str();
        let Some(row) = row_of(kind) else { continue };
        if let (Some(field), Some(slot)) = (target_field(kind), targets.slot(kind)) {
            match &change.target {
                Change::Keep => {}
                Change::Clear => *slot = None,
                Change::Set(raw) => match check_target(kind, raw, row, discord_base) {
                    Ok(value) => *slot = Some(value),
                    Err(reason) => bad.push((format!("channels.{name}.{field}"), reason)),
                },
            }
        }
        if let Some(on) = change.enabled {
            if on && !was_on.contains(&kind) && !available(row) {
                bad.push((
                    format!("channels.{name}.enabled"),
                    format!(
                        "{} notifications are not enabled by the admin on this server",
                        label(kind)
                    ),
                ));
            }
            enabled.insert(name.to_owned(), on);
        }
    }
    let mut now_on = Vec::new();
    for kind in Kind::ALL {
        let on = match enabled.get(kind.as_str()) {
            Some(on) => *on,
            None => default_enabled(conn, user_id, kind)?,
        };
        if !on {
            continue;
        }
        now_on.push(kind);
        let Some(field) = target_field(kind) else {
            continue;
        };
        let key = format!("channels.{}.{field}", kind.as_str());
        let has_target = match kind {
            Kind::Email => targets.email.is_some() || account_email(conn, user_id)?.is_some(),
            _ => targets.slot(kind).is_some_and(|t| t.is_some()),
        };
        if !has_target && !bad.iter().any(|(k, _)| *k == key) {
            let reason = match kind {
                Kind::Email => "is required to turn email on: your account has no email address",
                _ => "is required to turn this channel on",
            };
            bad.push((key, reason.into()));
        }
    }
    let events = match update.events {
        EventsUpdate::Reset => None,
        EventsUpdate::Set(chosen) => {
            for (event, kinds) in &chosen {
                for kind in kinds {
                    if !now_on.contains(kind) {
                        bad.push((
                            format!("events.{event}"),
                            format!("{} is not turned on", label(*kind)),
                        ));
                    }
                }
            }
            // Every receivable event is stored, so a later channel does not join one silently;
            // an event left out of the body gets every channel that is on.
            Some(
                receivable_events(is_admin)
                    .map(|event| {
                        let list = now_on
                            .iter()
                            .filter(|k| chosen.get(event).is_none_or(|c| c.contains(k)))
                            .map(|k| k.as_str().to_owned())
                            .collect();
                        (event.to_owned(), list)
                    })
                    .collect(),
            )
        }
        // A channel turned on now joins every event; one turned off leaves them.
        EventsUpdate::Keep => stored
            .as_ref()
            .and_then(|s| s.events.clone())
            .map(|events| {
                events
                    .into_iter()
                    .map(|(event, list)| {
                        let list = now_on
                            .iter()
                            .filter(|k| !was_on.contains(k) || list.iter().any(|c| c == k.as_str()))
                            .map(|k| k.as_str().to_owned())
                            .collect();
                        (event, list)
                    })
                    .collect()
            }),
    };
    if !bad.is_empty() {
        return Err(AppError::validation(bad));
    }
    save(
        conn,
        cipher,
        user_id,
        &enabled,
        &targets,
        events.as_ref(),
        now_ms,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use base64::Engine;

    use super::*;
    use crate::data_dir::SecretKey;

    fn setup() -> (Connection, Cipher) {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrations::apply(&mut conn).unwrap();
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        (conn, Cipher::new(&SecretKey::from_base64(&key).unwrap()))
    }

    fn user(conn: &Connection, id: &str, email: Option<&str>) {
        conn.execute(
            "INSERT INTO users (id, username, email, role, status, created_at)
             VALUES (?1, ?1, ?2, 'user', 'active', 0)",
            rusqlite::params![id, email],
        )
        .unwrap();
    }

    fn subscribe(conn: &Connection, user_id: &str) {
        conn.execute(
            "INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth, created_at)
             VALUES (?1, ?2, 'https://fcm.googleapis.com/' || ?1, 'k', 'a', 0)",
            rusqlite::params![format!("sub-{user_id}"), user_id],
        )
        .unwrap();
    }

    fn names(kinds: Vec<Kind>) -> Vec<&'static str> {
        kinds.into_iter().map(Kind::as_str).collect()
    }

    #[test]
    fn by_default_email_goes_to_the_account_address_and_push_to_subscribed_devices() {
        let (conn, cipher) = setup();
        user(&conn, "ann", Some("ann@example.com"));
        user(&conn, "bob", None);
        for event in EVENTS {
            assert_eq!(
                names(channels_for_event(&conn, "ann", event).unwrap()),
                ["email"]
            );
            assert!(channels_for_event(&conn, "bob", event).unwrap().is_empty());
        }
        assert_eq!(
            target(&conn, &cipher, "ann", Kind::Email).unwrap(),
            Some(Target::Email("ann@example.com".into()))
        );
        assert_eq!(target(&conn, &cipher, "bob", Kind::Email).unwrap(), None);
        assert_eq!(target(&conn, &cipher, "ann", Kind::Ntfy).unwrap(), None);
        assert_eq!(target(&conn, &cipher, "bob", Kind::Webpush).unwrap(), None);

        subscribe(&conn, "bob");
        assert_eq!(
            names(channels_for_event(&conn, "bob", "request.available").unwrap()),
            ["webpush"]
        );
        assert_eq!(
            target(&conn, &cipher, "bob", Kind::Webpush).unwrap(),
            Some(Target::WebPush)
        );
    }

    #[test]
    fn stored_choices_turn_channels_on_and_off_and_filter_events() {
        let (conn, cipher) = setup();
        user(&conn, "ann", Some("ann@example.com"));
        let enabled = BTreeMap::from([
            ("email".to_owned(), false),
            ("ntfy".to_owned(), true),
            ("gotify".to_owned(), true),
        ]);
        let targets = Targets {
            ntfy_topic: Some("ann-movies".into()),
            gotify_token: Some("Atoken.1".into()),
            ..Targets::default()
        };
        let events = BTreeMap::from([
            ("request.available".to_owned(), vec!["ntfy".to_owned()]),
            ("request.failed".to_owned(), vec![]),
        ]);
        save(&conn, &cipher, "ann", &enabled, &targets, Some(&events), 5).unwrap();

        assert_eq!(
            names(channels_for_event(&conn, "ann", "request.available").unwrap()),
            ["ntfy"]
        );
        assert!(
            channels_for_event(&conn, "ann", "request.failed")
                .unwrap()
                .is_empty()
        );
        // An event without a stored choice goes to every channel that is on.
        assert_eq!(
            names(channels_for_event(&conn, "ann", "announcement").unwrap()),
            ["ntfy", "gotify"]
        );
        assert_eq!(target(&conn, &cipher, "ann", Kind::Email).unwrap(), None);
        assert_eq!(
            target(&conn, &cipher, "ann", Kind::Ntfy).unwrap(),
            Some(Target::Ntfy("ann-movies".into()))
        );
        assert_eq!(
            target(&conn, &cipher, "ann", Kind::Gotify).unwrap(),
            Some(Target::Gotify("Atoken.1".into()))
        );
        // On but without a target: nowhere to send.
        let mut with_discord = enabled.clone();
        with_discord.insert("discord".into(), true);
        save(&conn, &cipher, "ann", &with_discord, &targets, None, 6).unwrap();
        assert_eq!(target(&conn, &cipher, "ann", Kind::Discord).unwrap(), None);
        // The targets are not stored in the clear.
        let sealed: String = conn
            .query_row(
                "SELECT targets FROM notification_prefs WHERE user_id = 'ann'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!sealed.contains("ann-movies") && !sealed.contains("Atoken"));
    }

    fn put(conn: &Connection, cipher: &Cipher, body: Value, is_admin: bool) -> AppResult<Value> {
        let Value::Object(body) = body else {
            panic!("not an object")
        };
        let update = parse_update(&body, is_admin).map_err(AppError::validation)?;
        apply(
            conn,
            cipher,
            "ann",
            is_admin,
            discord::DEFAULT_BASE_URL,
            update,
            9,
        )?;
        view(conn, cipher, "ann", is_admin)
    }

    fn enable_admin_channel(conn: &Connection, kind: &str) {
        conn.execute(
            "INSERT INTO notification_channels (kind, enabled, settings, updated_at)
             VALUES (?1, 1, '{}', 0)",
            [kind],
        )
        .unwrap();
    }

    #[test]
    fn a_channel_turned_on_later_joins_every_kept_event_choice() {
        let (conn, cipher) = setup();
        user(&conn, "ann", Some("ann@example.com"));
        enable_admin_channel(&conn, "ntfy");
        enable_admin_channel(&conn, "discord");
        let first = json!({
            "channels": {"ntfy": {"enabled": true, "topic": "ann"}},
            "events": {"request.available": ["ntfy"], "announcement": []},
        });
        let v = put(&conn, &cipher, first, false).unwrap();
        assert_eq!(v["events"]["request.available"], json!(["ntfy"]));
        assert_eq!(v["events"]["request.failed"], json!(["email", "ntfy"]));
        assert!(v["events"].get("service.down").is_none());
        let second = json!({"channels": {"discord": {
            "enabled": true, "url": "https://discord.com/api/webhooks/1/tok"
        }}});
        let v = put(&conn, &cipher, second, false).unwrap();
        assert_eq!(v["events"]["request.available"], json!(["ntfy", "discord"]));
        assert_eq!(v["events"]["announcement"], json!(["discord"]));
        assert_eq!(v["channels"]["discord"]["urlSet"], json!(true));
        assert!(!v.to_string().contains("api/webhooks"));
        assert_eq!(
            names(channels_for_event(&conn, "ann", "announcement").unwrap()),
            ["discord"]
        );
    }
}
