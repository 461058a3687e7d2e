//! Explicit AVX2 forms of the two decoding kernels ([`super::strided_dots`],
//! [`super::strided_weighted_sum`]).
//!
//! Why by hand: with a head size of 16 the auto-vectorised loops spend most of their time on
//! the horizontal sum of each dot product (shuffles on 128-bit halves, one key at a time) and
//! on loop control, not on arithmetic; decoding a sample of the gym's verbose agent spent 63 %
//! of its time in them. Here eight keys are scored at once and their eight horizontal sums
//! share one transpose (two `permute2f128`, one add, three `hadd` per eight keys), and the
//! weighted sums stay in registers across the keys.
//!
//! **Same bits as the portable loops.** Every product is rounded, then added (no fused
//! multiply-add, as in the portable code, which Rust never contracts), and every sum is
//! taken in the portable order: a key's eight partial sums `a_i` (lane `i` accumulates
//! chunks in order, starting from +0) are reduced as `((a0+a4)+(a1+a5)) + ((a2+a6)+(a3+a7))`
//! and added to +0; a weighted sum accumulates its terms in key order from +0. So decoding
//! gives the same bits whichever path runs (the tests compare the bits).
//!
//! Each function returns `false`, touching nothing, when its shapes are not the ones it
//! handles (a head size not in 8·{1, 2, 4, 8}, or slices too short); the caller then runs the
//! portable loop, which panics on short slices as before.

use std::arch::x86_64::*;

/// [`super::strided_dots`] for `d = 8·C`, `C ∈ {1, 2, 4, 8}`; the caller has checked AVX2
/// and FMA.
pub(super) fn dots(q: &[f32], r: usize, keys: &[f32], stride: usize, out: &mut [f32]) -> bool {
    let Some((d, n)) = shapes(q.len(), out.len(), r) else {
        return false;
    };
    if !fits(keys.len(), n, stride, d) {
        return false;
    }
    // SAFETY: the CPU has AVX2 and FMA (checked by the only caller). Loads read q at
    // h·d + 8c + 8 ≤ r·d ≤ q.len(), keys at j·stride + 8c + 8 ≤ (n-1)·stride + d ≤ keys.len()
    // for j < n, c < C = d/8; stores write out at h·n + j + 8 ≤ r·n ≤ out.len().
    unsafe {
        match d / 8 {
            1 => dots_c::<1>(q, r, keys, stride, out, n),
            2 => dots_c::<2>(q, r, keys, stride, out, n),
            4 => dots_c::<4>(q, r, keys, stride, out, n),
            8 => dots_c::<8>(q, r, keys, stride, out, n),
            _ => return false,
        }
    }
    true
}

/// [`super::strided_weighted_sum`] for `d = 8·C`, `C ∈ {1, 2, 4, 8}`; the caller has checked
/// AVX2 and FMA.
pub(super) fn weighted_sum(
    w: &[f32],
    r: usize,
    group: usize,
    vals: &[f32],
    stride: usize,
    out: &mut [f32],
) -> bool {
    let Some((d, n)) = shapes(out.len(), w.len(), r) else {
        return false;
    };
    if group == 0 {
        return false;
    }
    // The values a key's rows read: up to the last row's head.
    let Some(span) = ((r - 1) / group)
        .checked_mul(d)
        .and_then(|x| x.checked_add(d))
    else {
        return false;
    };
    if !fits(vals.len(), n, stride, span) {
        return false;
    }
    // SAFETY: the CPU has AVX2 and FMA (checked by the only caller). Loads read vals at
    // j·stride + g·d + 8c + 8 ≤ (n-1)·stride + span ≤ vals.len() for j < n, every head
    // g ≤ (r-1)/group and c < C = d/8, and w at h·n + j < r·n ≤ w.len(); stores write out at
    // h·d + 8c + 8 ≤ r·d ≤ out.len().
    unsafe {
        match d / 8 {
            1 => wsum_c::<1>(w, r, group, vals, stride, out, n),
            2 => wsum_c::<2>(w, r, group, vals, stride, out, n),
            4 => wsum_c::<4>(w, r, group, vals, stride, out, n),
            8 => wsum_c::<8>(w, r, group, vals, stride, out, n),
            _ => return false,
        }
    }
    true
}

/// Whether `n` rows of `width` values at `stride` fit in `len` values: `(n-1)·stride + width
/// ≤ len`, computed without overflow (an overflow means they do not).
fn fits(len: usize, n: usize, stride: usize, width: usize) -> bool {
    n == 0
        || (n - 1)
            .checked_mul(stride)
            .and_then(|x| x.checked_add(width))
            .is_some_and(|need| need <= len)
}

/// `(d, n)` from the lengths of the `r × d` and `r × n` operands, when `d` is a non-zero
/// multiple of 8.
fn shapes(rd: usize, rn: usize, r: usize) -> Option<(usize, usize)> {
    if r == 0 {
        return None;
    }
    let (d, n) = (rd / r, rn / r);
    (d > 0 && d % 8 == 0).then_some((d, n))
}

