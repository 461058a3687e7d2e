//! Token ids of a rendered trajectory with per-message token spans, and left truncation.
//!
//! A trajectory is one token sequence when its rendering never rewrites earlier turns (the
//! paper renderer, most chat templates). A chat template that rewrites history (Qwen3 drops
//! the `<think>` reasoning of assistant turns before the last user query) showed the model a
//! different context at every turn, so each action is scored in its own sequence: a
//! [`Segment`] holding the context of that turn followed by what the model generated.

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// Default `max_length`: the reference implementation's 16,384 tokens.
pub const DEFAULT_MAX_LENGTH: usize = 16_384;

/// The tokens of one message: ids `[start, end)` of its [`Segment::ids`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSpan {
    /// Index of the message in `Trajectory::messages`.
    pub message_index: usize,
    /// First token (inclusive).
    pub start: usize,
    /// One past the last token.
    pub end: usize,
    /// Whether the message is an action step.
    pub is_action: bool,
}

impl TokenSpan {
    /// Number of tokens (0 for a span emptied by truncation).
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// Whether the span holds no token.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How a trajectory was turned into token sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RenderMode {
    /// One sequence for the whole trajectory (the template never rewrites earlier turns).
    #[default]
    Single,
    /// One segment per action: the template's context at that turn
    /// (`render(messages[..i], add_generation_prompt=true)`) then the turn's generated text.
    PerTurn,
}

/// One token sequence a model scores, with the spans of the messages located in it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Segment {
    /// Token ids, after left truncation.
    pub ids: Vec<u32>,
    /// Spans in message order. In [`RenderMode::Single`], one per message; in
    /// [`RenderMode::PerTurn`], only the segment's action (earlier messages are its context).
    pub spans: Vec<TokenSpan>,
    /// How many tokens left truncation dropped from the front of this segment (0 if none).
    pub truncated_tokens: usize,
}

impl Segment {
    /// An untruncated segment.
    pub fn new(ids: Vec<u32>, spans: Vec<TokenSpan>) -> Self {
        Segment {
            ids,
            spans,
            truncated_tokens: 0,
        }
    }

    /// The positions whose log-probs score `span`: `max(start, 1)..end`. Position 0 has no
    /// prefix, so it is never a target. Always a valid (possibly empty) range.
    pub fn action_targets(&self, span: &TokenSpan) -> Range<usize> {
        let start = span.start.max(1);
        start..span.end.max(start)
    }

    /// Every action target of this segment, ascending.
    pub fn targets(&self) -> Vec<usize> {
        self.spans
            .iter()
            .filter(|s| s.is_action)
            .flat_map(|s| self.action_targets(s))
            .collect()
    }

    /// Keeps the last `max_length` ids, as the reference does: with
    /// `excess = len - max_length`, each span `(s, e)` becomes
    /// `(max(0, s - excess), max(0, e - excess))`. Returns how many action spans lost all
    /// their tokens (cut) and how many lost some (clipped).
    fn truncate_left(&mut self, max_length: usize) -> (usize, usize) {
        if self.ids.len() <= max_length {
            return (0, 0);
        }
        let excess = self.ids.len() - max_length;
        self.ids.drain(..excess);
        self.truncated_tokens += excess;
        let (mut cut, mut clipped) = (0, 0);
        for span in &mut self.spans {
            let before = span.len();
            span.start = span.start.saturating_sub(excess);
            span.end = span.end.saturating_sub(excess);
            if span.is_action && before > 0 {
                let after = span.len();
                if after == 0 {
                    cut += 1;
                } else if after < before {
                    clipped += 1;
                }
            }
        }
        (cut, clipped)
    }
}

/// A tokenised trajectory: the sequences a model sees and where each action's tokens are.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tokenized {
    /// The sequences, in message order of their actions: exactly one in
    /// [`RenderMode::Single`], one per action in [`RenderMode::PerTurn`].
    pub segments: Vec<Segment>,
    /// Which of the two.
    pub mode: RenderMode,
    /// Tokens left truncation dropped, summed over segments (0 if none).
    pub truncated_tokens: usize,
    /// Action spans that had tokens before truncation and have none after it (they score 0).
    pub actions_cut: usize,
    /// Action spans that lost some but not all of their tokens.
    pub actions_clipped: usize,
    /// Action messages that make tool calls of which the rendered turn shows none (the
    /// template dropped them, so the action is scored on its other tokens only).
    pub dropped_tool_calls: Vec<usize>,
}

impl Tokenized {
    /// One untruncated sequence ([`RenderMode::Single`]).
    pub fn new(ids: Vec<u32>, spans: Vec<TokenSpan>) -> Self {
        Self::from_segments(vec![Segment::new(ids, spans)], RenderMode::Single)
    }

    /// Untruncated segments.
    pub fn from_segments(segments: Vec<Segment>, mode: RenderMode) -> Self {
        Tokenized {
            segments,
            mode,
            ..Tokenized::default()
        }
    }

    /// The only sequence, in [`RenderMode::Single`] (`None` for per-turn segments).
    pub fn single(&self) -> Option<&Segment> {
        match (self.mode, self.segments.as_slice()) {
            (RenderMode::Single, [s]) => Some(s),
            _ => None,
        }
    }

