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
//!
//! In the [`ActionStyle::Verbose`] style the expert first writes a remark line
//! ([`remark`]): one to three facts it reads off the situation (its position, the moves
//! left, the holes next to it, where the goal lies, which ways are safe), each in one of
//! several phrasings, in random order, sometimes with a filler word — so the same content
//! comes in many wordings and lengths. The remark is drawn before the move and does not
//! depend on it: its tokens carry no information about the action's quality, only nuisance.

use serde::{Deserialize, Serialize};

use padv_core::eval::SplitMix64;

use crate::lake::{Action, Lake, Move, State, Tile};
use crate::protocol::{action_phrase, move_word, ActionStyle};
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

    /// The text of [`Expert::act`]'s action in `style`: the canonical phrase, or
    /// [`INVALID_PHRASE`]; in the verbose style preceded by a [`remark`] line (drawn first,
    /// so it is independent of the move).
    pub fn action_text(
        &self,
        lake: &Lake,
        values: &Values,
        s: State,
        style: ActionStyle,
        rng: &mut SplitMix64,
    ) -> String {
        let remark = match style {
            ActionStyle::Terse => None,
            ActionStyle::Verbose => Some(remark(lake, s, rng)),
        };
        let line = match self.act(lake, values, s, rng) {
            Action::Move(m) => action_phrase(m),
            Action::Invalid => INVALID_PHRASE,
        };
        match remark {
            Some(r) => format!("{r}\n{line}"),
            None => line.to_string(),
        }
    }
}

/// The directions of `moves` as words joined by `sep` (`down and right`).
fn words(moves: &[Move], sep: &str) -> String {
    moves
        .iter()
        .map(|m| move_word(*m))
        .collect::<Vec<_>>()
        .join(sep)
}

/// One remark line about running state `s` of `lake`: what the verbose expert writes before
/// its move. Only printable ASCII without `<`, `>` and newlines (the gym alphabet).
pub fn remark(lake: &Lake, s: State, rng: &mut SplitMix64) -> String {
    let (r, c) = lake.coords(s.pos);
    let left = lake.config().max_steps.saturating_sub(s.t);
    let holes: Vec<Move> = Move::ALL
        .into_iter()
        .filter(|m| {
            lake.neighbour(s.pos, *m)
                .is_some_and(|q| lake.tile(q) == Tile::Hole)
        })
        .collect();
    let towards = greedy_moves(lake, s.pos);
    let safe: Vec<Move> = towards
        .iter()
        .copied()
        .filter(|m| !holes.contains(m))
        .collect();
    let pick = |rng: &mut SplitMix64, options: &[String]| options[rng.below(options.len())].clone();
    let mut facts: Vec<String> = Vec::new();
    let position = [
        format!("at {r},{c}"),
        format!("i am at row {r}, column {c}"),
        format!("now on {r},{c}"),
        format!("position {r},{c}"),
    ];
    let moves_left = [
        format!("{left} moves left"),
        format!("{left} left"),
        format!("still {left} moves to go"),
        format!("budget {left}"),
    ];
    let hole_fact = if holes.is_empty() {
        vec![
            "no hole next to me".to_string(),
            "no holes around".to_string(),
            "nothing dangerous nearby".to_string(),
        ]
    } else {
        vec![
            format!("hole to the {}", words(&holes, " and ")),
            format!("careful, holes: {}", words(&holes, ", ")),
            format!("must not step {}", words(&holes, " or ")),
        ]
    };
    let goal_fact = if towards.is_empty() {
        vec!["the goal is right here".to_string()]
    } else {
        vec![
            format!("goal is {}", words(&towards, "-")),
            format!("the goal lies {}", words(&towards, " and ")),
            format!("heading for the goal, {}", words(&towards, " then ")),
        ]
    };
    let safe_fact = if safe.is_empty() {
        vec![
            "no safe way straight to the goal".to_string(),
            "the direct way is blocked".to_string(),
        ]
    } else {
        vec![
            format!("safe: {}", words(&safe, " ")),
            format!("{} looks safe", words(&safe, " or ")),
            format!("i can go {} safely", words(&safe, " or ")),
        ]
    };
    let pool = [
        position.to_vec(),
        moves_left.to_vec(),
        hole_fact,
        goal_fact,
        safe_fact,
    ];
    // One to three distinct facts, in random order.
    let mut order: Vec<usize> = (0..pool.len()).collect();
    rng.shuffle(&mut order);
    let n_facts = 1 + rng.below(3);
    for &i in order.iter().take(n_facts) {
        facts.push(pick(rng, &pool[i]));
    }
    let sep = [", ", "; ", ". "][rng.below(3)];
    let mut text = facts.join(sep);
    if rng.below(3) == 0 {
        let filler = ["ok", "hmm", "well", "let me see", "alright", "so"];
        text = format!("{}, {text}", filler[rng.below(filler.len())]);
    }
    if rng.below(2) == 0 {
        text.push('.');
    }
    text
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
    use crate::protocol::{parse_action, ActionStyle};
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
            let text = expert.action_text(&lake, &values, s, ActionStyle::Terse, &mut rng);
            let a = parse_action(&text, ActionStyle::Terse);
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

    #[test]
    fn verbose_remarks_vary_and_parse_to_the_same_moves() {
        let lake = Lake::generate(&LakeConfig::default(), 5).unwrap();
        let values = solve(&lake);
        let s = lake.initial();
        let expert = Expert::default();
        let tok = crate::tokenizer::GymTokenizer::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut lengths = std::collections::BTreeSet::new();
        // The same draws give the same move in both styles: the remark comes from its own
        // draws first, so compare move distributions instead, by counting.
        let (mut terse, mut verbose) = ([0usize; 5], [0usize; 5]);
        for i in 0..4000u64 {
            let t = expert.action_text(
                &lake,
                &values,
                s,
                ActionStyle::Terse,
                &mut SplitMix64::new(i),
            );
            let v = expert.action_text(
                &lake,
                &values,
                s,
                ActionStyle::Verbose,
                &mut SplitMix64::new(i),
            );
            terse[parse_action(&t, ActionStyle::Terse).index()] += 1;
            verbose[parse_action(&v, ActionStyle::Verbose).index()] += 1;
            let (remark, line) = v.split_once('\n').unwrap();
            assert!(!remark.is_empty() && !line.contains('\n'));
            assert!(tok.encode(&v).is_ok(), "{v:?} is outside the gym alphabet");
            lengths.insert(remark.len());
            seen.insert(remark.to_string());
        }
        assert!(seen.len() > 200, "only {} distinct remarks", seen.len());
        assert!(lengths.len() > 20 && *lengths.iter().next().unwrap() < 15);
        assert!(*lengths.iter().last().unwrap() > 50);
        // Same action distribution in both styles (within 5 binomial sds).
        for a in 0..5 {
            let p = terse[a] as f64 / 4000.0;
            let sd = (4000.0 * p * (1.0 - p)).sqrt().max(1.0);
            assert!(
                (terse[a] as f64 - verbose[a] as f64).abs() < 5.0 * sd * 1.5,
                "{terse:?} {verbose:?}"
            );
        }
    }
}
