//! The fake server's library: sections (movie, show, and "Other Videos" folders on the real
//! disk), items with thumbs, collections, images, and scans that find the files actually under
//! the folder they are given. Answers follow UPSTREAMS.md 1.3 down to the quirks clients must
//! survive: child arrays are left out when empty, `childCount` and `smart` are strings,
//! `librarySectionID` is a number, and every object carries fields no client reads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Shared, html_error};
use crate::integrations::plex::is_plex_key;

/// The first rating key handed out (real servers' keys are large numbers too).
const FIRST_RATING_KEY: u64 = 1000;
/// `addedAt` of the first item; each later one is a minute newer.
const FIRST_ADDED_AT: i64 = 1_700_000_000;
/// The file endings a scan takes for videos.
const VIDEO_ENDINGS: [&str; 7] = ["mp4", "mkv", "webm", "m4v", "mov", "avi", "ts"];

/// A 2x3 orange PNG: what item thumbs are.
pub const THUMB_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x08, 0x02, 0x00, 0x00, 0x00, 0x36, 0x88, 0x49,
    0xd6, 0x00, 0x00, 0x00, 0x10, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x38, 0x51, 0xa1, 0x01,
    0x44, 0x0c, 0x28, 0x14, 0x00, 0x5c, 0x6d, 0x08, 0x71, 0x4a, 0xb7, 0xb0, 0x37, 0x00, 0x00, 0x00,
    0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// An 8x8 grey baseline JPEG: what collection composites and transcoded images are.
pub const COMPOSITE_JPEG: &[u8] = &[
    0xff, 0xd8, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x08, 0x00, 0x08,
    0x01, 0x01, 0x11, 0x00, 0xff, 0xc4, 0x00, 0x14, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xc4, 0x00, 0x14, 0x10, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00, 0x3f, 0xff, 0xd9,
];

/// An item of the fake library, as a test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeItem {
    pub rating_key: String,
    pub section_key: String,
    /// `movie` or `show` (the section's type) for items a test adds; what a scan finds is a
    /// `movie` in a movie section and an `episode` in a show section.
    pub kind: String,
    pub title: String,
    pub year: Option<i64>,
    pub summary: Option<String>,
    pub duration_ms: Option<i64>,
    pub added_at: i64,
    pub view_count: Option<i64>,
    /// The media file (PMS's path), if the item has one.
    pub file: Option<String>,
    /// `YYYY-MM-DD`, once an edit set it.
    pub originally_available_at: Option<String>,
    /// The fields an edit locked (`title`, `summary`, ...), in the order they were locked.
    pub locked: Vec<String>,
    /// `updatedAt`: `addedAt`, moved on by each edit.
    pub updated_at: i64,
}

/// An item to add with [`super::FakePlexServer::add_item`]; fields left `None` are left out of
/// the fake's answers, as PMS leaves them out.
#[derive(Debug, Clone, Default)]
pub struct NewItem {
    pub title: String,
    pub year: Option<i64>,
    pub summary: Option<String>,
    pub duration_ms: Option<i64>,
    pub view_count: Option<i64>,
    pub file: Option<String>,
}

impl NewItem {
    /// An item titled `title` released in `year`.
    pub fn new(title: &str, year: i64) -> Self {
        Self {
            title: title.to_owned(),
            year: Some(year),
            ..Self::default()
        }
    }

    /// With a summary.
    pub fn summary(mut self, summary: &str) -> Self {
        self.summary = Some(summary.to_owned());
        self
    }

    /// With a media file at `path` (PMS's path).
    pub fn file(mut self, path: &str) -> Self {
        self.file = Some(path.to_owned());
        self
    }
}

/// A collection of the fake library, as a test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCollection {
    pub rating_key: String,
    pub section_key: String,
    pub title: String,
    /// The type of its items (`movie`, `show`, `episode`, ...).
    pub subtype: String,
    /// Rating keys, in the order they were added.
    pub items: Vec<String>,
}

struct Section {
    key: String,
    kind: String,
    title: String,
    agent: &'static str,
    scanner: &'static str,
    location: String,
    refreshing: bool,
    /// A scan asked for and not over yet.
    pending: Option<PendingScan>,
}

/// A scan on its way: reads of `GET /library/sections` before it starts (`refreshing` still
/// false), reads it then runs for (`refreshing` true), and the files it will add when it ends.
struct PendingScan {
    start_in: u32,
    reads: u32,
    files: Vec<String>,
}

