//! Typed errors of the remote backend. Every variant names the endpoint, and request errors
//! name the request (its index in the batch and its length) so a failure in a fleet of
//! servers can be traced to one server and one trajectory.

use padv_core::BackendError;

/// Why talking to an engine failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The options or the endpoint list are unusable.
    #[error("remote backend configuration: {0}")]
    Config(String),
    /// No answer: refused or dropped connection, timeout, broken transfer. Retried.
    #[error("{endpoint}: {what}: transport error: {message}")]
    Transport {
        /// Base URL of the endpoint.
        endpoint: String,
        /// What was being done (e.g. `request 3 (812 tokens)`).
        what: String,
        /// ureq's description.
        message: String,
    },
    /// The server answered with an HTTP error status. 429 and 5xx are retried, 4xx are not.
    #[error("{endpoint}: {what}: HTTP {status}: {body}")]
    Status {
        /// Base URL of the endpoint.
        endpoint: String,
        /// What was being done.
        what: String,
        /// HTTP status code.
        status: u16,
        /// Start of the response body (the engine's own explanation).
        body: String,
    },
    /// The answer is not what the engine's API documents (bad JSON, missing or short fields,
    /// echoed token ids that differ from those sent). Not retried: the same request gets the
    /// same answer, and a tokenizer mismatch must stop the run.
    #[error("{endpoint}: {what}: unexpected answer: {message}")]
    Protocol {
        /// Base URL of the endpoint.
        endpoint: String,
        /// What was being done.
        what: String,
        /// What is wrong, naming the JSON field.
        message: String,
    },
    /// The sequence up to the last target does not fit the server's context.
    #[error(
        "{what}: needs {needed} prompt tokens but the server's max_model_len is {max_model_len} \
         (at most {} prompt tokens, one position is kept for the generated token); lower \
         --max-length so the sequence is truncated, or serve a longer context",
        max_model_len.saturating_sub(1)
    )]
    TooLong {
        /// The request.
        what: String,
        /// Tokens the request needs.
        needed: usize,
        /// Server context length.
        max_model_len: usize,
    },
    /// Every endpoint of the model used up its error budget; the run stops (finished requests
    /// have been returned, so the caller caches them).
    #[error(
        "{what}: not sent: every endpoint exhausted its error budget ({budget} failed attempts); \
         last error: {last}"
    )]
    BudgetExhausted {
        /// The request.
        what: String,
        /// Failed attempts allowed per endpoint.
        budget: usize,
        /// The last error seen.
        last: String,
    },
    /// Connecting to one model of a pair failed ([`crate::RemotePairSpec::connect`]).
    #[error("connecting to the {model} endpoints: {source}")]
    Connect {
        /// `policy` or `reference`.
        model: &'static str,
        /// Why.
        source: Box<RemoteError>,
    },
}

impl RemoteError {
    /// Whether a new attempt may succeed: transport errors, 429 and 5xx.
    pub fn is_retryable(&self) -> bool {
        match self {
            RemoteError::Transport { .. } => true,
            RemoteError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

impl From<RemoteError> for BackendError {
    fn from(e: RemoteError) -> Self {
        match e {
            RemoteError::Config(_) => BackendError::Invalid(e.to_string()),
            RemoteError::TooLong { .. } => BackendError::TooLarge(e.to_string()),
            RemoteError::Status {
                endpoint,
                what,
                status,
                body,
            } => BackendError::Http {
                server: endpoint,
                status,
                message: format!("{body} (answering {what})"),
            },
            RemoteError::Protocol { .. } => BackendError::Protocol(e.to_string()),
            other => BackendError::Failed(other.to_string()),
        }
    }
}
