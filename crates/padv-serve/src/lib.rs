//! # padv-serve
//!
//! Live progress advantage over HTTP: an agent loop sends each new step (or K candidate next
//! steps) and gets PA = β·(log π_θ − log π_ref) and the confidence baselines back while the
//! episode runs.
//!
//! - [`app`] builds the axum [`Router`](axum::Router) from an [`AppState`]; tests call it with
//!   `tower::ServiceExt::oneshot`, [`serve`] binds it to a socket with graceful shutdown.
//! - [`Models`] holds the policy/reference pair ([`load_models`] reads them from checkpoint
//!   folders); [`ServeConfig`] the limits (auth key, body size, tokens, timeout, concurrency,
//!   session memory).
//! - Routes: `POST /v1/score` (one trajectory), `POST /v1/score/candidates` (best of K after
//!   one shared history, computed once), `POST /v1/sessions` + `/v1/sessions/{id}/messages`
//!   (incremental: only new tokens are computed, from both models' KV caches), the vLLM
//!   subset `POST /v1/completions` / `POST /tokenize` / `GET /v1/models`, `GET /health` and
//!   `GET /metrics`.
//! - Every failure is an [`ApiError`] rendered as `{"error": {"type", "message"}}` with a 4xx
//!   status for bad requests (422 validation, 429 overloaded), never a crash.
#![deny(missing_docs)]

mod app;
mod error;
mod metrics;
pub mod routes;
mod scoring;
mod server;
mod sessions;
mod state;

pub use app::app;
pub use error::{ApiError, ApiJson, ApiResult};
pub use metrics::Metrics;
pub use scoring::{ScoreParams, StepReport};
pub use server::{load_models, serve, shutdown_signal, ServeError};
pub use sessions::SessionStore;
pub use state::{Admission, AppState, Models, ServeConfig};
