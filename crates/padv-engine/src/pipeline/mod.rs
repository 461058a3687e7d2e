//! The scoring pipeline: trajectories in, log-prob records out, with the run's statistics and
//! the reasons for every skip.
//!
//! One path for every front end (`padv score`, the gym demo, the server), so that batching,
//! the cache, truncation accounting and the skip policy behave the same wherever records are
//! made. It is independent of the local decoder: any pair of [`LogprobBackend`]s will do.
//!
//! The run goes batch by batch (`batch_size` trajectories): the batch is tokenised in
//! parallel, then each model gets the whole batch at once (one
//! [`LogprobBackend::score_batch`] call per model), which lets a remote backend send requests
//! concurrently and the local engine share prefixes. After each batch the progress callback
//! runs.

mod report;

use std::time::{Duration, Instant};

use padv_core::record::cache::LogprobCache;
use padv_core::{LogprobBackend, LogprobRecord, Trajectory};
use rayon::prelude::*;

use crate::pair::{score_pairs, PairError, PairOutput};
use crate::tokenize::{TokenizeError, Tokenized, TrajectoryEncoder};

pub use report::{RunStats, SkipExample, SkipGroup, SkipReason, SkipReport, SKIP_EXAMPLES};

/// Trajectories per backend batch when the caller does not say.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// Why a scoring run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// There was nothing to score.
    #[error("no trajectories to score")]
    NoTrajectories,
    /// Every trajectory was skipped; the report says why.
    #[error("none of the {total} trajectories could be scored:\n{skips}")]
    NothingScored {
        /// Trajectories given.
        total: usize,
        /// Why each was skipped.
        skips: SkipReport,
    },
    /// Tokenising a trajectory failed in strict mode.
    #[error("tokenising trajectory {id:?}: {source}")]
    Tokenize {
        /// Trajectory id.
        id: String,
        /// Cause.
        source: TokenizeError,
    },
    /// Scoring a trajectory failed in strict mode, or the cache could not be written (always
    /// fatal: every later write would fail too).
    #[error(transparent)]
    Pair(#[from] PairError),
}

/// How a run treats failures, caches and batches.
#[derive(Debug, Clone, Copy)]
pub struct PipelineOptions<'a> {
    /// Fail on the first trajectory that cannot be tokenised or scored (default: skip it and
    /// report why).
    pub strict: bool,
    /// Read finished results from, and write new ones to, this cache.
    pub cache: Option<&'a LogprobCache>,
    /// Trajectories per backend batch (0 is treated as 1).
    pub batch_size: usize,
}

impl Default for PipelineOptions<'_> {
    fn default() -> Self {
        PipelineOptions {
            strict: false,
            cache: None,
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }
}

/// Where a run stands, given to the progress callback after each batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Trajectories finished (scored or skipped).
    pub done: usize,
    /// Trajectories in the run.
    pub total: usize,
    /// Trajectories skipped so far.
    pub skipped: usize,
    /// Tokens computed so far (see [`RunStats::computed_tokens`]).
    pub computed_tokens: usize,
    /// Time since the run started.
    pub elapsed: Duration,
}

