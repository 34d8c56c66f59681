//! The fake Overseerr's media state: the TMDB catalogue it "knows", its users, its media rows
//! (status per title and season) and its requests, with the JSON shapes Overseerr answers in
//! (UPSTREAMS.md 2.5, 2.6). Plain data and pure functions; the routes and control methods lock
//! it and call in.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use crate::integrations::overseerr::{
    DiscoverRow, Flavor, MediaRequestStatus, MediaStatus, MediaType,
};

/// Overseerr's permission bits the fake checks (UPSTREAMS.md 2.3).
pub mod permission {
    pub const ADMIN: i64 = 2;
    pub const MANAGE_USERS: i64 = 8;
    pub const MANAGE_REQUESTS: i64 = 16;
    pub const REQUEST: i64 = 32;
    pub const AUTO_APPROVE: i64 = 128;
    pub const AUTO_APPROVE_MOVIE: i64 = 256;
    pub const AUTO_APPROVE_TV: i64 = 512;
    pub const REQUEST_4K: i64 = 1024;
    pub const REQUEST_4K_MOVIE: i64 = 2048;
    pub const REQUEST_4K_TV: i64 = 4096;
    pub const REQUEST_VIEW: i64 = 16384;
    pub const REQUEST_MOVIE: i64 = 262_144;
    pub const REQUEST_TV: i64 = 524_288;
    /// server/lib/permissions.ts in seerr-team/seerr (and sct/overseerr).
    pub const MANAGE_ISSUES: i64 = 1_048_576;
    pub const VIEW_ISSUES: i64 = 2_097_152;
    pub const CREATE_ISSUES: i64 = 4_194_304;
}

/// TMDB's page size, which Overseerr's search passes through.
pub const DEFAULT_SEARCH_PAGE_SIZE: usize = 20;
/// The day the fake's upcoming rows count from: its clock's first day (see `EPOCH_SECS`).
pub const SIM_TODAY: &str = "2025-04-01";
/// The Plex server the fake's library scan is said to read (`settings.plex.machineId`).
pub const DEFAULT_PLEX_MACHINE_ID: &str = "5eedc0ffee5eedc0ffee5eedc0ffee5eedc0ffee";
/// The first `ratingKey` the fake hands out (one per media row after it).
const FIRST_RATING_KEY: i64 = 40_000;
/// Timestamps start here (2025-04-01T10:00:00Z) and move one second per change.
const EPOCH_SECS: i64 = 1_743_501_600;

/// A movie or show in the fake's catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeTitle {
    pub media_type: MediaType,
    pub tmdb_id: i64,
    pub tvdb_id: Option<i64>,
    /// A movie's `title` or a show's `name`.
    pub title: String,
    /// `releaseDate` or `firstAirDate`, `YYYY-MM-DD`.
    pub date: Option<String>,
    pub overview: String,
    pub poster_path: Option<String>,
    /// Shows: `(seasonNumber, episodeCount)`, season 0 being the specials.
    pub seasons: Vec<(u32, u32)>,
}

impl FakeTitle {
    /// A movie released on `date` (`YYYY-MM-DD`).
    pub fn movie(tmdb_id: i64, title: &str, date: &str) -> Self {
        Self {
            media_type: MediaType::Movie,
            tmdb_id,
            tvdb_id: None,
            title: title.to_owned(),
            date: Some(date.to_owned()),
            overview: format!("{title}: a film."),
            poster_path: Some(format!("/poster-{tmdb_id}.jpg")),
            seasons: Vec::new(),
        }
    }

    /// A show first aired on `date`, with `(seasonNumber, episodeCount)` seasons.
    pub fn tv(tmdb_id: i64, tvdb_id: i64, name: &str, date: &str, seasons: &[(u32, u32)]) -> Self {
        Self {
            media_type: MediaType::Tv,
            tmdb_id,
            tvdb_id: Some(tvdb_id),
            title: name.to_owned(),
            date: Some(date.to_owned()),
            overview: format!("{name}: a series."),
            poster_path: Some(format!("/poster-tv-{tmdb_id}.jpg")),
            seasons: seasons.to_vec(),
        }
    }

    fn year(&self) -> Option<&str> {
        self.date.as_deref().and_then(|d| d.get(..4))
    }

    /// `Title (year)`, Overseerr's notification subject.
    pub(super) fn subject(&self) -> String {
        match self.year() {
            Some(year) => format!("{} ({year})", self.title),
            None => self.title.clone(),
        }
    }
}

/// The catalogue a fresh fake starts with: a few movies, two shows with seasons, one person.
pub fn default_catalogue() -> Vec<FakeTitle> {
    let mut matrix = FakeTitle::movie(603, "The Matrix", "1999-03-30");
    matrix.poster_path = Some("/f89U3ADr1oiB1s9GkdPOEpXUk5H.jpg".into());
    matrix.overview = "Set in the 22nd century, The Matrix tells the story of a computer \
                       hacker who joins a group of underground insurgents."
        .into();
    let mut got = FakeTitle::tv(
        1399,
        121_361,
        "Game of Thrones",
        "2011-04-17",
        &[
            (0, 3),
            (1, 10),
            (2, 10),
            (3, 10),
            (4, 10),
            (5, 10),
            (6, 10),
            (7, 7),
            (8, 6),
        ],
    );
    got.poster_path = Some("/1XS1oqL89opfnbLl8WnZY1O1uJx.jpg".into());
    got.overview =
        "Seven noble families fight for control of the mythical land of Westeros.".into();
    vec![
        matrix,
        FakeTitle::movie(604, "The Matrix Reloaded", "2003-05-15"),
        FakeTitle::movie(954, "Mission: Impossible", "1996-05-22"),
        FakeTitle::movie(27205, "Inception", "2010-07-15"),
        FakeTitle::movie(646_380, "Don't Look Up", "2021-12-07"),
        got,
        FakeTitle::tv(
            1396,
            81189,
            "Breaking Bad",
            "2008-01-20",
            &[(0, 9), (1, 7), (2, 13), (3, 13), (4, 13), (5, 16)],
        ),
        // Released after `SIM_TODAY`: what the upcoming rows show.
        FakeTitle::movie(687_163, "Project Hail Mary", "2026-03-20"),
        FakeTitle::tv(250_001, 450_001, "Harbour Lights", "2026-09-14", &[(1, 8)]),
    ]
}

