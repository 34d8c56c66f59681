//! The `medianest` binary: parse the command line, load the configuration, start logging, run the
//! command. Everything else lives in the library.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use medianest::cli::{Cli, Command};
use medianest::config::{Config, DEFAULT_CONFIG_TOML, LogFormat};

fn main() -> ExitCode {
    // The simulated yt-dlp of the tests and the demo is this binary under another name.
    if let Some(code) = medianest::sim::ytdlp::run_if_invoked() {
        return code;
    }
    tune_malloc();
    let cli = Cli::parse();
    let command = cli.command.as_ref().unwrap_or(&Command::Serve);
    if let Command::DefaultConfig = command {
        print!("{DEFAULT_CONFIG_TOML}");
        return ExitCode::SUCCESS;
    }
    // The demo builds its own configuration: no file, no environment.
    if let Command::Demo = command {
        return exit_code(demo(&cli));
    }
    let config = match Config::load(cli.config.as_deref(), &cli.overrides()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("medianest: {e}");
            return ExitCode::from(2);
        }
    };
    if let Command::Doctor = command {
        return doctor(config, cli.log_level.is_some());
    }
    init_logging(&config);
    let result = match command {
        Command::Serve => serve(config),
        Command::Demo => Ok(()),
        Command::Migrate => migrate(&config),
        Command::Backup { file, force } => backup(&config, file, *force),
        Command::Restore { file, dry_run } => restore(&config, file, *dry_run),
        Command::Healthcheck { url } => healthcheck(&config, url.as_deref()),
        Command::ResetAdminPassword { username } => reset_admin_password(&config, username),
        Command::DefaultConfig | Command::Doctor => Ok(()),
    };
    exit_code(result)
}

/// `medianest doctor`: its report on stdout; exit 0 when no check failed, 1 when one did.
fn doctor(mut config: Config, log_level_given: bool) -> ExitCode {
    // The report says what failed; the upstream layer's own warnings would repeat it.
    if !log_level_given {
        config.log.level = "error".into();
    }
    init_logging(&config);
    match medianest::doctor::command(config) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("medianest: {message}");
            ExitCode::from(2)
        }
    }
}

fn exit_code(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("medianest: {message}");
            ExitCode::FAILURE
        }
    }
}

/// glibc's malloc raises its mmap threshold after the first large block is freed, so every later
/// argon2 hash (19 MiB) comes from a per-thread arena and stays resident: RSS grew from 10 MB to
/// 86-181 MB after a few sign-ins. A fixed threshold keeps large blocks mmap'd and returned on
/// free. glibc reads it only at start, so the process re-executes itself once with it set.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    use std::os::unix::process::CommandExt;
    const VAR: &str = "MALLOC_MMAP_THRESHOLD_";
    if std::env::var_os(VAR).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    let error = std::process::Command::new(&exe)
        .arg0(arg0)
        .args(args)
        .env(VAR, "131072")
        .exec();
    // exec returns only when it failed: run untuned rather than not at all.
    eprintln!("medianest: could not re-execute with malloc tuning ({error}); continuing");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

fn init_logging(config: &Config) {
    // The HTTP client's own targets are capped at info: their debug output holds header values.
    let filter = medianest::cli::log_filter(&config.log.level);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match config.log.format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().with_current_span(true).init(),
    }
    // Panics go to the log with their location; the request they happened in answers 500.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(%location, "panic: {info}");
    }));
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Database, upstream and password work all queue on their own semaphores first; this is
        // the ceiling behind them.
        .max_blocking_threads(64)
        .thread_name("medianest")
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

fn serve(config: Config) -> Result<(), String> {
    let listen = config.server.listen;
    let state =
        medianest::bootstrap(config, medianest::clock::system()).map_err(|e| e.to_string())?;
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let server = &state.config().server;
        tracing::info!(
            version = medianest::VERSION,
            data_dir = %state.config().data_dir.display(),
            "MediaNest is listening on http://{local}{}/",
            server.base()
        );
        if let Some(origin) = server.public_origin() {
            tracing::info!("MediaNest is reached at {origin}{}/", server.base());
        }
        medianest::serve(listener, state, shutdown_signal())
            .await
            .map_err(|e| format!("server error: {e}"))
    })
}

fn demo(cli: &Cli) -> Result<(), String> {
    if cli.config.is_some() {
        return Err("the demo uses no configuration file; drop --config".into());
    }
    let demo = medianest::demo::Demo::new(medianest::demo::Options {
        listen: cli.listen,
        data_dir: cli.data_dir.clone(),
        log_level: cli.log_level.clone(),
    })?;
    init_logging(demo.config());
    runtime()?.block_on(demo.run(shutdown_signal()))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn migrate(config: &Config) -> Result<(), String> {
    medianest::platform::fs::check_data_dir(&config.data_dir, config.database.allow_network_fs)?;
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", config.data_dir.display()))?;
    let _lock = medianest::backups::lock::DataLock::acquire(&config.data_dir)
        .map_err(|e| format!("{e}; stop it first"))?;
    let now = medianest::clock::system().now_ms();
    if let Some(file) = medianest::backups::before_migration(config, now)? {
        println!("backed up the database first: {}", file.display());
    }
    let db = medianest::db::Db::open(medianest::db::Location::File(config.database_path()), 1)
        .map_err(|e| e.to_string())?;
    let applied = db.migrate_blocking().map_err(|e| e.to_string())?;
    println!(
        "database {}: schema version {} -> {}",
        config.database_path().display(),
        applied.from,
        applied.to
    );
    Ok(())
}

fn reset_admin_password(config: &Config, username: &str) -> Result<(), String> {
    let path = config.database_path();
    if !path.is_file() {
        return Err(format!("no database at {}", path.display()));
    }
    let db = medianest::db::Db::open_file(&path, 1).map_err(|e| e.to_string())?;
    let conn = db.connection_blocking().map_err(|e| e.to_string())?;
    let password = medianest::auth::first_run::reset_password(&conn, username)?;
    println!("New password for {username}: {password}");
    println!(
        "It must be changed at the next sign-in; the account's sessions have ended and its \
         sign-in lockouts are cleared."
    );
    Ok(())
}

fn backup(config: &Config, file: &std::path::Path, force: bool) -> Result<(), String> {
    let bytes = medianest::db::backup_file(&config.database_path(), file, force)
        .map_err(|e| format!("backup failed: {e}"))?;
    println!("wrote {} ({bytes} bytes)", file.display());
    Ok(())
}

fn restore(config: &Config, file: &std::path::Path, dry_run: bool) -> Result<(), String> {
    let now = medianest::clock::system().now_ms();
    let plan = medianest::backups::restore::restore(config, file, dry_run, now)
        .map_err(|e| format!("restore refused: {e}"))?;
    for line in plan {
        println!("{line}");
    }
    Ok(())
}

fn healthcheck(config: &Config, url: Option<&str>) -> Result<(), String> {
    let base = match url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let mut addr = config.server.listen;
            // A wildcard listen address is reachable on loopback.
            if addr.ip().is_unspecified() {
                let ip = match addr.ip() {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
                };
                addr = SocketAddr::new(ip, addr.port());
            }
            format!("http://{addr}{}", config.server.base())
        }
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .into();
    // The readiness route under the base: the configured listen address with
    // `server.base_path`, or `--url` (which names the base, path included).
    let url = format!("{base}/health/ready");
    let response = agent.get(&url).call().map_err(|e| format!("{url}: {e}"))?;
    if response.status() == 200 {
        println!("ready");
        Ok(())
    } else {
        Err(format!("{url} answered {}", response.status()))
    }
}
