//! The tiny LM agent: a Llama-style decoder of a few hundred thousand parameters over the
//! gym's character alphabet, initialised from a seed and saved as an ordinary Hugging Face
//! checkpoint directory (`config.json`, `model.safetensors`, the tokenizer files), so that
//! `padv score`, `padv render` and transformers load it like any real checkpoint.
//!
//! Training keeps the parameters in a candle [`VarMap`] whose names are the HF tensor names
//! (`model.layers.0.self_attn.q_proj.weight`, ...), so saving is a plain safetensors dump and
//! loading is [`VarMap::load`] after the variables were created by building the model.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use padv_core::eval::SplitMix64;
use padv_engine::checkpoint::{resolve, CheckpointError, RawConfig};
use padv_engine::decoder::{AttentionImpl, DecoderConfig, DecoderModel, ModelOptions};
use padv_engine::tokenize::{TextTokenizer, TokenizeError};
use serde::{Deserialize, Serialize};

/// Everything the agent side of the gym (models, sampling, training, demo) can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file could not be read or written.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// A tensor operation failed.
    #[error("{context}: {source}")]
    Candle {
        /// What was being done.
        context: String,
        /// candle's error.
        #[source]
        source: candle_core::Error,
    },
    /// The checkpoint directory is not loadable.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Tokenising or rendering failed.
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    /// The world side (environment, tokenizer files, ground truth) failed.
    #[error(transparent)]
    World(#[from] crate::GymError),
    /// A value is out of range or two inputs disagree.
    #[error("{0}")]
    Invalid(String),
}

/// Result alias of the agent side.
pub type Result<T, E = AgentError> = std::result::Result<T, E>;

/// Wraps a candle error with what was being done.
pub(crate) fn ctx(context: impl Into<String>) -> impl FnOnce(candle_core::Error) -> AgentError {
    let context = context.into();
    move |source| AgentError::Candle { context, source }
}

/// Shape of the tiny decoder. Defaults: width 64, 3 layers, 4 query / 2 key-value heads of
/// width 16, MLP width 256, tied embeddings: about 0.2 M parameters, enough to read a
/// one-line observation and emit a move phrase, small enough to train in minutes on 2 cores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentConfig {
    /// Vocabulary size (the tokenizer's, special tokens included).
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Number of decoder blocks.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads (divides `num_heads`).
    pub num_kv_heads: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Longest sequence the model is meant for (written to `config.json`).
    pub max_position_embeddings: usize,
    /// RoPE base.
    pub rope_theta: f64,
    /// Share the embedding matrix with the output projection.
    pub tie_embeddings: bool,
}

impl AgentConfig {
    /// The default tiny shape for a vocabulary of `vocab_size` tokens.
    pub fn tiny(vocab_size: usize) -> Self {
        AgentConfig {
            vocab_size,
            hidden_size: 64,
            num_layers: 3,
            num_heads: 4,
            num_kv_heads: 2,
            intermediate_size: 256,
            max_position_embeddings: 2048,
            rope_theta: 10_000.0,
            tie_embeddings: true,
        }
    }

    /// The Hugging Face `config.json` of a `LlamaForCausalLM` of this shape.
    pub fn config_json(&self, tok: &TextTokenizer) -> serde_json::Value {
        let special = tok.special_tokens();
        let id = |t: &Option<String>| t.as_deref().and_then(|t| tok.inner().token_to_id(t));
        serde_json::json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.hidden_size / self.num_heads.max(1),
            "hidden_act": "silu",
            "max_position_embeddings": self.max_position_embeddings,
            "rms_norm_eps": 1e-6,
            "rope_theta": self.rope_theta,
            "rope_scaling": null,
            "tie_word_embeddings": self.tie_embeddings,
            "attention_bias": false,
            "mlp_bias": false,
            "bos_token_id": id(&special.bos_token),
            "eos_token_id": id(&special.eos_token),
            "pad_token_id": id(&special.pad_token),
            "torch_dtype": "float32",
        })
    }

    /// The decoder configuration, resolved by the engine's own `config.json` resolver so that
    /// training and loading can never disagree about the architecture.
    pub fn decoder_config(&self, tok: &TextTokenizer) -> Result<DecoderConfig> {
        if self.num_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_heads)
            || self.num_kv_heads == 0
            || !self.num_heads.is_multiple_of(self.num_kv_heads)
        {
            return Err(AgentError::Invalid(format!(
                "agent config: hidden {} / heads {} / kv heads {} do not divide",
                self.hidden_size, self.num_heads, self.num_kv_heads
            )));
        }
        let json = self.config_json(tok);
        let raw: RawConfig = serde_json::from_value(json).map_err(|source| AgentError::Json {
            path: PathBuf::from("<agent config.json>"),
            source,
        })?;
        Ok(resolve(&raw, Path::new("<agent config.json>"))?)
    }
}

