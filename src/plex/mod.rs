//! Browsing the Plex library (SPEC section 6, Plex; section 7 caching): the server, its
//! libraries, a library's items page by page, search, recently added, collections, and the
//! image proxy. Every call to PMS uses the owner's server token from the Plex service settings,
//! held server-side: no answer carries the token or PMS's address, and images are proxied.
//!
//! Answers are cached per user and arguments (TTLs in [`cache`]); a cached answer says
//! `X-Cache: HIT`. When PMS fails and an expired answer is held, that answer is served with
//! `meta.stale = true` and its age instead of the error. [`recently_added_for`] is the door for
//! other pages (the dashboard).

pub mod cache;
mod image;
pub mod metadata;
pub mod view;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};

pub use cache::PlexCaches;
pub use view::{CollectionDetail, CollectionView, Library, PlexItem, ServerView};

use crate::auth::CurrentUser;
use crate::cache::{Lookup, Source, TtlCache};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::integrations::plex::{self as client, PlexServer};
use crate::response::ApiResponse;
use crate::routes::{Access, Routes};
use crate::state::AppState;

/// Items per page of a library unless `?limit=` says otherwise.
pub const DEFAULT_LIMIT: u64 = 20;
/// The largest page of a library's items.
pub const MAX_LIMIT: u64 = 100;
/// The most recently added items one call may ask for.
pub const MAX_RECENT: u32 = 50;
/// The most search results one call may ask for.
pub const MAX_SEARCH: u32 = 50;
/// The longest search text, in characters.
pub const MAX_QUERY_CHARS: usize = 100;

/// The Plex routes (under `/api/v1`).
pub fn routes() -> Routes {
    Routes::new()
        .add(Method::GET, "/plex/server", Access::User, get_server)
        .add(Method::GET, "/plex/libraries", Access::User, list_libraries)
        .add(
            Method::GET,
            "/plex/libraries/{key}/items",
            Access::User,
            list_library_items,
        )
        .add(Method::GET, "/plex/search", Access::User, search)
        .add(
            Method::GET,
            "/plex/recently-added",
            Access::User,
            list_recently_added,
        )
        .add(
            Method::GET,
            "/plex/libraries/{key}/collections",
            Access::User,
            list_collections,
        )
        .add(
            Method::GET,
            "/plex/collections/{rating_key}",
            Access::User,
            get_collection,
        )
        .add(Method::GET, "/plex/image", Access::User, image::get_image)
}

/// The Plex client, or `SERVICE_NOT_CONFIGURED` when Plex has no URL or no server token (or is
/// disabled).
pub async fn server(state: &AppState) -> AppResult<PlexServer> {
    let clients = crate::services::clients(state).await?;
    clients
        .plex
        .clone()
        .filter(PlexServer::has_token)
        .ok_or(AppError::Api {
            code: ErrorCode::ServiceNotConfigured,
            service: Some(client::SERVICE_NAME),
            details: None,
            retry_after: None,
        })
}

/// The newest items of all libraries (at most [`MAX_RECENT`]), newest first, for `user_id`,
/// cached 120 s and served stale when Plex fails. For pages that show a few (the dashboard asks
/// for 10). `SERVICE_NOT_CONFIGURED` without Plex; an upstream error when Plex fails and
/// nothing is held.
pub async fn recently_added_for(
    state: &AppState,
    user_id: &str,
    limit: u32,
) -> AppResult<Arc<Vec<PlexItem>>> {
    Ok(recently_added(state, user_id, limit).await?.value)
}

/// How many recently added items the home page shows.
pub const DASHBOARD_RECENT: u32 = 10;

/// The `recentlyAdded` of `GET /dashboard` as JSON bytes: up to [`DASHBOARD_RECENT`] items,
/// through the same cache as [`recently_added_for`], and `[]` when Plex is not set up or fails
/// with nothing held (the home page must not fail because of Plex).
pub async fn recently_added_json(state: &AppState, user_id: &str) -> axum::body::Bytes {
    const EMPTY: axum::body::Bytes = axum::body::Bytes::from_static(b"[]");
    match recently_added_for(state, user_id, DASHBOARD_RECENT).await {
        Ok(items) => serde_json::to_vec(&*items).map_or(EMPTY, axum::body::Bytes::from),
        Err(e) => {
            if e.code() != ErrorCode::ServiceNotConfigured {
                tracing::debug!(error = %e, "no recently added items for the home page");
            }
            EMPTY
        }
    }
}

