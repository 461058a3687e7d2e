//! A policy/reference pair on remote servers: what `padv score --policy-endpoint …` and the
//! Python `padv.score(policy_endpoint=…)` both connect through, so the two front ends share
//! the option checks, the API-key rules and the truncation cap.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::backend::{RemoteBackend, RemoteOptions};
use crate::error::RemoteError;
use crate::http::ApiKey;

/// Where the policy and the reference are served and how to reach them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RemotePairSpec {
    /// Base URLs of the policy's servers (a fleet: requests are spread over all of them).
    pub policy_endpoints: Vec<String>,
    /// Base URLs of the reference's servers.
    pub reference_endpoints: Vec<String>,
    /// The policy's model id on its servers (default: the first in `/v1/models`).
    pub policy_model: Option<String>,
    /// The reference's model id on its servers.
    pub reference_model: Option<String>,
    /// Environment variable holding a bearer token for both models' servers. Only its name
    /// is ever shown, never its value.
    pub api_key_env: Option<String>,
    /// Environment variable with the policy servers' token (overrides `api_key_env`).
    pub policy_api_key_env: Option<String>,
    /// Environment variable with the reference servers' token (overrides `api_key_env`).
    pub reference_api_key_env: Option<String>,
    /// Options for both (their `model` and `api_key` are set from the fields above).
    pub options: RemoteOptions,
}

/// A connected pair and the longest sequence both accept.
pub struct RemotePair {
    /// The policy's fleet.
    pub policy: RemoteBackend,
    /// The reference's fleet.
    pub reference: RemoteBackend,
    /// `max_model_len − 1` of the smaller server (one position is generated): the longest
    /// sequence to send, to which scoring caps its truncation.
    pub max_tokens: usize,
}

/// Checks the parts of [`RemoteOptions`] a user sets; the message names the option as
/// `name(option)` gives it (a flag for the CLI, a keyword for Python).
pub fn check_options(
    timeout_s: f64,
    concurrency: usize,
    name: impl Fn(&str) -> String,
) -> Result<Duration, RemoteError> {
    if !(timeout_s.is_finite() && timeout_s > 0.0) {
        return Err(RemoteError::Config(format!(
            "{} {timeout_s}: expected a positive number of seconds",
            name("timeout")
        )));
    }
    if concurrency == 0 {
        return Err(RemoteError::Config(format!(
            "{} must be at least 1",
            name("concurrency")
        )));
    }
    Ok(Duration::from_secs_f64(timeout_s))
}

impl RemotePairSpec {
    /// Whether any endpoint was given (remote scoring instead of local checkpoints).
    pub fn is_remote(&self) -> bool {
        !self.policy_endpoints.is_empty() || !self.reference_endpoints.is_empty()
    }

    /// Connect to both fleets. Token ids come from a local tokenizer: the folder
    /// `tokenizer`, else `policy_dir` (a local copy of the served policy); `vocab_of(dir)`
    /// reads its vocabulary size, which bounds the ids sent. Returns that folder and the
    /// pair. `name(option)` spells an option in errors as the caller's user typed it
    /// (`--reference-endpoint`, `reference_endpoint=`).
    pub fn connect(
        &self,
        tokenizer: Option<&Path>,
        policy_dir: Option<&Path>,
        vocab_of: impl FnOnce(&Path) -> Result<usize, String>,
        name: impl Fn(&str) -> String,
    ) -> Result<(PathBuf, RemotePair), RemoteError> {
        if self.policy_endpoints.is_empty() || self.reference_endpoints.is_empty() {
            return Err(RemoteError::Config(format!(
                "remote scoring needs both {} and {}",
                name("policy_endpoint"),
                name("reference_endpoint")
            )));
        }
        let dir = tokenizer.or(policy_dir).ok_or_else(|| {
            RemoteError::Config(format!(
                "remote scoring needs {} (the served policy's tokenizer or checkpoint folder)",
                name("tokenizer")
            ))
        })?;
        let vocab_size = vocab_of(dir).map_err(|e| {
            RemoteError::Config(format!(
                "reading the vocabulary size in {}: {e}",
                dir.display()
            ))
        })?;
        let key = |field: &str, var: &Option<String>| -> Result<Option<ApiKey>, RemoteError> {
            var.as_deref()
                .map(|v| {
                    ApiKey::from_env(v)
                        .map_err(|e| RemoteError::Config(format!("{} {v}: {e}", name(field))))
                })
                .transpose()
        };
        let both = key("api_key_env", &self.api_key_env)?;
        let policy_key = key("policy_api_key_env", &self.policy_api_key_env)?.or(both.clone());
        let reference_key = key("reference_api_key_env", &self.reference_api_key_env)?.or(both);
        let connect = |model: &'static str,
                       endpoints: &[String],
                       id: &Option<String>,
                       api_key: Option<ApiKey>| {
            let opts = RemoteOptions {
                model: id.clone(),
                api_key,
                ..self.options.clone()
            };
            RemoteBackend::connect(endpoints, vocab_size, opts).map_err(|e| RemoteError::Connect {
                model,
                source: Box::new(e),
            })
        };
        let policy = connect(
            "policy",
            &self.policy_endpoints,
            &self.policy_model,
            policy_key,
        )?;
        let reference = connect(
            "reference",
            &self.reference_endpoints,
            &self.reference_model,
            reference_key,
        )?;
        let max_tokens = policy
            .max_prompt_tokens()
            .min(reference.max_prompt_tokens());
        Ok((
            dir.to_path_buf(),
            RemotePair {
                policy,
                reference,
                max_tokens,
            },
        ))
    }
}

/// The truncation length to score with: `wanted`, or the servers' cap when smaller (with a
/// warning), so that long trajectories are truncated as local scoring truncates them
/// instead of being refused by the servers.
pub fn capped_max_length(wanted: usize, cap: usize) -> usize {
    if cap < wanted {
        tracing::warn!(
            "the maximum length {wanted} is longer than the servers accept; truncating to {cap} \
             tokens"
        );
        cap
    } else {
        wanted
    }
}
