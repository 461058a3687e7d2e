//! The demo's evaluation: ground-truth labels, the three evaluations over the whole grid of
//! methods × aggregations, the cross-validated headline row per method, theory and length
//! diagnostics, and the `summary.json` structure.

use std::collections::BTreeMap;
use std::path::Path;

use padv_core::eval::{
    bon_grid, cross_validate_by_method, fa_grid, spearman, uq, uq_grid, BonResult, CvResult,
    FaResult, UqOptions, UqResult,
};
use padv_core::score::{grid, Method, ScoreSpec, ScoreTable};
use padv_core::LogprobRecord;
use serde::Serialize;

use super::{DemoOptions, Labeled};
use crate::agent::{AgentError, Result};
use crate::analysis::{alignment, join_steps, length_correlation, LengthStats};
use crate::episode::{action_message_index, TruthRecord};
use crate::lake::Lake;
use crate::sample::Rollout;
use crate::train::TrainConfig;
use crate::truth::DEFAULT_MISTAKE_THRESHOLD;

/// Wall-clock seconds of the demo's phases.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Timings {
    /// Rolling out the policy and the reference.
    pub rollout_s: f64,
    /// Scoring the policy's trajectories with the pair.
    pub score_s: f64,
    /// Everything.
    pub total_s: f64,
}

/// What [`evaluate`] reads.
pub struct EvalContext<'a> {
    /// Demo options.
    pub opts: &'a DemoOptions,
    /// How the pair was trained (map distribution, β).
    pub train: &'a TrainConfig,
    /// The pair's manifest.
    pub manifest: &'a serde_json::Value,
    /// The evaluated policy checkpoint.
    pub policy_dir: &'a Path,
    /// Policy rollouts with ground truth.
    pub labeled: &'a [Labeled],
    /// Reference rollouts on the same maps.
    pub reference: &'a [Rollout],
    /// Log-prob records of the policy rollouts, in the same order.
    pub records: &'a [LogprobRecord],
    /// Timings so far.
    pub timings: Timings,
}

/// Sets each policy rollout's `mistake_step` from the exact solution and keeps its ground
/// truth (threshold [`DEFAULT_MISTAKE_THRESHOLD`] on −A*).
pub fn label(lakes: &[Lake], rollouts: &mut [Rollout], samples: usize) -> Result<Vec<Labeled>> {
    let mut out = Vec::with_capacity(rollouts.len());
    let mut values = None;
    for (i, r) in rollouts.iter_mut().enumerate() {
        let map = i / samples.max(1);
        let lake = lakes
            .get(map)
            .ok_or_else(|| AgentError::Invalid(format!("rollout {i} has no map")))?;
        if i % samples.max(1) == 0 || values.is_none() {
            values = Some(crate::solver::solve(lake));
        }
        let Some(v) = values.as_ref() else { continue };
        let truth = r.episode.truth(v, DEFAULT_MISTAKE_THRESHOLD);
        r.trajectory.mistake_step = truth.decisive_mistake.map(action_message_index);
        out.push(Labeled {
            advantages: truth.steps.iter().map(|s| s.advantage).collect(),
            v0: truth.v_start,
            truth: TruthRecord::new(&r.episode, truth),
            rollout: r.clone(),
        });
    }
    Ok(out)
}

/// One method's headline numbers.
#[derive(Debug, Clone, Serialize)]
pub struct MethodSummary {
    /// The aggregation cross-validation chose (most often across folds).
    pub headline: String,
    /// UQ of the headline cell on all trajectories, and the honest cross-validated AUROC.
    pub uq: UqHeadline,
    /// Best-of-N with the headline cell.
    pub bon: BonHeadline,
    /// Failure attribution with the headline cell's token aggregation, per predictor.
    pub fa: BTreeMap<String, FaHeadline>,
    /// Spearman of the headline cell's step score with A*(s,a) over all steps.
    pub theory: TheoryHeadline,
    /// Spearman of the trajectory score with the number of steps (a score that only tracks
    /// length would be near ±1).
    pub spearman_with_steps: Option<f64>,
}

/// UQ numbers.
#[derive(Debug, Clone, Serialize)]
pub struct UqHeadline {
    /// AUROC of success prediction (0.5 = chance).
    pub auroc: Option<f64>,
    /// 95% bootstrap interval `[low, high]`.
    pub auroc_ci: Option<[f64; 2]>,
    /// Mean held-out AUROC of the per-fold choice (no selection optimism).
    pub cv_heldout_auroc: Option<f64>,
}

