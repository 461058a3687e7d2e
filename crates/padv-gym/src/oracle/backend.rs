//! The oracle as a [`LogprobBackend`]: teacher-forced log-probs of `π_o` for any gym
//! trajectory, so the oracle's rollouts are scored by the same pipeline (records, caches,
//! evaluations) as a checkpoint's.
//!
//! From the ids alone it recovers the conversation (the gym template's turns), the map (the
//! task message, matched against the maps it was given), the state before each action (the
//! previous observation's position and moves left) and each action's decision point; it
//! prefills the reference, probes every decision point, and answers each target with the
//! tilted distribution on the move line's trie and the reference's own elsewhere — the
//! distribution the oracle samples from ([`super::player`]). Distribution statistics
//! (entropy, top-20 mean, vocabulary mean) are those of that same distribution.

use std::collections::HashMap;

use padv_core::{BackendError, LogprobBackend, PositionLogprobs, ScoreRequest, StatsRequest};
use padv_engine::decoder::DecoderModel;
use padv_engine::logprobs::row_stats;

use super::prefilled::Prefilled;
use super::probe::probe_sequences;
use super::projection::MapTruth;
use super::trie::{DecisionProbe, MoveTrie};
use crate::lake::{Action, Lake, State};
use crate::protocol::{parse_position, task_message, ActionStyle};
use crate::tokenizer::{GymTokenizer, ASSISTANT_ID, BOS_ID, END_ID, PAD_ID, USER_ID};

/// One turn of a rendered gym conversation: role header id and content `[start, end)`;
/// the end-of-turn token sits at `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Turn {
    role: u32,
    start: usize,
    end: usize,
}

/// The turns of `ids` (`<|bos|>` then `<|role|>content<|end|>` repeated).
fn turns(ids: &[u32]) -> Result<Vec<Turn>, String> {
    if ids.first() != Some(&BOS_ID) {
        return Err("the sequence does not start with <|bos|>".into());
    }
    let mut out = Vec::new();
    let mut i = 1;
    while i < ids.len() {
        let role = ids[i];
        if role != USER_ID && role != ASSISTANT_ID {
            return Err(format!(
                "token {i}: expected a user or assistant header, got id {role}"
            ));
        }
        let start = i + 1;
        let Some(len) = ids[start..].iter().position(|&t| t == END_ID) else {
            return Err(format!("turn at token {i} has no end-of-turn"));
        };
        out.push(Turn {
            role,
            start,
            end: start + len,
        });
        i = start + len + 1;
    }
    Ok(out)
}

/// One action of a scored sequence: its tokens `[start, end]` (end-of-turn included), its
/// decision position (if any) and state.
struct ActionAt {
    start: usize,
    end: usize,
    decision: Option<usize>,
    state: State,
}

/// Scores gym trajectories under the oracle `π_o` built from `reference` and the soft values
/// of the maps it knows.
pub struct OracleBackend<'a> {
    reference: &'a DecoderModel,
    fingerprint: String,
    style: ActionStyle,
    beta: f64,
    trie: MoveTrie,
    tok: GymTokenizer,
    /// Task message → (map, soft values).
    maps: HashMap<String, (Lake, &'a MapTruth)>,
    /// Sequences already prefilled and probed with the reference (the soft-truth pass).
    prefilled: Option<&'a Prefilled>,
}

