//! Backups in files: the scheduled online backups (`backup.schedule`), "back up now" and the
//! download of a listed backup for admins, the download of a fresh copy ([`fresh`]), the backup
//! taken before a schema migration, the data-dir lock a running server holds ([`lock`]) and
//! `medianest restore` ([`restore`]).
//!
//! A backup is `VACUUM INTO` a temporary name in the backup directory (one read transaction: one
//! committed state, writers keep going), `PRAGMA integrity_check` on the copy, fsync, then a
//! rename to its final name, so a backup name always holds a whole, sound database. Anything that
//! fails on the way removes the temporary file; temporaries a crash left behind go at start.
//!
//! Only names of our own patterns are listed, served or pruned ([`BackupName`]): nothing else in
//! the directory is touched, and a request can never name a path outside it.

pub mod fresh;
pub mod lock;
pub mod restore;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use crate::auth::AdminUser;
use crate::config::{BackupSchedule, Config};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::response::ApiResponse;
use crate::routes::{Access, Routes};
use crate::state::AppState;

const HOUR_MS: i64 = 3600 * 1000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// 1970-01-01 was a Thursday: weeks start 4 days later, on Monday 1970-01-05 (UTC).
const WEEK_OFFSET_MS: i64 = 4 * DAY_MS;

/// Suffix of the temporary file a backup is written to before its rename.
const TEMP_SUFFIX: &str = ".partial";

/// What a backup file is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackupKind {
    /// `medianest-YYYYMMDD-HHMMSS.db`: scheduled or "back up now"; pruned to `backup.keep`.
    Scheduled,
    /// `pre-migration-v<N>-YYYYMMDD-HHMMSS.db`: taken before a schema migration.
    PreMigration,
}

/// A valid backup file name and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupName {
    pub name: String,
    pub kind: BackupKind,
    /// When it was taken (Unix ms, whole seconds).
    pub at_ms: i64,
}

impl BackupName {
    /// The name of a scheduled backup taken at `now_ms`.
    pub fn scheduled(now_ms: i64) -> Self {
        let name = format!("medianest-{}.db", stamp(now_ms));
        Self {
            name,
            kind: BackupKind::Scheduled,
            at_ms: now_ms.div_euclid(1000) * 1000,
        }
    }

    /// The name of the backup taken before migrating from schema `version` at `now_ms`.
    pub fn pre_migration(version: i64, now_ms: i64) -> Self {
        Self {
            name: format!("pre-migration-v{version}-{}.db", stamp(now_ms)),
            kind: BackupKind::PreMigration,
            at_ms: now_ms.div_euclid(1000) * 1000,
        }
    }

    /// Parses a file name; `None` unless it is exactly one of our patterns (so no separator, no
    /// `..`, nothing but ASCII digits where the pattern has them).
    pub fn parse(name: &str) -> Option<Self> {
        let rest = name.strip_suffix(".db")?;
        let (kind, stamp_text) = if let Some(s) = rest.strip_prefix("medianest-") {
            (BackupKind::Scheduled, s)
        } else {
            let s = rest.strip_prefix("pre-migration-v")?;
            let (version, s) = s.split_once('-')?;
            if version.is_empty()
                || version.len() > 9
                || !version.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            (BackupKind::PreMigration, s)
        };
        let at_ms = parse_stamp(stamp_text)?;
        Some(Self {
            name: name.to_owned(),
            kind,
            at_ms,
        })
    }
}

