//! The demo's evaluation: ground-truth labels, the three applications per player through
//! `padv_core::eval::evaluate` (each choosing its own headline cell by cross-validation),
//! the theory metrics, and the `summary.json` structure.

use std::collections::BTreeMap;
use std::path::Path;

use padv_core::eval::{evaluate, spearman, uq, EvalConfig, EvalKind, EvalReport, UqOptions};
use padv_core::score::{Method, ScoreSpec, ScoreTable};
use serde::Serialize;

use super::{DemoOptions, Labeled, Player, PlayerRun, Timings};
use crate::agent::{AgentError, Result};
use crate::analysis::{alignment, join_steps_with, Alignment, Truth};
use crate::episode::{action_message_index, TruthRecord};
use crate::lake::Lake;
use crate::oracle::{MapTruth, ProjectionCost, ProjectionGap, StepSoft};
use crate::sample::Rollout;
use crate::train::TrainConfig;
use crate::truth::DEFAULT_MISTAKE_THRESHOLD;

/// The methods every player is evaluated with.
pub const METHODS: [Method; 8] = [
    Method::Pa,
    Method::PolicyLogprob,
    Method::ReferenceLogprob,
    Method::NegEntropy,
    Method::SelfCertainty,
    Method::Deepconf,
    Method::DeepconfTail,
    Method::DeepconfBottom10,
];

/// What [`summarise`] reads besides the players' runs.
pub struct EvalContext<'a> {
    /// Demo options.
    pub opts: &'a DemoOptions,
    /// How the pair was trained (map distribution, style, β).
    pub train: &'a TrainConfig,
    /// The pair's manifest.
    pub manifest: &'a serde_json::Value,
    /// The evaluated policy checkpoint.
    pub policy_dir: &'a Path,
    /// What the projection cost.
    pub projection: ProjectionCost,
    /// Per held-out map, the projected reference and soft values.
    pub maps: &'a [MapTruth],
    /// The policy's numbers came from the reference's pass: the two are the same function
    /// (same weights byte for byte, same config, dtype and device).
    pub policy_scored_by_reference: bool,
}

/// Sets each rollout's `mistake_step` from the exact (hard) solution and keeps its ground
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

/// A method's headline in one application.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Headline {
    /// The cell cross-validation chose (most often across folds), `method/token/step`.
    pub cell: String,
    /// FA only: the predictor chosen with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predictor: Option<String>,
    /// The honest, cross-validated estimate (UQ: AUROC; BoN: success rate; FA: accuracy).
    pub cv: Option<f64>,
    /// Its 95 % bootstrap interval (UQ: of the chosen cell's AUROC on all records).
    pub ci: Option<[f64; 2]>,
    /// The chosen cell on all records (optimistic: tuned on them).
    pub all: Option<f64>,
    /// FA only: the prior the chosen predictor coincides with on every record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub same_as_prior: Option<String>,
}

/// One method's row of a player's table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodRow {
    /// Uncertainty quantification (AUROC).
    pub uq: Headline,
    /// Best-of-N (success of the top-scored rollout per map).
    pub bon: Headline,
    /// Failure attribution (exact-step accuracy on failures with a decisive mistake).
    pub fa: Headline,
    /// Spearman of the step score (token aggregation of the FA headline cell) with the soft
    /// advantage `A_h`, pooled over steps.
    pub rho_soft: Option<f64>,
    /// The same with the hard advantage `A*`.
    pub rho_hard: Option<f64>,
}

/// One player's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlayerSummary {
    /// What the player is.
    pub what: String,
    /// Success rate on the held-out maps.
    pub success: f64,
    /// Rollouts.
    pub rollouts: usize,
    /// Action steps.
    pub steps: usize,
    /// Failures, and those with a decisive mistake (FA's records).
    pub failures: usize,
    /// Failures whose decisive mistake gave away more than the threshold.
    pub failures_with_mistake: usize,
    /// Mean tokens per action.
    pub mean_action_tokens: f64,
    /// Per method.
    pub methods: BTreeMap<String, MethodRow>,
    /// Score-free baselines: `uq_fewer_steps_auroc`, `bon_random` (Mean@N success),
    /// `bon_oracle` (Pass@N), and each FA prior's accuracy.
    pub priors: BTreeMap<String, Option<f64>>,
    /// The theory's own step score, `β·Σ_tokens log π/π_ref` (no aggregation choice), against
    /// the soft and the hard advantage.
    pub step_pa_vs_soft: Alignment,
    /// As `step_pa_vs_soft` with the hard `A*`.
    pub step_pa_vs_hard: Alignment,
    /// `Σ_tokens log π` of the step against the soft advantage (the log-prob baseline's
    /// step score).
    pub step_logprob_vs_soft: Alignment,
    /// Spearman of the soft with the hard advantage over this player's steps: what a
    /// perfect soft learner reaches against the hard truth.
    pub rho_soft_hard: Option<f64>,
    /// `KL(π_player ‖ π_o)` per step: the mean of `log π/π_ref − A_h/β` over the player's
    /// steps (0 for the oracle up to rounding; `−A_h/β` for the reference, whose log-ratio
    /// is 0).
    pub kl_to_oracle_per_step: f64,
}

