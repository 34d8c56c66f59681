//! The programs downloads need: yt-dlp (found, its version, the age of that release), a
//! JavaScript runtime yt-dlp will use, and ffmpeg. Every program run has a bounded time and a
//! bounded output, and is killed when either runs out.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::report::Check;

/// Longest a `--version` run may take.
pub const PROGRAM_TIMEOUT: Duration = Duration::from_secs(10);
/// Output kept from a program run (each of stdout and stderr).
const OUTPUT_CAP: u64 = 64 * 1024;

/// yt-dlp older than this many days is a warning...
pub const YTDLP_WARN_DAYS: i64 = 60;
/// ...and older than this a failure: yt-dlp itself warns past 90 days, the longest it promises
/// to go without a stable release (`_get_outdated_warning` in yt-dlp/yt-dlp `yt_dlp/update.py`).
pub const YTDLP_FAIL_DAYS: i64 = 90;

/// How to install or update yt-dlp, as the README says.
const YTDLP_INSTALL: &str = "install yt-dlp with its default extras (python3 -m pip install -U \
     \"yt-dlp[default]\", or the official build from https://github.com/yt-dlp/yt-dlp/releases)";

/// What a finished program run printed.
#[derive(Debug)]
pub struct ProgramOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Why a program could not be run to the end.
#[derive(Debug)]
pub enum RunError {
    /// It did not finish within the timeout (it was killed).
    Timeout,
    /// It could not be started.
    Start(std::io::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Timeout => write!(f, "did not finish within {} s", PROGRAM_TIMEOUT.as_secs()),
            Self::Start(e) => write!(f, "could not be started: {e}"),
        }
    }
}

/// Runs `program` with `args`, no input, for at most `timeout`; the child is killed when the
/// time runs out (or the caller goes away).
pub async fn run_program(
    program: &Path,
    args: &[&str],
    timeout: Duration,
) -> Result<ProgramOutput, RunError> {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(RunError::Start)?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let work = async { tokio::join!(read_capped(stdout), read_capped(stderr), child.wait()) };
    match tokio::time::timeout(timeout, work).await {
        Ok((stdout, stderr, status)) => Ok(ProgramOutput {
            success: status.is_ok_and(|s| s.success()),
            stdout,
            stderr,
        }),
        Err(_) => Err(RunError::Timeout),
    }
}

