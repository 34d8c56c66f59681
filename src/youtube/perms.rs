//! The mode and group of what a download leaves in the Plex library: yt-dlp writes with the
//! process's umask (often 0077 under systemd or in a container), so a Plex server running as
//! another user could not read the files. Once yt-dlp finishes, the files get
//! `youtube.file_mode`, the folders MediaNest made for them `youtube.dir_mode`, and both the
//! group `youtube.group` when it is set.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::config::YoutubeConfig;

/// An octal mode such as `"0644"` or `"755"` (permission and sticky/setgid bits only).
pub fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.trim();
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
    {
        return Err(format!(
            "must be an octal mode such as \"0644\" (got {text:?})"
        ));
    }
    u32::from_str_radix(digits, 8).map_err(|e| format!("not an octal mode: {e}"))
}

/// `youtube.file_mode`: permission bits only (no setuid, setgid or sticky bit on media), and
/// the owner (MediaNest) may read and write the file.
pub fn file_mode(text: &str) -> Result<u32, String> {
    let mode = parse_mode(text)?;
    if mode & !0o777 != 0 {
        return Err(format!(
            "{text:?} has a setuid, setgid or sticky bit; a media file wants permission bits only"
        ));
    }
    if mode & 0o600 != 0o600 {
        return Err(format!(
            "{text:?} does not let the owner (MediaNest) read and write the file; e.g. \"0644\""
        ));
    }
    Ok(mode)
}

/// `youtube.dir_mode`: permission bits and the setgid bit (new files then inherit the folder's
/// group), and the owner may list, enter and change the folder (MediaNest adds and deletes
/// files in it).
pub fn dir_mode(text: &str) -> Result<u32, String> {
    let mode = parse_mode(text)?;
    if mode & !0o2777 != 0 {
        return Err(format!(
            "{text:?} has a setuid or sticky bit; a folder may have the setgid bit (2xxx) only"
        ));
    }
    if mode & 0o700 != 0o700 {
        return Err(format!(
            "{text:?} does not give the owner (MediaNest) rwx on the folder; e.g. \"0755\""
        ));
    }
    Ok(mode)
}

/// The gid of a group given by number or by name (looked up in `/etc/group`).
pub fn resolve_group(group: &str) -> Result<u32, String> {
    resolve_group_in(group, Path::new("/etc/group"))
}

fn resolve_group_in(group: &str, file: &Path) -> Result<u32, String> {
    let group = group.trim();
    if group.is_empty() {
        return Err("must be a group name or a gid".into());
    }
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    let text = std::fs::read_to_string(file).map_err(|e| {
        format!(
            "cannot read {} to find group {group:?}: {e}",
            file.display()
        )
    })?;
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let gid = fields.nth(1)?.trim().parse::<u32>().ok()?;
            (name == group).then_some(gid)
        })
        .next()
        .ok_or_else(|| {
            format!(
                "no group named {group:?} in {} (use a gid, or create the group)",
                file.display()
            )
        })
}

