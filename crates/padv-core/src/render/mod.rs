//! Trajectory → what a tokenizer sees.
//!
//! Two renderings exist, chosen by [`RendererKind`]:
//!
//! - [`RendererKind::Paper`]: [`render_paper`] writes each message as plain text,
//!   `"[role]: body"`, one [`TextSpan`] per message, byte-identical to the reference
//!   implementation (which tokenises every span separately and concatenates the ids). Use it
//!   to reproduce the paper's numbers.
//! - [`RendererKind::ChatTemplate`]: the model's own chat template renders the whole
//!   conversation; this module only builds the message list for it ([`chat_messages`]); the
//!   template itself runs in `padv-engine`'s `tokenize` module, which also locates the action
//!   spans.
//!
//! Tool-call arguments appear in the paper text as Python literals, so [`py_repr`] and
//! [`py_strip`] reproduce CPython's `repr` and `str.strip` exactly.

mod chat;
mod paper;
mod pyrepr;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use chat::{chat_messages, chat_role};
pub use paper::{paper_body, render_paper, EMPTY_ACTION_BODY};
pub use pyrepr::{py_float_repr, py_isprintable, py_number_repr, py_repr, py_str_repr, py_strip};

/// One message's text in the `paper` rendering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextSpan {
    /// Index of the message in `Trajectory::messages`.
    pub message_index: usize,
    /// The exact text, including the leading `"\n"` separator for messages after the first.
    pub text: String,
    /// Whether the message is an action step (its tokens are scored).
    pub is_action: bool,
}

/// How a trajectory is turned into tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum RendererKind {
    /// The reference implementation's plain-text transcript (no chat template).
    #[default]
    #[serde(rename = "paper")]
    #[cfg_attr(feature = "clap", value(name = "paper"))]
    Paper,
    /// The model's own chat template (as `transformers.apply_chat_template`).
    #[serde(rename = "chat-template")]
    #[cfg_attr(feature = "clap", value(name = "chat-template"))]
    ChatTemplate,
}

impl RendererKind {
    /// The name used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RendererKind::Paper => "paper",
            RendererKind::ChatTemplate => "chat-template",
        }
    }
}

impl fmt::Display for RendererKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A renderer name that is neither `paper` nor `chat-template`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown renderer {0:?} (expected \"paper\" or \"chat-template\")")]
pub struct UnknownRenderer(pub String);

impl FromStr for RendererKind {
    type Err = UnknownRenderer;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "paper" => Ok(RendererKind::Paper),
            "chat-template" => Ok(RendererKind::ChatTemplate),
            other => Err(UnknownRenderer(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renderer_kind_names_round_trip() {
        for k in [RendererKind::Paper, RendererKind::ChatTemplate] {
            assert_eq!(k.to_string().parse::<RendererKind>().unwrap(), k);
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{k}\""));
            assert_eq!(serde_json::from_str::<RendererKind>(&json).unwrap(), k);
        }
        assert_eq!(RendererKind::ChatTemplate.to_string(), "chat-template");
        assert!("chat_template".parse::<RendererKind>().is_err());
    }
}
