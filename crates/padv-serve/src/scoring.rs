//! The model work behind the routes: reading a trajectory from a request, scoring target
//! positions with both models (optionally continuing from KV caches), and turning a
//! [`LogprobRecord`] into per-step and trajectory scores under the requested aggregation.

use std::collections::BTreeMap;
use std::path::Path;

use padv_core::formats::{read_str, Format, ReadOptions};
use padv_core::score::{
    step_scores, trajectory_score, Method, PaMode, ScoreSpec, StepAgg, TokenAgg,
};
use padv_core::{
    LogprobRecord, PositionLogprobs, ScoreRequest, StatsRequest, StepLogprobs, Trajectory,
};
use padv_engine::decoder::KvCache;
use padv_engine::logprobs::EngineError;
use padv_engine::tokenize::{Segment, Tokenized};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::state::Models;

/// How to turn log-probs into scores; every field has a default, so `{}` is valid.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreParams {
    /// Methods to report (default: `pa`, `policy_logprob`, `self_certainty`, `deepconf`,
    /// `neg_entropy`). The first one picks the best candidate.
    #[serde(default = "default_methods")]
    pub methods: Vec<Method>,
    /// Token → step aggregation (default `mean`).
    #[serde(default = "default_token_agg")]
    pub token_agg: TokenAgg,
    /// Step → trajectory aggregation (default `mean`).
    #[serde(default = "default_step_agg")]
    pub step_agg: StepAgg,
    /// PA combination mode (default `diff_of_agg`).
    #[serde(default = "default_pa_mode")]
    pub pa_mode: PaMode,
    /// β of the log-prob methods (default 1.0; must be finite and > 0).
    #[serde(default = "default_beta")]
    pub beta: f64,
}

impl Default for ScoreParams {
    fn default() -> Self {
        ScoreParams {
            methods: default_methods(),
            token_agg: default_token_agg(),
            step_agg: default_step_agg(),
            pa_mode: default_pa_mode(),
            beta: default_beta(),
        }
    }
}

fn default_methods() -> Vec<Method> {
    vec![
        Method::Pa,
        Method::PolicyLogprob,
        Method::SelfCertainty,
        Method::Deepconf,
        Method::NegEntropy,
    ]
}
fn default_token_agg() -> TokenAgg {
    TokenAgg::Mean
}
fn default_step_agg() -> StepAgg {
    StepAgg::Mean
}
fn default_pa_mode() -> PaMode {
    PaMode::DiffOfAgg
}
fn default_beta() -> f64 {
    1.0
}

impl ScoreParams {
    /// One validated spec per method.
    pub fn specs(&self) -> ApiResult<Vec<ScoreSpec>> {
        if self.methods.is_empty() {
            return Err(ApiError::Validation(
                "methods: give at least one method".into(),
            ));
        }
        self.methods
            .iter()
            .map(|&m| {
                ScoreSpec::builder()
                    .method(m)
                    .token_agg(self.token_agg)
                    .step_agg(self.step_agg)
                    .pa_mode(self.pa_mode)
                    .beta(self.beta)
                    .build()
                    .map_err(|e| ApiError::Validation(e.to_string()))
            })
            .collect()
    }
}

/// Scores of one action step: `scores[method]` is `null` where the method skips the step
/// (certainty methods skip steps whose tokens were truncated away).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepReport {
    /// Index of the step's message in the trajectory.
    pub message_index: usize,
    /// Action tokens scored in the step.
    pub n_tokens: usize,
    /// Method name → step score (higher = more likely to succeed).
    pub scores: BTreeMap<String, Option<f64>>,
}

/// Method name → score (`null` where the method has no value).
pub type MethodScores = BTreeMap<String, Option<f64>>;

