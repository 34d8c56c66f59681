//! A simulated yt-dlp for the tests and `medianest demo`: the `medianest` binary itself, run
//! under the name [`PROGRAM_NAME`] (a symbolic link; see [`install`]) or as
//! `medianest sim-yt-dlp ARGS` (not listed in `--help`).
//!
//! It accepts the options MediaNest passes (unknown ones are a usage error, exit 2, as in
//! yt-dlp), prints `-J --flat-playlist` metadata, and for a download prints yt-dlp's usual chatter
//! plus progress lines through the given `--progress-template`, writes small real files (a
//! `.part` first, renamed when done, resumed when present) into `-P home:` with the `-o`
//! template, and prints the `--print after_move:` line for each.
//!
//! The video id steers it (ids are 11 characters; the prefix decides):
//! `fail…` fails midway with yt-dlp's `ERROR:` line and exit 1, `hang…` stops printing and
//! never ends, `slow…` downloads slowly, `junk…` mixes garbage, over-long and non-UTF-8 lines
//! into its output, `evil…` has a hostile title (`../../etc`, shell metacharacters), `long…` a
//! 400-character one, `escp…` ignores the template and writes outside the folder (as a broken
//! or hostile yt-dlp might), `nometa…` fails already on `-J`, `mhang…` never answers `-J` (as
//! yt-dlp stuck on a slow extractor does). `priv…`, `memb…`, `geob…` and `gone…` are private,
//! members-only, blocked and removed videos (yt-dlp's `ERROR:` line, then the next item),
//! `f403…` fails midway with an HTTP 403 (its `.part` stays), `hls…` reports HLS progress
//! (fragments, no `total_bytes`); every other video is a video and an audio stream, each with
//! its own 0-100 progress, merged. A playlist id `PLn<N>…` has N entries (`PLevil…` a hostile
//! title, `PLmix…` six with private, members-only, blocked and 403 items, `PLdead…` two
//! private ones, `PLcut…` three, cut short after the first with exit 101 as `--max-downloads`
//! does, `PLabrt…` three, killed by a signal after the first). `hang` and `slow` runs start a helper child (as yt-dlp
//! starts ffmpeg) so tests can check that a kill takes the whole process group.
//!
//! YouTube channels (`/@handle[/videos|shorts|streams]`, `/channel/UC…`, the uploads playlist
//! `list=UU…`) are [`channel`]'s: dated uploads with Shorts, live streams and a private item,
//! uploads added between listings (`sim-uploads/<key>`, [`add_upload`]) or one a minute
//! (`sim-clock/<key>`, [`start_clock`]), and refusals (`sim-refuse-bot`, `sim-refuse-429`,
//! [`refuse_listings`]). A `/shorts/ID` or `/live/ID` URL downloads like `watch?v=ID`.
//! Downloads also take `--write-info-json` (`<name>.info.json`, with the upload date of a listed
//! item), `--write-thumbnail` (`<name>.webp`), `--sponsorblock-mark CATS` /
//! `--sponsorblock-remove CATS` (recorded in `sim-state/sponsorblock.log`; the segments go into
//! the info JSON's `sponsorblock_chapters`, and marking adds its `chapters`), and
//! `--download-archive FILE` with `--break-on-existing` (`youtube <id>` lines; an archived item is
//! skipped, or ends the run with exit 101).
//!
//! When the program sits in a directory, that directory steers it too: `sim-step-ms` (a number)
//! is the pause between progress lines, `sim-umask` (octal) the umask it writes with, and it records each download run under `sim-state/`:
//! `running/<pid>` while it runs, `runs.log` with the number running at each start, and
//! `pids/<pid>` (its helper's pid) for liveness checks; `-J` runs the same way in
//! `running-meta/` and `meta-runs.log`.

mod channel;

pub use channel::{
    CLOCK_DIR, HOLD_LISTINGS, Kind as UploadKind, REFUSE_429, REFUSE_BOT, UPLOADS_DIR, add_upload,
    channel_id, channel_key, refuse_listings, start_clock,
};

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The file name the binary answers to as the simulated yt-dlp.
pub const PROGRAM_NAME: &str = "yt-dlp-sim";
/// The subcommand form: `medianest sim-yt-dlp ARGS`.
pub const SUBCOMMAND: &str = "sim-yt-dlp";
const HELPER_FLAG: &str = "--sim-helper";
/// A small real JPEG (browsers and Plex can show it), for thumbnails "converted" to jpg and a
/// channel's avatar and banner.
const SIM_JPEG: &[u8] = crate::sim::plex::COMPOSITE_JPEG;

/// Bytes per simulated file.
pub const FILE_BYTES: usize = 64 * 1024;
/// Progress lines per file.
const STEPS: usize = 8;
/// Most entries a simulated playlist has.
const MAX_ENTRIES: usize = 9999;
/// Default pause between progress lines.
const DEFAULT_STEP_MS: u64 = 15;

/// Makes `<dir>/yt-dlp-sim`, a symbolic link to `binary` (the `medianest` executable), and
/// returns its path: the value for `youtube.ytdlp_path`.
pub fn install(dir: &Path, binary: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let link = dir.join(PROGRAM_NAME);
    if link.symlink_metadata().is_ok() {
        std::fs::remove_file(&link)?;
    }
    std::os::unix::fs::symlink(binary, &link)?;
    Ok(link)
}

/// What `--version` prints: a release version as yt-dlp/yt-dlp `yt_dlp/version.py` writes it
/// (`YYYY.MM.DD`), dated today (UTC), so `medianest doctor` finds the demo's yt-dlp current on
/// whatever day it runs.
pub fn version() -> String {
    let today = time::OffsetDateTime::now_utc().date();
    format!(
        "{:04}.{:02}.{:02}",
        today.year(),
        u8::from(today.month()),
        today.day()
    )
}

