//! Web Push (issue 14): the VAPID key pair kept in the data dir ([`vapid`]), each user's push
//! subscriptions ([`subscriptions`]) and sending one message to one subscription per RFC 8291 and
//! RFC 8292 ([`send`]).
//!
//! Routes: `GET /push/vapid-public-key` (the `applicationServerKey` for
//! `PushManager.subscribe`), `POST/GET /me/push-subscriptions`,
//! `DELETE /me/push-subscriptions/{id}`; all for signed-in users. What to send when, retries and
//! the outbox are not this module's.

pub mod send;
pub mod subscriptions;
pub mod vapid;

use axum::extract::State;
use axum::http::Method;
use serde::Serialize;

pub use send::{Outcome, PushMessage, PushOptions, Pusher, Urgency};
pub use subscriptions::Subscription;
pub use vapid::VapidKey;

use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::response::ApiResponse;
use crate::routes::{Access, Routes};
use crate::state::AppState;

/// The push routes (under `/api/v1`).
pub fn routes() -> Routes {
    Routes::new()
        .add(
            Method::GET,
            "/push/vapid-public-key",
            Access::User,
            get_vapid_public_key,
        )
        .add(
            Method::POST,
            "/me/push-subscriptions",
            Access::User,
            subscriptions::create_push_subscription,
        )
        .add(
            Method::GET,
            "/me/push-subscriptions",
            Access::User,
            subscriptions::list_push_subscriptions,
        )
        .add(
            Method::DELETE,
            "/me/push-subscriptions/{id}",
            Access::User,
            subscriptions::delete_push_subscription,
        )
}

/// Checks a VAPID subject: a `mailto:` address or an `https:` URL (RFC 8292 section 2.1).
pub fn check_subject(subject: &str) -> Result<(), String> {
    let ok = match subject.split_once(':') {
        Some(("mailto", rest)) => rest.contains('@') && !rest.contains(char::is_whitespace),
        Some(("https", _)) => url::Url::parse(subject).is_ok_and(|u| u.host_str().is_some()),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err("must be a mailto: address or an https: URL".into())
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct VapidPublicKey<'a> {
    public_key: &'a str,
}

/// `GET /push/vapid-public-key`: `{publicKey}`, the uncompressed P-256 key in base64url without
/// padding.
pub async fn get_vapid_public_key(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> AppResult<ApiResponse> {
    Ok(ApiResponse::ok(&VapidPublicKey {
        public_key: state.data_dir().vapid.public_key_b64(),
    }))
}
