//! YouTube downloads (SPEC sections 6 and 9): a user pastes a video or playlist URL, yt-dlp
//! downloads it into `<youtube.download_dir>/<username>_<user id>/<playlist or channel>/` (see
//! [`worker::user_folder`]: one folder per user, whatever their names look like once made safe),
//! and Plex gets a collection named after the playlist.
//!
//! This module owns the `youtube_downloads` table (the queue itself: there is no other queue),
//! the endpoints and the in-memory [`Youtube`] registry (live progress of running downloads,
//! their cancel switches, the metadata cache). [`url`] says which URLs are accepted, [`ytdlp`]
//! how yt-dlp is spoken to, [`worker`] runs the downloads and [`handoff`] tells Plex.
//! Handlers never run yt-dlp for a download: they write rows and wake the workers.

pub mod handoff;
pub mod layout;
pub mod listing;
pub mod perms;
pub mod subscriptions;
pub mod url;
pub mod worker;
pub mod ytdlp;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::IntoResponse;
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::auth::{AdminUser, CurrentUser};
use crate::cache::TtlCache;
use crate::clock::SharedClock;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::events::{Audience, Event, kind};
use crate::http::ApiJson;
use crate::pagination::{PageQuery, finish_page};
use crate::response::{ApiResponse, PageMeta};
use crate::routes::{Access, Routes};
use crate::state::AppState;
use crate::time::rfc3339;

/// How long yt-dlp metadata stays cached.
pub const METADATA_TTL: Duration = Duration::from_secs(3600);
/// Longest a metadata call may take.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(30);
/// The `rate_limits` endpoint under which retries are recorded: a retry counts against
/// `quotas.downloads_per_hour` like a new download (one row per user and millisecond, its
/// `window_start` the retry's time; housekeeping drops them after the hour).
const RETRY_ENDPOINT: &str = "youtube.retry";
// Housekeeping must keep the retry records for the whole quota window.
const _: () = assert!(crate::housekeeping::MAX_RATE_WINDOW_MS >= HOUR_MS);
/// The quota window.
const HOUR_MS: i64 = 3600 * 1000;

/// `queued | downloading | completed | failed | cancelled`.
pub const STATUSES: [&str; 5] = ["queued", "downloading", "completed", "failed", "cancelled"];

/// `Download = {id, url, kind, title, status, progress, quality, format, itemsTotal, itemsDone,
/// bytesDone, files, failedItems, error, plexCollectionId, createdAt, startedAt, completedAt}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Download {
    pub id: String,
    pub url: String,
    pub kind: String,
    pub title: Option<String>,
    pub status: String,
    pub progress: f64,
    pub quality: String,
    pub format: String,
    pub items_total: i64,
    pub items_done: i64,
    pub bytes_done: i64,
    /// Paths relative to `youtube.download_dir` (`<user folder>/<folder>/<file>`).
    pub files: Vec<String>,
    /// Items of the playlist yt-dlp could not download (`{index, id, reason}`), kept on a
    /// download that completed with the others (or failed with none).
    pub failed_items: Vec<ytdlp::FailedItem>,
    pub error: Option<String>,
    pub plex_collection_id: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    #[serde(skip)]
    pub user_id: String,
    #[serde(skip)]
    pub created_at_ms: i64,
}

/// The columns [`from_row`] reads, in order.
pub const COLUMNS: &str = "id, user_id, url, kind, title, status, progress, quality, format, \
     items_total, items_done, bytes_done, file_paths, error, plex_collection_id, created_at, \
     started_at, completed_at, failed_items";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Download> {
    let files: String = row.get(12)?;
    let created_at_ms: i64 = row.get(15)?;
    Ok(Download {
        id: row.get(0)?,
        user_id: row.get(1)?,
        url: row.get(2)?,
        kind: row.get(3)?,
        title: row.get(4)?,
        status: row.get(5)?,
        progress: row.get(6)?,
        quality: row.get(7)?,
        format: row.get(8)?,
        items_total: row.get(9)?,
        items_done: row.get(10)?,
        bytes_done: row.get(11)?,
        // The column is CHECKed to be valid JSON.
        files: serde_json::from_str(&files).unwrap_or_default(),
        error: row.get(13)?,
        plex_collection_id: row.get(14)?,
        created_at: rfc3339(created_at_ms),
        started_at: row.get::<_, Option<i64>>(16)?.map(rfc3339),
        completed_at: row.get::<_, Option<i64>>(17)?.map(rfc3339),
        // The column is CHECKed to be valid JSON.
        failed_items: serde_json::from_str(&row.get::<_, String>(18)?).unwrap_or_default(),
        created_at_ms,
    })
}

/// Progress of a running download, kept in memory (the row is written at most once a second).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Live {
    pub progress: f64,
    pub items_done: i64,
    pub items_total: i64,
    pub bytes_done: i64,
    /// Bytes per second, when yt-dlp knows.
    pub speed: Option<f64>,
    /// Seconds left, when yt-dlp knows.
    pub eta: Option<f64>,
}

/// One running download, as the registry holds it.
#[derive(Debug)]
pub struct Running {
    pub user_id: String,
    pub live: Mutex<Live>,
    /// Pulled by `DELETE /youtube/downloads/{id}`.
    pub cancel: CancellationToken,
    /// Set by the worker once the process is gone and the partial files are removed.
    pub finished: CancellationToken,
}

