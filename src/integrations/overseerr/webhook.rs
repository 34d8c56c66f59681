//! Reading Overseerr's webhook notifications (UPSTREAMS.md 2.7) into a [`WebhookEvent`].
//!
//! Admins edit the template, so nothing about the body is certain: keys come in the default
//! template's spelling (`notification_type`, `media_type`, `request_id`,
//! `requestedBy_email`) or camelCase (`notificationType`, `mediaType`, `requestId`,
//! `requestedByEmail`), values are usually strings (every `{{var}}` is substituted as text)
//! but may be numbers, `""` or `null`, and `media` / `request` are `null` for a test. Keys are
//! therefore compared with case, `_` and `-` ignored, and every field is optional; only a body
//! that is not a JSON object is refused.
//!
//! This module only reads; the endpoint checks the `Authorization` header and applies the event.

use serde_json::{Map, Value};

use super::model::{MediaStatus, MediaType, RequestState, boolean, int, text};

/// Why a webhook body could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The body is not JSON.
    #[error("the webhook body is not JSON")]
    NotJson,
    /// The body is JSON but not an object.
    #[error("the webhook body is not a JSON object")]
    NotAnObject,
}

/// `notification_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationType {
    MediaPending,
    MediaApproved,
    MediaAutoApproved,
    MediaAvailable,
    MediaDeclined,
    MediaFailed,
    TestNotification,
    /// The issue notifications (`Notification.ISSUE_*` in server/lib/notifications/index.ts,
    /// sent from server/subscriber/IssueSubscriber.ts and IssueCommentSubscriber.ts).
    IssueCreated,
    IssueComment,
    IssueResolved,
    IssueReopened,
    /// Anything else (`MEDIA_AUTO_REQUESTED`, a missing value), kept verbatim.
    Other(String),
}

impl NotificationType {
    /// Reads Overseerr's name (case and surrounding spaces ignored).
    pub fn parse(name: &str) -> Self {
        match name.trim().to_ascii_uppercase().as_str() {
            "MEDIA_PENDING" => Self::MediaPending,
            "MEDIA_APPROVED" => Self::MediaApproved,
            "MEDIA_AUTO_APPROVED" => Self::MediaAutoApproved,
            "MEDIA_AVAILABLE" => Self::MediaAvailable,
            "MEDIA_DECLINED" => Self::MediaDeclined,
            "MEDIA_FAILED" => Self::MediaFailed,
            "TEST_NOTIFICATION" => Self::TestNotification,
            "ISSUE_CREATED" => Self::IssueCreated,
            "ISSUE_COMMENT" => Self::IssueComment,
            "ISSUE_RESOLVED" => Self::IssueResolved,
            "ISSUE_REOPENED" => Self::IssueReopened,
            _ => Self::Other(name.trim().to_owned()),
        }
    }

    /// Overseerr's name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::MediaPending => "MEDIA_PENDING",
            Self::MediaApproved => "MEDIA_APPROVED",
            Self::MediaAutoApproved => "MEDIA_AUTO_APPROVED",
            Self::MediaAvailable => "MEDIA_AVAILABLE",
            Self::MediaDeclined => "MEDIA_DECLINED",
            Self::MediaFailed => "MEDIA_FAILED",
            Self::TestNotification => "TEST_NOTIFICATION",
            Self::IssueCreated => "ISSUE_CREATED",
            Self::IssueComment => "ISSUE_COMMENT",
            Self::IssueResolved => "ISSUE_RESOLVED",
            Self::IssueReopened => "ISSUE_REOPENED",
            Self::Other(name) => name,
        }
    }

    /// The status a request takes on this notification (SPEC section 6, Webhook); `None` for a
    /// test or an unknown type, which change nothing.
    pub fn request_state(&self) -> Option<RequestState> {
        match self {
            Self::MediaPending => Some(RequestState::Pending),
            Self::MediaApproved | Self::MediaAutoApproved => Some(RequestState::Approved),
            Self::MediaAvailable => Some(RequestState::Available),
            Self::MediaDeclined => Some(RequestState::Declined),
            Self::MediaFailed => Some(RequestState::Failed),
            Self::TestNotification
            | Self::IssueCreated
            | Self::IssueComment
            | Self::IssueResolved
            | Self::IssueReopened
            | Self::Other(_) => None,
        }
    }

    /// Whether this is one of the four issue notifications.
    pub fn is_issue(&self) -> bool {
        matches!(
            self,
            Self::IssueCreated | Self::IssueComment | Self::IssueResolved | Self::IssueReopened
        )
    }
}

