//! A cached prefix + a cloned cache + the suffix gives the same hidden states as one full
//! pass, for every attention implementation, and a clone is independent of its original.
//! Random in-memory models (no fixtures needed): GQA, a sliding window shorter than the
//! prefix, llama3 RoPE scaling, and a Gemma-style model with soft-capping and sandwich norms.
#![cfg(feature = "decoder")]

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use padv_core::{LogprobBackend, StatsRequest};
use padv_engine::decoder::{
    Activation, AttentionImpl, DecoderConfig, DecoderModel, Family, KvCache, LayerSpec,
    ModelOptions, NormPlacement, QkNorm, RopeScaling, RopeSpec,
};
use padv_engine::logprobs::LocalEngine;

fn mistral_like() -> DecoderConfig {
    DecoderConfig {
        family: Family::Mistral,
        vocab_size: 61,
        hidden_size: 32,
        intermediate_size: 48,
        num_heads: 4,
        num_kv_heads: 2,
        head_dim: 8,
        rms_norm_eps: 1e-6,
        activation: Activation::Silu,
        qkv_bias: true,
        o_bias: false,
        mlp_bias: false,
        qk_norm: QkNorm::PerHead,
        norm_placement: NormPlacement::Pre,
        norm_unit_offset: false,
        embed_scale: None,
        attn_scale: 8f64.powf(-0.5),
        attn_softcap: None,
        final_softcap: None,
        fused_qkv: false,
        fused_gate_up: false,
        tie_embeddings: false,
        ropes: vec![RopeSpec {
            theta: 10000.0,
            rotary_dim: 8,
            scaling: RopeScaling::Llama3 {
                factor: 8.0,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_max_position_embeddings: 64,
            },
        }],
        layers: vec![
            LayerSpec {
                sliding_window: Some(8),
                rope: 0,
            },
            LayerSpec {
                sliding_window: None,
                rope: 0,
            },
        ],
    }
}

fn gemma_like() -> DecoderConfig {
    let mut c = mistral_like();
    c.family = Family::Gemma2;
    c.activation = Activation::GeluTanh;
    c.qkv_bias = false;
    c.qk_norm = QkNorm::None;
    c.norm_placement = NormPlacement::Sandwich;
    c.norm_unit_offset = true;
    c.embed_scale = Some(32f64.sqrt());
    c.attn_softcap = Some(2.0);
    c.final_softcap = Some(5.0);
    c.tie_embeddings = true;
    c.ropes = vec![RopeSpec {
        theta: 10000.0,
        rotary_dim: 8,
        scaling: RopeScaling::None,
    }];
    c
}

/// A model with random weights; `vm` keeps them so that several builds share them.
fn build(
    cfg: &DecoderConfig,
    vm: &VarMap,
    attention: AttentionImpl,
    trainable: bool,
) -> DecoderModel {
    let vb = VarBuilder::from_varmap(vm, DType::F32, &Device::Cpu);
    DecoderModel::new(
        cfg,
        vb,
        ModelOptions {
            trainable,
            attention,
        },
    )
    .unwrap()
}

fn ids(seed: u32, n: usize, vocab: u32) -> Vec<u32> {
    // A small LCG: deterministic, spread over the vocabulary.
    let mut x = seed.wrapping_mul(2654435761).wrapping_add(12345);
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            (x >> 8) % vocab
        })
        .collect()
}

