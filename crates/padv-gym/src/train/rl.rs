//! On-policy RL from the reference: maximise E[R − β·Σ_t log π(a_t)/π_ref(a_t)] over the
//! sampled action tokens.
//!
//! The KL penalty is a per-token reward −β·k_t with k_t = log π(a_t|h_t) − log π_ref(a_t|h_t)
//! (both at the sampled token; its expectation under π is the token's KL), so each token's
//! return is the task reward plus the penalties from that token on (reward-to-go). The
//! task reward gets a leave-one-out baseline over the G rollouts of the same map:
//!
//! A_t = (R_i − mean_{j≠i} R_j) − β·Σ_{t'≥t} k_t'
//!
//! and the loss is REINFORCE, −Σ A_t·log π(a_t) / (number of sampled tokens), one AdamW step
//! per batch (strictly on-policy, so no importance ratio or clipping is needed). Its optimum
//! is the token-level soft-optimal policy π* ∝ π_ref·exp(Q_soft/β), for which
//! β·log π*/π_ref is the soft optimal advantage: the quantity PA estimates.

use std::time::Instant;

use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use padv_core::eval::SplitMix64;
use padv_engine::decoder::DecoderModel;
use serde::{Deserialize, Serialize};

use super::batch::{
    clip_grad_norm, pad_batch, parallel_passes, sorted_vars, sum_passes, token_logprobs,
    weighted_nll_pass,
};
use super::log::{LogEntry, TrainLog};
use crate::agent::{ctx, Agent, AgentError, Result};
use crate::lake::{Lake, LakeConfig};
use crate::sample::{rollout_batch, Job, Rollout, SampleConfig, Sampler};

/// RL hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RlConfig {
    /// Iterations (one batch of rollouts and one optimiser step each).
    pub iterations: usize,
    /// Distinct maps per iteration.
    pub maps_per_iteration: usize,
    /// Rollouts per map (G, for the leave-one-out baseline; at least 2).
    pub group: usize,
    /// Learning rate (constant after a short warm-up).
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Global gradient-norm clip.
    pub clip: f64,
    /// Longest action in tokens.
    pub max_action_tokens: usize,
    /// Sequences per forward/backward pass.
    pub micro_batch: usize,
    /// Learning-rate schedule after the warm-up (the first 10 % of iterations).
    #[serde(default)]
    pub schedule: LrSchedule,
    /// Keep as the policy the iteration closest to the optimum (lowest validation
    /// `KL(π_θ ‖ π_o)`) instead of the last one; needs the monitor.
    #[serde(default)]
    pub keep_best: bool,
    /// Stop after the iteration in which RL's wall time (monitor included) passes this many
    /// seconds, measuring the distance to the optimum there (`None`: run every iteration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_budget_s: Option<f64>,
}

/// How the RL learning rate evolves after the warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    /// The peak rate throughout.
    #[default]
    Constant,
    /// Cosine decay from the peak to 10 % of it at the last iteration.
    Cosine,
}

impl RlConfig {
    /// The learning rate of iteration `it` (1-based).
    pub fn lr_at(&self, it: usize) -> f64 {
        let warm = (self.iterations / 10).max(1);
        if it <= warm {
            return self.lr * it as f64 / warm as f64;
        }
        match self.schedule {
            LrSchedule::Constant => self.lr,
            LrSchedule::Cosine => {
                let p = (it - warm) as f64 / (self.iterations - warm).max(1) as f64;
                self.lr * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()))
            }
        }
    }
}

impl Default for RlConfig {
    fn default() -> Self {
        RlConfig {
            iterations: 50,
            maps_per_iteration: 6,
            group: 8,
            lr: 3e-4,
            weight_decay: 0.0,
            clip: 1.0,
            max_action_tokens: 16,
            micro_batch: 8,
            schedule: LrSchedule::Constant,
            keep_best: false,
            time_budget_s: None,
        }
    }
}

/// Seed of training map `m` of RL iteration `it` (SFT maps use iteration 0 with
/// `m` counting episodes). Training maps have bit 62 clear; held-out maps
/// ([`heldout_map_seed`]) have it set, so the two sets never overlap.
pub fn train_map_seed(seed: u64, it: usize, m: usize) -> u64 {
    let mut r = SplitMix64::new(seed ^ ((it as u64) << 32) ^ m as u64);
    r.next_u64() & !(1u64 << 62)
}

/// Seed of held-out map `i` (bit 62 set: never a training map; bit 61 clear: never a
/// validation map, [`super::monitor::validation_map_seed`]).
pub fn heldout_map_seed(seed: u64, i: usize) -> u64 {
    let mut r = SplitMix64::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i as u64);
    (r.next_u64() | (1u64 << 62)) & !(1u64 << 61)
}

/// Per-rollout statistics of one RL batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchStats {
    /// Fraction of rollouts with reward > 0.
    pub success_rate: f64,
    /// Mean over rollouts of Σ_t k_t.
    pub mean_kl: f64,
}

