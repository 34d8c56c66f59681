//! What PMS's library answers look like on the wire, and the plain types the client hands out.
//!
//! PMS JSON drifts (UPSTREAMS.md 1.3, 1.4 item 5): child arrays are left out when empty, ids
//! are strings in one place and numbers in another, booleans are `true` or `0/1`, counts are
//! numbers or strings depending on the build. So every wire field is optional, arrays default
//! to empty, and the `lenient_*` readers take whatever type arrives; a field of a type that
//! makes no sense is dropped rather than failing the whole answer. Unknown fields are ignored.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::lenient_bool;
use crate::integrations::upstream::UpstreamFailure;

/// What `GET /` says about the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlexServerInfo {
    /// The name the owner gave the server (`friendlyName`).
    pub name: String,
    pub machine_identifier: String,
    pub version: String,
    pub platform: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ServerWire {
    #[serde(deserialize_with = "lenient_string")]
    friendly_name: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    machine_identifier: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    version: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    platform: Option<String>,
}

impl ServerWire {
    pub fn into_info(self) -> Result<PlexServerInfo, UpstreamFailure> {
        let (Some(machine_identifier), Some(version)) =
            (non_empty(self.machine_identifier), non_empty(self.version))
        else {
            return Err(UpstreamFailure::Decode(
                "server without machineIdentifier or version".into(),
            ));
        };
        Ok(PlexServerInfo {
            name: non_empty(self.friendly_name).unwrap_or_else(|| "Plex".to_owned()),
            machine_identifier,
            version,
            platform: non_empty(self.platform),
        })
    }
}

/// A library section (`GET /library/sections`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlexSection {
    /// The section key, e.g. `"1"`.
    pub key: String,
    /// `movie`, `show`, `artist` or `photo` ("Other Videos" libraries say `movie`).
    pub kind: String,
    pub title: String,
    /// True while a scan of the section runs; poll it to see a scan finish.
    pub refreshing: bool,
    /// The folders of the section, as PMS sees them.
    pub locations: Vec<String>,
}

/// One library item (a movie, show, season, episode, clip or collection), as lists give it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlexMetadata {
    pub rating_key: String,
    /// `movie`, `show`, `season`, `episode`, `collection`, ...
    pub kind: String,
    pub title: String,
    pub year: Option<i64>,
    pub summary: Option<String>,
    /// PMS's image path (`/library/metadata/58683/thumb/1703239236`); never a URL with a token.
    pub thumb: Option<String>,
    /// Milliseconds.
    pub duration_ms: Option<i64>,
    /// Unix seconds.
    pub added_at: Option<i64>,
    pub view_count: Option<i64>,
    /// The show of a season or episode.
    pub parent_title: Option<String>,
    pub grandparent_title: Option<String>,
    /// The section the item belongs to, when the answer says.
    pub section_key: Option<String>,
    /// Items in a collection, seasons of a show.
    pub child_count: Option<i64>,
    /// A collection's item type (`movie`, `show`, ...).
    pub subtype: Option<String>,
    /// The media files (`Media[].Part[].file`), as PMS sees them.
    pub files: Vec<String>,
}

/// One page of a section's items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemsPage {
    pub items: Vec<PlexMetadata>,
    /// Where the page starts, as PMS echoes it (else as asked).
    pub offset: u64,
    /// Items in the whole section (`totalSize`), or what is known when PMS leaves it out.
    pub total: u64,
}

/// An image PMS served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlexImage {
    pub bytes: Vec<u8>,
    /// The `Content-Type` PMS sent (`image/jpeg` when it sent none).
    pub content_type: String,
}

