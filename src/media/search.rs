//! `GET /media/search`, `GET /media/movie/{tmdbId}`, `GET /media/tv/{tmdbId}`.
//!
//! Overseerr's answers are cached and shared by every user (search 120 s by query and page,
//! details 300 s by title); the per-user part, "already requested here" and whether the caller
//! follows it, is added from the database on every call, so it is never stale.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use super::store::{self, TitleRequest};
use super::{DETAILS_TTL, Details, SEARCH_TTL, not_configured};
use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::integrations::overseerr::{MediaInfo, MediaStatus, MediaType, Overseerr, SearchPage};
use crate::response::ApiResponse;
use crate::state::AppState;

/// Longest search query.
const MAX_QUERY_CHARS: usize = 100;
/// Highest page asked for (TMDB stops at 500).
pub(crate) const MAX_PAGE: u32 = 500;

/// The Overseerr client, or 503 when it is not set up.
pub(crate) async fn overseerr(state: &AppState) -> AppResult<Overseerr> {
    let clients = crate::services::clients(state).await?;
    clients.overseerr.clone().ok_or_else(not_configured)
}

/// An availability name for the API: `unknown`, `pending`, `processing`,
/// `partially_available`, `available`, `blocklisted`, `deleted`.
pub fn availability(status: MediaStatus) -> &'static str {
    match status {
        MediaStatus::Unknown | MediaStatus::Unrecognized(_) => "unknown",
        MediaStatus::Pending => "pending",
        MediaStatus::Processing => "processing",
        MediaStatus::PartiallyAvailable => "partially_available",
        MediaStatus::Available => "available",
        MediaStatus::Blocklisted => "blocklisted",
        MediaStatus::Deleted => "deleted",
    }
}

fn availability_of(info: Option<&MediaInfo>) -> &'static str {
    availability(info.map(|i| i.status).unwrap_or_default())
}

/// "Already requested here": the request a title shows.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestMark {
    pub id: String,
    pub status: String,
    pub is4k: bool,
    /// The caller made it.
    pub mine: bool,
    /// The caller follows it.
    pub following: bool,
}

/// The request to show for a title: the active one (the ordinary before the 4K one), else the
/// newest.
fn pick(rows: Vec<TitleRequest>, caller: &str) -> Option<RequestMark> {
    let active = |r: &TitleRequest| !matches!(r.status.as_str(), "declined" | "failed");
    let chosen = rows
        .into_iter()
        .max_by_key(|r| (active(r), !r.is_4k, r.created_at_ms))?;
    Some(RequestMark {
        mine: chosen.user_id == caller,
        id: chosen.id,
        status: chosen.status,
        is4k: chosen.is_4k,
        following: chosen.following,
    })
}

/// `MediaResult`: a search result or a discover card, with its badge (`availability` from
/// Overseerr, `request` from here).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MediaResult<'a> {
    tmdb_id: i64,
    media_type: &'static str,
    title: &'a str,
    year: Option<i32>,
    overview: Option<&'a str>,
    poster_path: Option<&'a str>,
    backdrop_path: Option<&'a str>,
    availability: &'static str,
    requested: bool,
    request: Option<RequestMark>,
}

/// `?query=&page=`.
#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    query: Option<String>,
    page: Option<String>,
}

/// Meta of a search page.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SearchMeta {
    page: i64,
    total_pages: i64,
    total_results: i64,
    stale: bool,
}

