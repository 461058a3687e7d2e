//! What one trajectory asks of a backend (targets per segment, the cache key over all of
//! them), and the checks on what comes back: shape, then finiteness.

use padv_core::record::cache::CacheKey;
use padv_core::{PositionLogprobs, StatsRequest};

use crate::tokenize::Tokenized;

/// Targets of every segment of one tokenised trajectory, and where each action's values lie
/// in the concatenation of the segments' results.
pub(crate) struct Plan<'a> {
    pub tokens: &'a Tokenized,
    /// Ascending targets of segment `k`.
    pub targets: Vec<Vec<usize>>,
    /// Per action, in message order: `(message_index, from, to)` into the concatenated values.
    pub bounds: Vec<(usize, usize, usize)>,
    /// Total targets.
    pub n_targets: usize,
}

impl<'a> Plan<'a> {
    pub fn new(tokens: &'a Tokenized) -> Self {
        let mut targets = Vec::with_capacity(tokens.segments.len());
        let mut bounds = Vec::new();
        let mut n = 0;
        for seg in &tokens.segments {
            let mut seg_targets = Vec::new();
            for span in seg.spans.iter().filter(|s| s.is_action) {
                let from = n + seg_targets.len();
                seg_targets.extend(seg.action_targets(span));
                bounds.push((span.message_index, from, n + seg_targets.len()));
            }
            n += seg_targets.len();
            targets.push(seg_targets);
        }
        Plan {
            tokens,
            targets,
            bounds,
            n_targets: n,
        }
    }

    /// The message whose action token is target `position` of segment `segment`.
    pub fn message_of(&self, segment: usize, position: usize) -> Option<usize> {
        let seg = self.tokens.segments.get(segment)?;
        seg.spans
            .iter()
            .filter(|s| s.is_action)
            .find(|s| seg.action_targets(s).contains(&position))
            .map(|s| s.message_index)
    }

    /// The cache key of this trajectory for `fingerprint`. One sequence keeps the key it
    /// always had; several segments hash every segment's ids and targets, with the segment
    /// lengths in the fingerprint part so that no two segmentations of the same ids collide.
    pub fn cache_key(&self, fingerprint: &str, stats: StatsRequest) -> CacheKey {
        if let ([seg], [targets]) = (self.tokens.segments.as_slice(), self.targets.as_slice()) {
            return CacheKey::new(fingerprint, &seg.ids, targets, stats);
        }
        let lens: Vec<String> = self
            .tokens
            .segments
            .iter()
            .map(|s| s.ids.len().to_string())
            .collect();
        let mut ids = Vec::with_capacity(self.tokens.total_tokens());
        let mut targets = Vec::with_capacity(self.n_targets);
        for (seg, seg_targets) in self.tokens.segments.iter().zip(&self.targets) {
            let base = ids.len();
            ids.extend_from_slice(&seg.ids);
            targets.extend(seg_targets.iter().map(|t| base + t));
        }
        let fp = format!("{fingerprint};segments={}", lens.join(","));
        CacheKey::new(&fp, &ids, &targets, stats)
    }
}

/// An empty result with the arrays `stats` asks for.
pub(crate) fn empty_output(stats: StatsRequest) -> PositionLogprobs {
    PositionLogprobs::with_capacity(0, stats)
}

/// Appends `part` to `acc` (arrays present in both are concatenated; an array missing from
/// either is missing from the result).
pub(crate) fn append(acc: &mut PositionLogprobs, part: PositionLogprobs) {
    fn join(a: &mut Option<Vec<f32>>, b: Option<Vec<f32>>) {
        match (a.as_mut(), b) {
            (Some(x), Some(y)) => x.extend(y),
            _ => *a = None,
        }
    }
    acc.logprob.extend(part.logprob);
    join(&mut acc.topk_mean, part.topk_mean);
    join(&mut acc.entropy, part.entropy);
    join(&mut acc.vocab_mean, part.vocab_mean);
}

