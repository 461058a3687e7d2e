//! Rank metrics: AUROC, average precision (AUPRC) and Spearman's ρ.
//!
//! Cross-checked against scikit-learn `roc_auc_score`, `average_precision_score` and SciPy
//! `spearmanr` to 1e-12 (`tests/metrics_fixtures.rs`, fixtures from
//! `scripts/make_metric_fixtures.py`).

use super::ranked::Ranked;

/// Why a metric is undefined for its input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricError {
    /// The two input slices differ in length.
    #[error("length mismatch: {left} scores but {right} labels/values")]
    LengthMismatch {
        /// Length of the first slice.
        left: usize,
        /// Length of the second slice.
        right: usize,
    },
    /// An input value is NaN.
    #[error("input {index} is NaN")]
    NotANumber {
        /// Position of the first NaN.
        index: usize,
    },
    /// Only one class is present, so no ranking between classes exists.
    #[error("only one class present ({n_pos} positives, {n_neg} negatives)")]
    SingleClass {
        /// Number of positives.
        n_pos: usize,
        /// Number of negatives.
        n_neg: usize,
    },
    /// One of the inputs is constant (or there are fewer than two items), so a correlation
    /// is undefined.
    #[error("correlation undefined: an input is constant or has fewer than 2 values")]
    Constant,
}

fn check(scores: &[f64], other_len: usize) -> Result<(), MetricError> {
    if scores.len() != other_len {
        return Err(MetricError::LengthMismatch {
            left: scores.len(),
            right: other_len,
        });
    }
    match scores.iter().position(|v| v.is_nan()) {
        Some(index) => Err(MetricError::NotANumber { index }),
        None => Ok(()),
    }
}

fn single_class(labels: &[bool]) -> MetricError {
    let n_pos = labels.iter().filter(|&&l| l).count();
    MetricError::SingleClass {
        n_pos,
        n_neg: labels.len() - n_pos,
    }
}

/// Area under the ROC curve: the probability that a random positive scores above a random
/// negative, ties counting ½ (Mann–Whitney U / (n₊·n₋), equal to the average-rank formula).
/// Infinite scores are allowed; NaN is an error.
///
/// ```
/// use padv_core::eval::auroc;
/// assert_eq!(auroc(&[0.9, 0.2], &[true, false])?, 1.0);
/// // positives 0.4, 0.8; negatives 0.4, 0.1. Pairs: (0.4 vs 0.4) tie = 1/2, (0.4 vs 0.1) = 1,
/// // (0.8 vs 0.4) = 1, (0.8 vs 0.1) = 1  ->  3.5 / 4 = 0.875
/// assert_eq!(auroc(&[0.4, 0.8, 0.4, 0.1], &[true, true, false, false])?, 0.875);
/// # Ok::<(), padv_core::eval::MetricError>(())
/// ```
pub fn auroc(scores: &[f64], labels: &[bool]) -> Result<f64, MetricError> {
    check(scores, labels.len())?;
    Ranked::new(scores, labels)
        .auroc()
        .ok_or_else(|| single_class(labels))
}

/// Average precision (area under the precision–recall curve, scikit-learn's step form):
/// `Σₙ (Rₙ − Rₙ₋₁)·Pₙ` over thresholds at each distinct score, highest first; tied scores
/// enter together. Errors without positives (recall is undefined); with no negatives it is 1.
///
/// ```
/// use padv_core::eval::auprc;
/// // Ranking from the top: 0.9 (pos), 0.7 (neg), 0.5 (pos).
/// // Thresholds: 0.9 -> R = 1/2, P = 1; 0.7 -> R = 1/2, P = 1/2; 0.5 -> R = 1, P = 2/3.
/// // AP = (1/2)(1) + 0 + (1/2)(2/3) = 5/6
/// let ap = auprc(&[0.9, 0.7, 0.5], &[true, false, true])?;
/// assert!((ap - 5.0 / 6.0).abs() < 1e-15);
/// # Ok::<(), padv_core::eval::MetricError>(())
/// ```
pub fn auprc(scores: &[f64], labels: &[bool]) -> Result<f64, MetricError> {
    check(scores, labels.len())?;
    Ranked::new(scores, labels)
        .average_precision()
        .ok_or_else(|| single_class(labels))
}

/// Spearman's rank correlation: Pearson's correlation of the average ranks (ties share the
/// mean of their ranks, as in SciPy). Errors when either input is constant.
///
/// ```
/// use padv_core::eval::spearman;
/// // x ranks (1, 2, 3); y = (10, 30, 20) ranks (1, 3, 2). Centred: (-1, 0, 1) and (-1, 1, 0);
/// // covariance sum = 1 + 0 + 0 = 1; each sum of squares = 2  ->  rho = 1 / 2 = 0.5
/// assert_eq!(spearman(&[1.0, 2.0, 3.0], &[10.0, 30.0, 20.0])?, 0.5);
/// assert!(spearman(&[1.0, 1.0], &[1.0, 2.0]).is_err());
/// # Ok::<(), padv_core::eval::MetricError>(())
/// ```
pub fn spearman(x: &[f64], y: &[f64]) -> Result<f64, MetricError> {
    check(x, y.len())?;
    check(y, x.len())?;
    pearson(&average_ranks(x), &average_ranks(y))
}

