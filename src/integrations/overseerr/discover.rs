//! Seerr's discover rows: `GET /api/v1/discover/trending`, `/discover/movies` (popular),
//! `/discover/tv` (popular), `/discover/movies/upcoming` and `/discover/tv/upcoming`.
//!
//! Read from seerr-team/seerr `server/routes/discover.ts` (develop, Feb 2026) and its
//! `seerr-api.yml`: each takes `page` (and `language`, which MediaNest leaves to the install's
//! default) and answers `{page, totalPages, totalResults, results}`, the results mapped by
//! `mapMovieResult`/`mapTvResult` (`server/models/Search.ts`) exactly as search maps them:
//! `id`, `mediaType`, `title`/`name`, `releaseDate`/`firstAirDate`, `posterPath`,
//! `backdropPath`, and `mediaInfo` (`status`, `requests`, ...) when the install knows the
//! title. Trending can hold people and collections too (`mapPersonResult`,
//! `mapCollectionResult`), which are left out as in search. `/discover/movies` without
//! `sortBy` is TMDB's default, popularity; the upcoming rows filter on a release or first air
//! date from today. sct/overseerr (develop, March 2025; `server/routes/discover.ts`,
//! `overseerr-api.yml`) has the same five routes with the same parameters and answer.

use super::Overseerr;
use super::model::{SearchPage, SearchWire};
use crate::error::AppResult;
use crate::integrations::upstream::{Method, UpstreamFailure, expect_success, read_json};

/// One of the discover rows MediaNest shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiscoverRow {
    Trending,
    PopularMovies,
    PopularTv,
    UpcomingMovies,
    UpcomingTv,
}

impl DiscoverRow {
    /// Every row, in the order the Discover page shows them.
    pub const ALL: [Self; 5] = [
        Self::Trending,
        Self::PopularMovies,
        Self::PopularTv,
        Self::UpcomingMovies,
        Self::UpcomingTv,
    ];

    /// The row's name in MediaNest's API (`popular-movies`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Trending => "trending",
            Self::PopularMovies => "popular-movies",
            Self::PopularTv => "popular-tv",
            Self::UpcomingMovies => "upcoming-movies",
            Self::UpcomingTv => "upcoming-tv",
        }
    }

    /// The row named `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|row| row.name() == name)
    }

    /// Its path below `/api/v1`.
    pub fn path(self) -> &'static str {
        match self {
            Self::Trending => "/discover/trending",
            Self::PopularMovies => "/discover/movies",
            Self::PopularTv => "/discover/tv",
            Self::UpcomingMovies => "/discover/movies/upcoming",
            Self::UpcomingTv => "/discover/tv/upcoming",
        }
    }
}

impl Overseerr {
    /// One page (from 1) of a discover row, people and collections left out.
    ///
    /// The row is fixed and the page checked by the caller (1-500, TMDB's limit), so a failure
    /// here is the install's (or TMDB's behind it: Seerr answers 500 to any TMDB error) and
    /// counts for the breaker.
    pub async fn discover(&self, row: DiscoverRow, page: u32) -> AppResult<SearchPage> {
        let path = format!("{}?page={}", row.path(), page.max(1));
        self.upstream()
            .send(self.request(Method::Get, &path), |response| {
                let wire: SearchWire = read_json(expect_success(response)?)?;
                wire.into_page().ok_or_else(|| {
                    UpstreamFailure::Decode("discover answer without results".into())
                })
            })
            .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::clock::SystemClock;
    use crate::error::{AppError, ErrorCode};
    use crate::integrations::overseerr::{MediaStatus, MediaType, SearchMediaType};
    use crate::integrations::upstream::UpstreamOptions;
    use crate::sim::overseerr::{FakeOverseerr, Fault};

    fn client(fake: &FakeOverseerr, key: &str, timeout_ms: u64) -> Overseerr {
        Overseerr::new(
            &fake.url(),
            Some(key.to_owned()),
            UpstreamOptions::with_timeout_ms(timeout_ms),
            Arc::new(SystemClock),
        )
    }

    fn upstream_code(e: &AppError) -> ErrorCode {
        match e {
            AppError::Upstream { code, .. } => *code,
            other => panic!("expected an upstream error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn every_row_is_read_from_its_endpoint_with_the_key() {
        let fake = FakeOverseerr::start().await.unwrap();
        fake.set_media_available(MediaType::Movie, 603);
        let overseerr = client(&fake, &fake.api_key(), 3000);
        for row in DiscoverRow::ALL {
            let page = overseerr.discover(row, 1).await.unwrap();
            assert_eq!(page.page, 1);
            assert!(!page.results.is_empty(), "{row:?}");
            assert!(
                page.results
                    .iter()
                    .all(|r| r.poster_path.is_some() && r.backdrop_path.is_some()),
                "{row:?}"
            );
            assert_eq!(fake.requests(&format!("GET /api/v1{}", row.path())), 1);
        }
        assert_eq!(fake.last_api_key(), Some(fake.api_key()));
        let trending = overseerr.discover(DiscoverRow::Trending, 1).await.unwrap();
        // People are left out; the movies and shows keep what Seerr knows of them.
        assert!(
            trending
                .results
                .iter()
                .all(|r| r.media_type != SearchMediaType::Other("person".into()))
        );
        assert!(trending.total_results > trending.results.len() as i64);
        let matrix = trending.results.iter().find(|r| r.id == 603).unwrap();
        assert_eq!(
            matrix.media_info.as_ref().map(|i| i.status),
            Some(MediaStatus::Available)
        );
    }

    #[tokio::test]
    async fn a_wrong_key_a_failure_and_a_hang_are_upstream_errors() {
        let fake = FakeOverseerr::start().await.unwrap();
        let e = client(&fake, "wrong", 3000)
            .discover(DiscoverRow::PopularMovies, 1)
            .await
            .unwrap_err();
        assert_eq!(upstream_code(&e), ErrorCode::UpstreamError);

        let overseerr = client(&fake, &fake.api_key(), 300);
        fake.fail_next_on_route("/api/v1/discover/tv", 1, Fault::Garbage);
        let e = overseerr
            .discover(DiscoverRow::PopularTv, 1)
            .await
            .unwrap_err();
        assert_eq!(upstream_code(&e), ErrorCode::UpstreamError);

        fake.fail_next(1, Fault::Hang(Duration::from_secs(30)));
        let e = overseerr
            .discover(DiscoverRow::Trending, 1)
            .await
            .unwrap_err();
        assert_eq!(upstream_code(&e), ErrorCode::UpstreamTimeout);
    }

    #[test]
    fn rows_are_named_both_ways() {
        for row in DiscoverRow::ALL {
            assert_eq!(DiscoverRow::from_name(row.name()), Some(row));
            assert!(row.path().starts_with("/discover/"));
        }
        for bad in [
            "",
            "Trending",
            "popular",
            "upcoming-movies/",
            "popular_movies",
        ] {
            assert_eq!(DiscoverRow::from_name(bad), None, "{bad}");
        }
    }
}