impl Running {
    pub fn live(&self) -> Live {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The downloads' in-memory side: wake-ups for the workers, the running downloads and the
/// metadata cache.
pub struct Youtube {
    wake: Notify,
    /// Wakes the subscription scheduler ("check now", a check finished).
    subscriptions: Arc<Notify>,
    running: Mutex<HashMap<String, Arc<Running>>>,
    metadata: TtlCache<String, Arc<ytdlp::Metadata>>,
    /// Plex hand-offs take turns (see `handoff`).
    handoff: tokio::sync::Mutex<()>,
    /// Gates the `yt-dlp -J` runs of previews (`youtube.preview_slots`); the workers' own
    /// runs do not take these, so slow previews cannot hold up downloads.
    preview_slots: Arc<tokio::sync::Semaphore>,
    /// Previews in flight per user (`youtube.previews_per_user`).
    previews: Mutex<HashMap<String, u32>>,
}

/// A user's turn at a preview; gives it back when dropped.
pub struct PreviewTurn<'a> {
    youtube: &'a Youtube,
    user_id: String,
}

impl Drop for PreviewTurn<'_> {
    fn drop(&mut self) {
        let mut map = self
            .youtube
            .previews
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.user_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.user_id);
            }
        }
    }
}

impl std::fmt::Debug for Youtube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Youtube").finish_non_exhaustive()
    }
}

impl Youtube {
    pub fn new(clock: SharedClock, config: &crate::config::YoutubeConfig) -> Self {
        Self {
            wake: Notify::new(),
            subscriptions: Arc::default(),
            running: Mutex::new(HashMap::new()),
            metadata: TtlCache::new("youtube_metadata", 512, clock),
            handoff: tokio::sync::Mutex::new(()),
            preview_slots: Arc::new(tokio::sync::Semaphore::new(
                usize::try_from(config.preview_slots.max(1)).unwrap_or(1),
            )),
            previews: Mutex::new(HashMap::new()),
        }
    }

    /// A turn at a preview for `user_id`, unless they already have `max` in flight.
    pub fn preview_turn(&self, user_id: &str, max: u32) -> Option<PreviewTurn<'_>> {
        let mut map = self.previews.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(user_id.to_owned()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PreviewTurn {
            youtube: self,
            user_id: user_id.to_owned(),
        })
    }

    /// Tells a waiting worker there is work.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Tells the subscription scheduler to look for due checks.
    pub fn wake_subscriptions(&self) {
        self.subscriptions.notify_one();
    }

    /// What the subscription scheduler waits on.
    pub fn subscriptions_waker(&self) -> Arc<Notify> {
        Arc::clone(&self.subscriptions)
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Running>>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The running download `id`, if a worker has it.
    pub fn running(&self, id: &str) -> Option<Arc<Running>> {
        self.map().get(id).cloned()
    }

    /// Downloads running now.
    pub fn running_count(&self) -> usize {
        self.map().len()
    }

    fn register(&self, id: &str, user_id: &str) -> Arc<Running> {
        let entry = Arc::new(Running {
            user_id: user_id.to_owned(),
            live: Mutex::new(Live::default()),
            cancel: CancellationToken::new(),
            finished: CancellationToken::new(),
        });
        self.map().insert(id.to_owned(), entry.clone());
        entry
    }

    fn unregister(&self, id: &str) {
        if let Some(entry) = self.map().remove(id) {
            entry.finished.cancel();
        }
    }

    /// Statistics of the metadata cache.
    pub fn cache_stats(&self) -> crate::cache::CacheStats {
        self.metadata.stats()
    }

    /// The runs in progress now. Taken before a download row is read: a run that ends in
    /// between has already stored its final figures, so a row read before that still gets the
    /// live ones instead of older stored ones (progress never appears to go back).
    pub fn running_now(&self) -> HashMap<String, Arc<Running>> {
        self.map().clone()
    }

    /// `download` with the live progress of `running` (from [`Youtube::running_now`], taken
    /// before the row was read), when the row says it is running.
    pub fn with_live_of(mut download: Download, running: Option<&Running>) -> Download {
        if download.status == "downloading"
            && let Some(running) = running
        {
            let live = running.live();
            download.progress = live.progress.max(download.progress);
            download.items_done = live.items_done.max(download.items_done);
            download.items_total = live.items_total.max(download.items_total);
            download.bytes_done = live.bytes_done.max(download.bytes_done);
        }
        download
    }
}

// ---------------------------------------------------------------------------------------------
// Queries

/// The statements on `youtube_downloads` that read ranges, in one place so the plan test
/// (below) checks exactly what runs. Each walks an index; none sorts.
pub(crate) mod sql {
    use super::{COLUMNS, STATUSES};

    pub fn by_id() -> String {
        format!("SELECT {COLUMNS} FROM youtube_downloads WHERE id = ?1")
    }

    /// `(user_id, created_at, id)`; the status is a filter on that range. The limit is
    /// written into the text: a bound LIMIT makes SQLite re-prepare on every execution.
    pub fn list_for_user(limit: u32) -> String {
        format!(
            "SELECT {COLUMNS} FROM youtube_downloads INDEXED BY youtube_downloads_user_created
              WHERE user_id = ?1 AND (created_at, id) < (?2, ?3) AND (?4 IS NULL OR status = ?4)
              ORDER BY created_at DESC, id DESC LIMIT {limit}"
        )
    }

    /// One range of `(status, created_at, id)` per status, merged.
    pub fn list_all(status: Option<&str>, limit: u32) -> String {
        let statuses: Vec<&str> = match status {
            Some(s) => vec![s],
            None => STATUSES.to_vec(),
        };
        // The statuses come from the constant list, never from input.
        let parts: Vec<String> = statuses
            .iter()
            .map(|s| {
                format!(
                    "SELECT {COLUMNS} FROM youtube_downloads
                      WHERE status = '{s}' AND (created_at, id) < (?1, ?2)"
                )
            })
            .collect();
        format!(
            "{} ORDER BY created_at DESC, id DESC LIMIT {limit}",
            parts.join(" UNION ALL ")
        )
    }

    pub const CREATED_SINCE: &str = "SELECT count(*), min(created_at) FROM youtube_downloads
          WHERE user_id = ?1 AND created_at > ?2";

