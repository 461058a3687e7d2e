//! Per-row statistics of a next-token distribution, from its logits.
//!
//! For logits z over V tokens with m = max z and s = Σ e^(z−m):
//! logsumexp = m + ln s; log p(target) = z_target − logsumexp; entropy (nats)
//! H = ln s − Σ e^(z−m)(z−m) / s; vocabulary mean (1/V)Σ log p = mean(z) − logsumexp;
//! top-k mean = mean of the k largest z − logsumexp. Exponentials are f32 (vectorised);
//! every sum is accumulated in f64, since V is ~10⁵ terms.

use crate::decoder::fastmath as math;

/// How many of the largest log-probs `topk_mean` averages.
pub const TOP_K: usize = 20;

/// Statistics of one distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowStats {
    /// log p(target).
    pub logprob: f32,
    /// Mean of the `TOP_K` largest log-probs (all of them when V < `TOP_K`).
    pub topk_mean: f32,
    /// Entropy in nats.
    pub entropy: f32,
    /// (1/V)·Σ_v log p(v).
    pub vocab_mean: f32,
}

/// Sum in f64 with 4 independent accumulators (vectorisable).
fn sum_f64(xs: &[f32]) -> f64 {
    let mut acc = [0f64; 4];
    let chunks = xs.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..4 {
            acc[i] += c[i] as f64;
        }
    }
    acc.iter().sum::<f64>() + rest.iter().map(|&x| x as f64).sum::<f64>()
}

/// Σ a_i·b_i in f64.
fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = [0f64; 4];
    let ca = a.chunks_exact(4);
    let cb = b.chunks_exact(4);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..4 {
            acc[i] += x[i] as f64 * y[i] as f64;
        }
    }
    acc.iter().sum::<f64>()
        + ra.iter()
            .zip(rb)
            .map(|(&x, &y)| x as f64 * y as f64)
            .sum::<f64>()
}

/// Mean of the `k` largest values (k ≥ 1, k ≤ len).
fn top_k_mean(z: &[f32], k: usize) -> f64 {
    // Descending; top[k-1] is the entry threshold.
    let mut top: Vec<f32> = vec![f32::NEG_INFINITY; k];
    for &v in z {
        if v > top[k - 1] {
            let mut i = k - 1;
            while i > 0 && top[i - 1] < v {
                top[i] = top[i - 1];
                i -= 1;
            }
            top[i] = v;
        }
    }
    top.iter().map(|&x| x as f64).sum::<f64>() / k as f64
}

/// `e = e^(z − m)` into `e` (reused) with `m = max z`; returns `(m, Σ e)`. The one
/// log-softmax kernel: [`row_stats`] and [`log_sum_exp`] (the server's `/v1/completions`) both
/// use it, so every log-prob padv reports is computed the same way.
fn exp_shifted(z: &[f32], e: &mut Vec<f32>) -> (f32, f64) {
    let m = math::max(z);
    e.clear();
    e.extend_from_slice(z);
    math::exp_sub_sum(e, m);
    (m, sum_f64(e))
}

/// `log Σ_v e^{z_v}` of a row of (already soft-capped) logits, so that
/// `z_t − log_sum_exp(z)` is the log-prob of token `t` exactly as [`row_stats`] computes it.
pub fn log_sum_exp(z: &[f32]) -> f64 {
    let (m, s) = exp_shifted(z, &mut Vec::with_capacity(z.len()));
    m as f64 + s.ln()
}

