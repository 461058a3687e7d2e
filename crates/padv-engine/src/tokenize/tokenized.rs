//! Token ids of a rendered trajectory with per-message token spans, and left truncation.

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// Default `max_length`: the reference implementation's 16,384 tokens.
pub const DEFAULT_MAX_LENGTH: usize = 16_384;

/// The tokens of one message: ids `[start, end)` of [`Tokenized::ids`].
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

/// A tokenised trajectory: the ids a model sees and where each message's tokens are.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tokenized {
    /// Token ids, after left truncation.
    pub ids: Vec<u32>,
    /// One span per message that has one, in message order (for chat templates, see
    /// `tokenize_chat` for which tokens belong to no message).
    pub spans: Vec<TokenSpan>,
    /// How many tokens left truncation dropped from the front (0 if none).
    pub truncated_tokens: usize,
    /// Action spans that had tokens before truncation and have none after it (they score 0).
    pub actions_cut: usize,
    /// Action spans that lost some but not all of their tokens.
    pub actions_clipped: usize,
}

impl Tokenized {
    /// Builds an untruncated result.
    pub fn new(ids: Vec<u32>, spans: Vec<TokenSpan>) -> Self {
        Tokenized {
            ids,
            spans,
            truncated_tokens: 0,
            actions_cut: 0,
            actions_clipped: 0,
        }
    }

    /// The positions whose log-probs score `span`: `max(start, 1)..end`. Position 0 has no
    /// prefix, so it is never a target. Always a valid (possibly empty) range.
    pub fn action_targets(&self, span: &TokenSpan) -> Range<usize> {
        let start = span.start.max(1);
        start..span.end.max(start)
    }

    /// The spans of action messages, in order.
    pub fn action_spans(&self) -> impl Iterator<Item = &TokenSpan> + '_ {
        self.spans.iter().filter(|s| s.is_action)
    }

    /// Keeps the last `max_length` ids, as the reference does: with
    /// `excess = len - max_length`, each span `(s, e)` becomes
    /// `(max(0, s - excess), max(0, e - excess))`. Nothing changes when the ids fit.
    pub fn truncate_left(&mut self, max_length: usize) {
        if self.ids.len() <= max_length {
            return;
        }
        let excess = self.ids.len() - max_length;
        self.ids.drain(..excess);
        self.truncated_tokens += excess;
        for span in &mut self.spans {
            let before = span.len();
            span.start = span.start.saturating_sub(excess);
            span.end = span.end.saturating_sub(excess);
            if span.is_action && before > 0 {
                let after = span.len();
                if after == 0 {
                    self.actions_cut += 1;
                } else if after < before {
                    self.actions_clipped += 1;
                }
            }
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
        let t = Tokenized::new(vec![1, 2, 3, 4], vec![]);
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
        assert_eq!(t.ids, vec![5, 6, 7, 8, 9]);
        let got: Vec<(usize, usize)> = t.spans.iter().map(|s| (s.start, s.end)).collect();
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
        assert_eq!(t.ids, vec![7, 8, 9]);
        assert_eq!((t.actions_cut, t.actions_clipped), (1, 1));
        assert_eq!((t.spans[1].start, t.spans[1].end), (0, 1));
    }

    #[test]
    fn no_truncation_when_it_fits() {
        let mut t = Tokenized::new(vec![1, 2], vec![span(0, 0, 2, true)]);
        t.truncate_left(2);
        assert_eq!(t, Tokenized::new(vec![1, 2], vec![span(0, 0, 2, true)]));
    }
}
