//! Bad requests get a JSON `{"error": {"type", "message"}}` and a 4xx, the server keeps
//! serving, and auth, body limits and the token limit hold; `/health` and `/metrics` answer.

mod common;

use axum::http::StatusCode;
use common::*;
use padv_core::render::RendererKind;
use padv_serve::ServeConfig;
use serde_json::json;

fn assert_error(status: StatusCode, v: &serde_json::Value, want: StatusCode, ctx: &str) {
    assert_eq!(status, want, "{ctx}: {v}");
    assert!(v["error"]["type"].is_string(), "{ctx}: {v}");
    assert!(v["error"]["message"].is_string(), "{ctx}: {v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_bodies_get_json_4xx() {
    let st = state_with(
        ServeConfig {
            max_body_bytes: 4096,
            ..Default::default()
        },
        RendererKind::Paper,
    );
    let traj = json!({"id": "t", "messages": conversation()});
    let cases: Vec<(&str, String, StatusCode)> = vec![
        ("/v1/score", "{not json".into(), StatusCode::BAD_REQUEST),
        ("/v1/score", "".into(), StatusCode::BAD_REQUEST),
        (
            "/v1/score",
            json!({"trajectory": traj, "beta": "high"}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/score",
            json!({"trajectory": traj, "bogus": 1}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/score",
            json!({"trajectory": traj, "methods": ["magic"]}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/score",
            json!({"trajectory": traj, "beta": 0.0}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/score",
            json!({"trajectory": {"messages": 5}}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/score",
            json!({"trajectory": [1, 2]}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        // serde reads a struct from an array by position; axum reports its failure as 400.
        (
            "/v1/score",
            json!([1, 2]).to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/v1/score",
            format!("{{\"trajectory\": \"{}\"}}", "x".repeat(10_000)),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "/v1/score/candidates",
            json!({"messages": [], "candidates": []}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/score/candidates",
            json!({"messages": [], "candidates": [{"role": "user", "content": "x"}]}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/score/candidates",
            json!({"messages": [7], "candidates": [{"role": "assistant", "content": "x"}]})
                .to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/sessions",
            json!({"messages": "hi"}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/sessions/nope/messages",
            json!({"messages": []}).to_string(),
            StatusCode::NOT_FOUND,
        ),
        (
            "/tokenize",
            json!({"prompt": 3}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("/v1/nothing", "{}".into(), StatusCode::NOT_FOUND),
    ];
    for (uri, body, want) in cases {
        let (status, v) = send(&st, "POST", uri, Some(body.clone())).await;
        let short: String = body.chars().take(60).collect();
        assert_error(status, &v, want, &format!("{uri} {short}"));
    }
    let (status, v) = send(&st, "GET", "/v1/score", None).await;
    assert_error(status, &v, StatusCode::METHOD_NOT_ALLOWED, "GET /v1/score");
    // Still serving.
    let (status, v) = send(
        &st,
        "POST",
        "/v1/score",
        Some(json!({"trajectory": traj}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn token_limit_refuses_long_trajectories() {
    let st = state_with(
        ServeConfig {
            max_tokens: 8,
            ..Default::default()
        },
        RendererKind::Paper,
    );
    let body = json!({"trajectory": {"id": "t", "messages": conversation()}});
    let (status, v) = send(&st, "POST", "/v1/score", Some(body.to_string())).await;
    assert_error(status, &v, StatusCode::UNPROCESSABLE_ENTITY, "max_tokens");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("--max-tokens"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_auth_guards_everything_but_health() {
    let st = state_with(
        ServeConfig {
            api_key: Some("s3cret".into()),
            ..Default::default()
        },
        RendererKind::Paper,
    );
    let (status, v) = send_with(&st, "GET", "/v1/models", None, None).await;
    assert_error(status, &v, StatusCode::UNAUTHORIZED, "no key");
    let (status, v) = send_with(&st, "GET", "/v1/models", None, Some("wrong")).await;
    assert_error(status, &v, StatusCode::UNAUTHORIZED, "wrong key");
    let (status, _) = send_with(&st, "GET", "/v1/models", None, Some("s3cret")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = send_with(&st, "GET", "/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["status"], "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_by_route_and_status() {
    let st = state();
    let body = json!({"trajectory": {"id": "t", "messages": conversation()}});
    let (status, _) = send(&st, "POST", "/v1/score", Some(body.to_string())).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(&st, "POST", "/v1/score", Some("{".into())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, v) = send(&st, "GET", "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = v.as_str().expect("text");
    assert!(
        text.contains("padv_requests_total{route=\"/v1/score\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("padv_requests_total{route=\"/v1/score\",status=\"400\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("padv_request_duration_seconds_count{route=\"/v1/score\"} 2"),
        "{text}"
    );
    assert!(text.contains("padv_queue_depth 0"));
    let tokens: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("padv_tokens_scored_total "))
        .and_then(|x| x.parse().ok())
        .expect("tokens line");
    assert!(tokens > 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn overload_is_429_not_a_pile_up() {
    // No worker slot free and no queue: the next model request is refused at once.
    let st = state_with(
        ServeConfig {
            max_concurrency: 1,
            max_queue: 0,
            ..Default::default()
        },
        RendererKind::Paper,
    );
    let held = st.admission.enter().await.expect("first slot");
    let body = json!({"trajectory": {"id": "t", "messages": conversation()}});
    let (status, v) = send(&st, "POST", "/v1/score", Some(body.to_string())).await;
    assert_error(status, &v, StatusCode::TOO_MANY_REQUESTS, "overloaded");
    assert_eq!(v["error"]["type"], "overloaded");
    drop(held);
    let (status, _) = send(&st, "POST", "/v1/score", Some(body.to_string())).await;
    assert_eq!(status, StatusCode::OK);
}
