//! The error catalog (SPEC section 4) and [`AppError`], the one type handlers return.
//!
//! [`ErrorCode`] maps each code to its status and the message a person reads, in one `match`.
//! `AppError::into_response` does not write the body: it attaches an [`ErrorReport`] to the
//! response, and the edge middleware (`crate::http`) renders the envelope with the request's
//! correlation id and stores 5xx in `error_logs`. Internal detail goes to the log, never to the
//! client.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Every error a client can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    ValidationError,
    InvalidJson,
    InvalidCursor,
    InvalidYoutubeUrl,
    Unauthorized,
    SessionExpired,
    InvalidCredentials,
    PlexTokenExpired,
    WebhookUnauthorized,
    Forbidden,
    PasswordChangeRequired,
    AccountSuspended,
    CsrfTokenInvalid,
    PlexSignupClosed,
    NotFound,
    PinNotFound,
    MethodNotAllowed,
    RequestTimeout,
    AlreadyRequested,
    DownloadExists,
    LastAdmin,
    Conflict,
    PinExpired,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    QuotaExceeded,
    InternalError,
    UpstreamError,
    ServiceNotConfigured,
    ServiceUnavailable,
    DownloaderUnavailable,
    DatabaseBusy,
    UpstreamTimeout,
}

impl ErrorCode {
    /// Every code, for tests and documentation.
    pub const ALL: [ErrorCode; 34] = [
        Self::ValidationError,
        Self::InvalidJson,
        Self::InvalidCursor,
        Self::InvalidYoutubeUrl,
        Self::Unauthorized,
        Self::SessionExpired,
        Self::InvalidCredentials,
        Self::PlexTokenExpired,
        Self::WebhookUnauthorized,
        Self::Forbidden,
        Self::PasswordChangeRequired,
        Self::AccountSuspended,
        Self::CsrfTokenInvalid,
        Self::PlexSignupClosed,
        Self::NotFound,
        Self::PinNotFound,
        Self::MethodNotAllowed,
        Self::RequestTimeout,
        Self::AlreadyRequested,
        Self::DownloadExists,
        Self::LastAdmin,
        Self::Conflict,
        Self::PinExpired,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::RateLimited,
        Self::QuotaExceeded,
        Self::InternalError,
        Self::UpstreamError,
        Self::ServiceNotConfigured,
        Self::ServiceUnavailable,
        Self::DownloaderUnavailable,
        Self::DatabaseBusy,
        Self::UpstreamTimeout,
    ];

