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
            num_messages: Some(trajectory.messages.len()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::TokenSpan;
    use padv_core::Message;

    /// A backend whose log-prob at position t is −(ids[t] + t)/100 (policy) with stats
    /// derived from it, so every value says where it came from.
    struct Fake {
        name: &'static str,
        offset: f32,
        calls: usize,
    }

    impl LogprobBackend for Fake {
        fn fingerprint(&self) -> String {
            self.name.to_string()
        }
        fn vocab_size(&self) -> usize {
            50
        }
        fn score(
            &mut self,
            ids: &[u32],
            targets: &[usize],
            stats: StatsRequest,
        ) -> Result<PositionLogprobs, BackendError> {
            self.calls += 1;
            let lp: Vec<f32> = targets
                .iter()
                .map(|&t| -((ids[t] as f32 + t as f32) / 100.0) - self.offset)
                .collect();
            let s = stats.distribution_stats;
            Ok(PositionLogprobs {
                topk_mean: s.then(|| lp.iter().map(|x| x * 2.0).collect()),
                entropy: s.then(|| lp.iter().map(|x| -x).collect()),
                vocab_mean: s.then(|| lp.iter().map(|x| x - 2.0).collect()),
                logprob: lp,
            })
        }
    }

    fn trajectory() -> Trajectory {
        let m = |role: &str, is_action| Message {
            role: role.into(),
            name: None,
            content: Some("x".into()),
            tool_call_id: None,
            tool_calls: vec![],
            is_action,
        };
        Trajectory {
            id: "t".into(),
            task_id: "k".into(),
            messages: vec![
                m("assistant", true),
                m("user", false),
                m("assistant", true),
                m("assistant", true),
            ],
            reward: Some(1.0),
            mistake_step: Some(2),
            mistake_agent: None,
            ..Default::default()
        }
    }

    fn tokens() -> Tokenized {
        let span = |message_index, start, end, is_action| TokenSpan {
            message_index,
            start,
            end,
            is_action,
        };
        // Message 0's first token (position 0) has no prefix and is not scored; message 3 is
        // empty (as if truncated).
        Tokenized::new(
            vec![10, 11, 12, 13, 14, 15],
            vec![
                span(0, 0, 2, true),
                span(1, 2, 4, false),
                span(2, 4, 6, true),
                span(3, 6, 6, true),
            ],
        )
    }

    #[test]
    fn steps_get_their_own_positions_and_stats() {
        let (mut p, mut r) = (
            Fake {
                name: "p",
                offset: 0.0,
                calls: 0,
            },
            Fake {
                name: "r",
                offset: 0.5,
                calls: 0,
            },
        );
        let out = score_pair(&trajectory(), &tokens(), &mut p, &mut r, None).unwrap();
        let rec = &out.record;
        assert_eq!(out.n_targets, 3);
        assert_eq!(rec.steps.len(), 3);
        // Step 0: only position 1 (id 11): −(11+1)/100 = −0.12; reference −0.62.
        assert_eq!(rec.steps[0].message_index, 0);
        assert_eq!(rec.steps[0].policy, vec![-0.12]);
        assert_eq!(rec.steps[0].reference, Some(vec![-0.62]));
        // Step at message 2: positions 4, 5 → −(14+4)/100, −(15+5)/100.
        assert_eq!(rec.steps[1].message_index, 2);
        assert_eq!(rec.steps[1].policy, vec![-0.18, -0.2]);
        assert_eq!(rec.steps[1].policy_topk_mean, Some(vec![-0.36, -0.4]));
        assert_eq!(rec.steps[1].policy_entropy, Some(vec![0.18, 0.2]));
        // The empty step is kept, with empty arrays (PA scores it 0.0).
        assert_eq!(rec.steps[2].message_index, 3);
        assert!(rec.steps[2].policy.is_empty());
        assert_eq!(rec.steps[2].reference, Some(vec![]));
        assert_eq!(
            (rec.label, rec.mistake_step, rec.vocab_size),
            (Some(1.0), Some(2), Some(50))
        );
        padv_core::record::validate(rec).unwrap();
    }

    #[test]
    fn cache_resumes_without_calling_the_backends() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LogprobCache::open(dir.path()).unwrap();
        let (mut p, mut r) = (
            Fake {
                name: "p",
                offset: 0.0,
                calls: 0,
            },
            Fake {
                name: "r",
                offset: 0.5,
                calls: 0,
            },
        );
        let first = score_pair(&trajectory(), &tokens(), &mut p, &mut r, Some(&cache)).unwrap();
        assert_eq!((first.cache_hits, p.calls, r.calls), (0, 1, 1));
        let again = score_pair(&trajectory(), &tokens(), &mut p, &mut r, Some(&cache)).unwrap();
        assert_eq!((again.cache_hits, p.calls, r.calls), (2, 1, 1));
        assert_eq!(first.record, again.record);
        // A different reference recomputes only the reference.
        let mut r2 = Fake {
            name: "r2",
            offset: 1.0,
            calls: 0,
        };
        let third = score_pair(&trajectory(), &tokens(), &mut p, &mut r2, Some(&cache)).unwrap();
        assert_eq!((third.cache_hits, p.calls, r2.calls), (1, 1, 1));
        assert_eq!(third.record.steps[0].reference, Some(vec![-1.12]));
    }
}
