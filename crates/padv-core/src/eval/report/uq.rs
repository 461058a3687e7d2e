//! The UQ report: AUROC (bootstrap CI), AUPRC and Spearman per method, the headline cell of
//! a grid chosen by cross-validation over stratified folds of records, and per method the
//! held-out calibration of its score (Brier, log-loss, ECE of Platt and isotonic maps fitted
//! on the other folds).

use std::collections::HashMap;

use serde::Serialize;

use super::common::{Better, Chance, Direction, Opts, Selection, CI_LEVEL};
use crate::eval::calibration::{
    cross_validated, HeldoutCalibration, ECE_BINS, LOG_LOSS_EPS, PLATT_C,
};
use crate::eval::source::ScoreSource;
use crate::eval::uq::uq_grid_from;
use crate::eval::{
    cross_validate, stratified_folds, uq, CellAuroc, CvResult, EvalError, UqOptions, UqResult,
    UqRow,
};
use crate::is_success_reward;
use crate::judge::JudgeName;
use crate::score::{cells_by_method, Method, ScoreSpec};

/// Uncertainty-quantification results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UqReport {
    /// Records with a reward.
    pub n_labelled: usize,
    /// Successes among them (base rate = `n_pos / n_labelled`).
    pub n_pos: usize,
    /// How each method's held-out calibration was computed.
    pub calibration_settings: CalibrationSettings,
    /// One entry per method, in grid order.
    pub methods: Vec<UqMethod>,
    /// Every cell evaluated on all records (a single row without a grid).
    pub cells: Vec<UqRow>,
}

/// How the held-out calibration of every method was computed, in words and numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationSettings {
    /// Folds (records stratified by success, the same assignment as the grid's
    /// cross-validated headline).
    pub folds: usize,
    /// Which cell each fold calibrates.
    pub cells: String,
    /// The Platt map.
    pub platt: String,
    /// The isotonic map.
    pub isotonic: String,
    /// Predictions are clipped to `[eps, 1 − eps]` before the log-loss.
    pub log_loss_eps: f64,
    /// Equal-width bins of the expected calibration error over `[0, 1]`.
    pub ece_bins: usize,
}

/// One method's headline and, in a grid, its optimistic best cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UqMethod {
    /// The method.
    pub method: Method,
    /// The judge, for a judge's row (`method` is then `judge`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeName>,
    /// Cells of this method in the grid.
    pub n_cells: usize,
    /// The headline row.
    pub headline: UqHeadline,
    /// The cross-validation behind the headline (grid only).
    pub cv: Option<CvResult>,
    /// The cell with the best AUROC on all records: tuned on the evaluation data, so
    /// optimistic (grid only).
    pub best_in_grid_optimistic: Option<CellAuroc>,
    /// Held-out calibration of the method's score (see [`UqReport::calibration_settings`]).
    pub calibration: HeldoutCalibration,
}

/// The headline cell of a method.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UqHeadline {
    /// The cell's label.
    pub label: String,
    /// How it was chosen.
    pub selection: Selection,
    /// Folds that chose it, of `folds` (cross-validation only).
    pub chosen_in_folds: Option<usize>,
    /// Folds of the cross-validation (0 without).
    pub folds: usize,
    /// Mean held-out AUROC of each fold's own choice: the honest estimate of "tune the
    /// aggregation, then deploy" (cross-validation only).
    pub cv_auroc: Option<f64>,
    /// The cell's metrics on all records.
    #[serde(flatten)]
    pub result: UqResult,
}

pub(super) fn directions() -> Vec<Direction> {
    vec![
        Direction::new("AUROC", Better::Higher),
        Direction::new("AUPRC", Better::Higher),
        Direction::new("Spearman", Better::Higher),
        Direction::new("Brier", Better::Lower),
        Direction::new("log-loss", Better::Lower),
        Direction::new("ECE", Better::Lower),
    ]
}

