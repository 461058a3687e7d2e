//! Failure attribution: predict the decisive-mistake step from step scores.
//!
//! Inputs per record are the scored action steps as `(message_index, score)` (what
//! [`crate::score::step_scores`] returns) and the annotated `mistake_step`, a message index.
//! Predictions are message indices, compared with integer equality (the Who&When evaluator's
//! substring bug, issue #14, is not reproduced).

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::EvalError;
use crate::score::names::named_enum;
use crate::score::{Method, ScoreSpec, ScoreTable};

named_enum! {
    /// A rule that turns step scores into a predicted mistake step.
    #[serde(rename_all = "snake_case")]
    pub enum FaPredictor ("failure-attribution predictor") {
        /// Argmin of the running sum of step scores (first on ties): where cumulative
        /// progress bottoms out. The reference implementation's headline predictor.
        MinCumulative = "min_cumulative",
        /// The lowest-scoring step (first on ties); the first action if no score is negative.
        SharpestDrop = "sharpest_drop",
        /// The step `j` with the most negative `r[j] − r[j−1]` between consecutive scored
        /// steps (first on ties); the first action if no difference is ≤ 0 or there are
        /// fewer than two steps.
        SharpestAbsDrop = "sharpest_abs_drop",
        /// The lowest-scoring step, whatever its sign (first on ties): what the theory
        /// suggests for progress advantage, whose step score is the action's advantage —
        /// the decisive mistake is the action that gave away the most. For a PRM's
        /// P(correct) it is the reference's ThinkPRM "min" predictor.
        LowestStep = "lowest_step",
        /// The first step scored below 0.5 (a PRM judging it more likely wrong than right;
        /// the reference's ThinkPRM predictor); the lowest-scoring step when none is (padv's
        /// fallback: the reference's is not recorded).
        EarliestBelowHalf = "earliest_below_half",
    }
}

/// The predictors of the log-prob methods, in the order of every per-record prediction
/// array ([`RecordPrediction`]), which then holds the `first_action` and `last_action`
/// priors.
pub(crate) const PREDICTORS: [FaPredictor; 4] = [
    FaPredictor::MinCumulative,
    FaPredictor::SharpestDrop,
    FaPredictor::SharpestAbsDrop,
    FaPredictor::LowestStep,
];

/// The predictors of judges' step values: the reference's ThinkPRM predictors (min,
/// sharpest absolute drop, earliest below 0.5), then `min_cumulative` so every cell has four
/// (for probabilities, which are never negative, it picks the first step: the report marks
/// it as the `first_action` prior).
pub(crate) const JUDGE_PREDICTORS: [FaPredictor; 4] = [
    FaPredictor::LowestStep,
    FaPredictor::SharpestAbsDrop,
    FaPredictor::EarliestBelowHalf,
    FaPredictor::MinCumulative,
];

/// The predictors failure attribution evaluates for a method.
pub fn predictors_for(method: Method) -> [FaPredictor; 4] {
    if method == Method::Judge {
        JUDGE_PREDICTORS
    } else {
        PREDICTORS
    }
}

/// Entries of a per-record prediction array: the predictors, then the two priors.
pub(crate) const N_PREDICTIONS: usize = PREDICTORS.len() + 2;

/// The predictions of every one of `predictors`, then the first and the last scored
/// action; `None` without scored steps.
pub(crate) fn predictions(
    predictors: [FaPredictor; 4],
    steps: &[(usize, f64)],
) -> Option<[usize; N_PREDICTIONS]> {
    let &(first, _) = steps.first()?;
    let &(last, _) = steps.last()?;
    let mut out = [first; N_PREDICTIONS];
    for (o, p) in out.iter_mut().zip(predictors) {
        *o = p.predict(steps).unwrap_or(first);
    }
    out[PREDICTORS.len()] = first;
    out[PREDICTORS.len() + 1] = last;
    Some(out)
}