/// Per-step scores of `record` for every spec, and the trajectory scores. A score that
/// is not finite (β too large for the log-ratios, an infinite log-prob) is
/// [`ApiError::NonFinite`] naming the method and step: never a `null` with 200.
pub fn report(
    record: &LogprobRecord,
    specs: &[ScoreSpec],
) -> ApiResult<(Vec<StepReport>, MethodScores)> {
    let mut steps: Vec<StepReport> = record
        .steps
        .iter()
        .map(|s| StepReport {
            message_index: s.message_index,
            n_tokens: s.policy.len(),
            scores: BTreeMap::new(),
        })
        .collect();
    let mut trajectory = BTreeMap::new();
    for spec in specs {
        let name = spec.method.name().to_string();
        let per_step = step_scores(record, spec).map_err(|e| ApiError::Internal(e.to_string()))?;
        for s in &mut steps {
            let v = per_step
                .iter()
                .find(|(mi, _)| *mi == s.message_index)
                .map(|&(_, v)| v);
            if let Some(x) = v.filter(|x| !x.is_finite()) {
                return Err(non_finite_score(
                    &name,
                    spec,
                    &format!("step (message {})", s.message_index),
                    x,
                ));
            }
            s.scores.insert(name.clone(), v);
        }
        let t = trajectory_score(record, spec).map_err(|e| ApiError::Internal(e.to_string()))?;
        if let Some(x) = t.filter(|x| !x.is_finite()) {
            return Err(non_finite_score(&name, spec, "trajectory", x));
        }
        trajectory.insert(name, t);
    }
    Ok((steps, trajectory))
}

fn non_finite_score(method: &str, spec: &ScoreSpec, what: &str, x: f64) -> ApiError {
    ApiError::NonFinite(format!(
        "method {method}: the {what} score is {x} (beta {}): the log-probs or beta are too \
         large for a finite score",
        spec.beta
    ))
}

/// Reads one trajectory from a request body value, in any format padv reads (detected unless
/// `format` is given). Exactly one trajectory must come out.
pub fn parse_trajectory(value: &Value, format: Option<Format>) -> ApiResult<Trajectory> {
    let text = serde_json::to_string(value).map_err(|e| ApiError::Validation(e.to_string()))?;
    let opts = ReadOptions {
        format,
        strict: true,
        ..ReadOptions::default()
    };
    let report = read_str(Path::new("request"), &text, &opts)
        .map_err(|e| ApiError::Validation(format!("trajectory: {e}")))?;
    let n = report.trajectories.len();
    let mut it = report.trajectories.into_iter();
    match (it.next(), n) {
        (Some(t), 1) => Ok(t),
        _ => Err(ApiError::Validation(format!(
            "trajectory: expected exactly one trajectory, the body holds {n}"
        ))),
    }
}

/// A chat trajectory from OpenAI-style messages (every `assistant` message is an action).
pub fn chat_trajectory(id: &str, messages: &[Value]) -> ApiResult<Trajectory> {
    let doc = serde_json::json!({"id": id, "messages": messages});
    parse_trajectory(&doc, Some(Format::ChatJsonl))
}

/// Tokenises under the service limits: `max_length` left truncation as offline, then the hard
/// `max_tokens` cap on what the models would run (per sequence). A chat template that
/// rewrites earlier turns gives one sequence per action (see `padv_engine::tokenize`).
pub fn encode_any(
    models: &Models,
    t: &Trajectory,
    max_length: usize,
    max_tokens: usize,
) -> ApiResult<Tokenized> {
    let tokenized = models
        .encode(t, max_length)
        .map_err(|e| ApiError::Validation(format!("tokenising: {e}")))?;
    if let Some(n) = tokenized
        .segments
        .iter()
        .map(|s| s.ids.len())
        .find(|&n| n > max_tokens)
    {
        return Err(ApiError::Validation(format!(
            "{n} tokens exceed the server's limit of {max_tokens} (--max-tokens)"
        )));
    }
    Ok(tokenized)
}

/// The token sequence in which the trajectory's **last** message is scored: the one
/// sequence of a template that keeps history, or, for a template that rewrites earlier turns,
/// the last message's own segment (`render(messages[..last], add_generation_prompt)` + its
/// tokens), which is exactly what `padv score` scores it in. K candidates after one history
/// share that segment's prefix, so `/v1/score/candidates` still computes the history once.
pub fn encode_last_message(
    models: &Models,
    t: &Trajectory,
    max_length: usize,
    max_tokens: usize,
) -> ApiResult<Segment> {
    let tokenized = encode_any(models, t, max_length, max_tokens)?;
    let last = t.messages.len().saturating_sub(1);
    let holds_last = |s: &&Segment| {
        s.spans
            .iter()
            .any(|sp| sp.is_action && sp.message_index == last)
    };
    tokenized
        .segments
        .iter()
        .rev()
        .find(holds_last)
        .or(tokenized.segments.last())
        .cloned()
        .ok_or_else(|| ApiError::Validation("the trajectory rendered to no tokens".into()))
}

