//! The configured services answer as themselves, with the credentials MediaNest holds: Plex
//! (`/identity`, then `/library/sections` with the token, whose folders must hold the download
//! dir as Plex sees it), Seerr or Overseerr (`/api/v1/status`, which one it is, and a call that
//! needs the API key) and Uptime Kuma's status page.
//!
//! Each check builds its own client (own breaker) from the stored settings: the doctor never
//! trips or waits on the running server's breakers.

use serde_json::Value;

use super::report::Check;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::error::AppError;
use crate::integrations::overseerr::Overseerr;
use crate::integrations::plex::{PlexSection, PlexServer, is_under};
use crate::integrations::upstream::UpstreamOptions;
use crate::integrations::uptime_kuma::{SlugError, UptimeKuma};
use crate::service_config::{ServiceConfig, ServiceName};
use crate::services::clients::timeout_ms;

/// The status page's wait: short, as Uptime Kuma 1.23 never answers a slug it does not know
/// (louislam/uptime-kuma 1.23.x `server/routers/status-page-router.js`: the handler returns
/// without a response when the page is missing; 2.0 answers 404).
pub const KUMA_PAGE_TIMEOUT_MS: u64 = 3000;

/// The settings of `name`, when set up (enabled, with a URL).
fn usable(services: &[ServiceConfig], name: ServiceName) -> Option<&ServiceConfig> {
    services
        .iter()
        .find(|s| s.name == name)
        .filter(|s| s.is_usable())
}

/// Whether Seerr (or Overseerr) is set up.
pub fn seerr_set_up(services: &[ServiceConfig]) -> bool {
    usable(services, ServiceName::Overseerr).is_some()
}

fn options(config: &ServiceConfig) -> UpstreamOptions {
    UpstreamOptions::with_timeout_ms(timeout_ms(config))
}

/// What a failed call says, for the doctor's line: the answer's own reason when it has one,
/// else the failure as the log would show it (redacted by the upstream layer).
fn failure(e: &AppError) -> String {
    let report = e.report();
    if let Some(reason) = report
        .details
        .as_ref()
        .and_then(|d| d.get("reason"))
        .and_then(Value::as_str)
    {
        return reason.to_owned();
    }
    match e {
        AppError::Upstream { detail, .. } => detail.clone(),
        _ => report.message,
    }
}

/// True when `e` is the upstream refusing the credentials (401 or 403).
fn refused(e: &AppError) -> bool {
    matches!(e, AppError::Upstream { detail, .. }
        if detail.starts_with("HTTP 401") || detail.starts_with("HTTP 403"))
}

/// Plex: `/identity` answers with a machine identifier, and the token reads the libraries.
/// Returns the sections for the folder check.
pub async fn check_plex(
    services: &[ServiceConfig],
    clock: &SharedClock,
) -> (Check, Option<Vec<PlexSection>>) {
    const NAME: &str = "Plex";
    let Some(config) = usable(services, ServiceName::Plex) else {
        return (Check::skip(NAME, "not set up"), None);
    };
    let url = config.url.clone().unwrap_or_default();
    let server = PlexServer::new(&url, config.api_key.clone(), options(config), clock.clone());
    let identity = match server.identity().await {
        Ok(identity) => identity,
        Err(e) => {
            return (
                Check::fail(
                    NAME,
                    format!("{url}/identity: {}", failure(&e)),
                    "check the Plex URL (admin page > Services): it is the server itself, \
                     e.g. http://192.168.1.10:32400, reachable from this machine",
                ),
                None,
            );
        }
    };
    let who = format!(
        "{} (machineIdentifier {}, version {})",
        url, identity.machine_identifier, identity.version
    );
    match server.sections().await {
        Ok(sections) => (
            Check::ok(
                NAME,
                format!("{who}, token reads {} libraries", sections.len()),
            ),
            Some(sections),
        ),
        Err(e) if refused(&e) => (
            Check::fail(
                NAME,
                format!("{who} refused the token: {}", failure(&e)),
                "set the server owner's Plex token (X-Plex-Token) in the Plex service settings",
            ),
            None,
        ),
        Err(e) => (
            Check::fail(
                NAME,
                format!("{who}, /library/sections failed: {}", failure(&e)),
                "check that the URL is the Plex server and that it is healthy",
            ),
            None,
        ),
    }
}

