//! A subscription's episode in Plex, after its download: a partial scan of the subscriptions
//! library for the season folder, a bounded wait for the item, its title, summary and date set
//! and locked (so the TV agent's guesses from the file name never replace them), and the item put
//! in the subscription's collection (made on first use, its key kept on the subscription).
//! Called by the download hand-off (`src/youtube/handoff.rs`), which retries until it succeeds.

use std::path::{Path, PathBuf};

use rusqlite::OptionalExtension;

use crate::error::{AppError, AppResult, ErrorCode};
use crate::integrations::plex::{PlexSection, PlexServer};
use crate::plex::metadata::{self, Edit};
use crate::state::AppState;
use crate::youtube::Download;
use crate::youtube::handoff::{scan_for, upstream_error, youtube_section};

/// What the hand-off needs of the item behind a download.
#[derive(Debug, Clone)]
pub struct Episode {
    pub item_id: String,
    pub subscription_id: String,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub upload_date: Option<String>,
    pub show: Option<String>,
    pub collection: Option<String>,
}

/// The episode behind `download_id`, when it is a subscription's.
pub async fn episode_of(state: &AppState, download_id: &str) -> AppResult<Option<Episode>> {
    let download_id = download_id.to_owned();
    state
        .db()
        .read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT i.id, i.subscription_id, i.title, i.summary, i.upload_date, s.title,
                            s.plex_collection_id
                       FROM youtube_subscription_items i
                       JOIN youtube_subscriptions s ON s.id = i.subscription_id
                      WHERE i.download_id = ?1",
                )?
                .query_row([download_id], |r| {
                    Ok(Episode {
                        item_id: r.get(0)?,
                        subscription_id: r.get(1)?,
                        title: r.get(2)?,
                        summary: r.get(3)?,
                        upload_date: r.get(4)?,
                        show: r.get(5)?,
                        collection: r.get(6)?,
                    })
                })
                .optional()?)
        })
        .await
}

/// The library subscriptions go to: `plex.subscriptions_library`, else the first whose title
/// contains "Subscriptions", else the YouTube library.
pub fn section<'a>(state: &AppState, sections: &'a [PlexSection]) -> Option<&'a PlexSection> {
    let plex = &state.config().plex;
    match plex.subscriptions_library.as_deref() {
        Some(title) => youtube_section(sections, Some(title)),
        None => sections
            .iter()
            .find(|s| s.title.to_lowercase().contains("subscriptions"))
            .or_else(|| youtube_section(sections, plex.youtube_library.as_deref())),
    }
}

/// Video files among a download's files (its poster and subtitles are not Plex items).
fn is_video(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "mp4" | "mkv" | "webm" | "m4v" | "mov"))
}

/// Hands the episode to Plex; the collection's key on success.
pub async fn hand_off(
    state: &AppState,
    server: &PlexServer,
    download: &Download,
    episode: &Episode,
) -> AppResult<String> {
    let videos: Vec<PathBuf> = download
        .files
        .iter()
        .map(PathBuf::from)
        .filter(|p| is_video(p))
        .collect();
    let folder = videos
        .first()
        .and_then(|f| f.parent())
        .map(Path::to_path_buf)
        .ok_or_else(|| AppError::internal("a completed episode without a video file"))?;
    let sections = server.sections().await?;
    let section = section(state, &sections).ok_or_else(|| {
        upstream_error("Plex has no library for subscriptions (plex.subscriptions_library)")
    })?;
    let found = scan_for(state, server, &section.key, &folder, &videos).await?;
    let edit = Edit {
        title: episode
            .title
            .clone()
            .or_else(|| download.title.clone())
            .map(|t| crate::youtube::ytdlp::truncate_chars(&t, metadata::MAX_TITLE_CHARS))
            .filter(|t| !t.trim().is_empty()),
        summary: episode.summary.clone().map(|s| {
            // Control characters other than line breaks are refused by the edit.
            s.chars()
                .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
                .collect()
        }),
        originally_available_at: episode.upload_date.clone().filter(|d| metadata::is_date(d)),
        lock: true,
    };
    for item in &found {
        let title = edit
            .title
            .as_ref()
            .map(|t| t.chars().filter(|c| !c.is_control()).collect::<String>());
        let edit = Edit {
            title,
            ..edit.clone()
        };
        match metadata::edit_metadata(server, &item.rating_key, &item.kind, &edit).await {
            Ok(()) => {}
            // An edit Plex cannot take is logged; the item is in Plex either way.
            Err(e) if e.code() == ErrorCode::ValidationError => {
                tracing::warn!(item = %item.rating_key, error = %e, "cannot edit an episode's metadata");
            }
            Err(e) => return Err(e),
        }
    }
    let show = episode.show.clone().unwrap_or_else(|| "YouTube".into());
    let collection = metadata::ensure_collection(
        server,
        &section.key,
        &show,
        episode.collection.as_deref(),
        &found,
    )
    .await?;
    state.plex_caches().clear();
    let (item_id, sub_id, key, rating) = (
        episode.item_id.clone(),
        episode.subscription_id.clone(),
        collection.clone(),
        found[0].rating_key.clone(),
    );
    state
        .db()
        .write(move |tx| {
            tx.prepare_cached(
                "UPDATE youtube_subscriptions SET plex_collection_id = ?2 WHERE id = ?1",
            )?
            .execute([&sub_id, &key])?;
            tx.prepare_cached(
                "UPDATE youtube_subscription_items SET plex_rating_key = ?2 WHERE id = ?1",
            )?
            .execute([&item_id, &rating])?;
            Ok(())
        })
        .await?;
    Ok(collection)
}