/// A trainable agent: its shape, the resolved decoder config and the parameters.
#[derive(Clone)]
pub struct Agent {
    /// Shape.
    pub config: AgentConfig,
    /// Resolved decoder configuration.
    pub decoder: DecoderConfig,
    /// Parameters under their HF names.
    pub varmap: VarMap,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("config", &self.config)
            .field("parameters", &self.num_parameters())
            .finish()
    }
}

impl Agent {
    /// A freshly initialised agent, deterministic for `seed`: weight matrices
    /// N(0, 0.02²)-like (SplitMix64's approximate Gaussian), norm weights 1. Variables are
    /// visited in name order so the values do not depend on hash-map iteration order.
    pub fn init(config: &AgentConfig, tok: &TextTokenizer, seed: u64) -> Result<Self> {
        let decoder = config.decoder_config(tok)?;
        let varmap = VarMap::new();
        build(&decoder, &varmap, true)?;
        let mut rng = SplitMix64::new(seed);
        let data = varmap
            .data()
            .lock()
            .map_err(|_| AgentError::Invalid("parameter map lock poisoned".into()))?;
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        for name in names {
            let var = &data[name];
            let shape = var.as_tensor().shape().clone();
            let n = shape.elem_count();
            let values: Vec<f32> = if name.ends_with("norm.weight") {
                vec![1.0; n]
            } else {
                (0..n)
                    .map(|_| (0.02 * rng.next_gaussian_approx()) as f32)
                    .collect()
            };
            let t = Tensor::from_vec(values, shape, &Device::Cpu).map_err(ctx(name.clone()))?;
            var.set(&t).map_err(ctx(format!("initialising {name}")))?;
        }
        drop(data);
        Ok(Agent {
            config: config.clone(),
            decoder,
            varmap,
        })
    }

    /// Loads a checkpoint directory written by [`Agent::save`] for further training.
    pub fn load(dir: &Path, tok: &TextTokenizer) -> Result<Self> {
        let path = dir.join(AGENT_CONFIG_FILE);
        let bytes = std::fs::read(&path).map_err(|source| AgentError::Io {
            path: path.clone(),
            source,
        })?;
        let config: AgentConfig =
            serde_json::from_slice(&bytes).map_err(|source| AgentError::Json { path, source })?;
        let decoder = config.decoder_config(tok)?;
        let varmap = VarMap::new();
        build(&decoder, &varmap, true)?;
        let weights = dir.join("model.safetensors");
        let mut varmap = varmap;
        varmap
            .load(&weights)
            .map_err(ctx(format!("loading {}", weights.display())))?;
        Ok(Agent {
            config,
            decoder,
            varmap,
        })
    }

    /// The differentiable model over this agent's variables (gradients flow into them).
    pub fn trainable_model(&self) -> Result<DecoderModel> {
        build(&self.decoder, &self.varmap, true)
    }

    /// The fast inference model over a snapshot of the current parameters (fused
    /// projections, CPU kernels); used for sampling.
    pub fn inference_model(&self) -> Result<DecoderModel> {
        build(&self.decoder, &self.varmap, false)
    }

    /// Number of parameters.
    pub fn num_parameters(&self) -> usize {
        self.varmap
            .all_vars()
            .iter()
            .map(|v| v.as_tensor().elem_count())
            .sum()
    }