/// The `{{issue}}` and `{{comment}}` parts of an issue notification, from the KeyMap of
/// server/lib/notifications/agents/webhook.ts (seerr-team/seerr; the same in sct/overseerr):
/// `issue_id`, `issue_type` (the enum key: `VIDEO`, `AUDIO`, `SUBTITLES`, `OTHER`),
/// `issue_status` (`OPEN`, `RESOLVED`), `reportedBy_email` / `_username` (the display name),
/// `comment_message`, `commentedBy_email` / `_username`. The agent's `message` is the issue's
/// *first* comment (the report) and `extra` carries "Affected Season" / "Affected Episode"
/// (server/subscriber/IssueSubscriber.ts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssueInfo {
    pub issue_id: Option<i64>,
    /// `VIDEO`, `AUDIO`, ... as sent.
    pub issue_type: Option<String>,
    /// `OPEN` or `RESOLVED` as sent.
    pub issue_status: Option<String>,
    pub reported_by_email: Option<String>,
    pub reported_by_username: Option<String>,
    pub comment_message: Option<String>,
    pub commented_by_email: Option<String>,
    pub commented_by_username: Option<String>,
    pub affected_season: Option<u32>,
    pub affected_episode: Option<u32>,
}

/// Who made the request, as the template tells it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requester {
    pub email: Option<String>,
    /// `requestedBy_username`, which is the user's *display name*
    /// (`request.requestedBy.displayName` in the KeyMap of
    /// server/lib/notifications/agents/webhook.ts, seerr-team/seerr and sct/overseerr): a label
    /// to show, never an identity to match.
    pub username: Option<String>,
    pub avatar: Option<String>,
}

/// One webhook notification, every field but the type optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    pub notification_type: NotificationType,
    /// e.g. `New Movie Request`.
    pub event: Option<String>,
    /// e.g. `Game of Thrones (2011)`.
    pub subject: Option<String>,
    pub message: Option<String>,
    pub image: Option<String>,
    pub media_type: Option<MediaType>,
    pub tmdb_id: Option<i64>,
    pub tvdb_id: Option<i64>,
    /// `media.status`, from its name (`AVAILABLE`) or number.
    pub media_status: Option<MediaStatus>,
    pub media_status4k: Option<MediaStatus>,
    /// Overseerr's request id (`request.request_id`).
    pub request_id: Option<i64>,
    /// Only from a custom template that adds it: the agent has no 4K variable (see
    /// [`WebhookEvent::is_4k`]).
    pub is4k: Option<bool>,
    pub requested_by: Option<Requester>,
    /// A decline reason or comment, when a custom template carries one (`reason`,
    /// `decline_reason`, `comment_message`, or `comment.comment_message`).
    pub reason: Option<String>,
    /// The season numbers from `extra`'s "Requested Seasons" (TV).
    pub requested_seasons: Vec<u32>,
    /// The issue and comment of an `ISSUE_*` notification (`None` on other types).
    pub issue: Option<IssueInfo>,
}

impl WebhookEvent {
    /// Whether the notification is about a 4K request. The webhook agent has no 4K template
    /// variable (the KeyMap of server/lib/notifications/agents/webhook.ts, both upstreams);
    /// the `event` text says it instead ("4K Movie Request Now Available", built in
    /// server/subscriber/MediaRequestSubscriber.ts). A custom `is4k` field wins; an event text
    /// about a request without "4K" is a non-4K one; `None` when neither tells.
    pub fn is_4k(&self) -> Option<bool> {
        if self.is4k.is_some() {
            return self.is4k;
        }
        let event = self.event.as_deref()?;
        if event.contains("4K") {
            Some(true)
        } else if event.to_ascii_lowercase().contains("request") {
            Some(false)
        } else {
            None
        }
    }