/// `YYYYMMDD-HHMMSS` in UTC.
fn stamp(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn parse_stamp(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 15 || b[8] != b'-' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = text.get(r)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let month = time::Month::try_from(u8::try_from(digits(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(digits(0..4)?).ok()?,
        month,
        u8::try_from(digits(6..8)?).ok()?,
    )
    .ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(digits(9..11)?).ok()?,
        u8::try_from(digits(11..13)?).ok()?,
        u8::try_from(digits(13..15)?).ok()?,
    )
    .ok()?;
    Some(date.with_time(clock).assume_utc().unix_timestamp() * 1000)
}

/// The slot `now_ms` falls in for `schedule` (hours, days or weeks since the epoch, UTC); `None`
/// when backups are off. A backup is due when the current slot is later than the last one a
/// backup was attempted in.
pub fn slot(schedule: BackupSchedule, now_ms: i64) -> Option<i64> {
    match schedule {
        BackupSchedule::Off => None,
        BackupSchedule::Hourly => Some(now_ms.div_euclid(HOUR_MS)),
        BackupSchedule::Daily => Some(now_ms.div_euclid(DAY_MS)),
        BackupSchedule::Weekly => Some((now_ms - WEEK_OFFSET_MS).div_euclid(7 * DAY_MS)),
    }
}

/// A backup file in the listing.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupFile {
    pub name: String,
    pub kind: BackupKind,
    pub size: u64,
    /// When it was taken (RFC 3339).
    pub created_at: String,
    #[serde(skip)]
    pub at_ms: i64,
}

/// The backups in `dir` (regular files with our names), newest first.
pub fn list(dir: &Path) -> Vec<BackupFile> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<BackupFile> = entries
        .flatten()
        .filter_map(|entry| {
            let name = BackupName::parse(&entry.file_name().to_string_lossy())?;
            let meta = entry.metadata().ok().filter(std::fs::Metadata::is_file)?;
            Some(BackupFile {
                created_at: crate::time::rfc3339(name.at_ms),
                name: name.name,
                kind: name.kind,
                size: meta.len(),
                at_ms: name.at_ms,
            })
        })
        .collect();
    files.sort_by(|a, b| b.at_ms.cmp(&a.at_ms).then_with(|| b.name.cmp(&a.name)));
    files
}

/// Removes scheduled backups beyond the newest `keep` (0 keeps all); returns the names removed.
/// Pre-migration backups and files of other names are never touched.
pub fn prune(dir: &Path, keep: u32) -> Vec<String> {
    if keep == 0 {
        return Vec::new();
    }
    let mut removed = Vec::new();
    let scheduled = list(dir)
        .into_iter()
        .filter(|f| f.kind == BackupKind::Scheduled);
    for old in scheduled.skip(keep as usize) {
        match std::fs::remove_file(dir.join(&old.name)) {
            Ok(()) => removed.push(old.name),
            Err(e) => tracing::warn!(file = %old.name, error = %e, "cannot remove an old backup"),
        }
    }
    removed
}

/// Removes the temporary files (`.<backup name>.<random>.partial`) a crash during a backup left
/// in `dir`.
pub fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !is_temp_name(&name) {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => tracing::info!(file = %name, "removed an unfinished backup"),
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "cannot remove an unfinished backup")
            }
        }
    }
}

/// Whether `name` is the temporary file of one of our backups.
fn is_temp_name(name: &str) -> bool {
    name.strip_prefix('.')
        .and_then(|n| n.strip_suffix(TEMP_SUFFIX))
        .and_then(|n| n.rsplit_once('.'))
        .is_some_and(|(backup, random)| {
            !random.is_empty()
                && random.bytes().all(|b| b.is_ascii_hexdigit())
                && BackupName::parse(backup).is_some()
        })
}

/// Creates `dir` (owner only) when missing.
pub(crate) fn create_dir(dir: &Path) -> AppResult<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| AppError::internal(format!("cannot create {}: {e}", dir.display())))?;
    #[cfg(unix)]
    lock::give_to_dir_owner(dir);
    Ok(())
}

/// Writes a sound copy of the database `conn` is open on to `dir/name` (creating `dir`), with
/// [`crate::db::backup_connection`]. Returns the size in bytes. Blocking.
pub fn write_backup(conn: &Connection, dir: &Path, name: &str) -> AppResult<u64> {
    create_dir(dir)?;
    let size = crate::db::backup_connection(conn, &dir.join(name))?;
    // `migrate` run as root: the server's user must be able to list and prune the file.
    #[cfg(unix)]
    lock::give_to_dir_owner(&dir.join(name));
    Ok(size)
}

