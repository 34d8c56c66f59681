//! How MediaNest talks to yt-dlp (UPSTREAMS.md section 4): the argument lists (never a shell; the
//! URL always after `--`), safe folder names, the progress lines the worker reads, the metadata
//! JSON and turning an exit status plus stderr into an `error` a person can read.
//!
//! Everything here is pure (no processes, no I/O) so it is unit-tested directly; `worker.rs`
//! runs the processes.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Marks our progress lines on stdout (`--progress-template`).
pub const PROGRESS_PREFIX: &str = "MNPROG ";
/// Marks a finished file on stdout (`--print after_move:`), its path as a JSON string.
pub const DONE_PREFIX: &str = "MNDONE ";

/// Longest folder name (bytes) a playlist or channel title becomes.
pub const MAX_FOLDER_BYTES: usize = 100;
/// Longest part of a file name taken from the title (bytes, yt-dlp's `.NB` cap).
pub const MAX_TITLE_BYTES: usize = 150;
/// Entries `GET /youtube/metadata` lists.
pub const MAX_ENTRIES: usize = 50;

/// The requested quality: a height cap, or the best there is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quality {
    Best,
    Height(u32),
}

impl Quality {
    pub const DEFAULT: &'static str = "1080";

    /// `best|2160|1440|1080|720|480|360`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "best" => Some(Self::Best),
            "2160" | "1440" | "1080" | "720" | "480" | "360" => text.parse().ok().map(Self::Height),
            _ => None,
        }
    }
}

/// The container asked for.
pub const FORMATS: [&str; 3] = ["mp4", "mkv", "webm"];

/// yt-dlp's `-f` selector for a quality: the best video stream up to the height plus the best
/// audio, else the best single file up to the height, else anything.
pub fn format_selector(quality: Quality) -> String {
    match quality {
        Quality::Best => "bv*+ba/b".to_owned(),
        Quality::Height(h) => format!("bv*[height<={h}]+ba/b[height<={h}]/b"),
    }
}

/// yt-dlp's `-S` format sort for a quality and container (yt-dlp/yt-dlp README "Sorting
/// Formats" and yt_dlp/utils/_utils.py `FormatSorter`): the resolution first (`res:H` prefers
/// the largest no higher than H, so the cap stays the first rule), then codecs Plex clients
/// play directly: H.264 + AAC for mp4 (`vcodec:h264` ranks h264 first and better codecs such
/// as VP9/AV1 after it; `acodec:aac` ranks AAC and YouTube's `mp4a` before Opus), VP9 + Opus for
/// webm; then the extensions (`ext:mp4:m4a`). An mkv holds anything: the resolution only.
pub fn format_sort(quality: Quality, format: &str) -> String {
    let res = match quality {
        Quality::Best => "res".to_owned(),
        Quality::Height(h) => format!("res:{h}"),
    };
    match format {
        "mp4" => format!("{res},vcodec:h264,acodec:aac,ext:mp4:m4a"),
        "webm" => format!("{res},vcodec:vp9,acodec:opus,ext:webm:webm"),
        _ => res,
    }
}

/// `--merge-output-format`: the containers yt-dlp may merge into, in order
/// (yt_dlp/utils/_utils.py `get_compatible_ext`). A webm cannot hold H.264/AAC, which is all
/// some videos have: those become mkv instead of a failed merge.
pub fn merge_formats(format: &str) -> &'static str {
    match format {
        "webm" => "webm/mkv",
        "mkv" => "mkv",
        _ => "mp4",
    }
}

/// What an option of `youtube.extra_args` takes.
#[derive(Debug, Clone, Copy)]
enum Takes {
    /// Nothing (a switch).
    Nothing,
    /// A word, number or rate: no path separator.
    Word,
    /// One of these values.
    OneOf(&'static [&'static str]),
    /// An URL or a header line.
    Text,
    /// `--extractor-args`: any text that names no file, folder, script or command.
    ExtractorArgs,
}

/// The options `youtube.extra_args` may hold: network, rate, retry, JavaScript-runtime and
/// extractor options. Anything else is refused, because yt-dlp has many options that run
/// commands (`--exec`, `--use-postprocessor Exec:...`, `--downloader`, `--ffmpeg-location`, a
/// runtime's `:PATH`), write or read files outside the download folder (`--download-archive`,
/// `--cache-dir`, `--write-pages`, `--enable-file-urls`, `--netrc-location`), print secrets
/// (`--print-traffic`) or change what the worker reads (`--print`, `--quiet`, `-o`, `-P`).
/// Names, aliases and arities from yt-dlp/yt-dlp yt_dlp/options.py (2026.10.26); the runtimes
/// and remote components from yt_dlp/__init__.py (`supported_js_runtimes`,
/// `supported_remote_components`). Only full names: yt-dlp takes any unambiguous abbreviation,
/// which an allowlist refuses by not knowing it.
const ALLOWED: &[(&str, Takes)] = &[
    (
        "--js-runtimes",
        Takes::OneOf(&["deno", "node", "quickjs", "bun"]),
    ),
    ("--no-js-runtimes", Takes::Nothing),
    (
        "--remote-components",
        Takes::OneOf(&["ejs:github", "ejs:npm"]),
    ),
    ("--no-remote-components", Takes::Nothing),
    ("--extractor-args", Takes::ExtractorArgs),
    ("--impersonate", Takes::Word),
    ("--proxy", Takes::Text),
    ("--geo-verification-proxy", Takes::Text),
    ("--source-address", Takes::Word),
    ("--force-ipv4", Takes::Nothing),
    ("-4", Takes::Nothing),
    ("--force-ipv6", Takes::Nothing),
    ("-6", Takes::Nothing),
    ("--xff", Takes::Word),
    ("--geo-bypass", Takes::Nothing),
    ("--no-geo-bypass", Takes::Nothing),
    ("--limit-rate", Takes::Word),
    ("--rate-limit", Takes::Word),
    ("-r", Takes::Word),
    ("--throttled-rate", Takes::Word),
    ("--retries", Takes::Word),
    ("-R", Takes::Word),
    ("--fragment-retries", Takes::Word),
    ("--extractor-retries", Takes::Word),
    ("--retry-sleep", Takes::Word),
    ("--concurrent-fragments", Takes::Word),
    ("-N", Takes::Word),
    ("--sleep-requests", Takes::Word),
    ("--sleep-interval", Takes::Word),
    ("--min-sleep-interval", Takes::Word),
    ("--max-sleep-interval", Takes::Word),
    ("--socket-timeout", Takes::Word),
    ("--http-chunk-size", Takes::Word),
    ("--age-limit", Takes::Word),
    ("--add-headers", Takes::Text),
    ("--referer", Takes::Text),
    ("--user-agent", Takes::Text),
    ("--no-check-certificates", Takes::Nothing),
    ("--prefer-insecure", Takes::Nothing),
    ("--legacy-server-connect", Takes::Nothing),
];

