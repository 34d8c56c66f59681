//! A real nginx (Debian's `nginx`, installed by `tests/run`) in front of the server: a foreground
//! process with its own configuration, pid file, logs and temporary paths in a temporary
//! directory, listening on a free loopback port, stopped when dropped. Its `location` blocks are
//! [`locations`], the text the README's "Behind a reverse proxy" section gives (a test checks the
//! README has it word for word).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::webdriver;

pub const NGINX: &str = "/usr/sbin/nginx";

/// The README's address for MediaNest in its snippets.
pub const README_UPSTREAM: &str = "127.0.0.1:4000";

/// The `location` blocks that put MediaNest on `upstream` under `base` (`""` for the root,
/// `/medianest` for a sub-path), as the README gives them. The prefix is passed on unchanged
/// (`proxy_pass` without a path), and the event stream is passed on unbuffered.
pub fn locations(base: &str, upstream: &str) -> String {
    let headers = "        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Host $http_host;
";
    format!(
        "    location {base}/ {{
        proxy_pass http://{upstream};
{headers}    }}

    # Live updates (server-sent events): each event passed on as it comes.
    location {base}/api/v1/events {{
        proxy_pass http://{upstream};
{headers}        proxy_http_version 1.1;
        proxy_set_header Connection \"\";
        proxy_buffering off;
        proxy_cache off;
        proxy_read_timeout 1h;
    }}
"
    )
}

/// Fails, naming the script that installs it, when nginx is missing.
pub fn require_nginx() {
    assert!(
        Path::new(NGINX).exists(),
        "{NGINX} is missing: run tests/run, which installs Debian's nginx"
    );
}

/// A running nginx, stopped (SIGTERM, then SIGKILL if it lingers) when dropped.
pub struct Nginx {
    child: Child,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx in front of `upstream` under `base` and waits (bounded) until
    /// `<base>/health/ready` answers 200 through it.
    pub fn start(base: &str, upstream: SocketAddr) -> Self {
        require_nginx();
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path();
        let addr = SocketAddr::from(([127, 0, 0, 1], webdriver::free_port()));
        // As root, the workers would switch to `nobody`, who cannot enter the temporary
        // directory; as anyone else nginx keeps the user it has.
        let user = if is_root() { "user root;\n" } else { "" };
        let p = prefix.display();
        let conf = format!(
            "{user}worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {p}/access.log;
    client_body_temp_path {p}/client_body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
    server {{
        listen {addr};
{}    }}
}}
",
            locations(base, &upstream.to_string())
        );
        let conf_path = prefix.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(NGINX)
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(prefix)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut nginx = Self { child, addr, dir };
        nginx.wait_ready(&format!("http://{addr}{base}/health/ready"));
        nginx
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self, url: &str) {
        let agent = webdriver::agent(Duration::from_secs(2));
        let deadline = Instant::now() + webdriver::WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("nginx exited ({status}):\n{}", self.error_log());
            }
            if agent
                .get(url)
                .call()
                .is_ok_and(|r| r.status().as_u16() == 200)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{url} not ready through nginx within {:?}:\n{}",
                webdriver::WAIT,
                self.error_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers and exits.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
