//! YouTube subscriptions (issue 15): channels and playlists a user follows, their settings, the
//! reusable download profiles, and each subscription's archive of video ids. This module owns
//! the tables of migration 0011 and these endpoints:
//!
//! - `GET/POST /youtube/subscriptions`, `GET/PATCH/DELETE /youtube/subscriptions/{id}`,
//!   `GET /youtube/subscriptions/{id}/items`, `GET /youtube/subscriptions/{id}/avatar`
//!   ([`avatar`]): users see and change their own, admins all.
//! - `PATCH/DELETE /youtube/subscriptions/{id}/items/{itemId}`: "keep" and deleting one item
//!   ([`items`], [`retention`]): the owner or an admin.
//! - `POST /youtube/subscriptions/{id}/pause|resume|check`: admins (check: "check now", see
//!   [`scheduler`]).
//! - `POST /admin/youtube/subscriptions/{id}/approve|decline`: admins decide on proposals; the
//!   owner is notified in the same transaction.
//! - `GET/POST /admin/youtube/profiles`, `GET/PUT/DELETE /admin/youtube/profiles/{id}`.
//!
//! Who may do what: an admin's new subscription is active at once (due now); a user's is a
//! proposal, counted against `youtube.max_subscriptions_per_user` with their active and paused
//! ones. Settings are changed by admins, or by the owner while the proposal is still open
//! (once approved, an admin owns the decision; the owner may still delete it). Nothing here
//! runs yt-dlp: checks are the scheduler's, which reads [`store::due`] and writes the outcome
//! with [`store::record_check`].

pub mod art;
pub mod avatar;
pub mod downloads;
pub mod items;
pub mod model;
pub mod plex;
pub mod retention;
pub mod scheduler;
pub mod store;
pub mod validate;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use self::model::{Settings, Subscription};
use self::store::{ProfileDeletion, Scope};
use crate::auth::{AdminUser, CurrentUser};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::{ApiJson, optional_json};
use crate::notifications::{self, Notification};
use crate::pagination::{PageQuery, finish_page};
use crate::response::{ApiResponse, PageMeta};
use crate::routes::{Access, Routes};
use crate::state::AppState;
use crate::youtube::url::parse_source;

/// Cursor scope of the subscription lists (with the status filter appended).
const SCOPE_LIST: &str = "youtube.subscriptions";
/// Cursor scope of a subscription's items (with its id appended).
const SCOPE_ITEMS: &str = "youtube.subscription.items";

/// The routes (under `/api/v1`).
pub fn routes() -> Routes {
    const ONE: &str = "/youtube/subscriptions/{id}";
    const PROFILE: &str = "/admin/youtube/profiles/{id}";
    Routes::new()
        .add(
            Method::GET,
            "/youtube/subscriptions",
            Access::User,
            list_subscriptions,
        )
        .add(
            Method::POST,
            "/youtube/subscriptions",
            Access::User,
            create_subscription,
        )
        .add(Method::GET, ONE, Access::User, get_subscription)
        .add(Method::PATCH, ONE, Access::User, update_subscription)
        .add(Method::DELETE, ONE, Access::User, delete_subscription)
        .add(
            Method::GET,
            "/youtube/subscriptions/{id}/items",
            Access::User,
            list_items,
        )
        .add(
            Method::GET,
            "/youtube/subscriptions/{id}/avatar",
            Access::User,
            avatar::get_avatar,
        )
        .add(
            Method::PATCH,
            "/youtube/subscriptions/{id}/items/{itemId}",
            Access::User,
            items::update_item,
        )
        .add(
            Method::DELETE,
            "/youtube/subscriptions/{id}/items/{itemId}",
            Access::User,
            items::delete_item,
        )
        .add(
            Method::POST,
            "/youtube/subscriptions/{id}/pause",
            Access::Admin,
            pause_subscription,
        )
        .add(
            Method::POST,
            "/youtube/subscriptions/{id}/resume",
            Access::Admin,
            resume_subscription,
        )
        .add(
            Method::POST,
            "/youtube/subscriptions/{id}/check",
            Access::Admin,
            check_subscription,
        )
        .add(
            Method::POST,
            "/admin/youtube/subscriptions/{id}/approve",
            Access::Admin,
            approve_subscription,
        )
        .add(
            Method::POST,
            "/admin/youtube/subscriptions/{id}/decline",
            Access::Admin,
            decline_subscription,
        )
        .add(
            Method::GET,
            "/admin/youtube/profiles",
            Access::Admin,
            list_profiles,
        )
        .add(
            Method::POST,
            "/admin/youtube/profiles",
            Access::Admin,
            create_profile,
        )
        .add(Method::GET, PROFILE, Access::Admin, get_profile)
        .add(Method::PUT, PROFILE, Access::Admin, update_profile)
        .add(Method::DELETE, PROFILE, Access::Admin, delete_profile)
}

