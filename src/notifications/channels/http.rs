//! The one HTTP door of the channel senders: a `ureq` agent with bounded timeouts that never
//! follows a redirect (a `Location` could point anywhere), and the sorting of answers into
//! [`SendError`]s.

use std::io::Read;

use serde_json::Value;
use ureq::Agent;

use super::{CONNECT_TIMEOUT, SEND_TIMEOUT, SendError, clip};
use crate::integrations::upstream::{UpstreamFailure, classify};

/// How much of an error answer is kept for the admin.
const MESSAGE_CHARS: usize = 200;

fn agent() -> Agent {
    let config = Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(SEND_TIMEOUT))
        .user_agent(format!("MediaNest/{}", crate::VERSION))
        .build();
    Agent::new_with_config(config)
}

/// A POST body.
pub enum Body<'a> {
    Text(&'a str),
    Json(&'a Value),
}

/// POSTs to `url` with `headers`; any 2xx is delivered.
pub fn post(url: &url::Url, headers: &[(&str, String)], body: Body<'_>) -> Result<(), SendError> {
    let mut request = agent().post(url.as_str());
    for (name, value) in headers {
        // A CR or LF would split the header; `http` refuses them too, this says why.
        if value.contains(['\r', '\n']) {
            return Err(SendError::Other(format!(
                "the {name} header has a line break"
            )));
        }
        request = request.header(*name, value.as_str());
    }
    let result = match body {
        Body::Text(text) => request
            .header("Content-Type", "text/plain; charset=utf-8")
            .send(text),
        Body::Json(value) => request
            .header("Content-Type", "application/json")
            .send(value.to_string().as_bytes()),
    };
    let mut response = result.map_err(|e| from_failure(classify(e)))?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let mut bytes = Vec::new();
    // Best effort: the status decides, the text only helps the admin.
    let _ = response
        .body_mut()
        .as_reader()
        .take(4096)
        .read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    // JSON error bodies carry the reason in one of these fields: Gotify `errorDescription`,
    // Discord `message`, ntfy `error`.
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| {
            ["errorDescription", "message", "error"]
                .iter()
                .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_owned))
        })
        .unwrap_or_else(|| text.into_owned());
    let message = if (300..400).contains(&status) {
        "redirects are not followed".to_owned()
    } else {
        clip(
            &crate::integrations::upstream::redact(&message),
            MESSAGE_CHARS,
        )
    };
    Err(SendError::Status { status, message })
}

fn from_failure(failure: UpstreamFailure) -> SendError {
    match failure {
        UpstreamFailure::Timeout => SendError::Timeout,
        UpstreamFailure::Connect(detail) => SendError::Connect(clip(&detail, MESSAGE_CHARS)),
        UpstreamFailure::Transport(detail) | UpstreamFailure::Decode(detail) => {
            SendError::Other(clip(&detail, MESSAGE_CHARS))
        }
        UpstreamFailure::Status {
            status,
            body_snippet,
            ..
        } => SendError::Status {
            status,
            message: body_snippet,
        },
    }
}
