//! What every service client is built on: its [`Upstream`] gateway and the base URL its
//! requests start from. A client adds its own credentials and headers to [`ClientBase::request`]
//! and its own answers' shapes; this holds no secrets and knows no service.

use crate::clock::SharedClock;
use crate::integrations::upstream::{Method, Request, Upstream, UpstreamOptions};

/// A service client's gateway and base URL. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ClientBase {
    upstream: Upstream,
    base: String,
}

impl ClientBase {
    /// A gateway named `name` (the service's display name in client messages) for the service
    /// at `url`, kept without surrounding white space or a trailing slash.
    pub fn new(
        name: &'static str,
        url: &str,
        options: UpstreamOptions,
        clock: SharedClock,
    ) -> Self {
        Self {
            upstream: Upstream::with_clock(name, options, clock),
            base: url.trim().trim_end_matches('/').to_owned(),
        }
    }

    /// The gateway the calls go through (its breaker is what the admin pages show).
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// The base URL without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A request to `path_and_query` below the base URL, asking for JSON.
    pub fn request(&self, method: Method, path_and_query: &str) -> Request {
        Request::new(method, format!("{}{path_and_query}", self.base))
            .header("Accept", "application/json")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::SystemClock;

    #[test]
    fn trims_the_base_and_joins_paths() {
        let client = ClientBase::new(
            "Test",
            " http://127.0.0.1:8080// ",
            UpstreamOptions::default(),
            Arc::new(SystemClock),
        );
        assert_eq!(client.base_url(), "http://127.0.0.1:8080");
        let request = client.request(Method::Get, "/api/x?y=1");
        assert_eq!(request.url(), "http://127.0.0.1:8080/api/x?y=1");
        assert_eq!(client.upstream().name(), "Test");
    }
}
