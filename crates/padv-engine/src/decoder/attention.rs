//! Self-attention: projections, optional q/k norms, RoPE, the key/value cache, and three
//! interchangeable implementations of causal (optionally sliding-window) attention with GQA:
//!
//! - [`AttentionImpl::Kernel`]: the blocked online-softmax CPU kernel (`flash.rs`); fastest,
//!   CPU only, no backward.
//! - [`AttentionImpl::Blocked`]: query blocks with tensor ops; any device, differentiable,
//!   memory `O(block × T)`.
//! - [`AttentionImpl::Full`]: the plain masked softmax over the whole `T × T` matrix;
//!   differentiable, the reference the others are tested against.
//!
//! GQA never repeats keys/values: the queries of the heads sharing a key/value head are laid
//! out as extra rows of one matrix instead.

use std::sync::Arc;

use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::VarBuilder;

use super::flash::{rows_contiguous, CpuAttention};
use super::linear::Linear;
use super::norm::RmsNorm;
use super::rope::RopeTables;
use super::{DecoderConfig, LayerSpec, QkNorm};

/// Which attention implementation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttentionImpl {
    /// `Full` for trainable models; else `Kernel` on the CPU and `Blocked` elsewhere.
    #[default]
    Auto,
    /// Blocked online-softmax CPU kernel (f32 inside).
    Kernel,
    /// Query-blocked tensor ops (differentiable, any device).
    Blocked,
    /// Whole-matrix masked softmax (differentiable reference).
    Full,
}

/// Queries per block of the tensor-op blocked path.
const TENSOR_QUERY_BLOCK: usize = 256;

#[derive(Debug, Clone)]
enum Qkv {
    Fused(Linear),
    Split(Linear, Linear, Linear),
}

/// Per-call inputs shared by all layers.
pub(crate) struct Step<'a> {
    /// Position of the first new token.
    pub offset: usize,
    /// RoPE tables of the new positions, one per rope spec.
    pub ropes: &'a [RopeTables],
    /// Resolved implementation (never `Auto`).
    pub imp: AttentionImpl,
}

/// One attention layer.
#[derive(Debug, Clone)]
pub struct Attention {
    qkv: Qkv,
    o: Linear,
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
    qk_norm: QkNorm,
    hq: usize,
    hkv: usize,
    d: usize,
    scale: f64,
    softcap: Option<f64>,
    window: Option<usize>,
    rope: usize,
    fused: bool,
}

impl Attention {
    /// Reads `q_proj`/`k_proj`/`v_proj` (or `qkv_proj`), `o_proj` and `q_norm`/`k_norm`
    /// under `vb`. `fused` concatenates separate q/k/v into one projection and uses the fused
    /// CPU kernels (no backward).
    pub fn new(
        cfg: &DecoderConfig,
        layer: &LayerSpec,
        vb: VarBuilder,
        fused: bool,
    ) -> Result<Self> {
        let (h, hq, hkv, d) = (
            cfg.hidden_size,
            cfg.num_heads,
            cfg.num_kv_heads,
            cfg.head_dim,
        );
        let qkv = if cfg.fused_qkv {
            Qkv::Fused(Linear::new(
                h,
                (hq + 2 * hkv) * d,
                cfg.qkv_bias,
                vb.pp("qkv_proj"),
            )?)
        } else {
            let q = Linear::new(h, hq * d, cfg.qkv_bias, vb.pp("q_proj"))?;
            let k = Linear::new(h, hkv * d, cfg.qkv_bias, vb.pp("k_proj"))?;
            let v = Linear::new(h, hkv * d, cfg.qkv_bias, vb.pp("v_proj"))?;
            if fused {
                Qkv::Fused(Linear::concat(&[&q, &k, &v])?)
            } else {
                Qkv::Split(q, k, v)
            }
        };
        let o = Linear::new(hq * d, h, cfg.o_bias, vb.pp("o_proj"))?;
        let norm = |size: usize, name: &str| {
            RmsNorm::new(
                size,
                cfg.rms_norm_eps,
                cfg.norm_unit_offset,
                fused,
                vb.pp(name),
            )
        };
        let (q_norm, k_norm) = match cfg.qk_norm {
            QkNorm::None => (None, None),
            QkNorm::PerHead => (Some(norm(d, "q_norm")?), Some(norm(d, "k_norm")?)),
            QkNorm::Full => (
                Some(norm(hq * d, "q_norm")?),
                Some(norm(hkv * d, "k_norm")?),
            ),
        };
        Ok(Self {
            qkv,
            o,
            q_norm,
            k_norm,
            qk_norm: cfg.qk_norm,
            hq,
            hkv,
            d,
            scale: cfg.attn_scale,
            softcap: cfg.attn_softcap,
            window: layer.sliding_window,
            rope: layer.rope,
            fused,
        })
    }