/// The library state inside the fake's mutex.
pub(super) struct Library {
    next_key: u64,
    next_section: u32,
    sections: Vec<Section>,
    items: Vec<FakeItem>,
    collections: Vec<(FakeCollection, i64)>,
    /// How many `GET /library/sections` reads show a scan still running.
    scan_reads: u32,
    /// How many reads show a scan not started yet after the refresh was asked for.
    scan_start_reads: u32,
    /// Every refresh asked for: `(section key, path)`, the path empty for a whole section.
    pub(super) scans: Vec<(String, String)>,
}

impl Default for Library {
    fn default() -> Self {
        Self {
            next_key: FIRST_RATING_KEY,
            next_section: 1,
            sections: Vec::new(),
            items: Vec::new(),
            collections: Vec::new(),
            scan_reads: 1,
            scan_start_reads: 0,
            scans: Vec::new(),
        }
    }
}

impl Library {
    fn rating_key(&mut self) -> (String, i64) {
        let key = self.next_key;
        self.next_key += 1;
        let added_at = FIRST_ADDED_AT + 60 * i64::try_from(key - FIRST_RATING_KEY).unwrap_or(0);
        (key.to_string(), added_at)
    }

    pub(super) fn add_section(
        &mut self,
        kind: &str,
        title: &str,
        location: &str,
        personal: bool,
    ) -> String {
        let key = self.next_section.to_string();
        self.next_section += 1;
        let (agent, scanner) = match (kind, personal) {
            (_, true) => ("tv.plex.agents.none", "Plex Video Files Scanner"),
            ("show", _) => ("tv.plex.agents.series", "Plex TV Series"),
            _ => ("tv.plex.agents.movie", "Plex Movie"),
        };
        self.sections.push(Section {
            key: key.clone(),
            kind: kind.to_owned(),
            title: title.to_owned(),
            agent,
            scanner,
            location: location.to_owned(),
            refreshing: false,
            pending: None,
        });
        key
    }

    pub(super) fn add_item(&mut self, section_key: &str, item: NewItem) -> Option<String> {
        let kind = self.section(section_key)?.kind.clone();
        let (rating_key, added_at) = self.rating_key();
        self.items.push(FakeItem {
            rating_key: rating_key.clone(),
            section_key: section_key.to_owned(),
            kind,
            title: item.title,
            year: item.year,
            summary: item.summary,
            duration_ms: item.duration_ms,
            added_at,
            view_count: item.view_count,
            file: item.file,
            originally_available_at: None,
            locked: Vec::new(),
            updated_at: added_at,
        });
        Some(rating_key)
    }

    pub(super) fn add_collection(
        &mut self,
        section_key: &str,
        title: &str,
        items: &[&str],
    ) -> Option<String> {
        // A collection's subtype is its items' type (the section's when it has none).
        let section_kind = self.section(section_key)?.kind.clone();
        let subtype = items
            .first()
            .and_then(|k| self.item(k))
            .map_or(section_kind, |i| i.kind.clone());
        let (rating_key, added_at) = self.rating_key();
        self.collections.push((
            FakeCollection {
                rating_key: rating_key.clone(),
                section_key: section_key.to_owned(),
                title: title.to_owned(),
                subtype,
                items: items.iter().map(|s| (*s).to_owned()).collect(),
            },
            added_at,
        ));
        Some(rating_key)
    }

    pub(super) fn items(&self, section_key: &str) -> Vec<FakeItem> {
        self.items
            .iter()
            .filter(|i| i.section_key == section_key)
            .cloned()
            .collect()
    }

    pub(super) fn collections(&self) -> Vec<FakeCollection> {
        self.collections.iter().map(|(c, _)| c.clone()).collect()
    }

    pub(super) fn set_refreshing(&mut self, section_key: &str, refreshing: bool) {
        if let Some(s) = self.sections.iter_mut().find(|s| s.key == section_key) {
            s.refreshing = refreshing;
        }
    }

    pub(super) fn set_scan_reads(&mut self, reads: u32) {
        self.scan_reads = reads;
    }

    pub(super) fn set_scan_start_reads(&mut self, reads: u32) {
        self.scan_start_reads = reads;
    }