/// Statistics of the row `logits` (length V ≥ 1), soft-capped first when `softcap` is set
/// (`c·tanh(z/c)`, as Gemma 2 does). `scratch` is reused between calls. With `stats` false
/// only `logprob` is computed (the others are NaN).
pub fn row_stats(
    logits: &[f32],
    target: usize,
    softcap: Option<f32>,
    stats: bool,
    scratch: &mut Vec<f32>,
) -> RowStats {
    scratch.clear();
    scratch.extend_from_slice(logits);
    if let Some(c) = softcap {
        math::softcap(scratch, c);
    }
    let z: &[f32] = scratch.as_slice();
    let z_target = z.get(target).copied().unwrap_or(f32::NAN);
    // e = e^(z − m), in a second buffer so z stays available.
    let mut e = Vec::with_capacity(z.len());
    let (m, s) = exp_shifted(z, &mut e);
    let lse = m as f64 + s.ln();
    let logprob = (z_target as f64 - lse) as f32;
    if !stats {
        return RowStats {
            logprob,
            topk_mean: f32::NAN,
            entropy: f32::NAN,
            vocab_mean: f32::NAN,
        };
    }
    let v = z.len();
    let vocab_mean = (sum_f64(z) / v as f64 - lse) as f32;
    // Σ e^(z−m)·(z−m) = Σ e·z − m·s
    let ez = dot_f64(&e, z) - m as f64 * s;
    let entropy = (s.ln() - ez / s) as f32;
    let topk_mean = (top_k_mean(z, TOP_K.min(v).max(1)) - lse) as f32;
    RowStats {
        logprob,
        topk_mean,
        entropy,
        vocab_mean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_sum_exp_is_the_row_stats_normaliser() {
        let z = [0.5f32, -1.0, 3.25, 2.0, -7.5];
        let mut s = Vec::new();
        let lse = log_sum_exp(&z);
        let want = z.iter().map(|&x| (x as f64).exp()).sum::<f64>().ln();
        assert!((lse - want).abs() < 1e-6, "{lse} vs {want}");
        for (t, &zt) in z.iter().enumerate() {
            let r = row_stats(&z, t, None, false, &mut s);
            assert_eq!(r.logprob, (zt as f64 - lse) as f32);
        }
    }

    #[test]
    fn uniform_distribution() {
        // V = 4 equal logits: p = 1/4 each, log p = -ln 4, entropy ln 4, every mean -ln 4.
        let mut s = Vec::new();
        let r = row_stats(&[3.0; 4], 2, None, true, &mut s);
        let l4 = 4f32.ln();
        assert!((r.logprob + l4).abs() < 1e-6);
        assert!((r.entropy - l4).abs() < 1e-6);
        assert!((r.vocab_mean + l4).abs() < 1e-6);
        assert!((r.topk_mean + l4).abs() < 1e-6); // V < 20: mean over all 4
    }

    #[test]
    fn two_point_distribution() {
        // logits [0, ln 3]: p = [1/4, 3/4]; log p = [-ln 4, ln 3 - ln 4].
        // entropy = -(1/4 ln 1/4 + 3/4 ln 3/4) = ln 4 - (3/4) ln 3.
        let z = [0.0f32, 3f32.ln()];
        let mut s = Vec::new();
        let r = row_stats(&z, 0, None, true, &mut s);
        let (l3, l4) = (3f64.ln(), 4f64.ln());
        assert!((r.logprob as f64 + l4).abs() < 1e-6);
        assert!((r.entropy as f64 - (l4 - 0.75 * l3)).abs() < 1e-6);
        // vocab mean = (-ln4 + ln3 - ln4)/2
        assert!((r.vocab_mean as f64 - (l3 - 2.0 * l4) / 2.0).abs() < 1e-6);
    }

    #[test]
    fn top_k_picks_largest_twenty() {
        // z_i = i for i in 0..100; top 20 are 80..99, mean 89.5.
        let z: Vec<f32> = (0..100).rev().map(|i| i as f32).collect();
        assert!((top_k_mean(&z, 20) - 89.5).abs() < 1e-12);
        let mut s = Vec::new();
        let r = row_stats(&z, 0, None, true, &mut s);
        // lse = 99 + ln(Σ_{k=0}^{99} e^{-k}) = 99 + ln(1/(1 - e^-1)) (to 1e-40)
        let lse = 99.0 + (1.0 / (1.0 - (-1f64).exp())).ln();
        assert!((r.topk_mean as f64 - (89.5 - lse)).abs() < 1e-5);
        assert!((r.logprob as f64 - (99.0 - lse)).abs() < 1e-5); // target 0 holds z = 99
    }

    #[test]
    fn softcap_applies_before_statistics() {
        // c = 1: z' = tanh(z); [tanh 0, tanh 10] = [0, 0.99999999588]
        let mut s = Vec::new();
        let r = row_stats(&[0.0, 10.0], 0, Some(1.0), false, &mut s);
        let t = 10f64.tanh();
        let expect = -(1.0 + t.exp()).ln();
        assert!(
            (r.logprob as f64 - expect).abs() < 1e-6,
            "{} vs {expect}",
            r.logprob
        );
        assert!(r.entropy.is_nan());
    }
}
