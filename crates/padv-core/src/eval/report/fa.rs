//! The failure-attribution report: per method, the (aggregation, predictor) pair chosen by
//! cross-validation over folds of annotated trajectories, next to the trivial priors.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use super::common::{
    bootstrap_mean_ci, cross_validate_means, item_folds, mean, Better, Chance, Direction, Opts,
    Selection,
};
use crate::eval::attribution::{
    metrics, predictors_for, record_predictions, RecordPrediction, N_PREDICTIONS, PREDICTORS,
};
use crate::eval::{fa_grid, ConfidenceInterval, EvalError, FaMetrics, FaPredictor, FaRow};
use crate::judge::JudgeName;
use crate::score::{cells_by_method, Method, MethodGroup, ScoreSpec, ScoreTable};

/// Failure-attribution results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaReport {
    /// Records with an annotated `mistake_step`.
    pub n_annotated: usize,
    /// Records without one (not evaluated).
    pub n_no_mistake: usize,
    /// Score-free baselines on the annotated records of the first cell: `first_action`,
    /// `last_action`, `most_common_step` (mode of the evaluation data itself: optimistic)
    /// and `most_common_step_cv` (each fold predicts the mode of the other folds).
    pub priors: Vec<FaPrior>,
    /// One entry per method, in grid order.
    pub methods: Vec<FaMethod>,
    /// Every cell with all predictors, on all annotated records.
    pub cells: Vec<FaCell>,
}

/// One cell's results (all predictors).
pub type FaCell = FaRow;

/// A score-free baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaPrior {
    /// Its metrics (`predictor` names it).
    #[serde(flatten)]
    pub metrics: FaMetrics,
    /// Tuned on the evaluation data (so better than it would be on new data).
    pub optimistic: bool,
}

/// One method's headline and, in a grid, its optimistic best (cell, predictor).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaMethod {
    /// The method.
    pub method: Method,
    /// The judge, for a judge's row (`method` is then `judge`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeName>,
    /// Cells of this method in the grid.
    pub n_cells: usize,
    /// The headline row.
    pub headline: FaHeadline,
    /// The (cell, predictor) with the best accuracy on all records (lower MAE, then first,
    /// on ties): tuned on the evaluation data, so optimistic (grid only).
    pub best_in_grid_optimistic: Option<FaHeadline>,
}

/// The headline (cell, predictor) of a method.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaHeadline {
    /// The cell's label.
    pub label: String,
    /// How it was chosen (the given spec uses `min_cumulative`, the reference's headline).
    pub selection: Selection,
    /// Folds that chose it (cross-validation only).
    pub chosen_in_folds: Option<usize>,
    /// Folds of the cross-validation (0 without).
    pub folds: usize,
    /// Exact-match accuracy over all annotated records when each is predicted with the
    /// (cell, predictor) its fold chose on the other folds: the honest estimate.
    pub cv_accuracy: Option<f64>,
    /// Bootstrap interval of `cv_accuracy`, resampling records (choices held fixed).
    pub cv_accuracy_ci: Option<ConfidenceInterval>,
    /// Mean absolute error (messages) of the same held-out predictions.
    pub cv_mae: Option<f64>,
    /// Bootstrap interval of `metrics.accuracy`, resampling records.
    pub accuracy_ci: Option<ConfidenceInterval>,
    /// The chosen (cell, predictor) on all annotated records.
    pub metrics: FaMetrics,
    /// Set when the chosen (cell, predictor) predicts exactly what a score-free prior does
    /// on every annotated record (`first_action` or `last_action`): its accuracy is then the
    /// prior's, whatever the scores. E.g. `min_cumulative` of step scores that are never
    /// positive always lands on the last action.
    pub same_as_prior: Option<String>,
}

pub(super) fn directions() -> Vec<Direction> {
    vec![
        Direction::new("accuracy", Better::Higher),
        Direction::new("±1", Better::Higher),
        Direction::new("±2", Better::Higher),
        Direction::new("MAE", Better::Lower),
    ]
}

/// A candidate of the choice: cell `cell` of the method with predictor `pred`.
#[derive(Clone, Copy)]
struct Cand {
    cell: usize,
    pred: usize,
}

pub(super) fn report(
    table: &ScoreTable,
    specs: &[ScoreSpec],
    opts: &Opts,
) -> Result<FaReport, EvalError> {
    let cells = fa_grid(table, specs)?;
    let n_annotated = table.mistake_steps().iter().flatten().count();
    let preds: Vec<Vec<RecordPrediction>> = specs
        .iter()
        .map(|s| record_predictions(table, s))
        .collect::<Result<_, _>>()?;
    let methods = cells_by_method(specs.iter().map(|s| s.group()))
        .into_par_iter()
        .filter_map(|(m, idx)| method_report(m, &idx, &cells, &preds, opts))
        .collect();
    Ok(FaReport {
        n_annotated,
        n_no_mistake: table.len() - n_annotated,
        priors: preds.first().map(|p| priors(p, opts)).unwrap_or_default(),
        methods,
        cells,
    })
}

