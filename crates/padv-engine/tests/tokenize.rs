//! Parity of padv's rendering and tokenisation with Python (transformers 5.24 / tokenizers /
//! jinja2), on the fixtures written by `scripts/make_render_fixtures.py`:
//! `tests/fixtures/{tokenizer,tokenizer_bos}/` (a tiny byte-level BPE, one without and one with
//! a BOS token, plus four chat templates) and `tests/fixtures/render_cases.json` (trajectories
//! with the expected paper texts, ids and token spans, and per-template chat ids, action spans
//! and assistant masks). Every expected number comes from the Python side.

use std::path::{Path, PathBuf};

use padv_core::render::render_paper;
use padv_core::render::RendererKind;
use padv_core::Trajectory;
use padv_engine::tokenize::{
    check_same_vocabulary, ChatOptions, RenderMode, Segment, TextTokenizer, TokenizeError,
    TokenizeOptions, Tokenized, DEFAULT_MAX_LENGTH,
};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn load(name: &str) -> TextTokenizer {
    TextTokenizer::from_dir(&fixtures().join(name)).unwrap()
}

struct Case {
    name: String,
    trajectory: Trajectory,
    raw: Value,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(fixtures().join("render_cases.json")).unwrap();
    let all: Vec<Value> = serde_json::from_str(&text).unwrap();
    all.into_iter()
        .map(|raw| Case {
            name: raw["name"].as_str().unwrap().to_string(),
            trajectory: serde_json::from_value(raw["trajectory"].clone()).unwrap(),
            raw,
        })
        .collect()
}

/// The only sequence of a single-mode result.
fn seq(t: &Tokenized) -> &Segment {
    t.single().expect("one token sequence")
}

fn ids_of(v: &Value) -> Vec<u32> {
    serde_json::from_value(v.clone()).unwrap()
}

/// `[[start, end, message_index, is_action], ...]` from a Tokenized, for comparison.
fn paper_spans(t: &Tokenized) -> Value {
    Value::Array(
        seq(t)
            .spans
            .iter()
            .map(|s| serde_json::json!([s.start, s.end, s.message_index, s.is_action]))
            .collect(),
    )
}

/// `[[start, end, message_index], ...]` of the action spans.
fn action_spans(t: &Tokenized) -> Value {
    Value::Array(
        t.action_spans()
            .map(|(_, s)| serde_json::json!([s.start, s.end, s.message_index]))
            .collect(),
    )
}

#[test]
fn fixture_tokenizers_load() {
    let plain = load("tokenizer");
    let bos = load("tokenizer_bos");
    assert_eq!(plain.bos_token_id(), None);
    let bos_id = bos.bos_token_id().expect("tokenizer_bos declares <|bos|>");
    assert_eq!(bos.inner().id_to_token(bos_id).as_deref(), Some("<|bos|>"));
    assert_eq!(
        bos.special_tokens().eos_token.as_deref(),
        Some("<|eot_id|>")
    );
    let names: Vec<&str> = plain.templates().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["default", "gemma", "generation", "llama3", "qwen3"]);
    assert_eq!(plain.fingerprint().len(), 16);
    assert_ne!(plain.fingerprint(), bos.fingerprint());
    // Loading twice gives the same fingerprint.
    assert_eq!(plain.fingerprint(), load("tokenizer").fingerprint());
}

#[test]
fn paper_texts_match_python() {
    for case in cases() {
        let spans = render_paper(&case.trajectory);
        let want = case.raw["paper"]["spans"].as_array().unwrap();
        assert_eq!(spans.len(), want.len(), "{}", case.name);
        for (got, want) in spans.iter().zip(want) {
            assert_eq!(got.text, want["text"].as_str().unwrap(), "{}", case.name);
            assert_eq!(
                got.message_index as u64,
                want["message_index"].as_u64().unwrap()
            );
            assert_eq!(got.is_action, want["is_action"].as_bool().unwrap());
        }
    }
}

