//! The first admin account, and resetting an admin's password from the shell.
//!
//! When the users table is empty at start, the local account `admin` is created: with
//! `admin.password` when configured (unattended installs: no file, no forced change), else with a
//! random 20-character password printed once in the log and written to
//! `<data_dir>/initial-admin-password` (0600) until it is changed.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::password;
use crate::config::Config;
use crate::data_dir::write_private;
use crate::users;

/// The file holding the first admin password until it is changed.
pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";

/// Where the initial password file lives.
pub fn initial_password_path(data_dir: &Path) -> PathBuf {
    data_dir.join(INITIAL_PASSWORD_FILE)
}

/// Creates the first admin when there are no users; blocking (runs at start).
pub fn ensure_admin(conn: &Connection, config: &Config, now_ms: i64) -> Result<(), String> {
    let count = users::count(conn).map_err(|e| e.to_string())?;
    if count > 0 {
        return Ok(());
    }
    let (secret, forced) = match &config.admin.password {
        Some(p) => (p.expose().to_owned(), false),
        None => (password::random(20), true),
    };
    let hash = password::hash_blocking(&secret).map_err(|e| e.to_string())?;
    conn.execute(
        "INSERT INTO users (id, username, name, role, status, password_hash,
                            requires_password_change, created_at)
         VALUES (?1, 'admin', 'Administrator', 'admin', 'active', ?2, ?3, ?4)",
        rusqlite::params![users::new_id(), hash, forced, now_ms],
    )
    .map_err(|e| format!("cannot create the admin account: {e}"))?;
    if forced {
        let path = initial_password_path(&config.data_dir);
        let _ = std::fs::remove_file(&path);
        write_private(&path, &format!("{secret}\n")).map_err(|e| e.to_string())?;
        tracing::warn!(
            "\n\
             ================================================================\n\
             MediaNest created the administrator account.\n\
             \n    username: admin\n    password: {secret}\n\n\
             The password is also in {}\n\
             You will be asked to change it at the first sign-in.\n\
             ================================================================",
            path.display()
        );
    } else {
        tracing::info!("created the admin account with the configured admin.password");
    }
    Ok(())
}

/// Sets a new random password for `username` (an admin by default), forces a change at the next
/// sign-in, ends that user's sessions and clears its sign-in lockouts (from every client), in one
/// transaction. A running server notices within a second (the auth epoch moves) and stops
/// honouring the ended sessions. Returns the new password.
pub fn reset_password(conn: &Connection, username: &str) -> Result<String, String> {
    let user = users::by_login(conn, username)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user named {username}"))?;
    let secret = password::random(20);
    let hash = password::hash_blocking(&secret).map_err(|e| e.to_string())?;
    let tx = conn.unchecked_transaction().map_err(|e| e.to_string())?;
    tx.execute(
        "UPDATE users SET password_hash = ?1, requires_password_change = 1 WHERE id = ?2",
        rusqlite::params![hash, user.id],
    )
    .map_err(|e| e.to_string())?;
    tx.execute("DELETE FROM session_tokens WHERE user_id = ?1", [&user.id])
        .map_err(|e| e.to_string())?;
    crate::ratelimit::login_failures::clear_account(&tx, &user.username)
        .map_err(|e| e.to_string())?;
    super::session::bump_auth_epoch(&tx).map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())?;
    Ok(secret)
}
