//! Step and trajectory scores of one [`ScoreSpec`] over a [`ScoreTable`].
//!
//! A [`Scorer`] resolves the spec once into a "kernel" (which precomputed column to read,
//! with which sign and shift), so scoring a trajectory is a loop over its steps reading one
//! `f64` each, followed by the step aggregation.

use rayon::prelude::*;

use super::aggregate::{Extremes, StepAgg, TokenAgg};
use super::spec::{JudgeLevel, Method, PaMode, ScoreSpec};
use super::table::{JudgeColumns, ScoreTable, Source};
use super::ScoreError;
use crate::record::LogprobRecord;

/// How one step's value is read from the table.
#[derive(Debug, Clone, Copy)]
enum Kernel<'a> {
    /// `β·(a − b)` or `β·a`. Empty steps have all aggregates 0, hence score 0.0 (kept).
    Linear {
        a: &'a [f64],
        b: Option<&'a [f64]>,
        beta: f64,
    },
    /// `sign·col − shift`; empty steps are skipped. Token values of the certainty methods are
    /// affine in the stored array (`−x`, `−x − ln V`, or `x`), so their aggregates follow from
    /// the stored ones: `min(−x) = −max(x)`, `sum(−x − c) = −sum(x) − n·c`, and so on.
    Certainty {
        col: &'a [f64],
        sign: f64,
        /// Subtract `ln V` (self-certainty), once per token for `sum`, once otherwise.
        log_vocab: Option<LogVocabShift>,
    },
    /// A judge's trajectory value (no steps).
    JudgeTrajectory { values: &'a [Option<f64>] },
    /// A judge's step values, read as they are.
    JudgeSteps { cols: &'a JudgeColumns },
}

#[derive(Debug, Clone, Copy)]
enum LogVocabShift {
    PerToken,
    Once,
}

/// A spec resolved against a table: scores any of its records without further checks.
#[derive(Debug, Clone, Copy)]
pub struct Scorer<'a> {
    table: &'a ScoreTable,
    kernel: Kernel<'a>,
    step_agg: StepAgg,
}

impl ScoreTable {
    /// Resolve `spec` for this table, checking that every record carries the arrays the
    /// method needs (the error names the first record, step and field that lack one).
    pub fn scorer(&self, spec: &ScoreSpec) -> Result<Scorer<'_>, ScoreError> {
        self.scorer_for(spec, 0..self.len())
    }

    fn scorer_for(
        &self,
        spec: &ScoreSpec,
        records: std::ops::Range<usize>,
    ) -> Result<Scorer<'_>, ScoreError> {
        if spec.method == Method::Judge {
            return self.judge_scorer(spec);
        }
        let t = spec.token_agg;
        let (source, kernel) = match spec.method {
            Method::Pa => match spec.effective_pa_mode() {
                PaMode::DiffOfAgg => (
                    Source::Reference,
                    Kernel::Linear {
                        a: self.column(Source::Policy, t),
                        b: Some(self.column(Source::Reference, t)),
                        beta: spec.beta,
                    },
                ),
                PaMode::AggOfDiff => (Source::Diff, self.linear(Source::Diff, t, spec.beta)),
            },
            Method::PolicyLogprob => (Source::Policy, self.linear(Source::Policy, t, spec.beta)),
            Method::ReferenceLogprob => (
                Source::Reference,
                self.linear(Source::Reference, t, spec.beta),
            ),
            Method::SelfCertainty => (
                Source::VocabMean,
                Kernel::Certainty {
                    col: self.column(Source::VocabMean, t.of_negated()),
                    sign: -1.0,
                    log_vocab: Some(if t == TokenAgg::Sum {
                        LogVocabShift::PerToken
                    } else {
                        LogVocabShift::Once
                    }),
                },
            ),
            Method::Deepconf | Method::DeepconfTail | Method::DeepconfBottom10 => {
                (Source::TopkMean, self.negated(Source::TopkMean, t))
            }
            Method::NegEntropy => (Source::Entropy, self.negated(Source::Entropy, t)),
            Method::SelfCertaintyRefimpl
            | Method::DeepconfTailRefimpl
            | Method::DeepconfBottom10Refimpl => (
                Source::TopkMean,
                Kernel::Certainty {
                    col: self.column(Source::TopkMean, t),
                    sign: 1.0,
                    log_vocab: None,
                },
            ),
            Method::Judge => unreachable!("handled by judge_scorer above"),
        };
        let reads_policy =
            spec.method == Method::Pa && spec.effective_pa_mode() == PaMode::DiffOfAgg;
        if let Some(s) = [source, Source::Policy]
            .into_iter()
            .take(if reads_policy { 2 } else { 1 })
            .find(|&s| !self.kept(s))
        {
            return Err(ScoreError::InvalidSpec(format!(
                "method {} reads the {} arrays, and this score table was built without them \
                 (ScoreTableBuilder::for_methods)",
                spec.method,
                s.field()
            )));
        }
        if let Some((r, pos)) = self.first_missing(source, records) {
            let step = self.steps_of(r).start + pos;
            return Err(ScoreError::MissingField {
                record: self.record_id(r).to_string(),
                step: pos,
                message_index: self.message_index()[step],
                method: spec.method,
                field: source.field(),
            });
        }
        Ok(Scorer {
            table: self,
            kernel,
            step_agg: spec.effective_step_agg(),
        })
    }

    /// A judge cell: a record without the judge's values has no score (it is dropped from
    /// UQ, ranked last in best-of-N), never an error.
    fn judge_scorer(&self, spec: &ScoreSpec) -> Result<Scorer<'_>, ScoreError> {
        check_judge_spec(spec, &self.judges())?;
        let judge = spec.judge.ok_or_else(|| {
            ScoreError::InvalidSpec("method `judge` needs the judge's name".into())
        })?;
        let cols = self.judge_columns(judge.name);
        let kernel = match (judge.level, cols) {
            (JudgeLevel::Trajectory, Some(c)) => Kernel::JudgeTrajectory {
                values: &c.trajectory,
            },
            (JudgeLevel::Steps, Some(c)) => Kernel::JudgeSteps { cols: c },
            (_, None) => {
                return Err(ScoreError::InvalidSpec(format!(
                    "judge {} has no columns",
                    judge.name
                )))
            }
        };
        Ok(Scorer {
            table: self,
            kernel,
            step_agg: spec.effective_step_agg(),
        })
    }

    fn linear(&self, source: Source, t: TokenAgg, beta: f64) -> Kernel<'_> {
        Kernel::Linear {
            a: self.column(source, t),
            b: None,
            beta,
        }
    }

    fn negated(&self, source: Source, t: TokenAgg) -> Kernel<'_> {
        Kernel::Certainty {
            col: self.column(source, t.of_negated()),
            sign: -1.0,
            log_vocab: None,
        }
    }

    /// Step scores of record `record` under `spec` (see [`step_scores`]).
    pub fn step_scores(
        &self,
        record: usize,
        spec: &ScoreSpec,
    ) -> Result<Vec<(usize, f64)>, ScoreError> {
        self.check_index(record)?;
        Ok(self
            .scorer_for(spec, record..record + 1)?
            .step_scores(record))
    }

    /// Trajectory score of record `record` under `spec` (see [`trajectory_score`]).
    pub fn trajectory_score(
        &self,
        record: usize,
        spec: &ScoreSpec,
    ) -> Result<Option<f64>, ScoreError> {
        self.check_index(record)?;
        let scorer = self.scorer_for(spec, record..record + 1)?;
        Ok(scorer.trajectory_score(record, &mut Vec::new()))
    }

    /// Trajectory scores of every record under `spec`, in input order, computed in parallel.
    pub fn trajectory_scores(&self, spec: &ScoreSpec) -> Result<Vec<Option<f64>>, ScoreError> {
        Ok(self.scorer(spec)?.trajectory_scores())
    }

    fn check_index(&self, record: usize) -> Result<(), ScoreError> {
        if record >= self.len() {
            return Err(ScoreError::RecordOutOfRange {
                index: record,
                len: self.len(),
            });
        }
        Ok(())
    }
}