/// The soft ground truth's own numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SoftTruthSummary {
    /// How the reference was projected onto states.
    pub projection: &'static str,
    /// What it cost.
    pub cost: ProjectionCost,
    /// How far the reference at the players' own histories is from the projection.
    pub gap: ProjectionGap,
    /// Largest `|β·Σ log π_o/π_ref − A_h|` over the oracle's actions, in f64 as it sampled.
    pub oracle_identity_max_error: f64,
    /// Actions that enters.
    pub oracle_identity_actions: usize,
    /// The same identity from the oracle's log-prob records (f32, scored by the pipeline).
    pub oracle_record_identity_max_error: f64,
}

/// The demo's `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    /// What was run.
    pub setup: serde_json::Value,
    /// Mean `V*(s0)` of the maps (the hard optimum's success) and mean soft `V(s0)`.
    pub optimum: BTreeMap<String, f64>,
    /// The soft truth and the oracle's identity.
    pub soft_truth: SoftTruthSummary,
    /// Per player (`oracle`, `policy`, `reference`).
    pub players: BTreeMap<String, PlayerSummary>,
    /// Timings.
    pub timings: Timings,
}

fn ci(c: Option<&padv_core::eval::ConfidenceInterval>) -> Option<[f64; 2]> {
    c.map(|c| [c.low, c.high])
}

fn mean(xs: impl IntoIterator<Item = f64>) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for x in xs {
        s += x;
        n += 1;
    }
    if n == 0 {
        f64::NAN
    } else {
        s / n as f64
    }
}

/// Headlines of every method from the three reports.
fn headlines(
    uq: &EvalReport,
    bon: &EvalReport,
    fa: &EvalReport,
) -> BTreeMap<String, [Headline; 3]> {
    use padv_core::eval::report::ReportBody;
    let mut out: BTreeMap<String, [Option<Headline>; 3]> = BTreeMap::new();
    if let ReportBody::Uq(r) = &uq.results {
        for m in &r.methods {
            let h = &m.headline;
            out.entry(m.method.to_string()).or_default()[0] = Some(Headline {
                cell: h.label.clone(),
                predictor: None,
                cv: h.cv_auroc,
                ci: ci(h.result.auroc_ci.as_ref()),
                all: h.result.auroc,
                same_as_prior: None,
            });
        }
    }
    if let ReportBody::Bon(r) = &bon.results {
        for m in &r.methods {
            let h = &m.headline;
            out.entry(m.method.to_string()).or_default()[1] = Some(Headline {
                cell: h.cell.label.clone(),
                predictor: None,
                cv: h.cv_success_rate,
                ci: ci(h.cv_success_ci.as_ref()),
                all: h.cell.success_rate,
                same_as_prior: None,
            });
        }
    }
    if let ReportBody::Fa(r) = &fa.results {
        for m in &r.methods {
            let h = &m.headline;
            out.entry(m.method.to_string()).or_default()[2] = Some(Headline {
                cell: h.label.clone(),
                predictor: Some(h.metrics.predictor.clone()),
                cv: h.cv_accuracy,
                ci: ci(h.cv_accuracy_ci.as_ref()),
                all: h.metrics.accuracy,
                same_as_prior: h.same_as_prior.clone(),
            });
        }
    }
    let empty = || Headline {
        cell: String::new(),
        predictor: None,
        cv: None,
        ci: None,
        all: None,
        same_as_prior: None,
    };
    out.into_iter()
        .map(|(k, [a, b, c])| {
            (
                k,
                [
                    a.unwrap_or_else(empty),
                    b.unwrap_or_else(empty),
                    c.unwrap_or_else(empty),
                ],
            )
        })
        .collect()
}

