//! The soft ground truth of every step a player took: the reference's exact distribution
//! over the environment's actions at that step's own history (its decision probe), the
//! soft value `V_h = β·log Σ_a π_ref(a|h)·e^{Q(s,a)/β}` of that history, and the soft
//! advantage of the action taken, `A_h = Q(s, a) − V_h` — exactly what
//! `β·log π*/π_ref` of the optimal policy is at that history (with the continuation values
//! `Q` of the projected problem). Also the projected state-level `A(s, a) = Q − V(s)` and how
//! far the history's reference is from the projection ([`ProjectionGap`]).

use padv_engine::decoder::DecoderModel;
use serde::{Deserialize, Serialize};

use super::prefilled::{Prefilled, PrefilledSeq};
use super::probe::probe_sequences;
use super::projection::MapTruth;
use super::trie::MoveTrie;
use crate::agent::{AgentError, Result};
use crate::lake::{Action, State};
use crate::sample::{Rollout, Sampler};

/// Soft truth of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSoft {
    /// The state the action was taken in.
    pub state: State,
    /// The action as the environment parsed it.
    pub action: Action,
    /// Soft `Q(s, ·)` in `up, down, left, right, invalid` order.
    pub q: [f64; 5],
    /// `π_ref(·|h)` at this step's history (the projection's when `exact` is false).
    pub reference: [f64; 5],
    /// `V_h`.
    pub v_history: f64,
    /// `A_h = Q(s, a) − V_h`: the soft advantage at this history.
    pub advantage: f64,
    /// `V(s)` of the projected problem.
    pub v_state: f64,
    /// `A(s, a) = Q(s, a) − V(s)`.
    pub advantage_state: f64,
    /// Whether the step had a decision point to probe. A verbose action cut before its
    /// remark line ended has none: its remark determines the action, so `reference` is that
    /// action with probability 1, `V_h = Q(s, a)` and `A_h = 0` (the state-level
    /// `advantage_state` and the hard truth still see the invalid action), and the
    /// projection-gap measure skips it.
    pub exact: bool,
}

/// The token position of each action's decision point in a rollout, `None` for an action
/// without one.
pub(crate) fn decision_positions(r: &Rollout, sampler: &Sampler) -> Vec<Option<usize>> {
    r.tokens
        .spans
        .iter()
        .filter(|s| s.is_action)
        .map(|span| {
            let mut targets = r.tokens.action_targets(span);
            let start = targets.start;
            targets.find(|&p| sampler.at_decision_point(&r.tokens.ids[start..p]))
        })
        .collect()
}

/// The soft truth of every step of every rollout; `maps[i]` is rollout `i`'s map.
pub fn rollout_truth(
    reference: &DecoderModel,
    rollouts: &[Rollout],
    maps: &[&MapTruth],
    sampler: &Sampler,
    trie: &MoveTrie,
) -> Result<Vec<Vec<StepSoft>>> {
    Ok(soft_truth(reference, rollouts, maps, sampler, trie, false)?.0)
}

/// [`rollout_truth`], also keeping what the pass computed (the reference's logits over every
/// rollout and its probes) for the scoring pipeline ([`super::PrefilledBackend`],
/// [`super::OracleBackend::with_prefilled`]).
pub fn rollout_truth_prefilled(
    reference: &DecoderModel,
    rollouts: &[Rollout],
    maps: &[&MapTruth],
    sampler: &Sampler,
    trie: &MoveTrie,
) -> Result<(Vec<Vec<StepSoft>>, Prefilled)> {
    let (soft, kept) = soft_truth(reference, rollouts, maps, sampler, trie, true)?;
    Ok((soft, kept.unwrap_or_else(|| Prefilled::new(0))))
}