/// The outcome of the last backup attempt, for the admin page.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub last_success: Option<Outcome>,
    /// The last failure, cleared by the next success.
    pub last_error: Option<Outcome>,
}

/// One attempt.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub at: String,
    /// The file written, or what went wrong.
    pub message: String,
}

/// The backups' state in [`AppState`]: status, the one-at-a-time gate, the last slot tried, and
/// the data-dir lock of a running server.
#[derive(Debug, Default)]
pub struct Backups {
    status: Mutex<Status>,
    running: tokio::sync::Mutex<()>,
    /// The last schedule slot a backup was attempted in (`None`: not known yet).
    last_slot: Mutex<Option<i64>>,
    lock: Mutex<Option<lock::DataLock>>,
}

impl Backups {
    /// Keeps the data-dir lock for as long as the state lives.
    pub fn hold_lock(&self, lock: lock::DataLock) {
        *self.lock.lock().unwrap_or_else(|e| e.into_inner()) = Some(lock);
    }

    /// The last outcomes.
    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Takes a backup now, prunes, records the outcome. One at a time: "back up now" gets `CONFLICT`
/// while another runs, the scheduler (`wait`) waits for it.
pub async fn back_up_now(state: &AppState, wait: bool) -> AppResult<BackupFile> {
    let _turn = if wait {
        state.backups().running.lock().await
    } else {
        state.backups().running.try_lock().map_err(|_| {
            AppError::new(ErrorCode::Conflict)
                .with_details(serde_json::json!({ "reason": "a backup is already running" }))
        })?
    };
    let now = state.clock().now_ms();
    let name = BackupName::scheduled(now);
    let dir = state.config().backup_dir();
    let keep = state.config().backup.keep;
    let file_name = name.name.clone();
    let result = state
        .db()
        .run(move |conn| {
            let size = write_backup(conn, &dir, &file_name)?;
            let removed = prune(&dir, keep);
            if !removed.is_empty() {
                tracing::info!(?removed, "removed old backups");
            }
            Ok(size)
        })
        .await;
    let mut status = state
        .backups()
        .status
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let at = crate::time::rfc3339(now);
    match result {
        Ok(size) => {
            tracing::info!(file = %name.name, size, "backup written");
            status.last_success = Some(Outcome {
                at: at.clone(),
                message: name.name.clone(),
            });
            status.last_error = None;
            Ok(BackupFile {
                name: name.name,
                kind: name.kind,
                size,
                created_at: crate::time::rfc3339(name.at_ms),
                at_ms: name.at_ms,
            })
        }
        Err(e) => {
            let message = match &e {
                AppError::Internal(detail) => detail.clone(),
                other => other.to_string(),
            };
            tracing::error!(error = %message, "backup failed; retrying at the next slot");
            status.last_error = Some(Outcome { at, message });
            Err(e)
        }
    }
}

/// One look at the schedule: backs up when the clock is in a later slot than the last attempt
/// (the newest backup's slot at start, so a slot missed while the server was down runs now).
/// Returns whether a backup was attempted. A failure waits for the next slot.
pub async fn tick(state: &AppState) -> bool {
    let config = state.config();
    let now = state.clock().now_ms();
    let Some(current) = slot(config.backup.schedule, now) else {
        return false;
    };
    let due = {
        let mut last = state
            .backups()
            .last_slot
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if last.is_none() {
            *last = list(&config.backup_dir())
                .iter()
                .find(|f| f.kind == BackupKind::Scheduled)
                .and_then(|f| slot(config.backup.schedule, f.at_ms));
        }
        let due = last.is_none_or(|l| current > l);
        if due {
            *last = Some(current);
        }
        due
    };
    if due {
        let _ = back_up_now(state, true).await;
    }
    due
}

/// The scheduler: removes unfinished backups, then looks at the schedule shortly after start and
/// every minute until shutdown.
pub async fn run(state: AppState) {
    let dir = state.config().backup_dir();
    let _ = tokio::task::spawn_blocking(move || remove_stale_temps(&dir)).await;
    if state.config().backup.schedule == BackupSchedule::Off {
        return;
    }
    let token = state.shutdown_token().clone();
    let mut delay = std::time::Duration::from_secs(30);
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = std::time::Duration::from_secs(60);
        tick(&state).await;
    }
}

