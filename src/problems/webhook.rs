//! Seerr's issue notifications (`ISSUE_CREATED`, `ISSUE_COMMENT`, `ISSUE_RESOLVED`,
//! `ISSUE_REOPENED`), handed over by the Seerr webhook endpoint once it checked the secret.
//!
//! - `ISSUE_CREATED` about an issue not stored yet (made in Seerr's own UI, or our create call
//!   has not stored its answer yet): the issue is read from Seerr (`GET /api/v1/issue/{id}`,
//!   for the reporter's Seerr account and the media) and stored when that account is a
//!   MediaNest user's (the same mapping as requests, checked the other way round); anything
//!   else is ignored with a 200. Nobody is notified: the reporter made it.
//! - `ISSUE_COMMENT`: the comment (`comment_message`) is added unless it is the echo of a
//!   comment made here (the same Seerr account and the text as Seerr's template filling
//!   rewrites it) or a redelivery (see `store::add_comment`), and the reporter is told unless
//!   they wrote it (`commentedBy_email` = `reportedBy_email`, and the issue was created as the
//!   reporter's own Seerr account, not as the API key's admin).
//! - `ISSUE_RESOLVED` / `ISSUE_REOPENED`: the issue's current status is read from Seerr and
//!   set (the event's own status only when Seerr cannot be asked), so a late delivery cannot
//!   undo a newer change; only a real change notifies.
//!
//! Every step runs under the issue's lock (see `Problems::lock_issue`), so a webhook that echoes
//! an admin's resolve waits for that resolve to be stored and then changes nothing.

use serde::Serialize;

use super::changes::{self, Change, NewComment};
use super::store::{self, NewProblem, ProblemRow};
use crate::error::AppResult;
use crate::integrations::overseerr::webhook::IssueInfo;
use crate::integrations::overseerr::{
    IssueStatus, MediaType, NotificationType, Overseerr, WebhookEvent,
};
use crate::media::requests::overseerr_user;
use crate::state::AppState;

/// What the webhook did with an issue notification.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// About a problem MediaNest stores (or now stored).
    pub handled: bool,
    /// Something changed (stored, commented, status).
    pub changed: bool,
    pub problem_id: Option<String>,
    pub status: Option<String>,
    /// The reporter was notified.
    pub notified: bool,
}

fn same(a: Option<&str>, b: Option<&str>) -> bool {
    match (a.map(str::trim), b.map(str::trim)) {
        (Some(a), Some(b)) if !a.is_empty() => a.eq_ignore_ascii_case(b),
        _ => false,
    }
}

/// Whether the comment's Seerr account and the issue's reporter account are the same: the same
/// Seerr email (or, without emails, the same display name; both come from Seerr's own user
/// table; the webhook carries no account ids, see the KeyMap of
/// server/lib/notifications/agents/webhook.ts).
fn same_account(issue: &IssueInfo) -> bool {
    if issue.reported_by_email.is_some() && issue.commented_by_email.is_some() {
        return same(
            issue.reported_by_email.as_deref(),
            issue.commented_by_email.as_deref(),
        );
    }
    same(
        issue.reported_by_username.as_deref(),
        issue.commented_by_username.as_deref(),
    )
}

/// Whether the MediaNest reporter of `row` wrote the comment: only when the issue was created
/// as their own Seerr account and that account commented. A report made as the API key's
/// admin (`overseerr.fallback_to_admin`, or an admin without a Seerr account) shares the
/// account with Seerr's owner, so a comment made in Seerr is never theirs. Rows older than
/// migration 0017 (no account stored) compare the accounts only.
async fn by_reporter(state: &AppState, row: &ProblemRow, issue: &IssueInfo) -> bool {
    if !same_account(issue) {
        return false;
    }
    let Some(created_as) = row.seerr_user_id else {
        return true;
    };
    let own = match crate::media::search::overseerr(state).await {
        Ok(client) => overseerr_user(state, &client, &row.user_id).await,
        Err(e) => Err(e),
    };
    match own {
        Ok(own) => own == Some(created_as),
        Err(e) => {
            // Unsure: telling the reporter about their own words beats missing a reply.
            tracing::info!(error = %e, "reporter's Seerr account unknown; notifying");
            false
        }
    }
}

/// The issue's status as Seerr has it now (asked while the issue's lock is held): a webhook
/// delivered late, after a newer change, must not set an older status. When Seerr cannot be
/// asked, the event's own status (`told`).
async fn current_status(state: &AppState, issue_id: i64, told: IssueStatus) -> IssueStatus {
    let asked = match crate::media::search::overseerr(state).await {
        Ok(client) => client.get_issue(issue_id).await,
        Err(e) => Err(e),
    };
    match asked {
        Ok(Some(issue)) => issue.status().unwrap_or(told),
        Ok(None) => told,
        Err(e) => {
            tracing::info!(issue_id, error = %e, "Seerr not asked for the issue's status");
            told
        }
    }
}

