//! The plex.tv client (UPSTREAMS.md 1.1 and 1.2): PIN sign-in, the account behind a token, the
//! account's servers, and the owner's share list.
//!
//! It only speaks plex.tv's HTTP and turns answers into plain types; what an answer means for a
//! sign-in (expired PIN, who may join) is the auth module's business. Tokens travel in the
//! `X-Plex-Token` header, never in a URL, so they can never reach a log line or an error detail.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use ureq::Body;
use ureq::http::Response;

use crate::clock::SharedClock;
use crate::error::{AppError, AppResult};
use crate::integrations::upstream::{
    Method, Request, Upstream, UpstreamFailure, UpstreamOptions, expect_success, parse_json,
    read_body, read_json, read_text, redact,
};

/// The display name in client messages ("plex.tv is temporarily unavailable.").
pub const SERVICE_NAME: &str = "plex.tv";
/// `X-Plex-Product`: shown on the Plex consent page and under "Authorized Devices".
pub const PRODUCT: &str = "MediaNest";
/// plex.tv's PIN lifetime when an answer carries neither `expiresAt` nor `expiresIn` (the
/// documented default).
const DEFAULT_PIN_SECONDS: i64 = 900;

/// Percent-encode everything but RFC 3986 unreserved characters: the auth URL's parameters live
/// in the fragment, where nothing encodes them for us.
const FRAGMENT_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A client for plex.tv. Cheap to clone.
#[derive(Clone)]
pub struct PlexTv {
    upstream: Upstream,
    base: String,
    client_id: String,
    clock: SharedClock,
}

impl fmt::Debug for PlexTv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlexTv")
            .field("base", &self.base)
            .field("client_id", &self.client_id)
            .field("upstream", &self.upstream)
            .finish()
    }
}

/// A sign-in PIN.
#[derive(Clone, PartialEq, Eq)]
pub struct Pin {
    pub id: i64,
    /// The long (`strong=true`) code for the app.plex.tv consent page.
    pub code: String,
    /// When plex.tv stops honouring the PIN, in Unix ms.
    pub expires_at: i64,
    /// Set once the user approved the sign-in. plex.tv keeps answering `null` after expiry,
    /// so compare `expires_at` with the clock instead of waiting for an error.
    pub auth_token: Option<String>,
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pin")
            .field("id", &self.id)
            .field("code", &self.code)
            .field("expires_at", &self.expires_at)
            .field("auth_token", &self.auth_token.as_ref().map(|_| "REDACTED"))
            .finish()
    }
}

impl Pin {
    /// Whether the PIN has expired at `now_ms`.
    pub fn is_expired(&self, now_ms: i64) -> bool {
        now_ms >= self.expires_at
    }
}

/// The answer to a PIN poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinState {
    /// plex.tv does not know the PIN (wrong id, or created under another client identifier).
    NotFound,
    /// The PIN, with its token once approved.
    Found(Pin),
}

/// The answer to a call made with a Plex token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOutcome<T> {
    /// plex.tv accepted the token.
    Accepted(T),
    /// plex.tv answered 401, or 422 "Invalid token" (what it answers some revoked tokens):
    /// the token is invalid or revoked. For a user's token the caller answers
    /// `PLEX_TOKEN_EXPIRED`; for the admin token it is a configuration problem.
    Rejected,
}

impl<T> TokenOutcome<T> {
    /// The value, or `rejected()` when the token was refused.
    pub fn or_error(self, rejected: impl FnOnce() -> AppError) -> AppResult<T> {
        match self {
            Self::Accepted(value) => Ok(value),
            Self::Rejected => Err(rejected()),
        }
    }

    /// The value, if the token was accepted.
    pub fn accepted(self) -> Option<T> {
        match self {
            Self::Accepted(value) => Some(value),
            Self::Rejected => None,
        }
    }
}

/// The plex.tv account behind a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlexUser {
    /// Stable numeric account id.
    pub id: i64,
    /// Stable account uuid.
    pub uuid: String,
    pub username: String,
    pub email: Option<String>,
    /// The name to show: the friendly name when set, else the title, else the username.
    pub title: String,
    /// Avatar URL.
    pub thumb: Option<String>,
}

/// A device from `/api/v2/resources` (servers, players).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlexResource {
    pub name: String,
    pub product: Option<String>,
    /// The machineIdentifier for servers.
    pub client_identifier: String,
    /// Roles such as `server`, `client`, `player`.
    pub provides: Vec<String>,
    /// Whether the token's account owns it (otherwise it is shared with that account).
    pub owned: bool,
}

impl PlexResource {
    /// Whether this is a Plex Media Server.
    pub fn is_server(&self) -> bool {
        self.provides.iter().any(|p| p == "server")
    }
}

/// A user in the owner's share list (`/api/users`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedUser {
    pub id: i64,
    pub username: String,
    pub title: Option<String>,
    pub email: Option<String>,
    pub thumb: Option<String>,
    /// The machineIdentifiers of the servers shared with this user.
    pub server_machine_ids: Vec<String>,
}

