//! # padv-core
//!
//! The pure core of padv: everything downstream of per-token log-probs, with no ML
//! dependencies. Data flows one way:
//!
//! 1. [`formats`] read agent logs (tau2-bench, Who&When, OpenAI-style chat JSONL) into
//!    [`Trajectory`] values;
//! 2. [`render`] turns a trajectory into text spans a tokenizer will see, marking the action
//!    steps (the `paper` rendering, byte-identical to the reference implementation);
//! 3. a [`LogprobBackend`] (local engine, remote server, or the user's own pipeline) produces
//!    per-token log-probs, stored as [`LogprobRecord`]s ([`record`], padv's interchange format);
//! 4. [`score`] turns token arrays into step and trajectory scores (progress advantage and the
//!    confidence baselines);
//! 5. [`eval`] runs the three evaluations: uncertainty quantification, best-of-N and failure
//!    attribution;
//! 6. [`judge`] holds the scores of other judges (reward models, PRMs, LLM judges) that the
//!    records carry next to the log-probs, so every evaluation shows them beside PA.
#![deny(missing_docs)]

pub mod atomic;
pub mod backend;
pub mod eval;
pub mod fingerprint;
pub mod formats;
pub mod inspect;
pub mod judge;
pub mod record;
pub mod render;
pub mod rng;
pub mod score;
pub mod synthetic;
pub mod trajectory;

pub use backend::{
    score_one, BackendError, LogprobBackend, PositionLogprobs, ScoreRequest, StatsRequest,
};
pub use record::{LogprobRecord, StepLogprobs};
pub use trajectory::{is_success_reward, ActionText, Message, ToolCall, Trajectory, SUCCESS_EPS};
