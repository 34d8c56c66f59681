//! End-to-end tests against the real `medianest` binary: configuration errors, the commands of
//! SPEC section 12, a served instance that is ready, answers `healthcheck`, and stops cleanly
//! on SIGTERM, and `medianest demo` end to end against its simulated upstreams.
//!
//! Every child runs in its own temporary directory with the `MEDIANEST_*` variables of the test
//! environment removed, and with a deadline: a child that does not exit in time is killed and the
//! test fails. A child's output goes to a file that failures print (and `TEST_LOG=1` always).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_medianest");

/// Longest any child may take to exit, or a server to become ready.
const DEADLINE: Duration = Duration::from_secs(20);

/// A `medianest` command that sees none of the test environment's configuration.
fn medianest(cwd: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(cwd);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("MEDIANEST_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// Runs `cmd` to completion within [`DEADLINE`], capturing its output.
fn run(mut cmd: Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // wait_with_output blocks; a watchdog thread kills the child (by its pid) if it hangs.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(DEADLINE).is_err() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            return true;
        }
        false
    });
    let output = child.wait_with_output().unwrap();
    let _ = done_tx.send(());
    let killed = watchdog.join().unwrap();
    assert!(
        !killed,
        "{cmd:?} did not exit within {DEADLINE:?}; stderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The non-empty lines of `s`.
fn lines(s: &str) -> Vec<&str> {
    s.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// A port that was free a moment ago (the binary takes an address, not a listener).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// A `medianest serve` child, killed on drop if still running.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    data_dir: PathBuf,
    /// `server.base_path` (empty at the root): where `/health/ready` is awaited.
    base: String,
}

impl Server {
    /// Starts `medianest serve` with `args` in `dir` and polls `/health/ready` until it answers
    /// 200, failing if the child exits or [`DEADLINE`] passes first.
    fn start(dir: &TempDir, args: &[&str]) -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let data_dir = dir.path().join("data");
        let mut cmd = medianest(dir.path());
        cmd.args(args)
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("serve");
        Self::spawn(dir, cmd, addr, data_dir)
    }

    /// Runs `cmd`, which listens on `addr`, with its output in `server.log` in `dir`, and waits
    /// until it is ready (as [`Server::start`]).
    fn spawn(dir: &TempDir, mut cmd: Command, addr: SocketAddr, data_dir: PathBuf) -> Self {
        let log = dir.path().join("server.log");
        let log_file = File::create(&log).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file);
        let child = cmd.spawn().unwrap();
        let base = cmd
            .get_envs()
            .find(|(k, _)| *k == "MEDIANEST_SERVER__BASE_PATH")
            .and_then(|(_, v)| v)
            .map(|v| v.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut server = Self {
            child,
            addr,
            log,
            data_dir,
            base,
        };
        server.wait_ready();
        server
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let agent = agent();
        let url = self.url(&format!("{}/health/ready", self.base));
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the server exited ({status}) before it was ready:\n{}",
                    self.log_text()
                );
            }
            if let Ok(response) = agent.get(&url).call()
                && response.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not ready within {DEADLINE:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a crash would: no chance to clean up.
    fn kill_hard(&mut self) {
        let status = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -KILL failed");
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (bounded) for the exit.
    fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running {DEADLINE:?} after SIGTERM:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::env::var_os("TEST_LOG").is_some() {
            eprintln!("--- server log ---\n{}", self.log_text());
        }
    }
}

#[test]
fn version_prints_the_package_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = medianest(dir.path());
    cmd.arg("--version");
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout.trim(),
        format!("medianest {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn the_default_config_starts_a_ready_server_that_creates_its_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = medianest(dir.path());
    cmd.arg("default-config");
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config = dir.path().join("medianest.toml");
    std::fs::write(&config, &out.stdout).unwrap();
    assert!(text(&out.stdout).contains("[server]"));

    let server = Server::start(&dir, &["--config", config.to_str().unwrap()]);
    let response = agent().get(&server.url("/health/ready")).call().unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value =
        serde_json::from_str(&response.into_body().read_to_string().unwrap()).unwrap();
    assert_eq!(body["checks"]["database"]["status"], "ok", "{body}");

    let key = server.data_dir.join("secret.key");
    assert!(key.is_file(), "secret.key was not created");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "secret.key mode is {:o}", mode & 0o777);
    }
    assert!(
        server.data_dir.join("medianest.db").is_file(),
        "the database file is in the data dir"
    );
}

/// Listening on every address without `metrics.token`: the start says `/metrics` wants an admin
/// session, and an anonymous scrape is refused.
#[test]
fn on_a_network_address_without_a_metrics_token_the_start_says_metrics_want_an_admin() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let data_dir = dir.path().join("data");
    let mut cmd = medianest(dir.path());
    cmd.arg("--data-dir")
        .arg(&data_dir)
        .arg("--listen")
        .arg(format!("0.0.0.0:{port}"))
        .arg("serve");
    // Only loopback traffic: the server listens everywhere, the test connects to 127.0.0.1.
    let server = Server::spawn(
        &dir,
        cmd,
        SocketAddr::from(([127, 0, 0, 1], port)),
        data_dir,
    );
    let response = agent().get(&server.url("/metrics")).call().unwrap();
    assert_eq!(response.status(), 401);
    let log = server.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("only an admin session may read it")),
        "{log}"
    );
}

/// Out of file descriptors (a low `ulimit -n`, more idle clients than it allows): the start
/// warns that `server.max_connections` does not fit, failed accepts are logged at most once a
/// second instead of every few milliseconds, and once the header timeout has closed the idle
/// clients `/health` answers again without a restart.
#[cfg(target_os = "linux")]
#[test]
fn out_of_file_descriptors_the_server_backs_off_logs_once_a_second_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let data_dir = dir.path().join("data");
    let mut cmd = Command::new("sh");
    cmd.current_dir(dir.path())
        .arg("-c")
        .arg(r#"ulimit -n 128 && exec "$@""#)
        .arg("sh")
        .arg(BIN)
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--listen")
        .arg(addr.to_string())
        .arg("serve");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("MEDIANEST_") {
            cmd.env_remove(name);
        }
    }
    // The idle clients all come from 127.0.0.1: the per-address cap (32 by default) would
    // refuse most of them before the descriptors run out.
    cmd.env("NO_COLOR", "1")
        .env("MEDIANEST_SERVER__HEADER_READ_TIMEOUT_SECS", "2")
        .env("MEDIANEST_SERVER__MAX_CONNECTIONS_PER_IP", "2048");
    let server = Server::spawn(&dir, cmd, addr, data_dir);
    assert!(
        server
            .log_text()
            .contains("server.max_connections does not fit under the open-file limit"),
        "{}",
        server.log_text()
    );

    // More idle connections than the server has descriptors for: the rest wait in the backlog
    // and every accept fails with EMFILE until the header timeout frees some.
    let started = Instant::now();
    let idle: Vec<std::net::TcpStream> = (0..200)
        .map(|_| std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap())
        .collect();
    let agent = agent();
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(response) = agent.get(&server.url("/health")).call()
            && response.status() == 200
            && started.elapsed() > Duration::from_secs(3)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/health did not answer again:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let seconds = started.elapsed().as_secs_f64();
    let log = server.log_text();
    let failed = log.lines().filter(|l| l.contains("accept failed")).count();
    assert!(failed >= 1, "the descriptors never ran out:\n{log}");
    assert!(
        (failed as f64) <= seconds + 2.0,
        "{failed} accept failures logged in {seconds:.1} s:\n{log}"
    );
    drop(idle);
}

#[test]
fn an_unknown_key_in_the_config_file_stops_the_start_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[server]\nlisten = \"127.0.0.1:0\"\nlisten_port = 4000\n",
    )
    .unwrap();
    let mut cmd = medianest(dir.path());
    cmd.arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("serve");
    let out = run(cmd);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert_eq!(lines(&stderr).len(), 1, "one line: {stderr}");
    assert!(stderr.contains("server.listen_port"), "{stderr}");
    assert!(
        !dir.path().join("data").exists(),
        "nothing is created when the configuration is refused"
    );
}

#[test]
fn a_bad_environment_value_stops_the_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = medianest(dir.path());
    cmd.env("MEDIANEST_SERVER__LISTEN", "garbage")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("serve");
    let out = run(cmd);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert_eq!(lines(&stderr).len(), 1, "one line: {stderr}");
    assert!(stderr.contains("server.listen"), "{stderr}");
}

#[test]
fn migrate_then_backup_writes_a_sound_copy() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    let mut cmd = medianest(dir.path());
    cmd.arg("--data-dir").arg(&data).arg("migrate");
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(data.join("medianest.db").is_file());

    let copy = dir.path().join("backup.db");
    let mut cmd = medianest(dir.path());
    cmd.arg("--data-dir").arg(&data).arg("backup").arg(&copy);
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let conn = rusqlite::Connection::open(&copy).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, medianest::db::migrations::latest_version());
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'users'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1, "the copy has the schema");

    // A second backup to the same file is refused without --force.
    let mut cmd = medianest(dir.path());
    cmd.arg("--data-dir").arg(&data).arg("backup").arg(&copy);
    let out = run(cmd);
    assert!(!out.status.success());
}

#[test]
fn healthcheck_exits_zero_against_a_running_server_and_non_zero_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir, &[]);

    let mut cmd = medianest(dir.path());
    cmd.arg("healthcheck").arg("--url").arg(server.url(""));
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // Without --url: the configured listen address, as the container's HEALTHCHECK asks.
    let mut cmd = medianest(dir.path());
    cmd.env("MEDIANEST_SERVER__LISTEN", server.addr.to_string())
        .arg("healthcheck");
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let nobody = format!("http://127.0.0.1:{}", free_port());
    let mut cmd = medianest(dir.path());
    cmd.arg("healthcheck").arg("--url").arg(&nobody);
    let out = run(cmd);
    assert!(!out.status.success(), "{}", text(&out.stdout));
}