/// 1-based ranks with ties sharing the mean of the ranks they span (SciPy's `rankdata`
/// `average` method). `-0.0` and `0.0` tie.
///
/// ```
/// use padv_core::eval::average_ranks;
/// // 3 and 3 share ranks 2 and 3 -> 2.5 each
/// assert_eq!(average_ranks(&[1.0, 3.0, 3.0, 7.0]), vec![1.0, 2.5, 2.5, 4.0]);
/// ```
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    Ranked::new(x, &vec![false; x.len()]).average_ranks()
}

/// Pearson's correlation; errors when either input is constant or shorter than 2.
pub(crate) fn pearson(x: &[f64], y: &[f64]) -> Result<f64, MetricError> {
    let n = x.len();
    if n < 2 {
        return Err(MetricError::Constant);
    }
    let mx = x.iter().sum::<f64>() / n as f64;
    let my = y.iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return Err(MetricError::Constant);
    }
    Ok((sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_all_tied_is_half() {
        // every pair ties -> 1/2
        assert_eq!(auroc(&[2.0; 4], &[true, false, true, false]).unwrap(), 0.5);
    }

    #[test]
    fn auroc_errors() {
        assert_eq!(
            auroc(&[1.0, 2.0], &[true, true]),
            Err(MetricError::SingleClass { n_pos: 2, n_neg: 0 })
        );
        assert_eq!(
            auroc(&[1.0], &[true, false]),
            Err(MetricError::LengthMismatch { left: 1, right: 2 })
        );
        assert_eq!(
            auroc(&[1.0, f64::NAN], &[true, false]),
            Err(MetricError::NotANumber { index: 1 })
        );
    }

    #[test]
    fn auroc_with_infinities() {
        // -inf negative below a finite positive below +inf negative: 1 win of 2 -> 0.5
        assert_eq!(
            auroc(
                &[f64::NEG_INFINITY, 0.0, f64::INFINITY],
                &[false, true, false]
            )
            .unwrap(),
            0.5
        );
    }

    #[test]
    fn auroc_matches_pairwise_count_on_a_large_tied_sample() {
        // Large enough for the radix-sort path; scores on a coarse grid for many ties.
        let mut rng = crate::eval::SplitMix64::new(77);
        let n = 3000;
        let labels: Vec<bool> = (0..n).map(|_| rng.next_f64() < 0.3).collect();
        let scores: Vec<f64> = labels
            .iter()
            .map(|&l| (rng.below(40) as f64 - 20.0) / 4.0 + if l { 0.5 } else { 0.0 })
            .collect();
        // Brute force: wins + ties / 2 over all positive-negative pairs.
        let (mut twice, mut pairs) = (0u64, 0u64);
        for i in (0..n).filter(|&i| labels[i]) {
            for j in (0..n).filter(|&j| !labels[j]) {
                pairs += 1;
                twice += match scores[i].partial_cmp(&scores[j]) {
                    Some(std::cmp::Ordering::Greater) => 2,
                    Some(std::cmp::Ordering::Equal) => 1,
                    _ => 0,
                };
            }
        }
        let want = twice as f64 / (2.0 * pairs as f64);
        assert!((auroc(&scores, &labels).unwrap() - want).abs() < 1e-15);
    }

    #[test]
    fn auprc_ties_enter_together() {
        // All tied: one threshold, R = 1, P = 2/4 -> AP = 0.5 (the positive rate).
        assert_eq!(auprc(&[1.0; 4], &[true, false, true, false]).unwrap(), 0.5);
        // No negatives: P = 1 at every threshold -> 1.
        assert_eq!(auprc(&[0.3, 0.1], &[true, true]).unwrap(), 1.0);
        assert!(auprc(&[0.3, 0.1], &[false, false]).is_err());
    }

    #[test]
    fn spearman_perfect_and_reversed() {
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[5.0, 6.0, 9.0]).unwrap(), 1.0);
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[9.0, 6.0, 5.0]).unwrap(), -1.0);
        assert_eq!(spearman(&[1.0], &[1.0]), Err(MetricError::Constant));
    }

    #[test]
    fn spearman_with_ties_hand_worked() {
        // x = (1, 2, 2, 3) ranks (1, 2.5, 2.5, 4); y = (1, 2, 3, 4) ranks (1, 2, 3, 4).
        // Means 2.5 and 2.5. dx = (-1.5, 0, 0, 1.5), dy = (-1.5, -0.5, 0.5, 1.5).
        // sxy = 2.25 + 0 + 0 + 2.25 = 4.5; sxx = 4.5; syy = 2.25 + 0.25 + 0.25 + 2.25 = 5.
        // rho = 4.5 / sqrt(4.5 * 5) = 4.5 / sqrt(22.5)
        let rho = spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!((rho - 4.5 / 22.5f64.sqrt()).abs() < 1e-15);
    }
}