impl FaPredictor {
    /// The predicted message index; `None` only when `steps` is empty.
    ///
    /// ```
    /// use padv_core::eval::FaPredictor;
    /// // scores 1, -2, 0.5, -1 at messages 1, 3, 5, 7.
    /// // running sums 1, -1, -0.5, -1.5 -> min at message 7
    /// let steps = [(1, 1.0), (3, -2.0), (5, 0.5), (7, -1.0)];
    /// assert_eq!(FaPredictor::MinCumulative.predict(&steps), Some(7));
    /// // lowest score -2 at message 3
    /// assert_eq!(FaPredictor::SharpestDrop.predict(&steps), Some(3));
    /// // differences -3 (3), 2.5 (5), -1.5 (7) -> message 3
    /// assert_eq!(FaPredictor::SharpestAbsDrop.predict(&steps), Some(3));
    /// // lowest score, whatever its sign: -2 at message 3; with all scores positive, the
    /// // smallest one
    /// assert_eq!(FaPredictor::LowestStep.predict(&steps), Some(3));
    /// assert_eq!(FaPredictor::LowestStep.predict(&[(1, 0.5), (3, 0.2), (5, 0.9)]), Some(3));
    /// ```
    pub fn predict(self, steps: &[(usize, f64)]) -> Option<usize> {
        let first = steps.first()?.0;
        Some(match self {
            FaPredictor::MinCumulative => {
                let mut running = 0.0;
                let mut best = (f64::INFINITY, first);
                for &(mi, s) in steps {
                    running += s;
                    if running < best.0 {
                        best = (running, mi);
                    }
                }
                best.1
            }
            FaPredictor::SharpestDrop => {
                let mut best = (0.0, first);
                for &(mi, s) in steps {
                    if s < best.0 {
                        best = (s, mi);
                    }
                }
                best.1
            }
            FaPredictor::LowestStep => {
                let mut best = (f64::INFINITY, first);
                for &(mi, s) in steps {
                    if s < best.0 {
                        best = (s, mi);
                    }
                }
                best.1
            }
            FaPredictor::SharpestAbsDrop => {
                let mut best: Option<(f64, usize)> = None;
                for w in steps.windows(2) {
                    let d = w[1].1 - w[0].1;
                    if d <= 0.0 && best.is_none_or(|(b, _)| d < b) {
                        best = Some((d, w[1].0));
                    }
                }
                best.map_or(first, |(_, mi)| mi)
            }
            FaPredictor::EarliestBelowHalf => match steps.iter().find(|&&(_, s)| s < 0.5) {
                Some(&(mi, _)) => mi,
                None => FaPredictor::LowestStep.predict(steps)?,
            },
        })
    }
}

/// Accuracy of one predictor (or trivial prior) on the evaluated records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaMetrics {
    /// Predictor name (`min_cumulative`, ..., `first_action`, `most_common_step`).
    pub predictor: String,
    /// Records evaluated.
    pub n: usize,
    /// Fraction predicted exactly; `None` when `n == 0` (nothing to evaluate, not 0).
    pub accuracy: Option<f64>,
    /// Mean absolute error in message indices; `None` when `n == 0`.
    pub mae: Option<f64>,
    /// Fraction within ±1 message; `None` when `n == 0`.
    pub acc_within_1: Option<f64>,
    /// Fraction within ±2 messages; `None` when `n == 0`.
    pub acc_within_2: Option<f64>,
}

/// Failure-attribution results of one scoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaResult {
    /// Records evaluated.
    pub n: usize,
    /// Records skipped: no `mistake_step`.
    pub n_no_mistake: usize,
    /// Records skipped: a `mistake_step` but no scored action step.
    pub n_no_steps: usize,
    /// The most frequent `mistake_step` among the evaluated records (smallest on ties).
    pub most_common_step: Option<usize>,
    /// The predictors ([`predictors_for`] the method), then the trivial priors `first_action`
    /// (always the first scored action), `last_action` (always the last one) and `most_common_step` (always the mode
    /// above; NOTE: tuned on the evaluation data, so an optimistic prior).
    pub rows: Vec<FaMetrics>,
}

/// One grid cell's failure-attribution result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaRow {
    /// [`ScoreSpec::label`] of the cell.
    pub label: String,
    /// The cell.
    pub spec: ScoreSpec,
    /// Its results.
    #[serde(flatten)]
    pub result: FaResult,
}

