//! The download workers: `youtube.workers` loops that each claim the oldest `queued` row in a
//! write transaction and run yt-dlp for it, so no more than that many yt-dlp processes ever run
//! for downloads.
//!
//! A run: metadata (cached) for the title and the folder, the per-user disk budget, then yt-dlp
//! in its own process group (killing the group takes any ffmpeg it started along), arguments
//! only, never a shell. Its output is read line by line with a length cap and lossy UTF-8; a line
//! the worker does not understand is logged and skipped. Progress lives in the registry
//! (`super::Youtube`), goes out as `download.progress` at most twice a second and to the row at
//! most once a second. No output for `youtube.stall_timeout_secs` kills the run. Every file yt-dlp
//! reports is checked to be inside the user's folder before it is recorded.
//!
//! At start, rows a crash left `downloading` return to the queue; at shutdown, running ones are
//! stopped and put back (their partial files stay, yt-dlp resumes them).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::OptionalExtension;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::ytdlp::{self, DownloadPlan, Exit, FailedItem, Line, Metadata, Quality};
use super::{Download, Live, ProgressEvent, Running, get, publish_updated};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::events::{Audience, Event, kind};
use crate::notifications;
use crate::state::AppState;

/// Longest line read from yt-dlp; the rest of a longer one is dropped.
const MAX_LINE: usize = 64 * 1024;
/// Largest metadata document read.
const MAX_METADATA_BYTES: u64 = 32 * 1024 * 1024;
/// stderr lines kept for the error message.
const STDERR_TAIL: usize = 20;
/// At most this often a `download.progress` event per download.
const EVENT_EVERY: Duration = Duration::from_millis(500);
/// At most this often a progress write to the row.
const WRITE_EVERY: Duration = Duration::from_secs(1);
/// A worker with nothing to do looks at the queue this often even without a wake-up.
const IDLE_POLL: Duration = Duration::from_secs(30);

/// Why a metadata call failed (cloneable: the cache hands one failure to every waiter).
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataError {
    /// yt-dlp could not be started.
    Unavailable(String),
    Timeout,
    /// yt-dlp said no; its reason.
    Refused(String),
    /// yt-dlp answered something that is not metadata.
    Invalid,
}

impl MetadataError {
    /// The reason as a person reads it (for a download's `error`).
    pub fn reason(&self) -> String {
        match self {
            Self::Unavailable(_) => "yt-dlp could not be started".to_owned(),
            Self::Timeout => format!(
                "yt-dlp did not describe the URL within {} s",
                super::METADATA_TIMEOUT.as_secs()
            ),
            Self::Refused(r) => r.clone(),
            Self::Invalid => "yt-dlp answered with something that is not metadata".to_owned(),
        }
    }
}

impl From<MetadataError> for AppError {
    fn from(e: MetadataError) -> Self {
        match e {
            MetadataError::Unavailable(detail) => {
                tracing::warn!(%detail, "yt-dlp could not be started");
                AppError::new(ErrorCode::DownloaderUnavailable)
            }
            MetadataError::Timeout => AppError::Upstream {
                code: ErrorCode::UpstreamTimeout,
                service: "YouTube",
                detail: "yt-dlp -J timed out".into(),
                retry_after: None,
            },
            // yt-dlp's reason is about the URL the caller sent ("Video unavailable").
            MetadataError::Refused(reason) => AppError::validation([("url", reason)]),
            MetadataError::Invalid => AppError::Upstream {
                code: ErrorCode::UpstreamError,
                service: "YouTube",
                detail: "yt-dlp -J printed no JSON object".into(),
                retry_after: None,
            },
        }
    }
}

/// A yt-dlp command in its own process group, with no stdin.
pub(super) fn command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    cmd
}

/// Kills the whole process group led by `child` (yt-dlp and whatever it started).
pub(super) fn kill_group(child: &Child) {
    let Some(pid) = child
        .id()
        .and_then(|p| rustix::process::Pid::from_raw(p as i32))
    else {
        return;
    };
    if let Err(e) = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL) {
        tracing::debug!(error = %e, "kill process group");
    }
}

/// Runs `yt-dlp -J --flat-playlist` for `url` (bounded in time and size).
pub async fn fetch_metadata(
    program: &Path,
    url: &str,
    items: u32,
    pass: &ytdlp::Passthrough,
) -> Result<Metadata, MetadataError> {
    let mut child = command(program)
        .args(ytdlp::metadata_args(url, items, pass))
        .spawn()
        .map_err(|e| MetadataError::Unavailable(e.to_string()))?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(MetadataError::Unavailable("no pipes".into()));
    };
    let run = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut stdout = stdout.take(MAX_METADATA_BYTES);
        let mut stderr = stderr.take(MAX_LINE as u64 * 4);
        // A read error leaves what was read; the exit status decides.
        let _ = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
        let status = child.wait().await;
        (out, err, status)
    };
    let (out, err, status) = match tokio::time::timeout(super::METADATA_TIMEOUT, run).await {
        Ok(done) => done,
        Err(_) => {
            kill_group(&child);
            let _ = child.wait().await;
            return Err(MetadataError::Timeout);
        }
    };
    let status = status.map_err(|e| MetadataError::Unavailable(e.to_string()))?;
    if !status.success() {
        let tail: Vec<String> = String::from_utf8_lossy(&err)
            .lines()
            .map(str::to_owned)
            .collect();
        let exit = status.code().map_or(Exit::Signal, Exit::Code);
        return Err(MetadataError::Refused(ytdlp::failure_reason(exit, &tail)));
    }
    ytdlp::parse_metadata(&out, items).ok_or(MetadataError::Invalid)
}

