//! Simulated upstreams: small real HTTP servers on loopback that answer like plex.tv, Plex,
//! Overseerr and Uptime Kuma do (UPSTREAMS.md), including their error shapes and quirks.
//!
//! The integration tests use them as fakes, and `medianest demo` runs them so the portal works
//! without any real service; both therefore exercise the real client code over real TCP. Each
//! simulator binds `127.0.0.1:0` before it returns, so nobody waits or polls for a port, and is
//! steered through plain methods on its handle (accounts, injected failures, request counts).
//! The listener, shutdown, request counts, latency and fault queue they share are [`harness`]'s.
//! Nothing here may be used by the production request path.

pub mod harness;
pub mod notify;
pub mod overseerr;
pub mod plex;
pub mod plex_discover;
pub mod plextv;
pub mod push;
pub mod smtp;
pub mod uptime_kuma;
pub mod ytdlp;
