//! A fake Web Push service (RFC 8030) on loopback, checking what a real one checks.
//!
//! [`FakePushService::subscribe`] plays the browser: it makes a P-256 key pair and a 16-byte auth
//! secret and answers the `PushSubscription` JSON to post to `/me/push-subscriptions`. A push to
//! `POST /push/{token}` is accepted (201) only when its `Authorization: vapid t=..., k=...` JWT is
//! an ES256 signature by the `k` key with `aud` this server's origin and an `exp` in the future
//! and within 24 hours, `Content-Encoding` is `aes128gcm` with a `TTL`, and the body decrypts
//! with the subscriber's private key (RFC 8291) to JSON. What it received (decrypted) and why it
//! refused are kept for the test to read. An unknown token answers 404, as for an expired
//! subscription; injected faults answer any other status.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike, ES256PublicKey};
use web_push_native::jwt_simple::claims::NoCustomClaims;
use web_push_native::jwt_simple::common::VerificationOptions;
use web_push_native::jwt_simple::prelude::Clock;
use web_push_native::{Auth, p256};

use super::harness::{Effect, SimFault, SimServer, lock, observe, status_or_500};

/// The route pushes arrive on.
pub const PUSH_ROUTE: &str = "/push/{token}";

/// An injected answer: the push service answers `status` instead of accepting.
#[derive(Debug, Clone, Copy)]
pub struct PushFault(pub u16);

impl SimFault for PushFault {
    fn effect(self) -> Effect {
        Effect::Answer((status_or_500(self.0), "injected").into_response())
    }
}

/// One accepted push, as the browser would see it after decrypting.
#[derive(Debug, Clone)]
pub struct ReceivedPush {
    pub token: String,
    /// The decrypted payload.
    pub payload: serde_json::Value,
    pub ttl: String,
    pub urgency: Option<String>,
    pub topic: Option<String>,
    /// The VAPID `k=` key (base64url) and the JWT's `sub`.
    pub vapid_key: String,
    pub subject: String,
    /// Seconds from now to the JWT's `exp` when it arrived.
    pub expires_in_secs: u64,
}

/// A subscription made by [`FakePushService::subscribe`], as the browser holds it.
#[derive(Debug, Clone)]
pub struct BrowserSubscription {
    pub token: String,
    pub endpoint: String,
    /// Base64url without padding, as `PushSubscription.toJSON()` gives them.
    pub p256dh: String,
    pub auth: String,
}

impl BrowserSubscription {
    /// `PushSubscription.toJSON()`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "endpoint": self.endpoint,
            "expirationTime": null,
            "keys": {"p256dh": self.p256dh, "auth": self.auth},
        })
    }
}

struct Subscriber {
    secret: p256::SecretKey,
    auth: Auth,
}

#[derive(Default)]
struct SimState {
    subscribers: HashMap<String, Subscriber>,
    received: Vec<ReceivedPush>,
    refused: Vec<String>,
}

struct Shared {
    state: Mutex<SimState>,
    origin: OnceLock<String>,
}

/// The running fake push service.
pub struct FakePushService {
    server: SimServer<PushFault>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FakePushService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.server.fmt_as("FakePushService", f)
    }
}

impl FakePushService {
    /// Binds `127.0.0.1:0` and serves in the background.
    pub async fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(SimState::default()),
            origin: OnceLock::new(),
        });
        let app_shared = shared.clone();
        let server = SimServer::start("fake push service", move |traffic| {
            Router::new()
                .route(PUSH_ROUTE, post(receive))
                .with_state(app_shared)
                .layer(axum::middleware::from_fn_with_state(traffic, observe))
        })
        .await?;
        let _ = shared.origin.set(server.url());
        Ok(Self { server, shared })
    }

    /// The origin pushes must name as `aud`, e.g. `http://127.0.0.1:41234`.
    pub fn origin(&self) -> String {
        self.server.url()
    }

    /// Plays a browser subscribing: a new key pair and auth secret, and the endpoint for them.
    pub fn subscribe(&self) -> BrowserSubscription {
        let secret = p256::SecretKey::random(&mut aes_gcm::aead::OsRng);
        let auth: [u8; 16] = rand::random();
        let token = uuid::Uuid::new_v4().simple().to_string();
        let public = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
            &secret.public_key(),
            false,
        );
        let subscription = BrowserSubscription {
            endpoint: format!("{}/push/{token}", self.server.url()),
            p256dh: URL_SAFE_NO_PAD.encode(public.as_bytes()),
            auth: URL_SAFE_NO_PAD.encode(auth),
            token: token.clone(),
        };
        lock(&self.shared.state).subscribers.insert(
            token,
            Subscriber {
                secret,
                auth: Auth::clone_from_slice(&auth),
            },
        );
        subscription
    }

    /// Forgets a subscription: pushes to it answer 404 from now on.
    pub fn unsubscribe(&self, token: &str) {
        lock(&self.shared.state).subscribers.remove(token);
    }

    /// The pushes accepted so far, decrypted.
    pub fn received(&self) -> Vec<ReceivedPush> {
        lock(&self.shared.state).received.clone()
    }

    /// Why pushes were refused so far.
    pub fn refused(&self) -> Vec<String> {
        lock(&self.shared.state).refused.clone()
    }

    /// Makes the next `n` pushes answer `status`.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.server.fail_next(n, PushFault(status));
    }

    /// Delays every answer by `latency` (a push service that hangs).
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.server.set_latency(latency);
    }

    /// Pushes received, refused and faulted ones included.
    pub fn total_requests(&self) -> u64 {
        self.server.total_requests()
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let checked = check(&shared, &token, &headers, &body);
    let mut state = lock(&shared.state);
    match checked {
        Ok(push) => {
            state.received.push(push);
            StatusCode::CREATED.into_response()
        }
        Err((status, reason)) => {
            state.refused.push(reason.clone());
            (status, reason).into_response()
        }
    }
}

