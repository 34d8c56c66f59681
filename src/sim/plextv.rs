//! A fake plex.tv (UPSTREAMS.md 1.2): PIN sign-in, `/api/v2/user`, `/api/v2/resources`, the
//! share list `/api/users` and `/api/v2/ping`, with plex.tv's quirks: `400 errors[]` without a
//! client identifier, PINs visible only to the client identifier that created them, `200` with
//! `authToken: null` after a PIN expired, XML unless the client asks for JSON (the share list
//! too), and `422` "Invalid token" instead of `401` for some revoked tokens
//! (`pkkid/python-plexapi` `plexapi/myplex.py` `MyPlexAccount.query` treats a 422 whose body
//! says "Invalid token" as `Unauthorized`).
//!
//! A test or the demo steers it through [`FakePlexTv`]'s methods: accounts, the owner and their
//! server, shares, approving a PIN "on app.plex.tv", the PIN lifetime, injected failures and
//! latency, and per-endpoint request counts. State sits behind a `std` mutex that is never held
//! across an `.await`.
//!
//! For the demo it also stands in for app.plex.tv's approval page: `GET /auth` answers a
//! self-contained page listing the accounts, whose script reads the PIN `code` from the URL
//! fragment MediaNest's `authUrl` carries and approves it through `POST /demo/approve`
//! (`{"code", "accountId"}`), so the PIN sign-in works end to end in a browser.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::harness::{self, Effect, SimFault, SimServer, Traffic};
use super::plex::{escape, html_error, random_text, wants_json};
use crate::clock::{SharedClock, SystemClock};

/// PIN ids start here, so they look like plex.tv's.
const FIRST_PIN_ID: i64 = 1_272_322_473;
/// plex.tv's usual `expiresIn` for a new PIN.
const DEFAULT_PIN_LIFETIME_SECS: i64 = 1800;

/// A plex.tv account the fake knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeAccount {
    pub id: i64,
    pub uuid: String,
    pub username: String,
    pub title: String,
    pub email: Option<String>,
    pub thumb: Option<String>,
    /// The account's Plex token, handed out when it approves a PIN.
    pub token: String,
}

impl FakeAccount {
    /// An account with a derived uuid, `<username>@example.com`, an avatar URL and a random
    /// 20-character token.
    pub fn new(id: i64, username: &str) -> Self {
        let uuid = format!(
            "{:016x}",
            id.unsigned_abs().wrapping_mul(0x9e37_79b9_7f4a_7c15)
        );
        Self {
            id,
            thumb: Some(format!("https://plex.tv/users/{uuid}/avatar?c=1712345678")),
            uuid,
            username: username.to_owned(),
            title: username.to_owned(),
            email: Some(format!("{username}@example.com")),
            token: random_text(20),
        }
    }
}

/// A failure to inject into the next responses (see [`SimServer::fail_next`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and an HTML error page.
    Status(u16),
    /// 429, with a `Retry-After` header when given (real plex.tv usually sends none).
    RateLimited { retry_after: Option<u64> },
    /// 400 with plex.tv's `{"errors":[{"code":1000,...}]}` body.
    BadRequest,
    /// 200 with a body that is not valid JSON.
    Garbage,
    /// Wait this long, then answer normally.
    Hang(Duration),
}

impl SimFault for Fault {
    fn effect(self) -> Effect {
        match self {
            Self::Hang(duration) => Effect::Delay(duration),
            Self::Status(code) => Effect::Answer(html_error(harness::status_or_500(code))),
            Self::RateLimited { retry_after } => {
                let mut response = errors(StatusCode::TOO_MANY_REQUESTS, 1003, "Too Many Requests");
                if let Some(seconds) = retry_after {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                }
                Effect::Answer(response)
            }
            Self::BadRequest => Effect::Answer(missing_client_id()),
            Self::Garbage => Effect::Answer(
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"id": 1272322473, "code": "3patfx1a78"#,
                )
                    .into_response(),
            ),
        }
    }
}

/// A running fake plex.tv on `127.0.0.1`. Dropping it stops the server. The [`SimServer`] it
/// derefs to has the shared controls: `url`, `fail_next`, `set_latency`, `requests`, `shutdown`.
pub struct FakePlexTv {
    server: SimServer<Fault>,
    shared: Arc<Shared>,
}