#[test]
fn paper_ids_and_spans_match_python() {
    let plain = load("tokenizer");
    let bos = load("tokenizer_bos");
    for case in cases() {
        let paper = &case.raw["paper"];
        let got = plain
            .tokenize_paper(&case.trajectory, DEFAULT_MAX_LENGTH)
            .unwrap();
        assert_eq!(seq(&got).ids, ids_of(&paper["ids"]), "{}: ids", case.name);
        assert_eq!(
            paper_spans(&got),
            paper["token_spans"],
            "{}: spans",
            case.name
        );
        assert_eq!(got.truncated_tokens, 0);

        let got = bos
            .tokenize_paper(&case.trajectory, DEFAULT_MAX_LENGTH)
            .unwrap();
        assert_eq!(
            seq(&got).ids,
            ids_of(&paper["ids_bos"]),
            "{}: ids_bos",
            case.name
        );
        assert_eq!(seq(&got).ids[0], bos.bos_token_id().unwrap());
        assert_eq!(paper_spans(&got), paper["token_spans_bos"], "{}", case.name);
    }
}

#[test]
fn paper_left_truncation_matches_python() {
    let plain = load("tokenizer");
    let bos = load("tokenizer_bos");
    let mut seen = 0;
    for case in cases() {
        let Some(max_length) = case.raw["max_length"].as_u64() else {
            continue;
        };
        seen += 1;
        let want = &case.raw["truncated"];
        let got = plain
            .tokenize_paper(&case.trajectory, max_length as usize)
            .unwrap();
        assert_eq!(seq(&got).ids, ids_of(&want["ids"]), "{}", case.name);
        assert_eq!(paper_spans(&got), want["token_spans"], "{}", case.name);
        let full_len = case.raw["paper"]["ids"].as_array().unwrap().len();
        assert_eq!(got.truncated_tokens, full_len - max_length as usize);
        // Count cut / clipped actions from the Python spans before and after.
        let before = case.raw["paper"]["token_spans"].as_array().unwrap();
        let after = want["token_spans"].as_array().unwrap();
        let (mut cut, mut clipped) = (0, 0);
        for (b, a) in before.iter().zip(after) {
            if !b[3].as_bool().unwrap() {
                continue;
            }
            let len = |s: &Value| s[1].as_u64().unwrap() - s[0].as_u64().unwrap();
            if len(b) > 0 && len(a) == 0 {
                cut += 1;
            } else if len(a) < len(b) {
                clipped += 1;
            }
        }
        assert_eq!((got.actions_cut, got.actions_clipped), (cut, clipped));
        assert!(cut > 0, "the fixture should cut at least one action");

        let got = bos
            .tokenize_paper(&case.trajectory, max_length as usize)
            .unwrap();
        assert_eq!(seq(&got).ids, ids_of(&want["ids_bos"]), "{}", case.name);
        assert_eq!(paper_spans(&got), want["token_spans_bos"], "{}", case.name);
    }
    assert!(seen > 0, "no truncation case in the fixtures");
}

/// Fixture template key -> padv template name.
fn template_name(key: &str) -> &str {
    if key == "qwen2_5" {
        "default"
    } else {
        key
    }
}

fn chat_options(case: &Case, key: &str) -> ChatOptions {
    ChatOptions {
        template: Some(template_name(key).to_string()),
        tools: case.raw.get("tools").filter(|v| !v.is_null()).cloned(),
        ..Default::default()
    }
}

