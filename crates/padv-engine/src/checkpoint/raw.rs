//! `config.json` exactly as written: every field optional, no defaults applied. The
//! per-family defaults of `transformers` are applied in [`super::resolve`], so that "absent",
//! "null" and "a value" stay distinguishable where transformers treats them differently
//! (e.g. Gemma 2's softcaps default to 50/30 when absent but are off when null).

use serde::{Deserialize, Deserializer};

/// A field that may be absent (`None`), explicitly `null` (`Some(None)`) or set.
pub type Tristate<T> = Option<Option<T>>;

/// Maps a present field (even `null`) to `Some(..)`; serde's `default` maps absence to `None`.
fn present<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The fields of a Hugging Face `config.json` the decoder reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawConfig {
    /// Family tag (`llama`, `qwen2`, `gemma3_text`, ...).
    pub model_type: Option<String>,
    /// Class names; informational.
    pub architectures: Option<Vec<String>>,
    /// Nested text config of multimodal checkpoints (Gemma 3 4B+).
    pub text_config: Option<Box<RawConfig>>,
    /// Vocabulary size.
    pub vocab_size: Option<usize>,
    /// Model width.
    pub hidden_size: Option<usize>,
    /// MLP width.
    pub intermediate_size: Option<usize>,
    /// Number of decoder layers.
    pub num_hidden_layers: Option<usize>,
    /// Number of query heads.
    pub num_attention_heads: Option<usize>,
    /// Number of key/value heads (GQA).
    pub num_key_value_heads: Option<usize>,
    /// Per-head width when not `hidden_size / num_attention_heads`.
    pub head_dim: Option<usize>,
    /// MLP activation name.
    pub hidden_act: Option<String>,
    /// Gemma's name for the MLP activation.
    pub hidden_activation: Option<String>,
    /// Longest supported context.
    pub max_position_embeddings: Option<usize>,
    /// Pretraining context (Phi-3 longrope).
    pub original_max_position_embeddings: Option<usize>,
    /// RMSNorm epsilon.
    pub rms_norm_eps: Option<f64>,
    /// RoPE base (older configs).
    pub rope_theta: Option<f64>,
    /// Gemma 3 RoPE base of the sliding-window layers.
    pub rope_local_base_freq: Option<f64>,
    /// RoPE scaling (older configs): `{"rope_type"|"type": ..., "factor": ...}`.
    #[serde(default, deserialize_with = "present")]
    pub rope_scaling: Tristate<serde_json::Value>,
    /// RoPE parameters (transformers >= 5), possibly nested by layer type.
    #[serde(default, deserialize_with = "present")]
    pub rope_parameters: Tristate<serde_json::Value>,
    /// Fraction of each head that is rotated (Phi-3 / Phi-4-mini).
    pub partial_rotary_factor: Option<f64>,
    /// Output projection shares the embedding matrix.
    pub tie_word_embeddings: Option<bool>,
    /// Bias on the attention projections.
    pub attention_bias: Option<bool>,
    /// Bias on the MLP projections (Llama).
    pub mlp_bias: Option<bool>,
    /// Qwen's switch for the sliding window.
    pub use_sliding_window: Option<bool>,
    /// Sliding-window length (None/null: no window).
    #[serde(default, deserialize_with = "present")]
    pub sliding_window: Tristate<usize>,
    /// Qwen: layers at or above this index use the window.
    pub max_window_layers: Option<usize>,
    /// Per-layer attention type (`full_attention` / `sliding_attention`).
    pub layer_types: Option<Vec<String>>,
    /// Gemma 3 (older configs): every n-th layer is global.
    pub sliding_window_pattern: Option<usize>,
    /// Gemma: the attention scale is `query_pre_attn_scalar^-0.5`.
    pub query_pre_attn_scalar: Option<f64>,
    /// Gemma: tanh soft-capping of attention logits.
    #[serde(default, deserialize_with = "present")]
    pub attn_logit_softcapping: Tristate<f64>,
    /// Gemma: tanh soft-capping of the output logits.
    #[serde(default, deserialize_with = "present")]
    pub final_logit_softcapping: Tristate<f64>,
    /// Gemma 3 embedding models attend both ways; not supported.
    pub use_bidirectional_attention: Option<bool>,
    /// Padding token (sequence classifiers pool at the last token that is not this one);
    /// an integer or null as written.
    #[serde(default)]
    pub pad_token_id: Option<serde_json::Value>,
    /// Number of classifier outputs (sequence-classification heads).
    pub num_labels: Option<usize>,
    /// Label names of a classifier head, by output index (as a string key).
    pub id2label: Option<std::collections::BTreeMap<String, String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tristate_distinguishes_absent_null_and_value() {
        let absent: RawConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(absent.final_logit_softcapping, None);
        let null: RawConfig = serde_json::from_str(r#"{"final_logit_softcapping": null}"#).unwrap();
        assert_eq!(null.final_logit_softcapping, Some(None));
        let set: RawConfig = serde_json::from_str(r#"{"final_logit_softcapping": 30.0}"#).unwrap();
        assert_eq!(set.final_logit_softcapping, Some(Some(30.0)));
    }
}
