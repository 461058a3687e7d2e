//! [`ApiError`]: the one error type of every route, and [`ApiJson`], the JSON extractor whose
//! rejections (invalid JSON, wrong types, unknown fields, bodies over the limit) come back in
//! the same `{"error": {"type", "message"}}` shape as every other failure.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::json;

/// Why a request failed. Each kind has one status code; the message goes to the client, so it
/// names the offending field or value but never internal paths or backtraces.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not valid JSON, or not the JSON this route takes (400, or 413/415 as the
    /// extractor reports).
    #[error("{message}")]
    BadJson {
        /// 400, 413 (body over `--max-body-bytes`) or 415 (no JSON content type).
        status: StatusCode,
        /// What was wrong.
        message: String,
    },
    /// Well-formed JSON that asks for something impossible (422): an unreadable trajectory,
    /// a token id outside the vocabulary, more tokens than `--max-tokens`.
    #[error("{0}")]
    Validation(String),
    /// The models or the scoring produced NaN or an infinity for this request (422): its
    /// tokens hit weights that overflow, or β is too large for the scores. The message names
    /// the model, position or method. Never a 200 with `null`.
    #[error("{0}")]
    NonFinite(String),
    /// The request exceeds a size limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// A model server behind this one failed or broke its protocol (502).
    #[error("{0}")]
    Upstream(String),
    /// Missing or wrong bearer token (401).
    #[error("missing or invalid API key")]
    Unauthorized,
    /// No such session or model (404).
    #[error("{0}")]
    NotFound(String),
    /// The session is being updated by another request (409).
    #[error("{0}")]
    Conflict(String),
    /// Every worker is busy and the queue is full (429): retry later.
    #[error("server overloaded: {0}")]
    Overloaded(String),
    /// The request took longer than `--timeout` (503). The computation may still finish in
    /// the background; its result is dropped.
    #[error("request timed out after {0:.1} s")]
    Timeout(f64),
    /// The model failed (500). Details go to the log.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadJson { status, .. } => *status,
            ApiError::Validation(_) | ApiError::NonFinite(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Overloaded(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable `error.type`.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::BadJson { .. } => "invalid_request",
            ApiError::Validation(_) => "validation_error",
            ApiError::NonFinite(_) => "non_finite",
            ApiError::TooLarge(_) => "too_large",
            ApiError::Upstream(_) => "upstream_error",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Overloaded(_) => "overloaded",
            ApiError::Timeout(_) => "timeout",
            ApiError::Internal(_) => "internal_error",
        }
    }
}

impl ApiError {
    /// The error of a backend failure of the `which` model (`policy`, `reference`): each
    /// kind of cause keeps its own status, and data problems say what is wrong.
    pub fn from_backend(which: &str, e: padv_core::BackendError) -> Self {
        use padv_core::BackendError as B;
        let msg = format!("{which} model: {e}");
        match e {
            B::Invalid(_) => ApiError::Validation(msg),
            B::NonFinite { .. } => ApiError::NonFinite(msg),
            B::TooLarge(_) => ApiError::TooLarge(msg),
            B::Http { .. } | B::Protocol(_) => ApiError::Upstream(msg),
            B::Cancelled => ApiError::Timeout(0.0),
            _ => ApiError::Internal(msg),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!("internal error: {detail}");
        }
        let body = json!({"error": {"type": self.kind(), "message": self.to_string()}});
        (self.status(), Json(body)).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError::BadJson {
            status: r.status(),
            message: r.body_text(),
        }
    }
}

/// `Json<T>` with [`ApiError`] as its rejection, so malformed bodies get padv's error shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(value))
    }
}

/// Result alias of the routes.
pub type ApiResult<T> = Result<T, ApiError>;
