//! A subscription's videos go through the ordinary download queue (progress, cancel, retry and
//! the owner's disk budget apply); what differs is decided here:
//!
//! - [`prepare`], when the worker starts the download: the episode's place in the layout of
//!   `src/youtube/layout.rs` under [`crate::youtube::subscriptions_root`] (the day from the
//!   video's own `upload_date`, not the listing's approximate one; the day's index given once
//!   and kept for retries), and the profile's thumbnail, subtitles and SponsorBlock arguments.
//!   The item also keeps the exact day and the description, for the Plex edit after the scan.
//! - [`on_completed`] / [`on_ended`], in the transaction that ends the download: the archive
//!   item becomes `downloaded` with its files and bytes (the subscription's `bytes` follow), or
//!   `failed`.
//! - [`sidecars`]: the files yt-dlp wrote beside the video (its `.jpg` poster, `.srt`
//!   subtitles), recorded with it so retention and the disk budget see them.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::AppResult;
use crate::state::AppState;
use crate::youtube::layout;
use crate::youtube::ytdlp::{EpisodeFiles, Metadata, SponsorBlock};

/// Where a subscription's download goes and what it writes.
#[derive(Debug, Clone)]
pub struct EpisodeJob {
    pub item_id: String,
    pub subscription_id: String,
    /// `<Channel>/Season <year>`, relative to the subscriptions root.
    pub folder: PathBuf,
    pub files: EpisodeFiles,
}

/// What the store knows about the item behind a download.
struct ItemRow {
    item_id: String,
    subscription_id: String,
    episode: Option<u32>,
    upload_date: Option<String>,
    show: Option<String>,
    subtitle_langs: Option<String>,
    subtitle_mode: Option<String>,
    sponsorblock_mode: Option<String>,
    sponsorblock_categories: Option<String>,
}

fn item_of(conn: &Connection, download_id: &str) -> AppResult<Option<ItemRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT i.id, i.subscription_id, i.episode, i.upload_date, coalesce(s.folder, s.title),
                    p.subtitle_langs, p.subtitle_mode, p.sponsorblock_mode,
                    p.sponsorblock_categories
               FROM youtube_subscription_items i
               JOIN youtube_subscriptions s ON s.id = i.subscription_id
               LEFT JOIN youtube_profiles p ON p.id = s.profile_id
              WHERE i.download_id = ?1",
        )?
        .query_row([download_id], |r| {
            Ok(ItemRow {
                item_id: r.get(0)?,
                subscription_id: r.get(1)?,
                episode: r.get(2)?,
                upload_date: r.get(3)?,
                show: r.get(4)?,
                subtitle_langs: r.get(5)?,
                subtitle_mode: r.get(6)?,
                sponsorblock_mode: r.get(7)?,
                sponsorblock_categories: r.get(8)?,
            })
        })
        .optional()?)
}

/// True when `download_id` is a subscription's.
pub fn is_subscription_download(conn: &Connection, download_id: &str) -> AppResult<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM youtube_subscription_items WHERE download_id = ?1")?
        .exists([download_id])?)
}

/// `YYYYMMDD` or `YYYY-MM-DD` as `YYYY-MM-DD`, when it is a real day.
fn iso_day(raw: &str) -> Option<String> {
    layout::parse_day(raw).map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}"))
}

fn json_list(text: Option<&str>) -> Vec<String> {
    text.and_then(|t| serde_json::from_str::<Vec<String>>(t).ok())
        .unwrap_or_default()
}