/// An Overseerr user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeOverseerrUser {
    pub id: i64,
    pub email: Option<String>,
    pub plex_username: Option<String>,
    /// Sent as `plexId` when set (many versions leave it out).
    pub plex_id: Option<i64>,
    pub username: Option<String>,
    /// Seerr only (server/entity/User.ts in seerr-team/seerr): the Jellyfin/Emby account name
    /// of a user who signs in through Jellyfin or Emby (who then has no `plexId`).
    pub jellyfin_username: Option<String>,
    pub display_name: String,
    /// [`permission`] bits; 32 (REQUEST) for a new user.
    pub permissions: i64,
    /// Requests of each kind the user may make in total; `None` is unlimited.
    pub movie_quota: Option<u32>,
    pub tv_quota: Option<u32>,
}

impl FakeOverseerrUser {
    /// A Plex user with `<name>@example.com` and the default REQUEST permission.
    pub fn plex(id: i64, plex_id: Option<i64>, plex_username: &str) -> Self {
        Self {
            id,
            email: Some(format!("{plex_username}@example.com")),
            plex_username: Some(plex_username.to_owned()),
            plex_id,
            username: None,
            jellyfin_username: None,
            display_name: plex_username.to_owned(),
            permissions: permission::REQUEST,
            movie_quota: None,
            tv_quota: None,
        }
    }

    /// A Jellyfin user of a Jellyfin-backed Seerr (`userType` 3): no Plex id or Plex name, the
    /// Jellyfin account name, and the email Seerr keeps (`None`: Jellyfin gave none and Seerr
    /// stores the name there; server/routes/auth.ts in seerr-team/seerr).
    pub fn jellyfin(id: i64, jellyfin_username: &str, email: Option<&str>) -> Self {
        Self {
            id,
            email: Some(email.unwrap_or(jellyfin_username).to_owned()),
            plex_username: None,
            plex_id: None,
            username: None,
            jellyfin_username: Some(jellyfin_username.to_owned()),
            display_name: jellyfin_username.to_owned(),
            permissions: permission::REQUEST,
            movie_quota: None,
            tv_quota: None,
        }
    }

    pub(super) fn has(&self, bits: &[i64]) -> bool {
        self.permissions & permission::ADMIN != 0 || bits.iter().any(|b| self.permissions & b != 0)
    }

    fn manages_requests(&self) -> bool {
        self.has(&[permission::MANAGE_REQUESTS])
    }
}

/// The admin a fresh fake has: user 1, whose API key requests run as.
pub fn default_admin() -> FakeOverseerrUser {
    FakeOverseerrUser {
        permissions: permission::ADMIN,
        ..FakeOverseerrUser::plex(1, Some(1), "owner")
    }
}

/// A request as the fake holds it (see [`FakeOverseerr::request`](super::FakeOverseerr::request)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeRequest {
    pub id: i64,
    pub status: MediaRequestStatus,
    pub media_type: MediaType,
    pub tmdb_id: i64,
    pub is4k: bool,
    /// Requested seasons (TV).
    pub seasons: Vec<u32>,
    /// The Overseerr user the request belongs to.
    pub requested_by: i64,
    pub modified_by: Option<i64>,
    created: i64,
    updated: i64,
}

#[derive(Debug, Clone)]
struct MediaRow {
    id: i64,
    status: MediaStatus,
    status4k: MediaStatus,
    seasons: BTreeMap<u32, MediaStatus>,
    /// The Plex item Seerr's library scan matched (`ratingKey`), set once the title is
    /// (partially) available.
    rating_key: Option<String>,
    created: i64,
    updated: i64,
}

impl MediaRow {
    fn status(&self, is4k: bool) -> MediaStatus {
        if is4k { self.status4k } else { self.status }
    }

    /// Seerr's Plex scan stores the item's `ratingKey` on the media row when it finds the title
    /// (`processMovie`/`processShow` in server/lib/scanners/baseScanner.ts, fed by
    /// server/lib/scanners/plex/index.ts, seerr-team/seerr);
    /// here: once it is (partially) available, a key made from the row id.
    fn found_in_plex(&mut self) {
        if self.rating_key.is_none()
            && matches!(
                self.status,
                MediaStatus::Available | MediaStatus::PartiallyAvailable
            )
        {
            self.rating_key = Some((FIRST_RATING_KEY + self.id).to_string());
        }
    }

    fn set_status(&mut self, is4k: bool, status: MediaStatus) {
        if is4k {
            self.status4k = status;
        } else {
            self.status = status;
        }
    }
}

/// An answer from a route: status and JSON body (`None` for an empty 204).
pub(super) type Reply = (u16, Option<Value>);

fn message(status: u16, text: &str) -> Reply {
    (status, Some(json!({ "message": text })))
}

/// Overseerr's permission-middleware refusal (UPSTREAMS.md 2.2, shape 2).
pub(super) fn guard_refusal() -> Reply {
    (
        403,
        Some(json!({"status": 403, "error": "You do not have permission to access this endpoint"})),
    )
}

/// What a new request asks for, already read from the body.
pub(super) struct NewRequest {
    pub media_type: MediaType,
    pub media_id: i64,
    /// `None` for `"all"`.
    pub seasons: Option<Vec<u32>>,
    pub is4k: bool,
    pub user_id: Option<i64>,
}

