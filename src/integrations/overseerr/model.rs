//! What Overseerr's answers mean (UPSTREAMS.md 2.3, 2.5, 2.6): its enumerations, the search,
//! details, user and request objects, and [`medianest_status`], the one place where Overseerr's
//! two status numbers become a MediaNest request status.
//!
//! Everything here reads leniently, because Overseerr, Jellyseerr and Seerr disagree at the
//! edges: numbers not in the Overseerr enums (Seerr's `COMPLETED=5`, `BLOCKLISTED=6`,
//! `DELETED=7`) are kept as `Unrecognized(n)`, numbers may arrive as strings, any field may be
//! missing or `null`, and one odd item in a list is skipped instead of failing the whole page.
//! Nothing here does I/O.

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer};
use serde_json::Value;

/// What a request or a title is: Overseerr's `MediaType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    Movie,
    Tv,
}

impl MediaType {
    /// The wire spelling: `movie` or `tv`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Movie => "movie",
            Self::Tv => "tv",
        }
    }

    /// Reads `movie` or `tv` (any case, surrounding spaces ignored).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("movie") {
            Some(Self::Movie)
        } else if text.eq_ignore_ascii_case("tv") {
            Some(Self::Tv)
        } else {
            None
        }
    }
}

impl<'de> Deserialize<'de> for MediaType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text)
            .ok_or_else(|| serde::de::Error::custom("a media type other than movie or tv"))
    }
}

/// `media.status` / `media.status4k`: where a title stands on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MediaStatus {
    /// 1: nobody asked for it and it is not on the server (also what a missing value means).
    #[default]
    Unknown,
    /// 2: requested, waiting for approval.
    Pending,
    /// 3: approved and handed to Radarr/Sonarr.
    Processing,
    /// 4: some seasons are on the server.
    PartiallyAvailable,
    /// 5: on the server.
    Available,
    /// 6 (Jellyseerr/Seerr): blocklisted ("blacklisted" in older releases).
    Blocklisted,
    /// 7 (Jellyseerr/Seerr): was available, since removed.
    Deleted,
    /// A number none of the above know.
    Unrecognized(i64),
}

impl MediaStatus {
    /// The status for Overseerr's number.
    pub fn from_number(n: i64) -> Self {
        match n {
            1 => Self::Unknown,
            2 => Self::Pending,
            3 => Self::Processing,
            4 => Self::PartiallyAvailable,
            5 => Self::Available,
            6 => Self::Blocklisted,
            7 => Self::Deleted,
            other => Self::Unrecognized(other),
        }
    }

    /// Overseerr's number for this status.
    pub fn number(self) -> i64 {
        match self {
            Self::Unknown => 1,
            Self::Pending => 2,
            Self::Processing => 3,
            Self::PartiallyAvailable => 4,
            Self::Available => 5,
            Self::Blocklisted => 6,
            Self::Deleted => 7,
            Self::Unrecognized(n) => n,
        }
    }

    /// The name webhooks use (`PARTIALLY_AVAILABLE`); `None` for unrecognized numbers.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::Unknown => "UNKNOWN",
            Self::Pending => "PENDING",
            Self::Processing => "PROCESSING",
            Self::PartiallyAvailable => "PARTIALLY_AVAILABLE",
            Self::Available => "AVAILABLE",
            Self::Blocklisted => "BLOCKLISTED",
            Self::Deleted => "DELETED",
            Self::Unrecognized(_) => return None,
        })
    }

    /// Reads a number, a numeric string or a webhook name (`AVAILABLE`, `BLACKLISTED`, ...).
    pub fn from_value(value: &Value) -> Option<Self> {
        if let Some(n) = int(value) {
            return Some(Self::from_number(n));
        }
        let name = value.as_str()?.trim().to_ascii_uppercase();
        Some(match name.as_str() {
            "UNKNOWN" => Self::Unknown,
            "PENDING" => Self::Pending,
            "PROCESSING" => Self::Processing,
            "PARTIALLY_AVAILABLE" => Self::PartiallyAvailable,
            "AVAILABLE" => Self::Available,
            "BLACKLISTED" | "BLOCKLISTED" => Self::Blocklisted,
            "DELETED" => Self::Deleted,
            _ => return None,
        })
    }
}

impl<'de> Deserialize<'de> for MediaStatus {
    /// Never fails: `null` or an unreadable value is [`MediaStatus::Unknown`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Ok(Self::from_value(&value).unwrap_or_default())
    }
}

/// `request.status`: where a request stands in Overseerr's approval flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaRequestStatus {
    /// 1: waiting for an admin.
    Pending,
    /// 2: approved (by an admin or automatically).
    Approved,
    /// 3: declined by an admin.
    Declined,
    /// 4: Radarr/Sonarr refused it.
    Failed,
    /// 5 (Seerr): the requested media became available.
    Completed,
    /// A number none of the above know; `0` when the answer had no status at all.
    Unrecognized(i64),
}

impl Default for MediaRequestStatus {
    fn default() -> Self {
        Self::Unrecognized(0)
    }
}

impl MediaRequestStatus {
    /// The status for Overseerr's number.
    pub fn from_number(n: i64) -> Self {
        match n {
            1 => Self::Pending,
            2 => Self::Approved,
            3 => Self::Declined,
            4 => Self::Failed,
            5 => Self::Completed,
            other => Self::Unrecognized(other),
        }
    }

    /// Overseerr's number for this status.
    pub fn number(self) -> i64 {
        match self {
            Self::Pending => 1,
            Self::Approved => 2,
            Self::Declined => 3,
            Self::Failed => 4,
            Self::Completed => 5,
            Self::Unrecognized(n) => n,
        }
    }
}

