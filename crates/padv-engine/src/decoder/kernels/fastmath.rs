//! Vectorisable elementwise math for the CPU kernels.
//!
//! The build targets baseline x86-64 (SSE2), so these loops are compiled twice: once as is
//! and once with AVX2+FMA enabled, picked at run time. `exp` is the Cephes single-precision
//! polynomial (relative error about 2e-7), branch-free so that it vectorises; libm's `expf`
//! does not, and the attention softmax evaluates billions of exponentials at long contexts.

/// e^x for f32, vectorisable; exactly 0 below -87.33 (also for -inf), +inf above 88.72
/// (between 88.37 and 88.72, where e^x nears f32::MAX, it returns e^88.37).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let xc = x.clamp(-87.33, 88.37);
    // Round x·log2 e to the nearest integer n by adding 1.5·2^23: the sum's low mantissa
    // bits then hold n (two's complement offset by 0x4B40_0000), so no float-to-int
    // conversion is needed (Rust's saturating `as i32` does not vectorise well).
    const MAGIC: f32 = 12_582_912.0;
    let kf = xc * LOG2E + MAGIC;
    let n = kf - MAGIC;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // 2^n from the exponent bits; n is within [-126, 127] after the clamp.
    let pow2 = f32::from_bits(kf.to_bits().wrapping_sub(0x4B40_0000).wrapping_add(127) << 23);
    let v = y * pow2;
    if x < -87.33 {
        0.0
    } else if x > 88.722_84 {
        f32::INFINITY
    } else {
        v
    }
}

/// tanh via `exp`: absolute error about 1e-7.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let e = exp(-2.0 * x.abs());
    let t = (1.0 - e) / (1.0 + e);
    if x < 0.0 {
        -t
    } else {
        t
    }
}

/// x·σ(x).
#[inline(always)]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + exp(-x))
}

/// GELU, tanh approximation (`gelu_pytorch_tanh`).
#[inline(always)]
pub fn gelu_tanh(x: f32) -> f32 {
    const K0: f32 = 0.797_884_6; // sqrt(2/pi)
    0.5 * x * (1.0 + tanh(K0 * (x + 0.044_715 * x * x * x)))
}

macro_rules! dispatch {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),*) -> $ret:ty $body:block) => {
        $(#[$doc])*
        $vis fn $name($($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn imp($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) -> $ret { imp($($arg),*) }
                if has_avx2() {
                    // SAFETY: the CPU supports AVX2 and FMA (checked at run time).
                    return unsafe { avx2($($arg),*) };
                }
            }
            imp($($arg),*)
        }
    };
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    })
}

dispatch! {
    /// Maximum of a slice (-inf when empty).
    pub fn max(xs: &[f32]) -> f32 {
        let mut acc = [f32::NEG_INFINITY; 8];
        let chunks = xs.chunks_exact(8);
        let rest = chunks.remainder();
        for c in chunks {
            for i in 0..8 {
                acc[i] = if c[i] > acc[i] { c[i] } else { acc[i] };
            }
        }
        let mut m = f32::NEG_INFINITY;
        for v in acc.iter().chain(rest) {
            m = if *v > m { *v } else { m };
        }
        m
    }
}

dispatch! {
    /// Replaces each x by e^(x - m) and returns their sum (f32, 8 partial sums).
    pub fn exp_sub_sum(xs: &mut [f32], m: f32) -> f32 {
        // A plain map (vectorised by the loop vectoriser), then a separate sum: a float
        // reduction inside the map would block vectorisation (no reassociation allowed).
        for x in xs.iter_mut() {
            *x = exp(*x - m);
        }
        let mut acc = [0f32; 8];
        let chunks = xs.chunks_exact(8);
        let rest = chunks.remainder();
        for c in chunks {
            for i in 0..8 {
                acc[i] += c[i];
            }
        }
        let mut s = 0f32;
        for x in rest {
            s += *x;
        }
        s + acc.iter().sum::<f32>()
    }
}

dispatch! {
    /// x <- c·tanh(x / c) (soft-capping).
    pub fn softcap(xs: &mut [f32], c: f32) -> () {
        let inv = 1.0 / c;
        for x in xs.iter_mut() {
            *x = c * tanh(*x * inv);
        }
    }
}

dispatch! {
    /// x <- x·s.
    pub fn scale(xs: &mut [f32], s: f32) -> () {
        for x in xs.iter_mut() {
            *x *= s;
        }
    }
}

dispatch! {
    /// out[i] = silu(gate[i]) · up[i].
    pub fn silu_mul(gate: &[f32], up: &[f32], out: &mut [f32]) -> () {
        for ((o, g), u) in out.iter_mut().zip(gate).zip(up) {
            *o = silu(*g) * *u;
        }
    }
}

