//! What a user does with one item of a subscription's archive: mark it "keep" (retention never
//! prunes it) or delete it (its files go, the id stays in the archive so it never comes back).
//! The owner of the subscription or an admin; anyone else gets 404.
//!
//! - `PATCH /youtube/subscriptions/{id}/items/{itemId}` `{keep: bool}` -> the item.
//! - `DELETE /youtube/subscriptions/{id}/items/{itemId}` -> 204; 409 `{status}` while its
//!   download has not finished (`queued`: cancel the download first).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::Value;

use super::retention::{self, Deletion};
use super::{not_found, object, visible, wrong_status};
use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::http::ApiJson;
use crate::response::ApiResponse;
use crate::state::AppState;

/// `{keep}` of the PATCH body: a boolean, the only key.
fn keep_of(body: Value) -> AppResult<bool> {
    let body = object(body)?;
    let mut problems: Vec<(String, String)> = body
        .keys()
        .filter(|k| k.as_str() != "keep")
        .map(|k| (k.clone(), "is not a known field".to_owned()))
        .collect();
    let keep = match body.get("keep") {
        Some(Value::Bool(keep)) => Some(*keep),
        Some(_) => {
            problems.push(("keep".into(), "must be true or false".into()));
            None
        }
        None => {
            problems.push(("keep".into(), "is required".into()));
            None
        }
    };
    match keep {
        Some(keep) if problems.is_empty() => Ok(keep),
        _ => Err(AppError::validation(problems)),
    }
}

/// `PATCH /youtube/subscriptions/{id}/items/{itemId}` `{keep}` -> the item as the items list
/// shows it.
pub async fn update_item(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, item_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> AppResult<ApiResponse> {
    let keep = keep_of(body)?;
    let (user_id, is_admin) = (user.user_id().to_owned(), user.is_admin());
    let now = state.clock().now_ms();
    let item = state
        .db()
        .write(move |tx| {
            visible(super::store::get(tx, &id)?, &user_id, is_admin)?;
            if !retention::set_keep(tx, &id, &item_id, keep, now)? {
                return Err(not_found());
            }
            retention::get_item(tx, &id, &item_id)?.ok_or_else(not_found)
        })
        .await?;
    Ok(ApiResponse::ok(&item))
}

/// `DELETE /youtube/subscriptions/{id}/items/{itemId}` -> 204: the files go (only inside the
/// subscriptions folder), the item is `deleted` (its id stays archived), the bytes are fixed and
/// Plex scans the folder. 409 `{status}` for an item still `queued`.
pub async fn delete_item(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, item_id)): Path<(String, String)>,
) -> AppResult<StatusCode> {
    let (user_id, is_admin) = (user.user_id().to_owned(), user.is_admin());
    let sub_id = id.clone();
    let item = state
        .db()
        .read(move |conn| {
            visible(super::store::get(conn, &sub_id)?, &user_id, is_admin)?;
            retention::get_item(conn, &sub_id, &item_id)?.ok_or_else(not_found)
        })
        .await?;
    match retention::delete_item(&state, &id, item).await? {
        Deletion::Deleted => Ok(StatusCode::NO_CONTENT),
        Deletion::NotYet(status) => Err(wrong_status(&status)),
    }
}
