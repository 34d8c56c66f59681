//! `GET /metrics`: Prometheus text labelled by route template, optionally behind a bearer token.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use medianest::config::Secret;

use crate::support::{self, assert_error, call, get, send};

#[tokio::test]
async fn requests_are_counted_by_route_template_never_by_raw_path() {
    let t = support::test_state();
    let app = t.router();
    assert_eq!(get(&app, "/api/v1/health").await.status, StatusCode::OK);
    assert_eq!(
        get(&app, "/api/v1/nope/123").await.status,
        StatusCode::NOT_FOUND
    );

    let r = get(&app, "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    let content_type = r.header("content-type").unwrap_or("");
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = r.text();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with(
                r#"medianest_http_requests_total{method="GET",route="/api/v1/health",status="200"} "#,
            )
        })
        .unwrap_or_else(|| panic!("no counter for GET /api/v1/health:\n{text}"));
    assert!(line.ends_with(" 1"), "one request so far: {line}");
    assert!(text.contains("# TYPE medianest_http_requests_total counter"));
    assert!(
        !text.contains("/api/v1/nope/123") && !text.contains("nope"),
        "a raw path leaked into the labels:\n{text}"
    );
}

#[tokio::test]
async fn a_metrics_token_is_required_when_configured() {
    let t = support::test_state_with(|c| c.metrics.token = Some(Secret::new("m3trics-t0ken")));
    let app = t.router();

    let r = get(&app, "/metrics").await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

    let with = |value: &str| {
        Request::get("/metrics")
            .header("authorization", value)
            .body(Body::empty())
            .unwrap()
    };
    let r = send(&app, with("Bearer wrong-token")).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

    let r = send(&app, with("Bearer m3trics-t0ken")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("medianest_http_requests_total"));
}

/// Without `metrics.token`, a listen address other than loopback puts `/metrics` behind an admin
/// session: the text names routes and services and is not for whoever can reach the port.
#[tokio::test]
async fn without_a_token_a_network_listen_address_wants_an_admin_session() {
    for listen in ["0.0.0.0:4000", "[::]:4000", "192.168.1.20:4000"] {
        let t = support::test_state_with(|c| c.server.listen = listen.parse().unwrap());
        let app = t.router();
        let admin = support::insert_user(&t.state, "boss", None, "admin", None).await;
        let user = support::insert_user(&t.state, "ann", None, "user", None).await;
        let admin = support::new_session(&t.state, &admin).await;
        let user = support::new_session(&t.state, &user).await;

        let r = get(&app, "/metrics").await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        let r = call("GET", "/metrics")
            .bearer("made-up-token")
            .send(&app)
            .await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        let r = call("GET", "/metrics")
            .session(&user.token)
            .send(&app)
            .await;
        assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");

        for r in [
            call("GET", "/metrics")
                .session(&admin.token)
                .send(&app)
                .await,
            call("GET", "/metrics")
                .bearer(&admin.token)
                .send(&app)
                .await,
        ] {
            assert_eq!(r.status, StatusCode::OK, "{listen}: {}", r.text());
            assert!(r.text().contains("medianest_http_requests_total"));
        }
    }
}

/// On a loopback address only this machine can connect: no token, no session needed.
#[tokio::test]
async fn without_a_token_a_loopback_listen_address_stays_open() {
    for listen in ["127.0.0.1:4000", "[::1]:4000"] {
        let t = support::test_state_with(|c| c.server.listen = listen.parse().unwrap());
        let r = get(&t.router(), "/metrics").await;
        assert_eq!(r.status, StatusCode::OK, "{listen}: {}", r.text());
    }
}

/// A reverse proxy on the same machine reaches the loopback address for everybody: what it
/// forwards wants an admin session.
#[tokio::test]
async fn behind_a_proxy_on_loopback_forwarded_requests_want_an_admin_session() {
    let t = support::test_state_with(|c| {
        c.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()].into();
    });
    let app = t.router();
    let admin = support::insert_user(&t.state, "boss", None, "admin", None).await;
    let admin = support::new_session(&t.state, &admin).await;
    for (name, value) in [
        ("x-forwarded-for", "203.0.113.9"),
        ("forwarded", "for=203.0.113.9;proto=https"),
    ] {
        let r = call("GET", "/metrics")
            .peer("127.0.0.1")
            .header(name, value)
            .send(&app)
            .await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        let r = call("GET", "/metrics")
            .peer("127.0.0.1")
            .header(name, value)
            .session(&admin.token)
            .send(&app)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.text());
    }
    // nginx's plain `proxy_pass` adds no header: the trusted proxy's own address is enough.
    let r = call("GET", "/metrics").peer("127.0.0.1").send(&app).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let r = call("GET", "/metrics")
        .peer("::ffff:127.0.0.1")
        .send(&app)
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let r = call("GET", "/metrics")
        .peer("127.0.0.1")
        .session(&admin.token)
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // A scraper on this machine at an address that is not the proxy's, straight to the port.
    let r = call("GET", "/metrics").peer("::1").send(&app).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

/// The bearer scheme is case-insensitive, as for session tokens.
#[tokio::test]
async fn the_metrics_token_scheme_is_case_insensitive() {
    let t = support::test_state_with(|c| c.metrics.token = Some(Secret::new("m3trics-t0ken")));
    let app = t.router();
    for value in [
        "bearer m3trics-t0ken",
        "BEARER m3trics-t0ken",
        "Bearer m3trics-t0ken",
    ] {
        let r = send(
            &app,
            Request::get("/metrics")
                .header("authorization", value)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{value}: {}", r.text());
    }
    let r = send(
        &app,
        Request::get("/metrics")
            .header("authorization", "Basic m3trics-t0ken")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}
