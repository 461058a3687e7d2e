//! The gym's typed errors.

use std::path::PathBuf;

/// Everything the gym's world side can fail with.
#[derive(Debug, thiserror::Error)]
pub enum GymError {
    /// Writing or reading a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A configuration value is out of its valid range.
    #[error("invalid gym configuration: {0}")]
    Config(String),
    /// JSON (de)serialisation failed for a file.
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}
