//! A fake Plex Media Server (UPSTREAMS.md 1.3): `GET /identity` without a token, in JSON when
//! the client sends `Accept: application/json` and in XML otherwise, as PMS does; every other
//! path wants the server token in `X-Plex-Token` (header or query) and answers PMS's HTML 401
//! page without it. Behind the token sits a small library ([`library`]): sections, items with
//! thumbs, collections, images, search, recently added, scans of real folders on disk, and
//! metadata edits that set and lock an item's fields ([`edit`]).
//!
//! A test or the demo steers it through [`FakePlexServer`]'s methods: the machine identifier, the
//! server token, the library's content, and (from the [`SimServer`] harness) injected failures
//! and latency and per-endpoint request counts. State sits behind a `std` mutex that is never
//! held across an `.await`.

mod edit;
mod library;

use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::json;

use super::harness::{self, Effect, SimFault, SimServer, Traffic};
pub use library::{COMPOSITE_JPEG, FakeCollection, FakeItem, NewItem, THUMB_PNG};

/// The version the fake reports (a real PMS build string).
pub const VERSION: &str = "1.41.3.9314-a0bfb8370";
/// The one path PMS answers without a token.
const IDENTITY: &str = "/identity";

/// A failure to inject into the next responses (see [`SimServer::fail_next`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and PMS's HTML error page.
    Status(u16),
    /// 200 with a body that is not valid JSON.
    Garbage,
    /// 200 with an HTML page (a proxy's sign-in page, or another program on the port).
    Page,
    /// Wait this long, then answer normally.
    Hang(Duration),
}

impl SimFault for Fault {
    fn effect(self) -> Effect {
        match self {
            Self::Hang(duration) => Effect::Delay(duration),
            Self::Status(code) => Effect::Answer(html_error(harness::status_or_500(code))),
            Self::Garbage => Effect::Answer(
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"MediaContainer": {"size": 0, "machineIdent"#,
                )
                    .into_response(),
            ),
            Self::Page => Effect::Answer(
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    "<html><head><title>Sign in</title></head><body>Sign in</body></html>",
                )
                    .into_response(),
            ),
        }
    }
}

/// A running fake Plex Media Server on `127.0.0.1`. Dropping it stops the server. The
/// [`SimServer`] it derefs to has the shared controls: `url`, `fail_next`, `set_latency`,
/// `requests`, `shutdown`.
pub struct FakePlexServer {
    server: SimServer<Fault>,
    shared: Arc<Shared>,
}

impl Deref for FakePlexServer {
    type Target = SimServer<Fault>;

    fn deref(&self) -> &SimServer<Fault> {
        &self.server
    }
}

impl std::fmt::Debug for FakePlexServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.server.fmt_as("FakePlexServer", f)
    }
}

struct Shared {
    state: Mutex<SimState>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SimState> {
        harness::lock(&self.state)
    }
}

struct SimState {
    machine_identifier: String,
    friendly_name: String,
    token: String,
    library: library::Library,
}

