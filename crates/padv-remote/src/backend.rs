//! [`RemoteBackend`]: a fleet of vLLM or SGLang servers of one model behind
//! `padv_core::LogprobBackend`.
//!
//! A batch is spread over the endpoints by worker threads, `concurrency` per endpoint, with
//! retries, backoff and per-endpoint error budgets ([`crate::fleet`], shared with the judge
//! client). When every endpoint is over budget the remaining requests fail with
//! [`RemoteError::BudgetExhausted`] while the finished ones are returned, so the caller
//! caches them and a rerun resumes.
//!
//! Sequences are never split. A teacher-forced log-prob at position t conditions on all of
//! `ids[..t]`; scoring a long sequence in windows would condition on less and give different
//! numbers. A request carries `ids[..=last target]` (later tokens cannot change earlier
//! log-probs); one that does not fit the server's context fails with
//! [`RemoteError::TooLong`] before anything is sent, and the caller skips that trajectory or
//! truncates it (`--max-length`) as it does for the local engine.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use padv_core::{BackendError, LogprobBackend, PositionLogprobs, ScoreRequest, StatsRequest};

use crate::endpoint::{Endpoint, ModelIdentity};
use crate::error::RemoteError;
use crate::fleet::{Fleet, RetryPolicy};
use crate::protocol::{parse_response, request_body, EngineKind, Extract, TOPK_MEAN_K};

/// Options of [`RemoteBackend::connect`].
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteOptions {
    /// Engine; None detects it from the first endpoint.
    pub kind: Option<EngineKind>,
    /// Requests in flight per endpoint (default 8).
    pub concurrency: usize,
    /// Limit on one HTTP exchange, connection to last byte (default 600 s: a long prefill
    /// under load is slow, a hung server must still be noticed).
    pub timeout: Duration,
    /// New attempts after a retryable failure (default 5).
    pub retries: usize,
    /// Top-k log-probs asked per position (default 20, which makes the top-20 mean exact;
    /// below 20 the record has no top-20 mean).
    pub top_k: usize,
    /// Failed attempts an endpoint may have in a run before it is dropped (default 20).
    pub error_budget: usize,
    /// First backoff delay (default 0.5 s); attempt n waits up to `base·2ⁿ`.
    pub backoff_base: Duration,
    /// Longest backoff delay (default 30 s).
    pub backoff_max: Duration,
    /// Context length to assume instead of the server's report.
    pub max_model_len: Option<usize>,
    /// Served model to use, by its `/v1/models` id; None takes the first listed.
    pub model: Option<String>,
    /// Bearer token sent with every request (None: no `Authorization` header).
    pub api_key: Option<crate::http::ApiKey>,
}

impl RemoteOptions {
    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            retries: self.retries,
            error_budget: self.error_budget,
            backoff_base: self.backoff_base,
            backoff_max: self.backoff_max,
        }
    }
}

impl Default for RemoteOptions {
    fn default() -> Self {
        Self {
            kind: None,
            concurrency: 8,
            timeout: Duration::from_secs(600),
            retries: 5,
            top_k: TOPK_MEAN_K,
            error_budget: 20,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            max_model_len: None,
            model: None,
            api_key: None,
        }
    }
}

/// Counters of a backend's traffic, since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoteStats {
    /// Requests answered successfully.
    pub requests_ok: u64,
    /// HTTP attempts made (successes, failures and retries).
    pub attempts: u64,
    /// Failed attempts.
    pub failures: u64,
    /// Prompt tokens in successful requests.
    pub prompt_tokens: u64,
    /// Nanoseconds spent in the client's own work: building and serialising requests,
    /// parsing answers, assembling results (summed over threads).
    pub client_ns: u64,
    /// Nanoseconds spent in HTTP exchanges: sending, waiting for and reading answers (summed
    /// over threads).
    pub io_ns: u64,
}

#[derive(Default)]
struct Counters {
    requests_ok: AtomicU64,
    attempts: AtomicU64,
    failures: AtomicU64,
    prompt_tokens: AtomicU64,
    client_ns: AtomicU64,
    io_ns: AtomicU64,
}

fn add(c: &AtomicU64, d: Duration) {
    c.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
}

