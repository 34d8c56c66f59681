//! Listing the newest items of a YouTube channel tab or playlist through yt-dlp, for the
//! subscription checks: one `yt-dlp -J --flat-playlist -I 1:N` run (bounded in items, time and
//! output size), its document read into [`Listing`], and its failures sorted into what a
//! scheduler must tell apart ([`ListError`]): YouTube refusing (bot check, rate limit), a channel
//! or playlist that is not there, and the rest.
//!
//! It downloads nothing and keeps no state: which items are new (the subscription's archive of
//! ids), which pass the filters and what to queue is the caller's business.
//!
//! Upstream read (yt-dlp/yt-dlp, 2026.08.19): `yt_dlp/extractor/youtube/_tab.py`
//! (`_extract_video`, `_extract_lockup_view_model`, `_rich_entries`,
//! `_extract_metadata_from_tabs`, `_reload_with_unavailable_videos`), `yt_dlp/YoutubeDL.py`
//! (`process_ie_result`, `_fill_common_fields`, `__download_wrapper`, `_make_archive_id`,
//! `in_download_archive`), `yt_dlp/extractor/youtube/_video.py` (the playability reason and
//! its sign-in hint), `yt_dlp/extractor/common.py` (`_availability`, `_login_hint`),
//! `yt_dlp/networking/exceptions.py` (`HTTPError`'s `HTTP Error <status>: <reason>`).

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::ytdlp::{self, Exit, Passthrough};

/// Longest a listing may take: a channel page plus a continuation or two.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(60);
/// Most items one listing asks for (`-I 1:N`).
pub const MAX_LIST_ITEMS: u32 = 1000;
/// Largest listing document read.
const MAX_LISTING_BYTES: u64 = 16 * 1024 * 1024;
/// stderr read for the failure's reason.
const MAX_STDERR_BYTES: u64 = 256 * 1024;

/// The arguments of a listing: the newest `newest` items (at least one, at most
/// [`MAX_LIST_ITEMS`]) of the canonical channel-tab or playlist `url`, unresolved and not
/// downloaded.
///
/// - `-J --flat-playlist`: one JSON document, the playlist's own fields (the channel's name,
///   avatar and banner among its `thumbnails`) plus each entry as the tab page shows it, without
///   one request per video (`_tab.py` `_extract_video`).
/// - `-I 1:N`: how far back. A channel tab and the uploads playlist are newest first, and
///   `YoutubeDL.__process_playlist` takes the slice lazily, so N items cost N/30 pages, not the
///   whole channel.
/// - `--extractor-args youtubetab:approximate_date`: without it a flat entry has no date at all
///   (`timestamp` is only parsed from "3 days ago" when this is set); the date is exact to the
///   day for recent uploads and coarser for old ones, enough to order and filter them.
///
/// Not used, on purpose: `--break-on-existing` / `--download-archive` (with `-J`, reaching an
/// archived item raises `ExistingVideoReached`, which `YoutubeDL.__download_wrapper` turns into
/// no JSON at all; the archive is the subscription's table, compared by the caller), and
/// `--dateafter` / `--match-filters` (they need fields a flat entry lacks or has only
/// approximately; the caller filters the parsed items instead).
///
/// yt-dlp keeps only the last `--extractor-args` of each extractor (yt_dlp/options.py:
/// `_dict_from_options_callback` with `append=False`), so an admin's own `youtubetab:` arguments
/// in `youtube.extra_args` are merged into this one instead of replacing it.
pub fn listing_args(url: &str, newest: u32, pass: &Passthrough) -> Vec<OsString> {
    let range = format!("1:{}", newest.clamp(1, MAX_LIST_ITEMS));
    let mut tab_args = String::from("youtubetab:approximate_date");
    let mut rest = Passthrough {
        args: Vec::with_capacity(pass.args.len()),
        ..pass.clone()
    };
    let mut it = pass.args.iter();
    while let Some(arg) = it.next() {
        let value = match arg.strip_prefix("--extractor-args") {
            Some("") => it.next().cloned(),
            Some(inline) if inline.starts_with('=') => Some(inline[1..].to_owned()),
            _ => None,
        };
        match value {
            Some(v) if v.to_ascii_lowercase().starts_with("youtubetab:") => {
                tab_args.push(';');
                tab_args.push_str(&v["youtubetab:".len()..]);
            }
            Some(v) => rest.args.extend(["--extractor-args".to_owned(), v]),
            None => rest.args.push(arg.clone()),
        }
    }
    let mut args: Vec<OsString> = [
        "--ignore-config",
        "-J",
        "--flat-playlist",
        "--no-warnings",
        "-I",
        &range,
        "--extractor-args",
        &tab_args,
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    rest.push_into(&mut args);
    args.push(OsString::from("--"));
    args.push(OsString::from(url));
    args
}

/// A channel tab or playlist as listed: its own fields and its newest entries, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    /// The channel id (`UC...`) for a channel tab, the playlist id for a playlist.
    pub id: String,
    /// `Channel - Videos` for a tab, the playlist's title for a playlist.
    pub title: String,
    /// The channel's name.
    pub channel: Option<String>,
    /// `UC...`.
    pub channel_id: Option<String>,
    /// `@handle`, when YouTube gave one.
    pub handle: Option<String>,
    /// The channel's avatar, uncropped (`avatar_uncropped` in `thumbnails`).
    pub avatar: Option<String>,
    /// The channel's banner, uncropped (`banner_uncropped`).
    pub banner: Option<String>,
    /// YouTube's own count of the playlist (`playlist_count`), when it said.
    pub total: Option<u64>,
    pub items: Vec<ListedItem>,
}

