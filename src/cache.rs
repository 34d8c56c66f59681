//! The TTL layer over quick_cache that every cache in the application uses (SPEC section 7).
//!
//! A [`TtlCache`] owns: per-entry expiry read from the injected [`Clock`](crate::clock::Clock), a
//! bound by entry count or by weight in bytes, one loader call for concurrent misses of one key,
//! serving the expired value marked stale when a load fails, and hit/miss/eviction counters.
//!
//! It must not know what it stores or where values come from: no HTTP, no database, no upstream
//! types. Callers pass the loader and decide TTLs and keys. It never reads the system time and never
//! spawns tasks; a load runs inside the caller's future.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, Weighter};
use serde::Serialize;
use tokio::sync::watch;

use crate::clock::SharedClock;

/// Weighs one cached value, in bytes, for a byte-bounded cache.
pub type Weigher<K, V> = fn(&K, &V) -> u64;

/// Where the value of a [`Lookup`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A fresh value was already cached.
    Hit,
    /// The value was loaded for this lookup (by this caller or by the one it waited for).
    Miss,
    /// The load failed and an earlier value was served instead; `age_ms` is how long ago it was stored.
    Stale {
        /// Milliseconds since the value was stored.
        age_ms: i64,
    },
}

/// A value from [`TtlCache::get_or_load`] and whether it was a hit, a miss or stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup<V> {
    /// The value.
    pub value: V,
    /// Where it came from; the HTTP layer turns this into `X-Cache` and `stale: true`.
    pub source: Source,
}

impl<V> Lookup<V> {
    /// Whether the value was served from the cache without loading.
    pub fn is_hit(&self) -> bool {
        self.source == Source::Hit
    }

    /// The age of a stale value, or `None` when the value is not stale.
    pub fn stale_age_ms(&self) -> Option<i64> {
        match self.source {
            Source::Stale { age_ms } => Some(age_ms),
            Source::Hit | Source::Miss => None,
        }
    }
}

/// A snapshot of one cache's counters, as exposed by the stats endpoints.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheStats {
    /// The cache's name.
    pub name: &'static str,
    /// Lookups answered with a fresh cached value.
    pub hits: u64,
    /// Lookups that found no fresh value (including those that were then served stale).
    pub misses: u64,
    /// Entries pushed out by the size bound, or refused because they alone exceed it.
    pub evictions: u64,
    /// Expired values served because a load failed.
    pub stale_served: u64,
    /// Entries held now, expired ones included.
    pub entries: u64,
    /// Weight held now: bytes for a byte-bounded cache, entries otherwise.
    pub weight: u64,
    /// The bound on `weight`.
    pub capacity: u64,
    /// `hits / (hits + misses)`, or 0 before any lookup.
    pub hit_rate: f64,
}

/// A named, bounded cache whose entries each carry their own expiry.
///
/// An expired entry is a miss for [`get`](Self::get) and [`get_or_load`](Self::get_or_load) but is
/// kept until evicted or invalidated, so it can be served stale when a reload fails. Share it
/// behind an `Arc`; all methods take `&self`.
pub struct TtlCache<K, V> {
    name: &'static str,
    entries: Cache<K, Entry<V>, EntryWeighter<K, V>, DefaultHashBuilder, CountEvictions>,
    /// Loads in progress, one per key. Also serialises "invalidate" against "store a loaded value".
    flights: Mutex<HashMap<K, watch::Sender<Option<Settled<V>>>>>,
    clock: SharedClock,
    /// Bumped by every invalidation so a load that started before it does not store its result.
    generation: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    stale_served: AtomicU64,
    evictions: Arc<AtomicU64>,
}

#[derive(Clone)]
struct Entry<V> {
    value: V,
    stored_at_ms: i64,
    expires_at_ms: i64,
}

impl<V> Entry<V> {
    fn is_fresh(&self, now_ms: i64) -> bool {
        now_ms < self.expires_at_ms
    }
}

struct EntryWeighter<K, V> {
    weigh: Weigher<K, V>,
}

impl<K, V> Clone for EntryWeighter<K, V> {
    fn clone(&self) -> Self {
        Self { weigh: self.weigh }
    }
}

impl<K, V> Weighter<K, Entry<V>> for EntryWeighter<K, V> {
    fn weight(&self, key: &K, entry: &Entry<V>) -> u64 {
        // quick_cache never evicts zero-weight items, which would make the bound meaningless.
        (self.weigh)(key, &entry.value).max(1)
    }
}

