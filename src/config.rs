//! Configuration: one typed [`Config`], built from layers where the later wins:
//! built-in defaults < TOML file < `MEDIANEST_*` environment < command-line flags.
//!
//! Every key is known: an unknown key or a bad value stops the start with one line that names the
//! key and the reason. Secrets are wrapped in [`Secret`] so `Debug` output never shows them.
//! This module only reads and validates; it creates no files (see `crate::data_dir`).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The environment variable prefix for configuration keys (`MEDIANEST_SERVER__LISTEN`).
pub const ENV_PREFIX: &str = "MEDIANEST_";

/// Environment variables with the prefix that are not configuration keys (or are aliases).
const ENV_NOT_KEYS: &[&str] = &["CONFIG", "SECRET_KEY", "ADMIN_PASSWORD"];

/// A configuration error: which key, and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("configuration key `{key}`: {reason}")]
    Key { key: String, reason: String },
}

/// A string that must never be printed: `Debug` and `Display` show `"****"`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"****\"")
    }
}

/// The whole configuration. Field names are the TOML keys.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub log: LogConfig,
    pub database: DatabaseConfig,
    pub admin: AdminConfig,
    pub auth: AuthConfig,
    pub plex: PlexConfig,
    pub health: HealthConfig,
    pub quotas: QuotasConfig,
    pub limits: LimitsConfig,
    pub youtube: YoutubeConfig,
    pub overseerr: OverseerrConfig,
    pub webhooks: WebhooksConfig,
    pub metrics: MetricsConfig,
    pub monitor: MonitorConfig,
    pub backup: BackupConfig,
    pub services: ServicesConfig,
    pub notifications: NotificationsConfig,
    pub push: PushConfig,
    pub images: ImagesConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            server: ServerConfig::default(),
            log: LogConfig::default(),
            database: DatabaseConfig::default(),
            admin: AdminConfig::default(),
            auth: AuthConfig::default(),
            plex: PlexConfig::default(),
            health: HealthConfig::default(),
            quotas: QuotasConfig::default(),
            limits: LimitsConfig::default(),
            youtube: YoutubeConfig::default(),
            overseerr: OverseerrConfig::default(),
            webhooks: WebhooksConfig::default(),
            metrics: MetricsConfig::default(),
            monitor: MonitorConfig::default(),
            backup: BackupConfig::default(),
            services: ServicesConfig::default(),
            notifications: NotificationsConfig::default(),
            push: PushConfig::default(),
            images: ImagesConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// The address people use to reach MediaNest (`https://media.example.com`); sets the origin
    /// for CSRF checks and absolute URLs, Secure cookies and HSTS. A path in it must be
    /// `base_path`.
    pub public_url: Option<String>,
    /// The path prefix MediaNest is served under behind a reverse proxy (`/medianest`), or empty
    /// for the root. Every route, the cookie path and the URLs MediaNest writes live under it.
    pub base_path: String,
    /// Peers whose `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host` are believed
    /// (reverse proxies): addresses or CIDR ranges.
    pub trusted_proxies: crate::net::TrustedProxies,
    /// Mark the session cookie Secure even without an https `public_url`.
    pub secure_cookies: bool,
    /// Whole-request time limit in seconds.
    pub request_timeout_secs: u64,
    /// How long a shutdown waits for in-flight requests, in seconds.
    pub shutdown_grace_secs: u64,
    /// A request head (request line and headers) must arrive within this many seconds of the
    /// connection opening or of its first byte; else the connection is closed.
    pub header_read_timeout_secs: u64,
    /// A kept-alive connection with no request for this many seconds is closed (a request in
    /// flight or a live-event stream is never cut by it).
    pub keepalive_idle_secs: u64,
    /// Open connections at most, in total. At the cap the longest-idle kept-alive connection is
    /// closed to make room; only when none is idle is a new one closed as soon as it is accepted.
    pub max_connections: u32,
    /// Open connections at most per client address (the socket peer, an IPv6 one by its /64;
    /// `trusted_proxies` are exempt, as they carry everyone).
    pub max_connections_per_ip: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 4000)),
            public_url: None,
            base_path: String::new(),
            trusted_proxies: crate::net::TrustedProxies::default(),
            secure_cookies: false,
            request_timeout_secs: 30,
            shutdown_grace_secs: 10,
            header_read_timeout_secs: 10,
            keepalive_idle_secs: 60,
            max_connections: 2048,
            max_connections_per_ip: 32,
        }
    }
}

impl ServerConfig {
    /// Whether cookies get the Secure flag: asked for, or served over https.
    pub fn cookies_secure(&self) -> bool {
        self.secure_cookies || self.is_https()
    }

    /// `base_path` as served: empty for the root, else `/name` (no trailing slash).
    pub fn base(&self) -> &str {
        self.base_path.trim_end_matches('/')
    }

    /// The `Path` of the cookies MediaNest sets: the base path, `/` at the root.
    pub fn cookie_path(&self) -> &str {
        match self.base() {
            "" => "/",
            base => base,
        }
    }

