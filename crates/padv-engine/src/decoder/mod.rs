//! One generic pre-norm decoder on candle-core/candle-nn, with per-family switches in
//! [`DecoderConfig`] (Llama 3.x, Qwen2/2.5, Qwen3, Mistral, Gemma 2, Gemma 3 text, OLMo 2,
//! Phi-3).
//!
//! - [`DecoderModel::forward`] returns final-normed hidden states for every position (or
//!   [`DecoderModel::forward_rows`] for chosen rows); no output projection is applied.
//! - [`KvCache`] can be cloned after a prefix so the prefix is computed once.
//! - Two builds of the same weights: the inference path (fused projections, parallel CPU
//!   kernels, blocked flash-style attention) and, with [`ModelOptions::trainable`], a plain
//!   differentiable path for training with candle `Var`s. Tests check they agree.
//!
//! Shapes: ids `[B, T]` u32; hidden `[B, T, H]`; keys/values `[B, T, Hkv, D]`.

mod attention;
mod cache;
mod config;
mod flash;
pub(crate) mod kernels;
mod linear;
mod mlp;
mod model;
mod norm;
mod ops;
mod rope;

pub(crate) use kernels::fastmath;

pub use attention::AttentionImpl;
pub use cache::KvCache;
pub use config::{
    Activation, BiasRule, DecoderConfig, Family, FamilyTraits, LayerSpec, NormPlacement, QkNorm,
    RopeRule, RopeScaling, RopeSpec, SlidingLayers, SoftcapRule,
};
pub use linear::Linear;
pub use model::{DecoderModel, ModelOptions};
pub use norm::RmsNorm;
pub use rope::{inv_freq, RopeTables};