    /// `x` `[B, T, H]` at positions `offset..offset+T` -> `[B, T', H]`, where `T'` is the
    /// number of `query_rows` (indices into `0..T`, ascending) or `T`. `append` takes the
    /// new keys/values and returns those of positions `0..offset+T` (the cache's
    /// [`KvCache::append`](super::KvCache)).
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        step: &Step,
        append: &mut dyn FnMut(Tensor, Tensor) -> Result<(Tensor, Tensor)>,
        query_rows: Option<&[usize]>,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (hq, hkv, d) = (self.hq, self.hkv, self.d);
        let (q, k, v) = match &self.qkv {
            Qkv::Fused(l) => {
                let y = l.forward(x)?;
                match self.qk_norm {
                    QkNorm::Full => (
                        y.narrow(D::Minus1, 0, hq * d)?,
                        y.narrow(D::Minus1, hq * d, hkv * d)?,
                        y.narrow(D::Minus1, (hq + hkv) * d, hkv * d)?,
                    ),
                    // Heads as a dimension: the slices below keep each head contiguous, which
                    // the CPU RoPE kernel reads in place.
                    _ => {
                        let y = y.reshape((b, t, hq + 2 * hkv, d))?;
                        (
                            y.narrow(2, 0, hq)?,
                            y.narrow(2, hq, hkv)?,
                            y.narrow(2, hq + hkv, hkv)?,
                        )
                    }
                }
            }
            Qkv::Split(lq, lk, lv) => (lq.forward(x)?, lk.forward(x)?, lv.forward(x)?),
        };
        let (q, k) = match (self.qk_norm, &self.q_norm, &self.k_norm) {
            (QkNorm::None, _, _) | (_, None, _) | (_, _, None) => (q, k),
            (QkNorm::Full, Some(nq), Some(nk)) => (nq.forward(&q)?, nk.forward(&k)?),
            (QkNorm::PerHead, Some(nq), Some(nk)) => (
                nq.forward(&shaped(&q, &[b, t, hq, d])?)?,
                nk.forward(&shaped(&k, &[b, t, hkv, d])?)?,
            ),
        };
        let q = shaped(&q, &[b, t, hq, d])?;
        let k = shaped(&k, &[b, t, hkv, d])?;
        let v = shaped(&v, &[b, t, hkv, d])?.contiguous()?;
        let tables = &step.ropes[self.rope];
        let (q, k) = if self.fused && x.device().is_cpu() {
            (tables.apply_cpu(&q)?, tables.apply_cpu(&k)?)
        } else {
            (tables.apply_tensor(&q)?, tables.apply_tensor(&k)?)
        };
        let (k, v) = append(k, v)?;
        let (q, q_pos): (Tensor, Vec<usize>) = match query_rows {
            Some(rows) => {
                let idx: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
                let idx = Tensor::from_vec(idx, rows.len(), q.device())?;
                (
                    q.contiguous()?.index_select(&idx, 1)?,
                    rows.iter().map(|r| step.offset + r).collect(),
                )
            }
            None => (q, (step.offset..step.offset + t).collect()),
        };
        let out = match step.imp {
            AttentionImpl::Kernel => self.attend_kernel(&q, &k, &v, q_pos)?,
            AttentionImpl::Blocked => self.attend_blocked(&q, &k, &v, &q_pos)?,
            AttentionImpl::Full | AttentionImpl::Auto => self.attend_tensor(&q, &k, &v, &q_pos)?,
        };
        let tq = out.dim(1)?;
        self.o.forward(&out.reshape((b, tq, hq * d))?)
    }

    fn attend_kernel(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        q_pos: Vec<usize>,
    ) -> Result<Tensor> {
        let dtype = q.dtype();
        let f32c = |x: &Tensor| -> Result<Tensor> { x.to_dtype(DType::F32)?.contiguous() };
        // Keys and values are read in place when each row is contiguous (a growing cache's
        // view of its buffer, a broadcast of one row), copied otherwise.
        let f32rows = |x: &Tensor| -> Result<Tensor> {
            let x = x.to_dtype(DType::F32)?;
            if rows_contiguous(x.layout()) {
                Ok(x)
            } else {
                x.contiguous()
            }
        };
        let op = CpuAttention {
            scale: self.scale as f32,
            softcap: self.softcap.map(|c| c as f32),
            window: self.window,
            q_pos: Arc::new(q_pos),
        };
        f32c(q)?
            .apply_op3_no_bwd(&f32rows(k)?, &f32rows(v)?, &op)?
            .to_dtype(dtype)
    }

    /// Query blocks, each against only the keys it may see.
    fn attend_blocked(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        q_pos: &[usize],
    ) -> Result<Tensor> {
        let t = q_pos.len();
        if t <= TENSOR_QUERY_BLOCK {
            return self.attend_range(q, k, v, q_pos);
        }
        let mut outs = Vec::with_capacity(t.div_ceil(TENSOR_QUERY_BLOCK));
        for i0 in (0..t).step_by(TENSOR_QUERY_BLOCK) {
            let n = TENSOR_QUERY_BLOCK.min(t - i0);
            outs.push(self.attend_range(&q.narrow(1, i0, n)?, k, v, &q_pos[i0..i0 + n])?);
        }
        Tensor::cat(&outs, 1)
    }

    /// Like `attend_tensor`, on the key range `[lowest visible, highest visible]` only.
    fn attend_range(&self, q: &Tensor, k: &Tensor, v: &Tensor, q_pos: &[usize]) -> Result<Tensor> {
        let hi = q_pos.iter().max().map_or(0, |p| p + 1);
        let lo = q_pos
            .iter()
            .map(|&p| self.window.map_or(0, |w| (p + 1).saturating_sub(w)))
            .min()
            .unwrap_or(0);
        let shifted: Vec<usize> = q_pos.iter().map(|p| p - lo).collect();
        self.attend_tensor(
            q,
            &k.narrow(1, lo, hi - lo)?,
            &v.narrow(1, lo, hi - lo)?,
            &shifted,
        )
    }

    /// Masked softmax attention with tensor ops, in transformers' order: `q·k · scale`,
    /// soft-cap, mask, softmax in f32, cast back, `· v`.
    fn attend_tensor(&self, q: &Tensor, k: &Tensor, v: &Tensor, q_pos: &[usize]) -> Result<Tensor> {
        let (b, t, hq, d) = q.dims4()?;
        let tk = k.dim(1)?;
        let (hkv, n_rep) = (self.hkv, hq / self.hkv);
        let dtype = q.dtype();
        // [B, Hkv, n_rep·T, D]: the heads sharing a key/value head become rows.
        let q = q
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, hkv, n_rep * t, d))?;
        let k = k.transpose(1, 2)?.contiguous()?;
        let v = v.transpose(1, 2)?.contiguous()?;
        let mut s = (q.matmul(&k.t()?)? * self.scale)?;
        if let Some(c) = self.softcap {
            s = ((s / c)?.tanh()? * c)?;
        }
        let mask = causal_mask(q_pos, tk, self.window, s.device())?;
        let s = s
            .to_dtype(DType::F32)?
            .reshape((b, hkv, n_rep, t, tk))?
            .broadcast_add(&mask)?;
        let p = candle_nn::ops::softmax(&s, D::Minus1)?
            .to_dtype(dtype)?
            .reshape((b, hkv, n_rep * t, tk))?;
        p.matmul(&v)?
            .reshape((b, hq, t, d))?
            .transpose(1, 2)?
            .contiguous()
    }
}

