//! The best-of-N report: success rate of the top-scored rollout per task with a bootstrap
//! interval over tasks, the best-of-k curve by k (with bootstrap bands for the headline),
//! the random pick's success rate and mean reward (the latter is the reference
//! implementation's Mean@N), Pass@N (oracle), and a grid's headline aggregation chosen by
//! cross-validation over folds of tasks.

use rayon::prelude::*;
use serde::Serialize;

use super::common::{
    bootstrap_mean_ci, cross_validate_means, item_folds, mean, Better, Chance, Direction, MeanCv,
    Opts, Selection,
};
use crate::eval::bon::{bon_at_k_per_task, rank_key};
use crate::eval::{bon_grid, BonRow, ConfidenceInterval, EvalError};
use crate::is_success_reward;
use crate::judge::JudgeName;
use crate::score::{cells_by_method, Method, ScoreSpec, ScoreTable};

/// Best-of-N results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BonReport {
    /// Tasks with at least one labelled rollout (the unit of every rate).
    pub n_tasks: usize,
    /// Tasks with a real choice: at least 2 labelled rollouts, not all with the same
    /// outcome. Only these can tell scores apart.
    pub n_tasks_with_choice: usize,
    /// Labelled rollouts.
    pub n_rollouts: usize,
    /// Rollouts skipped for lack of a reward.
    pub n_no_label: usize,
    /// Random pick's success rate: mean over tasks of the fraction of its rollouts that
    /// succeed (= best-of-1). The chance level of `success`. (This field was called
    /// `mean_at_n` until issue 18: renamed because the reference implementation's Mean@N is
    /// the mean *reward*, below.)
    pub random_pick_success_rate: Option<f64>,
    /// Random pick's mean reward: mean over tasks of the mean reward of its rollouts — the
    /// reference implementation's Mean@N. Equals `random_pick_success_rate` for 0/1 rewards;
    /// the chance level of `mean reward`.
    pub random_pick_mean_reward: Option<f64>,
    /// Oracle pick: fraction of tasks with at least one success (Pass@N).
    pub pass_at_n: Option<f64>,
    /// One entry per method, in grid order.
    pub methods: Vec<BonMethod>,
    /// Every cell evaluated on all tasks (a single row without a grid).
    pub cells: Vec<BonCell>,
}

/// The bootstrap band of one point of the best-of-k curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KBand {
    /// Subset size.
    pub k: usize,
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

/// One cell's best-of-N result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BonCell {
    /// [`ScoreSpec::label`] of the cell.
    pub label: String,
    /// The cell.
    pub spec: ScoreSpec,
    /// Labelled rollouts without a score (ranked last).
    pub n_no_score: usize,
    /// Fraction of tasks whose top-scored rollout succeeded.
    pub success_rate: Option<f64>,
    /// Bootstrap interval of `success_rate`, resampling tasks.
    pub success_ci: Option<ConfidenceInterval>,
    /// Mean over tasks of the top-scored rollout's reward.
    pub mean_reward: Option<f64>,
    /// Expected success when picking the best-scored of a random `k`-subset of each task's
    /// rollouts (all of them when a task has fewer), for `k = 1..=max N`.
    pub bon_at_k: Vec<KValue>,
}

/// One point of the best-of-k curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KValue {
    /// Subset size.
    pub k: usize,
    /// Expected success rate.
    pub value: f64,
}

/// One method's headline and, in a grid, its optimistic best cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BonMethod {
    /// The method.
    pub method: Method,
    /// The judge, for a judge's row (`method` is then `judge`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeName>,
    /// Cells of this method in the grid.
    pub n_cells: usize,
    /// The headline row.
    pub headline: BonHeadline,
    /// The cell with the best success rate on all tasks (first on ties): tuned on the
    /// evaluation data, so optimistic (grid only).
    pub best_in_grid_optimistic: Option<BonCell>,
}

/// The headline cell of a method.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BonHeadline {
    /// How it was chosen.
    pub selection: Selection,
    /// Folds that chose it (cross-validation only).
    pub chosen_in_folds: Option<usize>,
    /// Folds of the cross-validation (0 without).
    pub folds: usize,
    /// Success rate over all tasks when each task is scored by the cell its fold chose on
    /// the other folds' tasks: the honest estimate (cross-validation only).
    pub cv_success_rate: Option<f64>,
    /// Bootstrap interval of `cv_success_rate`, resampling tasks (choices held fixed).
    pub cv_success_ci: Option<ConfidenceInterval>,
    /// Percentile bootstrap band of the headline cell's best-of-k curve, resampling tasks
    /// (one entry per `k` of `bon_at_k`; empty when the bootstrap is off).
    pub bon_at_k_band: Vec<KBand>,
    /// The cell and its results on all tasks.
    #[serde(flatten)]
    pub cell: BonCell,
}

