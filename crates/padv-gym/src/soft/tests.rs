//! The soft identity on random stochastic MDPs, and the lake's soft/hard consistency.
// Tabular MDP code indexes several arrays by the same state index.
#![allow(clippy::needless_range_loop)]

use padv_core::eval::SplitMix64;
use proptest::prelude::*;

use super::*;
use crate::lake::LakeConfig;

/// A random MDP: every non-terminal (s, a) moves to up to 3 random states with random
/// weights, rewards uniform in [0, 1), each state terminal with probability 0.2 (state 0
/// never). The reference policy has full support except, with probability 0.2, one action
/// of a state gets probability 0 (the identity must hold on the support).
fn random_problem(
    n_states: usize,
    n_actions: usize,
    horizon: usize,
    seed: u64,
) -> (TabularMdp, Vec<f64>) {
    let mut rng = SplitMix64::new(seed);
    let terminal: Vec<bool> = (0..n_states)
        .map(|s| s > 0 && rng.next_f64() < 0.2)
        .collect();
    let mut transitions = Vec::new();
    let mut rewards = Vec::new();
    for s in 0..n_states {
        for _ in 0..n_actions {
            if terminal[s] {
                transitions.push(Vec::new());
                rewards.push(0.0);
                continue;
            }
            let k = 1 + rng.below(3);
            let weights: Vec<f64> = (0..k).map(|_| 0.05 + rng.next_f64()).collect();
            let total: f64 = weights.iter().sum();
            transitions.push(
                weights
                    .iter()
                    .map(|w| (rng.below(n_states), w / total))
                    .collect(),
            );
            rewards.push(rng.next_f64());
        }
    }
    let mut pi_ref = Vec::new();
    for _ in 0..n_states {
        let mut row: Vec<f64> = (0..n_actions).map(|_| 0.05 + rng.next_f64()).collect();
        if rng.next_f64() < 0.2 {
            row[rng.below(n_actions)] = 0.0;
        }
        let total: f64 = row.iter().sum();
        pi_ref.extend(row.iter().map(|p| p / total));
    }
    let mdp = TabularMdp {
        n_states,
        n_actions,
        transitions,
        rewards,
        terminal,
        horizon,
    };
    (mdp, pi_ref)
}

/// `π*` by explicit normalisation of `π_ref · exp(Q/β)` (no use of V), per (t, s).
fn normalised_policy(sol: &SoftSolution, pi_ref: &[f64], t: usize, s: usize) -> Vec<f64> {
    let na = sol.n_actions;
    let qmax = (0..na)
        .map(|a| sol.q(t, s, a))
        .fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = (0..na)
        .map(|a| pi_ref[s * na + a] * ((sol.q(t, s, a) - qmax) / sol.beta()).exp())
        .collect();
    let total: f64 = w.iter().sum();
    w.iter().map(|x| x / total).collect()
}

/// The regularised return `E[Σ r − β log π/π_ref]` of a time-dependent policy
/// `policy(t, s) -> probabilities`, by backward policy evaluation.
fn evaluate(
    mdp: &TabularMdp,
    pi_ref: &[f64],
    beta: f64,
    policy: &dyn Fn(usize, usize) -> Vec<f64>,
) -> Vec<f64> {
    let (ns, na) = (mdp.n_states, mdp.n_actions);
    let mut next = vec![0.0; ns];
    for t in (0..mdp.horizon).rev() {
        let mut cur = vec![0.0; ns];
        for s in (0..ns).filter(|s| !mdp.terminal[*s]) {
            let pi = policy(t, s);
            for a in 0..na {
                if pi[a] == 0.0 {
                    continue;
                }
                let future: f64 = mdp.transitions[s * na + a]
                    .iter()
                    .map(|(s2, p)| p * next[*s2])
                    .sum();
                let kl = beta * (pi[a] / pi_ref[s * na + a]).ln();
                cur[s] += pi[a] * (mdp.rewards[s * na + a] - kl + future);
            }
        }
        next = cur;
    }
    next
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// β·log(π*/π_ref) = Q_soft − V_soft to 1e-9, where π* is normalised independently of
    /// V; V_soft is the regularised value of π* (to 1e-9), and perturbed policies do no
    /// better (so V_soft is the optimum, not just a consistent number).
    #[test]
    fn soft_identity_on_random_mdps(
        n_states in 2usize..7,
        n_actions in 2usize..5,
        horizon in 1usize..6,
        seed in any::<u64>(),
        beta in 0.05f64..2.0,
    ) {
        let (mdp, pi_ref) = random_problem(n_states, n_actions, horizon, seed);
        let sol = mdp.soft_solve(&pi_ref, beta).unwrap();
        for t in 0..horizon {
            for s in (0..n_states).filter(|s| !mdp.terminal[*s]) {
                let pi = normalised_policy(&sol, &pi_ref, t, s);
                prop_assert!((pi.iter().sum::<f64>() - 1.0).abs() < 1e-12);
                for a in 0..n_actions {
                    if pi_ref[s * n_actions + a] == 0.0 {
                        prop_assert_eq!(pi[a], 0.0);
                        continue;
                    }
                    let lhs = beta * (pi[a] / pi_ref[s * n_actions + a]).ln();
                    let rhs = sol.advantage(t, s, a);
                    prop_assert!((lhs - rhs).abs() < 1e-9, "t={} s={} a={}: {} vs {}", t, s, a, lhs, rhs);
                    prop_assert!((sol.log_policy(t, s, a) - pi[a].ln()).abs() < 1e-9);
                }
            }
        }
        let star = |t: usize, s: usize| normalised_policy(&sol, &pi_ref, t, s);
        let j_star = evaluate(&mdp, &pi_ref, beta, &star);
        for s in 0..n_states {
            prop_assert!((j_star[s] - sol.v(0, s)).abs() < 1e-9, "J(pi*) {} vs V {}", j_star[s], sol.v(0, s));
        }
        // Perturb π* towards a random distribution on the reference's support.
        let mut rng = SplitMix64::new(seed ^ 0xABCD);
        for _ in 0..3 {
            let mix = 0.05 + 0.9 * rng.next_f64();
            let noise: Vec<f64> = (0..n_states * n_actions)
                .map(|i| if pi_ref[i] > 0.0 { 0.01 + rng.next_f64() } else { 0.0 })
                .collect();
            let other = |t: usize, s: usize| {
                let p = star(t, s);
                let row = &noise[s * n_actions..(s + 1) * n_actions];
                let total: f64 = row.iter().sum();
                p.iter().zip(row).map(|(x, n)| (1.0 - mix) * x + mix * n / total).collect()
            };
            let j = evaluate(&mdp, &pi_ref, beta, &other);
            for s in 0..n_states {
                prop_assert!(j[s] <= sol.v(0, s) + 1e-12, "perturbed {} > optimum {}", j[s], sol.v(0, s));
            }
        }
    }
}

