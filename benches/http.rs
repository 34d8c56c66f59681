//! `cargo bench --bench http [-- FILTER...]`: the HTTP benchmark harness.
//!
//! Every scenario gets its own server process (this binary run again with `BENCH_CHILD_ROLE` set),
//! so the idle and peak RSS it reports belong to that server alone. The parent times the start
//! (spawn to the first 200 from the ready path, on a fresh data directory), asks the child to seed
//! its database, then drives it over loopback TCP with many keep-alive connections: a warm-up that
//! is not counted, then a fixed measured window. Results print as a Markdown table, with every
//! req/s also given as a ratio to the `baseline` scenario (a bare axum route on the same harness).
//! The client shares the cores with the server, so the table also shows each side's CPU time per
//! request and how busy the rest of the machine was (more than a few percent: noisy figures).
//!
//! Adding an endpoint: one line in [`SCENARIOS`]; data it needs goes in [`seed`] (shared by every
//! app scenario) or in a scenario's `setup` (which can also hand back headers, e.g. a session).
//!
//! Settings: `BENCH_CONNECTIONS` (64), `BENCH_SECONDS` (5, measured per run),
//! `BENCH_WARMUP_SECONDS` (1), `BENCH_ROUNDS` (3; every scenario runs once per round and the table
//! shows medians), `BENCH_LOG_LEVEL` (`warn`, the server's log filter). Arguments not starting
//! with `--` keep only the scenarios whose name contains one of them; `baseline` always runs so
//! ratios exist. Nothing here talks to anything but 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use futures_util::future::BoxFuture;
use medianest::AppState;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

// Not `MEDIANEST_*`: the configuration loader treats that prefix as its own and rejects unknown keys.
const ROLE_ENV: &str = "BENCH_CHILD_ROLE";
const DATA_ENV: &str = "BENCH_CHILD_DATA";
const SCENARIO_ENV: &str = "BENCH_CHILD_SCENARIO";
const LOG_ENV: &str = "BENCH_LOG_LEVEL";

/// A rate-limit quota far above what the harness can send.
const UNREACHABLE_QUOTA: u32 = 1_000_000_000;

/// Which server a scenario runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A bare axum route answering a constant: the ceiling of this harness on this machine.
    Baseline,
    /// The real application (`medianest::bootstrap` + `medianest::serve`) on a fresh data dir.
    App,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Baseline => "baseline",
            Role::App => "app",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "baseline" => Some(Role::Baseline),
            "app" => Some(Role::App),
            _ => None,
        }
    }

    /// The path whose first 200 counts as "ready".
    fn ready_path(self) -> &'static str {
        match self {
            Role::Baseline => "/health",
            Role::App => "/health/ready",
        }
    }
}

/// Extra request headers a scenario's setup hands back (e.g. `Authorization`).
type Headers = Vec<(String, String)>;

/// Runs in the server process after [`seed`], before the load; app scenarios only.
type Setup = fn(AppState) -> BoxFuture<'static, Result<Headers, String>>;

/// What the server's data directory holds when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Data {
    /// Nothing: a first start.
    Fresh,
    /// A copy of the 1M-request template ([`media_template`]), made once and kept under
    /// `target/bench-data/`.
    Media,
}

/// One benchmarked endpoint.
struct Scenario {
    name: &'static str,
    server: Role,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    setup: Setup,
    data: Data,
    limits: Limits,
}

/// The rate limits a scenario's server runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limits {
    /// Quotas no benchmark reaches: every request is answered by its handler.
    Unreachable,
    /// The shipped defaults (50 req/s per IP, burst 100): a flood from the one client address is
    /// nearly all `429 RATE_LIMITED`, which is what the scenario measures.
    Default,
}

