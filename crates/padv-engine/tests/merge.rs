//! Merged references end to end on the committed fixture pair (qwen2 policy, qwen2_ref
//! reference): a written merge loads in padv; α = 0 and α = 1 score exactly like the
//! reference and the policy; in between the numbers move continuously; the in-memory merge
//! equals the written one; and the merged fingerprint changes with every input.
#![cfg(feature = "decoder")]

use std::path::{Path, PathBuf};

use padv_core::{LogprobBackend, StatsRequest};
use padv_engine::logprobs::{EngineOptions, LocalEngine};
use padv_engine::merge::{
    load_merged, write_merged, DareRescale, FilesFrom, MergeMethod, MergeSpec, Merger,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

fn ids() -> Vec<u32> {
    (0..80u32).map(|i| (i * 37 + 11) % 512).collect()
}

fn logprobs(engine: &dyn LogprobBackend) -> Vec<f32> {
    let ids = ids();
    let targets: Vec<usize> = (1..ids.len()).collect();
    engine
        .score(&ids, &targets, StatsRequest::default())
        .unwrap()
        .logprob
}

fn spec(method: MergeMethod, alpha: f64) -> MergeSpec {
    MergeSpec::new(method, alpha, None, 0, DareRescale::InvDensity).unwrap()
}

fn written(root: &Path, s: MergeSpec) -> LocalEngine {
    let m = Merger::open(&fixture("qwen2_ref"), &[fixture("qwen2")], s).unwrap();
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = root.join(format!("{}-{n}", s.label()));
    write_merged(&m, &out, FilesFrom::Reference, &|_, _| {}).unwrap();
    LocalEngine::load(&out, EngineOptions::default()).unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn merged_checkpoints_interpolate_between_reference_and_policy() {
    let root = tempfile::tempdir().unwrap();
    let reference =
        logprobs(&LocalEngine::load(&fixture("qwen2_ref"), EngineOptions::default()).unwrap());
    let policy = logprobs(&LocalEngine::load(&fixture("qwen2"), EngineOptions::default()).unwrap());
    let gap = max_diff(&reference, &policy);
    assert!(gap > 0.1, "the fixture pair must differ ({gap})");

    // Endpoints: exactly the parents' numbers (the merged folders hold their bytes).
    assert_eq!(
        logprobs(&written(root.path(), spec(MergeMethod::Linear, 0.0))),
        reference
    );
    assert_eq!(
        logprobs(&written(root.path(), spec(MergeMethod::Linear, 1.0))),
        policy
    );
    assert_eq!(
        logprobs(&written(root.path(), spec(MergeMethod::Ties, 0.0))),
        reference
    );

    // In between: continuous in alpha, strictly away from both parents at 0.5.
    let near = logprobs(&written(root.path(), spec(MergeMethod::Linear, 0.01)));
    let half = logprobs(&written(root.path(), spec(MergeMethod::Linear, 0.5)));
    let d_near = max_diff(&near, &reference);
    assert!(
        d_near > 0.0 && d_near < 0.1 * gap,
        "alpha 0.01: {d_near} vs gap {gap}"
    );
    let (to_ref, to_pol) = (max_diff(&half, &reference), max_diff(&half, &policy));
    assert!(
        to_ref > 10.0 * d_near && to_pol > 0.05 * gap,
        "alpha 0.5: {to_ref} {to_pol}"
    );
    // One task vector: task_arithmetic and EMR are linear (same bytes, same numbers).
    assert_eq!(
        logprobs(&written(
            root.path(),
            spec(MergeMethod::TaskArithmetic, 0.5)
        )),
        half
    );
    assert_eq!(
        logprobs(&written(root.path(), spec(MergeMethod::Emr, 0.5))),
        half
    );

    // In memory: the same numbers as the written folder, for a sparsifying method too.
    for s in [
        spec(MergeMethod::Linear, 0.5),
        spec(MergeMethod::DareTies, 0.75),
    ] {
        let mem = load_merged(
            &fixture("qwen2_ref"),
            &[fixture("qwen2")],
            s,
            EngineOptions::default(),
        )
        .unwrap();
        assert_eq!(
            logprobs(&mem),
            logprobs(&written(root.path(), s)),
            "{}",
            s.label()
        );
    }
}

#[test]
fn merged_fingerprints_change_with_every_input() {
    let fp = |reference: &Path, policy: &Path, s: MergeSpec| {
        load_merged(
            reference,
            &[policy.to_path_buf()],
            s,
            EngineOptions::default(),
        )
        .unwrap()
        .fingerprint()
    };
    let (r, p) = (fixture("qwen2_ref"), fixture("qwen2"));
    let dare = |method, alpha, density, seed, rescale| {
        MergeSpec::new(method, alpha, Some(density), seed, rescale).unwrap()
    };
    let base_spec = dare(MergeMethod::DareTies, 0.5, 0.2, 0, DareRescale::InvDensity);
    let base = fp(&r, &p, base_spec);
    assert!(
        base.starts_with("padv-merged/qwen2/dare_ties-a0.5-d0.2-s0/"),
        "{base}"
    );
    let variants = [
        dare(MergeMethod::DareTies, 0.25, 0.2, 0, DareRescale::InvDensity),
        dare(MergeMethod::DareTies, 0.5, 0.3, 0, DareRescale::InvDensity),
        dare(MergeMethod::DareTies, 0.5, 0.2, 1, DareRescale::InvDensity),
        dare(MergeMethod::DareTies, 0.5, 0.2, 0, DareRescale::L1),
        dare(
            MergeMethod::DareLinear,
            0.5,
            0.2,
            0,
            DareRescale::InvDensity,
        ),
    ];
    for v in variants {
        assert_ne!(fp(&r, &p, v), base, "{}", v.label());
    }
    // Parents' weight bytes: one changed byte in a copy of either parent.
    let root = tempfile::tempdir().unwrap();
    for (which, src) in [("ref", &r), ("pol", &p)] {
        let copy = root.path().join(which);
        std::fs::create_dir_all(&copy).unwrap();
        for e in std::fs::read_dir(src).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
        }
        // Unchanged copy: same fingerprint (content, not paths).
        let (rr, pp) = if which == "ref" {
            (copy.clone(), p.clone())
        } else {
            (r.clone(), copy.clone())
        };
        assert_eq!(fp(&rr, &pp, base_spec), base, "{which} copy");
        let w = copy.join("model.safetensors");
        let mut bytes = std::fs::read(&w).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&w, bytes).unwrap();
        assert_ne!(fp(&rr, &pp, base_spec), base, "{which} byte changed");
    }
}