impl Deref for FakePlexTv {
    type Target = SimServer<Fault>;

    fn deref(&self) -> &SimServer<Fault> {
        &self.server
    }
}

impl std::fmt::Debug for FakePlexTv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.server.fmt_as("FakePlexTv", f)
    }
}

struct Shared {
    state: Mutex<SimState>,
    clock: SharedClock,
}

impl Shared {
    /// See [`FakePlexTv::authorize_code`]; of two live PINs with one code, the newer wins.
    fn authorize_code(&self, code: &str, account_token: &str) -> bool {
        let now = self.clock.now_ms();
        let mut state = self.lock();
        if state.account_by_token(Some(account_token)).is_none() {
            return false;
        }
        let pin = state
            .pins
            .values_mut()
            .filter(|p| p.code == code && now < p.expires_at_ms)
            .max_by_key(|p| p.id);
        match pin {
            Some(pin) => {
                pin.auth_token = Some(account_token.to_owned());
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        harness::lock(&self.state)
    }
}

struct SimState {
    accounts: Vec<FakeAccount>,
    pins: HashMap<i64, FakePin>,
    next_pin_id: i64,
    pin_lifetime_secs: i64,
    owner: Option<Owner>,
    /// (account id, machineIdentifier) pairs.
    shares: Vec<(i64, String)>,
    /// Tokens revoked and answered 422 "Invalid token".
    revoked: Vec<String>,
}

struct Owner {
    account_id: i64,
    machine_identifier: String,
}

struct FakePin {
    id: i64,
    code: String,
    client_id: String,
    product: String,
    created_at_ms: i64,
    expires_at_ms: i64,
    auth_token: Option<String>,
}

impl SimState {
    fn account_by_token(&self, token: Option<&str>) -> Option<&FakeAccount> {
        let token = token?;
        if self.revoked.iter().any(|t| t == token) {
            return None;
        }
        self.accounts.iter().find(|a| a.token == token)
    }

    /// The refusal of a token that names no account: 422 "Invalid token" for a revoked one,
    /// else `otherwise` (plex.tv's 401).
    fn refusal(&self, token: Option<&str>, otherwise: fn() -> Response) -> Response {
        if token.is_some_and(|t| self.revoked.iter().any(|r| r == t)) {
            errors(StatusCode::UNPROCESSABLE_ENTITY, 1001, "Invalid token")
        } else {
            otherwise()
        }
    }
}

impl FakePlexTv {
    /// Binds `127.0.0.1:0`, starts serving in the background and returns the handle; the port
    /// accepts connections as soon as this returns.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with_clock(Arc::new(SystemClock)).await
    }

    /// [`FakePlexTv::start`] with an injected clock, so PIN expiry can be tested without sleeping.
    pub async fn start_with_clock(clock: SharedClock) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(SimState {
                accounts: Vec::new(),
                pins: HashMap::new(),
                next_pin_id: FIRST_PIN_ID,
                pin_lifetime_secs: DEFAULT_PIN_LIFETIME_SECS,
                owner: None,
                shares: Vec::new(),
                revoked: Vec::new(),
            }),
            clock,
        });
        let server =
            SimServer::start("fake plex.tv", |traffic| router(shared.clone(), traffic)).await?;
        Ok(Self { server, shared })
    }

    /// Adds (or replaces, by id) an account.
    pub fn add_account(&self, account: FakeAccount) {
        let mut state = self.shared.lock();
        state.accounts.retain(|a| a.id != account.id);
        state.accounts.push(account);
    }

    /// Makes `account_id` the server owner, owning the server `machine_identifier`: the only
    /// account whose token may read `/api/users`.
    pub fn set_owner(&self, account_id: i64, machine_identifier: &str) {
        self.shared.lock().owner = Some(Owner {
            account_id,
            machine_identifier: machine_identifier.to_owned(),
        });
    }

    /// Shares the server `machine_identifier` with `account_id` (it appears in the owner's
    /// share list and in that account's resources).
    pub fn share(&self, account_id: i64, machine_identifier: &str) {
        let mut state = self.shared.lock();
        let share = (account_id, machine_identifier.to_owned());
        if !state.shares.contains(&share) {
            state.shares.push(share);
        }
    }

    /// Simulates the account with `account_token` approving the PIN on app.plex.tv. False when
    /// the PIN is unknown or expired, or the token belongs to no account.
    pub fn authorize_pin(&self, pin_id: i64, account_token: &str) -> bool {
        let now = self.shared.clock.now_ms();
        let mut state = self.shared.lock();
        if state.account_by_token(Some(account_token)).is_none() {
            return false;
        }
        match state.pins.get_mut(&pin_id) {
            Some(pin) if now < pin.expires_at_ms => {
                pin.auth_token = Some(account_token.to_owned());
                true
            }
            _ => false,
        }
    }

    /// Simulates the account with `account_token` approving the PIN whose `code` the user was
    /// shown (what app.plex.tv receives in its URL fragment). False when no unexpired PIN has
    /// that code, or the token belongs to no account.
    pub fn authorize_code(&self, code: &str, account_token: &str) -> bool {
        self.shared.authorize_code(code, account_token)
    }

    /// The id of the PIN created last, if any: what the user's browser would approve on
    /// app.plex.tv (the client never sees plex.tv's PIN id).
    pub fn last_pin_id(&self) -> Option<i64> {
        self.shared.lock().pins.keys().max().copied()
    }

    /// Revokes `token`: plex.tv then answers calls made with it 422 `Invalid token` (what it
    /// does for some revoked tokens; others get 401).
    pub fn revoke_token(&self, token: &str) {
        self.shared.lock().revoked.push(token.to_owned());
    }

    /// Sets `expiresIn` (seconds) for PINs created from now on.
    pub fn set_pin_lifetime(&self, seconds: i64) {
        self.shared.lock().pin_lifetime_secs = seconds;
    }
}

