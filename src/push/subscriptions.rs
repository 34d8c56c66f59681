//! Push subscriptions: the `push_subscriptions` table and the caller's endpoints
//! (`POST/GET /me/push-subscriptions`, `DELETE /me/push-subscriptions/{id}`).
//!
//! A user only ever reaches their own rows: every query is keyed by the caller's user id, and
//! another user's id answers 404. The keys are not secrets (they only let a server encrypt *to*
//! the browser), but they are never logged, nor is the endpoint (it is a capability URL).

use std::net::IpAddr;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use crate::auth::CurrentUser;
use crate::config::PushConfig;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::ApiJson;
use crate::response::ApiResponse;
use crate::state::AppState;
use crate::time::rfc3339;

/// Subscriptions one user may keep (browsers and phones); more answer `VALIDATION_ERROR`.
pub const MAX_PER_USER: i64 = 20;
/// The longest endpoint URL accepted.
pub const MAX_ENDPOINT_LEN: usize = 2048;
const MAX_USER_AGENT_CHARS: usize = 512;

/// The browser's `PushSubscription.toJSON()`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionBody {
    endpoint: String,
    /// Milliseconds since the epoch, or null (most browsers).
    #[serde(default)]
    expiration_time: Option<f64>,
    keys: SubscriptionKeys,
}

#[derive(Debug, Deserialize)]
pub struct SubscriptionKeys {
    p256dh: String,
    auth: String,
}

/// A stored subscription, with what sending needs.
#[derive(Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub user_id: String,
    pub endpoint: String,
    /// The browser's public key: 65 bytes, an uncompressed P-256 point.
    pub p256dh: Vec<u8>,
    /// The browser's auth secret: 16 bytes.
    pub auth: Vec<u8>,
}

impl std::fmt::Debug for Subscription {
    // The endpoint is a capability URL and the keys are not for logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// What the list shows: never the keys, and the endpoint by its push service's host only.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    pub id: String,
    /// The push service's host, e.g. `fcm.googleapis.com`.
    pub service: String,
    pub user_agent: Option<String>,
    pub created_at: String,
    pub last_success_at: Option<String>,
    pub expires_at: Option<String>,
}

/// A checked body, ready to store.
#[derive(Debug)]
struct Valid {
    endpoint: String,
    p256dh: String,
    auth: String,
    expires_at: Option<i64>,
}

