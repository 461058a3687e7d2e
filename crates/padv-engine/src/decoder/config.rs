//! The resolved decoder configuration: one struct, no Options, that says everything in which
//! the supported families differ. `checkpoint::resolve` fills it from a `config.json`; tests
//! and benchmarks may build it directly.

/// The model families the decoder implements (each parity-tested against transformers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Llama 2/3.x (`llama`).
    Llama,
    /// Qwen2 / Qwen2.5 (`qwen2`): q/k/v bias.
    Qwen2,
    /// Qwen3 (`qwen3`): per-head q/k RMSNorm.
    Qwen3,
    /// Mistral (`mistral`): sliding window on every layer.
    Mistral,
    /// Gemma 2 (`gemma2`).
    Gemma2,
    /// Gemma 3 text (`gemma3_text`, or `gemma3` with a `text_config`).
    Gemma3,
    /// OLMo 2 (`olmo2`): norms after attention/MLP outputs.
    Olmo2,
    /// Phi-3 / Phi-3.5 / Phi-4-mini (`phi3`): fused projections, longrope.
    Phi3,
}

impl Family {
    /// The `model_type` string of the family.
    pub fn model_type(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Qwen2 => "qwen2",
            Family::Qwen3 => "qwen3",
            Family::Mistral => "mistral",
            Family::Gemma2 => "gemma2",
            Family::Gemma3 => "gemma3_text",
            Family::Olmo2 => "olmo2",
            Family::Phi3 => "phi3",
        }
    }
}

/// MLP activation (applied to the gate, multiplied by the up projection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// x·σ(x) (`silu`).
    Silu,
    /// The tanh approximation of GELU (`gelu_pytorch_tanh`).
    GeluTanh,
    /// Exact (erf) GELU (`gelu`).
    GeluErf,
}

/// Normalisation of queries and keys before RoPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QkNorm {
    /// None (Llama, Qwen2, Mistral, Gemma 2, Phi-3).
    None,
    /// RMSNorm over each head's `head_dim` values (Qwen3, Gemma 3).
    PerHead,
    /// RMSNorm over all query heads together, and over all key heads together (OLMo 2).
    Full,
}

/// Where the block norms sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormPlacement {
    /// `x + f(norm(x))` (Llama and most).
    Pre,
    /// `x + post_norm(f(pre_norm(x)))` (Gemma 2/3).
    Sandwich,
    /// `x + norm(f(x))` (OLMo 2).
    Post,
}

/// How the rotary frequencies are derived from the base.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// Plain RoPE.
    None,
    /// Frequencies divided by `factor` (position interpolation).
    Linear {
        /// Divisor.
        factor: f64,
    },
    /// Llama 3.1 band-wise scaling.
    Llama3 {
        /// Divisor for the low-frequency band.
        factor: f64,
        /// Band edge.
        low_freq_factor: f64,
        /// Band edge.
        high_freq_factor: f64,
        /// Pretraining context length.
        original_max_position_embeddings: usize,
    },
    /// Phi-3 LongRoPE: per-frequency factors, `long` once the sequence exceeds the original
    /// context, and cos/sin multiplied by `attention_factor`.
    LongRope {
        /// Factors for sequences within the original context (length `rotary_dim / 2`).
        short_factor: Vec<f64>,
        /// Factors for longer sequences.
        long_factor: Vec<f64>,
        /// Pretraining context length.
        original_max_position_embeddings: usize,
        /// Multiplier of cos and sin.
        attention_factor: f64,
    },
}

/// One rotary embedding; several layers may share it.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeSpec {
    /// Base θ.
    pub theta: f64,
    /// Number of leading dims of each head that are rotated (even; `head_dim` unless partial).
    pub rotary_dim: usize,
    /// Frequency scaling.
    pub scaling: RopeScaling,
}

/// What differs between layers.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSpec {
    /// A query at position i attends keys j with `i - window < j <= i`; None: all `j <= i`.
    pub sliding_window: Option<usize>,
    /// Index into [`DecoderConfig::ropes`].
    pub rope: usize,
}

