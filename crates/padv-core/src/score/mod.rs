//! Scores from per-token log-probs: token arrays → step values → trajectory score.
//!
//! A [`ScoreSpec`] names a [`Method`] (progress advantage or a confidence baseline), a
//! [`TokenAgg`], a [`StepAgg`], a [`PaMode`] and β. Every method is oriented so that a higher
//! score means the trajectory is more likely to succeed, except the `*_refimpl` variants,
//! which keep the reference implementation's (inverted) sign for reproduction.
//!
//! Two ways in:
//! - one record: [`step_scores`] and [`trajectory_score`];
//! - many records and many specs (grids): [`ScoreTable::precompute`] once, then
//!   [`ScoreTable::scorer`] / [`ScoreTable::trajectory_scores`] per spec. The table caches all
//!   five token aggregates of every array of every step, so a grid cell costs one read per
//!   step.
//!
//! Empty steps (action tokens truncated away) score 0.0 under the log-prob methods and are
//! skipped by the certainty methods; a trajectory with no remaining step scores `None`.
//!
//! ```
//! use padv_core::score::{trajectory_score, Method, ScoreSpec, StepAgg, TokenAgg};
//! use padv_core::{LogprobRecord, StepLogprobs};
//! let step = |mi, p: Vec<f32>, r: Vec<f32>| StepLogprobs {
//!     message_index: mi, policy: p, reference: Some(r), ..Default::default()
//! };
//! let record = LogprobRecord {
//!     id: "t1".into(), task_id: "task".into(), label: Some(1.0), mistake_step: None,
//!     vocab_size: None, num_messages: None, judges: Default::default(),
//!     steps: vec![step(1, vec![-0.5, -1.0], vec![-1.0, -1.5]), step(3, vec![-2.0], vec![-1.0])],
//! };
//! // PA, token mean: step 1: mean(-0.5, -1) - mean(-1, -1.5) = -0.75 + 1.25 = 0.5;
//! // step 3: -2 + 1 = -1. Step min -> -1.
//! let spec = ScoreSpec::builder().token_agg(TokenAgg::Mean).step_agg(StepAgg::Min).build()?;
//! assert_eq!(trajectory_score(&record, &spec)?, Some(-1.0));
//! # Ok::<(), padv_core::score::ScoreError>(())
//! ```

mod aggregate;
mod error;
pub(crate) mod names;
mod scorer;
mod spec;
pub(crate) mod table;

#[cfg(test)]
mod method_tests;

/// Re-exported from [`crate::synthetic`], its home since it is not scoring.
pub use crate::synthetic::synthetic_records;
pub use aggregate::{bottom10_count, StepAgg, TokenAgg, TokenStats};
pub use error::ScoreError;
pub use names::ParseNameError;
pub(crate) use scorer::check_judge_spec;
pub use scorer::{step_scores, trajectory_score, Scorer};
pub(crate) use spec::{cells_by_method, MethodGroup};
pub use spec::{
    grid, judge_grid, JudgeLevel, JudgeRef, Method, PaMode, ScoreSpec, ScoreSpecBuilder, MAX_BETA,
};
pub use table::{ScoreTable, ScoreTableBuilder};