/// Checks the endpoint: an https URL (http only to loopback, when `allow_http_endpoints`), no
/// credentials, and no IP literal of this machine or the home network (the server must not be
/// made to post to addresses a user picks on the local network).
pub fn check_endpoint(raw: &str, config: &PushConfig) -> Result<url::Url, &'static str> {
    if raw.len() > MAX_ENDPOINT_LEN {
        return Err("must be at most 2048 characters");
    }
    let url = url::Url::parse(raw).map_err(|_| "must be an https URL")?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials");
    }
    let local = match url.host() {
        Some(url::Host::Ipv4(ip)) => !is_public(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => !is_public(IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        None => return Err("must be an https URL"),
    };
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    let test_loopback = config.allow_http_endpoints && loopback;
    match url.scheme() {
        "https" => {}
        "http" if test_loopback => {}
        "http" if loopback => {
            return Err("must be an https URL (http to loopback needs push.allow_http_endpoints)");
        }
        _ => return Err("must be an https URL"),
    }
    if local && !test_loopback {
        return Err("must be a push service's address, not one on this machine or network");
    }
    // Only the browsers' push services: a name a user picks could be any host on the home
    // network (or resolve to one), and the delivery worker posts to it on every event.
    let known = match url.host() {
        Some(url::Host::Domain(d)) => is_push_service(d, &config.endpoint_hosts),
        _ => false,
    };
    if !known && !test_loopback {
        return Err("must be on a browser's push service (push.endpoint_hosts)");
    }
    Ok(url)
}

/// Whether `host` is one of `allowed` (an entry starting with `.` allows every name under it).
pub fn is_push_service(host: &str, allowed: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    allowed.iter().any(|entry| {
        let entry = entry.trim().to_ascii_lowercase();
        match entry.strip_prefix('.') {
            Some(parent) => host
                .strip_suffix(parent)
                .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
            None => !entry.is_empty() && host == entry,
        }
    })
}

fn is_public(ip: IpAddr) -> bool {
    match crate::net::canonical(ip) {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                // 100.64.0.0/10, carrier-grade NAT and Tailscale.
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// Decodes base64url (padding tolerated) of exactly `len` bytes.
fn decode_key(text: &str, len: usize) -> Option<Vec<u8>> {
    let raw = URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()?;
    (raw.len() == len).then_some(raw)
}

fn validate(body: SubscriptionBody, config: &PushConfig) -> AppResult<Valid> {
    let mut fields: Vec<(&str, &str)> = Vec::new();
    let endpoint = match check_endpoint(&body.endpoint, config) {
        Ok(url) => Some(url),
        Err(reason) => {
            fields.push(("endpoint", reason));
            None
        }
    };
    let p256dh = decode_key(&body.keys.p256dh, 65);
    let point_ok = p256dh.as_deref().is_some_and(|raw| {
        raw[0] == 0x04 && web_push_native::p256::PublicKey::from_sec1_bytes(raw).is_ok()
    });
    if !point_ok {
        fields.push((
            "keys.p256dh",
            "must be an uncompressed P-256 public key (65 bytes, base64url)",
        ));
    }
    let auth = decode_key(&body.keys.auth, 16);
    if auth.is_none() {
        fields.push(("keys.auth", "must be 16 bytes, base64url"));
    }
    let expires_at = match body.expiration_time {
        None => None,
        Some(ms) if ms.is_finite() && (0.0..9.0e15).contains(&ms) => Some(ms as i64),
        Some(_) => {
            fields.push(("expirationTime", "must be a time in milliseconds or null"));
            None
        }
    };
    if !fields.is_empty() {
        return Err(AppError::validation(fields));
    }
    let (Some(endpoint), Some(p256dh), Some(auth)) = (endpoint, p256dh, auth) else {
        return Err(AppError::internal("validated subscription lost a field"));
    };
    Ok(Valid {
        endpoint: endpoint.to_string(),
        // Stored in one spelling: base64url without padding.
        p256dh: URL_SAFE_NO_PAD.encode(p256dh),
        auth: URL_SAFE_NO_PAD.encode(auth),
        expires_at,
    })
}

/// Stores `valid` for `user_id`: the same endpoint again updates its row (and moves it to this
/// user, who now holds that browser: the endpoint is an unguessable capability URL only that
/// browser knows); a new one, or one moved here, counts against [`MAX_PER_USER`]. Returns the id.
fn upsert(
    conn: &Connection,
    user_id: &str,
    valid: &Valid,
    user_agent: Option<&str>,
    now_ms: i64,
) -> AppResult<String> {
    let existing: Option<(String, String)> = conn
        .prepare_cached("SELECT id, user_id FROM push_subscriptions WHERE endpoint = ?1")?
        .query_row([&valid.endpoint], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if existing.as_ref().is_none_or(|(_, owner)| owner != user_id) {
        check_cap(conn, user_id)?;
    }
    if let Some((id, _)) = existing {
        conn.prepare_cached(
            "UPDATE push_subscriptions
             SET user_id = ?2, p256dh = ?3, auth = ?4, user_agent = ?5, expires_at = ?6
             WHERE id = ?1",
        )?
        .execute(rusqlite::params![
            id,
            user_id,
            valid.p256dh,
            valid.auth,
            user_agent,
            valid.expires_at
        ])?;
        return Ok(id);
    }
    let id = uuid::Uuid::now_v7().to_string();
    conn.prepare_cached(
        "INSERT INTO push_subscriptions
             (id, user_id, endpoint, p256dh, auth, user_agent, expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(rusqlite::params![
        id,
        user_id,
        valid.endpoint,
        valid.p256dh,
        valid.auth,
        user_agent,
        valid.expires_at,
        now_ms
    ])?;
    Ok(id)
}

/// Refuses a new subscription for a user who holds [`MAX_PER_USER`] already.
fn check_cap(conn: &Connection, user_id: &str) -> AppResult<()> {
    let count: i64 = conn
        .prepare_cached("SELECT count(*) FROM push_subscriptions WHERE user_id = ?1")?
        .query_row([user_id], |r| r.get(0))?;
    if count >= MAX_PER_USER {
        return Err(AppError::validation([(
            "endpoint",
            format!("at most {MAX_PER_USER} subscriptions per user: remove an old one first"),
        )]));
    }
    Ok(())
}

fn view_from_row(row: &Row<'_>) -> rusqlite::Result<SubscriptionView> {
    let endpoint: String = row.get(1)?;
    let created_at: i64 = row.get(3)?;
    let last_success_at: Option<i64> = row.get(4)?;
    let expires_at: Option<i64> = row.get(5)?;
    Ok(SubscriptionView {
        id: row.get(0)?,
        service: url::Url::parse(&endpoint)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default(),
        user_agent: row.get(2)?,
        created_at: rfc3339(created_at),
        last_success_at: last_success_at.map(rfc3339),
        expires_at: expires_at.map(rfc3339),
    })
}

/// The user's subscriptions, oldest first.
pub fn list_for_user(conn: &Connection, user_id: &str) -> AppResult<Vec<SubscriptionView>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, endpoint, user_agent, created_at, last_success_at, expires_at
         FROM push_subscriptions WHERE user_id = ?1 ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([user_id], view_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn subscription_from_row(row: &Row<'_>) -> rusqlite::Result<Subscription> {
    let p256dh: String = row.get(3)?;
    let auth: String = row.get(4)?;
    Ok(Subscription {
        id: row.get(0)?,
        user_id: row.get(1)?,
        endpoint: row.get(2)?,
        // Stored checked; a damaged value fails at sending, as a permanent failure.
        p256dh: URL_SAFE_NO_PAD.decode(p256dh).unwrap_or_default(),
        auth: URL_SAFE_NO_PAD.decode(auth).unwrap_or_default(),
    })
}

/// One subscription with its keys, for sending.
pub fn get(conn: &Connection, id: &str) -> AppResult<Option<Subscription>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, user_id, endpoint, p256dh, auth FROM push_subscriptions WHERE id = ?1",
        )?
        .query_row([id], subscription_from_row)
        .optional()?)
}

/// Every subscription of `user_id` with its keys, for sending.
pub fn for_user(conn: &Connection, user_id: &str) -> AppResult<Vec<Subscription>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, user_id, endpoint, p256dh, auth FROM push_subscriptions
         WHERE user_id = ?1 ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([user_id], subscription_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Deletes the user's subscription `id`; false when there is none of theirs.
pub fn delete_own(conn: &Connection, user_id: &str, id: &str) -> AppResult<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM push_subscriptions WHERE id = ?1 AND user_id = ?2")?
        .execute([id, user_id])?
        > 0)
}

/// Deletes subscription `id` whoever holds it (the push service said it is gone).
pub fn delete(conn: &Connection, id: &str) -> AppResult<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM push_subscriptions WHERE id = ?1")?
        .execute([id])?
        > 0)
}

/// Notes a delivered push.
pub fn mark_success(conn: &Connection, id: &str, now_ms: i64) -> AppResult<()> {
    conn.prepare_cached("UPDATE push_subscriptions SET last_success_at = ?2 WHERE id = ?1")?
        .execute(rusqlite::params![id, now_ms])?;
    Ok(())
}

fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(MAX_USER_AGENT_CHARS).collect())
}

