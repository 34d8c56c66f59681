//! `GET/PATCH/DELETE /admin/users`: the user list with request and download counts, role and
//! status changes, and deleting accounts.
//!
//! Rules (SPEC section 1), checked in this order:
//! - an unknown id is 404 `NOT_FOUND`;
//! - an admin cannot demote, suspend or delete their own account: 409 `CONFLICT` with
//!   `details.reason = "self"`;
//! - a change that would leave no active admin is 409 `LAST_ADMIN`. It is checked inside the
//!   write transaction that makes the change, so two admins demoting each other at once cannot
//!   both succeed.
//!
//! After any change the session cache is dropped so the change applies from the next request;
//! suspending also deletes the user's sessions, so a suspended user is signed out (401) and a new
//! sign-in answers `ACCOUNT_SUSPENDED`.

use axum::extract::{Path, Query, State};
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use crate::auth::AdminUser;
use crate::auth::session::Sessions;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::ApiJson;
use crate::pagination::{PageQuery, finish_page};
use crate::response::{ApiResponse, PageMeta};
use crate::state::AppState;
use crate::users::{COLUMNS, Role, Status, User, UserView};

/// The cursor scope of the user list.
const SCOPE: &str = "admin.users";

/// Longest `?q=`.
const MAX_QUERY_CHARS: usize = 100;

/// The two counts each listed user carries; both walk a `(user_id, ...)` covering index.
const COUNTS: &str = "(SELECT count(*) FROM media_requests m WHERE m.user_id = users.id), \
                      (SELECT count(*) FROM youtube_downloads d WHERE d.user_id = users.id)";

/// A user as the admin list shows it: the `User` shape plus counts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminUserView {
    #[serde(flatten)]
    pub user: UserView,
    pub request_count: i64,
    pub download_count: i64,
}

/// A listed user and its sort key.
struct Listed {
    view: AdminUserView,
    created_at: i64,
}

fn listed_from_row(row: &Row<'_>) -> rusqlite::Result<Listed> {
    let user = User::from_row(row)?;
    Ok(Listed {
        created_at: user.created_at,
        view: AdminUserView {
            user: user.view(),
            request_count: row.get(13)?,
            download_count: row.get(14)?,
        },
    })
}

/// The list query for the given statuses: one arm per status, each walking
/// `users_status_created` backwards from the cursor, merged by SQLite (`MERGE (UNION ALL)`), so
/// neither arm sorts and the page stops after `?5` rows.
pub fn list_sql(statuses: &[Status], limit: u32) -> String {
    let arms: Vec<String> = statuses
        .iter()
        .map(|status| {
            format!(
                "SELECT {COLUMNS}, {COUNTS} FROM users
                 WHERE status = '{status}' AND (created_at, id) < (?1, ?2)
                   AND (?3 IS NULL OR role = ?3)
                   AND (?4 IS NULL OR username LIKE ?4 ESCAPE '\\' OR email LIKE ?4 ESCAPE '\\')",
                status = status.as_str()
            )
        })
        .collect();
    format!(
        // The limit is written into the text: a bound LIMIT makes SQLite re-prepare on every run.
        "{} ORDER BY created_at DESC, id DESC LIMIT {limit}",
        arms.join(" UNION ALL ")
    )
}

