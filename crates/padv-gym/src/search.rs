//! Step-level guided search: at every step the agent samples K candidate next actions from
//! the policy, a chooser scores them, and the environment executes the chosen one.
//!
//! This is test-time scaling at the granularity progress advantage is defined at: PA scores
//! an *action*, so it can pick among actions before any is executed, where best-of-N over
//! whole trajectories can only pick among finished (already executed) episodes.
//!
//! **Shared history.** The K candidates of a step continue one history. Its keys and values
//! are computed once per model and kept across steps (a one-row [`KvCache`] per model and
//! episode, extended by each step's new tokens); for a decision the cache is broadcast into K
//! rows ([`KvCache::repeat_rows`]) and the policy samples the K candidates in lockstep. The
//! reference scores all K through the engine's fan-out from its history cache
//! ([`LocalEngine::score_continuations`], the batching `padv score` runs for requests that
//! share a prefix), so the candidates' numbers come from the scoring path itself.
//!
//! **The numbers a chooser sees** are the ones `padv score` computes for the executed
//! action: the sum over the action's tokens (end-of-turn included) of the policy's and the
//! reference's log-probs under the full temperature-1 distribution. A test checks the chosen
//! actions' numbers against the scoring pipeline run on the finished trajectory.

pub mod eval;

use candle_core::{Device, Tensor};
use padv_core::{ScoreRequest, StatsRequest};
use padv_engine::decoder::{DecoderModel, KvCache};
use padv_engine::logprobs::{LocalEngine, DEFAULT_CHUNK_ROWS};
use rayon::prelude::*;
use serde::Serialize;

use crate::agent::{ctx, AgentError, Result};
use crate::lake::Action;
use crate::protocol::parse_action;
use crate::sample::{finish_action, finish_row, Job, Rollout, Row};
use crate::sample::{SampleConfig, Sampler};
use crate::solver::Values;

/// How a step's candidate is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Chooser {
    /// The first candidate: plain sampling (use with K = 1).
    Sample,
    /// The highest progress advantage β · log π(a|h) / π_ref(a|h).
    Pa,
    /// The highest policy log-prob log π(a|h).
    Logprob,
    /// The highest true advantage A*(s, a) from the exact solver: the ceiling of any
    /// step-level chooser with these K candidates (not available to a real agent).
    Oracle,
}

impl Chooser {
    /// Snake-case name.
    pub fn name(self) -> &'static str {
        match self {
            Chooser::Sample => "sample",
            Chooser::Pa => "pa",
            Chooser::Logprob => "logprob",
            Chooser::Oracle => "oracle",
        }
    }
}

/// Settings of a guided episode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchConfig {
    /// Candidates per step (≥ 1).
    pub k: usize,
    /// β of the PA chooser (only scales PA; the argmax does not depend on it).
    pub beta: f64,
    /// Sampling of each candidate.
    pub sample: SampleConfig,
}

/// One step's candidates and the choice among them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// Index of the executed candidate.
    pub chosen: usize,
    /// Per candidate: tokens sampled (end-of-turn included).
    pub tokens: Vec<usize>,
    /// Per candidate: Σ log π over its tokens.
    pub logprob: Vec<f64>,
    /// Per candidate: Σ log π_ref over its tokens.
    pub ref_logprob: Vec<f64>,
    /// Per candidate: A*(s, a) of the action its text parses to.
    pub advantage: Vec<f64>,
}

impl Decision {
    /// PA of candidate `i` with coefficient `beta`.
    pub fn pa(&self, i: usize, beta: f64) -> f64 {
        beta * (self.logprob[i] - self.ref_logprob[i])
    }

    /// Whether the candidates differ in A* (more than 1e-9): a choice that matters.
    pub fn contested(&self) -> bool {
        let (lo, hi) = min_max(&self.advantage);
        hi - lo > 1e-9
    }

    /// Share of the candidates with the best A*: a random pick's chance of the best.
    pub fn best_share(&self) -> f64 {
        let (_, hi) = min_max(&self.advantage);
        self.advantage.iter().filter(|&&a| a >= hi - 1e-9).count() as f64
            / self.advantage.len() as f64
    }

    /// max A* − A* of the chosen candidate.
    pub fn regret(&self) -> f64 {
        min_max(&self.advantage).1 - self.advantage[self.chosen]
    }

    /// max A* − mean A*: a uniformly random pick's expected regret.
    pub fn random_regret(&self) -> f64 {
        min_max(&self.advantage).1
            - self.advantage.iter().sum::<f64>() / self.advantage.len() as f64
    }