/// Reference log-probs `[B][T]` (position-indexed, 0 where undefined) of the rollouts.
pub fn reference_logprobs(
    reference: &DecoderModel,
    rollouts: &[Rollout],
    pad: u32,
    micro_batch: usize,
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(rollouts.len());
    for chunk in rollouts.chunks(micro_batch.max(1)) {
        let seqs: Vec<&[u32]> = chunk.iter().map(|r| r.tokens.ids.as_slice()).collect();
        let (ids, _) = pad_batch(&seqs, pad)?;
        let lp = token_logprobs(reference, &ids)?
            .to_vec2::<f32>()
            .map_err(ctx("reference log-probs"))?;
        for (r, row) in chunk.iter().zip(lp) {
            let mut v = vec![0f32; r.tokens.ids.len()];
            for (p, slot) in v.iter_mut().enumerate().skip(1) {
                *slot = row[p - 1];
            }
            out.push(v);
        }
    }
    Ok(out)
}

/// Per-position advantages (0 on positions that are not trained) and batch statistics.
/// `group` consecutive rollouts share a map.
pub fn advantages(
    rollouts: &[Rollout],
    ref_lp: &[Vec<f32>],
    group: usize,
    beta: f64,
) -> (Vec<Vec<f32>>, BatchStats) {
    let mut adv = Vec::with_capacity(rollouts.len());
    let mut kl_total = 0.0;
    for (g, chunk) in rollouts.chunks(group).enumerate() {
        let total: f64 = chunk.iter().map(|r| r.reward).sum();
        for (k, r) in chunk.iter().enumerate() {
            let i = g * group + k;
            let base = if chunk.len() > 1 {
                (total - r.reward) / (chunk.len() - 1) as f64
            } else {
                0.0
            };
            let trained = |p: usize| r.sampled[p] && !r.forced[p];
            let n = r.tokens.ids.len();
            let mut a = vec![0f32; n];
            let mut kl_to_go = 0.0;
            for p in (0..n).rev() {
                if !trained(p) {
                    continue;
                }
                kl_to_go += (r.logprob[p] - ref_lp[i][p]) as f64;
                a[p] = ((r.reward - base) - beta * kl_to_go) as f32;
            }
            kl_total += kl_to_go;
            adv.push(a);
        }
    }
    let n = rollouts.len().max(1) as f64;
    let stats = BatchStats {
        success_rate: rollouts.iter().filter(|r| r.reward > 0.0).count() as f64 / n,
        mean_kl: kl_total / n,
    };
    (adv, stats)
}

/// Everything [`rl`] needs besides the configuration.
pub struct RlContext<'a> {
    /// The policy (initialised from the reference), trained in place.
    pub policy: &'a Agent,
    /// The frozen reference.
    pub reference: &'a DecoderModel,
    /// Sampling helper.
    pub sampler: &'a Sampler<'a>,
    /// Map distribution.
    pub lake: &'a LakeConfig,
    /// KL coefficient β.
    pub beta: f64,
    /// Master seed.
    pub seed: u64,
    /// The distance-to-optimum monitor (`None`: not measured).
    pub monitor: Option<&'a super::monitor::KlMonitor<'a>>,
}

/// Where RL ended up: the iteration kept as the policy and the measurements.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RlOutcome {
    /// The iteration whose weights are the policy (the last, or the closest to the
    /// optimum with `keep_best`).
    pub kept_iteration: usize,
    /// `(iteration, measurement)` of every monitor measurement (iteration 0 is the
    /// reference itself).
    pub validation: Vec<(usize, super::monitor::KlMeasurement)>,
    /// The last iteration run when the time budget ended RL early (`None`: it ran them all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<usize>,
}

