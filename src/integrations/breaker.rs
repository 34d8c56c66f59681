//! The circuit breaker of one upstream (SPEC section 8).
//!
//! Closed: calls go through; 5 consecutive failures (timeouts, connection errors, 5xx, unusable
//! answers; a 4xx is an answer, not a failure) open it. Open: calls fail at once with 503
//! `SERVICE_UNAVAILABLE` and `retryAfter`, for 30 s at first. Half-open: when the open time is
//! over, one probe goes through while the others still fail fast; success closes the breaker,
//! failure opens it again for twice as long, up to 5 minutes.
//!
//! Time comes from the injected clock, so tests move it by hand.

use std::sync::Mutex;

use serde::Serialize;

use crate::clock::SharedClock;
use crate::time::rfc3339;

/// Consecutive failures that open the breaker.
pub const FAILURE_THRESHOLD: u32 = 5;
/// The first open period.
pub const BASE_OPEN_MS: i64 = 30_000;
/// The longest open period.
pub const MAX_OPEN_MS: i64 = 300_000;

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

/// What a call's outcome means to the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The upstream answered (2xx-4xx).
    Success,
    /// The upstream failed (timeout, connection, 5xx, garbage).
    Failure,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    consecutive_failures: u32,
    opened_at: Option<i64>,
    open_ms: i64,
    probe_in_flight: bool,
}

/// One upstream's breaker.
pub struct Breaker {
    name: &'static str,
    clock: SharedClock,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("name", &self.name)
            .field("inner", &*self.lock())
            .finish()
    }
}

/// Leave to call the upstream; a probe reports back even when its caller gives up.
#[derive(Debug)]
#[must_use = "report the outcome with Breaker::record"]
pub struct Admission<'a> {
    breaker: &'a Breaker,
    probe: bool,
    recorded: bool,
}

/// The breaker as `GET /admin/integrations` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BreakerSnapshot {
    pub service: &'static str,
    pub state: BreakerState,
    pub consecutive_failures: u32,
    pub opened_at: Option<String>,
    pub retry_at: Option<String>,
}

impl Breaker {
    pub fn new(name: &'static str, clock: SharedClock) -> Self {
        Self {
            name,
            clock,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                consecutive_failures: 0,
                opened_at: None,
                open_ms: BASE_OPEN_MS,
                probe_in_flight: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks to make a call: `Err(seconds)` while open (or while the half-open probe is out).
    pub fn admit(&self) -> Result<Admission<'_>, u64> {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        match inner.state {
            BreakerState::Closed => Ok(Admission {
                breaker: self,
                probe: false,
                recorded: false,
            }),
            BreakerState::Open => {
                let retry_at = inner.opened_at.unwrap_or(now) + inner.open_ms;
                if now < retry_at {
                    return Err(seconds_until(retry_at, now));
                }
                inner.state = BreakerState::HalfOpen;
                inner.probe_in_flight = true;
                Ok(Admission {
                    breaker: self,
                    probe: true,
                    recorded: false,
                })
            }
            BreakerState::HalfOpen if inner.probe_in_flight => Err(1),
            BreakerState::HalfOpen => {
                inner.probe_in_flight = true;
                Ok(Admission {
                    breaker: self,
                    probe: true,
                    recorded: false,
                })
            }
        }
    }

    /// Records a call's outcome.
    pub fn record(&self, mut admission: Admission<'_>, outcome: Outcome) {
        admission.recorded = true;
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        if admission.probe {
            inner.probe_in_flight = false;
        }
        match outcome {
            Outcome::Success => {
                if inner.state != BreakerState::Closed {
                    tracing::info!(
                        service = self.name,
                        "circuit breaker closed: the service answers again"
                    );
                }
                inner.state = BreakerState::Closed;
                inner.consecutive_failures = 0;
                inner.opened_at = None;
                inner.open_ms = BASE_OPEN_MS;
            }
            Outcome::Failure => {
                inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
                match inner.state {
                    BreakerState::HalfOpen if admission.probe => {
                        inner.open_ms = (inner.open_ms * 2).min(MAX_OPEN_MS);
                        inner.state = BreakerState::Open;
                        inner.opened_at = Some(now);
                        tracing::warn!(
                            service = self.name,
                            open_secs = inner.open_ms / 1000,
                            "circuit breaker re-opened: the probe failed"
                        );
                    }
                    BreakerState::Closed if inner.consecutive_failures >= FAILURE_THRESHOLD => {
                        inner.state = BreakerState::Open;
                        inner.opened_at = Some(now);
                        inner.open_ms = BASE_OPEN_MS;
                        tracing::warn!(
                            service = self.name,
                            failures = inner.consecutive_failures,
                            "circuit breaker opened"
                        );
                    }
                    _ => {}
                }
            }
        }
    }