/// `x` with shape `dims`, without the copy `reshape` makes of a strided tensor when the
/// shape already matches.
fn shaped(x: &Tensor, dims: &[usize]) -> Result<Tensor> {
    if x.dims() == dims {
        Ok(x.clone())
    } else {
        x.reshape(dims)
    }
}

/// `[T, Tk]` f32: 0 where query `i` (at `q_pos[i]`) may attend key `j`, -inf elsewhere.
pub(crate) fn causal_mask(
    q_pos: &[usize],
    tk: usize,
    window: Option<usize>,
    dev: &Device,
) -> Result<Tensor> {
    let mut m = vec![0f32; q_pos.len() * tk];
    for (i, &p) in q_pos.iter().enumerate() {
        let lo = window.map_or(0, |w| (p + 1).saturating_sub(w));
        for (j, x) in m[i * tk..(i + 1) * tk].iter_mut().enumerate() {
            if j > p || j < lo {
                *x = f32::NEG_INFINITY;
            }
        }
    }
    Tensor::from_vec(m, (q_pos.len(), tk), dev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_is_causal_with_window() {
        // queries at positions 1 and 3 over 4 keys, window 2: row 1 sees keys 0..=1, row 3
        // sees keys 2..=3.
        let m = causal_mask(&[1, 3], 4, Some(2), &Device::Cpu).unwrap();
        let m = m.to_vec2::<f32>().unwrap();
        let ninf = f32::NEG_INFINITY;
        assert_eq!(m[0], vec![0.0, 0.0, ninf, ninf]);
        assert_eq!(m[1], vec![ninf, ninf, 0.0, 0.0]);
    }
}
