//! Tokenising a trajectory through the model's chat template, and locating each action's
//! tokens in it: one sequence when the template keeps earlier turns as they were generated,
//! one segment per action when it rewrites them.

use std::ops::Range;

use minijinja::value::Value as JValue;
use padv_core::render::chat_messages;
use padv_core::Trajectory;

use super::error::{Result, TokenizeError};
use super::loader::TextTokenizer;
use super::template::{template_message, ChatOptions, ChatTemplate, RenderedChat};
use super::tokenized::{RenderMode, Segment, TokenSpan, Tokenized};

impl TextTokenizer {
    /// Compiles the chat template `opts.template` (default: `default`) with this tokenizer's
    /// special tokens and the given options.
    pub fn chat_template(&self, opts: &ChatOptions) -> Result<ChatTemplate> {
        let src = self.template_source(opts.template.as_deref())?;
        ChatTemplate::compile(src, &self.special, opts)
    }

    /// Tokenises `t` through `template` the way the model saw it, in one of two modes
    /// ([`RenderMode`], chosen per trajectory and logged at debug level):
    ///
    /// - [`RenderMode::Single`] when the template never rewrites an earlier turn: for every
    ///   action `i`, `render(msgs[..i], add_generation_prompt=true)` and `render(msgs[..=i])`
    ///   are prefixes of the full render. Then the ids equal
    ///   `apply_chat_template(chat_messages(t), tokenize=True)`: the whole conversation is
    ///   rendered once (no generation prompt) and encoded with `add_special_tokens = false`
    ///   (the template writes BOS itself), and one segment holds every message's span.
    /// - [`RenderMode::PerTurn`] otherwise (Qwen3 drops the `<think>` reasoning of turns
    ///   before the last user query, so the final render of an earlier turn is not what the
    ///   model generated): one segment per action, the ids of
    ///   `render(msgs[..i], add_generation_prompt=true)` (the context the model was given)
    ///   followed by the ids of the text it generated, `render(msgs[..=i])` after that prefix
    ///   (content, tool calls, end-of-turn marker). The two parts are encoded separately, as
    ///   a server tokenises a prompt and the model emits its own tokens. The segment's only
    ///   span is the action. Fails with [`TokenizeError::NotPrefix`] when the generation
    ///   prompt is not a prefix of `render(msgs[..=i])`: then no text is the generated one.
    ///
    /// Each segment is then left-truncated to `max_length`.
    ///
    /// Spans of the single mode, in bytes of the rendered text `full`, mapped to every token
    /// whose start offset lies inside:
    /// - action message `i`: `[len(render(msgs[..i], add_generation_prompt=true)),
    ///   len(render(msgs[..=i])))`, the text the model generated in that turn without the
    ///   role header. (Actions are always `assistant` turns, see
    ///   `padv_core::render::chat_role`, so the generation prompt opens them.) When message 0
    ///   is an action and the template cannot render an empty conversation (it reads
    ///   `messages[0]` unguarded, as Qwen2.5's does), the start is instead where the render
    ///   of message 0 departs from the render of the same message with empty content and no
    ///   tool calls, i.e. after its role header (in both modes).
    /// - any other message: from the end of the previous message's span to the end of the
    ///   longest common prefix of `render(msgs[..=i])` and `full`, kept inside the gap before
    ///   the next action span. Observations are never scored; these spans exist so every
    ///   message can be located. Header tokens that open an action turn belong to no span.
    ///
    /// An action with tool calls whose generated text names none of its tools (the template
    /// dropped them) is listed in [`Tokenized::dropped_tool_calls`] and warned about once.
    pub fn tokenize_chat(
        &self,
        template: &ChatTemplate,
        t: &Trajectory,
        max_length: usize,
    ) -> Result<Tokenized> {
        let msgs = message_values(t);
        let full = render(template, t, &msgs, msgs.len(), false)?;
        let turns = action_turns(template, t, &msgs, &full)?;
        let mode = if renders_as_one_sequence(&turns, &full.text) {
            RenderMode::Single
        } else {
            RenderMode::PerTurn
        };
        tracing::debug!(trajectory = %t.id, template = template.name(), ?mode, "chat rendering mode");
        let mut out = match mode {
            RenderMode::Single => self.single_sequence(template, t, &msgs, &full.text, &turns)?,
            RenderMode::PerTurn => self.per_turn_segments(template, t, &turns)?,
        };
        out.dropped_tool_calls = dropped_tool_calls(t, &turns);
        if !out.dropped_tool_calls.is_empty() {
            tracing::warn!(
                "trajectory {:?}: chat template {:?} drops the tool calls of action messages {:?}; \
                 those actions are scored on their other tokens only",
                t.id,
                template.name(),
                out.dropped_tool_calls
            );
        }
        out.truncate_left(max_length);
        Ok(out)
    }

