//! Which kind of filesystem holds a path, from `statfs(2)`'s `f_type` magic number.
//!
//! SQLite's locking and WAL need a local filesystem: on NFS, SMB/CIFS and other network
//! filesystems byte-range locks are unreliable or missing and the WAL's shared memory cannot be
//! shared, so a database there corrupts or hangs. `medianest doctor` reports it; a start-up
//! refusal can use the same probe. FUSE is its own case: it may be local (mergerfs) or remote
//! (sshfs, rclone), and the magic number cannot tell.

use std::path::{Path, PathBuf};

/// What holds a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    /// A local filesystem (anything not in the network or FUSE tables).
    Local,
    /// A network or cluster filesystem, by name (`"NFS"`, `"SMB/CIFS"` ...).
    Network(&'static str),
    /// A FUSE filesystem: local or remote, the kernel does not say.
    Fuse,
    /// Not known on this platform.
    Unknown,
}

/// Network and cluster filesystems by their `f_type` magic (Linux `include/uapi/linux/magic.h`
/// and the filesystems' own headers).
pub const NETWORK_MAGIC: [(u64, &str); 13] = [
    (0x6969, "NFS"),
    (0x517B, "SMB"),
    (0xFF53_4D42, "CIFS"),
    (0xFE53_4D42, "SMB2"),
    (0x0102_1997, "9p"),
    (0x00C3_6400, "Ceph"),
    (0x5346_414F, "AFS"),
    (0x6B41_4653, "kAFS"),
    (0x7375_7245, "Coda"),
    (0x564C, "NCP"),
    (0x0BD0_0BD0, "Lustre"),
    (0x0116_1970, "GFS2"),
    (0x7461_636F, "OCFS2"),
];

/// The FUSE magic (`FUSE_SUPER_MAGIC`).
pub const FUSE_MAGIC: u64 = 0x6573_5546;

/// The kind of filesystem with `f_type` `magic`.
pub fn classify(magic: u64) -> FsKind {
    if magic == FUSE_MAGIC {
        return FsKind::Fuse;
    }
    NETWORK_MAGIC
        .iter()
        .find(|(m, _)| *m == magic)
        .map_or(FsKind::Local, |(_, name)| FsKind::Network(name))
}

/// The kind of filesystem holding `path`, probing its nearest existing ancestor when it does
/// not exist yet (a data dir about to be created lands there). Returns the path probed too.
pub fn kind_of(path: &Path) -> std::io::Result<(FsKind, PathBuf)> {
    let probed = nearest_existing(path);
    Ok((magic_of(&probed)?.map_or(FsKind::Unknown, classify), probed))
}