#[test]
fn sharded_references_keep_their_shards_and_index() {
    // The llama fixture is stored as model.safetensors.index.json + two shards.
    let root = tempfile::tempdir().unwrap();
    let llama = fixture("llama");
    let m = Merger::open(
        &llama,
        std::slice::from_ref(&llama),
        spec(MergeMethod::Ties, 0.7),
    )
    .unwrap();
    let out = root.path().join("merged");
    let report = write_merged(&m, &out, FilesFrom::Policy, &|_, _| {}).unwrap();
    let index = |dir: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join("model.safetensors.index.json")).unwrap())
            .unwrap()
    };
    let (a, b) = (index(&llama), index(&out));
    assert_eq!(a["weight_map"], b["weight_map"], "same tensor -> shard map");
    assert_eq!(report.weight_files.len(), 2);
    for f in &report.weight_files {
        let header = |dir: &Path| -> Vec<String> {
            let bytes = std::fs::read(dir.join(f)).unwrap();
            let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            let v: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
            let mut names: Vec<String> = v
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "__metadata__")
                .cloned()
                .collect();
            names.sort();
            names
        };
        assert_eq!(header(&llama), header(&out), "{f}");
    }
    // A merge of a model with itself is the model: it loads and scores identically.
    let original = LocalEngine::load(&llama, EngineOptions::default()).unwrap();
    let merged = LocalEngine::load(&out, EngineOptions::default()).unwrap();
    assert_eq!(logprobs(&merged), logprobs(&original));
}
