//! The training log: one JSON object per SFT step or RL iteration, appended to
//! `train_log.jsonl` and kept in memory for the manifest.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::agent::{AgentError, Result};

/// One line of the training log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// `sft` or `rl`.
    pub phase: String,
    /// Step (SFT) or iteration (RL), from 1.
    pub step: usize,
    /// The loss that was minimised (SFT: mean NLL per action token; RL: the surrogate).
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// RL: fraction of this iteration's rollouts that reached the goal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<f64>,
    /// RL: mean over rollouts of Σ_t (log π − log π_ref) over sampled tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_kl: Option<f64>,
    /// RL: mean task reward minus β·KL (the objective).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objective: Option<f64>,
    /// Tokens processed per second in this step (forward and backward; RL includes sampling).
    pub tokens_per_s: f64,
    /// RL: the learning rate of this iteration's step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// RL: the distance to the optimum measured after this iteration (validation maps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<super::monitor::KlMeasurement>,
    /// Seconds since training started.
    pub elapsed_s: f64,
}

/// Appends entries to a JSONL file.
#[derive(Debug)]
pub struct TrainLog {
    path: PathBuf,
    file: std::fs::File,
    /// Everything logged so far.
    pub entries: Vec<LogEntry>,
}

impl TrainLog {
    /// Creates (truncates) `path`.
    pub fn create(path: &Path) -> Result<Self> {
        let file = std::fs::File::create(path).map_err(|source| AgentError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(TrainLog {
            path: path.to_path_buf(),
            file,
            entries: Vec::new(),
        })
    }

    /// Writes one entry and logs it with `tracing`.
    pub fn push(&mut self, e: LogEntry) -> Result<()> {
        let line = serde_json::to_string(&e).map_err(|source| AgentError::Json {
            path: self.path.clone(),
            source,
        })?;
        writeln!(self.file, "{line}").map_err(|source| AgentError::Io {
            path: self.path.clone(),
            source,
        })?;
        tracing::info!(target: "padv_gym::train", "{line}");
        self.entries.push(e);
        Ok(())
    }
}
