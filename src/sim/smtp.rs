//! A fake SMTP server on loopback that speaks real SMTP (RFC 5321): greeting, `EHLO`/`HELO`,
//! `STARTTLS` (RFC 3207) when started with a certificate, `AUTH PLAIN` and `AUTH LOGIN`
//! (RFC 4954), `MAIL`, `RCPT`, `DATA` with dot-unstuffing, `RSET`, `NOOP`, `QUIT`, and keeps
//! the messages it accepted (all of them, or the newest [`SmtpOptions::keep`]).
//!
//! TLS ([`SmtpTls`]): `STARTTLS` offered (optionally required: `AUTH` and `MAIL` before it are
//! answered `530`), or implicit TLS from the first byte. The certificate and key come from the
//! caller as PEM (tests generate one), so the shipped binary carries no certificate generator.
//! After the upgrade the session starts over (RFC 3207 section 4.2): the client must `EHLO`
//! again, and anything it pipelined behind `STARTTLS` is dropped.
//!
//! Faults: the next `RCPT` can be answered with a chosen reply (e.g. `550` or `451`).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::harness::{Effect, SimFault, SimServer, lock};

/// Longest line or message accepted (bytes).
const MAX_MESSAGE: usize = 1024 * 1024;
/// Commands kept in the transcript (oldest dropped first).
const MAX_TRANSCRIPT: usize = 1000;

/// One message the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The user that authenticated, if any.
    pub auth_user: Option<String>,
    /// `MAIL FROM` address.
    pub from: String,
    /// `RCPT TO` addresses.
    pub to: Vec<String>,
    /// The message as sent after `DATA` (headers and body, CRLF line ends, unstuffed).
    pub data: String,
    /// Whether the session was under TLS (after `STARTTLS`, or implicit) when it was sent.
    pub tls: bool,
}

/// How the server offers TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// `STARTTLS` is offered; with `required`, `AUTH` and `MAIL` before it answer `530`.
    Starttls { required: bool },
    /// TLS from the first byte (what port 465 does).
    Implicit,
}

/// A certificate chain and its private key, PEM encoded, and how to offer TLS.
#[derive(Debug, Clone)]
pub struct SmtpTls {
    pub cert_pem: String,
    pub key_pem: String,
    pub mode: TlsMode,
}

/// How a [`SmtpSink`] behaves.
#[derive(Debug, Clone, Default)]
pub struct SmtpOptions {
    /// With credentials, `MAIL` is refused (530) until the client authenticated as that user.
    pub credentials: Option<(String, String)>,
    /// TLS, if offered at all.
    pub tls: Option<SmtpTls>,
    /// Keep at most this many messages, dropping the oldest (`None`: all of them).
    pub keep: Option<usize>,
    /// Listen on this address (a mail server started again on its old port); default
    /// `127.0.0.1:0`.
    pub addr: Option<std::net::SocketAddr>,
}

#[derive(Debug, Default)]
struct Inner {
    received: VecDeque<ReceivedMail>,
    rcpt_faults: VecDeque<String>,
    auth_failures: u64,
    auth_attempts: u64,
    transcript: VecDeque<String>,
    keep: Option<usize>,
}

/// A running fake SMTP server; dropping it stops accepting connections.
#[derive(Debug)]
pub struct SmtpSink {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    task: JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a session needs besides its stream.
struct Context {
    inner: Arc<Mutex<Inner>>,
    credentials: Option<(String, String)>,
    tls: Option<(TlsAcceptor, TlsMode)>,
}

impl SmtpSink {
    /// Starts on `127.0.0.1:0`, without TLS. With `credentials`, `MAIL` is refused (530) until
    /// the client authenticated as that user with that password.
    pub async fn start(credentials: Option<(String, String)>) -> std::io::Result<Self> {
        Self::start_with(SmtpOptions {
            credentials,
            ..SmtpOptions::default()
        })
        .await
    }

