//! [`app`]: the router with its middleware (auth, body limit, metrics, JSON 404/405).

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
// Compares without an early exit, so response time does not leak how much of a guessed key
// was right. The crate (already built for candle's `zip`) puts optimisation barriers around
// the comparison; a hand-written fold can legally be turned back into an early exit.
use constant_time_eq::constant_time_eq;

use crate::error::ApiError;
use crate::routes::{candidates, health, score, sessions, vllm};
use crate::state::AppState;

/// The service as a function of its state: tests drive it with `tower::ServiceExt::oneshot`,
/// `serve` binds it to a socket.
pub fn app(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/v1/score", post(score::score))
        .route("/v1/score/candidates", post(candidates::candidates))
        .route("/v1/sessions", post(sessions::create))
        .route("/v1/sessions/{id}/messages", post(sessions::append))
        .route("/v1/sessions/{id}", delete(sessions::delete))
        .route("/v1/completions", post(vllm::completions))
        .route("/tokenize", post(vllm::tokenize))
        .route("/v1/models", get(vllm::models))
        .route("/metrics", get(health::metrics))
        .route("/health", get(health::health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .layer(middleware::from_fn_with_state(state.clone(), declared_size))
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> Response {
    let body = serde_json::json!({"error": {"type": "method_not_allowed",
        "message": "method not allowed on this route"}});
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

/// 413 for a body whose declared `Content-Length` is over `--max-body-bytes`, before any of
/// it is read: hyper sends `100 Continue` only when a handler first polls the body, so a
/// client that sent `Expect: 100-continue` gets the refusal without uploading. (Bodies
/// without a length are cut at the limit while read, by `DefaultBodyLimit`.)
async fn declared_size(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = state.config.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(n) = declared.filter(|&n| n > limit as u64) {
        return ApiError::TooLarge(format!(
            "request body of {n} bytes is over the server's limit of {limit} bytes \
             (--max-body-bytes)"
        ))
        .into_response();
    }
    next.run(req).await
}

/// Bearer-token check; `/health` stays open so probes need no secret.
async fn auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(key) = &state.config.api_key {
        if req.uri().path() != "/health" {
            let given = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), key.as_bytes())) {
                return ApiError::Unauthorized.into_response();
            }
        }
    }
    next.run(req).await
}

/// Counts every request by matched route and status, with its latency.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let resp = next.run(req).await;
    state.metrics.observe(
        &route,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_keys() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
