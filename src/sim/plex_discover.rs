//! A fake plex.tv discover/metadata provider (`discover.provider.plex.tv`, which serves the
//! same paths as `metadata.provider.plex.tv`): each account's watchlist and the online
//! metadata of its items, answering like the real provider as its public clients read it:
//!
//! - `GET /library/sections/watchlist/{filter}` (`pkkid/python-plexapi` `plexapi/myplex.py`
//!   `MyPlexAccount.watchlist`; `seerr-team/seerr` `server/api/plextv.ts` `getWatchlist`):
//!   `{"MediaContainer": {"offset", "size", "totalSize", "identifier", "Metadata": [...]}}`,
//!   paged by `X-Plex-Container-Start` / `X-Plex-Container-Size` as query parameters or headers
//!   (`plexapi/base.py` `fetchItems` sends headers, Seerr query parameters); `Metadata` is
//!   left out when the page is empty, as Seerr's `Metadata ?? []` expects.
//! - `GET /library/metadata/{ratingKey}`: the item with its `Guid[]` (`tmdb://`, `imdb://`,
//!   `tvdb://`); 404 for an item the provider dropped (seerr `getWatchlist` skips those); an
//!   item can be set to come back under `Video` instead of `Metadata` (seerr issue #2948).
//! - A token the fake does not know, or one expired with [`FakePlexDiscover::expire_token`],
//!   answers 401; JSON only when `Accept` asks for it, XML otherwise.
//!
//! Tests and the demo steer it through [`FakePlexDiscover`]: titles, each token's watchlist
//! (add and remove items between checks), expiry, injected failures and latency, and request
//! counts. For the demo, `POST` / `DELETE /demo/watchlist/{name}/{ratingKey}` add and remove
//! an item on the watchlist of the account named `name` ([`FakePlexDiscover::name_account`]),
//! and `GET /demo/titles` lists the titles with their rating keys.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::harness::{self, Effect, SimFault, SimServer, Traffic};
use super::plex::{html_error, wants_json};
use super::plextv::{Params, plex_param};

/// A title the provider knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeItem {
    /// The provider's id (24 hex digits on the real one).
    pub rating_key: String,
    /// `movie` or `show`.
    pub kind: &'static str,
    pub title: String,
    pub year: Option<i32>,
    pub tmdb_id: Option<i64>,
    pub tvdb_id: Option<i64>,
    pub imdb_id: Option<String>,
}

impl FakeItem {
    /// A movie with a `tmdb://` Guid and a rating key derived from it.
    pub fn movie(tmdb_id: i64, title: &str, year: i32) -> Self {
        Self {
            rating_key: format!("5d7768{tmdb_id:018x}"),
            kind: "movie",
            title: title.to_owned(),
            year: Some(year),
            tmdb_id: Some(tmdb_id),
            tvdb_id: None,
            imdb_id: Some(format!("tt{:07}", tmdb_id % 10_000_000)),
        }
    }

    /// A show with `tmdb://` and `tvdb://` Guids.
    pub fn show(tmdb_id: i64, title: &str, year: i32) -> Self {
        Self {
            rating_key: format!("5d9c08{tmdb_id:018x}"),
            kind: "show",
            title: title.to_owned(),
            year: Some(year),
            tmdb_id: Some(tmdb_id),
            tvdb_id: Some(70_000 + tmdb_id),
            imdb_id: None,
        }
    }
}

/// A failure to inject into the next responses (see [`SimServer::fail_next`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and an HTML error page (a 503 is an outage).
    Status(u16),
    /// 200 with a body that is not JSON.
    Garbage,
    /// Wait this long, then answer normally.
    Hang(Duration),
}