    /// The single-sequence tokenisation (see [`TextTokenizer::tokenize_chat`]), untruncated.
    fn single_sequence(
        &self,
        template: &ChatTemplate,
        t: &Trajectory,
        msgs: &[JValue],
        text: &str,
        turns: &[ActionTurn],
    ) -> Result<Tokenized> {
        let mut action_spans: Vec<Option<Range<usize>>> = vec![None; msgs.len()];
        for turn in turns {
            action_spans[turn.index] = Some(turn.prompt.len()..turn.upto.len());
        }
        let mut byte_spans: Vec<Range<usize>> = Vec::with_capacity(msgs.len());
        let mut cursor = 0;
        for i in 0..msgs.len() {
            if let Some(span) = &action_spans[i] {
                cursor = span.end;
                byte_spans.push(span.clone());
                continue;
            }
            let limit = action_spans[i + 1..]
                .iter()
                .flatten()
                .map(|s| s.start)
                .next()
                .unwrap_or(text.len());
            let start = cursor.min(limit);
            let upto = render(template, t, msgs, i + 1, false)?;
            let end = common_prefix_len(&upto.text, text).clamp(start, limit);
            cursor = end;
            byte_spans.push(start..end);
        }

        let enc = self.encode_text(t, text)?;
        let offsets = enc.get_offsets();
        let spans = byte_spans
            .iter()
            .zip(&t.messages)
            .enumerate()
            .map(|(i, (r, m))| {
                let tokens = tokens_starting_in(offsets, r);
                TokenSpan {
                    message_index: i,
                    start: tokens.start,
                    end: tokens.end,
                    is_action: m.is_action,
                }
            })
            .collect();
        Ok(Tokenized::new(enc.get_ids().to_vec(), spans))
    }

    /// One segment per action (see [`TextTokenizer::tokenize_chat`]), untruncated.
    fn per_turn_segments(
        &self,
        template: &ChatTemplate,
        t: &Trajectory,
        turns: &[ActionTurn],
    ) -> Result<Tokenized> {
        let mut segments = Vec::with_capacity(turns.len());
        for turn in turns {
            check_prefix(
                template,
                t,
                turn.index,
                &turn.prompt,
                &turn.upto,
                "with the generation prompt",
                "the render up to this message",
            )?;
            let mut ids = self.encode_text(t, &turn.prompt)?.get_ids().to_vec();
            let start = ids.len();
            ids.extend_from_slice(
                self.encode_text(t, &turn.upto[turn.prompt.len()..])?
                    .get_ids(),
            );
            let span = TokenSpan {
                message_index: turn.index,
                start,
                end: ids.len(),
                is_action: true,
            };
            segments.push(Segment::new(ids, vec![span]));
        }
        Ok(Tokenized::from_segments(segments, RenderMode::PerTurn))
    }

    fn encode_text(&self, t: &Trajectory, text: &str) -> Result<tokenizers::Encoding> {
        self.tokenizer
            .encode(text, false)
            .map_err(|e| TokenizeError::Encode {
                trajectory: t.id.clone(),
                message: e.to_string(),
            })
    }

