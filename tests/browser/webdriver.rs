//! A small synchronous W3C WebDriver client over `ureq` (already a dependency): just the commands
//! the dashboard tests use. It starts its own `chromedriver` on a free loopback port and a
//! headless Chromium with a fresh profile, and ends both when dropped. A test that panics while
//! a browser is open leaves a screenshot of the page (see [`Browser`]'s `Drop`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// Where Debian's packages put the browser and its driver.
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long a wait for something on the page may take.
pub const WAIT: Duration = Duration::from_secs(20);

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Fails, naming the script that installs them, when the browser binaries are missing.
pub fn require_browser() {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "the browser tests need Debian's chromium and chromium-driver ({} missing): run `tests/run` \
         (the README's test command), which installs them and then runs the whole suite",
        missing.join(", ")
    );
}

/// Where screenshots go: `<target dir>/screenshots` (git-ignored with the rest of the target).
pub fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("screenshots");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// An HTTP client that answers every status (WebDriver errors and API errors are JSON bodies).
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// A WebDriver session in a headless Chromium, with its own chromedriver.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    /// Names the failure screenshot.
    name: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a browser `width` px wide.
    pub fn start(name: &str, width: u32, height: u32) -> Self {
        require_browser();
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
        let base = format!("http://127.0.0.1:{port}");
        let agent = agent(Duration::from_secs(60));
        let started = Instant::now();
        loop {
            let ready = agent
                .get(format!("{base}/status"))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .is_some_and(|v| v["value"]["ready"] == json!(true));
            if ready {
                break;
            }
            assert!(
                started.elapsed() < WAIT,
                "chromedriver did not become ready"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-features=Translate,OptimizationHints,MediaRouter".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
                    "goog:loggingPrefs": { "browser": "ALL" },
                }
            }
        });
        let mut browser = Self {
            driver,
            base,
            session: String::new(),
            agent,
            name: name.to_owned(),
            _profile: profile,
        };
        let value = browser.command("POST", "/session", Some(caps));
        browser.session = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {value}"))
            .to_owned();
        browser.resize(width, height);
        browser
    }

    /// One WebDriver command; panics on a WebDriver error.
    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        match self.try_command(method, path, body) {
            Ok(v) => v,
            Err(e) => panic!("WebDriver {method} {path}: {e}"),
        }
    }

    fn try_command(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = if path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let response = match method {
            "GET" => self.agent.get(&url).call(),
            "DELETE" => self.agent.delete(&url).call(),
            _ => {
                let body = body.unwrap_or_else(|| json!({})).to_string();
                self.agent
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .send(body.as_bytes())
            }
        };
        let mut response = response.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        let parsed: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        if status >= 400 {
            return Err(format!(
                "{status} {}: {}",
                parsed["value"]["error"], parsed["value"]["message"]
            ));
        }
        Ok(parsed["value"].clone())
    }

    /// Sets the window size.
    pub fn resize(&self, width: u32, height: u32) {
        self.command(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
    }

    pub fn goto(&self, url: &str) {
        self.command("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn current_url(&self) -> String {
        self.command("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The path part of the current URL.
    pub fn path(&self) -> String {
        let url = self.current_url();
        url::Url::parse(&url)
            .map(|u| u.path().to_owned())
            .unwrap_or(url)
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its value.
    pub fn script(&self, script: &str, args: Vec<Value>) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        self.try_command(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| e[ELEMENT_KEY].as_str().map(str::to_owned))
        .map(|id| Element { browser: self, id })
        .collect()
    }

    /// Waits until `check` answers `Some`, polling the page; panics after [`WAIT`].
    pub fn wait_for<T>(&self, what: &str, mut check: impl FnMut(&Self) -> Option<T>) -> T {
        let started = Instant::now();
        loop {
            if let Some(v) = check(self) {
                return v;
            }
            assert!(
                started.elapsed() < WAIT,
                "timed out after {WAIT:?} waiting for {what} (at {})",
                self.current_url()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The first element matching `css` once there is one.
    pub fn find(&self, css: &str) -> Element<'_> {
        self.wait_for(&format!("`{css}`"), |_| {
            self.find_all(css).into_iter().next()
        })
    }

    /// Every element matching `css` now (maybe none).
    pub fn all(&self, css: &str) -> Vec<Element<'_>> {
        self.find_all(css)
    }

    /// The first element matching `css` whose text contains `text`.
    pub fn find_text(&self, css: &str, text: &str) -> Element<'_> {
        self.wait_for(&format!("`{css}` containing {text:?}"), |_| {
            self.find_all(css)
                .into_iter()
                .find(|e| e.text().contains(text))
        })
    }

    /// The attribute `name` of the first element matching `css` whose text contains `text`, read
    /// in one go (the app redraws rows as live events arrive, so a found element can go stale).
    pub fn attr_of(&self, css: &str, text: &str, name: &str) -> String {
        self.wait_for(&format!("`{css}` containing {text:?} with {name}"), |_| {
            self.find_all(css)
                .into_iter()
                .find(|e| e.text().contains(text))?
                .attr(name)
        })
    }

    /// Waits for the app's path to be `path`.
    pub fn wait_path(&self, path: &str) {
        self.wait_for(&format!("path {path}"), |b| {
            (b.path() == path).then_some(())
        });
    }

    /// Window handles, and switching between them.
    pub fn windows(&self) -> Vec<String> {
        self.command("GET", "/window/handles", None)
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    }

    pub fn window(&self) -> String {
        self.command("GET", "/window", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn switch_to(&self, handle: &str) {
        self.command("POST", "/window", Some(json!({ "handle": handle })));
    }

    /// Opens a new tab and switches to it.
    pub fn new_tab(&self) -> String {
        let v = self.command("POST", "/window/new", Some(json!({"type": "tab"})));
        let handle = v["handle"].as_str().unwrap_or_default().to_owned();
        self.switch_to(&handle);
        handle
    }

    /// Closes the current window (switch to another one afterwards).
    pub fn close_window(&self) {
        self.command("DELETE", "/window", None);
    }

    /// A PNG of the viewport.
    pub fn screenshot_png(&self) -> Result<Vec<u8>, String> {
        let v = self.try_command("GET", "/screenshot", None)?;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map_err(|e| e.to_string())
    }

    /// Saves a screenshot as `<screenshot dir>/<name>.png` and returns its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let path = screenshot_dir().join(format!("{name}.png"));
        match self.screenshot_png() {
            Ok(png) => {
                if let Err(e) = std::fs::write(&path, png) {
                    eprintln!("cannot write {}: {e}", path.display());
                }
            }
            Err(e) => eprintln!("no screenshot {name}: {e}"),
        }
        path
    }

    /// Types `keys` into whatever has the focus, as a keyboard would (W3C key actions; `\u{E004}`
    /// is Tab, `\u{E007}` Enter).
    pub fn keys(&self, keys: &str) {
        let mut actions = Vec::new();
        for key in keys.chars() {
            actions.push(json!({"type": "keyDown", "value": key.to_string()}));
            actions.push(json!({"type": "keyUp", "value": key.to_string()}));
        }
        self.command(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        );
    }

    /// A short description of the focused element: `tag#id` and its text.
    pub fn focused(&self) -> String {
        self.script(
            "const e = document.activeElement; return e ? `${e.tagName.toLowerCase()}#${e.id} ${(e.textContent || '').trim()}` : '';",
            vec![],
        )
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// A Chromium DevTools command on the current page, through chromedriver's CDP endpoint.
    pub fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.command(
            "POST",
            "/goog/cdp/execute",
            Some(json!({"cmd": cmd, "params": params})),
        )
    }

    /// Emulates `prefers-color-scheme: dark` (or back to light) through Chromium's DevTools.
    pub fn dark(&self, on: bool) {
        self.command(
            "POST",
            "/goog/cdp/execute",
            Some(json!({
                "cmd": "Emulation.setEmulatedMedia",
                "params": {"features": [{"name": "prefers-color-scheme", "value": if on { "dark" } else { "light" }}]},
            })),
        );
    }

    /// Browser console messages since the last call (Chromium's log endpoint).
    pub fn console(&self) -> Vec<String> {
        self.try_command("POST", "/se/log", Some(json!({"type": "browser"})))
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .map(|e| format!("{} {}", e["level"], e["message"]))
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.session.is_empty() {
            let path = self.screenshot(&format!("failure-{}", self.name));
            eprintln!("screenshot of the failure: {}", path.display());
            for line in self.console() {
                eprintln!("browser console: {line}");
            }
        }
        if !self.session.is_empty() {
            let _ = self.try_command("DELETE", "", None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// An element on the page.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Element<'_> {
    fn path(&self, rest: &str) -> String {
        format!("/element/{}{rest}", self.id)
    }

    pub fn click(&self) {
        // A click can land while the element is being replaced: retry briefly.
        let started = Instant::now();
        loop {
            match self.browser.try_command("POST", &self.path("/click"), None) {
                Ok(_) => return,
                Err(e) if started.elapsed() < Duration::from_secs(3) => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("click failed: {e}"),
            }
        }
    }

    pub fn send_keys(&self, text: &str) {
        self.browser
            .command("POST", &self.path("/value"), Some(json!({ "text": text })));
    }

    pub fn clear(&self) {
        self.browser.command("POST", &self.path("/clear"), None);
    }

    /// The element's visible text ("" once it is gone).
    pub fn text(&self) -> String {
        self.browser
            .try_command("GET", &self.path("/text"), None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    pub fn attr(&self, name: &str) -> Option<String> {
        self.browser
            .try_command("GET", &self.path(&format!("/attribute/{name}")), None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
    }

    pub fn prop(&self, name: &str) -> Value {
        self.browser
            .try_command("GET", &self.path(&format!("/property/{name}")), None)
            .unwrap_or(Value::Null)
    }
}
