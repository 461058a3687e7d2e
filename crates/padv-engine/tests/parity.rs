//! Parity of the local engine with Hugging Face transformers on tiny committed checkpoints.
//!
//! Each fixture folder under `tests/fixtures/models/<family>/` holds a random-weight
//! checkpoint and `expected.json`: per case, float64 transformers statistics of every
//! position (log-prob of the next token, top-20 mean, entropy, vocabulary mean), written by
//! `scripts/make_model_fixtures.py`. In f32 the engine must agree to 1e-4 on all four.
//! A missing folder is skipped with a note (the fixtures are generated separately).
#![cfg(feature = "decoder")]

use std::path::{Path, PathBuf};

use padv_core::{BackendError, LogprobBackend, PositionLogprobs, StatsRequest};
use padv_engine::checkpoint::{resolve_model_path_in, weight_files, Checkpoint, CheckpointError};
use padv_engine::decoder::AttentionImpl;
use padv_engine::logprobs::{ComputeDType, EngineOptions, LocalEngine};

/// f32 tolerance on every statistic (absolute, nats).
const TOL_F32: f64 = 1e-4;

fn fixture(name: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name);
    if dir.join("expected.json").is_file() {
        Some(dir)
    } else {
        eprintln!("note: fixture {} absent, test skipped", dir.display());
        None
    }
}

struct Case {
    name: String,
    ids: Vec<u32>,
    logprob: Vec<f64>,
    topk_mean: Vec<f64>,
    entropy: Vec<f64>,
    vocab_mean: Vec<f64>,
}

