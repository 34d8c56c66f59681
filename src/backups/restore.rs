//! `medianest restore FILE [--dry-run]`: puts a backup in place of the database.
//!
//! Refused while a server holds the data directory (its lock, [`super::lock`]), for a file that
//! fails `integrity_check`, is not a MediaNest database, has a newer schema than this build, or
//! was written under another secret key than the one the server would use.
//! The current database (with its `-wal` and `-shm`) is moved aside under
//! `medianest.db.before-restore-<time>`, never deleted. The backup is first copied (`VACUUM
//! INTO`, which also folds in a WAL beside it) to a temporary file in the data directory and
//! renamed over the database last, so a crash at any point leaves either the old database or
//! the whole restored one, never half a file.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::lock::DataLock;
use crate::config::Config;
use crate::db::migrations::latest_version;

/// What a restore did (or, dry, would do): one line per step.
pub type Plan = Vec<String>;

/// Runs the restore of `file` into `config`'s data directory; `dry_run` checks and describes the
/// steps without changing anything. The error says why it was refused or where it failed.
pub fn restore(config: &Config, file: &Path, dry_run: bool, now_ms: i64) -> Result<Plan, String> {
    let data_dir = &config.data_dir;
    let db = config.database_path();
    // Held until the end: no server may start on the directory meanwhile.
    // A dry run creates no lock file where there is none (then no server holds the directory).
    let lock_exists = data_dir.join(super::lock::LOCK_FILE).exists();
    let _lock = if data_dir.is_dir() && (lock_exists || !dry_run) {
        Some(DataLock::acquire(data_dir).map_err(|e| format!("{e}; stop the server first"))?)
    } else {
        None
    };
    if !file.is_file() {
        return Err(format!("{} is not a file", file.display()));
    }
    let version = check_backup(file)?;
    let key_note = check_key(config, file)?;
    let latest = latest_version();
    let mut plan = Vec::new();
    let verb = |done: &str, would: &str| {
        if dry_run {
            would.to_owned()
        } else {
            done.to_owned()
        }
    };
    plan.push(format!(
        "{} is sound (integrity check ok), schema version {version}{}",
        file.display(),
        if version < latest {
            format!(
                "; migrations {} to {latest} apply at the next start",
                version + 1
            )
        } else {
            String::new()
        }
    ));
    let aside = aside_name(&db, now_ms);
    let sidecars: Vec<(PathBuf, PathBuf)> = ["-wal", "-shm"]
        .iter()
        .map(|s| (with_suffix(&db, s), with_suffix(&aside, s)))
        .filter(|(from, _)| from.exists())
        .collect();
    if db.exists() {
        plan.push(format!(
            "{} {} to {}{}",
            verb("moved", "would move"),
            db.display(),
            aside.display(),
            if sidecars.is_empty() {
                String::new()
            } else {
                " (with its -wal/-shm)".to_owned()
            }
        ));
    }
    plan.push(format!(
        "{} {} as {}",
        verb("put", "would put"),
        file.display(),
        db.display()
    ));
    plan.extend(key_note);
    if dry_run {
        plan.push("dry run: nothing was changed".to_owned());
        return Ok(plan);
    }

    // Owner only, as the server creates it.
    super::create_dir(data_dir).map_err(|e| match e {
        crate::error::AppError::Internal(detail) => detail,
        other => other.to_string(),
    })?;
    // Take the lock now that the directory exists (a fresh install restoring its first backup).
    let _late_lock = if _lock.is_none() {
        Some(DataLock::acquire(data_dir).map_err(|e| format!("{e}; stop the server first"))?)
    } else {
        None
    };
    let temp = data_dir.join(format!(
        ".medianest.db.restore-{}.partial",
        uuid::Uuid::new_v4().simple()
    ));
    let result = copy_into_place(file, &temp, &db, &aside, &sidecars);
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result?;
    crate::db::sync_dir(data_dir);
    Ok(plan)
}

