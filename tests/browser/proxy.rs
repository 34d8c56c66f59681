//! The dashboard behind a real nginx ([`crate::nginx`], the README's configuration), once at the
//! root and once under a sub-path (`server.base_path`), with nginx as a trusted proxy: what the
//! server builds from nginx's forwarded headers (the cookie's Path, the Plex way back, the Seerr
//! webhook URL), then in Chromium a sign-in through the proxy, the home page, moving around, a
//! live event over the event stream through the proxy, and signing out. Also: a client's own
//! forwarded headers do not get through nginx, and untrusted, nginx's `Host` is what counts.

use std::time::Duration;

use serde_json::{Value, json};

use crate::nginx::{self, Nginx};
use crate::webdriver::{self, Browser};
use crate::{ADMIN_PASSWORD, App, DESKTOP, assert_clean_console, serial};

const SUB_PATH: &str = "/medianest";

#[test]
fn the_dashboard_works_behind_nginx_at_the_root() {
    behind_nginx("");
}

#[test]
fn the_dashboard_works_behind_nginx_under_a_sub_path() {
    behind_nginx(SUB_PATH);
}

/// The README gives the very `location` blocks these tests run nginx with.
#[test]
fn the_readme_gives_the_tested_nginx_configuration() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for base in ["", SUB_PATH] {
        let blocks = nginx::locations(base, nginx::README_UPSTREAM);
        assert!(
            readme.contains(&blocks),
            "README.md lacks the nginx configuration for base `{base}`:\n{blocks}"
        );
    }
}

/// One HTTP call: `(status, JSON body, Set-Cookie values)`.
fn http(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, Vec<String>) {
    let agent = webdriver::agent(Duration::from_secs(10));
    let auth = token.map(|t| format!("Bearer {t}"));
    let response = match (method, body) {
        ("GET", _) => {
            let mut r = agent.get(url);
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.call()
        }
        ("DELETE", _) => {
            let mut r = agent.delete(url);
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.call()
        }
        (_, body) => {
            let mut r = agent.post(url).header("Content-Type", "application/json");
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.send(body.unwrap_or_else(|| json!({})).to_string().as_bytes())
        }
    };
    let mut response = response.unwrap();
    let status = response.status().as_u16();
    let cookies = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        cookies,
    )
}

/// nginx writes the forwarded headers itself: a client's own `X-Forwarded-Host` and
/// `X-Forwarded-Proto` do not get through it. Without `server.trusted_proxies`, MediaNest goes
/// by the `Host` nginx passes (`$host`, which has no port).
#[test]
fn forwarded_headers_through_nginx_are_nginxs_own() {
    let _serial = serial();
    for trusted in [true, false] {
        let app = App::start_with(|c| {
            c.server.base_path = SUB_PATH.into();
            if trusted {
                c.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()].into();
            }
        });
        let proxy = Nginx::start(SUB_PATH, app.addr);
        let site = format!("http://{}{SUB_PATH}", proxy.addr);
        let (status, login, _) = http(
            "POST",
            &format!("{site}/api/v1/auth/login"),
            None,
            Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
        );
        assert_eq!(status, 200, "{login}");
        let token = login["data"]["token"].as_str().unwrap();
        let mut response = webdriver::agent(Duration::from_secs(10))
            .get(format!("{site}/api/v1/admin/services"))
            .header("Authorization", &format!("Bearer {token}"))
            .header("X-Forwarded-Host", "evil.example")
            .header("X-Forwarded-Proto", "https")
            .call()
            .unwrap();
        let services: Value =
            serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        let seerr = services["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "overseerr")
            .unwrap();
        let expected = if trusted {
            format!("{site}/api/v1/webhooks/seerr")
        } else {
            format!("http://127.0.0.1{SUB_PATH}/api/v1/webhooks/seerr")
        };
        assert_eq!(seerr["webhookUrl"], json!(expected), "trusted: {trusted}");
    }
}

