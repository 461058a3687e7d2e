//! `GET /health` and `GET /metrics`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use crate::state::AppState;

/// Handler of `GET /health`: 200 while the server runs (no auth, for load balancers).
pub async fn health(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "policy": state.models.policy_name,
        "reference": state.models.reference_name,
        "device": state.models.policy.device_label(),
    }))
}

/// Handler of `GET /metrics` (Prometheus text format).
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let body = state.metrics.render(
        state.admission.queue_depth(),
        state.sessions.len(),
        state.sessions.total_bytes(),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