#[test]
fn chat_template_ids_and_action_spans_match_python() {
    let mut checked = 0;
    for case in cases() {
        for (key, want) in case.raw["chat"].as_object().unwrap() {
            let tok = load(want["tokenizer"].as_str().unwrap());
            let template = tok.chat_template(&chat_options(&case, key)).unwrap();
            let rendered = template
                .render_json(&padv_core::render::chat_messages(&case.trajectory), false)
                .unwrap();
            assert_eq!(
                rendered.text,
                want["text"].as_str().unwrap(),
                "{} {key}",
                case.name
            );
            let got = tok
                .tokenize_chat(&template, &case.trajectory, DEFAULT_MAX_LENGTH)
                .unwrap();
            assert_eq!(got.mode, RenderMode::Single, "{} {key}", case.name);
            assert_eq!(
                seq(&got).ids,
                ids_of(&want["ids"]),
                "{} {key}: ids",
                case.name
            );

            assert!(
                want.get("gen_prompt_not_prefix").is_none(),
                "{} {key}: fixture has actions not opened by the generation prompt",
                case.name
            );
            assert_eq!(
                action_spans(&got),
                want["action_spans"],
                "{} {key}",
                case.name
            );
            // Spans tile in order and stay inside the ids.
            let mut last_end = 0;
            for s in &seq(&got).spans {
                assert!(s.start >= last_end && s.end >= s.start && s.end <= seq(&got).ids.len());
                last_end = s.end;
            }
            checked += 1;
        }
    }
    assert!(checked >= 8, "too few chat cases checked: {checked}");
}

#[test]
fn generation_mask_matches_return_assistant_tokens_mask() {
    let tok = load("tokenizer");
    let mut checked = 0;
    for case in cases() {
        let Some(want) = case.raw["chat"].get("generation") else {
            continue;
        };
        let template = tok
            .chat_template(&chat_options(&case, "generation"))
            .unwrap();
        assert!(template.has_generation_blocks());
        let mask = tok
            .chat_assistant_mask(&template, &case.trajectory)
            .unwrap();
        let want_mask: Vec<u8> = serde_json::from_value(want["assistant_masks"].clone()).unwrap();
        assert_eq!(mask, want_mask, "{}", case.name);
        checked += 1;
    }
    assert!(checked > 0);
    // The default template has no generation blocks.
    let plain = tok.chat_template(&ChatOptions::default()).unwrap();
    let traj = &cases()[0].trajectory;
    assert!(tok.chat_assistant_mask(&plain, traj).is_err());
}

#[test]
fn encoder_dispatches_on_renderer() {
    let tok = load("tokenizer");
    let case = &cases()[0];
    let paper = tok.encoder(&TokenizeOptions::default()).unwrap();
    assert_eq!(paper.renderer(), RendererKind::Paper);
    assert_eq!(
        paper.encode(&case.trajectory).unwrap().segments[0].ids,
        ids_of(&case.raw["paper"]["ids"])
    );
    let chat = tok
        .encoder(&TokenizeOptions {
            renderer: RendererKind::ChatTemplate,
            max_length: 50,
            chat: chat_options(case, "qwen2_5"),
        })
        .unwrap();
    let got = chat.encode(&case.trajectory).unwrap();
    let full = ids_of(&case.raw["chat"]["qwen2_5"]["ids"]);
    // Left truncation keeps the last 50 ids.
    assert_eq!(seq(&got).ids, full[full.len() - 50..]);
    assert_eq!(got.truncated_tokens, full.len() - 50);
}

#[test]
fn unknown_template_names_the_alternatives() {
    let tok = load("tokenizer");
    let err = tok
        .chat_template(&ChatOptions {
            template: Some("chatml".into()),
            ..Default::default()
        })
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, TokenizeError::NoTemplate { .. }));
    assert!(msg.contains("chatml") && msg.contains("llama3"), "{msg}");
}