impl PlexTv {
    /// A client for plex.tv at `tv_url` (config `plex.tv_url`) with this install's
    /// `X-Plex-Client-Identifier` and the default timeout.
    pub fn new(tv_url: &str, client_id: impl Into<String>, clock: SharedClock) -> Self {
        Self::with_options(tv_url, client_id, clock, UpstreamOptions::default())
    }

    /// [`PlexTv::new`] with explicit timeout and concurrency.
    pub fn with_options(
        tv_url: &str,
        client_id: impl Into<String>,
        clock: SharedClock,
        options: UpstreamOptions,
    ) -> Self {
        Self {
            upstream: Upstream::with_clock(SERVICE_NAME, options, clock.clone()),
            base: tv_url.trim_end_matches('/').to_owned(),
            client_id: client_id.into(),
            clock,
        }
    }

    /// The `X-Plex-Client-Identifier` this client sends.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The gateway the calls go through.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// A request with the `X-Plex-*` identification headers of UPSTREAMS.md 1.1, asking for
    /// JSON.
    fn request(&self, method: Method, path_and_query: &str) -> Request {
        // Without it plex.tv answers XML, which no JSON parser reads.
        self.request_accepting(method, path_and_query, "application/json")
    }

    /// [`Self::request`] asking for `accept`.
    fn request_accepting(&self, method: Method, path_and_query: &str, accept: &str) -> Request {
        Request::new(method, format!("{}{path_and_query}", self.base))
            .header("Accept", accept)
            // The same identifier must go with the PIN create and every poll, or the PIN
            // "isn't found".
            .header("X-Plex-Client-Identifier", self.client_id.clone())
            .header("X-Plex-Product", PRODUCT)
            .header("X-Plex-Version", crate::VERSION)
            .header("X-Plex-Platform", std::env::consts::OS)
            .header("X-Plex-Device", PRODUCT)
            .header("X-Plex-Device-Name", PRODUCT)
    }

    /// Creates a strong PIN (`POST /api/v2/pins?strong=true`, 201). Never retried.
    pub async fn create_pin(&self) -> AppResult<Pin> {
        let request = self.request(Method::Post, "/api/v2/pins?strong=true");
        let clock = self.clock.clone();
        self.upstream
            .send(request, move |response| {
                let wire: PinWire = read_json(expect_success(response)?)?;
                Pin::from_wire(wire, clock.now_ms())
            })
            .await
    }

    /// Polls a PIN (`GET /api/v2/pins/{id}`); must run under the client id that created it.
    pub async fn get_pin(&self, id: i64) -> AppResult<PinState> {
        let request = self.request(Method::Get, &format!("/api/v2/pins/{id}"));
        let clock = self.clock.clone();
        self.upstream
            .send(request, move |response| {
                if response.status().as_u16() == 404 {
                    return Ok(PinState::NotFound);
                }
                let wire: PinWire = read_json(expect_success(response)?)?;
                Pin::from_wire(wire, clock.now_ms()).map(PinState::Found)
            })
            .await
    }

    /// The account behind `token` (`GET /api/v2/user`).
    pub async fn user(&self, token: &str) -> AppResult<TokenOutcome<PlexUser>> {
        let request = self
            .request(Method::Get, "/api/v2/user")
            .header("X-Plex-Token", token);
        self.upstream
            .send(request, |response| {
                with_token(response, |r| PlexUser::from_wire(read_json(r)?))
            })
            .await
    }

    /// Checks that `token` is still valid (`GET /api/v2/ping`).
    pub async fn ping(&self, token: &str) -> AppResult<TokenOutcome<()>> {
        let request = self
            .request(Method::Get, "/api/v2/ping")
            .header("X-Plex-Token", token);
        self.upstream
            .send(request, |response| {
                with_token(response, |r| {
                    read_body(r)?;
                    Ok(())
                })
            })
            .await
    }

    /// The devices the account behind `token` can reach (`GET /api/v2/resources`): its own and
    /// those shared with it. Entries without a `clientIdentifier`, or of an unexpected shape,
    /// are skipped rather than failing the whole list.
    pub async fn resources(&self, token: &str) -> AppResult<TokenOutcome<Vec<PlexResource>>> {
        let request = self
            .request(Method::Get, "/api/v2/resources?includeHttps=1")
            .header("X-Plex-Token", token);
        self.upstream
            .send(request, |response| {
                with_token(response, |r| {
                    let bytes = read_body(r)?;
                    parse_resources(&bytes)
                })
            })
            .await
    }

    /// The machineIdentifiers of the servers the account behind `token` owns.
    pub async fn owned_server_ids(&self, token: &str) -> AppResult<TokenOutcome<Vec<String>>> {
        Ok(match self.resources(token).await? {
            TokenOutcome::Accepted(resources) => TokenOutcome::Accepted(
                resources
                    .into_iter()
                    .filter(|r| r.owned && r.is_server())
                    .map(|r| r.client_identifier)
                    .collect(),
            ),
            TokenOutcome::Rejected => TokenOutcome::Rejected,
        })
    }