/// Evaluate the log-prob methods' predictors on records given as step scores and annotated
/// mistake steps (aligned slices).
pub fn attribution(
    step_scores: &[Vec<(usize, f64)>],
    mistake_steps: &[Option<usize>],
) -> Result<FaResult, EvalError> {
    attribution_with(step_scores, mistake_steps, PREDICTORS)
}

/// [`attribution`] with the given predictors (e.g. [`predictors_for`] a judge).
pub fn attribution_with(
    step_scores: &[Vec<(usize, f64)>],
    mistake_steps: &[Option<usize>],
    predictors: [FaPredictor; 4],
) -> Result<FaResult, EvalError> {
    if step_scores.len() != mistake_steps.len() {
        return Err(EvalError::LengthMismatch {
            what: "step scores vs mistake steps",
            expected: mistake_steps.len(),
            found: step_scores.len(),
        });
    }
    let mut acc = Accumulator::new(predictors);
    for (steps, mistake) in step_scores.iter().zip(mistake_steps) {
        acc.add(steps, *mistake);
    }
    Ok(acc.finish())
}

/// Collects per-record predictions; records are added one at a time so the grid can reuse
/// one step buffer per cell.
struct Accumulator {
    predictors: [FaPredictor; 4],
    n_no_mistake: usize,
    n_no_steps: usize,
    /// Per evaluated record: gold, then predictions in row order ([`predictions`]).
    evaluated: Vec<(usize, [usize; N_PREDICTIONS])>,
}

impl Accumulator {
    fn new(predictors: [FaPredictor; 4]) -> Accumulator {
        Accumulator {
            predictors,
            n_no_mistake: 0,
            n_no_steps: 0,
            evaluated: Vec::new(),
        }
    }

    fn add(&mut self, steps: &[(usize, f64)], mistake: Option<usize>) {
        let Some(gold) = mistake else {
            self.n_no_mistake += 1;
            return;
        };
        let Some(preds) = predictions(self.predictors, steps) else {
            self.n_no_steps += 1;
            return;
        };
        self.evaluated.push((gold, preds));
    }

    fn finish(self) -> FaResult {
        let evaluated = self.evaluated;
        let mut freq: BTreeMap<usize, usize> = BTreeMap::new();
        for (gold, _) in &evaluated {
            *freq.entry(*gold).or_default() += 1;
        }
        // BTreeMap iterates in ascending step order; keeping only strictly larger counts
        // makes the smallest step win ties.
        let most_common_step = freq
            .iter()
            .fold(
                None,
                |best: Option<(usize, usize)>, (&step, &count)| match best {
                    Some((_, c)) if c >= count => best,
                    _ => Some((step, count)),
                },
            )
            .map(|(step, _)| step);

        let names: Vec<&str> = self
            .predictors
            .iter()
            .map(|p| p.name())
            .chain(["first_action", "last_action"])
            .collect();
        let mut rows: Vec<FaMetrics> = names
            .iter()
            .enumerate()
            .map(|(k, name)| metrics(name, evaluated.iter().map(|(g, preds)| (*g, preds[k]))))
            .collect();
        if let Some(mode) = most_common_step {
            rows.push(metrics(
                "most_common_step",
                evaluated.iter().map(|(g, _)| (*g, mode)),
            ));
        }
        FaResult {
            n: evaluated.len(),
            n_no_mistake: self.n_no_mistake,
            n_no_steps: self.n_no_steps,
            most_common_step,
            rows,
        }
    }
}

pub(crate) fn metrics(name: &str, pairs: impl Iterator<Item = (usize, usize)>) -> FaMetrics {
    let (mut n, mut exact, mut w1, mut w2, mut abs) = (0usize, 0usize, 0usize, 0usize, 0usize);
    for (gold, pred) in pairs {
        let d = gold.abs_diff(pred);
        n += 1;
        exact += usize::from(d == 0);
        w1 += usize::from(d <= 1);
        w2 += usize::from(d <= 2);
        abs += d;
    }
    let frac = |x: usize| (n > 0).then(|| x as f64 / n as f64);
    FaMetrics {
        predictor: name.to_string(),
        n,
        accuracy: frac(exact),
        mae: frac(abs),
        acc_within_1: frac(w1),
        acc_within_2: frac(w2),
    }
}

