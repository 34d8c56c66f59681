//! The problem endpoints: report one, the caller's list and one problem, comment, and the
//! admin's list, resolve and reopen.
//!
//! Another user's problem answers 404, exactly like an id that does not exist. Every change is
//! made on Seerr first (as the caller's Seerr account, or the API key's admin for an admin
//! without one) and stored here only once Seerr accepted it, so a Seerr that is down leaves
//! nothing behind (502/503/504 with the correlation id).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::changes::{self, Change, NewComment};
use super::store::{self, Filter, NewProblem, ProblemRow};
use crate::auth::{AdminUser, CurrentUser};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::{ApiJson, optional_json};
use crate::integrations::overseerr::{
    Issue, IssueChange, IssueOutcome, IssueStatus, IssueType, MediaInfo, MediaStatus, MediaType,
    Overseerr,
};
use crate::media::requests::overseerr_user;
use crate::media::search::overseerr;
use crate::pagination::{PageQuery, finish_page};
use crate::response::ApiResponse;
use crate::state::AppState;

/// Longest message or comment, in characters.
pub const MAX_MESSAGE_CHARS: usize = 2000;
/// Reports a user (not an admin) may make in an hour: enough for a bad evening, not a flood of
/// Seerr issues.
pub const MAX_REPORTS_PER_HOUR: i64 = 10;
/// Comments a user (not an admin) may write in an hour.
pub const MAX_COMMENTS_PER_HOUR: i64 = 30;
const HOUR_MS: i64 = 3_600_000;

/// `POST /media/problems` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateBody {
    media_type: String,
    tmdb_id: Value,
    #[serde(rename = "type")]
    problem_type: String,
    message: String,
    #[serde(default)]
    season: Option<Value>,
    #[serde(default)]
    episode: Option<Value>,
}

/// A checked create body (season and episode still to check against the show).
#[derive(Debug, Clone, PartialEq)]
struct NewInput {
    media_type: MediaType,
    tmdb_id: i64,
    problem_type: IssueType,
    message: String,
    season: Option<u32>,
    episode: Option<u32>,
}

/// A trimmed message of 1 to [`MAX_MESSAGE_CHARS`] characters, or what is wrong with it.
fn checked_message(text: &str) -> Result<String, String> {
    let text = text.trim();
    let chars = text.chars().count();
    if chars == 0 || chars > MAX_MESSAGE_CHARS {
        return Err(format!("must be 1 to {MAX_MESSAGE_CHARS} characters"));
    }
    Ok(text.to_owned())
}

fn validate(body: CreateBody) -> AppResult<NewInput> {
    let mut fields: Vec<(&str, String)> = Vec::new();
    let (media_type, tmdb_id) =
        crate::media::requests::check_title(&body.media_type, &body.tmdb_id, &mut fields);
    let problem_type = IssueType::ALL
        .into_iter()
        .find(|t| t.as_str() == body.problem_type);
    if problem_type.is_none() {
        fields.push(("type", "must be video, audio, subtitles or other".into()));
    }
    let message = checked_message(&body.message)
        .map_err(|e| fields.push(("message", e)))
        .ok();
    let mut number = |name: &'static str, value: &Option<Value>| match value {
        None | Some(Value::Null) => None,
        Some(v) => {
            let n = v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n <= 10_000);
            if n.is_none() {
                fields.push((name, "must be a whole number".into()));
            }
            n
        }
    };
    let season = number("season", &body.season);
    let episode = number("episode", &body.episode);
    if media_type == Some(MediaType::Movie) && (season.is_some() || episode.is_some()) {
        fields.push((
            "season",
            "only a show's problems have a season and episode".into(),
        ));
    }
    if episode.is_some() && season.is_none() {
        fields.push(("episode", "needs a season".into()));
    }
    // Seerr stores `problemSeason` 0 as "not about one season" (server/routes/issue.ts,
    // server/entity/Issue.ts): a report about the specials would silently become one about the
    // whole show.
    if season == Some(0) {
        fields.push((
            "season",
            "must be 1 or more (Seerr cannot take a report about the specials)".into(),
        ));
    }
    if episode == Some(0) {
        fields.push(("episode", "must be 1 or more".into()));
    }
    match (media_type, tmdb_id, problem_type, message) {
        (Some(media_type), Some(tmdb_id), Some(problem_type), Some(message))
            if fields.is_empty() =>
        {
            Ok(NewInput {
                media_type,
                tmdb_id,
                problem_type,
                message,
                season,
                episode,
            })
        }
        _ => Err(AppError::validation(fields)),
    }
}

