//! Judges over OpenAI-compatible HTTP APIs: generative process reward models (ThinkPRM-style,
//! a `\boxed{correct}` verdict per step) and LLM judges (a success probability), served by
//! vLLM, SGLang or any server of `POST /v1/chat/completions` or `POST /v1/completions`.
//!
//! The client shares the log-prob backend's machinery ([`crate::fleet`]: concurrency over
//! several servers, retries with backoff on transport errors, 429 and 5xx, error budgets) and
//! caches every answer on disk ([`JudgeCache`], keyed by the client's fingerprint and the exact
//! request body), so an interrupted run resumes and a rerun asks nothing twice. An API key is
//! sent as `Authorization: Bearer …`; it is never part of the fingerprint, a cache key, an
//! error or a log line.
//!
//! Request bodies (greedy, as the reference runs ThinkPRM: temperature 0, 4096 new tokens,
//! 20 log-probs):
//!
//! ```json
//! POST /v1/chat/completions
//! {"model": "thinkprm", "messages": [{"role": "user", "content": "<prompt>"},
//!   {"role": "assistant", "content": "\nLet's verify step by step:"}],
//!  "continue_final_message": true, "add_generation_prompt": false,
//!  "max_tokens": 4096, "temperature": 0.0, "logprobs": true, "top_logprobs": 20}
//! POST /v1/completions
//! {"model": "thinkprm", "prompt": "<chat-templated prompt + answer prefix>",
//!  "max_tokens": 4096, "temperature": 0.0, "logprobs": 20}
//! ```
//!
//! (`continue_final_message` is vLLM's and SGLang's way to start the answer with the
//! reference's "Let's verify step by step:"; hosted APIs reject it, hence
//! [`HttpJudgeKind::Prm::answer_prefix`].)

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use padv_core::judge::cache::{cache_key, JudgeCache};
use padv_core::judge::prompts::{
    llm_judge_prompt, thinkprm_prompt, PrmTemplate, THINKPRM_ANSWER_PREFIX,
};
use padv_core::judge::verdict::{
    judge_probability, prm_verdicts, GeneratedToken, PrmVerdicts, TopToken, VerdictSource,
};
use padv_core::judge::{JudgeScores, JudgeStep};
use padv_core::Trajectory;

use crate::error::RemoteError;
use crate::fleet::{Fleet, RetryPolicy};
use crate::http::HttpTarget;

/// Which OpenAI-compatible route to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JudgeApi {
    /// `POST /v1/chat/completions`: the server applies its chat template.
    Chat,
    /// `POST /v1/completions`: the prompt is sent as text (templated by padv when a template
    /// is given).
    Completions,
}

impl JudgeApi {
    fn path(self) -> &'static str {
        match self {
            JudgeApi::Chat => "/v1/chat/completions",
            JudgeApi::Completions => "/v1/completions",
        }
    }
}

impl FromStr for JudgeApi {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "chat" => Ok(JudgeApi::Chat),
            "completions" => Ok(JudgeApi::Completions),
            _ => Err(format!("unknown API {s:?} (expected chat or completions)")),
        }
    }
}

/// Options of [`JudgeClient::connect`].
#[derive(Clone, PartialEq)]
pub struct JudgeOptions {
    /// The route.
    pub api: JudgeApi,
    /// The served model name (`model` in every request).
    pub model: String,
    /// Requests in flight per server (default 8).
    pub concurrency: usize,
    /// Limit on one exchange (default 600 s: a 4096-token reasoning answer takes a while).
    pub timeout: Duration,
    /// New attempts after a retryable failure (default 5).
    pub retries: usize,
    /// Failed attempts a server may have before it is dropped (default 20).
    pub error_budget: usize,
    /// First backoff delay (default 0.5 s).
    pub backoff_base: Duration,
    /// Longest backoff delay (default 30 s).
    pub backoff_max: Duration,
    /// New tokens per answer (default 4096).
    pub max_tokens: u32,
    /// Sampling temperature (default 0: greedy).
    pub temperature: f64,
    /// Top log-probs asked per generated token (default 20; 0 asks for none).
    pub top_logprobs: usize,
    /// Bearer token (from an environment variable; never printed).
    pub api_key: Option<String>,
}