/// `?q=&role=&status=&limit=&cursor=`.
#[derive(Debug, Default, Deserialize)]
pub struct ListUsersQuery {
    q: Option<String>,
    role: Option<String>,
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /admin/users`: newest first; `q` matches username or email (case-insensitive).
pub async fn list_users(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(query): Query<ListUsersQuery>,
) -> AppResult<ApiResponse> {
    let mut fields = Vec::new();
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS) {
        fields.push(("q", format!("must be at most {MAX_QUERY_CHARS} characters")));
    }
    let role = match query.role.as_deref().filter(|r| !r.is_empty()) {
        None => None,
        Some(r) => Role::parse(r).or_else(|| {
            fields.push(("role", "must be admin or user".to_owned()));
            None
        }),
    };
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Status::parse(s).or_else(|| {
            fields.push(("status", "must be active or suspended".to_owned()));
            None
        }),
    };
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    if !fields.is_empty() {
        return Err(AppError::validation(fields));
    }
    let limit = page.limit()?;
    let before: (i64, String) = match page.cursor() {
        Some(c) => state.cursors().decode(SCOPE, c)?,
        None => (i64::MAX, String::new()),
    };

    let statuses = match status {
        Some(s) => vec![s],
        None => vec![Status::Active, Status::Suspended],
    };
    let pattern = q.map(crate::db::contains_pattern);
    let role = role.map(Role::as_str);
    let rows = state
        .db()
        .run(move |conn| {
            let mut stmt = conn.prepare_cached(&list_sql(&statuses, limit + 1))?;
            let rows = stmt.query_map(
                rusqlite::params![before.0, before.1, role, pattern],
                listed_from_row,
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    let (rows, next_cursor) = finish_page(state.cursors(), SCOPE, rows, limit, |r| {
        (r.created_at, r.view.user.id.clone())
    });
    let data: Vec<AdminUserView> = rows.into_iter().map(|r| r.view).collect();
    Ok(ApiResponse::with_meta(
        &data,
        &PageMeta { limit, next_cursor },
    ))
}

/// `PATCH /admin/users/{id}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserBody {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

/// 409 `CONFLICT` for a change to one's own account.
fn own_account() -> AppError {
    AppError::new(ErrorCode::Conflict).with_details(serde_json::json!({
        "reason": "self",
        "message": "Admins cannot demote, suspend or delete their own account."
    }))
}

fn is_active_admin(role: Role, status: Status) -> bool {
    role == Role::Admin && status == Status::Active
}

/// Active admins other than `?1` (`users_status_created`, then the role).
pub const OTHER_ACTIVE_ADMINS: &str =
    "SELECT count(*) FROM users WHERE status = 'active' AND role = 'admin' AND id <> ?1";

/// Fails with `LAST_ADMIN` when no active admin other than `id` exists; call inside the write
/// transaction that removes `id` as an active admin.
fn ensure_another_admin(conn: &Connection, id: &str) -> AppResult<()> {
    let others: i64 = conn
        .prepare_cached(OTHER_ACTIVE_ADMINS)?
        .query_row([id], |r| r.get(0))?;
    if others == 0 {
        return Err(AppError::new(ErrorCode::LastAdmin));
    }
    Ok(())
}

/// One user with counts.
fn view_by_id(conn: &Connection, id: &str) -> AppResult<Option<AdminUserView>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, {COUNTS} FROM users WHERE id = ?1"
    ))?;
    Ok(stmt
        .query_row([id], listed_from_row)
        .optional()?
        .map(|l| l.view))
}

/// `PATCH /admin/users/{id}`: `{role?, status?}`; answers the updated user.
pub async fn update_user(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateUserBody>,
) -> AppResult<ApiResponse> {
    let mut fields = Vec::new();
    let role = body.role.as_deref().and_then(|r| {
        Role::parse(r).or_else(|| {
            fields.push(("role", "must be admin or user"));
            None
        })
    });
    let status = body.status.as_deref().and_then(|s| {
        Status::parse(s).or_else(|| {
            fields.push(("status", "must be active or suspended"));
            None
        })
    });
    if body.role.is_none() && body.status.is_none() {
        fields.push(("body", "give role, status or both"));
    }
    if !fields.is_empty() {
        return Err(AppError::validation(fields));
    }
    let own = id == admin.user_id();
    let updated = state
        .db()
        .write(move |tx| {
            let user = crate::users::by_id(tx, &id)?.ok_or(ErrorCode::NotFound)?;
            if own && (role == Some(Role::User) || status == Some(Status::Suspended)) {
                return Err(own_account());
            }
            let new_role = role.unwrap_or(user.role);
            let new_status = status.unwrap_or(user.status);
            if is_active_admin(user.role, user.status) && !is_active_admin(new_role, new_status) {
                ensure_another_admin(tx, &id)?;
            }
            tx.prepare_cached("UPDATE users SET role = ?1, status = ?2 WHERE id = ?3")?
                .execute(rusqlite::params![
                    new_role.as_str(),
                    new_status.as_str(),
                    id
                ])?;
            if new_status == Status::Suspended {
                Sessions::delete_all(tx, &id, None)?;
            }
            view_by_id(tx, &id)?.ok_or_else(|| AppError::internal("updated user vanished"))
        })
        .await?;
    state.sessions().forget_all();
    Ok(ApiResponse::ok(&updated))
}

