//! `RawConfig` -> [`DecoderConfig`]: applies the defaults `transformers` uses for each family
//! (they differ: Qwen3's `head_dim` defaults to 128, Gemma 2's softcaps to 50/30, OLMo 2's
//! epsilon to 1e-5 ...) and validates, naming the file and field on error.

use std::path::{Path, PathBuf};

use super::error::{CheckpointError, Result};
use super::raw::RawConfig;
use crate::decoder::{
    Activation, BiasRule, DecoderConfig, Family, LayerSpec, SlidingLayers, SoftcapRule,
};

/// `model_type` values accepted.
const SUPPORTED: &str = "llama, qwen2, qwen3, mistral, gemma2, gemma3_text, gemma3, olmo2, phi3";

/// Resolves a parsed `config.json` (read from `path`, used in errors).
pub fn resolve(raw: &RawConfig, path: &Path) -> Result<DecoderConfig> {
    let model_type = raw
        .model_type
        .as_deref()
        .ok_or_else(|| missing(path, "model_type"))?;
    let family = match model_type {
        "llama" => Family::Llama,
        "qwen2" => Family::Qwen2,
        "qwen3" => Family::Qwen3,
        "mistral" => Family::Mistral,
        "gemma2" => Family::Gemma2,
        "gemma3_text" => Family::Gemma3,
        "olmo2" => Family::Olmo2,
        "phi3" => Family::Phi3,
        "gemma3" => {
            // Multimodal wrapper: the language model is described by `text_config`.
            return match &raw.text_config {
                Some(text) => {
                    let mut text = (**text).clone();
                    text.model_type = Some("gemma3_text".into());
                    resolve(&text, path)
                }
                None => Ok(Resolver::new(raw, path, Family::Gemma3).run()?),
            };
        }
        other => {
            return Err(CheckpointError::UnsupportedModelType {
                path: path.to_path_buf(),
                value: other.to_string(),
                supported: SUPPORTED.to_string(),
            })
        }
    };
    Resolver::new(raw, path, family).run()
}

pub(super) fn missing(path: &Path, field: &str) -> CheckpointError {
    CheckpointError::MissingField {
        path: path.to_path_buf(),
        field: field.to_string(),
    }
}

pub(super) struct Resolver<'a> {
    pub(super) raw: &'a RawConfig,
    pub(super) path: PathBuf,
    pub(super) family: Family,
}

/// Attention kind of a layer, as `layer_types` spells it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum LayerKind {
    Full,
    Sliding,
}

impl<'a> Resolver<'a> {
    fn new(raw: &'a RawConfig, path: &Path, family: Family) -> Self {
        Self {
            raw,
            path: path.to_path_buf(),
            family,
        }
    }

