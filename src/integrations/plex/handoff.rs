//! What the YouTube hand-off asks of PMS (UPSTREAMS.md 1.3 "Library scan" and "Collections",
//! 4.4): scan one folder of a section, see the scan finish, find the items whose files lie
//! under a folder, and group items into a collection.
//!
//! Paths here are PMS's paths (what the section's `Location` says), not MediaNest's: mapping
//! one to the other is the caller's job. Writes are POST/PUT and never retried.

use std::time::{Duration, Instant};

use super::library::checked_key;
use super::model::{self, ListWire, PlexMetadata};
use super::{Container, PlexServer, read_container};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::integrations::overseerr::encode_query_value;
use crate::integrations::upstream::{Method, expect_success, read_body, status_failure};

/// How many items [`PlexServer::items_under`] asks for per page.
const SCAN_PAGE: u64 = 200;
/// A bound on the pages [`PlexServer::items_under`] reads, in case a server pages forever.
const MAX_PAGES: u64 = 500;
/// While a scan has not been seen running, the items are read again at a doubling gap of at
/// most this many polls.
const MAX_READ_GAP: u32 = 8;
/// How long past its deadline [`PlexServer::wait_for_files`] lets its last read of the items
/// run (a big library is many pages).
const LAST_READ: Duration = Duration::from_secs(30);

impl PlexServer {
    /// `GET /library/sections/{key}/refresh?path=...`: starts a scan of one folder of the
    /// section (an absolute PMS path). PMS answers at once and scans in the background: poll
    /// [`Self::is_refreshing`] or call [`Self::wait_for_scan`].
    pub async fn scan(&self, section_key: &str, path: &str) -> AppResult<()> {
        let key = checked_key("sectionKey", section_key)?;
        if !path.starts_with('/') && !is_windows_absolute(path) {
            return Err(AppError::validation([("path", "must be an absolute path")]));
        }
        let request = self.request(
            Method::Get,
            &format!(
                "/library/sections/{key}/refresh?path={}",
                encode_query_value(path)
            ),
        );
        self.upstream()
            .send(request, |response| {
                if response.status().as_u16() == 404 {
                    return Ok(false);
                }
                expect_success(response)?;
                Ok(true)
            })
            .await?
            .then_some(())
            .ok_or_else(|| AppError::new(ErrorCode::NotFound))
    }

    /// Whether the section is being scanned now (`refreshing` in `GET /library/sections`).
    /// `NOT_FOUND` when there is no such section.
    pub async fn is_refreshing(&self, section_key: &str) -> AppResult<bool> {
        self.section(section_key)
            .await?
            .map(|s| s.refreshing)
            .ok_or_else(|| AppError::new(ErrorCode::NotFound))
    }

