//! A mock judge server's answers (tests and `examples/mock_judge.rs`): a stand-in for a
//! ThinkPRM or LLM judge behind vLLM's OpenAI-compatible routes, for trying `padv judge`
//! where no judge model can run. It does not judge anything: it follows a keyword rule.
//!
//! - PRM prompts (they contain `[Solution]`): every `Step N…:` block of the solution gets the
//!   verdict `incorrect` when its text contains a failure word (error, sorry, apolog, unable,
//!   cannot, can't, fail, not able), else `correct`; P(correct) is 0.2 or 0.85, moved by up to
//!   ±0.1 by a hash of the step text (so ties are rare). The answer has one
//!   `Step N is \boxed{…}` line per step, and, when log-probs are asked for, tokens whose
//!   top-k at the verdict position carry log P(correct) and log P(incorrect).
//! - LLM-judge prompts: `PROBABILITY: p` with p = 0.9 − 0.15 × (failure words in the
//!   trajectory), within [0.05, 0.95].
//!
//! Requests are checked as vLLM checks them (`model` must be the served name).

#![allow(dead_code)]

use serde_json::{json, Value};

use super::server::{models_json, Answer};

/// Words that make a step "incorrect".
const FAILURE_WORDS: [&str; 8] = [
    "error", "sorry", "apolog", "unable", "cannot", "can't", "fail", "not able",
];

/// The mock's settings.
#[derive(Clone)]
pub struct MockJudge {
    /// Served model name.
    pub name: String,
    /// Return log-probs when asked (false imitates a server that never does).
    pub logprobs: bool,
}

fn failures(text: &str) -> usize {
    let lower = text.to_lowercase();
    FAILURE_WORDS.iter().map(|w| lower.matches(w).count()).sum()
}

fn jitter(text: &str) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    ((h >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.2
}

/// The solution's steps: `(N, text)` for every line starting `Step N:` or `Step N [`.
fn steps(prompt: &str) -> Vec<(usize, String)> {
    let Some(start) = prompt.find("[Solution]") else {
        return Vec::new();
    };
    let body = &prompt[start..];
    let end = body.find("\n\nReview and critique").unwrap_or(body.len());
    let mut out: Vec<(usize, String)> = Vec::new();
    for line in body[..end].lines() {
        let header = line.strip_prefix("Step ").and_then(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let after = &rest[digits.len()..];
            (after.starts_with(':') || after.starts_with(" [")).then(|| digits.parse().ok())?
        });
        match (header, out.last_mut()) {
            (Some(n), _) => out.push((n, String::new())),
            (None, Some(last)) => {
                last.1.push_str(line);
                last.1.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

/// The answer text as tokens, each with its top-k (empty except at verdict positions).
fn prm_tokens(prompt: &str) -> Vec<(String, Vec<(String, f64)>)> {
    let mut toks = Vec::new();
    for (n, text) in steps(prompt) {
        let bad = failures(&text) > 0;
        let p = (if bad { 0.2 } else { 0.85 } + jitter(&text)).clamp(0.01, 0.99);
        let verdict = if p >= 0.5 { "correct" } else { "incorrect" };
        toks.push((
            format!("Step {n}: checked.\nStep {n} is \\boxed{{"),
            Vec::new(),
        ));
        toks.push((
            verdict.to_string(),
            vec![
                ("correct".to_string(), p.ln()),
                ("incorrect".to_string(), (1.0 - p).ln()),
                ("cor".to_string(), (1e-4f64).ln()),
            ],
        ));
        toks.push(("}\n".to_string(), Vec::new()));
    }
    toks
}

impl MockJudge {
    fn prompt_of(&self, v: &Value, chat: bool) -> Option<String> {
        if chat {
            let msgs = v.get("messages")?.as_array()?;
            msgs.iter()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
                .and_then(|m| m.get("content")?.as_str())
                .map(str::to_string)
        } else {
            v.get("prompt")?.as_str().map(str::to_string)
        }
    }

    /// The answer's tokens for a prompt.
    pub fn tokens(&self, prompt: &str) -> Vec<(String, Vec<(String, f64)>)> {
        if prompt.contains("[Solution]") {
            prm_tokens(prompt)
        } else {
            let p = (0.9 - 0.15 * failures(prompt) as f64).clamp(0.05, 0.95);
            vec![(
                format!(
                    "Looks {}.\nPROBABILITY: {p:.2}",
                    if p >= 0.5 { "fine" } else { "doubtful" }
                ),
                Vec::new(),
            )]
        }
    }
}

impl Answer for MockJudge {
    fn get(&self, path: &str) -> (u16, String) {
        match path {
            "/v1/models" => (200, models_json(&self.name, &self.name, 32768)),
            _ => (404, r#"{"detail":"Not Found"}"#.into()),
        }
    }

    fn post(&self, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let bad = |s: u16, m: &str| (s, json!({"error": {"message": m}}).to_string().into_bytes());
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return bad(400, "bad JSON");
        };
        let chat = match path {
            "/v1/chat/completions" => true,
            "/v1/completions" => false,
            _ => return bad(404, "no such route"),
        };
        if v["model"] != self.name.as_str() {
            return bad(404, &format!("The model `{}` does not exist.", v["model"]));
        }
        let Some(prompt) = self.prompt_of(&v, chat) else {
            return bad(400, "no prompt");
        };
        let toks = self.tokens(&prompt);
        let text: String = toks.iter().map(|t| t.0.as_str()).collect();
        let want_lp = self.logprobs
            && if chat {
                v["logprobs"] == true
            } else {
                v["logprobs"].as_u64().is_some_and(|k| k > 0)
            };
        let answer = if chat {
            let logprobs = want_lp.then(|| {
                json!({"content": toks.iter().map(|(t, top)| json!({
                    "token": t, "logprob": top.first().map_or(-0.01, |x| x.1),
                    "top_logprobs": top.iter().map(|(a, l)| json!({"token": a, "logprob": l})).collect::<Vec<_>>()
                })).collect::<Vec<_>>()})
            });
            json!({"id": "chatcmpl-mock", "object": "chat.completion", "model": self.name,
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                "logprobs": logprobs, "finish_reason": "stop"}]})
        } else {
            let logprobs = want_lp.then(|| {
                json!({"tokens": toks.iter().map(|t| &t.0).collect::<Vec<_>>(),
                       "token_logprobs": toks.iter().map(|t| t.1.first().map_or(-0.01, |x| x.1)).collect::<Vec<_>>(),
                       "top_logprobs": toks.iter().map(|(_, top)| {
                           let m: serde_json::Map<String, Value> = top.iter().map(|(a, l)| (a.clone(), json!(l))).collect();
                           Value::Object(m)
                       }).collect::<Vec<_>>()})
            });
            json!({"id": "cmpl-mock", "object": "text_completion", "model": self.name,
                   "choices": [{"index": 0, "text": text, "logprobs": logprobs, "finish_reason": "stop"}]})
        };
        (200, answer.to_string().into_bytes())
    }
}