/// Scores, eight keys per step; see [`dots`] for the bounds. (Pointer steps rather than
/// index arithmetic, and named accumulators rather than an indexed array: both keep the
/// loop in registers, also in builds with overflow checks.)
#[target_feature(enable = "avx2,fma")]
unsafe fn dots_c<const C: usize>(
    q: &[f32],
    r: usize,
    keys: &[f32],
    stride: usize,
    out: &mut [f32],
    n: usize,
) {
    let d = 8 * C;
    let n8 = n - n % 8;
    let zero = _mm256_setzero_ps();
    // The transpose below leaves the sums in key order 0, 2, 4, 6, 1, 3, 5, 7.
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    // Lane i of the result: the i-th partial sum a_i of q_h · key, chunks in order from +0.
    // (Macros, not closures: a closure is not compiled with the function's target features,
    // and passing vectors to it went through the stack.)
    // The portable loop starts each partial sum at +0; `+0 + x` is `x` except that it turns a
    // -0 into +0, and a zero's sign cannot reach the result (`x + ±0 = x` for x ≠ 0, and
    // the final `+0 + total` turns a -0 total into +0), so the first chunk's product is
    // taken as is.
    macro_rules! prod {
        ($qh:expr, $kr:expr) => {{
            let kr: *const f32 = $kr;
            let mut acc = _mm256_mul_ps($qh[0], _mm256_loadu_ps(kr));
            for c in 1..C {
                acc = _mm256_add_ps(acc, _mm256_mul_ps($qh[c], _mm256_loadu_ps(kr.add(8 * c))));
            }
            acc
        }};
    }
    // Per key pair: [a0+a4, a1+a5, a2+a6, a3+a7] of each key, side by side.
    macro_rules! fold {
        ($x:expr, $y:expr) => {{
            let (x, y) = ($x, $y);
            _mm256_add_ps(
                _mm256_permute2f128_ps::<0x20>(x, y),
                _mm256_permute2f128_ps::<0x31>(x, y),
            )
        }};
    }
    let mut qrow = q.as_ptr();
    let mut orow = out.as_mut_ptr();
    for _ in 0..r {
        let mut qh = [zero; C];
        for (c, v) in qh.iter_mut().enumerate() {
            *v = _mm256_loadu_ps(qrow.add(8 * c));
        }
        let mut k0 = keys.as_ptr();
        let mut o = orow;
        for _ in 0..n8 / 8 {
            let p0 = prod!(qh, k0);
            let p1 = prod!(qh, k0.add(stride));
            let p2 = prod!(qh, k0.add(2 * stride));
            let p3 = prod!(qh, k0.add(3 * stride));
            let p4 = prod!(qh, k0.add(4 * stride));
            let p5 = prod!(qh, k0.add(5 * stride));
            let p6 = prod!(qh, k0.add(6 * stride));
            let p7 = prod!(qh, k0.add(7 * stride));
            // hadd twice: ((a0+a4)+(a1+a5)) + ((a2+a6)+(a3+a7)) per key.
            let s = _mm256_hadd_ps(
                _mm256_hadd_ps(fold!(p0, p1), fold!(p2, p3)),
                _mm256_hadd_ps(fold!(p4, p5), fold!(p6, p7)),
            );
            let s = _mm256_add_ps(zero, s);
            _mm256_storeu_ps(o, _mm256_permutevar8x32_ps(s, order));
            k0 = k0.add(8 * stride);
            o = o.add(8);
        }
        qrow = qrow.add(d);
        orow = orow.add(n);
    }
    for j in n8..n {
        let k = &keys[j * stride..j * stride + d];
        for h in 0..r {
            out[h * n + j] = super::dot8(&q[h * d..(h + 1) * d], k);
        }
    }
}

/// Weighted sums: rows in blocks of as many as keep their sums in registers
/// ([`wsum_block`]; eight vectors: with a head size of 16, the four query heads of a GQA
/// model with two key/value heads in one pass, so eight independent additions are in
/// flight per key instead of four).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn wsum_c<const C: usize>(
    w: &[f32],
    r: usize,
    group: usize,
    vals: &[f32],
    stride: usize,
    out: &mut [f32],
    n: usize,
) {
    let mut h = 0;
    while h < r {
        let left = r - h;
        let g = if 8 * C <= 8 && left >= 8 {
            wsum_block::<C, 8>(w, h, group, vals, stride, out, n);
            8
        } else if 4 * C <= 8 && left >= 4 {
            wsum_block::<C, 4>(w, h, group, vals, stride, out, n);
            4
        } else if 2 * C <= 8 && left >= 2 {
            wsum_block::<C, 2>(w, h, group, vals, stride, out, n);
            2
        } else {
            wsum_block::<C, 1>(w, h, group, vals, stride, out, n);
            1
        };
        h += g;
    }
}

/// Weighted sums of rows `h0 .. h0 + G`, their `G·C` sums in registers. A row's values are
/// read at its head's offset (a repeated load, from L1, when rows share a head).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn wsum_block<const C: usize, const G: usize>(
    w: &[f32],
    h0: usize,
    group: usize,
    vals: &[f32],
    stride: usize,
    out: &mut [f32],
    n: usize,
) {
    let d = 8 * C;
    let zero = _mm256_setzero_ps();
    let mut acc = [[zero; C]; G];
    let mut offs = [0usize; G];
    for (gi, o) in offs.iter_mut().enumerate() {
        *o = (h0 + gi) / group * d;
    }
    let mut vr = vals.as_ptr();
    let mut wr = w.as_ptr().add(h0 * n);
    for _ in 0..n {
        for (gi, a) in acc.iter_mut().enumerate() {
            let wj = _mm256_set1_ps(*wr.add(gi * n));
            let vg = vr.add(offs[gi]);
            for (c, x) in a.iter_mut().enumerate() {
                *x = _mm256_add_ps(*x, _mm256_mul_ps(wj, _mm256_loadu_ps(vg.add(8 * c))));
            }
        }
        vr = vr.add(stride);
        wr = wr.add(1);
    }
    let mut o = out.as_mut_ptr().add(h0 * d);
    for a in &acc {
        for x in a {
            _mm256_storeu_ps(o, *x);
            o = o.add(8);
        }
    }
}
