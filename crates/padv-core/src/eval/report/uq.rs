//! The UQ report: AUROC (bootstrap CI), AUPRC and Spearman per method, the headline cell of
//! a grid chosen by cross-validation over stratified folds of records.

use serde::Serialize;

use super::common::{Better, Chance, Direction, Opts, Selection, CI_LEVEL};
use crate::eval::{
    cross_validate, uq_grid, CellAuroc, CvResult, EvalError, UqOptions, UqResult, UqRow,
};
use crate::is_success_reward;
use crate::judge::JudgeName;
use crate::score::{cells_by_method, Method, ScoreSpec, ScoreTable};

/// Uncertainty-quantification results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UqReport {
    /// Records with a reward.
    pub n_labelled: usize,
    /// Successes among them (base rate = `n_pos / n_labelled`).
    pub n_pos: usize,
    /// One entry per method, in grid order.
    pub methods: Vec<UqMethod>,
    /// Every cell evaluated on all records (a single row without a grid).
    pub cells: Vec<UqRow>,
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
    ]
}

pub(super) fn report(
    table: &ScoreTable,
    specs: &[ScoreSpec],
    opts: &Opts,
) -> Result<UqReport, EvalError> {
    let uq_opts = UqOptions {
        n_boot: opts.bootstrap,
        ci_level: CI_LEVEL,
        seed: opts.seed,
        folds: opts.folds,
    };
    let cells = uq_grid(table, specs, &uq_opts)?;
    let labelled: Vec<f64> = table.labels().iter().flatten().copied().collect();
    let n_pos = labelled.iter().filter(|&&r| is_success_reward(r)).count();
    let methods = by_method(&cells, opts.folds);
    Ok(UqReport {
        n_labelled: labelled.len(),
        n_pos,
        methods,
        cells,
    })
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
            })
        })
        .collect()
}

impl UqReport {
    /// Chance levels: AUROC 0.5; AUPRC the success base rate.
    pub fn chance(&self) -> Vec<Chance> {
        let base = (self.n_labelled > 0).then(|| self.n_pos as f64 / self.n_labelled as f64);
        vec![
            Chance::new("AUROC", Some(0.5), "a score unrelated to success"),
            Chance::new("AUPRC", base, "the success base rate"),
            Chance::new("Spearman", Some(0.0), "a score unrelated to reward"),
        ]
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
