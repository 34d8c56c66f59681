//! Fetching one TMDB image: `GET {images.tmdb_base_url}/{size}/{file}` through an [`Upstream`]
//! gateway (blocking `ureq` on the bounded pool, whole-call timeout, no redirect followed).
//!
//! UPSTREAMS: TMDB's image host serves every file of its API at `/t/p/{size}/{file}`, `size` one
//! of the `images.poster_sizes` / `backdrop_sizes` its `GET /3/configuration` lists (`w92` ...
//! `w1280`, `original`), `file` the `poster_path` / `backdrop_path` of a title without its
//! leading slash (Seerr passes these through unchanged as `posterPath` / `backdropPath`). The
//! files never change under one name. This module knows nothing about caching or HTTP answers.

use std::time::Duration;

use ureq::Body;
use ureq::http::Response;

use crate::clock::SharedClock;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::integrations::upstream::{
    Request, Upstream, UpstreamFailure, UpstreamOptions, classify, expect_success,
};

/// The display name in error messages ("TMDB images did not answer in time.").
pub const SERVICE_NAME: &str = "TMDB images";

/// Fetches at once; more wait for a slot (within the timeout).
const MAX_IN_FLIGHT: usize = 4;

/// The image types kept: raster only (an SVG from our origin could run script).
pub const IMAGE_TYPES: [&str; 3] = ["image/jpeg", "image/png", "image/webp"];

/// The client of the image host. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TmdbClient {
    upstream: Upstream,
    base: String,
    max_bytes: u64,
}

/// What the host answered, before it becomes an error or bytes.
enum Answer {
    Image(Vec<u8>),
    NotFound,
    NotImage(String),
    TooLarge,
}

impl TmdbClient {
    /// A client of the host at `base` (no trailing slash kept), refusing answers over
    /// `max_bytes` and calls over `timeout`.
    pub fn new(base: &str, max_bytes: u64, timeout: Duration, clock: SharedClock) -> Self {
        let options = UpstreamOptions {
            timeout,
            max_in_flight: MAX_IN_FLIGHT,
        };
        Self {
            upstream: Upstream::with_clock(SERVICE_NAME, options, clock),
            base: base.trim().trim_end_matches('/').to_owned(),
            max_bytes,
        }
    }

    /// The URL of one image. `size` and `file` must already be checked (`super::parse_target`).
    pub fn url(&self, size: &str, file: &str) -> String {
        format!("{}/{size}/{file}", self.base)
    }

    /// The bytes and type of one image. `NOT_FOUND` when the host has none; `UPSTREAM_ERROR`
    /// (502, with a `reason`) for an answer that is not a JPEG, PNG or WebP image or is larger
    /// than the cap, and for a redirect; `UPSTREAM_TIMEOUT` (504) past the deadline.
    pub async fn fetch(&self, size: &str, file: &str) -> AppResult<(Vec<u8>, &'static str)> {
        let max = self.max_bytes;
        // The file name is the caller's choice: what the host answers to it never opens the
        // breaker, only a host that cannot be reached or does not answer in time.
        let request = Request::get(self.url(size, file))
            .header("Accept", "image/webp,image/png,image/jpeg")
            .caller_chosen();
        let answer = self
            .upstream
            .send(request, move |response| read_image(response, max))
            .await?;
        match answer {
            Answer::Image(bytes) => match sniff(&bytes) {
                Some(kind) => Ok((bytes, kind)),
                None => Err(bad_answer(
                    "sent bytes that are not a JPEG, PNG or WebP image",
                )),
            },
            Answer::NotFound => Err(AppError::new(ErrorCode::NotFound)),
            Answer::NotImage(kind) => {
                tracing::warn!(content_type = %kind, "image host answered with a non-image");
                Err(bad_answer("answered with something that is not an image"))
            }
            Answer::TooLarge => Err(bad_answer(&format!(
                "sent an image larger than {} KiB (images.max_image_kb)",
                max / 1024
            ))),
        }
    }
}

/// A 502 whose details say why, after the service's name.
fn bad_answer(reason: &str) -> AppError {
    AppError::Api {
        code: ErrorCode::UpstreamError,
        service: Some(SERVICE_NAME),
        details: Some(serde_json::json!({ "reason": format!("{SERVICE_NAME} {reason}") })),
        retry_after: None,
    }
}

/// Reads an answer: 404 as such, other non-2xx (redirects too) as failures, then the type and
/// the body within `max` bytes.
fn read_image(response: Response<Body>, max: u64) -> Result<Answer, UpstreamFailure> {
    if response.status().as_u16() == 404 {
        return Ok(Answer::NotFound);
    }
    let mut response = expect_success(response)?;
    let kind = crate::integrations::upstream::media_type(&response);
    if !IMAGE_TYPES.contains(&kind.as_str()) {
        return Ok(Answer::NotImage(kind));
    }
    let declared = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Ok(Answer::TooLarge);
    }
    match response.body_mut().with_config().limit(max).read_to_vec() {
        Ok(bytes) => Ok(Answer::Image(bytes)),
        Err(ureq::Error::BodyExceedsLimit(_)) => Ok(Answer::TooLarge),
        Err(e) => Err(classify(e)),
    }
}

/// The type of an image by its first bytes: JPEG, PNG or WebP, else `None`.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_told_by_their_first_bytes() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest"), Some("image/jpeg"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nIHDR"), Some("image/png"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"<svg xmlns="), None);
        assert_eq!(sniff(b"<!doctype html>"), None);
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVE"), None);
        assert_eq!(sniff(b""), None);
    }
}
