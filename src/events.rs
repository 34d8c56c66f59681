//! Live events: the in-process [`EventBus`] and `GET /events`, which streams the events a caller
//! may see as Server-Sent Events (SPEC section 6, "Notifications and live events").
//!
//! Producers (the health-check manager, request and download updates, notifications) call
//! [`EventBus::publish`], which never blocks and never fails. Underneath is one
//! `tokio::sync::broadcast` channel: each connected client reads it at its own pace, and one that
//! falls more than the channel's capacity behind skips ahead (it is sent `event: lagged` so the
//! dashboard reloads) instead of slowing anybody down. This module owns no table and must not do
//! database work per event: a stream's only database access is the session re-check every
//! keep-alive, which the session cache usually answers.
//!
//! Each stream holds a socket for as long as it is open, so a user and a client address may hold
//! only so many at once (`limits.events_per_user`, `limits.events_per_ip`); the stream owns its
//! place ([`StreamSlot`]) and gives it back when it ends, however it ends.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::auth::{Authenticated, CurrentUser};
use crate::config::LimitsConfig;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::ClientIp;
use crate::routes::{Access, Routes};
use crate::state::AppState;
use crate::users::Status;

/// Events the bus holds for a slow reader before that reader starts skipping.
pub const CAPACITY: usize = 1024;

/// How often an idle stream sends a comment, and re-checks its session.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The event kinds used across the app (the SSE `event:` field).
pub mod kind {
    /// A service's status changed (health-check manager).
    pub const SERVICE_STATUS: &str = "service.status";
    /// A media request changed.
    pub const REQUEST_UPDATED: &str = "request.updated";
    /// A running download moved on (at most 2 per second per download).
    pub const DOWNLOAD_PROGRESS: &str = "download.progress";
    /// A download changed status.
    pub const DOWNLOAD_UPDATED: &str = "download.updated";
    /// A notification was created for the receiving user.
    pub const NOTIFICATION_CREATED: &str = "notification.created";
    /// Sent by the stream itself when the client fell behind and events were skipped.
    pub const LAGGED: &str = "lagged";
}

/// The first frame of every stream: how long the browser waits before reconnecting (ms).
const HELLO: &[u8] = b"retry: 5000\n\n";
const KEEP_ALIVE_FRAME: &[u8] = b": keep-alive\n\n";

/// Who may see an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// One user.
    User(String),
    /// Several users (e.g. a request's owner and its followers).
    Users(Vec<String>),
    /// Several users and every admin (a request's owner and followers, and the admins who
    /// manage requests).
    UsersAndAdmins(Vec<String>),
    /// Every admin.
    Admins,
    /// Every signed-in user.
    Everyone,
}

impl Audience {
    /// Whether a caller with this user id and role is in the audience.
    pub fn includes(&self, user_id: &str, is_admin: bool) -> bool {
        match self {
            Self::User(id) => id == user_id,
            Self::Users(ids) => ids.iter().any(|id| id == user_id),
            Self::UsersAndAdmins(ids) => is_admin || ids.iter().any(|id| id == user_id),
            Self::Admins => is_admin,
            Self::Everyone => true,
        }
    }
}

/// One event: its kind, who may see it and its JSON payload, serialized once for all receivers.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: &'static str,
    pub audience: Audience,
    pub data: Arc<str>,
}

impl Event {
    /// An event whose payload is `data` as JSON.
    pub fn new<T: Serialize + ?Sized>(kind: &'static str, audience: Audience, data: &T) -> Self {
        let data = match serde_json::to_string(data) {
            Ok(json) => json,
            Err(e) => {
                // Our payloads are plain structs; this only guards against a map with non-string
                // keys slipping in. Receivers still learn that something happened.
                tracing::warn!(kind, error = %e, "could not serialize an event payload");
                "null".to_owned()
            }
        };
        Self {
            kind,
            audience,
            data: data.into(),
        }
    }

    /// The SSE frame. Compact JSON has no raw newlines, so one `data:` line carries it.
    fn frame(&self) -> Bytes {
        Bytes::from(format!("event: {}\ndata: {}\n\n", self.kind, self.data))
    }
}