impl<'de> Deserialize<'de> for MediaRequestStatus {
    /// Never fails: `null` or an unreadable value is `Unrecognized(0)`.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Ok(int(&value).map(Self::from_number).unwrap_or_default())
    }
}

/// A MediaNest request status (SPEC section 5, `media_requests.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestState {
    Pending,
    Approved,
    Processing,
    PartiallyAvailable,
    Available,
    Declined,
    Failed,
}

impl RequestState {
    /// The value stored in `media_requests.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Processing => "processing",
            Self::PartiallyAvailable => "partially_available",
            Self::Available => "available",
            Self::Declined => "declined",
            Self::Failed => "failed",
        }
    }

    /// Whether nothing more will happen to the request (reconciliation skips these).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Available | Self::Declined | Self::Failed)
    }
}

/// Maps Overseerr's request status and the status of its media (use `status4k` for a 4K
/// request; [`MediaRequest::state`] picks it) to a MediaNest request status.
///
/// | request \ media                 | Unknown, Pending, Deleted, n | Processing | PartiallyAvailable | Available | Blocklisted |
/// |---------------------------------|------------------------------|------------|--------------------|-----------|-------------|
/// | Pending (1)                     | pending                      | pending    | pending            | available | pending     |
/// | Approved (2)                    | approved                     | processing | partially_available| available | declined    |
/// | Declined (3)                    | declined                     | declined   | declined           | declined  | declined    |
/// | Failed (4)                      | failed                       | failed     | failed             | failed    | failed      |
/// | Completed (5, Seerr)            | available                    | available  | available          | available | available   |
/// | unrecognized                    | pending                      | processing | partially_available| available | pending     |
///
/// Why: a decline or a failure is the request's own verdict and wins. A pending request whose
/// title became available anyway (someone else's request, added by hand) is fulfilled for the
/// user. An approved request follows its media: processing once handed to the *arr, then
/// (partially) available; a freshly auto-approved request, whose media still reads pending,
/// is `approved`. `Deleted` (removed from the server after being available) keeps an approved
/// request open rather than calling it done. A blocklisted title will never arrive, which for an
/// approved request reads as declined. Seerr marks a request `Completed` once every season it
/// asked for is available or deleted (a show's media may then still be partially available:
/// its other seasons were never asked for), so `Completed` is available whatever the media
/// says (server/subscriber/MediaSubscriber.ts in seerr-team/seerr). An unknown
/// request number falls back on what the media says, and never on a final verdict it cannot
/// see.
pub fn medianest_status(request: MediaRequestStatus, media: MediaStatus) -> RequestState {
    use MediaRequestStatus as R;
    use MediaStatus as M;
    match (request, media) {
        (R::Declined, _) => RequestState::Declined,
        (R::Failed, _) => RequestState::Failed,
        (_, M::Available) => RequestState::Available,
        (R::Completed, _) => RequestState::Available,
        (R::Pending, _) => RequestState::Pending,
        (R::Approved, M::Processing) => RequestState::Processing,
        (R::Approved, M::PartiallyAvailable) => RequestState::PartiallyAvailable,
        (R::Approved, M::Blocklisted) => RequestState::Declined,
        (R::Approved, _) => RequestState::Approved,
        (R::Unrecognized(_), M::Processing) => RequestState::Processing,
        (R::Unrecognized(_), M::PartiallyAvailable) => RequestState::PartiallyAvailable,
        (R::Unrecognized(_), _) => RequestState::Pending,
    }
}

/// Which seasons of a show to request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seasons {
    /// Sent as `"all"`: every season *with* the specials (season 0) on Overseerr, without them
    /// on Seerr. MediaNest sends an explicit list instead whenever it has the show's seasons.
    All,
    /// These season numbers (include 0 for the specials).
    List(Vec<u32>),
}

/// Overseerr's `pageInfo` on lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PageInfo {
    /// Number of pages at this page size.
    #[serde(deserialize_with = "int_or_zero")]
    pub pages: i64,
    /// The `take` that was applied.
    #[serde(deserialize_with = "int_or_zero")]
    pub page_size: i64,
    /// Items in the whole list.
    #[serde(deserialize_with = "int_or_zero")]
    pub results: i64,
    /// This page, from 1.
    #[serde(deserialize_with = "int_or_zero")]
    pub page: i64,
}

/// An Overseerr user (`GET /api/v1/user`, `requestedBy`, `modifiedBy`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OverseerrUser {
    /// The id to send as `X-API-User`.
    #[serde(deserialize_with = "int_or_zero")]
    pub id: i64,
    #[serde(deserialize_with = "opt_text")]
    pub email: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    pub plex_username: Option<String>,
    /// The plex.tv account id; many versions leave it out of the list.
    #[serde(deserialize_with = "opt_int")]
    pub plex_id: Option<i64>,
    /// The local username (often `null` for Plex users).
    #[serde(deserialize_with = "opt_text")]
    pub username: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    pub display_name: Option<String>,
    /// Seerr only: the Jellyfin/Emby account name of a user of a Jellyfin- or Emby-backed
    /// server, who has no `plexId` (server/entity/User.ts in seerr-team/seerr).
    #[serde(deserialize_with = "opt_text")]
    pub jellyfin_username: Option<String>,
    /// 1 Plex, 2 local; Jellyseerr/Seerr add 3 Jellyfin, 4 Emby, 5 Plex profile.
    #[serde(deserialize_with = "opt_int")]
    pub user_type: Option<i64>,
    /// Permission bit flags (ADMIN = 2, REQUEST = 32, ...).
    #[serde(deserialize_with = "opt_int")]
    pub permissions: Option<i64>,
    #[serde(deserialize_with = "opt_text")]
    pub avatar: Option<String>,
}

