//! Metadata edits in the fake library: one item's fields set and locked, and one item read
//! back with its locked fields, as PMS answers them.
//!
//! The parameters are the ones `pkkid/python-plexapi` builds: `plexapi/mixins.py`
//! `EditFieldMixin.editField` sends `{field}.value` (an empty string for "none") and
//! `{field}.locked` (`1` or `0`), `editOriginallyAvailable` a `YYYY-MM-DD` date, and
//! `plexapi/base.py` `_edit` adds `type` (the item's search type). python-plexapi puts them on
//! `PUT /library/sections/{section}/all?id={ratingKeys}` (`plexapi/library.py`
//! `LibrarySection._edit`); PMS takes the same parameters on `PUT /library/metadata/{ratingKey}`
//! too. The fake answers both. A locked field shows as a `Field` child (`plexapi/media.py`
//! `Field`: `locked`, `name`), which `plexapi/base.py` `isLocked` reads.
//!
//! The fake is stricter than PMS in one way: a field it does not model (`tagline.value`, a
//! misspelt `originallyAvailable.value`) is a 400 here, where PMS drops it silently, so a client
//! sending the wrong name fails its test instead of editing nothing.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::library::{FakeItem, Library, bad_request, container, kind_of_type, not_found, params};
use super::{Shared, escape, wants_json};
use crate::integrations::plex::is_plex_key;
use crate::plex::metadata::is_date;

/// The fields the fake lets an edit set and lock.
const FIELDS: [&str; 3] = ["title", "summary", "originallyAvailableAt"];

