//! `padv.score`: `padv score`'s pipeline (the same library call: batching, cache, skip
//! policy) on a local policy/reference pair, or on vLLM/SGLang servers (the same
//! `padv_remote::RemotePairSpec` as `padv score --policy-endpoint`).

use std::path::{Path, PathBuf};

use padv_core::record::cache::LogprobCache;
use padv_core::LogprobBackend;
use padv_engine::checkpoint::resolve_model_path;
use padv_engine::logprobs::{EngineOptions, LocalEngine};
use padv_engine::pipeline::{score_trajectories, PipelineOptions, Progress, DEFAULT_BATCH_SIZE};
use padv_engine::tokenize::{model_vocab_size, pair_tokenizer, DEFAULT_MAX_LENGTH};
use padv_remote::{capped_max_length, check_options, EngineKind, RemoteOptions, RemotePairSpec};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::padv_msg;
use crate::records::Records;
use crate::trajectories::{renderer, tokenize_options, trajectories_from};

/// A keyword's spelling in errors.
fn keyword(option: &str) -> String {
    format!("{option}=")
}

/// Scores trajectories with a local policy/reference pair (folders or `org/name` in the
/// local Hugging Face cache), or with servers (`policy_endpoint` / `reference_endpoint`
/// lists, the tokenizer from `tokenizer` or the local `policy` folder; the other remote
/// keywords are `padv score`'s flags). Returns the records and the run's statistics and
/// skips (what `padv score` writes to run.json). `progress(done, total)` is called after
/// each batch.
#[pyfunction]
#[pyo3(signature = (policy, reference, trajectories, *, renderer="paper", max_length=DEFAULT_MAX_LENGTH, batch_size=DEFAULT_BATCH_SIZE, strict=false, cache_dir=None, chat_template=None, chat_tools=None, enable_thinking=None, chat_vars=None, chat_date=None, progress=None, policy_endpoint=None, reference_endpoint=None, policy_model=None, reference_model=None, tokenizer=None, engine_kind=None, concurrency=8, timeout=600.0, retries=5, top_k=20, error_budget=20, max_model_len=None, api_key_env=None, policy_api_key_env=None, reference_api_key_env=None))]
#[allow(clippy::too_many_arguments)]
pub fn score<'py>(
    py: Python<'py>,
    policy: Option<&str>,
    reference: Option<&str>,
    trajectories: &Bound<'py, PyAny>,
    renderer: &str,
    max_length: usize,
    batch_size: usize,
    strict: bool,
    cache_dir: Option<PathBuf>,
    chat_template: Option<String>,
    chat_tools: Option<&Bound<'py, PyAny>>,
    enable_thinking: Option<bool>,
    chat_vars: Option<&Bound<'py, PyDict>>,
    chat_date: Option<&str>,
    progress: Option<Py<PyAny>>,
    policy_endpoint: Option<Vec<String>>,
    reference_endpoint: Option<Vec<String>>,
    policy_model: Option<String>,
    reference_model: Option<String>,
    tokenizer: Option<PathBuf>,
    engine_kind: Option<&str>,
    concurrency: usize,
    timeout: f64,
    retries: usize,
    top_k: usize,
    error_budget: usize,
    max_model_len: Option<usize>,
    api_key_env: Option<String>,
    policy_api_key_env: Option<String>,
    reference_api_key_env: Option<String>,
) -> PyResult<(Records, Bound<'py, PyAny>)> {
    if max_length == 0 {
        return Err(padv_msg(
            "max_length=0 keeps no token of any trajectory: give a positive length",
        ));
    }
    let trajectories = trajectories_from(trajectories)?;
    if trajectories.is_empty() {
        return Err(padv_msg("no trajectories to score"));
    }
    let opts = tokenize_options(
        self::renderer(renderer)?,
        max_length,
        chat_template,
        chat_tools,
        enable_thinking,
        chat_vars,
        chat_date,
    )?;
    let remote = RemotePairSpec {
        policy_endpoints: policy_endpoint.unwrap_or_default(),
        reference_endpoints: reference_endpoint.unwrap_or_default(),
        policy_model,
        reference_model,
        api_key_env,
        policy_api_key_env,
        reference_api_key_env,
        options: RemoteOptions {
            kind: match engine_kind {
                None => None,
                Some("vllm") => Some(EngineKind::Vllm),
                Some("sglang") => Some(EngineKind::Sglang),
                Some(other) => {
                    return Err(padv_msg(format!(
                        "engine_kind={other:?}: expected \"vllm\" or \"sglang\""
                    )))
                }
            },
            concurrency,
            timeout: check_options(timeout, concurrency, keyword)
                .map_err(|e| padv_msg(e.to_string()))?,
            retries,
            top_k,
            error_budget: error_budget.max(1),
            max_model_len,
            ..RemoteOptions::default()
        },
    };
    let (policy, reference) = (policy.map(str::to_owned), reference.map(str::to_owned));
    let run = py.detach(move || -> Result<_, String> {
        let find = |which: &str, spec: &str| {
            resolve_model_path(spec)
                .map_err(|e| format!("finding the {which} checkpoint {spec:?}: {e}"))
        };
        let load = |which: &str, dir: &Path| {
            LocalEngine::load(dir, EngineOptions::default())
                .map_err(|e| format!("loading the {which} checkpoint {}: {e}", dir.display()))
        };
        let (policy_dir, reference_dir, policy, reference, max_length): (
            PathBuf,
            PathBuf,
            Box<dyn LogprobBackend>,
            Box<dyn LogprobBackend>,
            usize,
        ) = if remote.is_remote() {
            let policy_dir = policy.as_deref().map(|p| find("policy", p)).transpose()?;
            let (dir, pair) = remote
                .connect(
                    tokenizer.as_deref(),
                    policy_dir.as_deref(),
                    |d| model_vocab_size(d).map_err(|e| e.to_string()),
                    keyword,
                )
                .map_err(|e| e.to_string())?;
            let max_length = capped_max_length(opts.max_length, pair.max_tokens);
            (
                dir.clone(),
                dir,
                Box::new(pair.policy),
                Box::new(pair.reference),
                max_length,
            )
        } else {
            let (Some(policy), Some(reference)) = (&policy, &reference) else {
                return Err(
                    "local scoring needs policy and reference checkpoints (or give \
                            policy_endpoint= and reference_endpoint=)"
                        .to_string(),
                );
            };
            let policy_dir = find("policy", policy)?;
            let reference_dir = find("reference", reference)?;
            let p = load("policy", &policy_dir)?;
            let r = load("reference", &reference_dir)?;
            (
                policy_dir,
                reference_dir,
                Box::new(p),
                Box::new(r),
                opts.max_length,
            )
        };
        let opts = padv_engine::tokenize::TokenizeOptions { max_length, ..opts };
        let tok = pair_tokenizer(&policy_dir, &reference_dir).map_err(|e| e.to_string())?;
        let encoder = tok.encoder(&opts).map_err(|e| e.to_string())?;
        let cache = cache_dir
            .map(|d| {
                LogprobCache::open(&d)
                    .map_err(|e| format!("opening the cache {}: {e}", d.display()))
            })
            .transpose()?;
        let mut report = |p: &Progress| {
            if let Some(cb) = &progress {
                Python::attach(|py| {
                    if let Err(e) = cb.call1(py, (p.done, p.total)) {
                        // A broken progress bar must not lose the run; say it once per batch.
                        e.print(py);
                    }
                });
            }
        };
        score_trajectories(
            &trajectories,
            &encoder,
            policy.as_ref(),
            reference.as_ref(),
            &PipelineOptions {
                strict,
                cache: cache.as_ref(),
                batch_size,
            },
            &mut report,
        )
        .map_err(|e| e.to_string())
    });
    let run = run.map_err(padv_msg)?;
    let info = serde_json::json!({ "stats": run.stats, "skips": run.skips });
    Ok((Records::new(run.records), pythonize::pythonize(py, &info)?))
}