/// The scenarios, in the order they run. The one named `baseline` is the denominator of every ratio.
const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "baseline",
        server: Role::Baseline,
        path: "/health",
        headers: &[],
        setup: no_setup,
        data: Data::Fresh,
        limits: Limits::Unreachable,
    },
    Scenario {
        name: "health",
        server: Role::App,
        path: "/health",
        headers: &[],
        setup: no_setup,
        data: Data::Fresh,
        limits: Limits::Unreachable,
    },
    Scenario {
        name: "api-health",
        server: Role::App,
        path: "/api/v1/health",
        headers: &[],
        setup: no_setup,
        data: Data::Fresh,
        limits: Limits::Unreachable,
    },
    Scenario {
        // One address flooding a cheap route past its per-IP quota: after the burst nearly every
        // answer is a 429, which must cost less than the cheapest 200 (`api-health`).
        name: "flood-429",
        server: Role::App,
        path: "/api/v1/health",
        headers: &[],
        setup: no_setup,
        data: Data::Fresh,
        limits: Limits::Default,
    },
    Scenario {
        name: "auth-session",
        server: Role::App,
        path: "/api/v1/auth/session",
        headers: &[],
        setup: signed_in,
        data: Data::Fresh,
        limits: Limits::Unreachable,
    },
    Scenario {
        name: "services",
        server: Role::App,
        path: "/api/v1/services",
        headers: &[],
        setup: signed_in,
        data: Data::Fresh,
        limits: Limits::Unreachable,
    },
    Scenario {
        name: "requests-first-page",
        server: Role::App,
        path: "/api/v1/media/requests",
        headers: &[],
        setup: media_first_page,
        data: Data::Media,
        limits: Limits::Unreachable,
    },
    Scenario {
        name: "requests-deep-page",
        server: Role::App,
        // Replaced by the setup with the path of a page 10 000 rows deep.
        path: "/api/v1/media/requests",
        headers: &[],
        setup: media_deep_page,
        data: Data::Media,
        limits: Limits::Unreachable,
    },
    Scenario {
        name: "dashboard",
        server: Role::App,
        path: "/api/v1/dashboard",
        headers: &[],
        setup: media_first_page,
        data: Data::Media,
        limits: Limits::Unreachable,
    },
];

/// Media requests in the media scenarios' database, and the users they are spread over.
const MEDIA_ROWS: i64 = 1_000_000;
const MEDIA_USERS: i64 = 50;
/// How deep the deep-page scenario starts, in rows of the signed-in user's list.
const DEEP_ROWS: usize = 10_000;

/// Fills a data directory with 50 users and 1,000,000 requests between them (20 000 each, one
/// every 30 s over about a year, statuses and types mixed, titles unsorted), then stops cleanly
/// so the copy starts with a checkpointed database. Takes a minute, hence done once.
async fn media_template(dir: &std::path::Path) -> Result<(), String> {
    let config = app_config(dir.to_owned(), "warn".to_owned(), Limits::Unreachable);
    let state = tokio::task::spawn_blocking(move || {
        medianest::bootstrap(config, medianest::clock::system()).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())??;
    let now = state.clock().now_ms();
    let started = Instant::now();
    state
        .db()
        .write(move |tx| {
            let mut users = Vec::new();
            for u in 0..MEDIA_USERS {
                let id = medianest::users::new_id();
                tx.execute(
                    "INSERT INTO users (id, username, role, status, created_at)
                     VALUES (?1, ?2, 'user', 'active', ?3)",
                    rusqlite::params![id, format!("viewer{u}"), now],
                )?;
                users.push(id);
            }
            let statuses = ["pending", "approved", "processing", "available", "declined"];
            let mut insert = tx.prepare(
                "INSERT INTO media_requests (id, user_id, title, media_type, tmdb_id, seasons,
                                             is_4k, status, overseerr_id, poster_path,
                                             created_at, updated_at, completed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9, ?10, ?10, ?11)",
            )?;
            let start = now - MEDIA_ROWS * 30_000;
            for i in 0..MEDIA_ROWS {
                let tv = i % 3 == 0;
                let status = statuses[(i % 5) as usize];
                let at = start + i * 30_000;
                insert.execute(rusqlite::params![
                    uuid::Uuid::now_v7().to_string(),
                    users[(i % MEDIA_USERS) as usize],
                    format!("Title {:07}", (i * 7_919) % MEDIA_ROWS),
                    if tv { "tv" } else { "movie" },
                    i + 1,
                    tv.then_some("[1,2]"),
                    status,
                    i + 1,
                    "/f89U3ADr1oiB1s9GkdPOEpXUk5H.jpg",
                    at,
                    (status == "available").then_some(at + 86_400_000),
                ])?;
            }
            Ok(())
        })
        .await
        .map_err(|e| format!("seed media: {e}"))?;
    state
        .db()
        .run(|conn| Ok(conn.execute_batch("ANALYZE")?))
        .await
        .map_err(|e| format!("analyze: {e}"))?;
    state.shutdown().await.map_err(|e| e.to_string())?;
    eprintln!(
        "bench: made the {MEDIA_ROWS}-request template in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The first media user (20 000 requests) and a session for them.
async fn media_user(state: &AppState) -> Result<(String, String), String> {
    let now = state.clock().now_ms();
    let sessions = state.clone();
    state
        .db()
        .write(move |tx| {
            let user: String =
                tx.query_row("SELECT id FROM users WHERE username = 'viewer0'", [], |r| {
                    r.get(0)
                })?;
            let token = sessions
                .sessions()
                .create(tx, &user, false, Some("bench"), None, now)?
                .token;
            Ok((user, token))
        })
        .await
        .map_err(|e| format!("media user (is the template there?): {e}"))
}

fn bearer(token: &str) -> (String, String) {
    ("Authorization".to_owned(), format!("Bearer {token}"))
}

/// The first page of a user's requests (and the dashboard) over the 1M-row table.
fn media_first_page(state: AppState) -> BoxFuture<'static, Result<Headers, String>> {
    Box::pin(async move {
        let (_, token) = media_user(&state).await?;
        Ok(vec![bearer(&token)])
    })
}

/// A page 10 000 rows deep: the setup follows the cursors page by page, as a client would.
fn media_deep_page(state: AppState) -> BoxFuture<'static, Result<Headers, String>> {
    Box::pin(async move {
        let (user, token) = media_user(&state).await?;
        let cursor = state
            .db()
            .run(move |conn| {
                use medianest::media::store::{ListSpec, Position, Sort, list};
                let spec = ListSpec::newest_of(&user);
                let mut after: Option<Position> = None;
                for _ in 0..DEEP_ROWS / 20 {
                    let page = list(conn, &spec, &user, after.as_ref(), 20)?;
                    after = page.last().map(|r| Position::of(r, Sort::CreatedAt));
                }
                Ok(after)
            })
            .await
            .map_err(|e| format!("follow cursors: {e}"))?
            .ok_or("the list ended early")?;
        let cursor = state
            .cursors()
            .encode("media_requests.mine.created_at.desc", &cursor);
        Ok(vec![
            bearer(&token),
            (
                PATH_HEADER.to_owned(),
                format!("/api/v1/media/requests?cursor={cursor}"),
            ),
        ])
    })
}