/// The backup's schema version once it passed the checks.
fn check_backup(file: &Path) -> Result<i64, String> {
    let version = crate::db::check_file(file)
        .map_err(|e| format!("{} cannot be restored: {e}", file.display()))?;
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| e.to_string())?;
    let has_users: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'users')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    if version < 1 || !has_users {
        return Err(format!(
            "{} is not a MediaNest database (no schema version or users table)",
            file.display()
        ));
    }
    let latest = latest_version();
    if version > latest {
        return Err(format!(
            "{} has schema version {version}, newer than this MediaNest's {latest}; restore it \
             with the release that wrote it (or a newer one)",
            file.display()
        ));
    }
    Ok(version)
}

/// Refuses a backup that the server's secret key (`MEDIANEST_SECRET_KEY`, else
/// `data_dir/secret.key`) cannot open: the server would refuse to start on it. With no key yet,
/// a note says to put the backup's key in place before starting.
fn check_key(config: &Config, file: &Path) -> Result<Option<String>, String> {
    use crate::data_dir::{SECRET_KEY_ENV, SECRET_KEY_FILE, SecretKey};
    let key_file = config.data_dir.join(SECRET_KEY_FILE);
    let (key, source) = match std::env::var(SECRET_KEY_ENV) {
        Ok(text) => (text, SECRET_KEY_ENV.to_owned()),
        Err(_) => match std::fs::read_to_string(&key_file) {
            Ok(text) => (text, key_file.display().to_string()),
            Err(_) => {
                return Ok(Some(format!(
                    "note: there is no {} yet: put the secret.key that belongs to this backup \
                     there (or set {SECRET_KEY_ENV}) before starting MediaNest",
                    key_file.display()
                )));
            }
        },
    };
    let key =
        SecretKey::from_base64(&key).map_err(|e| format!("{source} is not a valid key: {e}"))?;
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| e.to_string())?;
    match crate::crypto::Cipher::new(&key).opens(&conn)? {
        Some(false) => Err(format!(
            "{} was written with another secret key than {source}; MediaNest could not start on \
             it. Put the secret.key that belongs to the backup in place (or set \
             {SECRET_KEY_ENV} to it) and run restore again",
            file.display()
        )),
        Some(true) | None => Ok(None),
    }
}

fn copy_into_place(
    file: &Path,
    temp: &Path,
    db: &Path,
    aside: &Path,
    sidecars: &[(PathBuf, PathBuf)],
) -> Result<(), String> {
    let source = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open {}: {e}", file.display()))?;
    let temp_str = temp
        .to_str()
        .ok_or_else(|| "the data directory path is not UTF-8".to_owned())?;
    source
        .execute("VACUUM INTO ?1", [temp_str])
        .map_err(|e| format!("cannot copy {}: {e}", file.display()))?;
    drop(source);
    crate::db::check_file(temp).map_err(|e| format!("the copy of {}: {e}", file.display()))?;
    std::fs::File::open(temp)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("fsync {}: {e}", temp.display()))?;
    // Run as root into the service user's data dir: the new database goes to that user.
    #[cfg(unix)]
    super::lock::give_to_dir_owner(temp);
    if db.exists() {
        // A hard link keeps the database under its own name until the final rename replaces
        // it; where links are not possible, a rename does (a crash in between leaves the
        // database aside and the restored copy as the temporary file, both whole).
        if std::fs::hard_link(db, aside).is_err() {
            std::fs::rename(db, aside)
                .map_err(|e| format!("cannot move {} to {}: {e}", db.display(), aside.display()))?;
        }
        for (from, to) in sidecars {
            std::fs::rename(from, to)
                .map_err(|e| format!("cannot move {} to {}: {e}", from.display(), to.display()))?;
        }
    }
    std::fs::rename(temp, db).map_err(|e| format!("cannot put the backup in place: {e}"))
}

/// `medianest.db.before-restore-YYYYMMDD-HHMMSS` beside the database (`-2`, `-3`, ... added
/// when that name is taken: an earlier database set aside is never replaced).
fn aside_name(db: &Path, now_ms: i64) -> PathBuf {
    let stamp = super::stamp(now_ms);
    let first = with_suffix(db, &format!(".before-restore-{stamp}"));
    let taken = |p: &Path| p.exists() || with_suffix(p, "-wal").exists();
    if !taken(&first) {
        return first;
    }
    (2..)
        .map(|n| with_suffix(db, &format!(".before-restore-{stamp}-{n}")))
        .find(|p| !taken(p))
        .unwrap_or(first)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}
