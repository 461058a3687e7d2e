//! The generic decoder: embeddings, a stack of blocks, the final norm. Returns final-normed
//! hidden states; the output projection is applied by the caller (only where needed, see
//! `crate::logprobs`).

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;

use super::attention::{Attention, AttentionImpl, Step};
use super::cache::KvCache;
use super::linear::WEIGHT_INIT;
use super::mlp::Mlp;
use super::norm::RmsNorm;
use super::rope::RopeTables;
use super::{DecoderConfig, NormPlacement};

/// How the model is built and run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelOptions {
    /// Keep the checkpoint's parameters as they are (no concatenation or folding) and use
    /// only differentiable candle ops, so the model can be trained with candle `Var`s.
    /// Default false: the inference path (fused projections and CPU kernels, no backward).
    pub trainable: bool,
    /// Attention implementation (default `Auto`).
    pub attention: AttentionImpl,
}

#[derive(Debug, Clone)]
struct Block {
    attn: Attention,
    mlp: Mlp,
    /// Before attention (pre-norm and sandwich).
    norm_attn_in: Option<RmsNorm>,
    /// After attention (sandwich and post-norm).
    norm_attn_out: Option<RmsNorm>,
    /// Before the MLP (pre-norm: `post_attention_layernorm`; sandwich).
    norm_mlp_in: Option<RmsNorm>,
    /// After the MLP (sandwich and post-norm).
    norm_mlp_out: Option<RmsNorm>,
}

