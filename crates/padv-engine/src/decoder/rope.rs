//! Rotary position embeddings.
//!
//! Tables are ALWAYS computed in f32, following transformers' arithmetic step by step (f32
//! inverse frequencies, f32 `position × inv_freq`, f32 cos/sin, then a cast to the model
//! dtype): building them in bf16 rounds positions above ~256 (candle PR #3520). They are
//! computed per forward call for exactly the positions in it, so no `max_position × dim` table
//! is kept and long contexts need no precomputation.

use std::sync::Arc;

use candle_core::{DType, Device, Result, Tensor, D};

use super::{RopeScaling, RopeSpec};

/// Inverse frequencies (`rotary_dim / 2` of them) for a sequence of `seq_len` positions
/// (`seq_len` only matters for LongRoPE, which switches to the long factors past the
/// original context, as transformers does per forward call).
pub fn inv_freq(spec: &RopeSpec, seq_len: usize) -> Vec<f32> {
    let dim = spec.rotary_dim;
    let base = spec.theta as f32;
    let plain: Vec<f32> = (0..dim / 2)
        .map(|i| 1.0f32 / base.powf((2 * i) as f32 / dim as f32))
        .collect();
    match &spec.scaling {
        RopeScaling::None => plain,
        RopeScaling::Linear { factor } => plain.iter().map(|f| f / *factor as f32).collect(),
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } => {
            let (factor, low, high) = (
                *factor as f32,
                *low_freq_factor as f32,
                *high_freq_factor as f32,
            );
            let old = *original_max_position_embeddings as f32;
            let low_wavelen = old / low;
            let high_wavelen = old / high;
            plain
                .iter()
                .map(|&f| {
                    let wavelen = 2.0 * std::f32::consts::PI / f;
                    let scaled = if wavelen > low_wavelen { f / factor } else { f };
                    if wavelen < high_wavelen || wavelen > low_wavelen {
                        scaled
                    } else {
                        let smooth = (old / wavelen - low) / (high - low);
                        (1.0 - smooth) * scaled / factor + smooth * scaled
                    }
                })
                .collect()
        }
        RopeScaling::LongRope {
            short_factor,
            long_factor,
            original_max_position_embeddings,
            ..
        } => {
            let ext = if seq_len > *original_max_position_embeddings {
                long_factor
            } else {
                short_factor
            };
            (0..dim / 2)
                .map(|i| {
                    let shape = (2 * i) as f32 / dim as f32;
                    1.0f32 / (ext[i] as f32 * base.powf(shape))
                })
                .collect()
        }
    }
}

/// Multiplier of cos and sin (LongRoPE's attention factor; 1 otherwise).
pub fn attention_factor(spec: &RopeSpec) -> f32 {
    match &spec.scaling {
        RopeScaling::LongRope {
            attention_factor, ..
        } => *attention_factor as f32,
        _ => 1.0,
    }
}

/// cos and sin for consecutive positions `start..start+len`, `[len, rotary_dim/2]` each.
#[derive(Debug, Clone)]
pub struct RopeTables {
    /// Row-major `[len, rotary_dim/2]` cosines (times the attention factor).
    pub cos: Arc<Vec<f32>>,
    /// Row-major `[len, rotary_dim/2]` sines (times the attention factor).
    pub sin: Arc<Vec<f32>>,
    /// `rotary_dim / 2`.
    pub half: usize,
}

impl RopeTables {
    /// Tables for the given positions; `seq_len` is `max(positions) + 1` (LongRoPE choice).
    pub fn new(spec: &RopeSpec, positions: &[usize], seq_len: usize) -> Self {
        let inv = inv_freq(spec, seq_len);
        let scale = attention_factor(spec);
        let half = inv.len();
        let mut cos = Vec::with_capacity(positions.len() * half);
        let mut sin = Vec::with_capacity(positions.len() * half);
        for &p in positions {
            let p = p as f32;
            for f in &inv {
                let a = p * f;
                if scale == 1.0 {
                    cos.push(a.cos());
                    sin.push(a.sin());
                } else {
                    cos.push(a.cos() * scale);
                    sin.push(a.sin() * scale);
                }
            }
        }
        Self {
            cos: Arc::new(cos),
            sin: Arc::new(sin),
            half,
        }
    }

    /// Applies the rotation with tensor ops (differentiable; any device):
    /// `x·cos + rotate_half(x)·sin` on the first `rotary_dim` dims of `[B, T, H, D]`, the
    /// tables cast to `x`'s dtype first, as transformers does.
    pub fn apply_tensor(&self, x: &Tensor) -> Result<Tensor> {
        let (_b, t, _h, d) = x.dims4()?;
        let rd = 2 * self.half;
        let dev = x.device();
        let table = |v: &Arc<Vec<f32>>| -> Result<Tensor> {
            let half = Tensor::from_slice(v.as_slice(), (t, self.half), &Device::Cpu)?;
            Tensor::cat(&[&half, &half], 1)?
                .to_dtype(x.dtype())?
                .to_device(dev)?
                .reshape((1, t, 1, rd))
        };
        let (cos, sin) = (table(&self.cos)?, table(&self.sin)?);
        let x_rot = x.narrow(D::Minus1, 0, rd)?;
        let x1 = x_rot.narrow(D::Minus1, 0, self.half)?;
        let x2 = x_rot.narrow(D::Minus1, self.half, self.half)?;
        let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
        let y = (x_rot.broadcast_mul(&cos)? + rotated.broadcast_mul(&sin)?)?;
        if rd == d {
            Ok(y)
        } else {
            Tensor::cat(&[&y, &x.narrow(D::Minus1, rd, d - rd)?], D::Minus1)
        }
    }