fn expected(dir: &Path) -> (serde_json::Value, Vec<Case>) {
    let text = std::fs::read_to_string(dir.join("expected.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let nums = |c: &serde_json::Value, k: &str| -> Vec<f64> {
        c[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let cases = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            ids: c["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect(),
            logprob: nums(c, "logprob"),
            topk_mean: nums(c, "topk_mean"),
            entropy: nums(c, "entropy"),
            vocab_mean: nums(c, "vocab_mean"),
        })
        .collect();
    (v, cases)
}

fn all_targets(ids: &[u32]) -> Vec<usize> {
    (1..ids.len()).collect()
}

fn max_abs(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(g, w)| (*g as f64 - w).abs())
        .fold(0.0, f64::max)
}

/// Scores every case of the fixture and returns the largest deviation per statistic.
fn deviations(engine: &mut LocalEngine, cases: &[Case]) -> [f64; 4] {
    let mut worst = [0.0f64; 4];
    for case in cases {
        let r: PositionLogprobs = engine
            .score(
                &case.ids,
                &all_targets(&case.ids),
                StatsRequest {
                    distribution_stats: true,
                },
            )
            .unwrap();
        let d = [
            max_abs(&r.logprob, &case.logprob),
            max_abs(r.topk_mean.as_ref().unwrap(), &case.topk_mean),
            max_abs(r.entropy.as_ref().unwrap(), &case.entropy),
            max_abs(r.vocab_mean.as_ref().unwrap(), &case.vocab_mean),
        ];
        eprintln!(
            "  {:<22} logprob {:.2e} topk {:.2e} entropy {:.2e} vocab {:.2e}",
            case.name, d[0], d[1], d[2], d[3]
        );
        for i in 0..4 {
            worst[i] = worst[i].max(d[i]);
        }
    }
    worst
}

fn load(dir: &Path, dtype: ComputeDType, attention: AttentionImpl) -> LocalEngine {
    LocalEngine::load(
        dir,
        EngineOptions {
            dtype,
            attention,
            ..EngineOptions::default()
        },
    )
    .unwrap()
}

/// The same checkpoint built as the trainable (differentiable, unfused) model.
fn trainable(dir: &Path, attention: AttentionImpl) -> LocalEngine {
    let opts = EngineOptions {
        chunk_rows: 64,
        attention,
        trainable: true,
        ..EngineOptions::default()
    };
    LocalEngine::load(dir, opts).unwrap()
}

fn check_family(name: &str) {
    let Some(dir) = fixture(name) else { return };
    let (_meta, cases) = expected(&dir);
    for (label, mut engine) in [
        ("kernel", load(&dir, ComputeDType::F32, AttentionImpl::Auto)),
        (
            "blocked",
            load(&dir, ComputeDType::F32, AttentionImpl::Blocked),
        ),
        ("trainable/full", trainable(&dir, AttentionImpl::Full)),
    ] {
        eprintln!("{name} [{label}]");
        let worst = deviations(&mut engine, &cases);
        let names = ["logprob", "topk_mean", "entropy", "vocab_mean"];
        for (w, n) in worst.iter().zip(names) {
            assert!(
                *w <= TOL_F32,
                "{name} [{label}]: {n} deviates by {w:.3e} > {TOL_F32}"
            );
        }
    }
}

#[test]
fn parity_llama() {
    check_family("llama");
}

#[test]
fn parity_qwen2() {
    check_family("qwen2");
}

#[test]
fn parity_qwen3() {
    check_family("qwen3");
}

#[test]
fn parity_mistral() {
    check_family("mistral");
}

#[test]
fn parity_gemma2() {
    check_family("gemma2");
}

#[test]
fn parity_gemma3() {
    check_family("gemma3");
}

#[test]
fn parity_olmo2() {
    check_family("olmo2");
}

#[test]
fn parity_phi3() {
    check_family("phi3");
}

/// bf16 weights: computed in f32 they are exact, so the f32 tolerance holds; computed in
/// bf16 the error is of the order transformers itself shows in bf16
/// (`hf_bfloat16_compute_max_abs_diff` in expected.json), and we allow 3× that, at least
/// 0.05 nats (candle and PyTorch round bf16 intermediates at different points).
#[test]
fn parity_qwen2_bf16() {
    let Some(dir) = fixture("qwen2_bf16") else {
        return;
    };
    let (meta, cases) = expected(&dir);
    let ckpt = Checkpoint::open(&dir).unwrap();
    assert_eq!(ckpt.weights.stored_dtypes(), vec![candle_core::DType::BF16]);
    let worst = deviations(
        &mut load(&dir, ComputeDType::F32, AttentionImpl::Auto),
        &cases,
    );
    assert!(
        worst[0] <= TOL_F32,
        "bf16 weights, f32 compute: {:.3e}",
        worst[0]
    );
    let hf = meta["hf_bfloat16_compute_max_abs_diff"]
        .as_f64()
        .unwrap_or(0.0);
    let tol = (3.0 * hf).max(0.05);
    let worst = deviations(
        &mut load(&dir, ComputeDType::Bf16, AttentionImpl::Auto),
        &cases,
    );
    eprintln!("bf16 compute: worst logprob deviation {:.3e} (transformers bf16: {hf:.3e}, tolerance {tol:.3e})", worst[0]);
    assert!(
        worst[0] <= tol,
        "bf16 compute: {:.3e} > {tol:.3e}",
        worst[0]
    );
}

#[test]
fn sharded_llama_loads_from_index() {
    let Some(dir) = fixture("llama") else { return };
    assert!(dir.join("model.safetensors.index.json").is_file());
    let files = weight_files(&dir).unwrap();
    assert!(files.len() >= 2, "expected shards, got {files:?}");
    let ckpt = Checkpoint::open(&dir).unwrap();
    // Every layer tensor is found whichever shard holds it.
    for i in 0..ckpt.config.num_layers() {
        assert!(ckpt
            .weights
            .contains(&format!("model.layers.{i}.mlp.down_proj.weight")));
    }
}

#[test]
fn chunk_size_does_not_change_results() {
    let Some(dir) = fixture("qwen2") else { return };
    let (_, cases) = expected(&dir);
    let case = &cases[0];
    let targets = all_targets(&case.ids);
    let stats = StatsRequest {
        distribution_stats: true,
    };
    let mut engine = load(&dir, ComputeDType::F32, AttentionImpl::Auto);
    let mut results = Vec::new();
    for rows in [1, 7, 1000] {
        engine.set_chunk_rows(rows);
        results.push(engine.score(&case.ids, &targets, stats).unwrap());
    }
    let l0: Vec<f64> = results[0].logprob.iter().map(|&x| x as f64).collect();
    let e0: Vec<f64> = results[0]
        .entropy
        .as_ref()
        .unwrap()
        .iter()
        .map(|&x| x as f64)
        .collect();
    for r in &results[1..] {
        let (dl, de) = (
            max_abs(&r.logprob, &l0),
            max_abs(r.entropy.as_ref().unwrap(), &e0),
        );
        eprintln!("chunk sizes: max |delta| logprob {dl:.2e}, entropy {de:.2e}");
        // gemm sums a 1-row product in another order than a 1000-row one: f32 rounding
        // differences of ~1e-6 remain; a chunking mistake would show as O(1) errors.
        assert!(dl < 1e-5 && de < 1e-5);
    }
}

#[test]
fn subset_of_targets_matches_full_scoring() {
    let Some(dir) = fixture("mistral") else {
        return;
    };
    let (_, cases) = expected(&dir);
    let engine = load(&dir, ComputeDType::F32, AttentionImpl::Auto);
    for case in &cases {
        // Every third position, ending well before the sequence does (trailing tokens are
        // then never run).
        let targets: Vec<usize> = (1..case.ids.len() - 5).step_by(3).collect();
        let r = engine
            .score(&case.ids, &targets, StatsRequest::default())
            .unwrap();
        assert!(r.entropy.is_none());
        let want: Vec<f64> = targets.iter().map(|t| case.logprob[t - 1]).collect();
        assert!(max_abs(&r.logprob, &want) <= TOL_F32, "{}", case.name);
    }
}

#[test]
fn invalid_requests_are_rejected() {
    let Some(dir) = fixture("qwen2") else { return };
    let engine = load(&dir, ComputeDType::F32, AttentionImpl::Auto);
    let v = engine.vocab_size() as u32;
    let s = StatsRequest::default();
    assert!(matches!(
        engine.score(&[1, 2, 3], &[0], s),
        Err(BackendError::Invalid(_))
    ));
    assert!(matches!(
        engine.score(&[1, 2, 3], &[3], s),
        Err(BackendError::Invalid(_))
    ));
    assert!(matches!(
        engine.score(&[1, 2, 3], &[2, 1], s),
        Err(BackendError::Invalid(_))
    ));
    assert!(matches!(
        engine.score(&[1, v, 3], &[1], s),
        Err(BackendError::Invalid(_))
    ));
    let empty = engine.score(&[1, 2, 3], &[], s).unwrap();
    assert!(empty.logprob.is_empty());
    assert!(engine
        .fingerprint()
        .starts_with("padv-local/qwen2/f32/cpu/"));
}

#[test]
fn fingerprint_tracks_dtype_and_weights() {
    let (Some(a), Some(b)) = (fixture("qwen2"), fixture("qwen2_bf16")) else {
        return;
    };
    let f = |dir: &Path, d| load(dir, d, AttentionImpl::Auto).fingerprint();
    assert_eq!(f(&a, ComputeDType::F32), f(&a, ComputeDType::F32));
    assert_ne!(f(&a, ComputeDType::F32), f(&a, ComputeDType::Bf16));
    assert_ne!(f(&a, ComputeDType::F32), f(&b, ComputeDType::F32));
}

// ---- checkpoint location and config errors (no fixtures needed) ----

#[test]
fn resolves_hub_cache_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("hub");
    let repo = cache.join("models--acme--tiny-lm");
    let snap = repo.join("snapshots").join("0123abc");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("snapshots").join("fedcba9")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs").join("main"), "0123abc\n").unwrap();
    let caches = vec![tmp.path().join("empty-cache"), cache.clone()];
    // refs/main wins over the other snapshot.
    assert_eq!(
        resolve_model_path_in("acme/tiny-lm", &caches).unwrap(),
        snap
    );
    // An explicit snapshot hash.
    assert_eq!(
        resolve_model_path_in("acme/tiny-lm@fedcba9", &caches).unwrap(),
        repo.join("snapshots").join("fedcba9")
    );
    // A directory path is taken as is.
    assert_eq!(
        resolve_model_path_in(snap.to_str().unwrap(), &[]).unwrap(),
        snap
    );
    // Without refs/, the only snapshot is used.
    let repo2 = cache.join("models--acme--other");
    let only = repo2.join("snapshots").join("77");
    std::fs::create_dir_all(&only).unwrap();
    assert_eq!(resolve_model_path_in("acme/other", &caches).unwrap(), only);
    // Not found: the error lists every place searched.
    let err = resolve_model_path_in("acme/missing", &caches).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, CheckpointError::NotFound { .. }));
    assert!(msg.contains("models--acme--missing"), "{msg}");
    assert!(msg.contains("empty-cache"), "{msg}");
}

