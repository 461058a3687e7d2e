//! Tokenising the `paper` rendering exactly as the reference implementation does.

use padv_core::render::render_paper;
use padv_core::Trajectory;

use super::error::{Result, TokenizeError};
use super::loader::TextTokenizer;
use super::tokenized::{TokenSpan, Tokenized};

impl TextTokenizer {
    /// Tokenises `render_paper(t)`: each message's text separately with
    /// `add_special_tokens = false`, concatenated, with the BOS id in front when the tokenizer
    /// has one ([`TextTokenizer::bos_token_id`]); then left-truncated to `max_length`.
    ///
    /// Span `i` covers exactly the tokens of message `i`'s text (including its leading `"\n"`),
    /// so every message has a span and the BOS token belongs to none. Tokenising per message
    /// (rather than the joined text) is what the reference does; the ids can differ from
    /// tokenising the joined text where a token would straddle a message boundary.
    pub fn tokenize_paper(&self, t: &Trajectory, max_length: usize) -> Result<Tokenized> {
        let rendered = render_paper(t);
        let mut ids = Vec::new();
        if let Some(bos) = self.bos_id {
            ids.push(bos);
        }
        let mut spans = Vec::with_capacity(rendered.len());
        for span in rendered {
            let start = ids.len();
            let piece = self
                .encode(&span.text)
                .map_err(|message| TokenizeError::Encode {
                    trajectory: t.id.clone(),
                    message: format!("message {}: {message}", span.message_index),
                })?;
            ids.extend(piece);
            spans.push(TokenSpan {
                message_index: span.message_index,
                start,
                end: ids.len(),
                is_action: span.is_action,
            });
        }
        let mut out = Tokenized::new(ids, spans);
        out.truncate_left(max_length);
        Ok(out)
    }
}
