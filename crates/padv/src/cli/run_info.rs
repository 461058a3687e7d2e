//! run.json: everything needed to tell later what a `padv score` output folder holds and how
//! it was made — padv's version, the command line, the input files (sizes and hashes), the
//! models and their fingerprints, the rendering, the counts and why anything was skipped.

use padv_engine::pipeline::{RunStats, SkipReport};
use serde::Serialize;

use super::inputs::InputFile;

/// A model of the pair.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// What was given on the command line (`--policy` / `--reference`).
    pub spec: String,
    /// The checkpoint folder it resolved to.
    pub dir: String,
    /// The backend fingerprint (weights, dtype, device): the cache key's model part.
    pub fingerprint: String,
}

/// The content of run.json.
#[derive(Debug, Serialize)]
pub struct RunInfo {
    /// padv's version.
    pub padv_version: &'static str,
    /// The command line, as given.
    pub argv: Vec<String>,
    /// The trajectory files read.
    pub inputs: Vec<InputFile>,
    /// The policy.
    pub policy: ModelInfo,
    /// The reference.
    pub reference: ModelInfo,
    /// How trajectories became tokens.
    pub renderer: String,
    /// Left-truncation length in tokens.
    pub max_length: usize,
    /// Trajectories per backend batch.
    pub batch_size: usize,
    /// Whether the cache in OUT/cache was used.
    pub cache: bool,
    /// The records file written beside run.json (records.jsonl or records.parquet).
    pub records_file: String,
    /// Counts and throughput.
    #[serde(flatten)]
    pub stats: RunStats,
    /// Why trajectories or input records were left out, by reason.
    pub skips: SkipReport,
}

/// The process's arguments as text (lossy for non-UTF-8 bytes, which only matter for display).
pub fn argv() -> Vec<String> {
    std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}
