//! The library client against the fake Plex server (`crate::sim::plex`) over real TCP.

use std::time::Duration;

use super::*;
use crate::error::{AppError, ErrorCode};
use crate::sim::plex::{COMPOSITE_JPEG, FakePlexServer, Fault, NewItem, THUMB_PNG};

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

fn code(result: AppResult<impl std::fmt::Debug>) -> ErrorCode {
    result.unwrap_err().code()
}

#[tokio::test]
async fn sections_and_pages_of_items() {
    let (fake, plex) = server().await;
    let movies = fake.add_library("movie", "Movies", "/data/movies");
    let shows = fake.add_library("show", "TV Shows", "/data/tv");
    for n in 0..5 {
        fake.add_item(&movies, NewItem::new(&format!("Film {n}"), 2000 + n))
            .unwrap();
    }
    fake.set_refreshing(&shows, true);

    let sections = plex.sections().await.unwrap();
    assert_eq!(sections.len(), 2);
    assert_eq!(
        (sections[0].key.as_str(), sections[0].kind.as_str()),
        (movies.as_str(), "movie")
    );
    assert_eq!(sections[0].locations, vec!["/data/movies".to_owned()]);
    assert!(!sections[0].refreshing && sections[1].refreshing);

    let page = plex.section_items(&movies, 1, 2).await.unwrap();
    assert_eq!((page.offset, page.total), (1, 5));
    let titles: Vec<_> = page.items.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(titles, ["Film 1", "Film 2"]);
    let first = &page.items[0];
    assert_eq!(first.year, Some(2001));
    assert_eq!(first.kind, "movie");
    assert!(
        first
            .thumb
            .as_deref()
            .unwrap()
            .starts_with("/library/metadata/")
    );
    assert_eq!(first.section_key.as_deref(), Some(movies.as_str()));

    // A count only, and an empty library, which PMS answers without a Metadata key.
    let count = plex.section_items(&movies, 0, 0).await.unwrap();
    assert_eq!((count.items.len(), count.total), (0, 5));
    let empty = plex.section_items(&shows, 0, 10).await.unwrap();
    assert_eq!((empty.items.len(), empty.total), (0, 0));

    assert_eq!(
        code(plex.section_items("99", 0, 10).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(plex.section_items("1/../2", 0, 10).await),
        ErrorCode::ValidationError
    );
    assert_eq!(fake.requests("GET /library/sections/{key}/all"), 4);
}

#[tokio::test]
async fn server_info_names_the_server() {
    let (fake, plex) = server().await;
    fake.set_friendly_name("Basement");
    let info = plex.server_info().await.unwrap();
    assert_eq!(info.name, "Basement");
    assert_eq!(info.machine_identifier, fake.machine_identifier());
    assert_eq!(info.version, crate::sim::plex::VERSION);
    assert_eq!(info.platform.as_deref(), Some("Linux"));
}

#[tokio::test]
async fn search_recent_and_collections() {
    let (fake, plex) = server().await;
    let movies = fake.add_library("movie", "Movies", "/data/movies");
    let shows = fake.add_library("show", "TV Shows", "/data/tv");
    let iron = fake
        .add_item(
            &movies,
            NewItem::new("Iron Man", 2008).summary("Tony builds a suit."),
        )
        .unwrap();
    let iron2 = fake
        .add_item(&movies, NewItem::new("Iron Man 2", 2010))
        .unwrap();
    fake.add_item(&shows, NewItem::new("The Iron Chef", 1993))
        .unwrap();
    let newest = fake.add_item(&movies, NewItem::new("Up", 2009)).unwrap();
    let saga = fake
        .add_collection(&movies, "Iron Man Saga", &[&iron, &iron2])
        .unwrap();

    let found = plex.search("iron", 10).await.unwrap();
    let titles: Vec<_> = found.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(
        titles,
        ["Iron Man", "Iron Man 2", "The Iron Chef", "Iron Man Saga"]
    );
    assert_eq!(found[0].summary.as_deref(), Some("Tony builds a suit."));
    assert_eq!(plex.search("iron", 2).await.unwrap().len(), 2);
    assert!(plex.search("nothing like it", 10).await.unwrap().is_empty());
    // Reserved characters travel percent-encoded.
    assert!(plex.search("a&b=c?#", 10).await.unwrap().is_empty());

    let recent = plex.recently_added(2).await.unwrap();
    assert_eq!(recent.len(), 2);
    assert_eq!(recent[0].rating_key, newest);
    assert!(recent[0].added_at > recent[1].added_at);

    let collections = plex.collections(&movies).await.unwrap();
    assert_eq!(collections.len(), 1);
    assert_eq!(collections[0].rating_key, saga);
    assert_eq!(collections[0].kind, "collection");
    assert_eq!(collections[0].subtype.as_deref(), Some("movie"));
    // `childCount` arrives as a string.
    assert_eq!(collections[0].child_count, Some(2));
    assert!(plex.collections(&shows).await.unwrap().is_empty());

    let one = plex.collection(&saga).await.unwrap();
    assert_eq!(one.title, "Iron Man Saga");
    let items = plex.collection_items(&saga).await.unwrap();
    let keys: Vec<_> = items.iter().map(|i| i.rating_key.clone()).collect();
    assert_eq!(keys, [iron.clone(), iron2]);
    assert_eq!(code(plex.collection("424242").await), ErrorCode::NotFound);
    assert_eq!(
        code(plex.collection_items("424242").await),
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn images_come_as_bytes_with_their_type() {
    let (fake, plex) = server().await;
    let movies = fake.add_library("movie", "Movies", "/data/movies");
    let key = fake.add_item(&movies, NewItem::new("Up", 2009)).unwrap();
    let saga = fake.add_collection(&movies, "Pixar", &[&key]).unwrap();
    let thumb = plex.section_items(&movies, 0, 1).await.unwrap().items[0]
        .thumb
        .clone()
        .unwrap();

    let image = plex.image(&thumb, None, None).await.unwrap();
    assert_eq!(image.content_type, "image/png");
    assert_eq!(image.bytes, THUMB_PNG);
    let resized = plex.image(&thumb, Some(300), Some(450)).await.unwrap();
    assert_eq!(
        (resized.content_type.as_str(), resized.bytes.as_slice()),
        ("image/jpeg", COMPOSITE_JPEG)
    );
    let composite = plex.collection(&saga).await.unwrap().thumb.unwrap();
    assert_eq!(
        plex.image(&composite, None, None).await.unwrap().bytes,
        COMPOSITE_JPEG
    );

    assert_eq!(
        code(
            plex.image("/library/metadata/999/thumb/1", None, None)
                .await
        ),
        ErrorCode::NotFound
    );
    for bad in [
        "/identity",
        "/library/x?X-Plex-Token=t",
        "/library/../identity",
        "/library/sections",
        "/library/sections/1/refresh",
    ] {
        assert_eq!(
            code(plex.image(bad, None, None).await),
            ErrorCode::ValidationError
        );
    }
}

#[tokio::test]
async fn failures_are_bounded_upstream_errors() {
    let (fake, plex) = server().await;
    fake.add_library("movie", "Movies", "/data/movies");
    fake.fail_next(1, Fault::Garbage);
    assert_eq!(code(plex.sections().await), ErrorCode::UpstreamError);
    fake.fail_next(3, Fault::Status(503));
    assert_eq!(code(plex.sections().await), ErrorCode::UpstreamError);
    let wrong_token = PlexServer::new(
        &fake.url(),
        Some("not-the-token".into()),
        UpstreamOptions::with_timeout_ms(2000),
        crate::clock::system(),
    );
    let e = wrong_token.sections().await.unwrap_err();
    assert!(
        matches!(e, AppError::Upstream { .. }) && e.to_string().contains("401"),
        "{e}"
    );
    assert!(!e.to_string().contains("not-the-token"));
}

#[tokio::test]
async fn a_scan_finds_new_files_and_they_go_into_a_collection() {
    let (fake, plex) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let youtube = fake.add_youtube_library("YouTube", dir.path());
    let playlist = dir.path().join("Lo-fi Mix");
    std::fs::create_dir(&playlist).unwrap();
    for name in [
        "001 - Rain [aaa].mp4",
        "002 - Night [bbb].webm",
        "notes.txt",
    ] {
        std::fs::write(playlist.join(name), b"x").unwrap();
    }
    std::fs::write(dir.path().join("elsewhere.mp4"), b"x").unwrap();
    let folder = playlist.to_string_lossy().into_owned();

    assert!(!plex.is_refreshing(&youtube).await.unwrap());
    plex.scan(&youtube, &folder).await.unwrap();
    // The default fake scan shows `refreshing` once, then ends with the files as items.
    assert!(plex.is_refreshing(&youtube).await.unwrap());
    assert!(
        plex.wait_for_scan(&youtube, Duration::from_millis(10), Duration::from_secs(2))
            .await
            .unwrap()
    );
    let items = plex.items_under(&youtube, &folder).await.unwrap();
    let titles: Vec<_> = items.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(titles, ["001 - Rain [aaa]", "002 - Night [bbb]"]);
    assert!(items[0].files[0].ends_with("001 - Rain [aaa].mp4"));
    assert_eq!(fake.items(&youtube).len(), 2, "nothing outside the folder");

    let first = vec![items[0].rating_key.clone()];
    let collection = plex
        .create_collection(&youtube, "YT: Lo-fi Mix", &items[..1])
        .await
        .unwrap();
    let second = vec![items[1].rating_key.clone(), items[0].rating_key.clone()];
    plex.add_to_collection(&collection, &second).await.unwrap();
    let made = fake.collections();
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].rating_key, collection);
    assert_eq!(made[0].title, "YT: Lo-fi Mix");
    assert_eq!(made[0].section_key, youtube);
    assert_eq!(
        made[0].items,
        [items[0].rating_key.clone(), items[1].rating_key.clone()]
    );
    let found = plex
        .find_collection(&youtube, "yt: lo-fi mix")
        .await
        .unwrap();
    assert_eq!(found.unwrap().rating_key, collection);
    assert_eq!(
        fake.requests("GET /identity"),
        1,
        "the machine id is asked once"
    );

    // A second scan of the same folder adds nothing twice.
    fake.set_scan_reads(0);
    plex.scan(&youtube, &folder).await.unwrap();
    assert_eq!(plex.items_under(&youtube, &folder).await.unwrap().len(), 2);

    assert_eq!(
        code(plex.create_collection(&youtube, "Empty", &[]).await),
        ErrorCode::ValidationError
    );
    assert_eq!(
        code(plex.add_to_collection("424242", &first).await),
        ErrorCode::NotFound
    );
    assert_eq!(code(plex.scan("99", &folder).await), ErrorCode::NotFound);
    assert_eq!(
        code(plex.scan(&youtube, "relative/dir").await),
        ErrorCode::ValidationError
    );
}

#[tokio::test]
async fn waiting_for_a_scan_gives_up_at_its_limit() {
    let (fake, plex) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let youtube = fake.add_youtube_library("YouTube", dir.path());
    fake.set_refreshing(&youtube, true);
    let began = std::time::Instant::now();
    let done = plex
        .wait_for_scan(
            &youtube,
            Duration::from_millis(20),
            Duration::from_millis(100),
        )
        .await
        .unwrap();
    assert!(!done);
    assert!(began.elapsed() < Duration::from_secs(1));
    fake.set_refreshing(&youtube, false);
    assert!(
        plex.wait_for_scan(
            &youtube,
            Duration::from_millis(20),
            Duration::from_millis(100)
        )
        .await
        .unwrap()
    );
    assert_eq!(
        code(
            plex.wait_for_scan("99", Duration::ZERO, Duration::ZERO)
                .await
        ),
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn a_collection_of_the_wrong_type_is_refused() {
    let (fake, plex) = server().await;
    let movies = fake.add_library("movie", "Movies", "/data/movies");
    let shows = fake.add_library("show", "TV Shows", "/data/tv");
    fake.add_item(&shows, NewItem::new("Show", 2001)).unwrap();
    let show = plex.section_items(&shows, 0, 10).await.unwrap().items;
    assert_eq!(show[0].kind, "show");
    // PMS's bare 400 page for an item of another type.
    let e = plex
        .create_collection(&movies, "Mixed", &show)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::UpstreamError);
    assert!(e.to_string().contains("400"), "{e}");
    assert!(fake.collections().is_empty());

    // Types are not mixed in one collection; python-plexapi refuses that before asking PMS.
    let mut mixed = show.clone();
    let mut other = show[0].clone();
    other.kind = "movie".into();
    mixed.push(other);
    assert_eq!(
        code(plex.create_collection(&shows, "Mixed", &mixed).await),
        ErrorCode::ValidationError
    );
}

/// A show-type library: a scan makes episodes of the files, and their collection is type 4
/// (episodes), the type of its items, as python-plexapi's `Collection._create` sends it; the
/// section's type (2, show) is refused by PMS with a 400.
#[tokio::test]
async fn a_collection_in_a_show_library_is_of_episodes() {
    let (fake, plex) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let youtube = fake.add_youtube_show_library("YouTube", dir.path());
    let playlist = dir.path().join("Lo-fi Mix");
    std::fs::create_dir(&playlist).unwrap();
    for name in ["001 - Rain [aaa].mp4", "002 - Night [bbb].mp4"] {
        std::fs::write(playlist.join(name), b"x").unwrap();
    }
    let folder = playlist.to_string_lossy().into_owned();
    fake.set_scan_reads(0);
    plex.scan(&youtube, &folder).await.unwrap();
    let items = plex.items_under(&youtube, &folder).await.unwrap();
    let kinds: Vec<&str> = items.iter().map(|i| i.kind.as_str()).collect();
    assert_eq!(kinds, ["episode", "episode"]);
    assert_eq!(
        plex.section_items(&youtube, 0, 10)
            .await
            .unwrap()
            .items
            .len(),
        0,
        "the section's own listing is of shows, not their episodes"
    );

    // What the client sent before: the section's type.
    let mut as_shows = items.clone();
    for item in &mut as_shows {
        item.kind = "show".into();
    }
    let e = plex
        .create_collection(&youtube, "Wrong", &as_shows)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("400"), "{e}");
    assert!(fake.collections().is_empty());

    let collection = plex
        .create_collection(&youtube, "Lo-fi Mix", &items)
        .await
        .unwrap();
    let made = fake.collections();
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].rating_key, collection);
    assert_eq!(made[0].subtype, "episode");
    assert_eq!(made[0].items.len(), 2);
    assert!(
        fake.requests("POST /library/collections") == 2,
        "one refused, one made"
    );
}

