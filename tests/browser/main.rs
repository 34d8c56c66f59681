//! The dashboard end to end, in headless Chromium (Debian's `chromium` and `chromium-driver`,
//! installed by `tests/run`) against the real server (`medianest::serve` on a loopback port) and
//! the simulated upstreams of the demo (`medianest::demo::Simulators`): plex.tv with its consent
//! page, Plex, Overseerr with its webhook, Uptime Kuma, and the simulated yt-dlp.
//!
//! - A family member signs in with the Plex PIN flow, sees the service cards, searches, requests
//!   a title, sees it in My requests and its status change live when Overseerr's webhook says it
//!   is available, then submits a download and watches its progress bar reach 100%, sees a
//!   failing one's error, and cancels and retries a slow one.
//! - An admin changes a user's role, edits and tests a service, approves and declines requests,
//!   and sees Discover explain why requesting is off while Overseerr is switched off.
//! - The forced password change of a first start; errors with their correlation id; signing in
//!   and moving around from the keyboard alone; live updates reconnecting after the server (the
//!   real binary, `medianest demo`) is killed and started again.
//!
//! Steps that need an API not in this build (the route table says which) are skipped with a
//! message naming the route, so they start running as soon as that API lands.
//!
//! Every test saves a screenshot when it fails; the run saves screenshots of the home, discover,
//! downloads and admin pages at 1280 and 375 px wide (see [`webdriver::screenshot_dir`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod nginx;
mod proxy;
mod webdriver;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use medianest::config::{Config, Secret};
use medianest::demo::Simulators;
use medianest::integrations::overseerr::webhook::NotificationType;
use medianest::sim::overseerr::FakeNotification;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use webdriver::Browser;

const ADMIN_PASSWORD: &str = "browser-test-admin";
const DESKTOP: (u32, u32) = (1280, 1000);
const PHONE: (u32, u32) = (375, 1000);

/// One browser at a time: the machine is small and Chromium is not.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether this build has an API route (method and path template, as in the route table).
fn has_route(method: &str, path: &str) -> bool {
    medianest::api_routes()
        .table()
        .iter()
        .any(|r| r.method.as_str() == method && r.path == path)
}

/// Whether a step must be skipped because this build lacks its route: never. Every step's route
/// is in the build, so a missing one (renamed, removed) fails the test instead of skipping it.
fn waiting_for(step: &str, method: &str, path: &str) -> bool {
    assert!(
        has_route(method, path),
        "step \"{step}\" needs {method} {path}, which this build does not have"
    );
    false
}

/// The server and its simulators, on a runtime of their own (the test drives the browser
/// synchronously).
struct App {
    rt: tokio::runtime::Runtime,
    sims: Simulators,
    addr: SocketAddr,
    /// `server.base_path` as served (empty at the root): [`App::url`] starts with it.
    base: String,
    stop: CancellationToken,
    data_dir: PathBuf,
    _dir: tempfile::TempDir,
}

impl App {
    fn start() -> Self {
        Self::start_with(|_| {})
    }

    fn start_with(edit: impl FnOnce(&mut Config)) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let ytdlp = simulated_ytdlp(dir.path());
        let mut config = Config {
            data_dir: data_dir.clone(),
            ..Config::default()
        };
        config.admin.password = Some(Secret::new(ADMIN_PASSWORD));
        config.youtube.ytdlp_path = ytdlp.display().to_string();
        config.log.level =
            std::env::var("TEST_LOG").map_or_else(|_| "error".into(), |_| "info".into());
        edit(&mut config);
        let base = config.server.base().to_owned();
        let (sims, state, listener) = rt.block_on(async {
            let sims = Simulators::start().await.unwrap();
            sims.configure(&mut config);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let state = tokio::task::spawn_blocking(move || {
                medianest::bootstrap(config, medianest::clock::system())
            })
            .await
            .unwrap()
            .unwrap();
            (sims, state, listener)
        });
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        rt.spawn(medianest::serve(
            listener,
            state,
            stop.clone().cancelled_owned(),
        ));
        Self {
            rt,
            sims,
            addr,
            base,
            stop,
            data_dir,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}{path}", self.addr, self.base)
    }

    fn agent() -> ureq::Agent {
        webdriver::agent(Duration::from_secs(10))
    }

    /// An API call with a bearer token: `(status, body)`.
    fn api(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let url = self.url(&format!("/api/v1{path}"));
        let agent = Self::agent();
        let auth = format!("Bearer {token}");
        let response = match (method, body) {
            ("GET", _) => agent.get(&url).header("Authorization", &auth).call(),
            (_, body) => agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or_else(|| json!({})).to_string().as_bytes()),
        };
        let mut response = response.unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Signs the admin in over the API and returns the bearer token.
    fn admin_token(&self) -> String {
        let agent = Self::agent();
        let mut response = agent
            .post(self.url("/api/v1/auth/login"))
            .header("Content-Type", "application/json")
            .send(
                json!({"username": "admin", "password": ADMIN_PASSWORD})
                    .to_string()
                    .as_bytes(),
            )
            .unwrap();
        let body: Value =
            serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        body["data"]["token"].as_str().unwrap().to_owned()
    }

    /// Signs a plex.tv account in over the API (as the PIN flow does), creating its user.
    fn plex_sign_in(&self, username: &str) -> String {
        let agent = Self::agent();
        let mut created = agent
            .post(self.url("/api/v1/auth/plex/pin"))
            .header("Content-Type", "application/json")
            .send(b"{}".as_slice())
            .unwrap();
        let cookie = created
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").to_owned())
            .collect::<Vec<_>>()
            .join("; ");
        let pin: Value =
            serde_json::from_str(&created.body_mut().read_to_string().unwrap()).unwrap();
        let pin_id = pin["data"]["pinId"]
            .to_string()
            .trim_matches('"')
            .to_owned();
        // Approve it as the consent page does.
        let account_id = medianest::demo::ACCOUNTS
            .iter()
            .find(|(_, name, _)| *name == username)
            .map(|(id, _, _)| *id)
            .unwrap();
        let approved = agent
            .post(format!("{}/demo/approve", self.sims.plextv.url()))
            .header("Content-Type", "application/json")
            .send(
                json!({"code": pin["data"]["code"], "accountId": account_id})
                    .to_string()
                    .as_bytes(),
            )
            .unwrap();
        assert_eq!(approved.status().as_u16(), 200);
        let mut polled = agent
            .post(self.url(&format!("/api/v1/auth/plex/pin/{pin_id}/poll")))
            .header("Content-Type", "application/json")
            .header("Cookie", &cookie)
            .send(b"{}".as_slice())
            .unwrap();
        let body: Value =
            serde_json::from_str(&polled.body_mut().read_to_string().unwrap()).unwrap();
        assert_eq!(body["data"]["authorized"], json!(true), "{body}");
        body["data"]["token"].as_str().unwrap().to_owned()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop.cancel();
        let sims = &self.sims;
        self.rt.block_on(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            sims.shutdown().await;
        });
    }
}

/// The project's simulated yt-dlp (`medianest::sim::ytdlp`: the real binary under another
/// name), pausing `STEP_MS` between progress lines so the bar is seen moving.
fn simulated_ytdlp(dir: &Path) -> PathBuf {
    const STEP_MS: &str = "250";
    let dir = dir.join("yt-dlp");
    let program =
        medianest::sim::ytdlp::install(&dir, Path::new(env!("CARGO_BIN_EXE_medianest"))).unwrap();
    std::fs::write(dir.join("sim-step-ms"), STEP_MS).unwrap();
    program
}

/// Every control on the page has a name a screen reader can say (a label, `aria-label`, its
/// text or a title).
fn assert_labelled(browser: &Browser, page: &str) {
    let unnamed = browser.script(
        r#"const bad = [];
        for (const el of document.querySelectorAll("input, select, textarea, button, a[href]")) {
          if (el.type === "hidden" || el.closest("[hidden]")) continue;
          const named = el.getAttribute("aria-label")
            || (el.id && document.querySelector(`label[for="${el.id}"]`))
            || el.closest("label")
            || (el.textContent || "").trim()
            || el.getAttribute("title");
          if (!named) bad.push(el.outerHTML.slice(0, 160));
        }
        return bad;"#,
        vec![],
    );
    assert_eq!(unnamed, json!([]), "controls without a name on {page}");
}

/// Saves `<name>-1280.png` and `<name>-375.png` of the current page, and leaves the window at
/// the desktop size. Checks that its controls are labelled on the way.
fn shoot(browser: &Browser, name: &str) {
    assert_labelled(browser, name);
    for (width, height) in [DESKTOP, PHONE] {
        browser.resize(width, height);
        // Let a resize-driven layout settle: wait for two animation frames.
        browser.script(
            "return new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));",
            vec![],
        );
        let path = browser.screenshot(&format!("{name}-{width}"));
        eprintln!("screenshot: {}", path.display());
    }
    browser.resize(DESKTOP.0, DESKTOP.1);
}

/// The console must show no CSP violation and no failed module.
fn assert_clean_console(browser: &Browser) {
    let bad: Vec<String> = browser
        .console()
        .into_iter()
        .filter(|l| l.contains("Content Security Policy") || l.contains("Failed to load module"))
        .collect();
    assert!(bad.is_empty(), "browser console: {bad:#?}");
}

/// Signs in with the local form.
fn sign_in_locally(browser: &Browser, app: &App, username: &str, password: &str) {
    browser.goto(&app.url("/"));
    browser.wait_path("/signin");
    browser.find("#username").send_keys(username);
    browser.find("#password").send_keys(password);
    browser.find("#local-signin").click();
}

/// Signs in with Plex as the demo account `account`: the code is shown, the (simulated) Plex
/// page approves it, polling finishes it, and the app lands on the home page.
fn sign_in_with_plex(b: &Browser, app: &App, account: &str) {
    b.goto(&app.url("/"));
    b.wait_path("/signin");
    let home = b.window();
    b.find("#plex-signin").click();
    let code = b.find("#plex-code").text();
    assert!(!code.is_empty());
    let auth_url = b.find("#plex-link").attr("href").unwrap();
    assert!(auth_url.contains(&code), "{auth_url} lacks the code {code}");
    // The app opened the Plex page itself; approve there (or open the link when a pop-up
    // blocker kept it from opening).
    let opened = b.windows().into_iter().find(|w| *w != home);
    match opened {
        Some(handle) => b.switch_to(&handle),
        None => {
            b.new_tab();
            b.goto(&auth_url);
        }
    }
    b.find_text("button[data-account]", account).click();
    b.find_text("#status", "Approved");
    b.close_window();
    b.switch_to(&home);
    b.wait_path("/");
}

