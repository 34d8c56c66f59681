//! Steering the fake Overseerr's media state from a test or the demo: the catalogue, users,
//! auto-approve and quotas, request and media statuses at run time, and firing a webhook
//! notification at MediaNest the way Overseerr's webhook agent does (UPSTREAMS.md 2.7).

use std::time::Duration;

use serde_json::{Value, json};

use super::library::{FakeOverseerrUser, FakeRequest, FakeTitle};
use super::{FakeOverseerr, SimState};
use crate::integrations::overseerr::{
    MediaRequestStatus, MediaStatus, MediaType, NotificationType,
};

/// How long [`FakeOverseerr::fire_webhook`] waits for MediaNest to answer.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// The spelling of a webhook body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookTemplate {
    /// Overseerr's default template: `notification_type`, `media_type`, `request_id`,
    /// `requestedBy_email`, every value a string (`"tmdbId": "603"`, missing ones `""`).
    Default,
    /// A customised camelCase template (`notificationType`, `mediaType`, `requestId`,
    /// `requestedByEmail`) whose ids are JSON numbers and missing values `null`.
    CamelCase,
}

/// A webhook notification to send (see [`FakeOverseerr::fire_webhook`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeNotification {
    pub notification_type: NotificationType,
    /// The request it is about; `None` (or an unknown id) leaves `media` and `request` `null`.
    pub request_id: Option<i64>,
    pub template: WebhookTemplate,
}

impl FakeNotification {
    /// A notification about request `request_id` in the default template.
    pub fn about(notification_type: NotificationType, request_id: i64) -> Self {
        Self {
            notification_type,
            request_id: Some(request_id),
            template: WebhookTemplate::Default,
        }
    }

    /// Overseerr's test notification ("Test" in its settings) in the default template.
    pub fn test() -> Self {
        Self {
            notification_type: NotificationType::TestNotification,
            request_id: None,
            template: WebhookTemplate::Default,
        }
    }

    /// The same notification in `template`.
    pub fn in_template(mut self, template: WebhookTemplate) -> Self {
        self.template = template;
        self
    }
}

impl FakeOverseerr {
    /// Replaces the catalogue (what search and the details routes know).
    pub fn set_catalogue(&self, titles: Vec<FakeTitle>) {
        self.shared.lock().library.catalogue = titles;
    }

    /// Adds a title, replacing one with the same type and TMDB id.
    pub fn add_title(&self, title: FakeTitle) {
        let mut state = self.shared.lock();
        let catalogue = &mut state.library.catalogue;
        catalogue.retain(|t| !(t.media_type == title.media_type && t.tmdb_id == title.tmdb_id));
        catalogue.push(title);
    }

    /// The catalogue.
    pub fn titles(&self) -> Vec<FakeTitle> {
        self.shared.lock().library.catalogue.clone()
    }

    /// Adds a person search can return (MediaNest skips people).
    pub fn add_person(&self, id: i64, name: &str) {
        self.shared
            .lock()
            .library
            .people
            .push((id, name.to_owned()));
    }

    /// Results per search page (20, TMDB's, until told otherwise).
    pub fn set_search_page_size(&self, size: usize) {
        self.shared.lock().library.search_page_size = size.max(1);
    }

    /// The latest search `query` as it arrived on the wire (still percent-encoded) and as
    /// decoded; only queries that passed the encoding check count.
    pub fn last_search_query(&self) -> Option<(String, String)> {
        self.shared.lock().library.last_search.clone()
    }

    /// Adds a user, replacing one with the same id. User 1 is the admin the API key acts as.
    pub fn add_user(&self, user: FakeOverseerrUser) {
        let mut state = self.shared.lock();
        let users = &mut state.library.users;
        users.retain(|u| u.id != user.id);
        users.push(user);
        users.sort_by_key(|u| u.id);
    }

    /// The users, by id.
    pub fn users(&self) -> Vec<FakeOverseerrUser> {
        self.shared.lock().library.users.clone()
    }

