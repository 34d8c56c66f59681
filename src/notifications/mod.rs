//! Notifications: the `notifications` table, the functions other modules call to notify users,
//! and the user's endpoints (`GET /notifications`, `POST /notifications/{id}/read`,
//! `POST /notifications/read-all`).
//!
//! Creating is split in two so that no event announces a row that was rolled back: [`create`]
//! (and [`create_for_users`], [`create_for_admins`]) run inside the caller's write transaction,
//! and [`publish_created`] / [`publish_all_created`] run after it committed. Rows older than 90
//! days are deleted by `crate::housekeeping`. A user only ever reaches their own rows: every
//! query here is keyed by the caller's user id, and another user's id answers 404.
//!
//! Beside them: [`channels`], the senders that take a notification out of the server (email,
//! ntfy, Gotify, Discord, webhook), and [`channel_settings`], the admin's settings for them.

pub mod admin_log;
pub mod announcements;
pub mod channel_settings;
pub mod channels;
pub mod outbox;
pub mod prefs;
pub mod worker;

use axum::extract::{Path, Query, State};
use axum::http::Method;
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::events::{Audience, Event, EventBus, kind};
use crate::pagination::{PageQuery, finish_page};
use crate::response::ApiResponse;
use crate::routes::{Access, Routes};
use crate::state::AppState;
use crate::time::rfc3339;
use crate::users;

/// Cursor scopes: a cursor of one list is refused by the other.
const SCOPE_ALL: &str = "notifications";
const SCOPE_UNREAD: &str = "notifications.unread";

/// `Notification = {id, type, title, message, read, metadata, createdAt, readAt}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub id: String,
    /// What happened, e.g. `user.signup`, `request.status`, `download.failed`, `service.down`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub message: String,
    pub read: bool,
    pub metadata: Option<Value>,
    pub created_at: String,
    pub read_at: Option<String>,
    /// `created_at` as stored (Unix ms): the list's sort key.
    #[serde(skip)]
    pub created_at_ms: i64,
}

/// The columns [`from_row`] reads, in order.
const COLUMNS: &str = "id, type, title, message, read, metadata, created_at, read_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Notification> {
    let metadata: Option<String> = row.get(5)?;
    let created_at_ms: i64 = row.get(6)?;
    let read_at: Option<i64> = row.get(7)?;
    Ok(Notification {
        id: row.get(0)?,
        kind: row.get(1)?,
        title: row.get(2)?,
        message: row.get(3)?,
        read: row.get(4)?,
        // The column is CHECKed to be valid JSON.
        metadata: metadata.and_then(|m| serde_json::from_str(&m).ok()),
        created_at: rfc3339(created_at_ms),
        read_at: read_at.map(rfc3339),
        created_at_ms,
    })
}

/// Stores a notification for `user_id`, with its deliveries to the user's channels in the
/// outbox. Call inside the write transaction that made the change it reports, then
/// [`publish_created`] once that transaction committed (which also wakes the delivery worker).
pub fn create(
    conn: &Connection,
    user_id: &str,
    kind: &str,
    title: &str,
    message: &str,
    metadata: Option<Value>,
    now_ms: i64,
) -> AppResult<Notification> {
    let metadata = metadata.filter(|m| !m.is_null());
    let id = uuid::Uuid::now_v7().to_string();
    conn.prepare_cached(
        "INSERT INTO notifications (id, user_id, type, title, message, metadata, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(rusqlite::params![
        id,
        user_id,
        kind,
        title,
        message,
        metadata.as_ref().map(Value::to_string),
        now_ms
    ])?;
    let notification = Notification {
        id,
        kind: kind.to_owned(),
        title: title.to_owned(),
        message: message.to_owned(),
        read: false,
        metadata,
        created_at: rfc3339(now_ms),
        read_at: None,
        created_at_ms: now_ms,
    };
    // Its deliveries to the user's channels commit (or roll back) with it.
    outbox::enqueue(conn, user_id, &notification)?;
    Ok(notification)
}

