//! The reference LM projected onto the lake's states: the soft ground truth needs
//! `π_ref(a | t, pos)`, but the LM conditions on the whole conversation. The projection
//! measures it after one **canonical history** per reachable state:
//!
//! - states are visited in time order from the start; a state's canonical history is its
//!   parent's plus one step. The parent is a state at the previous time that can reach it:
//!   the first, in tile order, that has no other child yet (so that the histories form as
//!   few root-to-leaf paths as possible, which is what the measurement costs), else the
//!   first; by the first action in `up, down, left, right, invalid` order and the first
//!   outcome in `intended, slips` order that lands there;
//! - the action texts are what the expert writes: `go X` (or `wait` for the invalid action),
//!   and in the verbose style a canonical remark first (the expert's remark drawn with a seed
//!   fixed by the map and the state), with the observations the environment gives;
//! - at each state's decision point the reference's probability of each environment action
//!   is measured exactly ([`super::DecisionProbe::action_probs`]).
//!
//! Histories are laid out as root-to-leaf paths of that tree, each state measured on the
//! first path through it; every path is prefilled once, continuing from the cache of the
//! path it shares the longest prefix with (so each turn of the tree is computed about once),
//! and probed at all its decision points (`probe::probe_sequences`, crate-private).
//!
//! How much the reference's distribution differs between the canonical history and the
//! histories a player actually produces is measured separately
//! ([`super::truth::ProjectionGap`]).

use std::collections::HashMap;

use padv_core::eval::SplitMix64;
use padv_engine::decoder::DecoderModel;

use super::probe::probe_sequences;
use super::trie::MoveTrie;
use super::values::SoftLake;
use crate::agent::{AgentError, Result};
use crate::expert::{remark, INVALID_PHRASE};
use crate::lake::{Action, Lake, State, Status};
use crate::protocol::{action_phrase, task_message, ActionStyle};
use crate::tokenizer::{GymTokenizer, ASSISTANT_ID, BOS_ID, END_ID, PAD_ID};

/// The canonical remark of state `s` on `lake`: the expert's remark drawn with a seed fixed
/// by the map and the state.
pub fn canonical_remark(lake: &Lake, s: State) -> String {
    let seed = lake.seed() ^ ((s.pos as u64) << 40) ^ ((s.t as u64) << 20) ^ 0xC0FFEE;
    remark(lake, s, &mut SplitMix64::new(seed))
}

/// The move line of action `a` (`go X`, or the expert's invalid phrase).
pub(crate) fn move_line(a: Action) -> &'static str {
    match a {
        Action::Move(m) => action_phrase(m),
        Action::Invalid => INVALID_PHRASE,
    }
}

/// The canonical action text of `a` in state `s`.
pub fn canonical_action_text(lake: &Lake, s: State, a: Action, style: ActionStyle) -> String {
    match style {
        ActionStyle::Terse => move_line(a).to_string(),
        ActionStyle::Verbose => format!("{}\n{}", canonical_remark(lake, s), move_line(a)),
    }
}

/// One map's projected reference and the soft values it gives.
#[derive(Debug, Clone)]
pub struct MapTruth {
    /// The soft values at the pair's β relative to the projected reference.
    pub soft: SoftLake,
    /// `π̂_ref(·|s)` per running state reachable from the start, in [`Action::ALL`] order.
    pub reference: HashMap<State, [f64; 5]>,
}

impl MapTruth {
    /// Solves `lake` with a projected reference.
    pub fn new(lake: &Lake, beta: f64, reference: HashMap<State, [f64; 5]>) -> Result<Self> {
        let soft = SoftLake::solve(lake, beta, |s| reference.get(&s).map(|p| p.map(f64::ln)))
            .map_err(|e| AgentError::Invalid(format!("map {:x}: soft values: {e}", lake.seed())))?;
        Ok(MapTruth { soft, reference })
    }
}

