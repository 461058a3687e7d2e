//! [`LocalEngine`]: a checkpoint on candle behind `padv_core::LogprobBackend`.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use padv_core::{BackendError, LogprobBackend, PositionLogprobs, ScoreRequest, StatsRequest};

use super::fanout::MIN_FANOUT_PREFIX;
use super::head::{score_hidden, DEFAULT_CHUNK_ROWS};
use super::stats::RowStats;
use crate::checkpoint::{device_label, Checkpoint, CheckpointError, SharedWeights};
use crate::decoder::{AttentionImpl, DecoderModel, KvCache, ModelOptions, RopeScaling};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;

/// Compute dtype. f32 is the reference mode on the CPU (bf16 there is both less accurate and
/// slower: candle widens bf16 to f32 for every matmul).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ComputeDType {
    /// 32-bit floats.
    #[default]
    F32,
    /// bfloat16.
    Bf16,
    /// IEEE half.
    F16,
}

impl ComputeDType {
    /// The candle dtype.
    pub fn dtype(self) -> DType {
        match self {
            ComputeDType::F32 => DType::F32,
            ComputeDType::Bf16 => DType::BF16,
            ComputeDType::F16 => DType::F16,
        }
    }
}

/// Where to compute. CUDA and Metal need the crate's `cuda` / `metal` features; without them
/// loading fails with candle's "not compiled with ... support" error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The CPU (threads: rayon's pool, `RAYON_NUM_THREADS`).
    #[default]
    Cpu,
    /// CUDA device by ordinal.
    Cuda(usize),
    /// Metal device by ordinal.
    Metal(usize),
}

impl DeviceSpec {
    /// Opens the device.
    pub fn device(self) -> candle_core::Result<Device> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(i) => Device::new_cuda(i),
            DeviceSpec::Metal(i) => Device::new_metal(i),
        }
    }
}

/// Options of [`LocalEngine::load`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// Compute dtype (default f32).
    pub dtype: ComputeDType,
    /// Device (default CPU).
    pub device: DeviceSpec,
    /// Rows of the output projection computed at once (default [`DEFAULT_CHUNK_ROWS`]): bounds
    /// the logits buffer to `chunk_rows × V` floats.
    pub chunk_rows: usize,
    /// Attention implementation (default `Auto`).
    pub attention: AttentionImpl,
    /// Build the differentiable (training) variant of the model: unfused weights and only ops
    /// that have gradients (default false). Its numbers match the fast path within 1e-5.
    pub trainable: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            dtype: ComputeDType::F32,
            device: DeviceSpec::Cpu,
            chunk_rows: DEFAULT_CHUNK_ROWS,
            attention: AttentionImpl::Auto,
            trainable: false,
        }
    }
}

/// Why the engine failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Reading the checkpoint failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A tensor operation failed.
    #[error("{context}: {source}")]
    Candle {
        /// What was being done.
        context: String,
        /// candle's error.
        #[source]
        source: candle_core::Error,
    },
    /// The request does not fit the model.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The caller cancelled the work (`crate::cancel`); it stopped at a chunk boundary.
    #[error("cancelled before it finished")]
    Cancelled,
    /// The model computed NaN or an infinity for this request (weights or activations that
    /// overflow on its tokens): the request's own failure, refused where it is made.
    #[error("{field} at token position {position} is {value}, not finite")]
    NonFinite {
        /// `logprob`, `topk_mean`, `entropy` or `vocab_mean`.
        field: &'static str,
        /// Target position in the request's ids.
        position: usize,
        /// The value.
        value: f32,
    },
}

impl EngineError {
    /// The backend error of this failure, naming the model `model` where a value is at fault.
    pub fn into_backend(self, model: &str) -> BackendError {
        match self {
            EngineError::Invalid(m) => BackendError::Invalid(m),
            EngineError::Cancelled => BackendError::Cancelled,
            EngineError::NonFinite {
                field,
                position,
                value,
            } => BackendError::NonFinite {
                model: model.to_string(),
                field,
                position,
                value,
                detail: None,
            },
            other => BackendError::Failed(other.to_string()),
        }
    }
}

impl From<EngineError> for BackendError {
    fn from(e: EngineError) -> Self {
        e.into_backend("local engine")
    }
}