/// Runs RL; `checkpoint(iteration, policy)` is called after every iteration listed in
/// `save_at`, and `keep(policy)` whenever the monitor finds a policy closer to the optimum
/// than every earlier one (with `keep_best`).
pub fn rl(
    cx: &RlContext,
    cfg: &RlConfig,
    save_at: &[usize],
    log: &mut TrainLog,
    started: Instant,
    mut checkpoint: impl FnMut(usize, &Agent) -> Result<()>,
    mut keep: impl FnMut(usize, &Agent) -> Result<()>,
) -> Result<RlOutcome> {
    if cfg.group < 2 || cfg.maps_per_iteration == 0 {
        return Err(AgentError::Invalid(
            "RL needs group >= 2 and at least one map per iteration".into(),
        ));
    }
    let model = cx.policy.trainable_model()?;
    let vars = sorted_vars(&cx.policy.varmap)?;
    let mut opt = AdamW::new(
        vars.clone(),
        ParamsAdamW {
            lr: cfg.lr,
            weight_decay: cfg.weight_decay,
            ..Default::default()
        },
    )
    .map_err(ctx("AdamW"))?;
    let pad = cx.sampler.pad_id();
    let sample_cfg = SampleConfig {
        temperature: 1.0,
        max_action_tokens: cfg.max_action_tokens,
    };
    let mut outcome = RlOutcome {
        kept_iteration: cfg.iterations,
        validation: Vec::new(),
        stopped_at: None,
    };
    let rl_started = Instant::now();
    let mut best = f64::INFINITY;
    // `end`: the last iteration this run will make (earlier than planned when the time
    // budget stops it), which the monitor always measures.
    let mut measure = |it: usize,
                       end: usize,
                       outcome: &mut RlOutcome|
     -> Result<Option<super::monitor::KlMeasurement>> {
        let Some(m) = cx.monitor.filter(|m| m.due(it, end)) else {
            return Ok(None);
        };
        let snapshot = cx.policy.inference_model()?;
        let k = m.measure(&snapshot, cfg.micro_batch)?;
        tracing::info!(
            "RL iteration {it}: KL to the oracle {:.4} nats/step, to the reference {:.4}, validation success {:.3}",
            k.kl_to_oracle,
            k.kl_to_reference,
            k.success
        );
        outcome.validation.push((it, k));
        if cfg.keep_best && k.kl_to_oracle < best {
            best = k.kl_to_oracle;
            outcome.kept_iteration = it;
            keep(it, cx.policy)?;
        }
        Ok(Some(k))
    };
    measure(0, cfg.iterations, &mut outcome)?;
    for it in 1..=cfg.iterations {
        let t0 = Instant::now();
        let lakes: Vec<(u64, Lake)> = (0..cfg.maps_per_iteration)
            .map(|m| {
                let s = train_map_seed(cx.seed, it, m);
                Lake::generate(cx.lake, s).map(|l| (s, l))
            })
            .collect::<std::result::Result<_, _>>()?;
        let mut seeds = SplitMix64::new(cx.seed ^ 0xA5A5_0000 ^ it as u64);
        let jobs: Vec<Job> = lakes
            .iter()
            .flat_map(|(s, lake)| (0..cfg.group).map(move |g| (s, lake, g)))
            .map(|(s, lake, g)| Job {
                lake,
                id: format!("rl{it}-{s:x}-{g}"),
                task_id: format!("{s:x}"),
                seed: seeds.next_u64(),
            })
            .collect();
        let sampling_model = cx.policy.inference_model()?;
        let rollouts = rollout_batch(&sampling_model, cx.sampler, &jobs, &sample_cfg)?;
        drop(sampling_model);
        let ref_lp = reference_logprobs(cx.reference, &rollouts, pad, cfg.micro_batch)?;
        let (adv, stats) = advantages(&rollouts, &ref_lp, cfg.group, cx.beta);
        let n_trained: usize = rollouts
            .iter()
            .map(|r| {
                r.sampled
                    .iter()
                    .zip(&r.forced)
                    .filter(|(s, f)| **s && !**f)
                    .count()
            })
            .sum();
        let mb = cfg.micro_batch.max(1);
        let chunks: Vec<(&[Rollout], &[Vec<f32>])> =
            rollouts.chunks(mb).zip(adv.chunks(mb)).collect();
        let passes = parallel_passes(&chunks, |&(chunk, a)| {
            let seqs: Vec<&[u32]> = chunk.iter().map(|r| r.tokens.ids.as_slice()).collect();
            weighted_nll_pass(&model, &vars, &seqs, a, pad, n_trained.max(1) as f64, "RL")
        })?;
        let (grads, loss_sum, tokens) = sum_passes(passes, &vars)?;
        let mut norm = 0.0;
        if let Some(mut grads) = grads {
            norm = clip_grad_norm(&mut grads, &vars, cfg.clip)?;
            opt.set_learning_rate(cfg.lr_at(it));
            opt.step(&grads).map_err(ctx("RL optimiser step"))?;
        }
        let mean_reward =
            rollouts.iter().map(|r| r.reward).sum::<f64>() / rollouts.len().max(1) as f64;
        let out_of_time = it < cfg.iterations
            && cfg
                .time_budget_s
                .is_some_and(|b| rl_started.elapsed().as_secs_f64() > b);
        let end = if out_of_time { it } else { cfg.iterations };
        let validation = measure(it, end, &mut outcome)?;
        log.push(LogEntry {
            phase: "rl".into(),
            step: it,
            loss: loss_sum,
            grad_norm: norm,
            success_rate: Some(stats.success_rate),
            mean_kl: Some(stats.mean_kl),
            objective: Some(mean_reward - cx.beta * stats.mean_kl),
            tokens_per_s: tokens as f64 / t0.elapsed().as_secs_f64().max(1e-9),
            lr: Some(cfg.lr_at(it)),
            validation,
            elapsed_s: started.elapsed().as_secs_f64(),
        })?;
        if save_at.contains(&it) {
            checkpoint(it, cx.policy)?;
        }
        if out_of_time {
            tracing::info!("RL time budget spent: stopping after iteration {it}");
            outcome.stopped_at = Some(it);
            if !cfg.keep_best {
                outcome.kept_iteration = it;
            }
            break;
        }
    }
    Ok(outcome)
}