/// Counts of a projection run.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct ProjectionCost {
    /// Maps projected.
    pub maps: usize,
    /// States measured (canonical histories).
    pub states: usize,
    /// Root-to-leaf paths prefilled.
    pub paths: usize,
    /// Tokens of the canonical histories (the paths' lengths, summed).
    pub tokens: usize,
    /// Of those, the tokens prefilled: a path that shares a prefix with another continues
    /// from its cache (`probe::probe_sequences`, crate-private).
    pub computed_tokens: usize,
}

impl ProjectionCost {
    /// Adds another run's counts (the demo projects its maps in two halves).
    pub fn add(&mut self, other: &ProjectionCost) {
        self.maps += other.maps;
        self.states += other.states;
        self.paths += other.paths;
        self.tokens += other.tokens;
        self.computed_tokens += other.computed_tokens;
    }
}

/// A node of the canonical-history tree.
struct CNode {
    state: State,
    parent: Option<usize>,
    /// The action text that led here from the parent, and the observation it gave.
    turn: Option<(Action, String)>,
    has_child: bool,
}

/// The canonical-history tree of `lake`, nodes in time order.
fn canonical_tree(lake: &Lake) -> Vec<CNode> {
    let mut nodes = vec![CNode {
        state: lake.initial(),
        parent: None,
        turn: None,
        has_child: false,
    }];
    let mut seen: HashMap<State, usize> = HashMap::from([(lake.initial(), 0)]);
    let mut level = vec![0usize];
    for _ in 0..lake.config().max_steps {
        let mut next_level = Vec::new();
        // Every way a state of this level reaches a new running state, in canonical order.
        let mut candidates = Vec::new();
        for &i in &level {
            let s = nodes[i].state;
            for a in Action::ALL {
                for (step, _) in lake.step_branches(s, a) {
                    let n = step.state;
                    if lake.status(n) == Status::Running && !seen.contains_key(&n) {
                        candidates.push((i, a, step));
                    }
                }
            }
        }
        // Two passes: first only parents without a child yet (each path goes on as far as
        // it can, so the histories form few root-to-leaf paths), then any parent.
        for free_parents_only in [true, false] {
            for (i, a, step) in &candidates {
                let n = step.state;
                if seen.contains_key(&n) || (free_parents_only && nodes[*i].has_child) {
                    continue;
                }
                nodes.push(CNode {
                    state: n,
                    parent: Some(*i),
                    turn: Some((*a, step.observation.clone())),
                    has_child: false,
                });
                nodes[*i].has_child = true;
                seen.insert(n, nodes.len() - 1);
                next_level.push(nodes.len() - 1);
            }
        }
        // Tile order within a time step (the order the module docs promise).
        next_level.sort_by_key(|&i| nodes[i].state.pos);
        level = next_level;
    }
    nodes
}

/// One path's ids and, per node on it, the decision position.
fn path_ids(
    lake: &Lake,
    style: ActionStyle,
    nodes: &[CNode],
    chain: &[usize],
    tok: &GymTokenizer,
) -> Result<(Vec<u32>, Vec<usize>)> {
    let enc = |t: &str| tok.encode(t).map_err(AgentError::from);
    let mut ids = vec![BOS_ID];
    ids.extend(tok.turn("user", &task_message(lake))?);
    let mut decisions = Vec::with_capacity(chain.len());
    for (j, &i) in chain.iter().enumerate() {
        let s = nodes[i].state;
        ids.push(ASSISTANT_ID);
        if style == ActionStyle::Verbose {
            ids.extend(enc(&canonical_remark(lake, s))?);
            ids.extend(enc("\n")?);
        }
        decisions.push(ids.len());
        let Some(&next) = chain.get(j + 1) else { break };
        let Some((a, obs)) = &nodes[next].turn else {
            return Err(AgentError::Invalid("a non-root node without a turn".into()));
        };
        ids.extend(enc(move_line(*a))?);
        ids.push(END_ID);
        ids.extend(tok.turn("user", obs)?);
    }
    Ok((ids, decisions))
}