/// Everything about titles, users, media and requests.
#[derive(Debug)]
pub struct Library {
    pub(super) catalogue: Vec<FakeTitle>,
    /// `(id, name)`: people, which search returns and MediaNest skips.
    pub(super) people: Vec<(i64, String)>,
    pub(super) users: Vec<FakeOverseerrUser>,
    media: HashMap<(MediaType, i64), MediaRow>,
    requests: BTreeMap<i64, FakeRequest>,
    pub(super) auto_approve: bool,
    /// Which upstream the fake plays (see [`Flavor`]).
    pub(super) flavor: Flavor,
    /// Seerr's `enableSpecialEpisodes` setting (off by default).
    pub(super) special_episodes: bool,
    pub(super) search_page_size: usize,
    /// Seerr's `settings.plex.machineId` and `webAppUrl`, which `mediaUrl` is built from.
    pub(super) plex_machine_id: String,
    pub(super) plex_web_app_url: Option<String>,
    /// The latest `query` as sent (still encoded) and as decoded.
    pub(super) last_search: Option<(String, String)>,
    next_request_id: i64,
    next_media_id: i64,
    tick: i64,
}

impl Default for Library {
    fn default() -> Self {
        Self {
            catalogue: default_catalogue(),
            people: vec![(6384, "Keanu Reeves".into())],
            users: vec![default_admin()],
            media: HashMap::new(),
            requests: BTreeMap::new(),
            auto_approve: false,
            flavor: Flavor::Overseerr,
            special_episodes: false,
            search_page_size: DEFAULT_SEARCH_PAGE_SIZE,
            plex_machine_id: DEFAULT_PLEX_MACHINE_ID.into(),
            plex_web_app_url: None,
            last_search: None,
            next_request_id: 1,
            next_media_id: 1,
            tick: 0,
        }
    }
}

impl Library {
    fn now(&mut self) -> i64 {
        self.tick += 1;
        self.tick
    }

    pub(super) fn title(&self, media_type: MediaType, tmdb_id: i64) -> Option<&FakeTitle> {
        self.catalogue
            .iter()
            .find(|t| t.media_type == media_type && t.tmdb_id == tmdb_id)
    }

    pub(super) fn user(&self, id: i64) -> Option<&FakeOverseerrUser> {
        self.users.iter().find(|u| u.id == id)
    }

    pub(super) fn user_mut(&mut self, id: i64) -> Option<&mut FakeOverseerrUser> {
        self.users.iter_mut().find(|u| u.id == id)
    }

    pub(super) fn request(&self, id: i64) -> Option<&FakeRequest> {
        self.requests.get(&id)
    }

    fn media_row(&mut self, media_type: MediaType, tmdb_id: i64) -> &mut MediaRow {
        let now = self.tick;
        let next_id = &mut self.next_media_id;
        self.media.entry((media_type, tmdb_id)).or_insert_with(|| {
            let id = *next_id;
            *next_id += 1;
            MediaRow {
                id,
                status: MediaStatus::Unknown,
                status4k: MediaStatus::Unknown,
                seasons: BTreeMap::new(),
                rating_key: None,
                created: now,
                updated: now,
            }
        })
    }

    /// Seerr's media id of a title, when it has a media row.
    pub(super) fn media_id(&self, media_type: MediaType, tmdb_id: i64) -> Option<i64> {
        self.media.get(&(media_type, tmdb_id)).map(|m| m.id)
    }

    /// The title a media id is about.
    pub(super) fn media_by_id(&self, id: i64) -> Option<(MediaType, i64)> {
        self.media
            .iter()
            .find(|(_, row)| row.id == id)
            .map(|(key, _)| *key)
    }

    /// A media row as the API shows it (`issue.media`), `null` when there is none.
    pub(super) fn media_value(&self, media_type: MediaType, tmdb_id: i64) -> Value {
        self.media
            .get(&(media_type, tmdb_id))
            .map_or(Value::Null, |row| self.media_json(media_type, tmdb_id, row))
    }

    /// A user as the API shows it, `null` when unknown.
    pub(super) fn user_value(&self, id: i64) -> Value {
        self.user(id).map_or(Value::Null, |u| self.user_json(u))
    }

    /// The media status of a title (`Unknown` when the fake never saw it).
    pub(super) fn media_status(
        &self,
        media_type: MediaType,
        tmdb_id: i64,
        is4k: bool,
    ) -> MediaStatus {
        self.media
            .get(&(media_type, tmdb_id))
            .map(|m| m.status(is4k))
            .unwrap_or_default()
    }

    /// Sets a title's (non-4K) media status; for a show, every season follows `Available`.
    pub(super) fn set_media_status(
        &mut self,
        media_type: MediaType,
        tmdb_id: i64,
        status: MediaStatus,
    ) {
        let now = self.now();
        let seasons: Vec<u32> = self
            .title(media_type, tmdb_id)
            .map(|t| {
                t.seasons
                    .iter()
                    .map(|(n, _)| *n)
                    .filter(|n| *n > 0)
                    .collect()
            })
            .unwrap_or_default();
        let row = self.media_row(media_type, tmdb_id);
        row.status = status;
        row.updated = now;
        row.found_in_plex();
        if status == MediaStatus::Available {
            for n in seasons {
                row.seasons.insert(n, MediaStatus::Available);
            }
        }
        self.touch_requests(media_type, tmdb_id, now);
        self.complete_requests(media_type, tmdb_id);
    }

    /// Sets one season's status and derives the show's: all requested-for seasons available
    /// is `Available`, some is `PartiallyAvailable`.
    pub(super) fn set_season_status(&mut self, tmdb_id: i64, season: u32, status: MediaStatus) {
        let now = self.now();
        let total = self
            .title(MediaType::Tv, tmdb_id)
            .map(|t| t.seasons.iter().filter(|(n, _)| *n > 0).count())
            .unwrap_or(0);
        let row = self.media_row(MediaType::Tv, tmdb_id);
        row.seasons.insert(season, status);
        row.updated = now;
        let available = row
            .seasons
            .iter()
            .filter(|(n, s)| **n > 0 && **s == MediaStatus::Available)
            .count();
        if total > 0 && available >= total {
            row.status = MediaStatus::Available;
        } else if available > 0 {
            row.status = MediaStatus::PartiallyAvailable;
        }
        row.found_in_plex();
        self.touch_requests(MediaType::Tv, tmdb_id, now);
        self.complete_requests(MediaType::Tv, tmdb_id);
    }

