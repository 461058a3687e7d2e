//! The seam between padv's pure core and whatever computes log-probs: the local candle engine
//! (`padv-engine`), remote vLLM/SGLang servers, or a test double. All implement
//! [`LogprobBackend`].

/// What a backend returns for a set of target positions of one token sequence.
///
/// Entry `k` of every vector belongs to `targets[k]`: the log-prob of `ids[targets[k]]` given
/// `ids[..targets[k]]`, and statistics of that next-token distribution.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PositionLogprobs {
    /// log p(ids[t] | ids[..t]).
    pub logprob: Vec<f32>,
    /// Mean of the top-20 log-probs of the distribution at t (None if not computed).
    pub topk_mean: Option<Vec<f32>>,
    /// Entropy in nats.
    pub entropy: Option<Vec<f32>>,
    /// (1/V)·Σ_v log p(v).
    pub vocab_mean: Option<Vec<f32>>,
}

/// Which distribution statistics a caller wants besides the target log-probs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsRequest {
    /// Top-20 mean, entropy and vocabulary mean.
    pub distribution_stats: bool,
}

/// Error from a backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The request is invalid for this backend (e.g. a token id outside the vocabulary).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The backend failed while computing.
    #[error("backend failure: {0}")]
    Failed(String),
}

/// One sequence to score in a batch: log-probs of `ids[t]` for each `t` in `targets`
/// (ascending, all ≥ 1), as in [`LogprobBackend::score`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoreRequest<'a> {
    /// Token ids of the whole sequence.
    pub ids: &'a [u32],
    /// Positions to score.
    pub targets: &'a [usize],
}

/// Computes teacher-forced log-probs over a token sequence.
pub trait LogprobBackend {
    /// A string that changes whenever the numbers could change (weights, dtype, device):
    /// used as the cache key together with the token ids.
    fn fingerprint(&self) -> String;

    /// Vocabulary size of the model.
    fn vocab_size(&self) -> usize;

    /// Log-probs of `ids[t]` given `ids[..t]` for each `t` in `targets` (ascending, all ≥ 1).
    fn score(
        &mut self,
        ids: &[u32],
        targets: &[usize],
        stats: StatsRequest,
    ) -> Result<PositionLogprobs, BackendError>;

    /// Scores many sequences; entry `i` of the result answers `requests[i]`.
    ///
    /// The default scores them one by one. Backends override it to do better: the local
    /// engine computes a token prefix shared by several requests once (rollouts of one task,
    /// K candidate actions after one history, consecutive turns of a history-rewriting chat
    /// template), a remote backend sends the requests concurrently. Each request fails or
    /// succeeds on its own, so a caller keeps every finished result.
    fn score_batch(
        &mut self,
        requests: &[ScoreRequest<'_>],
        stats: StatsRequest,
    ) -> Vec<Result<PositionLogprobs, BackendError>> {
        requests
            .iter()
            .map(|r| self.score(r.ids, r.targets, stats))
            .collect()
    }
}
