//! Sequence-classification heads against transformers on tiny random checkpoints of four
//! families (`tests/fixtures/models/<family>_cls/expected.json`, written by
//! `scripts/make_classifier_fixtures.py` with float64 transformers), and the WildReward
//! prompt rendered, tokenised and scored end to end.
#![cfg(feature = "decoder")]

use std::path::{Path, PathBuf};

use padv_core::judge::outcome_rm_score;
use padv_core::judge::prompts::{wildreward_prompt, WILDREWARD_MAX_TOKENS};
use padv_core::Trajectory;
use padv_engine::classify::SequenceClassifier;
use padv_engine::logprobs::EngineOptions;
use padv_engine::tokenize::TextTokenizer;

/// f32 tolerance on logits (absolute).
const TOL: f64 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

fn expected(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap()
}

fn ids_of(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn check_family(family: &str) -> f64 {
    let dir = fixture(&format!("{family}_cls"));
    let exp = expected(&dir);
    let clf = SequenceClassifier::load(&dir, EngineOptions::default()).unwrap();
    assert_eq!(
        clf.num_labels(),
        exp["num_labels"].as_u64().unwrap() as usize
    );
    let mut worst = 0.0f64;
    for case in exp["cases"].as_array().unwrap() {
        let ids = ids_of(&case["ids"]);
        let name = case["name"].as_str().unwrap();
        assert_eq!(
            clf.pooled_index(&ids),
            Some(case["pooled_index"].as_u64().unwrap() as usize),
            "{family} {name}"
        );
        let got = clf.logits(&ids).unwrap();
        let want = floats(&case["logits"]);
        for (g, w) in got.iter().zip(&want) {
            worst = worst.max((f64::from(*g) - w).abs());
        }
        let score = outcome_rm_score(&got);
        assert!(
            (score - case["score"].as_f64().unwrap()).abs() < 2.0 * TOL,
            "{family} {name}: score {score}"
        );
    }
    eprintln!("{family}_cls: max |logit - transformers f64| = {worst:.2e}");
    assert!(worst < TOL, "{family}: {worst}");
    worst
}

#[test]
fn qwen2_head_matches_transformers() {
    check_family("qwen2");
}

#[test]
fn llama_head_matches_transformers() {
    check_family("llama");
}

#[test]
fn qwen3_head_matches_transformers() {
    check_family("qwen3");
}

#[test]
fn gemma2_head_matches_transformers() {
    check_family("gemma2");
}

#[test]
fn wildreward_prompt_ids_and_score_end_to_end() {
    let render: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/render_cases.json"),
        )
        .unwrap(),
    )
    .unwrap();
    for family in ["qwen2", "llama"] {
        let dir = fixture(&format!("{family}_cls"));
        let exp = expected(&dir);
        let w = &exp["wildreward"];
        let case = render
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == w["case"])
            .unwrap();
        let t: Trajectory = serde_json::from_value(case["trajectory"].clone()).unwrap();
        let prompt = wildreward_prompt(&t);
        assert_eq!(
            prompt,
            w["prompt"].as_str().unwrap(),
            "{family}: prompt text"
        );
        let tok = TextTokenizer::from_dir(&dir).unwrap();
        let mut ids = tok.encode_with_special_tokens(&prompt).unwrap();
        ids.truncate(WILDREWARD_MAX_TOKENS);
        assert_eq!(ids, ids_of(&w["ids"]), "{family}: ids");
        let clf = SequenceClassifier::load(&dir, EngineOptions::default()).unwrap();
        let score = outcome_rm_score(&clf.logits(&ids).unwrap());
        let want = w["score"].as_f64().unwrap();
        eprintln!("{family}: WildReward score {score:.6} vs transformers {want:.6}");
        assert!(
            (score - want).abs() < 2.0 * TOL,
            "{family}: {score} vs {want}"
        );
    }
}

#[test]
fn causal_lm_checkpoints_are_refused_as_classifiers() {
    let e = SequenceClassifier::load(&fixture("qwen2"), EngineOptions::default()).unwrap_err();
    assert!(e.to_string().contains("ForSequenceClassification"), "{e}");
}