    /// Seerr only: an approved (non-4K) request becomes `COMPLETED` once its media is available
    /// or deleted (a movie), or once every season *it* asked for is (a show), whatever the
    /// show's own status (`updateRelatedMediaRequest` in server/subscriber/MediaSubscriber.ts,
    /// seerr-team/seerr develop, 3.x). Overseerr 1.33/1.34 has no such status: its requests
    /// stay `APPROVED` (server/constants/media.ts in sct/overseerr).
    fn complete_requests(&mut self, media_type: MediaType, tmdb_id: i64) {
        if self.flavor != Flavor::Seerr {
            return;
        }
        let Some(row) = self.media.get(&(media_type, tmdb_id)) else {
            return;
        };
        let done = |s: MediaStatus| matches!(s, MediaStatus::Available | MediaStatus::Deleted);
        let movie_done = done(row.status);
        let seasons = row.seasons.clone();
        for r in self.requests.values_mut() {
            if r.media_type != media_type
                || r.tmdb_id != tmdb_id
                || r.is4k
                || r.status != MediaRequestStatus::Approved
            {
                continue;
            }
            let complete = match media_type {
                MediaType::Movie => movie_done,
                MediaType::Tv => {
                    !r.seasons.is_empty()
                        && r.seasons
                            .iter()
                            .all(|n| seasons.get(n).is_some_and(|s| done(*s)))
                }
            };
            if complete {
                r.status = MediaRequestStatus::Completed;
            }
        }
    }

    fn touch_requests(&mut self, media_type: MediaType, tmdb_id: i64, now: i64) {
        for r in self.requests.values_mut() {
            if r.media_type == media_type && r.tmdb_id == tmdb_id {
                r.updated = now;
            }
        }
    }

    /// Sets a request's status; false when there is no such request.
    pub(super) fn set_request_status(&mut self, id: i64, status: MediaRequestStatus) -> bool {
        let now = self.now();
        match self.requests.get_mut(&id) {
            Some(r) => {
                r.status = status;
                r.updated = now;
                true
            }
            None => false,
        }
    }

    // ---- the routes' work ----

    /// `GET /search`: titles and people whose name contains `query`, one page.
    pub(super) fn search(&self, query: &str, page: usize) -> Reply {
        let needle = query.to_lowercase();
        let mut matches: Vec<Value> = self
            .catalogue
            .iter()
            .filter(|t| t.title.to_lowercase().contains(&needle))
            .map(|t| self.search_item(t))
            .collect();
        matches.extend(
            self.people
                .iter()
                .filter(|(_, name)| name.to_lowercase().contains(&needle))
                .map(|(id, name)| {
                    json!({"id": id, "mediaType": "person", "name": name, "popularity": 50.2,
                           "profilePath": format!("/profile-{id}.jpg"), "adult": false,
                           "knownFor": []})
                }),
        );
        self.tmdb_page(matches, page)
    }

    /// One page of TMDB results as Seerr passes them on: `{page, totalPages, totalResults,
    /// results}`, `search_page_size` to a page.
    fn tmdb_page(&self, matches: Vec<Value>, page: usize) -> Reply {
        let size = self.search_page_size.max(1);
        let total = matches.len();
        let results: Vec<Value> = matches
            .into_iter()
            .skip((page - 1).saturating_mul(size))
            .take(size)
            .collect();
        (
            200,
            Some(json!({
                "page": page,
                "totalPages": total.div_ceil(size),
                "totalResults": total,
                "results": results,
            })),
        )
    }

    /// `GET /discover/...`: one page of a discover row (seerr-team/seerr
    /// `server/routes/discover.ts`). Trending is the whole catalogue with the people after it
    /// (TMDB's trending/all mixes them in); popular is one kind, in catalogue order (the fake's
    /// popularity); upcoming is one kind released on or after [`SIM_TODAY`]. Every title
    /// carries `posterPath`, `backdropPath` and, once the fake has a media row for it,
    /// `mediaInfo` with its status and requests, as search does.
    pub(super) fn discover(&self, row: DiscoverRow, page: usize) -> Reply {
        let kind = match row {
            DiscoverRow::Trending => None,
            DiscoverRow::PopularMovies | DiscoverRow::UpcomingMovies => Some(MediaType::Movie),
            DiscoverRow::PopularTv | DiscoverRow::UpcomingTv => Some(MediaType::Tv),
        };
        let upcoming = matches!(row, DiscoverRow::UpcomingMovies | DiscoverRow::UpcomingTv);
        let mut matches: Vec<Value> = self
            .catalogue
            .iter()
            .filter(|t| kind.is_none_or(|k| t.media_type == k))
            .filter(|t| !upcoming || t.date.as_deref().is_some_and(|d| d >= SIM_TODAY))
            .map(|t| self.search_item(t))
            .collect();
        if row == DiscoverRow::Trending {
            matches.extend(self.people.iter().map(|(id, name)| {
                json!({"id": id, "mediaType": "person", "name": name, "popularity": 50.2,
                       "profilePath": format!("/profile-{id}.jpg"), "adult": false,
                       "knownFor": []})
            }));
        }
        self.tmdb_page(matches, page)
    }

