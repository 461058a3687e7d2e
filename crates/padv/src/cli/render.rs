//! `padv render`: show the text spans a tokenizer will see, and which are actions.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use padv_core::formats::read_inputs;
use padv_core::render::{render_paper, RendererKind};
use padv_engine::tokenize::{TextTokenizer, TokenizeOptions};
use serde::Serialize;

use super::TrajectoryInput;

/// Arguments of `padv render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    input: TrajectoryInput,
    /// Which rendering: the paper's text spans, or the model's chat template.
    #[arg(long, value_enum, default_value_t = RendererKind::Paper)]
    renderer: RendererKind,
    /// Checkpoint (or tokenizer) folder: needed for `chat-template`, and to show token counts.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Only the trajectory with this id.
    #[arg(long)]
    id: Option<String>,
    /// At most this many trajectories.
    #[arg(long, default_value_t = 1)]
    limit: usize,
    /// Left-truncate token sequences to this many tokens (as `padv score` does).
    #[arg(long, default_value_t = padv_engine::tokenize::DEFAULT_MAX_LENGTH)]
    max_length: usize,
    /// Print JSON instead of annotated text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct SpanOut {
    message_index: usize,
    is_action: bool,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens: Option<usize>,
}

#[derive(Serialize)]
struct TrajOut {
    id: String,
    task_id: String,
    spans: Vec<SpanOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_tokens: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    truncated_tokens: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actions_cut: Option<usize>,
}

/// Run `padv render`.
pub fn run(args: RenderArgs) -> anyhow::Result<()> {
    let reports =
        read_inputs(&args.input.input, &args.input.options()).context("reading trajectories")?;
    let tokenizer = match &args.model {
        Some(dir) => Some(
            TextTokenizer::from_dir(dir)
                .with_context(|| format!("loading the tokenizer from {}", dir.display()))?,
        ),
        None => None,
    };
    if args.renderer == RendererKind::ChatTemplate && tokenizer.is_none() {
        anyhow::bail!("--renderer chat-template needs --model DIR (the checkpoint whose chat template to run)");
    }
    let encoder = match &tokenizer {
        Some(tok) => Some(
            tok.encoder(&TokenizeOptions {
                renderer: args.renderer,
                max_length: args.max_length,
                ..TokenizeOptions::default()
            })
            .context("preparing the renderer")?,
        ),
        None => None,
    };
    let selected = reports
        .iter()
        .flat_map(|r| r.trajectories.iter())
        .filter(|t| args.id.as_deref().is_none_or(|id| t.id == id))
        .take(args.limit);
    let mut out = Vec::new();
    for t in selected {
        let (spans, total, truncated, cut) = match (&tokenizer, &encoder) {
            (Some(tok), Some(enc)) => {
                let toks = enc
                    .encode(t)
                    .with_context(|| format!("tokenising trajectory {:?}", t.id))?;
                let spans = toks
                    .spans
                    .iter()
                    .map(|s| SpanOut {
                        message_index: s.message_index,
                        is_action: s.is_action,
                        text: tok
                            .inner()
                            .decode(&toks.ids[s.start..s.end], false)
                            .unwrap_or_default(),
                        tokens: Some(s.end - s.start),
                    })
                    .collect();
                (
                    spans,
                    Some(toks.ids.len()),
                    Some(toks.truncated_tokens),
                    Some(toks.actions_cut),
                )
            }
            _ => (
                render_paper(t)
                    .into_iter()
                    .map(|s| SpanOut {
                        message_index: s.message_index,
                        is_action: s.is_action,
                        text: s.text,
                        tokens: None,
                    })
                    .collect(),
                None,
                None,
                None,
            ),
        };
        out.push(TrajOut {
            id: t.id.clone(),
            task_id: t.task_id.clone(),
            spans,
            total_tokens: total,
            truncated_tokens: truncated,
            actions_cut: cut,
        });
    }
    if out.is_empty() {
        anyhow::bail!("no trajectory matched");
    }
    if args.json {
        return super::output::emit(&out, None);
    }
    // One locked write (see output::print_text): a closed pipe (`| head`) ends quietly.
    let mut text = String::new();
    for t in &out {
        text.push_str(&format!(
            "=== trajectory {} (task {}) ===\n",
            t.id, t.task_id
        ));
        if let (Some(n), Some(tr), Some(cut)) = (t.total_tokens, t.truncated_tokens, t.actions_cut)
        {
            text.push_str(&format!(
                "    {n} tokens after truncation, {tr} truncated, {cut} action steps cut\n"
            ));
        }
        for s in &t.spans {
            let tag = if s.is_action { "ACTION" } else { "obs   " };
            let toks = s.tokens.map(|n| format!(" {n} tok")).unwrap_or_default();
            text.push_str(&format!(
                "--- [{tag}] message {}{toks} ---\n",
                s.message_index
            ));
            text.push_str(&format!("{:?}\n", s.text));
        }
    }
    super::output::print_text(&text)
}
