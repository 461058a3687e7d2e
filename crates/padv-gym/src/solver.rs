//! Exact finite-horizon value iteration on the lake's true dynamics.
//!
//! The value of a state is the optimal probability of reaching the goal from it:
//! `V*(s) = max_a Q*(s, a)` and `Q*(s, a) = Σ_{s'} P(s' | s, a) V*(s')` for a running state,
//! with `V* = 1` on the goal and `0` in a hole or out of steps. Since the only reward is 1 on
//! reaching the goal, this is also the optimal expected return. The state includes the step
//! count `t`, so the horizon is handled exactly (no discounting): the table has
//! `(max_steps + 1) · n²` entries, filled backwards from `t = max_steps`.
//!
//! The advantage `A*(s, a) = Q*(s, a) − V*(s) ≤ 0` is how much success probability action
//! `a` throws away; it is the quantity progress advantage is meant to recover.
//! [`Action::Invalid`] is one of the actions (the agent can always stay put by writing
//! nonsense), although it is never strictly better than the best move.

use crate::lake::{Action, Lake, Move, State};

/// Ties between actions within this much are treated as equal (the optimal set).
pub const TIE_TOLERANCE: f64 = 1e-12;

/// V*, Q* and A* of every state of one lake.
#[derive(Debug, Clone, PartialEq)]
pub struct Values {
    n_tiles: usize,
    max_steps: usize,
    v: Vec<f64>,
    q: Vec<[f64; 5]>,
}

/// Solves `lake` exactly by backward induction over `t`.
pub fn solve(lake: &Lake) -> Values {
    let n_tiles = lake.n_tiles();
    let max_steps = lake.config().max_steps;
    let len = (max_steps + 1) * n_tiles;
    let mut v = vec![0.0; len];
    let mut q = vec![[0.0; 5]; len];
    for t in (0..=max_steps).rev() {
        for pos in 0..n_tiles {
            let s = State { pos, t };
            let idx = t * n_tiles + pos;
            if lake.status(s).is_done() {
                let terminal = if pos == lake.goal() { 1.0 } else { 0.0 };
                v[idx] = terminal;
                q[idx] = [terminal; 5];
                continue;
            }
            let mut row = [0.0; 5];
            for a in Action::ALL {
                // Successors have t + 1 ≤ max_steps, already filled.
                row[a.index()] = lake
                    .outcomes(s, a)
                    .iter()
                    .map(|(next, p)| p * v[next.t * n_tiles + next.pos])
                    .sum();
            }
            v[idx] = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            q[idx] = row;
        }
    }
    Values {
        n_tiles,
        max_steps,
        v,
        q,
    }
}

impl Values {
    fn index(&self, s: State) -> usize {
        // A state past the horizon behaves like the last step: out of moves.
        s.t.min(self.max_steps) * self.n_tiles + s.pos
    }

    /// `V*(s)`: the optimal success probability from `s` (1 on the goal, 0 in a hole or out
    /// of steps).
    pub fn v(&self, s: State) -> f64 {
        self.v[self.index(s)]
    }

    /// `Q*(s, a)`: the success probability of taking `a` in `s` and acting optimally after.
    /// Equal to `V*(s)` for every action in a terminal state.
    pub fn q(&self, s: State, a: Action) -> f64 {
        self.q[self.index(s)][a.index()]
    }

    /// `A*(s, a) = Q*(s, a) − V*(s)`, never positive.
    pub fn advantage(&self, s: State, a: Action) -> f64 {
        self.q(s, a) - self.v(s)
    }

