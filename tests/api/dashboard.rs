//! The embedded dashboard through the real router: files with their types, ETag and 304,
//! gzip for text, fingerprinted links cached as immutable, `index.html` for the app's own routes
//! and never for API, health or metrics paths, the CSP on every page, and no inline script or
//! style attribute anywhere in the assets (the CSP would block them).

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};

use crate::support::{self, assert_error, get, send};

const CSP: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; manifest-src 'self'; worker-src 'self'";

async fn get_with(
    app: &axum::Router,
    path: &str,
    headers: &[(&str, &str)],
) -> support::TestResponse {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(app, request.body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn the_app_is_served_at_the_root_with_the_csp() {
    let t = support::test_state();
    let app = t.router();
    let r = get(&app, "/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("content-security-policy"), Some(CSP));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert!(r.header("etag").is_some());
    let html = r.text();
    assert!(
        html.contains("<script type=\"module\" src=\"/app.js?v="),
        "{html}"
    );
    assert!(!html.contains("{{v:"), "{html}");
}

#[tokio::test]
async fn app_routes_fall_back_to_index_html_but_server_paths_do_not() {
    let t = support::test_state();
    let app = t.router();
    let index = get(&app, "/").await.text();
    for path in [
        "/discover",
        "/requests",
        "/admin/users",
        "/signin?next=%2F",
        "/some/deep/link",
    ] {
        let r = get(&app, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.text(), index, "{path}");
    }
    for path in ["/api/v1/nope", "/api", "/api/", "/health/nope"] {
        let r = get(&app, path).await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    // A missing file is a 404, not the app.
    let r = get(&app, "/js/pages/nope.js").await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    // Writes to app paths are not pages.
    let r = send(
        &app,
        Request::post("/discover").body(Body::empty()).unwrap(),
    )
    .await;
    assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn files_have_their_content_types() {
    let t = support::test_state();
    let app = t.router();
    for (path, ty) in [
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/js/api.js", "text/javascript; charset=utf-8"),
        ("/app.css", "text/css; charset=utf-8"),
        ("/icon.svg", "image/svg+xml"),
        ("/index.html", "text/html; charset=utf-8"),
    ] {
        let r = get(&app, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.header("content-type"), Some(ty), "{path}");
        assert_eq!(r.header("content-security-policy"), Some(CSP), "{path}");
    }
}

#[tokio::test]
async fn an_unchanged_file_is_a_304() {
    let t = support::test_state();
    let app = t.router();
    let first = get(&app, "/app.css").await;
    let etag = first.header("etag").unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let again = get_with(&app, "/app.css", &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let other = get_with(&app, "/app.css", &[("if-none-match", "\"something-else\"")]).await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.body, first.body);
}

#[tokio::test]
async fn text_is_gzipped_for_browsers_that_accept_it() {
    use std::io::Read;
    let t = support::test_state();
    let app = t.router();
    let plain = get(&app, "/app.css").await;
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
    let gz = get_with(
        &app,
        "/app.css",
        &[("accept-encoding", "gzip, deflate, br")],
    )
    .await;
    assert_eq!(gz.status, StatusCode::OK);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert!(gz.body.len() < plain.body.len());
    assert_ne!(gz.header("etag"), plain.header("etag"));
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&gz.body[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, plain.body.to_vec());
    // The gzip variant has its own validator.
    let etag = gz.header("etag").unwrap().to_owned();
    let again = get_with(
        &app,
        "/app.css",
        &[("accept-encoding", "gzip"), ("if-none-match", &etag)],
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn fingerprinted_links_are_immutable_and_stale_ones_are_not() {
    let t = support::test_state();
    let app = t.router();
    let html = get(&app, "/").await.text();
    let start = html.find("/app.css?v=").unwrap();
    let link = &html[start..start + html[start..].find('"').unwrap()];
    let r = get(&app, link).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    // A fingerprint of another build is served, but not as immutable.
    let r = get(&app, "/app.css?v=0000000000000000").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("cache-control"), Some("no-cache"));
}

#[tokio::test]
async fn head_works_and_paths_cannot_leave_the_assets() {
    let t = support::test_state();
    let app = t.router();
    let r = send(
        &app,
        Request::builder()
            .method(Method::HEAD)
            .uri("/app.js")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty());
    for path in [
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/js/../../Cargo.toml",
        "/.hidden",
    ] {
        let r = get(&app, path).await;
        assert!(
            r.status == StatusCode::NOT_FOUND || !r.text().contains("[package]"),
            "{path}: {}",
            r.status
        );
    }
}

/// The CSP forbids inline script and style: no `<script>` with a body, no `style=` attribute,
/// no `on...=` handler in the HTML, and no script that sets a `style` attribute.
#[test]
fn the_assets_need_nothing_the_csp_forbids() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let mut stack = vec![root];
    let mut checked = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let name = path.display().to_string();
            checked += 1;
            if name.ends_with(".html") {
                let lower = text.to_ascii_lowercase();
                assert!(!lower.contains(" style="), "{name} has a style attribute");
                assert!(
                    !lower.contains("<style"),
                    "{name} has an inline style element"
                );
                let inline = lower.match_indices("<script").any(|(i, _)| {
                    let tag_end = lower[i..].find('>').map_or(i, |e| i + e);
                    !lower[i..tag_end].contains("src=")
                });
                assert!(!inline, "{name} has an inline script");
                assert!(
                    !lower.contains(" onclick=") && !lower.contains(" onload="),
                    "{name} has an inline handler"
                );
                assert!(
                    !lower.contains("http://") && !lower.contains("https://"),
                    "{name} loads from another host"
                );
            }
            if name.ends_with(".js") {
                assert!(
                    !text.contains("setAttribute(\"style\""),
                    "{name} sets a style attribute"
                );
                assert!(!text.contains(".innerHTML"), "{name} uses innerHTML");
                assert!(!text.contains("eval("), "{name} uses eval");
                // Code never loads from another host (text such as a placeholder may name one).
                for load in [
                    "from \"http",
                    "import(\"http",
                    "fetch(\"http",
                    "src: \"http",
                    "EventSource(\"http",
                ] {
                    assert!(
                        !text.contains(load),
                        "{name} loads from another host: {load}"
                    );
                }
            }
        }
    }
    assert!(checked >= 10, "only {checked} asset files");
}
