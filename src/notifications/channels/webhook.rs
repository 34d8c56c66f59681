//! Webhook: a JSON POST to a URL on a host the admin allowed.
//!
//! The body is MediaNest's own, documented in the README ("Notifications"):
//! `{event, title, message, url, image, tags, sentAt}`, with the delivery's idempotency key in
//! the `Idempotency-Key` header (the name of the IETF httpapi draft "The Idempotency-Key HTTP
//! Header Field"), the same on every attempt of one delivery.

use serde_json::json;

use super::http::{Body, post};
use super::{Message, SendError};

/// The admin's settings: host names (optionally `host:port`); empty turns the channel off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    pub allowed_hosts: Vec<String>,
}

/// Accepts a host list entry: a DNS name or IP address, optionally with `:port`.
pub fn check_host_entry(entry: &str) -> Result<String, String> {
    let entry = entry.trim().to_ascii_lowercase();
    let parsed = url::Url::parse(&format!("http://{entry}/"))
        .map_err(|_| format!("`{entry}` is not a host name"))?;
    let host = parsed.host_str().unwrap_or_default();
    let rebuilt = match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    if host.is_empty() || rebuilt != entry {
        return Err(format!(
            "`{entry}` is not a host name (give it without scheme or path)"
        ));
    }
    Ok(entry)
}

/// Accepts `raw` when it is an http(s) URL whose host (or `host:port`) is allowed.
pub fn check_target(raw: &str, settings: &WebhookSettings) -> Result<url::Url, String> {
    let url = super::check_http_url(raw)?;
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let with_port = url
        .port_or_known_default()
        .map(|p| format!("{host}:{p}"))
        .unwrap_or_else(|| host.clone());
    let allowed = settings
        .allowed_hosts
        .iter()
        .any(|a| a.eq_ignore_ascii_case(&host) || a.eq_ignore_ascii_case(&with_port));
    if !allowed {
        return Err("must be on a host the admin allowed for webhooks".into());
    }
    Ok(url)
}

/// Sends `message` to `target`; `sent_at` is RFC 3339.
pub fn send(
    settings: &WebhookSettings,
    target: &str,
    message: &Message,
    sent_at: &str,
) -> Result<(), SendError> {
    let url = check_target(target, settings).map_err(SendError::InvalidTarget)?;
    let body = json!({
        "event": message.event,
        "title": message.title,
        "message": message.body,
        "url": message.link,
        "image": message.image,
        "tags": message.tags,
        "sentAt": sent_at,
    });
    post(
        &url,
        &[("Idempotency-Key", message.idempotency_key.clone())],
        Body::Json(&body),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn host_entries_and_targets() {
        assert_eq!(
            check_host_entry(" Hooks.Example.com ").unwrap(),
            "hooks.example.com"
        );
        assert_eq!(check_host_entry("10.0.0.5:8080").unwrap(), "10.0.0.5:8080");
        assert!(check_host_entry("http://x").is_err());
        assert!(check_host_entry("x/y").is_err());
        assert!(check_host_entry("").is_err());
        let settings = WebhookSettings {
            allowed_hosts: vec!["hooks.example.com".into(), "10.0.0.5:8080".into()],
        };
        assert!(check_target("https://hooks.example.com/a", &settings).is_ok());
        assert!(check_target("http://10.0.0.5:8080/a", &settings).is_ok());
        assert!(check_target("http://10.0.0.5:8081/a", &settings).is_err());
        assert!(check_target("https://other.example.com/a", &settings).is_err());
        assert!(check_target("https://u:p@hooks.example.com/a", &settings).is_err());
        let off = WebhookSettings {
            allowed_hosts: vec![],
        };
        assert!(check_target("https://hooks.example.com/a", &off).is_err());
    }
}
