//! `padv.score`: `padv score`'s pipeline (the same library call: batching, cache, skip
//! policy) on a local policy/reference pair.

use std::path::PathBuf;

use padv_core::record::cache::LogprobCache;
use padv_engine::checkpoint::resolve_model_path;
use padv_engine::logprobs::{EngineOptions, LocalEngine};
use padv_engine::pipeline::{score_trajectories, PipelineOptions, Progress, DEFAULT_BATCH_SIZE};
use padv_engine::tokenize::{pair_tokenizer, DEFAULT_MAX_LENGTH};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::padv_msg;
use crate::records::Records;
use crate::trajectories::{renderer, tokenize_options, trajectories_from};

/// Scores trajectories with a local policy/reference pair (folders or `org/name` in the
/// local Hugging Face cache). Returns the records and the run's statistics and skips (what
/// `padv score` writes to run.json). `progress(done, total)` is called after each batch.
#[pyfunction]
#[pyo3(signature = (policy, reference, trajectories, *, renderer="paper", max_length=DEFAULT_MAX_LENGTH, batch_size=DEFAULT_BATCH_SIZE, strict=false, cache_dir=None, chat_template=None, chat_tools=None, enable_thinking=None, chat_vars=None, chat_date=None, progress=None))]
#[allow(clippy::too_many_arguments)]
pub fn score<'py>(
    py: Python<'py>,
    policy: &str,
    reference: &str,
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
    let (policy, reference) = (policy.to_owned(), reference.to_owned());
    let run = py.detach(move || -> Result<_, String> {
        let load = |which: &str, spec: &str| {
            let dir = resolve_model_path(spec)
                .map_err(|e| format!("finding the {which} checkpoint {spec:?}: {e}"))?;
            let engine = LocalEngine::load(&dir, EngineOptions::default())
                .map_err(|e| format!("loading the {which} checkpoint {}: {e}", dir.display()))?;
            Ok::<_, String>((dir, engine))
        };
        let (policy_dir, policy) = load("policy", &policy)?;
        let (reference_dir, reference) = load("reference", &reference)?;
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
            &policy,
            &reference,
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
