//! The error log pages (`GET /admin/errors`, `GET /admin/errors/{correlationId}`) and
//! `POST /errors/report`, where the dashboard sends the errors it met in the browser.
//!
//! Reports are bounded: at most [`MAX_REPORTS`] entries; each text field is cut to its cap
//! (message [`MAX_MESSAGE_BYTES`], stack [`MAX_STACK_BYTES`], page URL [`MAX_URL_BYTES`], the
//! browser's user agent [`MAX_USER_AGENT_BYTES`], the context [`MAX_CONTEXT_BYTES`] as JSON
//! text) and the cut fields are named in the row's `metadata.truncated`. Only error-level
//! entries are stored, all in one write transaction; the others are accepted and logged at
//! debug level. A user's reports make at most `limits.error_reports_per_hour` rows an hour; an
//! entry identical to one reported in the last hour (same code, message and page) is counted on
//! that row (`metadata.occurrences`, `metadata.lastSeen`) instead. A report none of whose new
//! entries fit the quota is refused with 429 `RATE_LIMITED` and `retryAfter`.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::header::USER_AGENT;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::auth::{AdminUser, CurrentUser};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::error_log::{self, ClientError};
use crate::http::{ApiJson, RequestContext, is_valid_correlation_id};
use crate::pagination::{PageQuery, finish_page};
use crate::response::{ApiResponse, PageMeta};
use crate::state::AppState;

/// The cursor scope of the error list.
const SCOPE: &str = "admin.errors";

/// Most entries one correlation id shows (a client may reuse an id on many failing requests).
pub const MAX_CORRELATED: u32 = 1000;

/// Most entries in one report.
pub const MAX_REPORTS: usize = 20;

/// Longest stored message of a reported error (longer ones are cut).
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// Longest stored stack trace.
pub const MAX_STACK_BYTES: usize = 8 * 1024;

/// Longest stored page URL.
pub const MAX_URL_BYTES: usize = 2048;

/// Longest stored user agent.
pub const MAX_USER_AGENT_BYTES: usize = 512;

/// Largest stored context, as JSON text (a larger one is stored as its cut text).
pub const MAX_CONTEXT_BYTES: usize = 2048;

/// Longest error code (filter or reported).
const MAX_CODE_CHARS: usize = 64;

/// The code stored for a reported error that gave none.
pub const CLIENT_ERROR_CODE: &str = "CLIENT_ERROR";

/// The path stored for a reported error that gave no URL.
const REPORT_PATH: &str = "/api/v1/errors/report";

