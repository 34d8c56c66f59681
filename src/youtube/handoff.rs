//! The Plex hand-off after a download completes (SPEC section 9, UPSTREAMS.md 4.4): a partial
//! scan of the YouTube library for the download's folder, a bounded wait for the scan, the new
//! items found by their files, and a collection named after the playlist (for a single video,
//! after its channel, which is also its folder) created or extended; its rating key is stored in
//! `plex_collection_id`.
//!
//! The library is `plex.youtube_library`, else the first whose title contains "YouTube". Paths
//! are mapped to PMS's view with `youtube.plex_path` (the download dir as PMS sees it). When
//! Plex is not set up, down, or has not found the files yet, the download stays `completed`
//! and [`run`] tries again later: a completed download without a collection is the "to do"
//! list, so nothing extra is stored. Hand-offs run one at a time, so two downloads of one
//! playlist never both create its collection.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Download, get, publish_updated};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::integrations::plex::{PlexMetadata, PlexSection, PlexServer};
use crate::state::AppState;

/// How often pending hand-offs are tried again.
pub const RETRY_EVERY: Duration = Duration::from_secs(300);
/// Completed downloads older than this are no longer handed off.
const RETRY_FOR_MS: i64 = 7 * 24 * 3600 * 1000;
/// Pending hand-offs tried per round.
const RETRY_BATCH: u32 = 20;
/// How often, and how long at most, the scan is watched.
const SCAN_POLL: Duration = Duration::from_millis(500);
const SCAN_LIMIT: Duration = Duration::from_secs(60);

/// Starts the hand-off of a download that just completed, in the background.
pub fn after_download(state: &AppState, download: &Download) {
    let state2 = state.clone();
    let download = download.clone();
    state.spawn_task(async move {
        let token = state2.shutdown_token().clone();
        tokio::select! {
            () = token.cancelled() => {}
            _ = attempt(&state2, &download) => {}
        }
    });
}

/// The retry loop: every [`RETRY_EVERY`], [`retry_pending`].
pub async fn run(state: AppState) {
    let token = state.shutdown_token().clone();
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(RETRY_EVERY) => {}
        }
        tokio::select! {
            () = token.cancelled() => return,
            n = retry_pending(&state) => if n > 0 {
                tracing::info!(count = n, "downloads handed to Plex on a retry");
            },
        }
    }
}