/// The broadcast channel every live stream reads.
#[derive(Debug)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    closed: CancellationToken,
    streams: Arc<Mutex<OpenStreams>>,
    /// Wakes the notification delivery worker when new outbox rows committed.
    outbox: Arc<tokio::sync::Notify>,
}

/// Open streams per user and per client address (only those with any open).
#[derive(Debug, Default)]
struct OpenStreams {
    by_user: HashMap<String, u32>,
    by_ip: HashMap<IpAddr, u32>,
}

/// One open stream's place under the caps; the stream owns it, so it is given back when the
/// stream ends (client gone, session ended, shutdown).
#[derive(Debug)]
pub struct StreamSlot {
    streams: Arc<Mutex<OpenStreams>>,
    user_id: String,
    ip: Option<IpAddr>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        release(&mut open.by_user, &self.user_id);
        if let Some(ip) = self.ip {
            release(&mut open.by_ip, &ip);
        }
    }
}

fn release<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, u32>, key: &K) {
    if let Some(n) = counts.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(key);
        }
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(CAPACITY)
    }
}

impl EventBus {
    /// A bus that keeps up to `capacity` events for slow readers.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self {
            tx,
            closed: CancellationToken::new(),
            streams: Arc::default(),
            outbox: Arc::default(),
        }
    }

    /// Tells the notification delivery worker that deliveries may be due (new outbox rows
    /// committed, a delivery finished). A wake with no worker waiting is kept for its next wait.
    pub fn wake_outbox(&self) {
        self.outbox.notify_one();
    }

    /// What the delivery worker waits on.
    pub fn outbox_waker(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.outbox)
    }

    /// Takes a place for one more stream of `user_id` from `ip`, or answers `RATE_LIMITED`
    /// when the user or the address has as many open as `limits` allow.
    pub fn open_stream(
        &self,
        user_id: &str,
        ip: Option<IpAddr>,
        limits: &LimitsConfig,
    ) -> AppResult<StreamSlot> {
        // Keyed as the rate limits key a client (an IPv6 host by its /64).
        let ip = ip.map(crate::net::client_key);
        let mut open = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        let by_user = open.by_user.get(user_id).copied().unwrap_or(0);
        if by_user >= limits.events_per_user {
            return Err(too_many_streams(
                limits.events_per_user,
                "for your account; close another tab or window with the dashboard",
            ));
        }
        if let Some(ip) = ip
            && open.by_ip.get(&ip).copied().unwrap_or(0) >= limits.events_per_ip
        {
            return Err(too_many_streams(limits.events_per_ip, "from your address"));
        }
        *open.by_user.entry(user_id.to_owned()).or_insert(0) += 1;
        if let Some(ip) = ip {
            *open.by_ip.entry(ip).or_insert(0) += 1;
        }
        Ok(StreamSlot {
            streams: Arc::clone(&self.streams),
            user_id: user_id.to_owned(),
            ip,
        })
    }

    /// Streams open now (those holding a [`StreamSlot`]).
    pub fn open_streams(&self) -> u32 {
        let open = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        open.by_user.values().sum()
    }

    /// Sends `event` to every current subscriber. Never waits: with no subscribers the event is
    /// dropped, and a subscriber that is behind loses its oldest events, not the producer's time.
    pub fn publish(&self, event: Event) {
        // The only error is "no receivers", which is fine.
        let _ = self.tx.send(Arc::new(event));
    }

    /// A receiver of every event published from now on (all audiences: filter with
    /// [`Audience::includes`]).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Number of live subscribers (open streams and others).
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Ends every open stream, now and for streams opened later. Called when the server starts
    /// shutting down, so open SSE connections do not hold up the graceful shutdown.
    pub fn close(&self) {
        self.closed.cancel();
    }

    /// Whether [`EventBus::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }
}

/// The `Retry-After` of a stream refused over its cap: as long as a browser's own reconnect
/// wait (`retry: 5000`), by when another tab may have closed its stream.
const STREAM_RETRY_AFTER_SECS: u64 = 5;

fn too_many_streams(limit: u32, whose: &str) -> AppError {
    AppError::new(ErrorCode::RateLimited)
        .with_details(serde_json::json!({
            "reason": format!("At most {limit} live-update streams may be open at once {whose}."),
            "limit": limit,
        }))
        .with_retry_after(STREAM_RETRY_AFTER_SECS)
}