/// `{"MediaContainer": {...}}` with the children any list answer may carry.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ListWire {
    #[serde(deserialize_with = "lenient_u64")]
    pub total_size: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    pub offset: Option<u64>,
    #[serde(rename = "Metadata", deserialize_with = "lenient_vec")]
    pub metadata: Vec<MetadataWire>,
    #[serde(rename = "Directory", deserialize_with = "lenient_vec")]
    pub directory: Vec<SectionWire>,
    #[serde(rename = "Hub", deserialize_with = "lenient_vec")]
    pub hub: Vec<HubWire>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct HubWire {
    #[serde(rename = "Metadata", deserialize_with = "lenient_vec")]
    pub metadata: Vec<MetadataWire>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct SectionWire {
    #[serde(deserialize_with = "lenient_string")]
    key: Option<String>,
    #[serde(rename = "type", deserialize_with = "lenient_string")]
    kind: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    title: Option<String>,
    refreshing: Option<Value>,
    #[serde(rename = "Location", deserialize_with = "lenient_vec")]
    location: Vec<LocationWire>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LocationWire {
    #[serde(deserialize_with = "lenient_string")]
    path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct MetadataWire {
    #[serde(deserialize_with = "lenient_string")]
    rating_key: Option<String>,
    #[serde(rename = "type", deserialize_with = "lenient_string")]
    kind: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    title: Option<String>,
    #[serde(deserialize_with = "lenient_i64")]
    year: Option<i64>,
    #[serde(deserialize_with = "lenient_string")]
    summary: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    thumb: Option<String>,
    #[serde(deserialize_with = "lenient_i64")]
    duration: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    added_at: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    view_count: Option<i64>,
    #[serde(deserialize_with = "lenient_string")]
    parent_title: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    grandparent_title: Option<String>,
    // A number in library lists, sometimes a string in hubs.
    #[serde(rename = "librarySectionID", deserialize_with = "lenient_string")]
    library_section_id: Option<String>,
    #[serde(deserialize_with = "lenient_i64")]
    child_count: Option<i64>,
    #[serde(deserialize_with = "lenient_string")]
    subtype: Option<String>,
    #[serde(rename = "Media", deserialize_with = "lenient_vec")]
    media: Vec<MediaWire>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MediaWire {
    #[serde(rename = "Part", deserialize_with = "lenient_vec")]
    part: Vec<PartWire>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PartWire {
    #[serde(deserialize_with = "lenient_string")]
    file: Option<String>,
}

impl SectionWire {
    /// The section, or `None` when PMS left out its key (nothing could address it).
    pub fn into_section(self) -> Option<PlexSection> {
        let key = non_empty(self.key)?;
        Some(PlexSection {
            title: non_empty(self.title).unwrap_or_else(|| format!("Library {key}")),
            key,
            kind: non_empty(self.kind).unwrap_or_default(),
            refreshing: self
                .refreshing
                .as_ref()
                .and_then(lenient_bool)
                .unwrap_or(false),
            locations: self
                .location
                .into_iter()
                .filter_map(|l| non_empty(l.path))
                .collect(),
        })
    }
}

impl MetadataWire {
    /// The item, or `None` without a rating key (an entry nothing can link to).
    pub fn into_metadata(self) -> Option<PlexMetadata> {
        let rating_key = non_empty(self.rating_key)?;
        Some(PlexMetadata {
            rating_key,
            kind: non_empty(self.kind).unwrap_or_default(),
            title: self.title.unwrap_or_default(),
            year: self.year,
            summary: non_empty(self.summary),
            thumb: non_empty(self.thumb),
            duration_ms: self.duration,
            added_at: self.added_at,
            view_count: self.view_count,
            parent_title: non_empty(self.parent_title),
            grandparent_title: non_empty(self.grandparent_title),
            section_key: non_empty(self.library_section_id),
            child_count: self.child_count,
            subtype: non_empty(self.subtype),
            files: self
                .media
                .into_iter()
                .flat_map(|m| m.part)
                .filter_map(|p| non_empty(p.file))
                .collect(),
        })
    }
}

/// The usable items of a list.
pub(super) fn items(wire: Vec<MetadataWire>) -> Vec<PlexMetadata> {
    wire.into_iter()
        .filter_map(MetadataWire::into_metadata)
        .collect()
}

/// A page from a list answer asked for at `offset`.
pub(super) fn page(list: ListWire, offset: u64) -> ItemsPage {
    let items = items(list.metadata);
    let offset = list.offset.unwrap_or(offset);
    let shown = offset.saturating_add(items.len() as u64);
    ItemsPage {
        // Some endpoints leave `totalSize` out; what was seen is then the best lower bound.
        total: list.total_size.unwrap_or(shown).max(shown),
        offset,
        items,
    }
}

/// The first item of an answer that must carry one.
pub(super) fn first(list: ListWire, what: &str) -> Result<PlexMetadata, UpstreamFailure> {
    items(list.metadata)
        .into_iter()
        .next()
        .ok_or_else(|| UpstreamFailure::Decode(format!("{what} without Metadata")))
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

/// A string, or a number written as one; anything else is absent.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// An integer, a float (truncated) or a numeric string; anything else is absent.
fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(lenient_i64(d)?.and_then(|n| u64::try_from(n).ok()))
}

/// An array of `T`, where a missing array, `null` or a lone object also do (the XML-to-JSON
/// bridge of some builds sends a single child as an object). Entries that do not fit are skipped.
fn lenient_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let values = match Option::<Value>::deserialize(d)? {
        Some(Value::Array(values)) => values,
        Some(value @ Value::Object(_)) => vec![value],
        _ => Vec::new(),
    };
    Ok(values
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::integrations::plex::{Container, read_container};

    fn list(json: &str) -> ListWire {
        let container: Container<ListWire> = serde_json::from_str(json).unwrap();
        read_container(container).unwrap()
    }

    #[test]
    fn sections_parse_with_missing_arrays_and_flipped_types() {
        let wire = list(
            r#"{"MediaContainer":{"size":3,"allowSync":false,"Directory":[
              {"key":"1","type":"movie","title":"Movies","refreshing":false,"hidden":0,
               "Location":[{"id":1,"path":"/data/movies"}],"somethingNew":{"a":[1]}},
              {"key":2,"type":"show","title":"TV Shows","refreshing":1},
              {"type":"movie","title":"No key"},
              {"key":"7","type":"movie","title":"YouTube","refreshing":"1",
               "Location":{"id":9,"path":"/data/youtube"}}]}}"#,
        );
        let sections: Vec<_> = wire
            .directory
            .into_iter()
            .filter_map(SectionWire::into_section)
            .collect();
        assert_eq!(sections.len(), 3);
        assert_eq!(sections[0].locations, vec!["/data/movies".to_owned()]);
        assert!(!sections[0].refreshing);
        assert_eq!(sections[1].key, "2");
        assert!(sections[1].refreshing);
        assert!(sections[1].locations.is_empty());
        assert_eq!(sections[2].locations, vec!["/data/youtube".to_owned()]);
        assert!(sections[2].refreshing);
    }

    #[test]
    fn items_parse_leniently() {
        let wire = list(
            r#"{"MediaContainer":{"size":2,"totalSize":"812","offset":40,"Metadata":[
              {"ratingKey":"58683","type":"movie","title":"Avatar","year":"2022","rating":7.6,
               "thumb":"/library/metadata/58683/thumb/1703239236","duration":11558112.0,
               "addedAt":1680457607,"viewCount":"1","librarySectionID":1,
               "Media":[{"id":1,"Part":[{"id":2,"file":"/data/movies/Avatar.mkv"}]},{"id":3}],
               "Genre":[{"tag":"Adventure"}],"Guid":{"id":"tmdb://76600"}},
              {"ratingKey":12,"type":"show","title":"Show","childCount":"3","year":null,
               "summary":"","Media":"nonsense"},
              {"title":"no rating key"}]}}"#,
        );
        let page = page(wire, 0);
        assert_eq!((page.offset, page.total), (40, 812));
        assert_eq!(page.items.len(), 2);
        let movie = &page.items[0];
        assert_eq!(movie.year, Some(2022));
        assert_eq!(movie.duration_ms, Some(11_558_112));
        assert_eq!(movie.view_count, Some(1));
        assert_eq!(movie.section_key.as_deref(), Some("1"));
        assert_eq!(movie.files, vec!["/data/movies/Avatar.mkv".to_owned()]);
        let show = &page.items[1];
        assert_eq!(show.rating_key, "12");
        assert_eq!(show.child_count, Some(3));
        assert_eq!((show.year, show.summary.clone()), (None, None));
        assert!(show.files.is_empty());
    }

    #[test]
    fn an_empty_library_has_no_metadata_key_at_all() {
        let page = page(
            list(r#"{"MediaContainer":{"size":0,"totalSize":0,"offset":0}}"#),
            0,
        );
        assert!(page.items.is_empty());
        assert_eq!(page.total, 0);
        // Without totalSize the total is what was seen.
        let page = page_of(r#"{"MediaContainer":{"Metadata":[{"ratingKey":"1"}]}}"#, 5);
        assert_eq!((page.offset, page.total), (5, 6));
        assert!(first(list(r#"{"MediaContainer":{}}"#), "create").is_err());
    }

    fn page_of(json: &str, offset: u64) -> ItemsPage {
        page(list(json), offset)
    }
}