fn not_found() -> AppError {
    AppError::new(ErrorCode::NotFound)
}

/// `CONFLICT` naming the state that refused the change.
fn wrong_status(status: &str) -> AppError {
    AppError::new(ErrorCode::Conflict).with_details(json!({ "status": status }))
}

fn problems_error(problems: validate::Problems) -> AppError {
    AppError::validation(problems)
}

/// The body as a JSON object.
fn object(body: Value) -> AppResult<Map<String, Value>> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(AppError::validation([("body", "must be a JSON object")])),
    }
}

/// The subscription when the caller may see it (owner or admin); 404 otherwise, so ids of
/// others' subscriptions are not confirmed.
fn visible(found: Option<Subscription>, user_id: &str, is_admin: bool) -> AppResult<Subscription> {
    found
        .filter(|s| is_admin || s.user_id == user_id)
        .ok_or_else(not_found)
}

/// A `profile` that names no profile is a field error.
fn check_profile(conn: &rusqlite::Connection, settings: &Settings) -> AppResult<()> {
    match &settings.profile_id {
        Some(id) if !store::profile_exists(conn, id)? => Err(AppError::validation([(
            "profile",
            "is not the id of a download profile",
        )])),
        _ => Ok(()),
    }
}

/// `?status=&limit=&cursor=`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /youtube/subscriptions`: the caller's subscriptions (an admin's: everyone's), newest
/// first, optionally of one `status`. Meta `{limit, nextCursor}`.
pub async fn list_subscriptions(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<ListQuery>,
) -> AppResult<ApiResponse> {
    let status = query.status.filter(|s| !s.is_empty());
    if let Some(s) = &status
        && !model::STATUSES.contains(&s.as_str())
    {
        return Err(AppError::validation([(
            "status",
            "must be one of proposed, active, paused, declined",
        )]));
    }
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    let limit = page.limit()?;
    let scope = format!("{SCOPE_LIST}:{}", status.as_deref().unwrap_or(""));
    let before: (i64, String) = match page.cursor() {
        Some(c) => state.cursors().decode(&scope, c)?,
        None => (i64::MAX, String::new()),
    };
    let (user_id, is_admin) = (user.user_id().to_owned(), user.is_admin());
    let rows = state
        .db()
        .read(move |conn| {
            let scope = match (is_admin, status.as_deref()) {
                (false, status) => Scope::User(&user_id, status),
                (true, Some(status)) => Scope::Status(status),
                (true, None) => Scope::All,
            };
            store::list(conn, scope, (before.0, &before.1), limit + 1)
        })
        .await?;
    let (rows, next_cursor) = finish_page(state.cursors(), &scope, rows, limit, |s| {
        (s.created_at_ms, s.id.clone())
    });
    Ok(ApiResponse::with_meta(
        &rows,
        &PageMeta { limit, next_cursor },
    ))
}

