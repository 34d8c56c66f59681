//! Lost issue webhooks only delay an update: the request reconciliation round (every 10 minutes,
//! `media::reconcile`) also asks Seerr about every open problem report and applies a resolve
//! made there whose webhook never arrived, notifying the reporter as the webhook would have.
//! Each issue is asked under its lock, so a webhook arriving at the same time applies once.

use crate::error::AppResult;
use crate::integrations::overseerr::Overseerr;
use crate::state::AppState;

use super::changes::{self, Change};
use super::store::{self, Filter};

/// Open reports read per batch.
const BATCH: u32 = 50;

/// What a round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Open reports Seerr was asked about.
    pub checked: u64,
    /// Reports whose status changed.
    pub changed: u64,
    /// Reports whose issue Seerr no longer has (left as they are).
    pub missing: u64,
}

/// One round over the open reports, newest first.
pub async fn run_once(state: &AppState, client: &Overseerr) -> AppResult<Report> {
    let mut report = Report::default();
    let mut after: Option<(i64, String)> = None;
    loop {
        let from = after.clone();
        let mut batch = state
            .db()
            .read(move |conn| {
                store::list(conn, &Filter::Status("open".into()), from.as_ref(), BATCH)
            })
            .await?;
        let more = batch.len() > BATCH as usize;
        batch.truncate(BATCH as usize);
        let Some(last) = batch.last() else {
            break;
        };
        after = Some((last.created_at_ms, last.id.clone()));
        for row in &batch {
            if state.shutdown_token().is_cancelled() {
                return Ok(report);
            }
            report.checked += 1;
            let _turn = state.problems().lock_issue(row.seerr_issue_id).await;
            let Some(issue) = client.get_issue(row.seerr_issue_id).await? else {
                report.missing += 1;
                continue;
            };
            let Some(status) = issue.status() else {
                continue;
            };
            if status.as_str() == row.status {
                continue;
            }
            let change = Change {
                status: Some(status.as_str()),
                ..Change::default()
            };
            if let Some(applied) = changes::apply(state, &row.id, change).await?
                && applied.status_changed
            {
                report.changed += 1;
            }
        }
        if !more {
            break;
        }
    }
    Ok(report)
}