impl<'a> OracleBackend<'a> {
    /// The oracle of `reference` (whose engine fingerprint is `reference_fingerprint`) over
    /// `lakes` with soft values `maps` (aligned) at `beta`, for `style` actions.
    pub fn new(
        reference: &'a DecoderModel,
        reference_fingerprint: &str,
        style: ActionStyle,
        beta: f64,
        lakes: &[Lake],
        maps: &[&'a MapTruth],
    ) -> Result<Self, String> {
        if lakes.len() != maps.len() {
            return Err(format!(
                "{} maps but {} soft tables",
                lakes.len(),
                maps.len()
            ));
        }
        // The fingerprint covers everything the numbers depend on: the reference's weights,
        // β, the style and every projected probability (which fixes the soft values).
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for (lake, m) in lakes.iter().zip(maps) {
            h.update(task_message(lake).as_bytes());
            let mut states: Vec<(&State, &[f64; 5])> = m.reference.iter().collect();
            states.sort_by_key(|(s, _)| (s.t, s.pos));
            for (s, p) in states {
                h.update(&(s.t as u64).to_le_bytes());
                h.update(&(s.pos as u64).to_le_bytes());
                for x in p {
                    h.update(&x.to_le_bytes());
                }
            }
        }
        let fingerprint = format!(
            "gym-oracle:{reference_fingerprint}:beta={beta}:style={style}:maps={:016x}",
            h.digest()
        );
        let map = lakes
            .iter()
            .zip(maps)
            .map(|(l, m)| (task_message(l), (l.clone(), *m)))
            .collect();
        Ok(OracleBackend {
            reference,
            fingerprint,
            style,
            beta,
            trie: MoveTrie::new(),
            tok: GymTokenizer::new(),
            maps: map,
            prefilled: None,
        })
    }

    /// Answers sequences in `prefilled` from its logits and probes (made with the same
    /// reference) instead of running the reference again.
    pub fn with_prefilled(mut self, prefilled: &'a Prefilled) -> Self {
        self.prefilled = Some(prefilled);
        self
    }

    /// The actions of `ids` with their states and decision points, and the map's table.
    fn actions(&self, ids: &[u32]) -> Result<(Vec<ActionAt>, &'a MapTruth), String> {
        let turns = turns(ids)?;
        let task = turns
            .first()
            .filter(|t| t.role == USER_ID)
            .ok_or("no task message")?;
        let text = self
            .tok
            .decode(&ids[task.start..task.end])
            .map_err(|e| e.to_string())?;
        let (lake, map) = self
            .maps
            .get(&text)
            .ok_or("the task message is not one of the oracle's maps")?;
        let newline = self.tok.encode("\n").map_err(|e| e.to_string())?[0];
        let mut state = lake.initial();
        let mut out = Vec::new();
        for t in &turns[1..] {
            if t.role == ASSISTANT_ID {
                let content = &ids[t.start..t.end];
                let decision = match self.style {
                    ActionStyle::Terse => Some(t.start),
                    ActionStyle::Verbose => content
                        .iter()
                        .position(|&x| x == newline)
                        .map(|k| t.start + k + 1),
                };
                out.push(ActionAt {
                    start: t.start,
                    end: t.end,
                    decision,
                    state,
                });
            } else {
                let obs = self
                    .tok
                    .decode(&ids[t.start..t.end])
                    .map_err(|e| e.to_string())?;
                if let Some(s) = parse_position(lake, &obs) {
                    state = s;
                }
            }
        }
        Ok((out, map))
    }
}

impl LogprobBackend for OracleBackend<'_> {
    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn vocab_size(&self) -> usize {
        self.reference.config().vocab_size
    }

    fn score(
        &self,
        ids: &[u32],
        targets: &[usize],
        stats: StatsRequest,
    ) -> Result<PositionLogprobs, BackendError> {
        padv_core::score_one(self, ids, targets, stats)
    }