/// The hourly cap `limit` is reached.
fn quota(limit: i64) -> AppError {
    AppError::new(ErrorCode::QuotaExceeded)
        .with_details(json!({ "limit": limit, "windowSeconds": 3600 }))
        .with_retry_after(600)
}

fn refused(message: &str) -> AppError {
    AppError::new(ErrorCode::Forbidden).with_details(json!({ "reason": message }))
}

fn conflict(reason: &str) -> AppError {
    AppError::new(ErrorCode::Conflict).with_details(json!({ "reason": reason }))
}

/// The Seerr account the caller acts as: their own, else (admins only, or everyone with
/// `overseerr.fallback_to_admin`) the API key's admin.
async fn acting_as(
    state: &AppState,
    client: &Overseerr,
    user_id: &str,
    is_admin: bool,
) -> AppResult<Option<i64>> {
    match overseerr_user(state, client, user_id).await? {
        Some(id) => Ok(Some(id)),
        None if is_admin || state.config().overseerr.fallback_to_admin => Ok(None),
        None => Err(refused(
            "Your account is not linked to a Seerr user. Ask the server owner to import you into Seerr.",
        )),
    }
}

/// The title's name, poster, Seerr media info and seasons (`(number, episodes)`), read fresh
/// from Seerr (availability must be current).
struct Title {
    name: String,
    poster_path: Option<String>,
    info: Option<MediaInfo>,
    seasons: Vec<(i64, i64)>,
}

async fn title(client: &Overseerr, media_type: MediaType, tmdb_id: i64) -> AppResult<Title> {
    let found = match media_type {
        MediaType::Movie => client.movie(tmdb_id).await?.map(|m| Title {
            name: m.title,
            poster_path: m.poster_path,
            info: m.media_info,
            seasons: Vec::new(),
        }),
        MediaType::Tv => client.tv(tmdb_id).await?.map(|t| Title {
            name: t.title,
            poster_path: t.poster_path,
            info: t.media_info,
            seasons: t
                .seasons
                .iter()
                .map(|s| (s.season_number, s.episode_count))
                .collect(),
        }),
    };
    found.ok_or_else(|| AppError::new(ErrorCode::NotFound))
}