/// The spec of a headline cell label (`method/token/step[/pa_mode]`) at `beta`.
fn spec_of(label: &str, beta: f64) -> Option<ScoreSpec> {
    let parts: Vec<&str> = label.split('/').collect();
    let mut b = ScoreSpec::builder()
        .method(parts.first()?.parse().ok()?)
        .token_agg(parts.get(1)?.parse().ok()?)
        .step_agg(parts.get(2)?.parse().ok()?)
        .beta(beta);
    if let Some(mode) = parts.get(3) {
        b = b.pa_mode(mode.parse().ok()?);
    }
    b.build().ok()
}

/// Evaluates one player: the three reports (written to `dir`), the method rows, priors and
/// theory metrics.
fn player_summary(
    run: &PlayerRun,
    beta: f64,
    opts: &DemoOptions,
    dir: &Path,
) -> Result<PlayerSummary> {
    let bad = |e: &dyn std::fmt::Display| AgentError::Invalid(format!("evaluation: {e}"));
    let records = &run.records;
    let cfg = EvalConfig {
        spec: ScoreSpec {
            beta,
            ..ScoreSpec::default()
        },
        grid: true,
        methods: METHODS.to_vec(),
        bootstrap: opts.bootstrap,
        folds: opts.folds,
        seed: opts.seed,
        // Intervals of the headline cells only: every cell's would cost a bootstrap each.
        cell_intervals: false,
    };
    let mut reports = Vec::with_capacity(3);
    for kind in [EvalKind::Uq, EvalKind::Bon, EvalKind::Fa] {
        let r = evaluate(records, kind, &cfg).map_err(|e| bad(&e))?;
        crate::agent::write_json(
            &dir.join(format!("eval-{}.json", kind.name())),
            &serde_json::to_value(&r).map_err(|e| bad(&e))?,
        )?;
        reports.push(r);
    }
    // The page of the three evaluations (padv report's), step texts included.
    let trajectories: Vec<padv_core::Trajectory> = run
        .labeled
        .iter()
        .map(|l| l.rollout.trajectory.clone())
        .collect();
    let input = padv_report::ReportInput {
        trajectories: &trajectories,
        ..padv_report::ReportInput::new(
            &format!("padv demo: {}", run.player.name()),
            records,
            reports.iter().collect(),
        )
    };
    padv_report::write_report(
        dir,
        &input,
        &padv_report::ReportOptions {
            seed: opts.seed,
            ..padv_report::ReportOptions::default()
        },
    )
    .map_err(|e| bad(&e))?;
    let truths: Vec<TruthRecord> = run.labeled.iter().map(|l| l.truth.clone()).collect();
    let table = ScoreTable::precompute(records).map_err(|e| bad(&e))?;
    let mut methods = BTreeMap::new();
    for (name, [uq_h, bon_h, fa_h]) in headlines(&reports[0], &reports[1], &reports[2]) {
        let (mut rho_soft, mut rho_hard) = (None, None);
        if let Some(spec) = spec_of(&fa_h.cell, beta) {
            let scorer = table.scorer(&spec).map_err(|e| bad(&e))?;
            let steps: Vec<(String, Vec<(usize, f64)>)> = (0..table.len())
                .map(|r| (table.ids()[r].clone(), scorer.step_scores(r)))
                .collect();
            rho_soft = alignment(&join_steps_with(&steps, &truths, Truth::Soft)?).spearman_pooled;
            rho_hard = alignment(&join_steps_with(&steps, &truths, Truth::Hard)?).spearman_pooled;
        }
        methods.insert(
            name,
            MethodRow {
                uq: uq_h,
                bon: bon_h,
                fa: fa_h,
                rho_soft,
                rho_hard,
            },
        );
    }

    // The theory's step scores, straight from the records.
    let step_sums =
        |f: &dyn Fn(&padv_core::StepLogprobs) -> f64| -> Vec<(String, Vec<(usize, f64)>)> {
            records
                .iter()
                .map(|r| {
                    (
                        r.id.clone(),
                        r.steps.iter().map(|s| (s.message_index, f(s))).collect(),
                    )
                })
                .collect()
        };
    let log_ratio = |s: &padv_core::StepLogprobs| -> f64 {
        match &s.reference {
            Some(q) => s.policy.iter().zip(q).map(|(p, q)| (*p - *q) as f64).sum(),
            None => f64::NAN,
        }
    };
    let pa = step_sums(&|s| beta * log_ratio(s));
    let lp = step_sums(&|s| s.policy.iter().map(|&x| x as f64).sum());
    let step_pa_vs_soft = alignment(&join_steps_with(&pa, &truths, Truth::Soft)?);
    let step_pa_vs_hard = alignment(&join_steps_with(&pa, &truths, Truth::Hard)?);
    let step_logprob_vs_soft = alignment(&join_steps_with(&lp, &truths, Truth::Soft)?);
    let soft: Vec<&StepSoft> = truths.iter().flat_map(|t| &t.soft).collect();
    let hard: Vec<f64> = truths
        .iter()
        .flat_map(|t| t.truth.steps.iter().map(|s| s.advantage))
        .collect();
    let soft_adv: Vec<f64> = soft.iter().map(|s| s.advantage).collect();
    let rho_soft_hard = spearman(&soft_adv, &hard).ok().filter(|r| r.is_finite());
    // KL(π_player ‖ π_o) per step.
    let kl = match run.player {
        Player::Reference => mean(soft.iter().map(|s| -s.advantage / beta)),
        _ => {
            let mut terms = Vec::new();
            for (r, t) in records.iter().zip(&truths) {
                for (s, st) in r.steps.iter().zip(&t.soft) {
                    terms.push(log_ratio(s) - st.advantage / beta);
                }
            }
            mean(terms)
        }
    };

    // Priors.
    let steps_n: Vec<f64> = run
        .labeled
        .iter()
        .map(|l| l.advantages.len() as f64)
        .collect();
    let neg_steps: Vec<Option<f64>> = steps_n.iter().map(|s| Some(-s)).collect();
    let fewer = uq(
        &neg_steps,
        table.labels(),
        &UqOptions {
            n_boot: 0,
            seed: opts.seed,
            folds: 0,
            ..UqOptions::default()
        },
    )
    .map_err(|e| bad(&e))?;
    let mut priors = BTreeMap::new();
    priors.insert("uq_fewer_steps_auroc".to_string(), fewer.auroc);
    use padv_core::eval::report::ReportBody;
    if let ReportBody::Bon(b) = &reports[1].results {
        priors.insert("bon_random".to_string(), b.random_pick_success_rate);
        priors.insert("bon_oracle".to_string(), b.pass_at_n);
    }
    if let ReportBody::Fa(f) = &reports[2].results {
        for p in &f.priors {
            priors.insert(format!("fa_{}", p.metrics.predictor), p.metrics.accuracy);
        }
    }
    let failures = run
        .labeled
        .iter()
        .filter(|l| l.rollout.reward <= 0.0)
        .count();
    Ok(PlayerSummary {
        what: run.player.what().to_string(),
        success: mean(
            run.labeled
                .iter()
                .map(|l| f64::from(u8::from(l.rollout.reward > 0.0))),
        ),
        rollouts: run.labeled.len(),
        steps: steps_n.iter().sum::<f64>() as usize,
        failures,
        failures_with_mistake: run
            .labeled
            .iter()
            .filter(|l| l.rollout.trajectory.mistake_step.is_some())
            .count(),
        mean_action_tokens: mean(
            records
                .iter()
                .flat_map(|r| r.steps.iter().map(|s| s.len() as f64)),
        ),
        methods,
        priors,
        step_pa_vs_soft,
        step_pa_vs_hard,
        step_logprob_vs_soft,
        rho_soft_hard,
        kl_to_oracle_per_step: kl,
    })
}

