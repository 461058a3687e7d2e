//! Blocked causal attention on the CPU (f32), flash-style: never materialises `T × T`.
//!
//! Work is split into tasks of one batch row and `bq` consecutive queries, run in parallel
//! with rayon. Inside a task, for each key/value head the queries of all heads sharing it
//! (GQA) are packed into one `n_rep·bq × D` matrix, so K and V are read in place (no
//! `repeat_kv` copy) and the matrix products are large enough for `gemm` to run well. Keys are
//! visited in blocks of `BK` with an online softmax (running max and sum per row), so the
//! scratch per task is `n_rep·bq × BK` scores whatever the sequence length. Only key blocks
//! that some query of the task may see are visited (causal upper bound, sliding-window lower
//! bound).

use std::sync::Arc;

use candle_core::{backend::BackendStorage, CpuStorage, CustomOp3, Layout, Result, Shape};
use rayon::prelude::*;

use super::fastmath;
use super::kernels::gemm::{gemm, MatMut, MatRef, Write};

/// Keys per online-softmax step.
const BK: usize = 512;
/// Packed query rows (`n_rep · bq`) per task, roughly.
const PACKED_ROWS: usize = 256;

/// Attention of queries `[B, T, Hq, D]` (contiguous) over keys/values `[B, Tk, Hkv, D]`
/// (each batch row contiguous, rows at any common stride: a growing cache's view of its
/// buffer, a broadcast row; see [`rows_contiguous`]), all f32 -> `[B, T, Hq, D]`.
#[derive(Debug, Clone)]
pub(crate) struct CpuAttention {
    /// Multiplies q·k.
    pub scale: f32,
    /// `c·tanh(s/c)` applied to the scaled logits.
    pub softcap: Option<f32>,
    /// Query at position p sees keys `p - window < j <= p`.
    pub window: Option<usize>,
    /// Absolute position of each query row (ascending); keys are at positions `0..Tk`.
    pub q_pos: Arc<Vec<usize>>,
}

struct Dims {
    b: usize,
    t: usize,
    hq: usize,
    d: usize,
    hkv: usize,
    /// Elements between the keys (and values) of consecutive batch rows.
    kv_stride: usize,
}

impl CpuAttention {
    /// Queries per task.
    fn query_block(&self, n_rep: usize, t: usize) -> usize {
        (PACKED_ROWS / n_rep).clamp(8, 128).min(t.max(1))
    }

