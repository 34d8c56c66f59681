//! Cursor pagination (SPEC section 3): `?limit=` (1-100, default 20) and `?cursor=`.
//!
//! A cursor is base64url of `<scope>\n<json of the last row's sort key and id>` plus an
//! HMAC-SHA256 tag (first 16 bytes) keyed from the installation's secret key. A malformed cursor,
//! a tampered one, or one made for another list answers 400 `INVALID_CURSOR`. Lists page by keyset
//! (`WHERE (key, id) < (?, ?)`), never OFFSET, so page N costs what page 1 does and rows inserted
//! between pages cause neither duplicates nor gaps.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

use crate::data_dir::SecretKey;
use crate::error::{AppError, AppResult, ErrorCode};

const TAG_LEN: usize = 16;
/// Longest cursor accepted (a cursor is small; this stops giant inputs early).
const MAX_CURSOR_LEN: usize = 1024;

/// Default and largest page sizes.
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

/// Signs and checks cursors.
#[derive(Clone)]
pub struct CursorCodec {
    key: [u8; 32],
}

impl std::fmt::Debug for CursorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorCodec(****)")
    }
}

impl CursorCodec {
    /// A codec keyed from (not with) the secret key, so cursors reveal nothing about it.
    pub fn new(secret: &SecretKey) -> Self {
        let mut mac = hmac(secret.bytes());
        mac.update(b"medianest cursor key");
        Self {
            key: mac.finalize().into_bytes().into(),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        hmac(&self.key)
    }

    /// Encodes the position after `value` in the list `scope`.
    pub fn encode<T: Serialize>(&self, scope: &str, value: &T) -> String {
        let mut payload = Vec::with_capacity(64);
        payload.extend_from_slice(scope.as_bytes());
        payload.push(b'\n');
        // Serializing plain keys (strings, numbers) cannot fail.
        let _ = serde_json::to_writer(&mut payload, value);
        let mut mac = self.mac();
        mac.update(&payload);
        let tag = mac.finalize().into_bytes();
        payload.extend_from_slice(&tag[..TAG_LEN]);
        B64URL.encode(payload)
    }

    /// Decodes a cursor made by [`CursorCodec::encode`] for `scope`.
    pub fn decode<T: DeserializeOwned>(&self, scope: &str, cursor: &str) -> AppResult<T> {
        let invalid = || AppError::new(ErrorCode::InvalidCursor);
        if cursor.len() > MAX_CURSOR_LEN {
            return Err(invalid());
        }
        let raw = B64URL.decode(cursor).map_err(|_| invalid())?;
        if raw.len() <= TAG_LEN {
            return Err(invalid());
        }
        let (payload, tag) = raw.split_at(raw.len() - TAG_LEN);
        let mut mac = self.mac();
        mac.update(payload);
        mac.verify_truncated_left(tag).map_err(|_| invalid())?;
        let rest = payload
            .strip_prefix(scope.as_bytes())
            .and_then(|r| r.strip_prefix(b"\n"))
            .ok_or_else(invalid)?;
        serde_json::from_slice(rest).map_err(|_| invalid())
    }
}

fn hmac(key: &[u8]) -> Hmac<Sha256> {
    match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

/// `?limit=&cursor=` as received.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct PageQuery {
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl PageQuery {
    /// The page size: 1-100, default 20; anything else is a validation error naming `limit`.
    pub fn limit(&self) -> AppResult<u32> {
        match self.limit.as_deref() {
            None | Some("") => Ok(DEFAULT_LIMIT),
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    AppError::validation([(
                        "limit",
                        format!("must be a whole number from 1 to {MAX_LIMIT}"),
                    )])
                }),
        }
    }

    /// The cursor, if any (empty counts as none).
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref().filter(|c| !c.is_empty())
    }
}

/// Trims a fetched page of `limit + 1` rows to `limit` and makes the next cursor from the last
/// row kept.
pub fn finish_page<T, K: Serialize>(
    codec: &CursorCodec,
    scope: &str,
    mut rows: Vec<T>,
    limit: u32,
    key_of: impl Fn(&T) -> K,
) -> (Vec<T>, Option<String>) {
    let limit = limit as usize;
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(|last| codec.encode(scope, &key_of(last)));
        (rows, next)
    } else {
        (rows, None)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn codec(byte: u8) -> CursorCodec {
        CursorCodec::new(
            &SecretKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([byte; 32]))
                .unwrap(),
        )
    }

    #[test]
    fn round_trip_and_tamper_detection() {
        let c = codec(1);
        let cur = c.encode("users", &(1_700_000_000_000i64, "id-9"));
        let back: (i64, String) = c.decode("users", &cur).unwrap();
        assert_eq!(back, (1_700_000_000_000, "id-9".to_owned()));

        let code = |r: AppResult<(i64, String)>| r.unwrap_err().code();
        assert_eq!(
            code(c.decode("errors", &cur)),
            ErrorCode::InvalidCursor,
            "other list"
        );
        assert_eq!(
            code(codec(2).decode("users", &cur)),
            ErrorCode::InvalidCursor,
            "other key"
        );
        assert_eq!(
            code(c.decode("users", "not-a-cursor!")),
            ErrorCode::InvalidCursor
        );
        assert_eq!(code(c.decode("users", "")), ErrorCode::InvalidCursor);
        // Flip one byte of the payload.
        let mut raw = B64URL.decode(&cur).unwrap();
        raw[8] ^= 1;
        assert_eq!(
            code(c.decode("users", &B64URL.encode(&raw))),
            ErrorCode::InvalidCursor
        );
    }

    #[test]
    fn limits() {
        let q = |l: &str| {
            PageQuery {
                limit: Some(l.into()),
                cursor: None,
            }
            .limit()
        };
        assert_eq!(PageQuery::default().limit().unwrap(), 20);
        assert_eq!(q("100").unwrap(), 100);
        assert!(q("0").is_err());
        assert!(q("101").is_err());
        assert!(q("ten").is_err());
    }

    #[test]
    fn pages_are_trimmed_and_linked() {
        let c = codec(1);
        let (rows, next) = finish_page(&c, "s", vec![1, 2, 3], 2, |r| *r);
        assert_eq!(rows, vec![1, 2]);
        assert_eq!(c.decode::<i32>("s", &next.unwrap()).unwrap(), 2);
        let (rows, next) = finish_page(&c, "s", vec![1, 2], 2, |r| *r);
        assert_eq!(rows.len(), 2);
        assert!(next.is_none());
    }
}
