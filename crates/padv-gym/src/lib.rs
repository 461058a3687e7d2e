//! padv's gym: a slippery-lake text environment whose dynamics are known exactly, so that
//! progress advantage can be *measured* against the true (soft) optimal advantage.
//!
//! World side (environment, exact solvers, ground truth, tokenizer, analysis): [`lake`],
//! [`protocol`], [`solver`], [`soft`], [`truth`], [`expert`], [`episode`], [`tokenizer`],
//! [`analysis`]. Agent side (tiny LM checkpoints, sampling, post-training, the demo):
//! [`agent`], [`sample`], [`train`], [`demo`], [`search`] (step-level guided search).

#![deny(missing_docs)]

pub mod error;

pub mod analysis;
pub mod episode;
pub mod expert;
pub mod lake;
pub mod oracle;
pub mod protocol;
pub mod soft;
pub mod solver;
pub mod tokenizer;
pub mod truth;

pub mod agent;
pub mod demo;
pub mod sample;
pub mod search;
pub mod train;

pub use error::GymError;
