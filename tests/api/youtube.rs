//! YouTube downloads against the simulated yt-dlp (`medianest::sim::ytdlp`, the real binary under
//! another name): the queue and its rules, downloads with files on disk, progress in the API and
//! in `/events`, cancel (process group killed, partial files removed), failures, the watchdog,
//! hostile titles and output, worker concurrency and a restart mid-download.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use futures_util::StreamExt;
use medianest::Config;
use serde_json::{Value, json};

use crate::support::{
    self, RunningServer, TestState, assert_error, call, eventually, insert_user, new_session,
};

const BIN: &str = env!("CARGO_BIN_EXE_medianest");
const LONG: Duration = Duration::from_secs(30);

/// A test state whose yt-dlp is the simulator, in a directory of the test's own.
struct Yt {
    t: TestState,
    app: Router,
    /// Where the simulator lives and records its runs.
    sim_dir: PathBuf,
    download_dir: PathBuf,
}

fn video(id: &str) -> String {
    format!("https://www.youtube.com/watch?v={id}")
}

fn playlist(id: &str) -> String {
    format!("https://www.youtube.com/playlist?list={id}")
}

impl Yt {
    /// `step_ms` is the simulator's pause between progress lines. The database is a file: the
    /// workers write while requests read, which a shared-cache memory database answers with
    /// table locks.
    fn new(step_ms: u64, edit: impl FnOnce(&mut Config)) -> Self {
        Self::with_db(step_ms, edit, support::file_db)
    }

    fn with_db(
        step_ms: u64,
        edit: impl FnOnce(&mut Config),
        open: impl FnOnce(&Config) -> medianest::db::Db,
    ) -> Self {
        let mut sim_path = PathBuf::new();
        let mut sim_dir = PathBuf::new();
        let mut download_dir = PathBuf::new();
        let t = support::test_state_with_db(
            |c| {
                sim_dir = c.data_dir.with_file_name("sim");
                sim_path = medianest::sim::ytdlp::install(&sim_dir, Path::new(BIN)).unwrap();
                std::fs::write(sim_dir.join("sim-step-ms"), step_ms.to_string()).unwrap();
                download_dir = c.data_dir.with_file_name("downloads");
                c.youtube.ytdlp_path = sim_path.to_string_lossy().into_owned();
                c.youtube.download_dir = Some(download_dir.clone());
                edit(c);
            },
            open,
        );
        let app = t.router();
        Self {
            t,
            app,
            sim_dir,
            download_dir,
        }
    }

    /// [`Yt::new`] with its server running and a signed-in user `name`:
    /// `(yt, server, user id, token)`.
    async fn serving(
        step_ms: u64,
        edit: impl FnOnce(&mut Config),
        name: &str,
    ) -> (Self, RunningServer, String, String) {
        let yt = Self::new(step_ms, edit);
        let server = RunningServer::start(&yt.t.state, yt.app.clone()).await;
        let (id, token) = yt.user(name).await;
        (yt, server, id, token)
    }

    async fn user(&self, name: &str) -> (String, String) {
        let id = insert_user(&self.t.state, name, None, "user", None).await;
        let token = new_session(&self.t.state, &id).await.token;
        (id, token)
    }

    async fn submit(&self, token: &str, body: Value) -> support::TestResponse {
        call("POST", "/api/v1/youtube/downloads")
            .bearer(token)
            .json(body)
            .send(&self.app)
            .await
    }

    /// Submits `url` and returns the new download's id; panics unless it is accepted.
    async fn submit_url(&self, token: &str, url: &str) -> String {
        let r = self.submit(token, json!({ "url": url })).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        r.data()["id"].as_str().unwrap().to_owned()
    }

    /// The whole JSON body of `GET path`.
    async fn body(&self, token: &str, path: &str) -> Value {
        call("GET", path).bearer(token).send(&self.app).await.json()
    }

    async fn get(&self, token: &str, id: &str) -> Value {
        call("GET", &format!("/api/v1/youtube/downloads/{id}"))
            .bearer(token)
            .send(&self.app)
            .await
            .data()
    }

    /// Waits until the download has `status`, returning it.
    async fn until_status(&self, token: &str, id: &str, status: &str) -> Value {
        eventually(LONG, &format!("download {id} to be {status}"), || async {
            let d = self.get(token, id).await;
            (d["status"] == status).then_some(d)
        })
        .await
    }

    /// `(count, max running at once)` of the simulator's download runs.
    fn runs(&self) -> (usize, usize) {
        self.runs_in("runs.log")
    }

    /// The same from one of the simulator's logs (`runs.log`, `meta-runs.log`).
    fn runs_in(&self, log: &str) -> (usize, usize) {
        let log =
            std::fs::read_to_string(self.sim_dir.join("sim-state").join(log)).unwrap_or_default();
        let counts: Vec<usize> = log
            .lines()
            .filter_map(|l| l.split(' ').nth(1)?.parse().ok())
            .collect();
        (counts.len(), counts.into_iter().max().unwrap_or(0))
    }

    /// `(yt-dlp pid, helper pid)` of every download run that started a helper.
    fn process_pairs(&self) -> Vec<(u32, u32)> {
        let Ok(dir) = std::fs::read_dir(self.sim_dir.join("sim-state/pids")) else {
            return Vec::new();
        };
        dir.flatten()
            .filter_map(|e| {
                let pid = e.file_name().to_string_lossy().parse().ok()?;
                let helper = std::fs::read_to_string(e.path())
                    .ok()?
                    .trim()
                    .parse()
                    .ok()?;
                Some((pid, helper))
            })
            .collect()
    }

    /// Every file under the download dir.
    fn files_on_disk(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![self.download_dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
        out
    }
}

/// Alive and not a zombie.
fn is_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses: `pid (comm) S ...`.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// The live-event stream of one user, collected in the background.
struct Events {
    text: Arc<Mutex<String>>,
}

impl Events {
    async fn open(app: &Router, token: &str) -> Self {
        let response = tower::ServiceExt::oneshot(
            app.clone(),
            call("GET", "/api/v1/events").bearer(token).build(),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let text = Arc::new(Mutex::new(String::new()));
        let sink = text.clone();
        let mut body = response.into_body().into_data_stream();
        tokio::spawn(async move {
            while let Some(Ok(chunk)) = body.next().await {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk));
            }
        });
        Self { text }
    }