/// [`create`] for each of `user_ids` (e.g. a request's owner and followers); returns each user
/// with their notification, for [`publish_all_created`].
pub fn create_for_users(
    conn: &Connection,
    user_ids: &[String],
    kind: &str,
    title: &str,
    message: &str,
    metadata: Option<Value>,
    now_ms: i64,
) -> AppResult<Vec<(String, Notification)>> {
    user_ids
        .iter()
        .map(|user_id| {
            let made = create(
                conn,
                user_id,
                kind,
                title,
                message,
                metadata.clone(),
                now_ms,
            )?;
            Ok((user_id.clone(), made))
        })
        .collect()
}

/// [`create`] for every active admin (a service went down, a new Plex user signed up).
pub fn create_for_admins(
    conn: &Connection,
    kind: &str,
    title: &str,
    message: &str,
    metadata: Option<Value>,
    now_ms: i64,
) -> AppResult<Vec<(String, Notification)>> {
    let admins = users::active_admin_ids(conn)?;
    create_for_users(conn, &admins, kind, title, message, metadata, now_ms)
}

/// Announces a committed notification to its user (`notification.created`).
pub fn publish_created(bus: &EventBus, user_id: &str, notification: &Notification) {
    bus.wake_outbox();
    bus.publish(Event::new(
        kind::NOTIFICATION_CREATED,
        Audience::User(user_id.to_owned()),
        notification,
    ));
}

/// [`publish_created`] for each of the pairs [`create_for_users`] / [`create_for_admins`] return.
pub fn publish_all_created(bus: &EventBus, created: &[(String, Notification)]) {
    for (user_id, notification) in created {
        publish_created(bus, user_id, notification);
    }
}

/// The user's unread notifications.
pub fn unread_count(conn: &Connection, user_id: &str) -> AppResult<i64> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM notifications WHERE user_id = ?1 AND read = 0")?
        .query_row([user_id], |r| r.get(0))?)
}

/// The list query: newest first, after `(created_at, id)`; `limit` rows.
///
/// The unfiltered list merges the `read = 0` and `read = 1` ranges of the index
/// `(user_id, read, created_at, id)`: each range is already in order, so SQLite merges them
/// without sorting and stops after `limit` rows, whatever page this is.
const LIST_ALL: &str = "SELECT id, type, title, message, read, metadata, created_at, read_at
       FROM notifications
      WHERE user_id = ?1 AND read = 0 AND (created_at, id) < (?2, ?3)
     UNION ALL
     SELECT id, type, title, message, read, metadata, created_at, read_at
       FROM notifications
      WHERE user_id = ?1 AND read = 1 AND (created_at, id) < (?2, ?3)
     ORDER BY created_at DESC, id DESC
     LIMIT ";

const LIST_UNREAD: &str = "SELECT id, type, title, message, read, metadata, created_at, read_at
       FROM notifications
      WHERE user_id = ?1 AND read = 0 AND (created_at, id) < (?2, ?3)
     ORDER BY created_at DESC, id DESC
     LIMIT ";

/// A page of the user's notifications, newest first, strictly after `before`
/// (`(i64::MAX, "")` for the first page).
pub fn list(
    conn: &Connection,
    user_id: &str,
    unread_only: bool,
    before: (i64, &str),
    limit: u32,
) -> AppResult<Vec<Notification>> {
    let sql = if unread_only { LIST_UNREAD } else { LIST_ALL };
    // The limit goes into the text: a bound LIMIT makes SQLite re-prepare on every execution.
    let mut stmt = conn.prepare_cached(&format!("{sql}{limit}"))?;
    let rows = stmt
        .query_map(rusqlite::params![user_id, before.0, before.1], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Marks one of the user's notifications read (keeping the first `read_at`); `None` when the
/// user has no notification with that id.
pub fn mark_read(
    conn: &Connection,
    user_id: &str,
    id: &str,
    now_ms: i64,
) -> AppResult<Option<Notification>> {
    conn.prepare_cached(
        "UPDATE notifications SET read = 1, read_at = ?3
          WHERE id = ?1 AND user_id = ?2 AND read = 0",
    )?
    .execute(rusqlite::params![id, user_id, now_ms])?;
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE id = ?1 AND user_id = ?2"
        ))?
        .query_row([id, user_id], from_row)
        .optional()?)
}

