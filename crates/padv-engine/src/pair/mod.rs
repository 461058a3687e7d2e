//! Scoring a policy/reference pair over a tokenised trajectory: the step that turns token ids
//! and action spans into a [`LogprobRecord`].
//!
//! Backend-agnostic: it drives any two [`LogprobBackend`]s (the local decoder, a remote
//! server, a test double) and consults a [`LogprobCache`] so an interrupted job resumes
//! without recomputing finished trajectories.

use padv_core::record::cache::{CacheKey, LogprobCache};
use padv_core::{
    BackendError, LogprobBackend, LogprobRecord, PositionLogprobs, StatsRequest, StepLogprobs,
    Trajectory,
};

use crate::tokenize::Tokenized;

/// Why a pair could not score a trajectory.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    /// A backend failed.
    #[error("trajectory {id:?}: {which} model: {source}")]
    Backend {
        /// Trajectory id.
        id: String,
        /// "policy" or "reference".
        which: &'static str,
        /// Cause.
        source: BackendError,
    },
    /// A backend returned a result of the wrong shape.
    #[error("trajectory {id:?}: {which} model returned {got} values for {want} targets")]
    Shape {
        /// Trajectory id.
        id: String,
        /// "policy" or "reference".
        which: &'static str,
        /// Values returned.
        got: usize,
        /// Targets requested.
        want: usize,
    },
    /// The cache folder could not be written.
    #[error("cache {path}: {source}")]
    Cache {
        /// Cache folder.
        path: std::path::PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// What scoring one trajectory produced.
#[derive(Debug, Clone)]
pub struct PairOutput {
    /// The log-prob record.
    pub record: LogprobRecord,
    /// Tokens in the (possibly truncated) sequence.
    pub n_tokens: usize,
    /// Action tokens scored.
    pub n_targets: usize,
    /// How many of the two models' results came from the cache (0, 1 or 2).
    pub cache_hits: usize,
}

/// Score `trajectory` (already tokenised as `tokens`) with both models.
///
/// The policy is asked for the distribution statistics of the log-prob record (top-20 mean,
/// entropy, vocabulary mean); the reference only for target log-probs, which is all PA needs.
pub fn score_pair(
    trajectory: &Trajectory,
    tokens: &Tokenized,
    policy: &mut dyn LogprobBackend,
    reference: &mut dyn LogprobBackend,
    cache: Option<&LogprobCache>,
) -> Result<PairOutput, PairError> {
    let action_spans: Vec<_> = tokens.spans.iter().filter(|s| s.is_action).collect();
    let mut targets = Vec::new();
    let mut bounds = Vec::with_capacity(action_spans.len());
    for span in &action_spans {
        let from = targets.len();
        targets.extend(tokens.action_targets(span));
        bounds.push((span.message_index, from, targets.len()));
    }
    let mut hits = 0;
    let mut run = |backend: &mut dyn LogprobBackend,
                   which: &'static str,
                   stats: StatsRequest|
     -> Result<PositionLogprobs, PairError> {
        let key = CacheKey::new(&backend.fingerprint(), &tokens.ids, &targets, stats);
        if let Some(hit) = cache.and_then(|c| c.get(key, targets.len())) {
            hits += 1;
            return Ok(hit);
        }
        let out = if targets.is_empty() {
            PositionLogprobs {
                logprob: Vec::new(),
                topk_mean: stats.distribution_stats.then(Vec::new),
                entropy: stats.distribution_stats.then(Vec::new),
                vocab_mean: stats.distribution_stats.then(Vec::new),
            }
        } else {
            backend
                .score(&tokens.ids, &targets, stats)
                .map_err(|source| PairError::Backend {
                    id: trajectory.id.clone(),
                    which,
                    source,
                })?
        };
        check_shape(&out, targets.len()).map_err(|got| PairError::Shape {
            id: trajectory.id.clone(),
            which,
            got,
            want: targets.len(),
        })?;
        if let Some(c) = cache {
            c.put(key, &out).map_err(|source| PairError::Cache {
                path: c.dir().to_path_buf(),
                source,
            })?;
        }
        Ok(out)
    };
    let pol = run(
        policy,
        "policy",
        StatsRequest {
            distribution_stats: true,
        },
    )?;
    let refr = run(reference, "reference", StatsRequest::default())?;

    let slice = |v: &Option<Vec<f32>>, a: usize, b: usize| v.as_ref().map(|x| x[a..b].to_vec());
    let steps = bounds
        .iter()
        .map(|&(message_index, a, b)| StepLogprobs {
            message_index,
            policy: pol.logprob[a..b].to_vec(),
            reference: Some(refr.logprob[a..b].to_vec()),
            policy_topk_mean: slice(&pol.topk_mean, a, b),
            policy_entropy: slice(&pol.entropy, a, b),
            policy_vocab_mean: slice(&pol.vocab_mean, a, b),
        })
        .collect();
    Ok(PairOutput {
        record: LogprobRecord {
            id: trajectory.id.clone(),
            task_id: trajectory.task_id.clone(),
            label: trajectory.reward,
            mistake_step: trajectory.mistake_step,
            vocab_size: Some(policy.vocab_size()),
            steps,
        },
        n_tokens: tokens.ids.len(),
        n_targets: targets.len(),
        cache_hits: hits,
    })
}

/// Every present array must have one value per target.
fn check_shape(p: &PositionLogprobs, n: usize) -> Result<(), usize> {
    for len in [
        Some(p.logprob.len()),
        p.topk_mean.as_ref().map(Vec::len),
        p.entropy.as_ref().map(Vec::len),
        p.vocab_mean.as_ref().map(Vec::len),
    ]
    .into_iter()
    .flatten()
    {
        if len != n {
            return Err(len);
        }
    }
    Ok(())
}
