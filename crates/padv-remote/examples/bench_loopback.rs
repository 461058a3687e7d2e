//! Client overhead and throughput of the remote backend against a loopback server that
//! answers instantly (answers are precomputed), so every microsecond not spent on the wire is
//! the client's.
//!
//! ```text
//! cargo run --release -p padv-remote --example bench_loopback -- [vllm|sglang] [LEN] [REQUESTS] [SERVER]
//! ```
//! LEN tokens per sequence (default 2048), a target at every 5th position, REQUESTS requests
//! per concurrency level (default 128) over 16 distinct sequences. SERVER says what the
//! server imitates:
//! * `MS` (default 0): every answer is delayed by MS milliseconds, independently of the others:
//!   a server with unlimited parallel capacity (32 requests in flight = 32 GPUs).
//! * `rate:TOKENS_PER_S`: one engine with a fixed prefill throughput. Requests are served one
//!   after the other (first come, first served), each taking LEN / TOKENS_PER_S seconds. This
//!   is what a real deployment is: throughput-bound, with a queue. Its figure of merit is the
//!   share of wall time the server sat idle because the client had not yet sent the next
//!   request, 1 − busy / wall: the client is the bottleneck exactly that often.
//!
//! Client time = building and serialising the request + parsing the answer + assembling the
//! result, timed per request around the HTTP exchange (`RemoteStats::client_ns`); I/O time =
//! the exchange itself (send, wait, read the body). The figure of merit is the client's share
//! of a request's life, client / (client + I/O), and its share of the threads' wall time.

#[path = "../tests/support/server.rs"]
mod server;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use padv_core::{LogprobBackend, ScoreRequest, StatsRequest};
use padv_remote::{RemoteBackend, RemoteOptions};
use server::{sglang_answer, vllm_answer, Answer, Imitate, Rows, Server};

const VOCAB: usize = 151_936;

/// How long an answer takes on the imitated server.
enum Service {
    /// A fixed delay per request, requests in parallel.
    Delay(Duration),
    /// One queue with this many tokens per second.
    Rate {
        tokens_per_s: f64,
        /// When the server is next free.
        free_at: Mutex<Option<Instant>>,
        /// Total service time handed out, in nanoseconds.
        busy_ns: AtomicU64,
    },
}

impl Service {
    /// Blocks for this request's time on the server.
    fn serve(&self, tokens: usize) {
        match self {
            Service::Delay(d) => std::thread::sleep(*d),
            Service::Rate {
                tokens_per_s,
                free_at,
                busy_ns,
            } => {
                let service = Duration::from_secs_f64(tokens as f64 / tokens_per_s);
                let done = {
                    let mut free = free_at.lock().unwrap();
                    let now = Instant::now();
                    let start = free.map_or(now, |f| f.max(now));
                    *free = Some(start + service);
                    start + service
                };
                busy_ns.fetch_add(service.as_nanos() as u64, Ordering::Relaxed);
                std::thread::sleep(done.saturating_duration_since(Instant::now()));
            }
        }
    }

    fn busy_s(&self) -> f64 {
        match self {
            Service::Delay(_) => 0.0,
            Service::Rate { busy_ns, .. } => busy_ns.load(Ordering::Relaxed) as f64 * 1e-9,
        }
    }
}

struct Synthetic {
    imitate: Imitate,
    service: Arc<Service>,
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
        let tokens = ids.len();
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
        let body = answer.as_ref().clone();
        self.service.serve(tokens);
        (200, body)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sglang = args.first().map(|s| s == "sglang").unwrap_or(false);
    let len: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2048);
    let n_req: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(128);
    let server_arg = args.get(3).map(String::as_str).unwrap_or("0");
    let service = Arc::new(match server_arg.strip_prefix("rate:") {
        Some(r) => Service::Rate {
            tokens_per_s: r.parse().expect("rate:TOKENS_PER_S"),
            free_at: Mutex::new(None),
            busy_ns: AtomicU64::new(0),
        },
        None => Service::Delay(Duration::from_millis(
            server_arg
                .parse()
                .expect("SERVER is MS or rate:TOKENS_PER_S"),
        )),
    });
    let srv = Server::start(Synthetic {
        imitate: Imitate {
            sglang,
            name: "policy".into(),
            root: "/models/policy".into(),
            max_model_len: len + 16,
            max_logprobs: 20,
        },
        service: service.clone(),
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
        "engine {} | {len} tokens/request, {} targets, {n_req} requests per level, server {}",
        if sglang { "sglang" } else { "vllm" },
        targets.len(),
        match service.as_ref() {
            Service::Delay(d) => format!("delay {} ms per request, in parallel", d.as_millis()),
            Service::Rate { tokens_per_s, .. } => format!(
                "one queue at {tokens_per_s:.0} tokens/s ({:.1} ms per request)",
                len as f64 / tokens_per_s * 1e3
            ),
        }
    );
    for conc in [1usize, 8, 32] {
        let b = RemoteBackend::connect(
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
        let busy0 = service.busy_s();
        let reqs: Vec<_> = (0..n_req)
            .map(|i| ScoreRequest {
                ids: &seqs[i % seqs.len()],
                targets: &targets,
            })
            .collect();
        let t = Instant::now();
        let out = b.score_batch(&reqs, stats);
        let wall = t.elapsed().as_secs_f64();
        let busy = service.busy_s() - busy0;
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
        if busy > 0.0 {
            println!(
                "               server busy {:.1} % of wall time: idle for want of a request {:.1} %",
                100.0 * busy / wall,
                100.0 * (1.0 - busy / wall).max(0.0),
            );
        }
    }
}