/// The first non-finite value of `p` at `targets[k]`: `(field, position, value)`.
pub(super) fn first_non_finite(
    p: &PositionLogprobs,
    targets: &[usize],
) -> Option<(&'static str, usize, f32)> {
    let fields = [
        ("logprob", Some(&p.logprob)),
        ("topk_mean", p.topk_mean.as_ref()),
        ("entropy", p.entropy.as_ref()),
        ("vocab_mean", p.vocab_mean.as_ref()),
    ];
    fields.into_iter().find_map(|(name, v)| {
        v.into_iter().flatten().enumerate().find_map(|(k, &x)| {
            (!x.is_finite()).then(|| (name, targets.get(k).copied().unwrap_or(k), x))
        })
    })
}

/// `p`, or the error naming its first non-finite value.
pub(super) fn checked(
    p: PositionLogprobs,
    targets: &[usize],
) -> Result<PositionLogprobs, EngineError> {
    match first_non_finite(&p, targets) {
        None => Ok(p),
        Some((field, position, value)) => Err(EngineError::NonFinite {
            field,
            position,
            value,
        }),
    }
}

pub(super) fn ctx(context: impl Into<String>) -> impl FnOnce(candle_core::Error) -> EngineError {
    let context = context.into();
    move |source| {
        if crate::cancel::cancelled() {
            EngineError::Cancelled
        } else {
            EngineError::Candle { context, source }
        }
    }
}

/// Teacher-forced log-probs from a local checkpoint. The output projection is applied only
/// at the requested positions, in chunks; tokens after the last target are not even run.
#[derive(Debug, Clone)]
pub struct LocalEngine {
    model: DecoderModel,
    fingerprint: String,
    chunk_rows: usize,
}

impl LocalEngine {
    /// Loads checkpoint directory `dir` (see `checkpoint::resolve_model_path` for hub ids).
    pub fn load(dir: &Path, opts: EngineOptions) -> Result<Self, EngineError> {
        let ckpt = Checkpoint::open(dir)?;
        let weights = Box::new(SharedWeights(ckpt.weights.clone()));
        Self::load_from_backend(
            &ckpt,
            weights,
            opts,
            &format!("loading {}", dir.display()),
            |dt, dev| Ok(ckpt.fingerprint(dt, dev)?),
        )
    }

    /// Builds `ckpt`'s model from the tensors `backend` serves (its own weights, or a merge
    /// computed on the fly) and tags it with `fingerprint(dtype, device)`; `what` names the
    /// model in errors.
    pub fn load_from_backend(
        ckpt: &Checkpoint,
        backend: Box<dyn SimpleBackend + 'static>,
        opts: EngineOptions,
        what: &str,
        fingerprint: impl FnOnce(DType, &Device) -> Result<String, EngineError>,
    ) -> Result<Self, EngineError> {
        let device = opts
            .device
            .device()
            .map_err(ctx(format!("opening device {:?}", opts.device)))?;
        let dtype = opts.dtype.dtype();
        let vb = VarBuilder::from_backend(backend, dtype, device.clone());
        let head = ckpt.model_head_prefix().map(|p| vb.pp(p));
        let model = DecoderModel::with_prefixes(
            &ckpt.config,
            vb.pp(&ckpt.body_prefix),
            head,
            ModelOptions {
                trainable: opts.trainable,
                attention: opts.attention,
            },
        )
        .map_err(ctx(what))?;
        let mut fingerprint = fingerprint(dtype, &device)?;
        if opts.trainable {
            fingerprint.push_str(";trainable");
        }
        Ok(Self::from_model(model, fingerprint, opts.chunk_rows))
    }

    /// Wraps an already built model (tests, benchmarks, in-memory models).
    pub fn from_model(model: DecoderModel, fingerprint: String, chunk_rows: usize) -> Self {
        Self {
            model,
            fingerprint,
            chunk_rows: chunk_rows.max(1),
        }
    }

    /// The model.
    pub fn model(&self) -> &DecoderModel {
        &self.model
    }

    /// Sets the output-projection chunk size (rows).
    pub fn set_chunk_rows(&mut self, rows: usize) {
        self.chunk_rows = rows.max(1);
    }