/// Gives the downloaded `files` (relative to `download_root`) `youtube.file_mode`, and the
/// folders from `user_root` down to each of them `youtube.dir_mode`, and both the group.
/// Blocking.
///
/// Each path is opened from `user_root` down, one component at a time, without following a
/// symbolic link (`O_NOFOLLOW`), and its mode and group are changed on the open descriptor
/// (`fchmod`, `fchown`): a file or folder swapped for a link after yt-dlp finished (by anyone
/// who may write in a group-writable folder) is refused, never followed to a file elsewhere
/// (the database, the secret key). Only regular files and folders are changed. A group that
/// cannot be given (MediaNest not a member of it) does not stop the modes; every failure is
/// reported together.
pub fn apply(
    config: &YoutubeConfig,
    download_root: &Path,
    user_root: &Path,
    files: &[String],
) -> Result<(), String> {
    let file_mode = file_mode(&config.file_mode)?;
    let dir_mode = dir_mode(&config.dir_mode)?;
    let gid = config.group.as_deref().map(resolve_group).transpose()?;
    // Paths relative to the user's folder; anything outside it is not ours to change.
    let mut files_rel = Vec::new();
    let mut dirs = BTreeSet::from([PathBuf::new()]);
    for f in files {
        let Ok(rel) = download_root
            .join(f)
            .strip_prefix(user_root)
            .map(Path::to_path_buf)
        else {
            continue;
        };
        let plain = rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !plain || rel.as_os_str().is_empty() {
            continue;
        }
        for dir in rel.ancestors().skip(1) {
            dirs.insert(dir.to_path_buf());
        }
        files_rel.push(rel);
    }
    let mut failures = Vec::new();
    let root = match open_nofollow(None, user_root, true) {
        Ok(fd) => fd,
        Err(e) => return Err(format!("cannot open {}: {e}", user_root.display())),
    };
    let mut change = |rel: &Path, dir: bool, mode: u32| {
        let shown = user_root.join(rel);
        let fd = match open_below(&root, rel, dir) {
            Ok(fd) => fd,
            Err(e) => {
                failures.push(format!("{}: {e}", shown.display()));
                return;
            }
        };
        if let Some(gid) = gid
            && let Err(e) = rustix::fs::fchown(&fd, None, Some(rustix::fs::Gid::from_raw(gid)))
        {
            failures.push(format!(
                "cannot give {} group {gid} (is MediaNest's user in that group?): {e}",
                shown.display()
            ));
        }
        if let Err(e) = rustix::fs::fchmod(&fd, rustix::fs::Mode::from_raw_mode(mode)) {
            failures.push(format!("cannot set the mode of {}: {e}", shown.display()));
        }
    };
    for dir in &dirs {
        change(dir, true, dir_mode);
    }
    for file in &files_rel {
        change(file, false, file_mode);
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

/// Opens `path` (relative to `at`, or absolute when `at` is `None`) for a mode change: a
/// folder when `dir`, else a regular file; a symbolic link in its last component is refused.
fn open_nofollow(
    at: Option<&std::os::fd::OwnedFd>,
    path: &Path,
    dir: bool,
) -> std::io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{CWD, FileType, Mode, OFlags, fstat, openat};
    let mut flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    if dir {
        flags |= OFlags::DIRECTORY;
    }
    let fd = match at {
        Some(at) => openat(at, path, flags, Mode::empty())?,
        None => openat(CWD, path, flags, Mode::empty())?,
    };
    let kind = FileType::from_raw_mode(fstat(&fd)?.st_mode);
    let wanted = if dir {
        FileType::Directory
    } else {
        FileType::RegularFile
    };
    if kind != wanted {
        return Err(std::io::Error::other(format!(
            "not a {}",
            if dir { "folder" } else { "regular file" }
        )));
    }
    Ok(fd)
}

/// Opens `rel` below the folder `root`, one component at a time, following no link.
fn open_below(
    root: &std::os::fd::OwnedFd,
    rel: &Path,
    dir: bool,
) -> std::io::Result<std::os::fd::OwnedFd> {
    let parts: Vec<_> = rel.components().collect();
    if parts.is_empty() {
        return root.try_clone();
    }
    let mut current: Option<std::os::fd::OwnedFd> = None;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let at = current.as_ref().unwrap_or(root);
        let next = open_nofollow(Some(at), Path::new(part.as_os_str()), dir || !last)?;
        current = Some(next);
    }
    current.ok_or_else(|| std::io::Error::other("empty path"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_octal_and_at_most_four_digits() {
        assert_eq!(parse_mode("0644").unwrap(), 0o644);
        assert_eq!(parse_mode("755").unwrap(), 0o755);
        assert_eq!(parse_mode("2775").unwrap(), 0o2775);
        for bad in ["", "0o644", "0648", "rw-r--r--", "10644", "-1"] {
            assert!(parse_mode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_modes_are_plain_and_owner_writable_and_dir_modes_may_be_setgid() {
        assert_eq!(file_mode("0644").unwrap(), 0o644);
        assert_eq!(file_mode("0660").unwrap(), 0o660);
        assert_eq!(dir_mode("0755").unwrap(), 0o755);
        assert_eq!(dir_mode("2770").unwrap(), 0o2770);
        for bad in ["4755", "2644", "1644", "0444", "0200", "0x44"] {
            assert!(file_mode(bad).is_err(), "file {bad}");
        }
        for bad in ["4755", "1777", "0555", "0644", "0"] {
            assert!(dir_mode(bad).is_err(), "dir {bad}");
        }
        let e = file_mode("4755").unwrap_err();
        assert!(e.contains("setuid"), "{e}");
    }

    /// A finished file or a channel folder swapped for a link (as anyone who may write in a
    /// group-writable folder could) is refused, and what it points at keeps its mode; the other
    /// files still get theirs.
    #[test]
    fn links_swapped_in_for_files_or_folders_are_never_followed() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().unwrap();
        let downloads = base.path().join("downloads");
        let user = downloads.join("ann");
        let secret = base.path().join("secret.key");
        std::fs::write(&secret, b"k").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let outside = base.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("b.mp4"), b"x").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::create_dir_all(user.join("Mix")).unwrap();
        std::fs::write(user.join("Mix/good.mp4"), b"x").unwrap();
        std::fs::set_permissions(
            user.join("Mix/good.mp4"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::os::unix::fs::symlink(&secret, user.join("Mix/evil.mp4")).unwrap();
        std::os::unix::fs::symlink(&outside, user.join("Chan")).unwrap();
        let config = YoutubeConfig::default();
        let files = ["ann/Mix/good.mp4", "ann/Mix/evil.mp4", "ann/Chan/b.mp4"].map(String::from);
        let e = apply(&config, &downloads, &user, &files).unwrap_err();
        assert!(e.contains("evil.mp4") && e.contains("Chan"), "{e}");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&secret), 0o600, "the link's target is untouched");
        assert_eq!(mode(&outside), 0o700, "the linked folder is untouched");
        assert_eq!(mode(&user.join("Mix/good.mp4")), 0o644);
        assert_eq!(mode(&user.join("Mix")), 0o755);
    }

    #[test]
    fn groups_resolve_by_number_or_by_name_and_an_unknown_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("group");
        std::fs::write(&file, "root:x:0:\nplex:x:997:plex\nmedia:*:1001:a,b\n").unwrap();
        assert_eq!(resolve_group_in("1234", &file).unwrap(), 1234);
        assert_eq!(resolve_group_in("plex", &file).unwrap(), 997);
        assert_eq!(resolve_group_in("media", &file).unwrap(), 1001);
        let e = resolve_group_in("jellyfin", &file).unwrap_err();
        assert!(e.contains("\"jellyfin\"") && e.contains("group"), "{e}");
    }
}