/// One listed video.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedItem {
    /// The 11-character video id.
    pub id: String,
    /// `[Private video]` / `[Deleted video]` for placeholders (see [`Availability`]).
    pub title: String,
    /// `https://www.youtube.com/watch?v=ID`, or `.../shorts/ID` for a Short.
    pub url: String,
    /// The upload day (UTC), approximate for old uploads; `None` when YouTube showed no date
    /// (Shorts on the Shorts tab, placeholders, streams not yet started).
    pub upload_date: Option<time::Date>,
    /// Seconds; `None` for live streams, upcoming ones, placeholders and Shorts-tab entries.
    pub duration_secs: Option<u64>,
    /// A Short: yt-dlp gives it a `/shorts/` URL (`_extract_video`: the `SHORTS` overlay or a
    /// `/shorts/` link; `_rich_entries`: the Shorts tab's `shortsLockupViewModel`).
    pub is_short: bool,
    /// Live now, upcoming or just ended and not yet processed (`live_status` `is_live`,
    /// `is_upcoming`, `post_live`): nothing to download as a finished file yet.
    pub is_live: bool,
    /// A finished live stream (`was_live`), downloadable like a video.
    pub was_live: bool,
    pub availability: Availability,
}

/// yt-dlp's `availability` (extractor/common.py `_availability`), plus the placeholders a flat
/// playlist keeps for videos it cannot show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Public,
    Unlisted,
    /// Private (a `[Private video]` placeholder, or the `private` badge).
    Private,
    /// Members only (`subscriber_only`).
    MembersOnly,
    /// YouTube Premium only (`premium_only`).
    PremiumOnly,
    /// Needs a signed-in account (`needs_auth`).
    NeedsAuth,
    /// Deleted (a `[Deleted video]` placeholder).
    Removed,
    /// Not said: the usual case in flat mode, where `_extract_lockup_view_model` cannot tell
    /// public from unlisted and leaves it empty.
    Unknown,
}

impl Availability {
    fn parse(entry: &Value, title: &str) -> Self {
        match title {
            "[Private video]" => return Self::Private,
            "[Deleted video]" => return Self::Removed,
            _ => {}
        }
        match entry.get("availability").and_then(Value::as_str) {
            Some("public") => Self::Public,
            Some("unlisted") => Self::Unlisted,
            Some("private") => Self::Private,
            Some("subscriber_only") => Self::MembersOnly,
            Some("premium_only") => Self::PremiumOnly,
            Some("needs_auth") => Self::NeedsAuth,
            _ => Self::Unknown,
        }
    }

    /// Whether a download without an account can work: not private, removed, members- or
    /// Premium-only.
    pub fn downloadable(self) -> bool {
        matches!(self, Self::Public | Self::Unlisted | Self::Unknown)
    }

    /// yt-dlp's word for it (`unknown` when it said none, `removed` for a deleted video).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Unlisted => "unlisted",
            Self::Private => "private",
            Self::MembersOnly => "subscriber_only",
            Self::PremiumOnly => "premium_only",
            Self::NeedsAuth => "needs_auth",
            Self::Removed => "removed",
            Self::Unknown => "unknown",
        }
    }
}

/// How YouTube refused to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// "Sign in to confirm you’re not a bot": YouTube wants a signed-in session (cookies) from
    /// this address.
    BotCheck,
    /// HTTP 429, or "This content isn't available, try again later" (rate-limited for up to an
    /// hour).
    RateLimited,
}

