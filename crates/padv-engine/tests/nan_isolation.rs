//! A sequence that hits a NaN weight row fails alone: the other sequences of its batch (a
//! fan-out group sharing a prefix, or neighbours sharing a KV cache) keep their exact values.
#![cfg(feature = "decoder")]

#[path = "support/nan_model.rs"]
mod nan_model;

use padv_core::{LogprobBackend, ScoreRequest, StatsRequest};
use padv_engine::logprobs::{EngineError, EngineOptions, LocalEngine};

/// Token ids whose embedding row is NaN in the test models: 0 is the id the fan-out used to
/// pad with (its NaN leaked into every shorter row through `0 · v` in attention), 77 an
/// ordinary one.
const BAD_IDS: [u32; 2] = [0, 77];

fn engine(dir: &std::path::Path, bad: u32) -> LocalEngine {
    LocalEngine::load(
        &nan_model::nan_embedding_model("qwen2", dir, bad),
        EngineOptions::default(),
    )
    .expect("NaN fixture loads")
}

/// Six sequences after one 24-token prefix; the 2nd and 5th contain BAD in their
/// continuation.
fn sequences(bad: u32) -> Vec<(Vec<u32>, Vec<usize>)> {
    let prefix: Vec<u32> = (0..24).map(|i| 20 + (i * 7) % 50).collect();
    (0..6)
        .map(|k| {
            let mut ids = prefix.clone();
            let tail: Vec<u32> = (0..(8 + 3 * k))
                .map(|i| 100 + ((i * 13 + k * 5) % 300) as u32)
                .collect();
            ids.extend(&tail);
            if k == 1 || k == 4 {
                ids[26] = bad;
            }
            let targets: Vec<usize> = (25..ids.len()).collect();
            (ids, targets)
        })
        .collect()
}

fn alone(e: &mut LocalEngine, ids: &[u32], targets: &[usize]) -> Vec<f32> {
    let stats = StatsRequest {
        distribution_stats: true,
    };
    e.score(ids, targets, stats).expect("scores").logprob
}

#[test]
fn one_nan_sequence_does_not_poison_its_fanout_batch() {
    for bad in BAD_IDS {
        check_batch(bad);
    }
}

fn check_batch(bad: u32) {
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine(dir.path(), bad);
    let seqs = sequences(bad);
    let requests: Vec<ScoreRequest<'_>> = seqs
        .iter()
        .map(|(ids, targets)| ScoreRequest { ids, targets })
        .collect();
    let stats = StatsRequest {
        distribution_stats: true,
    };
    let (batch, cost) = e.score_batch_shared(&requests, stats);
    assert!(cost.fanout_requests >= 2, "the batch runs as a fan-out");
    for (k, ((ids, targets), got)) in seqs.iter().zip(batch).enumerate() {
        if k == 1 || k == 4 {
            // The sequence holding the NaN row fails alone. (The position it names can lie
            // up to one attention query block before the bad token: masked keys of the same
            // block still enter the kernel's arithmetic, and 0 · NaN is NaN.)
            match got {
                Err(EngineError::NonFinite { position, .. }) => {
                    assert!(position < ids.len(), "NaN row {bad}, sequence {k}")
                }
                other => panic!("sequence {k} holds the NaN row: {other:?}"),
            }
            continue;
        }
        let got = got.unwrap_or_else(|e| {
            panic!("NaN row {bad}: clean sequence {k} was poisoned by its neighbours: {e}")
        });
        let finite = got.logprob.iter().all(|x| x.is_finite())
            && got.entropy.iter().flatten().all(|x| x.is_finite());
        assert!(
            finite,
            "NaN row {bad}: clean sequence {k} holds non-finite values"
        );
        let want = alone(&mut e, ids, targets);
        for (a, b) in got.logprob.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-5, "sequence {k}: {a} vs {b} alone");
        }
    }
}

/// The fan-out from a caller's history cache (what the gym's guided search scores its K
/// candidates with): clean continuations equal independent passes over the whole sequence,
/// a continuation holding the NaN row fails alone, one whose target lies inside the cached
/// history gets its own error, and an empty cache is refused.
#[test]
fn continuations_of_a_kept_history_fail_alone_and_equal_full_passes() {
    let bad = BAD_IDS[1];
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine(dir.path(), bad);
    let seqs = sequences(bad);
    let prefix = 24;
    let mut history = e.model().new_cache();
    let ids =
        candle_core::Tensor::from_slice(&seqs[0].0[..prefix], (1, prefix), e.model().device())
            .unwrap();
    e.model()
        .forward_rows(&ids, 0, &mut history, &[prefix - 1], prefix)
        .unwrap();
    assert_eq!(history.seq_len(), prefix);
    // The 6th request asks for a target inside the history.
    let inside: Vec<usize> = (prefix - 3..seqs[5].0.len()).collect();
    let requests: Vec<ScoreRequest<'_>> = seqs
        .iter()
        .enumerate()
        .map(|(k, (ids, targets))| ScoreRequest {
            ids,
            targets: if k == 5 { &inside } else { targets },
        })
        .collect();
    let stats = StatsRequest {
        distribution_stats: true,
    };
    let got = e
        .score_continuations(&history, &requests, stats)
        .expect("the batched pass runs");
    assert_eq!(got.len(), seqs.len());
    for (k, ((ids, targets), got)) in seqs.iter().zip(got).enumerate() {
        match k {
            1 | 4 => assert!(
                matches!(got, Err(EngineError::NonFinite { .. })),
                "continuation {k} holds the NaN row: {got:?}"
            ),
            5 => match got {
                Err(EngineError::Invalid(m)) => assert!(m.contains("target position"), "{m}"),
                other => panic!("a target inside the history is refused: {other:?}"),
            },
            _ => {
                let got = got.unwrap_or_else(|e| panic!("clean continuation {k}: {e}"));
                let want = alone(&mut e, ids, targets);
                assert_eq!(got.logprob.len(), want.len());
                for (a, b) in got.logprob.iter().zip(&want) {
                    assert!((a - b).abs() <= 1e-5, "continuation {k}: {a} vs {b} alone");
                }
                assert!(got.entropy.iter().flatten().all(|x| x.is_finite()));
            }
        }
    }
    let empty = e.model().new_cache();
    assert!(matches!(
        e.score_continuations(&empty, &requests[..1], stats),
        Err(EngineError::Invalid(_))
    ));
}
