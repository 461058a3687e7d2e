//! Calibration: from a trajectory score to a probability of success.
//!
//! AUROC says whether a score *ranks* successes above failures; a team that wants an alarm
//! ("this episode fails with 80 % probability") needs a map from score to probability and a
//! proper score of that probability. This module gives both:
//!
//! - two monotone maps, fitted to `(score, success)` pairs: [`CalibrationKind::Platt`]
//!   (logistic regression on the standardised score) and [`CalibrationKind::Isotonic`]
//!   (pool-adjacent-violators), with scikit-learn's definitions (see [`fit`](self) notes on
//!   [`PLATT_C`]);
//! - [`calibration_metrics`]: Brier score, log-loss (clipped at [`LOG_LOSS_EPS`]) and
//!   expected calibration error ([`ECE_BINS`] equal-width bins) of predictions;
//! - [`cross_validated`]: both maps fitted on the training folds and applied to the held-out
//!   fold, pooled over folds: what the UQ report states per method;
//! - [`Calibration`]: a fitted map saved as JSON (`padv eval uq --calibrate-out FILE`) and
//!   loaded back for serving ([`Calibration::load`], [`Calibration::predict`]).
//!
//! ```
//! use padv_core::eval::calibration::{Calibration, CalibrationKind};
//! use padv_core::score::ScoreSpec;
//! // Three failures at low scores, three successes at high ones (one failure among them).
//! let scores = [Some(-2.0), Some(-1.5), Some(-1.0), Some(0.5), Some(1.0), Some(2.0)];
//! let labels = [Some(0.0), Some(0.0), Some(0.0), Some(1.0), Some(0.0), Some(1.0)];
//! let cal = Calibration::fit(&scores, &labels, ScoreSpec::default(), CalibrationKind::Isotonic)?;
//! // Isotonic: 0 below the failures' scores, 1 at the top; between, the pooled rate.
//! assert_eq!(cal.predict(-3.0), 0.0);
//! assert_eq!(cal.predict(3.0), 1.0);
//! assert_eq!(cal.predict(0.75), 0.5);
//! let back = Calibration::from_json_str(&serde_json::to_string(&cal).unwrap())?;
//! assert_eq!(back.predict(0.75), 0.5);
//! # Ok::<(), padv_core::eval::calibration::CalibrationError>(())
//! ```

mod fit;
mod metrics;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use fit::PLATT_C;
pub use metrics::{
    calibration_metrics, CalibrationMetrics, ReliabilityBin, ECE_BINS, LOG_LOSS_EPS,
};

use crate::is_success_reward;
use crate::score::names::named_enum;
use crate::score::{Method, ScoreSpec};
use fit::{fit_isotonic, fit_platt, isotonic_predict, sigmoid};

/// The `format` field of a saved calibration file.
pub const CALIBRATION_FORMAT: &str = "padv-calibration/1";

named_enum! {
    /// Which monotone map.
    #[serde(rename_all = "snake_case")]
    pub enum CalibrationKind ("calibration kind") {
        /// Logistic regression on the standardised score (Platt scaling), scikit-learn's
        /// `LogisticRegression(C=1.0)`: smooth, two parameters.
        Platt = "platt",
        /// Isotonic regression (pool-adjacent-violators), scikit-learn's
        /// `IsotonicRegression(out_of_bounds="clip")`: any non-decreasing step shape.
        Isotonic = "isotonic",
    }
}

/// Why a calibration could not be fitted, loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    /// Too few labelled, scored records, or one class only.
    #[error("cannot fit a calibration: {0}")]
    NotEnoughData(String),
    /// The cell to calibrate does not exist or cannot be scored.
    #[error("cannot fit a calibration: {0}")]
    NoCell(String),
    /// A calibration file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A calibration file is not valid JSON of the expected shape, or its map is unusable.
    #[error("{path}: not a padv calibration file: {message}")]
    Invalid {
        /// The file (`<string>` when parsed from text).
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
}