impl Scorer<'_> {
    /// Call `f(message index, value)` for each scored step of record `r`, in order. One tight
    /// loop per kernel kind over contiguous column slices (this is the grid's inner loop).
    #[inline]
    fn for_each_step(&self, r: usize, mut f: impl FnMut(usize, f64)) {
        let range = self.table.steps_of(r);
        let mi = &self.table.message_index()[range.clone()];
        match self.kernel {
            Kernel::Linear {
                a,
                b: Some(b),
                beta,
            } => {
                for ((x, y), &m) in a[range.clone()].iter().zip(&b[range]).zip(mi) {
                    f(m, beta * (x - y));
                }
            }
            Kernel::Linear { a, b: None, beta } => {
                for (x, &m) in a[range].iter().zip(mi) {
                    f(m, beta * x);
                }
            }
            Kernel::Certainty {
                col,
                sign,
                log_vocab,
            } => {
                let log_v = self.table.log_vocab().get(r).copied().unwrap_or(0.0);
                let n_tokens = &self.table.n_tokens()[range.clone()];
                for ((x, &n), &m) in col[range].iter().zip(n_tokens).zip(mi) {
                    if n == 0 {
                        continue;
                    }
                    let shift = match log_vocab {
                        None => 0.0,
                        Some(LogVocabShift::Once) => log_v,
                        Some(LogVocabShift::PerToken) => f64::from(n) * log_v,
                    };
                    f(m, sign * x - shift);
                }
            }
            Kernel::JudgeTrajectory { .. } => {}
            Kernel::JudgeSteps { cols } => {
                let js = cols.steps_of(r);
                for (&m, &v) in cols.message_index[js.clone()].iter().zip(&cols.score[js]) {
                    f(m, v);
                }
            }
        }
    }

    /// `(message_index, value)` of each scored step of record `r`, in step order. Steps the
    /// method skips (empty steps for certainty methods) are absent; an `r` past the end of
    /// the table has no steps.
    pub fn step_scores(&self, r: usize) -> Vec<(usize, f64)> {
        let mut out = Vec::new();
        self.step_scores_into(r, &mut out);
        out
    }

    /// [`Scorer::step_scores`] into a reused buffer (cleared first).
    pub fn step_scores_into(&self, r: usize, out: &mut Vec<(usize, f64)>) {
        out.clear();
        self.for_each_step(r, |m, v| out.push((m, v)));
    }

    /// Trajectory score of record `r`; `buf` is scratch space reused across calls (only
    /// `bottom10` needs it; the other aggregations stream).
    /// `None` when no step remains or the score is NaN (e.g. −∞ log-probs in both models).
    /// An `r` past the end of the table has no steps, hence `None`.
    pub fn trajectory_score(&self, r: usize, buf: &mut Vec<f64>) -> Option<f64> {
        if let Kernel::JudgeTrajectory { values } = self.kernel {
            return values.get(r).copied().flatten().filter(|v| !v.is_nan());
        }
        // One specialised loop per aggregation: this is the innermost loop of every grid
        // (cells × records × steps), so each step does only the one update it needs. The
        // results are exactly those of `StepAgg::apply` (same order of operations).
        let mut n = 0usize;
        let score = match self.step_agg {
            StepAgg::Mean | StepAgg::Sum => {
                let mut sum = 0.0;
                self.for_each_step(r, |_, v| {
                    n += 1;
                    sum += v;
                });
                if self.step_agg == StepAgg::Mean {
                    sum / n as f64
                } else {
                    sum
                }
            }
            StepAgg::Last => {
                let mut last = 0.0;
                self.for_each_step(r, |_, v| {
                    n += 1;
                    last = v;
                });
                last
            }
            StepAgg::Min | StepAgg::Max => {
                let mut extremes = Extremes::default();
                self.for_each_step(r, |_, v| {
                    n += 1;
                    extremes.push(v);
                });
                extremes.finish(self.step_agg)?
            }
            StepAgg::Bottom10 => {
                buf.clear();
                self.for_each_step(r, |_, v| buf.push(v));
                n = buf.len();
                self.step_agg.apply(buf)
            }
        };
        (n > 0 && !score.is_nan()).then_some(score)
    }

    /// Trajectory scores of every record of the table, in parallel.
    pub fn trajectory_scores(&self) -> Vec<Option<f64>> {
        (0..self.table.len())
            .into_par_iter()
            .with_min_len(1024)
            .map_init(Vec::new, |buf, r| self.trajectory_score(r, buf))
            .collect()
    }

    /// [`Scorer::trajectory_scores`] with NaN for "no score" (8 bytes per record instead of
    /// 16; see [`crate::eval::ScoreSlot`]), what the evaluations' score sources keep.
    pub fn trajectory_scores_nan(&self) -> Vec<f64> {
        (0..self.table.len())
            .into_par_iter()
            .with_min_len(1024)
            .map_init(Vec::new, |buf, r| {
                self.trajectory_score(r, buf).unwrap_or(f64::NAN)
            })
            .collect()
    }

    /// The table this scorer reads.
    pub fn table(&self) -> &ScoreTable {
        self.table
    }
}

