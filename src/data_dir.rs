//! The data directory: created on first start with the files the installation keeps for life:
//! `secret.key` (the key that encrypts secrets at rest, mode 0600) and `plex-client-id` (the
//! `X-Plex-Client-Identifier` plex.tv knows this installation by), `vapid.key` (the Web Push key
//! pair, `crate::push::vapid`). The database lives here too.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::config::Config;

/// The file holding the base64 secret key.
pub const SECRET_KEY_FILE: &str = "secret.key";
/// The file holding the Plex client identifier.
pub const CLIENT_ID_FILE: &str = "plex-client-id";
/// The environment variable that supplies the key instead of the file.
pub const SECRET_KEY_ENV: &str = "MEDIANEST_SECRET_KEY";

/// A problem preparing the data directory; the message says what and where.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DataDirError(pub String);

/// The 32-byte key that encrypts secrets at rest. `Debug` never shows it.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// The key bytes, for the cipher only.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Decodes a base64 key of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let raw = STANDARD
            .decode(text.trim())
            .map_err(|e| format!("not base64 ({e})"))?;
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|v: Vec<u8>| format!("{} bytes, want 32", v.len()))?;
        Ok(Self(bytes))
    }

    fn generate() -> Self {
        Self(rand::random())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(****)")
    }
}

/// The prepared data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    pub path: PathBuf,
    pub secret_key: SecretKey,
    pub plex_client_id: String,
    /// The Web Push key pair (`vapid.key`).
    pub vapid: crate::push::VapidKey,
}

impl DataDir {
    /// Creates what is missing: the directory (0700), `secret.key` unless the key comes from
    /// `MEDIANEST_SECRET_KEY`, and the Plex client id unless configured.
    pub fn prepare(config: &Config) -> Result<Self, DataDirError> {
        let env_key = std::env::var(SECRET_KEY_ENV).ok();
        Self::prepare_with(config, env_key.as_deref())
    }

    /// [`DataDir::prepare`] with the environment key passed in (tests).
    pub fn prepare_with(config: &Config, env_key: Option<&str>) -> Result<Self, DataDirError> {
        let path = config.data_dir.clone();
        create_private_dir(&path)?;
        let secret_key = match env_key {
            Some(text) => SecretKey::from_base64(text)
                .map_err(|e| DataDirError(format!("{SECRET_KEY_ENV} is not a valid key: {e}")))?,
            None => load_or_create_key(&path.join(SECRET_KEY_FILE))?,
        };
        let plex_client_id = match &config.plex.client_id {
            Some(id) => id.clone(),
            None => load_or_create_text(&path.join(CLIENT_ID_FILE), || {
                uuid::Uuid::new_v4().to_string()
            })?,
        };
        let vapid = crate::push::VapidKey::load_or_create(&path)?;
        remove_leftover_backups(&path);
        Ok(Self {
            path,
            secret_key,
            plex_client_id,
            vapid,
        })
    }
}

/// Removes `.backup-*.db` copies that a crash during `GET /admin/backup` left behind.
fn remove_leftover_backups(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".backup-") && name.ends_with(".db") {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => tracing::info!(file = %name, "removed a leftover backup copy"),
                Err(e) => {
                    tracing::warn!(file = %name, error = %e, "cannot remove a leftover backup copy")
                }
            }
        }
    }
}

fn create_private_dir(path: &Path) -> Result<(), DataDirError> {
    if path.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path).map_err(|e| {
        DataDirError(format!(
            "cannot create data directory {}: {e}",
            path.display()
        ))
    })
}

fn load_or_create_key(path: &Path) -> Result<SecretKey, DataDirError> {
    match std::fs::read_to_string(path) {
        Ok(text) => SecretKey::from_base64(&text).map_err(|e| {
            DataDirError(format!(
                "{} is not a valid key: {e}; restore it from a backup, or set {SECRET_KEY_ENV}",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            write_private(path, &format!("{}\n", STANDARD.encode(key.0)))?;
            tracing::info!(path = %path.display(), "generated a new secret key; back it up with the database");
            Ok(key)
        }
        Err(e) => Err(DataDirError(format!("cannot read {}: {e}", path.display()))),
    }
}

fn load_or_create_text(path: &Path, make: impl FnOnce() -> String) -> Result<String, DataDirError> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        Ok(_) => Err(DataDirError(format!("{} is empty", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let value = make();
            write_private(path, &format!("{value}\n"))?;
            Ok(value)
        }
        Err(e) => Err(DataDirError(format!("cannot read {}: {e}", path.display()))),
    }
}

/// Writes a new file readable by the owner only; fails if it already exists.
pub fn write_private(path: &Path, contents: &str) -> Result<(), DataDirError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| DataDirError(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| DataDirError(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config_in(dir: &Path) -> Config {
        Config {
            data_dir: dir.join("data"),
            ..Config::default()
        }
    }

    #[test]
    fn first_start_creates_a_private_key_and_a_client_id_that_persist() {
        let tmp = tempfile::tempdir().unwrap();
        let config = config_in(tmp.path());
        let first = DataDir::prepare_with(&config, None).unwrap();
        let key_path = config.data_dir.join(SECRET_KEY_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let dir_mode = std::fs::metadata(&config.data_dir)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(dir_mode & 0o077, 0);
        }
        let second = DataDir::prepare_with(&config, None).unwrap();
        assert_eq!(first.secret_key.bytes(), second.secret_key.bytes());
        assert_eq!(first.plex_client_id, second.plex_client_id);
        assert!(!format!("{first:?}").contains(&STANDARD.encode(first.secret_key.bytes())));
    }

    #[test]
    fn a_damaged_key_file_stops_the_start_with_a_clear_message() {
        let tmp = tempfile::tempdir().unwrap();
        let config = config_in(tmp.path());
        std::fs::create_dir_all(&config.data_dir).unwrap();
        std::fs::write(config.data_dir.join(SECRET_KEY_FILE), "short").unwrap();
        let e = DataDir::prepare_with(&config, None).unwrap_err().0;
        assert!(
            e.contains("secret.key") && e.contains("not a valid key"),
            "{e}"
        );
    }

    #[test]
    fn leftover_backup_copies_are_removed_at_start() {
        let tmp = tempfile::tempdir().unwrap();
        let config = config_in(tmp.path());
        std::fs::create_dir_all(&config.data_dir).unwrap();
        let leftover = config.data_dir.join(".backup-0123.db");
        let keep = config.data_dir.join("medianest.db");
        std::fs::write(&leftover, "x").unwrap();
        std::fs::write(&keep, "x").unwrap();
        DataDir::prepare_with(&config, None).unwrap();
        assert!(!leftover.exists());
        assert!(keep.exists());
    }

    #[test]
    fn the_environment_key_wins_and_no_file_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let config = config_in(tmp.path());
        let key = STANDARD.encode([7u8; 32]);
        let d = DataDir::prepare_with(&config, Some(&key)).unwrap();
        assert_eq!(d.secret_key.bytes(), &[7u8; 32]);
        assert!(!config.data_dir.join(SECRET_KEY_FILE).exists());
        let e = DataDir::prepare_with(&config, Some("abc")).unwrap_err().0;
        assert!(e.contains(SECRET_KEY_ENV), "{e}");
    }
}