/// Why a listing failed.
#[derive(Debug, Clone, PartialEq)]
pub enum ListError {
    /// yt-dlp could not be started.
    NotStarted(String),
    /// No answer within the time given.
    Timeout,
    /// YouTube refused: back off, do not retry hot. `reason` is yt-dlp's `ERROR:` text.
    Refused { kind: Refused, reason: String },
    /// The channel or playlist does not exist, is private or terminated (HTTP 404, "YouTube
    /// said: ..."), or the channel has no such tab.
    NotFound(String),
    /// The URL lists the channel's tabs, not videos (a channel's home URL: `_tab.py` answers
    /// "Downloading as multiple playlists, separated by tabs"); list `/videos`, `/shorts`,
    /// `/streams` or the uploads playlist instead.
    NotAList,
    /// yt-dlp printed something that is not a listing.
    Invalid,
    /// Any other failure, with yt-dlp's reason.
    Failed(String),
}

impl ListError {
    /// True when YouTube refused and the subscription should back off.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Refused { .. })
    }

    /// What an admin can do about it, for the notification and the subscription's last result.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::Refused {
                kind: Refused::BotCheck,
                ..
            } => {
                "YouTube asks this server to sign in: upload a cookies file of a signed-in \
                 browser session on the admin page (or set youtube.cookies_file), then run \
                 `medianest doctor`"
            }
            Self::Refused {
                kind: Refused::RateLimited,
                ..
            } => {
                "YouTube is rate-limiting this server: checks back off; check less often or add \
                 --sleep-requests to youtube.extra_args"
            }
            Self::NotFound(_) => "the channel or playlist is gone, private or has no such tab",
            Self::NotAList => "subscribe to the channel's /videos tab or its uploads playlist",
            Self::NotStarted(_) => "yt-dlp could not be started: run `medianest doctor`",
            Self::Timeout => "yt-dlp did not answer in time; the next check tries again",
            Self::Invalid | Self::Failed(_) => {
                "yt-dlp failed; update it (`medianest doctor` tells whether it is current)"
            }
        }
    }

    /// The reason as a person reads it.
    pub fn reason(&self) -> String {
        match self {
            Self::NotStarted(_) => "yt-dlp could not be started".to_owned(),
            Self::Timeout => "yt-dlp did not list the channel in time".to_owned(),
            Self::Refused { reason, .. } | Self::NotFound(reason) | Self::Failed(reason) => {
                reason.clone()
            }
            Self::NotAList => "the URL lists the channel's tabs, not its videos".to_owned(),
            Self::Invalid => "yt-dlp answered with something that is not a listing".to_owned(),
        }
    }
}