    /// The parameters as name-sorted `(name, f32 values)`: what the determinism test
    /// compares byte for byte.
    pub fn parameters(&self) -> Result<Vec<(String, Vec<f32>)>> {
        let data = self
            .varmap
            .data()
            .lock()
            .map_err(|_| AgentError::Invalid("parameter map lock poisoned".into()))?;
        let mut out = Vec::with_capacity(data.len());
        for (name, var) in data.iter() {
            let v = var
                .as_tensor()
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(ctx(format!("reading {name}")))?;
            out.push((name.clone(), v));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Writes a Hugging Face checkpoint directory: `config.json`, `model.safetensors` (HF
    /// tensor names, f32), [`AGENT_CONFIG_FILE`], and the tokenizer files copied from
    /// `tok.dir()`. Each file is written to a temporary name and renamed into place.
    pub fn save(&self, dir: &Path, tok: &TextTokenizer) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|source| AgentError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        write_json(&dir.join("config.json"), &self.config.config_json(tok))?;
        write_json(
            &dir.join(AGENT_CONFIG_FILE),
            &serde_json::to_value(&self.config).map_err(|source| AgentError::Json {
                path: dir.join(AGENT_CONFIG_FILE),
                source,
            })?,
        )?;
        let tensors: HashMap<String, Tensor> = {
            let data = self
                .varmap
                .data()
                .lock()
                .map_err(|_| AgentError::Invalid("parameter map lock poisoned".into()))?;
            data.iter()
                .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
                .collect()
        };
        let path = dir.join("model.safetensors");
        let tmp = tmp_path(&path);
        candle_core::safetensors::save(&tensors, &tmp)
            .map_err(ctx(format!("writing {}", tmp.display())))?;
        rename(&tmp, &path)?;
        for name in TOKENIZER_FILES {
            let src = tok.dir().join(name);
            if src.exists() && tok.dir() != dir {
                let bytes = std::fs::read(&src).map_err(|source| AgentError::Io {
                    path: src.clone(),
                    source,
                })?;
                write_bytes(&dir.join(name), &bytes)?;
            }
        }
        Ok(())
    }
}

/// The agent's own shape file next to `config.json` (the HF config does not say everything
/// back: e.g. tying is implied by a missing `lm_head`).
pub const AGENT_CONFIG_FILE: &str = "padv_agent.json";

/// Tokenizer files copied into every checkpoint directory.
pub const TOKENIZER_FILES: [&str; 4] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
];

fn build(cfg: &DecoderConfig, varmap: &VarMap, trainable: bool) -> Result<DecoderModel> {
    // Inference must run on detached copies: candle records the op graph of anything computed
    // from a `Var`, so a sampler built on the variables would keep every KV-cache
    // concatenation of a rollout alive (memory quadratic in the episode length: the demo ran
    // out of 23 GB on 128 rollouts).
    let vb = if trainable {
        VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu)
    } else {
        let data = varmap
            .data()
            .lock()
            .map_err(|_| AgentError::Invalid("the agent's parameter map is poisoned".into()))?;
        let tensors: std::collections::HashMap<String, candle_core::Tensor> = data
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
            .collect();
        VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu)
    };
    let opts = ModelOptions {
        trainable,
        attention: if trainable {
            AttentionImpl::Full
        } else {
            AttentionImpl::Auto
        },
    };
    DecoderModel::new(cfg, vb, opts).map_err(ctx("building the agent model"))
}

pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

pub(crate) fn rename(tmp: &Path, path: &Path) -> Result<()> {
    std::fs::rename(tmp, path).map_err(|source| AgentError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to `path` atomically (temporary file + rename).
pub(crate) fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    std::fs::write(&tmp, bytes).map_err(|source| AgentError::Io {
        path: tmp.clone(),
        source,
    })?;
    rename(&tmp, path)
}

/// Writes pretty JSON to `path` atomically.
pub(crate) fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| AgentError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    bytes.push(b'\n');
    write_bytes(path, &bytes)
}