/// A fleet of servers of one model.
#[derive(Debug)]
pub struct RemoteBackend {
    endpoints: Vec<Endpoint>,
    /// Failed attempts per endpoint, over the backend's life.
    fleet: Fleet,
    opts: RemoteOptions,
    vocab_size: usize,
    counters: Counters,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Counters")
    }
}

impl RemoteBackend {
    /// Connects to every URL of `urls` (servers of one model) and checks that they serve the
    /// same model with the same engine and context length. `vocab_size` is the model's
    /// vocabulary (from its `config.json`): the engines do not report it.
    pub fn connect(
        urls: &[String],
        vocab_size: usize,
        opts: RemoteOptions,
    ) -> Result<Self, RemoteError> {
        if urls.is_empty() {
            return Err(RemoteError::Config("no endpoint given".into()));
        }
        if opts.concurrency == 0 {
            return Err(RemoteError::Config("concurrency must be at least 1".into()));
        }
        let mut endpoints: Vec<Endpoint> = Vec::with_capacity(urls.len());
        let mut kind = opts.kind;
        for url in urls {
            let ep = Endpoint::connect(
                url,
                kind,
                opts.model.as_deref(),
                opts.max_model_len,
                opts.timeout,
                opts.concurrency,
                opts.api_key.as_ref(),
            )?;
            kind = Some(ep.identity().kind);
            if let Some(first) = endpoints.first() {
                if first.identity() != ep.identity() {
                    return Err(RemoteError::Config(format!(
                        "{} serves {:?} but {} serves {:?}: all endpoints of one model must serve the same weights with the same context length",
                        first.url(),
                        first.identity(),
                        ep.url(),
                        ep.identity()
                    )));
                }
            }
            endpoints.push(ep);
        }
        Ok(Self {
            fleet: Fleet::new(
                endpoints.iter().map(|e| e.url().to_string()).collect(),
                opts.retry_policy(),
            ),
            endpoints,
            opts,
            vocab_size,
            counters: Counters::default(),
        })
    }

    /// What the fleet serves.
    pub fn identity(&self) -> &ModelIdentity {
        self.endpoints[0].identity()
    }

    /// The longest prompt a request may carry: `max_model_len − 1` (one position is kept for
    /// the generated token). Use it to cap the tokenizer's `max_length`.
    pub fn max_prompt_tokens(&self) -> usize {
        self.identity().max_model_len - 1
    }

    /// Traffic counters.
    pub fn stats(&self) -> RemoteStats {
        let c = &self.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RemoteStats {
            requests_ok: g(&c.requests_ok),
            attempts: g(&c.attempts),
            failures: g(&c.failures),
            prompt_tokens: g(&c.prompt_tokens),
            client_ns: g(&c.client_ns),
            io_ns: g(&c.io_ns),
        }
    }

