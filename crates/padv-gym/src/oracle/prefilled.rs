//! What the soft-truth pass already computed, reused by the scoring pipeline: the soft truth
//! prefills the reference on every finished rollout and probes every decision point; the
//! reference's records of those rollouts and the oracle's (whose distribution is the
//! reference's tilted at those very probes) need exactly those numbers. Without this the
//! demo ran the reference over every rollout twice more (once as the pair's reference, once
//! inside the oracle backend), about a third of its time.
//!
//! [`PrefilledBackend`] answers the pipeline from the kept logits with the engine's own
//! statistics ([`row_stats`]), so a record is what the local engine gives up to float
//! rounding of a different batch layout (checked in `tests/oracle.rs`); a request for a
//! sequence that was not prefilled is an error, never a silent recomputation.

use std::collections::HashMap;

use padv_core::{BackendError, LogprobBackend, PositionLogprobs, StatsRequest};
use padv_engine::logprobs::row_stats;

use super::trie::DecisionProbe;

/// One prefilled sequence: its logits (flat, `[p·V, (p+1)·V)` predicts `ids[p + 1]`) and
/// its decision probes by position.
#[derive(Debug, Clone)]
pub(crate) struct PrefilledSeq {
    pub logits: Vec<f32>,
    pub probes: Vec<(usize, DecisionProbe)>,
}

/// Logits and decision probes of sequences prefilled once, keyed by their ids.
#[derive(Debug, Clone, Default)]
pub struct Prefilled {
    vocab: usize,
    seqs: HashMap<Vec<u32>, PrefilledSeq>,
}

impl Prefilled {
    pub(crate) fn new(vocab: usize) -> Self {
        Prefilled {
            vocab,
            seqs: HashMap::new(),
        }
    }

    pub(crate) fn insert(&mut self, ids: Vec<u32>, seq: PrefilledSeq) {
        self.seqs.insert(ids, seq);
    }

    /// Adds another pass's sequences (the demo runs the soft truth in two lanes).
    pub fn merge(&mut self, other: Prefilled) {
        if self.seqs.is_empty() {
            self.vocab = other.vocab;
        }
        self.seqs.extend(other.seqs);
    }

    /// Number of sequences held.
    pub fn len(&self) -> usize {
        self.seqs.len()
    }

    /// Whether it holds no sequence.
    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }

    pub(crate) fn get(&self, ids: &[u32]) -> Option<&PrefilledSeq> {
        self.seqs.get(ids)
    }

    /// The next-token logits after position `p` of a held sequence.
    pub(crate) fn row(seq: &PrefilledSeq, vocab: usize, p: usize) -> Option<&[f32]> {
        seq.logits.get(p * vocab..(p + 1) * vocab)
    }
}

/// Answers the scoring pipeline from [`Prefilled`] logits.
pub struct PrefilledBackend<'a> {
    prefilled: &'a Prefilled,
    fingerprint: String,
}

impl<'a> PrefilledBackend<'a> {
    /// `fingerprint`: the fingerprint of the engine with the weights that made the logits.
    /// The backend's own is that one marked `gym-prefilled:`, so a cache never mixes its
    /// numbers with the engine's (they differ in float rounding).
    pub fn new(prefilled: &'a Prefilled, fingerprint: String) -> Self {
        PrefilledBackend {
            prefilled,
            fingerprint: format!("gym-prefilled:{fingerprint}"),
        }
    }
}

impl LogprobBackend for PrefilledBackend<'_> {
    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn vocab_size(&self) -> usize {
        self.prefilled.vocab
    }

    fn score(
        &self,
        ids: &[u32],
        targets: &[usize],
        stats: StatsRequest,
    ) -> Result<PositionLogprobs, BackendError> {
        let seq = self.prefilled.get(ids).ok_or_else(|| {
            BackendError::Invalid(format!(
                "a {}-token sequence the soft-truth pass did not prefill",
                ids.len()
            ))
        })?;
        let mut res = PositionLogprobs::with_capacity(targets.len(), stats);
        let mut scratch = Vec::new();
        for &t in targets {
            let row = (t >= 1 && t < ids.len())
                .then(|| Prefilled::row(seq, self.prefilled.vocab, t - 1))
                .flatten()
                .ok_or_else(|| BackendError::Invalid(format!("target {t} out of range")))?;
            let r = row_stats(
                row,
                ids[t] as usize,
                None,
                stats.distribution_stats,
                &mut scratch,
            );
            res.push(r.logprob, r.topk_mean, r.entropy, r.vocab_mean);
        }
        Ok(res)
    }
}
