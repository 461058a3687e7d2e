//! Errors from reading a checkpoint directory: each names the file and, where one is at
//! fault, the field or tensor.

use std::path::PathBuf;

/// Why a checkpoint could not be located, read or understood.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// `resolve_model_path` found neither a directory nor a cached snapshot.
    #[error("model {spec:?} not found: not a directory, and no snapshot in {searched}")]
    NotFound {
        /// What the user asked for.
        spec: String,
        /// The places looked at, joined for display.
        searched: String,
    },
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file is not valid JSON or has a field of the wrong type.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What serde reported (it includes the line and column).
        #[source]
        source: serde_json::Error,
    },
    /// A required `config.json` field is absent.
    #[error("{path}: missing field `{field}`")]
    MissingField {
        /// The config file.
        path: PathBuf,
        /// The field, dotted when nested (`rope_scaling.factor`).
        field: String,
    },
    /// A `config.json` field has a value padv cannot use.
    #[error("{path}: field `{field}`: {reason}")]
    InvalidField {
        /// The config file.
        path: PathBuf,
        /// The field, dotted when nested.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `model_type` names a family the decoder does not implement.
    #[error(
        "{path}: field `model_type`: unsupported model type {value:?} (supported: {supported})"
    )]
    UnsupportedModelType {
        /// The config file.
        path: PathBuf,
        /// The value found.
        value: String,
        /// The supported values, joined for display.
        supported: String,
    },
    /// A safetensors file is malformed (header or data range).
    #[error("{path}: bad safetensors file: {reason}")]
    Safetensors {
        /// The weights file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A tensor the model needs is absent from every weights file.
    #[error("{dir}: tensor `{name}` not found in the checkpoint")]
    MissingTensor {
        /// The checkpoint directory.
        dir: PathBuf,
        /// The tensor name.
        name: String,
    },
    /// The stored tensors are not the ones the config describes: some it needs are absent,
    /// or some stored ones would never be read (e.g. `num_hidden_layers` says 1 where 2 layers
    /// are stored). Loading anyway would compute a different model than the one trained.
    #[error(
        "{dir}: the weights do not match config.json: {} missing{}; {} unused{}",
        missing.len(), name_list(missing), unused.len(), name_list(unused)
    )]
    TensorSetMismatch {
        /// The checkpoint directory.
        dir: PathBuf,
        /// Tensors the config needs that no weight file holds (sorted).
        missing: Vec<String>,
        /// Stored tensors the model would not read (sorted).
        unused: Vec<String>,
    },
    /// The config ties the output projection to the embeddings, but the checkpoint also
    /// stores a different `lm_head.weight`: which one a loader uses decides the numbers.
    #[error(
        "{dir}: config.json ties the embeddings, but `{head}` differs from `{embed}`; set \
         tie_word_embeddings to false to use it, or remove it"
    )]
    TiedHeadDiffers {
        /// The checkpoint directory.
        dir: PathBuf,
        /// The stored output projection.
        head: String,
        /// The embedding matrix.
        embed: String,
    },
    /// A tensor has a different shape from the one the config implies.
    #[error("{path}: tensor `{name}` has shape {found:?}, the config implies {expected:?}")]
    ShapeMismatch {
        /// The weights file.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// Shape in the file.
        found: Vec<usize>,
        /// Shape the config implies.
        expected: Vec<usize>,
    },
}

/// ` (a, b, c, ... and N more)`: a few names, enough to recognise the pattern.
fn name_list(names: &[String]) -> String {
    const SHOWN: usize = 4;
    if names.is_empty() {
        return String::new();
    }
    let shown: Vec<&str> = names.iter().take(SHOWN).map(String::as_str).collect();
    let more = names.len().saturating_sub(SHOWN);
    if more == 0 {
        format!(" ({})", shown.join(", "))
    } else {
        format!(" ({}, ... and {more} more)", shown.join(", "))
    }
}

/// Result alias for checkpoint operations.
pub type Result<T> = std::result::Result<T, CheckpointError>;
