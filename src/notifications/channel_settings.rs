//! The admin's notification channel settings: the `notification_channels` table and
//! `GET/PUT /admin/notifications/channels/{kind}`, `POST …/{kind}/test` and
//! `GET /admin/notifications/channels` (all six, for the admin page). A GET shows the channel's
//! delivery health line too (`health`, from `admin_log`).
//!
//! Each kind has one row: `enabled`, its settings as JSON and its one secret (SMTP password or
//! ntfy access token) encrypted with the app's cipher. Secrets are write-only: a read says only
//! whether one is set (`passwordSet`, `tokenSet`); a PUT that omits it keeps it, `null` or `""`
//! clears it. The test route sends one message now with the stored settings (never with settings
//! from the request, so a secret only ever goes to the server the admin paired it with).

use axum::extract::{Path, State};
use axum::http::Method;
use rusqlite::{Connection, OptionalExtension};
use serde_json::{Map, Value, json};

use super::channels::{self, Message, SendError, discord, email, gotify, ntfy, webhook};
use crate::auth::AdminUser;
use crate::crypto::Cipher;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::ApiJson;
use crate::response::ApiResponse;
use crate::routes::{Access, Routes};
use crate::state::AppState;
use crate::time::rfc3339;

/// A channel kind (the `{kind}` of the routes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Email,
    Ntfy,
    Gotify,
    Discord,
    Webhook,
    Webpush,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Self::Email,
        Self::Ntfy,
        Self::Gotify,
        Self::Discord,
        Self::Webhook,
        Self::Webpush,
    ];

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Ntfy => "ntfy",
            Self::Gotify => "gotify",
            Self::Discord => "discord",
            Self::Webhook => "webhook",
            Self::Webpush => "webpush",
        }
    }

    /// The name used in error messages ("{Service} did not answer in time.").
    fn display(self) -> &'static str {
        match self {
            Self::Email => "The mail server",
            Self::Ntfy => "ntfy",
            Self::Gotify => "Gotify",
            Self::Discord => "Discord",
            Self::Webhook => "The webhook",
            Self::Webpush => "Web Push",
        }
    }

    /// The JSON field that tells whether the secret is set, for kinds that have one.
    fn secret_field(self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::Email => Some(("password", "passwordSet")),
            Self::Ntfy => Some(("token", "tokenSet")),
            _ => None,
        }
    }

    /// The settings fields a PUT may carry besides `enabled` and the secret.
    fn fields(self) -> &'static [&'static str] {
        match self {
            Self::Email => &["host", "port", "security", "username", "from"],
            Self::Ntfy | Self::Gotify => &["url"],
            Self::Discord => &[],
            Self::Webhook => &["allowedHosts"],
            Self::Webpush => &["subject"],
        }
    }
}

/// One channel's row, secret decrypted.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelRow {
    pub kind: Kind,
    pub enabled: bool,
    pub settings: Map<String, Value>,
    pub secret: Option<String>,
    pub updated_at: Option<i64>,
}

impl ChannelRow {
    fn empty(kind: Kind) -> Self {
        Self {
            kind,
            enabled: false,
            settings: defaults(kind),
            secret: None,
            updated_at: None,
        }
    }

