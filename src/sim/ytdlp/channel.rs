//! The simulated yt-dlp's YouTube channels: what `-J --flat-playlist` prints for a channel's
//! tabs and its uploads playlist, uploads that appear between two listings, and YouTube
//! refusing to answer.
//!
//! A channel URL is `/@handle[/TAB]`, `/channel/UC…[/TAB]`, `/c/NAME[/TAB]` or `/user/NAME[/TAB]`
//! (TAB: `videos`, `shorts`, `streams`; any other is "This channel does not have a TAB tab"),
//! or its uploads playlist `/playlist?list=UU…` (the channel id with `UC` made `UU`). The channel's
//! key names it in the control files: the handle or name lowercased (`@Sim` is `sim`), or the
//! channel id without `UC` and the `_` padding; the channel id of `@sim` is `UCsim` padded with
//! `_` to 24 characters (so its uploads playlist is `UUsim___…`).
//!
//! Each channel has N uploads (12, or the N of a key `n<N>…`), one a day from 2026-01-01 12:00
//! UTC, oldest first: every fifth is a Short, the third a finished live stream, the second private,
//! and the newest (when N >= 3) is live now. Their ids are the key's first six letters and the
//! upload's number (`sim0000001`-like, 11 characters; a key starting `fail`, `slow`, … gives ids
//! that misbehave on download like those of [`super`]). A key starting with `gone` is a channel
//! that does not exist (HTTP 404), one starting with `lhang` never answers.
//!
//! Like the real tabs (yt-dlp/yt-dlp yt_dlp/extractor/youtube/_tab.py, 2026.08.19):
//! - `/videos` lists the videos only, `/shorts` the Shorts (`shortsLockupViewModel`: id, `/shorts/`
//!   url, title and views, no duration or date), `/streams` the live and past streams; a
//!   channel's home URL lists its tabs as three `YoutubeTab` entries (`_extract_from_tabs`:
//!   "Downloading as multiple playlists, separated by tabs"). The uploads playlist lists
//!   everything, Shorts with a `/shorts/` url (`_extract_video`: the `SHORTS` overlay), the live
//!   stream with `live_status: is_live` and no duration, and the private upload as YouTube's
//!   `[Private video]` placeholder (`_reload_with_unavailable_videos` asks for unavailable
//!   videos too).
//! - An entry has a `timestamp` only when `--extractor-args youtubetab:approximate_date` was given
//!   (`_extract_video` / `_extract_lockup_view_model` parse "3 days ago" only then); a channel
//!   tab's own fields carry the avatar and banner with their `avatar_uncropped` and
//!   `banner_uncropped` variants (`_extract_metadata_from_tabs`).
//!
//! Control files in the simulator's directory:
//! - `sim-uploads/<key>`: uploads added to the channel, one JSON object a line
//!   (`{"id","title","kind","timestamp"}`; [`add_upload`] writes one, dated now).
//! - `sim-clock/<key>`: a start time (Unix seconds); the channel gains one video every minute
//!   since then ([`start_clock`]; the demo's channel).
//! - `sim-hold-listings`: while it exists, channel listings wait (marked in `sim-state/held/`).
//! - `sim-refuse-bot` / `sim-refuse-429`: the next listing(s) of a channel or playlist fail as
//!   YouTube's bot check ("Sign in to confirm you’re not a bot") or an HTTP 429, exit 1. The file
//!   holds how many listings refuse (empty: one; `always`: every one); it is removed when used up.
//!
//! Every listed entry is remembered in `sim-state/listed/<id>.json` so that downloading it later
//! gives it the same title and upload date.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// 2026-01-01 12:00:00 UTC: every channel's first upload.
const BASE_TS: i64 = 1_767_268_800;
const DAY: i64 = 86_400;
/// Uploads of a channel whose key sets no number.
const DEFAULT_UPLOADS: usize = 12;
/// Most uploads a key may ask for, and most clock uploads.
const MAX_UPLOADS: usize = 9999;
/// Entries per page of a channel tab (one pause of the simulator per page).
const TAB_PAGE: usize = 30;

