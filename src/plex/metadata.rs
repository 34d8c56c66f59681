//! Writing what MediaNest knows about a downloaded video into Plex: an item's title, summary
//! and date, set and locked so an agent refresh does not undo them ([`edit_metadata`]); the
//! items a scan made of files ([`find_items_by_files`], [`find_item_by_file`]); and a collection
//! that is created on first use and extended afterwards ([`ensure_collection`]).
//!
//! Every call goes through [`PlexServer`]: its agent, base URL, `X-Plex-Token` header (never in
//! the URL, so never in a log line), timeout, breaker and error mapping, with the blocking
//! `ureq` work on the bounded blocking pool (`Upstream::send`). Writes are sent once, never
//! retried. Nothing here logs a value that was sent, only rating keys.
//!
//! The collection calls themselves (`find_collection`, `create_collection`,
//! `add_to_collection`, the `server://{machineIdentifier}/...` URI) live on [`PlexServer`]
//! (`src/integrations/plex/handoff.rs`), which the download hand-off uses too; this module
//! composes them.

use std::fmt::Write as _;

use crate::error::{AppError, AppResult, ErrorCode};
use crate::integrations::overseerr::encode_query_value;
use crate::integrations::plex::{PlexMetadata, PlexServer, SERVICE_NAME, is_plex_key, search_type};
use crate::integrations::upstream::{Method, status_failure};

/// The longest title an edit sends, in characters.
pub const MAX_TITLE_CHARS: usize = 255;
/// The longest summary an edit sends, in characters: YouTube's own limit on a description, and
/// a bound on the URL (the fields travel in the query, as PMS wants them).
pub const MAX_SUMMARY_CHARS: usize = 5000;

/// What to set on one item. Fields left `None` are not touched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edit {
    /// The title (1-[`MAX_TITLE_CHARS`] characters).
    pub title: Option<String>,
    /// The summary (at most [`MAX_SUMMARY_CHARS`] characters; empty clears it).
    pub summary: Option<String>,
    /// The release date, `YYYY-MM-DD` (empty clears it).
    pub originally_available_at: Option<String>,
    /// Lock the fields set here (true), so an agent refresh keeps them, or unlock them (false).
    pub lock: bool,
}

impl Edit {
    /// The query of `PUT /library/metadata/{ratingKey}` for an item of PMS type `plex_type`,
    /// every value percent-encoded: `type={t}&id={key}&title.value=...&title.locked=1&...`.
    ///
    /// The parameters are python-plexapi's (`pkkid/python-plexapi` `plexapi/mixins.py`
    /// `EditFieldMixin.editField`: `{field}.value` and `{field}.locked` as `1`/`0`;
    /// `editTitle`, `editSummary`, `editOriginallyAvailable` with a `%Y-%m-%d` date;
    /// `plexapi/base.py` `PlexPartialObject._edit` adds `type` from `utils.searchType`, and
    /// `plexapi/library.py` `LibrarySection._edit` the `id`). python-plexapi sends them to
    /// `/library/sections/{section}/all`; PMS takes the same on `/library/metadata/{key}`,
    /// which needs no section key.
    ///
    /// A validation error for an edit with no field, an empty or over-long title, an over-long
    /// summary, a date that is not `YYYY-MM-DD`, or a control character in any value.
    pub fn query(&self, rating_key: &str, plex_type: u8) -> AppResult<String> {
        self.check()?;
        let mut query = format!("type={plex_type}&id={rating_key}");
        let lock = u8::from(self.lock);
        let fields = [
            ("title", &self.title),
            ("summary", &self.summary),
            ("originallyAvailableAt", &self.originally_available_at),
        ];
        for (field, value) in fields {
            if let Some(value) = value {
                // Writing to a String cannot fail.
                let _ = write!(
                    query,
                    "&{field}.value={}&{field}.locked={lock}",
                    encode_query_value(value)
                );
            }
        }
        Ok(query)
    }

