//! Errors of the tokenize module; each names the file, template, trajectory or message at fault.

use std::path::PathBuf;

/// Why loading a tokenizer, compiling a chat template or tokenising a trajectory failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenizeError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file exists but its content is not what was expected (bad JSON, bad tokenizer).
    #[error("cannot parse {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A field of a config file has an unusable value.
    #[error("{path}: field `{field}`: {message}")]
    Field {
        /// The file.
        path: PathBuf,
        /// The field name.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The requested chat template does not exist.
    #[error("{dir}: no chat template named {name:?} (available: {available})")]
    NoTemplate {
        /// The tokenizer directory.
        dir: PathBuf,
        /// The requested name (`default` when none was given).
        name: String,
        /// Comma-separated names that do exist, or `none`.
        available: String,
    },
    /// A chat template does not compile, or an option given to it is invalid.
    #[error("chat template {name:?} ({origin}): {message}")]
    Template {
        /// Template name.
        name: String,
        /// Where the template came from (file, or file and field).
        origin: String,
        /// The compiler's message.
        message: String,
    },
    /// Rendering a chat template failed (including `raise_exception` calls).
    #[error(
        "trajectory {trajectory}: chat template {template:?} failed on messages[..{upto}]: {message}"
    )]
    Render {
        /// Trajectory id.
        trajectory: String,
        /// Template name.
        template: String,
        /// Number of messages that were rendered (the failing prefix length).
        upto: usize,
        /// The renderer's message.
        message: String,
    },
    /// The generation prompt before an action is not a prefix of the render through that
    /// action, so no text of the turn is the one the model generated after the prompt.
    /// (Templates that merely rewrite earlier turns, as Qwen3 drops `<think>` blocks, are
    /// scored per turn instead; see `TextTokenizer::tokenize_chat`.)
    #[error(
        "trajectory {trajectory}, message {message_index}: chat template {template:?} does not \
         open this action with its generation prompt: {detail}"
    )]
    NotPrefix {
        /// Trajectory id.
        trajectory: String,
        /// The action message whose span cannot be located.
        message_index: usize,
        /// Template name.
        template: String,
        /// Which render diverged and where.
        detail: String,
    },
    /// The tokenizer failed on some text.
    #[error("trajectory {trajectory}: tokenizer failed: {message}")]
    Encode {
        /// Trajectory id.
        trajectory: String,
        /// The tokenizer's message.
        message: String,
    },
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, TokenizeError>;