impl FakePlexServer {
    /// Binds `127.0.0.1:0`, starts serving in the background and returns the handle; the port
    /// accepts connections as soon as this returns. The machine identifier (40 hex characters)
    /// and the server token (20 characters) are random until set.
    pub async fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(SimState {
                machine_identifier: random_hex(40),
                friendly_name: "Media Server".to_owned(),
                token: random_text(20),
                library: library::Library::default(),
            }),
        });
        let server = SimServer::start("fake Plex server", |traffic| {
            router(shared.clone(), traffic)
        })
        .await?;
        Ok(Self { server, shared })
    }

    /// The `machineIdentifier` that `/identity` reports.
    pub fn machine_identifier(&self) -> String {
        self.shared.lock().machine_identifier.clone()
    }

    /// Sets the `machineIdentifier` (to match the owner's server in a fake plex.tv).
    pub fn set_machine_identifier(&self, machine_identifier: &str) {
        self.shared.lock().machine_identifier = machine_identifier.to_owned();
    }

    /// The token every path but `/identity` requires.
    pub fn token(&self) -> String {
        self.shared.lock().token.clone()
    }

    /// Sets the required token (the owner's Plex token, as for a real server).
    pub fn set_token(&self, token: &str) {
        self.shared.lock().token = token.to_owned();
    }

    /// Sets the server's name (`friendlyName` in `GET /`).
    pub fn set_friendly_name(&self, name: &str) {
        self.shared.lock().friendly_name = name.to_owned();
    }

    /// Adds a library section of `kind` (`movie` or `show`) whose folder is `location` (PMS's
    /// path; nothing needs to exist there unless it is scanned). Returns its key ("1", "2", ...).
    pub fn add_library(&self, kind: &str, title: &str, location: &str) -> String {
        self.shared
            .lock()
            .library
            .add_section(kind, title, location, false)
    }

    /// Adds an "Other Videos" library (type `movie`, the Personal Media agent) on the real
    /// directory `dir`, where a scan finds the video files actually there. Returns its key.
    pub fn add_youtube_library(&self, title: &str, dir: &std::path::Path) -> String {
        let location = dir.to_string_lossy();
        self.shared
            .lock()
            .library
            .add_section("movie", title, &location, true)
    }

    /// Adds a show-type library (the Personal Media agent) on the real directory `dir`: a scan
    /// finds the video files there as episodes (type 4), as PMS makes them in a show library.
    /// Returns its key.
    pub fn add_youtube_show_library(&self, title: &str, dir: &std::path::Path) -> String {
        let location = dir.to_string_lossy();
        self.shared
            .lock()
            .library
            .add_section("show", title, &location, true)
    }

    /// Adds an item to a section (its type is the section's); returns its rating key, or
    /// `None` when there is no such section.
    pub fn add_item(&self, section_key: &str, item: NewItem) -> Option<String> {
        self.shared.lock().library.add_item(section_key, item)
    }

    /// Adds a collection of `items` (rating keys) to a section; returns its rating key.
    pub fn add_collection(&self, section_key: &str, title: &str, items: &[&str]) -> Option<String> {
        self.shared
            .lock()
            .library
            .add_collection(section_key, title, items)
    }

    /// A section's items, in the order they were added.
    pub fn items(&self, section_key: &str) -> Vec<FakeItem> {
        self.shared.lock().library.items(section_key)
    }

    /// One item by its rating key, with what edits set and locked.
    pub fn item(&self, rating_key: &str) -> Option<FakeItem> {
        self.shared.lock().library.item(rating_key).cloned()
    }

    /// Every collection with its items, in the order they were made (by tests or by clients).
    pub fn collections(&self) -> Vec<FakeCollection> {
        self.shared.lock().library.collections()
    }

    /// Marks a section as being scanned (or not), as `GET /library/sections` reports it.
    pub fn set_refreshing(&self, section_key: &str, refreshing: bool) {
        self.shared
            .lock()
            .library
            .set_refreshing(section_key, refreshing);
    }

    /// Every scan asked for (`GET /library/sections/{key}/refresh[?path=]`), in order:
    /// `(section key, path)`, the path empty for a whole section.
    pub fn scans(&self) -> Vec<(String, String)> {
        self.shared.lock().library.scans.clone()
    }

    /// How many reads of `GET /library/sections` show a scan still `refreshing` before it
    /// ends and its files become items (default 1; 0 ends scans at once).
    pub fn set_scan_reads(&self, reads: u32) {
        self.shared.lock().library.set_scan_reads(reads);
    }

    /// How many reads of `GET /library/sections` after a refresh still show the scan not
    /// started (`refreshing` false, no new items) before it runs (default 0). PMS queues scans,
    /// so a client that sees `refreshing` false right after asking has not seen the scan yet.
    pub fn set_scan_start_reads(&self, reads: u32) {
        self.shared.lock().library.set_scan_start_reads(reads);
    }
}

