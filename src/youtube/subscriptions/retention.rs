//! Retention: which downloaded items of a subscription go ("keep the newest N", "keep D days"),
//! and taking an item's files away, whether retention prunes it or a user deletes it.
//!
//! Taking files away deletes them (only below [`crate::youtube::subscriptions_root`], never
//! through a symbolic link), then in one transaction marks the item (`pruned` or `deleted`,
//! no files, no bytes), takes its bytes off the subscription's and clears the files of its
//! download row, so the disk budget and the downloads list no longer count them. The item stays
//! in the archive: its video is never downloaded again. Plex is then asked to scan the folders
//! that changed; Plex not set up or down is logged, nothing more (the files are gone either way).
//!
//! Items a user marked `keep` are never pruned, but they count toward the newest N.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use super::model::{ITEM_COLUMNS, Item, Subscription, item_from_row};
use super::store;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::state::AppState;
use crate::youtube::{download_root, handoff, publish_updated, subscriptions_root, ytdlp};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// The statements, in one place so the plan test checks exactly what runs. Both read a range of
/// `youtube_subscription_items_retention` (migration 0013) and never sort.
pub(crate) mod sql {
    use super::ITEM_COLUMNS;

    /// The downloaded items after the newest `?2` (newest first by upload date, then by when
    /// they entered the archive).
    pub fn beyond_newest() -> String {
        format!(
            "SELECT {ITEM_COLUMNS} FROM youtube_subscription_items
                    INDEXED BY youtube_subscription_items_retention
              WHERE subscription_id = ?1 AND status = 'downloaded'
              ORDER BY upload_date DESC, created_at DESC, id DESC LIMIT -1 OFFSET ?2"
        )
    }

    /// Downloaded items not kept that were uploaded before the day `?2` (`YYYY-MM-DD`), or,
    /// without an upload date, entered the archive before `?3` (Unix ms).
    pub fn older_than() -> String {
        let from = format!(
            "SELECT {ITEM_COLUMNS} FROM youtube_subscription_items
                    INDEXED BY youtube_subscription_items_retention
              WHERE subscription_id = ?1 AND status = 'downloaded' AND keep = 0"
        );
        format!(
            "{from} AND upload_date < ?2
             UNION ALL
             {from} AND upload_date IS NULL AND created_at < ?3"
        )
    }

    /// One item of one subscription.
    pub fn item() -> String {
        format!(
            "SELECT {ITEM_COLUMNS} FROM youtube_subscription_items
              WHERE id = ?1 AND subscription_id = ?2"
        )
    }
}