/// Why `name` is not passed on, for the options people reach for.
fn refusal(name: &str) -> &'static str {
    match name {
        "--cookies" | "--cookies-from-browser" => {
            "set youtube.cookies_file (or upload a cookies file) instead"
        }
        "-o" | "--output" | "-P" | "--paths" => "MediaNest chooses where files go",
        "--ffmpeg-location" => "put ffmpeg on the PATH of MediaNest's service instead",
        "-f" | "--format" | "-S" | "--format-sort" => {
            "MediaNest chooses the format from the quality"
        }
        _ => {
            "only the network, rate, retry, JavaScript-runtime and extractor options in the README are passed on"
        }
    }
}

/// Checks `youtube.extra_args` (config file, admin page) against [`ALLOWED`]: the first
/// refused argument, named, with why.
pub fn check_extra_args(args: &[String]) -> Result<(), String> {
    if args.len() > 64 {
        return Err("at most 64 arguments".to_owned());
    }
    if let Some(bad) = args.iter().find(|a| a.len() > 1024 || a.contains('\0')) {
        let shown: String = bad.chars().take(40).collect();
        return Err(format!(
            "{shown:?} is longer than 1024 bytes or holds a NUL"
        ));
    }
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            return Err("\"--\" would end MediaNest's options early".to_owned());
        }
        if !arg.starts_with('-') || arg == "-" {
            return Err(format!(
                "{arg} is refused: a bare argument would be one more URL for every run"
            ));
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if arg.starts_with("--") => (name, Some(value)),
            _ => (arg.as_str(), None),
        };
        let Some((_, takes)) = ALLOWED.iter().find(|(known, _)| *known == name) else {
            return Err(format!("{name} is refused: {}", refusal(name)));
        };
        let value = match (takes, inline) {
            (Takes::Nothing, None) => continue,
            (Takes::Nothing, Some(_)) => return Err(format!("{name} takes no value")),
            (_, Some(value)) => value,
            (_, None) => match rest.next() {
                Some(value) => value.as_str(),
                None => return Err(format!("{name} needs a value")),
            },
        };
        let fine = match takes {
            Takes::Nothing => true,
            Takes::Word => !value.is_empty() && !value.contains(['/', '\\']),
            Takes::OneOf(values) => values.contains(&value),
            Takes::Text => !value.is_empty(),
            Takes::ExtractorArgs => {
                let lower = value.to_ascii_lowercase();
                !value.is_empty()
                    && !["path", "dir", "file", "script", "cmd", "exec"]
                        .iter()
                        .any(|word| lower.contains(word))
            }
        };
        if !fine {
            let why = match takes {
                Takes::OneOf(values) => format!("one of {}", values.join(", ")),
                Takes::ExtractorArgs => {
                    "extractor arguments that name no file, folder, script or command".to_owned()
                }
                _ => "a word or number, not a path".to_owned(),
            };
            return Err(format!("{name} {value} is refused: {name} takes {why}"));
        }
    }
    Ok(())
}

/// The arguments of the metadata call: one JSON document for the whole URL, entries unresolved,
/// and of a playlist only the first `items` (`-I 1:N`, yt-dlp/yt-dlp yt_dlp/options.py
/// `--playlist-items`): `YoutubeDL.__process_playlist` takes the requested slice of the entries
/// lazily, so a playlist of thousands costs one page of YouTube's list, not all of them.
pub fn metadata_args(url: &str, items: u32, pass: &Passthrough) -> Vec<OsString> {
    let range = format!("1:{}", items.max(1));
    let mut args: Vec<OsString> = [
        "--ignore-config",
        "-J",
        "--flat-playlist",
        "--no-warnings",
        "-I",
        &range,
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    pass.push_into(&mut args);
    args.push(OsString::from("--"));
    args.push(OsString::from(url));
    args
}

/// What the admin adds to every yt-dlp run: a cookies file (`--cookies`, yt_dlp/options.py)
/// and `youtube.extra_args` (checked by [`check_extra_args`]), after MediaNest's own options and
/// before the `--` that ends them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Passthrough {
    pub cookies: Option<PathBuf>,
    pub args: Vec<String>,
    /// When `cookies` is this run's own copy: removed once the last clone is dropped.
    pub cookies_copy: Option<std::sync::Arc<PrivateCopy>>,
}

/// A run's own copy of a file, removed when dropped.
#[derive(Debug, PartialEq)]
pub struct PrivateCopy(pub PathBuf);

impl Drop for PrivateCopy {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.0.display(), error = %e, "cannot remove a cookies copy");
        }
    }
}

impl Passthrough {
    pub(crate) fn push_into(&self, args: &mut Vec<OsString>) {
        if let Some(cookies) = &self.cookies {
            args.push(OsString::from("--cookies"));
            args.push(cookies.as_os_str().to_owned());
        }
        args.extend(self.args.iter().map(OsString::from));
    }
}

/// What one download run needs to know.
#[derive(Debug, Clone)]
pub struct DownloadPlan {
    /// The canonical URL (see `url::YoutubeUrl::canonical`).
    pub url: String,
    pub playlist: bool,
    pub quality: Quality,
    /// `mp4`, `mkv` or `webm`.
    pub format: String,
    /// The folder files go into: `<download_dir>/<user folder>/<playlist or channel>`.
    pub folder: PathBuf,
    pub pass: Passthrough,
    /// A subscription's episode: its own file name, thumbnail, subtitles and SponsorBlock.
    pub episode: Option<EpisodeFiles>,
}

