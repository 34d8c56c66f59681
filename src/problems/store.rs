//! The `problem_reports` and `problem_comments` queries (plain functions on a connection).
//! The lists page by keyset on `(created_at, id)`, newest first, through the indexes of
//! migration 0016.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::changes::NewComment;
use crate::error::AppResult;
use crate::time::rfc3339;

/// A comment from Seerr within this long of an identical one by the same Seerr account on the
/// same problem is the same comment delivered twice: Seerr's webhook carries no comment id to
/// tell them apart.
pub const ECHO_WINDOW_MS: i64 = 15 * 60 * 1000;

/// A stored problem report, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProblemRow {
    pub id: String,
    pub user_id: String,
    /// The reporter's username (admin list only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub media_type: String,
    pub tmdb_id: i64,
    pub title: String,
    pub poster_path: Option<String>,
    pub seerr_issue_id: i64,
    #[serde(rename = "type")]
    pub problem_type: String,
    pub message: String,
    pub season: Option<i64>,
    pub episode: Option<i64>,
    pub status: String,
    pub comment_count: i64,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip)]
    pub created_at_ms: i64,
    /// The Seerr account the issue was created as; `None` for rows older than migration 0017.
    #[serde(skip)]
    pub seerr_user_id: Option<i64>,
}

/// One comment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommentRow {
    pub id: String,
    /// The MediaNest user who wrote it here; `None` when it came from Seerr.
    pub user_id: Option<String>,
    pub author: String,
    pub message: String,
    pub created_at: String,
}

/// What [`insert`] stores.
#[derive(Debug, Clone)]
pub struct NewProblem {
    pub id: String,
    pub user_id: String,
    pub media_type: String,
    pub tmdb_id: i64,
    pub title: String,
    pub poster_path: Option<String>,
    pub seerr_media_id: i64,
    pub seerr_issue_id: i64,
    pub problem_type: String,
    pub message: String,
    pub season: Option<i64>,
    pub episode: Option<i64>,
    pub status: String,
    pub now_ms: i64,
    /// The Seerr account the issue was created as.
    pub seerr_user_id: Option<i64>,
}

const COLUMNS: &str = "p.id, p.user_id, u.username, p.media_type, p.tmdb_id, p.title, \
     p.poster_path, p.seerr_issue_id, p.problem_type, p.message, p.season, p.episode, p.status, \
     p.comment_count, p.created_at, p.updated_at, p.seerr_user_id";

fn from_row(row: &Row<'_>) -> rusqlite::Result<ProblemRow> {
    let created_at_ms: i64 = row.get(14)?;
    Ok(ProblemRow {
        id: row.get(0)?,
        user_id: row.get(1)?,
        username: row.get(2)?,
        media_type: row.get(3)?,
        tmdb_id: row.get(4)?,
        title: row.get(5)?,
        poster_path: row.get(6)?,
        seerr_issue_id: row.get(7)?,
        problem_type: row.get(8)?,
        message: row.get(9)?,
        season: row.get(10)?,
        episode: row.get(11)?,
        status: row.get(12)?,
        comment_count: row.get(13)?,
        created_at: rfc3339(created_at_ms),
        updated_at: rfc3339(row.get(15)?),
        created_at_ms,
        seerr_user_id: row.get(16)?,
    })
}

/// Stores a problem unless one with its Seerr issue id exists (the webhook about it may have
/// stored it first); answers the stored row either way.
pub fn insert(conn: &Connection, new: &NewProblem) -> AppResult<Option<ProblemRow>> {
    write(conn, new, "DO NOTHING")
}

/// Stores the problem MediaNest itself just reported on Seerr: a row the `ISSUE_CREATED`
/// webhook stored first (it can only guess the reporter from Seerr's account, which is the
/// API key's admin when the report was made as them) takes this report's reporter and fields.
pub fn upsert_own(conn: &Connection, new: &NewProblem) -> AppResult<Option<ProblemRow>> {
    write(
        conn,
        new,
        "DO UPDATE SET
             user_id = excluded.user_id, media_type = excluded.media_type,
             tmdb_id = excluded.tmdb_id, title = excluded.title,
             poster_path = excluded.poster_path, seerr_media_id = excluded.seerr_media_id,
             problem_type = excluded.problem_type, message = excluded.message,
             season = excluded.season, episode = excluded.episode,
             seerr_user_id = excluded.seerr_user_id",
    )
}

