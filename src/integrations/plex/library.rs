//! Reading the library: sections, a section's items page by page, search, recently added,
//! collections and their items, and images (UPSTREAMS.md 1.3).
//!
//! Every call asks for JSON with the server token in a header. An answer PMS gives as 404 (an
//! unknown section, collection or image) becomes the catalog's `NOT_FOUND`, not an upstream
//! failure: the caller asked for something that is not there, and the server is fine.

use ureq::Body;
use ureq::http::Response;

use super::model::{
    self, ItemsPage, ListWire, PlexImage, PlexMetadata, PlexSection, PlexServerInfo, SectionWire,
    ServerWire,
};
use super::{Container, PlexServer, read_container};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::integrations::overseerr::encode_query_value;
use crate::integrations::upstream::{
    Method, Request, UpstreamFailure, expect_success, read_body, read_json,
};

/// Paging headers PMS reads on every list (they work as query parameters too).
const CONTAINER_START: &str = "X-Plex-Container-Start";
const CONTAINER_SIZE: &str = "X-Plex-Container-Size";
/// The image types passed on to browsers.
const RASTER_TYPES: [&str; 5] = [
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/avif",
];

/// Whether `key` can be a section key or rating key: 1-20 ASCII digits. Keys go into URL paths,
/// so anything else is refused before a request is built.
pub fn is_plex_key(key: &str) -> bool {
    (1..=20).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_digit())
}

/// `key` checked with [`is_plex_key`], or a validation error naming `field`.
pub(super) fn checked_key<'a>(field: &'static str, key: &'a str) -> AppResult<&'a str> {
    if is_plex_key(key) {
        Ok(key)
    } else {
        Err(AppError::validation([(
            field,
            "must be a Plex key (digits)",
        )]))
    }
}

/// A 2xx list answer, `None` on 404.
fn list_or_404(response: Response<Body>) -> Result<Option<ListWire>, UpstreamFailure> {
    if response.status().as_u16() == 404 {
        return Ok(None);
    }
    let container: Container<ListWire> = read_json(expect_success(response)?)?;
    read_container(container).map(Some)
}

fn found<T>(value: Option<T>) -> AppResult<T> {
    value.ok_or_else(|| AppError::new(ErrorCode::NotFound))
}

impl PlexServer {
    /// `GET path` with paging headers when given; the `MediaContainer`, or `NOT_FOUND` on 404.
    pub(super) async fn list(&self, path: &str, page: Option<(u64, u64)>) -> AppResult<ListWire> {
        self.list_request(self.request(Method::Get, path), page)
            .await
    }

    /// [`Self::list`] of a path keyed by what a caller chose (a section or collection key): what
    /// PMS answers to it, an error page or an answer over the size cap, never counts for the
    /// breaker; refused connections and timeouts still do.
    async fn list_chosen(&self, path: &str, page: Option<(u64, u64)>) -> AppResult<ListWire> {
        self.list_request(self.request(Method::Get, path).caller_chosen(), page)
            .await
    }

    /// [`Self::list`] of a prepared request (one marked caller-chosen, say).
    async fn list_request(
        &self,
        mut request: Request,
        page: Option<(u64, u64)>,
    ) -> AppResult<ListWire> {
        if let Some((start, size)) = page {
            request = request
                .header(CONTAINER_START, start.to_string())
                .header(CONTAINER_SIZE, size.to_string());
        }
        found(self.upstream().send(request, list_or_404).await?)
    }

    /// `GET /` (with the token): the server's name, id, version and platform.
    pub async fn server_info(&self) -> AppResult<PlexServerInfo> {
        let request = self.request(Method::Get, "/");
        self.upstream()
            .send(request, |response| {
                let container: Container<ServerWire> = read_json(expect_success(response)?)?;
                read_container(container)?.into_info()
            })
            .await
    }

    /// `GET /library/sections`: every library section, in PMS's order.
    pub async fn sections(&self) -> AppResult<Vec<PlexSection>> {
        let list = self.list("/library/sections", None).await?;
        Ok(list
            .directory
            .into_iter()
            .filter_map(SectionWire::into_section)
            .collect())
    }

    /// One section, `None` when there is no section with that key.
    pub async fn section(&self, section_key: &str) -> AppResult<Option<PlexSection>> {
        Ok(self
            .sections()
            .await?
            .into_iter()
            .find(|s| s.key == section_key))
    }

    /// `GET /library/sections/{key}/all`: `limit` items from `offset`, with the section's total.
    /// `limit` 0 asks only for the total (a cheap count). `NOT_FOUND` for an unknown section.
    pub async fn section_items(
        &self,
        section_key: &str,
        offset: u64,
        limit: u64,
    ) -> AppResult<ItemsPage> {
        self.section_items_of_type(section_key, None, offset, limit)
            .await
    }

    /// [`Self::section_items`] restricted to one PMS type number (1 movie, 4 episode, ...).
    pub(super) async fn section_items_of_type(
        &self,
        section_key: &str,
        plex_type: Option<u8>,
        offset: u64,
        limit: u64,
    ) -> AppResult<ItemsPage> {
        let key = checked_key("key", section_key)?;
        let path = match plex_type {
            Some(t) => format!("/library/sections/{key}/all?type={t}"),
            None => format!("/library/sections/{key}/all"),
        };
        let list = self.list_chosen(&path, Some((offset, limit))).await?;
        let mut page = model::page(list, offset);
        // Some builds ignore a size of 0 and send everything.
        page.items
            .truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(page)
    }

