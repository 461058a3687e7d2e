//! Ground truth of an episode from the exact solver: success, the true advantage `A*(s, a)`
//! of every step, and the decisive mistake of a failure.
//!
//! The decisive mistake of a failed episode is the step with the most negative `A*` (the
//! first on ties), provided `A* < −threshold`. With the default threshold
//! [`DEFAULT_MISTAKE_THRESHOLD`] = 0.1 a mistake is an action that gave away more than 10
//! percentage points of success probability. Failures where every action was within the
//! threshold of optimal were bad luck (slips) and carry no mistake label; successes never
//! carry one. Failure-attribution metrics are computed on labelled failures only, so how
//! many failures are unlabelled must be reported alongside them ([`TruthCounts`]).

use serde::{Deserialize, Serialize};

use crate::lake::{Action, State};
use crate::solver::Values;

/// The default decisive-mistake threshold on `−A*` (success probability given away).
pub const DEFAULT_MISTAKE_THRESHOLD: f64 = 0.1;

/// One action step judged by the solver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTruth {
    /// 0-based action step.
    pub step: usize,
    /// The state the action was taken in.
    pub state: State,
    /// The action as the environment parsed it.
    pub action: Action,
    /// `V*(s)`.
    pub v: f64,
    /// `Q*(s, a)`.
    pub q: f64,
    /// `A*(s, a) = Q*(s, a) − V*(s)` (≤ 0).
    pub advantage: f64,
}

/// Ground truth of one episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeTruth {
    /// Whether the episode reached the goal.
    pub success: bool,
    /// `V*` of the initial state: the best achievable success probability on this map.
    pub v_start: f64,
    /// Every action step in order.
    pub steps: Vec<StepTruth>,
    /// The threshold the mistake label used.
    pub threshold: f64,
    /// The decisive mistake's step index (failures only, see the module docs).
    pub decisive_mistake: Option<usize>,
}

impl EpisodeTruth {
    /// Judges the `(state, action)` pairs of an episode. `steps` must be in order and start
    /// in the initial state; `success` is the episode's outcome.
    pub fn new(values: &Values, steps: &[(State, Action)], success: bool, threshold: f64) -> Self {
        let steps: Vec<StepTruth> = steps
            .iter()
            .enumerate()
            .map(|(i, &(state, action))| StepTruth {
                step: i,
                state,
                action,
                v: values.v(state),
                q: values.q(state, action),
                advantage: values.advantage(state, action),
            })
            .collect();
        let v_start = steps.first().map_or(0.0, |s| s.v);
        let decisive_mistake = if success {
            None
        } else {
            steps
                .iter()
                .fold(None::<&StepTruth>, |best, s| match best {
                    Some(b) if b.advantage <= s.advantage => Some(b),
                    _ => Some(s),
                })
                .filter(|s| s.advantage < -threshold)
                .map(|s| s.step)
        };
        EpisodeTruth {
            success,
            v_start,
            steps,
            threshold,
            decisive_mistake,
        }
    }

    /// The most negative `A*` of the episode (0 for an episode without steps).
    pub fn min_advantage(&self) -> f64 {
        self.steps.iter().map(|s| s.advantage).fold(0.0, f64::min)
    }
}

/// How many episodes succeeded, failed with a decisive mistake, or failed by bad luck.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthCounts {
    /// Episodes.
    pub episodes: usize,
    /// Reached the goal.
    pub successes: usize,
    /// Failed with a decisive mistake below the threshold.
    pub labelled_failures: usize,
    /// Failed although every action was within the threshold of optimal.
    pub unlucky_failures: usize,
}

impl TruthCounts {
    /// Counts over episodes.
    pub fn of<'a>(truths: impl IntoIterator<Item = &'a EpisodeTruth>) -> TruthCounts {
        let mut c = TruthCounts::default();
        for t in truths {
            c.episodes += 1;
            match (t.success, t.decisive_mistake) {
                (true, _) => c.successes += 1,
                (false, Some(_)) => c.labelled_failures += 1,
                (false, None) => c.unlucky_failures += 1,
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::{Lake, Move};
    use crate::solver::solve;

    /// ```text
    /// S . .    slip 0 (deterministic), 4 steps. V*(S) = 1.
    /// H . H    Down from S falls in the hole (A* = −1); right keeps V = 1.
    /// . . G    From (0,1): down → (1,1), then down → (2,1), right → G.
    /// ```
    #[test]
    fn mistakes_are_the_most_negative_advantage_below_the_threshold() {
        let lake = Lake::from_rows(&["S..", "H.H", "..G"], 0.0, 4).unwrap();
        let values = solve(&lake);
        let s0 = lake.initial();
        let right = Action::Move(Move::Right);
        let down = Action::Move(Move::Down);

        // Straight into the hole: one step, A* = −1, the decisive mistake.
        let t = EpisodeTruth::new(&values, &[(s0, down)], false, 0.1);
        assert_eq!(t.decisive_mistake, Some(0));
        assert_eq!(t.steps[0].advantage, -1.0);
        assert_eq!(t.v_start, 1.0);

        // Right (A* = 0), then invalid at (0,1), t = 1: V = 1 (3 steps left for distance
        // 3), but the wasted step leaves 2 steps for distance 3, so Q = 0 and A* = −1.
        let s1 = State { pos: 1, t: 1 };
        let t = EpisodeTruth::new(&values, &[(s0, right), (s1, Action::Invalid)], false, 0.1);
        assert_eq!(t.steps[0].advantage, 0.0);
        assert_eq!(t.steps[1].v, 1.0);
        assert_eq!(t.steps[1].advantage, -1.0);
        assert_eq!(t.decisive_mistake, Some(1));
        assert_eq!(t.min_advantage(), -1.0);

        // A success never has a mistake; a failure of optimal moves is bad luck.
        let t = EpisodeTruth::new(&values, &[(s0, down)], true, 0.1);
        assert_eq!(t.decisive_mistake, None);
        let t = EpisodeTruth::new(&values, &[(s0, right)], false, 0.1);
        assert_eq!(t.decisive_mistake, None);

        let truths = [
            EpisodeTruth::new(&values, &[(s0, down)], false, 0.1),
            EpisodeTruth::new(&values, &[(s0, right)], false, 0.1),
            EpisodeTruth::new(&values, &[(s0, right)], true, 0.1),
        ];
        let c = TruthCounts::of(&truths);
        assert_eq!(
            (
                c.episodes,
                c.successes,
                c.labelled_failures,
                c.unlucky_failures
            ),
            (3, 1, 1, 1)
        );
    }

    /// Ties go to the first step; the threshold is strict.
    #[test]
    fn ties_and_threshold() {
        // 2x2, slip 0.2, 1 step: A*(S, up) = 0.1 − 0.8 = −0.7 (see the solver's tests).
        let lake = Lake::from_rows(&["SG", ".."], 0.2, 1).unwrap();
        let values = solve(&lake);
        let s0 = lake.initial();
        let up = Action::Move(Move::Up);
        let a = values.advantage(s0, up);
        assert!((a + 0.7).abs() < 1e-12);
        let t = EpisodeTruth::new(&values, &[(s0, up), (s0, up)], false, 0.1);
        assert_eq!(t.decisive_mistake, Some(0));
        let t = EpisodeTruth::new(&values, &[(s0, up)], false, -a);
        assert_eq!(
            t.decisive_mistake, None,
            "A* equal to −threshold is not below it"
        );
        let t = EpisodeTruth::new(&values, &[(s0, up)], false, -a - 1e-9);
        assert_eq!(t.decisive_mistake, Some(0));
    }
}
