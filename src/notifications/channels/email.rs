//! Email over SMTP with `lettre`'s blocking transport.
//!
//! One plain-text message: `Subject` is the title (lettre encodes header values, so a title from
//! an upstream cannot add headers), `To` the recipient, the body the message followed by the
//! dashboard link. `Message-ID` carries the idempotency key, so a mail client can fold repeats.
//! Shapes from RFC 5322 (message) and RFC 5321 (SMTP); the conversation is lettre's.

use std::str::FromStr;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Mailboxes};
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{SmtpTransport, Transport};

use super::{Message, SendError, clip};

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain text: only for a relay on a trusted network.
    None,
    /// Plain text upgraded with STARTTLS, which the server must offer.
    Starttls,
    /// TLS from the first byte ("implicit TLS", usually port 465).
    Tls,
}

impl Security {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "none" => Some(Self::None),
            "starttls" => Some(Self::Starttls),
            "tls" => Some(Self::Tls),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Starttls => "starttls",
            Self::Tls => "tls",
        }
    }

    /// The usual port for this security.
    pub fn default_port(self) -> u16 {
        match self {
            Self::None => 25,
            Self::Starttls => 587,
            Self::Tls => 465,
        }
    }
}

/// The admin's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    /// A secret.
    pub password: Option<String>,
    /// `addr@example.com` or `Name <addr@example.com>`.
    pub from: String,
}

/// Accepts one mailbox (`a@b.c` or `Name <a@b.c>`), refusing line breaks outright.
pub fn check_mailbox(raw: &str) -> Result<Mailbox, String> {
    if raw.contains(['\r', '\n']) {
        return Err("must not contain a line break".into());
    }
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("must be an email address".into());
    }
    // Exactly one mailbox: "a@b, c@d" parses as a list and is refused here.
    match Mailboxes::from_str(raw) {
        Ok(list) if list.iter().count() == 1 => {}
        _ => return Err("must be one email address".into()),
    }
    Mailbox::from_str(raw).map_err(|_| "must be an email address".to_string())
}

/// Builds the message without sending it (also used by tests).
pub fn build(
    settings: &EmailSettings,
    to: &str,
    message: &Message,
) -> Result<lettre::Message, SendError> {
    let to = check_mailbox(to).map_err(SendError::InvalidTarget)?;
    let from = check_mailbox(&settings.from)
        .map_err(|r| SendError::InvalidSettings(format!("from: {r}")))?;
    let mut text = message.body.clone();
    if let Some(link) = &message.link {
        text.push_str("\n\n");
        text.push_str(link);
    }
    text.push('\n');
    let key: String = message
        .idempotency_key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(100)
        .collect();
    let mut builder = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(message.title.replace(['\r', '\n'], " "))
        .header(ContentType::TEXT_PLAIN);
    if !key.is_empty() {
        builder = builder.message_id(Some(format!("<{key}@medianest>")));
    }
    builder
        .body(text)
        .map_err(|e| SendError::Other(clip(&e.to_string(), 200)))
}

/// Sends `message` to the address `to`.
pub fn send(settings: &EmailSettings, to: &str, message: &Message) -> Result<(), SendError> {
    let email = build(settings, to, message)?;
    let tls = |host: &str| {
        TlsParameters::new(host.to_owned())
            .map_err(|e| SendError::InvalidSettings(clip(&e.to_string(), 200)))
    };
    let tls = match settings.security {
        Security::None => Tls::None,
        Security::Starttls => Tls::Required(tls(&settings.host)?),
        Security::Tls => Tls::Wrapper(tls(&settings.host)?),
    };
    let mut transport = SmtpTransport::builder_dangerous(settings.host.clone())
        .port(settings.port)
        .tls(tls)
        .timeout(Some(super::SEND_TIMEOUT));
    if let Some(user) = settings.username.as_deref().filter(|u| !u.is_empty()) {
        transport = transport.credentials(Credentials::new(
            user.to_owned(),
            settings.password.clone().unwrap_or_default(),
        ));
    }
    transport
        .build()
        .send(&email)
        .map(|_| ())
        .map_err(from_smtp)
}

fn from_smtp(error: SmtpError) -> SendError {
    let text = clip(&error.to_string(), 200);
    if let Some(code) = error.status() {
        return SendError::Smtp {
            code: u16::from(code),
            message: text,
        };
    }
    if error.is_timeout() {
        return SendError::Timeout;
    }
    let connect = std::error::Error::source(&error)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable
                    | std::io::ErrorKind::AddrNotAvailable
            )
        });
    if connect {
        SendError::Connect(text)
    } else {
        SendError::Other(text)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn settings() -> EmailSettings {
        EmailSettings {
            host: "127.0.0.1".into(),
            port: 25,
            security: Security::None,
            username: None,
            password: None,
            from: "MediaNest <medianest@example.com>".into(),
        }
    }

    #[test]
    fn mailboxes_are_checked() {
        assert!(check_mailbox("a@example.com").is_ok());
        assert!(check_mailbox("Ann <a@example.com>").is_ok());
        assert!(check_mailbox("a@example.com\r\nBcc: x@y.z").is_err());
        assert!(check_mailbox("a@example.com, b@example.com").is_err());
        assert!(check_mailbox("nope").is_err());
        assert!(check_mailbox("").is_err());
    }

    #[test]
    fn a_title_cannot_add_headers() {
        let message = Message {
            title: "Dune\r\nBcc: victim@example.com".into(),
            body: "Ready".into(),
            link: Some("https://media.example.com/requests/1".into()),
            image: None,
            tags: vec![],
            event: "test".into(),
            idempotency_key: "k-1".into(),
        };
        let raw = String::from_utf8(
            build(&settings(), "a@example.com", &message)
                .unwrap()
                .formatted(),
        )
        .unwrap();
        assert!(!raw.contains("\r\nBcc:"), "{raw}");
        assert!(
            raw.contains("Subject: Dune  Bcc: victim@example.com\r\n"),
            "{raw}"
        );
        assert!(
            raw.contains("https://media.example.com/requests/1"),
            "{raw}"
        );
        assert!(raw.contains("Message-ID: <k-1@medianest>"), "{raw}");
    }
}
