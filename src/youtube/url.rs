//! Which URLs may be downloaded (SPEC section 9): a YouTube video (`watch?v=`, `youtu.be/`,
//! `shorts/`) or playlist (`playlist?list=`) on youtube.com, www./m./music.youtube.com or
//! youtu.be, over http(s). Everything else is 400 `INVALID_YOUTUBE_URL`.
//!
//! An accepted URL is rebuilt from its id alone ([`YoutubeUrl::canonical`]), so what reaches
//! yt-dlp and the database never carries the caller's other characters (shell metacharacters,
//! options, extra parameters), and two spellings of one video are one download.

use crate::error::{AppError, AppResult, ErrorCode};

/// Longest URL accepted (the column's CHECK allows 2048).
pub const MAX_URL_LEN: usize = 2048;

/// A video or a playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Video,
    Playlist,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Video => "video",
            Self::Playlist => "playlist",
        }
    }
}

/// A validated YouTube URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YoutubeUrl {
    pub kind: Kind,
    /// The video id (11 characters) or the playlist id.
    pub id: String,
}

impl YoutubeUrl {
    /// The one spelling MediaNest stores and hands to yt-dlp.
    pub fn canonical(&self) -> String {
        match self.kind {
            Kind::Video => format!("https://www.youtube.com/watch?v={}", self.id),
            Kind::Playlist => format!("https://www.youtube.com/playlist?list={}", self.id),
        }
    }
}

/// Parses and validates `raw`; the error is `INVALID_YOUTUBE_URL`.
pub fn parse(raw: &str) -> AppResult<YoutubeUrl> {
    parse_inner(raw.trim()).ok_or_else(|| AppError::new(ErrorCode::InvalidYoutubeUrl))
}

/// `raw` as an http(s) URL of bounded length without credentials or a port, with its host in
/// lower case: what every YouTube URL MediaNest accepts has in common.
fn plain_url(raw: &str) -> Option<(url::Url, String)> {
    if raw.is_empty() || raw.len() > MAX_URL_LEN {
        return None;
    }
    let url = url::Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
        || url.port().is_some()
    {
        return None;
    }
    let host = url.host_str()?.to_ascii_lowercase();
    Some((url, host))
}

/// youtube.com and the subdomains that serve the same pages.
fn is_youtube_host(host: &str) -> bool {
    matches!(
        host,
        "youtube.com" | "www.youtube.com" | "m.youtube.com" | "music.youtube.com"
    )
}

fn parse_inner(raw: &str) -> Option<YoutubeUrl> {
    let (url, host) = plain_url(raw)?;
    let query = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let segments: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
    match host.as_str() {
        "youtu.be" => match segments.as_slice() {
            [id] => video(id),
            _ => None,
        },
        h if is_youtube_host(h) => {
            match segments.as_slice() {
                // `watch?v=X&list=Y` is the video X played inside a playlist: the video is what
                // the person is looking at, so that is what is downloaded.
                ["watch"] => video(&query("v")?),
                ["shorts", id] => video(id),
                ["playlist"] => playlist(&query("list")?),
                _ => None,
            }
        }
        _ => None,
    }
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn video(id: &str) -> Option<YoutubeUrl> {
    (id.len() == 11 && id.chars().all(is_id_char)).then(|| YoutubeUrl {
        kind: Kind::Video,
        id: id.to_owned(),
    })
}

fn playlist(id: &str) -> Option<YoutubeUrl> {
    ((2..=64).contains(&id.len()) && id.chars().all(is_id_char)).then(|| YoutubeUrl {
        kind: Kind::Playlist,
        id: id.to_owned(),
    })
}

/// What a subscription follows: a channel or a playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Channel,
    Playlist,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Channel => "channel",
            Self::Playlist => "playlist",
        }
    }
}

/// A validated channel or playlist URL, for subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub kind: SourceKind,
    /// For a channel, the path that names it: `@handle` (lowercased: handles are
    /// case-insensitive), `channel/UC...`, `c/name` or `user/name`; for a playlist, its id.
    pub id: String,
}

impl Source {
    /// The one spelling stored and handed to yt-dlp: a channel's Videos tab (what a
    /// subscription lists; Shorts and live streams are told apart by the items' own flags), or
    /// the playlist page.
    pub fn canonical(&self) -> String {
        match self.kind {
            SourceKind::Channel => format!("https://www.youtube.com/{}/videos", self.id),
            SourceKind::Playlist => format!("https://www.youtube.com/playlist?list={}", self.id),
        }
    }
}

/// Parses a channel (`/@handle`, `/channel/UC...`, `/c/name`, `/user/name`, optionally followed
/// by one of the tabs `videos`, `shorts`, `streams`, `featured`) or playlist
/// (`playlist?list=`) URL on the hosts [`parse`] accepts (not youtu.be, which has no channels).
/// Other query parameters are dropped. The error is `INVALID_YOUTUBE_URL`.
pub fn parse_source(raw: &str) -> AppResult<Source> {
    parse_source_inner(raw.trim()).ok_or_else(|| AppError::new(ErrorCode::InvalidYoutubeUrl))
}