/// What a subscription's download writes besides the video (`src/youtube/layout.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpisodeFiles {
    /// The `-o` template ([`super::layout::output_template`]).
    pub template: String,
    /// Subtitle languages to fetch; empty: none.
    pub subtitle_langs: Vec<String>,
    /// Subtitles inside the file (true) or as `.srt` files beside it, which Plex reads as
    /// `<video name>.<lang>.srt`.
    pub embed_subtitles: bool,
    /// SponsorBlock: `remove` the categories from the file or `mark` them as chapters.
    pub sponsorblock: Option<(SponsorBlock, Vec<String>)>,
}

/// What SponsorBlock does with the chosen categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SponsorBlock {
    Remove,
    Mark,
}

/// The arguments of a download. The folder goes in through `-P` (not templated by yt-dlp, so a
/// `%` in a title cannot become a field); the file name template uses only fields, capped in
/// length and sanitized by yt-dlp for every filesystem (`--windows-filenames`).
pub fn download_args(plan: &DownloadPlan) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::with_capacity(32);
    let mut push = |s: &str| args.push(OsString::from(s));
    push("--ignore-config");
    push("--newline");
    push("--no-colors");
    push("--progress");
    push("--no-simulate");
    // `--print` implies `--quiet` (yt-dlp/yt-dlp yt_dlp/__init__.py: `opts.quiet` defaults to
    // `bool(opts.forceprint)`), which hides the "Downloading item N of M" and "Downloading 1
    // format(s)" lines the progress counts items with; `--no-quiet` keeps them.
    push("--no-quiet");
    push("--progress-template");
    push(&format!("download:{PROGRESS_PREFIX}%(progress)j"));
    push("--print");
    push(&format!("after_move:{DONE_PREFIX}%(filepath)j"));
    push("--windows-filenames");
    push(if plan.playlist {
        "--yes-playlist"
    } else {
        "--no-playlist"
    });
    push("-f");
    push(&format_selector(plan.quality));
    push("-S");
    push(&format_sort(plan.quality, &plan.format));
    push("--merge-output-format");
    push(merge_formats(&plan.format));
    push("-o");
    match &plan.episode {
        None => push(&format!("%(title).{MAX_TITLE_BYTES}B [%(id)s].%(ext)s")),
        Some(episode) => {
            push(&episode.template);
            // yt-dlp/yt-dlp yt_dlp/YoutubeDL.py `_write_thumbnails`: the thumbnail takes the
            // video's name with its own extension (the `thumbnail` template falls back to the
            // default one), and `--convert-thumbnails jpg` (postprocessor/ffmpeg.py
            // `FFmpegThumbnailsConvertorPP`) makes it the `.jpg` Plex reads as the episode's
            // poster.
            push("--write-thumbnail");
            push("--convert-thumbnails");
            push("jpg");
            if !episode.subtitle_langs.is_empty() {
                // yt_dlp/options.py: `--write-subs` (uploaded subtitles, not automatic ones),
                // `--sub-langs` comma-separated; `--embed-subs` muxes them in
                // (`FFmpegEmbedSubtitlePP`), `--convert-subs srt` keeps them beside the file.
                push("--write-subs");
                push("--sub-langs");
                push(&episode.subtitle_langs.join(","));
                if episode.embed_subtitles {
                    push("--embed-subs");
                } else {
                    push("--convert-subs");
                    push("srt");
                }
            }
            if let Some((mode, categories)) = &episode.sponsorblock
                && !categories.is_empty()
            {
                // yt_dlp/options.py `--sponsorblock-remove` / `--sponsorblock-mark` take
                // comma-separated categories (postprocessor/sponsorblock.py `CATEGORIES`).
                push(match mode {
                    SponsorBlock::Remove => "--sponsorblock-remove",
                    SponsorBlock::Mark => "--sponsorblock-mark",
                });
                push(&categories.join(","));
            }
        }
    }
    args.push(OsString::from("-P"));
    let mut home = OsString::from("home:");
    home.push(plan.folder.as_os_str());
    args.push(home);
    plan.pass.push_into(&mut args);
    args.push(OsString::from("--"));
    args.push(OsString::from(&plan.url));
    args
}

/// A name made safe as one path component on every filesystem: no separators or reserved
/// characters, no control characters, not `.`/`..`, no trailing dots or spaces (Windows), not a
/// reserved device name, at most `max_bytes` bytes (cut on a character boundary). An empty
/// result becomes `fallback`.
pub fn safe_component(name: &str, max_bytes: usize, fallback: &str) -> String {
    let mut out = String::with_capacity(name.len().min(max_bytes));
    let mut last_space = false;
    for c in name.chars() {
        let c = match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => ' ',
            c if c.is_whitespace() => ' ',
            c => c,
        };
        if c == ' ' {
            if last_space || out.is_empty() {
                continue;
            }
            last_space = true;
        } else {
            last_space = false;
        }
        if out.len() + c.len_utf8() > max_bytes {
            break;
        }
        out.push(c);
    }
    // Leading dots would hide the folder; trailing dots and spaces are dropped by Windows.
    let trimmed = out
        .trim_start_matches(['.', ' '])
        .trim_end_matches(['.', ' '])
        .to_owned();
    if trimmed.is_empty() {
        return fallback.to_owned();
    }
    let stem = trimmed
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit());
    if reserved {
        format!("_{trimmed}")
    } else {
        trimmed
    }
}

/// True when `path`, once `.`/`..` are resolved lexically, is inside `root` (both absolute).
/// Symbolic links are the caller's business (it canonicalizes first when the file exists).
pub fn is_inside(root: &Path, path: &Path) -> bool {
    let mut resolved = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                if !resolved.pop() {
                    return false;
                }
            }
            Component::CurDir => {}
            other => resolved.push(other.as_os_str()),
        }
    }
    resolved.starts_with(root) && resolved != root
}

/// One line of yt-dlp's stdout, understood.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    Progress(Progress),
    /// A file is finished and in its final place.
    Done(PathBuf),
    /// `[download] Downloading item N of M` (yt-dlp's `YoutubeDL.__process_playlist`): the
    /// playlist's next item starts; `M` is `N/A` with `--lazy-playlist`.
    Item {
        index: u32,
        total: Option<u32>,
    },
    /// `[info] <id>: Downloading 1 format(s): 137+140` (`YoutubeDL.process_info`'s
    /// `to_screen`): how many streams the item downloads one after the other (each its own
    /// 0-100 progress cycle) before they are merged.
    Formats {
        id: String,
        streams: u32,
    },
    /// `[<extractor>] <id>: ...`: yt-dlp is working on this video.
    Working(String),
    /// `[download] <file> has already been downloaded` (`YoutubeDL.report_file_already_downloaded`):
    /// no progress follows for this item, only its `after_move` line.
    AlreadyDone,
    /// Anything else (yt-dlp's own messages, garbage): logged, never fatal.
    Other,
}