    /// A label of the device in use (`cpu`, `cuda:0`).
    pub fn device_label(&self) -> String {
        device_label(self.model.device())
    }

    /// [`LogprobBackend::score`] with the engine's error type. `cache` holds a computed
    /// prefix of `ids` (its `seq_len()` positions) to continue from, or is empty; it is
    /// extended when it stores. Targets must lie beyond the cached prefix.
    ///
    /// A NaN or infinite value anywhere in the result is [`EngineError::NonFinite`]: no
    /// caller ever receives one.
    pub fn score_from(
        &self,
        ids: &[u32],
        targets: &[usize],
        stats: StatsRequest,
        cache: &mut KvCache,
    ) -> Result<PositionLogprobs, EngineError> {
        let start = cache.seq_len();
        let v = self.model.config().vocab_size;
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= v) {
            return Err(EngineError::Invalid(format!(
                "token id {bad} outside the vocabulary of {v}"
            )));
        }
        if targets.windows(2).any(|w| w[0] > w[1]) {
            return Err(EngineError::Invalid("targets must be ascending".into()));
        }
        if let Some(&t) = targets.iter().find(|&&t| t <= start || t >= ids.len()) {
            return Err(EngineError::Invalid(format!(
                "target position {t} outside {}..{} (positions are >= 1, after the cached prefix, and inside the sequence)",
                start + 1,
                ids.len()
            )));
        }
        let want = stats.distribution_stats;
        let Some(&last) = targets.last() else {
            return Ok(assemble(targets, &[], start, &[], want));
        };
        // Positions whose hidden state predicts a target (deduplicated), relative to `start`.
        let mut rows: Vec<usize> = targets.iter().map(|t| t - 1 - start).collect();
        rows.dedup();
        let input = &ids[start..last];
        let dev = self.model.device();
        let ids_t = Tensor::from_slice(input, (1, input.len()), dev).map_err(ctx("token ids"))?;
        let hidden = self
            .model
            .forward_rows(&ids_t, start, cache, &rows, ids.len())
            .map_err(ctx("forward pass"))?;
        let hidden = hidden.squeeze(0).map_err(ctx("forward pass"))?;
        let row_targets: Vec<u32> = rows.iter().map(|r| ids[start + r + 1]).collect();
        let rs = score_hidden(
            &hidden,
            self.model.lm_head(),
            &row_targets,
            self.model.config().final_softcap,
            want,
            self.chunk_rows,
        )
        .map_err(ctx("output projection"))?;
        checked(assemble(targets, &rows, start, &rs, want), targets)
    }

    /// Rows of the output projection per chunk.
    pub(super) fn chunk_rows(&self) -> usize {
        self.chunk_rows
    }
}

