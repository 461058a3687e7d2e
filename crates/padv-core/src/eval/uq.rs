//! Uncertainty quantification: how well a trajectory score predicts success.
//!
//! Labels are successes (`reward ≥ 1 − 1e-6`, [`crate::is_success_reward`]). Records without
//! a reward or without a score (no remaining step, NaN) are dropped and counted.

use serde::{Deserialize, Serialize};

use super::bootstrap::{bootstrap_ranked, ConfidenceInterval, SplitMix64};
use super::metrics::{average_ranks, pearson};
use super::ranked::Ranked;
use super::source::ScoreSource;
use super::EvalError;
use crate::is_success_reward;
use crate::score::{ScoreSpec, ScoreTable};

/// A stored trajectory score: `Option<f64>` (what a [`ScoreTable`] gives), or a bare `f64`
/// with NaN for "no score" (half the memory: what an evaluation that re-reads record files
/// keeps per record and cell). A NaN inside `Some` also counts as no score, so the two
/// encodings evaluate alike.
pub trait ScoreSlot: Copy + Send + Sync {
    /// The score, `None` when there is none.
    fn score(self) -> Option<f64>;
}

impl ScoreSlot for Option<f64> {
    fn score(self) -> Option<f64> {
        self.filter(|s| !s.is_nan())
    }
}

impl ScoreSlot for f64 {
    fn score(self) -> Option<f64> {
        (!self.is_nan()).then_some(self)
    }
}

/// Settings of a UQ evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UqOptions {
    /// Bootstrap resamples for the AUROC interval (default 1000; 0 disables it). Each costs
    /// one `O(n)` pass per grid cell.
    pub n_boot: usize,
    /// Interval coverage (default 0.95).
    pub ci_level: f64,
    /// Seed of the bootstrap and of the fold assignment (default 0).
    pub seed: u64,
    /// Folds of the cross-validated aggregation choice (default 5; below 2 disables it).
    pub folds: usize,
}

impl Default for UqOptions {
    fn default() -> Self {
        UqOptions {
            n_boot: 1000,
            ci_level: 0.95,
            seed: 0,
            folds: 5,
        }
    }
}

/// UQ metrics of one score vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UqResult {
    /// Records evaluated (with both a reward and a score).
    pub n: usize,
    /// Successes among them.
    pub n_pos: usize,
    /// Records dropped: `n_no_label + n_no_score`.
    pub n_dropped: usize,
    /// Dropped for lack of a reward.
    pub n_no_label: usize,
    /// Dropped for lack of a score (reward present).
    pub n_no_score: usize,
    /// AUROC of score vs success; `None` when one class is absent.
    pub auroc: Option<f64>,
    /// Stratified percentile-bootstrap interval of the AUROC.
    pub auroc_ci: Option<ConfidenceInterval>,
    /// Average precision with success as the positive class.
    pub auprc: Option<f64>,
    /// Spearman's ρ between score and raw reward; `None` when either is constant.
    pub spearman: Option<f64>,
}

/// Training and held-out AUROC of one cell on one cross-validation fold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FoldAuroc {
    /// AUROC on the records outside the fold.
    pub train: Option<f64>,
    /// AUROC on the fold's records.
    pub heldout: Option<f64>,
}

/// One grid cell's UQ result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UqRow {
    /// [`ScoreSpec::label`] of the cell.
    pub label: String,
    /// The cell.
    pub spec: ScoreSpec,
    /// Its metrics.
    #[serde(flatten)]
    pub result: UqResult,
    /// Per-fold AUROCs (input to [`super::cross_validate`]); empty when CV is disabled.
    pub folds: Vec<FoldAuroc>,
}

/// UQ metrics of `scores` against `rewards` (same order and length).
///
/// ```
/// use padv_core::eval::{uq, UqOptions};
/// // Rewards 1, 0, 1, unknown; the third score is missing -> n = 2, both classes present.
/// let r = uq(&[Some(0.9), Some(0.1), None, Some(0.5)],
///            &[Some(1.0), Some(0.0), Some(1.0), None],
///            &UqOptions { n_boot: 0, ..UqOptions::default() })?;
/// assert_eq!((r.n, r.n_pos, r.n_no_label, r.n_no_score), (2, 1, 1, 1));
/// assert_eq!(r.auroc, Some(1.0));
/// # Ok::<(), padv_core::eval::EvalError>(())
/// ```
pub fn uq<S: ScoreSlot>(
    scores: &[S],
    rewards: &[Option<f64>],
    opts: &UqOptions,
) -> Result<UqResult, EvalError> {
    if scores.len() != rewards.len() {
        return Err(EvalError::LengthMismatch {
            what: "scores vs rewards",
            expected: rewards.len(),
            found: scores.len(),
        });
    }
    Ok(evaluate(scores, rewards, opts, None).0)
}