    /// Token count over all segments.
    pub fn total_tokens(&self) -> usize {
        self.segments.iter().map(|s| s.ids.len()).sum()
    }

    /// The action spans with their segment index, in message order.
    pub fn action_spans(&self) -> impl Iterator<Item = (usize, &TokenSpan)> + '_ {
        self.segments
            .iter()
            .enumerate()
            .flat_map(|(k, s)| s.spans.iter().filter(|s| s.is_action).map(move |x| (k, x)))
    }

    /// Left-truncates every segment to `max_length` (see [`Segment`]'s rule) and adds up the
    /// statistics. Nothing changes when the ids fit.
    pub fn truncate_left(&mut self, max_length: usize) {
        for seg in &mut self.segments {
            let before = seg.truncated_tokens;
            let (cut, clipped) = seg.truncate_left(max_length);
            self.truncated_tokens += seg.truncated_tokens - before;
            self.actions_cut += cut;
            self.actions_clipped += clipped;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(message_index: usize, start: usize, end: usize, is_action: bool) -> TokenSpan {
        TokenSpan {
            message_index,
            start,
            end,
            is_action,
        }
    }

    #[test]
    fn action_targets_skip_position_zero() {
        let t = Segment::new(vec![1, 2, 3, 4], vec![]);
        assert_eq!(t.action_targets(&span(0, 0, 3, true)), 1..3);
        assert_eq!(t.action_targets(&span(0, 2, 4, true)), 2..4);
        // Emptied spans give empty, valid ranges.
        assert_eq!(t.action_targets(&span(0, 0, 0, true)), 1..1);
        assert_eq!(t.action_targets(&span(0, 0, 1, true)), 1..1);
    }

    #[test]
    fn left_truncation_shifts_and_clips_like_the_reference() {
        // 10 ids, spans [0,3) obs, [3,6) action, [6,8) action, [8,10) action; max_length 5
        // -> excess 5: [0,0) [0,1) [1,3) [3,5); action 1 clipped (3 -> 1 tokens),
        // action 2 unchanged length, action 3 unchanged.
        let mut t = Tokenized::new(
            (0..10).collect(),
            vec![
                span(0, 0, 3, false),
                span(1, 3, 6, true),
                span(2, 6, 8, true),
                span(3, 8, 10, true),
            ],
        );
        t.truncate_left(5);
        let seg = t.single().unwrap();
        assert_eq!(seg.ids, vec![5, 6, 7, 8, 9]);
        let got: Vec<(usize, usize)> = seg.spans.iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(got, vec![(0, 0), (0, 1), (1, 3), (3, 5)]);
        assert_eq!(t.truncated_tokens, 5);
        assert_eq!(t.actions_cut, 0);
        assert_eq!(t.actions_clipped, 1);

        // max_length 3 on the original: excess 7 -> action [3,6) becomes [0,0) (cut),
        // [6,8) becomes [0,1) (clipped), [8,10) becomes [1,3).
        let mut t = Tokenized::new(
            (0..10).collect(),
            vec![
                span(0, 3, 6, true),
                span(1, 6, 8, true),
                span(2, 8, 10, true),
            ],
        );
        t.truncate_left(3);
        let seg = t.single().unwrap();
        assert_eq!(seg.ids, vec![7, 8, 9]);
        assert_eq!((t.actions_cut, t.actions_clipped), (1, 1));
        assert_eq!((seg.spans[1].start, seg.spans[1].end), (0, 1));
    }

    #[test]
    fn segments_truncate_independently_and_sum_statistics() {
        // Segment 0 fits; segment 1 (8 ids, action [5, 8)) loses 4; segment 2 (10 ids,
        // action [2, 10)) loses 6, clipping its action to [0, 4).
        let mut t = Tokenized::from_segments(
            vec![
                Segment::new((0..3).collect(), vec![span(0, 1, 3, true)]),
                Segment::new((0..8).collect(), vec![span(2, 5, 8, true)]),
                Segment::new((0..10).collect(), vec![span(4, 2, 10, true)]),
            ],
            RenderMode::PerTurn,
        );
        t.truncate_left(4);
        assert!(t.single().is_none());
        let lens: Vec<usize> = t.segments.iter().map(|s| s.ids.len()).collect();
        assert_eq!(lens, vec![3, 4, 4]);
        let trunc: Vec<usize> = t.segments.iter().map(|s| s.truncated_tokens).collect();
        assert_eq!(trunc, vec![0, 4, 6]);
        assert_eq!(t.truncated_tokens, 10);
        assert_eq!((t.actions_cut, t.actions_clipped), (0, 1));
        assert_eq!(t.segments[1].targets(), vec![1, 2, 3]);
        assert_eq!(t.segments[2].targets(), vec![1, 2, 3]);
        assert_eq!(t.total_tokens(), 11);
        let actions: Vec<(usize, usize)> = t
            .action_spans()
            .map(|(k, s)| (k, s.message_index))
            .collect();
        assert_eq!(actions, vec![(0, 0), (1, 2), (2, 4)]);
    }

    #[test]
    fn no_truncation_when_it_fits() {
        let mut t = Tokenized::new(vec![1, 2], vec![span(0, 0, 2, true)]);
        t.truncate_left(2);
        assert_eq!(t, Tokenized::new(vec![1, 2], vec![span(0, 0, 2, true)]));
    }
}