    /// The path the application sees for a request `path` under the base path (`/medianest/x`
    /// is `/x`, `/medianest/` is `/`), or None when the request is outside it.
    pub fn app_path<'a>(&self, path: &'a str) -> Option<&'a str> {
        let base = self.base();
        if base.is_empty() {
            return Some(path);
        }
        path.strip_prefix(base).filter(|rest| rest.starts_with('/'))
    }

    /// The origin (`https://home.example:8443`) of `public_url`, when it is set.
    pub fn public_origin(&self) -> Option<String> {
        let url = url::Url::parse(self.public_url.as_deref()?).ok()?;
        Some(url.origin().ascii_serialization())
    }

    /// True when `public_url` is https.
    pub fn is_https(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A level (`error`, `warn`, `info`, `debug`, `trace`) or a filter (`info,medianest=debug`).
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Pretty,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// SQLite connections in the pool (and blocking database jobs at once).
    pub pool_size: u32,
    /// Start even when the data dir is on a network filesystem (NFS, SMB/CIFS, 9p ...), where
    /// SQLite's locks and write-ahead log are not reliable (`platform::fs::storage_verdict`).
    pub allow_network_fs: bool,
    /// On shutdown, fold the write-ahead log into the database file and truncate it
    /// (`wal_checkpoint(TRUNCATE)`); off under Litestream, which runs the checkpoints itself.
    pub checkpoint_on_exit: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            pool_size: 8,
            allow_network_fs: false,
            checkpoint_on_exit: true,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Password of the first `admin` account, for unattended installs (else a random one).
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlexSignup {
    /// The server owner and the accounts it shares the server with.
    ServerMembers,
    /// Any Plex account.
    Open,
    /// Only accounts that already exist here.
    Closed,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub session_hours: u32,
    pub remember_days: u32,
    pub plex_signup: PlexSignup,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_hours: 24,
            remember_days: 30,
            plex_signup: PlexSignup::ServerMembers,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlexConfig {
    /// The `X-Plex-Client-Identifier`; generated once and kept in the data dir when unset.
    pub client_id: Option<String>,
    pub tv_url: String,
    pub app_url: String,
    /// Title of the Plex library that receives YouTube downloads.
    pub youtube_library: Option<String>,
    /// Title of the Plex library (of type TV Shows) that receives subscriptions' episodes.
    pub subscriptions_library: Option<String>,
    /// Memory for proxied Plex images, in MiB.
    pub image_cache_mb: u64,
    /// Memory for the Plex browse caches (pages, search, collections), in MiB.
    pub browse_cache_mb: u64,
    /// plex.tv's discover/metadata provider: users' watchlists and the online metadata that
    /// maps a watchlist item to its TMDB id (`crate::watchlist::client`).
    pub discover_url: String,
    /// The admin's switch for watchlist auto-requests: `false` turns the feature off for
    /// everyone (no checks run, and users cannot switch it on).
    pub watchlist_sync: bool,
    /// Minutes between two checks of one user's watchlist (each user's next check gets up to a
    /// tenth more at random).
    pub watchlist_interval_mins: u64,
}

impl Default for PlexConfig {
    fn default() -> Self {
        Self {
            client_id: None,
            tv_url: "https://plex.tv".into(),
            app_url: "https://app.plex.tv".into(),
            youtube_library: None,
            subscriptions_library: None,
            image_cache_mb: 32,
            browse_cache_mb: 16,
            discover_url: "https://discover.provider.plex.tv".into(),
            watchlist_sync: true,
            watchlist_interval_mins: 15,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    pub interval_secs: u64,
    pub degraded_ms: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            interval_secs: 30,
            degraded_ms: 1000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotasConfig {
    pub requests_per_hour: u32,
    pub downloads_per_hour: u32,
}

impl Default for QuotasConfig {
    fn default() -> Self {
        Self {
            requests_per_hour: 20,
            downloads_per_hour: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub ip_per_second: u32,
    pub ip_burst: u32,
    pub user_per_minute: u32,
    pub login_failures_per_username: u32,
    pub login_failures_per_ip: u32,
    /// Longest wait between one client's sign-in attempts at a username once the username has
    /// had `login_failures_per_username` failures in the window (from any client); the wait runs
    /// from that client's own last attempt and doubles from 1 s per further failure up to this.
    pub login_delay_max_secs: u64,
    pub pin_per_ip: u32,
    /// Rows a user's `POST /errors/report` calls may add to the error log per hour (repeats of
    /// a recent report are counted on its row and add none).
    pub error_reports_per_hour: u32,
    /// Live-event streams (`/api/v1/events`) open at once per user.
    pub events_per_user: u32,
    /// Live-event streams open at once per client IP.
    pub events_per_ip: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            ip_per_second: 50,
            ip_burst: 100,
            user_per_minute: 600,
            login_failures_per_username: 5,
            login_failures_per_ip: 20,
            login_delay_max_secs: 30,
            pin_per_ip: 10,
            error_reports_per_hour: 30,
            events_per_user: 5,
            events_per_ip: 20,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct YoutubeConfig {
    pub ytdlp_path: String,
    /// Where downloads go; `<data_dir>/downloads` when unset.
    pub download_dir: Option<PathBuf>,
    pub workers: u32,
    pub max_user_bytes: u64,
    /// A download that prints nothing for this long is stopped and fails.
    pub stall_timeout_secs: u64,
    /// `yt-dlp -J` runs for previews (`GET /youtube/metadata`) at once, apart from the workers.
    pub preview_slots: u32,
    /// Previews one user may have in flight; more answer 429.
    pub previews_per_user: u32,
    /// Playlist items a preview lists (`yt-dlp -I 1:N`), so a playlist of thousands answers in
    /// time; the total comes from yt-dlp when it knows it.
    pub preview_items: u32,
    /// A cookies file (Netscape format) yt-dlp gets as `--cookies`; one uploaded on the admin
    /// page takes its place.
    pub cookies_file: Option<PathBuf>,
    /// Arguments added to every yt-dlp run (e.g. `["--js-runtimes", "node"]`); options that
    /// would break the worker are refused (`youtube::ytdlp::check_extra_args`).
    pub extra_args: Vec<String>,
    /// The download dir as Plex sees it (when Plex runs elsewhere, e.g. in a container); the
    /// same path when unset.
    pub plex_path: Option<PathBuf>,
    /// Octal mode of each downloaded file, set after yt-dlp finishes (whatever the umask).
    pub file_mode: String,
    /// Octal mode of the folders MediaNest made for a download.
    pub dir_mode: String,
    /// A group name or gid the downloaded files and folders are given (e.g. the group Plex
    /// runs as); unchanged when unset.
    pub group: Option<String>,
    /// Subscriptions a user (not an admin) may have active, paused or proposed at once.
    pub max_subscriptions_per_user: u32,
}

impl Default for YoutubeConfig {
    fn default() -> Self {
        Self {
            ytdlp_path: "yt-dlp".into(),
            download_dir: None,
            workers: 1,
            max_user_bytes: 10 * 1024 * 1024 * 1024,
            stall_timeout_secs: 600,
            preview_slots: 4,
            previews_per_user: 2,
            preview_items: 50,
            cookies_file: None,
            extra_args: Vec::new(),
            plex_path: None,
            file_mode: "0644".into(),
            dir_mode: "0755".into(),
            group: None,
            max_subscriptions_per_user: 5,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OverseerrConfig {
    /// Submit requests of users with no Overseerr account as Overseerr's admin.
    pub fallback_to_admin: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    pub overseerr_secret: Option<Secret>,
}

/// Notification delivery (issue 14). Channel settings are the admin's, in the database.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsConfig {
    /// Where Discord webhooks live. Only for tests and the demo: another value makes webhook
    /// URLs on exactly that scheme, host and port the only ones accepted, instead of Discord's.
    pub discord_base_url: String,
    /// The first retry of a delivery that failed for a passing reason waits this long (seconds);
    /// each further one twice as long, with jitter, up to `retry_max_secs`.
    pub retry_min_secs: u64,
    /// The longest wait between two tries of one delivery (seconds).
    pub retry_max_secs: u64,
    /// A delivery still failing this many hours after it was made is given up (at most 48).
    pub give_up_hours: u64,
    /// Most messages one user gets on one channel in an hour; more wait for the next hour.
    pub max_per_user_hour: u32,
    /// Repeated `service.down` / `service.recovered` for one service fold into one message per
    /// this many seconds, per user and channel.
    pub flap_window_secs: u64,
    /// Deliveries in flight at once on one channel.
    pub per_channel_concurrency: u32,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self {
            discord_base_url: crate::notifications::channels::discord::DEFAULT_BASE_URL.into(),
            retry_min_secs: 60,
            retry_max_secs: 6 * 3600,
            give_up_hours: 24,
            max_per_user_hour: 20,
            flap_window_secs: 15 * 60,
            per_channel_concurrency: 4,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// When set, `/metrics` wants `Authorization: Bearer <token>`. Unset, `/metrics` is open on a
    /// loopback listen address (except to requests a proxy forwarded) and wants an admin session
    /// otherwise.
    pub token: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    pub slow_ms: u64,
    pub memory_warn_mb: u64,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            slow_ms: 1000,
            memory_warn_mb: 256,
        }
    }
}

/// How often the server backs the database up by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupSchedule {
    Off,
    Hourly,
    Daily,
    Weekly,
}

/// Scheduled backups (`crate::backups`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    pub schedule: BackupSchedule,
    /// Where backups go (default `<data_dir>/backups`).
    pub dir: Option<PathBuf>,
    /// Scheduled backups kept; older ones are removed (0 keeps them all).
    pub keep: u32,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            schedule: BackupSchedule::Daily,
            dir: None,
            keep: 7,
        }
    }
}

/// Web Push (`crate::push`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// The VAPID `sub` claim: a `mailto:` or `https:` contact push services can reach.
    pub subject: String,
    /// Accept `http://` subscription endpoints on loopback (tests and the demo only).
    pub allow_http_endpoints: bool,
    /// Whole-call timeout of one push to a push service, in seconds.
    pub timeout_secs: u64,
    /// Hosts a subscription's endpoint may name: the browsers' push services. An entry starting
    /// with a dot allows every name under it.
    pub endpoint_hosts: Vec<String>,
}

/// The push services of Chrome and Edge (FCM), Firefox (Mozilla autopush), Safari (Apple) and
/// the older Edge (WNS).
pub const PUSH_SERVICE_HOSTS: [&str; 5] = [
    "fcm.googleapis.com",
    "android.googleapis.com",
    ".push.services.mozilla.com",
    ".push.apple.com",
    ".notify.windows.com",
];

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            endpoint_hosts: PUSH_SERVICE_HOSTS.iter().map(|h| (*h).to_owned()).collect(),
            subject: "mailto:admin@localhost".into(),
            allow_http_endpoints: false,
            timeout_secs: 10,
        }
    }
}

/// Posters and backdrops served from our own origin (`crate::images`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImagesConfig {
    /// Where TMDB images are fetched from: `{tmdb_base_url}/{size}/{file}`.
    pub tmdb_base_url: String,
    /// Disk budget of the image cache (`<data_dir>/cache/images`), in MiB.
    pub cache_mb: u64,
    /// The largest image fetched, in KiB; a bigger answer is refused and not kept.
    pub max_image_kb: u64,
    /// Whole-fetch time limit of one image, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for ImagesConfig {
    fn default() -> Self {
        Self {
            tmdb_base_url: "https://image.tmdb.org/t/p".into(),
            cache_mb: 256,
            max_image_kb: 5120,
            timeout_ms: 10_000,
        }
    }
}