    pub(super) fn invalid(&self, field: &str, reason: impl Into<String>) -> CheckpointError {
        CheckpointError::InvalidField {
            path: self.path.clone(),
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    fn required(&self, v: Option<usize>, field: &str) -> Result<usize> {
        match v {
            None => Err(missing(&self.path, field)),
            Some(0) => Err(self.invalid(field, "must be positive")),
            Some(v) => Ok(v),
        }
    }

    fn run(&self) -> Result<DecoderConfig> {
        let raw = self.raw;
        let f = self.family;
        let tr = f.traits();
        let vocab_size = self.required(raw.vocab_size, "vocab_size")?;
        let hidden_size = self.required(raw.hidden_size, "hidden_size")?;
        let intermediate_size = self.required(raw.intermediate_size, "intermediate_size")?;
        let num_layers = self.required(raw.num_hidden_layers, "num_hidden_layers")?;
        let num_heads = self.required(raw.num_attention_heads, "num_attention_heads")?;
        let gemma = tr.gemma_conventions;

        // transformers' class defaults when the field is absent.
        let num_kv_heads = raw
            .num_key_value_heads
            .unwrap_or(tr.default_num_kv_heads.unwrap_or(num_heads));
        let head_dim = match (raw.head_dim, tr.default_head_dim) {
            (Some(d), _) | (None, Some(d)) => d,
            (None, None) => {
                if hidden_size % num_heads != 0 {
                    return Err(self.invalid(
                        "head_dim",
                        format!(
                            "absent, and hidden_size {hidden_size} is not a multiple of \
                             num_attention_heads {num_heads}"
                        ),
                    ));
                }
                hidden_size / num_heads
            }
        };
        let rms_norm_eps = raw.rms_norm_eps.unwrap_or(tr.default_rms_norm_eps);

        let (act_field, act_name) = if gemma {
            match (&raw.hidden_activation, &raw.hidden_act) {
                (Some(a), _) => ("hidden_activation", a.as_str()),
                (None, Some(a)) => ("hidden_act", a.as_str()),
                (None, None) => ("hidden_activation", "gelu_pytorch_tanh"),
            }
        } else {
            ("hidden_act", raw.hidden_act.as_deref().unwrap_or("silu"))
        };
        let activation = match act_name {
            "silu" | "swish" => Activation::Silu,
            "gelu_pytorch_tanh" | "gelu_new" => Activation::GeluTanh,
            "gelu" => Activation::GeluErf,
            other => {
                return Err(self.invalid(act_field, format!("unsupported activation {other:?}")))
            }
        };

        let attention_bias = raw.attention_bias.unwrap_or(false);
        let (qkv_bias, o_bias) = match tr.attention_bias {
            BiasRule::QkvOnly => (true, false),
            BiasRule::None => (false, false),
            BiasRule::FromConfig => (attention_bias, attention_bias),
        };
        let mlp_bias = tr.mlp_bias_from_config && raw.mlp_bias.unwrap_or(false);
        if raw.use_bidirectional_attention == Some(true) {
            return Err(self.invalid(
                "use_bidirectional_attention",
                "bidirectional (embedding) models are not causal LMs",
            ));
        }
        let attn_scale = if gemma {
            let q = raw.query_pre_attn_scalar.unwrap_or(256.0);
            if !(q.is_finite() && q > 0.0) {
                return Err(self.invalid("query_pre_attn_scalar", "must be positive"));
            }
            q.powf(-0.5)
        } else {
            (head_dim as f64).powf(-0.5)
        };
        let softcap = |t: &Option<Option<f64>>, field: &str, default: Option<f64>| match t {
            None => Ok(default),
            Some(None) => Ok(None),
            Some(Some(c)) if c.is_finite() && *c > 0.0 => Ok(Some(*c)),
            Some(Some(_)) => Err(self.invalid(field, "must be positive")),
        };
        let (attn_softcap, final_softcap) = match tr.softcaps {
            SoftcapRule::Read { attn, final_logits } => (
                softcap(&raw.attn_logit_softcapping, "attn_logit_softcapping", attn)?,
                softcap(
                    &raw.final_logit_softcapping,
                    "final_logit_softcapping",
                    final_logits,
                )?,
            ),
            SoftcapRule::Absent => (None, None),
        };

        let kinds = self.layer_kinds(num_layers)?;
        let window = self.sliding_window()?;
        let (ropes, rope_of_kind) = self.ropes(head_dim)?;
        let layers = kinds
            .iter()
            .map(|k| LayerSpec {
                sliding_window: if *k == LayerKind::Sliding {
                    window
                } else {
                    None
                },
                rope: rope_of_kind(*k),
            })
            .collect();

        let cfg = DecoderConfig {
            family: f,
            vocab_size,
            hidden_size,
            intermediate_size,
            num_heads,
            num_kv_heads,
            head_dim,
            rms_norm_eps,
            activation,
            qkv_bias,
            o_bias,
            mlp_bias,
            qk_norm: tr.qk_norm,
            norm_placement: tr.norm_placement,
            norm_unit_offset: gemma,
            embed_scale: gemma.then(|| (hidden_size as f64).sqrt()),
            attn_scale,
            attn_softcap,
            final_softcap,
            fused_qkv: tr.fused_projections,
            fused_gate_up: tr.fused_projections,
            tie_embeddings: raw.tie_word_embeddings.unwrap_or(gemma),
            ropes,
            layers,
        };
        cfg.validate()
            .map_err(|(field, reason)| self.invalid(field, reason))?;
        Ok(cfg)
    }

    /// The window length, for the layers that slide.
    fn sliding_window(&self) -> Result<Option<usize>> {
        let w = match self.raw.sliding_window {
            None => self.family.traits().default_sliding_window,
            Some(w) => w,
        };
        if w == Some(0) {
            return Err(self.invalid("sliding_window", "must be positive"));
        }
        Ok(w)
    }

    /// Which layers slide: `layer_types` when given, else each family's rule.
    fn layer_kinds(&self, n: usize) -> Result<Vec<LayerKind>> {
        if let Some(types) = &self.raw.layer_types {
            if types.len() != n {
                return Err(self.invalid(
                    "layer_types",
                    format!("has {} entries for {n} layers", types.len()),
                ));
            }
            return types
                .iter()
                .map(|t| match t.as_str() {
                    "full_attention" => Ok(LayerKind::Full),
                    "sliding_attention" => Ok(LayerKind::Sliding),
                    other => Err(self.invalid("layer_types", format!("unsupported {other:?}"))),
                })
                .collect();
        }
        let slides = self.sliding_window()?.is_some();
        let kinds = (0..n)
            .map(|i| {
                let sliding = match self.family.traits().sliding_layers {
                    SlidingLayers::Never => false,
                    SlidingLayers::AllWhenWindowed => slides,
                    SlidingLayers::QwenFromMaxWindowLayers => {
                        slides
                            && self.raw.use_sliding_window.unwrap_or(false)
                            && i >= self.raw.max_window_layers.unwrap_or(28)
                    }
                    SlidingLayers::EvenIndexed => i % 2 == 0,
                    SlidingLayers::Pattern { default } => {
                        (i + 1) % self.raw.sliding_window_pattern.unwrap_or(default).max(1) != 0
                    }
                };
                if sliding {
                    LayerKind::Sliding
                } else {
                    LayerKind::Full
                }
            })
            .collect();
        Ok(kinds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoder::RopeScaling;

    fn parse(s: &str) -> RawConfig {
        serde_json::from_str(s).unwrap()
    }

    const BASE: &str = r#""vocab_size": 100, "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 4, "num_attention_heads": 4"#;

    #[test]
    fn llama_defaults() {
        let raw = parse(&format!(r#"{{"model_type": "llama", {BASE}}}"#));
        let c = resolve(&raw, Path::new("c.json")).unwrap();
        assert_eq!(c.family, Family::Llama);
        assert_eq!(c.head_dim, 16); // 64 / 4
        assert_eq!(c.num_kv_heads, 4);
        assert_eq!(c.rms_norm_eps, 1e-6);
        assert!(!c.tie_embeddings);
        assert_eq!(c.ropes.len(), 1);
        assert_eq!(c.ropes[0].theta, 1e4);
        assert_eq!(c.attn_scale, 0.25); // 16^-0.5
        assert!(c.layers.iter().all(|l| l.sliding_window.is_none()));
    }

    #[test]
    fn gemma2_defaults_and_null_softcap() {
        let raw = parse(&format!(
            r#"{{"model_type": "gemma2", {BASE}, "final_logit_softcapping": null,
                "query_pre_attn_scalar": 16, "head_dim": 16, "sliding_window": 8}}"#
        ));
        let c = resolve(&raw, Path::new("c.json")).unwrap();
        assert_eq!(c.attn_softcap, Some(50.0));
        assert_eq!(c.final_softcap, None);
        assert_eq!(c.attn_scale, 0.25); // 16^-0.5
        assert!(c.tie_embeddings);
        assert_eq!(c.embed_scale, Some(8.0)); // sqrt(64)
                                              // Even-indexed layers slide.
        let w: Vec<_> = c.layers.iter().map(|l| l.sliding_window).collect();
        assert_eq!(w, vec![Some(8), None, Some(8), None]);
    }

    #[test]
    fn gemma3_local_and_global_ropes() {
        let raw = parse(&format!(
            r#"{{"model_type": "gemma3_text", {BASE}, "head_dim": 16, "sliding_window_pattern": 2,
                "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0,
                "rope_scaling": {{"rope_type": "linear", "factor": 8.0}}}}"#
        ));
        let c = resolve(&raw, Path::new("c.json")).unwrap();
        assert_eq!(c.ropes[0].scaling, RopeScaling::Linear { factor: 8.0 });
        assert_eq!(c.ropes[0].theta, 1e6);
        assert_eq!(c.ropes[1].scaling, RopeScaling::None);
        assert_eq!(c.ropes[1].theta, 1e4);
        let r: Vec<_> = c.layers.iter().map(|l| l.rope).collect();
        assert_eq!(r, vec![1, 0, 1, 0]); // (i+1) % 2 != 0 slides
    }

    #[test]
    fn nested_rope_parameters() {
        let raw = parse(&format!(
            r#"{{"model_type": "gemma3_text", {BASE}, "head_dim": 16,
                "rope_parameters": {{"full_attention": {{"rope_type": "linear", "factor": 2.0,
                "rope_theta": 500.0}}, "sliding_attention": {{"rope_type": "default",
                "rope_theta": 50.0}}}}}}"#
        ));
        let c = resolve(&raw, Path::new("c.json")).unwrap();
        assert_eq!(c.ropes[0].theta, 500.0);
        assert_eq!(c.ropes[0].scaling, RopeScaling::Linear { factor: 2.0 });
        assert_eq!(c.ropes[1].theta, 50.0);
    }

