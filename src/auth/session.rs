//! Sessions (SPEC section 2): opaque tokens of 32 random bytes, only their SHA-256 stored;
//! lookups cached for up to 60 s and dropped at once on any change; sliding expiry written at most
//! once a minute per session (the cache TTL is that minute: a session is re-read, and its expiry
//! pushed forward, only when its cache entry is loaded).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::cache::TtlCache;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::db::Db;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::time::rfc3339;
use crate::users::{Role, Status};

/// The session cookie.
pub const COOKIE: &str = "medianest_session";

/// How long a session lookup is cached, and so how often its use is written back.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// The SHA-256 of a token: the cache key and (hex) the stored value.
pub type TokenHash = [u8; 32];

/// A new random token (base64url of 32 bytes from the OS RNG).
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    B64URL.encode(bytes)
}

/// Hashes a token.
pub fn hash_token(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

fn hex(hash: &TokenHash) -> String {
    use std::fmt::Write;
    hash.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// What a request needs to know about its session; cached by token hash.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub session_id: String,
    pub user_id: String,
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub plex_username: Option<String>,
    pub image: Option<String>,
    pub role: Role,
    pub status: Status,
    pub requires_password_change: bool,
    pub csrf_token: String,
    pub expires_at: i64,
}

/// The session cache plus the lifetimes.
pub struct Sessions {
    cache: TtlCache<TokenHash, Option<Arc<SessionInfo>>>,
    session_ms: i64,
    remember_ms: i64,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

/// A session just created.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub token: String,
    pub csrf_token: String,
    pub expires_at: i64,
    pub remember: bool,
}

/// One of a user's sessions, for `GET /auth/sessions`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub id: String,
    pub created_at: String,
    pub last_used_at: String,
    pub expires_at: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub current: bool,
}

impl Sessions {
    pub fn new(config: &Config, clock: SharedClock) -> Self {
        Self {
            cache: TtlCache::new("sessions", 10_000, clock),
            session_ms: i64::from(config.auth.session_hours) * 3600 * 1000,
            remember_ms: i64::from(config.auth.remember_days) * 24 * 3600 * 1000,
        }
    }

    /// Lifetime of a session.
    pub fn lifetime_ms(&self, remember: bool) -> i64 {
        if remember {
            self.remember_ms
        } else {
            self.session_ms
        }
    }

    /// Cache statistics.
    pub fn cache_stats(&self) -> crate::cache::CacheStats {
        self.cache.stats()
    }

    /// Creates a session row (inside the caller's transaction).
    pub fn create(
        &self,
        conn: &Connection,
        user_id: &str,
        remember: bool,
        user_agent: Option<&str>,
        ip: Option<&str>,
        now_ms: i64,
    ) -> AppResult<NewSession> {
        let token = new_token();
        let csrf_token = new_token();
        let id = uuid::Uuid::now_v7().to_string();
        let expires_at = now_ms + self.lifetime_ms(remember);
        let user_agent = user_agent.map(|ua| ua.chars().take(300).collect::<String>());
        conn.prepare_cached(
            "INSERT INTO session_tokens
               (id, user_id, token_hash, csrf_token, remember, user_agent, ip, created_at,
                last_used_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9)",
        )?
        .execute(rusqlite::params![
            id,
            user_id,
            hex(&hash_token(&token)),
            csrf_token,
            remember,
            user_agent,
            ip,
            now_ms,
            expires_at
        ])?;
        Ok(NewSession {
            id,
            token,
            csrf_token,
            expires_at,
            remember,
        })
    }

