//! One way for a request's status to change, whoever noticed (the webhook, reconciliation, an
//! admin's approve or decline): update the row, notify the owner and the followers in the same
//! transaction, then announce `request.updated` and drop their dashboards once it committed.
//! A status the row already has changes nothing and notifies nobody, so replays are harmless.

use serde::Serialize;
use serde_json::json;

use super::store::{self, RequestRow};
use crate::error::AppResult;
use crate::events::{Audience, Event, kind};
use crate::integrations::overseerr::RequestState;
use crate::notifications::{self, Notification};
use crate::state::AppState;

/// Where a change came from (kept in the notification's metadata, and in the logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Webhook,
    Reconcile,
    Admin,
}

/// What [`apply`] did.
#[derive(Debug, Clone)]
pub enum Applied {
    /// The row already had that status (or is gone).
    Unchanged,
    /// The row changed; these users were notified.
    Changed {
        row: Box<RequestRow>,
        notified: Vec<String>,
    },
}

/// Whether an update from Overseerr may move a request from `from` to `to`. An available title
/// does not go back (a late `MEDIA_APPROVED` arriving after `MEDIA_AVAILABLE` is old news).
pub fn allowed(from: RequestState, to: RequestState) -> bool {
    from != to && from != RequestState::Available
}

/// The `request.updated` payload.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Updated<'a> {
    id: &'a str,
    user_id: &'a str,
    status: &'a str,
    previous_status: &'a str,
    title: &'a str,
    request: &'a RequestRow,
}

/// Sets request `id` to `to` (if [`allowed`]) and tells everyone concerned. `reason` is a
/// decline reason for the message.
pub async fn apply(
    state: &AppState,
    id: &str,
    to: RequestState,
    origin: Origin,
    reason: Option<String>,
) -> AppResult<Applied> {
    let now = state.clock().now_ms();
    let id = id.to_owned();
    let outcome = state
        .db()
        .write(move |tx| {
            let Some(before) = store::get(tx, "", &id)? else {
                return Ok(None);
            };
            let from = before.state().unwrap_or(RequestState::Pending);
            if !allowed(from, to) {
                return Ok(None);
            }
            match store::set_status(tx, &id, to, now) {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                // Moving a declined request back to active while another active request for the
                // title exists would break the one-active rule: keep the row as it is.
                Err(e) if crate::error::is_unique_violation(&e) => {
                    tracing::warn!(request = %id, to = to.as_str(), "status change would duplicate an active request; skipped");
                    return Ok(None);
                }
                Err(e) => return Err(e.into()),
            }
            let Some(after) = store::get(tx, "", &id)? else {
                return Ok(None);
            };
            let users = store::audience(tx, &id, &after.user_id)?;
            // A request the watchlist sync made says so in what everyone concerned reads.
            let shown = match after.source {
                store::RequestSource::Watchlist => format!("{} (from a Plex watchlist)", after.title),
                store::RequestSource::Manual => after.title.clone(),
            };
            let (title, message) = wording(&shown, to, reason.as_deref());
            let metadata = json!({
                "requestId": after.id,
                "title": after.title,
                "tmdbId": after.tmdb_id,
                "mediaType": after.media_type.as_str(),
                "posterPath": after.poster_path,
                "status": to.as_str(),
                "previousStatus": from.as_str(),
                "origin": origin,
                "reason": reason,
                "source": after.source,
            });
            let made = notifications::create_for_users(
                tx,
                &users,
                "request.status",
                &title,
                &message,
                Some(metadata),
                now,
            )?;
            Ok(Some((before.status, after, made)))
        })
        .await?;
    let Some((previous, row, made)) = outcome else {
        return Ok(Applied::Unchanged);
    };
    let notified: Vec<String> = made.iter().map(|(user, _)| user.clone()).collect();
    announce(state, &row, &previous, &made);
    tracing::info!(request = %row.id, from = %previous, to = %row.status, origin = ?origin, "request status changed");
    Ok(Applied::Changed {
        row: Box::new(row),
        notified,
    })
}

/// After commit: the notifications and `request.updated` go out, dashboards are dropped.
fn announce(state: &AppState, row: &RequestRow, previous: &str, made: &[(String, Notification)]) {
    let users: Vec<String> = made.iter().map(|(u, _)| u.clone()).collect();
    for user in &users {
        state.dashboard().forget(user);
    }
    notifications::publish_all_created(state.events(), made);
    publish_updated(state, row, previous, users);
}

/// `request.updated` to the owner, the followers and the admins.
pub fn publish_updated(state: &AppState, row: &RequestRow, previous: &str, users: Vec<String>) {
    state.events().publish(Event::new(
        kind::REQUEST_UPDATED,
        Audience::UsersAndAdmins(users),
        &Updated {
            id: &row.id,
            user_id: &row.user_id,
            status: &row.status,
            previous_status: previous,
            title: &row.title,
            request: row,
        },
    ));
}

/// The notification's title and message.
fn wording(title: &str, to: RequestState, reason: Option<&str>) -> (String, String) {
    let (head, body) = match to {
        RequestState::Pending => (
            "Request pending",
            format!("{title} is waiting for approval."),
        ),
        RequestState::Approved => ("Request approved", format!("{title} was approved.")),
        RequestState::Processing => (
            "Request processing",
            format!("{title} is being downloaded."),
        ),
        RequestState::PartiallyAvailable => (
            "Partially available",
            format!("Some of {title} is now available on Plex."),
        ),
        RequestState::Available => (
            "Now available",
            format!("{title} is now available on Plex."),
        ),
        RequestState::Declined => match reason.filter(|r| !r.trim().is_empty()) {
            Some(reason) => (
                "Request declined",
                format!("{title} was declined: {}", reason.trim()),
            ),
            None => ("Request declined", format!("{title} was declined.")),
        },
        RequestState::Failed => ("Request failed", format!("{title} could not be processed.")),
    };
    (head.to_owned(), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_is_not_undone_and_same_is_no_change() {
        use RequestState::*;
        assert!(allowed(Pending, Approved));
        assert!(allowed(Approved, Available));
        assert!(allowed(Declined, Approved));
        assert!(!allowed(Approved, Approved));
        assert!(!allowed(Available, Approved));
        assert!(!allowed(Available, Declined));
    }

    #[test]
    fn a_decline_carries_its_reason() {
        let (_, m) = wording("Dune", RequestState::Declined, Some(" not on 4K "));
        assert_eq!(m, "Dune was declined: not on 4K");
        let (_, m) = wording("Dune", RequestState::Declined, Some("  "));
        assert_eq!(m, "Dune was declined.");
    }
}