/// `POST /media/problems`: 201 with the stored problem.
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<CreateBody>,
) -> AppResult<ApiResponse> {
    let input = validate(body)?;
    // Held from the count to the insert: parallel reports take turns.
    let _user_turn = state.problems().lock_user(user.user_id()).await;
    if !user.is_admin() {
        let (caller, since) = (user.user_id().to_owned(), state.clock().now_ms() - HOUR_MS);
        let recent = state
            .db()
            .run(move |conn| store::reported_since(conn, &caller, since))
            .await?;
        if recent >= MAX_REPORTS_PER_HOUR {
            return Err(quota(MAX_REPORTS_PER_HOUR));
        }
    }
    let client = overseerr(&state).await?;
    let found = title(&client, input.media_type, input.tmdb_id).await?;
    let media_id = found
        .info
        .as_ref()
        .filter(|i| {
            matches!(
                i.status,
                MediaStatus::Available | MediaStatus::PartiallyAvailable
            )
        })
        .and_then(|i| i.id);
    let Some(media_id) = media_id else {
        return Err(conflict(
            "Only a title that is available on the server can have a problem report.",
        ));
    };
    if let Some(season) = input.season {
        match found.seasons.iter().find(|(n, _)| *n == i64::from(season)) {
            None => {
                return Err(AppError::validation([(
                    "season",
                    "is not one of the show's seasons",
                )]));
            }
            Some((_, episodes)) => {
                if input
                    .episode
                    .is_some_and(|e| *episodes > 0 && i64::from(e) > *episodes)
                {
                    return Err(AppError::validation([(
                        "episode",
                        format!("season {season} has {episodes} episodes"),
                    )]));
                }
            }
        }
    }
    let caller = user.user_id().to_owned();
    let as_user = acting_as(&state, &client, &caller, user.is_admin()).await?;
    let outcome = client
        .create_issue(
            as_user,
            media_id,
            input.problem_type,
            &input.message,
            input.season.unwrap_or(0),
            input.episode.unwrap_or(0),
        )
        .await?;
    let issue = match outcome {
        IssueOutcome::Created(issue) => issue,
        IssueOutcome::UnknownMedia => {
            return Err(conflict(
                "Seerr does not know this title's media any more; try again later.",
            ));
        }
        IssueOutcome::Refused { .. } => {
            state.media().user_map.invalidate(&caller);
            return Err(refused(
                "Seerr refused the report: your Seerr account needs the \"Report Issues\" permission.",
            ));
        }
    };
    let new = NewProblem {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: caller,
        media_type: input.media_type.as_str().to_owned(),
        tmdb_id: input.tmdb_id,
        title: found.name,
        poster_path: found.poster_path,
        seerr_media_id: media_id,
        seerr_issue_id: issue.id,
        problem_type: input.problem_type.as_str().to_owned(),
        message: input.message,
        season: input.season.map(i64::from),
        episode: input.episode.map(i64::from),
        status: "open".into(),
        now_ms: state.clock().now_ms(),
        // Without X-API-User the API key acts as user 1 (server/middleware/auth.ts).
        seerr_user_id: Some(
            issue
                .created_by
                .as_ref()
                .map_or(as_user.unwrap_or(1), |u| u.id),
        ),
    };
    // Under the issue's lock: an ISSUE_CREATED that raced this answer has either stored its
    // row already (which this report then owns) or waits and finds this one.
    let _issue_turn = state.problems().lock_issue(issue.id).await;
    let row = state
        .db()
        .write(move |tx| store::upsert_own(tx, &new))
        .await?
        .ok_or_else(|| AppError::internal("a stored problem could not be read back"))?;
    Ok(ApiResponse::created(&row))
}

/// The list query.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

async fn list(
    state: &AppState,
    filter: Filter,
    scope: String,
    query: ListQuery,
) -> AppResult<ApiResponse> {
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    let limit = page.limit()?;
    let after: Option<(i64, String)> = match page.cursor() {
        Some(c) => Some(state.cursors().decode(&scope, c)?),
        None => None,
    };
    let rows = state
        .db()
        .read(move |conn| store::list(conn, &filter, after.as_ref(), limit))
        .await?;
    let (rows, next_cursor) =
        finish_page(state.cursors(), &scope, rows, limit, |r: &ProblemRow| {
            (r.created_at_ms, r.id.clone())
        });
    Ok(ApiResponse::with_meta(
        &rows,
        &crate::response::PageMeta { limit, next_cursor },
    ))
}

/// `GET /media/problems`: the caller's reports, newest first.
pub async fn list_mine(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<ListQuery>,
) -> AppResult<ApiResponse> {
    if query.status.is_some() {
        return Err(AppError::validation([("status", "is for the admin list")]));
    }
    let filter = Filter::User(user.user_id().to_owned());
    list(&state, filter, "problems.mine".into(), query).await
}

/// `GET /admin/problems?status=open|resolved|all` (default `open`).
pub async fn list_all(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(query): Query<ListQuery>,
) -> AppResult<ApiResponse> {
    let status = query.status.clone().unwrap_or_else(|| "open".into());
    let filter = match status.as_str() {
        "open" | "resolved" => Filter::Status(status.clone()),
        "all" => Filter::All,
        _ => {
            return Err(AppError::validation([(
                "status",
                "must be open, resolved or all",
            )]));
        }
    };
    list(&state, filter, format!("problems.admin.{status}"), query).await
}

/// One problem with its comments.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WithComments {
    #[serde(flatten)]
    problem: ProblemRow,
    comments: Vec<store::CommentRow>,
}

/// The problem `id` if the caller may see it (theirs, or any for an admin), with comments.
async fn visible(
    state: &AppState,
    id: String,
    caller: &str,
    is_admin: bool,
) -> AppResult<WithComments> {
    let caller = caller.to_owned();
    state
        .db()
        .read(move |conn| {
            let Some(problem) = store::get(conn, &id)? else {
                return Ok(None);
            };
            if problem.user_id != caller && !is_admin {
                return Ok(None);
            }
            let comments = store::comments(conn, &problem.id)?;
            Ok(Some(WithComments { problem, comments }))
        })
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::NotFound))
}

