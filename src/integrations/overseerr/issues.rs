//! The issue calls of [`Overseerr`]: report a problem with a title, read it, comment on it,
//! resolve or reopen it. The contract is read from seerr-team/seerr's server/routes/issue.ts
//! (the same file in sct/overseerr 1.34.0), server/entity/Issue.ts, server/entity/IssueComment.ts
//! and server/constants/issue.ts:
//!
//! - `POST /api/v1/issue` `{issueType, message, mediaId, problemSeason, problemEpisode}`, where
//!   `mediaId` is Seerr's own media id (`mediaInfo.id`, not the TMDB id), answers **200** with the
//!   new issue (its first comment is the message; seerr-api.yml documents a 201, so any 2xx is
//!   read as created, and it lists neither `problemSeason` nor `problemEpisode`, which the
//!   validator lets through as extra properties); 404 `Media does not exist.` for an unknown
//!   media id; the permission guard's 403 without `CREATE_ISSUES`/`MANAGE_ISSUES`.
//! - `GET /api/v1/issue/{id}` answers the issue with `comments`, `createdBy` and `media`; an
//!   unknown id is a **500** `Issue not found.` (the route's `getOneOrFail` catch), read here as
//!   `None`.
//! - `POST /api/v1/issue/{id}/comment` `{message}` and `POST /api/v1/issue/{id}/{resolved|open}`
//!   answer 200 with the issue; the same 500 for an unknown id.
//!
//! Every call acts as `X-API-User` when given (server/middleware/auth.ts: the API key acts as
//! user 1 unless that header names another user). Only GETs are retried.

use serde::Deserialize;
use serde_json::json;
use ureq::Body;
use ureq::http::Response;

use super::Overseerr;
use super::api::error_message;
use super::model::{OverseerrUser, RequestMedia};
use crate::error::AppResult;
use crate::integrations::upstream::{Method, UpstreamFailure, expect_success, read_json};

/// `IssueType` (server/constants/issue.ts): VIDEO = 1, AUDIO = 2, SUBTITLES = 3, OTHER = 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IssueType {
    Video,
    Audio,
    Subtitles,
    Other,
}

impl IssueType {
    pub const ALL: [Self; 4] = [Self::Video, Self::Audio, Self::Subtitles, Self::Other];

    /// The number Seerr stores.
    pub fn number(self) -> i64 {
        match self {
            Self::Video => 1,
            Self::Audio => 2,
            Self::Subtitles => 3,
            Self::Other => 4,
        }
    }

    pub fn from_number(n: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.number() == n)
    }

    /// MediaNest's name (`video`, `audio`, `subtitles`, `other`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Subtitles => "subtitles",
            Self::Other => "other",
        }
    }

    /// Reads MediaNest's name, or the webhook's `issue_type`, which is the enum *key*
    /// (`IssueType[payload.issue.issueType]` in server/lib/notifications/agents/webhook.ts:
    /// `VIDEO`, `AUDIO`, `SUBTITLES`, `OTHER`), or the number.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if let Ok(n) = text.parse::<i64>() {
            return Self::from_number(n);
        }
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(text))
    }
}

/// `IssueStatus` (server/constants/issue.ts): OPEN = 1, RESOLVED = 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IssueStatus {
    Open,
    Resolved,
}

impl IssueStatus {
    pub fn number(self) -> i64 {
        match self {
            Self::Open => 1,
            Self::Resolved => 2,
        }
    }

    pub fn from_number(n: i64) -> Option<Self> {
        match n {
            1 => Some(Self::Open),
            2 => Some(Self::Resolved),
            _ => None,
        }
    }

    /// MediaNest's name and the path word of `POST /issue/{id}/{status}` (`open`, `resolved`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Resolved => "resolved",
        }
    }
}

/// One comment of an issue (server/entity/IssueComment.ts).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct IssueComment {
    pub id: i64,
    pub message: String,
    pub user: Option<OverseerrUser>,
}

/// An issue as the routes answer it (server/entity/Issue.ts; `media`, `createdBy` and
/// `comments` are eager relations).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Issue {
    pub id: i64,
    pub issue_type: i64,
    pub status: i64,
    /// 0 when not about one season (the column's default).
    pub problem_season: i64,
    pub problem_episode: i64,
    pub media: Option<RequestMedia>,
    pub created_by: Option<OverseerrUser>,
    pub comments: Vec<IssueComment>,
}

impl Issue {
    pub fn issue_type(&self) -> Option<IssueType> {
        IssueType::from_number(self.issue_type)
    }

    pub fn status(&self) -> Option<IssueStatus> {
        IssueStatus::from_number(self.status)
    }

    /// The first comment, which is the report's message.
    pub fn first_message(&self) -> Option<&str> {
        self.comments
            .iter()
            .min_by_key(|c| c.id)
            .map(|c| c.message.as_str())
    }
}

/// What `POST /issue` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueOutcome {
    Created(Box<Issue>),
    /// 404: Seerr has no media with that id.
    UnknownMedia,
    /// 403: the user may not report issues (or the key/user was refused).
    Refused {
        message: String,
    },
}

