//! The media-request calls of [`Overseerr`] (UPSTREAMS.md 2.5, 2.6): search, details, users,
//! and creating, reading, listing, approving, declining and deleting requests.
//!
//! Every call goes through [`Upstream::send`](crate::integrations::upstream::Upstream::send), so
//! only GETs are retried, and the deadline, the breaker and redaction apply. Answers Overseerr
//! gives as normal control flow are values, not errors: a 404 on a request or a title is `None`
//! (or `false`), and the 202/403/409 answers to a new request are [`CreateOutcome`] variants.
//! Everything else that is not 2xx is an `UpstreamFailure::Status`, which becomes
//! `UPSTREAM_ERROR`. Input validation (query length, season numbers) is the caller's job.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use ureq::Body;
use ureq::http::Response;

use super::Overseerr;
use super::model::{
    CreateOutcome, ListWire, MediaRequest, MediaType, MovieDetails, MovieWire, OverseerrUser,
    RefusalReason, RequestCount, RequestFilter, RequestPage, RequestSort, SearchPage, SearchWire,
    Seasons, TvDetails, TvWire, UserPage,
};
use crate::error::AppResult;
use crate::integrations::upstream::{
    Method, UpstreamFailure, expect_success, read_body, read_json,
};

/// Bytes left as they are in a query value: RFC 3986's unreserved set. Everything else,
/// including `!`, `(`, `)`, `*`, `'` and space, is percent-encoded, because Overseerr's
/// validator rejects reserved characters and `+` for space (UPSTREAMS.md 2.5).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// How many users [`Overseerr::find_user`] asks for per page.
const USER_PAGE_SIZE: u32 = 100;
/// A bound on the pages [`Overseerr::find_user`] reads, in case a server pages forever.
const MAX_USER_PAGES: u32 = 100;

