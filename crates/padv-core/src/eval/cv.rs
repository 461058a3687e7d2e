//! Cross-validated choice of aggregation.
//!
//! The paper picks the best aggregation per task and backbone on the evaluation data itself,
//! which flatters every method. Here, for a set of grid cells (e.g. all aggregations of one
//! method), each fold chooses the cell with the best AUROC on the other folds and is scored
//! with it; the mean held-out AUROC is an honest estimate of "tune the aggregation, then
//! deploy", reported next to the optimistic best-in-grid AUROC.

use serde::{Deserialize, Serialize};

use super::uq::UqRow;

/// The cell one fold chose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldChoice {
    /// Fold number (0-based).
    pub fold: usize,
    /// Label of the cell with the best training AUROC (first in grid order on ties).
    pub chosen: String,
    /// Its training AUROC.
    pub train_auroc: f64,
    /// Its AUROC on the held-out fold (`None` if the fold holds one class only).
    pub heldout_auroc: Option<f64>,
}

/// A cell and its AUROC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellAuroc {
    /// Cell label.
    pub label: String,
    /// AUROC on all records.
    pub auroc: f64,
}

/// Cross-validated aggregation choice over one group of cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvResult {
    /// Group name (a method name, or what the caller passed).
    pub group: String,
    /// Cells in the group.
    pub n_cells: usize,
    /// Number of folds.
    pub folds: usize,
    /// Mean of the chosen cells' held-out AUROCs over the folds that have one.
    pub mean_heldout_auroc: Option<f64>,
    /// One entry per fold that had a cell with a training AUROC.
    pub choices: Vec<FoldChoice>,
    /// The best full-data AUROC in the group (tuned on the test data: optimistic).
    pub best_in_grid: Option<CellAuroc>,
}

/// Cross-validate the aggregation choice over `rows` (rows of one [`super::uq_grid`] call, so
/// they share the fold assignment).
///
/// ```
/// use padv_core::eval::{cross_validate, FoldAuroc, UqResult, UqRow};
/// use padv_core::score::ScoreSpec;
/// let row = |label: &str, auroc: f64, folds: Vec<FoldAuroc>| UqRow {
///     label: label.into(), spec: ScoreSpec::default(), folds,
///     result: UqResult { n: 10, n_pos: 5, n_dropped: 0, n_no_label: 0, n_no_score: 0,
///                        auroc: Some(auroc), auroc_ci: None, auprc: None, spearman: None },
/// };
/// let f = |train: f64, heldout: f64| FoldAuroc { train: Some(train), heldout: Some(heldout) };
/// // Fold 0 picks A (train .9 > .8) and gets .6; fold 1 picks B (.85 > .7) and gets .8.
/// let rows = [row("A", 0.75, vec![f(0.9, 0.6), f(0.7, 0.9)]),
///             row("B", 0.8, vec![f(0.8, 0.7), f(0.85, 0.8)])];
/// let cv = cross_validate("demo", &rows.iter().collect::<Vec<_>>());
/// assert!((cv.mean_heldout_auroc.unwrap() - 0.7).abs() < 1e-12); // (0.6 + 0.8) / 2
/// assert_eq!(cv.best_in_grid.unwrap().label, "B");
/// ```
pub fn cross_validate(group: &str, rows: &[&UqRow]) -> CvResult {
    let k = rows.iter().map(|r| r.folds.len()).max().unwrap_or(0);
    let mut choices = Vec::new();
    for fold in 0..k {
        let mut best: Option<(&UqRow, f64)> = None;
        for row in rows {
            if let Some(train) = row.folds.get(fold).and_then(|f| f.train) {
                if best.is_none_or(|(_, b)| train > b) {
                    best = Some((row, train));
                }
            }
        }
        if let Some((row, train)) = best {
            choices.push(FoldChoice {
                fold,
                chosen: row.label.clone(),
                train_auroc: train,
                heldout_auroc: row.folds[fold].heldout,
            });
        }
    }
    let heldout: Vec<f64> = choices.iter().filter_map(|c| c.heldout_auroc).collect();
    let mean_heldout_auroc =
        (!heldout.is_empty()).then(|| heldout.iter().sum::<f64>() / heldout.len() as f64);
    let mut best_in_grid: Option<CellAuroc> = None;
    for row in rows {
        if let Some(a) = row.result.auroc {
            if best_in_grid.as_ref().is_none_or(|b| a > b.auroc) {
                best_in_grid = Some(CellAuroc {
                    label: row.label.clone(),
                    auroc: a,
                });
            }
        }
    }
    CvResult {
        group: group.to_string(),
        n_cells: rows.len(),
        folds: k,
        mean_heldout_auroc,
        choices,
        best_in_grid,
    }
}

