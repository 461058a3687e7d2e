//! `--calibration`: `/v1/score` returns the calibrated cell's score (computed with the map's
//! own spec, not the request's) and the map's probability of success at it.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::*;
use padv_core::eval::calibration::{Calibration, CalibrationKind};
use padv_core::render::RendererKind;
use padv_core::score::{trajectory_score, Method, ScoreSpec, StepAgg, TokenAgg};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn score_returns_p_success_of_the_calibrated_cell() {
    let spec = ScoreSpec::builder()
        .method(Method::Pa)
        .token_agg(TokenAgg::Sum)
        .step_agg(StepAgg::Min)
        .build()
        .unwrap();
    // A Platt map fitted on made-up scores: smooth, so every score has its own probability.
    let cal = Calibration::fit(
        &[-3.0, -2.0, -1.0, 0.0, 1.0, 2.0].map(Some),
        &[0.0, 0.0, 1.0, 0.0, 1.0, 1.0].map(Some),
        spec,
        CalibrationKind::Platt,
    )
    .unwrap();
    let st = state_with(
        padv_serve::ServeConfig {
            calibration: Some(Arc::new(cal.clone())),
            ..Default::default()
        },
        RendererKind::Paper,
    );
    let msgs = conversation();
    // The request asks for mean/mean; the calibrated cell is sum/min regardless.
    let body = json!({"trajectory": {"id": "t1", "messages": msgs}, "methods": ["policy_logprob"]});
    let (status, v) = send(&st, "POST", "/v1/score", Some(body.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let offline = offline_record(&chat_trajectory("t1", &msgs), RendererKind::Paper);
    let want = trajectory_score(&offline, &spec).unwrap().unwrap();
    let c = &v["calibration"];
    assert_eq!(c["method"], "pa");
    assert_eq!(c["cell"], spec.label());
    assert_eq!(c["kind"], "platt");
    let score = c["score"].as_f64().unwrap();
    assert!(close(score, want), "{score} vs {want}");
    let p = c["p_success"].as_f64().unwrap();
    assert!((p - cal.predict(want)).abs() < 1e-5, "{p}");
    assert!(p > 0.0 && p < 1.0);

    // Without a calibration the field is absent.
    let (_, plain) = send(&state(), "POST", "/v1/score", Some(body.to_string())).await;
    assert!(plain.get("calibration").is_none(), "{plain}");
}
