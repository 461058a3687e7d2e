//! The two monotone maps from a trajectory score to a success probability, fitted to
//! `(score, success)` pairs: Platt scaling and isotonic regression.
//!
//! Both follow scikit-learn's definitions exactly (checked against stored scikit-learn
//! values in `tests/calibration_fixtures.rs`), so a map fitted here means what a reader who
//! knows scikit-learn expects:
//!
//! - **Platt**: `LogisticRegression(C=1.0)` (L2 penalty `½w²` on the slope, intercept
//!   unpenalised) on the score standardised with the training mean and population standard
//!   deviation (`StandardScaler`). Standardising makes the penalty independent of the
//!   score's scale (a `sum` aggregation's scores are hundreds of times larger than a
//!   `mean`'s); the penalty keeps the slope finite when the classes are separable, where
//!   the unpenalised maximum-likelihood slope is infinite.
//! - **Isotonic**: `IsotonicRegression(increasing=True, out_of_bounds="clip")`: equal
//!   scores are merged (mean outcome, weighted by count), pool-adjacent-violators gives the
//!   non-decreasing least-squares fit, predictions interpolate linearly between the
//!   breakpoints and are clipped to the training range.
//!
//! Written here rather than taken from a crate: the Rust options (linfa, smartcore) bring
//! ndarray stacks and other conventions; both fits are a few dozen lines.

/// Regularisation strength of the Platt fit, scikit-learn's default `C`.
pub const PLATT_C: f64 = 1.0;

/// A fitted logistic map `p(s) = σ(slope·s + intercept)`, in raw score units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PlattFit {
    pub slope: f64,
    pub intercept: f64,
    /// Training mean and population standard deviation of the score (the standardisation).
    pub score_mean: f64,
    pub score_std: f64,
    /// Coefficient and intercept on the standardised score (what scikit-learn reports).
    pub coef_standardised: f64,
    pub intercept_standardised: f64,
    /// Newton iterations used.
    pub iterations: usize,
}

/// Logistic function, without overflow for large |x|.
pub(crate) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `ln(1 + e^x)` without overflow.
fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// Penalised negative log-likelihood `½w² + C·Σ softplus(−(2y−1)(w·z + b))`.
fn objective(z: &[f64], y: &[bool], w: f64, b: f64) -> f64 {
    let loss: f64 = z
        .iter()
        .zip(y)
        .map(|(&zi, &yi)| {
            let m = w * zi + b;
            softplus(if yi { -m } else { m })
        })
        .sum();
    0.5 * w * w + PLATT_C * loss
}

/// Platt scaling fitted by Newton's method with backtracking on the exact (strictly convex
/// in `w`) objective. `scores` finite, `labels` aligned; `None` without both classes (the
/// intercept would be infinite).
pub(crate) fn fit_platt(scores: &[f64], labels: &[bool]) -> Option<PlattFit> {
    let n = scores.len();
    let n_pos = labels.iter().filter(|&&l| l).count();
    if n == 0 || n_pos == 0 || n_pos == n || scores.len() != labels.len() {
        return None;
    }
    let mean = scores.iter().sum::<f64>() / n as f64;
    let var = scores.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / n as f64;
    let std = var.sqrt();
    // StandardScaler leaves a constant feature unscaled (scale 1): z = 0 everywhere.
    let scale = if std > 0.0 && std.is_finite() {
        std
    } else {
        1.0
    };
    let z: Vec<f64> = scores.iter().map(|s| (s - mean) / scale).collect();
    let base = n_pos as f64 / n as f64;
    let (mut w, mut b) = (0.0, (base / (1.0 - base)).ln());
    let mut f = objective(&z, labels, w, b);
    let mut iterations = 0;
    for it in 1..=200 {
        iterations = it;
        let (mut gw, mut gb, mut hww, mut hwb, mut hbb) = (w, 0.0, 1.0, 0.0, 0.0);
        for (&zi, &yi) in z.iter().zip(labels) {
            let p = sigmoid(w * zi + b);
            let r = PLATT_C * (p - f64::from(u8::from(yi)));
            let v = PLATT_C * p * (1.0 - p);
            gw += r * zi;
            gb += r;
            hww += v * zi * zi;
            hwb += v * zi;
            hbb += v;
        }
        if gw.abs().max(gb.abs()) <= 1e-12 * (n as f64).max(1.0) {
            break;
        }
        // Solve the 2×2 Newton system; fall back to a gradient step if it is singular
        // (every p saturated at 0 or 1, so hbb underflows).
        let det = hww * hbb - hwb * hwb;
        let (dw, db) = if det > 0.0 && det.is_finite() {
            ((hbb * gw - hwb * gb) / det, (hww * gb - hwb * gw) / det)
        } else {
            (gw / hww, gb / n as f64)
        };
        let mut t = 1.0;
        let mut moved = false;
        while t > 1e-12 {
            let (nw, nb) = (w - t * dw, b - t * db);
            let nf = objective(&z, labels, nw, nb);
            if nf <= f {
                moved = (nw, nb) != (w, b);
                (w, b, f) = (nw, nb, nf);
                break;
            }
            t *= 0.5;
        }
        if !moved {
            break;
        }
    }
    let slope = w / scale;
    Some(PlattFit {
        slope,
        intercept: b - slope * mean,
        score_mean: mean,
        score_std: std,
        coef_standardised: w,
        intercept_standardised: b,
        iterations,
    })
}

