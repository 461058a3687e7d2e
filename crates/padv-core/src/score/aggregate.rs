//! Token → step and step → trajectory aggregations.
//!
//! Both levels follow the reference implementation: an empty input aggregates to `0.0`, and
//! `bottom10` is the mean of the `k = max(1, ceil(0.10·n))` smallest values. All arithmetic is
//! in `f64` (token arrays are `f32` on disk).

use super::names::named_enum;

named_enum! {
    /// How the per-token values of one action step become one step value.
    #[serde(rename_all = "snake_case")]
    pub enum TokenAgg ("token aggregation") {
        /// Arithmetic mean (length-normalised).
        Mean = "mean",
        /// Sum (the theory-faithful choice for PA: token advantages telescope over a turn).
        Sum = "sum",
        /// The last token's value.
        Last = "last",
        /// The smallest value (the single worst token).
        Min = "min",
        /// The largest value.
        Max = "max",
    }
}

named_enum! {
    /// How the step values of one trajectory become the trajectory score.
    #[serde(rename_all = "snake_case")]
    pub enum StepAgg ("step aggregation") {
        /// Arithmetic mean over steps.
        Mean = "mean",
        /// Sum over steps.
        Sum = "sum",
        /// The last step's value ("tail").
        Last = "last",
        /// The worst step.
        Min = "min",
        /// The best step.
        Max = "max",
        /// Mean of the lowest 10% of steps, `k = max(1, ceil(0.10·n))` of them.
        Bottom10 = "bottom10",
    }
}

impl TokenAgg {
    /// Position of this aggregate in a [`TokenStats`] array (declaration order).
    pub(crate) fn index(self) -> usize {
        match self {
            TokenAgg::Mean => 0,
            TokenAgg::Sum => 1,
            TokenAgg::Last => 2,
            TokenAgg::Min => 3,
            TokenAgg::Max => 4,
        }
    }

    /// The aggregate that gives `agg(-x) = -agg'(x)`: min and max swap, the others stay.
    pub(crate) fn of_negated(self) -> TokenAgg {
        match self {
            TokenAgg::Min => TokenAgg::Max,
            TokenAgg::Max => TokenAgg::Min,
            other => other,
        }
    }

    /// Aggregate one token array; `0.0` when empty.
    ///
    /// ```
    /// use padv_core::score::TokenAgg;
    /// // mean of (-1, -2, -3) = -6 / 3 = -2; min = -3; last = -3
    /// assert_eq!(TokenAgg::Mean.apply(&[-1.0, -2.0, -3.0]), -2.0);
    /// assert_eq!(TokenAgg::Min.apply(&[-1.0, -2.0, -3.0]), -3.0);
    /// assert_eq!(TokenAgg::Last.apply(&[]), 0.0);
    /// ```
    pub fn apply(self, values: &[f32]) -> f64 {
        TokenStats::of(values).get(self)
    }
}

/// All five token aggregates of one array, computed in a single pass.
///
/// Precomputing these per step is what makes a full aggregation grid cheap: every grid cell
/// reads one of them instead of rescanning the tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenStats(pub [f64; 5]);

impl TokenStats {
    /// The aggregates of an empty array: all `0.0`.
    pub const EMPTY: TokenStats = TokenStats([0.0; 5]);

    /// Aggregates of `values` (`0.0` each when empty).
    pub fn of(values: &[f32]) -> TokenStats {
        let Some(&last) = values.last() else {
            return TokenStats::EMPTY;
        };
        let mut lanes = Lanes::new();
        let chunks = values.chunks_exact(4);
        let rest = chunks.remainder();
        for c in chunks {
            lanes.push4([c[0], c[1], c[2], c[3]].map(f64::from));
        }
        for &v in rest {
            lanes.push1(f64::from(v));
        }
        lanes.finish(values.len(), f64::from(last))
    }

