//! The outbox: the deliveries a notification makes, written by [`enqueue`] inside the very
//! transaction that creates the in-app notification (and so inside the transaction of the change
//! it reports: the webhook's status change, the download's end). A crash can therefore neither
//! lose a delivery nor send one for a change that was rolled back. The delivery worker
//! ([`super::worker`]) sends the rows; each row's id is the idempotency key of all its tries.
//!
//! Which channels get a notification is the user's choice ([`super::prefs`]) among the channels
//! the admin enabled; Web Push gets one row per subscribed device. `service.*` rows of one
//! service fold into a row still waiting (see [`COLLAPSE_PREFIX`]), so a flapping service makes
//! one message per window instead of one per flap.

use rusqlite::{Connection, OptionalExtension};
use serde_json::Value;

use super::Notification;
use super::channel_settings::Kind;
use super::prefs;
use crate::error::AppResult;

/// Collapse keys of service flaps start with this, followed by the service's name.
pub const COLLAPSE_PREFIX: &str = "service:";

/// The delivery event of an in-app notification, or `None` when it goes to the bell only
/// (e.g. a request that moved to "processing").
pub fn delivery_event(kind: &str, metadata: Option<&Value>) -> Option<&'static str> {
    Some(match kind {
        "request.status" => match metadata?.get("status")?.as_str()? {
            "approved" => "request.approved",
            "declined" => "request.declined",
            "available" => "request.available",
            "failed" => "request.failed",
            _ => return None,
        },
        // A comment on, or the resolving or reopening of, the user's problem report.
        "problem.comment" | "problem.resolved" | "problem.reopened" => "problem.updated",
        "download.completed" => "download.completed",
        "download.failed" => "download.failed",
        "service.down" => "service.down",
        "service.up" => "service.recovered",
        "user.signup" => "user.signup",
        "announcement" => "announcement",
        _ => return None,
    })
}

/// The key under which pending deliveries of `event` fold into one.
fn collapse_key(event: &str, metadata: Option<&Value>) -> Option<String> {
    if !event.starts_with("service.") {
        return None;
    }
    let service = metadata?.get("service")?.as_str()?;
    Some(format!("{COLLAPSE_PREFIX}{service}"))
}

/// The channels the admin has turned on.
fn enabled_channels(conn: &Connection) -> AppResult<Vec<Kind>> {
    let mut stmt =
        conn.prepare_cached("SELECT kind FROM notification_channels WHERE enabled = 1")?;
    let kinds = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(kinds.iter().filter_map(|k| Kind::parse(k)).collect())
}

/// Writes the deliveries of `notification` (just made for `user_id`) in the caller's
/// transaction; answers how many rows it wrote or folded.
pub fn enqueue(conn: &Connection, user_id: &str, notification: &Notification) -> AppResult<usize> {
    let metadata = notification.metadata.as_ref();
    let Some(event) = delivery_event(&notification.kind, metadata) else {
        return Ok(0);
    };
    // Cheapest first: with no channel set up (most installs at first) nothing else is read.
    let enabled = enabled_channels(conn)?;
    if enabled.is_empty() {
        return Ok(0);
    }
    let wanted = prefs::channels_for_event(conn, user_id, event)?;
    let key = collapse_key(event, metadata);
    let now = notification.created_at_ms;
    let mut written = 0;
    for kind in wanted.into_iter().filter(|k| enabled.contains(k)) {
        if kind == Kind::Webpush {
            let devices: Vec<String> = conn
                .prepare_cached("SELECT id FROM push_subscriptions WHERE user_id = ?1")?
                .query_map([user_id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for device in devices {
                written += put(
                    conn,
                    user_id,
                    notification,
                    event,
                    kind,
                    Some(&device),
                    key.as_deref(),
                    now,
                )?;
            }
        } else {
            written += put(
                conn,
                user_id,
                notification,
                event,
                kind,
                None,
                key.as_deref(),
                now,
            )?;
        }
    }
    Ok(written)
}

/// One row: folded into a waiting row with the same collapse key, or inserted.
#[allow(clippy::too_many_arguments)]
fn put(
    conn: &Connection,
    user_id: &str,
    notification: &Notification,
    event: &str,
    kind: Kind,
    device: Option<&str>,
    key: Option<&str>,
    now: i64,
) -> AppResult<usize> {
    if let Some(key) = key {
        // The newest state replaces what was waiting, and the row counts what it folds.
        let waiting: Option<String> = conn
            .prepare_cached(
                "SELECT id FROM notification_deliveries
                  WHERE user_id = ?1 AND channel = ?2 AND collapse_key = ?3
                    AND status = 'pending' AND push_subscription_id IS ?4
                  LIMIT 1",
            )?
            .query_row(
                rusqlite::params![user_id, kind.as_str(), key, device],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = waiting {
            conn.prepare_cached(
                "UPDATE notification_deliveries
                    SET notification_id = ?2, event = ?3, collapsed = collapsed + 1, updated_at = ?4
                  WHERE id = ?1",
            )?
            .execute(rusqlite::params![id, notification.id, event, now])?;
            return Ok(1);
        }
    }
    conn.prepare_cached(
        "INSERT INTO notification_deliveries
             (id, notification_id, user_id, channel, push_subscription_id, event, collapse_key,
              next_attempt_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?8)",
    )?
    .execute(rusqlite::params![
        uuid::Uuid::now_v7().to_string(),
        notification.id,
        user_id,
        kind.as_str(),
        device,
        event,
        key,
        now
    ])?;
    Ok(1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn problem_notifications_share_one_event() {
        for kind in ["problem.comment", "problem.resolved", "problem.reopened"] {
            assert_eq!(
                delivery_event(kind, None),
                Some("problem.updated"),
                "{kind}"
            );
            assert!(super::prefs::EVENTS.contains(&"problem.updated"));
        }
    }

    #[test]
    fn request_statuses_map_to_their_events_and_the_rest_stays_in_the_bell() {
        let status = |s: &str| json!({ "status": s });
        assert_eq!(
            delivery_event("request.status", Some(&status("available"))),
            Some("request.available")
        );
        assert_eq!(
            delivery_event("request.status", Some(&status("declined"))),
            Some("request.declined")
        );
        assert_eq!(
            delivery_event("request.status", Some(&status("processing"))),
            None
        );
        assert_eq!(delivery_event("request.status", None), None);
        assert_eq!(
            delivery_event("service.up", None),
            Some("service.recovered")
        );
        assert_eq!(delivery_event("something.else", None), None);
        assert_eq!(
            collapse_key("service.down", Some(&json!({"service": "plex"}))).as_deref(),
            Some("service:plex")
        );
        assert_eq!(
            collapse_key("request.available", Some(&json!({"service": "x"}))),
            None
        );
    }
}