/// One page of `GET /api/v1/user`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPage {
    pub page_info: PageInfo,
    pub results: Vec<OverseerrUser>,
}

/// A season's availability inside `mediaInfo.seasons`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SeasonAvailability {
    #[serde(deserialize_with = "int_or_zero")]
    pub season_number: i64,
    pub status: MediaStatus,
    pub status4k: MediaStatus,
}

/// What Overseerr knows about a title (`mediaInfo`), absent when it never saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MediaInfo {
    /// Overseerr's own media id (not the TMDB id).
    #[serde(deserialize_with = "opt_int")]
    pub id: Option<i64>,
    #[serde(deserialize_with = "opt_int")]
    pub tmdb_id: Option<i64>,
    #[serde(deserialize_with = "opt_int")]
    pub tvdb_id: Option<i64>,
    pub status: MediaStatus,
    pub status4k: MediaStatus,
    /// The title's requests (Overseerr includes them on search results and details).
    #[serde(deserialize_with = "list")]
    pub requests: Vec<MediaRequest>,
    /// Per-season availability (TV).
    #[serde(deserialize_with = "list")]
    pub seasons: Vec<SeasonAvailability>,
    /// The Plex library item (`/library/metadata/{ratingKey}`) once Seerr's Plex scan found the
    /// title; `null` until then and on Jellyfin/Emby installs (server/entity/Media.ts in
    /// seerr-team/seerr, the same column in sct/overseerr).
    #[serde(deserialize_with = "opt_text")]
    pub rating_key: Option<String>,
    /// The link Seerr computes after loading the row (`setPlexUrls` in server/entity/Media.ts):
    /// `{webAppUrl or https://app.plex.tv/desktop}#!/server/{machineId}/details?key=%2Flibrary%2Fmetadata%2F{ratingKey}`
    /// on a Plex install, a Jellyfin/Emby web link otherwise; absent without a `ratingKey`.
    #[serde(deserialize_with = "opt_text")]
    pub media_url: Option<String>,
}

/// The media a request is for (`request.media`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RequestMedia {
    #[serde(deserialize_with = "opt_int")]
    pub id: Option<i64>,
    #[serde(deserialize_with = "opt")]
    pub media_type: Option<MediaType>,
    #[serde(deserialize_with = "opt_int")]
    pub tmdb_id: Option<i64>,
    #[serde(deserialize_with = "opt_int")]
    pub tvdb_id: Option<i64>,
    pub status: MediaStatus,
    pub status4k: MediaStatus,
    /// Per-season availability of a show. Only `GET /request/{id}` (and approve, decline,
    /// create) carry it: the request list is built with a query builder that loads no eager
    /// relations (server/routes/request.ts, seerr-team/seerr and sct/overseerr).
    #[serde(deserialize_with = "list")]
    pub seasons: Vec<SeasonAvailability>,
}

/// A requested season inside a TV request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RequestSeason {
    #[serde(deserialize_with = "int_or_zero")]
    pub season_number: i64,
    pub status: MediaRequestStatus,
}

/// Overseerr's `MediaRequest` (what `POST /request`, `GET /request/{id}`, approve, decline and
/// each list item return).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MediaRequest {
    /// Overseerr's request id (stored as `media_requests.overseerr_id`).
    #[serde(deserialize_with = "int_or_zero")]
    pub id: i64,
    pub status: MediaRequestStatus,
    /// `type` on the wire.
    #[serde(rename = "type", deserialize_with = "opt")]
    pub media_type: Option<MediaType>,
    #[serde(rename = "is4k", deserialize_with = "bool_or_false")]
    pub is4k: bool,
    #[serde(deserialize_with = "list")]
    pub seasons: Vec<RequestSeason>,
    #[serde(deserialize_with = "opt")]
    pub media: Option<RequestMedia>,
    #[serde(deserialize_with = "opt")]
    pub requested_by: Option<OverseerrUser>,
    #[serde(deserialize_with = "opt")]
    pub modified_by: Option<OverseerrUser>,
    #[serde(deserialize_with = "opt_text")]
    pub created_at: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    pub updated_at: Option<String>,
}

impl MediaRequest {
    /// The status of the request's media that matters for it: `status4k` for a 4K request.
    pub fn media_status(&self) -> MediaStatus {
        self.media
            .as_ref()
            .map(|m| if self.is4k { m.status4k } else { m.status })
            .unwrap_or_default()
    }

    /// The MediaNest status of this request (see [`medianest_status`]). A TV request whose
    /// own seasons are all available is available, whatever the show's status (the show may be
    /// only partially available, its other seasons never asked for): when the answer carries
    /// `media.seasons` (`GET /request/{id}` does), those decide. Seerr would mark such a request
    /// `COMPLETED` itself (server/subscriber/MediaSubscriber.ts in seerr-team/seerr); Overseerr
    /// leaves it `APPROVED` with the media `PARTIALLY_AVAILABLE` for good.
    pub fn state(&self) -> RequestState {
        let state = medianest_status(self.status, self.media_status());
        if matches!(
            state,
            RequestState::Declined | RequestState::Failed | RequestState::Available
        ) {
            return state;
        }
        match self.own_seasons_available() {
            Some(true) => RequestState::Available,
            _ => state,
        }
    }

    /// For a TV request whose answer carries the show's seasons: whether every season the
    /// request asked for is available (in 4K for a 4K request). `None` when that cannot be
    /// told (a movie, no requested seasons, or no `media.seasons`).
    pub fn own_seasons_available(&self) -> Option<bool> {
        let media = self.media.as_ref()?;
        if self.media_type == Some(MediaType::Movie)
            || self.seasons.is_empty()
            || media.seasons.is_empty()
        {
            return None;
        }
        Some(self.seasons.iter().all(|wanted| {
            media.seasons.iter().any(|have| {
                have.season_number == wanted.season_number
                    && if self.is4k {
                        have.status4k
                    } else {
                        have.status
                    } == MediaStatus::Available
            })
        }))
    }