    /// The owner's share list (`GET /api/users`): who has access to which server.
    ///
    /// Asked for as XML, the shape python-plexapi reads (`plexapi/myplex.py`
    /// `MyPlexAccount.users`); JSON is read too when that is what comes back (plex.tv answers
    /// JSON to `Accept: application/json`).
    pub async fn shared_users(
        &self,
        admin_token: &str,
    ) -> AppResult<TokenOutcome<Vec<SharedUser>>> {
        let request = self
            .request_accepting(Method::Get, "/api/users", "application/xml")
            .header("X-Plex-Token", admin_token);
        self.upstream
            .send(request, |response| {
                with_token(response, |r| {
                    let json = r
                        .headers()
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.contains("json"));
                    let text = read_text(r)?;
                    let parsed = if json {
                        parse_shared_users_json(&text)
                    } else {
                        parse_shared_users(&text)
                    };
                    parsed.map_err(UpstreamFailure::Decode)
                })
            })
            .await
    }

    /// The app.plex.tv consent page for `code`, optionally sending the user back to
    /// `forward_url` (http or https) once they approved.
    ///
    /// Every parameter sits in the fragment, so the keys and values are percent-encoded here.
    pub fn auth_url(&self, app_url: &str, code: &str, forward_url: Option<&str>) -> String {
        let encode = |s: &str| utf8_percent_encode(s, FRAGMENT_VALUE).to_string();
        let mut url = format!(
            "{}/auth#?clientID={}&code={}&context%5Bdevice%5D%5Bproduct%5D={}",
            app_url.trim_end_matches('/'),
            encode(&self.client_id),
            encode(code),
            encode(PRODUCT),
        );
        if let Some(forward) = forward_url {
            url.push_str("&forwardUrl=");
            url.push_str(&encode(forward));
        }
        url
    }
}

/// 401 means the token was refused, and so does 422 with "Invalid token" in the body, which
/// plex.tv answers some revoked tokens (`pkkid/python-plexapi` `plexapi/myplex.py`
/// `MyPlexAccount.query` raises `Unauthorized` for both); anything else non-2xx is an upstream
/// failure.
pub(crate) fn with_token<T>(
    response: Response<Body>,
    read: impl FnOnce(Response<Body>) -> Result<T, UpstreamFailure>,
) -> Result<TokenOutcome<T>, UpstreamFailure> {
    match response.status().as_u16() {
        401 => Ok(TokenOutcome::Rejected),
        422 => {
            let text = read_text(response).unwrap_or_default();
            if text.contains("Invalid token") {
                return Ok(TokenOutcome::Rejected);
            }
            Err(UpstreamFailure::Status {
                status: 422,
                body_snippet: redact(&text.chars().take(200).collect::<String>()),
                retry_after: None,
            })
        }
        _ => read(expect_success(response)?).map(TokenOutcome::Accepted),
    }
}

/// A PIN as plex.tv sends it; every field optional so a missing one cannot fail the parse.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PinWire {
    id: Option<i64>,
    code: Option<String>,
    expires_in: Option<i64>,
    expires_at: Option<String>,
    auth_token: Option<String>,
}

