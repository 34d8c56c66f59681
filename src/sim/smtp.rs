//! A fake SMTP server on loopback that speaks real SMTP (RFC 5321): greeting, `EHLO`/`HELO`,
//! `AUTH PLAIN` and `AUTH LOGIN` (RFC 4954), `MAIL`, `RCPT`, `DATA` with dot-unstuffing, `RSET`,
//! `NOOP`, `QUIT`, and keeps every message it accepted. STARTTLS is not offered: a client that
//! requires it fails, which is itself a useful answer.
//!
//! Faults: the next `RCPT` can be answered with a chosen reply (e.g. `550` or `451`).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::harness::lock;

/// Longest line or message accepted (bytes).
const MAX_MESSAGE: usize = 1024 * 1024;

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
}

#[derive(Debug, Default)]
struct Inner {
    received: Vec<ReceivedMail>,
    rcpt_faults: VecDeque<String>,
    auth_failures: u64,
    auth_attempts: u64,
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

impl SmtpSink {
    /// Starts on `127.0.0.1:0`. With `credentials`, `MAIL` is refused (530) until the client
    /// authenticated as that user with that password.
    pub async fn start(credentials: Option<(String, String)>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Mutex::new(Inner::default()));
        let shared = inner.clone();
        let credentials = Arc::new(credentials);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let inner = shared.clone();
                let credentials = credentials.clone();
                tokio::spawn(async move {
                    if let Err(e) = session(stream, &inner, credentials.as_ref().as_ref()).await {
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

    /// Every message accepted so far, oldest first.
    pub fn received(&self) -> Vec<ReceivedMail> {
        lock(&self.inner).received.clone()
    }

    /// Failed `AUTH` attempts so far.
    pub fn auth_failures(&self) -> u64 {
        lock(&self.inner).auth_failures
    }

    /// `AUTH` attempts so far, successful or not.
    pub fn auth_attempts(&self) -> u64 {
        lock(&self.inner).auth_attempts
    }

    /// Answers the next `RCPT` with `reply` (e.g. `"550 5.1.1 No such user"`).
    pub fn fail_next_rcpt(&self, reply: &str) {
        lock(&self.inner).rcpt_faults.push_back(reply.to_owned());
    }
}

async fn session(
    stream: TcpStream,
    inner: &Mutex<Inner>,
    credentials: Option<&(String, String)>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write
        .write_all(b"220 sim.medianest ESMTP ready\r\n")
        .await?;
    let mut authed: Option<String> = None;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    loop {
        let Some(line) = read_line(&mut reader).await? else {
            return Ok(());
        };
        let upper = line.to_ascii_uppercase();
        let answer: String = if upper.starts_with("EHLO") {
            "250-sim.medianest greets you\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 1048576"
                .into()
        } else if upper.starts_with("HELO") {
            "250 sim.medianest".into()
        } else if upper.starts_with("AUTH PLAIN") {
            let initial = line[10..].trim().to_owned();
            let encoded = if initial.is_empty() {
                write.write_all(b"334 \r\n").await?;
                read_line(&mut reader).await?.unwrap_or_default()
            } else {
                initial
            };
            let decoded = decode(&encoded);
            let mut parts = decoded.splitn(3, '\0');
            let (_authz, user, pass) = (parts.next(), parts.next(), parts.next());
            check_auth(inner, credentials, user, pass, &mut authed)
        } else if upper.starts_with("AUTH LOGIN") {
            write.write_all(b"334 VXNlcm5hbWU6\r\n").await?;
            let user = decode(&read_line(&mut reader).await?.unwrap_or_default());
            write.write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
            let pass = decode(&read_line(&mut reader).await?.unwrap_or_default());
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
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let data = read_data(&mut reader).await?;
                lock(inner).received.push(ReceivedMail {
                    auth_user: authed.clone(),
                    from: from.take().unwrap_or_default(),
                    to: std::mem::take(&mut to),
                    data,
                });
                "250 2.0.0 Ok: queued".into()
            }
        } else if upper == "RSET" {
            from = None;
            to.clear();
            "250 2.0.0 Ok".into()
        } else if upper == "NOOP" {
            "250 2.0.0 Ok".into()
        } else if upper == "QUIT" {
            write.write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else {
            "502 5.5.2 Command not recognized".into()
        };
        write.write_all(format!("{answer}\r\n").as_bytes()).await?;
    }
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
