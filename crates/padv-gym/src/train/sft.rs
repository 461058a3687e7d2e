//! Supervised fine-tuning of the reference on demonstrations of the imperfect expert:
//! next-token cross-entropy on action tokens only (the end-of-turn marker included, so the
//! model learns to stop), right-padded micro-batches, AdamW with gradient clipping.

use std::time::Instant;

use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use padv_core::eval::SplitMix64;
use padv_core::Trajectory;
use padv_engine::tokenize::Segment;
use serde::{Deserialize, Serialize};

use super::batch::{clip_grad_norm, parallel_passes, sorted_vars, sum_passes, weighted_nll_pass};
use super::log::{LogEntry, TrainLog};
use crate::agent::{ctx, Agent, Result};
use crate::lake::{Lake, State};
use crate::protocol::{parse_action, task_message, ActionStyle};
use crate::sample::message;

/// SFT hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SftConfig {
    /// Expert episodes (one per training map).
    pub episodes: usize,
    /// Optimiser steps.
    pub steps: usize,
    /// Sequences per step.
    pub batch: usize,
    /// Sequences per forward/backward pass (memory bound).
    pub micro_batch: usize,
    /// Peak learning rate (linear warm-up over the first 5% of steps, cosine decay to 10%).
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Global gradient-norm clip.
    pub clip: f64,
    /// Start from the reference of this earlier training output instead of a fresh
    /// initialisation (continued SFT; its manifest's seed, map family, style and model shape
    /// must equal this run's). Recorded as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<String>,
}

impl Default for SftConfig {
    fn default() -> Self {
        SftConfig {
            episodes: 1000,
            steps: 250,
            batch: 16,
            micro_batch: 8,
            lr: 3e-3,
            weight_decay: 0.01,
            clip: 1.0,
            init_from: None,
        }
    }
}

/// Warm-up then cosine decay to 10% of `peak`.
pub fn lr_at(step: usize, steps: usize, peak: f64) -> f64 {
    let warm = (steps / 20).max(1);
    if step < warm {
        return peak * (step + 1) as f64 / warm as f64;
    }
    let p = (step - warm) as f64 / (steps - warm).max(1) as f64;
    peak * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()))
}

/// Plays one episode with `policy` choosing the action text for a state; returns the chat
/// trajectory (task, then alternating action / observation).
pub fn play_scripted(
    lake: &Lake,
    style: ActionStyle,
    id: String,
    task_id: String,
    rng: &mut SplitMix64,
    mut policy: impl FnMut(&Lake, State, &mut SplitMix64) -> String,
) -> Trajectory {
    let mut traj = Trajectory {
        id,
        task_id,
        messages: vec![message("user", task_message(lake), false)],
        reward: None,
        mistake_step: None,
        mistake_agent: None,
        action_text: Default::default(),
    };
    let mut s = lake.initial();
    let mut reward = 0.0;
    loop {
        let text = policy(lake, s, rng);
        let step = lake.step(s, parse_action(&text, style), rng);
        reward += step.reward;
        traj.messages.push(message("assistant", text, true));
        traj.messages
            .push(message("user", step.observation.clone(), false));
        s = step.state;
        if step.done() {
            break;
        }
    }
    traj.reward = Some(reward);
    traj
}

/// Per-position loss weights: 1 on every action target of `t`.
pub fn action_weights(t: &Segment) -> Vec<f32> {
    let mut w = vec![0f32; t.ids.len()];
    for span in t.spans.iter().filter(|s| s.is_action) {
        for p in t.action_targets(span) {
            w[p] = 1.0;
        }
    }
    w
}

/// Fine-tunes `agent` on `demos` (tokenised by the scorer's chat tokenisation).
pub fn sft(
    agent: &Agent,
    demos: &[Segment],
    cfg: &SftConfig,
    seed: u64,
    pad: u32,
    log: &mut TrainLog,
    started: Instant,
) -> Result<()> {
    if demos.is_empty() || cfg.batch == 0 || cfg.micro_batch == 0 {
        return Err(crate::agent::AgentError::Invalid(
            "SFT needs demonstrations and positive batch sizes".into(),
        ));
    }
    let model = agent.trainable_model()?;
    let vars = sorted_vars(&agent.varmap)?;
    let mut opt = AdamW::new(
        vars.clone(),
        ParamsAdamW {
            lr: cfg.lr,
            weight_decay: cfg.weight_decay,
            ..Default::default()
        },
    )
    .map_err(ctx("AdamW"))?;
    let weights: Vec<Vec<f32>> = demos.iter().map(action_weights).collect();
    let mut rng = SplitMix64::new(seed);
    let mut order: Vec<usize> = (0..demos.len()).collect();
    rng.shuffle(&mut order);
    let mut cursor = 0;
    for step in 0..cfg.steps {
        let t0 = Instant::now();
        let mut picked = Vec::with_capacity(cfg.batch);
        while picked.len() < cfg.batch {
            if cursor == order.len() {
                rng.shuffle(&mut order);
                cursor = 0;
            }
            picked.push(order[cursor]);
            cursor += 1;
        }
        let n_targets: f32 = picked.iter().map(|&i| weights[i].iter().sum::<f32>()).sum();
        let chunks: Vec<&[usize]> = picked.chunks(cfg.micro_batch).collect();
        let passes = parallel_passes(&chunks, |chunk| {
            let seqs: Vec<&[u32]> = chunk.iter().map(|&i| demos[i].ids.as_slice()).collect();
            let w: Vec<Vec<f32>> = chunk.iter().map(|&i| weights[i].clone()).collect();
            weighted_nll_pass(
                &model,
                &vars,
                &seqs,
                &w,
                pad,
                n_targets.max(1.0) as f64,
                "SFT",
            )
        })?;
        let (grads, loss_sum, tokens) = sum_passes(passes, &vars)?;
        let Some(mut grads) = grads else { continue };
        let norm = clip_grad_norm(&mut grads, &vars, cfg.clip)?;
        opt.set_learning_rate(lr_at(step, cfg.steps, cfg.lr));
        opt.step(&grads).map_err(ctx("SFT optimiser step"))?;
        log.push(LogEntry {
            phase: "sft".into(),
            step: step + 1,
            loss: loss_sum,
            grad_norm: norm,
            success_rate: None,
            mean_kl: None,
            objective: None,
            tokens_per_s: tokens as f64 / t0.elapsed().as_secs_f64().max(1e-9),
            lr: None,
            validation: None,
            elapsed_s: started.elapsed().as_secs_f64(),
        })?;
    }
    Ok(())
}