fn tensor(ids: &[u32]) -> Tensor {
    Tensor::from_slice(ids, (1, ids.len()), &Device::Cpu).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn check_prefix_reuse(cfg: &DecoderConfig, attention: AttentionImpl) {
    let vm = VarMap::new();
    let model = build(cfg, &vm, attention, false);
    let v = cfg.vocab_size as u32;
    let (t, p) = (40, 17);
    let a = ids(1, t, v);
    let mut b = a[..p].to_vec();
    b.extend(ids(2, t - p, v));

    let full_a = model
        .forward(&tensor(&a), 0, &mut KvCache::discarding())
        .unwrap();
    let full_b = model
        .forward(&tensor(&b), 0, &mut model.new_cache())
        .unwrap();

    let mut prefix = model.new_cache();
    let h_prefix = model.forward(&tensor(&a[..p]), 0, &mut prefix).unwrap();
    assert_eq!(prefix.seq_len(), p);
    assert!(max_diff(&h_prefix, &full_a.narrow(1, 0, p).unwrap()) < 1e-5);

    let mut ca = prefix.clone();
    let ha = model.forward(&tensor(&a[p..]), p, &mut ca).unwrap();
    assert_eq!(ca.seq_len(), t);
    let da = max_diff(&ha, &full_a.narrow(1, p, t - p).unwrap());
    assert!(da < 1e-5, "{attention:?}: suffix a differs by {da}");

    // The first continuation did not touch the shared prefix.
    assert_eq!(prefix.seq_len(), p);
    let mut cb = prefix.clone();
    let hb = model.forward(&tensor(&b[p..]), p, &mut cb).unwrap();
    let db = max_diff(&hb, &full_b.narrow(1, p, t - p).unwrap());
    assert!(db < 1e-5, "{attention:?}: suffix b differs by {db}");

    // Two steps of continuation (a cache extended twice).
    let mut cc = prefix.clone();
    let h1 = model.forward(&tensor(&a[p..p + 5]), p, &mut cc).unwrap();
    let h2 = model.forward(&tensor(&a[p + 5..]), p + 5, &mut cc).unwrap();
    let h12 = Tensor::cat(&[h1, h2], 1).unwrap();
    assert!(max_diff(&h12, &full_a.narrow(1, p, t - p).unwrap()) < 1e-5);
}

#[test]
fn prefix_clone_suffix_equals_full_pass() {
    for attention in [
        AttentionImpl::Kernel,
        AttentionImpl::Blocked,
        AttentionImpl::Full,
    ] {
        check_prefix_reuse(&mistral_like(), attention);
        check_prefix_reuse(&gemma_like(), attention);
    }
}

#[test]
fn offset_must_match_the_cache() {
    let vm = VarMap::new();
    let model = build(&mistral_like(), &vm, AttentionImpl::Auto, false);
    let x = tensor(&[1, 2, 3]);
    assert!(model.forward(&x, 3, &mut model.new_cache()).is_err());
    assert!(model.forward(&x, 1, &mut KvCache::discarding()).is_err());
    let mut c = model.new_cache();
    model.forward(&x, 0, &mut c).unwrap();
    assert!(model.forward(&x, 0, &mut c).is_err());
}

#[test]
fn engine_continues_from_a_cached_prefix() {
    let cfg = gemma_like();
    let vm = VarMap::new();
    let engine =
        LocalEngine::from_model(build(&cfg, &vm, AttentionImpl::Auto, false), "t".into(), 5);
    let seq = ids(7, 30, cfg.vocab_size as u32);
    let p = 12;
    let targets: Vec<usize> = (p + 1..30).collect();
    let stats = StatsRequest {
        distribution_stats: true,
    };
    let full = engine.score(&seq, &targets, stats).unwrap();
    let mut cache = engine.model().new_cache();
    engine
        .model()
        .forward(&tensor(&seq[..p]), 0, &mut cache)
        .unwrap();
    let cont = engine
        .score_from(&seq, &targets, stats, &mut cache.clone())
        .unwrap();
    for (x, y) in full.logprob.iter().zip(&cont.logprob) {
        assert!((x - y).abs() < 1e-5, "{x} vs {y}");
    }
    for (x, y) in full
        .entropy
        .unwrap()
        .iter()
        .zip(cont.entropy.unwrap().iter())
    {
        assert!((x - y).abs() < 1e-5);
    }
    // Targets inside the cached prefix cannot be scored from it.
    assert!(engine.score_from(&seq, &[p], stats, &mut cache).is_err());
}

/// Every field of `got` has `n` values, each within 1e-5 of `want`'s.
fn assert_same_outputs(
    got: &padv_core::PositionLogprobs,
    want: &padv_core::PositionLogprobs,
    n: usize,
    what: &str,
) {
    let fields = [
        (&got.logprob, &want.logprob),
        (
            got.entropy.as_ref().unwrap(),
            want.entropy.as_ref().unwrap(),
        ),
        (
            got.topk_mean.as_ref().unwrap(),
            want.topk_mean.as_ref().unwrap(),
        ),
        (
            got.vocab_mean.as_ref().unwrap(),
            want.vocab_mean.as_ref().unwrap(),
        ),
    ];
    for (x, y) in fields {
        assert_eq!(x.len(), n, "{what}");
        assert_eq!(y.len(), n, "{what}");
        for (p, q) in x.iter().zip(y) {
            assert!((p - q).abs() <= 1e-5, "{what}: {p} vs {q}");
        }
    }
}

/// `score_batch` (prefix sharing through one KV cache) equals independent `score` calls, in
/// request order, for requests with no shared prefix, identical requests, one a prefix of
/// another, targets inside the shared prefix, target 1, empty targets and a failing request.
fn check_batch_equals_independent(cfg: &DecoderConfig, attention: AttentionImpl) {
    use padv_core::ScoreRequest;
    let vm = VarMap::new();
    let engine = LocalEngine::from_model(build(cfg, &vm, attention, false), "t".into(), 7);
    let v = cfg.vocab_size as u32;
    let a = ids(1, 40, v);
    let mut b = a[..30].to_vec();
    b.extend(ids(2, 10, v));
    let d = a[..25].to_vec();
    let e = ids(3, 24, v);
    let mut g = a[..35].to_vec();
    g.extend(ids(4, 5, v));
    let bad = vec![v + 3; 6];
    let t_a: Vec<usize> = (20..40).collect();
    let t_b: Vec<usize> = [5].into_iter().chain(25..40).collect();
    let t_d: Vec<usize> = (10..25).collect();
    let t_e: Vec<usize> = (1..20).collect();
    let t_g = vec![33, 34, 36];
    let t_bad = vec![2, 3];
    let requests = [
        ScoreRequest {
            ids: &a,
            targets: &t_a,
        },
        ScoreRequest {
            ids: &b,
            targets: &t_b,
        },
        ScoreRequest {
            ids: &a,
            targets: &t_a,
        },
        ScoreRequest {
            ids: &d,
            targets: &t_d,
        },
        ScoreRequest {
            ids: &e,
            targets: &t_e,
        },
        ScoreRequest {
            ids: &a,
            targets: &[],
        },
        ScoreRequest {
            ids: &bad,
            targets: &t_bad,
        },
        ScoreRequest {
            ids: &g,
            targets: &t_g,
        },
        ScoreRequest {
            ids: &a,
            targets: &t_d,
        },
    ];
    let stats = StatsRequest {
        distribution_stats: true,
    };
    let (batch, cost) = engine.score_batch_shared(&requests, stats);
    assert!(
        cost.computed_positions < cost.independent_positions,
        "{cost:?}"
    );
    let via_trait = engine.score_batch(&requests, stats);
    assert_eq!(batch.len(), requests.len());
    for (k, (r, (got, got_trait))) in requests
        .iter()
        .zip(batch.iter().zip(&via_trait))
        .enumerate()
    {
        let want = engine.score(r.ids, r.targets, stats);
        let (Ok(got), Ok(got_trait), Ok(want)) = (got, got_trait, &want) else {
            assert!(
                got.is_err() && got_trait.is_err() && want.is_err(),
                "request {k}"
            );
            continue;
        };
        assert_eq!(got, got_trait, "request {k}");
        assert_same_outputs(got, want, r.targets.len(), &format!("request {k}"));
    }
    assert!(
        batch[6].is_err(),
        "the out-of-vocabulary request fails alone"
    );
}

/// Phi-3 style LongRoPE with a 32-token original context: the batch requests fall on both
/// sides of it (25 and 40 tokens), where the rotary factors differ, so a prefix computed for
/// one length must not be reused for the other.
fn longrope_like() -> DecoderConfig {
    let mut c = mistral_like();
    c.family = Family::Phi3;
    c.layers.iter_mut().for_each(|l| l.sliding_window = None);
    c.ropes = vec![RopeSpec {
        theta: 10000.0,
        rotary_dim: 8,
        scaling: RopeScaling::LongRope {
            short_factor: vec![1.0, 1.1, 1.2, 1.3],
            long_factor: vec![2.0, 3.0, 5.0, 8.0],
            original_max_position_embeddings: 32,
            attention_factor: 1.2,
        },
    }];
    c
}

#[test]
fn batch_with_shared_prefixes_equals_independent_calls() {
    for attention in [
        AttentionImpl::Kernel,
        AttentionImpl::Full,
        AttentionImpl::Blocked,
    ] {
        check_batch_equals_independent(&mistral_like(), attention);
        check_batch_equals_independent(&gemma_like(), attention);
        check_batch_equals_independent(&longrope_like(), attention);
    }
}

/// K candidates of different lengths after one 40-token history (the fan-out path: one
/// batched pass over the padded continuations), with an out-of-vocabulary candidate among
/// them, equal independent calls; the bad candidate fails alone.
fn check_fanout_equals_independent(cfg: &DecoderConfig, attention: AttentionImpl) {
    use padv_core::ScoreRequest;
    let vm = VarMap::new();
    let engine = LocalEngine::from_model(build(cfg, &vm, attention, false), "t".into(), 5);
    let v = cfg.vocab_size as u32;
    let history = ids(7, 40, v);
    let seqs: Vec<Vec<u32>> = [3usize, 9, 1, 6, 9, 4]
        .iter()
        .enumerate()
        .map(|(k, &n)| {
            let mut s = history.clone();
            s.extend(ids(20 + k as u32, n, v));
            if k == 3 {
                s[40] = v + 1; // sorts last: the valid five stay one run
            }
            s
        })
        .collect();
    let targets: Vec<Vec<usize>> = seqs.iter().map(|s| (40..s.len()).collect()).collect();
    let requests: Vec<ScoreRequest> = seqs
        .iter()
        .zip(&targets)
        .map(|(ids, targets)| ScoreRequest { ids, targets })
        .collect();
    let stats = StatsRequest {
        distribution_stats: true,
    };
    let (batch, cost) = engine.score_batch_shared(&requests, stats);
    assert!(
        cost.computed_positions < cost.independent_positions / 2,
        "{cost:?}"
    );
    assert_eq!(
        cost.fanout_requests, 5,
        "the five valid candidates go as one fan-out: {cost:?}"
    );
    for (k, (r, got)) in requests.iter().zip(&batch).enumerate() {
        let want = engine.score_from(
            r.ids,
            r.targets,
            stats,
            &mut padv_engine::decoder::KvCache::discarding(),
        );
        if k == 3 {
            assert!(
                got.is_err() && want.is_err(),
                "candidate 3 is out of vocabulary"
            );
            continue;
        }
        let (got, want) = (got.as_ref().unwrap(), want.unwrap());
        assert_same_outputs(got, &want, r.targets.len(), &format!("candidate {k}"));
    }
}

#[test]
fn fanout_of_candidates_equals_independent_calls() {
    for attention in [
        AttentionImpl::Kernel,
        AttentionImpl::Full,
        AttentionImpl::Blocked,
    ] {
        check_fanout_equals_independent(&mistral_like(), attention);
        check_fanout_equals_independent(&gemma_like(), attention);
        check_fanout_equals_independent(&longrope_like(), attention);
    }
}
