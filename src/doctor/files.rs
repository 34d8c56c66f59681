//! Local checks: yt-dlp's cookies file can be read, the download dir takes files, the data dir
//! is on a local filesystem, and the webhook secret is set. Nothing here is left behind: the write probe is removed at once, and a
//! missing download dir is not created (run as another user, the doctor would create it with the
//! wrong owner).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::report::Check;
use crate::config::Config;
use crate::platform::fs::{FsKind, data_dir_kind};

/// Creates, writes and removes a probe file in `dir`.
fn probe_writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(
        ".medianest-doctor-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|mut file| file.write_all(b"medianest doctor\n"));
    let removed = std::fs::remove_file(&probe);
    written.and(removed)
}

/// The nearest existing folder at or above `path`.
fn nearest_existing(path: &Path) -> Option<PathBuf> {
    path.ancestors().find(|p| p.is_dir()).map(Path::to_path_buf)
}

/// The download dir exists (or can be made) and takes a file.
pub fn check_download_dir(config: &Config) -> Check {
    const NAME: &str = "download dir";
    let dir = config.download_dir();
    let fix = format!(
        "make {} writable by the user MediaNest runs as (and run the doctor as that user), or \
         set youtube.download_dir",
        dir.display()
    );
    if dir.is_dir() {
        return match probe_writable(&dir) {
            Ok(()) => Check::ok(NAME, format!("{} is writable", dir.display())),
            Err(e) => Check::fail(NAME, format!("cannot write in {}: {e}", dir.display()), fix),
        };
    }
    if dir.exists() {
        return Check::fail(
            NAME,
            format!("{} is not a folder", dir.display()),
            "set youtube.download_dir to a folder",
        );
    }
    match nearest_existing(&dir) {
        Some(parent) => match probe_writable(&parent) {
            Ok(()) => Check::ok(
                NAME,
                format!(
                    "{} does not exist yet; the first download creates it in {} (writable)",
                    dir.display(),
                    parent.display()
                ),
            ),
            Err(e) => Check::fail(
                NAME,
                format!(
                    "{} does not exist and {} is not writable: {e}",
                    dir.display(),
                    parent.display()
                ),
                fix,
            ),
        },
        None => Check::fail(NAME, format!("{} cannot be created", dir.display()), fix),
    }
}

/// yt-dlp's cookies file (the one uploaded on the admin page, else `youtube.cookies_file`), when
/// there is one, can be read by this user and is in the format yt-dlp reads. Its content is
/// never shown.
pub fn check_cookies_file(path: Option<&Path>) -> Check {
    const NAME: &str = "cookies file";
    let Some(path) = path else {
        return Check::skip(
            NAME,
            "none set (upload one on the admin page when YouTube asks to sign in)",
        );
    };
    let shown = path.display();
    let fix_read = format!(
        "make {shown} readable by the user MediaNest runs as, or upload the cookies on the \
         admin page (YouTube tab)"
    );
    let size = match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => meta.len(),
        Ok(_) => return Check::fail(NAME, format!("{shown} is not a file"), fix_read),
        Err(e) => return Check::fail(NAME, format!("cannot read {shown}: {e}"), fix_read),
    };
    if size > crate::youtube::MAX_COOKIES_FILE_BYTES {
        return Check::fail(
            NAME,
            format!(
                "{shown} is larger than {} bytes",
                crate::youtube::MAX_COOKIES_FILE_BYTES
            ),
            "export the cookies of the YouTube site only",
        );
    }
    match std::fs::read_to_string(path) {
        Ok(text) if crate::youtube::is_netscape_cookies(&text) => {
            let cookies = text
                .lines()
                .filter(|l| {
                    let l = l.strip_prefix("#HttpOnly_").unwrap_or(l);
                    !l.starts_with('#') && l.split('\t').count() == 7
                })
                .count();
            let plural = if cookies == 1 { "" } else { "s" };
            Check::ok(NAME, format!("{shown} holds {cookies} cookie{plural}"))
        }
        Ok(_) => Check::fail(
            NAME,
            format!("{shown} is not a Netscape cookies file"),
            "export cookies.txt from the browser (its first line is \"# Netscape HTTP Cookie \
             File\"), not JSON",
        ),
        Err(e) => Check::fail(NAME, format!("cannot read {shown}: {e}"), fix_read),
    }
}

