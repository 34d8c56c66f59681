//! Subscription retention and a user's "keep" and delete, on a WAL database file with real files
//! in the temporary download dir and the simulated Plex on loopback: the newest N and the age
//! rules prune the right items (files gone, `pruned`, bytes fixed, the download row's files
//! cleared, the id still archived), kept items never go, nothing outside the subscriptions
//! folder is ever deleted (`..`, absolute paths, links out), Plex is asked to scan the folders
//! that changed, and a check runs retention.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::http::StatusCode;
use medianest::sim::plex::FakePlexServer;
use medianest::youtube::subscriptions::model::Settings;
use medianest::youtube::subscriptions::{retention, scheduler, store};
use serde_json::{Value, json};

use crate::support::{
    self, START_MS, TestState, assert_error, call, eventually, insert_user, new_session,
};

const SUBS: &str = "/api/v1/youtube/subscriptions";
const DAY_MS: i64 = 24 * 3600 * 1000;
const BIN: &str = env!("CARGO_BIN_EXE_medianest");

struct World {
    t: TestState,
    app: Router,
    /// The download dir as the portal names it (canonical).
    dir: PathBuf,
    plex: Option<(FakePlexServer, String)>,
    admin: String,
    ann_id: String,
    ann: String,
    bob: String,
}

/// A portal on a database file with a temporary download dir, its Plex the simulated one (a
/// "YouTube" library and a show-type "Subscriptions" one, both on the download dir) when
/// `with_plex`, and with the simulated yt-dlp when `sim_dir` is given.
async fn world(with_plex: bool, sim_dir: Option<&mut PathBuf>) -> World {
    let plex = if with_plex {
        Some(FakePlexServer::start().await.unwrap())
    } else {
        None
    };
    let mut download_dir = PathBuf::new();
    let t = support::test_state_with_db(
        |c| {
            download_dir = c.data_dir.with_file_name("downloads");
            c.youtube.download_dir = Some(download_dir.clone());
            if let Some(plex) = &plex {
                c.services.plex.url = Some(plex.url());
                c.services.plex.api_key = Some(medianest::config::Secret::new(plex.token()));
            }
            if let Some(sim_dir) = sim_dir {
                *sim_dir = c.data_dir.with_file_name("sim");
                let program = medianest::sim::ytdlp::install(sim_dir, Path::new(BIN)).unwrap();
                std::fs::write(sim_dir.join("sim-step-ms"), "1").unwrap();
                c.youtube.ytdlp_path = program.to_string_lossy().into_owned();
            }
        },
        support::file_db,
    );
    std::fs::create_dir_all(download_dir.join("subscriptions")).unwrap();
    support::prepare(&t).await;
    medianest::services::admin::rebuild_clients(&t.state)
        .await
        .unwrap();
    let dir = medianest::youtube::download_root(t.state.config());
    // Downloads have their library, subscriptions theirs: the one scanned.
    let plex = plex.map(|plex| {
        plex.add_youtube_library("YouTube", &dir);
        let section = plex.add_youtube_show_library("Subscriptions", &dir);
        (plex, section)
    });
    let app = t.router();
    let admin_id = insert_user(&t.state, "boss", None, "admin", None).await;
    let admin = new_session(&t.state, &admin_id).await.token;
    let ann_id = insert_user(&t.state, "ann", None, "user", None).await;
    let ann = new_session(&t.state, &ann_id).await.token;
    let bob_id = insert_user(&t.state, "bob", None, "user", None).await;
    let bob = new_session(&t.state, &bob_id).await.token;
    World {
        t,
        app,
        dir,
        plex,
        admin,
        ann_id,
        ann,
        bob,
    }
}

/// One archive row as the database holds it.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    status: String,
    files: String,
    bytes: i64,
    keep: bool,
}

