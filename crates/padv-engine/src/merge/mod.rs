//! Weight-space merging of a policy into its reference: π_α between π_ref and π_θ.
//!
//! The paper moves the reference towards the policy ("neither too far nor too near") with
//! the merges of mergekit and the papers (formats-and-formulas §7, paper-notes §11.4). Every
//! method here computes, per floating-point tensor,
//!
//! ```text
//! θ = θ_ref + α·Δ(τ_1, …, τ_M),   τ_i = θ_i − θ_ref  (θ_1 the policy, θ_2.. extra policies)
//! ```
//!
//! with all task weights 1:
//!
//! | method | Δ | one task vector |
//! |---|---|---|
//! | `linear` | mean_i τ_i | (1 − α)·π_ref + α·π_θ |
//! | `task_arithmetic` | Σ_i τ_i | = `linear` |
//! | `ties` | trim each τ_i to its k = ⌊d·n⌋ largest \|τ\| (ties at the threshold: earliest entries first); elect s = sign(Σ_i τ̂_i) (+1 when ≥ 0); mean of the τ̂_i whose sign equals s (zeros never agree) | θ_ref + α·trim(τ): the sign election is the identity |
//! | `dare_linear` | Σ_i m_i⊙τ_i·r_i, m_i ~ Bernoulli(d) per entry (seeded), r_i = 1/d (`inv_density`: the paper and the reference code) or ‖τ_i‖₁/‖m_i⊙τ_i‖₁ per tensor (`l1`: current mergekit) | |
//! | `dare_ties` | DARE's τ̂_i, then TIES' election; Σ (not mean) of the agreeing entries | = `dare_linear` (same masks) |
//! | `emr` | γ = sign(Σ_i τ_i) (+1 when > 0, else −1); ε = max_i \|τ_i\| over the τ_i agreeing with γ; τ_uni = γ·ε; the policy's mask M_1 = [τ_1·τ_uni > 0] and λ_1 = Σ_tensors mean\|τ_1\| / Σ_tensors mean\|M_1⊙τ_uni\|; Δ = λ_1·M_1⊙τ_uni | = `linear` (λ = 1, τ_uni = τ) |
//!
//! Exact semantics:
//!
//! - **Endpoints.** α = 0 gives the reference's tensors, and α = 1 with `linear` or
//!   `task_arithmetic` and one task vector the policy's, **bit for bit** (the bytes are
//!   copied; a policy tensor of another dtype is converted). For the sparsifying methods
//!   α = 1 is θ_ref + trimmed/dropped τ, not the policy.
//! - **Arithmetic.** Inputs are widened to f64 (exact for f16/bf16/f32), every operation is
//!   in f64, and the result is rounded to the reference tensor's dtype (nearest, ties to
//!   even). DARE's masks come from a counter-based generator keyed by (seed, tensor name, task,
//!   entry), so they do not depend on chunking or thread count; the same seed gives the same
//!   merge. (mergekit draws them with torch, so its masks differ for the same seed.)
//! - **Which tensors.** The output has the reference's tensor names, dtypes, shapes and shard
//!   layout. Tensors whose dtype is not f16/bf16/f32/f64 (integer buffers, fp8) are copied
//!   from the reference. A task model must store every merged tensor of the reference.
//! - **Vocabulary rows.** A task tensor that differs from the reference's only in its first
//!   dimension (embedding and output rows of siblings with different vocabularies) is
//!   aligned as the reference implementation does: truncated to the reference's rows, or
//!   padded by repeating its last row. Any other shape difference is an error.
//! - **Memory.** Tensors are streamed in chunks of 2²⁰ entries: per tensor, one output buffer
//!   (the writer's unit) plus a few chunk buffers. TIES finds its magnitude threshold with an
//!   exact radix selection over four streaming passes instead of sorting a copy; EMR reads
//!   every tensor once more beforehand for its λ.
//!
//! [`Merger`] computes merged tensors on demand; [`write_merged`] streams them into a
//! checkpoint folder; `engine::load_merged` builds a local engine on them without writing
//! anything (`padv score --reference-merge`).

mod engine;
mod select;
mod spec;
mod st;
mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::Dtype;
use serde::Serialize;

use padv_core::fingerprint::Fnv64;