/// The fields of yt-dlp's progress dictionary the worker uses; all optional, as yt-dlp sends
/// nulls freely.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Progress {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub filename: Option<String>,
    #[serde(default)]
    pub tmpfilename: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub downloaded_bytes: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub total_bytes: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub total_bytes_estimate: Option<u64>,
    /// Fragments done and in all, for HLS/DASH (`downloader/fragment.py`), whose progress has
    /// no `total_bytes`, only a `total_bytes_estimate` that moves as fragments arrive.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub fragment_index: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub fragment_count: Option<u64>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub speed: Option<f64>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub eta: Option<f64>,
}

impl Progress {
    /// The fraction of this file done (0-1), when the size is known.
    pub fn fraction(&self) -> Option<f64> {
        if self.status.as_deref() == Some("finished") {
            return Some(1.0);
        }
        if self.total_bytes.is_none()
            && let (Some(index), Some(count)) = (self.fragment_index, self.fragment_count)
            && count > 0
        {
            return Some((index as f64 / count as f64).clamp(0.0, 1.0));
        }
        let done = self.downloaded_bytes? as f64;
        let total = self.total_bytes.or(self.total_bytes_estimate)? as f64;
        (total > 0.0).then(|| (done / total).clamp(0.0, 1.0))
    }
}

fn lenient_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        _ => None,
    })
}

fn lenient_f64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
        _ => None,
    })
}

/// Reads one stdout line (already decoded lossily, without its line ending).
pub fn parse_line(line: &str) -> Line {
    let line = line.trim_end_matches(['\r', '\n']);
    if let Some(json) = line.strip_prefix(PROGRESS_PREFIX) {
        return serde_json::from_str::<Progress>(json)
            .map(Line::Progress)
            .unwrap_or(Line::Other);
    }
    if let Some(json) = line.strip_prefix(DONE_PREFIX) {
        return match serde_json::from_str::<String>(json) {
            Ok(path) if !path.is_empty() => Line::Done(PathBuf::from(path)),
            _ => Line::Other,
        };
    }
    if let Some(rest) = line.strip_prefix("[download] ") {
        if let Some(counts) = rest.strip_prefix("Downloading item ") {
            let Some((n, m)) = counts.trim().split_once(" of ") else {
                return Line::Other;
            };
            return match n.trim().parse() {
                Ok(index) => Line::Item {
                    index,
                    total: m.trim().parse().ok(),
                },
                Err(_) => Line::Other,
            };
        }
        if rest.ends_with(" has already been downloaded")
            || rest == "The file has already been downloaded"
        {
            return Line::AlreadyDone;
        }
        return Line::Other;
    }
    match extractor_line(line) {
        Some((_, id, message)) => match message
            .strip_prefix("Downloading ")
            .and_then(|m| m.split_once(" format(s): "))
        {
            Some((_, formats)) => Line::Formats {
                id: id.to_owned(),
                // `137+140` is two streams in turn; `a, b` two formats, each its own.
                streams: formats
                    .split(',')
                    .map(|f| f.split('+').filter(|p| !p.trim().is_empty()).count())
                    .sum::<usize>()
                    .clamp(1, 16) as u32,
            },
            None => Line::Working(id.to_owned()),
        },
        None => Line::Other,
    }
}

/// A line that is not one of yt-dlp's `[...]` screen lines nor ours: an `ERROR:`/`WARNING:`
/// message, a usage error, a traceback (what yt-dlp writes to stderr).
pub fn is_message(line: &str) -> bool {
    let line = line.trim_start();
    !line.is_empty()
        && !line.starts_with('[')
        && !line.starts_with(PROGRESS_PREFIX)
        && !line.starts_with(DONE_PREFIX)
}

/// `[<extractor>] <id>: <message>` (yt-dlp's `ExtractorError` and `to_screen` shape):
/// `(extractor, id, message)`. The id has no spaces, so `[generic] Extracting URL: ...` is not
/// one. `[download]` lines name files, not videos.
fn extractor_line(line: &str) -> Option<(&str, &str, &str)> {
    let rest = line.strip_prefix('[')?;
    let (ie, rest) = rest.split_once("] ")?;
    if ie.is_empty() || ie.contains(' ') || ie == "download" {
        return None;
    }
    let (id, message) = rest.split_once(": ")?;
    if id.is_empty() || id.len() > 200 || id.contains(char::is_whitespace) {
        return None;
    }
    Some((ie, id, message))
}

/// Longest reason kept for one failed item.
pub const MAX_ITEM_REASON_CHARS: usize = 300;
/// Failed items kept for one download (the rest are counted in the last one's reason).
pub const MAX_FAILED_ITEMS: usize = 200;

/// One item yt-dlp could not download while it went on with the others (its default: see
/// `YoutubeDL.trouble`, which only counts the error in the exit code when errors are ignored,
/// and `__process_playlist`, which goes on to the next entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedItem {
    /// Its position in the playlist (`Downloading item N of M`), when yt-dlp said.
    pub index: Option<u32>,
    /// The video id, when yt-dlp named it (or was working on it).
    pub id: Option<String>,
    /// yt-dlp's reason, e.g. `Private video. Sign in if you've been granted access ...`.
    pub reason: String,
}

/// A stderr `ERROR:` line as `(video id, reason)`: `ERROR: [youtube] <id>: Private video. ...`
/// (the `[extractor] id: ` prefix is `ExtractorError`'s) gives the id and the text after it;
/// another `ERROR:` line gives its whole text and no id. `None` for other lines.
pub fn parse_error_line(line: &str) -> Option<(Option<String>, String)> {
    let text = line
        .trim()
        .strip_prefix("ERROR:")?
        .trim_start_matches(['\r', ' '])
        .trim();
    if text.is_empty() {
        return None;
    }
    Some(match extractor_line(text) {
        Some((_, id, reason)) if !reason.trim().is_empty() => (
            Some(id.to_owned()),
            truncate_chars(reason.trim(), MAX_ITEM_REASON_CHARS),
        ),
        _ => (None, truncate_chars(text, MAX_ITEM_REASON_CHARS)),
    })
}

