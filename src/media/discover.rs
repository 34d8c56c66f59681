//! `GET /media/discover/{row}?page=N`: a page of one of Seerr's discover rows (trending,
//! popular movies and series, upcoming movies and series) as cards for the Discover page.
//!
//! Seerr's pages are cached and shared by every user for as long as search answers
//! ([`SEARCH_TTL`]), by row and page; each card's badge is added exactly as search adds it
//! ([`search::annotate`]): availability from Seerr, the request made here from the database on
//! every call. The upstream call is
//! [`Overseerr::discover`](crate::integrations::overseerr::Overseerr::discover).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use super::SEARCH_TTL;
use super::search;
use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::integrations::overseerr::{DiscoverRow, SearchPage};
use crate::response::ApiResponse;
use crate::state::AppState;

/// `?page=`.
#[derive(Debug, Deserialize)]
pub struct DiscoverQuery {
    page: Option<String>,
}

/// Meta of a discover page.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DiscoverMeta {
    row: &'static str,
    page: i64,
    total_pages: i64,
    total_results: i64,
    stale: bool,
}

/// The row and page asked for, or a validation error naming each bad one.
fn parse(row: &str, page: Option<&str>) -> AppResult<(DiscoverRow, u32)> {
    let mut fields = Vec::new();
    let row = DiscoverRow::from_name(row);
    if row.is_none() {
        let names: Vec<&str> = DiscoverRow::ALL.iter().map(|r| r.name()).collect();
        fields.push(("row", format!("must be one of {}", names.join(", "))));
    }
    let page = search::parse_page(page, &mut fields);
    match (row, page) {
        (Some(row), Some(page)) => Ok((row, page)),
        _ => Err(AppError::validation(fields)),
    }
}

/// `GET /media/discover/{row}`.
pub async fn discover_row(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(row): Path<String>,
    Query(query): Query<DiscoverQuery>,
) -> AppResult<ApiResponse> {
    let (row, page) = parse(&row, query.page.as_deref())?;
    let client = search::overseerr(&state).await?;
    let found = state
        .media()
        .discover
        .get_or_load((row, page), SEARCH_TTL, move || async move {
            client.discover(row, page).await.map(Arc::new)
        })
        .await?;
    let stale = found.stale_age_ms().is_some();
    let results: Arc<SearchPage> = found.value;
    let marks = search::request_marks(&state, &user, &results).await?;
    let data = search::annotate(&results, marks);
    Ok(ApiResponse::with_meta(
        &data,
        &DiscoverMeta {
            row: row.name(),
            page: results.page,
            total_pages: results.total_pages,
            total_results: results.total_results,
            stale,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_pages_are_checked() {
        assert_eq!(
            parse("trending", None).ok(),
            Some((DiscoverRow::Trending, 1))
        );
        assert_eq!(
            parse("upcoming-tv", Some("500")).ok(),
            Some((DiscoverRow::UpcomingTv, 500))
        );
        for (row, page) in [
            ("movies", None),
            ("", Some("1")),
            ("trending", Some("0")),
            ("trending", Some("501")),
            ("trending", Some("-1")),
            ("trending", Some("x")),
        ] {
            assert!(parse(row, page).is_err(), "{row:?} {page:?}");
        }
    }
}