fn router(shared: Arc<Shared>, traffic: Arc<Traffic<Fault>>) -> Router {
    Router::new()
        .route("/api/v2/pins", post(create_pin))
        .route("/api/v2/pins/{id}", get(get_pin))
        .route("/api/v2/user", get(user))
        .route("/api/v2/resources", get(resources))
        .route("/api/v2/ping", get(ping))
        .route("/api/users", get(shared_users))
        .route("/auth", get(consent_page))
        .route("/demo/approve", post(approve))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            traffic,
            harness::observe::<Fault>,
        ))
        .with_state(shared)
}

pub(super) type Params = Query<HashMap<String, String>>;

/// An `X-Plex-*` value from the header or, as browsers send it, the query.
pub(super) fn plex_param<'a>(
    headers: &'a HeaderMap,
    query: &'a Params,
    name: &str,
) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .or_else(|| query.get(name).map(String::as_str))
        .filter(|v| !v.is_empty())
}

fn token<'a>(headers: &'a HeaderMap, query: &'a Params) -> Option<&'a str> {
    plex_param(headers, query, "X-Plex-Token")
}

/// JSON when asked for, else XML, as plex.tv does (clients that forget `Accept` get XML).
fn reply(headers: &HeaderMap, status: StatusCode, body: Value) -> Response {
    if wants_json(headers) {
        (status, axum::Json(body)).into_response()
    } else {
        (
            status,
            [(header::CONTENT_TYPE, "application/xml")],
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response/>\n",
        )
            .into_response()
    }
}

/// plex.tv's JSON error shape.
fn errors(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        axum::Json(
            json!({"errors": [{"code": code, "message": message, "status": status.as_u16()}]}),
        ),
    )
        .into_response()
}

fn missing_client_id() -> Response {
    errors(
        StatusCode::BAD_REQUEST,
        1000,
        "X-Plex-Client-Identifier is missing",
    )
}

fn unauthorized() -> Response {
    errors(
        StatusCode::UNAUTHORIZED,
        1001,
        "User could not be authenticated",
    )
}

async fn not_found() -> Response {
    html_error(StatusCode::NOT_FOUND)
}

