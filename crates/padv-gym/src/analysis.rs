//! Theory metrics that only the gym can compute: how well step scores track the true
//! advantage, and whether a trajectory score merely tracks length.
//!
//! - [`join_steps`] pairs each scored action step (`(message_index, score)` per trajectory,
//!   what `padv_core::score::Scorer::step_scores` returns) with its `A*` from the
//!   ground-truth side file, by trajectory id and message index.
//! - [`alignment`] reports the Spearman correlation of step score vs `A*`, pooled over all
//!   steps (the headline) and averaged within trajectories (where `A*` varies), so a
//!   between-map offset cannot pass for step-level signal.
//! - [`LengthStats`] says how long actions and trajectories are, and [`length_correlation`]
//!   whether a trajectory score is mostly a length proxy (its Spearman with the number of
//!   steps).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use padv_core::eval::spearman;
use padv_core::LogprobRecord;

use crate::episode::TruthRecord;
use crate::error::GymError;

/// One scored step with its true advantage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepPair {
    /// Trajectory id.
    pub id: String,
    /// Action message index.
    pub message_index: usize,
    /// The method's step score.
    pub score: f64,
    /// `A*(s, a)` of that step.
    pub advantage: f64,
}

/// Which advantage a step score is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    /// The hard `A*(s, a) = Q*(s, a) − V*(s)` of success probability.
    Hard,
    /// The soft `A_h = Q(s, a) − V_h` relative to the reference at the pair's β: what PA
    /// equals at the optimum of KL-regularised RL.
    Soft,
}

/// Joins step scores with the hard ground truth; see [`join_steps_with`].
pub fn join_steps(
    scores: &[(String, Vec<(usize, f64)>)],
    truths: &[TruthRecord],
) -> Result<Vec<StepPair>, GymError> {
    join_steps_with(scores, truths, Truth::Hard)
}

/// Joins step scores with ground truth. `scores` holds `(trajectory id, steps)`; a
/// trajectory or step without ground truth (or, for [`Truth::Soft`], without soft truth) is
/// an error (the files do not belong together). Non-finite scores are dropped (a method can
/// be undefined on a step).
pub fn join_steps_with(
    scores: &[(String, Vec<(usize, f64)>)],
    truths: &[TruthRecord],
    which: Truth,
) -> Result<Vec<StepPair>, GymError> {
    let by_id: HashMap<&str, &TruthRecord> = truths.iter().map(|t| (t.id.as_str(), t)).collect();
    let mut out = Vec::new();
    for (id, steps) in scores {
        let truth = by_id
            .get(id.as_str())
            .ok_or_else(|| GymError::Join(format!("trajectory {id} has no ground truth")))?;
        for &(mi, score) in steps {
            let k = truth
                .action_messages
                .iter()
                .position(|&m| m == mi)
                .ok_or_else(|| {
                    GymError::Join(format!(
                        "trajectory {id}: message {mi} is not an action step of the ground truth"
                    ))
                })?;
            let advantage = match which {
                Truth::Hard => truth.truth.steps[k].advantage,
                Truth::Soft => {
                    truth
                        .soft
                        .get(k)
                        .ok_or_else(|| {
                            GymError::Join(format!("trajectory {id}: step {k} has no soft truth"))
                        })?
                        .advantage
                }
            };
            if score.is_finite() {
                out.push(StepPair {
                    id: id.clone(),
                    message_index: mi,
                    score,
                    advantage,
                });
            }
        }
    }
    Ok(out)
}

/// How step scores rank against the true advantage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alignment {
    /// Steps used.
    pub n_steps: usize,
    /// Spearman of score vs `A*` over all steps (`None` if undefined, e.g. constant input).
    pub spearman_pooled: Option<f64>,
    /// Mean within-trajectory Spearman over trajectories with ≥ 3 steps where both score and
    /// `A*` vary.
    pub spearman_within_mean: Option<f64>,
    /// Trajectories that entered the within-trajectory mean.
    pub n_within: usize,
}

/// Spearman correlations of step score vs `A*`.
pub fn alignment(pairs: &[StepPair]) -> Alignment {
    let scores: Vec<f64> = pairs.iter().map(|p| p.score).collect();
    let adv: Vec<f64> = pairs.iter().map(|p| p.advantage).collect();
    let pooled = spearman(&scores, &adv).ok();
    let mut groups: Vec<(&str, Vec<f64>, Vec<f64>)> = Vec::new();
    for p in pairs {
        match groups.last_mut() {
            Some((id, s, a)) if *id == p.id => {
                s.push(p.score);
                a.push(p.advantage);
            }
            _ => groups.push((p.id.as_str(), vec![p.score], vec![p.advantage])),
        }
    }
    let within: Vec<f64> = groups
        .iter()
        .filter(|(_, s, _)| s.len() >= 3)
        .filter_map(|(_, s, a)| spearman(s, a).ok())
        .filter(|r| r.is_finite())
        .collect();
    Alignment {
        n_steps: pairs.len(),
        spearman_pooled: pooled.filter(|r| r.is_finite()),
        spearman_within_mean: (!within.is_empty())
            .then(|| within.iter().sum::<f64>() / within.len() as f64),
        n_within: within.len(),
    }
}