    fn section(&self, key: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.key == key)
    }

    pub(super) fn item(&self, rating_key: &str) -> Option<&FakeItem> {
        self.items.iter().find(|i| i.rating_key == rating_key)
    }

    pub(super) fn item_mut(&mut self, rating_key: &str) -> Option<&mut FakeItem> {
        self.items.iter_mut().find(|i| i.rating_key == rating_key)
    }

    /// A section's type (`movie`, `show`), if there is such a section.
    pub(super) fn section_kind(&self, key: &str) -> Option<&str> {
        self.section(key).map(|s| s.kind.as_str())
    }

    /// The rating keys of a section's items of type `kind`, in the order they were added.
    pub(super) fn keys_of(&self, section_key: &str, kind: &str) -> Vec<String> {
        self.items
            .iter()
            .filter(|i| i.section_key == section_key && i.kind == kind)
            .map(|i| i.rating_key.clone())
            .collect()
    }

    fn collection_mut(&mut self, rating_key: &str) -> Option<&mut FakeCollection> {
        self.collections
            .iter_mut()
            .map(|(c, _)| c)
            .find(|c| c.rating_key == rating_key)
    }

    /// Moves each scan on by one read: not started yet, running, or over (adding what it
    /// found).
    fn advance_scans(&mut self) {
        let mut found = Vec::new();
        for section in &mut self.sections {
            match section.pending.take() {
                Some(mut scan) if scan.start_in > 0 => {
                    scan.start_in -= 1;
                    section.pending = Some(scan);
                }
                Some(mut scan) if scan.reads > 0 => {
                    scan.reads -= 1;
                    section.refreshing = true;
                    section.pending = Some(scan);
                }
                Some(scan) => {
                    section.refreshing = false;
                    found.push((section.key.clone(), scan.files));
                }
                None => {}
            }
        }
        for (key, files) in found {
            self.add_files(&key, files);
        }
    }

    fn add_files(&mut self, section_key: &str, files: Vec<String>) {
        // A scan of a show section makes episodes (what carries a file there); elsewhere the
        // section's own type.
        let Some(kind) = self.section(section_key).map(|s| match s.kind.as_str() {
            "show" => "episode".to_owned(),
            other => other.to_owned(),
        }) else {
            return;
        };
        for file in files {
            if self.items.iter().any(|i| i.file.as_deref() == Some(&file)) {
                continue;
            }
            // "Other Videos" items are titled after the file name, without its ending.
            let title = Path::new(&file)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let item = NewItem {
                title,
                file: Some(file),
                ..NewItem::default()
            };
            if self.add_item(section_key, item).is_some()
                && let Some(added) = self.items.last_mut()
            {
                added.kind.clone_from(&kind);
            }
        }
    }

    pub(super) fn item_json(&self, item: &FakeItem) -> Value {
        let section = self.section(&item.section_key);
        let mut json = json!({
            "ratingKey": item.rating_key,
            "key": format!("/library/metadata/{}", item.rating_key),
            "guid": format!("plex://{}/{}", item.kind, item.rating_key),
            "type": item.kind,
            "title": item.title,
            "thumb": format!("/library/metadata/{}/thumb/{}", item.rating_key, item.added_at),
            "art": format!("/library/metadata/{}/art/{}", item.rating_key, item.added_at),
            "addedAt": item.added_at,
            "updatedAt": item.updated_at,
            "librarySectionID": item.section_key.parse::<u64>().unwrap_or(0),
            "librarySectionTitle": section.map(|s| s.title.clone()),
        });
        let optional = [
            ("year", item.year.map(Value::from)),
            ("summary", item.summary.clone().map(Value::from)),
            (
                "originallyAvailableAt",
                item.originally_available_at.clone().map(Value::from),
            ),
            ("duration", item.duration_ms.map(Value::from)),
            ("viewCount", item.view_count.map(Value::from)),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                json[name] = value;
            }
        }
        if let Some(file) = &item.file {
            json["Media"] = json!([{
                "id": item.rating_key.parse::<u64>().unwrap_or(0) * 10,
                "container": Path::new(file).extension().map(|e| e.to_string_lossy().into_owned()),
                "Part": [{"id": 1, "key": format!("/library/parts/{}/file", item.rating_key),
                          "file": file, "size": 1024}],
            }]);
        }
        if item.kind == "movie" {
            json["Genre"] = json!([{"tag": "Drama"}]);
        }
        // Locked fields, as PMS lists them (`pkkid/python-plexapi` `plexapi/media.py` `Field`:
        // `locked` and `name`; `plexapi/base.py` `isLocked` reads them).
        if !item.locked.is_empty() {
            json["Field"] = item
                .locked
                .iter()
                .map(|name| json!({"locked": true, "name": name}))
                .collect();
        }
        json
    }

    fn collection_json(&self, collection: &FakeCollection, added_at: i64) -> Value {
        json!({
            "ratingKey": collection.rating_key,
            "key": format!("/library/collections/{}/children", collection.rating_key),
            "guid": format!("collection://{}", collection.rating_key),
            "type": "collection",
            "title": collection.title,
            "subtype": collection.subtype,
            "summary": "",
            "index": 1,
            "thumb": format!("/library/collections/{}/composite/{added_at}", collection.rating_key),
            "addedAt": added_at,
            "updatedAt": added_at,
            // Strings, as several PMS builds send them.
            "childCount": collection.items.len().to_string(),
            "smart": "0",
            "librarySectionID": collection.section_key.parse::<u64>().unwrap_or(0),
        })
    }

    fn collection_entry(&self, rating_key: &str) -> Option<Value> {
        self.collections
            .iter()
            .find(|(c, _)| c.rating_key == rating_key)
            .map(|(c, added_at)| self.collection_json(c, *added_at))
    }
}