    /// Starts on `127.0.0.1:0` with `options`; a certificate or key that does not parse is an
    /// `InvalidInput` error.
    pub async fn start_with(options: SmtpOptions) -> std::io::Result<Self> {
        let tls = match &options.tls {
            Some(tls) => Some((acceptor(&tls.cert_pem, &tls.key_pem)?, tls.mode)),
            None => None,
        };
        let listener = match options.addr {
            Some(addr) => TcpListener::bind(addr).await?,
            None => TcpListener::bind(("127.0.0.1", 0)).await?,
        };
        let addr = listener.local_addr()?;
        let inner = Arc::new(Mutex::new(Inner {
            keep: options.keep,
            ..Inner::default()
        }));
        let context = Arc::new(Context {
            inner: inner.clone(),
            credentials: options.credentials,
            tls,
        });
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let context = context.clone();
                tokio::spawn(async move {
                    if let Err(e) = session(stream, &context).await {
                        tracing::debug!(error = %e, "fake SMTP session ended");
                    }
                });
            }
        });
        Ok(Self { addr, inner, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every message kept so far, oldest first.
    pub fn received(&self) -> Vec<ReceivedMail> {
        lock(&self.inner).received.iter().cloned().collect()
    }

    /// Failed `AUTH` attempts so far.
    pub fn auth_failures(&self) -> u64 {
        lock(&self.inner).auth_failures
    }

    /// `AUTH` attempts so far, successful or not.
    pub fn auth_attempts(&self) -> u64 {
        lock(&self.inner).auth_attempts
    }

    /// The commands seen so far across sessions, oldest first: the verb (`EHLO`, `STARTTLS`,
    /// `AUTH`, `MAIL`, `RCPT`, `DATA`, ...), followed by ` (tls)` when the session was under TLS.
    /// Arguments are left out, so no password is kept.
    pub fn transcript(&self) -> Vec<String> {
        lock(&self.inner).transcript.iter().cloned().collect()
    }

    /// Answers the next `RCPT` with `reply` (e.g. `"550 5.1.1 No such user"`).
    pub fn fail_next_rcpt(&self, reply: &str) {
        lock(&self.inner).rcpt_faults.push_back(reply.to_owned());
    }
}

/// The read view of a sink: `GET /` an HTML page and `GET /messages` JSON, newest first.
/// It serves what the sink keeps; dropping it (or [`SmtpInbox::shutdown`]) stops it.
pub struct SmtpInbox {
    server: SimServer<NoFault>,
}

impl std::fmt::Debug for SmtpInbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.server.fmt_as("SmtpInbox", f)
    }
}

/// The inbox view has no faults to inject.
#[derive(Debug, Clone)]
pub enum NoFault {}

impl SimFault for NoFault {
    fn effect(self) -> Effect {
        match self {}
    }
}

impl SmtpSink {
    /// Serves the [`SmtpInbox`] for this sink on its own `127.0.0.1:0` port.
    pub async fn serve_inbox(&self) -> std::io::Result<SmtpInbox> {
        use axum::routing::get;
        let inner = self.inner.clone();
        let server = SimServer::start("SMTP sink inbox", move |_| {
            axum::Router::new()
                .route("/", get(inbox_page))
                .route("/messages", get(inbox_json))
                .with_state(inner)
        })
        .await?;
        Ok(SmtpInbox { server })
    }
}

impl SmtpInbox {
    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    pub async fn shutdown(&self) {
        self.server.shutdown().await;
    }
}

/// A received message as the inbox shows it.
fn inbox_entry(mail: &ReceivedMail) -> serde_json::Value {
    serde_json::json!({
        "from": mail.from,
        "to": mail.to,
        "subject": header(&mail.data, "Subject"),
        "tls": mail.tls,
        "authUser": mail.auth_user,
        "data": mail.data,
    })
}