/// Seeds for the service connections, read on first start only.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServicesConfig {
    pub plex: ServiceSeed,
    pub overseerr: ServiceSeed,
    pub uptime_kuma: ServiceSeed,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceSeed {
    pub url: Option<String>,
    pub api_key: Option<Secret>,
    /// Uptime Kuma status page slug.
    pub slug: Option<String>,
    pub enabled: bool,
}

impl Default for ServiceSeed {
    fn default() -> Self {
        Self {
            url: None,
            api_key: None,
            slug: None,
            enabled: true,
        }
    }
}

/// Values given on the command line; they win over every other layer.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub log_level: Option<String>,
}

impl Config {
    /// Loads the configuration: the file (explicit path, else `MEDIANEST_CONFIG`, else
    /// `./medianest.toml` or `/etc/medianest/medianest.toml` when present), then the
    /// environment, then the overrides.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let file = match file {
            Some(path) => Some(path.to_path_buf()),
            None => find_config_file(&env),
        };
        let text = match &file {
            Some(path) => Some(
                std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                    path: path.clone(),
                    reason: e.to_string(),
                })?,
            ),
            None => None,
        };
        Self::from_layers(text.as_deref(), file.as_deref(), &env, overrides)
    }

    /// Builds the configuration from the file's text, environment pairs and overrides; pure, so
    /// tests do not touch the process environment.
    pub fn from_layers(
        toml_text: Option<&str>,
        toml_path: Option<&Path>,
        env: &[(String, String)],
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let mut root = match toml_text {
            Some(text) => text.parse::<toml::Table>().map_err(|e| ConfigError::File {
                path: toml_path.map_or_else(|| PathBuf::from("<config>"), Path::to_path_buf),
                reason: e.message().to_string(),
            })?,
            None => toml::Table::new(),
        };
        let defaults = toml::Table::try_from(Config::default()).map_err(|e| ConfigError::Key {
            key: "<defaults>".into(),
            reason: e.to_string(),
        })?;
        // The file's `[services.seerr]` becomes `[services.overseerr]` first, and the
        // environment writes either spelling there, so an environment value overrides the
        // file's whatever name each uses.
        fold_seerr_alias(&mut root)?;
        let mut from_env: std::collections::HashMap<Vec<String>, &str> = Default::default();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let path: Vec<String> = if rest == "ADMIN_PASSWORD" {
                vec!["admin".into(), "password".into()]
            } else if ENV_NOT_KEYS.contains(&rest) || rest.is_empty() {
                continue;
            } else {
                rest.split("__").map(str::to_ascii_lowercase).collect()
            };
            let target = alias_target(&path);
            if let Some(other) = from_env.insert(target.clone(), name.as_str()) {
                return Err(ConfigError::Key {
                    key: target.join("."),
                    reason: format!(
                        "{other} and {name} set the same key (SEERR is OVERSEERR's new name): \
                         keep one of them"
                    ),
                });
            }
            let typed =
                env_value(&defaults, &target, value).map_err(|reason| ConfigError::Key {
                    key: format!("{} (from {name})", path.join(".")),
                    reason,
                })?;
            set_path(&mut root, &target, typed).map_err(|reason| ConfigError::Key {
                key: path.join("."),
                reason,
            })?;
        }
        let mut config = Self::from_table(root)?;
        if let Some(listen) = overrides.listen {
            config.server.listen = listen;
        }
        if let Some(dir) = &overrides.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(level) = &overrides.log_level {
            config.log.level = level.clone();
        }
        config.validate()?;
        Ok(config)
    }

    fn from_table(root: toml::Table) -> Result<Self, ConfigError> {
        let value = toml::Value::Table(root);
        serde_path_to_error::deserialize(value).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner().to_string();
            ConfigError::Key {
                key: if key == "." { "<root>".into() } else { key },
                // toml repeats the key on a second line; one line is enough.
                reason: inner.lines().next().unwrap_or("").trim().to_string(),
            }
        })
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: &str| {
            Err(ConfigError::Key {
                key: key.into(),
                reason: reason.into(),
            })
        };
        if self.data_dir.as_os_str().is_empty() {
            return bad("data_dir", "must not be empty");
        }
        if !is_log_filter(&self.log.level) {
            return bad(
                "log.level",
                "must be error, warn, info, debug, trace or a filter such as info,medianest=debug",
            );
        }
        if !(1..=64).contains(&self.database.pool_size) {
            return bad("database.pool_size", "must be between 1 and 64");
        }
        if self.server.request_timeout_secs == 0 {
            return bad("server.request_timeout_secs", "must be at least 1");
        }
        if self
            .backup
            .dir
            .as_ref()
            .is_some_and(|d| d.as_os_str().is_empty())
        {
            return bad(
                "backup.dir",
                "must not be empty (leave it out for data_dir/backups)",
            );
        }
        if self.backup.keep > 10_000 {
            return bad(
                "backup.keep",
                "must be at most 10000 (0 keeps every backup)",
            );
        }
        for (key, value) in [
            (
                "server.header_read_timeout_secs",
                self.server.header_read_timeout_secs,
            ),
            (
                "server.keepalive_idle_secs",
                self.server.keepalive_idle_secs,
            ),
            ("server.max_connections", self.server.max_connections.into()),
            (
                "server.max_connections_per_ip",
                self.server.max_connections_per_ip.into(),
            ),
            ("limits.events_per_user", self.limits.events_per_user.into()),
            ("limits.events_per_ip", self.limits.events_per_ip.into()),
        ] {
            if value == 0 {
                return bad(key, "must be at least 1");
            }
        }
        // A day is plenty, and a deadline of `now + seconds` must stay representable.
        for (key, value) in [
            (
                "server.header_read_timeout_secs",
                self.server.header_read_timeout_secs,
            ),
            (
                "server.keepalive_idle_secs",
                self.server.keepalive_idle_secs,
            ),
        ] {
            if value > MAX_CONNECTION_TIMEOUT_SECS {
                return bad(
                    key,
                    &format!("must be at most {MAX_CONNECTION_TIMEOUT_SECS}"),
                );
            }
        }
        if let Some(url) = &self.server.public_url {
            check_http_url(url).or_else(|r| bad("server.public_url", &r))?;
        }
        check_base_path(&self.server.base_path).or_else(|r| bad("server.base_path", &r))?;
        if let Some(url) = &self.server.public_url
            && let Ok(parsed) = url::Url::parse(url)
        {
            // MediaNest serves under the path the browser uses: a proxy that strips or changes
            // the prefix would break the dashboard's links and the cookie's Path.
            let path = parsed.path().trim_end_matches('/');
            if !path.is_empty() && path != self.server.base() {
                return bad(
                    "server.public_url",
                    &format!(
                        "`{url}` has the path `{path}` but server.base_path is `{}`: set \
                         server.base_path = \"{path}\" (the proxy must pass the prefix on \
                         unchanged) or leave the path out of public_url",
                        self.server.base_path
                    ),
                );
            }
        }
        check_http_url(&self.plex.tv_url).or_else(|r| bad("plex.tv_url", &r))?;
        check_http_url(&self.plex.app_url).or_else(|r| bad("plex.app_url", &r))?;
        check_http_url(&self.plex.discover_url).or_else(|r| bad("plex.discover_url", &r))?;
        if !(1..=1440).contains(&self.plex.watchlist_interval_mins) {
            return bad("plex.watchlist_interval_mins", "must be between 1 and 1440");
        }
        check_http_url(&self.notifications.discord_base_url)
            .or_else(|r| bad("notifications.discord_base_url", &r))?;
        let n = &self.notifications;
        if n.retry_max_secs < n.retry_min_secs {
            return bad(
                "notifications.retry_max_secs",
                "must be at least notifications.retry_min_secs",
            );
        }
        // The delivery log's health line reads rows up to two days old as still changing.
        if !(1..=86_400).contains(&n.retry_min_secs) {
            return bad(
                "notifications.retry_min_secs",
                "must be between 1 and 86400",
            );
        }
        if n.retry_max_secs > 7 * 86_400 {
            return bad(
                "notifications.retry_max_secs",
                "must be at most 604800 (7 days)",
            );
        }
        if n.flap_window_secs > 86_400 {
            return bad(
                "notifications.flap_window_secs",
                "must be at most 86400 (a day)",
            );
        }
        if n.give_up_hours == 0 || n.give_up_hours > 48 {
            return bad("notifications.give_up_hours", "must be between 1 and 48");
        }
        if n.max_per_user_hour == 0 {
            return bad("notifications.max_per_user_hour", "must be at least 1");
        }
        // Six channels at the most share the blocking pool with the database.
        if !(1..=8).contains(&n.per_channel_concurrency) {
            return bad(
                "notifications.per_channel_concurrency",
                "must be between 1 and 8",
            );
        }
        if self.auth.session_hours == 0 {
            return bad("auth.session_hours", "must be at least 1");
        }
        if self.auth.remember_days == 0 {
            return bad("auth.remember_days", "must be at least 1");
        }
        if self.health.interval_secs < 5 {
            return bad("health.interval_secs", "must be at least 5");
        }
        if self.limits.ip_per_second == 0 || self.limits.ip_burst == 0 {
            return bad("limits.ip_per_second", "must be at least 1");
        }
        if self.limits.user_per_minute == 0 {
            return bad("limits.user_per_minute", "must be at least 1");
        }
        if !(1..=3600).contains(&self.limits.login_delay_max_secs) {
            return bad("limits.login_delay_max_secs", "must be between 1 and 3600");
        }
        if !(1..=1024).contains(&self.plex.image_cache_mb) {
            return bad("plex.image_cache_mb", "must be between 1 and 1024");
        }
        if !(1..=1024).contains(&self.plex.browse_cache_mb) {
            return bad("plex.browse_cache_mb", "must be between 1 and 1024");
        }
        if !(1..=16).contains(&self.youtube.workers) {
            return bad("youtube.workers", "must be between 1 and 16");
        }
        if !(1..=64).contains(&self.youtube.preview_slots) {
            return bad("youtube.preview_slots", "must be between 1 and 64");
        }
        if self.youtube.previews_per_user == 0 {
            return bad("youtube.previews_per_user", "must be at least 1");
        }
        if self.youtube.max_subscriptions_per_user > 10_000 {
            return bad(
                "youtube.max_subscriptions_per_user",
                "must be between 0 and 10000",
            );
        }
        if !(1..=1000).contains(&self.youtube.preview_items) {
            return bad("youtube.preview_items", "must be between 1 and 1000");
        }
        if let Err(reason) = crate::youtube::ytdlp::check_extra_args(&self.youtube.extra_args) {
            return bad("youtube.extra_args", &reason);
        }
        if self.youtube.stall_timeout_secs == 0 {
            return bad("youtube.stall_timeout_secs", "must be at least 1");
        }
        if let Err(reason) = crate::youtube::perms::file_mode(&self.youtube.file_mode) {
            return bad("youtube.file_mode", &reason);
        }
        if let Err(reason) = crate::youtube::perms::dir_mode(&self.youtube.dir_mode) {
            return bad("youtube.dir_mode", &reason);
        }
        if let Some(group) = &self.youtube.group
            && let Err(reason) = crate::youtube::perms::resolve_group(group)
        {
            return bad("youtube.group", &reason);
        }
        if self.admin.password.as_ref().is_some_and(|p| {
            let n = p.expose().chars().count();
            !(10..=256).contains(&n)
        }) {
            return bad("admin.password", "must be 10 to 256 characters long");
        }
        for (name, seed) in [
            ("plex", &self.services.plex),
            ("overseerr", &self.services.overseerr),
            ("uptime_kuma", &self.services.uptime_kuma),
        ] {
            if let Some(url) = &seed.url {
                check_service_url(url).or_else(|r| bad(&format!("services.{name}.url"), &r))?;
            }
        }
        if let Err(reason) = crate::push::check_subject(&self.push.subject) {
            return bad("push.subject", &reason);
        }
        if !(1..=60).contains(&self.push.timeout_secs) {
            return bad("push.timeout_secs", "must be between 1 and 60");
        }
        let images = &self.images;
        check_service_url(&images.tmdb_base_url).or_else(|r| bad("images.tmdb_base_url", &r))?;
        if !(1..=1_048_576).contains(&images.cache_mb) {
            return bad("images.cache_mb", "must be between 1 and 1048576");
        }
        // One image must fit the cache, or it would evict itself as soon as it is kept.
        if images.max_image_kb == 0 || images.max_image_kb > images.cache_mb.saturating_mul(1024) {
            return bad(
                "images.max_image_kb",
                "must be at least 1 and at most images.cache_mb x 1024",
            );
        }
        if !(50..=120_000).contains(&images.timeout_ms) {
            return bad("images.timeout_ms", "must be between 50 and 120000");
        }
        Ok(())
    }

    /// Where downloads go.
    pub fn download_dir(&self) -> PathBuf {
        self.youtube
            .download_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("downloads"))
    }

    /// The database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("medianest.db")
    }

    /// Where backups go.
    pub fn backup_dir(&self) -> PathBuf {
        self.backup
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("backups"))
    }
}