impl Block {
    fn new(cfg: &DecoderConfig, i: usize, vb: VarBuilder, fused: bool) -> Result<Self> {
        let norm = |name: &str| {
            RmsNorm::new(
                cfg.hidden_size,
                cfg.rms_norm_eps,
                cfg.norm_unit_offset,
                fused,
                vb.pp(name),
            )
        };
        let (a_in, a_out, m_in, m_out) = match cfg.norm_placement {
            NormPlacement::Pre => (
                Some(norm("input_layernorm")?),
                None,
                Some(norm("post_attention_layernorm")?),
                None,
            ),
            NormPlacement::Sandwich => (
                Some(norm("input_layernorm")?),
                Some(norm("post_attention_layernorm")?),
                Some(norm("pre_feedforward_layernorm")?),
                Some(norm("post_feedforward_layernorm")?),
            ),
            NormPlacement::Post => (
                None,
                Some(norm("post_attention_layernorm")?),
                None,
                Some(norm("post_feedforward_layernorm")?),
            ),
        };
        Ok(Self {
            attn: Attention::new(cfg, &cfg.layers[i], vb.pp("self_attn"), fused)?,
            mlp: Mlp::new(cfg, vb.pp("mlp"), fused)?,
            norm_attn_in: a_in,
            norm_attn_out: a_out,
            norm_mlp_in: m_in,
            norm_mlp_out: m_out,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        step: &Step,
        append: &mut dyn FnMut(Tensor, Tensor) -> Result<(Tensor, Tensor)>,
        rows: Option<&[usize]>,
    ) -> Result<Tensor> {
        let apply = |n: &Option<RmsNorm>, x: Tensor| match n {
            Some(n) => n.forward(&x),
            None => Ok(x),
        };
        let a_in = apply(&self.norm_attn_in, x.clone())?;
        let a = self.attn.forward(&a_in, step, append, rows)?;
        let a = apply(&self.norm_attn_out, a)?;
        let residual = match rows {
            Some(rows) => {
                let idx: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
                x.contiguous()?
                    .index_select(&Tensor::from_vec(idx, rows.len(), x.device())?, 1)?
            }
            None => x.clone(),
        };
        let h = (residual + a)?;
        let m = self.mlp.forward(&apply(&self.norm_mlp_in, h.clone())?)?;
        let m = apply(&self.norm_mlp_out, m)?;
        h + m
    }
}

/// A decoder-only transformer of any supported family.
#[derive(Debug, Clone)]
pub struct DecoderModel {
    cfg: DecoderConfig,
    opts: ModelOptions,
    embed: Tensor,
    lm_head: Tensor,
    embed_scale: Option<Tensor>,
    blocks: Vec<Block>,
    norm: RmsNorm,
    dtype: DType,
    device: Device,
}

impl DecoderModel {
    /// Builds the model from a `VarBuilder` rooted at the checkpoint (`model.*` tensors and
    /// `lm_head.weight`). The builder's dtype is the compute dtype (norm weights are kept in
    /// f32). With a `VarMap`-backed builder and `trainable`, this creates a fresh model
    /// whose parameters are trainable `Var`s.
    pub fn new(cfg: &DecoderConfig, vb: VarBuilder, opts: ModelOptions) -> Result<Self> {
        let head = (!cfg.tie_embeddings).then(|| vb.pp("lm_head"));
        Self::with_prefixes(cfg, vb.pp("model"), head, opts)
    }

    /// Like [`DecoderModel::new`], with explicit builders for the body (`embed_tokens`,
    /// `layers.N`, `norm`) and the output projection (`weight`; None: tied embeddings).
    pub fn with_prefixes(
        cfg: &DecoderConfig,
        body: VarBuilder,
        head: Option<VarBuilder>,
        opts: ModelOptions,
    ) -> Result<Self> {
        cfg.validate()
            .map_err(|(f, r)| candle_core::Error::Msg(format!("invalid config: {f}: {r}")))?;
        let fused = !opts.trainable;
        let (v, h) = (cfg.vocab_size, cfg.hidden_size);
        let embed = body.get_with_hints((v, h), "embed_tokens.weight", WEIGHT_INIT)?;
        let lm_head = match (&head, cfg.tie_embeddings) {
            (Some(hb), false) => hb.get_with_hints((v, h), "weight", WEIGHT_INIT)?,
            _ => embed.clone(),
        };
        let dtype = body.dtype();
        let device = body.device().clone();
        let embed_scale = match cfg.embed_scale {
            // transformers multiplies by the scale cast to the weight dtype.
            Some(s) => Some(Tensor::new(&[s as f32], &device)?.to_dtype(dtype)?),
            None => None,
        };
        let blocks = (0..cfg.num_layers())
            .map(|i| Block::new(cfg, i, body.pp(format!("layers.{i}")), fused))
            .collect::<Result<Vec<_>>>()?;
        let norm = RmsNorm::new(
            h,
            cfg.rms_norm_eps,
            cfg.norm_unit_offset,
            fused,
            body.pp("norm"),
        )?;
        Ok(Self {
            cfg: cfg.clone(),
            opts,
            embed,
            lm_head,
            embed_scale,
            blocks,
            norm,
            dtype,
            device,
        })
    }

    /// The resolved configuration.
    pub fn config(&self) -> &DecoderConfig {
        &self.cfg
    }

    /// Compute dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Device of the weights.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The output projection `[V, H]` (the embedding matrix when tied).
    pub fn lm_head(&self) -> &Tensor {
        &self.lm_head
    }

    /// A fresh storing cache for this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.blocks.len())
    }

    fn resolved_attention(&self) -> AttentionImpl {
        match self.opts.attention {
            AttentionImpl::Auto if self.opts.trainable => AttentionImpl::Full,
            AttentionImpl::Auto if self.device.is_cpu() => AttentionImpl::Kernel,
            AttentionImpl::Auto => AttentionImpl::Blocked,
            other => other,
        }
    }

    /// Final-normed hidden states `[B, T, H]` for token ids `[B, T]` (u32) at positions
    /// `offset..offset+T`; `offset` must equal `cache.seq_len()`, and the cache is extended.
    pub fn forward(&self, ids: &Tensor, offset: usize, cache: &mut KvCache) -> Result<Tensor> {
        self.run(ids, offset, cache, None, 0)
    }

    /// Like [`DecoderModel::forward`] but returns only the rows `rows` (indices into
    /// `0..T`, ascending): `[B, rows.len(), H]`. The last layer then computes attention and
    /// MLP for those rows only.
    ///
    /// `full_len` is the length of the whole sequence these ids belong to (at least
    /// `offset + T`; larger when the caller stops before the end because no later position
    /// is needed). Only LongRoPE uses it: transformers picks the long factors from the length
    /// of the sequence in the forward call, and a scorer that skips trailing tokens must
    /// still pick what one pass over the whole sequence would.
    pub fn forward_rows(
        &self,
        ids: &Tensor,
        offset: usize,
        cache: &mut KvCache,
        rows: &[usize],
        full_len: usize,
    ) -> Result<Tensor> {
        self.run(ids, offset, cache, Some(rows), full_len)
    }

    fn run(
        &self,
        ids: &Tensor,
        offset: usize,
        cache: &mut KvCache,
        rows: Option<&[usize]>,
        full_len: usize,
    ) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        if offset != cache.seq_len() {
            candle_core::bail!(
                "forward at offset {offset}, but the cache holds {} positions",
                cache.seq_len()
            );
        }
        if let Some(rows) = rows {
            if rows.windows(2).any(|w| w[0] >= w[1]) || rows.last().is_some_and(|&r| r >= t) {
                candle_core::bail!("forward_rows: rows must be ascending indices below {t}");
            }
        }
        let positions: Vec<usize> = (offset..offset + t).collect();
        let ropes: Vec<RopeTables> = self
            .cfg
            .ropes
            .iter()
            .map(|spec| RopeTables::new(spec, &positions, full_len.max(offset + t)))
            .collect();
        let step = Step {
            offset,
            ropes: &ropes,
            imp: self.resolved_attention(),
        };
        let ids = ids.to_device(&self.device)?;
        let mut x = self.embed.index_select(&ids.flatten_all()?, 0)?.reshape((
            b,
            t,
            self.cfg.hidden_size,
        ))?;
        if let Some(s) = &self.embed_scale {
            x = x.broadcast_mul(s)?;
        }
        let last = self.blocks.len().saturating_sub(1);
        for (i, block) in self.blocks.iter().enumerate() {
            // A chunk boundary: a cancelled request stops here (see `crate::cancel`).
            crate::cancel::check()?;
            let r = if i == last { rows } else { None };
            x = block.forward(&x, &step, &mut |k, v| cache.append(i, k, v), r)?;
        }
        cache.advance(t);
        self.norm.forward(&x)
    }

