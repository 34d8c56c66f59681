//! `medianest doctor` and the admin page's "Doctor" section (`GET /admin/doctor`): checks what
//! the portal depends on and says how to fix each thing that is wrong.
//!
//! The checks: the yt-dlp program (found, version, age of the release), a JavaScript runtime
//! yt-dlp will use, ffmpeg, yt-dlp's cookies file (readable, Netscape format), the download
//! dir takes files, the data dir is on a local
//! filesystem, each configured service answers as itself with the credentials held (and the
//! YouTube library's folders hold the download dir), and the webhook secret is set.
//!
//! The command reads what `serve` reads (config file, `MEDIANEST_*`, flags, and the service
//! connections stored in the database) without the server running and without disturbing a
//! running one: the database is opened read-only (a WAL reader never blocks the writer), the
//! data dir is not prepared (no key is made, no leftover is removed), and each service call uses
//! its own client and breaker. Every program run, request and filesystem probe is bounded.
//!
//! Exit status (the command): 0 when no check failed (warnings and skipped checks pass), 1
//! otherwise.

pub mod files;
pub mod programs;
pub mod report;
pub mod services;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::Method;
use tokio::sync::Semaphore;

pub use report::{Check, Report, Status};

use crate::auth::AdminUser;
use crate::clock::SharedClock;
use crate::config::{Config, ServiceSeed};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::response::ApiResponse;
use crate::routes::{Access, Routes};
use crate::service_config::{ServiceConfig, ServiceName};
use crate::state::AppState;

