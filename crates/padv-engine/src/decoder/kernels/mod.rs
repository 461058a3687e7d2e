//! The crate's only `unsafe` code (the crate root denies `unsafe_code` everywhere else):
//! - [`gemm`]: matrix views validated against their slices, and one safe wrapper around the
//!   `gemm` crate's raw-pointer product;
//! - [`fastmath`]: AVX2/FMA variants of the scalar math, selected at run time, and explicit
//!   AVX2 intrinsics for decoding's attention (`fastmath/strided_avx2.rs`: raw-pointer loads
//!   whose bounds are checked once per call).
//!
//! Keeping it here means one small place to audit; every `unsafe` block carries a
//! `// SAFETY:` comment.
#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub(crate) mod fastmath;
pub(crate) mod gemm;
