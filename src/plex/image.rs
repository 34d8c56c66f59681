//! `GET /plex/image?path=/library/...&width=&height=`: PMS images through the portal, so the
//! browser never sees PMS's address or the server token.
//!
//! Only plain `/library/...` paths pass (letters, digits, `/ _ - .`, no `..`): no other PMS
//! endpoint, no absolute URL, no query of our own to inject into, no encoded traversal (the
//! query is decoded once, and `%` is not allowed in what remains). Images are cached by path
//! and size for an hour within a byte budget, carry a strong `ETag` of their bytes, and a
//! matching `If-None-Match` is answered 304 without a body.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::cache::{CachedImage, IMAGE_TTL};
use super::{Params, number_param, server};
use crate::auth::CurrentUser;
use crate::cache::Source;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// The longest image path accepted.
const MAX_PATH_LEN: usize = 512;
/// The largest width or height PMS's transcoder is asked for.
const MAX_SIZE: u32 = 4096;
/// How long browsers may keep an image without asking again.
const BROWSER_CACHE: &str = "private, max-age=3600";

/// Why `path` is not an image path the proxy passes on, or `None` when it is fine.
pub fn path_problem(path: &str) -> Option<&'static str> {
    if !path.starts_with("/library/") {
        return Some("must start with /library/");
    }
    if path.len() > MAX_PATH_LEN {
        return Some("is too long");
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'.');
    if !path.bytes().all(allowed) {
        return Some("may hold only letters, digits, /, _, - and .");
    }
    if path
        .split('/')
        .skip(1)
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Some("must not hold empty, . or .. segments");
    }
    None
}

/// A strong validator for `bytes`: the start of their SHA-256, quoted.
fn etag_of(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Whether `If-None-Match` names `etag` (or `*`); weak forms match too (RFC 9110 13.1.2).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

/// `GET /plex/image`.
pub async fn get_image(
    State(state): State<AppState>,
    _user: CurrentUser,
    headers: HeaderMap,
    Query(params): Params,
) -> AppResult<Response> {
    let path = params.get("path").map(String::as_str).unwrap_or_default();
    if let Some(problem) = path_problem(path) {
        return Err(AppError::validation([("path", problem)]));
    }
    let size = |name: &'static str| {
        params
            .contains_key(name)
            .then(|| number_param(&params, name, 1..=MAX_SIZE, 1))
            .transpose()
    };
    let (width, height) = (size("width")?, size("height")?);
    let plex = server(&state).await?;
    let path = path.to_owned();
    let lookup = state
        .plex_caches()
        .images
        .get_or_load((path.clone(), width, height), IMAGE_TTL, || async move {
            let image = plex.image(&path, width, height).await?;
            Ok::<_, AppError>(Arc::new(CachedImage {
                etag: etag_of(&image.bytes),
                bytes: Bytes::from(image.bytes),
                content_type: image.content_type,
            }))
        })
        .await?;
    let image = &lookup.value;
    let hit = if lookup.source == Source::Hit {
        "HIT"
    } else {
        "MISS"
    };
    let mut response = if not_modified(&headers, &image.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let content_type = HeaderValue::from_str(&image.content_type)
            .unwrap_or_else(|_| HeaderValue::from_static("image/jpeg"));
        ([(header::CONTENT_TYPE, content_type)], image.bytes.clone()).into_response()
    };
    let out = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&image.etag) {
        out.insert(header::ETAG, etag);
    }
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(BROWSER_CACHE),
    );
    out.insert("x-cache", HeaderValue::from_static(hit));
    Ok(response)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_library_paths_pass() {
        for good in [
            "/library/metadata/58683/thumb/1703239236",
            "/library/collections/91234/composite/1715000000",
            "/library/metadata/1/art/2",
        ] {
            assert_eq!(path_problem(good), None, "{good}");
        }
        for bad in [
            "",
            "/identity",
            "library/metadata/1/thumb/2",
            "http://evil.example/library/x",
            "//evil.example/library/x",
            "/library/../identity",
            "/library/metadata/1/../../../identity",
            "/library/./metadata",
            "/library//metadata",
            "/library/%2e%2e/identity",
            "/library/%252e%252e/identity",
            "/library/metadata/1/thumb/2?X-Plex-Token=x",
            "/library/metadata/1/thumb/2&url=http://evil",
            "/library/metadata/1/thumb/2#frag",
            "/library/metadata/1/thumb\\..\\..",
            "/library/metadata/1 /thumb",
            "/library/métadata",
        ] {
            assert!(path_problem(bad).is_some(), "{bad}");
        }
        assert!(path_problem(&format!("/library/{}", "a".repeat(600))).is_some());
    }

    #[test]
    fn etags_match_strong_weak_and_star() {
        let etag = etag_of(b"image bytes");
        assert_eq!(etag.len(), 34);
        assert_ne!(etag, etag_of(b"other bytes"));
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
            not_modified(&headers, &etag)
        };
        assert!(with(&etag));
        assert!(with(&format!("\"x\", W/{etag}")));
        assert!(with("*"));
        assert!(!with("\"something else\""));
        assert!(!not_modified(&HeaderMap::new(), &etag));
    }
}
