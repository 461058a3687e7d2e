//! The gym's typed errors.

use std::path::PathBuf;

/// Everything the gym's world side can fail with.
#[derive(Debug, thiserror::Error)]
pub enum GymError {
    /// Writing or reading a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A configuration value is out of its valid range.
    #[error("invalid gym configuration: {0}")]
    Config(String),
    /// A tokenizer operation failed (text outside the alphabet, a bad id, the `tokenizers`
    /// pipeline).
    #[error("gym tokenizer: {0}")]
    Token(String),
    /// An action was applied to an episode that has already ended.
    #[error("episode {id}: the episode is over, no more actions")]
    EpisodeOver {
        /// The episode.
        id: String,
    },
    /// A line of a JSONL file is not a valid record.
    #[error("{path}: line {line}: {source}")]
    Record {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// Why the line does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// Scores and ground truth do not match up (unknown id or step).
    #[error("joining scores with ground truth: {0}")]
    Join(String),
    /// JSON (de)serialisation failed for a file.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// Why it does not (de)serialise.
        #[source]
        source: serde_json::Error,
    },
}
