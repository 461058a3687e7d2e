//! Loading a local Hugging Face checkpoint directory.
//!
//! - [`resolve_model_path`]: a directory, or `org/name` found offline in the hub cache.
//! - [`RawConfig`] (the `config.json` as written) -> [`resolve()`] -> [`DecoderConfig`].
//! - [`Weights`]: `model.safetensors` or a sharded `model.safetensors.index.json`, f32/bf16/f16
//!   files, served to candle's `VarBuilder` in the compute dtype the caller picks.
//! - [`Checkpoint`]: all of the above, plus the tensor-name prefix (Gemma 3 multimodal
//!   checkpoints nest the language model) and a fingerprint for caches.

mod content_hash;
mod error;
mod hub;
mod raw;
mod resolve;
mod rope_params;
mod usage;
mod weights;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use padv_core::fingerprint::Fnv64;

pub(crate) use content_hash::file_digests;
pub use error::{CheckpointError, Result};
pub use hub::{hub_cache_dirs, resolve_model_path, resolve_model_path_in};
pub use raw::{RawConfig, Tristate};
pub use resolve::resolve;
pub(crate) use weights::{candle_dtype, open_safetensors, SafetensorsFile};
pub use weights::{weight_files, SharedWeights, Weights};

use crate::decoder::DecoderConfig;

/// Bumped whenever a code change could change the numbers for the same weights, so cached
/// log-probs computed by an older engine are not reused.
const NUMERICS_VERSION: u32 = 1;

/// Reads and parses `config.json` of `dir`.
pub fn read_raw_config(dir: &Path) -> Result<(RawConfig, Vec<u8>)> {
    let path = dir.join("config.json");
    let bytes = std::fs::read(&path).map_err(|source| CheckpointError::Io {
        path: path.clone(),
        source,
    })?;
    let raw =
        serde_json::from_slice(&bytes).map_err(|source| CheckpointError::Json { path, source })?;
    Ok((raw, bytes))
}

/// An opened checkpoint directory: resolved config and lazily read weights.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The directory.
    pub dir: PathBuf,
    /// The resolved configuration (with `tie_embeddings` forced on when the checkpoint has no
    /// output projection).
    pub config: DecoderConfig,
    /// The weights.
    pub weights: Arc<Weights>,
    /// Prefix of the decoder body's tensors, without the trailing dot (`model`, or
    /// `model.language_model` / `language_model.model` for multimodal Gemma 3).
    pub body_prefix: String,
    /// Name prefix of the output projection (`lm_head`), when the checkpoint has one.
    pub head_prefix: Option<String>,
    config_bytes: Vec<u8>,
}

impl Checkpoint {
    /// Opens `dir`: parses and resolves `config.json`, reads the safetensors headers, and
    /// checks that the stored tensors are exactly those the config describes (names and
    /// shapes; a tensor missing or stored but unused is an error naming them).
    pub fn open(dir: &Path) -> Result<Self> {
        let (raw, config_bytes) = read_raw_config(dir)?;
        let config = resolve(&raw, &dir.join("config.json"))?;
        let ckpt = Self::with_weights(dir, config, config_bytes)?;
        usage::check_tensor_set(&ckpt, &[])?;
        Ok(ckpt)
    }

    /// Opens a sequence-classification checkpoint (`*ForSequenceClassification`: the decoder
    /// body and a `score.weight` head of `[num_labels, hidden]`, no output projection).
    /// Returns it with the number of labels; the tensor set is checked with the head
    /// included. The decoder's own output projection is the (unused) embedding matrix.
    pub fn open_classifier(dir: &Path) -> Result<(Self, usize)> {
        let (raw, config_bytes) = read_raw_config(dir)?;
        let path = dir.join("config.json");
        let archs = raw.architectures.clone().unwrap_or_default();
        if !archs
            .iter()
            .any(|a| a.ends_with("ForSequenceClassification"))
        {
            return Err(CheckpointError::InvalidField {
                path,
                field: "architectures".into(),
                reason: format!(
                    "{archs:?} is not a sequence-classification model (expected a \
                     *ForSequenceClassification class, e.g. Qwen2ForSequenceClassification)"
                ),
            });
        }
        let mut config = resolve(&raw, &path)?;
        config.tie_embeddings = true;
        let ckpt = Self::with_weights(dir, config, config_bytes)?;
        let head = "score.weight";
        let Some(shape) = ckpt.weights.shape(head).map(<[usize]>::to_vec) else {
            return Err(CheckpointError::MissingTensor {
                dir: dir.to_path_buf(),
                name: head.into(),
            });
        };
        let labels = raw
            .num_labels
            .or_else(|| raw.id2label.as_ref().map(|m| m.len()))
            .unwrap_or(shape[0]);
        let expected = vec![labels, ckpt.config.hidden_size];
        if shape != expected {
            return Err(CheckpointError::ShapeMismatch {
                path: ckpt.weights.file_of(head).unwrap_or(dir).to_path_buf(),
                name: head.into(),
                found: shape,
                expected,
            });
        }
        usage::check_tensor_set(&ckpt, &[(head.to_string(), expected)])?;
        Ok((ckpt, labels))
    }

