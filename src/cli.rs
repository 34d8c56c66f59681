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
    /// Exit 0 when the running server's /health/ready answers 200 (for container health checks).
    Healthcheck {
        /// Base URL of the server (default: from server.listen).
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
