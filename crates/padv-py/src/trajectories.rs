//! `padv.read_trajectories` and `padv.render`: the readers and renderers `padv score` and
//! `padv render` use.

use std::path::PathBuf;
use std::str::FromStr;

use padv_core::formats::{expand_inputs, read_file, Format, ReadOptions};
use padv_core::render::RendererKind;
use padv_core::Trajectory;
use padv_engine::tokenize::{
    ChatOptions, FixedDate, RenderedTrajectory, TextTokenizer, TokenizeError, TokenizeOptions,
    DEFAULT_MAX_LENGTH,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::{padv_err, padv_msg};

/// Reads trajectory files (tau2-bench, Who&When, chat JSONL; folders are searched) as
/// `padv score` does. Returns the trajectories (dicts) and the messages of skipped malformed
/// records (strict mode raises on the first instead).
#[pyfunction]
#[pyo3(signature = (paths, *, format=None, strict=false))]
pub fn read_trajectories<'py>(
    py: Python<'py>,
    paths: Vec<PathBuf>,
    format: Option<&str>,
    strict: bool,
) -> PyResult<(Bound<'py, PyAny>, Vec<String>)> {
    let format = format
        .map(|f| Format::from_str(f).map_err(|e| padv_msg(format!("format={f:?}: {e}"))))
        .transpose()?;
    let opts = ReadOptions {
        format,
        strict,
        ..ReadOptions::default()
    };
    let (trajectories, skipped) = py
        .detach(move || {
            let mut trajectories = Vec::new();
            let mut skipped = Vec::new();
            for path in expand_inputs(&paths)? {
                let report = read_file(&path, &opts)?;
                skipped.extend(report.skipped.iter().map(|e| e.to_string()));
                trajectories.extend(report.trajectories);
            }
            Ok::<_, padv_core::formats::FormatError>((trajectories, skipped))
        })
        .map_err(|e| padv_err(&e))?;
    Ok((pythonize::pythonize(py, &trajectories)?, skipped))
}

/// Trajectories from Python: dicts in the trajectory format (what `read_trajectories`
/// returns), each checked by the same deserializer the readers use.
pub(crate) fn trajectories_from(items: &Bound<'_, PyAny>) -> PyResult<Vec<Trajectory>> {
    let list = items
        .cast::<PyList>()
        .map_err(|_| padv_msg("trajectories: expected a list of trajectory dicts"))?;
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            pythonize::depythonize::<Trajectory>(&t)
                .map_err(|e| padv_msg(format!("trajectories[{i}]: {e}")))
        })
        .collect()
}

/// `padv score`'s rendering options (`--renderer`, `--max-length`, `--chat-*`) from the
/// keywords `render` and `score` share, with the same checks as the CLI's flags.
pub(crate) fn tokenize_options(
    renderer: RendererKind,
    max_length: usize,
    template: Option<String>,
    tools: Option<&Bound<'_, PyAny>>,
    enable_thinking: Option<bool>,
    vars: Option<&Bound<'_, PyDict>>,
    date: Option<&str>,
) -> PyResult<TokenizeOptions> {
    let tools: Option<serde_json::Value> = tools
        .map(|t| pythonize::depythonize(t).map_err(|e| padv_msg(format!("chat_tools: {e}"))))
        .transpose()?;
    let mut extra = serde_json::Map::new();
    if let Some(vars) = vars {
        for (k, v) in vars.iter() {
            let key: String = k
                .extract()
                .map_err(|_| padv_msg("chat_vars: keys must be strings"))?;
            let value = pythonize::depythonize(&v)
                .map_err(|e| padv_msg(format!("chat_vars[{key:?}]: {e}")))?;
            extra.insert(key, value);
        }
    }
    let date = date
        .map(|d| FixedDate::parse(d).map_err(|e| padv_msg(format!("chat_date {e}"))))
        .transpose()?;
    let chat =
        ChatOptions::from_parts(template, tools, extra, enable_thinking, date).map_err(padv_msg)?;
    Ok(TokenizeOptions {
        renderer,
        max_length,
        chat,
    })
}

pub(crate) fn renderer(name: &str) -> PyResult<RendererKind> {
    RendererKind::from_str(name).map_err(|e| padv_msg(format!("renderer={name:?}: {e}")))
}

/// What a model sees, in the shape `padv render --json` prints (both build
/// `RenderedTrajectory`): with `model`, the token ids, the action spans `padv score` scores
/// and the token counts; without, the paper renderer's text spans.
#[pyfunction]
#[pyo3(signature = (trajectories, model=None, *, renderer="paper", max_length=DEFAULT_MAX_LENGTH, chat_template=None, chat_tools=None, enable_thinking=None, chat_vars=None, chat_date=None))]
#[allow(clippy::too_many_arguments)]
pub fn render<'py>(
    py: Python<'py>,
    trajectories: &Bound<'py, PyAny>,
    model: Option<PathBuf>,
    renderer: &str,
    max_length: usize,
    chat_template: Option<String>,
    chat_tools: Option<&Bound<'py, PyAny>>,
    enable_thinking: Option<bool>,
    chat_vars: Option<&Bound<'py, PyDict>>,
    chat_date: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    let trajectories = trajectories_from(trajectories)?;
    let kind = self::renderer(renderer)?;
    let Some(model) = model else {
        if kind != RendererKind::Paper {
            return Err(padv_msg(format!(
                "renderer={renderer:?} needs the model (its chat template): pass model="
            )));
        }
        let out: Vec<_> = trajectories.iter().map(RenderedTrajectory::paper).collect();
        return Ok(pythonize::pythonize(py, &out)?);
    };
    let opts = tokenize_options(
        kind,
        max_length,
        chat_template,
        chat_tools,
        enable_thinking,
        chat_vars,
        chat_date,
    )?;
    let out = py
        .detach(move || {
            let tok = TextTokenizer::from_dir(&model)?;
            let encoder = tok.encoder(&opts)?;
            trajectories
                .iter()
                .map(|t| Ok(RenderedTrajectory::tokenized(t, &encoder.encode(t)?, &tok)))
                .collect::<Result<Vec<_>, TokenizeError>>()
        })
        .map_err(|e| padv_err(&e))?;
    Ok(pythonize::pythonize(py, &out)?)
}