async fn inbox_json(
    axum::extract::State(inner): axum::extract::State<Arc<Mutex<Inner>>>,
) -> axum::Json<serde_json::Value> {
    let messages: Vec<_> = lock(&inner)
        .received
        .iter()
        .rev()
        .map(inbox_entry)
        .collect();
    axum::Json(serde_json::json!({ "messages": messages }))
}

async fn inbox_page(
    axum::extract::State(inner): axum::extract::State<Arc<Mutex<Inner>>>,
) -> axum::response::Html<String> {
    use std::fmt::Write as _;
    let mails: Vec<ReceivedMail> = lock(&inner).received.iter().rev().cloned().collect();
    let mut page = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>MediaNest demo: mail sink</title></head><body>\n\
         <h1>Mail received by the demo's SMTP sink</h1>\n\
         <p>Newest first. JSON: <a href=\"messages\">/messages</a>.</p>\n",
    );
    if mails.is_empty() {
        page.push_str("<p>Nothing yet.</p>\n");
    }
    for mail in &mails {
        let subject = header(&mail.data, "Subject").unwrap_or_default();
        let _ = writeln!(
            page,
            "<article><h2>{}</h2><p>To {} from {}</p><pre>{}</pre></article>",
            escape(&subject),
            escape(&mail.to.join(", ")),
            escape(&mail.from),
            escape(&mail.data),
        );
    }
    page.push_str("</body></html>\n");
    axum::response::Html(page)
}