/// `{"MediaContainer": {...}}` with `fields`, and `Metadata` only when there is any.
pub(super) fn container(mut fields: Value, metadata: Vec<Value>) -> Response {
    fields["size"] = json!(metadata.len());
    if !metadata.is_empty() {
        fields["Metadata"] = Value::Array(metadata);
    }
    axum::Json(json!({ "MediaContainer": fields })).into_response()
}

/// The query's parameters, decoded.
pub(super) fn params(query: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// `X-Plex-Container-Start/Size` from the headers or, as browsers send them, the query.
fn paging(headers: &HeaderMap, query: &HashMap<String, String>) -> (usize, Option<usize>) {
    let read = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| query.get(name).cloned())
            .and_then(|v| v.trim().parse::<usize>().ok())
    };
    (
        read("X-Plex-Container-Start").unwrap_or(0),
        read("X-Plex-Container-Size"),
    )
}

fn window<T: Clone>(all: &[T], start: usize, size: Option<usize>) -> Vec<T> {
    all.iter()
        .skip(start)
        .take(size.unwrap_or(usize::MAX))
        .cloned()
        .collect()
}

pub(super) fn not_found() -> Response {
    html_error(StatusCode::NOT_FOUND)
}

pub(super) fn bad_request() -> Response {
    html_error(StatusCode::BAD_REQUEST)
}

/// `GET /library/sections`. Each read moves running scans along (see `set_scan_reads`).
pub(super) async fn sections(State(shared): State<Arc<Shared>>) -> Response {
    let mut state = shared.lock();
    let library = &mut state.library;
    library.advance_scans();
    let directory: Vec<Value> = library
        .sections
        .iter()
        .map(|s| {
            json!({
                "allowSync": true,
                "art": format!("/:/resources/{}-fanart.jpg", s.kind),
                "filters": true,
                "refreshing": s.refreshing,
                "thumb": format!("/:/resources/{}.png", s.kind),
                "key": s.key,
                "type": s.kind,
                "title": s.title,
                "agent": s.agent,
                "scanner": s.scanner,
                "language": "en-US",
                "uuid": format!("00000000-0000-4000-8000-{:012}", s.key.parse::<u64>().unwrap_or(0)),
                "hidden": 0,
                "Location": [{"id": s.key.parse::<u64>().unwrap_or(0), "path": s.location}],
            })
        })
        .collect();
    let mut fields = json!({"allowSync": false, "title1": "Plex Library"});
    fields["size"] = json!(directory.len());
    if !directory.is_empty() {
        fields["Directory"] = Value::Array(directory);
    }
    axum::Json(json!({ "MediaContainer": fields })).into_response()
}

