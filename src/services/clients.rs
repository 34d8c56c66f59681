//! The client factory: one client per configured service, built from the `service_config` rows
//! and swapped whole when an admin saves new settings (no restart). Readers take a cheap `Arc`
//! snapshot, so a swap never waits for calls in flight and calls in flight finish on the clients
//! they started with.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::clock::SharedClock;
use crate::integrations::breaker::BreakerSnapshot;
use crate::integrations::overseerr::Overseerr;
use crate::integrations::plex::PlexServer;
use crate::integrations::upstream::UpstreamOptions;
use crate::integrations::uptime_kuma::UptimeKuma;
use crate::service_config::{ServiceConfig, ServiceName};

/// Default whole-call timeout of a service (`timeoutMs` in its options overrides it).
pub const DEFAULT_TIMEOUT_MS: u64 = 5000;

/// The clients of one configuration generation.
#[derive(Debug, Default)]
pub struct ServiceClients {
    pub plex: Option<PlexServer>,
    pub overseerr: Option<Overseerr>,
    pub kuma: Option<UptimeKuma>,
    /// The settings they were built from (secrets included: never serialize).
    pub configs: Vec<ServiceConfig>,
}

impl ServiceClients {
    /// Builds a client for every enabled service that has a URL.
    pub fn build(configs: Vec<ServiceConfig>, clock: &SharedClock) -> Self {
        let mut clients = Self::default();
        for config in &configs {
            if !config.is_usable() {
                continue;
            }
            let url = config.url.as_deref().unwrap_or_default();
            let options = UpstreamOptions::with_timeout_ms(timeout_ms(config));
            match config.name {
                ServiceName::Plex => {
                    clients.plex = Some(PlexServer::new(
                        url,
                        config.api_key.clone(),
                        options,
                        clock.clone(),
                    ));
                }
                ServiceName::Overseerr => {
                    clients.overseerr = Some(Overseerr::new(
                        url,
                        config.api_key.clone(),
                        options,
                        clock.clone(),
                    ));
                }
                ServiceName::UptimeKuma => {
                    if let Some(slug) = config.options.get("slug").and_then(|s| s.as_str()) {
                        clients.kuma = Some(UptimeKuma::new(
                            url,
                            slug.to_owned(),
                            config.api_key.clone(),
                            options,
                            clock.clone(),
                        ));
                    }
                }
            }
        }
        clients.configs = configs;
        clients
    }

    /// The settings of one service.
    pub fn config(&self, name: ServiceName) -> Option<&ServiceConfig> {
        self.configs.iter().find(|c| c.name == name)
    }

    /// The breakers of the clients that exist.
    pub fn breakers(&self) -> Vec<(ServiceName, BreakerSnapshot)> {
        let mut out = Vec::new();
        if let Some(c) = &self.plex {
            out.push((ServiceName::Plex, c.upstream().breaker().snapshot()));
        }
        if let Some(c) = &self.overseerr {
            out.push((ServiceName::Overseerr, c.upstream().breaker().snapshot()));
        }
        if let Some(c) = &self.kuma {
            out.push((ServiceName::UptimeKuma, c.upstream().breaker().snapshot()));
        }
        out
    }

    /// Closes one service's breaker; false when it has no client.
    pub fn reset_breaker(&self, name: ServiceName) -> bool {
        let upstream = match name {
            ServiceName::Plex => self.plex.as_ref().map(|c| c.upstream()),
            ServiceName::Overseerr => self.overseerr.as_ref().map(|c| c.upstream()),
            ServiceName::UptimeKuma => self.kuma.as_ref().map(|c| c.upstream()),
        };
        upstream.map(|u| u.breaker().reset()).is_some()
    }
}

/// The service's `timeoutMs`, bounded to something sane.
pub fn timeout_ms(config: &ServiceConfig) -> u64 {
    config
        .options
        .get("timeoutMs")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(DEFAULT_TIMEOUT_MS)
        .clamp(500, 60_000)
}

/// The current client generation, swappable. Empty until first loaded from the database
/// (by the background task at start, or by the first caller that needs it).
#[derive(Debug, Default)]
pub struct Clients {
    current: RwLock<Option<Arc<ServiceClients>>>,
}

impl Clients {
    /// The clients now, if loaded.
    pub fn loaded(&self) -> Option<Arc<ServiceClients>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Puts a new generation in place.
    pub fn replace(&self, clients: ServiceClients) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(clients));
    }
}

/// How long one check may take in total: the slowest service's timeout and a little slack.
pub fn cycle_budget(clients: &ServiceClients) -> Duration {
    let longest = clients
        .configs
        .iter()
        .map(timeout_ms)
        .max()
        .unwrap_or(DEFAULT_TIMEOUT_MS);
    // Kuma's check makes at most two rounds of calls: heartbeats, page, /metrics (and 2.1's
    // incident history once known) at once, then the history the first time a 2.1 is seen.
    Duration::from_millis(longest * 2 + 1000)
}
