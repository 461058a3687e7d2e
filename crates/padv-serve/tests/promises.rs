//! The server keeps its promises under load: a timed-out request stops its work at the next
//! chunk boundary and frees the worker; a session that alone exceeds the memory budget is
//! refused and evicts nobody; a body declared over the limit gets 413 before it is sent
//! (`Expect: 100-continue`).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::*;
use padv_core::render::RendererKind;
use padv_core::StatsRequest;
use padv_engine::decoder::KvCache;
use padv_serve::ApiError;
use padv_serve::{serve, ServeConfig};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sets the time it is dropped: when the job really ended.
struct EndedAt(Arc<Mutex<Option<Instant>>>);

impl Drop for EndedAt {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(Instant::now());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timed_out_request_stops_its_work_and_frees_the_worker() {
    let timeout = Duration::from_millis(300);
    let st = state_with(
        ServeConfig {
            timeout,
            max_concurrency: 1,
            ..ServeConfig::default()
        },
        RendererKind::Paper,
    );
    // Work that would run for minutes: the same 200-token sequence scored over and over,
    // as a huge request would.
    let ids: Vec<u32> = (0..200u32).map(|i| 10 + (i * 7) % 400).collect();
    let targets: Vec<usize> = (1..200).collect();
    let ended = Arc::new(Mutex::new(None));
    let marker = EndedAt(Arc::clone(&ended));
    let started = Instant::now();
    let r: Result<(), ApiError> = st
        .run_model(move |m| {
            let _marker = marker;
            for _ in 0..100_000 {
                m.policy
                    .score_from(
                        &ids,
                        &targets,
                        StatsRequest::default(),
                        &mut KvCache::discarding(),
                    )
                    .map_err(|e| ApiError::from_backend("policy", e.into_backend("policy")))?;
            }
            Ok(())
        })
        .await;
    assert!(matches!(r, Err(ApiError::Timeout(_))), "{r:?}");
    let answered = Instant::now();
    assert!(answered - started < timeout + Duration::from_secs(1));
    // The worker is free again: a small request answers at once (generous bound; it would
    // wait for the abandoned work without cancellation).
    let body = json!({"trajectory": {"id": "t", "messages": conversation()[..3]}});
    let (status, v) = send(&st, "POST", "/v1/score", Some(body.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(
        answered.elapsed() < Duration::from_secs(1),
        "{:?}",
        answered.elapsed()
    );
    let ended = ended.lock().unwrap().expect("the abandoned job ended");
    assert!(ended.saturating_duration_since(answered) < Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_larger_than_the_budget_is_refused_and_evicts_nobody() {
    // The fixture pair keeps 2 × 256 bytes of KV cache per position: 24 KiB is a few dozen
    // positions.
    let st = state_with(
        ServeConfig {
            session_memory_bytes: 24 << 10,
            ..ServeConfig::default()
        },
        RendererKind::Paper,
    );
    let small = json!({"messages": [msg("user", "Hi"), msg("assistant", "Yo")]});
    let (status, v) = send(&st, "POST", "/v1/sessions", Some(small.to_string())).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let kept = v["session_id"].as_str().unwrap().to_string();

    let mut long = conversation();
    long.extend(conversation());
    long.extend(conversation());
    let body = json!({"messages": long});
    let (status, v) = send(&st, "POST", "/v1/sessions", Some(body.to_string())).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error"]["type"], "too_large", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--session-memory-mb"),
        "{v}"
    );
    assert_eq!(st.sessions.len(), 1, "only the small session remains");
    // The small session was not evicted: it continues.
    let uri = format!("/v1/sessions/{kept}/messages");
    let more = json!({"messages": [msg("user", "Ok?"), msg("assistant", "Ok.")]});
    let (status, v) = send(&st, "POST", &uri, Some(more.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["evicted_sessions"], json!([]), "{v}");
    // An append that would grow it past the budget is refused and leaves it as it was.
    let body = json!({"messages": long});
    let (status, v) = send(&st, "POST", &uri, Some(body.to_string())).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    let (status, v) = send(&st, "POST", &uri, Some(more.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["n_messages"], 6, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_body_gets_413_before_it_is_sent() {
    let st = state_with(
        ServeConfig {
            max_body_bytes: 1000,
            ..ServeConfig::default()
        },
        RendererKind::Paper,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, st, async move {
        let _ = stopped.await;
    }));
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = "POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                Content-Length: 10000000\r\nExpect: 100-continue\r\n\r\n";
    s.write_all(head.as_bytes()).await.unwrap();
    // No body is sent: the server must answer from the headers alone.
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("the server answers without the body")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(!text.contains("100 Continue"), "{text}");
    assert!(text.contains("too_large"), "{text}");
    let _ = stop.send(());
    let _ = server.await;
}
