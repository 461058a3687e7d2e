//! The log-prob record: padv's interchange format between backends and evaluations.
//!
//! One JSON object per line (JSONL), one trajectory per object:
//!
//! ```json
//! {"id": "sim-17", "task_id": "3", "label": 1.0, "mistake_step": null, "vocab_size": 151936,
//!  "steps": [{"message_index": 1,
//!             "policy": [-0.11, -2.3], "reference": [-0.52, -2.9],
//!             "policy_topk_mean": [-9.8, -7.1], "policy_entropy": [0.41, 1.9],
//!             "policy_vocab_mean": [-17.2, -16.4]}]}
//! ```
//!
//! Every per-token array of a step has one entry per action token of that step, in order, and
//! all present arrays of a step have the same length. Only `message_index` and `policy` are
//! required; a statistic a source cannot give is simply absent and the methods that need it
//! report so (see [`crate::score`]). Any engine (vLLM, a user's RL pipeline) that can produce
//! per-token log-probs can write this file and use every evaluation.
//!
//! An optional `judges` map carries other judges' scores of the same trajectory (see
//! [`crate::judge`]): `{"judges": {"thinkprm": {"steps": [{"message_index": 1, "score":
//! 0.9}]}, "wildreward": {"trajectory": 3.7}}}`. Records without it read as before.
//!
//! The same records can be stored as Parquet, one row per trajectory with the steps as list
//! columns ([`parquet`] documents the schema). [`read_records`] and [`RecordBatches`] read
//! either format, told apart by content; [`RecordBatches`] hands out a batch at a time so
//! a reduction over a file (an evaluation's [`crate::score::ScoreTableBuilder`]) never holds
//! all of its token arrays.

pub mod arrays;
pub mod cache;
mod io;
pub mod parquet;
#[cfg(test)]
mod parquet_tests;
mod source;

pub use io::{
    read_records_from_str, read_records_jsonl, validate, write_records_atomic, JsonlRecords,
    RecordError,
};
pub use parquet::{
    read_records_parquet, read_records_parquet_bytes, records_from_arrow,
    write_records_parquet_atomic, ParquetRecords,
};
pub use source::{detect_format, read_records, write_records_as, RecordBatches, RecordFormat};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::judge::JudgeScores;

/// Per-token log-probs of one trajectory's action steps.
///
/// `Default` lets other crates write `LogprobRecord { id, task_id, steps,
/// ..Default::default() }` and keep compiling when optional fields are added.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogprobRecord {
    /// Trajectory id.
    pub id: String,
    /// Task id (best-of-N groups by it). Defaults to the id when a source has none.
    pub task_id: String,
    /// Outcome reward; `None` when unknown (such records are skipped by UQ and best-of-N).
    #[serde(default)]
    pub label: Option<f64>,
    /// Annotated decisive-mistake message index (failure attribution), 0-based.
    #[serde(default)]
    pub mistake_step: Option<usize>,
    /// Policy vocabulary size; lets `self_certainty` report Kang et al.'s exact KL(U‖p)
    /// (the `−log V` shift does not change any ranking).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab_size: Option<usize>,
    /// Action steps in message order.
    pub steps: Vec<StepLogprobs>,
    /// Number of messages of the trajectory, when the writer knows it. Lets validation
    /// reject a `mistake_step` or `message_index` that is not one of the trajectory's
    /// messages (which would otherwise just count as a miss in failure attribution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_messages: Option<usize>,
    /// Other judges' scores of this trajectory, by judge name (see [`crate::judge`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub judges: BTreeMap<String, JudgeScores>,
}

/// Per-token arrays of one action step. Empty arrays mean the step's tokens were truncated away.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepLogprobs {
    /// Index of the action message in the trajectory.
    pub message_index: usize,
    /// log π_θ(token | prefix) for each action token.
    pub policy: Vec<f32>,
    /// log π_ref(token | prefix) for each action token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Vec<f32>>,
    /// Mean of the policy's top-20 log-probs at each action position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_topk_mean: Option<Vec<f32>>,
    /// Entropy (nats) of the policy's next-token distribution at each action position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_entropy: Option<Vec<f32>>,
    /// Mean log-prob over the whole vocabulary, (1/V)·Σ_v log p(v), at each action position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_vocab_mean: Option<Vec<f32>>,
}

impl StepLogprobs {
    /// Number of action tokens in the step (0 when truncated away).
    pub fn len(&self) -> usize {
        self.policy.len()
    }

    /// Whether the step has no tokens (e.g. fully truncated).
    pub fn is_empty(&self) -> bool {
        self.policy.is_empty()
    }
}
