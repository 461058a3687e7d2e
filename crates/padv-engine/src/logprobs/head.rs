//! The output projection applied in row chunks: logits of at most `chunk_rows × V` exist at
//! any time, never `T × V`.

use candle_core::{DType, Device, Result, Storage, Tensor};
use rayon::prelude::*;

use super::stats::{row_stats, RowStats};
use crate::decoder::kernels::gemm::{gemm, MatMut, MatRef, Write};

/// Default rows of the output projection computed at once (`EngineOptions::chunk_rows`, the
/// CLI's `--chunk-rows`). 128 was the fastest in `padv bench-engine` on CPU (larger chunks
/// gain nothing once a chunk's product saturates the cores, and cost `rows × V` floats of
/// logits: 78 MB at 128 rows for V = 151936 in f32). One constant so the library and the CLI
/// cannot drift apart.
pub const DEFAULT_CHUNK_ROWS: usize = 128;

/// Statistics of the distributions predicted by `hidden` rows `[n, H]` through `lm_head`
/// `[V, H]`; `targets[i]` is the token whose log-prob row `i` gives. Logits are computed in
/// the model dtype (as transformers does), then read as f32 on the CPU.
pub fn score_hidden(
    hidden: &Tensor,
    lm_head: &Tensor,
    targets: &[u32],
    softcap: Option<f64>,
    stats: bool,
    chunk_rows: usize,
) -> Result<Vec<RowStats>> {
    let (n, _h) = hidden.dims2()?;
    if n != targets.len() {
        candle_core::bail!("{n} hidden rows for {} targets", targets.len());
    }
    // Equal chunks of at most `chunk_rows` (150 rows at 128 would be 128 + 22, and a 22-row
    // product runs far below a 128-row one). Each chunk reads the whole [V, H] projection,
    // so fewer, larger chunks also read it fewer times.
    let n_chunks = n.div_ceil(chunk_rows.max(1)).max(1);
    let chunk_rows = n.div_ceil(n_chunks).max(1);
    let hidden = hidden.contiguous()?;
    let softcap = softcap.map(|c| c as f32);
    let mut out = Vec::with_capacity(n);
    for c0 in (0..n).step_by(chunk_rows) {
        crate::cancel::check()?;
        let nc = chunk_rows.min(n - c0);
        let h = hidden.narrow(0, c0, nc)?;
        let z = match cpu_f32_logits(&h, lm_head)? {
            Some(z) => z,
            None => {
                let z = h.matmul(&lm_head.t()?)?;
                z.to_dtype(DType::F32)?
                    .to_device(&Device::Cpu)?
                    .flatten_all()?
                    .to_vec1::<f32>()?
            }
        };
        let v = z.len() / nc;
        let rows: Vec<RowStats> = z
            .par_chunks(v)
            .zip(&targets[c0..c0 + nc])
            .map_init(Vec::new, |scratch, (row, &t)| {
                row_stats(row, t as usize, softcap, stats, scratch)
            })
            .collect();
        out.extend(rows);
    }
    Ok(out)
}

/// Contiguous f32 CPU data of a tensor, if it is one.
fn cpu_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<Option<R>> {
    if !t.device().is_cpu() || t.dtype() != DType::F32 {
        return Ok(None);
    }
    let (storage, layout) = t.storage_and_layout();
    let (Storage::Cpu(cpu), Some((a, b))) = (&*storage, layout.contiguous_offsets()) else {
        return Ok(None);
    };
    Ok(Some(f(&cpu.as_slice::<f32>()?[a..b])))
}

/// `h · Wᵀ` for f32 CPU tensors, splitting the vocabulary into column blocks computed in
/// parallel by single-threaded gemm calls. For these shapes (a few hundred rows, ~10⁵
/// columns) this runs about a third faster than one gemm call parallelised internally,
/// which splits the short row dimension. None when the tensors are not f32 on the CPU.
fn cpu_f32_logits(h: &Tensor, w: &Tensor) -> Result<Option<Vec<f32>>> {
    let (m, k) = h.dims2()?;
    let (n, k2) = w.dims2()?;
    if k != k2 {
        candle_core::bail!("hidden width {k} but output projection width {k2}");
    }
    let Some(x) = cpu_f32(h, |s| s.to_vec())? else {
        return Ok(None);
    };
    let mut out = vec![0f32; m * n];
    let done = cpu_f32(w, |w| -> Result<()> {
        // Blocks of whole 64-column groups, a few per thread for balance.
        let blocks = 4 * rayon::current_num_threads();
        let cols = n.div_ceil(blocks).div_ceil(64) * 64;
        let mut views = Vec::with_capacity(blocks);
        let mut rest = MatMut::new(&mut out, m, n, n)?;
        let mut c0 = 0;
        while rest.cols() > 0 {
            let (block, r) = rest.split_cols(cols);
            rest = r;
            let nc = block.cols();
            views.push((c0, block));
            c0 += nc;
        }
        let lhs = MatRef::row_major(&x, m, k)?;
        views.into_par_iter().try_for_each(|(c0, block)| {
            // Rows c0..c0+nc of W [n, k], read as columns c0.. of the k × n matrix Wᵀ.
            let rhs = MatRef::new(&w[c0 * k..], k, block.cols(), 1, k)?;
            gemm(block, Write::Overwrite, lhs, rhs)
        })
    })?;
    match done {
        Some(r) => r.map(|()| Some(out)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_default_chunk_rows_is_the_shared_constant() {
        assert_eq!(
            crate::logprobs::EngineOptions::default().chunk_rows,
            DEFAULT_CHUNK_ROWS
        );
    }
}
