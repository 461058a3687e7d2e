//! Trajectory → token ids + per-message token spans (no candle needed).
//!
//! - [`TextTokenizer::from_dir`] loads a Hugging Face tokenizer directory: `tokenizer.json`,
//!   special tokens, chat templates, and a [`TextTokenizer::fingerprint`] for caches.
//! - [`TextTokenizer::tokenize_paper`] tokenises the reference implementation's plain-text
//!   rendering (`padv_core::render::render_paper`) message by message, BOS first.
//! - [`TextTokenizer::tokenize_chat`] renders with the model's chat template
//!   ([`ChatTemplate`], minijinja set up like transformers) and finds each action's tokens:
//!   one sequence, or one [`Segment`] per action when the template rewrites history
//!   ([`RenderMode`]).
//! - [`TrajectoryEncoder`] picks one of the two from [`TokenizeOptions`], compiling the
//!   template once for many trajectories.
//! - Both left-truncate to `max_length` (each segment on its own) exactly as the reference
//!   does ([`Tokenized`]).
//! - [`check_same_vocabulary`] verifies that a policy and a reference share ids.
//!
//! Offsets: Rust `tokenizers` reports byte offsets (Python reports characters); every span
//! here is computed in bytes of the rendered text, so the token spans are the same.

mod chat;
mod error;
mod loader;
mod paper;
mod pyjson;
mod strftime;
mod tail;
mod template;
mod tokenized;
mod view;
mod vocab;

use padv_core::render::RendererKind;
use padv_core::Trajectory;

pub use error::{Result, TokenizeError};
pub use loader::{SpecialTokens, TemplateSource, TextTokenizer, DEFAULT_TEMPLATE};
pub use strftime::FixedDate;
pub use tail::TailIds;
pub use template::{ChatOptions, ChatTemplate, RenderedChat};
pub use tokenized::{RenderMode, Segment, TokenSpan, Tokenized, DEFAULT_MAX_LENGTH};
pub use view::{RenderedSegment, RenderedSpan, RenderedTrajectory};
pub use vocab::{
    check_same_vocabulary, model_vocab_size, pair_tokenizer, PairTokenizerError, VocabMismatch,
};

/// How to turn trajectories into ids.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenizeOptions {
    /// `paper` (default) or `chat-template`.
    pub renderer: RendererKind,
    /// Keep at most this many tokens, dropping the oldest (default [`DEFAULT_MAX_LENGTH`]).
    pub max_length: usize,
    /// Chat-template settings; ignored by the `paper` renderer.
    pub chat: ChatOptions,
}

impl Default for TokenizeOptions {
    fn default() -> Self {
        TokenizeOptions {
            renderer: RendererKind::Paper,
            max_length: DEFAULT_MAX_LENGTH,
            chat: ChatOptions::default(),
        }
    }
}

/// What a [`TokenizeOptions`] compiles to: the chat template (if any) and the truncation
/// length, without the tokenizer. A holder that owns its tokenizer (`padv serve`'s model
/// pair) keeps this beside it; everyone else uses [`TrajectoryEncoder`], which pairs the two.
/// Both encode through [`Rendering::encode`], so every caller gets the same ids.
#[derive(Debug)]
pub struct Rendering {
    template: Option<ChatTemplate>,
    max_length: usize,
}

impl Rendering {
    /// Which renderer this is.
    pub fn renderer(&self) -> RendererKind {
        if self.template.is_some() {
            RendererKind::ChatTemplate
        } else {
            RendererKind::Paper
        }
    }

    /// The compiled chat template, for the chat renderer.
    pub fn template(&self) -> Option<&ChatTemplate> {
        self.template.as_ref()
    }

    /// The left-truncation length.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Tokenises one trajectory with `tokenizer` (the one this was compiled for).
    pub fn encode(&self, tokenizer: &TextTokenizer, t: &Trajectory) -> Result<Tokenized> {
        match &self.template {
            None => tokenizer.tokenize_paper(t, self.max_length),
            Some(template) => tokenizer.tokenize_chat(template, t, self.max_length),
        }
    }
}

/// A tokenizer bound to one set of [`TokenizeOptions`], with the chat template (if any)
/// compiled once. `Sync`, so trajectories can be encoded in parallel.
#[derive(Debug)]
pub struct TrajectoryEncoder<'a> {
    tokenizer: &'a TextTokenizer,
    rendering: Rendering,
}

impl TextTokenizer {
    /// Compiles `opts` for this tokenizer (the chat template when `opts.renderer` needs one).
    pub fn rendering(&self, opts: &TokenizeOptions) -> Result<Rendering> {
        let template = match opts.renderer {
            RendererKind::Paper => None,
            RendererKind::ChatTemplate => Some(self.chat_template(&opts.chat)?),
        };
        Ok(Rendering {
            template,
            max_length: opts.max_length,
        })
    }

    /// Prepares an encoder; compiles the chat template when `opts.renderer` needs one.
    pub fn encoder(&self, opts: &TokenizeOptions) -> Result<TrajectoryEncoder<'_>> {
        Ok(TrajectoryEncoder {
            tokenizer: self,
            rendering: self.rendering(opts)?,
        })
    }
}

impl TrajectoryEncoder<'_> {
    /// Which renderer this encoder uses.
    pub fn renderer(&self) -> RendererKind {
        self.rendering.renderer()
    }

    /// The compiled chat template, for the chat renderer.
    pub fn template(&self) -> Option<&ChatTemplate> {
        self.rendering.template()
    }

    /// Tokenises one trajectory.
    pub fn encode(&self, t: &Trajectory) -> Result<Tokenized> {
        self.rendering.encode(self.tokenizer, t)
    }
}