/// The items of `sub` retention removes at `now_ms`: downloaded, not kept, and either beyond
/// its newest `keep_latest` downloaded items (kept ones count toward those) or uploaded (without
/// an upload date: archived) more than `keep_days` days ago. Neither setting: none.
pub fn candidates(conn: &Connection, sub: &Subscription, now_ms: i64) -> AppResult<Vec<Item>> {
    let mut out: Vec<Item> = Vec::new();
    if let Some(latest) = sub.keep_latest {
        let rows = conn
            .prepare_cached(&sql::beyond_newest())?
            .query_map(params![sub.id, latest.max(0)], item_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        out.extend(rows.into_iter().filter(|i| !i.keep));
    }
    if let Some(days) = sub.keep_days {
        let cutoff_ms = now_ms.saturating_sub(days.saturating_mul(DAY_MS));
        // The day the cutoff falls on: a video of that day is not older than `days` days.
        let cutoff_day: String = crate::time::rfc3339(cutoff_ms).chars().take(10).collect();
        let seen: HashSet<String> = out.iter().map(|i| i.id.clone()).collect();
        let rows = conn
            .prepare_cached(&sql::older_than())?
            .query_map(params![sub.id, cutoff_day, cutoff_ms], item_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        out.extend(rows.into_iter().filter(|i| !seen.contains(&i.id)));
    }
    Ok(out)
}

/// The item `item_id` of subscription `subscription_id`.
pub fn get_item(
    conn: &Connection,
    subscription_id: &str,
    item_id: &str,
) -> AppResult<Option<Item>> {
    Ok(conn
        .prepare_cached(&sql::item())?
        .query_row([item_id, subscription_id], item_from_row)
        .optional()?)
}

/// Sets the item's `keep` flag; false when there is no such item.
pub fn set_keep(
    conn: &Connection,
    subscription_id: &str,
    item_id: &str,
    keep: bool,
    now_ms: i64,
) -> AppResult<bool> {
    Ok(conn
        .prepare_cached(
            "UPDATE youtube_subscription_items SET keep = ?3, updated_at = ?4
              WHERE id = ?1 AND subscription_id = ?2",
        )?
        .execute(params![item_id, subscription_id, keep, now_ms])?
        == 1)
}

/// An item whose files were forgotten, and the download row cleared with it.
struct Forgotten {
    download_id: Option<String>,
}

/// Marks the item `status` (`pruned` or `deleted`) with no files and no bytes, takes its bytes
/// off the subscription (never below 0) and clears the files of its download row. Only an item
/// in one of `from` changes (`None` otherwise).
fn forget_files(
    conn: &Connection,
    subscription_id: &str,
    item_id: &str,
    status: &str,
    from: &[&str],
    now_ms: i64,
) -> AppResult<Option<Forgotten>> {
    let Some(item) = get_item(conn, subscription_id, item_id)? else {
        return Ok(None);
    };
    if !from.contains(&item.status.as_str()) {
        return Ok(None);
    }
    conn.prepare_cached(
        "UPDATE youtube_subscription_items
            SET status = ?2, file_paths = '[]', bytes = 0, updated_at = ?3
          WHERE id = ?1",
    )?
    .execute(params![item.id, status, now_ms])?;
    conn.prepare_cached(
        "UPDATE youtube_subscriptions SET bytes = max(0, bytes - ?2) WHERE id = ?1",
    )?
    .execute(params![subscription_id, item.bytes])?;
    if let Some(download) = &item.download_id {
        conn.prepare_cached("UPDATE youtube_downloads SET file_paths = '[]' WHERE id = ?1")?
            .execute([download])?;
    }
    Ok(Some(Forgotten {
        download_id: item.download_id,
    }))
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Deleted,
    /// Not there (already gone): fine.
    Missing,
    /// Outside the subscriptions root, through a symbolic link, absolute, or not a file: left
    /// alone.
    Refused,
}

/// Removes the file at `relative` (to `download_root`) if it resolves inside `root` (the
/// subscriptions root, canonical) without following a symbolic link out; the folder it was in
/// (canonical) when that resolved.
pub fn remove_file_inside(
    root: &Path,
    download_root: &Path,
    relative: &str,
) -> (Removal, Option<PathBuf>) {
    let relative = Path::new(relative);
    if relative.is_absolute() {
        return (Removal::Refused, None);
    }
    let path = download_root.join(relative);
    // First lexically (`..`), before anything on disk is looked at.
    let lexical_root = download_root.join("subscriptions");
    if !ytdlp::is_inside(&lexical_root, &path) {
        return (Removal::Refused, None);
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return (Removal::Refused, None);
    };
    // Then with links resolved: a linked folder must still be inside.
    let parent = match std::fs::canonicalize(parent) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (Removal::Missing, None),
        Err(_) => return (Removal::Refused, None),
    };
    if parent != root && !ytdlp::is_inside(root, &parent) {
        return (Removal::Refused, None);
    }
    let target = parent.join(name);
    let removal = match std::fs::symlink_metadata(&target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Removal::Missing,
        Err(_) => Removal::Refused,
        // A link is never followed, nor is a folder removed.
        Ok(meta) if !meta.file_type().is_file() => Removal::Refused,
        Ok(_) => match std::fs::remove_file(&target) {
            Ok(()) => Removal::Deleted,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Removal::Missing,
            Err(e) => {
                tracing::warn!(file = %target.display(), error = %e, "file not removed");
                Removal::Refused
            }
        },
    };
    (removal, Some(parent))
}

/// Removes `files` (paths relative to the download dir; see [`remove_file_inside`]) and the
/// folders left empty (not the root); returns the folders Plex should scan, relative to the
/// download dir. File IO, so on the blocking pool.
async fn remove_files(state: &AppState, files: Vec<String>) -> AppResult<Vec<PathBuf>> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let download_root = download_root(state.config());
        // No root, nothing of ours to remove.
        let Ok(root) = std::fs::canonicalize(subscriptions_root(state.config())) else {
            return Vec::new();
        };
        let mut folders = BTreeSet::new();
        for file in &files {
            let (removal, folder) = remove_file_inside(&root, &download_root, file);
            match removal {
                Removal::Refused => {
                    tracing::warn!(file = %file, "not removed: outside the subscriptions folder");
                }
                Removal::Deleted | Removal::Missing => {
                    folders.extend(folder);
                }
            }
        }
        let mut scan = BTreeSet::new();
        for folder in folders {
            // Fails (and is meant to) while anything is left in it.
            if folder != root {
                let _ = std::fs::remove_dir(&folder);
            }
            // The folder, or the nearest one still there, as the download dir names it.
            let mut at = folder.as_path();
            while at != root && !at.is_dir() {
                match at.parent() {
                    Some(up) if ytdlp::is_inside(&root, up) || up == root => at = up,
                    _ => break,
                }
            }
            if let Ok(rest) = at.strip_prefix(&root) {
                scan.insert(Path::new("subscriptions").join(rest));
            }
        }
        scan.into_iter().collect()
    })
    .await
    .map_err(|e| AppError::internal(format!("removing subscription files: {e}")))
}