/// Before a start migrates an existing database: when `path` holds a database at a schema
/// version older than this build's, writes `pre-migration-v<old>-<time>.db` to the backup
/// directory. Errors (the migration must not run) when that backup fails. Returns the file
/// written, if any.
pub fn before_migration(config: &Config, now_ms: i64) -> Result<Option<PathBuf>, String> {
    let path = config.database_path();
    if !path.is_file() {
        return Ok(None);
    }
    let latest = crate::db::migrations::latest_version();
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| format!("cannot read the schema version of {}: {e}", path.display()))?;
    if version == 0 || version >= latest {
        return Ok(None);
    }
    let dir = config.backup_dir();
    remove_stale_temps(&dir);
    let name = BackupName::pre_migration(version, now_ms);
    write_backup(&conn, &dir, &name.name).map_err(|e| {
        let detail = match e {
            AppError::Internal(d) => d,
            other => other.to_string(),
        };
        format!(
            "the database needs migrating from schema version {version} to {latest}, and the \
             backup taken first failed ({detail}); nothing was changed. Free space in or fix \
             {} (backup.dir) and start again",
            dir.display()
        )
    })?;
    let file = dir.join(&name.name);
    tracing::info!(file = %file.display(), from = version, to = latest, "backed up the database before migrating it");
    Ok(Some(file))
}

/// After a clean start that found the schema current (no migration ran): the pre-migration
/// backups have served their purpose and go.
pub fn remove_pre_migration_backups(config: &Config) {
    let dir = config.backup_dir();
    for file in list(&dir) {
        if file.kind == BackupKind::PreMigration {
            match std::fs::remove_file(dir.join(&file.name)) {
                Ok(()) => {
                    tracing::info!(file = %file.name, "removed the backup taken before the last migration")
                }
                Err(e) => {
                    tracing::warn!(file = %file.name, error = %e, "cannot remove a pre-migration backup")
                }
            }
        }
    }
}

/// The backup routes (under `/api/v1`).
pub fn routes() -> Routes {
    Routes::new()
        .add(Method::GET, "/admin/backups", Access::Admin, list_backups)
        .add(Method::POST, "/admin/backups", Access::Admin, create_backup)
        .add(
            Method::GET,
            "/admin/backup",
            Access::Admin,
            fresh::download_backup,
        )
        .add(
            Method::GET,
            "/admin/backups/{name}",
            Access::Admin,
            download_backup,
        )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Listing {
    schedule: BackupSchedule,
    dir: String,
    keep: u32,
    running: bool,
    #[serde(flatten)]
    status: Status,
    backups: Vec<BackupFile>,
}

/// `GET /admin/backups`: the backups, newest first, the schedule and the last outcomes.
async fn list_backups(State(state): State<AppState>, _admin: AdminUser) -> AppResult<ApiResponse> {
    let dir = state.config().backup_dir();
    let backups = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || list(&dir))
            .await
            .map_err(|e| AppError::internal(format!("list backups: {e}")))?
    };
    let listing = Listing {
        schedule: state.config().backup.schedule,
        dir: dir.display().to_string(),
        keep: state.config().backup.keep,
        running: state.backups().running.try_lock().is_err(),
        status: state.backups().status(),
        backups,
    };
    Ok(ApiResponse::ok(&listing))
}

