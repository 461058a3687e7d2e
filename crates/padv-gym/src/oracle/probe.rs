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
        let items: Vec<(Move, usize)> = chunk
            .iter()
            .flat_map(|_| Move::ALL.map(|m| (m, 0)))
            .collect();
        // Copied once, with room for the move lines (the branch pass writes them in place).
        let c = cache
            .select_rows_with_room(&idx, branch_width(trie, &items))
            .map_err(ctx("copying decision-point rows"))?;
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

/// Positions a branch pass over `items` feeds (the longest feed; every row is padded to it):
/// also the room its cache needs.
fn branch_width(trie: &MoveTrie, items: &[(Move, usize)]) -> usize {
    items
        .iter()
        .map(|&(m, d)| branch_input(trie, m).len() - d)
        .max()
        .unwrap_or(1)
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
    cache: KvCache,
    items: &[(Move, usize)],
    trie: &MoveTrie,
    pad: u32,
) -> Result<Vec<NodeLogits>> {
    let vocab = model.config().vocab_size;
    let width = branch_width(trie, items);
    let feeds = items.iter().map(|&(m, d)| &branch_input(trie, m)[d..]);
    let all: Vec<usize> = (0..width).collect();
    let (_, out) = prefill_rows(
        model,
        cache,
        padded(feeds, width, pad),
        items.len(),
        width,
        &all,
    )?;
    Ok(items
        .iter()
        .zip(out)
        .map(|(&(m, d), rows)| {
            trie.branch_nodes(m)
                .skip(d)
                .zip(rows.chunks_exact(vocab))
                .map(|((_, node), l)| (node, l.to_vec()))
                .collect()
        })
        .collect())
}

/// Rows of ids, each padded with `pad` to `width`, row-major.
fn padded<'a>(rows: impl Iterator<Item = &'a [u32]>, width: usize, pad: u32) -> Vec<u32> {
    let mut flat = Vec::with_capacity(rows.size_hint().0 * width);
    for r in rows {
        flat.extend_from_slice(r);
        flat.resize(flat.len() + width - r.len(), pad);
    }
    flat
}

/// What [`probe_sequences`] measured on one sequence.
#[derive(Debug, Clone)]
pub(crate) struct SequenceProbes {
    /// One probe per requested decision position, in the given order.
    pub probes: Vec<DecisionProbe>,
    /// Next-token logits after each position, flat (`[p·V, (p+1)·V)` predicts `ids[p + 1]`),
    /// when asked for.
    pub logits: Option<Vec<f32>>,
    /// Positions the sequence's own prefill ran: its length less the prefix it shared.
    pub computed: usize,
}

/// A shared prefix shorter than this is recomputed rather than copied: the sequence then
/// joins a batched prefill instead of running alone.
const MIN_SHARED: usize = 16;

/// The next-token logits one sequence's prefill kept: rows at `positions` (ascending), flat.
struct KeptLogits {
    positions: Vec<usize>,
    flat: Vec<f32>,
}

impl KeptLogits {
    fn row(&self, q: usize, vocab: usize) -> Option<&[f32]> {
        let i = self.positions.binary_search(&q).ok()?;
        self.flat.get(i * vocab..(i + 1) * vocab)
    }
}

