//! The Plex browse caches (SPEC section 7): server and libraries per user, items, search,
//! recently added and collections per user and arguments, images by path and size, all bounded
//! by bytes (`plex.browse_cache_mb` shared by the browse caches, `plex.image_cache_mb` for the
//! images): a page of long summaries weighs what it holds, not one entry. Values are `Arc`s of
//! what the API shows, so a hit costs a pointer copy.

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

/// Entries a browse cache expects to hold (a sizing hint; the bound is in bytes).
const BROWSE_ENTRIES: usize = 1024;

/// About how many bytes a cached value holds: its own size and what it points to.
pub trait Weigh {
    fn weigh(&self) -> u64;
}

fn size_of<T>() -> u64 {
    std::mem::size_of::<T>() as u64
}

impl Weigh for String {
    fn weigh(&self) -> u64 {
        size_of::<Self>() + self.len() as u64
    }
}

impl Weigh for Option<String> {
    fn weigh(&self) -> u64 {
        size_of::<Self>() + self.as_ref().map_or(0, |s| s.len() as u64)
    }
}

impl Weigh for u32 {
    fn weigh(&self) -> u64 {
        size_of::<Self>()
    }
}

impl Weigh for u64 {
    fn weigh(&self) -> u64 {
        size_of::<Self>()
    }
}

impl<T: Weigh> Weigh for Vec<T> {
    fn weigh(&self) -> u64 {
        size_of::<Self>() + self.iter().map(Weigh::weigh).sum::<u64>()
    }
}

impl<T: Weigh> Weigh for Arc<T> {
    fn weigh(&self) -> u64 {
        size_of::<Self>() + T::weigh(self)
    }
}

impl<A: Weigh, B: Weigh> Weigh for (A, B) {
    fn weigh(&self) -> u64 {
        self.0.weigh() + self.1.weigh()
    }
}

impl<A: Weigh, B: Weigh, C: Weigh> Weigh for (A, B, C) {
    fn weigh(&self) -> u64 {
        self.0.weigh() + self.1.weigh() + self.2.weigh()
    }
}

impl<A: Weigh, B: Weigh, C: Weigh, D: Weigh> Weigh for (A, B, C, D) {
    fn weigh(&self) -> u64 {
        self.0.weigh() + self.1.weigh() + self.2.weigh() + self.3.weigh()
    }
}

impl Weigh for ServerView {
    fn weigh(&self) -> u64 {
        size_of::<Self>()
            + (self.name.len() + self.machine_identifier.len() + self.version.len()) as u64
            + text_bytes(&[&self.platform])
    }
}

impl Weigh for Library {
    fn weigh(&self) -> u64 {
        size_of::<Self>() + (self.key.len() + self.kind.len() + self.title.len()) as u64
    }
}

/// The heap bytes of some optional strings.
fn text_bytes(texts: &[&Option<String>]) -> u64 {
    texts
        .iter()
        .map(|t| t.as_ref().map_or(0, |s| s.len() as u64))
        .sum()
}

impl Weigh for PlexItem {
    fn weigh(&self) -> u64 {
        size_of::<Self>()
            + (self.rating_key.len() + self.kind.len() + self.title.len()) as u64
            + text_bytes(&[&self.summary, &self.thumb, &self.added_at])
    }
}

impl Weigh for ItemsPageView {
    fn weigh(&self) -> u64 {
        size_of::<Self>() + self.items.weigh()
    }
}

impl Weigh for CollectionView {
    fn weigh(&self) -> u64 {
        size_of::<Self>()
            + (self.rating_key.len() + self.title.len()) as u64
            + text_bytes(&[&self.subtype, &self.summary, &self.thumb, &self.added_at])
    }
}

impl Weigh for CollectionDetail {
    fn weigh(&self) -> u64 {
        self.collection.weigh() + self.items.weigh()
    }
}

/// The weigher of a browse cache: key and value.
fn weigh_entry<K: Weigh, V: Weigh>(key: &K, value: &V) -> u64 {
    key.weigh() + value.weigh()
}

/// A browse cache bounded to `bytes`.
fn browse<K, V>(name: &'static str, bytes: u64, clock: &SharedClock) -> TtlCache<K, V>
where
    K: Weigh + Eq + std::hash::Hash + Clone + Send + Sync + 'static,
    V: Weigh + Clone + Send + Sync + 'static,
{
    TtlCache::with_weigher(
        name,
        bytes,
        BROWSE_ENTRIES,
        weigh_entry::<K, V>,
        clock.clone(),
    )
}

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
    /// The caches: images bounded to `image_bytes`, the browse caches together to
    /// `browse_bytes` (a quarter each for items, search and single collections, a sixteenth
    /// each for the server, libraries, recently added and collection lists).
    pub fn new(image_bytes: u64, browse_bytes: u64, clock: SharedClock) -> Self {
        let (large, small) = (browse_bytes / 4, browse_bytes / 16);
        Self {
            server: browse("plex_server", small, &clock),
            libraries: browse("plex_libraries", small, &clock),
            items: browse("plex_items", large, &clock),
            search: browse("plex_search", large, &clock),
            recent: browse("plex_recently_added", small, &clock),
            collections: browse("plex_collections", small, &clock),
            collection: browse("plex_collection", large, &clock),
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn item(n: usize, summary_bytes: usize) -> PlexItem {
        PlexItem {
            rating_key: n.to_string(),
            kind: "movie".into(),
            title: format!("Title {n}"),
            year: Some(2000),
            summary: Some("x".repeat(summary_bytes)),
            thumb: Some(format!(
                "/api/v1/plex/image?path=%2Flibrary%2Fmetadata%2F{n}"
            )),
            duration: None,
            added_at: None,
            view_count: None,
        }
    }

    /// Pages of long summaries are weighed by their bytes: however many users cache them, the
    /// browse caches hold no more than their share of `plex.browse_cache_mb`.
    #[test]
    fn many_large_pages_stay_within_the_byte_budget() {
        let budget = 1024 * 1024;
        let caches = PlexCaches::new(budget, budget, crate::clock::system());
        let page = Arc::new(ItemsPageView {
            items: (0..100).map(|n| item(n, 1000)).collect(),
            offset: 0,
            total: 100,
        });
        assert!(page.weigh() > 100 * 1000, "{}", page.weigh());
        let results = Arc::new(page.items.clone());
        for user in 0..200 {
            let key = (format!("user-{user}"), "1".to_owned(), 0, 100);
            caches.items.insert(key, page.clone(), BROWSE_TTL);
            let key = (format!("user-{user}"), "iron".to_owned(), 50);
            caches.search.insert(key, results.clone(), BROWSE_TTL);
        }
        for stats in [caches.items.stats(), caches.search.stats()] {
            assert_eq!(stats.capacity, budget / 4, "{stats:?}");
            assert!(stats.weight <= stats.capacity, "{stats:?}");
            assert!(stats.entries < 5, "{stats:?}");
            assert!(stats.evictions > 190, "{stats:?}");
        }
        let all: u64 = caches.stats().iter().map(|s| s.capacity).sum::<u64>() - budget;
        assert!(all <= budget, "the browse caches share the budget: {all}");
    }
}
