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

fn parse_inner(raw: &str) -> Option<YoutubeUrl> {
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
        "youtube.com" | "www.youtube.com" | "m.youtube.com" | "music.youtube.com" => {
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
}