/// `sim-uploads/<key>`: uploads added by a test.
pub const UPLOADS_DIR: &str = "sim-uploads";
/// `sim-clock/<key>`: the channel gains a video every minute since the time in it.
pub const CLOCK_DIR: &str = "sim-clock";
/// The next listing refuses with YouTube's bot check.
pub const REFUSE_BOT: &str = "sim-refuse-bot";
/// The next listing refuses with HTTP 429.
pub const REFUSE_429: &str = "sim-refuse-429";
/// While this file exists, listings of a channel wait (each marks itself in
/// `sim-state/held/<pid>` first), so a test can stop the server in the middle of a check.
pub const HOLD_LISTINGS: &str = "sim-hold-listings";

/// Waits while [`HOLD_LISTINGS`] exists in `sim_dir`.
pub(super) fn hold(sim_dir: Option<&Path>) {
    let Some(dir) = sim_dir else { return };
    let flag = dir.join(HOLD_LISTINGS);
    if !flag.exists() {
        return;
    }
    let held = dir.join("sim-state").join("held");
    let _ = std::fs::create_dir_all(&held);
    let _ = std::fs::write(held.join(std::process::id().to_string()), b"");
    while flag.exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// What an upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Video,
    Short,
    /// Live now.
    Live,
    /// A finished live stream.
    WasLive,
    /// Private: a `[Private video]` placeholder in the uploads playlist, absent from the tabs.
    Private,
}

/// One upload of a simulated channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Upload {
    pub id: String,
    pub title: String,
    pub kind: Kind,
    /// Unix seconds.
    pub timestamp: i64,
}

impl Upload {
    fn duration(&self) -> Option<u64> {
        match self.kind {
            Kind::Video => Some(60),
            Kind::Short => Some(42),
            Kind::WasLive => Some(3600),
            Kind::Live | Kind::Private => None,
        }
    }
}

/// A channel's key as the control files name it (see the module docs), from a handle (`@Sim`)
/// or a channel id (`UCsim___…`); anything else is read as a `/c/` or `/user/` name.
pub fn channel_key(handle_or_id: &str) -> String {
    match handle_or_id.strip_prefix("UC") {
        Some(rest) if !handle_or_id.starts_with('@') => rest
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
            .take(22)
            .collect::<String>()
            .trim_end_matches('_')
            .to_owned(),
        _ => handle_or_id
            .trim_start_matches('@')
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
            .take(22)
            .collect::<String>()
            .to_ascii_lowercase()
            .trim_end_matches('_')
            .to_owned(),
    }
}

/// The channel id of a key: `UC` and the key padded with `_` to 22 characters.
pub fn channel_id(key: &str) -> String {
    format!("UC{key:_<22}")
}

fn key_file(sim_dir: &Path, folder: &str, key: &str) -> std::io::Result<PathBuf> {
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a channel key",
        ));
    }
    let dir = sim_dir.join(folder);
    std::fs::create_dir_all(&dir)?;
    Ok(dir.join(key))
}

/// Adds an upload of `kind` titled `title` to the channel `key`, dated now; returns its id.
pub fn add_upload(sim_dir: &Path, key: &str, title: &str, kind: Kind) -> std::io::Result<String> {
    use std::io::Write;
    let file = key_file(sim_dir, UPLOADS_DIR, key)?;
    let added = std::fs::read_to_string(&file)
        .map(|t| t.lines().count())
        .unwrap_or(0);
    let stem: String = stem(key).chars().take(5).collect();
    let upload = Upload {
        id: format!("{stem:x<5}u{:05}", added + 1),
        title: title.to_owned(),
        kind,
        timestamp: time::OffsetDateTime::now_utc().unix_timestamp(),
    };
    let line = serde_json::to_string(&upload).map_err(std::io::Error::other)?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?
        .write_all(format!("{line}\n").as_bytes())?;
    Ok(upload.id)
}

/// Makes the channel `key` gain one video every minute from `start` (Unix seconds) on.
pub fn start_clock(sim_dir: &Path, key: &str, start: i64) -> std::io::Result<()> {
    std::fs::write(key_file(sim_dir, CLOCK_DIR, key)?, start.to_string())
}