/// Text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A TLS acceptor for the PEM certificate chain and key.
fn acceptor(cert_pem: &str, key_pem: &str) -> std::io::Result<TlsAcceptor> {
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what}: {e}"))
    };
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("certificate", &e))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| invalid("key", &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("TLS versions", &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid("certificate and key", &e))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// How one conversation ended.
enum Ended {
    /// `QUIT` or the client went away.
    Done,
    /// `STARTTLS` was accepted: the caller upgrades the stream and talks on.
    Upgrade,
}

async fn session(stream: TcpStream, context: &Context) -> std::io::Result<()> {
    const GREETING: &[u8] = b"220 sim.medianest ESMTP ready\r\n";
    match &context.tls {
        Some((acceptor, TlsMode::Implicit)) => {
            let mut conn = BufReader::new(acceptor.accept(stream).await?);
            send(&mut conn, GREETING).await?;
            conversation(&mut conn, context, true).await.map(|_| ())
        }
        _ => {
            let mut conn = BufReader::new(stream);
            send(&mut conn, GREETING).await?;
            match conversation(&mut conn, context, false).await? {
                Ended::Done => Ok(()),
                Ended::Upgrade => {
                    let Some((acceptor, _)) = &context.tls else {
                        return Ok(());
                    };
                    // `into_inner` drops whatever the client pipelined after STARTTLS.
                    let mut conn = BufReader::new(acceptor.accept(conn.into_inner()).await?);
                    conversation(&mut conn, context, true).await.map(|_| ())
                }
            }
        }
    }
}

/// One conversation on `conn`, plain or under TLS; its state starts empty (also after an
/// upgrade, as RFC 3207 asks).
async fn conversation<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut BufReader<S>,
    context: &Context,
    tls: bool,
) -> std::io::Result<Ended> {
    let inner = context.inner.as_ref();
    let credentials = context.credentials.as_ref();
    let starttls = match context.tls {
        Some((_, TlsMode::Starttls { required })) if !tls => Some(required),
        _ => None,
    };
    let must_upgrade = starttls == Some(true);
    let mut authed: Option<String> = None;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    loop {
        let Some(line) = read_line(conn).await? else {
            return Ok(Ended::Done);
        };
        let upper = line.to_ascii_uppercase();
        record(inner, &upper, tls);
        let answer: String = if upper.starts_with("EHLO") {
            let mut lines = vec!["250-sim.medianest greets you", "250-8BITMIME"];
            if starttls.is_some() {
                lines.push("250-STARTTLS");
            }
            lines.push("250-AUTH PLAIN LOGIN");
            lines.push("250 SIZE 1048576");
            lines.join("\r\n")
        } else if upper.starts_with("HELO") {
            "250 sim.medianest".into()
        } else if upper == "STARTTLS" {
            if starttls.is_some() {
                send(conn, b"220 2.0.0 Ready to start TLS\r\n").await?;
                return Ok(Ended::Upgrade);
            }
            "503 5.5.1 TLS not available".into()
        } else if must_upgrade && (upper.starts_with("AUTH") || upper.starts_with("MAIL")) {
            "530 5.7.0 Must issue a STARTTLS command first".into()
        } else if upper.starts_with("AUTH PLAIN") {
            let initial = line[10..].trim().to_owned();
            let encoded = if initial.is_empty() {
                send(conn, b"334 \r\n").await?;
                read_line(conn).await?.unwrap_or_default()
            } else {
                initial
            };
            let decoded = decode(&encoded);
            let mut parts = decoded.splitn(3, '\0');
            let (_authz, user, pass) = (parts.next(), parts.next(), parts.next());
            check_auth(inner, credentials, user, pass, &mut authed)
        } else if upper.starts_with("AUTH LOGIN") {
            send(conn, b"334 VXNlcm5hbWU6\r\n").await?;
            let user = decode(&read_line(conn).await?.unwrap_or_default());
            send(conn, b"334 UGFzc3dvcmQ6\r\n").await?;
            let pass = decode(&read_line(conn).await?.unwrap_or_default());
            check_auth(inner, credentials, Some(&user), Some(&pass), &mut authed)
        } else if upper.starts_with("MAIL FROM:") {
            if credentials.is_some() && authed.is_none() {
                "530 5.7.0 Authentication required".into()
            } else {
                from = Some(address(&line[10..]));
                to.clear();
                "250 2.1.0 Ok".into()
            }
        } else if upper.starts_with("RCPT TO:") {
            if from.is_none() {
                "503 5.5.1 MAIL first".into()
            } else if let Some(fault) = lock(inner).rcpt_faults.pop_front() {
                fault
            } else {
                to.push(address(&line[8..]));
                "250 2.1.5 Ok".into()
            }
        } else if upper == "DATA" {
            if from.is_none() || to.is_empty() {
                "503 5.5.1 RCPT first".into()
            } else {
                send(conn, b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let data = read_data(conn).await?;
                let mut guard = lock(inner);
                guard.received.push_back(ReceivedMail {
                    auth_user: authed.clone(),
                    from: from.take().unwrap_or_default(),
                    to: std::mem::take(&mut to),
                    data,
                    tls,
                });
                if let Some(keep) = guard.keep {
                    while guard.received.len() > keep {
                        guard.received.pop_front();
                    }
                }
                "250 2.0.0 Ok: queued".into()
            }
        } else if upper == "RSET" {
            from = None;
            to.clear();
            "250 2.0.0 Ok".into()
        } else if upper == "NOOP" {
            "250 2.0.0 Ok".into()
        } else if upper == "QUIT" {
            send(conn, b"221 2.0.0 Bye\r\n").await?;
            return Ok(Ended::Done);
        } else {
            "502 5.5.2 Command not recognized".into()
        };
        send(conn, format!("{answer}\r\n").as_bytes()).await?;
        conn.flush().await?;
    }
}

/// Writes and flushes (a TLS stream holds writes until flushed).
async fn send<W: AsyncWrite + Unpin>(conn: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    conn.write_all(bytes).await?;
    conn.flush().await
}

/// Notes the command's verb (never its arguments) in the transcript.
fn record(inner: &Mutex<Inner>, upper: &str, tls: bool) {
    let verb = upper.split([' ', ':']).next().unwrap_or_default();
    let entry = if tls {
        format!("{verb} (tls)")
    } else {
        verb.to_owned()
    };
    let mut guard = lock(inner);
    if guard.transcript.len() >= MAX_TRANSCRIPT {
        guard.transcript.pop_front();
    }
    guard.transcript.push_back(entry);
}

fn check_auth(
    inner: &Mutex<Inner>,
    credentials: Option<&(String, String)>,
    user: Option<&str>,
    pass: Option<&str>,
    authed: &mut Option<String>,
) -> String {
    lock(inner).auth_attempts += 1;
    match (credentials, user, pass) {
        (Some((u, p)), Some(user), Some(pass)) if u == user && p == pass => {
            *authed = Some(user.to_owned());
            "235 2.7.0 Authentication successful".into()
        }
        _ => {
            lock(inner).auth_failures += 1;
            "535 5.7.8 Authentication credentials invalid".into()
        }
    }
}

/// The value of the header `name` in a received message, unfolded, with RFC 2047 encoded words
/// (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`) decoded, so tests and the inbox view read the title as
/// it was meant.
pub fn header(data: &str, name: &str) -> Option<String> {
    let head = data.split("\r\n\r\n").next().unwrap_or_default();
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    let prefix = format!("{}:", name.to_ascii_lowercase());
    let raw = unfolded.split("\r\n").find_map(|line| {
        line.to_ascii_lowercase()
            .starts_with(&prefix)
            .then(|| line[prefix.len()..].trim().to_owned())
    })?;
    let mut out = String::new();
    let mut last_encoded = false;
    for (i, word) in raw.split(' ').enumerate() {
        let decoded = decode_word(word);
        // Space between two encoded words is not part of the text (RFC 2047 section 6.2).
        if i > 0 && !(last_encoded && decoded.is_some()) {
            out.push(' ');
        }
        last_encoded = decoded.is_some();
        out.push_str(decoded.as_deref().unwrap_or(word));
    }
    Some(out)
}

/// One RFC 2047 encoded word in UTF-8, or `None` when `word` is not one.
fn decode_word(word: &str) -> Option<String> {
    let inner = word.strip_prefix("=?")?.strip_suffix("?=")?;
    let mut parts = inner.splitn(3, '?');
    let (charset, encoding, text) = (parts.next()?, parts.next()?, parts.next()?);
    if !charset.eq_ignore_ascii_case("utf-8") {
        return None;
    }
    let bytes = match encoding {
        "b" | "B" => base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?,
        "q" | "Q" => {
            let mut bytes = Vec::new();
            let mut rest = text.as_bytes();
            while let Some((&b, tail)) = rest.split_first() {
                match b {
                    b'_' => bytes.push(b' '),
                    b'=' if tail.len() >= 2 => {
                        let hex = std::str::from_utf8(&tail[..2]).ok()?;
                        bytes.push(u8::from_str_radix(hex, 16).ok()?);
                        rest = &tail[2..];
                        continue;
                    }
                    _ => bytes.push(b),
                }
                rest = tail;
            }
            bytes
        }
        _ => return None,
    };
    String::from_utf8(bytes).ok()
}

fn decode(b64: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// `<a@b.c> SIZE=123` → `a@b.c`.
fn address(rest: &str) -> String {
    let rest = rest.trim();
    let end = rest.find('>').map_or(rest.len(), |i| i + 1);
    rest[..end].trim_matches(['<', '>']).to_owned()
}

async fn read_line<R: AsyncBufReadExt + Unpin>(reader: &mut R) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = reader.read_until(b'\n', &mut buf).await?;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() > MAX_MESSAGE {
        return Err(std::io::Error::other("line too long"));
    }
    let line = String::from_utf8_lossy(&buf);
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
}

/// Reads the message after `DATA` up to the lone `.` line, removing dot-stuffing.
async fn read_data<R: AsyncBufReadExt + Unpin>(reader: &mut R) -> std::io::Result<String> {
    let mut data = String::new();
    loop {
        let Some(line) = read_line(reader).await? else {
            return Err(std::io::Error::other("connection closed inside DATA"));
        };
        if line == "." {
            return Ok(data);
        }
        data.push_str(line.strip_prefix('.').unwrap_or(&line));
        data.push_str("\r\n");
        if data.len() > MAX_MESSAGE {
            return Err(std::io::Error::other("message too large"));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::integrations::upstream::Request;
    use crate::sim::harness::testing::fetch;

    /// One full reply (the last line of a multi-line reply has a space after the code).
    async fn reply(conn: &mut BufReader<TcpStream>) -> String {
        let mut all = String::new();
        loop {
            let line = read_line(conn).await.unwrap().unwrap();
            all.push_str(&line);
            all.push('\n');
            if line.as_bytes().get(3) == Some(&b' ') {
                return all;
            }
        }
    }

    /// Sends one message in plain SMTP, checking each reply's code.
    async fn send_plain(addr: SocketAddr, subject: &str) {
        let mut conn = BufReader::new(TcpStream::connect(addr).await.unwrap());
        assert!(reply(&mut conn).await.starts_with("220"));
        for (command, code) in [
            ("EHLO test".to_owned(), "250"),
            ("MAIL FROM:<a@example.com>".to_owned(), "250"),
            ("RCPT TO:<b@example.com>".to_owned(), "250"),
            ("DATA".to_owned(), "354"),
            (format!("Subject: {subject}\r\n\r\nbody\r\n."), "250"),
            ("QUIT".to_owned(), "221"),
        ] {
            send(&mut conn, format!("{command}\r\n").as_bytes())
                .await
                .unwrap();
            let answer = reply(&mut conn).await;
            assert!(answer.starts_with(code), "{command}: {answer}");
        }
    }

    #[tokio::test]
    async fn a_bounded_sink_keeps_the_newest_and_its_inbox_shows_them_newest_first() {
        let sink = SmtpSink::start_with(SmtpOptions {
            keep: Some(2),
            ..SmtpOptions::default()
        })
        .await
        .unwrap();
        for subject in ["one", "two", "<b>three</b>"] {
            send_plain(sink.addr(), subject).await;
        }
        let subjects: Vec<_> = sink
            .received()
            .iter()
            .map(|m| header(&m.data, "Subject").unwrap())
            .collect();
        assert_eq!(subjects, ["two", "<b>three</b>"]);
        assert!(sink.received().iter().all(|m| !m.tls));
        assert_eq!(
            sink.transcript()[..6],
            ["EHLO", "MAIL", "RCPT", "DATA", "QUIT", "EHLO"]
        );

        let inbox = sink.serve_inbox().await.unwrap();
        let (status, json) = fetch(Request::get(format!("{}/messages", inbox.url()))).await;
        assert_eq!(status, 200);
        let body: serde_json::Value = serde_json::from_str(&json).unwrap();
        let listed: Vec<_> = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["subject"].as_str().unwrap())
            .collect();
        assert_eq!(listed, ["<b>three</b>", "two"]);
        let (_, page) = fetch(Request::get(format!("{}/", inbox.url()))).await;
        assert!(page.contains("<h2>&lt;b&gt;three&lt;/b&gt;</h2>"), "{page}");
        assert!(!page.contains("<b>three"), "{page}");
        inbox.shutdown().await;
    }

    #[test]
    fn headers_are_unfolded_and_encoded_words_decoded() {
        let data = "To: a@b.c\r\nSubject: =?utf-8?b?QW3DqWxpZQ==?=\r\n =?UTF-8?Q?_est_l=C3=A0?= now\r\n\r\nSubject: body";
        assert_eq!(
            header(data, "subject").as_deref(),
            Some("Amélie est là now")
        );
        assert_eq!(header(data, "To").as_deref(), Some("a@b.c"));
        assert_eq!(header(data, "Cc"), None);
        assert_eq!(
            header("Subject: =?iso-8859-1?q?x?=\r\n\r\n", "Subject").as_deref(),
            Some("=?iso-8859-1?q?x?=")
        );
    }
}