impl World {
    /// An active subscription of ann's to `@handle` with these retention settings.
    async fn subscription(
        &self,
        handle: &str,
        keep_latest: Option<i64>,
        keep_days: Option<i64>,
    ) -> String {
        let source =
            medianest::youtube::url::parse_source(&format!("https://www.youtube.com/@{handle}"))
                .unwrap();
        let owner = self.ann_id.clone();
        let settings = Settings {
            keep_latest,
            keep_days,
            ..Settings::default()
        };
        self.t
            .state
            .db()
            .write(move |tx| store::insert(tx, &owner, &source, "active", &settings, START_MS))
            .await
            .unwrap()
    }

    /// A downloaded item of `sub`: its files (paths relative to the download dir) written
    /// where they resolve (unless the path leaves the dir), its completed download row, its
    /// bytes added to the subscription's. Returns `(item id, download id)`.
    async fn downloaded(
        &self,
        sub: &str,
        video: &str,
        upload_date: Option<&str>,
        files: &[&str],
        bytes: i64,
    ) -> (String, String) {
        for file in files {
            let path = self.dir.join(file);
            if medianest::youtube::ytdlp::is_inside(&self.dir, &path) && !path.exists() {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, b"video").unwrap();
            }
        }
        self.item(
            sub,
            video,
            "downloaded",
            upload_date,
            files,
            bytes,
            START_MS,
        )
        .await
    }

    /// An archive row (and its download row) written directly.
    #[allow(clippy::too_many_arguments)]
    async fn item(
        &self,
        sub: &str,
        video: &str,
        status: &str,
        upload_date: Option<&str>,
        files: &[&str],
        bytes: i64,
        created_at: i64,
    ) -> (String, String) {
        let item = medianest::users::new_id();
        let download = medianest::users::new_id();
        let files = serde_json::to_string(files).unwrap();
        let (i, d, s, v, st, u, owner) = (
            item.clone(),
            download.clone(),
            sub.to_owned(),
            video.to_owned(),
            status.to_owned(),
            upload_date.map(str::to_owned),
            self.ann_id.clone(),
        );
        self.t
            .state
            .db()
            .write(move |tx| {
                let download_status = if st == "queued" {
                    "queued"
                } else {
                    "completed"
                };
                tx.execute(
                    "INSERT INTO youtube_downloads (id, user_id, url, kind, title, status,
                                                    file_paths, created_at)
                     VALUES (?1, ?2, ?3, 'video', ?4, ?5, ?6, ?7)",
                    rusqlite::params![
                        d,
                        owner,
                        format!("https://www.youtube.com/watch?v={v}"),
                        format!("Video {v}"),
                        download_status,
                        files,
                        created_at
                    ],
                )?;
                tx.execute(
                    "INSERT INTO youtube_subscription_items (id, subscription_id, video_id,
                         status, title, upload_date, download_id, file_paths, bytes, created_at,
                         updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
                    rusqlite::params![
                        i,
                        s,
                        v,
                        st,
                        format!("Video {v}"),
                        u,
                        d,
                        files,
                        bytes,
                        created_at
                    ],
                )?;
                tx.execute(
                    "UPDATE youtube_subscriptions
                        SET bytes = bytes + ?2, item_count = item_count + 1 WHERE id = ?1",
                    rusqlite::params![s, bytes],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        (item, download)
    }

    async fn row(&self, item: &str) -> Row {
        let item = item.to_owned();
        self.t
            .state
            .db()
            .run(move |conn| {
                Ok(conn.query_row(
                    "SELECT status, file_paths, bytes, keep FROM youtube_subscription_items
                      WHERE id = ?1",
                    [item],
                    |r| {
                        Ok(Row {
                            status: r.get(0)?,
                            files: r.get(1)?,
                            bytes: r.get(2)?,
                            keep: r.get(3)?,
                        })
                    },
                )?)
            })
            .await
            .unwrap()
    }

    async fn sub_bytes(&self, sub: &str) -> i64 {
        support::scalar(
            &self.t.state,
            "SELECT bytes FROM youtube_subscriptions WHERE id = ?1",
            vec![support::sql_text(sub)],
        )
        .await
    }

    async fn download_files(&self, download: &str) -> String {
        support::text_value(
            &self.t.state,
            "SELECT file_paths FROM youtube_downloads WHERE id = ?1",
            vec![support::sql_text(download)],
        )
        .await
        .unwrap()
    }

    async fn archived(&self, sub: &str, video: &str) -> bool {
        let (sub, video) = (sub.to_owned(), video.to_owned());
        self.t
            .state
            .db()
            .run(move |conn| store::is_archived(conn, &sub, &video))
            .await
            .unwrap()
    }

    async fn prune(&self, sub: &str) -> usize {
        retention::prune(&self.t.state, sub).await.unwrap()
    }

    /// The scans Plex was asked for, as paths relative to the download dir.
    fn scans(&self) -> Vec<String> {
        let (plex, section) = self.plex.as_ref().unwrap();
        plex.scans()
            .into_iter()
            .map(|(key, path)| {
                assert_eq!(&key, section, "the subscriptions' library is scanned");
                Path::new(&path)
                    .strip_prefix(&self.dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }

    fn exists(&self, file: &str) -> bool {
        self.dir.join(file).exists()
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> support::TestResponse {
        let mut request = call(method, path).bearer(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send(&self.app).await
    }
}

fn season(year: u32, name: &str) -> String {
    format!("subscriptions/Chan/Season {year}/{name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeping_the_newest_two_prunes_the_two_oldest_and_plex_scans_their_folders() {
    let w = world(true, None).await;
    let sub = w.subscription("chan", Some(2), None).await;
    let poster = "subscriptions/Chan/poster.jpg";
    std::fs::create_dir_all(w.dir.join("subscriptions/Chan")).unwrap();
    std::fs::write(w.dir.join(poster), b"jpg").unwrap();
    let (a_file, b_file) = (
        season(2024, "a [aaaaaaaaaaa].mp4"),
        season(2025, "b [bbbbbbbbbbb].mp4"),
    );
    let (c_file, d_file) = (
        season(2025, "c [ccccccccccc].mp4"),
        season(2025, "d [ddddddddddd].mp4"),
    );
    let a_thumb = season(2024, "a [aaaaaaaaaaa].jpg");
    let (a, a_dl) = w
        .downloaded(
            &sub,
            "aaaaaaaaaaa",
            Some("2024-12-30"),
            &[&a_file, &a_thumb],
            100,
        )
        .await;
    let (b, b_dl) = w
        .downloaded(&sub, "bbbbbbbbbbb", Some("2025-01-02"), &[&b_file], 200)
        .await;
    let (c, c_dl) = w
        .downloaded(&sub, "ccccccccccc", Some("2025-03-01"), &[&c_file], 400)
        .await;
    let (d, _) = w
        .downloaded(&sub, "ddddddddddd", Some("2025-06-01"), &[&d_file], 800)
        .await;
    // Not downloaded: not counted, not pruned.
    let (q, _) = w
        .item(
            &sub,
            "qqqqqqqqqqq",
            "queued",
            Some("2020-01-01"),
            &[],
            0,
            START_MS,
        )
        .await;
    assert_eq!(w.sub_bytes(&sub).await, 1500);

    assert_eq!(w.prune(&sub).await, 2);

    for (item, file) in [(&a, &a_file), (&b, &b_file)] {
        assert!(!w.exists(file), "{file} is gone");
        let row = w.row(item).await;
        assert_eq!(
            (row.status.as_str(), row.files.as_str(), row.bytes),
            ("pruned", "[]", 0)
        );
    }
    assert!(!w.exists(&a_thumb));
    for (item, file) in [(&c, &c_file), (&d, &d_file)] {
        assert!(w.exists(file), "{file} stays");
        assert_eq!(w.row(item).await.status, "downloaded");
    }
    assert_eq!(w.row(&q).await.status, "queued");
    assert_eq!(w.sub_bytes(&sub).await, 1200);
    assert_eq!(w.download_files(&a_dl).await, "[]");
    assert_eq!(w.download_files(&b_dl).await, "[]");
    assert_eq!(w.download_files(&c_dl).await, json!([c_file]).to_string());
    // The ids stay in the archive: they are never downloaded again.
    assert!(w.archived(&sub, "aaaaaaaaaaa").await);
    assert!(w.archived(&sub, "bbbbbbbbbbb").await);
    // The emptied season folder went (Plex scans the show's folder instead); the poster stays.
    assert!(!w.dir.join("subscriptions/Chan/Season 2024").exists());
    assert!(w.exists(poster));
    let mut scans = w.scans();
    scans.sort();
    assert_eq!(
        scans,
        ["subscriptions/Chan", "subscriptions/Chan/Season 2025"]
    );
    // The downloads list no longer shows the files.
    let r = w
        .send(
            "GET",
            &format!("/api/v1/youtube/downloads/{a_dl}"),
            &w.ann,
            None,
        )
        .await;
    assert_eq!(r.data()["files"], json!([]));

    // Nothing more to do: nothing changes, Plex is not asked again.
    assert_eq!(w.prune(&sub).await, 0);
    assert_eq!(w.scans().len(), 2);
    assert_eq!(w.sub_bytes(&sub).await, 1200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_item_is_never_pruned_but_counts_toward_the_newest() {
    let w = world(true, None).await;
    let sub = w.subscription("chan", Some(1), Some(30)).await;
    let (old, new, newest) = (
        season(2024, "old.mp4"),
        season(2025, "new.mp4"),
        season(2025, "newest.mp4"),
    );
    let (a, _) = w
        .downloaded(&sub, "aaaaaaaaaaa", Some("2024-01-01"), &[&old], 10)
        .await;
    let (b, _) = w
        .downloaded(&sub, "bbbbbbbbbbb", Some("2025-06-10"), &[&new], 20)
        .await;
    let (c, _) = w
        .downloaded(&sub, "ccccccccccc", Some("2025-06-12"), &[&newest], 40)
        .await;
    // Ann keeps the oldest (too old and beyond the newest one) and the newest.
    for item in [&a, &c] {
        let r = w
            .send(
                "PATCH",
                &format!("{SUBS}/{sub}/items/{item}"),
                &w.ann,
                Some(json!({"keep": true})),
            )
            .await;
        assert_eq!(r.data()["keep"], true);
    }
    // Only b goes: the newest (kept) counts as the one to keep.
    assert_eq!(w.prune(&sub).await, 1);
    assert_eq!(w.row(&b).await.status, "pruned");
    assert!(!w.exists(&new));
    for (item, file) in [(&a, &old), (&c, &newest)] {
        let row = w.row(item).await;
        assert_eq!((row.status.as_str(), row.keep), ("downloaded", true));
        assert!(w.exists(file));
    }
    assert_eq!(w.prune(&sub).await, 0);
    assert_eq!(w.sub_bytes(&sub).await, 50);

    // No longer kept: it goes at the next prune.
    let r = w
        .send(
            "PATCH",
            &format!("{SUBS}/{sub}/items/{a}"),
            &w.admin,
            Some(json!({"keep": false})),
        )
        .await;
    assert_eq!(r.data()["keep"], false);
    assert_eq!(w.prune(&sub).await, 1);
    assert_eq!(w.row(&a).await.status, "pruned");
    assert!(!w.exists(&old));
    assert_eq!(w.row(&c).await.status, "downloaded");
    assert_eq!(w.sub_bytes(&sub).await, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_days_prunes_what_is_older_even_with_plex_down() {
    let w = world(true, None).await;
    let sub = w.subscription("chan", None, Some(30)).await;
    // START_MS is 2025-06-15: 30 days before is 2025-05-16.
    let files: Vec<String> = ["old", "young", "undated-old", "undated-young", "edge"]
        .iter()
        .map(|n| season(2025, &format!("{n}.mp4")))
        .collect();
    let (old, _) = w
        .downloaded(&sub, "ooooooooooo", Some("2025-05-15"), &[&files[0]], 1)
        .await;
    let (young, _) = w
        .downloaded(&sub, "yyyyyyyyyyy", Some("2025-06-10"), &[&files[1]], 2)
        .await;
    std::fs::write(w.dir.join(&files[2]), b"x").unwrap();
    std::fs::write(w.dir.join(&files[3]), b"x").unwrap();
    let (undated_old, _) = w
        .item(
            &sub,
            "uuuuuuuuuuu",
            "downloaded",
            None,
            &[&files[2]],
            4,
            START_MS - 31 * DAY_MS,
        )
        .await;
    let (undated_young, _) = w
        .item(
            &sub,
            "vvvvvvvvvvv",
            "downloaded",
            None,
            &[&files[3]],
            8,
            START_MS - DAY_MS,
        )
        .await;
    let (edge, _) = w
        .downloaded(&sub, "eeeeeeeeeee", Some("2025-05-16"), &[&files[4]], 16)
        .await;
    // Plex is down: the files go all the same.
    let (plex, _) = w.plex.as_ref().unwrap();
    plex.shutdown().await;

    assert_eq!(w.prune(&sub).await, 2);
    assert_eq!(w.row(&old).await.status, "pruned");
    assert_eq!(w.row(&undated_old).await.status, "pruned");
    assert!(!w.exists(&files[0]) && !w.exists(&files[2]));
    for item in [&young, &undated_young, &edge] {
        assert_eq!(w.row(item).await.status, "downloaded");
    }
    assert!(w.exists(&files[1]) && w.exists(&files[3]) && w.exists(&files[4]));
    assert_eq!(w.sub_bytes(&sub).await, 2 + 8 + 16);

    // Time passes: a day later the edge is older than 30 days.
    w.t.clock.advance(DAY_MS);
    assert_eq!(w.prune(&sub).await, 1);
    assert_eq!(w.row(&edge).await.status, "pruned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_outside_the_subscriptions_folder_are_never_deleted() {
    let w = world(true, None).await;
    let sub = w.subscription("chan", Some(1), None).await;
    let base = w.dir.parent().unwrap().to_path_buf();
    let outside = base.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let victim = outside.join("victim.mp4");
    std::fs::write(&victim, b"precious").unwrap();
    // Someone else's download, next to the subscriptions folder.
    let neighbour = w.dir.join("ann_1/Mix/song.mp4");
    std::fs::create_dir_all(neighbour.parent().unwrap()).unwrap();
    std::fs::write(&neighbour, b"precious").unwrap();
    // A link to the victim in a season folder, and a show folder that is a link out.
    let inside = season(2024, "real.mp4");
    std::fs::create_dir_all(w.dir.join("subscriptions/Chan/Season 2024")).unwrap();
    std::os::unix::fs::symlink(&victim, w.dir.join(season(2024, "link.mp4"))).unwrap();
    std::os::unix::fs::symlink(&outside, w.dir.join("subscriptions/Out")).unwrap();
    let bad = [
        "../outside/victim.mp4".to_owned(),
        victim.to_string_lossy().into_owned(),
        "subscriptions/../ann_1/Mix/song.mp4".to_owned(),
        season(2024, "link.mp4"),
        "subscriptions/Out/victim.mp4".to_owned(),
        "subscriptions/Chan/Season 2024".to_owned(),
    ];
    let mut paths: Vec<&str> = bad.iter().map(String::as_str).collect();
    paths.push(&inside);
    let (old, _) = w
        .downloaded(&sub, "ooooooooooo", Some("2024-01-01"), &paths, 5)
        .await;
    w.downloaded(
        &sub,
        "nnnnnnnnnnn",
        Some("2025-01-01"),
        &[&season(2025, "n.mp4")],
        7,
    )
    .await;

    assert_eq!(w.prune(&sub).await, 1);
    assert_eq!(w.row(&old).await.status, "pruned");
    assert!(!w.exists(&inside), "the file inside goes");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert_eq!(std::fs::read(&neighbour).unwrap(), b"precious");
    assert!(
        w.dir.join(season(2024, "link.mp4")).is_symlink(),
        "links are left alone"
    );
    assert!(w.dir.join("subscriptions/Chan/Season 2024").is_dir());
    assert_eq!(w.sub_bytes(&sub).await, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_and_delete_answer_the_owner_and_admins_with_clear_errors() {
    let w = world(true, None).await;
    let sub = w.subscription("chan", None, None).await;
    let other_sub = w.subscription("other", None, None).await;
    let file = season(2025, "a.mp4");
    let (item, download) = w
        .downloaded(&sub, "aaaaaaaaaaa", Some("2025-06-01"), &[&file], 100)
        .await;
    let (queued, _) = w
        .item(
            &sub,
            "qqqqqqqqqqq",
            "queued",
            Some("2025-06-02"),
            &[],
            0,
            START_MS,
        )
        .await;
    let (elsewhere, _) = w
        .downloaded(
            &other_sub,
            "eeeeeeeeeee",
            Some("2025-06-01"),
            &[&season(2025, "e.mp4")],
            3,
        )
        .await;
    let path = format!("{SUBS}/{sub}/items/{item}");

    // Keep: the item as the items list shows it.
    let r = w
        .send("PATCH", &path, &w.ann, Some(json!({"keep": true})))
        .await;
    let shown = r.data();
    assert_eq!((&shown["id"], &shown["keep"]), (&json!(item), &json!(true)));
    let list = w
        .send("GET", &format!("{SUBS}/{sub}/items"), &w.ann, None)
        .await
        .data();
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == json!(item))
        .unwrap()
        .clone();
    assert_eq!(listed, shown);

    // Bad bodies.
    for (body, fields) in [
        (json!({}), vec!["keep"]),
        (json!({"keep": "yes"}), vec!["keep"]),
        (json!({"keep": null}), vec!["keep"]),
        (json!({"keep": true, "title": "x"}), vec!["title"]),
    ] {
        let r = w.send("PATCH", &path, &w.ann, Some(body.clone())).await;
        let error = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        let mut names: Vec<&String> = error["details"]["fields"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        names.sort();
        assert_eq!(names, fields, "{body}");
    }
    let r = w.send("PATCH", &path, &w.ann, Some(json!([true]))).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    let r = call("PATCH", &path)
        .bearer(&w.ann)
        .header("content-type", "application/json")
        .send(&w.app)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());

    // Someone else's subscription, an unknown item, another subscription's item: 404.
    let r = w
        .send("PATCH", &path, &w.bob, Some(json!({"keep": false})))
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    let r = w.send("DELETE", &path, &w.bob, None).await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    for missing in [
        format!("{SUBS}/{sub}/items/nope"),
        format!("{SUBS}/{sub}/items/{elsewhere}"),
        format!("{SUBS}/nope/items/{item}"),
    ] {
        let r = w
            .send("PATCH", &missing, &w.admin, Some(json!({"keep": true})))
            .await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
        let r = w.send("DELETE", &missing, &w.admin, None).await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    assert!(w.row(&item).await.keep, "unchanged by the refusals");
    assert!(w.exists(&file));

    // With the session cookie, a write needs the CSRF token.
    let session = new_session(&w.t.state, &w.ann_id).await;
    for (method, body) in [("PATCH", Some(json!({"keep": true}))), ("DELETE", None)] {
        let mut request = call(method, &path).session(&session.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let r = request.send(&w.app).await;
        assert_error(&r, StatusCode::FORBIDDEN, "CSRF_TOKEN_INVALID");
    }
    let r = call("PATCH", &path)
        .session(&session.token)
        .csrf(&session.csrf_token)
        .json(json!({"keep": true}))
        .send(&w.app)
        .await;
    assert_eq!(r.data()["keep"], true);
    assert!(w.exists(&file));

    // A download not finished yet: 409 naming its status.
    let r = w
        .send(
            "DELETE",
            &format!("{SUBS}/{sub}/items/{queued}"),
            &w.ann,
            None,
        )
        .await;
    let error = assert_error(&r, StatusCode::CONFLICT, "CONFLICT");
    assert_eq!(error["details"]["status"], "queued");
    assert_eq!(w.row(&queued).await.status, "queued");

    // The owner deletes it (kept or not): files gone, bytes fixed, id archived, Plex scans.
    let r = w.send("DELETE", &path, &w.ann, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert!(r.body.is_empty());
    assert!(!w.exists(&file));
    let row = w.row(&item).await;
    assert_eq!(
        (row.status.as_str(), row.files.as_str(), row.bytes),
        ("deleted", "[]", 0)
    );
    assert_eq!(w.sub_bytes(&sub).await, 0);
    assert_eq!(w.download_files(&download).await, "[]");
    assert!(w.archived(&sub, "aaaaaaaaaaa").await);
    eventually(
        std::time::Duration::from_secs(20),
        "the Plex scan",
        || async { (w.scans() == ["subscriptions/Chan/Season 2025"]).then_some(()) },
    )
    .await;
    // Again: still deleted, nothing else changes.
    let r = w.send("DELETE", &path, &w.ann, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(w.row(&item).await.status, "deleted");

    // An admin deletes in anyone's subscription; the other subscription's bytes are its own.
    let r = w
        .send(
            "DELETE",
            &format!("{SUBS}/{other_sub}/items/{elsewhere}"),
            &w.admin,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(w.row(&elsewhere).await.status, "deleted");
    assert_eq!(w.sub_bytes(&other_sub).await, 0);
}

/// A check of the subscription (the simulated channel, through the simulated yt-dlp) ends with
/// retention, and the pruned video is never queued again by the next check; Plex not set up is
/// no obstacle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_check_runs_retention_and_the_pruned_video_never_returns() {
    let mut sim_dir = PathBuf::new();
    let w = world(false, Some(&mut sim_dir)).await;
    let sub = w.subscription("retain", Some(1), None).await;
    // Two of the channel's uploads (1 and 4 of the simulated `@retain`), downloaded already.
    let (old_file, new_file) = (season(2026, "first.mp4"), season(2026, "fourth.mp4"));
    let (old, _) = w
        .downloaded(&sub, "retain00001", Some("2026-01-01"), &[&old_file], 1)
        .await;
    let (new, _) = w
        .downloaded(&sub, "retain00004", Some("2026-01-04"), &[&new_file], 2)
        .await;
    let state = w.t.state.clone();
    let get = |id: String| {
        let state = state.clone();
        async move {
            state
                .db()
                .run(move |conn| store::get(conn, &id))
                .await
                .unwrap()
                .unwrap()
        }
    };
    let queued_of = |video: &str| {
        support::scalar(
            &w.t.state,
            "SELECT count(*) FROM youtube_downloads WHERE url = ?1",
            vec![support::sql_text(&format!(
                "https://www.youtube.com/watch?v={video}"
            ))],
        )
    };

    scheduler::check(&w.t.state, get(sub.clone()).await)
        .await
        .unwrap();
    let checked = get(sub.clone()).await;
    assert_eq!(checked.last_result.as_deref(), Some("ok"), "{checked:?}");
    assert!(
        checked.last_new_items > 0,
        "the channel's other uploads were queued"
    );
    assert_eq!(w.row(&old).await.status, "pruned");
    assert!(!w.exists(&old_file));
    assert_eq!(w.row(&new).await.status, "downloaded");
    assert!(w.exists(&new_file));
    assert_eq!(w.sub_bytes(&sub).await, 2);

    // The next check lists it again and leaves it be: it is in the archive.
    w.t.clock.advance(7 * DAY_MS);
    scheduler::check(&w.t.state, get(sub.clone()).await)
        .await
        .unwrap();
    let again = get(sub.clone()).await;
    assert_eq!(
        (again.last_result.as_deref(), again.last_new_items),
        (Some("ok"), 0)
    );
    assert_eq!(
        queued_of("retain00001").await,
        1,
        "only the original download"
    );
    assert_eq!(w.row(&old).await.status, "pruned");
    assert!(w.archived(&sub, "retain00001").await);
}
