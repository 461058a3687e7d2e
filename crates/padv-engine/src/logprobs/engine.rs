//! [`LocalEngine`]: a checkpoint on candle behind `padv_core::LogprobBackend`.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use padv_core::{BackendError, LogprobBackend, PositionLogprobs, StatsRequest};

use super::head::{score_hidden, DEFAULT_CHUNK_ROWS};
use crate::checkpoint::{device_label, Checkpoint, CheckpointError};
use crate::decoder::{AttentionImpl, DecoderModel, KvCache, ModelOptions};

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
}

impl From<EngineError> for BackendError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Invalid(m) => BackendError::Invalid(m),
            other => BackendError::Failed(other.to_string()),
        }
    }
}

fn ctx(context: impl Into<String>) -> impl FnOnce(candle_core::Error) -> EngineError {
    let context = context.into();
    move |source| EngineError::Candle { context, source }
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
        let device = opts
            .device
            .device()
            .map_err(ctx(format!("opening device {:?}", opts.device)))?;
        let dtype = opts.dtype.dtype();
        let vb = ckpt.var_builder(dtype, &device);
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
        .map_err(ctx(format!("loading {}", dir.display())))?;
        let mut fingerprint = ckpt.fingerprint(dtype, &device)?;
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
        let mut out = PositionLogprobs {
            logprob: Vec::with_capacity(targets.len()),
            topk_mean: want.then(|| Vec::with_capacity(targets.len())),
            entropy: want.then(|| Vec::with_capacity(targets.len())),
            vocab_mean: want.then(|| Vec::with_capacity(targets.len())),
        };
        let Some(&last) = targets.last() else {
            return Ok(out);
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
        let mut ri = 0;
        for &t in targets {
            while rows[ri] + start + 1 != t {
                ri += 1;
            }
            let r = rs[ri];
            out.logprob.push(r.logprob);
            if let (Some(a), Some(b), Some(c)) =
                (&mut out.topk_mean, &mut out.entropy, &mut out.vocab_mean)
            {
                a.push(r.topk_mean);
                b.push(r.entropy);
                c.push(r.vocab_mean);
            }
        }
        Ok(out)
    }
}

impl LogprobBackend for LocalEngine {
    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn vocab_size(&self) -> usize {
        self.model.config().vocab_size
    }

    fn score(
        &mut self,
        ids: &[u32],
        targets: &[usize],
        stats: StatsRequest,
    ) -> Result<PositionLogprobs, BackendError> {
        Ok(self.score_from(ids, targets, stats, &mut KvCache::discarding())?)
    }
}