/// `GET /youtube/metadata`: `{kind, id, title, channel, duration, thumbnail, itemCount,
/// listed, total, partial, summary, entries[<=50]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub kind: &'static str,
    pub id: String,
    pub title: String,
    pub channel: Option<String>,
    pub duration: Option<f64>,
    pub thumbnail: Option<String>,
    /// Videos in the playlist: yt-dlp's `playlist_count` when it knows it, else those listed.
    pub item_count: u32,
    /// Entries yt-dlp listed (at most `youtube.preview_items`, placeholders of private and
    /// deleted videos left out).
    pub listed: u32,
    /// yt-dlp's `playlist_count` (YouTube's own count of the playlist), when it gave one.
    pub total: Option<u32>,
    /// True when the preview lists only the first items of a longer playlist (or one whose
    /// length yt-dlp did not say and that filled the preview).
    pub partial: bool,
    /// For people: `first 50 of 3200 videos`, `first 50 videos (more not counted)`,
    /// `12 videos`; `None` for a video.
    pub summary: Option<String>,
    pub entries: Vec<Entry>,
    /// A video's upload day (`YYYYMMDD`, yt-dlp's `upload_date`); what a subscription's file
    /// layout and the Plex date use.
    #[serde(skip)]
    pub upload_date: Option<String>,
    /// A video's description (the Plex summary of a subscription's episode).
    #[serde(skip)]
    pub description: Option<String>,
}

/// One video of a playlist.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub id: String,
    pub title: String,
    pub duration: Option<f64>,
    pub thumbnail: Option<String>,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn thumbnail(v: &Value) -> Option<String> {
    text(v, "thumbnail").or_else(|| {
        v.get("thumbnails")
            .and_then(Value::as_array)
            .and_then(|t| t.iter().rev().find_map(|t| text(t, "url")))
    })
}

/// Private and deleted videos stay in flat playlists as placeholders.
fn is_placeholder(title: &str) -> bool {
    matches!(title, "[Private video]" | "[Deleted video]")
}

/// Reads `yt-dlp -J --flat-playlist -I 1:N` output (`requested` is that N); `None` when it is
/// not a JSON object.
pub fn parse_metadata(json: &[u8], requested: u32) -> Option<Metadata> {
    let v: Value = serde_json::from_slice(json).ok()?;
    v.as_object()?;
    let playlist = v.get("_type").and_then(Value::as_str) == Some("playlist");
    let id = text(&v, "id").unwrap_or_default();
    let title = text(&v, "title").unwrap_or_else(|| id.clone());
    let channel = text(&v, "channel").or_else(|| text(&v, "uploader"));
    let mut entries = Vec::new();
    let mut item_count = 0u32;
    let mut raw = 0u32;
    if playlist {
        for e in v
            .get("entries")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            raw += 1;
            // Entries of other sites' playlists (an RSS feed, extractor/generic.py) may have a
            // URL and no id.
            let Some(id) = text(e, "id").or_else(|| text(e, "url")) else {
                continue;
            };
            let title = text(e, "title").unwrap_or_else(|| id.clone());
            if is_placeholder(&title) {
                continue;
            }
            item_count += 1;
            if entries.len() < MAX_ENTRIES {
                entries.push(Entry {
                    id,
                    duration: e.get("duration").and_then(Value::as_f64),
                    thumbnail: thumbnail(e),
                    title,
                });
            }
        }
    } else {
        item_count = 1;
    }
    let listed = item_count;
    // `playlist_count`: the extractor's (YouTube's header "N videos", extractor/youtube/_tab.py)
    // or, when the entries were all read, their number (`YoutubeDL.__process_playlist`).
    let total = playlist
        .then(|| v.get("playlist_count").and_then(Value::as_u64))
        .flatten()
        .and_then(|n| u32::try_from(n).ok());
    let partial = playlist
        && match total {
            Some(total) => total > raw,
            None => raw >= requested,
        };
    if let Some(total) = total {
        item_count = item_count.max(total);
    }
    let plural = |n: u32| if n == 1 { "video" } else { "videos" };
    let summary = playlist.then(|| match (partial, total) {
        (true, Some(total)) => format!("first {listed} of {total} {}", plural(total)),
        (true, None) => format!("first {listed} {} (more not counted)", plural(listed)),
        (false, _) => format!("{item_count} {}", plural(item_count)),
    });
    Some(Metadata {
        kind: if playlist { "playlist" } else { "video" },
        duration: if playlist {
            None
        } else {
            v.get("duration").and_then(Value::as_f64)
        },
        thumbnail: thumbnail(&v),
        id,
        title,
        channel,
        item_count,
        listed,
        total,
        partial,
        summary,
        entries,
        upload_date: (!playlist).then(|| text(&v, "upload_date")).flatten(),
        description: (!playlist).then(|| text(&v, "description")).flatten(),
    })
}

/// Longest `error` stored for a failed download.
pub const MAX_ERROR_CHARS: usize = 500;

/// How a run ended, for the `error` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal,
}

/// A readable reason from the exit status and the last stderr lines: yt-dlp's own last
/// `ERROR:` line when there is one, else what the exit code means.
pub fn failure_reason(exit: Exit, stderr_tail: &[String]) -> String {
    let from_ytdlp = stderr_tail
        .iter()
        .rev()
        .find_map(|l| l.trim().strip_prefix("ERROR:"))
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let text = match (from_ytdlp, exit) {
        (Some(reason), _) => reason.to_owned(),
        (None, Exit::Code(2)) => "yt-dlp refused its options (exit code 2)".to_owned(),
        (None, Exit::Code(101)) => "yt-dlp stopped at a download limit (exit code 101)".to_owned(),
        (None, Exit::Code(code)) => match stderr_tail.iter().rev().find(|l| !l.trim().is_empty()) {
            Some(last) => format!("yt-dlp failed (exit code {code}): {}", last.trim()),
            None => format!("yt-dlp failed (exit code {code})"),
        },
        (None, Exit::Signal) => "yt-dlp was stopped by a signal".to_owned(),
    };
    truncate_chars(&text, MAX_ERROR_CHARS)
}

