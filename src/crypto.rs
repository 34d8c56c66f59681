//! Secrets at rest (users' Plex tokens, service API keys): AES-256-GCM with a random 96-bit nonce
//! per value, stored as `v1:<nonce b64>:<ciphertext b64>`.
//!
//! The key is the data directory's `secret.key` (or `MEDIANEST_SECRET_KEY`). A check value
//! encrypted with it is kept in `settings`, so starting with the wrong key is a clear error at
//! start instead of garbage (or failures) much later.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use rusqlite::{Connection, OptionalExtension};

use crate::data_dir::SecretKey;
use crate::error::{AppError, AppResult};

const PREFIX: &str = "v1";
const CHECK_SETTING: &str = "secret_key_check";
const CHECK_PLAINTEXT: &str = "medianest-secret-key-check";

/// Encrypts and decrypts secrets with the installation's key.
#[derive(Clone)]
pub struct Cipher {
    aead: Aes256Gcm,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(****)")
    }
}

impl Cipher {
    pub fn new(key: &SecretKey) -> Self {
        Self {
            aead: Aes256Gcm::new(key.bytes().into()),
        }
    }

    /// Encrypts `plaintext` with a fresh random nonce.
    pub fn encrypt(&self, plaintext: &str) -> AppResult<String> {
        let nonce_bytes: [u8; 12] = rand::random();
        let nonce = Nonce::from_slice(&nonce_bytes);
        let ciphertext = self
            .aead
            .encrypt(nonce, plaintext.as_bytes())
            .map_err(|_| AppError::internal("encryption failed"))?;
        Ok(format!(
            "{PREFIX}:{}:{}",
            B64.encode(nonce_bytes),
            B64.encode(ciphertext)
        ))
    }

    /// Decrypts a value made by [`Cipher::encrypt`]; fails on a wrong key or a damaged value.
    pub fn decrypt(&self, stored: &str) -> AppResult<String> {
        let mut parts = stored.splitn(3, ':');
        let (Some(PREFIX), Some(nonce), Some(ciphertext)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(AppError::internal("encrypted value has an unknown format"));
        };
        let nonce = B64
            .decode(nonce)
            .ok()
            .filter(|n| n.len() == 12)
            .ok_or_else(|| AppError::internal("encrypted value has a bad nonce"))?;
        let ciphertext = B64
            .decode(ciphertext)
            .map_err(|_| AppError::internal("encrypted value is not base64"))?;
        let plaintext = self
            .aead
            .decrypt(Nonce::from_slice(&nonce), ciphertext.as_ref())
            .map_err(|_| {
                AppError::internal("cannot decrypt a stored secret (wrong key or damaged value)")
            })?;
        String::from_utf8(plaintext).map_err(|_| AppError::internal("decrypted value is not UTF-8"))
    }

    /// Whether this key is the one the database was set up with; `None` when the database
    /// records none yet. Reads only.
    pub fn opens(&self, conn: &Connection) -> Result<Option<bool>, String> {
        let stored: Option<String> = conn
            .query_row(
                "SELECT value FROM settings WHERE key = ?1",
                [CHECK_SETTING],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| format!("cannot read settings: {e}"))?;
        Ok(stored.map(|value| {
            self.decrypt(&value)
                .is_ok_and(|text| text == CHECK_PLAINTEXT)
        }))
    }

    /// Proves this key is the one the database was set up with, recording it on first use.
    pub fn verify_against(&self, conn: &Connection) -> Result<(), String> {
        match self.opens(conn)? {
            Some(true) => Ok(()),
            Some(false) => Err(
                "the secret key does not match this database: restore the secret.key \
                 that belongs to it (or set MEDIANEST_SECRET_KEY to it)"
                    .into(),
            ),
            None => {
                let value = self.encrypt(CHECK_PLAINTEXT).map_err(|e| e.to_string())?;
                conn.execute(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2)",
                    [CHECK_SETTING, value.as_str()],
                )
                .map_err(|e| format!("cannot write settings: {e}"))?;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([byte; 32]))
            .unwrap()
    }

    #[test]
    fn round_trip_with_fresh_nonces() {
        let c = Cipher::new(&key(1));
        let a = c.encrypt("plex-token-123").unwrap();
        let b = c.encrypt("plex-token-123").unwrap();
        assert_ne!(a, b, "nonce must differ");
        assert!(a.starts_with("v1:") && !a.contains("plex-token"));
        assert_eq!(c.decrypt(&a).unwrap(), "plex-token-123");
    }

    #[test]
    fn wrong_key_and_tampering_fail() {
        let a = Cipher::new(&key(1)).encrypt("x").unwrap();
        assert!(Cipher::new(&key(2)).decrypt(&a).is_err());
        let mut tampered = a.clone();
        tampered.pop();
        tampered.push(if a.ends_with('A') { 'B' } else { 'A' });
        assert!(Cipher::new(&key(1)).decrypt(&tampered).is_err());
        assert!(Cipher::new(&key(1)).decrypt("plain").is_err());
    }

    #[test]
    fn the_check_value_catches_a_wrong_key() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrations::apply(&mut conn).unwrap();
        Cipher::new(&key(1)).verify_against(&conn).unwrap();
        Cipher::new(&key(1)).verify_against(&conn).unwrap();
        let e = Cipher::new(&key(2)).verify_against(&conn).unwrap_err();
        assert!(e.contains("secret key does not match"), "{e}");
    }
}