    /// The code, its HTTP status and its message; `{Service}` stands for the service's name.
    pub fn info(self) -> (&'static str, StatusCode, &'static str) {
        use StatusCode as S;
        match self {
            Self::ValidationError => ("VALIDATION_ERROR", S::BAD_REQUEST, "Invalid request data."),
            Self::InvalidJson => (
                "INVALID_JSON",
                S::BAD_REQUEST,
                "The request body is not valid JSON.",
            ),
            Self::InvalidCursor => (
                "INVALID_CURSOR",
                S::BAD_REQUEST,
                "The page cursor is not valid.",
            ),
            Self::InvalidYoutubeUrl => (
                "INVALID_YOUTUBE_URL",
                S::BAD_REQUEST,
                "Please provide a valid YouTube video or playlist URL.",
            ),
            Self::Unauthorized => (
                "UNAUTHORIZED",
                S::UNAUTHORIZED,
                "Please sign in to continue.",
            ),
            Self::SessionExpired => (
                "SESSION_EXPIRED",
                S::UNAUTHORIZED,
                "Your session has expired. Please sign in again.",
            ),
            Self::InvalidCredentials => (
                "INVALID_CREDENTIALS",
                S::UNAUTHORIZED,
                "Invalid username or password.",
            ),
            Self::PlexTokenExpired => (
                "PLEX_TOKEN_EXPIRED",
                S::UNAUTHORIZED,
                "Your Plex session has expired. Please sign in with Plex again.",
            ),
            Self::WebhookUnauthorized => (
                "WEBHOOK_UNAUTHORIZED",
                S::UNAUTHORIZED,
                "Webhook authorization failed.",
            ),
            Self::Forbidden => (
                "FORBIDDEN",
                S::FORBIDDEN,
                "You don't have permission to do this.",
            ),
            Self::PasswordChangeRequired => (
                "PASSWORD_CHANGE_REQUIRED",
                S::FORBIDDEN,
                "Please change your password to continue.",
            ),
            Self::AccountSuspended => (
                "ACCOUNT_SUSPENDED",
                S::FORBIDDEN,
                "This account is suspended.",
            ),
            Self::CsrfTokenInvalid => (
                "CSRF_TOKEN_INVALID",
                S::FORBIDDEN,
                "Your session could not be verified. Reload the page and try again.",
            ),
            Self::PlexSignupClosed => (
                "PLEX_SIGNUP_CLOSED",
                S::FORBIDDEN,
                "This Plex account is not allowed to sign in here.",
            ),
            Self::NotFound => (
                "NOT_FOUND",
                S::NOT_FOUND,
                "The requested resource was not found.",
            ),
            Self::PinNotFound => (
                "PIN_NOT_FOUND",
                S::NOT_FOUND,
                "That Plex sign-in code was not found.",
            ),
            Self::MethodNotAllowed => (
                "METHOD_NOT_ALLOWED",
                S::METHOD_NOT_ALLOWED,
                "This method is not allowed here.",
            ),
            Self::RequestTimeout => (
                "REQUEST_TIMEOUT",
                S::REQUEST_TIMEOUT,
                "The request took too long. Please try again.",
            ),
            Self::AlreadyRequested => (
                "ALREADY_REQUESTED",
                S::CONFLICT,
                "This title has already been requested.",
            ),
            Self::DownloadExists => (
                "DOWNLOAD_EXISTS",
                S::CONFLICT,
                "This download is already queued.",
            ),
            Self::LastAdmin => (
                "LAST_ADMIN",
                S::CONFLICT,
                "The last admin cannot be removed or demoted.",
            ),
            Self::Conflict => (
                "CONFLICT",
                S::CONFLICT,
                "This conflicts with the current state.",
            ),
            Self::PinExpired => (
                "PIN_EXPIRED",
                S::GONE,
                "That Plex sign-in code has expired. Start again.",
            ),
            Self::PayloadTooLarge => (
                "PAYLOAD_TOO_LARGE",
                S::PAYLOAD_TOO_LARGE,
                "The request is too large.",
            ),
            Self::UnsupportedMediaType => (
                "UNSUPPORTED_MEDIA_TYPE",
                S::UNSUPPORTED_MEDIA_TYPE,
                "Send JSON with Content-Type: application/json.",
            ),
            Self::RateLimited => (
                "RATE_LIMITED",
                S::TOO_MANY_REQUESTS,
                "Too many requests. Please try again later.",
            ),
            Self::QuotaExceeded => (
                "QUOTA_EXCEEDED",
                S::TOO_MANY_REQUESTS,
                "You have reached your limit for now. Try again later.",
            ),
            Self::InternalError => (
                "INTERNAL_ERROR",
                S::INTERNAL_SERVER_ERROR,
                "Something went wrong. Please try again.",
            ),
            Self::UpstreamError => (
                "UPSTREAM_ERROR",
                S::BAD_GATEWAY,
                "{Service} returned an unexpected response.",
            ),
            Self::ServiceNotConfigured => (
                "SERVICE_NOT_CONFIGURED",
                S::SERVICE_UNAVAILABLE,
                "{Service} is not set up yet.",
            ),
            Self::ServiceUnavailable => (
                "SERVICE_UNAVAILABLE",
                S::SERVICE_UNAVAILABLE,
                "{Service} is temporarily unavailable.",
            ),
            Self::DownloaderUnavailable => (
                "DOWNLOADER_UNAVAILABLE",
                S::SERVICE_UNAVAILABLE,
                "Downloads are unavailable: yt-dlp was not found.",
            ),
            Self::DatabaseBusy => (
                "DATABASE_BUSY",
                S::SERVICE_UNAVAILABLE,
                "The server is busy. Please try again.",
            ),
            Self::UpstreamTimeout => (
                "UPSTREAM_TIMEOUT",
                S::GATEWAY_TIMEOUT,
                "{Service} did not answer in time.",
            ),
        }
    }

    /// The wire name, e.g. `NOT_FOUND`.
    pub fn as_str(self) -> &'static str {
        self.info().0
    }

    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        self.info().1
    }
}

/// The error every handler and helper returns.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    /// A catalog error with optional details; what the client sees is fully described here.
    #[error("{code:?}")]
    Api {
        code: ErrorCode,
        /// The service's display name for `{Service}` messages.
        service: Option<&'static str>,
        details: Option<serde_json::Value>,
        retry_after: Option<u64>,
    },
    /// A bug or an unexpected failure: the client sees `INTERNAL_ERROR`, the log sees this text.
    #[error("internal error: {0}")]
    Internal(String),
    /// An upstream failed: the client sees the code with the service name, the log the detail.
    #[error("{service} failed: {detail}")]
    Upstream {
        code: ErrorCode,
        service: &'static str,
        detail: String,
        retry_after: Option<u64>,
    },
}

impl AppError {
    /// A plain catalog error.
    pub fn new(code: ErrorCode) -> Self {
        Self::Api {
            code,
            service: None,
            details: None,
            retry_after: None,
        }
    }

    /// `VALIDATION_ERROR` with per-field reasons in `details.fields`.
    pub fn validation<I, K, V>(fields: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let fields: BTreeMap<String, String> = fields
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self::Api {
            code: ErrorCode::ValidationError,
            service: None,
            details: Some(serde_json::json!({ "fields": fields })),
            retry_after: None,
        }
    }