/// Per record: `None` without a `mistake_step`, `Some(None)` with one but no scored step,
/// else `Some(Some((gold, predictions)))`, predictions in [`FaResult::rows`] order
/// ([`predictions`]: the predictors, then the first and the last action).
pub(crate) type RecordPrediction = Option<Option<(usize, [usize; N_PREDICTIONS])>>;

/// [`RecordPrediction`]s of one cell, for the cross-validated choice of predictor.
pub(crate) fn record_predictions(
    table: &ScoreTable,
    spec: &ScoreSpec,
) -> Result<Vec<RecordPrediction>, EvalError> {
    let scorer = table.scorer(spec)?;
    let predictors = predictors_for(spec.method);
    let mut steps = Vec::new();
    Ok(table
        .mistake_steps()
        .iter()
        .enumerate()
        .map(|(r, &mistake)| {
            let gold = mistake?;
            scorer.step_scores_into(r, &mut steps);
            Some(predictions(predictors, &steps).map(|p| (gold, p)))
        })
        .collect())
}

/// Failure attribution of every cell in `specs`, one row per spec (in order), in parallel.
/// Only records with a `mistake_step` are scored.
///
/// FA reads step scores, never the trajectory score, so cells that differ only in their step
/// aggregation give identical results: each distinct (method, token aggregation, PA mode, β)
/// is computed once and its result shared (a 6× saving on a full grid).
pub fn fa_grid(table: &ScoreTable, specs: &[ScoreSpec]) -> Result<Vec<FaRow>, EvalError> {
    let key = |s: &ScoreSpec| ScoreSpec {
        step_agg: crate::score::StepAgg::Mean,
        ..s.normalized()
    };
    let mut distinct: Vec<ScoreSpec> = Vec::new();
    for s in specs {
        let k = key(s);
        if !distinct.contains(&k) {
            distinct.push(k);
        }
    }
    let results: Vec<Result<FaResult, EvalError>> = distinct
        .par_iter()
        .map(|spec| {
            let scorer = table.scorer(spec)?;
            let mut acc = Accumulator::new(predictors_for(spec.method));
            let mut steps = Vec::new();
            for (r, &mistake) in table.mistake_steps().iter().enumerate() {
                if mistake.is_some() {
                    scorer.step_scores_into(r, &mut steps);
                } else {
                    steps.clear();
                }
                acc.add(&steps, mistake);
            }
            Ok(acc.finish())
        })
        .collect();
    let results: Vec<FaResult> = results.into_iter().collect::<Result<_, _>>()?;
    Ok(specs
        .iter()
        .map(|spec| {
            let k = key(spec);
            let i = distinct.iter().position(|d| *d == k).unwrap_or(0);
            FaRow {
                label: spec.label(),
                spec: *spec,
                result: results[i].clone(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_cumulative_ties_take_the_first() {
        // running sums -1, -1, 0 -> first minimum at message 2
        assert_eq!(
            FaPredictor::MinCumulative.predict(&[(2, -1.0), (4, 0.0), (6, 1.0)]),
            Some(2)
        );
    }

    #[test]
    fn sharpest_drop_falls_back_to_first_action_without_negatives() {
        assert_eq!(
            FaPredictor::SharpestDrop.predict(&[(1, 0.5), (3, 0.0), (5, 2.0)]),
            Some(1)
        );
        // ties: two equal minima -> the first
        assert_eq!(
            FaPredictor::SharpestDrop.predict(&[(1, 0.5), (3, -1.0), (5, -1.0)]),
            Some(3)
        );
    }

    #[test]
    fn sharpest_abs_drop_fallbacks_and_zero_difference() {
        // strictly increasing: no difference <= 0 -> first action
        assert_eq!(
            FaPredictor::SharpestAbsDrop.predict(&[(1, -3.0), (3, -2.0), (5, 0.0)]),
            Some(1)
        );
        // one step only -> first action
        assert_eq!(FaPredictor::SharpestAbsDrop.predict(&[(4, -9.0)]), Some(4));
        // a zero difference counts (<= 0): 1 -> 1 at message 3
        assert_eq!(
            FaPredictor::SharpestAbsDrop.predict(&[(1, 1.0), (3, 1.0), (5, 2.0)]),
            Some(3)
        );
        assert_eq!(FaPredictor::SharpestAbsDrop.predict(&[]), None);
    }

    #[test]
    fn prm_predictors() {
        let steps = [(1, 0.9), (3, 0.6), (5, 0.1), (7, 0.05)];
        // min: 0.05 at 7; abs drop: -0.3 (3), -0.5 (5), -0.05 (7) -> 5; earliest < 0.5: 5.
        assert_eq!(FaPredictor::LowestStep.predict(&steps), Some(7));
        assert_eq!(FaPredictor::SharpestAbsDrop.predict(&steps), Some(5));
        assert_eq!(FaPredictor::EarliestBelowHalf.predict(&steps), Some(5));
        // Nothing below 0.5: the lowest step (first on ties).
        let steps = [(1, 0.9), (3, 0.6), (5, 0.6)];
        assert_eq!(FaPredictor::EarliestBelowHalf.predict(&steps), Some(3));
        // SharpestDrop gives the first action for probabilities: why judges use LowestStep.
        assert_eq!(FaPredictor::SharpestDrop.predict(&steps), Some(1));
        assert_eq!(predictors_for(Method::Judge)[0], FaPredictor::LowestStep);
        assert_eq!(predictors_for(Method::Pa), PREDICTORS);
    }

    #[test]
    fn metrics_and_priors_hand_worked() {
        // Record A: steps at 1, 3, 5 with scores 0, -2, 1; gold 3.
        //   min_cumulative: sums 0, -2, -1 -> 3 (exact); sharpest_drop -> 3; abs_drop: diffs
        //   -2 (3), 3 (5) -> 3; first_action -> 1 (|1-3| = 2).
        // Record B: steps at 2, 4 with scores 1, 1; gold 4.
        //   min_cumulative: sums 1, 2 -> 2 (|2-4| = 2); sharpest_drop: none negative -> 2;
        //   abs_drop: diff 0 (<= 0) -> 4 (exact); first_action -> 2.
        // Record C: no steps (skipped); record D: no mistake (skipped).
        // mode of gold {3, 4}: tie -> smallest, 3: errors 0 (A) and 1 (B).
        let steps = vec![
            vec![(1, 0.0), (3, -2.0), (5, 1.0)],
            vec![(2, 1.0), (4, 1.0)],
            vec![],
            vec![(1, -1.0)],
        ];
        let r = attribution(&steps, &[Some(3), Some(4), Some(2), None]).unwrap();
        assert_eq!((r.n, r.n_no_steps, r.n_no_mistake), (2, 1, 1));
        assert_eq!(r.most_common_step, Some(3));
        let row = |name: &str| r.rows.iter().find(|x| x.predictor == name).unwrap().clone();
        let mc = row("min_cumulative");
        // errors 0 and 2: acc 1/2, mae 1, within1 1/2, within2 1
        assert_eq!(
            (mc.accuracy, mc.mae, mc.acc_within_1, mc.acc_within_2),
            (Some(0.5), Some(1.0), Some(0.5), Some(1.0))
        );
        let sd = row("sharpest_drop");
        assert_eq!((sd.accuracy, sd.mae), (Some(0.5), Some(1.0)));
        let ad = row("sharpest_abs_drop");
        // errors 0 and 0
        assert_eq!((ad.accuracy, ad.mae), (Some(1.0), Some(0.0)));
        let fa = row("first_action");
        // errors 2 and 2
        assert_eq!(
            (fa.accuracy, fa.mae, fa.acc_within_1, fa.acc_within_2),
            (Some(0.0), Some(2.0), Some(0.0), Some(1.0))
        );
        // lowest_step: A -> 3 (exact); B: tie 1, 1 -> the first, 2 (error 2).
        let ls = row("lowest_step");
        assert_eq!((ls.accuracy, ls.mae), (Some(0.5), Some(1.0)));
        // last_action: A -> 5 (error 2), B -> 4 (exact).
        let la = row("last_action");
        assert_eq!((la.accuracy, la.mae), (Some(0.5), Some(1.0)));
        let mcs = row("most_common_step");
        // errors 0 and 1
        assert_eq!(
            (mcs.accuracy, mcs.mae, mcs.acc_within_1),
            (Some(0.5), Some(0.5), Some(1.0))
        );
        assert_eq!(r.rows.len(), 7);
    }
}
