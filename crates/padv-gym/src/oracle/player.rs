//! The oracle as a player: `π_o(y|h) ∝ π_ref(y|h) · e^{Q(s, a(y))/β}`, sampled token by token
//! from the reference model with no training. Before its move line the oracle writes what
//! the reference writes (in the verbose style, the remark line); at the decision point it
//! probes the reference on the four move lines and from there samples the tilted
//! distribution of [`super::DecisionProbe::tilted`], so the action it executes is drawn from
//! `π_ref(a|h)·e^{A_h(a)/β}` and `β·log π_o/π_ref` of every action is exactly the soft
//! advantage `A_h` ([`OracleStep`] records both sides of that identity).
//!
//! Why the remark is not tilted: the verbose expert's remark does not depend on its move,
//! so a reference that learnt it well moves the same whatever it remarked; the oracle then
//! is the optimum. How much the reference's soft value at the decision point still varies
//! with the remark is measured by the demo (`V_h` across histories of one state).

use padv_core::eval::SplitMix64;
use padv_engine::decoder::{DecoderModel, KvCache};
use serde::Serialize;

use super::probe::probe_rows;
use super::projection::MapTruth;
use super::trie::{DecisionProbe, MoveTrie};
use crate::agent::{AgentError, Result};
use crate::lake::Action;
use crate::sample::{run_lockstep, Job, Rollout, Row, SampleConfig, Sampler, TokenChooser};

/// One action of the oracle: the two sides of its identity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OracleStep {
    /// `V_h`, the soft value at the decision point.
    pub v_history: f64,
    /// `A_h = Q(s, a) − V_h` of the action taken.
    pub advantage: f64,
    /// `β·Σ_t (log π_o − log π_ref)` over the action's tokens, as the oracle sampled them.
    pub beta_log_ratio: f64,
}

/// A decision in progress: the probe, its `log Z`, the node reached, the running log-ratio.
struct Active {
    probe: DecisionProbe,
    log_z: Vec<f64>,
    q: [f64; 5],
    node: Option<usize>,
    ratio: f64,
}

/// The oracle's [`TokenChooser`]; `maps[slot]` holds the soft values of job `slot`'s map.
pub(crate) struct OracleChooser<'a> {
    trie: &'a MoveTrie,
    beta: f64,
    maps: Vec<&'a MapTruth>,
    active: Vec<Option<Active>>,
    /// Per slot, per action with a decision point, in order.
    steps: Vec<Vec<OracleStep>>,
}

impl<'a> OracleChooser<'a> {
    pub(crate) fn new(trie: &'a MoveTrie, beta: f64, maps: Vec<&'a MapTruth>) -> Self {
        let n = maps.len();
        OracleChooser {
            trie,
            beta,
            maps,
            active: (0..n).map(|_| None).collect(),
            steps: vec![Vec::new(); n],
        }
    }
}

/// Samples an id from a log-distribution restricted to `allowed` (temperature 1).
fn sample_logdist(logp: &[f64], allowed: &[bool], rng: &mut SplitMix64) -> u32 {
    let w: Vec<f64> = logp
        .iter()
        .zip(allowed.iter().chain(std::iter::repeat(&false)))
        .map(|(&l, &ok)| if ok { l.exp() } else { 0.0 })
        .collect();
    let total: f64 = w.iter().sum();
    let mut u = rng.next_f64() * total;
    let mut pick = w.iter().rposition(|&x| x > 0.0).unwrap_or(0);
    for (i, &x) in w.iter().enumerate() {
        if u < x {
            pick = i;
            break;
        }
        u -= x;
    }
    pick as u32
}