impl LocalEngine {
    /// [`LogprobBackend::score_batch`] with prefix sharing, and how many token positions it
    /// ran versus independent passes would have.
    ///
    /// Requests are visited in lexicographic order of their ids, so sequences sharing a
    /// prefix are neighbours (K continuations of one history, consecutive turns of a
    /// history-rewriting chat template, rollouts with one system prompt). The KV cache of
    /// one request is kept when the next one shares a prefix with it, truncated to the
    /// shared length, but never past `first target − 1`: that position's hidden state is
    /// what predicts the first target, and a cached position has keys and values but no
    /// hidden state. Results come back in request order and equal independent
    /// [`LogprobBackend::score`] calls.
    ///
    /// Memory: the cache holds the keys and values of one sequence (up to its last target)
    /// at a time, and only while the next request can reuse part of it.
    pub fn score_batch_shared(
        &self,
        requests: &[ScoreRequest<'_>],
        stats: StatsRequest,
    ) -> (Vec<Result<PositionLogprobs, EngineError>>, BatchCost) {
        let mut results: Vec<Option<Result<PositionLogprobs, EngineError>>> =
            (0..requests.len()).map(|_| None).collect();
        // Requests without targets need no pass (they are still validated).
        let mut order: Vec<usize> = Vec::with_capacity(requests.len());
        for (i, r) in requests.iter().enumerate() {
            if r.targets.is_empty() {
                let none = &mut KvCache::discarding();
                results[i] = Some(self.score_from(r.ids, r.targets, stats, none));
            } else {
                order.push(i);
            }
        }
        order.sort_by(|&a, &b| requests[a].ids.cmp(requests[b].ids));
        let mut cost = BatchCost::default();
        let mut cache = self.model.new_cache();
        // The ids whose keys and values `cache` holds (its first `seq_len()` positions).
        let mut cached: &[u32] = &[];
        // Runs of requests continuing one prefix are scored as one fan-out batch.
        let groups = self.fanout_groups(requests, &order);
        let mut skip_until = 0;
        for (k, &i) in order.iter().enumerate() {
            if k < skip_until {
                continue;
            }
            if crate::cancel::cancelled() {
                results[i] = Some(Err(EngineError::Cancelled));
                continue;
            }
            if let Some((end, prefix)) = groups[k] {
                skip_until = end;
                let members: Vec<ScoreRequest<'_>> =
                    order[k..end].iter().map(|&j| requests[j]).collect();
                let lasts = members.iter().filter_map(|r| r.targets.last().copied());
                cost.independent_positions += lasts.clone().sum::<usize>();
                cost.computed_positions += prefix + lasts.map(|l| l - prefix).sum::<usize>();
                cost.fanout_requests += members.len();
                match self.score_fanout(&members, prefix, stats) {
                    Ok(rs) => {
                        for (&j, r) in order[k..end].iter().zip(rs) {
                            // A non-finite value is re-checked alone, so it can only ever be
                            // the request's own (see `fanout`'s module docs).
                            let q = requests[j];
                            let r = if first_non_finite(&r, q.targets).is_none() {
                                Ok(r)
                            } else {
                                self.score_from(q.ids, q.targets, stats, &mut KvCache::discarding())
                            };
                            results[j] = Some(r);
                        }
                    }
                    // A failure of the batched pass itself (not of a request: members are
                    // validated): score each member alone, which reports its own error.
                    Err(e) => {
                        tracing::warn!(
                            "fan-out pass failed ({e}); scoring its requests one by one"
                        );
                        for &j in &order[k..end] {
                            let r = requests[j];
                            results[j] = Some(self.score_from(
                                r.ids,
                                r.targets,
                                stats,
                                &mut KvCache::discarding(),
                            ));
                        }
                    }
                }
                cache.clear();
                cached = &[];
                continue;
            }
            let req = requests[i];
            let Some((&first, &last)) = req.targets.first().zip(req.targets.last()) else {
                continue;
            };
            cost.independent_positions += last;
            // Reusable: what the cache and this request share, up to the first target − 1.
            let keep = if self.prefix_reusable(cached.len(), req.ids.len()) {
                common_prefix(cached, req.ids)
                    .min(first.saturating_sub(1))
                    .min(cache.seq_len())
            } else {
                0
            };
            // Keep what this pass computes only when the next request can use some of it.
            let next_in_group = groups.get(k + 1).is_some_and(Option::is_some);
            let next_shares = !next_in_group
                && order.get(k + 1).is_some_and(|&j| {
                    let next = requests[j];
                    next.targets.first().is_some_and(|&f| f > 1)
                        && common_prefix(req.ids, next.ids) > 0
                        && self.prefix_reusable(req.ids.len(), next.ids.len())
                });
            let res = if next_shares || keep > 0 {
                if let Err(e) = cache.truncate(keep) {
                    cache.clear();
                    cached = &[];
                    results[i] = Some(Err(ctx("truncating the KV cache")(e)));
                    continue;
                }
                cost.computed_positions += last - keep;
                let r = self.score_from(req.ids, req.targets, stats, &mut cache);
                if r.is_ok() && next_shares {
                    cached = &req.ids[..cache.seq_len()];
                } else {
                    cache.clear();
                    cached = &[];
                }
                r
            } else {
                cache.clear();
                cached = &[];
                cost.computed_positions += last;
                self.score_from(req.ids, req.targets, stats, &mut KvCache::discarding())
            };
            results[i] = Some(res);
        }
        let results = results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(EngineError::Invalid("request not scored".into()))))
            .collect();
        (results, cost)
    }

    /// Fan-out groups over the sorted `order`: at the index where a group starts,
    /// `Some((end, prefix))` — the requests `order[start..end]` (at least two) all share
    /// `ids[..prefix]` with the first, have every target past it, and pass
    /// [`LocalEngine::fanout_eligible`]. A request joins only while the shared prefix stays at
    /// least [`MIN_FANOUT_PREFIX`] and at least half of what the group shared before it.
    fn fanout_groups(
        &self,
        requests: &[ScoreRequest<'_>],
        order: &[usize],
    ) -> Vec<Option<(usize, usize)>> {
        let mut groups = vec![None; order.len()];
        let mut k = 0;
        while k < order.len() {
            let a = requests[order[k]];
            if !self.fanout_eligible(&a) {
                k += 1;
                continue;
            }
            let mut prefix = a.targets[0] - 1;
            let mut j = k + 1;
            while j < order.len() {
                let b = requests[order[j]];
                if !self.fanout_eligible(&b) || !self.prefix_reusable(a.ids.len(), b.ids.len()) {
                    break;
                }
                let p = prefix
                    .min(common_prefix(a.ids, b.ids))
                    .min(b.targets[0] - 1);
                if p < MIN_FANOUT_PREFIX || 2 * p < prefix {
                    break;
                }
                prefix = p;
                j += 1;
            }
            if j - k >= 2 && prefix >= MIN_FANOUT_PREFIX {
                groups[k] = Some((j, prefix));
                k = j;
            } else {
                k += 1;
            }
        }
        groups
    }

    /// Whether cached positions of a sequence of length `a` are valid for one of length `b`.
    /// Only LongRoPE makes them differ: it picks its factors from the whole sequence length
    /// (see `DecoderModel::forward_rows`), so both must fall on the same side of the
    /// original context.
    fn prefix_reusable(&self, a: usize, b: usize) -> bool {
        self.model.config().ropes.iter().all(|r| match &r.scaling {
            RopeScaling::LongRope {
                original_max_position_embeddings: o,
                ..
            } => (a > *o) == (b > *o),
            _ => true,
        })
    }
}