/// The YouTube library's folders hold the download dir as Plex sees it (`youtube.plex_path`,
/// else the download dir itself), so a partial scan of a download's folder finds its files.
pub fn check_plex_folders(config: &Config, sections: Option<&[PlexSection]>) -> Check {
    const NAME: &str = "Plex library folders";
    let Some(sections) = sections else {
        return Check::skip(NAME, "Plex is not set up or did not answer");
    };
    let seen_by_plex = config
        .youtube
        .plex_path
        .clone()
        .unwrap_or_else(|| config.download_dir());
    let wanted = seen_by_plex.to_string_lossy().into_owned();
    let key = if config.youtube.plex_path.is_some() {
        "youtube.plex_path"
    } else {
        "the download dir; youtube.plex_path is unset"
    };
    let Some(section) =
        crate::youtube::handoff::youtube_section(sections, config.plex.youtube_library.as_deref())
    else {
        let named = config.plex.youtube_library.as_deref().map_or_else(
            || "with \"YouTube\" in its title".to_owned(),
            |t| format!("\"{t}\""),
        );
        return Check::fail(
            NAME,
            format!("Plex has no library {named}"),
            format!(
                "add an \"Other Videos\" library named YouTube on {wanted} in Plex, or set \
                 plex.youtube_library to the title of the library that holds it"
            ),
        );
    };
    let locations = section.locations.join(", ");
    if section
        .locations
        .iter()
        .any(|location| is_under(&wanted, location))
    {
        Check::ok(
            NAME,
            format!(
                "{wanted} ({key}) is inside library \"{}\" ({locations})",
                section.title
            ),
        )
    } else {
        Check::fail(
            NAME,
            format!(
                "{wanted} ({key}) is not inside library \"{}\" (folders: {locations})",
                section.title
            ),
            format!(
                "add {wanted} as a folder of the \"{}\" library in Plex, or, when Plex sees the \
                 download dir under another path (a container, another machine), set \
                 youtube.plex_path to that path",
                section.title
            ),
        )
    }
}

/// Seerr or Overseerr: `/api/v1/status` answers with a version (it is public), which of the two
/// it is, and `/api/v1/user` (behind `isAuthenticated()` in both `server/routes/index.ts`)
/// accepts the API key.
pub async fn check_seerr(services: &[ServiceConfig], clock: &SharedClock) -> Check {
    const NAME: &str = "Seerr";
    let Some(config) = usable(services, ServiceName::Overseerr) else {
        return Check::skip(NAME, "not set up");
    };
    let url = config.url.clone().unwrap_or_default();
    let client = Overseerr::new(&url, config.api_key.clone(), options(config), clock.clone());
    let status = match client.status().await {
        Ok(status) => status,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("{url}/api/v1/status: {}", failure(&e)),
                "check the Seerr URL (admin page > Services): the address Seerr's web page is \
                 on, e.g. http://192.168.1.10:5055",
            );
        }
    };
    // The client's own detection (`Flavor::detect`: Seerr's public settings carry keys
    // Overseerr's lack); a page that does not answer leaves the version to decide.
    let kind = match client.flavor().await {
        Ok(flavor) => flavor.name(),
        Err(_) => "Seerr or Overseerr",
    };
    let who = format!("{kind} {} at {url}", status.version);
    if config.api_key.as_deref().is_none_or(str::is_empty) {
        return Check::fail(
            NAME,
            format!("{who}, no API key set"),
            "copy the API key from Seerr (Settings > General > API Key) into the Seerr service \
             settings",
        );
    }
    match client.users(1, 0).await {
        Ok(_) => Check::ok(NAME, format!("{who}, API key accepted")),
        Err(e) if refused(&e) => Check::fail(
            NAME,
            format!("{who} refused the API key: {}", failure(&e)),
            "copy the API key from Seerr (Settings > General > API Key) into the Seerr service \
             settings",
        ),
        Err(e) => Check::fail(
            NAME,
            format!("{who}, /api/v1/user failed: {}", failure(&e)),
            "check Seerr's log; the API key's user needs the Manage Users permission",
        ),
    }
}

