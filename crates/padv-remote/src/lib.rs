//! # padv-remote
//!
//! Remote log-prob backends: fleets of vLLM (`POST /v1/completions` with `prompt_logprobs`)
//! or SGLang (`POST /generate` with `return_logprob`) servers behind
//! `padv_core::LogprobBackend`, so `padv score` can use GPUs elsewhere.
//!
//! Token ids are sent, never text: tokenisation and chat templating stay in padv and are
//! identical for both models and for local scoring; the echoed ids are checked. From the
//! engines' top-k only the top-20 mean is exact, so remote records have no entropy and no
//! vocabulary mean (the evaluations report those methods as unavailable).
#![deny(missing_docs)]

mod backend;
mod endpoint;
mod error;
mod fleet;
mod http;
pub mod judge;
mod pair;
pub mod protocol;
mod sparse;

pub use backend::{RemoteBackend, RemoteOptions, RemoteStats};
pub use endpoint::{Endpoint, ModelIdentity};
pub use error::RemoteError;
pub use http::{ApiKey, HttpTarget};
pub use pair::{capped_max_length, check_options, RemotePair, RemotePairSpec};
pub use protocol::EngineKind;
