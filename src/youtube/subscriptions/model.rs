//! The rows of the subscription tables as the API shows them, and the settings types the
//! validation produces and the store writes.

use rusqlite::Row;
use serde::Serialize;

use crate::time::rfc3339;

/// `active | proposed | paused | declined`.
pub const STATUSES: [&str; 4] = ["proposed", "active", "paused", "declined"];
/// Archive item statuses.
pub const ITEM_STATUSES: [&str; 6] = [
    "queued",
    "downloaded",
    "failed",
    "pruned",
    "deleted",
    "skipped",
];
/// Heights a profile may cap at.
pub const HEIGHTS: [u32; 6] = [360, 480, 720, 1080, 1440, 2160];
/// `mp4` (Plex direct play), `mkv`, `webm`.
pub const CONTAINERS: [&str; 3] = ["mp4", "mkv", "webm"];
/// SponsorBlock categories yt-dlp can cut out of a file; marking as chapters also takes
/// [`SPONSORBLOCK_MARK_ONLY`]. From yt-dlp's `yt_dlp/postprocessor/sponsorblock.py`
/// (`CATEGORIES` minus `NON_SKIPPABLE_CATEGORIES`) and `yt_dlp/options.py`
/// (`--sponsorblock-remove` allows exactly those).
pub const SPONSORBLOCK_REMOVABLE: [&str; 9] = [
    "sponsor",
    "intro",
    "outro",
    "selfpromo",
    "preview",
    "filler",
    "interaction",
    "music_offtopic",
    "hook",
];
/// Categories yt-dlp can only mark (`NON_SKIPPABLE_CATEGORIES`).
pub const SPONSORBLOCK_MARK_ONLY: [&str; 2] = ["poi_highlight", "chapter"];

/// A subscription's settings, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub interval_secs: i64,
    /// `YYYY-MM-DD`.
    pub after: Option<String>,
    pub keep_latest: Option<i64>,
    pub keep_days: Option<i64>,
    pub include: Option<String>,
    pub exclude: Option<String>,
    pub skip_shorts: bool,
    pub skip_live: bool,
    pub profile_id: Option<String>,
}

/// Every 6 hours, nothing skipped but live streams (a live stream in progress would hold a
/// download worker for hours), no retention, no patterns, the default format.
impl Default for Settings {
    fn default() -> Self {
        Self {
            interval_secs: 6 * 3600,
            after: None,
            keep_latest: None,
            keep_days: None,
            include: None,
            exclude: None,
            skip_shorts: false,
            skip_live: true,
            profile_id: None,
        }
    }
}

/// `Subscription = {id, url, kind, sourceId, channelId, title, avatarUrl, bannerUrl, status,
/// declineReason, userId, username, intervalHours, after, keepLatest, keepDays, include,
/// exclude, skipShorts, skipLive, profileId, nextCheckAt, lastCheckAt, lastResult, lastError,
/// lastNewItems, consecutiveFailures, backoffUntil, itemCount, bytes, decidedAt, createdAt,
/// updatedAt}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub id: String,
    pub url: String,
    pub kind: String,
    pub source_id: String,
    pub channel_id: Option<String>,
    pub title: Option<String>,
    pub avatar_url: Option<String>,
    pub banner_url: Option<String>,
    pub status: String,
    pub decline_reason: Option<String>,
    pub user_id: String,
    pub username: String,
    pub interval_hours: f64,
    pub after: Option<String>,
    pub keep_latest: Option<i64>,
    pub keep_days: Option<i64>,
    pub include: Option<String>,
    pub exclude: Option<String>,
    pub skip_shorts: bool,
    pub skip_live: bool,
    pub profile_id: Option<String>,
    pub next_check_at: Option<String>,
    pub last_check_at: Option<String>,
    pub last_result: Option<String>,
    pub last_error: Option<String>,
    pub last_new_items: i64,
    pub consecutive_failures: i64,
    pub backoff_until: Option<String>,
    pub item_count: i64,
    pub bytes: i64,
    pub decided_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The raw values the scheduler and the list's cursor work with.
    #[serde(skip)]
    pub interval_secs: i64,
    #[serde(skip)]
    pub next_check_at_ms: Option<i64>,
    #[serde(skip)]
    pub created_at_ms: i64,
    /// Its show folder under the subscriptions root, once the first check named it.
    #[serde(skip)]
    pub folder: Option<String>,
}

