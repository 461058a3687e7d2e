//! Best-of-N selection: per task, keep the highest-scoring rollout.
//!
//! Tasks are grouped by `task_id` in first-appearance order. A rollout without a score
//! ranks as −∞; ties go to the rollout that comes first in the input (the reference code's
//! stable descending sort). Rollouts without a reward are skipped before grouping.

use std::collections::HashMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::EvalError;
use crate::is_success_reward;
use crate::score::{ScoreSpec, ScoreTable};

/// Best-of-N results of one score vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BonResult {
    /// Tasks with at least one labelled rollout.
    pub n_tasks: usize,
    /// Labelled rollouts.
    pub n_rollouts: usize,
    /// Rollouts skipped for lack of a reward.
    pub n_no_label: usize,
    /// Labelled rollouts without a score (ranked as −∞).
    pub n_no_score: usize,
    /// Fraction of tasks whose selected rollout succeeded.
    pub bon_success_rate: f64,
    /// Mean over tasks of the selected rollout's reward.
    pub bon_mean_reward: f64,
    /// Fraction of tasks with at least one success (oracle selection, Pass@N).
    pub pass_at_n_oracle: f64,
    /// Mean over tasks of the mean reward of all its rollouts (random selection, Mean@N).
    pub mean_at_n: f64,
    /// `bon_at_k[k − 1]`: expected success rate when the best-scored rollout is picked from a
    /// uniformly random subset of `min(k, N_task)` rollouts of each task, averaged over tasks,
    /// for `k = 1..=max N_task`. `bon_at_k[0]` is the mean success rate (equal to `mean_at_n`
    /// for 0/1 rewards) and the last entry equals `bon_success_rate`.
    pub bon_at_k: Vec<f64>,
}

/// One grid cell's best-of-N result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BonRow {
    /// [`ScoreSpec::label`] of the cell.
    pub label: String,
    /// The cell.
    pub spec: ScoreSpec,
    /// Its results.
    #[serde(flatten)]
    pub result: BonResult,
}

/// Best-of-N over rollouts given in input order; `task_ids`, `scores` and `rewards` align.
///
/// ```
/// use padv_core::eval::best_of_n;
/// // Task a: scores 0.2 (fail), 0.9 (success) -> picks the success. Task b: one failure.
/// let r = best_of_n(&["a", "a", "b"], &[Some(0.2), Some(0.9), Some(0.5)],
///                   &[Some(0.0), Some(1.0), Some(0.0)])?;
/// assert_eq!((r.n_tasks, r.bon_success_rate, r.pass_at_n_oracle), (2, 0.5, 0.5));
/// // mean@N = mean over tasks of (0.5, 0.0) = 0.25
/// assert_eq!(r.mean_at_n, 0.25);
/// # Ok::<(), padv_core::eval::EvalError>(())
/// ```
pub fn best_of_n<S: AsRef<str>>(
    task_ids: &[S],
    scores: &[Option<f64>],
    rewards: &[Option<f64>],
) -> Result<BonResult, EvalError> {
    if scores.len() != task_ids.len() || rewards.len() != task_ids.len() {
        return Err(EvalError::LengthMismatch {
            what: "task ids vs scores vs rewards",
            expected: task_ids.len(),
            found: if scores.len() != task_ids.len() {
                scores.len()
            } else {
                rewards.len()
            },
        });
    }
    let mut index: HashMap<&str, usize> = HashMap::new();
    let task_index: Vec<usize> = task_ids
        .iter()
        .map(|t| {
            let next = index.len();
            *index.entry(t.as_ref()).or_insert(next)
        })
        .collect();
    Ok(evaluate(
        &Groups::new(&task_index, index.len()),
        scores,
        rewards,
    ))
}

/// Ranking key: missing and NaN scores are −∞; `-0.0` equals `0.0`.
pub(crate) fn rank_key(score: Option<f64>) -> f64 {
    match score {
        Some(s) if !s.is_nan() => s + 0.0,
        _ => f64::NEG_INFINITY,
    }
}

/// Rollouts grouped by task: members of task `t` are `members[offsets[t]..offsets[t + 1]]`,
/// in input order. Built once per grid, shared by every cell.
struct Groups {
    offsets: Vec<usize>,
    members: Vec<usize>,
}