fn behind_nginx(base: &str) {
    let _serial = serial();
    nginx::require_nginx();
    let app = App::start_with(|c| {
        c.server.base_path = base.into();
        // nginx connects from loopback: its X-Forwarded-* headers are believed.
        c.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()].into();
    });
    let proxy = Nginx::start(base, app.addr);
    // The address the browser uses; nginx passes MediaNest `Host: 127.0.0.1` (no port) and the
    // real one in X-Forwarded-Host.
    let site = format!("http://{}{base}", proxy.addr);
    let encoded = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();

    // The Plex sign-in's way back is the home page as the browser reaches it.
    let (status, pin, cookies) = http("POST", &format!("{site}/api/v1/auth/plex/pin"), None, None);
    assert_eq!(status, 200, "{pin}");
    let auth_url = pin["data"]["authUrl"].as_str().unwrap();
    let way_back = format!("forwardUrl={}", encoded(&format!("{site}/")));
    assert!(auth_url.contains(&way_back), "{auth_url} lacks {way_back}");
    assert!(
        cookies
            .iter()
            .any(|c| c.contains(&format!("; Path={base}/api/v1/auth/plex;"))),
        "{cookies:?}"
    );

    // The session cookie is scoped to the base path; the webhook URL the admin sees is ours.
    let (status, login, cookies) = http(
        "POST",
        &format!("{site}/api/v1/auth/login"),
        None,
        Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
    );
    assert_eq!(status, 200, "{login}");
    let cookie_path = if base.is_empty() { "/" } else { base };
    assert!(
        cookies.iter().any(|c| c.starts_with("medianest_session=")
            && c.contains(&format!("; Path={cookie_path};"))),
        "{cookies:?}"
    );
    let token = login["data"]["token"].as_str().unwrap().to_owned();
    let (_, services, _) = http(
        "GET",
        &format!("{site}/api/v1/admin/services"),
        Some(&token),
        None,
    );
    let seerr = services["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "overseerr")
        .unwrap();
    assert_eq!(
        seerr["webhookUrl"],
        json!(format!("{site}/api/v1/webhooks/seerr")),
        "{seerr}"
    );

    // In the browser: signing in through the proxy leads home.
    let name = if base.is_empty() {
        "nginx-root"
    } else {
        "nginx-sub-path"
    };
    let b = Browser::start(name, DESKTOP.0, DESKTOP.1);
    // The address without its slash (`/medianest`): nginx redirects it to the base path.
    b.goto(&site);
    b.wait_path(&format!("{base}/signin"));
    b.find("#username").send_keys("admin");
    b.find("#password").send_keys(ADMIN_PASSWORD);
    b.find("#local-signin").click();
    b.wait_path(&format!("{base}/"));
    b.find("[data-service='plex']");
    b.find("#active-downloads");

    // The navigation's links live under the base path and lead back home.
    b.find(&format!("a.nav-link[href='{base}/downloads']"))
        .click();
    b.wait_path(&format!("{base}/downloads"));
    b.find("#download-url");
    // The admin's Seerr form shows the webhook URL as Seerr must call it, through the proxy.
    b.find(&format!("a.nav-link[href='{base}/admin']")).click();
    b.wait_path(&format!("{base}/admin"));
    b.find(&format!("a.tab[href='{base}/admin/services']"))
        .click();
    b.wait_path(&format!("{base}/admin/services"));
    b.find_text(
        "#svc-overseerr-webhook",
        &format!("{site}/api/v1/webhooks/seerr"),
    );
    b.find(&format!("a.nav-link[href='{base}/']")).click();
    b.wait_path(&format!("{base}/"));
    b.find("#active-downloads");

    // A download started elsewhere shows up on the home page by the event stream alone.
    b.find("#live.live-live");
    b.script("window.__noReload = true;", vec![]);
    let (status, created, _) = http(
        "POST",
        &format!("{site}/api/v1/youtube/downloads"),
        Some(&token),
        Some(json!({"url": "https://www.youtube.com/watch?v=slowAAAAAAA"})),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    b.find(&format!("#active-downloads [data-download='{id}']"));
    assert_eq!(
        b.script("return window.__noReload === true;", vec![]),
        json!(true)
    );
    let (status, body, _) = http(
        "DELETE",
        &format!("{site}/api/v1/youtube/downloads/{id}"),
        Some(&token),
        None,
    );
    assert!(status < 300, "{status} {body}");
    assert_clean_console(&b);

    // Signing out ends the session: the home page asks to sign in again.
    b.find_text("button.link", "Sign out").click();
    b.wait_path(&format!("{base}/signin"));
    b.goto(&format!("{site}/"));
    b.wait_path(&format!("{base}/signin"));
    b.find("#username");
}
