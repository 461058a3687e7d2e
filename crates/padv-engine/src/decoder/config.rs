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
        self.traits().model_type
    }

    /// Everything in which the family differs, from one exhaustive match: adding a family
    /// does not compile until every behaviour below is decided for it (no `_ =>` default
    /// anywhere in `checkpoint/` or `decoder/` may pick one silently).
    pub fn traits(self) -> FamilyTraits {
        use Family::*;
        // transformers' class defaults, per family.
        let base = FamilyTraits {
            model_type: "",
            default_num_kv_heads: None,
            default_head_dim: None,
            default_rms_norm_eps: 1e-6,
            gemma_conventions: false,
            attention_bias: BiasRule::FromConfig,
            mlp_bias_from_config: false,
            qk_norm: QkNorm::None,
            norm_placement: NormPlacement::Pre,
            softcaps: SoftcapRule::Absent,
            fused_projections: false,
            default_sliding_window: None,
            sliding_layers: SlidingLayers::Never,
            rope: RopeRule::Single,
        };
        match self {
            Llama => FamilyTraits {
                model_type: "llama",
                mlp_bias_from_config: true,
                ..base
            },
            Qwen2 => FamilyTraits {
                model_type: "qwen2",
                default_num_kv_heads: Some(32),
                attention_bias: BiasRule::QkvOnly,
                default_sliding_window: Some(4096),
                sliding_layers: SlidingLayers::QwenFromMaxWindowLayers,
                ..base
            },
            Qwen3 => FamilyTraits {
                model_type: "qwen3",
                default_num_kv_heads: Some(32),
                default_head_dim: Some(128),
                qk_norm: QkNorm::PerHead,
                default_sliding_window: Some(4096),
                sliding_layers: SlidingLayers::QwenFromMaxWindowLayers,
                ..base
            },
            Mistral => FamilyTraits {
                model_type: "mistral",
                default_num_kv_heads: Some(8),
                attention_bias: BiasRule::None,
                default_sliding_window: Some(4096),
                sliding_layers: SlidingLayers::AllWhenWindowed,
                ..base
            },
            Gemma2 => FamilyTraits {
                model_type: "gemma2",
                default_num_kv_heads: Some(4),
                default_head_dim: Some(256),
                gemma_conventions: true,
                norm_placement: NormPlacement::Sandwich,
                softcaps: SoftcapRule::Read {
                    attn: Some(50.0),
                    final_logits: Some(30.0),
                },
                default_sliding_window: Some(4096),
                sliding_layers: SlidingLayers::EvenIndexed,
                ..base
            },
            Gemma3 => FamilyTraits {
                model_type: "gemma3_text",
                default_num_kv_heads: Some(4),
                default_head_dim: Some(256),
                gemma_conventions: true,
                qk_norm: QkNorm::PerHead,
                norm_placement: NormPlacement::Sandwich,
                softcaps: SoftcapRule::Read {
                    attn: None,
                    final_logits: None,
                },
                default_sliding_window: Some(4096),
                sliding_layers: SlidingLayers::Pattern { default: 6 },
                rope: RopeRule::LocalAndGlobal,
                ..base
            },
            Olmo2 => FamilyTraits {
                model_type: "olmo2",
                default_rms_norm_eps: 1e-5,
                qk_norm: QkNorm::Full,
                norm_placement: NormPlacement::Post,
                ..base
            },
            Phi3 => FamilyTraits {
                model_type: "phi3",
                default_rms_norm_eps: 1e-5,
                attention_bias: BiasRule::None,
                fused_projections: true,
                sliding_layers: SlidingLayers::AllWhenWindowed,
                rope: RopeRule::Phi3LongRope,
                ..base
            },
        }
    }
}

