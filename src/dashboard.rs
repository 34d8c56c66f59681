//! The embedded web dashboard: the files under `assets/` (plain HTML, CSS and JavaScript modules,
//! no build step) served as the router's fallback for every path that is not an API, health or
//! metrics path (SPEC section 13).
//!
//! - A path naming a file serves it with its content type. Any other path without a file
//!   extension (`/discover`, `/admin/users`) is one of the app's own routes and gets `index.html`,
//!   so a reload or a shared link opens the right page. `/api/*`, `/health*` and `/metrics` never
//!   fall back: there an unknown path stays a 404 in the error envelope.
//! - Caching: every response has an `ETag` from the file's SHA-256 (rust-embed computes it), and
//!   `If-None-Match` answers 304. The module files keep their plain names (ES module imports name
//!   them), so they are sent `Cache-Control: no-cache`: the browser revalidates each one with a
//!   cheap 304 and never runs a stale module next to a fresh one. The files `index.html` names
//!   (its stylesheet, entry script and icon) are fingerprinted: it is rewritten once to ask for
//!   `file?v=<hash>`, and a request whose `v` matches the current hash is cached for a year as
//!   immutable; a new build changes the hash and so the URL.
//! - The installable app: `manifest.webmanifest` and the service worker `sw.js` are rewritten when
//!   served (the base path in the manifest's URLs; the base, the build's version and the list of
//!   the shell's files in the worker) and are never fingerprinted nor cached for long: their URLs
//!   must stay the same (the browser checks them for a new version), and the worker sits at the
//!   base's root, the scope it controls.
//! - Compression: text files over 1 KiB are sent gzip-compressed to a browser that accepts it,
//!   compressed once per content hash and kept in memory (the whole dashboard is small).
//! - Nothing here is inline script or style, so the CSP of SPEC section 2 (set by the edge on
//!   every response) applies unchanged.
//!
//! Debug builds read the files from disk on each request (rust-embed's default), so editing a
//! page needs no rebuild; release builds embed them in the binary.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::error::{AppError, ErrorCode};

/// The dashboard's files.
#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// Files smaller than this are not worth compressing.
const COMPRESS_MIN_BYTES: usize = 1024;
/// How long a fingerprinted URL may be cached.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Everything else: keep it, but ask first (a 304 when unchanged).
const REVALIDATE: &str = "no-cache";
/// The query parameter carrying a fingerprint.
const VERSION_PARAM: &str = "v=";
/// The files `index.html` names by fingerprinted URL (the placeholder is `{{v:NAME}}`).
const INDEX: &str = "index.html";
/// The web app manifest, served with the base path filled in.
const MANIFEST: &str = "manifest.webmanifest";
/// The service worker, served with the base path, the build's version and the shell's files
/// filled in. Its URL never changes (the browser checks it for updates), so it is never
/// fingerprinted nor cached for long; it sits at the base's root, the scope it controls.
const WORKER: &str = "sw.js";

/// A file ready to send: its bytes, hash and type. In a release build the bytes are the
/// embedded ones (no copy per request).
#[derive(Clone)]
struct File {
    bytes: Bytes,
    hash: [u8; 32],
    content_type: &'static str,
}

impl File {
    fn etag(&self, gzip: bool) -> String {
        let hex: String = self.hash[..12].iter().map(|b| format!("{b:02x}")).collect();
        if gzip {
            format!("\"{hex}-gz\"")
        } else {
            format!("\"{hex}\"")
        }
    }

    fn fingerprint(&self) -> String {
        self.hash[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A SHA-256 digest: how files are known in the caches.
type Hash = [u8; 32];
/// gzip bodies by the hash of the original.
type GzipCache = Mutex<HashMap<Hash, Bytes>>;
/// The files rewritten when served (`index.html`, the manifest, the worker), each with the hash
/// of what it was made from.
type RenderedCache = Mutex<HashMap<&'static str, (Hash, File)>>;

/// The asset service; cheap to clone (the caches are shared).
#[derive(Clone, Default)]
pub struct Dashboard {
    gzipped: Arc<GzipCache>,
    rendered: Arc<RenderedCache>,
    /// `server.base_path` (empty at the root), written into `index.html` for `{{base}}`.
    base: Arc<str>,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard").finish_non_exhaustive()
    }
}

/// Whether `path` belongs to the server rather than the app: it never falls back to the app.
pub fn is_server_path(path: &str) -> bool {
    path == "/api"
        || path.starts_with("/api/")
        || path == "/health"
        || path.starts_with("/health/")
        || path == "/metrics"
}

impl Dashboard {
    /// A dashboard with empty caches.
    pub fn new() -> Self {
        Self::default()
    }

    /// A dashboard served under `base` (`server.base_path` as `ServerConfig::base` gives it).
    pub fn with_base(base: &str) -> Self {
        Self {
            base: Arc::from(base),
            ..Self::default()
        }
    }

    /// The router fallback: an asset, the app's `index.html`, or the API's 404/405.
    pub async fn fallback(self, req: Request) -> Response {
        let path = req.uri().path();
        if is_server_path(path) {
            return AppError::new(ErrorCode::NotFound).into_response();
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return AppError::new(ErrorCode::MethodNotAllowed).into_response();
        }
        let versioned = req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|p| p.strip_prefix(VERSION_PARAM)));
        let name = path.trim_start_matches('/');
        let file = if name.is_empty() || name == INDEX {
            self.index_file()
        } else if name == MANIFEST {
            self.manifest_file()
        } else if name == WORKER {
            self.worker_file()
        } else if let Some(file) = load(name) {
            Some(file)
        } else if is_app_route(name) {
            self.index_file()
        } else {
            None
        };
        match file {
            Some(file) => {
                let immutable = name != MANIFEST
                    && name != WORKER
                    && versioned.is_some_and(|v| v == file.fingerprint());
                self.respond(&file, req.headers(), immutable)
            }
            None => AppError::new(ErrorCode::NotFound).into_response(),
        }
    }