/// Best-of-N numbers.
#[derive(Debug, Clone, Serialize)]
pub struct BonHeadline {
    /// Success rate of the top-scored rollout per map.
    pub bon_success_rate: f64,
    /// Oracle: fraction of maps with at least one success.
    pub pass_at_n_oracle: f64,
    /// Chance: mean success rate (picking at random).
    pub mean_at_n: f64,
}

/// Failure-attribution numbers of one predictor.
#[derive(Debug, Clone, Serialize)]
pub struct FaHeadline {
    /// Exact-step accuracy on failures with a decisive mistake (`None` when there are none).
    pub accuracy: Option<f64>,
    /// Within one step (`None` when there are no such failures).
    pub acc_within_1: Option<f64>,
}

/// Theory numbers.
#[derive(Debug, Clone, Serialize)]
pub struct TheoryHeadline {
    /// Spearman of the step score with the true advantage A*, pooled over all steps.
    pub spearman_pa_vs_true_advantage: Option<f64>,
    /// Mean within-trajectory Spearman (trajectories with ≥ 3 steps where both vary).
    pub spearman_within_trajectory: Option<f64>,
}

/// The demo's `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    /// What was run.
    pub setup: serde_json::Value,
    /// Success rates on the held-out maps.
    pub success: serde_json::Value,
    /// Ground-truth label counts.
    pub ground_truth: serde_json::Value,
    /// Lengths of actions and trajectories.
    pub lengths: serde_json::Value,
    /// Per method, the headline row.
    pub methods: BTreeMap<String, MethodSummary>,
    /// Trivial baselines and chance levels.
    pub priors: serde_json::Value,
    /// Exact step PA (β·Σ over the action's tokens of log π/π_ref) vs A*.
    pub theory: serde_json::Value,
    /// Timings.
    pub timings: Timings,
}

fn rate(xs: impl Iterator<Item = bool>) -> f64 {
    let (mut k, mut n) = (0usize, 0usize);
    for x in xs {
        k += x as usize;
        n += 1;
    }
    k as f64 / n.max(1) as f64
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len().max(1) as f64
}

fn most_chosen(cv: &CvResult) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &cv.choices {
        *counts.entry(c.chosen.as_str()).or_default() += 1;
    }
    let best = counts.values().copied().max()?;
    // Ties: the first fold's choice among the most frequent.
    cv.choices
        .iter()
        .find(|c| counts[c.chosen.as_str()] == best)
        .map(|c| c.chosen.clone())
}

/// Runs every evaluation and assembles the summary.
pub fn evaluate(cx: &EvalContext) -> Result<DemoSummary> {
    let bad = |e: &dyn std::fmt::Display| AgentError::Invalid(format!("evaluation: {e}"));
    let table = ScoreTable::precompute(cx.records).map_err(|e| bad(&e))?;
    let beta = cx.train.beta;
    let uq_opts = UqOptions {
        n_boot: cx.opts.bootstrap,
        seed: cx.opts.seed,
        folds: cx.opts.folds,
        ..UqOptions::default()
    };
    let methods = [
        Method::Pa,
        Method::PolicyLogprob,
        Method::NegEntropy,
        Method::SelfCertainty,
        Method::Deepconf,
        Method::DeepconfTail,
        Method::DeepconfBottom10,
    ];
    let specs: Vec<ScoreSpec> = grid(&methods)
        .into_iter()
        .map(|s| ScoreSpec { beta, ..s })
        .filter(|s| table.scorer(s).is_ok())
        .collect();
    let uq_rows = uq_grid(&table, &specs, &uq_opts).map_err(|e| bad(&e))?;
    let cv = cross_validate_by_method(&uq_rows);
    let bon_rows = bon_grid(&table, &specs).map_err(|e| bad(&e))?;
    let fa_rows = fa_grid(&table, &specs).map_err(|e| bad(&e))?;
    write_grid(cx.opts, "eval-uq.json", &uq_rows, Some(&cv))?;
    write_grid(cx.opts, "eval-bon.json", &bon_rows, None::<&()>)?;
    write_grid(cx.opts, "eval-fa.json", &fa_rows, None::<&()>)?;

    let steps: Vec<f64> = cx
        .labeled
        .iter()
        .map(|l| l.advantages.len() as f64)
        .collect();
    let steps_n: Vec<usize> = cx.labeled.iter().map(|l| l.advantages.len()).collect();
    let truths: Vec<TruthRecord> = cx.labeled.iter().map(|l| l.truth.clone()).collect();
    let mut methods_out = BTreeMap::new();
    for c in &cv {
        let Some(headline) = most_chosen(c) else {
            continue;
        };
        let Some(u) = uq_rows.iter().find(|r| r.label == headline) else {
            continue;
        };
        let scorer = table.scorer(&u.spec).map_err(|e| bad(&e))?;
        let traj_scores = scorer.trajectory_scores();
        let len_corr = length_correlation(&traj_scores, &steps_n);
        let step_scores: Vec<(String, Vec<(usize, f64)>)> = (0..table.len())
            .map(|r| (table.ids()[r].clone(), scorer.step_scores(r)))
            .collect();
        let al = alignment(&join_steps(&step_scores, &truths)?);
        let bon = bon_rows
            .iter()
            .find(|r| r.label == headline)
            .map(|r| bon_headline(&r.result));
        let fa = fa_rows
            .iter()
            .find(|r| r.label == headline)
            .map(|r| fa_headline(&r.result));
        methods_out.insert(
            c.group.clone(),
            MethodSummary {
                headline: headline.clone(),
                uq: UqHeadline {
                    auroc: u.result.auroc,
                    auroc_ci: u.result.auroc_ci.as_ref().map(|ci| [ci.low, ci.high]),
                    cv_heldout_auroc: c.mean_heldout_auroc,
                },
                bon: bon.ok_or_else(|| bad(&format!("no best-of-N row {headline}")))?,
                fa: fa.unwrap_or_default(),
                theory: TheoryHeadline {
                    spearman_pa_vs_true_advantage: al.spearman_pooled,
                    spearman_within_trajectory: al.spearman_within_mean,
                },
                spearman_with_steps: len_corr,
            },
        );
    }

    Ok(DemoSummary {
        setup: setup(cx),
        success: success(cx),
        ground_truth: ground_truth(cx),
        lengths: lengths(cx, &steps),
        methods: methods_out,
        priors: priors(cx, &table, &steps, &uq_opts, &fa_rows)?,
        theory: theory(cx, beta, &truths)?,
        timings: cx.timings,
    })
}