/// Asks Plex to scan `folders` (relative to the download dir) in the subscriptions' library
/// (the one their episodes are handed to). Plex not set up, down, or without that library:
/// logged, nothing more.
pub async fn rescan(state: &AppState, folders: &[PathBuf]) {
    if folders.is_empty() {
        return;
    }
    let server = match crate::plex::server(state).await {
        Ok(server) => server,
        Err(e) if e.code() == ErrorCode::ServiceNotConfigured => {
            tracing::debug!("Plex is not set up; no scan after removing subscription files");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "Plex unavailable; no scan after removing subscription files");
            return;
        }
    };
    let sections = match server.sections().await {
        Ok(sections) => sections,
        Err(e) => {
            tracing::warn!(error = %e, "Plex libraries unreadable; no scan after removing files");
            return;
        }
    };
    let Some(section) = super::plex::section(state, &sections) else {
        tracing::warn!(
            "Plex has no library for subscriptions (plex.subscriptions_library); no scan"
        );
        return;
    };
    for folder in folders {
        let path = handoff::pms_path(state, folder);
        if let Err(e) = server.scan(&section.key, &path).await {
            tracing::warn!(folder = %path, error = %e, "Plex scan after removing files failed");
        }
    }
    // Browsing shows the change now, not after the cache's two minutes.
    state.plex_caches().clear();
}

/// Publishes the download rows whose files were cleared, so open lists drop them.
async fn publish_downloads(state: &AppState, ids: Vec<String>) {
    if ids.is_empty() {
        return;
    }
    let rows = state
        .db()
        .read(move |conn| {
            let mut rows = Vec::new();
            for id in &ids {
                rows.extend(crate::youtube::get(conn, id)?);
            }
            Ok(rows)
        })
        .await;
    match rows {
        Ok(rows) => rows.iter().for_each(|d| publish_updated(state, d)),
        Err(e) => tracing::warn!(error = %e, "could not read the downloads whose files went"),
    }
}

/// Applies the subscription's retention now: removes the candidates' files, marks them
/// `pruned`, fixes the bytes and asks Plex to scan. Returns how many items were pruned (0 for
/// no such subscription, or no retention settings).
pub async fn prune(state: &AppState, subscription_id: &str) -> AppResult<usize> {
    let now = state.clock().now_ms();
    let id = subscription_id.to_owned();
    let found = state
        .db()
        .read(move |conn| {
            let Some(sub) = store::get(conn, &id)? else {
                return Ok(Vec::new());
            };
            candidates(conn, &sub, now)
        })
        .await?;
    if found.is_empty() {
        return Ok(0);
    }
    let files: Vec<String> = found.iter().flat_map(|i| i.files.clone()).collect();
    let folders = remove_files(state, files).await?;
    let id = subscription_id.to_owned();
    let items: Vec<String> = found.iter().map(|i| i.id.clone()).collect();
    let (pruned, downloads) = state
        .db()
        .write(move |tx| {
            let (mut pruned, mut downloads) = (0, Vec::new());
            for item in &items {
                if let Some(done) = forget_files(tx, &id, item, "pruned", &["downloaded"], now)? {
                    pruned += 1;
                    downloads.extend(done.download_id);
                }
            }
            Ok((pruned, downloads))
        })
        .await?;
    tracing::info!(subscription = %subscription_id, pruned, "retention pruned items");
    publish_downloads(state, downloads).await;
    rescan(state, &folders).await;
    Ok(pruned)
}