    /// Sets a user's permission bits; false when there is no such user.
    pub fn set_permissions(&self, user_id: i64, permissions: i64) -> bool {
        let mut state = self.shared.lock();
        match state.library.user_mut(user_id) {
            Some(user) => {
                user.permissions = permissions;
                true
            }
            None => false,
        }
    }

    /// Sets a user's total movie and series request limits (`None`: unlimited); false when
    /// there is no such user. Over the limit, `POST /request` answers 403 "... Quota exceeded.".
    pub fn set_quota(&self, user_id: i64, movies: Option<u32>, series: Option<u32>) -> bool {
        let mut state = self.shared.lock();
        match state.library.user_mut(user_id) {
            Some(user) => {
                user.movie_quota = movies;
                user.tv_quota = series;
                true
            }
            None => false,
        }
    }

    /// When on, every new request is approved at once, whoever makes it. Off (the default),
    /// only admins' requests (so every request made with the bare API key) and those of users
    /// with an AUTO_APPROVE permission are.
    pub fn set_auto_approve(&self, on: bool) {
        self.shared.lock().library.auto_approve = on;
    }

    /// The header `X-API-User` of the latest request, `None` when it had none.
    pub fn last_api_user(&self) -> Option<String> {
        self.shared.lock().last_api_user.clone()
    }

    /// A request as the fake holds it.
    pub fn request(&self, id: i64) -> Option<FakeRequest> {
        self.shared.lock().library.request(id).cloned()
    }

    /// Sets a request's status (any number, e.g. Seerr's `Completed`); false when unknown.
    pub fn set_request_status(&self, id: i64, status: MediaRequestStatus) -> bool {
        self.shared.lock().library.set_request_status(id, status)
    }

    /// Sets a title's media status (creating Overseerr's media row if needed).
    pub fn set_media_status(&self, media_type: MediaType, tmdb_id: i64, status: MediaStatus) {
        self.shared
            .lock()
            .library
            .set_media_status(media_type, tmdb_id, status);
    }

    /// Marks a title available, as a Plex scan would (a show: every numbered season).
    pub fn set_media_available(&self, media_type: MediaType, tmdb_id: i64) {
        self.set_media_status(media_type, tmdb_id, MediaStatus::Available);
    }

    /// A request made on Seerr itself (its own web app) by Seerr user `user_id`, as
    /// `POST /api/v1/request` makes it; the new request's id, or `None` when refused.
    pub fn request_on_seerr(
        &self,
        user_id: i64,
        media_type: MediaType,
        tmdb_id: i64,
        seasons: Option<Vec<u32>>,
    ) -> Option<i64> {
        let (status, body) = self.shared.lock().library.create(
            user_id,
            super::library::NewRequest {
                media_type,
                media_id: tmdb_id,
                seasons,
                is4k: false,
                user_id: None,
            },
        );
        (status == 201).then(|| body.and_then(|b| b["id"].as_i64()))?
    }

    /// The Plex server Seerr's `mediaUrl` points at (`settings.plex.machineId`) and its web app
    /// (`webAppUrl`; `None` for Seerr's default, `https://app.plex.tv/desktop`).
    pub fn set_plex_server(&self, machine_id: &str, web_app_url: Option<&str>) {
        let mut shared = self.shared.lock();
        shared.library.plex_machine_id = machine_id.to_owned();
        shared.library.plex_web_app_url = web_app_url.map(str::to_owned);
    }

    /// Sets the Plex `ratingKey` of a title, as Seerr's Plex scan stores it.
    pub fn set_rating_key(&self, media_type: MediaType, tmdb_id: i64, key: &str) {
        self.shared
            .lock()
            .library
            .set_rating_key(media_type, tmdb_id, key);
    }

    /// The media status of a title (`Unknown` when never requested).
    pub fn media_status(&self, media_type: MediaType, tmdb_id: i64) -> MediaStatus {
        self.shared
            .lock()
            .library
            .media_status(media_type, tmdb_id, false)
    }

