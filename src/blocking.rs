//! Gated blocking work: the one way async code runs something that blocks (SQLite, password
//! hashing, upstream HTTP). A permit is taken first, so a flood of requests queues on the
//! semaphore instead of filling the runtime's blocking pool; the current tracing span goes along;
//! a panic inside is re-raised in the caller, where the request's panic handler answers 500.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::error::{AppError, AppResult};

/// Runs `f` on the blocking pool once a permit of `gate` is free.
pub async fn run_gated<F, T>(gate: &Arc<Semaphore>, f: F) -> AppResult<T>
where
    F: FnOnce() -> AppResult<T> + Send + 'static,
    T: Send + 'static,
{
    let permit = gate
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| AppError::internal("blocking gate closed"))?;
    run_with_permit(permit, f).await
}

/// Runs `f` on the blocking pool holding `permit` (taken from a gate by the caller, e.g. with a
/// bounded wait).
pub async fn run_with_permit<F, T>(permit: tokio::sync::OwnedSemaphorePermit, f: F) -> AppResult<T>
where
    F: FnOnce() -> AppResult<T> + Send + 'static,
    T: Send + 'static,
{
    let span = tracing::Span::current();
    let handle = tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let _permit = permit;
        f()
    });
    match handle.await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(AppError::internal(format!("blocking task: {e}"))),
    }
}