dispatch! {
    /// out[i] = gelu_tanh(gate[i]) · up[i].
    pub fn gelu_tanh_mul(gate: &[f32], up: &[f32], out: &mut [f32]) -> () {
        for ((o, g), u) in out.iter_mut().zip(gate).zip(up) {
            *o = gelu_tanh(*g) * *u;
        }
    }
}

/// Scores of `r` queries (the rows of `q`, `r × d`, `d = q.len() / r`) against keys laid out
/// with a row stride (one key/value head of a `[T, Hkv, D]` cache):
/// `out[h·n + j] = q_h · keys[j·stride .. j·stride + d]` for `j < n = out.len() / r`.
/// The queries sharing a key/value head (GQA) read each key once.
///
/// Decoding spends most of its time here. When `d` is a multiple of 8 (every head size in
/// use) and the CPU has AVX2, eight keys are scored per step with explicit intrinsics
/// ([`strided_avx2`]); otherwise the portable loop runs. Both round every product and sum in
/// the same order, so they return the same bits (tested).
pub fn strided_dots(q: &[f32], r: usize, keys: &[f32], stride: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() && strided_avx2::dots(q, r, keys, stride, out) {
        return;
    }
    strided_dots_auto(q, r, keys, stride, out)
}

/// The portable scores of [`strided_dots`]: eight partial sums per product, reduced as
/// `((a0+a4)+(a1+a5)) + ((a2+a6)+(a3+a7))`, so that the loop vectorises.
#[inline(always)]
fn strided_dots_portable(q: &[f32], r: usize, keys: &[f32], stride: usize, out: &mut [f32]) {
    let d = q.len() / r.max(1);
    let n = out.len() / r.max(1);
    for j in 0..n {
        let k = &keys[j * stride..j * stride + d];
        for h in 0..r {
            out[h * n + j] = dot8(&q[h * d..(h + 1) * d], k);
        }
    }
}