/// Makes the next `times` listings refuse (`None`: every one until the file is removed).
pub fn refuse_listings(sim_dir: &Path, control: &str, times: Option<u32>) -> std::io::Result<()> {
    let text = times.map_or_else(|| "always".to_owned(), |n| n.to_string());
    std::fs::write(sim_dir.join(control), text)
}

/// The key's letters that start its ids.
fn stem(key: &str) -> String {
    key.chars().filter(char::is_ascii_alphanumeric).collect()
}

/// Which list a URL asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tab {
    Home,
    Videos,
    Shorts,
    Streams,
    /// The uploads playlist (`UU…`).
    Uploads,
    Other(String),
}

/// A channel URL's channel and tab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    pub key: String,
    /// As the URL named it (`@sim`, `UC…`, `UU…`), for messages.
    pub shown: String,
    pub tab: Tab,
}

/// The channel and tab of `url` (`list` is its `list=` value); `None` when it names no channel.
pub(super) fn target(url: &str, list: Option<&str>) -> Option<Target> {
    if let Some(list) = list
        && let Some(rest) = list.strip_prefix("UU")
    {
        let key = channel_key(&format!("UC{rest}"));
        return (!key.is_empty()).then(|| Target {
            key,
            shown: list.to_owned(),
            tab: Tab::Uploads,
        });
    }
    let path = url.split_once("youtube.com/")?.1;
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let (shown, tab) = match parts.as_slice() {
        [handle, rest @ ..] if handle.starts_with('@') => (*handle, rest.first()),
        ["channel", id, rest @ ..] if id.starts_with("UC") => (*id, rest.first()),
        ["c" | "user", name, rest @ ..] => (*name, rest.first()),
        _ => return None,
    };
    // A `/c/` or `/user/` name is keyed like a handle.
    let key = match shown.strip_prefix("UC") {
        Some(_) if parts.first() == Some(&"channel") => channel_key(shown),
        _ => channel_key(&format!("@{shown}")),
    };
    if key.is_empty() {
        return None;
    }
    let tab = match tab.copied() {
        None | Some("featured") => Tab::Home,
        Some("videos") => Tab::Videos,
        Some("shorts") => Tab::Shorts,
        Some("streams") => Tab::Streams,
        Some(other) => Tab::Other(other.to_owned()),
    };
    Some(Target {
        key,
        shown: shown.to_owned(),
        tab,
    })
}

/// The channel's uploads, newest first.
pub(super) fn uploads(sim_dir: Option<&Path>, key: &str) -> Vec<Upload> {
    let n = key
        .strip_prefix('n')
        .map(|rest| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|d| d.parse::<usize>().ok())
        .unwrap_or(DEFAULT_UPLOADS)
        .min(MAX_UPLOADS);
    let stem = stem(key);
    let six: String = stem.chars().take(6).collect();
    let mut all: Vec<Upload> = (1..=n)
        .map(|i| {
            let kind = match i {
                i if i == n && n >= 3 => Kind::Live,
                2 => Kind::Private,
                3 => Kind::WasLive,
                i if i % 5 == 0 => Kind::Short,
                _ => Kind::Video,
            };
            let id = if kind == Kind::Private {
                let three: String = stem.chars().take(3).collect();
                format!("priv{three:x<3}{i:04}")
            } else {
                format!("{six:x<6}{i:05}")
            };
            Upload {
                title: match kind {
                    Kind::Private => "[Private video]".to_owned(),
                    Kind::Short => format!("Short {i} of {key}"),
                    Kind::Live | Kind::WasLive => format!("Stream {i} of {key}"),
                    Kind::Video => super::video_title(&id),
                },
                id,
                kind,
                timestamp: BASE_TS + (i as i64 - 1) * DAY,
            }
        })
        .collect();
    if let Some(dir) = sim_dir {
        if let Ok(text) = std::fs::read_to_string(dir.join(UPLOADS_DIR).join(key)) {
            all.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
        }
        if let Some(start) = std::fs::read_to_string(dir.join(CLOCK_DIR).join(key))
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok())
        {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let minutes = usize::try_from((now - start) / 60)
                .unwrap_or(0)
                .min(MAX_UPLOADS);
            let four: String = stem.chars().take(4).collect();
            all.extend((1..=minutes).map(|k| Upload {
                id: format!("{four:x<4}c{k:06}"),
                title: format!("Minute {k} of {key}"),
                kind: Kind::Video,
                timestamp: start + k as i64 * 60,
            }));
        }
    }
    // Newest first; among equal times the later added first.
    all.reverse();
    all.sort_by_key(|u| std::cmp::Reverse(u.timestamp));
    all
}

