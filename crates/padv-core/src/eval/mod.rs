//! The three evaluations of trajectory scores, plus the rank metrics they rest on.
//!
//! - [`uq`] / [`uq_grid`]: uncertainty quantification, i.e. how well a score predicts
//!   success (AUROC with a bootstrap interval, AUPRC, Spearman), and
//!   [`cross_validate`] for an honest choice of aggregation;
//! - [`best_of_n`] / [`bon_grid`]: pick the best-scored rollout per task, with the exact
//!   expected best-of-k curve;
//! - [`attribution`] / [`fa_grid`]: locate the decisive mistake step from step scores;
//! - [`calibration`]: score → success-probability maps (Platt, isotonic), their held-out
//!   Brier score, log-loss and calibration error, and saved maps for serving.
//!
//! Every result type is serde-serializable; the grid functions evaluate cells in parallel
//! and return one row per [`ScoreSpec`](crate::score::ScoreSpec), in the given order.

pub(crate) mod attribution;
mod bench;
pub(crate) mod bon;
mod bootstrap;
pub mod calibration;
mod cv;
#[cfg(test)]
mod grid_tests;
mod metrics;
mod ranked;
pub mod report;
mod source;
pub use source::RecordScan;
mod uq;

pub use attribution::{attribution, fa_grid, FaMetrics, FaPredictor, FaResult, FaRow};
pub use bench::{bench_records, run_full_grid_benchmark, BenchOptions, BenchReport};
pub use bon::{best_of_n, bon_grid, expected_best_of_k, BonResult, BonRow};
pub use bootstrap::{
    auroc_bootstrap_ci, quantile_sorted, ConfidenceInterval, MeanBootstrap, SplitMix64,
};
pub use cv::{cross_validate, cross_validate_by_method, CellAuroc, CvResult, FoldChoice};
pub use metrics::{auprc, auroc, average_ranks, spearman, MetricError};
pub use report::{
    evaluate, evaluate_files, evaluate_table, scan_record_files, table_from_files, EvalConfig,
    EvalKind, EvalReport, EvalRequest, DEFAULT_TABLE_BUDGET,
};
pub use uq::{stratified_folds, uq, uq_grid, FoldAuroc, ScoreSlot, UqOptions, UqResult, UqRow};

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
    /// There is no record to evaluate.
    #[error("no records to evaluate")]
    NoRecords,
    /// A record breaks the record format's invariants.
    #[error("record {position} (id {id:?}): {message}")]
    InvalidRecord {
        /// Record id.
        id: String,
        /// 0-based position among the evaluated records.
        position: usize,
        /// What is wrong, naming the step, field and token position.
        message: String,
    },
    /// Two records share an id: best-of-N would count one rollout twice.
    #[error("duplicate record id {id:?} at records {first} and {second} (0-based)")]
    DuplicateId {
        /// The id.
        id: String,
        /// Position of its first occurrence.
        first: usize,
        /// Position of the repeat.
        second: usize,
    },
    /// No requested method can score the records.
    #[error("no method in the grid can score these records: {0}")]
    NoMethod(String),
    /// The evaluation configuration is unusable.
    #[error("invalid evaluation configuration: {0}")]
    InvalidConfig(String),
    /// A record file could not be read: [`crate::record::RecordError`]'s text, which names
    /// the file, record and field (kept as text so that this error stays `Clone + PartialEq`).
    #[error("{0}")]
    Records(String),
}

impl From<crate::record::RecordError> for EvalError {
    fn from(e: crate::record::RecordError) -> Self {
        EvalError::Records(e.to_string())
    }
}
