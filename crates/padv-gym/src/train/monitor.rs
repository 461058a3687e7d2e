//! Distance to the optimum during RL: `KL(π_θ ‖ π_o)` per step on validation maps, where
//! `π_o` is the oracle of the frozen reference ([`crate::oracle`]).
//!
//! For an action `y` the policy samples at history `h`,
//! `log π_θ(y|h) − log π_o(y|h) = log π_θ(y|h)/π_ref(y|h) − A_h(a(y))/β`, so the mean of that
//! quantity over the policy's own steps is an unbiased estimate of the expected per-step KL
//! along the policy's state distribution (≥ 0; 0 only at the optimum). The validation maps
//! are neither training maps nor any demo's held-out maps ([`validation_map_seed`]).

use padv_core::eval::SplitMix64;
use padv_engine::decoder::DecoderModel;
use serde::{Deserialize, Serialize};

use super::rl::reference_logprobs;
use crate::agent::{AgentError, Result};
use crate::lake::{Lake, LakeConfig};
use crate::oracle::{project, rollout_truth, MapTruth, MoveTrie};
use crate::sample::{rollout_batch, Job, SampleConfig, Sampler};

/// Seed of validation map `i` (bits 61 and 62 set: never a training map, whose bit 62 is
/// clear, nor a held-out map, whose bit 61 is clear).
pub fn validation_map_seed(seed: u64, i: usize) -> u64 {
    let mut r = SplitMix64::new(seed ^ 0x7A11_DA7E_0000_0000 ^ i as u64);
    r.next_u64() | (3u64 << 61)
}

/// How the distance to the optimum is monitored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorConfig {
    /// Validation maps (0 turns the monitor off).
    pub maps: usize,
    /// Rollouts per map.
    pub rollouts: usize,
    /// Measure every this many RL iterations (and before the first and after the last).
    pub every: usize,
}

impl Default for MonitorConfig {
    /// Off: pairs trained before the monitor existed.
    fn default() -> Self {
        MonitorConfig {
            maps: 0,
            rollouts: 0,
            every: 0,
        }
    }
}

/// One measurement.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KlMeasurement {
    /// Mean per step of `log π_θ/π_ref − A_h/β` (nats).
    pub kl_to_oracle: f64,
    /// Mean per step of `log π_θ/π_ref` (the KL to the reference, nats).
    pub kl_to_reference: f64,
    /// Success rate of the policy on the validation maps.
    pub success: f64,
    /// Steps measured.
    pub steps: usize,
}

/// The validation maps with their projected soft values, ready to measure policies.
pub struct KlMonitor<'a> {
    reference: &'a DecoderModel,
    sampler: &'a Sampler<'a>,
    lakes: Vec<Lake>,
    maps: Vec<MapTruth>,
    trie: MoveTrie,
    beta: f64,
    cfg: MonitorConfig,
    seed: u64,
}

impl<'a> KlMonitor<'a> {
    /// Projects `reference` on the validation maps of `lake`'s family.
    pub fn new(
        reference: &'a DecoderModel,
        sampler: &'a Sampler<'a>,
        lake: &LakeConfig,
        beta: f64,
        cfg: &MonitorConfig,
        seed: u64,
    ) -> Result<Self> {
        let lakes = (0..cfg.maps)
            .map(|i| Lake::generate(lake, validation_map_seed(seed, i)))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let trie = MoveTrie::new();
        let (maps, _) = project(reference, &lakes, sampler.style(), beta, &trie)?;
        Ok(KlMonitor {
            reference,
            sampler,
            lakes,
            maps,
            trie,
            beta,
            cfg: cfg.clone(),
            seed,
        })
    }

    /// Whether iteration `it` of `iterations` is measured.
    pub fn due(&self, it: usize, iterations: usize) -> bool {
        self.cfg.maps > 0
            && (it == 0
                || it == iterations
                || (self.cfg.every > 0 && it.is_multiple_of(self.cfg.every)))
    }

    /// Measures `policy` (same rollout seeds every time, so curves compare like with like).
    pub fn measure(&self, policy: &DecoderModel, micro_batch: usize) -> Result<KlMeasurement> {
        let mut seeds = SplitMix64::new(self.seed ^ 0x4B4C_0000);
        let jobs: Vec<Job> = self
            .lakes
            .iter()
            .enumerate()
            .flat_map(|(i, l)| (0..self.cfg.rollouts).map(move |k| (i, k, l)))
            .map(|(i, k, lake)| Job {
                lake,
                id: format!("val-{i}-{k}"),
                task_id: format!("val-{i}"),
                seed: seeds.next_u64(),
            })
            .collect();
        let cfg = SampleConfig::for_style(self.sampler.style());
        let rollouts = rollout_batch(policy, self.sampler, &jobs, &cfg)?;
        let maps: Vec<&MapTruth> = (0..jobs.len())
            .map(|j| &self.maps[j / self.cfg.rollouts.max(1)])
            .collect();
        let truth = rollout_truth(self.reference, &rollouts, &maps, self.sampler, &self.trie)?;
        let ref_lp = reference_logprobs(
            self.reference,
            &rollouts,
            self.sampler.pad_id(),
            micro_batch,
        )?;
        let (mut to_oracle, mut to_ref, mut steps) = (0.0, 0.0, 0usize);
        for ((r, st), lp) in rollouts.iter().zip(&truth).zip(&ref_lp) {
            let spans: Vec<_> = r.tokens.spans.iter().filter(|s| s.is_action).collect();
            if spans.len() != st.len() {
                return Err(AgentError::Invalid(format!(
                    "validation rollout {}: {} actions, {} truths",
                    r.trajectory.id,
                    spans.len(),
                    st.len()
                )));
            }
            for (span, s) in spans.iter().zip(st) {
                let ratio: f64 = r
                    .tokens
                    .action_targets(span)
                    .map(|p| (r.logprob[p] - lp[p]) as f64)
                    .sum();
                to_ref += ratio;
                to_oracle += ratio - s.advantage / self.beta;
                steps += 1;
            }
        }
        let n = steps.max(1) as f64;
        Ok(KlMeasurement {
            kl_to_oracle: to_oracle / n,
            kl_to_reference: to_ref / n,
            success: rollouts.iter().filter(|r| r.reward > 0.0).count() as f64
                / rollouts.len().max(1) as f64,
            steps,
        })
    }
}
