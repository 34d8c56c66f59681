//! Sending one Web Push message to one subscription: the payload encrypted per RFC 8291
//! (`aes128gcm`, by `web-push-native`), a VAPID `Authorization` header per RFC 8292
//! ([`super::vapid`]), the RFC 8030 headers `TTL`, `Urgency` and `Topic`, posted with `ureq` on
//! the blocking pool under a whole-call timeout.
//!
//! The answer is sorted into an [`Outcome`]; a subscription the push service no longer knows
//! (404/410) is deleted at once. This module neither retries nor queues: that is the delivery
//! worker's. It never logs the endpoint (a capability URL) nor the keys.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sha2::Digest;
use tokio::sync::Semaphore;
use ureq::Agent;
use web_push_native::{Auth, p256};

use super::subscriptions::{self, Subscription};
use super::vapid::VapidKey;
use crate::config::PushConfig;
use crate::error::AppResult;
use crate::state::AppState;

/// The largest plaintext that fits a 4096-byte push message (RFC 8291 section 4: one record,
/// 86 bytes of header with the key id, 17 of padding delimiter and tag).
pub const MAX_PAYLOAD_BYTES: usize = 4096 - 86 - 17;
/// Pushes in flight at once per [`Pusher`].
const MAX_IN_FLIGHT: usize = 8;
/// How long connecting to a push service may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const SNIPPET_CHARS: usize = 200;

/// What the service worker receives, as JSON: `{title, body, url, icon, image, tag}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushMessage {
    pub title: String,
    pub body: String,
    /// The dashboard page a click opens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// A large image (the poster) where the platform shows one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Notifications with the same tag replace each other on the device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// RFC 8030 section 5.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    VeryLow,
    Low,
    Normal,
    High,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VeryLow => "very-low",
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
        }
    }
}

/// How the push service should treat the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOptions {
    /// Seconds the push service keeps the message for an offline device.
    pub ttl_secs: u32,
    pub urgency: Urgency,
    /// A message still waiting with the same topic is replaced by this one (collapse).
    pub topic: Option<String>,
}

impl Default for PushOptions {
    fn default() -> Self {
        Self {
            ttl_secs: 24 * 60 * 60,
            urgency: Urgency::Normal,
            topic: None,
        }
    }
}

/// A `Topic` header value for `key` (RFC 8030 section 5.4: at most 32 characters of the
/// base64url alphabet): `key` itself when it is one, else a digest of it.
pub fn topic_for(key: &str) -> String {
    let fits = !key.is_empty()
        && key.len() <= 32
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if fits {
        return key.to_owned();
    }
    use base64::Engine;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    text.truncate(32);
    text
}

/// How one push went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The push service accepted it (2xx).
    Delivered,
    /// The subscription is gone (404/410); it has been deleted.
    Gone,
    /// Refused for good (another 4xx, a payload that cannot be sent): do not retry.
    Permanent(String),
    /// Worth retrying later (429, 5xx, a timeout or connection failure).
    Transient(String),
}