impl SimFault for Fault {
    fn effect(self) -> Effect {
        match self {
            Self::Hang(duration) => Effect::Delay(duration),
            Self::Status(code) => Effect::Answer(html_error(harness::status_or_500(code))),
            Self::Garbage => Effect::Answer(
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"MediaContainer": {"size": 3, "Metadata": [{"ratingKey"#,
                )
                    .into_response(),
            ),
        }
    }
}

/// A running fake provider on `127.0.0.1`. Dropping it stops the server. The [`SimServer`] it
/// derefs to has the shared controls: `url`, `fail_next`, `set_latency`, `requests`, `shutdown`.
pub struct FakePlexDiscover {
    server: SimServer<Fault>,
    shared: Arc<Mutex<SimState>>,
}

impl Deref for FakePlexDiscover {
    type Target = SimServer<Fault>;

    fn deref(&self) -> &SimServer<Fault> {
        &self.server
    }
}

impl std::fmt::Debug for FakePlexDiscover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.server.fmt_as("FakePlexDiscover", f)
    }
}

#[derive(Default)]
struct SimState {
    items: HashMap<String, FakeItem>,
    /// Token -> rating keys, newest first (the provider's default order).
    watchlists: HashMap<String, Vec<String>>,
    expired: Vec<String>,
    /// Rating keys whose metadata comes under `Video`.
    as_video: Vec<String>,
    /// Rating keys the metadata endpoint answers 404 for.
    dropped: Vec<String>,
    /// Account name -> token, for the demo's controls.
    names: HashMap<String, String>,
    /// (token, rating key): taken off that watchlist right after its next page is served, as
    /// when its owner removes a title while a check pages through the list.
    remove_after_page: Vec<(String, String)>,
}

impl SimState {
    fn known(&self, token: Option<&str>) -> Option<String> {
        let token = token?;
        if self.expired.iter().any(|t| t == token) {
            return None;
        }
        self.watchlists
            .contains_key(token)
            .then(|| token.to_owned())
    }
}

fn lock(state: &Mutex<SimState>) -> MutexGuard<'_, SimState> {
    harness::lock(state)
}

impl FakePlexDiscover {
    /// Binds `127.0.0.1:0`, starts serving in the background and returns the handle.
    pub async fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Mutex::new(SimState::default()));
        let server = SimServer::start("fake Plex discover provider", |traffic| {
            router(shared.clone(), traffic)
        })
        .await?;
        Ok(Self { server, shared })
    }

    /// Makes `token` a known account (with an empty watchlist if it had none).
    pub fn add_account(&self, token: &str) {
        lock(&self.shared)
            .watchlists
            .entry(token.to_owned())
            .or_default();
    }

    /// Gives the account of `token` a name the demo controls use.
    pub fn name_account(&self, token: &str, name: &str) {
        let mut state = lock(&self.shared);
        state.watchlists.entry(token.to_owned()).or_default();
        state.names.insert(name.to_owned(), token.to_owned());
    }

    /// The token of the account named `name`.
    pub fn token_named(&self, name: &str) -> Option<String> {
        lock(&self.shared).names.get(name).cloned()
    }

    /// Adds (or replaces, by rating key) a title the provider knows.
    pub fn add_item(&self, item: FakeItem) {
        lock(&self.shared)
            .items
            .insert(item.rating_key.clone(), item);
    }

    /// Puts the title `rating_key` at the top of `token`'s watchlist (the account becomes known).
    pub fn watchlist_add(&self, token: &str, rating_key: &str) {
        let mut state = lock(&self.shared);
        let list = state.watchlists.entry(token.to_owned()).or_default();
        list.retain(|k| k != rating_key);
        list.insert(0, rating_key.to_owned());
    }

    /// Takes `rating_key` off `token`'s watchlist.
    pub fn watchlist_remove(&self, token: &str, rating_key: &str) {
        if let Some(list) = lock(&self.shared).watchlists.get_mut(token) {
            list.retain(|k| k != rating_key);
        }
    }

    /// Takes `rating_key` off `token`'s watchlist right after the next page of it is served.
    pub fn remove_after_next_page(&self, token: &str, rating_key: &str) {
        lock(&self.shared)
            .remove_after_page
            .push((token.to_owned(), rating_key.to_owned()));
    }

    /// The rating keys on `token`'s watchlist, newest first.
    pub fn watchlist(&self, token: &str) -> Vec<String> {
        lock(&self.shared)
            .watchlists
            .get(token)
            .cloned()
            .unwrap_or_default()
    }

    /// Expires `token`: every call with it answers 401 from now on.
    pub fn expire_token(&self, token: &str) {
        lock(&self.shared).expired.push(token.to_owned());
    }

    /// Makes the metadata of `rating_key` come under `MediaContainer.Video`.
    pub fn answer_as_video(&self, rating_key: &str) {
        lock(&self.shared).as_video.push(rating_key.to_owned());
    }

    /// Makes the metadata endpoint answer 404 for `rating_key` (the provider dropped it).
    pub fn drop_metadata(&self, rating_key: &str) {
        lock(&self.shared).dropped.push(rating_key.to_owned());
    }
}