impl std::fmt::Debug for JudgeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JudgeOptions")
            .field("api", &self.api)
            .field("model", &self.model)
            .field("concurrency", &self.concurrency)
            .field("max_tokens", &self.max_tokens)
            .field("temperature", &self.temperature)
            .field("top_logprobs", &self.top_logprobs)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl Default for JudgeOptions {
    fn default() -> Self {
        Self {
            api: JudgeApi::Chat,
            model: String::new(),
            concurrency: 8,
            timeout: Duration::from_secs(600),
            retries: 5,
            error_budget: 20,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            max_tokens: 4096,
            temperature: 0.0,
            top_logprobs: 20,
            api_key: None,
        }
    }
}

/// What is sent: chat messages (`continue_final`: the last one is the start of the answer)
/// or a text prompt.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// `(role, content)` messages.
    Chat {
        /// The messages.
        messages: Vec<(String, String)>,
        /// Continue the last (assistant) message instead of starting a new turn.
        continue_final: bool,
    },
    /// A text prompt for `/v1/completions`.
    Text(String),
}

/// One answer: its text and, when the server returned them, the generated tokens with their
/// top log-probs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// The generated text (the chat message's `content`, or the completion's `text`).
    pub text: String,
    /// Tokens with top-k, if returned.
    pub tokens: Option<Vec<GeneratedToken>>,
    /// The server's finish reason (`stop`, `length`).
    pub finish_reason: Option<String>,
}

/// A judge behind one or more servers of the same model.
#[derive(Debug)]
pub struct JudgeClient {
    targets: Vec<HttpTarget>,
    fleet: Fleet,
    opts: JudgeOptions,
}

