//! RoPE settings of `config.json` -> [`RopeSpec`]s: the older `rope_theta` + `rope_scaling`
//! keys, transformers 5's `rope_parameters` (possibly nested by layer type), Gemma 3's
//! local/global pair and Phi-3's LongRoPE, with transformers' precedence and defaults.

use serde_json::{Map, Value};

use super::error::Result;
use super::resolve::{missing, LayerKind, Resolver};
use crate::decoder::{RopeRule, RopeScaling, RopeSpec};

impl<'a> Resolver<'a> {
    /// The rotary embeddings, and which one each layer kind uses.
    #[allow(clippy::type_complexity)]
    pub(super) fn ropes(&self, head_dim: usize) -> Result<(Vec<RopeSpec>, fn(LayerKind) -> usize)> {
        let raw = self.raw;
        let params = match &raw.rope_parameters {
            Some(Some(v)) => Some(("rope_parameters", v)),
            _ => None,
        };
        let scaling = match &raw.rope_scaling {
            Some(Some(v)) => Some(("rope_scaling", v)),
            _ => None,
        };
        let as_obj = |field: &str, v: &'a Value| -> Result<&'a Map<String, Value>> {
            v.as_object()
                .ok_or_else(|| self.invalid(field, "must be an object"))
        };
        let rule = self.family.traits().rope;
        if rule == RopeRule::LocalAndGlobal {
            // Two embeddings: global (full-attention) and local (sliding) layers.
            let (mut global, mut local) = (None, None);
            if let Some((field, v)) = params {
                let obj = as_obj(field, v)?;
                if obj.contains_key("full_attention") || obj.contains_key("sliding_attention") {
                    if let Some(g) = obj.get("full_attention").filter(|g| !g.is_null()) {
                        global = Some(("rope_parameters.full_attention", as_obj(field, g)?));
                    }
                    if let Some(l) = obj.get("sliding_attention").filter(|l| !l.is_null()) {
                        local = Some(("rope_parameters.sliding_attention", as_obj(field, l)?));
                    }
                } else {
                    global = Some((field, obj));
                }
            }
            if global.is_none() {
                if let Some((field, v)) = scaling {
                    global = Some((field, as_obj(field, v)?));
                }
            }
            let g = self.rope_spec(global, raw.rope_theta.unwrap_or(1e6), head_dim)?;
            let l = self.rope_spec(local, raw.rope_local_base_freq.unwrap_or(1e4), head_dim)?;
            let pick: fn(LayerKind) -> usize = |k| match k {
                LayerKind::Full => 0,
                LayerKind::Sliding => 1,
            };
            return Ok((vec![g, l], pick));
        }
        // One embedding for all layers. Phi-3 reads `rope_scaling` before `rope_parameters`.
        let chosen = if rule == RopeRule::Phi3LongRope {
            scaling.or(params)
        } else {
            params.or(scaling)
        };
        let dict = match chosen {
            Some((field, v)) => Some((field, as_obj(field, v)?)),
            None => None,
        };
        let spec = self.rope_spec(dict, raw.rope_theta.unwrap_or(1e4), head_dim)?;
        Ok((vec![spec], |_| 0))
    }

    /// One rope dictionary (`rope_type`/`type`, `rope_theta`, `factor`, ...) to a spec.
    fn rope_spec(
        &self,
        dict: Option<(&str, &Map<String, Value>)>,
        default_theta: f64,
        head_dim: usize,
    ) -> Result<RopeSpec> {
        let phi3 = self.family.traits().rope == RopeRule::Phi3LongRope;
        let empty = Map::new();
        let (prefix, d) = dict.unwrap_or(("rope_parameters", &empty));
        let field = |k: &str| format!("{prefix}.{k}");
        let num = |k: &str| -> Result<Option<f64>> {
            match d.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_f64()
                    .map(Some)
                    .ok_or_else(|| self.invalid(&field(k), "must be a number")),
            }
        };
        let need =
            |k: &str| -> Result<f64> { num(k)?.ok_or_else(|| missing(&self.path, &field(k))) };
        let theta = num("rope_theta")?.unwrap_or(default_theta);
        let prf = match num("partial_rotary_factor")? {
            Some(p) => p,
            None => self.raw.partial_rotary_factor.unwrap_or(1.0),
        };
        if !(prf > 0.0 && prf <= 1.0) {
            return Err(self.invalid("partial_rotary_factor", "must be in (0, 1]"));
        }
        let rotary_dim = (head_dim as f64 * prf) as usize;
        let kind = d
            .get("rope_type")
            .or_else(|| d.get("type"))
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| self.invalid(&field("rope_type"), "must be a string"))
            })
            .transpose()?
            .unwrap_or_else(|| "default".to_string());
        let max_pos = self.raw.max_position_embeddings;
        let original_max = |dict_first: bool| -> Result<usize> {
            let from_dict = num("original_max_position_embeddings")?.map(|v| v as usize);
            let top = self.raw.original_max_position_embeddings;
            let v = if dict_first {
                from_dict.or(top)
            } else {
                top.or(from_dict)
            };
            v.or(max_pos)
                .filter(|v| *v > 0)
                .ok_or_else(|| missing(&self.path, &field("original_max_position_embeddings")))
        };
        let scaling = match kind.as_str() {
            "default" => RopeScaling::None,
            "linear" => RopeScaling::Linear {
                factor: need("factor")?,
            },
            "llama3" => RopeScaling::Llama3 {
                factor: need("factor")?,
                low_freq_factor: need("low_freq_factor")?,
                high_freq_factor: need("high_freq_factor")?,
                original_max_position_embeddings: original_max(true)?,
            },
            "longrope" | "su" | "yarn" if phi3 || kind == "longrope" => {
                // Phi-3's config class always has `original_max_position_embeddings`
                // (default 4096) and it takes priority over the dictionary's.
                let original = if phi3 {
                    self.raw.original_max_position_embeddings.unwrap_or(4096)
                } else {
                    original_max(true)?
                };
                let list = |k: &str| -> Result<Vec<f64>> {
                    let v = d.get(k).ok_or_else(|| missing(&self.path, &field(k)))?;
                    v.as_array()
                        .and_then(|a| a.iter().map(Value::as_f64).collect::<Option<Vec<_>>>())
                        .ok_or_else(|| self.invalid(&field(k), "must be a list of numbers"))
                };
                let max = max_pos.unwrap_or(if phi3 { 4096 } else { original });
                let factor = num("factor")?.unwrap_or(max as f64 / original as f64);
                let attention_factor = match num("attention_factor")? {
                    Some(a) => a,
                    None if factor <= 1.0 => 1.0,
                    None => (1.0 + factor.ln() / (original as f64).ln()).sqrt(),
                };
                RopeScaling::LongRope {
                    short_factor: list("short_factor")?,
                    long_factor: list("long_factor")?,
                    original_max_position_embeddings: original,
                    attention_factor,
                }
            }
            other => {
                return Err(self.invalid(
                    &field("rope_type"),
                    format!("unsupported RoPE type {other:?} (supported: default, linear, llama3, longrope)"),
                ))
            }
        };
        Ok(RopeSpec {
            theta,
            rotary_dim,
            scaling,
        })
    }
}
