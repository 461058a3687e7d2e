//! Teacher-forced token log-probs of right-padded batches, with gradients (training) or
//! without (reference model), plus gradient accumulation and global-norm clipping.

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var, D};
use padv_engine::decoder::{DecoderModel, KvCache};

use crate::agent::{ctx, Result};

/// Right-pads `seqs` with `pad` to one `[B, T]` tensor; returns it and `T`.
pub fn pad_batch(seqs: &[&[u32]], pad: u32) -> Result<(Tensor, usize)> {
    let t = seqs.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut flat = Vec::with_capacity(seqs.len() * t);
    for s in seqs {
        flat.extend_from_slice(s);
        flat.extend(std::iter::repeat_n(pad, t - s.len()));
    }
    let ids = Tensor::from_vec(flat, (seqs.len(), t), &Device::Cpu).map_err(ctx("batch ids"))?;
    Ok((ids, t))
}

/// `[B, T-1]` log-probs: entry `(b, j)` is log p(ids[b, j+1] | ids[b, ..=j]). Differentiable
/// when `model` is the trainable build. Right padding never affects real positions (causal
/// attention), and padded entries are masked by the caller.
pub fn token_logprobs(model: &DecoderModel, ids: &Tensor) -> Result<Tensor> {
    let (b, t) = ids.dims2().map_err(ctx("batch shape"))?;
    if t < 2 {
        return Err(crate::agent::AgentError::Invalid(
            "token log-probs need sequences of at least 2 tokens".into(),
        ));
    }
    let run = || -> candle_core::Result<Tensor> {
        let inputs = ids.narrow(1, 0, t - 1)?.contiguous()?;
        let hidden = model.forward(&inputs, 0, &mut KvCache::discarding())?;
        let logits = model.logits(&hidden)?;
        let lp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        let targets = ids.narrow(1, 1, t - 1)?.contiguous()?.unsqueeze(2)?;
        lp.gather(&targets, 2)?.squeeze(2)?.reshape((b, t - 1))
    };
    run().map_err(ctx("token log-probs"))
}

/// A `[B, T-1]` f32 tensor from per-sequence weights indexed by token position (entry
/// `(b, j)` = `w[b][j+1]`, 0 past the end).
pub fn target_weights(w: &[Vec<f32>], t: usize) -> Result<Tensor> {
    let mut flat = Vec::with_capacity(w.len() * t.saturating_sub(1));
    for row in w {
        for j in 1..t {
            flat.push(row.get(j).copied().unwrap_or(0.0));
        }
    }
    Tensor::from_vec(flat, (w.len(), t.saturating_sub(1)), &Device::Cpu)
        .map_err(ctx("target weights"))
}

/// One micro-batch's forward and backward pass.
pub struct Pass {
    /// Its share of the loss.
    pub loss: f64,
    /// Tokens it processed (padding excluded).
    pub tokens: usize,
    /// Its gradients.
    pub grads: GradStore,
}

/// Runs `pass` on every micro-batch, as many at once as the rayon pool has threads, and
/// returns the results in input order, so that accumulating them is the same sum as a
/// sequential loop.
///
/// Why in parallel: a tiny model's forward and backward passes are mostly element-wise ops
/// that candle runs on one thread; several micro-batches at once keep every core busy (the
/// matrix products inside still use the pool).
pub fn parallel_passes<T: Sync>(
    chunks: &[T],
    pass: impl Fn(&T) -> Result<Pass> + Sync,
) -> Result<Vec<Pass>> {
    use rayon::prelude::*;
    chunks.par_iter().map(&pass).collect()
}