/// `x · y` with eight partial sums (see [`strided_dots_portable`]).
#[inline(always)]
fn dot8(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (cx, cy) = (x.chunks_exact(8), y.chunks_exact(8));
    let (rx, ry) = (cx.remainder(), cy.remainder());
    for (a, b) in cx.zip(cy) {
        for i in 0..8 {
            acc[i] += a[i] * b[i];
        }
    }
    let mut s = 0f32;
    for (a, b) in rx.iter().zip(ry) {
        s += a * b;
    }
    s + ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

dispatch! {
    /// [`strided_dots_portable`] compiled for AVX2 when the CPU has it.
    fn strided_dots_auto(q: &[f32], r: usize, keys: &[f32], stride: usize, out: &mut [f32]) -> () {
        strided_dots_portable(q, r, keys, stride, out)
    }
}

/// Weighted sums of values laid out with a row stride, for `r` weight rows (`w` is `r × n`)
/// in groups of `group` rows sharing a value head (GQA): row `h` reads value head
/// `g = h / group`, the `d` values at `vals[j·stride + g·d ..]`, and
/// `out[h·d ..][..d] = Σ_j w[h·n + j] · vals[j·stride + g·d ..][..d]`, `d = out.len() / r`
/// (overwrites `out`). All heads of a key are summed in one pass over the keys. Explicit
/// AVX2 with the sums in registers when it applies ([`strided_avx2`]), the portable loop
/// otherwise; the same bits either way (tested).
pub fn strided_weighted_sum(
    w: &[f32],
    r: usize,
    group: usize,
    vals: &[f32],
    stride: usize,
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() && strided_avx2::weighted_sum(w, r, group, vals, stride, out) {
        return;
    }
    strided_weighted_sum_auto(w, r, group, vals, stride, out)
}

/// The portable loop of [`strided_weighted_sum`]: each output accumulates its terms in key
/// order.
#[inline(always)]
fn strided_weighted_sum_portable(
    w: &[f32],
    r: usize,
    group: usize,
    vals: &[f32],
    stride: usize,
    out: &mut [f32],
) {
    let d = out.len() / r.max(1);
    let n = w.len() / r.max(1);
    let group = group.max(1);
    let span = (r.max(1) - 1) / group * d + d;
    out.fill(0.0);
    for j in 0..n {
        let v = &vals[j * stride..j * stride + span];
        for h in 0..r {
            let wj = w[h * n + j];
            let vg = &v[h / group * d..][..d];
            for (o, x) in out[h * d..(h + 1) * d].iter_mut().zip(vg) {
                *o += wj * x;
            }
        }
    }
}

dispatch! {
    /// [`strided_weighted_sum_portable`] compiled for AVX2 when the CPU has it.
    fn strided_weighted_sum_auto(w: &[f32], r: usize, group: usize, vals: &[f32], stride: usize, out: &mut [f32]) -> () {
        strided_weighted_sum_portable(w, r, group, vals, stride, out)
    }
}

#[cfg(target_arch = "x86_64")]
mod strided_avx2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.3 {
            let rel = ((exp(x) as f64) - (x as f64).exp()).abs() / (x as f64).exp();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(100.0).is_infinite());
    }

    #[test]
    fn tanh_silu_gelu_match_reference() {
        for i in -200..200 {
            let x = i as f32 * 0.05;
            assert!((tanh(x) - x.tanh()).abs() < 3e-7, "tanh({x})");
            let s = x as f64 / (1.0 + (-(x as f64)).exp());
            assert!(
                (silu(x) as f64 - s).abs() < 1e-6 * (1.0 + s.abs()),
                "silu({x})"
            );
            let xd = x as f64;
            let g = 0.5
                * xd
                * (1.0
                    + ((2.0 / std::f64::consts::PI).sqrt() * (xd + 0.044715 * xd.powi(3))).tanh());
            assert!(
                (gelu_tanh(x) as f64 - g).abs() < 1e-6 * (1.0 + g.abs()),
                "gelu({x})"
            );
        }
    }

    /// The decoding kernels give the portable loops' bits for every head size, group size and
    /// key count (explicit AVX2 where it applies: d = 8, 16, 32, 64; remainders of eight
    /// keys; the portable path for d = 12), at a stride wider than the head.
    #[test]
    fn strided_kernels_give_the_portable_bits() {
        let mut rng = Lcg(7);
        for d in [8usize, 12, 16, 32, 64] {
            for r in [1usize, 2, 3, 4] {
                for n in [0usize, 1, 7, 8, 9, 16, 31, 100] {
                    // Wide enough for every value head of `r` rows (group 1).
                    let stride = (r + 1) * d + 3;
                    let q: Vec<f32> = (0..r * d).map(|_| rng.next()).collect();
                    let keys: Vec<f32> = (0..n * stride + d).map(|_| rng.next()).collect();
                    let (mut fast, mut slow) = (vec![9f32; r * n], vec![9f32; r * n]);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    // Random queries, and signed zeros (every product a zero of either sign:
                    // the sum's sign is where skipping the +0 start could show).
                    let zeros: Vec<f32> = (0..r * d)
                        .map(|i| if i % 3 == 0 { 0.0 } else { -0.0 })
                        .collect();
                    for q in [&q, &zeros] {
                        strided_dots(q, r, &keys, stride, &mut fast);
                        strided_dots_portable(q, r, &keys, stride, &mut slow);
                        assert_eq!(bits(&fast), bits(&slow), "dots d={d} r={r} n={n}");
                    }
                    let w: Vec<f32> = (0..r * n).map(|_| rng.next().abs()).collect();
                    // Every row its own value head, all rows one head, pairs.
                    for group in [1, r, 2] {
                        let (mut fast, mut slow) = (vec![9f32; r * d], vec![9f32; r * d]);
                        strided_weighted_sum(&w, r, group, &keys, stride, &mut fast);
                        strided_weighted_sum_portable(&w, r, group, &keys, stride, &mut slow);
                        let what = format!("weighted sum d={d} r={r} group={group} n={n}");
                        assert_eq!(bits(&fast), bits(&slow), "{what}");
                    }
                }
            }
        }
    }

    /// A small deterministic generator of values in (-1, 1) with varied exponents.
    pub(super) struct Lcg(pub u64);

    impl Lcg {
        pub(super) fn next(&mut self) -> f32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (self.0 >> 40) as f32 / (1u64 << 24) as f32;
            (2.0 * u - 1.0) * if self.0 & 1 == 0 { 1.0 } else { 1e-3 }
        }
    }

    #[test]
    fn max_and_exp_sum() {
        let v: Vec<f32> = (0..19).map(|i| ((i * 7) % 11) as f32 - 3.0).collect();
        // (i*7)%11 over i=0..18 reaches 10, so the max is 10 - 3 = 7.
        assert_eq!(max(&v), 7.0);
        assert_eq!(max(&[]), f32::NEG_INFINITY);
        let mut w = vec![0.0f32, 1.0, 2.0];
        // e^-2 + e^-1 + 1
        let s = exp_sub_sum(&mut w, 2.0);
        let expect = (-2f32).exp() + (-1f32).exp() + 1.0;
        assert!((s - expect).abs() < 1e-6);
        assert!((w[1] - (-1f32).exp()).abs() < 1e-7);
    }
}