/// Under `server.base_path` the server says where it listens and where it is reached (its
/// `public_url`) with the base, answers only under
/// it, and `healthcheck` (with no `--url`, from the configuration, as a container's HEALTHCHECK
/// runs it) asks `<base>/health/ready`.
#[test]
fn under_a_base_path_healthcheck_asks_the_base_paths_health_ready() {
    let dir = tempfile::tempdir().unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let data_dir = dir.path().join("data");
    let env = [
        ("MEDIANEST_SERVER__LISTEN", addr.to_string()),
        ("MEDIANEST_SERVER__BASE_PATH", "/medianest".to_owned()),
        (
            "MEDIANEST_SERVER__PUBLIC_URL",
            "https://home.example/medianest".to_owned(),
        ),
    ];
    let mut cmd = medianest(dir.path());
    cmd.envs(env.clone())
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("serve");
    let server = Server::spawn(&dir, cmd, addr, data_dir.clone());
    let log = server.log_text();
    assert!(
        log.contains(&format!("listening on http://{addr}/medianest/")),
        "{log}"
    );
    assert!(
        log.contains("reached at https://home.example/medianest/"),
        "{log}"
    );
    let outside = agent().get(&server.url("/health/ready")).call().unwrap();
    assert_eq!(outside.status(), 404);

    let mut cmd = medianest(dir.path());
    cmd.envs(env.clone()).arg("healthcheck");
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // The same server checked as if it were at the root: not ready there.
    let mut cmd = medianest(dir.path());
    cmd.env("MEDIANEST_SERVER__LISTEN", addr.to_string())
        .arg("healthcheck");
    let out = run(cmd);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("404"), "{}", text(&out.stderr));
}

#[test]
fn sigterm_stops_the_server_with_exit_code_zero_and_a_checkpointed_wal() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&dir, &[]);
    let addr = server.addr;
    let status = server.terminate();
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        server.log_text()
    );
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "the port is closed"
    );
    let wal = server.data_dir.join("medianest.db-wal");
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_len, 0, "the WAL is checkpointed on the way out");
}

/// Every write the server acknowledged before a SIGKILL is there after the restart, and the
/// database is sound: WAL with `synchronous = NORMAL` is durable against a process crash.
///
/// The writes are sign-ins: each 200 carries a token whose session row was committed before the
/// answer was sent. Six clients sign in as fast as they can; once enough have been acknowledged
/// the server is killed mid-stream, restarted on the same data dir, and every acknowledged token
/// must still open its session.
#[test]
fn a_sigkill_under_concurrent_writes_loses_no_acknowledged_write() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    const PASSWORD: &str = "crash-test-password";
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("medianest.toml");
    std::fs::write(
        &config,
        format!(
            "[admin]\npassword = \"{PASSWORD}\"\n[limits]\nip_per_second = 100000\nip_burst = 100000\n"
        ),
    )
    .unwrap();
    let config_arg = config.to_string_lossy().into_owned();
    let mut server = Server::start(&dir, &["--config", &config_arg]);
    let login_url = server.url("/api/v1/auth/login");

    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let (url, acknowledged, stop) = (login_url.clone(), acknowledged.clone(), stop.clone());
            std::thread::spawn(move || {
                let agent = agent();
                let body =
                    serde_json::json!({ "username": "admin", "password": PASSWORD }).to_string();
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut response) = agent
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .send(&body)
                    else {
                        return; // the server is gone
                    };
                    if response.status() != 200 {
                        continue;
                    }
                    let Ok(json) = response
                        .body_mut()
                        .read_to_string()
                        .map(|t| serde_json::from_str::<serde_json::Value>(&t).unwrap_or_default())
                    else {
                        return; // cut off mid-answer: not acknowledged
                    };
                    if let Some(token) = json["data"]["token"].as_str() {
                        acknowledged.lock().unwrap().push(token.to_owned());
                    }
                }
            })
        })
        .collect();

    let deadline = Instant::now() + DEADLINE;
    while acknowledged.lock().unwrap().len() < 40 {
        assert!(
            Instant::now() < deadline,
            "too few sign-ins:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    server.kill_hard();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    drop(server);

    let tokens = acknowledged.lock().unwrap().clone();
    let server = Server::start(&dir, &["--config", &config_arg]);
    let agent = agent();
    for token in &tokens {
        let response = agent
            .get(&server.url("/api/v1/auth/session"))
            .header("Authorization", &format!("Bearer {token}"))
            .call()
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "an acknowledged session was lost ({} acknowledged)",
            tokens.len()
        );
    }
    let db = rusqlite::Connection::open_with_flags(
        server.data_dir.join("medianest.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let sessions: i64 = db
        .query_row("SELECT count(*) FROM session_tokens", [], |r| r.get(0))
        .unwrap();
    assert!(sessions >= tokens.len() as i64);
}

/// The status and the JSON body of an answer.
fn json_of(mut response: ureq::http::Response<ureq::Body>) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or_default())
}

