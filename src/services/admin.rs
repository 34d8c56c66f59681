//! Admin pages for the service connections and the circuit breakers:
//! `GET /admin/services`, `PUT /admin/services/{name}`, `POST /admin/services/{name}/test`,
//! `GET /admin/integrations`, `POST /admin/integrations/{name}/reset`.
//!
//! Saving validates, encrypts the key, rebuilds the clients and runs a check at once, so the
//! dashboard shows the effect of new settings immediately and no restart is needed.

use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::clients::{self, ServiceClients};
use crate::auth::AdminUser;
use crate::config::has_userinfo;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::ApiJson;
use crate::integrations::upstream::{UpstreamFailure, UpstreamOptions};
use crate::integrations::uptime_kuma::MetricsOutcome;
use crate::response::ApiResponse;
use crate::service_config::{self, ServiceConfig, ServiceName};
use crate::state::AppState;
use crate::time::rfc3339;

/// A service connection as the admin page shows it: the key masked.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSettings {
    pub name: &'static str,
    pub display_name: &'static str,
    pub url: Option<String>,
    /// `****` and the last four characters, or null.
    pub api_key: Option<String>,
    pub enabled: bool,
    pub timeout_ms: u64,
    pub options: serde_json::Value,
    pub updated_at: String,
    /// Seerr's only: the URL to give its webhook agent, absolute as the browser reaches us
    /// (`http::ExternalBase`, so under the base path and the proxy's host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
}

/// Masks a secret, keeping its last four characters when it is long enough to spare them.
pub fn mask(secret: &str) -> String {
    let n = secret.chars().count();
    if n <= 8 {
        return "****".into();
    }
    let tail: String = secret.chars().skip(n - 4).collect();
    format!("****{tail}")
}

fn settings(config: &ServiceConfig) -> ServiceSettings {
    let mut options = config.options.clone();
    if let Some(map) = options.as_object_mut() {
        map.remove("timeoutMs");
    }
    ServiceSettings {
        name: config.name.as_str(),
        display_name: config.name.display_name(),
        url: config.url.clone(),
        api_key: config.api_key.as_deref().map(mask),
        enabled: config.enabled,
        timeout_ms: clients::timeout_ms(config),
        options,
        updated_at: rfc3339(config.updated_at),
        webhook_url: None,
    }
}

async fn load_all(state: &AppState) -> AppResult<Vec<ServiceConfig>> {
    let cipher = state.cipher().clone();
    state
        .db()
        .run(move |conn| {
            let mut out = Vec::new();
            for name in ServiceName::ALL {
                if let Some(c) = service_config::load(conn, name, &cipher)? {
                    out.push(c);
                }
            }
            Ok(out)
        })
        .await
}

/// Rebuilds the clients from the database (after a change).
pub async fn rebuild_clients(state: &AppState) -> AppResult<()> {
    let configs = load_all(state).await?;
    state
        .service_clients()
        .replace(ServiceClients::build(configs, state.clock()));
    state.status_cache().invalidate();
    // Another server or token: nothing browsed before may be shown again.
    state.plex_caches().clear();
    Ok(())
}

/// `GET /admin/services`.
pub async fn list_services(
    State(state): State<AppState>,
    _admin: AdminUser,
    external: crate::http::ExternalBase,
) -> AppResult<Response> {
    let configs = load_all(&state).await?;
    let list: Vec<ServiceSettings> = configs
        .iter()
        .map(|c| ServiceSettings {
            webhook_url: (c.name == ServiceName::Overseerr)
                .then(|| external.url("/api/v1/webhooks/seerr")),
            ..settings(c)
        })
        .collect();
    Ok(ApiResponse::ok(&list).into_response())
}

fn parse_name(name: &str) -> AppResult<ServiceName> {
    ServiceName::parse(name).ok_or_else(|| AppError::new(ErrorCode::NotFound))
}

/// The body of `PUT /admin/services/{name}` and `POST .../test`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceBody {
    url: Option<String>,
    /// Omitted: keep the stored key. Empty string: remove it.
    api_key: Option<String>,
    enabled: Option<bool>,
    timeout_ms: Option<u64>,
    options: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Validates a body against the stored settings and returns the settings it asks for.