/// What deleting an item did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    Deleted,
    /// Its download has not finished (`queued`); cancel it first.
    NotYet(String),
}

/// A user deletes `item`: its files go, it is marked `deleted` (the archive keeps the id, so it
/// never comes back) with its bytes taken off; Plex scans in the background. An item already
/// deleted stays so.
pub async fn delete_item(
    state: &AppState,
    subscription_id: &str,
    item: Item,
) -> AppResult<Deletion> {
    if item.status == "queued" {
        return Ok(Deletion::NotYet(item.status));
    }
    let folders = remove_files(state, item.files.clone()).await?;
    let now = state.clock().now_ms();
    let (sub, id) = (subscription_id.to_owned(), item.id.clone());
    let changed = state
        .db()
        .write(move |tx| {
            forget_files(
                tx,
                &sub,
                &id,
                "deleted",
                &["downloaded", "failed", "pruned", "skipped"],
                now,
            )
        })
        .await?;
    if let Some(done) = changed {
        publish_downloads(state, done.download_id.into_iter().collect()).await;
    }
    let state2 = state.clone();
    state.spawn_task(async move { rescan(&state2, &folders).await });
    Ok(Deletion::Deleted)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::db::Db;
    use crate::youtube::subscriptions::model::Settings;
    use crate::youtube::url::parse_source;

    const NOW: i64 = 1_750_000_000_000;

    fn setup() -> (Db, String) {
        let db = Db::open_memory().unwrap();
        let mut conn = db.connection_blocking().unwrap();
        let tx = conn.transaction().unwrap();
        tx.execute(
            "INSERT INTO users (id, username, role, status, created_at)
             VALUES ('u1', 'ann', 'user', 'active', 0)",
            [],
        )
        .unwrap();
        let settings = Settings {
            keep_latest: Some(2),
            keep_days: Some(30),
            ..Settings::default()
        };
        let source = parse_source("https://www.youtube.com/@retention").unwrap();
        let sub = store::insert(&tx, "u1", &source, "active", &settings, NOW).unwrap();
        tx.commit().unwrap();
        drop(conn);
        (db, sub)
    }

    fn add(conn: &Connection, sub: &str, n: usize, status: &str, date: Option<&str>, keep: bool) {
        conn.execute(
            "INSERT INTO youtube_subscription_items (id, subscription_id, video_id, status,
                 upload_date, keep, file_paths, bytes, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, '[]', 10, ?7, ?7)",
            params![
                format!("{sub}-{n:06}"),
                sub,
                format!("v{n:010}"),
                status,
                date,
                keep,
                NOW - i64::try_from(n).unwrap()
            ],
        )
        .unwrap();
    }

    fn videos(items: &[Item]) -> Vec<String> {
        let mut v: Vec<String> = items.iter().map(|i| i.video_id.clone()).collect();
        v.sort();
        v
    }

    #[test]
    fn candidates_follow_the_newest_n_and_the_age_and_spare_kept_ones() {
        let (db, sub_id) = setup();
        let conn = db.connection_blocking().unwrap();
        // Newest first: 1 (kept), 2, 3 (kept), 4, 5 without a date but archived long ago.
        add(&conn, &sub_id, 1, "downloaded", Some("2025-06-10"), true);
        add(&conn, &sub_id, 2, "downloaded", Some("2025-06-09"), false);
        add(&conn, &sub_id, 3, "downloaded", Some("2025-06-08"), true);
        add(&conn, &sub_id, 4, "downloaded", Some("2025-06-07"), false);
        add(&conn, &sub_id, 6, "queued", Some("2025-01-01"), false);
        add(&conn, &sub_id, 7, "pruned", Some("2025-01-01"), false);
        conn.execute(
            "INSERT INTO youtube_subscription_items (id, subscription_id, video_id, status,
                 created_at, updated_at)
             VALUES ('old', ?1, 'v0000000005', 'downloaded', 0, 0)",
            [&sub_id],
        )
        .unwrap();
        let mut sub = store::get(&conn, &sub_id).unwrap().unwrap();

        // The newest 2 are 1 (kept) and 2; of the rest, 3 is kept.
        sub.keep_days = None;
        assert_eq!(
            videos(&candidates(&conn, &sub, NOW).unwrap()),
            ["v0000000004", "v0000000005"]
        );
        // 30 days before NOW (2025-06-15) is 2025-05-16: only the undated, archived at 0.
        sub.keep_latest = None;
        sub.keep_days = Some(30);
        assert_eq!(
            videos(&candidates(&conn, &sub, NOW).unwrap()),
            ["v0000000005"]
        );
        // A week: uploads before 2025-06-08 go (not 3, kept), each once with both settings.
        sub.keep_days = Some(7);
        sub.keep_latest = Some(1);
        let both = candidates(&conn, &sub, NOW).unwrap();
        assert_eq!(videos(&both), ["v0000000002", "v0000000004", "v0000000005"]);
        // 8 days before is 2025-06-07: a video of that day itself stays.
        sub.keep_latest = None;
        sub.keep_days = Some(8);
        assert_eq!(
            videos(&candidates(&conn, &sub, NOW).unwrap()),
            ["v0000000005"]
        );
        sub.keep_days = None;
        assert!(candidates(&conn, &sub, NOW).unwrap().is_empty());
    }

    #[test]
    fn the_candidate_queries_read_an_index_range_without_sorting() {
        let (db, _) = setup();
        let mut conn = db.connection_blocking().unwrap();
        let tx = conn.transaction().unwrap();
        // Enough rows in several subscriptions that a scan would show if it were chosen.
        for s in 0..20 {
            let source = parse_source(&format!("https://www.youtube.com/@plan{s}")).unwrap();
            let sub =
                store::insert(&tx, "u1", &source, "active", &Settings::default(), NOW).unwrap();
            for n in 0..100 {
                let status = ["downloaded", "skipped", "pruned", "queued"][n % 4];
                add(&tx, &sub, n, status, Some("2025-06-01"), n % 7 == 0);
            }
        }
        tx.commit().unwrap();
        conn.execute_batch("ANALYZE").unwrap();
        crate::db::keep_plans_stable(&conn).unwrap();
        for sql in [sql::beyond_newest(), sql::older_than(), sql::item()] {
            let lines = crate::db::assert_indexed(&conn, &sql);
            if sql != sql::item() {
                assert!(
                    lines.iter().all(|l| !l.starts_with("SEARCH")
                        || l.contains("youtube_subscription_items_retention")),
                    "{sql}: {lines:?}"
                );
            }
        }
    }

    #[test]
    fn only_files_inside_the_root_are_removed_and_links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        let downloads = base.join("downloads");
        let root = downloads.join("subscriptions");
        let season = root.join("Chan").join("Season 2025");
        std::fs::create_dir_all(&season).unwrap();
        let outside = base.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("x.mp4"), b"keep me").unwrap();
        std::fs::write(downloads.join("x.mp4"), b"keep me").unwrap();
        std::fs::write(season.join("a.mp4"), b"a").unwrap();
        std::os::unix::fs::symlink(outside.join("x.mp4"), season.join("link.mp4")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("Chan").join("Season 2024")).unwrap();

        let remove = |rel: &str| remove_file_inside(&root, &downloads, rel).0;
        assert_eq!(remove("subscriptions/../x.mp4"), Removal::Refused);
        assert_eq!(remove("../outside/x.mp4"), Removal::Refused);
        assert_eq!(
            remove(&outside.join("x.mp4").to_string_lossy()),
            Removal::Refused
        );
        assert_eq!(
            remove("subscriptions/Chan/Season 2024/x.mp4"),
            Removal::Refused
        );
        assert_eq!(
            remove("subscriptions/Chan/Season 2025/link.mp4"),
            Removal::Refused
        );
        assert_eq!(remove("subscriptions/Chan/Season 2025"), Removal::Refused);
        assert_eq!(remove("subscriptions"), Removal::Refused);
        assert!(outside.join("x.mp4").exists() && downloads.join("x.mp4").exists());
        assert!(season.join("link.mp4").is_symlink());

        assert_eq!(
            remove_file_inside(&root, &downloads, "subscriptions/Chan/Season 2025/a.mp4"),
            (Removal::Deleted, Some(season.clone()))
        );
        assert!(!season.join("a.mp4").exists());
        assert_eq!(
            remove("subscriptions/Chan/Season 2025/a.mp4"),
            Removal::Missing
        );
        assert_eq!(
            remove("subscriptions/Gone/Season 2020/b.mp4"),
            Removal::Missing
        );
    }
}