/// `medianest demo`: ready on the given port with the printed admin password, the services up
/// against the simulators (with the Kuma monitors), the Plex PIN flow through the fake's consent
/// endpoint signs alice in and refuses mallory, and SIGTERM exits 0 and removes the temporary
/// data directory.
#[test]
fn demo_runs_against_simulated_upstreams_and_cleans_up_after_itself() {
    use medianest::demo::{ADMIN_PASSWORD, DATA_DIR_PREFIX};
    use serde_json::json;

    let dir = tempfile::tempdir().unwrap();
    // The demo's temporary data dir goes under $TMPDIR: here, so the test can see it go.
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let demo_dirs = || -> Vec<PathBuf> {
        std::fs::read_dir(&tmp)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(DATA_DIR_PREFIX))
            })
            .collect()
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut cmd = medianest(dir.path());
    cmd.env("TMPDIR", &tmp)
        .arg("demo")
        .arg("--listen")
        .arg(addr.to_string());
    let mut server = Server::spawn(&dir, cmd, addr, tmp.clone());

    let banner = server.log_text();
    assert!(banner.contains(&format!("http://{addr}")), "{banner}");
    assert!(
        banner.contains(&format!("admin / {ADMIN_PASSWORD}")),
        "{banner}"
    );
    let data_dirs = demo_dirs();
    assert_eq!(data_dirs.len(), 1, "one fresh data dir: {data_dirs:?}");
    assert!(data_dirs[0].join("medianest.db").is_file());
    assert!(
        banner.contains(&data_dirs[0].display().to_string()),
        "{banner}"
    );

    let agent = agent();
    let (status, login) = json_of(
        agent
            .post(&server.url("/api/v1/auth/login"))
            .header("Content-Type", "application/json")
            .send(json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string())
            .unwrap(),
    );
    assert_eq!(status, 200, "{login}");
    let admin = format!("Bearer {}", login["data"]["token"].as_str().unwrap());

    let (status, services) = json_of(
        agent
            .get(&server.url("/api/v1/services?refresh=true"))
            .header("Authorization", &admin)
            .call()
            .unwrap(),
    );
    assert_eq!(status, 200, "{services}");
    let list = services["data"].as_array().unwrap();
    let by_name = |field: &str, value: &str| {
        list.iter()
            .find(|s| s[field] == value)
            .unwrap_or_else(|| panic!("no {value} in {services}"))
            .clone()
    };
    for name in ["plex", "overseerr", "uptime_kuma"] {
        assert_eq!(by_name("name", name)["status"], "up", "{services}");
    }
    assert_eq!(by_name("displayName", "Router")["status"], "up");
    assert_eq!(by_name("displayName", "NAS")["status"], "up");
    assert_eq!(
        by_name("displayName", "Home Assistant")["status"],
        "degraded"
    );
    let flapping = by_name("displayName", "Pi-hole");
    assert!(
        flapping["status"] == "up" || flapping["status"] == "down",
        "{flapping}"
    );

    // The Plex PIN flow as a browser does it: the authUrl opens the fake plex.tv's consent
    // page, whose button posts the code from the URL fragment to /demo/approve.
    let sign_in_with_plex = |account_id: i64| {
        let response = agent
            .post(&server.url("/api/v1/auth/plex/pin"))
            .send_empty()
            .unwrap();
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("medianest_pin="))
            .and_then(|v| v.split(';').next())
            .expect("a PIN cookie")
            .to_owned();
        let (status, pin) = json_of(response);
        assert_eq!(status, 200, "{pin}");
        let auth_url = pin["data"]["authUrl"].as_str().unwrap();
        let (plex_tv, fragment) = auth_url.split_once("/auth#").expect("an app.plex.tv URL");
        assert!(
            banner.contains(plex_tv),
            "the authUrl leads to the fake plex.tv"
        );
        let code = pin["data"]["code"].as_str().unwrap();
        assert!(fragment.contains(&format!("code={code}")), "{auth_url}");

        let mut page = agent.get(&format!("{plex_tv}/auth")).call().unwrap();
        assert_eq!(page.status(), 200);
        let html = page.body_mut().read_to_string().unwrap();
        assert!(html.contains(">alice</button>"), "{html}");

        let (status, approved) = json_of(
            agent
                .post(&format!("{plex_tv}/demo/approve"))
                .header("Content-Type", "application/json")
                .send(json!({"code": code, "accountId": account_id}).to_string())
                .unwrap(),
        );
        assert_eq!(status, 200, "{approved}");
        let pin_id = pin["data"]["pinId"].as_str().unwrap();
        json_of(
            agent
                .post(&server.url(&format!("/api/v1/auth/plex/pin/{pin_id}/poll")))
                .header("Cookie", &format!("medianest_pin={cookie}"))
                .send_empty()
                .unwrap(),
        )
    };
    let (status, alice) = sign_in_with_plex(2);
    assert_eq!(status, 200, "{alice}");
    assert_eq!(alice["data"]["user"]["username"], "alice", "{alice}");
    let (status, session) = json_of(
        agent
            .get(&server.url("/api/v1/auth/session"))
            .header(
                "Authorization",
                &format!("Bearer {}", alice["data"]["token"].as_str().unwrap()),
            )
            .call()
            .unwrap(),
    );
    assert_eq!(status, 200, "{session}");

    // Users who sign up while the demo runs get its notification choices too.
    let db = rusqlite::Connection::open(data_dirs[0].join("medianest.db")).unwrap();
    let deadline = Instant::now() + DEADLINE;
    let alice_choices = loop {
        let enabled: Option<String> = rusqlite::OptionalExtension::optional(db.query_row(
            "SELECT p.enabled FROM notification_prefs p JOIN users u ON u.id = p.user_id
             WHERE u.username = 'alice'",
            [],
            |r| r.get(0),
        ))
        .unwrap();
        if let Some(enabled) = enabled {
            break serde_json::from_str::<serde_json::Value>(&enabled).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "alice got no notification choices"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(alice_choices, json!({"email": true, "ntfy": true}));

    // A request as alice's own Overseerr account, approved by the admin, then "downloaded":
    // the fake Overseerr's demo control fires its webhook and the request becomes available.
    let alice_auth = format!("Bearer {}", alice["data"]["token"].as_str().unwrap());
    let (status, made) = json_of(
        agent
            .post(&server.url("/api/v1/media/requests"))
            .header("Authorization", &alice_auth)
            .header("Content-Type", "application/json")
            .send(json!({"mediaType": "movie", "tmdbId": 603}).to_string())
            .unwrap(),
    );
    assert_eq!(status, 201, "{made}");
    let id = made["data"]["id"].as_str().unwrap();
    let oid = made["data"]["overseerrId"].as_i64().unwrap();
    let (status, approved) = json_of(
        agent
            .post(&server.url(&format!("/api/v1/admin/requests/{id}/approve")))
            .header("Authorization", &admin)
            .send_empty()
            .unwrap(),
    );
    assert_eq!(status, 200, "{approved}");
    let overseerr = banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("Seerr"))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the Seerr URL in the banner");
    let (status, fired) = json_of(
        agent
            .post(&format!("{overseerr}/demo/requests/{oid}/available"))
            .send_empty()
            .unwrap(),
    );
    assert_eq!(
        (status, fired["webhookStatus"].as_i64()),
        (200, Some(200)),
        "{fired}"
    );
    let (_, request) = json_of(
        agent
            .get(&server.url(&format!("/api/v1/media/requests/{id}")))
            .header("Authorization", &alice_auth)
            .call()
            .unwrap(),
    );
    assert_eq!(request["data"]["status"], "available", "{request}");

    let (status, mallory) = sign_in_with_plex(4);
    assert_eq!(status, 403, "{mallory}");
    assert_eq!(mallory["error"]["code"], "PLEX_SIGNUP_CLOSED", "{mallory}");

    // YouTube downloads go through the simulated yt-dlp into the data dir.
    let (status, created) = json_of(
        agent
            .post(&server.url("/api/v1/youtube/downloads"))
            .header("Content-Type", "application/json")
            .header("Authorization", &admin)
            .send(json!({"url": "https://youtu.be/dQw4w9WgXcQ"}).to_string())
            .unwrap(),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_str().unwrap();
    let deadline = Instant::now() + DEADLINE;
    let done = loop {
        let (_, d) = json_of(
            agent
                .get(&server.url(&format!("/api/v1/youtube/downloads/{id}")))
                .header("Authorization", &admin)
                .call()
                .unwrap(),
        );
        // Completed, then handed to the demo's Plex (a collection in its YouTube library).
        if d["data"]["status"] == "completed" && d["data"]["plexCollectionId"].is_string() {
            break d["data"].clone();
        }
        assert!(Instant::now() < deadline, "{d}\n{}", server.log_text());
        std::thread::sleep(Duration::from_millis(50));
    };
    let file = data_dirs[0]
        .join("downloads")
        .join(done["files"][0].as_str().unwrap());
    assert!(file.is_file(), "{}", file.display());

    let status = server.terminate();
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        server.log_text()
    );
    assert!(
        demo_dirs().is_empty(),
        "the temporary data dir is removed: {:?}",
        demo_dirs()
    );
}

/// Installs the simulated yt-dlp (this binary as `yt-dlp-sim`, pausing `step_ms` between
/// progress lines) in `<dir>/sim` and writes a configuration with the admin's `password`, that
/// yt-dlp and the download dir `downloads` (relative, as the default is: resolved against the
/// working directory). Returns the simulator's directory and the configuration's path.
fn with_simulated_ytdlp(dir: &TempDir, password: &str, step_ms: u64) -> (PathBuf, String) {
    let sim_dir = dir.path().join("sim");
    let sim = medianest::sim::ytdlp::install(&sim_dir, Path::new(BIN)).unwrap();
    std::fs::write(sim_dir.join("sim-step-ms"), step_ms.to_string()).unwrap();
    let config = dir.path().join("medianest.toml");
    std::fs::write(
        &config,
        format!(
            "[admin]\npassword = \"{password}\"\n[youtube]\nytdlp_path = \"{}\"\ndownload_dir = \"downloads\"\n",
            sim.display(),
        ),
    )
    .unwrap();
    (sim_dir, config.to_string_lossy().into_owned())
}