#[test]
fn a_family_member_signs_in_with_plex_requests_a_title_and_downloads() {
    let _serial = serial();
    let app = App::start();
    let b = Browser::start("family-member", DESKTOP.0, DESKTOP.1);

    sign_in_with_plex(&b, &app, "alice");

    // Home: service cards with status, uptime and a sparkline.
    b.find("[data-service='plex']");
    b.find("[data-service='overseerr']");
    b.find("[data-service^='kuma:']");
    let plex_card = b.find("[data-service='plex']").text();
    assert!(plex_card.contains("Plex"), "{plex_card}");
    assert!(plex_card.contains("Uptime 24 h"), "{plex_card}");
    b.find("[data-service='plex'] svg.sparkline");
    assert_clean_console(&b);
    shoot(&b, "home");
    b.dark(true);
    shoot(&b, "home-dark");
    b.dark(false);

    // Discover: search and request a movie.
    b.find("a.nav-link[href='/discover']").click();
    b.wait_path("/discover");
    if waiting_for("search and request", "GET", "/api/v1/media/search") {
        shoot(&b, "discover-search");
    } else {
        b.find("#search").send_keys("Matrix");
        b.find("form.search button[type='submit']").click();
        let tmdb = b.attr_of(".result", "The Matrix", "data-tmdb");
        shoot(&b, "discover-search");
        b.find(&format!(".result[data-tmdb='{tmdb}'] button.request"))
            .click();
        b.find_text(
            &format!(".result[data-tmdb='{tmdb}'] button.request"),
            "Requested",
        );

        // A show: the season picker asks which seasons; ask for season 1 only.
        let search = b.find("#search");
        search.clear();
        search.send_keys("Breaking Bad");
        b.find("form.search button[type='submit']").click();
        let show = "article.result[data-tmdb='1396']";
        b.find(&format!("{show} button.request")).click();
        b.find(&format!("{show} input[data-season='1']"));
        b.find(&format!("{show} input[id^='all-']")).click();
        b.find(&format!("{show} input[data-season='1']")).click();
        b.find_text(&format!("{show} form.seasons button"), "Send request")
            .click();
        b.find_text(&format!("{show} button.request"), "Requested");
        let admin = app.admin_token();
        let (_, all) = app.api("GET", "/admin/requests?q=Breaking", &admin, None);
        assert_eq!(all["data"][0]["seasons"], json!([1]), "{all}");

        // My requests: it is there, pending, and turns available live when the webhook comes.
        b.find("a.nav-link[href='/requests']").click();
        b.wait_path("/requests");
        // Delete while pending: the show's request (alice's requests wait for an admin).
        let rows = "#request-list [data-request]";
        assert_eq!(b.attr_of(rows, "Breaking Bad", "data-status"), "pending");
        let show_id = b.attr_of(rows, "Breaking Bad", "data-request");
        let delete = b.find(&format!("[data-request='{show_id}'] button.danger"));
        delete.click();
        b.find_text(
            &format!("[data-request='{show_id}'] button.danger"),
            "Really",
        );
        delete.click();
        b.wait_for("the deleted request to go", |b| {
            b.all(&format!("[data-request='{show_id}']"))
                .is_empty()
                .then_some(())
        });
        let request_id = b.attr_of(rows, "The Matrix", "data-request");
        let row_css = format!("#request-list [data-request='{request_id}']");
        let before = b.attr_of(&row_css, "", "data-status");
        assert_ne!(before, "available");
        let (_, found) = app.api(
            "GET",
            &format!("/media/requests/{request_id}"),
            &admin,
            None,
        );
        let overseerr_id = found["data"]["overseerrId"]
            .as_i64()
            .unwrap_or_else(|| panic!("no overseerrId in {found}"));
        // Mark the page so a reload would be noticed.
        b.script("window.__noReload = true;", vec![]);
        app.sims.overseerr.set_media_available(
            medianest::integrations::overseerr::model::MediaType::Movie,
            tmdb.parse().unwrap(),
        );
        let status = app.rt.block_on(app.sims.overseerr.fire_webhook(
            &app.url("/api/v1/webhooks/overseerr"),
            Some(medianest::demo::WEBHOOK_SECRET),
            &FakeNotification::about(NotificationType::MediaAvailable, overseerr_id),
        ));
        assert_eq!(status, Ok(200));
        b.wait_for("the request to turn available", |b| {
            let row = b.all(&row_css).into_iter().next()?;
            (row.attr("data-status").as_deref() == Some("available")).then_some(())
        });
        assert!(
            b.find(&format!("{row_css} .badge"))
                .text()
                .to_lowercase()
                .contains("available")
        );
        assert_eq!(
            b.script("return window.__noReload === true;", vec![]),
            json!(true)
        );

        // The status change is a notification too: the bell counts it live; reading it clears it.
        b.wait_for("the bell to count the notification", |b| {
            (b.find("#bell-count").text() == "1").then_some(())
        });
        b.find("#bell").click();
        b.wait_path("/notifications");
        let note_id = b.attr_of(
            "#notification-list .notification.unread",
            "The Matrix",
            "data-notification",
        );
        b.find(&format!("[data-notification='{note_id}'] button"))
            .click();
        b.find(&format!("[data-notification='{note_id}'].read"));
        b.wait_for("the bell to clear", |b| {
            (b.find("#bell-count").prop("hidden") == json!(true)).then_some(())
        });
    }

    // Library: the Plex libraries, one opened with its posters.
    b.find("a.nav-link[href='/library']").click();
    b.wait_path("/library");
    if !waiting_for("library", "GET", "/api/v1/plex/libraries") {
        b.find(".tabs button.tab[aria-pressed='true']");
        b.find(".library-view .posters .poster-card img.poster");
        shoot(&b, "library");
    }

    // Downloads: preview, submit, and the progress bar reaches 100% live.
    b.find("a.nav-link[href='/downloads']").click();
    b.wait_path("/downloads");
    if waiting_for(
        "download with live progress",
        "POST",
        "/api/v1/youtube/downloads",
    ) {
        b.find("#download-url");
        shoot(&b, "downloads");
    } else {
        b.script("window.__noReload = true;", vec![]);
        let id = submit_download(&b, "aqz-KE-bpKQ");
        let css = format!("#download-list [data-download='{id}']");
        // Progress moves while running ...
        b.wait_for("progress between 1 and 99", |b| {
            let value = b.find(&format!("{css} progress")).prop("value").as_f64()?;
            (value > 0.0).then_some(())
        });
        shoot(&b, "downloads");
        // ... and ends at 100% and completed, without a reload.
        b.wait_for("a completed download at 100%", |b| {
            let row = b.all(&css).into_iter().next()?;
            let value = b.find(&format!("{css} progress")).prop("value").as_f64()?;
            (row.attr("data-status").as_deref() == Some("completed") && value >= 100.0)
                .then_some(())
        });
        assert_eq!(
            b.script("return window.__noReload === true;", vec![]),
            json!(true)
        );

        // One that fails (the simulator fails ids starting "fail") shows yt-dlp's error and
        // offers a retry; a slow one can be cancelled, retried, and cancelled again.
        let failing = submit_download(&b, "failAAAAAAA");
        let failing_css = format!("#download-list [data-download='{failing}']");
        wait_download_status(&b, &failing, &["failed"]);
        assert!(!b.find(&format!("{failing_css} .message")).text().is_empty());
        b.find_text(&format!("{failing_css} button"), "Retry");
        let slow = submit_download(&b, "slowAAAAAAA");
        let slow_buttons = format!("#download-list [data-download='{slow}'] button");
        wait_download_status(&b, &slow, &["downloading"]);
        b.find_text(&slow_buttons, "Cancel").click();
        wait_download_status(&b, &slow, &["cancelled"]);
        b.find_text(&slow_buttons, "Retry").click();
        wait_download_status(&b, &slow, &["queued", "downloading"]);
        b.find_text(&slow_buttons, "Cancel").click();
        wait_download_status(&b, &slow, &["cancelled"]);
    }
    assert_clean_console(&b);
}

/// Previews and submits the video `id` on the downloads page; returns the new download's id.
fn submit_download(b: &Browser, video: &str) -> String {
    let before: Vec<String> = b
        .all("#download-list [data-download]")
        .iter()
        .filter_map(|e| e.attr("data-download"))
        .collect();
    let input = b.find("#download-url");
    input.clear();
    input.send_keys(&format!("https://www.youtube.com/watch?v={video}"));
    b.find("#preview").click();
    let title = b.find("#download-preview h3").text();
    assert!(!title.is_empty());
    b.find("#start-download").click();
    // (Rows are redrawn as a download moves on: read the id from whichever is shown.)
    b.wait_for(&format!("a row for {video}"), |b| {
        b.all("#download-list [data-download]")
            .iter()
            .filter_map(|e| e.attr("data-download"))
            .find(|id| !before.contains(id))
    })
}

/// Waits until the download `id`'s row shows one of `statuses`.
fn wait_download_status(b: &Browser, id: &str, statuses: &[&str]) {
    let css = format!("#download-list [data-download='{id}']");
    b.wait_for(&format!("download {id} {statuses:?}"), |b| {
        let status = b.all(&css).into_iter().next()?.attr("data-status")?;
        statuses.contains(&status.as_str()).then_some(())
    });
}