async fn recently_added(
    state: &AppState,
    user_id: &str,
    limit: u32,
) -> AppResult<Lookup<Arc<Vec<PlexItem>>>> {
    let limit = limit.clamp(1, MAX_RECENT);
    let plex = server(state).await?;
    cached(
        &state.plex_caches().recent,
        (user_id.to_owned(), limit),
        cache::BROWSE_TTL,
        || async move { Ok(view::items(plex.recently_added(limit).await?)) },
    )
    .await
}

/// `cache.get_or_load` for values kept in an `Arc`.
async fn cached<K, V, F, Fut>(
    cache: &TtlCache<K, Arc<V>>,
    key: K,
    ttl: Duration,
    load: F,
) -> AppResult<Lookup<Arc<V>>>
where
    K: Eq + std::hash::Hash + Clone + Send + Sync + 'static,
    V: Send + Sync + 'static,
    F: FnOnce() -> Fut,
    Fut: Future<Output = AppResult<V>>,
{
    cache
        .get_or_load(key, ttl, || async move { load().await.map(Arc::new) })
        .await
}

/// The envelope for `data`, loaded from `source`: `X-Cache`, and `stale`/`staleAgeSeconds` in
/// `meta` when the value is an old one served because Plex failed.
fn answer<T: Serialize + ?Sized>(data: &T, source: Source, meta: Map<String, Value>) -> Response {
    let mut meta = meta;
    if let Source::Stale { age_ms } = source {
        meta.insert("stale".into(), json!(true));
        meta.insert("staleAgeSeconds".into(), json!(age_ms / 1000));
    }
    let mut response = if meta.is_empty() {
        ApiResponse::ok(&data).into_response()
    } else {
        ApiResponse::with_meta(&data, &meta).into_response()
    };
    let hit = if source == Source::Hit { "HIT" } else { "MISS" };
    response
        .headers_mut()
        .insert("x-cache", HeaderValue::from_static(hit));
    response
}

/// [`answer`] for a whole cached value.
fn answer_lookup<T: Serialize>(lookup: &Lookup<Arc<T>>) -> Response {
    answer(&*lookup.value, lookup.source, Map::new())
}

/// The query parameters, as sent.
type Params = Query<HashMap<String, String>>;

/// An optional whole-number parameter within `range`.
fn number_param<T>(
    params: &HashMap<String, String>,
    name: &'static str,
    range: std::ops::RangeInclusive<T>,
    default: T,
) -> AppResult<T>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let Some(text) = params.get(name) else {
        return Ok(default);
    };
    match text.trim().parse::<T>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(AppError::validation([(
            name,
            format!(
                "must be a whole number from {} to {}",
                range.start(),
                range.end()
            ),
        )])),
    }
}

/// A section key or rating key from the path.
fn key_param(name: &'static str, key: &str) -> AppResult<String> {
    if client::is_plex_key(key) {
        Ok(key.to_owned())
    } else {
        Err(AppError::validation([(
            name,
            "must be a Plex key (digits)",
        )]))
    }
}

/// `GET /plex/server`: `{name, machineIdentifier, version, platform}`.
pub async fn get_server(State(state): State<AppState>, user: CurrentUser) -> AppResult<Response> {
    let plex = server(&state).await?;
    let lookup = cached(
        &state.plex_caches().server,
        user.user_id().to_owned(),
        cache::SERVER_TTL,
        || async move { Ok(ServerView::from(plex.server_info().await?)) },
    )
    .await?;
    Ok(answer_lookup(&lookup))
}

