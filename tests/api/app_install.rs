//! The installable app: the web app manifest (its type, and `start_url`, `scope` and icons naming
//! the base path), the icons (valid PNGs of the sizes the manifest declares), and the service
//! worker (at the scope's root, never fingerprinted nor long-cached, filled in with the base and
//! the shell's current files), at the root and under `server.base_path`; the CSP allows them
//! from this origin only and nothing unsafe.

use std::io::Read;

use axum::http::StatusCode;

use crate::support::{self, get};

/// The router at the root (`""`) or under `base`.
async fn app_under(base: &str) -> (support::TestState, axum::Router) {
    let base = base.to_owned();
    let t = support::test_state_with(move |c| c.server.base_path = base);
    support::prepare(&t).await;
    let app = t.router();
    (t, app)
}

/// Width and height of a PNG, after checking it whole: the signature, every chunk's CRC, an
/// `IHDR` first and an `IEND` last, and image data that inflates to exactly the rows the header
/// announces.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG signature");
    let mut at = 8;
    let mut chunks = Vec::new();
    let mut idat = Vec::new();
    let mut header = None;
    while at < bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let kind = &bytes[at + 4..at + 8];
        let data = &bytes[at + 8..at + 8 + len];
        let crc = u32::from_be_bytes(bytes[at + 8 + len..at + 12 + len].try_into().unwrap());
        assert_eq!(crc32(&bytes[at + 4..at + 8 + len]), crc, "bad CRC");
        chunks.push(String::from_utf8_lossy(kind).into_owned());
        match kind {
            b"IHDR" => header = Some(data.to_vec()),
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        at += 12 + len;
    }
    assert_eq!(chunks.first().map(String::as_str), Some("IHDR"));
    assert_eq!(chunks.last().map(String::as_str), Some("IEND"));
    let header = header.unwrap();
    let width = u32::from_be_bytes(header[0..4].try_into().unwrap());
    let height = u32::from_be_bytes(header[4..8].try_into().unwrap());
    let (depth, color) = (header[8], header[9]);
    assert_eq!(depth, 8, "bit depth");
    let channels = match color {
        2 => 3,
        6 => 4,
        other => panic!("unexpected color type {other}"),
    };
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    assert_eq!(
        raw.len(),
        height as usize * (1 + width as usize * channels),
        "image data does not match the header"
    );
    (width, height)
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The manifest, its icons and the worker, checked under `base` ("" for the root).
async fn check_install(base: &str) {
    let (_t, app) = app_under(base).await;

    // index.html links the manifest under the base.
    let html = get(&app, &format!("{base}/")).await.text();
    let link = format!(r#"<link rel="manifest" href="{base}/manifest.webmanifest">"#);
    assert!(html.contains(&link), "{html}");

    let r = get(&app, &format!("{base}/manifest.webmanifest")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/manifest+json"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    let manifest = r.json();
    assert_eq!(manifest["name"], "MediaNest");
    assert_eq!(manifest["short_name"], "MediaNest");
    assert!(
        manifest["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    assert_eq!(manifest["display"], "standalone");
    assert_eq!(manifest["start_url"], format!("{base}/"));
    assert_eq!(manifest["scope"], format!("{base}/"));
    assert_eq!(manifest["id"], format!("{base}/"));
    for key in ["theme_color", "background_color"] {
        let color = manifest[key].as_str().unwrap();
        assert!(color.len() == 7 && color.starts_with('#'), "{key}: {color}");
    }
    assert!(!r.text().contains("{{"), "{}", r.text());

    // Every icon: under the base, a PNG of the size it declares; 192, 512 and a maskable one.
    let icons = manifest["icons"].as_array().unwrap();
    let mut seen = Vec::new();
    for icon in icons {
        let src = icon["src"].as_str().unwrap();
        assert!(src.starts_with(&format!("{base}/icons/")), "{src}");
        assert_eq!(icon["type"], "image/png");
        let r = get(&app, src).await;
        assert_eq!(r.status, StatusCode::OK, "{src}");
        assert_eq!(r.header("content-type"), Some("image/png"), "{src}");
        let (w, h) = png_size(&r.body);
        assert_eq!(icon["sizes"], format!("{w}x{h}"), "{src}");
        seen.push((w, icon["purpose"].as_str().unwrap_or("any").to_owned()));
    }
    for wanted in [(192, "any"), (512, "any"), (512, "maskable")] {
        assert!(
            seen.iter().any(|(w, p)| *w == wanted.0 && p == wanted.1),
            "no {wanted:?} icon in {seen:?}"
        );
    }

    // The worker: at the scope's root, a script, revalidated every time even with a `v`.
    for path in [
        format!("{base}/sw.js"),
        format!("{base}/sw.js?v=0000000000000000"),
    ] {
        let r = get(&app, &path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(
            r.header("content-type"),
            Some("text/javascript; charset=utf-8"),
            "{path}"
        );
        assert_eq!(r.header("cache-control"), Some("no-cache"), "{path}");
        assert_eq!(r.header("service-worker-allowed"), None, "{path}");
    }
    let worker = get(&app, &format!("{base}/sw.js")).await.text();
    assert!(!worker.contains("{{"), "{worker}");
    assert!(
        worker.contains(&format!("const BASE = \"{base}\";")),
        "{worker}"
    );
    // The shell it precaches: the page and the files it names by their current fingerprint,
    // each of which is served.
    let line = worker
        .lines()
        .find_map(|l| l.strip_prefix("const SHELL = "))
        .unwrap();
    let shell: Vec<String> = serde_json::from_str(line.trim_end_matches(';')).unwrap();
    assert_eq!(shell[0], format!("{base}/"));
    for name in ["app.js", "app.css"] {
        let start = html.find(&format!("{base}/{name}?v=")).unwrap();
        let url = &html[start..start + html[start..].find('"').unwrap()];
        assert!(shell.iter().any(|u| u == url), "{url} not in {shell:?}");
    }
    for url in [
        format!("{base}/js/api.js"),
        format!("{base}/manifest.webmanifest"),
    ] {
        assert!(shell.contains(&url), "{url} not in {shell:?}");
    }
    assert!(!shell.iter().any(|u| u.contains("/api/")), "{shell:?}");
    assert!(!shell.iter().any(|u| u.ends_with("sw.js")), "{shell:?}");
    for url in &shell {
        let r = get(&app, url).await;
        assert_eq!(r.status, StatusCode::OK, "{url}");
    }
}

#[tokio::test]
async fn the_app_installs_at_the_root() {
    check_install("").await;
}

#[tokio::test]
async fn the_app_installs_under_a_base_path() {
    check_install("/medianest").await;
}

#[tokio::test]
async fn the_worker_names_this_build() {
    let (_t, app) = app_under("").await;
    let version = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("const VERSION = \""))
            .map(|v| v.trim_end_matches("\";").to_owned())
            .unwrap()
    };
    let first = get(&app, "/sw.js").await;
    let v = version(&first.text());
    assert_eq!(v.len(), 16, "{v}");
    assert!(v.chars().all(|c| c.is_ascii_hexdigit()), "{v}");
    // Same build, same worker: a 304 on revalidation.
    let etag = first.header("etag").unwrap().to_owned();
    let again = support::send(
        &app,
        axum::http::Request::get("/sw.js")
            .header("if-none-match", &etag)
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn the_csp_allows_the_manifest_and_worker_from_this_origin_only() {
    let (_t, app) = app_under("").await;
    for path in ["/", "/sw.js", "/manifest.webmanifest", "/api/v1/nope"] {
        let r = get(&app, path).await;
        let csp = r.header("content-security-policy").unwrap().to_owned();
        let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
        assert!(directives.contains(&"manifest-src 'self'"), "{path}: {csp}");
        assert!(directives.contains(&"worker-src 'self'"), "{path}: {csp}");
        assert!(directives.contains(&"default-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        assert!(!csp.contains('*'), "{path}: {csp}");
    }
}
