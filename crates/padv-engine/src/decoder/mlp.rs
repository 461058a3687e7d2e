//! The gated MLP `down(act(gate(x)) · up(x))`.

use candle_core::{Result, Tensor, D};
use candle_nn::VarBuilder;

use super::linear::Linear;
use super::{ops, Activation, DecoderConfig};

#[derive(Debug, Clone)]
enum GateUp {
    /// One `[2I, H]` projection, gate rows first (Phi-3's layout, or fused at load).
    Fused(Linear),
    /// Separate projections (trainable path keeps the checkpoint's parameters).
    Split { gate: Linear, up: Linear },
}

/// Gated MLP.
#[derive(Debug, Clone)]
pub struct Mlp {
    gate_up: GateUp,
    down: Linear,
    act: Activation,
    intermediate: usize,
    fused_kernel: bool,
}

/// The activation with differentiable candle ops.
pub(crate) fn activate(x: &Tensor, act: Activation) -> Result<Tensor> {
    match act {
        Activation::Silu => x.silu(),
        Activation::GeluTanh => x.gelu(),
        Activation::GeluErf => x.gelu_erf(),
    }
}

impl Mlp {
    /// Reads `gate_proj`/`up_proj` (or `gate_up_proj`) and `down_proj` under `vb`. With
    /// `fuse`, separate gate/up are concatenated into one matrix and the activation runs in
    /// a fused CPU kernel.
    pub fn new(cfg: &DecoderConfig, vb: VarBuilder, fuse: bool) -> Result<Self> {
        let (h, i, bias) = (cfg.hidden_size, cfg.intermediate_size, cfg.mlp_bias);
        let gate_up = if cfg.fused_gate_up {
            GateUp::Fused(Linear::new(h, 2 * i, bias, vb.pp("gate_up_proj"))?)
        } else {
            let gate = Linear::new(h, i, bias, vb.pp("gate_proj"))?;
            let up = Linear::new(h, i, bias, vb.pp("up_proj"))?;
            if fuse {
                GateUp::Fused(Linear::concat(&[&gate, &up])?)
            } else {
                GateUp::Split { gate, up }
            }
        };
        let down = Linear::new(i, h, bias, vb.pp("down_proj"))?;
        Ok(Self {
            gate_up,
            down,
            act: cfg.activation,
            intermediate: i,
            fused_kernel: fuse,
        })
    }

    /// `[.., H] -> [.., H]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let hidden = match &self.gate_up {
            GateUp::Fused(l) => {
                let gu = l.forward(x)?;
                if self.fused_kernel && gu.device().is_cpu() && self.act != Activation::GeluErf {
                    ops::act_mul(&gu, self.act)?
                } else {
                    let i = self.intermediate;
                    let g = gu.narrow(D::Minus1, 0, i)?;
                    let u = gu.narrow(D::Minus1, i, i)?;
                    (activate(&g, self.act)? * u)?
                }
            }
            GateUp::Split { gate, up } => {
                (activate(&gate.forward(x)?, self.act)? * up.forward(x)?)?
            }
        };
        self.down.forward(&hidden)
    }
}
