//! RMSNorm, computed in f32 whatever the model dtype (transformers upcasts too), with
//! Gemma's `(1 + w)` variant.

use candle_core::{DType, Result, Tensor, D};
use candle_nn::{Init, VarBuilder};

/// `x / sqrt(mean(x²) + eps) · w` over the last dimension.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    /// f32 weight; already `1 + w` when `unit_offset` was folded in.
    weight: Tensor,
    eps: f64,
    /// Add 1 to the weight at run time (differentiable path keeps the raw weight).
    unit_offset: bool,
    /// Use candle's fused (parallel, no backward) kernel.
    fused: bool,
}

impl RmsNorm {
    /// Reads `<vb>.weight` (`size` values). With `unit_offset` the stored weight is `w` of
    /// `1 + w` (Gemma; a fresh trainable one starts at 0). `fused` folds the offset in and
    /// uses the fast kernel, which has no backward pass.
    pub fn new(
        size: usize,
        eps: f64,
        unit_offset: bool,
        fused: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        let init = Init::Const(if unit_offset { 0.0 } else { 1.0 });
        let w = vb.get_with_hints_dtype(size, "weight", init, DType::F32)?;
        let (weight, unit_offset) = if fused && unit_offset {
            ((w + 1.0)?, false)
        } else {
            (w, unit_offset)
        };
        Ok(Self {
            weight,
            eps,
            unit_offset,
            fused,
        })
    }

    /// Normalises over the last dimension; the result has `x`'s dtype.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let x32 = x.to_dtype(DType::F32)?;
        let y = if self.fused {
            candle_nn::ops::rms_norm(&x32.contiguous()?, &self.weight, self.eps as f32)?
        } else {
            let var = x32.sqr()?.mean_keepdim(D::Minus1)?;
            let y = x32.broadcast_mul(&(var + self.eps)?.sqrt()?.recip()?)?;
            if self.unit_offset {
                y.broadcast_mul(&(&self.weight + 1.0)?)?
            } else {
                y.broadcast_mul(&self.weight)?
            }
        };
        y.to_dtype(dtype)
    }
}