    fn search_item(&self, t: &FakeTitle) -> Value {
        let mut item = match t.media_type {
            MediaType::Movie => json!({
                "id": t.tmdb_id, "mediaType": "movie", "title": t.title, "originalTitle": t.title,
                "releaseDate": t.date.clone().unwrap_or_default(), "video": false, "adult": false,
            }),
            MediaType::Tv => json!({
                "id": t.tmdb_id, "mediaType": "tv", "name": t.title, "originalName": t.title,
                "firstAirDate": t.date.clone().unwrap_or_default(), "originCountry": ["US"],
            }),
        };
        item["overview"] = json!(t.overview);
        item["posterPath"] = json!(t.poster_path);
        item["backdropPath"] = json!(backdrop_of(t));
        item["popularity"] = json!(78.3);
        item["voteAverage"] = json!(8.2);
        item["voteCount"] = json!(25000);
        item["genreIds"] = json!([18]);
        item["originalLanguage"] = json!("en");
        if let Some(info) = self.media_info(t.media_type, t.tmdb_id) {
            item["mediaInfo"] = info;
        }
        item
    }

    /// `GET /movie/{id}` or `/tv/{id}`.
    pub(super) fn details(&self, media_type: MediaType, tmdb_id: i64) -> Reply {
        let Some(t) = self.title(media_type, tmdb_id) else {
            // An id TMDB does not know: the route catches TMDB's 404 and answers 500 with this
            // message (seerr-team/seerr server/routes/movie.ts and server/routes/tv.ts; the same
            // in sct/overseerr).
            let what = match media_type {
                MediaType::Movie => "movie",
                MediaType::Tv => "series",
            };
            return message(500, &format!("Unable to retrieve {what}."));
        };
        let mut body = match media_type {
            MediaType::Movie => json!({
                "id": t.tmdb_id, "imdbId": null, "adult": false, "title": t.title,
                "originalTitle": t.title, "releaseDate": t.date, "runtime": 120,
                "genres": [{"id": 18, "name": "Drama"}], "status": "Released", "tagline": "",
                "video": false, "budget": 0, "revenue": 0, "relatedVideos": [],
                "credits": {"cast": [], "crew": []}, "externalIds": {"imdbId": null},
                "watchProviders": [],
            }),
            MediaType::Tv => {
                let seasons: Vec<Value> = t
                    .seasons
                    .iter()
                    .map(|(n, episodes)| {
                        json!({
                            "id": t.tmdb_id * 100 + i64::from(*n), "airDate": t.date,
                            "episodeCount": episodes,
                            "name": if *n == 0 { "Specials".to_owned() } else { format!("Season {n}") },
                            "overview": "", "posterPath": null, "seasonNumber": n,
                        })
                    })
                    .collect();
                let numbered = t.seasons.iter().filter(|(n, _)| *n > 0).count();
                json!({
                    "id": t.tmdb_id, "name": t.title, "originalName": t.title,
                    "firstAirDate": t.date, "lastAirDate": t.date, "episodeRunTime": [55],
                    "genres": [{"id": 18, "name": "Drama"}], "inProduction": false,
                    "languages": ["en"], "networks": [], "numberOfEpisodes":
                        t.seasons.iter().map(|(_, e)| e).sum::<u32>(),
                    "numberOfSeason": numbered, "seasons": seasons, "status": "Ended",
                    "type": "Scripted", "externalIds": {"tvdbId": t.tvdb_id}, "keywords": [],
                    "createdBy": [],
                })
            }
        };
        body["overview"] = json!(t.overview);
        body["posterPath"] = json!(t.poster_path);
        body["backdropPath"] = json!(backdrop_of(t));
        if let Some(info) = self.media_info(media_type, tmdb_id) {
            body["mediaInfo"] = info;
        }
        (200, Some(body))
    }

    fn media_info(&self, media_type: MediaType, tmdb_id: i64) -> Option<Value> {
        let row = self.media.get(&(media_type, tmdb_id))?;
        let mut info = self.media_json(media_type, tmdb_id, row);
        let requests: Vec<Value> = self
            .requests
            .values()
            .rev()
            .filter(|r| r.media_type == media_type && r.tmdb_id == tmdb_id)
            .map(|r| self.request_json(r, MediaShape::None))
            .collect();
        info["requests"] = json!(requests);
        if media_type == MediaType::Tv {
            info["seasons"] = seasons_json(row);
        }
        Some(info)
    }

    fn media_json(&self, media_type: MediaType, tmdb_id: i64, row: &MediaRow) -> Value {
        let tvdb_id = self.title(media_type, tmdb_id).and_then(|t| t.tvdb_id);
        let mut media = json!({
            "id": row.id, "mediaType": media_type.as_str(), "tmdbId": tmdb_id,
            "tvdbId": tvdb_id, "imdbId": null, "status": row.status.number(),
            "status4k": row.status4k.number(), "createdAt": stamp(row.created),
            "updatedAt": stamp(row.updated), "lastSeasonChange": stamp(row.updated),
            "mediaAddedAt": null, "serviceId": null, "serviceId4k": null,
            "externalServiceId": null, "externalServiceId4k": null, "ratingKey": row.rating_key,
            "ratingKey4k": null, "downloadStatus": [], "downloadStatus4k": [],
        });
        // Computed after load, and only with a `ratingKey` (`setPlexUrls` in
        // server/entity/Media.ts, seerr-team/seerr).
        if let Some(key) = &row.rating_key {
            let app = self
                .plex_web_app_url
                .as_deref()
                .unwrap_or("https://app.plex.tv/desktop");
            let machine = &self.plex_machine_id;
            media["mediaUrl"] = json!(format!(
                "{app}#!/server/{machine}/details?key=%2Flibrary%2Fmetadata%2F{key}"
            ));
            media["iOSPlexUrl"] = json!(format!(
                "plex://preplay/?metadataKey=%2Flibrary%2Fmetadata%2F{key}&server={machine}"
            ));
        }
        media
    }

    /// Sets the `ratingKey` Seerr's scan would have stored for a title (creating its media row).
    pub(super) fn set_rating_key(&mut self, media_type: MediaType, tmdb_id: i64, key: &str) {
        self.media_row(media_type, tmdb_id).rating_key = Some(key.to_owned());
    }