/// Every present array must have one value per target; `Err(len)` names a wrong length.
pub(crate) fn check_shape(p: &PositionLogprobs, n: usize) -> Result<(), usize> {
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

/// The first non-finite value of a shape-checked result: `(field, index k, value)`, where `k`
/// indexes the targets.
pub(crate) fn first_non_finite(p: &PositionLogprobs) -> Option<(&'static str, usize, f32)> {
    [
        ("logprob", Some(&p.logprob)),
        ("topk_mean", p.topk_mean.as_ref()),
        ("entropy", p.entropy.as_ref()),
        ("vocab_mean", p.vocab_mean.as_ref()),
    ]
    .into_iter()
    .find_map(|(field, v)| {
        let v = v?;
        v.iter()
            .position(|x| !x.is_finite())
            .map(|k| (field, k, v[k]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::{RenderMode, Segment, TokenSpan};

    fn span(message_index: usize, start: usize, end: usize) -> TokenSpan {
        TokenSpan {
            message_index,
            start,
            end,
            is_action: true,
        }
    }

    fn segmented(ids: [Vec<u32>; 2]) -> Tokenized {
        let [a, b] = ids;
        Tokenized::from_segments(
            vec![
                Segment::new(a, vec![span(0, 1, 2)]),
                Segment::new(b, vec![span(2, 1, 3)]),
            ],
            RenderMode::PerTurn,
        )
    }

    #[test]
    fn segment_targets_concatenate_in_message_order() {
        let t = segmented([vec![5, 6], vec![7, 8, 9]]);
        let plan = Plan::new(&t);
        assert_eq!(plan.targets, vec![vec![1], vec![1, 2]]);
        assert_eq!(plan.bounds, vec![(0, 0, 1), (2, 1, 3)]);
        assert_eq!(plan.n_targets, 3);
    }

    #[test]
    fn cache_key_covers_every_segment_and_the_split() {
        let stats = StatsRequest::default();
        let key = |t: &Tokenized| Plan::new(t).cache_key("fp", stats);
        let base = segmented([vec![5, 6], vec![7, 8, 9]]);
        assert_ne!(key(&base), key(&segmented([vec![5, 6], vec![7, 8, 1]])));
        assert_ne!(key(&base), key(&segmented([vec![4, 6], vec![7, 8, 9]])));
        // Same concatenated ids, split differently.
        assert_ne!(key(&base), key(&segmented([vec![5, 6, 7], vec![8, 9]])));
        // Different targets in the same ids.
        let mut other = base.clone();
        other.segments[1].spans[0].start = 2;
        assert_ne!(key(&base), key(&other));
        // One sequence keeps the plain key.
        let single = Tokenized::new(vec![5, 6, 7], vec![span(0, 1, 3)]);
        assert_eq!(
            key(&single),
            CacheKey::new("fp", &[5, 6, 7], &[1, 2], stats)
        );
    }

    #[test]
    fn non_finite_values_are_found_in_any_array() {
        let mut p = PositionLogprobs {
            logprob: vec![-1.0, -2.0],
            topk_mean: Some(vec![-1.0, -1.0]),
            entropy: Some(vec![0.5, f32::INFINITY]),
            vocab_mean: Some(vec![-9.0, -9.0]),
        };
        assert_eq!(
            first_non_finite(&p).map(|(f, k, _)| (f, k)),
            Some(("entropy", 1))
        );
        p.logprob[0] = f32::NAN;
        assert_eq!(
            first_non_finite(&p).map(|(f, k, _)| (f, k)),
            Some(("logprob", 0))
        );
        p.logprob[0] = f32::NEG_INFINITY;
        p.entropy = None;
        assert_eq!(
            first_non_finite(&p).map(|(f, k, _)| (f, k)),
            Some(("logprob", 0))
        );
        p.logprob[0] = -1.0;
        assert_eq!(first_non_finite(&p), None);
    }
}
