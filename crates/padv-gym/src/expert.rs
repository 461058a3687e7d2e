//! The imperfect expert whose demonstrations the reference model is fine-tuned on.
//!
//! Why imperfect: the paper's setting is a reference that is competent but makes mistakes,
//! and an RL policy that learns to avoid them. An expert that mixes optimal moves with
//! *plausible* mistakes gives the SFT reference exactly that profile, and leaves room for
//! KL-regularised RL to improve.
//!
//! At each step, independently:
//! - with probability `invalid_rate` it writes [`INVALID_PHRASE`] (parsed as
//!   [`Action::Invalid`]: the turn is wasted);
//! - else with probability `mistake_rate` it makes a mistake: half of the time the naive
//!   greedy move (a direction that shortens the straight-line distance to the goal, chosen
//!   uniformly, ignoring holes and slips), otherwise a uniformly random non-optimal move;
//!   either may by chance coincide with an optimal one;
//! - otherwise it takes an optimal move (uniform among the moves tied for the best Q*).

use serde::{Deserialize, Serialize};

use padv_core::eval::SplitMix64;

use crate::lake::{Action, Lake, Move, State};
use crate::protocol::action_phrase;
use crate::solver::Values;

/// The expert's unparsable phrase.
pub const INVALID_PHRASE: &str = "wait";

/// Mixing rates of the imperfect expert.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Expert {
    /// Probability of a move mistake at each step.
    pub mistake_rate: f64,
    /// Probability of an unparsable action at each step.
    pub invalid_rate: f64,
}

impl Default for Expert {
    /// 20 % move mistakes and 2 % invalid actions.
    fn default() -> Self {
        Expert {
            mistake_rate: 0.2,
            invalid_rate: 0.02,
        }
    }
}

impl Expert {
    /// The action the expert takes in `s` (a running state of `lake`; `values` must be the
    /// lake's [`crate::solver::solve`]).
    pub fn act(&self, lake: &Lake, values: &Values, s: State, rng: &mut SplitMix64) -> Action {
        if rng.next_f64() < self.invalid_rate {
            return Action::Invalid;
        }
        let optimal = values.optimal_moves(s);
        if rng.next_f64() < self.mistake_rate {
            let greedy = greedy_moves(lake, s.pos);
            let pool: Vec<Move> = if rng.next_f64() < 0.5 && !greedy.is_empty() {
                greedy
            } else {
                Move::ALL
                    .into_iter()
                    .filter(|m| !optimal.contains(m))
                    .collect()
            };
            if !pool.is_empty() {
                return Action::Move(pool[rng.below(pool.len())]);
            }
        }
        match optimal.as_slice() {
            [] => Action::Move(Move::ALL[rng.below(4)]),
            moves => Action::Move(moves[rng.below(moves.len())]),
        }
    }

    /// The text of [`Expert::act`]'s action: the canonical phrase, or [`INVALID_PHRASE`].
    pub fn action_text(
        &self,
        lake: &Lake,
        values: &Values,
        s: State,
        rng: &mut SplitMix64,
    ) -> String {
        match self.act(lake, values, s, rng) {
            Action::Move(m) => action_phrase(m).to_string(),
            Action::Invalid => INVALID_PHRASE.to_string(),
        }
    }
}

/// Moves that bring the agent closer to the goal in Manhattan distance.
fn greedy_moves(lake: &Lake, pos: usize) -> Vec<Move> {
    let (r, c) = lake.coords(pos);
    let (gr, gc) = lake.coords(lake.goal());
    let mut out = Vec::with_capacity(2);
    if gr < r {
        out.push(Move::Up);
    }
    if gr > r {
        out.push(Move::Down);
    }
    if gc < c {
        out.push(Move::Left);
    }
    if gc > c {
        out.push(Move::Right);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::LakeConfig;
    use crate::protocol::parse_action;
    use crate::solver::solve;

    #[test]
    fn a_perfect_expert_is_optimal_and_rates_are_respected() {
        let lake = Lake::generate(&LakeConfig::default(), 3).unwrap();
        let values = solve(&lake);
        let s = lake.initial();
        let perfect = Expert {
            mistake_rate: 0.0,
            invalid_rate: 0.0,
        };
        let mut rng = SplitMix64::new(11);
        for _ in 0..200 {
            let a = perfect.act(&lake, &values, s, &mut rng);
            assert!(values.advantage(s, a).abs() < 1e-12);
        }
        // Empirical rates over many draws, within 5 binomial standard deviations.
        let expert = Expert::default();
        let n = 20_000;
        let (mut invalid, mut suboptimal) = (0usize, 0usize);
        for _ in 0..n {
            let text = expert.action_text(&lake, &values, s, &mut rng);
            let a = parse_action(&text);
            match a {
                Action::Invalid => invalid += 1,
                _ if values.advantage(s, a) < -1e-12 => suboptimal += 1,
                _ => {}
            }
        }
        let p = expert.invalid_rate;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (invalid as f64 - n as f64 * p).abs() < 5.0 * sd,
            "{invalid}"
        );
        // Suboptimal moves come only from mistakes, so their rate is at most
        // (1 − invalid) · mistake_rate.
        let max = (1.0 - p) * expert.mistake_rate * n as f64;
        assert!(suboptimal > 0 && (suboptimal as f64) < max + 5.0 * max.sqrt());
    }
}