/// `POST /youtube/subscriptions` `{url, intervalHours?, keepLatest?, keepDays?, after?,
/// include?, exclude?, skipShorts?, skipLive?, profile?}` -> 201 Subscription. An admin's is
/// active (due now), a user's is a proposal the admins are told about.
pub async fn create_subscription(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<Value>,
) -> AppResult<ApiResponse> {
    let mut problems = validate::Problems::new();
    let body = validate::normalized(&object(body)?, &mut problems);
    let mut settings = Settings::default();
    validate::apply_settings(&mut settings, &body, &["url"], &mut problems);
    let url = match body.get("url") {
        Some(Value::String(s)) => Some(s.clone()),
        None | Some(Value::Null) => {
            problems.push(("url".into(), "is required".into()));
            None
        }
        Some(_) => {
            problems.push(("url".into(), "must be a channel or playlist URL".into()));
            None
        }
    };
    if !problems.is_empty() {
        return Err(problems_error(problems));
    }
    let source = parse_source(url.as_deref().unwrap_or_default())?;
    let is_admin = user.is_admin();
    let user_id = user.user_id().to_owned();
    let limit = i64::from(state.config().youtube.max_subscriptions_per_user);
    let now = state.clock().now_ms();
    let (created, told) = state
        .db()
        .write(move |tx| {
            if let Some((id, status)) = store::find_by_url(tx, &source.canonical())? {
                return Err(AppError::new(ErrorCode::Conflict).with_details(json!({
                    "reason": "A subscription to this channel or playlist exists already.",
                    "existing": {"id": id, "status": status},
                })));
            }
            check_profile(tx, &settings)?;
            if !is_admin {
                // Counted and inserted in one write transaction: parallel proposals take
                // turns here, so together they never pass the quota.
                let used = store::quota_used(tx, &user_id)?;
                if used >= limit {
                    return Err(AppError::new(ErrorCode::QuotaExceeded).with_details(json!({
                        "quota": "youtube.max_subscriptions_per_user",
                        "limit": limit,
                        "used": used,
                    })));
                }
            }
            let status = if is_admin { "active" } else { "proposed" };
            let id = store::insert(tx, &user_id, &source, status, &settings, now)?;
            let created = store::get(tx, &id)?.ok_or_else(not_found)?;
            let told = if is_admin {
                Vec::new()
            } else {
                notifications::create_for_admins(
                    tx,
                    "subscription.proposed",
                    "New subscription proposal",
                    &format!(
                        "{} proposed a subscription to {}",
                        created.username, created.url
                    ),
                    Some(json!({"subscriptionId": created.id, "url": created.url})),
                    now,
                )?
            };
            Ok((created, told))
        })
        .await?;
    notifications::publish_all_created(state.events(), &told);
    // An admin's subscription is active and due now.
    state.youtube().wake_subscriptions();
    Ok(ApiResponse::created(&created))
}