/// `GET /media/problems/{id}`: one of the caller's problems (any, for an admin).
pub async fn get_one(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<ApiResponse> {
    let found = visible(&state, id, user.user_id(), user.is_admin()).await?;
    Ok(ApiResponse::ok(&found))
}

/// `{message}` of a comment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    message: String,
}

/// `{comment?}` of a resolve or reopen.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    #[serde(default)]
    comment: Option<String>,
}

fn gone_from_seerr() -> AppError {
    conflict("Seerr no longer has this issue.")
}

/// The issue after a change Seerr accepted; its refusal (401/403) is a 403 naming the missing
/// permission, not an upstream failure.
fn done_on_seerr(answer: IssueChange) -> AppResult<Box<Issue>> {
    match answer {
        IssueChange::Done(issue) => Ok(issue),
        IssueChange::NotFound => Err(gone_from_seerr()),
        IssueChange::Refused { message } => {
            tracing::info!(%message, "Seerr refused an issue change");
            Err(refused(
                "Seerr refused the change: the Seerr account you act as needs the \"Manage Issues\" permission (or must be the one that reported the issue).",
            ))
        }
    }
}

/// The display name a comment made here carries.
async fn author_name(state: &AppState, user_id: &str) -> AppResult<String> {
    let id = user_id.to_owned();
    state
        .db()
        .run(move |conn| {
            use rusqlite::OptionalExtension;
            Ok(conn
                .prepare_cached("SELECT coalesce(name, username) FROM users WHERE id = ?1")?
                .query_row([&id], |r| r.get::<_, String>(0))
                .optional()?
                .unwrap_or_default())
        })
        .await
}

/// Sets the status on Seerr (when `status`), comments there (when `comment`), then stores both
/// and notifies the reporter, holding the issue's lock throughout.
async fn change(
    state: &AppState,
    problem: ProblemRow,
    caller: &str,
    is_admin: bool,
    comment: Option<String>,
    status: Option<IssueStatus>,
) -> AppResult<WithComments> {
    let client = overseerr(state).await?;
    let _turn = state.problems().lock_issue(problem.seerr_issue_id).await;
    // The reporter acts as the account the issue was created as (theirs, or the API key's
    // admin for a report made as them); anyone else as their own.
    let as_user = match problem.seerr_user_id {
        Some(created_as) if problem.user_id == caller => Some(created_as),
        _ => acting_as(state, &client, caller, is_admin).await?,
    };
    // The status first: a Seerr account without MANAGE_ISSUES is refused it (401), and then
    // nothing was changed on Seerr, where commenting first would leave the comment behind.
    if let Some(status) = status {
        done_on_seerr(
            client
                .set_issue_status(as_user, problem.seerr_issue_id, status)
                .await?,
        )?;
    }
    let mut posted = None;
    if let Some(message) = &comment {
        let issue = done_on_seerr(
            client
                .comment_issue(as_user, problem.seerr_issue_id, message)
                .await?,
        )?;
        // The answer is the whole issue with its comments (the comment route of
        // server/routes/issue.ts): the newest comment with this text by the
        // account acted as (the API key's is user 1) is the one just made.
        let acted_as = as_user.unwrap_or(1);
        posted = issue
            .comments
            .iter()
            .filter(|c| c.message == *message && c.user.as_ref().is_none_or(|u| u.id == acted_as))
            .max_by_key(|c| c.id)
            .map(|c| {
                let by = c.user.as_ref();
                (
                    c.id,
                    changes::seerr_author(
                        by.and_then(|u| u.email.as_deref()),
                        by.and_then(|u| u.display_name.as_deref()),
                    ),
                )
            });
    }
    let author = author_name(state, caller).await?;
    let change = Change {
        comment: comment.map(|message| NewComment {
            user_id: Some(caller.to_owned()),
            author,
            seerr_author: posted.as_ref().and_then(|(_, by)| by.clone()),
            seerr_message: crate::integrations::overseerr::webhook::template_filled(
                "comment_message",
                &message,
            )
            .chars()
            .take(MAX_MESSAGE_CHARS)
            .collect(),
            seerr_comment_id: posted.as_ref().map(|(id, _)| *id),
            echo_pending: true,
            message,
        }),
        status: status.map(IssueStatus::as_str),
        by_reporter: problem.user_id == caller,
    };
    changes::apply(state, &problem.id, change).await?;
    visible(state, problem.id, caller, is_admin).await
}

