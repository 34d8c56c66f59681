//! `server.base_path`: the whole application under a sub-path (the dashboard and its
//! fingerprinted files, the API, health and metrics), 404 in the envelope outside it, a redirect
//! to the base with its slash, cookies scoped to it, and absolute URLs (the Plex sign-in's way
//! back, the Seerr webhook URL) built from `server.public_url` or, from trusted proxies only,
//! `X-Forwarded-Proto` / `X-Forwarded-Host`.

use std::time::Duration;

use axum::http::StatusCode;
use medianest::config::{Config, Secret};

use crate::support::{self, SignedIn, assert_error, call, get, sign_in};

const ADMIN_PASSWORD: &str = "correct horse battery";
const BASE: &str = "/medianest";

async fn under_base(edit: impl FnOnce(&mut Config)) -> support::TestState {
    let t = support::test_state_with(|c| {
        c.admin.password = Some(Secret::new(ADMIN_PASSWORD));
        c.server.base_path = BASE.into();
        edit(c);
    });
    support::prepare(&t).await;
    t
}

/// The admin signed in through `POST <base>/api/v1/auth/login`.
async fn sign_in_under_base(app: &axum::Router) -> SignedIn {
    let r = call("POST", "/medianest/api/v1/auth/login")
        .json(serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send(app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    SignedIn::from_response(r)
}

#[tokio::test]
async fn the_dashboard_and_its_fingerprinted_files_live_under_the_base_path() {
    let t = under_base(|_| {}).await;
    let app = t.router();
    let r = get(&app, "/medianest/").await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert!(
        html.contains(r#"<meta name="medianest-base" content="/medianest">"#),
        "{html}"
    );
    assert!(!html.contains("{{"), "{html}");
    let start = html.find("src=\"/medianest/app.js?v=").expect(&html) + 5;
    let script = &html[start..start + html[start..].find('"').unwrap()];
    let r = get(&app, script).await;
    assert_eq!(r.status, StatusCode::OK, "{script}");
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=31536000, immutable"),
        "{script}"
    );
    assert!(html.contains("href=\"/medianest/app.css?v="), "{html}");
    // The app's own routes fall back to the same page; modules load from under the base.
    assert_eq!(get(&app, "/medianest/admin/users").await.text(), html);
    // Title pages: a numeric last segment is still an app route.
    for title in ["/medianest/movie/603", "/medianest/tv/1399"] {
        let r = get(&app, title).await;
        assert_eq!(r.status, StatusCode::OK, "{title}");
        assert_eq!(r.text(), html, "{title}");
    }
    assert_eq!(
        get(&app, "/medianest/js/base.js").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&app, "/medianest/health/ready").await.status,
        StatusCode::OK
    );
    assert_eq!(get(&app, "/medianest/health").await.status, StatusCode::OK);
    assert_eq!(
        get(&app, "/medianest/api/v1/health").await.status,
        StatusCode::OK
    );
    let metrics = get(&app, "/medianest/metrics").await;
    assert_ne!(metrics.status, StatusCode::NOT_FOUND, "{}", metrics.text());
    assert_error(
        &get(&app, "/medianest/api/v1/nope").await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
}

#[tokio::test]
async fn requests_outside_the_base_path_are_404_in_the_envelope() {
    let t = under_base(|_| {}).await;
    let app = t.router();
    for path in [
        "/",
        "/index.html",
        "/app.js",
        "/admin",
        "/api/v1/health",
        "/api/v1/auth/session",
        "/health/ready",
        "/metrics",
        "/medianestx",
        "/medianestx/api/v1/health",
        "/other/medianest/",
    ] {
        let r = get(&app, path).await;
        let error = assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
        assert!(error["correlationId"].is_string(), "{path}: {error}");
        assert!(
            r.header("content-security-policy").is_some(),
            "{path}: the edge's headers as on every answer"
        );
        assert!(r.header("x-correlation-id").is_some(), "{path}");
    }
    let r = call("POST", "/api/v1/auth/login")
        .json(serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send(&app)
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test]
async fn the_base_path_without_its_slash_redirects_to_it() {
    let t = under_base(|_| {}).await;
    let app = t.router();
    let r = get(&app, "/medianest").await;
    assert_eq!(r.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(r.header("location"), Some("/medianest/"));
    let r = get(&app, "/medianest?next=%2Fadmin").await;
    assert_eq!(r.header("location"), Some("/medianest/?next=%2Fadmin"));
}

#[tokio::test]
async fn at_the_root_nothing_changes() {
    let t = support::test_state_with(|c| c.server.base_path = "/".into());
    let app = t.router();
    let html = get(&app, "/").await.text();
    assert!(
        html.contains(r#"<meta name="medianest-base" content="">"#),
        "{html}"
    );
    assert!(html.contains("src=\"/app.js?v="), "{html}");
    assert_eq!(get(&app, "/health/ready").await.status, StatusCode::OK);
    assert_eq!(get(&app, "/api/v1/health").await.status, StatusCode::OK);
    // Any other path is one of the app's pages, as before.
    assert_eq!(get(&app, "/medianest/").await.text(), html);
}

#[tokio::test]
async fn session_cookies_are_scoped_to_the_base_path() {
    let t = under_base(|_| {}).await;
    let app = t.router();
    let r = call("POST", "/medianest/api/v1/auth/login")
        .json(serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let cookie = r.set_cookie("medianest_session").expect("a session cookie");
    assert_eq!(cookie.attribute("Path"), Some(BASE));
    let token = r.data()["token"].as_str().unwrap().to_owned();
    let csrf = r.data()["csrfToken"].as_str().unwrap().to_owned();
    let r = call("GET", "/medianest/api/v1/auth/session")
        .cookie("medianest_session", &cookie.value)
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = call("POST", "/medianest/api/v1/auth/logout")
        .cookie("medianest_session", &token)
        .header("x-csrf-token", &csrf)
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let cleared = r
        .set_cookie("medianest_session")
        .expect("the cookie cleared");
    assert_eq!(cleared.attribute("Path"), Some(BASE));
    assert_eq!(cleared.attribute("Max-Age"), Some("0"));

    // At the root the cookie stays on `/`.
    let t = support::test_state_with(|c| c.admin.password = Some(Secret::new(ADMIN_PASSWORD)));
    support::prepare(&t).await;
    let r = sign_in(&t.router(), "admin", ADMIN_PASSWORD).await.response;
    let cookie = r.set_cookie("medianest_session").unwrap();
    assert_eq!(cookie.attribute("Path"), Some("/"));
}

/// The Seerr webhook URL the admin page shows, as `peer` asking with `headers` sees it.
async fn webhook_url(
    app: &axum::Router,
    token: &str,
    peer: &str,
    headers: &[(&str, &str)],
) -> String {
    let mut request = call("GET", "/medianest/api/v1/admin/services")
        .bearer(token)
        .peer(peer);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let r = request.send(app).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let list = r.data();
    let seerr = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "overseerr")
        .expect("Seerr's settings");
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .filter(|s| s["name"] != "overseerr")
            .all(|s| s.get("webhookUrl").is_none()),
        "{list}"
    );
    seerr["webhookUrl"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn forwarded_host_and_proto_are_believed_only_from_trusted_proxies() {
    let t =
        under_base(|c| c.server.trusted_proxies = vec!["10.0.0.1".parse().unwrap()].into()).await;
    let app = t.router();
    let token = sign_in_under_base(&app).await.token;
    let forwarded = [
        ("host", "127.0.0.1:4000"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "home.example"),
    ];
    assert_eq!(
        webhook_url(&app, &token, "10.0.0.1", &forwarded).await,
        "https://home.example/medianest/api/v1/webhooks/seerr"
    );
    // The same headers from anyone else are the client's own words: the Host stands.
    assert_eq!(
        webhook_url(&app, &token, "192.0.2.7", &forwarded).await,
        "http://127.0.0.1:4000/medianest/api/v1/webhooks/seerr"
    );
}

/// A cookie write's `Origin` is checked against the host the browser used: behind a trusted
/// proxy that passes its own upstream address as `Host`, that is `X-Forwarded-Host`.
#[tokio::test]
async fn the_csrf_origin_check_believes_forwarded_host_only_from_trusted_proxies() {
    let t =
        under_base(|c| c.server.trusted_proxies = vec!["10.0.0.1".parse().unwrap()].into()).await;
    let app = t.router();
    let admin = sign_in_under_base(&app).await;
    // A write that passes the check answers 404 (no such session): nothing is changed.
    let write = |peer: &str| {
        call(
            "DELETE",
            "/medianest/api/v1/auth/sessions/0190a0a0-0000-7000-8000-000000000000",
        )
        .session(&admin.token)
        .csrf(&admin.csrf)
        .peer(peer)
        .header("host", "127.0.0.1:4000")
        .header("x-forwarded-host", "home.example")
        .header("origin", "https://home.example")
    };
    assert_error(
        &write("10.0.0.1").send(&app).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    assert_error(
        &write("192.0.2.7").send(&app).await,
        StatusCode::FORBIDDEN,
        "CSRF_TOKEN_INVALID",
    );
}

#[tokio::test]
async fn public_url_wins_over_forwarded_headers() {
    let t = under_base(|c| {
        c.server.trusted_proxies = vec!["10.0.0.1".parse().unwrap()].into();
        c.server.public_url = Some("https://media.example.com".into());
    })
    .await;
    let app = t.router();
    let token = sign_in_under_base(&app).await.token;
    let forwarded = [
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", "elsewhere.example"),
    ];
    assert_eq!(
        webhook_url(&app, &token, "10.0.0.1", &forwarded).await,
        "https://media.example.com/medianest/api/v1/webhooks/seerr"
    );
}

/// The per-IP limit (in front of the router, `ratelimit::Gate`) covers the API under the base
/// path, through a real server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_ip_limit_covers_the_api_under_the_base_path() {
    let t = under_base(|c| {
        c.limits.ip_per_second = 1;
        c.limits.ip_burst = 2;
    })
    .await;
    let server = support::RunningServer::start(&t.state, t.router()).await;
    let addr = server.addr;
    let statuses = tokio::task::spawn_blocking(move || {
        (0..3)
            .map(|_| raw_status(addr, "/medianest/api/v1/health"))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert_eq!(statuses, [200, 200, 429]);
}

fn raw_status(addr: std::net::SocketAddr, path: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text.split(' ').nth(1).unwrap().parse().unwrap()
}