/// Applies one issue notification.
pub async fn apply(state: &AppState, event: &WebhookEvent) -> AppResult<Outcome> {
    let Some(issue) = event.issue.as_ref() else {
        return Ok(Outcome::default());
    };
    let Some(issue_id) = issue.issue_id else {
        tracing::info!(
            kind = event.notification_type.as_str(),
            "issue webhook without issue_id; ignored"
        );
        return Ok(Outcome::default());
    };
    let _turn = state.problems().lock_issue(issue_id).await;
    let stored = state
        .db()
        .run(move |conn| store::by_issue(conn, issue_id))
        .await?;
    let Some(row) = stored else {
        if event.notification_type == NotificationType::IssueCreated {
            return adopt(state, issue_id).await;
        }
        tracing::info!(
            issue_id,
            kind = event.notification_type.as_str(),
            "webhook about an issue MediaNest does not store; ignored"
        );
        return Ok(Outcome::default());
    };
    let change = match event.notification_type {
        NotificationType::IssueComment => {
            let Some(message) = issue.comment_message.clone() else {
                return Ok(Outcome {
                    handled: true,
                    problem_id: Some(row.id),
                    status: Some(row.status),
                    ..Outcome::default()
                });
            };
            let message: String = message
                .chars()
                .take(super::api::MAX_MESSAGE_CHARS)
                .collect();
            Change {
                comment: Some(NewComment {
                    user_id: None,
                    author: issue
                        .commented_by_username
                        .clone()
                        .unwrap_or_else(|| "Seerr".into())
                        .chars()
                        .take(200)
                        .collect(),
                    seerr_author: changes::seerr_author(
                        issue.commented_by_email.as_deref(),
                        issue.commented_by_username.as_deref(),
                    ),
                    seerr_message: message.clone(),
                    seerr_comment_id: None,
                    echo_pending: false,
                    message,
                }),
                status: None,
                by_reporter: by_reporter(state, &row, issue).await,
            }
        }
        NotificationType::IssueResolved | NotificationType::IssueReopened => {
            let told = if event.notification_type == NotificationType::IssueResolved {
                IssueStatus::Resolved
            } else {
                IssueStatus::Open
            };
            Change {
                status: Some(current_status(state, issue_id, told).await.as_str()),
                ..Change::default()
            }
        }
        _ => {
            return Ok(Outcome {
                handled: true,
                problem_id: Some(row.id),
                status: Some(row.status),
                ..Outcome::default()
            });
        }
    };
    let Some(applied) = changes::apply(state, &row.id, change).await? else {
        return Ok(Outcome::default());
    };
    Ok(Outcome {
        handled: true,
        changed: applied.comment_added || applied.status_changed,
        problem_id: Some(applied.row.id),
        status: Some(applied.row.status),
        notified: applied.notified,
    })
}

/// The MediaNest user whose Seerr account is `seerr_user` (plex id, email), checked by mapping
/// each candidate forwards exactly as requests do.
async fn reporter(
    state: &AppState,
    client: &Overseerr,
    seerr_user: i64,
    plex_id: Option<i64>,
    email: Option<String>,
) -> AppResult<Option<String>> {
    let plex_id = plex_id.map(|p| p.to_string());
    let candidates: Vec<String> = state
        .db()
        .run(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id FROM users WHERE status = 'active'
                   AND ((?1 IS NOT NULL AND plex_id = ?1) OR (?2 IS NOT NULL AND email = ?2))",
            )?;
            let ids = stmt
                .query_map(rusqlite::params![plex_id, email], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(ids)
        })
        .await?;
    for candidate in candidates {
        if overseerr_user(state, client, &candidate).await? == Some(seerr_user) {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

/// Stores an issue made in Seerr when its reporter is a MediaNest user.
async fn adopt(state: &AppState, issue_id: i64) -> AppResult<Outcome> {
    let client = crate::media::search::overseerr(state).await?;
    let Some(issue) = client.get_issue(issue_id).await? else {
        return Ok(Outcome::default());
    };
    let (Some(by), Some(media), Some(kind)) = (
        issue.created_by.clone(),
        issue.media.clone(),
        issue.issue_type(),
    ) else {
        return Ok(Outcome::default());
    };
    let (Some(media_type), Some(tmdb_id), Some(media_id)) =
        (media.media_type, media.tmdb_id, media.id)
    else {
        return Ok(Outcome::default());
    };
    let Some(user_id) = reporter(state, &client, by.id, by.plex_id, by.email.clone()).await? else {
        tracing::info!(
            issue_id,
            "issue by a Seerr user who is nobody here; ignored"
        );
        return Ok(Outcome::default());
    };
    let (details, _) = crate::media::search::details(state, media_type, tmdb_id).await?;
    let (title, poster_path) = match details.as_deref() {
        Some(crate::media::Details::Movie(m)) => (m.title.clone(), m.poster_path.clone()),
        Some(crate::media::Details::Tv(t)) => (t.title.clone(), t.poster_path.clone()),
        None => (format!("TMDB {tmdb_id}"), None),
    };
    let tv = media_type == MediaType::Tv;
    let positive = |n: i64| (tv && n > 0).then_some(n);
    let message: String = issue
        .first_message()
        .unwrap_or("(no message)")
        .trim()
        .chars()
        .take(super::api::MAX_MESSAGE_CHARS)
        .collect();
    let new = NewProblem {
        id: uuid::Uuid::now_v7().to_string(),
        user_id,
        media_type: media_type.as_str().to_owned(),
        tmdb_id,
        title: title.chars().take(500).collect(),
        poster_path,
        seerr_media_id: media_id,
        seerr_issue_id: issue.id,
        problem_type: kind.as_str().to_owned(),
        message: if message.is_empty() {
            "(no message)".into()
        } else {
            message
        },
        season: positive(issue.problem_season),
        episode: positive(issue.problem_episode).filter(|_| issue.problem_season > 0),
        status: issue.status().map_or("open", |s| s.as_str()).to_owned(),
        now_ms: state.clock().now_ms(),
        seerr_user_id: Some(by.id),
    };
    let row = state.db().write(move |tx| store::insert(tx, &new)).await?;
    Ok(match row {
        Some(row) => Outcome {
            handled: true,
            changed: true,
            problem_id: Some(row.id),
            status: Some(row.status),
            notified: false,
        },
        None => Outcome::default(),
    })
}