impl TokenChooser for OracleChooser<'_> {
    fn prepare(
        &mut self,
        model: &DecoderModel,
        cache: &KvCache,
        sampler: &Sampler,
        rows: &[Row],
        choosing: &[(usize, usize)],
        logits: &[Vec<f32>],
    ) -> Result<()> {
        let due: Vec<(usize, usize)> = choosing
            .iter()
            .copied()
            .filter(|&(_, slot)| sampler.at_decision_point(&rows[slot].action))
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        let idx: Vec<usize> = due.iter().map(|&(i, _)| i).collect();
        let roots: Vec<&[f32]> = due.iter().map(|&(i, _)| logits[i].as_slice()).collect();
        let probes = probe_rows(model, cache, &idx, &roots, self.trie, sampler.pad_id())?;
        for (&(_, slot), probe) in due.iter().zip(probes) {
            let s = rows[slot].state;
            let q = self.maps[slot].soft.q(s).ok_or_else(|| {
                AgentError::Invalid(format!("oracle: no soft values at {s:?} of job {slot}"))
            })?;
            let log_z = probe.log_z(self.trie, &q, self.beta);
            self.active[slot] = Some(Active {
                probe,
                log_z,
                q,
                node: Some(0),
                ratio: 0.0,
            });
        }
        Ok(())
    }

    fn choose(
        &mut self,
        slot: usize,
        row: &mut Row,
        logits: &[f32],
        sampler: &Sampler,
        cfg: &SampleConfig,
    ) -> Result<(u32, f32, bool)> {
        let beta = self.beta;
        let trie = self.trie;
        let Some(act) = self.active[slot].as_mut() else {
            return Ok(sampler.next_action_token(logits, &row.action, cfg, &mut row.sample_rng));
        };
        let Some(n) = act.node else {
            // Off the trie: an invalid action whatever follows; the oracle writes what the
            // reference writes.
            let out = sampler.next_action_token(logits, &row.action, cfg, &mut row.sample_rng);
            if out.0 == sampler.end_id() {
                self.active[slot] = None;
            }
            return Ok(out);
        };
        let qi = act.q[Action::Invalid.index()] / beta;
        let tilted = act.probe.tilted(trie, n, &act.log_z, qi);
        let forced = row.action.len() >= cfg.max_action_tokens;
        let id = if forced {
            sampler.end_id()
        } else {
            sample_logdist(&tilted, sampler.mask(&row.action), &mut row.sample_rng)
        };
        act.ratio += tilted[id as usize] - act.probe.dist(n)[id as usize];
        let v = beta * act.log_z[0];
        let finished = |a: Action, act: &Active| OracleStep {
            v_history: v,
            advantage: act.q[a.index()] - v,
            beta_log_ratio: beta * act.ratio,
        };
        match trie.child(n, id) {
            Some(c) if trie.is_internal(c) => act.node = Some(c),
            Some(c) => {
                let m = trie.leaf(c).map_or(Action::Invalid, Action::Move);
                let step = finished(m, act);
                self.steps[slot].push(step);
                self.active[slot] = None;
            }
            None => {
                let step = finished(Action::Invalid, act);
                self.steps[slot].push(step);
                act.node = None;
                if id == sampler.end_id() {
                    self.active[slot] = None;
                }
            }
        }
        Ok((id, tilted[id as usize] as f32, forced))
    }
}

/// The oracle's rollouts of `jobs` (`maps[i]` the soft values of job `i`'s map) with the
/// reference model, and per rollout the identity of each of its actions.
pub fn oracle_rollouts(
    reference: &DecoderModel,
    sampler: &Sampler,
    jobs: &[Job],
    maps: &[&MapTruth],
    beta: f64,
    trie: &MoveTrie,
    cfg: &SampleConfig,
) -> Result<(Vec<Rollout>, Vec<Vec<OracleStep>>)> {
    if jobs.len() != maps.len() {
        return Err(AgentError::Invalid(format!(
            "{} jobs but {} maps",
            jobs.len(),
            maps.len()
        )));
    }
    if cfg.temperature != 1.0 {
        return Err(AgentError::Invalid(format!(
            "the oracle samples at temperature 1, got {}",
            cfg.temperature
        )));
    }
    let mut chooser = OracleChooser::new(trie, beta, maps.to_vec());
    let rollouts = run_lockstep(reference, sampler, jobs, cfg, &mut chooser)?;
    Ok((rollouts, chooser.steps))
}