    /// The checkpoint around `config`: weight headers and tensor-name prefixes (no check of
    /// the tensor set yet).
    fn with_weights(dir: &Path, mut config: DecoderConfig, config_bytes: Vec<u8>) -> Result<Self> {
        let weights = Weights::open(dir)?;
        let body_prefix = ["model", "model.language_model", "language_model.model"]
            .into_iter()
            .find(|p| weights.contains(&format!("{p}.embed_tokens.weight")))
            .ok_or_else(|| CheckpointError::MissingTensor {
                dir: dir.to_path_buf(),
                name: "model.embed_tokens.weight".into(),
            })?
            .to_string();
        let head_prefix = ["lm_head", "language_model.lm_head"]
            .into_iter()
            .find(|p| weights.contains(&format!("{p}.weight")))
            .map(str::to_string);
        if head_prefix.is_none() && !config.tie_embeddings {
            tracing::warn!(
                "{}: no lm_head.weight; using the embedding matrix as output projection",
                dir.display()
            );
            config.tie_embeddings = true;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            weights: Arc::new(weights),
            body_prefix,
            head_prefix,
            config_bytes,
        })
    }

    /// The raw `config.json` bytes.
    pub fn config_bytes(&self) -> &[u8] {
        &self.config_bytes
    }

    /// The prefix of the output projection the model reads: None when the embeddings are
    /// tied (a stored `lm_head.weight` is then ignored, see [`Checkpoint::open`]'s checks).
    pub fn model_head_prefix(&self) -> Option<&str> {
        self.head_prefix
            .as_deref()
            .filter(|_| !self.config.tie_embeddings)
    }

    /// A `VarBuilder` over the whole checkpoint, converting every tensor to `dtype` on
    /// `device` as it is read.
    pub fn var_builder(&self, dtype: DType, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(
            Box::new(SharedWeights(self.weights.clone())),
            dtype,
            device.clone(),
        )
    }

    /// A stable string that changes whenever the numbers could: config, every byte of every
    /// weight file (see `content_hash`: headers alone cannot tell two RL steps apart), compute
    /// dtype, device and the engine's numerics version. The weight files' names are not part
    /// of it, and neither is the directory: a copy elsewhere shares cache entries.
    ///
    /// Reads all weight files once (in parallel chunks; a few GB/s once they are in the page
    /// cache, which loading the model has just done).
    pub fn fingerprint(&self, dtype: DType, device: &Device) -> Result<String> {
        let files: Vec<(PathBuf, u64)> = self
            .weights
            .file_summaries()
            .map(|(path, size, _)| (path.to_path_buf(), size))
            .collect();
        let digests = content_hash::file_digests(&files)?;
        let mut h = Fnv64::new();
        h.write_part(&NUMERICS_VERSION.to_le_bytes());
        h.write_part(&self.config_bytes);
        for digest in digests {
            h.write_part(&digest.to_le_bytes());
        }
        let device = device_label(device);
        h.write_part(dtype.as_str().as_bytes());
        h.write_part(device.as_bytes());
        Ok(format!(
            "padv-local/{}/{}/{}/{}",
            self.config.family.model_type(),
            dtype.as_str(),
            device,
            h.hex()
        ))
    }
}

/// `cpu`, `cuda:0`, `metal:0`.
pub fn device_label(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}