#[derive(Clone)]
struct CountEvictions {
    evictions: Arc<AtomicU64>,
}

impl<K, V> Lifecycle<K, V> for CountEvictions {
    // Holds evicted items so they are dropped after the shard lock is released, as quick_cache's
    // default lifecycle does.
    type RequestState = [Option<(K, V)>; 2];

    fn on_evict(&self, state: &mut Self::RequestState, key: K, val: V) {
        self.evictions.fetch_add(1, Ordering::Relaxed);
        if let Some(slot) = state.iter_mut().find(|slot| slot.is_none()) {
            *slot = Some((key, val));
        }
    }
}

/// What a finished load tells the callers that waited for it.
#[derive(Clone)]
enum Settled<V> {
    Loaded(V),
    Stale { value: V, age_ms: i64 },
    // The map of loads cannot name the loader's error type, so the error travels type-erased.
    Failed(Arc<dyn Any + Send + Sync>),
}

enum Role<'a, K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    Hit(V),
    Wait(watch::Receiver<Option<Settled<V>>>),
    Lead(Flight<'a, K, V>),
}

/// The leader's hold on a load. Dropping it unfinished (the caller was cancelled or the loader
/// panicked) removes the load, and its waiters see the channel close and try again.
struct Flight<'a, K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    cache: &'a TtlCache<K, V>,
    key: K,
    tx: watch::Sender<Option<Settled<V>>>,
    generation: u64,
    finished: bool,
}

impl<K, V> Flight<'_, K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Ends the load and returns the leader's outcome. Storing the value, or finding the held one
    /// after a failure, happens under the flights lock, so an invalidation lands wholly before
    /// (nothing stored, nothing served stale) or wholly after.
    fn finish<E>(mut self, loaded: Result<V, E>, ttl: Duration) -> Result<Lookup<V>, E>
    where
        E: Clone + Send + Sync + 'static,
    {
        let cache = self.cache;
        let (outcome, settled) = {
            let mut flights = cache.lock_flights();
            let finished = match loaded {
                Ok(value) => {
                    if cache.generation.load(Ordering::SeqCst) == self.generation {
                        cache
                            .entries
                            .insert(self.key.clone(), cache.entry(value.clone(), ttl));
                    }
                    let lookup = Lookup {
                        value: value.clone(),
                        source: Source::Miss,
                    };
                    (Ok(lookup), Settled::Loaded(value))
                }
                Err(err) => match cache.entries.peek(&self.key) {
                    Some(held) => {
                        let age_ms = cache
                            .clock
                            .now_ms()
                            .saturating_sub(held.stored_at_ms)
                            .max(0);
                        let lookup = Lookup {
                            value: held.value.clone(),
                            source: Source::Stale { age_ms },
                        };
                        let settled = Settled::Stale {
                            value: held.value,
                            age_ms,
                        };
                        (Ok(lookup), settled)
                    }
                    None => (Err(err.clone()), Settled::Failed(Arc::new(err))),
                },
            };
            flights.remove(&self.key);
            finished
        };
        self.finished = true;
        self.tx.send_replace(Some(settled));
        outcome
    }
}

impl<K, V> Drop for Flight<'_, K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn drop(&mut self) {
        // Once finished, the key may already belong to a newer load.
        if !self.finished {
            self.cache.lock_flights().remove(&self.key);
        }
    }
}