/// The queue task: puts interrupted rows back, then runs the workers until shutdown.
pub async fn run(state: AppState) {
    let data_dir = state.config().data_dir.clone();
    let _ = tokio::task::spawn_blocking(move || super::remove_stale_cookie_copies(&data_dir)).await;
    match state.db().write(|tx| super::requeue_interrupted(tx)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            count = n,
            "downloads interrupted by a stop are queued again"
        ),
        Err(e) => tracing::warn!(error = %e, "could not requeue interrupted downloads"),
    }
    let workers = state.config().youtube.workers.max(1);
    let loops = (0..workers).map(|n| work(state.clone(), n));
    tokio::join!(
        futures_util::future::join_all(loops),
        super::handoff::run(state.clone())
    );
}

async fn work(state: AppState, number: u32) {
    let token = state.shutdown_token().clone();
    loop {
        if token.is_cancelled() {
            return;
        }
        match claim(&state).await {
            Ok(Some(job)) => run_job(&state, job).await,
            Ok(None) => {
                tokio::select! {
                    () = token.cancelled() => return,
                    () = state.youtube().wake.notified() => {}
                    () = tokio::time::sleep(IDLE_POLL) => {}
                }
            }
            Err(e) => {
                tracing::warn!(worker = number, error = %e, "could not claim a download");
                tokio::select! {
                    () = token.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// A claimed download.
struct Job {
    download: Download,
    username: String,
    running: Arc<Running>,
}

/// Takes the oldest queued row, marks it `downloading` and registers it, in one transaction.
async fn claim(state: &AppState) -> AppResult<Option<Job>> {
    let now = state.clock().now_ms();
    let registry = state.clone();
    let job = state
        .db()
        .write(move |tx| {
            let id: Option<String> = tx
                .prepare_cached(super::sql::CLAIM)?
                .query_row([now], |r| r.get(0))
                .optional()?;
            let Some(id) = id else { return Ok(None) };
            let download =
                get(tx, &id)?.ok_or_else(|| AppError::internal("claimed download vanished"))?;
            let username: String = tx
                .prepare_cached("SELECT username FROM users WHERE id = ?1")?
                .query_row([&download.user_id], |r| r.get(0))?;
            // Registered before the commit: a cancel that sees `downloading` finds the entry.
            let running = registry.youtube().register(&id, &download.user_id);
            Ok(Some(Job {
                download,
                username,
                running,
            }))
        })
        .await?;
    if let Some(job) = &job {
        tracing::info!(download = %job.download.id, url = %job.download.url, "download started");
        publish_updated(state, &job.download);
    }
    Ok(job)
}

/// How a run ended.
#[derive(Debug)]
enum Outcome {
    /// Files were made (`bytes` in all, as they are on disk); `failed` are the items yt-dlp
    /// could not download meanwhile.
    Completed {
        files: Vec<String>,
        bytes: u64,
        failed: Vec<FailedItem>,
    },
    Failed {
        reason: String,
        failed: Vec<FailedItem>,
    },
    Cancelled {
        partial: Vec<PathBuf>,
    },
    /// The server is stopping: back to the queue.
    Interrupted,
}

async fn run_job(state: &AppState, job: Job) {
    let id = job.download.id.clone();
    let outcome = execute(state, &job).await;
    if let Err(e) = finish(state, &job, outcome).await {
        tracing::error!(download = %id, error = %e, "could not record how a download ended");
    }
    state.youtube().unregister(&id);
}

fn fail(reason: impl Into<String>) -> Outcome {
    Outcome::Failed {
        reason: reason.into(),
        failed: Vec::new(),
    }
}

/// Bytes under `dir`, not following symbolic links.
fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}

/// The user's folder under the download dir: `<username, made safe>_<user id>`. The name part
/// is for people; the id part makes it one user's alone (two names that are made safe alike,
/// `ann?` and `ann*`, still get two folders). Ids are UUIDs and used as they are; any other id
/// becomes `x` and its bytes in hex (or `h` and its SHA-256 when long), which no UUID spells.
/// Neither form contains `_`, so the text after the last `_` tells the user: two users never
/// share a folder.
pub fn user_folder(username: &str, user_id: &str) -> String {
    use std::fmt::Write as _;
    let name = ytdlp::safe_component(username, 48, "user");
    let id = match uuid::Uuid::parse_str(user_id) {
        Ok(u) if u.hyphenated().to_string() == user_id => user_id.to_owned(),
        _ if user_id.len() <= 64 => user_id.bytes().fold(String::from("x"), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        }),
        _ => {
            use sha2::Digest;
            sha2::Sha256::digest(user_id.as_bytes())
                .iter()
                .fold(String::from("h"), |mut out, b| {
                    let _ = write!(out, "{b:02x}");
                    out
                })
        }
    };
    format!("{name}_{id}")
}

/// Bytes the user's downloads take: everything under their folder `own` (finished files and
/// partial ones kept for a retry) plus the recorded files of their downloads elsewhere (paths
/// relative to `download_root`, e.g. made before folders carried the user id). Only their own
/// files count, never another user's.
fn used_bytes(own: &Path, download_root: &Path, recorded: &[String]) -> u64 {
    let mut total = dir_size(own);
    let mut seen = HashSet::new();
    for rel in recorded {
        let rel = Path::new(rel);
        let plain = rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !plain {
            continue;
        }
        let path = download_root.join(rel);
        if path.starts_with(own) || !seen.insert(path.clone()) {
            continue;
        }
        if let Ok(meta) = path.symlink_metadata()
            && meta.is_file()
        {
            total += meta.len();
        }
    }
    total
}

/// The recorded files of the user's downloads (paths relative to the download dir).
async fn recorded_files(state: &AppState, user_id: &str) -> AppResult<Vec<String>> {
    let user_id = user_id.to_owned();
    state
        .db()
        .run(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT file_paths FROM youtube_downloads
                  WHERE user_id = ?1 AND file_paths != '[]'",
            )?;
            let mut files = Vec::new();
            let rows = stmt.query_map([&user_id], |r| r.get::<_, String>(0))?;
            for row in rows {
                // The column is CHECKed to be valid JSON.
                files.extend(serde_json::from_str::<Vec<String>>(&row?).unwrap_or_default());
            }
            Ok(files)
        })
        .await
}

/// `n` bytes as a short text (`1.5 GiB`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

async fn execute(state: &AppState, job: &Job) -> Outcome {
    let config = &state.config().youtube;
    let Some(program) = super::resolve_ytdlp(&config.ytdlp_path) else {
        return fail("yt-dlp was not found (youtube.ytdlp_path)");
    };
    let Ok(url) = super::url::parse(&job.download.url) else {
        return fail("the stored URL is no longer accepted");
    };
    let meta = tokio::select! {
        m = super::metadata_with(state, &program, &url, None) => m,
        () = job.running.cancel.cancelled() => return Outcome::Cancelled { partial: Vec::new() },
        () = state.shutdown_token().cancelled() => return Outcome::Interrupted,
    };
    let meta = match meta {
        Ok(lookup) => lookup.value,
        Err(e) => return fail(e.reason()),
    };
    // A subscription's video goes under the subscriptions root, laid out for Plex.
    let episode = match super::subscriptions::downloads::prepare(state, &job.download.id, &meta)
        .await
    {
        Ok(Ok(episode)) => episode,
        Ok(Err(reason)) => {
            tracing::warn!(download = %job.download.id, %reason, "no place for a subscription's episode");
            return fail(reason);
        }
        Err(e) => {
            tracing::error!(download = %job.download.id, error = %e, "cannot prepare a subscription's episode");
            return fail("the subscription's episode could not be prepared");
        }
    };
    let playlist = url.kind == super::url::Kind::Playlist;
    let folder_title = if playlist {
        Some(meta.title.clone())
    } else {
        meta.channel.clone()
    };
    let user_root = state
        .config()
        .download_dir()
        .join(user_folder(&job.username, &job.download.user_id));
    let (base, folder_name) = match &episode {
        Some(episode) => (
            super::subscriptions_root(state.config()),
            episode.folder.clone(),
        ),
        None => (
            user_root.clone(),
            PathBuf::from(ytdlp::safe_component(
                folder_title.as_deref().unwrap_or_default(),
                ytdlp::MAX_FOLDER_BYTES,
                "Unsorted",
            )),
        ),
    };
    if let Err(e) = tokio::fs::create_dir_all(base.join(&folder_name)).await {
        tracing::error!(error = %e, dir = %base.display(), "cannot create the download folder");
        return fail("the download folder could not be created");
    }
    if episode.is_some() {
        let download_root = super::download_root(state.config());
        let written = tokio::task::spawn_blocking(move || {
            super::subscriptions::downloads::ensure_plexignore(&download_root)
        })
        .await;
        if let Ok(Err(e)) = written {
            tracing::warn!(error = %e, "cannot write the download dir's .plexignore");
        }
    }
    // Checked against the resolved root, so a symbolic link in a title cannot lead outside.
    let root = match tokio::fs::canonicalize(&base).await {
        Ok(r) => r,
        Err(_) => return fail("the download folder could not be created"),
    };
    let folder = root.join(&folder_name);
    {
        let (id, title, total) = (
            job.download.id.clone(),
            meta.title.clone(),
            i64::from(meta.item_count),
        );
        let _ = state
            .db()
            .write(move |tx| {
                tx.prepare_cached(
                    "UPDATE youtube_downloads SET title = ?2, items_total = ?3
                      WHERE id = ?1 AND status = 'downloading'",
                )?
                .execute(rusqlite::params![id, title, total])?;
                Ok(())
            })
            .await;
        let mut live = job.running.live.lock().unwrap_or_else(|e| e.into_inner());
        live.items_total = i64::from(meta.item_count);
    }
    let budget = config.max_user_bytes;
    let recorded = match recorded_files(state, &job.download.user_id).await {
        Ok(files) => files,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the user's recorded files");
            return fail("the disk budget could not be checked");
        }
    };
    // The owner's own folder counts whole; a subscription's files count as recorded files.
    let walk_root = if episode.is_some() {
        super::download_root(state.config()).join(user_folder(&job.username, &job.download.user_id))
    } else {
        root.clone()
    };
    let download_root = root.parent().unwrap_or(&root).to_path_buf();
    let used =
        tokio::task::spawn_blocking(move || used_bytes(&walk_root, &download_root, &recorded))
            .await
            .unwrap_or(0);
    if used >= budget {
        return fail(format!(
            "your downloads already use {} of your {} disk budget; delete some files first",
            human_bytes(used),
            human_bytes(budget)
        ));
    }
    let plan = DownloadPlan {
        url: url.canonical(),
        playlist,
        quality: Quality::parse(&job.download.quality).unwrap_or(Quality::Height(1080)),
        format: job.download.format.clone(),
        folder: folder.clone(),
        pass: super::passthrough(state).await,
        episode: episode.as_ref().map(|e| e.files.clone()),
    };
    let run = RunContext {
        state,
        job,
        root: &root,
        used,
        budget,
        stall: Duration::from_secs(config.stall_timeout_secs),
        sidecars: episode.is_some(),
    };
    let outcome = run.process(&program, &plan).await;
    if let Outcome::Completed { files, .. } = &outcome {
        // yt-dlp wrote with the process's umask; Plex may run as another user.
        let (youtube, files) = (config.clone(), files.clone());
        let download_root = root.parent().unwrap_or(&root).to_path_buf();
        let user_root = root.clone();
        let applied = tokio::task::spawn_blocking(move || {
            super::perms::apply(&youtube, &download_root, &user_root, &files)
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        if let Err(e) = applied {
            tracing::error!(download = %job.download.id, error = %e, "cannot set the downloaded files' mode and group");
        }
    }
    outcome
}

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
}

/// Reads `reader` line by line into `tx`: lossy UTF-8, lines capped at [`MAX_LINE`].
async fn read_lines<R: AsyncRead + Unpin>(
    mut reader: R,
    stream: Stream,
    tx: mpsc::Sender<(Stream, String)>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 8192];
    let mut skipping = false;
    loop {
        let n = match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &chunk[..n] {
            if b == b'\n' {
                if !skipping && tx.send((stream, lossy(&buf))).await.is_err() {
                    return;
                }
                buf.clear();
                skipping = false;
            } else if buf.len() < MAX_LINE {
                buf.push(b);
            } else if !skipping {
                // Too long to be a line we want: keep its start, drop the rest.
                skipping = true;
                if tx.send((stream, lossy(&buf))).await.is_err() {
                    return;
                }
                buf.clear();
            }
        }
    }
    if !buf.is_empty() && !skipping {
        let _ = tx.send((stream, lossy(&buf))).await;
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct RunContext<'a> {
    state: &'a AppState,
    job: &'a Job,
    /// The user's folder, resolved.
    root: &'a Path,
    /// Bytes the user's folder held before this run.
    used: u64,
    budget: u64,
    stall: Duration,
    /// A subscription's episode: the files beside each video are recorded with it.
    sidecars: bool,
}

/// What the worker has learnt from yt-dlp's output so far.
#[derive(Debug, Default)]
struct Tracker {
    live: Live,
    /// Bytes of streams finished in this run.
    finished_bytes: u64,
    /// Bytes of the stream being downloaded.
    current_bytes: u64,
    /// Final files inside the user's folder.
    files: Vec<PathBuf>,
    /// Files yt-dlp reported outside it.
    outside: Vec<String>,
    /// Every file progress lines named (final and temporary), for the cancel clean-up.
    touched: HashSet<PathBuf>,
    unknown_lines: u64,
    /// The playlist item yt-dlp is on (`Downloading item N of M`) and the video id it named.
    item_index: Option<u32>,
    item_id: Option<String>,
    /// The playlist position of each video id yt-dlp named: stderr is read apart from stdout,
    /// so an `ERROR:` line can arrive after the next item's first lines; its id says which
    /// item failed.
    item_ids: std::collections::HashMap<String, u32>,
    /// Items counted in `live.items_done` (done or failed), so none counts twice.
    counted: HashSet<u32>,
    /// Streams the current item downloads in turn (video, then audio: two 0-100 cycles) and
    /// how many of them are finished.
    streams: u32,
    streams_done: u32,
    /// Items yt-dlp reported as failed while going on with the others.
    failed: Vec<FailedItem>,
    /// `ERROR:` lines past [`ytdlp::MAX_FAILED_ITEMS`].
    failed_dropped: u64,
}

impl Tracker {
    /// The next item starts: its streams are not known yet.
    fn next_item(&mut self, index: Option<u32>) {
        self.item_index = index;
        self.item_id = None;
        self.streams = 1;
        self.streams_done = 0;
    }

    /// yt-dlp names the video it works on.
    fn working_on(&mut self, id: String) {
        if let Some(index) = self.item_index
            && self.item_ids.len() < 100_000
        {
            self.item_ids.insert(id.clone(), index);
        }
        self.item_id = Some(id);
    }

    /// Counts item `index` as done (finished or failed) once; an item without a position
    /// (a single video) counts each time.
    fn count_item(&mut self, index: Option<u32>) {
        if let Some(index) = index
            && !self.counted.insert(index)
        {
            return;
        }
        self.live.items_done += 1;
        self.live.items_total = self.live.items_total.max(self.live.items_done);
        let total = self.live.items_total.max(1) as f64;
        self.live.progress = self
            .live
            .progress
            .max((self.live.items_done as f64 / total * 100.0).min(99.0));
    }

    /// A progress line: bytes, and the shown progress, which counts items and never goes back.
    fn on_progress(&mut self, p: &ytdlp::Progress) {
        let finished = p.status.as_deref() == Some("finished");
        let cycle = if finished {
            self.finished_bytes += p
                .total_bytes
                .or(p.downloaded_bytes)
                .unwrap_or(self.current_bytes);
            self.current_bytes = 0;
            self.streams_done += 1;
            0.0
        } else {
            if let Some(done) = p.downloaded_bytes {
                self.current_bytes = done;
            }
            p.fraction().unwrap_or(0.0)
        };
        // Each stream of the item (video, then audio) runs its own 0-100 cycle: the item's
        // share is the cycles done plus the running one, over all of them.
        let streams = self
            .streams
            .max(self.streams_done + u32::from(!finished))
            .max(1);
        let fraction =
            ((f64::from(self.streams_done) + cycle) / f64::from(streams)).clamp(0.0, 1.0);
        let total = self.live.items_total.max(self.live.items_done + 1).max(1) as f64;
        let overall = (self.live.items_done as f64 + fraction * 0.99) / total * 100.0;
        self.live.progress = self.live.progress.max(overall.min(99.0));
        self.live.bytes_done = (self.finished_bytes + self.current_bytes) as i64;
        self.live.speed = p.speed;
        self.live.eta = p.eta;
    }

    /// A stderr line: an `ERROR:` is a failed item (yt-dlp goes on with the next one).
    fn on_stderr(&mut self, line: &str) {
        let Some((id, reason)) = ytdlp::parse_error_line(line) else {
            return;
        };
        let index = match &id {
            Some(id) => self.item_ids.get(id).copied().or(self.item_index),
            None => self.item_index,
        };
        let id = id.or_else(|| self.item_id.clone());
        let same = self
            .failed
            .iter()
            .rev()
            .take(4)
            .any(|f| f.index == index && f.id == id);
        if same {
            return;
        }
        if self.failed.len() < ytdlp::MAX_FAILED_ITEMS {
            self.failed.push(FailedItem { index, id, reason });
        } else {
            self.failed_dropped += 1;
        }
        if index.is_some() {
            self.count_item(index);
        }
    }
}

/// Why the loop stopped the process.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stop {
    Cancelled,
    Shutdown,
    Stalled,
    OverBudget,
}