/// Inserts `new`, with `on_conflict` deciding what an existing row of the same Seerr issue
/// becomes, and answers the issue's row.
fn write(conn: &Connection, new: &NewProblem, on_conflict: &str) -> AppResult<Option<ProblemRow>> {
    conn.prepare_cached(&format!(
        "INSERT INTO problem_reports (id, user_id, media_type, tmdb_id, title, poster_path,
                                      seerr_media_id, seerr_issue_id, problem_type, message,
                                      season, episode, status, created_at, updated_at,
                                      seerr_user_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14, ?15)
         ON CONFLICT (seerr_issue_id) {on_conflict}"
    ))?
    .execute(params![
        new.id,
        new.user_id,
        new.media_type,
        new.tmdb_id,
        new.title,
        new.poster_path,
        new.seerr_media_id,
        new.seerr_issue_id,
        new.problem_type,
        new.message,
        new.season,
        new.episode,
        new.status,
        new.now_ms,
        new.seerr_user_id,
    ])?;
    by_issue(conn, new.seerr_issue_id)
}

/// A problem by id.
pub fn get(conn: &Connection, id: &str) -> AppResult<Option<ProblemRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM problem_reports p JOIN users u ON u.id = p.user_id
             WHERE p.id = ?1"
        ))?
        .query_row([id], from_row)
        .optional()?)
}

/// A problem by its Seerr issue id.
pub fn by_issue(conn: &Connection, seerr_issue_id: i64) -> AppResult<Option<ProblemRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM problem_reports p JOIN users u ON u.id = p.user_id
             WHERE p.seerr_issue_id = ?1"
        ))?
        .query_row([seerr_issue_id], from_row)
        .optional()?)
}

/// Which problems a list shows.
#[derive(Debug, Clone)]
pub enum Filter {
    /// One user's, any status.
    User(String),
    /// Everyone's with this status.
    Status(String),
    /// Everyone's.
    All,
}

/// One page (`limit + 1` rows, for `finish_page`) after `after` (`created_at`, `id`), newest
/// first.
pub fn list(
    conn: &Connection,
    filter: &Filter,
    after: Option<&(i64, String)>,
    limit: u32,
) -> AppResult<Vec<ProblemRow>> {
    let (after_ms, after_id) = after
        .cloned()
        .unwrap_or((i64::MAX, String::from("\u{10FFFF}")));
    let take = i64::from(limit) + 1;
    let (index, condition, key) = match filter {
        Filter::User(user) => (
            "problem_reports_user_created",
            "p.user_id = ?1",
            user.as_str(),
        ),
        Filter::Status(status) => (
            "problem_reports_status_created",
            "p.status = ?1",
            status.as_str(),
        ),
        Filter::All => ("problem_reports_created", "?1 = ?1", ""),
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM problem_reports p INDEXED BY {index}
         JOIN users u ON u.id = p.user_id
         WHERE {condition} AND (p.created_at, p.id) < (?2, ?3)
         ORDER BY p.created_at DESC, p.id DESC LIMIT ?4"
    );
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(params![key, after_ms, after_id, take], from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// How many problems `user_id` reported since `since_ms`.
pub fn reported_since(conn: &Connection, user_id: &str, since_ms: i64) -> AppResult<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM problem_reports INDEXED BY problem_reports_user_created
             WHERE user_id = ?1 AND created_at >= ?2",
        )?
        .query_row(params![user_id, since_ms], |r| r.get(0))?)
}

/// How many comments `user_id` wrote here since `since_ms`.
pub fn commented_since(conn: &Connection, user_id: &str, since_ms: i64) -> AppResult<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM problem_comments INDEXED BY problem_comments_user_created
             WHERE user_id = ?1 AND created_at >= ?2",
        )?
        .query_row(params![user_id, since_ms], |r| r.get(0))?)
}

