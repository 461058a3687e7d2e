//! What a trajectory looks like to a model, as `padv render --json` prints it and
//! `padv.render` returns it: one shape for every front end, so the CLI and the Python
//! package cannot drift apart.

use padv_core::render::render_paper;
use padv_core::Trajectory;
use serde::Serialize;

use super::{RenderMode, TextTokenizer, Tokenized};

/// One text span of a rendered trajectory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RenderedSpan {
    /// The trajectory message the span comes from.
    pub message_index: usize,
    /// Whether the span is an action (a step that is scored).
    pub is_action: bool,
    /// The span's text (decoded from its tokens when tokenised).
    pub text: String,
    /// Its number of tokens, when tokenised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<usize>,
    /// The segment holding the span, when the template rewrites history (per-turn mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<usize>,
}

/// One per-turn segment: the context the template gave the model at a turn, then the action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RenderedSegment {
    /// Token ids of the segment.
    pub ids: Vec<u32>,
    /// Tokens before the action.
    pub context_tokens: usize,
    /// Tokens cut from the segment's start by the length limit.
    pub truncated_tokens: usize,
}

/// A rendered trajectory: text spans only (paper renderer, no tokenizer), or token ids and
/// counts as `padv score` sees them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RenderedTrajectory {
    /// Trajectory id.
    pub id: String,
    /// Task id.
    pub task_id: String,
    /// `single` (one sequence) or `per-turn` (the chat template rewrites history).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<RenderMode>,
    /// The text spans, in order.
    pub spans: Vec<RenderedSpan>,
    /// Token ids of the single sequence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<u32>>,
    /// One per action when the mode is `per-turn`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<RenderedSegment>>,
    /// Tokens after truncation, all segments together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<usize>,
    /// Tokens cut by the length limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated_tokens: Option<usize>,
    /// Action steps cut away entirely by the length limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actions_cut: Option<usize>,
    /// Action messages whose tool calls the template does not render.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped_tool_calls: Vec<usize>,
}

impl RenderedTrajectory {
    /// The paper renderer's text spans (no tokenizer).
    pub fn paper(t: &Trajectory) -> Self {
        RenderedTrajectory {
            id: t.id.clone(),
            task_id: t.task_id.clone(),
            mode: None,
            spans: render_paper(t)
                .into_iter()
                .map(|s| RenderedSpan {
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
        }
    }

    /// `t` as the encoder tokenised it (`toks`), span texts decoded with `tok`.
    pub fn tokenized(t: &Trajectory, toks: &Tokenized, tok: &TextTokenizer) -> Self {
        let per_turn = toks.mode == RenderMode::PerTurn;
        let decode = |ids: &[u32]| tok.inner().decode(ids, false).unwrap_or_default();
        let spans = toks
            .segments
            .iter()
            .enumerate()
            .flat_map(|(k, seg)| {
                seg.spans.iter().map(move |s| RenderedSpan {
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
                        .map(|seg| RenderedSegment {
                            ids: seg.ids.clone(),
                            context_tokens: seg.spans.first().map_or(seg.ids.len(), |s| s.start),
                            truncated_tokens: seg.truncated_tokens,
                        })
                        .collect(),
                ),
            ),
        };
        RenderedTrajectory {
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
}