/// `GET /library/sections/{key}/all`, paged, with `type` (1 movie, 2 show, 4 episode) and
/// `title` (contains) filters.
pub(super) async fn section_all(
    State(shared): State<Arc<Shared>>,
    UrlPath(key): UrlPath<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = params(query.as_deref());
    let state = shared.lock();
    let library = &state.library;
    let Some(section) = library.section(&key) else {
        return not_found();
    };
    // Without `type` PMS lists the section's own type (shows, not their episodes).
    let wanted_kind = match query.get("type") {
        Some(number) => kind_of_type(number).unwrap_or(""),
        None => section.kind.as_str(),
    };
    let title = query.get("title").map(|t| t.to_lowercase());
    let all: Vec<&FakeItem> = library
        .items
        .iter()
        .filter(|i| i.section_key == key)
        .filter(|i| i.kind == wanted_kind)
        .filter(|i| {
            title
                .as_ref()
                .is_none_or(|t| i.title.to_lowercase().contains(t))
        })
        .collect();
    let (start, size) = paging(&headers, &query);
    let metadata = window(&all, start, size)
        .into_iter()
        .map(|i| library.item_json(i))
        .collect();
    container(
        json!({
            "totalSize": all.len(),
            "offset": start,
            "allowSync": true,
            "identifier": "com.plexapp.plugins.library",
            "librarySectionID": key.parse::<u64>().unwrap_or(0),
            "librarySectionTitle": section.title,
            "title1": section.title,
            "viewGroup": section.kind,
        }),
        metadata,
    )
}

/// `GET /library/recentlyAdded`: newest first, paged.
pub(super) async fn recently_added(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = params(query.as_deref());
    let state = shared.lock();
    let library = &state.library;
    let mut all: Vec<&FakeItem> = library.items.iter().collect();
    all.sort_by_key(|i| std::cmp::Reverse(i.added_at));
    let (start, size) = paging(&headers, &query);
    let metadata = window(&all, start, size)
        .into_iter()
        .map(|i| library.item_json(i))
        .collect();
    container(json!({"mixedParents": true, "offset": start}), metadata)
}

/// `GET /hubs/search?query=&limit=`: items and collections whose title contains the query,
/// in hubs by type; empty hubs are listed with `size: 0` and no `Metadata`.
pub(super) async fn search(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = params(query.as_deref());
    let Some(needle) = query.get("query").map(|q| q.to_lowercase()) else {
        return bad_request();
    };
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(10);
    let state = shared.lock();
    let library = &state.library;
    let matches = |title: &str| title.to_lowercase().contains(&needle);
    let mut hubs = Vec::new();
    for (kind, title) in [("movie", "Movies"), ("show", "Shows")] {
        let found: Vec<Value> = library
            .items
            .iter()
            .filter(|i| i.kind == kind && matches(&i.title))
            .take(limit)
            .map(|i| {
                let mut json = library.item_json(i);
                json["score"] = json!("0.5");
                json["reason"] = json!("section");
                json
            })
            .collect();
        hubs.push(hub(kind, title, found));
    }
    let collections: Vec<Value> = library
        .collections
        .iter()
        .filter(|(c, _)| matches(&c.title))
        .take(limit)
        .map(|(c, added_at)| library.collection_json(c, *added_at))
        .collect();
    hubs.push(hub("collection", "Collections", collections));
    axum::Json(json!({"MediaContainer": {"size": hubs.len(), "Hub": hubs}})).into_response()
}

fn hub(kind: &str, title: &str, metadata: Vec<Value>) -> Value {
    let mut hub = json!({
        "title": title,
        "type": kind,
        "hubIdentifier": kind,
        "context": "",
        "size": metadata.len(),
        "more": false,
        "style": "shelf",
    });
    if !metadata.is_empty() {
        hub["Metadata"] = Value::Array(metadata);
    }
    hub
}

/// `GET /library/sections/{key}/collections`.
pub(super) async fn section_collections(
    State(shared): State<Arc<Shared>>,
    UrlPath(key): UrlPath<String>,
) -> Response {
    let state = shared.lock();
    let library = &state.library;
    if library.section(&key).is_none() {
        return not_found();
    }
    let metadata = library
        .collections
        .iter()
        .filter(|(c, _)| c.section_key == key)
        .map(|(c, added_at)| library.collection_json(c, *added_at))
        .collect();
    container(
        json!({"librarySectionID": key.parse::<u64>().unwrap_or(0)}),
        metadata,
    )
}

/// `GET /library/collections/{ratingKey}`.
pub(super) async fn collection(
    State(shared): State<Arc<Shared>>,
    UrlPath(rating_key): UrlPath<String>,
) -> Response {
    collection_answer(&shared.lock().library, &rating_key)
}