/// Scores closer than this to the first score of a tie block count as tied
/// (`np.finfo(float64).resolution`, what scikit-learn's isotonic regression uses).
const TIE_RESOLUTION: f64 = 1e-15;

/// Breakpoints of a fitted isotonic map: `x` strictly increasing, `y` non-decreasing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IsotonicFit {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
}

/// Isotonic regression of the outcomes on the scores (see the module docs). `None` when
/// empty or misaligned.
pub(crate) fn fit_isotonic(scores: &[f64], labels: &[bool]) -> Option<IsotonicFit> {
    if scores.is_empty() || scores.len() != labels.len() {
        return None;
    }
    let mut pairs: Vec<(f64, f64)> = scores
        .iter()
        .zip(labels)
        .map(|(&s, &l)| (s + 0.0, f64::from(u8::from(l))))
        .collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    // Merge equal scores: (x, mean y, weight). As scikit-learn's `_make_unique`, a score
    // less than `TIE_RESOLUTION` above the block's first one joins the block.
    let mut blocks: Vec<(f64, f64, f64)> = Vec::new();
    for (x, y) in pairs {
        match blocks.last_mut() {
            Some(last) if x - last.0 < TIE_RESOLUTION => {
                last.1 += y;
                last.2 += 1.0;
            }
            _ => blocks.push((x, y, 1.0)),
        }
    }
    let xs: Vec<f64> = blocks.iter().map(|b| b.0).collect();
    let ys: Vec<f64> = blocks.iter().map(|b| b.1 / b.2).collect();
    let ws: Vec<f64> = blocks.iter().map(|b| b.2).collect();
    let fitted = pool_adjacent_violators(&ys, &ws);
    // Drop interior points whose value equals both neighbours' (they change no prediction).
    let n = xs.len();
    let keep =
        |i: usize| i == 0 || i + 1 == n || fitted[i] != fitted[i - 1] || fitted[i] != fitted[i + 1];
    let (x, y) = (0..n)
        .filter(|&i| keep(i))
        .map(|i| (xs[i], fitted[i]))
        .unzip();
    Some(IsotonicFit { x, y })
}

/// Weighted least-squares non-decreasing fit of `y` (pool adjacent violators): adjacent
/// blocks whose means decrease are merged into their weighted mean until none do.
fn pool_adjacent_violators(y: &[f64], w: &[f64]) -> Vec<f64> {
    // Stack of blocks: (weighted mean, total weight, number of points).
    let mut stack: Vec<(f64, f64, usize)> = Vec::with_capacity(y.len());
    for (&yi, &wi) in y.iter().zip(w) {
        let mut cur = (yi, wi, 1usize);
        while let Some(&(m, wt, len)) = stack.last() {
            if m <= cur.0 {
                break;
            }
            stack.pop();
            let total = wt + cur.1;
            cur = ((m * wt + cur.0 * cur.1) / total, total, len + cur.2);
        }
        stack.push(cur);
    }
    stack
        .into_iter()
        .flat_map(|(m, _, len)| std::iter::repeat_n(m, len))
        .collect()
}