/// Evaluates every player and assembles the summary (timings are filled in by the caller).
pub fn summarise(cx: &EvalContext, runs: &[PlayerRun]) -> Result<DemoSummary> {
    let beta = cx.train.beta;
    let mut players = BTreeMap::new();
    for run in runs {
        let dir = cx.opts.out.join(run.player.name());
        players.insert(
            run.player.name().to_string(),
            player_summary(run, beta, cx.opts, &dir)?,
        );
    }
    // The oracle's identity, as it sampled (f64) and from its records (f32).
    let (mut id_max, mut id_n, mut rec_max) = (0.0f64, 0usize, 0.0f64);
    for run in runs.iter().filter(|r| r.player == Player::Oracle) {
        for st in run.oracle_steps.iter().flatten() {
            for s in st {
                id_max = id_max.max((s.beta_log_ratio - s.advantage).abs());
                id_n += 1;
            }
        }
        for (r, l) in run.records.iter().zip(&run.labeled) {
            for (s, st) in r.steps.iter().zip(&l.truth.soft) {
                let pa: f64 = match &s.reference {
                    Some(q) => s.policy.iter().zip(q).map(|(p, q)| (*p - *q) as f64).sum(),
                    None => f64::NAN,
                };
                rec_max = rec_max.max((beta * pa - st.advantage).abs());
            }
        }
    }
    let all_steps: Vec<Vec<StepSoft>> = runs
        .iter()
        .flat_map(|r| r.labeled.iter().map(|l| l.truth.soft.clone()))
        .collect();
    let n = cx.opts.samples.max(1);
    let per_run: Vec<usize> = runs
        .iter()
        .flat_map(|r| (0..r.labeled.len()).map(|i| i / n))
        .collect();
    let maps: Vec<&MapTruth> = per_run.iter().map(|&m| &cx.maps[m]).collect();
    let gap = ProjectionGap::measure(&all_steps, &maps, &per_run);
    let mut optimum = BTreeMap::new();
    if let Some(policy) = runs.iter().find(|r| r.player == Player::Policy) {
        optimum.insert(
            "mean_hard_v_star_s0".to_string(),
            mean(policy.labeled.iter().step_by(n).map(|l| l.v0)),
        );
        optimum.insert(
            "mean_soft_v_s0".to_string(),
            mean(
                policy
                    .labeled
                    .iter()
                    .step_by(n)
                    .filter_map(|l| l.truth.soft.first().map(|s| s.v_state)),
            ),
        );
    }
    Ok(DemoSummary {
        setup: setup(cx),
        optimum,
        soft_truth: SoftTruthSummary {
            projection: "the reference's exact probability of each environment action (go up/down/left/right, anything else invalid) after one canonical history per reachable (map, position, steps-left) state: intended moves where possible, the expert's texts (verbose: a canonical remark)",
            cost: cx.projection,
            gap,
            oracle_identity_max_error: id_max,
            oracle_identity_actions: id_n,
            oracle_record_identity_max_error: rec_max,
        },
        players,
        timings: Timings::default(),
    })
}

