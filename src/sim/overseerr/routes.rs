//! The fake Overseerr's authenticated routes: search, the five discover rows, movie and TV
//! details, users and requests
//! (UPSTREAMS.md 2.1, 2.5, 2.6), with Overseerr's auth answers (401 without `X-Api-Key`, the
//! 403 guard body for a wrong key or an unknown `X-API-User`) and its validator's 400 for a
//! search `query` that is not strictly percent-encoded.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use super::FakeNotification;
use super::library::{NewRequest, Reply, guard_refusal};
use super::{Shared, SimState};
use crate::integrations::overseerr::model::{boolean, int};
use crate::integrations::overseerr::{
    DiscoverRow, Flavor, MediaRequestStatus, MediaType, NotificationType,
};

/// Overseerr's default `take` on lists.
const DEFAULT_TAKE: usize = 10;

pub(super) fn routes() -> Router<Arc<Shared>> {
    // The five discover rows, at the paths our client asks for (one handler, the row bound).
    let rows = DiscoverRow::ALL
        .into_iter()
        .fold(Router::new(), |router, row| {
            router.route(
                &format!("/api/v1{}", row.path()),
                get(
                    move |State(shared): State<Arc<Shared>>,
                          headers: HeaderMap,
                          RawQuery(raw): RawQuery| async move {
                        discover(&shared, &headers, raw.as_deref(), row)
                    },
                ),
            )
        });
    Router::new()
        .merge(rows)
        .route("/api/v1/search", get(search))
        .route("/api/v1/movie/{id}", get(movie))
        .route("/api/v1/tv/{id}", get(tv))
        .route("/api/v1/user", get(users))
        .route("/api/v1/request", get(list_requests).post(create_request))
        .route("/api/v1/request/count", get(count_requests))
        .route(
            "/api/v1/request/{id}",
            get(get_request).delete(delete_request),
        )
        .route("/api/v1/request/{id}/approve", post(approve_request))
        .route("/api/v1/request/{id}/decline", post(decline_request))
}

pub(super) fn respond((status, body): Reply) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match body {
        Some(body) => (status, axum::Json(body)).into_response(),
        None => status.into_response(),
    }
}

pub(super) fn bad_request(path: &str, text: &str) -> Reply {
    (
        400,
        Some(json!({"message": text, "errors": [{"path": path, "message": text}]})),
    )
}

/// The acting user's id: user 1 for the API key alone, the `X-API-User` otherwise.
pub(super) fn authenticate(state: &SimState, headers: &HeaderMap) -> Result<i64, Reply> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(key) = header("x-api-key") else {
        // The OpenAPI validator runs first and asks for the session cookie.
        let text = "cookie 'connect.sid' required";
        return Err((
            401,
            Some(
                json!({"message": text, "errors": [{"path": ".headers.cookie", "message": text}]}),
            ),
        ));
    };
    if key != state.api_key {
        return Err(guard_refusal());
    }
    let id = match header("x-api-user") {
        None => 1,
        Some(value) => value.trim().parse().map_err(|_| guard_refusal())?,
    };
    match state.library.user(id) {
        Some(_) => Ok(id),
        None => Err(guard_refusal()),
    }
}

/// Authenticates, then runs `f` with the state locked (never across an `.await`).
fn authed(
    shared: &Shared,
    headers: &HeaderMap,
    f: impl FnOnce(&mut SimState, i64) -> Reply,
) -> Response {
    let reply = {
        let mut state = shared.lock();
        match authenticate(&state, headers) {
            Ok(acting) => f(&mut state, acting),
            Err(reply) => reply,
        }
    };
    respond(reply)
}

/// The raw (still encoded) query parameters, in order.
fn raw_params(raw: Option<&str>) -> Vec<(&str, &str)> {
    raw.unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .collect()
}

fn decode(raw: &str) -> Option<String> {
    percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// A decoded parameter (form-style: `+` is a space, as Express reads it).
fn param(raw: Option<&str>, name: &str) -> Option<String> {
    raw_params(raw)
        .into_iter()
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| decode(&value.replace('+', " ")))
}

fn number_param(raw: Option<&str>, name: &str, default: usize) -> Result<usize, Reply> {
    match param(raw, name) {
        None => Ok(default),
        Some(value) => value.trim().parse().map_err(|_| {
            bad_request(
                &format!(".query.{name}"),
                &format!("request.query.{name} should be number"),
            )
        }),
    }
}

/// The OpenAPI validator's refusal of a query parameter the spec does not list
/// (express-openapi-validator, which both upstreams run with `validateRequests: true` and
/// without `allowUnknownQueryParameters`; server/index.ts in sct/overseerr and seerr-team/seerr).
/// Which parameters are listed differs: `overseerr-api.yml` (sct/overseerr 1.34.0) against
/// `seerr-api.yml` (seerr-team/seerr develop).
fn unknown_param(raw: Option<&str>, allowed: &[&str]) -> Option<Reply> {
    let unknown = raw_params(raw)
        .into_iter()
        .map(|(key, _)| key)
        .find(|key| !allowed.contains(key))?;
    Some(bad_request(
        &format!(".query.{unknown}"),
        &format!("Unknown query parameter '{unknown}'"),
    ))
}