/// `POST /media/problems/{id}/comments` `{message}`: the reporter or an admin comments.
pub async fn comment(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CommentBody>,
) -> AppResult<ApiResponse> {
    let message =
        checked_message(&body.message).map_err(|e| AppError::validation([("message", e)]))?;
    let found = visible(&state, id, user.user_id(), user.is_admin()).await?;
    // Held from the count to the stored comment, as for reports.
    let _user_turn = state.problems().lock_user(user.user_id()).await;
    if !user.is_admin() {
        let (caller, since) = (user.user_id().to_owned(), state.clock().now_ms() - HOUR_MS);
        let recent = state
            .db()
            .run(move |conn| store::commented_since(conn, &caller, since))
            .await?;
        if recent >= MAX_COMMENTS_PER_HOUR {
            return Err(quota(MAX_COMMENTS_PER_HOUR));
        }
    }
    let done = change(
        &state,
        found.problem,
        user.user_id(),
        user.is_admin(),
        Some(message),
        None,
    )
    .await?;
    Ok(ApiResponse::ok(&done))
}

async fn set_status(
    state: AppState,
    admin: AdminUser,
    id: String,
    headers: HeaderMap,
    body: Bytes,
    status: IssueStatus,
) -> AppResult<ApiResponse> {
    let body: StatusBody = optional_json(&headers, &body)?;
    let comment = match body.comment.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => {
            Some(checked_message(text).map_err(|e| AppError::validation([("comment", e)]))?)
        }
    };
    let found = visible(&state, id, admin.user_id(), true).await?;
    let done = change(
        &state,
        found.problem,
        admin.user_id(),
        true,
        comment,
        Some(status),
    )
    .await?;
    Ok(ApiResponse::ok(&done))
}

/// `POST /admin/problems/{id}/resolve` `{comment?}`.
pub async fn resolve(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<ApiResponse> {
    set_status(state, admin, id, headers, body, IssueStatus::Resolved).await
}

/// `POST /admin/problems/{id}/reopen` `{comment?}`.
pub async fn reopen(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<ApiResponse> {
    set_status(state, admin, id, headers, body, IssueStatus::Open).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn body(value: Value) -> CreateBody {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn bodies_are_checked_field_by_field() {
        let ok = validate(body(
            json!({"mediaType": "tv", "tmdbId": 1399, "type": "subtitles",
                                      "message": "  out of sync ", "season": 1, "episode": 3}),
        ))
        .unwrap();
        assert_eq!(ok.message, "out of sync");
        assert_eq!((ok.season, ok.episode), (Some(1), Some(3)));
        let fields = |v: Value| match validate(body(v)).unwrap_err() {
            AppError::Api {
                details: Some(d), ..
            } => d["fields"].clone(),
            _ => Value::Null,
        };
        let bad = fields(json!({"mediaType": "movie", "tmdbId": 603, "type": "smell",
                                "message": " ", "season": 1}));
        for name in ["type", "message", "season"] {
            assert!(bad.get(name).is_some(), "{name}: {bad}");
        }
        let long = "x".repeat(MAX_MESSAGE_CHARS + 1);
        assert!(
            fields(json!({"mediaType": "movie", "tmdbId": 603, "type": "video", "message": long}))
                .get("message")
                .is_some()
        );
        assert!(fields(json!({"mediaType": "tv", "tmdbId": 1, "type": "video", "message": "x", "episode": 2})).get("episode").is_some());
        assert!(fields(json!({"mediaType": "tv", "tmdbId": 1399, "type": "video", "message": "x", "season": 0})).get("season").is_some());
        assert!(fields(json!({"mediaType": "tv", "tmdbId": 1399, "type": "video", "message": "x", "season": 0, "episode": 1})).get("season").is_some());
        assert!(
            fields(json!({"mediaType": "tv", "tmdbId": -1, "type": "video", "message": "x"}))
                .get("tmdbId")
                .is_some()
        );
    }
}
