//! The percentile bootstrap of AUROC (the generator is [`crate::rng::SplitMix64`]).

use serde::{Deserialize, Serialize};

use super::metrics::MetricError;
use super::ranked::Ranked;

pub use crate::rng::SplitMix64;

/// A percentile bootstrap confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceInterval {
    /// Lower bound (the `(1 − level)/2` quantile of the resampled statistic).
    pub low: f64,
    /// Upper bound (the `(1 + level)/2` quantile).
    pub high: f64,
    /// Coverage, e.g. 0.95.
    pub level: f64,
    /// Number of resamples.
    pub n_boot: usize,
}

/// Stratified percentile bootstrap of AUROC: each resample draws `n₊` positives and `n₋`
/// negatives with replacement (as pROC's `ci.auc` does by default), so no resample loses a
/// class. Deterministic in `seed`. `None` when a class is absent or `n_boot == 0`.
///
/// ```
/// use padv_core::eval::auroc_bootstrap_ci;
/// // Perfectly separated classes stay separated in every resample: CI = [1, 1].
/// let ci = auroc_bootstrap_ci(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true], 200, 0.95, 7)?
///     .unwrap();
/// assert_eq!((ci.low, ci.high), (1.0, 1.0));
/// # Ok::<(), padv_core::eval::MetricError>(())
/// ```
pub fn auroc_bootstrap_ci(
    scores: &[f64],
    labels: &[bool],
    n_boot: usize,
    level: f64,
    seed: u64,
) -> Result<Option<ConfidenceInterval>, MetricError> {
    if scores.len() != labels.len() {
        return Err(MetricError::LengthMismatch {
            left: scores.len(),
            right: labels.len(),
        });
    }
    if let Some(index) = scores.iter().position(|v| v.is_nan()) {
        return Err(MetricError::NotANumber { index });
    }
    Ok(bootstrap_ranked(
        &Ranked::new(scores, labels),
        n_boot,
        level,
        seed,
    ))
}

/// Percentile bootstrap of the mean over `n` items, with the same resamples for every series
/// it is asked about, so intervals of several methods (and of their differences) are paired.
/// The draws are regenerated from the seed on each call: nothing of size `n_boot × n` is
/// stored, whatever the number of items.
///
/// ```
/// use padv_core::eval::MeanBootstrap;
/// let boot = MeanBootstrap::new(4, 500, 0.95, 7);
/// let ci = boot.ci(&[1.0, 1.0, 1.0, 1.0]).unwrap();
/// assert_eq!((ci.low, ci.high), (1.0, 1.0));
/// assert!(boot.ci(&[1.0]).is_none(), "a series of the wrong length has no interval");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanBootstrap {
    n: usize,
    n_boot: usize,
    level: f64,
    seed: u64,
}

impl MeanBootstrap {
    /// Resamples of `n` items, `n_boot` of them, intervals at coverage `level` (e.g. 0.95).
    pub fn new(n: usize, n_boot: usize, level: f64, seed: u64) -> Self {
        MeanBootstrap {
            n,
            n_boot,
            level,
            seed,
        }
    }

    /// The interval of the mean of `values` (one per item); `None` when there are no items,
    /// no resamples, or `values` does not hold exactly one value per item.
    pub fn ci(&self, values: &[f64]) -> Option<ConfidenceInterval> {
        let n = self.n;
        if n == 0 || self.n_boot == 0 || values.len() != n {
            return None;
        }
        let mut rng = SplitMix64::new(self.seed);
        let mut stats: Vec<f64> = (0..self.n_boot)
            .map(|_| (0..n).map(|_| values[rng.below(n)]).sum::<f64>() / n as f64)
            .collect();
        stats.sort_unstable_by(f64::total_cmp);
        let alpha = (1.0 - self.level) / 2.0;
        Some(ConfidenceInterval {
            low: quantile_sorted(&stats, alpha)?,
            high: quantile_sorted(&stats, 1.0 - alpha)?,
            level: self.level,
            n_boot: self.n_boot,
        })
    }
}

/// The bootstrap on already-sorted scores, `O(n)` per resample and without re-sorting.
///
/// A resample's AUROC only needs, for each drawn positive, the drawn negatives below its
/// tie group (counting 2) and in it (counting 1). So each resample draws the negatives into
/// a per-group histogram, turns it in one sequential pass into `2·(below) + (tied)` per group,
/// and sums that over the drawn positives' groups. Exact integer arithmetic, as in
/// [`super::auroc`].
pub(crate) fn bootstrap_ranked(
    ranked: &Ranked,
    n_boot: usize,
    level: f64,
    seed: u64,
) -> Option<ConfidenceInterval> {
    let (pos, neg) = ranked.class_groups()?;
    if n_boot == 0 || pos.is_empty() || neg.is_empty() {
        return None;
    }
    let (n_pos, n_neg) = (pos.len(), neg.len());
    // Per group, 2·(negatives below) + (negatives tied) ≤ 2·n_neg: u32 holds it (and keeps
    // the histogram half the size of u64, i.e. in cache longer) up to 2^31 negatives.
    if 2 * n_neg as u64 > u64::from(u32::MAX) {
        return None;
    }
    let denominator = 2.0 * n_pos as f64 * n_neg as f64;
    let mut rng = SplitMix64::new(seed);
    let mut per_group = vec![0u32; ranked.n_groups()];
    let mut stats = Vec::with_capacity(n_boot);
    for _ in 0..n_boot {
        per_group.fill(0);
        for _ in 0..n_neg {
            per_group[neg[rng.below(n_neg)] as usize] += 1;
        }
        let mut below = 0u32;
        for slot in per_group.iter_mut() {
            let tied = *slot;
            *slot = 2 * below + tied;
            below += tied;
        }
        let mut twice_wins = 0u64;
        for _ in 0..n_pos {
            twice_wins += u64::from(per_group[pos[rng.below(n_pos)] as usize]);
        }
        stats.push(twice_wins as f64 / denominator);
    }
    stats.sort_unstable_by(f64::total_cmp);
    let alpha = (1.0 - level.clamp(0.0, 1.0)) / 2.0;
    Some(ConfidenceInterval {
        low: quantile_sorted(&stats, alpha)?,
        high: quantile_sorted(&stats, 1.0 - alpha)?,
        level,
        n_boot,
    })
}