/// Everything the decoder needs to know about a model, resolved (no Options to default).
#[derive(Debug, Clone, PartialEq)]
pub struct DecoderConfig {
    /// Family (decides tensor names and the few switches below).
    pub family: Family,
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: usize,
    /// Model width H.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Number of query heads.
    pub num_heads: usize,
    /// Number of key/value heads (divides `num_heads`).
    pub num_kv_heads: usize,
    /// Per-head width.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// MLP activation.
    pub activation: Activation,
    /// Bias on q/k/v projections.
    pub qkv_bias: bool,
    /// Bias on the output projection.
    pub o_bias: bool,
    /// Bias on the MLP projections.
    pub mlp_bias: bool,
    /// Query/key normalisation.
    pub qk_norm: QkNorm,
    /// Block norm placement.
    pub norm_placement: NormPlacement,
    /// Gemma's RMSNorm multiplies by `1 + w` instead of `w`.
    pub norm_unit_offset: bool,
    /// Embeddings are multiplied by this (Gemma: √H, rounded to the model dtype).
    pub embed_scale: Option<f64>,
    /// Attention logits are `q·k · attn_scale` (usually `head_dim^-0.5`).
    pub attn_scale: f64,
    /// Attention logits soft-capped as `c·tanh(s/c)` (Gemma 2).
    pub attn_softcap: Option<f64>,
    /// Output logits soft-capped as `c·tanh(z/c)` (Gemma 2).
    pub final_softcap: Option<f64>,
    /// The checkpoint stores q/k/v as one `qkv_proj` (Phi-3).
    pub fused_qkv: bool,
    /// The checkpoint stores gate and up as one `gate_up_proj` (Phi-3).
    pub fused_gate_up: bool,
    /// The output projection is the embedding matrix.
    pub tie_embeddings: bool,
    /// Distinct rotary embeddings.
    pub ropes: Vec<RopeSpec>,
    /// One entry per decoder layer.
    pub layers: Vec<LayerSpec>,
}

impl DecoderConfig {
    /// Number of decoder layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Checks the internal consistency the decoder relies on; the message names the field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_attention_heads", self.num_heads),
            ("num_key_value_heads", self.num_kv_heads),
            ("head_dim", self.head_dim),
            ("num_hidden_layers", self.layers.len()),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err((name, "must be positive".into()));
            }
        }
        if self.num_heads.checked_rem(self.num_kv_heads) != Some(0) {
            return Err((
                "num_key_value_heads",
                format!(
                    "{} does not divide num_attention_heads {}",
                    self.num_kv_heads, self.num_heads
                ),
            ));
        }
        for (i, rope) in self.ropes.iter().enumerate() {
            if rope.rotary_dim == 0 || rope.rotary_dim % 2 != 0 || rope.rotary_dim > self.head_dim {
                return Err((
                    "partial_rotary_factor",
                    format!(
                        "rotary dim {} of rope {i} must be even and within head_dim {}",
                        rope.rotary_dim, self.head_dim
                    ),
                ));
            }
            if !(rope.theta.is_finite() && rope.theta > 0.0) {
                return Err((
                    "rope_theta",
                    format!("{} is not a positive number", rope.theta),
                ));
            }
            if let RopeScaling::LongRope {
                short_factor,
                long_factor,
                ..
            } = &rope.scaling
            {
                for (name, f) in [("short_factor", short_factor), ("long_factor", long_factor)] {
                    if f.len() != rope.rotary_dim / 2 {
                        return Err((
                            name,
                            format!("has {} entries, expected {}", f.len(), rope.rotary_dim / 2),
                        ));
                    }
                }
            }
        }
        for (i, l) in self.layers.iter().enumerate() {
            if l.rope >= self.ropes.len() {
                return Err(("layer_types", format!("layer {i} refers to a missing rope")));
            }
            if l.sliding_window == Some(0) {
                return Err(("sliding_window", "must be positive".into()));
            }
        }
        Ok(())
    }
}
