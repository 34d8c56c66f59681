//! Posters and backdrops served from our own origin: `GET /images/tmdb/{size}/{file}`.
//!
//! The dashboard's CSP allows images from MediaNest only, so the TMDB images Seerr names
//! (`posterPath`, `backdropPath`) come through here. Only a size of [`SIZES`] and a plain TMDB
//! file name ([`parse_target`]) pass; anything else is a 400 before any fetch, so nothing but
//! `{images.tmdb_base_url}/{size}/{file}` can ever be fetched. An image is fetched on first use
//! ([`client`]), kept on disk within `images.cache_mb` ([`cache`]), and served with a year-long
//! immutable `Cache-Control` (TMDB files never change under one name) and a strong `ETag`.
//! Concurrent requests for one image that is not kept yet fetch it once.
//!
//! This module owns its state ([`TmdbImages`]); it knows nothing of Seerr or the dashboard.

pub mod cache;
pub mod client;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{RawPathParams, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use tokio::sync::{OnceCell, Semaphore};

use crate::auth::CurrentUser;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::error::{AppError, AppResult};
use crate::routes::{Access, Routes};
use crate::state::AppState;

/// The sizes TMDB's configuration lists for posters and backdrops (`GET /3/configuration`,
/// `images.poster_sizes` and `images.backdrop_sizes`).
pub const SIZES: [&str; 8] = [
    "w92", "w154", "w185", "w342", "w500", "w780", "w1280", "original",
];
/// The longest file name stem accepted (TMDB's are 27 characters).
const MAX_STEM: usize = 64;
/// The file name endings accepted.
const EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "webp"];
/// A year, and never asked again: TMDB never changes the file behind a name.
const BROWSER_CACHE: &str = "public, max-age=31536000, immutable";
/// Disk reads and writes of images at once.
const DISK_JOBS: usize = 4;

/// The image routes (under `/api/v1`). The file is a wildcard so that a name with a `/` in it
/// is refused by [`parse_target`] with a 400 like any other bad name, not a 404.
pub fn routes() -> Routes {
    Routes::new().add(
        Method::GET,
        "/images/tmdb/{size}/{*file}",
        Access::User,
        get_tmdb_image,
    )
}

/// Checks a requested size and file name (decoded; the handler refuses a `%` in the path as
/// sent before this) and names the field that is wrong.
pub fn parse_target<'a>(
    size: &'a str,
    file: &'a str,
) -> Result<(&'a str, &'a str), (&'static str, &'static str)> {
    if !SIZES.contains(&size) {
        return Err(BAD_SIZE);
    }
    if !is_file_name(file) {
        return Err(BAD_FILE);
    }
    Ok((size, file))
}

const BAD_SIZE: (&str, &str) = (
    "size",
    "must be one of w92, w154, w185, w342, w500, w780, w1280, original",
);
const BAD_FILE: (&str, &str) = (
    "file",
    "must be a TMDB image name: up to 64 letters, digits, - or _ then .jpg, .jpeg, .png or .webp",
);

/// `^[A-Za-z0-9_-]{1,64}\.(jpg|jpeg|png|webp)$`.
fn is_file_name(file: &str) -> bool {
    let Some((stem, ext)) = file.rsplit_once('.') else {
        return false;
    };
    (1..=MAX_STEM).contains(&stem.len())
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        && EXTENSIONS.contains(&ext)
}

/// The image feature's state: the disk cache, the image host's client, and the fetches in
/// flight. Cheap to clone.
#[derive(Clone)]
pub struct TmdbImages {
    inner: Arc<Inner>,
}

struct Inner {
    cache: cache::DiskCache,
    client: client::TmdbClient,
    loaded: OnceCell<()>,
    disk: Arc<Semaphore>,
    flights: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for TmdbImages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TmdbImages")
            .field("root", &self.inner.cache.root())
            .field("client", &self.inner.client)
            .finish_non_exhaustive()
    }
}

/// One image ready to serve.
#[derive(Debug, Clone)]
pub struct Image {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub etag: String,
    /// Whether it came from the disk cache.
    pub hit: bool,
}