/// `GET /youtube/subscriptions/{id}`: owner or admin; others 404.
pub async fn get_subscription(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<ApiResponse> {
    let found = state.db().read(move |conn| store::get(conn, &id)).await?;
    let found = visible(found, user.user_id(), user.is_admin())?;
    Ok(ApiResponse::ok(&found))
}

/// `PATCH /youtube/subscriptions/{id}` with any of the settings of the create body (`null`
/// clears one; the URL cannot change) -> the subscription. Admins always; the owner only while
/// it is proposed (403 after that).
pub async fn update_subscription(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> AppResult<ApiResponse> {
    let mut problems = validate::Problems::new();
    let body = validate::normalized(&object(body)?, &mut problems);
    // Checked once up front so bad values answer without taking the writer's turn.
    validate::apply_settings(&mut Settings::default(), &body, &[], &mut problems);
    if !problems.is_empty() {
        return Err(problems_error(problems));
    }
    let (user_id, is_admin) = (user.user_id().to_owned(), user.is_admin());
    let now = state.clock().now_ms();
    let updated = state
        .db()
        .write(move |tx| {
            let found = visible(store::get(tx, &id)?, &user_id, is_admin)?;
            if !is_admin && found.status != "proposed" {
                return Err(AppError::new(ErrorCode::Forbidden));
            }
            let mut settings = found.settings();
            let mut none = validate::Problems::new();
            validate::apply_settings(&mut settings, &body, &[], &mut none);
            check_profile(tx, &settings)?;
            store::update_settings(tx, &id, &settings, now)?;
            store::get(tx, &id)?.ok_or_else(not_found)
        })
        .await?;
    Ok(ApiResponse::ok(&updated))
}

/// `DELETE /youtube/subscriptions/{id}`: owner or admin -> `{deleted: true}`. The archive goes
/// with it; downloaded files stay where they are.
pub async fn delete_subscription(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<ApiResponse> {
    let (user_id, is_admin) = (user.user_id().to_owned(), user.is_admin());
    let now = state.clock().now_ms();
    // Its downloads not yet finished go with it: queued ones are cancelled here, running ones
    // are stopped below (the worker records them cancelled and removes their partial files).
    let running: Vec<String> = state
        .db()
        .write(move |tx| {
            visible(store::get(tx, &id)?, &user_id, is_admin)?;
            let unfinished: Vec<(String, String)> = tx
                .prepare_cached(
                    "SELECT d.id, d.status FROM youtube_subscription_items i
                       JOIN youtube_downloads d ON d.id = i.download_id
                      WHERE i.subscription_id = ?1 AND i.status = 'queued'
                        AND d.status IN ('queued', 'downloading')",
                )?
                .query_map([&id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            for (download, status) in &unfinished {
                if status == "queued" {
                    tx.prepare_cached(
                        "UPDATE youtube_downloads SET status = 'cancelled', completed_at = ?2
                          WHERE id = ?1 AND status = 'queued'",
                    )?
                    .execute(rusqlite::params![download, now])?;
                }
            }
            store::delete(tx, &id)?;
            Ok(unfinished
                .into_iter()
                .filter(|(_, status)| status == "downloading")
                .map(|(download, _)| download)
                .collect())
        })
        .await?;
    for download in running {
        if let Some(run) = state.youtube().running(&download) {
            run.cancel.cancel();
        }
    }
    Ok(ApiResponse::ok(&json!({ "deleted": true })))
}

/// `GET /youtube/subscriptions/{id}/items?limit=&cursor=`: the archive, newest first (by when
/// each video entered it). Meta `{limit, nextCursor}`.
pub async fn list_items(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Query(page): Query<PageQuery>,
) -> AppResult<ApiResponse> {
    let limit = page.limit()?;
    let scope = format!("{SCOPE_ITEMS}:{id}");
    let before: (i64, String) = match page.cursor() {
        Some(c) => state.cursors().decode(&scope, c)?,
        None => (i64::MAX, String::new()),
    };
    let (user_id, is_admin) = (user.user_id().to_owned(), user.is_admin());
    let rows = state
        .db()
        .run(move |conn| {
            // One read transaction: the owner check and the page see the same data.
            let tx = conn.transaction()?;
            visible(store::get(&tx, &id)?, &user_id, is_admin)?;
            store::items(&tx, &id, (before.0, &before.1), limit + 1)
        })
        .await?;
    let (rows, next_cursor) = finish_page(state.cursors(), &scope, rows, limit, |i| {
        (i.created_at_ms, i.id.clone())
    });
    Ok(ApiResponse::with_meta(
        &rows,
        &PageMeta { limit, next_cursor },
    ))
}

/// `POST /youtube/subscriptions/{id}/pause`: active -> paused (no more checks); 409 otherwise.
pub async fn pause_subscription(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> AppResult<ApiResponse> {
    let done = transition(&state, id, |tx, found, now| {
        store::pause(tx, &found.id, now)
    })
    .await?;
    Ok(ApiResponse::ok(&done))
}

/// Moves subscription `id` with `change` (false: not allowed from its status, 409) in one write
/// transaction and answers it as it is afterwards; 404 when there is none.
async fn transition<F>(state: &AppState, id: String, change: F) -> AppResult<Subscription>
where
    F: FnOnce(&rusqlite::Transaction<'_>, &Subscription, i64) -> AppResult<bool> + Send + 'static,
{
    let now = state.clock().now_ms();
    state
        .db()
        .write(move |tx| {
            let found = store::get(tx, &id)?.ok_or_else(not_found)?;
            if !change(tx, &found, now)? {
                return Err(wrong_status(&found.status));
            }
            store::get(tx, &id)?.ok_or_else(not_found)
        })
        .await
}

/// `POST /youtube/subscriptions/{id}/resume`: paused (or active) -> active, checked as soon as
/// the scheduler runs, any back-off lifted; 409 for a proposal or a declined one.
pub async fn resume_subscription(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> AppResult<ApiResponse> {
    let done = transition(&state, id, |tx, found, now| {
        store::resume(tx, &found.id, now)
    })
    .await?;
    state.youtube().wake_subscriptions();
    Ok(ApiResponse::ok(&done))
}

/// `POST /youtube/subscriptions/{id}/check`: "check now" for an active subscription (any
/// back-off lifted): 202, the check runs in the background (`lastCheckAt` and `lastResult` show
/// its outcome); 409 for one that is not active.
pub async fn check_subscription(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> AppResult<ApiResponse> {
    let done = transition(&state, id, |tx, found, now| {
        Ok(found.status == "active" && store::resume(tx, &found.id, now)?)
    })
    .await?;
    state.youtube().wake_subscriptions();
    Ok(ApiResponse::ok(&done).status(axum::http::StatusCode::ACCEPTED))
}

fn subject(s: &Subscription) -> String {
    s.title.clone().unwrap_or_else(|| s.url.clone())
}

/// `POST /admin/youtube/subscriptions/{id}/approve`: proposed -> active (due now); the owner
/// gets `subscription.approved`. 409 when it is not a proposal.
pub async fn approve_subscription(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
) -> AppResult<ApiResponse> {
    let admin_id = admin.user_id().to_owned();
    let now = state.clock().now_ms();
    let (done, told) = state
        .db()
        .write(move |tx| {
            let found = store::get(tx, &id)?.ok_or_else(not_found)?;
            if !store::approve(tx, &id, &admin_id, now)? {
                return Err(wrong_status(&found.status));
            }
            let told = notifications::create(
                tx,
                &found.user_id,
                "subscription.approved",
                "Subscription approved",
                &format!("Your subscription to {} was approved.", subject(&found)),
                Some(json!({"subscriptionId": found.id, "url": found.url})),
                now,
            )?;
            Ok((store::get(tx, &id)?.ok_or_else(not_found)?, told))
        })
        .await?;
    notifications::publish_created(state.events(), &done.user_id, &told);
    state.youtube().wake_subscriptions();
    Ok(ApiResponse::ok(&done))
}

/// `{reason?}`.
#[derive(Debug, Default, Deserialize)]
struct DeclineBody {
    reason: Option<Value>,
}

/// `POST /admin/youtube/subscriptions/{id}/decline` `{reason?}` (the body may be empty):
/// proposed -> declined; the owner gets `subscription.declined` with the reason. 409 when it is
/// not a proposal. A declined proposal no longer blocks its URL nor counts against the quota.
pub async fn decline_subscription(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<ApiResponse> {
    let body: DeclineBody = optional_json(&headers, &body)?;
    let reason = validate::reason(body.reason.as_ref()).map_err(problems_error)?;
    let admin_id = admin.user_id().to_owned();
    let now = state.clock().now_ms();
    let (done, told) = state
        .db()
        .write(move |tx| {
            let found = store::get(tx, &id)?.ok_or_else(not_found)?;
            if !store::decline(tx, &id, &admin_id, reason.as_deref(), now)? {
                return Err(wrong_status(&found.status));
            }
            let message = match &reason {
                Some(r) => format!("Your subscription to {} was declined: {r}", subject(&found)),
                None => format!("Your subscription to {} was declined.", subject(&found)),
            };
            let told: Notification = notifications::create(
                tx,
                &found.user_id,
                "subscription.declined",
                "Subscription declined",
                &message,
                Some(json!({"subscriptionId": found.id, "url": found.url, "reason": reason})),
                now,
            )?;
            Ok((store::get(tx, &id)?.ok_or_else(not_found)?, told))
        })
        .await?;
    notifications::publish_created(state.events(), &done.user_id, &told);
    state.youtube().wake_subscriptions();
    Ok(ApiResponse::ok(&done))
}

/// `GET /admin/youtube/profiles`: every profile, by name.
pub async fn list_profiles(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> AppResult<ApiResponse> {
    let rows = state.db().run(|conn| store::list_profiles(conn)).await?;
    Ok(ApiResponse::ok(&rows))
}

/// `GET /admin/youtube/profiles/{id}`.
pub async fn get_profile(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> AppResult<ApiResponse> {
    let found = state
        .db()
        .read(move |conn| store::get_profile(conn, &id))
        .await?
        .ok_or_else(not_found)?;
    Ok(ApiResponse::ok(&found))
}

/// `POST /admin/youtube/profiles` `{name, maxHeight?, container?, subtitles?: {languages?,
/// mode?}, sponsorblock?: {mode?, categories?}}` -> 201 Profile.
pub async fn create_profile(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiJson(body): ApiJson<Value>,
) -> AppResult<ApiResponse> {
    let input = validate::profile(&object(body)?).map_err(problems_error)?;
    let now = state.clock().now_ms();
    let created = state
        .db()
        .write(move |tx| {
            let id = store::insert_profile(tx, &input, now)?;
            store::get_profile(tx, &id)?.ok_or_else(not_found)
        })
        .await?;
    Ok(ApiResponse::created(&created))
}

/// `PUT /admin/youtube/profiles/{id}` with the whole profile -> Profile.
pub async fn update_profile(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> AppResult<ApiResponse> {
    let input = validate::profile(&object(body)?).map_err(problems_error)?;
    let now = state.clock().now_ms();
    let updated = state
        .db()
        .write(move |tx| {
            if !store::update_profile(tx, &id, &input, now)? {
                return Err(not_found());
            }
            store::get_profile(tx, &id)?.ok_or_else(not_found)
        })
        .await?;
    Ok(ApiResponse::ok(&updated))
}

/// `DELETE /admin/youtube/profiles/{id}` -> `{deleted: true}`; 409 naming (up to 10 of) the
/// subscriptions that use it.
pub async fn delete_profile(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> AppResult<ApiResponse> {
    match state
        .db()
        .write(move |tx| store::delete_profile(tx, &id))
        .await?
    {
        ProfileDeletion::Deleted => Ok(ApiResponse::ok(&json!({ "deleted": true }))),
        ProfileDeletion::NotFound => Err(not_found()),
        ProfileDeletion::InUse(ids) => {
            Err(AppError::new(ErrorCode::Conflict).with_details(json!({
                "reason": "Subscriptions use this profile.",
                "subscriptions": ids,
            })))
        }
    }
}