    /// Aggregates of the element-wise difference `a[i] - b[i]` (computed in `f64`), used by
    /// PA's aggregate-of-difference mode. Only the common prefix is read; callers check lengths.
    pub fn of_difference(a: &[f32], b: &[f32]) -> TokenStats {
        let n = a.len().min(b.len());
        if n == 0 {
            return TokenStats::EMPTY;
        }
        let (a, b) = (&a[..n], &b[..n]);
        let d = |x: f32, y: f32| f64::from(x) - f64::from(y);
        let mut lanes = Lanes::new();
        let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            lanes.push4([d(x[0], y[0]), d(x[1], y[1]), d(x[2], y[2]), d(x[3], y[3])]);
        }
        for (&x, &y) in ra.iter().zip(rb) {
            lanes.push1(d(x, y));
        }
        lanes.finish(n, d(a[n - 1], b[n - 1]))
    }

    /// The aggregate `agg`.
    pub fn get(&self, agg: TokenAgg) -> f64 {
        self.0[agg.index()]
    }
}

/// Four independent accumulators for sum, min and max. A single running sum is a chain of
/// dependent additions (one per token, ~4 cycles each); four lanes let the CPU overlap them,
/// which makes [`ScoreTable`](super::ScoreTable) precomputation several times faster. The
/// summation order is fixed (lanes, then `(l0 + l1) + (l2 + l3)`), so results are
/// deterministic; they may differ from a left-to-right sum in the last bits.
struct Lanes {
    sum: [f64; 4],
    min: [f64; 4],
    max: [f64; 4],
}

impl Lanes {
    fn new() -> Lanes {
        Lanes {
            sum: [0.0; 4],
            min: [f64::INFINITY; 4],
            max: [f64::NEG_INFINITY; 4],
        }
    }

    #[inline(always)]
    fn push4(&mut self, v: [f64; 4]) {
        for (j, &x) in v.iter().enumerate() {
            self.sum[j] += x;
            // Plain selects (vectorisable); NaN is handled once in `finish`.
            self.min[j] = if x < self.min[j] { x } else { self.min[j] };
            self.max[j] = if x > self.max[j] { x } else { self.max[j] };
        }
    }

    #[inline(always)]
    fn push1(&mut self, v: f64) {
        self.sum[0] += v;
        self.min[0] = if v < self.min[0] { v } else { self.min[0] };
        self.max[0] = if v > self.max[0] { v } else { self.max[0] };
    }

    fn finish(self, n: usize, last: f64) -> TokenStats {
        let sum = (self.sum[0] + self.sum[1]) + (self.sum[2] + self.sum[3]);
        let fold =
            |m: [f64; 4], pick: fn(f64, f64) -> f64| pick(pick(m[0], m[1]), pick(m[2], m[3]));
        let (mut min, mut max) = (fold(self.min, f64::min), fold(self.max, f64::max));
        // A NaN input makes the sum NaN (the selects above would skip it): propagate it to
        // min and max too, so a bad value is never hidden.
        if sum.is_nan() {
            min = f64::NAN;
            max = f64::NAN;
        }
        TokenStats([sum / n as f64, sum, last, min, max])
    }
}

/// `min` that propagates NaN (`f64::min` would silently drop it and hide a bad value).
fn nan_min(a: f64, b: f64) -> f64 {
    if b < a || b.is_nan() {
        b
    } else {
        a
    }
}

/// `max` that propagates NaN.
fn nan_max(a: f64, b: f64) -> f64 {
    if b > a || b.is_nan() {
        b
    } else {
        a
    }
}

impl StepAgg {
    /// Aggregate step values into a trajectory score; `0.0` for an empty list.
    ///
    /// `values` is reordered in place by `bottom10` (a partial selection), which is why it is
    /// taken mutably: the grid evaluation reuses one buffer per thread.
    ///
    /// ```
    /// use padv_core::score::StepAgg;
    /// // 11 steps -> k = max(1, ceil(1.1)) = 2: mean of the two smallest (-4, -3) = -3.5
    /// let mut v = vec![-4.0, 1.0, 2.0, -3.0, 0.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
    /// assert_eq!(StepAgg::Bottom10.apply(&mut v), -3.5);
    /// assert_eq!(StepAgg::Mean.apply(&mut [1.0, 2.0]), 1.5);
    /// assert_eq!(StepAgg::Sum.apply(&mut []), 0.0);
    /// ```
    pub fn apply(self, values: &mut [f64]) -> f64 {
        let n = values.len();
        if n == 0 {
            return 0.0;
        }
        match self {
            StepAgg::Mean => values.iter().sum::<f64>() / n as f64,
            StepAgg::Sum => values.iter().sum(),
            StepAgg::Last => values[n - 1],
            StepAgg::Min => values.iter().copied().fold(f64::INFINITY, nan_min),
            StepAgg::Max => values.iter().copied().fold(f64::NEG_INFINITY, nan_max),
            StepAgg::Bottom10 => {
                if values.iter().any(|v| v.is_nan()) {
                    return f64::NAN;
                }
                let k = bottom10_count(n);
                if k <= SMALL_K {
                    return mean_of_smallest_small_k(values, k);
                }
                if k < n {
                    values.select_nth_unstable_by(k - 1, f64::total_cmp);
                }
                // The k smallest now occupy values[..k]; sum them in ascending order so the
                // result does not depend on the input order.
                values[..k].sort_unstable_by(f64::total_cmp);
                values[..k].iter().sum::<f64>() / k as f64
            }
        }
    }
}

