//! Measuring [`DecisionProbe`]s with a model: the move-line branches run from the decision
//! point's keys and values in batched passes, either from rows of a lockstep batch's cache
//! (the oracle while it samples: all four branches, `[4·rows, 8]`) or after prefilling whole
//! sequences (canonical histories, finished rollouts: only the branches the sequence's own
//! continuation does not already give), grouped by the position they start from so that
//! each group is one pass.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use padv_engine::decoder::{DecoderModel, KvCache};

use super::trie::{DecisionProbe, MoveTrie};
use crate::agent::{ctx, AgentError, Result};
use crate::lake::Move;

/// Decision points probed per branch pass (bounds the copied cache rows; a pass after a
/// prefill holds up to four times as many branch rows).
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
    let mut out = Vec::with_capacity(rows.len());
    for (chunk, roots) in rows.chunks(PROBE_ROWS).zip(root_logits.chunks(PROBE_ROWS)) {
        let idx: Vec<usize> = chunk.iter().flat_map(|&r| [r; 4]).collect();
        let c = cache
            .select_rows(&idx)
            .map_err(ctx("copying decision-point rows"))?;
        let items: Vec<(Move, usize)> = chunk
            .iter()
            .flat_map(|_| Move::ALL.map(|m| (m, 0)))
            .collect();
        let mut got = branch_pass(model, c, &items, trie, pad)?.into_iter();
        for root in roots {
            let mut nodes: Vec<Option<Vec<f32>>> = vec![None; trie.len()];
            nodes[0] = Some(root.to_vec());
            for (node, l) in got.by_ref().take(4).flatten() {
                nodes[node].get_or_insert(l);
            }
            out.push(DecisionProbe::from_logits(trie, nodes).map_err(AgentError::Invalid)?);
        }
    }
    Ok(out)
}

/// What a move's line feeds after the decision point: its ids without the end-of-turn.
fn branch_input(trie: &MoveTrie, m: Move) -> &[u32] {
    let b = trie.branch(m);
    &b[..b.len() - 1]
}

/// The distributions one branch row gives: `(trie node, logits)` pairs.
type NodeLogits = Vec<(usize, Vec<f32>)>;

/// One batched branch pass. `cache` holds one row per item, all of the same length (the
/// decision point, plus the tokens of the line already written); item `(m, d)` feeds move
/// `m`'s line from its token `d`, padded to the longest feed. Returns per item the
/// distributions its outputs give, as `(trie node, logits)`: output `j` is the distribution
/// at the branch's node `d + j + 1`.
fn branch_pass(
    model: &DecoderModel,
    mut cache: KvCache,
    items: &[(Move, usize)],
    trie: &MoveTrie,
    pad: u32,
) -> Result<Vec<NodeLogits>> {
    let vocab = model.config().vocab_size;
    let width = items
        .iter()
        .map(|&(m, d)| branch_input(trie, m).len() - d)
        .max()
        .unwrap_or(1);
    let mut flat = Vec::with_capacity(items.len() * width);
    for &(m, d) in items {
        let feed = &branch_input(trie, m)[d..];
        flat.extend_from_slice(feed);
        flat.resize(flat.len() + width - feed.len(), pad);
    }
    let start = cache.seq_len();
    let ids =
        Tensor::from_vec(flat, (items.len(), width), &Device::Cpu).map_err(ctx("branch ids"))?;
    let hidden = model
        .forward(&ids, start, &mut cache)
        .map_err(ctx(format!("branch forward at {start}")))?;
    let out = model
        .logits(&hidden)
        .and_then(|l| l.reshape((items.len(), width, vocab)))
        .and_then(|l| l.to_vec3::<f32>())
        .map_err(ctx("branch logits"))?;
    Ok(items
        .iter()
        .zip(out)
        .map(|(&(m, d), rows)| {
            trie.branch_nodes(m)
                .skip(d)
                .zip(rows)
                .map(|((_, node), l)| (node, l))
                .collect()
        })
        .collect())
}

/// What [`probe_sequences`] measured on one sequence.
#[derive(Debug, Clone)]
pub(crate) struct SequenceProbes {
    /// One probe per requested decision position, in the given order.
    pub probes: Vec<DecisionProbe>,
    /// Next-token logits after each position, flat (`[p·V, (p+1)·V)` predicts `ids[p + 1]`),
    /// when asked for.
    pub logits: Option<Vec<f32>>,
}

