//! Channel senders: one per way a notification leaves the server (email, ntfy, Gotify, Discord,
//! a webhook). Each takes a channel-neutral [`Message`], the channel's admin settings and the
//! recipient's target, sends once, and answers `Ok` or a [`SendError`] whose [`Class`] tells a
//! caller whether trying again later can help.
//!
//! Every sender blocks (SMTP, HTTP through `ureq`) and has bounded timeouts; async code reaches
//! them only through [`run`], which goes to the blocking pool behind this module's own gate.
//! Targets are checked here too (`check_*`): a user's URL may only name a host the admin (or the
//! channel itself) allows, and redirects are never followed, so a sender can never be steered at
//! an arbitrary address on the home network. This module must not know about users, events or
//! the outbox, and never logs a target or a secret.

pub mod discord;
pub mod email;
pub mod gotify;
mod http;
pub mod ntfy;
pub mod webhook;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::error::AppResult;

/// Whole-call bound of one send (connect, TLS, request, answer).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on establishing a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Sends in flight at once across all channels; more wait for a permit.
const MAX_IN_FLIGHT: usize = 4;

/// Process-wide: a flood of sends queues here instead of filling the blocking pool.
static GATE: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(MAX_IN_FLIGHT)));

/// What is sent, whatever the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub title: String,
    pub body: String,
    /// The dashboard page this is about.
    pub link: Option<String>,
    /// A poster or other picture, where the channel shows images.
    pub image: Option<String>,
    /// Short labels (ntfy shows them as tags or emoji).
    pub tags: Vec<String>,
    /// The event name, e.g. `request.available` (the webhook's `event`).
    pub event: String,
    /// The same for every attempt of one delivery, so a receiver can drop repeats.
    pub idempotency_key: String,
}

/// Whether trying the same delivery again later may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Timeouts, connection errors, 429, 5xx, SMTP 4xx.
    Transient,
    /// Other 4xx, SMTP 5xx, an invalid target or settings.
    Permanent,
}

/// Why a send failed. Texts are meant for an admin; they never hold a secret or a target URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("no answer within the time limit")]
    Timeout,
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("SMTP {code}: {message}")]
    Smtp { code: u16, message: String },
    /// The recipient's target (address, topic, token, URL) is not usable.
    #[error("invalid target: {0}")]
    InvalidTarget(String),
    /// The channel's own settings are not usable (e.g. a bad `from` address).
    #[error("invalid settings: {0}")]
    InvalidSettings(String),
    /// The exchange broke for another reason.
    #[error("{0}")]
    Other(String),
}

impl SendError {
    pub fn class(&self) -> Class {
        match self {
            Self::Timeout | Self::Connect(_) | Self::Other(_) => Class::Transient,
            Self::Status { status, .. } if *status == 429 || *status >= 500 => Class::Transient,
            Self::Smtp { code, .. } if (400..500).contains(code) => Class::Transient,
            Self::Status { .. }
            | Self::Smtp { .. }
            | Self::InvalidTarget(_)
            | Self::InvalidSettings(_) => Class::Permanent,
        }
    }
}

/// Runs a blocking send on the blocking pool, behind the channels' gate.
pub async fn run<F>(send: F) -> AppResult<Result<(), SendError>>
where
    F: FnOnce() -> Result<(), SendError> + Send + 'static,
{
    crate::blocking::run_gated(&GATE, move || Ok(send())).await
}

/// The first `max` characters of `text`, for messages shown to an admin.
fn clip(text: &str, max: usize) -> String {
    text.trim().chars().take(max).collect()
}