/// The isotonic map at `score`: linear interpolation between breakpoints, clipped to the
/// first and last value outside them. NaN for a NaN score or an empty map.
pub(crate) fn isotonic_predict(x: &[f64], y: &[f64], score: f64) -> f64 {
    let (Some(&x0), Some(&xn)) = (x.first(), x.last()) else {
        return f64::NAN;
    };
    if score.is_nan() || y.len() != x.len() {
        return f64::NAN;
    }
    if score <= x0 {
        return y[0];
    }
    if score >= xn {
        return y[y.len() - 1];
    }
    // First breakpoint strictly above `score` (exists: score < xn).
    let hi = x.partition_point(|&v| v <= score);
    let lo = hi - 1;
    let t = (score - x[lo]) / (x[hi] - x[lo]);
    y[lo] + t * (y[hi] - y[lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pav_hand_worked() {
        // y = 1, 3, 2, 4 (weights 1): the violating pair (3, 2) pools to 2.5.
        assert_eq!(
            pool_adjacent_violators(&[1.0, 3.0, 2.0, 4.0], &[1.0; 4]),
            vec![1.0, 2.5, 2.5, 4.0]
        );
        // A weighted pool: (3, w = 3) and (1, w = 1) -> (9 + 1) / 4 = 2.5.
        assert_eq!(
            pool_adjacent_violators(&[3.0, 1.0], &[3.0, 1.0]),
            vec![2.5, 2.5]
        );
        // Cascading: 5, 1, 0 pools into one block of mean 2.
        assert_eq!(
            pool_adjacent_violators(&[5.0, 1.0, 0.0], &[1.0; 3]),
            vec![2.0, 2.0, 2.0]
        );
    }

    #[test]
    fn isotonic_merges_ties_and_interpolates() {
        // scores 0, 1, 1, 2 with outcomes 0, 1, 0, 1: the tie at 1 merges to 0.5 (weight 2).
        // Already non-decreasing (0, 0.5, 1): breakpoints (0, 0), (1, 0.5), (2, 1).
        let f = fit_isotonic(&[1.0, 0.0, 1.0, 2.0], &[true, false, false, true]).unwrap();
        assert_eq!(f.x, vec![0.0, 1.0, 2.0]);
        assert_eq!(f.y, vec![0.0, 0.5, 1.0]);
        // Halfway between 1 and 2: 0.75; clipped outside [0, 2].
        assert_eq!(isotonic_predict(&f.x, &f.y, 1.5), 0.75);
        assert_eq!(isotonic_predict(&f.x, &f.y, -3.0), 0.0);
        assert_eq!(isotonic_predict(&f.x, &f.y, 9.0), 1.0);
        assert!(isotonic_predict(&f.x, &f.y, f64::NAN).is_nan());
    }

    #[test]
    fn platt_of_a_constant_score_is_the_base_rate() {
        // z = 0 for every record, so only the (unpenalised) intercept moves: σ(b) = 1/4.
        let f = fit_platt(&[2.0; 4], &[true, false, false, false]).unwrap();
        assert_eq!(f.slope, 0.0);
        assert!((sigmoid(f.intercept) - 0.25).abs() < 1e-12, "{f:?}");
        assert!(fit_platt(&[1.0, 2.0], &[true, true]).is_none());
    }

    #[test]
    fn platt_stays_finite_on_separable_data_and_is_scale_free() {
        let s = [0.1, 0.2, 0.3, 0.7, 0.8, 0.9];
        let l = [false, false, false, true, true, true];
        let f = fit_platt(&s, &l).unwrap();
        assert!(f.slope.is_finite() && f.slope > 0.0);
        // Scaling the score by 100 scales the slope by 1/100 and leaves predictions alone.
        let s100: Vec<f64> = s.iter().map(|x| x * 100.0).collect();
        let g = fit_platt(&s100, &l).unwrap();
        for (a, b) in s.iter().zip(&s100) {
            let (pa, pb) = (
                sigmoid(f.slope * a + f.intercept),
                sigmoid(g.slope * b + g.intercept),
            );
            assert!((pa - pb).abs() < 1e-9, "{pa} vs {pb}");
        }
    }
}