/// `GET /plex/libraries`: `[{key, type, title, itemCount}]`, counted with one cheap call per
/// library (`X-Plex-Container-Size: 0`); a library whose count fails shows `null`.
pub async fn list_libraries(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<Response> {
    let plex = server(&state).await?;
    let lookup = cached(
        &state.plex_caches().libraries,
        user.user_id().to_owned(),
        cache::LIBRARIES_TTL,
        || async move {
            let sections = plex.sections().await?;
            let counts = futures_util::future::join_all(
                sections.iter().map(|s| plex.section_items(&s.key, 0, 0)),
            )
            .await;
            Ok(sections
                .into_iter()
                .zip(counts)
                .map(|(section, count)| Library::new(section, count.ok().map(|page| page.total)))
                .collect::<Vec<_>>())
        },
    )
    .await?;
    Ok(answer_lookup(&lookup))
}

/// `GET /plex/libraries/{key}/items?offset&limit`: a page of the library, meta
/// `{offset, limit, total}`. Plex pages by offset, so this list does too.
pub async fn list_library_items(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(key): Path<String>,
    Query(params): Params,
) -> AppResult<Response> {
    let key = key_param("key", &key)?;
    let offset = number_param(&params, "offset", 0..=10_000_000, 0)?;
    let limit = number_param(&params, "limit", 1..=MAX_LIMIT, DEFAULT_LIMIT)?;
    let plex = server(&state).await?;
    let cache_key = (user.user_id().to_owned(), key.clone(), offset, limit);
    let lookup = cached(
        &state.plex_caches().items,
        cache_key,
        cache::BROWSE_TTL,
        || async move {
            let page = plex.section_items(&key, offset, limit).await?;
            Ok(view::ItemsPageView {
                items: view::items(page.items),
                offset: page.offset,
                total: page.total,
            })
        },
    )
    .await?;
    let page = &lookup.value;
    let meta = json!({"offset": page.offset, "limit": limit, "total": page.total});
    let meta = meta.as_object().cloned().unwrap_or_default();
    Ok(answer(&page.items, lookup.source, meta))
}

/// `GET /plex/search?query=&limit=`: items of every library matching `query` (1-100
/// characters).
pub async fn search(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(params): Params,
) -> AppResult<Response> {
    let query = params.get("query").map(|q| q.trim()).unwrap_or_default();
    let chars = query.chars().count();
    if chars == 0 || chars > MAX_QUERY_CHARS || query.chars().any(char::is_control) {
        return Err(AppError::validation([(
            "query",
            "must be 1 to 100 characters",
        )]));
    }
    let limit = number_param(&params, "limit", 1..=MAX_SEARCH, 20)?;
    let plex = server(&state).await?;
    let query = query.to_owned();
    let cache_key = (user.user_id().to_owned(), query.to_lowercase(), limit);
    let lookup = cached(
        &state.plex_caches().search,
        cache_key,
        cache::BROWSE_TTL,
        || async move { Ok(view::items(plex.search(&query, limit).await?)) },
    )
    .await?;
    Ok(answer_lookup(&lookup))
}

/// `GET /plex/recently-added?limit=` (1-50, default 20): the newest items, newest first.
pub async fn list_recently_added(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(params): Params,
) -> AppResult<Response> {
    let limit = number_param(&params, "limit", 1..=MAX_RECENT, 20)?;
    let lookup = recently_added(&state, user.user_id(), limit).await?;
    Ok(answer_lookup(&lookup))
}

/// `GET /plex/libraries/{key}/collections`: the library's collections.
pub async fn list_collections(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(key): Path<String>,
) -> AppResult<Response> {
    let key = key_param("key", &key)?;
    let plex = server(&state).await?;
    let lookup = cached(
        &state.plex_caches().collections,
        (user.user_id().to_owned(), key.clone()),
        cache::BROWSE_TTL,
        || async move {
            let list = plex.collections(&key).await?;
            Ok(list
                .into_iter()
                .map(CollectionView::from)
                .collect::<Vec<_>>())
        },
    )
    .await?;
    Ok(answer_lookup(&lookup))
}

/// `GET /plex/collections/{ratingKey}`: the collection and its items.
pub async fn get_collection(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(rating_key): Path<String>,
) -> AppResult<Response> {
    let rating_key = key_param("ratingKey", &rating_key)?;
    let plex = server(&state).await?;
    let lookup = cached(
        &state.plex_caches().collection,
        (user.user_id().to_owned(), rating_key.clone()),
        cache::BROWSE_TTL,
        || async move {
            let (collection, items) = futures_util::future::try_join(
                plex.collection(&rating_key),
                plex.collection_items(&rating_key),
            )
            .await?;
            Ok(CollectionDetail {
                collection: CollectionView::from(collection),
                items: view::items(items),
            })
        },
    )
    .await?;
    Ok(answer_lookup(&lookup))
}