    /// Sets one season's availability; the show becomes partially available, or available
    /// once every numbered season is.
    pub fn set_season_status(&self, tmdb_id: i64, season: u32, status: MediaStatus) {
        self.shared
            .lock()
            .library
            .set_season_status(tmdb_id, season, status);
    }

    /// The body [`FakeOverseerr::fire_webhook`] would send for `notification`.
    pub fn webhook_payload(&self, notification: &FakeNotification) -> Value {
        payload(&self.shared.lock(), notification)
    }

    /// Where the demo controls (`POST /demo/requests/{id}/{action}`) send webhooks, and the
    /// `Authorization` value they carry.
    pub fn set_webhook_target(&self, url: &str, authorization: Option<&str>) {
        self.shared.lock().webhook = Some((url.to_owned(), authorization.map(str::to_owned)));
    }

    /// With `Some(kind)`, every new request is followed by a `kind` notification about it,
    /// sent to the [`Self::set_webhook_target`] and answered by MediaNest *before* the create
    /// call gets its answer, as when the webhook agent, run from the request's subscribers
    /// (server/subscriber/MediaRequestSubscriber.ts in seerr-team/seerr), wins the race with
    /// the route's answer. `MEDIA_APPROVED` also approves the request first (an admin who was
    /// quicker than the network). `ISSUE_CREATED` does the same for every new issue
    /// (server/subscriber/IssueSubscriber.ts). `None` turns it off.
    pub fn set_webhook_on_create(&self, kind: Option<NotificationType>) {
        self.shared.lock().hook_on_create = kind;
    }

    /// POSTs `notification` to `url` (MediaNest's `/api/v1/webhooks/overseerr`) as Overseerr's
    /// webhook agent does: JSON, one attempt, `Authorization: <authorization>` verbatim when
    /// given. Returns the answer's status, or the transport error.
    pub async fn fire_webhook(
        &self,
        url: &str,
        authorization: Option<&str>,
        notification: &FakeNotification,
    ) -> Result<u16, String> {
        let body =
            serde_json::to_vec(&self.webhook_payload(notification)).map_err(|e| e.to_string())?;
        post_webhook(url, authorization, body).await
    }
}