    fn run(&self, q: &[f32], k: &[f32], v: &[f32], dm: &Dims) -> Result<Vec<f32>> {
        let row = dm.hq * dm.d;
        let n_rep = dm.hq / dm.hkv;
        let bq = self.query_block(n_rep, dm.t);
        let mut out = vec![0f32; dm.b * dm.t * row];
        if out.is_empty() {
            return Ok(out);
        }
        out.par_chunks_mut(dm.t * row)
            .enumerate()
            .try_for_each(|(bi, out_b)| {
                out_b
                    .par_chunks_mut(bq * row)
                    .enumerate()
                    .try_for_each(|(blk, out_blk)| self.block(q, k, v, dm, bi, blk * bq, out_blk))
            })?;
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn block(
        &self,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        dm: &Dims,
        bi: usize,
        i0: usize,
        out: &mut [f32],
    ) -> Result<()> {
        let Dims { t, hq, d, hkv, .. } = *dm;
        let row = hq * d;
        let nb = out.len() / row;
        let n_rep = hq / hkv;
        let rows = n_rep * nb;
        let pos = &self.q_pos[i0..i0 + nb];
        let lowest = |p: usize| match self.window {
            Some(w) => (p + 1).saturating_sub(w),
            None => 0,
        };
        let hi = pos.iter().copied().max().map_or(0, |p| p + 1);
        let lo = pos.iter().copied().map(lowest).min().unwrap_or(0);
        if nb == 1 {
            return self.single_query(q, k, v, dm, bi, i0, lo, hi, out);
        }

        let mut qp = vec![0f32; rows * d];
        let mut s = vec![0f32; rows * BK.min(hi - lo)];
        let mut o = vec![0f32; rows * d];
        let mut m = vec![f32::NEG_INFINITY; rows];
        let mut l = vec![0f32; rows];
        let kv_row = hkv * d;
        for g in 0..hkv {
            for r in 0..n_rep {
                for ii in 0..nb {
                    let src = &q[((bi * t + i0 + ii) * hq + g * n_rep + r) * d..][..d];
                    let dst = &mut qp[(r * nb + ii) * d..][..d];
                    for (x, y) in dst.iter_mut().zip(src) {
                        *x = *y * self.scale;
                    }
                }
            }
            m.fill(f32::NEG_INFINITY);
            l.fill(0.0);
            o.fill(0.0);
            let base = bi * dm.kv_stride + g * d;
            let mut j0 = lo;
            while j0 < hi {
                let nk = BK.min(hi - j0);
                let kb = &k[base + j0 * kv_row..];
                // S[rows × nk] = Qpack[rows × d] · K[j0..j0+nk]^T (key j, dim e at
                // kb[j·kv_row + e]).
                gemm(
                    MatMut::new(&mut s, rows, nk, nk)?,
                    Write::Overwrite,
                    MatRef::row_major(&qp, rows, d)?,
                    MatRef::new(kb, d, nk, 1, kv_row)?,
                )?;
                for rr in 0..rows {
                    let p = pos[rr % nb];
                    let a = lowest(p).max(j0);
                    let e = (p + 1).min(j0 + nk);
                    let srow = &mut s[rr * nk..][..nk];
                    if a >= e {
                        srow.fill(0.0);
                        continue;
                    }
                    let (a, e) = (a - j0, e - j0);
                    srow[..a].fill(0.0);
                    srow[e..].fill(0.0);
                    let seg = &mut srow[a..e];
                    if let Some(c) = self.softcap {
                        fastmath::softcap(seg, c);
                    }
                    let m_new = m[rr].max(fastmath::max(seg));
                    let corr = fastmath::exp(m[rr] - m_new);
                    let sum = fastmath::exp_sub_sum(seg, m_new);
                    l[rr] = l[rr] * corr + sum;
                    if corr != 1.0 {
                        fastmath::scale(&mut o[rr * d..][..d], corr);
                    }
                    m[rr] = m_new;
                }
                let vb = &v[base + j0 * kv_row..];
                // O[rows × d] += P[rows × nk] · V[j0..j0+nk]
                gemm(
                    MatMut::new(&mut o, rows, d, d)?,
                    Write::Accumulate,
                    MatRef::new(&s, rows, nk, nk, 1)?,
                    MatRef::new(vb, nk, d, kv_row, 1)?,
                )?;
                j0 += nk;
            }
            for r in 0..n_rep {
                for ii in 0..nb {
                    let rr = r * nb + ii;
                    let inv = 1.0 / l[rr];
                    let dst = &mut out[ii * row + (g * n_rep + r) * d..][..d];
                    for (x, y) in dst.iter_mut().zip(&o[rr * d..][..d]) {
                        *x = *y * inv;
                    }
                }
            }
        }
        Ok(())
    }
}

impl CpuAttention {
    /// One query row (decoding): `gemm` on a `n_rep × D` by `D × T` product costs more in
    /// dispatch and packing than the arithmetic itself (it was 40 % of a sampling run of the
    /// gym's tiny model), so the scores and the weighted sum are plain loops over the keys,
    /// one pass each, with the exact softmax over the visible range (no online rescaling).
    #[allow(clippy::too_many_arguments)]
    fn single_query(
        &self,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        dm: &Dims,
        bi: usize,
        i: usize,
        lo: usize,
        hi: usize,
        out: &mut [f32],
    ) -> Result<()> {
        let Dims { t, hq, d, hkv, .. } = *dm;
        let n_rep = hq / hkv;
        let kv_row = hkv * d;
        let n = hi - lo;
        let mut qs = vec![0f32; hq * d];
        let mut s = vec![0f32; hq * n];
        let mut o = vec![0f32; hq * d];
        let src = &q[(bi * t + i) * hq * d..][..hq * d];
        for (x, y) in qs.iter_mut().zip(src) {
            *x = *y * self.scale;
        }
        let base = bi * dm.kv_stride + lo * kv_row;
        // The query heads g·n_rep .. (g+1)·n_rep share key/value head g and are adjacent in
        // the query row: their scores against head g's keys.
        for g in 0..hkv {
            fastmath::strided_dots(
                &qs[g * n_rep * d..][..n_rep * d],
                n_rep,
                &k[base + g * d..],
                kv_row,
                &mut s[g * n_rep * n..][..n_rep * n],
            );
        }
        let mut inv = vec![1f32; hq];
        for (row, f) in s.chunks_exact_mut(n).zip(inv.iter_mut()) {
            if let Some(c) = self.softcap {
                fastmath::softcap(row, c);
            }
            let m = fastmath::max(row);
            *f = 1.0 / fastmath::exp_sub_sum(row, m);
        }
        // Every head's weighted sum in one pass over the values (head h reads value head
        // h / n_rep).
        fastmath::strided_weighted_sum(&s, hq, n_rep, &v[base..], kv_row, &mut o);
        for ((x, y), f) in out.chunks_exact_mut(d).zip(o.chunks_exact(d)).zip(&inv) {
            for (a, b) in x.iter_mut().zip(y) {
                *a = *b * f;
            }
        }
        Ok(())
    }
}

/// Whether a `[B, T, H, D]` layout has each batch row contiguous (rows at any stride, a
/// dimension of size one at any stride): what the kernel reads keys and values from.
pub(crate) fn rows_contiguous(l: &Layout) -> bool {
    let (dims, stride) = (l.dims(), l.stride());
    if dims.len() != 4 {
        return false;
    }
    let mut want = 1;
    for i in (1..4).rev() {
        if dims[i] > 1 && stride[i] != want {
            return false;
        }
        want *= dims[i];
    }
    true
}

/// A `[B, T, H, D]` tensor whose rows are contiguous ([`rows_contiguous`]): its elements
/// from its first, and the stride between rows.
fn f32_rows<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<(&'a [f32], usize)> {
    let CpuStorage::F32(v) = s else {
        candle_core::bail!("cpu attention: {what} must be f32, got {:?}", s.dtype());
    };
    if !rows_contiguous(l) {
        candle_core::bail!("cpu attention: each row of {what} must be contiguous");
    }
    let dims = l.dims();
    let row: usize = dims[1..].iter().product();
    let stride = if dims[0] > 1 { l.stride()[0] } else { row };
    let len = match dims[0] {
        0 => 0,
        b => (b - 1) * stride + row,
    };
    let start = l.start_offset();
    match v.get(start..start + len) {
        Some(x) => Ok((x, stride)),
        None => candle_core::bail!("cpu attention: {what} lies outside its storage"),
    }
}

fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        candle_core::bail!("cpu attention: {what} must be f32, got {:?}", s.dtype());
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("cpu attention: {what} must be contiguous"),
    }
}

