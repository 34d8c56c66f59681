//! Rate limits (SPEC section 11).
//!
//! - Per client on every route and per signed-in user: token buckets in memory (governor).
//! - Failed sign-ins per client and Plex PIN creation per client: fixed windows in memory.
//! - Failed sign-ins per (username, client): fixed windows in the `rate_limits` table, so a
//!   restart does not hand an attacker a fresh set of guesses; and per username, a growing delay
//!   between one client's attempts (not a lock, so nobody elsewhere can lock the owner out). See
//!   [`login_failures`].
//!
//! A client is its IP address, an IPv6 client its /64 ([`crate::net::client_key`]).
//! A sign-in attempt is reserved (checked and counted in one step) before the password is hashed,
//! and refunded when the password was right, so parallel guesses cannot all pass the check.
//! Windows are read from the injected clock so tests move time instead of sleeping.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;

use axum::extract::ConnectInfo;
use axum::http::HeaderValue;
use axum::response::Response;
use governor::clock::DefaultClock;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use rusqlite::OptionalExtension;

use crate::config::LimitsConfig;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::net::client_key;
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

    /// Checks the per-client bucket (an IPv6 client's /64): `Err(seconds to wait)` when it is
    /// empty. Allocates nothing: a flood is refused on this path, so it must stay the cheapest
    /// answer the server gives.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), u64> {
        self.per_ip
            .check_key(&client_key(ip))
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

    /// Reserves a sign-in attempt from `ip`'s client: counts it as a failure now, before the
    /// password is hashed, or `Err(seconds to wait)` when the window's failures are used up.
    /// [`Limiters::login_ip_refund`] takes it back when the password was right.
    pub fn login_ip_reserve(&self, ip: IpAddr, now_ms: i64) -> Result<WindowState, u64> {
        self.login_per_ip.reserve(client_key(ip), now_ms)
    }

    /// Takes back a reservation of [`Limiters::login_ip_reserve`] (a right password, or an
    /// attempt refused before its password was checked).
    pub fn login_ip_refund(&self, ip: IpAddr, reserved: &WindowState) {
        self.login_per_ip.refund(client_key(ip), reserved);
    }

    /// Forgets every client's sign-in failures (after `medianest reset-admin-password`, whose
    /// admin must get in at once even from an address an attacker shares).
    ///
    /// This clears the attackers' per-address windows too, on purpose. The reset runs on the
    /// server, before the admin signs in again: it cannot know from which address the admin
    /// will come (it may be a shared NAT address that an attacker's failures at *other*
    /// usernames have used up), and the running server only learns that accounts changed (the
    /// auth epoch), not which. Clearing only the addresses that failed at the reset account
    /// would leave exactly that admin locked out. The cost is bounded: an attacker gets one
    /// fresh set of `login_failures_per_ip` guesses per address per reset (a rare, deliberate
    /// act of the operator), the per-(account, client) rows of every other account stay in the
    /// database, and the reset account's new password is random.
    pub fn clear_login_windows(&self) {
        self.login_per_ip.clear();
    }

    /// Counts a PIN creation from `ip`'s client; the state after it for the `X-RateLimit-*`
    /// headers, or the seconds to wait.
    pub fn pin_hit(&self, ip: IpAddr, now_ms: i64) -> Result<WindowState, u64> {
        self.pin_per_ip.reserve(client_key(ip), now_ms)
    }

    /// The per-username failure limit.
    pub fn login_failures_per_username(&self) -> u32 {
        self.config.login_failures_per_username
    }

    /// The cap of the per-username delay, in seconds.
    pub fn login_delay_max_secs(&self) -> u64 {
        self.config.login_delay_max_secs
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

    /// Counts one hit in `key`'s window, or `Err(seconds to wait)` when the limit is reached:
    /// the check and the count happen under one lock, so parallel callers cannot all pass.
    fn reserve(&self, key: K, now_ms: i64) -> Result<WindowState, u64> {
        let start = self.window_start(now_ms);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let entry = counts.entry(key).or_insert((start, 0));
        if entry.0 != start {
            *entry = (start, 0);
        }
        if entry.1 >= self.limit {
            return Err(seconds_until(start + self.window_ms, now_ms));
        }
        entry.1 += 1;
        Ok(WindowState {
            limit: self.limit,
            remaining: self.limit - entry.1,
            reset_secs: (start + self.window_ms) / 1000,
        })
    }

    /// Takes back one hit counted by [`FixedWindows::reserve`] (if its window is still current).
    fn refund(&self, key: K, reserved: &WindowState) {
        let start = reserved.reset_secs * 1000 - self.window_ms;
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = counts.get_mut(&key)
            && entry.0 == start
        {
            entry.1 = entry.1.saturating_sub(1);
        }
    }

    fn clear(&self) {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
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

/// Failed sign-ins at an account, persisted in `rate_limits`.
///
/// - Per (account, client), endpoint `login`, key `login:<account>|<client>`: `limit` failures
///   in the 15-minute window lock the account *for that client* until the window ends. Another
///   client (the owner) is not locked out by them.
/// - Per account from every client, endpoint `login_user`, key `login:<account>`: once `limit`
///   failures are counted in the window, a client must wait after *its own* last attempt at the
///   account before the next: 1 s, then 2, 4 ... (doubling per further failure from anyone) up to
///   `delay_max_secs`. The wait is measured on the client's row (`last_at`), so a client that has
///   not tried lately (the owner) gets its attempt at once however busy the attackers are: a
///   shared "last attempt" would let an attacker polling every few ms win every slot.
///
/// [`reserve`] checks both and counts the attempt in one write transaction before the password
/// is hashed; [`refund`] takes it back when the password was right.
pub mod login_failures {
    use super::*;
    use rusqlite::Connection;

    /// Rows per (account, client).
    pub const ENDPOINT: &str = "login";
    /// Rows per account (every client).
    pub const ACCOUNT_ENDPOINT: &str = "login_user";

    /// The per-account key; the per-client keys start with it and `|`.
    pub fn account_key(account: &str) -> String {
        format!("login:{}", account.to_lowercase())
    }

    fn client_row_key(account: &str, client: &str) -> String {
        format!("{}|{client}", account_key(account))
    }

    fn window_start(now_ms: i64) -> i64 {
        now_ms - now_ms.rem_euclid(LOGIN_WINDOW_MS)
    }

    /// The wait after the last failure once `failures` (at least `limit`) are counted.
    pub fn delay_secs(failures: u32, limit: u32, delay_max_secs: u64) -> u64 {
        let doublings = failures.saturating_sub(limit).min(32);
        (1u64 << doublings).min(delay_max_secs.max(1))
    }

    /// A counted attempt, for the `X-RateLimit-*` headers and [`refund`].
    #[derive(Debug, Clone)]
    pub struct Reservation {
        /// The (account, client) window after this attempt.
        pub window: WindowState,
        account: String,
        client: String,
        window_start: i64,
        at_ms: i64,
        /// This client's `last_at` at the account before the attempt.
        previous_client_last_at: Option<i64>,
        previous_account_last_at: Option<i64>,
    }

    /// Checks the account's limits for `client` and counts this attempt as a failure, in the
    /// caller's write transaction (so concurrent attempts are serialized); `Err(seconds to
    /// wait)` when the account is locked for this client or must wait out its delay.
    pub fn reserve(
        conn: &Connection,
        account: &str,
        client: &str,
        limit: u32,
        delay_max_secs: u64,
        now_ms: i64,
    ) -> AppResult<Result<Reservation, u64>> {
        let start = window_start(now_ms);
        let client_key = client_row_key(account, client);
        let account_key = account_key(account);
        let count = |key: &str, endpoint: &str| -> AppResult<Option<(i64, Option<i64>)>> {
            Ok(conn
                .prepare_cached(
                    "SELECT request_count, last_at FROM rate_limits
                     WHERE key = ?1 AND endpoint = ?2 AND window_start = ?3",
                )?
                .query_row(rusqlite::params![key, endpoint, start], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?)
        };
        let (client_count, client_last_at) = count(&client_key, ENDPOINT)?.unwrap_or((0, None));
        if client_count >= i64::from(limit) {
            return Ok(Err(seconds_until(start + LOGIN_WINDOW_MS, now_ms)));
        }
        let (account_count, account_last_at) =
            count(&account_key, ACCOUNT_ENDPOINT)?.unwrap_or((0, None));
        let account_count = u32::try_from(account_count).unwrap_or(u32::MAX);
        // The account's failures decide how long the wait is; it runs from this client's own last
        // attempt, so a client that has not tried lately (the owner) is never kept waiting by
        // the others' attempts.
        if account_count >= limit
            && let Some(last) = client_last_at
        {
            let delay_ms = i64::try_from(delay_secs(account_count, limit, delay_max_secs))
                .unwrap_or(i64::MAX)
                .saturating_mul(1000);
            let until = last.saturating_add(delay_ms);
            if now_ms < until {
                return Ok(Err(seconds_until(until, now_ms)));
            }
        }
        let mut upsert = conn.prepare_cached(
            "INSERT INTO rate_limits (key, endpoint, request_count, window_start, last_at)
             VALUES (?1, ?2, 1, ?3, ?4)
             ON CONFLICT (key, endpoint, window_start)
             DO UPDATE SET request_count = request_count + 1, last_at = ?4",
        )?;
        upsert.execute(rusqlite::params![client_key, ENDPOINT, start, now_ms])?;
        upsert.execute(rusqlite::params![
            account_key,
            ACCOUNT_ENDPOINT,
            start,
            now_ms
        ])?;
        let used = u32::try_from(client_count + 1).unwrap_or(u32::MAX);
        Ok(Ok(Reservation {
            window: WindowState {
                limit,
                remaining: limit.saturating_sub(used),
                reset_secs: (start + LOGIN_WINDOW_MS) / 1000,
            },
            account: account.to_owned(),
            client: client.to_owned(),
            window_start: start,
            at_ms: now_ms,
            previous_client_last_at: client_last_at,
            previous_account_last_at: account_last_at,
        }))
    }

    /// Takes this attempt off one row's count: `last_at` goes back to `previous_last_at`, unless
    /// a later attempt has moved it on.
    fn uncount(
        conn: &Connection,
        key: &str,
        endpoint: &str,
        reservation: &Reservation,
        previous_last_at: Option<i64>,
    ) -> AppResult<()> {
        conn.prepare_cached(
            "UPDATE rate_limits
             SET request_count = max(request_count - 1, 0),
                 last_at = CASE WHEN last_at = ?4 THEN ?5 ELSE last_at END
             WHERE key = ?1 AND endpoint = ?2 AND window_start = ?3",
        )?
        .execute(rusqlite::params![
            key,
            endpoint,
            reservation.window_start,
            reservation.at_ms,
            previous_last_at,
        ])?;
        Ok(())
    }

    /// Takes this attempt off the account's count.
    fn uncount_account(conn: &Connection, reservation: &Reservation) -> AppResult<()> {
        uncount(
            conn,
            &account_key(&reservation.account),
            ACCOUNT_ENDPOINT,
            reservation,
            reservation.previous_account_last_at,
        )
    }

    /// Takes back a reservation after a right password: the client's failures at the account
    /// are forgotten, and the attempt no longer counts towards the account's delay.
    pub fn refund(conn: &Connection, reservation: &Reservation) -> AppResult<()> {
        conn.prepare_cached("DELETE FROM rate_limits WHERE key = ?1 AND endpoint = ?2")?
            .execute(rusqlite::params![
                client_row_key(&reservation.account, &reservation.client),
                ENDPOINT
            ])?;
        uncount_account(conn, reservation)
    }

    /// Takes back a reservation whose password was never checked or whose result the caller
    /// never learnt (the gate was busy, the request timed out or was dropped): the attempt is
    /// taken off both counts, and the client's earlier failures stay.
    pub fn release(conn: &Connection, reservation: &Reservation) -> AppResult<()> {
        uncount(
            conn,
            &client_row_key(&reservation.account, &reservation.client),
            ENDPOINT,
            reservation,
            reservation.previous_client_last_at,
        )?;
        uncount_account(conn, reservation)
    }

    /// Forgets every failure counted against `account`, from every client (the break-glass
    /// `medianest reset-admin-password`); the number of rows deleted.
    pub fn clear_account(conn: &Connection, account: &str) -> AppResult<usize> {
        let key = account_key(account);
        let prefix = format!("{key}|");
        Ok(conn
            .prepare_cached(
                "DELETE FROM rate_limits
                 WHERE (endpoint = ?3 AND key = ?1)
                    OR (endpoint = ?4 AND key >= ?2 AND substr(key, 1, length(?2)) = ?2)",
            )?
            .execute(rusqlite::params![key, prefix, ACCOUNT_ENDPOINT, ENDPOINT])?)
    }
}

/// Paths the per-IP limit covers: the API, health and metrics. The dashboard's files (every other
/// path) are not limited: a page load fetches many at once, and each is a cached static answer.
fn is_limited_path(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/health") || path == "/metrics"
}

/// The front of the application on each connection: a request over its client's per-IP quota is
/// answered here, before routing, so that a refusal is the cheapest answer the server gives (no
/// routing, span, request context or serialized envelope; see `http::rate_limited`). Any other
/// request gets the socket peer as `ConnectInfo` and goes to the router.
#[derive(Clone)]
pub struct Gate {
    app: axum::Router,
    state: AppState,
    peer: std::net::SocketAddr,
}

impl Gate {
    pub fn new(app: axum::Router, state: AppState, peer: std::net::SocketAddr) -> Self {
        Self { app, state, peer }
    }

    /// `Some(seconds to wait)` when the caller's bucket is empty.
    fn refusal(&self, path: &str, headers: &axum::http::HeaderMap) -> Option<u64> {
        // Under `server.base_path` the API is `<base>/api/...`; a path outside it is limited as
        // it stands (it is answered 404, but costs a request all the same).
        let path = self.state.config().server.app_path(path).unwrap_or(path);
        if !is_limited_path(path) {
            return None;
        }
        let peer = ConnectInfo(self.peer);
        let ip = crate::http::client_ip(
            Some(&peer),
            headers,
            &self.state.config().server.trusted_proxies,
        )?;
        self.state.limiters().check_ip(ip).err()
    }
}

/// Where refused requests are counted in the request monitor (`/admin/performance`, `/metrics`).
pub const REFUSED_ROUTE: &str = "<rate-limited>";

impl<B> tower::Service<axum::http::Request<B>> for Gate
where
    axum::Router: tower::Service<
            axum::http::Request<B>,
            Response = Response,
            Error = std::convert::Infallible,
        >,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = futures_util::future::Either<
        std::future::Ready<Result<Response, std::convert::Infallible>>,
        <axum::Router as tower::Service<axum::http::Request<B>>>::Future,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        tower::Service::<axum::http::Request<B>>::poll_ready(&mut self.app, cx)
    }

    fn call(&mut self, mut req: axum::http::Request<B>) -> Self::Future {
        let started = std::time::Instant::now();
        if let Some(wait) = self.refusal(req.uri().path(), req.headers()) {
            // The app's own path (under `server.base_path`), which the headers are chosen by.
            let path = req.uri().path();
            let path = self.state.config().server.app_path(path).unwrap_or(path);
            let response = crate::http::rate_limited(&self.state, req.headers(), path, wait);
            self.state.monitor().record(
                REFUSED_ROUTE,
                req.method().as_str(),
                response.status().as_u16(),
                started.elapsed(),
                self.state.clock().now_ms(),
            );
            return futures_util::future::Either::Left(std::future::ready(Ok(response)));
        }
        req.extensions_mut().insert(ConnectInfo(self.peer));
        futures_util::future::Either::Right(self.app.call(req))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// One integer the query selects.
    fn scalar(conn: &rusqlite::Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn fixed_windows_reserve_refund_and_reset() {
        let w = FixedWindows::new(1000, 2);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(w.reserve(ip, 10_100).unwrap().remaining, 1);
        let second = w.reserve(ip, 10_200).unwrap();
        assert_eq!(second.remaining, 0);
        assert_eq!(w.reserve(ip, 10_500), Err(1), "the limit is reached");
        w.refund(ip, &second);
        assert_eq!(w.reserve(ip, 10_600).unwrap().remaining, 0, "refunded");
        assert_eq!(w.reserve(ip, 11_000).unwrap().remaining, 1, "next window");
        // A refund from an ended window does not touch the current one.
        w.refund(ip, &second);
        assert_eq!(w.reserve(ip, 11_100).unwrap().remaining, 0);
        w.shrink(50_000);
        assert!(w.counts.lock().unwrap().is_empty());
    }

    fn migrated() -> rusqlite::Connection {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::db::migrations::apply(&mut conn).unwrap();
        conn
    }

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn failures_lock_an_account_for_one_client_and_persist_in_the_table() {
        let conn = migrated();
        for _ in 0..5 {
            login_failures::reserve(&conn, "Ann", "192.0.2.1", 5, 30, NOW)
                .unwrap()
                .unwrap();
        }
        let wait = login_failures::reserve(&conn, "ANN", "192.0.2.1", 5, 30, NOW)
            .unwrap()
            .unwrap_err();
        assert!(wait > 0 && wait <= 15 * 60);
        let stored: i64 = scalar(
            &conn,
            "SELECT request_count FROM rate_limits WHERE key = 'login:ann|192.0.2.1'",
        );
        assert_eq!(stored, 5, "the refused attempt was not counted");
        // The window ends.
        let next = NOW + LOGIN_WINDOW_MS;
        assert!(
            login_failures::reserve(&conn, "ann", "192.0.2.1", 5, 30, next)
                .unwrap()
                .is_ok()
        );
        // A right password forgets the client's failures.
        let r = login_failures::reserve(&conn, "ann", "192.0.2.9", 5, 30, next + 60_000)
            .unwrap()
            .unwrap();
        login_failures::refund(&conn, &r).unwrap();
        let rows: i64 = scalar(
            &conn,
            "SELECT count(*) FROM rate_limits WHERE key = 'login:ann|192.0.2.9'",
        );
        assert_eq!(rows, 0);
    }

    #[test]
    fn failures_from_many_clients_only_slow_each_client_down() {
        let conn = migrated();
        let client = |i: u32| format!("198.51.100.{i}");
        let reserve = |i: u32, at: i64| {
            login_failures::reserve(&conn, "admin", &client(i), 5, 30, at).unwrap()
        };
        // Five failures from five clients: no delay yet.
        for i in 0..5 {
            reserve(i, NOW).unwrap();
        }
        // One client trying again waits 1 s after its own last attempt, then 2, 4 ... capped at
        // 30 s (the account's count decides the length).
        let mut at = NOW;
        for expected in [1u64, 2, 4] {
            let wait = reserve(0, at).unwrap_err();
            assert_eq!(wait, expected);
            let ms = i64::try_from(expected).unwrap() * 1000;
            assert_eq!(reserve(0, at + ms - 1).unwrap_err(), 1, "not yet");
            at += ms;
            reserve(0, at).unwrap();
        }
        // Attackers that keep failing do not hold back a client that has not tried: each new
        // client's first attempt is at once, whoever failed a millisecond before.
        for i in 10..20 {
            reserve(i, at).unwrap();
        }
        assert_eq!(reserve(10, at).unwrap_err(), 30, "capped");
        let owner = reserve(99, at).unwrap();
        login_failures::refund(&conn, &owner).unwrap();
        let after_refund = reserve(99, at).unwrap();
        // A released attempt (never checked) leaves the client as it was before it.
        login_failures::release(&conn, &after_refund).unwrap();
        reserve(99, at).unwrap();
        assert_eq!(reserve(99, at).unwrap_err(), 30);
        assert_eq!(login_failures::delay_secs(5, 5, 30), 1);
        assert_eq!(login_failures::delay_secs(500, 5, 30), 30);
    }

    #[test]
    fn a_release_keeps_the_clients_earlier_failures() {
        let conn = migrated();
        for _ in 0..4 {
            login_failures::reserve(&conn, "admin", "192.0.2.1", 5, 30, NOW)
                .unwrap()
                .unwrap();
        }
        let fifth = login_failures::reserve(&conn, "admin", "192.0.2.1", 5, 30, NOW + 10)
            .unwrap()
            .unwrap();
        login_failures::release(&conn, &fifth).unwrap();
        let row = |key: &str| -> (i64, Option<i64>) {
            conn.query_row(
                "SELECT request_count, last_at FROM rate_limits WHERE key = ?1",
                [key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
        };
        assert_eq!(row("login:admin|192.0.2.1"), (4, Some(NOW)));
        assert_eq!(row("login:admin"), (4, Some(NOW)));
    }

    #[test]
    fn clearing_an_account_forgets_every_client() {
        let conn = migrated();
        for _ in 0..5 {
            login_failures::reserve(&conn, "admin", "192.0.2.1", 5, 30, NOW)
                .unwrap()
                .unwrap();
        }
        // Each after the growing delay.
        for (client, at) in [
            ("192.0.2.2", NOW + 60_000),
            ("2001:db8::/64", NOW + 120_000),
        ] {
            login_failures::reserve(&conn, "admin", client, 5, 30, at)
                .unwrap()
                .unwrap();
        }
        login_failures::reserve(&conn, "administrator", "192.0.2.1", 5, 30, NOW)
            .unwrap()
            .unwrap();
        assert_eq!(login_failures::clear_account(&conn, "Admin").unwrap(), 4);
        login_failures::reserve(&conn, "admin", "192.0.2.1", 5, 30, NOW)
            .unwrap()
            .unwrap();
        let others: i64 = scalar(
            &conn,
            "SELECT count(*) FROM rate_limits WHERE key LIKE 'login:administrator%'",
        );
        assert_eq!(others, 2, "another account's rows stay");
    }

    #[test]
    fn an_ipv6_client_is_limited_by_its_64() {
        let l = Limiters::new(&LimitsConfig {
            login_failures_per_ip: 2,
            ..LimitsConfig::default()
        });
        let a: IpAddr = "2001:db8:5:6::1".parse().unwrap();
        let b: IpAddr = "2001:db8:5:6:ffff:1:2:3".parse().unwrap();
        l.login_ip_reserve(a, NOW).unwrap();
        l.login_ip_reserve(b, NOW).unwrap();
        assert!(l.login_ip_reserve(a, NOW).is_err(), "one /64, one window");
        l.login_ip_reserve("2001:db8:5:7::1".parse().unwrap(), NOW)
            .unwrap();
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