fn bon_headline(r: &BonResult) -> BonHeadline {
    BonHeadline {
        bon_success_rate: r.bon_success_rate,
        pass_at_n_oracle: r.pass_at_n_oracle,
        mean_at_n: r.mean_at_n,
    }
}

fn fa_headline(r: &FaResult) -> BTreeMap<String, FaHeadline> {
    r.rows
        .iter()
        .map(|m| {
            (
                m.predictor.clone(),
                FaHeadline {
                    accuracy: m.accuracy,
                    acc_within_1: m.acc_within_1,
                },
            )
        })
        .collect()
}

fn write_grid<T: Serialize, C: Serialize>(
    opts: &DemoOptions,
    name: &str,
    rows: &T,
    cv: Option<&C>,
) -> Result<()> {
    let path = opts.out.join(name);
    let v = serde_json::json!({ "cross_validated": cv, "rows": rows });
    crate::agent::write_json(&path, &v)
}

fn setup(cx: &EvalContext) -> serde_json::Value {
    let l = &cx.train.lake;
    serde_json::json!({
        "pair": cx.opts.pair,
        "policy": cx.policy_dir,
        "held_out_maps": cx.opts.maps,
        "samples_per_map": cx.opts.samples,
        "seed": cx.opts.seed,
        "map_size": l.size,
        "slip": l.slip,
        "hole_fraction": l.hole_fraction,
        "max_steps": l.max_steps,
        "beta": cx.train.beta,
        "held_out": "map seeds heldout_map_seed(seed, i) have bit 62 set; training map seeds have it clear",
        "sampling": "temperature 1, actions restricted to the alphabet plus end-of-turn, at most 16 tokens",
        "pair_training": cx.manifest.get("config"),
    })
}

fn success(cx: &EvalContext) -> serde_json::Value {
    let policy = rate(cx.labeled.iter().map(|l| l.rollout.reward > 0.0));
    let reference = rate(cx.reference.iter().map(|r| r.reward > 0.0));
    let v0: Vec<f64> = cx
        .labeled
        .iter()
        .step_by(cx.opts.samples.max(1))
        .map(|l| l.v0)
        .collect();
    serde_json::json!({
        "policy": policy,
        "reference": reference,
        "optimal_mean_v_star": mean(&v0),
        "policy_rollouts": cx.labeled.len(),
        "reference_rollouts": cx.reference.len(),
    })
}