fn soft_truth(
    reference: &DecoderModel,
    rollouts: &[Rollout],
    maps: &[&MapTruth],
    sampler: &Sampler,
    trie: &MoveTrie,
    keep: bool,
) -> Result<(Vec<Vec<StepSoft>>, Option<Prefilled>)> {
    if rollouts.len() != maps.len() {
        return Err(AgentError::Invalid(format!(
            "{} rollouts but {} maps",
            rollouts.len(),
            maps.len()
        )));
    }
    let decisions: Vec<Vec<Option<usize>>> = rollouts
        .iter()
        .map(|r| decision_positions(r, sampler))
        .collect();
    let seqs: Vec<&[u32]> = rollouts.iter().map(|r| r.tokens.ids.as_slice()).collect();
    let wanted: Vec<Vec<usize>> = decisions
        .iter()
        .map(|d| d.iter().flatten().copied().collect())
        .collect();
    let probed = probe_sequences(reference, &seqs, &wanted, trie, sampler.pad_id(), keep)?;
    let beta = maps.first().map_or(1.0, |m| m.soft.beta());
    let mut out = Vec::with_capacity(rollouts.len());
    let mut kept = keep.then(|| Prefilled::new(reference.config().vocab_size));
    for (((r, (dec, sp)), map), want) in rollouts
        .iter()
        .zip(decisions.iter().zip(probed))
        .zip(maps)
        .zip(&wanted)
    {
        let mut probes = sp.probes.iter();
        let mut steps = Vec::with_capacity(r.episode.turns.len());
        if dec.len() != r.episode.turns.len() {
            return Err(AgentError::Invalid(format!(
                "rollout {}: {} action spans but {} turns",
                r.trajectory.id,
                dec.len(),
                r.episode.turns.len()
            )));
        }
        for (turn, d) in r.episode.turns.iter().zip(dec) {
            let s = turn.step.from;
            let a = turn.step.action;
            let missing = || {
                AgentError::Invalid(format!(
                    "rollout {}: no soft values at {s:?}",
                    r.trajectory.id
                ))
            };
            let q = map.soft.q(s).ok_or_else(missing)?;
            let v_state = map.soft.v(s).ok_or_else(missing)?;
            // Every step's state is one the projection measured.
            map.reference.get(&s).ok_or_else(missing)?;
            let (reference, v_history, exact) = match d {
                Some(_) => {
                    let probe = probes.next().ok_or_else(missing)?;
                    let lz = probe.log_z(trie, &q, beta);
                    (probe.action_probs(trie), beta * lz[0], true)
                }
                // No decision point: the remark ran to the action's token limit, so the
                // remark alone determines the action (invalid). Given that history the
                // reference has one continuation, `V_h = Q(s, a)` and `A_h = 0` — the same
                // history-conditional truth as every other step, and what the oracle's
                // records carry (it tilts only at decision points).
                None => {
                    let mut only = [0.0; 5];
                    only[a.index()] = 1.0;
                    (only, q[a.index()], false)
                }
            };
            steps.push(StepSoft {
                state: s,
                action: a,
                q,
                reference,
                v_history,
                advantage: q[a.index()] - v_history,
                v_state,
                advantage_state: q[a.index()] - v_state,
                exact,
            });
        }
        out.push(steps);
        // Kept after use: the probes move into the store instead of being copied.
        if let (Some(kept), Some(logits)) = (kept.as_mut(), sp.logits) {
            let probes = want.iter().copied().zip(sp.probes).collect();
            kept.insert(r.tokens.ids.clone(), PrefilledSeq { logits, probes });
        }
    }
    Ok((out, kept))
}

/// How far the reference at the histories players produced is from the projection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ProjectionGap {
    /// Steps compared.
    pub steps: usize,
    /// Mean total-variation distance between `π_ref(·|h)` and `π̂_ref(·|s)`.
    pub mean_tv: f64,
    /// 90th percentile of that distance.
    pub p90_tv: f64,
    /// Mean `|V_h − V(s)|`.
    pub mean_abs_value_gap: f64,
    /// States reached by at least two different histories.
    pub states_with_several_histories: usize,
    /// Mean over those states of the largest total-variation distance between two of its
    /// histories' reference distributions.
    pub mean_within_state_tv: f64,
}

fn tv(a: &[f64; 5], b: &[f64; 5]) -> f64 {
    0.5 * a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>()
}

impl ProjectionGap {
    /// Compares every exact step with its map's projection; `map_of[i]` keys the map of
    /// `steps[i]`'s rollout (states of different maps are never pooled).
    pub fn measure(steps: &[Vec<StepSoft>], maps: &[&MapTruth], map_of: &[usize]) -> Self {
        let mut tvs = Vec::new();
        let mut gaps = Vec::new();
        let mut by_state: std::collections::HashMap<(usize, State), Vec<[f64; 5]>> =
            std::collections::HashMap::new();
        for ((rs, map), &m) in steps.iter().zip(maps).zip(map_of) {
            for s in rs.iter().filter(|s| s.exact) {
                if let Some(p) = map.reference.get(&s.state) {
                    tvs.push(tv(&s.reference, p));
                    gaps.push((s.v_history - s.v_state).abs());
                    by_state.entry((m, s.state)).or_default().push(s.reference);
                }
            }
        }
        let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
        let mut sorted = tvs.clone();
        sorted.sort_by(f64::total_cmp);
        let p90 = sorted
            .get(((sorted.len() as f64 * 0.9).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(f64::NAN);
        let within: Vec<f64> = by_state
            .values()
            .filter(|v| v.len() >= 2)
            .map(|v| {
                let mut worst: f64 = 0.0;
                for i in 0..v.len() {
                    for j in i + 1..v.len() {
                        worst = worst.max(tv(&v[i], &v[j]));
                    }
                }
                worst
            })
            .collect();
        ProjectionGap {
            steps: tvs.len(),
            mean_tv: mean(&tvs),
            p90_tv: p90,
            mean_abs_value_gap: mean(&gaps),
            states_with_several_histories: within.len(),
            mean_within_state_tv: mean(&within),
        }
    }
}