    /// The moves whose Q* is within [`TIE_TOLERANCE`] of V*, in [`Move::ALL`] order.
    pub fn optimal_moves(&self, s: State) -> Vec<Move> {
        let v = self.v(s);
        Move::ALL
            .into_iter()
            .filter(|m| self.q(s, Action::Move(*m)) >= v - TIE_TOLERANCE)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::Move::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    /// ```text
    /// S G      slip p = 0.2, so the intended move has 0.8 and each side 0.1.
    /// . .
    /// ```
    /// Horizon 1, from S (t = 0):
    /// - Right: 0.8 to G; sides: up bumps (stays), down to (1,0) → Q = 0.8.
    /// - Up: bumps 0.8; sides left bumps, right to G 0.1 → Q = 0.1.
    /// - Down: (1,0) 0.8; sides left bumps, right to G 0.1 → Q = 0.1.
    /// - Left: bumps; sides up bumps, down to (1,0) → Q = 0. Invalid: stays → 0.
    ///
    /// Horizon 2: V(S, t=1) = 0.8 (the horizon-1 problem again), V((1,0), t=1) = 0 (G is
    /// two moves away), so from (S, 0):
    /// - Right: 0.8·1 + 0.1·V(S,1) + 0.1·V((1,0),1) = 0.8 + 0.08 + 0 = 0.88.
    /// - Up: stays with 0.8 + 0.1 = 0.9 → 0.9·0.8 = 0.72, plus 0.1 to G → 0.82.
    /// - Down: 0.8·0 + 0.1·0.8 (left bumps) + 0.1·1 (right to G) = 0.18.
    /// - Left: stays with 0.9 → 0.72, down with 0.1 → 0 → 0.72.
    /// - Invalid: V(S,1) = 0.8.
    #[test]
    fn two_by_two_by_hand() {
        let lake = Lake::from_rows(&["SG", ".."], 0.2, 1).unwrap();
        let vals = solve(&lake);
        let s = lake.initial();
        close(vals.v(s), 0.8);
        let want = [(Up, 0.1), (Down, 0.1), (Left, 0.0), (Right, 0.8)];
        for (m, q) in want {
            close(vals.q(s, Action::Move(m)), q);
            close(vals.advantage(s, Action::Move(m)), q - 0.8);
        }
        close(vals.q(s, Action::Invalid), 0.0);
        assert_eq!(vals.optimal_moves(s), vec![Right]);

        let lake = Lake::from_rows(&["SG", ".."], 0.2, 2).unwrap();
        let vals = solve(&lake);
        close(vals.v(State { pos: 0, t: 1 }), 0.8);
        close(vals.v(State { pos: 2, t: 1 }), 0.0);
        // From (1,1) at t = 1: up reaches G with 0.8.
        close(vals.v(State { pos: 3, t: 1 }), 0.8);
        let want = [(Up, 0.82), (Down, 0.18), (Left, 0.72), (Right, 0.88)];
        for (m, q) in want {
            close(vals.q(s, Action::Move(m)), q);
        }
        close(vals.q(s, Action::Invalid), 0.8);
        close(vals.v(s), 0.88);
        close(vals.advantage(s, Action::Invalid), -0.08);
        // Terminal states: the goal is worth 1, every action's advantage is 0.
        close(vals.v(State { pos: 1, t: 1 }), 1.0);
        close(
            vals.advantage(State { pos: 1, t: 1 }, Action::Move(Up)),
            0.0,
        );
    }

    /// ```text
    /// S H .    no slip: moves are deterministic.
    /// . . .    Shortest safe path: down, down, right, right (4 moves); going right
    /// . . G    from S falls in the hole.
    /// ```
    /// With 4 steps V*(S) = 1, Q*(S, right) = 0 (hole), Q*(S, down) = 1, Q*(S, up) = Q*(S,
    /// left) = Q*(S, invalid) = 0 (a wasted step leaves 3 < 4 moves). With 3 steps nothing
    /// reaches G: V*(S) = 0.
    #[test]
    fn deterministic_map_with_a_hole_by_hand() {
        let lake = Lake::from_rows(&["SH.", "...", "..G"], 0.0, 4).unwrap();
        let vals = solve(&lake);
        let s = lake.initial();
        close(vals.v(s), 1.0);
        close(vals.q(s, Action::Move(Right)), 0.0);
        close(vals.advantage(s, Action::Move(Right)), -1.0);
        close(vals.q(s, Action::Move(Down)), 1.0);
        for a in [Action::Move(Up), Action::Move(Left), Action::Invalid] {
            close(vals.q(s, a), 0.0);
        }
        assert_eq!(vals.optimal_moves(s), vec![Down]);
        // From (1,1) at t = 2: down then right or right then down both work.
        assert_eq!(
            vals.optimal_moves(State { pos: 4, t: 2 }),
            vec![Down, Right]
        );
        close(vals.v(State { pos: 1, t: 1 }), 0.0);

        let short = Lake::from_rows(&["SH.", "...", "..G"], 0.0, 3).unwrap();
        close(solve(&short).v(short.initial()), 0.0);
    }

    /// On generated maps: V* is a probability, non-increasing in t, advantages are ≤ 0 with
    /// at least one optimal move, and Bellman consistency holds against `outcomes`.
    #[test]
    fn generated_maps_satisfy_bellman_optimality() {
        let config = crate::lake::LakeConfig::default();
        for seed in 0..20 {
            let lake = Lake::generate(&config, seed).unwrap();
            let vals = solve(&lake);
            assert!(vals.v(lake.initial()) > 0.0, "solvable maps have V* > 0");
            for t in 0..config.max_steps {
                for pos in 0..lake.n_tiles() {
                    let s = State { pos, t };
                    let v = vals.v(s);
                    assert!((0.0..=1.0).contains(&v));
                    assert!(v >= vals.v(State { pos, t: t + 1 }) - 1e-15);
                    if lake.status(s).is_done() {
                        continue;
                    }
                    assert!(!vals.optimal_moves(s).is_empty());
                    for a in Action::ALL {
                        assert!(vals.advantage(s, a) <= 1e-15);
                        let backup: f64 = lake
                            .outcomes(s, a)
                            .iter()
                            .map(|(n, p)| p * vals.v(*n))
                            .sum();
                        close(backup, vals.q(s, a));
                    }
                }
            }
        }
    }
}