    /// Closes the breaker (admin reset).
    pub fn reset(&self) {
        let mut inner = self.lock();
        inner.state = BreakerState::Closed;
        inner.consecutive_failures = 0;
        inner.opened_at = None;
        inner.open_ms = BASE_OPEN_MS;
        inner.probe_in_flight = false;
    }

    /// The current state, as seen now (an open breaker whose time is up shows half-open).
    pub fn snapshot(&self) -> BreakerSnapshot {
        let now = self.clock.now_ms();
        let inner = self.lock();
        let retry_at = inner.opened_at.map(|t| t + inner.open_ms);
        let state = match (inner.state, retry_at) {
            (BreakerState::Open, Some(at)) if now >= at => BreakerState::HalfOpen,
            (s, _) => s,
        };
        BreakerSnapshot {
            service: self.name,
            state,
            consecutive_failures: inner.consecutive_failures,
            opened_at: inner.opened_at.map(rfc3339),
            retry_at: retry_at
                .filter(|_| state != BreakerState::Closed)
                .map(rfc3339),
        }
    }

    /// The state alone.
    pub fn state(&self) -> BreakerState {
        self.snapshot().state
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        // A probe whose caller went away (cancelled request) must not leave the breaker stuck
        // half-open with a probe that will never report.
        if self.probe && !self.recorded {
            self.breaker.lock().probe_in_flight = false;
        }
    }
}

fn seconds_until(at_ms: i64, now_ms: i64) -> u64 {
    u64::try_from((at_ms - now_ms + 999) / 1000)
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    fn breaker() -> (Breaker, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(1_000_000));
        (Breaker::new("Overseerr", clock.clone()), clock)
    }

    fn fail(b: &Breaker) {
        let a = b.admit().unwrap();
        b.record(a, Outcome::Failure);
    }

    #[test]
    fn opens_after_five_consecutive_failures_only() {
        let (b, _) = breaker();
        for _ in 0..4 {
            fail(&b);
        }
        let a = b.admit().unwrap();
        b.record(a, Outcome::Success);
        for _ in 0..4 {
            fail(&b);
        }
        assert_eq!(
            b.state(),
            BreakerState::Closed,
            "a success resets the count"
        );
        fail(&b);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.admit().unwrap_err(), 30);
        assert_eq!(b.snapshot().consecutive_failures, 5);
    }

    #[test]
    fn half_open_lets_one_probe_through_and_success_closes() {
        let (b, clock) = breaker();
        for _ in 0..5 {
            fail(&b);
        }
        clock.advance(29_000);
        assert_eq!(b.admit().unwrap_err(), 1);
        clock.advance(1_000);
        assert_eq!(b.snapshot().state, BreakerState::HalfOpen);
        let probe = b.admit().unwrap();
        assert!(b.admit().is_err(), "only one probe at a time");
        b.record(probe, Outcome::Success);
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.admit().is_ok());
        assert_eq!(b.snapshot().retry_at, None);
    }

    #[test]
    fn a_failed_probe_doubles_the_open_time_up_to_five_minutes() {
        let (b, clock) = breaker();
        for _ in 0..5 {
            fail(&b);
        }
        let mut expected: u64 = 30;
        for _ in 0..6 {
            clock.advance(expected as i64 * 1000);
            let probe = b.admit().unwrap();
            b.record(probe, Outcome::Failure);
            expected = (expected * 2).min(300);
            assert_eq!(b.admit().unwrap_err(), expected);
        }
        assert_eq!(expected, 300);
    }

    #[test]
    fn a_dropped_probe_frees_the_half_open_slot() {
        let (b, clock) = breaker();
        for _ in 0..5 {
            fail(&b);
        }
        clock.advance(30_000);
        drop(b.admit().unwrap());
        assert!(b.admit().is_ok(), "the next caller may probe");
    }

    #[test]
    fn reset_closes() {
        let (b, _) = breaker();
        for _ in 0..5 {
            fail(&b);
        }
        b.reset();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.admit().is_ok());
    }
}