/// The edits of one request, checked before any is applied.
#[derive(Debug, Default, PartialEq, Eq)]
struct Edits {
    values: Vec<(&'static str, String)>,
    locks: Vec<(&'static str, bool)>,
}

/// Reads `{field}.value` and `{field}.locked` from the query's pairs, in their order; `None` (a
/// 400) for a field the fake does not model, a `locked` other than `0`/`1`, an empty title or a
/// date that is not `YYYY-MM-DD`.
fn read_edits(query: Option<&str>) -> Option<Edits> {
    let mut edits = Edits::default();
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let Some((field, what)) = name.rsplit_once('.') else {
            continue;
        };
        if !matches!(what, "value" | "locked") {
            continue;
        }
        let field = FIELDS.into_iter().find(|f| *f == field)?;
        if what == "locked" {
            edits.locks.push((field, parse_lock(&value)?));
            continue;
        }
        let fits = match field {
            "title" => !value.trim().is_empty(),
            "originallyAvailableAt" => value.is_empty() || is_date(&value),
            _ => true,
        };
        if !fits {
            return None;
        }
        edits.values.push((field, value.into_owned()));
    }
    Some(edits)
}

fn parse_lock(value: &str) -> Option<bool> {
    match value {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

impl Edits {
    fn apply(&self, item: &mut FakeItem) {
        for (field, value) in &self.values {
            let value = value.clone();
            match *field {
                "title" => item.title = value,
                "summary" => item.summary = Some(value),
                _ => item.originally_available_at = Some(value).filter(|v| !v.is_empty()),
            }
        }
        for (field, locked) in &self.locks {
            let at = item.locked.iter().position(|f| f == field);
            match (locked, at) {
                (true, None) => item.locked.push((*field).to_owned()),
                (false, Some(at)) => {
                    item.locked.remove(at);
                }
                _ => {}
            }
        }
        item.updated_at += 1;
    }
}

/// Whether `type` (when sent) is the item's type, as `plexapi/base.py` `_edit` sends it.
fn type_fits(query: &HashMap<String, String>, kind: &str) -> bool {
    query
        .get("type")
        .is_none_or(|t| kind_of_type(t) == Some(kind))
}

/// `PUT /library/metadata/{ratingKey}?type=&title.value=&title.locked=1&...`: 400 for a key that
/// is not digits, bad edits or a `type`/`id` that is not the item's; 404 for an unknown item;
/// else the fields are set and locked, and PMS's empty 200.
pub(super) async fn edit_item(
    State(shared): State<Arc<Shared>>,
    UrlPath(rating_key): UrlPath<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = params(raw.as_deref());
    if !is_plex_key(&rating_key) {
        return bad_request();
    }
    let mut state = shared.lock();
    let Some(item) = state.library.item_mut(&rating_key) else {
        return not_found();
    };
    let id_fits = query.get("id").is_none_or(|id| *id == rating_key);
    let Some(edits) =
        read_edits(raw.as_deref()).filter(|_| id_fits && type_fits(&query, &item.kind))
    else {
        return bad_request();
    };
    edits.apply(item);
    StatusCode::OK.into_response()
}

/// `PUT /library/sections/{key}/all?type=&id=k1,k2&title.value=...`: python-plexapi's form
/// (`plexapi/library.py` `LibrarySection._edit`). `type` is required; without `id` the edit
/// applies to every item of that type in the section (`_lockUnlockAllField`). 404 for an unknown
/// section; 400 for an id that is not an item of this section and type.
pub(super) async fn edit_section_items(
    State(shared): State<Arc<Shared>>,
    UrlPath(section_key): UrlPath<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = params(raw.as_deref());
    let mut state = shared.lock();
    let library = &mut state.library;
    if library.section_kind(&section_key).is_none() {
        return not_found();
    }
    let (Some(kind), Some(edits)) = (
        query.get("type").and_then(|t| kind_of_type(t)),
        read_edits(raw.as_deref()),
    ) else {
        return bad_request();
    };
    let keys: Vec<String> = match query.get("id") {
        Some(ids) => ids.split(',').map(str::to_owned).collect(),
        None => library.keys_of(&section_key, kind),
    };
    let fits = |library: &Library, key: &String| {
        library
            .item(key)
            .is_some_and(|i| i.section_key == section_key && i.kind == kind)
    };
    if !keys.iter().all(|k| fits(library, k)) {
        return bad_request();
    }
    for key in &keys {
        if let Some(item) = library.item_mut(key) {
            edits.apply(item);
        }
    }
    StatusCode::OK.into_response()
}

/// `GET /library/metadata/{ratingKey}`: the item with its locked fields, in JSON when asked and
/// XML otherwise (`<Field locked="1" name="title"/>` children, as PMS sends them). 400 for a key
/// that is not digits, 404 for an unknown item.
pub(super) async fn get_item(
    State(shared): State<Arc<Shared>>,
    UrlPath(rating_key): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    if !is_plex_key(&rating_key) {
        return bad_request();
    }
    let state = shared.lock();
    let library = &state.library;
    let Some(item) = library.item(&rating_key) else {
        return not_found();
    };
    let section_id = item.section_key.parse::<u64>().unwrap_or(0);
    if wants_json(&headers) {
        return container(
            json!({"librarySectionID": section_id, "identifier": "com.plexapp.plugins.library"}),
            vec![library.item_json(item)],
        );
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml;charset=utf-8")],
        item_xml(item, section_id),
    )
        .into_response()
}

/// The XML PMS answers for one video item (the attributes the fake models).
fn item_xml(item: &FakeItem, section_id: u64) -> String {
    let mut attributes = vec![
        ("ratingKey", item.rating_key.clone()),
        ("key", format!("/library/metadata/{}", item.rating_key)),
        ("type", item.kind.clone()),
        ("title", item.title.clone()),
        ("addedAt", item.added_at.to_string()),
        ("updatedAt", item.updated_at.to_string()),
    ];
    let optional = [
        ("summary", item.summary.clone()),
        (
            "originallyAvailableAt",
            item.originally_available_at.clone(),
        ),
        ("year", item.year.map(|y| y.to_string())),
    ];
    attributes.extend(
        optional
            .into_iter()
            .filter_map(|(name, value)| Some((name, value?))),
    );
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MediaContainer size=\"1\" \
         librarySectionID=\"{section_id}\" identifier=\"com.plexapp.plugins.library\">\n<Video"
    );
    for (name, value) in attributes {
        xml.push_str(&format!(" {name}=\"{}\"", escape(&value)));
    }
    xml.push_str(">\n");
    if let Some(file) = &item.file {
        xml.push_str(&format!(
            "<Media><Part file=\"{}\"/></Media>\n",
            escape(file)
        ));
    }
    for field in &item.locked {
        xml.push_str(&format!(
            "<Field locked=\"1\" name=\"{}\"/>\n",
            escape(field)
        ));
    }
    xml.push_str("</Video>\n</MediaContainer>\n");
    xml
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn edits(pairs: &[(&str, &str)]) -> Option<Edits> {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.extend_pairs(pairs);
        read_edits(Some(&query.finish()))
    }

    #[test]
    fn edits_are_checked_before_any_is_applied() {
        let ok = edits(&[
            ("type", "4"),
            ("title.value", "A & B"),
            ("title.locked", "1"),
            ("originallyAvailableAt.value", "2024-02-29"),
        ])
        .unwrap();
        assert_eq!(ok.values[0], ("title", "A & B".to_owned()));
        assert_eq!(ok.values.len(), 2);
        assert_eq!(ok.locks, [("title", true)]);
        for bad in [
            [("tagline.value", "x")],
            [("originallyAvailable.value", "2024-01-01")],
            [("title.locked", "yes")],
            [("title.value", " ")],
            [("originallyAvailableAt.value", "2023-02-29")],
            [("originallyAvailableAt.value", "24-1-1")],
        ] {
            assert!(edits(&bad).is_none(), "{bad:?}");
        }
        // An empty summary or date clears it, as python-plexapi sends `value or ''`.
        let clear = edits(&[("summary.value", ""), ("originallyAvailableAt.value", "")]).unwrap();
        assert_eq!(clear.values.len(), 2);
    }

    #[test]
    fn locks_are_added_once_and_removed() {
        let mut item = FakeItem {
            rating_key: "1000".into(),
            section_key: "1".into(),
            kind: "episode".into(),
            title: "a".into(),
            year: None,
            summary: None,
            duration_ms: None,
            added_at: 5,
            view_count: None,
            file: None,
            originally_available_at: None,
            locked: Vec::new(),
            updated_at: 5,
        };
        let lock = edits(&[("title.locked", "1"), ("summary.locked", "1")]).unwrap();
        lock.apply(&mut item);
        lock.apply(&mut item);
        assert_eq!(item.locked.len(), 2);
        edits(&[("title.locked", "0")]).unwrap().apply(&mut item);
        assert_eq!(item.locked, ["summary"]);
        assert_eq!(item.updated_at, 8);
        let xml = item_xml(&item, 1);
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let field = doc.descendants().find(|n| n.has_tag_name("Field")).unwrap();
        assert_eq!(field.attribute("locked"), Some("1"));
        assert_eq!(field.attribute("name"), Some("summary"));
    }

    #[tokio::test]
    async fn both_edit_forms_over_http_and_bad_ids_answer_like_pms() {
        use crate::integrations::upstream::{Method, Request};
        use crate::sim::harness::testing::fetch;
        use crate::sim::plex::{FakePlexServer, NewItem};

        let fake = FakePlexServer::start().await.unwrap();
        let movies = fake.add_library("movie", "Other Videos", "/data/other");
        let shows = fake.add_library("show", "TV", "/data/tv");
        let a = fake.add_item(&movies, NewItem::new("a", 2020)).unwrap();
        let b = fake.add_item(&movies, NewItem::new("b", 2021)).unwrap();
        let put = |path: &str| {
            Request::new(Method::Put, format!("{}{path}", fake.url()))
                .header("X-Plex-Token", fake.token())
        };

        // python-plexapi's form: the section's `all` with `id` and `type`.
        let (status, _) = fetch(put(&format!(
            "/library/sections/{movies}/all?type=1&id={a},{b}&summary.value=S%20%26%20T&summary.locked=1"
        )))
        .await;
        assert_eq!(status, 200);
        for key in [&a, &b] {
            let item = fake.item(key).unwrap();
            assert_eq!(item.summary.as_deref(), Some("S & T"));
            assert_eq!(item.locked, ["summary"]);
        }
        // Without `id`: every item of the type (python-plexapi `lockAllField`).
        let (status, _) = fetch(put(&format!(
            "/library/sections/{movies}/all?type=1&title.locked=1"
        )))
        .await;
        assert_eq!(status, 200);
        assert_eq!(fake.item(&b).unwrap().locked, ["summary", "title"]);

        let cases = [
            // An item of another section, a type the items do not have, no type.
            (
                format!("/library/sections/{shows}/all?type=1&id={a}&title.locked=1"),
                400,
            ),
            (
                format!("/library/sections/{movies}/all?type=4&id={a}&title.locked=1"),
                400,
            ),
            (
                format!("/library/sections/{movies}/all?id={a}&title.locked=1"),
                400,
            ),
            (
                "/library/sections/9/all?type=1&title.locked=1".to_owned(),
                404,
            ),
            // The item form: a key that is not digits, an unknown item, a wrong id or type.
            ("/library/metadata/abc?title.value=x".to_owned(), 400),
            ("/library/metadata/999999?title.value=x".to_owned(), 404),
            (format!("/library/metadata/{a}?id={b}&title.value=x"), 400),
            (format!("/library/metadata/{a}?type=2&title.value=x"), 400),
            (format!("/library/metadata/{a}?tagline.value=x"), 400),
        ];
        for (path, want) in cases {
            let (status, body) = fetch(put(&path)).await;
            assert_eq!(status, want, "{path}");
            assert!(body.starts_with("<html>"), "{body}");
        }
        assert_eq!(
            fake.item(&a).unwrap().title,
            "a",
            "refused edits change nothing"
        );
        let get = |path: &str| {
            Request::get(format!("{}{path}", fake.url())).header("X-Plex-Token", fake.token())
        };
        assert_eq!(fetch(get("/library/metadata/abc")).await.0, 400);
        assert_eq!(fetch(get("/library/metadata/999999")).await.0, 404);
        // Edits want the token like every other path.
        let (status, _) = fetch(Request::new(
            Method::Put,
            format!("{}/library/metadata/{a}?title.value=x", fake.url()),
        ))
        .await;
        assert_eq!(status, 401);
    }
}