/// Whether a judge spec can score records carrying `judges` (name, has trajectory values,
/// has step values — [`ScoreTable::judges`]): the judge must carry values at the spec's
/// level. Shared by the table's scorer and the evaluation that streams record files, so
/// both refuse with the same error.
pub(crate) fn check_judge_spec(
    spec: &ScoreSpec,
    judges: &[(crate::judge::JudgeName, bool, bool)],
) -> Result<(), ScoreError> {
    let Some(judge) = spec.judge else {
        return Err(ScoreError::InvalidSpec(
            "method `judge` needs the judge's name".into(),
        ));
    };
    let found = judges.iter().find(|j| j.0 == judge.name);
    let (ok, what) = match judge.level {
        JudgeLevel::Trajectory => (found.is_some_and(|j| j.1), "trajectory values"),
        JudgeLevel::Steps => (found.is_some_and(|j| j.2), "step values"),
    };
    if ok {
        return Ok(());
    }
    let names: Vec<String> = judges.iter().map(|j| j.0.to_string()).collect();
    Err(ScoreError::UnknownJudge {
        judge: judge.name.to_string(),
        what,
        available: if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        },
    })
}

/// Per-step scores of one record: `(message_index, value)` for each scored action step.
///
/// Log-prob methods (`pa`, `policy_logprob`, `reference_logprob`) give an empty step 0.0;
/// certainty methods skip it. Errors when the method needs an array the record lacks.
pub fn step_scores(
    record: &LogprobRecord,
    spec: &ScoreSpec,
) -> Result<Vec<(usize, f64)>, ScoreError> {
    ScoreTable::precompute(std::slice::from_ref(record))?.step_scores(0, spec)
}

/// The trajectory score of one record: the step aggregation of [`step_scores`]. `None` when
/// no step remains (such a trajectory is dropped by UQ and ranks last in best-of-N) or the
/// score is NaN.
pub fn trajectory_score(
    record: &LogprobRecord,
    spec: &ScoreSpec,
) -> Result<Option<f64>, ScoreError> {
    ScoreTable::precompute(std::slice::from_ref(record))?.trajectory_score(0, spec)
}