/// `{id}`: what `POST /me/push-subscriptions` answers.
#[derive(Debug, Serialize)]
struct Created {
    id: String,
}

/// `POST /me/push-subscriptions`: stores the browser's `PushSubscription` for the caller and
/// answers its id (201; the same endpoint again updates its row and answers 200).
pub async fn create_push_subscription(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SubscriptionBody>,
) -> AppResult<ApiResponse> {
    let valid = validate(body, &state.config().push)?;
    let user_id = user.user_id().to_owned();
    let ua = user_agent(&headers);
    let now_ms = state.clock().now_ms();
    let (id, created) = state
        .db()
        .write(move |tx| {
            let before: i64 = tx
                .prepare_cached("SELECT count(*) FROM push_subscriptions WHERE endpoint = ?1")?
                .query_row([&valid.endpoint], |r| r.get(0))?;
            let id = upsert(tx, &user_id, &valid, ua.as_deref(), now_ms)?;
            Ok((id, before == 0))
        })
        .await?;
    let answer = Created { id };
    Ok(if created {
        ApiResponse::created(&answer)
    } else {
        ApiResponse::ok(&answer)
    })
}

/// `GET /me/push-subscriptions`: the caller's subscriptions (no keys, no endpoints).
pub async fn list_push_subscriptions(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<ApiResponse> {
    let user_id = user.user_id().to_owned();
    let rows = state
        .db()
        .read(move |conn| list_for_user(conn, &user_id))
        .await?;
    Ok(ApiResponse::ok(&rows))
}

/// `DELETE /me/push-subscriptions/{id}`: removes one of the caller's subscriptions; another
/// user's id is 404.
pub async fn delete_push_subscription(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<ApiResponse> {
    let user_id = user.user_id().to_owned();
    let deleted = state
        .db()
        .write(move |tx| delete_own(tx, &user_id, &id))
        .await?;
    if !deleted {
        return Err(AppError::new(ErrorCode::NotFound));
    }
    Ok(ApiResponse::ok(&serde_json::json!({ "deleted": true })))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {

    #[test]
    fn only_the_browsers_push_services_are_endpoints() {
        let allowed = crate::config::PushConfig::default().endpoint_hosts;
        for good in [
            "fcm.googleapis.com",
            "FCM.googleapis.com.",
            "updates.push.services.mozilla.com",
            "web.push.apple.com",
            "wns2-by3p.notify.windows.com",
        ] {
            assert!(is_push_service(good, &allowed), "{good}");
        }
        for bad in [
            "googleapis.com",
            "evil.googleapis.com",
            "push.apple.com",
            "xpush.apple.com",
            "web.push.apple.com.example.net",
            "nas.lan",
        ] {
            assert!(!is_push_service(bad, &allowed), "{bad}");
        }
    }

    use super::*;

    fn config(allow_http: bool) -> PushConfig {
        PushConfig {
            allow_http_endpoints: allow_http,
            ..PushConfig::default()
        }
    }

    #[test]
    fn endpoints_are_https_push_services_only() {
        let c = config(false);
        assert!(check_endpoint("https://fcm.googleapis.com/fcm/send/abc", &c).is_ok());
        assert!(check_endpoint("https://web.push.apple.com/QGx", &c).is_ok());
        for bad in [
            "http://fcm.googleapis.com/x",
            "http://127.0.0.1:9/x",
            "https://127.0.0.1/x",
            "https://192.168.1.1/x",
            "https://[::1]/x",
            "https://localhost/x",
            "https://user:pw@fcm.googleapis.com/x",
            "ftp://fcm.googleapis.com/x",
            "not a url",
        ] {
            assert!(check_endpoint(bad, &c).is_err(), "{bad}");
        }
        let allowed = config(true);
        assert!(check_endpoint("http://127.0.0.1:9/x", &allowed).is_ok());
        assert!(check_endpoint("http://192.168.1.1/x", &allowed).is_err());
        assert!(check_endpoint("http://fcm.googleapis.com/x", &allowed).is_err());
    }
}
