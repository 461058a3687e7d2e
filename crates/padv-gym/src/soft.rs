//! The KL-regularised (soft) optimal solution of a finite-horizon tabular MDP.
//!
//! The objective is `E[Σ_t r(s_t, a_t) − β · log π(a_t|s_t) / π_ref(a_t|s_t)]`. Backwards
//! from `V_H = 0`:
//!
//! ```text
//! Q_t(s, a) = r(s, a) + Σ_{s'} P(s'|s, a) · V_{t+1}(s')
//! V_t(s)    = β · log Σ_a π_ref(a|s) · exp(Q_t(s, a) / β)
//! π*_t(a|s) = π_ref(a|s) · exp((Q_t(s, a) − V_t(s)) / β)
//! ```
//!
//! so `β · log(π*/π_ref) = Q_soft − V_soft`: the log-ratio of the optimal regularised policy
//! to its reference, scaled by β, *is* the soft optimal advantage. That is the identity
//! progress advantage rests on; the tests check it to 1e-9 together with the two facts that
//! make it meaningful (V is the regularised value of π*, and no other policy does better).
//! As β → 0 the soft values tend to the hard optimum of [`crate::solver`].
//!
//! Terminal states take no actions and are worth 0 (rewards are paid on transitions).

use crate::error::GymError;
use crate::lake::{Action, Lake, State, Status};

/// A finite-horizon MDP with time-independent dynamics, rewards on transitions.
#[derive(Debug, Clone, PartialEq)]
pub struct TabularMdp {
    /// Number of states.
    pub n_states: usize,
    /// Number of actions (the same in every state).
    pub n_actions: usize,
    /// `transitions[s · n_actions + a]`: `(next state, probability)` pairs summing to 1.
    pub transitions: Vec<Vec<(usize, f64)>>,
    /// `rewards[s · n_actions + a]`: expected reward of taking `a` in `s`.
    pub rewards: Vec<f64>,
    /// Terminal states take no actions and are worth 0.
    pub terminal: Vec<bool>,
    /// Number of decisions; values are indexed by `t` in `0..=horizon`, `V_horizon = 0`.
    pub horizon: usize,
}

/// The soft (or, via [`TabularMdp::hard_values`], hard) solution: `V_t(s)`, `Q_t(s, a)`.
#[derive(Debug, Clone, PartialEq)]
pub struct SoftSolution {
    n_states: usize,
    n_actions: usize,
    beta: f64,
    /// `v[t · n_states + s]`, `t` in `0..=horizon`.
    v: Vec<f64>,
    /// `q[(t · n_states + s) · n_actions + a]`, `t` in `0..horizon`.
    q: Vec<f64>,
    /// `log π_ref(a|s)`, `s · n_actions + a`.
    log_ref: Vec<f64>,
}

impl TabularMdp {
    /// Checks shapes, probabilities and indices.
    pub fn validate(&self) -> Result<(), GymError> {
        let sa = self.n_states * self.n_actions;
        if self.transitions.len() != sa || self.rewards.len() != sa {
            return Err(GymError::Config(format!(
                "MDP with {} states x {} actions needs {sa} transition rows and rewards, got {} and {}",
                self.n_states,
                self.n_actions,
                self.transitions.len(),
                self.rewards.len()
            )));
        }
        if self.terminal.len() != self.n_states {
            return Err(GymError::Config(format!(
                "terminal flags: {} for {} states",
                self.terminal.len(),
                self.n_states
            )));
        }
        for (i, row) in self.transitions.iter().enumerate() {
            if self.terminal[i / self.n_actions] {
                continue;
            }
            let total: f64 = row.iter().map(|(_, p)| p).sum();
            if (total - 1.0).abs() > 1e-9
                || row
                    .iter()
                    .any(|(s, p)| *s >= self.n_states || !(0.0..=1.0).contains(p))
            {
                return Err(GymError::Config(format!(
                    "transition row of state {} action {} is not a distribution over states",
                    i / self.n_actions,
                    i % self.n_actions
                )));
            }
        }
        Ok(())
    }

    /// Soft value iteration for reference policy `pi_ref[s · n_actions + a]` (rows of
    /// non-terminal states must sum to 1; zeros are allowed and give π* = 0 there) and
    /// temperature `beta > 0`.
    pub fn soft_solve(&self, pi_ref: &[f64], beta: f64) -> Result<SoftSolution, GymError> {
        self.validate()?;
        if !(beta.is_finite() && beta > 0.0) {
            return Err(GymError::Config(format!("beta must be > 0, got {beta}")));
        }
        let na = self.n_actions;
        if pi_ref.len() != self.n_states * na {
            return Err(GymError::Config(format!(
                "reference policy has {} entries, expected {}",
                pi_ref.len(),
                self.n_states * na
            )));
        }
        for s in (0..self.n_states).filter(|s| !self.terminal[*s]) {
            let row = &pi_ref[s * na..(s + 1) * na];
            let total: f64 = row.iter().sum();
            if (total - 1.0).abs() > 1e-9 || row.iter().any(|p| !(0.0..=1.0).contains(p)) {
                return Err(GymError::Config(format!(
                    "reference policy of state {s} is not a distribution: {row:?}"
                )));
            }
        }
        let log_ref: Vec<f64> = pi_ref.iter().map(|p| p.ln()).collect();
        Ok(self.backward(beta, &log_ref, |q_row, log_ref_row| {
            // β · logsumexp(log π_ref + Q/β), shifted by the max for stability.
            let m = q_row
                .iter()
                .zip(log_ref_row)
                .map(|(q, l)| l + q / beta)
                .fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = q_row
                .iter()
                .zip(log_ref_row)
                .map(|(q, l)| (l + q / beta - m).exp())
                .sum();
            beta * (m + sum.ln())
        }))
    }