/// A YouTube download under way when the server is SIGKILLed: after the restart the row is
/// queued again (it was left `downloading`), yt-dlp resumes the partial file, and the playlist
/// completes with every file whole. yt-dlp is the simulator (this binary as `yt-dlp-sim`).
#[test]
fn a_download_interrupted_by_sigkill_resumes_and_completes_after_the_restart() {
    const PASSWORD: &str = "crash-test-password";
    let dir = tempfile::tempdir().unwrap();
    let (sim_dir, config_arg) = with_simulated_ytdlp(&dir, PASSWORD, 100);
    let downloads = dir.path().join("downloads");
    let mut server = Server::start(&dir, &["--config", &config_arg]);
    let agent = agent();
    let (_, login) = json_of(
        agent
            .post(&server.url("/api/v1/auth/login"))
            .header("Content-Type", "application/json")
            .send(serde_json::json!({"username": "admin", "password": PASSWORD}).to_string())
            .unwrap(),
    );
    let auth = format!("Bearer {}", login["data"]["token"].as_str().unwrap());
    let (status, created) = json_of(
        agent
            .post(&server.url("/api/v1/youtube/downloads"))
            .header("Content-Type", "application/json")
            .header("Authorization", &auth)
            .send(r#"{"url":"https://www.youtube.com/playlist?list=PLn4crash"}"#)
            .unwrap(),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    let download = |server: &Server| {
        json_of(
            agent
                .get(&server.url(&format!("/api/v1/youtube/downloads/{id}")))
                .header("Authorization", &auth)
                .call()
                .unwrap(),
        )
        .1["data"]
            .clone()
    };
    // Killed between two items, with the next one partly on disk.
    let deadline = Instant::now() + DEADLINE;
    while download(&server)["itemsDone"].as_i64() < Some(1) {
        assert!(
            Instant::now() < deadline,
            "no progress:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill_hard();
    drop(server);
    // The orphaned yt-dlp stops at its next line (its stdout is gone), as the real one does.
    let running = sim_dir.join("sim-state/running");
    let deadline = Instant::now() + DEADLINE;
    while std::fs::read_dir(&running).unwrap().next().is_some() {
        assert!(
            Instant::now() < deadline,
            "the orphaned yt-dlp kept running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let server = Server::start(&dir, &["--config", &config_arg]);
    let deadline = Instant::now() + DEADLINE;
    let done = loop {
        let d = download(&server);
        if d["status"] == "completed" {
            break d;
        }
        assert_ne!(d["status"], "failed", "{d}");
        assert!(
            Instant::now() < deadline,
            "not completed: {d}\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(done["itemsDone"], 4);
    let files = done["files"].as_array().unwrap();
    assert_eq!(files.len(), 4);
    for f in files {
        let path = downloads.join(f.as_str().unwrap());
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            64 * 1024,
            "{}",
            path.display()
        );
    }
    let runs = std::fs::read_to_string(sim_dir.join("sim-state/runs.log")).unwrap();
    assert_eq!(runs.lines().count(), 2, "{runs}");
}

/// The break-glass `medianest reset-admin-password`, run while the server is up and the admin's
/// username and address are locked out by failed sign-ins: the new password signs in at once
/// (the lockouts are cleared), and a session of the old password is refused within a couple of seconds (the
/// running server drops its session cache, which would otherwise honour it for up to 60 s).
#[test]
fn reset_admin_password_clears_the_lockout_and_the_running_server_drops_old_sessions() {
    const FIRST_PASSWORD: &str = "the first admin password";
    let dir = tempfile::tempdir().unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let data_dir = dir.path().join("data");
    let mut cmd = medianest(dir.path());
    cmd.env("MEDIANEST_ADMIN_PASSWORD", FIRST_PASSWORD)
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--listen")
        .arg(addr.to_string())
        .arg("serve");
    let server = Server::spawn(&dir, cmd, addr, data_dir.clone());
    let agent = agent();
    let login = |password: &str| {
        json_of(
            agent
                .post(&server.url("/api/v1/auth/login"))
                .header("Content-Type", "application/json")
                .send(serde_json::json!({"username": "admin", "password": password}).to_string())
                .unwrap(),
        )
    };
    let (status, body) = login(FIRST_PASSWORD);
    assert_eq!(status, 200, "{body}");
    let bearer = format!("Bearer {}", body["data"]["token"].as_str().unwrap());
    let session = || {
        agent
            .get(&server.url("/api/v1/auth/session"))
            .header("Authorization", &bearer)
            .call()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(session(), 200, "the session is valid (and now cached)");
    for _ in 0..5 {
        assert_eq!(login("not the password").0, 401);
    }
    assert_eq!(login(FIRST_PASSWORD).0, 429, "locked out");
    // And the address too (login_failures_per_ip, counted in the server's memory): the reset
    // must let the admin in even from an address an attacker shares.
    for i in 0..15 {
        let (status, body) = json_of(
            agent
                .post(&server.url("/api/v1/auth/login"))
                .header("Content-Type", "application/json")
                .send(
                    serde_json::json!({"username": format!("guess{i}"), "password": "nope"})
                        .to_string(),
                )
                .unwrap(),
        );
        assert_eq!(status, 401, "{body}");
    }
    let (status, body) = login(FIRST_PASSWORD);
    assert_eq!(status, 429, "{body}");

    let mut cmd = medianest(dir.path());
    cmd.arg("--data-dir")
        .arg(&data_dir)
        .arg("reset-admin-password");
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let new_password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("New password for admin: "))
        .unwrap_or_else(|| panic!("no new password in {stdout:?}"))
        .trim()
        .to_owned();

    let reset_at = Instant::now();
    loop {
        if session() == 401 {
            break;
        }
        assert!(
            reset_at.elapsed() < Duration::from_secs(3),
            "the old session still works 3 s after the reset:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, body) = login(&new_password);
    assert_eq!(status, 200, "the new password signs in: {body}");
    assert_eq!(body["data"]["user"]["username"], "admin");
}

/// At `log.level = trace` the binary logs its own calls to Plex, but the HTTP client's targets
/// stay at `info`: no request dump, so the `X-Plex-Token` it sends never reaches the log.
#[test]
fn trace_logging_never_writes_the_plex_token() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let plex = runtime
        .block_on(medianest::sim::plex::FakePlexServer::start())
        .unwrap();
    let token = "trace-token-4f9c2d7e1b";
    plex.set_token(token);
    let dir = tempfile::tempdir().unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let data_dir = dir.path().join("data");
    let mut cmd = medianest(dir.path());
    cmd.env("MEDIANEST_SERVICES__PLEX__URL", plex.url())
        .env("MEDIANEST_SERVICES__PLEX__API_KEY", token)
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--log-level")
        .arg("trace")
        .arg("serve");
    let server = Server::spawn(&dir, cmd, addr, data_dir);
    // The first health check calls Plex with the token; our own debug line follows its answer.
    let deadline = Instant::now() + DEADLINE;
    while !server.log_text().contains("upstream answered") {
        assert!(
            Instant::now() < deadline,
            "no Plex call logged:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(plex.requests("GET /identity") >= 1);
    let log = server.log_text();
    assert!(log.contains("TRACE") || log.contains("DEBUG"), "{log}");
    assert!(!log.contains(token), "the token is in the log:\n{log}");
    for line in log.lines() {
        let client = line.contains(" ureq") || line.contains(" rustls");
        let verbose = line.contains("DEBUG") || line.contains("TRACE");
        assert!(
            !(client && verbose),
            "HTTP client output below info: {line}"
        );
    }
}

/// A folder of stand-in programs, each a shell script that prints its text (no single quotes)
/// and exits 0.
fn fake_programs(dir: &Path, programs: &[(&str, &str)]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, output) in programs {
        let path = bin.join(name);
        // printf is built into sh: the scripts need nothing on PATH.
        let lines: Vec<String> = output.lines().map(|l| format!("'{l}'")).collect();
        let script = format!("#!/bin/sh\nprintf '%s\\n' {}\n", lines.join(" "));
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

/// deno and ffmpeg as their `--version` / `-version` first lines read (deno 2.5, ffmpeg 7.1).
const DENO_AND_FFMPEG: [(&str, &str); 2] = [
    (
        "deno",
        "deno 2.5.4 (stable, release, x86_64-unknown-linux-gnu)\nv8 14.0.365.5-rusty\ntypescript 5.9.2",
    ),
    (
        "ffmpeg",
        "ffmpeg version 7.1.1 Copyright (c) 2000-2025 the FFmpeg developers",
    ),
];

/// `medianest doctor --config FILE` with only `bin` on PATH.
fn doctor(dir: &Path, config: &Path, bin: &Path) -> (Option<i32>, String, String) {
    let mut cmd = medianest(dir);
    cmd.env("PATH", bin)
        .arg("doctor")
        .arg("--config")
        .arg(config);
    let output = run(cmd);
    (
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr),
    )
}

/// The line of check `name` and the line after it (its fix, when it has one).
fn check_line<'a>(report: &'a str, name: &str) -> (&'a str, &'a str) {
    let all: Vec<&str> = report.lines().collect();
    let at = all
        .iter()
        .position(|l| {
            l.get(6..)
                .is_some_and(|rest| rest.starts_with(&format!("{name} ")))
        })
        .unwrap_or_else(|| panic!("no {name} line in:\n{report}"));
    (all[at], all.get(at + 1).copied().unwrap_or_default())
}

#[test]
fn doctor_passes_against_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut cmd = medianest(dir.path());
    cmd.env("TMPDIR", &tmp)
        .arg("demo")
        .arg("--listen")
        .arg(addr.to_string());
    let server = Server::spawn(&dir, cmd, addr, tmp.clone());
    let banner = server.log_text();
    let config = banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("Doctor"))
        .and_then(|l| l.trim().strip_prefix("medianest doctor --config "))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no doctor line in the banner:\n{banner}"));
    let bin = fake_programs(dir.path(), &DENO_AND_FFMPEG);

    let (code, report, stderr) = doctor(dir.path(), &config, &bin);
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    for name in [
        "yt-dlp",
        "JavaScript runtime",
        "ffmpeg",
        "download dir",
        "data dir",
        "service settings",
        "Plex",
        "Plex library folders",
        "Seerr",
        "webhook secret",
        "Uptime Kuma",
    ] {
        let (line, next) = check_line(&report, name);
        assert!(line.starts_with("ok    "), "{line}\n{report}");
        assert!(!next.trim_start().starts_with("fix:"), "{report}");
    }
    assert!(
        check_line(&report, "yt-dlp").0.contains("(0 days old)"),
        "{report}"
    );
    assert!(
        check_line(&report, "JavaScript runtime")
            .0
            .contains("deno 2.5.4"),
        "{report}"
    );
    assert!(
        check_line(&report, "Uptime Kuma").0.contains("\"home\""),
        "{report}"
    );
    assert!(
        report.contains("0 failures, 0 warnings, 11 passed, 1 skipped"),
        "{report}"
    );
    // Nothing left behind: the write probe is gone (the demo's subscription has its folder).
    let downloads = config.parent().unwrap().join("downloads");
    let left: Vec<_> = std::fs::read_dir(&downloads)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "subscriptions" && n != ".plexignore")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn doctor_fails_a_broken_setup_with_a_fix_for_each_failure() {
    use medianest::sim::overseerr::FakeOverseerr;
    use medianest::sim::uptime_kuma::{FakeUptimeKuma, KumaVersion};

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (seerr, kuma) = runtime.block_on(async {
        (
            FakeOverseerr::start().await.unwrap(),
            FakeUptimeKuma::start("home", KumaVersion::V1_23)
                .await
                .unwrap(),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("medianest.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\n\
             [youtube]\nytdlp_path = {ytdlp:?}\n\
             [webhooks]\noverseerr_secret = \"a-long-enough-webhook-secret\"\n\
             [services.overseerr]\nurl = {seerr:?}\napi_key = \"not-the-seerr-key\"\n\
             [services.uptime_kuma]\nurl = {kuma:?}\nslug = \"no-such-page\"\n",
            data = dir.path().join("data"),
            ytdlp = dir.path().join("missing/yt-dlp"),
            seerr = seerr.url(),
            kuma = kuma.url(),
        ),
    )
    .unwrap();
    let bin = fake_programs(dir.path(), &DENO_AND_FFMPEG);

    let (code, report, stderr) = doctor(dir.path(), &config, &bin);
    assert_eq!(code, Some(1), "{report}\n{stderr}");
    let (line, fix) = check_line(&report, "yt-dlp");
    assert!(
        line.starts_with("FAIL  ") && line.contains("does not exist"),
        "{report}"
    );
    assert!(
        fix.contains("fix: install yt-dlp") && fix.contains("yt-dlp[default]"),
        "{report}"
    );
    let (line, fix) = check_line(&report, "Seerr");
    assert!(
        line.starts_with("FAIL  ") && line.contains("refused the API key"),
        "{report}"
    );
    assert!(fix.contains("fix: copy the API key from Seerr"), "{report}");
    // Kuma 2.x answers an unknown slug 404, 1.23 not at all: either way the slug is named.
    let (line, fix) = check_line(&report, "Uptime Kuma");
    assert!(
        line.starts_with("FAIL  ") && line.contains("\"no-such-page\""),
        "{report}"
    );
    assert!(
        fix.contains("fix: set the slug of an existing status page"),
        "{report}"
    );
    // The rest stands: the services were read from the configuration (no database yet).
    for name in [
        "JavaScript runtime",
        "ffmpeg",
        "download dir",
        "webhook secret",
    ] {
        assert!(
            check_line(&report, name).0.starts_with("ok    "),
            "{report}"
        );
    }
    assert!(
        check_line(&report, "Plex").0.starts_with("skip  "),
        "{report}"
    );
    assert!(report.contains("3 failures"), "{report}");
    assert!(
        !dir.path().join("data").exists(),
        "the doctor creates nothing"
    );
}

#[test]
fn doctor_warns_about_an_ageing_yt_dlp_and_fails_an_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let today = time::OffsetDateTime::now_utc().date();
    let version = |days: i64| {
        let d = today - time::Duration::days(days);
        format!("{:04}.{:02}.{:02}", d.year(), u8::from(d.month()), d.day())
    };
    for (days, code, status) in [(70, 0, "warn"), (120, 1, "FAIL")] {
        let sub = dir.path().join(format!("age-{days}"));
        std::fs::create_dir(&sub).unwrap();
        let ytdlp = version(days);
        let mut programs = DENO_AND_FFMPEG.to_vec();
        programs.push(("yt-dlp", ytdlp.as_str()));
        let bin = fake_programs(&sub, &programs);
        let config = sub.join("medianest.toml");
        std::fs::write(&config, format!("data_dir = {:?}\n", sub.join("data"))).unwrap();

        let (exit, report, stderr) = doctor(&sub, &config, &bin);
        assert_eq!(exit, Some(code), "{report}\n{stderr}");
        let (line, fix) = check_line(&report, "yt-dlp");
        assert!(line.starts_with(status), "{report}");
        assert!(line.contains(&format!("{ytdlp} at ")), "{report}");
        assert!(line.contains(&format!("({days} days old)")), "{report}");
        assert!(fix.contains("fix: update yt-dlp"), "{report}");
    }
}

/// A data dir on a network filesystem stops `serve` and `migrate` before anything is written,
/// saying why and naming the override; with `database.allow_network_fs` they go on, and the
/// doctor's data dir check turns from a failure into a warning. NFS cannot be mounted here, so
/// the debug build's test-only `TEST_MEDIANEST_FS_KIND` stands in for the `statfs` probe (the
/// probe itself and the decision for each kind are unit tests in `platform::fs`).
#[test]
fn a_data_dir_on_a_network_filesystem_stops_the_start_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for command in ["serve", "migrate"] {
        let mut cmd = medianest(dir.path());
        cmd.env("TEST_MEDIANEST_FS_KIND", "nfs")
            .env(
                "MEDIANEST_SERVER__LISTEN",
                format!("127.0.0.1:{}", free_port()),
            )
            .arg("--data-dir")
            .arg(&data)
            .arg(command);
        let out = run(cmd);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        assert!(
            stderr.contains("is on NFS, a network filesystem")
                && stderr.contains("write-ahead log")
                && stderr.contains("database.allow_network_fs = true"),
            "{command}: {stderr}"
        );
        assert!(!data.exists(), "{command} created the data dir");
    }

    let config = dir.path().join("medianest.toml");
    std::fs::write(
        &config,
        format!("data_dir = {:?}\n", data.to_str().unwrap()),
    )
    .unwrap();
    let bin = fake_programs(dir.path(), &[]);
    let mut cmd = medianest(dir.path());
    cmd.env("TEST_MEDIANEST_FS_KIND", "nfs").env("PATH", &bin);
    cmd.args(["doctor", "--config", config.to_str().unwrap()]);
    let report = text(&run(cmd).stdout);
    assert!(
        check_line(&report, "data dir").0.contains("FAIL"),
        "{report}"
    );

    let mut cmd = medianest(dir.path());
    cmd.env("TEST_MEDIANEST_FS_KIND", "nfs")
        .env("MEDIANEST_DATABASE__ALLOW_NETWORK_FS", "true")
        .arg("--data-dir")
        .arg(&data)
        .arg("migrate");
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("starting anyway because database.allow_network_fs = true"),
        "{}",
        text(&out.stderr)
    );
    assert!(data.join("medianest.db").is_file());

    let mut cmd = medianest(dir.path());
    cmd.env("TEST_MEDIANEST_FS_KIND", "nfs")
        .env("MEDIANEST_DATABASE__ALLOW_NETWORK_FS", "true")
        .env("PATH", &bin);
    cmd.args(["doctor", "--config", config.to_str().unwrap()]);
    let report = text(&run(cmd).stdout);
    let (line, _) = check_line(&report, "data dir");
    assert!(
        line.starts_with("warn") && line.contains("allow_network_fs"),
        "{report}"
    );

    // FUSE (mergerfs is local) only warns.
    let mut cmd = medianest(dir.path());
    cmd.env("TEST_MEDIANEST_FS_KIND", "fuse")
        .arg("--data-dir")
        .arg(&data)
        .arg("migrate");
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("FUSE"), "{}", text(&out.stderr));
}

/// Litestream keeps a read transaction open on the database and runs the checkpoints itself. A
/// reader standing in for it makes the default `wal_checkpoint(TRUNCATE)` on the way out give up
/// (said in the log); with `database.checkpoint_on_exit = false` the server leaves the WAL alone.
#[test]
fn checkpoint_on_exit_false_leaves_the_wal_to_a_replicating_reader() {
    for checkpoint in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let data_dir = dir.path().join("data");
        let mut cmd = medianest(dir.path());
        cmd.env(
            "MEDIANEST_DATABASE__CHECKPOINT_ON_EXIT",
            checkpoint.to_string(),
        )
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--listen")
        .arg(addr.to_string())
        .arg("serve");
        let mut server = Server::spawn(&dir, cmd, addr, data_dir.clone());

        let reader = rusqlite::Connection::open(data_dir.join("medianest.db")).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        let status = server.terminate();
        assert!(status.success(), "{status}:\n{}", server.log_text());
        let gave_up = server
            .log_text()
            .contains("WAL checkpoint could not complete");
        assert_eq!(gave_up, checkpoint, "{}", server.log_text());
        reader.execute_batch("COMMIT").unwrap();
    }
}

/// The `medianest` service's environment in `packaging/compose.yaml` (its `${VAR:?...}` and
/// `${VAR:-}` references filled in as compose would from `.env`).
fn compose_environment(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    let compose = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/compose.yaml"),
    )
    .unwrap();
    let mut lines = compose
        .lines()
        .skip_while(|l| *l != "  medianest:")
        .skip_while(|l| *l != "    environment:")
        .skip(1);
    let mut env = Vec::new();
    for line in lines.by_ref() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') {
            continue;
        }
        if !line.starts_with("      ") {
            break;
        }
        let (key, value) = trimmed.split_once(": ").unwrap();
        let value = match value.strip_prefix("${") {
            Some(reference) => {
                let name = reference.split([':', '}']).next().unwrap();
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map_or("", |(_, v)| v)
                    .to_owned()
            }
            None => value.to_owned(),
        };
        env.push((key.to_owned(), value));
    }
    assert!(
        env.len() > 5,
        "no environment found for medianest in compose.yaml"
    );
    env
}

/// `packaging/compose.yaml` configures a real server: every `MEDIANEST_*` name in it is a key
/// (an unknown one would stop the start), the admin password and webhook secret take effect, and
/// the service connections point at the other services by their compose names.
#[test]
fn the_compose_files_environment_starts_a_server_wired_to_the_other_services() {
    const PASSWORD: &str = "compose admin password";
    const SECRET: &str = "compose-webhook-secret-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let data_dir = dir.path().join("data");
    let mut cmd = medianest(dir.path());
    for (key, value) in compose_environment(&[
        ("MEDIANEST_ADMIN_PASSWORD", PASSWORD),
        ("WEBHOOK_SECRET", SECRET),
    ]) {
        let value = match key.as_str() {
            // The container's folder, here a temporary one.
            "MEDIANEST_YOUTUBE__DOWNLOAD_DIR" => {
                assert_eq!(value, "/youtube");
                dir.path().join("youtube").to_string_lossy().into_owned()
            }
            _ => value,
        };
        cmd.env(key, value);
    }
    cmd.env("MEDIANEST_DATA_DIR", &data_dir)
        .env("MEDIANEST_SERVER__LISTEN", addr.to_string())
        .arg("serve");
    let server = Server::spawn(&dir, cmd, addr, data_dir);

    let agent = agent();
    let (status, login) = json_of(
        agent
            .post(&server.url("/api/v1/auth/login"))
            .header("Content-Type", "application/json")
            .send(serde_json::json!({"username": "admin", "password": PASSWORD}).to_string())
            .unwrap(),
    );
    assert_eq!(status, 200, "{login}");
    let auth = format!("Bearer {}", login["data"]["token"].as_str().unwrap());
    let (status, services) = json_of(
        agent
            .get(&server.url("/api/v1/admin/services"))
            .header("Authorization", &auth)
            .call()
            .unwrap(),
    );
    assert_eq!(status, 200, "{services}");
    let services = services.to_string();
    for url in [
        "http://plex:32400",
        "http://seerr:5055",
        "http://uptime-kuma:3001",
    ] {
        assert!(services.contains(url), "{url} not in {services}");
    }
    let webhook = |secret: &str| {
        agent
            .post(&server.url("/api/v1/webhooks/seerr"))
            .header("Content-Type", "application/json")
            .header("Authorization", secret)
            .send(r#"{"notification_type":"TEST_NOTIFICATION"}"#)
            .unwrap()
            .status()
            .as_u16()
    };
    assert!((200..300).contains(&webhook(SECRET)));
    assert_eq!(webhook("not-the-secret"), 401);
}

// ---------------------------------------------------------------------------------------------
// Backups and restore

/// Adds a row naming `label` to the database at `db` (with SQLite, beside a running server or not).
fn write_marker(db: &Path, label: &str) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.execute(
        "INSERT INTO error_logs (correlation_id, error_code, error_message, created_at)
         VALUES (?1, 'INTERNAL_ERROR', 'marker', 0)",
        [label],
    )
    .unwrap();
}

/// The marker rows of the database at `db`, in order.
fn markers(db: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT correlation_id FROM error_logs WHERE error_message = 'marker' ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// `medianest --data-dir DATA restore FILE [--dry-run]`.
fn restore_cmd(dir: &TempDir, data: &Path, file: &Path, dry_run: bool) -> Output {
    let mut cmd = medianest(dir.path());
    cmd.arg("--data-dir").arg(data).arg("restore").arg(file);
    if dry_run {
        cmd.arg("--dry-run");
    }
    run(cmd)
}

/// The names in `dir` that start with `prefix`.
fn names_starting(dir: &Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
}

/// Write, back up, write more, restore (refused while the server runs, then a dry run that
/// changes nothing, then for real), and the first state is back, the later one kept aside.
/// Also: a second server on the same data dir is refused, naming the first one's PID.
#[test]
fn restore_round_trip_through_the_binary_and_refused_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&dir, &[]);
    let data = server.data_dir.clone();
    let db = data.join("medianest.db");
    let pid = server.child.id();
    let lock = std::fs::read_to_string(data.join("medianest.lock")).unwrap();
    assert_eq!(lock.trim(), pid.to_string());

    // A second server on the same data dir is refused with a clear message.
    let mut second = medianest(dir.path());
    second
        .arg("--data-dir")
        .arg(&data)
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("serve");
    let out = run(second);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("in use by a running MediaNest") && err.contains(&format!("process {pid}")),
        "{err}"
    );

    write_marker(&db, "first");
    let backup = dir.path().join("first.db");
    let mut cmd = medianest(dir.path());
    cmd.arg("--data-dir").arg(&data).arg("backup").arg(&backup);
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    write_marker(&db, "second");

    // Refused while the server runs; nothing changes.
    let out = restore_cmd(&dir, &data, &backup, false);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("restore refused") && err.contains(&format!("process {pid}")),
        "{err}"
    );
    assert_eq!(markers(&db), ["first", "second"]);
    assert!(names_starting(&data, "medianest.db.before-restore").is_empty());

    assert!(server.terminate().success(), "{}", server.log_text());

    // A dry run says what would happen and changes nothing.
    let before = std::fs::read(&db).unwrap();
    let out = restore_cmd(&dir, &data, &backup, true);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("would move") && said.contains("nothing was changed"),
        "{said}"
    );
    assert_eq!(std::fs::read(&db).unwrap(), before);
    assert!(names_starting(&data, "medianest.db.before-restore").is_empty());

    let out = restore_cmd(&dir, &data, &backup, false);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(markers(&db), ["first"]);
    let aside = names_starting(&data, "medianest.db.before-restore");
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(markers(&data.join(&aside[0])), ["first", "second"]);
    assert!(names_starting(&data, ".medianest.db.restore").is_empty());

    // The restored database serves. A server that crashes leaves its lock file with its PID,
    // which no longer holds anything: the next restore goes ahead.
    let mut server = Server::start(&dir, &[]);
    let crashed = server.child.id();
    server.kill_hard();
    let lock = std::fs::read_to_string(data.join("medianest.lock")).unwrap();
    assert_eq!(lock.trim(), crashed.to_string());
    let out = restore_cmd(&dir, &data, &backup, true);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(markers(&db), ["first"]);
}