fn write_config(dir: &Path, json: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.json"), json).unwrap();
}

#[test]
fn missing_config_field_names_file_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    write_config(
        tmp.path(),
        r#"{"model_type": "qwen2", "vocab_size": 10, "intermediate_size": 8,
            "num_hidden_layers": 1, "num_attention_heads": 2}"#,
    );
    let err = LocalEngine::load(tmp.path(), EngineOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("config.json"), "{msg}");
    assert!(msg.contains("hidden_size"), "{msg}");
}

#[test]
fn unsupported_model_type_names_file_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    write_config(tmp.path(), r#"{"model_type": "gpt2", "vocab_size": 10}"#);
    let err = LocalEngine::load(tmp.path(), EngineOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("config.json"), "{msg}");
    assert!(msg.contains("model_type"), "{msg}");
    assert!(msg.contains("gpt2"), "{msg}");
}

#[test]
fn malformed_config_reports_position() {
    let tmp = tempfile::tempdir().unwrap();
    write_config(
        tmp.path(),
        r#"{"model_type": "llama", "hidden_size": "wide"}"#,
    );
    let msg = LocalEngine::load(tmp.path(), EngineOptions::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("config.json") && msg.contains("line"), "{msg}");
}

#[test]
fn shape_mismatch_names_tensor() {
    let Some(dir) = fixture("qwen2") else { return };
    let tmp = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, tmp.path().join(f.file_name().unwrap())).unwrap();
    }
    // Claim a wider MLP than the weights have.
    let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    v["intermediate_size"] = serde_json::json!(96);
    std::fs::write(tmp.path().join("config.json"), v.to_string()).unwrap();
    let msg = LocalEngine::load(tmp.path(), EngineOptions::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("mlp.") && msg.contains("96"), "{msg}");
}

