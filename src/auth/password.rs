//! Passwords: argon2id with the OWASP parameters (19 MiB, t=2, p=1), always computed on the
//! blocking pool behind the CPU gate, never on an async worker.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::error::{AppError, AppResult};

/// Shortest and longest password accepted when one is set.
pub const MIN_LEN: usize = 10;
pub const MAX_LEN: usize = 256;

fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The hash of a random password nobody knows (it was thrown away): verifying against it for
/// unknown users makes a failed sign-in take the same time whether or not the account exists.
/// A constant, so no start-up work (and no 19 MiB allocation) is needed to have it.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$bTSdoKbh8PavuTdM0HL82g$RP1T+XfXF9Nq7r1iH8xXZAlWqxZhqvhfy2hdgA9Kw+I";

/// Checks the length rule; the reason names the rule.
pub fn check_policy(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(format!("must be at least {MIN_LEN} characters"));
    }
    if n > MAX_LEN {
        return Err(format!("must be at most {MAX_LEN} characters"));
    }
    Ok(())
}

/// Hashes synchronously (for the CLI and first start, outside the runtime).
pub fn hash_blocking(password: &str) -> AppResult<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::internal(format!("hash password: {e}")))
}

/// Verifies synchronously; a missing or malformed hash verifies against the dummy hash (false).
pub fn verify_blocking(password: &str, hash: Option<&str>) -> bool {
    let (hash, real) = match hash {
        Some(h) => (h, true),
        None => (DUMMY_HASH, false),
    };
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let ok = hasher()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && real
}

/// Hashes on the blocking pool.
pub async fn hash(gate: &Arc<Semaphore>, password: String) -> AppResult<String> {
    crate::blocking::run_gated(gate, move || hash_blocking(&password)).await
}

/// Verifies on the blocking pool.
pub async fn verify(
    gate: &Arc<Semaphore>,
    password: String,
    hash: Option<String>,
) -> AppResult<bool> {
    crate::blocking::run_gated(gate, move || {
        Ok(verify_blocking(&password, hash.as_deref()))
    })
    .await
}

/// Verifies on the blocking pool, waiting at most `wait` for a slot of the CPU gate: when it
/// stays busy that long, `SERVICE_UNAVAILABLE` ("Sign-in is temporarily unavailable", retry
/// after 1 s) and no password is checked.
pub async fn verify_within(
    gate: &Arc<Semaphore>,
    wait: std::time::Duration,
    password: String,
    hash: Option<String>,
) -> AppResult<bool> {
    let permit = tokio::time::timeout(wait, gate.clone().acquire_owned())
        .await
        .map_err(|_| busy())?
        .map_err(|_| AppError::internal("blocking gate closed"))?;
    crate::blocking::run_with_permit(permit, move || {
        Ok(verify_blocking(&password, hash.as_deref()))
    })
    .await
}

/// The answer when the CPU gate stays busy.
fn busy() -> AppError {
    AppError::Api {
        code: crate::error::ErrorCode::ServiceUnavailable,
        service: Some("Sign-in"),
        details: None,
        retry_after: Some(1),
    }
}

/// A random password of `len` characters from an unambiguous alphabet.
pub fn random(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    use rand::Rng;
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let h = hash_blocking("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_blocking("correct horse battery", Some(&h)));
        assert!(!verify_blocking("wrong horse battery", Some(&h)));
        assert!(!verify_blocking("anything", None));
        assert!(!verify_blocking("anything", Some("not a hash")));
    }

    #[test]
    fn the_dummy_hash_uses_the_same_parameters() {
        assert!(DUMMY_HASH.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[test]
    fn policy_and_random_passwords() {
        assert!(check_policy("short").is_err());
        assert!(check_policy(&"x".repeat(257)).is_err());
        assert!(check_policy("ten chars!").is_ok());
        let p = random(20);
        assert_eq!(p.chars().count(), 20);
        assert_ne!(p, random(20));
    }
}