fn merged(
    name: ServiceName,
    stored: Option<&ServiceConfig>,
    body: ServiceBody,
    now: i64,
) -> AppResult<ServiceConfig> {
    let mut fields: Vec<(String, String)> = Vec::new();
    let url = match body.url.as_deref().map(str::trim) {
        Some("") | None => stored.and_then(|s| s.url.clone()),
        Some(u) => {
            if let Err(reason) = crate::config::check_http_url(u) {
                fields.push(("url".into(), reason));
            } else if has_userinfo(u) {
                fields.push((
                    "url".into(),
                    "must not carry a user name or password (the key goes in apiKey)".into(),
                ));
            }
            if u.len() > 2048 {
                fields.push(("url".into(), "must be at most 2048 characters".into()));
            }
            Some(u.trim_end_matches('/').to_owned())
        }
    };
    // The stored key goes only where it went before: a URL on another origin needs it again,
    // or an admin (or a stolen admin session) could send it to any server.
    let stored_key = stored.and_then(|s| s.api_key.as_deref());
    let stored_url = stored.and_then(|s| s.url.as_deref());
    if body.api_key.is_none()
        && stored_key.is_some()
        && url.as_deref() != stored_url
        && url.as_deref().map(origin) != stored_url.map(origin)
    {
        fields.push((
            "apiKey".into(),
            "required when the URL's host, port or scheme changes".into(),
        ));
    }
    let api_key = match body.api_key {
        None => stored.and_then(|s| s.api_key.clone()),
        Some(k) if k.is_empty() => None,
        Some(k) if k.len() > 512 || k.chars().any(char::is_control) => {
            fields.push((
                "apiKey".into(),
                "must be at most 512 printable characters".into(),
            ));
            None
        }
        Some(k) => Some(k),
    };
    let mut options = stored
        .and_then(|s| s.options.as_object().cloned())
        .unwrap_or_default();
    if let Some(given) = body.options {
        for (k, v) in given {
            match k.as_str() {
                "slug" if name == ServiceName::UptimeKuma => {
                    // Kuma's own slug rule; the case is kept (Kuma 1.23 matches it exactly).
                    let ok = v.as_str().is_some_and(|s| {
                        s.len() <= 64
                            && crate::integrations::uptime_kuma::check_slug(s).as_deref() == Ok(s)
                    });
                    if !ok {
                        fields.push((
                            "options.slug".into(),
                            "must be 1-64 letters and digits, words joined by single -".into(),
                        ));
                    }
                    options.insert(k, v);
                }
                other => fields.push((format!("options.{other}"), "is not a known option".into())),
            }
        }
    }
    if let Some(ms) = body.timeout_ms {
        if !(500..=60_000).contains(&ms) {
            fields.push(("timeoutMs".into(), "must be between 500 and 60000".into()));
        }
        options.insert("timeoutMs".into(), ms.into());
    }
    let enabled = body
        .enabled
        .unwrap_or_else(|| stored.is_none_or(|s| s.enabled));
    if enabled && url.is_none() {
        fields.push(("url".into(), "is required to enable the service".into()));
    }
    if enabled && name == ServiceName::UptimeKuma && !options.contains_key("slug") {
        fields.push(("options.slug".into(), "is required for Uptime Kuma".into()));
    }
    if !fields.is_empty() {
        return Err(AppError::validation(fields));
    }
    Ok(ServiceConfig {
        name,
        url,
        api_key,
        enabled,
        options: serde_json::Value::Object(options),
        updated_at: now,
    })
}

/// Scheme, host and port (the scheme's default when none is written) of `url`, normalised
/// (case, IDNA, IP forms) as a URL parser reads it; `None` when it does not parse.
fn origin(url: &str) -> Option<(String, String, Option<u16>)> {
    let parsed = url::Url::parse(url).ok()?;
    Some((
        parsed.scheme().to_owned(),
        parsed.host_str()?.to_owned(),
        parsed.port_or_known_default(),
    ))
}