/// Runs the simulator when the process was started as one; `None` otherwise (the caller goes on
/// as `medianest`).
pub fn run_if_invoked() -> Option<ExitCode> {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    if args.is_empty() {
        return None;
    }
    let arg0 = PathBuf::from(args.remove(0));
    let by_name = arg0.file_name().is_some_and(|n| n == PROGRAM_NAME);
    if !by_name {
        if args.first().is_none_or(|a| a != SUBCOMMAND) {
            return None;
        }
        args.remove(0);
    }
    if args.len() == 1 && args[0] == "--version" {
        println!("{}", version());
        return Some(ExitCode::SUCCESS);
    }
    if args.first().is_some_and(|a| a == HELPER_FLAG) {
        // The stand-in for ffmpeg: waits until it is killed.
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    let home = if by_name {
        arg0.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
    } else {
        None
    };
    let code = Sim::new(home).run(args);
    Some(ExitCode::from(code))
}

/// What the command line asked for.
#[derive(Debug, Default)]
struct Options {
    dump_json: bool,
    progress_template: Option<String>,
    print_after_move: Option<String>,
    output: Option<String>,
    home: Option<PathBuf>,
    merge_format: Option<String>,
    no_playlist: bool,
    /// `-I START:STOP` (1-based, inclusive), the only `--playlist-items` form MediaNest uses.
    items: Option<(usize, usize)>,
    cookies: Option<PathBuf>,
    no_quiet: bool,
    url: Option<String>,
    /// Every `--extractor-args` value (`youtubetab:approximate_date` dates flat entries).
    extractor_args: Vec<String>,
    write_info_json: bool,
    write_thumbnail: bool,
    /// `--sponsorblock-mark CATS` / `--sponsorblock-remove CATS` (comma-separated).
    sponsorblock_mark: Option<String>,
    sponsorblock_remove: Option<String>,
    no_sponsorblock: bool,
    download_archive: Option<PathBuf>,
    break_on_existing: bool,
    /// `--convert-thumbnails FORMAT`.
    convert_thumbnails: Option<String>,
    /// `--write-subs`, `--sub-langs`, `--embed-subs`, `--convert-subs FORMAT`.
    write_subs: bool,
    sub_langs: Vec<String>,
    embed_subs: bool,
    convert_subs: Option<String>,
    /// `--skip-download` and `--write-all-thumbnails`: a channel's avatar and banner.
    skip_download: bool,
    write_all_thumbnails: bool,
    /// `-o pl_thumbnail:TEMPLATE`.
    pl_thumbnail: Option<String>,
}

fn parse(args: Vec<OsString>) -> Result<Options, String> {
    let mut o = Options::default();
    let mut it = args.into_iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or(format!("{name} option requires an argument"))
        };
        match arg.as_str() {
            "--" => {
                o.url = it.next();
                break;
            }
            "-J" | "--dump-single-json" => o.dump_json = true,
            "--flat-playlist"
            | "--no-warnings"
            | "--ignore-config"
            | "--newline"
            | "--no-colors"
            | "--progress"
            | "--no-simulate"
            | "--windows-filenames"
            | "--yes-playlist"
            | "--restrict-filenames"
            | "--embed-metadata" => {}
            "--no-playlist" => o.no_playlist = true,
            "--no-quiet" => o.no_quiet = true,
            "--progress-template" => {
                let v = value(&arg)?;
                if let Some(t) = v.strip_prefix("download:") {
                    o.progress_template = Some(t.to_owned());
                }
            }
            "--print" | "-O" => {
                let v = value(&arg)?;
                if let Some(t) = v.strip_prefix("after_move:") {
                    o.print_after_move = Some(t.to_owned());
                }
            }
            "-f" | "--format" | "-S" | "--format-sort" => {
                value(&arg)?;
            }
            "--merge-output-format" => o.merge_format = Some(value(&arg)?),
            "--cookies" => o.cookies = Some(PathBuf::from(value(&arg)?)),
            // yt-dlp/yt-dlp yt_dlp/options.py: `--js-runtimes RUNTIME[:PATH]`,
            // `--remote-components COMPONENT` (each takes a value) and `--no-js-runtimes`.
            "--js-runtimes" | "--remote-components" => {
                value(&arg)?;
            }
            "--no-js-runtimes" => {}
            "--extractor-args" => o.extractor_args.push(value(&arg)?),
            "--write-info-json" => o.write_info_json = true,
            "--write-thumbnail" => o.write_thumbnail = true,
            "--embed-chapters" | "--no-embed-chapters" | "--embed-thumbnail" => {}
            "--convert-thumbnails" => o.convert_thumbnails = Some(value(&arg)?),
            "--sponsorblock-chapter-title" => {
                value(&arg)?;
            }
            "--write-subs" => o.write_subs = true,
            "--sub-langs" => {
                o.sub_langs = value(&arg)?
                    .split(',')
                    .map(str::to_owned)
                    .filter(|l| !l.is_empty())
                    .collect();
            }
            "--embed-subs" => o.embed_subs = true,
            "--convert-subs" => o.convert_subs = Some(value(&arg)?),
            "--skip-download" => o.skip_download = true,
            "--write-all-thumbnails" => o.write_all_thumbnails = true,
            // yt-dlp/yt-dlp yt_dlp/__init__.py: `--no-sponsorblock` empties both sets.
            "--sponsorblock-mark" => o.sponsorblock_mark = Some(value(&arg)?),
            "--sponsorblock-remove" => o.sponsorblock_remove = Some(value(&arg)?),
            "--no-sponsorblock" => o.no_sponsorblock = true,
            "--download-archive" => o.download_archive = Some(PathBuf::from(value(&arg)?)),
            "--break-on-existing" => o.break_on_existing = true,
            "-I" | "--playlist-items" => {
                let v = value(&arg)?;
                o.items = Some(parse_items(&v).ok_or(format!("invalid playlist items: {v}"))?);
            }
            "-o" | "--output" => {
                // yt-dlp/yt-dlp yt_dlp/options.py `-o [TYPES:]TEMPLATE` (`OUTTMPL_TYPES` in
                // utils/_utils.py): a typed template sets that type's name only.
                let v = value(&arg)?;
                if let Some(t) = v.strip_prefix("pl_thumbnail:") {
                    o.pl_thumbnail = Some(t.to_owned());
                } else if v.starts_with("thumbnail:") {
                    // Same name as the video: what the default already gives.
                } else {
                    o.output = Some(v);
                }
            }
            "-P" | "--paths" => {
                let v = value(&arg)?;
                if let Some(h) = v.strip_prefix("home:") {
                    o.home = Some(PathBuf::from(h));
                }
            }
            other if other.starts_with('-') => return Err(format!("no such option: {other}")),
            other => o.url = Some(other.to_owned()),
        }
    }
    Ok(o)
}

/// `START:STOP`, `START-STOP` or `N` (yt-dlp/yt-dlp yt_dlp/utils/_utils.py
/// `PlaylistEntries.parse_playlist_items`; 1-based, STOP inclusive, either side may be empty).
fn parse_items(spec: &str) -> Option<(usize, usize)> {
    let (a, b) = spec
        .split_once(':')
        .or_else(|| spec.split_once('-'))
        .unwrap_or((spec, spec));
    let start = if a.is_empty() { 1 } else { a.parse().ok()? };
    let stop = if b.is_empty() {
        usize::MAX
    } else {
        b.parse().ok()?
    };
    (start >= 1 && stop >= start).then_some((start, stop))
}

/// The entries `-I` asks for; yt-dlp skips the rest.
fn requested(entries: Vec<Video>, items: Option<(usize, usize)>) -> Vec<Video> {
    match items {
        Some((start, stop)) => entries
            .into_iter()
            .enumerate()
            .filter(|(i, _)| (start..=stop).contains(&(i + 1)))
            .map(|(_, v)| v)
            .collect(),
        None => entries,
    }
}

/// Entries YouTube sends per page of a playlist (yt-dlp/yt-dlp
/// yt_dlp/extractor/youtube/_tab.py follows one continuation per page).
const PAGE_ENTRIES: usize = 100;

/// One simulated video.
#[derive(Debug, Clone)]
struct Video {
    id: String,
    title: String,
}

fn video_title(id: &str) -> String {
    if id.starts_with("evil") {
        "../../etc/passwd $(reboot) `id`; rm -rf ~ | cat & <x> \"q\" *?:\\".to_owned()
    } else if id.starts_with("long") {
        "Very long title ".repeat(25)
    } else {
        format!("Sim video {id}")
    }
}

/// The id from a canonical-ish URL: `v=` or `list=`.
fn ids(url: &str) -> (Option<String>, Option<String>) {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let mut v = None;
    let mut list = None;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("v", x)) => v = Some(x.to_owned()),
            Some(("list", x)) => list = Some(x.to_owned()),
            _ => {}
        }
    }
    // `/shorts/ID` and `/live/ID` (yt-dlp/yt-dlp yt_dlp/extractor/youtube/_video.py `_VALID_URL`):
    // how a listed Short's `url` reads.
    for marker in ["/shorts/", "/live/"] {
        if v.is_none()
            && let Some((_, rest)) = url.split_once(marker)
        {
            v = rest
                .split(['?', '/', '#'])
                .next()
                .filter(|id| !id.is_empty())
                .map(str::to_owned);
        }
    }
    if v.is_none() && url.contains("youtu.be/") {
        v = url
            .rsplit('/')
            .next()
            .map(|s| s.split('?').next().unwrap_or(s).to_owned());
    }
    (v, list)
}