/// Sorts a failed run by its stderr: the last `ERROR:` line that names a refusal or a missing
/// channel decides; otherwise the usual reason from the exit status.
///
/// The texts: the bot check is YouTube's playability reason (with a typographic apostrophe, and
/// sometimes a plain one) plus yt-dlp's cookies hint (`_video.py`, `_base.py`
/// `_youtube_login_hint`); a rate limit is `HTTP Error 429: Too Many Requests` (networking
/// `HTTPError`) on any page, or the "try again later" reason `_video.py` expands to "has been
/// rate-limited by YouTube for up to an hour"; a missing channel is `HTTP Error 404` or one of
/// YouTube's alerts (`_base.py` `_extract_and_report_alerts`: "YouTube said: ...").
pub fn classify(exit: Exit, stderr: &[String]) -> ListError {
    for line in stderr.iter().rev() {
        let Some(text) = line.trim().strip_prefix("ERROR:") else {
            continue;
        };
        let text = text.trim();
        let lower = text.to_lowercase();
        let reason = || ytdlp::truncate_chars(text, ytdlp::MAX_ERROR_CHARS);
        if lower.contains("not a bot") && lower.contains("sign in to confirm") {
            return ListError::Refused {
                kind: Refused::BotCheck,
                reason: reason(),
            };
        }
        if lower.contains("http error 429")
            || lower.contains("too many requests")
            || lower.contains("rate-limited by youtube")
            || lower.contains("try again later")
        {
            return ListError::Refused {
                kind: Refused::RateLimited,
                reason: reason(),
            };
        }
        if lower.contains("http error 404")
            || lower.contains("does not exist")
            || lower.contains("this playlist is private")
            || lower.contains("this channel does not have a")
            || lower.contains("account has been terminated")
            || lower.contains("this channel is not available")
        {
            return ListError::NotFound(reason());
        }
    }
    ListError::Failed(ytdlp::failure_reason(exit, stderr))
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `YYYYMMDD` (yt-dlp's `upload_date`).
fn parse_day(s: &str) -> Option<time::Date> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i32 = s[..4].parse().ok()?;
    let month: u8 = s[4..6].parse().ok()?;
    let day: u8 = s[6..].parse().ok()?;
    time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()
}

/// The entry's day: `upload_date` when printed (a `-j` line, where `_fill_common_fields` made it
/// from `timestamp`), else the day of `timestamp` (a `-J` entry keeps only the timestamp), else
/// of `release_timestamp` (a scheduled stream).
fn entry_date(e: &Value) -> Option<time::Date> {
    if let Some(day) = text(e, "upload_date").and_then(|d| parse_day(&d)) {
        return Some(day);
    }
    ["timestamp", "release_timestamp"].iter().find_map(|key| {
        let ts = e.get(*key).and_then(Value::as_f64)?;
        time::OffsetDateTime::from_unix_timestamp(ts as i64)
            .ok()
            .map(|t| t.date())
    })
}

/// One flat entry; `None` for an entry that is not a video (a tab or a playlist of the
/// channel's home page, `ie_key` `YoutubeTab`) or has no id.
fn parse_entry(e: &Value) -> Option<ListedItem> {
    let ie = text(e, "ie_key").or_else(|| text(e, "extractor_key"));
    if ie.as_deref() == Some("YoutubeTab") {
        return None;
    }
    // An entry found on another page (an embed, extractor/generic.py) has a URL and no id:
    // yt-dlp gets it from the URL later (`get_temp_id`), as here.
    let id = text(e, "id").or_else(|| text(e, "url").and_then(|u| id_from_url(&u)))?;
    let url = text(e, "url").unwrap_or_else(|| format!("https://www.youtube.com/watch?v={id}"));
    let title = text(e, "title").unwrap_or_else(|| id.clone());
    let live = text(e, "live_status");
    Some(ListedItem {
        upload_date: entry_date(e),
        duration_secs: e
            .get("duration")
            .and_then(Value::as_f64)
            .filter(|d| d.is_finite() && *d >= 0.0)
            .map(|d| d.round() as u64),
        is_short: url.contains("/shorts/"),
        is_live: matches!(
            live.as_deref(),
            Some("is_live" | "is_upcoming" | "post_live")
        ),
        was_live: live.as_deref() == Some("was_live"),
        availability: Availability::parse(e, &title),
        id,
        url,
        title,
    })
}

/// The video id of a YouTube video URL (`watch?v=`, `/shorts/`, `/live/`, `/embed/`,
/// `youtu.be/`): 11 characters of `[A-Za-z0-9_-]` (yt_dlp/extractor/youtube/_video.py
/// `_VALID_URL`).
fn id_from_url(url: &str) -> Option<String> {
    let rest = [
        "/watch?v=",
        "&v=",
        "/shorts/",
        "/live/",
        "/embed/",
        "youtu.be/",
    ]
    .iter()
    .find_map(|m| url.split_once(m).map(|(_, r)| r))?;
    let id: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        .collect();
    (id.len() == 11).then_some(id)
}

/// The URL of the thumbnail with this `id` (`avatar_uncropped`, `banner_uncropped`).
fn thumbnail_with_id(v: &Value, id: &str) -> Option<String> {
    v.get("thumbnails")
        .and_then(Value::as_array)?
        .iter()
        .find(|t| t.get("id").and_then(Value::as_str) == Some(id))
        .and_then(|t| text(t, "url"))
}

/// Reads a listing: the `-J` document (a `playlist` with `entries`), or `-j` lines (one flat
/// entry a line, the playlist's fields repeated as `playlist_*` in each). `None` when it is
/// neither. A document whose entries are all tabs is [`ListError::NotAList`].
pub fn parse_listing(out: &[u8]) -> Result<Listing, ListError> {
    if let Ok(doc) = serde_json::from_slice::<Value>(out)
        && doc.get("_type").and_then(Value::as_str) == Some("playlist")
    {
        let raw = doc
            .get("entries")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let tabs = raw
            .iter()
            .filter(|e| e.get("ie_key").and_then(Value::as_str) == Some("YoutubeTab"))
            .count();
        if tabs > 0 && tabs == raw.len() {
            return Err(ListError::NotAList);
        }
        let items: Vec<ListedItem> = raw.iter().filter_map(parse_entry).collect();
        return Ok(Listing {
            id: text(&doc, "id").unwrap_or_default(),
            title: text(&doc, "title").unwrap_or_default(),
            channel: text(&doc, "channel").or_else(|| text(&doc, "uploader")),
            channel_id: text(&doc, "channel_id"),
            handle: text(&doc, "uploader_id").filter(|h| h.starts_with('@')),
            avatar: thumbnail_with_id(&doc, "avatar_uncropped"),
            banner: thumbnail_with_id(&doc, "banner_uncropped"),
            total: doc.get("playlist_count").and_then(Value::as_u64),
            items,
        });
    }
    let lines: Vec<Value> = String::from_utf8_lossy(out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str::<Value>)
        .collect::<Result<_, _>>()
        .map_err(|_| ListError::Invalid)?;
    let Some(first) = lines.first().filter(|l| l.is_object()) else {
        return Err(ListError::Invalid);
    };
    Ok(Listing {
        id: text(first, "playlist_id").unwrap_or_default(),
        title: text(first, "playlist_title").unwrap_or_default(),
        channel: text(first, "playlist_channel").or_else(|| text(first, "playlist_uploader")),
        channel_id: text(first, "playlist_channel_id"),
        handle: text(first, "playlist_uploader_id").filter(|h| h.starts_with('@')),
        avatar: None,
        banner: None,
        total: first.get("playlist_count").and_then(Value::as_u64),
        items: lines.iter().filter_map(parse_entry).collect(),
    })
}

/// Lists the newest `newest` items of `url` (a canonical channel-tab or playlist URL) with
/// `program`, within `timeout`. yt-dlp runs as the metadata call does (`worker::command`: its
/// own process group, no stdin, killed as a group on timeout), awaited on the runtime without
/// holding a worker thread.
pub async fn list_newest(
    program: &Path,
    url: &str,
    newest: u32,
    pass: &Passthrough,
    timeout: Duration,
) -> Result<Listing, ListError> {
    let out = run(program, listing_args(url, newest, pass), timeout).await?;
    parse_listing(&out)
}

/// The arguments that save a channel's own thumbnails (avatar and banner, each in several
/// sizes, as `show.<thumbnail id>.jpg`) into `dir` without downloading a video.
///
/// yt-dlp/yt-dlp yt_dlp/YoutubeDL.py `__process_playlist` writes a playlist's thumbnails with
/// the `pl_thumbnail` template before its entries (`_write_thumbnails('playlist', ...)`; with
/// `--write-all-thumbnails` each is `<name>.<id>.<ext>`, `jpg` when the URL names no extension),
/// and the channel tab's thumbnails include `avatar_uncropped` and `banner_uncropped`
/// (extractor/youtube/_tab.py `_extract_metadata_from_tabs`). `--flat-playlist -I 1:1` keeps
/// the entries from being resolved.
pub fn show_art_args(url: &str, dir: &Path, pass: &Passthrough) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "--ignore-config",
        "--no-warnings",
        "--skip-download",
        "--write-all-thumbnails",
        "--flat-playlist",
        "-I",
        "1:1",
        "-o",
        "pl_thumbnail:show",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    let mut home = OsString::from("home:");
    home.push(dir.as_os_str());
    args.push(OsString::from("-P"));
    args.push(home);
    pass.push_into(&mut args);
    args.push(OsString::from("--"));
    args.push(OsString::from(url));
    args
}