/// Tries every pending hand-off once (completed in the last week, without a collection);
/// returns how many succeeded.
pub async fn retry_pending(state: &AppState) -> usize {
    if crate::plex::server(state).await.is_err() {
        return 0;
    }
    let since = state.clock().now_ms() - RETRY_FOR_MS;
    let pending = state
        .db()
        .run(move |conn| {
            let rows = conn
                .prepare_cached(&super::sql::pending_handoff())?
                .query_map(rusqlite::params![since, RETRY_BATCH], super::from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
        .unwrap_or_default();
    let mut done = 0;
    for download in &pending {
        if attempt(state, download).await {
            done += 1;
        }
    }
    done
}

/// One hand-off; true when the collection is stored. Failures are logged, never raised: the
/// download is complete either way.
async fn attempt(state: &AppState, download: &Download) -> bool {
    let _turn = state.youtube().handoff.lock().await;
    match hand_off(state, download).await {
        Ok(collection) => {
            tracing::info!(download = %download.id, %collection, "download handed to Plex");
            true
        }
        Err(e) if e.code() == ErrorCode::ServiceNotConfigured => false,
        Err(e) => {
            tracing::warn!(download = %download.id, error = %e, "Plex hand-off failed; it will be retried");
            false
        }
    }
}

/// The library downloads go to: the configured title, else the first with "YouTube" in it.
pub(crate) fn youtube_section<'a>(
    sections: &'a [PlexSection],
    configured: Option<&str>,
) -> Option<&'a PlexSection> {
    match configured {
        Some(title) => sections.iter().find(|s| s.title == title).or_else(|| {
            sections
                .iter()
                .find(|s| s.title.eq_ignore_ascii_case(title))
        }),
        None => sections
            .iter()
            .find(|s| s.title.to_lowercase().contains("youtube")),
    }
}

/// `relative` (a path under the download dir, `/`-separated) as PMS sees it.
pub(crate) fn pms_path(state: &AppState, relative: &Path) -> String {
    let base = state
        .config()
        .youtube
        .plex_path
        .clone()
        .unwrap_or_else(|| super::download_root(state.config()));
    base.join(relative).to_string_lossy().into_owned()
}

pub(crate) fn upstream_error(detail: &str) -> AppError {
    AppError::Upstream {
        code: ErrorCode::UpstreamError,
        service: crate::integrations::plex::SERVICE_NAME,
        detail: detail.to_owned(),
        retry_after: None,
    }
}

/// Asks Plex to scan `folder` (under the download dir) of the section, then waits (bounded)
/// until `files` are items or the scan was seen over: PMS may not have started it yet. The items
/// of `files`; an upstream error when there are none yet.
pub(crate) async fn scan_for(
    state: &AppState,
    server: &PlexServer,
    section_key: &str,
    folder: &Path,
    files: &[PathBuf],
) -> AppResult<Vec<PlexMetadata>> {
    let pms_folder = pms_path(state, folder);
    server.scan(section_key, &pms_folder).await?;
    let wanted: Vec<String> = files.iter().map(|f| pms_path(state, f)).collect();
    let found: Vec<PlexMetadata> = server
        .wait_for_files(section_key, &pms_folder, &wanted, SCAN_POLL, SCAN_LIMIT)
        .await?
        .into_iter()
        .filter(|item| item.files.iter().any(|f| wanted.contains(f)))
        .collect();
    if found.is_empty() {
        return Err(upstream_error(
            "Plex has not found the downloaded files yet",
        ));
    }
    Ok(found)
}

async fn hand_off(state: &AppState, download: &Download) -> AppResult<String> {
    let server: PlexServer = crate::plex::server(state).await?;
    let episode = super::subscriptions::plex::episode_of(state, &download.id).await?;
    let collection = match &episode {
        Some(episode) => {
            super::subscriptions::plex::hand_off(state, &server, download, episode).await?
        }
        None => hand_off_download(state, &server, download).await?,
    };
    let (id, key) = (download.id.clone(), collection.clone());
    let updated = state
        .db()
        .write(move |tx| {
            tx.prepare_cached(
                "UPDATE youtube_downloads SET plex_collection_id = ?2 WHERE id = ?1",
            )?
            .execute([&id, &key])?;
            get(tx, &id)
        })
        .await?;
    if let Some(updated) = updated {
        publish_updated(state, &updated);
    }
    Ok(collection)
}

/// An on-demand download: its folder scanned, its items in the collection named after the
/// playlist or channel.
async fn hand_off_download(
    state: &AppState,
    server: &PlexServer,
    download: &Download,
) -> AppResult<String> {
    let files: Vec<PathBuf> = download.files.iter().map(PathBuf::from).collect();
    let folder = files
        .first()
        .and_then(|f| f.parent())
        .map(Path::to_path_buf)
        .ok_or_else(|| AppError::internal("a completed download without files"))?;
    let folder_name = folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let title = if download.kind == "playlist" {
        download.title.clone().unwrap_or(folder_name)
    } else {
        folder_name
    };
    let sections = server.sections().await?;
    let section = youtube_section(&sections, state.config().plex.youtube_library.as_deref())
        .ok_or_else(|| upstream_error("Plex has no YouTube library (plex.youtube_library)"))?;
    let found = scan_for(state, server, &section.key, &folder, &files).await?;
    let items: Vec<String> = found.iter().map(|item| item.rating_key.clone()).collect();
    // The collection this playlist got before (stored, so a renamed collection is still found),
    // else one of that title, else a new one.
    let (url, user_id) = (download.url.clone(), download.user_id.clone());
    let known: Option<String> = state
        .db()
        .run(move |conn| {
            use rusqlite::OptionalExtension;
            Ok(conn
                .prepare_cached(super::sql::KNOWN_COLLECTION)?
                .query_row([url, user_id], |r| r.get::<_, Option<String>>(0))
                .optional()?
                .flatten())
        })
        .await?;
    let mut collection = None;
    if let Some(key) = known {
        match server.add_to_collection(&key, &items).await {
            Ok(()) => collection = Some(key),
            Err(e) if e.code() == ErrorCode::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if collection.is_none()
        && let Some(existing) = server.find_collection(&section.key, &title).await?
    {
        server
            .add_to_collection(&existing.rating_key, &items)
            .await?;
        collection = Some(existing.rating_key);
    }
    let collection = match collection {
        Some(key) => key,
        None => {
            server
                .create_collection(&section.key, &title, &found)
                .await?
        }
    };
    // Browsing shows the new collection and items now, not after the cache's two minutes.
    state.plex_caches().clear();
    Ok(collection)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn section(key: &str, title: &str) -> PlexSection {
        PlexSection {
            key: key.into(),
            kind: "movie".into(),
            title: title.into(),
            refreshing: false,
            locations: Vec::new(),
        }
    }

    #[test]
    fn the_youtube_library_is_the_configured_one_or_the_first_named_so() {
        let sections = vec![
            section("1", "Movies"),
            section("2", "My YouTube"),
            section("3", "Clips"),
            section("4", "youtube 2"),
        ];
        assert_eq!(youtube_section(&sections, None).unwrap().key, "2");
        assert_eq!(youtube_section(&sections, Some("Clips")).unwrap().key, "3");
        assert_eq!(youtube_section(&sections, Some("clips")).unwrap().key, "3");
        assert!(youtube_section(&sections, Some("Nope")).is_none());
        assert!(youtube_section(&sections[..1], None).is_none());
    }
}