/// Everything the record needs at one scored position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PosVals {
    /// log π_θ.
    pub policy: f32,
    /// Policy top-20 mean log-prob.
    pub topk_mean: f32,
    /// Policy entropy.
    pub entropy: f32,
    /// Policy vocabulary-mean log-prob.
    pub vocab_mean: f32,
    /// log π_ref.
    pub reference: f32,
}

/// The two models' KV caches of one token prefix.
#[derive(Debug, Clone)]
pub struct PairCache {
    /// Policy cache.
    pub policy: KvCache,
    /// Reference cache.
    pub reference: KvCache,
}

impl PairCache {
    /// Empty storing caches.
    pub fn new(models: &Models) -> Self {
        PairCache {
            policy: models.policy.model().new_cache(),
            reference: models.reference.model().new_cache(),
        }
    }

    /// Positions cached (both caches always hold the same number).
    pub fn seq_len(&self) -> usize {
        self.policy.seq_len()
    }

    /// Keeps the first `len` positions of both caches.
    pub fn truncate(&mut self, len: usize) -> ApiResult<()> {
        self.policy
            .truncate(len)
            .and_then(|_| self.reference.truncate(len))
            .map_err(|e| ApiError::Internal(format!("truncating the KV caches: {e}")))
    }
}

fn engine_err(which: &str) -> impl Fn(EngineError) -> ApiError + '_ {
    move |e| ApiError::from_backend(which, e.into_backend(which))
}

/// Scores `targets` of `ids` with both models, continuing from `cache` (which must hold a
/// prefix of `ids` shorter than the first target) and extending it. The policy computes the
/// distribution statistics, the reference only log-probs, exactly as `score_pair` asks.
pub fn score_targets(
    models: &Models,
    ids: &[u32],
    targets: &[usize],
    cache: &mut PairCache,
) -> ApiResult<Vec<PosVals>> {
    let pol = models
        .policy
        .score_from(
            ids,
            targets,
            StatsRequest {
                distribution_stats: true,
            },
            &mut cache.policy,
        )
        .map_err(engine_err("policy"))?;
    let refr = models
        .reference
        .score_from(ids, targets, StatsRequest::default(), &mut cache.reference)
        .map_err(engine_err("reference"))?;
    merge(pol, refr, targets.len())
}

