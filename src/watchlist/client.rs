//! The client of plex.tv's discover/metadata provider: a user's watchlist and the online
//! metadata that maps a watchlist item to its TMDB id.
//!
//! UPSTREAMS (read from the upstreams' own code; UPSTREAMS.md section 1 only lists the
//! watchlist path):
//! - `pkkid/python-plexapi` `plexapi/myplex.py` @ a8d051f: `MyPlexAccount.watchlist` reads
//!   `{METADATA}/library/sections/watchlist/{filter}` (`METADATA` =
//!   `https://metadata.provider.plex.tv`, `filter` `all` | `available` | `released`, with
//!   `includeCollections=1&includeExternalMedia=1`), paged by `plexapi/base.py` `fetchItems`
//!   with `X-Plex-Container-Start` / `X-Plex-Container-Size` (headers there) until
//!   `totalSize` (or `size`) is reached; `MyPlexAccount.query` raises `Unauthorized` for 401
//!   and for 422 whose body says "Invalid token".
//! - `seerr-team/seerr` `server/api/plextv.ts` @ f74306e `getWatchlist`: the same path on
//!   `https://discover.provider.plex.tv` (both hosts serve it), paging as query parameters
//!   (`X-Plex-Container-Start`, `X-Plex-Container-Size`, 20 per page), headers `X-Plex-Token`
//!   and `Accept: application/json`; the answer is `{"MediaContainer": {"totalSize": n,
//!   "Metadata": [{"ratingKey", "type", "title", ...}]}}` (`Metadata` absent when empty). Each
//!   item is then read from `/library/metadata/{ratingKey}` on the same host, whose
//!   `MediaContainer.Metadata[0].Guid[]` holds `{"id": "tmdb://603"}`, `imdb://…`, `tvdb://…`;
//!   a 404 there means the item is gone (skipped), an item without a `tmdb://` Guid is dropped.
//!   The provider sometimes puts the item under `MediaContainer.Video` instead of `Metadata`
//!   (seerr-team/seerr issue #2948, fixed in PR #2992 by reading `Metadata?.[0] ?? Video?.[0]`);
//!   both are read here, and `Directory` (the XML name of a show) too.
//!   `server/lib/watchlistsync.ts` requests shows with `seasons: 'all'`.
//! - An expired or revoked token answers 401 (or 422 "Invalid token", as plex.tv does): that is
//!   [`TokenOutcome::Rejected`]. Anything else that fails (5xx, timeout, refused connection) is
//!   an outage, for the caller to retry later.
//!
//! The token goes in the `X-Plex-Token` header only, never in a URL. A `ratingKey` goes into a
//! path, so only plain ids (letters and digits) are used; anything else is skipped.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::clock::SharedClock;
use crate::error::AppResult;
use crate::integrations::plextv::{PRODUCT, TokenOutcome, with_token};
use crate::integrations::upstream::{Method, Request, Upstream, UpstreamOptions, read_json};

/// The display name in client messages and logs.
pub const SERVICE_NAME: &str = "Plex discover";
/// Items asked for per watchlist page.
pub const PAGE_SIZE: u32 = 50;
/// The whole-call deadline of one provider call.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Provider calls in flight at once, for every user together.
const MAX_IN_FLIGHT: usize = 4;

/// What a watchlist item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    Movie,
    Show,
    /// Anything else (collections, episodes): not requestable.
    Other,
}

impl ItemKind {
    fn parse(text: Option<&str>) -> Self {
        match text {
            Some("movie") => Self::Movie,
            Some("show") => Self::Show,
            _ => Self::Other,
        }
    }
}

/// One item of a watchlist page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchlistEntry {
    pub rating_key: String,
    pub title: String,
    pub kind: ItemKind,
}

/// One page of a watchlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchlistPage {
    /// Items in the whole watchlist.
    pub total_size: u32,
    /// Every item the page held, usable or not (paging counts them all).
    pub listed: u32,
    /// The page's items with a usable `ratingKey`.
    pub items: Vec<WatchlistEntry>,
}

/// An item's online metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineMetadata {
    pub title: String,
    pub kind: ItemKind,
    /// From the `tmdb://` Guid.
    pub tmdb_id: Option<i64>,
}

/// A client for the provider. Cheap to clone.
#[derive(Clone)]
pub struct PlexDiscover {
    upstream: Upstream,
    base: String,
    client_id: String,
}