    /// Adds `retryAfter` (and the `Retry-After` header) in seconds.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        match &mut self {
            Self::Api { retry_after, .. } | Self::Upstream { retry_after, .. } => {
                *retry_after = Some(seconds.max(1));
            }
            Self::Internal(_) => {}
        }
        self
    }

    /// Adds `details`.
    pub fn with_details(mut self, value: serde_json::Value) -> Self {
        if let Self::Api { details, .. } = &mut self {
            *details = Some(value);
        }
        self
    }

    /// An internal error from anything printable.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Internal(detail.to_string())
    }

    /// The catalog code the client will see.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Api { code, .. } | Self::Upstream { code, .. } => *code,
            Self::Internal(_) => ErrorCode::InternalError,
        }
    }

    /// Builds the report the edge middleware renders.
    pub fn report(&self) -> ErrorReport {
        let code = self.code();
        let (_, _, template) = code.info();
        let (service, details, retry_after, detail) = match self {
            Self::Api {
                service,
                details,
                retry_after,
                ..
            } => (*service, details.clone(), *retry_after, None),
            Self::Upstream {
                service,
                detail,
                retry_after,
                ..
            } => (Some(*service), None, *retry_after, Some(detail.clone())),
            Self::Internal(detail) => (None, None, None, Some(detail.clone())),
        };
        let message = if template.contains("{Service}") {
            template.replace("{Service}", service.unwrap_or("A service"))
        } else {
            template.to_string()
        };
        ErrorReport {
            code,
            message,
            details,
            retry_after,
            internal_detail: detail,
        }
    }
}

impl From<ErrorCode> for AppError {
    fn from(code: ErrorCode) -> Self {
        Self::new(code)
    }
}

/// What the edge middleware needs to write an error envelope; carried in response extensions.
#[derive(Debug, Clone)]
pub struct ErrorReport {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<serde_json::Value>,
    pub retry_after: Option<u64>,
    /// For the log and `error_logs`, never for the client.
    pub internal_detail: Option<String>,
}

impl ErrorReport {
    /// The report for a bare catalog code.
    pub fn from_code(code: ErrorCode) -> Self {
        AppError::new(code).report()
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let report = self.report();
        let mut response = report.code.status().into_response();
        response.extensions_mut().insert(report);
        response
    }
}

/// Maps a SQLite error: busy or locked is `DATABASE_BUSY`; everything else is internal.
impl From<rusqlite::Error> for AppError {
    fn from(e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(f, _) = &e
            && matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            )
        {
            return Self::new(ErrorCode::DatabaseBusy).with_retry_after(1);
        }
        Self::Internal(format!("database: {e}"))
    }
}

impl From<r2d2::Error> for AppError {
    fn from(e: r2d2::Error) -> Self {
        tracing::warn!(error = %e, "database pool exhausted");
        Self::new(ErrorCode::DatabaseBusy).with_retry_after(1)
    }
}

/// True when the error is a UNIQUE or PRIMARY KEY constraint violation.
pub fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation
                && matches!(
                    f.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                )
    )
}

/// Maps a UNIQUE violation to `conflict`, anything else through `From<rusqlite::Error>`.
pub fn unique_as(e: rusqlite::Error, conflict: ErrorCode) -> AppError {
    if is_unique_violation(&e) {
        AppError::new(conflict)
    } else {
        AppError::from(e)
    }
}

/// The result type of handlers and helpers.
pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn catalog_codes_are_unique_and_uppercase() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let (name, status, message) = code.info();
            assert!(seen.insert(name), "{name} twice");
            assert!(name.chars().all(|c| c.is_ascii_uppercase() || c == '_'));
            assert!(status.is_client_error() || status.is_server_error());
            assert!(message.ends_with('.'), "{name}: {message}");
        }
    }

    #[test]
    fn service_name_fills_the_message() {
        let e = AppError::Upstream {
            code: ErrorCode::UpstreamTimeout,
            service: "Overseerr",
            detail: "timed out after 5s".into(),
            retry_after: None,
        };
        let r = e.report();
        assert_eq!(r.message, "Overseerr did not answer in time.");
        assert_eq!(r.code.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(r.internal_detail.as_deref(), Some("timed out after 5s"));
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let r = AppError::internal("secret path /etc/x").report();
        assert_eq!(r.code, ErrorCode::InternalError);
        assert!(!r.message.contains("/etc/x"));
    }

    #[test]
    fn unique_violations_are_recognised() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a TEXT UNIQUE); INSERT INTO t VALUES ('x');")
            .unwrap();
        let e = conn.execute("INSERT INTO t VALUES ('x')", []).unwrap_err();
        assert!(is_unique_violation(&e));
        assert_eq!(
            unique_as(e, ErrorCode::AlreadyRequested).code(),
            ErrorCode::AlreadyRequested
        );
    }
}