impl JudgeClient {
    /// A client for `urls` (servers of the same model). Nothing is sent yet; `https://` URLs
    /// are refused here (see [`HttpTarget::new`]).
    pub fn connect(urls: &[String], opts: JudgeOptions) -> Result<Self, RemoteError> {
        if urls.is_empty() {
            return Err(RemoteError::Config("no judge endpoint given".into()));
        }
        if opts.concurrency == 0 {
            return Err(RemoteError::Config("concurrency must be at least 1".into()));
        }
        if opts.model.is_empty() {
            return Err(RemoteError::Config(
                "the judge's model name is empty".into(),
            ));
        }
        if !opts.temperature.is_finite() || opts.temperature < 0.0 {
            return Err(RemoteError::Config(format!(
                "temperature {} must be a finite number ≥ 0",
                opts.temperature
            )));
        }
        let targets = urls
            .iter()
            .map(|u| HttpTarget::new(u, opts.timeout, opts.concurrency, opts.api_key.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let fleet = Fleet::new(
            targets.iter().map(|t| t.url().to_string()).collect(),
            RetryPolicy {
                retries: opts.retries,
                error_budget: opts.error_budget,
                backoff_base: opts.backoff_base,
                backoff_max: opts.backoff_max,
            },
        );
        Ok(Self {
            targets,
            fleet,
            opts,
        })
    }

    /// The options.
    pub fn options(&self) -> &JudgeOptions {
        &self.opts
    }

    /// What determines the answers besides the prompt: route, model, generation settings.
    /// Not the URLs (a fleet moved elsewhere keeps its cache) and never the key.
    pub fn fingerprint(&self) -> String {
        let o = &self.opts;
        format!(
            "judge;api={};model={};max_tokens={};temperature={};top_logprobs={}",
            o.api.path(),
            o.model,
            o.max_tokens,
            o.temperature,
            o.top_logprobs
        )
    }

    /// The JSON body of one request.
    pub fn request_body(&self, prompt: &Prompt) -> Value {
        let o = &self.opts;
        let mut obj = serde_json::Map::new();
        obj.insert("model".into(), json!(o.model));
        obj.insert("max_tokens".into(), json!(o.max_tokens));
        obj.insert("temperature".into(), json!(o.temperature));
        match (o.api, prompt) {
            (
                JudgeApi::Chat,
                Prompt::Chat {
                    messages,
                    continue_final,
                },
            ) => {
                let msgs: Vec<Value> = messages
                    .iter()
                    .map(|(r, c)| json!({"role": r, "content": c}))
                    .collect();
                obj.insert("messages".into(), Value::Array(msgs));
                if *continue_final {
                    obj.insert("continue_final_message".into(), json!(true));
                    obj.insert("add_generation_prompt".into(), json!(false));
                }
                if o.top_logprobs > 0 {
                    obj.insert("logprobs".into(), json!(true));
                    obj.insert("top_logprobs".into(), json!(o.top_logprobs));
                }
            }
            (_, Prompt::Text(text)) => {
                obj.insert("prompt".into(), json!(text));
                if o.top_logprobs > 0 {
                    obj.insert("logprobs".into(), json!(o.top_logprobs));
                }
            }
            (JudgeApi::Completions, Prompt::Chat { messages, .. }) => {
                // Not built by this module's runners (they template first); send the text.
                let text: String = messages.iter().map(|(_, c)| c.as_str()).collect();
                obj.insert("prompt".into(), json!(text));
                if o.top_logprobs > 0 {
                    obj.insert("logprobs".into(), json!(o.top_logprobs));
                }
            }
        }
        Value::Object(obj)
    }

    /// Sends every prompt (concurrently over the servers, with retries), reading answers from
    /// and writing new ones to `cache`. Entry `i` answers `prompts[i]`, with whether it came
    /// from the cache; each fails on its own.
    pub fn generate(
        &self,
        prompts: &[Prompt],
        cache: Option<&JudgeCache>,
    ) -> Vec<Result<(Generation, bool), RemoteError>> {
        let fp = self.fingerprint();
        let bodies: Vec<String> = prompts
            .iter()
            .map(|p| self.request_body(p).to_string())
            .collect();
        let keys: Vec<String> = bodies.iter().map(|b| cache_key(&[&fp, b])).collect();
        let mut out: Vec<Option<Result<(Generation, bool), RemoteError>>> = keys
            .iter()
            .map(|k| {
                cache
                    .and_then(|c| c.get::<Generation>(k))
                    .map(|g| Ok((g, true)))
            })
            .collect();
        let todo: Vec<usize> = (0..prompts.len()).filter(|&i| out[i].is_none()).collect();
        let path = self.opts.api.path();
        let results = self.fleet.run(
            todo.len(),
            self.opts.concurrency,
            |e, j| {
                let i = todo[j];
                let what = format!("judge request {i}");
                let target = &self.targets[e];
                let g = self.fleet.attempt(e, || {
                    let bytes = target.post(path, bodies[i].as_bytes(), &what)?;
                    parse_answer(self.opts.api, &bytes).map_err(|m| target.protocol(&what, &m))
                })?;
                if let Some(c) = cache {
                    if let Err(err) = c.put(&keys[i], &g) {
                        tracing::warn!(
                            "could not cache a judge answer in {}: {err}",
                            c.dir().display()
                        );
                    }
                }
                Ok(g)
            },
            |j, budget, last| RemoteError::BudgetExhausted {
                what: format!("judge request {}", todo[j]),
                budget,
                last,
            },
        );
        for (j, r) in results.into_iter().enumerate() {
            out[todo[j]] = Some(r.map(|g| (g, false)));
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(RemoteError::Config("internal: no answer".into()))))
            .collect()
    }
}

/// Reads an answer of either route. An answer without text is a protocol error; missing or
/// unreadable log-probs are not (the verdicts are then read from the text).
pub fn parse_answer(api: JudgeApi, bytes: &[u8]) -> Result<Generation, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("body is not JSON: {e}"))?;
    let choice = v
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or("no choices[0] in the answer")?;
    let finish_reason = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .map(str::to_string);
    let (text, tokens) = match api {
        JudgeApi::Chat => {
            let text = choice
                .get("message")
                .and_then(|m| m.get("content"))
                .and_then(Value::as_str)
                .ok_or("choices[0].message.content is missing or not a string")?;
            let tokens = choice
                .get("logprobs")
                .and_then(|l| l.get("content"))
                .and_then(Value::as_array)
                .and_then(|items| items.iter().map(chat_token).collect::<Option<Vec<_>>>());
            (text.to_string(), tokens)
        }
        JudgeApi::Completions => {
            let text = choice
                .get("text")
                .and_then(Value::as_str)
                .ok_or("choices[0].text is missing or not a string")?;
            let tokens = choice.get("logprobs").and_then(completion_tokens);
            (text.to_string(), tokens)
        }
    };
    Ok(Generation {
        text,
        tokens,
        finish_reason,
    })
}

