//! What the Plex API shows (SPEC section 6, Plex): the client's types turned into the
//! camelCase shapes browsers get. Images become `/api/v1/plex/image?path=...` URLs, so no PMS
//! address or token ever reaches a page.

use serde::Serialize;

use crate::integrations::overseerr::encode_query_value;
use crate::integrations::plex::{PlexMetadata, PlexSection, PlexServerInfo, is_image_path};
use crate::time::rfc3339;

/// `GET /plex/server`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ServerView {
    pub name: String,
    pub machine_identifier: String,
    pub version: String,
    pub platform: Option<String>,
}

/// One entry of `GET /plex/libraries`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Library {
    pub key: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    /// `null` when PMS could not count it.
    pub item_count: Option<u64>,
}

/// `PlexItem` of SPEC section 6.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PlexItem {
    pub rating_key: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub year: Option<i64>,
    pub summary: Option<String>,
    /// A `/api/v1/plex/image?path=...` URL.
    pub thumb: Option<String>,
    /// Milliseconds.
    pub duration: Option<i64>,
    pub added_at: Option<String>,
    pub view_count: Option<i64>,
}

/// A page of a library's items and where it sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemsPageView {
    pub items: Vec<PlexItem>,
    pub offset: u64,
    pub total: u64,
}

/// A collection in a library's list.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CollectionView {
    pub rating_key: String,
    pub title: String,
    /// The type of its items (`movie`, `show`).
    pub subtype: Option<String>,
    pub summary: Option<String>,
    pub thumb: Option<String>,
    pub child_count: Option<i64>,
    pub added_at: Option<String>,
}

/// `GET /plex/collections/{ratingKey}`: the collection and its items.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CollectionDetail {
    #[serde(flatten)]
    pub collection: CollectionView,
    pub items: Vec<PlexItem>,
}

/// The portal's URL for a PMS image path; `None` for a path the image proxy would refuse (see
/// [`is_image_path`]), so no page links to an image that cannot load.
pub fn image_url(path: &str) -> Option<String> {
    is_image_path(path).then(|| format!("/api/v1/plex/image?path={}", encode_query_value(path)))
}

/// Unix seconds as RFC 3339.
fn seconds(at: Option<i64>) -> Option<String> {
    at.map(|s| rfc3339(s.saturating_mul(1000)))
}

impl From<PlexServerInfo> for ServerView {
    fn from(info: PlexServerInfo) -> Self {
        Self {
            name: info.name,
            machine_identifier: info.machine_identifier,
            version: info.version,
            platform: info.platform,
        }
    }
}

impl Library {
    pub fn new(section: PlexSection, item_count: Option<u64>) -> Self {
        Self {
            key: section.key,
            kind: section.kind,
            title: section.title,
            item_count,
        }
    }
}

impl From<PlexMetadata> for PlexItem {
    fn from(item: PlexMetadata) -> Self {
        Self {
            rating_key: item.rating_key,
            kind: item.kind,
            // An episode alone says little: "Show - Episode".
            title: match item.grandparent_title {
                Some(show) if item.title.is_empty() => show,
                Some(show) => format!("{show} - {}", item.title),
                None => item.title,
            },
            year: item.year,
            summary: item.summary,
            thumb: item.thumb.as_deref().and_then(image_url),
            duration: item.duration_ms,
            added_at: seconds(item.added_at),
            view_count: item.view_count,
        }
    }
}

impl From<PlexMetadata> for CollectionView {
    fn from(item: PlexMetadata) -> Self {
        Self {
            rating_key: item.rating_key,
            title: item.title,
            subtype: item.subtype,
            summary: item.summary,
            thumb: item.thumb.as_deref().and_then(image_url),
            child_count: item.child_count,
            added_at: seconds(item.added_at),
        }
    }
}

/// Client items as API items.
pub fn items(list: Vec<PlexMetadata>) -> Vec<PlexItem> {
    list.into_iter().map(PlexItem::from).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn items_link_images_through_the_portal() {
        let item = PlexItem::from(PlexMetadata {
            rating_key: "7".into(),
            kind: "episode".into(),
            title: "Pilot".into(),
            grandparent_title: Some("The Show".into()),
            thumb: Some("/library/metadata/7/thumb/1700000000".into()),
            added_at: Some(1_700_000_000),
            ..PlexMetadata::default()
        });
        assert_eq!(item.title, "The Show - Pilot");
        assert_eq!(
            item.thumb.as_deref(),
            Some("/api/v1/plex/image?path=%2Flibrary%2Fmetadata%2F7%2Fthumb%2F1700000000")
        );
        assert_eq!(item.added_at.as_deref(), Some("2023-11-14T22:13:20.000Z"));
        let odd = PlexItem::from(PlexMetadata {
            thumb: Some("/:/resources/movie.png".into()),
            ..PlexMetadata::default()
        });
        assert_eq!(odd.thumb, None, "no link the image proxy would refuse");
        let json = serde_json::to_value(&item).unwrap();
        assert_eq!(json["type"], "episode");
        assert!(json["year"].is_null(), "absent values are null: {json}");
        assert!(json.get("viewCount").is_some());
    }
}
