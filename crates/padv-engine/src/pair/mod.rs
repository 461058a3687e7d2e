//! Scoring a policy/reference pair over tokenised trajectories: the step that turns token
//! ids and action spans into [`LogprobRecord`]s.
//!
//! Backend-agnostic: it drives any two [`LogprobBackend`]s (the local decoder, a remote
//! server, a test double) and consults a [`LogprobCache`] so an interrupted job resumes
//! without recomputing finished trajectories. [`score_pairs`] sends every uncached segment
//! of a whole batch to each model in one [`LogprobBackend::score_batch`] call, so a remote
//! backend can run them concurrently and the local engine can share token prefixes across
//! turns and rollouts.

mod plan;

use padv_core::record::cache::{CacheKey, LogprobCache, Lookup};
use padv_core::{
    BackendError, LogprobBackend, LogprobRecord, PositionLogprobs, ScoreRequest, StatsRequest,
    StepLogprobs, Trajectory,
};

use crate::tokenize::Tokenized;
use plan::{append, check_shape, empty_output, first_non_finite, Plan};

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
    /// A backend returned NaN or an infinity: refused here, where it enters, because a
    /// record holding one cannot be written as JSON nor evaluated.
    #[error(
        "trajectory {id:?}: {which} model returned {value} as {field} at token {position} of \
         segment {segment}{}",
        message_index.map(|m| format!(" (message {m})")).unwrap_or_default()
    )]
    NonFinite {
        /// Trajectory id.
        id: String,
        /// "policy" or "reference".
        which: &'static str,
        /// Index of the message whose action token it is.
        message_index: Option<usize>,
        /// `logprob`, `topk_mean`, `entropy` or `vocab_mean`.
        field: &'static str,
        /// Segment of the tokenised trajectory (0 for a single sequence).
        segment: usize,
        /// Token index in that segment's ids (the target position).
        position: usize,
        /// The value.
        value: f32,
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

impl PairError {
    /// The message without the trajectory's id, so that one cause met by many trajectories
    /// (a server down, a model refusing a token) reads the same for each and is counted once.
    pub fn cause(&self) -> String {
        let full = self.to_string();
        match self {
            PairError::Backend { id, .. }
            | PairError::Shape { id, .. }
            | PairError::NonFinite { id, .. } => full
                .strip_prefix(&format!("trajectory {id:?}: "))
                .map(str::to_string)
                .unwrap_or(full),
            PairError::Cache { .. } => full,
        }
    }
}

/// What scoring one trajectory produced.
#[derive(Debug, Clone)]
pub struct PairOutput {
    /// The log-prob record.
    pub record: LogprobRecord,
    /// Tokens in the (possibly truncated) sequences, summed over segments.
    pub n_tokens: usize,
    /// Action tokens scored.
    pub n_targets: usize,
    /// How many of the two models' results came from the cache (0, 1 or 2).
    pub cache_hits: usize,
    /// How many of the two models' cache entries failed verification (checksum, length) and
    /// were re-scored (0, 1 or 2).
    pub cache_corrupt: usize,
}

/// Score `trajectory` (already tokenised as `tokens`) with both models: [`score_pairs`] for
/// one item.
pub fn score_pair(
    trajectory: &Trajectory,
    tokens: &Tokenized,
    policy: &dyn LogprobBackend,
    reference: &dyn LogprobBackend,
    cache: Option<&LogprobCache>,
) -> Result<PairOutput, PairError> {
    score_pairs(&[(trajectory, tokens)], policy, reference, cache)
        .pop()
        .unwrap_or_else(|| unreachable!("score_pairs answers every item"))
}

/// Scores many trajectories with both models; entry `i` answers `items[i]`, and each fails
/// or succeeds on its own.
///
/// Per model, cached results are looked up first (one entry per trajectory, keyed on every
/// segment's ids and targets); every segment of every uncached trajectory then goes to the
/// backend in ONE [`LogprobBackend::score_batch`] call. The reference is asked only for the
/// trajectories the policy scored. A trajectory is cached only when both models gave it
/// complete, finite results; any NaN or infinity in any returned array fails it with
/// [`PairError::NonFinite`].
///
/// The policy is asked for the distribution statistics of the log-prob record (top-20 mean,
/// entropy, vocabulary mean); the reference only for target log-probs, which is all PA needs.
pub fn score_pairs(
    items: &[(&Trajectory, &Tokenized)],
    policy: &dyn LogprobBackend,
    reference: &dyn LogprobBackend,
    cache: Option<&LogprobCache>,
) -> Vec<Result<PairOutput, PairError>> {
    let plans: Vec<Plan> = items.iter().map(|(_, tokens)| Plan::new(tokens)).collect();
    let ids: Vec<&str> = items.iter().map(|(t, _)| t.id.as_str()).collect();
    let all = vec![true; items.len()];
    let with_stats = StatsRequest {
        distribution_stats: true,
    };
    let pol = run_model(policy, "policy", with_stats, &plans, &ids, &all, cache);
    let wanted: Vec<bool> = pol.iter().map(Result::is_ok).collect();
    let refr = run_model(
        reference,
        "reference",
        StatsRequest::default(),
        &plans,
        &ids,
        &wanted,
        cache,
    );
    let vocab_size = policy.vocab_size();
    pol.into_iter()
        .zip(refr)
        .zip(items.iter().zip(&plans))
        .map(|((p, r), ((trajectory, tokens), plan))| {
            let (p, r) = (p?, r?);
            if let Some(c) = cache {
                for (key, hit, out) in [(p.key, p.hit, &p.out), (r.key, r.hit, &r.out)] {
                    if !hit {
                        c.put(key, out).map_err(|source| PairError::Cache {
                            path: c.dir().to_path_buf(),
                            source,
                        })?;
                    }
                }
            }
            Ok(PairOutput {
                record: record(trajectory, plan, &p.out, &r.out, vocab_size),
                n_tokens: tokens.total_tokens(),
                n_targets: plan.n_targets,
                cache_hits: usize::from(p.hit) + usize::from(r.hit),
                cache_corrupt: usize::from(p.corrupt) + usize::from(r.corrupt),
            })
        })
        .collect()
}

/// One model's checked result for one trajectory, over all its segments.
struct ModelOutput {
    out: PositionLogprobs,
    key: CacheKey,
    hit: bool,
    /// The cache held an entry that failed verification (re-scored).
    corrupt: bool,
}

/// Looks up the cache and scores every missing segment of the `wanted` plans in one batch.
fn run_model(
    backend: &dyn LogprobBackend,
    which: &'static str,
    stats: StatsRequest,
    plans: &[Plan],
    ids: &[&str],
    wanted: &[bool],
    cache: Option<&LogprobCache>,
) -> Vec<Result<ModelOutput, PairError>> {
    let fingerprint = backend.fingerprint();
    let keys: Vec<CacheKey> = plans
        .iter()
        .map(|p| p.cache_key(&fingerprint, stats))
        .collect();
    let lookups: Vec<Lookup> = plans
        .iter()
        .zip(&keys)
        .zip(wanted)
        .map(|((p, &key), &w)| match cache {
            Some(c) if w => c.get(key, p.n_targets),
            _ => Lookup::Miss,
        })
        .collect();
    let corrupt: Vec<bool> = lookups
        .iter()
        .map(|l| matches!(l, Lookup::Corrupt(_)))
        .collect();
    let mut hits: Vec<Option<PositionLogprobs>> = lookups
        .into_iter()
        .map(|l| match l {
            Lookup::Hit(v) => Some(v),
            _ => None,
        })
        .collect();
    // A batch is scored whole or not at all. The local engine shares prefixes between the
    // sequences of one batch, and a value computed from a shared prefix's KV cache can differ
    // from a full pass in the last bits; so if some wanted item of this batch is missing from
    // the cache (a run killed while writing the batch), the whole batch is scored again as it
    // was the first time, and a resumed run equals an uninterrupted one byte for byte.
    if (0..plans.len()).any(|i| wanted[i] && hits[i].is_none()) {
        hits.iter_mut().for_each(|h| *h = None);
    }
    // (item, segment) of each request, in request order.
    let mut owners = Vec::new();
    let mut requests = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        if !wanted[i] || hits[i].is_some() {
            continue;
        }
        for (k, (seg, targets)) in plan.tokens.segments.iter().zip(&plan.targets).enumerate() {
            if !targets.is_empty() {
                owners.push((i, k));
                requests.push(ScoreRequest {
                    ids: &seg.ids,
                    targets,
                });
            }
        }
    }
    let mut answers = if requests.is_empty() {
        Vec::new()
    } else {
        backend.score_batch(&requests, stats)
    };
    answers.resize_with(requests.len(), || {
        Err(BackendError::Failed(
            "the backend answered fewer requests than it was sent".into(),
        ))
    });
    let mut per_item: Vec<Vec<Option<Result<PositionLogprobs, BackendError>>>> = plans
        .iter()
        .map(|p| (0..p.targets.len()).map(|_| None).collect())
        .collect();
    for ((i, k), a) in owners.into_iter().zip(answers) {
        per_item[i][k] = Some(a);
    }
    plans
        .iter()
        .enumerate()
        .map(|(i, plan)| {
            let id = ids[i];
            let (out, hit) = match hits[i].take() {
                Some(h) => (h, true),
                None => {
                    let mut acc = empty_output(stats);
                    for (k, answer) in per_item[i].iter_mut().enumerate() {
                        let want = plan.targets[k].len();
                        let part = match answer.take() {
                            None => empty_output(stats),
                            Some(Err(BackendError::NonFinite {
                                field,
                                position,
                                value,
                                ..
                            })) => {
                                return Err(PairError::NonFinite {
                                    id: id.to_string(),
                                    which,
                                    message_index: plan.message_of(k, position),
                                    field,
                                    segment: k,
                                    position,
                                    value,
                                })
                            }
                            Some(Err(source)) => {
                                return Err(PairError::Backend {
                                    id: id.to_string(),
                                    which,
                                    source,
                                })
                            }
                            Some(Ok(part)) => part,
                        };
                        check_segment(&part, want, k, plan, id, which)?;
                        append(&mut acc, part);
                    }
                    (acc, false)
                }
            };
            check_whole(&out, plan, id, which)?;
            Ok(ModelOutput {
                out,
                key: keys[i],
                hit,
                corrupt: corrupt[i],
            })
        })
        .collect()
}