/// The columns [`subscription_from_row`] reads, in order (`s` is the subscription, `u` its
/// owner).
pub const SUBSCRIPTION_COLUMNS: &str = "s.id, s.url, s.kind, s.source_id, s.channel_id, s.title, \
     s.avatar_url, s.banner_url, s.status, s.decline_reason, s.user_id, u.username, \
     s.interval_secs, s.after_date, s.keep_latest, s.keep_days, s.include_pattern, \
     s.exclude_pattern, s.skip_shorts, s.skip_live, s.profile_id, s.next_check_at, \
     s.last_check_at, s.last_result, s.last_error, s.last_new_items, s.consecutive_failures, \
     s.backoff_until, s.item_count, s.bytes, s.decided_at, s.created_at, s.updated_at, \
     s.folder";

pub fn subscription_from_row(row: &Row<'_>) -> rusqlite::Result<Subscription> {
    let interval_secs: i64 = row.get(12)?;
    let next_check_at_ms: Option<i64> = row.get(21)?;
    let created_at_ms: i64 = row.get(31)?;
    Ok(Subscription {
        id: row.get(0)?,
        url: row.get(1)?,
        kind: row.get(2)?,
        source_id: row.get(3)?,
        channel_id: row.get(4)?,
        title: row.get(5)?,
        avatar_url: row.get(6)?,
        banner_url: row.get(7)?,
        status: row.get(8)?,
        decline_reason: row.get(9)?,
        user_id: row.get(10)?,
        username: row.get(11)?,
        interval_hours: interval_secs as f64 / 3600.0,
        after: row.get(13)?,
        keep_latest: row.get(14)?,
        keep_days: row.get(15)?,
        include: row.get(16)?,
        exclude: row.get(17)?,
        skip_shorts: row.get(18)?,
        skip_live: row.get(19)?,
        profile_id: row.get(20)?,
        next_check_at: next_check_at_ms.map(rfc3339),
        last_check_at: row.get::<_, Option<i64>>(22)?.map(rfc3339),
        last_result: row.get(23)?,
        last_error: row.get(24)?,
        last_new_items: row.get(25)?,
        consecutive_failures: row.get(26)?,
        backoff_until: row.get::<_, Option<i64>>(27)?.map(rfc3339),
        item_count: row.get(28)?,
        bytes: row.get(29)?,
        decided_at: row.get::<_, Option<i64>>(30)?.map(rfc3339),
        created_at: rfc3339(created_at_ms),
        updated_at: rfc3339(row.get(32)?),
        interval_secs,
        next_check_at_ms,
        created_at_ms,
        folder: row.get(33)?,
    })
}

impl Subscription {
    /// The settings part, e.g. to apply a PATCH on.
    pub fn settings(&self) -> Settings {
        Settings {
            interval_secs: self.interval_secs,
            after: self.after.clone(),
            keep_latest: self.keep_latest,
            keep_days: self.keep_days,
            include: self.include.clone(),
            exclude: self.exclude.clone(),
            skip_shorts: self.skip_shorts,
            skip_live: self.skip_live,
            profile_id: self.profile_id.clone(),
        }
    }
}

/// Subtitles of a profile: `{languages, mode}`; no languages, no subtitles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subtitles {
    pub languages: Vec<String>,
    /// `embedded` in the file, or `sidecar` files next to it.
    pub mode: String,
}

/// SponsorBlock of a profile: `{mode, categories}`, mode `off | remove | mark`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sponsorblock {
    pub mode: String,
    pub categories: Vec<String>,
}

