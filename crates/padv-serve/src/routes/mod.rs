//! One file per group of routes.

pub mod candidates;
pub mod health;
pub mod score;
pub mod sessions;
pub mod vllm;