pub(super) fn directions() -> Vec<Direction> {
    vec![
        Direction::new("success", Better::Higher),
        Direction::new("mean reward", Better::Higher),
    ]
}

/// Labelled members of each task (tasks without one are left out), in input order.
fn labelled_tasks(table: &ScoreTable) -> Vec<Vec<usize>> {
    let mut tasks = vec![Vec::new(); table.n_tasks()];
    for (r, &t) in table.task_index().iter().enumerate() {
        if table.labels()[r].is_some() {
            tasks[t].push(r);
        }
    }
    tasks.retain(|m| !m.is_empty());
    tasks
}

/// Per task, `[success, reward]` of the top-scored rollout (first in input order on ties,
/// as [`crate::eval::best_of_n`] picks).
fn picks(tasks: &[Vec<usize>], scores: &[Option<f64>], labels: &[Option<f64>]) -> Vec<[f64; 2]> {
    tasks
        .iter()
        .map(|members| {
            let mut best = members[0];
            for &r in &members[1..] {
                if rank_key(scores[r]) > rank_key(scores[best]) {
                    best = r;
                }
            }
            let reward = labels[best].unwrap_or(0.0);
            [f64::from(u8::from(is_success_reward(reward))), reward]
        })
        .collect()
}

fn cell(row: &BonRow, outcomes: &[[f64; 2]], opts: &Opts) -> BonCell {
    let success: Vec<f64> = outcomes.iter().map(|o| o[0]).collect();
    let some = |x: f64| (!outcomes.is_empty()).then_some(x);
    BonCell {
        label: row.label.clone(),
        spec: row.spec,
        n_no_score: row.result.n_no_score,
        success_rate: some(row.result.bon_success_rate),
        success_ci: if opts.cell_intervals {
            bootstrap_mean_ci(&success, opts.bootstrap, opts.seed)
        } else {
            None
        },
        mean_reward: some(row.result.bon_mean_reward),
        bon_at_k: row
            .result
            .bon_at_k
            .iter()
            .enumerate()
            .map(|(i, &value)| KValue { k: i + 1, value })
            .collect(),
    }
}

pub(super) fn report(
    table: &ScoreTable,
    specs: &[ScoreSpec],
    opts: &Opts,
) -> Result<BonReport, EvalError> {
    let rows = bon_grid(table, specs)?;
    let tasks = labelled_tasks(table);
    let labels = table.labels();
    let mut outcomes = Vec::with_capacity(specs.len());
    for spec in specs {
        outcomes.push(picks(&tasks, &table.trajectory_scores(spec)?, labels));
    }
    let mut cells: Vec<BonCell> = rows
        .iter()
        .zip(&outcomes)
        .map(|(row, o)| cell(row, o, opts))
        .collect();
    let folds = item_folds(tasks.len(), opts.folds, opts.seed);
    let mut methods = cells_by_method(specs.iter().map(|s| s.group()))
        .into_iter()
        .filter_map(|(m, idx)| {
            let first = *idx.first()?;
            if opts.folds < 2 {
                return Some(BonMethod {
                    method: m.method,
                    judge: m.judge,
                    n_cells: idx.len(),
                    headline: BonHeadline {
                        selection: Selection::Given,
                        chosen_in_folds: None,
                        folds: 0,
                        cv_success_rate: None,
                        cv_success_ci: None,
                        bon_at_k_band: Vec::new(),
                        cell: cells[first].clone(),
                    },
                    best_in_grid_optimistic: None,
                });
            }
            let utility: Vec<Vec<[f64; 2]>> = idx.iter().map(|&i| outcomes[i].clone()).collect();
            let cv: MeanCv = cross_validate_means(&utility, &folds, opts.folds);
            let heldout: Vec<f64> = cv
                .per_item
                .iter()
                .enumerate()
                .filter_map(|(t, c)| c.map(|c| utility[c][t][0]))
                .collect();
            let (chosen, n_chose) = cv.modal().unwrap_or((0, 0));
            let best = idx.iter().copied().fold(None, |b: Option<usize>, i| {
                match (b, cells[i].success_rate) {
                    (Some(bi), Some(v)) if cells[bi].success_rate.is_some_and(|bv| bv >= v) => {
                        Some(bi)
                    }
                    (_, Some(_)) => Some(i),
                    (b, None) => b,
                }
            });
            Some(BonMethod {
                method: m.method,
                judge: m.judge,
                n_cells: idx.len(),
                headline: BonHeadline {
                    selection: Selection::CrossValidated,
                    chosen_in_folds: Some(n_chose),
                    folds: opts.folds,
                    cv_success_rate: mean(heldout.iter().copied()),
                    cv_success_ci: bootstrap_mean_ci(&heldout, opts.bootstrap, opts.seed),
                    bon_at_k_band: Vec::new(),
                    cell: cells[idx[chosen]].clone(),
                },
                best_in_grid_optimistic: best.map(|i| cells[i].clone()),
            })
        })
        .collect::<Vec<BonMethod>>();
    // Per headline: the band of its curve and, when only headlines get intervals, its own
    // interval exactly as every cell would have had it. Methods in parallel.
    let extras: Vec<Result<_, EvalError>> = methods
        .par_iter()
        .map(|m| {
            let band = curve_band(&bon_at_k_per_task(table, &m.headline.cell.spec)?, opts);
            let ci = if opts.cell_intervals {
                None
            } else {
                cells
                    .iter()
                    .position(|c| c.label == m.headline.cell.label)
                    .map(|i| {
                        let success: Vec<f64> = outcomes[i].iter().map(|o| o[0]).collect();
                        (i, bootstrap_mean_ci(&success, opts.bootstrap, opts.seed))
                    })
            };
            Ok((band, ci))
        })
        .collect();
    for (m, r) in methods.iter_mut().zip(extras) {
        let (band, ci) = r?;
        m.headline.bon_at_k_band = band;
        if let Some((i, ci)) = ci {
            cells[i].success_ci = ci;
            m.headline.cell.success_ci = ci;
        }
    }
    let n_tasks_with_choice = tasks
        .iter()
        .filter(|m| {
            let s: Vec<bool> = m
                .iter()
                .filter_map(|&r| labels[r])
                .map(is_success_reward)
                .collect();
            s.len() >= 2 && s.iter().any(|&x| x != s[0])
        })
        .count();
    let first = rows.first();
    Ok(BonReport {
        n_tasks: tasks.len(),
        n_tasks_with_choice,
        n_rollouts: first.map_or(0, |r| r.result.n_rollouts),
        n_no_label: first.map_or(0, |r| r.result.n_no_label),
        random_pick_success_rate: first.and_then(|r| r.result.bon_at_k.first().copied()),
        random_pick_mean_reward: first
            .and_then(|r| (!tasks.is_empty()).then_some(r.result.mean_at_n)),
        pass_at_n: first.and_then(|r| (!tasks.is_empty()).then_some(r.result.pass_at_n_oracle)),
        methods,
        cells,
    })
}

