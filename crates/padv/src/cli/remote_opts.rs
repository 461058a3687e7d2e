//! Flags that put `padv score` on vLLM / SGLang servers instead of local checkpoints.
//!
//! Tokenisation stays local (`--tokenizer`, or the policy checkpoint folder) and token ids are
//! sent, so the policy, the reference and local scoring all see identical ids.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use padv_core::LogprobBackend;
use padv_engine::tokenize::model_vocab_size;
use padv_remote::{check_options, EngineKind, RemoteOptions, RemotePairSpec};

/// Engine behind the endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineKindArg {
    /// vLLM (`POST /v1/completions` with `prompt_logprobs`).
    Vllm,
    /// SGLang (`POST /generate` with `return_logprob`).
    Sglang,
}

/// What [`RemoteArgs::build`] returns: the tokenizer folder, the policy, the reference, and
/// the longest sequence both servers accept (`max_model_len − 1`: one position is generated),
/// to which `padv score` caps its left truncation.
pub type RemoteBackends = (
    PathBuf,
    Box<dyn LogprobBackend>,
    Box<dyn LogprobBackend>,
    usize,
);

/// Remote-engine flags.
#[derive(Debug, Clone, Args)]
pub struct RemoteArgs {
    /// Base URL of a server of the policy (e.g. http://gpu1:8000); repeat or comma-separate
    /// for a fleet: requests are spread over all of them.
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    pub policy_endpoint: Vec<String>,
    /// Base URL of a server of the reference model; repeat or comma-separate for a fleet.
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    pub reference_endpoint: Vec<String>,
    /// The policy's model id on its servers, when a server lists several in /v1/models
    /// (vLLM with LoRA adapters, `padv serve`); default: the first listed.
    #[arg(long, value_name = "NAME")]
    pub policy_model: Option<String>,
    /// The reference's model id on its servers (see --policy-model).
    #[arg(long, value_name = "NAME")]
    pub reference_model: Option<String>,
    /// Tokenizer folder (a checkpoint or tokenizer folder of the served policy; its
    /// config.json gives the vocabulary size). Default: the policy checkpoint folder.
    #[arg(long, value_name = "DIR")]
    pub tokenizer: Option<PathBuf>,
    /// Engine behind the endpoints (default: detected from /get_model_info and /v1/models).
    #[arg(long, value_enum)]
    pub engine_kind: Option<EngineKindArg>,
    /// Requests in flight per endpoint.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Seconds one HTTP exchange may take before it is abandoned and retried.
    #[arg(long, default_value_t = 600.0, value_name = "SECONDS")]
    pub timeout: f64,
    /// Retries of a request after a connection error, timeout, 429 or 5xx (exponential
    /// backoff with jitter).
    #[arg(long, default_value_t = 5)]
    pub retries: usize,
    /// Top-k log-probs asked per position; 20 makes the top-20 mean (DeepConf) exact, fewer
    /// leaves it out of the records. vLLM needs `--max-logprobs` ≥ this.
    #[arg(long, default_value_t = 20)]
    pub top_k: usize,
    /// Failed attempts an endpoint may have before it gets no more requests; when every
    /// endpoint of a model is out, the run stops with what it has cached.
    #[arg(long, default_value_t = 20)]
    pub error_budget: usize,
    /// Context length to assume instead of what the server reports.
    #[arg(long, value_name = "TOKENS")]
    pub max_model_len: Option<usize>,
    /// Environment variable holding a bearer token for both models' servers (`vllm serve
    /// --api-key`, `padv serve --api-key`). Only the variable's name is ever printed or
    /// written to run.json, never its value.
    #[arg(long, value_name = "NAME")]
    pub api_key_env: Option<String>,
    /// Environment variable with the policy servers' token, when it differs (overrides
    /// --api-key-env for the policy).
    #[arg(long, value_name = "NAME")]
    pub policy_api_key_env: Option<String>,
    /// Environment variable with the reference servers' token (overrides --api-key-env for
    /// the reference).
    #[arg(long, value_name = "NAME")]
    pub reference_api_key_env: Option<String>,
}

/// The flag spelling of a [`RemotePairSpec`] option, for errors.
fn flag(option: &str) -> String {
    format!("--{}", option.replace('_', "-"))
}

