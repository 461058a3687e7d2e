//! Measuring [`DecisionProbe`]s with a model: the four move-line branches run from the
//! decision point's keys and values in one batched pass (`[4·rows, 8]`), either from rows of
//! a lockstep batch's cache (the oracle while it samples) or after prefilling whole
//! sequences (canonical histories, finished rollouts), grouped by decision position so that
//! each group is one pass.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use padv_engine::decoder::{DecoderModel, KvCache};

use super::trie::{DecisionProbe, MoveTrie};
use crate::agent::{ctx, AgentError, Result};
use crate::lake::Move;

/// Decision points probed per branch pass (bounds the copied cache rows).
const PROBE_ROWS: usize = 64;
/// Sequences prefilled per pass.
const PREFILL_ROWS: usize = 16;

/// Probes rows `rows` of `cache` (every row holds the same number of positions, its history
/// up to the decision point); `root_logits[i]` is row `rows[i]`'s next-token logits there.
pub(crate) fn probe_rows(
    model: &DecoderModel,
    cache: &KvCache,
    rows: &[usize],
    root_logits: &[&[f32]],
    trie: &MoveTrie,
    pad: u32,
) -> Result<Vec<DecisionProbe>> {
    if rows.len() != root_logits.len() {
        return Err(AgentError::Invalid(format!(
            "{} probe rows but {} root distributions",
            rows.len(),
            root_logits.len()
        )));
    }
    let width = Move::ALL
        .iter()
        .map(|&m| trie.branch(m).len() - 1)
        .max()
        .unwrap_or(1);
    let vocab = model.config().vocab_size;
    let mut out = Vec::with_capacity(rows.len());
    for (chunk, roots) in rows.chunks(PROBE_ROWS).zip(root_logits.chunks(PROBE_ROWS)) {
        let idx: Vec<usize> = chunk.iter().flat_map(|&r| [r; 4]).collect();
        let mut c = cache
            .select_rows(&idx)
            .map_err(ctx("copying decision-point rows"))?;
        let mut flat = Vec::with_capacity(idx.len() * width);
        for _ in chunk {
            for m in Move::ALL {
                let b = trie.branch(m);
                flat.extend_from_slice(&b[..b.len() - 1]);
                flat.resize(flat.len() + width + 1 - b.len(), pad);
            }
        }
        let offset = c.seq_len();
        let ids =
            Tensor::from_vec(flat, (idx.len(), width), &Device::Cpu).map_err(ctx("branch ids"))?;
        let hidden = model
            .forward(&ids, offset, &mut c)
            .map_err(ctx(format!("branch forward at {offset}")))?;
        let logits = model
            .logits(&hidden)
            .and_then(|l| l.reshape((idx.len(), width, vocab)))
            .and_then(|l| l.to_vec3::<f32>())
            .map_err(ctx("branch logits"))?;
        for (i, root) in roots.iter().enumerate() {
            let mut nodes: Vec<Option<Vec<f32>>> = vec![None; trie.len()];
            nodes[0] = Some(root.to_vec());
            for m in Move::ALL {
                let rowl = &logits[4 * i + m.index()];
                for (j, node) in trie.branch_nodes(m) {
                    if nodes[node].is_none() {
                        nodes[node] = Some(rowl[j].clone());
                    }
                }
            }
            out.push(DecisionProbe::from_logits(trie, nodes).map_err(AgentError::Invalid)?);
        }
    }
    Ok(out)
}

/// What [`probe_sequences`] measured on one sequence.
#[derive(Debug, Clone)]
pub(crate) struct SequenceProbes {
    /// One probe per requested decision position, in the given order.
    pub probes: Vec<DecisionProbe>,
    /// Next-token logits after each position (`logits[p]` predicts `ids[p + 1]`), when
    /// asked for.
    pub logits: Option<Vec<Vec<f32>>>,
}