/// Assign each labelled record to one of `k` folds, stratified by success: positives and
/// negatives are shuffled separately (seeded) and dealt round-robin, the negatives
/// continuing where the positives stopped so fold sizes differ by at most one.
/// Unlabelled records get `None`.
pub fn stratified_folds(rewards: &[Option<f64>], k: usize, seed: u64) -> Vec<Option<usize>> {
    let mut out = vec![None; rewards.len()];
    if k == 0 {
        return out;
    }
    let mut rng = SplitMix64::new(seed ^ 0x5EED_F01D);
    let mut next = 0usize;
    for want in [true, false] {
        let mut members: Vec<usize> = rewards
            .iter()
            .enumerate()
            .filter(|(_, r)| r.map(is_success_reward) == Some(want))
            .map(|(i, _)| i)
            .collect();
        rng.shuffle(&mut members);
        for i in members {
            out[i] = Some(next % k);
            next += 1;
        }
    }
    out
}

/// What every cell of a grid shares: the fold assignment, and the average ranks of the
/// rewards of all labelled records (reused by every cell that scores all of them).
struct Shared<'a> {
    folds: &'a [Option<usize>],
    k: usize,
    reward_ranks: &'a [f64],
}

/// The metrics of one cell, and its per-fold AUROCs when `shared` is given.
fn evaluate<S: ScoreSlot>(
    scores: &[S],
    rewards: &[Option<f64>],
    opts: &UqOptions,
    shared: Option<&Shared<'_>>,
) -> (UqResult, Vec<FoldAuroc>) {
    let (mut n_no_label, mut n_no_score) = (0, 0);
    // Only what the metrics read is kept per record (a 10^7-record grid holds one of these
    // per cell in flight): the position, the score and the success label.
    let mut kept_index = Vec::with_capacity(scores.len());
    let mut kept_scores = Vec::with_capacity(scores.len());
    let mut labels = Vec::with_capacity(scores.len());
    for (i, (s, r)) in scores.iter().zip(rewards).enumerate() {
        match (r, s.score()) {
            (None, _) => n_no_label += 1,
            (Some(_), None) => n_no_score += 1,
            (Some(r), Some(s)) => {
                kept_index.push(i);
                kept_scores.push(s);
                labels.push(is_success_reward(*r));
            }
        }
    }
    let ranked = Ranked::new(&kept_scores, &labels);
    let n_kept = kept_scores.len();
    drop((kept_scores, labels));
    let score_ranks = ranked.average_ranks();
    let spearman = match shared {
        // Every labelled record kept: the shared reward ranks apply as they are.
        Some(sh) if n_no_score == 0 => pearson(&score_ranks, sh.reward_ranks),
        _ => {
            let kept_rewards: Vec<f64> = kept_index
                .iter()
                .map(|&i| rewards[i].unwrap_or(f64::NAN))
                .collect();
            pearson(&score_ranks, &average_ranks(&kept_rewards))
        }
    };
    drop(score_ranks);
    let result = UqResult {
        n: n_kept,
        n_pos: ranked.n_pos(),
        n_dropped: n_no_label + n_no_score,
        n_no_label,
        n_no_score,
        auroc: ranked.auroc(),
        auroc_ci: bootstrap_ranked(&ranked, opts.n_boot, opts.ci_level, opts.seed),
        auprc: ranked.average_precision(),
        spearman: spearman.ok(),
    };
    let fold_aurocs = match shared {
        Some(sh) if sh.k >= 2 => {
            // Fold of each item, by sorted position (4 bytes per item; `u32::MAX` for none).
            let fold_of: Vec<u32> = (0..ranked.len())
                .map(|k| match sh.folds[kept_index[ranked.input_position(k)]] {
                    Some(f) => u32::try_from(f).unwrap_or(u32::MAX - 1),
                    None => u32::MAX,
                })
                .collect();
            drop(kept_index);
            ranked
                .fold_aurocs(
                    |k| match fold_of[k] {
                        u32::MAX => None,
                        f => Some(f as usize),
                    },
                    sh.k,
                )
                .into_iter()
                .map(|(train, heldout)| FoldAuroc { train, heldout })
                .collect()
        }
        _ => Vec::new(),
    };
    (result, fold_aurocs)
}