    /// Reads a webhook body. Fails only when it is not a JSON object.
    pub fn parse(bytes: &[u8]) -> Result<Self, WebhookError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|_| WebhookError::NotJson)?;
        let Value::Object(root) = value else {
            return Err(WebhookError::NotAnObject);
        };
        let media = object(&root, "media");
        let request = object(&root, "request");
        let comment = object(&root, "comment");
        // Flattened custom templates put `{{media_tmdbid}}` and friends at the top level.
        let media_field = |names: &[&str], flat: &[&str]| {
            media
                .and_then(|m| find(m, names))
                .or_else(|| find(&root, flat))
        };
        let request_field = |names: &[&str], flat: &[&str]| {
            request
                .and_then(|r| find(r, names))
                .or_else(|| find(&root, flat))
        };
        // Some templates nest the requester as an object (`requestedBy: {email, ...}`).
        let requester_object = request.and_then(|r| object(r, "requestedby"));
        let requester_field = |name: &str, alternatives: &[&str]| {
            let key = format!("requestedby{name}");
            request_field(&[key.as_str()], &[key.as_str()])
                .and_then(text)
                .or_else(|| {
                    requester_object
                        .and_then(|o| find(o, alternatives))
                        .and_then(text)
                })
        };
        let requested_by = Requester {
            email: requester_field("email", &["email"]),
            username: requester_field("username", &["username", "displayname", "plexusername"]),
            avatar: requester_field("avatar", &["avatar"]),
        };
        let reason = find(&root, &["reason", "declinereason", "commentmessage"])
            .or_else(|| request.and_then(|r| find(r, &["reason", "declinereason"])))
            .or_else(|| comment.and_then(|c| find(c, &["commentmessage", "message"])))
            .and_then(text);

        Ok(Self {
            notification_type: NotificationType::parse(
                &find(&root, &["notificationtype"])
                    .and_then(text)
                    .unwrap_or_default(),
            ),
            event: find(&root, &["event"]).and_then(text),
            subject: find(&root, &["subject"]).and_then(text),
            message: find(&root, &["message"]).and_then(text),
            image: find(&root, &["image"]).and_then(text),
            media_type: media_field(&["mediatype", "type"], &["mediatype", "mediamediatype"])
                .and_then(Value::as_str)
                .and_then(MediaType::parse),
            tmdb_id: media_field(&["tmdbid"], &["tmdbid", "mediatmdbid"])
                .and_then(int)
                .filter(|id| *id > 0),
            tvdb_id: media_field(&["tvdbid"], &["tvdbid", "mediatvdbid"])
                .and_then(int)
                .filter(|id| *id > 0),
            media_status: media_field(&["status"], &["mediastatus"])
                .and_then(MediaStatus::from_value),
            media_status4k: media_field(&["status4k"], &["mediastatus4k"])
                .and_then(MediaStatus::from_value),
            request_id: request_field(&["requestid", "id"], &["requestid"])
                .and_then(int)
                .filter(|id| *id > 0),
            is4k: request_field(&["is4k"], &["is4k", "requestis4k"]).and_then(boolean),
            requested_by: (requested_by != Requester::default()).then_some(requested_by),
            reason,
            requested_seasons: requested_seasons(&root),
            issue: issue_info(&root),
        })
    }
}

/// `name` lowercased without `_` and `-`, so `requestedBy_email`, `requestedByEmail` and
/// `requested_by_email` compare equal.
fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The first of `names` (normalized) present with a usable value: not `null`, not `""`.
fn find<'a>(map: &'a Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|name| {
        let name = normalize(name);
        map.iter()
            .find(|(key, value)| {
                normalize(key) == name
                    && !value.is_null()
                    && value.as_str().is_none_or(|s| !s.trim().is_empty())
            })
            .map(|(_, value)| value)
    })
}

fn object<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Map<String, Value>> {
    find(map, &[name]).and_then(Value::as_object)
}