    /// The TMDB id of the requested title, when the media came along.
    pub fn tmdb_id(&self) -> Option<i64> {
        self.media.as_ref().and_then(|m| m.tmdb_id)
    }
}

/// One page of `GET /api/v1/request`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestPage {
    pub page_info: PageInfo,
    pub results: Vec<MediaRequest>,
}

/// Which requests `GET /api/v1/request` lists (Overseerr's `filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestFilter {
    /// Every status.
    #[default]
    All,
    /// Request status 1.
    Pending,
    /// Request status 2.
    Approved,
    /// Request status 2, media not yet available.
    Processing,
    /// Request status 2, media available.
    Available,
    /// Request status 1 or 2, media not available.
    Unavailable,
    /// Request status 4.
    Failed,
    /// Seerr only: request status 5 (COMPLETED). On Overseerr, which has no such status,
    /// [`Overseerr::requests`](super::Overseerr::requests) asks for `available` instead.
    Completed,
    /// Seerr only: media status 7 (DELETED). Overseerr has none: an empty page.
    Deleted,
}

impl RequestFilter {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Processing => "processing",
            Self::Available => "available",
            Self::Unavailable => "unavailable",
            Self::Failed => "failed",
            Self::Completed => "completed",
            Self::Deleted => "deleted",
        }
    }
}

/// The order of `GET /api/v1/request` (always newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestSort {
    /// By creation (Overseerr sorts by id, descending).
    #[default]
    Added,
    /// By last change: what reconciliation wants.
    Modified,
}

impl RequestSort {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Modified => "modified",
        }
    }
}

/// `GET /api/v1/request/count`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RequestCount {
    #[serde(deserialize_with = "int_or_zero")]
    pub total: i64,
    #[serde(deserialize_with = "int_or_zero")]
    pub movie: i64,
    #[serde(deserialize_with = "int_or_zero")]
    pub tv: i64,
    #[serde(deserialize_with = "int_or_zero")]
    pub pending: i64,
    #[serde(deserialize_with = "int_or_zero")]
    pub approved: i64,
    #[serde(deserialize_with = "int_or_zero")]
    pub declined: i64,
    #[serde(deserialize_with = "int_or_zero")]
    pub processing: i64,
    #[serde(deserialize_with = "int_or_zero")]
    pub available: i64,
    /// Seerr only.
    #[serde(deserialize_with = "opt_int")]
    pub completed: Option<i64>,
}

/// Why Overseerr answered 403 to a new request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// "Movie Quota exceeded." / "Series Quota exceeded.": the user's quota is used up.
    Quota,
    /// "You do not have permission to make movie requests." and the like.
    Permission,
    /// Seerr: the title is blocklisted.
    Blocklisted,
    /// The permission middleware refused the caller: a wrong API key, or an `X-API-User` id
    /// Overseerr does not know (the cached user mapping is stale).
    AccessDenied,
}

/// The answer to `POST /api/v1/request`. Besides `Created`, these are Overseerr's normal
/// refusals (UPSTREAMS.md 2.8 point 6); the caller turns them into MediaNest errors. Other
/// statuses (400, 401, 5xx) are upstream errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// 201: the new request; `status` is `Approved` when auto-approved.
    Created(Box<MediaRequest>),
    /// 202: every requested season already exists or is already requested (TV only).
    NothingToRequest { message: String },
    /// 409: a request for this media already exists (Overseerr's duplicate check).
    AlreadyRequested { message: String },
    /// 403: refused; `message` is Overseerr's text.
    Refused {
        reason: RefusalReason,
        message: String,
    },
}

/// A TMDB search result's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchMediaType {
    Movie,
    Tv,
    /// Anything else but people (which are skipped), e.g. `collection`.
    Other(String),
}

impl SearchMediaType {
    /// The media type, when the result is requestable.
    pub fn media_type(&self) -> Option<MediaType> {
        match self {
            Self::Movie => Some(MediaType::Movie),
            Self::Tv => Some(MediaType::Tv),
            Self::Other(_) => None,
        }
    }
}

/// A search result (a movie, a show, or another non-person kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchResult {
    pub media_type: SearchMediaType,
    /// The TMDB id.
    pub id: i64,
    /// A movie's `title` or a show's `name`.
    pub title: String,
    /// From `releaseDate` or `firstAirDate`.
    pub year: Option<i32>,
    pub overview: Option<String>,
    /// A TMDB image path such as `/f89U3ADr1oiB1s9GkdPOEpXUk5H.jpg`.
    pub poster_path: Option<String>,
    /// A TMDB image path, as `poster_path`.
    pub backdrop_path: Option<String>,
    /// `None` when Overseerr never saw the title: not requested, not available.
    pub media_info: Option<MediaInfo>,
}

/// One page of `GET /api/v1/search`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchPage {
    pub page: i64,
    pub total_pages: i64,
    pub total_results: i64,
    pub results: Vec<SearchResult>,
}

/// `GET /api/v1/movie/{tmdbId}`, the fields MediaNest shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MovieDetails {
    /// The TMDB id.
    pub id: i64,
    pub title: String,
    pub original_title: Option<String>,
    pub release_date: Option<String>,
    pub year: Option<i32>,
    pub overview: Option<String>,
    pub tagline: Option<String>,
    pub poster_path: Option<String>,
    pub backdrop_path: Option<String>,
    /// Minutes.
    pub runtime: Option<i64>,
    pub genres: Vec<String>,
    pub imdb_id: Option<String>,
    pub media_info: Option<MediaInfo>,
}

