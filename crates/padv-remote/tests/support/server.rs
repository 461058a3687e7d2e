//! A minimal HTTP/1.1 server on 127.0.0.1 for tests and the loopback benchmark.
//!
//! Hand-written on `std::net` rather than axum: no async runtime in the tests, and faults can
//! be injected at the byte level (a connection dropped after the request, a stalled answer),
//! which a framework hides. Keep-alive is supported, as a real engine's server does, so the
//! client's connection pool is exercised.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What an engine answers.
pub trait Answer: Send + Sync + 'static {
    /// `GET path`: status and body (404 for unknown routes).
    fn get(&self, path: &str) -> (u16, String);
    /// `POST path` with a JSON body.
    fn post(&self, path: &str, body: &[u8]) -> (u16, Vec<u8>);
}

/// A fault applied to the next scoring request instead of (or to) the normal answer.
pub enum Fault {
    /// Answer normally.
    Pass,
    /// This status and body.
    Status(u16, &'static str),
    /// 200 with this body.
    Body(Vec<u8>),
    /// Rewrite the normal JSON answer.
    Edit(Box<dyn Fn(&mut serde_json::Value) + Send>),
    /// Close the connection without answering.
    Drop,
    /// Answer normally after this delay.
    Stall(Duration),
}

/// A running server.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    posts: Arc<AtomicUsize>,
    faults: Arc<Mutex<VecDeque<Fault>>>,
    auth: Arc<Mutex<Option<String>>>,
}

struct Shared {
    answer: Box<dyn Answer>,
    posts: Arc<AtomicUsize>,
    faults: Arc<Mutex<VecDeque<Fault>>>,
    auth: Arc<Mutex<Option<String>>>,
}

impl Server {
    /// Starts serving `answer` on a free port.
    pub fn start(answer: impl Answer) -> Server {
        Self::start_on("127.0.0.1:0", answer).expect("binding 127.0.0.1")
    }

    /// Starts serving `answer` on `addr` (e.g. `127.0.0.1:8123`).
    pub fn start_on(addr: &str, answer: impl Answer) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        let url = format!("http://{}", listener.local_addr()?);
        let posts = Arc::new(AtomicUsize::new(0));
        let faults = Arc::new(Mutex::new(VecDeque::new()));
        let auth = Arc::new(Mutex::new(None));
        let shared = Arc::new(Shared {
            answer: Box::new(answer),
            posts: posts.clone(),
            faults: faults.clone(),
            auth: auth.clone(),
        });
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || serve(conn, &shared));
            }
        });
        Ok(Server {
            url,
            posts,
            faults,
            auth,
        })
    }

    /// The `Authorization` header of the last POST (None if it had none).
    pub fn last_authorization(&self) -> Option<String> {
        self.auth.lock().unwrap().clone()
    }

    /// Scoring requests received (faulty ones included).
    pub fn posts(&self) -> usize {
        self.posts.load(Ordering::SeqCst)
    }

    /// Queues faults for the next scoring requests, in order.
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.faults.lock().unwrap().extend(faults);
    }
}

fn respond(conn: &mut TcpStream, status: u16, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)?;
    conn.flush()
}