/// A setup "header" that replaces the scenario's path instead of being sent.
const PATH_HEADER: &str = "x-bench-path";

/// A user with a session: the `Authorization` header for authenticated scenarios. The session
/// cache is hot after the warm-up.
fn signed_in(state: AppState) -> BoxFuture<'static, Result<Headers, String>> {
    Box::pin(async move {
        let now = state.clock().now_ms();
        let sessions = state.clone();
        let token = state
            .db()
            .write(move |tx| {
                let id = medianest::users::new_id();
                tx.execute(
                    "INSERT INTO users (id, username, email, role, status, created_at)
                     VALUES (?1, 'bench', 'bench@example.com', 'user', 'active', ?2)",
                    rusqlite::params![id, now],
                )?;
                Ok(sessions
                    .sessions()
                    .create(tx, &id, false, Some("bench"), None, now)?
                    .token)
            })
            .await
            .map_err(|e| format!("sign in: {e}"))?;
        Ok(vec![(
            "Authorization".to_owned(),
            format!("Bearer {token}"),
        )])
    })
}

fn no_setup(_: AppState) -> BoxFuture<'static, Result<Headers, String>> {
    Box::pin(async { Ok(Vec::new()) })
}

/// Data every app scenario's database holds before the load. Later features add their rows here.
async fn seed(state: &AppState) -> Result<(), String> {
    let now = state.clock().now_ms();
    state
        .db()
        .write(move |tx| {
            // The three services and a dozen Uptime Kuma monitors: a typical home server.
            let monitors: Vec<(String, String)> = (1..=12)
                .map(|i| (format!("kuma:{i}"), format!("Monitor {i}")))
                .collect();
            let mut rows = vec![
                ("plex".to_owned(), "Plex".to_owned()),
                ("overseerr".to_owned(), "Overseerr".to_owned()),
                ("uptime_kuma".to_owned(), "Uptime Kuma".to_owned()),
            ];
            rows.extend(monitors);
            for (name, display) in rows {
                let status = "up";
                tx.execute(
                    "INSERT INTO service_status \
                     (id, service_name, display_name, status, response_time_ms, last_check_at, last_change_at) \
                     VALUES (?1, ?2, ?3, ?4, 12, ?5, ?5) \
                     ON CONFLICT (service_name) DO UPDATE SET status = excluded.status",
                    rusqlite::params![format!("bench-{name}"), name, display, status, now],
                )?;
            }
            Ok(())
        })
        .await
        .map_err(|e| format!("seed: {e}"))
}