/// A container holding one collection, as reads, creates and adds answer; 404 without it.
fn collection_answer(library: &Library, rating_key: &str) -> Response {
    match library.collection_entry(rating_key) {
        Some(entry) => container(json!({}), vec![entry]),
        None => not_found(),
    }
}

/// `GET /library/collections/{ratingKey}/children`.
pub(super) async fn collection_children(
    State(shared): State<Arc<Shared>>,
    UrlPath(rating_key): UrlPath<String>,
) -> Response {
    let state = shared.lock();
    let library = &state.library;
    let Some((collection, _)) = library
        .collections
        .iter()
        .find(|(c, _)| c.rating_key == rating_key)
    else {
        return not_found();
    };
    let metadata = collection
        .items
        .iter()
        .filter_map(|k| library.item(k))
        .map(|i| library.item_json(i))
        .collect();
    container(json!({"title1": collection.title}), metadata)
}

/// The rating keys of a `server://<machine>/com.plexapp.plugins.library/library/metadata/<k,..>`
/// URI, when it names this server.
fn uri_items(uri: &str, machine: &str) -> Option<Vec<String>> {
    let prefix = format!("server://{machine}/com.plexapp.plugins.library/library/metadata/");
    let keys: Vec<String> = uri
        .strip_prefix(&prefix)?
        .split(',')
        .map(str::to_owned)
        .collect();
    keys.iter().all(|k| is_plex_key(k)).then_some(keys)
}

/// The item type a PMS type number stands for (`pkkid/python-plexapi` `plexapi/utils.py`
/// `SEARCHTYPES`: 1 movie, 2 show, 3 season, 4 episode), for the types the fake has.
pub(super) fn kind_of_type(number: &str) -> Option<&'static str> {
    match number {
        "1" => Some("movie"),
        "2" => Some("show"),
        "3" => Some("season"),
        "4" => Some("episode"),
        _ => None,
    }
}

/// Whether a section of type `section_kind` can hold items of type `kind` (a show section
/// holds shows, their seasons and episodes).
fn section_holds(section_kind: &str, kind: &str) -> bool {
    match section_kind {
        "show" => matches!(kind, "show" | "season" | "episode"),
        other => other == kind,
    }
}

/// Whether every key names an item of the section whose type is `subtype`. PMS answers a bare
/// 400 page when a collection would mix types (UPSTREAMS.md 1.3 collection gotchas).
fn items_fit(library: &Library, keys: &[String], section_key: &str, subtype: &str) -> bool {
    keys.iter().all(|k| {
        library
            .item(k)
            .is_some_and(|i| i.section_key == section_key && i.kind == subtype)
    })
}

/// `POST /library/collections?type&title&smart=0&sectionId&uri`: a regular collection.
///
/// `type` is the type of the items put in it, not the section's: python-plexapi
/// (`plexapi/collection.py` `Collection._create`) sends `utils.searchType(items[0].type)`, so a
/// collection of episodes in a show library is type 4, and PMS refuses a `type` its items do not
/// have with its bare 400 page (what python-plexapi's `server.query` raises `BadRequest` for).
pub(super) async fn create_collection(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = params(query.as_deref());
    let mut state = shared.lock();
    let machine = state.machine_identifier.clone();
    let library = &mut state.library;
    let (Some(title), Some(section_key), Some(uri)) =
        (query.get("title"), query.get("sectionId"), query.get("uri"))
    else {
        return bad_request();
    };
    let Some(subtype) = query.get("type").and_then(|t| kind_of_type(t)) else {
        return bad_request();
    };
    let Some(keys) = uri_items(uri, &machine) else {
        return bad_request();
    };
    let section_fits = library
        .section(section_key)
        .is_some_and(|s| section_holds(&s.kind, subtype));
    if title.trim().is_empty()
        || query.get("smart").map(String::as_str) != Some("0")
        || !section_fits
        || !items_fit(library, &keys, section_key, subtype)
    {
        return bad_request();
    }
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let Some(rating_key) = library.add_collection(section_key, title, &key_refs) else {
        return bad_request();
    };
    collection_answer(library, &rating_key)
}

