//! Reconciliation: every 10 minutes (and once shortly after start, to catch what happened while
//! MediaNest was down), every request that is not final is compared with Overseerr, so a lost
//! webhook only delays an update. Changes go through [`changes::apply`], exactly like a webhook.
//!
//! Requests are read status by status in batches along the `(status, created_at, id)` index
//! (never all at once) and checked one at a time: this is a
//! background job and Overseerr is someone's home server. The first upstream failure ends the
//! round; the next round starts over.

use std::time::Duration;

use super::changes::{self, Applied, Origin};
use super::store;
use crate::error::AppResult;
use crate::state::AppState;

/// Time between rounds.
pub const INTERVAL: Duration = Duration::from_secs(600);
/// Time from start to the first round.
const FIRST_ROUND: Duration = Duration::from_secs(30);

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Requests compared with Overseerr.
    pub checked: u64,
    /// Requests whose status changed.
    pub changed: u64,
    /// Requests Overseerr no longer has.
    pub missing: u64,
    /// The open problem reports' round (see `problems::reconcile`).
    pub problems: crate::problems::reconcile::Report,
}

/// One round. Without an Overseerr client there is nothing to do.
pub async fn run_once(state: &AppState) -> AppResult<Report> {
    let mut report = Report::default();
    let clients = crate::services::clients(state).await?;
    let Some(client) = clients.overseerr.clone() else {
        return Ok(report);
    };
    for status in store::OPEN_STATUSES {
        let mut after = (i64::MIN, String::new());
        loop {
            let from = after.clone();
            let batch = state
                .db()
                .run(move |conn| store::open_batch(conn, status, (from.0, &from.1)))
                .await?;
            let Some(last) = batch.last() else {
                break;
            };
            after = (last.3, last.0.clone());
            for (id, overseerr_id, status, _) in &batch {
                if state.shutdown_token().is_cancelled() {
                    return Ok(report);
                }
                report.checked += 1;
                let Some(found) = client.get_request(*overseerr_id).await? else {
                    report.missing += 1;
                    tracing::debug!(request = %id, overseerr_id, "Overseerr no longer has this request");
                    continue;
                };
                let to = found.state();
                if to.as_str() == status {
                    continue;
                }
                if let Applied::Changed { .. } =
                    changes::apply(state, id, to, Origin::Reconcile, None).await?
                {
                    report.changed += 1;
                }
            }
            if batch.len() < store::OPEN_BATCH {
                break;
            }
        }
    }
    report.problems = crate::problems::reconcile::run_once(state, &client).await?;
    Ok(report)
}

/// The background loop, until shutdown.
pub async fn run(state: AppState) {
    let token = state.shutdown_token().clone();
    let mut delay = FIRST_ROUND;
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = INTERVAL;
        match run_once(&state).await {
            Ok(report)
                if report.changed > 0 || report.missing > 0 || report.problems.changed > 0 =>
            {
                tracing::info!(?report, "reconciled requests with Overseerr");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "request reconciliation stopped early"),
        }
    }
}