/// Takes one refusal from the control files: the `ERROR:` reason, or `None`.
pub(super) fn take_refusal(sim_dir: Option<&Path>, shown: &str) -> Option<String> {
    let dir = sim_dir?;
    for (control, reason) in [
        // yt-dlp/yt-dlp yt_dlp/extractor/youtube/_video.py: YouTube's reason ("This helps
        // protect our community. Learn more" cut) plus `_youtube_login_hint` (_base.py).
        (
            REFUSE_BOT,
            "Sign in to confirm you\u{2019}re not a bot. Use --cookies-from-browser or --cookies \
             for the authentication. See  \
             https://github.com/yt-dlp/yt-dlp/wiki/FAQ#how-do-i-pass-cookies-to-yt-dlp  for how \
             to manually pass cookies. Also see  \
             https://github.com/yt-dlp/yt-dlp/wiki/Extractors#exporting-youtube-cookies  for tips \
             on effectively exporting YouTube cookies",
        ),
        // _tab.py `_extract_webpage`: a 403/429 is not retried; common.py `_request_webpage`
        // and networking/exceptions.py `HTTPError` make the text.
        (
            REFUSE_429,
            "Unable to download webpage: HTTP Error 429: Too Many Requests (caused by \
             <HTTPError 429: Too Many Requests>)",
        ),
    ] {
        let file = dir.join(control);
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let text = text.trim();
        if text != "always" {
            let left = text.parse::<u32>().unwrap_or(1).saturating_sub(1);
            let _ = if left == 0 {
                std::fs::remove_file(&file)
            } else {
                std::fs::write(&file, left.to_string())
            };
        }
        return Some(format!("[youtube:tab] {shown}: {reason}"));
    }
    None
}