    /// Polls [`Self::is_refreshing`] every `every` until the scan is over (true) or `limit` has
    /// passed with the section still refreshing (false). The first check is made at once: a
    /// scan of a few new files in an "Other Videos" library is often over by then.
    pub async fn wait_for_scan(
        &self,
        section_key: &str,
        every: Duration,
        limit: Duration,
    ) -> AppResult<bool> {
        let deadline = Instant::now() + limit;
        loop {
            if !self.is_refreshing(section_key).await? {
                return Ok(true);
            }
            if Instant::now() + every > deadline {
                return Ok(false);
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Waits for a scan asked for with [`Self::scan`] to bring in `wanted` (PMS paths of files
    /// under `folder`) and returns the section's items under `folder`.
    ///
    /// PMS answers the refresh at once and queues the scan, so `refreshing` can still read
    /// false before the scan starts (`pkkid/python-plexapi` `plexapi/library.py`
    /// `LibrarySection.update` returns without waiting): a false `refreshing` only means "done"
    /// once the scan has been seen running, or once every wanted file is an item.
    ///
    /// `refreshing` (one small read of the sections) is polled every `every`; the items, which
    /// in a big library are many pages, are read only when the scan is seen over, at a
    /// doubling backoff while it has not been seen (a scan too quick to be seen running), and
    /// once more at `limit`. No read of the items outlasts the deadline by more than
    /// [`LAST_READ`].
    pub async fn wait_for_files(
        &self,
        section_key: &str,
        folder: &str,
        wanted: &[String],
        every: Duration,
        limit: Duration,
    ) -> AppResult<Vec<PlexMetadata>> {
        let deadline = Instant::now() + limit;
        let mut seen_running = false;
        let mut next_read = Instant::now();
        let mut gap = every;
        loop {
            let refreshing = self.is_refreshing(section_key).await?;
            seen_running |= refreshing;
            if !refreshing && seen_running {
                return self.items_under_by(section_key, folder, deadline).await;
            }
            let now = Instant::now();
            if !refreshing && now >= next_read {
                let items = self.items_under_by(section_key, folder, deadline).await?;
                if wanted
                    .iter()
                    .all(|w| items.iter().any(|i| i.files.contains(w)))
                {
                    return Ok(items);
                }
                gap = (gap * 2).min(every * MAX_READ_GAP);
                next_read = Instant::now() + gap;
            }
            if Instant::now() + every > deadline {
                return self.items_under_by(section_key, folder, deadline).await;
            }
            tokio::time::sleep(every).await;
        }
    }

    /// [`Self::items_under`], given up (`UPSTREAM_TIMEOUT`) when it is not over by `deadline`
    /// plus [`LAST_READ`].
    async fn items_under_by(
        &self,
        section_key: &str,
        folder: &str,
        deadline: Instant,
    ) -> AppResult<Vec<PlexMetadata>> {
        let bound = deadline.saturating_duration_since(Instant::now()) + LAST_READ;
        tokio::time::timeout(bound, self.items_under(section_key, folder))
            .await
            .map_err(|_| AppError::new(ErrorCode::UpstreamTimeout))?
    }

    /// The section's items with a media file under `folder` (a PMS path; the folder itself and
    /// everything below it, compared by whole path components). Reads the section in pages of
    /// [`SCAN_PAGE`]; for a show section it reads episodes, which are what carry files.
    pub async fn items_under(
        &self,
        section_key: &str,
        folder: &str,
    ) -> AppResult<Vec<PlexMetadata>> {
        let key = checked_key("sectionKey", section_key)?;
        let section = self
            .section(key)
            .await?
            .ok_or_else(|| AppError::new(ErrorCode::NotFound))?;
        let plex_type = match section.kind.as_str() {
            "movie" => Some(1),
            "show" => Some(4),
            _ => None,
        };
        let mut found = Vec::new();
        let mut offset = 0;
        for _ in 0..MAX_PAGES {
            let page = self
                .section_items_of_type(key, plex_type, offset, SCAN_PAGE)
                .await?;
            let read = page.items.len() as u64;
            found.extend(
                page.items
                    .into_iter()
                    .filter(|item| item.files.iter().any(|f| is_under(f, folder))),
            );
            offset += read;
            if read == 0 || offset >= page.total {
                break;
            }
        }
        Ok(found)
    }

    /// The server's `machineIdentifier`, asked once per client (`GET /identity`).
    pub async fn machine_identifier(&self) -> AppResult<String> {
        if let Some(id) = self.machine_identifier.get() {
            return Ok(id.clone());
        }
        let id = self.identity().await?.machine_identifier;
        Ok(self.machine_identifier.get_or_init(|| id).clone())
    }

    /// The section's collection titled `title` (exactly, else ignoring ASCII case), if any.
    pub async fn find_collection(
        &self,
        section_key: &str,
        title: &str,
    ) -> AppResult<Option<PlexMetadata>> {
        let collections = self.collections(section_key).await?;
        let exact = collections.iter().position(|c| c.title == title);
        let index = exact.or_else(|| {
            collections
                .iter()
                .position(|c| c.title.eq_ignore_ascii_case(title))
        });
        Ok(index.map(|i| collections[i].clone()))
    }

    /// `POST /library/collections`: a regular collection titled `title` in the section, holding
    /// `items` (at least one: PMS makes no empty regular collection; all of one type). Returns
    /// the new collection's rating key.
    ///
    /// The collection's `type` is its items' type, not the section's: in a show library the
    /// files are episodes, so a collection of them is type 4, and PMS answers 400 to any other
    /// (`pkkid/python-plexapi` `plexapi/collection.py` `Collection._create` sends
    /// `utils.searchType(items[0].type)` and refuses mixed types).
    ///
    /// Some PMS builds answer the create oddly (UPSTREAMS.md 1.3 collection gotchas); when the
    /// answer names no collection, the section's collection of that title is looked up instead
    /// of failing (and of creating a duplicate on a retry).
    pub async fn create_collection(
        &self,
        section_key: &str,
        title: &str,
        items: &[PlexMetadata],
    ) -> AppResult<String> {
        let key = checked_key("sectionKey", section_key)?;
        if title.trim().is_empty() {
            return Err(AppError::validation([("title", "must not be empty")]));
        }
        let Some(kind) = items.first().map(|i| i.kind.as_str()) else {
            return Err(AppError::validation([("items", "must not be empty")]));
        };
        if items.iter().any(|i| i.kind != kind) {
            return Err(AppError::validation([(
                "items",
                "must all be of one type (a collection cannot mix types)",
            )]));
        }
        let plex_type = search_type(kind).ok_or_else(|| {
            AppError::validation([("items", "must be of a type a collection can hold")])
        })?;
        let rating_keys: Vec<String> = items.iter().map(|i| i.rating_key.clone()).collect();
        let uri = self.items_uri(&rating_keys).await?;
        let path = format!(
            "/library/collections?type={plex_type}&title={}&smart=0&sectionId={key}&uri={uri}",
            encode_query_value(title)
        );
        let created = self
            .upstream()
            .send(self.request(Method::Post, &path), |response| {
                let response = expect_success(response)?;
                // Tolerant: any failure to read the answer falls back to the lookup below.
                let bytes = read_body(response).unwrap_or_default();
                Ok(serde_json::from_slice::<Container<ListWire>>(&bytes)
                    .ok()
                    .and_then(|c| read_container(c).ok())
                    .and_then(|list| model::first(list, "create").ok())
                    .map(|collection| collection.rating_key))
            })
            .await?;
        match created {
            Some(rating_key) => Ok(rating_key),
            None => self
                .find_collection(key, title)
                .await?
                .map(|c| c.rating_key)
                .ok_or_else(|| AppError::Upstream {
                    code: ErrorCode::UpstreamError,
                    service: super::SERVICE_NAME,
                    detail: "collection created but not found by its title".into(),
                    retry_after: None,
                }),
        }
    }

    /// `PUT /library/collections/{key}/items`: adds `rating_keys` to the collection (items it
    /// already holds stay once). `NOT_FOUND` for an unknown collection.
    pub async fn add_to_collection(
        &self,
        collection_key: &str,
        rating_keys: &[String],
    ) -> AppResult<()> {
        let key = checked_key("collectionKey", collection_key)?;
        let uri = self.items_uri(rating_keys).await?;
        let path = format!("/library/collections/{key}/items?uri={uri}");
        let added = self
            .upstream()
            .send(
                self.request(Method::Put, &path),
                |response| match response.status().as_u16() {
                    404 => Ok(false),
                    200..=299 => Ok(true),
                    _ => Err(status_failure(response)),
                },
            )
            .await?;
        added
            .then_some(())
            .ok_or_else(|| AppError::new(ErrorCode::NotFound))
    }

    /// `server://<machineIdentifier>/com.plexapp.plugins.library/library/metadata/<k1>,<k2>`,
    /// percent-encoded for a query value.
    async fn items_uri(&self, rating_keys: &[String]) -> AppResult<String> {
        if rating_keys.is_empty() {
            return Err(AppError::validation([("ratingKeys", "must not be empty")]));
        }
        for key in rating_keys {
            checked_key("ratingKeys", key)?;
        }
        let machine = self.machine_identifier().await?;
        let uri = format!(
            "server://{machine}/com.plexapp.plugins.library/library/metadata/{}",
            rating_keys.join(",")
        );
        Ok(encode_query_value(&uri))
    }
}

/// PMS's type number for an item type (`pkkid/python-plexapi` `plexapi/utils.py`
/// `SEARCHTYPES`), for the types a regular collection can hold.
pub fn search_type(kind: &str) -> Option<u8> {
    Some(match kind {
        "movie" => 1,
        "show" => 2,
        "season" => 3,
        "episode" => 4,
        "artist" => 8,
        "album" => 9,
        "track" => 10,
        "clip" => 12,
        "photo" => 13,
        "photoalbum" => 14,
        _ => return None,
    })
}

/// Whether `file` is `folder` or lies below it, by whole path components (`/a/b` is not under
/// `/a/bc`). Both are PMS paths; a trailing separator on `folder` does not matter.
pub fn is_under(file: &str, folder: &str) -> bool {
    let folder = folder.trim_end_matches(['/', '\\']);
    if folder.is_empty() {
        return file.starts_with(['/', '\\']);
    }
    match file.strip_prefix(folder) {
        Some(rest) => rest.is_empty() || rest.starts_with(['/', '\\']),
        None => false,
    }
}

/// `C:\...` or `C:/...`: PMS on Windows reports such paths.
fn is_windows_absolute(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.len() >= 3
        && bytes[0].is_ascii_alphabetic()
        && bytes[1] == b':'
        && matches!(bytes[2], b'\\' | b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_compares_whole_components() {
        assert!(is_under("/data/yt/Mix/001 - a.mp4", "/data/yt/Mix"));
        assert!(is_under("/data/yt/Mix/001 - a.mp4", "/data/yt/Mix/"));
        assert!(is_under("/data/yt/Mix/sub/b.mkv", "/data/yt"));
        assert!(!is_under("/data/yt/Mixtape/a.mp4", "/data/yt/Mix"));
        assert!(!is_under("/other/a.mp4", "/data/yt"));
        assert!(is_under("D:\\yt\\Mix\\a.mp4", "D:\\yt\\Mix"));
        assert!(is_windows_absolute("D:\\yt"));
        assert!(!is_windows_absolute("yt/x"));
    }
}