fn router(shared: Arc<Shared>, traffic: Arc<Traffic<Fault>>) -> Router {
    Router::new()
        .route(IDENTITY, get(identity))
        .route("/", get(capabilities))
        .route("/library/sections", get(library::sections))
        .route(
            "/library/sections/{key}/all",
            get(library::section_all).put(edit::edit_section_items),
        )
        .route("/library/sections/{key}/refresh", get(library::refresh))
        .route(
            "/library/sections/{key}/collections",
            get(library::section_collections),
        )
        .route("/library/recentlyAdded", get(library::recently_added))
        .route("/hubs/search", get(library::search))
        .route("/library/collections", post(library::create_collection))
        .route("/library/collections/{key}", get(library::collection))
        .route(
            "/library/collections/{key}/children",
            get(library::collection_children),
        )
        .route(
            "/library/collections/{key}/items",
            put(library::add_collection_items),
        )
        .route(
            "/library/metadata/{key}",
            get(edit::get_item).put(edit::edit_item),
        )
        .route("/library/metadata/{key}/thumb/{at}", get(image))
        .route("/library/metadata/{key}/art/{at}", get(image))
        .route("/library/collections/{key}/composite/{at}", get(image))
        // `/photo/:/transcode` cannot be declared: axum refuses a segment starting with `:`.
        .fallback(fallback)
        // Layers run outside in: count and apply faults first, then check the token, so a
        // refused request is still counted.
        .layer(middleware::from_fn_with_state(shared.clone(), authenticate))
        .layer(middleware::from_fn_with_state(
            traffic,
            harness::observe::<Fault>,
        ))
        .with_state(shared)
}

/// Every path but `/identity` wants the server token, in the header or (as browsers and old
/// clients send it) the query.
async fn authenticate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    if request.uri().path() == IDENTITY {
        return next.run(request).await;
    }
    let given = request
        .headers()
        .get("X-Plex-Token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query_token(request.uri().query().unwrap_or("")));
    let expected = shared.lock().token.clone();
    if given.as_deref() != Some(expected.as_str()) {
        return html_error(StatusCode::UNAUTHORIZED);
    }
    next.run(request).await
}

fn query_token(query: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "X-Plex-Token")
        .map(|(_, value)| value.to_owned())
}

/// Whether the client asked for JSON; PMS and plex.tv answer XML otherwise.
pub(super) fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"))
}

/// `GET /identity`: the older PMS shape (no `apiVersion`), which clients must accept too.
async fn identity(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let machine_identifier = shared.lock().machine_identifier.clone();
    if wants_json(&headers) {
        axum::Json(json!({
            "MediaContainer": {
                "size": 0,
                "claimed": true,
                "machineIdentifier": machine_identifier,
                "version": VERSION,
            }
        }))
        .into_response()
    } else {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/xml;charset=utf-8")],
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MediaContainer size=\"0\" \
                 claimed=\"1\" machineIdentifier=\"{}\" version=\"{VERSION}\">\n\
                 </MediaContainer>\n",
                escape(&machine_identifier)
            ),
        )
            .into_response()
    }
}

/// PMS (and plex.tv, for auth failures and unknown paths) answers errors, 401 included, with a
/// small HTML page rather than JSON.
pub(super) fn html_error(status: StatusCode) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    let code = status.as_u16();
    (
        status,
        [(header::CONTENT_TYPE, "text/html")],
        format!(
            "<html><head><title>{reason}</title></head><body><h1>{code} {reason}</h1></body></html>"
        ),
    )
        .into_response()
}