/// The parameters of a fitted map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CalibrationMap {
    /// `p(s) = σ(slope·s + intercept)` in raw score units.
    Platt {
        /// Slope per score unit (`coef_standardised / score_std`).
        slope: f64,
        /// Intercept.
        intercept: f64,
        /// Training mean of the score (the standardisation's centre).
        score_mean: f64,
        /// Training population standard deviation of the score (its scale; 0 for a constant
        /// score, which then gets slope 0).
        score_std: f64,
        /// The coefficient on the standardised score (scikit-learn's `coef_`).
        coef_standardised: f64,
        /// The intercept on the standardised score (scikit-learn's `intercept_`).
        intercept_standardised: f64,
    },
    /// Linear interpolation between breakpoints, clipped to the end values outside them.
    Isotonic {
        /// Scores, strictly increasing.
        x: Vec<f64>,
        /// Probabilities at `x`, non-decreasing, in `[0, 1]`.
        y: Vec<f64>,
    },
}

impl CalibrationMap {
    /// The kind of map.
    pub fn kind(&self) -> CalibrationKind {
        match self {
            CalibrationMap::Platt { .. } => CalibrationKind::Platt,
            CalibrationMap::Isotonic { .. } => CalibrationKind::Isotonic,
        }
    }

    /// The probability of success at `score`; NaN for a NaN score.
    pub fn predict(&self, score: f64) -> f64 {
        match self {
            CalibrationMap::Platt {
                slope, intercept, ..
            } => {
                if score.is_nan() {
                    f64::NAN
                } else if *slope == 0.0 {
                    // 0·±∞ would be NaN; a flat map ignores the score.
                    sigmoid(*intercept)
                } else {
                    sigmoid(slope * score + intercept)
                }
            }
            CalibrationMap::Isotonic { x, y } => isotonic_predict(x, y, score),
        }
    }

    /// Fits a map of `kind` to finite `scores` and their outcomes.
    pub fn fit(
        scores: &[f64],
        outcomes: &[bool],
        kind: CalibrationKind,
    ) -> Result<CalibrationMap, CalibrationError> {
        let n_pos = outcomes.iter().filter(|&&y| y).count();
        if scores.len() != outcomes.len() || scores.iter().any(|s| !s.is_finite()) {
            return Err(CalibrationError::NotEnoughData(
                "scores must be finite and aligned with the outcomes".into(),
            ));
        }
        if n_pos == 0 || n_pos == outcomes.len() {
            return Err(CalibrationError::NotEnoughData(format!(
                "{} labelled, scored records with {n_pos} successes: both classes are needed",
                outcomes.len()
            )));
        }
        let not_enough = || CalibrationError::NotEnoughData("fit failed".into());
        Ok(match kind {
            CalibrationKind::Platt => {
                let f = fit_platt(scores, outcomes).ok_or_else(not_enough)?;
                CalibrationMap::Platt {
                    slope: f.slope,
                    intercept: f.intercept,
                    score_mean: f.score_mean,
                    score_std: f.score_std,
                    coef_standardised: f.coef_standardised,
                    intercept_standardised: f.intercept_standardised,
                }
            }
            CalibrationKind::Isotonic => {
                let f = fit_isotonic(scores, outcomes).ok_or_else(not_enough)?;
                CalibrationMap::Isotonic { x: f.x, y: f.y }
            }
        })
    }

    /// Checks the invariants a loaded map must hold; the message names the field.
    fn validate(&self) -> Result<(), String> {
        match self {
            CalibrationMap::Platt {
                slope, intercept, ..
            } => {
                if !slope.is_finite() || !intercept.is_finite() {
                    return Err("map.slope and map.intercept must be finite".into());
                }
            }
            CalibrationMap::Isotonic { x, y } => {
                if x.is_empty() || x.len() != y.len() {
                    return Err(format!(
                        "map.x and map.y must be non-empty and equally long ({} vs {})",
                        x.len(),
                        y.len()
                    ));
                }
                if let Some(i) = x.iter().position(|v| !v.is_finite()) {
                    return Err(format!("map.x[{i}] is not finite"));
                }
                if let Some(i) = x.windows(2).position(|w| w[0] >= w[1]) {
                    return Err(format!("map.x must be strictly increasing (at {})", i + 1));
                }
                if let Some(i) = y.iter().position(|v| !(0.0..=1.0).contains(v)) {
                    return Err(format!("map.y[{i}] is not a probability"));
                }
                if let Some(i) = y.windows(2).position(|w| w[0] > w[1]) {
                    return Err(format!("map.y must be non-decreasing (at {})", i + 1));
                }
            }
        }
        Ok(())
    }
}