/// Codes are short identifiers; anything else is refused rather than stored or searched.
fn is_valid_code(code: &str) -> bool {
    (1..=MAX_CODE_CHARS).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `?code=&limit=&cursor=`.
#[derive(Debug, Deserialize)]
pub struct ListErrorsQuery {
    code: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /admin/errors`: newest first, optionally one code.
pub async fn list_errors(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(query): Query<ListErrorsQuery>,
) -> AppResult<ApiResponse> {
    let code = query.code.filter(|c| !c.is_empty());
    if code.as_deref().is_some_and(|c| !is_valid_code(c)) {
        return Err(AppError::validation([(
            "code",
            "must be 1 to 64 letters, digits, '_', '.' or '-'",
        )]));
    }
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    let limit = page.limit()?;
    let before: (i64, i64) = match page.cursor() {
        Some(c) => state.cursors().decode(SCOPE, c)?,
        None => (i64::MAX, i64::MAX),
    };
    let rows = state
        .db()
        .run(move |conn| error_log::list(conn, code.as_deref(), before, limit + 1))
        .await?;
    let (rows, next_cursor) = finish_page(state.cursors(), SCOPE, rows, limit, |r| {
        (r.created_at_ms, r.id)
    });
    Ok(ApiResponse::with_meta(
        &rows,
        &PageMeta { limit, next_cursor },
    ))
}

/// `GET /admin/errors/{correlationId}`: every entry logged under it, oldest first; 404 when none.
pub async fn list_correlated_errors(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(correlation_id): Path<String>,
) -> AppResult<ApiResponse> {
    // Stored ids always follow the rule, so anything else cannot match.
    if !is_valid_correlation_id(&correlation_id) {
        return Err(AppError::new(ErrorCode::NotFound));
    }
    let rows = state
        .db()
        .run(move |conn| error_log::by_correlation(conn, &correlation_id, MAX_CORRELATED))
        .await?;
    if rows.is_empty() {
        return Err(AppError::new(ErrorCode::NotFound));
    }
    Ok(ApiResponse::ok(&rows))
}

/// `POST /errors/report` body; each entry is checked by hand to name the exact field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    errors: Vec<Value>,
}

/// `{accepted, stored}`.
#[derive(Debug, Serialize)]
struct ReportOutcome {
    accepted: usize,
    stored: usize,
}

/// One checked entry, its text fields cut to their caps.
struct Entry {
    level: &'static str,
    message: String,
    code: Option<String>,
    stack: Option<String>,
    url: Option<String>,
    context: Option<Value>,
    /// The fields that were cut.
    truncated: Vec<&'static str>,
}

/// `text` cut to at most `max` bytes on a character boundary; notes `name` in `cut` if so.
fn capped(text: &str, max: usize, name: &'static str, cut: &mut Vec<&'static str>) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    cut.push(name);
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

fn optional_string(
    obj: &Map<String, Value>,
    name: &str,
    at: &str,
    fields: &mut Vec<(String, String)>,
) -> Option<String> {
    match obj.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            fields.push((format!("{at}.{name}"), "must be a string".to_owned()));
            None
        }
    }
}

/// Checks entry `i`, adding reasons to `fields`.
fn check_entry(i: usize, value: &Value, fields: &mut Vec<(String, String)>) -> Option<Entry> {
    let at = format!("errors[{i}]");
    let Some(obj) = value.as_object() else {
        fields.push((at, "must be an object".to_owned()));
        return None;
    };
    let before = fields.len();
    let mut truncated = Vec::new();
    let level = match obj.get("level").and_then(Value::as_str) {
        Some("error") => Some("error"),
        Some("warn") => Some("warn"),
        Some("info") => Some("info"),
        Some("debug") => Some("debug"),
        _ => {
            fields.push((
                format!("{at}.level"),
                "must be error, warn, info or debug".to_owned(),
            ));
            None
        }
    };
    let message = match obj.get("message").and_then(Value::as_str) {
        Some(m) if !m.trim().is_empty() => {
            Some(capped(m, MAX_MESSAGE_BYTES, "message", &mut truncated))
        }
        _ => {
            fields.push((
                format!("{at}.message"),
                "must be a non-empty string".to_owned(),
            ));
            None
        }
    };
    let code = optional_string(obj, "code", &at, fields);
    if code.as_deref().is_some_and(|c| !is_valid_code(c)) {
        fields.push((
            format!("{at}.code"),
            "must be 1 to 64 letters, digits, '_', '.' or '-'".to_owned(),
        ));
    }
    let stack = optional_string(obj, "stack", &at, fields)
        .map(|s| capped(&s, MAX_STACK_BYTES, "stack", &mut truncated));
    let url = optional_string(obj, "url", &at, fields)
        .map(|u| capped(&u, MAX_URL_BYTES, "url", &mut truncated));
    let context = obj.get("context").filter(|c| !c.is_null()).map(|c| {
        // Serializing a parsed JSON value cannot fail.
        let text = serde_json::to_string(c).unwrap_or_default();
        if text.len() <= MAX_CONTEXT_BYTES {
            c.clone()
        } else {
            Value::String(capped(&text, MAX_CONTEXT_BYTES, "context", &mut truncated))
        }
    });
    if fields.len() > before {
        return None;
    }
    Some(Entry {
        level: level?,
        message: message?,
        code,
        stack,
        url,
        context,
        truncated,
    })
}

/// `POST /errors/report`: 202 `{accepted, stored}` (`stored`: error entries recorded, as new
/// rows or counted on an identical recent one).
pub async fn report_errors(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: Option<Extension<Arc<RequestContext>>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ReportBody>,
) -> AppResult<ApiResponse> {
    if body.errors.len() > MAX_REPORTS {
        return Err(AppError::validation([(
            "errors",
            format!("must have at most {MAX_REPORTS} entries"),
        )]));
    }
    let mut fields = Vec::new();
    let entries: Vec<Entry> = body
        .errors
        .iter()
        .enumerate()
        .filter_map(|(i, v)| check_entry(i, v, &mut fields))
        .collect();
    if !fields.is_empty() {
        return Err(AppError::validation(fields));
    }

    let correlation_id = ctx.map_or_else(
        || uuid::Uuid::new_v4().to_string(),
        |Extension(c)| c.correlation_id.to_string(),
    );
    let mut agent_cut = Vec::new();
    let user_agent = headers
        .get(USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .map(|ua| capped(&ua, MAX_USER_AGENT_BYTES, "userAgent", &mut agent_cut));
    let now = state.clock().now_ms();
    let accepted = entries.len();
    // Identical entries of one report are one row with their count.
    let mut stored: Vec<(ClientError, u32)> = Vec::new();
    for e in entries {
        if e.level != "error" {
            tracing::debug!(level = e.level, message = %e.message, "client report");
            continue;
        }
        let code = e.code.unwrap_or_else(|| CLIENT_ERROR_CODE.to_owned());
        let path = e.url.unwrap_or_else(|| REPORT_PATH.to_owned());
        if let Some((_, n)) = stored
            .iter_mut()
            .find(|(s, _)| s.code == code && s.message == e.message && s.path == path)
        {
            *n += 1;
            continue;
        }
        let mut truncated = e.truncated;
        truncated.extend(agent_cut.iter().copied());
        let mut metadata = serde_json::json!({
            "level": e.level,
            "stack": e.stack,
            "context": e.context,
            "userAgent": user_agent,
        });
        if !truncated.is_empty()
            && let Some(m) = metadata.as_object_mut()
        {
            m.insert("truncated".into(), truncated.into());
        }
        stored.push((
            ClientError {
                correlation_id: correlation_id.clone(),
                user_id: user.user_id().to_owned(),
                code,
                message: e.message,
                path,
                metadata,
                at_ms: now,
            },
            1,
        ));
    }
    if stored.is_empty() {
        return Ok(ApiResponse::ok(&ReportOutcome {
            accepted,
            stored: 0,
        })
        .status(StatusCode::ACCEPTED));
    }
    let quota = state.config().limits.error_reports_per_hour;
    let recorded = state
        .db()
        .write(move |tx| {
            let done = error_log::record_client_errors(tx, &stored, quota, now)?;
            if done.over_quota > 0 && done.inserted == 0 {
                // Nothing new fits: refused whole (the transaction, repeats included, rolls back).
                let wait_ms = done.free_at_ms.unwrap_or(now) - now;
                let seconds = u64::try_from((wait_ms + 999) / 1000).unwrap_or(1);
                return Err(AppError::new(ErrorCode::RateLimited)
                    .with_details(serde_json::json!({
                        "limit": quota,
                        "windowSeconds": error_log::CLIENT_WINDOW_MS / 1000,
                    }))
                    .with_retry_after(seconds));
            }
            Ok(done)
        })
        .await?;
    if recorded.over_quota > 0 {
        tracing::debug!(
            user = %user.user_id(),
            left_out = recorded.over_quota,
            "client error reports over the hourly quota"
        );
    }
    Ok(ApiResponse::ok(&ReportOutcome {
        accepted,
        stored: recorded.entries,
    })
    .status(StatusCode::ACCEPTED))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use axum::http::StatusCode;
    use rusqlite::types::Value as Sql;
    use serde_json::json;

    use super::super::testing::{START_MS, TestApp};

    async fn log(t: &TestApp, cid: &str, code: &str, at: i64) {
        t.exec(
            "INSERT INTO error_logs (correlation_id, error_code, error_message, request_path,
                                     request_method, status_code, metadata, created_at)
             VALUES (?1, ?2, 'Something went wrong.', '/api/v1/x', 'GET', 500,
                     '{\"detail\":\"boom\"}', ?3)",
            vec![
                Sql::Text(cid.into()),
                Sql::Text(code.into()),
                Sql::Integer(at),
            ],
        )
        .await;
    }

    #[tokio::test]
    async fn list_pages_filters_and_groups_by_correlation_id() {
        let t = TestApp::new().await;
        // Seven entries, several sharing a time, so the id breaks ties across pages.
        for i in 0..7 {
            let code = if i % 2 == 0 {
                "INTERNAL_ERROR"
            } else {
                "UPSTREAM_ERROR"
            };
            log(&t, &format!("cid-{}", i / 3), code, START_MS - (i / 2)).await;
        }
        let mut seen = Vec::new();
        let mut path = "/api/v1/admin/errors?limit=2".to_owned();
        loop {
            let r = t.admin_get(&path).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.json);
            for e in r.json["data"].as_array().unwrap() {
                seen.push((
                    e["createdAt"].as_str().unwrap().to_owned(),
                    e["id"].as_i64().unwrap(),
                ));
            }
            match r.json["meta"]["nextCursor"].as_str() {
                Some(c) => path = format!("/api/v1/admin/errors?limit=2&cursor={c}"),
                None => break,
            }
        }
        assert_eq!(seen.len(), 7);
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.reverse();
        assert_eq!(seen, sorted, "newest first, id descending within a time");

        let r = t.admin_get("/api/v1/admin/errors").await;
        let first = &r.json["data"][0];
        for key in [
            "id",
            "correlationId",
            "userId",
            "code",
            "message",
            "path",
            "method",
            "statusCode",
            "metadata",
            "createdAt",
        ] {
            assert!(first.get(key).is_some(), "{key} in {first}");
        }
        assert_eq!(first["metadata"]["detail"], "boom");
        assert_eq!(first["statusCode"], 500);

        let r = t
            .admin_get("/api/v1/admin/errors?code=UPSTREAM_ERROR")
            .await;
        let data = r.json["data"].as_array().unwrap();
        assert_eq!(data.len(), 3);
        assert!(data.iter().all(|e| e["code"] == "UPSTREAM_ERROR"));
        let r = t
            .admin_get("/api/v1/admin/errors?code=not%20a%20code")
            .await;
        assert_eq!(r.code(), "VALIDATION_ERROR");
        assert!(r.json["error"]["details"]["fields"]["code"].is_string());
        let r = t.admin_get("/api/v1/admin/errors?cursor=abc").await;
        assert_eq!(r.code(), "INVALID_CURSOR");

        let r = t.admin_get("/api/v1/admin/errors/cid-1").await;
        assert_eq!(r.status, StatusCode::OK);
        let data = r.json["data"].as_array().unwrap();
        assert_eq!(data.len(), 3);
        assert!(data.iter().all(|e| e["correlationId"] == "cid-1"));
        let r = t.admin_get("/api/v1/admin/errors/unknown-id").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.code(), "NOT_FOUND");
    }

    #[tokio::test]
    async fn reports_are_bounded_and_error_entries_stored() {
        let t = TestApp::new().await;
        let tok = Some(t.admin_token.as_str());
        let entry = json!({"level": "error", "message": "x"});

        let r = t
            .call(
                "POST",
                "/api/v1/errors/report",
                None,
                Some(json!({"errors": [entry]})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);

        let many = vec![entry.clone(); 21];
        let r = t
            .call(
                "POST",
                "/api/v1/errors/report",
                tok,
                Some(json!({"errors": many})),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.json["error"]["details"]["fields"]["errors"].is_string());

        let r = t
            .call(
                "POST",
                "/api/v1/errors/report",
                tok,
                Some(
                    json!({"errors": [entry, {"level": "error", "message": 7}, {"level": "fatal", "message": ""}, 3]}),
                ),
            )
            .await;
        assert_eq!(r.code(), "VALIDATION_ERROR");
        let fields = &r.json["error"]["details"]["fields"];
        assert!(fields["errors[1].message"].is_string(), "{fields}");
        assert!(fields["errors[2].level"].is_string(), "{fields}");
        assert!(fields["errors[2].message"].is_string(), "{fields}");
        assert!(fields["errors[3]"].is_string(), "{fields}");
        assert!(fields.get("errors[0]").is_none(), "{fields}");

        let r = t
            .call_with(
                "POST",
                "/api/v1/errors/report",
                tok,
                Some(json!({"errors": [
                    {"level": "error", "message": "TypeError: x is undefined", "stack": "at f (app.js:1)",
                     "url": "/dashboard", "context": {"view": "home"}},
                    {"level": "warn", "message": "slow"},
                    {"level": "error", "message": "fetch failed", "code": "NETWORK"},
                ]})),
                &[("x-correlation-id", "report-42")],
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
        assert_eq!(r.json["data"], json!({"accepted": 3, "stored": 2}));

        let r = t.admin_get("/api/v1/admin/errors/report-42").await;
        let data = r.json["data"].as_array().unwrap();
        assert_eq!(data.len(), 2);
        let first = &data[0];
        assert_eq!(first["code"], "CLIENT_ERROR");
        assert_eq!(first["method"], "CLIENT");
        assert_eq!(first["path"], "/dashboard");
        assert_eq!(first["statusCode"], serde_json::Value::Null);
        assert_eq!(first["userId"], t.admin_id.as_str());
        assert_eq!(first["metadata"]["stack"], "at f (app.js:1)");
        assert_eq!(first["metadata"]["context"]["view"], "home");
        assert_eq!(first["metadata"]["level"], "error");
        assert_eq!(data[1]["code"], "NETWORK");
        assert_eq!(data[1]["path"], "/api/v1/errors/report");
    }
}