/// `?page=` (1 when absent), or `None` with the field's problem added to `fields`.
pub(crate) fn parse_page(
    raw: Option<&str>,
    fields: &mut Vec<(&'static str, String)>,
) -> Option<u32> {
    let page = match raw {
        None | Some("") => Some(1),
        Some(p) => p.parse::<u32>().ok().filter(|n| (1..=MAX_PAGE).contains(n)),
    };
    if page.is_none() {
        fields.push((
            "page",
            format!("must be a whole number from 1 to {MAX_PAGE}"),
        ));
    }
    page
}

fn parse_search(query: &SearchQuery) -> AppResult<(String, u32)> {
    let mut fields = Vec::new();
    let text = query.query.as_deref().unwrap_or_default().trim().to_owned();
    let chars = text.chars().count();
    if chars == 0 || chars > MAX_QUERY_CHARS {
        fields.push((
            "query",
            format!("must be 1 to {MAX_QUERY_CHARS} characters"),
        ));
    }
    let page = parse_page(query.page.as_deref(), &mut fields);
    if !fields.is_empty() {
        return Err(AppError::validation(fields));
    }
    Ok((text, page.unwrap_or(1)))
}

/// `GET /media/search`.
pub async fn search(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<SearchQuery>,
) -> AppResult<ApiResponse> {
    let (text, page) = parse_search(&query)?;
    let client = overseerr(&state).await?;
    let key = (text.clone(), page);
    let found = state
        .media()
        .search
        .get_or_load(key, SEARCH_TTL, move || async move {
            client.search(&text, page).await.map(Arc::new)
        })
        .await?;
    let stale = found.stale_age_ms().is_some();
    let results: Arc<SearchPage> = found.value;
    let marks = request_marks(&state, &user, &results).await?;
    let data = annotate(&results, marks);
    Ok(ApiResponse::with_meta(
        &data,
        &SearchMeta {
            page: results.page,
            total_pages: results.total_pages,
            total_results: results.total_results,
            stale,
        },
    ))
}

/// The request each movie or show of `page` shows to `user` (other kinds are skipped), in
/// order: read from the database on every call, so it is never stale.
pub(crate) async fn request_marks(
    state: &AppState,
    user: &CurrentUser,
    page: &SearchPage,
) -> AppResult<Vec<Option<RequestMark>>> {
    let titles: Vec<(i64, MediaType)> = page
        .results
        .iter()
        .filter_map(|r| Some((r.id, r.media_type.media_type()?)))
        .collect();
    let caller = user.user_id().to_owned();
    state
        .db()
        .run(move |conn| {
            titles
                .iter()
                .map(|&(id, media_type)| {
                    Ok(pick(
                        store::for_title(conn, &caller, id, media_type)?,
                        &caller,
                    ))
                })
                .collect::<AppResult<Vec<_>>>()
        })
        .await
}

/// The movies and shows of `page` with their badges (`marks` from [`request_marks`]).
pub(crate) fn annotate(page: &SearchPage, marks: Vec<Option<RequestMark>>) -> Vec<MediaResult<'_>> {
    let mut marks = marks.into_iter();
    page.results
        .iter()
        .filter_map(|r| {
            let media_type = r.media_type.media_type()?;
            let request = marks.next().flatten();
            Some(MediaResult {
                tmdb_id: r.id,
                media_type: media_type.as_str(),
                title: &r.title,
                year: r.year,
                overview: r.overview.as_deref(),
                poster_path: r.poster_path.as_deref(),
                backdrop_path: r.backdrop_path.as_deref(),
                availability: availability_of(r.media_info.as_ref()),
                requested: request.is_some(),
                request,
            })
        })
        .collect()
}

/// A positive TMDB id from the path.
pub fn parse_tmdb_id(text: &str) -> AppResult<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|n| (1..=i64::from(i32::MAX)).contains(n))
        .ok_or_else(|| AppError::validation([("tmdbId", "must be a positive integer")]))
}

/// The details of a title, cached; `None` when Overseerr does not know it.
pub(crate) async fn details(
    state: &AppState,
    media_type: MediaType,
    tmdb_id: i64,
) -> AppResult<(Option<Arc<Details>>, bool)> {
    let client = overseerr(state).await?;
    let found = state
        .media()
        .details
        .get_or_load((media_type, tmdb_id), DETAILS_TTL, move || async move {
            Ok::<_, AppError>(match media_type {
                MediaType::Movie => client
                    .movie(tmdb_id)
                    .await?
                    .map(|d| Arc::new(Details::Movie(d))),
                MediaType::Tv => client.tv(tmdb_id).await?.map(|d| Arc::new(Details::Tv(d))),
            })
        })
        .await?;
    let stale = found.stale_age_ms().is_some();
    Ok((found.value, stale))
}