    fn user_json(&self, u: &FakeOverseerrUser) -> Value {
        let request_count = self
            .requests
            .values()
            .filter(|r| r.requested_by == u.id)
            .count();
        let mut user = json!({
            "id": u.id, "email": u.email, "plexUsername": u.plex_username,
            "username": u.username, "displayName": u.display_name,
            "userType": if u.plex_username.is_some() { 1 } else { 2 },
            "permissions": u.permissions,
            "avatar": format!("https://plex.tv/users/{:016x}/avatar?c=1712345678", u.id),
            "movieQuotaLimit": u.movie_quota, "movieQuotaDays": null,
            "tvQuotaLimit": u.tv_quota, "tvQuotaDays": null,
            "createdAt": stamp(0), "updatedAt": stamp(0), "requestCount": request_count,
        });
        if let Some(plex_id) = u.plex_id {
            user["plexId"] = json!(plex_id);
        }
        if self.flavor == Flavor::Seerr {
            // Seerr's user has the column (null for Plex and local users); Overseerr does not.
            user["jellyfinUsername"] = json!(u.jellyfin_username);
            if u.jellyfin_username.is_some() {
                user["userType"] = json!(3);
            }
        }
        user
    }

    pub(super) fn request_json(&self, r: &FakeRequest, shape: MediaShape) -> Value {
        let seasons: Vec<Value> = r
            .seasons
            .iter()
            .map(|n| {
                json!({"id": r.id * 100 + i64::from(*n), "seasonNumber": n,
                       "status": r.status.number(), "createdAt": stamp(r.created),
                       "updatedAt": stamp(r.updated)})
            })
            .collect();
        let user = |id: Option<i64>| {
            id.and_then(|id| self.user(id))
                .map_or(Value::Null, |u| self.user_json(u))
        };
        let mut body = json!({
            "id": r.id, "status": r.status.number(), "type": r.media_type.as_str(),
            "is4k": r.is4k, "serverId": 0, "profileId": 1,
            "rootFolder": if r.media_type == MediaType::Movie { "/movies" } else { "/tv" },
            "languageProfileId": 1, "tags": [], "isAutoRequest": false,
            "createdAt": stamp(r.created), "updatedAt": stamp(r.updated),
            "seasons": seasons,
            "requestedBy": user(Some(r.requested_by)),
            "modifiedBy": user(r.modified_by),
        });
        if shape != MediaShape::None
            && let Some(row) = self.media.get(&(r.media_type, r.tmdb_id))
        {
            let mut media = self.media_json(r.media_type, r.tmdb_id, row);
            if shape == MediaShape::WithSeasons {
                media["seasons"] = seasons_json(row);
            }
            body["media"] = media;
        }
        body
    }

    /// `GET /user?take&skip`, oldest first.
    pub(super) fn list_users(&self, take: usize, skip: usize) -> Reply {
        let results: Vec<Value> = self
            .users
            .iter()
            .skip(skip)
            .take(take)
            .map(|u| self.user_json(u))
            .collect();
        (200, Some(page(results, self.users.len(), take, skip)))
    }