async fn create_pin(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Params,
) -> Response {
    let Some(client_id) = plex_param(&headers, &query, "X-Plex-Client-Identifier") else {
        return missing_client_id();
    };
    let strong = query.get("strong").is_some_and(|v| v == "true" || v == "1");
    let product = plex_param(&headers, &query, "X-Plex-Product").unwrap_or("Plex Web");
    let now = shared.clock.now_ms();
    let body = {
        let mut state = shared.lock();
        let id = state.next_pin_id;
        state.next_pin_id += 1;
        let pin = FakePin {
            id,
            // Strong codes are long and opaque; the short ones are typed at plex.tv/link.
            code: if strong {
                random_text(25).to_ascii_lowercase()
            } else {
                random_text(4).to_ascii_uppercase()
            },
            client_id: client_id.to_owned(),
            product: product.to_owned(),
            created_at_ms: now,
            expires_at_ms: now.saturating_add(state.pin_lifetime_secs.saturating_mul(1000)),
            auth_token: None,
        };
        let body = pin_json(&pin, now);
        state.pins.insert(id, pin);
        body
    };
    reply(&headers, StatusCode::CREATED, body)
}

async fn get_pin(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Params,
) -> Response {
    let Some(client_id) = plex_param(&headers, &query, "X-Plex-Client-Identifier") else {
        return missing_client_id();
    };
    let now = shared.clock.now_ms();
    let body = {
        let state = shared.lock();
        id.parse::<i64>()
            .ok()
            .and_then(|id| state.pins.get(&id))
            // A PIN made under another client identifier does not exist for this one.
            .filter(|pin| pin.client_id == client_id)
            .map(|pin| pin_json(pin, now))
    };
    match body {
        Some(body) => reply(&headers, StatusCode::OK, body),
        None => errors(StatusCode::NOT_FOUND, 1020, "Code not found or expired"),
    }
}

fn pin_json(pin: &FakePin, now_ms: i64) -> Value {
    let expired = now_ms >= pin.expires_at_ms;
    json!({
        "id": pin.id,
        "code": pin.code,
        "product": pin.product,
        "trusted": false,
        "qr": format!("https://plex.tv/api/v2/pins/qr/{}", pin.code),
        "clientIdentifier": pin.client_id,
        "location": {
            "code": "US", "european_union_member": false, "continent_code": "NA",
            "country": "United States", "city": "Austin", "time_zone": "America/Chicago",
            "postal_code": "78701", "in_privacy_restricted_country": false,
            "in_privacy_restricted_region": false, "subdivisions": "Texas",
            "coordinates": "30.2672, -97.7431"
        },
        "expiresIn": ((pin.expires_at_ms - now_ms) / 1000).max(0),
        "createdAt": whole_seconds_rfc3339(pin.created_at_ms),
        "expiresAt": whole_seconds_rfc3339(pin.expires_at_ms),
        // Real plex.tv keeps answering 200 after expiry, with a null token.
        "authToken": if expired { None } else { pin.auth_token.as_deref() },
        "newRegistration": null,
    })
}

async fn user(State(shared): State<Arc<Shared>>, headers: HeaderMap, query: Params) -> Response {
    let state = shared.lock();
    let body = {
        state.account_by_token(token(&headers, &query)).map(|a| {
            json!({
                "id": a.id,
                "uuid": a.uuid,
                "username": a.username,
                "title": a.title,
                "friendlyName": a.title,
                "email": a.email,
                "thumb": a.thumb,
                "authToken": a.token,
                "locale": null,
                "country": "US",
                "joinedAt": 1_556_281_940,
                "confirmed": true,
                "emailOnlyAuth": false,
                "hasPassword": true,
                "protected": false,
                "restricted": false,
                "home": false,
                "guest": false,
                "twoFactorEnabled": false,
                "subscription": {"active": false, "status": "Inactive", "plan": null, "features": []},
                "roles": [],
                "entitlements": [],
                "services": []
            })
        })
    };
    match body {
        Some(body) => reply(&headers, StatusCode::OK, body),
        None => state.refusal(token(&headers, &query), unauthorized),
    }
}

async fn ping(State(shared): State<Arc<Shared>>, headers: HeaderMap, query: Params) -> Response {
    let state = shared.lock();
    let known = state.account_by_token(token(&headers, &query)).is_some();
    if known {
        reply(&headers, StatusCode::OK, json!({"pong": true}))
    } else {
        state.refusal(token(&headers, &query), unauthorized)
    }
}