/// Whether a raw query value is what Overseerr's validator accepts: unreserved bytes and
/// `%XX` escapes only (no `+`, `!`, `(`, `)`, `*`, `'`, `:` ...).
fn strictly_encoded(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => i += 1,
            b'%' if bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit) =>
            {
                i += 3;
            }
            _ => return false,
        }
    }
    true
}

async fn search(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    authed(&shared, &headers, |state, _| {
        let raw = raw.as_deref();
        if let Some(reply) = unknown_param(raw, &["query", "page", "language"]) {
            return reply;
        }
        let Some((_, encoded)) = raw_params(raw).into_iter().find(|(k, _)| *k == "query") else {
            return bad_request(
                ".query.query",
                "request.query should have required property 'query'",
            );
        };
        let decoded = decode(encoded).filter(|_| strictly_encoded(encoded));
        let Some(query) = decoded else {
            return bad_request(
                ".query.query",
                "Parameter 'query' must be url encoded. Its value may not contain reserved characters.",
            );
        };
        state.library.last_search = Some((encoded.to_owned(), query.clone()));
        match number_param(raw, "page", 1) {
            Ok(page) => state.library.search(&query, page.max(1)),
            Err(reply) => reply,
        }
    })
}

/// The query parameters seerr-team/seerr's `seerr-api.yml` lists for the discover rows the
/// fake serves: `page` and `language` on trending and upcoming; on `/discover/movies` and
/// `/discover/tv` the filters too (here the union of both lists; MediaNest sends only `page`).
const DISCOVER_PARAMS: &[&str] = &["page", "language"];
const DISCOVER_FILTER_PARAMS: &[&str] = &[
    "page",
    "language",
    "genre",
    "studio",
    "network",
    "keywords",
    "excludeKeywords",
    "sortBy",
    "primaryReleaseDateGte",
    "primaryReleaseDateLte",
    "firstAirDateGte",
    "firstAirDateLte",
    "withRuntimeGte",
    "withRuntimeLte",
    "voteAverageGte",
    "voteAverageLte",
    "voteCountGte",
    "voteCountLte",
    "watchRegion",
    "watchProviders",
    "status",
    "certification",
    "certificationGte",
    "certificationLte",
    "certificationCountry",
    "certificationMode",
];

fn discover(shared: &Shared, headers: &HeaderMap, raw: Option<&str>, row: DiscoverRow) -> Response {
    authed(shared, headers, |state, _| {
        let allowed = match row {
            DiscoverRow::PopularMovies | DiscoverRow::PopularTv => DISCOVER_FILTER_PARAMS,
            _ => DISCOVER_PARAMS,
        };
        if let Some(reply) = unknown_param(raw, allowed) {
            return reply;
        }
        match number_param(raw, "page", 1) {
            Ok(page) => state.library.discover(row, page.max(1)),
            Err(reply) => reply,
        }
    })
}

fn details(shared: &Shared, headers: &HeaderMap, media_type: MediaType, id: &str) -> Response {
    authed(shared, headers, |state, _| match id.parse() {
        Ok(id) => state.library.details(media_type, id),
        Err(_) => bad_request(".params.id", "request.params.id should be number"),
    })
}

async fn movie(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    details(&shared, &headers, MediaType::Movie, &id)
}

async fn tv(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    details(&shared, &headers, MediaType::Tv, &id)
}

async fn users(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    authed(&shared, &headers, |state, acting| {
        let manager = state.library.user(acting).is_some_and(|u| {
            u.permissions & (super::permission::ADMIN | super::permission::MANAGE_USERS) != 0
        });
        if !manager {
            return guard_refusal();
        }
        let raw = raw.as_deref();
        let allowed: &[&str] = match state.library.flavor {
            Flavor::Overseerr => &["take", "skip", "sort"],
            Flavor::Seerr => &["take", "skip", "sort", "q", "includeIds"],
        };
        if let Some(reply) = unknown_param(raw, allowed) {
            return reply;
        }
        match (
            number_param(raw, "take", DEFAULT_TAKE),
            number_param(raw, "skip", 0),
        ) {
            (Ok(take), Ok(skip)) => state.library.list_users(take.max(1), skip),
            (Err(reply), _) | (_, Err(reply)) => reply,
        }
    })
}