/// The forward and backward pass of one micro-batch for the loss −Σ w·log p / `denom`:
/// `seqs` right-padded with `pad`, `weights[b][p]` the weight of the target at position `p` of
/// sequence `b` (SFT: 1 on action tokens; RL: the advantage). `what` names the phase in
/// errors.
pub fn weighted_nll_pass(
    model: &DecoderModel,
    vars: &[Var],
    seqs: &[&[u32]],
    weights: &[Vec<f32>],
    pad: u32,
    denom: f64,
    what: &str,
) -> Result<Pass> {
    let tokens = seqs.iter().map(|s| s.len()).sum::<usize>();
    let (ids, t) = pad_batch(seqs, pad)?;
    let w = target_weights(weights, t)?;
    let lp = token_logprobs(model, &ids)?;
    let loss = (lp * w)
        .and_then(|x| x.sum_all())
        .and_then(|x| x.neg())
        .and_then(|x| x / denom)
        .map_err(ctx(format!("{what} loss")))?;
    let value = loss
        .to_scalar::<f32>()
        .map_err(ctx(format!("{what} loss")))? as f64;
    let mut all = loss.backward().map_err(ctx(format!("{what} backward")))?;
    // `backward` returns the gradient of every node of the graph (every activation); keep
    // the parameters' only, or a batch of passes waiting to be summed holds all of them
    // (a 128-rollout RL batch reached 20 GB).
    let mut grads = GradStore::default();
    for v in vars {
        if let Some(g) = all.remove(v.as_tensor()) {
            grads.insert(v.as_tensor(), g);
        }
    }
    Ok(Pass {
        loss: value,
        tokens,
        grads,
    })
}

/// Sums the passes in order: the accumulated gradients (None when there were no passes), the
/// total loss and the tokens processed.
pub fn sum_passes(passes: Vec<Pass>, vars: &[Var]) -> Result<(Option<GradStore>, f64, usize)> {
    let mut grads = None;
    let mut loss = 0f64;
    let mut tokens = 0usize;
    for pass in passes {
        loss += pass.loss;
        tokens += pass.tokens;
        accumulate(&mut grads, pass.grads, vars)?;
    }
    Ok((grads, loss, tokens))
}

/// Adds `new` into `acc` for every variable.
pub fn accumulate(acc: &mut Option<GradStore>, new: GradStore, vars: &[Var]) -> Result<()> {
    let Some(store) = acc else {
        *acc = Some(new);
        return Ok(());
    };
    for v in vars {
        if let Some(g) = new.get(v.as_tensor()) {
            let sum = match store.get(v.as_tensor()) {
                Some(old) => (old + g).map_err(ctx("accumulating gradients"))?,
                None => g.clone(),
            };
            store.insert(v.as_tensor(), sum);
        }
    }
    Ok(())
}

/// Scales all gradients so their global L2 norm is at most `max_norm`; returns the norm
/// before clipping.
pub fn clip_grad_norm(grads: &mut GradStore, vars: &[Var], max_norm: f64) -> Result<f64> {
    let mut sq = 0f64;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            sq += g
                .to_dtype(DType::F64)
                .and_then(|g| g.sqr()?.sum_all()?.to_scalar::<f64>())
                .map_err(ctx("gradient norm"))?;
        }
    }
    let norm = sq.sqrt();
    if norm.is_finite() && norm > max_norm && max_norm > 0.0 {
        let scale = max_norm / norm;
        for v in vars {
            if let Some(g) = grads.get(v.as_tensor()) {
                let s = (g * scale).map_err(ctx("clipping gradients"))?;
                grads.insert(v.as_tensor(), s);
            }
        }
    }
    Ok(norm)
}

/// The variables of a map, sorted by name (a fixed order for accumulation and clipping).
pub fn sorted_vars(varmap: &candle_nn::VarMap) -> Result<Vec<Var>> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| crate::agent::AgentError::Invalid("parameter map lock poisoned".into()))?;
    let mut named: Vec<(&String, &Var)> = data.iter().collect();
    named.sort_by(|a, b| a.0.cmp(b.0));
    Ok(named.into_iter().map(|(_, v)| v.clone()).collect())
}
