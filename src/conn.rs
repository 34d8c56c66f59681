//! Connection bookkeeping for the accept loop of `serve_app`: caps on open connections (in total
//! and per client address), the request-head and keep-alive idle timeouts, and throttled logging
//! of refusals and accept errors. It looks at sockets, never at requests: what a request may do
//! is the edge's business (`crate::http`).
//!
//! The timeouts are ours rather than hyper's `header_read_timeout`: in the hyper we lock (1.12),
//! that timer also runs while a kept-alive connection waits for its next request (`State::idle`
//! in `proto/h1/conn.rs` sets `notify_read` so the next head read starts it), so it would close
//! every idle connection after the header time and leave no room for a longer keep-alive. Here,
//! as in nginx (`client_header_timeout`, `keepalive_timeout`), the head time counts from the
//! connection's start or from the first byte of its next request, and the idle time from the
//! end of the last response.
//!
//! At the total cap, as nginx does when it runs out of connections, the longest-idle kept-alive
//! connection (one that has answered a request and has none in flight) is closed to make room
//! for the newcomer; only when none is idle is the newcomer refused. Without that, a few
//! addresses holding many cheap kept-alive connections would lock everyone else out.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use hyper::body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::config::ServerConfig;
use crate::net::{TrustedProxies, client_key};

/// The open-connection caps and the count of open connections, in total and per client address.
///
/// The per-address map is touched twice per connection (at accept and at close), the idle
/// registry when a kept-alive connection becomes idle or busy again (and at the total cap);
/// each is a plain mutex held for one map update, never across an await.
///
/// A connection closed to make room gives its place back at once, before its task has dropped
/// the socket; that task is woken at the same moment, so descriptors exceed the cap only by
/// the connections closing in that instant.
#[derive(Debug)]
pub struct ConnectionLimits {
    max_total: usize,
    max_per_ip: u32,
    /// Peers exempt from the per-address cap (reverse proxies carry every client).
    exempt: TrustedProxies,
    open: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, u32>>,
    /// Kept-alive connections with no request in flight, oldest first (by when they became
    /// idle): what the total cap may close to make room. Touched when a connection becomes
    /// idle or busy again and when it closes, each time for one map update, never across an
    /// await.
    idle: Mutex<IdleRegistry>,
}

/// The idle connections, keyed by a sequence number taken when each became idle (so the first
/// entry is the longest idle).
#[derive(Debug, Default)]
struct IdleRegistry {
    next: u64,
    by_age: BTreeMap<u64, Arc<Handle>>,
}

/// What the caps keep of one open connection: its place in the idle registry and the means to
/// close it.
#[derive(Debug, Default)]
struct Handle {
    /// Its key in [`IdleRegistry::by_age`] while it is there, else 0. Written only under that
    /// registry's lock.
    idle_key: AtomicU64,
    /// Set once its place under the total cap has been given back (by the close or by an
    /// eviction, whichever comes first).
    released: AtomicBool,
    /// Told when the total cap closes the connection to make room.
    close: tokio::sync::Notify,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `server.max_connections` are open.
    Total,
    /// `server.max_connections_per_ip` are open from this address.
    PerIp,
}

impl Refusal {
    /// The configuration key that refused it.
    pub fn key(self) -> &'static str {
        match self {
            Self::Total => "server.max_connections",
            Self::PerIp => "server.max_connections_per_ip",
        }
    }
}

impl ConnectionLimits {
    /// The caps of `server`.
    pub fn new(server: &ServerConfig) -> Arc<Self> {
        Arc::new(Self {
            max_total: usize::try_from(server.max_connections).unwrap_or(usize::MAX),
            max_per_ip: server.max_connections_per_ip,
            exempt: server.trusted_proxies.clone(),
            open: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            idle: Mutex::new(IdleRegistry::default()),
        })
    }

