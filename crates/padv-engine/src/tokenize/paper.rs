//! Tokenising the `paper` rendering exactly as the reference implementation does.

use padv_core::render::render_paper;
use padv_core::Trajectory;

use super::error::{Result, TokenizeError};
use super::loader::TextTokenizer;
use super::tail::TailIds;
use super::tokenized::{RenderMode, Segment, TokenSpan, Tokenized};

impl TextTokenizer {
    /// Tokenises `render_paper(t)`: each message's text separately with
    /// `add_special_tokens = false`, concatenated, with the BOS id in front when the tokenizer
    /// has one ([`TextTokenizer::bos_token_id`]); then left-truncated to `max_length`.
    ///
    /// Span `i` covers exactly the tokens of message `i`'s text (including its leading `"\n"`),
    /// so every message has a span and the BOS token belongs to none. Tokenising per message
    /// (rather than the joined text) is what the reference does; the ids can differ from
    /// tokenising the joined text where a token would straddle a message boundary.
    ///
    /// Memory is bounded by `max_length`, not by the messages' size: no message can
    /// contribute more than its last `max_length` tokens, so each is encoded with
    /// [`TextTokenizer::encode_tail`] and only the full counts of the rest are kept. The
    /// result (ids, spans, truncation counters) equals full tokenisation followed by
    /// [`Tokenized::truncate_left`].
    pub fn tokenize_paper(&self, t: &Trajectory, max_length: usize) -> Result<Tokenized> {
        self.tokenize_paper_in(t, max_length, None)
    }

    /// [`TextTokenizer::tokenize_paper`] with the piece size of [`TextTokenizer::encode_tail`]
    /// overridden (tests use tiny pieces so that every text is cut many times).
    fn tokenize_paper_in(
        &self,
        t: &Trajectory,
        max_length: usize,
        piece: Option<usize>,
    ) -> Result<Tokenized> {
        let rendered = render_paper(t);
        let mut parts: Vec<(TokenSpan, TailIds)> = Vec::with_capacity(rendered.len());
        let mut len = usize::from(self.bos_id.is_some());
        for span in rendered {
            let tail = match piece {
                Some(piece) => self.encode_tail_in(&span.text, max_length, piece),
                None => self.encode_tail(&span.text, max_length),
            };
            let tail = tail.map_err(|message| TokenizeError::Encode {
                trajectory: t.id.clone(),
                message: format!("message {}: {message}", span.message_index),
            })?;
            let start = len;
            len += tail.total;
            parts.push((
                TokenSpan {
                    message_index: span.message_index,
                    start,
                    end: len,
                    is_action: span.is_action,
                },
                tail,
            ));
        }
        Ok(assemble(self.bos_id, parts, len, max_length))
    }
}

