//! Soft (KL-regularised) values of a lake relative to a reference that may differ at every
//! state and time: `Q(t, pos, a) = Σ_{s'} P(s'|s, a)·(1[s' = goal] + V(s'))` with `V = 0`
//! in holes, at the goal and out of steps, and
//! `V(t, pos) = β·log Σ_a π_ref(a | t, pos)·e^{Q(t, pos, a)/β}`.
//!
//! This is the objective the gym's RL optimises, `E[R − β·Σ log π/π_ref]`, at the level of
//! the environment's actions: the KL of an action string against the reference splits into
//! the KL of the action (what this table sees) and the KL of the wording given the action,
//! which the optimum leaves at zero. [`crate::soft::TabularMdp`] solves the same problem for
//! a reference that depends on the state only; here it depends on the time step too,
//! because the LM reference reads the moves left.

use crate::lake::{Action, Lake, State, Status};

/// Soft values of one lake at temperature `beta`.
#[derive(Debug, Clone, PartialEq)]
pub struct SoftLake {
    beta: f64,
    n_tiles: usize,
    horizon: usize,
    /// `(t · n + pos)` → Q of each action in [`Action::ALL`] order (NaN where unsolved).
    q: Vec<[f64; 5]>,
    /// `(t · n + pos)` → V (NaN where unsolved).
    v: Vec<f64>,
}

impl SoftLake {
    /// Solves `lake` backwards in time. `log_ref(s)` is `log π_ref(·|s)` in [`Action::ALL`]
    /// order for a running state, `None` where the reference was not measured (states no
    /// history reaches); a measured state whose successor is unmeasured is an error.
    pub fn solve(
        lake: &Lake,
        beta: f64,
        log_ref: impl Fn(State) -> Option<[f64; 5]>,
    ) -> Result<SoftLake, String> {
        if !(beta.is_finite() && beta > 0.0) {
            return Err(format!("beta must be finite and > 0, got {beta}"));
        }
        let n = lake.n_tiles();
        let h = lake.config().max_steps;
        let mut q = vec![[f64::NAN; 5]; h * n];
        let mut v = vec![f64::NAN; h * n];
        for t in (0..h).rev() {
            for pos in 0..n {
                let s = State { pos, t };
                if lake.status(s).is_done() {
                    continue;
                }
                let Some(lr) = log_ref(s) else { continue };
                let mut row = [0.0; 5];
                for a in Action::ALL {
                    let mut total = 0.0;
                    for (next, p) in lake.outcomes(s, a) {
                        total += p * match lake.status(next) {
                            Status::Goal => 1.0,
                            Status::Hole | Status::OutOfSteps => 0.0,
                            Status::Running => {
                                let vn = v[next.t * n + next.pos];
                                if vn.is_nan() {
                                    return Err(format!(
                                        "state {s:?} leads to {next:?}, where the reference was \
                                         not measured"
                                    ));
                                }
                                vn
                            }
                        };
                    }
                    row[a.index()] = total;
                }
                let vs =
                    beta * super::trie::log_sum_exp(lr.iter().zip(&row).map(|(l, q)| l + q / beta));
                q[t * n + pos] = row;
                v[t * n + pos] = vs;
            }
        }
        Ok(SoftLake {
            beta,
            n_tiles: n,
            horizon: h,
            q,
            v,
        })
    }

    /// The temperature.
    pub fn beta(&self) -> f64 {
        self.beta
    }

    fn index(&self, s: State) -> Option<usize> {
        (s.t < self.horizon && s.pos < self.n_tiles).then(|| s.t * self.n_tiles + s.pos)
    }

    /// `Q(s, ·)` in [`Action::ALL`] order; `None` for a terminal or unsolved state.
    pub fn q(&self, s: State) -> Option<[f64; 5]> {
        self.index(s)
            .map(|i| self.q[i])
            .filter(|row| row.iter().all(|x| x.is_finite()))
    }

    /// `V(s)` relative to the reference the table was solved with; `None` as for `q`.
    pub fn v(&self, s: State) -> Option<f64> {
        self.index(s).map(|i| self.v[i]).filter(|x| x.is_finite())
    }

    /// `A(s, a) = Q(s, a) − V(s)`.
    pub fn advantage(&self, s: State, a: Action) -> Option<f64> {
        Some(self.q(s)?[a.index()] - self.v(s)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::Lake;
    use crate::soft::lake_mdp;

    /// With a reference that ignores time, the table equals the tabular soft solver's.
    #[test]
    fn matches_the_tabular_solver_for_a_stationary_reference() {
        let lake = Lake::from_rows(&["S.H", "...", "H.G"], 0.2, 6).unwrap();
        let n = lake.n_tiles();
        let pi: Vec<f64> = (0..n)
            .flat_map(|pos| {
                let w = [1.0 + pos as f64, 2.0, 0.5, 1.5, 0.25];
                let s: f64 = w.iter().sum();
                w.map(|x| x / s)
            })
            .collect();
        let beta = 0.3;
        let mdp = lake_mdp(&lake);
        let tab = mdp.soft_solve(&pi, beta).unwrap();
        let soft = SoftLake::solve(&lake, beta, |s| {
            let row = &pi[s.pos * 5..s.pos * 5 + 5];
            Some([0, 1, 2, 3, 4].map(|a| row[a].ln()))
        })
        .unwrap();
        for t in 0..6 {
            for pos in 0..n {
                let s = State { pos, t };
                if lake.status(s).is_done() {
                    continue;
                }
                let v = soft.v(s).unwrap();
                assert!((v - tab.v(t, pos)).abs() < 1e-12, "V at {s:?}");
                for a in Action::ALL {
                    let got = soft.q(s).unwrap()[a.index()];
                    assert!((got - tab.q(t, pos, a.index())).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn unmeasured_successors_are_an_error() {
        let lake = Lake::from_rows(&["S.", ".G"], 0.0, 3).unwrap();
        let only_start = |s: State| (s == lake.initial()).then_some([(0.2f64).ln(); 5]);
        assert!(SoftLake::solve(&lake, 0.1, only_start).is_err());
        assert!(SoftLake::solve(&lake, 0.0, |_| Some([0.0; 5])).is_err());
    }
}