/// Marks all the user's notifications read; returns how many were unread.
pub fn mark_all_read(conn: &Connection, user_id: &str, now_ms: i64) -> AppResult<usize> {
    Ok(conn
        .prepare_cached(
            "UPDATE notifications SET read = 1, read_at = ?2 WHERE user_id = ?1 AND read = 0",
        )?
        .execute(rusqlite::params![user_id, now_ms])?)
}

/// The notification routes (under `/api/v1`).
pub fn routes() -> Routes {
    Routes::new()
        .add(
            Method::GET,
            "/notifications",
            Access::User,
            list_notifications,
        )
        .add(
            Method::POST,
            "/notifications/read-all",
            Access::User,
            read_all_notifications,
        )
        .add(
            Method::POST,
            "/notifications/{id}/read",
            Access::User,
            read_notification,
        )
        .merge(channel_settings::routes())
}

/// `?unread=&limit=&cursor=`.
#[derive(Debug, Deserialize)]
pub struct ListNotificationsQuery {
    unread: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// Meta of the list: the page plus the unread count (for the badge).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ListMeta {
    limit: u32,
    next_cursor: Option<String>,
    unread_count: i64,
}

fn parse_flag(name: &'static str, value: Option<&str>) -> AppResult<bool> {
    match value {
        None | Some("" | "false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(_) => Err(AppError::validation([(name, "must be true or false")])),
    }
}

/// `GET /notifications`: the caller's notifications, newest first; `?unread=true` for unread
/// only. Meta `{limit, nextCursor, unreadCount}`.
pub async fn list_notifications(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<ListNotificationsQuery>,
) -> AppResult<ApiResponse> {
    let unread_only = parse_flag("unread", query.unread.as_deref())?;
    let scope = if unread_only { SCOPE_UNREAD } else { SCOPE_ALL };
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    let limit = page.limit()?;
    let before: (i64, String) = match page.cursor() {
        Some(c) => state.cursors().decode(scope, c)?,
        // Sorts after every row: ids are never empty.
        None => (i64::MAX, String::new()),
    };
    let user_id = user.user_id().to_owned();
    let (rows, unread_count) = state
        .db()
        .run(move |conn| {
            // One read transaction: the count and the page see the same data.
            let tx = conn.transaction()?;
            let rows = list(&tx, &user_id, unread_only, (before.0, &before.1), limit + 1)?;
            let unread = unread_count(&tx, &user_id)?;
            Ok((rows, unread))
        })
        .await?;
    let (rows, next_cursor) = finish_page(state.cursors(), scope, rows, limit, |n| {
        (n.created_at_ms, n.id.clone())
    });
    Ok(ApiResponse::with_meta(
        &rows,
        &ListMeta {
            limit,
            next_cursor,
            unread_count,
        },
    ))
}

/// `POST /notifications/{id}/read`: the notification, now read. Another user's id is 404.
pub async fn read_notification(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<ApiResponse> {
    let user_id = user.user_id().to_owned();
    let now = state.clock().now_ms();
    let found = state
        .db()
        .write(move |tx| mark_read(tx, &user_id, &id, now))
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::NotFound))?;
    Ok(ApiResponse::ok(&found))
}

/// `{updated}`.
#[derive(Debug, Serialize)]
struct ReadAll {
    updated: usize,
}