fn serve(conn: TcpStream, shared: &Shared) {
    let _ = conn.set_nodelay(true);
    let Ok(mut write) = conn.try_clone() else {
        return;
    };
    let mut read = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut length = 0usize;
        let mut authorization = None;
        loop {
            let mut h = String::new();
            if read.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if k.eq_ignore_ascii_case("authorization") {
                    authorization = Some(v.trim().to_string());
                }
            }
        }
        let mut body = vec![0; length];
        if read.read_exact(&mut body).is_err() {
            return;
        }
        let sent = if method == "GET" {
            let (status, text) = shared.answer.get(&path);
            respond(&mut write, status, text.as_bytes())
        } else {
            shared.posts.fetch_add(1, Ordering::SeqCst);
            *shared.auth.lock().unwrap() = authorization;
            let fault = shared
                .faults
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Fault::Pass);
            match fault {
                Fault::Pass => {
                    let (s, b) = shared.answer.post(&path, &body);
                    respond(&mut write, s, &b)
                }
                Fault::Status(s, text) => respond(&mut write, s, text.as_bytes()),
                Fault::Body(b) => respond(&mut write, 200, &b),
                Fault::Edit(f) => {
                    let (s, b) = shared.answer.post(&path, &body);
                    let mut v: serde_json::Value = serde_json::from_slice(&b).unwrap();
                    f(&mut v);
                    respond(&mut write, s, &serde_json::to_vec(&v).unwrap())
                }
                Fault::Drop => return,
                Fault::Stall(d) => {
                    std::thread::sleep(d);
                    let (s, b) = shared.answer.post(&path, &body);
                    respond(&mut write, s, &b)
                }
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

/// `/v1/models` as vLLM (and SGLang's OpenAI layer) answers it.
pub fn models_json(name: &str, root: &str, max_model_len: usize) -> String {
    serde_json::json!({
        "object": "list",
        "data": [{"id": name, "object": "model", "owned_by": "vllm", "root": root,
                  "parent": null, "max_model_len": max_model_len}]
    })
    .to_string()
}

/// The documented answers of either engine, from per-position rows: for each position t ≥ 1
/// the log-prob of `ids[t]`, its rank, and the top-k as (id, log-prob) descending.
pub struct Rows {
    /// log p(ids[t]) for t = 1..n (index t − 1).
    pub actual: Vec<f32>,
    /// Rank of ids[t] (1 = most likely).
    pub rank: Vec<usize>,
    /// Top-k per position.
    pub top: Vec<Vec<(u32, f32)>>,
}

/// vLLM `/v1/completions` answer for `ids` (validated as vLLM does).
pub fn vllm_answer(name: &str, ids: &[u32], rows: &Rows) -> Vec<u8> {
    let mut plp = vec![serde_json::Value::Null];
    for (t, &id_t) in ids.iter().enumerate().skip(1) {
        let mut m = serde_json::Map::new();
        for (r, &(id, lp)) in rows.top[t - 1].iter().enumerate() {
            m.insert(
                id.to_string(),
                serde_json::json!({"logprob": lp, "rank": r + 1, "decoded_token": format!("token_id:{id}")}),
            );
        }
        m.insert(
            id_t.to_string(),
            serde_json::json!({"logprob": rows.actual[t - 1], "rank": rows.rank[t - 1],
                               "decoded_token": format!("token_id:{id_t}")}),
        );
        plp.push(serde_json::Value::Object(m));
    }
    serde_json::to_vec(&serde_json::json!({
        "id": "cmpl-test", "object": "text_completion", "created": 0, "model": name,
        "choices": [{"index": 0, "text": "token_id:0", "logprobs": null, "finish_reason": "length",
                     "stop_reason": null, "prompt_logprobs": plp, "prompt_token_ids": ids,
                     "token_ids": [0]}],
        "usage": {"prompt_tokens": ids.len(), "completion_tokens": 1, "total_tokens": ids.len() + 1}
    }))
    .unwrap()
}

/// SGLang `/generate` answer for `ids`.
pub fn sglang_answer(ids: &[u32], rows: &Rows) -> Vec<u8> {
    let mut tok = vec![serde_json::json!([null, ids[0], null])];
    let mut top = vec![serde_json::Value::Null];
    for (t, &id_t) in ids.iter().enumerate().skip(1) {
        tok.push(serde_json::json!([rows.actual[t - 1], id_t, null]));
        top.push(serde_json::Value::Array(
            rows.top[t - 1]
                .iter()
                .map(|&(id, lp)| serde_json::json!([lp, id, null]))
                .collect(),
        ));
    }
    serde_json::to_vec(&serde_json::json!({
        "text": "",
        "meta_info": {"id": "x", "finish_reason": {"type": "length", "length": 1},
                      "prompt_tokens": ids.len(), "completion_tokens": 1, "cached_tokens": 0,
                      "input_token_logprobs": tok, "input_top_logprobs": top,
                      "output_token_logprobs": [[-0.1, 0, null]], "output_top_logprobs": [[]]}
    }))
    .unwrap()
}

/// Which engine a test server imitates, with the request checks that engine makes.
#[derive(Clone)]
pub struct Imitate {
    /// Engine.
    pub sglang: bool,
    /// Served name.
    pub name: String,
    /// Weights path.
    pub root: String,
    /// Context length.
    pub max_model_len: usize,
    /// vLLM's `--max-logprobs`.
    pub max_logprobs: usize,
}

impl Imitate {
    /// GET routes.
    pub fn get(&self, path: &str) -> (u16, String) {
        match path {
            "/v1/models" => (200, models_json(&self.name, &self.root, self.max_model_len)),
            "/get_model_info" if self.sglang => (
                200,
                serde_json::json!({"model_path": self.root, "tokenizer_path": self.root,
                                   "is_generation": true})
                .to_string(),
            ),
            _ => (404, r#"{"detail":"Not Found"}"#.into()),
        }
    }

    /// Validates a scoring request and returns (ids, k), or the engine's error answer.
    pub fn request(&self, path: &str, body: &[u8]) -> Result<(Vec<u32>, usize), (u16, Vec<u8>)> {
        let bad = |s: u16, m: String| {
            (
                s,
                serde_json::to_vec(&serde_json::json!({"error": m})).unwrap(),
            )
        };
        let v: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| bad(400, format!("bad JSON: {e}")))?;
        let (ids_field, k_field) = match (self.sglang, path) {
            (false, "/v1/completions") => ("prompt", "prompt_logprobs"),
            (true, "/generate") => ("input_ids", "top_logprobs_num"),
            _ => return Err(bad(404, format!("no route {path}"))),
        };
        if !self.sglang && v["model"] != self.name.as_str() {
            return Err(bad(
                404,
                format!("The model `{}` does not exist.", v["model"]),
            ));
        }
        if self.sglang && (v["return_logprob"] != true || v["logprob_start_len"] != 0) {
            return Err(bad(
                400,
                "return_logprob / logprob_start_len not as padv sends them".into(),
            ));
        }
        let ids: Vec<u32> = serde_json::from_value(v[ids_field].clone())
            .map_err(|e| bad(400, format!("{ids_field}: {e}")))?;
        let k = v[k_field]
            .as_u64()
            .ok_or_else(|| bad(400, format!("{k_field} missing")))? as usize;
        if k > self.max_logprobs {
            return Err(bad(
                400,
                format!(
                    "Requested prompt logprobs of {k}, which is greater than max allowed: {}",
                    self.max_logprobs
                ),
            ));
        }
        if ids.len() + 1 > self.max_model_len {
            return Err(bad(
                400,
                format!(
                    "This model's maximum context length is {} tokens",
                    self.max_model_len
                ),
            ));
        }
        Ok((ids, k))
    }
}
