//! A resumed run equals an uninterrupted one byte for byte.
//!
//! The local engine shares token prefixes between the sequences of one batch (a KV cache, a
//! fan-out pass), and a value computed that way can differ from a full pass in its last bits
//! (the server's candidates route shows 1.9e-7 on a score in `padv-serve/tests/one_path.rs`),
//! so a record may depend on which sequences shared its batch. `padv score` therefore scores
//! a batch whole or not at all: when a run killed while writing a batch's cache entries is
//! resumed, that batch is scored again with the same members. This test makes such a
//! half-written cache, checks that the half-written batch was re-scored whole (the cache hits
//! count only the complete batch) and compares the records' JSON bytes with the uninterrupted
//! run's. It also prints how far batch size 1 is from batch size 3 on these trajectories
//! (0 on this fixture; the README states the bound).
#![cfg(feature = "decoder")]

use std::path::PathBuf;

use padv_core::record::cache::LogprobCache;
use padv_core::{LogprobRecord, Message, Trajectory};
use padv_engine::logprobs::{EngineOptions, LocalEngine};
use padv_engine::pipeline::{score_trajectories, PipelineOptions};
use padv_engine::tokenize::{TextTokenizer, TokenizeOptions};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

fn message(role: &str, content: &str, is_action: bool) -> Message {
    Message {
        role: role.into(),
        name: None,
        content: Some(content.into()),
        tool_call_id: None,
        tool_calls: vec![],
        is_action,
    }
}

/// Six rollouts of two tasks: the rollouts of a task share a long system prompt and task text,
/// so the engine shares their prefix within a batch.
fn trajectories() -> Vec<Trajectory> {
    let system = "You are a careful agent. Read the task, think, then act in short steps. \
                  Report the answer when you are sure of it.";
    (0..6)
        .map(|i| {
            let task = if i < 3 {
                "Add 12 and 30."
            } else {
                "Multiply 6 by 7."
            };
            Trajectory {
                id: format!("r{i}"),
                task_id: format!("task{}", i / 3),
                messages: vec![
                    message("system", system, false),
                    message("user", task, false),
                    message(
                        "assistant",
                        &format!(
                            "Step one, attempt {i}: {}",
                            "I add the tens, then the units, and check. ".repeat(1 + 2 * i)
                        ),
                        true,
                    ),
                    message("user", "Go on.", false),
                    message("assistant", &format!("The answer is {}.", 40 + i), true),
                ],
                reward: Some(f64::from(u8::from(i % 2 == 0))),
                ..Default::default()
            }
        })
        .collect()
}

/// The fixture's chat template: its rollouts share the rendered system prompt and task.
fn opts() -> TokenizeOptions {
    TokenizeOptions {
        renderer: padv_core::render::RendererKind::ChatTemplate,
        ..TokenizeOptions::default()
    }
}

fn run(cache: Option<&LogprobCache>, batch_size: usize) -> (Vec<LogprobRecord>, usize) {
    let policy = LocalEngine::load(&fixture("qwen2"), EngineOptions::default()).expect("policy");
    let reference =
        LocalEngine::load(&fixture("qwen2_ref"), EngineOptions::default()).expect("reference");
    let tok = TextTokenizer::from_dir(&fixture("qwen2")).expect("tokenizer");
    let enc = tok.encoder(&opts()).expect("encoder");
    let run = score_trajectories(
        &trajectories(),
        &enc,
        &policy,
        &reference,
        &PipelineOptions {
            strict: true,
            cache,
            batch_size,
        },
        &mut |_| {},
    )
    .expect("scores");
    (run.records, run.stats.cache_hits)
}

fn bytes(records: &[LogprobRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| serde_json::to_string(r).expect("serialises"))
        .collect()
}

fn max_abs_diff(a: &[LogprobRecord], b: &[LogprobRecord]) -> f64 {
    let mut m = 0.0f64;
    for (x, y) in a.iter().zip(b) {
        for (s, t) in x.steps.iter().zip(&y.steps) {
            let pairs = s.policy.iter().zip(&t.policy).chain(
                s.reference
                    .iter()
                    .flatten()
                    .zip(t.reference.iter().flatten()),
            );
            for (u, v) in pairs {
                m = m.max(f64::from((u - v).abs()));
            }
        }
    }
    m
}

#[test]
fn a_run_resumed_from_a_half_written_batch_equals_the_uninterrupted_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = LogprobCache::open(dir.path()).expect("cache");
    let (uninterrupted, hits) = run(Some(&cache), 3);
    assert_eq!(hits, 0);

    // A kill while the second batch's entries were being written: of its three trajectories,
    // only the first one's two entries made it to disk.
    let (second_batch, _) = {
        let fresh = tempfile::tempdir().expect("tempdir");
        let partial = LogprobCache::open(fresh.path()).expect("cache");
        let first = trajectories()[..3].to_vec();
        let policy =
            LocalEngine::load(&fixture("qwen2"), EngineOptions::default()).expect("policy");
        let reference =
            LocalEngine::load(&fixture("qwen2_ref"), EngineOptions::default()).expect("ref");
        let tok = TextTokenizer::from_dir(&fixture("qwen2")).expect("tokenizer");
        let enc = tok.encoder(&opts()).expect("encoder");
        score_trajectories(
            &first,
            &enc,
            &policy,
            &reference,
            &PipelineOptions {
                strict: true,
                cache: Some(&partial),
                batch_size: 3,
            },
            &mut |_| {},
        )
        .expect("first batch");
        // Entries of the first batch only: everything else in the full cache is the second's.
        let first_names: std::collections::BTreeSet<_> = std::fs::read_dir(fresh.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        (first_names, fresh)
    };
    let mut second: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").path())
        .filter(|p| !second_batch.contains(p.file_name().expect("name")))
        .collect();
    second.sort();
    assert_eq!(
        second.len(),
        6,
        "two entries per trajectory of the second batch"
    );
    // Keep one trajectory's worth (two entries) of the second batch, as a killed write would.
    for p in &second[2..] {
        std::fs::remove_file(p).expect("rm");
    }

    let (resumed, hits) = run(Some(&cache), 3);
    assert_eq!(
        bytes(&resumed),
        bytes(&uninterrupted),
        "the resumed run's records are the uninterrupted run's, byte for byte"
    );
    // The first batch came from the cache; the half-written second one was scored whole.
    assert_eq!(hits, 6, "3 trajectories × 2 models of the complete batch");

    // Without a cache, the same batch size gives the same bytes again (the engine is
    // deterministic), and batch size 1 is within the stated bound of it.
    let (again, _) = run(None, 3);
    assert_eq!(bytes(&again), bytes(&uninterrupted));
    let (single, _) = run(None, 1);
    let d = max_abs_diff(&single, &uninterrupted);
    println!("max |batch size 1 − batch size 3| over every log-prob: {d:e}");
    assert!(d <= 1e-5, "batch size changes a log-prob by {d}");
}