impl TmdbImages {
    /// The state for `config` (`[images]`, the data dir). Touches no file until first used.
    pub fn new(config: &Config, clock: SharedClock) -> Self {
        let images = &config.images;
        let root = config.data_dir.join("cache").join("images").join("tmdb");
        Self {
            inner: Arc::new(Inner {
                cache: cache::DiskCache::new(root, images.cache_mb.saturating_mul(1024 * 1024)),
                client: client::TmdbClient::new(
                    &images.tmdb_base_url,
                    images.max_image_kb.saturating_mul(1024),
                    Duration::from_millis(images.timeout_ms),
                    clock,
                ),
                loaded: OnceCell::new(),
                disk: Arc::new(Semaphore::new(DISK_JOBS)),
                flights: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Bytes kept on disk now (the cache's own count).
    pub fn cached_bytes(&self) -> u64 {
        self.inner.cache.total_bytes()
    }

    /// Requests holding or waiting for the turn to fetch `size`/`file` (0 when none is under
    /// way).
    pub fn fetching(&self, size: &str, file: &str) -> usize {
        let flights = self
            .inner
            .flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        flights
            .get(&format!("{size}/{file}"))
            .map_or(0, |l| Arc::strong_count(l) - 1)
    }

    async fn disk<T, F>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&cache::DiskCache) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let me = self.clone();
        crate::blocking::run_gated(&self.inner.disk, move || f(&me.inner.cache)).await
    }

    /// The index, rebuilt from the directory once per start.
    async fn ensure_loaded(&self) -> AppResult<()> {
        self.inner
            .loaded
            .get_or_try_init(|| {
                self.disk(|cache| {
                    cache
                        .load(|size, file| parse_target(size, file).is_ok())
                        .map_err(|e| AppError::internal(format!("image cache: {e}")))
                })
            })
            .await
            .map(|_| ())
    }

    /// The kept image under `key`, if any; a kept file that is not an image is removed.
    async fn cached(&self, key: &str) -> AppResult<Option<Image>> {
        let key = key.to_owned();
        self.disk(move |cache| {
            let Some(found) = cache.get(&key) else {
                return Ok(None);
            };
            let Some(content_type) = client::sniff(&found.bytes) else {
                tracing::warn!(file = %key, "a cached image is not an image; fetching it again");
                cache.remove(&key);
                return Ok(None);
            };
            Ok(Some(Image {
                bytes: found.bytes,
                content_type,
                etag: found.etag,
                hit: true,
            }))
        })
        .await
    }

    /// The image `size`/`file` (both checked by [`parse_target`]): from disk, or fetched once
    /// and kept.
    pub async fn get(&self, size: &str, file: &str) -> AppResult<Image> {
        self.ensure_loaded().await?;
        let key = format!("{size}/{file}");
        if let Some(found) = self.cached(&key).await? {
            return Ok(found);
        }
        let flight = Flight::join(self, &key);
        let _turn = flight.lock.lock().await;
        // Whoever held the turn before may have just kept it.
        if let Some(found) = self.cached(&key).await? {
            return Ok(found);
        }
        let (bytes, content_type) = self.inner.client.fetch(size, file).await?;
        let (keep, kept) = (key.clone(), bytes.clone());
        let etag = match self
            .disk(move |cache| Ok(cache.insert(&keep, &kept)))
            .await?
        {
            Ok(etag) => etag,
            Err(e) => {
                // Served anyway; the next request tries to keep it again.
                tracing::warn!(file = %key, error = %e, "cannot keep an image on disk");
                crate::http::strong_etag(&bytes)
            }
        };
        Ok(Image {
            bytes,
            content_type,
            etag,
            hit: false,
        })
    }
}

/// A turn at fetching one image: requests for the same image wait for each other; the entry
/// leaves the map with its last holder.
struct Flight {
    images: TmdbImages,
    key: String,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl Flight {
    fn join(images: &TmdbImages, key: &str) -> Self {
        let mut flights = images
            .inner
            .flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let lock = flights.entry(key.to_owned()).or_default().clone();
        Self {
            images: images.clone(),
            key: key.to_owned(),
            lock,
        }
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        let mut flights = self
            .images
            .inner
            .flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Two holders: the map and this one, so nobody else waits.
        if flights
            .get(&self.key)
            .is_some_and(|l| Arc::ptr_eq(l, &self.lock) && Arc::strong_count(l) == 2)
        {
            flights.remove(&self.key);
        }
    }
}

/// `GET /images/tmdb/{size}/{file}`: signed-in users -> the image (`X-Cache: HIT|MISS`), 304
/// for a matching `If-None-Match`.
pub async fn get_tmdb_image(
    State(state): State<AppState>,
    _user: CurrentUser,
    headers: HeaderMap,
    uri: Uri,
    params: RawPathParams,
) -> AppResult<Response> {
    let refuse =
        |(field, problem): (&'static str, &'static str)| AppError::validation([(field, problem)]);
    // The captures arrive percent-decoded; a TMDB name never needs a `%`, so one in the path as
    // sent is refused outright rather than decoded into something that might pass.
    if let Some((raw_size, raw_file)) = uri
        .path()
        .split_once("/images/tmdb/")
        .and_then(|(_, tail)| tail.split_once('/'))
    {
        if raw_size.contains('%') {
            return Err(refuse(BAD_SIZE));
        }
        if raw_file.contains('%') {
            return Err(refuse(BAD_FILE));
        }
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| *k == name)
            .map_or("", |(_, v)| v)
    };
    let (size, file) = parse_target(param("size"), param("file")).map_err(refuse)?;
    let image = state.images().get(size, file).await?;
    Ok(crate::http::image_response(
        &headers,
        &image.etag,
        image.content_type,
        image.bytes.into(),
        BROWSER_CACHE,
        image.hit,
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_images_settings_are_checked() {
        let with = |edit: fn(&mut crate::config::ImagesConfig)| {
            let mut config = Config::default();
            edit(&mut config.images);
            config.validate().map_err(|e| e.to_string())
        };
        assert!(with(|_| {}).is_ok());
        assert!(with(|i| i.tmdb_base_url = "http://127.0.0.1:5055/images".into()).is_ok());
        for (edit, key) in [
            (
                (|i| i.tmdb_base_url = "ftp://image.tmdb.org/t/p".into())
                    as fn(&mut crate::config::ImagesConfig),
                "images.tmdb_base_url",
            ),
            (
                |i| i.tmdb_base_url = "image.tmdb.org".into(),
                "images.tmdb_base_url",
            ),
            (
                |i| i.tmdb_base_url = "https://u:p@host/t/p".into(),
                "images.tmdb_base_url",
            ),
            (|i| i.cache_mb = 0, "images.cache_mb"),
            (|i| i.max_image_kb = 0, "images.max_image_kb"),
            (
                |i| {
                    i.cache_mb = 1;
                    i.max_image_kb = 2048;
                },
                "images.max_image_kb",
            ),
            (|i| i.timeout_ms = 0, "images.timeout_ms"),
        ] {
            let e = with(edit).unwrap_err();
            assert!(e.contains(key), "{e}");
        }
    }

    #[test]
    fn only_known_sizes_and_plain_tmdb_names_pass() {
        for (size, file) in [
            ("w185", "kqjL17yufvn9OVLyXYpvtyrFfak.jpg"),
            ("original", "a.png"),
            ("w1280", "x_y-z.webp"),
            ("w92", "A1.jpeg"),
        ] {
            assert_eq!(parse_target(size, file), Ok((size, file)));
        }
        for size in ["", "w9999", "W185", "w185 ", "..", "https:", "w185%2F"] {
            assert_eq!(parse_target(size, "a.jpg").unwrap_err().0, "size", "{size}");
        }
        let long = format!("{}.jpg", "a".repeat(65));
        for file in [
            "",
            ".jpg",
            "a",
            "a.",
            "a.svg",
            "a.JPG",
            "a.jpg.html",
            "..%2Fetc",
            "..%2Fetc%2Fpasswd.jpg",
            "../etc/passwd",
            "a/b.jpg",
            "%2e%2e.jpg",
            "a b.jpg",
            "a.jpg?x=1",
            "https://evil.example/a.jpg",
            "//evil.example/a.jpg",
            "a..jpg",
            long.as_str(),
        ] {
            assert_eq!(parse_target("w185", file).unwrap_err().0, "file", "{file}");
        }
    }
}