/// The live-event route (under `/api/v1`).
pub fn routes() -> Routes {
    Routes::new().add(Method::GET, "/events", Access::User, stream_events)
}

/// `GET /events`: the caller's events as Server-Sent Events until the client goes, the session
/// ends (checked every keep-alive) or the server shuts down.
///
/// The response head goes out at once; the edge's request timeout covers only that, not the
/// stream.
pub async fn stream_events(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    CurrentUser(auth): CurrentUser,
) -> AppResult<Response> {
    let slot = state
        .events()
        .open_stream(auth.user_id(), ip, &state.config().limits)?;
    // Subscribe before answering, so nothing published after the head is missed.
    let feed = Feed {
        _slot: slot,
        rx: state.events().subscribe(),
        closed: state.events().closed.clone(),
        shutdown: state.shutdown_token().clone(),
        keep_alive: keep_alive_interval(),
        greeted: false,
        session: auth,
        state,
    };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let frame = feed.next_frame().await?;
        Some((Ok::<_, Infallible>(frame), feed))
    });
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            // nginx would otherwise buffer the stream and deliver events in bursts.
            (
                header::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

fn keep_alive_interval() -> Interval {
    let mut interval = tokio::time::interval_at(Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    // A stream that was not polled for a while (client not reading) owes one comment, not a burst.
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

/// One client's stream.
struct Feed {
    /// Its place under the caps, given back when the stream (and so this) is dropped.
    _slot: StreamSlot,
    rx: broadcast::Receiver<Arc<Event>>,
    closed: CancellationToken,
    shutdown: CancellationToken,
    keep_alive: Interval,
    greeted: bool,
    /// The session at connect time: its user, role and token.
    session: Authenticated,
    state: AppState,
}

impl Feed {
    /// The next frame to send, or `None` to end the stream.
    async fn next_frame(&mut self) -> Option<Bytes> {
        if !self.greeted {
            self.greeted = true;
            return Some(Bytes::from_static(HELLO));
        }
        loop {
            tokio::select! {
                // Ending wins over anything still queued.
                biased;
                () = self.closed.cancelled() => return None,
                () = self.shutdown.cancelled() => return None,
                _ = self.keep_alive.tick() => {
                    if !self.session_still_valid().await {
                        return None;
                    }
                    return Some(Bytes::from_static(KEEP_ALIVE_FRAME));
                }
                received = self.rx.recv() => match received {
                    Ok(event) => {
                        if event.audience.includes(self.session.user_id(), self.session.is_admin()) {
                            return Some(event.frame());
                        }
                    }
                    Err(RecvError::Lagged(skipped)) => {
                        tracing::debug!(skipped, "a live-event client fell behind");
                        return Some(Bytes::from(format!(
                            "event: {}\ndata: {{\"skipped\":{skipped}}}\n\n",
                            kind::LAGGED
                        )));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    }

    /// The stream belongs to the session it was opened with: it ends when that session is
    /// revoked or expired, the account suspended, or the role changed (an admin's stream must
    /// not keep receiving admin events after a demotion).
    async fn session_still_valid(&self) -> bool {
        let now = self.state.clock().now_ms();
        let current = &self.session.session;
        match self
            .state
            .sessions()
            .lookup(self.state.db(), &self.session.token, now)
            .await
        {
            Ok(info) => {
                info.status == Status::Active
                    && info.role == current.role
                    && info.user_id == current.user_id
                    && !info.requires_password_change
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use futures_util::StreamExt;
    use serde_json::json;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;
    use tower::ServiceExt;

    use super::*;
    use crate::admin::testing::{START_MS, TestApp};

    /// How long a test waits for something that should happen at once.
    const DEADLINE: Duration = Duration::from_secs(10);

    type Frames = axum::body::BodyDataStream;

    /// Opens `/events` through the router (no socket) and returns the body after the hello.
    async fn open(t: &TestApp, token: &str) -> Frames {
        let request = Request::get("/api/v1/events")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let response = t.app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let mut frames = response.into_body().into_data_stream();
        assert_eq!(next(&mut frames).await.as_deref(), Some("retry: 5000\n\n"));
        frames
    }

    async fn next(frames: &mut Frames) -> Option<String> {
        next_within(frames, DEADLINE).await
    }

    /// [`next`] with paused time: the deadline must outlast the keep-alive.
    async fn next_paused(frames: &mut Frames) -> Option<String> {
        next_within(frames, 2 * KEEP_ALIVE).await
    }

    async fn next_within(frames: &mut Frames, deadline: Duration) -> Option<String> {
        let frame = tokio::time::timeout(deadline, frames.next())
            .await
            .expect("a frame in time")?;
        Some(String::from_utf8(frame.unwrap().to_vec()).unwrap())
    }

    /// Frames up to and including the `{"end":true}` marker.
    async fn until_end(frames: &mut Frames) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let frame = next(frames).await.expect("stream still open");
            let end = frame.contains(r#"{"end":true}"#);
            seen.push(frame);
            if end {
                return seen;
            }
        }
    }

    #[test]
    fn audiences() {
        assert!(Audience::User("a".into()).includes("a", false));
        assert!(!Audience::User("a".into()).includes("b", true));
        assert!(Audience::Users(vec!["a".into(), "b".into()]).includes("b", false));
        assert!(!Audience::Users(vec!["a".into()]).includes("c", true));
        assert!(Audience::Admins.includes("x", true));
        assert!(!Audience::Admins.includes("x", false));
        assert!(Audience::Everyone.includes("x", false));
    }

    #[test]
    fn events_serialize_once_into_one_frame() {
        let event = Event::new(
            kind::REQUEST_UPDATED,
            Audience::Everyone,
            &json!({"title": "two\nlines"}),
        );
        assert_eq!(&*event.data, r#"{"title":"two\nlines"}"#);
        assert_eq!(
            &event.frame()[..],
            b"event: request.updated\ndata: {\"title\":\"two\\nlines\"}\n\n"
        );
        // Nobody listening is fine.
        EventBus::default().publish(event);
    }

    #[tokio::test]
    async fn each_caller_gets_only_the_events_meant_for_them() {
        let t = TestApp::new().await;
        let ann = t.add_user("ann", None, "user", "active", START_MS).await;
        let bob = t.add_user("bob", None, "user", "active", START_MS).await;
        let (ann_token, bob_token) = (t.sign_in(&ann).await, t.sign_in(&bob).await);
        let mut ann_feed = open(&t, &ann_token).await;
        let mut bob_feed = open(&t, &bob_token).await;
        let mut admin_feed = open(&t, &t.admin_token).await;

        let bus = t.state.events();
        bus.publish(Event::new(
            kind::DOWNLOAD_UPDATED,
            Audience::User(bob.clone()),
            &json!({"to": "bob"}),
        ));
        bus.publish(Event::new(
            kind::DOWNLOAD_UPDATED,
            Audience::User(ann.clone()),
            &json!({"to": "ann"}),
        ));
        bus.publish(Event::new(
            kind::SERVICE_STATUS,
            Audience::Admins,
            &json!({"to": "admins"}),
        ));
        bus.publish(Event::new(
            kind::REQUEST_UPDATED,
            Audience::Users(vec![ann.clone(), t.admin_id.clone()]),
            &json!({"to": "ann+admin"}),
        ));
        bus.publish(Event::new(
            kind::SERVICE_STATUS,
            Audience::Everyone,
            &json!({"to": "all"}),
        ));
        bus.publish(Event::new(
            kind::SERVICE_STATUS,
            Audience::Everyone,
            &json!({"end": true}),
        ));

        let data = |frames: Vec<String>| -> Vec<String> {
            frames
                .iter()
                .map(|f| {
                    f.lines()
                        .nth(1)
                        .unwrap()
                        .trim_start_matches("data: ")
                        .to_owned()
                })
                .collect()
        };
        assert_eq!(
            data(until_end(&mut ann_feed).await),
            [
                r#"{"to":"ann"}"#,
                r#"{"to":"ann+admin"}"#,
                r#"{"to":"all"}"#,
                r#"{"end":true}"#
            ]
        );
        assert_eq!(
            data(until_end(&mut bob_feed).await),
            [r#"{"to":"bob"}"#, r#"{"to":"all"}"#, r#"{"end":true}"#]
        );
        assert_eq!(
            data(until_end(&mut admin_feed).await),
            [
                r#"{"to":"admins"}"#,
                r#"{"to":"ann+admin"}"#,
                r#"{"to":"all"}"#,
                r#"{"end":true}"#
            ]
        );
        let first = Event::new(kind::SERVICE_STATUS, Audience::Everyone, &json!({"n": 1}));
        bus.publish(first);
        assert_eq!(
            next(&mut ann_feed).await.unwrap(),
            "event: service.status\ndata: {\"n\":1}\n\n"
        );
    }

    /// Paused time stands still except to jump to the next timer, which the timer wheel rounds
    /// up to the millisecond.
    fn at_tick(opened: Instant, n: u32) {
        let elapsed = opened.elapsed();
        let want = n * KEEP_ALIVE;
        assert!(
            elapsed >= want && elapsed <= want + Duration::from_millis(2),
            "{elapsed:?} is not keep-alive #{n}"
        );
    }

    #[tokio::test]
    async fn keep_alive_every_15_seconds_and_the_stream_ends_with_its_session() {
        let t = TestApp::new().await;
        let ann = t.add_user("ann", None, "user", "active", START_MS).await;
        let token = t.sign_in(&ann).await;
        // Warm the session cache so nothing below waits on the blocking pool with time paused.
        let warm = t
            .call("GET", "/api/v1/auth/session", Some(&token), None)
            .await;
        assert_eq!(warm.status, StatusCode::OK);

        tokio::time::pause();
        let opened = Instant::now();
        let mut feed = open(&t, &token).await;
        assert_eq!(
            next_paused(&mut feed).await.as_deref(),
            Some(": keep-alive\n\n")
        );
        at_tick(opened, 1);
        // Events in between do not change the rhythm.
        t.state.events().publish(Event::new(
            kind::SERVICE_STATUS,
            Audience::Everyone,
            &json!({}),
        ));
        assert!(
            next_paused(&mut feed)
                .await
                .unwrap()
                .starts_with("event: service.status")
        );
        assert_eq!(
            next_paused(&mut feed).await.as_deref(),
            Some(": keep-alive\n\n")
        );
        at_tick(opened, 2);

        // Suspend the account: the next keep-alive finds out and ends the stream.
        t.exec(
            "UPDATE users SET status = 'suspended' WHERE id = ?1",
            vec![ann.clone().into()],
        )
        .await;
        t.state.sessions().forget_all();
        assert_eq!(next_paused(&mut feed).await, None);
        at_tick(opened, 3);
    }

    #[tokio::test]
    async fn a_revoked_session_or_a_demoted_admin_loses_the_stream() {
        let t = TestApp::new().await;
        let ann = t.add_user("ann", None, "user", "active", START_MS).await;
        let boss = t.add_user("boss", None, "admin", "active", START_MS).await;
        let (ann_token, boss_token) = (t.sign_in(&ann).await, t.sign_in(&boss).await);
        let mut ann_feed = open(&t, &ann_token).await;
        let mut boss_feed = open(&t, &boss_token).await;

        t.exec(
            "DELETE FROM session_tokens WHERE user_id = ?1",
            vec![ann.clone().into()],
        )
        .await;
        t.exec(
            "UPDATE users SET role = 'user' WHERE id = ?1",
            vec![boss.clone().into()],
        )
        .await;
        t.state.sessions().forget_all();

        tokio::time::pause();
        assert_eq!(next_paused(&mut ann_feed).await, None);
        assert_eq!(next_paused(&mut boss_feed).await, None);
        // The admin's own, unchanged session keeps its stream.
        let mut admin_feed = open(&t, &t.admin_token).await;
        assert_eq!(
            next_paused(&mut admin_feed).await.as_deref(),
            Some(": keep-alive\n\n")
        );
    }

    /// A real server on 127.0.0.1:0 and a raw HTTP/1.1 client.
    struct Server {
        addr: std::net::SocketAddr,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        grace_secs: u64,
        task: tokio::task::JoinHandle<std::io::Result<()>>,
    }

    async fn start(t: &TestApp) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(crate::serve_app(
            listener,
            t.state.clone(),
            t.app.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        Server {
            addr,
            stop: Some(stop),
            grace_secs: t.state.config().server.shutdown_grace_secs,
            task,
        }
    }

    /// Connects, asks for `/events` and reads the head; returns the reader at the body.
    async fn connect(addr: std::net::SocketAddr, token: &str) -> BufReader<TcpStream> {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(DEADLINE, reader.read_line(&mut line))
                .await
                .expect("head in time")
                .unwrap();
            assert!(n > 0, "connection closed in the head: {head}");
            if line == "\r\n" {
                break;
            }
            head.push_str(&line.to_ascii_lowercase());
        }
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("content-type: text/event-stream"), "{head}");
        assert!(head.contains("cache-control: no-cache\r\n"), "{head}");
        assert!(head.contains("x-accel-buffering: no"), "{head}");
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
        reader
    }

    /// Reads chunked body lines until one contains `needle`, or the body ends (returns false).
    async fn read_until(
        reader: &mut BufReader<TcpStream>,
        needle: &str,
        seen: &mut Vec<String>,
    ) -> bool {
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(DEADLINE, reader.read_line(&mut line))
                .await
                .expect("a line in time")
                .unwrap();
            if n == 0 {
                return false;
            }
            let found = line.contains(needle);
            seen.push(line);
            if found {
                return true;
            }
        }
    }

    // One thread: nothing else runs while the loop publishes, so every stream falls far behind.
    #[tokio::test]
    async fn a_client_that_never_reads_slows_neither_publisher_nor_other_clients() {
        let t = TestApp::new().await;
        let server = start(&t).await;
        // Connected and never read from again: its socket buffers fill, its stream stops.
        let stalled = connect(server.addr, &t.admin_token).await;
        // A subscriber of the bus itself that never receives.
        let _stalled_rx = t.state.events().subscribe();
        let mut reader = connect(server.addr, &t.admin_token).await;

        let bus = t.state.events();
        let started = std::time::Instant::now();
        let payload = "x".repeat(200);
        for n in 0..10_000u32 {
            bus.publish(Event::new(
                kind::DOWNLOAD_PROGRESS,
                Audience::Everyone,
                &json!({"n": n, "pad": payload}),
            ));
        }
        // publish cannot wait (it is not async); this only shows it stays cheap under lag.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );

        let mut seen = Vec::new();
        assert!(read_until(&mut reader, r#"{"n":9999,"#, &mut seen).await);
        let numbers: Vec<u32> = seen
            .iter()
            .filter_map(|l| l.strip_prefix("data: {\"n\":"))
            .map(|rest| rest.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "in order");
        // Far more than the channel holds went by: the reader skipped ahead and was told.
        assert!(numbers.len() < 10_000);
        assert!(seen.iter().any(|l| l.starts_with("event: lagged")));
        // Newer events still arrive promptly.
        bus.publish(Event::new(
            kind::SERVICE_STATUS,
            Audience::Everyone,
            &json!({"end": true}),
        ));
        assert!(read_until(&mut reader, r#"{"end":true}"#, &mut seen).await);
        // A client stalled at the socket holds its connection until the grace period ends; gone,
        // it holds nothing.
        drop(stalled);
        server.shutdown().await;
    }

    impl Server {
        async fn shutdown(mut self) {
            let _ = self.stop.take().unwrap().send(());
            // Half the grace period: an open stream must not make shutdown wait it out.
            let limit = Duration::from_secs(self.grace_secs) / 2;
            tokio::time::timeout(limit, self.task)
                .await
                .expect("serve returns well before the grace period")
                .unwrap()
                .unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn open_streams_end_when_the_server_shuts_down() {
        let t = TestApp::new().await;
        let server = start(&t).await;
        let mut reader = connect(server.addr, &t.admin_token).await;
        let mut seen = Vec::new();
        assert!(read_until(&mut reader, "retry: 5000", &mut seen).await);

        server.shutdown().await;
        // The body ended properly (last chunk) and the connection closed.
        assert!(!read_until(&mut reader, "never", &mut seen).await);
        assert_eq!(seen.last().map(String::as_str), Some("\r\n"));
        assert!(seen.iter().any(|l| l == "0\r\n"), "{seen:?}");
        assert!(t.state.events().is_closed());
    }
}
