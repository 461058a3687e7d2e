//! The one safe entry point to the `gemm` crate: matrix views whose shapes and strides are
//! validated against their slices when built, so a call can never read or write out of
//! bounds, and mutable views that split into disjoint column blocks for parallel writers.

use std::marker::PhantomData;

use candle_core::{bail, Result};

/// Largest element offset of a `rows × cols` view with the given strides, or None when the
/// view is empty; errors on overflow.
fn last_offset(rows: usize, cols: usize, rs: usize, cs: usize) -> Result<Option<usize>> {
    if rows == 0 || cols == 0 {
        return Ok(None);
    }
    let off = (rows - 1)
        .checked_mul(rs)
        .and_then(|a| (cols - 1).checked_mul(cs).and_then(|b| a.checked_add(b)));
    match off {
        Some(o) => Ok(Some(o)),
        None => bail!("gemm: view {rows}×{cols} with strides ({rs}, {cs}) overflows"),
    }
}

/// A read-only `rows × cols` f32 matrix: element `(i, j)` is `data[i·row_stride +
/// j·col_stride]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> MatRef<'a> {
    /// A strided view; errors unless every element lies inside `data`.
    pub(crate) fn new(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<Self> {
        if let Some(last) = last_offset(rows, cols, row_stride, col_stride)? {
            if last >= data.len() {
                bail!(
                    "gemm: {rows}×{cols} view with strides ({row_stride}, {col_stride}) needs \
                     {} elements, the slice has {}",
                    last + 1,
                    data.len()
                );
            }
        }
        Ok(Self {
            data,
            rows,
            cols,
            rs: row_stride,
            cs: col_stride,
        })
    }

    /// A dense row-major view (`row_stride = cols`).
    pub(crate) fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Result<Self> {
        Self::new(data, rows, cols, cols, 1)
    }
}

/// A mutable row-major `rows × cols` f32 matrix with `row_stride >= cols`, so distinct
/// elements never alias. Built from a `&mut` slice and holding its borrow; views made by
/// [`MatMut::split_cols`] touch disjoint elements and may be written from different threads.
#[derive(Debug)]
pub(crate) struct MatMut<'a> {
    ptr: *mut f32,
    rows: usize,
    cols: usize,
    rs: usize,
    _borrow: PhantomData<&'a mut [f32]>,
}

// SAFETY: a `MatMut` is an exclusive borrow of the elements it can reach (the constructor
// takes `&mut`, and `split_cols` hands out views of disjoint column ranges), like `&mut [f32]`,
// which is `Send`.
unsafe impl Send for MatMut<'_> {}

impl<'a> MatMut<'a> {
    /// A row-major view of `data`; errors unless `row_stride >= cols` and every element lies
    /// inside `data`.
    pub(crate) fn new(
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
    ) -> Result<Self> {
        if rows > 1 && row_stride < cols {
            bail!("gemm: row stride {row_stride} below the width {cols} would alias rows");
        }
        if let Some(last) = last_offset(rows, cols, row_stride, 1)? {
            if last >= data.len() {
                bail!(
                    "gemm: {rows}×{cols} output with row stride {row_stride} needs {} \
                     elements, the slice has {}",
                    last + 1,
                    data.len()
                );
            }
        }
        Ok(Self {
            ptr: data.as_mut_ptr(),
            rows,
            cols,
            rs: row_stride,
            _borrow: PhantomData,
        })
    }

    /// Columns `..at` and `at..` as two views (`at` clamped to the width).
    pub(crate) fn split_cols(self, at: usize) -> (Self, Self) {
        let at = at.min(self.cols);
        let right = Self {
            // `wrapping_add`: no dereference here; when the right view is non-empty, its
            // first element is element (0, at) of this view, in bounds.
            ptr: self.ptr.wrapping_add(at),
            rows: self.rows,
            cols: self.cols - at,
            rs: self.rs,
            _borrow: PhantomData,
        };
        let left = Self { cols: at, ..self };
        (left, right)
    }

    /// Width of the view.
    pub(crate) fn cols(&self) -> usize {
        self.cols
    }
}

/// Whether `dst` is overwritten or added to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// `dst = lhs · rhs`.
    Overwrite,
    /// `dst += lhs · rhs`.
    Accumulate,
}