/// Prefills each sequence with `model` and probes it at `decisions[i]` (positions of the
/// first move-line token, each in `1..=len`: the history is `ids[..p]`).
///
/// Sequences are prefilled `PREFILL_ROWS` at a time and their caches kept. A decision's
/// own continuation already gives the distributions along the part of the trie it follows
/// (a rollout that wrote `go right` gives every node of that branch, and `go ` of the
/// others), so only the rest is run: each other branch from the point where it leaves the
/// continuation, on a copy of the sequence's cache cut there ([`KvCache::gather_prefixes`]).
/// After a valid terse move that is 11–13 branch tokens (15 with padding) per decision
/// instead of 32.
/// The branch passes of all sequences that start at one position form one batch, so the
/// number of passes is the number of distinct positions, not of sequences.
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
    // Per chunk: its cache; per sequence: its logits, flat (`[p·V, (p+1)·V)` predicts
    // `ids[p + 1]`).
    let mut caches = Vec::new();
    let mut logits: Vec<Vec<f32>> = vec![Vec::new(); seqs.len()];
    for chunk in order.chunks(PREFILL_ROWS) {
        let len = chunk.iter().map(|&i| seqs[i].len()).max().unwrap_or(0);
        if len == 0 {
            caches.push(model.new_cache());
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
            .and_then(|l| l.reshape((b, len * vocab)))
            .and_then(|l| l.to_vec2::<f32>())
            .map_err(ctx("prefill logits"))?;
        for (&i, mut r) in chunk.iter().zip(rows) {
            r.truncate(seqs[i].len() * vocab);
            logits[i] = r;
        }
        caches.push(cache);
    }
    let row = |r: usize, q: usize| &logits[r][q * vocab..(q + 1) * vocab];
    // Per decision, its nodes' logits; the continuation's first, then the branch passes'.
    let mut nodes: Vec<Vec<Vec<Option<Vec<f32>>>>> = Vec::with_capacity(seqs.len());
    // Branch passes by the position they start from: (sequence, decision, move, depth).
    let mut by_start: BTreeMap<usize, Vec<(usize, usize, Move, usize)>> = BTreeMap::new();
    for (r, (seq, ds)) in seqs.iter().zip(decisions).enumerate() {
        let mut per = Vec::with_capacity(ds.len());
        for (k, &p) in ds.iter().enumerate() {
            let mut ns: Vec<Option<Vec<f32>>> = vec![None; trie.len()];
            ns[0] = Some(row(r, p - 1).to_vec());
            let (mut n, mut j) = (0, 0);
            while p + j < seq.len() {
                match trie.child(n, seq[p + j]) {
                    Some(c) if trie.is_internal(c) => {
                        ns[c] = Some(row(r, p + j).to_vec());
                        n = c;
                        j += 1;
                    }
                    _ => break,
                }
            }
            for m in Move::ALL {
                let input = branch_input(trie, m);
                // Every node of this branch up to `depth` tokens is on the continuation.
                let depth = input
                    .iter()
                    .zip(&seq[p..])
                    .take_while(|(a, b)| a == b)
                    .count();
                if depth < input.len() {
                    by_start
                        .entry(p + depth)
                        .or_default()
                        .push((r, k, m, depth));
                }
            }
            per.push(ns);
        }
        nodes.push(per);
    }
    let cache_refs: Vec<&KvCache> = caches.iter().collect();
    for (start, passes) in by_start {
        for group in passes.chunks(4 * PROBE_ROWS) {
            let picks: Vec<(usize, usize)> = group.iter().map(|&(r, ..)| slot[r]).collect();
            let cache = KvCache::gather_prefixes(&cache_refs, &picks, start)
                .map_err(ctx("copying the decision rows"))?;
            let items: Vec<(Move, usize)> = group.iter().map(|&(_, _, m, d)| (m, d)).collect();
            let got = branch_pass(model, cache, &items, trie, pad)?;
            for (&(r, k, ..), pairs) in group.iter().zip(got) {
                for (node, l) in pairs {
                    nodes[r][k][node].get_or_insert(l);
                }
            }
        }
    }
    let mut out = Vec::with_capacity(seqs.len());
    for (per, flat) in nodes.into_iter().zip(logits) {
        let probes = per
            .into_iter()
            .map(|ns| DecisionProbe::from_logits(trie, ns).map_err(AgentError::Invalid))
            .collect::<Result<Vec<_>>>()?;
        out.push(SequenceProbes {
            probes,
            logits: keep_logits.then_some(flat),
        });
    }
    Ok(out)
}
