//! Users: the model, its JSON shape and the queries on the `users` table (plain functions taking
//! a connection, run inside `Db::run` / `Db::write`).

use rusqlite::{Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::error::AppResult;
use crate::time::rfc3339;

/// A role (stored lowercase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::User => "user",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "user" => Some(Self::User),
            _ => None,
        }
    }
}

/// An account status (stored lowercase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Suspended,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            _ => None,
        }
    }
}

/// A row of `users` (without the encrypted Plex token).
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub plex_id: Option<String>,
    pub plex_username: Option<String>,
    pub image: Option<String>,
    pub role: Role,
    pub status: Status,
    pub password_hash: Option<String>,
    pub requires_password_change: bool,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

/// The columns [`User::from_row`] reads, in order.
pub const COLUMNS: &str = "id, username, email, name, plex_id, plex_username, image, role, status, \
                           password_hash, requires_password_change, created_at, last_login_at";

impl User {
    /// Reads a row selected with [`COLUMNS`].
    pub fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        let role: String = row.get(7)?;
        let status: String = row.get(8)?;
        Ok(Self {
            id: row.get(0)?,
            username: row.get(1)?,
            email: row.get(2)?,
            name: row.get(3)?,
            plex_id: row.get(4)?,
            plex_username: row.get(5)?,
            image: row.get(6)?,
            role: Role::parse(&role).unwrap_or(Role::User),
            status: Status::parse(&status).unwrap_or(Status::Suspended),
            password_hash: row.get(9)?,
            requires_password_change: row.get(10)?,
            created_at: row.get(11)?,
            last_login_at: row.get(12)?,
        })
    }

    /// The public JSON shape (SPEC section 3 `User`).
    pub fn view(&self) -> UserView {
        UserView {
            id: self.id.clone(),
            username: self.username.clone(),
            email: self.email.clone(),
            name: self.name.clone(),
            role: self.role,
            status: self.status,
            plex_username: self.plex_username.clone(),
            image: self.image.clone(),
            created_at: rfc3339(self.created_at),
            last_login_at: self.last_login_at.map(rfc3339),
        }
    }
}

/// `User = {id, username, email, name, role, status, plexUsername, image, createdAt, lastLoginAt}`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: Role,
    pub status: Status,
    pub plex_username: Option<String>,
    pub image: Option<String>,
    pub created_at: String,
    pub last_login_at: Option<String>,
}

/// Finds a user by id.
pub fn by_id(conn: &Connection, id: &str) -> AppResult<Option<User>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE id = ?1"))?;
    Ok(stmt.query_row([id], User::from_row).optional()?)
}

/// Finds a user by username or email (both case-insensitive).
pub fn by_login(conn: &Connection, login: &str) -> AppResult<Option<User>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM users WHERE username = ?1
         UNION ALL
         SELECT {COLUMNS} FROM users WHERE email = ?1 AND username <> ?1
         LIMIT 1"
    ))?;
    Ok(stmt.query_row([login], User::from_row).optional()?)
}

/// Finds a user by Plex account id.
pub fn by_plex_id(conn: &Connection, plex_id: &str) -> AppResult<Option<User>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE plex_id = ?1"))?;
    Ok(stmt.query_row([plex_id], User::from_row).optional()?)
}

/// Number of users.
pub fn count(conn: &Connection) -> AppResult<i64> {
    Ok(conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?)
}

/// Ids of the active admins.
pub fn active_admin_ids(conn: &Connection) -> AppResult<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM users WHERE status = 'active' AND role = 'admin' ORDER BY created_at",
    )?;
    let ids = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(ids)
}

/// A new user id (UUID v7: sorts by creation).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
