//! Rate limits (SPEC section 11).
//!
//! - Per client IP on every route and per signed-in user: token buckets in memory (governor).
//! - Failed sign-ins per IP and Plex PIN creation per IP: fixed windows in memory.
//! - Failed sign-ins per username: fixed windows in the `rate_limits` table, so a restart does
//!   not hand an attacker a fresh set of guesses.
//!
//! Windows are read from the injected clock so tests move time instead of sleeping.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderValue;
use axum::response::Response;
use governor::clock::DefaultClock;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use rusqlite::OptionalExtension;

use crate::config::LimitsConfig;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::state::AppState;

/// The sign-in failure window.
pub const LOGIN_WINDOW_MS: i64 = 15 * 60 * 1000;
/// The PIN creation window.
pub const PIN_WINDOW_MS: i64 = 15 * 60 * 1000;

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>;

/// The in-memory limiters.
pub struct Limiters {
    per_ip: Keyed<IpAddr>,
    /// Keyed by [`user_key`], so a check allocates nothing.
    per_user: Keyed<u128>,
    login_per_ip: FixedWindows<IpAddr>,
    pin_per_ip: FixedWindows<IpAddr>,
    config: LimitsConfig,
}

impl std::fmt::Debug for Limiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiters").finish_non_exhaustive()
    }
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl Limiters {
    pub fn new(config: &LimitsConfig) -> Self {
        let ip_quota = Quota::per_second(nonzero(config.ip_per_second))
            .allow_burst(nonzero(config.ip_burst.max(config.ip_per_second)));
        let user_quota = Quota::per_minute(nonzero(config.user_per_minute));
        Self {
            per_ip: RateLimiter::keyed(ip_quota),
            per_user: RateLimiter::keyed(user_quota),
            login_per_ip: FixedWindows::new(LOGIN_WINDOW_MS, config.login_failures_per_ip),
            pin_per_ip: FixedWindows::new(PIN_WINDOW_MS, config.pin_per_ip),
            config: config.clone(),
        }
    }

    /// Checks the per-IP bucket: `Err(seconds to wait)` when it is empty. Allocates nothing: a
    /// flood is refused on this path, so it must stay the cheapest answer the server gives.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), u64> {
        self.per_ip
            .check_key(&ip)
            .map_err(|not_until| wait_secs(&not_until, self.per_ip.clock()))
    }

    /// Checks the per-user bucket.
    pub fn check_user(&self, user_id: &str) -> AppResult<()> {
        self.per_user
            .check_key(&user_key(user_id))
            .map_err(|not_until| {
                AppError::new(ErrorCode::RateLimited)
                    .with_retry_after(wait_secs(&not_until, self.per_user.clock()))
            })
    }

    /// Failed sign-ins from `ip` in the current window; `Err` once the limit is reached.
    pub fn login_ip_allowed(&self, ip: IpAddr, now_ms: i64) -> Result<(), u64> {
        self.login_per_ip.check(ip, now_ms)
    }

    /// Counts a failed sign-in from `ip`.
    pub fn login_ip_failed(&self, ip: IpAddr, now_ms: i64) {
        self.login_per_ip.hit(ip, now_ms);
    }

    /// Counts a PIN creation from `ip`; the state after it for the `X-RateLimit-*` headers, or
    /// the seconds to wait.
    pub fn pin_hit(&self, ip: IpAddr, now_ms: i64) -> Result<WindowState, u64> {
        self.pin_per_ip.check(ip, now_ms)?;
        Ok(self.pin_per_ip.hit(ip, now_ms))
    }

    /// The per-username failure limit.
    pub fn login_failures_per_username(&self) -> u32 {
        self.config.login_failures_per_username
    }

    /// Drops idle keys (called by housekeeping).
    pub fn shrink(&self, now_ms: i64) {
        self.per_ip.retain_recent();
        self.per_user.retain_recent();
        self.login_per_ip.shrink(now_ms);
        self.pin_per_ip.shrink(now_ms);
    }
}

