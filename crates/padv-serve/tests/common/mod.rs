//! Shared helpers: the tiny Qwen2 policy/reference fixtures of padv-engine, a state built on
//! them, one-shot requests through `app(state).oneshot(..)`, and offline scoring through
//! `padv_engine::pair::score_pair` as the independent reference.
#![allow(dead_code)]

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use padv_core::render::RendererKind;
use padv_core::{LogprobRecord, Trajectory};
use padv_engine::logprobs::{EngineOptions, LocalEngine};
use padv_engine::pair::score_pair;
use padv_engine::tokenize::{TextTokenizer, TokenizeOptions};
use padv_serve::{app, load_models, AppState, ServeConfig};
use serde_json::{json, Value};
use tower::ServiceExt;

pub const TOL: f64 = 1e-5;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../padv-engine/tests/fixtures/models")
        .join(name)
}

pub fn state_with(config: ServeConfig, renderer: RendererKind) -> AppState {
    let models = load_models(
        &fixture("qwen2"),
        &fixture("qwen2_ref"),
        EngineOptions::default(),
        &padv_engine::tokenize::TokenizeOptions {
            renderer,
            ..Default::default()
        },
    )
    .expect("fixtures load");
    AppState::new(models, config)
}

pub fn state() -> AppState {
    state_with(ServeConfig::default(), RendererKind::Paper)
}

/// Sends one request; returns the status and the body parsed as JSON (`Value::Null` when
/// the body is empty, a JSON string when it is not JSON).
pub async fn send(
    state: &AppState,
    method: &str,
    uri: &str,
    body: Option<String>,
) -> (StatusCode, Value) {
    send_with(state, method, uri, body, None).await
}

pub async fn send_with(
    state: &AppState,
    method: &str,
    uri: &str,
    body: Option<String>,
    bearer: Option<&str>,
) -> (StatusCode, Value) {
    let mut b = Request::builder().method(method).uri(uri);
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    if let Some(k) = bearer {
        b = b.header("authorization", format!("Bearer {k}"));
    }
    let req = b
        .body(body.map_or_else(Body::empty, Body::from))
        .expect("request builds");
    let resp = app(state.clone()).oneshot(req).await.expect("infallible");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body reads");
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, value)
}

pub fn post(uri: &str, v: &Value) -> (String, String) {
    (uri.to_owned(), v.to_string())
}

pub fn msg(role: &str, content: &str) -> Value {
    json!({"role": role, "content": content})
}

/// A short conversation (the fixture models know 256 positions).
pub fn conversation() -> Vec<Value> {
    vec![
        msg("system", "Be brief."),
        msg("user", "Add 2 and 3."),
        msg("assistant", "It is 5."),
        msg("user", "Now times 4?"),
        msg("assistant", "That is 20."),
        msg("user", "Thanks!"),
        msg("assistant", "Bye."),
    ]
}

pub fn chat_trajectory(id: &str, messages: &[Value]) -> Trajectory {
    let doc = json!({"id": id, "messages": messages}).to_string();
    let report = padv_core::formats::read_str(
        std::path::Path::new("t.jsonl"),
        &doc,
        &padv_core::formats::ReadOptions {
            format: Some(padv_core::formats::Format::ChatJsonl),
            strict: true,
            ..Default::default()
        },
    )
    .expect("valid trajectory");
    report
        .trajectories
        .into_iter()
        .next()
        .expect("one trajectory")
}

/// Offline record of `t`, exactly as `padv score` computes it, with freshly loaded engines.
pub fn offline_record(t: &Trajectory, renderer: RendererKind) -> LogprobRecord {
    let p = LocalEngine::load(&fixture("qwen2"), EngineOptions::default()).expect("policy");
    let r = LocalEngine::load(&fixture("qwen2_ref"), EngineOptions::default()).expect("ref");
    let tok = TextTokenizer::from_dir(&fixture("qwen2")).expect("tokenizer");
    let enc = tok
        .encoder(&TokenizeOptions {
            renderer,
            ..TokenizeOptions::default()
        })
        .expect("encoder");
    let tokens = enc.encode(t).expect("tokenises");
    score_pair(t, &tokens, &p, &r, None).expect("scores").record
}

pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= TOL
}