    /// Counts a new connection from `peer`, or says which cap it is over. At the total cap the
    /// longest-idle kept-alive connection is closed to make room; only when none is idle is the
    /// newcomer refused. The slot gives the place back when dropped (the connection's task owns
    /// it).
    ///
    /// Only the accept loop calls this, so the total cannot be raised between the check and the
    /// increment; closing connections only lower it.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<ConnectionSlot, Refusal> {
        // Counted as the rate limits count a client: an IPv4 address (a mapped one as itself),
        // an IPv6 host by its /64. Checked first, so that a newcomer over its own cap never
        // costs somebody else their idle connection.
        let ip = if self.exempt.contains(peer) {
            None
        } else {
            let key = client_key(peer);
            let mut per_ip = self.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
            let open = per_ip.entry(key).or_insert(0);
            if *open >= self.max_per_ip {
                return Err(Refusal::PerIp);
            }
            *open += 1;
            Some(key)
        };
        if self.open.load(Ordering::Acquire) >= self.max_total && !self.close_longest_idle() {
            if let Some(ip) = ip {
                self.forget_ip(ip);
            }
            return Err(Refusal::Total);
        }
        self.open.fetch_add(1, Ordering::AcqRel);
        Ok(ConnectionSlot {
            limits: Arc::clone(self),
            ip,
            handle: Arc::new(Handle::default()),
        })
    }

    /// Closes the connection idle the longest, giving its place back at once (its task drops
    /// the socket as soon as it runs); false when no connection is idle.
    fn close_longest_idle(&self) -> bool {
        let victim = {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            let Some((_, victim)) = idle.by_age.pop_first() else {
                return false;
            };
            victim.idle_key.store(0, Ordering::Relaxed);
            victim
        };
        self.release(&victim);
        victim.close.notify_one();
        tracing::debug!(
            "closing the longest-idle connection to make room at server.max_connections"
        );
        true
    }

    /// Gives `handle`'s place under the total cap back, once.
    fn release(&self, handle: &Handle) {
        if !handle.released.swap(true, Ordering::AcqRel) {
            self.open.fetch_sub(1, Ordering::AcqRel);
        }
    }

    fn forget_ip(&self, ip: IpAddr) {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(open) = per_ip.get_mut(&ip) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                per_ip.remove(&ip);
            }
        }
    }

    /// `handle`'s connection has answered its requests and waits for another: it may be closed
    /// to make room.
    fn became_idle(&self, handle: &Arc<Handle>) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if handle.idle_key.load(Ordering::Relaxed) != 0 || handle.released.load(Ordering::Acquire) {
            return;
        }
        idle.next += 1;
        let key = idle.next;
        idle.by_age.insert(key, Arc::clone(handle));
        handle.idle_key.store(key, Ordering::Relaxed);
    }

    /// `handle`'s connection is busy again, or closing: no longer one to close for room.
    fn not_idle(&self, handle: &Handle) {
        // Only this connection's own task sets a key, so a 0 read here is not stale.
        if handle.idle_key.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let key = handle.idle_key.swap(0, Ordering::Relaxed);
        if key != 0 {
            idle.by_age.remove(&key);
        }
    }

    /// Kept-alive connections idle now (those the total cap may close).
    pub fn idle(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_age
            .len()
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// One admitted connection's place under the caps; dropping it frees the place.
#[derive(Debug)]
pub struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    ip: Option<IpAddr>,
    handle: Arc<Handle>,
}

impl ConnectionSlot {
    /// The connection's [`Activity`], which tells the caps when it is idle (and so may be
    /// closed to make room at the total cap) and hears when it is to close.
    pub fn activity(&self) -> Arc<Activity> {
        Activity::with_hook(Some(IdleHook {
            limits: Arc::clone(&self.limits),
            handle: Arc::clone(&self.handle),
        }))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.limits.not_idle(&self.handle);
        if let Some(ip) = self.ip {
            self.limits.forget_ip(ip);
        }
        self.limits.release(&self.handle);
    }
}

/// How an [`Activity`] reaches the caps' idle registry.
#[derive(Debug)]
struct IdleHook {
    limits: Arc<ConnectionLimits>,
    handle: Arc<Handle>,
}

/// The process's open-file limit (the soft one, which `accept` runs into), where the system
/// tells it (`/proc/self/limits` on Linux).
pub fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    // "unlimited" parses to None: nothing to warn about.
    soft.parse().ok()
}