type Refusal = (StatusCode, String);

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn bad(reason: impl Into<String>) -> Refusal {
    (StatusCode::BAD_REQUEST, reason.into())
}

fn check(
    shared: &Shared,
    token: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ReceivedPush, Refusal> {
    let (secret, auth) = {
        let state = lock(&shared.state);
        let Some(sub) = state.subscribers.get(token) else {
            return Err((StatusCode::NOT_FOUND, "no such subscription".into()));
        };
        (sub.secret.clone(), sub.auth)
    };
    if header(headers, "content-encoding") != Some("aes128gcm") {
        return Err(bad("Content-Encoding must be aes128gcm"));
    }
    let ttl = header(headers, "ttl")
        .filter(|t| t.parse::<u64>().is_ok())
        .ok_or_else(|| bad("TTL header missing"))?
        .to_owned();
    let authorization =
        header(headers, "authorization").ok_or_else(|| bad("Authorization missing"))?;
    let (jwt, key) = parse_vapid(authorization).ok_or_else(|| {
        (
            StatusCode::UNAUTHORIZED,
            "Authorization is not vapid t=..., k=...".to_owned(),
        )
    })?;
    let raw_key = URL_SAFE_NO_PAD
        .decode(key)
        .map_err(|_| bad("k is not base64url"))?;
    if raw_key.len() != 65 || raw_key[0] != 0x04 {
        return Err(bad("k is not an uncompressed P-256 key"));
    }
    let public = ES256PublicKey::from_bytes(&raw_key).map_err(|_| bad("k is not a P-256 key"))?;
    let origin = shared.origin.get().cloned().unwrap_or_default();
    let options = VerificationOptions {
        allowed_audiences: Some([origin].into_iter().collect()),
        // The JWT must be valid now, by this clock.
        time_tolerance: None,
        ..VerificationOptions::default()
    };
    let claims = public
        .verify_token::<NoCustomClaims>(jwt, Some(options))
        .map_err(|e| (StatusCode::FORBIDDEN, format!("VAPID JWT refused: {e}")))?;
    let now = Clock::now_since_epoch().as_secs();
    let exp = claims
        .expires_at
        .map(|t| t.as_secs())
        .ok_or_else(|| (StatusCode::FORBIDDEN, "VAPID JWT has no exp".to_owned()))?;
    if exp <= now || exp > now + 24 * 60 * 60 {
        return Err((
            StatusCode::FORBIDDEN,
            "VAPID JWT exp must be within 24 hours".to_owned(),
        ));
    }
    let subject = claims
        .subject
        .filter(|s| s.starts_with("mailto:") || s.starts_with("https:"))
        .ok_or_else(|| (StatusCode::FORBIDDEN, "VAPID JWT sub missing".to_owned()))?;
    let plain = web_push_native::decrypt(body.to_vec(), &secret, &auth)
        .map_err(|e| bad(format!("payload does not decrypt: {e}")))?;
    let payload: serde_json::Value =
        serde_json::from_slice(&plain).map_err(|_| bad("payload is not JSON"))?;
    Ok(ReceivedPush {
        token: token.to_owned(),
        payload,
        ttl,
        urgency: header(headers, "urgency").map(str::to_owned),
        topic: header(headers, "topic").map(str::to_owned),
        vapid_key: key.to_owned(),
        subject,
        expires_in_secs: exp - now,
    })
}

/// `vapid t=<jwt>, k=<key>` (RFC 8292 section 3), parameters in either order.
fn parse_vapid(value: &str) -> Option<(&str, &str)> {
    let rest = value.strip_prefix("vapid ")?;
    let mut t = None;
    let mut k = None;
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.trim()),
            Some(("k", v)) => k = Some(v.trim()),
            _ => return None,
        }
    }
    Some((t?, k?))
}