/// `dst (=|+=) lhs · rhs`, single-threaded (callers parallelise over blocks); errors when
/// the shapes do not chain.
pub(crate) fn gemm(dst: MatMut<'_>, write: Write, lhs: MatRef<'_>, rhs: MatRef<'_>) -> Result<()> {
    let (m, n, k) = (dst.rows, dst.cols, lhs.cols);
    if lhs.rows != m || rhs.cols != n || rhs.rows != k {
        bail!(
            "gemm: {m}×{n} output from {}×{} · {}×{}",
            lhs.rows,
            lhs.cols,
            rhs.rows,
            rhs.cols
        );
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let (alpha, read_dst) = match write {
        Write::Overwrite => (0.0, false),
        Write::Accumulate => (1.0, true),
    };
    let stride = |s: usize| s as isize;
    // SAFETY: `dst` exclusively borrows every element (i, j) < (m, n) at ptr + i·rs + j,
    // all in bounds of its slice and pairwise distinct (rs >= n), checked when it was
    // built; `lhs` and `rhs` were checked to lie inside their slices for their full shapes,
    // and the shapes chain (checked above). Strides fit in isize because slices are at most
    // isize::MAX bytes. No other thread touches `dst`'s elements (exclusive borrow), and
    // `Parallelism::None` keeps the call on this thread.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.ptr,
            1,
            stride(dst.rs),
            read_dst,
            lhs.data.as_ptr(),
            stride(lhs.cs),
            stride(lhs.rs),
            rhs.data.as_ptr(),
            stride(rhs.cs),
            stride(rhs.rs),
            alpha,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f32], b_t: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| a[i * k + p] * b_t[j * k + p]).sum();
            }
        }
        out
    }

    #[test]
    fn matches_naive_product_in_column_blocks() {
        let (m, n, k) = (5, 37, 11);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
        // b stored transposed ([n, k] row-major), as an output projection is.
        let b_t: Vec<f32> = (0..n * k).map(|i| (i % 5) as f32 * 0.5).collect();
        let want = naive(m, n, k, &a, &b_t);
        let mut out = vec![f32::NAN; m * n];
        let mut rest = MatMut::new(&mut out, m, n, n).unwrap();
        let mut c0 = 0;
        while rest.cols() > 0 {
            let (block, r) = rest.split_cols(8);
            rest = r;
            let nc = block.cols();
            let lhs = MatRef::row_major(&a, m, k).unwrap();
            let rhs = MatRef::new(&b_t[c0 * k..], k, nc, 1, k).unwrap();
            gemm(block, Write::Overwrite, lhs, rhs).unwrap();
            c0 += nc;
        }
        assert_eq!(out, want);
        // Accumulate adds.
        let mut acc = want.clone();
        let dst = MatMut::new(&mut acc, m, n, n).unwrap();
        let lhs = MatRef::row_major(&a, m, k).unwrap();
        let rhs = MatRef::new(&b_t, k, n, 1, k).unwrap();
        gemm(dst, Write::Accumulate, lhs, rhs).unwrap();
        let doubled: Vec<f32> = want.iter().map(|x| 2.0 * x).collect();
        assert_eq!(acc, doubled);
    }

    #[test]
    fn rejects_out_of_bounds_and_mismatched_shapes() {
        let data = vec![0f32; 12];
        assert!(MatRef::new(&data, 3, 4, 4, 1).is_ok());
        assert!(MatRef::new(&data, 4, 4, 4, 1).is_err());
        assert!(MatRef::new(&data, 2, 2, usize::MAX, 1).is_err());
        let mut out = vec![0f32; 12];
        assert!(MatMut::new(&mut out, 3, 4, 3).is_err()); // rows would alias
        assert!(MatMut::new(&mut out, 4, 3, 3).is_ok());
        let dst = MatMut::new(&mut out, 3, 4, 4).unwrap();
        let lhs = MatRef::row_major(&data, 3, 2).unwrap();
        let rhs = MatRef::row_major(&data, 3, 4).unwrap(); // 3 rows, lhs has 2 columns
        assert!(gemm(dst, Write::Overwrite, lhs, rhs).is_err());
    }
}