impl Progress {
    /// Computed tokens per second so far.
    pub fn tokens_per_second(&self) -> f64 {
        self.computed_tokens as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Time left if the remaining trajectories go as fast as the finished ones (None before
    /// the first one finishes).
    pub fn eta(&self) -> Option<Duration> {
        if self.done == 0 {
            return None;
        }
        let per = self.elapsed.as_secs_f64() / self.done as f64;
        Some(Duration::from_secs_f64(
            per * self.total.saturating_sub(self.done) as f64,
        ))
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct ScoreRun {
    /// One record per scored trajectory, in input order.
    pub records: Vec<LogprobRecord>,
    /// Counts and throughput.
    pub stats: RunStats,
    /// Why the other trajectories were left out.
    pub skips: SkipReport,
}

/// Scores `trajectories` with the policy/reference pair.
///
/// Without `strict`, a trajectory that cannot be tokenised or scored is skipped and its
/// reason recorded; the run fails only when nothing is left
/// ([`PipelineError::NothingScored`]) or the cache cannot be written.
pub fn score_trajectories(
    trajectories: &[Trajectory],
    encoder: &TrajectoryEncoder<'_>,
    policy: &dyn LogprobBackend,
    reference: &dyn LogprobBackend,
    opts: &PipelineOptions<'_>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ScoreRun, PipelineError> {
    if trajectories.is_empty() {
        return Err(PipelineError::NoTrajectories);
    }
    let started = Instant::now();
    let mut stats = RunStats {
        trajectories: trajectories.len(),
        ..RunStats::default()
    };
    let mut skips = SkipReport::default();
    let mut records = Vec::with_capacity(trajectories.len());
    let mut done = 0;
    for batch in trajectories.chunks(opts.batch_size.max(1)) {
        // Tokenising is CPU-bound and independent per trajectory; the encoder is Sync.
        let encoded: Vec<Result<Tokenized, TokenizeError>> =
            batch.par_iter().map(|t| encoder.encode(t)).collect();
        let mut tokenized = Vec::with_capacity(batch.len());
        for (t, toks) in batch.iter().zip(encoded) {
            match toks {
                Ok(toks) => tokenized.push((t, toks)),
                Err(source) if opts.strict => {
                    return Err(PipelineError::Tokenize {
                        id: t.id.clone(),
                        source,
                    })
                }
                Err(e) => {
                    tracing::debug!("skipping trajectory {:?}: {e}", t.id);
                    skips.add(SkipReason::Tokenize, t.id.clone(), e.to_string());
                }
            }
        }
        let items: Vec<(&Trajectory, &Tokenized)> =
            tokenized.iter().map(|(t, toks)| (*t, toks)).collect();
        let outputs = score_pairs(&items, policy, reference, opts.cache);
        for ((t, toks), out) in items.iter().zip(outputs) {
            match out {
                Ok(out) => records.push(add_output(&mut stats, toks, out)),
                Err(e @ PairError::Cache { .. }) => return Err(e.into()),
                Err(e) if opts.strict => return Err(e.into()),
                Err(e) => {
                    let reason = match e {
                        PairError::Shape { .. } => SkipReason::Shape,
                        PairError::NonFinite { .. }
                        | PairError::Backend {
                            source: padv_core::BackendError::NonFinite { .. },
                            ..
                        } => SkipReason::NonFinite,
                        _ => SkipReason::Backend,
                    };
                    tracing::debug!("skipping trajectory {:?}: {e}", t.id);
                    skips.add(reason, t.id.clone(), e.cause());
                }
            }
        }
        done += batch.len();
        progress(&Progress {
            done,
            total: trajectories.len(),
            skipped: skips.total(),
            computed_tokens: stats.computed_tokens,
            elapsed: started.elapsed(),
        });
    }
    stats.records = records.len();
    stats.skipped = skips.total();
    stats.seconds = started.elapsed().as_secs_f64();
    stats.tokens_per_second = stats.computed_tokens as f64 / stats.seconds.max(1e-9);
    if records.is_empty() {
        return Err(PipelineError::NothingScored {
            total: trajectories.len(),
            skips,
        });
    }
    Ok(ScoreRun {
        records,
        stats,
        skips,
    })
}

/// Counts one scored trajectory and hands back its record.
fn add_output(stats: &mut RunStats, toks: &Tokenized, out: PairOutput) -> LogprobRecord {
    stats.tokens += out.n_tokens;
    stats.action_tokens += out.n_targets;
    stats.cache_hits += out.cache_hits;
    stats.cache_corrupt += out.cache_corrupt;
    if out.cache_hits < 2 {
        stats.computed_tokens += out.n_tokens;
    }
    stats.action_steps += out.record.steps.len();
    stats.action_steps_cut_by_truncation += toks.actions_cut;
    stats.action_steps_clipped_by_truncation += toks.actions_clipped;
    stats.trajectories_truncated += usize::from(toks.truncated_tokens > 0);
    out.record
}

#[cfg(test)]
mod tests;
