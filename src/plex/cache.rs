//! The Plex browse caches (SPEC section 7): server and libraries per user, items, search,
//! recently added and collections per user and arguments, images by path and size, bounded by
//! bytes. Values are `Arc`s of what the API shows, so a hit costs a pointer copy.

use std::sync::Arc;
use std::time::Duration;

use super::view::{CollectionDetail, CollectionView, ItemsPageView, Library, PlexItem, ServerView};
use crate::cache::{CacheStats, TtlCache};
use crate::clock::SharedClock;

/// `GET /plex/server`.
pub const SERVER_TTL: Duration = Duration::from_secs(3600);
/// `GET /plex/libraries`.
pub const LIBRARIES_TTL: Duration = Duration::from_secs(600);
/// Items, search, recently added, collections.
pub const BROWSE_TTL: Duration = Duration::from_secs(120);
/// Images.
pub const IMAGE_TTL: Duration = Duration::from_secs(3600);

/// Entries each browse cache keeps (per user and arguments; a few hundred users' pages).
const BROWSE_ENTRIES: usize = 1024;

/// An image as served: bytes, type and the strong validator of its bytes.
#[derive(Debug)]
pub struct CachedImage {
    pub bytes: axum::body::Bytes,
    pub content_type: String,
    pub etag: String,
}

/// `(path, width, height)`.
pub type ImageKey = (String, Option<u32>, Option<u32>);

/// `(user id, section key, offset, limit)`.
pub type ItemsKey = (String, String, u64, u64);

/// Every Plex cache, kept in the application state.
pub struct PlexCaches {
    pub(super) server: TtlCache<String, Arc<ServerView>>,
    pub(super) libraries: TtlCache<String, Arc<Vec<Library>>>,
    pub(super) items: TtlCache<ItemsKey, Arc<ItemsPageView>>,
    pub(super) search: TtlCache<(String, String, u32), Arc<Vec<PlexItem>>>,
    pub(super) recent: TtlCache<(String, u32), Arc<Vec<PlexItem>>>,
    pub(super) collections: TtlCache<(String, String), Arc<Vec<CollectionView>>>,
    pub(super) collection: TtlCache<(String, String), Arc<CollectionDetail>>,
    pub(super) images: TtlCache<ImageKey, Arc<CachedImage>>,
}

impl std::fmt::Debug for PlexCaches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlexCaches").finish_non_exhaustive()
    }
}

impl PlexCaches {
    /// The caches, images bounded to `image_bytes`.
    pub fn new(image_bytes: u64, clock: SharedClock) -> Self {
        Self {
            server: TtlCache::new("plex_server", 256, clock.clone()),
            libraries: TtlCache::new("plex_libraries", 256, clock.clone()),
            items: TtlCache::new("plex_items", BROWSE_ENTRIES, clock.clone()),
            search: TtlCache::new("plex_search", BROWSE_ENTRIES, clock.clone()),
            recent: TtlCache::new("plex_recently_added", 256, clock.clone()),
            collections: TtlCache::new("plex_collections", 256, clock.clone()),
            collection: TtlCache::new("plex_collection", BROWSE_ENTRIES, clock.clone()),
            images: TtlCache::with_weigher(
                "plex_images",
                image_bytes,
                1024,
                |key, image| (key.0.len() + image.bytes.len() + image.content_type.len()) as u64,
                clock,
            ),
        }
    }

    /// The counters of every Plex cache.
    pub fn stats(&self) -> Vec<CacheStats> {
        vec![
            self.server.stats(),
            self.libraries.stats(),
            self.items.stats(),
            self.search.stats(),
            self.recent.stats(),
            self.collections.stats(),
            self.collection.stats(),
            self.images.stats(),
        ]
    }

    /// Forgets everything (the Plex settings changed: another server, another token).
    pub fn clear(&self) {
        self.server.clear();
        self.libraries.clear();
        self.items.clear();
        self.search.clear();
        self.recent.clear();
        self.collections.clear();
        self.collection.clear();
        self.images.clear();
    }
}