/// `POST /notifications/read-all`: marks every unread notification of the caller read.
pub async fn read_all_notifications(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<ApiResponse> {
    let user_id = user.user_id().to_owned();
    let now = state.clock().now_ms();
    let updated = state
        .db()
        .write(move |tx| mark_all_read(tx, &user_id, now))
        .await?;
    Ok(ApiResponse::ok(&ReadAll { updated }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashSet;

    use axum::http::StatusCode;
    use serde_json::json;

    use super::*;
    use crate::admin::testing::{START_MS, TestApp};

    /// Stores `n` notifications for `user`, one ms apart from `from_ms`.
    async fn seed(t: &TestApp, user: &str, n: i64, from_ms: i64) -> Vec<Notification> {
        let user = user.to_owned();
        t.state
            .db()
            .write(move |tx| {
                (0..n)
                    .map(|i| {
                        create(
                            tx,
                            &user,
                            "test",
                            &format!("title {i}"),
                            "message",
                            Some(json!({"i": i})),
                            from_ms + i,
                        )
                    })
                    .collect()
            })
            .await
            .unwrap()
    }

    fn ids(reply: &crate::admin::testing::Reply) -> Vec<String> {
        reply.json["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn the_shape_of_a_notification() {
        let t = TestApp::new().await;
        let ann = t.add_user("ann", None, "user", "active", START_MS).await;
        let token = t.sign_in(&ann).await;
        let made = seed(&t, &ann, 1, START_MS).await.remove(0);
        let reply = t
            .call("GET", "/api/v1/notifications", Some(&token), None)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
        assert_eq!(
            reply.json["data"][0],
            json!({
                "id": made.id,
                "type": "test",
                "title": "title 0",
                "message": "message",
                "read": false,
                "metadata": {"i": 0},
                "createdAt": rfc3339(START_MS),
                "readAt": null,
            })
        );
        assert_eq!(
            reply.json["meta"],
            json!({"limit": 20, "nextCursor": null, "unreadCount": 1})
        );
        assert_eq!(
            uuid::Uuid::parse_str(&made.id).unwrap().get_version_num(),
            7
        );
    }

    #[tokio::test]
    async fn paging_has_no_duplicates_or_gaps_while_rows_arrive() {
        let t = TestApp::new().await;
        let ann = t.add_user("ann", None, "user", "active", START_MS).await;
        let bob = t.add_user("bob", None, "user", "active", START_MS).await;
        let token = t.sign_in(&ann).await;
        let mut expected: Vec<String> = seed(&t, &ann, 45, START_MS)
            .await
            .into_iter()
            .map(|n| n.id)
            .collect();
        seed(&t, &bob, 10, START_MS).await;
        // Some read, some not, and several rows in the same millisecond, so both ranges of the
        // merge and the id tie-break are exercised.
        t.exec(
            "UPDATE notifications SET read = 1 WHERE user_id = ?1 AND created_at % 3 = 0",
            vec![ann.clone().into()],
        )
        .await;
        let same_ms: Vec<String> = seed(&t, &ann, 1, START_MS + 20)
            .await
            .into_iter()
            .chain(seed(&t, &ann, 1, START_MS + 20).await)
            .map(|n| n.id)
            .collect();
        expected.extend(same_ms);

        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/notifications?limit=10&cursor={c}"),
                None => "/api/v1/notifications?limit=10".to_owned(),
            };
            let reply = t.call("GET", &path, Some(&token), None).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
            let page: Vec<serde_json::Value> = reply.json["data"].as_array().unwrap().clone();
            for pair in page.windows(2) {
                let key = |n: &serde_json::Value| {
                    (
                        n["createdAt"].as_str().unwrap().to_owned(),
                        n["id"].as_str().unwrap().to_owned(),
                    )
                };
                assert!(key(&pair[0]) > key(&pair[1]), "newest first");
            }
            seen.extend(ids(&reply));
            pages += 1;
            if pages == 1 {
                // Newer rows arriving between pages must not shift the later pages.
                seed(&t, &ann, 3, START_MS + 1_000).await;
            }
            match reply.json["meta"]["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen.len(), expected.len(), "no duplicates, no gaps");
        assert_eq!(
            seen.iter().collect::<HashSet<_>>(),
            expected.iter().collect::<HashSet<_>>()
        );
        assert_eq!(pages, 5);

        // A cursor of one list is refused by the other, a forged one by both.
        let reply = t
            .call("GET", "/api/v1/notifications?limit=1", Some(&token), None)
            .await;
        let all_cursor = reply.json["meta"]["nextCursor"]
            .as_str()
            .unwrap()
            .to_owned();
        let reply = t
            .call(
                "GET",
                &format!("/api/v1/notifications?unread=true&cursor={all_cursor}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.code(), "INVALID_CURSOR");
        let reply = t
            .call(
                "GET",
                "/api/v1/notifications?unread=maybe",
                Some(&token),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn unread_filter_read_and_read_all() {
        let t = TestApp::new().await;
        let ann = t.add_user("ann", None, "user", "active", START_MS).await;
        let bob = t.add_user("bob", None, "user", "active", START_MS).await;
        let (ann_token, bob_token) = (t.sign_in(&ann).await, t.sign_in(&bob).await);
        let made = seed(&t, &ann, 5, START_MS).await;
        let bobs = seed(&t, &bob, 2, START_MS).await;

        t.clock.advance(1_000);
        let path = format!("/api/v1/notifications/{}/read", made[1].id);
        let reply = t.call("POST", &path, Some(&ann_token), None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
        assert_eq!(reply.json["data"]["read"], json!(true));
        let read_at = rfc3339(START_MS + 1_000);
        assert_eq!(reply.json["data"]["readAt"], json!(read_at));
        // Again, later: still read, first read time kept.
        t.clock.advance(1_000);
        let again = t.call("POST", &path, Some(&ann_token), None).await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.json["data"]["readAt"], json!(read_at));

        let unread = t
            .call(
                "GET",
                "/api/v1/notifications?unread=true",
                Some(&ann_token),
                None,
            )
            .await;
        let mut want: Vec<String> = made.iter().rev().map(|n| n.id.clone()).collect();
        want.retain(|id| *id != made[1].id);
        assert_eq!(ids(&unread), want);
        assert_eq!(unread.json["meta"]["unreadCount"], json!(4));
        let all = t
            .call("GET", "/api/v1/notifications", Some(&ann_token), None)
            .await;
        assert_eq!(all.json["data"].as_array().unwrap().len(), 5);
        assert_eq!(all.json["meta"]["unreadCount"], json!(4));

        // Someone else's notification, or none at all: 404, and nothing changes.
        for id in [bobs[0].id.as_str(), "no-such-id"] {
            let path = format!("/api/v1/notifications/{id}/read");
            let reply = t.call("POST", &path, Some(&ann_token), None).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND);
            assert_eq!(reply.code(), "NOT_FOUND");
        }
        let bob_list = t
            .call("GET", "/api/v1/notifications", Some(&bob_token), None)
            .await;
        assert_eq!(bob_list.json["meta"]["unreadCount"], json!(2));

        let reply = t
            .call(
                "POST",
                "/api/v1/notifications/read-all",
                Some(&ann_token),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json["data"], json!({"updated": 4}));
        let reply = t
            .call(
                "POST",
                "/api/v1/notifications/read-all",
                Some(&ann_token),
                None,
            )
            .await;
        assert_eq!(reply.json["data"], json!({"updated": 0}));
        let unread = t
            .call(
                "GET",
                "/api/v1/notifications?unread=true",
                Some(&ann_token),
                None,
            )
            .await;
        assert_eq!(ids(&unread), Vec::<String>::new());
        assert_eq!(unread.json["meta"]["unreadCount"], json!(0));
        let bob_list = t
            .call("GET", "/api/v1/notifications", Some(&bob_token), None)
            .await;
        assert_eq!(
            bob_list.json["meta"]["unreadCount"],
            json!(2),
            "bob's stay unread"
        );

        let anonymous = t.call("GET", "/api/v1/notifications", None, None).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn admins_are_notified_and_told_live_after_commit() {
        let t = TestApp::new().await;
        let boss = t.add_user("boss", None, "admin", "active", START_MS).await;
        let gone = t
            .add_user("gone", None, "admin", "suspended", START_MS)
            .await;
        let ann = t.add_user("ann", None, "user", "active", START_MS).await;
        let mut rx = t.state.events().subscribe();
        let created = t
            .state
            .db()
            .write(|tx| {
                create_for_admins(
                    tx,
                    "service.down",
                    "Plex is down",
                    "2 failed checks",
                    Some(json!({"service": "plex"})),
                    START_MS,
                )
            })
            .await
            .unwrap();
        let mut to: Vec<&str> = created.iter().map(|(u, _)| u.as_str()).collect();
        to.sort_unstable();
        let mut want = vec![t.admin_id.as_str(), boss.as_str()];
        want.sort_unstable();
        assert_eq!(to, want, "active admins only, not {gone} or {ann}");
        assert!(rx.try_recv().is_err(), "nothing announced before publish");

        publish_all_created(t.state.events(), &created);
        for (user_id, notification) in &created {
            let event = rx.try_recv().unwrap();
            assert_eq!(event.kind, kind::NOTIFICATION_CREATED);
            assert_eq!(event.audience, Audience::User(user_id.clone()));
            let data: serde_json::Value = serde_json::from_str(&event.data).unwrap();
            assert_eq!(data["id"], json!(notification.id));
            assert_eq!(data["type"], json!("service.down"));
        }
    }

    #[tokio::test]
    async fn list_queries_use_the_index_without_sorting() {
        let t = TestApp::new().await;
        let ann = t.add_user("ann", None, "user", "active", START_MS).await;
        seed(&t, &ann, 200, START_MS).await;
        let plans = t
            .state
            .db()
            .run(|conn| {
                // With statistics too, as after the ANALYZE on migration and shutdown.
                conn.execute_batch("ANALYZE")?;
                let statements = [
                    format!("{LIST_ALL}20"),
                    format!("{LIST_UNREAD}20"),
                    "SELECT count(*) FROM notifications WHERE user_id = ?1 AND read = 0".to_owned(),
                    "UPDATE notifications SET read = 1, read_at = ?2 WHERE user_id = ?1 AND read = 0"
                        .to_owned(),
                    "UPDATE notifications SET read = 1, read_at = ?3 WHERE id = ?1 AND user_id = ?2 AND read = 0"
                        .to_owned(),
                    format!("SELECT {COLUMNS} FROM notifications WHERE id = ?1 AND user_id = ?2"),
                ];
                let mut plans = Vec::new();
                for sql in statements {
                    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                    // The plan does not depend on the values; any will do.
                    let params = vec!["x"; stmt.parameter_count()];
                    let lines: Vec<String> = stmt
                        .query_map(rusqlite::params_from_iter(params), |r| r.get::<_, String>(3))?
                        .collect::<Result<_, _>>()?;
                    plans.push((sql, lines));
                }
                Ok(plans)
            })
            .await
            .unwrap();
        for (sql, lines) in plans {
            let searches: Vec<&String> = lines
                .iter()
                .filter(|l| l.contains("notifications"))
                .collect();
            assert!(!searches.is_empty(), "{sql}: {lines:?}");
            for line in &lines {
                assert!(!line.starts_with("SCAN"), "{sql}: {lines:?}");
                assert!(!line.contains("TEMP B-TREE"), "{sql}: {lines:?}");
            }
            for line in searches {
                assert!(
                    line.starts_with("SEARCH") && line.contains("INDEX"),
                    "{sql}: {lines:?}"
                );
            }
        }
    }
}