/// A problem's comments, oldest first.
pub fn comments(conn: &Connection, problem_id: &str) -> AppResult<Vec<CommentRow>> {
    let rows = conn
        .prepare_cached(
            "SELECT id, user_id, author, message, created_at FROM problem_comments
             WHERE problem_id = ?1 ORDER BY created_at, id",
        )?
        .query_map([problem_id], |r| {
            Ok(CommentRow {
                id: r.get(0)?,
                user_id: r.get(1)?,
                author: r.get(2)?,
                message: r.get(3)?,
                created_at: rfc3339(r.get(4)?),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Adds a comment; true when added. A comment from Seerr (not `echo_pending`) is not added
/// when it is the awaited echo of one made here (same Seerr account and text as the webhook
/// carries it; the echo is then no longer awaited) or arrives again within [`ECHO_WINDOW_MS`]
/// (a redelivery). Another account's identical words are a new comment.
pub fn add_comment(
    conn: &Connection,
    problem_id: &str,
    comment: &NewComment,
    now_ms: i64,
) -> AppResult<bool> {
    if !comment.echo_pending {
        let found: Option<(String, bool)> = conn
            .prepare_cached(
                "SELECT id, echo_pending FROM problem_comments
                 WHERE problem_id = ?1 AND seerr_message = ?2
                   AND (seerr_author = ?3 OR seerr_author IS NULL OR ?3 IS NULL)
                   AND (echo_pending = 1 OR created_at > ?4)
                 ORDER BY echo_pending DESC, created_at LIMIT 1",
            )?
            .query_row(
                params![
                    problem_id,
                    comment.seerr_message,
                    comment.seerr_author,
                    now_ms - ECHO_WINDOW_MS
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((id, pending)) = found {
            if pending {
                conn.prepare_cached("UPDATE problem_comments SET echo_pending = 0 WHERE id = ?1")?
                    .execute([id])?;
            }
            return Ok(false);
        }
    }
    conn.prepare_cached(
        "INSERT INTO problem_comments (id, problem_id, user_id, author, message, created_at,
                                       seerr_author, seerr_message, seerr_comment_id,
                                       echo_pending)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        uuid::Uuid::now_v7().to_string(),
        problem_id,
        comment.user_id,
        comment.author,
        comment.message,
        now_ms,
        comment.seerr_author,
        comment.seerr_message,
        comment.seerr_comment_id,
        comment.echo_pending,
    ])?;
    conn.prepare_cached(
        "UPDATE problem_reports SET comment_count = comment_count + 1, updated_at = ?2
         WHERE id = ?1",
    )?
    .execute(params![problem_id, now_ms])?;
    Ok(true)
}

/// Sets the status; true when it changed.
pub fn set_status(conn: &Connection, id: &str, status: &str, now_ms: i64) -> AppResult<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE problem_reports SET status = ?2, updated_at = ?3
             WHERE id = ?1 AND status <> ?2",
        )?
        .execute(params![id, status, now_ms])?;
    Ok(changed > 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrations::apply(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO users (id, username, created_at) VALUES ('u1', 'alice', 0)",
            [],
        )
        .unwrap();
        conn
    }

    fn new(issue: i64, at: i64) -> NewProblem {
        NewProblem {
            id: format!("p{issue}"),
            user_id: "u1".into(),
            media_type: "movie".into(),
            tmdb_id: 603,
            title: "The Matrix".into(),
            poster_path: None,
            seerr_media_id: 1,
            seerr_issue_id: issue,
            problem_type: "audio".into(),
            message: "no sound".into(),
            season: None,
            episode: None,
            status: "open".into(),
            now_ms: at,
            seerr_user_id: Some(10),
        }
    }

    #[test]
    fn the_lists_use_their_indexes() {
        let conn = db();
        for filter in [
            Filter::User("u1".into()),
            Filter::Status("open".into()),
            Filter::All,
        ] {
            let (index, condition) = match &filter {
                Filter::User(_) => ("problem_reports_user_created", "p.user_id = 'u1'"),
                Filter::Status(_) => ("problem_reports_status_created", "p.status = 'open'"),
                Filter::All => ("problem_reports_created", "1 = 1"),
            };
            let sql = format!(
                "SELECT {COLUMNS} FROM problem_reports p INDEXED BY {index}
                 JOIN users u ON u.id = p.user_id
                 WHERE {condition} AND (p.created_at, p.id) < (5, 'x')
                 ORDER BY p.created_at DESC, p.id DESC LIMIT 3"
            );
            crate::db::assert_indexed(&conn, &sql);
            assert!(list(&conn, &filter, None, 10).unwrap().is_empty());
        }
        crate::db::assert_indexed(
            &conn,
            "SELECT count(*) FROM problem_reports INDEXED BY problem_reports_user_created
             WHERE user_id = 'u1' AND created_at >= 5",
        );
        assert_eq!(reported_since(&conn, "u1", 0).unwrap(), 0);
        crate::db::assert_indexed(
            &conn,
            "SELECT count(*) FROM problem_comments INDEXED BY problem_comments_user_created
             WHERE user_id = 'u1' AND created_at >= 5",
        );
        assert_eq!(commented_since(&conn, "u1", 0).unwrap(), 0);
        crate::db::assert_indexed(
            &conn,
            "SELECT id, user_id, author, message, created_at FROM problem_comments
             WHERE problem_id = 'p' ORDER BY created_at, id",
        );
    }

    #[test]
    fn insert_is_once_per_issue_and_lists_page_newest_first() {
        let conn = db();
        let first = insert(&conn, &new(7, 10)).unwrap().unwrap();
        let mut again = new(7, 11);
        again.id = "other".into();
        assert_eq!(insert(&conn, &again).unwrap().unwrap().id, first.id);
        insert(&conn, &new(8, 20)).unwrap();
        insert(&conn, &new(9, 30)).unwrap();
        let page = list(&conn, &Filter::User("u1".into()), None, 2).unwrap();
        let ids: Vec<_> = page.iter().map(|p| p.seerr_issue_id).collect();
        assert_eq!(ids, [9, 8, 7], "limit + 1 rows, newest first");
        let after = (page[1].created_at_ms, page[1].id.clone());
        let rest = list(&conn, &Filter::Status("open".into()), Some(&after), 2).unwrap();
        assert_eq!(
            rest.iter().map(|p| p.seerr_issue_id).collect::<Vec<_>>(),
            [7]
        );
    }

    fn said(user: Option<&str>, by: &str, text: &str, ours: bool) -> NewComment {
        NewComment {
            user_id: user.map(str::to_owned),
            author: by.into(),
            message: text.into(),
            seerr_author: Some(format!("{by}@example.com")),
            seerr_message: crate::integrations::overseerr::webhook::template_filled(
                "comment_message",
                text,
            ),
            seerr_comment_id: None,
            echo_pending: ours,
        }
    }

    #[test]
    fn comments_are_deduplicated_within_the_window_and_status_changes_once() {
        let conn = db();
        let p = insert(&conn, &new(7, 10)).unwrap().unwrap();
        // Made here, then its echo (rewritten by Seerr's template filling) is not a new one.
        let ours = said(Some("u1"), "alice", "costs $$5", true);
        assert!(add_comment(&conn, &p.id, &ours, 100).unwrap());
        let echo = NewComment {
            message: "costs $5".into(),
            ..said(None, "alice", "costs $$5", false)
        };
        assert_eq!(echo.seerr_message, "costs $5");
        assert!(!add_comment(&conn, &p.id, &echo, 200).unwrap());
        // The admin's identical words in Seerr are a new comment; their redelivery is not.
        let admin = said(None, "owner", "costs $5", false);
        assert!(add_comment(&conn, &p.id, &admin, 300).unwrap());
        assert!(!add_comment(&conn, &p.id, &admin, 400).unwrap());
        // After the window the same words are said again.
        assert!(add_comment(&conn, &p.id, &admin, 300 + ECHO_WINDOW_MS + 1).unwrap());
        assert_eq!(comments(&conn, &p.id).unwrap().len(), 3);
        assert_eq!(get(&conn, &p.id).unwrap().unwrap().comment_count, 3);
        assert!(set_status(&conn, &p.id, "resolved", 300).unwrap());
        assert!(!set_status(&conn, &p.id, "resolved", 301).unwrap());
        assert!(set_status(&conn, &p.id, "open", 302).unwrap());
    }
}