/// The `-J --flat-playlist` document of `target`, its entries sliced by `-I` (`items`); dated
/// when `dated` (`youtubetab:approximate_date`). `Err` is yt-dlp's `ERROR:` reason.
pub(super) fn document(
    sim_dir: Option<&Path>,
    target: &Target,
    url: &str,
    items: Option<(usize, usize)>,
    dated: bool,
) -> Result<(Value, usize), String> {
    let key = &target.key;
    let shown = &target.shown;
    if key.starts_with("gone") {
        return Err(format!(
            "[youtube:tab] {shown}: Unable to download webpage: HTTP Error 404: Not Found \
             (caused by <HTTPError 404: Not Found>)"
        ));
    }
    let name = format!("Sim Channel {key}");
    let cid = channel_id(key);
    let curl = format!("https://www.youtube.com/channel/{cid}");
    let handle = format!("@{key}");
    let (tab_name, keep): (&str, fn(Kind) -> bool) = match &target.tab {
        Tab::Home => {
            // _tab.py `_extract_from_tabs`: the home page is a playlist of its tabs.
            let entries: Vec<Value> = ["Videos", "Shorts", "Live"]
                .iter()
                .map(|t| {
                    let path = if *t == "Live" {
                        "streams".to_owned()
                    } else {
                        t.to_lowercase()
                    };
                    json!({"_type": "url", "ie_key": "YoutubeTab", "id": cid,
                        "url": format!("{curl}/{path}"), "title": format!("{name} - {t}")})
                })
                .collect();
            let doc = json!({"_type": "playlist", "id": cid, "title": name, "channel": name,
                "channel_id": cid, "uploader": name, "uploader_id": handle,
                "channel_url": curl, "entries": entries, "extractor_key": "YoutubeTab",
                "webpage_url": url});
            return Ok((doc, 0));
        }
        Tab::Other(tab) => {
            return Err(format!(
                "[youtube:tab] {shown}: This channel does not have a {tab} tab"
            ));
        }
        Tab::Videos => ("Videos", |k| k == Kind::Video),
        Tab::Shorts => ("Shorts", |k| k == Kind::Short),
        Tab::Streams => ("Live", |k| matches!(k, Kind::Live | Kind::WasLive)),
        Tab::Uploads => ("", |_| true),
    };
    let all: Vec<Upload> = uploads(sim_dir, key)
        .into_iter()
        .filter(|u| keep(u.kind))
        .collect();
    let count = all.len();
    let last = items.map_or(count, |(_, stop)| stop.min(count));
    let chosen: Vec<Upload> = all
        .into_iter()
        .enumerate()
        .filter(|(i, _)| items.is_none_or(|(a, b)| (a..=b).contains(&(i + 1))))
        .map(|(_, u)| u)
        .collect();
    let shorts_tab = target.tab == Tab::Shorts;
    let entries: Vec<Value> = chosen
        .iter()
        .map(|u| entry(u, shorts_tab, dated, &name, &cid, &handle))
        .collect();
    remember(sim_dir, &chosen);
    let thumbs = |base: &str| {
        json!([
            {"url": format!("https://yt3.googleusercontent.com/{base}-avatar=s900-c-k"), "height": 900, "width": 900, "id": "0"},
            {"url": format!("https://yt3.googleusercontent.com/{base}-avatar=s0"), "id": "avatar_uncropped", "preference": 1},
            {"url": format!("https://yt3.googleusercontent.com/{base}-banner=w1060"), "preference": -10, "id": "2"},
            {"url": format!("https://yt3.googleusercontent.com/{base}-banner=s0"), "id": "banner_uncropped", "preference": -5}
        ])
    };
    let doc = if target.tab == Tab::Uploads {
        let list = format!("UU{}", &cid[2..]);
        json!({"_type": "playlist", "id": list, "title": format!("Uploads from {name}"),
            "channel": name, "channel_id": cid, "uploader": name, "uploader_id": handle,
            "channel_url": curl, "availability": "public", "playlist_count": count,
            "thumbnails": [{"url": format!("https://i.ytimg.com/vi/{list}/hqdefault.jpg")}],
            "entries": entries, "extractor_key": "YoutubeTab", "webpage_url": url})
    } else {
        json!({"_type": "playlist", "id": cid, "title": format!("{name} - {tab_name}"),
            "channel": name, "channel_id": cid, "uploader": name, "uploader_id": handle,
            "uploader_url": format!("https://www.youtube.com/{handle}"), "channel_url": curl,
            "channel_follower_count": 1234, "availability": null, "tags": [],
            "description": format!("The simulated channel {key}."),
            "thumbnails": thumbs(key), "entries": entries, "extractor_key": "YoutubeTab",
            "webpage_url": url})
    };
    Ok((doc, last))
}

/// Pages a listing of `last` entries fetches (a pause each after the first).
pub(super) fn pages(last: usize) -> usize {
    last.div_ceil(TAB_PAGE)
}

/// One flat entry as `_tab.py` makes it.
fn entry(u: &Upload, shorts_tab: bool, dated: bool, name: &str, cid: &str, handle: &str) -> Value {
    let watch = format!("https://www.youtube.com/watch?v={}", u.id);
    let thumbs = json!([{"url": format!("https://i.ytimg.com/vi/{}/hqdefault.jpg", u.id),
        "height": 202, "width": 360}]);
    if shorts_tab {
        // `_rich_entries`, `shortsLockupViewModel`: no duration, date or channel.
        return json!({"_type": "url", "ie_key": "Youtube", "id": u.id,
            "url": format!("https://www.youtube.com/shorts/{}", u.id), "title": u.title,
            "view_count": 5000, "thumbnails": thumbs});
    }
    if u.kind == Kind::Private {
        // A placeholder: YouTube gives the id and its own title, nothing else.
        return json!({"_type": "url", "ie_key": "Youtube", "id": u.id, "url": watch,
            "title": u.title, "description": null, "duration": null, "channel_id": null,
            "channel": null, "channel_url": null, "uploader": null, "uploader_id": null,
            "uploader_url": null, "thumbnails": thumbs, "timestamp": null,
            "release_timestamp": null, "availability": null, "view_count": null,
            "live_status": null, "channel_is_verified": null});
    }
    let url = if u.kind == Kind::Short {
        format!("https://www.youtube.com/shorts/{}", u.id)
    } else {
        watch
    };
    let live = u.kind == Kind::Live;
    let mut e = json!({"_type": "url", "ie_key": "Youtube", "id": u.id, "url": url,
        "title": u.title, "description": null, "duration": u.duration(),
        "channel_id": cid, "channel": name, "channel_url": format!("https://www.youtube.com/channel/{cid}"),
        "uploader": name, "uploader_id": handle,
        "uploader_url": format!("https://www.youtube.com/{handle}"), "thumbnails": thumbs,
        // Live now shows "Streaming now", no age to date it by.
        "timestamp": (dated && !live).then_some(u.timestamp),
        "release_timestamp": null, "availability": null,
        "live_status": match u.kind {
            Kind::Live => Some("is_live"),
            Kind::WasLive => Some("was_live"),
            _ => None,
        },
        "channel_is_verified": null});
    // `_extract_video`: a live entry counts watchers now, the others views.
    let views = if live {
        "concurrent_view_count"
    } else {
        "view_count"
    };
    e[views] = json!(1000);
    e
}

