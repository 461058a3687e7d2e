//! The three evaluations of trajectory scores, plus the rank metrics they rest on.
//!
//! - [`uq`] / [`uq_grid`]: uncertainty quantification, i.e. how well a score predicts
//!   success (AUROC with a bootstrap interval, AUPRC, Spearman), and
//!   [`cross_validate`] for an honest choice of aggregation;
//! - [`best_of_n`] / [`bon_grid`]: pick the best-scored rollout per task, with the exact
//!   expected best-of-k curve;
//! - [`attribution`] / [`fa_grid`]: locate the decisive mistake step from step scores.
//!
//! Every result type is serde-serializable; the grid functions evaluate cells in parallel
//! and return one row per [`ScoreSpec`](crate::score::ScoreSpec), in the given order.

mod attribution;
mod bench;
mod bon;
mod bootstrap;
mod cv;
#[cfg(test)]
mod grid_tests;
mod metrics;
mod ranked;
mod uq;

pub use attribution::{attribution, fa_grid, FaMetrics, FaPredictor, FaResult, FaRow};
pub use bench::{bench_records, run_full_grid_benchmark, BenchOptions, BenchReport};
pub use bon::{best_of_n, bon_grid, expected_best_of_k, BonResult, BonRow};
pub use bootstrap::{auroc_bootstrap_ci, quantile_sorted, ConfidenceInterval, SplitMix64};
pub use cv::{cross_validate, cross_validate_by_method, CellAuroc, CvResult, FoldChoice};
pub use metrics::{auprc, auroc, average_ranks, spearman, MetricError};
pub use uq::{stratified_folds, uq, uq_grid, FoldAuroc, UqOptions, UqResult, UqRow};

use crate::score::ScoreError;

/// Why an evaluation could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// A record could not be scored (names the record, step and field).
    #[error(transparent)]
    Score(#[from] ScoreError),
    /// Aligned inputs differ in length.
    #[error("length mismatch ({what}): expected {expected}, found {found}")]
    LengthMismatch {
        /// Which inputs.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        found: usize,
    },
}