/// One evaluated record: the gold mistake step and the predictions in
/// [`RecordPrediction`] order.
type Item = (usize, [usize; N_PREDICTIONS]);

/// Per cell of the group, the items of the records every cell evaluates (annotated, with a
/// scored step in each), so that the candidates of the choice are compared on the same records.
fn common_items(idx: &[usize], preds: &[Vec<RecordPrediction>]) -> Vec<Vec<Item>> {
    let n = preds.first().map_or(0, Vec::len);
    let records: Vec<usize> = (0..n)
        .filter(|&r| idx.iter().all(|&c| matches!(preds[c][r], Some(Some(_)))))
        .collect();
    idx.iter()
        .map(|&c| {
            records
                .iter()
                .filter_map(|&r| preds[c][r].flatten())
                .collect()
        })
        .collect()
}

/// Metrics of predictor `pred` (of `predictors`) on `items`, and the bootstrap interval of
/// its accuracy.
fn predictor_metrics(
    predictors: &[FaPredictor; 4],
    pred: usize,
    items: &[Item],
    opts: &Opts,
) -> (FaMetrics, Option<ConfidenceInterval>) {
    let m = metrics(
        predictors[pred].name(),
        items.iter().map(|(g, p)| (*g, p[pred])),
    );

    let exact: Vec<f64> = items
        .iter()
        .map(|(g, p)| f64::from(u8::from(*g == p[pred])))
        .collect();
    (m, bootstrap_mean_ci(&exact, opts.bootstrap, opts.seed))
}

/// The prior `pred` coincides with on every item, if any.
fn same_as_prior(pred: usize, items: &[Item]) -> Option<String> {
    if items.is_empty() {
        return None;
    }
    let k = PREDICTORS.len();
    [(k, "first_action"), (k + 1, "last_action")]
        .into_iter()
        .find(|&(j, _)| items.iter().all(|(_, p)| p[pred] == p[j]))
        .map(|(_, name)| name.to_string())
}

fn method_report(
    m: MethodGroup,
    idx: &[usize],
    cells: &[FaRow],
    preds: &[Vec<RecordPrediction>],
    opts: &Opts,
) -> Option<FaMethod> {
    let first = *idx.first()?;
    let predictors = predictors_for(m.method);
    let per_cell = common_items(idx, preds);
    if opts.folds < 2 {
        let (metrics, accuracy_ci) = predictor_metrics(&predictors, 0, &per_cell[0], opts);
        return Some(FaMethod {
            method: m.method,
            judge: m.judge,
            n_cells: idx.len(),
            headline: FaHeadline {
                label: cells[first].label.clone(),
                selection: Selection::Given,
                chosen_in_folds: None,
                folds: 0,
                cv_accuracy: None,
                cv_accuracy_ci: None,
                cv_mae: None,
                accuracy_ci,
                metrics,
                same_as_prior: same_as_prior(0, &per_cell[0]),
            },
            best_in_grid_optimistic: None,
        });
    }
    let cands: Vec<Cand> = (0..idx.len())
        .flat_map(|cell| (0..predictors.len()).map(move |pred| Cand { cell, pred }))
        .collect();
    // Utility per item: [exact match, −|error|] (accuracy first, then MAE).
    let utility: Vec<Vec<[f64; 2]>> = cands
        .iter()
        .map(|c| {
            per_cell[c.cell]
                .iter()
                .map(|(g, p)| {
                    let d = g.abs_diff(p[c.pred]) as f64;
                    [f64::from(u8::from(d == 0.0)), -d]
                })
                .collect()
        })
        .collect();
    let n_items = per_cell[0].len();
    let folds = item_folds(n_items, opts.folds, opts.seed);
    let cv = cross_validate_means(&utility, &folds, opts.folds);
    let held: Vec<[f64; 2]> = cv
        .per_item
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.map(|c| utility[c][i]))
        .collect();
    let exact: Vec<f64> = held.iter().map(|u| u[0]).collect();
    let (chosen, n_chose) = cv.modal().unwrap_or((0, 0));
    let make = |c: Cand, chosen_in_folds: Option<usize>, with_cv: bool| {
        let (metrics, accuracy_ci) =
            predictor_metrics(&predictors, c.pred, &per_cell[c.cell], opts);
        FaHeadline {
            label: cells[idx[c.cell]].label.clone(),
            selection: Selection::CrossValidated,
            chosen_in_folds,
            folds: opts.folds,
            cv_accuracy: if with_cv {
                mean(exact.iter().copied())
            } else {
                None
            },
            cv_accuracy_ci: if with_cv {
                bootstrap_mean_ci(&exact, opts.bootstrap, opts.seed)
            } else {
                None
            },
            cv_mae: if with_cv {
                mean(held.iter().map(|u| -u[1]))
            } else {
                None
            },
            accuracy_ci,
            metrics,
            same_as_prior: same_as_prior(c.pred, &per_cell[c.cell]),
        }
    };
    // Best on all records: the same lexicographic key, first on ties.
    let mut best: Option<(usize, [f64; 2])> = None;
    for (c, u) in utility.iter().enumerate() {
        let s = [
            mean(u.iter().map(|x| x[0])).unwrap_or(f64::NEG_INFINITY),
            mean(u.iter().map(|x| x[1])).unwrap_or(f64::NEG_INFINITY),
        ];
        if best.is_none_or(|(_, b)| s[0] > b[0] || (s[0] == b[0] && s[1] > b[1])) {
            best = Some((c, s));
        }
    }
    Some(FaMethod {
        method: m.method,
        judge: m.judge,
        n_cells: idx.len(),
        headline: make(cands[chosen], Some(n_chose), true),
        best_in_grid_optimistic: (n_items > 0)
            .then_some(best)
            .flatten()
            .map(|(c, _)| make(cands[c], None, false)),
    })
}