impl Pin {
    fn from_wire(wire: PinWire, now_ms: i64) -> Result<Self, UpstreamFailure> {
        let (Some(id), Some(code)) = (wire.id, wire.code.filter(|c| !c.is_empty())) else {
            return Err(UpstreamFailure::Decode("PIN without id or code".into()));
        };
        let expires_at = wire
            .expires_at
            .as_deref()
            .and_then(crate::time::parse_rfc3339)
            .unwrap_or_else(|| {
                let seconds = wire.expires_in.unwrap_or(DEFAULT_PIN_SECONDS);
                now_ms.saturating_add(seconds.saturating_mul(1000))
            });
        Ok(Self {
            id,
            code,
            expires_at,
            auth_token: wire.auth_token.filter(|t| !t.is_empty()),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct UserWire {
    id: Option<i64>,
    uuid: Option<String>,
    username: Option<String>,
    title: Option<String>,
    friendly_name: Option<String>,
    email: Option<String>,
    thumb: Option<String>,
}

impl PlexUser {
    fn from_wire(wire: UserWire) -> Result<Self, UpstreamFailure> {
        let Some(id) = wire.id else {
            return Err(UpstreamFailure::Decode("user without id".into()));
        };
        let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        let title = non_empty(wire.title);
        // Managed (Plex Home) users have no username, only a title.
        let username = non_empty(wire.username)
            .or_else(|| title.clone())
            .unwrap_or_else(|| id.to_string());
        let display = non_empty(wire.friendly_name)
            .or(title)
            .unwrap_or_else(|| username.clone());
        Ok(Self {
            id,
            uuid: wire.uuid.unwrap_or_default(),
            username,
            email: non_empty(wire.email),
            title: display,
            thumb: non_empty(wire.thumb),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ResourceWire {
    name: Option<String>,
    product: Option<String>,
    client_identifier: Option<String>,
    provides: Option<String>,
    owned: Option<bool>,
}

fn parse_resources(bytes: &[u8]) -> Result<Vec<PlexResource>, UpstreamFailure> {
    // Item by item, so one device of an odd shape does not hide the others.
    let items: Vec<serde_json::Value> = parse_json(bytes)?;
    Ok(items
        .into_iter()
        .filter_map(|item| serde_json::from_value::<ResourceWire>(item).ok())
        .filter_map(|wire| {
            let client_identifier = wire.client_identifier.filter(|c| !c.is_empty())?;
            Some(PlexResource {
                name: wire.name.unwrap_or_default(),
                product: wire.product,
                client_identifier,
                provides: wire
                    .provides
                    .unwrap_or_default()
                    .split(',')
                    .map(|p| p.trim().to_owned())
                    .filter(|p| !p.is_empty())
                    .collect(),
                owned: wire.owned.unwrap_or(false),
            })
        })
        .collect())
}

/// Parses the share list as JSON: `MediaContainer.User[]` with the XML's attributes as fields
/// and `Server[]` children (ids as numbers or strings); the same users are skipped and the same
/// missing fields tolerated as in [`parse_shared_users`].
pub fn parse_shared_users_json(text: &str) -> Result<Vec<SharedUser>, String> {
    use serde_json::Value;
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("share list: {e}"))?;
    let container = doc.get("MediaContainer").unwrap_or(&doc);
    let users = container
        .get("User")
        .or_else(|| container.get("users"))
        .map_or(&[][..], |u| u.as_array().map_or(&[][..], Vec::as_slice));
    if !container.is_object() {
        return Err("share list: not a MediaContainer".into());
    }
    let text_of = |v: &Value, name: &str| {
        match v.get(name)? {
            Value::String(s) => Some(s.trim().to_owned()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
        .filter(|s| !s.is_empty())
    };
    Ok(users
        .iter()
        .filter_map(|user| {
            let id = text_of(user, "id")?.parse::<i64>().ok()?;
            let title = text_of(user, "title");
            let servers = user
                .get("Server")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            Some(SharedUser {
                id,
                username: text_of(user, "username")
                    .or_else(|| title.clone())
                    .unwrap_or_default(),
                title,
                email: text_of(user, "email"),
                thumb: text_of(user, "thumb"),
                server_machine_ids: servers
                    .iter()
                    .filter_map(|s| text_of(s, "machineIdentifier"))
                    .collect(),
            })
        })
        .collect())
}

/// Parses the XML share list: `MediaContainer/User[@id,@title,@username,@email,@thumb]/
/// Server[@machineIdentifier]`. Users without a numeric id are skipped (nothing could match
/// them); other missing attributes are tolerated.
pub fn parse_shared_users(xml: &str) -> Result<Vec<SharedUser>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("share list: {e}"))?;
    let root = doc.root_element();
    if !root.has_tag_name("MediaContainer") {
        return Err(format!(
            "share list: root element is <{}>, not <MediaContainer>",
            root.tag_name().name()
        ));
    }
    let attr = |node: roxmltree::Node<'_, '_>, name: &str| {
        node.attribute(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    Ok(root
        .children()
        .filter(|n| n.has_tag_name("User"))
        .filter_map(|user| {
            let id = attr(user, "id")?.parse::<i64>().ok()?;
            let title = attr(user, "title");
            Some(SharedUser {
                id,
                username: attr(user, "username")
                    .or_else(|| title.clone())
                    .unwrap_or_default(),
                title,
                email: attr(user, "email"),
                thumb: attr(user, "thumb"),
                server_machine_ids: user
                    .children()
                    .filter(|n| n.has_tag_name("Server"))
                    .filter_map(|server| attr(server, "machineIdentifier"))
                    .collect(),
            })
        })
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::clock::{Clock, ManualClock, SystemClock};
    use crate::error::ErrorCode;
    use crate::sim::plextv::{FakeAccount, FakePlexTv, Fault};

    const POLL: &str = "GET /api/v2/pins/{id}";
    const CREATE: &str = "POST /api/v2/pins";

    fn client(fake: &FakePlexTv, client_id: &str) -> PlexTv {
        PlexTv::new(&fake.url(), client_id, Arc::new(SystemClock))
    }

    fn short_client(fake: &FakePlexTv, timeout_ms: u64) -> PlexTv {
        PlexTv::with_options(
            &fake.url(),
            "client-a",
            Arc::new(SystemClock),
            UpstreamOptions::with_timeout_ms(timeout_ms),
        )
    }

    fn code_of(e: &AppError) -> (ErrorCode, Option<u64>) {
        match e {
            AppError::Upstream {
                code,
                service,
                retry_after,
                ..
            } => {
                assert_eq!(*service, SERVICE_NAME);
                (*code, *retry_after)
            }
            other => panic!("expected an upstream error, got {other:?}"),
        }
    }

    /// plex.tv answers some revoked tokens 422 "Invalid token" (python-plexapi
    /// `plexapi/myplex.py` `MyPlexAccount.query`): rejected like a 401, never an upstream
    /// failure, and the breaker hears an answer.
    #[tokio::test]
    async fn a_token_refused_with_422_invalid_token_is_rejected() {
        let fake = FakePlexTv::start().await.unwrap();
        let owner = FakeAccount::new(1, "owner");
        fake.add_account(owner.clone());
        fake.set_owner(owner.id, "machine-1");
        fake.revoke_token(&owner.token);
        let plex = client(&fake, "client-a");
        for _ in 0..6 {
            assert_eq!(
                plex.user(&owner.token).await.unwrap(),
                TokenOutcome::Rejected
            );
        }
        assert_eq!(
            plex.ping(&owner.token).await.unwrap(),
            TokenOutcome::Rejected
        );
        assert_eq!(
            plex.resources(&owner.token).await.unwrap(),
            TokenOutcome::Rejected
        );
        assert_eq!(
            plex.shared_users(&owner.token).await.unwrap(),
            TokenOutcome::Rejected
        );
        let breaker = plex.upstream().breaker().snapshot();
        assert_eq!(breaker.consecutive_failures, 0);
        let e = plex
            .user(&owner.token)
            .await
            .unwrap()
            .or_error(|| AppError::new(ErrorCode::PlexTokenExpired))
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::PlexTokenExpired);
        assert_eq!(fake.requests("GET /api/v2/user"), 7);
    }

    /// Any other 422 is not about the token.
    #[test]
    fn only_an_invalid_token_422_is_a_rejection() {
        let answer = |body: &str| {
            ureq::http::Response::builder()
                .status(422)
                .body(Body::builder().data(body.to_owned()))
                .unwrap()
        };
        let read = |_: Response<Body>| Ok(());
        assert_eq!(
            with_token(
                answer(r#"{"errors":[{"code":1001,"message":"Invalid token","status":422}]}"#),
                read
            ),
            Ok(TokenOutcome::Rejected)
        );
        assert!(matches!(
            with_token(answer(r#"{"errors":[{"message":"Unprocessable"}]}"#), read),
            Err(UpstreamFailure::Status { status: 422, .. })
        ));
    }

    /// The share list is asked for as XML; JSON is read too when it comes.
    #[tokio::test]
    async fn the_share_list_is_asked_as_xml_and_read_as_json_too() {
        let fake = FakePlexTv::start().await.unwrap();
        let owner = FakeAccount::new(1, "owner");
        let mut guest = FakeAccount::new(2, "guest");
        guest.email = None;
        fake.add_account(owner.clone());
        fake.add_account(guest.clone());
        fake.set_owner(owner.id, "machine-1");
        fake.share(guest.id, "machine-1");
        let plex = client(&fake, "client-a");
        let users = plex
            .shared_users(&owner.token)
            .await
            .unwrap()
            .accepted()
            .unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].id, 2);
        assert_eq!(users[0].server_machine_ids, vec!["machine-1".to_owned()]);

        let json = crate::sim::harness::testing::fetch(
            Request::get(format!("{}/api/users", fake.url()))
                .header("Accept", "application/json")
                .header("X-Plex-Token", owner.token.clone()),
        )
        .await
        .1;
        let from_json = parse_shared_users_json(&json).unwrap();
        assert_eq!(from_json, users);
        assert_eq!(
            parse_shared_users_json(
                r#"{"MediaContainer":{"User":[{"id":"5","title":"T",
                "Server":[{"machineIdentifier":"m"}]},{"title":"no id"}]}}"#
            )
            .unwrap(),
            vec![SharedUser {
                id: 5,
                username: "T".into(),
                title: Some("T".into()),
                email: None,
                thumb: None,
                server_machine_ids: vec!["m".into()],
            }]
        );
        assert!(parse_shared_users_json("[1,2]").is_err());
        assert!(parse_shared_users_json("<xml/>").is_err());
    }

    #[tokio::test]
    async fn pin_sign_in_flow_end_to_end() {
        let fake = FakePlexTv::start().await.unwrap();
        let owner = FakeAccount::new(1, "owner");
        let alice = FakeAccount::new(13692262, "alice");
        let mut stranger = FakeAccount::new(77, "stranger");
        stranger.email = None;
        fake.add_account(owner.clone());
        fake.add_account(alice.clone());
        fake.add_account(stranger.clone());
        fake.set_owner(owner.id, "machine-1");
        fake.share(alice.id, "machine-1");
        fake.share(stranger.id, "machine-other");

        let plex = client(&fake, "client-a");
        let pin = plex.create_pin().await.unwrap();
        assert!(pin.code.len() >= 20, "strong code: {}", pin.code);
        assert!(pin.auth_token.is_none());
        let now = SystemClock.now_ms();
        assert!(pin.expires_at > now + 1_700_000 && pin.expires_at <= now + 1_800_000);

        let PinState::Found(pending) = plex.get_pin(pin.id).await.unwrap() else {
            panic!("pin not found")
        };
        assert_eq!(pending.auth_token, None);

        assert!(fake.authorize_pin(pin.id, &alice.token));
        let PinState::Found(done) = plex.get_pin(pin.id).await.unwrap() else {
            panic!("pin not found")
        };
        let token = done.auth_token.clone().unwrap();
        assert_eq!(token, alice.token);
        assert!(
            !format!("{done:?}").contains(&token),
            "Debug hides the token"
        );

        let user = plex.user(&token).await.unwrap().accepted().unwrap();
        assert_eq!(user.id, alice.id);
        assert_eq!(user.uuid, alice.uuid);
        assert_eq!(user.username, "alice");
        assert_eq!(user.email.as_deref(), Some("alice@example.com"));
        assert!(user.thumb.is_some());

        let shares = plex
            .shared_users(&owner.token)
            .await
            .unwrap()
            .accepted()
            .unwrap();
        let a = shares.iter().find(|u| u.id == alice.id).unwrap();
        assert_eq!(a.server_machine_ids, vec!["machine-1".to_owned()]);
        let s = shares.iter().find(|u| u.id == stranger.id).unwrap();
        assert_eq!(s.email, None);
        assert_eq!(s.server_machine_ids, vec!["machine-other".to_owned()]);

        // Only the owner may read the share list.
        assert_eq!(
            plex.shared_users(&alice.token).await.unwrap(),
            TokenOutcome::Rejected
        );
        assert_eq!(
            plex.owned_server_ids(&owner.token).await.unwrap(),
            TokenOutcome::Accepted(vec!["machine-1".to_owned()])
        );
        let alice_servers = plex
            .resources(&alice.token)
            .await
            .unwrap()
            .accepted()
            .unwrap();
        assert!(
            alice_servers
                .iter()
                .any(|r| r.client_identifier == "machine-1" && !r.owned && r.is_server())
        );
        assert_eq!(
            plex.ping(&alice.token).await.unwrap(),
            TokenOutcome::Accepted(())
        );
        assert_eq!(fake.requests(POLL), 2);
        assert_eq!(fake.requests(CREATE), 1);
    }

    #[tokio::test]
    async fn a_bad_token_is_rejected_not_an_error() {
        let fake = FakePlexTv::start().await.unwrap();
        let plex = client(&fake, "client-a");
        let outcome = plex.user("not-a-token").await.unwrap();
        assert_eq!(outcome, TokenOutcome::Rejected);
        let e = outcome
            .or_error(|| AppError::new(ErrorCode::PlexTokenExpired))
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::PlexTokenExpired);
        assert_eq!(
            plex.ping("not-a-token").await.unwrap(),
            TokenOutcome::Rejected
        );
    }

    #[tokio::test]
    async fn unknown_pin_is_not_found() {
        let fake = FakePlexTv::start().await.unwrap();
        let plex = client(&fake, "client-a");
        assert_eq!(plex.get_pin(424242).await.unwrap(), PinState::NotFound);
        assert_eq!(fake.requests(POLL), 1, "a 404 is an answer, not retried");
    }

    #[tokio::test]
    async fn a_pin_is_only_visible_to_its_client_id() {
        let fake = FakePlexTv::start().await.unwrap();
        let pin = client(&fake, "client-a").create_pin().await.unwrap();
        let other = client(&fake, "client-b");
        assert_eq!(other.get_pin(pin.id).await.unwrap(), PinState::NotFound);
        assert!(matches!(
            client(&fake, "client-a").get_pin(pin.id).await.unwrap(),
            PinState::Found(_)
        ));
    }

    #[tokio::test]
    async fn an_expired_pin_still_answers_with_a_null_token() {
        let clock = Arc::new(ManualClock::new(1_746_100_800_000));
        let fake = FakePlexTv::start_with_clock(clock.clone()).await.unwrap();
        let alice = FakeAccount::new(5, "alice");
        fake.add_account(alice.clone());
        fake.set_pin_lifetime(60);
        let plex = PlexTv::new(&fake.url(), "client-a", clock.clone());
        let pin = plex.create_pin().await.unwrap();
        assert_eq!(pin.expires_at, 1_746_100_800_000 + 60_000);
        clock.advance(61_000);
        assert!(pin.is_expired(clock.now_ms()));
        assert!(!fake.authorize_pin(pin.id, &alice.token), "too late");
        let PinState::Found(polled) = plex.get_pin(pin.id).await.unwrap() else {
            panic!("plex.tv keeps answering 200 after expiry")
        };
        assert_eq!(polled.auth_token, None);
    }

    #[tokio::test]
    async fn plex_tv_down_is_service_unavailable() {
        let fake = FakePlexTv::start().await.unwrap();
        let plex = client(&fake, "client-a");
        fake.shutdown().await;
        let e = plex.create_pin().await.unwrap_err();
        assert_eq!(code_of(&e), (ErrorCode::ServiceUnavailable, None));
        assert_eq!(e.code().status().as_u16(), 503);
        let e = plex.get_pin(1).await.unwrap_err();
        assert_eq!(code_of(&e).0, ErrorCode::ServiceUnavailable);
    }

    #[tokio::test]
    async fn hanging_past_the_timeout_is_upstream_timeout() {
        let fake = FakePlexTv::start().await.unwrap();
        fake.set_latency(Duration::from_secs(5));
        let plex = short_client(&fake, 300);
        let began = Instant::now();
        let e = plex.get_pin(1).await.unwrap_err();
        let took = began.elapsed();
        assert_eq!(code_of(&e), (ErrorCode::UpstreamTimeout, None));
        assert_eq!(e.code().status().as_u16(), 504);
        assert!(took >= Duration::from_millis(250), "{took:?}");
        assert!(took < Duration::from_millis(1000), "{took:?}");
        fake.shutdown().await;
    }

    #[tokio::test]
    async fn a_500_is_upstream_error_and_not_retried() {
        let fake = FakePlexTv::start().await.unwrap();
        fake.fail_next(5, Fault::Status(500));
        let plex = client(&fake, "client-a");
        let e = plex.get_pin(1).await.unwrap_err();
        assert_eq!(code_of(&e), (ErrorCode::UpstreamError, None));
        assert_eq!(e.code().status().as_u16(), 502);
        assert_eq!(fake.requests(POLL), 1);
    }

    #[tokio::test]
    async fn a_get_is_retried_at_most_twice_on_503() {
        let fake = FakePlexTv::start().await.unwrap();
        fake.fail_next(10, Fault::Status(503));
        let plex = client(&fake, "client-a");
        let e = plex.get_pin(1).await.unwrap_err();
        assert_eq!(code_of(&e), (ErrorCode::UpstreamError, None));
        assert_eq!(fake.requests(POLL), 3, "one try and two retries");
    }

    #[tokio::test]
    async fn a_retried_get_can_succeed() {
        let fake = FakePlexTv::start().await.unwrap();
        let plex = client(&fake, "client-a");
        let pin = plex.create_pin().await.unwrap();
        fake.fail_next(1, Fault::Status(502));
        assert!(matches!(
            plex.get_pin(pin.id).await.unwrap(),
            PinState::Found(_)
        ));
        assert_eq!(fake.requests(POLL), 2);
    }

    #[tokio::test]
    async fn retries_stay_inside_the_deadline() {
        let fake = FakePlexTv::start().await.unwrap();
        fake.fail_next(10, Fault::Status(504));
        // 250 ms leaves no room for a 160-240 ms backoff plus a useful attempt.
        let plex = short_client(&fake, 250);
        let began = Instant::now();
        let e = plex.get_pin(1).await.unwrap_err();
        assert!(began.elapsed() < Duration::from_millis(600));
        // The 504 itself, or on a very slow machine the deadline; never a second attempt.
        assert!(matches!(
            code_of(&e).0,
            ErrorCode::UpstreamError | ErrorCode::UpstreamTimeout
        ));
        assert_eq!(fake.requests(POLL), 1);
    }

    #[tokio::test]
    async fn a_post_is_never_retried() {
        let fake = FakePlexTv::start().await.unwrap();
        fake.fail_next(10, Fault::Status(503));
        let plex = client(&fake, "client-a");
        let e = plex.create_pin().await.unwrap_err();
        assert_eq!(code_of(&e).0, ErrorCode::UpstreamError);
        assert_eq!(fake.requests(CREATE), 1);
    }

    #[tokio::test]
    async fn rate_limiting_is_unavailable_with_retry_after() {
        let fake = FakePlexTv::start().await.unwrap();
        let plex = client(&fake, "client-a");
        fake.fail_next(
            1,
            Fault::RateLimited {
                retry_after: Some(7),
            },
        );
        let e = plex.get_pin(1).await.unwrap_err();
        assert_eq!(code_of(&e), (ErrorCode::ServiceUnavailable, Some(7)));
        // plex.tv itself usually sends no Retry-After.
        fake.fail_next(1, Fault::RateLimited { retry_after: None });
        let e = plex.create_pin().await.unwrap_err();
        assert_eq!(code_of(&e), (ErrorCode::ServiceUnavailable, None));
        assert_eq!(fake.requests(POLL), 1, "429 is not retried");
    }

    #[tokio::test]
    async fn bad_request_and_garbage_are_upstream_errors() {
        let fake = FakePlexTv::start().await.unwrap();
        let plex = client(&fake, "client-a");
        fake.fail_next(1, Fault::BadRequest);
        let e = plex.create_pin().await.unwrap_err();
        assert_eq!(code_of(&e).0, ErrorCode::UpstreamError);
        assert!(e.to_string().contains("400"), "{e}");

        fake.fail_next(1, Fault::Garbage);
        let e = plex.create_pin().await.unwrap_err();
        assert_eq!(code_of(&e).0, ErrorCode::UpstreamError);
        let alice = FakeAccount::new(2, "alice");
        fake.add_account(alice.clone());
        fake.fail_next(1, Fault::Garbage);
        let e = plex.user(&alice.token).await.unwrap_err();
        assert_eq!(code_of(&e).0, ErrorCode::UpstreamError);
    }

    #[tokio::test]
    async fn tokens_never_reach_error_details() {
        let fake = FakePlexTv::start().await.unwrap();
        let alice = FakeAccount::new(2, "alice");
        fake.add_account(alice.clone());
        let plex = client(&fake, "client-a");
        fake.fail_next(1, Fault::Status(500));
        let e = plex.user(&alice.token).await.unwrap_err();
        assert!(!format!("{e} {e:?}").contains(&alice.token));
    }

    #[test]
    fn missing_optional_fields_parse() {
        let pin: PinWire = serde_json::from_str(r#"{"id":7,"code":"abcd"}"#).unwrap();
        let pin = Pin::from_wire(pin, 1_000).unwrap();
        assert_eq!(pin.expires_at, 1_000 + DEFAULT_PIN_SECONDS * 1000);
        assert_eq!(pin.auth_token, None);

        let pin: PinWire = serde_json::from_str(
            r#"{"id":7,"code":"abcd","expiresIn":1800,"expiresAt":"garbage","authToken":null,"location":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(Pin::from_wire(pin, 0).unwrap().expires_at, 1_800_000);

        let pin: PinWire = serde_json::from_str(
            r#"{"id":7,"code":"abcd","expiresIn":1800,"expiresAt":"2025-05-01T12:30:00Z"}"#,
        )
        .unwrap();
        assert_eq!(
            Pin::from_wire(pin, 0).unwrap().expires_at,
            1_746_102_600_000
        );

        let no_id: PinWire = serde_json::from_str(r#"{"code":"abcd"}"#).unwrap();
        assert!(Pin::from_wire(no_id, 0).is_err());

        let user: UserWire = serde_json::from_str(r#"{"id":3,"title":"Kid"}"#).unwrap();
        let user = PlexUser::from_wire(user).unwrap();
        assert_eq!(user.username, "Kid");
        assert_eq!(user.title, "Kid");
        assert_eq!(user.email, None);
        assert_eq!(user.thumb, None);
        assert_eq!(user.uuid, "");

        let user: UserWire = serde_json::from_str(
            r#"{"id":3,"uuid":"u","username":"bob","friendlyName":"Bob B.","email":"","locale":null}"#,
        )
        .unwrap();
        let user = PlexUser::from_wire(user).unwrap();
        assert_eq!(
            (user.username.as_str(), user.title.as_str()),
            ("bob", "Bob B.")
        );
        assert_eq!(user.email, None);

        let resources = parse_resources(
            br#"[{"name":"S","clientIdentifier":"m1","provides":"server","owned":true},
                 {"name":"Web","clientIdentifier":"w","provides":"client,player"},
                 {"name":"no id","provides":"server"},
                 {"name":"odd","clientIdentifier":"m2","owned":"1"},
                 "not an object"]"#,
        )
        .unwrap();
        assert_eq!(resources.len(), 2);
        assert!(resources[0].is_server() && resources[0].owned);
        assert!(!resources[1].is_server() && !resources[1].owned);
        assert_eq!(resources[1].provides, vec!["client", "player"]);
        assert!(parse_resources(b"{}").is_err());
    }

    #[test]
    fn share_list_xml_parses_with_missing_attributes() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<MediaContainer friendlyName="myPlex" identifier="com.plexapp.plugins.myplex" size="4">
  <User id="101" title="Alice" username="alice" email="alice@example.com" thumb="https://plex.tv/a.png" restricted="0">
    <Server id="1" serverId="9" machineIdentifier="machine-1" name="Home" owned="1"/>
    <Server id="2" machineIdentifier="machine-2" name="Cabin"/>
  </User>
  <User id="102" title="Managed Kid" email="" >
    <Server name="no machine id"/>
  </User>
  <User title="no id"><Server machineIdentifier="machine-1"/></User>
  <User id="abc" username="bad id"/>
</MediaContainer>"#;
        let users = parse_shared_users(xml).unwrap();
        assert_eq!(
            users,
            vec![
                SharedUser {
                    id: 101,
                    username: "alice".into(),
                    title: Some("Alice".into()),
                    email: Some("alice@example.com".into()),
                    thumb: Some("https://plex.tv/a.png".into()),
                    server_machine_ids: vec!["machine-1".into(), "machine-2".into()],
                },
                SharedUser {
                    id: 102,
                    username: "Managed Kid".into(),
                    title: Some("Managed Kid".into()),
                    email: None,
                    thumb: None,
                    server_machine_ids: vec![],
                },
            ]
        );
        assert_eq!(
            parse_shared_users(r#"<MediaContainer size="0"/>"#).unwrap(),
            vec![]
        );
        assert!(parse_shared_users("{\"users\":[]}").is_err());
        assert!(parse_shared_users("<html><body>401</body></html>").is_err());
    }

    #[test]
    fn auth_url_percent_encodes_the_fragment() {
        let plex = PlexTv::new(
            "https://plex.tv/",
            "6f0c1f9e-2b8f client&id",
            Arc::new(SystemClock),
        );
        assert_eq!(
            plex.auth_url("https://app.plex.tv/", "3patfx1a78", None),
            "https://app.plex.tv/auth#?clientID=6f0c1f9e-2b8f%20client%26id&code=3patfx1a78\
             &context%5Bdevice%5D%5Bproduct%5D=MediaNest"
        );
        assert!(
            plex.auth_url(
                "https://app.plex.tv",
                "c",
                Some("https://nest.example/login?x=1")
            )
            .ends_with("&forwardUrl=https%3A%2F%2Fnest.example%2Flogin%3Fx%3D1")
        );
    }
}