/// A file that is not a sound database, and a backup with a newer schema than this build, are
/// refused with a clear message; the database is left alone.
#[test]
fn restore_refuses_a_broken_file_and_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut cmd = medianest(dir.path());
    cmd.arg("--data-dir").arg(&data).arg("migrate");
    assert!(run(cmd).status.success());
    let db = data.join("medianest.db");
    write_marker(&db, "live");

    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"not a database at all, just some bytes".repeat(200)).unwrap();
    let out = restore_cmd(&dir, &data, &junk, false);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("cannot be restored"), "{err}");

    let newer = dir.path().join("newer.db");
    let mut cmd = medianest(dir.path());
    cmd.arg("--data-dir").arg(&data).arg("backup").arg(&newer);
    assert!(run(cmd).status.success());
    let latest = medianest::db::migrations::latest_version();
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute_batch(&format!("PRAGMA user_version = {};", latest + 1))
        .unwrap();
    for dry_run in [true, false] {
        let out = restore_cmd(&dir, &data, &newer, dry_run);
        assert_eq!(out.status.code(), Some(1));
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!("schema version {}", latest + 1))
                && err.contains(&format!("newer than this MediaNest's {latest}")),
            "{err}"
        );
    }
    assert_eq!(markers(&db), ["live"]);
    assert!(names_starting(&data, "medianest.db.before-restore").is_empty());
}