/// The episode job of `download_id`, or `None` when it is not a subscription's. Gives the item
/// its day's index on the first start (kept on a retry), and stores the exact day, the title and
/// the description. `Err(reason)` when the day has no episode number left.
pub async fn prepare(
    state: &AppState,
    download_id: &str,
    meta: &Metadata,
) -> AppResult<Result<Option<EpisodeJob>, String>> {
    let download_id = download_id.to_owned();
    let now = state.clock().now_ms();
    let today = crate::time::rfc3339(now);
    let exact_day = meta.upload_date.as_deref().and_then(iso_day);
    let title = meta.title.clone();
    let summary = meta.description.as_deref().map(|d| {
        crate::youtube::ytdlp::truncate_chars(d, crate::plex::metadata::MAX_SUMMARY_CHARS)
    });
    let fallback_show = meta.channel.clone();
    state
        .db()
        .write(move |tx| {
            let Some(row) = item_of(tx, &download_id)? else {
                return Ok(Ok(None));
            };
            // The video's own day; else the listing's; else today (a video always has one).
            let day = exact_day
                .or_else(|| row.upload_date.clone())
                .or_else(|| iso_day(&today[..10]))
                .unwrap_or_else(|| "1970-01-01".into());
            let index = match row.episode {
                Some(index) if row.upload_date.as_deref() == Some(day.as_str()) => index,
                _ => {
                    let taken: Vec<u32> = tx
                        .prepare_cached(
                            "SELECT episode FROM youtube_subscription_items
                              WHERE subscription_id = ?1 AND upload_date = ?2
                                AND episode IS NOT NULL AND id <> ?3",
                        )?
                        .query_map(params![row.subscription_id, day, row.item_id], |r| r.get(0))?
                        .collect::<Result<_, _>>()?;
                    layout::next_index(&taken)
                }
            };
            tx.prepare_cached(
                "UPDATE youtube_subscription_items
                    SET episode = ?2, upload_date = ?3, title = ?4, summary = ?5, updated_at = ?6
                  WHERE id = ?1",
            )?
            .execute(params![
                row.item_id,
                index,
                day,
                crate::youtube::ytdlp::truncate_chars(&title, 500),
                summary,
                now,
            ])?;
            let show = row
                .show
                .clone()
                .or(fallback_show)
                .unwrap_or_else(|| "YouTube".into());
            let Some(episode) = layout::episode(&show, &day, index) else {
                return Ok(Err(format!(
                    "more than {} videos of {day} in this subscription: no episode number is left for this one",
                    layout::MAX_PER_DAY
                )));
            };
            let langs = json_list(row.subtitle_langs.as_deref());
            let categories = json_list(row.sponsorblock_categories.as_deref());
            let sponsorblock = match row.sponsorblock_mode.as_deref() {
                Some("remove") => Some((SponsorBlock::Remove, categories)),
                Some("mark") => Some((SponsorBlock::Mark, categories)),
                _ => None,
            };
            Ok(Ok(Some(EpisodeJob {
                item_id: row.item_id,
                subscription_id: row.subscription_id,
                files: EpisodeFiles {
                    template: layout::output_template(&episode),
                    subtitle_langs: langs,
                    embed_subtitles: row.subtitle_mode.as_deref() != Some("sidecar"),
                    sponsorblock,
                },
                folder: episode.folder,
            })))
        })
        .await
}

/// The download ended with `files` (relative to the download dir) of `bytes` in all: its item is
/// `downloaded`, and the subscription's bytes count them (a retry's earlier bytes replaced).
pub fn on_completed(
    conn: &Connection,
    download_id: &str,
    files: &[String],
    bytes: u64,
    now_ms: i64,
) -> AppResult<()> {
    let Some(row) = item_of(conn, download_id)? else {
        return Ok(());
    };
    let status: String = conn
        .prepare_cached("SELECT status FROM youtube_subscription_items WHERE id = ?1")?
        .query_row([&row.item_id], |r| r.get(0))?;
    if !matches!(status.as_str(), "queued" | "failed") {
        // Deleted or pruned meanwhile: it stays so (the files are the retention's to remove).
        return Ok(());
    }
    let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
    let before: i64 = conn
        .prepare_cached("SELECT bytes FROM youtube_subscription_items WHERE id = ?1")?
        .query_row([&row.item_id], |r| r.get(0))?;
    conn.prepare_cached(
        "UPDATE youtube_subscription_items
            SET status = 'downloaded', reason = NULL, file_paths = ?2, bytes = ?3, updated_at = ?4
          WHERE id = ?1",
    )?
    .execute(params![
        row.item_id,
        serde_json::to_string(files).unwrap_or_else(|_| "[]".into()),
        bytes,
        now_ms
    ])?;
    conn.prepare_cached(
        "UPDATE youtube_subscriptions SET bytes = max(0, bytes - ?2 + ?3) WHERE id = ?1",
    )?
    .execute(params![row.subscription_id, before, bytes])?;
    Ok(())
}

/// The download failed or was cancelled: its item says so (the id stays in the archive; a
/// retry of the download brings it back to `downloaded`).
pub fn on_ended(conn: &Connection, download_id: &str, reason: &str, now_ms: i64) -> AppResult<()> {
    conn.prepare_cached(
        "UPDATE youtube_subscription_items
            SET status = 'failed', reason = ?2, updated_at = ?3
          WHERE download_id = ?1 AND status IN ('queued', 'failed')",
    )?
    .execute(params![
        download_id,
        crate::youtube::ytdlp::truncate_chars(reason, 200),
        now_ms
    ])?;
    Ok(())
}