/// What a comment or status change on an existing issue did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueChange {
    /// Done: the issue as Seerr answers it afterwards.
    Done(Box<Issue>),
    /// Seerr has no such issue.
    NotFound,
    /// 401/403: the acting account may not do this (server/routes/issue.ts and
    /// issueComment.ts answer 401 for a status change and 403 for a comment on someone else's
    /// issue without `MANAGE_ISSUES`; the permission guard answers 403).
    Refused { message: String },
}

/// Reads the answer of a comment or status change.
fn change_from(response: Response<Body>) -> Result<IssueChange, UpstreamFailure> {
    match response.status().as_u16() {
        401 | 403 => Ok(IssueChange::Refused {
            message: error_message(response).0,
        }),
        _ => Ok(match optional_issue(response)? {
            Some(issue) => IssueChange::Done(Box::new(issue)),
            None => IssueChange::NotFound,
        }),
    }
}

/// The issue from a 2xx answer; one without an id is not an issue.
fn issue_from(response: Response<Body>) -> Result<Issue, UpstreamFailure> {
    let issue: Issue = read_json(expect_success(response)?)?;
    if issue.id <= 0 {
        return Err(UpstreamFailure::Decode("issue without id".into()));
    }
    Ok(issue)
}

/// `None` for Seerr's "Issue not found." (a 500 from the route's catch, or a 404), else the
/// issue.
fn optional_issue(response: Response<Body>) -> Result<Option<Issue>, UpstreamFailure> {
    match response.status().as_u16() {
        404 => Ok(None),
        500 => {
            let (message, _) = error_message(response);
            if message.to_ascii_lowercase().contains("issue not found") {
                Ok(None)
            } else {
                Err(super::api::server_error(&message))
            }
        }
        _ => issue_from(response).map(Some),
    }
}

impl Overseerr {
    /// `POST /api/v1/issue` as `as_user` (`X-API-User`; without it, the API key's admin).
    /// `season`/`episode` 0 mean "not about one" (Seerr's default). Never retried.
    pub async fn create_issue(
        &self,
        as_user: Option<i64>,
        media_id: i64,
        issue_type: IssueType,
        message: &str,
        season: u32,
        episode: u32,
    ) -> AppResult<IssueOutcome> {
        let body = json!({
            "issueType": issue_type.number(),
            "message": message,
            "mediaId": media_id,
            "problemSeason": season,
            "problemEpisode": episode,
        });
        let mut request = self.request(Method::Post, "/issue").json(&body)?;
        if let Some(user) = as_user {
            request = request.header("X-API-User", user.to_string());
        }
        self.upstream()
            .send(request, |response| match response.status().as_u16() {
                404 => Ok(IssueOutcome::UnknownMedia),
                403 => Ok(IssueOutcome::Refused {
                    message: error_message(response).0,
                }),
                _ => issue_from(response).map(|i| IssueOutcome::Created(Box::new(i))),
            })
            .await
    }

    /// `GET /api/v1/issue/{id}` (as the API key's admin); `None` when Seerr has no such issue.
    pub async fn get_issue(&self, id: i64) -> AppResult<Option<Issue>> {
        let request = self.request(Method::Get, &format!("/issue/{id}"));
        self.upstream().send(request, optional_issue).await
    }

    /// `POST /api/v1/issue/{id}/comment` as `as_user`.
    pub async fn comment_issue(
        &self,
        as_user: Option<i64>,
        id: i64,
        message: &str,
    ) -> AppResult<IssueChange> {
        let mut request = self
            .request(Method::Post, &format!("/issue/{id}/comment"))
            .json(&json!({ "message": message }))?;
        if let Some(user) = as_user {
            request = request.header("X-API-User", user.to_string());
        }
        self.upstream().send(request, change_from).await
    }

    /// `POST /api/v1/issue/{id}/{resolved|open}` as `as_user`.
    pub async fn set_issue_status(
        &self,
        as_user: Option<i64>,
        id: i64,
        status: IssueStatus,
    ) -> AppResult<IssueChange> {
        let mut request = self.request(Method::Post, &format!("/issue/{id}/{}", status.as_str()));
        if let Some(user) = as_user {
            request = request.header("X-API-User", user.to_string());
        }
        self.upstream().send(request, change_from).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_types_read_names_keys_and_numbers() {
        assert_eq!(IssueType::parse("VIDEO"), Some(IssueType::Video));
        assert_eq!(IssueType::parse("subtitles"), Some(IssueType::Subtitles));
        assert_eq!(IssueType::parse("3"), Some(IssueType::Subtitles));
        assert_eq!(IssueType::parse(" OTHER "), Some(IssueType::Other));
        assert_eq!(IssueType::parse("Subtitle"), None);
        assert_eq!(IssueType::parse("5"), None);
        for t in IssueType::ALL {
            assert_eq!(IssueType::from_number(t.number()), Some(t));
        }
        assert_eq!(IssueStatus::from_number(2), Some(IssueStatus::Resolved));
        assert_eq!(IssueStatus::from_number(0), None);
    }
}