    /// Looks a token up: from the cache, else from the database (pushing its expiry forward when
    /// the last write is a minute old). `UNAUTHORIZED` for an unknown token, `SESSION_EXPIRED`
    /// for an expired one.
    pub async fn lookup(&self, db: &Db, token: &str, now_ms: i64) -> AppResult<Arc<SessionInfo>> {
        let hash = hash_token(token);
        let session_ms = self.session_ms;
        let remember_ms = self.remember_ms;
        let db = db.clone();
        let found = self
            .cache
            .get_or_load(hash, CACHE_TTL, move || async move {
                db.run(move |conn| load(conn, &hash, now_ms, session_ms, remember_ms))
                    .await
            })
            .await?;
        match found.value {
            None => Err(AppError::new(ErrorCode::Unauthorized)),
            Some(info) if info.expires_at <= now_ms => {
                Err(AppError::new(ErrorCode::SessionExpired))
            }
            Some(info) => Ok(info),
        }
    }

    /// Drops one token's cache entry.
    pub fn forget_token(&self, token: &str) {
        self.cache.invalidate(&hash_token(token));
    }

    /// Drops every cached session (after a change to a user: role, status, password, delete).
    /// Sessions are few and reloading one costs one indexed read.
    pub fn forget_all(&self) {
        self.cache.clear();
    }