/// Logs a warning at start when `server.max_connections` (plus what the database, logs and
/// downloads hold) does not fit under the open-file limit: accepts would then fail with
/// "Too many open files" before the cap refuses anybody.
pub fn warn_if_over_file_limit(server: &ServerConfig) {
    /// Files the rest of the process may hold (database pool, WAL, logs, yt-dlp pipes).
    const OTHER_FILES: u64 = 128;
    if let Some(limit) = open_file_limit()
        && u64::from(server.max_connections) + OTHER_FILES > limit
    {
        tracing::warn!(
            max_connections = server.max_connections,
            open_file_limit = limit,
            "server.max_connections does not fit under the open-file limit; raise it \
             (LimitNOFILE= in the systemd unit, ulimit -n) or lower server.max_connections"
        );
    }
}

/// The per-connection time limits.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// For a whole request head.
    pub header: Duration,
    /// For a kept-alive connection between requests.
    pub idle: Duration,
}

impl Timeouts {
    /// The limits of `server`.
    pub fn new(server: &ServerConfig) -> Self {
        Self {
            header: Duration::from_secs(server.header_read_timeout_secs.max(1)),
            idle: Duration::from_secs(server.keepalive_idle_secs.max(1)),
        }
    }

    /// The longest the watchdog sleeps: the shorter limit, so a phase that starts between two
    /// looks is still caught on time.
    fn look_every(&self) -> Duration {
        self.header.min(self.idle)
    }
}

/// Why the watchdog closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// No whole request head within `server.header_read_timeout_secs`.
    Header,
    /// No request within `server.keepalive_idle_secs` of the last response.
    Idle,
}

/// Marks the phase word: waiting for a request head (else idle after a response).
const HEAD: u64 = 1 << 63;

/// What one connection is doing, shared by its socket wrapper ([`Watched`]), its service (one
/// [`InFlight`] per request) and its watchdog ([`drive`]). All three run in the connection's
/// own task, so relaxed atomics are enough; they only need to be `Sync` to be shared.
#[derive(Debug)]
pub struct Activity {
    origin: Instant,
    /// Requests whose response has not been sent to the end (a live-event stream stays here).
    in_flight: AtomicU32,
    /// [`HEAD`] or not, and when that phase began, in ms since `origin`.
    phase: AtomicU64,
    /// The last response has ended but may still sit in hyper's write buffer: the connection
    /// joins the idle registry when the socket has been flushed, so making room never cuts the
    /// tail of a response to a slow reader.
    idle_pending: AtomicBool,
    /// The caps' idle registry, for a connection under [`ConnectionLimits`].
    hook: Option<IdleHook>,
}

impl Activity {
    /// A new connection: waiting for its first request head from now.
    pub fn start() -> Arc<Self> {
        Self::with_hook(None)
    }

    fn with_hook(hook: Option<IdleHook>) -> Arc<Self> {
        Arc::new(Self {
            origin: Instant::now(),
            in_flight: AtomicU32::new(0),
            phase: AtomicU64::new(HEAD),
            idle_pending: AtomicBool::new(false),
            hook,
        })
    }

    /// The socket was flushed: after the last response, the connection is now idle.
    fn flushed(&self) {
        if self.idle_pending.load(Ordering::Relaxed)
            && self.idle_pending.swap(false, Ordering::Relaxed)
            && self.in_flight.load(Ordering::Relaxed) == 0
            && self.phase.load(Ordering::Relaxed) & HEAD == 0
            && let Some(hook) = &self.hook
        {
            hook.limits.became_idle(&hook.handle);
        }
    }

    fn not_idle(&self) {
        self.idle_pending.store(false, Ordering::Relaxed);
        if let Some(hook) = &self.hook {
            hook.limits.not_idle(&hook.handle);
        }
    }

    /// Resolves when the total cap closes this connection to make room for another.
    async fn closed_for_room(&self) {
        match &self.hook {
            Some(hook) => hook.handle.close.notified().await,
            None => std::future::pending().await,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX >> 1) & !HEAD
    }