impl<K, V> TtlCache<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A cache holding about `capacity` entries.
    pub fn new(name: &'static str, capacity: usize, clock: SharedClock) -> Self {
        let capacity_u64 = u64::try_from(capacity).unwrap_or(u64::MAX);
        Self::build(name, capacity, capacity_u64, |_, _| 1, clock)
    }

    /// A cache holding at most `max_weight_bytes` as measured by `weigher`, for large values.
    ///
    /// `estimated_items` sizes the index. quick_cache splits the budget across shards, so a value
    /// heavier than one shard's share is not kept (it is returned to the caller and counted as an
    /// eviction).
    pub fn with_weigher(
        name: &'static str,
        max_weight_bytes: u64,
        estimated_items: usize,
        weigher: Weigher<K, V>,
        clock: SharedClock,
    ) -> Self {
        Self::build(name, estimated_items, max_weight_bytes, weigher, clock)
    }

    fn build(
        name: &'static str,
        estimated_items: usize,
        max_weight: u64,
        weigh: Weigher<K, V>,
        clock: SharedClock,
    ) -> Self {
        let evictions = Arc::new(AtomicU64::new(0));
        let entries = Cache::with(
            estimated_items.max(1),
            max_weight.max(1),
            EntryWeighter { weigh },
            DefaultHashBuilder::default(),
            CountEvictions {
                evictions: Arc::clone(&evictions),
            },
        );
        Self {
            name,
            entries,
            flights: Mutex::new(HashMap::new()),
            clock,
            generation: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            stale_served: AtomicU64::new(0),
            evictions,
        }
    }

    /// The cache's name, as shown in stats.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The fresh value for `key`, counting a hit or a miss. Expired values are not returned.
    pub fn get(&self, key: &K) -> Option<V> {
        match self.fresh(key, self.clock.now_ms()) {
            Some(value) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(value)
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Stores `value` under `key` until `ttl` from now, replacing any earlier value.
    pub fn insert(&self, key: K, value: V, ttl: Duration) {
        self.entries.insert(key, self.entry(value, ttl));
    }

    /// Drops the value for `key`, so it can be neither hit nor served stale.
    pub fn invalidate(&self, key: &K) {
        let _flights = self.lock_flights();
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.remove(key);
    }

    /// Removes and returns the fresh value for `key`. Of several callers racing for one key,
    /// exactly one gets it (a one-time claim, such as completing a sign-in).
    pub fn take(&self, key: &K) -> Option<V> {
        let _flights = self.lock_flights();
        self.generation.fetch_add(1, Ordering::SeqCst);
        let now = self.clock.now_ms();
        self.entries
            .remove(key)
            .filter(|(_, entry)| entry.is_fresh(now))
            .map(|(_, entry)| entry.value)
    }

    /// Drops every value whose key matches `pred`, e.g. all entries of one user.
    pub fn invalidate_if(&self, pred: impl Fn(&K) -> bool) {
        let _flights = self.lock_flights();
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.retain(|key, _| !pred(key));
    }

    /// Drops every value.
    pub fn clear(&self) {
        let _flights = self.lock_flights();
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.clear();
    }

    /// The fresh value for `key`, or the result of `loader`, stored for `ttl`.
    ///
    /// Concurrent calls for one key make a single loader call; the others wait for it and share
    /// its outcome, including a failure. When the load fails and an earlier value for the key is
    /// still held, that value is returned as [`Source::Stale`] instead of the error. A failure is
    /// not cached: the next call after it loads again. If the loading caller is cancelled or its
    /// loader panics, one of the waiters loads instead.
    ///
    /// The error is cloned for each waiter; wrap it in an `Arc` if it is not `Clone`.
    pub async fn get_or_load<F, Fut, E>(
        &self,
        key: K,
        ttl: Duration,
        loader: F,
    ) -> Result<Lookup<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Clone + Send + Sync + 'static,
    {
        self.lookup(key, ttl, loader, true).await
    }

    /// Like [`get_or_load`](Self::get_or_load) but ignores a fresh value (`?refresh=true`). It still
    /// joins a load already in progress and still falls back to the held value on failure.
    pub async fn reload<F, Fut, E>(&self, key: K, ttl: Duration, loader: F) -> Result<Lookup<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Clone + Send + Sync + 'static,
    {
        self.lookup(key, ttl, loader, false).await
    }

    /// The counters and size right now.
    pub fn stats(&self) -> CacheStats {
        let hits = self.hits.load(Ordering::Relaxed);
        let misses = self.misses.load(Ordering::Relaxed);
        let lookups = hits.saturating_add(misses);
        let hit_rate = if lookups == 0 {
            0.0
        } else {
            hits as f64 / lookups as f64
        };
        CacheStats {
            name: self.name,
            hits,
            misses,
            evictions: self.evictions.load(Ordering::Relaxed),
            stale_served: self.stale_served.load(Ordering::Relaxed),
            entries: u64::try_from(self.entries.len()).unwrap_or(u64::MAX),
            weight: self.entries.weight(),
            capacity: self.entries.capacity(),
            hit_rate,
        }
    }

    async fn lookup<F, Fut, E>(
        &self,
        key: K,
        ttl: Duration,
        loader: F,
        use_fresh: bool,
    ) -> Result<Lookup<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Clone + Send + Sync + 'static,
    {
        loop {
            let now = self.clock.now_ms();
            if let Some(value) = use_fresh.then(|| self.fresh(&key, now)).flatten() {
                return self.count(Ok(Lookup {
                    value,
                    source: Source::Hit,
                }));
            }
            match self.join_or_lead(&key, now, use_fresh) {
                Role::Hit(value) => {
                    return self.count(Ok(Lookup {
                        value,
                        source: Source::Hit,
                    }));
                }
                Role::Wait(mut rx) => {
                    // An error means the leader went away without an outcome: go round and
                    // either join the next load or become its leader.
                    let settled = match rx.wait_for(Option::is_some).await {
                        Ok(settled) => settled.clone(),
                        Err(_) => None,
                    };
                    // `None` after a value is only possible if the caller used two error types
                    // for one key; loading again is the only way to produce an `E`.
                    if let Some(outcome) = settled.and_then(Self::outcome::<E>) {
                        return self.count(outcome);
                    }
                }
                Role::Lead(flight) => {
                    let loaded = loader().await;
                    return self.count(flight.finish(loaded, ttl));
                }
            }
        }
    }

    /// Under the flights lock: joins the load in progress, or finds the value a load that just
    /// finished stored, or registers this caller as the leader.
    fn join_or_lead(&self, key: &K, now: i64, use_fresh: bool) -> Role<'_, K, V> {
        let mut flights = self.lock_flights();
        if let Some(tx) = flights.get(key) {
            return Role::Wait(tx.subscribe());
        }
        if let Some(value) = use_fresh.then(|| self.fresh(key, now)).flatten() {
            return Role::Hit(value);
        }
        let (tx, _rx) = watch::channel(None);
        flights.insert(key.clone(), tx.clone());
        Role::Lead(Flight {
            cache: self,
            key: key.clone(),
            tx,
            generation: self.generation.load(Ordering::SeqCst),
            finished: false,
        })
    }

    fn outcome<E: Clone + 'static>(settled: Settled<V>) -> Option<Result<Lookup<V>, E>> {
        match settled {
            Settled::Loaded(value) => Some(Ok(Lookup {
                value,
                source: Source::Miss,
            })),
            Settled::Stale { value, age_ms } => Some(Ok(Lookup {
                value,
                source: Source::Stale { age_ms },
            })),
            Settled::Failed(err) => err.downcast_ref::<E>().cloned().map(Err),
        }
    }

    /// Counts the outcome of one lookup; a failed lookup is a miss.
    fn count<E>(&self, outcome: Result<Lookup<V>, E>) -> Result<Lookup<V>, E> {
        let source = outcome.as_ref().ok().map(|lookup| lookup.source);
        if source == Some(Source::Hit) {
            self.hits.fetch_add(1, Ordering::Relaxed);
        } else {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(Source::Stale { .. }) = source {
            self.stale_served.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }

    fn fresh(&self, key: &K, now: i64) -> Option<V> {
        self.entries
            .get(key)
            .filter(|entry| entry.is_fresh(now))
            .map(|entry| entry.value)
    }

    fn entry(&self, value: V, ttl: Duration) -> Entry<V> {
        let now = self.clock.now_ms();
        Entry {
            value,
            stored_at_ms: now,
            expires_at_ms: now.saturating_add(ttl_ms(ttl)),
        }
    }

    /// How many callers wait on the load in progress for `key`, or `None` when there is none.
    #[cfg(test)]
    fn waiters(&self, key: &K) -> Option<usize> {
        self.lock_flights()
            .get(key)
            .map(watch::Sender::receiver_count)
    }

    fn lock_flights(&self) -> MutexGuard<'_, HashMap<K, watch::Sender<Option<Settled<V>>>>> {
        // The map stays consistent even if a holder panicked: every change is a single insert or
        // remove.
        self.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<K, V> fmt::Debug for TtlCache<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TtlCache")
            .field("name", &self.name)
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::pin::Pin;
    use std::sync::atomic::AtomicUsize;
    use std::task::Poll;

    use tokio::sync::Notify;

    use super::*;
    use crate::clock::ManualClock;

    const START_MS: i64 = 1_700_000_000_000;
    const TTL: Duration = Duration::from_secs(30);

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Failure(&'static str);

    fn cache_with_clock<K, V>(capacity: usize) -> (TtlCache<K, V>, Arc<ManualClock>)
    where
        K: Eq + Hash + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let clock = Arc::new(ManualClock::new(START_MS));
        (TtlCache::new("test", capacity, clock.clone()), clock)
    }

    fn miss<V>(value: V) -> Lookup<V> {
        Lookup {
            value,
            source: Source::Miss,
        }
    }

    /// Polls `fut` once so it runs up to its first await point.
    async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
        std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
    }

    /// Yields until `key` has `n` waiters; the timeout only guards against a hang.
    async fn until_waiters<K, V>(cache: &TtlCache<K, V>, key: &K, n: usize)
    where
        K: Eq + Hash + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        tokio::time::timeout(Duration::from_secs(10), async {
            while cache.waiters(key) != Some(n) {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("waiters never joined the load");
    }

    #[test]
    fn each_entry_expires_after_its_own_ttl() {
        let (cache, clock) = cache_with_clock::<&str, u32>(10);
        cache.insert("short", 1, Duration::from_secs(10));
        cache.insert("long", 2, Duration::from_secs(60));

        clock.advance(9_999);
        assert_eq!(cache.get(&"short"), Some(1));
        clock.advance(1);
        assert_eq!(cache.get(&"short"), None);
        assert_eq!(cache.get(&"long"), Some(2));

        clock.advance(50_000);
        assert_eq!(cache.get(&"long"), None);
        // Expired entries stay, to be served stale.
        assert_eq!(cache.stats().entries, 2);
    }

    #[test]
    fn counts_hits_and_misses() {
        let (cache, _clock) = cache_with_clock::<u32, u32>(10);
        assert_eq!(cache.get(&1), None);
        cache.insert(1, 10, TTL);
        assert_eq!(cache.get(&1), Some(10));
        assert_eq!(cache.get(&1), Some(10));
        assert_eq!(cache.get(&2), None);

        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses), (2, 2));
        assert!((stats.hit_rate - 0.5).abs() < f64::EPSILON);

        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(json["name"], "test");
        assert_eq!(json["staleServed"], 0);
        assert_eq!(json["hitRate"], 0.5);
    }

    #[tokio::test]
    async fn get_or_load_counts_hit_miss_and_stale() {
        let (cache, clock) = cache_with_clock::<u32, u32>(10);
        let ok = |v| move || async move { Ok::<_, Failure>(v) };
        assert_eq!(cache.get_or_load(1, TTL, ok(1)).await, Ok(miss(1)));
        let hit = cache.get_or_load(1, TTL, ok(2)).await.unwrap();
        assert!(hit.is_hit());
        assert_eq!(hit.value, 1);

        clock.advance(31_000);
        let stale = cache
            .get_or_load(1, TTL, || async { Err(Failure("down")) })
            .await
            .unwrap();
        assert_eq!(stale.stale_age_ms(), Some(31_000));

        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.stale_served), (1, 2, 1));
    }

    #[test]
    fn inserting_past_capacity_evicts_and_counts() {
        let (cache, _clock) = cache_with_clock::<u32, u32>(4);
        for key in 0..10 {
            cache.insert(key, key, TTL);
        }
        let stats = cache.stats();
        assert!(stats.entries <= 4, "{stats:?}");
        assert!(stats.evictions >= 6, "{stats:?}");
        assert_eq!(stats.entries + stats.evictions, 10);
    }

    #[test]
    fn weigher_bounds_the_cache_by_bytes() {
        let clock = Arc::new(ManualClock::new(START_MS));
        let cache: TtlCache<u32, Vec<u8>> =
            TtlCache::with_weigher("images", 1_000, 8, |_, v| v.len() as u64, clock);
        for key in 0..3 {
            cache.insert(key, vec![0; 400], TTL);
        }
        let stats = cache.stats();
        assert_eq!(stats.capacity, 1_000);
        assert!(stats.weight <= 1_000, "{stats:?}");
        assert_eq!(stats.entries, 2);
        assert_eq!(stats.evictions, 1);

        // A value bigger than the whole budget is refused rather than flushing everything.
        cache.insert(9, vec![0; 2_000], TTL);
        assert_eq!(cache.get(&9), None);
        assert_eq!(cache.stats().evictions, 2);
        assert_eq!(cache.stats().entries, 2);
    }

    #[test]
    fn take_gives_the_value_to_one_caller_only() {
        let clock = Arc::new(ManualClock::new(0));
        let cache: TtlCache<u32, u32> = TtlCache::new("t", 8, clock.clone());
        cache.insert(1, 10, Duration::from_secs(5));
        assert_eq!(cache.take(&1), Some(10));
        assert_eq!(cache.take(&1), None);
        cache.insert(2, 20, Duration::from_secs(5));
        clock.advance(5_000);
        assert_eq!(cache.take(&2), None, "expired values are not handed out");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_make_one_loader_call() {
        let (cache, _clock) = cache_with_clock::<&str, u32>(10);
        let cache = Arc::new(cache);
        let calls = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Notify::new());

        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (cache, calls, release) = (cache.clone(), calls.clone(), release.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_load("key", TTL, || async move {
                            calls.fetch_add(1, Ordering::SeqCst);
                            release.notified().await;
                            Ok::<_, Failure>(42)
                        })
                        .await
                })
            })
            .collect();

        until_waiters(&cache, &"key", 49).await;
        release.notify_one();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(miss(42)));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.stats().misses, 50);
        assert_eq!(cache.get(&"key"), Some(42));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_waiters_share_one_failure() {
        let (cache, _clock) = cache_with_clock::<&str, u32>(10);
        let cache = Arc::new(cache);
        let calls = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Notify::new());

        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (cache, calls, release) = (cache.clone(), calls.clone(), release.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_load("key", TTL, || async move {
                            calls.fetch_add(1, Ordering::SeqCst);
                            release.notified().await;
                            Err::<u32, _>(Failure("down"))
                        })
                        .await
                })
            })
            .collect();

        until_waiters(&cache, &"key", 19).await;
        release.notify_one();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Err(Failure("down")));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_expired_entry_is_reloaded_once() {
        let (cache, clock) = cache_with_clock::<&str, u32>(10);
        let cache = Arc::new(cache);
        cache.insert("key", 1, TTL);
        clock.advance(30_000);
        let calls = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Notify::new());

        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (cache, calls, release) = (cache.clone(), calls.clone(), release.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_load("key", TTL, || async move {
                            calls.fetch_add(1, Ordering::SeqCst);
                            release.notified().await;
                            Ok::<_, Failure>(2)
                        })
                        .await
                })
            })
            .collect();

        until_waiters(&cache, &"key", 19).await;
        release.notify_one();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(miss(2)));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn failed_load_serves_the_expired_value_with_its_age() {
        let (cache, clock) = cache_with_clock::<&str, u32>(10);
        cache.insert("status", 7, Duration::from_secs(30));
        clock.advance(45_000);
        assert_eq!(cache.get(&"status"), None);

        let lookup = cache
            .get_or_load("status", TTL, || async { Err(Failure("down")) })
            .await;
        assert_eq!(
            lookup,
            Ok(Lookup {
                value: 7,
                source: Source::Stale { age_ms: 45_000 }
            })
        );
        assert_eq!(cache.stats().stale_served, 1);

        // The stale value is still expired, so the next call tries the upstream again.
        let lookup = cache
            .get_or_load("status", TTL, || async { Ok::<_, Failure>(8) })
            .await;
        assert_eq!(lookup, Ok(miss(8)));
    }

    #[tokio::test]
    async fn failed_load_without_a_value_returns_the_error_uncached() {
        let (cache, _clock) = cache_with_clock::<&str, u32>(10);
        let lookup = cache
            .get_or_load("status", TTL, || async { Err::<u32, _>(Failure("down")) })
            .await;
        assert_eq!(lookup, Err(Failure("down")));
        assert_eq!(cache.stats().misses, 1);

        let lookup = cache
            .get_or_load("status", TTL, || async { Ok::<_, Failure>(1) })
            .await;
        assert_eq!(lookup, Ok(miss(1)));
    }

    #[tokio::test]
    async fn a_cancelled_loader_lets_the_waiter_load() {
        let (cache, _clock) = cache_with_clock::<&str, u32>(10);
        let mut first = Box::pin(cache.get_or_load("key", TTL, || {
            std::future::pending::<Result<u32, Failure>>()
        }));
        assert!(poll_once(&mut first).await.is_pending());
        assert_eq!(cache.waiters(&"key"), Some(0));

        let mut second = Box::pin(cache.get_or_load("key", TTL, || async { Ok::<_, Failure>(5) }));
        assert!(poll_once(&mut second).await.is_pending());
        assert_eq!(cache.waiters(&"key"), Some(1));

        drop(first);
        assert_eq!(cache.waiters(&"key"), None);
        assert_eq!(second.await, Ok(miss(5)));
        assert_eq!(cache.get(&"key"), Some(5));
    }

    #[tokio::test]
    async fn the_next_caller_loads_after_a_cancelled_loader() {
        let (cache, _clock) = cache_with_clock::<&str, u32>(10);
        let mut first = Box::pin(cache.get_or_load("key", TTL, || {
            std::future::pending::<Result<u32, Failure>>()
        }));
        assert!(poll_once(&mut first).await.is_pending());
        drop(first);

        let lookup = cache
            .get_or_load("key", TTL, || async { Ok::<_, Failure>(6) })
            .await;
        assert_eq!(lookup, Ok(miss(6)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_loader_lets_the_waiter_load() {
        let (cache, _clock) = cache_with_clock::<&str, u32>(10);
        let cache = Arc::new(cache);
        let started = Arc::new(Notify::new());
        let release = Arc::new(Notify::new());

        let leader = {
            let (cache, started, release) = (cache.clone(), started.clone(), release.clone());
            tokio::spawn(async move {
                cache
                    .get_or_load("key", TTL, || async move {
                        started.notify_one();
                        release.notified().await;
                        panic!("loader blew up");
                        #[allow(unreachable_code)]
                        Ok::<u32, Failure>(0)
                    })
                    .await
            })
        };
        started.notified().await;

        let mut waiter = Box::pin(cache.get_or_load("key", TTL, || async { Ok::<_, Failure>(9) }));
        assert!(poll_once(&mut waiter).await.is_pending());
        release.notify_one();

        assert!(leader.await.unwrap_err().is_panic());
        assert_eq!(waiter.await, Ok(miss(9)));
    }

    #[tokio::test]
    async fn invalidated_values_are_not_served_stale() {
        let (cache, _clock) = cache_with_clock::<(u32, &str), u32>(10);
        cache.insert((1, "a"), 1, TTL);
        cache.insert((1, "b"), 2, TTL);
        cache.insert((2, "a"), 3, TTL);

        cache.invalidate_if(|(user, _)| *user == 1);
        assert_eq!(cache.get(&(1, "a")), None);
        assert_eq!(cache.get(&(1, "b")), None);
        assert_eq!(cache.get(&(2, "a")), Some(3));

        let lookup = cache
            .get_or_load((1, "a"), TTL, || async { Err::<u32, _>(Failure("down")) })
            .await;
        assert_eq!(lookup, Err(Failure("down")));

        cache.invalidate(&(2, "a"));
        assert_eq!(cache.get(&(2, "a")), None);
        cache.insert((3, "a"), 4, TTL);
        cache.clear();
        assert_eq!(cache.stats().entries, 0);
    }

    #[tokio::test]
    async fn a_load_that_raced_an_invalidation_is_not_stored() {
        let (cache, _clock) = cache_with_clock::<&str, u32>(10);
        let release = Notify::new();
        let mut load = Box::pin(cache.get_or_load("key", TTL, || async {
            release.notified().await;
            Ok::<_, Failure>(1)
        }));
        assert!(poll_once(&mut load).await.is_pending());

        cache.invalidate(&"key");
        release.notify_one();
        // The caller still gets its value; the cache just does not keep it.
        assert_eq!(load.await, Ok(miss(1)));
        assert_eq!(cache.get(&"key"), None);
    }

    #[tokio::test]
    async fn reload_skips_a_fresh_value_but_falls_back_to_it() {
        let (cache, clock) = cache_with_clock::<&str, u32>(10);
        cache.insert("key", 1, TTL);
        let lookup = cache
            .reload("key", TTL, || async { Ok::<_, Failure>(2) })
            .await;
        assert_eq!(lookup, Ok(miss(2)));

        clock.advance(1_000);
        let lookup = cache
            .reload("key", TTL, || async { Err(Failure("down")) })
            .await
            .unwrap();
        assert_eq!((lookup.value, lookup.stale_age_ms()), (2, Some(1_000)));
    }
}