/// Uptime Kuma: the configured status page exists and can be read.
pub async fn check_kuma(services: &[ServiceConfig], clock: &SharedClock) -> Check {
    const NAME: &str = "Uptime Kuma";
    let Some(config) = usable(services, ServiceName::UptimeKuma) else {
        return Check::skip(NAME, "not set up");
    };
    let url = config.url.clone().unwrap_or_default();
    let Some(slug) = config
        .options
        .get("slug")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
    else {
        return Check::fail(
            NAME,
            format!("{url}: no status page slug set"),
            "set the slug of a status page (the last part of its address, /status/<slug>) in \
             the Uptime Kuma service settings",
        );
    };
    let timeout = timeout_ms(config).min(KUMA_PAGE_TIMEOUT_MS);
    let kuma = UptimeKuma::new(
        &url,
        slug.to_owned(),
        config.api_key.clone(),
        UpstreamOptions::with_timeout_ms(timeout),
        clock.clone(),
    );
    let fix_slug = "set the slug of an existing status page (Kuma > Status Pages; on Kuma 1.23 \
                    the slug is case-sensitive) in the Uptime Kuma service settings";
    match kuma.status_page().await {
        Ok(page) => Check::ok(
            NAME,
            format!(
                "{url}, status page \"{slug}\" (\"{}\") with {} monitors",
                page.title,
                page.monitors.len()
            ),
        ),
        Err(e) => match SlugError::of(&e) {
            Some(SlugError::Unknown) => Check::fail(
                NAME,
                format!("{url} has no status page \"{slug}\""),
                fix_slug,
            ),
            Some(SlugError::Invalid) => Check::fail(
                NAME,
                format!("\"{slug}\" is not a status page slug (a-z, 0-9 and -)"),
                fix_slug,
            ),
            None => Check::fail(
                NAME,
                format!("{url}: {}", failure(&e)),
                "check the Uptime Kuma URL (admin page > Services), e.g. http://192.168.1.10:3001",
            ),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use std::time::Duration;

    use super::*;
    use crate::doctor::Status;
    use crate::sim::uptime_kuma::{Endpoint, FakeUptimeKuma, Fault, KumaVersion};

    fn kuma_settings(url: String, slug: &str) -> Vec<ServiceConfig> {
        vec![ServiceConfig {
            name: ServiceName::UptimeKuma,
            url: Some(url),
            api_key: None,
            enabled: true,
            options: json!({ "slug": slug }),
            updated_at: 0,
        }]
    }

    // Kuma 1.23.16 `server/routers/status-page-router.js` returns from the page route without a
    // response when the slug is unknown, and answers the heartbeat route 200 with empty maps. A
    // page that hangs while the heartbeat answers stands in for that silence here.
    #[tokio::test]
    async fn kuma_1_23_silent_on_the_page_is_told_apart_from_kuma_down() {
        let kuma = FakeUptimeKuma::start("home", KumaVersion::V1_23)
            .await
            .unwrap();
        let clock = crate::clock::system();
        let hang = Fault::Hang(Duration::from_secs(30));

        kuma.fail_next_on(Endpoint::Page, 1, hang.clone());
        let check = check_kuma(&kuma_settings(kuma.url(), "home"), &clock).await;
        assert_eq!(check.status, Status::Fail, "{check:?}");
        assert!(
            check.detail.contains("has no status page \"home\""),
            "{check:?}"
        );
        assert!(check.fix.unwrap().contains("case-sensitive"));

        // Nothing answers at all: that is Kuma, not the slug.
        kuma.fail_next_on(Endpoint::Page, 1, hang.clone());
        kuma.fail_next_on(Endpoint::Heartbeat, 2, hang);
        let check = check_kuma(&kuma_settings(kuma.url(), "home"), &clock).await;
        assert_eq!(check.status, Status::Fail, "{check:?}");
        assert!(!check.detail.contains("slug"), "{check:?}");
        assert!(check.detail.contains("deadline"), "{check:?}");
        kuma.shutdown().await;
    }
}