/// Whether `raw` parses as an http(s) URL with a host and no user or password.
pub fn check_http_url(raw: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(raw.trim())
        .map_err(|_| "must be an http:// or https:// URL".to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must start with http:// or https://".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".into());
    }
    if url.fragment().is_some() {
        return Err("must not contain a #fragment".into());
    }
    Ok(url)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sim::notify::{FakeNotify, Flavor};

    fn poster_message() -> Message {
        Message {
            title: "Amélie is available".into(),
            body: "Your request is ready.".into(),
            link: Some("https://media.example.com/#/requests/1".into()),
            image: Some("https://media.example.com/poster/1.jpg".into()),
            tags: vec!["movie".into(), "tada".into()],
            event: "request.available".into(),
            idempotency_key: "delivery-1".into(),
        }
    }

    #[tokio::test]
    async fn ntfy_sends_attach_tags_and_an_encoded_title() {
        let fake = FakeNotify::start(Flavor::Ntfy(None)).await.unwrap();
        let settings = ntfy::NtfySettings {
            url: format!("{}/", fake.url()),
            token: None,
        };
        let sent = run(move || ntfy::send(&settings, "movies", &poster_message())).await;
        assert_eq!(sent.unwrap(), Ok(()));
        let got = fake.received();
        let r = &got[0];
        assert_eq!(r.path, "/movies");
        assert_eq!(
            r.header("attach"),
            Some("https://media.example.com/poster/1.jpg")
        );
        assert_eq!(r.header("tags"), Some("movie,tada"));
        assert_eq!(
            r.header("click"),
            Some("https://media.example.com/#/requests/1")
        );
        assert_eq!(
            r.header("title"),
            Some("=?UTF-8?B?QW3DqWxpZSBpcyBhdmFpbGFibGU=?=")
        );
        assert_eq!(r.header("authorization"), None);
        assert_eq!(r.body, "Your request is ready.");
    }

    #[tokio::test]
    async fn discord_and_gotify_carry_the_poster() {
        let discord_fake = FakeNotify::start(Flavor::Discord).await.unwrap();
        let base = discord_fake.url();
        let hook = format!("{base}/api/webhooks/9/tok");
        let sent = run(move || discord::send(&base, &hook, &poster_message())).await;
        assert_eq!(sent.unwrap(), Ok(()));
        let body = discord_fake.received()[0].json();
        assert_eq!(
            body["embeds"][0]["image"]["url"],
            "https://media.example.com/poster/1.jpg"
        );

        let gotify_fake = FakeNotify::start(Flavor::Gotify(vec!["T".into()]))
            .await
            .unwrap();
        let settings = gotify::GotifySettings {
            url: gotify_fake.url(),
        };
        let sent = run(move || gotify::send(&settings, "T", &poster_message())).await;
        assert_eq!(sent.unwrap(), Ok(()));
        let body = gotify_fake.received()[0].json();
        assert_eq!(
            body["extras"]["client::notification"]["bigImageUrl"],
            "https://media.example.com/poster/1.jpg"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_transient() {
        let fake = FakeNotify::start(Flavor::Webhook).await.unwrap();
        let url = format!("{}/hook", fake.url());
        fake.shutdown().await;
        let settings = webhook::WebhookSettings {
            allowed_hosts: vec!["127.0.0.1".into()],
        };
        let sent = run(move || webhook::send(&settings, &url, &poster_message(), "t")).await;
        let error = sent.unwrap().unwrap_err();
        assert!(matches!(error, SendError::Connect(_)), "{error:?}");
        assert_eq!(error.class(), Class::Transient);
    }

    #[test]
    fn classes_follow_the_status() {
        let status = |s| SendError::Status {
            status: s,
            message: String::new(),
        };
        assert_eq!(status(500).class(), Class::Transient);
        assert_eq!(status(503).class(), Class::Transient);
        assert_eq!(status(429).class(), Class::Transient);
        assert_eq!(status(404).class(), Class::Permanent);
        assert_eq!(status(400).class(), Class::Permanent);
        let smtp = |c| SendError::Smtp {
            code: c,
            message: String::new(),
        };
        assert_eq!(smtp(451).class(), Class::Transient);
        assert_eq!(smtp(550).class(), Class::Permanent);
        assert_eq!(SendError::Timeout.class(), Class::Transient);
        assert_eq!(SendError::Connect("x".into()).class(), Class::Transient);
        assert_eq!(
            SendError::InvalidTarget("x".into()).class(),
            Class::Permanent
        );
    }

    #[test]
    fn http_urls_need_a_host_and_no_userinfo() {
        assert!(check_http_url("https://ntfy.sh").is_ok());
        assert!(check_http_url("http://10.0.0.2:8080/base").is_ok());
        assert!(check_http_url("ftp://x").is_err());
        assert!(check_http_url("https://u:p@x").is_err());
        assert!(check_http_url("https://u@x").is_err());
        assert!(check_http_url("not a url").is_err());
    }
}
