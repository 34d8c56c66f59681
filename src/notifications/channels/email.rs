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
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
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
    /// One more certificate authority to trust (PEM), besides the public roots: a mail server
    /// with a private CA (the tests' generated certificate). The server's name is still checked;
    /// there is no "accept any certificate".
    pub extra_root_pem: Option<String>,
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
    let invalid = |e: SmtpError| SendError::InvalidSettings(clip(&e.to_string(), 200));
    let tls = |host: &str| {
        let mut builder = TlsParameters::builder(host.to_owned());
        if let Some(pem) = &settings.extra_root_pem {
            // Text without a certificate would parse as none and silently trust nothing more.
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(SendError::InvalidSettings(
                    "the extra CA is not a PEM certificate".into(),
                ));
            }
            builder = builder
                .add_root_certificate(Certificate::from_pem(pem.as_bytes()).map_err(invalid)?);
        }
        builder.build().map_err(invalid)
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
    use crate::sim::smtp::{SmtpOptions, SmtpSink, SmtpTls, TlsMode, header};

    fn settings() -> EmailSettings {
        EmailSettings {
            host: "127.0.0.1".into(),
            port: 25,
            security: Security::None,
            username: None,
            password: None,
            from: "MediaNest <medianest@example.com>".into(),
            extra_root_pem: None,
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

    /// A certificate for 127.0.0.1 made now: (certificate PEM, key PEM). Self-signed, so the
    /// certificate is its own CA.
    fn test_certificate() -> (String, String) {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        (made.cert.pem(), made.signing_key.serialize_pem())
    }

    async fn tls_sink(mode: TlsMode, cert: &(String, String)) -> SmtpSink {
        SmtpSink::start_with(SmtpOptions {
            credentials: Some(("mailer".into(), "s3cret".into())),
            tls: Some(SmtpTls {
                cert_pem: cert.0.clone(),
                key_pem: cert.1.clone(),
                mode,
            }),
            ..SmtpOptions::default()
        })
        .await
        .unwrap()
    }

    fn tls_settings(sink: &SmtpSink, security: Security, root: Option<&str>) -> EmailSettings {
        EmailSettings {
            port: sink.addr().port(),
            security,
            username: Some("mailer".into()),
            password: Some("s3cret".into()),
            extra_root_pem: root.map(str::to_owned),
            ..settings()
        }
    }

    fn available() -> Message {
        Message {
            title: "Amélie est disponible".into(),
            body: "Your request is ready to watch.".into(),
            link: Some("https://media.example.com/requests/42".into()),
            image: None,
            tags: vec![],
            event: "request.available".into(),
            idempotency_key: "d-42".into(),
        }
    }

    async fn send_now(settings: EmailSettings, to: &str) -> Result<(), SendError> {
        let to = to.to_owned();
        tokio::task::spawn_blocking(move || send(&settings, &to, &available()))
            .await
            .unwrap()
    }

    /// Position of `entry` in the transcript (panics with the transcript when absent).
    fn at(transcript: &[String], entry: &str) -> usize {
        transcript
            .iter()
            .position(|e| e == entry)
            .unwrap_or_else(|| panic!("no {entry} in {transcript:?}"))
    }

    #[tokio::test]
    async fn starttls_with_the_trusted_test_ca_upgrades_before_auth_and_delivers() {
        let cert = test_certificate();
        let sink = tls_sink(TlsMode::Starttls { required: true }, &cert).await;
        let settings = tls_settings(&sink, Security::Starttls, Some(&cert.0));
        send_now(settings, "ann@example.com").await.unwrap();

        let transcript = sink.transcript();
        assert!(at(&transcript, "STARTTLS") < at(&transcript, "AUTH (tls)"));
        assert!(at(&transcript, "EHLO") < at(&transcript, "STARTTLS"));
        assert!(at(&transcript, "STARTTLS") < at(&transcript, "EHLO (tls)"));
        assert!(
            !transcript.iter().any(|e| e == "AUTH" || e == "MAIL"),
            "nothing sensitive before the upgrade: {transcript:?}"
        );
        let mails = sink.received();
        assert_eq!(mails.len(), 1);
        let mail = &mails[0];
        assert!(mail.tls);
        assert_eq!(mail.auth_user.as_deref(), Some("mailer"));
        assert_eq!(mail.to, ["ann@example.com"]);
        assert!(
            mail.data.contains("\r\nTo: ann@example.com\r\n")
                || mail.data.starts_with("To: ann@example.com\r\n"),
            "{}",
            mail.data
        );
        assert_eq!(
            header(&mail.data, "Subject").as_deref(),
            Some("Amélie est disponible"),
            "{}",
            mail.data
        );
        assert!(
            mail.data
                .contains("\r\nhttps://media.example.com/requests/42\r\n"),
            "{}",
            mail.data
        );
    }

    #[tokio::test]
    async fn starttls_refuses_a_certificate_it_was_not_told_to_trust() {
        let cert = test_certificate();
        let sink = tls_sink(TlsMode::Starttls { required: true }, &cert).await;
        let settings = tls_settings(&sink, Security::Starttls, None);
        let error = send_now(settings, "ann@example.com").await.unwrap_err();
        assert!(matches!(error, SendError::Other(_)), "{error:?}");
        assert!(sink.received().is_empty());
        assert_eq!(
            sink.auth_attempts(),
            0,
            "no password over an untrusted link"
        );
    }

    /// A server that requires STARTTLS answers `530 5.7.0` to a client that does not upgrade.
    /// That is permanent: the same settings fail the same way every time, and only the admin
    /// choosing `starttls` fixes it; retrying for a day would only hide the mistake.
    #[tokio::test]
    async fn a_plain_send_to_a_server_that_requires_starttls_fails_permanently() {
        let cert = test_certificate();
        let sink = tls_sink(TlsMode::Starttls { required: true }, &cert).await;
        let settings = tls_settings(&sink, Security::None, Some(&cert.0));
        let error = send_now(settings, "ann@example.com").await.unwrap_err();
        assert!(
            matches!(error, SendError::Smtp { code: 530, .. }),
            "{error:?}"
        );
        assert_eq!(error.class(), super::super::Class::Permanent);
        assert!(sink.received().is_empty());
        assert!(!sink.transcript().iter().any(|e| e.ends_with("(tls)")));
    }

    #[test]
    fn an_extra_ca_that_is_no_certificate_is_a_settings_error() {
        for pem in [
            "not a certificate",
            "-----BEGIN CERTIFICATE-----\nbm9wZQ==\n",
        ] {
            let settings = EmailSettings {
                security: Security::Starttls,
                extra_root_pem: Some(pem.into()),
                ..settings()
            };
            let error = send(&settings, "ann@example.com", &available()).unwrap_err();
            assert!(matches!(error, SendError::InvalidSettings(_)), "{error:?}");
        }
    }

    #[tokio::test]
    async fn implicit_tls_with_the_trusted_test_ca_delivers() {
        let cert = test_certificate();
        let sink = tls_sink(TlsMode::Implicit, &cert).await;
        let settings = tls_settings(&sink, Security::Tls, Some(&cert.0));
        send_now(settings, "ann@example.com").await.unwrap();
        let mails = sink.received();
        assert_eq!(mails.len(), 1);
        assert!(mails[0].tls);
        assert_eq!(mails[0].auth_user.as_deref(), Some("mailer"));
        assert_eq!(
            at(&sink.transcript(), "AUTH (tls)"),
            1,
            "{:?}",
            sink.transcript()
        );
    }
}