/// A database at an older schema version (the first migrations only): `migrate` backs it up
/// before migrating; the backup holds the old version and the data; the next start that needs no
/// migration removes it.
#[test]
fn a_migration_is_preceded_by_a_backup_that_the_next_start_removes() {
    use medianest::db::migrations::{MIGRATIONS, latest_version};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("medianest.db");
    let old = latest_version() - 1;
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        // WAL, as a server leaves it.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        for (version, _, sql) in MIGRATIONS.iter().filter(|m| m.0 <= old) {
            conn.execute_batch(sql).unwrap();
            conn.execute_batch(&format!("PRAGMA user_version = {version};"))
                .unwrap();
        }
    }
    write_marker(&db, "old");

    let mut cmd = medianest(dir.path());
    cmd.arg("--data-dir").arg(&data).arg("migrate");
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let backups = data.join("backups");
    let pre = names_starting(&backups, &format!("pre-migration-v{old}-"));
    assert_eq!(pre.len(), 1, "{pre:?}");
    assert!(text(&out.stdout).contains(&pre[0]), "{}", text(&out.stdout));
    let copy = backups.join(&pre[0]);
    assert_eq!(medianest::db::check_file(&copy), Ok(old));
    assert_eq!(markers(&copy), ["old"]);
    assert_eq!(medianest::db::check_file(&db), Ok(latest_version()));

    // Current schema: this start migrates nothing and the pre-migration backup goes.
    let server = Server::start(&dir, &[]);
    drop(server);
    assert!(names_starting(&backups, "pre-migration-").is_empty());
    assert_eq!(markers(&db), ["old"]);
}

/// A backup written under another secret key is refused (the server could not start on it) until
/// that key is in place.
#[test]
fn restore_refuses_a_backup_of_another_secret_key_until_that_key_is_in_place() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut server = Server::start(&a, &[]);
    assert!(server.terminate().success());
    let backup = a.path().join("a.db");
    let mut cmd = medianest(a.path());
    cmd.arg("--data-dir")
        .arg(a.path().join("data"))
        .arg("backup")
        .arg(&backup);
    assert!(run(cmd).status.success());
    let mut server = Server::start(&b, &[]);
    assert!(server.terminate().success());
    let data = b.path().join("data");

    let out = restore_cmd(&b, &data, &backup, false);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("another secret key"), "{err}");
    assert!(names_starting(&data, "medianest.db.before-restore").is_empty());

    std::fs::copy(a.path().join("data/secret.key"), data.join("secret.key")).unwrap();
    let out = restore_cmd(&b, &data, &backup, false);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let server = Server::start(&b, &[]);
    drop(server);
}

/// Restoring onto a new machine: the data dir is created (owner only), the backup put in place,
/// and the output says to bring the backup's secret.key.
#[test]
fn restore_into_a_new_data_dir_creates_it_and_asks_for_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut cmd = medianest(dir.path());
    cmd.arg("--data-dir").arg(&data).arg("migrate");
    assert!(run(cmd).status.success());
    write_marker(&data.join("medianest.db"), "kept");
    let backup = dir.path().join("b.db");
    let mut cmd = medianest(dir.path());
    cmd.arg("--data-dir").arg(&data).arg("backup").arg(&backup);
    assert!(run(cmd).status.success());

    let fresh = dir.path().join("new-machine/data");
    let out = restore_cmd(&dir, &fresh, &backup, true);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!fresh.exists(), "a dry run creates nothing");
    let out = restore_cmd(&dir, &fresh, &backup, false);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("put the secret.key that belongs to this backup"),
        "{said}"
    );
    assert_eq!(markers(&fresh.join("medianest.db")), ["kept"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{:o}", mode & 0o777);
    }
}

/// Run as root into a data dir that belongs to the service user, the restored database, the
/// lock file and a pre-migration backup go to that user (skipped when the tests do not run as
/// root: only root may give files away).
#[cfg(unix)]
#[test]
fn restore_as_root_gives_the_database_to_the_data_dirs_owner() {
    use medianest::db::migrations::{MIGRATIONS, latest_version};
    use std::os::unix::fs::MetadataExt;
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: not root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (uid, gid) = (4321, 4322);
    std::os::unix::fs::chown(&data, Some(uid), Some(gid)).unwrap();
    // A backup at an older schema: the restore puts it in place, `migrate` backs it up first.
    let backup = dir.path().join("b.db");
    {
        let conn = rusqlite::Connection::open(&backup).unwrap();
        for (version, _, sql) in MIGRATIONS.iter().filter(|m| m.0 < latest_version()) {
            conn.execute_batch(sql).unwrap();
            conn.execute_batch(&format!("PRAGMA user_version = {version};"))
                .unwrap();
        }
    }

    let out = restore_cmd(&dir, &data, &backup, false);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut cmd = medianest(dir.path());
    cmd.arg("--data-dir").arg(&data).arg("migrate");
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pre = names_starting(&data.join("backups"), "pre-migration-");
    assert_eq!(pre.len(), 1, "{pre:?}");
    for name in [
        "medianest.db".to_owned(),
        "medianest.lock".to_owned(),
        "backups".to_owned(),
        format!("backups/{}", pre[0]),
    ] {
        let meta = std::fs::metadata(data.join(&name)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (uid, gid), "{name}");
    }
}