    /// `POST /request` as `acting`.
    pub(super) fn create(&mut self, acting: i64, new: NewRequest) -> Reply {
        let Some(actor) = self.user(acting).cloned() else {
            return message(401, "You must be logged in to request media.");
        };
        let requester = match new.user_id {
            Some(id) if id != acting => {
                if !actor.has(&[permission::MANAGE_USERS, permission::MANAGE_REQUESTS]) {
                    return message(
                        403,
                        "You do not have permission to make requests for other users.",
                    );
                }
                match self.user(id).cloned() {
                    Some(u) => u,
                    None => return message(500, "User not found."),
                }
            }
            _ => actor,
        };
        let Some(title) = self.title(new.media_type, new.media_id).cloned() else {
            return message(500, "The media could not be found on TMDB.");
        };
        let (kind, quota, may_request, may_request_4k, auto) = match new.media_type {
            MediaType::Movie => (
                "movie",
                requester.movie_quota,
                permission::REQUEST_MOVIE,
                permission::REQUEST_4K_MOVIE,
                permission::AUTO_APPROVE_MOVIE,
            ),
            MediaType::Tv => (
                "series",
                requester.tv_quota,
                permission::REQUEST_TV,
                permission::REQUEST_4K_TV,
                permission::AUTO_APPROVE_TV,
            ),
        };
        if !requester.has(&[permission::REQUEST, may_request]) {
            let what = if new.media_type == MediaType::Movie {
                "movie"
            } else {
                "series"
            };
            return message(
                403,
                &format!("You do not have permission to make {what} requests."),
            );
        }
        if new.is4k && !requester.has(&[permission::REQUEST_4K, may_request_4k]) {
            return message(
                403,
                &format!("You do not have permission to make 4K {kind} requests."),
            );
        }
        let used = self
            .requests
            .values()
            .filter(|r| r.requested_by == requester.id && r.media_type == new.media_type)
            .count();
        if quota.is_some_and(|limit| used >= limit as usize) {
            let what = if new.media_type == MediaType::Movie {
                "Movie"
            } else {
                "Series"
            };
            return message(403, &format!("{what} Quota exceeded."));
        }
        // Seerr refuses a blocklisted title with 403 (BlocklistedMediaError in
        // server/entity/MediaRequest.ts, answered by server/routes/request.ts, seerr-team/seerr).
        if self.flavor == Flavor::Seerr
            && self.media_status(new.media_type, new.media_id, false) == MediaStatus::Blocklisted
        {
            return message(403, "This media is blocklisted.");
        }
        let active = |r: &&FakeRequest| {
            r.media_type == new.media_type
                && r.tmdb_id == new.media_id
                && r.is4k == new.is4k
                && r.status != MediaRequestStatus::Declined
                && r.status != MediaRequestStatus::Completed
        };
        let seasons = match new.media_type {
            MediaType::Movie => {
                if self.requests.values().any(|r| active(&r)) {
                    return message(409, "Request for this media already exists.");
                }
                Vec::new()
            }
            MediaType::Tv => {
                let taken: Vec<u32> = self
                    .requests
                    .values()
                    .filter(active)
                    .flat_map(|r| r.seasons.iter().copied())
                    .collect();
                let have = self.media.get(&(MediaType::Tv, new.media_id));
                // "all" is every TMDB season on Overseerr, the specials (season 0) included
                // (server/entity/MediaRequest.ts in sct/overseerr 1.34.0); Seerr leaves season 0
                // out of "all", and out of any list while `enableSpecialEpisodes` is off (its
                // default; server/entity/MediaRequest.ts in seerr-team/seerr develop).
                let seerr = self.flavor == Flavor::Seerr;
                let mut wanted: Vec<u32> = match new.seasons {
                    None => title
                        .seasons
                        .iter()
                        .map(|(n, _)| *n)
                        .filter(|n| !seerr || *n > 0)
                        .collect(),
                    Some(list) => list,
                };
                if seerr && !self.special_episodes {
                    wanted.retain(|n| *n > 0);
                }
                let mut left: Vec<u32> = wanted
                    .into_iter()
                    .filter(|n| title.seasons.iter().any(|(s, _)| s == n))
                    .filter(|n| !taken.contains(n))
                    .filter(|n| {
                        have.and_then(|m| m.seasons.get(n))
                            .is_none_or(|s| *s == MediaStatus::Unknown)
                    })
                    .collect();
                left.sort_unstable();
                left.dedup();
                if left.is_empty() {
                    return (
                        202,
                        Some(json!({"message": "No seasons available to request"})),
                    );
                }
                left
            }
        };
        // Admins (the API key's user 1 among them) always auto-approve; others with the
        // permission for non-4K requests, or everyone while the switch is on.
        let approved = self.auto_approve
            || requester.permissions & permission::ADMIN != 0
            || (!new.is4k && requester.has(&[permission::AUTO_APPROVE, auto]));
        let now = self.now();
        let row = self.media_row(new.media_type, new.media_id);
        if row.status(new.is4k) == MediaStatus::Unknown {
            row.set_status(new.is4k, MediaStatus::Pending);
        }
        row.updated = now;
        let id = self.next_request_id;
        self.next_request_id += 1;
        let request = FakeRequest {
            id,
            status: if approved {
                MediaRequestStatus::Approved
            } else {
                MediaRequestStatus::Pending
            },
            media_type: new.media_type,
            tmdb_id: new.media_id,
            is4k: new.is4k,
            seasons,
            requested_by: requester.id,
            modified_by: approved.then_some(requester.id),
            created: now,
            updated: now,
        };
        // Overseerr answers with the media as it was saved with the request; only then does
        // its subscriber move approved media to PROCESSING, which later reads show.
        let body = self.request_json(&request, MediaShape::WithSeasons);
        self.requests.insert(id, request);
        if approved {
            self.start_processing(new.media_type, new.media_id, new.is4k);
        }
        (201, Some(body))
    }

    fn start_processing(&mut self, media_type: MediaType, tmdb_id: i64, is4k: bool) {
        let row = self.media_row(media_type, tmdb_id);
        if matches!(
            row.status(is4k),
            MediaStatus::Unknown | MediaStatus::Pending
        ) {
            row.set_status(is4k, MediaStatus::Processing);
        }
    }

    /// Puts pending/processing media back to unknown when no live request is left for it.
    fn release_media(&mut self, media_type: MediaType, tmdb_id: i64, is4k: bool) {
        let live = self.requests.values().any(|r| {
            r.media_type == media_type
                && r.tmdb_id == tmdb_id
                && r.is4k == is4k
                && matches!(
                    r.status,
                    MediaRequestStatus::Pending | MediaRequestStatus::Approved
                )
        });
        if live {
            return;
        }
        if let Some(row) = self.media.get_mut(&(media_type, tmdb_id))
            && matches!(
                row.status(is4k),
                MediaStatus::Pending | MediaStatus::Processing
            )
        {
            row.set_status(is4k, MediaStatus::Unknown);
        }
    }

    /// `GET /request/{id}` as `acting`.
    pub(super) fn get(&self, acting: i64, id: i64) -> Reply {
        let Some(r) = self.requests.get(&id) else {
            return message(404, "Request not found.");
        };
        let sees_all = self
            .user(acting)
            .is_some_and(|u| u.has(&[permission::MANAGE_REQUESTS, permission::REQUEST_VIEW]));
        if !sees_all && r.requested_by != acting {
            return message(403, "You do not have permission to view this request.");
        }
        (200, Some(self.request_json(r, MediaShape::WithSeasons)))
    }

    /// `POST /request/{id}/approve|decline` as `acting`.
    pub(super) fn decide(&mut self, acting: i64, id: i64, approve: bool) -> Reply {
        if !self
            .user(acting)
            .is_some_and(FakeOverseerrUser::manages_requests)
        {
            return guard_refusal();
        }
        let now = self.now();
        let Some(r) = self.requests.get_mut(&id) else {
            return message(404, "Request not found.");
        };
        r.status = if approve {
            MediaRequestStatus::Approved
        } else {
            MediaRequestStatus::Declined
        };
        r.modified_by = Some(acting);
        r.updated = now;
        let (media_type, tmdb_id, is4k) = (r.media_type, r.tmdb_id, r.is4k);
        if approve {
            self.start_processing(media_type, tmdb_id, is4k);
        } else {
            self.release_media(media_type, tmdb_id, is4k);
        }
        match self.requests.get(&id) {
            Some(r) => (200, Some(self.request_json(r, MediaShape::WithSeasons))),
            None => message(404, "Request not found."),
        }
    }