    /// `index.html` with `{{v:NAME}}` replaced by NAME's fingerprint and `{{base}}` by the base
    /// path (so its links and the app's own URLs live under it), rewritten when the original
    /// changes (in debug builds, on every edit).
    fn index_file(&self) -> Option<File> {
        let original = load(INDEX)?;
        self.rendered(INDEX, &original, original.hash, || {
            fill_fingerprints(
                &String::from_utf8_lossy(&original.bytes).replace("{{base}}", &self.base),
            )
        })
    }

    /// The manifest with `{{base}}` filled in, so `start_url`, `scope` and the icons name the
    /// base path.
    fn manifest_file(&self) -> Option<File> {
        let original = load(MANIFEST)?;
        self.rendered(MANIFEST, &original, original.hash, || {
            String::from_utf8_lossy(&original.bytes).replace("{{base}}", &self.base)
        })
    }

    /// The service worker with `{{base}}`, `{{version}}` (a digest of every file of this build)
    /// and `{{shell}}` (a JSON list of the URLs it precaches) filled in.
    fn worker_file(&self) -> Option<File> {
        let original = load(WORKER)?;
        let version = build_version();
        self.rendered(WORKER, &original, version, || {
            let shell =
                serde_json::to_string(&shell_urls(&self.base)).unwrap_or_else(|_| "[]".to_owned());
            let version: String = version[..8].iter().map(|b| format!("{b:02x}")).collect();
            String::from_utf8_lossy(&original.bytes)
                .replace("{{base}}", &self.base)
                .replace("{{version}}", &version)
                .replace("{{shell}}", &shell)
        })
    }

    /// `name` rendered by `render` from `original`, kept until `key` (the hash of what it is made
    /// from) changes.
    fn rendered(
        &self,
        name: &'static str,
        original: &File,
        key: Hash,
        render: impl FnOnce() -> String,
    ) -> Option<File> {
        let mut cached = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((hash, file)) = cached.get(name)
            && *hash == key
        {
            return Some(file.clone());
        }
        let bytes = Bytes::from(render().into_bytes());
        let hash = sha256(&bytes);
        let file = File {
            bytes,
            hash,
            content_type: original.content_type,
        };
        cached.insert(name, (key, file.clone()));
        Some(file)
    }

    fn respond(&self, file: &File, headers: &HeaderMap, immutable: bool) -> Response {
        let gzip = is_text(file.content_type)
            && file.bytes.len() >= COMPRESS_MIN_BYTES
            && accepts_gzip(headers);
        let etag = file.etag(gzip);
        let cache = if immutable { IMMUTABLE } else { REVALIDATE };
        let mut builder = Response::builder()
            .header(header::ETAG, &etag)
            .header(header::CACHE_CONTROL, cache)
            .header(header::VARY, "Accept-Encoding");
        if if_none_match(headers, &etag) {
            return builder
                .status(StatusCode::NOT_MODIFIED)
                .body(Body::empty())
                .unwrap_or_else(|_| StatusCode::NOT_MODIFIED.into_response());
        }
        builder = builder.header(header::CONTENT_TYPE, file.content_type);
        let body = if gzip {
            builder = builder.header(header::CONTENT_ENCODING, "gzip");
            self.gzip(file)
        } else {
            file.bytes.clone()
        };
        builder
            .header(header::CONTENT_LENGTH, body.len())
            .body(Body::from(body))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }

    fn gzip(&self, file: &File) -> Bytes {
        let mut cache = self.gzipped.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bytes) = cache.get(&file.hash) {
            return bytes.clone();
        }
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let compressed = encoder
            .write_all(&file.bytes)
            .and_then(|()| encoder.finish());
        match compressed {
            Ok(bytes) => {
                let bytes = Bytes::from(bytes);
                cache.insert(file.hash, bytes.clone());
                bytes
            }
            // Writing to a Vec does not fail; if it ever did, send the file as it is (the ETag
            // then names a gzip body that is not: harmless, the next request tries again).
            Err(_) => file.bytes.clone(),
        }
    }
}