/// A profile's settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileInput {
    pub name: String,
    pub max_height: Option<u32>,
    pub container: String,
    pub subtitles: Subtitles,
    pub sponsorblock: Sponsorblock,
}

/// `Profile = {id, name, maxHeight, container, subtitles: {languages, mode}, sponsorblock:
/// {mode, categories}, subscriptions, createdAt, updatedAt}`; `subscriptions` counts those
/// that use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub id: String,
    pub name: String,
    pub max_height: Option<u32>,
    pub container: String,
    pub subtitles: Subtitles,
    pub sponsorblock: Sponsorblock,
    pub subscriptions: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// The columns [`profile_from_row`] reads, in order (`p` is the profile).
pub const PROFILE_COLUMNS: &str = "p.id, p.name, p.max_height, p.container, p.subtitle_langs, \
     p.subtitle_mode, p.sponsorblock_mode, p.sponsorblock_categories, p.created_at, \
     p.updated_at, (SELECT count(*) FROM youtube_subscriptions s WHERE s.profile_id = p.id)";

pub fn profile_from_row(row: &Row<'_>) -> rusqlite::Result<Profile> {
    let langs: String = row.get(4)?;
    let categories: String = row.get(7)?;
    Ok(Profile {
        id: row.get(0)?,
        name: row.get(1)?,
        max_height: row.get(2)?,
        container: row.get(3)?,
        subtitles: Subtitles {
            // The column is CHECKed to be a JSON array.
            languages: serde_json::from_str(&langs).unwrap_or_default(),
            mode: row.get(5)?,
        },
        sponsorblock: Sponsorblock {
            mode: row.get(6)?,
            categories: serde_json::from_str(&categories).unwrap_or_default(),
        },
        created_at: rfc3339(row.get(8)?),
        updated_at: rfc3339(row.get(9)?),
        subscriptions: row.get(10)?,
    })
}

/// `Item = {id, videoId, status, reason, title, uploadDate, downloadId, keep, files, bytes,
/// createdAt, updatedAt}`: one archive row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub id: String,
    pub video_id: String,
    pub status: String,
    pub reason: Option<String>,
    pub title: Option<String>,
    pub upload_date: Option<String>,
    pub download_id: Option<String>,
    pub keep: bool,
    pub files: Vec<String>,
    pub bytes: i64,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip)]
    pub created_at_ms: i64,
}

/// The columns [`item_from_row`] reads, in order.
pub const ITEM_COLUMNS: &str = "id, video_id, status, reason, title, upload_date, download_id, \
     keep, file_paths, bytes, created_at, updated_at";

pub fn item_from_row(row: &Row<'_>) -> rusqlite::Result<Item> {
    let files: String = row.get(8)?;
    let created_at_ms: i64 = row.get(10)?;
    Ok(Item {
        id: row.get(0)?,
        video_id: row.get(1)?,
        status: row.get(2)?,
        reason: row.get(3)?,
        title: row.get(4)?,
        upload_date: row.get(5)?,
        download_id: row.get(6)?,
        keep: row.get(7)?,
        // The column is CHECKed to be a JSON array.
        files: serde_json::from_str(&files).unwrap_or_default(),
        bytes: row.get(9)?,
        created_at: rfc3339(created_at_ms),
        updated_at: rfc3339(row.get(11)?),
        created_at_ms,
    })
}

/// A video a check wants in the archive (see `store::record_items`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    pub video_id: String,
    /// One of [`ITEM_STATUSES`], usually `queued` or `skipped`.
    pub status: String,
    pub reason: Option<String>,
    pub title: Option<String>,
    /// `YYYY-MM-DD`.
    pub upload_date: Option<String>,
    pub download_id: Option<String>,
}

/// What a check found, for `store::record_check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    /// Listed; `new_items` went into the archive.
    Ok { new_items: u32 },
    /// Failed for a reason worth retrying later (a timeout, yt-dlp crashed).
    Failed { error: String },
    /// YouTube refused (rate limit, "Sign in to confirm you're not a bot"): an admin has to act.
    Blocked { error: String },
}