/// Shape and finiteness of one model's values for a whole trajectory (a cached entry cannot
/// hold a non-finite value, JSON has none, but a caller's own values can: say where).
fn check_whole(
    out: &PositionLogprobs,
    plan: &Plan,
    id: &str,
    which: &'static str,
) -> Result<(), PairError> {
    check_shape(out, plan.n_targets).map_err(|got| PairError::Shape {
        id: id.to_string(),
        which,
        got,
        want: plan.n_targets,
    })?;
    if let Some((field, at, value)) = first_non_finite(out) {
        let (segment, position) = locate(plan, at);
        return Err(PairError::NonFinite {
            id: id.to_string(),
            which,
            message_index: plan.message_of(segment, position),
            field,
            segment,
            position,
            value,
        });
    }
    Ok(())
}

/// The record of `trajectory` from values a caller computed itself: `policy` (with the
/// distribution statistics) and `reference` hold one value per action target of `tokens`,
/// segment by segment in ascending target order — exactly what [`score_pairs`] asks the
/// backends for. Shape and finiteness are checked as there.
///
/// This is how `padv serve`'s sessions, which continue from KV caches instead of calling a
/// backend, build their records with the same code as `padv score`.
pub fn build_record(
    trajectory: &Trajectory,
    tokens: &Tokenized,
    policy: &PositionLogprobs,
    reference: &PositionLogprobs,
    vocab_size: usize,
) -> Result<LogprobRecord, PairError> {
    let plan = Plan::new(tokens);
    check_whole(policy, &plan, &trajectory.id, "policy")?;
    check_whole(reference, &plan, &trajectory.id, "reference")?;
    if [&policy.topk_mean, &policy.entropy, &policy.vocab_mean]
        .iter()
        .any(|a| a.is_none())
    {
        return Err(PairError::Backend {
            id: trajectory.id.clone(),
            which: "policy",
            source: BackendError::Failed("no distribution statistics were computed".into()),
        });
    }
    Ok(record(trajectory, &plan, policy, reference, vocab_size))
}