impl Groups {
    fn new(task_index: &[usize], n_tasks: usize) -> Groups {
        let mut offsets = vec![0usize; n_tasks + 1];
        for &t in task_index {
            offsets[t + 1] += 1;
        }
        for t in 0..n_tasks {
            offsets[t + 1] += offsets[t];
        }
        let mut fill = offsets.clone();
        let mut members = vec![0usize; task_index.len()];
        for (i, &t) in task_index.iter().enumerate() {
            members[fill[t]] = i;
            fill[t] += 1;
        }
        Groups { offsets, members }
    }

    fn tasks(&self) -> impl Iterator<Item = &[usize]> + '_ {
        self.offsets
            .windows(2)
            .map(move |w| &self.members[w[0]..w[1]])
    }
}

fn evaluate(groups: &Groups, scores: &[Option<f64>], rewards: &[Option<f64>]) -> BonResult {
    let (mut n_no_label, mut n_no_score, mut n_rollouts, mut n_tasks) = (0, 0, 0, 0usize);
    let (mut bon_success, mut bon_reward, mut pass, mut mean) = (0.0, 0.0, 0.0, 0.0);
    let mut curve: Vec<f64> = Vec::new();
    // Reused per task: (score key, reward) of its labelled rollouts, then their successes.
    let mut rollouts: Vec<(f64, f64)> = Vec::new();
    let mut success: Vec<f64> = Vec::new();
    let mut picks = PickTable::default();
    for members in groups.tasks() {
        rollouts.clear();
        for &i in members {
            let Some(r) = rewards[i] else {
                n_no_label += 1;
                continue;
            };
            if scores[i].is_none_or(f64::is_nan) {
                n_no_score += 1;
            }
            rollouts.push((rank_key(scores[i]), r));
        }
        if rollouts.is_empty() {
            continue;
        }
        n_tasks += 1;
        n_rollouts += rollouts.len();
        // Stable sort, descending: equal keys keep input order, so the first one wins.
        rollouts.sort_by(|a, b| b.0.total_cmp(&a.0));
        success.clear();
        success.extend(
            rollouts
                .iter()
                .map(|&(_, r)| f64::from(u8::from(is_success_reward(r)))),
        );
        let n = rollouts.len();
        bon_success += success[0];
        bon_reward += rollouts[0].1;
        pass += success.iter().copied().fold(0.0, f64::max);
        mean += rollouts.iter().map(|x| x.1).sum::<f64>() / n as f64;
        if curve.len() < n {
            // Tasks seen so far have fewer rollouts: at the new k they use all of theirs,
            // i.e. the value they contributed at their own largest k.
            let carried = curve.last().copied().unwrap_or(0.0);
            curve.resize(n, carried);
        }
        for (k, slot) in curve.iter_mut().enumerate() {
            *slot += picks.expected(n, k, &success);
        }
    }
    let per_task = |x: f64| {
        if n_tasks == 0 {
            0.0
        } else {
            x / n_tasks as f64
        }
    };
    BonResult {
        n_tasks,
        n_rollouts,
        n_no_label,
        n_no_score,
        bon_success_rate: per_task(bon_success),
        bon_mean_reward: per_task(bon_reward),
        pass_at_n_oracle: per_task(pass),
        mean_at_n: per_task(mean),
        bon_at_k: curve.into_iter().map(per_task).collect(),
    }
}

/// Expected value of the pick when a uniformly random `k`-subset of `N` ranked rollouts is
/// drawn and its top-ranked member kept. Rank `i` (0-based) is kept iff it is drawn and no
/// higher rank is: `p_i = C(N−1−i, k−1) / C(N, k)`. Computed by the ratio recurrence
/// `p_0 = k/N`, `p_{i+1} = p_i·(N−i−k)/(N−1−i)`, which never forms a large binomial.
///
/// ```
/// use padv_core::eval::expected_best_of_k;
/// // N = 3, k = 2: p = (2/3, 1/3, 0). Values ranked (0, 1, 1): 0·2/3 + 1·1/3 + 0 = 1/3
/// assert!((expected_best_of_k(&[0.0, 1.0, 1.0], 2) - 1.0 / 3.0).abs() < 1e-15);
/// ```
pub fn expected_best_of_k(ranked_values: &[f64], k: usize) -> f64 {
    pick_probabilities(ranked_values.len(), k)
        .iter()
        .zip(ranked_values)
        .map(|(p, v)| p * v)
        .sum()
}

