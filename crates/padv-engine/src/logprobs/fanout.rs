//! Fan-out: requests that continue one shared prefix (K candidate actions after a history,
//! rollouts of one task after its system prompt) run as **one** batched pass after the prefix
//! is computed once.
//!
//! Continuing each request in turn from the prefix's KV cache already avoids recomputing the
//! prefix, but every continuation is then a separate forward pass: a few dozen rows that cannot
//! keep the cores busy and stream every weight once more. Here the prefix cache is broadcast to
//! one row per request ([`KvCache::repeat_rows`]), the continuations are padded to a common
//! length and run as a `[K, L]` batch. Padding follows every row a request reads, so causality
//! keeps it out of every score; results equal independent passes to float rounding.
//!
//! Padding repeats the request's own last input token, never a fixed id: masked keys still
//! enter the attention arithmetic (`0 · v` and `s + (−∞)` are NaN when `v` or `s` is), so a
//! padding id whose weights hold NaN would poison every shorter row of the batch. A token the
//! row already reads can add no non-finite value the row does not already have. As a second
//! guard, `score_batch_shared` re-scores alone any member whose batched values are not all
//! finite, so a bad sequence reports its own error and never its neighbours'.

use candle_core::Tensor;
use padv_core::{PositionLogprobs, ScoreRequest, StatsRequest};

use super::engine::{assemble, ctx, first_non_finite, EngineError, LocalEngine};
use super::head::score_hidden;
use crate::decoder::KvCache;

/// Shortest shared prefix worth a fan-out.
pub(crate) const MIN_FANOUT_PREFIX: usize = 16;
/// Most positions (rows × padded length) in one batched continuation pass.
const MAX_FANOUT_POSITIONS: usize = 8192;

impl LocalEngine {
    /// Whether `r` passes every check `score_from` makes with an empty cache and has targets,
    /// so a fan-out never has to report an error: a request that fails is left to the
    /// sequential path, which reports it alone.
    pub(super) fn fanout_eligible(&self, r: &ScoreRequest<'_>) -> bool {
        let v = self.model().config().vocab_size;
        match (r.targets.first(), r.targets.last()) {
            (Some(&first), Some(&last)) => {
                first >= 1
                    && last < r.ids.len()
                    && r.targets.windows(2).all(|w| w[0] <= w[1])
                    && r.ids.iter().all(|&i| (i as usize) < v)
            }
            _ => false,
        }
    }

