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

impl PositionLogprobs {
    /// Empty, with room for `n` positions and the statistics arrays `stats` asks for (absent
    /// otherwise).
    pub fn with_capacity(n: usize, stats: StatsRequest) -> Self {
        let s = stats.distribution_stats;
        PositionLogprobs {
            logprob: Vec::with_capacity(n),
            topk_mean: s.then(|| Vec::with_capacity(n)),
            entropy: s.then(|| Vec::with_capacity(n)),
            vocab_mean: s.then(|| Vec::with_capacity(n)),
        }
    }

    /// Appends one position: its log-prob, and its statistics to the arrays that exist (a
    /// result made without statistics ignores them).
    pub fn push(&mut self, logprob: f32, topk_mean: f32, entropy: f32, vocab_mean: f32) {
        self.logprob.push(logprob);
        for (arr, x) in [
            (&mut self.topk_mean, topk_mean),
            (&mut self.entropy, entropy),
            (&mut self.vocab_mean, vocab_mean),
        ] {
            if let Some(a) = arr {
                a.push(x);
            }
        }
    }
}

/// Which distribution statistics a caller wants besides the target log-probs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsRequest {
    /// Top-20 mean, entropy and vocabulary mean.
    pub distribution_stats: bool,
}

/// Why a backend could not answer a request: a value, so callers (the pipeline's skip
/// report, the server's status codes) can tell a bad number from a dead server without
/// parsing text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The request is invalid for this backend (e.g. a token id outside the vocabulary, a
    /// sequence longer than the model's context).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The model produced NaN or an infinity (or, from a remote server, a value no
    /// log-probability can take): the request's own data or weights are at fault, not the
    /// service.
    #[error("{model}: {field} at token position {position} is {value}, not a finite log-probability{}",
        detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    NonFinite {
        /// The model (fingerprint, server URL or role name).
        model: String,
        /// `logprob`, `topk_mean`, `entropy`, `vocab_mean`.
        field: &'static str,
        /// Token position in the request's ids.
        position: usize,
        /// The value read.
        value: f32,
        /// What else is known (e.g. the allowed range of a remote value).
        detail: Option<String>,
    },
    /// Reading or writing local data failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A remote server answered with an HTTP error status.
    #[error("{server}: HTTP {status}: {message}")]
    Http {
        /// Server (base URL).
        server: String,
        /// HTTP status code.
        status: u16,
        /// The server's explanation.
        message: String,
    },
    /// A remote server's answer broke its API (bad JSON, repeated keys, wrong lengths,
    /// echoed ids that differ from those sent), or no answer came.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The caller gave up on the request (timeout, client gone) before it finished.
    #[error("cancelled before it finished")]
    Cancelled,
    /// The request exceeds a size limit of the backend.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The backend failed while computing, for a reason none of the other kinds covers.
    #[error("backend failure: {0}")]
    Failed(String),
}

impl BackendError {
    /// Whether the request's data (not the service) is at fault: an invalid or oversized
    /// request, or a value that is not a log-probability.
    pub fn is_data_error(&self) -> bool {
        matches!(
            self,
            BackendError::Invalid(_) | BackendError::NonFinite { .. } | BackendError::TooLarge(_)
        )
    }
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
///
/// Methods take `&self`: a backend does whatever synchronisation it needs inside (the local
/// engine needs none, its weights are read-only; the remote backend's fleet keeps its own
/// counters), so one loaded pair can serve concurrent callers — the server's requests, the
/// pipeline, a search — without a lock or a wrapper around it.
pub trait LogprobBackend {
    /// A string that changes whenever the numbers could change (weights, dtype, device):
    /// used as the cache key together with the token ids.
    fn fingerprint(&self) -> String;

    /// Vocabulary size of the model.
    fn vocab_size(&self) -> usize;

    /// Log-probs of `ids[t]` given `ids[..t]` for each `t` in `targets` (ascending, all ≥ 1).
    fn score(
        &self,
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
        &self,
        requests: &[ScoreRequest<'_>],
        stats: StatsRequest,
    ) -> Vec<Result<PositionLogprobs, BackendError>> {
        requests
            .iter()
            .map(|r| self.score(r.ids, r.targets, stats))
            .collect()
    }
}

/// [`LogprobBackend::score`] for a backend whose native path is
/// [`LogprobBackend::score_batch`] (a remote fleet, the gym's oracle): one request through the
/// batch, its one answer back.
pub fn score_one<B: LogprobBackend + ?Sized>(
    backend: &B,
    ids: &[u32],
    targets: &[usize],
    stats: StatsRequest,
) -> Result<PositionLogprobs, BackendError> {
    backend
        .score_batch(&[ScoreRequest { ids, targets }], stats)
        .pop()
        .unwrap_or_else(|| Err(BackendError::Failed("no result".into())))
}