impl RemoteArgs {
    /// Whether any endpoint was given (remote scoring instead of local checkpoints).
    pub fn is_remote(&self) -> bool {
        self.spec_parts().is_remote()
    }

    /// Backend options from the flags.
    pub fn options(&self) -> anyhow::Result<RemoteOptions> {
        let timeout = check_options(self.timeout, self.concurrency, flag)?;
        Ok(RemoteOptions {
            kind: self.engine_kind.map(|k| match k {
                EngineKindArg::Vllm => EngineKind::Vllm,
                EngineKindArg::Sglang => EngineKind::Sglang,
            }),
            concurrency: self.concurrency,
            timeout,
            retries: self.retries,
            top_k: self.top_k,
            error_budget: self.error_budget.max(1),
            max_model_len: self.max_model_len,
            ..RemoteOptions::default()
        })
    }

    /// The pair's endpoints, models and key variables (options at their defaults).
    fn spec_parts(&self) -> RemotePairSpec {
        RemotePairSpec {
            policy_endpoints: self.policy_endpoint.clone(),
            reference_endpoints: self.reference_endpoint.clone(),
            policy_model: self.policy_model.clone(),
            reference_model: self.reference_model.clone(),
            api_key_env: self.api_key_env.clone(),
            policy_api_key_env: self.policy_api_key_env.clone(),
            reference_api_key_env: self.reference_api_key_env.clone(),
            options: RemoteOptions::default(),
        }
    }

    /// Connects to both fleets (`RemotePairSpec::connect`, which `padv.score` uses too).
    /// The tokenizer folder is `--tokenizer`, else `policy_dir` (a local copy of the policy
    /// checkpoint given with `--policy`).
    pub fn build_with_policy_dir(
        &self,
        policy_dir: Option<&Path>,
    ) -> anyhow::Result<RemoteBackends> {
        let spec = RemotePairSpec {
            options: self.options()?,
            ..self.spec_parts()
        };
        let (dir, pair) = spec.connect(
            self.tokenizer.as_deref(),
            policy_dir,
            |d| model_vocab_size(d).map_err(|e| e.to_string()),
            flag,
        )?;
        tracing::info!(
            "remote policy {}, reference {}",
            pair.policy.fingerprint(),
            pair.reference.fingerprint()
        );
        Ok((
            dir,
            Box::new(pair.policy),
            Box::new(pair.reference),
            pair.max_tokens,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::time::Duration;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        remote: RemoteArgs,
    }

    fn parse(args: &[&str]) -> RemoteArgs {
        Cli::try_parse_from(std::iter::once("padv").chain(args.iter().copied()))
            .unwrap()
            .remote
    }

    #[test]
    fn flags_parse_and_fleets_split_on_commas() {
        let a = parse(&[
            "--policy-endpoint",
            "http://a:1,http://b:2",
            "--policy-endpoint",
            "http://c:3",
            "--reference-endpoint",
            "http://d:4",
            "--engine-kind",
            "sglang",
            "--timeout",
            "2.5",
        ]);
        assert!(a.is_remote());
        assert_eq!(
            a.policy_endpoint,
            ["http://a:1", "http://b:2", "http://c:3"]
        );
        let o = a.options().unwrap();
        assert_eq!(o.kind, Some(EngineKind::Sglang));
        assert_eq!(o.timeout, Duration::from_millis(2500));
        assert_eq!(o.top_k, 20);
        assert!(!parse(&[]).is_remote());
    }

    #[test]
    fn missing_pieces_are_named() {
        let e = parse(&["--policy-endpoint", "http://a:1"])
            .build_with_policy_dir(None)
            .err()
            .unwrap();
        assert!(e.to_string().contains("--reference-endpoint"), "{e}");
        let e = parse(&[
            "--policy-endpoint",
            "http://a:1",
            "--reference-endpoint",
            "http://b:1",
        ])
        .build_with_policy_dir(None)
        .err()
        .unwrap();
        assert!(e.to_string().contains("--tokenizer"), "{e}");
        let e = parse(&["--timeout", "0"]).options().unwrap_err();
        assert!(e.to_string().contains("--timeout"), "{e}");
    }

    #[test]
    fn vocab_size_comes_from_config_json() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"text_config": {"vocab_size": 262208}}"#,
        )
        .unwrap();
        assert_eq!(model_vocab_size(dir.path()).unwrap(), 262208);
    }
}
