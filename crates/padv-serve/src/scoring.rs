//! The model work behind the routes: reading a trajectory from a request, scoring target
//! positions with both models (optionally continuing from KV caches), and turning a
//! [`LogprobRecord`] into per-step and trajectory scores under the requested aggregation.

use std::collections::BTreeMap;
use std::path::Path;

use padv_core::formats::{read_str, Format, ReadOptions};
use padv_core::score::{
    step_scores, trajectory_score, Method, PaMode, ScoreSpec, StepAgg, TokenAgg,
};
use padv_core::{LogprobBackend, LogprobRecord, PositionLogprobs, StatsRequest, Trajectory};
use padv_engine::decoder::KvCache;
use padv_engine::logprobs::EngineError;
use padv_engine::pair::PairError;
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

/// Tokenises with the server's [`padv_engine::tokenize::Rendering`] (the renderer,
/// chat-template flags and `--max-length` left truncation of `padv score`), then applies the
/// hard `max_tokens` cap on what the models would run (per sequence). A chat template that
/// rewrites earlier turns gives one sequence per action (see `padv_engine::tokenize`).
pub fn encode_any(models: &Models, t: &Trajectory, max_tokens: usize) -> ApiResult<Tokenized> {
    let tokenized = models
        .encode(t)
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
    max_tokens: usize,
) -> ApiResult<Segment> {
    let tokenized = encode_any(models, t, max_tokens)?;
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

/// A scoring failure of the library's pair scorer as the server's error: a backend cause keeps
/// its own status, a non-finite value is 422 naming model, message and position.
pub fn pair_error(e: PairError) -> ApiError {
    match e {
        PairError::Backend { which, source, .. } => ApiError::from_backend(which, source),
        e @ PairError::NonFinite { .. } => ApiError::NonFinite(e.to_string()),
        other => ApiError::Internal(other.to_string()),
    }
}

/// The record of `t` from values a session computed itself (continuing from KV caches):
/// `padv_engine::pair::build_record`, the record builder of `padv score`.
pub fn build_record(
    models: &Models,
    t: &Trajectory,
    tokens: &Tokenized,
    policy: &PositionLogprobs,
    reference: &PositionLogprobs,
) -> ApiResult<LogprobRecord> {
    padv_engine::pair::build_record(t, tokens, policy, reference, models.policy.vocab_size())
        .map_err(pair_error)
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
/// distribution statistics, the reference only log-probs, exactly as the pair scorer asks.
pub fn score_targets(
    models: &Models,
    ids: &[u32],
    targets: &[usize],
    cache: &mut PairCache,
) -> ApiResult<(PositionLogprobs, PositionLogprobs)> {
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
    Ok((pol, refr))
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
