//! ntfy: `POST {server}/{topic}` with the message as the body.
//!
//! Request shape from ntfy's publishing docs (https://docs.ntfy.sh/publish/): headers `Title`,
//! `Tags` (comma-separated), `Click` (the URL opened on tap), `Attach` (an attachment URL, shown
//! as a picture), and `Authorization: Bearer <access token>` for protected servers. Header values
//! that are not ASCII are sent as RFC 2047 encoded words, which ntfy decodes.

use base64::Engine as _;

use super::http::{Body, post};
use super::{Message, SendError};

/// The public server, used when the admin leaves the URL empty.
pub const DEFAULT_URL: &str = "https://ntfy.sh";

/// The admin's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NtfySettings {
    pub url: String,
    /// Access token (a secret).
    pub token: Option<String>,
}

/// Accepts a topic as ntfy does: 1 to 64 of `A-Z a-z 0-9 _ -`.
pub fn check_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() || topic.len() > 64 {
        return Err("must be 1 to 64 characters".into());
    }
    if !topic
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err("may hold only letters, digits, - and _".into());
    }
    Ok(())
}

/// Sends `message` to `topic` on the admin's server.
pub fn send(settings: &NtfySettings, topic: &str, message: &Message) -> Result<(), SendError> {
    check_topic(topic).map_err(SendError::InvalidTarget)?;
    let base = super::check_http_url(&settings.url).map_err(SendError::InvalidSettings)?;
    let url = base
        .join(&format!("{}/{topic}", base.path().trim_end_matches('/')))
        .map_err(|_| SendError::InvalidSettings("the server URL cannot take a topic".into()))?;
    let mut headers = vec![("Title", header_text(&message.title))];
    if !message.tags.is_empty() {
        headers.push(("Tags", header_text(&message.tags.join(","))));
    }
    if let Some(link) = &message.link {
        headers.push(("Click", link.clone()));
    }
    if let Some(image) = &message.image {
        headers.push(("Attach", image.clone()));
    }
    if let Some(token) = settings.token.as_deref().filter(|t| !t.is_empty()) {
        headers.push(("Authorization", format!("Bearer {token}")));
    }
    post(&url, &headers, Body::Text(&message.body))
}

/// ASCII text as is; anything else as one RFC 2047 `=?UTF-8?B?...?=` word. Line breaks become
/// spaces either way.
pub fn header_text(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    if flat.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        flat
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(flat.as_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_checked() {
        assert!(check_topic("family_movies-1").is_ok());
        assert!(check_topic("").is_err());
        assert!(check_topic("a/b").is_err());
        assert!(check_topic("a b").is_err());
        assert!(check_topic(&"a".repeat(65)).is_err());
    }

    #[test]
    fn non_ascii_headers_are_encoded_words() {
        assert_eq!(header_text("Dune"), "Dune");
        assert_eq!(header_text("a\r\nb"), "a  b");
        assert_eq!(header_text("Amélie"), "=?UTF-8?B?QW3DqWxpZQ==?=");
    }
}