/// PMS queues a scan: right after `refresh?path=` the section can still read `refreshing`
/// false with nothing found (python-plexapi `LibrarySection.update` returns at once). Waiting
/// for the files, or for the scan to be seen running and over, finds them.
#[tokio::test]
async fn a_scan_that_starts_late_is_waited_for() {
    let (fake, plex) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let youtube = fake.add_youtube_library("YouTube", dir.path());
    let playlist = dir.path().join("Mix");
    std::fs::create_dir(&playlist).unwrap();
    let mut wanted = Vec::new();
    for name in ["001 - a.mp4", "002 - b.mp4"] {
        std::fs::write(playlist.join(name), b"x").unwrap();
        wanted.push(playlist.join(name).to_string_lossy().into_owned());
    }
    let folder = playlist.to_string_lossy().into_owned();
    let (every, limit) = (Duration::from_millis(5), Duration::from_secs(5));

    // Two reads before the scan starts, one while it runs.
    fake.set_scan_start_reads(2);
    plex.scan(&youtube, &folder).await.unwrap();
    // What "wait for the scan" alone sees: not refreshing, nothing there yet.
    assert!(plex.wait_for_scan(&youtube, every, limit).await.unwrap());
    assert!(
        plex.items_under(&youtube, &folder)
            .await
            .unwrap()
            .is_empty()
    );
    let items = plex
        .wait_for_files(&youtube, &folder, &wanted, every, limit)
        .await
        .unwrap();
    assert_eq!(items.len(), 2);

    // A scan too quick to be seen running: the files appearing is enough.
    let more = playlist.join("003 - c.mp4");
    std::fs::write(&more, b"x").unwrap();
    wanted.push(more.to_string_lossy().into_owned());
    fake.set_scan_reads(0);
    fake.set_scan_start_reads(3);
    plex.scan(&youtube, &folder).await.unwrap();
    let items = plex
        .wait_for_files(&youtube, &folder, &wanted, every, limit)
        .await
        .unwrap();
    assert_eq!(items.len(), 3);

    // A scan that never starts: given up at the limit with what is there, having polled the
    // cheap `refreshing` often and read the (paged) items only at a backoff.
    fake.set_scan_start_reads(u32::MAX);
    let missing = vec![format!("{folder}/004 - never.mp4")];
    plex.scan(&youtube, &folder).await.unwrap();
    let polls_before = fake.requests("GET /library/sections");
    let reads_before = fake.requests("GET /library/sections/{key}/all");
    let began = std::time::Instant::now();
    let items = plex
        .wait_for_files(
            &youtube,
            &folder,
            &missing,
            every,
            Duration::from_millis(200),
        )
        .await
        .unwrap();
    assert_eq!(items.len(), 3);
    assert!(began.elapsed() < Duration::from_secs(1));
    let polls = fake.requests("GET /library/sections") - polls_before;
    let reads = fake.requests("GET /library/sections/{key}/all") - reads_before;
    assert!(polls >= 8, "refreshing polled {polls} times");
    assert!(reads * 2 < polls, "{reads} item reads for {polls} polls");
}