/// Percent-encodes `value` for a query string: every byte outside `A-Z a-z 0-9 - . _ ~`
/// becomes `%XX` (so a space is `%20`, never `+`).
pub fn encode_query_value(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

impl Overseerr {
    /// `GET /api/v1/search`: one page (from 1) of TMDB results for `query`, people left out.
    ///
    /// The query is percent-encoded strictly and placed in the URL as is (the equivalent of
    /// ureq's `query_raw`); the caller has checked its length (1-100 characters).
    pub async fn search(&self, query: &str, page: u32) -> AppResult<SearchPage> {
        let path = format!(
            "/search?query={}&page={}",
            encode_query_value(query),
            page.max(1)
        );
        // The text is the caller's: what Overseerr answers to it never counts for the breaker.
        let request = self.request(Method::Get, &path).caller_chosen();
        self.upstream()
            .send(request, |response| {
                let wire: SearchWire = read_json(expect_success(response)?)?;
                wire.into_page()
                    .ok_or_else(|| UpstreamFailure::Decode("search answer without results".into()))
            })
            .await
    }

    /// `GET /api/v1/movie/{tmdbId}`; `None` when Overseerr does not know the title (see
    /// [`unknown_title`]). The id is the caller's choice, so nothing Overseerr answers to it
    /// counts against the breaker.
    pub async fn movie(&self, tmdb_id: i64) -> AppResult<Option<MovieDetails>> {
        let request = self
            .request(Method::Get, &format!("/movie/{tmdb_id}"))
            .caller_chosen();
        self.upstream()
            .send(request, |response| {
                let Some(response) = unknown_title(response)? else {
                    return Ok(None);
                };
                let wire: MovieWire = read_json(expect_success(response)?)?;
                wire.into_details()
                    .map(Some)
                    .ok_or_else(|| UpstreamFailure::Decode("movie without id or title".into()))
            })
            .await
    }

    /// `GET /api/v1/tv/{tmdbId}` (a TMDB id, never a TVDB id); `None` for an unknown title, as
    /// for [`Self::movie`].
    pub async fn tv(&self, tmdb_id: i64) -> AppResult<Option<TvDetails>> {
        let request = self
            .request(Method::Get, &format!("/tv/{tmdb_id}"))
            .caller_chosen();
        self.upstream()
            .send(request, |response| {
                let Some(response) = unknown_title(response)? else {
                    return Ok(None);
                };
                let wire: TvWire = read_json(expect_success(response)?)?;
                wire.into_details()
                    .map(Some)
                    .ok_or_else(|| UpstreamFailure::Decode("show without id or name".into()))
            })
            .await
    }

    /// `GET /api/v1/user?take&skip`: one page of Overseerr's users (needs an admin key).
    pub async fn users(&self, take: u32, skip: u32) -> AppResult<UserPage> {
        let path = format!("/user?take={}&skip={skip}&sort=created", take.max(1));
        let request = self.request(Method::Get, &path);
        self.upstream()
            .send(request, |response| {
                let wire: ListWire = read_json(expect_success(response)?)?;
                let (page_info, results) = wire
                    .into_parts(|u: &OverseerrUser| u.id > 0)
                    .ok_or_else(|| UpstreamFailure::Decode("user list without results".into()))?;
                Ok(UserPage { page_info, results })
            })
            .await
    }

    /// Finds the Overseerr user for a MediaNest user by reading every page of the user list,
    /// then matching the plex.tv account id, else the email (ignoring case), else, for the
    /// users of a Jellyfin- or Emby-backed Seerr, who have no Plex id, the Jellyfin account name
    /// against the MediaNest `username`. The fields are what Seerr's `User` entity keeps and its
    /// user list shows to a user manager (server/entity/User.ts in seerr-team/seerr: `plexId`,
    /// `email`, stored lowercase, `jellyfinUsername`).
    ///
    /// No other name is matched: a Plex username, an Overseerr local username and a MediaNest
    /// username live in different namespaces, and a match across them could make someone act
    /// as another account. The Jellyfin name is matched only for a user without a Plex id and
    /// without the ADMIN permission, and only when exactly one user has it, so a look-alike
    /// name never becomes the server's admin. `None` when nobody matches. One call per page:
    /// the caller caches the answer.
    pub async fn find_user(
        &self,
        plex_id: Option<i64>,
        email: Option<&str>,
        username: Option<&str>,
    ) -> AppResult<Option<OverseerrUser>> {
        let mut users = Vec::new();
        let mut skip = 0;
        for _ in 0..MAX_USER_PAGES {
            let page = self.users(USER_PAGE_SIZE, skip).await?;
            let got = page.results.len();
            users.extend(page.results);
            skip += USER_PAGE_SIZE;
            // A short page is the last; so is reaching the total, when the server gives one.
            let total = u64::try_from(page.page_info.results).unwrap_or(0);
            if got < USER_PAGE_SIZE as usize || (total > 0 && u64::from(skip) >= total) {
                break;
            }
        }
        Ok(match_user(users, plex_id, email, username))
    }

    /// `POST /api/v1/request` for the TMDB id `media_id`, as the Overseerr user `as_user`
    /// (sent as `X-API-User`; without it the API key acts as Overseerr's admin, whose requests
    /// are auto-approved). `seasons` is sent for TV only. Never retried.
    ///
    /// 201, 202, 403 and 409 are [`CreateOutcome`]s; anything else is an upstream error.
    pub async fn create_request(
        &self,
        as_user: Option<i64>,
        media_type: MediaType,
        media_id: i64,
        seasons: Seasons,
        is4k: bool,
    ) -> AppResult<CreateOutcome> {
        let mut body = json!({
            "mediaType": media_type.as_str(),
            "mediaId": media_id,
            "is4k": is4k,
        });
        if media_type == MediaType::Tv {
            body["seasons"] = match seasons {
                Seasons::All => json!("all"),
                Seasons::List(list) => json!(list),
            };
        }
        let mut request = self.request(Method::Post, "/request").json(&body)?;
        if let Some(user) = as_user {
            request = request.header("X-API-User", user.to_string());
        }
        self.upstream()
            .send(request, |response| match response.status().as_u16() {
                202 => Ok(CreateOutcome::NothingToRequest {
                    message: error_message(response).0,
                }),
                409 => Ok(CreateOutcome::AlreadyRequested {
                    message: error_message(response).0,
                }),
                403 => {
                    let (message, from_guard) = error_message(response);
                    Ok(CreateOutcome::Refused {
                        reason: refusal_reason(&message, from_guard),
                        message,
                    })
                }
                _ => request_from(expect_success(response)?)
                    .map(|r| CreateOutcome::Created(Box::new(r))),
            })
            .await
    }

    /// `GET /api/v1/request/{id}`; `None` when Overseerr has no such request (404).
    pub async fn get_request(&self, id: i64) -> AppResult<Option<MediaRequest>> {
        let request = self.request(Method::Get, &format!("/request/{id}"));
        self.upstream().send(request, optional_request).await
    }

    /// `DELETE /api/v1/request/{id}`: true when deleted, false when it did not exist (404).
    /// The media itself stays in Overseerr.
    pub async fn delete_request(&self, id: i64) -> AppResult<bool> {
        let request = self.request(Method::Delete, &format!("/request/{id}"));
        self.upstream()
            .send(request, |response| {
                if response.status().as_u16() == 404 {
                    return Ok(false);
                }
                read_body(expect_success(response)?)?;
                Ok(true)
            })
            .await
    }

    /// `POST /api/v1/request/{id}/approve` (as the API key's admin); `None` on 404.
    pub async fn approve_request(&self, id: i64) -> AppResult<Option<MediaRequest>> {
        let request = self.request(Method::Post, &format!("/request/{id}/approve"));
        self.upstream().send(request, optional_request).await
    }

    /// `POST /api/v1/request/{id}/decline` (as the API key's admin); `None` on 404. Overseerr
    /// takes no reason: MediaNest keeps its own.
    pub async fn decline_request(&self, id: i64) -> AppResult<Option<MediaRequest>> {
        let request = self.request(Method::Post, &format!("/request/{id}/decline"));
        self.upstream().send(request, optional_request).await
    }

    /// `GET /api/v1/request?take&skip&filter&sort`: one page of every user's requests (the API
    /// key's admin sees them all), newest first by `sort`, of one `media_type` when given. Items
    /// that do not parse or have no id are left out.
    ///
    /// What only Seerr knows is sent only to Seerr ([`Overseerr::flavor`]): Overseerr's OpenAPI
    /// validator refuses any query parameter or filter value its spec does not list
    /// (overseerr-api.yml in sct/overseerr 1.34.0: no `mediaType`, `sortDirection`, no
    /// `filter=completed|deleted`; seerr-api.yml in seerr-team/seerr lists them). On Overseerr
    /// the media type is filtered here (the page may then hold fewer than `take`),
    /// `Completed` asks for `available` (approved and available: what Seerr completes) and
    /// `Deleted` is an empty page without a call.
    pub async fn requests(
        &self,
        take: u32,
        skip: u32,
        filter: RequestFilter,
        sort: RequestSort,
        media_type: Option<MediaType>,
    ) -> AppResult<RequestPage> {
        let seerr = self.flavor().await? == super::Flavor::Seerr;
        let filter = match (filter, seerr) {
            (RequestFilter::Deleted, false) => return Ok(RequestPage::default()),
            (RequestFilter::Completed, false) => RequestFilter::Available,
            (filter, _) => filter,
        };
        let mut path = format!(
            "/request?take={}&skip={skip}&filter={}&sort={}",
            take.max(1),
            filter.as_str(),
            sort.as_str()
        );
        if seerr && let Some(kind) = media_type {
            path.push_str("&mediaType=");
            path.push_str(kind.as_str());
        }
        let local = media_type.filter(|_| !seerr);
        let request = self.request(Method::Get, &path);
        self.upstream()
            .send(request, move |response| {
                let wire: ListWire = read_json(expect_success(response)?)?;
                let (page_info, results) = wire
                    .into_parts(|r: &MediaRequest| {
                        r.id > 0 && local.is_none_or(|kind| r.media_type == Some(kind))
                    })
                    .ok_or_else(|| {
                        UpstreamFailure::Decode("request list without results".into())
                    })?;
                Ok(RequestPage { page_info, results })
            })
            .await
    }

    /// `GET /api/v1/request/count`: totals by status and type.
    pub async fn request_count(&self) -> AppResult<RequestCount> {
        self.upstream()
            .get_json(self.request(Method::Get, "/request/count"))
            .await
    }
}

/// Seerr's 500 that is not one of the answers read as "not found": an upstream error with the
/// start of its message (redacted).
pub(super) fn server_error(message: &str) -> UpstreamFailure {
    UpstreamFailure::Status {
        status: 500,
        body_snippet: crate::integrations::upstream::redact(
            &message.chars().take(200).collect::<String>(),
        ),
        retry_after: None,
    }
}

/// `None` when a details answer says the title is unknown, else the response to read on.
///
/// Overseerr and Seerr answer a TMDB id that TMDB does not know with 500 and
/// `{"message":"Unable to retrieve movie."}` (or `"Unable to retrieve series."`): their routes
/// catch TMDB's 404 and pass on a 500 (server/routes/movie.ts and tv.ts in seerr-team/seerr and
/// sct/overseerr). A 404 is read the same way. Any other 500 stays an upstream error.
fn unknown_title(response: Response<Body>) -> Result<Option<Response<Body>>, UpstreamFailure> {
    match response.status().as_u16() {
        404 => Ok(None),
        500 => {
            let (message, _) = error_message(response);
            if message.starts_with("Unable to retrieve ") {
                Ok(None)
            } else {
                Err(server_error(&message))
            }
        }
        _ => Ok(Some(response)),
    }
}

/// A request from a 2xx body; one without an id is not a request.
fn request_from(response: Response<Body>) -> Result<MediaRequest, UpstreamFailure> {
    let request: MediaRequest = read_json(response)?;
    if request.id <= 0 {
        return Err(UpstreamFailure::Decode("request without id".into()));
    }
    Ok(request)
}

fn optional_request(response: Response<Body>) -> Result<Option<MediaRequest>, UpstreamFailure> {
    if response.status().as_u16() == 404 {
        return Ok(None);
    }
    request_from(expect_success(response)?).map(Some)
}

/// The text of an Overseerr error body, and whether it came from the permission middleware
/// (shape 2, `{"status":403,"error":...}`) rather than a route (`{"message":...}`).
pub(super) fn error_message(response: Response<Body>) -> (String, bool) {
    let status = response.status().as_u16();
    let body = read_body(response)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .unwrap_or(Value::Null);
    let text = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    match (text("message"), text("error")) {
        (Some(message), _) => (message, false),
        (None, Some(error)) => (error, true),
        (None, None) => (format!("HTTP {status}"), false),
    }
}

fn refusal_reason(message: &str, from_guard: bool) -> RefusalReason {
    let lower = message.to_ascii_lowercase();
    if from_guard {
        RefusalReason::AccessDenied
    } else if lower.contains("quota") {
        RefusalReason::Quota
    } else if lower.contains("blacklist") || lower.contains("blocklist") {
        RefusalReason::Blocklisted
    } else {
        RefusalReason::Permission
    }
}

/// Overseerr's ADMIN permission bit (server/lib/permissions.ts, both upstreams).
const ADMIN_PERMISSION: i64 = 2;

fn match_user(
    users: Vec<OverseerrUser>,
    plex_id: Option<i64>,
    email: Option<&str>,
    username: Option<&str>,
) -> Option<OverseerrUser> {
    let email = email.map(str::trim).filter(|s| !s.is_empty());
    let by_plex_id = |u: &OverseerrUser| plex_id.is_some() && u.plex_id == plex_id;
    let by_email = |u: &OverseerrUser| {
        email.is_some_and(|e| {
            u.email
                .as_deref()
                .is_some_and(|a| a.trim().eq_ignore_ascii_case(e))
        })
    };
    let username = username.map(str::trim).filter(|s| !s.is_empty());
    let by_jellyfin_name = |u: &OverseerrUser| {
        username.is_some_and(|name| {
            u.plex_id.is_none()
                && u.permissions.unwrap_or(0) & ADMIN_PERMISSION == 0
                && u.jellyfin_username
                    .as_deref()
                    .is_some_and(|j| j.trim().eq_ignore_ascii_case(name))
        })
    };
    let by_name = || {
        let mut named = users
            .iter()
            .enumerate()
            .filter(|(_, u)| by_jellyfin_name(u));
        match (named.next(), named.next()) {
            (Some((index, _)), None) => Some(index),
            _ => None,
        }
    };
    let index = users
        .iter()
        .position(by_plex_id)
        .or_else(|| users.iter().position(by_email))
        .or_else(by_name)?;
    users.into_iter().nth(index)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn query_values_keep_only_unreserved_bytes() {
        assert_eq!(
            encode_query_value("Mission: Impossible (1996)!"),
            "Mission%3A%20Impossible%20%281996%29%21"
        );
        assert_eq!(encode_query_value("Don't*"), "Don%27t%2A");
        assert_eq!(
            encode_query_value("a+b&c=d/e?f#g"),
            "a%2Bb%26c%3Dd%2Fe%3Ff%23g"
        );
        assert_eq!(encode_query_value("Amélie"), "Am%C3%A9lie");
        assert_eq!(encode_query_value("A-z0.9_~"), "A-z0.9_~");
    }

    #[test]
    fn users_match_by_plex_id_then_email_never_by_name() {
        let user =
            |id, plex_id, plex_username: &str, username: Option<&str>, email: &str| OverseerrUser {
                id,
                plex_id,
                plex_username: Some(plex_username.into()),
                username: username.map(str::to_owned),
                email: Some(email.into()),
                ..OverseerrUser::default()
            };
        let users = vec![
            user(1, Some(100), "owner", Some("admin"), "owner@example.com"),
            user(2, None, "alice", None, "bob@example.com"),
            user(3, Some(300), "carol", Some("bob"), "carol@example.com"),
            user(4, None, "dave", None, "Alice@Example.com"),
        ];
        let find = |p, e| match_user(users.clone(), p, e, None).map(|u| u.id);
        assert_eq!(
            find(Some(300), Some("alice@example.com")),
            Some(3),
            "plex id first"
        );
        assert_eq!(find(Some(999), Some("ALICE@example.COM")), Some(4));
        assert_eq!(find(None, Some(" bob@example.com ")), Some(2));
        assert_eq!(find(None, Some(" ")), None);
        assert_eq!(find(None, None), None);
        assert_eq!(find(Some(7), Some("y")), None);
        // Names never match, whatever namespace: not `admin`, `owner` or `bob`.
        for name in ["admin", "owner", "bob", "alice"] {
            assert_eq!(find(None, Some(name)), None, "{name}");
        }
    }

    /// Seerr 3.x backed by Jellyfin: users have no `plexId` and a `jellyfinUsername`
    /// (server/entity/User.ts in seerr-team/seerr); email first, then that name, never an
    /// admin's and never an ambiguous one.
    #[test]
    fn jellyfin_users_match_by_email_then_jellyfin_name() {
        let user = |id, name: &str, email: &str, permissions| OverseerrUser {
            id,
            jellyfin_username: Some(name.into()),
            email: Some(email.into()),
            user_type: Some(3),
            permissions: Some(permissions),
            ..OverseerrUser::default()
        };
        let users = vec![
            user(1, "boss", "boss", 2),
            user(5, "kim", "kim", 32),
            user(6, "lee", "lee@home.example", 32),
            user(7, "twin", "twin-a", 32),
            user(8, "Twin", "twin-b", 32),
        ];
        let find = |e, n| match_user(users.clone(), None, e, n).map(|u| u.id);
        assert_eq!(
            find(Some("lee@home.example"), Some("kim")),
            Some(6),
            "email first"
        );
        assert_eq!(find(Some("kim@elsewhere.example"), Some("KIM")), Some(5));
        assert_eq!(find(None, Some("boss")), None, "never the admin by name");
        assert_eq!(find(None, Some("twin")), None, "never an ambiguous name");
        assert_eq!(find(None, Some("nobody")), None);
        let mut plex = user(9, "pat", "pat", 32);
        plex.plex_id = Some(99);
        assert_eq!(
            match_user(vec![plex], None, None, Some("pat")).map(|u| u.id),
            None,
            "a Plex user is not matched by name"
        );
    }

    #[test]
    fn refusals_are_told_apart() {
        assert_eq!(
            refusal_reason("Movie Quota exceeded.", false),
            RefusalReason::Quota
        );
        assert_eq!(
            refusal_reason("You do not have permission to make movie requests.", false),
            RefusalReason::Permission
        );
        assert_eq!(
            refusal_reason("This media is blacklisted.", false),
            RefusalReason::Blocklisted
        );
        assert_eq!(
            refusal_reason("You do not have permission to access this endpoint", true),
            RefusalReason::AccessDenied
        );
    }
}