    /// The assistant-token mask of a template with `{% generation %}` blocks, computed like
    /// `apply_chat_template(..., return_assistant_tokens_mask=True)`: for each block, the
    /// tokens from the one holding its first character to the one holding its last are 1.
    /// Untruncated. Fails if the template has no generation blocks.
    pub fn chat_assistant_mask(&self, template: &ChatTemplate, t: &Trajectory) -> Result<Vec<u8>> {
        if !template.has_generation_blocks() {
            return Err(TokenizeError::Template {
                name: template.name().to_string(),
                origin: template.origin().to_string(),
                message: "the template has no {% generation %} blocks".into(),
            });
        }
        let msgs = message_values(t);
        let full = render(template, t, &msgs, msgs.len(), false)?;
        let enc = self
            .tokenizer
            .encode(full.text.as_str(), false)
            .map_err(|e| TokenizeError::Encode {
                trajectory: t.id.clone(),
                message: e.to_string(),
            })?;
        let offsets = enc.get_offsets();
        let mut mask = vec![0u8; offsets.len()];
        for span in full.generation_spans.iter().filter(|s| !s.is_empty()) {
            let last_char = full.text[..span.end]
                .char_indices()
                .next_back()
                .map_or(span.start, |(b, _)| b);
            // HF stops at the first block whose start maps to no token.
            let Some(first) = token_containing(offsets, span.start) else {
                break;
            };
            let last = token_containing(offsets, last_char).unwrap_or(offsets.len() - 1);
            for m in &mut mask[first..=last.max(first)] {
                *m = 1;
            }
        }
        Ok(mask)
    }
}

/// Start of message 0's generated text when `render([])` fails: the common prefix of the
/// render of message 0 and of the same message emptied (content "", no tool calls).
fn first_turn_start(template: &ChatTemplate, t: &Trajectory, first: &str) -> Option<usize> {
    let serde_json::Value::Array(items) = chat_messages(t) else {
        return None;
    };
    let mut probe = items.into_iter().next()?;
    if let serde_json::Value::Object(map) = &mut probe {
        map.insert("content".into(), serde_json::Value::String(String::new()));
        map.remove("tool_calls");
    }
    let rendered = template
        .render_values(&[template_message(&probe)], false)
        .ok()?;
    Some(common_prefix_len(&rendered.text, first))
}

/// The two renders that locate action `index`: the generation prompt before it (`prompt`)
/// and the conversation up to and including it (`upto`).
struct ActionTurn {
    index: usize,
    prompt: String,
    upto: String,
}

fn action_turns(
    template: &ChatTemplate,
    t: &Trajectory,
    msgs: &[JValue],
    full: &RenderedChat,
) -> Result<Vec<ActionTurn>> {
    let mut turns = Vec::new();
    for i in t.action_indices() {
        let upto = if i + 1 == msgs.len() {
            full.text.clone()
        } else {
            render(template, t, msgs, i + 1, false)?.text
        };
        let prompt = match render(template, t, msgs, i, true) {
            Ok(before) => before.text,
            // Many real templates read `messages[0]` unguarded, so an empty conversation
            // does not render; locate the first turn's generated text another way.
            Err(e) if i == 0 => {
                let n = first_turn_start(template, t, &upto).ok_or(e)?;
                upto[..n].to_string()
            }
            Err(e) => return Err(e),
        };
        turns.push(ActionTurn {
            index: i,
            prompt,
            upto,
        });
    }
    Ok(turns)
}

/// Whether every action's generation prompt and render-through-it are prefixes of the full
/// render, with the actions' texts in order and not overlapping: then the final render holds
/// each turn exactly as generated.
fn renders_as_one_sequence(turns: &[ActionTurn], full: &str) -> bool {
    let mut last_end = 0;
    turns.iter().all(|turn| {
        let (start, end) = (turn.prompt.len(), turn.upto.len());
        let ok = full.starts_with(&turn.prompt)
            && full.starts_with(&turn.upto)
            && start <= end
            && start >= last_end;
        last_end = end;
        ok
    })
}