    #[test]
    fn phi3_longrope_attention_factor() {
        let raw = parse(&format!(
            r#"{{"model_type": "phi3", {BASE}, "partial_rotary_factor": 0.5,
                "max_position_embeddings": 16384, "original_max_position_embeddings": 4096,
                "rope_scaling": {{"type": "longrope", "short_factor": [1, 1, 1, 1],
                "long_factor": [2, 2, 2, 2]}}}}"#
        ));
        let c = resolve(&raw, Path::new("c.json")).unwrap();
        assert_eq!(c.ropes[0].rotary_dim, 8); // 16 * 0.5
        match &c.ropes[0].scaling {
            RopeScaling::LongRope {
                attention_factor,
                original_max_position_embeddings,
                ..
            } => {
                // factor = 16384/4096 = 4; sqrt(1 + ln 4 / ln 4096) = sqrt(1 + 1/6)
                assert!((attention_factor - (7.0f64 / 6.0).sqrt()).abs() < 1e-12);
                assert_eq!(*original_max_position_embeddings, 4096);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.rms_norm_eps, 1e-5);
        assert!(c.fused_qkv && c.fused_gate_up);
    }

    #[test]
    fn qwen2_sliding_only_above_max_window_layers() {
        let raw = parse(&format!(
            r#"{{"model_type": "qwen2", {BASE}, "num_key_value_heads": 2,
                "use_sliding_window": true, "sliding_window": 32, "max_window_layers": 2}}"#
        ));
        let c = resolve(&raw, Path::new("c.json")).unwrap();
        let w: Vec<_> = c.layers.iter().map(|l| l.sliding_window).collect();
        assert_eq!(w, vec![None, None, Some(32), Some(32)]);
        assert!(c.qkv_bias && !c.o_bias);
    }

    #[test]
    fn errors_name_field() {
        let raw = parse(r#"{"model_type": "llama", "vocab_size": 10}"#);
        let e = resolve(&raw, Path::new("x/config.json")).unwrap_err();
        assert!(e.to_string().contains("hidden_size"), "{e}");
        assert!(e.to_string().contains("x/config.json"), "{e}");

        let raw = parse(&format!(
            r#"{{"model_type": "llama", {BASE}, "rope_scaling": {{"rope_type": "yarn", "factor": 2}}}}"#
        ));
        let e = resolve(&raw, Path::new("c.json")).unwrap_err();
        assert!(e.to_string().contains("rope_scaling.rope_type"), "{e}");

        let raw = parse(&format!(
            r#"{{"model_type": "llama", {BASE}, "num_key_value_heads": 3}}"#
        ));
        let e = resolve(&raw, Path::new("c.json")).unwrap_err();
        assert!(e.to_string().contains("num_key_value_heads"), "{e}");
    }
}
