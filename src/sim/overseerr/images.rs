//! The TMDB image host the demo and the browser tests point `images.tmdb_base_url` at: the fake
//! Seerr serves a small poster-shaped image for any TMDB-style file name, so Discover shows
//! posters offline. The images are generated here (a PNG in a colour made from the name, with a
//! lighter band), never copied from anywhere. As on TMDB (`https://image.tmdb.org/t/p/{size}/{file}`)
//! the size is a path segment and the name is the file.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::io::Write;

/// Sizes TMDB serves (its `/configuration` `images.poster_sizes` and `backdrop_sizes`).
const SIZES: [&str; 9] = [
    "w92", "w154", "w185", "w300", "w342", "w500", "w780", "w1280", "original",
];

/// `GET /tmdb-images/{size}/{file}`.
pub(super) async fn serve(Path((size, file)): Path<(String, String)>) -> Response {
    let name_ok = file.len() <= 80
        && file
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && [".jpg", ".jpeg", ".png", ".webp"]
            .iter()
            .any(|e| file.ends_with(e));
    if !SIZES.contains(&size.as_str()) || !name_ok {
        return StatusCode::NOT_FOUND.into_response();
    }
    // Backdrops are wide; everything else poster-shaped.
    let (w, h) = if size == "w1280" || size == "w780" || file.starts_with("backdrop") {
        (96, 54)
    } else {
        (40, 60)
    };
    (
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        png(&file, w, h),
    )
        .into_response()
}

/// A `w`x`h` RGB PNG in a colour made from `seed`, with a lighter band across the lower third.
pub fn png(seed: &str, w: u32, h: u32) -> Vec<u8> {
    let hash = seed.bytes().fold(0x811c_9dc5_u32, |a, b| {
        (a ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let [r, g, b, _] = hash.to_le_bytes();
    let (r, g, b) = (r / 2 + 40, g / 2 + 40, b / 2 + 40);
    let mut raw = Vec::with_capacity(((w * 3 + 1) * h) as usize);
    for y in 0..h {
        raw.push(0); // filter: none
        let band = y > h * 2 / 3 && y < h * 5 / 6;
        for _ in 0..w {
            if band {
                raw.extend([
                    r.saturating_add(90),
                    g.saturating_add(90),
                    b.saturating_add(90),
                ]);
            } else {
                raw.extend([r, g, b]);
            }
        }
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = z.write_all(&raw);
    let data = z.finish().unwrap_or_default();
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &data);
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend(u32::try_from(data.len()).unwrap_or(0).to_be_bytes());
    out.extend(kind);
    out.extend(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend(crc.sum().to_be_bytes());
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_png_is_well_formed_and_differs_by_name() {
        let a = png("/poster-603.jpg", 40, 60);
        assert!(a.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(&a[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes(a[16..20].try_into().unwrap()), 40);
        assert_eq!(u32::from_be_bytes(a[20..24].try_into().unwrap()), 60);
        assert!(a.ends_with(&[0xAE, 0x42, 0x60, 0x82]), "IEND's CRC");
        assert_ne!(a, png("/poster-604.jpg", 40, 60));
    }
}