/// The app server's configuration in a benchmark.
fn app_config(data_dir: std::path::PathBuf, level: String, limits: Limits) -> medianest::Config {
    let mut config = medianest::Config {
        data_dir,
        ..Default::default()
    };
    config.log.level = level;
    // An unattended install: the first start hashes this instead of a random password (the same
    // argon2 cost) and does not print the generated one to stderr.
    config.admin.password = Some(medianest::config::Secret::new("bench-admin-password"));
    // Every connection comes from 127.0.0.1 (BENCH_CONNECTIONS, 64 by default): only the total
    // cap applies, not server.max_connections_per_ip (32 by default).
    config.server.max_connections_per_ip = config.server.max_connections;
    // All load comes from 127.0.0.1: the per-IP and per-user limiters still run on every
    // request, but with quotas no benchmark reaches (except where a scenario measures them).
    if limits == Limits::Unreachable {
        config.limits.ip_per_second = UNREACHABLE_QUOTA;
        config.limits.ip_burst = UNREACHABLE_QUOTA;
        config.limits.user_per_minute = UNREACHABLE_QUOTA;
    }
    config
}

fn main() -> ExitCode {
    match std::env::var(ROLE_ENV) {
        Ok(role) => match Role::parse(&role) {
            Some(role) => child::main(role),
            None => {
                eprintln!("bench: unknown {ROLE_ENV}={role}");
                ExitCode::FAILURE
            }
        },
        Err(_) => parent::main(),
    }
}

/// The server side: one process per scenario.
mod child {
    use super::*;