/// Multimodal Gemma 3 checkpoints nest the text config under `text_config` and prefix the
/// decoder's tensors with `model.language_model.`: the text fixture rewritten that way must
/// give the same numbers.
#[test]
fn gemma3_multimodal_layout_loads() {
    let Some(dir) = fixture("gemma3") else { return };
    let (_, cases) = expected(&dir);
    let tmp = tempfile::tempdir().unwrap();
    let text: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let wrapper = serde_json::json!({"model_type": "gemma3", "text_config": text});
    std::fs::write(tmp.path().join("config.json"), wrapper.to_string()).unwrap();
    // Rename every tensor in the safetensors header; the data section is unchanged.
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let renamed: serde_json::Map<String, serde_json::Value> = header
        .into_iter()
        .map(|(k, v)| match k.strip_prefix("model.") {
            Some(rest) => (format!("model.language_model.{rest}"), v),
            None => (k, v),
        })
        .collect();
    let mut h = serde_json::to_vec(&renamed).unwrap();
    // Pad the header with spaces to a multiple of 8 bytes, as safetensors writers do.
    h.resize(h.len().div_ceil(8) * 8, b' ');
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&bytes[8 + n..]);
    std::fs::write(tmp.path().join("model.safetensors"), out).unwrap();

    let ckpt = Checkpoint::open(tmp.path()).unwrap();
    assert_eq!(ckpt.body_prefix, "model.language_model");
    let worst = deviations(
        &mut load(tmp.path(), ComputeDType::F32, AttentionImpl::Auto),
        &cases,
    );
    assert!(worst[0] <= TOL_F32, "{:.3e}", worst[0]);
}

/// f16 compute runs end to end; its error is far below bf16's (10 mantissa bits against 7).
#[test]
fn f16_compute_is_close() {
    let Some(dir) = fixture("qwen2") else { return };
    let (_, cases) = expected(&dir);
    let worst = deviations(
        &mut load(&dir, ComputeDType::F16, AttentionImpl::Auto),
        &cases,
    );
    eprintln!("f16 compute: worst deviations {worst:?}");
    assert!(worst[0] <= 0.05, "f16 compute: {:.3e}", worst[0]);
}