#[test]
fn an_admin_changes_a_users_role_and_edits_a_service() {
    let _serial = serial();
    let app = App::start();
    // alice exists once she has signed in; she asks for two movies (pending: an admin decides).
    let alice = app.plex_sign_in("alice");
    let admin = app.admin_token();
    let with_requests = !waiting_for(
        "approve and decline",
        "POST",
        "/api/v1/admin/requests/{id}/approve",
    );
    if with_requests {
        for tmdb in [603, 27205] {
            let (status, body) = app.api(
                "POST",
                "/media/requests",
                &alice,
                Some(json!({"mediaType": "movie", "tmdbId": tmdb})),
            );
            assert_eq!(status, 201, "{body}");
        }
    }

    let b = Browser::start("admin", DESKTOP.0, DESKTOP.1);
    sign_in_locally(&b, &app, "admin", ADMIN_PASSWORD);
    b.wait_path("/");
    b.find("[data-service='plex']");

    // Users: make alice an admin.
    b.find("a.nav-link[href='/admin']").click();
    b.wait_path("/admin");
    b.find("tr[data-user='alice'] select[data-user-role='alice']");
    shoot(&b, "admin-users");
    b.find("select[data-user-role='alice'] option[value='admin']")
        .click();
    b.find_text(".toast", "alice: role is now admin");
    let (_, users) = app.api("GET", "/admin/users?q=alice", &admin, None);
    assert_eq!(users["data"][0]["role"], json!("admin"), "{users}");

    // Services: test the Overseerr connection, then change its timeout and save.
    b.find("a.tab[href='/admin/services']").click();
    b.wait_path("/admin/services");
    let form = "form[data-service-form='overseerr']";
    b.find(&format!("{form} #svc-overseerr-url"));
    // Kuma takes an optional API key (for its /metrics).
    b.find("form[data-service-form='uptime_kuma'] #svc-uptime_kuma-key");
    b.find_text(&format!("{form} button"), "Test connection")
        .click();
    b.find_text(&format!("{form} .result"), "Connected in");
    let timeout = b.find("#svc-overseerr-timeout");
    timeout.clear();
    timeout.send_keys("4000");
    b.find_text(&format!("{form} button"), "Save").click();
    b.find_text(&format!("{form} .result"), "Saved");
    let (_, services) = app.api("GET", "/admin/services", &admin, None);
    let overseerr = services["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "overseerr")
        .unwrap();
    assert_eq!(overseerr["timeoutMs"], json!(4000), "{overseerr}");
    b.find("[data-breaker='overseerr']");
    shoot(&b, "admin-services");

    // Requests: approve one of alice's and decline another with a reason.
    if with_requests {
        b.find("a.tab[href='/admin/requests']").click();
        b.wait_path("/admin/requests");
        let admin_rows = "#admin-requests [data-request]";
        let matrix_id = b.attr_of(admin_rows, "The Matrix", "data-request");
        let matrix = b.find(&format!("[data-request='{matrix_id}']")).text();
        assert!(matrix.contains("alice"), "{matrix}");
        b.find_text(&format!("[data-request='{matrix_id}'] button"), "Approve")
            .click();
        let inception_id = b.attr_of(admin_rows, "Inception", "data-request");
        b.find(&format!("[data-request='{inception_id}'] input"))
            .send_keys("Already on the shelf");
        b.find_text(
            &format!("[data-request='{inception_id}'] button"),
            "Decline",
        )
        .click();
        // Approved in Overseerr, the request moves on to approved or processing.
        for (id, wanted) in [
            (&matrix_id, &["approved", "processing"][..]),
            (&inception_id, &["declined"][..]),
        ] {
            b.wait_for(&format!("request {id} {wanted:?}"), |b| {
                let row = b
                    .all(&format!("[data-request='{id}']"))
                    .into_iter()
                    .next()?;
                let status = row.attr("data-status")?;
                wanted.contains(&status.as_str()).then_some(())
            });
        }
        shoot(&b, "admin-requests");
    }

    // With Overseerr switched off, Discover says why requesting is off.
    b.find("a.tab[href='/admin/services']").click();
    b.wait_path("/admin/services");
    let enabled = b.find("#svc-overseerr-enabled");
    enabled.click();
    b.find_text(&format!("{form} button"), "Save").click();
    b.find_text(&format!("{form} .result"), "Saved");
    b.find("a.nav-link[href='/discover']").click();
    b.wait_path("/discover");
    b.find_text("#overseerr-notice", "Overseerr");
    if has_route("GET", "/api/v1/media/search") {
        b.find("#search").send_keys("Matrix");
        b.find("form.search button[type='submit']").click();
        // The refusal shows its message and the correlation id to quote.
        b.find("#results .error[role='alert']");
        b.find("#results .error .cid code");
    }
    b.find("a.nav-link[href='/admin']").click();
    b.wait_path("/admin");

    // Stats and performance draw their charts.
    b.find("a.tab[href='/admin/stats']").click();
    b.wait_path("/admin/stats");
    b.find("#admin-panel svg.chart");
    b.find("a.tab[href='/admin/performance']").click();
    b.find("#admin-panel svg.chart");
    shoot(&b, "admin-performance");

    // YouTube: upload a cookies file, set extra yt-dlp options, see a breaking one refused.
    b.find("a.tab[href='/admin/youtube']").click();
    b.wait_path("/admin/youtube");
    b.find("#yt-cookies-source[data-source='none']");
    let cookies = app.data_dir.with_file_name("cookies.txt");
    std::fs::write(
        &cookies,
        "# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t0\tSID\tsecret-value\n",
    )
    .unwrap();
    b.find("#yt-cookies-file")
        .send_keys(cookies.to_str().unwrap());
    b.find("#yt-cookies-source[data-source='uploaded']");
    let settings = |app: &App| app.api("GET", "/admin/youtube/settings", &admin, None).1;
    let stored = settings(&app);
    assert_eq!(stored["data"]["cookiesSource"], "uploaded", "{stored}");
    assert!(!stored.to_string().contains("secret-value"), "{stored}");
    let args = b.find("#yt-extra-args");
    args.clear();
    args.send_keys("--js-runtimes\nnode");
    b.find_text("#yt-extra-args-form button", "Save options")
        .click();
    b.find("#yt-extra-args-source[data-source='admin']");
    assert_eq!(
        settings(&app)["data"]["extraArgs"],
        json!(["--js-runtimes", "node"])
    );
    let args = b.find("#yt-extra-args");
    args.clear();
    args.send_keys("--exec\necho hi");
    b.find_text("#yt-extra-args-form button", "Save options")
        .click();
    b.find_text("#admin-panel .result .error", "--exec is refused");
    assert_eq!(
        settings(&app)["data"]["extraArgs"],
        json!(["--js-runtimes", "node"])
    );
    shoot(&b, "admin-youtube");

    // Doctor: the checks run on opening the tab, each with its result.
    b.script("window.scrollTo(0, 0)", vec![]);
    b.find("a.tab[href='/admin/doctor']").click();
    b.wait_path("/admin/doctor");
    b.find("#doctor-table tr[data-check='yt-dlp'][data-status]");
    b.find("#doctor-table tr[data-check='Plex'][data-status='ok']");
    // Seerr was switched off above.
    b.find("#doctor-table tr[data-check='Seerr'][data-status='skip']");
    shoot(&b, "admin-doctor");

    // Backups: "Back up now" adds a row whose link downloads the file with the session cookie.
    if !waiting_for("admin backups", "POST", "/api/v1/admin/backups") {
        b.script("window.scrollTo(0, 0)", vec![]);
        b.find("a.tab[href='/admin/backups']").click();
        b.wait_path("/admin/backups");
        b.find("#backups-body p");
        b.find("#backup-now").click();
        let said = b.find_text(".toast", "Backed up: ").text();
        let name = said
            .split("Backed up: ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap()
            .to_owned();
        let (_, listed) = app.api("GET", "/admin/backups", &admin, None);
        assert!(
            listed["data"]["backups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["name"] == name.as_str()),
            "{listed}"
        );
        let link = b.attr_of(
            &format!("#backups-table tr[data-name='{name}'] a"),
            "Download",
            "href",
        );
        let got = b.script(
            "return fetch(arguments[0], { credentials: 'same-origin' }).then(async (r) => \
             [r.status, r.headers.get('content-disposition'), \
              String.fromCharCode(...new Uint8Array(await r.arrayBuffer()).slice(0, 15))]);",
            vec![json!(link)],
        );
        assert_eq!(
            got,
            json!([
                200,
                format!("attachment; filename=\"{name}\""),
                "SQLite format 3"
            ])
        );
        shoot(&b, "admin-backups");
    }
    assert_clean_console(&b);
}

#[test]
fn the_first_admin_must_change_the_password_before_anything_else() {
    let _serial = serial();
    let app = App::start_with(|c| c.admin.password = None);
    let initial = std::fs::read_to_string(app.data_dir.join("initial-admin-password")).unwrap();
    let initial = initial.trim();

    let b = Browser::start("first-run", DESKTOP.0, DESKTOP.1);
    sign_in_locally(&b, &app, "admin", initial);
    b.wait_path("/password");
    // Any other page leads back here.
    b.goto(&app.url("/admin"));
    b.wait_path("/password");
    b.find("#current-password").send_keys(initial);
    b.find("#new-password").send_keys("a much better password");
    b.find("#confirm-password")
        .send_keys("a much better password");
    b.find("#change-password").click();
    b.wait_path("/");
    b.find("[data-service='plex']");
    assert!(!app.data_dir.join("initial-admin-password").exists());
}

#[test]
fn errors_show_their_message_and_correlation_id() {
    let _serial = serial();
    let app = App::start();
    let b = Browser::start("errors", DESKTOP.0, DESKTOP.1);
    sign_in_locally(&b, &app, "admin", "wrong password!");
    let error = b.find(".error[role='alert']");
    let text = error.text();
    assert!(text.contains("Invalid username or password."), "{text}");
    let cid = b.find(".error .cid code").text();
    assert!(uuid::Uuid::parse_str(&cid).is_ok(), "{cid}");
}

#[test]
fn signing_in_works_from_the_keyboard_alone() {
    const TAB: &str = "\u{E004}";
    const ENTER: &str = "\u{E007}";
    let _serial = serial();
    let app = App::start();
    let b = Browser::start("keyboard", DESKTOP.0, DESKTOP.1);
    b.goto(&app.url("/"));
    b.wait_path("/signin");
    b.find("#username");
    // The sign-in page puts the cursor in the username field.
    assert!(b.focused().starts_with("input#username"), "{}", b.focused());
    b.keys(&format!("admin{TAB}{ADMIN_PASSWORD}{ENTER}"));
    b.wait_path("/");
    b.find("[data-service='plex']");
    // From the top of the page the first Tab reaches the skip link, and it leads to the content.
    b.goto(&app.url("/"));
    b.find("[data-service='plex']");
    b.keys(TAB);
    assert!(b.focused().contains("Skip to content"), "{}", b.focused());
    b.keys(ENTER);
    assert!(b.focused().starts_with("main#main"), "{}", b.focused());
    // The navigation is reachable by Tab and follows Enter.
    for _ in 0..20 {
        b.keys(TAB);
        if b.focused().starts_with("a# Discover") {
            break;
        }
    }
    assert!(b.focused().starts_with("a# Discover"), "{}", b.focused());
    b.keys(ENTER);
    b.wait_path("/discover");
}

/// A `medianest demo` child, killed when dropped (also when a test fails).
struct DemoProcess(std::process::Child);

impl Drop for DemoProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `medianest demo` as a child process on `addr` with the data directory `data`, ready.
fn spawn_demo(addr: SocketAddr, data: &Path) -> DemoProcess {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_medianest"))
        .args(["demo", "--listen", &addr.to_string(), "--data-dir"])
        .arg(data)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let agent = webdriver::agent(Duration::from_secs(1));
    let started = std::time::Instant::now();
    loop {
        let ready = agent
            .get(format!("http://{addr}/health/ready"))
            .call()
            .is_ok_and(|r| r.status().as_u16() == 200);
        if ready {
            return DemoProcess(child);
        }
        if started.elapsed() > webdriver::WAIT || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            panic!("the demo did not become ready on {addr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn live_updates_reconnect_after_the_server_restarts() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let addr: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let server = spawn_demo(addr, &data);
    let b = Browser::start("reconnect", DESKTOP.0, DESKTOP.1);
    b.goto(&format!("http://{addr}/"));
    b.find("#username").send_keys("admin");
    b.find("#password")
        .send_keys(medianest::demo::ADMIN_PASSWORD);
    b.find("#local-signin").click();
    b.find("[data-service='plex']");
    b.find("#live.live-live");

    // The server goes away: the page says it is reconnecting ...
    drop(server);
    b.find("#live.live-reconnecting");
    // ... and is live again, on the same page, once the server is back.
    b.script("window.__noReload = true;", vec![]);
    let _server = spawn_demo(addr, &data);
    b.find("#live.live-live");
    assert_eq!(
        b.script("return window.__noReload === true;", vec![]),
        json!(true)
    );
}

/// The installable app under a base path: Chromium finds the manifest (through DevTools'
/// `Page.getAppManifest`) without errors and with the base in its URLs, the service worker
/// registers and becomes active with the base as its scope, shows pushed messages as
/// notifications, and with the server gone a reload
/// opens the cached page in its "offline" state instead of the browser's error page.
#[test]
fn the_app_installs_and_opens_offline() {
    let _serial = serial();
    let app = App::start_with(|c| c.server.base_path = "/medianest".into());
    let b = Browser::start("installable-app", DESKTOP.0, DESKTOP.1);
    b.goto(&app.url("/"));
    b.wait_path("/medianest/signin");
    let origin = format!("http://{}", app.addr);
    let scope = format!("{origin}/medianest/");

    // The manifest, as Chromium reads it.
    let found = b.cdp("Page.getAppManifest", json!({}));
    assert_eq!(
        found["url"],
        json!(format!("{scope}manifest.webmanifest")),
        "{found}"
    );
    assert_eq!(found["errors"], json!([]), "{found}");
    let manifest: Value = serde_json::from_str(found["data"].as_str().unwrap()).unwrap();
    assert_eq!(manifest["start_url"], "/medianest/");
    assert_eq!(manifest["scope"], "/medianest/");
    assert_eq!(manifest["display"], "standalone");
    // And as the page fetches it (under the CSP's manifest-src / connect rules).
    let fetched = b.script(
        "return fetch(arguments[0]).then((r) => r.json().then((m) => ({type: r.headers.get('content-type'), icons: m.icons.length, name: m.name})));",
        vec![json!(format!("{scope}manifest.webmanifest"))],
    );
    assert_eq!(
        fetched,
        json!({"type": "application/manifest+json", "icons": 3, "name": "MediaNest"})
    );

    // The service worker: registered by the dashboard, active, controlling the base.
    let ready = b.wait_for("an activated service worker", |b| {
        let r = b.script(
            "return navigator.serviceWorker.ready.then((r) => ({scope: r.scope, state: r.active && r.active.state, script: r.active && r.active.scriptURL}));",
            vec![],
        );
        (r["state"] == "activated").then_some(r)
    });
    assert_eq!(ready["scope"], json!(scope), "{ready}");
    assert_eq!(ready["script"], json!(format!("{scope}sw.js")), "{ready}");
    assert_clean_console(&b);

    // A push message (DevTools' `ServiceWorker.deliverPushMessage`; a fresh profile's first
    // registration has the id 0): the worker shows it as a notification with its title, body and
    // tag, and keeps only a click target that is a path of this app (a link to another site
    // becomes the home page). DevTools learns of the registration a moment after `enable`, and
    // drops a message for a registration it does not know yet, so the messages are delivered
    // again on each look; their tags make a repeat replace the notification, not add one.
    b.cdp(
        "Browser.grantPermissions",
        json!({"origin": origin, "permissions": ["notifications"]}),
    );
    b.cdp("ServiceWorker.enable", json!({}));
    let messages = [
        json!({"title": "Dune is available", "body": "Enjoy it on Plex.", "url": "/medianest/requests?id=7", "tag": "request-7"}),
        json!({"title": "Elsewhere", "body": "Not ours.", "url": "https://elsewhere.example/", "tag": "other"}),
    ];
    let shown = b.wait_for("the pushed notifications", |b| {
        for message in &messages {
            b.cdp(
                "ServiceWorker.deliverPushMessage",
                json!({"origin": origin, "registrationId": "0", "data": message.to_string()}),
            );
        }
        let list = b.script(
            "return navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((ns) => ns.map((n) => ({title: n.title, body: n.body, tag: n.tag, url: n.data && n.data.url})).sort((a, b) => a.tag.localeCompare(b.tag)));",
            vec![],
        );
        (list.as_array().map_or(0, Vec::len) == 2).then_some(list)
    });
    assert_eq!(
        shown,
        json!([
            {"title": "Elsewhere", "body": "Not ours.", "tag": "other", "url": "/medianest/"},
            {"title": "Dune is available", "body": "Enjoy it on Plex.", "tag": "request-7", "url": "/medianest/requests?id=7"},
        ])
    );

    // The server goes away: a reload opens the cached shell, which says it is offline.
    app.stop.cancel();
    b.wait_for("the server to stop listening", |_| {
        std::net::TcpStream::connect(app.addr).err().map(|_| ())
    });
    b.script("location.reload();", vec![]);
    let offline = b.find("#offline");
    assert!(
        offline.text().contains("You are offline"),
        "{}",
        offline.text()
    );
    assert_eq!(b.path(), "/medianest/signin");
    assert_eq!(
        b.script(
            "return navigator.serviceWorker.controller && navigator.serviceWorker.controller.scriptURL;",
            vec![]
        ),
        json!(format!("{scope}sw.js"))
    );
    b.screenshot("offline-1280");
}

/// A family member sets their own notification channels: from the notifications page to the
/// settings page, ntfy on with a topic (a bad one first, whose error shows next to the field),
/// one event unticked, saved; after a reload the page and `GET /api/v1/me/notifications` both
/// still say so.
#[test]
fn a_user_saves_their_notification_settings() {
    let _serial = serial();
    let app = App::start();
    if waiting_for("notification settings", "PUT", "/api/v1/me/notifications") {
        return;
    }
    // The admin turns ntfy on (the admin's route is a PUT).
    let admin = app.admin_token();
    let put = App::agent()
        .put(app.url("/api/v1/admin/notifications/channels/ntfy"))
        .header("Authorization", &format!("Bearer {admin}"))
        .header("Content-Type", "application/json")
        .send(json!({"enabled": true}).to_string().as_bytes())
        .unwrap();
    assert_eq!(put.status().as_u16(), 200);
    let alice = app.plex_sign_in("alice");

    // alice's browser carries her session (signing in with Plex is another test's subject).
    let b = Browser::start("notification-settings", DESKTOP.0, DESKTOP.1);
    b.goto(&app.url("/"));
    b.wait_path("/signin");
    b.script(
        "document.cookie = `medianest_session=${arguments[0]}; path=/; SameSite=Lax`;",
        vec![json!(alice)],
    );
    b.goto(&app.url("/notifications"));
    b.find("#notification-settings-link").click();
    b.wait_path("/settings/notifications");

    // Channels the admin has not enabled are greyed with a note.
    let gotify = b.find("fieldset.unavailable[data-channel='gotify']");
    assert!(gotify.text().contains("not turned on"), "{}", gotify.text());
    assert_eq!(b.find("#nc-gotify-enabled").prop("disabled"), json!(true));
    assert_eq!(b.find("#nc-gotify-token").prop("disabled"), json!(true));
    assert_eq!(
        b.find("#ev-announcement-gotify").prop("disabled"),
        json!(true)
    );
    assert_eq!(b.find("#nc-ntfy-enabled").prop("disabled"), json!(false));
    // No admin events for a family member.
    assert!(b.all("tr[data-event='service.down']").is_empty());

    // ntfy on with a bad topic: the field says what is wrong, nothing is saved.
    b.find("#nc-ntfy-enabled").click();
    b.find("#nc-ntfy-topic").send_keys("movies for alice!");
    b.find("#ev-request-failed-ntfy").click();
    b.find("#save-notifications").click();
    b.find_text("#nc-ntfy-error", "letters, digits");
    assert_eq!(
        b.find("#nc-ntfy-topic").attr("aria-invalid").as_deref(),
        Some("true")
    );
    let (_, before) = app.api("GET", "/me/notifications", &alice, None);
    assert_eq!(before["data"]["channels"]["ntfy"]["enabled"], json!(false));

    // A good topic saves.
    let topic = b.find("#nc-ntfy-topic");
    topic.clear();
    topic.send_keys("alice_movies");
    b.find("#save-notifications").click();
    b.find_text("#notification-settings-status", "Saved");
    assert_clean_console(&b);
    shoot(&b, "notification-settings");

    // After a reload the page shows what was saved.
    b.script("location.reload();", vec![]);
    b.wait_for("the saved topic after the reload", |b| {
        let value = b.script(
            "const t = document.getElementById('nc-ntfy-topic'); return t && t.value;",
            vec![],
        );
        (value == json!("alice_movies")).then_some(())
    });
    assert_eq!(b.find("#nc-ntfy-enabled").prop("checked"), json!(true));
    assert_eq!(
        b.find("#ev-request-failed-ntfy").prop("checked"),
        json!(false)
    );
    assert_eq!(
        b.find("#ev-request-available-ntfy").prop("checked"),
        json!(true)
    );

    // And so does the API.
    let (status, body) = app.api("GET", "/me/notifications", &alice, None);
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["channels"]["ntfy"]["enabled"], json!(true), "{data}");
    assert_eq!(data["channels"]["ntfy"]["topic"], json!("alice_movies"));
    let has_ntfy = |event: &str| {
        data["events"][event]
            .as_array()
            .unwrap()
            .contains(&json!("ntfy"))
    };
    assert!(!has_ntfy("request.failed"), "{data}");
    assert!(has_ntfy("request.available"), "{data}");
    assert!(has_ntfy("announcement"), "{data}");
}

/// Push on the settings page: where the browser refuses notifications the page says so instead
/// of offering a button that cannot work; subscribed devices are listed and one can be removed.
/// (Subscribing itself needs the browser's push service, which a test machine cannot reach: the
/// route it ends in is tested in `tests/api/push.rs`.)
#[test]
fn push_devices_are_listed_and_removed_and_a_refusal_is_explained() {
    let _serial = serial();
    let app = App::start();
    if waiting_for("push devices", "PUT", "/api/v1/me/notifications") {
        return;
    }
    let admin = app.admin_token();
    let put = App::agent()
        .put(app.url("/api/v1/admin/notifications/channels/webpush"))
        .header("Authorization", &format!("Bearer {admin}"))
        .header("Content-Type", "application/json")
        .send(
            json!({"enabled": true, "subject": "mailto:admin@example.com"})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    assert_eq!(put.status().as_u16(), 200);
    let alice = app.plex_sign_in("alice");
    // A phone alice subscribed earlier.
    let (status, body) = app.api(
        "POST",
        "/me/push-subscriptions",
        &alice,
        Some(json!({"endpoint": "https://fcm.googleapis.com/send/alice-phone", "expirationTime": null,
            "keys": {"p256dh": "BLn9b-VR0ca83knDNZ32dCHGyjJp-1riX9ZTN40MqV8K_LpQmLqxC_DoHvqvFXO_nGdAB4W9dogZb_sM-uV4JbY",
                     "auth": "_ordMnz7uTCmrpBTeUV4Bw"}})),
    );
    assert_eq!(status, 201, "{body}");
    let phone = body["data"]["id"].as_str().unwrap().to_owned();

    let b = Browser::start("push-devices", DESKTOP.0, DESKTOP.1);
    b.goto(&app.url("/"));
    b.wait_path("/signin");
    b.script(
        "document.cookie = `medianest_session=${arguments[0]}; path=/; SameSite=Lax`;",
        vec![json!(alice)],
    );
    // Notifications blocked for this site, as a person can in the browser's settings.
    b.cdp(
        "Browser.setPermission",
        json!({"origin": format!("http://{}", app.addr),
               "permission": {"name": "notifications"}, "setting": "denied"}),
    );
    b.goto(&app.url("/settings/notifications"));
    let row = format!("#push-device-list li[data-subscription='{phone}']");
    b.find(&row);
    // Push is on by default for someone with a subscribed device.
    assert_eq!(b.find("#nc-webpush-enabled").prop("checked"), json!(true));
    b.find_text("#push-note", "blocked for this site");
    assert_eq!(b.find("#push-subscribe").prop("disabled"), json!(true));
    assert_clean_console(&b);
    shoot(&b, "notification-settings-push");

    // Remove the phone (asked twice).
    let remove = format!("{row} button.danger");
    b.find(&remove).click();
    b.find_text(&remove, "Really");
    b.find(&remove).click();
    b.find_text("#push-device-list li.muted", "No device");
    let (_, devices) = app.api("GET", "/me/push-subscriptions", &alice, None);
    assert_eq!(devices["data"], json!([]), "{devices}");
}

/// The admin's Notifications tab: ntfy pointed at a fake ntfy server on loopback (a refused URL
/// shows its field error first), a test send that arrives there and one that the server refuses
/// (its HTTP status shown), the health line and the delivery log table, and an announcement
/// whose recipients count is shown.
#[test]
fn an_admin_sets_up_ntfy_tests_it_and_sends_an_announcement() {
    use medianest::sim::notify::{FakeNotify, Fault, Flavor};

    let _serial = serial();
    let app = App::start();
    let ntfy = app
        .rt
        .block_on(FakeNotify::start(Flavor::Ntfy(None)))
        .unwrap();
    // A second active account hears the announcement.
    app.plex_sign_in("alice");

    let b = Browser::start("admin-notifications", DESKTOP.0, DESKTOP.1);
    sign_in_locally(&b, &app, "admin", ADMIN_PASSWORD);
    b.wait_path("/");
    b.find("a.nav-link[href='/admin']").click();
    b.wait_path("/admin");
    b.find("a.tab[href='/admin/notifications']").click();
    b.wait_path("/admin/notifications");
    for kind in ["email", "ntfy", "gotify", "discord", "webhook", "webpush"] {
        b.find(&format!(
            "section[data-channel='{kind}'] [data-health='{kind}']"
        ));
    }
    b.find("#nc-email-password");
    b.find_text("#nc-ntfy-health", "0 delivered in 24 h");

    // A URL the server refuses: the reason under the field.
    b.find("#nc-ntfy-enabled").click();
    let url = b.find("#nc-ntfy-url");
    url.clear();
    url.send_keys("ftp://ntfy.example.com");
    b.find("#nc-ntfy-save").click();
    let reason = b.wait_for("the URL's field error", |b| {
        let text = b.find("#nc-ntfy-url-error").text();
        (!text.is_empty()).then_some(text)
    });
    assert!(reason.contains("http"), "{reason}");

    // The fake ntfy server's URL: saved, and a test arrives there.
    url.clear();
    url.send_keys(&ntfy.url());
    b.find("#nc-ntfy-save").click();
    b.find_text("#nc-ntfy-result", "Saved.");
    assert_eq!(b.find("#nc-ntfy-url-error").text(), "");
    b.find("#nc-ntfy-to").send_keys("family_movies");
    b.find("#nc-ntfy-test").click();
    b.find_text("#nc-ntfy-test-result", "Delivered.");
    let received = ntfy.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].path, "/family_movies");
    assert_eq!(
        received[0].header("title"),
        Some("MediaNest test notification")
    );

    // ntfy refuses the next one: its status is shown.
    ntfy.fail_next(
        1,
        Fault::Status(
            500,
            r#"{"code":50001,"http":500,"error":"internal server error"}"#,
        ),
    );
    b.find("#nc-ntfy-test").click();
    b.find_text("#nc-ntfy-test-result", "HTTP 500");

    // The delivery log renders (empty here: nothing has been queued for delivery).
    b.find("#deliveries-table");
    b.find("#delivery-status option[value='failed']").click();
    b.find("#deliveries-empty");
    b.find("#delivery-status option[value='']").click();

    // An announcement to everyone: the admin and alice. The admin's bell counts it live (it
    // already counts alice's sign-up).
    let unread = |b: &Browser| b.find("#bell-count").text().parse::<u32>().unwrap_or(0);
    let before = unread(&b);
    b.find("#announce-title").send_keys("Maintenance tonight");
    b.find("#announce-message")
        .send_keys("The server restarts at 22:00.");
    b.find("#announce-send").click();
    b.find_text("#announce-result", "Sent to 2 people.");
    b.wait_for("the bell to count the announcement", |b| {
        (unread(b) == before + 1).then_some(())
    });
    shoot(&b, "admin-notifications");
    assert_clean_console(&b);

    let admin = app.admin_token();
    let (_, list) = app.api("GET", "/notifications", &admin, None);
    assert_eq!(list["data"][0]["type"], "announcement", "{list}");

    // The delivery worker is not in this build: its rows go into the database as the outbox
    // writes them, 24 delivered ones and one failed one on ntfy, just now.
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let db = rusqlite::Connection::open(app.data_dir.join("medianest.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let (notification, user): (String, String) = db
        .query_row(
            "SELECT id, user_id FROM notifications WHERE type = 'announcement' LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    for i in 0..25i64 {
        let (status, error, delivered) = if i == 24 {
            ("failed", Some("HTTP 404: topic not found"), None)
        } else {
            ("delivered", None, Some(now_ms - 60_000 + i))
        };
        db.execute(
            "INSERT INTO notification_deliveries (id, notification_id, user_id, channel, event,
                 status, attempts, next_attempt_at, last_error, created_at, updated_at,
                 delivered_at)
             VALUES (?1, ?2, ?3, 'ntfy', 'announcement', ?4, 1, ?5, ?6, ?5, ?5, ?7)",
            rusqlite::params![
                format!("seeded-{i:02}"),
                notification,
                user,
                status,
                now_ms - 60_000 + i,
                error,
                delivered
            ],
        )
        .unwrap();
    }
    drop(db);
    b.script("location.reload();", vec![]);
    b.find_text(
        "#nc-ntfy-health",
        "24 delivered in 24 h · 1 failed · last error",
    );
    b.find_text("#nc-ntfy-health", "HTTP 404: topic not found");
    // Newest first, 20 a page, then the rest.
    b.wait_for("a page of the delivery log", |b| {
        (b.all("#deliveries-table tbody tr").len() == 20).then_some(())
    });
    let first = b.find("#deliveries-table tbody tr");
    assert_eq!(first.attr("data-delivery").as_deref(), Some("seeded-24"));
    assert!(first.text().contains("HTTP 404"), "{}", first.text());
    b.find("#deliveries-more").click();
    b.wait_for("the rest of the delivery log", |b| {
        (b.all("#deliveries-table tbody tr").len() == 25).then_some(())
    });
    assert!(b.all("#deliveries-more").is_empty());
    b.find("#delivery-status option[value='failed']").click();
    b.wait_for("only the failed delivery", |b| {
        let rows = b.all("#deliveries-table tbody tr[data-delivery]");
        (rows.len() == 1 && rows[0].attr("data-status").as_deref() == Some("failed")).then_some(())
    });
    shoot(&b, "admin-notifications-log");
    let (_, channel) = app.api("GET", "/admin/notifications/channels/ntfy", &admin, None);
    assert_eq!(channel["data"]["enabled"], true, "{channel}");
    assert_eq!(channel["data"]["url"], json!(ntfy.url()), "{channel}");
    app.rt.block_on(ntfy.shutdown());
}

/// The Subscriptions page as an admin: a bad interval is explained next to its field, a good
/// subscription is added with the form, its card follows the first check (run by the scheduler
/// with the simulated yt-dlp's channel `@Sim`) to "OK, N new", its avatar is the channel's poster
/// once the downloads saved one (the initials until then), and expanding it lists the videos the
/// check archived.
#[test]
fn an_admin_adds_a_subscription_and_sees_its_check_and_its_videos() {
    let _serial = serial();
    let app = App::start();
    let b = Browser::start("subscriptions-admin", DESKTOP.0, DESKTOP.1);
    sign_in_locally(&b, &app, "admin", ADMIN_PASSWORD);
    b.wait_path("/");
    b.find("a.nav-link[href='/subscriptions']").click();
    b.wait_path("/subscriptions");
    b.find_text("#proposal-list", "No proposals waiting");
    b.find_text("#subscription-list", "No subscriptions yet");
    // With nothing to show yet, the form is unfolded.
    assert_eq!(b.find("#subscription-add").prop("open"), json!(true));

    // An interval below 15 minutes: the server's reason under the field, nothing created.
    b.find("#sub-new-url")
        .send_keys("https://www.youtube.com/@Sim");
    let interval = b.find("#sub-new-intervalHours");
    interval.clear();
    interval.send_keys("0.1");
    b.find("#subscribe").click();
    b.find_text("#sub-new-intervalHours-error", "hours from 0.25 to 168");
    assert_eq!(
        b.find("#sub-new-intervalHours")
            .attr("aria-invalid")
            .as_deref(),
        Some("true")
    );
    let admin = app.admin_token();
    let (_, none) = app.api("GET", "/youtube/subscriptions", &admin, None);
    assert_eq!(none["data"], json!([]), "{none}");

    // Fixed: every 12 h, the newest 5, no Shorts.
    let interval = b.find("#sub-new-intervalHours");
    interval.clear();
    interval.send_keys("12");
    b.find("#sub-new-keepLatest").send_keys("5");
    b.find("#sub-new-skipShorts").click();
    b.find("#subscribe").click();
    let card = b.find("#subscription-list article.subscription[data-status='active']");
    let id = card.attr("data-subscription").unwrap();
    let css = format!("article[data-subscription='{id}']");
    assert_eq!(b.find("#sub-new-intervalHours-error").text(), "");
    assert_eq!(b.find("#subscription-add").prop("open"), json!(false));
    b.find_text(
        &format!("{css} .settings"),
        "every 12 h · keep newest 5 · skip Shorts · skip live",
    );

    // The card follows the first check to its end.
    let result = b.find_text(&format!("{css} .last-result"), "OK,").text();
    let (_, sub) = app.api("GET", &format!("/youtube/subscriptions/{id}"), &admin, None);
    let sub = &sub["data"];
    assert_eq!(sub["lastResult"], "ok", "{sub}");
    let new_items = sub["lastNewItems"].as_i64().unwrap();
    assert!(new_items > 0, "{sub}");
    assert_eq!(result, format!("OK, {new_items} new"));
    b.find_text(&format!("{css} .next-check"), "in ");
    // The archive also holds what retention ruled out before downloading (keep newest 5).
    let archived = sub["itemCount"].as_i64().unwrap();
    assert!(archived >= new_items, "{sub}");
    b.find_text(&format!("{css} .item-count"), &archived.to_string());

    // Expanded, the card lists the archived videos with their status and a Keep toggle.
    b.find(&format!("{css} details.subscription-items summary"))
        .click();
    let (_, items) = app.api(
        "GET",
        &format!("/youtube/subscriptions/{id}/items?limit=100"),
        &admin,
        None,
    );
    let items = items["data"].as_array().unwrap().clone();
    assert_eq!(items.len() as i64, archived);
    assert_eq!(
        items.iter().filter(|i| i["status"] != "skipped").count() as i64,
        new_items
    );
    b.wait_for("every archived video in the card", |b| {
        (b.all(&format!("{css} li.item")).len() == items.len()).then_some(())
    });
    for item in &items {
        let row = format!(
            "{css} li.item[data-item='{}']",
            item["id"].as_str().unwrap()
        );
        b.find_text(&row, item["title"].as_str().unwrap());
        b.find(&format!(
            "{row}.status-{} .badge",
            item["status"].as_str().unwrap()
        ));
        assert_eq!(
            b.find(&format!("{row} input[type='checkbox']"))
                .prop("checked"),
            json!(false)
        );
    }
    if let Some(date) = items[0]["uploadDate"].as_str() {
        b.find_text(&format!("{css} li.item"), &format!("uploaded {date}"));
    }

    // The check named the channel and saved its avatar as the show's poster: after a refresh
    // the card has the name and the avatar is that image.
    let title = match sub["title"].as_str() {
        Some(title) => title.to_owned(),
        None => {
            let title = "The Sim Channel";
            let db = Config {
                data_dir: app.data_dir.clone(),
                ..Config::default()
            }
            .database_path();
            let conn = rusqlite::Connection::open(db).unwrap();
            conn.busy_timeout(Duration::from_secs(5)).unwrap();
            conn.execute(
                "UPDATE youtube_subscriptions SET title = ?2 WHERE id = ?1",
                rusqlite::params![id, title],
            )
            .unwrap();
            title.to_owned()
        }
    };
    let root = std::fs::canonicalize({
        let d = app.data_dir.join("downloads");
        std::fs::create_dir_all(&d).unwrap();
        d
    })
    .unwrap()
    .join("subscriptions");
    let folder = root.join(medianest::youtube::layout::channel_folder(&title));
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("poster.jpg"),
        medianest::sim::plex::COMPOSITE_JPEG,
    )
    .unwrap();
    b.find("#subscriptions-refresh").click();
    b.wait_for("the avatar image to load", |b| {
        let width = b.script(
            "const img = document.querySelector(arguments[0]); return img && img.complete ? img.naturalWidth : 0;",
            vec![json!(format!("{css} img.avatar"))],
        );
        (width.as_u64().unwrap_or(0) > 0).then_some(())
    });
    b.find_text(&format!("{css} h3.title"), &title);
    b.find(&format!("{css} details.subscription-items summary"))
        .click();
    b.wait_for("the videos after the refresh", |b| {
        (b.all(&format!("{css} li.item")).len() == items.len()).then_some(())
    });
    assert_clean_console(&b);
    b.script("window.scrollTo(0, 0);", vec![]);
    shoot(&b, "subscriptions-admin");

    // Edit: a bad value is explained under its field, a good one is saved and shown.
    b.find(&format!("{css} button.edit")).click();
    let field = format!("#sub-{id}-keepLatest");
    let keep = b.find(&field);
    keep.clear();
    keep.send_keys("0");
    let save = format!("{css} .edit-settings button[type='submit']");
    b.find(&save).click();
    b.find_text(&format!("{field}-error"), "whole number from 1 to 10000");
    let keep = b.find(&field);
    keep.clear();
    keep.send_keys("10");
    b.find(&save).click();
    b.find_text(&format!("{css} .settings"), "keep newest 10 ·");
    let (_, sub) = app.api("GET", &format!("/youtube/subscriptions/{id}"), &admin, None);
    assert_eq!(sub["data"]["keepLatest"], 10, "{sub}");

    // YouTube refuses the next listing: "Check now" ends in the refusal, with the admin's hint.
    medianest::sim::ytdlp::refuse_listings(
        &app._dir.path().join("yt-dlp"),
        medianest::sim::ytdlp::REFUSE_BOT,
        Some(1),
    )
    .unwrap();
    b.find(&format!("{css} button.check-now")).click();
    b.find_text(&format!("{css} .last-result"), "Blocked by YouTube");
    let (_, sub) = app.api("GET", &format!("/youtube/subscriptions/{id}"), &admin, None);
    let error = sub["data"]["lastError"].as_str().unwrap().to_owned();
    assert_eq!(sub["data"]["lastResult"], "blocked", "{sub}");
    assert!(error.contains("medianest doctor"), "{error}");
    // The whole text (the page collapses runs of spaces, as HTML does).
    let words = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(
        words(&b.find(&format!("{css} .last-error")).text()),
        words(&error)
    );

    b.script("window.scrollTo(0, 0);", vec![]);
    shoot(&b, "subscriptions-blocked");

    // Pause and resume.
    b.find(&format!("{css} button.pause")).click();
    b.find(&format!("{css}[data-status='paused'] button.resume"))
        .click();
    b.find(&format!("{css}[data-status='active'] button.pause"));
    assert_clean_console(&b);
}

/// A family member proposes a subscription (the form says an admin reviews it) and deletes
/// another of her proposals; the admin sees the rest under Proposals, approves one (it becomes
/// an active subscription card) and declines the other with a reason (shown on its card).
#[test]
fn a_users_proposal_is_approved_from_the_proposals_section() {
    let _serial = serial();
    let app = App::start();
    let alice = app.plex_sign_in("alice");
    let propose = |url: &str| {
        let (status, body) = app.api(
            "POST",
            "/youtube/subscriptions",
            &alice,
            Some(json!({"url": url})),
        );
        assert_eq!(status, 201, "{body}");
        body["data"]["id"].as_str().unwrap().to_owned()
    };
    let unwanted = propose("https://www.youtube.com/@Unwanted");
    let declined = propose("https://www.youtube.com/@Declined");
    let b = Browser::start("subscriptions-proposal", DESKTOP.0, DESKTOP.1);
    b.goto(&app.url("/"));
    b.wait_path("/signin");
    b.script(
        "document.cookie = `medianest_session=${arguments[0]}; path=/; SameSite=Lax`;",
        vec![json!(alice)],
    );
    b.goto(&app.url("/subscriptions"));
    // She has proposals to look at, so the form is folded until she opens it.
    b.find(&format!("article[data-subscription='{declined}']"));
    assert_eq!(b.find("#subscription-add").prop("open"), json!(false));
    b.find("#subscription-add > summary").click();
    b.find_text("#subscription-form", "An admin will review it");
    // No Proposals section and no profile choice for a family member.
    assert!(b.all("#proposals").is_empty());
    assert!(b.all("#sub-new-profile").is_empty());
    b.find("#sub-new-url")
        .send_keys("https://www.youtube.com/@Proposed");
    b.find("#subscribe").click();
    b.find_text("#subscribe-result", "An admin will review it");
    let card = b.find("#subscription-list article.subscription[data-status='proposed']");
    let id = card.attr("data-subscription").unwrap();
    let css = format!("article[data-subscription='{id}']");
    // Her proposal: she may delete it, not check or pause it.
    b.find(&format!("{css} button.delete"));
    assert!(b.all(&format!("{css} button.check-now")).is_empty());
    b.script(
        "document.querySelector(arguments[0]).scrollIntoView({ block: 'center' });",
        vec![json!(css)],
    );
    shoot(&b, "subscriptions-user");
    // She deletes the unwanted one (the button asks once more).
    let unwanted_css = format!("article[data-subscription='{unwanted}']");
    b.find(&format!("{unwanted_css} button.delete")).click();
    b.find_text(&format!("{unwanted_css} button.delete"), "Really delete?")
        .click();
    b.wait_for("the deleted card to go", |b| {
        b.all(&unwanted_css).is_empty().then_some(())
    });
    let (status, _) = app.api(
        "GET",
        &format!("/youtube/subscriptions/{unwanted}"),
        &alice,
        None,
    );
    assert_eq!(status, 404);

    // The admin (same browser, the admin's session) approves it from Proposals.
    let admin = app.admin_token();
    b.script(
        "document.cookie = `medianest_session=${arguments[0]}; path=/; SameSite=Lax`;",
        vec![json!(admin)],
    );
    b.goto(&app.url("/subscriptions"));
    let row = format!("#proposal-list li[data-proposal='{id}']");
    let (_, proposed) = app.api("GET", &format!("/youtube/subscriptions/{id}"), &alice, None);
    b.find_text(&row, proposed["data"]["url"].as_str().unwrap());
    b.find_text(&row, "alice");
    // Proposals are not repeated among the subscriptions below.
    assert!(b.all(&format!("#subscription-list {css}")).is_empty());
    shoot(&b, "subscriptions-proposals");
    b.find(&format!("{row} button.approve")).click();
    b.find(&format!("#subscription-list {css}[data-status='active']"));
    let (_, sub) = app.api("GET", &format!("/youtube/subscriptions/{id}"), &admin, None);
    assert_eq!(sub["data"]["status"], "active", "{sub}");

    // The other one is declined, with a reason its card shows.
    let row = format!("#proposal-list li[data-proposal='{declined}']");
    b.find(&format!("{row} input.reason"))
        .send_keys("One cooking channel is enough");
    b.find(&format!("{row} button.decline")).click();
    b.find_text(
        &format!(
            "#subscription-list article[data-subscription='{declined}'][data-status='declined']"
        ),
        "Declined: One cooking channel is enough",
    );
    b.find_text("#proposal-list", "No proposals waiting");
    assert_clean_console(&b);
}

/// Discover opens on rows of posters from Seerr's lists; every poster shown is an image that
/// loaded (through MediaNest's own image route, from the simulated TMDB image host), and a row
/// scrolled to its end loads its next page.
#[test]
fn discover_opens_on_rows_of_posters_that_load() {
    let _serial = serial();
    let app = App::start();
    if waiting_for("discover rows", "GET", "/api/v1/media/discover/{row}") {
        return;
    }
    let alice = app.plex_sign_in("alice");
    let b = Browser::start("discover-rows", DESKTOP.0, DESKTOP.1);
    b.goto(&app.url("/"));
    b.wait_path("/signin");
    b.script(
        "document.cookie = `medianest_session=${arguments[0]}; path=/; SameSite=Lax`;",
        vec![json!(alice)],
    );
    b.goto(&app.url("/discover"));
    for row in [
        "trending",
        "popular-movies",
        "popular-tv",
        "upcoming-movies",
        "upcoming-tv",
    ] {
        b.find(&format!("#row-{row} .row-scroller .poster-card"));
    }
    // Every poster image of the first row loaded with real pixels.
    b.wait_for("the trending posters to load", |b| {
        let loaded = b.script(
            "const imgs = [...document.querySelectorAll('#row-trending img.poster')];
             return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0) ? imgs.length : 0;",
            vec![],
        );
        (loaded.as_u64().unwrap_or(0) > 0).then_some(())
    });
    let placeholders = b.script(
        "return document.querySelectorAll('#row-trending .poster.placeholder').length;",
        vec![],
    );
    assert_eq!(placeholders, json!(0), "every trending title has a poster");
    // Scrolled to its end, a row with more pages asks for the next one.
    let before = b.script(
        "return document.querySelectorAll('#row-trending .poster-card').length;",
        vec![],
    );
    b.script(
        "const l = document.querySelector('#row-trending .row-scroller'); l.scrollLeft = l.scrollWidth;",
        vec![],
    );
    let pages = b.script(
        "return document.querySelector('#row-trending .row-end') ? 'more' : 'one';",
        vec![],
    );
    if pages == json!("more") {
        b.wait_for("the next page of trending", |b| {
            let now = b.script(
                "return document.querySelectorAll('#row-trending .poster-card').length;",
                vec![],
            );
            (now.as_u64() > before.as_u64()).then_some(())
        });
    }
    shoot(&b, "discover-rows");
    assert_clean_console(&b);
}

/// Signs `token`'s user in by its session cookie and opens `path`.
fn open_as(b: &Browser, app: &App, token: &str, path: &str) {
    b.goto(&app.url("/"));
    b.wait_path("/signin");
    b.script(
        "document.cookie = `medianest_session=${arguments[0]}; path=/; SameSite=Lax`;",
        vec![json!(token)],
    );
    b.goto(&app.url(path));
}

/// Waits until the image `css` finds has loaded with real pixels.
fn wait_image(b: &Browser, what: &str, css: &str) {
    b.wait_for(what, |b| {
        let width = b.script(
            "const img = document.querySelector(arguments[0]); return img && img.complete ? img.naturalWidth : 0;",
            vec![json!(css)],
        );
        (width.as_u64().unwrap_or(0) > 0).then_some(())
    });
}

/// At phone width the page does not scroll sideways.
fn assert_no_sideways_scroll(b: &Browser, page: &str) {
    b.resize(PHONE.0, PHONE.1);
    b.script(
        "return new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));",
        vec![],
    );
    let widths = b.script(
        "return [document.documentElement.scrollWidth, window.innerWidth];",
        vec![],
    );
    let (scroll, inner) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
    assert!(
        scroll <= inner,
        "{page} at {} px: scrollWidth {scroll} > innerWidth {inner}",
        PHONE.0
    );
    b.resize(DESKTOP.0, DESKTOP.1);
}

/// `target/screenshots/{name}-{1280,375}.png` exist and are PNGs with content.
fn assert_screenshots(name: &str) {
    for width in [DESKTOP.0, PHONE.0] {
        let path = webdriver::screenshot_dir().join(format!("{name}-{width}.png"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            bytes.len() > 1000,
            "{}: {} bytes",
            path.display(),
            bytes.len()
        );
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{}",
            path.display()
        );
    }
}

/// From a Discover card to the show's title page: the backdrop and the poster load, the seasons
/// are listed, two seasons are requested through the picker, and the page then shows the
/// request; someone else gets "notify me too" on it. Screenshots of Discover and of the title
/// page at both widths, neither scrolling sideways on a phone.
#[test]
fn a_show_is_requested_from_its_title_page_opened_from_discover() {
    let _serial = serial();
    let app = App::start();
    let alice = app.plex_sign_in("alice");
    let b = Browser::start("title-page", DESKTOP.0, DESKTOP.1);
    open_as(&b, &app, &alice, "/discover");
    let card = "#row-popular-tv .poster-card[data-tmdb='1399']";
    b.find(card);
    b.wait_for("the trending posters to load", |b| {
        let loaded = b.script(
            "const imgs = [...document.querySelectorAll('#row-trending img.poster')];
             return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);",
            vec![],
        );
        (loaded == json!(true)).then_some(())
    });
    assert_no_sideways_scroll(&b, "discover");
    shoot(&b, "discover");
    assert_screenshots("discover");

    // The card's title is a link to the show's page.
    b.find(&format!("{card} a.title-link")).click();
    b.wait_path("/tv/1399");
    b.find_text("h1#page-title", "Game of Thrones");
    wait_image(&b, "the backdrop", ".title-page .backdrop-img");
    wait_image(&b, "the poster", ".title-page img.title-poster");
    let src = b.find(".backdrop-img").attr("src").unwrap();
    assert!(src.contains("/api/v1/images/tmdb/w1280/"), "{src}");
    assert_eq!(b.all("#season-list li").len(), 8, "the numbered seasons");
    assert!(b.all("a.watch-plex").is_empty(), "nothing to watch yet");
    assert!(b.all("button.report-problem").is_empty());

    // Two seasons through the picker.
    b.find(".title-actions button.request").click();
    b.find("form.seasons input[data-season='2']").click();
    b.find("form.seasons input[data-season='3']").click();
    b.find_text("form.seasons button", "Send request").click();
    b.find_text(".title-actions button.request", "Requested");
    b.find(".title-page .badges .badge-pending");
    let mark = b.script(
        "return document.querySelector('.title-page .badges .badge-pending').textContent;",
        vec![],
    );
    assert_eq!(mark, json!("requested · pending by you"));
    let admin = app.admin_token();
    let (_, all) = app.api("GET", "/admin/requests?q=Thrones", &admin, None);
    assert_eq!(all["data"][0]["seasons"], json!([2, 3]), "{all}");
    assert_eq!(all["data"][0]["status"], "pending", "{all}");
    b.script("window.scrollTo(0, 0);", vec![]);
    assert_no_sideways_scroll(&b, "the title page");
    shoot(&b, "title");
    assert_screenshots("title");
    assert_clean_console(&b);

    // An admin approves it: alice's notification shows the show's poster, linking to its page.
    let id = all["data"][0]["id"].as_str().unwrap().to_owned();
    let (status, approved) = app.api(
        "POST",
        &format!("/admin/requests/{id}/approve"),
        &admin,
        None,
    );
    assert_eq!(status, 200, "{approved}");
    b.find("#bell").click();
    b.wait_path("/notifications");
    let row = ".notification a.thumb-link[href$='/tv/1399']";
    b.find(row);
    wait_image(&b, "the notification's poster", &format!("{row} img.thumb"));
    // My requests shows it with its poster too.
    b.find("a.nav-link[href='/requests']").click();
    b.wait_path("/requests");
    wait_image(
        &b,
        "the request's poster",
        &format!("[data-request='{id}'] img.thumb"),
    );
    shoot(&b, "requests-posters");

    // Bob finds it asked for already: he may be told too.
    let bob = app.plex_sign_in("bob");
    b.script(
        "document.cookie = `medianest_session=${arguments[0]}; path=/; SameSite=Lax`;",
        vec![json!(bob)],
    );
    b.goto(&app.url("/tv/1399"));
    b.find_text(".who .username", "bob");
    b.find_text(".title-actions button.request", "Requested");
    b.find_text("button.follow", "Notify me too").click();
    b.find_text("button.follow", "Notifying you");
    let (_, d) = app.api("GET", "/media/tv/1399", &bob, None);
    assert_eq!(d["data"]["request"]["following"], json!(true), "{d}");
    assert_clean_console(&b);
}

/// A movie Seerr says is available (the demo's "Arrival", found on the demo's Plex server) offers
/// "Watch in Plex", a link to that item on that server in the Plex web app, and "Report a
/// problem", which reports it to Seerr as the user.
#[test]
fn an_available_movie_offers_watch_in_plex() {
    let _serial = serial();
    let app = App::start();
    let alice = app.plex_sign_in("alice");
    let b = Browser::start("watch-in-plex", DESKTOP.0, DESKTOP.1);
    let (tmdb_id, title, _) = medianest::demo::AVAILABLE_MOVIE;
    open_as(&b, &app, &alice, &format!("/movie/{tmdb_id}"));
    b.find_text("h1#page-title", title);
    let link = b.find("a.watch-plex");
    assert_eq!(link.text(), "Watch in Plex");
    let href = link.attr("href").unwrap();
    let prefix = format!(
        "{}/desktop#!/server/{}/details?key=%2Flibrary%2Fmetadata%2F",
        app.sims.plextv.url(),
        app.sims.plex.machine_identifier()
    );
    let key = href
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{href} should start with {prefix}"));
    assert_eq!(
        app.sims.plex.item(key).map(|i| i.title),
        Some(title.to_owned()),
        "the link names the Plex item of the title"
    );
    assert_eq!(link.attr("target").as_deref(), Some("_blank"));
    b.find(".title-page .badge-available");
    assert!(
        b.all(".title-actions button.request").is_empty(),
        "nothing to request"
    );
    assert_clean_console(&b);
    // "Report a problem" opens the reporting dialog, which sends the report to Seerr as alice.
    b.find("button.report-problem").click();
    b.find("dialog.report-dialog[open]");
    assert!(
        b.all("dialog.report-dialog select[name='season']")
            .is_empty(),
        "a movie has no seasons"
    );
    b.find("dialog.report-dialog textarea[name='message']")
        .send_keys("The picture freezes at the landing");
    b.find("dialog.report-dialog button[type='submit']").click();
    b.find_text(".toast", "was reported");
    let (status, mine) = app.api("GET", "/media/problems", &alice, None);
    assert_eq!(status, 200, "{mine}");
    let reported = &mine["data"][0];
    assert_eq!(reported["tmdbId"], json!(tmdb_id), "{mine}");
    assert_eq!(reported["type"], "video", "{mine}");
    let issue = app
        .sims
        .overseerr
        .issue(reported["seerrIssueId"].as_i64().unwrap())
        .unwrap();
    assert_eq!(issue.created_by, 12, "reported as alice's Seerr account");
    assert_eq!(issue.issue_type, 1, "video");
    assert_clean_console(&b);
}

/// A Plex user switches on "Request what I add to my Plex watchlist" on My requests: the demo's
/// watchlist sync checks at once, and the titles on bob's simulated watchlist appear in the list
/// live, marked "from your watchlist", with the state line under the switch.
#[test]
fn a_plex_user_switches_on_watchlist_requests_and_sees_them_arrive() {
    let _serial = serial();
    let app = App::start();
    let b = Browser::start("watchlist", DESKTOP.0, DESKTOP.1);
    sign_in_with_plex(&b, &app, "bob");
    b.find("a.nav-link[href='/requests']").click();
    b.wait_path("/requests");
    b.find_text("#watchlist-state", "Off");
    let switch = b.find("#watchlist-enabled");
    switch.click();
    let rows = "#request-list [data-request]";
    b.wait_for("the watchlist's requests", |b| {
        let texts: Vec<String> = b.all(rows).iter().map(|r| r.text()).collect();
        (texts
            .iter()
            .any(|t| t.contains("Inception") && t.contains("from your watchlist"))
            && texts.iter().any(|t| t.contains("Game of Thrones")))
        .then_some(())
    });
    b.find_text("#watchlist-state", "Last checked");
    assert_clean_console(&b);
    shoot(&b, "requests-watchlist");
}

/// Problem reports: a family member reports a problem with an available title from My requests
/// (the report dialog: labelled, focused, sent, toasted, listed); the dialog of a show asks for
/// the season and then the episode; the admin resolves the report with a comment from the
/// requests page, Seerr gets the comment and the status, and its webhooks come back without
/// notifying the reporter twice.
#[test]
fn a_problem_is_reported_from_my_requests_and_resolved_by_the_admin() {
    let _serial = serial();
    let app = App::start();
    if waiting_for("problem reports", "POST", "/api/v1/media/problems") {
        return;
    }
    app.sims.connect_webhook(app.addr, &app.base);
    let alice = app.plex_sign_in("alice");
    let admin = app.admin_token();
    // Alice asked for The Matrix; it was approved and is on Plex now.
    let (status, made) = app.api(
        "POST",
        "/media/requests",
        &alice,
        Some(json!({"mediaType": "movie", "tmdbId": 603})),
    );
    assert_eq!(status, 201, "{made}");
    let overseerr_id = made["data"]["overseerrId"].as_i64().unwrap();
    app.sims.overseerr.set_media_available(
        medianest::integrations::overseerr::model::MediaType::Movie,
        603,
    );
    let status = app.rt.block_on(app.sims.overseerr.fire_webhook(
        &app.url("/api/v1/webhooks/seerr"),
        Some(medianest::demo::WEBHOOK_SECRET),
        &FakeNotification::about(NotificationType::MediaAvailable, overseerr_id),
    ));
    assert_eq!(status, Ok(200));

    let b = Browser::start("problem-report", DESKTOP.0, DESKTOP.1);
    b.goto(&app.url("/"));
    b.wait_path("/signin");
    b.script(
        "document.cookie = `medianest_session=${arguments[0]}; path=/; SameSite=Lax`;",
        vec![json!(alice)],
    );
    b.goto(&app.url("/requests"));
    b.find_text(
        "#problem-list + .footer",
        "You have not reported any problem",
    );
    let request = made["data"]["id"].as_str().unwrap();
    b.find(&format!("[data-request='{request}'] button.report-problem"))
        .click();
    // A modal dialog, focus inside it on the first control, every control named.
    b.find("dialog.report-dialog[open]");
    assert!(
        b.focused().contains("report-") && b.focused().contains("-type"),
        "{}",
        b.focused()
    );
    assert_labelled(&b, "report dialog");
    assert!(
        b.all("dialog.report-dialog select[name='season']")
            .is_empty(),
        "a movie has no seasons"
    );
    // Sending without a message is refused in place.
    b.find("dialog.report-dialog button[type='submit']").click();
    b.find_text("dialog.report-dialog .report-error", "Say what is wrong");
    b.script(
        "const s = document.querySelector('dialog.report-dialog select[name=type]'); s.value = 'audio'; s.dispatchEvent(new Event('change'));",
        vec![],
    );
    b.find("dialog.report-dialog textarea[name='message']")
        .send_keys("The sound drops out after ten minutes");
    b.wait_for("the complaint to go once there is a message", |b| {
        b.all("dialog.report-dialog .report-error [role=alert]")
            .is_empty()
            .then_some(())
    });
    assert_eq!(
        b.find("dialog.report-dialog textarea[name='message']")
            .attr("aria-invalid"),
        None
    );
    shoot(&b, "problem-report-dialog");
    b.find("dialog.report-dialog button[type='submit']").click();
    b.find_text(".toast", "was reported");
    b.wait_for("the dialog to close", |b| {
        b.all("dialog.report-dialog").is_empty().then_some(())
    });
    let row = b.find("#problem-list li[data-status='open']");
    let problem = row.attr("data-problem").unwrap();
    assert!(row.text().contains("The Matrix"), "{}", row.text());
    assert!(row.text().contains("Audio"), "{}", row.text());
    let (_, stored) = app.api("GET", &format!("/media/problems/{problem}"), &alice, None);
    let issue_id = stored["data"]["seerrIssueId"].as_i64().unwrap();
    let issue = app.sims.overseerr.issue(issue_id).unwrap();
    assert_eq!(issue.created_by, 12, "reported as alice's Seerr account");
    assert_eq!(issue.issue_type, 2);

    // A show's dialog (as the title page opens it): the season, then its episodes.
    b.script(
        "window.__report = import(arguments[0]).then((m) => m.openReportDialog({ mediaType: 'tv', tmdbId: 1399, title: 'Game of Thrones', seasons: [{ seasonNumber: 1, episodeCount: 10 }, { seasonNumber: 2, episodeCount: 10 }] }));",
        vec![json!(app.url("/js/report.js"))],
    );
    b.find("dialog.report-dialog[open] select[name='season']");
    assert_eq!(
        b.find("dialog.report-dialog select[name='episode']")
            .prop("disabled"),
        json!(true)
    );
    b.script(
        "const s = document.querySelector('dialog.report-dialog select[name=season]'); s.value = '2'; s.dispatchEvent(new Event('change'));",
        vec![],
    );
    assert_eq!(
        b.find("dialog.report-dialog select[name='episode']")
            .prop("disabled"),
        json!(false)
    );
    assert_eq!(
        b.all("dialog.report-dialog select[name='episode'] option")
            .len(),
        11
    );
    assert_labelled(&b, "report dialog for a show");
    b.keys("\u{E00C}"); // Escape closes it without sending.
    b.wait_for("the show's dialog to close", |b| {
        b.all("dialog.report-dialog").is_empty().then_some(())
    });
    let sent = b.script("return window.__report;", vec![]);
    assert_eq!(sent, json!(false));
    assert_clean_console(&b);

    // The admin resolves it with a comment from the requests page.
    b.script(
        "document.cookie = `medianest_session=${arguments[0]}; path=/; SameSite=Lax`;",
        vec![json!(admin)],
    );
    b.goto(&app.url("/admin/requests"));
    let admin_row = format!("#admin-problems li[data-problem='{problem}']");
    b.find_text(&admin_row, "alice");
    b.find_text(&admin_row, "The sound drops out");
    shoot(&b, "admin-problems");
    b.find(&format!("{admin_row} input"))
        .send_keys("Replaced the file, enjoy");
    b.find(&format!("{admin_row} button.resolve-problem"))
        .click();
    b.wait_for("the resolved problem to leave the open list", |b| {
        b.all(&admin_row).is_empty().then_some(())
    });
    b.find_text("#admin-problems + div", "No problem reports");
    let issue = app.sims.overseerr.issue(issue_id).unwrap();
    assert_eq!(issue.status, 2);
    assert_eq!(
        issue.comments.last().unwrap().message,
        "Replaced the file, enjoy"
    );
    // Seerr's ISSUE_COMMENT and ISSUE_RESOLVED come back; alice is told once.
    b.wait_for("Seerr's webhooks to be answered", |_| {
        let sent = app.sims.overseerr.issue_webhooks();
        (sent.len() >= 3 && sent.iter().all(|s| s.answer == Ok(200))).then_some(())
    });
    let (_, notes) = app.api("GET", "/notifications?limit=100", &alice, None);
    let problem_notes: Vec<&Value> = notes["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"].as_str().unwrap_or("").starts_with("problem."))
        .collect();
    assert_eq!(problem_notes.len(), 1, "{notes}");
    assert_eq!(problem_notes[0]["type"], "problem.resolved");

    // Alice sees it resolved with the admin's reply, and answers.
    b.script(
        "document.cookie = `medianest_session=${arguments[0]}; path=/; SameSite=Lax`;",
        vec![json!(alice)],
    );
    b.goto(&app.url("/requests"));
    let mine = format!("#problem-list li[data-problem='{problem}']");
    b.find(&format!("{mine}[data-status='resolved']"));
    b.find_text(&format!("{mine} summary"), "1 reply").click();
    b.find_text(&format!("{mine} .thread"), "Replaced the file, enjoy");
    b.find(&format!("{mine} form.reply input"))
        .send_keys("Thanks, it plays now");
    b.find(&format!("{mine} form.reply button")).click();
    b.find_text(&format!("{mine} .thread"), "Thanks, it plays now");
    let issue = app.sims.overseerr.issue(issue_id).unwrap();
    let last = issue.comments.last().unwrap();
    assert_eq!(
        (last.user, last.message.as_str()),
        (12, "Thanks, it plays now")
    );
    shoot(&b, "problem-reports-mine");
    assert_clean_console(&b);
}
