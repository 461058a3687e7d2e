//! History-rewriting chat templates, turn by turn, against transformers.
//!
//! `tests/fixtures/turn_cases.json` (written by `scripts/make_render_fixtures.py`) holds, for
//! a Qwen3-style template (`tokenizer/additional_chat_templates/qwen3.jinja`: drops the
//! `<think>` reasoning of assistant turns before the last user query, renders tool calls,
//! reads `enable_thinking`), the ids transformers 5.24 gives for each action's segment:
//! `apply_chat_template(msgs[:i], add_generation_prompt=True, tokenize=True)` followed by the
//! generated text of turn i encoded alone. Every expected number comes from Python.

use std::path::{Path, PathBuf};

use padv_core::render::RendererKind;
use padv_core::{LogprobBackend, StatsRequest, Trajectory};
use padv_engine::logprobs::{EngineOptions, LocalEngine};
use padv_engine::pair::score_pairs;
use padv_engine::tokenize::{
    ChatOptions, RenderMode, TemplateSource, TextTokenizer, TokenizeOptions, Tokenized,
    DEFAULT_MAX_LENGTH,
};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

struct Case {
    name: String,
    trajectory: Trajectory,
    raw: Value,
}

fn fixture_json() -> Value {
    let text = std::fs::read_to_string(fixtures().join("turn_cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn cases() -> Vec<Case> {
    fixture_json()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|raw| Case {
            name: raw["name"].as_str().unwrap().to_string(),
            trajectory: serde_json::from_value(raw["trajectory"].clone()).unwrap(),
            raw: raw.clone(),
        })
        .collect()
}

fn options(case: &Case) -> TokenizeOptions {
    let name = case.raw["template"].as_str().unwrap();
    TokenizeOptions {
        renderer: RendererKind::ChatTemplate,
        max_length: DEFAULT_MAX_LENGTH,
        chat: ChatOptions {
            template: (name != "default").then(|| name.to_string()),
            tools: case.raw.get("tools").cloned(),
            extra: case.raw["extra"].as_object().cloned().unwrap_or_default(),
            ..ChatOptions::default()
        },
    }
}

fn encode(tok: &TextTokenizer, case: &Case) -> Tokenized {
    tok.encoder(&options(case))
        .unwrap()
        .encode(&case.trajectory)
        .unwrap()
}

fn ids_of(v: &Value) -> Vec<u32> {
    serde_json::from_value(v.clone()).unwrap()
}

#[test]
fn per_turn_segments_match_transformers_turn_by_turn() {
    let tok = TextTokenizer::from_dir(&fixtures().join("tokenizer")).unwrap();
    let mut per_turn = 0;
    for case in cases() {
        let got = encode(&tok, &case);
        let rewrites = case.raw["rewrites"].as_bool().unwrap();
        let want_segments = case.raw["segments"].as_array().unwrap();
        if !rewrites {
            // The template keeps history: one sequence, identical to apply_chat_template.
            assert_eq!(got.mode, RenderMode::Single, "{}", case.name);
            let seq = got.single().unwrap();
            assert_eq!(seq.ids, ids_of(&case.raw["full_ids"]), "{}", case.name);
            continue;
        }
        per_turn += 1;
        assert_eq!(got.mode, RenderMode::PerTurn, "{}", case.name);
        assert_eq!(got.segments.len(), want_segments.len(), "{}", case.name);
        for (seg, want) in got.segments.iter().zip(want_segments) {
            let i = want["message_index"].as_u64().unwrap() as usize;
            assert_eq!(seg.ids, ids_of(&want["ids"]), "{} message {i}", case.name);
            assert_eq!(seg.spans.len(), 1);
            let s = seg.spans[0];
            let start = want["start"].as_u64().unwrap() as usize;
            assert_eq!(
                (s.message_index, s.start, s.end, s.is_action),
                (i, start, seg.ids.len(), true),
                "{} message {i}",
                case.name
            );
            // The span is the generated text, decoded back.
            let text = tok.inner().decode(&seg.ids[s.start..], false).unwrap();
            assert_eq!(text, want["generated_text"].as_str().unwrap());
        }
        assert!(got.dropped_tool_calls.is_empty(), "{}", case.name);
    }
    assert!(per_turn >= 3, "too few per-turn cases: {per_turn}");
}

#[test]
fn reasoning_of_earlier_turns_is_in_its_own_turn_only() {
    let tok = TextTokenizer::from_dir(&fixtures().join("tokenizer")).unwrap();
    let case = cases()
        .into_iter()
        .find(|c| c.name == "qwen3_reasoning_tools")
        .unwrap();
    let got = encode(&tok, &case);
    let decode = |ids: &[u32]| tok.inner().decode(ids, false).unwrap();
    // Turn 2's own segment holds its reasoning; the last segment's context (after a new user
    // query) shows turn 2 without it.
    let first = &got.segments[0];
    assert!(decode(&first.ids[first.spans[0].start..]).contains("I will call the tool"));
    let last = got.segments.last().unwrap();
    let context = decode(&last.ids[..last.spans[0].start]);
    assert!(!context.contains("I will call the tool"), "{context}");
    assert!(context.contains("Let me check that."));
}

#[test]
fn content_null_renders_like_transformers_none() {
    // transformers drops None-valued keys, and every fixture template renders a
    // tool-call-only turn the same with content None, omitted, or "".
    let report = fixture_json()["content_null"].clone();
    for (name, r) in report.as_object().unwrap() {
        assert_eq!(r["none_equals_omitted"], true, "{name}");
        assert_eq!(r["none_equals_empty"], true, "{name}");
    }
    // The no-thinking case has content-null tool-call turns; its segments matched above.
    let case = cases()
        .into_iter()
        .find(|c| c.name == "qwen3_no_thinking")
        .unwrap();
    assert!(case
        .trajectory
        .messages
        .iter()
        .any(|m| m.is_action && m.content.is_none() && !m.tool_calls.is_empty()));
}

#[test]
fn dropped_tool_calls_are_reported() {
    let tok = TextTokenizer::from_dir(&fixtures().join("tokenizer")).unwrap();
    // A template that never renders tool calls.
    let src = TemplateSource {
        name: "no_tools".into(),
        source: "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n\
                 {% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
            .into(),
        origin: "test".into(),
    };
    let template = padv_engine::tokenize::ChatTemplate::compile(
        &src,
        tok.special_tokens(),
        &ChatOptions::default(),
    )
    .unwrap();
    let case = cases()
        .into_iter()
        .find(|c| c.name == "qwen3_reasoning_tools")
        .unwrap();
    let got = tok
        .tokenize_chat(&template, &case.trajectory, DEFAULT_MAX_LENGTH)
        .unwrap();
    let with_calls: Vec<usize> = case
        .trajectory
        .messages
        .iter()
        .enumerate()
        .filter(|(_, m)| m.is_action && !m.tool_calls.is_empty())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(with_calls, vec![2, 6]);
    assert_eq!(got.dropped_tool_calls, with_calls);
    // The Qwen3-style template renders them.
    assert!(encode(&tok, &case).dropped_tool_calls.is_empty());
}

/// Log-probs from `score_pairs` (one batch per model, prefix sharing in the engine) equal
/// independent full passes over each segment.
#[test]
fn segment_logprobs_equal_independent_passes() {
    let dir = fixtures().join("models/qwen2");
    let load = || LocalEngine::load(&dir, EngineOptions::default()).unwrap();
    let (policy, reference, check) = (load(), load(), load());
    let tok = TextTokenizer::from_dir(&fixtures().join("tokenizer")).unwrap();
    let cs = cases();
    let toks: Vec<Tokenized> = cs.iter().map(|c| encode(&tok, c)).collect();
    let items: Vec<(&Trajectory, &Tokenized)> =
        cs.iter().map(|c| &c.trajectory).zip(toks.iter()).collect();
    let outs = score_pairs(&items, &policy, &reference, None);
    let stats = StatsRequest {
        distribution_stats: true,
    };
    let mut compared = 0;
    for ((case, t), out) in cs.iter().zip(&toks).zip(outs) {
        let out = out.unwrap();
        let mut steps = out.record.steps.iter();
        for seg in &t.segments {
            for span in seg.spans.iter().filter(|s| s.is_action) {
                let step = steps.next().unwrap();
                assert_eq!(step.message_index, span.message_index);
                let targets: Vec<usize> = seg.action_targets(span).collect();
                let want = check.score(&seg.ids, &targets, stats).unwrap();
                let pairs = [
                    (&step.policy, &want.logprob),
                    (step.reference.as_ref().unwrap(), &want.logprob),
                    (
                        step.policy_entropy.as_ref().unwrap(),
                        want.entropy.as_ref().unwrap(),
                    ),
                    (
                        step.policy_topk_mean.as_ref().unwrap(),
                        want.topk_mean.as_ref().unwrap(),
                    ),
                ];
                for (got, want) in pairs {
                    assert_eq!(got.len(), want.len());
                    for (a, b) in got.iter().zip(want) {
                        assert!((a - b).abs() <= 1e-5, "{}: {a} vs {b}", case.name);
                        compared += 1;
                    }
                }
            }
        }
        assert!(steps.next().is_none());
    }
    assert!(compared > 100, "compared only {compared} values");
}