async fn resources(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Params,
) -> Response {
    let state = shared.lock();
    let body = {
        state
            .account_by_token(token(&headers, &query))
            .map(|account| {
                let mut devices = vec![json!({
                    "name": "Plex Web",
                    "product": "Plex Web",
                    "clientIdentifier": format!("web-{}", account.uuid),
                    "provides": "client,player",
                    "owned": true,
                    "connections": []
                })];
                if let Some(owner) = state.owner.as_ref().filter(|o| o.account_id == account.id) {
                    devices.push(server_json(&owner.machine_identifier, true, &account.token));
                }
                for (_, machine) in state.shares.iter().filter(|(id, _)| *id == account.id) {
                    devices.push(server_json(machine, false, &format!("shared-{machine}")));
                }
                Value::Array(devices)
            })
    };
    match body {
        Some(body) => reply(&headers, StatusCode::OK, body),
        None => state.refusal(token(&headers, &query), unauthorized),
    }
}

fn server_json(machine_identifier: &str, owned: bool, access_token: &str) -> Value {
    json!({
        "name": format!("Plex Server {machine_identifier}"),
        "product": "Plex Media Server",
        "productVersion": "1.41.0.8992",
        "platform": "Linux",
        "clientIdentifier": machine_identifier,
        "provides": "server",
        "owned": owned,
        "accessToken": access_token,
        "publicAddress": "127.0.0.1",
        "httpsRequired": false,
        "connections": [{
            "protocol": "http", "address": "127.0.0.1", "port": 32400,
            "uri": "http://127.0.0.1:32400", "local": true, "relay": false
        }]
    })
}

/// The owner's share list: XML (what python-plexapi's `MyPlexAccount.users` reads), or JSON
/// when the client asks for it, as plex.tv's other endpoints do.
async fn shared_users(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Params,
) -> Response {
    let state = shared.lock();
    let caller = state.account_by_token(token(&headers, &query));
    let owner = state
        .owner
        .as_ref()
        .filter(|o| caller.is_some_and(|c| c.id == o.account_id));
    match owner {
        Some(owner) if wants_json(&headers) => {
            (StatusCode::OK, axum::Json(share_list_json(&state, owner))).into_response()
        }
        Some(owner) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/xml")],
            share_list_xml(&state, owner),
        )
            .into_response(),
        None => state.refusal(token(&headers, &query), || {
            html_error(StatusCode::UNAUTHORIZED)
        }),
    }
}

/// The share list as JSON: the XML's elements as objects (attributes as fields, children as
/// arrays named by their tag), the way Plex turns its XML into JSON.
fn share_list_json(state: &SimState, owner: &Owner) -> Value {
    let users: Vec<Value> = shared_accounts(state, owner)
        .into_iter()
        .map(|user| {
            let servers: Vec<Value> = state
                .shares
                .iter()
                .filter(|(id, _)| *id == user.id)
                .enumerate()
                .map(|(index, (_, machine))| {
                    json!({"id": index + 1, "serverId": index + 1, "machineIdentifier": machine,
                           "name": format!("Plex Server {machine}"), "numLibraries": 3,
                           "allLibraries": true, "owned": true, "pending": false})
                })
                .collect();
            json!({"id": user.id, "title": user.title, "username": user.username,
                   "email": user.email, "thumb": user.thumb, "protected": false, "home": false,
                   "allowSync": true, "restricted": false, "Server": servers})
        })
        .collect();
    json!({"MediaContainer": {
        "friendlyName": "myPlex", "identifier": "com.plexapp.plugins.myplex",
        "machineIdentifier": owner.machine_identifier, "size": users.len(),
        "totalSize": users.len(), "User": users,
    }})
}

/// The accounts the owner shares a server with.
fn shared_accounts<'a>(state: &'a SimState, owner: &Owner) -> Vec<&'a FakeAccount> {
    state
        .accounts
        .iter()
        .filter(|a| a.id != owner.account_id && state.shares.iter().any(|(id, _)| *id == a.id))
        .collect()
}