    /// Applies the rotation with the fused CPU kernel (no backward; any float dtype).
    pub fn apply_cpu(&self, x: &Tensor) -> Result<Tensor> {
        let x = if x.dtype() == DType::F64 {
            x.to_dtype(DType::F32)?
        } else {
            x.clone()
        };
        let k = super::ops::RopeKernel {
            cos: self.cos.clone(),
            sin: self.sin.clone(),
            half: self.half,
        };
        let st = x.stride();
        let d = x.dim(3)?;
        let x = if st[3] == 1 && st[2] == d {
            x
        } else {
            x.contiguous()?
        };
        x.apply_op1_no_bwd(&k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(scaling: RopeScaling) -> RopeSpec {
        RopeSpec {
            theta: 10000.0,
            rotary_dim: 8,
            scaling,
        }
    }

    #[test]
    fn plain_inverse_frequencies() {
        // 1 / 10000^(2i/8) for i = 0..4: 1, 0.1, 0.01, 0.001
        let f = inv_freq(&spec(RopeScaling::None), 1);
        for (a, b) in f.iter().zip([1.0, 0.1, 0.01, 0.001]) {
            assert!((a - b).abs() < 1e-7 * b.max(1e-3) * 10.0, "{a} vs {b}");
        }
    }

    #[test]
    fn llama3_bands() {
        // old context 32, low 1, high 4: wavelengths 2π/f = 6.28, 62.8, 628, 6283.
        // high_wavelen = 8, low_wavelen = 32: the first is kept, the last two divided by 8,
        // the second (62.8 > 32) also divided.
        let s = spec(RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 32,
        });
        let f = inv_freq(&s, 1);
        assert!((f[0] - 1.0).abs() < 1e-7);
        assert!((f[1] - 0.1 / 8.0).abs() < 1e-8);
        assert!((f[3] - 0.001 / 8.0).abs() < 1e-10);
        // Old context 1000: high_wavelen 250, low_wavelen 1000; wavelen 62.8 is kept and
        // 628.3 lies in the medium band.
        let s = spec(RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 1000,
        });
        // smooth = (1000/628.3 - 1)/(4 - 1) = 0.19717; f = (1-s)·0.01/8 + s·0.01
        let f = inv_freq(&s, 1);
        assert!((f[1] - 0.1).abs() < 1e-8);
        let sm = (1000.0 / (2.0 * std::f64::consts::PI / 0.01) - 1.0) / 3.0;
        let expect = (1.0 - sm) * 0.01 / 8.0 + sm * 0.01;
        assert!((f[2] as f64 - expect).abs() < 1e-8, "{} vs {expect}", f[2]);
    }

    #[test]
    fn longrope_switches_on_length() {
        let s = RopeSpec {
            theta: 10000.0,
            rotary_dim: 4,
            scaling: RopeScaling::LongRope {
                short_factor: vec![1.0, 2.0],
                long_factor: vec![4.0, 8.0],
                original_max_position_embeddings: 16,
                attention_factor: 1.5,
            },
        };
        // 1/(ext · 10000^(2i/4)): short [1, 1/(2·100)], long [1/4, 1/(8·100)]
        let short = inv_freq(&s, 16);
        let long = inv_freq(&s, 17);
        assert!((short[1] - 0.005).abs() < 1e-9);
        assert!((long[0] - 0.25).abs() < 1e-9);
        assert!((long[1] - 0.00125).abs() < 1e-9);
        let t = RopeTables::new(&s, &[0, 1], 2);
        // position 0: cos = 1·1.5
        assert_eq!(t.cos[0], 1.5);
        assert_eq!(t.sin[0], 0.0);
    }

    #[test]
    fn cpu_kernel_matches_tensor_path_with_partial_rotary() {
        let s = RopeSpec {
            theta: 100.0,
            rotary_dim: 4,
            scaling: RopeScaling::None,
        };
        let positions: Vec<usize> = (5..12).collect();
        let t = RopeTables::new(&s, &positions, 12);
        let x = Tensor::randn(0f32, 1.0, (2, 7, 3, 6), &Device::Cpu).unwrap();
        let a = t.apply_tensor(&x).unwrap();
        let b = t.apply_cpu(&x).unwrap();
        let diff = (a - &b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-6, "{diff}");
        // The pass-through dims are untouched.
        let tail = (b.narrow(3, 4, 2).unwrap() - x.narrow(3, 4, 2).unwrap()).unwrap();
        assert_eq!(
            tail.abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap(),
            0.0
        );
        // Rotation preserves the norm of each rotated pair (x0, x2) at position 5, head 0.
        let xf = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let bf = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let n0 = xf[0] * xf[0] + xf[2] * xf[2];
        let n1 = bf[0] * bf[0] + bf[2] * bf[2];
        assert!((n0 - n1).abs() < 1e-5);
    }
}
