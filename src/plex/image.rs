//! `GET /plex/image?path=/library/...&width=&height=`: PMS images through the portal, so the
//! browser never sees PMS's address or the server token.
//!
//! Only image paths pass ([`parse_path`]): `/library/metadata/{id}/thumb|art|banner/{at}`,
//! `/library/collections/{id}/composite/{at}` with decimal ids, or PMS's `/photo/:/transcode`
//! with one of those as its `url`. Anything else (a list such as `/library/sections`, an
//! endpoint with side effects such as `.../refresh`, an absolute URL, a traversal) is refused
//! with 400 before PMS is called, and an answer that is not a raster image is refused with 502.
//! What PMS answers to a path the caller chose never counts against its breaker. Images are
//! cached by path and size for an hour within a byte budget, carry a strong `ETag` of their
//! bytes, and a matching `If-None-Match` is answered 304 without a body.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::cache::{CachedImage, IMAGE_TTL};
use super::{Params, number_param, server};
use crate::auth::CurrentUser;
use crate::cache::Source;
use crate::error::{AppError, AppResult};
use crate::integrations::plex as client;
use crate::state::AppState;

/// The longest image path accepted.
const MAX_PATH_LEN: usize = 512;
/// The largest width or height PMS's transcoder is asked for.
const MAX_SIZE: u32 = 4096;
/// How long browsers may keep an image without asking again.
const BROWSER_CACHE: &str = "private, max-age=3600";

/// What the proxy asks PMS for: an image path of one of the accepted shapes
/// ([`client::is_image_path`]) and the size to transcode it to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageTarget {
    pub path: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// Parameters of `/photo/:/transcode` a path may carry (of those python-plexapi's
/// `PlexServer.transcodeImage` sends, plexapi/server.py): the image's `url`, the size, and the
/// `minSize`/`upscale` switches. PMS is always asked with `minSize=1&upscale=1`, as the portal's
/// own sized images are; the other effects (blur, opacity, saturation, colours, format) are not
/// passed on.
const TRANSCODE_PARAMS: [&str; 5] = ["url", "width", "height", "minSize", "upscale"];

/// Reads the `path` a browser sent: a plain image path (`/library/metadata/{id}/thumb/{at}`,
/// `.../art/{at}`, `.../banner/{at}`, `/library/collections/{id}/composite/{at}`), or
/// `/photo/:/transcode?...` whose `url` is one of those. The reason it is refused otherwise.
pub fn parse_path(path: &str) -> Result<ImageTarget, &'static str> {
    if path.len() > MAX_PATH_LEN {
        return Err("is too long");
    }
    if client::is_image_path(path) {
        return Ok(ImageTarget {
            path: path.to_owned(),
            width: None,
            height: None,
        });
    }
    let Some(query) = path.strip_prefix("/photo/:/transcode?") else {
        return Err("must be a Plex image path (/library/metadata/{id}/thumb/{at} and the like)");
    };
    let mut target = ImageTarget {
        path: String::new(),
        width: None,
        height: None,
    };
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if !TRANSCODE_PARAMS.contains(&name.as_ref()) {
            return Err("may carry only url, width, height, minSize and upscale");
        }
        if seen.iter().any(|n| *n == name) {
            return Err("names a transcoder parameter twice");
        }
        seen.push(name.to_string());
        match name.as_ref() {
            "url" if client::is_image_path(&value) => target.path = value.into_owned(),
            "url" => return Err("must transcode a Plex image path"),
            "width" | "height" => {
                let n = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_SIZE).contains(n))
                    .ok_or("has a width or height that is not 1 to 4096")?;
                if name == "width" {
                    target.width = Some(n);
                } else {
                    target.height = Some(n);
                }
            }
            _ if matches!(value.as_ref(), "0" | "1") => {}
            _ => return Err("has a minSize or upscale that is not 0 or 1"),
        }
    }
    if target.path.is_empty() {
        return Err("must transcode a Plex image path");
    }
    Ok(target)
}

