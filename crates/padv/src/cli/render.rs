//! `padv render`: show the text spans a tokenizer will see, and which are actions.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use padv_core::formats::read_inputs;
use padv_core::render::RendererKind;
use padv_engine::tokenize::{RenderMode, RenderedTrajectory, TextTokenizer, TokenizeOptions};

use super::chat_opts::ChatArgs;
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
    /// Print JSON instead of annotated text (with token ids, and the segments when the
    /// template rewrites history).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    chat: ChatArgs,
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
                chat: args.chat.options()?,
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
        let traj = match (&tokenizer, &encoder) {
            (Some(tok), Some(enc)) => {
                let toks = enc
                    .encode(t)
                    .with_context(|| format!("tokenising trajectory {:?}", t.id))?;
                RenderedTrajectory::tokenized(t, &toks, tok)
            }
            _ => RenderedTrajectory::paper(t),
        };
        out.push(traj);
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
        write_text(t, &mut text);
    }
    super::output::print_text(&text)
}

/// Appends the annotated text of one trajectory to `out`.
fn write_text(t: &RenderedTrajectory, out: &mut String) {
    use std::fmt::Write as _;
    // Writing to a String cannot fail.
    let _ = writeln!(out, "=== trajectory {} (task {}) ===", t.id, t.task_id);
    if let (Some(n), Some(tr), Some(cut)) = (t.total_tokens, t.truncated_tokens, t.actions_cut) {
        let _ = writeln!(
            out,
            "    {n} tokens after truncation, {tr} truncated, {cut} action steps cut"
        );
    }
    match (t.mode, &t.segments) {
        (Some(RenderMode::PerTurn), Some(segs)) => {
            let _ = writeln!(
                out,
                "    the chat template rewrites history: {} per-turn segments (each action after \
                 the context the model saw at that turn)",
                segs.len()
            );
        }
        (Some(RenderMode::Single), _) => {
            let _ = writeln!(out, "    one sequence (the template keeps every turn)");
        }
        _ => {}
    }
    if !t.dropped_tool_calls.is_empty() {
        let _ = writeln!(
            out,
            "    WARNING: the template drops the tool calls of action messages {:?}",
            t.dropped_tool_calls
        );
    }
    for s in &t.spans {
        let tag = if s.is_action { "ACTION" } else { "obs   " };
        let toks = s.tokens.map(|n| format!(" {n} tok")).unwrap_or_default();
        let seg = match (s.segment, &t.segments) {
            (Some(k), Some(segs)) => format!(
                " (segment {k}, after {} context tokens)",
                segs.get(k).map_or(0, |x| x.context_tokens)
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "--- [{tag}] message {}{toks}{seg} ---",
            s.message_index
        );
        let _ = writeln!(out, "{:?}", s.text);
    }
}
