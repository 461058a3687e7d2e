//! Fused CPU kernels used by the inference path: rotary embedding straight from the fused
//! q/k/v projection output (no `contiguous` copy), and the gated activation `act(gate)·up`
//! in one pass over the fused gate/up output. Both run rows in parallel with rayon; candle's
//! own elementwise ops are single-threaded. They have no backward pass: the differentiable
//! path uses plain candle ops instead (see `super::model::ModelOptions`).

use std::sync::Arc;

use candle_core::{backend::BackendStorage, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::fastmath;
use super::Activation;

/// Float element types of CPU storage, computed in f32.
pub(crate) trait Elem: bytemuck::Pod + Send + Sync + 'static {
    fn to_f32(self) -> f32;
    fn from_f32(v: f32) -> Self;
}

impl Elem for f32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v
    }
}

impl Elem for half::bf16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        half::bf16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        half::bf16::from_f32(v)
    }
}

impl Elem for half::f16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        half::f16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        half::f16::from_f32(v)
    }
}

/// Rows handed to one rayon task (a row is one position's `heads × head_dim` values).
const ROWS_PER_TASK: usize = 16;

/// Applies RoPE (rotate-half convention) to `[B, T, H, D]` whose heads of one position are
/// contiguous (positions may be strided, as in a column slice of the fused projection).
/// `cos`/`sin` are `[T, rotary_dim/2]` f32 tables for the T positions; dims from
/// `rotary_dim` on pass through unchanged.
#[derive(Debug, Clone)]
pub(crate) struct RopeKernel {
    pub cos: Arc<Vec<f32>>,
    pub sin: Arc<Vec<f32>>,
    pub half: usize,
}

impl RopeKernel {
    fn run<T: Elem>(&self, src: &[T], l: &Layout) -> Result<(Vec<T>, Shape)> {
        let (b, t, h, d) = l.shape().dims4()?;
        let st = l.stride();
        if st[3] != 1 || st[2] != d {
            candle_core::bail!("rope kernel: heads must be contiguous, got strides {st:?}");
        }
        if self.cos.len() != t * self.half || 2 * self.half > d {
            candle_core::bail!("rope kernel: tables do not match {:?}", l.shape());
        }
        let (sb, stt, off) = (st[0], st[1], l.start_offset());
        let half = self.half;
        let row = h * d;
        let mut out = vec![T::from_f32(0.0); b * t * row];
        out.par_chunks_mut(ROWS_PER_TASK * row)
            .enumerate()
            .for_each(|(task, chunk)| {
                for (k, o) in chunk.chunks_mut(row).enumerate() {
                    let r = task * ROWS_PER_TASK + k;
                    let (bi, ti) = (r / t, r % t);
                    let s = &src[off + bi * sb + ti * stt..][..row];
                    let cos = &self.cos[ti * half..][..half];
                    let sin = &self.sin[ti * half..][..half];
                    for hh in 0..h {
                        let x = &s[hh * d..][..d];
                        let y = &mut o[hh * d..][..d];
                        for i in 0..half {
                            let (x1, x2) = (x[i].to_f32(), x[i + half].to_f32());
                            y[i] = T::from_f32(x1 * cos[i] - x2 * sin[i]);
                            y[i + half] = T::from_f32(x2 * cos[i] + x1 * sin[i]);
                        }
                        y[2 * half..].copy_from_slice(&x[2 * half..]);
                    }
                }
            });
        Ok((out, Shape::from_dims(&[b, t, h, d])))
    }
}

impl CustomOp1 for RopeKernel {
    fn name(&self) -> &'static str {
        "padv-rope"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        match s {
            CpuStorage::F32(v) => self.run(v, l).map(|(o, sh)| (CpuStorage::F32(o), sh)),
            CpuStorage::BF16(v) => self.run(v, l).map(|(o, sh)| (CpuStorage::BF16(o), sh)),
            CpuStorage::F16(v) => self.run(v, l).map(|(o, sh)| (CpuStorage::F16(o), sh)),
            other => candle_core::bail!("rope kernel: unsupported dtype {:?}", other.dtype()),
        }
    }
}