fn router(shared: Arc<Mutex<SimState>>, traffic: Arc<Traffic<Fault>>) -> Router {
    Router::new()
        .route("/library/sections/watchlist/{filter}", get(watchlist))
        .route("/library/metadata/{rating_key}", get(metadata))
        .route(
            "/demo/watchlist/{name}/{rating_key}",
            axum::routing::post(demo_add).delete(demo_remove),
        )
        .route("/demo/titles", get(demo_titles))
        .fallback(|| async { html_error(StatusCode::NOT_FOUND) })
        .layer(middleware::from_fn_with_state(
            traffic,
            harness::observe::<Fault>,
        ))
        .with_state(shared)
}

/// JSON when asked for, else (as the provider does) XML, which a JSON client cannot read.
fn reply(headers: &HeaderMap, body: Value) -> Response {
    if wants_json(headers) {
        (StatusCode::OK, axum::Json(body)).into_response()
    } else {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/xml")],
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MediaContainer size=\"0\"/>\n",
        )
            .into_response()
    }
}

fn unauthorized() -> Response {
    html_error(StatusCode::UNAUTHORIZED)
}

fn guid_of(item: &FakeItem) -> String {
    format!("plex://{}/{}", item.kind, item.rating_key)
}

/// An item as the watchlist lists it (no `Guid[]` there: clients read it from the metadata).
fn list_json(item: &FakeItem) -> Value {
    json!({
        "ratingKey": item.rating_key,
        "key": format!("/library/metadata/{}", item.rating_key),
        "guid": guid_of(item),
        "type": item.kind,
        "title": item.title,
        "year": item.year,
        "publicPagesURL": format!("https://watch.plex.tv/{}/{}", item.kind, item.rating_key),
        "thumb": format!("https://metadata-static.plex.tv/{}/poster.jpg", item.rating_key),
    })
}

async fn watchlist(
    State(shared): State<Arc<Mutex<SimState>>>,
    Path(filter): Path<String>,
    headers: HeaderMap,
    query: Params,
) -> Response {
    let token = plex_param(&headers, &query, "X-Plex-Token");
    let mut state = lock(&shared);
    let Some(token) = state.known(token) else {
        return unauthorized();
    };
    if !matches!(filter.as_str(), "all" | "available" | "released") {
        return html_error(StatusCode::NOT_FOUND);
    }
    let number = |name: &str, default: usize| {
        plex_param(&headers, &query, name)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(default)
    };
    let start = number("X-Plex-Container-Start", 0);
    // The provider's own page size when none is asked for.
    let size = number("X-Plex-Container-Size", 20).min(100);
    let keys = state.watchlists.get(&token).cloned().unwrap_or_default();
    let items: Vec<Value> = keys
        .iter()
        .filter_map(|k| state.items.get(k))
        .skip(start)
        .take(size)
        .map(list_json)
        .collect();
    let total = keys.iter().filter(|k| state.items.contains_key(*k)).count();
    let mut container = json!({
        "librarySectionID": "watchlist",
        "librarySectionTitle": "Watchlist",
        "offset": start,
        "size": items.len(),
        "totalSize": total,
        "identifier": "tv.plex.provider.discover",
    });
    if !items.is_empty() {
        container["Metadata"] = Value::Array(items);
    }
    let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut state.remove_after_page)
        .into_iter()
        .partition(|(t, _)| *t == token);
    state.remove_after_page = later;
    if let Some(list) = state.watchlists.get_mut(&token) {
        list.retain(|k| !now.iter().any(|(_, gone)| gone == k));
    }
    reply(&headers, json!({ "MediaContainer": container }))
}