    fn check(&self) -> AppResult<()> {
        let mut problems: Vec<(&'static str, &'static str)> = Vec::new();
        if self.title.is_none() && self.summary.is_none() && self.originally_available_at.is_none()
        {
            problems.push(("edit", "must set at least one field"));
        }
        if let Some(title) = &self.title {
            let chars = title.chars().count();
            if title.trim().is_empty() || chars > MAX_TITLE_CHARS || has_control(title, false) {
                problems.push((
                    "title",
                    "must be 1 to 255 characters, without control characters",
                ));
            }
        }
        if let Some(summary) = &self.summary
            && (summary.chars().count() > MAX_SUMMARY_CHARS || has_control(summary, true))
        {
            problems.push((
                "summary",
                "must be at most 5000 characters, without control characters but line breaks",
            ));
        }
        if let Some(date) = &self.originally_available_at
            && !date.is_empty()
            && !is_date(date)
        {
            problems.push(("originallyAvailableAt", "must be a date, YYYY-MM-DD"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(AppError::validation(problems))
        }
    }
}

/// Whether `text` holds a control character (line breaks and tabs allowed when `multiline`).
fn has_control(text: &str, multiline: bool) -> bool {
    text.chars()
        .any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')))
}

/// Whether `text` is a date as PMS's `originallyAvailableAt` holds it: `YYYY-MM-DD`, a real
/// calendar date.
pub fn is_date(text: &str) -> bool {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    text.len() == 10 && time::Date::parse(text, format).is_ok()
}

/// Sets and locks (or unlocks, see [`Edit::lock`]) the fields of `edit` on the item
/// `rating_key`, whose type is `kind` (`episode` in a show library, `movie` in an "Other
/// Videos" one: [`PlexMetadata::kind`]).
///
/// `PUT /library/metadata/{ratingKey}?{Edit::query}`. A validation error for a bad key, a type
/// a collection-style edit cannot name, or a bad edit; `NOT_FOUND` (detail "Plex has no item
/// {key}") when PMS has no such item; an upstream error when PMS refuses (400) or fails.
pub async fn edit_metadata(
    server: &PlexServer,
    rating_key: &str,
    kind: &str,
    edit: &Edit,
) -> AppResult<()> {
    if !is_plex_key(rating_key) {
        return Err(AppError::validation([(
            "ratingKey",
            "must be a Plex key (digits)",
        )]));
    }
    let plex_type = search_type(kind)
        .ok_or_else(|| AppError::validation([("kind", "must be a Plex item type")]))?;
    let path = format!(
        "/library/metadata/{rating_key}?{}",
        edit.query(rating_key, plex_type)?
    );
    let request = server.request(Method::Put, &path);
    let found = server
        .upstream()
        .send(request, |response| match response.status().as_u16() {
            404 => Ok(false),
            200..=299 => Ok(true),
            _ => Err(status_failure(response)),
        })
        .await?;
    if !found {
        return Err(no_item(rating_key));
    }
    tracing::debug!(rating_key, "Plex item metadata edited");
    Ok(())
}

fn no_item(rating_key: &str) -> AppError {
    AppError::Upstream {
        code: ErrorCode::NotFound,
        service: SERVICE_NAME,
        detail: format!("Plex has no item {rating_key}"),
        retry_after: None,
    }
}

/// The item of the section whose media file is `file` (PMS's path, compared exactly), if a
/// scan has made one: [`find_items_by_files`] for one file.
pub async fn find_item_by_file(
    server: &PlexServer,
    section_key: &str,
    file: &str,
) -> AppResult<Option<PlexMetadata>> {
    let mut found = find_items_by_files(server, section_key, &[file.to_owned()]).await?;
    Ok(found.pop().flatten())
}

/// For each of `files` (PMS's paths, compared exactly), the section's item whose media file it
/// is, if a scan has made one; in the order of `files`. The items are read once per folder the
/// files are in, the way the download hand-off reads them ([`PlexServer::items_under`]:
/// episodes in a show library, paged), so a batch of new files from one season costs one pass.
/// A validation error for a path without a folder; `NOT_FOUND` for an unknown section.
pub async fn find_items_by_files(
    server: &PlexServer,
    section_key: &str,
    files: &[String],
) -> AppResult<Vec<Option<PlexMetadata>>> {
    let mut folders: Vec<&str> = Vec::new();
    for file in files {
        let folder = folder_of(file)
            .ok_or_else(|| AppError::validation([("file", "must be an absolute path")]))?;
        if !folders.contains(&folder) {
            folders.push(folder);
        }
    }
    let mut items = Vec::new();
    for folder in folders {
        items.extend(server.items_under(section_key, folder).await?);
    }
    Ok(files
        .iter()
        .map(|file| {
            items
                .iter()
                .find(|item| item.files.iter().any(|f| f == file))
                .cloned()
        })
        .collect())
}

/// The folder `file` is in (`/` for a file at the root), or `None` when it names none.
fn folder_of(file: &str) -> Option<&str> {
    match file.rfind(['/', '\\'])? {
        0 => Some(&file[..1]),
        at => Some(&file[..at]),
    }
}

/// Puts `items` (all of one type, from the section) into the section's collection `title` and
/// returns the collection's rating key: the collection `known` (a key stored from an earlier
/// call) when it still exists, else the section's collection of that title
/// ([`PlexServer::find_collection`]), else a new one made with `items`
/// ([`PlexServer::create_collection`]: PMS makes no empty regular collection, so the first items
/// go into the create). Items the collection holds already stay there once.
///
/// `pkkid/python-plexapi` `plexapi/collection.py` `Collection._create` and `addItems`,
/// `plexapi/library.py` `LibrarySection.collection(title)`: the same three steps.
pub async fn ensure_collection(
    server: &PlexServer,
    section_key: &str,
    title: &str,
    known: Option<&str>,
    items: &[PlexMetadata],
) -> AppResult<String> {
    if items.is_empty() {
        return Err(AppError::validation([("items", "must not be empty")]));
    }
    let keys: Vec<String> = items.iter().map(|i| i.rating_key.clone()).collect();
    if let Some(known) = known {
        match server.add_to_collection(known, &keys).await {
            Ok(()) => return Ok(known.to_owned()),
            // Deleted in Plex since: find it by title or make it again.
            Err(e) if e.code() == ErrorCode::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(existing) = server.find_collection(section_key, title).await? {
        server
            .add_to_collection(&existing.rating_key, &keys)
            .await?;
        return Ok(existing.rating_key);
    }
    server.create_collection(section_key, title, items).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::integrations::upstream::UpstreamOptions;
    use crate::sim::plex::{FakePlexServer, NewItem};

    async fn server() -> (FakePlexServer, PlexServer) {
        let fake = FakePlexServer::start().await.unwrap();
        let plex = PlexServer::new(
            &fake.url(),
            Some(fake.token()),
            UpstreamOptions::with_timeout_ms(2000),
            crate::clock::system(),
        );
        (fake, plex)
    }

    fn edit(title: &str) -> Edit {
        Edit {
            title: Some(title.to_owned()),
            ..Edit::default()
        }
    }

    #[test]
    fn the_query_is_python_plexapis_with_every_value_encoded() {
        let full = Edit {
            title: Some("Tom & Jerry = #1 café".into()),
            summary: Some("a+b 100%".into()),
            originally_available_at: Some("2024-03-07".into()),
            lock: true,
        };
        assert_eq!(
            full.query("1234", 4).unwrap(),
            "type=4&id=1234\
             &title.value=Tom%20%26%20Jerry%20%3D%20%231%20caf%C3%A9&title.locked=1\
             &summary.value=a%2Bb%20100%25&summary.locked=1\
             &originallyAvailableAt.value=2024-03-07&originallyAvailableAt.locked=1"
        );
        let unlock = Edit {
            summary: Some(String::new()),
            ..Edit::default()
        };
        assert_eq!(
            unlock.query("7", 1).unwrap(),
            "type=1&id=7&summary.value=&summary.locked=0"
        );
    }

    #[test]
    fn bad_edits_are_validation_errors_naming_the_field() {
        let cases = [
            (Edit::default(), "edit"),
            (edit(" "), "title"),
            (edit(&"x".repeat(256)), "title"),
            (edit("a\u{7}b"), "title"),
            (
                Edit {
                    summary: Some("x".repeat(5001)),
                    ..Edit::default()
                },
                "summary",
            ),
            (
                Edit {
                    originally_available_at: Some("2023-02-29".into()),
                    ..Edit::default()
                },
                "originallyAvailableAt",
            ),
            (
                Edit {
                    originally_available_at: Some("7 March 2024".into()),
                    ..Edit::default()
                },
                "originallyAvailableAt",
            ),
        ];
        for (edit, field) in cases {
            let err = edit.query("1", 4).unwrap_err();
            assert_eq!(err.code(), ErrorCode::ValidationError, "{edit:?}");
            let details = err.report().details.unwrap().to_string();
            assert!(details.contains(field), "{details} should name {field}");
        }
        assert!(edit(&"é".repeat(255)).query("1", 4).is_ok());
        let multiline = Edit {
            summary: Some("line one\nline two\tend".into()),
            ..Edit::default()
        };
        assert!(multiline.query("1", 4).is_ok());
    }

    /// A show library with `files` scanned in (episodes), the items in file order.
    async fn scanned(
        fake: &FakePlexServer,
        plex: &PlexServer,
        files: &[&str],
    ) -> (tempfile::TempDir, String, Vec<PlexMetadata>) {
        let dir = tempfile::tempdir().unwrap();
        let section = fake.add_youtube_show_library("YouTube", dir.path());
        let season = dir.path().join("Channel").join("Season 2024");
        std::fs::create_dir_all(&season).unwrap();
        for name in files {
            std::fs::write(season.join(name), b"x").unwrap();
        }
        fake.set_scan_reads(0);
        let folder = season.to_string_lossy().into_owned();
        plex.scan(&section, &folder).await.unwrap();
        let mut items = Vec::new();
        for name in files {
            let file = season.join(name).to_string_lossy().into_owned();
            items.push(
                find_item_by_file(plex, &section, &file)
                    .await
                    .unwrap()
                    .expect("the scan made an item of the file"),
            );
        }
        (dir, section, items)
    }

    #[tokio::test]
    async fn an_edit_sets_and_locks_the_fields_and_the_server_shows_them_locked() {
        let (fake, plex) = server().await;
        let (_dir, _section, items) =
            scanned(&fake, &plex, &["Channel - s2024e030701 - Rain [aaa].mp4"]).await;
        let item = &items[0];
        assert_eq!(item.kind, "episode");
        let full = Edit {
            title: Some("Rain, all night".into()),
            summary: Some("Recorded on a roof.\nSecond line.".into()),
            originally_available_at: Some("2024-03-07".into()),
            lock: true,
        };
        edit_metadata(&plex, &item.rating_key, &item.kind, &full)
            .await
            .unwrap();
        let stored = fake.item(&item.rating_key).unwrap();
        assert_eq!(stored.title, "Rain, all night");
        assert_eq!(
            stored.summary.as_deref(),
            Some("Recorded on a roof.\nSecond line.")
        );
        assert_eq!(
            stored.originally_available_at.as_deref(),
            Some("2024-03-07")
        );
        assert_eq!(stored.locked, ["title", "summary", "originallyAvailableAt"]);
        assert_eq!(fake.requests("PUT /library/metadata/{key}"), 1);

        // The item as PMS answers it: JSON `Field` entries and XML `<Field locked="1"/>`.
        let token = fake.token();
        let url = format!("{}/library/metadata/{}", fake.url(), item.rating_key);
        let gateway = crate::integrations::upstream::Upstream::new(
            "Simulator",
            UpstreamOptions::with_timeout_ms(2000),
        );
        let json: serde_json::Value = gateway
            .get_json(
                crate::integrations::upstream::Request::get(url.clone())
                    .header("Accept", "application/json")
                    .header("X-Plex-Token", token.clone()),
            )
            .await
            .unwrap();
        let metadata = &json["MediaContainer"]["Metadata"][0];
        assert_eq!(metadata["title"], "Rain, all night");
        assert_eq!(metadata["originallyAvailableAt"], "2024-03-07");
        let locked: Vec<&str> = metadata["Field"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["locked"] == true)
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(locked, ["title", "summary", "originallyAvailableAt"]);
        let xml = gateway
            .send(
                crate::integrations::upstream::Request::get(url).header("X-Plex-Token", token),
                crate::integrations::upstream::read_text,
            )
            .await
            .unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let video = doc.descendants().find(|n| n.has_tag_name("Video")).unwrap();
        assert_eq!(video.attribute("title"), Some("Rain, all night"));
        let names: Vec<_> = video
            .children()
            .filter(|n| n.has_tag_name("Field") && n.attribute("locked") == Some("1"))
            .filter_map(|n| n.attribute("name"))
            .collect();
        assert_eq!(names, ["title", "summary", "originallyAvailableAt"]);

        // Unlocking keeps the value and drops the lock of that field only.
        let unlock = Edit {
            title: Some("Rain, all night".into()),
            lock: false,
            ..Edit::default()
        };
        edit_metadata(&plex, &item.rating_key, &item.kind, &unlock)
            .await
            .unwrap();
        let stored = fake.item(&item.rating_key).unwrap();
        assert_eq!(stored.locked, ["summary", "originallyAvailableAt"]);
        assert_eq!(stored.title, "Rain, all night");
    }

    #[tokio::test]
    async fn reserved_and_non_ascii_characters_arrive_as_sent() {
        let (fake, plex) = server().await;
        let movies = fake.add_library("movie", "Other Videos", "/data/other");
        let key = fake.add_item(&movies, NewItem::new("old", 2020)).unwrap();
        let title = "Tom & Jerry = 100% #1 + café 東京 ?x=y/z";
        let summary = "a&b=c#d\u{2014}ünïcödé";
        let e = Edit {
            title: Some(title.into()),
            summary: Some(summary.into()),
            originally_available_at: None,
            lock: true,
        };
        edit_metadata(&plex, &key, "movie", &e).await.unwrap();
        let stored = fake.item(&key).unwrap();
        assert_eq!(stored.title, title);
        assert_eq!(stored.summary.as_deref(), Some(summary));
        assert_eq!(stored.locked, ["title", "summary"]);
    }

    #[tokio::test]
    async fn a_missing_item_is_a_clear_not_found_and_bad_input_never_leaves() {
        let (fake, plex) = server().await;
        let err = edit_metadata(&plex, "424242", "episode", &edit("x"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotFound);
        assert!(err.to_string().contains("Plex has no item 424242"), "{err}");
        let before = fake.total_requests();
        for (key, kind) in [("12a", "episode"), ("../1", "movie"), ("1", "collection")] {
            let err = edit_metadata(&plex, key, kind, &edit("x"))
                .await
                .unwrap_err();
            assert_eq!(err.code(), ErrorCode::ValidationError, "{key} {kind}");
        }
        let err = edit_metadata(&plex, "1", "movie", &Edit::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationError);
        assert_eq!(fake.total_requests(), before, "nothing was sent");
    }

    #[tokio::test]
    async fn a_type_the_item_does_not_have_is_refused_by_the_server() {
        let (fake, plex) = server().await;
        let movies = fake.add_library("movie", "Other Videos", "/data/other");
        let key = fake.add_item(&movies, NewItem::new("old", 2020)).unwrap();
        let err = edit_metadata(&plex, &key, "episode", &edit("new"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::UpstreamError);
        assert_eq!(fake.item(&key).unwrap().title, "old");
    }

    #[tokio::test]
    async fn the_collection_is_made_on_first_use_and_added_to_without_duplicates() {
        let (fake, plex) = server().await;
        let (_dir, section, items) =
            scanned(&fake, &plex, &["a [aaa].mp4", "b [bbb].mp4", "c [ccc].mp4"]).await;
        let title = "Lo-fi & Chill #2";
        let first = ensure_collection(&plex, &section, title, None, &items[..1])
            .await
            .unwrap();
        assert_eq!(fake.collections().len(), 1);
        assert_eq!(fake.requests("POST /library/collections"), 1);
        // Found by title the next time, and items it holds already are not added twice.
        let again = ensure_collection(&plex, &section, title, None, &items[..2])
            .await
            .unwrap();
        assert_eq!(again, first);
        // With the stored key it goes straight to the collection.
        let listed_before = fake.requests("GET /library/sections/{key}/collections");
        let third = ensure_collection(&plex, &section, title, Some(&first), &items[1..])
            .await
            .unwrap();
        assert_eq!(third, first);
        assert_eq!(
            fake.requests("GET /library/sections/{key}/collections"),
            listed_before
        );
        let made = fake.collections();
        assert_eq!(made.len(), 1);
        assert_eq!(made[0].title, title);
        assert_eq!(made[0].subtype, "episode");
        let keys: Vec<String> = items.iter().map(|i| i.rating_key.clone()).collect();
        assert_eq!(made[0].items, keys);
        assert_eq!(fake.requests("POST /library/collections"), 1);
        // The client's view agrees: the section lists it, its children are the three items.
        let children = plex.collection_items(&first).await.unwrap();
        let child_keys: Vec<String> = children.iter().map(|i| i.rating_key.clone()).collect();
        assert_eq!(child_keys, keys);

        // A stored key whose collection was deleted in Plex: found again by title.
        let found = ensure_collection(&plex, &section, title, Some("999999"), &items[..1])
            .await
            .unwrap();
        assert_eq!(found, first);
        assert_eq!(
            ensure_collection(&plex, &section, title, None, &[])
                .await
                .unwrap_err()
                .code(),
            ErrorCode::ValidationError
        );
    }

    #[tokio::test]
    async fn files_are_matched_to_items_with_one_read_per_folder() {
        let (fake, plex) = server().await;
        let (dir, section, items) = scanned(&fake, &plex, &["a [aaa].mp4", "b [bbb].mp4"]).await;
        let season = dir.path().join("Channel/Season 2024");
        let path = |name: &str| season.join(name).to_string_lossy().into_owned();
        let reads = fake.requests("GET /library/sections/{key}/all");
        let found = find_items_by_files(
            &plex,
            &section,
            &[path("b [bbb].mp4"), path("zzz.mp4"), path("a [aaa].mp4")],
        )
        .await
        .unwrap();
        let keys: Vec<Option<&str>> = found
            .iter()
            .map(|i| i.as_ref().map(|i| i.rating_key.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                Some(items[1].rating_key.as_str()),
                None,
                Some(items[0].rating_key.as_str())
            ]
        );
        assert_eq!(fake.requests("GET /library/sections/{key}/all"), reads + 1);
        assert_eq!(folder_of("/a.mp4"), Some("/"));
        assert_eq!(folder_of("D:\\yt\\a.mp4"), Some("D:\\yt"));
        assert_eq!(folder_of("a.mp4"), None);
    }

    #[tokio::test]
    async fn a_file_without_an_item_is_none_and_an_unknown_section_not_found() {
        let (fake, plex) = server().await;
        let (dir, section, _items) = scanned(&fake, &plex, &["a [aaa].mp4"]).await;
        let missing = dir.path().join("Channel/Season 2024/zzz.mp4");
        let missing = missing.to_string_lossy();
        assert!(
            find_item_by_file(&plex, &section, &missing)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            find_item_by_file(&plex, "77", &missing)
                .await
                .unwrap_err()
                .code(),
            ErrorCode::NotFound
        );
        assert_eq!(
            find_item_by_file(&plex, &section, "relative.mp4")
                .await
                .unwrap_err()
                .code(),
            ErrorCode::ValidationError
        );
    }
}