/// `GET /plex/image`.
pub async fn get_image(
    State(state): State<AppState>,
    _user: CurrentUser,
    headers: HeaderMap,
    Query(params): Params,
) -> AppResult<Response> {
    let path = params.get("path").map(String::as_str).unwrap_or_default();
    let target = parse_path(path).map_err(|problem| AppError::validation([("path", problem)]))?;
    let size = |name: &'static str, inner: Option<u32>| match (params.contains_key(name), inner) {
        (true, Some(_)) => Err(AppError::validation([(
            name,
            "is given twice (here and in the transcoder path)",
        )])),
        (true, None) => number_param(&params, name, 1..=MAX_SIZE, 1).map(Some),
        (false, inner) => Ok(inner),
    };
    let (width, height) = (size("width", target.width)?, size("height", target.height)?);
    let plex = server(&state).await?;
    let path = target.path;
    let lookup = state
        .plex_caches()
        .images
        .get_or_load((path.clone(), width, height), IMAGE_TTL, || async move {
            let image = plex.image(&path, width, height).await?;
            Ok::<_, AppError>(Arc::new(CachedImage {
                etag: crate::http::strong_etag(&image.bytes),
                bytes: Bytes::from(image.bytes),
                content_type: image.content_type,
            }))
        })
        .await?;
    let image = &lookup.value;
    Ok(crate::http::image_response(
        &headers,
        &image.etag,
        &image.content_type,
        image.bytes.clone(),
        BROWSER_CACHE,
        lookup.source == Source::Hit,
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_image_paths_pass() {
        let plain = |path: &str| ImageTarget {
            path: path.into(),
            width: None,
            height: None,
        };
        for good in [
            "/library/metadata/58683/thumb/1703239236",
            "/library/collections/91234/composite/1715000000",
            "/library/metadata/1/art/2",
            "/library/metadata/1/banner/2",
        ] {
            assert_eq!(parse_path(good), Ok(plain(good)), "{good}");
        }
        assert_eq!(
            parse_path(
                "/photo/:/transcode?width=300&height=450&minSize=1&upscale=1\
                 &url=%2Flibrary%2Fmetadata%2F7%2Fthumb%2F1700000000"
            ),
            Ok(ImageTarget {
                path: "/library/metadata/7/thumb/1700000000".into(),
                width: Some(300),
                height: Some(450),
            })
        );
        assert_eq!(
            parse_path("/photo/:/transcode?url=/library/metadata/7/art/1"),
            Ok(plain("/library/metadata/7/art/1"))
        );
        for bad in [
            "",
            "/identity",
            "/library/sections",
            "/library/sections/2/refresh",
            "/library/sections/2/all",
            "/library/metadata/1",
            "/library/metadata/1/thumb",
            "/library/metadata/1/thumb/2/3",
            "/library/metadata/x/thumb/2",
            "/library/metadata/-1/thumb/2",
            "/library/metadata/1/poster/2",
            "/library/collections/1/thumb/2",
            "library/metadata/1/thumb/2",
            "http://evil.example/library/metadata/1/thumb/2",
            "//evil.example/library/metadata/1/thumb/2",
            "/library/../identity",
            "/library/metadata/1/../../../identity",
            "/library/metadata/%31/thumb/2",
            "/library/metadata/1/thumb/2?X-Plex-Token=x",
            "/library/metadata/1/thumb/2&url=http://evil",
            "/library/metadata/1/thumb/2#frag",
            "/library/metadata/1/thumb/2/",
            "/photo/:/transcode",
            "/photo/:/transcode?",
            "/photo/:/transcode?width=300",
            "/photo/:/transcode?url=/library/sections/2/refresh",
            "/photo/:/transcode?url=http://evil.example/x.png",
            "/photo/:/transcode?url=/photo/:/transcode%3Furl%3D%2Flibrary%2Fmetadata%2F1%2Fthumb%2F2",
            "/photo/:/transcode?url=/library/metadata/1/thumb/2&X-Plex-Token=x",
            "/photo/:/transcode?url=/library/metadata/1/thumb/2&blur=20",
            "/photo/:/transcode?url=/library/metadata/1/thumb/2&url=/library/metadata/2/thumb/2",
            "/photo/:/transcode?url=/library/metadata/1/thumb/2&width=0",
            "/photo/:/transcode?url=/library/metadata/1/thumb/2&width=5000",
            "/photo/:/transcode?url=/library/metadata/1/thumb/2&upscale=yes",
            "/photo/:/transcodeX?url=/library/metadata/1/thumb/2",
        ] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
        assert!(parse_path(&format!("/library/metadata/1/thumb/{}", "1".repeat(600))).is_err());
    }
}