/// A level, or comma-separated `target=level` directives (a subset of tracing's filter syntax
/// that catches typos such as `inf`).
fn is_log_filter(text: &str) -> bool {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let is_level = |s: &str| LEVELS.contains(&s.trim().to_ascii_lowercase().as_str());
    !text.trim().is_empty()
        && text.split(',').all(|part| match part.split_once('=') {
            Some((target, level)) => {
                !target.trim().is_empty()
                    && target
                        .trim()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-'))
                    && is_level(level)
            }
            None => is_level(part),
        })
        && tracing_subscriber::EnvFilter::try_new(text).is_ok()
}

/// `[services.seerr]` is `[services.overseerr]` under the program's new name (Seerr, which
/// Overseerr's users move to): either spelling is read into `services.overseerr`, both at once
/// is an error rather than a silent pick.
fn fold_seerr_alias(root: &mut toml::Table) -> Result<(), ConfigError> {
    let Some(toml::Value::Table(services)) = root.get_mut("services") else {
        return Ok(());
    };
    let Some(seerr) = services.remove("seerr") else {
        return Ok(());
    };
    if services.contains_key("overseerr") {
        return Err(ConfigError::Key {
            key: "services.seerr".into(),
            reason: "[services.seerr] and [services.overseerr] are the same section (overseerr \
                     is its old name): keep one of them"
                .into(),
        });
    }
    services.insert("overseerr".into(), seerr);
    Ok(())
}

/// The key whose type an environment key takes: `services.seerr.*` is `services.overseerr.*`.
fn alias_target(path: &[String]) -> Vec<String> {
    match path {
        [services, seerr, rest @ ..] if services == "services" && seerr == "seerr" => {
            let mut out = vec!["services".to_owned(), "overseerr".to_owned()];
            out.extend(rest.iter().cloned());
            out
        }
        _ => path.to_vec(),
    }
}