fn listed_dir(sim_dir: &Path) -> PathBuf {
    sim_dir.join("sim-state").join("listed")
}

/// Remembers listed uploads for later downloads.
fn remember(sim_dir: Option<&Path>, uploads: &[Upload]) {
    let Some(dir) = sim_dir else { return };
    let listed = listed_dir(dir);
    let _ = std::fs::create_dir_all(&listed);
    for u in uploads {
        if let Ok(text) = serde_json::to_string(u) {
            let _ = std::fs::write(listed.join(format!("{}.json", u.id)), text);
        }
    }
}

/// A listed upload, by id.
pub(super) fn listed(sim_dir: Option<&Path>, id: &str) -> Option<Upload> {
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return None;
    }
    let text = std::fs::read_to_string(listed_dir(sim_dir?).join(format!("{id}.json"))).ok()?;
    serde_json::from_str(&text).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_channels_and_tabs() {
        let t = |u: &str| target(u, None);
        assert_eq!(t("https://www.youtube.com/@Sim/videos").unwrap().key, "sim");
        assert_eq!(t("https://www.youtube.com/@sim").unwrap().tab, Tab::Home);
        let c = t("https://www.youtube.com/channel/UCsim___________________/shorts").unwrap();
        assert_eq!((c.key.as_str(), c.tab), ("sim", Tab::Shorts));
        assert_eq!(channel_id("sim"), "UCsim___________________");
        let up = target(
            "https://www.youtube.com/playlist?list=UUsim",
            Some("UUsim___________________"),
        )
        .unwrap();
        assert_eq!((up.key.as_str(), up.tab), ("sim", Tab::Uploads));
        assert_eq!(
            t("https://www.youtube.com/@sim/community").unwrap().tab,
            Tab::Other("community".into())
        );
        assert!(t("https://www.youtube.com/watch?v=abc").is_none());
        assert_eq!(
            t("https://www.youtube.com/c/UCLA/videos").unwrap().key,
            "ucla"
        );
        assert_eq!(t("https://www.youtube.com/@UCLA").unwrap().key, "ucla");
        let short = target("https://www.youtube.com/playlist?list=UUsim", Some("UUsim")).unwrap();
        assert_eq!(short.key, "sim");
        assert!(target("https://www.youtube.com/playlist?list=PLx", Some("PLx")).is_none());
    }

    #[test]
    fn a_channel_has_dated_uploads_of_every_kind_newest_first() {
        let all = uploads(None, "sim");
        assert_eq!(all.len(), 12);
        assert!(all.windows(2).all(|w| w[0].timestamp > w[1].timestamp));
        assert_eq!(all[0].kind, Kind::Live);
        assert!(all.iter().all(|u| u.id.len() == 11));
        let kinds = |k| all.iter().filter(|u| u.kind == k).count();
        assert_eq!(
            (
                kinds(Kind::Short),
                kinds(Kind::WasLive),
                kinds(Kind::Private)
            ),
            (2, 1, 1)
        );
        assert_eq!(uploads(None, "n40x").len(), 40);
    }
}
