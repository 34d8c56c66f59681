//! The command line: `medianest [FLAGS] [COMMAND]`, `serve` by default. Flags that set
//! configuration keys are global, so they work before or after the command.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Overrides;

/// MediaNest: one portal for a home media server.
#[derive(Debug, Parser)]
#[command(name = "medianest", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (default: ./medianest.toml or /etc/medianest/medianest.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (server.listen).
    #[arg(long, global = true, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Data directory (data_dir).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log level or filter (log.level).
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Try MediaNest against simulated Plex, Overseerr and Uptime Kuma, with a throw-away data
    /// directory (kept when --data-dir is given) and printed logins. Uses no configuration file.
    Demo,
    /// Apply database migrations and exit.
    Migrate,
    /// Write a consistent copy of the database to FILE; safe while the server runs.
    Backup {
        /// Where to write the copy.
        file: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Put a backup in place of the database (the server must be stopped). The current database
    /// is moved aside, never deleted. Exits 0 when restored, 1 when refused or failed.
    Restore {
        /// The backup to restore (a file from backup.dir, `medianest backup` or a download).
        file: PathBuf,
        /// Check the file and print what would happen; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Exit 0 when the running server's /health/ready answers 200 (for container health checks).
    Healthcheck {
        /// Base URL of the server, with its base path (default: from server.listen and server.base_path).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
    /// Set a new random password for an account (prints it) and end its sessions.
    ResetAdminPassword {
        /// The account (default: admin).
        #[arg(long, default_value = "admin")]
        username: String,
    },
    /// Print a commented configuration file with every key and its default.
    DefaultConfig,
    /// Check yt-dlp, a JavaScript runtime, ffmpeg, the download and data dirs, the configured
    /// services and the webhook secret; print a fix for each problem. Exits 0 when nothing
    /// failed (warnings pass), 1 otherwise. Needs no running server.
    Doctor,
}

impl Cli {
    /// The configuration overrides given as flags.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            log_level: self.log_level.clone(),
        }
    }
}

/// Targets of the HTTP client and its TLS and protocol crates. Their own debug and trace output
/// writes request headers, where the Plex token and the Overseerr key travel, so they never log
/// below `info`.
pub const HTTP_CLIENT_TARGETS: [&str; 7] = [
    "ureq",
    "ureq_proto",
    "rustls",
    "hyper",
    "hyper_util",
    "h2",
    "http",
];

/// The log filter for `log.level`: the configured level or directives (`info` when they do not
/// parse), with [`HTTP_CLIENT_TARGETS`] capped at `info` whatever they say. A directive naming one
/// of those targets (or a module under it) keeps its level when that is `info` or quieter and is
/// lowered to `info` otherwise; a target not named gets the default level, at most `info`.
pub fn log_filter(level: &str) -> tracing_subscriber::EnvFilter {
    use tracing_subscriber::EnvFilter;
    EnvFilter::try_new(capped_log_directives(level))
        .or_else(|_| EnvFilter::try_new(capped_log_directives("info")))
        .unwrap_or_else(|_| EnvFilter::new("info"))
}

/// The directives [`log_filter`] builds from `level`.
pub fn capped_log_directives(level: &str) -> String {
    use std::str::FromStr;
    use tracing_subscriber::filter::LevelFilter;
    let level = if tracing_subscriber::EnvFilter::try_new(level).is_ok() {
        level
    } else {
        "info"
    };
    let capped = |l: LevelFilter| l.min(LevelFilter::INFO);
    let under = |target: &str, root: &str| {
        target == root
            || target
                .strip_prefix(root)
                .is_some_and(|rest| rest.starts_with("::"))
    };
    let mut default = LevelFilter::OFF;
    let mut named: Vec<&str> = Vec::new();
    let mut parts: Vec<String> = Vec::new();
    for part in level.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some((target, l)) => {
                let target = target.trim();
                let parsed = LevelFilter::from_str(l.trim()).ok();
                match (
                    HTTP_CLIENT_TARGETS.iter().find(|r| under(target, r)),
                    parsed,
                ) {
                    (Some(root), Some(l)) => {
                        if target == *root {
                            named.push(root);
                        }
                        parts.push(format!("{target}={}", capped(l)));
                    }
                    _ => parts.push(part.to_owned()),
                }
            }
            None => {
                if let Ok(l) = LevelFilter::from_str(part) {
                    default = l;
                }
                parts.push(part.to_owned());
            }
        }
    }
    for root in HTTP_CLIENT_TARGETS {
        if !named.contains(&root) {
            parts.push(format!("{root}={}", capped(default)));
        }
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use tracing::Level;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Whether an event of `target` at `level` passes the filter built for `config`.
    fn enabled(config: &str, target: &str, level: Level) -> bool {
        let subscriber = tracing_subscriber::registry().with(log_filter(config));
        tracing::subscriber::with_default(subscriber, || match (target, level) {
            ("ureq", Level::TRACE) => tracing::enabled!(target: "ureq", Level::TRACE),
            ("ureq", Level::DEBUG) => tracing::enabled!(target: "ureq", Level::DEBUG),
            ("ureq", Level::INFO) => tracing::enabled!(target: "ureq", Level::INFO),
            ("ureq", Level::WARN) => tracing::enabled!(target: "ureq", Level::WARN),
            ("ureq::unversioned", Level::DEBUG) => {
                tracing::enabled!(target: "ureq::unversioned", Level::DEBUG)
            }
            ("ureq_proto::client", Level::DEBUG) => {
                tracing::enabled!(target: "ureq_proto::client", Level::DEBUG)
            }
            ("rustls::client", Level::TRACE) => {
                tracing::enabled!(target: "rustls::client", Level::TRACE)
            }
            ("medianest", Level::TRACE) => tracing::enabled!(target: "medianest", Level::TRACE),
            ("medianest", Level::DEBUG) => tracing::enabled!(target: "medianest", Level::DEBUG),
            other => panic!("no probe for {other:?}"),
        })
    }

    #[test]
    fn the_http_client_never_logs_below_info() {
        for config in [
            "trace",
            "debug",
            "trace,ureq=trace",
            "debug,ureq::unversioned=trace,ureq_proto=debug",
            "not a filter",
        ] {
            for (target, level) in [
                ("ureq", Level::DEBUG),
                ("ureq", Level::TRACE),
                ("ureq::unversioned", Level::DEBUG),
                ("ureq_proto::client", Level::DEBUG),
                ("rustls::client", Level::TRACE),
            ] {
                assert!(
                    !enabled(config, target, level),
                    "{config}: {target} {level}"
                );
            }
        }
        // The rest of the configured filter stands.
        assert!(enabled("trace", "medianest", Level::TRACE));
        assert!(enabled("trace", "ureq", Level::INFO));
        assert!(enabled("info,medianest=debug", "medianest", Level::DEBUG));
        // Quieter than info stays quieter: the cap never raises a level.
        assert!(!enabled("warn", "ureq", Level::INFO));
        assert!(enabled("warn", "ureq", Level::WARN));
        assert!(!enabled("trace,ureq=warn", "ureq", Level::INFO));
        assert!(!enabled("medianest=trace", "ureq", Level::WARN));
        assert_eq!(
            capped_log_directives("debug,ureq=trace"),
            "debug,ureq=info,ureq_proto=info,rustls=info,hyper=info,hyper_util=info,h2=info,http=info"
        );
    }
}