/// A season of a show.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SeasonView<'a> {
    season_number: i64,
    episode_count: i64,
    name: Option<&'a str>,
    air_date: Option<&'a str>,
    availability: &'static str,
}

/// `GET /media/{movie|tv}/{tmdbId}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DetailsView<'a> {
    tmdb_id: i64,
    media_type: &'static str,
    title: &'a str,
    original_title: Option<&'a str>,
    year: Option<i32>,
    release_date: Option<&'a str>,
    overview: Option<&'a str>,
    tagline: Option<&'a str>,
    poster_path: Option<&'a str>,
    backdrop_path: Option<&'a str>,
    runtime: Option<i64>,
    genres: &'a [String],
    number_of_seasons: Option<i64>,
    seasons: Option<Vec<SeasonView<'a>>>,
    availability: &'static str,
    requested: bool,
    request: Option<RequestMark>,
    /// The item in the Plex web app, once Seerr's Plex scan found it.
    plex_url: Option<String>,
    /// Who asked for it: admins only (absent for everyone else).
    #[serde(skip_serializing_if = "Option::is_none")]
    requesters: Option<Vec<Requester>>,
    stale: bool,
}

/// A request for the title, made here or straight on Seerr (admins' title page).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Requester {
    /// `medianest` (made here) or `seerr` (made on Seerr itself).
    source: &'static str,
    name: String,
    /// The MediaNest user and request, for `medianest`.
    user_id: Option<String>,
    request_id: Option<String>,
    overseerr_id: Option<i64>,
    status: String,
    is4k: bool,
    /// The requested seasons (TV), when known.
    seasons: Option<Vec<i64>>,
    created_at: Option<String>,
}

/// The requesters of a title: the requests made here (with the user's name), then those made
/// on Seerr itself (`mediaInfo.requests`, each with its eager `requestedBy`:
/// server/entity/MediaRequest.ts in seerr-team/seerr) that no request here is linked to.
fn requesters(mine: Vec<store::TitleRequester>, info: Option<&MediaInfo>) -> Vec<Requester> {
    let linked: Vec<i64> = mine.iter().filter_map(|r| r.overseerr_id).collect();
    let mut out: Vec<Requester> = mine
        .into_iter()
        .map(|r| Requester {
            source: "medianest",
            name: r.name,
            user_id: Some(r.user_id),
            request_id: Some(r.id),
            overseerr_id: r.overseerr_id,
            status: r.status,
            is4k: r.is_4k,
            seasons: r
                .seasons
                .as_deref()
                .and_then(|s| serde_json::from_str::<Vec<i64>>(s).ok()),
            created_at: Some(crate::time::rfc3339(r.created_at_ms)),
        })
        .collect();
    for r in info.map(|i| i.requests.as_slice()).unwrap_or_default() {
        if r.id <= 0 || linked.contains(&r.id) {
            continue;
        }
        let name = r
            .requested_by
            .as_ref()
            .and_then(|u| {
                [
                    &u.display_name,
                    &u.plex_username,
                    &u.jellyfin_username,
                    &u.username,
                    &u.email,
                ]
                .into_iter()
                .find_map(|n| n.as_deref().map(str::trim).filter(|n| !n.is_empty()))
            })
            .unwrap_or("a Seerr user")
            .chars()
            .take(200)
            .collect();
        out.push(Requester {
            source: "seerr",
            name,
            user_id: None,
            request_id: None,
            overseerr_id: Some(r.id),
            status: r.state().as_str().to_owned(),
            is4k: r.is4k,
            seasons: (!r.seasons.is_empty())
                .then(|| r.seasons.iter().map(|s| s.season_number).collect()),
            created_at: r.created_at.clone(),
        });
    }
    out
}

