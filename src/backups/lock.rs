//! The data-dir lock: `<data_dir>/medianest.lock`, holding the PID of the server using the
//! directory under an exclusive advisory lock (`flock`). The operating system drops the lock when
//! the process ends, however it ends, so a lock file left by a crashed server (a dead PID) is
//! stale by construction: whoever asks next gets the lock. `medianest restore` takes it too, so a
//! server cannot start in the middle of a restore, and a restore cannot run under a server.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "medianest.lock";

/// A held lock on a data directory; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DataLock {
    _file: File,
    path: PathBuf,
}

impl DataLock {
    /// Takes the lock on `data_dir` (which must exist) for this process, writing its PID.
    /// Errs, naming the holder's PID, while another process holds it.
    pub fn acquire(data_dir: &Path) -> Result<Self, String> {
        let path = data_dir.join(LOCK_FILE);
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let mut previous = String::new();
        let _ = file.read_to_string(&mut previous);
        let previous = previous.trim().parse::<u32>().ok();
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                let holder = previous.map_or_else(
                    || "another process".to_owned(),
                    |pid| format!("process {pid}"),
                );
                return Err(format!(
                    "{} is in use by a running MediaNest ({holder}, lock {})",
                    data_dir.display(),
                    path.display()
                ));
            }
            Err(e) => return Err(format!("cannot lock {}: {e}", path.display())),
        }
        #[cfg(unix)]
        give_to_dir_owner(&path);
        if let Some(pid) = previous.filter(|p| *p != std::process::id()) {
            tracing::debug!(pid, "took over a stale lock file");
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Gives `file` to the owner and group of its directory, when they differ: a command run as root
/// (`restore`, `migrate`) in the service user's data dir leaves files that user's server can
/// open. Only when running as root (nobody else may give a file away); a failure is logged.
#[cfg(unix)]
pub(crate) fn give_to_dir_owner(file: &Path) {
    use std::os::unix::fs::MetadataExt;
    if !rustix::process::geteuid().is_root() {
        return;
    }
    let (Some(dir), Ok(meta)) = (file.parent(), std::fs::metadata(file)) else {
        return;
    };
    let Ok(dir_meta) = std::fs::metadata(dir) else {
        return;
    };
    if (meta.uid(), meta.gid()) == (dir_meta.uid(), dir_meta.gid()) {
        return;
    }
    if let Err(e) = std::os::unix::fs::chown(file, Some(dir_meta.uid()), Some(dir_meta.gid())) {
        tracing::warn!(
            file = %file.display(),
            error = %e,
            "cannot give the file to the data directory's owner"
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_a_dropped_lock_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let held = DataLock::acquire(dir.path()).unwrap();
        let text = std::fs::read_to_string(held.path()).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string());
        let e = DataLock::acquire(dir.path()).unwrap_err();
        assert!(
            e.contains(&format!("process {}", std::process::id())),
            "{e}"
        );
        drop(held);
        // A lock file whose holder is gone (here: a dead PID written by hand) is stale.
        std::fs::write(dir.path().join(LOCK_FILE), "999999999\n").unwrap();
        DataLock::acquire(dir.path()).unwrap();
    }
}