    /// Built like `runtime()` in src/main.rs, so the server runs as it does in production.
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .max_blocking_threads(64)
            .thread_name("medianest")
            .build()
            .expect("runtime")
    }

    /// Serves until stdin closes. Protocol on stdout: `port N` once listening; after `seed` arrives
    /// on stdin, zero or more `header NAME: VALUE` lines and then `seeded` (or `failed REASON`).
    pub fn main(role: Role) -> ExitCode {
        let level = std::env::var(LOG_ENV).unwrap_or_else(|_| "warn".into());
        // As src/main.rs's init_logging does, so the span and event filtering costs the same.
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(&level))
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();

        let scenario = std::env::var(SCENARIO_ENV).unwrap_or_default();
        let scenario = SCENARIOS.iter().find(|s| s.name == scenario);
        let setup = scenario.map_or(no_setup as Setup, |s| s.setup);
        let limits = scenario.map_or(Limits::Unreachable, |s| s.limits);

        let state = match role {
            Role::Baseline => None,
            Role::App => {
                let data = std::env::var(DATA_ENV).expect(DATA_ENV).into();
                let config = app_config(data, level, limits);
                match medianest::bootstrap(config, medianest::clock::system()) {
                    Ok(state) => Some(state),
                    Err(e) => {
                        eprintln!("bench child: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        };

        let result = runtime().block_on(async move {
            let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
            println!("port {}", listener.local_addr()?.port());

            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            let commands = stdin_lines();
            tokio::spawn(control(commands, state.clone(), setup, stop_tx));
            let shutdown = async {
                let _ = stop_rx.await;
            };
            match state {
                Some(state) => medianest::serve(listener, state, shutdown).await,
                None => {
                    let app = axum::Router::new().route(
                        "/health",
                        get(|| async {
                            ([(CONTENT_TYPE, "application/json")], r#"{"status":"ok"}"#)
                        }),
                    );
                    axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .await
                }
            }
        });
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench child: {e}");
                ExitCode::FAILURE
            }
        }
    }

    /// Lines from stdin; the channel closes when stdin does (the parent is done or gone).
    fn stdin_lines() -> tokio::sync::mpsc::UnboundedReceiver<String> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    }

    async fn control(
        mut commands: tokio::sync::mpsc::UnboundedReceiver<String>,
        state: Option<AppState>,
        setup: Setup,
        stop: tokio::sync::oneshot::Sender<()>,
    ) {
        while let Some(command) = commands.recv().await {
            if command.trim() != "seed" {
                continue;
            }
            let prepared = match &state {
                None => Ok(Vec::new()),
                Some(state) => match seed(state).await {
                    Ok(()) => setup(state.clone()).await,
                    Err(e) => Err(e),
                },
            };
            match prepared {
                Ok(headers) => {
                    for (name, value) in headers {
                        println!("header {name}: {value}");
                    }
                    println!("seeded");
                }
                Err(e) => println!("failed {}", e.replace('\n', " ")),
            }
        }
        let _ = stop.send(());
    }
}

/// The load generator and the report.
mod parent {
    use super::*;

    const IDLE: u8 = 0;
    const MEASURE: u8 = 1;
    const STOP: u8 = 2;

    /// Linux reports process CPU time in USER_HZ ticks, fixed at 100 for userspace.
    const TICKS_PER_SEC: f64 = 100.0;

    struct Settings {
        connections: usize,
        seconds: f64,
        warmup: f64,
        rounds: usize,
        log_level: String,
    }

    fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
        match std::env::var(name) {
            Ok(v) => v
                .parse()
                .unwrap_or_else(|_| panic!("{name}={v} is not a valid value")),
            Err(_) => default,
        }
    }

    /// What one run of one scenario measured.
    struct Outcome {
        requests: usize,
        rps: f64,
        p50_us: u32,
        p99_us: u32,
        errors: usize,
        idle_rss_kb: u64,
        peak_rss_kb: u64,
        ready_ms: f64,
        server_cpu_us: f64,
        client_cpu_us: f64,
        other_cpu_pct: f64,
    }

    pub fn main() -> ExitCode {
        let filters: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with("--"))
            .collect();
        let settings = Settings {
            connections: env_or("BENCH_CONNECTIONS", 64),
            seconds: env_or("BENCH_SECONDS", 5.0),
            warmup: env_or("BENCH_WARMUP_SECONDS", 1.0),
            rounds: env_or("BENCH_ROUNDS", 3usize).max(1),
            log_level: std::env::var(LOG_ENV).unwrap_or_else(|_| "warn".into()),
        };
        let chosen: Vec<&Scenario> = SCENARIOS
            .iter()
            .filter(|s| {
                s.name == "baseline"
                    || filters.is_empty()
                    || filters.iter().any(|f| s.name.contains(f.as_str()))
            })
            .collect();
        println!(
            "{} keep-alive connections; {} rounds of {} s warm-up + {} s measured per scenario; server log level {}",
            settings.connections,
            settings.rounds,
            settings.warmup,
            settings.seconds,
            settings.log_level
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        // Rounds rather than one long run each: the machine's speed drifts (other tenants, other
        // builds), and a ratio taken within one round compares neighbours in time.
        let mut runs: Vec<Vec<Outcome>> = chosen.iter().map(|_| Vec::new()).collect();
        for round in 1..=settings.rounds {
            for (scenario, done) in chosen.iter().zip(runs.iter_mut()) {
                eprintln!(
                    "round {round}/{}: {} ({})",
                    settings.rounds, scenario.name, scenario.path
                );
                match runtime.block_on(run(scenario, &settings)) {
                    Ok(outcome) => done.push(outcome),
                    Err(e) => {
                        eprintln!("bench: scenario {} failed: {e}", scenario.name);
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
        print_table(&chosen, &runs);
        ExitCode::SUCCESS
    }

    fn median(mut values: Vec<f64>) -> f64 {
        if values.is_empty() {
            return 0.0;
        }
        values.sort_by(f64::total_cmp);
        let mid = values.len() / 2;
        if values.len() % 2 == 1 {
            values[mid]
        } else {
            (values[mid - 1] + values[mid]) / 2.0
        }
    }

    fn print_table(chosen: &[&Scenario], runs: &[Vec<Outcome>]) {
        let baseline = chosen
            .iter()
            .position(|s| s.name == "baseline")
            .map(|i| &runs[i]);
        println!();
        println!(
            "| scenario | path | req/s | spread | vs baseline | p50 µs | p99 µs | errors | idle RSS MB | peak RSS MB | ready ms | server CPU µs/req | client CPU µs/req | other CPU % |"
        );
        println!("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        for (scenario, rs) in chosen.iter().zip(runs) {
            let of = |f: fn(&Outcome) -> f64| rs.iter().map(f).collect::<Vec<f64>>();
            let rps = median(of(|o| o.rps));
            let lowest = of(|o| o.rps).into_iter().fold(f64::INFINITY, f64::min);
            let highest = of(|o| o.rps).into_iter().fold(0.0, f64::max);
            let ratio = baseline.map_or("-".to_owned(), |base| {
                let pairs = rs.iter().zip(base).map(|(o, b)| o.rps / b.rps).collect();
                format!("{:.0}%", 100.0 * median(pairs))
            });
            let mb = |kb: u64| kb as f64 / 1024.0;
            println!(
                "| {} | `{}` | {:.0} | {:.0}% | {} | {:.0} | {:.0} | {}/{} | {:.1} | {:.1} | {:.0} | {:.1} | {:.1} | {:.0} |",
                scenario.name,
                scenario.path,
                rps,
                100.0 * (highest - lowest) / rps.max(1.0),
                ratio,
                median(of(|o| f64::from(o.p50_us))),
                median(of(|o| f64::from(o.p99_us))),
                rs.iter().map(|o| o.errors).sum::<usize>(),
                rs.iter().map(|o| o.requests).sum::<usize>(),
                mb(rs.iter().map(|o| o.idle_rss_kb).max().unwrap_or(0)),
                mb(rs.iter().map(|o| o.peak_rss_kb).max().unwrap_or(0)),
                median(of(|o| o.ready_ms)),
                median(of(|o| o.server_cpu_us)),
                median(of(|o| o.client_cpu_us)),
                of(|o| o.other_cpu_pct).into_iter().fold(0.0, f64::max),
            );
        }
        println!();
        println!(
            "req/s, p50, p99, ready and CPU are medians over the rounds; spread is (max - min) / median of req/s; \
             vs baseline is the median of each round's ratio to that round's baseline; RSS and other CPU are the \
             maxima; errors are non-2xx / all responses."
        );
    }

    /// The media template's directory, made on first use and kept between runs (its name
    /// carries the schema version and the row count, so a new migration makes a new one).
    async fn media_template_dir() -> Result<std::path::PathBuf, String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
        let dir = root.join(format!(
            "media-v{}-{MEDIA_ROWS}",
            medianest::db::migrations::latest_version()
        ));
        if dir.join("complete").is_file() {
            return Ok(dir);
        }
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        media_template(&dir).await?;
        std::fs::write(dir.join("complete"), b"").map_err(|e| e.to_string())?;
        Ok(dir)
    }

    /// Copies the files of `from` (not directories) into a new `to`.
    fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> Result<(), String> {
        std::fs::create_dir_all(to).map_err(|e| e.to_string())?;
        for entry in std::fs::read_dir(from).map_err(|e| e.to_string())? {
            let entry = entry.map_err(|e| e.to_string())?;
            if entry.file_type().map_err(|e| e.to_string())?.is_file() {
                std::fs::copy(entry.path(), to.join(entry.file_name()))
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// One scenario: start its server, time readiness, seed, load it, stop it.
    async fn run(scenario: &Scenario, settings: &Settings) -> Result<Outcome, String> {
        let data = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        if scenario.data == Data::Media {
            copy_dir(&media_template_dir().await?, &data.path().join("data"))?;
        }
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let started = Instant::now();
        let mut child = Command::new(exe)
            .env(ROLE_ENV, scenario.server.as_str())
            .env(DATA_ENV, data.path().join("data"))
            .env(SCENARIO_ENV, scenario.name)
            .env(LOG_ENV, &settings.log_level)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("spawn server: {e}"))?;
        let pid = child.id().ok_or("server exited at once")?;
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);

        let line = next_line(&mut stdout).await?;
        let port: u16 = line
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("server said {line:?}, wanted its port"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_ready(addr, scenario.server.ready_path(), started).await?;
        let ready_ms = started.elapsed().as_secs_f64() * 1000.0;
        let idle_rss_kb = proc_status_kb(pid, "VmRSS:")?;

        let extra = seed_child(&mut stdin, &mut stdout).await?;
        let request = request_bytes(scenario, &extra);
        let load = drive(addr, &request, pid, settings).await?;
        let peak_rss_kb = proc_status_kb(pid, "VmHWM:")?;

        stop(&mut child, stdin).await?;
        drop(data);

        let mut latencies = load.latencies;
        latencies.sort_unstable();
        let requests = latencies.len();
        let per_req = |ticks: u64| {
            if requests == 0 {
                0.0
            } else {
                ticks as f64 / TICKS_PER_SEC * 1e6 / requests as f64
            }
        };
        Ok(Outcome {
            requests,
            rps: requests as f64 / load.elapsed.as_secs_f64(),
            p50_us: percentile(&latencies, 50.0),
            p99_us: percentile(&latencies, 99.0),
            errors: load.errors,
            idle_rss_kb,
            peak_rss_kb,
            ready_ms,
            server_cpu_us: per_req(load.server_ticks),
            client_cpu_us: per_req(load.client_ticks),
            other_cpu_pct: load.other_cpu_pct,
        })
    }

    async fn next_line(stdout: &mut BufReader<ChildStdout>) -> Result<String, String> {
        let mut line = String::new();
        let n = stdout
            .read_line(&mut line)
            .await
            .map_err(|e| format!("read server stdout: {e}"))?;
        if n == 0 {
            return Err("the server exited (see its stderr above)".into());
        }
        Ok(line.trim_end().to_owned())
    }

    /// Polls `path` until it answers 200. The port is printed after `bind`, so the first connect
    /// normally succeeds and waits in the backlog; the retry covers a slow or failing start.
    async fn wait_ready(addr: SocketAddr, path: &str, started: Instant) -> Result<(), String> {
        let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").into_bytes();
        let mut buf = Vec::with_capacity(4096);
        let mut last = String::new();
        while started.elapsed() < Duration::from_secs(30) {
            match TcpStream::connect(addr).await {
                Ok(mut stream) => {
                    buf.clear();
                    let answer = match stream.write_all(&request).await {
                        Ok(()) => exchange_read(&mut stream, &mut buf).await,
                        Err(e) => Err(e.to_string()),
                    };
                    match answer {
                        Ok(200) => return Ok(()),
                        Ok(status) => last = format!("{path} answered {status}"),
                        Err(e) => last = e,
                    }
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Err(format!("not ready after 30 s: {last}"))
    }

    async fn seed_child(
        stdin: &mut ChildStdin,
        stdout: &mut BufReader<ChildStdout>,
    ) -> Result<Headers, String> {
        stdin
            .write_all(b"seed\n")
            .await
            .map_err(|e| format!("write server stdin: {e}"))?;
        let mut headers = Vec::new();
        loop {
            let line = next_line(stdout).await?;
            if line == "seeded" {
                return Ok(headers);
            }
            if let Some(reason) = line.strip_prefix("failed ") {
                return Err(reason.to_owned());
            }
            let Some((name, value)) = line
                .strip_prefix("header ")
                .and_then(|h| h.split_once(": "))
            else {
                return Err(format!("unexpected line from the server: {line:?}"));
            };
            headers.push((name.to_owned(), value.to_owned()));
        }
    }

    fn request_bytes(scenario: &Scenario, extra: &Headers) -> Vec<u8> {
        let path = extra
            .iter()
            .find(|(n, _)| n == PATH_HEADER)
            .map_or(scenario.path, |(_, v)| v.as_str());
        let mut text = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        let fixed = scenario.headers.iter().map(|&(n, v)| (n, v));
        let extra = extra
            .iter()
            .filter(|(n, _)| n != PATH_HEADER)
            .map(|(n, v)| (n.as_str(), v.as_str()));
        for (name, value) in fixed.chain(extra) {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("\r\n");
        text.into_bytes()
    }

    /// Closes the server's stdin (its shutdown signal) and waits for a clean exit.
    async fn stop(child: &mut Child, stdin: ChildStdin) -> Result<(), String> {
        drop(stdin);
        match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(format!("the server exited with {status}")),
            Ok(Err(e)) => Err(format!("wait for the server: {e}")),
            Err(_) => {
                let _ = child.kill().await;
                Err("the server did not stop within 30 s of its stdin closing".into())
            }
        }
    }

    struct Load {
        latencies: Vec<u32>,
        errors: usize,
        elapsed: Duration,
        server_ticks: u64,
        client_ticks: u64,
        /// Busy CPU time of everything else on the machine (other processes, interrupts) as a
        /// share of all cores over the window: noise when it is more than a few percent.
        other_cpu_pct: f64,
    }

    /// Opens the connections, warms up, then counts every response completed in the window.
    async fn drive(
        addr: SocketAddr,
        request: &[u8],
        pid: u32,
        settings: &Settings,
    ) -> Result<Load, String> {
        let phase = Arc::new(AtomicU8::new(IDLE));
        let request: Arc<[u8]> = Arc::from(request);
        let mut tasks = Vec::with_capacity(settings.connections);
        for _ in 0..settings.connections {
            let stream = TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect {addr}: {e}"))?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            tasks.push(tokio::spawn(connection(
                stream,
                request.clone(),
                phase.clone(),
            )));
        }
        tokio::time::sleep(Duration::from_secs_f64(settings.warmup)).await;

        let server_before = cpu_ticks(&pid.to_string())?;
        let client_before = cpu_ticks("self")?;
        let machine_before = machine_busy_ticks()?;
        let window = Instant::now();
        phase.store(MEASURE, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs_f64(settings.seconds)).await;
        phase.store(STOP, Ordering::Relaxed);
        let elapsed = window.elapsed();
        let server_ticks = cpu_ticks(&pid.to_string())? - server_before;
        let client_ticks = cpu_ticks("self")? - client_before;
        let machine_ticks = machine_busy_ticks()? - machine_before;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let capacity = elapsed.as_secs_f64() * TICKS_PER_SEC * cores as f64;
        let other = machine_ticks.saturating_sub(server_ticks + client_ticks);
        let other_cpu_pct = 100.0 * other as f64 / capacity;

        let mut latencies = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let joined = tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .map_err(|_| "a connection hung after the window closed".to_owned())?;
            let stats = joined.map_err(|e| format!("connection task: {e}"))??;
            latencies.extend(stats.latencies);
            errors += stats.errors;
        }
        Ok(Load {
            latencies,
            errors,
            elapsed,
            server_ticks,
            client_ticks,
            other_cpu_pct,
        })
    }

    struct ConnStats {
        latencies: Vec<u32>,
        errors: usize,
    }

    /// One keep-alive connection: request, whole response, repeat until told to stop. Responses
    /// completed in the measured window are counted; non-2xx are counted again as errors.
    async fn connection(
        mut stream: TcpStream,
        request: Arc<[u8]>,
        phase: Arc<AtomicU8>,
    ) -> Result<ConnStats, String> {
        let mut buf = Vec::with_capacity(16 * 1024);
        let mut stats = ConnStats {
            latencies: Vec::with_capacity(64 * 1024),
            errors: 0,
        };
        loop {
            if phase.load(Ordering::Relaxed) == STOP {
                return Ok(stats);
            }
            let sent = Instant::now();
            stream
                .write_all(&request)
                .await
                .map_err(|e| format!("write: {e}"))?;
            let status = exchange_read(&mut stream, &mut buf).await?;
            let took = sent.elapsed();
            if phase.load(Ordering::Relaxed) == MEASURE {
                stats
                    .latencies
                    .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
                if !(200..300).contains(&status) {
                    stats.errors += 1;
                }
            }
        }
    }

    /// Reads one response (head and `Content-Length` body) off `stream` and returns its status.
    /// Bytes past it stay in `buf` (there are none without pipelining). Chunked bodies, missing
    /// lengths and `Connection: close` are errors: the harness measures keep-alive only.
    async fn exchange_read(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<u16, String> {
        loop {
            if let Some(head_end) = find_head_end(buf) {
                let (status, length) = parse_head(&buf[..head_end])?;
                let total = head_end + length;
                while buf.len() < total {
                    read_more(stream, buf).await?;
                }
                buf.drain(..total);
                return Ok(status);
            }
            read_more(stream, buf).await?;
        }
    }

    async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), String> {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        match stream.read_buf(buf).await {
            Ok(0) => Err("the server closed the connection".into()),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("read: {e}")),
        }
    }

    /// The length of the head including its blank line, once it has all arrived.
    fn find_head_end(buf: &[u8]) -> Option<usize> {
        buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
    }

    fn parse_head(head: &[u8]) -> Result<(u16, usize), String> {
        let text = std::str::from_utf8(head).map_err(|_| "response head is not UTF-8")?;
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let mut length = None;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| format!("bad Content-Length {value:?}"))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(format!(
                    "Transfer-Encoding {value:?}: the harness reads Content-Length bodies only"
                ));
            } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close")
            {
                return Err("the server answered Connection: close".into());
            }
        }
        length
            .map(|l| (status, l))
            .ok_or_else(|| format!("{status} response without Content-Length"))
    }

    /// Nearest-rank percentile of sorted values.
    fn percentile(sorted: &[u32], p: f64) -> u32 {
        if sorted.is_empty() {
            return 0;
        }
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    /// A `VmRSS:`/`VmHWM:` line of /proc/PID/status, in kB.
    fn proc_status_kb(pid: u32, key: &str) -> Result<u64, String> {
        let path = format!("/proc/{pid}/status");
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| format!("{path} has no {key}"))
    }

    /// Busy time of all CPUs from /proc/stat, in ticks: everything but idle and iowait (guest
    /// time is already inside user time).
    fn machine_busy_ticks() -> Result<u64, String> {
        let text = std::fs::read_to_string("/proc/stat").map_err(|e| format!("/proc/stat: {e}"))?;
        let line = text
            .lines()
            .find(|l| l.starts_with("cpu "))
            .ok_or("/proc/stat has no cpu line")?;
        let fields: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        // user nice system idle iowait irq softirq steal
        Ok(fields.iter().sum::<u64>() - fields.get(3).unwrap_or(&0) - fields.get(4).unwrap_or(&0))
    }

    /// User plus system CPU time of a process (all its threads, live and exited), in ticks.
    fn cpu_ticks(pid: &str) -> Result<u64, String> {
        let path = format!("/proc/{pid}/stat");
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        // Fields after the parenthesised command name start at field 3; utime and stime are 14, 15.
        let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
        match (field(11), field(12)) {
            (Some(user), Some(system)) => Ok(user + system),
            _ => Err(format!("{path}: cannot read utime/stime")),
        }
    }
}
