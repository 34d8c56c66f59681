//! Discord: the user's own webhook URL, on Discord's hosts only.
//!
//! Request shape from Discord's "Execute Webhook" docs
//! (https://discord.com/developers/docs/resources/webhook#execute-webhook) and the embed object
//! (https://discord.com/developers/docs/resources/message#embed-object): `POST` JSON
//! `{embeds: [{title, description, url, image: {url}}]}`; `title` at most 256 characters,
//! `description` at most 4096.

use serde_json::json;

use super::http::{Body, post};
use super::{Message, SendError};

/// Discord's API base, and the default of `notifications.discord_base_url`.
pub const DEFAULT_BASE_URL: &str = "https://discord.com";

/// Hosts of Discord's own that serve webhooks.
const DISCORD_HOSTS: [&str; 6] = [
    "discord.com",
    "discordapp.com",
    "canary.discord.com",
    "ptb.discord.com",
    "canary.discordapp.com",
    "ptb.discordapp.com",
];

/// Accepts a webhook URL `…/api/webhooks/{id}/{token}` on Discord's hosts, or, when
/// `base_url` is not Discord's (tests and the demo), on exactly `base_url`'s scheme, host and port.
pub fn check_webhook_url(raw: &str, base_url: &str) -> Result<url::Url, String> {
    let url = super::check_http_url(raw)?;
    let base =
        url::Url::parse(base_url).map_err(|_| "the Discord base URL is not valid".to_string())?;
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let allowed = if base_url.trim_end_matches('/') == DEFAULT_BASE_URL {
        url.scheme() == "https" && url.port().is_none() && DISCORD_HOSTS.contains(&host.as_str())
    } else {
        url.scheme() == base.scheme()
            && Some(host.as_str()) == base.host_str()
            && url.port_or_known_default() == base.port_or_known_default()
    };
    if !allowed {
        return Err("must be a Discord webhook URL (https://discord.com/api/webhooks/...)".into());
    }
    let segments: Vec<&str> = url
        .path_segments()
        .map(Iterator::collect)
        .unwrap_or_default();
    let shape_ok = match segments.as_slice() {
        ["api", "webhooks", id, token] => !id.is_empty() && !token.is_empty(),
        // A versioned path, e.g. `/api/v10/webhooks/{id}/{token}`.
        ["api", version, "webhooks", id, token] => {
            version.starts_with('v') && !id.is_empty() && !token.is_empty()
        }
        _ => false,
    };
    if !shape_ok {
        return Err("must be a Discord webhook URL (https://discord.com/api/webhooks/...)".into());
    }
    Ok(url)
}

/// Sends `message` as one embed to the webhook `webhook_url`.
pub fn send(base_url: &str, webhook_url: &str, message: &Message) -> Result<(), SendError> {
    let url = check_webhook_url(webhook_url, base_url).map_err(SendError::InvalidTarget)?;
    let mut embed = serde_json::Map::new();
    embed.insert("title".into(), json!(super::clip(&message.title, 256)));
    embed.insert(
        "description".into(),
        json!(super::clip(&message.body, 4096)),
    );
    if let Some(link) = &message.link {
        embed.insert("url".into(), json!(link));
    }
    if let Some(image) = &message.image {
        embed.insert("image".into(), json!({ "url": image }));
    }
    let body = json!({ "embeds": [embed] });
    post(&url, &[], Body::Json(&body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_discord_hosts_and_webhook_paths() {
        let base = DEFAULT_BASE_URL;
        assert!(check_webhook_url("https://discord.com/api/webhooks/1/abc", base).is_ok());
        assert!(check_webhook_url("https://discordapp.com/api/webhooks/1/abc", base).is_ok());
        assert!(check_webhook_url("https://ptb.discord.com/api/v10/webhooks/1/abc", base).is_ok());
        assert!(check_webhook_url("https://evil.com/api/webhooks/1/abc", base).is_err());
        assert!(check_webhook_url("https://discord.com.evil.com/api/webhooks/1/a", base).is_err());
        assert!(check_webhook_url("http://discord.com/api/webhooks/1/abc", base).is_err());
        assert!(check_webhook_url("https://discord.com:8443/api/webhooks/1/a", base).is_err());
        assert!(check_webhook_url("https://discord.com/api/users/1/abc", base).is_err());
        assert!(check_webhook_url("https://discord.com/api/webhooks/1", base).is_err());
        assert!(check_webhook_url("https://x@discord.com/api/webhooks/1/a", base).is_err());
    }

    #[test]
    fn an_overridden_base_allows_only_its_own_host_and_port() {
        let base = "http://127.0.0.1:4000";
        assert!(check_webhook_url("http://127.0.0.1:4000/api/webhooks/1/a", base).is_ok());
        assert!(check_webhook_url("http://127.0.0.1:4001/api/webhooks/1/a", base).is_err());
        assert!(check_webhook_url("https://discord.com/api/webhooks/1/a", base).is_err());
    }
}
