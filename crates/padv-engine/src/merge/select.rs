//! Exact k-th largest of a stream of non-negative f64 values, in constant memory.
//!
//! TIES keeps the k largest |τ| of each tensor. Sorting a copy would hold 8 bytes per entry
//! of the largest tensor (1.1 GB for a 150k-vocabulary embedding). The bit patterns of
//! non-negative doubles sort like the values, so a radix selection on 16-bit digits finds
//! the exact k-th largest in four streaming passes with a 64k-entry histogram.

use super::MergeError;

/// The k-th largest (1-based) of the keys `visit` streams (bit patterns of non-negative
/// f64), and how many keys equal to it are among the k largest (so exactly k keys are kept
/// when the earliest equal ones are taken). `visit` is called four times and must stream the
/// same keys each time. Requires `1 ≤ k ≤ number of keys`; with fewer keys the result is the
/// smallest key.
pub(crate) fn kth_largest<F>(k: usize, mut visit: F) -> Result<(u64, usize), MergeError>
where
    F: FnMut(&mut dyn FnMut(u64)) -> Result<(), MergeError>,
{
    let mut prefix: u64 = 0;
    let mut rank = k.max(1); // rank within the keys sharing `prefix`
    for pass in 0..4u32 {
        let shift = 48 - 16 * pass;
        let mut hist = vec![0usize; 1 << 16];
        // Keys whose digits above this one equal the prefix found so far.
        let high_shift = shift + 16;
        visit(&mut |key: u64| {
            let matches = high_shift >= 64 || (key >> high_shift) == (prefix >> high_shift);
            if matches {
                hist[((key >> shift) & 0xFFFF) as usize] += 1;
            }
        })?;
        let mut above = 0usize;
        let mut digit = 0usize;
        for d in (0..1usize << 16).rev() {
            if above + hist[d] >= rank || d == 0 {
                digit = d;
                break;
            }
            above += hist[d];
        }
        rank = rank.saturating_sub(above).max(1);
        prefix |= (digit as u64) << shift;
    }
    Ok((prefix, rank))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(values: &[f64], k: usize) {
        let (bits, allowance) = kth_largest(k, |visit| {
            for v in values {
                visit(v.to_bits());
            }
            Ok(())
        })
        .unwrap();
        let mut sorted = values.to_vec();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let t = sorted[k - 1];
        assert_eq!(f64::from_bits(bits), t, "k = {k} of {values:?}");
        let greater = values.iter().filter(|&&v| v > t).count();
        assert_eq!(greater + allowance, k, "k = {k}");
    }

    #[test]
    fn matches_sorting_with_ties() {
        let vals = [0.5, 0.0, 3.25, 0.5, 1e-300, 7.0, 0.5, 2.0, 0.0, 1e300];
        for k in 1..=vals.len() {
            check(&vals, k);
        }
        // Many values, near-equal magnitudes that differ only in low bits.
        let mut state = 12345u64;
        let vals: Vec<f64> = (0..5000)
            .map(|i| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                let base = if i % 3 == 0 { 0.125 } else { 1.0 };
                base + ((state >> 40) % 7) as f64 * f64::EPSILON
            })
            .collect();
        for k in [1, 2, 17, 1000, 1667, 4999, 5000] {
            check(&vals, k);
        }
    }
}
