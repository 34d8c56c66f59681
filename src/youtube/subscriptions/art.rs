//! The show's poster and art of a channel subscription: the channel's uncropped avatar as
//! `<Channel>/poster.jpg` and its banner as `<Channel>/fanart.jpg` (the names Plex reads beside
//! the seasons, see `src/youtube/layout.rs`). yt-dlp fetches them (so cookies and proxies set for
//! it apply, and MediaNest itself never fetches a URL YouTube gave). Best effort: a failure is
//! logged and tried again after the next check, never fails the check.

use std::path::Path;

use super::model::Subscription;
use crate::state::AppState;
use crate::youtube::{layout, listing};

/// Largest image kept (a banner is a few hundred KiB).
const MAX_IMAGE_BYTES: u64 = 10 * 1024 * 1024;

/// Saves the channel's poster and art unless both are there.
pub async fn ensure(state: &AppState, sub: &Subscription, show: &str) {
    if sub.kind != "channel" {
        return;
    }
    let root = crate::youtube::subscriptions_root(state.config());
    let (poster, fanart) = layout::show_art(show);
    let (poster, fanart) = (root.join(poster), root.join(fanart));
    // Some channels have no banner: the avatar alone settles it, so a check never fetches twice.
    if poster.is_file() {
        return;
    }
    let Ok(program) = crate::youtube::downloader(state) else {
        return;
    };
    let pass = crate::youtube::passthrough(state).await;
    let tmp = root.join(".medianest-art").join(&sub.id);
    let _ = tokio::fs::remove_dir_all(&tmp).await;
    if let Err(e) = tokio::fs::create_dir_all(&tmp).await {
        tracing::warn!(error = %e, "cannot make a folder for the channel's art");
        return;
    }
    let url = format!("{}/videos", sub.url.trim_end_matches("/videos"));
    match listing::fetch_show_art(&program, &url, &tmp, &pass, listing::LIST_TIMEOUT).await {
        Ok(()) => {
            let (tmp2, poster2, fanart2) = (tmp.clone(), poster.clone(), fanart.clone());
            let _ = tokio::task::spawn_blocking(move || {
                place(&tmp2.join("avatar.jpg"), &poster2);
                place(&tmp2.join("banner.jpg"), &fanart2);
            })
            .await;
        }
        Err(e) => {
            tracing::warn!(subscription = %sub.id, error = %e.reason(), "cannot fetch the channel's art");
        }
    }
    let _ = tokio::fs::remove_dir_all(&tmp).await;
}

/// Moves `from` to `to` unless `to` is there, `from` is not a plain file or too large.
fn place(from: &Path, to: &Path) {
    let fits = from
        .symlink_metadata()
        .is_ok_and(|m| m.is_file() && m.len() <= MAX_IMAGE_BYTES);
    if !fits || to.is_file() {
        return;
    }
    if let Some(dir) = to.parent()
        && std::fs::create_dir_all(dir).is_ok()
        && let Err(e) = std::fs::rename(from, to)
    {
        tracing::warn!(error = %e, file = %to.display(), "cannot save the channel's art");
    }
}