    /// Scores `reqs`, which all share `ids[..prefix]` and have every target past `prefix`
    /// (and are [`LocalEngine::fanout_eligible`]), computing the prefix once and the
    /// continuations in batches. Results in the order of `reqs`.
    pub(super) fn score_fanout(
        &self,
        reqs: &[ScoreRequest<'_>],
        prefix: usize,
        stats: StatsRequest,
    ) -> Result<Vec<PositionLogprobs>, EngineError> {
        let dev = self.model().device();
        let full_len = reqs.iter().map(|r| r.ids.len()).max().unwrap_or(0);
        let mut base = self.model().new_cache();
        let ids = Tensor::from_slice(&reqs[0].ids[..prefix], (1, prefix), dev)
            .map_err(ctx("token ids"))?;
        self.model()
            .forward_rows(&ids, 0, &mut base, &[prefix - 1], full_len)
            .map_err(ctx("forward pass over the shared prefix"))?;
        self.continue_fanout(reqs, prefix, &base, stats, full_len)
    }

    /// Scores requests that all continue the history whose keys and values `base` holds: a
    /// one-row cache of `base.seq_len()` positions, which must be every request's
    /// `ids[..base.seq_len()]`, and every target must lie past it. The continuations run as
    /// batched `[m, L]` passes, exactly as in `score_batch_shared`'s fan-out; results in
    /// the order of `reqs`.
    ///
    /// This is the fan-out for a caller that keeps a history's cache across steps and asks
    /// for K continuations at each (the gym's guided search scores K candidate actions after
    /// every step), so the history is neither recomputed nor scored by a second copy of the
    /// batching code. The cache holds no ids to check: the caller vouches for the prefix
    /// (and, for a LongRoPE checkpoint, that it was computed for sequences on the same side
    /// of the original context as these, since those factors depend on the whole length).
    ///
    /// Each request succeeds or fails alone, as in `score_batch_shared`: one that the
    /// batched pass cannot take (no targets, targets inside the prefix, ids outside the
    /// vocabulary) and one whose batched values are not all finite are scored again by
    /// themselves ([`LocalEngine::score_from`] on a copy of `base`), which reports their own
    /// error.
    ///
    /// # Errors
    /// The outer error is the call's: an empty `base`, or a failed batched pass.
    pub fn score_continuations(
        &self,
        base: &KvCache,
        reqs: &[ScoreRequest<'_>],
        stats: StatsRequest,
    ) -> Result<Vec<Result<PositionLogprobs, EngineError>>, EngineError> {
        let prefix = base.seq_len();
        if prefix == 0 {
            return Err(EngineError::Invalid(
                "continuations need a history: the cache is empty".into(),
            ));
        }
        let alone = |r: &ScoreRequest<'_>| -> Result<PositionLogprobs, EngineError> {
            let mut own = base
                .repeat_rows(1)
                .map_err(ctx("copying the history cache"))?;
            self.score_from(r.ids, r.targets, stats, &mut own)
        };
        let (batched, single): (Vec<usize>, Vec<usize>) = (0..reqs.len())
            .partition(|&i| self.fanout_eligible(&reqs[i]) && reqs[i].targets[0] > prefix);
        let mut out: Vec<Option<Result<PositionLogprobs, EngineError>>> =
            (0..reqs.len()).map(|_| None).collect();
        for i in single {
            out[i] = Some(alone(&reqs[i]));
        }
        let members: Vec<ScoreRequest<'_>> = batched.iter().map(|&i| reqs[i]).collect();
        let full_len = members.iter().map(|r| r.ids.len()).max().unwrap_or(0);
        let got = self.continue_fanout(&members, prefix, base, stats, full_len)?;
        for (&i, p) in batched.iter().zip(got) {
            let r = &reqs[i];
            out[i] = Some(match first_non_finite(&p, r.targets) {
                None => Ok(p),
                Some(_) => alone(r),
            });
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// The fan-out's batching: continuations of `base` grouped by length into passes of at
    /// most `MAX_FANOUT_POSITIONS` positions. Results in the order of `reqs`.
    fn continue_fanout(
        &self,
        reqs: &[ScoreRequest<'_>],
        prefix: usize,
        base: &KvCache,
        stats: StatsRequest,
        full_len: usize,
    ) -> Result<Vec<PositionLogprobs>, EngineError> {
        // Similar lengths together, so padding stays small.
        let len = |r: &ScoreRequest<'_>| r.targets.last().map_or(0, |&l| l - prefix);
        let mut by_len: Vec<usize> = (0..reqs.len()).collect();
        by_len.sort_by_key(|&i| len(&reqs[i]));
        let mut out: Vec<Option<PositionLogprobs>> = vec![None; reqs.len()];
        let mut i = 0;
        while i < by_len.len() {
            let shortest = len(&reqs[by_len[i]]).max(1);
            let mut j = i + 1;
            while j < by_len.len() {
                let l = len(&reqs[by_len[j]]);
                if (j + 1 - i) * l > MAX_FANOUT_POSITIONS || l > 2 * shortest {
                    break;
                }
                j += 1;
            }
            let batch: Vec<ScoreRequest<'_>> = by_len[i..j].iter().map(|&k| reqs[k]).collect();
            let got = self.fanout_batch(&batch, prefix, base, stats, full_len)?;
            for (&k, r) in by_len[i..j].iter().zip(got) {
                out[k] = Some(r);
            }
            i = j;
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// One `[m, L]` pass continuing `base` (which holds `prefix` positions).
    fn fanout_batch(
        &self,
        reqs: &[ScoreRequest<'_>],
        prefix: usize,
        base: &KvCache,
        stats: StatsRequest,
        full_len: usize,
    ) -> Result<Vec<PositionLogprobs>, EngineError> {
        let dev = self.model().device();
        let m = reqs.len();
        let len = reqs
            .iter()
            .map(|r| r.targets.last().map_or(0, |&l| l - prefix))
            .max()
            .unwrap_or(0);
        let mut flat = Vec::with_capacity(m * len);
        let mut needed = vec![false; len];
        for r in reqs {
            let last = r.targets.last().copied().unwrap_or(prefix);
            flat.extend_from_slice(&r.ids[prefix..last]);
            // Padding after the last row this request reads: its own last input token (see
            // the module docs for why not a fixed id).
            let pad = r.ids[last - 1];
            flat.resize(flat.len() + len - (last - prefix), pad);
            for &t in r.targets {
                needed[t - 1 - prefix] = true;
            }
        }
        let rows: Vec<usize> = (0..len).filter(|&p| needed[p]).collect();
        let mut cache = base
            .repeat_rows(m)
            .map_err(ctx("copying the prefix cache"))?;
        let ids = Tensor::from_vec(flat, (m, len), dev).map_err(ctx("token ids"))?;
        let hidden = self
            .model()
            .forward_rows(&ids, prefix, &mut cache, &rows, full_len)
            .map_err(ctx("forward pass over the continuations"))?;
        let want = stats.distribution_stats;
        let mut out = Vec::with_capacity(m);
        for (k, r) in reqs.iter().enumerate() {
            let mut mine: Vec<usize> = r.targets.iter().map(|t| t - 1 - prefix).collect();
            mine.dedup();
            let idx = mine
                .iter()
                .map(|p| {
                    rows.binary_search(p).map(|i| i as u32).map_err(|_| {
                        EngineError::Invalid(format!("fan-out: row {p} was not computed"))
                    })
                })
                .collect::<Result<Vec<u32>, _>>()?;
            let index = Tensor::new(idx.as_slice(), dev).map_err(ctx("row index"))?;
            let h = hidden
                .get(k)
                .and_then(|h| h.index_select(&index, 0))
                .map_err(ctx("selecting rows"))?;
            let row_targets: Vec<u32> = mine.iter().map(|p| r.ids[prefix + p + 1]).collect();
            let rs = score_hidden(
                &h,
                self.model().lm_head(),
                &row_targets,
                self.model().config().final_softcap,
                want,
                self.chunk_rows(),
            )
            .map_err(ctx("output projection"))?;
            out.push(assemble(r.targets, &mine, prefix, &rs, want));
        }
        Ok(out)
    }
}