fn chat_token(item: &Value) -> Option<GeneratedToken> {
    let token = item.get("token")?.as_str()?.to_string();
    let top = item
        .get("top_logprobs")
        .and_then(Value::as_array)
        .map(|alts| {
            alts.iter()
                .filter_map(|a| {
                    Some(TopToken {
                        token: a.get("token")?.as_str()?.to_string(),
                        logprob: a.get("logprob")?.as_f64()?,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Some(GeneratedToken { token, top })
}

fn completion_tokens(lp: &Value) -> Option<Vec<GeneratedToken>> {
    let tokens = lp.get("tokens")?.as_array()?;
    let tops = lp.get("top_logprobs").and_then(Value::as_array);
    tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let top = tops
                .and_then(|tp| tp.get(i))
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| {
                            Some(TopToken {
                                token: k.clone(),
                                logprob: v.as_f64()?,
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(GeneratedToken {
                token: t.as_str()?.to_string(),
                top,
            })
        })
        .collect()
}

/// Which judge runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HttpJudgeKind {
    /// A generative PRM with the reference's ThinkPRM prompt.
    Prm {
        /// The template; None picks it per trajectory (failure attribution for Who&When
        /// logs, the agent template otherwise).
        template: Option<PrmTemplate>,
        /// Start the answer with "\nLet's verify step by step:" as the reference does
        /// (chat: a continued assistant message; completions: appended to the prompt).
        answer_prefix: bool,
    },
    /// An LLM judge asked for a success probability.
    LlmJudge,
}

/// Turns the user prompt into the text of a completions request (the chat template with a
/// generation prompt); None sends the prompt as it is.
pub type Templater<'a> = &'a (dyn Fn(&str) -> Result<String, String> + Sync);

/// What one trajectory got.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeItem {
    /// Its scores; None when the request failed or the answer had no usable value.
    pub scores: Option<JudgeScores>,
    /// Why there are no scores.
    pub error: Option<String>,
    /// Whether the answer came from the cache.
    pub cached: bool,
    /// The PRM's reading of the answer.
    pub verdicts: Option<PrmVerdicts>,
}

/// Counts of a judge run (the fallback rates are part of what a baseline is).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct JudgeCounts {
    /// Trajectories judged.
    pub trajectories: usize,
    /// With scores.
    pub scored: usize,
    /// Without (request failed, or no usable value).
    pub failed: usize,
    /// Answers read from the cache.
    pub cache_hits: usize,
    /// Answers that carried token log-probs lining up with their text.
    pub answers_with_logprobs: usize,
    /// Answers cut by the token limit (`finish_reason: length`).
    pub answers_truncated: usize,
    /// PRM steps whose P(correct) came from the log-probs after `\boxed{`.
    pub prm_steps_from_logprobs: usize,
    /// PRM steps read from the verdict text (the fallback).
    pub prm_steps_from_text: usize,
    /// PRM steps without a verdict (0.5).
    pub prm_steps_missing: usize,
    /// PRM verdicts neither `correct` nor `incorrect`.
    pub prm_malformed_verdicts: usize,
    /// PRM verdicts for step numbers the solution does not have.
    pub prm_out_of_range_verdicts: usize,
    /// LLM-judge answers without a readable `PROBABILITY:` line.
    pub llm_unparsable: usize,
}

/// The request for one trajectory, and (PRM) which message each step stands for.
fn build(
    t: &Trajectory,
    kind: HttpJudgeKind,
    api: JudgeApi,
    templater: Option<Templater<'_>>,
) -> Result<(Prompt, Option<padv_core::judge::prompts::PrmPrompt>), String> {
    let (user, prefix, prm) = match kind {
        HttpJudgeKind::Prm {
            template,
            answer_prefix,
        } => {
            let p = thinkprm_prompt(
                t,
                template.unwrap_or_else(|| PrmTemplate::for_trajectory(t)),
            );
            let prefix = answer_prefix.then_some(THINKPRM_ANSWER_PREFIX);
            (p.prompt.clone(), prefix, Some(p))
        }
        HttpJudgeKind::LlmJudge => (llm_judge_prompt(t), None, None),
    };
    let prompt = match api {
        JudgeApi::Chat => {
            let mut messages = vec![("user".to_string(), user)];
            if let Some(p) = prefix {
                messages.push(("assistant".to_string(), p.to_string()));
            }
            Prompt::Chat {
                messages,
                continue_final: prefix.is_some(),
            }
        }
        JudgeApi::Completions => {
            let mut text = match templater {
                Some(f) => f(&user)?,
                None => user,
            };
            if let Some(p) = prefix {
                text.push_str(p);
            }
            Prompt::Text(text)
        }
    };
    Ok((prompt, prm))
}

/// Judges every trajectory: builds the prompts, sends them (cache first), reads the answers.
/// Entry `i` answers `trajectories[i]`. `progress(done, total)` is called after each batch
/// of `batch_size`.
pub fn run_judge(
    client: &JudgeClient,
    kind: HttpJudgeKind,
    trajectories: &[Trajectory],
    templater: Option<Templater<'_>>,
    cache: Option<&JudgeCache>,
    batch_size: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> (Vec<JudgeItem>, JudgeCounts) {
    let mut counts = JudgeCounts {
        trajectories: trajectories.len(),
        ..JudgeCounts::default()
    };
    let mut items = Vec::with_capacity(trajectories.len());
    let api = client.options().api;
    for batch in trajectories.chunks(batch_size.max(1)) {
        let built: Vec<_> = batch
            .iter()
            .map(|t| build(t, kind, api, templater))
            .collect();
        let prompts: Vec<Prompt> = built
            .iter()
            .filter_map(|b| b.as_ref().ok().map(|(p, _)| p.clone()))
            .collect();
        let mut answers = client.generate(&prompts, cache).into_iter();
        for b in built {
            let item = match b {
                Err(e) => JudgeItem {
                    scores: None,
                    error: Some(format!("rendering the prompt: {e}")),
                    cached: false,
                    verdicts: None,
                },
                Ok((_, prm)) => match answers.next() {
                    Some(Ok((g, cached))) => read(&g, prm.as_ref(), cached, &mut counts),
                    Some(Err(e)) => JudgeItem {
                        scores: None,
                        error: Some(e.to_string()),
                        cached: false,
                        verdicts: None,
                    },
                    None => JudgeItem {
                        scores: None,
                        error: Some("internal: no answer".into()),
                        cached: false,
                        verdicts: None,
                    },
                },
            };
            if item.scores.is_some() {
                counts.scored += 1;
            } else {
                counts.failed += 1;
            }
            items.push(item);
        }
        progress(items.len(), trajectories.len());
    }
    (items, counts)
}

fn read(
    g: &Generation,
    prm: Option<&padv_core::judge::prompts::PrmPrompt>,
    cached: bool,
    counts: &mut JudgeCounts,
) -> JudgeItem {
    counts.cache_hits += usize::from(cached);
    counts.answers_truncated += usize::from(g.finish_reason.as_deref() == Some("length"));
    match prm {
        Some(p) => {
            let v = prm_verdicts(&g.text, g.tokens.as_deref(), p.step_messages.len());
            counts.answers_with_logprobs += usize::from(v.had_logprobs);
            counts.prm_malformed_verdicts += v.malformed;
            counts.prm_out_of_range_verdicts += v.out_of_range;
            let mut steps = Vec::new();
            for (n, &(score, source)) in v.steps.iter().enumerate() {
                if !p.step_is_action[n] {
                    continue;
                }
                match source {
                    VerdictSource::Logprobs => counts.prm_steps_from_logprobs += 1,
                    VerdictSource::Text => counts.prm_steps_from_text += 1,
                    VerdictSource::Missing => counts.prm_steps_missing += 1,
                }
                steps.push(JudgeStep {
                    message_index: p.step_messages[n],
                    score,
                });
            }
            let (scores, error) = if steps.is_empty() {
                (
                    None,
                    Some("the trajectory has no action step to judge".to_string()),
                )
            } else {
                (
                    Some(JudgeScores {
                        trajectory: None,
                        steps,
                    }),
                    None,
                )
            };
            JudgeItem {
                scores,
                error,
                cached,
                verdicts: Some(v),
            }
        }
        None => {
            let p = judge_probability(&g.text);
            counts.llm_unparsable += usize::from(p.is_none());
            JudgeItem {
                scores: p.map(|v| JudgeScores {
                    trajectory: Some(v),
                    steps: Vec::new(),
                }),
                error: p
                    .is_none()
                    .then(|| "the answer has no readable 'PROBABILITY: p' line".to_string()),
                cached,
                verdicts: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_of_both_routes_are_read() {
        let chat = br#"{"choices": [{"message": {"role": "assistant", "content": "ab"},
            "finish_reason": "stop", "logprobs": {"content": [
              {"token": "a", "logprob": -0.1, "top_logprobs": [{"token": "a", "logprob": -0.1}, {"token": "b", "logprob": -2.5}]},
              {"token": "b", "logprob": -0.2, "top_logprobs": []}]}}]}"#;
        let g = parse_answer(JudgeApi::Chat, chat).unwrap();
        assert_eq!(g.text, "ab");
        let toks = g.tokens.unwrap();
        assert_eq!(toks[0].top[1].token, "b");
        assert_eq!(g.finish_reason.as_deref(), Some("stop"));
        let comp = br#"{"choices": [{"text": "xy", "finish_reason": "length",
            "logprobs": {"tokens": ["x", "y"], "token_logprobs": [-0.5, -0.1],
              "top_logprobs": [{"x": -0.5, "z": -1.0}, null]}}]}"#;
        let g = parse_answer(JudgeApi::Completions, comp).unwrap();
        assert_eq!(g.tokens.as_ref().unwrap()[0].top.len(), 2);
        assert!(g.tokens.as_ref().unwrap()[1].top.is_empty());
        // No log-probs: fine; no text: an error naming the field.
        let g = parse_answer(
            JudgeApi::Chat,
            br#"{"choices": [{"message": {"content": "t"}, "logprobs": null}]}"#,
        )
        .unwrap();
        assert!(g.tokens.is_none());
        let e = parse_answer(
            JudgeApi::Chat,
            br#"{"choices": [{"message": {"content": null}}]}"#,
        )
        .unwrap_err();
        assert!(e.contains("message.content"), "{e}");
        assert!(parse_answer(JudgeApi::Completions, b"not json").is_err());
    }

    #[test]
    fn request_bodies() {
        let c = JudgeClient::connect(
            &["http://127.0.0.1:1".to_string()],
            JudgeOptions {
                model: "prm".into(),
                api_key: Some("sk-xyz".into()),
                ..JudgeOptions::default()
            },
        )
        .unwrap();
        let b = c.request_body(&Prompt::Chat {
            messages: vec![
                ("user".into(), "u".into()),
                ("assistant".into(), "p".into()),
            ],
            continue_final: true,
        });
        assert_eq!(b["continue_final_message"], true);
        assert_eq!(b["add_generation_prompt"], false);
        assert_eq!(b["top_logprobs"], 20);
        assert_eq!(b["temperature"], 0.0);
        assert!(!c.fingerprint().contains("sk-xyz") && !format!("{c:?}").contains("sk-xyz"));
    }
}