/// Sizes of actions and trajectories.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LengthStats {
    /// Trajectories.
    pub trajectories: usize,
    /// Mean action steps per trajectory.
    pub mean_steps: f64,
    /// Fewest action steps.
    pub min_steps: usize,
    /// Most action steps.
    pub max_steps: usize,
    /// Mean tokens per action (content plus end-of-turn).
    pub mean_action_tokens: f64,
    /// Mean action tokens per trajectory.
    pub mean_trajectory_action_tokens: f64,
}

impl LengthStats {
    /// Statistics of scored records (token counts are the policy arrays' lengths).
    pub fn of(records: &[LogprobRecord]) -> LengthStats {
        let n = records.len();
        let steps: Vec<usize> = records.iter().map(|r| r.steps.len()).collect();
        let tokens: Vec<usize> = records
            .iter()
            .map(|r| r.steps.iter().map(|s| s.policy.len()).sum())
            .collect();
        let total_steps: usize = steps.iter().sum();
        let total_tokens: usize = tokens.iter().sum();
        let mean = |x: usize, d: usize| if d == 0 { 0.0 } else { x as f64 / d as f64 };
        LengthStats {
            trajectories: n,
            mean_steps: mean(total_steps, n),
            min_steps: steps.iter().copied().min().unwrap_or(0),
            max_steps: steps.iter().copied().max().unwrap_or(0),
            mean_action_tokens: mean(total_tokens, total_steps),
            mean_trajectory_action_tokens: mean(total_tokens, n),
        }
    }
}

/// Spearman of trajectory scores vs lengths over the trajectories that have a finite
/// score; `None` when undefined (fewer than two, or constant input). A value near ±1 means
/// the score mostly ranks by length.
pub fn length_correlation(scores: &[Option<f64>], lengths: &[usize]) -> Option<f64> {
    let (s, l): (Vec<f64>, Vec<f64>) = scores
        .iter()
        .zip(lengths)
        .filter_map(|(s, &l)| s.filter(|v| v.is_finite()).map(|v| (v, l as f64)))
        .unzip();
    spearman(&s, &l).ok().filter(|r| r.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::episode::{Episode, EpisodeBuilder};
    use crate::lake::Lake;
    use crate::solver::solve;
    use padv_core::eval::SplitMix64;

    fn episode(lake: &Lake, id: &str, moves: &[&str]) -> Episode {
        let mut b = EpisodeBuilder::new(lake, crate::protocol::ActionStyle::Terse, id, "m");
        let mut rng = SplitMix64::new(0);
        for m in moves {
            b.act(m, &mut rng).unwrap();
        }
        b.finish()
    }

    #[test]
    fn joins_and_correlates_steps() {
        // Deterministic map: S . . / H . H / . . G, 4 steps; the path is R, D, D, R.
        let lake = Lake::from_rows(&["S..", "H.H", "..G"], 0.0, 4).unwrap();
        let values = solve(&lake);
        // A* per step: a: right 0, invalid −1 (too little time left), right 0 (V = 0 after);
        // b: down −1 (hole).
        let a = episode(&lake, "a", &["go right", "wait", "go right"]);
        let b = episode(&lake, "b", &["go down"]);
        let truths: Vec<TruthRecord> = [&a, &b]
            .iter()
            .map(|e| TruthRecord::new(e, e.truth(&values, 0.1)))
            .collect();
        let adv: Vec<f64> = truths[0].truth.steps.iter().map(|s| s.advantage).collect();
        assert_eq!(adv, vec![0.0, -1.0, 0.0]);
        // Scores that order steps exactly like A*: rho = 1 pooled.
        let scores = vec![
            ("a".to_string(), vec![(1, 0.5), (3, -2.0), (5, 0.4)]),
            ("b".to_string(), vec![(1, -3.0)]),
        ];
        let pairs = join_steps(&scores, &truths).unwrap();
        assert_eq!(pairs.len(), 4);
        let al = alignment(&pairs);
        // Advantages (0, −1, 0, −1) have ranks (3.5, 1.5, 3.5, 1.5); scores (0.5, −2, 0.4,
        // −3) rank (4, 2, 3, 1). Centred: (1, −1, 1, −1) and (1.5, −0.5, 0.5, −1.5);
        // covariance 1.5 + 0.5 + 0.5 + 1.5 = 4; norms sqrt(4) · sqrt(5) → rho = 2/sqrt(5).
        let rho = al.spearman_pooled.unwrap();
        assert!((rho - 2.0 / 5f64.sqrt()).abs() < 1e-12, "{rho}");
        assert_eq!(al.n_within, 1);
        assert!(al.spearman_within_mean.unwrap() > 0.0);

        let bad = vec![("zzz".to_string(), vec![(1, 0.0)])];
        assert!(join_steps(&bad, &truths).is_err());
        let bad = vec![("a".to_string(), vec![(2, 0.0)])];
        assert!(join_steps(&bad, &truths).is_err());
    }

    #[test]
    fn length_correlation_detects_length_proxies() {
        let lengths = [3, 5, 7, 9];
        let proxy = [Some(-3.0), Some(-5.0), None, Some(-9.0)];
        assert_eq!(length_correlation(&proxy, &lengths), Some(-1.0));
        let constant = [Some(1.0); 4];
        assert_eq!(length_correlation(&constant, &lengths), None);
    }
}