/// `GET /` with the token: the capabilities container (a few of its many fields).
async fn capabilities(State(shared): State<Arc<Shared>>) -> Response {
    let state = shared.lock();
    axum::Json(json!({
        "MediaContainer": {
            "size": 0,
            "allowCameraUpload": false,
            "friendlyName": state.friendly_name,
            "machineIdentifier": state.machine_identifier,
            "myPlexUsername": "owner",
            "platform": "Linux",
            "platformVersion": "6.1",
            "transcoderActiveVideoSessions": 0,
            "version": VERSION,
        }
    }))
    .into_response()
}

/// The image routes and the photo transcoder.
async fn image(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    library::image(&shared, uri.path(), uri.query())
}

async fn fallback(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    if uri.path() == "/photo/:/transcode" {
        return library::image(&shared, uri.path(), uri.query());
    }
    html_error(StatusCode::NOT_FOUND)
}

/// `text` escaped for an XML attribute.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `len` random letters and digits, as Plex tokens and PIN codes are.
pub(super) fn random_text(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn random_hex(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16)]))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::integrations::upstream::Request as UpRequest;
    use crate::sim::harness::testing::{assert_refused, fetch};

    #[tokio::test]
    async fn identity_needs_no_token_and_answers_json_when_asked() {
        let fake = FakePlexServer::start().await.unwrap();
        fake.set_machine_identifier("96f2fe7a78c9dc1f16a16bedbe90f98149be16b4");
        let (status, body) = fetch(
            UpRequest::get(format!("{}/identity", fake.url())).header("Accept", "application/json"),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        let container = &body["MediaContainer"];
        assert_eq!(
            container["machineIdentifier"],
            "96f2fe7a78c9dc1f16a16bedbe90f98149be16b4"
        );
        assert_eq!(container["size"], 0);
        assert_eq!(container["claimed"], true);
        assert_eq!(container["version"], VERSION);
    }

    #[tokio::test]
    async fn identity_is_xml_without_a_json_accept_header() {
        let fake = FakePlexServer::start().await.unwrap();
        let (status, body) = fetch(UpRequest::get(format!("{}/identity", fake.url()))).await;
        assert_eq!(status, 200);
        assert!(body.starts_with("<?xml"), "{body}");
        let doc = roxmltree::Document::parse(&body).unwrap();
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "MediaContainer");
        assert_eq!(
            root.attribute("machineIdentifier"),
            Some(fake.machine_identifier().as_str())
        );
        assert_eq!(fake.machine_identifier().len(), 40);
    }

    #[tokio::test]
    async fn other_paths_want_the_server_token_in_header_or_query() {
        let fake = FakePlexServer::start().await.unwrap();
        fake.set_token("owner-token-123");
        let url = format!("{}/library/sections", fake.url());
        let (status, body) = fetch(UpRequest::get(url.clone())).await;
        assert_eq!(status, 401);
        assert!(body.contains("<title>Unauthorized</title>"), "{body}");
        let (status, _) = fetch(UpRequest::get(url.clone()).header("X-Plex-Token", "wrong")).await;
        assert_eq!(status, 401);
        let (status, _) =
            fetch(UpRequest::get(url.clone()).header("X-Plex-Token", "owner-token-123")).await;
        assert_eq!(status, 200);
        let (status, _) = fetch(UpRequest::get(format!(
            "{url}?X-Plex-Token=owner-token-123"
        )))
        .await;
        assert_eq!(status, 200);
        assert_eq!(fake.token(), "owner-token-123");
        assert_eq!(fake.requests("GET /library/sections"), 4);
        assert_eq!(fake.total_requests(), 4);
    }

    #[tokio::test]
    async fn the_library_answers_like_pms_and_wants_the_token() {
        let fake = FakePlexServer::start().await.unwrap();
        let movies = fake.add_library("movie", "Movies", "/data/movies");
        let empty = fake.add_library("show", "TV", "/data/tv");
        let key = fake.add_item(&movies, NewItem::new("Up", 2009)).unwrap();
        fake.add_collection(&movies, "Pixar", &[&key]).unwrap();
        let token = fake.token();
        let get = |path: &str| {
            UpRequest::get(format!("{}{path}", fake.url()))
                .header("Accept", "application/json")
                .header("X-Plex-Token", token.clone())
        };
        let json = |body: &str| serde_json::from_str::<serde_json::Value>(body).unwrap();

        // An empty library has no Metadata key at all, not an empty array.
        let (status, body) = fetch(get(&format!("/library/sections/{empty}/all"))).await;
        assert_eq!(status, 200);
        let container = &json(&body)["MediaContainer"];
        assert_eq!(container["totalSize"], 0);
        assert!(container.get("Metadata").is_none(), "{body}");
        // Paging by query works as by header.
        let (_, body) = fetch(get(&format!(
            "/library/sections/{movies}/all?X-Plex-Container-Start=1"
        )))
        .await;
        assert!(json(&body)["MediaContainer"].get("Metadata").is_none());
        // Counts as strings, section ids as numbers.
        let (_, body) = fetch(get(&format!("/library/sections/{movies}/collections"))).await;
        let collection = &json(&body)["MediaContainer"]["Metadata"][0];
        assert_eq!(collection["childCount"], "1");
        assert_eq!(collection["librarySectionID"], 1);
        // Images want the token like everything else but /identity.
        let thumb = format!("/library/metadata/{key}/thumb/1700000000");
        let (status, _) = fetch(UpRequest::get(format!("{}{thumb}", fake.url()))).await;
        assert_eq!(status, 401);
        let gateway = crate::integrations::upstream::Upstream::new(
            "Simulator",
            crate::integrations::upstream::UpstreamOptions::with_timeout_ms(2000),
        );
        let (status, bytes) = gateway
            .send(get(&thumb), |r| {
                Ok((
                    r.status().as_u16(),
                    crate::integrations::upstream::read_body(r)?,
                ))
            })
            .await
            .unwrap();
        assert_eq!((status, bytes.as_slice()), (200, THUMB_PNG));
        let (status, _) = fetch(get("/library/metadata/1/thumb/1")).await;
        assert_eq!(status, 404);
    }

    #[tokio::test]
    async fn injected_faults_apply_to_the_next_requests_only() {
        let fake = FakePlexServer::start().await.unwrap();
        let identity = || {
            UpRequest::get(format!("{}/identity", fake.url())).header("Accept", "application/json")
        };
        fake.fail_next(1, Fault::Status(500));
        fake.fail_next(1, Fault::Garbage);
        let (status, body) = fetch(identity()).await;
        assert_eq!(status, 500);
        assert!(body.contains("<h1>500"), "{body}");
        let (status, body) = fetch(identity()).await;
        assert_eq!(status, 200);
        assert!(serde_json::from_str::<serde_json::Value>(&body).is_err());
        let (status, _) = fetch(identity()).await;
        assert_eq!(status, 200);
        assert_eq!(fake.requests("GET /identity"), 3);
    }

    #[tokio::test]
    async fn latency_delays_answers() {
        let fake = FakePlexServer::start().await.unwrap();
        fake.set_latency(Duration::from_millis(120));
        let began = std::time::Instant::now();
        let (status, _) = fetch(UpRequest::get(format!("{}/identity", fake.url()))).await;
        assert_eq!(status, 200);
        assert!(began.elapsed() >= Duration::from_millis(120));
        fake.set_latency(Duration::ZERO);
        fake.fail_next(1, Fault::Hang(Duration::from_millis(120)));
        let began = std::time::Instant::now();
        fetch(UpRequest::get(format!("{}/identity", fake.url()))).await;
        assert!(began.elapsed() >= Duration::from_millis(120));
    }

    #[tokio::test]
    async fn a_stopped_fake_refuses_connections() {
        let fake = FakePlexServer::start().await.unwrap();
        let url = format!("{}/identity", fake.url());
        fake.shutdown().await;
        assert_refused(url).await;
    }
}
