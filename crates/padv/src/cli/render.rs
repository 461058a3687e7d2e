//! `padv render`: show the text spans a tokenizer will see, and which are actions.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use padv_core::formats::read_inputs;
use padv_core::render::{render_paper, RendererKind};
use padv_core::Trajectory;
use padv_engine::tokenize::{RenderMode, TextTokenizer, TokenizeOptions, Tokenized};
use serde::Serialize;

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

#[derive(Serialize)]
struct SpanOut {
    message_index: usize,
    is_action: bool,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens: Option<usize>,
    /// Segment holding the span, for per-turn rendering.
    #[serde(skip_serializing_if = "Option::is_none")]
    segment: Option<usize>,
}

#[derive(Serialize)]
struct SegmentOut {
    /// Token ids of the segment (the turn's context, then the action).
    ids: Vec<u32>,
    /// Tokens before the action: the context the template gave the model at that turn.
    context_tokens: usize,
    truncated_tokens: usize,
}

#[derive(Serialize)]
struct TrajOut {
    id: String,
    task_id: String,
    /// `single` (one sequence) or `per-turn` (the chat template rewrites history).
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<RenderMode>,
    spans: Vec<SpanOut>,
    /// Token ids of the single sequence.
    #[serde(skip_serializing_if = "Option::is_none")]
    ids: Option<Vec<u32>>,
    /// One per action when the mode is `per-turn`.
    #[serde(skip_serializing_if = "Option::is_none")]
    segments: Option<Vec<SegmentOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_tokens: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    truncated_tokens: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actions_cut: Option<usize>,
    /// Action messages whose tool calls the template does not render.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dropped_tool_calls: Vec<usize>,
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
                tokenized_out(t, &toks, tok)
            }
            _ => TrajOut {
                id: t.id.clone(),
                task_id: t.task_id.clone(),
                mode: None,
                spans: render_paper(t)
                    .into_iter()
                    .map(|s| SpanOut {
                        message_index: s.message_index,
                        is_action: s.is_action,
                        text: s.text,
                        tokens: None,
                        segment: None,
                    })
                    .collect(),
                ids: None,
                segments: None,
                total_tokens: None,
                truncated_tokens: None,
                actions_cut: None,
                dropped_tool_calls: Vec::new(),
            },
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

fn tokenized_out(t: &Trajectory, toks: &Tokenized, tok: &TextTokenizer) -> TrajOut {
    let per_turn = toks.mode == RenderMode::PerTurn;
    let decode = |ids: &[u32]| tok.inner().decode(ids, false).unwrap_or_default();
    let spans = toks
        .segments
        .iter()
        .enumerate()
        .flat_map(|(k, seg)| {
            seg.spans.iter().map(move |s| SpanOut {
                message_index: s.message_index,
                is_action: s.is_action,
                text: decode(&seg.ids[s.start..s.end]),
                tokens: Some(s.len()),
                segment: per_turn.then_some(k),
            })
        })
        .collect();
    let (ids, segments) = match toks.single() {
        Some(seg) => (Some(seg.ids.clone()), None),
        None => (
            None,
            Some(
                toks.segments
                    .iter()
                    .map(|seg| SegmentOut {
                        ids: seg.ids.clone(),
                        context_tokens: seg.spans.first().map_or(seg.ids.len(), |s| s.start),
                        truncated_tokens: seg.truncated_tokens,
                    })
                    .collect(),
            ),
        ),
    };
    TrajOut {
        id: t.id.clone(),
        task_id: t.task_id.clone(),
        mode: Some(toks.mode),
        spans,
        ids,
        segments,
        total_tokens: Some(toks.total_tokens()),
        truncated_tokens: Some(toks.truncated_tokens),
        actions_cut: Some(toks.actions_cut),
        dropped_tool_calls: toks.dropped_tool_calls.clone(),
    }
}

/// Appends the annotated text of one trajectory to `out`.
fn write_text(t: &TrajOut, out: &mut String) {
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
