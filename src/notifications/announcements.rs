//! Announcements: `POST /admin/announcements` `{"title", "message"}` tells every active user
//! something (the server goes down for maintenance tonight, a new library).
//!
//! One in-app notification of type `announcement` per active user, all in one write
//! transaction through [`super::create_for_users`] (which also queues each user's channels, so
//! an announcement reaches email, ntfy and the rest like any other event), announced live only
//! after the commit. Suspended users get nothing.

use axum::extract::State;
use axum::http::Method;
use rusqlite::Connection;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::auth::AdminUser;
use crate::error::{AppError, AppResult};
use crate::http::ApiJson;
use crate::response::ApiResponse;
use crate::routes::{Access, Routes};
use crate::state::AppState;

/// The notification type (and delivery event) of an announcement.
pub const KIND: &str = "announcement";
pub const MAX_TITLE_CHARS: usize = 120;
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// The announcement route (under `/api/v1`).
pub fn routes() -> Routes {
    Routes::new().add(
        Method::POST,
        "/admin/announcements",
        Access::Admin,
        create_announcement,
    )
}

/// A checked announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub title: String,
    pub message: String,
}

/// Checks a body field by field; every problem is reported at once. Both texts are trimmed; the
/// message keeps its line breaks (`\r\n` becomes `\n`), nothing else may be a control character
/// (they would garble an email subject or a push notification).
pub fn parse(body: &Map<String, Value>) -> AppResult<Announcement> {
    let mut errors: Vec<(String, String)> = Vec::new();
    for key in body.keys() {
        if key != "title" && key != "message" {
            errors.push((key.clone(), "unknown field".into()));
        }
    }
    let mut text = |field: &str, max: usize, newlines: bool| -> String {
        let raw = match body.get(field) {
            None | Some(Value::Null) => {
                errors.push((field.into(), "is required".into()));
                return String::new();
            }
            Some(Value::String(s)) => s.replace("\r\n", "\n"),
            Some(_) => {
                errors.push((field.into(), "must be a string".into()));
                return String::new();
            }
        };
        let value = raw.trim();
        let count = value.chars().count();
        if count == 0 {
            errors.push((field.into(), "is required".into()));
        } else if count > max {
            errors.push((field.into(), format!("must be at most {max} characters")));
        } else if value
            .chars()
            .any(|c| c.is_control() && !(newlines && c == '\n'))
        {
            let reason = if newlines {
                "must not contain control characters (line breaks are fine)"
            } else {
                "must be one line without control characters"
            };
            errors.push((field.into(), reason.into()));
        }
        value.to_owned()
    };
    let title = text("title", MAX_TITLE_CHARS, false);
    let message = text("message", MAX_MESSAGE_CHARS, true);
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    Ok(Announcement { title, message })
}

/// Ids of the users who hear announcements: every active account.
fn active_user_ids(conn: &Connection) -> AppResult<Vec<String>> {
    let mut stmt = conn
        .prepare_cached("SELECT id FROM users WHERE status = 'active' ORDER BY created_at, id")?;
    let ids = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(ids)
}

/// `{recipients}`.
#[derive(Debug, Serialize)]
struct Sent {
    recipients: usize,
}

/// `POST /admin/announcements` `{"title", "message"}`: 201 `{"recipients": n}`.
pub async fn create_announcement(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> AppResult<ApiResponse> {
    let Announcement { title, message } = parse(&body)?;
    let now = state.clock().now_ms();
    let created = state
        .db()
        .write(move |tx| {
            let users = active_user_ids(tx)?;
            super::create_for_users(
                tx,
                &users,
                KIND,
                &title,
                &message,
                Some(json!({ "announcement": true })),
                now,
            )
        })
        .await?;
    super::publish_all_created(state.events(), &created);
    tracing::info!(
        recipients = created.len(),
        "announcement sent to every active user"
    );
    Ok(ApiResponse::created(&Sent {
        recipients: created.len(),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fields(body: Value) -> Value {
        let Value::Object(map) = body else {
            unreachable!()
        };
        match parse(&map) {
            Ok(a) => json!({"ok": [a.title, a.message]}),
            Err(AppError::Api {
                details: Some(details),
                ..
            }) => details["fields"].clone(),
            Err(e) => unreachable!("{e}"),
        }
    }

    #[test]
    fn texts_are_checked_and_tidied() {
        assert_eq!(
            fields(json!({"title": "  Maintenance ", "message": "Tonight\r\n22:00 to 23:00\n"})),
            json!({"ok": ["Maintenance", "Tonight\n22:00 to 23:00"]})
        );
        assert_eq!(
            fields(json!({"title": "a\nb", "message": "tab\there", "extra": 1})),
            json!({
                "title": "must be one line without control characters",
                "message": "must not contain control characters (line breaks are fine)",
                "extra": "unknown field",
            })
        );
        assert_eq!(
            fields(json!({"title": "   ", "message": 5})),
            json!({"title": "is required", "message": "must be a string"})
        );
        assert_eq!(
            fields(json!({})),
            json!({"title": "is required", "message": "is required"})
        );
        let long = "é".repeat(121);
        assert_eq!(
            fields(json!({"title": long, "message": "x".repeat(2001)})),
            json!({
                "title": "must be at most 120 characters",
                "message": "must be at most 2000 characters",
            })
        );
        // The limits count characters, not bytes.
        assert!(
            fields(json!({"title": "é".repeat(120), "message": "ü".repeat(2000)}))
                .get("ok")
                .is_some()
        );
    }
}