#[test]
fn history_rewriting_template_scores_each_turn_in_its_own_context() {
    // A template that prints only the LAST assistant message's content in full and
    // abbreviates earlier ones, as reasoning templates do with <think> blocks.
    let dir = dir_with_template(
        "{% for m in messages %}<|im_start|>{{ m.role }}\n\
         {% if m.role == 'assistant' and not loop.last %}...{% else %}{{ m.content }}{% endif %}\
         <|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
    );
    let tok = TextTokenizer::from_dir(dir.path()).unwrap();
    let template = tok.chat_template(&ChatOptions::default()).unwrap();
    let case = cases().into_iter().next().unwrap();
    let t = &case.trajectory;
    let got = tok.tokenize_chat(&template, t, DEFAULT_MAX_LENGTH).unwrap();
    assert_eq!(got.mode, RenderMode::PerTurn);
    let actions: Vec<usize> = t.action_indices();
    assert_eq!(got.segments.len(), actions.len());
    let enc = |s: &str| tok.inner().encode(s, false).unwrap().get_ids().to_vec();
    for (seg, &i) in got.segments.iter().zip(&actions) {
        // Context: earlier assistant turns abbreviated, as the model saw them at turn i.
        let mut context = String::new();
        for m in &t.messages[..i] {
            let role = padv_core::render::chat_role(m);
            let body = if role == "assistant" {
                "..."
            } else {
                m.content.as_deref().unwrap_or("")
            };
            context.push_str(&format!("<|im_start|>{role}\n{body}<|im_end|>\n"));
        }
        context.push_str("<|im_start|>assistant\n");
        let content = t.messages[i].content.as_deref().unwrap_or("");
        let mut want = enc(&context);
        let start = want.len();
        want.extend(enc(&format!("{content}<|im_end|>\n")));
        assert_eq!(seg.ids, want, "segment of message {i}");
        assert_eq!(seg.spans.len(), 1);
        let s = seg.spans[0];
        assert_eq!(
            (s.message_index, s.start, s.end, s.is_action),
            (i, start, want.len(), true)
        );
    }
    // Left truncation applies to each segment, and the statistics add up.
    let cut = tok.tokenize_chat(&template, t, 20).unwrap();
    assert!(cut.segments.iter().all(|s| s.ids.len() <= 20));
    let dropped: usize = got
        .segments
        .iter()
        .map(|s| s.ids.len().saturating_sub(20))
        .sum();
    assert_eq!(cut.truncated_tokens, dropped);
}

#[test]
fn generation_prompt_that_is_not_a_prefix_of_the_turn_is_refused() {
    // The generation prompt opens a turn the render never writes: no generated text exists.
    let dir = dir_with_template(
        "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}\
         {% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
    );
    let tok = TextTokenizer::from_dir(dir.path()).unwrap();
    let template = tok.chat_template(&ChatOptions::default()).unwrap();
    let mut traj = cases()[0].trajectory.clone();
    traj.messages.truncate(3);
    let err = tok
        .tokenize_chat(&template, &traj, DEFAULT_MAX_LENGTH)
        .unwrap_err();
    match &err {
        TokenizeError::NotPrefix {
            trajectory,
            message_index,
            ..
        } => {
            assert_eq!(trajectory, &traj.id);
            assert!(traj.messages[*message_index].is_action);
        }
        other => panic!("expected NotPrefix, got {other}"),
    }
}

