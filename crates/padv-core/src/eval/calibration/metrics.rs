//! Proper scores and calibration error of predicted success probabilities.
//!
//! - Brier score: `mean (p − y)²` (scikit-learn's `brier_score_loss`); ↓, 0 is perfect,
//!   always predicting the base rate π gives `π(1 − π)`.
//! - Log-loss: `−mean [y·ln p + (1 − y)·ln(1 − p)]` with `p` clipped to
//!   `[LOG_LOSS_EPS, 1 − LOG_LOSS_EPS]` (scikit-learn's `log_loss` on clipped inputs); ↓.
//!   Clipping matters for isotonic maps, which predict exactly 0 or 1 at the ends.
//! - Expected calibration error with [`ECE_BINS`] equal-width bins of the prediction over
//!   `[0, 1]`, closed on the right as scikit-learn's `calibration_curve(strategy="uniform")`
//!   bins them (bin `b` holds `b/10 < p ≤ (b+1)/10`, the first also `p = 0`):
//!   `Σ_b (n_b / n)·|success rate_b − mean prediction_b|` over non-empty bins; ↓.

use serde::{Deserialize, Serialize};

/// Probabilities are clipped to `[LOG_LOSS_EPS, 1 − LOG_LOSS_EPS]` before the log-loss.
pub const LOG_LOSS_EPS: f64 = 1e-15;

/// Equal-width bins of the expected calibration error and the reliability diagram.
pub const ECE_BINS: usize = 10;

/// One bin of a reliability diagram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    /// Lower edge of the bin (exclusive, except 0.0 for the first bin).
    pub low: f64,
    /// Upper edge (inclusive).
    pub high: f64,
    /// Predictions in the bin.
    pub n: usize,
    /// Mean prediction in the bin; `None` when empty.
    pub mean_predicted: Option<f64>,
    /// Success rate in the bin; `None` when empty.
    pub success_rate: Option<f64>,
}

/// Calibration metrics of a set of predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationMetrics {
    /// Predictions evaluated.
    pub n: usize,
    /// Successes among them.
    pub n_pos: usize,
    /// Brier score ↓.
    pub brier: f64,
    /// Log-loss ↓ (clipped at [`LOG_LOSS_EPS`]).
    pub log_loss: f64,
    /// Expected calibration error ↓ ([`ECE_BINS`] equal-width bins).
    pub ece: f64,
    /// The bins behind `ece`, for a reliability diagram.
    pub reliability: Vec<ReliabilityBin>,
}

/// Metrics of `predicted` probabilities against outcomes; `None` when empty, misaligned or
/// when a prediction is not a probability (NaN or outside `[0, 1]`).
///
/// ```
/// use padv_core::eval::calibration::calibration_metrics;
/// // p = 0.8 (success), 0.4 (failure): Brier = (0.04 + 0.16) / 2 = 0.1;
/// // log-loss = −(ln 0.8 + ln 0.6) / 2; ECE: bins (0.7, 0.8] and (0.3, 0.4], each holding one
/// // prediction: (|1 − 0.8| + |0 − 0.4|) / 2 = 0.3.
/// let m = calibration_metrics(&[0.8, 0.4], &[true, false]).unwrap();
/// assert!((m.brier - 0.1).abs() < 1e-12);
/// assert!((m.log_loss + (0.8f64.ln() + 0.6f64.ln()) / 2.0).abs() < 1e-12);
/// assert!((m.ece - 0.3).abs() < 1e-12);
/// ```
pub fn calibration_metrics(predicted: &[f64], outcomes: &[bool]) -> Option<CalibrationMetrics> {
    let n = predicted.len();
    if n == 0 || n != outcomes.len() || predicted.iter().any(|p| !(0.0..=1.0).contains(p)) {
        return None;
    }
    let (mut brier, mut log_loss) = (0.0, 0.0);
    let mut sums = [(0usize, 0.0f64, 0usize); ECE_BINS];
    for (&p, &y) in predicted.iter().zip(outcomes) {
        let yf = f64::from(u8::from(y));
        brier += (p - yf) * (p - yf);
        let pc = p.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
        log_loss -= if y { pc.ln() } else { (1.0 - pc).ln() };
        let b = bin_of(p);
        sums[b].0 += 1;
        sums[b].1 += p;
        sums[b].2 += usize::from(y);
    }
    let mut ece = 0.0;
    let reliability = sums
        .iter()
        .enumerate()
        .map(|(b, &(count, sum_p, pos))| {
            let (mean_predicted, success_rate) = if count > 0 {
                let (mp, sr) = (sum_p / count as f64, pos as f64 / count as f64);
                ece += count as f64 / n as f64 * (sr - mp).abs();
                (Some(mp), Some(sr))
            } else {
                (None, None)
            };
            ReliabilityBin {
                low: edge(b),
                high: edge(b + 1),
                n: count,
                mean_predicted,
                success_rate,
            }
        })
        .collect();
    Some(CalibrationMetrics {
        n,
        n_pos: outcomes.iter().filter(|&&y| y).count(),
        brier: brier / n as f64,
        log_loss: log_loss / n as f64,
        ece,
        reliability,
    })
}

/// Edge `j` of the bins: `j·(1/ECE_BINS)` as NumPy's `linspace(0, 1, ECE_BINS + 1)`
/// computes it (so a prediction on an edge lands in the same bin as in scikit-learn).
fn edge(j: usize) -> f64 {
    if j >= ECE_BINS {
        1.0
    } else {
        j as f64 * (1.0 / ECE_BINS as f64)
    }
}

/// The bin of `p`: the number of interior edges strictly below it (NumPy's
/// `searchsorted(edges[1:-1], p)`, side left).
fn bin_of(p: f64) -> usize {
    (1..ECE_BINS).filter(|&j| edge(j) < p).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_keeps_log_loss_finite_and_bins_include_one() {
        // A confident wrong prediction: p = 0 for a success -> −ln(1e-15).
        let m = calibration_metrics(&[0.0, 1.0], &[true, true]).unwrap();
        assert!((m.log_loss - (-(1e-15f64).ln()) / 2.0).abs() < 1e-9);
        // p = 1.0 falls into the last bin, p = 0.0 into the first.
        assert_eq!(m.reliability[9].n, 1);
        assert_eq!(m.reliability[0].n, 1);
        assert_eq!(m.reliability[5].mean_predicted, None);
        // Bins are closed on the right: 0.5 belongs to (0.4, 0.5], 0.1 to [0, 0.1].
        assert_eq!((bin_of(0.5), bin_of(0.1), bin_of(0.100_000_1)), (4, 0, 1));
    }

    #[test]
    fn refuses_what_is_not_a_probability() {
        assert!(calibration_metrics(&[], &[]).is_none());
        assert!(calibration_metrics(&[1.5], &[true]).is_none());
        assert!(calibration_metrics(&[f64::NAN], &[true]).is_none());
        assert!(calibration_metrics(&[0.5], &[true, false]).is_none());
    }
}