/// `act(x[.., :I]) · x[.., I:]` for a contiguous `[.., 2I]` input (gate first, then up).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ActMulKernel {
    pub act: Activation,
}

impl ActMulKernel {
    fn run<T: Elem>(&self, src: &[T], l: &Layout) -> Result<(Vec<T>, Shape)> {
        let Some((o1, o2)) = l.contiguous_offsets() else {
            candle_core::bail!("act-mul kernel: input must be contiguous");
        };
        let src = &src[o1..o2];
        let dims = l.shape().dims();
        let two_i = dims.last().copied().unwrap_or(0);
        if two_i % 2 != 0 {
            candle_core::bail!("act-mul kernel: odd last dim {two_i}");
        }
        let i = two_i / 2;
        let rows = src.len().checked_div(two_i).unwrap_or(0);
        let mut out = vec![T::from_f32(0.0); rows * i];
        let f: fn(&[f32], &[f32], &mut [f32]) = match self.act {
            Activation::Silu => fastmath::silu_mul,
            Activation::GeluTanh => fastmath::gelu_tanh_mul,
            Activation::GeluErf => candle_core::bail!("act-mul kernel: exact GELU not fused"),
        };
        if i > 0 {
            out.par_chunks_mut(i)
                .zip(src.par_chunks(two_i))
                .for_each_init(
                    || (vec![0f32; i], vec![0f32; i], vec![0f32; i]),
                    |(g, u, o), (dst, s)| {
                        if let (Some(sf), Some(df)) = (as_f32(s), as_f32_mut(dst)) {
                            f(&sf[..i], &sf[i..], df);
                        } else {
                            for k in 0..i {
                                g[k] = s[k].to_f32();
                                u[k] = s[k + i].to_f32();
                            }
                            f(g, u, o);
                            for (d, v) in dst.iter_mut().zip(o.iter()) {
                                *d = T::from_f32(*v);
                            }
                        }
                    },
                );
        }
        let mut out_dims = dims.to_vec();
        if let Some(last) = out_dims.last_mut() {
            *last = i;
        }
        Ok((out, Shape::from_dims(&out_dims)))
    }
}

/// Views a slice as f32 when it is one (avoids a conversion copy on the f32 path). The
/// `TypeId` check is what makes this the identity: a bf16 slice would also *cast* to f32
/// (pairs of values reinterpreted), which is never wanted here.
fn as_f32<T: Elem>(s: &[T]) -> Option<&[f32]> {
    if std::any::TypeId::of::<T>() != std::any::TypeId::of::<f32>() {
        return None;
    }
    bytemuck::try_cast_slice(s).ok()
}

fn as_f32_mut<T: Elem>(s: &mut [T]) -> Option<&mut [f32]> {
    if std::any::TypeId::of::<T>() != std::any::TypeId::of::<f32>() {
        return None;
    }
    bytemuck::try_cast_slice_mut(s).ok()
}

impl CustomOp1 for ActMulKernel {
    fn name(&self) -> &'static str {
        "padv-act-mul"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        match s {
            CpuStorage::F32(v) => self.run(v, l).map(|(o, sh)| (CpuStorage::F32(o), sh)),
            CpuStorage::BF16(v) => self.run(v, l).map(|(o, sh)| (CpuStorage::BF16(o), sh)),
            CpuStorage::F16(v) => self.run(v, l).map(|(o, sh)| (CpuStorage::F16(o), sh)),
            other => candle_core::bail!("act-mul kernel: unsupported dtype {:?}", other.dtype()),
        }
    }
}

/// Fused `act(gate)·up` on the CPU for `[.., 2I]` (gate first).
pub(crate) fn act_mul(x: &Tensor, act: Activation) -> Result<Tensor> {
    x.apply_op1_no_bwd(&ActMulKernel { act })
}
