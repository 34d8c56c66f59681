//! The Plex hand-off after a download completes: a partial scan of the YouTube library for the
//! download's folder, then a collection named after the playlist with the new items.
//! (Filled in once the Plex client calls exist.)

use std::path::Path;

use super::Download;
use crate::state::AppState;

/// Starts the hand-off for a completed download in the background.
pub fn after_download(
    _state: &AppState,
    _download: &Download,
    _folder: &Path,
    _playlist_title: Option<String>,
) {
}