/// UQ of every cell in `specs` over the table's records, one row per spec (in order),
/// computed in parallel. Rows carry per-fold AUROCs for [`super::cross_validate`]; the fold
/// assignment is shared by all cells.
pub fn uq_grid(
    table: &ScoreTable,
    specs: &[ScoreSpec],
    opts: &UqOptions,
) -> Result<Vec<UqRow>, EvalError> {
    uq_grid_from(ScoreSource::Table(table), specs, opts)
}

/// [`uq_grid`] over any [`ScoreSource`]: a table scores each cell in parallel; record files
/// are read once per group of cells and the group's cells evaluated one after the other.
pub(crate) fn uq_grid_from(
    source: ScoreSource<'_>,
    specs: &[ScoreSpec],
    opts: &UqOptions,
) -> Result<Vec<UqRow>, EvalError> {
    let rewards = source.labels();
    let assign = stratified_folds(rewards, opts.folds, opts.seed);
    let labelled: Vec<f64> = rewards.iter().flatten().copied().collect();
    let shared = Shared {
        folds: &assign,
        k: opts.folds,
        reward_ranks: &average_ranks(&labelled),
    };
    drop(labelled);
    let groups: Vec<Vec<ScoreSpec>> = specs
        .chunks(source.cells_per_pass())
        .map(<[ScoreSpec]>::to_vec)
        .collect();
    let rows = source.with_scores(&groups, |g, scores| {
        Ok(groups[g]
            .iter()
            .zip(scores)
            .map(|(spec, scores)| {
                let (result, folds) = evaluate(&scores, rewards, opts, Some(&shared));
                UqRow {
                    label: spec.label(),
                    spec: *spec,
                    result,
                    folds,
                }
            })
            .collect::<Vec<UqRow>>())
    })?;
    Ok(rows.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts0() -> UqOptions {
        UqOptions {
            n_boot: 0,
            ..UqOptions::default()
        }
    }

    #[test]
    fn success_threshold_and_spearman_use_raw_reward() {
        // rewards 0.9999995 (success: >= 1 - 1e-6), 0.5, 0.0; scores 3, 2, 1
        let r = uq(
            &[Some(3.0), Some(2.0), Some(1.0)],
            &[Some(0.999_999_5), Some(0.5), Some(0.0)],
            &opts0(),
        )
        .unwrap();
        assert_eq!(r.n_pos, 1);
        assert_eq!(r.auroc, Some(1.0));
        // raw rewards are strictly decreasing with the scores: rho = 1
        assert_eq!(r.spearman, Some(1.0));
        // AP: the only positive is ranked first -> 1
        assert_eq!(r.auprc, Some(1.0));
    }

    #[test]
    fn single_class_gives_none_not_error() {
        let r = uq(&[Some(1.0), Some(2.0)], &[Some(1.0), Some(1.0)], &opts0()).unwrap();
        assert_eq!((r.auroc, r.auroc_ci, r.spearman), (None, None, None));
        assert_eq!(r.auprc, Some(1.0));
    }

    #[test]
    fn nan_score_is_dropped_as_missing() {
        let r = uq(
            &[Some(f64::NAN), Some(1.0), Some(0.0)],
            &[Some(1.0), Some(1.0), Some(0.0)],
            &opts0(),
        )
        .unwrap();
        assert_eq!((r.n, r.n_no_score, r.n_dropped), (2, 1, 1));
    }

    #[test]
    fn length_mismatch_is_an_error() {
        assert!(uq(&[Some(1.0)], &[], &opts0()).is_err());
    }

    #[test]
    fn folds_are_stratified_and_balanced() {
        // 10 successes, 15 failures, 1 unlabelled, 5 folds
        let mut rewards: Vec<Option<f64>> =
            (0..25).map(|i| Some(f64::from(u8::from(i < 10)))).collect();
        rewards.push(None);
        let f = stratified_folds(&rewards, 5, 9);
        assert_eq!(f[25], None);
        for fold in 0..5 {
            let pos = (0..10).filter(|&i| f[i] == Some(fold)).count();
            let neg = (10..25).filter(|&i| f[i] == Some(fold)).count();
            assert_eq!((pos, neg), (2, 3), "fold {fold}");
        }
        assert_eq!(f, stratified_folds(&rewards, 5, 9));
        assert_ne!(f, stratified_folds(&rewards, 5, 10));
    }
}
