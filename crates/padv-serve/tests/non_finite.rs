//! No route answers 200 with a `null` score. A policy whose weights hold NaN for token 0
//! (`<|endoftext|>`) makes every request that contains that token unscorable: each route
//! answers 422 `non_finite` naming the model and position, `/v1/score/candidates` gives the
//! bad candidate its own error entry and ranks the others, and β too large for finite scores
//! is refused.

mod common;

#[path = "../../padv-engine/tests/support/nan_model.rs"]
mod nan_model;

use axum::http::StatusCode;
use common::*;
use padv_core::render::RendererKind;
use padv_engine::logprobs::EngineOptions;
use padv_serve::{load_models, AppState, ServeConfig};
use serde_json::{json, Value};

const BAD: &str = "<|endoftext|>";

fn nan_state(dir: &std::path::Path) -> AppState {
    let policy = nan_model::nan_embedding_model("qwen2", dir, 0);
    let models = load_models(
        &policy,
        &fixture("qwen2_ref"),
        EngineOptions::default(),
        &padv_engine::tokenize::TokenizeOptions {
            renderer: RendererKind::Paper,
            ..Default::default()
        },
    )
    .expect("NaN fixture loads");
    AppState::new(models, ServeConfig::default())
}

fn assert_non_finite(status: StatusCode, v: &Value, route: &str) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{route}: {v}");
    assert_eq!(v["error"]["type"], "non_finite", "{route}: {v}");
    let m = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        m.contains("policy") || m.contains("position"),
        "{route}: the cause is named: {m}"
    );
}

fn bad_conversation() -> Vec<Value> {
    vec![
        msg("system", "Be brief."),
        msg("user", "Add 2 and 3."),
        msg("assistant", &format!("It is 5{BAD} ok.")),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn score_route_answers_422_naming_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let st = nan_state(dir.path());
    let body = json!({"trajectory": {"id": "t", "messages": bad_conversation()}});
    let (status, v) = send(&st, "POST", "/v1/score", Some(body.to_string())).await;
    assert_non_finite(status, &v, "/v1/score");
    // A clean trajectory on the same server still scores, with finite numbers.
    let body = json!({"trajectory": {"id": "t", "messages": conversation()}});
    let (status, v) = send(&st, "POST", "/v1/score", Some(body.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(
        v["trajectory"]["pa"].as_f64().is_some_and(f64::is_finite),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_candidate_gets_its_own_error_and_the_others_are_ranked() {
    let dir = tempfile::tempdir().unwrap();
    let st = nan_state(dir.path());
    let history = vec![
        msg("system", "You are a careful assistant; answer briefly."),
        msg("user", "Add 2 and 3, then tell me the result please."),
    ];
    let body = json!({
        "messages": history,
        "candidates": [
            msg("assistant", "It is 5."),
            msg("assistant", &format!("It is{BAD} 5.")),
            msg("assistant", "The answer is 5, I think."),
        ],
    });
    let (status, v) = send(&st, "POST", "/v1/score/candidates", Some(body.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let c = v["candidates"].as_array().unwrap();
    assert_eq!(c[1]["error"]["type"], "non_finite", "{v}");
    assert!(c[1]["scores"].as_object().unwrap().is_empty(), "{v}");
    for k in [0, 2] {
        assert!(c[k].get("error").is_none(), "{v}");
        for (method, s) in c[k]["scores"].as_object().unwrap() {
            assert!(s.as_f64().is_some_and(f64::is_finite), "{method}: {v}");
        }
    }
    let best = v["best"].as_u64().expect("a best candidate");
    assert_ne!(best, 1, "{v}");
    // Every candidate bad: nothing to rank, 422.
    let body = json!({
        "messages": history,
        "candidates": [msg("assistant", &format!("a{BAD}b c")), msg("assistant", &format!("b{BAD}a d"))],
    });
    let (status, v) = send(&st, "POST", "/v1/score/candidates", Some(body.to_string())).await;
    assert_non_finite(status, &v, "/v1/score/candidates");
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_refuse_a_nan_message_and_stay_usable() {
    let dir = tempfile::tempdir().unwrap();
    let st = nan_state(dir.path());
    let body = json!({"messages": bad_conversation()});
    let (status, v) = send(&st, "POST", "/v1/sessions", Some(body.to_string())).await;
    assert_non_finite(status, &v, "/v1/sessions");

    let first = conversation()[..3].to_vec();
    let body = json!({"messages": first});
    let (status, v) = send(&st, "POST", "/v1/sessions", Some(body.to_string())).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["session_id"].as_str().unwrap().to_string();
    let uri = format!("/v1/sessions/{id}/messages");
    let body = json!({"messages": [msg("user", "And?"), msg("assistant", &format!("x{BAD}y"))]});
    let (status, v) = send(&st, "POST", &uri, Some(body.to_string())).await;
    assert_non_finite(status, &v, "append");
    // The conversation is unchanged and can continue.
    let body = json!({"messages": [msg("user", "And?"), msg("assistant", "Nothing more.")]});
    let (status, v) = send(&st, "POST", &uri, Some(body.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["n_messages"], 5, "{v}");
    assert!(
        v["trajectory"]["pa"].as_f64().is_some_and(f64::is_finite),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn completions_refuse_nan_logits_instead_of_a_greedy_token_0() {
    let dir = tempfile::tempdir().unwrap();
    let st = nan_state(dir.path());
    for body in [
        json!({"model": "policy", "prompt": [10, 11, 0, 12], "max_tokens": 1}),
        json!({"model": "policy", "prompt": [10, 0, 12], "max_tokens": 0, "echo": true,
               "prompt_logprobs": 1}),
    ] {
        let (status, v) = send(&st, "POST", "/v1/completions", Some(body.to_string())).await;
        assert_non_finite(status, &v, "/v1/completions");
    }
    // The reference holds no NaN: the same prompt scores.
    let body = json!({"model": "reference", "prompt": [10, 11, 0, 12], "max_tokens": 1});
    let (status, v) = send(&st, "POST", "/v1/completions", Some(body.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_beta_too_large_for_finite_scores_is_refused_on_every_scoring_route() {
    let st = state();
    let traj = json!({"id": "t", "messages": conversation()});
    for (uri, body) in [
        ("/v1/score", json!({"trajectory": traj, "beta": 1e308})),
        (
            "/v1/score/candidates",
            json!({"messages": conversation()[..2], "candidates": [msg("assistant", "5")],
                   "beta": 1e308}),
        ),
        (
            "/v1/sessions",
            json!({"messages": conversation(), "beta": 1e308}),
        ),
    ] {
        let (status, v) = send(&st, "POST", uri, Some(body.to_string())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("beta"),
            "{uri}: {v}"
        );
    }
}