/// `p_i` of [`expected_best_of_k`] for `i = 0..n` (all zero when `n` or `k` is 0).
fn pick_probabilities(n: usize, k: usize) -> Vec<f64> {
    let mut p = vec![0.0; n];
    if n == 0 || k == 0 {
        return p;
    }
    let k = k.min(n);
    let mut pi = k as f64 / n as f64;
    for (i, slot) in p.iter_mut().enumerate() {
        *slot = pi;
        if n - i <= k {
            break; // p_{i+1} = 0 from here on
        }
        pi *= (n - i - k) as f64 / (n - 1 - i) as f64;
    }
    p
}

/// Pick probabilities per task size, computed once per size and reused for every task
/// (the divisions of the recurrence would otherwise dominate best-of-N).
#[derive(Default)]
struct PickTable {
    /// `by_n[n][k - 1]` = pick probabilities for `k = 1..=n`.
    by_n: Vec<Vec<Vec<f64>>>,
}

impl PickTable {
    /// Expected success of the best-scored of a random `min(k + 1, n)`-subset of a task's
    /// `n` rollouts, given their successes in rank order.
    fn expected(&mut self, n: usize, k: usize, success: &[f64]) -> f64 {
        // rows[n - 1] is the full set.
        let p = &self.rows(n)[k.min(n - 1)];
        p.iter().zip(success).map(|(p, s)| p * s).sum()
    }

    fn rows(&mut self, n: usize) -> &[Vec<f64>] {
        if self.by_n.len() <= n {
            self.by_n.resize_with(n + 1, Vec::new);
        }
        if self.by_n[n].is_empty() {
            self.by_n[n] = (1..=n).map(|k| pick_probabilities(n, k)).collect();
        }
        &self.by_n[n]
    }
}

/// Per task with a labelled rollout (first-appearance order), its expected best-of-k
/// success for `k = 1..=N_task` (the terms [`BonResult::bon_at_k`] averages; at larger `k`
/// a task contributes its last value). For intervals over tasks.
pub(crate) fn bon_at_k_per_task(
    table: &ScoreTable,
    spec: &ScoreSpec,
) -> Result<Vec<Vec<f64>>, EvalError> {
    let scores = table.trajectory_scores(spec)?;
    let rewards = table.labels();
    let groups = Groups::new(table.task_index(), table.n_tasks());
    let mut picks = PickTable::default();
    let mut out = Vec::new();
    for members in groups.tasks() {
        let mut rollouts: Vec<(f64, f64)> = members
            .iter()
            .filter_map(|&i| rewards[i].map(|r| (rank_key(scores[i]), r)))
            .collect();
        if rollouts.is_empty() {
            continue;
        }
        rollouts.sort_by(|a, b| b.0.total_cmp(&a.0));
        let success: Vec<f64> = rollouts
            .iter()
            .map(|&(_, r)| f64::from(u8::from(is_success_reward(r))))
            .collect();
        let n = success.len();
        out.push((0..n).map(|k| picks.expected(n, k, &success)).collect());
    }
    Ok(out)
}