fn ground_truth(cx: &EvalContext) -> serde_json::Value {
    let failures = cx
        .labeled
        .iter()
        .filter(|l| l.rollout.reward <= 0.0)
        .count();
    let with_mistake = cx
        .labeled
        .iter()
        .filter(|l| l.rollout.trajectory.mistake_step.is_some())
        .count();
    serde_json::json!({
        "failures": failures,
        "failures_with_decisive_mistake": with_mistake,
        "failures_bad_luck_only": failures - with_mistake,
        "decisive_mistake_threshold": DEFAULT_MISTAKE_THRESHOLD,
        "decisive_mistake_rule": "failed episode: the step with the most negative A*(s,a), if A* < -threshold; otherwise the failure was bad luck only",
    })
}

fn lengths(cx: &EvalContext, steps: &[f64]) -> serde_json::Value {
    let action_tokens: Vec<f64> = cx
        .records
        .iter()
        .flat_map(|r| r.steps.iter().map(|s| s.len() as f64))
        .collect();
    let tokens: Vec<f64> = cx
        .labeled
        .iter()
        .map(|l| l.rollout.tokens.ids.len() as f64)
        .collect();
    let success: Vec<f64> = cx
        .labeled
        .iter()
        .map(|l| if l.rollout.reward > 0.0 { 1.0 } else { 0.0 })
        .collect();
    serde_json::json!({
        "records": LengthStats::of(cx.records),
        "mean_steps": mean(steps),
        "max_steps": steps.iter().copied().fold(0.0, f64::max),
        "mean_action_tokens": mean(&action_tokens),
        "mean_trajectory_tokens": mean(&tokens),
        "spearman_success_with_steps": spearman(&success, steps).ok(),
    })
}

fn priors(
    cx: &EvalContext,
    table: &ScoreTable,
    steps: &[f64],
    uq_opts: &UqOptions,
    fa_rows: &[padv_core::eval::FaRow],
) -> Result<serde_json::Value> {
    let neg_steps: Vec<Option<f64>> = steps.iter().map(|s| Some(-s)).collect();
    let by_length: UqResult = uq(&neg_steps, table.labels(), uq_opts)
        .map_err(|e| AgentError::Invalid(format!("evaluation: {e}")))?;
    let (n_fa, most_common) = fa_rows
        .first()
        .map(|r| (r.result.n, r.result.most_common_step))
        .unwrap_or((0, None));
    let hits = cx
        .labeled
        .iter()
        .filter(|l| l.rollout.trajectory.mistake_step.is_some())
        .filter(|l| l.rollout.trajectory.mistake_step == most_common)
        .count();
    let first = cx
        .labeled
        .iter()
        .filter(|l| l.rollout.trajectory.mistake_step == Some(1))
        .count();
    let last = cx
        .labeled
        .iter()
        .filter(|l| {
            let m = l.rollout.trajectory.mistake_step;
            m.is_some() && m == Some(2 * l.advantages.len().saturating_sub(1) + 1)
        })
        .count();
    Ok(serde_json::json!({
        "uq_chance_auroc": 0.5,
        "uq_fewer_steps_auroc": by_length.auroc,
        "uq_fewer_steps_auroc_ci": by_length.auroc_ci.map(|c| [c.low, c.high]),
        "fa_most_common_step": most_common,
        "fa_most_common_step_accuracy": hits as f64 / n_fa.max(1) as f64,
        "fa_first_step_accuracy": first as f64 / n_fa.max(1) as f64,
        "fa_last_step_accuracy": last as f64 / n_fa.max(1) as f64,
        "fa_labelled_failures": n_fa,
    }))
}

fn theory(cx: &EvalContext, beta: f64, truths: &[TruthRecord]) -> Result<serde_json::Value> {
    // Exact action-level PA: β·Σ_tokens (log π − log π_ref) = β·log π(a|h)/π_ref(a|h).
    let steps: Vec<(String, Vec<(usize, f64)>)> = cx
        .records
        .iter()
        .map(|r| {
            let s = r
                .steps
                .iter()
                .map(|s| {
                    let lr: f64 = match &s.reference {
                        Some(q) => s.policy.iter().zip(q).map(|(p, q)| (*p - *q) as f64).sum(),
                        None => f64::NAN,
                    };
                    (s.message_index, beta * lr)
                })
                .collect();
            (r.id.clone(), s)
        })
        .collect();
    let pairs = join_steps(&steps, truths)?;
    let al = alignment(&pairs);
    let pa: Vec<f64> = pairs.iter().map(|p| p.score).collect();
    let adv: Vec<f64> = pairs.iter().map(|p| p.advantage).collect();
    Ok(serde_json::json!({
        "step_pa": "beta * sum over the action's tokens of (log pi - log pi_ref)",
        "alignment": al,
        "spearman_step_pa_vs_true_advantage": al.spearman_pooled,
        "mean_step_pa": mean(&pa),
        "mean_true_advantage": mean(&adv),
    }))
}