/// Projects `model` (the reference) onto every reachable state of each lake and solves
/// the soft values at `beta`.
pub fn project(
    model: &DecoderModel,
    lakes: &[Lake],
    style: ActionStyle,
    beta: f64,
    trie: &MoveTrie,
) -> Result<(Vec<MapTruth>, ProjectionCost)> {
    let tok = GymTokenizer::new();
    let mut seqs: Vec<Vec<u32>> = Vec::new();
    let mut decisions: Vec<Vec<usize>> = Vec::new();
    // Per sequence: (map, the state of each decision).
    let mut owners: Vec<(usize, Vec<State>)> = Vec::new();
    let mut cost = ProjectionCost {
        maps: lakes.len(),
        ..ProjectionCost::default()
    };
    for (m, lake) in lakes.iter().enumerate() {
        let nodes = canonical_tree(lake);
        let mut measured = vec![false; nodes.len()];
        for leaf in (0..nodes.len()).filter(|&i| !nodes[i].has_child) {
            let mut chain = vec![leaf];
            while let Some(p) = nodes[*chain.last().unwrap_or(&0)].parent {
                chain.push(p);
            }
            chain.reverse();
            let (ids, dec) = path_ids(lake, style, &nodes, &chain, &tok)?;
            // Measure each state on the first path through it.
            let (mut keep, mut states) = (Vec::new(), Vec::new());
            for (&i, &p) in chain.iter().zip(&dec) {
                if !measured[i] {
                    measured[i] = true;
                    keep.push(p);
                    states.push(nodes[i].state);
                }
            }
            cost.tokens += ids.len();
            seqs.push(ids);
            decisions.push(keep);
            owners.push((m, states));
        }
        cost.states += nodes.len();
    }
    cost.paths = seqs.len();
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    let probed = probe_sequences(model, &refs, &decisions, trie, PAD_ID, false)?;
    let mut reference: Vec<HashMap<State, [f64; 5]>> = vec![HashMap::new(); lakes.len()];
    cost.computed_tokens = probed.iter().map(|p| p.computed).sum();
    for ((m, states), sp) in owners.iter().zip(probed) {
        for (s, probe) in states.iter().zip(&sp.probes) {
            reference[*m].insert(*s, probe.action_probs(trie));
        }
    }
    let maps = lakes
        .iter()
        .zip(reference)
        .map(|(lake, r)| MapTruth::new(lake, beta, r))
        .collect::<Result<Vec<_>>>()?;
    Ok((maps, cost))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::LakeConfig;

    /// Every running state reachable from the start gets exactly one canonical history,
    /// which reaches it: replaying the recorded turns lands there.
    #[test]
    fn canonical_histories_cover_the_reachable_states() {
        let lake = Lake::generate(&LakeConfig::default(), 7).unwrap();
        let nodes = canonical_tree(&lake);
        let mut reach = std::collections::HashSet::from([lake.initial()]);
        let mut frontier = vec![lake.initial()];
        while let Some(s) = frontier.pop() {
            for a in Action::ALL {
                for (n, _) in lake.outcomes(s, a) {
                    if lake.status(n) == Status::Running && reach.insert(n) {
                        frontier.push(n);
                    }
                }
            }
        }
        assert_eq!(nodes.len(), reach.len());
        for (i, node) in nodes.iter().enumerate() {
            assert!(reach.contains(&node.state));
            if let (Some(p), Some((a, obs))) = (node.parent, &node.turn) {
                let from = nodes[p].state;
                assert!(p < i && from.t + 1 == node.state.t);
                let branch = lake
                    .step_branches(from, *a)
                    .into_iter()
                    .find(|(st, _)| st.state == node.state)
                    .expect("the parent reaches the node");
                assert_eq!(&branch.0.observation, obs);
            }
        }
    }
}