    /// Retries recorded in `rate_limits` (walks its `(key, endpoint, window_start)` index).
    pub const RETRIED_SINCE: &str = "SELECT coalesce(sum(request_count), 0), min(window_start)
          FROM rate_limits WHERE key = ?1 AND endpoint = ?2 AND window_start > ?3";

    pub const RECORD_RETRY: &str =
        "INSERT INTO rate_limits (key, endpoint, request_count, window_start) VALUES (?1, ?2, 1, ?3)
         ON CONFLICT (key, endpoint, window_start) DO UPDATE SET request_count = request_count + 1";

    pub const IN_FLIGHT: &str = "SELECT 1 FROM youtube_downloads
          WHERE user_id = ?1 AND status IN ('queued', 'downloading') AND url = ?2 LIMIT 1";

    pub const REQUEUE: &str =
        "UPDATE youtube_downloads SET status = 'queued' WHERE status = 'downloading'";

    /// The oldest queued row, taken.
    pub const CLAIM: &str = "UPDATE youtube_downloads
            SET status = 'downloading', started_at = ?1, error = NULL
          WHERE id = (SELECT id FROM youtube_downloads WHERE status = 'queued'
                       ORDER BY created_at, id LIMIT 1)
          RETURNING id";

    /// Completed downloads still waiting for their Plex collection.
    pub fn pending_handoff() -> String {
        format!(
            "SELECT {COLUMNS} FROM youtube_downloads
              WHERE status = 'completed' AND created_at > ?1
                AND plex_collection_id IS NULL AND file_paths != '[]'
              ORDER BY created_at, id LIMIT ?2"
        )
    }

    /// The collection the latest earlier download of the same URL got (SQLite takes the bare
    /// column from the row of the `max`).
    pub const KNOWN_COLLECTION: &str = "SELECT plex_collection_id, max(completed_at)
          FROM youtube_downloads INDEXED BY youtube_downloads_url
          WHERE url = ?1 AND user_id = ?2 AND plex_collection_id IS NOT NULL";
}

/// One download by id.
pub fn get(conn: &Connection, id: &str) -> AppResult<Option<Download>> {
    Ok(conn
        .prepare_cached(&sql::by_id())?
        .query_row([id], from_row)
        .optional()?)
}