/// The body Overseerr's webhook agent sends for `notification`, in the state `state` is in.
pub(super) fn payload(state: &SimState, notification: &FakeNotification) -> Value {
    let library = &state.library;
    let request = notification.request_id.and_then(|id| library.request(id));
    let camel = notification.template == WebhookTemplate::CamelCase;
    let kind = notification.notification_type.as_str();
    if notification.notification_type == NotificationType::TestNotification || request.is_none() {
        let test = notification.notification_type == NotificationType::TestNotification;
        let (subject, message) = if test {
            (
                "Test Notification",
                "Check check, 1, 2, 3. Are we coming in clear?",
            )
        } else {
            ("", "")
        };
        let type_key = if camel {
            "notificationType"
        } else {
            "notification_type"
        };
        return json!({
            type_key: kind, "event": "", "subject": subject, "message": message,
            "image": "", "media": null, "request": null, "issue": null, "comment": null,
            "extra": [],
        });
    }
    let Some(request) = request else {
        return Value::Null;
    };
    let title = library.title(request.media_type, request.tmdb_id);
    let user = library.user(request.requested_by);
    let media_status = |is4k| {
        library
            .media_status(request.media_type, request.tmdb_id, is4k)
            .name()
            .unwrap_or("UNKNOWN")
    };
    let text = |s: Option<&str>| s.unwrap_or_default().to_owned();
    let email = text(user.and_then(|u| u.email.as_deref()));
    // `requestedBy_username` is the display name, and no variable carries the 4K flag (the
    // KeyMap of server/lib/notifications/agents/webhook.ts, seerr-team/seerr and sct/overseerr):
    // 4K shows only in `event` ("4K Movie Request Approved", see `event_name`).
    let username = text(user.map(|u| u.display_name.as_str()));
    let avatar = user
        .map(|u| format!("https://plex.tv/users/{:016x}/avatar?c=1712345678", u.id))
        .unwrap_or_default();
    let tvdb_id = title.and_then(|t| t.tvdb_id);
    let seasons = request
        .seasons
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let extra = if request.media_type == MediaType::Tv {
        json!([{"name": "Requested Seasons", "value": seasons}])
    } else {
        json!([])
    };
    let subject = title.map(FakeTitle::subject).unwrap_or_default();
    let message = title.map(|t| t.overview.clone()).unwrap_or_default();
    let image = title
        .and_then(|t| t.poster_path.as_deref())
        .map(|p| format!("https://image.tmdb.org/t/p/w600_and_h900_bestv2{p}"))
        .unwrap_or_default();
    let event = event_name(&notification.notification_type, request);
    if camel {
        json!({
            "notificationType": kind, "event": event, "subject": subject,
            "message": message, "image": image,
            "media": {
                "mediaType": request.media_type.as_str(), "tmdbId": request.tmdb_id,
                "tvdbId": tvdb_id, "status": media_status(false),
                "status4k": media_status(true),
            },
            "request": {
                "requestId": request.id, "requestedByEmail": email,
                "requestedByUsername": username, "requestedByAvatar": avatar,
            },
            "issue": null, "comment": null, "extra": extra,
        })
    } else {
        json!({
            "notification_type": kind, "event": event, "subject": subject,
            "message": message, "image": image,
            "media": {
                "media_type": request.media_type.as_str(),
                "tmdbId": request.tmdb_id.to_string(),
                "tvdbId": tvdb_id.map(|id| id.to_string()).unwrap_or_default(),
                "status": media_status(false), "status4k": media_status(true),
            },
            "request": {
                "request_id": request.id.to_string(), "requestedBy_email": email,
                "requestedBy_username": username, "requestedBy_avatar": avatar,
                "requestedBy_settings_discordId": "",
                "requestedBy_settings_telegramChatId": "",
            },
            "issue": null, "comment": null, "extra": extra,
        })
    }
}

/// One webhook POST, as Overseerr's agent makes it.
pub(super) async fn post_webhook(
    url: &str,
    authorization: Option<&str>,
    body: Vec<u8>,
) -> Result<u16, String> {
    let url = url.to_owned();
    let authorization = authorization.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(WEBHOOK_TIMEOUT))
            .build();
        let agent = ureq::Agent::new_with_config(config);
        let mut request = agent
            .post(&url)
            .header("Content-Type", "application/json")
            .header("User-Agent", "axios/1.6.7");
        if let Some(value) = &authorization {
            request = request.header("Authorization", value.as_str());
        }
        request
            .send(body.as_slice())
            .map(|response| response.status().as_u16())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Overseerr's `event` text for a notification about `request`, with the `4K ` prefix of a 4K
/// request (server/subscriber/MediaRequestSubscriber.ts, seerr-team/seerr and sct/overseerr).
fn event_name(kind: &NotificationType, request: &FakeRequest) -> String {
    let what = match request.media_type {
        MediaType::Movie => "Movie",
        MediaType::Tv => "Series",
    };
    let four_k = if request.is4k { "4K " } else { "" };
    match kind {
        NotificationType::MediaPending => format!("New {four_k}{what} Request"),
        NotificationType::MediaApproved => format!("{four_k}{what} Request Approved"),
        NotificationType::MediaAutoApproved => {
            format!("{four_k}{what} Request Automatically Approved")
        }
        NotificationType::MediaAvailable => format!("{four_k}{what} Request Now Available"),
        NotificationType::MediaDeclined => format!("{four_k}{what} Request Declined"),
        NotificationType::MediaFailed => format!("{four_k}{what} Request Failed"),
        _ => String::new(),
    }
}