/// The `{{issue}}` / `{{comment}}` objects (or their keys flattened to the top level by a
/// custom template); `None` when neither carries anything.
fn issue_info(root: &Map<String, Value>) -> Option<IssueInfo> {
    let issue = object(root, "issue");
    let comment = object(root, "comment");
    let issue_field = |names: &[&str]| {
        issue
            .and_then(|i| find(i, names))
            .or_else(|| find(root, names))
            .and_then(text)
    };
    let comment_field = |names: &[&str]| {
        comment
            .and_then(|c| find(c, names))
            .or_else(|| find(root, names))
            .and_then(text)
    };
    let info = IssueInfo {
        issue_id: issue
            .and_then(|i| find(i, &["issueid", "id"]))
            .or_else(|| find(root, &["issueid"]))
            .and_then(int)
            .filter(|id| *id > 0),
        issue_type: issue_field(&["issuetype"]),
        issue_status: issue_field(&["issuestatus"]),
        reported_by_email: issue_field(&["reportedbyemail"]),
        reported_by_username: issue_field(&["reportedbyusername"]),
        comment_message: comment_field(&["commentmessage"]),
        commented_by_email: comment_field(&["commentedbyemail"]),
        commented_by_username: comment_field(&["commentedbyusername"]),
        affected_season: extra_number(root, "affectedseason"),
        affected_episode: extra_number(root, "affectedepisode"),
    };
    (info != IssueInfo::default()).then_some(info)
}

/// The number of `extra`'s item named `name` (normalized, spaces ignored).
fn extra_number(root: &Map<String, Value>, name: &str) -> Option<u32> {
    let Some(Value::Array(extra)) = find(root, &["extra"]) else {
        return None;
    };
    extra
        .iter()
        .filter_map(Value::as_object)
        .find(|item| {
            find(item, &["name"])
                .and_then(Value::as_str)
                .is_some_and(|n| normalize(n).replace(' ', "") == name)
        })
        .and_then(|item| find(item, &["value"]))
        .and_then(int)
        .and_then(|n| u32::try_from(n).ok())
}