/// Action messages with tool calls whose generated text (the turn after its generation
/// prompt) contains none of the called tools' names.
fn dropped_tool_calls(t: &Trajectory, turns: &[ActionTurn]) -> Vec<usize> {
    turns
        .iter()
        .filter(|turn| {
            let calls = &t.messages[turn.index].tool_calls;
            let generated = turn.upto.get(turn.prompt.len()..).unwrap_or("");
            !calls.is_empty() && !calls.iter().any(|c| generated.contains(c.name.as_str()))
        })
        .map(|turn| turn.index)
        .collect()
}

fn message_values(t: &Trajectory) -> Vec<JValue> {
    match chat_messages(t) {
        serde_json::Value::Array(items) => items.iter().map(template_message).collect(),
        _ => Vec::new(),
    }
}

fn render(
    template: &ChatTemplate,
    t: &Trajectory,
    msgs: &[JValue],
    upto: usize,
    add_generation_prompt: bool,
) -> Result<RenderedChat> {
    template
        .render_values(&msgs[..upto], add_generation_prompt)
        .map_err(|message| TokenizeError::Render {
            trajectory: t.id.clone(),
            template: template.name().to_string(),
            upto,
            message,
        })
}

fn check_prefix(
    template: &ChatTemplate,
    t: &Trajectory,
    message_index: usize,
    part: &str,
    full: &str,
    what: &str,
    whole: &str,
) -> Result<()> {
    if full.starts_with(part) {
        return Ok(());
    }
    let at = common_prefix_len(part, full);
    let snippet = |s: &str| s[at..].chars().take(40).collect::<String>();
    Err(TokenizeError::NotPrefix {
        trajectory: t.id.clone(),
        message_index,
        template: template.name().to_string(),
        detail: format!(
            "the render {what} differs from {whole} at byte {at}: {:?} vs {:?}",
            snippet(part),
            snippet(full)
        ),
    })
}

/// Length in bytes of the longest common prefix, on a character boundary of both strings.
fn common_prefix_len(a: &str, b: &str) -> usize {
    let mut n = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    while !(a.is_char_boundary(n) && b.is_char_boundary(n)) {
        n -= 1;
    }
    n
}

/// Tokens whose start offset lies in `r` (byte offsets). Offsets of one encoding start in
/// non-decreasing order, so this is a contiguous range found by binary search; an empty byte
/// range gives an empty token range at the first token starting at or after it.
fn tokens_starting_in(offsets: &[(usize, usize)], r: &Range<usize>) -> Range<usize> {
    let a = offsets.partition_point(|o| o.0 < r.start);
    let b = offsets.partition_point(|o| o.0 < r.end).max(a);
    a..b
}

/// The token whose offsets contain byte `pos` (HF's `char_to_token`).
fn token_containing(offsets: &[(usize, usize)], pos: usize) -> Option<usize> {
    offsets.iter().position(|o| o.0 <= pos && pos < o.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefix_respects_char_boundaries() {
        assert_eq!(common_prefix_len("abcd", "abxd"), 2);
        // "é" (c3 a9) vs "è" (c3 a8) share one byte, which is not a boundary -> 1 ("a").
        assert_eq!(common_prefix_len("aé", "aè"), 1);
        assert_eq!(common_prefix_len("ab", "abc"), 2);
    }

    #[test]
    fn token_ranges_from_offsets() {
        // Tokens: "ab"(0,2) "c"(2,3) "de"(3,5) "f"(5,6).
        let offs = [(0, 2), (2, 3), (3, 5), (5, 6)];
        assert_eq!(tokens_starting_in(&offs, &(2..5)), 1..3);
        // A byte range starting inside token 0 takes the tokens starting inside it only.
        assert_eq!(tokens_starting_in(&offs, &(1..4)), 1..3);
        assert_eq!(tokens_starting_in(&offs, &(6..6)), 4..4);
        assert_eq!(tokens_starting_in(&offs, &(0..6)), 0..4);
        assert_eq!(token_containing(&offs, 4), Some(2));
        assert_eq!(token_containing(&offs, 6), None);
    }
}