/// Shape and finiteness of one segment's answer.
fn check_segment(
    part: &PositionLogprobs,
    want: usize,
    segment: usize,
    plan: &Plan,
    id: &str,
    which: &'static str,
) -> Result<(), PairError> {
    let targets = &plan.targets[segment];
    check_shape(part, want).map_err(|got| PairError::Shape {
        id: id.to_string(),
        which,
        got,
        want,
    })?;
    if let Some((field, k, value)) = first_non_finite(part) {
        return Err(PairError::NonFinite {
            id: id.to_string(),
            which,
            message_index: plan.message_of(segment, targets[k]),
            field,
            segment,
            position: targets[k],
            value,
        });
    }
    Ok(())
}

/// Segment and token position of concatenated target `at`.
fn locate(plan: &Plan, mut at: usize) -> (usize, usize) {
    for (k, targets) in plan.targets.iter().enumerate() {
        if at < targets.len() {
            return (k, targets[at]);
        }
        at -= targets.len();
    }
    (0, 0)
}

/// The record of one trajectory, steps in message order.
fn record(
    trajectory: &Trajectory,
    plan: &Plan,
    pol: &PositionLogprobs,
    refr: &PositionLogprobs,
    vocab_size: usize,
) -> LogprobRecord {
    let slice = |v: &Option<Vec<f32>>, a: usize, b: usize| v.as_ref().map(|x| x[a..b].to_vec());
    let steps = plan
        .bounds
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
    LogprobRecord {
        id: trajectory.id.clone(),
        task_id: trajectory.task_id.clone(),
        label: trajectory.reward,
        mistake_step: trajectory.mistake_step,
        vocab_size: Some(vocab_size),
        steps,
        num_messages: Some(trajectory.messages.len()),
        judges: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::{RenderMode, Segment, TokenSpan};
    use padv_core::Message;

    /// A backend whose log-prob at position t is −(ids[t] + t)/100 (policy) with stats
    /// derived from it, so every value says where it came from.
    struct Fake {
        name: &'static str,
        offset: f32,
        calls: std::cell::Cell<usize>,
        batches: std::cell::Cell<usize>,
        /// Token id whose log-prob comes back as this value (NaN, ±inf) instead.
        poison: Option<(u32, f32)>,
    }

    fn fake(name: &'static str, offset: f32) -> Fake {
        Fake {
            name,
            offset,
            calls: Default::default(),
            batches: Default::default(),
            poison: None,
        }
    }

    impl LogprobBackend for Fake {
        fn fingerprint(&self) -> String {
            self.name.to_string()
        }
        fn vocab_size(&self) -> usize {
            50
        }
        fn score(
            &self,
            ids: &[u32],
            targets: &[usize],
            stats: StatsRequest,
        ) -> Result<PositionLogprobs, BackendError> {
            self.calls.set(self.calls.get() + 1);
            let lp: Vec<f32> = targets
                .iter()
                .map(|&t| match self.poison {
                    Some((id, v)) if ids[t] == id => v,
                    _ => -((ids[t] as f32 + t as f32) / 100.0) - self.offset,
                })
                .collect();
            let s = stats.distribution_stats;
            Ok(PositionLogprobs {
                topk_mean: s.then(|| lp.iter().map(|x| x * 2.0).collect()),
                entropy: s.then(|| lp.iter().map(|x| -x).collect()),
                vocab_mean: s.then(|| lp.iter().map(|x| x - 2.0).collect()),
                logprob: lp,
            })
        }
        fn score_batch(
            &self,
            requests: &[ScoreRequest<'_>],
            stats: StatsRequest,
        ) -> Vec<Result<PositionLogprobs, BackendError>> {
            self.batches.set(self.batches.get() + 1);
            requests
                .iter()
                .map(|r| self.score(r.ids, r.targets, stats))
                .collect()
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
        let (p, r) = (fake("p", 0.0), fake("r", 0.5));
        let out = score_pair(&trajectory(), &tokens(), &p, &r, None).unwrap();
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
        let (p, r) = (fake("p", 0.0), fake("r", 0.5));
        let first = score_pair(&trajectory(), &tokens(), &p, &r, Some(&cache)).unwrap();
        assert_eq!((first.cache_hits, p.calls.get(), r.calls.get()), (0, 1, 1));
        let again = score_pair(&trajectory(), &tokens(), &p, &r, Some(&cache)).unwrap();
        assert_eq!((again.cache_hits, p.calls.get(), r.calls.get()), (2, 1, 1));
        assert_eq!(first.record, again.record);
        // A different reference recomputes only the reference.
        let r2 = fake("r2", 1.0);
        let third = score_pair(&trajectory(), &tokens(), &p, &r2, Some(&cache)).unwrap();
        assert_eq!((third.cache_hits, p.calls.get(), r2.calls.get()), (1, 1, 1));
        assert_eq!(third.record.steps[0].reference, Some(vec![-1.12]));
    }

    fn segmented() -> Tokenized {
        let span = |message_index, start, end| TokenSpan {
            message_index,
            start,
            end,
            is_action: true,
        };
        // Message 0 in segment [10, 11 | 12]; message 2 in [10, 11, 13, 14 | 15, 16]: the
        // second segment repeats a prefix, as consecutive turns of a rewriting template do.
        Tokenized::from_segments(
            vec![
                Segment::new(vec![10, 11, 12], vec![span(0, 2, 3)]),
                Segment::new(vec![10, 11, 13, 14, 15, 16], vec![span(2, 4, 6)]),
            ],
            RenderMode::PerTurn,
        )
    }

    #[test]
    fn segments_score_in_their_own_sequences_with_one_batch_per_model() {
        let (p, r) = (fake("p", 0.0), fake("r", 0.5));
        let t = trajectory();
        let (a, b) = (segmented(), tokens());
        let outs = score_pairs(&[(&t, &a), (&t, &b)], &p, &r, None);
        assert_eq!((p.batches.get(), r.batches.get()), (1, 1));
        // 2 segments + 1 sequence (its last span is empty but it has other targets).
        assert_eq!((p.calls.get(), r.calls.get()), (3, 3));
        let rec = &outs[0].as_ref().unwrap().record;
        // Segment 0, position 2 (id 12): −(12+2)/100; segment 1, positions 4, 5.
        assert_eq!(rec.steps[0].message_index, 0);
        assert_eq!(rec.steps[0].policy, vec![-0.14]);
        assert_eq!(rec.steps[1].message_index, 2);
        assert_eq!(rec.steps[1].policy, vec![-0.19, -0.21]);
        assert_eq!(rec.steps[1].reference, Some(vec![-0.69, -0.71]));
        assert_eq!(outs[0].as_ref().unwrap().n_tokens, 9);
        // The single-sequence item is what score_pair gives.
        let (p2, r2) = (fake("p", 0.0), fake("r", 0.5));
        let alone = score_pair(&t, &b, &p2, &r2, None).unwrap();
        assert_eq!(outs[1].as_ref().unwrap().record, alone.record);
    }

    #[test]
    fn non_finite_values_fail_the_trajectory_and_are_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LogprobCache::open(dir.path()).unwrap();
        let t = trajectory();
        let (seg, single) = (segmented(), tokens());
        for (which, value) in [("policy", f32::NAN), ("reference", f32::NEG_INFINITY)] {
            let (mut p, mut r) = (fake("p", 0.0), fake("r", 0.5));
            // Token 15 sits at position 4 of segment 1 only.
            let bad = if which == "policy" { &mut p } else { &mut r };
            bad.poison = Some((15, value));
            let outs = score_pairs(&[(&t, &seg), (&t, &single)], &p, &r, Some(&cache));
            match &outs[0] {
                Err(PairError::NonFinite {
                    id,
                    which: w,
                    message_index,
                    field,
                    segment,
                    position,
                    value: v,
                }) => {
                    assert_eq!((id.as_str(), *w, *field), ("t", which, "logprob"));
                    assert_eq!((*segment, *position), (1, 4));
                    assert!(message_index.is_some(), "the message is named");
                    assert_eq!(v.is_nan(), value.is_nan());
                }
                other => panic!("expected NonFinite, got {other:?}"),
            }
            // The other trajectory (where position 5 holds id 15: poisoned too) fails alone;
            // nothing of the failed ones reaches the cache.
            assert!(matches!(outs[1], Err(PairError::NonFinite { .. })));
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        }
        // An infinite entropy is refused as well.
        struct InfEntropy(Fake);
        impl LogprobBackend for InfEntropy {
            fn fingerprint(&self) -> String {
                self.0.fingerprint()
            }
            fn vocab_size(&self) -> usize {
                self.0.vocab_size()
            }
            fn score(
                &self,
                ids: &[u32],
                targets: &[usize],
                stats: StatsRequest,
            ) -> Result<PositionLogprobs, BackendError> {
                let mut out = self.0.score(ids, targets, stats)?;
                if let Some(e) = out.entropy.as_mut() {
                    e[0] = f32::INFINITY;
                }
                Ok(out)
            }
        }
        let (p, r) = (InfEntropy(fake("p", 0.0)), fake("r", 0.5));
        let err = score_pair(&t, &single, &p, &r, None).unwrap_err();
        assert!(
            matches!(
                err,
                PairError::NonFinite {
                    field: "entropy",
                    segment: 0,
                    position: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            r.calls.get(),
            0,
            "the reference is not asked after the policy failed"
        );
    }

    #[test]
    fn segmented_cache_hits_resume() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LogprobCache::open(dir.path()).unwrap();
        let t = trajectory();
        let seg = segmented();
        let (p, r) = (fake("p", 0.0), fake("r", 0.5));
        let first = score_pair(&t, &seg, &p, &r, Some(&cache)).unwrap();
        let again = score_pair(&t, &seg, &p, &r, Some(&cache)).unwrap();
        assert_eq!((again.cache_hits, p.calls.get(), r.calls.get()), (2, 2, 2));
        assert_eq!(first.record, again.record);
    }
}
