//! # padv-engine
//!
//! padv's local log-prob engine: Hugging Face checkpoints from local directories, tokenisation
//! and chat templates, and one generic decoder on candle that returns teacher-forced log-probs
//! at action positions only.
#![deny(missing_docs)]
// Raw-pointer kernels live in `decoder::kernels` only, behind safe, validating wrappers.
#![deny(unsafe_code)]

pub mod cancel;
pub mod pair;
pub mod pipeline;
pub mod tokenize;

#[cfg(feature = "decoder")]
pub mod checkpoint;
#[cfg(feature = "decoder")]
pub mod classify;
#[cfg(feature = "decoder")]
pub mod decoder;
#[cfg(feature = "decoder")]
pub mod logprobs;
#[cfg(feature = "decoder")]
pub mod merge;
