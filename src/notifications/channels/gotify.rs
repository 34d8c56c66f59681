//! Gotify: `POST {server}/message` with the user's application token.
//!
//! Request shape from Gotify's API docs (https://gotify.net/docs/pushmsg, the `/message` route
//! of https://gotify.net/api-docs) and message extras (https://gotify.net/docs/msgextras): the
//! token in the `X-Gotify-Key` header (never in the query string, where it would reach access
//! logs), JSON `{title, message, priority, extras}`, where
//! `extras["client::notification"].click.url` opens on tap and `.bigImageUrl` shows a picture.

use serde_json::json;

use super::http::{Body, post};
use super::{Message, SendError};

/// Gotify's "normal" priority: a notification with sound on Android.
const PRIORITY: u8 = 5;

/// The admin's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GotifySettings {
    pub url: String,
}

/// An application token: 1 to 128 visible ASCII characters.
pub fn check_token(token: &str) -> Result<(), String> {
    if token.is_empty() || token.len() > 128 {
        return Err("must be 1 to 128 characters".into());
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("may hold only visible ASCII characters".into());
    }
    Ok(())
}

/// Sends `message` with the application token `token`.
pub fn send(settings: &GotifySettings, token: &str, message: &Message) -> Result<(), SendError> {
    check_token(token).map_err(SendError::InvalidTarget)?;
    let base = super::check_http_url(&settings.url).map_err(SendError::InvalidSettings)?;
    let url = base
        .join(&format!("{}/message", base.path().trim_end_matches('/')))
        .map_err(|_| SendError::InvalidSettings("the server URL cannot take /message".into()))?;
    let mut notification = serde_json::Map::new();
    if let Some(link) = &message.link {
        notification.insert("click".into(), json!({ "url": link }));
    }
    if let Some(image) = &message.image {
        notification.insert("bigImageUrl".into(), json!(image));
    }
    let body = json!({
        "title": message.title,
        "message": message.body,
        "priority": PRIORITY,
        "extras": { "client::notification": notification },
    });
    post(
        &url,
        &[("X-Gotify-Key", token.to_owned())],
        Body::Json(&body),
    )
}