/// A one-step, two-action problem by hand: rewards 1 and 0, uniform reference, β = 1:
/// V = log((e + 1)/2), π*(a0) = e/(e + 1), advantages 1 − V and −V.
#[test]
fn one_step_by_hand() {
    let mdp = TabularMdp {
        n_states: 2,
        n_actions: 2,
        transitions: vec![vec![(1, 1.0)], vec![(1, 1.0)], vec![], vec![]],
        rewards: vec![1.0, 0.0, 0.0, 0.0],
        terminal: vec![false, true],
        horizon: 1,
    };
    let sol = mdp.soft_solve(&[0.5, 0.5, 0.5, 0.5], 1.0).unwrap();
    let e = std::f64::consts::E;
    let v = ((e + 1.0) / 2.0).ln();
    assert!((sol.v(0, 0) - v).abs() < 1e-15);
    assert!((sol.log_policy(0, 0, 0) - (e / (e + 1.0)).ln()).abs() < 1e-15);
    assert!((sol.advantage(0, 0, 1) + v).abs() < 1e-15);
    assert_eq!(sol.v(0, 1), 0.0);
    assert!(mdp.soft_solve(&[0.5, 0.5, 0.5, 0.5], 0.0).is_err());
    assert!(mdp.soft_solve(&[0.9, 0.5, 0.5, 0.5], 1.0).is_err());
}

/// The lake as a tabular MDP: its hard values equal the lake solver's V*(pos, t) (an
/// independent implementation), and soft values with a small β approach them from below,
/// short by at most β·log(5) per remaining step.
#[test]
fn lake_mdp_agrees_with_the_solver() {
    let config = LakeConfig::default();
    for seed in 0..10 {
        let lake = Lake::generate(&config, seed).unwrap();
        let mdp = lake_mdp(&lake);
        let hard = mdp.hard_values().unwrap();
        let exact = crate::solver::solve(&lake);
        let uniform = vec![0.2; mdp.n_states * mdp.n_actions];
        let beta = 1e-3;
        let soft = mdp.soft_solve(&uniform, beta).unwrap();
        for t in 0..=config.max_steps {
            for pos in 0..lake.n_tiles() {
                let s = State { pos, t };
                if lake.status(s).is_done() {
                    continue;
                }
                assert!((hard.v(t, pos) - exact.v(s)).abs() < 1e-12);
                if t < config.max_steps {
                    for (i, a) in Action::ALL.into_iter().enumerate() {
                        assert!((hard.q(t, pos, i) - exact.q(s, a)).abs() < 1e-12);
                    }
                }
                // With a uniform reference, V_soft ≥ max_a Q_soft + β log(1/5) per step and
                // ≤ the hard optimum (a mixture never beats the best action).
                let gap = exact.v(s) - soft.v(t, pos);
                let steps = (config.max_steps - t) as f64;
                assert!(
                    gap >= -1e-12 && gap <= beta * 5f64.ln() * steps + 1e-12,
                    "{gap}"
                );
            }
        }
    }
}