/// `text` cut to `max` characters (with an ellipsis when cut).
pub fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn qualities_and_formats() {
        assert_eq!(Quality::parse("best"), Some(Quality::Best));
        assert_eq!(Quality::parse("720"), Some(Quality::Height(720)));
        assert_eq!(Quality::parse("721"), None);
        assert_eq!(Quality::parse("1080p"), None);
        assert_eq!(
            format_selector(Quality::Height(720)),
            "bv*[height<=720]+ba/b[height<=720]/b"
        );
    }

    #[test]
    fn the_url_is_always_last_after_a_double_dash() {
        let plan = DownloadPlan {
            url: "https://www.youtube.com/watch?v=dQw4w9WgXcQ".into(),
            playlist: false,
            quality: Quality::Height(1080),
            format: "mp4".into(),
            folder: PathBuf::from("/dl/ann/Some Channel"),
            pass: Passthrough::default(),
            episode: None,
        };
        let args = download_args(&plan);
        let n = args.len();
        assert_eq!(args[n - 2], "--");
        assert_eq!(args[n - 1], "https://www.youtube.com/watch?v=dQw4w9WgXcQ");
        assert!(args.contains(&OsString::from("home:/dl/ann/Some Channel")));
        assert!(args.contains(&OsString::from("--no-playlist")));
        // `--print` would make yt-dlp quiet: the item lines are needed.
        assert!(args.contains(&OsString::from("--no-quiet")));
        let meta = metadata_args("https://youtu.be/x", 50, &Passthrough::default());
        assert_eq!(meta[meta.len() - 2], "--");
        let i = meta.iter().position(|a| a == "-I").unwrap();
        assert_eq!(meta[i + 1], "1:50");
    }

    /// `-S` field names and limits as yt-dlp/yt-dlp yt_dlp/utils/_utils.py `FormatSorter`
    /// (2026.10.26) reads them: `res`, `vcodec`, `acodec`, `ext` with `:` limits.
    #[test]
    fn formats_sort_for_direct_play_under_the_resolution_cap() {
        let args = |quality, format: &str| {
            download_args(&DownloadPlan {
                url: "https://www.youtube.com/watch?v=dQw4w9WgXcQ".into(),
                playlist: false,
                quality,
                format: format.into(),
                folder: PathBuf::from("/dl"),
                pass: Passthrough::default(),
                episode: None,
            })
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
        };
        let after = |args: &[String], flag: &str| {
            let i = args.iter().position(|a| a == flag).unwrap();
            args[i + 1].clone()
        };
        let mp4 = args(Quality::Height(1080), "mp4");
        assert_eq!(
            after(&mp4, "-S"),
            "res:1080,vcodec:h264,acodec:aac,ext:mp4:m4a"
        );
        assert_eq!(after(&mp4, "-f"), "bv*[height<=1080]+ba/b[height<=1080]/b");
        assert_eq!(after(&mp4, "--merge-output-format"), "mp4");
        let webm = args(Quality::Height(720), "webm");
        assert_eq!(
            after(&webm, "-S"),
            "res:720,vcodec:vp9,acodec:opus,ext:webm:webm"
        );
        assert_eq!(after(&webm, "--merge-output-format"), "webm/mkv");
        let mkv = args(Quality::Best, "mkv");
        assert_eq!(after(&mkv, "-S"), "res");
        assert_eq!(after(&mkv, "--merge-output-format"), "mkv");
        assert_eq!(
            after(&args(Quality::Best, "mp4"), "-S"),
            "res,vcodec:h264,acodec:aac,ext:mp4:m4a"
        );
        // The sort comes before the URL, which stays last after `--`.
        assert_eq!(mp4[mp4.len() - 2], "--");
    }

    /// Option names and aliases from yt-dlp/yt-dlp yt_dlp/options.py (2026.10.26); optparse
    /// takes unambiguous abbreviations of long options and clusters of short ones.
    #[test]
    fn extra_args_that_would_break_the_worker_are_refused_by_name() {
        let ok =
            |v: &[&str]| check_extra_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(ok(&["--js-runtimes", "node"]), Ok(()));
        assert_eq!(
            ok(&["--js-runtimes=node", "--remote-components", "ejs:github"]),
            Ok(())
        );
        assert_eq!(
            ok(&[
                "-N",
                "4",
                "-4",
                "--limit-rate=2M",
                "--proxy",
                "socks5://127.0.0.1:1080",
                "--extractor-args",
                "youtube:player_client=default,-tv;po_token=web.gvs+ab/c=",
                "--no-check-certificates",
            ]),
            Ok(())
        );
        // Each of these ran a command, wrote outside the download folder, read a local file,
        // printed secrets or changed what the worker reads (yt_dlp/options.py).
        for (bad, named) in [
            (&["-o", "x"][..], "-o"),
            (&["--output=%(id)s"], "--output"),
            (&["--out", "x"], "--out"),
            (&["-P", "/tmp"], "-P"),
            (&["--paths", "/tmp"], "--paths"),
            (&["--exec", "rm -rf ~"], "--exec"),
            (
                &["--use-postprocessor", "Exec:exec_cmd=touch x"],
                "--use-postprocessor",
            ),
            (&["--use-post", "Exec:exec_cmd=touch x"], "--use-post"),
            (&["--downloader", "/bin/sh"], "--downloader"),
            (
                &["--downloader-args", "aria2c:--on-download-complete=x"],
                "--downloader-args",
            ),
            (&["--ppa", "-y /tmp/x"], "--ppa"),
            (&["--ffmpeg-location", "/bin/sh"], "PATH"),
            (&["--js-runtimes", "deno:/bin/sh"], "one of deno"),
            (&["--js-runtimes", "node:/usr/bin"], "one of deno"),
            (&["--download-archive", "/tmp/a"], "--download-archive"),
            (&["--cache-dir", "/tmp"], "--cache-dir"),
            (&["--write-pages"], "--write-pages"),
            (&["--print-traffic"], "--print-traffic"),
            (&["--dump-pages"], "--dump-pages"),
            (&["--netrc-location", "/root"], "--netrc-location"),
            (
                &["--cookies-from-browser", "firefox"],
                "youtube.cookies_file",
            ),
            (
                &["--enable-file-urls", "file:///etc/passwd"],
                "--enable-file-urls",
            ),
            (&["https://example.invalid/extra"], "bare argument"),
            (
                &[
                    "--extractor-args",
                    "youtubepot-bgutilscript:script_path=/x.js",
                ],
                "script",
            ),
            (&["--limit-rate", "../x"], "not a path"),
            (&["--retries"], "needs a value"),
            (&["-4=x"], "-4=x"),
            (&["--force-ipv4=yes"], "takes no value"),
            (&["--print", "x"], "--print"),
            (&["-O", "x"], "-O"),
            (&["--progress-template", "x"], "--progress-template"),
            (&["--newline"], "--newline"),
            (&["-q"], "-q"),
            (&["-vq"], "-vq"),
            (&["-J"], "-J"),
            (&["-a", "list.txt"], "-a"),
            (&["--config-location", "x"], "--config-location"),
            (&["--cookies", "c.txt"], "youtube.cookies_file"),
            (&["-f", "best"], "quality"),
            (&["-U"], "-U"),
            (&["--"], "\"--\""),
        ] {
            let err = ok(bad).unwrap_err();
            assert!(err.contains(named), "{bad:?}: {err}");
        }
    }

    #[test]
    fn cookies_and_extra_args_go_before_the_url() {
        let pass = Passthrough {
            cookies: Some(PathBuf::from("/data/youtube-cookies.txt")),
            args: vec!["--js-runtimes".into(), "node".into()],
            cookies_copy: None,
        };
        let meta = metadata_args("https://youtu.be/x", 50, &pass);
        let n = meta.len();
        assert_eq!(
            meta[n - 6..],
            [
                "--cookies",
                "/data/youtube-cookies.txt",
                "--js-runtimes",
                "node",
                "--",
                "https://youtu.be/x"
            ]
        );
        let args = download_args(&DownloadPlan {
            url: "https://youtu.be/x".into(),
            playlist: false,
            quality: Quality::Best,
            format: "mp4".into(),
            folder: PathBuf::from("/dl"),
            pass,
            episode: None,
        });
        let n = args.len();
        assert_eq!(
            args[n - 4..],
            ["--js-runtimes", "node", "--", "https://youtu.be/x"]
        );
        assert!(args.contains(&OsString::from("--cookies")));
    }

    #[test]
    fn names_are_made_safe() {
        assert_eq!(safe_component("../../etc", 100, "x"), "_.._etc");
        assert_eq!(safe_component("..", 100, "Unsorted"), "Unsorted");
        assert_eq!(safe_component("  . ", 100, "Unsorted"), "Unsorted");
        assert_eq!(
            safe_component("a/b\\c:d*e?f\"g<h>i|j", 100, "x"),
            "a_b_c_d_e_f_g_h_i_j"
        );
        assert_eq!(
            safe_component("line\nbreak\ttab", 100, "x"),
            "line break tab"
        );
        assert_eq!(safe_component("CON", 100, "x"), "_CON");
        assert_eq!(safe_component("com1.txt", 100, "x"), "_com1.txt");
        assert_eq!(
            safe_component("Lo-fi $(rm -rf) `x`; & ok", 100, "x"),
            "Lo-fi $(rm -rf) `x`; & ok"
        );
        assert_eq!(
            safe_component("trailing dots...", 100, "x"),
            "trailing dots"
        );
        let long = "é".repeat(300);
        let cut = safe_component(&long, 100, "x");
        assert!(cut.len() <= 100 && cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn inside_checks_resolve_dot_dot() {
        let root = Path::new("/dl/ann");
        assert!(is_inside(root, Path::new("/dl/ann/Mix/a.mp4")));
        assert!(!is_inside(root, Path::new("/dl/ann/../bob/a.mp4")));
        assert!(!is_inside(
            root,
            Path::new("/dl/ann/Mix/../../../etc/passwd")
        ));
        assert!(!is_inside(root, Path::new("/dl/ann")));
        assert!(!is_inside(root, Path::new("/dl/annie/a.mp4")));
    }

    #[test]
    fn progress_lines_are_read_leniently() {
        let line = r#"MNPROG {"status":"downloading","downloaded_bytes":500,"total_bytes":null,"total_bytes_estimate":1000.0,"speed":null,"eta":3,"filename":"/a.mp4","tmpfilename":"/a.mp4.part","_percent_str":" 50.0%"}"#;
        let Line::Progress(p) = parse_line(line) else {
            panic!("not progress")
        };
        assert_eq!(p.fraction(), Some(0.5));
        assert_eq!(p.tmpfilename.as_deref(), Some("/a.mp4.part"));
        let Line::Progress(p) = parse_line(r#"MNPROG {"status":"finished"}"#) else {
            panic!()
        };
        assert_eq!(p.fraction(), Some(1.0));
        assert_eq!(
            parse_line("MNDONE \"/dl/a b.mp4\"\r"),
            Line::Done(PathBuf::from("/dl/a b.mp4"))
        );
        for junk in [
            "",
            "[youtube] Extracting URL: https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "[download] Destination: /dl/a: b.mp4",
            "[download] Downloading item x of 5",
            "MNPROG {not json",
            "MNPROG [1,2]",
            "MNDONE 42",
            "MNDONE \"\"",
            "\u{fffd}\u{fffd} garbage",
        ] {
            assert_eq!(parse_line(junk), Line::Other, "{junk}");
        }
        let Line::Progress(p) =
            parse_line(r#"MNPROG {"downloaded_bytes":"many","total_bytes":-5}"#)
        else {
            panic!()
        };
        assert_eq!(p.fraction(), None);
    }

    /// The screen lines of yt-dlp/yt-dlp 2026.10.26: yt_dlp/YoutubeDL.py `__process_playlist`
    /// ("Downloading item N of M"), `process_video_result` ("Downloading 1 format(s):"),
    /// `report_file_already_downloaded`, and extractor/common.py `to_screen` ("[ie] id: ...").
    #[test]
    fn screen_lines_say_which_item_and_how_many_streams() {
        assert_eq!(
            parse_line("[download] Downloading item 3 of 120"),
            Line::Item {
                index: 3,
                total: Some(120)
            }
        );
        // --lazy-playlist does not know the count.
        assert_eq!(
            parse_line("[download] Downloading item 3 of N/A"),
            Line::Item {
                index: 3,
                total: None
            }
        );
        assert_eq!(
            parse_line("[info] dQw4w9WgXcQ: Downloading 1 format(s): 137+140"),
            Line::Formats {
                id: "dQw4w9WgXcQ".into(),
                streams: 2
            }
        );
        assert_eq!(
            parse_line("[info] dQw4w9WgXcQ: Downloading 1 format(s): 18"),
            Line::Formats {
                id: "dQw4w9WgXcQ".into(),
                streams: 1
            }
        );
        assert_eq!(
            parse_line("[youtube] dQw4w9WgXcQ: Downloading webpage"),
            Line::Working("dQw4w9WgXcQ".into())
        );
        assert_eq!(
            parse_line("[download] /dl/a [x].mp4 has already been downloaded"),
            Line::AlreadyDone
        );
    }

    /// yt-dlp/yt-dlp yt_dlp/utils/_utils.py `ExtractorError` ("[ie] id: msg") as printed by
    /// YoutubeDL.py `report_error` ("ERROR: ..."), and an error that names no video.
    #[test]
    fn error_lines_name_the_video_and_the_reason() {
        assert_eq!(
            parse_error_line(
                "ERROR: [youtube] abcdefghijk: Private video. Sign in if you've been granted access to this video"
            ),
            Some((
                Some("abcdefghijk".into()),
                "Private video. Sign in if you've been granted access to this video".into()
            ))
        );
        assert_eq!(
            parse_error_line("ERROR: unable to download video data: HTTP Error 403: Forbidden"),
            Some((
                None,
                "unable to download video data: HTTP Error 403: Forbidden".into()
            ))
        );
        assert_eq!(
            parse_error_line("ERROR: \r[download] Got error: HTTP Error 403: Forbidden"),
            Some((
                None,
                "[download] Got error: HTTP Error 403: Forbidden".into()
            ))
        );
        assert_eq!(parse_error_line("WARNING: [youtube] x: slow"), None);
        assert_eq!(parse_error_line("ERROR:   "), None);
        let long = format!("ERROR: [youtube] abc: {}", "x".repeat(1000));
        assert_eq!(
            parse_error_line(&long).unwrap().1.chars().count(),
            MAX_ITEM_REASON_CHARS
        );
        assert!(is_message("ERROR: boom"));
        assert!(!is_message("[download] 5%"));
        assert!(!is_message("MNDONE \"/a\""));
    }

    /// HLS/DASH progress (yt-dlp/yt-dlp yt_dlp/downloader/fragment.py `_start_frag_download`)
    /// has no `total_bytes`: the fragments tell how far it is.
    #[test]
    fn fragment_progress_reads_the_fragment_counts() {
        let Line::Progress(p) = parse_line(
            r#"MNPROG {"status":"downloading","downloaded_bytes":3000,"fragment_index":3,"fragment_count":12,"total_bytes_estimate":12000.5}"#,
        ) else {
            panic!()
        };
        assert_eq!(p.fraction(), Some(0.25));
        let Line::Progress(p) = parse_line(
            r#"MNPROG {"status":"downloading","downloaded_bytes":3000,"total_bytes_estimate":12000}"#,
        ) else {
            panic!()
        };
        assert_eq!(p.fraction(), Some(0.25));
    }

    #[test]
    fn metadata_of_a_playlist_and_a_video() {
        let json =
            br#"{"_type":"playlist","id":"PL1","title":"Lo-fi Study Mix","channel":"Some Channel",
            "thumbnails":[{"url":"https://i.ytimg.com/a.jpg"}],
            "entries":[{"id":"aaaaaaaaaaa","title":"One","duration":213},
                       {"id":"bbbbbbbbbbb","title":"[Private video]","duration":null},
                       {"id":"ccccccccccc","title":"Two","duration":null}]}"#;
        let m = parse_metadata(json, 50).unwrap();
        assert_eq!(m.kind, "playlist");
        assert_eq!(m.item_count, 2);
        assert_eq!(m.entries[1].title, "Two");
        assert_eq!(m.thumbnail.as_deref(), Some("https://i.ytimg.com/a.jpg"));
        let v = parse_metadata(
            br#"{"id":"dQw4w9WgXcQ","title":"A video","uploader":"Up","duration":12.5}"#,
            50,
        )
        .unwrap();
        assert_eq!((v.kind, v.item_count, v.duration), ("video", 1, Some(12.5)));
        assert_eq!(v.channel.as_deref(), Some("Up"));
        assert!(parse_metadata(b"[]", 50).is_none());
        assert!(parse_metadata(b"\xff\xfe", 50).is_none());
        assert_eq!(m.summary.as_deref(), Some("2 videos"));
        assert!(!m.partial);
        assert_eq!(v.summary, None);
        // The first 2 of a playlist YouTube says has 3200 (yt-dlp's `playlist_count`).
        let big = parse_metadata(
            br#"{"_type":"playlist","id":"PL2","title":"Big","playlist_count":3200,
            "entries":[{"id":"aaaaaaaaaaa","title":"One"},{"id":"bbbbbbbbbbb","title":"Two"}]}"#,
            2,
        )
        .unwrap();
        assert_eq!(
            (big.item_count, big.listed, big.total, big.partial),
            (3200, 2, Some(3200), true)
        );
        assert_eq!(big.summary.as_deref(), Some("first 2 of 3200 videos"));
        // No count from yt-dlp and a full preview: there may be more.
        let unknown = parse_metadata(
            br#"{"_type":"playlist","id":"PL3","title":"Chan",
            "entries":[{"id":"aaaaaaaaaaa","title":"One"},{"id":"bbbbbbbbbbb","title":"Two"}]}"#,
            2,
        )
        .unwrap();
        assert_eq!(
            unknown.summary.as_deref(),
            Some("first 2 videos (more not counted)")
        );
    }

    #[test]
    fn failure_reasons() {
        let tail = vec![
            "WARNING: something".to_owned(),
            "ERROR: [youtube] abc: Video unavailable. This video is private".to_owned(),
        ];
        assert_eq!(
            failure_reason(Exit::Code(1), &tail),
            "[youtube] abc: Video unavailable. This video is private"
        );
        assert_eq!(
            failure_reason(Exit::Code(2), &[]),
            "yt-dlp refused its options (exit code 2)"
        );
        assert_eq!(
            failure_reason(Exit::Code(7), &["boom".to_owned()]),
            "yt-dlp failed (exit code 7): boom"
        );
        let long = vec![format!("ERROR: {}", "x".repeat(2000))];
        assert_eq!(
            failure_reason(Exit::Code(1), &long).chars().count(),
            MAX_ERROR_CHARS
        );
    }
}
