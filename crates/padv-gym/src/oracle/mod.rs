//! Soft ground truth and the oracle: what progress advantage is *supposed* to equal, and the
//! policy that makes it equal exactly.
//!
//! The theory: at the optimum of `E[R − β·Σ log π/π_ref]` the policy is
//! `π*(y|h) ∝ π_ref(y|h)·e^{Q*(h, y)/β}`, so `β·log π*/π_ref = Q* − V* = A*`, the **soft**
//! advantage relative to the reference at the pair's β. To measure it in the gym:
//!
//! 1. [`trie`]: the environment's actions are the four move lines `go X` and "anything
//!    else"; one probe of the reference at a decision point gives the exact `π_ref(a|h)`,
//!    the soft value `V_h` and the oracle's token distributions.
//! 2. [`projection`]: the LM reference conditions on the history, the solver on the state;
//!    the reference is measured after one canonical history per reachable state
//!    (`π̂_ref(a | t, pos)`), and [`values::SoftLake`] solves the soft values with it.
//! 3. [`truth`]: every step a player takes gets `A_h = Q(s, a) − V_h` at its own history,
//!    the projected `A(s, a)`, and how far its history's reference is from the projection.
//! 4. [`player`] / [`backend`]: the oracle `π_o(y|h) ∝ π_ref(y|h)·e^{Q(s,a(y))/β}` plays
//!    (sampled from the reference, no training) and is scored through the same pipeline as
//!    a checkpoint; `β·log π_o/π_ref = A_h` on every action by construction.
//! 5. [`prefilled`]: the soft-truth pass's reference logits and probes, reused by the
//!    scoring pipeline so the reference does not run over the same rollouts again.

pub mod backend;
pub mod player;
pub mod prefilled;
pub mod probe;
pub mod projection;
pub mod trie;
pub mod truth;
pub mod values;

pub use backend::OracleBackend;
pub use player::{oracle_rollouts, OracleStep};
pub use prefilled::{Prefilled, PrefilledBackend};
pub use projection::{canonical_action_text, canonical_remark, project, MapTruth, ProjectionCost};
pub use trie::{DecisionProbe, MoveTrie};
pub use truth::{rollout_truth, rollout_truth_prefilled, ProjectionGap, StepSoft};
pub use values::SoftLake;