impl RunContext<'_> {
    async fn process(&self, program: &Path, plan: &DownloadPlan) -> Outcome {
        let id = &self.job.download.id;
        // stdout and stderr share one pipe, as on a terminal: an `ERROR:` about an item comes
        // in order with the item's own lines (yt-dlp flushes each message), so it is told
        // apart from the next item's.
        let started = std::io::pipe().and_then(|(reader, writer)| {
            let mut cmd = command(program);
            cmd.args(ytdlp::download_args(plan))
                .stdout(writer.try_clone()?)
                .stderr(writer);
            let child = cmd.spawn()?;
            // `cmd` (and its copies of the write end) is gone: the pipe ends with the process.
            drop(cmd);
            let reader = tokio::net::unix::pipe::Receiver::from_owned_fd(reader.into())?;
            Ok((child, reader))
        });
        let (mut child, output) = match started {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(download = %id, error = %e, "cannot start yt-dlp");
                return fail("yt-dlp could not be started");
            }
        };
        tracing::debug!(download = %id, pid = child.id(), "yt-dlp running");
        let (tx, mut rx) = mpsc::channel::<(Stream, String)>(256);
        tokio::spawn(read_lines(output, Stream::Stdout, tx));
        let mut tracker = Tracker {
            live: self.job.running.live(),
            ..Tracker::default()
        };
        let mut stderr_tail: Vec<String> = Vec::new();
        let mut last_output = tokio::time::Instant::now();
        let mut last_event = Instant::now() - EVENT_EVERY;
        let mut last_write = Instant::now();
        let mut open = true;
        let token = self.state.shutdown_token().clone();
        let mut stop: Option<Stop> = None;
        let status = loop {
            let stall_at = last_output + self.stall;
            tokio::select! {
                line = rx.recv(), if open => match line {
                    Some((_, line)) => {
                        last_output = tokio::time::Instant::now();
                        if ytdlp::is_message(&line) {
                            // What yt-dlp writes to stderr: `ERROR:`, `WARNING:`, usage.
                            tracing::debug!(download = %id, "yt-dlp: {line}");
                            tracker.on_stderr(&line);
                            self.store_live(&tracker.live);
                            if stderr_tail.len() == STDERR_TAIL {
                                stderr_tail.remove(0);
                            }
                            stderr_tail.push(ytdlp::truncate_chars(&line, 1000));
                        }
                        self.on_stdout(&line, &mut tracker).await;
                    }
                    None => open = false,
                },
                status = child.wait(), if !open => break status,
                () = self.job.running.cancel.cancelled(), if stop.is_none() => stop = Some(Stop::Cancelled),
                () = token.cancelled(), if stop.is_none() => stop = Some(Stop::Shutdown),
                () = tokio::time::sleep_until(stall_at), if stop.is_none() => stop = Some(Stop::Stalled),
            }
            if stop.is_none()
                && self.used + tracker.finished_bytes + tracker.current_bytes > self.budget
            {
                stop = Some(Stop::OverBudget);
            }
            if let Some(why) = stop {
                kill_group(&child);
                tracing::info!(download = %id, reason = ?why, "yt-dlp stopped");
                break child.wait().await;
            }
            if last_event.elapsed() >= EVENT_EVERY {
                last_event = Instant::now();
                self.publish_progress(&tracker.live);
            }
            if last_write.elapsed() >= WRITE_EVERY {
                last_write = Instant::now();
                if !self.write_progress(&tracker.live).await {
                    // The row is no longer ours (cancelled while we were starting).
                    stop = Some(Stop::Cancelled);
                    kill_group(&child);
                    break child.wait().await;
                }
            }
        };
        if tracker.unknown_lines > 0 {
            tracing::debug!(download = %id, lines = tracker.unknown_lines, "yt-dlp lines not understood");
        }
        match stop {
            Some(Stop::Cancelled) => {
                let done: HashSet<&PathBuf> = tracker.files.iter().collect();
                let partial = tracker
                    .touched
                    .iter()
                    .filter(|p| !done.contains(p))
                    .cloned()
                    .collect();
                return Outcome::Cancelled { partial };
            }
            Some(Stop::Shutdown) => return Outcome::Interrupted,
            Some(Stop::Stalled) => {
                return fail(format!(
                    "yt-dlp printed nothing for {} s and was stopped",
                    self.stall.as_secs()
                ));
            }
            Some(Stop::OverBudget) => {
                return fail(format!(
                    "this download would pass your disk budget of {} (already used: {}); it was stopped",
                    human_bytes(self.budget),
                    human_bytes(self.used)
                ));
            }
            None => {}
        }
        let exit = match status {
            Ok(s) => s.code().map_or(Exit::Signal, Exit::Code),
            Err(e) => {
                tracing::error!(download = %id, error = %e, "waiting for yt-dlp failed");
                Exit::Signal
            }
        };
        if !tracker.outside.is_empty() {
            tracing::error!(download = %id, files = ?tracker.outside, "yt-dlp reported files outside the user's folder");
            return fail(
                "yt-dlp wrote a file outside the download folder; the download was not accepted",
            );
        }
        if tracker.failed_dropped > 0
            && let Some(last) = tracker.failed.last_mut()
        {
            last.reason = format!(
                "{} (and {} more failed items not listed)",
                last.reason, tracker.failed_dropped
            );
        }
        // yt-dlp goes on after a failed item and exits 1 at the end (`YoutubeDL.trouble`):
        // the files it made are the download. A file is recorded only once yt-dlp has moved
        // it to its final name (`after_move`), so whatever the exit (101: a download limit
        // was reached, a signal from outside), the recorded files are whole and the download
        // completes with them; the exit is then shown as a failed item. Only a run that made
        // nothing fails (2: options refused, a crash before the first file).
        if tracker.files.is_empty() {
            let reason = if exit == Exit::Code(0) {
                "yt-dlp finished without downloading any file".to_owned()
            } else {
                ytdlp::failure_reason(exit, &stderr_tail)
            };
            return Outcome::Failed {
                reason,
                failed: tracker.failed,
            };
        }
        if exit != Exit::Code(0) && tracker.failed.is_empty() {
            // Exit 1 with no `ERROR:` line read: keep the reason yt-dlp gave, if any.
            tracker.failed.push(FailedItem {
                index: None,
                id: None,
                reason: ytdlp::failure_reason(exit, &stderr_tail),
            });
        } else if !matches!(exit, Exit::Code(0 | 1)) {
            // The items' own errors are listed; the exit that cut the run short is told apart
            // from them.
            tracker.failed.push(FailedItem {
                index: None,
                id: None,
                reason: ytdlp::failure_reason(exit, &[]),
            });
        }
        if !tracker.failed.is_empty() {
            // What the failed items left (`.part`, `.ytdl`, unmerged streams) goes: the disk
            // holds the recorded files and nothing else of this run.
            let done: HashSet<&PathBuf> = tracker.files.iter().collect();
            let partial: Vec<PathBuf> = tracker
                .touched
                .iter()
                .filter(|p| !done.contains(p))
                .cloned()
                .collect();
            remove_partial(self.root, &partial).await;
        }
        if self.sidecars {
            // The episode's poster and subtitles, written beside it under its name.
            let videos = tracker.files.clone();
            let root = self.root.to_path_buf();
            let extra = tokio::task::spawn_blocking(move || {
                videos
                    .iter()
                    .flat_map(|v| super::subscriptions::downloads::sidecars(v))
                    .filter(|p| ytdlp::is_inside(&root, p))
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            for path in extra {
                if !tracker.files.contains(&path) {
                    tracker.files.push(path);
                }
            }
        }
        let mut bytes = 0u64;
        for f in &tracker.files {
            if let Ok(meta) = tokio::fs::symlink_metadata(f).await
                && meta.is_file()
            {
                bytes += meta.len();
            }
        }
        let files = tracker
            .files
            .iter()
            .map(|f| {
                // The root is `<download dir>/<user>`, resolved: files are named from the
                // download dir down.
                f.strip_prefix(self.root.parent().unwrap_or(self.root))
                    .unwrap_or(f)
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        Outcome::Completed {
            files,
            bytes,
            failed: tracker.failed,
        }
    }

    async fn on_stdout(&self, line: &str, t: &mut Tracker) {
        match ytdlp::parse_line(line) {
            Line::Progress(p) => {
                for name in [&p.filename, &p.tmpfilename].into_iter().flatten() {
                    let path = PathBuf::from(name);
                    if ytdlp::is_inside(self.root, &path) {
                        t.touched.insert(path.clone());
                        // yt-dlp's side files for a download in progress.
                        for ext in ["part", "ytdl"] {
                            let mut side = path.clone().into_os_string();
                            side.push(".");
                            side.push(ext);
                            t.touched.insert(PathBuf::from(side));
                        }
                    }
                }
                t.on_progress(&p);
                self.store_live(&t.live);
            }
            Line::Done(path) => {
                // Resolved on disk, so a symbolic link cannot point the check elsewhere.
                let real = tokio::fs::canonicalize(&path).await.unwrap_or(path.clone());
                if ytdlp::is_inside(self.root, &real) && real.is_file() {
                    if !t.files.contains(&real) {
                        t.files.push(real);
                    }
                    t.touched.remove(&path);
                } else {
                    t.outside.push(path.to_string_lossy().into_owned());
                }
                let index = t.item_index;
                t.count_item(index);
                t.next_item(index);
                self.store_live(&t.live);
            }
            Line::Item { index, total } => {
                t.next_item(Some(index));
                if let Some(total) = total {
                    // yt-dlp's own count of the items it downloads in this run.
                    t.live.items_total = i64::from(total).max(t.live.items_done);
                }
                self.store_live(&t.live);
            }
            Line::Formats { id, streams } => {
                t.working_on(id);
                t.streams = streams;
                t.streams_done = 0;
            }
            Line::Working(id) => t.working_on(id),
            // The file is there already: no progress follows, its `after_move` line does.
            Line::AlreadyDone => {}
            Line::Other => {
                t.unknown_lines += 1;
                tracing::trace!(download = %self.job.download.id, "yt-dlp: {line}");
            }
        }
    }

    fn store_live(&self, live: &Live) {
        *self
            .job
            .running
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = live.clone();
    }

    fn publish_progress(&self, live: &Live) {
        self.state.events().publish(Event::new(
            kind::DOWNLOAD_PROGRESS,
            Audience::UsersAndAdmins(vec![self.job.download.user_id.clone()]),
            &ProgressEvent {
                id: &self.job.download.id,
                status: "downloading",
                live,
            },
        ));
    }

    /// Writes the progress to the row; false when the row is no longer `downloading`.
    async fn write_progress(&self, live: &Live) -> bool {
        let id = self.job.download.id.clone();
        let live = live.clone();
        match self
            .state
            .db()
            .write(move |tx| {
                Ok(tx
                    .prepare_cached(
                        "UPDATE youtube_downloads
                            SET progress = ?2, items_done = ?3, items_total = ?4, bytes_done = ?5
                          WHERE id = ?1 AND status = 'downloading'",
                    )?
                    .execute(rusqlite::params![
                        id,
                        live.progress,
                        live.items_done,
                        live.items_total,
                        live.bytes_done
                    ])?)
            })
            .await
        {
            Ok(n) => n == 1,
            // A busy database is no reason to stop a download.
            Err(e) => {
                tracing::debug!(error = %e, "progress not written");
                true
            }
        }
    }
}

/// Removes what a cancelled run left behind (only inside the download dir), and the folder
/// when it is empty.
async fn remove_partial(download_root: &Path, partial: &[PathBuf]) {
    let mut folders = HashSet::new();
    for path in partial {
        if !ytdlp::is_inside(download_root, path) {
            continue;
        }
        match tokio::fs::remove_file(path).await {
            Ok(()) => tracing::debug!(file = %path.display(), "partial file removed"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "partial file not removed")
            }
        }
        if let Some(parent) = path.parent() {
            folders.insert(parent.to_path_buf());
        }
    }
    for folder in folders {
        // Fails (and is meant to) when other files are still there.
        let _ = tokio::fs::remove_dir(&folder).await;
    }
}

/// Ends a run with `update` (which changes the row only while it is `downloading`) and, when it
/// did, notifies the owner (`kind`, `title`, a message made from the download's title), all in
/// one transaction; then publishes. Returns the download when this call ended it (not when it
/// was cancelled meanwhile, or deleted with its user).
async fn end_and_notify<U, M>(
    state: &AppState,
    id: &str,
    update: U,
    (kind, title): (&'static str, &'static str),
    message: M,
) -> AppResult<Option<Download>>
where
    U: FnOnce(&rusqlite::Transaction<'_>, &str) -> AppResult<usize> + Send + 'static,
    M: FnOnce(&str) -> String + Send + 'static,
{
    let id = id.to_owned();
    let now = state.clock().now_ms();
    let ended = state
        .db()
        .write(move |tx| {
            let changed = update(tx, &id)?;
            let Some(download) = get(tx, &id)? else {
                return Ok(None);
            };
            if changed == 0 {
                return Ok(Some((download, None)));
            }
            let name = download.title.as_deref().unwrap_or(&download.url);
            let made = notifications::create(
                tx,
                &download.user_id,
                kind,
                title,
                &message(name),
                Some(serde_json::json!({"downloadId": id, "title": name})),
                now,
            )?;
            Ok(Some((download, Some(made))))
        })
        .await?;
    let Some((download, created)) = ended else {
        return Ok(None);
    };
    publish_updated(state, &download);
    let Some(made) = created else {
        return Ok(None);
    };
    notifications::publish_created(state.events(), &download.user_id, &made);
    Ok(Some(download))
}

async fn finish(state: &AppState, job: &Job, outcome: Outcome) -> AppResult<()> {
    let id = job.download.id.clone();
    let now = state.clock().now_ms();
    let live = job.running.live();
    match outcome {
        Outcome::Completed {
            files,
            bytes,
            failed,
        } => {
            let files_json = serde_json::to_string(&files).unwrap_or_else(|_| "[]".into());
            let failed_json = serde_json::to_string(&failed).unwrap_or_else(|_| "[]".into());
            let count = files.len();
            let failed_count = failed.len();
            let ended = end_and_notify(
                state,
                &id,
                move |tx, id| {
                    let n = tx
                        .prepare_cached(
                            "UPDATE youtube_downloads
                                SET status = 'completed', progress = 100, items_done = ?2,
                                    items_total = max(?7, ?2), bytes_done = ?3,
                                    file_paths = ?4, error = NULL, completed_at = ?5,
                                    failed_items = ?6
                              WHERE id = ?1 AND status = 'downloading'",
                        )?
                        .execute(rusqlite::params![
                            id,
                            live.items_done,
                            i64::try_from(bytes).unwrap_or(i64::MAX),
                            files_json,
                            now,
                            failed_json,
                            live.items_total
                        ])?;
                    if n > 0 {
                        super::subscriptions::downloads::on_completed(
                            tx, id, &files, bytes, now,
                        )?;
                    }
                    Ok(n)
                },
                ("download.completed", "Download finished"),
                move |title| {
                    let plural = if count == 1 { "" } else { "s" };
                    match failed_count {
                        0 => format!("{title} is downloaded ({count} file{plural})."),
                        n => format!(
                            "{title} is downloaded ({count} file{plural}); {n} item{} could not be downloaded.",
                            if n == 1 { "" } else { "s" }
                        ),
                    }
                },
            )
            .await?;
            if let Some(download) = ended {
                tracing::info!(download = %download.id, files = count, failed = failed_count, "download completed");
                super::handoff::after_download(state, &download);
            }
        }
        Outcome::Failed { reason, failed } => {
            tracing::warn!(download = %id, %reason, "download failed");
            let message = reason.clone();
            let failed_json = serde_json::to_string(&failed).unwrap_or_else(|_| "[]".into());
            end_and_notify(
                state,
                &id,
                move |tx, id| {
                    let n = tx
                        .prepare_cached(
                            "UPDATE youtube_downloads
                                SET status = 'failed', error = ?2, completed_at = ?3,
                                    progress = max(progress, ?4), items_done = ?5, bytes_done = ?6,
                                    failed_items = ?7
                              WHERE id = ?1 AND status = 'downloading'",
                        )?
                        .execute(rusqlite::params![
                            id,
                            reason,
                            now,
                            live.progress,
                            live.items_done,
                            live.bytes_done,
                            failed_json
                        ])?;
                    if n > 0 {
                        super::subscriptions::downloads::on_ended(tx, id, &reason, now)?;
                    }
                    Ok(n)
                },
                ("download.failed", "Download failed"),
                move |title| format!("{title}: {message}"),
            )
            .await?;
        }
        Outcome::Cancelled { partial } => {
            remove_partial(&super::download_root(state.config()), &partial).await;
            let download = state
                .db()
                .write(move |tx| {
                    let n = tx
                        .prepare_cached(
                            "UPDATE youtube_downloads SET status = 'cancelled', completed_at = ?2
                              WHERE id = ?1 AND status = 'downloading'",
                        )?
                        .execute(rusqlite::params![id, now])?;
                    if n > 0 {
                        super::subscriptions::downloads::on_ended(tx, &id, "cancelled", now)?;
                    }
                    get(tx, &id)
                })
                .await?;
            if let Some(download) = download {
                publish_updated(state, &download);
            }
        }
        Outcome::Interrupted => {
            state
                .db()
                .write(move |tx| {
                    tx.prepare_cached(
                        "UPDATE youtube_downloads SET status = 'queued'
                          WHERE id = ?1 AND status = 'downloading'",
                    )?
                    .execute([&id])?;
                    Ok(())
                })
                .await?;
            tracing::info!(download = %job.download.id, "download stopped by shutdown; queued again");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn user_folders_are_readable_and_one_users_alone() {
        let a = "0190e8a4-6c3b-7f6e-9c1a-2b3c4d5e6f70";
        let b = "0190e8a4-6c3b-7f6e-9c1a-2b3c4d5e6f71";
        assert_eq!(super::user_folder("ann?", a), format!("ann__{a}"));
        assert_ne!(super::user_folder("ann?", a), super::user_folder("ann*", b));
        assert_ne!(
            super::user_folder("x", "u_1"),
            super::user_folder("x", "u/1")
        );
        assert_eq!(super::user_folder("..", "u1"), "user_x7531");
        let long = "i".repeat(100);
        let folder = super::user_folder(&"n".repeat(300), &long);
        assert!(folder.len() <= 48 + 1 + 65, "{folder}");
        assert!(folder.starts_with(&"n".repeat(48)));
    }
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(10 * 1024 * 1024 * 1024), "10.0 GiB");
    }

    /// Progress lines as the real yt-dlp 2026.10.26 printed them (`--progress-template
    /// "download:MNPROG %(progress)j"`, trimmed to the fields read) for an HLS download from a
    /// local server: downloader/fragment.py's `total_bytes_estimate` goes up and down (and with
    /// it yt-dlp's own `_percent`: 14.3, 13.9, 12.5), `fragment_index` only up.
    const REAL_HLS: &[&str] = &[
        r#"MNPROG {"status": "downloading", "downloaded_bytes": 1024, "fragment_index": 0, "fragment_count": 4, "total_bytes_estimate": 160000.0}"#,
        r#"MNPROG {"status": "downloading", "downloaded_bytes": 31744, "fragment_index": 0, "fragment_count": 4, "total_bytes_estimate": 221440.0}"#,
        r#"MNPROG {"status": "downloading", "downloaded_bytes": 40000, "fragment_index": 0, "fragment_count": 4, "total_bytes_estimate": 286976.0}"#,
        r#"MNPROG {"status": "downloading", "downloaded_bytes": 40000, "fragment_index": 1, "fragment_count": 4, "total_bytes_estimate": 320000.0}"#,
        r#"MNPROG {"status": "downloading", "downloaded_bytes": 41024, "fragment_index": 1, "fragment_count": 4, "total_bytes_estimate": 160000.0}"#,
        r#"MNPROG {"status": "downloading", "downloaded_bytes": 80000, "fragment_index": 2, "fragment_count": 4, "total_bytes_estimate": 240000.0}"#,
        r#"MNPROG {"status": "downloading", "downloaded_bytes": 160000, "fragment_index": 4, "fragment_count": 4, "total_bytes_estimate": 200000.0}"#,
        r#"MNPROG {"downloaded_bytes": 160000, "total_bytes": 160000, "status": "finished", "elapsed": 0.02}"#,
    ];

    fn feed(t: &mut Tracker, lines: &[&str]) -> Vec<f64> {
        lines
            .iter()
            .map(|l| match ytdlp::parse_line(l) {
                Line::Progress(p) => {
                    t.on_progress(&p);
                    t.live.progress
                }
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn real_hls_progress_never_runs_backwards() {
        let mut t = Tracker {
            streams: 1,
            live: Live {
                items_total: 1,
                ..Live::default()
            },
            ..Tracker::default()
        };
        let seen = feed(&mut t, REAL_HLS);
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        assert_eq!(seen[3], 0.25 * 99.0, "{seen:?}");
        assert_eq!(t.live.bytes_done, 160_000);
    }

    /// A video stream then an audio stream (`[info] id: Downloading 1 format(s): 137+140`,
    /// yt-dlp/yt-dlp yt_dlp/YoutubeDL.py `process_info`), each 0-100: the first is half the item.
    #[test]
    fn two_stream_cycles_are_one_item() {
        let mut t = Tracker {
            live: Live {
                items_total: 2,
                ..Live::default()
            },
            ..Tracker::default()
        };
        t.next_item(Some(1));
        let Line::Formats { streams, .. } =
            ytdlp::parse_line("[info] abcdefghijk: Downloading 1 format(s): 137+140")
        else {
            panic!()
        };
        t.streams = streams;
        let cycle = [
            r#"MNPROG {"status": "downloading", "downloaded_bytes": 500, "total_bytes": 1000}"#,
            r#"MNPROG {"status": "downloading", "downloaded_bytes": 1000, "total_bytes": 1000}"#,
            r#"MNPROG {"status": "finished", "downloaded_bytes": 1000, "total_bytes": 1000}"#,
        ];
        let video = feed(&mut t, &cycle);
        // Half of the first of two items: a quarter of the whole at most.
        assert!(video.iter().all(|p| *p <= 25.0), "{video:?}");
        let audio = feed(&mut t, &cycle);
        assert!(audio.windows(2).all(|w| w[0] <= w[1]), "{audio:?}");
        assert!(audio[2] > 49.0 && audio[2] <= 50.0, "{audio:?}");
        assert_eq!(t.live.bytes_done, 2000);
    }

    #[tokio::test]
    async fn lines_are_capped_and_decoded_lossily() {
        let mut input = b"first\n\xff\xfe bad utf8\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE * 2));
        input.extend(b"\nlast");
        let (tx, mut rx) = mpsc::channel(16);
        read_lines(&input[..], Stream::Stdout, tx).await;
        let mut lines = Vec::new();
        while let Some((_, l)) = rx.recv().await {
            lines.push(l);
        }
        assert_eq!(
            lines.len(),
            4,
            "{:?}",
            lines.iter().map(String::len).collect::<Vec<_>>()
        );
        assert_eq!(lines[0], "first");
        assert!(lines[1].ends_with(" bad utf8") && lines[1].contains('\u{fffd}'));
        assert_eq!(lines[2].len(), MAX_LINE);
        assert_eq!(lines[3], "last");
    }
}