/// The output for `targets` from the statistics `rs` of the hidden rows `rows` (deduplicated,
/// ascending, relative to `start`: row `r` predicts position `start + r + 1`).
pub(super) fn assemble(
    targets: &[usize],
    rows: &[usize],
    start: usize,
    rs: &[RowStats],
    want: bool,
) -> PositionLogprobs {
    let mut out = PositionLogprobs::with_capacity(
        targets.len(),
        StatsRequest {
            distribution_stats: want,
        },
    );
    let mut ri = 0;
    for &t in targets {
        while rows[ri] + start + 1 != t {
            ri += 1;
        }
        let r = rs[ri];
        out.push(r.logprob, r.topk_mean, r.entropy, r.vocab_mean);
    }
    out
}

/// Token positions a batch ran through the model, versus independent passes (each up to
/// its last target).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchCost {
    /// Positions actually computed.
    pub computed_positions: usize,
    /// Positions independent `score` calls would compute.
    pub independent_positions: usize,
    /// Requests scored in batched fan-out passes (continuations of one shared prefix).
    pub fanout_requests: usize,
}

/// Length of the longest common prefix of two id sequences.
fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl LogprobBackend for LocalEngine {
    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn vocab_size(&self) -> usize {
        self.model.config().vocab_size
    }

    fn score(
        &self,
        ids: &[u32],
        targets: &[usize],
        stats: StatsRequest,
    ) -> Result<PositionLogprobs, BackendError> {
        self.score_from(ids, targets, stats, &mut KvCache::discarding())
            .map_err(|e| e.into_backend(&self.fingerprint))
    }

    fn score_batch(
        &self,
        requests: &[ScoreRequest<'_>],
        stats: StatsRequest,
    ) -> Vec<Result<PositionLogprobs, BackendError>> {
        let (results, cost) = self.score_batch_shared(requests, stats);
        tracing::debug!(
            requests = requests.len(),
            computed = cost.computed_positions,
            independent = cost.independent_positions,
            "scored a batch with shared prefixes"
        );
        results
            .into_iter()
            .map(|r| r.map_err(|e| e.into_backend(&self.fingerprint)))
            .collect()
    }
}
