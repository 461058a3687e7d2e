//! Bounded load test against a real socket on 127.0.0.1 (ignored by default; it prints
//! figures, it asserts no timing):
//!
//! ```text
//! cargo test --release -p padv-serve --test load -- --ignored --nocapture
//! ```
//!
//! 2,000 requests, 32 at a time (`PADV_LOAD_CONCURRENCY=N` for another level), over raw
//! HTTP/1.1 connections: valid `/v1/score` and
//! `/v1/score/candidates` requests mixed with garbage (invalid JSON, bodies over the limit,
//! wrong types, unknown fields, no auth). Asserts zero 5xx, every valid request 200, every
//! garbage request a 4xx with a JSON error, and the server healthy afterwards; prints p50/p99
//! latency, throughput and the process RSS before and after.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use padv_core::render::RendererKind;
use padv_serve::{serve, ServeConfig};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

const REQUESTS: usize = 2000;
/// Requests in flight at once, unless `PADV_LOAD_CONCURRENCY` says otherwise.
const DEFAULT_CONCURRENCY: usize = 32;
const KEY: &str = "load-test-key";
const BODY_LIMIT: usize = 256 * 1024;

fn rss_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// One request over a fresh connection; returns the status and the body.
async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    auth: bool,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr).await?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if auth {
        head.push_str(&format!("Authorization: Bearer {KEY}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await?;
    // The server may answer 413 and close before reading a huge body; that is its right.
    let _ = s.write_all(body).await;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    Ok((status, body))
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Score,
    Candidates,
    BadJson,
    Huge,
    WrongType,
    Unknown,
    NoAuth,
}

#[test]
#[ignore = "load test: run explicitly, preferably with --release"]
fn load_mix_of_valid_and_garbage() {
    let concurrency: usize = std::env::var("PADV_LOAD_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_CONCURRENCY);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let st = state_with(
            ServeConfig {
                api_key: Some(KEY.into()),
                max_body_bytes: BODY_LIMIT,
                max_concurrency: 2,
                max_queue: 4 * concurrency,
                ..Default::default()
            },
            RendererKind::Paper,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, st, async move {
            let _ = stopped.await;
        }));
        let conv = conversation();
        let score = json!({"trajectory": {"id": "t", "messages": conv[..5]}}).to_string();
        let cands = json!({"messages": conv[..4], "candidates": [
            msg("assistant", "20."), msg("assistant", "It is 20.")]}).to_string();
        let huge = format!("{{\"trajectory\": \"{}\"}}", "x".repeat(BODY_LIMIT + 1000));
        let wrong = json!({"trajectory": {"id": "t", "messages": conv}, "beta": "x"}).to_string();
        let unknown = json!({"trajectory": {"id": "t", "messages": conv}, "nope": 1}).to_string();
        let bodies = Arc::new((score, cands, huge, wrong, unknown));
        // Warm up once so RSS "before" includes the loaded models and first buffers.
        let (s, b) = http(addr, "POST", "/v1/score", bodies.0.as_bytes(), true).await.expect("warm-up");
        assert_eq!(s, 200, "{b}");
        let rss_before = rss_kib();
        let gate = Arc::new(Semaphore::new(concurrency));
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(REQUESTS);
        for i in 0..REQUESTS {
            let kind = match i % 10 {
                0..=3 => Kind::Score,
                4 => Kind::Candidates,
                5 => Kind::BadJson,
                6 => Kind::Huge,
                7 => Kind::WrongType,
                8 => Kind::Unknown,
                _ => Kind::NoAuth,
            };
            let (gate, bodies) = (gate.clone(), bodies.clone());
            tasks.push(tokio::spawn(async move {
                let _p = gate.acquire_owned().await.expect("gate");
                let (path, body, auth): (&str, &[u8], bool) = match kind {
                    Kind::Score => ("/v1/score", bodies.0.as_bytes(), true),
                    Kind::Candidates => ("/v1/score/candidates", bodies.1.as_bytes(), true),
                    Kind::BadJson => ("/v1/score", b"{\"trajectory\": [", true),
                    Kind::Huge => ("/v1/score", bodies.2.as_bytes(), true),
                    Kind::WrongType => ("/v1/score", bodies.3.as_bytes(), true),
                    Kind::Unknown => ("/v1/score", bodies.4.as_bytes(), true),
                    Kind::NoAuth => ("/v1/score", bodies.0.as_bytes(), false),
                };
                let t0 = Instant::now();
                let r = http(addr, "POST", path, body, auth).await;
                (kind, r, t0.elapsed())
            }));
        }
        let mut lat = Vec::with_capacity(REQUESTS);
        let (mut ok, mut rejected, mut server_errors, mut io_errors) = (0, 0, 0, 0);
        for t in tasks {
            let (kind, r, dt) = t.await.expect("task");
            lat.push(dt);
            match r {
                Ok((status, body)) => {
                    if status >= 500 {
                        server_errors += 1;
                        eprintln!("{kind:?}: {status} {body}");
                    }
                    let valid = matches!(kind, Kind::Score | Kind::Candidates);
                    if valid {
                        assert_eq!(status, 200, "{kind:?}: {body}");
                        ok += 1;
                    } else {
                        assert!((400..500).contains(&status), "{kind:?}: {status} {body}");
                        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON error body");
                        assert!(v["error"]["type"].is_string(), "{v}");
                        rejected += 1;
                    }
                }
                Err(e) => {
                    io_errors += 1;
                    eprintln!("{kind:?}: connection error {e}");
                }
            }
        }
        let wall = started.elapsed();
        let rss_after = rss_kib();
        lat.sort();
        let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
        println!(
            "requests {REQUESTS} concurrency {concurrency}: ok {ok}, rejected 4xx {rejected}, 5xx {server_errors}, \
             connection errors {io_errors}; wall {:.2} s, {:.1} req/s; latency p50 {:.1} ms, p99 {:.1} ms; \
             RSS before {:?} KiB, after {:?} KiB",
            wall.as_secs_f64(),
            REQUESTS as f64 / wall.as_secs_f64(),
            pct(0.5).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
            rss_before,
            rss_after,
        );
        assert_eq!(server_errors, 0);
        assert_eq!(io_errors, 0);
        let (s, _) = http(addr, "GET", "/health", b"", false).await.expect("health");
        assert_eq!(s, 200);
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(30), server)
            .await
            .expect("graceful shutdown")
            .expect("join")
            .expect("serve");
    });
}