pub(super) fn report(
    source: ScoreSource<'_>,
    specs: &[ScoreSpec],
    opts: &Opts,
) -> Result<UqReport, EvalError> {
    let uq_opts = UqOptions {
        n_boot: if opts.cell_intervals {
            opts.bootstrap
        } else {
            0
        },
        ci_level: CI_LEVEL,
        seed: opts.seed,
        folds: opts.folds,
    };
    let mut cells = uq_grid_from(source, specs, &uq_opts)?;
    let labels = source.labels();
    let n_labelled = labels.iter().flatten().count();
    let n_pos = labels
        .iter()
        .flatten()
        .filter(|&&r| is_success_reward(r))
        .count();
    let mut methods = by_method(&cells, opts.folds);
    if !opts.cell_intervals && opts.bootstrap > 0 {
        // The headline cells' intervals, exactly as the grid would have computed them.
        let one = UqOptions {
            n_boot: opts.bootstrap,
            folds: 0,
            ..uq_opts
        };
        let headline: Vec<Option<usize>> = methods
            .iter()
            .map(|m| cells.iter().position(|c| c.label == m.headline.label))
            .collect();
        let groups: Vec<Vec<ScoreSpec>> = headline
            .iter()
            .map(|i| i.map(|i| cells[i].spec).into_iter().collect())
            .collect();
        let intervals =
            source.with_scores(&groups, |g, scores| match (headline[g], scores.first()) {
                (Some(i), Some(scores)) => Ok(Some((i, uq(scores, labels, &one)?.auroc_ci))),
                _ => Ok(None),
            })?;
        for (m, r) in methods.iter_mut().zip(intervals) {
            if let Some((i, ci)) = r {
                cells[i].result.auroc_ci = ci;
                m.headline.result.auroc_ci = ci;
            }
        }
    }
    calibrate(source, &cells, &mut methods, opts)?;
    Ok(UqReport {
        n_labelled,
        n_pos,
        calibration_settings: CalibrationSettings {
            folds: opts.calibration_folds,
            cells: if opts.folds >= 2 {
                "each fold calibrates the cell it chose on its training folds (as the \
                 cross-validated AUROC does)"
                    .to_string()
            } else {
                "the given cell".to_string()
            },
            platt: format!(
                "logistic regression on the score standardised with the training mean and \
                 standard deviation, L2 penalty ½w² on the slope (C = {PLATT_C}, \
                 scikit-learn's default), intercept unpenalised"
            ),
            isotonic: "pool-adjacent-violators (increasing), linear interpolation between \
                       breakpoints, clipped outside the training range (scikit-learn's \
                       IsotonicRegression)"
                .to_string(),
            log_loss_eps: LOG_LOSS_EPS,
            ece_bins: ECE_BINS,
        },
        methods,
        cells,
    })
}

/// Fills each method's held-out calibration: fold `f` fits both maps on the other folds'
/// records, scored with the cell `f` chose (the headline cell without cross-validation).
fn calibrate(
    source: ScoreSource<'_>,
    cells: &[UqRow],
    methods: &mut [UqMethod],
    opts: &Opts,
) -> Result<(), EvalError> {
    let k = opts.calibration_folds;
    let labels = source.labels();
    let assign = stratified_folds(labels, k, opts.seed);
    // Per method, the cell each fold calibrates, and the distinct cells among them.
    let per_fold: Vec<Vec<&str>> = methods
        .iter()
        .map(|m| {
            (0..k)
                .map(|f| {
                    m.cv.as_ref()
                        .and_then(|cv| cv.choices.iter().find(|c| c.fold == f))
                        .map_or(m.headline.label.as_str(), |c| c.chosen.as_str())
                })
                .collect()
        })
        .collect();
    let distinct: Vec<Vec<&UqRow>> = per_fold
        .iter()
        .map(|labels| {
            let mut rows: Vec<&UqRow> = Vec::new();
            for &label in labels {
                if let Some(row) = cells.iter().find(|c| c.label == label) {
                    if !rows.iter().any(|r| r.label == label) {
                        rows.push(row);
                    }
                }
            }
            rows
        })
        .collect();
    let groups: Vec<Vec<ScoreSpec>> = distinct
        .iter()
        .map(|rows| rows.iter().map(|r| r.spec).collect())
        .collect();
    let results = source.with_scores(&groups, |g, scores| {
        let by_label: HashMap<&str, &Vec<f64>> = distinct[g]
            .iter()
            .map(|r| r.label.as_str())
            .zip(&scores)
            .collect();
        Ok(cross_validated(
            |f| {
                per_fold[g]
                    .get(f)
                    .and_then(|l| by_label.get(l))
                    .map_or(&[][..], |v| v.as_slice())
            },
            labels,
            &assign,
            k,
        ))
    })?;
    for (m, r) in methods.iter_mut().zip(results) {
        m.calibration = r;
    }
    Ok(())
}

/// A placeholder until [`calibrate`] runs.
fn not_calibrated() -> HeldoutCalibration {
    HeldoutCalibration {
        folds: 0,
        n: 0,
        platt: None,
        isotonic: None,
        note: Some("calibration not evaluated".to_string()),
    }
}