/// `PUT /admin/services/{name}`: saves, rebuilds the clients, checks at once.
pub async fn update_service(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<ServiceBody>,
) -> AppResult<Response> {
    let name = parse_name(&name)?;
    let now = state.clock().now_ms();
    let current = super::clients(&state).await?;
    let config = merged(name, current.config(name), body, now)?;
    let cipher = state.cipher().clone();
    let to_save = config.clone();
    let admin_id = admin.user_id().to_owned();
    state
        .db()
        .write(move |tx| {
            let api_key = to_save
                .api_key
                .as_deref()
                .map(|k| cipher.encrypt(k))
                .transpose()?;
            tx.prepare_cached(
                "INSERT INTO service_config (id, service_name, service_url, api_key, enabled,
                                             config_data, updated_at, updated_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (service_name) DO UPDATE SET
                    service_url = excluded.service_url, api_key = excluded.api_key,
                    enabled = excluded.enabled, config_data = excluded.config_data,
                    updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            )?
            .execute(rusqlite::params![
                uuid::Uuid::now_v7().to_string(),
                to_save.name.as_str(),
                to_save.url,
                api_key,
                to_save.enabled,
                to_save.options.to_string(),
                now,
                admin_id
            ])?;
            Ok(())
        })
        .await?;
    tracing::info!(service = name.as_str(), "service settings saved");
    rebuild_clients(&state).await?;
    // Check now so the dashboard reflects the new settings at once.
    if let Err(e) = super::manager::run_cycle(&state).await {
        tracing::warn!(error = %e, "the check after saving settings failed");
    }
    Ok(ApiResponse::ok(&settings(&config)).into_response())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TestOutcome {
    ok: bool,
    latency_ms: u64,
    version: Option<String>,
    error: Option<String>,
}

/// `POST /admin/services/{name}/test`: a live check with the given (else stored) settings;
/// saves nothing.
pub async fn test_service(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<ServiceBody>,
) -> AppResult<Response> {
    let name = parse_name(&name)?;
    let current = super::clients(&state).await?;
    let mut config = merged(name, current.config(name), body, state.clock().now_ms())?;
    config.enabled = true;
    if config.url.is_none() {
        return Err(AppError::validation([("url", "is required")]));
    }
    let timeout = Duration::from_millis(clients::timeout_ms(&config));
    let url = config.url.clone().unwrap_or_default();
    let started = Instant::now();
    // Each test has its own client, so the live client's limit on calls in flight does not
    // cover it: a gate of the same size does, or a burst of tests against a hanging service
    // would fill the blocking pool and starve the database. Waiting counts against the timeout.
    let gate = state.health_manager().test_gate().clone();
    let Ok(Ok(_permit)) = tokio::time::timeout(timeout, gate.acquire_owned()).await else {
        // The same wording as the client's own timeout for this service.
        let e = UpstreamFailure::Timeout.into_app_error(name.display_name());
        return Ok(ApiResponse::ok(&TestOutcome {
            ok: false,
            latency_ms: started.elapsed().as_millis() as u64,
            version: None,
            error: Some(e.report().message),
        })
        .into_response());
    };
    let left = timeout.saturating_sub(started.elapsed()).as_millis() as u64;
    let options = UpstreamOptions::with_timeout_ms(left.max(1));
    // A throwaway client (and breaker): testing must not trip the live one.
    let outcome: AppResult<Option<String>> = match name {
        ServiceName::Plex => crate::integrations::plex::PlexServer::new(
            &url,
            config.api_key.clone(),
            options,
            state.clock().clone(),
        )
        .identity()
        .await
        .map(|i| Some(i.version)),
        ServiceName::Overseerr => crate::integrations::overseerr::Overseerr::new(
            &url,
            config.api_key.clone(),
            options,
            state.clock().clone(),
        )
        .status()
        .await
        .map(|s| Some(s.version)),
        ServiceName::UptimeKuma => {
            let slug = config
                .options
                .get("slug")
                .and_then(|s| s.as_str())
                .unwrap_or_default()
                .to_owned();
            let kuma = crate::integrations::uptime_kuma::UptimeKuma::new(
                &url,
                slug,
                config.api_key.clone(),
                options,
                state.clock().clone(),
            );
            // The page and, with a key, `/metrics` (a refused key fails the test).
            let (page, metrics) = tokio::join!(kuma.status_page(), kuma.metrics());
            match (page, metrics) {
                (Err(e), _) | (Ok(_), Err(e)) => Err(e),
                (Ok(_), Ok(Some(MetricsOutcome::KeyRefused))) => Err(AppError::Api {
                    code: ErrorCode::UpstreamError,
                    service: Some(crate::integrations::uptime_kuma::SERVICE_NAME),
                    details: Some(serde_json::json!({
                        "reason": "Uptime Kuma's /metrics refused the API key",
                    })),
                    retry_after: None,
                }),
                (Ok(_), Ok(_)) => Ok(None),
            }
        }
    };
    let latency_ms = started.elapsed().as_millis() as u64;
    let body = match outcome {
        Ok(version) => TestOutcome {
            ok: true,
            latency_ms,
            version,
            error: None,
        },
        Err(e) => TestOutcome {
            ok: false,
            latency_ms,
            version: None,
            error: Some(test_failure_message(&e)),
        },
    };
    Ok(ApiResponse::ok(&body).into_response())
}

/// What a failed connection test tells the admin: the answer's own reason when it has one (a
/// redirect: "Plex answered with a redirect to another address; ..."), else its message.
fn test_failure_message(e: &AppError) -> String {
    let report = e.report();
    report
        .details
        .as_ref()
        .and_then(|d| d.get("reason"))
        .and_then(|r| r.as_str())
        .map_or(report.message, str::to_owned)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct IntegrationView {
    service: &'static str,
    display_name: &'static str,
    state: crate::integrations::breaker::BreakerState,
    consecutive_failures: u32,
    opened_at: Option<String>,
    retry_at: Option<String>,
}

/// `GET /admin/integrations`: the circuit breakers (plex.tv's included).
pub async fn list_integrations(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> AppResult<Response> {
    let clients = super::clients(&state).await?;
    let mut list: Vec<IntegrationView> = clients
        .breakers()
        .into_iter()
        .map(|(name, b)| IntegrationView {
            service: name.as_str(),
            display_name: name.display_name(),
            state: b.state,
            consecutive_failures: b.consecutive_failures,
            opened_at: b.opened_at,
            retry_at: b.retry_at,
        })
        .collect();
    let tv = state.plex_auth().plextv().upstream().breaker().snapshot();
    list.push(IntegrationView {
        service: "plex_tv",
        display_name: "plex.tv",
        state: tv.state,
        consecutive_failures: tv.consecutive_failures,
        opened_at: tv.opened_at,
        retry_at: tv.retry_at,
    });
    Ok(ApiResponse::ok(&list).into_response())
}

/// `POST /admin/integrations/{name}/reset`: closes a breaker.
pub async fn reset_integration(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(name): Path<String>,
) -> AppResult<Response> {
    let found = if name == "plex_tv" {
        state.plex_auth().plextv().upstream().breaker().reset();
        true
    } else {
        let service = parse_name(&name)?;
        super::clients(&state).await?.reset_breaker(service)
    };
    if !found {
        return Err(AppError::new(ErrorCode::NotFound));
    }
    state.status_cache().invalidate();
    tracing::info!(service = %name, "circuit breaker reset by an admin");
    Ok(ApiResponse::ok(&serde_json::json!({ "service": name, "state": "closed" })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let same = |a: &str, b: &str| origin(a) == origin(b);
        assert!(same("http://Plex.LAN:80/", "http://plex.lan"));
        assert!(same("https://plex.lan/web", "https://plex.lan:443"));
        assert!(same(
            "http://127.0.0.1:32400",
            "http://127.0.0.1:32400/x?y=1"
        ));
        assert!(!same("http://plex.lan", "https://plex.lan"));
        assert!(!same("http://plex.lan:32400", "http://plex.lan:32401"));
        assert!(!same("http://plex.lan", "http://plex.lan.evil.example"));
        assert!(has_userinfo("http://user:pass@plex.lan"));
        assert!(has_userinfo("http://user@plex.lan"));
        assert!(has_userinfo("http://:pass@plex.lan"));
        assert!(!has_userinfo("http://plex.lan/a@b"));
    }

    #[test]
    fn masks_keep_only_a_short_tail() {
        assert_eq!(mask("abcd"), "****");
        assert_eq!(mask("0123456789abcdef"), "****cdef");
    }
}