pub use engine::{load_merged, merged_fingerprint};
pub use spec::{DareRescale, MergeMethod, MergeSpec, DEFAULT_DENSITY};
pub use write::{write_merged, FilesFrom, MergeReport, PROVENANCE_FILE};

#[cfg(test)]
use st::decode;
use st::{elem_size, encode, is_mergeable, Entry, StCheckpoint};

/// Entries per streamed chunk.
const CHUNK: usize = 1 << 20;

/// Why a merge could not be done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// Bad method, α, density or sweep text.
    #[error("merge: {0}")]
    Spec(String),
    /// A checkpoint folder could not be used (names it and why).
    #[error("merge: {0}")]
    Input(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A safetensors file is malformed.
    #[error("{path}: bad safetensors file: {reason}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The parents' tensors do not line up.
    #[error("merge: tensor `{name}`: {reason}")]
    Tensor {
        /// The tensor.
        name: String,
        /// What is wrong (names both checkpoints).
        reason: String,
    },
    /// Writing the output folder failed.
    #[error("merge: writing {path}: {reason}")]
    Write {
        /// The output.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// A task tensor whose rows were aligned to the reference's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlignedTensor {
    /// Tensor name.
    pub name: String,
    /// Which task model (0: the policy).
    pub task: usize,
    /// Its rows.
    pub from_rows: usize,
    /// The reference's rows.
    pub to_rows: usize,
    /// `truncated` or `padded (last row repeated)`.
    pub how: &'static str,
}

#[derive(Debug, Clone, Copy)]
struct Align {
    src_rows: usize,
    row_len: usize,
}

#[derive(Debug, Clone)]
struct Plan {
    base: Entry,
    /// None: copied from the reference (not a mergeable dtype).
    tasks: Option<Vec<(Entry, Option<Align>)>>,
}

/// The parents of a merge, opened, with the plan of every tensor.
#[derive(Debug)]
pub struct Merger {
    spec: MergeSpec,
    base: StCheckpoint,
    tasks: Vec<StCheckpoint>,
    plans: BTreeMap<String, Plan>,
    aligned: Vec<AlignedTensor>,
    copied: Vec<String>,
    /// EMR's λ of each task model (empty for the other methods).
    emr_lambda: Vec<f64>,
}

impl Merger {
    /// Opens the reference and the task models (`tasks[0]` is the policy), checks that every
    /// merged tensor of the reference exists in each with a compatible shape, and (EMR)
    /// computes λ with one pass over all tensors.
    pub fn open(
        reference: &Path,
        tasks: &[PathBuf],
        spec: MergeSpec,
    ) -> Result<Merger, MergeError> {
        if tasks.is_empty() {
            return Err(MergeError::Spec("no policy to merge".into()));
        }
        let base = StCheckpoint::open(reference)?;
        let task_cks = tasks
            .iter()
            .map(|t| StCheckpoint::open(t))
            .collect::<Result<Vec<_>, _>>()?;
        let mut plans = BTreeMap::new();
        let mut aligned = Vec::new();
        let mut copied = Vec::new();
        for (name, e) in &base.tensors {
            if !is_mergeable(e.dtype) {
                copied.push(name.clone());
                plans.insert(
                    name.clone(),
                    Plan {
                        base: e.clone(),
                        tasks: None,
                    },
                );
                continue;
            }
            let mut per_task = Vec::with_capacity(task_cks.len());
            for (i, t) in task_cks.iter().enumerate() {
                let Some(te) = t.tensors.get(name) else {
                    return Err(MergeError::Tensor {
                        name: name.clone(),
                        reason: format!(
                            "in the reference {} but not in {}",
                            reference.display(),
                            t.dir.display()
                        ),
                    });
                };
                if !is_mergeable(te.dtype) {
                    return Err(MergeError::Tensor {
                        name: name.clone(),
                        reason: format!(
                            "{:?} in the reference but {:?} in {}",
                            e.dtype,
                            te.dtype,
                            t.dir.display()
                        ),
                    });
                }
                let align = if te.shape == e.shape {
                    None
                } else if te.shape.len() == e.shape.len()
                    && !e.shape.is_empty()
                    && te.shape[1..] == e.shape[1..]
                    && te.shape[0] > 0
                {
                    let (from, to) = (te.shape[0], e.shape[0]);
                    aligned.push(AlignedTensor {
                        name: name.clone(),
                        task: i,
                        from_rows: from,
                        to_rows: to,
                        how: if from > to {
                            "truncated"
                        } else {
                            "padded (last row repeated)"
                        },
                    });
                    Some(Align {
                        src_rows: from,
                        row_len: e.shape[1..].iter().product(),
                    })
                } else {
                    return Err(MergeError::Tensor {
                        name: name.clone(),
                        reason: format!(
                            "shape {:?} in the reference {} but {:?} in {} (only the first \
                             dimension, the vocabulary rows, may differ)",
                            e.shape,
                            reference.display(),
                            te.shape,
                            t.dir.display()
                        ),
                    });
                };
                per_task.push((te.clone(), align));
            }
            plans.insert(
                name.clone(),
                Plan {
                    base: e.clone(),
                    tasks: Some(per_task),
                },
            );
        }
        aligned.sort_by(|a, b| (&a.name, a.task).cmp(&(&b.name, b.task)));
        copied.sort();
        let mut m = Merger {
            spec,
            base,
            tasks: task_cks,
            plans,
            aligned,
            copied,
            emr_lambda: Vec::new(),
        };
        if spec.method == MergeMethod::Emr && spec.alpha != 0.0 {
            m.emr_lambda = m.emr_lambdas()?;
        }
        Ok(m)
    }

    /// The merge.
    pub fn spec(&self) -> &MergeSpec {
        &self.spec
    }

    /// The reference folder.
    pub fn reference_dir(&self) -> &Path {
        &self.base.dir
    }

    /// The task model folders (the policy first).
    pub fn task_dirs(&self) -> Vec<&Path> {
        self.tasks.iter().map(|t| t.dir.as_path()).collect()
    }

    /// Task tensors whose rows were aligned to the reference's.
    pub fn aligned(&self) -> &[AlignedTensor] {
        &self.aligned
    }

    /// Tensors copied from the reference because their dtype is not a float the merge
    /// handles.
    pub fn copied(&self) -> &[String] {
        &self.copied
    }

    /// EMR's λ per task model (empty for other methods, or at α = 0).
    pub fn emr_lambdas_used(&self) -> &[f64] {
        &self.emr_lambda
    }

    /// Whether the reference stores `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.plans.contains_key(name)
    }

    /// The reference's shape of `name`.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.plans.get(name).map(|p| p.base.shape.as_slice())
    }

    /// The reference's dtype of `name`.
    pub(crate) fn dtype(&self, name: &str) -> Option<Dtype> {
        self.plans.get(name).map(|p| p.base.dtype)
    }

    pub(crate) fn base(&self) -> &StCheckpoint {
        &self.base
    }

    /// The merged tensor `name` as little-endian bytes of the reference's dtype.
    pub fn tensor_bytes(&self, name: &str) -> Result<Vec<u8>, MergeError> {
        let plan = self.plans.get(name).ok_or_else(|| MergeError::Tensor {
            name: name.to_string(),
            reason: format!("not stored in the reference {}", self.base.dir.display()),
        })?;
        let Some(tasks) = &plan.tasks else {
            return self.base.raw(&plan.base);
        };
        let s = self.spec;
        if s.alpha == 0.0 {
            return self.base.raw(&plan.base);
        }
        let one_vector_identity = s.alpha == 1.0
            && tasks.len() == 1
            && matches!(s.method, MergeMethod::Linear | MergeMethod::TaskArithmetic);
        if one_vector_identity {
            let (te, align) = &tasks[0];
            if te.dtype == plan.base.dtype && align.is_none() {
                return self.tasks[0].raw(te);
            }
        }
        let n = plan.base.numel();
        let k = tasks.len();
        // Per-tensor statistics of the methods that need them.
        let ties_keep: Vec<TieKeep> = if s.method == MergeMethod::Ties {
            (0..k)
                .map(|i| self.ties_threshold(name, plan, i))
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        let dare_scale: Vec<f64> = if s.method.is_dare() {
            (0..k)
                .map(|i| self.dare_scale(name, plan, i))
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        let mut ties_allow: Vec<usize> = ties_keep.iter().map(TieKeep::allowance).collect();
        let name_key = name_key(name, s.seed);
        let mut out = Vec::with_capacity(n * elem_size(plan.base.dtype));
        let mut bufs = ChunkBufs::new(k);
        let mut delta = vec![0.0f64; k];
        let mut res = Vec::with_capacity(CHUNK);
        for first in (0..n).step_by(CHUNK) {
            let len = CHUNK.min(n - first);
            self.read_chunk(plan, first, len, &mut bufs)?;
            res.clear();
            for j in 0..len {
                let b = bufs.base[j];
                if one_vector_identity {
                    res.push(bufs.tasks[0][j]);
                    continue;
                }
                for (i, d) in delta.iter_mut().enumerate() {
                    *d = bufs.tasks[i][j] - b;
                }
                let idx = (first + j) as u64;
                let d = match s.method {
                    MergeMethod::Linear => delta.iter().sum::<f64>() / k as f64,
                    MergeMethod::TaskArithmetic => delta.iter().sum(),
                    MergeMethod::Ties => {
                        for (i, d) in delta.iter_mut().enumerate() {
                            if !ties_keep[i].keeps(*d, &mut ties_allow[i]) {
                                *d = 0.0;
                            }
                        }
                        disjoint(&delta, true)
                    }
                    MergeMethod::DareLinear | MergeMethod::DareTies => {
                        for (i, d) in delta.iter_mut().enumerate() {
                            *d = if dare_keep(name_key, i, idx, s.density) {
                                *d * dare_scale[i]
                            } else {
                                0.0
                            };
                        }
                        if s.method == MergeMethod::DareTies {
                            disjoint(&delta, false)
                        } else {
                            delta.iter().sum()
                        }
                    }
                    MergeMethod::Emr => {
                        let (_, uni) = emr_unified(&delta);
                        let lambda = self.emr_lambda.first().copied().unwrap_or(1.0);
                        if delta[0] * uni > 0.0 {
                            lambda * uni
                        } else {
                            0.0
                        }
                    }
                };
                res.push(b + s.alpha * d);
            }
            encode(plan.base.dtype, &res, &mut out);
        }
        Ok(out)
    }

    /// Reads `len` entries from `first` of the reference and every (aligned) task tensor.
    fn read_chunk(
        &self,
        plan: &Plan,
        first: usize,
        len: usize,
        bufs: &mut ChunkBufs,
    ) -> Result<(), MergeError> {
        bufs.base.resize(len, 0.0);
        self.base
            .read_f64(&plan.base, first, &mut bufs.base, &mut bufs.scratch)?;
        let tasks = plan.tasks.as_deref().unwrap_or(&[]);
        for (i, (te, align)) in tasks.iter().enumerate() {
            bufs.tasks[i].resize(len, 0.0);
            self.read_task(i, te, *align, first, &mut bufs.tasks[i], &mut bufs.scratch)?;
        }
        Ok(())
    }

    /// Entries `first..first + out.len()` of task tensor `te` seen in the reference's shape.
    fn read_task(
        &self,
        i: usize,
        te: &Entry,
        align: Option<Align>,
        first: usize,
        out: &mut [f64],
        scratch: &mut Vec<u8>,
    ) -> Result<(), MergeError> {
        let ck = &self.tasks[i];
        let Some(a) = align else {
            return ck.read_f64(te, first, out, scratch);
        };
        let stored = a.src_rows * a.row_len;
        let end = first + out.len();
        let direct_end = end.min(stored).max(first);
        if direct_end > first {
            ck.read_f64(te, first, &mut out[..direct_end - first], scratch)?;
        }
        if direct_end < end {
            let mut last_row = vec![0.0; a.row_len];
            ck.read_f64(te, (a.src_rows - 1) * a.row_len, &mut last_row, scratch)?;
            for e in direct_end..end {
                out[e - first] = last_row[e % a.row_len];
            }
        }
        Ok(())
    }

    /// Calls `f(first, base, tasks)` for every chunk of a merged tensor.
    fn for_chunks(
        &self,
        plan: &Plan,
        mut f: impl FnMut(usize, &[f64], &[Vec<f64>]),
    ) -> Result<(), MergeError> {
        let n = plan.base.numel();
        let k = plan.tasks.as_ref().map_or(0, Vec::len);
        let mut bufs = ChunkBufs::new(k);
        for first in (0..n).step_by(CHUNK) {
            let len = CHUNK.min(n - first);
            self.read_chunk(plan, first, len, &mut bufs)?;
            f(first, &bufs.base, &bufs.tasks);
        }
        Ok(())
    }

    /// TIES: the magnitude threshold of task `i`'s τ in this tensor.
    fn ties_threshold(&self, name: &str, plan: &Plan, i: usize) -> Result<TieKeep, MergeError> {
        let n = plan.base.numel();
        let d = self.spec.density;
        if d >= 1.0 {
            return Ok(TieKeep::All);
        }
        let k = (d * n as f64).floor() as usize;
        if k == 0 {
            tracing::debug!("{name}: density {d} keeps no entry of {n}");
            return Ok(TieKeep::None);
        }
        let (threshold, allowance) = select::kth_largest(k, |visit| {
            self.for_chunks(plan, |_, base, tasks| {
                for (x, b) in tasks[i].iter().zip(base) {
                    visit((x - b).abs().to_bits());
                }
            })
        })?;
        Ok(TieKeep::Above {
            threshold: f64::from_bits(threshold),
            allowance,
        })
    }

    /// DARE: the factor applied to task `i`'s kept entries in this tensor.
    fn dare_scale(&self, name: &str, plan: &Plan, i: usize) -> Result<f64, MergeError> {
        let s = self.spec;
        if s.density >= 1.0 {
            return Ok(1.0);
        }
        match s.rescale {
            DareRescale::InvDensity => Ok(1.0 / s.density),
            DareRescale::L1 => {
                let key = name_key(name, s.seed);
                let (mut before, mut after) = (0.0f64, 0.0f64);
                self.for_chunks(plan, |first, base, tasks| {
                    for (j, (x, b)) in tasks[i].iter().zip(base).enumerate() {
                        let a = (x - b).abs();
                        before += a;
                        if dare_keep(key, i, (first + j) as u64, s.density) {
                            after += a;
                        }
                    }
                })?;
                Ok(if before < 1e-7 || after < 1e-7 {
                    1.0
                } else {
                    before / after
                })
            }
        }
    }

    /// EMR's λ_i = Σ_tensors mean|τ_i| / Σ_tensors mean|M_i⊙τ_uni| (1 when the denominator
    /// is 0: nothing survives the mask).
    fn emr_lambdas(&self) -> Result<Vec<f64>, MergeError> {
        let k = self.tasks.len();
        let mut num = vec![0.0f64; k];
        let mut den = vec![0.0f64; k];
        let mut delta = vec![0.0f64; k];
        for plan in self.plans.values() {
            if plan.tasks.is_none() {
                continue;
            }
            let n = plan.base.numel().max(1) as f64;
            let mut t_num = vec![0.0f64; k];
            let mut t_den = vec![0.0f64; k];
            self.for_chunks(plan, |_, base, tasks| {
                for (j, b) in base.iter().enumerate() {
                    for (i, d) in delta.iter_mut().enumerate() {
                        *d = tasks[i][j] - b;
                    }
                    let (_, uni) = emr_unified(&delta);
                    for i in 0..k {
                        t_num[i] += delta[i].abs();
                        if delta[i] * uni > 0.0 {
                            t_den[i] += uni.abs();
                        }
                    }
                }
            })?;
            for i in 0..k {
                num[i] += t_num[i] / n;
                den[i] += t_den[i] / n;
            }
        }
        Ok(num
            .iter()
            .zip(&den)
            .map(|(a, b)| if *b > 0.0 { a / b } else { 1.0 })
            .collect())
    }
}

/// Reused buffers of one chunk.
struct ChunkBufs {
    base: Vec<f64>,
    tasks: Vec<Vec<f64>>,
    scratch: Vec<u8>,
}

impl ChunkBufs {
    fn new(k: usize) -> ChunkBufs {
        ChunkBufs {
            base: Vec::new(),
            tasks: vec![Vec::new(); k],
            scratch: Vec::new(),
        }
    }
}

/// Which entries TIES keeps of one task vector in one tensor.
#[derive(Debug, Clone, Copy)]
enum TieKeep {
    All,
    None,
    /// |τ| > threshold, plus the first `allowance` entries equal to it (in storage order).
    Above {
        threshold: f64,
        allowance: usize,
    },
}

impl TieKeep {
    fn allowance(&self) -> usize {
        match self {
            TieKeep::Above { allowance, .. } => *allowance,
            _ => 0,
        }
    }

    /// Whether entry τ is kept; entries must be visited in storage order.
    fn keeps(&self, tau: f64, left: &mut usize) -> bool {
        match *self {
            TieKeep::All => true,
            TieKeep::None => false,
            TieKeep::Above { threshold, .. } => {
                let a = tau.abs();
                if a > threshold {
                    true
                } else if a == threshold && *left > 0 {
                    *left -= 1;
                    true
                } else {
                    false
                }
            }
        }
    }
}

/// TIES' sign election and disjoint merge of (already sparsified, unit-weight) deltas:
/// s = +1 when Σ ≥ 0 else −1; the entries whose sign equals s are summed, and averaged over
/// their count when `mean` (TIES) — a zero has no sign and never agrees.
fn disjoint(delta: &[f64], mean: bool) -> f64 {
    let total: f64 = delta.iter().sum();
    let s = if total >= 0.0 { 1.0 } else { -1.0 };
    let (mut sum, mut count) = (0.0, 0usize);
    for &d in delta {
        if d != 0.0 && d.signum() == s {
            sum += d;
            count += 1;
        }
    }
    if mean && count > 0 {
        sum / count as f64
    } else {
        sum
    }
}

/// EMR's elected sign γ (+1 when Σ τ > 0, else −1) and unified entry γ·max agreeing |τ|.
fn emr_unified(delta: &[f64]) -> (f64, f64) {
    let gamma = if delta.iter().sum::<f64>() > 0.0 {
        1.0
    } else {
        -1.0
    };
    let eps = delta
        .iter()
        .filter(|&&d| d * gamma > 0.0)
        .fold(0.0f64, |m, d| m.max(d.abs()));
    (gamma, gamma * eps)
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's finaliser: a bijective 64-bit mix.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The DARE stream key of a tensor for a seed.
fn name_key(name: &str, seed: u64) -> u64 {
    let mut h = Fnv64::new();
    h.write_str("padv-dare-v1").write_str(name);
    mix64(h.finish() ^ mix64(seed.wrapping_mul(GOLDEN)))
}

/// Whether DARE keeps entry `idx` of task `task` (probability `density`).
fn dare_keep(key: u64, task: usize, idx: u64, density: f64) -> bool {
    let task_key = mix64(key ^ (task as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    let u = mix64(task_key.wrapping_add(idx.wrapping_mul(GOLDEN)));
    ((u >> 11) as f64 * (1.0 / (1u64 << 53) as f64)) < density
}

/// A digest of a checkpoint folder's `config.json` and every byte of its weight files, for
/// fingerprints and the provenance note (the same content hash the local engine's cache uses).
pub fn content_digest(dir: &Path) -> Result<String, MergeError> {
    let files =
        crate::checkpoint::weight_files(dir).map_err(|e| MergeError::Input(e.to_string()))?;
    let mut sized = Vec::with_capacity(files.len());
    for f in files {
        let len = std::fs::metadata(&f)
            .map_err(|source| MergeError::Io {
                path: f.clone(),
                source,
            })?
            .len();
        sized.push((f, len));
    }
    let digests =
        crate::checkpoint::file_digests(&sized).map_err(|e| MergeError::Input(e.to_string()))?;
    let mut h = Fnv64::new();
    let config = dir.join("config.json");
    if let Ok(bytes) = std::fs::read(&config) {
        h.write_part(&bytes);
    }
    for d in digests {
        h.write_part(&d.to_le_bytes());
    }
    Ok(h.hex())
}

/// Decodes a whole stored tensor's bytes to f64.
#[cfg(test)]
pub(crate) fn decode_all(dtype: Dtype, bytes: &[u8]) -> Vec<f64> {
    let mut out = vec![0.0; bytes.len() / elem_size(dtype).max(1)];
    decode(dtype, bytes, &mut out);
    out
}

#[cfg(test)]
mod tests;