    /// The payloads of the events of `kind` so far.
    fn of(&self, kind: &str) -> Vec<Value> {
        let text = self.text.lock().unwrap().clone();
        text.split("\n\n")
            .filter_map(|frame| {
                let mut lines = frame.lines();
                let event = lines.find_map(|l| l.strip_prefix("event: "))?;
                let data = frame.lines().find_map(|l| l.strip_prefix("data: "))?;
                (event == kind).then(|| serde_json::from_str(data).unwrap())
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_downloads_with_progress_rising_to_100_in_the_api_and_the_events() {
    let (yt, server, ann, token) = Yt::serving(120, |_| {}, "ann").await;
    let events = Events::open(&yt.app, &token).await;

    let r = yt
        .submit(
            &token,
            json!({"url": "https://youtu.be/okvid000001", "quality": "720"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let d = r.data();
    assert_eq!(
        d["url"],
        video("okvid000001"),
        "stored in its canonical spelling"
    );
    assert_eq!(
        (d["kind"].as_str(), d["status"].as_str()),
        (Some("video"), Some("queued"))
    );
    assert_eq!(
        (d["quality"].as_str(), d["format"].as_str()),
        (Some("720"), Some("mp4"))
    );
    for key in [
        "id",
        "url",
        "kind",
        "title",
        "status",
        "progress",
        "quality",
        "format",
        "itemsTotal",
        "itemsDone",
        "bytesDone",
        "files",
        "error",
        "plexCollectionId",
        "createdAt",
        "startedAt",
        "completedAt",
    ] {
        assert!(d.get(key).is_some(), "Download lacks {key}: {d}");
    }
    let id = d["id"].as_str().unwrap().to_owned();

    // The API shows the run's live progress while it runs.
    let seen = Mutex::new(Vec::new());
    let done = eventually(LONG, "the video to complete", || async {
        let d = yt.get(&token, &id).await;
        seen.lock().unwrap().push(d["progress"].as_f64().unwrap());
        (d["status"] == "completed").then_some(d)
    })
    .await;
    let seen = seen.into_inner().unwrap();
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "progress went back: {seen:?}"
    );
    assert!(
        seen.iter().any(|p| *p > 0.0 && *p < 100.0),
        "no progress between 0 and 100: {seen:?}"
    );
    assert_eq!(done["progress"], 100.0);
    assert_eq!(
        (done["itemsDone"].as_i64(), done["itemsTotal"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(done["bytesDone"], 65536);
    assert_eq!(done["title"], "Sim video okvid000001");
    assert!(done["completedAt"].is_string() && done["startedAt"].is_string());
    let files: Vec<String> = serde_json::from_value(done["files"].clone()).unwrap();
    assert_eq!(
        files,
        vec![format!(
            "ann_{ann}/Sim Channel/Sim video okvid000001 [okvid000001].mp4"
        )]
    );
    let on_disk = yt.download_dir.join(&files[0]);
    assert_eq!(std::fs::metadata(&on_disk).unwrap().len(), 65536);

    // The same in the live events: progress under 100, then the completed download.
    let progress = eventually(LONG, "progress events", || async {
        let p = events.of("download.progress");
        let updated = events.of("download.updated");
        updated
            .iter()
            .any(|u| u["id"] == id.as_str() && u["status"] == "completed")
            .then_some(p)
    })
    .await;
    assert!(!progress.is_empty(), "no download.progress event");
    let values: Vec<f64> = progress
        .iter()
        .filter(|p| p["id"] == id.as_str())
        .map(|p| p["progress"].as_f64().unwrap())
        .collect();
    assert!(values.windows(2).all(|w| w[0] <= w[1]), "{values:?}");
    assert!(values.iter().all(|p| *p < 100.0), "{values:?}");
    let final_update = events
        .of("download.updated")
        .into_iter()
        .rfind(|u| u["id"] == id.as_str())
        .unwrap();
    assert_eq!(final_update["progress"], 100.0);

    // The owner is told.
    let n = support::scalar(
        &yt.t.state,
        "SELECT count(*) FROM notifications WHERE user_id = ?1 AND type = 'download.completed'",
        vec![support::sql_text(&ann)],
    )
    .await;
    assert_eq!(n, 1);
    assert!(!events.of("notification.created").is_empty());
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playlist_of_five_lands_in_a_folder_named_after_it() {
    let (yt, server, bob, token) = Yt::serving(5, |_| {}, "bob").await;
    let r = yt
        .submit(
            &token,
            json!({"url": playlist("PLn5mix"), "format": "mkv", "quality": "best"}),
        )
        .await;
    let id = r.data()["id"].as_str().unwrap().to_owned();
    assert_eq!(r.data()["kind"], "playlist");
    let done = yt.until_status(&token, &id, "completed").await;
    assert_eq!(done["title"], "Sim Playlist PLn5mix");
    assert_eq!(
        (done["itemsDone"].as_i64(), done["itemsTotal"].as_i64()),
        (Some(5), Some(5))
    );
    let files: Vec<String> = serde_json::from_value(done["files"].clone()).unwrap();
    assert_eq!(files.len(), 5);
    for (i, f) in files.iter().enumerate() {
        assert!(
            f.starts_with(&format!("bob_{bob}/Sim Playlist PLn5mix/Track ")),
            "{f}"
        );
        assert!(f.ends_with(&format!("{:04}].mkv", i + 1)), "{f}");
        assert!(yt.download_dir.join(f).is_file(), "{f}");
    }
    assert_eq!(
        yt.files_on_disk().len(),
        5,
        "no leftovers: {:?}",
        yt.files_on_disk()
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_kills_the_process_group_and_removes_partial_files() {
    let (yt, server, _, token) = Yt::serving(40, |_| {}, "cat").await;
    // Each progress line of a `slow` video takes 20 steps: well over a minute in all.
    let id = yt.submit_url(&token, &video("slow0000001")).await;
    let part = eventually(LONG, "a partial file", || async {
        let running = yt.get(&token, &id).await["progress"].as_f64().unwrap() > 0.0;
        let part = yt
            .files_on_disk()
            .into_iter()
            .find(|p| p.to_string_lossy().ends_with(".part"));
        part.filter(|_| running)
    })
    .await;
    let pairs = yt.process_pairs();
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    let (pid, helper) = pairs[0];
    assert!(is_running(pid) && is_running(helper));

    let r = call("DELETE", &format!("/api/v1/youtube/downloads/{id}"))
        .bearer(&token)
        .send(&yt.app)
        .await;
    assert_eq!(r.data()["status"], "cancelled");
    // Answered only once the worker is done: yt-dlp is gone (reaped), nothing partial on disk.
    assert!(!is_running(pid), "yt-dlp {pid} still runs");
    // Its child got the same SIGKILL (the whole process group), which lands asynchronously.
    eventually(Duration::from_secs(5), "yt-dlp's child to die", || async {
        (!is_running(helper)).then_some(())
    })
    .await;
    assert!(!part.exists(), "{} left behind", part.display());
    assert!(yt.files_on_disk().is_empty(), "{:?}", yt.files_on_disk());

    // Cancelling again is a conflict; retrying queues it again.
    let again = call("DELETE", &format!("/api/v1/youtube/downloads/{id}"))
        .bearer(&token)
        .send(&yt.app)
        .await;
    assert_error(&again, StatusCode::CONFLICT, "CONFLICT");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_download_shows_the_reason_yt_dlp_gave() {
    let (yt, server, dan, token) = Yt::serving(5, |_| {}, "dan").await;
    let id = yt.submit_url(&token, &video("fail0000001")).await;
    let failed = yt.until_status(&token, &id, "failed").await;
    assert_eq!(
        failed["error"],
        "[youtube] fail0000001: Video unavailable. This video has been removed by the uploader"
    );
    assert!(failed["progress"].as_f64().unwrap() < 100.0);
    let n = support::scalar(
        &yt.t.state,
        "SELECT count(*) FROM notifications WHERE user_id = ?1 AND type = 'download.failed'
            AND message LIKE '%removed by the uploader%'",
        vec![support::sql_text(&dan)],
    )
    .await;
    assert_eq!(n, 1);

    // Retry puts it back in the queue (and it fails again the same way).
    let r = call("POST", &format!("/api/v1/youtube/downloads/{id}/retry"))
        .bearer(&token)
        .send(&yt.app)
        .await;
    assert_eq!(r.data()["status"], "queued");
    assert_eq!(r.data()["error"], Value::Null);
    yt.until_status(&token, &id, "failed").await;
    let (runs, _) = yt.runs();
    assert_eq!(runs, 2);

    // A video yt-dlp cannot even describe fails with that reason.
    let id = yt.submit_url(&token, &video("nometa00001")).await;
    let failed = yt.until_status(&token, &id, "failed").await;
    assert_eq!(
        failed["error"],
        "[youtube] nometa00001: Video unavailable. This video is private"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_that_goes_quiet_is_killed_by_the_watchdog() {
    let (yt, server, _, token) = Yt::serving(5, |c| c.youtube.stall_timeout_secs = 1, "eve").await;
    let id = yt.submit_url(&token, &video("hang0000001")).await;
    let failed = yt.until_status(&token, &id, "failed").await;
    assert_eq!(
        failed["error"],
        "yt-dlp printed nothing for 1 s and was stopped"
    );
    let pairs = yt.process_pairs();
    assert_eq!(pairs.len(), 1);
    eventually(
        Duration::from_secs(5),
        "yt-dlp and its child to die",
        || async { (!is_running(pairs[0].0) && !is_running(pairs[0].1)).then_some(()) },
    )
    .await;
    // The worker goes on with the next one.
    let id = yt.submit_url(&token, &video("okvid000002")).await;
    yt.until_status(&token, &id, "completed").await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn submissions_follow_the_url_quota_and_duplicate_rules() {
    let yt = Yt::new(5, |_| {});
    let (_, token) = yt.user("fay").await;
    // Not started: the rows stay queued.
    for bad in [
        "https://vimeo.com/123",
        "https://www.youtube.com/watch?v=abc; rm -rf /",
        "--exec=touch /tmp/x",
        "https://www.youtube.com/watch?v=$(reboot)xx",
        "https://www.youtube.com/channel/UC123",
    ] {
        let r = yt.submit(&token, json!({ "url": bad })).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_YOUTUBE_URL");
    }
    let r = yt
        .submit(
            &token,
            json!({"url": video("aaaaaaaaaa1"), "quality": "999", "format": "avi"}),
        )
        .await;
    let e = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert!(
        e["details"]["fields"]["quality"].is_string()
            && e["details"]["fields"]["format"].is_string(),
        "{e}"
    );
    let r = yt.submit(&token, json!({})).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");

    let first = yt
        .submit(&token, json!({"url": video("aaaaaaaaaa1")}))
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    // The same video spelled another way is the same download.
    let dup = yt
        .submit(&token, json!({"url": "https://youtu.be/aaaaaaaaaa1"}))
        .await;
    assert_error(&dup, StatusCode::CONFLICT, "DOWNLOAD_EXISTS");
    // Someone else may download it too.
    let (_, other) = yt.user("gus").await;
    assert_eq!(
        yt.submit(&other, json!({"url": video("aaaaaaaaaa1")}))
            .await
            .status,
        StatusCode::CREATED
    );

    for i in 2..=5 {
        let r = yt
            .submit(&token, json!({"url": video(&format!("aaaaaaaaaa{i}"))}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
    yt.t.clock.advance(20 * 60 * 1000);
    let over = yt
        .submit(&token, json!({"url": video("aaaaaaaaaa6")}))
        .await;
    let e = assert_error(&over, StatusCode::TOO_MANY_REQUESTS, "QUOTA_EXCEEDED");
    assert_eq!(
        e["retryAfter"],
        40 * 60,
        "the oldest leaves the window in 40 min"
    );
    assert_eq!(over.header("retry-after"), Some("2400"));
    // Cancelled ones still count; once the hour has passed there is room again.
    let id = first.data()["id"].as_str().unwrap().to_owned();
    let c = call("DELETE", &format!("/api/v1/youtube/downloads/{id}"))
        .bearer(&token)
        .send(&yt.app)
        .await;
    assert_eq!(c.data()["status"], "cancelled");
    let still = yt
        .submit(&token, json!({"url": video("aaaaaaaaaa6")}))
        .await;
    assert_error(&still, StatusCode::TOO_MANY_REQUESTS, "QUOTA_EXCEEDED");
    yt.t.clock.advance(40 * 60 * 1000 + 1);
    assert_eq!(
        yt.submit(&token, json!({"url": video("aaaaaaaaaa6")}))
            .await
            .status,
        StatusCode::CREATED
    );

    // Lists: own only, newest first, paged by cursor, filtered by status.
    let page = call("GET", "/api/v1/youtube/downloads?limit=4")
        .bearer(&token)
        .send(&yt.app)
        .await;
    let body = page.json();
    assert_eq!(body["data"].as_array().unwrap().len(), 4);
    assert_eq!(body["data"][0]["url"], video("aaaaaaaaaa6"));
    let cursor = body["meta"]["nextCursor"].as_str().unwrap();
    let rest = yt
        .body(
            &token,
            &format!("/api/v1/youtube/downloads?limit=4&cursor={cursor}"),
        )
        .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 2);
    assert_eq!(rest["meta"]["nextCursor"], Value::Null);
    let cancelled = yt
        .body(&token, "/api/v1/youtube/downloads?status=cancelled")
        .await;
    assert_eq!(cancelled["data"].as_array().unwrap().len(), 1);
    let bad = call("GET", "/api/v1/youtube/downloads?status=nope")
        .bearer(&token)
        .send(&yt.app)
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    let bad = call(
        "GET",
        &format!("/api/v1/youtube/downloads?status=cancelled&cursor={cursor}"),
    )
    .bearer(&token)
    .send(&yt.app)
    .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "INVALID_CURSOR");
    // Another user does not see them; an admin sees everyone's.
    let mine = call("GET", &format!("/api/v1/youtube/downloads/{id}"))
        .bearer(&other)
        .send(&yt.app)
        .await;
    assert_error(&mine, StatusCode::NOT_FOUND, "NOT_FOUND");
    let admin = insert_user(&yt.t.state, "root", None, "admin", None).await;
    let admin_token = new_session(&yt.t.state, &admin).await.token;
    let all = yt.body(&admin_token, "/api/v1/admin/downloads").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 7);
    assert!(
        all["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["userId"].is_string()),
        "{all}"
    );
    let queued = yt
        .body(
            &admin_token,
            "/api/v1/admin/downloads?status=queued&limit=2",
        )
        .await;
    assert_eq!(queued["data"].as_array().unwrap().len(), 2);
    assert!(queued["meta"]["nextCursor"].is_string());
}

#[tokio::test]
async fn without_yt_dlp_submissions_and_metadata_answer_503() {
    let yt = Yt::new(5, |c| c.youtube.ytdlp_path = "/nonexistent/yt-dlp".into());
    let (_, token) = yt.user("hal").await;
    let r = yt
        .submit(&token, json!({"url": video("aaaaaaaaaa1")}))
        .await;
    assert_error(
        &r,
        StatusCode::SERVICE_UNAVAILABLE,
        "DOWNLOADER_UNAVAILABLE",
    );
    let r = call(
        "GET",
        &format!("/api/v1/youtube/metadata?url={}", video("aaaaaaaaaa1")),
    )
    .bearer(&token)
    .send(&yt.app)
    .await;
    assert_error(
        &r,
        StatusCode::SERVICE_UNAVAILABLE,
        "DOWNLOADER_UNAVAILABLE",
    );
}

#[tokio::test]
async fn metadata_describes_videos_and_playlists_and_is_cached() {
    let yt = Yt::new(5, |_| {});
    let (_, token) = yt.user("ivy").await;
    let get = |url: String| {
        let token = token.clone();
        let app = yt.app.clone();
        async move {
            let q: String = url::form_urlencoded::byte_serialize(url.as_bytes()).collect();
            call("GET", &format!("/api/v1/youtube/metadata?url={q}"))
                .bearer(&token)
                .send(&app)
                .await
        }
    };
    let first = get(playlist("PLn5mix")).await;
    assert_eq!(first.header("x-cache"), Some("MISS"));
    let p = first.data();
    assert_eq!(p["kind"], "playlist");
    assert_eq!(p["title"], "Sim Playlist PLn5mix");
    assert_eq!(p["itemCount"], 5);
    assert_eq!(p["entries"].as_array().unwrap().len(), 5);
    assert_eq!(p["entries"][0]["duration"], 60.0);
    let v = get(video("okvid000001")).await.data();
    assert_eq!(
        (v["kind"].as_str(), v["channel"].as_str()),
        (Some("video"), Some("Sim Channel"))
    );
    // Another spelling of the same playlist is the same cache entry.
    let again = get("https://music.youtube.com/playlist?list=PLn5mix".into()).await;
    assert_eq!(again.header("x-cache"), Some("HIT"));
    assert_eq!(again.data(), p);
    let private = get(video("nometa00001")).await;
    let e = assert_error(&private, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(
        e["details"]["fields"]["url"],
        "[youtube] nometa00001: Video unavailable. This video is private"
    );
    let bad = get("https://example.com/x".into()).await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "INVALID_YOUTUBE_URL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_titles_and_output_stay_inside_the_users_folder() {
    let (yt, server, joe, token) =
        Yt::serving(2, |c| c.quotas.downloads_per_hour = 20, "joe").await;
    let mut ids = Vec::new();
    for url in [
        video("evil0000001"),
        video("long0000001"),
        video("junk0000001"),
        playlist("PLevil"),
        video("escp0000001"),
    ] {
        let r = yt.submit(&token, json!({ "url": url })).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        ids.push(r.data()["id"].as_str().unwrap().to_owned());
    }
    let mut finished = Vec::new();
    for id in &ids {
        finished.push(
            eventually(LONG, "every download to end", || async {
                let d = yt.get(&token, id).await;
                matches!(d["status"].as_str(), Some("completed" | "failed")).then_some(d)
            })
            .await,
        );
    }
    let folder = format!("joe_{joe}");
    let user_root = std::fs::canonicalize(yt.download_dir.join(&folder)).unwrap();
    for d in &finished[..4] {
        assert_eq!(d["status"], "completed", "{d}");
        for f in d["files"].as_array().unwrap() {
            let path = std::fs::canonicalize(yt.download_dir.join(f.as_str().unwrap())).unwrap();
            assert!(path.starts_with(&user_root), "{}", path.display());
            assert!(path.file_name().unwrap().len() <= 255);
        }
    }
    // The hostile playlist title became a plain folder name.
    let pl_files = finished[3]["files"].as_array().unwrap();
    assert!(
        pl_files.iter().all(|f| f
            .as_str()
            .unwrap()
            .starts_with(&format!("{folder}/_.._etc/"))),
        "{pl_files:?}"
    );
    // A file reported outside the folder is refused, and the download with it.
    assert_eq!(finished[4]["status"], "failed");
    assert_eq!(
        finished[4]["error"],
        "yt-dlp wrote a file outside the download folder; the download was not accepted"
    );
    assert_eq!(finished[4]["files"], json!([]));
    // Nothing anywhere but under the download dir (the escaping file is the simulator's own doing,
    // still inside the test's directory) and the worker is alive: a last one completes.
    let id = yt.submit_url(&token, &video("okvid000009")).await;
    yt.until_status(&token, &id, "completed").await;
    let etc = yt.download_dir.parent().unwrap().join("etc");
    assert!(!etc.exists());
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_users_at_once_never_run_more_than_the_configured_workers() {
    let yt = Yt::new(20, |c| c.youtube.workers = 2);
    let server = RunningServer::start(&yt.t.state, yt.app.clone()).await;
    let mut users = Vec::new();
    for i in 0..4 {
        users.push(yt.user(&format!("u{i}")).await.1);
    }
    let yt_ref = &yt;
    let submissions = users.iter().enumerate().flat_map(|(i, token)| {
        (0..2).map(move |j| {
            let url = video(&format!("okcc{i}{j}00000"));
            async move { yt_ref.submit(token, json!({ "url": url })).await }
        })
    });
    let answers = futures_util::future::join_all(submissions).await;
    let mut ids = Vec::new();
    for (n, r) in answers.iter().enumerate() {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        ids.push((
            users[n / 2].clone(),
            r.data()["id"].as_str().unwrap().to_owned(),
        ));
    }
    for (token, id) in &ids {
        yt.until_status(token, id, "completed").await;
    }
    let (runs, most) = yt.runs();
    assert_eq!(runs, 8);
    assert!(most <= 2, "{most} yt-dlp processes ran at once");
    assert!(most >= 1);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_stopped_by_shutdown_is_queued_again_and_completes_after_the_restart() {
    let yt = Yt::new(60, |_| {});
    let Yt {
        t,
        app,
        sim_dir,
        download_dir,
    } = yt;
    let server = RunningServer::start(&t.state, app.clone()).await;
    let id = insert_user(&t.state, "kim", None, "user", None).await;
    let token = new_session(&t.state, &id).await.token;
    let r = call("POST", "/api/v1/youtube/downloads")
        .bearer(&token)
        .json(json!({"url": playlist("PLn3resume")}))
        .send(&app)
        .await;
    let id = r.data()["id"].as_str().unwrap().to_owned();
    eventually(LONG, "the first item", || async {
        let d = call("GET", &format!("/api/v1/youtube/downloads/{id}"))
            .bearer(&token)
            .send(&app)
            .await
            .data();
        (d["itemsDone"].as_i64() >= Some(1)).then_some(())
    })
    .await;
    server.stop().await.unwrap();
    let status = support::text_value(
        &t.state,
        "SELECT status FROM youtube_downloads WHERE id = ?1",
        vec![support::sql_text(&id)],
    )
    .await;
    assert_eq!(status.as_deref(), Some("queued"));
    let t = support::restart(t).await;
    let yt = Yt {
        app: t.router(),
        t,
        sim_dir,
        download_dir,
    };
    let server = RunningServer::start(&yt.t.state, yt.app.clone()).await;
    let done = yt.until_status(&token, &id, "completed").await;
    assert_eq!(done["files"].as_array().unwrap().len(), 3);
    assert_eq!(yt.files_on_disk().len(), 3, "{:?}", yt.files_on_disk());
    let (runs, _) = yt.runs();
    assert_eq!(runs, 2);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_that_would_pass_the_disk_budget_fails_and_deletes_nothing() {
    let (yt, server, _, token) =
        Yt::serving(5, |c| c.youtube.max_user_bytes = 100_000, "lea").await;
    let first = yt.submit_url(&token, &video("okvid000001")).await;
    yt.until_status(&token, &first, "completed").await;
    let second = yt.submit_url(&token, &video("okvid000002")).await;
    let failed = yt.until_status(&token, &second, "failed").await;
    assert_eq!(
        failed["error"],
        "this download would pass your disk budget of 97.7 KiB (already used: 64.0 KiB); it was stopped"
    );
    let third = yt.submit_url(&token, &video("okvid000003")).await;
    let failed = yt.until_status(&token, &third, "failed").await;
    // The stopped one's partial file counts (it is kept for a retry).
    assert_eq!(
        failed["error"],
        "your downloads already use 104.0 KiB of your 97.7 KiB disk budget; delete some files first"
    );
    // The finished file is still there.
    let done = yt.get(&token, &first).await;
    let file = yt.download_dir.join(done["files"][0].as_str().unwrap());
    assert!(file.is_file());
    server.stop().await.unwrap();
}

/// A [`Yt`] whose Plex is the fake PMS with a "YouTube" library on the download dir, served,
/// with a signed-in user: `(yt, plex, section key, server, token)`.
async fn with_plex(
    name: &str,
) -> (
    Yt,
    medianest::sim::plex::FakePlexServer,
    String,
    RunningServer,
    String,
) {
    let plex = medianest::sim::plex::FakePlexServer::start().await.unwrap();
    let yt = Yt::new(2, |c| {
        c.services.plex.url = Some(plex.url());
        c.services.plex.api_key = Some(medianest::config::Secret::new(plex.token()));
    });
    std::fs::create_dir_all(&yt.download_dir).unwrap();
    plex.add_library("movie", "Movies", "/data/movies");
    let section = plex.add_youtube_library("YouTube", &yt.download_dir);
    let (_, token) = yt.user(name).await;
    support::prepare(&yt.t).await;
    medianest::services::admin::rebuild_clients(&yt.t.state)
        .await
        .unwrap();
    let server = RunningServer::start(&yt.t.state, yt.app.clone()).await;
    (yt, plex, section, server, token)
}

/// Lifts the rate limits: the tests that poll the API are not testing them.
fn unlimited(c: &mut Config) {
    c.limits.user_per_minute = 1_000_000;
    c.limits.ip_per_second = 1_000_000;
    c.limits.ip_burst = 1_000_000;
}

impl Yt {
    /// A new admin's session token.
    async fn admin(&self) -> String {
        let id = insert_user(&self.t.state, "boss", None, "admin", None).await;
        new_session(&self.t.state, &id).await.token
    }

    /// Subscribes as `token` (201 expected); the new subscription's API path.
    async fn subscribe(&self, token: &str, body: Value) -> String {
        let r = call("POST", "/api/v1/youtube/subscriptions")
            .bearer(token)
            .json(body)
            .send(&self.app)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        format!(
            "/api/v1/youtube/subscriptions/{}",
            r.data()["id"].as_str().unwrap()
        )
    }

    /// Waits until the download has a Plex collection; returns it.
    async fn until_collection(&self, token: &str, id: &str) -> String {
        eventually(LONG, "the Plex collection", || async {
            let d = self.get(token, id).await;
            d["plexCollectionId"].as_str().map(str::to_owned)
        })
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_playlist_becomes_a_plex_collection_of_its_items() {
    let (yt, plex, section, server, token) = with_plex("max").await;
    let id = yt.submit_url(&token, &playlist("PLn5mix")).await;
    let collection = yt.until_collection(&token, &id).await;
    let done = yt.get(&token, &id).await;
    assert_eq!(done["status"], "completed");
    let collections = plex.collections();
    assert_eq!(collections.len(), 1);
    let c = &collections[0];
    assert_eq!(
        (c.rating_key.as_str(), c.title.as_str()),
        (collection.as_str(), "Sim Playlist PLn5mix")
    );
    assert_eq!(c.section_key, section);
    // The collection holds exactly the five downloaded files, as Plex found them on disk.
    let items = plex.items(&section);
    let mut in_collection: Vec<String> = items
        .iter()
        .filter(|i| c.items.contains(&i.rating_key))
        .map(|i| i.file.clone().unwrap_or_default())
        .collect();
    in_collection.sort();
    let mut downloaded: Vec<String> = done["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            yt.download_dir
                .join(f.as_str().unwrap())
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    downloaded.sort();
    assert_eq!(in_collection, downloaded);
    assert_eq!(plex.requests("GET /library/sections/{key}/refresh"), 1);

    // Single videos go into their channel's collection, which a second one extends.
    let first = yt.submit_url(&token, &video("okvid000001")).await;
    let channel = yt.until_collection(&token, &first).await;
    let second = yt.submit_url(&token, &video("okvid000002")).await;
    assert_eq!(yt.until_collection(&token, &second).await, channel);
    let collections = plex.collections();
    assert_eq!(collections.len(), 2);
    let c = collections
        .iter()
        .find(|c| c.rating_key == channel)
        .unwrap();
    assert_eq!((c.title.as_str(), c.items.len()), ("Sim Channel", 2));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_plex_down_the_download_stays_completed_and_the_collection_comes_later() {
    let (yt, plex, _, server, token) = with_plex("ned").await;
    plex.fail_next_on_route(
        "/library/sections",
        3,
        medianest::sim::plex::Fault::Status(503),
    );
    let id = yt.submit_url(&token, &video("okvid000001")).await;
    yt.until_status(&token, &id, "completed").await;
    eventually(
        LONG,
        "the hand-off to try (and fail) every retry",
        || async { (plex.requests("GET /library/sections") >= 3).then_some(()) },
    )
    .await;
    // The retry waits for the first attempt to finish, so it sees its outcome.
    let handed = medianest::youtube::handoff::retry_pending(&yt.t.state).await;
    assert_eq!(handed, 1);
    let d = yt.get(&token, &id).await;
    assert_eq!(d["status"], "completed");
    let collection = d["plexCollectionId"].as_str().unwrap();
    assert_eq!(plex.collections()[0].rating_key, collection);
    assert_eq!(plex.requests("POST /library/collections"), 1);
    // Nothing is left to do.
    assert_eq!(
        medianest::youtube::handoff::retry_pending(&yt.t.state).await,
        0
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_user_mid_download_stops_the_run_and_the_worker_goes_on() {
    let (yt, server, _, token) = Yt::serving(40, |_| {}, "olga").await;
    let id = yt.submit_url(&token, &video("slow0000002")).await;
    eventually(LONG, "the download to run", || async {
        (yt.get(&token, &id).await["progress"].as_f64().unwrap() > 0.0).then_some(())
    })
    .await;
    let (pid, helper) = yt.process_pairs()[0];
    let admin = insert_user(&yt.t.state, "boss", None, "admin", None).await;
    let admin_token = new_session(&yt.t.state, &admin).await.token;
    let olga = support::text_value(
        &yt.t.state,
        "SELECT id FROM users WHERE username = 'olga'",
        vec![],
    )
    .await
    .unwrap();
    let r = call("DELETE", &format!("/api/v1/admin/users/{olga}"))
        .bearer(&admin_token)
        .send(&yt.app)
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    // The worker notices at its next progress write: the process group goes, and so do the
    // partial files.
    eventually(LONG, "the run to stop", || async {
        (!is_running(pid) && !is_running(helper) && yt.t.state.youtube().running_count() == 0)
            .then_some(())
    })
    .await;
    assert!(
        yt.files_on_disk()
            .iter()
            .all(|f| !f.to_string_lossy().ends_with(".part")),
        "{:?}",
        yt.files_on_disk()
    );
    let (_, other) = yt.user("pia").await;
    let next = yt.submit_url(&other, &video("okvid000001")).await;
    yt.until_status(&other, &next, "completed").await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_previews_runs_a_bounded_number_of_yt_dlp_processes() {
    let yt = Yt::new(150, |c| c.youtube.previews_per_user = 12);
    let (_, token) = yt.user("quin").await;
    let asks = (0..12).map(|i| {
        let (app, token) = (yt.app.clone(), token.clone());
        async move {
            call(
                "GET",
                &format!("/api/v1/youtube/metadata?url=https://youtu.be/okmeta{i:05}"),
            )
            .bearer(&token)
            .send(&app)
            .await
        }
    });
    for r in futures_util::future::join_all(asks).await {
        assert_eq!(r.data()["kind"], "video");
    }
    let (runs, most) = yt.runs_in("meta-runs.log");
    assert_eq!(runs, 12);
    assert!(
        most <= yt.t.state.config().youtube.preview_slots as usize,
        "{most} yt-dlp -J at once"
    );
}

/// Files in one of the simulator's `sim-state/` folders (`running-meta`: `-J` runs in progress).
fn running_in(yt: &Yt, folder: &str) -> usize {
    std::fs::read_dir(yt.sim_dir.join("sim-state").join(folder))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_previews_hold_up_no_download_and_a_user_has_two_at_a_time() {
    let (yt, server, _, ann) = Yt::serving(5, |_| {}, "ann").await;
    let (_, bob) = yt.user("bob").await;
    let (_, cat) = yt.user("cat").await;
    let preview = |token: &str, id: &str| {
        let (app, token) = (yt.app.clone(), token.to_owned());
        let path = format!("/api/v1/youtube/metadata?url=https://youtu.be/{id}");
        async move { call("GET", &path).bearer(&token).send(&app).await }
    };
    // Two users fill the four preview slots with previews that never end.
    let hanging: Vec<_> = [
        (&ann, "mhang000001"),
        (&ann, "mhang000002"),
        (&bob, "mhang000003"),
        (&bob, "mhang000004"),
    ]
    .into_iter()
    .map(|(token, id)| tokio::spawn(preview(token, id)))
    .collect();
    eventually(LONG, "four hanging yt-dlp -J runs", || async {
        (running_in(&yt, "running-meta") == 4).then_some(())
    })
    .await;
    // A third at once from one user is refused at once, not queued.
    let third = tokio::time::timeout(Duration::from_secs(5), preview(&ann, "okmeta00001"))
        .await
        .expect("a third preview of one user answers at once");
    let e = assert_error(&third, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert_eq!(e["retryAfter"], 1, "{e}");
    // Someone else's download does not wait for a preview slot: it starts and completes.
    let id = yt.submit_url(&cat, &video("okvid000001")).await;
    eventually(
        Duration::from_secs(10),
        "the download to complete",
        || async { (yt.get(&cat, &id).await["status"] == "completed").then_some(()) },
    )
    .await;
    for h in hanging {
        h.abort();
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_counts_against_the_hourly_quota() {
    // No workers: the rows stay queued until cancelled.
    let yt = Yt::new(5, |c| c.quotas.downloads_per_hour = 2);
    let (_, token) = yt.user("rex").await;
    let id = yt.submit_url(&token, &video("aaaaaaaaaa1")).await;
    let cancel = || async {
        let r = call("DELETE", &format!("/api/v1/youtube/downloads/{id}"))
            .bearer(&token)
            .send(&yt.app)
            .await;
        assert_eq!(r.data()["status"], "cancelled", "{}", r.text());
    };
    let retry = || async {
        call("POST", &format!("/api/v1/youtube/downloads/{id}/retry"))
            .bearer(&token)
            .send(&yt.app)
            .await
    };
    cancel().await;
    yt.t.clock.advance(10 * 60 * 1000);
    // The download and one retry: the quota of 2 is used.
    let r = retry().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.data()["status"], "queued");
    cancel().await;
    let r = retry().await;
    let e = assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "QUOTA_EXCEEDED");
    assert_eq!(
        e["retryAfter"],
        50 * 60,
        "the download leaves the window first"
    );
    let r = yt
        .submit(&token, json!({"url": video("aaaaaaaaaa2")}))
        .await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "QUOTA_EXCEEDED");
    // Once the download's hour has passed, the retry's still counts: one more fits.
    yt.t.clock.advance(50 * 60 * 1000 + 1);
    let r = retry().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = yt
        .submit(&token, json!({"url": video("aaaaaaaaaa2")}))
        .await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "QUOTA_EXCEEDED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_whose_names_are_made_safe_alike_get_their_own_folders_and_budgets() {
    let (yt, server, ann_id, ann) =
        Yt::serving(5, |c| c.youtube.max_user_bytes = 100_000, "ann?").await;
    let (amy_id, amy) = yt.user("ann*").await;
    // Before folders carried the user id both were `ann_`: a file recorded there for ann counts
    // for her alone.
    let old = "ann_/Old/Old video [oldvid00001].mp4";
    std::fs::create_dir_all(yt.download_dir.join("ann_/Old")).unwrap();
    std::fs::write(yt.download_dir.join(old), vec![0u8; 64 * 1024]).unwrap();
    let (owner, files, at) = (ann_id.clone(), json!([old]).to_string(), support::START_MS);
    yt.t.state
        .db()
        .write(move |tx| {
            tx.execute(
                "INSERT INTO youtube_downloads (id, user_id, url, kind, status, created_at,
                                                completed_at, file_paths)
                 VALUES ('old-1', ?1, 'https://www.youtube.com/watch?v=oldvid00001', 'video',
                         'completed', ?2, ?2, ?3)",
                rusqlite::params![owner, at - 2 * 3600 * 1000, files],
            )?;
            Ok(())
        })
        .await
        .unwrap();

    let amys = yt.submit_url(&amy, &video("okvid000001")).await;
    let done = eventually(LONG, "amy's download to end", || async {
        let d = yt.get(&amy, &amys).await;
        matches!(d["status"].as_str(), Some("completed" | "failed")).then_some(d)
    })
    .await;
    assert_eq!(
        done["status"], "completed",
        "ann's old file is not amy's: {done}"
    );
    let file = done["files"][0].as_str().unwrap();
    assert!(file.starts_with(&format!("ann__{amy_id}/")), "{file}");
    let anns = yt.submit_url(&ann, &video("okvid000002")).await;
    let failed = yt.until_status(&ann, &anns, "failed").await;
    assert_eq!(
        failed["error"],
        "this download would pass your disk budget of 97.7 KiB (already used: 64.0 KiB); it was stopped"
    );
    // Her partial file is in her own folder; the recorded files of both are where they were.
    assert!(yt.download_dir.join(format!("ann__{ann_id}")).is_dir());
    assert!(yt.download_dir.join(old).is_file());
    assert!(yt.download_dir.join(file).is_file());
    server.stop().await.unwrap();
}

/// yt-dlp goes on after an item it cannot download and exits 1 at the end
/// (yt-dlp/yt-dlp yt_dlp/YoutubeDL.py `trouble` and `__process_playlist`, 2026.10.26; the
/// messages are the YouTube extractor's, extractor/youtube/_video.py): the download completes
/// with the files it made, each failed item is listed with yt-dlp's reason, the disk holds
/// exactly the recorded files and they reach Plex.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playlist_with_private_members_only_and_blocked_items_completes_with_the_rest() {
    let (yt, plex, section, server, token) = with_plex("pia").await;
    let id = yt.submit_url(&token, &playlist("PLmix01")).await;
    let collection = yt.until_collection(&token, &id).await;
    let done = yt.get(&token, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["error"], Value::Null);
    assert_eq!(
        (done["itemsDone"].as_i64(), done["itemsTotal"].as_i64()),
        (Some(6), Some(6))
    );
    assert_eq!(done["progress"], 100.0);
    // The bytes shown are the recorded files' (not the 403 item's partial stream).
    assert_eq!(done["bytesDone"], 2 * 64 * 1024, "{done}");
    let files: Vec<String> = serde_json::from_value(done["files"].clone()).unwrap();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files[0].ends_with("[PLmix010001].mp4"), "{files:?}");
    assert!(files[1].ends_with("[PLmix010003].mp4"), "{files:?}");
    let failed = done["failedItems"].as_array().unwrap();
    let summary: Vec<(i64, &str, &str)> = failed
        .iter()
        .map(|f| {
            let reason = f["reason"].as_str().unwrap();
            (
                f["index"].as_i64().unwrap(),
                f["id"].as_str().unwrap(),
                reason.split('.').next().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (2, "privmix0002", "Private video"),
            (
                4,
                "membmix0004",
                "Join this channel to get access to members-only content like this video, and other exclusive perks"
            ),
            (
                5,
                "geobmix0005",
                "The uploader has not made this video available in your country"
            ),
            (
                6,
                "f403mix0006",
                "unable to download video data: HTTP Error 403: Forbidden"
            ),
        ]
    );
    assert!(
        failed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("Use --cookies-from-browser or --cookies"),
        "{failed:?}"
    );
    // The disk holds the recorded files and nothing else (the `.part` of the item that failed
    // midway is gone).
    let mut on_disk: Vec<PathBuf> = yt.files_on_disk();
    on_disk.sort();
    let recorded: Vec<PathBuf> = files.iter().map(|f| yt.download_dir.join(f)).collect();
    assert_eq!(on_disk, recorded);
    // The owner is told how many items could not be downloaded.
    let n = support::scalar(
        &yt.t.state,
        "SELECT count(*) FROM notifications WHERE type = 'download.completed'
            AND message LIKE '%(2 files); 4 items could not be downloaded.'",
        vec![],
    )
    .await;
    assert_eq!(n, 1);
    // Plex gets a collection of the two files.
    let c = plex
        .collections()
        .into_iter()
        .find(|c| c.rating_key == collection)
        .unwrap();
    assert_eq!(c.items.len(), 2);
    let items = plex.items(&section);
    assert_eq!(
        items
            .iter()
            .filter(|i| c.items.contains(&i.rating_key))
            .count(),
        2
    );

    // The disk budget counts exactly those files: a budget of their size leaves no room.
    let used: u64 = recorded
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert_eq!(used, 2 * 64 * 1024);

    // A playlist whose every item fails still fails, with yt-dlp's reason, and lists them.
    let dead = yt.submit_url(&token, &playlist("PLdead1")).await;
    let failed = yt.until_status(&token, &dead, "failed").await;
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .starts_with("[youtube] privdea0002: Private video. Sign in"),
        "{failed}"
    );
    assert_eq!(failed["failedItems"].as_array().unwrap().len(), 2);
    assert_eq!(failed["files"], json!([]));
    server.stop().await.unwrap();
}

/// A file is recorded only after yt-dlp moved it to its final name, so a run cut short after
/// some files (exit 101 when `--max-downloads` or `--break-on-existing` stops it,
/// yt-dlp/yt-dlp yt_dlp/__init__.py `_real_main`; or killed by a signal from outside)
/// completes with them, shows why the rest is missing, and counts exactly their bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cut_short_after_some_files_completes_with_them() {
    let (yt, server, _, token) = Yt::serving(60, |_| {}, "cut").await;
    for (list, reason) in [
        (
            "PLcut01",
            "yt-dlp stopped at a download limit (exit code 101)",
        ),
        ("PLabrt1", "yt-dlp was stopped by a signal"),
    ] {
        let id = yt.submit_url(&token, &playlist(list)).await;
        let done = yt.until_status(&token, &id, "completed").await;
        let files: Vec<String> = serde_json::from_value(done["files"].clone()).unwrap();
        assert_eq!(files.len(), 1, "{done}");
        assert!(
            files[0].ends_with(&format!("[{list}0001].mp4")),
            "{files:?}"
        );
        assert_eq!(
            done["failedItems"],
            json!([{"index": null, "id": null, "reason": reason}])
        );
        assert_eq!(done["bytesDone"], 64 * 1024, "{done}");
    }
    server.stop().await.unwrap();
}

/// `(progress, bytesDone, itemsDone)` of every look at download `id` until it completes.
async fn watch_progress(yt: &Yt, token: &str, id: &str) -> (Value, Vec<(f64, i64, i64)>) {
    let seen = Mutex::new(Vec::new());
    let done = eventually(LONG, "the download to complete", || async {
        let d = yt.get(token, id).await;
        seen.lock().unwrap().push((
            d["progress"].as_f64().unwrap(),
            d["bytesDone"].as_i64().unwrap(),
            d["itemsDone"].as_i64().unwrap(),
        ));
        assert_ne!(d["status"], "failed", "{d}");
        (d["status"] == "completed").then_some(d)
    })
    .await;
    (done, seen.into_inner().unwrap())
}

/// Real yt-dlp's progress (yt-dlp/yt-dlp 2026.10.26): a video and an audio stream run one
/// 0-100 cycle each (YoutubeDL.py `process_info` downloads `requested_formats` in turn), HLS
/// has only `total_bytes_estimate` and `fragment_index`/`fragment_count`
/// (downloader/fragment.py), and a file already on disk prints no progress at all
/// (`report_file_already_downloaded`). The shown progress counts items, never runs backwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_counts_items_over_two_stream_cycles_fragments_and_files_already_there() {
    let (yt, server, _, token) = Yt::serving(60, |_| {}, "pat").await;
    let monotone = |seen: &[(f64, i64, i64)]| {
        assert!(
            seen.windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].2 <= w[1].2),
            "progress went back: {seen:?}"
        );
    };

    // Two cycles: the video stream (48 KiB) and then the audio stream (16 KiB). While the
    // video stream runs the item is not more than half done, whatever that stream's percent.
    let id = yt.submit_url(&token, &video("twocyc00001")).await;
    let (done, seen) = watch_progress(&yt, &token, &id).await;
    monotone(&seen);
    let video_stream = 48 * 1024;
    let during_video: Vec<_> = seen
        .iter()
        .filter(|s| s.1 > 0 && s.1 < video_stream)
        .collect();
    assert!(!during_video.is_empty(), "{seen:?}");
    assert!(
        during_video.iter().all(|s| s.0 <= 50.0),
        "the first of two cycles counted as the whole item: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|s| s.1 > video_stream && s.0 > 50.0 && s.0 < 100.0),
        "the audio cycle adds the second half: {seen:?}"
    );
    assert_eq!(
        (done["progress"].as_f64(), done["bytesDone"].as_i64()),
        (Some(100.0), Some(65536))
    );

    // HLS: fragments only.
    let id = yt.submit_url(&token, &video("hlsvid00001")).await;
    let (done, seen) = watch_progress(&yt, &token, &id).await;
    monotone(&seen);
    assert!(
        seen.iter().any(|s| s.0 > 10.0 && s.0 < 99.0),
        "fragment progress shows: {seen:?}"
    );
    assert_eq!(done["progress"], 100.0);

    // A playlist of three: items, not cycles, and the item count never passes three.
    let list = playlist("PLn3prog");
    let id = yt.submit_url(&token, &list).await;
    let (done, seen) = watch_progress(&yt, &token, &id).await;
    monotone(&seen);
    for s in &seen {
        assert!(s.2 <= 3, "{seen:?}");
        // Within item n+1 of 3 the progress stays below (n+1)/3.
        assert!(
            s.0 <= (s.2 as f64 + 1.0) / 3.0 * 100.0 + 0.01,
            "{s:?} in {seen:?}"
        );
    }
    assert_eq!(
        (done["itemsDone"].as_i64(), done["itemsTotal"].as_i64()),
        (Some(3), Some(3))
    );

    // Again: every file is there already, no progress is printed, each item still counts.
    let again = yt.submit_url(&token, &list).await;
    let (done, seen) = watch_progress(&yt, &token, &again).await;
    monotone(&seen);
    assert_eq!(
        (done["itemsDone"].as_i64(), done["progress"].as_f64()),
        (Some(3), Some(100.0))
    );
    assert_eq!(done["files"].as_array().unwrap().len(), 3);
    server.stop().await.unwrap();
}

/// A playlist of thousands: the preview asks yt-dlp for the first `youtube.preview_items`
/// (`-I 1:N`; yt-dlp/yt-dlp yt_dlp/YoutubeDL.py `__process_playlist` takes that slice lazily, so
/// only its pages are fetched) and says "first N of M" with YouTube's `playlist_count`
/// (extractor/youtube/_tab.py, 2026.10.26). The simulator pauses once per page of 100, as the
/// extractor fetches one continuation per page: listing all 9999 would take about 10 s.
#[tokio::test]
async fn a_preview_of_a_big_playlist_lists_the_first_items_and_says_of_how_many() {
    let yt = Yt::new(100, |c| c.youtube.preview_items = 20);
    let (_, token) = yt.user("uma").await;
    let q: String =
        url::form_urlencoded::byte_serialize(playlist("PLn9999big").as_bytes()).collect();
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        call("GET", &format!("/api/v1/youtube/metadata?url={q}"))
            .bearer(&token)
            .send(&yt.app),
    )
    .await
    .expect("the preview of a big playlist answers in time");
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let p = r.data();
    assert_eq!(p["entries"].as_array().unwrap().len(), 20);
    assert_eq!(
        (&p["itemCount"], &p["listed"], &p["total"], &p["partial"]),
        (&json!(9999), &json!(20), &json!(9999), &json!(true))
    );
    assert_eq!(p["summary"], "first 20 of 9999 videos");
    // A short playlist is whole.
    let q: String = url::form_urlencoded::byte_serialize(playlist("PLn5sm").as_bytes()).collect();
    let p = call("GET", &format!("/api/v1/youtube/metadata?url={q}"))
        .bearer(&token)
        .send(&yt.app)
        .await
        .data();
    assert_eq!(
        (&p["partial"], &p["summary"]),
        (&json!(false), &json!("5 videos"))
    );
}

/// The command lines the simulator was run with (`sim-state/args.log`).
fn sim_args(yt: &Yt) -> Vec<Vec<String>> {
    std::fs::read_to_string(yt.sim_dir.join("sim-state/args.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// An admin uploads a cookies file (stored 0600 in the data dir, never shown again) and sets
/// extra yt-dlp arguments (options that would break the worker are refused by name, as the
/// config file's `youtube.extra_args` are); every run gets `--cookies <file>` and the
/// arguments before the `--` (yt-dlp/yt-dlp yt_dlp/options.py `--cookies`, `--js-runtimes`,
/// 2026.10.26).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sets_a_cookies_file_and_extra_args_that_every_run_gets() {
    let (yt, server, _, token) = Yt::serving(2, |_| {}, "cal").await;
    let admin_id = insert_user(&yt.t.state, "root", None, "admin", None).await;
    let admin = new_session(&yt.t.state, &admin_id).await.token;
    let secret = "SAPISID\tsecret-cookie-value-123";
    let cookies =
        format!("# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t2000000000\t{secret}\n");
    let put =
        |who: &str, path: &str, body: Value| call("PUT", path).bearer(who).json(body).send(&yt.app);
    // Users cannot; a file that is not a cookies file is refused.
    let r = put(
        &token,
        "/api/v1/admin/youtube/cookies",
        json!({"content": cookies}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = put(
        &admin,
        "/api/v1/admin/youtube/cookies",
        json!({"content": "hello"}),
    )
    .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    let r = put(
        &admin,
        "/api/v1/admin/youtube/cookies",
        json!({"content": cookies}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(!r.text().contains("secret-cookie-value"), "{}", r.text());
    assert_eq!(r.data()["cookiesSource"], "uploaded");
    let stored = yt.t.state.config().data_dir.join("youtube-cookies.txt");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&stored).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), cookies);

    // Extra arguments: a refused option is named.
    for (args, named) in [
        (json!(["--js-runtimes", "node", "-o", "x"]), "-o is refused"),
        (json!(["--output=%(id)s"]), "--output is refused"),
        (json!(["--cookies", "/tmp/c.txt"]), "youtube.cookies_file"),
        (json!(["--exec", "sh"]), "--exec is refused"),
    ] {
        let r = put(
            &admin,
            "/api/v1/admin/youtube/extra-args",
            json!({ "args": args }),
        )
        .await;
        let e = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        let reason = e["details"]["fields"]["args"].as_str().unwrap();
        assert!(reason.contains(named), "{reason}");
    }
    let r = put(
        &admin,
        "/api/v1/admin/youtube/extra-args",
        json!({"args": ["--js-runtimes", "node"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        (&r.data()["extraArgs"], &r.data()["extraArgsSource"]),
        (&json!(["--js-runtimes", "node"]), &json!("admin"))
    );

    // Both the preview and the download runs get them, before the URL.
    let id = yt.submit_url(&token, &video("cookie00001")).await;
    yt.until_status(&token, &id, "completed").await;
    let runs = sim_args(&yt);
    assert_eq!(runs.len(), 2, "{runs:?}");
    // Each run gets its own 0600 copy of the file (yt-dlp writes its jar back on exit, as the
    // simulator does at once), removed after the run: the uploaded file stays as uploaded.
    let data_dir = yt.t.state.config().data_dir.clone();
    for run in &runs {
        let n = run.len();
        assert_eq!(
            [&run[n - 6], &run[n - 4], &run[n - 3]],
            ["--cookies", "--js-runtimes", "node"],
            "{run:?}"
        );
        let copy = std::path::Path::new(&run[n - 5]);
        assert_eq!(copy.parent(), Some(data_dir.as_path()), "{run:?}");
        assert_ne!(copy, stored.as_path());
    }
    let copy = std::path::PathBuf::from(&runs[1][runs[1].len() - 5]);
    eventually(
        LONG,
        "the download's cookies copy to be removed",
        || async { (!copy.exists()).then_some(()) },
    )
    .await;
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), cookies);
    // The settings never show the content; removing the file stops passing it.
    let s = call("GET", "/api/v1/admin/youtube/settings")
        .bearer(&admin)
        .send(&yt.app)
        .await;
    assert!(!s.text().contains("secret-cookie-value"));
    let r = call("DELETE", "/api/v1/admin/youtube/cookies")
        .bearer(&admin)
        .send(&yt.app)
        .await;
    assert_eq!(r.data()["cookiesSource"], Value::Null);
    assert!(!stored.exists());
    server.stop().await.unwrap();
}

/// yt-dlp writes with its own umask (0077 here, as under systemd's `UMask=`); once it finishes
/// the files are 0644 and the folders MediaNest made 0755 by default, or what `youtube.file_mode`
/// / `youtube.dir_mode` say, whatever the umask, and they belong to `youtube.group` when it is
/// set, so a Plex running as another user reads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloaded_files_and_folders_get_the_configured_modes_whatever_the_umask() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    let gid_of = |p: &Path| std::fs::metadata(p).unwrap().gid();
    // As root any group will do; otherwise one of ours (the primary one, the least we can give).
    let own_gid = rustix::process::getegid().as_raw();
    let group = if rustix::process::geteuid().is_root() {
        4242
    } else {
        own_gid
    };
    for (file_mode, dir_mode, edit) in [
        (0o644, 0o755, None),
        (0o640, 0o2750, Some(("0640", "2750"))),
    ] {
        let (yt, server, bob, token) = Yt::serving(
            5,
            |c| {
                if let Some((f, d)) = edit {
                    c.youtube.file_mode = f.into();
                    c.youtube.dir_mode = d.into();
                    c.youtube.group = Some(group.to_string());
                }
            },
            "bob",
        )
        .await;
        std::fs::write(yt.sim_dir.join("sim-umask"), "077").unwrap();
        let id = yt.submit_url(&token, &playlist("PLn2perm")).await;
        let done = yt.until_status(&token, &id, "completed").await;
        let files: Vec<String> = serde_json::from_value(done["files"].clone()).unwrap();
        assert_eq!(files.len(), 2);
        let user = yt.download_dir.join(format!("bob_{bob}"));
        let dirs = [user.clone(), user.join("Sim Playlist PLn2perm")];
        for f in &files {
            let path = yt.download_dir.join(f);
            assert_eq!(mode(&path), file_mode, "{f}: {:o}", mode(&path));
        }
        for dir in &dirs {
            assert_eq!(mode(dir), dir_mode, "{}: {:o}", dir.display(), mode(dir));
        }
        if edit.is_some() {
            for path in files.iter().map(|f| yt.download_dir.join(f)).chain(dirs) {
                assert_eq!(gid_of(&path), group, "{}", path.display());
            }
            // The download dir itself is not MediaNest's to change.
            assert_eq!(gid_of(&yt.download_dir), own_gid);
        }
        server.stop().await.unwrap();
    }
}

/// Issue 15: an admin subscribes to a channel; the scheduler checks it at once and queues its
/// downloadable uploads (not the private one, not what is live, not streams, and here no
/// Shorts) through the download queue, where they complete; a new upload is picked up by "check
/// now" and nothing is queued twice; a bot-check refusal backs the subscription off and tells
/// the admins what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_queues_new_uploads_once_and_backs_off_when_youtube_refuses() {
    use medianest::sim::ytdlp::{REFUSE_BOT, UploadKind, add_upload, refuse_listings};
    use medianest::youtube::listing;

    // The test polls the API; the per-user limit is not what it checks.
    let (yt, _server, _, _) = Yt::serving(1, unlimited, "mia").await;
    let admin = yt.admin().await;
    let get = |path: String| {
        let app = yt.app.clone();
        let admin = admin.clone();
        async move { call("GET", &path).bearer(&admin).send(&app).await.data() }
    };
    let sub_path = yt
        .subscribe(
            &admin,
            json!({"url": "https://www.youtube.com/@Sim", "skipShorts": true}),
        )
        .await;

    // What the channel's /videos tab lists, and which of it may be downloaded.
    let program = PathBuf::from(&yt.t.state.config().youtube.ytdlp_path);
    let listed = listing::list_newest(
        &program,
        "https://www.youtube.com/@sim/videos",
        50,
        &medianest::youtube::ytdlp::Passthrough::default(),
        listing::LIST_TIMEOUT,
    )
    .await
    .unwrap();
    let wanted: std::collections::BTreeSet<String> = listed
        .items
        .iter()
        .filter(|i| i.availability.downloadable() && !i.is_live && !i.was_live && !i.is_short)
        .map(|i| i.id.clone())
        .collect();
    // The /videos tab never holds Shorts, streams or the private placeholder (as on YouTube).
    assert!(!wanted.is_empty(), "{listed:?}");

    let checked = eventually(LONG, "the first check", || {
        let path = sub_path.clone();
        let get = &get;
        async move {
            let sub = get(path).await;
            (sub["lastResult"] == "ok").then_some(sub)
        }
    })
    .await;
    assert_eq!(checked["lastNewItems"], wanted.len());
    assert!(checked["nextCheckAt"].is_string(), "{checked}");
    let items = get(format!("{sub_path}/items?limit=100")).await;
    let archived: std::collections::BTreeSet<String> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            assert_eq!(i["status"], "queued", "{i}");
            assert!(i["downloadId"].is_string(), "{i}");
            i["videoId"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(archived, wanted);
    // They go through the download queue and complete.
    let want = wanted.len();
    eventually(LONG, "the queued downloads to complete", || {
        let get = &get;
        async move {
            let all = get("/api/v1/youtube/downloads?limit=100".into()).await;
            let list = all.as_array().cloned().unwrap_or_default();
            (list.len() == want && list.iter().all(|d| d["status"] == "completed")).then_some(())
        }
    })
    .await;

    // A new upload: "check now" queues it, and only it.
    let fresh = add_upload(&yt.sim_dir, "sim", "A fresh upload", UploadKind::Video).unwrap();
    let r = call("POST", &format!("{sub_path}/check"))
        .bearer(&admin)
        .send(&yt.app)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    eventually(LONG, "the fresh upload", || {
        let get = &get;
        let path = format!("{sub_path}/items?limit=100");
        let fresh = fresh.clone();
        async move {
            let items = get(path).await;
            let list = items.as_array().cloned().unwrap_or_default();
            list.iter()
                .any(|i| i["videoId"] == fresh.as_str())
                .then_some(())
        }
    })
    .await;
    let sub = get(sub_path.clone()).await;
    assert_eq!(sub["lastNewItems"], 1, "{sub}");
    assert_eq!(sub["itemCount"], wanted.len() + 1, "{sub}");

    // YouTube asks for a sign-in: the subscription backs off and the admins are told what to do.
    refuse_listings(&yt.sim_dir, REFUSE_BOT, Some(1)).unwrap();
    let r = call("POST", &format!("{sub_path}/check"))
        .bearer(&admin)
        .send(&yt.app)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let blocked = eventually(LONG, "the refusal", || {
        let path = sub_path.clone();
        let get = &get;
        async move {
            let sub = get(path).await;
            (sub["lastResult"] == "blocked").then_some(sub)
        }
    })
    .await;
    assert_eq!(blocked["consecutiveFailures"], 1, "{blocked}");
    assert!(blocked["backoffUntil"].is_string(), "{blocked}");
    assert!(
        blocked["lastError"].as_str().unwrap().contains("cookies"),
        "{blocked}"
    );
    let told = get("/api/v1/notifications?limit=50".into()).await;
    assert!(
        told.as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "subscription.blocked"),
        "{told}"
    );
    // Nothing new was queued by the refused check.
    let downloads = get("/api/v1/youtube/downloads?limit=100".into()).await;
    assert_eq!(downloads.as_array().unwrap().len(), wanted.len() + 1);
}

/// A subscription end to end with Plex: the first check's downloads are laid out as a show
/// (`<Channel>/Season <year>/<Channel> - s<year>e<MMDD><nn> - <title> [<id>].mp4`, the episode's
/// poster and the profile's sidecar subtitles beside it, the channel's avatar and banner as the
/// show's poster and art), SponsorBlock removes the profile's categories, and Plex gets each
/// episode's title, summary and date, locked, in the subscription's collection. Two new uploads
/// of one day are picked up by the next check as that day's episodes 01 and 02.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriptions_episodes_are_laid_out_for_plex_with_locked_metadata_in_its_collection() {
    use medianest::sim::ytdlp::{UploadKind, add_upload};

    let plex = medianest::sim::plex::FakePlexServer::start().await.unwrap();
    plex.set_scan_reads(0);
    let yt = Yt::new(1, |c| {
        c.services.plex.url = Some(plex.url());
        c.services.plex.api_key = Some(medianest::config::Secret::new(plex.token()));
        unlimited(c);
    });
    let root = yt.download_dir.join("subscriptions");
    std::fs::create_dir_all(&root).unwrap();
    let root = std::fs::canonicalize(&root).unwrap();
    plex.add_youtube_library("YouTube", &yt.download_dir);
    let shows = plex.add_youtube_show_library("YouTube Subscriptions", &root);
    support::prepare(&yt.t).await;
    medianest::services::admin::rebuild_clients(&yt.t.state)
        .await
        .unwrap();
    let server = RunningServer::start(&yt.t.state, yt.app.clone()).await;
    let admin = yt.admin().await;
    let get = |path: String| {
        let app = yt.app.clone();
        let admin = admin.clone();
        async move { call("GET", &path).bearer(&admin).send(&app).await.data() }
    };

    let r = call("POST", "/api/v1/admin/youtube/profiles")
        .bearer(&admin)
        .json(json!({"name": "Plex", "maxHeight": 720, "container": "mp4",
            "subtitles": {"languages": ["en", "fr"], "mode": "sidecar"},
            "sponsorblock": {"mode": "remove", "categories": ["sponsor", "selfpromo"]}}))
        .send(&yt.app)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let profile = r.data()["id"].as_str().unwrap().to_owned();
    let r = call("POST", "/api/v1/youtube/subscriptions")
        .bearer(&admin)
        .json(
            json!({"url": "https://www.youtube.com/@Sim", "skipShorts": true,
            "after": "2026-01-05", "profile": profile}),
        )
        .send(&yt.app)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.data()["id"].as_str().unwrap().to_owned();
    let sub_path = format!("/api/v1/youtube/subscriptions/{id}");

    // Every queued item downloads and reaches Plex.
    let items = eventually(LONG, "the first check's episodes in Plex", || {
        let get = &get;
        let path = format!("{sub_path}/items?limit=100");
        let plex = &plex;
        let shows = &shows;
        async move {
            let items = get(path).await;
            let list = items.as_array().cloned().unwrap_or_default();
            let done = !list.is_empty()
                && list.iter().all(|i| i["status"] == "downloaded")
                && plex.items(shows).len() == list.len()
                && plex
                    .collections()
                    .iter()
                    .any(|c| c.items.len() == list.len());
            done.then_some(list)
        }
    })
    .await;
    let sub = get(sub_path.clone()).await;
    assert_eq!(sub["title"], "Sim Channel sim", "{sub}");
    let show = root.join("Sim Channel sim");
    assert!(
        show.join("poster.jpg").is_file(),
        "the avatar as the show's poster"
    );
    assert!(
        show.join("fanart.jpg").is_file(),
        "the banner as the show's art"
    );
    let mut total = 0u64;
    for item in &items {
        let video = item["videoId"].as_str().unwrap();
        let day = item["uploadDate"].as_str().unwrap();
        assert!(day >= "2026-01-05", "{item}");
        let (year, mmdd) = (&day[..4], day[5..].replace('-', ""));
        let season = show.join(format!("Season {year}"));
        let title = item["title"].as_str().unwrap();
        let stem = format!("Sim Channel sim - s{year}e{mmdd}01 - {title} [{video}]");
        for ending in ["mp4", "jpg", "en.srt"] {
            let file = season.join(format!("{stem}.{ending}"));
            assert!(file.is_file(), "{} is missing", file.display());
            total += file.metadata().unwrap().len();
        }
        assert!(!season.join(format!("{stem}.fr.srt")).exists());
        assert!(!season.join(format!("{stem}.webp")).exists());
        // Plex has it with the video's own title, description and day, locked.
        let pms_file = season
            .join(format!("{stem}.mp4"))
            .to_string_lossy()
            .into_owned();
        let found = plex
            .items(&shows)
            .into_iter()
            .find(|i| i.file.as_deref() == Some(pms_file.as_str()))
            .unwrap_or_else(|| panic!("Plex lacks {pms_file}"));
        assert_eq!(found.title, title);
        assert_eq!(
            found.summary.as_deref(),
            Some(format!("The description of {video}.\nSecond line.").as_str())
        );
        assert_eq!(found.originally_available_at.as_deref(), Some(day));
        for field in ["title", "summary", "originallyAvailableAt"] {
            assert!(
                found.locked.iter().any(|f| f == field),
                "{field}: {found:?}"
            );
        }
    }
    let sub = get(sub_path.clone()).await;
    assert_eq!(sub["bytes"], total, "{sub}");
    let collections = plex.collections();
    assert_eq!(collections.len(), 1, "{collections:?}");
    assert_eq!(collections[0].title, "Sim Channel sim");
    // SponsorBlock got the profile's categories; subtitles were asked for.
    let log = std::fs::read_to_string(yt.sim_dir.join("sim-state/sponsorblock.log")).unwrap();
    assert_eq!(log.lines().count(), items.len(), "{log}");
    assert!(
        log.lines()
            .all(|l| l.contains(r#""remove":["sponsor","selfpromo"]"#)),
        "{log}"
    );

    // Two uploads of one day: the next check makes them that day's episodes 01 and 02.
    let first = add_upload(&yt.sim_dir, "sim", "Morning upload", UploadKind::Video).unwrap();
    let second = add_upload(&yt.sim_dir, "sim", "Evening upload", UploadKind::Video).unwrap();
    let r = call("POST", &format!("{sub_path}/check"))
        .bearer(&admin)
        .send(&yt.app)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let fresh = eventually(LONG, "the new uploads in Plex", || {
        let get = &get;
        let path = format!("{sub_path}/items?limit=100");
        let (first, second) = (first.clone(), second.clone());
        let plex = &plex;
        let shows = &shows;
        let before = items.len();
        async move {
            let list = get(path).await.as_array().cloned().unwrap_or_default();
            let new: Vec<Value> = list
                .into_iter()
                .filter(|i| i["videoId"] == first.as_str() || i["videoId"] == second.as_str())
                .collect();
            let done = new.len() == 2
                && new.iter().all(|i| i["status"] == "downloaded")
                && plex.items(shows).len() == before + 2
                && plex
                    .collections()
                    .iter()
                    .any(|c| c.items.len() == before + 2);
            done.then_some(new)
        }
    })
    .await;
    let mut prefixes: Vec<String> = fresh
        .iter()
        .map(|i| {
            let day = i["uploadDate"].as_str().unwrap().replace('-', "");
            let file = std::fs::read_dir(show.join(format!("Season {}", &day[..4])))
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .find(|n| n.ends_with(&format!("[{}].mp4", i["videoId"].as_str().unwrap())))
                .unwrap();
            file[..file.find(" - ").unwrap() + 3 + 12].to_owned()
        })
        .collect();
    prefixes.sort();
    let day = fresh[0]["uploadDate"].as_str().unwrap().replace('-', "");
    assert_eq!(
        prefixes,
        [
            format!("Sim Channel sim - s{}e{}01", &day[..4], &day[4..]),
            format!("Sim Channel sim - s{}e{}02", &day[..4], &day[4..]),
        ]
    );
    // One collection still, now with every episode.
    let collections = plex.collections();
    assert_eq!(collections.len(), 1);
    assert_eq!(collections[0].items.len(), items.len() + 2);
    server.stop().await.unwrap();
}

/// Cancelling one of a subscription's downloads marks its video so (it can then be deleted);
/// deleting the subscription cancels its queued downloads and stops the running one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriptions_downloads_are_cancelled_with_it() {
    // Slow downloads, so they are still queued or running when the test acts.
    let (yt, server, _, _) = Yt::serving(200, unlimited, "ola").await;
    let admin = yt.admin().await;
    let get = |path: String| {
        let app = yt.app.clone();
        let admin = admin.clone();
        async move { call("GET", &path).bearer(&admin).send(&app).await.data() }
    };
    let sub_path = yt
        .subscribe(
            &admin,
            json!({"url": "https://www.youtube.com/@Sim", "skipShorts": true}),
        )
        .await;
    let downloads = eventually(LONG, "one download running, others queued", || {
        let get = &get;
        async move {
            let list = get("/api/v1/youtube/downloads?limit=100".into()).await;
            let list = list.as_array().cloned().unwrap_or_default();
            let running = list.iter().any(|d| d["status"] == "downloading");
            let queued = list.iter().filter(|d| d["status"] == "queued").count();
            (running && queued >= 2).then_some(list)
        }
    })
    .await;
    // One queued download cancelled from the downloads page: its video says so.
    let cancelled = downloads.iter().find(|d| d["status"] == "queued").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = call("DELETE", &format!("/api/v1/youtube/downloads/{cancelled}"))
        .bearer(&admin)
        .send(&yt.app)
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let items = get(format!("{sub_path}/items?limit=100")).await;
    let item = items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["downloadId"] == cancelled.as_str())
        .unwrap();
    assert_eq!(
        (&item["status"], &item["reason"]),
        (&json!("failed"), &json!("cancelled"))
    );
    // Deleted by its user, the video never comes back through a retry of its download.
    let item_id = item["id"].as_str().unwrap().to_owned();
    let r = call("DELETE", &format!("{sub_path}/items/{item_id}"))
        .bearer(&admin)
        .send(&yt.app)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let r = call(
        "POST",
        &format!("/api/v1/youtube/downloads/{cancelled}/retry"),
    )
    .bearer(&admin)
    .send(&yt.app)
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(r.text().contains("deleted"), "{}", r.text());
    // The subscription deleted: nothing of it is left queued or running.
    let r = call("DELETE", &sub_path).bearer(&admin).send(&yt.app).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    eventually(LONG, "its downloads to stop", || {
        let get = &get;
        async move {
            let list = get("/api/v1/youtube/downloads?limit=100".into()).await;
            let list = list.as_array().cloned().unwrap_or_default();
            list.iter()
                .all(|d| matches!(d["status"].as_str(), Some("cancelled" | "completed")))
                .then_some(())
        }
    })
    .await;
    let list = get("/api/v1/youtube/downloads?limit=100".into()).await;
    let cancelled = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == "cancelled")
        .count();
    assert!(cancelled >= 3, "{list}");
    server.stop().await.unwrap();
}
