//! `POST /v1/score/candidates`: a history plus K candidate next assistant messages → each
//! candidate's step score per method, and the best candidate.
//!
//! The history is computed once: both models run the token prefix the K sequences share into
//! a KV cache, then all K candidates continue from it in one batched pass (the engine's
//! fan-out, `LocalEngine::score_batch_shared`).
//! With a chat template that rewrites earlier turns (Qwen3 and kin), each candidate is scored
//! in its own turn's context, `render(history, add_generation_prompt)` + the candidate, as
//! `padv score` scores an action; that context is the shared prefix.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use padv_core::score::{Method, PaMode, StepAgg, TokenAgg};
use padv_core::{LogprobRecord, Trajectory};
use padv_engine::pair::score_pairs;
use padv_engine::tokenize::{RenderMode, Tokenized};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ApiError, ApiJson, ApiResult};
use crate::routes::score::params;
use crate::scoring::{chat_trajectory, common_prefix, encode_last_message, pair_error, report};
use crate::state::AppState;

/// Body of `POST /v1/score/candidates`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandidatesRequest {
    /// The conversation so far (OpenAI-style chat messages).
    pub messages: Vec<Value>,
    /// The K candidate next messages; each must have role `assistant`.
    pub candidates: Vec<Value>,
    /// See `ScoreParams`; the first method picks `best`.
    #[serde(default)]
    pub methods: Option<Vec<Method>>,
    /// See `ScoreParams`.
    #[serde(default)]
    pub token_agg: Option<TokenAgg>,
    /// See `ScoreParams` (a candidate is one step, so it matters only for `bottom10`-style
    /// forced aggregations, which reduce to the step value).
    #[serde(default)]
    pub step_agg: Option<StepAgg>,
    /// See `ScoreParams`.
    #[serde(default)]
    pub pa_mode: Option<PaMode>,
    /// See `ScoreParams`.
    #[serde(default)]
    pub beta: Option<f64>,
}

/// One candidate's result.
#[derive(Debug, Serialize)]
pub struct CandidateScore {
    /// Position in the request's `candidates`.
    pub index: usize,
    /// Action tokens of the candidate that were scored.
    pub n_tokens: usize,
    /// Method → the candidate step's score (higher = more likely to succeed). Empty when
    /// the candidate has an `error`.
    pub scores: BTreeMap<String, Option<f64>>,
    /// Why this candidate has no scores (e.g. a NaN log-prob on its tokens): `{"type",
    /// "message"}` as in an error response. The other candidates are still ranked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<CandidateError>,
}

/// The error of one candidate.
#[derive(Debug, Serialize)]
pub struct CandidateError {
    /// Machine-readable kind (`non_finite`, `validation_error`, …).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// What went wrong, naming the model and position or the method.
    pub message: String,
}

/// Response of `POST /v1/score/candidates`.
#[derive(Debug, Serialize)]
pub struct CandidatesResponse {
    /// One entry per candidate, in request order.
    pub candidates: Vec<CandidateScore>,
    /// Index of the candidate with the highest score under the first method (ties: the
    /// lowest index). When no candidate can be scored the request fails with 422 instead.
    pub best: Option<usize>,
    /// Method → index of its best candidate.
    pub best_by_method: BTreeMap<String, Option<usize>>,
    /// Tokens of the shared prefix computed once for all candidates.
    pub shared_prefix_tokens: usize,
}