fn share_list_xml(state: &SimState, owner: &Owner) -> String {
    let users = shared_accounts(state, owner);
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<MediaContainer friendlyName=\"myPlex\" identifier=\"com.plexapp.plugins.myplex\" \
         machineIdentifier=\"{}\" totalSize=\"{n}\" size=\"{n}\">",
        escape(&owner.machine_identifier),
        n = users.len()
    );
    for user in users {
        let _ = write!(
            xml,
            "  <User id=\"{}\" title=\"{}\" username=\"{}\"",
            user.id,
            escape(&user.title),
            escape(&user.username)
        );
        // Missing attributes happen for real (managed users have no email).
        if let Some(email) = &user.email {
            let _ = write!(xml, " email=\"{}\"", escape(email));
        }
        if let Some(thumb) = &user.thumb {
            let _ = write!(xml, " thumb=\"{}\"", escape(thumb));
        }
        xml.push_str(" protected=\"0\" home=\"0\" allowSync=\"1\" restricted=\"0\">\n");
        for (index, (_, machine)) in state
            .shares
            .iter()
            .filter(|(id, _)| *id == user.id)
            .enumerate()
        {
            let _ = writeln!(
                xml,
                "    <Server id=\"{}\" serverId=\"{}\" machineIdentifier=\"{}\" \
                 name=\"Plex Server {}\" numLibraries=\"3\" allLibraries=\"1\" owned=\"1\" pending=\"0\"/>",
                index + 1,
                index + 1,
                escape(machine),
                escape(machine)
            );
        }
        xml.push_str("  </User>\n");
    }
    xml.push_str("</MediaContainer>\n");
    xml
}