impl CustomOp3 for CpuAttention {
    fn name(&self) -> &'static str {
        "padv-cpu-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (b, t, hq, d) = l1.shape().dims4()?;
        let (b2, tk, hkv, d2) = l2.shape().dims4()?;
        if l3.shape() != l2.shape() || b2 != b || d2 != d || hkv == 0 || hq % hkv != 0 {
            candle_core::bail!(
                "cpu attention: shapes q {:?} k {:?} v {:?}",
                l1.shape(),
                l2.shape(),
                l3.shape()
            );
        }
        if self.q_pos.len() != t || self.q_pos.iter().any(|p| *p >= tk) {
            candle_core::bail!("cpu attention: query positions do not fit {tk} keys");
        }
        if self.q_pos.windows(2).any(|w| w[0] > w[1]) {
            candle_core::bail!("cpu attention: query positions must ascend");
        }
        let q = f32_slice(s1, l1, "q")?;
        let (k, kv_stride) = f32_rows(s2, l2, "k")?;
        let (v, v_stride) = f32_rows(s3, l3, "v")?;
        if v_stride != kv_stride {
            candle_core::bail!("cpu attention: keys and values with different row strides");
        }
        let out = self.run(
            q,
            k,
            v,
            &Dims {
                b,
                t,
                hq,
                d,
                hkv,
                kv_stride,
            },
        )?;
        Ok((CpuStorage::F32(out), Shape::from_dims(&[b, t, hq, d])))
    }
}
