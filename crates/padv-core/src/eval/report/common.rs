//! What the three report builders share: directions, chance levels, the plain bootstrap of
//! a mean, fold assignment over items, and the cross-validated choice among candidates
//! whose quality is a mean over items (best-of-N over tasks, failure attribution over
//! trajectories).

use serde::{Deserialize, Serialize};

use crate::eval::{ConfidenceInterval, MeanBootstrap};
use crate::rng::SplitMix64;

/// Interval coverage of every report interval.
pub(crate) const CI_LEVEL: f64 = 0.95;

/// Evaluation settings after validation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Opts {
    pub bootstrap: usize,
    /// 0 without a grid (no cross-validation).
    pub folds: usize,
    /// Folds of the UQ report's held-out calibration: the configured folds, with or
    /// without a grid (with one, the same folds as the headline's cross-validation).
    pub calibration_folds: usize,
    pub seed: u64,
    /// Bootstrap every cell of a grid, or only each method's headline cell.
    pub cell_intervals: bool,
}

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// Larger is better (↑).
    Higher,
    /// Smaller is better (↓).
    Lower,
}

/// A metric and which way it improves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Direction {
    /// Metric name as the table prints it.
    pub metric: String,
    /// Which way is better.
    pub better: Better,
}

impl Direction {
    pub(crate) fn new(metric: &str, better: Better) -> Direction {
        Direction {
            metric: metric.to_string(),
            better,
        }
    }

    /// `AUROC ↑` / `MAE ↓`.
    pub fn arrow(&self) -> String {
        let a = match self.better {
            Better::Higher => '↑',
            Better::Lower => '↓',
        };
        format!("{} {a}", self.metric)
    }
}

/// What a predictor that ignores the score achieves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chance {
    /// Metric, as in [`Direction::metric`].
    pub metric: String,
    /// Its chance value; `None` when it is undefined on these records.
    pub value: Option<f64>,
    /// What the chance predictor is (e.g. "random pick: Mean@N").
    pub meaning: String,
}

impl Chance {
    pub(crate) fn new(metric: &str, value: Option<f64>, meaning: &str) -> Chance {
        Chance {
            metric: metric.to_string(),
            value,
            meaning: meaning.to_string(),
        }
    }
}

/// How a method's headline cell was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// The one spec asked for (no grid).
    Given,
    /// The aggregation chosen most often by the folds of a k-fold cross-validation; its
    /// honest estimate is the pooled held-out value of each fold's own choice.
    CrossValidated,
}

/// Mean of `values`; `None` when empty.
pub(crate) fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (mut sum, mut n) = (0.0, 0usize);
    for v in values {
        sum += v;
        n += 1;
    }
    (n > 0).then(|| sum / n as f64)
}

/// Percentile bootstrap interval of the mean of `values` (items resampled with
/// replacement); `None` when `values` is empty or `n_boot == 0`.
pub(crate) fn bootstrap_mean_ci(
    values: &[f64],
    n_boot: usize,
    seed: u64,
) -> Option<ConfidenceInterval> {
    MeanBootstrap::new(values.len(), n_boot, CI_LEVEL, seed).ci(values)
}

/// Fold of each of `n` items: a seeded shuffle dealt round-robin, so fold sizes differ by
/// at most one. Empty when `k < 2`.
pub(crate) fn item_folds(n: usize, k: usize, seed: u64) -> Vec<usize> {
    if k < 2 {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..n).collect();
    SplitMix64::new(seed ^ 0xF01D_5EED).shuffle(&mut order);
    let mut fold = vec![0; n];
    for (pos, &item) in order.iter().enumerate() {
        fold[item] = pos % k;
    }
    fold
}

/// The outcome of [`cross_validate_means`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MeanCv {
    /// Per fold, the candidate chosen on the other folds (`None`: no training item, or no
    /// held-out item).
    pub per_fold: Vec<Option<usize>>,
    /// Per item, the candidate its fold chose (`None`: its fold chose none).
    pub per_item: Vec<Option<usize>>,
}

impl MeanCv {
    /// The candidate chosen by most folds (first candidate on ties) and how many chose it.
    pub fn modal(&self) -> Option<(usize, usize)> {
        let mut counts: Vec<(usize, usize)> = Vec::new();
        for c in self.per_fold.iter().flatten() {
            match counts.iter_mut().find(|(x, _)| x == c) {
                Some(e) => e.1 += 1,
                None => counts.push((*c, 1)),
            }
        }
        counts.sort_by_key(|&(c, _)| c);
        counts
            .into_iter()
            .fold(None, |best: Option<(usize, usize)>, (c, n)| match best {
                Some((_, b)) if b >= n => best,
                _ => Some((c, n)),
            })
    }
}

/// k-fold cross-validated choice among candidates whose quality is a mean over items.
///
/// `utility[c][i]` is candidate `c`'s value on item `i`, compared lexicographically
/// (`[primary, tie-breaker]`, higher better). Each fold chooses the candidate with the best
/// mean utility over the items of the other folds (first candidate on exact ties) and
/// applies it to its own items, so every item is judged by a choice made without it.
pub(crate) fn cross_validate_means(utility: &[Vec<[f64; 2]>], folds: &[usize], k: usize) -> MeanCv {
    let n_items = folds.len();
    let mut per_fold = vec![None; k];
    for (f, slot) in per_fold.iter_mut().enumerate() {
        let n_train = folds.iter().filter(|&&x| x != f).count();
        // A fold without training items cannot choose; one without held-out items (more
        // folds than items) has nothing to apply its choice to and gets no vote.
        if n_train == 0 || n_train == n_items {
            continue;
        }
        let mut best: Option<(usize, [f64; 2])> = None;
        for (c, u) in utility.iter().enumerate() {
            let mut sum = [0.0, 0.0];
            for (i, v) in u.iter().enumerate().take(n_items) {
                if folds[i] != f {
                    sum[0] += v[0];
                    sum[1] += v[1];
                }
            }
            let m = [sum[0] / n_train as f64, sum[1] / n_train as f64];
            let better = match best {
                None => true,
                Some((_, b)) => m[0] > b[0] || (m[0] == b[0] && m[1] > b[1]),
            };
            if better {
                best = Some((c, m));
            }
        }
        *slot = best.map(|(c, _)| c);
    }
    let per_item = folds
        .iter()
        .map(|&f| per_fold.get(f).copied().flatten())
        .collect();
    MeanCv { per_fold, per_item }
}

/// Format an optional number for the table (`–` when absent).
pub(crate) fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_string(), |x| format!("{x:.digits$}"))
}

/// Format an interval as `[lo, hi]` (empty when absent).
pub(crate) fn fmt_ci(ci: Option<&ConfidenceInterval>, digits: usize) -> String {
    ci.map_or_else(String::new, |c| {
        format!("[{:.digits$}, {:.digits$}]", c.low, c.high)
    })
}
