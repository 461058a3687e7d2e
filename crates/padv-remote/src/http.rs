//! One HTTP server as padv talks to it: a pooled `ureq` agent, an optional bearer token, and
//! single-attempt requests whose failures are typed [`RemoteError`]s naming the server and
//! the request. Retries and budgets live in [`crate::fleet`], which sees all servers.
//!
//! Plain HTTP only: the client is built without TLS, which keeps the build free of C code
//! (rustls' default crypto provider needs it). An `https://` URL is refused when the client
//! is set up, with the way round it, rather than failing on the first request.

use std::io::Read;
use std::time::Duration;

use serde_json::Value;

use crate::error::RemoteError;

/// Largest response body accepted: a vLLM answer carries ~21 entries of ~60 bytes per
/// prompt token, so 1 GiB covers prompts of several hundred thousand tokens.
const MAX_BODY: u64 = 1 << 30;

/// How much of an error body goes into an error message.
const ERROR_BODY_CHARS: usize = 400;

/// A bearer token: kept out of `Debug` output, logs and run.json.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        ApiKey(token.into())
    }

    /// Reads the token from environment variable `var`; the error names the variable, never
    /// a value.
    pub fn from_env(var: &str) -> Result<Self, RemoteError> {
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(ApiKey(v)),
            _ => Err(RemoteError::Config(format!(
                "the environment variable {var} (given as the API key's variable) is not set, \
                 empty or not UTF-8"
            ))),
        }
    }

    /// The token itself, for the `Authorization` header only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// A server: base URL, connection pool, credentials.
#[derive(Clone)]
pub struct HttpTarget {
    url: String,
    agent: ureq::Agent,
    /// `Authorization: Bearer …`, never printed.
    bearer: Option<String>,
}

impl std::fmt::Debug for HttpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTarget")
            .field("url", &self.url)
            .field("bearer", &self.bearer.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl HttpTarget {
    /// A client for `url` (`http://host:port`, a trailing `/` ignored). `timeout` bounds one
    /// exchange, connection to last byte; `pool` is the number of connections kept open.
    pub fn new(
        url: &str,
        timeout: Duration,
        pool: usize,
        bearer: Option<String>,
    ) -> Result<Self, RemoteError> {
        let url = url.trim_end_matches('/').to_string();
        if url.starts_with("https://") {
            return Err(RemoteError::Config(format!(
                "endpoint {url:?}: https is not supported (padv's HTTP client is built without \
                 TLS to stay free of C dependencies); reach the server over plain http:// on a \
                 trusted network, or through a local TLS-terminating proxy (e.g. `stunnel` or \
                 `socat`) listening on http://127.0.0.1"
            )));
        }
        if !url.starts_with("http://") {
            return Err(RemoteError::Config(format!(
                "endpoint {url:?} must start with http://"
            )));
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_idle_connections(pool.max(1) * 4)
            .max_idle_connections_per_host(pool.max(1))
            .build()
            .into();
        Ok(Self { url, agent, bearer })
    }

    /// Base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A protocol error of this server.
    pub fn protocol(&self, what: &str, message: &str) -> RemoteError {
        RemoteError::Protocol {
            endpoint: self.url.clone(),
            what: what.to_string(),
            message: message.to_string(),
        }
    }

    fn transport(&self, what: &str, e: impl std::fmt::Display) -> RemoteError {
        RemoteError::Transport {
            endpoint: self.url.clone(),
            what: what.to_string(),
            message: e.to_string(),
        }
    }

    fn status(&self, what: &str, status: u16, body: &[u8]) -> RemoteError {
        let text = String::from_utf8_lossy(body);
        RemoteError::Status {
            endpoint: self.url.clone(),
            what: what.to_string(),
            status,
            body: text.chars().take(ERROR_BODY_CHARS).collect(),
        }
    }

    /// `GET path` as JSON; None on 404 or 405 (route absent).
    pub fn get_json(&self, path: &str) -> Result<Option<Value>, RemoteError> {
        let what = format!("GET {path}");
        let mut req = self.agent.get(format!("{}{path}", self.url));
        if let Some(b) = &self.bearer {
            req = req.header("authorization", &format!("Bearer {b}"));
        }
        let mut resp = req.call().map_err(|e| self.transport(&what, e))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| self.transport(&what, e))?;
        match status {
            404 | 405 => Ok(None),
            200..=299 => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| self.protocol(&what, &format!("body is not JSON: {e}"))),
            _ => Err(self.status(&what, status, &body)),
        }
    }

    /// One `POST` of a JSON body to `path`; the raw answer on 2xx.
    pub fn post(&self, path: &str, body: &[u8], what: &str) -> Result<Vec<u8>, RemoteError> {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json");
        if let Some(b) = &self.bearer {
            req = req.header("authorization", &format!("Bearer {b}"));
        }
        let mut resp = req.send(body).map_err(|e| self.transport(what, e))?;
        let status = resp.status().as_u16();
        let mut out = Vec::new();
        resp.body_mut()
            .with_config()
            .limit(MAX_BODY)
            .reader()
            .read_to_end(&mut out)
            .map_err(|e| self.transport(what, e))?;
        if !(200..=299).contains(&status) {
            return Err(self.status(what, status, &out));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_is_refused_at_set_up_and_keys_are_not_printed() {
        let e = HttpTarget::new("https://api.example.com", Duration::from_secs(1), 1, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("https is not supported") && e.contains("proxy"),
            "{e}"
        );
        assert!(HttpTarget::new("ftp://x", Duration::from_secs(1), 1, None).is_err());
        let t = HttpTarget::new(
            "http://127.0.0.1:9/",
            Duration::from_secs(1),
            1,
            Some("sk-secret".into()),
        )
        .unwrap();
        assert_eq!(t.url(), "http://127.0.0.1:9");
        assert!(!format!("{t:?}").contains("sk-secret"));
    }
}
