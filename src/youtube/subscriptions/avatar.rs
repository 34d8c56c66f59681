//! `GET /youtube/subscriptions/{id}/avatar`: the channel's avatar, served from our own origin
//! (the dashboard's CSP allows no other image host, so YouTube's avatar URL cannot be shown).
//!
//! The file is the show poster the downloads save, `<subscriptions root>/<channel
//! folder>/poster.jpg` ([`crate::youtube::layout::show_art`]). It is read only when it resolves,
//! symbolic links followed, to a regular file inside the subscriptions root; anything else
//! (no title yet, no file, a link out, a file too big to be a poster) is a 404.

use std::path::{Path as FsPath, PathBuf};

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::{not_found, store, visible};
use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::state::AppState;
use crate::youtube::{layout, subscriptions_root, ytdlp};

/// Largest poster served; a bigger file is not one the downloads wrote.
const MAX_AVATAR_BYTES: u64 = 8 * 1024 * 1024;
/// The browser may keep it an hour: a channel's avatar rarely changes, and the URL is per user.
const CACHE: &str = "private, max-age=3600";

/// `GET /youtube/subscriptions/{id}/avatar`: owner or admin (others 404, like the
/// subscription) -> `image/jpeg`.
pub async fn get_avatar(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let found = state.db().read(move |conn| store::get(conn, &id)).await?;
    let found = visible(found, user.user_id(), user.is_admin())?;
    let title = found
        .folder
        .or(found.title)
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(not_found)?;
    let root = subscriptions_root(state.config());
    let (poster, _) = layout::show_art(&title);
    let bytes = read_inside(&root, &root.join(poster))
        .await
        .ok_or_else(not_found)?;
    let mut response = ([(header::CONTENT_TYPE, "image/jpeg")], bytes).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE));
    Ok(response)
}

/// The bytes of `path` when it resolves to a regular file inside `root` of at most
/// [`MAX_AVATAR_BYTES`]; `None` otherwise (including when either does not exist).
async fn read_inside(root: &FsPath, path: &FsPath) -> Option<Vec<u8>> {
    let root: PathBuf = tokio::fs::canonicalize(root).await.ok()?;
    let file = tokio::fs::canonicalize(path).await.ok()?;
    if !ytdlp::is_inside(&root, &file) {
        return None;
    }
    let meta = tokio::fs::metadata(&file).await.ok()?;
    if !meta.is_file() || meta.len() > MAX_AVATAR_BYTES {
        return None;
    }
    tokio::fs::read(&file).await.ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_regular_files_inside_the_root_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("subscriptions");
        std::fs::create_dir_all(root.join("Chan")).unwrap();
        std::fs::write(root.join("Chan/poster.jpg"), b"jpeg").unwrap();
        std::fs::write(dir.path().join("secret.jpg"), b"secret").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.jpg"), root.join("Chan/link.jpg"))
            .unwrap();

        assert_eq!(
            read_inside(&root, &root.join("Chan/poster.jpg")).await,
            Some(b"jpeg".to_vec())
        );
        // A link out of the root, a path that climbs out, a folder, a missing file.
        assert_eq!(read_inside(&root, &root.join("Chan/link.jpg")).await, None);
        assert_eq!(read_inside(&root, &root.join("../secret.jpg")).await, None);
        assert_eq!(read_inside(&root, &root.join("Chan")).await, None);
        assert_eq!(read_inside(&root, &root.join("Chan/none.jpg")).await, None);
        // No root at all.
        assert_eq!(
            read_inside(&dir.path().join("nowhere"), &root.join("Chan/poster.jpg")).await,
            None
        );
    }
}
