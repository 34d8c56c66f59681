//! Where a subscription's videos go, so that Plex orders them with its own TV scanner and no
//! custom agent (issue 15):
//!
//! ```text
//! <Channel>/poster.jpg                      the channel's avatar (show poster)
//! <Channel>/fanart.jpg                      the channel's banner (show art)
//! <Channel>/Season 2026/<Channel> - s2026e030702 - <title> [<id>].mp4
//! <Channel>/Season 2026/<Channel> - s2026e030702 - <title> [<id>].jpg   (episode thumbnail)
//! ```
//!
//! The season is the upload year; the episode number is the upload day (`MMDD`) followed by a
//! two-digit index among that day's uploads, so two videos of one day never collide and the
//! order is the upload order. File names follow Plex's "Naming and organizing your TV show files"
//! (`Show Name - sXXeYY - Optional Info.ext`, seasons in `Season XX` folders) and its "Local
//! Media Assets - TV Shows" (`poster.jpg` and `fanart.jpg` beside the seasons, an episode's
//! thumbnail as the video's name with `.jpg`).

use std::path::PathBuf;

use super::ytdlp::safe_component;

/// Longest channel folder name, in bytes.
pub const MAX_CHANNEL_BYTES: usize = 80;
/// Longest title part of a file name yt-dlp writes, in bytes (`%(title).NB`).
pub const MAX_TITLE_BYTES: usize = 120;
/// Videos of one day a subscription can lay out (the two-digit index); a hundredth fails.
pub const MAX_PER_DAY: u32 = 99;

/// Where one video goes, relative to the subscriptions root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Episode {
    /// `<Channel>/Season <year>`.
    pub folder: PathBuf,
    /// `<Channel> - s<year>e<MMDD><nn>`: the start of the file names.
    pub prefix: String,
    pub season: u32,
    pub episode: u32,
}

/// A calendar day from yt-dlp's `upload_date` (`YYYYMMDD`) or an ISO date (`YYYY-MM-DD`).
pub fn parse_day(raw: &str) -> Option<(u32, u32, u32)> {
    let digits: String = raw.chars().filter(|c| *c != '-').collect();
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: u32 = digits[..4].parse().ok()?;
    let month: u32 = digits[4..6].parse().ok()?;
    let day: u32 = digits[6..].parse().ok()?;
    let valid = (1900..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day);
    valid.then_some((year, month, day))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The channel's folder name.
pub fn channel_folder(channel: &str) -> String {
    safe_component(channel, MAX_CHANNEL_BYTES, "Channel")
}

/// Where the `index`-th (1-based) upload of `channel` on `upload_date` goes; `None` for a date
/// that is not one or an index of 0 or above [`MAX_PER_DAY`] (never a number another video has).
pub fn episode(channel: &str, upload_date: &str, index: u32) -> Option<Episode> {
    let (year, month, day) = parse_day(upload_date)?;
    if index == 0 || index > MAX_PER_DAY {
        return None;
    }
    let show = channel_folder(channel);
    let episode = (month * 100 + day) * 100 + index;
    Some(Episode {
        folder: PathBuf::from(&show).join(format!("Season {year}")),
        prefix: format!("{show} - s{year}e{month:02}{day:02}{index:02}"),
        season: year,
        episode,
    })
}

/// yt-dlp's `-o` template for `episode`: the literal prefix (its `%` escaped, so a channel
/// name can never become a template field), then the title capped in bytes and the id.
pub fn output_template(episode: &Episode) -> String {
    format!(
        "{} - %(title).{MAX_TITLE_BYTES}B [%(id)s].%(ext)s",
        episode.prefix.replace('%', "%%")
    )
}

/// yt-dlp's `-o thumbnail:` template: the episode's thumbnail beside the video, same name.
pub fn thumbnail_template(episode: &Episode) -> String {
    format!(
        "thumbnail:{} - %(title).{MAX_TITLE_BYTES}B [%(id)s].%(ext)s",
        episode.prefix.replace('%', "%%")
    )
}

/// The show's poster and art, relative to the subscriptions root.
pub fn show_art(channel: &str) -> (PathBuf, PathBuf) {
    let show = PathBuf::from(channel_folder(channel));
    (show.join("poster.jpg"), show.join("fanart.jpg"))
}

/// The index of a new upload on a day that already has the `taken` indexes: the next free one
/// after the highest, so a video pruned by retention never gives its number to a newer one. Past
/// [`MAX_PER_DAY`] it has no place ([`episode`] says `None`).
pub fn next_index(taken: &[u32]) -> u32 {
    taken
        .iter()
        .copied()
        .max()
        .map_or(1, |m| m.saturating_add(1))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn days_are_read_in_both_spellings_and_checked() {
        assert_eq!(parse_day("20260307"), Some((2026, 3, 7)));
        assert_eq!(parse_day("2026-03-07"), Some((2026, 3, 7)));
        assert_eq!(parse_day("20240229"), Some((2024, 2, 29)));
        for bad in [
            "20230229",
            "20261301",
            "20260431",
            "2026037",
            "NA",
            "",
            "2026-3-7x",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
    }

    #[test]
    fn two_uploads_of_one_day_get_consecutive_episodes_in_the_year_season() {
        let first = episode("Veritasium", "20260307", 1).unwrap();
        let second = episode("Veritasium", "20260307", 2).unwrap();
        assert_eq!(first.folder, PathBuf::from("Veritasium/Season 2026"));
        assert_eq!(first.prefix, "Veritasium - s2026e030701");
        assert_eq!(second.prefix, "Veritasium - s2026e030702");
        assert_eq!((first.season, first.episode), (2026, 30701));
        assert!(second.episode > first.episode);
        let december = episode("Veritasium", "2026-12-31", 1).unwrap();
        assert!(december.episode > second.episode);
        assert_eq!(episode("Veritasium", "20260307", 0), None);
        assert!(episode("Veritasium", "20260307", 99).is_some());
        assert_eq!(episode("Veritasium", "20260307", 100), None);
        assert_eq!(episode("Veritasium", "not a date", 1), None);
    }

    #[test]
    fn channel_names_are_made_safe_and_never_become_template_fields() {
        let e = episode("AC/DC: 100% Live?", "20250101", 3).unwrap();
        assert_eq!(e.folder, PathBuf::from("AC_DC_ 100% Live_/Season 2025"));
        assert_eq!(
            output_template(&e),
            "AC_DC_ 100%% Live_ - s2025e010103 - %(title).120B [%(id)s].%(ext)s"
        );
        assert!(thumbnail_template(&e).starts_with("thumbnail:AC_DC_ 100%% Live_ - s2025e010103"));
        let dots = episode("..", "20250101", 1).unwrap();
        assert_eq!(dots.folder, PathBuf::from("Channel/Season 2025"));
        let (poster, art) = show_art("Veritasium");
        assert_eq!(poster, PathBuf::from("Veritasium/poster.jpg"));
        assert_eq!(art, PathBuf::from("Veritasium/fanart.jpg"));
    }

    #[test]
    fn a_new_upload_takes_the_number_after_the_highest_of_its_day() {
        assert_eq!(next_index(&[]), 1);
        assert_eq!(next_index(&[1, 2]), 3);
        // Number 2 was pruned: the next upload still gets 4, never 2 again.
        assert_eq!(next_index(&[1, 3]), 4);
        assert_eq!(next_index(&[99]), 100);
    }
}