/// At most [`OUTPUT_CAP`] bytes of a child's pipe, as text.
async fn read_capped<R: tokio::io::AsyncRead + Unpin>(pipe: Option<R>) -> String {
    let mut bytes = Vec::new();
    if let Some(pipe) = pipe {
        let _ = pipe.take(OUTPUT_CAP).read_to_end(&mut bytes).await;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Where `program` is: itself when it names a path (it has a `/`), else the first executable
/// file of that name on `PATH`.
pub fn locate(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return is_executable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The release date in a yt-dlp version: `YYYY.MM.DD`, with a fourth part (`.N`, or the time
/// of a nightly build) allowed. The format is `__version__` in yt-dlp/yt-dlp
/// `yt_dlp/version.py`, which `yt_dlp/update.py` reads back as a date the same way.
pub fn ytdlp_release_date(version: &str) -> Option<time::Date> {
    let version = version.trim();
    let parts: Vec<&str> = version.split('.').collect();
    if !(3..=4).contains(&parts.len())
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    if parts[0].len() != 4 {
        return None;
    }
    let year: i32 = parts[0].parse().ok()?;
    let month: u8 = parts[1].parse().ok()?;
    let day: u8 = parts[2].parse().ok()?;
    let month = time::Month::try_from(month).ok()?;
    time::Date::from_calendar_date(year, month, day).ok()
}

/// Whole days from `released` to `today` (0 for a date in the future).
pub fn age_days(released: time::Date, today: time::Date) -> i64 {
    (today - released).whole_days().max(0)
}

/// The yt-dlp check: found, `--version` answers, and how old that release is.
pub async fn check_ytdlp(configured: &str, today: time::Date) -> Check {
    const NAME: &str = "yt-dlp";
    let Some(path) = locate(configured) else {
        let detail = if configured.contains('/') {
            format!("{configured} does not exist or is not executable (youtube.ytdlp_path)")
        } else {
            format!("{configured} is not on PATH (youtube.ytdlp_path)")
        };
        return Check::fail(
            NAME,
            detail,
            format!("{YTDLP_INSTALL}; or set youtube.ytdlp_path to its full path"),
        );
    };
    let output = match run_program(&path, &["--version"], PROGRAM_TIMEOUT).await {
        Ok(output) if output.success => output,
        Ok(output) => {
            return Check::fail(
                NAME,
                format!(
                    "{} --version failed: {}",
                    path.display(),
                    first_line(&output.stderr)
                ),
                YTDLP_INSTALL,
            );
        }
        Err(e) => {
            return Check::fail(
                NAME,
                format!("{} --version {e}", path.display()),
                YTDLP_INSTALL,
            );
        }
    };
    let version = first_line(&output.stdout);
    let Some(released) = ytdlp_release_date(&version) else {
        return Check::warn(
            NAME,
            format!(
                "{version} at {}: not a release date (YYYY.MM.DD), so its age is unknown",
                path.display()
            ),
            format!("use a release build: {YTDLP_INSTALL}"),
        );
    };
    let age = age_days(released, today);
    let detail = format!("{version} at {} ({age} days old)", path.display());
    let update = "update yt-dlp (yt-dlp -U for the official build, or python3 -m pip install -U \
                  \"yt-dlp[default]\"): YouTube changes break old releases";
    if age > YTDLP_FAIL_DAYS {
        Check::fail(
            NAME,
            format!("{detail}, older than {YTDLP_FAIL_DAYS} days"),
            update,
        )
    } else if age > YTDLP_WARN_DAYS {
        Check::warn(
            NAME,
            format!("{detail}, older than {YTDLP_WARN_DAYS} days"),
            update,
        )
    } else {
        Check::ok(NAME, detail)
    }
}

/// A JavaScript runtime yt-dlp supports, with its minimum version (`MIN_SUPPORTED_VERSION` of
/// each runtime in yt-dlp/yt-dlp `yt_dlp/utils/_jsruntime.py`), in yt-dlp's order of priority.
struct Runtime {
    name: &'static str,
    program: &'static str,
    minimum: Option<(u64, u64, u64)>,
}

const RUNTIMES: [Runtime; 4] = [
    Runtime {
        name: "deno",
        program: "deno",
        minimum: Some((2, 3, 0)),
    },
    Runtime {
        name: "node",
        program: "node",
        minimum: Some((22, 0, 0)),
    },
    Runtime {
        name: "quickjs",
        program: "qjs",
        minimum: None,
    },
    Runtime {
        name: "bun",
        program: "bun",
        minimum: Some((1, 2, 11)),
    },
];

/// The runtimes yt-dlp enables with `extra_args`, each with the location given (if any).
///
/// yt-dlp/yt-dlp `yt_dlp/options.py`: `--js-runtimes RUNTIME[:PATH]` adds one runtime per use
/// (the default list is `deno` alone), `--no-js-runtimes` empties the list; PATH is the program
/// or the folder holding it.
pub fn enabled_js_runtimes(extra_args: &[String]) -> Vec<(String, Option<PathBuf>)> {
    let mut enabled: Vec<(String, Option<PathBuf>)> = vec![("deno".into(), None)];
    let mut args = extra_args.iter();
    while let Some(arg) = args.next() {
        let value = if arg == "--no-js-runtimes" {
            enabled.clear();
            continue;
        } else if arg == "--js-runtimes" {
            match args.next() {
                Some(value) => value.as_str(),
                None => break,
            }
        } else if let Some(value) = arg.strip_prefix("--js-runtimes=") {
            value
        } else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let (name, path) = match value.split_once(':') {
            Some((name, path)) => (name, Some(PathBuf::from(path))),
            None => (value, None),
        };
        enabled.push((name.to_ascii_lowercase(), path));
    }
    enabled
}

/// The leading `major.minor.patch` numbers of a version (missing parts are 0).
fn version_numbers(version: &str) -> Option<(u64, u64, u64)> {
    let mut parts = version
        .split(['.', '-', '+'])
        .map(|p| p.parse::<u64>().ok());
    let major = parts.next().flatten()?;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

/// The JavaScript runtime check: the first runtime (in yt-dlp's order) that `extra_args`
/// enables, is installed and is new enough.
pub async fn check_js_runtime(extra_args: &[String]) -> Check {
    const NAME: &str = "JavaScript runtime";
    let enabled = enabled_js_runtimes(extra_args);
    let mut problems = Vec::new();
    for runtime in &RUNTIMES {
        let Some((_, given)) = enabled.iter().find(|(name, _)| name == runtime.name) else {
            continue;
        };
        let path = match given {
            Some(path) if path.is_dir() => Some(path.join(runtime.program)),
            Some(path) => Some(path.clone()).filter(|p| is_executable(p)),
            None => locate(runtime.program),
        };
        let Some(path) = path.filter(|p| is_executable(p)) else {
            problems.push(format!("{} not found", runtime.name));
            continue;
        };
        let Some(minimum) = runtime.minimum else {
            return Check::ok(NAME, format!("{} at {}", runtime.name, path.display()));
        };
        let output = match run_program(&path, &["--version"], PROGRAM_TIMEOUT).await {
            Ok(output) if output.success => output,
            Ok(_) => {
                problems.push(format!("{} --version failed", path.display()));
                continue;
            }
            Err(e) => {
                problems.push(format!("{} --version {e}", path.display()));
                continue;
            }
        };
        let line = first_line(&output.stdout);
        // deno prints "deno 2.3.1 (...)", node "v22.1.0", bun "1.2.11".
        let version = line
            .strip_prefix("deno ")
            .unwrap_or(&line)
            .trim_start_matches('v')
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        match version_numbers(&version) {
            Some(found) if found >= minimum => {
                return Check::ok(
                    NAME,
                    format!("{} {version} at {}", runtime.name, path.display()),
                );
            }
            _ => problems.push(format!(
                "{} {version} at {} is older than yt-dlp supports ({}.{}.{})",
                runtime.name,
                path.display(),
                minimum.0,
                minimum.1,
                minimum.2
            )),
        }
    }
    let node_enabled = enabled.iter().any(|(name, _)| name == "node");
    let node_hint = match locate("node") {
        Some(node) if !node_enabled => format!(
            "; node is installed at {} but yt-dlp uses it only with --js-runtimes node in \
             youtube.extra_args",
            node.display()
        ),
        _ => String::new(),
    };
    let detail = if problems.is_empty() {
        "youtube.extra_args enables no runtime yt-dlp supports".to_owned()
    } else {
        format!("none usable: {}", problems.join(", "))
    };
    Check::fail(
        NAME,
        format!("{detail}{node_hint}"),
        "install deno 2.3 or later (https://deno.com), which yt-dlp uses by default; or node 22 \
         or later with --js-runtimes node in youtube.extra_args. Many YouTube formats need one",
    )
}

/// Where yt-dlp looks for ffmpeg: `--ffmpeg-location` in `extra_args` (the program or its
/// folder), else `PATH`.
fn ffmpeg_location(extra_args: &[String]) -> Option<PathBuf> {
    let mut args = extra_args.iter();
    let mut given = None;
    while let Some(arg) = args.next() {
        if arg == "--ffmpeg-location" {
            given = args.next().map(PathBuf::from);
        } else if let Some(value) = arg.strip_prefix("--ffmpeg-location=") {
            given = Some(PathBuf::from(value));
        }
    }
    match given {
        Some(path) if path.is_dir() => Some(path.join("ffmpeg")),
        Some(path) => Some(path),
        None => locate("ffmpeg"),
    }
}

/// The ffmpeg check: found, and `-version` answers.
pub async fn check_ffmpeg(extra_args: &[String]) -> Check {
    const NAME: &str = "ffmpeg";
    let install = "install ffmpeg (apt install ffmpeg, or your system's package): yt-dlp needs it \
                   to merge video and audio";
    let Some(path) = ffmpeg_location(extra_args).filter(|p| is_executable(p)) else {
        return Check::fail(NAME, "ffmpeg is not on PATH", install);
    };
    match run_program(&path, &["-version"], PROGRAM_TIMEOUT).await {
        Ok(output) if output.success => {
            // "ffmpeg version 6.1.1-3ubuntu5 Copyright (c) 2000-2023 ..."
            let line = first_line(&output.stdout);
            let version = line
                .strip_prefix("ffmpeg version ")
                .and_then(|rest| rest.split_whitespace().next())
                .unwrap_or(&line);
            Check::ok(NAME, format!("{version} at {}", path.display()))
        }
        Ok(output) => Check::fail(
            NAME,
            format!(
                "{} -version failed: {}",
                path.display(),
                first_line(&output.stderr)
            ),
            install,
        ),
        Err(e) => Check::fail(NAME, format!("{} -version {e}", path.display()), install),
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn release_dates_come_from_yt_dlp_versions() {
        assert_eq!(
            ytdlp_release_date("2026.08.19"),
            Some(date!(2026 - 08 - 19))
        );
        assert_eq!(
            ytdlp_release_date(" 2025.10.22\n"),
            Some(date!(2025 - 10 - 22))
        );
        // A fix release and a nightly build's time.
        assert_eq!(
            ytdlp_release_date("2024.03.10.1"),
            Some(date!(2024 - 03 - 10))
        );
        assert_eq!(
            ytdlp_release_date("2025.10.22.232815"),
            Some(date!(2025 - 10 - 22))
        );
        for bad in [
            "",
            "2025.10",
            "2025.13.01",
            "2025.02.30",
            "25.10.22",
            "2025.10.22.1.2",
            "2025.10.x",
            "v2025.10.22",
            "yt-dlp 2025.10.22",
        ] {
            assert_eq!(ytdlp_release_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn age_is_whole_days_and_never_negative() {
        let released = date!(2026 - 08 - 19);
        assert_eq!(age_days(released, date!(2026 - 08 - 19)), 0);
        assert_eq!(age_days(released, date!(2026 - 12 - 03)), 106);
        assert_eq!(age_days(released, date!(2026 - 01 - 01)), 0);
    }

    #[test]
    fn deno_is_enabled_by_default_and_node_only_when_asked() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let names = |a: &[&str]| {
            enabled_js_runtimes(&args(a))
                .into_iter()
                .map(|(n, p)| (n, p.map(|p| p.display().to_string())))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&[]), vec![("deno".into(), None)]);
        assert_eq!(
            names(&["--js-runtimes", "node"]),
            vec![("deno".into(), None), ("node".into(), None)]
        );
        assert_eq!(
            names(&["--no-js-runtimes", "--js-runtimes=node:/opt/node/bin"]),
            vec![("node".into(), Some("/opt/node/bin".into()))]
        );
        assert_eq!(
            names(&["--js-runtimes", "bun", "--no-js-runtimes"]),
            Vec::<(String, Option<String>)>::new()
        );
    }

    /// A script in a fresh folder (kept alive by the returned guard).
    fn script(body: &str) -> (tempfile::TempDir, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("program");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        (dir, path)
    }

    #[tokio::test]
    async fn a_program_that_hangs_is_killed_at_the_timeout() {
        let (_dir, path) = script("echo started; exec sleep 30");
        let started = std::time::Instant::now();
        let result = run_program(&path, &["--version"], Duration::from_millis(300)).await;
        assert!(matches!(result, Err(RunError::Timeout)), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_program_run_keeps_its_output_and_exit_status() {
        let (_dir, path) = script("echo \"2026.08.19\"; echo oops >&2; exit 3");
        let output = run_program(&path, &[], PROGRAM_TIMEOUT).await.unwrap();
        assert!(!output.success);
        assert_eq!(output.stdout, "2026.08.19\n");
        assert_eq!(output.stderr, "oops\n");
    }

    #[tokio::test]
    async fn a_missing_or_too_old_yt_dlp_fails_with_a_fix() {
        let today = date!(2026 - 12 - 03);
        let check = check_ytdlp("/nonexistent/yt-dlp", today).await;
        assert_eq!(check.status, crate::doctor::Status::Fail);
        assert!(check.fix.unwrap().contains("yt-dlp[default]"));
        let (_dir, path) = script("echo 2026.08.19");
        let check = check_ytdlp(path.to_str().unwrap(), today).await;
        assert_eq!(check.status, crate::doctor::Status::Fail, "{check:?}");
        assert!(check.detail.contains("(106 days old)"), "{check:?}");
        let check = check_ytdlp(path.to_str().unwrap(), date!(2026 - 10 - 01)).await;
        assert_eq!(check.status, crate::doctor::Status::Ok, "{check:?}");
    }

    #[test]
    fn runtime_versions_compare_by_number() {
        assert_eq!(version_numbers("2.3.1"), Some((2, 3, 1)));
        assert_eq!(version_numbers("22.11.0"), Some((22, 11, 0)));
        assert_eq!(version_numbers("20"), Some((20, 0, 0)));
        assert!(version_numbers("20.20.2").unwrap() < (22, 0, 0));
        assert_eq!(version_numbers("unknown"), None);
    }
}