impl fmt::Debug for PlexDiscover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlexDiscover")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Whether `key` can go into a path as it is.
pub fn usable_rating_key(key: &str) -> bool {
    (1..=64).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl PlexDiscover {
    /// A client for the provider at `base` (config `plex.discover_url`), sending this install's
    /// `X-Plex-Client-Identifier`.
    pub fn new(base: &str, client_id: &str, clock: SharedClock) -> Self {
        Self::with_timeout(base, client_id, clock, TIMEOUT)
    }

    /// [`PlexDiscover::new`] with another whole-call deadline.
    pub fn with_timeout(
        base: &str,
        client_id: &str,
        clock: SharedClock,
        timeout: Duration,
    ) -> Self {
        let options = UpstreamOptions {
            timeout,
            max_in_flight: MAX_IN_FLIGHT,
        };
        Self {
            upstream: Upstream::with_clock(SERVICE_NAME, options, clock),
            base: base.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
        }
    }

    /// The gateway the calls go through (its breaker opens while the provider is down).
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    fn request(&self, path_and_query: &str, token: &str) -> Request {
        Request::new(Method::Get, format!("{}{path_and_query}", self.base))
            // Without it the provider answers XML.
            .header("Accept", "application/json")
            .header("X-Plex-Token", token.to_owned())
            .header("X-Plex-Client-Identifier", self.client_id.clone())
            .header("X-Plex-Product", PRODUCT)
            .header("X-Plex-Version", crate::VERSION)
    }

    /// One page of the watchlist of the account behind `token`:
    /// `GET /library/sections/watchlist/all?X-Plex-Container-Start=…&X-Plex-Container-Size=…`.
    pub async fn watchlist_page(
        &self,
        token: &str,
        start: u32,
        size: u32,
    ) -> AppResult<TokenOutcome<WatchlistPage>> {
        let request = self.request(
            &format!(
                "/library/sections/watchlist/all?includeCollections=1&includeExternalMedia=1\
                 &X-Plex-Container-Start={start}&X-Plex-Container-Size={size}"
            ),
            token,
        );
        self.upstream
            .send(request, |response| {
                with_token(response, |r| {
                    let wire: Container<ListItem> = read_json(r)?;
                    let container = wire.media_container;
                    let (total_size, size) = (container.total_size, container.size);
                    let metadata = container.items();
                    let listed = u32::try_from(metadata.len()).unwrap_or(u32::MAX);
                    let total_size = total_size.or(size).unwrap_or(listed);
                    let items = metadata
                        .into_iter()
                        .filter_map(|item| {
                            let rating_key = item.rating_key.filter(|k| usable_rating_key(k))?;
                            Some(WatchlistEntry {
                                title: item.title.unwrap_or_else(|| rating_key.clone()),
                                kind: ItemKind::parse(item.kind.as_deref()),
                                rating_key,
                            })
                        })
                        .collect();
                    Ok(WatchlistPage {
                        total_size,
                        listed,
                        items,
                    })
                })
            })
            .await
    }

    /// An item's metadata (`GET /library/metadata/{ratingKey}`); `None` when the provider no
    /// longer knows it (404) or `rating_key` is not a plain id.
    pub async fn metadata(
        &self,
        token: &str,
        rating_key: &str,
    ) -> AppResult<TokenOutcome<Option<OnlineMetadata>>> {
        if !usable_rating_key(rating_key) {
            return Ok(TokenOutcome::Accepted(None));
        }
        let request = self.request(&format!("/library/metadata/{rating_key}"), token);
        self.upstream
            .send(request, |response| {
                if response.status().as_u16() == 404 {
                    return Ok(TokenOutcome::Accepted(None));
                }
                with_token(response, |r| {
                    let wire: Container<MetadataItem> = read_json(r)?;
                    Ok(wire
                        .media_container
                        .items()
                        .into_iter()
                        .next()
                        .map(|item| OnlineMetadata {
                            title: item.title.unwrap_or_default(),
                            kind: ItemKind::parse(item.kind.as_deref()),
                            tmdb_id: tmdb_id(&item.guid),
                        }))
                })
            })
            .await
    }
}

/// The id in the first `tmdb://` Guid, if it is a positive number.
fn tmdb_id(guids: &[GuidWire]) -> Option<i64> {
    guids
        .iter()
        .filter_map(|g| g.id.as_deref()?.strip_prefix("tmdb://"))
        .find_map(|id| id.parse::<i64>().ok().filter(|n| *n > 0))
}

#[derive(Debug, Deserialize)]
struct Container<T> {
    #[serde(rename = "MediaContainer")]
    media_container: ContainerBody<T>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerBody<T> {
    #[serde(default)]
    total_size: Option<u32>,
    #[serde(default)]
    size: Option<u32>,
    #[serde(rename = "Metadata", default = "Vec::new")]
    metadata: Vec<T>,
    #[serde(rename = "Video", default = "Vec::new")]
    video: Vec<T>,
    #[serde(rename = "Directory", default = "Vec::new")]
    directory: Vec<T>,
}

impl<T> ContainerBody<T> {
    /// The items, wherever the provider put them.
    fn items(self) -> Vec<T> {
        let mut items = self.metadata;
        items.extend(self.video);
        items.extend(self.directory);
        items
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListItem {
    #[serde(default)]
    rating_key: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MetadataItem {
    #[serde(default)]
    title: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default, rename = "Guid")]
    guid: Vec<GuidWire>,
}

#[derive(Debug, Deserialize)]
struct GuidWire {
    #[serde(default)]
    id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tmdb_guid_is_read_and_odd_keys_are_not_used() {
        let guid = |s: &str| GuidWire {
            id: Some(s.to_owned()),
        };
        assert_eq!(
            tmdb_id(&[guid("imdb://tt0133093"), guid("tmdb://603")]),
            Some(603)
        );
        assert_eq!(tmdb_id(&[guid("tvdb://81189")]), None);
        assert_eq!(tmdb_id(&[guid("tmdb://x"), guid("tmdb://-3")]), None);
        assert!(usable_rating_key("5d776825880197001ec967c6"));
        assert!(!usable_rating_key("../../users"));
        assert!(!usable_rating_key(""));
    }
}