/// The user's downloads newest first, strictly before `(created_at, id)`, optionally of one
/// status. Both forms walk `(user_id, created_at, id)`: the status is a filter on that range, so
/// the page never needs a sort.
fn list_for_user(
    conn: &Connection,
    user_id: &str,
    status: Option<&str>,
    before: (i64, &str),
    limit: u32,
) -> AppResult<Vec<Download>> {
    let rows = conn
        .prepare_cached(&sql::list_for_user(limit))?
        .query_map(
            rusqlite::params![user_id, before.0, before.1, status],
            from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Everyone's downloads newest first. With a status it is one range of
/// `(status, created_at, id)`; without, the five status ranges are merged (each is already in
/// order, so SQLite merges without sorting), as the notifications list does.
fn list_all(
    conn: &Connection,
    status: Option<&str>,
    before: (i64, &str),
    limit: u32,
) -> AppResult<Vec<Download>> {
    let sql = sql::list_all(status, limit);
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(rusqlite::params![before.0, before.1], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Downloads the user queued in the hour before `now_ms` (new ones and retries), and when the
/// oldest of them was.
fn queued_in_last_hour(
    conn: &Connection,
    user_id: &str,
    now_ms: i64,
) -> AppResult<(i64, Option<i64>)> {
    let since = now_ms - HOUR_MS;
    let (created, oldest_created): (i64, Option<i64>) = conn
        .prepare_cached(sql::CREATED_SINCE)?
        .query_row(rusqlite::params![user_id, since], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let (retried, oldest_retry): (i64, Option<i64>) = conn
        .prepare_cached(sql::RETRIED_SINCE)?
        .query_row(rusqlite::params![user_id, RETRY_ENDPOINT, since], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let oldest = match (oldest_created, oldest_retry) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok((created + retried, oldest))
}

/// `QUOTA_EXCEEDED` when the user has queued `quota` downloads in the last hour.
fn check_quota(conn: &Connection, user_id: &str, quota: i64, now_ms: i64) -> AppResult<()> {
    let (count, oldest) = queued_in_last_hour(conn, user_id, now_ms)?;
    if count >= quota {
        let free_at = oldest.unwrap_or(now_ms) + HOUR_MS;
        let seconds = (free_at - now_ms + 999) / 1000;
        return Err(AppError::new(ErrorCode::QuotaExceeded)
            .with_retry_after(u64::try_from(seconds).unwrap_or(1)));
    }
    Ok(())
}

/// Whether the user has this URL queued or downloading.
fn in_flight(conn: &Connection, user_id: &str, url: &str) -> AppResult<bool> {
    Ok(conn
        .prepare_cached(sql::IN_FLIGHT)?
        .query_row([user_id, url], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Rows a crash (or a stop) left `downloading` go back to the queue; yt-dlp resumes their
/// partial files. Returns how many.
pub fn requeue_interrupted(conn: &Connection) -> AppResult<usize> {
    Ok(conn.prepare_cached(sql::REQUEUE)?.execute([])?)
}

// ---------------------------------------------------------------------------------------------
// Events

/// Publishes `download.updated` with the whole download to its owner (and the admins, whose
/// downloads page lists everyone's).
pub fn publish_updated(state: &AppState, download: &Download) {
    state.events().publish(Event::new(
        kind::DOWNLOAD_UPDATED,
        Audience::UsersAndAdmins(vec![download.user_id.clone()]),
        download,
    ));
}

/// `download.progress` payload.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressEvent<'a> {
    pub id: &'a str,
    pub status: &'static str,
    #[serde(flatten)]
    pub live: &'a Live,
}

/// `youtube.download_dir` as an absolute path with links resolved (the default,
/// `./data/downloads`, is relative): what yt-dlp is given, files are checked against and Plex
/// paths are made from.
pub fn download_root(config: &crate::config::Config) -> PathBuf {
    let dir = config.download_dir();
    std::fs::canonicalize(&dir).unwrap_or_else(|_| std::path::absolute(&dir).unwrap_or(dir))
}

/// Where subscriptions' videos go: `subscriptions` under the download dir, one folder per
/// channel or playlist laid out by [`layout`].
pub fn subscriptions_root(config: &crate::config::Config) -> PathBuf {
    download_root(config).join("subscriptions")
}

// ---------------------------------------------------------------------------------------------
// yt-dlp availability

/// The yt-dlp program to run: `youtube.ytdlp_path` when it names a file, else the first match
/// on `PATH`. `None` when there is no executable file.
pub fn resolve_ytdlp(configured: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if configured.contains('/') {
        let p = PathBuf::from(configured);
        return executable(&p).then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(configured))
            .find(|p| executable(p))
    })
}

pub(crate) fn downloader(state: &AppState) -> AppResult<PathBuf> {
    resolve_ytdlp(&state.config().youtube.ytdlp_path).ok_or_else(|| {
        tracing::warn!(
            path = %state.config().youtube.ytdlp_path,
            "yt-dlp was not found; set youtube.ytdlp_path"
        );
        AppError::new(ErrorCode::DownloaderUnavailable)
    })
}

/// The metadata of `url` for a preview (cached an hour; concurrent asks make one call): its
/// `yt-dlp -J` waits for one of the preview slots.
pub async fn metadata(
    state: &AppState,
    url: &url::YoutubeUrl,
) -> AppResult<crate::cache::Lookup<Arc<ytdlp::Metadata>>> {
    let program = downloader(state)?;
    let slots = state.youtube().preview_slots.clone();
    Ok(metadata_with(state, &program, url, Some(slots)).await?)
}

/// [`metadata`] with a resolved program, keeping the failure's detail for a download's `error`.
/// A run waits for a permit of `gate` when given (previews); the workers pass none, as they
/// are bounded by their number.
pub async fn metadata_with(
    state: &AppState,
    program: &std::path::Path,
    url: &url::YoutubeUrl,
    gate: Option<Arc<tokio::sync::Semaphore>>,
) -> Result<crate::cache::Lookup<Arc<ytdlp::Metadata>>, worker::MetadataError> {
    let canonical = url.canonical();
    let program = program.to_path_buf();
    let items = state.config().youtube.preview_items;
    let pass = passthrough(state).await;
    state
        .youtube()
        .metadata
        .get_or_load(canonical.clone(), METADATA_TTL, || async move {
            let _slot = match gate {
                Some(gate) => Some(
                    gate.acquire_owned()
                        .await
                        .map_err(|_| worker::MetadataError::Unavailable("shutting down".into()))?,
                ),
                None => None,
            };
            worker::fetch_metadata(&program, &canonical, items, &pass)
                .await
                .map(Arc::new)
        })
        .await
}

// ---------------------------------------------------------------------------------------------
// Cookies and extra arguments

/// The cookies file an admin uploaded (Netscape format, as yt-dlp's `--cookies` reads it),
/// in the data dir, mode 0600.
pub const COOKIES_FILE: &str = "youtube-cookies.txt";
/// `youtube.extra_args` as an admin set them on the admin page (a JSON list), in the data dir.
pub const EXTRA_ARGS_FILE: &str = "youtube-extra-args.json";
/// Largest cookies file accepted.
pub const MAX_COOKIES_BYTES: usize = 1024 * 1024;
/// Largest cookies file a run copies (a file set by `youtube.cookies_file` may have grown as
/// yt-dlp wrote its jar back).
pub const MAX_COOKIES_FILE_BYTES: u64 = 4 * MAX_COOKIES_BYTES as u64;

/// Whether `content` starts like a Netscape cookies file, the format yt-dlp's `--cookies` reads
/// (yt-dlp/yt-dlp yt_dlp/cookies.py `YoutubeDLCookieJar`, a `MozillaCookieJar`: the first line
/// is `# Netscape HTTP Cookie File` or `# HTTP Cookie File`).
pub fn is_netscape_cookies(content: &str) -> bool {
    let first = content.lines().next().unwrap_or_default().trim();
    first == "# Netscape HTTP Cookie File" || first == "# HTTP Cookie File"
}

/// The cookies file and extra arguments every yt-dlp run gets: the uploaded cookies file when
/// there is one, else `youtube.cookies_file`; the admin's extra arguments when set, else
/// `youtube.extra_args`.
///
/// The cookies file is given to each run as its own copy: yt-dlp writes its cookie jar back to
/// the `--cookies` file when it exits (yt-dlp/yt-dlp yt_dlp/YoutubeDL.py `close` ->
/// `save_cookies`; yt_dlp/cookies.py `YoutubeDLCookieJar.save` truncates and rewrites it), so
/// runs at once would overwrite each other's file (and an admin's new upload), and a read-only
/// file would fail every run.
pub async fn passthrough(state: &AppState) -> ytdlp::Passthrough {
    let pass = passthrough_for(state.config()).await;
    private_cookies(pass, &state.config().data_dir).await
}

/// Prefix of the runs' cookies copies in the data dir.
const COOKIES_COPY_PREFIX: &str = ".yt-cookies-";

/// Replaces `pass.cookies` with a private copy (mode 0600, in the data dir, removed when the
/// run's `Passthrough` is dropped). A file that cannot be read leaves the run without cookies,
/// with a warning (its content is never logged).
async fn private_cookies(
    mut pass: ytdlp::Passthrough,
    data_dir: &std::path::Path,
) -> ytdlp::Passthrough {
    let Some(source) = pass.cookies.take() else {
        return pass;
    };
    let dir = data_dir.to_path_buf();
    let shown = source.display().to_string();
    let made = tokio::task::spawn_blocking(move || -> Result<PathBuf, String> {
        let size = std::fs::metadata(&source).map_err(|e| e.to_string())?.len();
        if size > MAX_COOKIES_FILE_BYTES {
            return Err(format!("larger than {MAX_COOKIES_FILE_BYTES} bytes"));
        }
        let contents = std::fs::read_to_string(&source).map_err(|e| e.to_string())?;
        let copy = dir.join(format!(
            "{COOKIES_COPY_PREFIX}{}.txt",
            uuid::Uuid::new_v4().simple()
        ));
        crate::data_dir::write_private(&copy, &contents).map_err(|e| e.to_string())?;
        Ok(copy)
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    match made {
        Ok(copy) => {
            pass.cookies = Some(copy.clone());
            pass.cookies_copy = Some(Arc::new(ytdlp::PrivateCopy(copy)));
        }
        Err(e) => tracing::warn!(
            file = %shown,
            error = %e,
            "the cookies file cannot be read; this yt-dlp run goes without cookies"
        ),
    }
    pass
}

/// Removes the cookies copies a killed process left in the data dir (at start, before any run).
pub fn remove_stale_cookie_copies(data_dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(COOKIES_COPY_PREFIX) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// [`passthrough`] from the configuration and the data dir alone (`medianest doctor` has no
/// running server).
pub async fn passthrough_for(config: &crate::config::Config) -> ytdlp::Passthrough {
    let uploaded = config.data_dir.join(COOKIES_FILE);
    let cookies = if tokio::fs::metadata(&uploaded)
        .await
        .is_ok_and(|m| m.is_file())
    {
        Some(uploaded)
    } else {
        config.youtube.cookies_file.clone()
    };
    let args = admin_extra_args(config)
        .await
        .unwrap_or_else(|| config.youtube.extra_args.clone());
    ytdlp::Passthrough {
        cookies,
        args,
        cookies_copy: None,
    }
}

/// The admin's extra arguments, when set (and still accepted).
async fn admin_extra_args(config: &crate::config::Config) -> Option<Vec<String>> {
    let text = tokio::fs::read_to_string(config.data_dir.join(EXTRA_ARGS_FILE))
        .await
        .ok()?;
    let args: Vec<String> = serde_json::from_str(&text).ok()?;
    match ytdlp::check_extra_args(&args) {
        Ok(()) => Some(args),
        Err(reason) => {
            tracing::warn!(%reason, "the extra yt-dlp arguments set on the admin page are refused; using youtube.extra_args");
            None
        }
    }
}

/// Replaces `name` in the data dir with `contents`, readable by the owner only (a new 0600
/// file renamed over the old one).
async fn write_private_file(
    config: &crate::config::Config,
    name: &str,
    contents: String,
) -> AppResult<()> {
    let dir = config.data_dir.clone();
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || {
        let tmp = dir.join(format!(".{name}.{}", uuid::Uuid::now_v7()));
        crate::data_dir::write_private(&tmp, &contents)
            .map_err(|e| AppError::internal(e.to_string()))?;
        std::fs::rename(&tmp, dir.join(&name)).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            AppError::internal(format!("cannot store {name}: {e}"))
        })
    })
    .await
    .map_err(|e| AppError::internal(e.to_string()))?
}

/// `GET /admin/youtube/settings`: where the cookies come from (never their content) and the
/// extra arguments in force.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct YoutubeSettings {
    /// `uploaded`, `config` or null.
    cookies_source: Option<&'static str>,
    extra_args: Vec<String>,
    /// `admin` or `config`.
    extra_args_source: &'static str,
}

async fn settings(state: &AppState) -> YoutubeSettings {
    let config = state.config();
    let uploaded = tokio::fs::metadata(config.data_dir.join(COOKIES_FILE))
        .await
        .is_ok_and(|m| m.is_file());
    let admin = admin_extra_args(config).await;
    YoutubeSettings {
        cookies_source: if uploaded {
            Some("uploaded")
        } else if config.youtube.cookies_file.is_some() {
            Some("config")
        } else {
            None
        },
        extra_args_source: if admin.is_some() { "admin" } else { "config" },
        extra_args: admin.unwrap_or_else(|| config.youtube.extra_args.clone()),
    }
}

/// `GET /admin/youtube/settings`.
pub async fn get_settings(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> AppResult<ApiResponse> {
    Ok(ApiResponse::ok(&settings(&state).await))
}

/// `{content}`: a cookies file as text.
#[derive(Debug, Deserialize)]
pub struct CookiesBody {
    content: Option<serde_json::Value>,
}

/// `PUT /admin/youtube/cookies`: stores a cookies file for yt-dlp (`--cookies`) in the data dir,
/// mode 0600. It must be in the Netscape format yt-dlp reads (yt-dlp/yt-dlp yt_dlp/cookies.py
/// `YoutubeDLCookieJar`, a `MozillaCookieJar`: the first line matches
/// `#( Netscape)? HTTP Cookie File`). Its content is never logged nor returned.
pub async fn put_cookies(
    State(state): State<AppState>,
    admin: AdminUser,
    ApiJson(body): ApiJson<CookiesBody>,
) -> AppResult<ApiResponse> {
    let content = match body.content {
        Some(serde_json::Value::String(s)) => s,
        Some(_) => return Err(AppError::validation([("content", "must be a string")])),
        None => return Err(AppError::validation([("content", "is required")])),
    };
    if content.len() > MAX_COOKIES_BYTES {
        return Err(AppError::validation([(
            "content",
            format!("must be at most {MAX_COOKIES_BYTES} bytes"),
        )]));
    }
    if !is_netscape_cookies(&content) {
        return Err(AppError::validation([(
            "content",
            "is not a Netscape cookies file (its first line must be \"# Netscape HTTP Cookie File\"); export cookies.txt from the browser",
        )]));
    }
    write_private_file(state.config(), COOKIES_FILE, content).await?;
    tracing::info!(admin = %admin.user_id(), "a cookies file for yt-dlp was uploaded");
    Ok(ApiResponse::ok(&settings(&state).await))
}

/// `DELETE /admin/youtube/cookies`: removes the uploaded cookies file (`youtube.cookies_file`,
/// when set, applies again).
pub async fn delete_cookies(
    State(state): State<AppState>,
    admin: AdminUser,
) -> AppResult<ApiResponse> {
    match tokio::fs::remove_file(state.config().data_dir.join(COOKIES_FILE)).await {
        Ok(()) => tracing::info!(admin = %admin.user_id(), "the uploaded cookies file was removed"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(AppError::internal(format!(
                "cannot remove the cookies file: {e}"
            )));
        }
    }
    Ok(ApiResponse::ok(&settings(&state).await))
}

/// `{args}`: the extra yt-dlp arguments, or null for `youtube.extra_args` again.
#[derive(Debug, Deserialize)]
pub struct ExtraArgsBody {
    args: Option<serde_json::Value>,
}

/// `PUT /admin/youtube/extra-args`: sets the extra arguments (checked like
/// `youtube.extra_args`: a refused option is a 400 naming it); `{"args": null}` goes back to
/// the configuration's.
pub async fn put_extra_args(
    State(state): State<AppState>,
    admin: AdminUser,
    ApiJson(body): ApiJson<ExtraArgsBody>,
) -> AppResult<ApiResponse> {
    let path = state.config().data_dir.join(EXTRA_ARGS_FILE);
    let args: Vec<String> = match body.args {
        None | Some(serde_json::Value::Null) => {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(AppError::internal(format!(
                        "cannot remove {EXTRA_ARGS_FILE}: {e}"
                    )));
                }
            }
            return Ok(ApiResponse::ok(&settings(&state).await));
        }
        Some(value) => serde_json::from_value(value)
            .map_err(|_| AppError::validation([("args", "must be a list of strings")]))?,
    };
    ytdlp::check_extra_args(&args).map_err(|reason| AppError::validation([("args", reason)]))?;
    let json = serde_json::to_string(&args).map_err(|e| AppError::internal(e.to_string()))?;
    write_private_file(state.config(), EXTRA_ARGS_FILE, json).await?;
    tracing::info!(admin = %admin.user_id(), count = args.len(), "extra yt-dlp arguments set");
    Ok(ApiResponse::ok(&settings(&state).await))
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// The download routes (under `/api/v1`).
pub fn routes() -> Routes {
    Routes::new()
        .add(Method::GET, "/youtube/metadata", Access::User, get_metadata)
        .add(
            Method::POST,
            "/youtube/downloads",
            Access::User,
            create_download,
        )
        .add(
            Method::GET,
            "/youtube/downloads",
            Access::User,
            list_downloads,
        )
        .add(
            Method::GET,
            "/youtube/downloads/{id}",
            Access::User,
            get_download,
        )
        .add(
            Method::DELETE,
            "/youtube/downloads/{id}",
            Access::User,
            cancel_download,
        )
        .add(
            Method::POST,
            "/youtube/downloads/{id}/retry",
            Access::User,
            retry_download,
        )
        .add(
            Method::GET,
            "/admin/downloads",
            Access::Admin,
            list_all_downloads,
        )
        .add(
            Method::GET,
            "/admin/youtube/settings",
            Access::Admin,
            get_settings,
        )
        .add(
            Method::PUT,
            "/admin/youtube/cookies",
            Access::Admin,
            put_cookies,
        )
        .add(
            Method::DELETE,
            "/admin/youtube/cookies",
            Access::Admin,
            delete_cookies,
        )
        .add(
            Method::PUT,
            "/admin/youtube/extra-args",
            Access::Admin,
            put_extra_args,
        )
}

/// `?url=`.
#[derive(Debug, Deserialize)]
pub struct MetadataQuery {
    url: Option<String>,
}

/// `GET /youtube/metadata?url=`: what the URL is, before downloading it. A user has at most
/// `youtube.previews_per_user` in flight (429 `RATE_LIMITED` beyond), so one user cannot take
/// every preview slot.
pub async fn get_metadata(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<MetadataQuery>,
) -> AppResult<axum::response::Response> {
    let url = url::parse(query.url.as_deref().unwrap_or_default())?;
    let max = state.config().youtube.previews_per_user;
    let Some(_turn) = state.youtube().preview_turn(user.user_id(), max) else {
        return Err(AppError::new(ErrorCode::RateLimited)
            .with_details(serde_json::json!({
                "reason": format!("at most {max} previews at once"),
            }))
            .with_retry_after(1));
    };
    let lookup = metadata(&state, &url).await?;
    let mut response = ApiResponse::ok(&*lookup.value).into_response();
    let hit = if lookup.is_hit() { "HIT" } else { "MISS" };
    response
        .headers_mut()
        .insert("x-cache", axum::http::HeaderValue::from_static(hit));
    Ok(response)
}

/// `{url, quality?, format?}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateDownload {
    url: Option<serde_json::Value>,
    quality: Option<serde_json::Value>,
    format: Option<serde_json::Value>,
}

fn optional_text(
    field: &'static str,
    value: Option<&serde_json::Value>,
    allowed: &[&str],
    default: &str,
) -> Result<String, (&'static str, String)> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(default.to_owned()),
        Some(serde_json::Value::String(s)) if allowed.contains(&s.as_str()) => Ok(s.clone()),
        Some(_) => Err((field, format!("must be one of {}", allowed.join(", ")))),
    }
}

/// `POST /youtube/downloads`: queues a download -> 201 Download.
pub async fn create_download(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<CreateDownload>,
) -> AppResult<ApiResponse> {
    let url = match &body.url {
        Some(serde_json::Value::String(s)) => url::parse(s)?,
        Some(_) => return Err(AppError::validation([("url", "must be a string")])),
        None => return Err(AppError::validation([("url", "is required")])),
    };
    let mut problems = Vec::new();
    let quality = optional_text(
        "quality",
        body.quality.as_ref(),
        &["best", "2160", "1440", "1080", "720", "480", "360"],
        ytdlp::Quality::DEFAULT,
    )
    .map_err(|p| problems.push(p))
    .unwrap_or_default();
    let format = optional_text("format", body.format.as_ref(), &ytdlp::FORMATS, "mp4")
        .map_err(|p| problems.push(p))
        .unwrap_or_default();
    if !problems.is_empty() {
        return Err(AppError::validation(problems));
    }
    downloader(&state)?;
    let now = state.clock().now_ms();
    let quota = i64::from(state.config().quotas.downloads_per_hour);
    let user_id = user.user_id().to_owned();
    let canonical = url.canonical();
    let kind = url.kind.as_str();
    let download = state
        .db()
        .write(move |tx| {
            check_quota(tx, &user_id, quota, now)?;
            if in_flight(tx, &user_id, &canonical)? {
                return Err(AppError::new(ErrorCode::DownloadExists));
            }
            let id = uuid::Uuid::now_v7().to_string();
            tx.prepare_cached(
                "INSERT INTO youtube_downloads (id, user_id, url, kind, quality, format, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(rusqlite::params![id, user_id, canonical, kind, quality, format, now])?;
            get(tx, &id)?.ok_or_else(|| AppError::internal("inserted download vanished"))
        })
        .await?;
    tracing::info!(download = %download.id, url = %download.url, "download queued");
    publish_updated(&state, &download);
    state.youtube().wake();
    Ok(ApiResponse::created(&download))
}

/// `?status=&limit=&cursor=` (and `userId` for the admin list).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn status_filter(status: Option<&str>) -> AppResult<Option<&'static str>> {
    match status {
        None | Some("") => Ok(None),
        Some(s) => STATUSES
            .iter()
            .find(|k| **k == s)
            .map(|k| Some(*k))
            .ok_or_else(|| {
                AppError::validation([(
                    "status",
                    format!("must be one of {}", STATUSES.join(", ")),
                )])
            }),
    }
}

/// Cursor scopes: a cursor of one list is refused by the others.
fn scope(admin: bool, status: Option<&str>) -> String {
    format!(
        "{}downloads.{}",
        if admin { "admin." } else { "" },
        status.unwrap_or("all")
    )
}

async fn page(state: &AppState, owner: Option<String>, query: ListQuery) -> AppResult<ApiResponse> {
    let status = status_filter(query.status.as_deref())?;
    let admin = owner.is_none();
    let scope = scope(admin, status);
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    let limit = page.limit()?;
    let before: (i64, String) = match page.cursor() {
        Some(c) => state.cursors().decode(&scope, c)?,
        // Sorts after every row: ids are never empty.
        None => (i64::MAX, String::new()),
    };
    let running = state.youtube().running_now();
    let rows = state
        .db()
        .run(move |conn| match &owner {
            Some(user_id) => list_for_user(conn, user_id, status, (before.0, &before.1), limit + 1),
            None => list_all(conn, status, (before.0, &before.1), limit + 1),
        })
        .await?;
    let (rows, next_cursor) = finish_page(state.cursors(), &scope, rows, limit, |d| {
        (d.created_at_ms, d.id.clone())
    });
    let rows = rows.into_iter().map(|d| {
        let live = running.get(&d.id).cloned();
        Youtube::with_live_of(d, live.as_deref())
    });
    let meta = PageMeta { limit, next_cursor };
    if admin {
        let rows: Vec<Owned> = rows
            .map(|download| Owned {
                user_id: download.user_id.clone(),
                download,
            })
            .collect();
        Ok(ApiResponse::with_meta(&rows, &meta))
    } else {
        Ok(ApiResponse::with_meta(&rows.collect::<Vec<_>>(), &meta))
    }
}

/// A download with its owner, for the admin's list.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Owned {
    user_id: String,
    #[serde(flatten)]
    download: Download,
}

/// `GET /youtube/downloads`: the caller's downloads, newest first, running ones with their live
/// progress.
pub async fn list_downloads(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<ListQuery>,
) -> AppResult<ApiResponse> {
    page(&state, Some(user.user_id().to_owned()), query).await
}

/// `GET /admin/downloads`: everyone's.
pub async fn list_all_downloads(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(query): Query<ListQuery>,
) -> AppResult<ApiResponse> {
    page(&state, None, query).await
}

/// The download `id` when the caller owns it or is an admin; others' ids are 404.
async fn visible(state: &AppState, user: &CurrentUser, id: String) -> AppResult<Download> {
    let running = state.youtube().running(&id);
    let download = state
        .db()
        .run(move |conn| get(conn, &id))
        .await?
        .filter(|d| d.user_id == user.user_id() || user.is_admin())
        .ok_or_else(|| AppError::new(ErrorCode::NotFound))?;
    Ok(Youtube::with_live_of(download, running.as_deref()))
}

/// `GET /youtube/downloads/{id}`.
pub async fn get_download(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<ApiResponse> {
    Ok(ApiResponse::ok(&visible(&state, &user, id).await?))
}

/// How long a cancel waits for the worker to stop the process and clean up.
const CANCEL_WAIT: Duration = Duration::from_secs(15);

/// `DELETE /youtube/downloads/{id}`: cancels a queued or running download. A running one's
/// process group is killed and its partial files removed before this answers.
pub async fn cancel_download(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<ApiResponse> {
    let found = visible(&state, &user, id.clone()).await?;
    let now = state.clock().now_ms();
    let was = state
        .db()
        .write(move |tx| {
            let Some(row) = get(tx, &id)? else {
                return Err(AppError::new(ErrorCode::NotFound));
            };
            if !matches!(row.status.as_str(), "queued" | "downloading") {
                return Err(AppError::new(ErrorCode::Conflict).with_details(
                    serde_json::json!({"reason": format!("the download is already {}", row.status)}),
                ));
            }
            tx.prepare_cached(
                "UPDATE youtube_downloads SET status = 'cancelled', completed_at = ?2,
                        error = NULL
                  WHERE id = ?1",
            )?
            .execute(rusqlite::params![id, now])?;
            subscriptions::downloads::on_ended(tx, &id, "cancelled", now)?;
            Ok(row.status)
        })
        .await?;
    if was == "downloading"
        && let Some(running) = state.youtube().running(&found.id)
    {
        running.cancel.cancel();
        if tokio::time::timeout(CANCEL_WAIT, running.finished.cancelled())
            .await
            .is_err()
        {
            tracing::warn!(download = %found.id, "the worker did not confirm the cancel in time");
        }
    }
    let id = found.id.clone();
    let download = state
        .db()
        .run(move |conn| get(conn, &id))
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::NotFound))?;
    tracing::info!(download = %download.id, "download cancelled");
    publish_updated(&state, &download);
    Ok(ApiResponse::ok(&download))
}

/// `POST /youtube/downloads/{id}/retry`: a failed or cancelled download goes back to the queue.
/// It counts against the owner's `quotas.downloads_per_hour` like a new download (recorded in
/// `rate_limits`, see [`RETRY_ENDPOINT`]).
pub async fn retry_download(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<ApiResponse> {
    let found = visible(&state, &user, id).await?;
    let id = found.id.clone();
    let now = state.clock().now_ms();
    let quota = i64::from(state.config().quotas.downloads_per_hour);
    let download = state
        .db()
        .write(move |tx| {
            let Some(row) = get(tx, &id)? else {
                return Err(AppError::new(ErrorCode::NotFound));
            };
            if !matches!(row.status.as_str(), "failed" | "cancelled") {
                return Err(AppError::new(ErrorCode::Conflict).with_details(
                    serde_json::json!({"reason": format!("only failed or cancelled downloads can be retried; this one is {}", row.status)}),
                ));
            }
            if in_flight(tx, &row.user_id, &row.url)? {
                return Err(AppError::new(ErrorCode::DownloadExists));
            }
            if let Some(status) = subscriptions::downloads::gone_item(tx, &id)? {
                return Err(AppError::new(ErrorCode::Conflict).with_details(serde_json::json!({
                    "reason": format!("the subscription's video was {status}; it is not downloaded again")
                })));
            }
            check_quota(tx, &row.user_id, quota, now)?;
            tx.prepare_cached(sql::RECORD_RETRY)?
                .execute(rusqlite::params![row.user_id, RETRY_ENDPOINT, now])?;
            tx.prepare_cached(
                "UPDATE youtube_downloads
                    SET status = 'queued', error = NULL, progress = 0, items_done = 0,
                        bytes_done = 0, started_at = NULL, completed_at = NULL,
                        failed_items = '[]'
                  WHERE id = ?1",
            )?
            .execute([&id])?;
            subscriptions::downloads::on_requeued(tx, &id, now)?;
            get(tx, &id)?.ok_or_else(|| AppError::new(ErrorCode::NotFound))
        })
        .await?;
    publish_updated(&state, &download);
    state.youtube().wake();
    Ok(ApiResponse::ok(&download))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn range_statements_walk_an_index_without_sorting() {
        let db = crate::db::Db::open_memory().unwrap();
        let conn = db.connection_blocking().unwrap();
        conn.execute(
            "INSERT INTO users (id, username, role, status, created_at)
             VALUES ('u1', 'ann', 'user', 'active', 0), ('u2', 'bob', 'user', 'active', 0)",
            [],
        )
        .unwrap();
        for i in 0..400 {
            conn.execute(
                "INSERT INTO youtube_downloads (id, user_id, url, kind, status, created_at,
                                                plex_collection_id)
                 VALUES (?1, ?2, ?3, 'video', ?4, ?5, ?6)",
                rusqlite::params![
                    format!("d{i:04}"),
                    if i % 2 == 0 { "u1" } else { "u2" },
                    format!("https://www.youtube.com/watch?v=v{i:010}"),
                    STATUSES[i % STATUSES.len()],
                    i64::try_from(i).unwrap(),
                    (i % 3 == 0).then(|| format!("{}", 1000 + i)),
                ],
            )
            .unwrap();
        }
        // With statistics too, as after the ANALYZE on migration and shutdown.
        conn.execute_batch("ANALYZE").unwrap();
        let mut statements = vec![
            sql::by_id(),
            sql::list_for_user(21),
            sql::list_all(None, 21),
            sql::CREATED_SINCE.to_owned(),
            sql::RETRIED_SINCE.to_owned(),
            sql::IN_FLIGHT.to_owned(),
            sql::REQUEUE.to_owned(),
            sql::CLAIM.to_owned(),
            sql::pending_handoff(),
            sql::KNOWN_COLLECTION.to_owned(),
        ];
        statements.extend(STATUSES.iter().map(|s| sql::list_all(Some(s), 21)));
        for sql in statements {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            // The plan does not depend on the values; any will do.
            let params = vec!["x"; stmt.parameter_count()];
            let lines: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(params), |r| {
                    r.get::<_, String>(3)
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            for line in &lines {
                assert!(!line.starts_with("SCAN"), "{sql}: {lines:?}");
                assert!(!line.contains("TEMP B-TREE"), "{sql}: {lines:?}");
                if line.contains("youtube_downloads") {
                    assert!(line.contains("INDEX"), "{sql}: {lines:?}");
                }
            }
        }
    }
}