/// Sends pushes: the VAPID key, the subject and an HTTP agent with timeouts. Cheap to share.
#[derive(Clone)]
pub struct Pusher {
    agent: Agent,
    key: VapidKey,
    subject: String,
    gate: Arc<Semaphore>,
}

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pusher")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl Pusher {
    /// A pusher signing with `key` as `config.subject`.
    pub fn new(config: &PushConfig, key: VapidKey) -> Self {
        let agent_config = Agent::config_builder()
            // A push service's 4xx/5xx is an answer to classify, not an error.
            .http_status_as_error(false)
            // A redirect would carry the VAPID token elsewhere.
            .max_redirects(0)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(Duration::from_secs(config.timeout_secs)))
            .user_agent(format!("MediaNest/{}", crate::VERSION))
            .build();
        Self {
            agent: Agent::new_with_config(agent_config),
            key,
            subject: config.subject.clone(),
            gate: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }
    }

    /// A pusher from the server's configuration and data dir.
    pub fn from_state(state: &AppState) -> Self {
        Self::new(&state.config().push, state.data_dir().vapid.clone())
    }

    /// Sends `message` to `subscription` on the blocking pool, then records the outcome: a
    /// delivered push notes `last_success_at`, a gone subscription is deleted.
    pub async fn send(
        &self,
        state: &AppState,
        subscription: Subscription,
        message: &PushMessage,
        options: &PushOptions,
    ) -> AppResult<Outcome> {
        let pusher = self.clone();
        let message = message.clone();
        let options = options.clone();
        let id = subscription.id.clone();
        let outcome = crate::blocking::run_gated(&self.gate, move || {
            Ok(pusher.send_blocking(&subscription, &message, &options))
        })
        .await?;
        let now_ms = state.clock().now_ms();
        match &outcome {
            Outcome::Delivered => {
                state
                    .db()
                    .write(move |tx| subscriptions::mark_success(tx, &id, now_ms))
                    .await?
            }
            Outcome::Gone => {
                tracing::info!(subscription = %id, "push subscription gone; deleted");
                state
                    .db()
                    .write(move |tx| subscriptions::delete(tx, &id).map(drop))
                    .await?
            }
            Outcome::Permanent(reason) | Outcome::Transient(reason) => {
                tracing::warn!(subscription = %id, reason = %reason, "push not delivered");
            }
        }
        Ok(outcome)
    }

    /// One push, blocking the calling thread (at most `push.timeout_secs`).
    pub fn send_blocking(
        &self,
        subscription: &Subscription,
        message: &PushMessage,
        options: &PushOptions,
    ) -> Outcome {
        let payload = match serde_json::to_vec(message) {
            Ok(p) if p.len() <= MAX_PAYLOAD_BYTES => p,
            Ok(p) => {
                return Outcome::Permanent(format!(
                    "message of {} bytes, at most {MAX_PAYLOAD_BYTES}",
                    p.len()
                ));
            }
            Err(e) => return Outcome::Permanent(format!("cannot encode the message: {e}")),
        };
        let Ok(ua_public) = p256::PublicKey::from_sec1_bytes(&subscription.p256dh) else {
            return Outcome::Permanent("the subscription's p256dh key is damaged".into());
        };
        if subscription.auth.len() != 16 {
            return Outcome::Permanent("the subscription's auth secret is damaged".into());
        }
        let auth = Auth::clone_from_slice(&subscription.auth);
        let body = match web_push_native::encrypt(payload, &ua_public, &auth) {
            Ok(b) => b,
            Err(e) => return Outcome::Permanent(format!("cannot encrypt: {e}")),
        };
        let Ok(url) = url::Url::parse(&subscription.endpoint) else {
            return Outcome::Permanent("the subscription's endpoint is damaged".into());
        };
        // RFC 8292 section 2: `aud` is the origin of the push resource (with a non-default port).
        let origin = url.origin().ascii_serialization();
        let authorization = match self.key.authorization(&origin, &self.subject) {
            Ok(a) => a,
            Err(e) => return Outcome::Permanent(e),
        };
        let mut request = self
            .agent
            .post(url.as_str())
            .header("TTL", options.ttl_secs.to_string())
            .header("Urgency", options.urgency.as_str())
            .header("Content-Encoding", "aes128gcm")
            .header("Content-Type", "application/octet-stream")
            .header("Authorization", authorization);
        if let Some(topic) = &options.topic {
            request = request.header("Topic", topic_for(topic));
        }
        match request.send(&body[..]) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                if (200..300).contains(&status) {
                    return Outcome::Delivered;
                }
                let mut text = String::new();
                let _ = response
                    .body_mut()
                    .as_reader()
                    .take(4096)
                    .read_to_string(&mut text);
                let snippet: String = text.trim().chars().take(SNIPPET_CHARS).collect();
                let reason = format!("push service answered {status}: {snippet}");
                match status {
                    404 | 410 => Outcome::Gone,
                    429 | 500..=599 => Outcome::Transient(reason),
                    _ => Outcome::Permanent(reason),
                }
            }
            Err(e) => Outcome::Transient(format!("push service unreachable: {}", error_kind(&e))),
        }
    }
}

/// A ureq error in words that never include the URL.
fn error_kind(e: &ureq::Error) -> &'static str {
    match e {
        ureq::Error::Timeout(_) => "timed out",
        ureq::Error::Io(_) => "connection failed",
        ureq::Error::HostNotFound => "host not found",
        ureq::Error::ConnectionFailed => "connection failed",
        ureq::Error::Tls(_) => "TLS failed",
        _ => "request failed",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn topics_fit_the_header_rules() {
        assert_eq!(topic_for("request-42"), "request-42");
        let long = topic_for("service.down: Plex Media Server");
        assert_eq!(long.len(), 32);
        assert!(
            long.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(long, topic_for("service.down: Plex Media Server"));
    }
}
