//! The YouTube hand-off to Plex against the fake PMS on loopback, with a completed download put
//! straight into the database (its files on disk): the library types and scan timings real
//! servers have.

use std::path::PathBuf;

use medianest::sim::plex::FakePlexServer;

use crate::support::{self, START_MS, TestState, insert_user};

/// A portal whose Plex is `plex`, downloading into a temporary folder: `(state, download dir)`.
async fn portal(plex: &FakePlexServer) -> (TestState, PathBuf) {
    let mut download_dir = PathBuf::new();
    let t = support::test_state_with(|c| {
        download_dir = c.data_dir.with_file_name("downloads");
        c.youtube.download_dir = Some(download_dir.clone());
        c.services.plex.url = Some(plex.url());
        c.services.plex.api_key = Some(medianest::config::Secret::new(plex.token()));
    });
    std::fs::create_dir_all(&download_dir).unwrap();
    support::prepare(&t).await;
    medianest::services::admin::rebuild_clients(&t.state)
        .await
        .unwrap();
    // The folder as the portal names it (PMS sees the same paths here).
    let download_dir = medianest::youtube::download_root(t.state.config());
    (t, download_dir)
}

/// Writes `names` into `folder` under the download dir and stores a completed playlist
/// download of them; returns its id.
async fn completed_download(
    t: &TestState,
    dir: &std::path::Path,
    folder: &str,
    names: &[&str],
) -> String {
    std::fs::create_dir_all(dir.join(folder)).unwrap();
    let mut files = Vec::new();
    for name in names {
        std::fs::write(dir.join(folder).join(name), b"x").unwrap();
        files.push(format!("{folder}/{name}"));
    }
    let user = insert_user(&t.state, "max", None, "user", None).await;
    let id = medianest::users::new_id();
    let (row_id, files) = (id.clone(), serde_json::to_string(&files).unwrap());
    let title = folder.to_owned();
    t.state
        .db()
        .write(move |tx| {
            tx.execute(
                "INSERT INTO youtube_downloads (id, user_id, url, kind, title, status, progress,
                                                file_paths, created_at, completed_at)
                 VALUES (?1, ?2, 'https://www.youtube.com/playlist?list=PLhandoff', 'playlist',
                         ?3, 'completed', 100, ?4, ?5, ?5)",
                rusqlite::params![row_id, user, title, files, START_MS],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    id
}

async fn collection_of(t: &TestState, id: &str) -> Option<String> {
    let id = id.to_owned();
    t.state
        .db()
        .run(move |conn| {
            Ok(conn.query_row(
                "SELECT plex_collection_id FROM youtube_downloads WHERE id = ?1",
                [id],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap()
}

/// In a show-type YouTube library the files are episodes, so the collection is made with
/// `type=4` (its items' type, as python-plexapi's `Collection._create` sends it); the section's
/// type 2 got PMS's 400 and a retry every five minutes for a week.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_type_youtube_library_gets_a_collection_of_episodes() {
    let plex = FakePlexServer::start().await.unwrap();
    let (t, dir) = portal(&plex).await;
    let section = plex.add_youtube_show_library("YouTube", &dir);
    plex.set_scan_reads(0);
    let id = completed_download(
        &t,
        &dir,
        "Lo-fi Mix",
        &["001 - Rain [aaa].mp4", "002 - Night [bbb].mp4"],
    )
    .await;

    let handed = medianest::youtube::handoff::retry_pending(&t.state).await;
    assert_eq!(handed, 1, "handed off at the first try");
    let collections = plex.collections();
    assert_eq!(collections.len(), 1);
    let c = &collections[0];
    assert_eq!(
        (c.section_key.as_str(), c.subtype.as_str()),
        (section.as_str(), "episode")
    );
    assert_eq!(c.title, "Lo-fi Mix");
    assert_eq!(c.items.len(), 2);
    assert_eq!(
        collection_of(&t, &id).await.as_deref(),
        Some(c.rating_key.as_str())
    );
    assert_eq!(
        plex.requests("POST /library/collections"),
        1,
        "no refused attempt"
    );
    assert_eq!(
        medianest::youtube::handoff::retry_pending(&t.state).await,
        0
    );
}

/// PMS queues the scan, so `refreshing` can read false before it starts: the hand-off waits for
/// the files instead of giving up at once and retrying five minutes later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_that_starts_late_still_hands_off_at_once() {
    let plex = FakePlexServer::start().await.unwrap();
    let (t, dir) = portal(&plex).await;
    plex.add_youtube_library("YouTube", &dir);
    plex.set_scan_start_reads(2);
    let id = completed_download(&t, &dir, "Late Mix", &["001 - a [aaa].mp4"]).await;

    assert_eq!(
        medianest::youtube::handoff::retry_pending(&t.state).await,
        1
    );
    let c = &plex.collections()[0];
    assert_eq!((c.title.as_str(), c.items.len()), ("Late Mix", 1));
    assert_eq!(
        collection_of(&t, &id).await.as_deref(),
        Some(c.rating_key.as_str())
    );
    assert_eq!(
        plex.requests("GET /library/sections/{key}/refresh"),
        1,
        "one scan"
    );
}