    /// Whether the chosen candidate has the best A* among the candidates.
    pub fn chose_best(&self) -> bool {
        let (_, hi) = min_max(&self.advantage);
        self.advantage[self.chosen] >= hi - 1e-9
    }
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// A guided episode.
#[derive(Debug, Clone)]
pub struct SearchRollout {
    /// The executed episode, checked against the scorer's tokenisation like any rollout.
    pub rollout: Rollout,
    /// One decision per executed action.
    pub decisions: Vec<Decision>,
}

impl SearchRollout {
    /// Whether the episode reached the goal.
    pub fn success(&self) -> bool {
        self.rollout.reward > 0.0
    }

    /// The executed actions' PA, one per step.
    pub fn step_pa(&self, beta: f64) -> Vec<f64> {
        self.decisions
            .iter()
            .map(|d| d.pa(d.chosen, beta))
            .collect()
    }

    /// The executed actions' policy log-probs, one per step.
    pub fn step_logprob(&self) -> Vec<f64> {
        self.decisions.iter().map(|d| d.logprob[d.chosen]).collect()
    }

    /// Candidates sampled over the episode.
    pub fn sampled_actions(&self) -> usize {
        self.decisions.iter().map(|d| d.tokens.len()).sum()
    }

    /// Tokens sampled over the episode, all candidates included.
    pub fn sampled_tokens(&self) -> usize {
        self.decisions
            .iter()
            .map(|d| d.tokens.iter().sum::<usize>())
            .sum()
    }
}

/// Plays every job with `chooser` (episodes in parallel, each deterministic for its seed).
/// `values[i]` is the exact solution of `jobs[i].lake` (read by the oracle and recorded for
/// every chooser).
pub fn search_batch(
    policy: &DecoderModel,
    reference: &DecoderModel,
    sampler: &Sampler,
    jobs: &[Job],
    values: &[&Values],
    chooser: Chooser,
    cfg: &SearchConfig,
) -> Result<Vec<SearchRollout>> {
    if jobs.len() != values.len() {
        return Err(AgentError::Invalid(format!(
            "{} jobs but {} solved maps",
            jobs.len(),
            values.len()
        )));
    }
    // The reference is scored by the engine (its fan-out from each episode's history cache).
    let reference = LocalEngine::from_model(
        reference.clone(),
        "gym guided-search reference (in memory, not cached)".into(),
        DEFAULT_CHUNK_ROWS,
    );
    jobs.par_iter()
        .zip(values.par_iter())
        .map(|(job, v)| search_episode(policy, &reference, sampler, job, v, chooser, cfg))
        .collect()
}

/// One candidate action being sampled.
#[derive(Debug, Default, Clone)]
struct Candidate {
    /// Sampled ids, end-of-turn last once done.
    ids: Vec<u32>,
    /// Per id: log π under the full temperature-1 distribution.
    token_logprob: Vec<f32>,
    /// Whether the end-of-turn was forced by the length limit.
    forced: bool,
    done: bool,
}

/// Plays one episode of `job`, choosing among `cfg.k` candidates at every step.
pub fn search_episode(
    policy: &DecoderModel,
    reference: &LocalEngine,
    sampler: &Sampler,
    job: &Job,
    values: &Values,
    chooser: Chooser,
    cfg: &SearchConfig,
) -> Result<SearchRollout> {
    if cfg.k == 0 {
        return Err(AgentError::Invalid(format!(
            "guided search needs k ≥ 1, got {cfg:?}"
        )));
    }
    cfg.sample.validate()?;
    let mut row = Row::new(job, sampler)?;
    let mut policy_cache = policy.new_cache();
    let mut reference_cache = reference.model().new_cache();
    // The caches hold every known id but the last, which each decision feeds first.
    let n = row.ids.len();
    extend(policy, &mut policy_cache, &row.ids[..n - 1])?;
    extend(reference.model(), &mut reference_cache, &row.ids[..n - 1])?;
    let mut decisions = Vec::new();
    while !row.done {
        let n = row.ids.len();
        let last = row.ids[n - 1];
        let cands = sample_candidates(policy, &policy_cache, last, sampler, cfg, &mut row)?;
        let ref_logprob = reference_logprobs(reference, &reference_cache, &row.ids, &cands)?;
        let mut advantage = Vec::with_capacity(cands.len());
        for c in &cands {
            let text = sampler.decode(&c.ids[..c.ids.len() - 1])?;
            let action: Action = parse_action(&text, sampler.style());
            advantage.push(values.advantage(row.state, action));
        }
        let logprob: Vec<f64> = cands
            .iter()
            .map(|c| c.token_logprob.iter().map(|&x| x as f64).sum())
            .collect();
        let mut decision = Decision {
            chosen: 0,
            tokens: cands.iter().map(|c| c.ids.len()).collect(),
            logprob,
            ref_logprob,
            advantage,
        };
        decision.chosen = choose(&decision, chooser, cfg.beta);
        let c = &cands[decision.chosen];
        let end = c.ids.len() - 1;
        for (i, (&id, &lp)) in c.ids.iter().zip(&c.token_logprob).enumerate() {
            row.ids.push(id);
            row.sampled.push(true);
            row.forced.push(i == end && c.forced);
            row.logprob.push(lp);
        }
        row.action = c.ids[..end].to_vec();
        finish_action(&mut row, sampler)?;
        decisions.push(decision);
        if !row.done {
            let m = row.ids.len();
            extend(policy, &mut policy_cache, &row.ids[n - 1..m - 1])?;
            extend(
                reference.model(),
                &mut reference_cache,
                &row.ids[n - 1..m - 1],
            )?;
        }
    }
    Ok(SearchRollout {
        rollout: finish_row(row, sampler)?,
        decisions,
    })
}

/// The first candidate with the highest score (ties to the earliest, so K = 1 and ties are
/// deterministic).
fn choose(d: &Decision, chooser: Chooser, beta: f64) -> usize {
    let score = |i: usize| match chooser {
        Chooser::Sample => 0.0,
        Chooser::Pa => d.pa(i, beta),
        Chooser::Logprob => d.logprob[i],
        Chooser::Oracle => d.advantage[i],
    };
    (1..d.tokens.len()).fold(0, |best, i| if score(i) > score(best) { i } else { best })
}

/// Feeds `ids` to a one-row cache.
fn extend(model: &DecoderModel, cache: &mut KvCache, ids: &[u32]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let offset = cache.seq_len();
    let t =
        Tensor::from_vec(ids.to_vec(), (1, ids.len()), &Device::Cpu).map_err(ctx("history ids"))?;
    // Only the keys and values are wanted; the last row keeps the last layer's work small.
    model
        .forward_rows(&t, offset, cache, &[ids.len() - 1], offset + ids.len())
        .map_err(ctx(format!("history forward at {offset}")))?;
    Ok(())
}

/// Samples `cfg.k` candidate actions after the history in `cache` (+ `last`), in lockstep.
fn sample_candidates(
    policy: &DecoderModel,
    cache: &KvCache,
    last: u32,
    sampler: &Sampler,
    cfg: &SearchConfig,
    row: &mut Row,
) -> Result<Vec<Candidate>> {
    let k = cfg.k;
    let mut cache = cache
        .repeat_rows(k)
        .map_err(ctx("copying the history cache"))?;
    let vocab = policy.config().vocab_size;
    let mut cands = vec![Candidate::default(); k];
    let mut input = vec![last; k];
    while cands.iter().any(|c| !c.done) {
        let pos = cache.seq_len();
        let ids =
            Tensor::from_vec(input.clone(), (k, 1), &Device::Cpu).map_err(ctx("candidate ids"))?;
        let hidden = policy
            .forward(&ids, pos, &mut cache)
            .map_err(ctx(format!("candidate forward at {pos}")))?;
        let logits = policy
            .logits(&hidden)
            .and_then(|l| l.reshape((k, vocab)))
            .and_then(|l| l.to_vec2::<f32>())
            .map_err(ctx("candidate logits"))?;
        for ((c, logits), next) in cands.iter_mut().zip(&logits).zip(input.iter_mut()) {
            if c.done {
                *next = sampler.pad_id();
                continue;
            }
            let (id, lp, forced) =
                sampler.next_action_token(logits, &c.ids, &cfg.sample, &mut row.sample_rng);
            c.ids.push(id);
            c.token_logprob.push(lp);
            if id == sampler.end_id() {
                c.done = true;
                c.forced = forced;
            }
            *next = id;
        }
    }
    Ok(cands)
}

/// Σ log π_ref of each candidate's tokens (end-of-turn included) after the history: `ids`
/// (its last id not yet in `cache`, which holds every other), through the engine's fan-out.
fn reference_logprobs(
    reference: &LocalEngine,
    cache: &KvCache,
    ids: &[u32],
    cands: &[Candidate],
) -> Result<Vec<f64>> {
    let seqs: Vec<Vec<u32>> = cands
        .iter()
        .map(|c| ids.iter().chain(&c.ids).copied().collect())
        .collect();
    let targets: Vec<Vec<usize>> = seqs
        .iter()
        .map(|s| (ids.len()..s.len()).collect())
        .collect();
    let reqs: Vec<ScoreRequest<'_>> = seqs
        .iter()
        .zip(&targets)
        .map(|(s, t)| ScoreRequest { ids: s, targets: t })
        .collect();
    let scored = reference
        .score_continuations(cache, &reqs, StatsRequest::default())
        .map_err(|e| AgentError::Invalid(format!("reference over the candidates: {e}")))?;
    scored
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.map(|p| p.logprob.iter().map(|&x| x as f64).sum())
                .map_err(|e| AgentError::Invalid(format!("reference over candidate {i}: {e}")))
        })
        .collect()
}