fn playlist_entries(list: &str) -> Vec<Video> {
    let n = list
        .strip_prefix("PLn")
        .map(|rest| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|d| d.parse::<usize>().ok())
        .unwrap_or(match list {
            l if l.starts_with("PLmix") => 6,
            l if l.starts_with("PLdead") => 2,
            _ => 3,
        })
        .min(MAX_ENTRIES);
    let stem: String = list
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(7)
        .collect();
    let short: String = stem.chars().skip(2).take(3).collect();
    (1..=n)
        .map(|i| {
            // `PLmix…`: items 2, 4 and 5 are private, members-only and blocked, item 6 fails
            // midway with an HTTP 403; `PLdead…`: every item is private.
            let bad = match (list, i) {
                (l, _) if l.starts_with("PLdead") => Some("priv"),
                (l, 2) if l.starts_with("PLmix") => Some("priv"),
                (l, 4) if l.starts_with("PLmix") => Some("memb"),
                (l, 5) if l.starts_with("PLmix") => Some("geob"),
                (l, 6) if l.starts_with("PLmix") => Some("f403"),
                _ => None,
            };
            match bad {
                Some(kind) => Video {
                    id: format!("{kind}{short:x<3}{i:04}"),
                    // yt-dlp/yt-dlp yt_dlp/extractor/youtube/_tab.py: a flat playlist keeps
                    // private entries under YouTube's placeholder title.
                    title: if kind == "priv" {
                        "[Private video]".to_owned()
                    } else {
                        format!("Track {i} of {list}")
                    },
                },
                None => Video {
                    id: format!("{stem:x<7}{i:04}"),
                    title: format!("Track {i} of {list}"),
                },
            }
        })
        .collect()
}

fn playlist_title(list: &str) -> String {
    if list.starts_with("PLevil") {
        "../../etc".to_owned()
    } else {
        format!("Sim Playlist {list}")
    }
}

/// yt-dlp's filename sanitizing, roughly: separators and Windows-reserved characters replaced.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '/' => '⧸',
            '\\' => '⧹',
            ':' => '：',
            '*' => '＊',
            '?' => '？',
            '"' => '＂',
            '<' => '＜',
            '>' => '＞',
            '|' => '｜',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

fn cut_bytes(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Fills the fields MediaNest's `-o` uses: `%(title).NB`, `%(title)s`, `%(id)s`, `%(ext)s`.
fn fill_template(template: &str, video: &Video, ext: &str) -> String {
    let title = sanitize(&video.title);
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("%(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(close) = after.find(')') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let field = &after[..close];
        let spec_end = after[close + 1..]
            .find(|c: char| c.is_ascii_alphabetic())
            .map_or(after.len(), |i| close + 1 + i + 1);
        let spec = &after[close + 1..spec_end];
        let value = match field {
            "title" => title.clone(),
            "id" => video.id.clone(),
            "ext" => ext.to_owned(),
            _ => "NA".to_owned(),
        };
        let value = match spec.strip_prefix('.').and_then(|s| s.strip_suffix('B')) {
            Some(n) => cut_bytes(&value, n.parse().unwrap_or(usize::MAX)).to_owned(),
            None => value,
        };
        out.push_str(&value);
        rest = &after[spec_end..];
    }
    out.push_str(rest);
    out
}

/// Why a stream stopped early.
enum Stop {
    /// This item failed; yt-dlp goes on with the next one.
    Item,
    /// yt-dlp gives up with this exit code.
    Exit(u8),
    /// The parent is gone (stdout closed).
    Gone(u8),
}

/// The fields a progress line carries.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// A plain HTTP download: `total_bytes` known.
    Bytes { total: usize },
    /// HLS/DASH: fragments done and in all.
    Fragments { index: usize, count: usize },
}

/// A stream's own file before the merge: yt-dlp/yt-dlp yt_dlp/YoutubeDL.py `process_info`
/// (`prepend_extension(..., 'f<format_id>')`): `Title [id].f137.mp4`.
fn stream_path(path: &Path, format_id: &str) -> PathBuf {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_extension(format!("f{format_id}.{ext}"))
}

/// Why an entry cannot be downloaded, by the first letters of its id: the messages yt-dlp's
/// YouTube extractor raises (yt-dlp/yt-dlp yt_dlp/extractor/youtube/_video.py, the
/// `playabilityStatus` reason and subreason, plus `_youtube_login_hint` from
/// extractor/youtube/_base.py when the reason asks to sign in; 2026.10.26).
fn unavailable_reason(id: &str) -> Option<String> {
    const COOKIES: &str = "Use --cookies-from-browser or --cookies for the authentication. \
         See  https://github.com/yt-dlp/yt-dlp/wiki/FAQ#how-do-i-pass-cookies-to-yt-dlp  for how \
         to manually pass cookies. Also see  \
         https://github.com/yt-dlp/yt-dlp/wiki/Extractors#exporting-youtube-cookies  for tips \
         on effectively exporting YouTube cookies";
    if id.starts_with("priv") {
        Some(format!(
            "Private video. Sign in if you've been granted access to this video. {COOKIES}"
        ))
    } else if id.starts_with("memb") {
        Some(
            "Join this channel to get access to members-only content like this video, and \
             other exclusive perks."
                .to_owned(),
        )
    } else if id.starts_with("geob") {
        Some("The uploader has not made this video available in your country".to_owned())
    } else if id.starts_with("gone") {
        Some("Video unavailable. This video has been removed by the uploader".to_owned())
    } else {
        None
    }
}

struct Sim {
    dir: Option<PathBuf>,
    step: Duration,
    out: std::io::Stdout,
    /// yt-dlp/yt-dlp yt_dlp/__init__.py: `--print` implies `--quiet` unless `--no-quiet` is
    /// given; quiet, the `[...]` screen lines are not printed (progress, with `--progress`,
    /// and the prints still are).
    quiet: bool,
}

/// Exit code of a broken pipe (the parent is gone): stop quietly.
const GONE: u8 = 1;

