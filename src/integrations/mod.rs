//! Clients for the services MediaNest talks to (SPEC section 8).
//!
//! Every call to an upstream is blocking `ureq` code run through [`upstream::Upstream`], the one
//! helper that owns the blocking pool hand-off, the per-upstream concurrency limit, timeouts,
//! retries, the response size cap, failure classification and token redaction. The clients here
//! only know their upstream's URLs and shapes; they never run HTTP on an async worker thread.

pub mod breaker;
pub mod client;
pub mod overseerr;
pub mod plex;
pub mod plextv;
pub mod upstream;
pub mod uptime_kuma;