/// A user's key in the per-user bucket: the id's UUID bits (every user id is a UUID), else a
/// 64-bit hash of the text.
fn user_key(user_id: &str) -> u128 {
    uuid::Uuid::try_parse(user_id).map_or_else(
        |_| {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            user_id.hash(&mut hasher);
            u128::from(hasher.finish())
        },
        |id| id.as_u128(),
    )
}

/// The whole seconds (at least 1) until a refused bucket lets a request through, read from the
/// limiter's own clock. (`DefaultClock::default()` here would calibrate a new clock on every
/// refusal: half of a flood's CPU time went there.)
fn wait_secs(
    not_until: &governor::NotUntil<<DefaultClock as governor::clock::Clock>::Instant>,
    clock: &DefaultClock,
) -> u64 {
    let wait = not_until.wait_time_from(governor::clock::Clock::now(clock));
    wait.as_secs().max(1)
}

/// Where a fixed window stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowState {
    pub limit: u32,
    pub remaining: u32,
    /// Unix seconds when the window ends.
    pub reset_secs: i64,
}

impl WindowState {
    /// Adds `X-RateLimit-Limit`, `-Remaining` and `-Reset` to a response.
    pub fn apply(&self, response: &mut Response) {
        let headers = response.headers_mut();
        headers.insert("x-ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("x-ratelimit-reset", HeaderValue::from(self.reset_secs));
    }
}

/// Fixed windows counted in memory.
struct FixedWindows<K> {
    window_ms: i64,
    limit: u32,
    counts: Mutex<HashMap<K, (i64, u32)>>,
}

impl<K: std::hash::Hash + Eq + Copy> FixedWindows<K> {
    fn new(window_ms: i64, limit: u32) -> Self {
        Self {
            window_ms,
            limit: limit.max(1),
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn window_start(&self, now_ms: i64) -> i64 {
        now_ms - now_ms.rem_euclid(self.window_ms)
    }

    /// `Err(seconds to wait)` when the limit is reached.
    fn check(&self, key: K, now_ms: i64) -> Result<(), u64> {
        let start = self.window_start(now_ms);
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        match counts.get(&key) {
            Some((s, n)) if *s == start && *n >= self.limit => {
                Err(seconds_until(start + self.window_ms, now_ms))
            }
            _ => Ok(()),
        }
    }

    fn hit(&self, key: K, now_ms: i64) -> WindowState {
        let start = self.window_start(now_ms);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let entry = counts.entry(key).or_insert((start, 0));
        if entry.0 != start {
            *entry = (start, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        WindowState {
            limit: self.limit,
            remaining: self.limit.saturating_sub(entry.1),
            reset_secs: (start + self.window_ms) / 1000,
        }
    }

    fn shrink(&self, now_ms: i64) {
        let start = self.window_start(now_ms);
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, (s, _)| *s == start);
    }
}

fn seconds_until(end_ms: i64, now_ms: i64) -> u64 {
    u64::try_from((end_ms - now_ms + 999) / 1000)
        .unwrap_or(1)
        .max(1)
}

/// Failed sign-ins for a username, persisted in `rate_limits`.
pub mod login_failures {
    use super::*;
    use rusqlite::Connection;

    const ENDPOINT: &str = "login";

    fn key(username: &str) -> String {
        format!("login:{}", username.to_lowercase())
    }

    fn window_start(now_ms: i64) -> i64 {
        now_ms - now_ms.rem_euclid(LOGIN_WINDOW_MS)
    }

    /// Where the account's failure window stands; `Err(seconds to wait)` when `limit` failures
    /// are already counted in it.
    pub fn check(
        conn: &Connection,
        username: &str,
        limit: u32,
        now_ms: i64,
    ) -> AppResult<Result<WindowState, u64>> {
        let start = window_start(now_ms);
        let count: i64 = conn
            .prepare_cached(
                "SELECT request_count FROM rate_limits
                 WHERE key = ?1 AND endpoint = ?2 AND window_start = ?3",
            )?
            .query_row(rusqlite::params![key(username), ENDPOINT, start], |r| {
                r.get(0)
            })
            .optional()?
            .unwrap_or(0);
        if count >= i64::from(limit) {
            return Ok(Err(seconds_until(start + LOGIN_WINDOW_MS, now_ms)));
        }
        Ok(Ok(WindowState {
            limit,
            remaining: limit.saturating_sub(u32::try_from(count).unwrap_or(u32::MAX)),
            reset_secs: (start + LOGIN_WINDOW_MS) / 1000,
        }))
    }

    /// Counts one failure.
    pub fn record(conn: &Connection, username: &str, now_ms: i64) -> AppResult<()> {
        conn.prepare_cached(
            "INSERT INTO rate_limits (key, endpoint, request_count, window_start)
             VALUES (?1, ?2, 1, ?3)
             ON CONFLICT (key, endpoint, window_start)
             DO UPDATE SET request_count = request_count + 1",
        )?
        .execute(rusqlite::params![
            key(username),
            ENDPOINT,
            window_start(now_ms)
        ])?;
        Ok(())
    }

    /// Forgets the failures after a successful sign-in.
    pub fn clear(conn: &Connection, username: &str) -> AppResult<()> {
        conn.prepare_cached("DELETE FROM rate_limits WHERE key = ?1 AND endpoint = ?2")?
            .execute(rusqlite::params![key(username), ENDPOINT])?;
        Ok(())
    }
}

/// The per-IP limit of every route, checked by the edge before it spends anything on the request:
/// `Some(seconds to wait)` when the caller's bucket is empty. Requests without a known peer
/// (router tests) pass.
pub fn ip_refusal(state: &AppState, req: &Request) -> Option<u64> {
    let peer = req.extensions().get::<ConnectInfo<std::net::SocketAddr>>();
    let ip = crate::http::client_ip(peer, req.headers(), &state.config().server.trusted_proxies)?;
    state.limiters().check_ip(ip).err()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fixed_windows_count_and_reset() {
        let w = FixedWindows::new(1000, 2);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(w.check(ip, 10_100).is_ok());
        assert_eq!(w.hit(ip, 10_100).remaining, 1);
        assert_eq!(w.hit(ip, 10_200).remaining, 0);
        assert_eq!(w.check(ip, 10_500), Err(1));
        assert!(w.check(ip, 11_000).is_ok(), "next window");
        assert_eq!(w.hit(ip, 11_000).remaining, 1);
        w.shrink(50_000);
        assert!(w.counts.lock().unwrap().is_empty());
    }

    #[test]
    fn username_failures_persist_in_the_table() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::db::migrations::apply(&mut conn).unwrap();
        let now = 1_800_000_000_000;
        for _ in 0..5 {
            assert!(login_failures::check(&conn, "Ann", 5, now).unwrap().is_ok());
            login_failures::record(&conn, "ann", now).unwrap();
        }
        let wait = login_failures::check(&conn, "ANN", 5, now)
            .unwrap()
            .unwrap_err();
        assert!(wait > 0 && wait <= 15 * 60);
        assert!(
            login_failures::check(&conn, "ann", 5, now + LOGIN_WINDOW_MS)
                .unwrap()
                .is_ok()
        );
        login_failures::clear(&conn, "ann").unwrap();
        assert!(login_failures::check(&conn, "ann", 5, now).unwrap().is_ok());
    }

    #[test]
    fn ip_bucket_limits_bursts() {
        let l = Limiters::new(&LimitsConfig {
            ip_per_second: 1,
            ip_burst: 3,
            ..LimitsConfig::default()
        });
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        for _ in 0..3 {
            l.check_ip(ip).unwrap();
        }
        let wait = l.check_ip(ip).unwrap_err();
        assert!((1..=2).contains(&wait), "{wait}");
        l.check_ip("10.0.0.10".parse().unwrap()).unwrap();
    }
}