/// `{deleted: true}`.
#[derive(Debug, Serialize)]
struct Deleted {
    deleted: bool,
}

/// `DELETE /admin/users/{id}`: the schema cascades sessions, requests, downloads,
/// notifications and follows; error log entries keep with no user.
pub async fn delete_user(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
) -> AppResult<ApiResponse> {
    let own = id == admin.user_id();
    state
        .db()
        .write(move |tx| {
            let user = crate::users::by_id(tx, &id)?.ok_or(ErrorCode::NotFound)?;
            if own {
                return Err(own_account());
            }
            if is_active_admin(user.role, user.status) {
                ensure_another_admin(tx, &id)?;
            }
            tx.prepare_cached("DELETE FROM users WHERE id = ?1")?
                .execute([&id])?;
            Ok(())
        })
        .await?;
    state.sessions().forget_all();
    Ok(ApiResponse::ok(&Deleted { deleted: true }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use axum::http::StatusCode;
    use rusqlite::types::Value as Sql;
    use serde_json::json;

    use super::super::testing::{START_MS, TestApp};

    fn ids(reply: &super::super::testing::Reply) -> Vec<String> {
        reply.json["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn paging_has_no_duplicates_or_gaps_while_users_arrive() {
        let t = TestApp::new().await;
        // Ten users (some suspended, some sharing a creation time) older than the admin.
        let mut expected = vec!["admin".to_owned()];
        for i in 0..10 {
            let status = if i % 3 == 0 { "suspended" } else { "active" };
            let at = START_MS - 1000 - (i / 2) * 10;
            t.add_user(&format!("u{i}"), None, "user", status, at).await;
            expected.push(format!("u{i}"));
        }
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut n = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/admin/users?limit=3&cursor={c}"),
                None => "/api/v1/admin/users?limit=3".to_owned(),
            };
            let page = t.admin_get(&path).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.json);
            assert_eq!(page.json["meta"]["limit"], 3);
            seen.extend(ids(&page));
            // A newer user arrives between pages: it must not shift the pages after this one.
            n += 1;
            t.add_user(&format!("late{n}"), None, "user", "active", START_MS + n)
                .await;
            match page.json["meta"]["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), seen.len(), "duplicates: {seen:?}");
        let mut want = expected.clone();
        want.sort();
        assert_eq!(sorted, want);
        // Newest first: admin (START_MS) then u0/u1 (same time, id descending), ...
        assert_eq!(seen[0], "admin");
    }

    #[tokio::test]
    async fn filters_counts_and_bad_input() {
        let t = TestApp::new().await;
        let alice = t
            .add_user(
                "Alice",
                Some("alice@Example.org"),
                "user",
                "active",
                START_MS - 5,
            )
            .await;
        t.add_user(
            "bob",
            Some("bob@other.net"),
            "admin",
            "suspended",
            START_MS - 6,
        )
        .await;
        t.add_user("100%_real", None, "user", "active", START_MS - 7)
            .await;
        t.exec(
            "INSERT INTO media_requests (id, user_id, title, media_type, tmdb_id, created_at,
                                         updated_at)
             VALUES ('r1', ?1, 'T', 'movie', 1, 1, 1), ('r2', ?1, 'U', 'movie', 2, 2, 2)",
            vec![Sql::Text(alice.clone())],
        )
        .await;
        t.exec(
            "INSERT INTO youtube_downloads (id, user_id, url, kind, created_at)
             VALUES ('d1', ?1, 'https://youtu.be/x', 'video', 1)",
            vec![Sql::Text(alice.clone())],
        )
        .await;

        let r = t.admin_get("/api/v1/admin/users?q=EXAMPLE").await;
        assert_eq!(ids(&r), ["Alice"]);
        let alice_view = &r.json["data"][0];
        assert_eq!(alice_view["requestCount"], 2);
        assert_eq!(alice_view["downloadCount"], 1);
        assert_eq!(alice_view["email"], "alice@Example.org");
        assert_eq!(alice_view["plexUsername"], serde_json::Value::Null);
        assert!(alice_view["createdAt"].as_str().unwrap().ends_with('Z'));
        assert_eq!(
            ids(&t.admin_get("/api/v1/admin/users?q=ali").await),
            ["Alice"]
        );
        assert_eq!(
            ids(&t.admin_get("/api/v1/admin/users?q=%25_").await),
            ["100%_real"]
        );
        assert_eq!(
            ids(&t.admin_get("/api/v1/admin/users?role=admin").await),
            ["admin", "bob"]
        );
        assert_eq!(
            ids(&t.admin_get("/api/v1/admin/users?status=suspended").await),
            ["bob"]
        );
        assert_eq!(
            ids(&t
                .admin_get("/api/v1/admin/users?status=active&role=user")
                .await),
            ["Alice", "100%_real"]
        );

        let bad = t
            .admin_get(&format!(
                "/api/v1/admin/users?role=owner&status=gone&q={}",
                "x".repeat(101)
            ))
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert_eq!(bad.code(), "VALIDATION_ERROR");
        let fields = &bad.json["error"]["details"]["fields"];
        for f in ["role", "status", "q"] {
            assert!(fields[f].is_string(), "{f}: {fields}");
        }

        let r = t.admin_get("/api/v1/admin/users?limit=101").await;
        assert!(r.json["error"]["details"]["fields"]["limit"].is_string());

        let first = t.admin_get("/api/v1/admin/users?limit=1").await;
        let cursor = first.json["meta"]["nextCursor"].as_str().unwrap();
        let mut tampered: Vec<char> = cursor.chars().collect();
        tampered[5] = if tampered[5] == 'A' { 'B' } else { 'A' };
        let tampered: String = tampered.into_iter().collect();
        let r = t
            .admin_get(&format!("/api/v1/admin/users?cursor={tampered}"))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.code(), "INVALID_CURSOR");
    }

    #[tokio::test]
    async fn role_changes_apply_on_the_next_request() {
        let t = TestApp::new().await;
        let carol = t.add_user("carol", None, "user", "active", START_MS).await;
        let token = t.sign_in(&carol).await;
        let r = t
            .call("GET", "/api/v1/admin/users", Some(&token), None)
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);

        let path = format!("/api/v1/admin/users/{carol}");
        let r = t
            .call(
                "PATCH",
                &path,
                Some(&t.admin_token),
                Some(json!({"role": "admin"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        assert_eq!(r.json["data"]["role"], "admin");
        assert_eq!(r.json["data"]["requestCount"], 0);
        let r = t
            .call("GET", "/api/v1/admin/users", Some(&token), None)
            .await;
        assert_eq!(r.status, StatusCode::OK);

        let r = t
            .call(
                "PATCH",
                &path,
                Some(&t.admin_token),
                Some(json!({"role": "user"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let r = t
            .call("GET", "/api/v1/admin/users", Some(&token), None)
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.code(), "FORBIDDEN");

        for (body, field) in [
            (json!({}), "body"),
            (json!({"role": "owner"}), "role"),
            (json!({"status": "banned"}), "status"),
            (json!({"role": "user", "extra": 1}), "extra"),
        ] {
            let r = t
                .call("PATCH", &path, Some(&t.admin_token), Some(body.clone()))
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(r.code(), "VALIDATION_ERROR");
            let fields = r.json["error"]["details"]["fields"].to_string();
            assert!(fields.contains(field), "{body}: {fields}");
        }
        let r = t
            .call(
                "PATCH",
                "/api/v1/admin/users/nobody",
                Some(&t.admin_token),
                Some(json!({"role": "user"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn suspending_ends_sessions_at_once() {
        let t = TestApp::new().await;
        let dave = t.add_user("dave", None, "user", "active", START_MS).await;
        // Same password as the admin, so dave can try to sign in afterwards.
        t.exec(
            "UPDATE users SET password_hash = (SELECT password_hash FROM users WHERE username = 'admin')
             WHERE id = ?1",
            vec![Sql::Text(dave.clone())],
        )
        .await;
        let token = t.sign_in(&dave).await;
        let _other = t.sign_in(&dave).await;
        let r = t
            .call("GET", "/api/v1/auth/sessions", Some(&token), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "session cached");

        let r = t
            .call(
                "PATCH",
                &format!("/api/v1/admin/users/{dave}"),
                Some(&t.admin_token),
                Some(json!({"status": "suspended"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        assert_eq!(r.json["data"]["status"], "suspended");
        let sessions = t
            .count(
                "SELECT count(*) FROM session_tokens WHERE user_id = ?1",
                vec![Sql::Text(dave.clone())],
            )
            .await;
        assert_eq!(sessions, 0);
        let r = t
            .call("GET", "/api/v1/auth/sessions", Some(&token), None)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "signed out");
        let r = t
            .call(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(
                    json!({"username": "dave", "password": super::super::testing::ADMIN_PASSWORD}),
                ),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.code(), "ACCOUNT_SUSPENDED");
    }

    #[tokio::test]
    async fn admins_cannot_remove_themselves_or_the_last_admin() {
        let t = TestApp::new().await;
        let me = format!("/api/v1/admin/users/{}", t.admin_id);
        let tok = Some(t.admin_token.as_str());
        for body in [json!({"role": "user"}), json!({"status": "suspended"})] {
            let r = t.call("PATCH", &me, tok, Some(body)).await;
            assert_eq!(r.status, StatusCode::CONFLICT);
            assert_eq!(r.code(), "CONFLICT");
            assert_eq!(r.json["error"]["details"]["reason"], "self");
        }
        let r = t.call("DELETE", &me, tok, None).await;
        assert_eq!(r.code(), "CONFLICT");
        // A no-op on oneself is fine.
        let r = t
            .call("PATCH", &me, tok, Some(json!({"role": "admin"})))
            .await;
        assert_eq!(r.status, StatusCode::OK);

        // Erin is a second admin. The first admin loses the role behind the session cache's
        // back (as when two admins demote each other at once): erin is then the last one.
        let erin = t.add_user("erin", None, "admin", "active", START_MS).await;
        let r = t.admin_get("/api/v1/admin/users").await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "the admin's session is cached again"
        );
        t.exec(
            "UPDATE users SET role = 'user' WHERE id = ?1",
            vec![Sql::Text(t.admin_id.clone())],
        )
        .await;
        let path = format!("/api/v1/admin/users/{erin}");
        for body in [json!({"role": "user"}), json!({"status": "suspended"})] {
            let r = t.call("PATCH", &path, tok, Some(body)).await;
            assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.json);
            assert_eq!(r.code(), "LAST_ADMIN");
        }
        let r = t.call("DELETE", &path, tok, None).await;
        assert_eq!(r.code(), "LAST_ADMIN");
        // A change that keeps erin an active admin is fine.
        let r = t
            .call(
                "PATCH",
                &path,
                tok,
                Some(json!({"role": "admin", "status": "active"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn concurrent_mutual_demotions_leave_an_admin() {
        let t = TestApp::new().await;
        let frank = t.add_user("frank", None, "admin", "active", START_MS).await;
        let frank_token = t.sign_in(&frank).await;
        // Warm both sessions so both requests pass the admin check.
        for tok in [&t.admin_token, &frank_token] {
            let r = t.call("GET", "/api/v1/admin/stats", Some(tok), None).await;
            assert_eq!(r.status, StatusCode::OK);
        }
        let frank_path = format!("/api/v1/admin/users/{frank}");
        let admin_path = format!("/api/v1/admin/users/{}", t.admin_id);
        let demote_frank = t.call(
            "PATCH",
            &frank_path,
            Some(&t.admin_token),
            Some(json!({"role": "user"})),
        );
        let demote_admin = t.call(
            "PATCH",
            &admin_path,
            Some(&frank_token),
            Some(json!({"role": "user"})),
        );
        let (a, b) = tokio::join!(demote_frank, demote_admin);
        let ok = [&a, &b]
            .iter()
            .filter(|r| r.status == StatusCode::OK)
            .count();
        assert_eq!(ok, 1, "{} / {}", a.json, b.json);
        let admins = t
            .count(
                "SELECT count(*) FROM users WHERE role = 'admin' AND status = 'active'",
                vec![],
            )
            .await;
        assert_eq!(admins, 1);
    }

    #[tokio::test]
    async fn deleting_a_user_cascades() {
        let t = TestApp::new().await;
        let gina = t.add_user("gina", None, "user", "active", START_MS).await;
        let token = t.sign_in(&gina).await;
        let id = vec![Sql::Text(gina.clone())];
        t.exec(
            "INSERT INTO media_requests (id, user_id, title, media_type, tmdb_id, created_at,
                                         updated_at)
             VALUES ('rq', ?1, 'T', 'movie', 1, 1, 1)",
            id.clone(),
        )
        .await;
        t.exec(
            "INSERT INTO notifications (id, user_id, type, title, message, created_at)
             VALUES ('n1', ?1, 'x', 't', 'm', 1)",
            id.clone(),
        )
        .await;
        t.exec(
            "INSERT INTO request_followers (request_id, user_id, created_at) VALUES ('rq', ?1, 1)",
            id.clone(),
        )
        .await;
        t.exec(
            "INSERT INTO error_logs (correlation_id, user_id, error_code, error_message, created_at)
             VALUES ('c1', ?1, 'INTERNAL_ERROR', 'm', 1)",
            id.clone(),
        )
        .await;

        let r = t
            .call(
                "DELETE",
                &format!("/api/v1/admin/users/{gina}"),
                Some(&t.admin_token),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        assert_eq!(r.json["data"], json!({"deleted": true}));
        for table in [
            "SELECT count(*) FROM users WHERE id = ?1",
            "SELECT count(*) FROM session_tokens WHERE user_id = ?1",
            "SELECT count(*) FROM media_requests WHERE user_id = ?1",
            "SELECT count(*) FROM notifications WHERE user_id = ?1",
            "SELECT count(*) FROM request_followers WHERE user_id = ?1",
        ] {
            assert_eq!(t.count(table, id.clone()).await, 0, "{table}");
        }
        let kept = t
            .count(
                "SELECT count(*) FROM error_logs WHERE correlation_id = 'c1' AND user_id IS NULL",
                vec![],
            )
            .await;
        assert_eq!(kept, 1);
        let r = t
            .call("GET", "/api/v1/auth/sessions", Some(&token), None)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = t
            .call(
                "DELETE",
                &format!("/api/v1/admin/users/{gina}"),
                Some(&t.admin_token),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
}