/// The demo's stand-in for app.plex.tv's approval page. No external assets: it must work
/// offline. The accounts are filled in at `<!--accounts-->`.
const CONSENT_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in with Plex (demo)</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem;
         background: #1f1f1f; color: #eee; }
  h1 { font-size: 1.4rem; }
  ul { list-style: none; padding: 0; }
  li { margin: .6rem 0; }
  button { font: inherit; min-width: 9rem; padding: .5rem 1rem; border: 0; border-radius: .3rem;
           background: #e5a00d; color: #1f1f1f; cursor: pointer; }
  button:disabled { opacity: .5; cursor: default; }
  small { color: #aaa; margin-left: .5rem; }
  #status { min-height: 1.5em; }
  a { color: #e5a00d; }
</style>
</head>
<body>
<h1>Sign in to <span id="product">an app</span> with Plex</h1>
<p>This is MediaNest's demo plex.tv, not the real one. Choose the account to sign in as:</p>
<ul>
<!--accounts--></ul>
<p id="status" role="status"></p>
<script>
  const params = new URLSearchParams(location.hash.replace(/^#\??/, ""));
  const code = params.get("code");
  const product = params.get("context[device][product]") || "the app";
  const forward = params.get("forwardUrl");
  const status = document.getElementById("status");
  const buttons = Array.from(document.querySelectorAll("button[data-account]"));
  document.getElementById("product").textContent = product;
  if (!code) {
    status.textContent = "There is no sign-in code in this address: open it from the app that asked you to sign in.";
    buttons.forEach((b) => { b.disabled = true; });
  }
  buttons.forEach((button) => button.addEventListener("click", async () => {
    buttons.forEach((b) => { b.disabled = true; });
    status.textContent = "Approving...";
    try {
      const response = await fetch("/demo/approve", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ code: code, accountId: Number(button.dataset.account) }),
      });
      const body = await response.json().catch(() => ({}));
      if (response.ok) {
        status.textContent = "Approved as " + button.textContent + ". Go back to " + product + ": it finishes signing you in.";
        if (forward && /^https?:\/\//.test(forward)) {
          const link = document.createElement("a");
          link.href = forward;
          link.textContent = " Return to " + product + ".";
          status.appendChild(link);
        }
        return;
      }
      const message = body.errors && body.errors[0] && body.errors[0].message;
      status.textContent = "Not approved: " + (message || "HTTP " + response.status);
    } catch (e) {
      status.textContent = "Not approved: " + e;
    }
    buttons.forEach((b) => { b.disabled = false; });
  }));
</script>
</body>
</html>
"#;

/// `GET /auth`: the consent page, one button per account, each saying whether it may use the
/// owner's server (what decides a MediaNest sign-up).
async fn consent_page(State(shared): State<Arc<Shared>>) -> Response {
    let mut items = String::new();
    {
        let state = shared.lock();
        for account in &state.accounts {
            let owns = state
                .owner
                .as_ref()
                .is_some_and(|o| o.account_id == account.id);
            let access = if owns {
                "owns the server"
            } else if state.shares.iter().any(|(id, _)| *id == account.id) {
                "the server is shared with them"
            } else {
                "no access to the server"
            };
            let _ = writeln!(
                items,
                "  <li><button type=\"button\" data-account=\"{}\">{}</button><small>{access}</small></li>",
                account.id,
                escape(&account.title)
            );
        }
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        CONSENT_PAGE.replace("<!--accounts-->", &items),
    )
        .into_response()
}

/// The body the consent page posts.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Approval {
    code: String,
    account_id: i64,
}

/// `POST /demo/approve`: approves the PIN with `code` as the account `accountId`.
async fn approve(
    State(shared): State<Arc<Shared>>,
    axum::Json(approval): axum::Json<Approval>,
) -> Response {
    let account = {
        let state = shared.lock();
        state
            .accounts
            .iter()
            .find(|a| a.id == approval.account_id)
            .map(|a| (a.token.clone(), a.username.clone()))
    };
    let Some((token, username)) = account else {
        return errors(StatusCode::NOT_FOUND, 1001, "No such account");
    };
    if shared.authorize_code(&approval.code, &token) {
        axum::Json(json!({"approved": true, "username": username})).into_response()
    } else {
        errors(StatusCode::NOT_FOUND, 1020, "Code not found or expired")
    }
}

/// plex.tv sends whole seconds.
fn whole_seconds_rfc3339(ms: i64) -> String {
    crate::time::rfc3339(ms - ms.rem_euclid(1000))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::integrations::upstream::Request as UpRequest;
    use crate::sim::harness::testing::{assert_refused, fetch};

    #[tokio::test]
    async fn pin_creation_needs_a_client_identifier() {
        let fake = FakePlexTv::start().await.unwrap();
        let (status, body) = fetch(
            UpRequest::post(format!("{}/api/v2/pins?strong=true", fake.url()))
                .header("Accept", "application/json"),
        )
        .await;
        assert_eq!(status, 400);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["errors"][0]["code"], 1000);
        assert_eq!(fake.requests("POST /api/v2/pins"), 1);
    }

    #[tokio::test]
    async fn answers_xml_unless_json_is_asked_for() {
        let fake = FakePlexTv::start().await.unwrap();
        let (status, body) = fetch(
            UpRequest::post(format!("{}/api/v2/pins", fake.url()))
                .header("X-Plex-Client-Identifier", "c1"),
        )
        .await;
        assert_eq!(status, 201);
        assert!(body.starts_with("<?xml"), "{body}");
        // Short codes without strong=true, and the query form of the identifier works too.
        let (status, body) = fetch(
            UpRequest::post(format!(
                "{}/api/v2/pins?X-Plex-Client-Identifier=c1",
                fake.url()
            ))
            .header("Accept", "application/json"),
        )
        .await;
        assert_eq!(status, 201);
        let pin: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(pin["code"].as_str().unwrap().len(), 4);
        assert_eq!(pin["expiresIn"], 1800);
        assert!(pin["authToken"].is_null());
    }

    #[tokio::test]
    async fn share_list_is_for_the_owner_only() {
        let fake = FakePlexTv::start().await.unwrap();
        let owner = FakeAccount::new(1, "owner");
        let mut guest = FakeAccount::new(2, "guest \"quoted\" & <odd>");
        guest.thumb = None;
        fake.add_account(owner.clone());
        fake.add_account(guest.clone());
        fake.set_owner(1, "m-1");
        fake.share(2, "m-1");
        fake.share(2, "m-1");
        let users = |token: &str| {
            UpRequest::get(format!("{}/api/users", fake.url())).header("X-Plex-Token", token)
        };
        let (status, xml) = fetch(users(&owner.token)).await;
        assert_eq!(status, 200);
        let parsed = crate::integrations::plextv::parse_shared_users(&xml).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].username, guest.username);
        assert_eq!(parsed[0].thumb, None);
        assert_eq!(parsed[0].server_machine_ids, vec!["m-1".to_owned()]);
        assert_eq!(fetch(users(&guest.token)).await.0, 401);
        assert_eq!(fetch(users("nobody")).await.0, 401);
        assert_eq!(fake.requests("GET /api/users"), 3);
    }

    #[tokio::test]
    async fn counts_requests_per_route() {
        let fake = FakePlexTv::start().await.unwrap();
        for _ in 0..2 {
            fetch(UpRequest::get(format!("{}/api/v2/ping", fake.url()))).await;
        }
        let (status, _) = fetch(UpRequest::get(format!("{}/nowhere", fake.url()))).await;
        assert_eq!(status, 404);
        assert_eq!(fake.requests("GET /api/v2/ping"), 2);
        assert_eq!(fake.requests("GET /nowhere"), 1);
        assert_eq!(fake.total_requests(), 3);
    }

    #[tokio::test]
    async fn hang_fault_delays_then_answers() {
        let fake = FakePlexTv::start().await.unwrap();
        fake.fail_next(1, Fault::Hang(Duration::from_millis(150)));
        let began = std::time::Instant::now();
        let (status, _) = fetch(
            UpRequest::get(format!("{}/api/v2/ping", fake.url())).header("X-Plex-Token", "x"),
        )
        .await;
        assert_eq!(status, 401);
        assert!(began.elapsed() >= Duration::from_millis(150));
    }

    #[tokio::test]
    async fn the_consent_page_approves_a_pin_by_its_code_as_the_chosen_account() {
        let fake = FakePlexTv::start().await.unwrap();
        let owner = FakeAccount::new(1, "owner");
        let alice = FakeAccount::new(2, "alice");
        let mut mallory = FakeAccount::new(4, "mallory");
        mallory.title = "<Mallory & co>".into();
        for account in [&owner, &alice, &mallory] {
            fake.add_account(account.clone());
        }
        fake.set_owner(1, "m-1");
        fake.share(2, "m-1");

        let (status, page) = fetch(UpRequest::get(format!("{}/auth", fake.url()))).await;
        assert_eq!(status, 200);
        assert!(page.contains("data-account=\"2\">alice</button>"), "{page}");
        assert!(
            page.contains("&lt;Mallory &amp; co&gt;"),
            "titles are escaped: {page}"
        );
        assert!(page.contains("no access to the server"), "{page}");
        assert!(
            !page.contains("src=") && !page.contains("<link"),
            "no external assets: {page}"
        );

        let (_, body) = fetch(
            UpRequest::post(format!("{}/api/v2/pins?strong=true", fake.url()))
                .header("X-Plex-Client-Identifier", "c1")
                .header("Accept", "application/json"),
        )
        .await;
        let pin: Value = serde_json::from_str(&body).unwrap();
        let code = pin["code"].as_str().unwrap();
        let approve = |body: Value| {
            UpRequest::post(format!("{}/demo/approve", fake.url()))
                .json(&body)
                .unwrap()
        };
        assert_eq!(
            fetch(approve(json!({"code": code, "accountId": 9})))
                .await
                .0,
            404,
            "unknown account"
        );
        assert_eq!(
            fetch(approve(json!({"code": "nope", "accountId": 2})))
                .await
                .0,
            404,
            "unknown code"
        );
        let (status, body) = fetch(approve(json!({"code": code, "accountId": 2}))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["username"],
            "alice"
        );

        let (_, body) = fetch(
            UpRequest::get(format!("{}/api/v2/pins/{}", fake.url(), pin["id"]))
                .header("X-Plex-Client-Identifier", "c1")
                .header("Accept", "application/json"),
        )
        .await;
        let polled: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(polled["authToken"], alice.token.as_str());
        assert_eq!(fake.requests("POST /demo/approve"), 3);

        // An expired PIN cannot be approved, and a token must belong to an account.
        fake.set_pin_lifetime(0);
        let (_, body) = fetch(
            UpRequest::post(format!("{}/api/v2/pins?strong=true", fake.url()))
                .header("X-Plex-Client-Identifier", "c1")
                .header("Accept", "application/json"),
        )
        .await;
        let expired: Value = serde_json::from_str(&body).unwrap();
        assert!(!fake.authorize_code(expired["code"].as_str().unwrap(), &alice.token));
        assert!(!fake.authorize_code(code, "not-a-token"));
    }

    #[tokio::test]
    async fn a_stopped_fake_refuses_connections() {
        let fake = FakePlexTv::start().await.unwrap();
        let url = format!("{}/api/v2/ping", fake.url());
        fake.shutdown().await;
        assert_refused(url).await;
    }
}