/// `PUT /library/collections/{ratingKey}/items?uri=`: adds items it does not hold yet.
pub(super) async fn add_collection_items(
    State(shared): State<Arc<Shared>>,
    UrlPath(rating_key): UrlPath<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = params(query.as_deref());
    let mut state = shared.lock();
    let machine = state.machine_identifier.clone();
    let library = &mut state.library;
    let Some((section_key, subtype)) = library
        .collection_mut(&rating_key)
        .map(|c| (c.section_key.clone(), c.subtype.clone()))
    else {
        return not_found();
    };
    let Some(keys) = query.get("uri").and_then(|uri| uri_items(uri, &machine)) else {
        return bad_request();
    };
    if !items_fit(library, &keys, &section_key, &subtype) {
        return bad_request();
    }
    if let Some(collection) = library.collection_mut(&rating_key) {
        for key in keys {
            if !collection.items.contains(&key) {
                collection.items.push(key);
            }
        }
    }
    collection_answer(library, &rating_key)
}

/// `GET /library/sections/{key}/refresh[?path=]`: starts a scan of the folder (or the whole
/// section) that finds the video files on disk below it; they become items when the scan ends,
/// after `set_scan_reads` reads of `/library/sections` (at once when that is 0). A path outside
/// the section's folder finds nothing, as PMS ignores it.
///
/// PMS answers at once and queues the scan (`pkkid/python-plexapi` `plexapi/library.py`
/// `LibrarySection.update` returns as soon as this answers), so `refreshing` can still read
/// false for a while: `set_scan_start_reads` reads of `/library/sections` show it not started.
pub(super) async fn refresh(
    State(shared): State<Arc<Shared>>,
    UrlPath(key): UrlPath<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = params(query.as_deref());
    let (root, location) = {
        let state = shared.lock();
        let Some(section) = state.library.section(&key) else {
            return not_found();
        };
        let root = query
            .get("path")
            .cloned()
            .unwrap_or_else(|| section.location.clone());
        (root, section.location.clone())
    };
    let inside = crate::integrations::plex::is_under(&root, &location);
    let files = if inside {
        let root = PathBuf::from(root);
        tokio::task::spawn_blocking(move || video_files(&root))
            .await
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut state = shared.lock();
    let asked = query.get("path").cloned().unwrap_or_default();
    state.library.scans.push((key.clone(), asked));
    let (reads, start_in) = (state.library.scan_reads, state.library.scan_start_reads);
    let library = &mut state.library;
    if reads == 0 && start_in == 0 {
        library.add_files(&key, files);
    } else if let Some(section) = library.sections.iter_mut().find(|s| s.key == key) {
        let mut all = section.pending.take().map(|p| p.files).unwrap_or_default();
        all.extend(files);
        // A scan that starts at once shows as running from this answer on.
        section.refreshing = start_in == 0 || section.refreshing;
        section.pending = Some(PendingScan {
            start_in,
            reads,
            files: all,
        });
    }
    StatusCode::OK.into_response()
}

/// The video files below `dir`, sorted, as absolute path strings.
fn video_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| VIDEO_ENDINGS.contains(&e.to_ascii_lowercase().as_str()))
            {
                found.push(path.to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

/// Images: item thumbs and art (PNG), collection composites and the photo transcoder (JPEG).
/// Anything else under `/library/` is 404, like an image PMS does not have.
pub(super) fn image(shared: &Shared, path: &str, query: Option<&str>) -> Response {
    let png = |bytes: &'static [u8]| ([(header::CONTENT_TYPE, "image/png")], bytes).into_response();
    let jpeg =
        |bytes: &'static [u8]| ([(header::CONTENT_TYPE, "image/jpeg")], bytes).into_response();
    if path == "/photo/:/transcode" {
        let query = params(query);
        return match query.get("url") {
            Some(url) if image_exists(shared, url) => jpeg(COMPOSITE_JPEG),
            _ => not_found(),
        };
    }
    if image_exists(shared, path) {
        if path.starts_with("/library/collections/") {
            jpeg(COMPOSITE_JPEG)
        } else {
            png(THUMB_PNG)
        }
    } else {
        not_found()
    }
}

fn image_exists(shared: &Shared, path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    let state = shared.lock();
    match parts.as_slice() {
        ["", "library", "metadata", key, "thumb" | "art", _] => state.library.item(key).is_some(),
        ["", "library", "collections", key, "composite", _] => {
            state.library.collection_entry(key).is_some()
        }
        _ => false,
    }
}