    fn score_batch(
        &self,
        requests: &[ScoreRequest<'_>],
        stats: StatsRequest,
    ) -> Vec<Result<PositionLogprobs, BackendError>> {
        let parsed: Vec<Result<(Vec<ActionAt>, &MapTruth), String>> =
            requests.iter().map(|r| self.actions(r.ids)).collect();
        let decisions = |i: usize| -> Vec<usize> {
            match &parsed[i] {
                Ok((acts, _)) => acts.iter().filter_map(|a| a.decision).collect(),
                Err(_) => Vec::new(),
            }
        };
        // Sequences an earlier pass prefilled and probed at exactly these decision points
        // take its numbers; the others are prefilled here.
        let reused: Vec<Option<(Vec<DecisionProbe>, &[f32])>> = (0..requests.len())
            .map(|i| {
                let seq = self.prefilled?.get(requests[i].ids)?;
                let probes = decisions(i)
                    .into_iter()
                    .map(|p| {
                        seq.probes
                            .iter()
                            .find(|(q, _)| *q == p)
                            .map(|(_, probe)| probe.clone())
                    })
                    .collect::<Option<Vec<_>>>()?;
                Some((probes, seq.logits.as_slice()))
            })
            .collect();
        let todo: Vec<usize> = (0..requests.len())
            .filter(|&i| parsed[i].is_ok() && reused[i].is_none())
            .collect();
        let seqs: Vec<&[u32]> = todo.iter().map(|&i| requests[i].ids).collect();
        let todo_decisions: Vec<Vec<usize>> = todo.iter().map(|&i| decisions(i)).collect();
        let probed = match probe_sequences(
            self.reference,
            &seqs,
            &todo_decisions,
            &self.trie,
            PAD_ID,
            true,
        ) {
            Ok(p) => p,
            Err(e) => {
                let msg = e.to_string();
                return requests
                    .iter()
                    .map(|_| Err(BackendError::Failed(msg.clone())))
                    .collect();
            }
        };
        let mut probed = probed.into_iter();
        let mut out = Vec::with_capacity(requests.len());
        for ((req, p), reuse) in requests.iter().zip(parsed.iter()).zip(reused) {
            let (acts, map) = match p {
                Ok(x) => x,
                Err(e) => {
                    out.push(Err(BackendError::Invalid(format!("oracle: {e}"))));
                    continue;
                }
            };
            let answer = match reuse {
                Some((probes, logits)) => self.answer(req, acts, map, probes, logits, stats),
                None => match probed.next() {
                    Some(sp) => self.answer(
                        req,
                        acts,
                        map,
                        sp.probes,
                        &sp.logits.unwrap_or_default(),
                        stats,
                    ),
                    None => Err(BackendError::Failed("oracle: probe missing".into())),
                },
            };
            out.push(answer);
        }
        out
    }
}

impl OracleBackend<'_> {
    fn answer(
        &self,
        req: &ScoreRequest<'_>,
        acts: &[ActionAt],
        map: &MapTruth,
        probes: Vec<DecisionProbe>,
        logits: &[f32],
        stats: StatsRequest,
    ) -> Result<PositionLogprobs, BackendError> {
        let want = stats.distribution_stats;
        let mut res = PositionLogprobs::with_capacity(req.targets.len(), stats);
        // Per action with a decision point: its probe and log Z.
        let mut tables: Vec<Option<(DecisionProbe, Vec<f64>, f64)>> = Vec::new();
        let mut probes = probes.into_iter();
        for a in acts {
            tables.push(match a.decision {
                Some(_) => {
                    let probe = probes
                        .next()
                        .ok_or_else(|| BackendError::Failed("oracle: probe missing".into()))?;
                    let q = map.soft.q(a.state).ok_or_else(|| {
                        BackendError::Invalid(format!("oracle: no soft values at {:?}", a.state))
                    })?;
                    let lz = probe.log_z(&self.trie, &q, self.beta);
                    Some((probe, lz, q[Action::Invalid.index()] / self.beta))
                }
                None => None,
            });
        }
        let mut scratch = Vec::new();
        for &t in req.targets {
            if t == 0 || t >= req.ids.len() {
                return Err(BackendError::Invalid(format!("target {t} out of range")));
            }
            let token = req.ids[t] as usize;
            // The oracle's distribution at t: tilted on the move-line trie, else the
            // reference's.
            let mut tilted: Option<Vec<f64>> = None;
            if let Some((k, a)) = acts
                .iter()
                .enumerate()
                .find(|(_, a)| a.start <= t && t <= a.end)
            {
                if let (Some(d), Some((probe, lz, qi))) = (a.decision, &tables[k]) {
                    if t >= d {
                        let mut node = Some(0);
                        for &id in &req.ids[d..t] {
                            node = node.and_then(|n| self.trie.child(n, id));
                        }
                        if let Some(n) = node.filter(|&n| self.trie.is_internal(n)) {
                            tilted = Some(probe.tilted(&self.trie, n, lz, *qi));
                        }
                    }
                }
            }
            let vocab = self.reference.config().vocab_size;
            let row: Vec<f32> = match &tilted {
                Some(d) => d.iter().map(|&x| x as f32).collect(),
                None => logits
                    .get((t - 1) * vocab..t * vocab)
                    .map(<[f32]>::to_vec)
                    .ok_or_else(|| BackendError::Failed(format!("no logits before {t}")))?,
            };
            let r = row_stats(&row, token, None, want, &mut scratch);
            let lp = match &tilted {
                Some(d) => d[token] as f32,
                None => r.logprob,
            };
            res.push(lp, r.topk_mean, r.entropy, r.vocab_mean);
        }
        Ok(res)
    }
}