    /// `DELETE /request/{id}` as `acting`: managers any, others their own pending ones.
    pub(super) fn delete(&mut self, acting: i64, id: i64) -> Reply {
        let Some(r) = self.requests.get(&id) else {
            return message(404, "Request not found.");
        };
        let manager = self
            .user(acting)
            .is_some_and(FakeOverseerrUser::manages_requests);
        if !manager && (r.requested_by != acting || r.status != MediaRequestStatus::Pending) {
            return message(401, "You do not have permission to delete this request.");
        }
        let (media_type, tmdb_id, is4k) = (r.media_type, r.tmdb_id, r.is4k);
        self.requests.remove(&id);
        self.release_media(media_type, tmdb_id, is4k);
        (204, None)
    }

    /// `GET /request?take&skip&filter&sort&requestedBy` as `acting`.
    pub(super) fn list(
        &self,
        acting: i64,
        take: usize,
        skip: usize,
        filter: &str,
        sort: &str,
        (requested_by, media_type): (Option<i64>, Option<MediaType>),
    ) -> Reply {
        use MediaRequestStatus as R;
        use MediaStatus as M;
        let media = |r: &FakeRequest| self.media_status(r.media_type, r.tmdb_id, r.is4k);
        let keep: fn(&FakeRequest, MediaStatus) -> bool = match filter {
            "all" => |_, _| true,
            "pending" => |r, _| r.status == R::Pending,
            "approved" => |r, _| r.status == R::Approved,
            "processing" => |r, m| r.status == R::Approved && m != M::Available,
            "available" => |r, m| r.status == R::Approved && m == M::Available,
            "unavailable" => |r, m| {
                matches!(r.status, R::Pending | R::Approved)
                    && matches!(
                        m,
                        M::Unknown | M::Pending | M::Processing | M::PartiallyAvailable
                    )
            },
            "failed" => |r, _| r.status == R::Failed,
            // Seerr only: Overseerr's spec lists neither value (overseerr-api.yml, 1.34.0).
            "completed" if self.flavor == Flavor::Seerr => |r, _| r.status == R::Completed,
            "deleted" if self.flavor == Flavor::Seerr => |_, m| m == M::Deleted,
            _ => {
                return message(
                    400,
                    "request.query.filter should be equal to one of the allowed values",
                );
            }
        };
        let sees_all = self
            .user(acting)
            .is_some_and(|u| u.has(&[permission::MANAGE_REQUESTS, permission::REQUEST_VIEW]));
        if !sees_all && requested_by.is_some_and(|id| id != acting) {
            return message(
                403,
                "You do not have permission to view this user's requests.",
            );
        }
        let owner = if sees_all { requested_by } else { Some(acting) };
        let mut rows: Vec<&FakeRequest> = self
            .requests
            .values()
            .filter(|r| owner.is_none_or(|id| r.requested_by == id))
            .filter(|r| media_type.is_none_or(|t| r.media_type == t))
            .filter(|r| keep(r, media(r)))
            .collect();
        match sort {
            "added" => rows.sort_by_key(|r| std::cmp::Reverse(r.id)),
            "modified" => rows.sort_by(|a, b| b.updated.cmp(&a.updated).then(b.id.cmp(&a.id))),
            _ => {
                return message(
                    400,
                    "request.query.sort should be equal to one of the allowed values",
                );
            }
        }
        let total = rows.len();
        let results: Vec<Value> = rows
            .into_iter()
            .skip(skip)
            .take(take)
            .map(|r| self.request_json(r, MediaShape::WithoutSeasons))
            .collect();
        (200, Some(page(results, total, take, skip)))
    }

    /// `GET /request/count`.
    pub(super) fn count(&self) -> Reply {
        use MediaRequestStatus as R;
        let all: Vec<&FakeRequest> = self.requests.values().collect();
        let media = |r: &FakeRequest| self.media_status(r.media_type, r.tmdb_id, r.is4k);
        let n = |f: &dyn Fn(&FakeRequest) -> bool| all.iter().filter(|r| f(r)).count();
        (
            200,
            Some(json!({
                "total": all.len(),
                "movie": n(&|r| r.media_type == MediaType::Movie),
                "tv": n(&|r| r.media_type == MediaType::Tv),
                "pending": n(&|r| r.status == R::Pending),
                "approved": n(&|r| r.status == R::Approved),
                "declined": n(&|r| r.status == R::Declined),
                "processing": n(&|r| r.status == R::Approved && media(r) != MediaStatus::Available),
                "available": n(&|r| media(r) == MediaStatus::Available),
            })),
        )
    }
}

/// How much of the media a request's JSON carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MediaShape {
    /// None (the requests inside `mediaInfo`).
    None,
    /// The media without its seasons: the request list, built with a query builder that loads
    /// no eager relations (`GET /request` in server/routes/request.ts, both upstreams).
    WithoutSeasons,
    /// The media with `seasons[]`: `GET /request/{id}`, approve/decline and create, which load
    /// the request with `find`, so `Media.seasons` (eager) comes along (server/entity/Media.ts).
    WithSeasons,
}

/// A title's backdrop: a TMDB-style name made from its poster's.
fn backdrop_of(t: &FakeTitle) -> Option<String> {
    t.poster_path
        .as_ref()
        .map(|p| p.replacen("/poster", "/backdrop", 1))
}

fn seasons_json(row: &MediaRow) -> Value {
    let seasons: Vec<Value> = row
        .seasons
        .iter()
        .map(|(n, s)| json!({"seasonNumber": n, "status": s.number(), "status4k": 1}))
        .collect();
    json!(seasons)
}

/// Overseerr's list envelope.
fn page(results: Vec<Value>, total: usize, take: usize, skip: usize) -> Value {
    let take = take.max(1);
    json!({
        "pageInfo": {"pages": total.div_ceil(take), "pageSize": take, "results": total,
                     "page": skip / take + 1},
        "results": results,
    })
}

/// `tick` seconds after [`EPOCH_SECS`], in Overseerr's `2025-04-01T10:00:27.000Z` form.
pub(super) fn stamp(tick: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(EPOCH_SECS + tick)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}