fn parse_source_inner(raw: &str) -> Option<Source> {
    let (url, host) = plain_url(raw)?;
    if !is_youtube_host(&host) {
        return None;
    }
    let segments: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
    let channel = |id: String| {
        Some(Source {
            kind: SourceKind::Channel,
            id,
        })
    };
    let (name, tab) = match segments.as_slice() {
        ["playlist"] => {
            let list = url
                .query_pairs()
                .find(|(k, _)| k == "list")
                .map(|(_, v)| v.into_owned())?;
            let id = playlist(&list)?.id;
            return Some(Source {
                kind: SourceKind::Playlist,
                id,
            });
        }
        [handle] => ((None, *handle), None),
        [handle, tab] if handle.starts_with('@') => ((None, *handle), Some(*tab)),
        [prefix @ ("channel" | "c" | "user"), name] => ((Some(*prefix), *name), None),
        [prefix @ ("channel" | "c" | "user"), name, tab] => ((Some(*prefix), *name), Some(*tab)),
        _ => return None,
    };
    if let Some(tab) = tab
        && !matches!(tab, "videos" | "shorts" | "streams" | "featured")
    {
        return None;
    }
    match name {
        (None, handle) => {
            let handle = handle.strip_prefix('@')?;
            let ok = (3..=30).contains(&handle.len())
                && handle.chars().all(|c| is_id_char(c) || c == '.');
            if !ok {
                return None;
            }
            channel(format!("@{}", handle.to_ascii_lowercase()))
        }
        (Some("channel"), id) => {
            let ok = id.len() == 24 && id.starts_with("UC") && id.chars().all(is_id_char);
            if !ok {
                return None;
            }
            channel(format!("channel/{id}"))
        }
        (Some(prefix), name) => {
            let ok =
                (1..=100).contains(&name.len()) && name.chars().all(|c| is_id_char(c) || c == '.');
            if !ok {
                return None;
            }
            channel(format!("{prefix}/{name}"))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn videos_in_every_accepted_spelling() {
        for raw in [
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "http://youtube.com/watch?v=dQw4w9WgXcQ&t=42s",
            "https://m.youtube.com/watch?v=dQw4w9WgXcQ",
            "https://music.youtube.com/watch?v=dQw4w9WgXcQ&list=RDAMVM",
            "https://youtu.be/dQw4w9WgXcQ",
            "https://youtu.be/dQw4w9WgXcQ?si=abc",
            "https://www.youtube.com/shorts/dQw4w9WgXcQ",
            "  https://WWW.YOUTUBE.COM/watch?v=dQw4w9WgXcQ  ",
        ] {
            let u = parse(raw).unwrap_or_else(|_| panic!("{raw} refused"));
            assert_eq!(u.kind, Kind::Video, "{raw}");
            assert_eq!(u.canonical(), "https://www.youtube.com/watch?v=dQw4w9WgXcQ");
        }
    }

    #[test]
    fn playlists() {
        let u = parse("https://www.youtube.com/playlist?list=PLt5yu3-wZAlSLRHmI1qNm0wjyVNWw1pCU")
            .unwrap();
        assert_eq!(u.kind, Kind::Playlist);
        assert_eq!(
            u.canonical(),
            "https://www.youtube.com/playlist?list=PLt5yu3-wZAlSLRHmI1qNm0wjyVNWw1pCU"
        );
        assert!(parse("https://music.youtube.com/playlist?list=OLAK5uy_abc").is_ok());
    }

    #[test]
    fn everything_else_is_refused() {
        for raw in [
            "",
            "dQw4w9WgXcQ",
            "ftp://youtube.com/watch?v=dQw4w9WgXcQ",
            "javascript:alert(1)",
            "https://youtube.com.evil.example/watch?v=dQw4w9WgXcQ",
            "https://evil.example/?u=https://youtube.com/watch?v=dQw4w9WgXcQ",
            "https://user:pw@youtube.com/watch?v=dQw4w9WgXcQ",
            "https://youtube.com:8443/watch?v=dQw4w9WgXcQ",
            "https://www.youtube.com/watch?v=short",
            "https://www.youtube.com/watch?v=dQw4w9WgXcQQ",
            "https://www.youtube.com/watch?v=dQw4w9;rm -rf",
            "https://www.youtube.com/watch?v=$(reboot)xx",
            "https://www.youtube.com/watch?v=--exec=sh",
            "--exec=touch /tmp/pwned",
            "https://www.youtube.com/watch",
            "https://www.youtube.com/channel/UCiu-3thuViMebBjw_5nWYrA",
            "https://www.youtube.com/playlist?list=a",
            "https://www.youtube.com/playlist?list=PL`id`",
            "https://youtu.be/",
            "https://youtu.be/dQw4w9WgXcQ/extra",
            "https://www.youtube.com/shorts/../watch",
        ] {
            let e = parse(raw).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidYoutubeUrl, "{raw}");
        }
        assert!(
            parse(&format!(
                "https://youtu.be/dQw4w9WgXcQ?x={}",
                "a".repeat(3000)
            ))
            .is_err()
        );
    }

    #[test]
    fn channels_in_every_accepted_spelling() {
        for (raw, want) in [
            ("https://www.youtube.com/@LinusTechTips", "@linustechtips"),
            (
                "https://youtube.com/@linustechtips/videos",
                "@linustechtips",
            ),
            (
                "https://m.youtube.com/@LinusTechTips/shorts?si=x&list=PLabc",
                "@linustechtips",
            ),
            (
                "  https://WWW.YouTube.COM/@Linus.Tech_Tips-1/streams  ",
                "@linus.tech_tips-1",
            ),
            ("https://www.youtube.com/@abc/featured#top", "@abc"),
            (
                "https://www.youtube.com/channel/UCiu-3thuViMebBjw_5nWYrA",
                "channel/UCiu-3thuViMebBjw_5nWYrA",
            ),
            (
                "https://music.youtube.com/channel/UCiu-3thuViMebBjw_5nWYrA/videos?view=0",
                "channel/UCiu-3thuViMebBjw_5nWYrA",
            ),
            ("http://www.youtube.com/c/LinusTechTips", "c/LinusTechTips"),
            (
                "https://www.youtube.com/user/LinusTechTips/videos",
                "user/LinusTechTips",
            ),
        ] {
            let s = parse_source(raw).unwrap_or_else(|_| panic!("{raw} refused"));
            assert_eq!(s.kind, SourceKind::Channel, "{raw}");
            assert_eq!(s.id, want, "{raw}");
            assert_eq!(
                s.canonical(),
                format!("https://www.youtube.com/{want}/videos"),
                "{raw}"
            );
        }
    }

    #[test]
    fn playlists_as_sources() {
        let s = parse_source(
            "https://www.youtube.com/playlist?feature=share&list=PLt5yu3-wZAlSLRHmI1qNm0wjyVNWw1pCU&x=$(id)",
        )
        .unwrap();
        assert_eq!(s.kind, SourceKind::Playlist);
        assert_eq!(
            s.canonical(),
            "https://www.youtube.com/playlist?list=PLt5yu3-wZAlSLRHmI1qNm0wjyVNWw1pCU"
        );
    }

    #[test]
    fn sources_refuse_everything_else() {
        for raw in [
            "",
            "@handle",
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=PLt5yu3-wZAlSLRHmI1qNm0wjyVNWw1pCU",
            "https://youtu.be/dQw4w9WgXcQ",
            "https://youtu.be/@handle",
            "https://www.youtube.com/shorts/dQw4w9WgXcQ",
            "https://www.youtube.com/",
            "https://www.youtube.com/feed/subscriptions",
            "https://www.youtube.com/results?search_query=x",
            "https://www.youtube.com/@",
            "https://www.youtube.com/@ab",
            "https://www.youtube.com/@handle;rm%20-rf",
            "https://www.youtube.com/@han$(id)dle",
            "https://www.youtube.com/@han`id`dle",
            "https://www.youtube.com/@handle/community",
            "https://www.youtube.com/@handle/videos/extra",
            "https://www.youtube.com/@--exec=sh",
            "https://www.youtube.com/channel/UCshort",
            "https://www.youtube.com/channel/XXiu-3thuViMebBjw_5nWYrA",
            "https://www.youtube.com/channel/UCiu-3thuViMebBjw_5nWYrAA",
            "https://www.youtube.com/channel/UCiu-3thuViMebBjw_5nW;rA",
            "https://www.youtube.com/c/",
            "https://www.youtube.com/c/name/about",
            "https://www.youtube.com/user/na%20me",
            "https://www.youtube.com/playlist",
            "https://www.youtube.com/playlist?list=PL`id`",
            "https://user:pw@www.youtube.com/@handle",
            "https://user@www.youtube.com/@handle",
            "https://www.youtube.com:8443/@handle",
            "ftp://www.youtube.com/@handle",
            "https://youtube.com.evil.example/@handle",
            "https://evil.example/@handle",
            "https://www.youtube.com.evil.example/channel/UCiu-3thuViMebBjw_5nWYrA",
            "https://evil.example/?u=https://www.youtube.com/@handle",
            "https://gaming.youtube.com/@handle",
            "javascript:alert(1)//www.youtube.com/@handle",
        ] {
            let e = parse_source(raw).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidYoutubeUrl, "{raw}");
        }
        let long = format!("https://www.youtube.com/@handle?x={}", "a".repeat(3000));
        assert!(parse_source(&long).is_err());
    }
}