/// [`cross_validate`] once per method present in `rows` (first-appearance order), each over
/// all of that method's cells.
pub fn cross_validate_by_method(rows: &[UqRow]) -> Vec<CvResult> {
    crate::score::cells_by_method(rows.iter().map(|r| r.spec.group()))
        .into_iter()
        .map(|(m, idx)| {
            let group: Vec<&UqRow> = idx.iter().map(|&i| &rows[i]).collect();
            cross_validate(&m.name(), &group)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{FoldAuroc, UqResult};
    use crate::score::{Method, ScoreSpec};

    fn row(label: &str, method: Method, auroc: Option<f64>, folds: Vec<FoldAuroc>) -> UqRow {
        UqRow {
            label: label.into(),
            spec: ScoreSpec {
                method,
                ..ScoreSpec::default()
            },
            result: UqResult {
                n: 4,
                n_pos: 2,
                n_dropped: 0,
                n_no_label: 0,
                n_no_score: 0,
                auroc,
                auroc_ci: None,
                auprc: None,
                spearman: None,
            },
            folds,
        }
    }

    fn fa(train: Option<f64>, heldout: Option<f64>) -> FoldAuroc {
        FoldAuroc { train, heldout }
    }

    #[test]
    fn ties_pick_the_first_cell_and_missing_heldout_is_skipped() {
        let rows = [
            row(
                "A",
                Method::Pa,
                Some(0.6),
                vec![fa(Some(0.8), None), fa(Some(0.5), Some(0.4))],
            ),
            row(
                "B",
                Method::Pa,
                Some(0.6),
                vec![fa(Some(0.8), Some(1.0)), fa(Some(0.9), Some(0.7))],
            ),
        ];
        let cv = cross_validate("pa", &rows.iter().collect::<Vec<_>>());
        // fold 0: tie at 0.8 -> A (first), held-out None; fold 1: B (0.9) -> 0.7
        assert_eq!(cv.choices[0].chosen, "A");
        assert_eq!(cv.choices[0].heldout_auroc, None);
        assert_eq!(cv.choices[1].chosen, "B");
        assert_eq!(cv.mean_heldout_auroc, Some(0.7));
        // best-in-grid tie -> first
        assert_eq!(cv.best_in_grid.unwrap().label, "A");
    }

    #[test]
    fn folds_without_any_training_auroc_make_no_choice() {
        let rows = [row("A", Method::Pa, None, vec![fa(None, None)])];
        let cv = cross_validate("pa", &rows.iter().collect::<Vec<_>>());
        assert!(cv.choices.is_empty());
        assert_eq!(cv.mean_heldout_auroc, None);
        assert_eq!(cv.best_in_grid, None);
    }

    #[test]
    fn groups_by_method_in_first_appearance_order() {
        let rows = vec![
            row("d1", Method::Deepconf, Some(0.5), vec![]),
            row("p1", Method::Pa, Some(0.7), vec![]),
            row("d2", Method::Deepconf, Some(0.6), vec![]),
        ];
        let cvs = cross_validate_by_method(&rows);
        assert_eq!(cvs.len(), 2);
        assert_eq!((cvs[0].group.as_str(), cvs[0].n_cells), ("deepconf", 2));
        assert_eq!(cvs[0].best_in_grid.as_ref().unwrap().label, "d2");
        assert_eq!((cvs[1].group.as_str(), cvs[1].n_cells), ("pa", 1));
    }
}