/// Quantile of sorted values by linear interpolation between order statistics (NumPy's
/// default `linear` method): position `q·(n − 1)`.
///
/// ```
/// use padv_core::eval::quantile_sorted;
/// // position 0.25 * 4 = 1 -> 20; position 0.9 * 4 = 3.6 -> 40 + 0.6 * (50 - 40) = 46
/// let v = [10.0, 20.0, 30.0, 40.0, 50.0];
/// assert_eq!(quantile_sorted(&v, 0.25), Some(20.0));
/// assert!((quantile_sorted(&v, 0.9).unwrap() - 46.0).abs() < 1e-12);
/// ```
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let h = q.clamp(0.0, 1.0) * last as f64;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(last);
    Some(sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noisy_case() -> (Vec<f64>, Vec<bool>) {
        let mut r = SplitMix64::new(11);
        let labels: Vec<bool> = (0..60).map(|i| i % 3 == 0).collect();
        let scores = labels
            .iter()
            .map(|&l| r.next_f64() + if l { 0.3 } else { 0.0 })
            .collect();
        (scores, labels)
    }

    #[test]
    fn bootstrap_is_deterministic_and_brackets_the_estimate() {
        let (s, l) = noisy_case();
        let a = auroc_bootstrap_ci(&s, &l, 500, 0.95, 42).unwrap().unwrap();
        let b = auroc_bootstrap_ci(&s, &l, 500, 0.95, 42).unwrap().unwrap();
        assert_eq!(a, b);
        let c = auroc_bootstrap_ci(&s, &l, 500, 0.95, 43).unwrap().unwrap();
        assert_ne!(a, c);
        let point = super::super::auroc(&s, &l).unwrap();
        assert!(a.low < point && point < a.high, "{a:?} vs {point}");
        assert!(a.high - a.low < 0.5);
        // a wider level gives a wider interval
        let wide = auroc_bootstrap_ci(&s, &l, 500, 0.99, 42).unwrap().unwrap();
        assert!(wide.low <= a.low && wide.high >= a.high);
    }

    #[test]
    fn bootstrap_equals_naive_resampling_with_the_same_draws() {
        // Tied scores, so the per-group histogram's tie handling is exercised.
        let (s, l) = noisy_case();
        let s: Vec<f64> = s.iter().map(|x| (x * 8.0).round() / 8.0).collect();
        let (n_boot, seed) = (40, 3);
        let got = auroc_bootstrap_ci(&s, &l, n_boot, 0.9, seed)
            .unwrap()
            .unwrap();
        // Naive: materialise each resample and call `auroc`. Class members in ascending
        // score order (the order the fast version draws from), negatives drawn first.
        let sorted_class = |want: bool| {
            let mut v: Vec<f64> = s
                .iter()
                .zip(&l)
                .filter(|p| *p.1 == want)
                .map(|p| *p.0)
                .collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let (pos, neg) = (sorted_class(true), sorted_class(false));
        let mut rng = SplitMix64::new(seed);
        let mut stats = Vec::new();
        for _ in 0..n_boot {
            let mut scores = Vec::new();
            let mut labels = Vec::new();
            for _ in 0..neg.len() {
                scores.push(neg[rng.below(neg.len())]);
                labels.push(false);
            }
            for _ in 0..pos.len() {
                scores.push(pos[rng.below(pos.len())]);
                labels.push(true);
            }
            stats.push(super::super::auroc(&scores, &labels).unwrap());
        }
        stats.sort_by(f64::total_cmp);
        assert_eq!(got.low, quantile_sorted(&stats, 0.05).unwrap());
        assert_eq!(got.high, quantile_sorted(&stats, 0.95).unwrap());
    }

    #[test]
    fn bootstrap_undefined_cases() {
        assert_eq!(
            auroc_bootstrap_ci(&[1.0, 2.0], &[true, true], 10, 0.95, 0),
            Ok(None)
        );
        assert_eq!(
            auroc_bootstrap_ci(&[1.0, 2.0], &[true, false], 0, 0.95, 0),
            Ok(None)
        );
    }
}
