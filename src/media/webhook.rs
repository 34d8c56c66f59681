//! `POST /webhooks/overseerr`: Overseerr tells us a request changed.
//!
//! The `Authorization` header must be the configured `webhooks.overseerr_secret` (compared in
//! constant time; a `Bearer ` prefix is accepted too, since Overseerr sends whatever the admin
//! typed). No secret configured answers 503 `SERVICE_NOT_CONFIGURED`, so a half-set-up server
//! never accepts anonymous updates. The body is read tolerantly (`WebhookEvent::parse`); a test
//! notification, an unknown type or an unknown request is a 200 that changes nothing, so
//! Overseerr does not retry it. Replays change nothing either ([`changes::apply`]). The issue
//! notifications (`ISSUE_*`) belong to problem reports and are handed to
//! [`crate::problems::webhook::apply`].

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::changes::{self, Applied, Origin};
use super::store;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::integrations::overseerr::{NotificationType, RequestState, WebhookError, WebhookEvent};
use crate::response::ApiResponse;
use crate::state::AppState;

/// What the webhook did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Outcome {
    /// The notification is one MediaNest acts on and names a request it knows.
    handled: bool,
    /// The request's status changed.
    changed: bool,
    request_id: Option<String>,
    status: Option<String>,
    /// About an Overseerr request id no row has yet (the create call that made it has not
    /// returned): kept, and applied to the row when it is stored.
    held: bool,
}

/// Whether `header` carries `secret` (exactly, or after `Bearer `).
fn authorized(header: Option<&[u8]>, secret: &str) -> bool {
    let Some(header) = header else {
        return false;
    };
    let digest = |b: &[u8]| Sha256::digest(b);
    let want = digest(secret.as_bytes());
    let exact = digest(header).ct_eq(&want);
    let bearer = header
        .strip_prefix(b"Bearer ")
        .map(|rest| digest(rest).ct_eq(&want))
        .unwrap_or_else(|| 0u8.ct_eq(&1u8));
    bool::from(exact | bearer)
}

/// The status a notification moves a request to. `MEDIA_AVAILABLE` is available whatever
/// `media.status` says: the agent sends it per request, once *that request's* seasons are all
/// in, while the show may stay `PARTIALLY_AVAILABLE` for seasons nobody asked for
/// (`notifyAvailableSeries` in server/subscriber/MediaRequestSubscriber.ts, seerr-team/seerr;
/// the same in sct/overseerr).
fn target(event: &WebhookEvent) -> Option<RequestState> {
    event.notification_type.request_state()
}

/// `POST /webhooks/seerr` (and the old `/webhooks/overseerr`).
pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<ApiResponse> {
    let Some(secret) = state.config().webhooks.overseerr_secret.as_ref() else {
        return Err(AppError::Api {
            code: ErrorCode::ServiceNotConfigured,
            service: Some("The Overseerr webhook"),
            details: None,
            retry_after: None,
        });
    };
    let header = headers.get(AUTHORIZATION).map(|v| v.as_bytes());
    if !authorized(header, secret.expose()) {
        return Err(AppError::new(ErrorCode::WebhookUnauthorized));
    }
    let event = WebhookEvent::parse(&body).map_err(|e| match e {
        WebhookError::NotJson => AppError::new(ErrorCode::InvalidJson),
        WebhookError::NotAnObject => AppError::validation([("body", "must be a JSON object")]),
    })?;
    if event.notification_type.is_issue() {
        // Problem reports own the issue notifications.
        let outcome = crate::problems::webhook::apply(&state, &event).await?;
        return Ok(ApiResponse::ok(&outcome));
    }
    let ignored = Outcome {
        handled: false,
        changed: false,
        request_id: None,
        status: None,
        held: false,
    };
    let Some(mut to) = target(&event) else {
        if event.notification_type != NotificationType::TestNotification {
            tracing::debug!(
                kind = event.notification_type.as_str(),
                "webhook type ignored"
            );
        }
        return Ok(ApiResponse::ok(&ignored));
    };
    let overseerr_id = event.request_id;
    let title = event
        .tmdb_id
        .zip(event.media_type)
        .map(|(id, kind)| (id, kind, event.is_4k()));
    let find = || {
        state
            .db()
            .run(move |conn| store::find_for_webhook(conn, overseerr_id, title))
    };
    let mut found = find().await?;
    let mut reason = event.reason.clone();
    if found.is_none()
        && let Some(oid) = overseerr_id
    {
        // The upstream may notify before its answer to our create call arrives (Seerr sends
        // from the request's subscribers, before the route answers): keep the change for the
        // row that is about to appear. The create path takes it right after its insert; if the
        // insert came between the lookup above and the hold, the row is there now and this
        // takes it back itself. Either way exactly one of the two applies it.
        let now = state.clock().now_ms();
        state.media().hold_early(oid, to, reason.clone(), now);
        found = find().await?;
        if found.is_none() {
            tracing::info!(
                overseerr_id,
                kind = event.notification_type.as_str(),
                "webhook about a request not stored yet; kept for it"
            );
            return Ok(ApiResponse::ok(&Outcome {
                held: true,
                ..ignored
            }));
        }
        let Some(early) = state.media().take_early(oid, now) else {
            // The create path took it and applied it already.
            return Ok(ApiResponse::ok(&Outcome {
                handled: true,
                ..ignored
            }));
        };
        (to, reason) = (early.to, early.reason);
    }
    let Some(row) = found else {
        tracing::info!(
            overseerr_id,
            tmdb_id = event.tmdb_id,
            kind = event.notification_type.as_str(),
            "webhook about a request MediaNest does not know; ignored"
        );
        return Ok(ApiResponse::ok(&ignored));
    };
    let applied = changes::apply(&state, &row.id, to, Origin::Webhook, reason).await?;
    let (changed, status) = match applied {
        Applied::Changed { row, .. } => (true, row.status),
        Applied::Unchanged => (false, row.status),
    };
    Ok(ApiResponse::ok(&Outcome {
        handled: true,
        changed,
        request_id: Some(row.id),
        status: Some(status),
        held: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_compared_exactly_or_after_bearer() {
        assert!(authorized(Some(b"s3cret"), "s3cret"));
        assert!(authorized(Some(b"Bearer s3cret"), "s3cret"));
        assert!(!authorized(Some(b"s3cret "), "s3cret"));
        assert!(!authorized(Some(b"S3CRET"), "s3cret"));
        assert!(!authorized(Some(b""), "s3cret"));
        assert!(!authorized(None, "s3cret"));
    }

    /// Seerr 3.x and Overseerr 1.33: MEDIA_AVAILABLE goes out per request once its own
    /// seasons are in (server/subscriber/MediaRequestSubscriber.ts), the show possibly partial.
    #[test]
    fn available_is_available_even_on_a_partially_available_show() {
        let event = WebhookEvent::parse(
            br#"{"notification_type":"MEDIA_AVAILABLE","event":"Series Request Now Available","media":{"status":"PARTIALLY_AVAILABLE"}}"#,
        )
        .ok();
        assert_eq!(
            event.as_ref().and_then(target),
            Some(RequestState::Available)
        );
        let test = WebhookEvent::parse(br#"{"notification_type":"TEST_NOTIFICATION"}"#).ok();
        assert_eq!(test.as_ref().and_then(target), None);
    }
}