/// Prefills each sequence with `model` and probes it at `decisions[i]` (positions of the
/// first move-line token, each in `1..=len`: the history is `ids[..p]`).
///
/// Sequences are prefilled `PREFILL_ROWS` at a time and their caches kept, then the decision
/// points of all sequences at one position are probed in one pass: the number of passes is
/// the number of distinct positions, not of sequences.
pub(crate) fn probe_sequences(
    model: &DecoderModel,
    seqs: &[&[u32]],
    decisions: &[Vec<usize>],
    trie: &MoveTrie,
    pad: u32,
    keep_logits: bool,
) -> Result<Vec<SequenceProbes>> {
    if seqs.len() != decisions.len() {
        return Err(AgentError::Invalid(format!(
            "{} sequences but {} decision lists",
            seqs.len(),
            decisions.len()
        )));
    }
    for (s, d) in seqs.iter().zip(decisions) {
        if let Some(&p) = d.iter().find(|&&p| p == 0 || p > s.len()) {
            return Err(AgentError::Invalid(format!(
                "decision position {p} outside a {}-token sequence",
                s.len()
            )));
        }
    }
    let vocab = model.config().vocab_size;
    // Sequences of similar length share a chunk (longest first), so that padding (which
    // every row of a chunk computes up to the chunk's longest sequence, at a cost quadratic
    // in length) stays small: on the demo's rollouts, input order padded 71 k tokens to
    // 124 k.
    let mut order: Vec<usize> = (0..seqs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(seqs[i].len()));
    // Where each sequence's row lies: (chunk, row in the chunk).
    let mut slot = vec![(0usize, 0usize); seqs.len()];
    for (k, &i) in order.iter().enumerate() {
        slot[i] = (k / PREFILL_ROWS, k % PREFILL_ROWS);
    }
    // Per chunk: its cache; per sequence: its logits (`logits[p]` predicts `ids[p + 1]`).
    let mut caches = Vec::new();
    let mut logits: Vec<Vec<Vec<f32>>> = vec![Vec::new(); seqs.len()];
    for chunk in order.chunks(PREFILL_ROWS) {
        let len = chunk.iter().map(|&i| seqs[i].len()).max().unwrap_or(0);
        if len == 0 {
            caches.push(None);
            continue;
        }
        let b = chunk.len();
        let mut flat = Vec::with_capacity(b * len);
        for &i in chunk {
            flat.extend_from_slice(seqs[i]);
            flat.resize(flat.len() + len - seqs[i].len(), pad);
        }
        let ids = Tensor::from_vec(flat, (b, len), &Device::Cpu).map_err(ctx("prefill ids"))?;
        let mut cache = model.new_cache();
        let hidden = model
            .forward(&ids, 0, &mut cache)
            .map_err(ctx("prefill forward"))?;
        let rows = model
            .logits(&hidden)
            .and_then(|l| l.reshape((b, len, vocab)))
            .and_then(|l| l.to_vec3::<f32>())
            .map_err(ctx("prefill logits"))?;
        for (&i, r) in chunk.iter().zip(rows) {
            logits[i] = r.into_iter().take(seqs[i].len()).collect();
        }
        caches.push(Some(cache));
    }
    // (sequence, index in its decision list) per decision position.
    let mut by_pos: BTreeMap<usize, Vec<(usize, usize)>> = BTreeMap::new();
    for (r, d) in decisions.iter().enumerate() {
        for (k, &p) in d.iter().enumerate() {
            by_pos.entry(p).or_default().push((r, k));
        }
    }
    let mut probes: Vec<Vec<Option<DecisionProbe>>> =
        decisions.iter().map(|d| vec![None; d.len()]).collect();
    for (p, group) in by_pos {
        // Gather the group's rows from each chunk's cache, cut to the decision position.
        let mut parts = Vec::new();
        let mut members_in_order = Vec::with_capacity(group.len());
        for (c, cache) in caches.iter().enumerate() {
            let Some(cache) = cache else { continue };
            let members: Vec<(usize, usize)> = group
                .iter()
                .copied()
                .filter(|&(r, _)| slot[r].0 == c)
                .collect();
            if members.is_empty() {
                continue;
            }
            let rows: Vec<usize> = members.iter().map(|&(r, _)| slot[r].1).collect();
            let mut part = cache
                .select_rows(&rows)
                .map_err(ctx("copying the group's rows"))?;
            part.truncate(p).map_err(ctx("cutting the cache"))?;
            parts.push(part);
            members_in_order.extend(members);
        }
        let stacked = KvCache::concat_rows(&parts).map_err(ctx("stacking decision rows"))?;
        let roots: Vec<&[f32]> = members_in_order
            .iter()
            .map(|&(r, _)| logits[r][p - 1].as_slice())
            .collect();
        let local: Vec<usize> = (0..members_in_order.len()).collect();
        let got = probe_rows(model, &stacked, &local, &roots, trie, pad)?;
        for (&(r, k), probe) in members_in_order.iter().zip(got) {
            probes[r][k] = Some(probe);
        }
    }
    let mut out = Vec::with_capacity(seqs.len());
    for (ps, rows) in probes.into_iter().zip(logits) {
        let probes: Vec<DecisionProbe> = ps.into_iter().flatten().collect();
        out.push(SequenceProbes {
            probes,
            logits: keep_logits.then_some(rows),
        });
    }
    Ok(out)
}
