//! What the doctor found: one [`Check`] per thing looked at, with a fix for each that is not
//! right, and the text `medianest doctor` prints.

use serde::Serialize;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Works today, but needs attention (an ageing yt-dlp, a FUSE data dir).
    Warn,
    /// Broken: the feature it serves does not work until the fix is applied.
    Fail,
    /// Not set up, so not checked (a service without a URL).
    Skip,
}

impl Status {
    /// The word printed in front of the check.
    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Fail => "FAIL",
            Self::Skip => "skip",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// What was checked (`yt-dlp`, `Plex`, `data dir` ...).
    pub name: String,
    pub status: Status,
    /// What was found, in one line.
    pub detail: String,
    /// What to do, for a warning or a failure.
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(name: &str, detail: impl Into<String>) -> Self {
        Self::new(name, Status::Ok, detail, None)
    }

    pub fn skip(name: &str, detail: impl Into<String>) -> Self {
        Self::new(name, Status::Skip, detail, None)
    }

    pub fn warn(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(name, Status::Warn, detail, Some(fix.into()))
    }

    pub fn fail(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(name, Status::Fail, detail, Some(fix.into()))
    }

    fn new(name: &str, status: Status, detail: impl Into<String>, fix: Option<String>) -> Self {
        Self {
            name: name.to_owned(),
            status,
            detail: one_line(&detail.into()),
            fix: fix.map(|f| one_line(&f)),
        }
    }
}

/// Folds white space (a program's multi-line output, an upstream's body) into one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every check, in the order they were listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub checks: Vec<Check>,
    /// True when no check failed (warnings pass).
    pub passed: bool,
}

impl Report {
    pub fn new(checks: Vec<Check>) -> Self {
        let passed = checks.iter().all(|c| c.status != Status::Fail);
        Self { checks, passed }
    }

    fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// One line per check (`ok`/`warn`/`FAIL`/`skip`, name, detail), an indented `fix:` line
    /// under each warning and failure, and a summary line.
    pub fn to_text(&self) -> String {
        let width = self
            .checks
            .iter()
            .map(|c| c.name.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for check in &self.checks {
            out.push_str(&format!(
                "{:<4}  {:<width$}  {}\n",
                check.status.label(),
                check.name,
                check.detail
            ));
            if let Some(fix) = &check.fix {
                out.push_str(&format!("      {:<width$}  fix: {fix}\n", ""));
            }
        }
        let failed = self.count(Status::Fail);
        let warned = self.count(Status::Warn);
        let plural = |n: usize, word: &str| {
            if n == 1 {
                format!("{n} {word}")
            } else {
                format!("{n} {word}s")
            }
        };
        out.push_str(&format!(
            "\n{}, {}, {} passed, {} skipped\n",
            plural(failed, "failure"),
            plural(warned, "warning"),
            self.count(Status::Ok),
            self.count(Status::Skip),
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_has_a_line_per_check_and_a_fix_under_failures() {
        let report = Report::new(vec![
            Check::ok("ffmpeg", "6.1.1"),
            Check::fail("yt-dlp", "not found", "install it"),
            Check::warn("data dir", "on FUSE\nmaybe", "move it"),
            Check::skip("Uptime Kuma", "not set up"),
        ]);
        assert!(!report.passed);
        assert_eq!(
            report.to_text(),
            "ok    ffmpeg       6.1.1\n\
             FAIL  yt-dlp       not found\n\
             \x20                  fix: install it\n\
             warn  data dir     on FUSE maybe\n\
             \x20                  fix: move it\n\
             skip  Uptime Kuma  not set up\n\
             \n\
             1 failure, 1 warning, 1 passed, 1 skipped\n"
        );
        assert!(Report::new(vec![Check::warn("a", "b", "c")]).passed);
    }
}
