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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{Config, Overrides};

    #[test]
    fn the_subject_is_a_mailto_address_or_an_https_url() {
        for good in ["mailto:admin@home.example", "https://home.example/contact"] {
            assert!(check_subject(good).is_ok(), "{good}");
        }
        for bad in [
            "admin@home.example",
            "mailto:nobody",
            "http://home.example",
            "",
        ] {
            assert!(check_subject(bad).is_err(), "{bad}");
        }
        let load = |text: &str| Config::from_layers(Some(text), None, &[], &Overrides::default());
        let e = load("[push]\nsubject = \"admin\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("push.subject"), "{e}");
        let e = load("[push]\ntimeout_secs = 0\n").unwrap_err().to_string();
        assert!(e.contains("push.timeout_secs"), "{e}");
        assert!(load("[push]\nsubject = \"mailto:me@home.example\"\n").is_ok());
    }
}