    fn str(&self, key: &str) -> Option<String> {
        self.settings
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// The email settings, when set up.
    pub fn email(&self) -> Option<email::EmailSettings> {
        let security = email::Security::parse(&self.str("security")?)?;
        Some(email::EmailSettings {
            host: self.str("host")?,
            port: self
                .settings
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(security.default_port()),
            security,
            username: self.str("username"),
            password: self.secret.clone(),
            from: self.str("from")?,
            extra_root_pem: None,
        })
    }

    pub fn ntfy(&self) -> ntfy::NtfySettings {
        ntfy::NtfySettings {
            url: self.str("url").unwrap_or_else(|| ntfy::DEFAULT_URL.into()),
            token: self.secret.clone(),
        }
    }

    pub fn gotify(&self) -> Option<gotify::GotifySettings> {
        Some(gotify::GotifySettings {
            url: self.str("url")?,
        })
    }

    pub fn webhook(&self) -> webhook::WebhookSettings {
        let allowed_hosts = self
            .settings
            .get("allowedHosts")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        webhook::WebhookSettings { allowed_hosts }
    }

    /// What an admin reads: settings, `enabled`, whether the secret is set; never the secret.
    fn view(&self) -> Value {
        let mut out = Map::new();
        out.insert("kind".into(), json!(self.kind.as_str()));
        out.insert("enabled".into(), json!(self.enabled));
        for (k, v) in &self.settings {
            out.insert(k.clone(), v.clone());
        }
        if let Some((_, set_field)) = self.kind.secret_field() {
            out.insert(set_field.into(), json!(self.secret.is_some()));
        }
        out.insert(
            "updatedAt".into(),
            self.updated_at.map_or(Value::Null, |ms| json!(rfc3339(ms))),
        );
        Value::Object(out)
    }
}

fn defaults(kind: Kind) -> Map<String, Value> {
    let value = match kind {
        Kind::Email => json!({
            "host": "", "port": 587, "security": "starttls", "username": "", "from": ""
        }),
        Kind::Ntfy => json!({ "url": ntfy::DEFAULT_URL }),
        Kind::Gotify => json!({ "url": "" }),
        Kind::Discord => json!({}),
        Kind::Webhook => json!({ "allowedHosts": [] }),
        Kind::Webpush => json!({ "subject": "" }),
    };
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Reads one channel; a kind never saved reads as disabled with defaults.
pub fn load(conn: &Connection, kind: Kind, cipher: &Cipher) -> AppResult<ChannelRow> {
    let row = conn
        .prepare_cached(
            "SELECT enabled, settings, secret, updated_at FROM notification_channels
             WHERE kind = ?1",
        )?
        .query_row([kind.as_str()], |r| {
            Ok((
                r.get::<_, bool>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .optional()?;
    let Some((enabled, settings, secret, updated_at)) = row else {
        return Ok(ChannelRow::empty(kind));
    };
    let mut merged = defaults(kind);
    if let Ok(Value::Object(stored)) = serde_json::from_str::<Value>(&settings) {
        merged.extend(stored);
    }
    Ok(ChannelRow {
        kind,
        enabled,
        settings: merged,
        secret: secret.map(|s| cipher.decrypt(&s)).transpose()?,
        updated_at: Some(updated_at),
    })
}

/// Stores one channel's row, encrypting its secret (the demo sets its channels up through this too).
pub fn save(conn: &Connection, row: &ChannelRow, cipher: &Cipher, now_ms: i64) -> AppResult<()> {
    let secret = row
        .secret
        .as_deref()
        .map(|s| cipher.encrypt(s))
        .transpose()?;
    conn.prepare_cached(
        "INSERT INTO notification_channels (kind, enabled, settings, secret, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (kind) DO UPDATE SET enabled = excluded.enabled,
             settings = excluded.settings, secret = excluded.secret,
             updated_at = excluded.updated_at",
    )?
    .execute(rusqlite::params![
        row.kind.as_str(),
        row.enabled,
        Value::Object(row.settings.clone()).to_string(),
        secret,
        now_ms
    ])?;
    Ok(())
}

pub fn routes() -> Routes {
    Routes::new()
        .add(
            Method::GET,
            "/admin/notifications/channels",
            Access::Admin,
            list_channels,
        )
        .add(
            Method::GET,
            "/admin/notifications/channels/{kind}",
            Access::Admin,
            get_channel,
        )
        .add(
            Method::PUT,
            "/admin/notifications/channels/{kind}",
            Access::Admin,
            update_channel,
        )
        .add(
            Method::POST,
            "/admin/notifications/channels/{kind}/test",
            Access::Admin,
            test_channel,
        )
}

fn parse_kind(raw: &str) -> AppResult<Kind> {
    Kind::parse(raw).ok_or(AppError::new(ErrorCode::NotFound))
}

/// What the admin page shows of a channel: its settings as [`ChannelRow::view`] has them, plus
/// its delivery health line (`health`, see [`super::admin_log::health`]).
fn view_with_health(
    conn: &Connection,
    kind: Kind,
    cipher: &Cipher,
    now_ms: i64,
) -> AppResult<Value> {
    let mut view = load(conn, kind, cipher)?.view();
    let health = super::admin_log::health(conn, kind, now_ms)?;
    if let Value::Object(map) = &mut view {
        map.insert(
            "health".into(),
            serde_json::to_value(health).map_err(AppError::internal)?,
        );
    }
    Ok(view)
}

/// `GET /admin/notifications/channels`: all six channels, each as the single GET shows it.
pub async fn list_channels(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> AppResult<ApiResponse> {
    let cipher = state.cipher().clone();
    let now = state.clock().now_ms();
    let views = state
        .db()
        .run(move |conn| {
            Kind::ALL
                .into_iter()
                .map(|kind| view_with_health(conn, kind, &cipher, now))
                .collect::<AppResult<Vec<Value>>>()
        })
        .await?;
    Ok(ApiResponse::ok(&views))
}

/// `GET /admin/notifications/channels/{kind}`: the settings and the health line.
pub async fn get_channel(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(kind): Path<String>,
) -> AppResult<ApiResponse> {
    let kind = parse_kind(&kind)?;
    let cipher = state.cipher().clone();
    let now = state.clock().now_ms();
    let view = state
        .db()
        .run(move |conn| view_with_health(conn, kind, &cipher, now))
        .await?;
    Ok(ApiResponse::ok(&view))
}

/// `PUT /admin/notifications/channels/{kind}`: `{"enabled": bool, ...settings}`.
pub async fn update_channel(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(kind): Path<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> AppResult<ApiResponse> {
    let kind = parse_kind(&kind)?;
    let update = parse_update(kind, &body)?;
    let cipher = state.cipher().clone();
    let now = state.clock().now_ms();
    let row = state
        .db()
        .write(move |tx| {
            let mut row = load(tx, kind, &cipher)?;
            // The stored secret goes only where it went before: another server needs it again,
            // or an admin (or a stolen admin session) could send it anywhere.
            if let (SecretChange::Keep, Some(_), Some((name, _))) =
                (&update.secret, &row.secret, kind.secret_field())
                && destination(kind, &row.settings) != destination(kind, &update.settings)
            {
                return Err(AppError::validation([(
                    name,
                    "required again when the server, port or security changes",
                )]));
            }
            row.enabled = update.enabled;
            row.settings = update.settings;
            match update.secret {
                SecretChange::Keep => {}
                SecretChange::Clear => row.secret = None,
                SecretChange::Set(s) => row.secret = Some(s),
            }
            save(tx, &row, &cipher, now)?;
            load(tx, kind, &cipher)
        })
        .await?;
    Ok(ApiResponse::ok(&row.view()))
}

enum SecretChange {
    Keep,
    Clear,
    Set(String),
}

struct Update {
    enabled: bool,
    settings: Map<String, Value>,
    secret: SecretChange,
}

/// Checks a PUT body field by field; every problem is reported at once.
fn parse_update(kind: Kind, body: &Map<String, Value>) -> AppResult<Update> {
    let mut errors: Vec<(String, String)> = Vec::new();
    let mut bad = |field: &str, reason: &str| errors.push((field.to_owned(), reason.to_owned()));
    let secret_name = kind.secret_field().map(|(name, _)| name);
    for key in body.keys() {
        let known = key == "enabled"
            || Some(key.as_str()) == secret_name
            || kind.fields().contains(&key.as_str());
        if !known {
            bad(key, "unknown field for this channel");
        }
    }
    let enabled = match body.get("enabled") {
        Some(Value::Bool(b)) => *b,
        _ => {
            bad("enabled", "must be true or false");
            false
        }
    };
    // A string field: absent or null reads as empty.
    let text = |key: &str| -> Result<String, ()> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.trim().to_owned()),
            Some(_) => Err(()),
        }
    };
    let mut settings = Map::new();
    match kind {
        Kind::Email => {
            let security = match text("security") {
                Ok(s) if s.is_empty() => Some(email::Security::Starttls),
                Ok(s) => email::Security::parse(&s),
                Err(()) => None,
            };
            let security = security.unwrap_or_else(|| {
                bad("security", "must be none, starttls or tls");
                email::Security::Starttls
            });
            let port = match body.get("port") {
                None | Some(Value::Null) => security.default_port(),
                Some(v) => match v.as_u64().and_then(|p| u16::try_from(p).ok()) {
                    Some(p) if p > 0 => p,
                    _ => {
                        bad("port", "must be a port number from 1 to 65535");
                        0
                    }
                },
            };
            let host = match text("host") {
                Ok(h) if h.is_empty() => {
                    if enabled {
                        bad("host", "is required to enable email");
                    }
                    h
                }
                Ok(h) => {
                    if let Err(r) = check_host(&h) {
                        bad("host", &r);
                    }
                    h.to_ascii_lowercase()
                }
                Err(()) => {
                    bad("host", "must be a host name");
                    String::new()
                }
            };
            let username = match text("username") {
                Ok(u) if u.len() > 256 || u.contains(['\r', '\n']) => {
                    bad("username", "must be at most 256 characters on one line");
                    u
                }
                Ok(u) => u,
                Err(()) => {
                    bad("username", "must be a string");
                    String::new()
                }
            };
            let from = match text("from") {
                Ok(f) if f.is_empty() => {
                    if enabled {
                        bad("from", "is required to enable email");
                    }
                    f
                }
                Ok(f) => {
                    if let Err(r) = email::check_mailbox(&f) {
                        bad("from", &r);
                    }
                    f
                }
                Err(()) => {
                    bad("from", "must be an email address");
                    String::new()
                }
            };
            settings.insert("host".into(), json!(host));
            settings.insert("port".into(), json!(port));
            settings.insert("security".into(), json!(security.as_str()));
            settings.insert("username".into(), json!(username));
            settings.insert("from".into(), json!(from));
        }
        Kind::Ntfy | Kind::Gotify => {
            let url = match text("url") {
                Ok(u) if u.is_empty() && kind == Kind::Ntfy => ntfy::DEFAULT_URL.to_owned(),
                Ok(u) if u.is_empty() => {
                    if enabled {
                        bad("url", "is required to enable Gotify");
                    }
                    u
                }
                Ok(u) => match channels::check_http_url(&u) {
                    Ok(_) => u.trim_end_matches('/').to_owned(),
                    Err(r) => {
                        bad("url", &r);
                        u
                    }
                },
                Err(()) => {
                    bad("url", "must be an http:// or https:// URL");
                    String::new()
                }
            };
            settings.insert("url".into(), json!(url));
        }
        Kind::Discord => {}
        Kind::Webhook => {
            let mut hosts = Vec::new();
            match body.get("allowedHosts") {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) if items.len() <= 50 => {
                    for (i, item) in items.iter().enumerate() {
                        match item.as_str().map(webhook::check_host_entry) {
                            Some(Ok(h)) if !hosts.contains(&h) => hosts.push(h),
                            Some(Ok(_)) => {}
                            Some(Err(r)) => bad(&format!("allowedHosts[{i}]"), &r),
                            None => bad(&format!("allowedHosts[{i}]"), "must be a host name"),
                        }
                    }
                }
                Some(_) => bad("allowedHosts", "must be a list of at most 50 host names"),
            }
            settings.insert("allowedHosts".into(), json!(hosts));
        }
        Kind::Webpush => {
            let subject = match text("subject") {
                Ok(s) if s.is_empty() => {
                    if enabled {
                        bad("subject", "is required to enable Web Push");
                    }
                    s
                }
                Ok(s) => {
                    if let Err(r) = check_subject(&s) {
                        bad("subject", &r);
                    }
                    s
                }
                Err(()) => {
                    bad("subject", "must be a mailto: or https:// URL");
                    String::new()
                }
            };
            settings.insert("subject".into(), json!(subject));
        }
    }
    let secret = match secret_name.map(|name| (name, body.get(name))) {
        None | Some((_, None)) => SecretChange::Keep,
        Some((_, Some(Value::Null))) => SecretChange::Clear,
        Some((_, Some(Value::String(s)))) if s.is_empty() => SecretChange::Clear,
        Some((name, Some(Value::String(s)))) => {
            if s.len() > 1024 || s.contains(['\r', '\n']) {
                bad(name, "must be at most 1024 characters on one line");
            }
            SecretChange::Set(s.clone())
        }
        Some((name, Some(_))) => {
            bad(name, "must be a string, or null to clear it");
            SecretChange::Keep
        }
    };
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    Ok(Update {
        enabled,
        settings,
        secret,
    })
}

/// Where a channel's secret is sent: the SMTP host, port and security, or the ntfy server's
/// scheme, host and port (as a URL parser normalises them).
fn destination(kind: Kind, settings: &Map<String, Value>) -> Option<String> {
    let get = |key: &str| settings.get(key).map(Value::to_string).unwrap_or_default();
    match kind {
        Kind::Email => Some(format!(
            "{}|{}|{}",
            get("host").to_ascii_lowercase(),
            get("port"),
            get("security")
        )),
        Kind::Ntfy => {
            let url = settings
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let parsed = url::Url::parse(url).ok()?;
            Some(format!(
                "{}://{}:{:?}",
                parsed.scheme(),
                parsed.host_str().unwrap_or_default(),
                parsed.port_or_known_default()
            ))
        }
        _ => None,
    }
}

/// A host name or IP address, nothing else.
fn check_host(raw: &str) -> Result<(), String> {
    // `http:` so the parser normalises the host as a special scheme does (case, IP forms).
    match url::Url::parse(&format!("http://{raw}/")) {
        Ok(u) if u.host_str() == Some(&raw.to_ascii_lowercase()) && u.port().is_none() => Ok(()),
        _ => Err("must be a host name or IP address (port separately)".into()),
    }
}

/// The VAPID subject (RFC 8292 section 2.1): a `mailto:` address or an https URL.
fn check_subject(raw: &str) -> Result<(), String> {
    if let Some(address) = raw.strip_prefix("mailto:") {
        return email::check_mailbox(address)
            .map(|_| ())
            .map_err(|_| "must be mailto: followed by an email address".into());
    }
    match channels::check_http_url(raw) {
        Ok(u) if u.scheme() == "https" => Ok(()),
        _ => Err("must be a mailto: address or an https:// URL".into()),
    }
}

/// `POST /admin/notifications/channels/{kind}/test` `{"to": "..."}`: sends one message now.
pub async fn test_channel(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(kind): Path<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> AppResult<ApiResponse> {
    let kind = parse_kind(&kind)?;
    let to = match body.get("to") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        _ => return Err(AppError::validation([("to", "is required")])),
    };
    let cipher = state.cipher().clone();
    let row = state
        .db()
        .read(move |conn| load(conn, kind, &cipher))
        .await?;
    if kind == Kind::Webpush {
        return Err(not_ready(
            "Web Push has no test send here: only its subject is set up on this route",
        ));
    }
    if !row.enabled {
        return Err(not_ready("the channel is disabled"));
    }
    let message = test_message(&state, kind);
    let sent_at = rfc3339(state.clock().now_ms());
    let discord_base = state.config().notifications.discord_base_url.clone();
    // Check the target before going to the blocking pool, with the field named.
    let checked = match kind {
        Kind::Email => email::check_mailbox(&to).map(|_| ()),
        Kind::Ntfy => ntfy::check_topic(&to),
        Kind::Gotify => gotify::check_token(&to),
        Kind::Discord => discord::check_webhook_url(&to, &discord_base).map(|_| ()),
        Kind::Webhook => webhook::check_target(&to, &row.webhook()).map(|_| ()),
        Kind::Webpush => Ok(()),
    };
    checked.map_err(|r| AppError::validation([("to", r)]))?;
    let outcome = match kind {
        Kind::Email => {
            let settings = row
                .email()
                .ok_or_else(|| not_ready("email is not set up"))?;
            channels::run(move || email::send(&settings, &to, &message)).await?
        }
        Kind::Ntfy => {
            let settings = row.ntfy();
            channels::run(move || ntfy::send(&settings, &to, &message)).await?
        }
        Kind::Gotify => {
            let settings = row
                .gotify()
                .ok_or_else(|| not_ready("Gotify is not set up"))?;
            channels::run(move || gotify::send(&settings, &to, &message)).await?
        }
        Kind::Discord => channels::run(move || discord::send(&discord_base, &to, &message)).await?,
        Kind::Webhook => {
            let settings = row.webhook();
            channels::run(move || webhook::send(&settings, &to, &message, &sent_at)).await?
        }
        Kind::Webpush => Ok(()),
    };
    match outcome {
        Ok(()) => Ok(ApiResponse::ok(&json!({ "delivered": true }))),
        Err(e) => {
            tracing::warn!(channel = kind.as_str(), error = %e, "test notification failed");
            Err(send_error(kind, e))
        }
    }
}

fn not_ready(reason: &str) -> AppError {
    AppError::new(ErrorCode::Conflict).with_details(json!({ "reason": reason }))
}

fn test_message(state: &AppState, kind: Kind) -> Message {
    Message {
        title: "MediaNest test notification".into(),
        body: format!(
            "If you can read this, {} notifications from MediaNest work.",
            kind.as_str()
        ),
        link: state.config().server.public_url.clone(),
        image: None,
        tags: vec!["test".into()],
        event: "test".into(),
        idempotency_key: format!("test-{}", uuid::Uuid::new_v4()),
    }
}

/// The envelope for a failed test send: the upstream's answer in `details`.
fn send_error(kind: Kind, error: SendError) -> AppError {
    let class = match error.class() {
        channels::Class::Transient => "transient",
        channels::Class::Permanent => "permanent",
    };
    let details = match &error {
        SendError::InvalidTarget(r) => return AppError::validation([("to", r.clone())]),
        SendError::InvalidSettings(r) => return not_ready(r),
        SendError::Timeout => {
            return AppError::Api {
                code: ErrorCode::UpstreamTimeout,
                service: Some(kind.display()),
                details: Some(json!({ "class": class })),
                retry_after: None,
            };
        }
        SendError::Status { status, message } => {
            json!({ "class": class, "upstreamStatus": status, "upstreamMessage": message })
        }
        SendError::Smtp { code, message } => {
            json!({ "class": class, "smtpCode": code, "upstreamMessage": message })
        }
        SendError::Connect(m) | SendError::Other(m) => {
            json!({ "class": class, "upstreamMessage": m })
        }
    };
    AppError::Api {
        code: ErrorCode::UpstreamError,
        service: Some(kind.display()),
        details: Some(details),
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_failures_become_the_documented_answers() {
        let status = |e: SendError| send_error(Kind::Ntfy, e).code().status().as_u16();
        assert_eq!(status(SendError::Timeout), 504);
        assert_eq!(status(SendError::Connect("refused".into())), 502);
        assert_eq!(
            status(SendError::Status {
                status: 500,
                message: "x".into()
            }),
            502
        );
        assert_eq!(status(SendError::InvalidTarget("bad".into())), 400);
        assert_eq!(status(SendError::InvalidSettings("bad".into())), 409);
    }
}