    /// A request head was read and its handler called; the guard ends it when the response has
    /// been sent to the end (or dropped).
    pub fn request_started(self: &Arc<Self>) -> InFlight {
        if self.in_flight.fetch_add(1, Ordering::Relaxed) == 0 {
            // Usually already done by the head's first byte; not for a pipelined request
            // that was read with the one before it.
            self.not_idle();
        }
        InFlight(Arc::clone(self))
    }

    fn request_finished(&self) {
        if self.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.phase.store(self.now_ms(), Ordering::Relaxed);
            // Idle for the caps once the socket is flushed (`flushed`).
            self.idle_pending.store(true, Ordering::Relaxed);
        }
    }

    /// Bytes arrived: on an idle connection they begin the next request head, whose clock
    /// starts now. Bytes of a head already begun do not restart it (a client trickling one
    /// byte at a time gets no more time than one that sends nothing).
    fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.phase.load(Ordering::Relaxed) & HEAD == 0
        {
            self.phase.store(HEAD | self.now_ms(), Ordering::Relaxed);
            self.not_idle();
        }
    }

    /// Bytes went out while idle (the tail of a response the client reads slowly): the idle
    /// time counts from the last of them.
    fn bytes_written(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.phase.load(Ordering::Relaxed) & HEAD == 0
        {
            self.phase.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    /// When to look again, or why the connection is over its time.
    fn check(&self, now: Instant, timeouts: &Timeouts) -> Result<Instant, Expired> {
        let next_look = now + timeouts.look_every();
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Ok(next_look);
        }
        let phase = self.phase.load(Ordering::Relaxed);
        let since = self.origin + Duration::from_millis(phase & !HEAD);
        let (limit, expired) = if phase & HEAD == 0 {
            (timeouts.idle, Expired::Idle)
        } else {
            (timeouts.header, Expired::Header)
        };
        let deadline = since + limit;
        if now >= deadline {
            Err(expired)
        } else {
            Ok(deadline.min(next_look))
        }
    }
}

