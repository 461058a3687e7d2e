//! Client overhead and throughput of the remote backend against a loopback server that
//! answers instantly (answers are precomputed), so every microsecond not spent on the wire is
//! the client's.
//!
//! ```text
//! cargo run --release -p padv-remote --example bench_loopback -- [vllm|sglang] [LEN] [REQUESTS] [SERVER_MS]
//! ```
//! LEN tokens per sequence (default 2048), a target at every 5th position, REQUESTS requests
//! per concurrency level (default 128) over 16 distinct sequences. SERVER_MS (default 0)
//! delays every answer, to imitate an engine's prefill time.
//!
//! Client time = building and serialising the request + parsing the answer + assembling the
//! result, timed per request around the HTTP exchange (`RemoteStats::client_ns`); I/O time =
//! the exchange itself (send, wait, read the body). The figure of merit is the client's share
//! of a request's life, client / (client + I/O), and its share of the threads' wall time.

#[path = "../tests/support/server.rs"]
mod server;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use padv_core::{LogprobBackend, ScoreRequest, StatsRequest};
use padv_remote::{RemoteBackend, RemoteOptions};
use server::{sglang_answer, vllm_answer, Answer, Imitate, Rows, Server};

const VOCAB: usize = 151_936;

struct Synthetic {
    imitate: Imitate,
    delay: Duration,
    answers: Mutex<HashMap<Vec<u32>, Arc<Vec<u8>>>>,
}

impl Synthetic {
    /// 20 top entries plus the prompt token outside them (the largest vLLM answer).
    fn rows(ids: &[u32]) -> Rows {
        let n = ids.len() - 1;
        Rows {
            actual: ids[1..]
                .iter()
                .map(|&i| -1.5 - (i % 97) as f32 / 10.0)
                .collect(),
            rank: vec![25; n],
            top: (0..n)
                .map(|t| {
                    (0..20)
                        .map(|j| {
                            (
                                ((t * 31 + j * 7919) % VOCAB) as u32,
                                -0.05 * (j + 1) as f32 - 0.123_456,
                            )
                        })
                        .collect()
                })
                .collect(),
        }
    }
}

impl Answer for Synthetic {
    fn get(&self, path: &str) -> (u16, String) {
        self.imitate.get(path)
    }

    fn post(&self, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let (ids, _k) = match self.imitate.request(path, body) {
            Ok(x) => x,
            Err(e) => return e,
        };
        let cached = self.answers.lock().unwrap().get(&ids).cloned();
        let answer = match cached {
            Some(a) => a,
            None => {
                let rows = Self::rows(&ids);
                let a = Arc::new(if self.imitate.sglang {
                    sglang_answer(&ids, &rows)
                } else {
                    vllm_answer(&self.imitate.name, &ids, &rows)
                });
                self.answers.lock().unwrap().insert(ids, a.clone());
                a
            }
        };
        std::thread::sleep(self.delay);
        (200, answer.as_ref().clone())
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sglang = args.first().map(|s| s == "sglang").unwrap_or(false);
    let len: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2048);
    let n_req: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(128);
    let delay_ms: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
    let srv = Server::start(Synthetic {
        imitate: Imitate {
            sglang,
            name: "policy".into(),
            root: "/models/policy".into(),
            max_model_len: len + 16,
            max_logprobs: 20,
        },
        delay: Duration::from_millis(delay_ms),
        answers: Mutex::new(HashMap::new()),
    });
    let seqs: Vec<Vec<u32>> = (0..16u32)
        .map(|s| {
            (0..len as u32)
                .map(|i| (i * 7 + s * 13) % VOCAB as u32)
                .collect()
        })
        .collect();
    let targets: Vec<usize> = (1..len).filter(|t| t % 5 == 0).collect();
    let stats = StatsRequest {
        distribution_stats: true,
    };
    println!(
        "engine {} | {len} tokens/request, {} targets, {n_req} requests per level, server delay {delay_ms} ms",
        if sglang { "sglang" } else { "vllm" },
        targets.len()
    );
    for conc in [1usize, 8, 32] {
        let mut b = RemoteBackend::connect(
            std::slice::from_ref(&srv.url),
            VOCAB,
            RemoteOptions {
                concurrency: conc,
                ..RemoteOptions::default()
            },
        )
        .expect("connect");
        // Warm-up: the server precomputes its answers, connections are opened.
        let warm: Vec<_> = seqs
            .iter()
            .map(|ids| ScoreRequest {
                ids,
                targets: &targets,
            })
            .collect();
        for r in b.score_batch(&warm, stats) {
            r.expect("warm-up request");
        }
        let s0 = b.stats();
        let reqs: Vec<_> = (0..n_req)
            .map(|i| ScoreRequest {
                ids: &seqs[i % seqs.len()],
                targets: &targets,
            })
            .collect();
        let t = Instant::now();
        let out = b.score_batch(&reqs, stats);
        let wall = t.elapsed().as_secs_f64();
        assert!(out.iter().all(Result::is_ok), "a request failed");
        let s = b.stats();
        let client = (s.client_ns - s0.client_ns) as f64 * 1e-9;
        let io = (s.io_ns - s0.io_ns) as f64 * 1e-9;
        let n = (s.requests_ok - s0.requests_ok) as f64;
        println!(
            "concurrency {conc:>2}: {:>7.1} req/s {:>10.0} tok/s | client {:>7.1} µs/request ({:.2} µs/token) | \
             I/O {:>8.1} µs/request | client share of request time {:.1} % | of thread wall time {:.1} %",
            n / wall,
            n * len as f64 / wall,
            client / n * 1e6,
            client / n / len as f64 * 1e6,
            io / n * 1e6,
            100.0 * client / (client + io),
            100.0 * client / (wall * conc.min(n_req) as f64),
        );
    }
}
