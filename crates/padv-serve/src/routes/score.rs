//! `POST /v1/score`: one trajectory → per-step and trajectory scores and the log-prob record.

use axum::extract::State;
use axum::Json;
use padv_core::eval::calibration::{Calibration, CalibrationKind};
use padv_core::formats::Format;
use padv_core::score::{trajectory_score, Method, PaMode, StepAgg, TokenAgg};
use padv_core::LogprobRecord;
use padv_engine::pair::score_pair;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ApiError, ApiJson, ApiResult};
use crate::scoring::{encode_any, pair_error, report, ScoreParams, StepReport};
use crate::state::AppState;

/// Body of `POST /v1/score`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreRequest {
    /// The trajectory, as one record of any format padv reads (a chat JSONL object
    /// `{"id", "messages": [...], "reward"?}`, a Who&When log, a tau2 results file with one
    /// simulation).
    pub trajectory: Value,
    /// Force the format instead of detecting it.
    #[serde(default)]
    pub format: Option<Format>,
    /// Include the per-token log-prob record in the response (default true).
    #[serde(default = "yes")]
    pub include_record: bool,
    /// See [`ScoreParams`].
    #[serde(default)]
    pub methods: Option<Vec<Method>>,
    /// See [`ScoreParams`].
    #[serde(default)]
    pub token_agg: Option<TokenAgg>,
    /// See [`ScoreParams`].
    #[serde(default)]
    pub step_agg: Option<StepAgg>,
    /// See [`ScoreParams`].
    #[serde(default)]
    pub pa_mode: Option<PaMode>,
    /// See [`ScoreParams`].
    #[serde(default)]
    pub beta: Option<f64>,
}

fn yes() -> bool {
    true
}

/// Builds [`ScoreParams`] from the optional top-level fields every scoring request carries.
pub(crate) fn params(
    methods: Option<Vec<Method>>,
    token_agg: Option<TokenAgg>,
    step_agg: Option<StepAgg>,
    pa_mode: Option<PaMode>,
    beta: Option<f64>,
) -> ScoreParams {
    let d = ScoreParams::default();
    ScoreParams {
        methods: methods.unwrap_or(d.methods),
        token_agg: token_agg.unwrap_or(d.token_agg),
        step_agg: step_agg.unwrap_or(d.step_agg),
        pa_mode: pa_mode.unwrap_or(d.pa_mode),
        beta: beta.unwrap_or(d.beta),
    }
}

/// Response of `POST /v1/score`.
#[derive(Debug, Serialize)]
pub struct ScoreResponse {
    /// Trajectory id.
    pub id: String,
    /// Tokens in the (possibly left-truncated) sequence.
    pub n_tokens: usize,
    /// Action tokens scored.
    pub n_action_tokens: usize,
    /// Tokens dropped by `--max-length` left truncation.
    pub truncated_tokens: usize,
    /// One entry per action step.
    pub steps: Vec<StepReport>,
    /// Method → trajectory score under `step_agg` (null when no step remains).
    pub trajectory: std::collections::BTreeMap<String, Option<f64>>,
    /// The per-token record (`padv score`'s records.jsonl line), unless `include_record` is
    /// false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<LogprobRecord>,
    /// With a calibration loaded (`--calibration`): the calibrated cell's raw score and the
    /// probability of success the map gives it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibrated>,
}

/// The calibrated cell's score of a trajectory and its probability of success.
#[derive(Debug, Serialize)]
pub struct Calibrated {
    /// The calibrated method.
    pub method: Method,
    /// The calibrated cell (its aggregations and β, independent of the request's).
    pub cell: String,
    /// `platt` or `isotonic`.
    pub kind: CalibrationKind,
    /// The trajectory's score under the cell (`null` when no step remains).
    pub score: Option<f64>,
    /// The map's probability of success at `score` (`null` exactly when `score` is).
    pub p_success: Option<f64>,
}

/// The calibrated cell's score of `record` and its probability of success.
fn calibrated(cal: &Calibration, record: &LogprobRecord) -> ApiResult<Calibrated> {
    let score = trajectory_score(record, &cal.spec).map_err(|e| {
        ApiError::Internal(format!("scoring the calibrated cell {}: {e}", cal.label))
    })?;
    if let Some(x) = score.filter(|x| !x.is_finite()) {
        return Err(ApiError::NonFinite(format!(
            "the calibrated cell {} scores {x}: not a finite score",
            cal.label
        )));
    }
    Ok(Calibrated {
        method: cal.method,
        cell: cal.label.clone(),
        kind: cal.map.kind(),
        score,
        p_success: score.map(|s| cal.predict(s)),
    })
}

/// Handler of `POST /v1/score`.
pub async fn score(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ScoreRequest>,
) -> ApiResult<Json<ScoreResponse>> {
    let specs = params(
        req.methods,
        req.token_agg,
        req.step_agg,
        req.pa_mode,
        req.beta,
    )
    .specs()?;
    let trajectory = crate::scoring::parse_trajectory(&req.trajectory, req.format)?;
    let max_tokens = state.config.max_tokens;
    let metrics = state.metrics.clone();
    let out = state
        .run_model(move |m| {
            // The served numbers come from the very code path of `padv score`.
            let tokens = encode_any(m, &trajectory, max_tokens)?;
            let out = score_pair(&trajectory, &tokens, &m.policy, &m.reference, None)
                .map_err(pair_error)?;
            metrics.add_tokens(2 * out.n_tokens);
            Ok((tokens.truncated_tokens, out))
        })
        .await?;
    let (truncated_tokens, out) = out;
    let (steps, trajectory) = report(&out.record, &specs)?;
    let calibration = match &state.config.calibration {
        Some(cal) => Some(calibrated(cal, &out.record)?),
        None => None,
    };
    Ok(Json(ScoreResponse {
        id: out.record.id.clone(),
        n_tokens: out.n_tokens,
        n_action_tokens: out.n_targets,
        truncated_tokens,
        steps,
        trajectory,
        record: req.include_record.then_some(out.record),
        calibration,
    }))
}