/// The positions whose next-token logits a sequence's probes read: the one before each
/// decision (the root distribution) and those along the move line that follows it (the
/// continuation's trie nodes); every position when all logits are kept.
fn needed_positions(len: usize, decisions: &[usize], trie: &MoveTrie, all: bool) -> Vec<usize> {
    if all {
        return (0..len).collect();
    }
    let depth = Move::ALL
        .iter()
        .map(|&m| branch_input(trie, m).len())
        .max()
        .unwrap_or(0);
    let mut out: Vec<usize> = decisions
        .iter()
        .flat_map(|&p| p - 1..(p + depth).min(len))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Which sequence each one continues from, and where: sequences sorted lexicographically,
/// each shares its longest prefix with some earlier one exactly when it shares it with its
/// predecessor in that order (the longest common prefix of two sorted strings is the
/// minimum over the adjacent pairs between them). A sequence continues from its predecessor
/// at the shared length, cut so that at least one token is fed and, unless the base keeps
/// every logit row (`inherit`: the rows before the cut are then the base's), so that every
/// row it needs is computed by its own pass; below `min_shared` it is prefilled from
/// scratch. Returns per sequence `Some((base, start))` or `None`; in that sorted order
/// every base comes before the sequences that continue from it.
fn share_plan(
    seqs: &[&[u32]],
    needed: &[Vec<usize>],
    inherit: bool,
    min_shared: usize,
) -> Vec<Option<(usize, usize)>> {
    let mut sorted: Vec<usize> = (0..seqs.len()).collect();
    sorted.sort_by(|&a, &b| seqs[a].cmp(seqs[b]).then(a.cmp(&b)));
    let mut plan = vec![None; seqs.len()];
    for w in sorted.windows(2) {
        let (prev, cur) = (w[0], w[1]);
        let lcp = seqs[prev]
            .iter()
            .zip(seqs[cur])
            .take_while(|(a, b)| a == b)
            .count();
        // Rows before `start` come from the base only when it keeps every row.
        let first_needed = match inherit {
            true => usize::MAX,
            false => needed[cur].first().copied().unwrap_or(usize::MAX),
        };
        let start = lcp.min(first_needed).min(seqs[cur].len().saturating_sub(1));
        if start >= min_shared {
            plan[cur] = Some((prev, start));
        }
    }
    plan
}

/// Prefills each sequence with `model` and probes it at `decisions[i]` (positions of the
/// first move-line token, each in `1..=len`: the history is `ids[..p]`).
///
/// **Prefill.** A sequence that shares a prefix with another (the canonical histories of one
/// map share all but their last turns; rollouts of one map share the task) continues from
/// that one's cache cut at the shared length ([`share_plan`]), so a shared prefix is
/// computed once; the others are prefilled `PREFILL_ROWS` at a time, longest first. Only the
/// logit rows the probes read are computed (the last layer runs only those rows), unless
/// `keep_logits` asks for all of them, which are then returned. Every sequence's cache is
/// kept until its probes have run.
///
/// **Probes.** A decision's own continuation already gives the distributions along the part
/// of the trie it follows (a rollout that wrote `go right` gives every node of that branch,
/// and `go ` of the others), so only the rest is run: each other branch from the point where
/// it leaves the continuation, on a copy of the sequence's cache cut there
/// ([`KvCache::gather_prefixes`]). After a valid terse move that is 11–13 branch tokens (15
/// with padding) per decision instead of 32. The branch passes of all sequences that start
/// at one position form one batch, so the number of passes is the number of distinct
/// positions, not of sequences.
pub(crate) fn probe_sequences(
    model: &DecoderModel,
    seqs: &[&[u32]],
    decisions: &[Vec<usize>],
    trie: &MoveTrie,
    pad: u32,
    keep_logits: bool,
) -> Result<Vec<SequenceProbes>> {
    probe_sharing(model, seqs, decisions, trie, pad, keep_logits, MIN_SHARED)
}

/// [`probe_sequences`], sharing prefixes of at least `min_shared` tokens.
fn probe_sharing(
    model: &DecoderModel,
    seqs: &[&[u32]],
    decisions: &[Vec<usize>],
    trie: &MoveTrie,
    pad: u32,
    keep_logits: bool,
    min_shared: usize,
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
    let needed: Vec<Vec<usize>> = seqs
        .iter()
        .zip(decisions)
        .map(|(s, d)| needed_positions(s.len(), d, trie, keep_logits))
        .collect();
    let plan = share_plan(seqs, &needed, keep_logits, min_shared);
    // Per sequence: (its cache, its row there); the caches; its kept logit rows.
    let mut slot = vec![(0usize, 0usize); seqs.len()];
    let mut caches: Vec<KvCache> = Vec::new();
    let mut kept: Vec<Option<KeptLogits>> = (0..seqs.len()).map(|_| None).collect();

    // Sequences prefilled from scratch, in chunks of similar length (longest first), so that
    // padding (which every row of a chunk computes up to the chunk's longest sequence, at a
    // cost quadratic in length) stays small.
    let mut fresh: Vec<usize> = (0..seqs.len()).filter(|&i| plan[i].is_none()).collect();
    fresh.sort_by_key(|&i| std::cmp::Reverse(seqs[i].len()));
    for chunk in fresh.chunks(PREFILL_ROWS) {
        let len = chunk.iter().map(|&i| seqs[i].len()).max().unwrap_or(0);
        let mut rows: Vec<usize> = chunk.iter().flat_map(|&i| needed[i].clone()).collect();
        rows.sort_unstable();
        rows.dedup();
        let flat = padded(chunk.iter().map(|&i| seqs[i]), len, pad);
        let (cache, out) = prefill_rows(model, model.new_cache(), flat, chunk.len(), len, &rows)?;
        for (k, (&i, r)) in chunk.iter().zip(out).enumerate() {
            kept[i] = Some(keep_rows(r, &rows, &needed[i], vocab));
            slot[i] = (caches.len(), k);
        }
        caches.push(cache);
    }
    // Sequences that continue from another, in an order where the base comes first (the
    // lexicographic order the plan was made in).
    let mut based: Vec<usize> = (0..seqs.len()).filter(|&i| plan[i].is_some()).collect();
    based.sort_by(|&a, &b| seqs[a].cmp(seqs[b]).then(a.cmp(&b)));
    for i in based {
        let Some((base, start)) = plan[i] else {
            continue;
        };
        let seq = seqs[i];
        // The prefix is copied once, with room for the rest of the sequence (written in place).
        let cache = KvCache::gather_prefixes_with_room(
            &[&caches[slot[base].0]],
            &[(0, slot[base].1)],
            start,
            seq.len() - start,
        )
        .map_err(ctx("copying a shared prefix"))?;
        let rows: Vec<usize> = needed[i]
            .iter()
            .filter(|&&q| q >= start)
            .map(|&q| q - start)
            .collect();
        let (cache, mut out) = prefill_rows(
            model,
            cache,
            seq[start..].to_vec(),
            1,
            seq.len() - start,
            &rows,
        )?;
        let own = keep_rows(out.pop().unwrap_or_default(), &rows, &rows, vocab);
        // Rows before `start` (kept logits only) are the base's: the same ids precede them.
        let inherited: Vec<usize> = needed[i].iter().copied().filter(|&q| q < start).collect();
        let mut positions = inherited.clone();
        let mut flat = Vec::with_capacity(needed[i].len() * vocab);
        if !inherited.is_empty() {
            let b = kept[base].as_ref().ok_or_else(|| {
                AgentError::Invalid("a shared prefix's logits were not kept".into())
            })?;
            for &q in &inherited {
                let r = b.row(q, vocab).ok_or_else(|| {
                    AgentError::Invalid(format!("logit row {q} missing from a shared prefix"))
                })?;
                flat.extend_from_slice(r);
            }
        }
        positions.extend(own.positions.iter().map(|&q| q + start));
        flat.extend(own.flat);
        kept[i] = Some(KeptLogits { positions, flat });
        slot[i] = (caches.len(), 0);
        caches.push(cache);
    }
    let missing = || AgentError::Invalid("a logit row the probes need was not computed".into());
    let row = |r: usize, q: usize| -> Result<&[f32]> {
        kept[r]
            .as_ref()
            .and_then(|k| k.row(q, vocab))
            .ok_or_else(missing)
    };
    // Per decision, its nodes' logits; the continuation's first, then the branch passes'.
    let mut nodes: Vec<Vec<Vec<Option<Vec<f32>>>>> = Vec::with_capacity(seqs.len());
    // Branch passes by the position they start from: (sequence, decision, move, depth).
    let mut by_start: BTreeMap<usize, Vec<(usize, usize, Move, usize)>> = BTreeMap::new();
    for (r, (seq, ds)) in seqs.iter().zip(decisions).enumerate() {
        let mut per = Vec::with_capacity(ds.len());
        for (k, &p) in ds.iter().enumerate() {
            let mut ns: Vec<Option<Vec<f32>>> = vec![None; trie.len()];
            ns[0] = Some(row(r, p - 1)?.to_vec());
            let (mut n, mut j) = (0, 0);
            while p + j < seq.len() {
                match trie.child(n, seq[p + j]) {
                    Some(c) if trie.is_internal(c) => {
                        ns[c] = Some(row(r, p + j)?.to_vec());
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
            let items: Vec<(Move, usize)> = group.iter().map(|&(_, _, m, d)| (m, d)).collect();
            let width = branch_width(trie, &items);
            let cache = KvCache::gather_prefixes_with_room(&cache_refs, &picks, start, width)
                .map_err(ctx("copying the decision rows"))?;
            let got = branch_pass(model, cache, &items, trie, pad)?;
            for (&(r, k, ..), pairs) in group.iter().zip(got) {
                for (node, l) in pairs {
                    nodes[r][k][node].get_or_insert(l);
                }
            }
        }
    }
    drop(caches);
    let mut out = Vec::with_capacity(seqs.len());
    for ((per, k), (seq, shared)) in nodes.into_iter().zip(kept).zip(seqs.iter().zip(&plan)) {
        let probes = per
            .into_iter()
            .map(|ns| DecisionProbe::from_logits(trie, ns).map_err(AgentError::Invalid))
            .collect::<Result<Vec<_>>>()?;
        out.push(SequenceProbes {
            probes,
            logits: if keep_logits { k.map(|k| k.flat) } else { None },
            computed: seq.len() - shared.map_or(0, |(_, start)| start),
        });
    }
    Ok(out)
}

/// Runs `b` rows of `len` ids (`flat`, row-major) from `cache` and returns the cache and,
/// per row, the next-token logits at `rows` (indices into `0..len`, ascending), flat. The
/// last layer runs only those rows. Prefills and branch passes both run through here.
fn prefill_rows(
    model: &DecoderModel,
    mut cache: KvCache,
    flat: Vec<u32>,
    b: usize,
    len: usize,
    rows: &[usize],
) -> Result<(KvCache, Vec<Vec<f32>>)> {
    let vocab = model.config().vocab_size;
    let start = cache.seq_len();
    if len == 0 {
        return Ok((cache, vec![Vec::new(); b]));
    }
    let ids = Tensor::from_vec(flat, (b, len), &Device::Cpu).map_err(ctx("prefill ids"))?;
    let hidden = if rows.len() == len || rows.is_empty() {
        model.forward(&ids, start, &mut cache)
    } else {
        model.forward_rows(&ids, start, &mut cache, rows, start + len)
    }
    .map_err(ctx(format!("forward at {start}")))?;
    if rows.is_empty() {
        // The cache is what was wanted.
        return Ok((cache, vec![Vec::new(); b]));
    }
    let out = model
        .logits(&hidden)
        .and_then(|l| l.reshape((b, rows.len() * vocab)))
        .and_then(|l| l.to_vec2::<f32>())
        .map_err(ctx(format!("logits at {start}")))?;
    Ok((cache, out))
}

/// Of one row's logits at `rows` (flat), the ones at `want` (a subset, ascending).
fn keep_rows(flat: Vec<f32>, rows: &[usize], want: &[usize], vocab: usize) -> KeptLogits {
    if rows == want {
        return KeptLogits {
            positions: want.to_vec(),
            flat,
        };
    }
    let mut out = Vec::with_capacity(want.len() * vocab);
    let mut positions = Vec::with_capacity(want.len());
    for &q in want {
        if let Ok(i) = rows.binary_search(&q) {
            positions.push(q);
            out.extend_from_slice(&flat[i * vocab..(i + 1) * vocab]);
        }
    }
    KeptLogits {
        positions,
        flat: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::Agent;
    use crate::tokenizer::{GymTokenizer, PAD_ID};
    use padv_engine::tokenize::TextTokenizer;

    /// Sharing prefixes changes no number: sequences that share long prefixes (one is a
    /// prefix of another, one repeats another), probed and with all logits kept, equal the
    /// same sequences each prefilled from scratch — every trie distribution of every probe
    /// and every kept logit, to 1e-5 — and the plan did share.
    #[test]
    fn shared_prefixes_give_what_fresh_prefills_give() {
        let pair = crate::demo::verbose_pair_dir();
        let tok = TextTokenizer::from_dir(&pair.join("reference")).unwrap();
        let model = Agent::load(&pair.join("reference"), &tok)
            .unwrap()
            .inference_model()
            .unwrap();
        let gym = GymTokenizer::new();
        let trie = MoveTrie::new();
        let history = "the lake is 4 by 4, you are at the top left corner and the goal \
                       is at the bottom right\nthe ice looks thin to the right\n";
        let texts = [
            format!("{history}go down\nyou slipped\nstill thin ice\n"),
            format!("{history}go down\nyou moved\nfine\n"),
            format!("{history}go right\nyou moved\n"),
            format!("{history}go right\nyou moved\n"),
            format!("{history}go right\nyou moved\nlooks fine\ngo up"),
            "short\n".to_string(),
        ];
        let seqs: Vec<Vec<u32>> = texts.iter().map(|t| gym.encode(t).unwrap()).collect();
        let nl = gym.encode("\n").unwrap()[0];
        // Every position after a newline is a decision point, past the shared history (so
        // that without kept logits the shared prefix is reused up to where the sequences
        // part, not only up to the first decision).
        let after = gym.encode(history).unwrap().len() + 3;
        let decisions: Vec<Vec<usize>> = seqs
            .iter()
            .map(|s| {
                (1..=s.len())
                    .filter(|&p| s[p - 1] == nl && (p > after || s.len() < after))
                    .collect()
            })
            .collect();
        let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
        let needed: Vec<Vec<usize>> = refs
            .iter()
            .zip(&decisions)
            .map(|(s, d)| needed_positions(s.len(), d, &trie, false))
            .collect();
        for inherit in [false, true] {
            let plan = share_plan(&refs, &needed, inherit, MIN_SHARED);
            assert!(plan.iter().filter(|p| p.is_some()).count() >= 4, "{plan:?}");
        }
        for keep in [false, true] {
            let shared =
                probe_sharing(&model, &refs, &decisions, &trie, PAD_ID, keep, MIN_SHARED).unwrap();
            let fresh =
                probe_sharing(&model, &refs, &decisions, &trie, PAD_ID, keep, usize::MAX).unwrap();
            for (i, (a, b)) in shared.iter().zip(&fresh).enumerate() {
                assert_eq!(a.probes.len(), decisions[i].len());
                for (pa, pb) in a.probes.iter().zip(&b.probes) {
                    for n in 0..trie.len() {
                        for (x, y) in pa.dist(n).iter().zip(pb.dist(n)) {
                            assert!((x - y).abs() < 1e-5, "seq {i} node {n}: {x} vs {y}");
                        }
                    }
                }
                assert_eq!(a.logits.is_some(), keep);
                if let (Some(x), Some(y)) = (&a.logits, &b.logits) {
                    assert_eq!(x.len(), seqs[i].len() * model.config().vocab_size);
                    assert_eq!(x.len(), y.len());
                    let d = x
                        .iter()
                        .zip(y)
                        .map(|(u, v)| (u - v).abs())
                        .fold(0f32, f32::max);
                    assert!(d < 1e-5, "seq {i} logits: {d}");
                }
            }
        }
    }
}