/// Largest `k` handled by the insertion path of `bottom10` (trajectories of up to 80 steps).
const SMALL_K: usize = 8;

/// Mean of the `k ≤ SMALL_K` smallest of `values` (no NaN), by one scan that keeps them in a
/// small ascending array. Each value is pushed through the array with `min`/`max` pairs,
/// with no data-dependent branch (random step values would mispredict an insertion loop
/// constantly); that is `2k` cheap operations per value instead of a sort. Summed in
/// ascending order, exactly as the general path does.
fn mean_of_smallest_small_k(values: &[f64], k: usize) -> f64 {
    let mut low = [f64::INFINITY; SMALL_K];
    for &v in values {
        let mut carry = v;
        for slot in low[..k].iter_mut() {
            let lo = slot.min(carry);
            carry = slot.max(carry);
            *slot = lo;
        }
    }
    low[..k].iter().sum::<f64>() / k as f64
}

/// Streaming `min` and `max` over step values, with the same NaN propagation as
/// [`StepAgg::apply`] (the grid's inner loop uses it instead of buffering the values).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Extremes {
    n: usize,
    min: f64,
    max: f64,
}

impl Default for Extremes {
    fn default() -> Self {
        Extremes {
            n: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Extremes {
    #[inline]
    pub(crate) fn push(&mut self, v: f64) {
        self.n += 1;
        self.min = nan_min(self.min, v);
        self.max = nan_max(self.max, v);
    }

    /// `min` or `max` of the values pushed; `None` when none were, or for another `agg`.
    pub(crate) fn finish(&self, agg: StepAgg) -> Option<f64> {
        match agg {
            _ if self.n == 0 => None,
            StepAgg::Min => Some(self.min),
            StepAgg::Max => Some(self.max),
            _ => None,
        }
    }
}

/// `k = max(1, ceil(0.10·n))`, computed in integers (`ceil(n/10)`) so that no float rounding
/// can make, e.g., `n = 30` give 4.
pub fn bottom10_count(n: usize) -> usize {
    n.div_ceil(10).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_stats_hand_worked() {
        // values -0.5, -2.0, -1.0: sum = -3.5, mean = -3.5/3, last = -1.0, min = -2.0, max = -0.5
        let s = TokenStats::of(&[-0.5, -2.0, -1.0]);
        assert_eq!(s.get(TokenAgg::Sum), -3.5);
        assert!((s.get(TokenAgg::Mean) - (-3.5 / 3.0)).abs() < 1e-15);
        assert_eq!(s.get(TokenAgg::Last), -1.0);
        assert_eq!(s.get(TokenAgg::Min), -2.0);
        assert_eq!(s.get(TokenAgg::Max), -0.5);
    }

    #[test]
    fn empty_arrays_aggregate_to_zero() {
        for agg in TokenAgg::ALL {
            assert_eq!(agg.apply(&[]), 0.0, "{agg}");
        }
        for agg in StepAgg::ALL {
            assert_eq!(agg.apply(&mut []), 0.0, "{agg}");
        }
    }

    #[test]
    fn difference_stats_hand_worked() {
        // a - b = (-1 - -3, -2 - -1) = (2, -1): mean 0.5, sum 1, last -1, min -1, max 2
        let s = TokenStats::of_difference(&[-1.0, -2.0], &[-3.0, -1.0]);
        assert_eq!(s.0, [0.5, 1.0, -1.0, -1.0, 2.0]);
    }

    #[test]
    fn step_aggs_hand_worked() {
        let v = [3.0, -1.0, 2.0, 0.5];
        // mean = 4.5 / 4 = 1.125; sum = 4.5; last = 0.5; min = -1; max = 3;
        // bottom10: n = 4 -> k = 1 -> the minimum, -1
        let expect = [
            (StepAgg::Mean, 1.125),
            (StepAgg::Sum, 4.5),
            (StepAgg::Last, 0.5),
            (StepAgg::Min, -1.0),
            (StepAgg::Max, 3.0),
            (StepAgg::Bottom10, -1.0),
        ];
        for (agg, want) in expect {
            let mut buf = v;
            assert_eq!(agg.apply(&mut buf), want, "{agg}");
        }
    }

    #[test]
    fn bottom10_count_boundaries() {
        // ceil(0.1 n), at least 1
        assert_eq!(bottom10_count(1), 1);
        assert_eq!(bottom10_count(10), 1);
        assert_eq!(bottom10_count(11), 2);
        assert_eq!(bottom10_count(20), 2);
        assert_eq!(bottom10_count(21), 3);
        assert_eq!(bottom10_count(30), 3);
    }

    #[test]
    fn bottom10_of_twenty_one_steps() {
        // 21 steps 0..=20 reversed: k = 3 -> mean of 0, 1, 2 = 1
        let mut v: Vec<f64> = (0..=20).rev().map(f64::from).collect();
        assert_eq!(StepAgg::Bottom10.apply(&mut v), 1.0);
    }

    #[test]
    fn streaming_extremes_match_apply() {
        let v = [0.3, -1.25, 7.0, 2.5, -0.125];
        let mut e = Extremes::default();
        for x in v {
            e.push(x);
        }
        assert_eq!(e.finish(StepAgg::Min), Some(-1.25));
        assert_eq!(e.finish(StepAgg::Max), Some(7.0));
        assert_eq!(e.finish(StepAgg::Mean), None);
        assert_eq!(Extremes::default().finish(StepAgg::Min), None);
        let mut e = Extremes::default();
        e.push(1.0);
        e.push(f64::NAN);
        assert!(e.finish(StepAgg::Min).unwrap().is_nan());
    }

    #[test]
    fn bottom10_small_k_scan_hand_worked() {
        // 25 values: k = ceil(2.5) = 3. Smallest three: -7, -2, -2 (a tie) -> mean -11/3.
        let mut v = vec![5.0; 25];
        v[3] = -2.0;
        v[10] = -7.0;
        v[11] = 4.0;
        v[20] = -2.0;
        v[24] = 0.0;
        assert_eq!(StepAgg::Bottom10.apply(&mut v), -11.0 / 3.0);
        // 80 values (k = 8, the largest insertion k), descending 80..1 -> mean of 1..=8 = 4.5
        let mut v: Vec<f64> = (1..=80).rev().map(f64::from).collect();
        assert_eq!(StepAgg::Bottom10.apply(&mut v), 4.5);
    }

    #[test]
    fn bottom10_long_list_uses_selection() {
        // 100 values 100, 99, ..., 1: k = 10 -> mean of 1..=10 = 5.5
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(StepAgg::Bottom10.apply(&mut v), 5.5);
    }

    #[test]
    fn nan_propagates_through_min_and_max() {
        assert!(TokenStats::of(&[-1.0, f32::NAN, -2.0])
            .get(TokenAgg::Min)
            .is_nan());
        assert!(StepAgg::Max.apply(&mut [1.0, f64::NAN]).is_nan());
        assert!(StepAgg::Bottom10.apply(&mut [1.0, f64::NAN]).is_nan());
    }

    #[test]
    fn names_round_trip() {
        for agg in StepAgg::ALL {
            assert_eq!(agg.to_string().parse::<StepAgg>().unwrap(), *agg);
        }
        assert_eq!("bottom10".parse::<StepAgg>().unwrap(), StepAgg::Bottom10);
        assert!("median".parse::<TokenAgg>().is_err());
        let json = serde_json::to_string(&StepAgg::Bottom10).unwrap();
        assert_eq!(json, "\"bottom10\"");
    }
}