/// Percentile bootstrap band of the mean over tasks of each task's best-of-k value (a
/// task with fewer than `k` rollouts contributes its value at its own largest `k`).
fn curve_band(per_task: &[Vec<f64>], opts: &Opts) -> Vec<KBand> {
    let n = per_task.len();
    let max_k = per_task.iter().map(Vec::len).max().unwrap_or(0);
    if n == 0 || opts.bootstrap == 0 {
        return Vec::new();
    }
    let value = |t: usize, k: usize| {
        let v = &per_task[t];
        v.get(k).or(v.last()).copied().unwrap_or(0.0)
    };
    let mut rng = crate::rng::SplitMix64::new(opts.seed ^ 0xB0_0B);
    let mut stats: Vec<Vec<f64>> = vec![Vec::with_capacity(opts.bootstrap); max_k];
    let mut sums = vec![0.0; max_k];
    for _ in 0..opts.bootstrap {
        sums.fill(0.0);
        for _ in 0..n {
            let t = rng.below(n);
            for (k, s) in sums.iter_mut().enumerate() {
                *s += value(t, k);
            }
        }
        for (k, s) in sums.iter().enumerate() {
            stats[k].push(s / n as f64);
        }
    }
    let alpha = (1.0 - super::common::CI_LEVEL) / 2.0;
    stats
        .into_iter()
        .enumerate()
        .filter_map(|(k, mut v)| {
            v.sort_unstable_by(f64::total_cmp);
            Some(KBand {
                k: k + 1,
                low: crate::eval::quantile_sorted(&v, alpha)?,
                high: crate::eval::quantile_sorted(&v, 1.0 - alpha)?,
            })
        })
        .collect()
}

impl BonReport {
    /// Chance and ceiling: the random pick's success rate and mean reward (Mean@N, as the
    /// reference implementation defines it), and Pass@N (oracle pick).
    pub fn chance(&self) -> Vec<Chance> {
        vec![
            Chance::new(
                "success",
                self.random_pick_success_rate,
                "random pick's success rate",
            ),
            Chance::new(
                "mean reward",
                self.random_pick_mean_reward,
                "random pick's mean reward: Mean@N as the reference implementation defines it",
            ),
            Chance::new(
                "success (oracle)",
                self.pass_at_n,
                "oracle pick, the ceiling (Pass@N)",
            ),
        ]
    }

    /// What cannot be evaluated, in words.
    pub fn note(&self) -> Option<String> {
        if self.n_tasks == 0 {
            Some("nothing to evaluate: no rollout has a reward (`label`)".to_string())
        } else if self.n_tasks_with_choice == 0 {
            Some(format!(
                "nothing to evaluate: none of the {} tasks has a real choice (2 or more \
                 rollouts with different outcomes), so every score picks equally well",
                self.n_tasks
            ))
        } else {
            None
        }
    }
}