    /// Hard (unregularised) finite-horizon value iteration: `V_t(s) = max_a Q_t(s, a)`.
    /// `beta` and the reference of the result are meaningless (0 and uniform).
    pub fn hard_values(&self) -> Result<SoftSolution, GymError> {
        self.validate()?;
        let log_ref = vec![-(self.n_actions as f64).ln(); self.n_states * self.n_actions];
        Ok(self.backward(0.0, &log_ref, |q_row, _| {
            q_row.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        }))
    }

    fn backward(
        &self,
        beta: f64,
        log_ref: &[f64],
        backup: impl Fn(&[f64], &[f64]) -> f64,
    ) -> SoftSolution {
        let (ns, na, h) = (self.n_states, self.n_actions, self.horizon);
        let mut v = vec![0.0; (h + 1) * ns];
        let mut q = vec![0.0; h * ns * na];
        for t in (0..h).rev() {
            for s in 0..ns {
                if self.terminal[s] {
                    continue;
                }
                let base = (t * ns + s) * na;
                for a in 0..na {
                    let next: f64 = self.transitions[s * na + a]
                        .iter()
                        .map(|(s2, p)| p * v[(t + 1) * ns + s2])
                        .sum();
                    q[base + a] = self.rewards[s * na + a] + next;
                }
                v[t * ns + s] = backup(&q[base..base + na], &log_ref[s * na..(s + 1) * na]);
            }
        }
        SoftSolution {
            n_states: ns,
            n_actions: na,
            beta,
            v,
            q,
            log_ref: log_ref.to_vec(),
        }
    }
}

impl SoftSolution {
    /// `V_t(s)`.
    pub fn v(&self, t: usize, s: usize) -> f64 {
        self.v[t * self.n_states + s]
    }

    /// `Q_t(s, a)` for `t < horizon` (0 for terminal states).
    pub fn q(&self, t: usize, s: usize, a: usize) -> f64 {
        self.q[(t * self.n_states + s) * self.n_actions + a]
    }

    /// The soft advantage `Q_t(s, a) − V_t(s)`.
    pub fn advantage(&self, t: usize, s: usize, a: usize) -> f64 {
        self.q(t, s, a) - self.v(t, s)
    }

    /// `log π*_t(a|s) = log π_ref(a|s) + (Q − V)/β` (−∞ where the reference is 0).
    pub fn log_policy(&self, t: usize, s: usize, a: usize) -> f64 {
        self.log_ref[s * self.n_actions + a] + self.advantage(t, s, a) / self.beta
    }

    /// The temperature.
    pub fn beta(&self) -> f64 {
        self.beta
    }
}

/// The lake as a [`TabularMdp`] over tile positions with the five actions of
/// [`Action::ALL`] and horizon `max_steps`: the reward of `(pos, a)` is the probability of
/// landing on the goal, holes and the goal are terminal, and running out of steps is the
/// horizon. Its hard values equal [`crate::solver::solve`]'s `V*(pos, t)` (tested).
pub fn lake_mdp(lake: &Lake) -> TabularMdp {
    let n = lake.n_tiles();
    let na = Action::ALL.len();
    let mut transitions = Vec::with_capacity(n * na);
    let mut rewards = Vec::with_capacity(n * na);
    let mut terminal = Vec::with_capacity(n);
    for pos in 0..n {
        // t = 0 with a positive step budget: only the tile decides terminality here.
        let s = State { pos, t: 0 };
        let done = matches!(lake.status(s), Status::Goal | Status::Hole);
        terminal.push(done);
        for a in Action::ALL {
            if done {
                transitions.push(Vec::new());
                rewards.push(0.0);
                continue;
            }
            let outs = lake.outcomes(s, a);
            rewards.push(
                outs.iter()
                    .filter(|(n2, _)| n2.pos == lake.goal())
                    .map(|(_, p)| p)
                    .sum(),
            );
            transitions.push(outs.iter().map(|(n2, p)| (n2.pos, *p)).collect());
        }
    }
    TabularMdp {
        n_states: n,
        n_actions: na,
        transitions,
        rewards,
        terminal,
        horizon: lake.config().max_steps,
    }
}

#[cfg(test)]
mod tests;
