//! Deterministic synthetic log-prob records, for benchmarks and end-to-end tests.
//!
//! The generative story is simple but keeps every evaluation non-trivial:
//! - tasks of 8 rollouts share a difficulty; each rollout has a latent quality
//!   `q = difficulty + noise`, and succeeds (reward 1) with probability `sigmoid(2q)`;
//!   some failures get a partial reward 0.5;
//! - each step's advantage is `0.4·q + noise`, and a failure's decisive step (its
//!   `mistake_step`) gets an extra −1.5, so PA carries signal for UQ, best-of-N and FA;
//! - reference log-probs are the policy's minus the step advantage (plus token noise);
//!   the certainty statistics are mildly related to the advantage.
//!
//! Action steps sit at odd message indices (1, 3, 5, ...), as after a user turn.

use rayon::prelude::*;

use crate::record::{LogprobRecord, StepLogprobs};
use crate::rng::SplitMix64;

/// Rollouts per task.
const ROLLOUTS_PER_TASK: usize = 8;
/// Vocabulary size written to every record (Qwen2.5's).
const VOCAB: usize = 151_936;

/// `n_traj` records of `n_steps` steps of `n_tokens` tokens each, with every array present.
/// Deterministic in `seed`, and record `i` does not depend on `n_traj`.
pub fn synthetic_records(
    n_traj: usize,
    n_steps: usize,
    n_tokens: usize,
    seed: u64,
) -> Vec<LogprobRecord> {
    synthetic_records_range(0..n_traj, n_steps, n_tokens, seed)
}

/// Records `range` of [`synthetic_records`] (the same records as its `range` slice), so a
/// benchmark can write millions of them a batch at a time.
pub fn synthetic_records_range(
    range: std::ops::Range<usize>,
    n_steps: usize,
    n_tokens: usize,
    seed: u64,
) -> Vec<LogprobRecord> {
    range
        .into_par_iter()
        .with_min_len(64)
        .map(|i| synthetic_record(i, n_steps, n_tokens, seed))
        .collect()
}

fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut r = SplitMix64::new(seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.rotate_left(32));
    r.next_u64()
}

fn synthetic_record(i: usize, n_steps: usize, n_tokens: usize, seed: u64) -> LogprobRecord {
    let task = i / ROLLOUTS_PER_TASK;
    let difficulty = SplitMix64::new(mix(seed, task as u64, 1)).next_gaussian_approx();
    let mut rng = SplitMix64::new(mix(seed, i as u64, 2));
    let quality = difficulty + 0.8 * rng.next_gaussian_approx();
    let p_success = 1.0 / (1.0 + (-2.0 * quality).exp());
    let success = rng.next_f64() < p_success;
    let reward = if success {
        1.0
    } else if rng.next_f64() < 0.2 {
        0.5
    } else {
        0.0
    };
    let mistake = (!success && n_steps > 0).then(|| rng.below(n_steps));

    let steps = (0..n_steps)
        .map(|s| {
            let mut advantage = 0.4 * quality + 0.5 * rng.next_gaussian_approx();
            if mistake == Some(s) {
                advantage -= 1.5;
            }
            let mut step = StepLogprobs {
                message_index: 2 * s + 1,
                policy: Vec::with_capacity(n_tokens),
                reference: Some(Vec::with_capacity(n_tokens)),
                policy_topk_mean: Some(Vec::with_capacity(n_tokens)),
                policy_entropy: Some(Vec::with_capacity(n_tokens)),
                policy_vocab_mean: Some(Vec::with_capacity(n_tokens)),
            };
            for _ in 0..n_tokens {
                let u = rng.next_f64();
                // A skewed log-prob in (-2.5, 0]: most tokens likely, a few not (no `ln`,
                // which would dominate generation time at 10^8 tokens).
                let policy = -2.5 * u * u;
                let reference = (policy - advantage + 0.3 * (rng.next_f64() - 0.5)).min(0.0);
                let v = rng.next_f64();
                step.policy.push(policy as f32);
                push(&mut step.reference, reference);
                push(
                    &mut step.policy_topk_mean,
                    -(9.0 + 4.0 * v) - 0.5 * advantage,
                );
                push(
                    &mut step.policy_entropy,
                    (1.5 * v + 0.3 - 0.2 * advantage).max(0.0),
                );
                push(
                    &mut step.policy_vocab_mean,
                    -(15.0 + 3.0 * v) - 0.3 * advantage,
                );
            }
            step
        })
        .collect();
    LogprobRecord {
        num_messages: None,
        id: format!("traj-{i}"),
        task_id: format!("task-{task}"),
        label: Some(reward),
        mistake_step: mistake.map(|s| 2 * s + 1),
        vocab_size: Some(VOCAB),
        steps,
        judges: Default::default(),
    }
}

fn push(arr: &mut Option<Vec<f32>>, v: f64) {
    if let Some(a) = arr {
        a.push(v as f32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_valid_and_grouped() {
        let a = synthetic_records(20, 3, 4, 5);
        assert_eq!(a, synthetic_records(20, 3, 4, 5));
        assert_ne!(a, synthetic_records(20, 3, 4, 6));
        // record i does not depend on n_traj
        assert_eq!(a[3], synthetic_records(4, 3, 4, 5)[3]);
        for r in &a {
            for s in &r.steps {
                let logprobs = [
                    &s.policy,
                    s.reference.as_ref().unwrap(),
                    s.policy_topk_mean.as_ref().unwrap(),
                    s.policy_vocab_mean.as_ref().unwrap(),
                ];
                assert!(logprobs.iter().all(|arr| arr.iter().all(|&v| v <= 0.0)));
                assert!(s.policy_entropy.as_ref().unwrap().iter().all(|&v| v >= 0.0));
            }
            assert_eq!(r.steps.len(), 3);
            assert!(r.steps.iter().all(|s| s.len() == 4));
            // failures carry a mistake step at an action position, successes none
            match r.mistake_step {
                Some(m) => assert!(r.label != Some(1.0) && m % 2 == 1 && m < 6),
                None => assert_eq!(r.label, Some(1.0)),
            }
        }
        assert_eq!(a[7].task_id, "task-0");
        assert_eq!(a[8].task_id, "task-1");
    }
}