/// One request in flight on a connection; see [`Activity::request_started`].
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A response body that holds its request's [`InFlight`] until hyper has sent it to the end
/// (hyper drops a body once it is finished, or when the connection goes).
#[derive(Debug)]
pub struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl TrackedBody {
    pub fn new(inner: Body, in_flight: InFlight) -> Self {
        Self {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The response of `future` with its body tracked by `in_flight`.
pub async fn tracked_response<F>(
    future: F,
    in_flight: InFlight,
) -> Result<axum::response::Response<TrackedBody>, Infallible>
where
    F: Future<Output = Result<axum::response::Response, Infallible>>,
{
    let response = future.await?;
    Ok(response.map(|body| TrackedBody::new(body, in_flight)))
}

/// A socket that tells its [`Activity`] when bytes move.
#[derive(Debug)]
pub struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.bytes_read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.bytes_written();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.bytes_written();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        if matches!(polled, Poll::Ready(Ok(()))) {
            // hyper flushes after writing out all it buffered.
            this.activity.flushed();
        }
        polled
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Runs one connection to its end, closing it (by dropping it) when [`Activity`] says it is
/// over the head or idle time. The watchdog sleeps until the next deadline, so an idle
/// connection costs one timer, not a poll per byte.
pub async fn drive<C, E>(connection: C, activity: &Activity, timeouts: Timeouts)
where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut connection = std::pin::pin!(connection);
    let watchdog = tokio::time::sleep(timeouts.look_every());
    let mut watchdog = std::pin::pin!(watchdog);
    loop {
        tokio::select! {
            biased;
            ended = &mut connection => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = &mut watchdog => match activity.check(Instant::now(), &timeouts) {
                Ok(next) => watchdog.as_mut().reset(next),
                Err(expired) => {
                    tracing::debug!(?expired, "closing a connection over its time");
                    return;
                }
            },
            // The longest idle when the total cap was reached: dropped to make room.
            () = activity.closed_for_room() => return,
        }
    }
}

/// Lets a repeated log line through at most once per period, counting the ones held back.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    held_back: u64,
}

impl Throttle {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            held_back: 0,
        }
    }

    /// `Some(lines held back since the last one)` when a line may be logged now.
    pub fn ready(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|last| now < last + self.every) {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

/// The wait after a failed accept: doubles from `min` up to `max`, back to `min` after a
/// success. Out of file descriptors, an accept loop that retries at once only spins.
#[derive(Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            next: min,
        }
    }

    /// The wait now; the next one is twice as long (up to `max`).
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn server(max: u32, per_ip: u32, trusted: &[&str]) -> ServerConfig {
        ServerConfig {
            max_connections: max,
            max_connections_per_ip: per_ip,
            trusted_proxies: trusted
                .iter()
                .map(|s| s.parse().unwrap())
                .collect::<Vec<_>>()
                .into(),
            ..ServerConfig::default()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn caps_count_per_address_and_in_total_and_free_on_drop() {
        let limits = ConnectionLimits::new(&server(4, 2, &["10.0.0.1"]));
        let a1 = limits.admit(ip("192.0.2.1")).unwrap();
        // The same client over an IPv6 socket is the same address.
        let a2 = limits.admit(ip("::ffff:192.0.2.1")).unwrap();
        assert_eq!(limits.admit(ip("192.0.2.1")).unwrap_err(), Refusal::PerIp);
        // The trusted proxy has no per-address cap, but counts toward the total.
        let p1 = limits.admit(ip("10.0.0.1")).unwrap();
        let p2 = limits.admit(ip("::ffff:10.0.0.1")).unwrap();
        assert_eq!(limits.open(), 4);
        assert_eq!(limits.admit(ip("192.0.2.2")).unwrap_err(), Refusal::Total);
        drop(a1);
        assert_eq!(limits.open(), 3);
        let a3 = limits.admit(ip("192.0.2.1")).unwrap();
        drop((a2, a3, p1, p2));
        assert_eq!(limits.open(), 0);
        assert!(limits.per_ip.lock().unwrap().is_empty(), "no stale keys");

        // An IPv6 host is its /64, as for the rate limits.
        let v6 = limits.admit(ip("2001:db8::1")).unwrap();
        let v6b = limits.admit(ip("2001:db8::2")).unwrap();
        assert_eq!(
            limits.admit(ip("2001:db8::ffff")).unwrap_err(),
            Refusal::PerIp
        );
        let other = limits.admit(ip("2001:db8:0:1::1")).unwrap();
        drop((v6, v6b, other));
        assert_eq!(limits.open(), 0);
    }

    #[test]
    fn by_default_a_few_addresses_cannot_hold_every_connection() {
        let d = ServerConfig::default();
        assert_eq!(d.max_connections_per_ip, 32);
        assert!(
            d.max_connections / d.max_connections_per_ip >= 64,
            "{} addresses fill server.max_connections",
            d.max_connections / d.max_connections_per_ip
        );
    }

    /// One request answered and flushed on `activity`: the connection is idle.
    fn answer_one(activity: &Arc<Activity>) {
        activity.bytes_read();
        drop(activity.request_started());
        activity.flushed();
    }

    #[tokio::test]
    async fn at_the_total_cap_the_longest_idle_connection_makes_room() {
        let limits = ConnectionLimits::new(&server(3, 8, &[]));
        let slots: Vec<_> = (1..=3)
            .map(|n| limits.admit(ip(&format!("192.0.2.{n}"))).unwrap())
            .collect();
        let acts: Vec<_> = slots.iter().map(ConnectionSlot::activity).collect();
        // Nobody idle yet (all still on their first request head): the newcomer is refused.
        assert_eq!(limits.admit(ip("192.0.2.9")).unwrap_err(), Refusal::Total);
        answer_one(&acts[1]);
        answer_one(&acts[0]);
        // Answered but not yet flushed (a slow reader's tail): not idle.
        acts[2].bytes_read();
        drop(acts[2].request_started());
        assert_eq!(limits.idle(), 2);

        // The longest idle (1, idle before 0) makes room and is told to close.
        let newcomer = limits.admit(ip("192.0.2.9")).unwrap();
        assert_eq!(limits.idle(), 1);
        assert_eq!(limits.open(), 3, "the closing one no longer counts");
        let told = tokio::time::timeout(Duration::ZERO, acts[1].closed_for_room()).await;
        assert!(told.is_ok(), "the longest idle was told to close");
        let untold = tokio::time::timeout(Duration::ZERO, acts[0].closed_for_room()).await;
        assert!(untold.is_err(), "only it");
        // Its close does not give its place back twice, and it never becomes idle again.
        answer_one(&acts[1]);
        assert_eq!(limits.idle(), 1);
        let mut slots = slots;
        drop(slots.remove(1));
        assert_eq!(limits.open(), 3);

        // 0 starts a request (its first byte) and 2 is not flushed: nobody idle.
        acts[0].bytes_read();
        assert_eq!(limits.idle(), 0);
        assert_eq!(limits.admit(ip("192.0.2.10")).unwrap_err(), Refusal::Total);
        assert!(
            limits
                .per_ip
                .lock()
                .unwrap()
                .get(&ip("192.0.2.10"))
                .is_none(),
            "a refused newcomer holds no per-address place"
        );
        // A pipelined request read with the one before it: busy again without a new byte.
        acts[2].flushed();
        assert_eq!(limits.idle(), 1);
        let pipelined = acts[2].request_started();
        assert_eq!(limits.idle(), 0);
        drop(pipelined);
        acts[2].flushed();
        // A connection that closes leaves the registry.
        assert_eq!(limits.idle(), 1);
        drop(slots.remove(1));
        assert_eq!(limits.idle(), 0);
        drop((slots, newcomer));
        assert_eq!(limits.open(), 0);
        assert!(limits.per_ip.lock().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_head_clock_runs_from_the_start_and_from_a_first_byte_after_idle() {
        let timeouts = Timeouts {
            header: Duration::from_secs(10),
            idle: Duration::from_secs(60),
        };
        let a = Activity::start();
        let start = Instant::now();
        assert_eq!(a.check(start, &timeouts), Ok(start + timeouts.header));
        // Bytes of the first head do not extend it.
        tokio::time::advance(Duration::from_secs(5)).await;
        a.bytes_read();
        assert_eq!(
            a.check(Instant::now(), &timeouts),
            Ok(start + timeouts.header)
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(a.check(Instant::now(), &timeouts), Err(Expired::Header));

        // A request in flight is never over its time.
        let in_flight = a.request_started();
        tokio::time::advance(Duration::from_secs(600)).await;
        assert!(a.check(Instant::now(), &timeouts).is_ok());
        drop(in_flight);
        let idle_from = Instant::now();
        tokio::time::advance(Duration::from_secs(30)).await;
        // Looks again within the shorter limit, and the idle deadline holds.
        assert_eq!(
            a.check(Instant::now(), &timeouts),
            Ok(Instant::now() + timeouts.header)
        );
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(
            a.check(Instant::now(), &timeouts),
            Err(Expired::Idle),
            "idle since {idle_from:?}"
        );
        // A first byte after idle starts the head clock.
        let a = Activity::start();
        drop(a.request_started());
        tokio::time::advance(Duration::from_secs(20)).await;
        a.bytes_read();
        let head_from = Instant::now();
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(
            a.check(Instant::now(), &timeouts),
            Ok(head_from + timeouts.header)
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(a.check(Instant::now(), &timeouts), Err(Expired::Header));
    }

    #[tokio::test(start_paused = true)]
    async fn throttle_and_backoff() {
        let mut t = Throttle::new(Duration::from_secs(1));
        assert_eq!(t.ready(), Some(0));
        assert_eq!(t.ready(), None);
        assert_eq!(t.ready(), None);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(t.ready(), Some(2));

        let mut b = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
        let waits: Vec<u64> = (0..7).map(|_| b.next_wait().as_millis() as u64).collect();
        assert_eq!(waits, [50, 100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_wait(), Duration::from_millis(50));
    }
}
