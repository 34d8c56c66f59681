//! The VAPID key pair (RFC 8292): generated at first start, kept in the data dir as `vapid.key`
//! (the private scalar, base64url, mode 0600), loaded afterwards. The public key is what browsers
//! subscribe with, so it must never change once users have subscribed: losing the file means
//! every subscription has to be made again.
//!
//! This module signs the `Authorization: vapid t=..., k=...` header; it never logs the key.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use web_push_native::jwt_simple::algorithms::{
    ECDSAP256KeyPairLike, ECDSAP256PublicKeyLike, ES256KeyPair,
};
use web_push_native::jwt_simple::claims::Claims;
use web_push_native::jwt_simple::prelude::Duration as JwtDuration;

use crate::data_dir::{DataDirError, write_private};

/// The file in the data dir holding the private key.
pub const VAPID_KEY_FILE: &str = "vapid.key";

/// The longest a VAPID token may be valid (RFC 8292 section 2: at most 24 hours).
pub const MAX_TOKEN_SECS: u64 = 24 * 60 * 60;
/// How long the tokens we sign are valid: 12 hours, well inside the limit whatever the clocks.
pub const TOKEN_SECS: u64 = 12 * 60 * 60;

/// The application server's key pair. `Debug` never shows the private half.
#[derive(Clone)]
pub struct VapidKey {
    pair: Arc<ES256KeyPair>,
    public_b64: String,
}

impl fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VapidKey")
            .field("public", &self.public_b64)
            .finish_non_exhaustive()
    }
}

impl VapidKey {
    /// Loads `<dir>/vapid.key`, or generates a new pair and writes it (0600) when missing.
    pub fn load_or_create(dir: &Path) -> Result<Self, DataDirError> {
        let path = dir.join(VAPID_KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_base64(&text).map_err(|e| {
                DataDirError(format!(
                    "{} is not a valid VAPID key: {e}; restore it from a backup, or remove it \
                     (every push subscription must then be made again)",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::from_pair(ES256KeyPair::generate());
                let private = URL_SAFE_NO_PAD.encode(key.pair.to_bytes());
                write_private(&path, &format!("{private}\n"))?;
                tracing::info!(path = %path.display(), "generated the Web Push (VAPID) key; back it up with the database");
                Ok(key)
            }
            Err(e) => Err(DataDirError(format!("cannot read {}: {e}", path.display()))),
        }
    }

    fn from_base64(text: &str) -> Result<Self, String> {
        let raw = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|e| format!("not base64url ({e})"))?;
        if raw.len() != 32 {
            return Err(format!("{} bytes, want 32", raw.len()));
        }
        let pair = ES256KeyPair::from_bytes(&raw).map_err(|_| "not a P-256 private key")?;
        Ok(Self::from_pair(pair))
    }

    fn from_pair(pair: ES256KeyPair) -> Self {
        let public = pair.public_key().public_key().to_bytes_uncompressed();
        Self {
            public_b64: URL_SAFE_NO_PAD.encode(public),
            pair: Arc::new(pair),
        }
    }

    /// The uncompressed public key (65 bytes), base64url without padding: the
    /// `applicationServerKey` browsers subscribe with, and the header's `k=`.
    pub fn public_key_b64(&self) -> &str {
        &self.public_b64
    }

    /// The `Authorization` header value for a push to `origin` (scheme, host and port of the
    /// endpoint): `vapid t=<ES256 JWT {aud, exp, sub}>, k=<public key>`.
    pub fn authorization(&self, origin: &str, subject: &str) -> Result<String, String> {
        let claims = Claims::create(JwtDuration::from_secs(TOKEN_SECS))
            .with_audience(origin)
            .with_subject(subject);
        let token = self
            .pair
            .sign(claims)
            .map_err(|e| format!("cannot sign the VAPID token: {e}"))?;
        Ok(format!("vapid t={token}, k={}", self.public_b64))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_generated_once_private_and_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let first = VapidKey::load_or_create(tmp.path()).unwrap();
        let path = tmp.path().join(VAPID_KEY_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = VapidKey::load_or_create(tmp.path()).unwrap();
        assert_eq!(first.public_key_b64(), second.public_key_b64());
        let public = URL_SAFE_NO_PAD.decode(first.public_key_b64()).unwrap();
        assert_eq!(public.len(), 65);
        assert_eq!(public[0], 0x04, "uncompressed point");
        let private = std::fs::read_to_string(&path).unwrap();
        assert!(!format!("{first:?}").contains(private.trim()));
    }

    #[test]
    fn a_damaged_key_file_stops_the_start_with_a_clear_message() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(VAPID_KEY_FILE), "short").unwrap();
        let e = VapidKey::load_or_create(tmp.path()).unwrap_err().0;
        assert!(e.contains("vapid.key") && e.contains("not a valid"), "{e}");
    }
}