/// Best-of-N of every cell in `specs`, one row per spec (in order), computed in parallel.
pub fn bon_grid(table: &ScoreTable, specs: &[ScoreSpec]) -> Result<Vec<BonRow>, EvalError> {
    let groups = Groups::new(table.task_index(), table.n_tasks());
    let rows: Vec<Result<BonRow, EvalError>> = specs
        .par_iter()
        .map(|spec| {
            let scores = table.trajectory_scores(spec)?;
            Ok(BonRow {
                label: spec.label(),
                spec: *spec,
                result: evaluate(&groups, &scores, table.labels()),
            })
        })
        .collect();
    rows.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_rollout_curve_hand_worked() {
        // One task, rollouts in input order: (score 0.5, fail), (0.9, success), (0.1, success).
        // Ranked by score: 0.9 (1), 0.5 (0), 0.1 (1).
        // k=1: p = (1/3, 1/3, 1/3) -> 2/3.  k=2: p = (2/3, 1/3, 0) -> 2/3.  k=3: p = (1,0,0) -> 1.
        let r = best_of_n(
            &["t"; 3],
            &[Some(0.5), Some(0.9), Some(0.1)],
            &[Some(0.0), Some(1.0), Some(1.0)],
        )
        .unwrap();
        let want = [2.0 / 3.0, 2.0 / 3.0, 1.0];
        for (got, want) in r.bon_at_k.iter().zip(want) {
            assert!((got - want).abs() < 1e-15, "{:?}", r.bon_at_k);
        }
        // BoN@1 = mean@N (0/1 rewards), BoN@N = best-of-N rate
        assert!((r.bon_at_k[0] - r.mean_at_n).abs() < 1e-15);
        assert_eq!(r.bon_at_k[2], r.bon_success_rate);
        assert_eq!(r.bon_success_rate, 1.0);
        assert_eq!(r.pass_at_n_oracle, 1.0);
    }

    #[test]
    fn ties_and_missing_scores() {
        // Task a: tie at 0.7 between a failure (first) and a success -> failure chosen.
        // Task b: missing score (success) vs -inf (failure): both rank -inf, the first
        // (the missing one, a success) wins.
        let r = best_of_n(
            &["a", "a", "b", "b", "c"],
            &[
                Some(0.7),
                Some(0.7),
                None,
                Some(f64::NEG_INFINITY),
                Some(1.0),
            ],
            &[Some(0.0), Some(1.0), Some(1.0), Some(0.0), None],
        )
        .unwrap();
        assert_eq!(
            (r.n_tasks, r.n_rollouts, r.n_no_label, r.n_no_score),
            (2, 4, 1, 1)
        );
        // selected: a -> fail, b -> success
        assert_eq!(r.bon_success_rate, 0.5);
        assert_eq!(r.bon_mean_reward, 0.5);
    }

    #[test]
    fn tasks_of_different_sizes_use_min_k_n() {
        // Task a: 1 rollout (success). Task b: 2 rollouts ranked (fail, success).
        // k=1: a -> 1, b -> 1/2; mean 0.75. k=2: a uses k=1 -> 1, b -> best = fail -> 0; 0.5.
        let r = best_of_n(
            &["a", "b", "b"],
            &[Some(0.0), Some(0.9), Some(0.1)],
            &[Some(1.0), Some(0.0), Some(1.0)],
        )
        .unwrap();
        assert_eq!(r.bon_at_k, vec![0.75, 0.5]);
        assert_eq!(r.bon_success_rate, 0.5);
    }

    #[test]
    fn fractional_rewards_count_success_by_threshold() {
        // reward 0.5 is not a success but counts in mean reward
        let r = best_of_n(
            &["a", "a"],
            &[Some(2.0), Some(1.0)],
            &[Some(0.5), Some(1.0)],
        )
        .unwrap();
        assert_eq!(r.bon_success_rate, 0.0);
        assert_eq!(r.bon_mean_reward, 0.5);
        assert_eq!(r.mean_at_n, 0.75);
        assert_eq!(r.pass_at_n_oracle, 1.0);
    }

    #[test]
    fn expected_best_of_k_matches_enumeration() {
        // Enumerate all 2-subsets of 5 ranked values and average the top one's value.
        let v = [0.3, 1.0, 0.0, 0.7, 0.2];
        let mut total = 0.0;
        let mut count = 0.0;
        for (i, vi) in v.iter().enumerate() {
            // each partner j > i is ranked lower, so i is the pick
            for _partner in (i + 1)..v.len() {
                total += vi;
                count += 1.0;
            }
        }
        assert!((expected_best_of_k(&v, 2) - total / count).abs() < 1e-15);
        assert_eq!(expected_best_of_k(&v, 0), 0.0);
        assert_eq!(expected_best_of_k(&[], 3), 0.0);
    }
}