    /// Full logits `[.., V]` of hidden states `[.., H]`, soft-capped where the family does.
    /// Materialises `rows × V`; for scoring use `crate::logprobs`, which chunks.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let dims = hidden.dims().to_vec();
        let h = self.cfg.hidden_size;
        let rows = hidden.elem_count() / h;
        let mut z = hidden.reshape((rows, h))?.matmul(&self.lm_head.t()?)?;
        if let Some(c) = self.cfg.final_softcap {
            z = ((z / c)?.tanh()? * c)?;
        }
        let mut out = dims;
        if let Some(l) = out.last_mut() {
            *l = self.cfg.vocab_size;
        }
        z.reshape(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoder::{Activation, Family, LayerSpec, QkNorm, RopeScaling, RopeSpec};
    use candle_nn::VarMap;

    fn config(qk_norm: QkNorm, placement: NormPlacement, softcap: Option<f64>) -> DecoderConfig {
        DecoderConfig {
            family: Family::Qwen3,
            vocab_size: 50,
            hidden_size: 24,
            intermediate_size: 40,
            num_heads: 6,
            num_kv_heads: 2,
            head_dim: 8,
            rms_norm_eps: 1e-6,
            activation: Activation::Silu,
            qkv_bias: true,
            o_bias: true,
            mlp_bias: false,
            qk_norm,
            norm_placement: placement,
            norm_unit_offset: placement == NormPlacement::Sandwich,
            embed_scale: None,
            attn_scale: 0.3,
            attn_softcap: softcap,
            final_softcap: None,
            fused_qkv: false,
            fused_gate_up: false,
            tie_embeddings: false,
            ropes: vec![RopeSpec {
                theta: 1000.0,
                rotary_dim: 6,
                scaling: RopeScaling::Linear { factor: 2.0 },
            }],
            layers: vec![
                LayerSpec {
                    sliding_window: Some(37),
                    rope: 0,
                },
                LayerSpec {
                    sliding_window: None,
                    rope: 0,
                },
            ],
        }
    }

    /// Creates the parameters in `vm` and gives them a spread large enough that attention
    /// is far from uniform and every path matters.
    fn randomise(cfg: &DecoderConfig, vm: &VarMap) {
        let vb = VarBuilder::from_varmap(vm, DType::F32, &Device::Cpu);
        let opts = ModelOptions {
            trainable: true,
            attention: AttentionImpl::Full,
        };
        DecoderModel::new(cfg, vb, opts).unwrap();
        for v in vm.all_vars() {
            let t = v.as_tensor();
            let r = if t.rank() == 1 {
                (Tensor::randn(0f32, 0.2, t.shape(), &Device::Cpu).unwrap() + 0.5).unwrap()
            } else {
                Tensor::randn(0f32, 0.4, t.shape(), &Device::Cpu).unwrap()
            };
            v.set(&r).unwrap();
        }
    }

    fn hidden(
        cfg: &DecoderConfig,
        vm: &VarMap,
        trainable: bool,
        attention: AttentionImpl,
        ids: &Tensor,
    ) -> Tensor {
        let vb = VarBuilder::from_varmap(vm, DType::F32, &Device::Cpu);
        let m = DecoderModel::new(
            cfg,
            vb,
            ModelOptions {
                trainable,
                attention,
            },
        )
        .unwrap();
        m.forward(ids, 0, &mut KvCache::discarding()).unwrap()
    }

    #[test]
    fn all_paths_agree() {
        // T = 300 > the blocked path's query block (256) and the kernel's key block (256).
        let ids: Vec<u32> = (0..300u32).map(|i| (i * 37 + 11) % 50).collect();
        let ids = Tensor::from_vec(ids, (1, 300), &Device::Cpu).unwrap();
        for (qk, placement, softcap) in [
            (QkNorm::PerHead, NormPlacement::Pre, None),
            (QkNorm::Full, NormPlacement::Post, None),
            (QkNorm::None, NormPlacement::Sandwich, Some(3.0)),
        ] {
            let cfg = config(qk, placement, softcap);
            let vm = VarMap::new();
            randomise(&cfg, &vm);
            let reference = hidden(&cfg, &vm, true, AttentionImpl::Full, &ids);
            for (trainable, imp) in [
                (true, AttentionImpl::Blocked),
                (false, AttentionImpl::Kernel),
                (false, AttentionImpl::Blocked),
                (false, AttentionImpl::Full),
            ] {
                let h = hidden(&cfg, &vm, trainable, imp, &ids);
                let d = (&h - &reference)
                    .unwrap()
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                assert!(
                    d < 2e-5,
                    "{qk:?}/{placement:?} trainable={trainable} {imp:?}: {d}"
                );
            }
        }
    }

    #[test]
    fn rows_match_full_forward() {
        let cfg = config(QkNorm::PerHead, NormPlacement::Pre, None);
        let vm = VarMap::new();
        randomise(&cfg, &vm);
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
        let m = DecoderModel::new(&cfg, vb, ModelOptions::default()).unwrap();
        let ids = Tensor::from_vec((0..20u32).collect::<Vec<_>>(), (1, 20), &Device::Cpu).unwrap();
        let full = m.forward(&ids, 0, &mut KvCache::discarding()).unwrap();
        let rows = [0usize, 3, 4, 19];
        let part = m
            .forward_rows(&ids, 0, &mut KvCache::discarding(), &rows, 20)
            .unwrap();
        for (k, r) in rows.iter().enumerate() {
            let d = (part.narrow(1, k, 1).unwrap() - full.narrow(1, *r, 1).unwrap())
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(d < 1e-5, "row {r}: {d}");
        }
        assert!(m
            .forward_rows(&ids, 0, &mut KvCache::discarding(), &[3, 3], 20)
            .is_err());
    }

    /// Decoding through a growing cache (keys and values written into spare room, read by
    /// the kernel as a strided view) gives what one forward over the whole batch gives; a
    /// clone taken midway and continued with other tokens neither disturbs the original nor
    /// is disturbed by it (the shared buffer is copied, not written twice); rows selected
    /// and grown again stay right; and a broadcast cache (one row repeated, read in place)
    /// agrees too.
    #[test]
    fn growing_cache_decodes_like_one_forward() {
        let cfg = config(QkNorm::PerHead, NormPlacement::Pre, None);
        let vm = VarMap::new();
        randomise(&cfg, &vm);
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
        let m = DecoderModel::new(&cfg, vb, ModelOptions::default()).unwrap();
        let (b, n) = (3usize, 40usize);
        let seq = |row: usize, salt: u32| -> Vec<u32> {
            (0..n as u32)
                .map(|i| (i * 7 + row as u32 * 13 + salt) % 50)
                .collect()
        };
        let full = |rows: &[Vec<u32>]| -> Vec<Vec<f32>> {
            let flat: Vec<u32> = rows.iter().flatten().copied().collect();
            let ids = Tensor::from_vec(flat, (rows.len(), n), &Device::Cpu).unwrap();
            let h = m.forward(&ids, 0, &mut KvCache::discarding()).unwrap();
            m.logits(&h)
                .unwrap()
                .reshape((rows.len(), n * cfg.vocab_size))
                .unwrap()
                .to_vec2()
                .unwrap()
        };
        // Steps of `ids[.., from..to]`, one position at a time; logits per row, flat.
        let decode = |cache: &mut KvCache, rows: &[Vec<u32>], from: usize, to: usize| {
            let mut out = vec![Vec::new(); rows.len()];
            for p in from..to {
                let col: Vec<u32> = rows.iter().map(|r| r[p]).collect();
                let ids = Tensor::from_vec(col, (rows.len(), 1), &Device::Cpu).unwrap();
                let h = m.forward(&ids, p, cache).unwrap();
                let l: Vec<Vec<f32>> = m
                    .logits(&h)
                    .unwrap()
                    .reshape((rows.len(), cfg.vocab_size))
                    .unwrap()
                    .to_vec2()
                    .unwrap();
                for (o, x) in out.iter_mut().zip(l) {
                    o.extend(x);
                }
            }
            out
        };
        let close = |got: &[f32], want: &[f32], what: &str| {
            assert_eq!(got.len(), want.len(), "{what}");
            let d = got
                .iter()
                .zip(want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(d < 1e-4, "{what}: {d}");
        };
        let v = cfg.vocab_size;
        let a: Vec<Vec<u32>> = (0..b).map(|r| seq(r, 0)).collect();
        let want_a = full(&a);
        let mut cache = m.new_cache().growing();
        let mut got = decode(&mut cache, &a, 0, 20);
        // A clone at 20 positions continues with other tokens.
        let mut other: Vec<Vec<u32>> = a.clone();
        for r in other.iter_mut() {
            for x in r[20..].iter_mut() {
                *x = (*x + 5) % 50;
            }
        }
        // The two advance in turns, so that a buffer written by both would show.
        let mut twin = cache.clone();
        let (mut rest, mut twin_rest) = (vec![Vec::new(); b], vec![Vec::new(); b]);
        for p in 20..n {
            for (o, x) in rest.iter_mut().zip(decode(&mut cache, &a, p, p + 1)) {
                o.extend(x);
            }
            for (o, x) in twin_rest
                .iter_mut()
                .zip(decode(&mut twin, &other, p, p + 1))
            {
                o.extend(x);
            }
        }
        for r in 0..b {
            got[r].extend(&rest[r]);
            close(&got[r], &want_a[r], &format!("row {r}"));
            close(
                &twin_rest[r],
                &full(&other)[r][20 * v..],
                &format!("clone row {r}"),
            );
        }
        // Rows 2 and 0, selected at 20 positions, grow again.
        let mut cache = m.new_cache().growing();
        decode(&mut cache, &a, 0, 20);
        let mut sel = cache.select_rows(&[2, 0]).unwrap().growing();
        let picked = vec![a[2].clone(), a[0].clone()];
        let rest = decode(&mut sel, &picked, 20, n);
        close(&rest[0], &want_a[2][20 * v..], "selected row 2");
        close(&rest[1], &want_a[0][20 * v..], "selected row 0");
        // One row repeated as a broadcast view, continued by each copy.
        let mut one = m.new_cache();
        decode(&mut one, &a[..1], 0, 20);
        let mut rep = one.repeat_rows(2).unwrap();
        let pair = vec![a[0].clone(), other[0].clone()];
        let rest = decode(&mut rep, &pair, 20, n);
        close(&rest[0], &want_a[0][20 * v..], "broadcast row 0");
        close(&rest[1], &full(&other)[0][20 * v..], "broadcast row 1");
    }

    #[test]
    fn trainable_model_has_gradients() {
        let cfg = config(QkNorm::Full, NormPlacement::Sandwich, Some(3.0));
        let vm = VarMap::new();
        randomise(&cfg, &vm);
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
        for attention in [AttentionImpl::Full, AttentionImpl::Blocked] {
            let m = DecoderModel::new(
                &cfg,
                vb.clone(),
                ModelOptions {
                    trainable: true,
                    attention,
                },
            )
            .unwrap();
            let ids = Tensor::from_vec(vec![1u32, 5, 9, 2, 7, 7, 3], (1, 7), &Device::Cpu).unwrap();
            let h = m.forward(&ids, 0, &mut KvCache::discarding()).unwrap();
            let logits = m.logits(&h).unwrap();
            let lp = candle_nn::ops::log_softmax(&logits, candle_core::D::Minus1).unwrap();
            let loss = lp.mean_all().unwrap().neg().unwrap();
            let grads = loss.backward().unwrap();
            let data = vm.data().lock().unwrap();
            for name in [
                "model.embed_tokens.weight",
                "model.layers.0.self_attn.q_proj.weight",
                "model.layers.0.self_attn.q_norm.weight",
                "model.layers.1.mlp.up_proj.weight",
                "model.layers.1.post_feedforward_layernorm.weight",
                "model.norm.weight",
                "lm_head.weight",
            ] {
                let var = data.get(name).unwrap_or_else(|| panic!("{name} missing"));
                let g = grads
                    .get(var.as_tensor())
                    .unwrap_or_else(|| panic!("no gradient for {name}"));
                let n = g
                    .abs()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                assert!(n > 0.0, "{attention:?}: zero gradient for {name}");
            }
        }
    }
}