/// Handler of `POST /v1/score/candidates`.
pub async fn candidates(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CandidatesRequest>,
) -> ApiResult<Json<CandidatesResponse>> {
    let specs = params(
        req.methods,
        req.token_agg,
        req.step_agg,
        req.pa_mode,
        req.beta,
    )
    .specs()?;
    if req.candidates.is_empty() || req.candidates.len() > state.config.max_candidates {
        return Err(ApiError::Validation(format!(
            "candidates: give 1 to {} candidates (--max-candidates), got {}",
            state.config.max_candidates,
            req.candidates.len()
        )));
    }
    let mut trajectories = Vec::with_capacity(req.candidates.len());
    for (k, c) in req.candidates.iter().enumerate() {
        if c.get("role").and_then(Value::as_str) != Some("assistant") {
            return Err(ApiError::Validation(format!(
                "candidates[{k}]: a candidate must be a message with role \"assistant\""
            )));
        }
        let mut msgs = req.messages.clone();
        msgs.push(c.clone());
        trajectories.push(chat_trajectory(&format!("candidate-{k}"), &msgs)?);
    }
    let max_tokens = state.config.max_tokens;
    let metrics = state.metrics.clone();
    let (records, shared) = state
        .run_model(move |m| {
            let tokens = trajectories
                .iter()
                .map(|t| encode_last_message(m, t, max_tokens))
                .collect::<Result<Vec<_>, _>>()?;
            // The candidate is the last message: only its span is scored.
            let cand_targets: Vec<Vec<usize>> = tokens
                .iter()
                .zip(&trajectories)
                .map(|(tk, t)| {
                    let last = t.messages.len() - 1;
                    tk.spans
                        .iter()
                        .filter(|s| s.is_action && s.message_index == last)
                        .flat_map(|s| tk.action_targets(s))
                        .collect()
                })
                .collect();
            // Shared prefix: common to every sequence and before every candidate's first
            // target (cached positions may not be scored again).
            let first = &tokens[0].ids;
            let mut shared = tokens
                .iter()
                .map(|t| common_prefix(first, &t.ids))
                .min()
                .unwrap_or(0);
            for (tk, tg) in tokens.iter().zip(&cand_targets) {
                let limit = tg.first().map_or(tk.ids.len(), |&t| t - 1);
                shared = shared.min(limit);
            }
            // Both models score the K sequences through the pair scorer of `padv score`, one
            // batch per model: the engine's fan-out computes the shared prefix once, then the
            // candidates together. Each candidate's record holds its own step alone, and each
            // fails or succeeds on its own.
            let only: Vec<Tokenized> = tokens
                .iter()
                .zip(&trajectories)
                .map(|(tk, t)| {
                    let last = t.messages.len() - 1;
                    let mut seg = tk.clone();
                    seg.spans.retain(|s| s.message_index == last);
                    Tokenized::from_segments(vec![seg], RenderMode::Single)
                })
                .collect();
            let items: Vec<(&Trajectory, &Tokenized)> = trajectories.iter().zip(&only).collect();
            let records: Vec<ApiResult<LogprobRecord>> =
                score_pairs(&items, &m.policy, &m.reference, None)
                    .into_iter()
                    .map(|r| r.map(|o| o.record).map_err(pair_error))
                    .collect();
            // Positions run through the models: the shared prefix once, then each candidate
            // up to its last target.
            let computed = shared
                + tokens
                    .iter()
                    .zip(&cand_targets)
                    .map(|(tk, tg)| tg.last().map_or(tk.ids.len(), |&l| l + 1) - shared)
                    .sum::<usize>();
            metrics.add_tokens(2 * computed);
            Ok((records, shared))
        })
        .await?;
    let mut out = Vec::with_capacity(records.len());
    let mut first_error = None;
    for (index, r) in records.into_iter().enumerate() {
        match r.and_then(|r| report(&r, &specs)) {
            Ok((steps, _)) => {
                let step = steps.into_iter().next();
                out.push(CandidateScore {
                    index,
                    n_tokens: step.as_ref().map_or(0, |s| s.n_tokens),
                    scores: step.map(|s| s.scores).unwrap_or_default(),
                    error: None,
                });
            }
            Err(e) => {
                let error = CandidateError {
                    kind: e.kind(),
                    message: format!("candidates[{index}]: {e}"),
                };
                out.push(CandidateScore {
                    index,
                    n_tokens: 0,
                    scores: BTreeMap::new(),
                    error: Some(error),
                });
                first_error.get_or_insert((index, e));
            }
        }
    }
    if out.iter().all(|c| c.error.is_some()) {
        if let Some((index, e)) = first_error {
            return Err(match e {
                ApiError::NonFinite(m) => ApiError::NonFinite(format!(
                    "no candidate could be scored; candidates[{index}]: {m}"
                )),
                other => other,
            });
        }
    }
    let mut best_by_method = BTreeMap::new();
    for spec in &specs {
        let name = spec.method.name().to_string();
        let mut best: Option<(usize, f64)> = None;
        for c in &out {
            if let Some(Some(v)) = c.scores.get(&name) {
                if best.is_none_or(|(_, b)| *v > b) {
                    best = Some((c.index, *v));
                }
            }
        }
        best_by_method.insert(name, best.map(|(i, _)| i));
    }
    let best = best_by_method
        .get(specs[0].method.name())
        .copied()
        .flatten();
    Ok(Json(CandidatesResponse {
        candidates: out,
        best,
        best_by_method,
        shared_prefix_tokens: shared,
    }))
}