/// A tokenizer dir with the fixture tokenizer.json and the given default template.
fn dir_with_template(template: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("tokenizer/tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .unwrap();
    std::fs::write(dir.path().join("chat_template.jinja"), template).unwrap();
    dir
}

#[test]
fn first_action_found_when_template_cannot_render_empty_chats() {
    // Like Qwen2.5's template, the first variant reads messages[0] without a guard, so
    // rendering the empty prefix before an opening action fails; the second guards it.
    let body = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n\
                {% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
    let unguarded = format!("{{% if messages[0]['role'] == 'system' %}}S{{% endif %}}{body}");
    let guarded =
        format!("{{% if messages and messages[0]['role'] == 'system' %}}S{{% endif %}}{body}");
    let mut traj = cases()[0].trajectory.clone();
    traj.messages.truncate(3);
    assert!(traj.messages[0].is_action);
    let mut results = Vec::new();
    for src in [unguarded, guarded] {
        let dir = dir_with_template(&src);
        let tok = TextTokenizer::from_dir(dir.path()).unwrap();
        let template = tok.chat_template(&ChatOptions::default()).unwrap();
        let got = tok
            .tokenize_chat(&template, &traj, DEFAULT_MAX_LENGTH)
            .unwrap();
        let first = seq(&got).spans[0];
        let text = tok
            .inner()
            .decode(&seq(&got).ids[first.start..first.end], false)
            .unwrap();
        // The span is what the model generated: content and end-of-turn, not the header.
        let content = traj.messages[0].content.clone().unwrap();
        assert_eq!(text, format!("{content}<|im_end|>\n"));
        results.push(got);
    }
    assert_eq!(results[0], results[1]);
}

#[test]
fn vocab_check_accepts_equal_tokenizers_and_reports_bos() {
    let a = load("tokenizer");
    check_same_vocabulary(&a, &load("tokenizer")).unwrap();
    // tokenizer_bos has the same vocabulary but declares a BOS token.
    let b = load("tokenizer_bos");
    assert_eq!(a.vocab_size(), b.vocab_size());
    let err = check_same_vocabulary(&a, &b).unwrap_err();
    assert_eq!(err.differences.len(), 1, "{err}");
    let bos = b.bos_token_id().unwrap();
    assert!(
        err.differences[0].starts_with(&format!("BOS id none vs {bos}")),
        "{err}"
    );
}

#[test]
fn vocab_check_reports_remapped_ids() {
    // Swap the ids of two ordinary tokens in a copy of tokenizer.json.
    let src = fixtures().join("tokenizer/tokenizer.json");
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(src).unwrap()).unwrap();
    let vocab = json["model"]["vocab"].as_object_mut().unwrap();
    let (x, y) = ("a".to_string(), "b".to_string());
    let (ix, iy) = (vocab[&x].clone(), vocab[&y].clone());
    vocab.insert(x.clone(), iy.clone());
    vocab.insert(y.clone(), ix.clone());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tokenizer.json"), json.to_string()).unwrap();
    let swapped = TextTokenizer::from_dir(dir.path()).unwrap();
    let a = load("tokenizer");
    let err = check_same_vocabulary(&a, &swapped).unwrap_err();
    // Exactly the two swapped tokens disagree; the example is the lower id of the two.
    let (lo_tok, lo, hi) = if ix.as_u64() < iy.as_u64() {
        (&x, &ix, &iy)
    } else {
        (&y, &iy, &ix)
    };
    let want = format!(
        "2 token(s) of the first map to another id or are missing in the second, e.g. {lo_tok:?}: {lo} vs {hi}"
    );
    assert_eq!(err.differences, vec![want], "{err}");
}

#[test]
fn missing_tokenizer_json_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = TextTokenizer::from_dir(dir.path()).unwrap_err();
    assert!(err.to_string().contains("tokenizer.json"), "{err}");
    std::fs::write(dir.path().join("tokenizer.json"), "{not json").unwrap();
    let err = TextTokenizer::from_dir(dir.path()).unwrap_err();
    assert!(matches!(err, TokenizeError::Parse { .. }), "{err}");
}

#[test]
fn encoders_can_be_shared_across_threads() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<TextTokenizer>();
    is_send_sync::<padv_engine::tokenize::TrajectoryEncoder<'static>>();
    // And they give the same ids from several threads.
    let tok = load("tokenizer");
    let enc = tok
        .encoder(&TokenizeOptions {
            renderer: RendererKind::ChatTemplate,
            ..Default::default()
        })
        .unwrap();
    let case = &cases()[0];
    let want = ids_of(&case.raw["chat"]["qwen2_5"]["ids"]);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    enc.encode(&case.trajectory).unwrap().segments[0]
                        .ids
                        .clone()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), want);
        }
    });
}
