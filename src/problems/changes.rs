//! One way for a problem to change, whoever noticed (an admin here, Seerr's webhook): add the
//! comment, set the status, and notify the reporter, all in one write transaction; announce the
//! notification once it committed. A comment already stored (an echo, a redelivery) and a
//! status the problem already has change nothing and notify nobody.

use serde_json::json;

use super::store::{self, ProblemRow};
use crate::error::AppResult;
use crate::notifications;
use crate::state::AppState;

/// A comment to add.
#[derive(Debug, Clone)]
pub struct NewComment {
    /// The MediaNest user who wrote it here; `None` from Seerr.
    pub user_id: Option<String>,
    pub author: String,
    pub message: String,
    /// The Seerr account that wrote it there (its email in lower case, else its display name
    /// in lower case), when known.
    pub seerr_author: Option<String>,
    /// The text as Seerr's webhook carries it (see `webhook::template_filled`).
    pub seerr_message: String,
    /// Seerr's comment id, when known (the webhook carries none).
    pub seerr_comment_id: Option<i64>,
    /// Made here: Seerr's `ISSUE_COMMENT` about it is still to come and is not a new comment.
    pub echo_pending: bool,
}

/// The account key [`NewComment::seerr_author`] holds: the email, else the display name, in
/// lower case; `None` when both are empty.
pub fn seerr_author(email: Option<&str>, display_name: Option<&str>) -> Option<String> {
    [email, display_name]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|s| !s.is_empty())
        .map(str::to_lowercase)
}

/// What to change.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub comment: Option<NewComment>,
    /// `open` or `resolved`.
    pub status: Option<&'static str>,
    /// The reporter made the change: they are not told about it.
    pub by_reporter: bool,
}

/// What [`apply`] did.
#[derive(Debug, Clone)]
pub struct Applied {
    pub row: ProblemRow,
    pub comment_added: bool,
    pub status_changed: bool,
    /// The reporter was notified.
    pub notified: bool,
}

/// The notification's type, title and message.
fn wording(
    row: &ProblemRow,
    status_changed: bool,
    comment: Option<&str>,
) -> (&'static str, String, String) {
    let what = match (row.season, row.episode) {
        (Some(s), Some(e)) if s > 0 && e > 0 => format!("{} (S{s:02}E{e:02})", row.title),
        (Some(s), _) if s > 0 => format!("{} (season {s})", row.title),
        _ => row.title.clone(),
    };
    let said = comment
        .map(|c| format!(": {c}"))
        .unwrap_or_else(|| ".".into());
    if status_changed && row.status == "resolved" {
        (
            "problem.resolved",
            "Problem resolved".into(),
            format!("Your problem report about {what} was resolved{said}"),
        )
    } else if status_changed {
        (
            "problem.reopened",
            "Problem reopened".into(),
            format!("Your problem report about {what} was reopened{said}"),
        )
    } else {
        (
            "problem.comment",
            "New comment on your problem report".into(),
            format!("About {what}{said}"),
        )
    }
}

/// Applies `change` to problem `id`; `None` when there is no such problem.
pub async fn apply(state: &AppState, id: &str, change: Change) -> AppResult<Option<Applied>> {
    let now = state.clock().now_ms();
    let id = id.to_owned();
    let outcome = state
        .db()
        .write(move |tx| {
            if store::get(tx, &id)?.is_none() {
                return Ok(None);
            }
            let comment_added = match &change.comment {
                Some(c) => store::add_comment(tx, &id, c, now)?,
                None => false,
            };
            let status_changed = match change.status {
                Some(status) => store::set_status(tx, &id, status, now)?,
                None => false,
            };
            let Some(row) = store::get(tx, &id)? else {
                return Ok(None);
            };
            let mut made = None;
            if (status_changed || comment_added) && !change.by_reporter {
                let comment = change.comment.as_ref().map(|c| c.message.as_str());
                let (kind, title, message) = wording(&row, status_changed, comment);
                let metadata = json!({
                    "problemId": row.id,
                    "title": row.title,
                    "tmdbId": row.tmdb_id,
                    "mediaType": row.media_type,
                    "status": row.status,
                    "comment": comment,
                });
                made = Some(notifications::create(
                    tx,
                    &row.user_id,
                    kind,
                    &title,
                    &message,
                    Some(metadata),
                    now,
                )?);
            }
            Ok(Some((row, comment_added, status_changed, made)))
        })
        .await?;
    let Some((row, comment_added, status_changed, made)) = outcome else {
        return Ok(None);
    };
    let notified = made.is_some();
    if let Some(notification) = made {
        state.dashboard().forget(&row.user_id);
        notifications::publish_created(state.events(), &row.user_id, &notification);
    }
    if status_changed {
        tracing::info!(problem = %row.id, status = %row.status, "problem status changed");
    }
    Ok(Some(Applied {
        row,
        comment_added,
        status_changed,
        notified,
    }))
}