    /// `GET /hubs/search`: up to `limit` items matching `query`, across every library, in the
    /// order of PMS's hubs (movies, shows, ...). Hubs without matches are left out by PMS's
    /// `Metadata`-less answer; people and tags (which come as `Directory`) are not items.
    pub async fn search(&self, query: &str, limit: u32) -> AppResult<Vec<PlexMetadata>> {
        let path = format!(
            "/hubs/search?query={}&limit={}&includeCollections=1",
            encode_query_value(query),
            limit.max(1)
        );
        // The text is the caller's: what PMS answers to it never counts for the breaker.
        let request = self.request(Method::Get, &path).caller_chosen();
        let list = self.list_request(request, None).await?;
        let mut items: Vec<PlexMetadata> = list
            .hub
            .into_iter()
            .flat_map(|hub| model::items(hub.metadata))
            .collect();
        items.truncate(limit as usize);
        Ok(items)
    }

    /// `GET /library/recentlyAdded`: the `limit` newest items of all libraries, newest first.
    pub async fn recently_added(&self, limit: u32) -> AppResult<Vec<PlexMetadata>> {
        let list = self
            .list("/library/recentlyAdded", Some((0, u64::from(limit))))
            .await?;
        let mut items = model::items(list.metadata);
        items.truncate(limit as usize);
        Ok(items)
    }

    /// `GET /library/sections/{key}/collections`: the section's collections (as items of type
    /// `collection`, with `subtype` and `child_count`).
    pub async fn collections(&self, section_key: &str) -> AppResult<Vec<PlexMetadata>> {
        let key = checked_key("key", section_key)?;
        let list = self
            .list_chosen(&format!("/library/sections/{key}/collections"), None)
            .await?;
        Ok(model::items(list.metadata))
    }

    /// `GET /library/collections/{ratingKey}`: one collection, `NOT_FOUND` if there is none.
    pub async fn collection(&self, rating_key: &str) -> AppResult<PlexMetadata> {
        let key = checked_key("ratingKey", rating_key)?;
        let list = self
            .list_chosen(&format!("/library/collections/{key}"), None)
            .await?;
        found(model::items(list.metadata).into_iter().next())
    }

    /// `GET /library/collections/{ratingKey}/children`: the collection's items.
    pub async fn collection_items(&self, rating_key: &str) -> AppResult<Vec<PlexMetadata>> {
        let key = checked_key("ratingKey", rating_key)?;
        let list = self
            .list_chosen(&format!("/library/collections/{key}/children"), None)
            .await?;
        Ok(model::items(list.metadata))
    }

    /// An image by its PMS path (one of the shapes [`is_image_path`] accepts), resized by PMS's
    /// photo transcoder when a width or height is given. The HTTP layer checks what users send;
    /// this refuses anything else again, before any call. `NOT_FOUND` when PMS has no such image;
    /// an answer that is not a raster image (`image/*` other than SVG) is an `UPSTREAM_ERROR`.
    /// The path is the caller's choice, so nothing PMS answers to it counts for the breaker
    /// (only a connection that fails or a timeout does).
    pub async fn image(
        &self,
        path: &str,
        width: Option<u32>,
        height: Option<u32>,
    ) -> AppResult<PlexImage> {
        if !is_image_path(path) {
            return Err(AppError::validation([(
                "path",
                "must be a Plex image path",
            )]));
        }
        let target = if width.is_some() || height.is_some() {
            let mut target = String::from("/photo/:/transcode?minSize=1&upscale=1");
            if let Some(w) = width {
                target.push_str(&format!("&width={w}"));
            }
            if let Some(h) = height {
                target.push_str(&format!("&height={h}"));
            }
            target.push_str(&format!("&url={}", encode_query_value(path)));
            target
        } else {
            path.to_owned()
        };
        // Images are bytes: the JSON Accept the base adds would only confuse the transcoder.
        let request = Request::new(Method::Get, format!("{}{target}", self.base_url()));
        let request = self
            .authorize(request)
            .header("Accept", "image/*")
            .caller_chosen();
        let image = self
            .upstream()
            .send(request, |response| {
                if response.status().as_u16() == 404 {
                    return Ok(None);
                }
                let response = expect_success(response)?;
                let content_type = crate::integrations::upstream::media_type(&response);
                // Raster types only: an SVG served from MediaNest's origin could run script, and
                // anything that is not an image (a page, a list) is not passed on at all.
                if !RASTER_TYPES.contains(&content_type.as_str()) {
                    return Err(UpstreamFailure::Decode(format!(
                        "an image answer of type `{content_type}`"
                    )));
                }
                Ok(Some(PlexImage {
                    bytes: read_body(response)?,
                    content_type,
                }))
            })
            .await?;
        found(image)
    }
}

/// Whether `path` is one of the PMS image paths the proxy passes on: `/library/metadata/{id}/`
/// then `thumb/`, `art/` or `banner/` and a timestamp, or `/library/collections/{id}/composite/`
/// and a timestamp, every id and timestamp decimal. Nothing else (no list, no endpoint with side
/// effects such as `/library/sections/{key}/refresh`, no query) reaches PMS through the proxy.
pub fn is_image_path(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        [
            "",
            "library",
            "metadata",
            id,
            "thumb" | "art" | "banner",
            at,
        ]
        | ["", "library", "collections", id, "composite", at] => is_plex_key(id) && is_plex_key(at),
        _ => false,
    }
}