fn find_config_file(env: &[(String, String)]) -> Option<PathBuf> {
    if let Some((_, path)) = env.iter().find(|(k, _)| k == "MEDIANEST_CONFIG") {
        return Some(PathBuf::from(path));
    }
    ["./medianest.toml", "/etc/medianest/medianest.toml"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// The longest `server.header_read_timeout_secs` and `server.keepalive_idle_secs` (a day).
pub const MAX_CONNECTION_TIMEOUT_SECS: u64 = 86_400;

/// Accepts a service URL: an absolute http(s) URL with a host and no user name or password
/// (those would be shown to every user with the URL; the key has its own setting). The reason
/// never quotes a URL that carries a password.
pub fn check_service_url(raw: &str) -> Result<(), String> {
    if has_userinfo(raw) {
        return Err("must not carry a user name or password (the key goes in api_key)".into());
    }
    check_http_url(raw)
}

/// Whether `url` names a user or a password (`http://user:pass@host`).
pub fn has_userinfo(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| !u.username().is_empty() || u.password().is_some())
}

/// Accepts an absolute http(s) URL with a host.
pub fn check_http_url(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("`{raw}` is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{raw}` must start with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{raw}` has no host"));
    }
    Ok(())
}

/// Accepts `server.base_path`: empty or `/` (the root), or `/` followed by URL-safe segments
/// (letters, digits, `-`, `_`, `.`, `~`), no trailing slash, no empty, `.` or `..` segment.
pub fn check_base_path(raw: &str) -> Result<(), String> {
    if raw.is_empty() || raw == "/" {
        return Ok(());
    }
    let Some(rest) = raw.strip_prefix('/') else {
        return Err(format!("`{raw}` must start with /"));
    };
    if rest.ends_with('/') {
        return Err(format!("`{raw}` must not end with /"));
    }
    for segment in rest.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(format!("`{raw}` has an empty, . or .. segment"));
        }
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
        {
            return Err(format!(
                "`{raw}` may hold only letters, digits, -, _, . and ~ between its slashes"
            ));
        }
    }
    Ok(())
}

/// Turns an environment string into a TOML value of the type the key has in the defaults; keys
/// without a default (optional ones) are strings. Unknown keys stay strings and are rejected later
/// by name.
fn env_value(defaults: &toml::Table, path: &[String], raw: &str) -> Result<toml::Value, String> {
    let mut node: Option<&toml::Value> = None;
    let mut table = Some(defaults);
    for part in path {
        node = table.and_then(|t| t.get(part));
        table = node.and_then(toml::Value::as_table);
    }
    let raw = raw.trim();
    Ok(match node {
        Some(toml::Value::Integer(_)) => toml::Value::Integer(
            raw.parse::<i64>()
                .map_err(|_| format!("`{raw}` is not a whole number"))?,
        ),
        Some(toml::Value::Float(_)) => toml::Value::Float(
            raw.parse::<f64>()
                .map_err(|_| format!("`{raw}` is not a number"))?,
        ),
        Some(toml::Value::Boolean(_)) => match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => toml::Value::Boolean(true),
            "false" | "0" | "no" | "off" => toml::Value::Boolean(false),
            _ => return Err(format!("`{raw}` is not true or false")),
        },
        Some(toml::Value::Array(_)) => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ),
        Some(toml::Value::Table(_)) => {
            return Err("is a section; set its keys (SECTION__KEY) instead".into());
        }
        _ => toml::Value::String(raw.to_string()),
    })
}