/// How a saved map was fitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitInfo {
    /// Labelled records with a finite score the map was fitted on.
    pub n: usize,
    /// Successes among them.
    pub n_pos: usize,
    /// Records given (including unlabelled and unscored ones, not used).
    pub records: usize,
    /// What the fit is, in words (method, regularisation, data).
    pub description: String,
    /// How the cell was chosen (e.g. "the UQ headline cell chosen by 5-fold cross-validation").
    pub cell_selection: String,
    /// The padv version that fitted it.
    pub padv_version: String,
}

/// A fitted score → probability map for one score cell, as saved by
/// `padv eval uq --calibrate-out FILE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// Always [`CALIBRATION_FORMAT`].
    pub format: String,
    /// The scoring method.
    pub method: Method,
    /// The cell's label ([`ScoreSpec::label`]).
    pub label: String,
    /// The cell: score a trajectory with exactly this spec (β included) before
    /// [`Calibration::predict`].
    pub spec: ScoreSpec,
    /// The map.
    pub map: CalibrationMap,
    /// How it was fitted.
    pub fitted: FitInfo,
}

impl Calibration {
    /// Fits a map of `kind` for the cell `spec` to aligned trajectory scores and rewards
    /// (records without a reward or a finite score are left out; success is
    /// [`is_success_reward`]).
    pub fn fit(
        scores: &[Option<f64>],
        rewards: &[Option<f64>],
        spec: ScoreSpec,
        kind: CalibrationKind,
    ) -> Result<Calibration, CalibrationError> {
        let (s, y) = labelled_scores(scores, rewards, |_| true);
        let map = CalibrationMap::fit(&s, &y, kind)?;
        let n_pos = y.iter().filter(|&&v| v).count();
        let description = match kind {
            CalibrationKind::Platt => format!(
                "Platt scaling: logistic regression of success on the score standardised with \
                 the training mean and standard deviation, L2 penalty ½w² on the slope \
                 (C = {PLATT_C}, scikit-learn's LogisticRegression default), intercept \
                 unpenalised; fitted on all {} labelled, scored records",
                s.len()
            ),
            CalibrationKind::Isotonic => format!(
                "isotonic regression (pool-adjacent-violators, increasing; equal scores \
                 merged; linear interpolation between breakpoints, clipped outside them: \
                 scikit-learn's IsotonicRegression(out_of_bounds=\"clip\")); fitted on all {} \
                 labelled, scored records",
                s.len()
            ),
        };
        Ok(Calibration {
            format: CALIBRATION_FORMAT.to_string(),
            method: spec.method,
            label: spec.label(),
            spec,
            map,
            fitted: FitInfo {
                n: s.len(),
                n_pos,
                records: scores.len(),
                description,
                cell_selection: "given".to_string(),
                padv_version: env!("CARGO_PKG_VERSION").to_string(),
            },
        })
    }

    /// The probability of success of a trajectory whose score under [`Calibration::spec`] is
    /// `score`. NaN for a NaN score; the map's end values for ±∞.
    pub fn predict(&self, score: f64) -> f64 {
        self.map.predict(score)
    }

    /// Parses and validates a calibration from JSON text.
    pub fn from_json_str(text: &str) -> Result<Calibration, CalibrationError> {
        Self::parse(text, Path::new("<string>"))
    }