/// A season of a show, with its availability when Overseerr tracks it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TvSeason {
    pub season_number: i64,
    pub episode_count: i64,
    pub name: Option<String>,
    pub air_date: Option<String>,
    /// From `mediaInfo.seasons`; `None` when Overseerr has no entry for the season.
    pub status: Option<MediaStatus>,
    pub status4k: Option<MediaStatus>,
}

/// `GET /api/v1/tv/{tmdbId}`, the fields MediaNest shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TvDetails {
    /// The TMDB id (never a TVDB id).
    pub id: i64,
    /// The show's `name`.
    pub title: String,
    pub original_title: Option<String>,
    pub first_air_date: Option<String>,
    pub year: Option<i32>,
    pub overview: Option<String>,
    pub poster_path: Option<String>,
    pub backdrop_path: Option<String>,
    /// `numberOfSeason` (sic) on Overseerr.
    pub number_of_seasons: Option<i64>,
    pub seasons: Vec<TvSeason>,
    pub tvdb_id: Option<i64>,
    /// Minutes of an episode (the first of TMDB's `episodeRunTime`).
    pub episode_runtime: Option<i64>,
    pub genres: Vec<String>,
    pub media_info: Option<MediaInfo>,
}

// ---- wire shapes that differ from the public ones ----

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct SearchWire {
    #[serde(deserialize_with = "int_or_zero")]
    pub page: i64,
    #[serde(deserialize_with = "int_or_zero")]
    pub total_pages: i64,
    #[serde(deserialize_with = "int_or_zero")]
    pub total_results: i64,
    pub results: Option<Vec<Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct SearchResultWire {
    #[serde(deserialize_with = "opt_int")]
    id: Option<i64>,
    #[serde(deserialize_with = "opt_text")]
    media_type: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    title: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    name: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    release_date: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    first_air_date: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    overview: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    poster_path: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    backdrop_path: Option<String>,
    #[serde(deserialize_with = "opt")]
    media_info: Option<MediaInfo>,
}

impl SearchWire {
    /// The page; people and results without an id or a title are left out.
    pub fn into_page(self) -> Option<SearchPage> {
        let results = self
            .results?
            .into_iter()
            .filter_map(|item| serde_json::from_value::<SearchResultWire>(item).ok())
            .filter_map(SearchResultWire::into_result)
            .collect();
        Some(SearchPage {
            page: self.page,
            total_pages: self.total_pages,
            total_results: self.total_results,
            results,
        })
    }
}

impl SearchResultWire {
    fn into_result(self) -> Option<SearchResult> {
        let kind = self.media_type.unwrap_or_default().to_ascii_lowercase();
        let media_type = match kind.as_str() {
            "movie" => SearchMediaType::Movie,
            "tv" => SearchMediaType::Tv,
            "person" => return None,
            _ => SearchMediaType::Other(kind),
        };
        let (title, date) = match media_type {
            SearchMediaType::Tv => (self.name.or(self.title), self.first_air_date),
            _ => (self.title.or(self.name), self.release_date),
        };
        Some(SearchResult {
            media_type,
            id: self.id.filter(|id| *id > 0)?,
            title: title?,
            year: date.as_deref().and_then(year_of),
            overview: self.overview,
            poster_path: self.poster_path,
            backdrop_path: self.backdrop_path,
            media_info: self.media_info,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct NamedWire {
    #[serde(deserialize_with = "opt_text")]
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct MovieWire {
    #[serde(deserialize_with = "opt_int")]
    id: Option<i64>,
    #[serde(deserialize_with = "opt_text")]
    title: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    original_title: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    release_date: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    overview: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    tagline: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    poster_path: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    backdrop_path: Option<String>,
    #[serde(deserialize_with = "opt_int")]
    runtime: Option<i64>,
    #[serde(deserialize_with = "list")]
    genres: Vec<NamedWire>,
    #[serde(deserialize_with = "opt_text")]
    imdb_id: Option<String>,
    #[serde(deserialize_with = "opt")]
    media_info: Option<MediaInfo>,
}

impl MovieWire {
    /// The details; `None` without an id or a title (not a movie answer).
    pub fn into_details(self) -> Option<MovieDetails> {
        Some(MovieDetails {
            id: self.id.filter(|id| *id > 0)?,
            title: self.title?,
            original_title: self.original_title,
            year: self.release_date.as_deref().and_then(year_of),
            release_date: self.release_date,
            overview: self.overview,
            tagline: self.tagline,
            poster_path: self.poster_path,
            backdrop_path: self.backdrop_path,
            runtime: self.runtime,
            genres: self.genres.into_iter().filter_map(|g| g.name).collect(),
            imdb_id: self.imdb_id,
            media_info: self.media_info,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct TvSeasonWire {
    #[serde(deserialize_with = "opt_int")]
    season_number: Option<i64>,
    #[serde(deserialize_with = "opt_int")]
    episode_count: Option<i64>,
    #[serde(deserialize_with = "opt_text")]
    name: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    air_date: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ExternalIdsWire {
    #[serde(deserialize_with = "opt_int")]
    tvdb_id: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct TvWire {
    #[serde(deserialize_with = "opt_int")]
    id: Option<i64>,
    #[serde(deserialize_with = "opt_text")]
    name: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    original_name: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    first_air_date: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    overview: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    poster_path: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    backdrop_path: Option<String>,
    // The spec spells it without the "s"; accept both.
    #[serde(deserialize_with = "opt_int")]
    number_of_season: Option<i64>,
    #[serde(deserialize_with = "opt_int")]
    number_of_seasons: Option<i64>,
    #[serde(deserialize_with = "list")]
    seasons: Vec<TvSeasonWire>,
    #[serde(deserialize_with = "opt")]
    external_ids: Option<ExternalIdsWire>,
    #[serde(deserialize_with = "list")]
    episode_run_time: Vec<Value>,
    #[serde(deserialize_with = "list")]
    genres: Vec<NamedWire>,
    #[serde(deserialize_with = "opt")]
    media_info: Option<MediaInfo>,
}

impl TvWire {
    /// The details with per-season availability merged in; `None` without an id or a name.
    pub fn into_details(self) -> Option<TvDetails> {
        let availability = |n: i64| {
            self.media_info
                .as_ref()
                .and_then(|info| info.seasons.iter().find(|s| s.season_number == n))
        };
        let seasons = self
            .seasons
            .iter()
            .filter_map(|s| {
                let number = s.season_number?;
                let known = availability(number);
                Some(TvSeason {
                    season_number: number,
                    episode_count: s.episode_count.unwrap_or(0),
                    name: s.name.clone(),
                    air_date: s.air_date.clone(),
                    status: known.map(|k| k.status),
                    status4k: known.map(|k| k.status4k),
                })
            })
            .collect();
        Some(TvDetails {
            id: self.id.filter(|id| *id > 0)?,
            title: self.name?,
            original_title: self.original_name,
            year: self.first_air_date.as_deref().and_then(year_of),
            first_air_date: self.first_air_date,
            overview: self.overview,
            poster_path: self.poster_path,
            backdrop_path: self.backdrop_path,
            number_of_seasons: self.number_of_season.or(self.number_of_seasons),
            seasons,
            tvdb_id: self
                .external_ids
                .and_then(|e| e.tvdb_id)
                .or(self.media_info.as_ref().and_then(|m| m.tvdb_id)),
            episode_runtime: self
                .episode_run_time
                .iter()
                .find_map(int)
                .filter(|m| *m > 0),
            genres: self.genres.into_iter().filter_map(|g| g.name).collect(),
            media_info: self.media_info,
        })
    }
}

/// A list envelope (`{"pageInfo": ..., "results": [...]}`); `results` must be there, or the
/// body was an error shape (UPSTREAMS.md 2.8 point 7).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ListWire {
    #[serde(deserialize_with = "opt")]
    pub page_info: Option<PageInfo>,
    pub results: Option<Vec<Value>>,
}

impl ListWire {
    /// The items that parse as `T` and pass `keep`, with the page info (default when absent).
    pub fn into_parts<T: DeserializeOwned>(
        self,
        keep: impl Fn(&T) -> bool,
    ) -> Option<(PageInfo, Vec<T>)> {
        let items = self
            .results?
            .into_iter()
            .filter_map(|item| serde_json::from_value::<T>(item).ok())
            .filter(keep)
            .collect();
        Some((self.page_info.unwrap_or_default(), items))
    }
}

/// The year of a `YYYY-MM-DD` date.
fn year_of(date: &str) -> Option<i32> {
    date.trim()
        .get(..4)
        .and_then(|y| y.parse().ok())
        .filter(|y| *y > 0)
}

// ---- lenient readers: numbers as strings, nulls, empty strings ----

/// An integer from a number or a numeric string; `None` for anything else (`""`, `null`).
pub(crate) fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Text from a non-empty string or a number; `None` for `null`, `""` and anything else.
pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A boolean from `true`/`false`, `"true"`/`"false"`, `1`/`0`.
pub(crate) fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(_) => int(value).map(|n| n != 0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn opt_int<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    Ok(int(&Value::deserialize(deserializer)?))
}

fn int_or_zero<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    Ok(opt_int(deserializer)?.unwrap_or(0))
}

fn opt_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(text(&Value::deserialize(deserializer)?))
}

fn bool_or_false<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(boolean(&Value::deserialize(deserializer)?).unwrap_or(false))
}

/// `Some` when the value reads as `T`, `None` for `null` or a value of another shape.
fn opt<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    if value.is_null() {
        return Ok(None);
    }
    Ok(serde_json::from_value(value).ok())
}

/// The items of an array that read as `T`; `null` or a non-array is an empty list.
fn list<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|item| serde_json::from_value(item).ok())
            .collect(),
        _ => Vec::new(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn status_mapping_covers_every_listed_combination() {
        use MediaRequestStatus as R;
        use MediaStatus as M;
        use RequestState::*;
        let media = [
            M::Unknown,
            M::Pending,
            M::Processing,
            M::PartiallyAvailable,
            M::Available,
            M::Blocklisted,
            M::Deleted,
            M::Unrecognized(42),
        ];
        // One row per request status, one column per media status above.
        let table: [(R, [RequestState; 8]); 6] = [
            (
                R::Pending,
                [
                    Pending, Pending, Pending, Pending, Available, Pending, Pending, Pending,
                ],
            ),
            (
                R::Approved,
                [
                    Approved,
                    Approved,
                    Processing,
                    PartiallyAvailable,
                    Available,
                    Declined,
                    Approved,
                    Approved,
                ],
            ),
            (R::Declined, [Declined; 8]),
            (R::Failed, [Failed; 8]),
            // Seerr 3.x: COMPLETED is available, even on a partially available show.
            (R::Completed, [Available; 8]),
            (
                R::Unrecognized(9),
                [
                    Pending,
                    Pending,
                    Processing,
                    PartiallyAvailable,
                    Available,
                    Pending,
                    Pending,
                    Pending,
                ],
            ),
        ];
        for (request, row) in table {
            for (m, expected) in media.iter().zip(row) {
                assert_eq!(
                    medianest_status(request, *m),
                    expected,
                    "{request:?} x {m:?}"
                );
            }
        }
    }

    #[test]
    fn numbers_round_trip_and_unknown_numbers_are_kept() {
        for n in 1..=7 {
            assert_eq!(MediaStatus::from_number(n).number(), n);
        }
        for n in 1..=5 {
            assert_eq!(MediaRequestStatus::from_number(n).number(), n);
        }
        assert_eq!(MediaStatus::from_number(8), MediaStatus::Unrecognized(8));
        assert_eq!(MediaStatus::from_number(0), MediaStatus::Unrecognized(0));
        assert_eq!(
            MediaRequestStatus::from_number(6),
            MediaRequestStatus::Unrecognized(6)
        );
        assert_eq!(
            MediaRequestStatus::from_number(5),
            MediaRequestStatus::Completed
        );
        assert_eq!(MediaStatus::Deleted.name(), Some("DELETED"));
        assert_eq!(MediaStatus::Unrecognized(9).name(), None);
    }

    #[test]
    fn statuses_read_from_numbers_strings_names_and_null() {
        let media = |v: Value| serde_json::from_value::<MediaStatus>(v).unwrap();
        assert_eq!(media(json!(5)), MediaStatus::Available);
        assert_eq!(media(json!("4")), MediaStatus::PartiallyAvailable);
        assert_eq!(media(json!("PROCESSING")), MediaStatus::Processing);
        assert_eq!(media(json!("blacklisted")), MediaStatus::Blocklisted);
        assert_eq!(media(json!(7)), MediaStatus::Deleted);
        assert_eq!(media(json!(12)), MediaStatus::Unrecognized(12));
        assert_eq!(media(Value::Null), MediaStatus::Unknown);
        assert_eq!(media(json!({"x": 1})), MediaStatus::Unknown);
        let request = |v: Value| serde_json::from_value::<MediaRequestStatus>(v).unwrap();
        assert_eq!(request(json!(2)), MediaRequestStatus::Approved);
        assert_eq!(request(json!("3")), MediaRequestStatus::Declined);
        assert_eq!(request(json!(5)), MediaRequestStatus::Completed);
        assert_eq!(request(json!(99)), MediaRequestStatus::Unrecognized(99));
        assert_eq!(request(Value::Null), MediaRequestStatus::Unrecognized(0));
    }

    #[test]
    fn a_media_request_reads_the_documented_object_and_picks_4k_status() {
        let body = json!({
            "id": 123, "status": 2, "type": "tv", "is4k": false,
            "seasons": [{"id": 901, "seasonNumber": 1, "status": 1}, {"seasonNumber": "2", "status": 2}],
            "media": {"id": 77, "mediaType": "tv", "tmdbId": 1399, "tvdbId": 121361,
                      "status": 3, "status4k": 1, "imdbId": null},
            "requestedBy": {"id": 5, "email": "alice@example.com", "plexUsername": "alice",
                            "username": null, "displayName": "alice", "userType": 1, "permissions": 32},
            "modifiedBy": null,
            "createdAt": "2025-04-01T10:00:27.000Z", "updatedAt": "2025-04-01T10:00:27.000Z"
        });
        let mut request: MediaRequest = serde_json::from_value(body).unwrap();
        assert_eq!(request.id, 123);
        assert_eq!(request.media_type, Some(MediaType::Tv));
        assert_eq!(request.seasons.len(), 2);
        assert_eq!(request.seasons[1].season_number, 2);
        assert_eq!(request.tmdb_id(), Some(1399));
        assert_eq!(request.requested_by.as_ref().unwrap().id, 5);
        assert_eq!(request.requested_by.as_ref().unwrap().username, None);
        assert!(request.modified_by.is_none());
        assert_eq!(request.state(), RequestState::Processing);
        request.is4k = true;
        assert_eq!(request.state(), RequestState::Approved, "status4k is 1");
    }

    /// Seerr 3.x and Overseerr 1.33 alike: `GET /request/{id}` carries `media.seasons[]`
    /// (server/routes/request.ts, server/entity/Media.ts), and a request whose own seasons are
    /// all in is available while the show is only partially available.
    #[test]
    fn a_tv_request_is_available_once_its_own_seasons_are() {
        let body = |seasons: Value| {
            json!({
                "id": 9, "status": 2, "type": "tv", "is4k": false,
                "seasons": [{"seasonNumber": 1, "status": 2}, {"seasonNumber": 2, "status": 2}],
                "media": {"mediaType": "tv", "tmdbId": 1396, "status": 4, "status4k": 1,
                          "seasons": seasons},
            })
        };
        let read = |v: Value| serde_json::from_value::<MediaRequest>(v).unwrap();
        let all_in = read(body(json!([
            {"seasonNumber": 1, "status": 5, "status4k": 1},
            {"seasonNumber": 2, "status": 5, "status4k": 1},
            {"seasonNumber": 3, "status": 1, "status4k": 1},
        ])));
        assert_eq!(all_in.own_seasons_available(), Some(true));
        assert_eq!(all_in.state(), RequestState::Available);
        let mut four_k = all_in.clone();
        four_k.is4k = true;
        assert_eq!(
            four_k.own_seasons_available(),
            Some(false),
            "status4k decides"
        );
        let half = read(body(json!([
            {"seasonNumber": 1, "status": 5}, {"seasonNumber": 2, "status": 3},
        ])));
        assert_eq!(half.state(), RequestState::PartiallyAvailable);
        // The list's shape has no media.seasons: the show's status decides.
        let listed = read(body(Value::Null));
        assert_eq!(listed.own_seasons_available(), None);
        assert_eq!(listed.state(), RequestState::PartiallyAvailable);
    }

    #[test]
    fn odd_shapes_do_not_fail_a_request() {
        let request: MediaRequest = serde_json::from_value(json!({
            "id": "7", "status": "1", "type": "music", "is4k": "true",
            "seasons": null, "media": "oops", "requestedBy": 5
        }))
        .unwrap();
        assert_eq!(request.id, 7);
        assert_eq!(request.status, MediaRequestStatus::Pending);
        assert_eq!(request.media_type, None);
        assert!(request.is4k);
        assert!(request.seasons.is_empty() && request.media.is_none());
        assert!(request.requested_by.is_none());
        assert_eq!(request.state(), RequestState::Pending);
    }

    #[test]
    fn search_results_skip_people_and_derive_title_and_year() {
        let wire: SearchWire = serde_json::from_value(json!({
            "page": 1, "totalPages": 3, "totalResults": 52, "results": [
                {"id": 603, "mediaType": "movie", "title": "The Matrix", "releaseDate": "1999-03-30",
                 "overview": "Set in the 22nd century", "posterPath": "/f89.jpg",
                 "mediaInfo": {"id": 42, "tmdbId": 603, "tvdbId": null, "status": 5, "status4k": 1,
                               "requests": []}},
                {"id": 1399, "mediaType": "tv", "name": "Game of Thrones", "firstAirDate": "2011-04-17"},
                {"id": 6384, "mediaType": "person", "name": "Keanu Reeves"},
                {"id": 10, "mediaType": "collection", "name": "The Matrix Collection"},
                {"id": 11, "mediaType": "movie", "title": "No date", "releaseDate": ""},
                {"mediaType": "movie", "title": "No id"},
                "not an object"
            ]
        }))
        .unwrap();
        let page = wire.into_page().unwrap();
        assert_eq!(
            (page.page, page.total_pages, page.total_results),
            (1, 3, 52)
        );
        let titles: Vec<_> = page.results.iter().map(|r| r.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "The Matrix",
                "Game of Thrones",
                "The Matrix Collection",
                "No date"
            ]
        );
        assert_eq!(page.results[0].year, Some(1999));
        assert_eq!(
            page.results[0].media_info.as_ref().unwrap().status,
            MediaStatus::Available
        );
        assert_eq!(page.results[1].media_type, SearchMediaType::Tv);
        assert_eq!(page.results[1].year, Some(2011));
        assert!(page.results[1].media_info.is_none());
        assert_eq!(page.results[2].media_type.media_type(), None);
        assert_eq!(page.results[3].year, None);
        let missing: SearchWire = serde_json::from_value(json!({"message": "x"})).unwrap();
        assert!(missing.into_page().is_none(), "an error body is not a page");
    }

    #[test]
    fn tv_details_merge_season_availability() {
        let wire: TvWire = serde_json::from_value(json!({
            "id": 1399, "name": "Game of Thrones", "firstAirDate": "2011-04-17", "numberOfSeason": 2,
            "seasons": [
                {"id": 1, "seasonNumber": 0, "episodeCount": 3, "name": "Specials"},
                {"id": 2, "seasonNumber": 1, "episodeCount": 10, "name": "Season 1", "airDate": "2011-04-17"},
                {"id": 3, "seasonNumber": 2, "episodeCount": 10, "name": "Season 2"}
            ],
            "externalIds": {"tvdbId": 121361},
            "mediaInfo": {"status": 4, "status4k": 1, "seasons": [
                {"seasonNumber": 1, "status": 5, "status4k": 1}
            ]}
        }))
        .unwrap();
        let tv = wire.into_details().unwrap();
        assert_eq!(tv.title, "Game of Thrones");
        assert_eq!(tv.year, Some(2011));
        assert_eq!(tv.number_of_seasons, Some(2));
        assert_eq!(tv.tvdb_id, Some(121361));
        assert_eq!(tv.seasons.len(), 3);
        assert_eq!(tv.seasons[1].status, Some(MediaStatus::Available));
        assert_eq!(tv.seasons[2].status, None);
        assert_eq!(tv.seasons[0].episode_count, 3);
        let bare: TvWire = serde_json::from_value(json!({"id": 1})).unwrap();
        assert!(bare.into_details().is_none(), "no name, not a show");
    }

    #[test]
    fn movie_details_read_the_useful_fields() {
        let wire: MovieWire = serde_json::from_value(json!({
            "id": 603, "imdbId": "tt0133093", "title": "The Matrix", "releaseDate": "1999-03-30",
            "runtime": 136, "genres": [{"id": 28, "name": "Action"}, {"id": 878}],
            "credits": {"cast": []}, "mediaInfo": null
        }))
        .unwrap();
        let movie = wire.into_details().unwrap();
        assert_eq!(movie.genres, ["Action"]);
        assert_eq!(movie.runtime, Some(136));
        assert_eq!(movie.year, Some(1999));
        assert!(movie.media_info.is_none());
    }

    #[test]
    fn lenient_readers() {
        assert_eq!(int(&json!("12")), Some(12));
        assert_eq!(int(&json!(" 12 ")), Some(12));
        assert_eq!(int(&json!("")), None);
        assert_eq!(int(&json!(12.0)), Some(12));
        assert_eq!(int(&json!(12.5)), None);
        assert_eq!(int(&Value::Null), None);
        assert_eq!(text(&json!("")), None);
        assert_eq!(text(&json!(5)), Some("5".into()));
        assert_eq!(boolean(&json!("false")), Some(false));
        assert_eq!(boolean(&json!(1)), Some(true));
        assert_eq!(year_of("1999-03-30"), Some(1999));
        assert_eq!(year_of("19"), None);
    }
}