fn set_path(root: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("empty key".into());
    };
    let mut table = root;
    for part in parents {
        let entry = table
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{part}` is not a section"))?;
    }
    table.insert(last.clone(), value);
    Ok(())
}

/// The commented configuration file printed by `medianest default-config`. Fed back with
/// `--config`, it yields exactly [`Config::default`] (a test holds it to that).
pub const DEFAULT_CONFIG_TOML: &str = r#"# MediaNest configuration.
#
# Every key is optional; the values shown are the defaults. Layers, later wins: these defaults,
# this file, environment variables (MEDIANEST_SECTION__KEY, e.g. MEDIANEST_SERVER__LISTEN),
# command-line flags (--listen, --data-dir, --log-level). Unknown keys are an error.

# Where the database, secret.key and downloads live.
data_dir = "./data"

[server]
# Address and port to listen on. Use "0.0.0.0:4000" to accept connections from the network.
listen = "127.0.0.1:4000"
# The URL people use to reach MediaNest, e.g. "https://media.example.com" (under a sub-path,
# "https://home.example/medianest": its path must be base_path). When https, the session cookie
# is Secure and HSTS is sent. Absolute URLs (Plex's way back, the webhook URL) start with it;
# unset, with the request's Host, or a trusted proxy's X-Forwarded-Proto and X-Forwarded-Host.
# public_url = "https://media.example.com"
# The path prefix when a reverse proxy serves MediaNest under a sub-path, e.g. "/medianest"
# (the proxy passes the prefix on, unstripped). Every page, API route, /health and /metrics then
# lives under it, and requests outside it get 404. Empty (or "/") is the root.
base_path = ""
# Reverse proxies whose X-Forwarded-For (and -Proto, -Host) headers are believed: addresses or CIDR ranges, e.g.
# ["127.0.0.1", "10.0.0.0/8", "fd00::/8"]. Behind a proxy that is not listed, every client
# shares the proxy's address (one rate limit, one sign-in lockout); the log says so once an hour.
trusted_proxies = []
# Mark the session cookie Secure even without an https public_url.
secure_cookies = false
# A request that takes longer than this is answered with an error.
request_timeout_secs = 30
# On SIGTERM, how long in-flight requests may take to finish.
shutdown_grace_secs = 10
# A connection must send a whole request head (request line and headers) within this many
# seconds of opening, or of the first byte of its next request; else it is closed. At most
# 86400.
header_read_timeout_secs = 10
# A kept-alive connection with no request for this many seconds is closed. A request in flight
# or a live-event stream is never cut by it. At most 86400.
keepalive_idle_secs = 60
# Open connections at most. When all are open, the longest-idle kept-alive connection is closed
# to make room for a new one; only when none is idle is the new one closed as soon as it is
# accepted. Keep it well under the process's open-file limit (ulimit -n, LimitNOFILE=).
max_connections = 2048
# Open connections at most per client address (an IPv6 client by its /64). trusted_proxies are
# exempt (they carry everyone) but still count toward max_connections.
max_connections_per_ip = 32

[log]
# error, warn, info, debug, trace, or a filter such as "info,medianest=debug".
level = "info"
# pretty or json.
format = "pretty"

[database]
# SQLite connections kept in the pool.
pool_size = 8
# MediaNest refuses to start when data_dir is on a network filesystem (NFS, SMB/CIFS, 9p ...):
# SQLite's write-ahead log needs shared memory and file locks those do not give reliably, and
# the database can be corrupted. true starts anyway (a FUSE filesystem only warns).
allow_network_fs = false
# On shutdown, fold the write-ahead log into the database and truncate it. Set false when
# Litestream replicates the database: it runs the checkpoints itself.
checkpoint_on_exit = true

[admin]
# Password of the first admin account (10-256 characters), for unattended installs. When unset,
# a random one is printed once and written to <data_dir>/initial-admin-password.
# Also MEDIANEST_ADMIN_PASSWORD.
# password = "change-me-please"

[auth]
session_hours = 24
# Lifetime of a "remember me" session.
remember_days = 30
# Who may sign in with Plex: server_members (the owner and the accounts the server is shared
# with), open (any Plex account) or closed (only accounts that already exist here).
plex_signup = "server_members"

[plex]
# X-Plex-Client-Identifier; generated once and kept in the data dir when unset.
# client_id = "..."
tv_url = "https://plex.tv"
app_url = "https://app.plex.tv"
# Title of the Plex library that receives YouTube downloads (default: the first library whose
# title contains "YouTube").
# youtube_library = "YouTube"
# Title of the Plex library (type "TV Shows") that receives YouTube subscriptions' episodes
# (default: the first library whose title contains "Subscriptions", else the YouTube library).
# subscriptions_library = "YouTube Subscriptions"
# Memory (MiB) for Plex images the portal proxies, kept for an hour.
image_cache_mb = 32
# Memory (MiB) for the Plex pages, searches and collections the portal keeps (by their size).
browse_cache_mb = 16
# plex.tv's discover provider, where users' Plex watchlists are read.
discover_url = "https://discover.provider.plex.tv"
# Watchlist auto-requests: false turns the feature off for everyone.
watchlist_sync = true
# Minutes between two checks of a user's watchlist (jittered per user).
watchlist_interval_mins = 15

[health]
# Seconds between service checks.
interval_secs = 30
# A service slower than this (ms) is shown as degraded.
degraded_ms = 1000

[quotas]
requests_per_hour = 20
downloads_per_hour = 5

[limits]
# Requests per second per client IP, and the burst allowed above it.
ip_per_second = 50
ip_burst = 100
# Requests per minute per signed-in user.
user_per_minute = 600
# Failed sign-ins per 15 minutes before a username is locked for the client that failed (other
# clients can still sign in to it), and before a client IP is locked out. IPv6 clients count
# by their /64.
login_failures_per_username = 5
login_failures_per_ip = 20
# After login_failures_per_username failures at a username from anywhere, each client waits
# 1 s, then 2, 4 ... up to this many seconds after its own last attempt there (per client, so
# nobody else's attempts hold the owner back).
login_delay_max_secs = 30
# Plex sign-in codes per 15 minutes per IP.
pin_per_ip = 10
# Error-log entries a user's browser may report per hour (POST /errors/report); a repeat of one
# reported in the last hour is counted on that entry instead.
error_reports_per_hour = 30
# Live-event streams (one per open dashboard tab) at once per user, and per client IP.
events_per_user = 5
events_per_ip = 20

[youtube]
# The yt-dlp program.
ytdlp_path = "yt-dlp"
# Where downloads go (default: <data_dir>/downloads).
# download_dir = "/srv/media/youtube"
# Downloads running at once.
workers = 1
# Disk budget per user, in bytes (10 GiB).
max_user_bytes = 10737418240
# A download that prints nothing for this many seconds is stopped and fails.
stall_timeout_secs = 600
# yt-dlp runs for link previews at once (separate from the download workers), and previews one
# user may have in flight (more answer 429).
preview_slots = 4
previews_per_user = 2
# Playlist items a link preview lists (1-1000): a playlist of thousands is previewed as "the
# first N of M", as yt-dlp takes too long to list them all.
preview_items = 50
# A cookies file (Netscape format, "cookies.txt" exported from a browser signed in to YouTube)
# for yt-dlp's --cookies; one uploaded on the admin page (stored 0600 in the data dir) wins.
# cookies_file = "/etc/medianest/youtube-cookies.txt"
# Arguments added to every yt-dlp run, e.g. ["--js-runtimes", "node"] when node is the
# JavaScript runtime instead of deno. Options that would break the worker (-o, -P, --exec,
# --print, --progress-template, --quiet, -j/-J, --batch-file, --cookies, --update ...) are refused.
extra_args = []
# The download dir as Plex sees it, for the library scan after a download (when Plex runs in a
# container or on another machine). Default: the same path.
# plex_path = "/data/youtube"
# Octal modes the downloaded files and the folders MediaNest made for them get once yt-dlp
# finishes (whatever the umask): world-readable by default, so a Plex running as another user
# can read them.
file_mode = "0644"
dir_mode = "0755"
# A group name or gid the downloaded files and folders are given (e.g. "plex"); an unknown
# group stops the start.
# group = "plex"
# YouTube subscriptions a user may have active, paused or proposed at once (admins have no
# limit; 0: users cannot propose any).
max_subscriptions_per_user = 5

[overseerr]
# Submit requests of users who have no Seerr (or Overseerr) account as Seerr's admin.
fallback_to_admin = false

[webhooks]
# The Authorization header value Overseerr's webhook agent sends.
# overseerr_secret = "..."

[notifications]
# Where Discord webhooks live; change only for tests or the demo (webhook URLs must then be on
# exactly this scheme, host and port).
discord_base_url = "https://discord.com"
# Retries of a delivery that failed for a passing reason (a timeout, a 5xx, an SMTP 4xx): the
# first after retry_min_secs, then twice as long each time (with jitter) up to retry_max_secs;
# given up give_up_hours after the notification was made.
retry_min_secs = 60
retry_max_secs = 21600
give_up_hours = 24
# Most messages one user gets on one channel per hour; more wait for the next hour.
max_per_user_hour = 20
# service.down / service.recovered flaps of one service fold into one message per window.
flap_window_secs = 900
# Deliveries in flight at once on one channel (a slow channel never holds up another).
per_channel_concurrency = 4

[metrics]
# When set, /metrics wants "Authorization: Bearer <token>". Unset, /metrics is open when
# server.listen is a loopback address (except to requests a reverse proxy forwarded) and wants
# a signed-in admin otherwise.
# token = "..."

[monitor]
# Requests slower than this (ms) are logged as slow.
slow_ms = 1000
# Resident memory (MB) above which a warning is logged.
memory_warn_mb = 256

[backup]
# How often the server backs the database up by itself: off, hourly, daily (after midnight
# UTC) or weekly (Mondays, UTC). A slot missed while the server was down runs soon after start.
schedule = "daily"
# Where backups go (default: <data_dir>/backups), as medianest-YYYYMMDD-HHMMSS.db.
# dir = "/var/backups/medianest"
# Scheduled backups kept; older ones are removed (0 keeps them all).
keep = 7

[push]
# Web Push: the contact (VAPID "sub") push services see with every push, mailto: or https:.
# Apple's push service refuses localhost addresses: set a real one.
subject = "mailto:admin@localhost"
# Accept http:// subscription endpoints on loopback (tests and the demo only).
allow_http_endpoints = false
# Seconds one push to a push service may take (1-60).
timeout_secs = 10
# The push services a browser's subscription may point at (a leading dot: any name under it).
endpoint_hosts = ["fcm.googleapis.com", "android.googleapis.com", ".push.services.mozilla.com", ".push.apple.com", ".notify.windows.com"]

[images]
# Posters and backdrops: the browser only ever asks MediaNest, which fetches a TMDB image from
# {tmdb_base_url}/{size}/{file} on first use and keeps it under <data_dir>/cache/images.
tmdb_base_url = "https://image.tmdb.org/t/p"
# Disk budget of those images (MiB); the least recently used are removed beyond it.
cache_mb = 256
# The largest image fetched (KiB); a bigger answer is refused and not kept.
max_image_kb = 5120
# How long fetching one image may take (ms); slower answers 504.
timeout_ms = 10000

# Service connections, read on first start only; afterwards edit them in the admin pages.
[services.plex]
# url = "http://127.0.0.1:32400"
# api_key = "<Plex server token>"
enabled = true

# Seerr (or Overseerr 1.33/1.34). [services.seerr] is the same section under its new name; use
# one of the two.
[services.overseerr]
# url = "http://127.0.0.1:5055"
# api_key = "<Seerr or Overseerr API key>"
enabled = true

[services.uptime_kuma]
# url = "http://127.0.0.1:3001"
# slug = "home"
enabled = true
"#;

/// Every key of the configuration as a flat `section.key` list, for documentation tests.
pub fn default_keys() -> Vec<String> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
        for (k, v) in table {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => walk(&key, t, out),
                _ => out.push(key),
            }
        }
    }
    let mut out = Vec::new();
    if let Ok(t) = toml::Table::try_from(Config::default()) {
        walk("", &t, &mut out);
    }
    out
}

/// A redacted, flat view of the effective configuration for the startup log.
pub fn summary(config: &Config) -> BTreeMap<&'static str, String> {
    let mut m = BTreeMap::new();
    m.insert("listen", config.server.listen.to_string());
    m.insert("data_dir", config.data_dir.display().to_string());
    m.insert("log_level", config.log.level.clone());
    m
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load(text: Option<&str>, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_layers(text, None, &env(pairs), &Overrides::default())
    }

    #[test]
    fn no_layers_is_the_default() {
        assert_eq!(load(None, &[]).unwrap(), Config::default());
    }

    #[test]
    fn default_config_file_starts_the_server_unchanged() {
        assert_eq!(
            load(Some(DEFAULT_CONFIG_TOML), &[]).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn services_seerr_is_services_overseerr_and_both_at_once_is_an_error() {
        let seerr = "[services.seerr]\nurl = \"http://127.0.0.1:5055\"\nenabled = false\n";
        let c = load(Some(seerr), &[]).unwrap();
        assert_eq!(
            c.services.overseerr.url.as_deref(),
            Some("http://127.0.0.1:5055")
        );
        assert!(!c.services.overseerr.enabled);
        let old = "[services.overseerr]\nurl = \"http://127.0.0.1:5055\"\nenabled = false\n";
        assert_eq!(load(Some(old), &[]).unwrap(), c, "the old name still works");
        let c = load(
            None,
            &[
                ("MEDIANEST_SERVICES__SEERR__URL", "http://127.0.0.1:5055"),
                ("MEDIANEST_SERVICES__SEERR__ENABLED", "false"),
            ],
        )
        .unwrap();
        assert!(!c.services.overseerr.enabled, "typed like the old key");
        // The environment overrides the file whichever spelling each uses.
        for (file, env) in [
            (seerr, "MEDIANEST_SERVICES__OVERSEERR__URL"),
            (old, "MEDIANEST_SERVICES__SEERR__URL"),
            (seerr, "MEDIANEST_SERVICES__SEERR__URL"),
        ] {
            let c = load(Some(file), &[(env, "http://seerr:5055")]).unwrap();
            assert_eq!(
                c.services.overseerr.url.as_deref(),
                Some("http://seerr:5055"),
                "{env} over {file}"
            );
            assert!(!c.services.overseerr.enabled, "the file's other keys stay");
        }
        let e = load(
            None,
            &[
                ("MEDIANEST_SERVICES__SEERR__URL", "http://a:5055"),
                ("MEDIANEST_SERVICES__OVERSEERR__URL", "http://b:5055"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("keep one"), "{e}");
        let both = format!("{seerr}[services.overseerr]\nurl = \"http://127.0.0.1:5056\"\n");
        let e = load(Some(&both), &[]).unwrap_err().to_string();
        assert!(
            e.contains("services.seerr") && e.contains("keep one"),
            "{e}"
        );
    }

    #[test]
    fn default_config_file_mentions_every_key() {
        for key in default_keys() {
            let (section, name) = key.rsplit_once('.').unwrap_or(("", &key));
            let header = format!("[{section}]");
            assert!(
                section.is_empty() || DEFAULT_CONFIG_TOML.contains(&header),
                "default-config lacks section {header}"
            );
            assert!(
                DEFAULT_CONFIG_TOML.contains(&format!("{name} =")),
                "default-config lacks key {key}"
            );
        }
        for optional in [
            "public_url",
            "password",
            "client_id",
            "youtube_library",
            "subscriptions_library",
            "download_dir",
            "plex_path",
            "overseerr_secret",
            "token",
            "url",
            "api_key",
            "slug",
        ] {
            assert!(
                DEFAULT_CONFIG_TOML.contains(&format!("# {optional} =")),
                "default-config lacks optional key {optional}"
            );
        }
    }

    #[test]
    fn the_packaged_example_config_is_valid() {
        let text = include_str!("../packaging/medianest.toml");
        let c = load(Some(text), &[]).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/medianest"));
        assert_eq!(c.server.listen.port(), 4000);
    }

    #[test]
    fn layers_win_in_order() {
        let file = "data_dir = \"/from/file\"\n[server]\nlisten = \"127.0.0.1:5000\"\n[health]\ninterval_secs = 60\n";
        let vars = [
            ("MEDIANEST_SERVER__LISTEN", "127.0.0.1:6000"),
            ("MEDIANEST_LOG__LEVEL", "debug"),
        ];
        let c = load(Some(file), &vars).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from/file"));
        assert_eq!(c.server.listen.port(), 6000, "env beats file");
        assert_eq!(c.health.interval_secs, 60, "file beats default");
        assert_eq!(c.log.level, "debug");
        let flags = Overrides {
            listen: Some("127.0.0.1:7000".parse().unwrap()),
            data_dir: Some("/flag".into()),
            log_level: None,
        };
        let c = Config::from_layers(Some(file), None, &env(&vars), &flags).unwrap();
        assert_eq!(c.server.listen.port(), 7000, "flag beats env");
        assert_eq!(c.data_dir, PathBuf::from("/flag"));
    }

    #[test]
    fn env_values_take_the_type_of_the_key() {
        let c = load(
            None,
            &[
                ("MEDIANEST_HEALTH__INTERVAL_SECS", "45"),
                ("MEDIANEST_SERVER__SECURE_COOKIES", "true"),
                ("MEDIANEST_SERVER__TRUSTED_PROXIES", "10.0.0.1, ::1"),
                ("MEDIANEST_ADMIN_PASSWORD", "1234567890123"),
                ("MEDIANEST_METRICS__TOKEN", "42"),
                ("MEDIANEST_CONFIG", "/ignored.toml"),
                ("MEDIANEST_SECRET_KEY", "not-a-config-key"),
                ("OTHER_VAR", "x"),
            ],
        )
        .unwrap();
        assert_eq!(c.health.interval_secs, 45);
        assert!(c.server.secure_cookies);
        assert_eq!(c.server.trusted_proxies.len(), 2);
        assert_eq!(
            c.admin.password.as_ref().map(Secret::expose),
            Some("1234567890123")
        );
        assert_eq!(c.metrics.token.as_ref().map(Secret::expose), Some("42"));
    }

    fn err(text: Option<&str>, pairs: &[(&str, &str)]) -> String {
        load(text, pairs).unwrap_err().to_string()
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = err(Some("[server]\nlisen = \"x\"\n"), &[]);
        assert!(e.contains("server") && e.contains("lisen"), "{e}");
        let e = err(Some("colour = 1\n"), &[]);
        assert!(e.contains("colour"), "{e}");
        let e = err(None, &[("MEDIANEST_SERVER__LISTN", "x")]);
        assert!(e.contains("listn"), "{e}");
        let e = err(Some("[nope]\na = 1\n"), &[]);
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = err(Some("[server]\nlisten = \"not an address\"\n"), &[]);
        assert!(e.starts_with("configuration key `server.listen`"), "{e}");
        let e = err(Some("[health]\ninterval_secs = \"soon\"\n"), &[]);
        assert!(e.contains("health.interval_secs"), "{e}");
        let e = err(None, &[("MEDIANEST_HEALTH__INTERVAL_SECS", "soon")]);
        assert!(
            e.contains("health.interval_secs") && e.contains("MEDIANEST_HEALTH__INTERVAL_SECS"),
            "{e}"
        );
        let e = err(Some("[auth]\nplex_signup = \"everyone\"\n"), &[]);
        assert!(e.contains("auth.plex_signup"), "{e}");
        for (toml, key, words) in [
            ("file_mode = \"4755\"", "youtube.file_mode", "setuid"),
            ("file_mode = \"rw-r--r--\"", "youtube.file_mode", "octal"),
            ("dir_mode = \"0644\"", "youtube.dir_mode", "rwx"),
            (
                "group = \"no-such-group-here\"",
                "youtube.group",
                "no-such-group-here",
            ),
        ] {
            let e = err(Some(&format!("[youtube]\n{toml}\n")), &[]);
            assert!(e.contains(key) && e.contains(words), "{e}");
        }
        let e = err(Some("[plex]\ntv_url = \"ftp://plex.tv\"\n"), &[]);
        assert!(e.contains("plex.tv_url"), "{e}");
        let e = err(Some("[log]\nlevel = \"loud!!\"\n"), &[]);
        assert!(e.contains("log.level"), "{e}");
        let e = err(Some("[admin]\npassword = \"short\"\n"), &[]);
        assert!(e.contains("admin.password"), "{e}");
        let e = err(
            Some("[youtube]\nextra_args = [\"--js-runtimes\", \"node\", \"--output=x\"]\n"),
            &[],
        );
        assert!(
            e.contains("youtube.extra_args") && e.contains("--output is refused"),
            "{e}"
        );
        let e = err(Some("[youtube]\npreview_items = 0\n"), &[]);
        assert!(e.contains("youtube.preview_items"), "{e}");
        let e = err(Some("[youtube]\nworkers = 0\n"), &[]);
        assert!(e.contains("youtube.workers"), "{e}");
        for (section, key) in [
            ("server", "header_read_timeout_secs"),
            ("server", "keepalive_idle_secs"),
            ("server", "max_connections"),
            ("server", "max_connections_per_ip"),
            ("limits", "events_per_user"),
            ("limits", "events_per_ip"),
        ] {
            let e = err(Some(&format!("[{section}]\n{key} = 0\n")), &[]);
            assert!(e.contains(&format!("{section}.{key}")), "{e}");
        }
        assert!(load(Some("[log]\nlevel = \"info,medianest=debug\"\n"), &[]).is_ok());
        let e = err(Some("not toml at all"), &[]);
        assert!(e.contains("configuration file"), "{e}");
        let e = err(Some("[server]\nlisten = 4000\n"), &[]);
        assert!(e.contains("server.listen"), "{e}");
    }

    #[test]
    fn connection_timeouts_have_an_upper_bound() {
        for key in ["header_read_timeout_secs", "keepalive_idle_secs"] {
            let e = err(Some(&format!("[server]\n{key} = 86401\n")), &[]);
            assert_eq!(
                e,
                format!("configuration key `server.{key}`: must be at most 86400"),
            );
            // A value that would overflow a deadline, from the environment too.
            let var = format!("MEDIANEST_SERVER__{}", key.to_uppercase());
            let e = err(None, &[(var.as_str(), "18446744073709551615")]);
            assert!(e.contains(&format!("server.{key}")), "{e}");
            assert!(load(Some(&format!("[server]\n{key} = 86400\n")), &[]).is_ok());
        }
    }

    #[test]
    fn service_urls_with_a_user_or_password_are_refused_by_name() {
        for service in ["plex", "overseerr", "uptime_kuma"] {
            for url in [
                "http://user:hunter2@media.lan:32400",
                "http://user@media.lan",
            ] {
                let e = err(
                    Some(&format!("[services.{service}]\nurl = \"{url}\"\n")),
                    &[],
                );
                assert_eq!(
                    e,
                    format!(
                        "configuration key `services.{service}.url`: must not carry a user name \
                         or password (the key goes in api_key)"
                    ),
                );
                assert!(!e.contains("hunter2"), "the password is not echoed: {e}");
                let var = format!("MEDIANEST_SERVICES__{}__URL", service.to_uppercase());
                let e = err(None, &[(var.as_str(), url)]);
                assert!(e.contains(&format!("services.{service}.url")), "{e}");
            }
            let ok = format!("[services.{service}]\nurl = \"http://media.lan/a@b\"\n");
            assert!(load(Some(&ok), &[]).is_ok());
        }
    }

    #[test]
    fn base_path_is_checked_and_maps_request_paths() {
        for good in ["", "/", "/medianest", "/apps/media-nest_2", "/a.b~c"] {
            assert!(check_base_path(good).is_ok(), "{good}");
        }
        for bad_path in [
            "medianest",
            "/medianest/",
            "/a//b",
            "/a/../b",
            "/..",
            "/a b",
            "/a?b",
            "/a%2e",
            "/a#b",
        ] {
            assert!(check_base_path(bad_path).is_err(), "{bad_path}");
        }
        let e = err(Some("[server]\nbase_path = \"/x/../y\"\n"), &[]);
        assert!(e.contains("server.base_path"), "{e}");
        // public_url's path, when it has one, is the base path.
        let e = err(
            Some("[server]\npublic_url = \"https://home.example/medianest\"\n"),
            &[],
        );
        assert!(
            e.contains("server.public_url") && e.contains("base_path = \"/medianest\""),
            "{e}"
        );
        let c = load(
            Some(
                "[server]\npublic_url = \"https://home.example/medianest/\"\n\
                 base_path = \"/medianest\"\n",
            ),
            &[],
        )
        .unwrap();
        assert_eq!(
            c.server.public_origin().as_deref(),
            Some("https://home.example")
        );

        let mut server = ServerConfig::default();
        assert_eq!(server.app_path("/api/v1/x"), Some("/api/v1/x"));
        server.base_path = "/".into();
        assert_eq!(server.base(), "");
        assert_eq!(server.app_path("/metrics"), Some("/metrics"));
        server.base_path = "/medianest".into();
        assert_eq!(server.base(), "/medianest");
        assert_eq!(server.app_path("/medianest/api/v1/x"), Some("/api/v1/x"));
        assert_eq!(server.app_path("/medianest/"), Some("/"));
        assert_eq!(server.app_path("/medianest"), None);
        assert_eq!(server.app_path("/medianestx/api"), None);
        assert_eq!(server.app_path("/api/v1/x"), None);
    }

    #[test]
    fn trusted_proxies_take_addresses_and_cidr_ranges() {
        let c = load(
            Some("[server]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\", \"fd00::/8\"]\n"),
            &[],
        )
        .unwrap();
        let proxies = &c.server.trusted_proxies;
        assert_eq!(proxies.len(), 3);
        for ip in ["127.0.0.1", "::ffff:127.0.0.1", "10.9.8.7", "fd00:1::2"] {
            assert!(proxies.contains(ip.parse().unwrap()), "{ip}");
        }
        assert!(!proxies.contains("192.168.1.1".parse().unwrap()));
        let c = load(
            None,
            &[("MEDIANEST_SERVER__TRUSTED_PROXIES", "172.16.0.0/12, ::1")],
        )
        .unwrap();
        assert!(
            c.server
                .trusted_proxies
                .contains("172.20.1.1".parse().unwrap())
        );
        let e = err(Some("[server]\ntrusted_proxies = [\"10.0.0.0/33\"]\n"), &[]);
        assert!(
            e.contains("server.trusted_proxies") && e.contains("10.0.0.0/33"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e:?}");
        let e = err(None, &[("MEDIANEST_SERVER__TRUSTED_PROXIES", "proxy.lan")]);
        assert!(
            e.contains("server.trusted_proxies") && e.contains("proxy.lan"),
            "{e}"
        );
        let e = err(Some("[limits]\nlogin_delay_max_secs = 0\n"), &[]);
        assert!(e.contains("limits.login_delay_max_secs"), "{e}");
    }

    #[test]
    fn one_line_errors() {
        let e = err(Some("[server]\nlisten = \"x\"\n"), &[]);
        assert!(!e.contains('\n'), "{e:?}");
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = load(
            Some(
                "[admin]\npassword = \"super-secret-pw\"\n[services.plex]\napi_key = \"plex-token-xyz\"\n[webhooks]\noverseerr_secret = \"hook-secret\"\n",
            ),
            &[],
        )
        .unwrap();
        let text = format!("{c:?}");
        for secret in ["super-secret-pw", "plex-token-xyz", "hook-secret"] {
            assert!(!text.contains(secret), "{secret} leaked in Debug");
        }
        assert!(text.contains("****"));
    }

    #[test]
    fn backup_keys_have_defaults_layers_and_clear_errors() {
        let c = load(None, &[]).unwrap();
        assert_eq!(c.backup.schedule, BackupSchedule::Daily);
        assert_eq!(c.backup.keep, 7);
        assert_eq!(c.backup_dir(), c.data_dir.join("backups"));
        let c = load(
            Some("[backup]\nschedule = \"weekly\"\ndir = \"/srv/b\"\nkeep = 0\n"),
            &[("MEDIANEST_BACKUP__SCHEDULE", "off")],
        )
        .unwrap();
        assert_eq!(c.backup.schedule, BackupSchedule::Off);
        assert_eq!(c.backup_dir(), PathBuf::from("/srv/b"));
        assert_eq!(c.backup.keep, 0);
        let e = err(Some("[backup]\nschedule = \"monthly\"\n"), &[]);
        assert!(e.contains("backup.schedule"), "{e}");
        let e = err(Some("[backup]\ndir = \"\"\n"), &[]);
        assert!(
            e.contains("backup.dir") && e.contains("must not be empty"),
            "{e}"
        );
        let e = err(None, &[("MEDIANEST_BACKUP__KEEP", "100000")]);
        assert!(e.contains("backup.keep"), "{e}");
    }
}