/// `POST /admin/backups`: back up now; 201 with the file, 409 while another backup runs.
async fn create_backup(State(state): State<AppState>, _admin: AdminUser) -> AppResult<ApiResponse> {
    let file = back_up_now(&state, false).await?;
    Ok(ApiResponse::created(&file))
}

/// `GET /admin/backups/{name}`: the file, for a name of our patterns that exists.
async fn download_backup(
    State(state): State<AppState>,
    _admin: AdminUser,
    UrlPath(name): UrlPath<String>,
) -> AppResult<Response> {
    let Some(name) = BackupName::parse(&name) else {
        return Err(AppError::new(ErrorCode::NotFound));
    };
    let path = state.config().backup_dir().join(&name.name);
    // Only what the listing shows: a regular file, never a link to elsewhere.
    if !tokio::fs::symlink_metadata(&path)
        .await
        .is_ok_and(|m| m.file_type().is_file())
    {
        return Err(AppError::new(ErrorCode::NotFound));
    }
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(_) => return Err(AppError::new(ErrorCode::NotFound)),
    };
    let meta = file
        .metadata()
        .await
        .map_err(|e| AppError::internal(format!("backup metadata: {e}")))?;
    if !meta.is_file() {
        return Err(AppError::new(ErrorCode::NotFound));
    }
    let mut response = Body::from_stream(fresh::chunks(file, None)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.sqlite3"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.len()));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", name.name)) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_nothing_else_parses() {
        let at = 1_750_000_123_456;
        let n = BackupName::scheduled(at);
        assert_eq!(n.name, "medianest-20250615-150843.db");
        assert_eq!(BackupName::parse(&n.name), Some(n.clone()));
        let p = BackupName::pre_migration(4, at);
        assert_eq!(p.name, "pre-migration-v4-20250615-150843.db");
        assert_eq!(
            BackupName::parse(&p.name).unwrap().kind,
            BackupKind::PreMigration
        );
        for bad in [
            "",
            "medianest.db",
            "../medianest-20250615-150843.db",
            "medianest-20250615-150843.db/..",
            "medianest-20250615-1508430.db",
            "medianest-2025061x-150843.db",
            "medianest-20251315-150843.db",
            "medianest-20250615-150843.db-wal",
            "pre-migration-v-20250615-150843.db",
            "pre-migration-v1/../x-20250615-150843.db",
            ".medianest-backup-abc.partial",
        ] {
            assert_eq!(BackupName::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_our_temporaries_are_stale_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let ours = format!(
            ".medianest-20250615-150843.db.{}.partial",
            uuid::Uuid::new_v4().simple()
        );
        let pre = ".pre-migration-v4-20250615-150843.db.0123abcd.partial";
        let others = [
            ".medianest.db.0123abcd.partial",
            ".medianest-20250615-150843.db.not-hex.partial",
            "medianest-20250615-150843.db.0123abcd.partial",
            "medianest-20250615-150843.db",
            "notes.partial",
        ];
        for name in [ours.as_str(), pre].iter().chain(others.iter()) {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        remove_stale_temps(dir.path());
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut want: Vec<String> = others.iter().map(|s| (*s).to_owned()).collect();
        want.sort();
        assert_eq!(left, want);
    }

    #[test]
    fn slots_follow_the_schedule() {
        // 2025-06-16 is a Monday.
        let monday = parse_stamp("20250616-000000").unwrap();
        let sunday_late = parse_stamp("20250615-235959").unwrap();
        let w = |ms| slot(BackupSchedule::Weekly, ms).unwrap();
        assert_eq!(w(monday), w(sunday_late) + 1);
        assert_eq!(w(monday + 6 * DAY_MS), w(monday));
        let d = |ms| slot(BackupSchedule::Daily, ms).unwrap();
        assert_eq!(d(monday), d(sunday_late) + 1);
        let h = |ms| slot(BackupSchedule::Hourly, ms).unwrap();
        assert_eq!(h(monday + HOUR_MS - 1), h(monday));
        assert_eq!(slot(BackupSchedule::Off, monday), None);
    }
}