impl Sim {
    fn new(dir: Option<PathBuf>) -> Self {
        let step_ms = dir
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.join("sim-step-ms")).ok())
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(DEFAULT_STEP_MS);
        // `sim-umask` (octal): the umask a real yt-dlp inherits, e.g. 0077 under systemd's
        // `UMask=`, so its files are not readable by another user.
        if let Some(mask) = dir
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.join("sim-umask")).ok())
            .and_then(|t| u32::from_str_radix(t.trim(), 8).ok())
        {
            rustix::process::umask(rustix::fs::Mode::from_bits_truncate(mask));
        }
        Self {
            dir,
            step: Duration::from_millis(step_ms),
            out: std::io::stdout(),
            quiet: false,
        }
    }

    fn say(&mut self, line: &str) -> Result<(), u8> {
        let mut out = self.out.lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|_| GONE)
    }

    /// A screen line (`to_screen`), which quiet mode leaves out.
    fn screen(&mut self, line: &str) -> Result<(), u8> {
        if self.quiet {
            return Ok(());
        }
        self.say(line)
    }

    fn say_bytes(&mut self, bytes: &[u8]) -> Result<(), u8> {
        let mut out = self.out.lock();
        out.write_all(bytes)
            .and_then(|()| out.flush())
            .map_err(|_| GONE)
    }

    fn run(mut self, args: Vec<OsString>) -> u8 {
        self.log_args(&args);
        let options = match parse(args) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("Usage: yt-dlp [OPTIONS] URL [URL...]\n\nyt-dlp: error: {e}");
                return 2;
            }
        };
        let Some(url) = options.url.clone() else {
            eprintln!(
                "Usage: yt-dlp [OPTIONS] URL [URL...]\n\nyt-dlp: error: You must provide at least one URL."
            );
            return 2;
        };
        if let Some(cookies) = &options.cookies {
            // yt-dlp/yt-dlp yt_dlp/cookies.py `YoutubeDLCookieJar.load` (a MozillaCookieJar):
            // a file that is not in the Netscape format is refused before anything runs.
            let first = std::fs::read_to_string(cookies)
                .ok()
                .and_then(|t| t.lines().next().map(str::to_owned))
                .unwrap_or_default();
            if !first.contains("HTTP Cookie File") {
                eprintln!(
                    "ERROR: '{}' does not look like a Netscape format cookies file",
                    cookies.display()
                );
                return 1;
            }
            // yt-dlp writes its jar back to the file (yt_dlp/YoutubeDL.py `close` ->
            // `save_cookies`; yt_dlp/cookies.py `YoutubeDLCookieJar.save` opens it with 'w'
            // and starts with its own header); done here at once rather than at exit.
            let kept: String = std::fs::read_to_string(cookies)
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                .map(|l| format!("{l}\n"))
                .collect();
            if let Err(e) = std::fs::write(
                cookies,
                format!(
                    "# Netscape HTTP Cookie File\n# This file is generated by yt-dlp.  Do not edit.\n\n{kept}"
                ),
            ) {
                eprintln!("PermissionError: {e}");
                return 1;
            }
        }
        self.quiet = options.print_after_move.is_some() && !options.no_quiet;
        let (video, list) = ids(&url);
        if let Some(target) = channel::target(&url, list.as_deref()) {
            return self.channel(&options, &target, &url);
        }
        let playlist = list
            .clone()
            .filter(|_| !(options.no_playlist && video.is_some()));
        if options.dump_json {
            let _record = Record::start(self.dir.as_deref(), Run::Metadata);
            return self.metadata(video.as_deref(), playlist.as_deref(), options.items);
        }
        let videos = match (&playlist, &video) {
            (Some(list), _) => requested(playlist_entries(list), options.items),
            (None, Some(id)) => vec![Video {
                id: id.clone(),
                title: channel::listed(self.dir.as_deref(), id)
                    .map_or_else(|| video_title(id), |u| u.title),
            }],
            (None, None) => {
                eprintln!("ERROR: Unsupported URL: {url}");
                return 1;
            }
        };
        let _record = Record::start(self.dir.as_deref(), Run::Download);
        match self.download(&options, &videos) {
            Ok(code) | Err(code) => code,
        }
    }

    /// A channel tab or uploads playlist (see [`channel`]): `-J` lists it, otherwise its
    /// (requested) entries are downloaded like a playlist's. Either way the channel page is
    /// fetched first, so a refusal control applies to both.
    fn channel(&mut self, o: &Options, target: &channel::Target, url: &str) -> u8 {
        let _record = Record::start(
            self.dir.as_deref(),
            if o.dump_json {
                Run::Metadata
            } else {
                Run::Download
            },
        );
        std::thread::sleep(self.step);
        if target.key.starts_with("lhang") {
            // A channel page that never comes (as `mhang…` for a video).
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        channel::hold(self.dir.as_deref());
        if let Some(reason) = channel::take_refusal(self.dir.as_deref(), &target.shown) {
            eprintln!("ERROR: {reason}");
            return 1;
        }
        // yt-dlp/yt-dlp yt_dlp/extractor/youtube/_tab.py: `approximate_date` of `youtubetab`.
        let dated = o
            .extractor_args
            .iter()
            .any(|a| a.starts_with("youtubetab:") && a.contains("approximate_date"));
        let (doc, last) = match channel::document(self.dir.as_deref(), target, url, o.items, dated)
        {
            Ok(done) => done,
            Err(reason) => {
                eprintln!("ERROR: {reason}");
                return 1;
            }
        };
        for _ in 1..channel::pages(last) {
            std::thread::sleep(self.step);
        }
        if o.dump_json {
            return match self.say(&doc.to_string()) {
                Ok(()) => 0,
                Err(code) => code,
            };
        }
        if o.skip_download && o.write_all_thumbnails {
            // yt-dlp/yt-dlp yt_dlp/YoutubeDL.py `__process_playlist` writes the playlist's
            // thumbnails (`_write_thumbnails('playlist', ...)` with the `pl_thumbnail`
            // template, never converted); with `--write-all-thumbnails` and several of them
            // each is `<name>.<thumbnail id>.<ext>` (`replace_extension`), the extension
            // `jpg` when the URL has none (utils `determine_ext`).
            let home = o.home.clone().unwrap_or_else(|| PathBuf::from("."));
            let base = o
                .pl_thumbnail
                .clone()
                .unwrap_or_else(|| doc["title"].as_str().unwrap_or("NA").to_owned());
            for t in doc["thumbnails"].as_array().into_iter().flatten() {
                let Some(id) = t["id"].as_str() else { continue };
                let file = home.join(format!("{base}.{id}.jpg"));
                if self
                    .screen(&format!(
                        "[info] Writing playlist thumbnail {id} to: {}",
                        file.display()
                    ))
                    .is_err()
                {
                    return 1;
                }
                let _ = std::fs::write(&file, SIM_JPEG);
            }
            return 0;
        }
        let videos: Vec<Video> = doc["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["ie_key"] == "Youtube")
            .filter_map(|e| {
                Some(Video {
                    id: e["id"].as_str()?.to_owned(),
                    title: e["title"].as_str()?.to_owned(),
                })
            })
            .collect();
        match self.download(o, &videos) {
            Ok(code) | Err(code) => code,
        }
    }

    /// Appends the command line to `sim-state/args.log` (one JSON list a line), for tests.
    fn log_args(&self, args: &[OsString]) {
        let Some(dir) = &self.dir else { return };
        let state = dir.join("sim-state");
        let _ = std::fs::create_dir_all(&state);
        let list: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        if let Ok(mut log) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(state.join("args.log"))
        {
            let _ = log.write_all(format!("{}\n", serde_json::json!(list)).as_bytes());
        }
    }

    fn metadata(
        &mut self,
        video: Option<&str>,
        playlist: Option<&str>,
        items: Option<(usize, usize)>,
    ) -> u8 {
        std::thread::sleep(self.step);
        let doc = match (playlist, video) {
            (Some(list), _) => {
                let all = playlist_entries(list);
                let count = all.len();
                // yt-dlp/yt-dlp yt_dlp/YoutubeDL.py `__process_playlist`: the requested slice is
                // taken lazily, so only the pages up to its last item are fetched (one pause per
                // page here); `playlist_count` is YouTube's own count from the playlist header
                // (extractor/youtube/_tab.py), whatever was listed.
                let last = items.map_or(count, |(_, stop)| stop.min(count));
                for _ in 0..last.div_ceil(PAGE_ENTRIES).saturating_sub(1) {
                    std::thread::sleep(self.step);
                }
                let entries: Vec<serde_json::Value> = requested(all, items)
                    .iter()
                    .map(|v| {
                        serde_json::json!({"_type": "url", "ie_key": "Youtube", "id": v.id,
                            "url": format!("https://www.youtube.com/watch?v={}", v.id),
                            "title": v.title, "duration": 60, "channel": "Sim Channel",
                            "thumbnails": [{"url": format!("https://i.ytimg.com/vi/{}/hqdefault.jpg", v.id)}]})
                    })
                    .collect();
                serde_json::json!({"_type": "playlist", "id": list, "title": playlist_title(list),
                    "channel": "Sim Channel", "uploader": "Sim Channel",
                    "playlist_count": count, "entries": entries,
                    "thumbnails": [{"url": "https://i.ytimg.com/pl.jpg"}]})
            }
            (None, Some(id)) if id.starts_with("mhang") => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
            (None, Some(id)) if id.starts_with("nometa") => {
                eprintln!("ERROR: [youtube] {id}: Video unavailable. This video is private");
                return 1;
            }
            (None, Some(id)) => {
                // A video of a simulated channel keeps the title and day it was listed with
                // (yt-dlp/yt-dlp yt_dlp/extractor/youtube/_video.py: a video's `upload_date` is
                // `YYYYMMDD` and its `description` the full text); others get a fixed day.
                let listed = channel::listed(self.dir.as_deref(), id);
                let upload_date = listed
                    .as_ref()
                    .and_then(|u| time::OffsetDateTime::from_unix_timestamp(u.timestamp).ok())
                    .map_or_else(
                        || "20260115".to_owned(),
                        |t| {
                            let d = t.date();
                            format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day())
                        },
                    );
                let title = listed.map_or_else(|| video_title(id), |u| u.title);
                serde_json::json!({"_type": "video", "id": id,
                "title": title, "channel": "Sim Channel", "uploader": "Sim Channel",
                "upload_date": upload_date,
                "description": format!("The description of {id}.\nSecond line."),
                "duration": 60, "thumbnail": format!("https://i.ytimg.com/vi/{id}/hqdefault.jpg")})
            }
            (None, None) => {
                eprintln!("ERROR: Unsupported URL");
                return 1;
            }
        };
        match self.say(&doc.to_string()) {
            Ok(()) => 0,
            Err(code) => code,
        }
    }

    fn download(&mut self, o: &Options, videos: &[Video]) -> Result<u8, u8> {
        // yt-dlp/yt-dlp yt_dlp/utils/_utils.py `get_compatible_ext`: the first of the "/"
        // list the streams fit (the simulated streams fit every container).
        let ext = o
            .merge_format
            .as_deref()
            .and_then(|m| m.split('/').next())
            .filter(|m| !m.is_empty())
            .unwrap_or("mp4")
            .to_owned();
        let home = o.home.clone().unwrap_or_else(|| PathBuf::from("."));
        let template = o
            .output
            .clone()
            .unwrap_or_else(|| "%(title)s [%(id)s].%(ext)s".into());
        let mut helper = None;
        let n = videos.len();
        let mut failed_any = false;
        for (i, video) in videos.iter().enumerate() {
            // yt-dlp/yt-dlp yt_dlp/YoutubeDL.py `__process_playlist`: the item line, then the
            // entry's extraction (`extractor/common.py` `extract`: "Extracting URL").
            if n > 1 {
                self.screen(&format!("[download] Downloading item {} of {n}", i + 1))?;
            }
            if archived(o, &video.id) {
                // yt-dlp/yt-dlp yt_dlp/YoutubeDL.py `_match_entry`: an id in the archive is
                // skipped before extraction; with `--break-on-existing` it raises
                // `ExistingVideoReached` (utils/_utils.py), which `_real_main` ends with 101.
                self.screen(&format!(
                    "[download] {}: {} has already been recorded in the archive",
                    video.id, video.title
                ))?;
                if o.break_on_existing {
                    stop_helper(helper.take());
                    self.screen("[info] Encountered a video that is already in the archive, stopping due to --break-on-existing")?;
                    self.screen("Aborting remaining downloads")?;
                    return Ok(101);
                }
                continue;
            }
            self.screen(&format!(
                "[youtube] Extracting URL: https://www.youtube.com/watch?v={}",
                video.id
            ))?;
            self.screen(&format!("[youtube] {}: Downloading webpage", video.id))?;
            if let Some(reason) = unavailable_reason(&video.id) {
                // yt-dlp/yt-dlp yt_dlp/YoutubeDL.py `trouble`: with errors ignored (the default
                // `only_download` for playlists) the `ERROR:` line goes to stderr, the exit code
                // becomes 1 and the next entry follows (`__process_playlist`); the message is
                // `ExtractorError`'s `[youtube] <id>: <reason>` (utils/_utils.py).
                eprintln!("ERROR: [youtube] {}: {reason}", video.id);
                failed_any = true;
                continue;
            }
            let hls = video.id.starts_with("hls");
            // yt-dlp/yt-dlp yt_dlp/YoutubeDL.py `process_video_result`: "[info] <id>:
            // Downloading 1 format(s): 137+140" -- a video and an audio stream, downloaded one
            // after the other, each with its own 0-100 progress, then merged. HLS formats are
            // one stream (here "96").
            let streams: Vec<(&str, usize)> = if hls {
                vec![("96", FILE_BYTES)]
            } else {
                vec![("137", FILE_BYTES / 4 * 3), ("140", FILE_BYTES / 4)]
            };
            let ids: Vec<&str> = streams.iter().map(|s| s.0).collect();
            self.screen(&format!(
                "[info] {}: Downloading 1 format(s): {}",
                video.id,
                ids.join("+")
            ))?;
            let slow = video.id.starts_with("slow") || video.id.starts_with("hang");
            if slow && helper.is_none() {
                helper = self.start_helper();
            }
            let path = if video.id.starts_with("escp") {
                home.join("..")
                    .join("..")
                    .join(format!("escaped [{}].{ext}", video.id))
            } else {
                home.join(fill_template(&template, video, &ext))
            };
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let sponsor = self.sponsorblock(o, video)?;
            if o.write_info_json {
                self.info_json(video, &path, sponsor.as_ref())?;
            }
            if o.write_thumbnail {
                // YoutubeDL.py `_write_thumbnails`: the thumbnail beside the video, named like
                // it (webp as YouTube serves it; `--convert-thumbnails` converts it afterwards).
                let thumb = path.with_extension("webp");
                self.screen(&format!(
                    "[info] Writing video thumbnail 41 to: {}",
                    thumb.display()
                ))?;
                let _ = std::fs::write(&thumb, b"RIFF\0\0\0\0WEBPVP8 sim thumbnail");
                if o.convert_thumbnails.as_deref() == Some("jpg") {
                    // postprocessor/ffmpeg.py `FFmpegThumbnailsConvertorPP.run`: converted,
                    // the original deleted.
                    let jpg = path.with_extension("jpg");
                    self.screen(&format!(
                        "[ThumbnailsConvertor] Converting thumbnail \"{}\" to jpg",
                        thumb.display()
                    ))?;
                    let _ = std::fs::write(&jpg, SIM_JPEG);
                    let _ = std::fs::remove_file(&thumb);
                }
            }
            if o.write_subs {
                self.subtitles(o, video, &path)?;
            }
            if path.is_file() {
                // yt-dlp/yt-dlp yt_dlp/YoutubeDL.py `process_info` -> `existing_video_file` ->
                // `report_file_already_downloaded`: the line, no progress hook, then the
                // post-processors (and so the `after_move` print).
                self.screen(&format!(
                    "[download] {} has already been downloaded",
                    path.display()
                ))?;
                self.after_move(o, &path)?;
                record_archive(o, &video.id);
                continue;
            }
            let mut parts = Vec::new();
            for (n, (format_id, size)) in streams.iter().enumerate() {
                let target = if streams.len() > 1 {
                    stream_path(&path, format_id)
                } else {
                    path.clone()
                };
                self.screen(&format!("[download] Destination: {}", target.display()))?;
                match self.stream(o, video, &target, *size, hls, n == 0) {
                    Ok(()) => {}
                    Err(Stop::Item) => break,
                    Err(Stop::Exit(code)) => {
                        stop_helper(helper.take());
                        return Ok(code);
                    }
                    Err(Stop::Gone(code)) => return Err(code),
                }
                parts.push(target);
            }
            if parts.len() < streams.len() {
                failed_any = true;
                continue;
            }
            if streams.len() > 1 {
                self.screen(&format!(
                    "[Merger] Merging formats into \"{}\"",
                    path.display()
                ))?;
                let mut merged = Vec::with_capacity(FILE_BYTES);
                for part in &parts {
                    merged.extend(std::fs::read(part).unwrap_or_default());
                }
                std::fs::write(&path, merged).map_err(|e| {
                    eprintln!("ERROR: Postprocessing: {e}");
                    1u8
                })?;
                for part in &parts {
                    let _ = std::fs::remove_file(part);
                }
            }
            self.after_move(o, &path)?;
            record_archive(o, &video.id);
            if video.id.starts_with("PLcut") && i + 1 < n {
                // yt-dlp/yt-dlp yt_dlp/__init__.py `_real_main`: a run cut short by
                // `--max-downloads` or `--break-on-existing` (utils/_utils.py
                // `DownloadCancelled`) says so and exits 101.
                stop_helper(helper.take());
                self.screen("[info] Maximum number of downloads reached, aborting")?;
                self.screen("Aborting remaining downloads")?;
                return Ok(101);
            }
            if video.id.starts_with("PLabrt") && i + 1 < n {
                // Killed from outside after its first file (the OOM killer, a container stop).
                stop_helper(helper.take());
                let _ = std::io::stdout().flush();
                rustix::process::kill_process(
                    rustix::process::getpid(),
                    rustix::process::Signal::KILL,
                )
                .ok();
            }
        }
        stop_helper(helper);
        // yt-dlp/yt-dlp yt_dlp/YoutubeDL.py `trouble` set `_download_retcode = 1`.
        Ok(u8::from(failed_any))
    }

    /// Downloads one stream of `size` bytes into `target` (a `.part` first, resumed when
    /// present), printing progress through the template; `first` is the item's first stream,
    /// where the `fail…` and `hang…` ids misbehave.
    fn stream(
        &mut self,
        o: &Options,
        video: &Video,
        target: &Path,
        size: usize,
        hls: bool,
        first: bool,
    ) -> Result<(), Stop> {
        let part = PathBuf::from(format!("{}.part", target.display()));
        let mut have = std::fs::metadata(&part)
            .map(|m| m.len() as usize)
            .unwrap_or(0)
            .min(size);
        if have > 0 {
            self.screen(&format!("[download] Resuming download at byte {have}"))
                .map_err(Stop::Gone)?;
        }
        let chunk = FILE_BYTES / STEPS;
        let step = if video.id.starts_with("slow") {
            self.step * 20
        } else {
            self.step
        };
        let fragments = size.div_ceil(chunk);
        while have < size {
            if first && video.id.starts_with("hang") && have >= chunk * 2 {
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
            if first && video.id.starts_with("fail") && have >= chunk * 3 {
                eprintln!(
                    "ERROR: [youtube] {}: Video unavailable. This video has been removed by the uploader",
                    video.id
                );
                return Err(Stop::Exit(1));
            }
            if first && video.id.starts_with("f403") && have >= chunk * 2 {
                // yt-dlp/yt-dlp yt_dlp/YoutubeDL.py `process_info`: a network error while
                // downloading is `report_error('unable to download video data: ...')`, which
                // names no video; the `.part` stays and the next entry follows.
                eprintln!("ERROR: unable to download video data: HTTP Error 403: Forbidden");
                return Err(Stop::Item);
            }
            std::thread::sleep(step);
            let add = chunk.min(size - have);
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&part)
                .map_err(|e| {
                    eprintln!("ERROR: unable to open for writing: {e}");
                    Stop::Exit(1)
                })?;
            let _ = f.write_all(&vec![b'x'; add]);
            have += add;
            if video.id.starts_with("junk") {
                self.say_bytes(b"\xff\xfe\xfd not utf-8 \x00 at all\n")
                    .map_err(Stop::Gone)?;
                self.say_bytes(&vec![b'z'; 200_000]).map_err(Stop::Gone)?;
                self.say_bytes(b"\n").map_err(Stop::Gone)?;
                self.say("MNPROG {\"status\": \"downloading\", \"downloaded_bytes\": \"lots\"")
                    .map_err(Stop::Gone)?;
                self.say("MNDONE not-json").map_err(Stop::Gone)?;
            }
            let shape = if hls {
                Shape::Fragments {
                    index: have / chunk,
                    count: fragments,
                }
            } else {
                Shape::Bytes { total: size }
            };
            self.progress(o, "downloading", have, target, &part, shape)
                .map_err(Stop::Gone)?;
        }
        self.progress(
            o,
            "finished",
            have,
            target,
            &part,
            Shape::Bytes { total: have },
        )
        .map_err(Stop::Gone)?;
        std::fs::rename(&part, target).map_err(|e| {
            eprintln!("ERROR: Unable to rename file: {e}");
            Stop::Exit(1)
        })?;
        Ok(())
    }

    /// SponsorBlock for one video when `--sponsorblock-mark` or `--sponsorblock-remove` asked:
    /// the segments of the asked categories (every simulated video has a `sponsor` segment at
    /// 10-20 s and a `selfpromo` one at 40-45 s), as yt-dlp/yt-dlp
    /// yt_dlp/postprocessor/sponsorblock.py `_get_sponsor_chapters` returns them, its screen
    /// lines, and a line in `sim-state/sponsorblock.log` (`{"id", "mark", "remove"}`) so tests
    /// see what was passed. `None` when SponsorBlock was not asked for (`--no-sponsorblock`
    /// empties both, yt_dlp/__init__.py).
    fn sponsorblock(
        &mut self,
        o: &Options,
        video: &Video,
    ) -> Result<Option<serde_json::Value>, u8> {
        if o.no_sponsorblock || (o.sponsorblock_mark.is_none() && o.sponsorblock_remove.is_none()) {
            return Ok(None);
        }
        let cats = |v: &Option<String>| -> Vec<String> {
            v.as_deref()
                .map(|c| {
                    c.split(',')
                        .map(|c| c.trim().to_owned())
                        .filter(|c| !c.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let (mark, remove) = (cats(&o.sponsorblock_mark), cats(&o.sponsorblock_remove));
        if let Some(dir) = &self.dir {
            let state = dir.join("sim-state");
            let _ = std::fs::create_dir_all(&state);
            if let Ok(mut log) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(state.join("sponsorblock.log"))
            {
                let line = serde_json::json!({"id": video.id, "mark": mark, "remove": remove});
                let _ = log.write_all(format!("{line}\n").as_bytes());
            }
        }
        // options.py: `all` and `default` stand for every category (`-cat` removes one).
        let asked = |cat: &str| {
            let all = mark.iter().chain(&remove);
            let excluded = mark
                .iter()
                .chain(&remove)
                .any(|c| c.strip_prefix('-') == Some(cat));
            !excluded
                && all
                    .clone()
                    .any(|c| c == cat || c == "all" || c == "default")
        };
        let chapters: Vec<serde_json::Value> = [
            (10.0, 20.0, "sponsor", "Sponsor"),
            (40.0, 45.0, "selfpromo", "Unpaid/Self Promotion"),
        ]
        .into_iter()
        .filter(|(_, _, cat, _)| asked(cat))
        .map(|(start, end, cat, title)| {
            serde_json::json!({"start_time": start, "end_time": end, "category": cat,
                    "title": title, "type": "skip", "_categories": [[cat, start, end, title]]})
        })
        .collect();
        self.screen("[SponsorBlock] Fetching SponsorBlock segments")?;
        if chapters.is_empty() {
            self.screen(
                "[SponsorBlock] No matching segments were found in the SponsorBlock database",
            )?;
        } else {
            self.screen(&format!(
                "[SponsorBlock] Found {} segments in the SponsorBlock database",
                chapters.len()
            ))?;
        }
        Ok(Some(
            serde_json::json!({"chapters": chapters, "mark": mark, "remove": remove}),
        ))
    }

    /// `--write-info-json`: yt-dlp/yt-dlp yt_dlp/YoutubeDL.py `process_info` ->
    /// `_write_info_json` writes `<name>.info.json` before the download, after the
    /// `after_filter` post-processors, so SponsorBlock's `sponsorblock_chapters` are in it;
    /// `chapters` there are the video's own, which the simulator lets `--sponsorblock-mark`
    /// add (the chapters ModifyChapters embeds into the file), so a test can read them.
    fn info_json(
        &mut self,
        video: &Video,
        path: &Path,
        sponsor: Option<&serde_json::Value>,
    ) -> Result<(), u8> {
        let file = path.with_extension("info.json");
        self.screen(&format!(
            "[info] Writing video metadata as JSON to: {}",
            file.display()
        ))?;
        let listed = channel::listed(self.dir.as_deref(), &video.id);
        let timestamp = listed.as_ref().map(|u| u.timestamp);
        let upload_date = timestamp
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
            .map(|t| {
                let d = t.date();
                format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day())
            });
        let marked = sponsor.and_then(marked_chapters);
        let info = serde_json::json!({
            "id": video.id, "title": video.title, "fulltitle": video.title,
            "description": format!("The description of {}.", video.id),
            "duration": 60, "timestamp": timestamp, "upload_date": upload_date,
            "channel": "Sim Channel", "uploader": "Sim Channel",
            "webpage_url": format!("https://www.youtube.com/watch?v={}", video.id),
            "thumbnail": format!("https://i.ytimg.com/vi/{}/maxresdefault.webp", video.id),
            "extractor": "youtube", "extractor_key": "Youtube", "_type": "video",
            "chapters": marked,
            "sponsorblock_chapters": sponsor.map(|s| s["chapters"].clone()),
        });
        std::fs::write(&file, info.to_string()).map_err(|e| {
            eprintln!("ERROR: Cannot write video metadata to JSON file: {e}");
            1u8
        })
    }

    /// `--write-subs`: every simulated video has `en` and `de` subtitles (uploaded ones, as
    /// `--write-subs` asks for), written as `<video name>.<lang>.vtt` (YoutubeDL.py
    /// `_write_subtitles`), converted to `.srt` with `--convert-subs srt`
    /// (postprocessor/ffmpeg.py `FFmpegSubtitlesConvertorPP`, the original removed), or muxed in
    /// and removed with `--embed-subs` (`FFmpegEmbedSubtitlePP`; logged to
    /// `sim-state/embedded-subs.log` as `<id> <langs>`).
    fn subtitles(&mut self, o: &Options, video: &Video, path: &Path) -> Result<(), u8> {
        let langs: Vec<&str> = o
            .sub_langs
            .iter()
            .map(String::as_str)
            .filter(|l| matches!(*l, "en" | "de"))
            .collect();
        if langs.is_empty() {
            return self.screen(&format!(
                "[info] There are no subtitles for the requested languages for {}",
                video.id
            ));
        }
        for lang in &langs {
            let vtt = path.with_extension(format!("{lang}.vtt"));
            self.screen(&format!(
                "[info] Writing video subtitles to: {}",
                vtt.display()
            ))?;
            let _ = std::fs::write(&vtt, "WEBVTT\n\n00:00.000 --> 00:01.000\nHello\n");
            if o.embed_subs {
                let _ = std::fs::remove_file(&vtt);
            } else if o.convert_subs.as_deref() == Some("srt") {
                let srt = path.with_extension(format!("{lang}.srt"));
                let _ = std::fs::write(&srt, "1\n00:00:00,000 --> 00:00:01,000\nHello\n");
                let _ = std::fs::remove_file(&vtt);
            }
        }
        if o.embed_subs
            && let Some(dir) = &self.dir
        {
            let _ = std::fs::create_dir_all(dir.join("sim-state"));
            if let Ok(mut log) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("sim-state").join("embedded-subs.log"))
            {
                let _ = writeln!(log, "{} {}", video.id, langs.join(","));
            }
        }
        Ok(())
    }

    fn after_move(&mut self, o: &Options, path: &Path) -> Result<(), u8> {
        match &o.print_after_move {
            Some(t) => {
                let json = serde_json::to_string(&path.to_string_lossy()).unwrap_or_default();
                self.say(&t.replace("%(filepath)j", &json))
            }
            None => Ok(()),
        }
    }

    /// One progress line: yt-dlp/yt-dlp yt_dlp/downloader/common.py `report_progress` ->
    /// `_report_progress_status` evaluates the `download:` template with `progress` (the hook's
    /// dict without `info_dict`). A plain HTTP download (downloader/http.py) has `total_bytes`;
    /// HLS/DASH (downloader/fragment.py `_start_frag_download`) has no `total_bytes`, only a
    /// `total_bytes_estimate` made from the fragments so far and `fragment_index` /
    /// `fragment_count`; both end with a `finished` dict whose `total_bytes` is the size.
    fn progress(
        &mut self,
        o: &Options,
        status: &str,
        have: usize,
        path: &Path,
        part: &Path,
        shape: Shape,
    ) -> Result<(), u8> {
        let Some(t) = &o.progress_template else {
            let total = match shape {
                Shape::Bytes { total } => total,
                Shape::Fragments { .. } => FILE_BYTES,
            };
            return self.say(&format!(
                "[download] {:5.1}% of {:.2}KiB",
                have as f64 * 100.0 / total.max(1) as f64,
                total as f64 / 1024.0
            ));
        };
        let progress = match (status, shape) {
            ("finished", _) => serde_json::json!({
                "status": status, "downloaded_bytes": have, "total_bytes": have,
                "filename": path.to_string_lossy(), "elapsed": 0.5,
                "speed": 1_048_576.0, "_percent": 100.0, "_percent_str": "100.0%",
            }),
            (_, Shape::Bytes { total }) => {
                let pct = have as f64 * 100.0 / total.max(1) as f64;
                serde_json::json!({
                    "status": status, "downloaded_bytes": have, "total_bytes": total,
                    "total_bytes_estimate": null, "filename": path.to_string_lossy(),
                    "tmpfilename": part.to_string_lossy(), "elapsed": 0.5, "speed": 1_048_576.0,
                    "eta": 1, "_percent": pct, "_percent_str": format!("{pct:5.1}%"),
                })
            }
            (_, Shape::Fragments { index, count }) => {
                // fragment.py: estimated size = bytes so far / (fragment_index + 1) * count,
                // which runs above the real size while fragments are in flight.
                let estimate = have as f64 / (index + 1) as f64 * count as f64;
                let pct = have as f64 * 100.0 / estimate.max(1.0);
                serde_json::json!({
                    "status": status, "downloaded_bytes": have, "fragment_index": index,
                    "fragment_count": count, "total_bytes_estimate": estimate,
                    "filename": path.to_string_lossy(), "tmpfilename": part.to_string_lossy(),
                    "max_progress": null, "progress_idx": null, "elapsed": 0.5,
                    "speed": 1_048_576.0, "eta": 1,
                    "_percent": pct, "_percent_str": format!("{pct:5.1}%"),
                })
            }
        };
        self.say(&t.replace("%(progress)j", &progress.to_string()))
    }

    fn start_helper(&self) -> Option<std::process::Child> {
        let exe = std::env::current_exe().ok()?;
        let child = std::process::Command::new(exe)
            .args([SUBCOMMAND, HELPER_FLAG])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        if let Some(dir) = &self.dir {
            let pids = dir.join("sim-state").join("pids");
            let _ = std::fs::create_dir_all(&pids);
            let _ = std::fs::write(
                pids.join(std::process::id().to_string()),
                child.id().to_string(),
            );
        }
        Some(child)
    }
}

/// The chapters `--sponsorblock-mark` gives a 60-second video: yt-dlp/yt-dlp
/// yt_dlp/postprocessor/modify_chapters.py `_remove_marked_arrange_sponsors` fills the gaps with
/// `<Untitled Chapter N>` and titles each marked segment with `--sponsorblock-chapter-title`
/// (default `[SponsorBlock]: %(category_names)l`). `None` when nothing is marked.
fn marked_chapters(sponsor: &serde_json::Value) -> Option<serde_json::Value> {
    let mark: Vec<&str> = sponsor["mark"]
        .as_array()?
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    if mark.is_empty() {
        return None;
    }
    let is_marked = |cat: &str| {
        !mark.iter().any(|m| m.strip_prefix('-') == Some(cat))
            && mark
                .iter()
                .any(|m| *m == cat || *m == "all" || *m == "default")
    };
    let mut out = Vec::new();
    let mut at = 0.0;
    let mut untitled = 0;
    let mut gap = |out: &mut Vec<serde_json::Value>, from: f64, to: f64| {
        if to > from {
            untitled += 1;
            out.push(serde_json::json!({"start_time": from, "end_time": to,
                "title": format!("<Untitled Chapter {untitled}>")}));
        }
    };
    for c in sponsor["chapters"].as_array()? {
        let (Some(start), Some(end), Some(cat)) = (
            c["start_time"].as_f64(),
            c["end_time"].as_f64(),
            c["category"].as_str(),
        ) else {
            continue;
        };
        if !is_marked(cat) {
            continue;
        }
        gap(&mut out, at, start);
        out.push(serde_json::json!({"start_time": start, "end_time": end,
            "title": format!("[SponsorBlock]: {}", c["title"].as_str().unwrap_or(cat))}));
        at = end;
    }
    gap(&mut out, at, 60.0);
    Some(serde_json::Value::Array(out))
}

/// Whether `--download-archive`'s file lists `id`: yt-dlp/yt-dlp yt_dlp/YoutubeDL.py
/// `in_download_archive` compares `_make_archive_id` (`youtube <id>`, utils `make_archive_id`:
/// the extractor key lowercased, a space, the id) with the file's lines.
fn archived(o: &Options, id: &str) -> bool {
    let Some(file) = &o.download_archive else {
        return false;
    };
    let want = format!("youtube {id}");
    std::fs::read_to_string(file).is_ok_and(|t| t.lines().any(|l| l.trim() == want))
}

/// `record_download_archive`: appends `youtube <id>` once the video is done.
fn record_archive(o: &Options, id: &str) {
    if let Some(file) = &o.download_archive
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
    {
        let _ = f.write_all(format!("youtube {id}\n").as_bytes());
    }
}

fn stop_helper(helper: Option<std::process::Child>) {
    if let Some(mut h) = helper {
        let _ = h.kill();
        let _ = h.wait();
    }
}

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    Download,
    Metadata,
}

/// A run's record in `sim-state/` (removed from `running/` when it ends normally); metadata runs
/// are kept apart, in `running-meta/` and `meta-runs.log`.
struct Record {
    file: Option<PathBuf>,
}

impl Record {
    fn start(dir: Option<&Path>, run: Run) -> Self {
        let Some(dir) = dir else {
            return Self { file: None };
        };
        let state = dir.join("sim-state");
        let (running, log) = match run {
            Run::Download => (state.join("running"), state.join("runs.log")),
            Run::Metadata => (state.join("running-meta"), state.join("meta-runs.log")),
        };
        let pids = state.join("pids");
        let _ = std::fs::create_dir_all(&running);
        let _ = std::fs::create_dir_all(&pids);
        let pid = std::process::id().to_string();
        let file = running.join(&pid);
        let _ = std::fs::write(&file, b"");
        if run == Run::Download {
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(pids.join(&pid));
        }
        let now = std::fs::read_dir(&running).map(|d| d.count()).unwrap_or(0);
        if let Ok(mut log) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            // One write: concurrent runs append to this file, and O_APPEND keeps a single
            // write whole (writeln! would write the pieces one by one).
            let _ = log.write_all(format!("{pid} {now}\n").as_bytes());
        }
        Self { file: Some(file) }
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        if let Some(f) = &self.file {
            let _ = std::fs::remove_file(f);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_filled_like_ytdlp() {
        let v = Video {
            id: "evil0000001".into(),
            title: video_title("evil0000001"),
        };
        let name = fill_template("%(title).150B [%(id)s].%(ext)s", &v, "mp4");
        assert!(name.ends_with(" [evil0000001].mp4"), "{name}");
        assert!(!name.contains('/'), "{name}");
        let long = Video {
            id: "long0000001".into(),
            title: video_title("long0000001"),
        };
        let name = fill_template("%(title).150B [%(id)s].%(ext)s", &long, "mkv");
        assert_eq!(name.len(), 150 + " [long0000001].mkv".len());
    }

    #[test]
    fn options_are_read_and_unknown_ones_refused() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        let o = parse(args(&["-J", "--flat-playlist", "--", "https://youtu.be/x"])).unwrap();
        assert!(o.dump_json);
        assert_eq!(o.url.as_deref(), Some("https://youtu.be/x"));
        assert!(parse(args(&["--exec", "sh"])).is_err());
        // `-I` as yt-dlp/yt-dlp yt_dlp/utils/_utils.py `PlaylistEntries` reads it (2026.10.26):
        // 1-based, the stop included; items beyond it are skipped.
        assert_eq!(parse_items("1:50"), Some((1, 50)));
        assert_eq!(parse_items("3-4"), Some((3, 4)));
        assert_eq!(parse_items("7"), Some((7, 7)));
        assert_eq!(parse_items("2:"), Some((2, usize::MAX)));
        assert_eq!(parse_items("x"), None);
        let o = parse(args(&["-I", "1:2", "--", "https://youtu.be/x"])).unwrap();
        assert_eq!(requested(playlist_entries("PLn5abc"), o.items).len(), 2);
        assert_eq!(playlist_entries("PLn5abc").len(), 5);
        assert!(playlist_entries("PLn5abc").iter().all(|v| v.id.len() == 11));
        // A listed Short's URL and a stream's name their video.
        assert_eq!(
            ids("https://www.youtube.com/shorts/abcdefghijk")
                .0
                .as_deref(),
            Some("abcdefghijk")
        );
        assert_eq!(
            ids("https://www.youtube.com/live/abcdefghijk?si=x")
                .0
                .as_deref(),
            Some("abcdefghijk")
        );
        let o = parse(args(&[
            "--sponsorblock-mark",
            "sponsor,intro",
            "--no-sponsorblock",
            "--download-archive",
            "a.txt",
            "--break-on-existing",
            "--extractor-args",
            "youtubetab:approximate_date",
            "--",
            "u",
        ]))
        .unwrap();
        assert_eq!(o.sponsorblock_mark.as_deref(), Some("sponsor,intro"));
        assert!(o.no_sponsorblock && o.break_on_existing);
        assert_eq!(o.download_archive, Some(PathBuf::from("a.txt")));
        assert_eq!(o.extractor_args, ["youtubetab:approximate_date"]);
    }

    #[test]
    fn marking_fills_the_gaps_with_untitled_chapters() {
        let sponsor = serde_json::json!({"mark": ["all", "-selfpromo"], "chapters": [
            {"start_time": 10.0, "end_time": 20.0, "category": "sponsor", "title": "Sponsor"},
            {"start_time": 40.0, "end_time": 45.0, "category": "selfpromo", "title": "Unpaid/Self Promotion"}
        ]});
        let chapters = marked_chapters(&sponsor).unwrap();
        let titles: Vec<&str> = chapters
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["title"].as_str().unwrap())
            .collect();
        assert_eq!(
            titles,
            [
                "<Untitled Chapter 1>",
                "[SponsorBlock]: Sponsor",
                "<Untitled Chapter 2>"
            ]
        );
        assert_eq!(
            marked_chapters(&serde_json::json!({"mark": [], "chapters": []})),
            None
        );
    }
}