/// Methods in first-appearance order with their headline.
fn by_method(cells: &[UqRow], folds: usize) -> Vec<UqMethod> {
    cells_by_method(cells.iter().map(|c| c.spec.group()))
        .into_iter()
        .filter_map(|(m, idx)| {
            let group: Vec<&UqRow> = idx.iter().map(|&i| &cells[i]).collect();
            let first = *group.first()?;
            if folds < 2 {
                return Some(UqMethod {
                    method: m.method,
                    judge: m.judge,
                    n_cells: group.len(),
                    headline: UqHeadline {
                        label: first.label.clone(),
                        selection: Selection::Given,
                        chosen_in_folds: None,
                        folds: 0,
                        cv_auroc: None,
                        result: first.result.clone(),
                    },
                    cv: None,
                    best_in_grid_optimistic: None,
                    calibration: not_calibrated(),
                });
            }
            let cv = cross_validate(&m.name(), &group);
            // Modal fold choice, first in grid order on ties; the first cell if no fold
            // could choose (then cv_auroc is None and the note says why).
            let mut best: (&UqRow, usize) = (first, 0);
            for row in &group {
                let n = cv.choices.iter().filter(|c| c.chosen == row.label).count();
                if n > best.1 {
                    best = (row, n);
                }
            }
            Some(UqMethod {
                method: m.method,
                judge: m.judge,
                n_cells: group.len(),
                headline: UqHeadline {
                    label: best.0.label.clone(),
                    selection: Selection::CrossValidated,
                    chosen_in_folds: Some(best.1),
                    folds: cv.folds,
                    cv_auroc: cv.mean_heldout_auroc,
                    result: best.0.result.clone(),
                },
                best_in_grid_optimistic: cv.best_in_grid.clone(),
                cv: Some(cv),
                calibration: not_calibrated(),
            })
        })
        .collect()
}

impl UqReport {
    /// Chance levels: AUROC 0.5; AUPRC the success base rate; Brier and log-loss of always
    /// predicting the base rate π: `π(1 − π)` and the binary entropy of π.
    pub fn chance(&self) -> Vec<Chance> {
        let base = (self.n_labelled > 0).then(|| self.n_pos as f64 / self.n_labelled as f64);
        let two_class = base.filter(|&p| p > 0.0 && p < 1.0);
        vec![
            Chance::new("AUROC", Some(0.5), "a score unrelated to success"),
            Chance::new("AUPRC", base, "the success base rate"),
            Chance::new("Spearman", Some(0.0), "a score unrelated to reward"),
            Chance::new(
                "Brier",
                two_class.map(|p| p * (1.0 - p)),
                "always predicting the base rate",
            ),
            Chance::new(
                "log-loss",
                two_class.map(|p| -(p * p.ln() + (1.0 - p) * (1.0 - p).ln())),
                "always predicting the base rate",
            ),
        ]
    }

    /// The methods' calibration notes, in method order: one entry without a method when
    /// every method has the same note (said once, not eleven times).
    pub fn calibration_notes(&self) -> Vec<(Option<Method>, String)> {
        let notes: Vec<(Method, &String)> = self
            .methods
            .iter()
            .filter_map(|m| m.calibration.note.as_ref().map(|n| (m.method, n)))
            .collect();
        match notes.first() {
            Some((_, first))
                if notes.len() == self.methods.len() && notes.iter().all(|(_, n)| n == first) =>
            {
                vec![(None, (*first).clone())]
            }
            _ => notes
                .into_iter()
                .map(|(m, n)| (Some(m), n.clone()))
                .collect(),
        }
    }

    /// The spec of `method`'s headline cell, if the method was evaluated.
    pub fn headline_spec(&self, method: Method) -> Option<ScoreSpec> {
        let m = self.methods.iter().find(|m| m.method == method)?;
        self.cells
            .iter()
            .find(|c| c.label == m.headline.label)
            .map(|c| c.spec)
    }

    /// What cannot be evaluated, in words.
    pub fn note(&self) -> Option<String> {
        if self.n_labelled == 0 {
            return Some("nothing to evaluate: no record has a reward (`label`)".to_string());
        }
        if self.n_pos == 0 || self.n_pos == self.n_labelled {
            let class = if self.n_pos == 0 {
                "failures"
            } else {
                "successes"
            };
            return Some(format!(
                "nothing to evaluate: all {} labelled records are {class}, so AUROC and \
                 Spearman are undefined (one class only)",
                self.n_labelled
            ));
        }
        let no_cv = self.methods.iter().any(|m| {
            m.cv.as_ref()
                .is_some_and(|cv| cv.mean_heldout_auroc.is_none())
        });
        no_cv.then(|| {
            "cross-validation undefined for some methods: every held-out fold has one class \
             only (too few records for the fold count)"
                .to_string()
        })
    }
}