/// Reads `POST /request`'s body as Overseerr's validator would.
fn new_request(body: &[u8]) -> Result<NewRequest, Reply> {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
        return Err(bad_request(".body", "request.body should be object"));
    };
    let media_type = match body.get("mediaType").and_then(Value::as_str) {
        Some("movie") => MediaType::Movie,
        Some("tv") => MediaType::Tv,
        Some(_) => {
            return Err(bad_request(
                ".body.mediaType",
                "request.body.mediaType should be equal to one of the allowed values",
            ));
        }
        None => {
            return Err(bad_request(
                ".body.mediaType",
                "request.body should have required property 'mediaType'",
            ));
        }
    };
    let Some(media_id) = body.get("mediaId").filter(|v| v.is_number()).and_then(int) else {
        return Err(bad_request(
            ".body.mediaId",
            "request.body should have required property 'mediaId'",
        ));
    };
    let seasons = match body.get("seasons") {
        Some(Value::String(all)) if all == "all" => None,
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(items)) => {
            let numbers: Option<Vec<u32>> = items
                .iter()
                .map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()))
                .collect();
            Some(numbers.ok_or_else(|| {
                bad_request(".body.seasons", "request.body.seasons should be number")
            })?)
        }
        Some(_) => {
            return Err(bad_request(
                ".body.seasons",
                "request.body.seasons should be array",
            ));
        }
    };
    Ok(NewRequest {
        media_type,
        media_id,
        seasons,
        is4k: body.get("is4k").and_then(boolean).unwrap_or(false),
        user_id: body.get("userId").and_then(int),
    })
}

async fn create_request(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (reply, hook) = {
        let mut state = shared.lock();
        let reply = match authenticate(&state, &headers) {
            Ok(acting) => match new_request(&body) {
                Ok(new) => state.library.create(acting, new),
                Err(reply) => reply,
            },
            Err(reply) => reply,
        };
        let created = (reply.0 == 201)
            .then(|| reply.1.as_ref().and_then(|b| b.get("id")).and_then(int))
            .flatten();
        let hook = match (created, state.hook_on_create.clone(), state.webhook.clone()) {
            (Some(id), Some(kind), Some((url, authorization))) => {
                if kind == NotificationType::MediaApproved {
                    state
                        .library
                        .set_request_status(id, MediaRequestStatus::Approved);
                }
                let body = super::control::payload(&state, &FakeNotification::about(kind, id));
                Some((url, authorization, body))
            }
            _ => None,
        };
        (reply, hook)
    };
    if let Some((url, authorization, body)) = hook {
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        // MediaNest's answer does not matter here: the agent only logs a failure.
        let _ = super::control::post_webhook(&url, authorization.as_deref(), bytes).await;
    }
    respond(reply)
}

async fn list_requests(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    authed(&shared, &headers, |state, acting| {
        let raw = raw.as_deref();
        let allowed: &[&str] = match state.library.flavor {
            Flavor::Overseerr => &["take", "skip", "filter", "sort", "requestedBy"],
            Flavor::Seerr => &[
                "take",
                "skip",
                "filter",
                "sort",
                "sortDirection",
                "requestedBy",
                "mediaType",
            ],
        };
        if let Some(reply) = unknown_param(raw, allowed) {
            return reply;
        }
        let (take, skip) = match (
            number_param(raw, "take", DEFAULT_TAKE),
            number_param(raw, "skip", 0),
        ) {
            (Ok(take), Ok(skip)) => (take.max(1), skip),
            (Err(reply), _) | (_, Err(reply)) => return reply,
        };
        let filter = param(raw, "filter").unwrap_or_else(|| "all".into());
        let sort = param(raw, "sort").unwrap_or_else(|| "added".into());
        let requested_by = param(raw, "requestedBy").and_then(|v| v.trim().parse().ok());
        let media_type = match param(raw, "mediaType").as_deref() {
            None | Some("all") => None,
            Some("movie") => Some(MediaType::Movie),
            Some("tv") => Some(MediaType::Tv),
            Some(_) => {
                return bad_request(
                    ".query.mediaType",
                    "request.query.mediaType should be equal to one of the allowed values",
                );
            }
        };
        state.library.list(
            acting,
            take,
            skip,
            &filter,
            &sort,
            (requested_by, media_type),
        )
    })
}

async fn count_requests(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    authed(&shared, &headers, |state, _| state.library.count())
}

fn not_found() -> Reply {
    (404, Some(json!({"message": "Request not found."})))
}

async fn get_request(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    authed(&shared, &headers, |state, acting| match id.parse() {
        Ok(id) => state.library.get(acting, id),
        Err(_) => not_found(),
    })
}

async fn delete_request(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    authed(&shared, &headers, |state, acting| match id.parse() {
        Ok(id) => state.library.delete(acting, id),
        Err(_) => not_found(),
    })
}

async fn approve_request(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    authed(&shared, &headers, |state, acting| match id.parse() {
        Ok(id) => state.library.decide(acting, id, true),
        Err(_) => not_found(),
    })
}

async fn decline_request(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    authed(&shared, &headers, |state, acting| match id.parse() {
        Ok(id) => state.library.decide(acting, id, false),
        Err(_) => not_found(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_encoding_accepts_only_unreserved_and_escapes() {
        assert!(strictly_encoded("Mission%3A%20Impossible%20%281996%29%21"));
        assert!(strictly_encoded("matrix"));
        assert!(strictly_encoded(""));
        for bad in ["a+b", "don't", "a!", "(x)", "a*", "a:b", "%2", "%zz", "a b"] {
            assert!(!strictly_encoded(bad), "{bad}");
        }
    }
}
