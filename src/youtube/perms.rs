//! The mode and group of what a download leaves in the Plex library: yt-dlp writes with the
//! process's umask (often 0077 under systemd or in a container), so a Plex server running as
//! another user could not read the files. Once yt-dlp finishes, the files get
//! `youtube.file_mode`, the folders MediaNest made for them `youtube.dir_mode`, and both the
//! group `youtube.group` when it is set.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
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
pub fn apply(
    config: &YoutubeConfig,
    download_root: &Path,
    user_root: &Path,
    files: &[String],
) -> Result<(), String> {
    let file_mode = file_mode(&config.file_mode)?;
    let dir_mode = dir_mode(&config.dir_mode)?;
    let gid = config.group.as_deref().map(resolve_group).transpose()?;
    let files: Vec<PathBuf> = files.iter().map(|f| download_root.join(f)).collect();
    let mut dirs = BTreeSet::from([user_root.to_path_buf()]);
    for file in &files {
        // Only the folders under the user's own folder: never the download dir or above.
        for dir in file.ancestors().skip(1) {
            if !dir.starts_with(user_root) {
                break;
            }
            dirs.insert(dir.to_path_buf());
        }
    }
    let set = |path: &Path, mode: u32| -> Result<(), String> {
        if let Some(gid) = gid {
            std::os::unix::fs::lchown(path, None, Some(gid))
                .map_err(|e| format!("cannot give {} group {gid}: {e}", path.display()))?;
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))
    };
    for dir in &dirs {
        set(dir, dir_mode)?;
    }
    for file in &files {
        set(file, file_mode)?;
    }
    Ok(())
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