/// The per-family table behind [`Family::traits`]: defaults transformers' config classes
/// apply when a field is absent, and the architectural switches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FamilyTraits {
    /// The `model_type` string.
    pub model_type: &'static str,
    /// `num_key_value_heads` when absent (None: `num_attention_heads`).
    pub default_num_kv_heads: Option<usize>,
    /// `head_dim` when absent (None: `hidden_size / num_attention_heads`).
    pub default_head_dim: Option<usize>,
    /// `rms_norm_eps` when absent.
    pub default_rms_norm_eps: f64,
    /// Gemma's conventions: activation from `hidden_activation` (default
    /// `gelu_pytorch_tanh`), `(1 + w)` norms, embeddings scaled by √H, attention scale from
    /// `query_pre_attn_scalar` (default 256), tied embeddings by default.
    pub gemma_conventions: bool,
    /// Which attention projections have a bias.
    pub attention_bias: BiasRule,
    /// The MLP bias follows `mlp_bias` (else never).
    pub mlp_bias_from_config: bool,
    /// Query/key normalisation.
    pub qk_norm: QkNorm,
    /// Block norm placement.
    pub norm_placement: NormPlacement,
    /// Whether the soft-capping fields are read, and their defaults.
    pub softcaps: SoftcapRule,
    /// q/k/v and gate/up are stored fused (`qkv_proj`, `gate_up_proj`).
    pub fused_projections: bool,
    /// `sliding_window` when absent.
    pub default_sliding_window: Option<usize>,
    /// Which layers use the window when `layer_types` is absent.
    pub sliding_layers: SlidingLayers,
    /// How the rotary embeddings are read.
    pub rope: RopeRule,
}

/// Biases of the attention projections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BiasRule {
    /// q/k/v and o follow `attention_bias` (default false).
    FromConfig,
    /// q/k/v always, o never (Qwen2).
    QkvOnly,
    /// Never (Mistral, Phi-3: their config classes have no such field).
    None,
}

/// Attention/final-logit soft-capping fields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SoftcapRule {
    /// Not part of the architecture; the fields are ignored.
    Absent,
    /// Read `attn_logit_softcapping` / `final_logit_softcapping`, with these defaults when
    /// absent (an explicit `null` turns them off).
    Read {
        /// Default attention cap.
        attn: Option<f64>,
        /// Default final-logit cap.
        final_logits: Option<f64>,
    },
}

/// Which layers slide when `layer_types` is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlidingLayers {
    /// None (Llama, OLMo 2).
    Never,
    /// Every layer, if a window is set (Mistral, Phi-3).
    AllWhenWindowed,
    /// Layers `>= max_window_layers` (default 28), if `use_sliding_window` and a window.
    QwenFromMaxWindowLayers,
    /// Layers with an even index (Gemma 2).
    EvenIndexed,
    /// All but every n-th layer, n = `sliding_window_pattern` (Gemma 3).
    Pattern {
        /// n when absent.
        default: usize,
    },
}

/// How the rotary embeddings are read from the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeRule {
    /// One embedding; `rope_parameters` before `rope_scaling`; θ default 1e4.
    Single,
    /// One embedding; `rope_scaling` first, `su`/`yarn` mean LongRoPE, and
    /// `original_max_position_embeddings` defaults to 4096 (Phi-3's config class).
    Phi3LongRope,
    /// Global (θ default 1e6) and local (`rope_local_base_freq`, default 1e4) embeddings
    /// for full and sliding layers (Gemma 3).
    LocalAndGlobal,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_types_are_distinct_and_resolve_back() {
        use Family::*;
        let all = [Llama, Qwen2, Qwen3, Mistral, Gemma2, Gemma3, Olmo2, Phi3];
        for f in all {
            let raw: crate::checkpoint::RawConfig = serde_json::from_value(serde_json::json!({
                "model_type": f.model_type(), "vocab_size": 8, "hidden_size": 16,
                "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                "num_key_value_heads": 2, "head_dim": 4
            }))
            .unwrap();
            let cfg = crate::checkpoint::resolve(&raw, std::path::Path::new("c.json")).unwrap();
            assert_eq!(cfg.family, f);
            let t = f.traits();
            assert_eq!(cfg.qk_norm, t.qk_norm);
            assert_eq!(cfg.norm_placement, t.norm_placement);
            assert_eq!(cfg.fused_qkv, t.fused_projections);
        }
    }
}