/// Longest the filesystem checks may take (a hung network mount blocks `statfs` and writes).
const FILES_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a run waits for the one before it (a run takes at most about
/// [`programs::PROGRAM_TIMEOUT`]).
const RUN_WAIT: Duration = Duration::from_secs(15);

/// One doctor run at a time in the server: each starts up to three programs.
static RUNS: Semaphore = Semaphore::const_new(1);

/// The doctor's route (under `/api/v1`).
pub fn routes() -> Routes {
    Routes::new().add(Method::GET, "/admin/doctor", Access::Admin, get_doctor)
}

/// `GET /admin/doctor`: the checks against the running server's settings. One run at a time:
/// another waits for it, and answers 429 if it is still running after [`RUN_WAIT`].
pub async fn get_doctor(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> AppResult<ApiResponse> {
    let Ok(Ok(_permit)) = tokio::time::timeout(RUN_WAIT, RUNS.acquire()).await else {
        return Err(AppError::Api {
            code: ErrorCode::RateLimited,
            service: None,
            details: Some(serde_json::json!({ "reason": "a doctor run is in progress" })),
            retry_after: Some(5),
        });
    };
    let services = crate::services::clients(&state).await?.configs.clone();
    let config = Arc::new(state.config().clone());
    let report = run(config, &services, state.clock(), Vec::new()).await;
    Ok(ApiResponse::ok(&report))
}

/// Runs every check; `leading` (the command's "service settings" check) goes before the
/// services.
pub async fn run(
    config: Arc<Config>,
    services: &[ServiceConfig],
    clock: &SharedClock,
    leading: Vec<Check>,
) -> Report {
    let today = today(clock);
    // The options passed on to yt-dlp, as a run gets them (an admin's setting over
    // `youtube.extra_args`): they can enable JavaScript runtimes and name ffmpeg's location.
    let pass = crate::youtube::passthrough_for(&config).await;
    let extra = pass.args;
    let cookies = pass.cookies;
    let files = {
        let config = config.clone();
        async move {
            let work = tokio::task::spawn_blocking(move || {
                (
                    files::check_cookies_file(cookies.as_deref()),
                    files::check_download_dir(&config),
                    files::check_data_dir(&config),
                )
            });
            match tokio::time::timeout(FILES_TIMEOUT, work).await {
                Ok(Ok(checks)) => checks,
                _ => {
                    let hung = |name: &str| {
                        Check::fail(
                            name,
                            format!(
                                "the filesystem did not answer within {} s",
                                FILES_TIMEOUT.as_secs()
                            ),
                            "check the mount (a hung network share blocks every file call)",
                        )
                    };
                    (hung("cookies file"), hung("download dir"), hung("data dir"))
                }
            }
        }
    };
    let (ytdlp, js, ffmpeg, (cookies, download_dir, data_dir), (plex, sections), seerr, kuma) = tokio::join!(
        programs::check_ytdlp(&config.youtube.ytdlp_path, today),
        programs::check_js_runtime(&extra),
        programs::check_ffmpeg(&extra),
        files,
        services::check_plex(services, clock),
        services::check_seerr(services, clock),
        services::check_kuma(services, clock),
    );
    let folders = services::check_plex_folders(&config, sections.as_deref());
    let webhook = files::check_webhook_secret(&config, services::seerr_set_up(services));
    let mut checks = vec![ytdlp, js, ffmpeg, cookies, download_dir, data_dir];
    checks.extend(leading);
    checks.extend([plex, folders, seerr, webhook, kuma]);
    Report::new(checks)
}

/// Today's date (UTC) on `clock`.
fn today(clock: &SharedClock) -> time::Date {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(clock.now_ms()) * 1_000_000)
        .map_or(time::OffsetDateTime::UNIX_EPOCH.date(), |t| t.date())
}

/// The service connections `serve` would use, for the command: read from the database
/// (read-only, secrets decrypted with the data dir's key), or, before the first start, the
/// `services.*` keys that start will store. The check says which, or why neither could be read.
pub fn load_services(config: &Config) -> (Vec<ServiceConfig>, Check) {
    const NAME: &str = "service settings";
    let db_path = config.database_path();
    if !db_path.is_file() {
        let services = ServiceName::ALL
            .into_iter()
            .map(|name| seeded(config, name))
            .collect();
        return (
            services,
            Check::ok(
                NAME,
                format!(
                    "no database yet at {}: the services.* keys, as the first start stores them",
                    db_path.display()
                ),
            ),
        );
    }
    match read_stored(config, &db_path) {
        Ok(services) => {
            let set_up = services.iter().filter(|s| s.is_usable()).count();
            (
                services,
                Check::ok(
                    NAME,
                    format!("read from {} ({set_up} set up)", db_path.display()),
                ),
            )
        }
        Err((detail, fix)) => (Vec::new(), Check::fail(NAME, detail, fix)),
    }
}

/// The stored connections; a missing row is the seed start would write.
fn read_stored(config: &Config, db_path: &Path) -> Result<Vec<ServiceConfig>, (String, String)> {
    use crate::data_dir::{SECRET_KEY_ENV, SECRET_KEY_FILE, SecretKey};
    let key_file = config.data_dir.join(SECRET_KEY_FILE);
    let key_text = match std::env::var(SECRET_KEY_ENV) {
        Ok(text) => text,
        Err(_) => std::fs::read_to_string(&key_file).map_err(|e| {
            (
                format!("cannot read the secret key {}: {e}", key_file.display()),
                format!(
                    "run the doctor as the user MediaNest runs as, with the same config and \
                     {SECRET_KEY_ENV} if the server uses it"
                ),
            )
        })?,
    };
    let key = SecretKey::from_base64(&key_text).map_err(|e| {
        (
            format!("the secret key is not valid: {e}"),
            format!("restore {} from a backup", key_file.display()),
        )
    })?;
    let cipher = crate::crypto::Cipher::new(&key);
    let open = || -> rusqlite::Result<rusqlite::Connection> {
        use rusqlite::OpenFlags;
        let conn = rusqlite::Connection::open_with_flags(
            db_path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(conn)
    };
    let conn = open().map_err(|e| {
        (
            format!("cannot open {}: {e}", db_path.display()),
            "run the doctor as the user MediaNest runs as".to_owned(),
        )
    })?;
    let mut services = Vec::new();
    for name in ServiceName::ALL {
        match crate::service_config::load(&conn, name, &cipher) {
            Ok(Some(service)) => services.push(service),
            Ok(None) => services.push(seeded(config, name)),
            Err(e) => {
                return Err((
                    format!("cannot read the {} settings: {e}", name.display_name()),
                    format!(
                        "the secret key must be the one the database was made with: restore \
                         {} (or {SECRET_KEY_ENV}) from a backup, or run `medianest migrate` \
                         if the database is from an older version",
                        key_file.display()
                    ),
                ));
            }
        }
    }
    Ok(services)
}

/// The connection start stores for `name` from its `services.*` keys.
fn seeded(config: &Config, name: ServiceName) -> ServiceConfig {
    let seed: &ServiceSeed = match name {
        ServiceName::Plex => &config.services.plex,
        ServiceName::Overseerr => &config.services.overseerr,
        ServiceName::UptimeKuma => &config.services.uptime_kuma,
    };
    let options = match &seed.slug {
        Some(slug) => serde_json::json!({ "slug": slug }),
        None => serde_json::json!({}),
    };
    ServiceConfig {
        name,
        url: seed.url.clone(),
        api_key: seed.api_key.as_ref().map(|k| k.expose().to_owned()),
        enabled: seed.enabled && seed.url.is_some(),
        options,
        updated_at: 0,
    }
}

/// `medianest doctor`: prints the report and returns whether every check passed. Blocking; it
/// builds its own small runtime.
pub fn command(config: Config) -> Result<bool, String> {
    let (services, settings) = load_services(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let clock = crate::clock::system();
    let report = runtime.block_on(run(Arc::new(config), &services, &clock, vec![settings]));
    print!("{}", report.to_text());
    Ok(report.passed)
}