/// `deleted` or `pruned` when `download_id` is a subscription's whose video was deleted or
/// pruned: it must not come back through a retry.
pub fn gone_item(conn: &Connection, download_id: &str) -> AppResult<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT status FROM youtube_subscription_items
              WHERE download_id = ?1 AND status IN ('deleted', 'pruned')",
        )?
        .query_row([download_id], |r| r.get(0))
        .optional()?)
}

/// A download of a subscription was retried: its item is `queued` again.
pub fn on_requeued(conn: &Connection, download_id: &str, now_ms: i64) -> AppResult<()> {
    conn.prepare_cached(
        "UPDATE youtube_subscription_items SET status = 'queued', reason = NULL, updated_at = ?2
          WHERE download_id = ?1 AND status = 'failed'",
    )?
    .execute(params![download_id, now_ms])?;
    Ok(())
}

/// The line of the download dir's `.plexignore` that keeps a library on the whole download dir
/// (the YouTube library) from also listing the subscriptions' episodes, which their own TV
/// library shows. Plex reads a `.plexignore` in a library's folders ("Excluding New Content with
/// .plexignore"); the subscriptions library's root is below this file, so it is not affected.
pub const PLEXIGNORE_LINE: &str = "subscriptions/*";

/// Adds [`PLEXIGNORE_LINE`] to `<download_root>/.plexignore` unless it is there (an admin's own
/// lines are kept).
pub fn ensure_plexignore(download_root: &Path) -> std::io::Result<()> {
    let path = download_root.join(".plexignore");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    if text.lines().any(|l| l.trim() == PLEXIGNORE_LINE) {
        return Ok(());
    }
    let mut out = text;
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("# MediaNest: subscriptions have their own TV library.\n");
    out.push_str(PLEXIGNORE_LINE);
    out.push('\n');
    std::fs::write(path, out)
}

/// The files yt-dlp wrote beside `video` under its name (`<name>.jpg`, `<name>.en.srt`), regular
/// files only, never the video itself.
pub fn sidecars(video: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(stem)) = (video.parent(), video.file_stem()) else {
        return Vec::new();
    };
    let mut prefix = stem.to_os_string();
    prefix.push(".");
    let prefix = prefix.as_encoded_bytes().to_vec();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p != video)
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.as_encoded_bytes().starts_with(&prefix))
        })
        .filter(|p| {
            let name = p.to_string_lossy();
            !name.ends_with(".part") && !name.ends_with(".ytdl")
        })
        .filter(|p| p.symlink_metadata().is_ok_and(|m| m.is_file()))
        .collect();
    found.sort();
    found
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sidecars_are_the_files_named_after_the_video() {
        let dir = tempfile::tempdir().unwrap();
        let video = dir.path().join("Ch - s2026e010101 - A [abcdefghijk].mp4");
        for name in [
            "Ch - s2026e010101 - A [abcdefghijk].mp4",
            "Ch - s2026e010101 - A [abcdefghijk].jpg",
            "Ch - s2026e010101 - A [abcdefghijk].en.srt",
            "Ch - s2026e010101 - A [abcdefghijk].f137.mp4.part",
            "Ch - s2026e010101 - A [abcdefghijk]x.jpg",
            "Ch - s2026e010102 - B [bbcdefghijk].jpg",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::os::unix::fs::symlink(
            "/etc/passwd",
            dir.path()
                .join("Ch - s2026e010101 - A [abcdefghijk].de.srt"),
        )
        .unwrap();
        let names: Vec<String> = sidecars(&video)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "Ch - s2026e010101 - A [abcdefghijk].en.srt",
                "Ch - s2026e010101 - A [abcdefghijk].jpg"
            ]
        );
    }

    #[test]
    fn the_plexignore_line_is_added_once_and_keeps_the_admins_lines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".plexignore"), "old/*").unwrap();
        ensure_plexignore(dir.path()).unwrap();
        ensure_plexignore(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(".plexignore")).unwrap();
        assert_eq!(
            text,
            "old/*\n# MediaNest: subscriptions have their own TV library.\nsubscriptions/*\n"
        );
    }

    #[test]
    fn days_are_read_in_both_spellings() {
        assert_eq!(iso_day("20260307").as_deref(), Some("2026-03-07"));
        assert_eq!(iso_day("2026-03-07").as_deref(), Some("2026-03-07"));
        assert_eq!(iso_day("NA"), None);
    }
}