    /// Reads and validates a calibration file.
    pub fn load(path: &Path) -> Result<Calibration, CalibrationError> {
        let text = std::fs::read_to_string(path).map_err(|source| CalibrationError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Writes the calibration as pretty JSON, atomically.
    pub fn save(&self, path: &Path) -> Result<(), CalibrationError> {
        let mut text =
            serde_json::to_string_pretty(self).map_err(|e| CalibrationError::Invalid {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        text.push('\n');
        crate::atomic::write_bytes_atomic(path, text.as_bytes()).map_err(|source| {
            CalibrationError::Io {
                path: path.to_path_buf(),
                source,
            }
        })
    }

    fn parse(text: &str, path: &Path) -> Result<Calibration, CalibrationError> {
        let invalid = |message: String| CalibrationError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let cal: Calibration = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if cal.format != CALIBRATION_FORMAT {
            return Err(invalid(format!(
                "format {:?}, expected {CALIBRATION_FORMAT:?}",
                cal.format
            )));
        }
        cal.map.validate().map_err(invalid)?;
        let spec = cal
            .spec
            .validated()
            .map_err(|e| invalid(format!("spec: {e}")))?;
        if spec.method != cal.method {
            return Err(invalid(format!(
                "method {} differs from spec.method {}",
                cal.method, spec.method
            )));
        }
        Ok(cal)
    }
}

/// Fits a map of `kind` on all `records` for the headline cell of `method` in a UQ
/// `report` of the same records (`padv eval uq --calibrate-out`): the cell the
/// cross-validation chose in a grid, the given cell otherwise.
pub fn fit_headline(
    records: &[crate::LogprobRecord],
    report: &crate::eval::EvalReport,
    method: Method,
    kind: CalibrationKind,
) -> Result<Calibration, CalibrationError> {
    let table = crate::score::ScoreTable::precompute(records)
        .map_err(|e| CalibrationError::NoCell(e.to_string()))?;
    fit_headline_table(&table, report, method, kind)
}

/// [`fit_headline`] on the [`crate::score::ScoreTable`] of the records (as `padv eval`
/// builds it a batch at a time).
pub fn fit_headline_table(
    table: &crate::score::ScoreTable,
    report: &crate::eval::EvalReport,
    method: Method,
    kind: CalibrationKind,
) -> Result<Calibration, CalibrationError> {
    fit_headline_with(
        |spec| table.trajectory_scores(spec).map_err(|e| e.to_string()),
        table.labels(),
        report,
        method,
        kind,
    )
}

/// [`fit_headline`] on scanned record files ([`crate::eval::scan_record_files`]): one more
/// pass over the files when their table was not kept.
pub fn fit_headline_scan(
    scan: &crate::eval::RecordScan,
    report: &crate::eval::EvalReport,
    method: Method,
    kind: CalibrationKind,
) -> Result<Calibration, CalibrationError> {
    fit_headline_with(
        |spec| scan.trajectory_scores(spec).map_err(|e| e.to_string()),
        scan.labels(),
        report,
        method,
        kind,
    )
}

fn fit_headline_with(
    scores_of: impl FnOnce(&ScoreSpec) -> Result<Vec<Option<f64>>, String>,
    labels: &[Option<f64>],
    report: &crate::eval::EvalReport,
    method: Method,
    kind: CalibrationKind,
) -> Result<Calibration, CalibrationError> {
    let crate::eval::report::ReportBody::Uq(uq) = &report.results else {
        return Err(CalibrationError::NoCell(format!(
            "a calibration is fitted from a UQ report, not a {} one",
            report.evaluation
        )));
    };
    let (Some(spec), Some(m)) = (
        uq.headline_spec(method),
        uq.methods.iter().find(|m| m.method == method),
    ) else {
        let have: Vec<String> = uq.methods.iter().map(|m| m.method.to_string()).collect();
        return Err(CalibrationError::NoCell(format!(
            "method {method} was not evaluated (evaluated: {})",
            have.join(", ")
        )));
    };
    let scores = scores_of(&spec).map_err(CalibrationError::NoCell)?;
    let mut cal = Calibration::fit(&scores, labels, spec, kind)?;
    let h = &m.headline;
    cal.fitted.cell_selection = match (h.selection, h.chosen_in_folds) {
        (crate::eval::report::Selection::CrossValidated, Some(n)) => format!(
            "the UQ headline cell of {method}: the aggregation chosen by {n} of {} folds of a \
             {}-fold cross-validation of AUROC",
            h.folds, h.folds
        ),
        _ => format!("the given cell of {method}"),
    };
    Ok(cal)
}

/// Finite scores and success outcomes of the records that have both and pass `keep`.
fn labelled_scores<S: crate::eval::ScoreSlot>(
    scores: &[S],
    rewards: &[Option<f64>],
    keep: impl Fn(usize) -> bool,
) -> (Vec<f64>, Vec<bool>) {
    scores
        .iter()
        .zip(rewards)
        .enumerate()
        .filter_map(|(i, (s, r))| match (s.score(), r) {
            (Some(s), Some(r)) if s.is_finite() && keep(i) => Some((s, is_success_reward(*r))),
            _ => None,
        })
        .unzip()
}

/// Both maps' held-out predictions pooled over the folds of a cross-validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldoutCalibration {
    /// Folds (0 when not evaluated).
    pub folds: usize,
    /// Held-out predictions (labelled records with a finite score in an evaluated fold).
    pub n: usize,
    /// Platt scaling's held-out metrics; `None` when nothing could be evaluated (`note`).
    pub platt: Option<CalibrationMetrics>,
    /// Isotonic regression's held-out metrics; `None` when nothing could be evaluated.
    pub isotonic: Option<CalibrationMetrics>,
    /// Why something is missing, in words.
    pub note: Option<String>,
}

/// Cross-validated calibration: for each fold `f`, both maps are fitted on the labelled,
/// scored records outside `f` using `scores_of(f)` (the cell that fold chose) and applied
/// to the records in `f`; metrics are computed on the pooled held-out predictions.
///
/// `folds[i]` is record `i`'s fold (`None`: unlabelled), e.g. from
/// [`crate::eval::stratified_folds`]. A fold whose training records hold one class only is
/// skipped (named in `note`), so both maps are always judged on the same records.
pub fn cross_validated<'a, S: crate::eval::ScoreSlot + 'a>(
    scores_of: impl Fn(usize) -> &'a [S],
    rewards: &[Option<f64>],
    folds: &[Option<usize>],
    k: usize,
) -> HeldoutCalibration {
    let mut out = HeldoutCalibration {
        folds: k,
        n: 0,
        platt: None,
        isotonic: None,
        note: None,
    };
    if k < 2 {
        out.note = Some(format!(
            "calibration not evaluated: held-out predictions need at least 2 folds, got {k}"
        ));
        return out;
    }
    // Both classes must be there at all (any fold's cell will do to count them).
    let (_, all) = labelled_scores(scores_of(0), rewards, |i| {
        folds.get(i).copied().flatten().is_some()
    });
    let n_pos_all = all.iter().filter(|&&y| y).count();
    let n_neg_all = all.len() - n_pos_all;
    if n_pos_all < 2 || n_neg_all < 2 {
        out.note = Some(format!(
            "nothing to evaluate: {n_pos_all} successes and {n_neg_all} failures among the \
             labelled, scored records; calibration needs at least 2 of each"
        ));
        return out;
    }
    let (mut p_platt, mut p_iso, mut outcomes) = (Vec::new(), Vec::new(), Vec::new());
    let mut skipped = Vec::new();
    for f in 0..k {
        let scores = scores_of(f);
        let in_fold = |i: usize| folds.get(i).copied().flatten();
        let (train_s, train_y) =
            labelled_scores(scores, rewards, |i| in_fold(i).is_some_and(|g| g != f));
        let (test_s, test_y) = labelled_scores(scores, rewards, |i| in_fold(i) == Some(f));
        if test_s.is_empty() {
            continue;
        }
        let fits = (
            CalibrationMap::fit(&train_s, &train_y, CalibrationKind::Platt),
            CalibrationMap::fit(&train_s, &train_y, CalibrationKind::Isotonic),
        );
        let (Ok(platt), Ok(iso)) = fits else {
            skipped.push(f);
            continue;
        };
        p_platt.extend(test_s.iter().map(|&s| platt.predict(s)));
        p_iso.extend(test_s.iter().map(|&s| iso.predict(s)));
        outcomes.extend(test_y);
    }
    out.n = outcomes.len();
    let n_pos = outcomes.iter().filter(|&&y| y).count();
    let mut notes = Vec::new();
    if !skipped.is_empty() {
        notes.push(format!(
            "folds {skipped:?} skipped: their training records hold one class only"
        ));
    }
    if out.n == 0 || n_pos == 0 || n_pos == out.n {
        notes.push(format!(
            "nothing to evaluate: {} held-out predictions with {n_pos} successes (calibration \
             needs both classes among labelled, scored records)",
            out.n
        ));
    } else {
        out.platt = calibration_metrics(&p_platt, &outcomes);
        out.isotonic = calibration_metrics(&p_iso, &outcomes);
    }
    out.note = (!notes.is_empty()).then(|| notes.join("; "));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::stratified_folds;

    #[test]
    fn loading_refuses_broken_maps_naming_the_field() {
        let cal = Calibration::fit(
            &[Some(0.0), Some(1.0), Some(2.0), Some(3.0)],
            &[Some(0.0), Some(1.0), Some(0.0), Some(1.0)],
            ScoreSpec::default(),
            CalibrationKind::Isotonic,
        )
        .unwrap();
        let mut v = serde_json::to_value(&cal).unwrap();
        v["map"]["x"] = serde_json::json!([1.0, 0.0, 2.0, 3.0]);
        let e = Calibration::from_json_str(&v.to_string()).unwrap_err();
        assert!(
            e.to_string().contains("map.x must be strictly increasing"),
            "{e}"
        );
        let mut v = serde_json::to_value(&cal).unwrap();
        v["format"] = "something/2".into();
        let e = Calibration::from_json_str(&v.to_string()).unwrap_err();
        assert!(e.to_string().contains("format"), "{e}");
        let mut v = serde_json::to_value(&cal).unwrap();
        v["spec"]["beta"] = serde_json::json!(-1.0);
        assert!(Calibration::from_json_str(&v.to_string()).is_err());
        assert!(Calibration::from_json_str("{").is_err());
    }

    #[test]
    fn one_class_is_not_enough_and_says_so() {
        let e = Calibration::fit(
            &[Some(0.0), Some(1.0)],
            &[Some(1.0), Some(1.0)],
            ScoreSpec::default(),
            CalibrationKind::Platt,
        )
        .unwrap_err();
        assert!(e.to_string().contains("both classes"), "{e}");
        let h = cross_validated(
            |_| &[Some(0.0), Some(1.0)][..],
            &[Some(1.0), Some(1.0)],
            &[Some(0), Some(1)],
            2,
        );
        assert!(h.platt.is_none() && h.isotonic.is_none());
        assert!(h.note.unwrap().contains("nothing to evaluate"));
    }

    #[test]
    fn heldout_predictions_never_see_their_own_record() {
        // A score that is pure noise except for one extreme record per fold: were a record
        // in its own training set, isotonic would predict its label exactly.
        let n = 40;
        let rewards: Vec<Option<f64>> = (0..n)
            .map(|i| Some(f64::from(u8::from(i % 2 == 0))))
            .collect();
        let scores: Vec<Option<f64>> = (0..n).map(|i| Some(i as f64)).collect();
        let folds = stratified_folds(&rewards, 4, 3);
        let h = cross_validated(|_| &scores, &rewards, &folds, 4);
        let iso = h.isotonic.unwrap();
        assert_eq!((h.n, iso.n, iso.n_pos), (40, 40, 20));
        // Alternating labels on increasing scores: no map can beat the base rate by much.
        assert!(iso.brier > 0.2, "{iso:?}");
    }
}