/// Saves the channel's uncropped avatar and banner of the channel tab `url` as `avatar.jpg`
/// and `banner.jpg` in `dir` (an empty folder of the caller's); what yt-dlp did not give is
/// left out. Every other file yt-dlp wrote there is removed.
pub async fn fetch_show_art(
    program: &Path,
    url: &str,
    dir: &Path,
    pass: &Passthrough,
    timeout: Duration,
) -> Result<(), ListError> {
    run(program, show_art_args(url, dir, pass), timeout).await?;
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        for (id, name) in [
            ("avatar_uncropped", "avatar.jpg"),
            ("banner_uncropped", "banner.jpg"),
        ] {
            let _ = std::fs::rename(dir.join(format!("show.{id}.jpg")), dir.join(name));
        }
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name();
            if name != "avatar.jpg" && name != "banner.jpg" {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    })
    .await
    .map_err(|e| ListError::NotStarted(e.to_string()))
}

/// Runs yt-dlp with `args` for at most `timeout`; its standard output (bounded) on success.
async fn run(program: &Path, args: Vec<OsString>, timeout: Duration) -> Result<Vec<u8>, ListError> {
    let mut child = super::worker::command(program)
        .args(args)
        .spawn()
        .map_err(|e| ListError::NotStarted(e.to_string()))?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(ListError::NotStarted("no pipes".into()));
    };
    let run = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut stdout = stdout.take(MAX_LISTING_BYTES);
        let mut stderr = stderr.take(MAX_STDERR_BYTES);
        // A read error leaves what was read; the exit status decides.
        let _ = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
        let status = child.wait().await;
        (out, err, status)
    };
    let (out, err, status) = match tokio::time::timeout(timeout, run).await {
        Ok(done) => done,
        Err(_) => {
            super::worker::kill_group(&child);
            let _ = child.wait().await;
            return Err(ListError::Timeout);
        }
    };
    let status = status.map_err(|e| ListError::NotStarted(e.to_string()))?;
    if !status.success() {
        let tail: Vec<String> = String::from_utf8_lossy(&err)
            .lines()
            .map(str::to_owned)
            .collect();
        let exit = status.code().map_or(Exit::Signal, Exit::Code);
        return Err(classify(exit, &tail));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A `-J --flat-playlist` document of a channel's Videos tab as yt-dlp prints it: the
    /// playlist fields of `_extract_metadata_from_tabs` (avatar and banner, each followed by its
    /// uncropped variant), entries as `_extract_lockup_view_model` makes them (`url_result`:
    /// `_type`, `ie_key`, `id`, `url`, `title`; `timestamp` only with `approximate_date`).
    fn channel_doc() -> Value {
        json!({
            "_type": "playlist", "id": "UCabcdefghijklmnopqrstuv",
            "title": "Sim Channel - Videos", "channel": "Sim Channel",
            "channel_id": "UCabcdefghijklmnopqrstuv", "uploader_id": "@simchannel",
            "availability": null, "playlist_count": null,
            "thumbnails": [
                {"url": "https://yt3.googleusercontent.com/a=s900-c-k", "height": 900, "width": 900, "id": "0"},
                {"url": "https://yt3.googleusercontent.com/a=s0", "id": "avatar_uncropped", "preference": 1},
                {"url": "https://yt3.googleusercontent.com/b=w1060", "preference": -10, "id": "2"},
                {"url": "https://yt3.googleusercontent.com/b=s0", "id": "banner_uncropped", "preference": -5}
            ],
            "entries": [
                {"_type": "url", "ie_key": "Youtube", "id": "liveaaaaaa1",
                 "url": "https://www.youtube.com/watch?v=liveaaaaaa1", "title": "Live now",
                 "duration": null, "live_status": "is_live", "availability": null,
                 "timestamp": null, "concurrent_view_count": 12},
                {"_type": "url", "ie_key": "Youtube", "id": "vidaaaaaaa2",
                 "url": "https://www.youtube.com/watch?v=vidaaaaaaa2", "title": "A video",
                 "duration": 612.0, "live_status": null, "availability": null,
                 "timestamp": 1_767_225_600, "view_count": 1000},
                {"_type": "url", "ie_key": "Youtube", "id": "shortaaaaa3",
                 "url": "https://www.youtube.com/shorts/shortaaaaa3", "title": "A short",
                 "view_count": 50},
                {"_type": "url", "ie_key": "Youtube", "id": "membaaaaaa4",
                 "url": "https://www.youtube.com/watch?v=membaaaaaa4", "title": "Members",
                 "duration": 60, "availability": "subscriber_only", "timestamp": 1_767_139_200},
                {"_type": "url", "ie_key": "Youtube", "id": "privaaaaaa5",
                 "url": "https://www.youtube.com/watch?v=privaaaaaa5", "title": "[Private video]",
                 "duration": null},
                {"_type": "url", "ie_key": "Youtube", "id": "wasliveaaa6",
                 "url": "https://www.youtube.com/watch?v=wasliveaaa6", "title": "Stream",
                 "duration": 3600, "live_status": "was_live"}
            ]
        })
    }

    #[test]
    fn args_are_flat_bounded_dated_and_end_with_the_url() {
        let pass = Passthrough {
            cookies: Some("/tmp/c.txt".into()),
            args: vec!["--sleep-requests".into(), "1".into()],
            cookies_copy: None,
        };
        let args: Vec<String> = listing_args("https://www.youtube.com/@x/videos", 30, &pass)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let at = |s: &str| args.iter().position(|a| a == s).unwrap();
        assert_eq!(args[at("-I") + 1], "1:30");
        assert_eq!(
            args[at("--extractor-args") + 1],
            "youtubetab:approximate_date"
        );
        assert!(args.contains(&"-J".to_owned()) && args.contains(&"--flat-playlist".to_owned()));
        assert_eq!(args[at("--cookies") + 1], "/tmp/c.txt");
        assert!(at("--sleep-requests") < at("--"));
        assert_eq!(args.last().unwrap(), "https://www.youtube.com/@x/videos");
        assert_eq!(at("--"), args.len() - 2);
        // An admin's own `youtubetab:` arguments join ours; other extractors' stay apart.
        let pass = Passthrough {
            args: vec![
                "--extractor-args".into(),
                "youtubetab:skip=authcheck".into(),
                "--extractor-args=youtube:player_client=web".into(),
                "--force-ipv4".into(),
            ],
            ..Passthrough::default()
        };
        let args: Vec<String> = listing_args("u", 5, &pass)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let values: Vec<&str> = args
            .iter()
            .enumerate()
            .filter(|(_, a)| *a == "--extractor-args")
            .map(|(i, _)| args[i + 1].as_str())
            .collect();
        assert_eq!(
            values,
            [
                "youtubetab:approximate_date;skip=authcheck",
                "youtube:player_client=web"
            ]
        );
        assert!(args.contains(&"--force-ipv4".to_owned()));
        for (asked, range) in [(0, "1:1"), (5000, "1:1000")] {
            let a = listing_args("u", asked, &Passthrough::default());
            assert!(a.contains(&OsString::from(range)), "{asked}");
        }
    }

    #[test]
    fn a_channel_document_is_read_with_dates_and_flags() {
        let l = parse_listing(channel_doc().to_string().as_bytes()).unwrap();
        assert_eq!(l.channel.as_deref(), Some("Sim Channel"));
        assert_eq!(l.handle.as_deref(), Some("@simchannel"));
        assert_eq!(
            l.avatar.as_deref(),
            Some("https://yt3.googleusercontent.com/a=s0")
        );
        assert_eq!(
            l.banner.as_deref(),
            Some("https://yt3.googleusercontent.com/b=s0")
        );
        let ids: Vec<&str> = l.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "liveaaaaaa1",
                "vidaaaaaaa2",
                "shortaaaaa3",
                "membaaaaaa4",
                "privaaaaaa5",
                "wasliveaaa6"
            ]
        );
        let [live, video, short, memb, private, stream] = &l.items[..] else {
            panic!()
        };
        assert!(live.is_live && !live.is_short && live.duration_secs.is_none());
        assert_eq!(video.upload_date, Some(time::macros::date!(2026 - 01 - 01)));
        assert_eq!(video.duration_secs, Some(612));
        assert!(!video.is_live && !video.is_short && video.availability.downloadable());
        assert!(short.is_short && short.upload_date.is_none());
        assert_eq!(memb.availability, Availability::MembersOnly);
        assert_eq!(memb.upload_date, Some(time::macros::date!(2025 - 12 - 31)));
        assert!(!memb.availability.downloadable());
        assert_eq!(private.availability, Availability::Private);
        assert!(stream.was_live && !stream.is_live);
    }

    #[test]
    fn json_lines_give_upload_date_and_playlist_fields() {
        // `-j --flat-playlist`: `_fill_common_fields` adds `upload_date`, and each line carries
        // the playlist's fields as `playlist_*` (`YoutubeDL._playlist_infodict`).
        let lines = [
            json!({"_type": "url", "ie_key": "Youtube", "id": "aaaaaaaaaa1", "title": "One",
                   "url": "https://www.youtube.com/watch?v=aaaaaaaaaa1", "upload_date": "20260301",
                   "timestamp": 1, "playlist_id": "UUabc", "playlist_title": "Uploads from X",
                   "playlist_channel": "X", "playlist_count": 40}),
            json!({"_type": "url", "ie_key": "Youtube", "id": "aaaaaaaaaa2", "title": "Two",
                   "url": "https://www.youtube.com/shorts/aaaaaaaaaa2"}),
        ];
        let out = format!("{}\n{}\n", lines[0], lines[1]);
        let l = parse_listing(out.as_bytes()).unwrap();
        assert_eq!(l.id, "UUabc");
        assert_eq!(l.channel.as_deref(), Some("X"));
        assert_eq!(l.total, Some(40));
        assert_eq!(
            l.items[0].upload_date,
            Some(time::macros::date!(2026 - 03 - 01))
        );
        assert!(l.items[1].is_short);
    }

    #[test]
    fn a_home_page_of_tabs_and_garbage_are_told_apart() {
        let tabs = json!({"_type": "playlist", "id": "UCx", "entries": [
            {"_type": "url", "ie_key": "YoutubeTab", "id": "UCx", "url": "https://www.youtube.com/channel/UCx/videos", "title": "X - Videos"},
            {"_type": "url", "ie_key": "YoutubeTab", "id": "UCx", "url": "https://www.youtube.com/channel/UCx/shorts", "title": "X - Shorts"}
        ]});
        assert_eq!(
            parse_listing(tabs.to_string().as_bytes()),
            Err(ListError::NotAList)
        );
        let empty = json!({"_type": "playlist", "id": "UCx", "entries": []});
        assert!(
            parse_listing(empty.to_string().as_bytes())
                .unwrap()
                .items
                .is_empty()
        );
        // Embeds found on a page (the generic extractor) have only their URL.
        let embeds = json!({"_type": "playlist", "id": "embeds", "entries": [
            {"ie_key": "Youtube", "_type": "url", "url": "https://www.youtube.com/embed/aaaaaaaaaa1"},
            {"ie_key": "Youtube", "_type": "url", "url": "https://www.youtube.com/embed/short"}
        ]});
        let l = parse_listing(embeds.to_string().as_bytes()).unwrap();
        assert_eq!(l.items.len(), 1);
        assert_eq!(l.items[0].id, "aaaaaaaaaa1");
        assert_eq!(parse_listing(b"not json"), Err(ListError::Invalid));
        assert_eq!(parse_listing(b""), Err(ListError::Invalid));
        assert_eq!(parse_listing(b"[1,2]"), Err(ListError::Invalid));
    }

    #[test]
    fn failures_are_classified() {
        let lines = |l: &str| vec!["[youtube:tab] Extracting URL: x".to_owned(), l.to_owned()];
        // _video.py: the reason, with "This helps protect our community. Learn more" cut and the
        // cookies hint added (_base.py `_youtube_login_hint`).
        let bot = "ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm you\u{2019}re not a bot. Use --cookies-from-browser or --cookies for the authentication. See  https://github.com/yt-dlp/yt-dlp/wiki/FAQ#how-do-i-pass-cookies-to-yt-dlp  for how to manually pass cookies. Also see  https://github.com/yt-dlp/yt-dlp/wiki/Extractors#exporting-youtube-cookies  for tips on effectively exporting YouTube cookies";
        let e = classify(Exit::Code(1), &lines(bot));
        assert!(
            matches!(&e, ListError::Refused { kind: Refused::BotCheck, reason } if reason.starts_with("[youtube] dQw4w9WgXcQ: Sign in")),
            "{e:?}"
        );
        assert!(e.is_refusal() && e.hint().contains("cookies"));
        let plain = "ERROR: [youtube:tab] @x: Sign in to confirm you're not a bot";
        assert!(matches!(
            classify(Exit::Code(1), &lines(plain)),
            ListError::Refused {
                kind: Refused::BotCheck,
                ..
            }
        ));
        for text in [
            "ERROR: [youtube:tab] @x: Unable to download webpage: HTTP Error 429: Too Many Requests (caused by <HTTPError 429: Too Many Requests>)",
            "ERROR: [youtube] abcdefghijk: This content isn't available, try again later. The current session has been rate-limited by YouTube for up to an hour.",
        ] {
            assert!(
                matches!(
                    classify(Exit::Code(1), &lines(text)),
                    ListError::Refused {
                        kind: Refused::RateLimited,
                        ..
                    }
                ),
                "{text}"
            );
        }
        for text in [
            "ERROR: [youtube:tab] @nosuch: Unable to download webpage: HTTP Error 404: Not Found (caused by <HTTPError 404: Not Found>)",
            "ERROR: [youtube:tab] PLxyz: YouTube said: The playlist does not exist.",
            "ERROR: [youtube:tab] @x: This channel does not have a streams tab",
        ] {
            assert!(
                matches!(
                    classify(Exit::Code(1), &lines(text)),
                    ListError::NotFound(_)
                ),
                "{text}"
            );
        }
        assert_eq!(
            classify(
                Exit::Code(1),
                &lines("ERROR: [youtube:tab] @x: Unable to extract yt initial data")
            ),
            ListError::Failed("[youtube:tab] @x: Unable to extract yt initial data".into())
        );
        assert_eq!(
            classify(Exit::Code(2), &[]),
            ListError::Failed("yt-dlp refused its options (exit code 2)".into())
        );
    }
}