fn nearest_existing(path: &Path) -> PathBuf {
    let mut current = path.to_path_buf();
    loop {
        if current.exists() {
            return current;
        }
        match current.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => current = parent.to_path_buf(),
            _ => return PathBuf::from("."),
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn magic_of(path: &Path) -> std::io::Result<Option<u64>> {
    let stat = rustix::fs::statfs(path)?;
    // `f_type` is signed on some targets; the magic numbers are 32-bit patterns.
    #[allow(clippy::unnecessary_cast)]
    Ok(Some(stat.f_type as u64 & 0xFFFF_FFFF))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn magic_of(_path: &Path) -> std::io::Result<Option<u64>> {
    Ok(None)
}

/// What start-up does about the filesystem holding the data dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageVerdict {
    /// Local: start.
    Ok,
    /// Start, and log this warning (FUSE, or a network filesystem with the override).
    Warn(String),
    /// Do not start: this says why and names the override.
    Refuse(String),
}

/// The test-only variable (outside the `MEDIANEST_*` configuration namespace) that stands in
/// for the probe (`nfs`, `smb`, `cifs`, `9p`, `fuse`,
/// `local`): honoured only in debug builds, so the tests can show the real binary refusing
/// without a network mount. A release build ignores it.
pub const TEST_FS_KIND_ENV: &str = "TEST_MEDIANEST_FS_KIND";

/// The decision for a data dir at `probed` of `kind`, with `database.allow_network_fs`
/// `allow_network_fs`. The same words as `medianest doctor`'s data dir check.
pub fn storage_verdict(kind: FsKind, probed: &Path, allow_network_fs: bool) -> StorageVerdict {
    let at = probed.display();
    match kind {
        FsKind::Local | FsKind::Unknown => StorageVerdict::Ok,
        FsKind::Network(fs) if allow_network_fs => StorageVerdict::Warn(format!(
            "the data dir {at} is on {fs}, a network filesystem; starting anyway because \
             database.allow_network_fs = true: SQLite's write-ahead log needs shared memory and \
             file locks that {fs} does not give reliably, and the database can be corrupted"
        )),
        FsKind::Network(fs) => StorageVerdict::Refuse(format!(
            "the data dir {at} is on {fs}, a network filesystem: SQLite's write-ahead log needs \
             shared memory and POSIX file locks that {fs} does not give reliably, so the \
             database can be corrupted or hang. Move data_dir to a local disk (downloads may \
             stay on the share), or set database.allow_network_fs = true \
             (MEDIANEST_DATABASE__ALLOW_NETWORK_FS=true) to start anyway at that risk"
        )),
        FsKind::Fuse => StorageVerdict::Warn(format!(
            "the data dir {at} is on a FUSE filesystem: fine for a local union such as \
             mergerfs; if it is remote (sshfs, rclone), move data_dir to a local disk, as \
             SQLite needs working file locks"
        )),
    }
}

/// The kind of filesystem holding `dir`, or the stand-in of [`TEST_FS_KIND_ENV`] in a debug
/// build.
pub fn data_dir_kind(dir: &Path) -> std::io::Result<(FsKind, PathBuf)> {
    if cfg!(debug_assertions)
        && let Ok(kind) = std::env::var(TEST_FS_KIND_ENV)
    {
        let kind = match kind.to_ascii_lowercase().as_str() {
            "nfs" => FsKind::Network("NFS"),
            "smb" => FsKind::Network("SMB"),
            "cifs" => FsKind::Network("CIFS"),
            "9p" => FsKind::Network("9p"),
            "fuse" => FsKind::Fuse,
            _ => FsKind::Local,
        };
        return Ok((kind, nearest_existing(dir)));
    }
    kind_of(dir)
}

/// The start-up check of the data dir (`serve`, `migrate`): `Err` with the reason when it is on
/// a network filesystem and `allow_network_fs` is off; a warning is logged for FUSE or with the
/// override. A probe that fails is logged and lets the start go on.
pub fn check_data_dir(dir: &Path, allow_network_fs: bool) -> Result<(), String> {
    match data_dir_kind(dir) {
        Ok((kind, probed)) => match storage_verdict(kind, &probed, allow_network_fs) {
            StorageVerdict::Ok => Ok(()),
            StorageVerdict::Warn(message) => {
                tracing::warn!("{message}");
                Ok(())
            }
            StorageVerdict::Refuse(message) => Err(message),
        },
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot tell the data dir's filesystem");
            Ok(())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_start_refuses_network_filesystems_unless_allowed_and_warns_on_fuse() {
        let at = Path::new("/srv/medianest");
        assert_eq!(
            storage_verdict(FsKind::Local, at, false),
            StorageVerdict::Ok
        );
        assert_eq!(
            storage_verdict(FsKind::Unknown, at, false),
            StorageVerdict::Ok
        );
        for fs in ["NFS", "SMB", "CIFS", "SMB2", "9p", "Ceph"] {
            match storage_verdict(FsKind::Network(fs), at, false) {
                StorageVerdict::Refuse(m) => assert!(
                    m.contains(fs)
                        && m.contains("/srv/medianest")
                        && m.contains("write-ahead log")
                        && m.contains("database.allow_network_fs = true"),
                    "{m}"
                ),
                other => panic!("{fs}: {other:?}"),
            }
            assert!(matches!(
                storage_verdict(FsKind::Network(fs), at, true),
                StorageVerdict::Warn(m) if m.contains(fs)
            ));
        }
        for allow in [false, true] {
            assert!(matches!(
                storage_verdict(FsKind::Fuse, at, allow),
                StorageVerdict::Warn(m) if m.contains("mergerfs")
            ));
        }
    }

    #[test]
    fn network_magics_are_network_and_others_local() {
        assert_eq!(classify(0x6969), FsKind::Network("NFS"));
        assert_eq!(classify(0x517B), FsKind::Network("SMB"));
        assert_eq!(classify(0xFF53_4D42), FsKind::Network("CIFS"));
        assert_eq!(classify(0xFE53_4D42), FsKind::Network("SMB2"));
        assert_eq!(classify(0x0102_1997), FsKind::Network("9p"));
        assert_eq!(classify(0x00C3_6400), FsKind::Network("Ceph"));
        assert_eq!(classify(0x6573_5546), FsKind::Fuse);
        // ext4, btrfs, xfs, tmpfs, zfs, overlayfs.
        for local in [
            0xEF53,
            0x9123_683E,
            0x5846_5342,
            0x0102_1994,
            0x2FC1_2FC1,
            0x794C_7630,
        ] {
            assert_eq!(classify(local), FsKind::Local, "{local:#x}");
        }
    }

    #[test]
    fn the_magic_table_has_no_duplicates() {
        let mut magics: Vec<u64> = NETWORK_MAGIC.iter().map(|(m, _)| *m).collect();
        magics.push(FUSE_MAGIC);
        let count = magics.len();
        magics.sort_unstable();
        magics.dedup();
        assert_eq!(magics.len(), count);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_missing_path_is_probed_at_its_nearest_existing_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        let (kind, probed) = kind_of(&dir.path().join("not/yet/there")).unwrap();
        assert_eq!(probed, dir.path());
        assert_ne!(kind, FsKind::Unknown);
    }
}