    /// Checks a request and the prompt it needs: `ids[..=last target]`.
    fn validate<'a>(&self, r: &ScoreRequest<'a>, what: &str) -> Result<&'a [u32], RemoteError> {
        let invalid = |m: String| RemoteError::Config(format!("{what}: {m}"));
        if r.targets.windows(2).any(|w| w[0] >= w[1]) {
            return Err(invalid("targets must be strictly ascending".into()));
        }
        let Some(&last) = r.targets.last() else {
            return Ok(&r.ids[..0]);
        };
        if r.targets[0] == 0 || last >= r.ids.len() {
            return Err(invalid(format!(
                "target positions must lie in 1..{}",
                r.ids.len()
            )));
        }
        if let Some(bad) = r.ids.iter().find(|&&i| i as usize >= self.vocab_size) {
            return Err(invalid(format!(
                "token id {bad} outside the vocabulary of {}",
                self.vocab_size
            )));
        }
        let prompt = &r.ids[..=last];
        if prompt.len() > self.max_prompt_tokens() {
            return Err(RemoteError::TooLong {
                what: what.to_string(),
                needed: prompt.len(),
                max_model_len: self.identity().max_model_len,
            });
        }
        Ok(prompt)
    }

    /// One request on endpoint `e`, with retries. Err(None) when `e` ran out of budget while
    /// retrying: the request goes back to the queue for another endpoint.
    fn run_one(
        &self,
        e: usize,
        prompt: &[u32],
        r: &ScoreRequest<'_>,
        stats: StatsRequest,
        what: &str,
    ) -> Result<PositionLogprobs, Option<RemoteError>> {
        let ep = &self.endpoints[e];
        let c = &self.counters;
        let t0 = Instant::now();
        let body = request_body(
            ep.identity().kind,
            &ep.identity().name,
            prompt,
            self.opts.top_k,
        );
        add(&c.client_ns, t0.elapsed());
        let out = self.fleet.attempt(e, || {
            c.attempts.fetch_add(1, Ordering::Relaxed);
            let t1 = Instant::now();
            let answer = ep.post_score(&body, what);
            add(&c.io_ns, t1.elapsed());
            let t2 = Instant::now();
            let result = answer.and_then(|bytes| {
                parse_response(
                    ep.identity().kind,
                    &bytes,
                    &Extract {
                        ids: prompt,
                        targets: r.targets,
                        k: self.opts.top_k,
                        topk_mean: stats.distribution_stats && self.opts.top_k >= TOPK_MEAN_K,
                        vocab_size: self.vocab_size,
                    },
                )
                .map_err(|message| RemoteError::Protocol {
                    endpoint: ep.url().to_string(),
                    what: what.to_string(),
                    message,
                })
            });
            add(&c.client_ns, t2.elapsed());
            if result.is_err() {
                c.failures.fetch_add(1, Ordering::Relaxed);
            }
            result
        })?;
        c.requests_ok.fetch_add(1, Ordering::Relaxed);
        c.prompt_tokens
            .fetch_add(prompt.len() as u64, Ordering::Relaxed);
        Ok(out)
    }
}

fn describe(i: usize, r: &ScoreRequest<'_>) -> String {
    format!(
        "request {i} ({} tokens, {} targets)",
        r.ids.len(),
        r.targets.len()
    )
}

impl RemoteBackend {
    /// Request `i` on endpoint `e`: validated, then sent with retries.
    fn job(
        &self,
        e: usize,
        i: usize,
        r: &ScoreRequest<'_>,
        stats: StatsRequest,
    ) -> Result<PositionLogprobs, Option<RemoteError>> {
        let what = describe(i, r);
        let prompt = self.validate(r, &what).map_err(Some)?;
        if prompt.is_empty() {
            return Ok(empty(stats, self.opts.top_k));
        }
        self.run_one(e, prompt, r, stats, &what)
    }
}

fn empty(stats: StatsRequest, top_k: usize) -> PositionLogprobs {
    PositionLogprobs {
        logprob: Vec::new(),
        topk_mean: (stats.distribution_stats && top_k >= TOPK_MEAN_K).then(Vec::new),
        entropy: None,
        vocab_mean: None,
    }
}

impl LogprobBackend for RemoteBackend {
    /// The served model's identity, the engine, its context length and k, never the URLs.
    fn fingerprint(&self) -> String {
        let id = self.identity();
        format!(
            "remote;engine={};model={};root={};max_model_len={};top_k={}",
            id.kind, id.name, id.root, id.max_model_len, self.opts.top_k
        )
    }

    fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    fn score(
        &self,
        ids: &[u32],
        targets: &[usize],
        stats: StatsRequest,
    ) -> Result<PositionLogprobs, BackendError> {
        padv_core::score_one(self, ids, targets, stats)
    }

    /// Sends the requests concurrently over the fleet; see the module documentation.
    fn score_batch(
        &self,
        requests: &[ScoreRequest<'_>],
        stats: StatsRequest,
    ) -> Vec<Result<PositionLogprobs, BackendError>> {
        let this = self;
        this.fleet
            .run(
                requests.len(),
                this.opts.concurrency,
                |e, i| this.job(e, i, &requests[i], stats),
                |i, budget, last| RemoteError::BudgetExhausted {
                    what: describe(i, &requests[i]),
                    budget,
                    last,
                },
            )
            .into_iter()
            .map(|r| r.map_err(BackendError::from))
            .collect()
    }
}