/// Whether the evaluated policy's weights are the reference's, byte for byte (a pair whose RL
/// has not run, or kept no iterate closer to the optimum): then PA is 0 on every action of
/// the policy and reference players.
fn policy_is_reference(cx: &EvalContext) -> bool {
    same_weights(cx.policy_dir, &cx.opts.pair.join("reference"))
}

/// Whether two checkpoint directories hold the same `model.safetensors`, byte for byte
/// (false when either cannot be read).
pub(crate) fn same_weights(a: &Path, b: &Path) -> bool {
    let weights = |dir: &Path| std::fs::read(dir.join("model.safetensors")).ok();
    let wa = weights(a);
    wa.is_some() && wa == weights(b)
}

fn setup(cx: &EvalContext) -> serde_json::Value {
    let l = &cx.train.lake;
    serde_json::json!({
        "pair": cx.opts.pair,
        "policy": cx.policy_dir,
        "policy_is_reference": policy_is_reference(cx),
        "policy_numbers": if cx.policy_scored_by_reference {
            "the reference's pass: the policy is the same function (weights byte for byte, config, dtype, device), so PA is exactly 0"
        } else {
            "the policy's own engine"
        },
        "style": cx.train.style,
        "held_out_maps": cx.opts.maps,
        "samples_per_map": cx.opts.samples,
        "seed": cx.opts.seed,
        "map_size": l.size,
        "slip": l.slip,
        "hole_fraction": l.hole_fraction,
        "max_steps": l.max_steps,
        "beta": cx.train.beta,
        "methods": METHODS.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
        "cross_validation_folds": cx.opts.folds,
        "bootstrap": cx.opts.bootstrap,
        "held_out": "map seeds heldout_map_seed(seed, i) have bit 62 set and bit 61 clear; training map seeds have bit 62 clear; validation maps (training monitor) have both set",
        "sampling": "temperature 1, actions restricted to the alphabet plus end-of-turn (verbose: end-of-turn only after the remark line), at most the style's max action tokens",
        "decisive_mistake": format!("failed episode: the step with the most negative hard A*(s,a), if below -{DEFAULT_MISTAKE_THRESHOLD}"),
        "pair_training": cx.manifest.get("config"),
        "pair_rl_outcome": cx.manifest.get("rl_outcome"),
    })
}

/// Mean over values, NaN for none (for the aggregate over seeds).
pub(crate) fn mean_of(xs: &[f64]) -> f64 {
    mean(xs.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headline_labels_round_trip_to_specs() {
        for label in [
            "pa/min/last/agg_of_diff",
            "policy_logprob/sum/sum",
            "deepconf_tail/mean/last",
        ] {
            let s = spec_of(label, 0.1).unwrap();
            assert_eq!(s.label(), label);
        }
        assert!(spec_of("nope/mean", 0.1).is_none());
    }
}