/// `medianest demo` sets up its notification sinks: the email and ntfy channels read back as
/// enabled and pointing at the sinks the banner names, every user has email and ntfy turned on,
/// and the admin's test sends reach the sinks and show in their read views (the mail inbox's
/// JSON and HTML, ntfy's polling read).
#[test]
fn the_demo_routes_email_and_ntfy_to_local_sinks_whose_read_views_show_what_arrived() {
    use medianest::demo::{ADMIN_PASSWORD, DATA_DIR_PREFIX, EMAIL_FROM};
    use serde_json::json;

    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut cmd = medianest(dir.path());
    cmd.env("TMPDIR", &tmp)
        .arg("demo")
        .arg("--listen")
        .arg(addr.to_string());
    let server = Server::spawn(&dir, cmd, addr, tmp.clone());
    let banner = server.log_text();
    let field = |name: &str| -> String {
        banner
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no {name} in the banner:\n{banner}"))
            .to_owned()
    };
    let smtp: SocketAddr = field("SMTP sink").parse().unwrap();
    let inbox = field("Mail inbox");
    let inbox = inbox.trim_end_matches('/');
    let ntfy = field("ntfy");
    assert!(
        banner.contains(&format!("{inbox}/messages")),
        "the JSON view is named: {banner}"
    );

    let agent = agent();
    let (status, login) = json_of(
        agent
            .post(&server.url("/api/v1/auth/login"))
            .header("Content-Type", "application/json")
            .send(json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string())
            .unwrap(),
    );
    assert_eq!(status, 200, "{login}");
    let admin = format!("Bearer {}", login["data"]["token"].as_str().unwrap());
    let get = |path: &str| {
        json_of(
            agent
                .get(&server.url(path))
                .header("Authorization", &admin)
                .call()
                .unwrap(),
        )
    };
    let post = |path: &str, body: serde_json::Value| {
        json_of(
            agent
                .post(&server.url(path))
                .header("Authorization", &admin)
                .header("Content-Type", "application/json")
                .send(body.to_string())
                .unwrap(),
        )
    };

    let (status, email) = get("/api/v1/admin/notifications/channels/email");
    assert_eq!(status, 200, "{email}");
    let email = &email["data"];
    assert_eq!(email["enabled"], true, "{email}");
    assert_eq!(email["host"], smtp.ip().to_string(), "{email}");
    assert_eq!(email["port"], smtp.port(), "{email}");
    assert_eq!(email["security"], "none", "{email}");
    assert_eq!(email["from"], EMAIL_FROM, "{email}");
    let (status, channel) = get("/api/v1/admin/notifications/channels/ntfy");
    assert_eq!(status, 200, "{channel}");
    assert_eq!(channel["data"]["enabled"], true, "{channel}");
    assert_eq!(channel["data"]["url"], ntfy.as_str(), "{channel}");

    // Every user has the demo's choices: email and ntfy on (the targets are encrypted).
    let data_dir = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(DATA_DIR_PREFIX))
        })
        .unwrap();
    let db = rusqlite::Connection::open(data_dir.join("medianest.db")).unwrap();
    let enabled: String = db
        .query_row(
            "SELECT p.enabled FROM notification_prefs p JOIN users u ON u.id = p.user_id
             WHERE u.username = 'admin'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&enabled).unwrap(),
        json!({"email": true, "ntfy": true})
    );

    let (status, sent) = post(
        "/api/v1/admin/notifications/channels/email/test",
        json!({"to": "alice@example.com"}),
    );
    assert_eq!(
        (status, &sent["data"]),
        (200, &json!({"delivered": true})),
        "{sent}"
    );
    let (status, messages) = json_of(agent.get(&format!("{inbox}/messages")).call().unwrap());
    assert_eq!(status, 200, "{messages}");
    let list = messages["messages"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{messages}");
    assert_eq!(list[0]["to"], json!(["alice@example.com"]), "{messages}");
    assert_eq!(
        list[0]["subject"], "MediaNest test notification",
        "{messages}"
    );
    assert_eq!(list[0]["from"], "medianest@example.com", "{messages}");
    let mut page = agent.get(&format!("{inbox}/")).call().unwrap();
    assert_eq!(page.status(), 200);
    let html = page.body_mut().read_to_string().unwrap();
    assert!(
        html.contains("<h2>MediaNest test notification</h2>"),
        "{html}"
    );
    assert!(html.contains("To alice@example.com"), "{html}");

    let (status, sent) = post(
        "/api/v1/admin/notifications/channels/ntfy/test",
        json!({"to": "medianest-alice"}),
    );
    assert_eq!(
        (status, &sent["data"]),
        (200, &json!({"delivered": true})),
        "{sent}"
    );
    let mut polled = agent
        .get(&format!("{ntfy}/medianest-alice/json?poll=1"))
        .call()
        .unwrap();
    assert_eq!(polled.status(), 200);
    let text = polled.body_mut().read_to_string().unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["event"], "message", "{text}");
    assert_eq!(lines[0]["topic"], "medianest-alice", "{text}");
    assert_eq!(lines[0]["title"], "MediaNest test notification", "{text}");
    let mut other = agent
        .get(&format!("{ntfy}/medianest-bob/json?poll=1"))
        .call()
        .unwrap();
    assert_eq!(other.body_mut().read_to_string().unwrap(), "", "per topic");

    // A real event goes the whole way: an announcement reaches the admin's inbox and ntfy topic
    // through the outbox and the delivery worker.
    let (status, made) = post(
        "/api/v1/admin/announcements",
        json!({"title": "Movie night", "message": "Friday at eight."}),
    );
    assert_eq!(status, 201, "{made}");
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (_, messages) = json_of(agent.get(&format!("{inbox}/messages")).call().unwrap());
        let mailed = messages["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["subject"] == "Movie night" && m["to"] == json!(["admin@example.com"]));
        let pushed = agent
            .get(&format!("{ntfy}/medianest-admin/json?poll=1"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
            .contains("Movie night");
        if mailed && pushed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the announcement did not arrive: {messages}\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Issue 14's durability check: with the mail server down, three announcements are made; the
/// server is killed with SIGKILL while their deliveries wait for a retry; the mail server and
/// the server start again, and each of the three messages arrives exactly once.
#[test]
fn notifications_made_while_the_mail_server_is_down_arrive_once_each_after_a_sigkill() {
    const PASSWORD: &str = "durability-password";
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let smtp_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("medianest.toml");
    std::fs::write(
        &config,
        format!("[admin]\npassword = \"{PASSWORD}\"\n[notifications]\nretry_min_secs = 1\nretry_max_secs = 2\n"),
    )
    .unwrap();
    let config_arg = config.to_string_lossy().into_owned();
    let mut server = Server::start(&dir, &["--config", &config_arg]);
    let agent = agent();
    let (_, login) = json_of(
        agent
            .post(&server.url("/api/v1/auth/login"))
            .header("Content-Type", "application/json")
            .send(serde_json::json!({"username": "admin", "password": PASSWORD}).to_string())
            .unwrap(),
    );
    let auth = format!("Bearer {}", login["data"]["token"].as_str().unwrap());
    let log = |server: &Server| {
        json_of(
            agent
                .get(&server.url("/api/v1/admin/notifications/deliveries?channel=email"))
                .header("Authorization", &auth)
                .call()
                .unwrap(),
        )
        .1
    };
    let send = |server: &Server, method: &str, path: &str, body: serde_json::Value| {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(server.url(path))
            .header("Content-Type", "application/json")
            .header("Authorization", &auth)
            .body(body.to_string())
            .unwrap();
        json_of(agent.run(request).unwrap())
    };
    // Email to the admin's own address through a mail server that is not running.
    let (status, body) = send(
        &server,
        "PUT",
        "/api/v1/admin/notifications/channels/email",
        serde_json::json!({"enabled": true, "host": "127.0.0.1", "port": smtp_addr.port(),
            "security": "none", "from": "MediaNest <nest@home.example>"}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(
        &server,
        "PUT",
        "/api/v1/me/notifications",
        serde_json::json!({"channels": {"email": {"enabled": true, "address": "owner@home.example"}}}),
    );
    assert_eq!(status, 200, "{body}");
    for n in 1..=3 {
        let (status, body) = send(
            &server,
            "POST",
            "/api/v1/admin/announcements",
            serde_json::json!({"title": format!("Notice {n}"), "message": "The server restarts tonight."}),
        );
        assert_eq!(status, 201, "{body}");
    }
    // All three tried once and waiting for a retry.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let log = log(&server);
        let rows = log["data"].as_array().cloned().unwrap_or_default();
        if rows.len() == 3
            && rows
                .iter()
                .all(|r| r["status"] == "pending" && r["attempts"].as_i64() >= Some(1))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not tried: {log}\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill_hard();
    drop(server);

    let sink = runtime
        .block_on(medianest::sim::smtp::SmtpSink::start_with(
            medianest::sim::smtp::SmtpOptions {
                addr: Some(smtp_addr),
                ..Default::default()
            },
        ))
        .unwrap();
    let server = Server::start(&dir, &["--config", &config_arg]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = log(&server);
        let rows = log["data"].as_array().cloned().unwrap_or_default();
        if rows.len() == 3 && rows.iter().all(|r| r["status"] == "delivered") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not delivered: {log}\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Nothing is left to send, so nothing more can arrive: each exactly once.
    let mut subjects: Vec<String> = sink
        .received()
        .iter()
        .map(|m| medianest::sim::smtp::header(&m.data, "subject").unwrap_or_default())
        .collect();
    subjects.sort();
    assert_eq!(
        subjects,
        ["Notice 1", "Notice 2", "Notice 3"],
        "{subjects:?}"
    );
    drop(sink);
}

/// The demo's subscription: the simulated channel that gains a video every minute is checked at
/// start, its videos of the day download through the simulated yt-dlp as episodes under
/// `downloads/subscriptions/<Channel>/Season <year>/`, with the channel's art, and each reaches
/// the demo's Plex (its download gets the collection).
#[test]
fn the_demo_subscription_downloads_the_channels_new_videos_as_plex_episodes() {
    use medianest::demo::{ADMIN_PASSWORD, DEMO_CHANNEL};
    use serde_json::json;

    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let data = dir.path().join("data");
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut cmd = medianest(dir.path());
    cmd.env("TMPDIR", &tmp)
        .arg("demo")
        .arg("--data-dir")
        .arg(&data)
        .arg("--listen")
        .arg(addr.to_string());
    let server = Server::spawn(&dir, cmd, addr, tmp.clone());
    assert!(
        server.log_text().contains(DEMO_CHANNEL),
        "{}",
        server.log_text()
    );
    let agent = agent();
    let (status, login) = json_of(
        agent
            .post(&server.url("/api/v1/auth/login"))
            .header("Content-Type", "application/json")
            .send(json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string())
            .unwrap(),
    );
    assert_eq!(status, 200, "{login}");
    let admin = format!("Bearer {}", login["data"]["token"].as_str().unwrap());
    let get = |path: &str| {
        json_of(
            agent
                .get(&server.url(path))
                .header("Authorization", &admin)
                .call()
                .unwrap(),
        )
        .1
    };
    let subs = get("/api/v1/youtube/subscriptions");
    let list = subs["data"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{subs}");
    let id = list[0]["id"].as_str().unwrap().to_owned();
    // The clock started five minutes before: five videos (six if a minute turned meanwhile).
    let deadline = Instant::now() + Duration::from_secs(90);
    let items = loop {
        let items = get(&format!(
            "/api/v1/youtube/subscriptions/{id}/items?limit=100"
        ));
        let list = items["data"].as_array().cloned().unwrap_or_default();
        let downloads = get("/api/v1/youtube/downloads?limit=100");
        let handed = downloads["data"].as_array().is_some_and(|d| {
            d.iter()
                .filter(|d| d["plexCollectionId"].is_string())
                .count()
                >= 5
        });
        // Retention keeps the newest five: a sixth is pruned.
        let downloaded: Vec<_> = list
            .iter()
            .filter(|i| i["status"] == "downloaded")
            .cloned()
            .collect();
        let settled = list
            .iter()
            .all(|i| i["status"] == "downloaded" || i["status"] == "pruned");
        if downloaded.len() == 5 && settled && handed {
            break downloaded;
        }
        assert!(Instant::now() < deadline, "{items}\n{}", server.log_text());
        std::thread::sleep(Duration::from_millis(100));
    };
    let sub = get(&format!("/api/v1/youtube/subscriptions/{id}"));
    let title = sub["data"]["title"].as_str().unwrap().to_owned();
    let show = std::fs::canonicalize(data.join("downloads"))
        .unwrap()
        .join("subscriptions")
        .join(&title);
    assert!(show.join("poster.jpg").is_file(), "{}", show.display());
    for item in &items {
        for file in item["files"].as_array().unwrap() {
            let path = data.join("downloads").join(file.as_str().unwrap());
            assert!(path.is_file(), "{}", path.display());
        }
        let names: Vec<&str> = item["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert!(names.iter().any(|f| f.ends_with(".en.srt")), "{item}");
        assert!(names.iter().any(|f| f.ends_with(".jpg")), "{item}");
        assert!(
            names
                .iter()
                .all(|f| f.starts_with(&format!("subscriptions/{title}/Season "))),
            "{item}"
        );
    }
}

/// A subscription check cut by a SIGKILL resumes cleanly: killed while yt-dlp lists the channel,
/// nothing of the check was recorded and the subscription is still due, so the restarted server
/// checks it again; killed again while its videos download, the restarted queue finishes them.
/// In the end every allowed video is in the archive once, downloaded once, its file whole.
#[test]
fn a_subscription_check_cut_by_sigkill_resumes_cleanly_after_each_restart() {
    use medianest::sim::ytdlp::HOLD_LISTINGS;
    const PASSWORD: &str = "restart-test-password";
    let dir = tempfile::tempdir().unwrap();
    let (sim_dir, config_arg) = with_simulated_ytdlp(&dir, PASSWORD, 40);
    let agent = agent();
    let login = |server: &Server| {
        let (_, login) = json_of(
            agent
                .post(&server.url("/api/v1/auth/login"))
                .header("Content-Type", "application/json")
                .send(serde_json::json!({"username": "admin", "password": PASSWORD}).to_string())
                .unwrap(),
        );
        format!("Bearer {}", login["data"]["token"].as_str().unwrap())
    };
    let get = |server: &Server, auth: &str, path: &str| {
        json_of(
            agent
                .get(&server.url(path))
                .header("Authorization", auth)
                .call()
                .unwrap(),
        )
        .1["data"]
            .clone()
    };
    let held = || {
        std::fs::read_dir(sim_dir.join("sim-state/held"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let wait = |what: &str, server: &Server, mut done: Box<dyn FnMut() -> bool + '_>| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(
                Instant::now() < deadline,
                "waiting for {what}\n{}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    // The first check's listing hangs; the server is killed while it does.
    std::fs::write(sim_dir.join(HOLD_LISTINGS), b"").unwrap();
    let mut server = Server::start(&dir, &["--config", &config_arg]);
    let auth = login(&server);
    let (status, created) = json_of(
        agent
            .post(&server.url("/api/v1/youtube/subscriptions"))
            .header("Content-Type", "application/json")
            .header("Authorization", &auth)
            .send(
                serde_json::json!({"url": "https://www.youtube.com/@Sim", "skipShorts": true})
                    .to_string(),
            )
            .unwrap(),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    let sub_path = format!("/api/v1/youtube/subscriptions/{id}");
    wait("the first listing", &server, Box::new(|| held() >= 1));
    server.kill_hard();
    drop(server);

    // Restarted, still held: the check left nothing behind and runs again.
    let mut server = Server::start(&dir, &["--config", &config_arg]);
    let auth = login(&server);
    wait("the second listing", &server, Box::new(|| held() >= 2));
    let sub = get(&server, &auth, &sub_path);
    assert!(sub["lastCheckAt"].is_null(), "{sub}");
    assert_eq!(sub["itemCount"], 0, "{sub}");
    let items = get(&server, &auth, &format!("{sub_path}/items"));
    assert_eq!(items.as_array().map(Vec::len), Some(0), "{items}");

    // Released: the check queues the videos; killed again while they download.
    std::fs::remove_file(sim_dir.join(HOLD_LISTINGS)).unwrap();
    wait(
        "a download under way after another completed",
        &server,
        Box::new(|| {
            let downloads = get(&server, &auth, "/api/v1/youtube/downloads?limit=100");
            let list = downloads.as_array().cloned().unwrap_or_default();
            list.iter().any(|d| d["status"] == "completed")
                && list.iter().any(|d| d["status"] == "downloading")
        }),
    );
    server.kill_hard();
    drop(server);

    let server = Server::start(&dir, &["--config", &config_arg]);
    let auth = login(&server);
    let mut items = Vec::new();
    wait(
        "every item downloaded",
        &server,
        Box::new(|| {
            let list = get(&server, &auth, &format!("{sub_path}/items?limit=100"));
            items = list.as_array().cloned().unwrap_or_default();
            !items.is_empty() && items.iter().all(|i| i["status"] == "downloaded")
        }),
    );
    let sub = get(&server, &auth, &sub_path);
    assert_eq!(sub["lastResult"], "ok", "{sub}");
    assert_eq!(sub["itemCount"], items.len(), "{sub}");
    let mut ids: Vec<&str> = items
        .iter()
        .map(|i| i["videoId"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), items.len(), "an id archived twice: {items:?}");
    let downloads = get(&server, &auth, "/api/v1/youtube/downloads?limit=100");
    let downloads = downloads.as_array().unwrap();
    assert_eq!(downloads.len(), items.len(), "{downloads:?}");
    assert!(
        downloads.iter().all(|d| d["status"] == "completed"),
        "{downloads:?}"
    );
    let root = dir.path().join("downloads");
    for item in &items {
        let files = item["files"].as_array().unwrap();
        let video = files
            .iter()
            .map(|f| root.join(f.as_str().unwrap()))
            .find(|p| p.extension().is_some_and(|e| e == "mp4"))
            .unwrap_or_else(|| panic!("no video: {item}"));
        assert_eq!(
            video.metadata().unwrap().len(),
            medianest::sim::ytdlp::FILE_BYTES as u64,
            "{}",
            video.display()
        );
    }
}
