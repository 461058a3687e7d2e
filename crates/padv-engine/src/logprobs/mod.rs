//! Teacher-forced scoring: log p(`ids[t]` | `ids[..t]`) at chosen positions t, with optional
//! distribution statistics (top-20 mean, entropy, vocabulary mean).
//!
//! The decoder runs up to the last target; the output projection is applied only to the
//! hidden states at positions t−1, `chunk_rows` rows at a time, and each row's statistics
//! are reduced in f32/f64 on the CPU, so a `T × V` matrix never exists. Gemma's final-logit
//! soft-capping is applied before any statistic.

mod engine;
mod fanout;
mod head;
mod stats;

pub use engine::{BatchCost, ComputeDType, DeviceSpec, EngineError, EngineOptions, LocalEngine};
pub use head::{score_hidden, DEFAULT_CHUNK_ROWS};
pub use stats::{log_sum_exp, row_stats, RowStats, TOP_K};