/// Scores several `(ids, targets)` requests with both models through the engine's batch path,
/// which computes a prefix they share once (see `LocalEngine::score_batch_shared`: K
/// candidates after one history run as one fan-out pass). Returns the values per request and
/// the positions the policy computed. Each request fails or succeeds on its own (a NaN in one
/// candidate is that candidate's error, never its neighbours').
pub fn score_requests(
    models: &Models,
    requests: &[ScoreRequest<'_>],
) -> (Vec<ApiResult<Vec<PosVals>>>, usize) {
    let (pol, cost) = models.policy.score_batch_shared(
        requests,
        StatsRequest {
            distribution_stats: true,
        },
    );
    let (refr, _) = models
        .reference
        .score_batch_shared(requests, StatsRequest::default());
    let out = pol
        .into_iter()
        .zip(refr)
        .zip(requests)
        .map(|((p, r), req)| {
            merge(
                p.map_err(engine_err("policy"))?,
                r.map_err(engine_err("reference"))?,
                req.targets.len(),
            )
        })
        .collect();
    (out, cost.computed_positions)
}

/// The policy's values (with distribution statistics) and the reference's log-probs of `n`
/// positions, per position.
fn merge(pol: PositionLogprobs, refr: PositionLogprobs, n: usize) -> ApiResult<Vec<PosVals>> {
    let (Some(tk), Some(en), Some(vm)) = (&pol.topk_mean, &pol.entropy, &pol.vocab_mean) else {
        return Err(ApiError::Internal(
            "policy returned no distribution statistics".into(),
        ));
    };
    if [
        pol.logprob.len(),
        tk.len(),
        en.len(),
        vm.len(),
        refr.logprob.len(),
    ]
    .iter()
    .any(|&l| l != n)
    {
        return Err(ApiError::Internal(
            "a model returned the wrong number of values".into(),
        ));
    }
    Ok((0..n)
        .map(|i| PosVals {
            policy: pol.logprob[i],
            topk_mean: tk[i],
            entropy: en[i],
            vocab_mean: vm[i],
            reference: refr.logprob[i],
        })
        .collect())
}

/// A log-prob record from per-position values: one step per action span, in order.
/// `vals[t]` must be set for every action target `t`.
pub fn record_from(
    t: &Trajectory,
    tokens: &Segment,
    vals: &[Option<PosVals>],
    vocab_size: usize,
) -> ApiResult<LogprobRecord> {
    let mut steps = Vec::new();
    for span in tokens.spans.iter().filter(|s| s.is_action) {
        let mut s = StepLogprobs {
            message_index: span.message_index,
            reference: Some(Vec::new()),
            policy_topk_mean: Some(Vec::new()),
            policy_entropy: Some(Vec::new()),
            policy_vocab_mean: Some(Vec::new()),
            ..StepLogprobs::default()
        };
        for p in tokens.action_targets(span) {
            let v = vals
                .get(p)
                .copied()
                .flatten()
                .ok_or_else(|| ApiError::Internal(format!("position {p} was not scored")))?;
            s.policy.push(v.policy);
            for (arr, x) in [
                (&mut s.reference, v.reference),
                (&mut s.policy_topk_mean, v.topk_mean),
                (&mut s.policy_entropy, v.entropy),
                (&mut s.policy_vocab_mean, v.vocab_mean),
            ] {
                if let Some(a) = arr {
                    a.push(x);
                }
            }
        }
        steps.push(s);
    }
    Ok(LogprobRecord {
        id: t.id.clone(),
        task_id: t.task_id.clone(),
        label: t.reward,
        mistake_step: t.mistake_step,
        vocab_size: Some(vocab_size),
        steps,
        num_messages: Some(t.messages.len()),
        judges: Default::default(),
    })
}

/// All action target positions of `tokens`, ascending.
pub fn action_targets(tokens: &Segment) -> Vec<usize> {
    tokens.targets()
}

/// Length of the longest common prefix of two id sequences.
pub fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_default_from_empty_object() {
        let p: ScoreParams = serde_json::from_str("{}").unwrap();
        assert_eq!(p, ScoreParams::default());
        assert_eq!(p.specs().unwrap().len(), 5);
    }

    #[test]
    fn params_reject_unknown_fields_and_bad_beta() {
        assert!(serde_json::from_str::<ScoreParams>(r#"{"bta": 1}"#).is_err());
        assert!(serde_json::from_str::<ScoreParams>(r#"{"methods": ["nope"]}"#).is_err());
        let p: ScoreParams = serde_json::from_str(r#"{"beta": -1}"#).unwrap();
        assert!(matches!(p.specs(), Err(ApiError::Validation(_))));
        let p: ScoreParams = serde_json::from_str(r#"{"methods": []}"#).unwrap();
        assert!(matches!(p.specs(), Err(ApiError::Validation(_))));
    }

    #[test]
    fn common_prefix_counts_equal_leading_ids() {
        assert_eq!(common_prefix(&[1, 2, 3], &[1, 2, 4, 5]), 2);
        assert_eq!(common_prefix(&[], &[1]), 0);
        assert_eq!(common_prefix(&[7, 8], &[7, 8]), 2);
    }

    #[test]
    fn parse_trajectory_needs_exactly_one() {
        let one = serde_json::json!({"id": "a", "messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(parse_trajectory(&one, None).unwrap().id, "a");
        let bad = serde_json::json!({"id": "a", "messages": 3});
        assert!(matches!(
            parse_trajectory(&bad, None),
            Err(ApiError::Validation(_))
        ));
    }
}