    /// A user's live sessions, newest first.
    pub fn list(
        conn: &Connection,
        user_id: &str,
        current_id: &str,
        now_ms: i64,
    ) -> AppResult<Vec<SessionView>> {
        let mut stmt = conn.prepare_cached(
            "SELECT id, created_at, last_used_at, expires_at, user_agent, ip
             FROM session_tokens WHERE user_id = ?1 AND expires_at > ?2
             ORDER BY expires_at DESC LIMIT 100",
        )?;
        let rows = stmt.query_map(rusqlite::params![user_id, now_ms], |r| {
            let id: String = r.get(0)?;
            Ok(SessionView {
                current: id == current_id,
                id,
                created_at: rfc3339(r.get(1)?),
                last_used_at: rfc3339(r.get(2)?),
                expires_at: rfc3339(r.get(3)?),
                user_agent: r.get(4)?,
                ip: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes one session of a user; false when it is not theirs (or does not exist).
    pub fn delete_one(conn: &Connection, user_id: &str, session_id: &str) -> AppResult<bool> {
        let n = conn
            .prepare_cached("DELETE FROM session_tokens WHERE id = ?1 AND user_id = ?2")?
            .execute([session_id, user_id])?;
        Ok(n > 0)
    }

    /// Deletes a user's sessions except `keep`; the number deleted.
    pub fn delete_all(conn: &Connection, user_id: &str, keep: Option<&str>) -> AppResult<usize> {
        Ok(conn
            .prepare_cached("DELETE FROM session_tokens WHERE user_id = ?1 AND id IS NOT ?2")?
            .execute(rusqlite::params![user_id, keep])?)
    }
}

fn load(
    conn: &Connection,
    hash: &TokenHash,
    now_ms: i64,
    session_ms: i64,
    remember_ms: i64,
) -> AppResult<Option<Arc<SessionInfo>>> {
    let row = conn
        .prepare_cached(
            "SELECT s.id, s.user_id, s.csrf_token, s.remember, s.last_used_at, s.expires_at,
                    u.username, u.role, u.status, u.requires_password_change,
                    u.email, u.name, u.plex_username, u.image
             FROM session_tokens s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ?1",
        )?
        .query_row([hex(hash)], |r| {
            Ok((
                SessionInfo {
                    session_id: r.get(0)?,
                    user_id: r.get(1)?,
                    csrf_token: r.get(2)?,
                    expires_at: r.get(5)?,
                    username: r.get(6)?,
                    role: Role::parse(&r.get::<_, String>(7)?).unwrap_or(Role::User),
                    status: Status::parse(&r.get::<_, String>(8)?).unwrap_or(Status::Suspended),
                    requires_password_change: r.get(9)?,
                    email: r.get(10)?,
                    name: r.get(11)?,
                    plex_username: r.get(12)?,
                    image: r.get(13)?,
                },
                r.get::<_, bool>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .optional()?;
    let Some((mut info, remember, last_used_at)) = row else {
        return Ok(None);
    };
    // Slide the expiry forward, at most once a minute (this runs once per cache TTL).
    if info.expires_at > now_ms && now_ms - last_used_at >= CACHE_TTL.as_millis() as i64 {
        let lifetime = if remember { remember_ms } else { session_ms };
        info.expires_at = now_ms + lifetime;
        conn.prepare_cached(
            "UPDATE session_tokens SET last_used_at = ?1, expires_at = ?2 WHERE id = ?3",
        )?
        .execute(rusqlite::params![now_ms, info.expires_at, info.session_id])?;
    }
    Ok(Some(Arc::new(info)))
}

/// The `settings` row that changes whenever accounts are changed from outside the server
/// (`medianest reset-admin-password` runs as another process): a running server polls it and,
/// when it moves, drops its session cache (so ended sessions stop working at once instead of
/// after up to [`CACHE_TTL`]) and its in-memory sign-in failure windows.
pub const AUTH_EPOCH_KEY: &str = "auth_epoch";

/// How often a running server reads [`AUTH_EPOCH_KEY`]: one primary-key read.
pub const AUTH_EPOCH_POLL: Duration = Duration::from_secs(1);

/// Moves the auth epoch on (inside the caller's transaction).
pub fn bump_auth_epoch(conn: &Connection) -> AppResult<()> {
    conn.prepare_cached(
        "INSERT INTO settings (key, value) VALUES (?1, '1')
         ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
    )?
    .execute([AUTH_EPOCH_KEY])?;
    Ok(())
}

/// The current auth epoch (`None` until it is first moved).
pub fn auth_epoch(conn: &Connection) -> AppResult<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
        .query_row([AUTH_EPOCH_KEY], |r| r.get(0))
        .optional()?)
}

/// Background task: polls the auth epoch every [`AUTH_EPOCH_POLL`] until shutdown and, when it
/// moves, forgets the cached sessions and the sign-in failure windows.
pub async fn watch_auth_epoch(state: crate::state::AppState) {
    let token = state.shutdown_token().clone();
    let mut seen = match state.db().read(auth_epoch).await {
        Ok(epoch) => epoch,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the auth epoch");
            None
        }
    };
    let mut ticks = tokio::time::interval(AUTH_EPOCH_POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match state.db().read(auth_epoch).await {
            Ok(epoch) if epoch != seen => {
                tracing::info!(
                    "accounts were changed outside the server (reset-admin-password): \
                     cached sessions and sign-in failure windows dropped"
                );
                state.sessions().forget_all();
                state.limiters().clear_login_windows();
                seen = epoch;
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "could not read the auth epoch"),
        }
    }
}

/// The `Set-Cookie` value for a new session; `path` is `ServerConfig::cookie_path`.
pub fn cookie(
    token: &str,
    session: &NewSession,
    secure: bool,
    remember_ms: i64,
    path: &str,
) -> String {
    let mut c = format!("{COOKIE}={token}; Path={path}; HttpOnly; SameSite=Lax");
    if secure {
        c.push_str("; Secure");
    }
    if session.remember {
        c.push_str(&format!("; Max-Age={}", remember_ms / 1000));
    }
    c
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool, path: &str) -> String {
    let mut c = format!("{COOKIE}=; Path={path}; HttpOnly; SameSite=Lax; Max-Age=0");
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// Reads a cookie's value from the request's `Cookie` headers.
pub fn read_cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = new_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, new_token());
        assert_eq!(hex(&hash_token(&a)).len(), 64);
        assert_ne!(hex(&hash_token(&a)), a);
    }

    #[test]
    fn cookies_are_read_from_any_cookie_header() {
        let mut h = axum::http::HeaderMap::new();
        h.append(
            axum::http::header::COOKIE,
            "theme=dark; medianest_session=abc123".parse().unwrap(),
        );
        assert_eq!(read_cookie(&h, COOKIE), Some("abc123"));
        assert_eq!(read_cookie(&h, "theme"), Some("dark"));
        assert_eq!(read_cookie(&h, "none"), None);
    }
}