/// A Plex `ratingKey` as it may go into a link: digits only.
fn plain_rating_key(key: &str) -> Option<&str> {
    Some(key).filter(|k| (1..=20).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_digit()))
}

/// How long the title page waits for the Plex server's `machineIdentifier`.
const MACHINE_ID_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// "Watch in Plex": the item in the Plex web app, for a (partially) available title Seerr's
/// Plex scan matched (`mediaInfo.ratingKey`). Built as Seerr builds its `mediaUrl`
/// (`setPlexUrls` in server/entity/Media.ts, seerr-team/seerr):
/// `{plex.app_url}/desktop#!/server/{machineIdentifier}/details?key=%2Flibrary%2Fmetadata%2F{ratingKey}`,
/// with the machine identifier of the Plex server MediaNest is paired with; when that server
/// cannot be asked, Seerr's own `mediaUrl` (an http(s) link) is used.
async fn plex_url(state: &AppState, info: Option<&MediaInfo>) -> Option<String> {
    let info = info?;
    if !matches!(
        info.status,
        MediaStatus::Available | MediaStatus::PartiallyAvailable
    ) {
        return None;
    }
    let seerr_link = || {
        info.media_url
            .as_deref()
            .filter(|u| {
                (u.starts_with("https://") || u.starts_with("http://"))
                    && u.len() <= 2048
                    && !u.chars().any(|c| c.is_whitespace() || c.is_control())
            })
            .map(str::to_owned)
    };
    let Some(key) = info.rating_key.as_deref() else {
        // No Plex item: a Jellyfin or Emby install's link, if Seerr built one.
        return seerr_link();
    };
    // A key that is not a plain number goes into no link, Seerr's included.
    let key = plain_rating_key(key)?;
    let plex = crate::services::clients(state).await.ok()?.plex.clone();
    let machine = match plex {
        Some(plex) => tokio::time::timeout(MACHINE_ID_WAIT, plex.machine_identifier())
            .await
            .ok()
            .and_then(Result::ok)
            .filter(|m| {
                (1..=128).contains(&m.len())
                    && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }),
        None => None,
    };
    match machine {
        Some(machine) => Some(format!(
            "{}/desktop#!/server/{machine}/details?key=%2Flibrary%2Fmetadata%2F{key}",
            state.config().plex.app_url.trim_end_matches('/')
        )),
        None => seerr_link(),
    }
}