/// The score-free baselines on the records the first cell evaluates.
fn priors(preds: &[RecordPrediction], opts: &Opts) -> Vec<FaPrior> {
    let items: Vec<Item> = preds.iter().filter_map(|p| p.flatten()).collect();
    let golds: Vec<usize> = items.iter().map(|(g, _)| *g).collect();
    let k = PREDICTORS.len();
    let mut out = vec![
        FaPrior {
            metrics: metrics("first_action", items.iter().map(|(g, p)| (*g, p[k]))),
            optimistic: false,
        },
        FaPrior {
            metrics: metrics("last_action", items.iter().map(|(g, p)| (*g, p[k + 1]))),
            optimistic: false,
        },
    ];
    if let Some(mode) = mode_of(golds.iter().copied()) {
        out.push(FaPrior {
            metrics: metrics("most_common_step", golds.iter().map(|&g| (g, mode))),
            optimistic: true,
        });
    }
    if opts.folds >= 2 {
        // Each fold predicts the mode of the other folds: total counts minus the fold's own.
        let folds = item_folds(golds.len(), opts.folds, opts.seed);
        let mut total: BTreeMap<usize, usize> = BTreeMap::new();
        let mut per_fold: Vec<BTreeMap<usize, usize>> = vec![BTreeMap::new(); opts.folds];
        for (&g, &f) in golds.iter().zip(&folds) {
            *total.entry(g).or_default() += 1;
            *per_fold[f].entry(g).or_default() += 1;
        }
        let train_mode: Vec<Option<usize>> = per_fold
            .iter()
            .map(|own| {
                mode_of_counts(
                    total
                        .iter()
                        .map(|(&v, &n)| (v, n - own.get(&v).copied().unwrap_or(0))),
                )
            })
            .collect();
        let pairs = golds
            .iter()
            .zip(&folds)
            .filter_map(|(&g, &f)| train_mode[f].map(|m| (g, m)));
        out.push(FaPrior {
            metrics: metrics("most_common_step_cv", pairs),
            optimistic: false,
        });
    }
    out
}

/// Most frequent value (smallest on ties); `None` when empty.
fn mode_of(values: impl Iterator<Item = usize>) -> Option<usize> {
    let mut freq: BTreeMap<usize, usize> = BTreeMap::new();
    for v in values {
        *freq.entry(v).or_default() += 1;
    }
    mode_of_counts(freq.into_iter())
}

/// The value with the largest positive count, from `(value, count)` in ascending value order
/// (so the smallest value wins ties); `None` when every count is 0.
fn mode_of_counts(counts: impl Iterator<Item = (usize, usize)>) -> Option<usize> {
    counts
        .filter(|&(_, n)| n > 0)
        .fold(None, |best: Option<(usize, usize)>, (v, n)| match best {
            Some((_, b)) if b >= n => best,
            _ => Some((v, n)),
        })
        .map(|(v, _)| v)
}

impl FaReport {
    /// Chance levels: the trivial priors' accuracy.
    pub fn chance(&self) -> Vec<Chance> {
        self.priors
            .iter()
            .map(|p| {
                let meaning = match p.metrics.predictor.as_str() {
                    "first_action" => "always the first action",
                    "last_action" => "always the last action",
                    "most_common_step" => "always the most common mistake step (optimistic)",
                    _ => "most common mistake step of the other folds",
                };
                Chance::new(
                    &format!("accuracy ({})", p.metrics.predictor),
                    p.metrics.accuracy,
                    meaning,
                )
            })
            .collect()
    }

    /// What cannot be evaluated, in words.
    pub fn note(&self) -> Option<String> {
        if self.n_annotated == 0 {
            Some(
                "nothing to evaluate: no record has an annotated `mistake_step` (failure \
                 attribution needs them, e.g. from Who&When)"
                    .to_string(),
            )
        } else if self.priors.first().is_none_or(|p| p.metrics.n == 0) {
            Some(format!(
                "nothing to evaluate: none of the {} annotated records has a scored action step",
                self.n_annotated
            ))
        } else {
            None
        }
    }
}