/// The truncated result from each message's full span and tail ids: what building all ids
/// and calling [`Tokenized::truncate_left`] gives, without the dropped ids ever existing.
fn assemble(
    bos: Option<u32>,
    parts: Vec<(TokenSpan, TailIds)>,
    len: usize,
    max_length: usize,
) -> Tokenized {
    let excess = len.saturating_sub(max_length);
    let mut ids = Vec::with_capacity(len - excess);
    if let (Some(bos), 0) = (bos, excess) {
        ids.push(bos);
    }
    let mut spans = Vec::with_capacity(parts.len());
    let (mut actions_cut, mut actions_clipped) = (0, 0);
    for (span, tail) in parts {
        // Tokens of this span at positions >= excess survive; they are its last `kept`.
        let kept = span.end - span.start.max(excess).min(span.end);
        ids.extend_from_slice(&tail.ids[tail.ids.len() - kept..]);
        let cut = TokenSpan {
            start: span.start.saturating_sub(excess),
            end: span.end.saturating_sub(excess),
            ..span
        };
        if excess > 0 && span.is_action && !span.is_empty() {
            if cut.is_empty() {
                actions_cut += 1;
            } else if cut.len() < span.len() {
                actions_clipped += 1;
            }
        }
        spans.push(cut);
    }
    let mut segment = Segment::new(ids, spans);
    segment.truncated_tokens = excess;
    Tokenized {
        truncated_tokens: excess,
        actions_cut,
        actions_clipped,
        ..Tokenized::from_segments(vec![segment], RenderMode::Single)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn tokenizer(name: &str) -> TextTokenizer {
        TextTokenizer::from_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(name),
        )
        .unwrap()
    }

    /// The fixture trajectories, plus each with every message's content repeated 30 times.
    fn trajectories() -> Vec<Trajectory> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/render_cases.json");
        let cases: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let mut out = Vec::new();
        for case in cases.as_array().unwrap() {
            let t = case["trajectory"].clone();
            out.push(serde_json::from_value(t.clone()).unwrap());
            let mut long = t;
            for m in long["messages"].as_array_mut().unwrap() {
                if let Some(c) = m["content"].as_str() {
                    m["content"] = serde_json::Value::from(format!("{c} ").repeat(30));
                }
            }
            out.push(serde_json::from_value(long).unwrap());
        }
        out
    }

    /// The definition: every message encoded whole, concatenated, then truncated.
    fn reference(tok: &TextTokenizer, t: &Trajectory, max_length: usize) -> Tokenized {
        let mut ids: Vec<u32> = tok.bos_id.into_iter().collect();
        let mut spans = Vec::new();
        for span in render_paper(t) {
            let start = ids.len();
            ids.extend(tok.encode(&span.text).unwrap());
            spans.push(TokenSpan {
                message_index: span.message_index,
                start,
                end: ids.len(),
                is_action: span.is_action,
            });
        }
        let mut out = Tokenized::new(ids, spans);
        out.truncate_left(max_length);
        out
    }

    #[test]
    fn bounded_tokenisation_equals_full_then_truncate() {
        let mut clipped = 0;
        for name in ["tokenizer", "tokenizer_bos"] {
            let tok = tokenizer(name);
            for (i, t) in trajectories().into_iter().enumerate() {
                let long = i % 2 == 1;
                if long && name == "tokenizer_bos" {
                    continue; // the BOS path is covered by the short ones
                }
                let full = reference(&tok, &t, usize::MAX);
                let n = full.segments[0].ids.len();
                // A sweep plus the lengths around a few message boundaries, so cuts fall
                // inside words, inside multi-byte characters, exactly on boundaries and on
                // BOS.
                let step = if long { n / 20 + 1 } else { 3 };
                let mut lengths: Vec<usize> = (0..=n + 1).step_by(step).collect();
                let every = full.segments[0].spans.len() / 4 + 1;
                for s in full.segments[0].spans.iter().step_by(every) {
                    for d in 0..2 {
                        lengths.push(n - s.start + d);
                        lengths.push((n - s.end).saturating_sub(d));
                    }
                }
                lengths.extend([0, 1, n.saturating_sub(1), n, n + 1]);
                for max_length in lengths {
                    let mut want = full.clone();
                    want.truncate_left(max_length);
                    let got = tok.tokenize_paper_in(&t, max_length, Some(32)).unwrap();
                    assert_eq!(got, want, "{name} {} max_length {max_length}", t.id);
                    clipped += want.actions_clipped;
                }
            }
        }
        assert!(clipped > 0, "no truncation fell inside an action");
    }

    #[test]
    fn a_multi_byte_character_split_across_tokens_is_cut_like_the_reference() {
        // Byte-level BPE spells a rare character as several byte tokens; sweep every cut.
        let tok = tokenizer("tokenizer");
        let json = serde_json::json!({"id": "u", "task_id": "0", "messages": [
            {"role": "user", "content": "東京😀 ".repeat(40), "is_action": false},
            {"role": "assistant", "content": "ok 😀😀 done ".repeat(20), "is_action": true}]});
        let t: Trajectory = serde_json::from_value(json).unwrap();
        let full = reference(&tok, &t, usize::MAX);
        let n = full.segments[0].ids.len();
        let emoji = tok.encode("😀").unwrap();
        assert!(emoji.len() > 1, "fixture spells the emoji in one token");
        for max_length in 0..=n {
            let mut want = full.clone();
            want.truncate_left(max_length);
            assert_eq!(
                tok.tokenize_paper_in(&t, max_length, Some(16)).unwrap(),
                want,
                "max_length {max_length}"
            );
        }
    }
}