async fn show_details(
    state: AppState,
    user: CurrentUser,
    media_type: MediaType,
    raw_id: String,
) -> AppResult<ApiResponse> {
    let tmdb_id = parse_tmdb_id(&raw_id)?;
    let (found, stale) = details(&state, media_type, tmdb_id).await?;
    let found = found.ok_or_else(|| AppError::new(ErrorCode::NotFound))?;
    let caller = user.user_id().to_owned();
    let admin = user.is_admin();
    let (request, asked) = state
        .db()
        .run(move |conn| {
            let mark = pick(
                store::for_title(conn, &caller, tmdb_id, media_type)?,
                &caller,
            );
            let asked = if admin {
                Some(store::requesters_for_title(conn, tmdb_id, media_type)?)
            } else {
                None
            };
            Ok((mark, asked))
        })
        .await?;
    let info = match found.as_ref() {
        Details::Movie(m) => m.media_info.as_ref(),
        Details::Tv(t) => t.media_info.as_ref(),
    };
    let plex_url = plex_url(&state, info).await;
    let requesters = asked.map(|mine| requesters(mine, info));
    let view = match found.as_ref() {
        Details::Movie(m) => DetailsView {
            tmdb_id: m.id,
            media_type: "movie",
            title: &m.title,
            original_title: m.original_title.as_deref(),
            year: m.year,
            release_date: m.release_date.as_deref(),
            overview: m.overview.as_deref(),
            tagline: m.tagline.as_deref(),
            poster_path: m.poster_path.as_deref(),
            backdrop_path: m.backdrop_path.as_deref(),
            runtime: m.runtime,
            genres: &m.genres,
            number_of_seasons: None,
            seasons: None,
            availability: availability_of(m.media_info.as_ref()),
            requested: request.is_some(),
            request,
            plex_url,
            requesters,
            stale,
        },
        Details::Tv(t) => DetailsView {
            tmdb_id: t.id,
            media_type: "tv",
            title: &t.title,
            original_title: t.original_title.as_deref(),
            year: t.year,
            release_date: t.first_air_date.as_deref(),
            overview: t.overview.as_deref(),
            tagline: None,
            poster_path: t.poster_path.as_deref(),
            backdrop_path: t.backdrop_path.as_deref(),
            runtime: t.episode_runtime,
            genres: &t.genres,
            number_of_seasons: t.number_of_seasons,
            seasons: Some(
                t.seasons
                    .iter()
                    .map(|s| SeasonView {
                        season_number: s.season_number,
                        episode_count: s.episode_count,
                        name: s.name.as_deref(),
                        air_date: s.air_date.as_deref(),
                        availability: availability(s.status.unwrap_or_default()),
                    })
                    .collect(),
            ),
            availability: availability_of(t.media_info.as_ref()),
            requested: request.is_some(),
            request,
            plex_url,
            requesters,
            stale,
        },
    };
    Ok(ApiResponse::ok(&view))
}

/// `GET /media/movie/{tmdbId}`.
pub async fn movie(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<ApiResponse> {
    show_details(state, user, MediaType::Movie, id).await
}

/// `GET /media/tv/{tmdbId}`.
pub async fn tv(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<ApiResponse> {
    show_details(state, user, MediaType::Tv, id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(query: Option<&str>, page: Option<&str>) -> SearchQuery {
        SearchQuery {
            query: query.map(str::to_owned),
            page: page.map(str::to_owned),
        }
    }

    #[test]
    fn search_parameters_are_checked() {
        assert_eq!(
            parse_search(&q(Some(" dune "), None)).ok(),
            Some(("dune".into(), 1))
        );
        assert!(parse_search(&q(Some("   "), None)).is_err());
        assert!(parse_search(&q(None, None)).is_err());
        assert!(parse_search(&q(Some(&"x".repeat(101)), None)).is_err());
        assert!(parse_search(&q(Some(&"é".repeat(100)), Some("2"))).is_ok());
        assert!(parse_search(&q(Some("a"), Some("0"))).is_err());
        assert!(parse_search(&q(Some("a"), Some("501"))).is_err());
        assert!(parse_search(&q(Some("a"), Some("x"))).is_err());
    }

    #[test]
    fn only_plain_numbers_are_rating_keys() {
        assert_eq!(plain_rating_key("58683"), Some("58683"));
        for bad in ["", "1/../2", "12a", "-1", "1 2", &"9".repeat(21)] {
            assert_eq!(plain_rating_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn tmdb_ids_are_positive_integers() {
        assert_eq!(parse_tmdb_id("603").ok(), Some(603));
        for bad in ["0", "-1", "1.5", "abc", "99999999999", ""] {
            assert!(parse_tmdb_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_active_request_is_shown() {
        let row = |id: &str, status: &str, is_4k: bool, at: i64| TitleRequest {
            id: id.into(),
            user_id: "u1".into(),
            status: status.into(),
            is_4k,
            created_at_ms: at,
            following: false,
        };
        let got = pick(
            vec![
                row("old", "declined", false, 3),
                row("act", "pending", false, 1),
                row("4k", "approved", true, 2),
            ],
            "u1",
        )
        .map(|m| (m.id, m.mine));
        assert_eq!(got, Some(("act".into(), true)));
        assert!(pick(vec![], "u1").is_none());
    }
}