/// The data dir (the database, its WAL and the secret key) is on a local filesystem.
pub fn check_data_dir(config: &Config) -> Check {
    const NAME: &str = "data dir";
    let dir = &config.data_dir;
    let allowed = config.database.allow_network_fs;
    match data_dir_kind(dir) {
        Ok((FsKind::Local, probed)) => Check::ok(
            NAME,
            format!("{} is on a local filesystem", probed.display()),
        ),
        Ok((FsKind::Network(fs), probed)) if allowed => Check::warn(
            NAME,
            format!(
                "{} is on {fs}, a network filesystem (allowed by database.allow_network_fs)",
                probed.display()
            ),
            format!(
                "move data_dir to a local disk: SQLite's write-ahead log needs shared memory and \
                 file locks that {fs} does not give reliably, and the database can be corrupted"
            ),
        ),
        Ok((FsKind::Network(fs), probed)) => Check::fail(
            NAME,
            format!("{} is on {fs}, a network filesystem", probed.display()),
            format!(
                "move data_dir to a local disk: SQLite's locks and write-ahead log do not work \
                 over {fs}, and the database can be corrupted (downloads may stay on the share); \
                 MediaNest will not start there unless database.allow_network_fs = true"
            ),
        ),
        Ok((FsKind::Fuse, probed)) => Check::warn(
            NAME,
            format!("{} is on a FUSE filesystem", probed.display()),
            "fine for a local union such as mergerfs; if it is remote (sshfs, rclone), move \
             data_dir to a local disk: SQLite needs working file locks",
        ),
        Ok((FsKind::Unknown, probed)) => Check::skip(
            NAME,
            format!(
                "cannot tell the filesystem of {} on this platform",
                probed.display()
            ),
        ),
        Err(e) => Check::warn(
            NAME,
            format!("cannot read the filesystem of {}: {e}", dir.display()),
            "check that data_dir exists and is readable",
        ),
    }
}

/// The webhook secret is set when Seerr is set up: without it every webhook is refused and
/// request changes arrive only through polling.
pub fn check_webhook_secret(config: &Config, seerr_set_up: bool) -> Check {
    const NAME: &str = "webhook secret";
    let configured = config
        .webhooks
        .overseerr_secret
        .as_ref()
        .map(|s| s.expose().trim().len())
        .filter(|len| *len > 0);
    match (configured, seerr_set_up) {
        (Some(len), _) if len < 16 => Check::warn(
            NAME,
            format!("webhooks.overseerr_secret is set but short ({len} characters)"),
            "use a long random value (openssl rand -hex 32) in webhooks.overseerr_secret and \
             in the Authorization header of Seerr's webhook agent",
        ),
        (Some(_), _) => Check::ok(NAME, "webhooks.overseerr_secret is set"),
        (None, false) => Check::skip(NAME, "Seerr is not set up"),
        (None, true) => Check::fail(
            NAME,
            "webhooks.overseerr_secret is not set: Seerr's webhooks are refused, so requests \
             change state only when the portal polls",
            format!(
                "set webhooks.overseerr_secret (openssl rand -hex 32) and put the same value in \
                 the Authorization header of Seerr's webhook agent (Settings > Notifications > \
                 Webhook, URL http://<portal>{}/api/v1/webhooks/seerr)",
                config.server.base()
            ),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::doctor::report::Status;

    #[test]
    fn the_download_dir_probe_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        // Not there yet: its parent is probed, nothing is created.
        let check = check_download_dir(&config);
        assert_eq!(check.status, Status::Ok, "{check:?}");
        assert!(!config.download_dir().exists());
        std::fs::create_dir(config.download_dir()).unwrap();
        assert_eq!(check_download_dir(&config).status, Status::Ok);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(std::fs::read_dir(config.download_dir()).unwrap().count(), 0);
    }

    #[test]
    fn the_cookies_file_is_read_and_its_format_checked() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(check_cookies_file(None).status, Status::Skip);
        let path = dir.path().join("cookies.txt");
        let missing = check_cookies_file(Some(&path));
        assert_eq!(missing.status, Status::Fail);
        assert!(missing.fix.unwrap().contains("readable by the user"));
        std::fs::write(&path, "[{\"name\": \"SID\"}]").unwrap();
        assert_eq!(check_cookies_file(Some(&path)).status, Status::Fail);
        std::fs::write(
            &path,
            "# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t0\tSID\tsecret-value\n\
             #HttpOnly_.youtube.com\tTRUE\t/\tTRUE\t0\tHSID\tsecret-value\n",
        )
        .unwrap();
        let ok = check_cookies_file(Some(&path));
        assert_eq!(ok.status, Status::Ok, "{ok:?}");
        assert!(ok.detail.ends_with("holds 2 cookies"), "{ok:?}");
        assert!(!ok.detail.contains("secret-value"));
        assert_eq!(check_cookies_file(Some(dir.path())).status, Status::Fail);
    }

    #[test]
    fn the_webhook_secret_matters_only_with_seerr() {
        let mut config = Config::default();
        assert_eq!(check_webhook_secret(&config, false).status, Status::Skip);
        assert_eq!(check_webhook_secret(&config, true).status, Status::Fail);
        config.webhooks.overseerr_secret = Some(Secret::new("short"));
        assert_eq!(check_webhook_secret(&config, true).status, Status::Warn);
        config.webhooks.overseerr_secret = Some(Secret::new("0123456789abcdef0123"));
        assert_eq!(check_webhook_secret(&config, true).status, Status::Ok);
    }
}