/// Season numbers from `extra: [{"name": "Requested Seasons", "value": "1, 2"}]`.
fn requested_seasons(root: &Map<String, Value>) -> Vec<u32> {
    let Some(Value::Array(extra)) = find(root, &["extra"]) else {
        return Vec::new();
    };
    extra
        .iter()
        .filter_map(Value::as_object)
        .filter(|item| {
            find(item, &["name"])
                .and_then(Value::as_str)
                .is_some_and(|n| normalize(n).replace(' ', "") == "requestedseasons")
        })
        .filter_map(|item| find(item, &["value"]).and_then(text))
        .flat_map(|value| {
            value
                .split(',')
                .filter_map(|s| s.trim().parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// What the webhook agent makes of a `"{{key}}"` template value filled with `value`: the agent
/// fills templates with `String.prototype.replace(string, string)` (`parseKeys` in
/// server/lib/notifications/agents/webhook.ts, seerr-team/seerr and sct/overseerr), which reads
/// `$` patterns in the replacement: `$$` is `$`, `` $& `` the placeholder itself, `` $` `` and
/// `$'` the template's text before and after it (nothing, for a value that is only the
/// placeholder). With no capture groups every other `$` stays as it is.
pub fn template_filled(key: &str, value: &str) -> String {
    let placeholder = format!("{{{{{key}}}}}");
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('$') => {
                chars.next();
                out.push('$');
            }
            Some('&') => {
                chars.next();
                out.push_str(&placeholder);
            }
            Some('`' | '\'') => {
                chars.next();
            }
            _ => out.push('$'),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn template_filling_rewrites_dollar_patterns_as_javascript_does() {
        let f = |v| template_filled("comment_message", v);
        assert_eq!(f("plain text"), "plain text");
        assert_eq!(f("costs $$5"), "costs $5");
        assert_eq!(f("a $& b"), "a {{comment_message}} b");
        assert_eq!(f("x$`y$'z"), "xyz");
        assert_eq!(f("$1 and $ and $"), "$1 and $ and $");
    }

    /// The default template as UPSTREAMS.md 2.7 shows it rendered.
    const DEFAULT_TEMPLATE: &str = r#"{
      "notification_type": "MEDIA_PENDING",
      "event": "New Series Request",
      "subject": "Game of Thrones (2011)",
      "message": "Seven noble families fight for control of the mythical land of Westeros…",
      "image": "https://image.tmdb.org/t/p/w600_and_h900_bestv2/1XS1oqL89opfnbLl8WnZY1O1uJx.jpg",
      "media": {
        "media_type": "tv",
        "tmdbId": "1399",
        "tvdbId": "121361",
        "status": "PENDING",
        "status4k": "UNKNOWN"
      },
      "request": {
        "request_id": "123",
        "requestedBy_email": "alice@example.com",
        "requestedBy_username": "alice",
        "requestedBy_avatar": "https://plex.tv/users/dae343c1f45beb4f/avatar?c=1712345678",
        "requestedBy_settings_discordId": "",
        "requestedBy_settings_telegramChatId": ""
      },
      "issue": null,
      "comment": null,
      "extra": [ { "name": "Requested Seasons", "value": "1, 2" } ]
    }"#;

    const TEST_PAYLOAD: &str = r#"{"notification_type":"TEST_NOTIFICATION","event":"","subject":"Test Notification",
     "message":"Check check, 1, 2, 3. Are we coming in clear?","image":"",
     "media":null,"request":null,"issue":null,"comment":null,"extra":[]}"#;

    fn parse(value: Value) -> WebhookEvent {
        WebhookEvent::parse(value.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn the_default_template_reads_fully() {
        let e = WebhookEvent::parse(DEFAULT_TEMPLATE.as_bytes()).unwrap();
        assert_eq!(e.notification_type, NotificationType::MediaPending);
        assert_eq!(e.event.as_deref(), Some("New Series Request"));
        assert_eq!(e.subject.as_deref(), Some("Game of Thrones (2011)"));
        assert_eq!(e.media_type, Some(MediaType::Tv));
        assert_eq!((e.tmdb_id, e.tvdb_id), (Some(1399), Some(121361)));
        assert_eq!(e.media_status, Some(MediaStatus::Pending));
        assert_eq!(e.media_status4k, Some(MediaStatus::Unknown));
        assert_eq!(e.request_id, Some(123));
        let by = e.requested_by.unwrap();
        assert_eq!(by.email.as_deref(), Some("alice@example.com"));
        assert_eq!(by.username.as_deref(), Some("alice"));
        assert!(by.avatar.unwrap().starts_with("https://plex.tv/users/"));
        assert_eq!(e.requested_seasons, [1, 2]);
        assert_eq!(e.reason, None);
        assert_eq!(e.is4k, None);
        assert_eq!(
            e.notification_type.request_state(),
            Some(RequestState::Pending)
        );
    }

    #[test]
    fn the_test_payload_has_no_media_or_request() {
        let e = WebhookEvent::parse(TEST_PAYLOAD.as_bytes()).unwrap();
        assert_eq!(e.notification_type, NotificationType::TestNotification);
        assert_eq!(e.event, None, "empty strings are absent");
        assert_eq!(e.image, None);
        assert_eq!((e.media_type, e.tmdb_id, e.request_id), (None, None, None));
        assert_eq!(e.requested_by, None);
        assert!(e.requested_seasons.is_empty());
        assert_eq!(e.notification_type.request_state(), None);
    }

    #[test]
    fn camel_case_with_numbers_reads_the_same() {
        let e = parse(json!({
            "notificationType": "MEDIA_AUTO_APPROVED",
            "event": "Movie Request Automatically Approved",
            "subject": "The Matrix (1999)",
            "media": {"mediaType": "movie", "tmdbId": 603, "tvdbId": null, "status": 3, "status4k": "1"},
            "request": {"requestId": 12, "requestedByEmail": "bob@example.com",
                        "requestedByUsername": "bob", "is4k": "false"},
            "extra": []
        }));
        assert_eq!(e.notification_type, NotificationType::MediaAutoApproved);
        assert_eq!(e.media_type, Some(MediaType::Movie));
        assert_eq!((e.tmdb_id, e.tvdb_id), (Some(603), None));
        assert_eq!(e.media_status, Some(MediaStatus::Processing));
        assert_eq!(e.media_status4k, Some(MediaStatus::Unknown));
        assert_eq!(e.request_id, Some(12));
        assert_eq!(e.is4k, Some(false));
        assert_eq!(e.requested_by.unwrap().username.as_deref(), Some("bob"));
        assert_eq!(
            e.notification_type.request_state(),
            Some(RequestState::Approved)
        );
    }

    #[test]
    fn strings_numbers_and_nulls_are_all_accepted_for_ids() {
        for (request_id, expected) in [
            (json!("12"), Some(12)),
            (json!(12), Some(12)),
            (json!(" 12 "), Some(12)),
            (json!(""), None),
            (Value::Null, None),
            (json!("abc"), None),
            (json!(0), None),
        ] {
            let e = parse(json!({
                "notification_type": "MEDIA_APPROVED",
                "request": {"request_id": request_id}
            }));
            assert_eq!(e.request_id, expected, "{request_id:?}");
        }
    }

    #[test]
    fn every_mapped_type_and_unknown_ones() {
        let cases = [
            ("MEDIA_PENDING", Some(RequestState::Pending)),
            ("MEDIA_APPROVED", Some(RequestState::Approved)),
            ("MEDIA_AUTO_APPROVED", Some(RequestState::Approved)),
            ("MEDIA_AVAILABLE", Some(RequestState::Available)),
            ("MEDIA_DECLINED", Some(RequestState::Declined)),
            ("MEDIA_FAILED", Some(RequestState::Failed)),
            ("TEST_NOTIFICATION", None),
            ("ISSUE_CREATED", None),
            ("MEDIA_AUTO_REQUESTED", None),
            ("", None),
        ];
        for (name, state) in cases {
            let e = parse(json!({ "notification_type": name }));
            assert_eq!(e.notification_type.request_state(), state, "{name}");
            assert_eq!(e.notification_type.as_str(), name);
        }
        let lower = parse(json!({"notificationType": "media_available"}));
        assert_eq!(lower.notification_type, NotificationType::MediaAvailable);
        let missing = parse(json!({"subject": "x"}));
        assert_eq!(
            missing.notification_type,
            NotificationType::Other(String::new())
        );
    }

    #[test]
    fn missing_optionals_and_flattened_templates() {
        let e = parse(json!({
            "notification_type": "MEDIA_DECLINED",
            "media_tmdbid": "550",
            "media_type": "movie",
            "request_id": "9",
            "requestedBy_email": "carol@example.com",
            "reason": "Not on this server, sorry"
        }));
        assert_eq!(e.tmdb_id, Some(550));
        assert_eq!(e.media_type, Some(MediaType::Movie));
        assert_eq!(e.request_id, Some(9));
        assert_eq!(
            e.requested_by.unwrap().email.as_deref(),
            Some("carol@example.com")
        );
        assert_eq!(e.reason.as_deref(), Some("Not on this server, sorry"));
        assert_eq!(e.media_status, None);

        let nested = parse(json!({
            "notification_type": "MEDIA_DECLINED",
            "media": {"media_type": "tv", "tmdbId": "1399"},
            "request": {"request_id": "3", "requestedBy": {"email": "d@example.com", "displayName": "Dee"}},
            "comment": {"comment_message": "Already on Netflix"}
        }));
        assert_eq!(nested.reason.as_deref(), Some("Already on Netflix"));
        let by = nested.requested_by.unwrap();
        assert_eq!(by.username.as_deref(), Some("Dee"));
        assert_eq!(by.email.as_deref(), Some("d@example.com"));

        let bare = parse(json!({}));
        assert_eq!(bare.tmdb_id, None);
        assert_eq!(bare.requested_by, None);
    }

    #[test]
    fn odd_values_do_not_fail() {
        let e = parse(json!({
            "notification_type": 5,
            "media": "not an object",
            "request": [1, 2],
            "extra": "nope"
        }));
        assert_eq!(e.notification_type, NotificationType::Other("5".into()));
        assert_eq!(e.tmdb_id, None);
        assert!(e.requested_seasons.is_empty());
        let e = parse(json!({"extra": [{"name": "Requested Seasons", "value": "0, 3, x"}, 7]}));
        assert_eq!(e.requested_seasons, [0, 3]);
    }

    /// The default template (settings/index.ts `jsonPayload`) rendered for ISSUE_COMMENT by
    /// the agent in server/lib/notifications/agents/webhook.ts.
    #[test]
    fn issue_notifications_read_the_issue_and_comment() {
        let e = parse(json!({
            "notification_type": "ISSUE_COMMENT",
            "event": "New Comment on Audio Issue",
            "subject": "The Matrix (1999)",
            "message": "No sound after ten minutes",
            "image": "",
            "media": {"media_type": "tv", "tmdbId": "1399", "tvdbId": "", "status": "AVAILABLE", "status4k": "UNKNOWN"},
            "request": null,
            "issue": {"issue_id": "7", "issue_type": "AUDIO", "issue_status": "OPEN",
                      "reportedBy_email": "alice@example.com", "reportedBy_username": "Alice",
                      "reportedBy_avatar": "", "reportedBy_settings_discordId": "",
                      "reportedBy_settings_telegramChatId": ""},
            "comment": {"comment_message": "Looking into it", "commentedBy_email": "admin@example.com",
                        "commentedBy_username": "Admin", "commentedBy_avatar": ""},
            "extra": [{"name": "Affected Season", "value": "2"}, {"name": "Affected Episode", "value": "5"}]
        }));
        assert_eq!(e.notification_type, NotificationType::IssueComment);
        assert!(e.notification_type.is_issue());
        assert_eq!(e.notification_type.request_state(), None);
        let issue = e.issue.unwrap();
        assert_eq!(issue.issue_id, Some(7));
        assert_eq!(issue.issue_type.as_deref(), Some("AUDIO"));
        assert_eq!(issue.issue_status.as_deref(), Some("OPEN"));
        assert_eq!(
            issue.reported_by_email.as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(issue.comment_message.as_deref(), Some("Looking into it"));
        assert_eq!(issue.commented_by_username.as_deref(), Some("Admin"));
        assert_eq!(
            (issue.affected_season, issue.affected_episode),
            (Some(2), Some(5))
        );
        let resolved = parse(
            json!({"notification_type": "ISSUE_RESOLVED", "issue": {"issue_id": 9}, "comment": null}),
        );
        assert_eq!(resolved.notification_type, NotificationType::IssueResolved);
        assert_eq!(resolved.issue.unwrap().issue_id, Some(9));
        assert_eq!(
            parse(json!({"notification_type": "MEDIA_PENDING"})).issue,
            None
        );
    }

    #[test]
    fn non_objects_are_refused() {
        assert_eq!(WebhookEvent::parse(b"not json"), Err(WebhookError::NotJson));
        assert_eq!(WebhookEvent::parse(b"[]"), Err(WebhookError::NotAnObject));
        assert_eq!(WebhookEvent::parse(b""), Err(WebhookError::NotJson));
    }

    /// Seerr 3.x and Overseerr 1.33 have no 4K template variable; the event text carries it
    /// (server/subscriber/MediaRequestSubscriber.ts, server/lib/notifications/agents/webhook.ts).
    #[test]
    fn four_k_comes_from_the_event_text_or_a_custom_field() {
        let is_4k = |body: &str| WebhookEvent::parse(body.as_bytes()).unwrap().is_4k();
        assert_eq!(
            is_4k(
                r#"{"notification_type":"MEDIA_AVAILABLE","event":"4K Movie Request Now Available"}"#
            ),
            Some(true)
        );
        assert_eq!(
            is_4k(r#"{"notification_type":"MEDIA_APPROVED","event":"Series Request Approved"}"#),
            Some(false)
        );
        assert_eq!(is_4k(r#"{"notification_type":"MEDIA_APPROVED"}"#), None);
        assert_eq!(
            is_4k(
                r#"{"notificationType":"MEDIA_APPROVED","event":"4K Movie Request Approved","request":{"is4k":"false"}}"#
            ),
            Some(false),
            "a custom field wins"
        );
    }
}