async fn metadata(
    State(shared): State<Arc<Mutex<SimState>>>,
    Path(rating_key): Path<String>,
    headers: HeaderMap,
    query: Params,
) -> Response {
    let token = plex_param(&headers, &query, "X-Plex-Token");
    let state = lock(&shared);
    if state.known(token).is_none() {
        return unauthorized();
    }
    if state.dropped.contains(&rating_key) {
        return html_error(StatusCode::NOT_FOUND);
    }
    let Some(item) = state.items.get(&rating_key) else {
        return html_error(StatusCode::NOT_FOUND);
    };
    let mut guids = Vec::new();
    if let Some(imdb) = &item.imdb_id {
        guids.push(json!({"id": format!("imdb://{imdb}")}));
    }
    if let Some(tmdb) = item.tmdb_id {
        guids.push(json!({"id": format!("tmdb://{tmdb}")}));
    }
    if let Some(tvdb) = item.tvdb_id {
        guids.push(json!({"id": format!("tvdb://{tvdb}")}));
    }
    let mut one = list_json(item);
    one["Guid"] = Value::Array(guids);
    one["summary"] = json!(format!("{} (simulated).", item.title));
    let under = if state.as_video.contains(&rating_key) {
        "Video"
    } else {
        "Metadata"
    };
    reply(
        &headers,
        json!({
            "MediaContainer": {
                "offset": 0,
                "size": 1,
                "totalSize": 1,
                "identifier": "tv.plex.provider.metadata",
                under: [one],
            }
        }),
    )
}

/// `POST /demo/watchlist/{name}/{ratingKey}`: 204, or 404 for an unknown name or title.
async fn demo_add(
    State(shared): State<Arc<Mutex<SimState>>>,
    Path((name, rating_key)): Path<(String, String)>,
) -> StatusCode {
    let mut state = lock(&shared);
    let Some(token) = state.names.get(&name).cloned() else {
        return StatusCode::NOT_FOUND;
    };
    if !state.items.contains_key(&rating_key) {
        return StatusCode::NOT_FOUND;
    }
    let list = state.watchlists.entry(token).or_default();
    list.retain(|k| *k != rating_key);
    list.insert(0, rating_key);
    StatusCode::NO_CONTENT
}

/// `DELETE /demo/watchlist/{name}/{ratingKey}`: 204, or 404 for an unknown name.
async fn demo_remove(
    State(shared): State<Arc<Mutex<SimState>>>,
    Path((name, rating_key)): Path<(String, String)>,
) -> StatusCode {
    let mut state = lock(&shared);
    let Some(token) = state.names.get(&name).cloned() else {
        return StatusCode::NOT_FOUND;
    };
    if let Some(list) = state.watchlists.get_mut(&token) {
        list.retain(|k| *k != rating_key);
    }
    StatusCode::NO_CONTENT
}

/// `GET /demo/titles`: every title with its rating key, and each named account's watchlist.
async fn demo_titles(State(shared): State<Arc<Mutex<SimState>>>) -> Response {
    let state = lock(&shared);
    let mut titles: Vec<Value> = state
        .items
        .values()
        .map(|i| json!({"ratingKey": i.rating_key, "type": i.kind, "title": i.title, "tmdbId": i.tmdb_id}))
        .collect();
    titles.sort_by_key(|t| t["title"].as_str().unwrap_or_default().to_owned());
    let watchlists: serde_json::Map<String, Value> = state
        .names
        .iter()
        .map(|(name, token)| {
            let keys = state.watchlists.get(token).cloned().unwrap_or_default();
            (name.clone(), json!(keys))
        })
        .collect();
    axum::Json(json!({"titles": titles, "watchlists": watchlists})).into_response()
}