/// An embedded file by its path under `assets/`.
fn load(name: &str) -> Option<File> {
    if name
        .split('/')
        .any(|part| part.is_empty() || part.starts_with('.'))
    {
        return None;
    }
    let embedded = Assets::get(name)?;
    Some(File {
        hash: embedded.metadata.sha256_hash(),
        bytes: match embedded.data {
            Cow::Borrowed(b) => Bytes::from_static(b),
            Cow::Owned(v) => Bytes::from(v),
        },
        content_type: content_type(name),
    })
}

/// `text` with each `{{v:NAME}}` replaced by NAME's fingerprint.
fn fill_fingerprints(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest: &str = text;
    while let Some(start) = rest.find("{{v:") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 4..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let name = &after[..end];
        let version = load(name).map_or_else(|| "missing".to_owned(), |f| f.fingerprint());
        out.push_str(&version);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The names `index.html` asks for by fingerprinted URL (`{{v:NAME}}`).
fn fingerprinted_names() -> Vec<String> {
    let Some(index) = load(INDEX) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&index.bytes)
        .split("{{v:")
        .skip(1)
        .filter_map(|part| part.split_once("}}").map(|(name, _)| name.to_owned()))
        .collect()
}

/// A digest of every file of this build (names and contents): the service worker's version.
fn build_version() -> Hash {
    use sha2::Digest;
    let mut names: Vec<_> = Assets::iter().collect();
    names.sort();
    let mut digest = sha2::Sha256::new();
    for name in names {
        if let Some(file) = Assets::get(&name) {
            digest.update(name.as_bytes());
            digest.update([0]);
            digest.update(file.metadata.sha256_hash());
        }
    }
    digest.finalize().into()
}

/// What the service worker precaches so the app opens offline: the page, the files it names by
/// fingerprinted URL (with their current fingerprint), and every other file (the modules the
/// page imports, the manifest, the icons) by its plain URL.
fn shell_urls(base: &str) -> Vec<String> {
    let fingerprinted = fingerprinted_names();
    let mut urls = vec![format!("{base}/")];
    let mut names: Vec<_> = Assets::iter().collect();
    names.sort();
    for name in names {
        let name: &str = &name;
        if name == INDEX || name == WORKER || name.split('/').any(|p| p.starts_with('.')) {
            continue;
        }
        match load(name) {
            Some(file) if fingerprinted.iter().any(|f| f == name) => {
                urls.push(format!("{base}/{name}?v={}", file.fingerprint()));
            }
            Some(_) => urls.push(format!("{base}/{name}")),
            None => {}
        }
    }
    urls
}

/// A path the app's router handles: no file extension in its last segment.
fn is_app_route(name: &str) -> bool {
    let last = name.rsplit('/').next().unwrap_or(name);
    !last.contains('.')
}

/// The content type for a file name (the few kinds the dashboard has).
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    match ext.to_ascii_lowercase().as_str() {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn is_text(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || content_type.starts_with("application/json")
        || content_type.starts_with("application/manifest")
        || content_type.starts_with("image/svg")
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v: &HeaderValue| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn server_paths_never_fall_back() {
        for p in [
            "/api",
            "/api/v1/nope",
            "/health",
            "/health/ready",
            "/metrics",
        ] {
            assert!(is_server_path(p), "{p}");
        }
        for p in [
            "/",
            "/discover",
            "/admin/users",
            "/healthy",
            "/apikeys",
            "/app.js",
        ] {
            assert!(!is_server_path(p), "{p}");
        }
    }

    #[test]
    fn app_routes_have_no_extension() {
        assert!(is_app_route("discover"));
        assert!(is_app_route("admin/users"));
        assert!(is_app_route("movie/603"));
        assert!(is_app_route("tv/1399"));
        assert!(!is_app_route("js/missing.js"));
        assert!(!is_app_route("favicon.ico"));
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("a/b.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("app.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("icon.svg"), "image/svg+xml");
        assert_eq!(content_type("x.bin"), "application/octet-stream");
    }

    #[test]
    fn gzip_negotiation() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            accepts_gzip(&h)
        };
        assert!(with("gzip, deflate, br"));
        assert!(with("br;q=1.0, GZIP;q=0.5"));
        assert!(with("*"));
        assert!(!with("gzip;q=0"));
        assert!(!with("br, deflate"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn etag_matching() {
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"abc\""),
        );
        assert!(if_none_match(&h, "\"abc\""));
        assert!(!if_none_match(&h, "\"abd\""));
    }

    #[test]
    fn hidden_and_odd_paths_are_not_files() {
        assert!(load("../Cargo.toml").is_none());
        assert!(load(".hidden").is_none());
        assert!(load("js//app.js").is_none());
        assert!(load("app.js").is_some());
    }

    #[test]
    fn index_names_its_files_by_fingerprint() {
        let dashboard = Dashboard::new();
        let index = dashboard.index_file().unwrap();
        let text = String::from_utf8_lossy(&index.bytes);
        assert!(!text.contains("{{v:"), "{text}");
        let app = load("app.js").unwrap();
        assert!(
            text.contains(&format!("app.js?v={}", app.fingerprint())),
            "{text}"
        );
    }
}
