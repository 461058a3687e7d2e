//! Every method against hand-computed small tensors, the endpoints bit for bit, DARE's
//! determinism, vocabulary alignment, non-float tensors and the written folder.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use safetensors::tensor::View;
use safetensors::Dtype;

use super::*;

struct T {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for T {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn f64s(shape: &[usize], v: &[f64]) -> T {
    let mut bytes = Vec::new();
    st::encode(Dtype::F64, v, &mut bytes);
    T {
        dtype: Dtype::F64,
        shape: shape.to_vec(),
        bytes,
    }
}

fn typed(dtype: Dtype, shape: &[usize], v: &[f64]) -> T {
    let mut bytes = Vec::new();
    st::encode(dtype, v, &mut bytes);
    T {
        dtype,
        shape: shape.to_vec(),
        bytes,
    }
}

/// Writes a checkpoint folder `root/name` holding `tensors`.
fn ckpt(root: &Path, name: &str, tensors: Vec<(&str, T)>) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), format!("{{\"name\": \"{name}\"}}")).unwrap();
    safetensors::serialize_to_file(tensors, None, &dir.join("model.safetensors")).unwrap();
    dir
}

fn spec(method: MergeMethod, alpha: f64, density: Option<f64>) -> MergeSpec {
    MergeSpec::new(method, alpha, density, 0, DareRescale::InvDensity).unwrap()
}

fn merged(reference: &Path, tasks: &[PathBuf], s: MergeSpec, name: &str) -> Vec<f64> {
    let m = Merger::open(reference, tasks, s).unwrap();
    let dtype = m.dtype(name).unwrap();
    decode_all(dtype, &m.tensor_bytes(name).unwrap())
}

fn close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
    }
}

#[test]
fn one_task_vector_by_hand() {
    let root = tempfile::tempdir().unwrap();
    let b = [1.0, 2.0, -1.0, 0.5, 0.0, 3.0];
    // tau = [0.5, -1, 0, 2, -0.25, 0.125]
    let x = [1.5, 1.0, -1.0, 2.5, -0.25, 3.125];
    let r = ckpt(root.path(), "ref", vec![("w", f64s(&[2, 3], &b))]);
    let p = ckpt(root.path(), "pol", vec![("w", f64s(&[2, 3], &x))]);
    let tasks = [p];
    let linear = [1.25, 1.5, -1.0, 1.5, -0.125, 3.0625];
    for m in [
        MergeMethod::Linear,
        MergeMethod::TaskArithmetic,
        MergeMethod::Emr,
    ] {
        close(&merged(&r, &tasks, spec(m, 0.5, None), "w"), &linear);
    }
    // TIES d = 0.5: k = 3 largest |tau| (2, 1, 0.5) kept; the sign election is the identity.
    close(
        &merged(&r, &tasks, spec(MergeMethod::Ties, 0.5, Some(0.5)), "w"),
        &[1.25, 1.5, -1.0, 1.5, 0.0, 3.0],
    );
    // DARE d = 1 keeps everything: linear again; dare_ties equals dare_linear.
    for m in [MergeMethod::DareLinear, MergeMethod::DareTies] {
        close(&merged(&r, &tasks, spec(m, 0.5, Some(1.0)), "w"), &linear);
    }
    // Extrapolation is allowed: alpha 2.
    close(
        &merged(&r, &tasks, spec(MergeMethod::Linear, 2.0, None), "w"),
        &[2.0, 0.0, -1.0, 4.5, -0.5, 3.25],
    );
}

#[test]
fn two_task_vectors_by_hand() {
    let root = tempfile::tempdir().unwrap();
    let b = [0.0; 4];
    let t1 = [1.0, -2.0, 0.5, 0.0];
    let t2 = [-0.5, -1.0, 1.5, 0.25];
    let r = ckpt(root.path(), "ref", vec![("w", f64s(&[4], &b))]);
    let p1 = ckpt(root.path(), "p1", vec![("w", f64s(&[4], &t1))]);
    let p2 = ckpt(root.path(), "p2", vec![("w", f64s(&[4], &t2))]);
    let tasks = [p1, p2];
    let m = |method, d| merged(&r, &tasks, spec(method, 1.0, d), "w");
    close(&m(MergeMethod::Linear, None), &[0.25, -1.5, 1.0, 0.125]);
    close(
        &m(MergeMethod::TaskArithmetic, None),
        &[0.5, -3.0, 2.0, 0.25],
    );
    // TIES without trimming: signs of the sum (+, -, +, +); disjoint means
    // e0: {1} -> 1; e1: {-2, -1} -> -1.5; e2: {0.5, 1.5} -> 1; e3: {0.25} (0 has no sign).
    close(&m(MergeMethod::Ties, Some(1.0)), &[1.0, -1.5, 1.0, 0.25]);
    // TIES d = 0.5 (k = 2 per task): t1 -> [1, -2, 0, 0], t2 -> [0, -1, 1.5, 0].
    close(&m(MergeMethod::Ties, Some(0.5)), &[1.0, -1.5, 1.5, 0.0]);
    // DARE-TIES with d = 1: the agreeing entries summed, not averaged.
    close(
        &m(MergeMethod::DareTies, Some(1.0)),
        &[1.0, -3.0, 2.0, 0.25],
    );
    close(
        &m(MergeMethod::DareLinear, Some(1.0)),
        &[0.5, -3.0, 2.0, 0.25],
    );
    // EMR: gamma (+,-,+,+), tau_uni = [1, -2, 1.5, 0.25]; the policy's mask [1, 1, 1, 0];
    // lambda = mean|t1| / mean|M1 tau_uni| = 0.875 / 1.125.
    let l = 0.875 / 1.125;
    close(&m(MergeMethod::Emr, None), &[l, -2.0 * l, 1.5 * l, 0.0]);
    let merger = Merger::open(&r, &tasks, spec(MergeMethod::Emr, 1.0, None)).unwrap();
    assert!((merger.emr_lambdas_used()[0] - l).abs() < 1e-15);
}

#[test]
fn ties_keeps_exactly_k_with_ties_at_the_threshold_in_storage_order() {
    let root = tempfile::tempdir().unwrap();
    let r = ckpt(root.path(), "ref", vec![("w", f64s(&[5], &[0.0; 5]))]);
    let p = ckpt(
        root.path(),
        "p",
        vec![("w", f64s(&[5], &[1.0, -1.0, 3.0, 1.0, 1.0]))],
    );
    // d = 0.6: k = 3 -> 3.0 and the first two of the four 1's.
    close(
        &merged(&r, &[p], spec(MergeMethod::Ties, 1.0, Some(0.6)), "w"),
        &[1.0, -1.0, 3.0, 0.0, 0.0],
    );
}

#[test]
fn endpoints_are_bit_exact() {
    let root = tempfile::tempdir().unwrap();
    // bf16 and f32 tensors, with a -0.0 in the policy over a positive reference entry (where
    // 0·ref + pol would give +0.0).
    let b = [0.75, -1.5, 2.0, 0.3];
    let x = [-0.0, -1.25, 2.5, 0.1];
    let r = ckpt(
        root.path(),
        "ref",
        vec![
            ("a", typed(Dtype::BF16, &[4], &b)),
            ("b", typed(Dtype::F32, &[2, 2], &b)),
        ],
    );
    let p = ckpt(
        root.path(),
        "pol",
        vec![
            ("a", typed(Dtype::BF16, &[4], &x)),
            ("b", typed(Dtype::F32, &[2, 2], &x)),
        ],
    );
    let rck = st::StCheckpoint::open(&r).unwrap();
    let pck = st::StCheckpoint::open(&p).unwrap();
    for name in ["a", "b"] {
        let ref_bytes = rck.raw(&rck.tensors[name]).unwrap();
        let pol_bytes = pck.raw(&pck.tensors[name]).unwrap();
        for method in MergeMethod::ALL {
            let m0 = Merger::open(&r, std::slice::from_ref(&p), spec(method, 0.0, None)).unwrap();
            assert_eq!(
                m0.tensor_bytes(name).unwrap(),
                ref_bytes,
                "{method} alpha 0 {name}"
            );
        }
        for method in [MergeMethod::Linear, MergeMethod::TaskArithmetic] {
            let m1 = Merger::open(&r, std::slice::from_ref(&p), spec(method, 1.0, None)).unwrap();
            assert_eq!(
                m1.tensor_bytes(name).unwrap(),
                pol_bytes,
                "{method} alpha 1 {name}"
            );
        }
    }
    // In between: the f64 result rounded once to the stored dtype.
    let m = Merger::open(
        &r,
        std::slice::from_ref(&p),
        spec(MergeMethod::Linear, 0.5, None),
    )
    .unwrap();
    let rb = decode_all(Dtype::BF16, &rck.raw(&rck.tensors["a"]).unwrap());
    let pb = decode_all(Dtype::BF16, &pck.raw(&pck.tensors["a"]).unwrap());
    let want: Vec<f64> = rb.iter().zip(&pb).map(|(r, p)| r + 0.5 * (p - r)).collect();
    let mut want_bytes = Vec::new();
    st::encode(Dtype::BF16, &want, &mut want_bytes);
    assert_eq!(m.tensor_bytes("a").unwrap(), want_bytes);
}

#[test]
fn dare_is_deterministic_for_a_seed() {
    let root = tempfile::tempdir().unwrap();
    let n = 20_000;
    let b: Vec<f64> = (0..n).map(|i| (i % 7) as f64 * 0.25).collect();
    let x: Vec<f64> = b.iter().map(|v| v + 1.0).collect();
    let r = ckpt(root.path(), "ref", vec![("w", f64s(&[n], &b))]);
    let p = ckpt(root.path(), "p", vec![("w", f64s(&[n], &x))]);
    let tasks = [p];
    let run = |seed, rescale| {
        let s = MergeSpec::new(MergeMethod::DareLinear, 1.0, Some(0.2), seed, rescale).unwrap();
        merged(&r, &tasks, s, "w")
    };
    let a = run(7, DareRescale::InvDensity);
    assert_eq!(a, run(7, DareRescale::InvDensity), "same seed, same merge");
    assert_ne!(
        a,
        run(8, DareRescale::InvDensity),
        "another seed, other masks"
    );
    // Each entry is dropped (reference) or kept and rescaled by 1/d = 5.
    let mut kept = 0;
    for (i, v) in a.iter().enumerate() {
        if (v - b[i]).abs() < 1e-12 {
            continue;
        }
        assert!((v - (b[i] + 5.0)).abs() < 1e-12, "entry {i}: {v}");
        kept += 1;
    }
    let frac = kept as f64 / n as f64;
    assert!((frac - 0.2).abs() < 0.015, "kept fraction {frac}");
    // L1 rescaling: the kept entries are scaled so the L1 norm of tau is preserved.
    let l1 = run(7, DareRescale::L1);
    let norm: f64 = l1.iter().zip(&b).map(|(v, r)| (v - r).abs()).sum();
    assert!((norm - n as f64).abs() < 1e-6, "L1 norm {norm}");
    // Same masks as the 1/d rescaling.
    for (i, (u, v)) in l1.iter().zip(&a).enumerate() {
        assert_eq!(
            (u - b[i]).abs() > 1e-12,
            (v - b[i]).abs() > 1e-12,
            "entry {i}"
        );
    }
}

#[test]
fn vocabulary_rows_are_aligned_and_other_shapes_refused() {
    let root = tempfile::tempdir().unwrap();
    let r = ckpt(
        root.path(),
        "ref",
        vec![
            ("emb", f64s(&[3, 2], &[0.0; 6])),
            (
                "ids",
                T {
                    dtype: Dtype::I64,
                    shape: vec![2],
                    bytes: [5i64.to_le_bytes(), 9i64.to_le_bytes()].concat(),
                },
            ),
        ],
    );
    // Policy with 2 rows: padded by repeating its last row; extra policy with 4: truncated.
    let p = ckpt(
        root.path(),
        "p",
        vec![
            ("emb", f64s(&[2, 2], &[1.0, 2.0, 3.0, 4.0])),
            (
                "ids",
                T {
                    dtype: Dtype::I64,
                    shape: vec![2],
                    bytes: [0i64.to_le_bytes(), 0i64.to_le_bytes()].concat(),
                },
            ),
        ],
    );
    let q = ckpt(
        root.path(),
        "q",
        vec![(
            "emb",
            f64s(&[4, 2], &[10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0]),
        )],
    );
    close(
        &merged(
            &r,
            std::slice::from_ref(&p),
            spec(MergeMethod::Linear, 1.0, None),
            "emb",
        ),
        &[1.0, 2.0, 3.0, 4.0, 3.0, 4.0],
    );
    let m = Merger::open(
        &r,
        &[p.clone(), q.clone()],
        spec(MergeMethod::TaskArithmetic, 1.0, None),
    )
    .unwrap();
    close(
        &decode_all(Dtype::F64, &m.tensor_bytes("emb").unwrap()),
        &[11.0, 22.0, 33.0, 44.0, 53.0, 64.0],
    );
    assert_eq!(m.aligned().len(), 2);
    assert_eq!(m.aligned()[0].how, "padded (last row repeated)");
    assert_eq!(m.aligned()[1].how, "truncated");
    // The integer tensor is the reference's.
    assert_eq!(m.copied(), ["ids".to_string()]);
    assert_eq!(
        m.tensor_bytes("ids").unwrap(),
        [5i64.to_le_bytes(), 9i64.to_le_bytes()].concat()
    );
    // Another shape difference, and a missing tensor, are errors naming the tensor.
    let bad = ckpt(root.path(), "bad", vec![("emb", f64s(&[3, 3], &[0.0; 9]))]);
    let e = Merger::open(&r, &[bad], spec(MergeMethod::Linear, 0.5, None)).unwrap_err();
    assert!(
        e.to_string().contains("`emb`") && e.to_string().contains("[3, 3]"),
        "{e}"
    );
    let none = ckpt(root.path(), "none", vec![("other", f64s(&[1], &[0.0]))]);
    let e = Merger::open(&r, &[none], spec(MergeMethod::Linear, 0.5, None)).unwrap_err();
    assert!(
        e.to_string().contains("`emb`") && e.to_string().contains("not in"),
        "{e}"
    );
}

#[test]
fn written_folder_keeps_names_dtypes_and_files() {
    let root = tempfile::tempdir().unwrap();
    let r = ckpt(
        root.path(),
        "ref",
        vec![
            ("w", typed(Dtype::BF16, &[2], &[1.0, 2.0])),
            ("v", f64s(&[1], &[0.5])),
        ],
    );
    std::fs::write(r.join("tokenizer.json"), "{}").unwrap();
    std::fs::create_dir_all(r.join("extra")).unwrap();
    std::fs::write(r.join("extra/t.jinja"), "x").unwrap();
    let p = ckpt(
        root.path(),
        "p",
        vec![
            ("w", typed(Dtype::BF16, &[2], &[3.0, 4.0])),
            ("v", f64s(&[1], &[1.5])),
        ],
    );
    let m = Merger::open(
        &r,
        std::slice::from_ref(&p),
        spec(MergeMethod::Linear, 0.5, None),
    )
    .unwrap();
    let out = root.path().join("out");
    let report = write_merged(&m, &out, FilesFrom::Reference, &|_, _| {}).unwrap();
    assert_eq!(report.tensors, 2);
    assert_eq!(report.weight_files, ["model.safetensors"]);
    let written = st::StCheckpoint::open(&out).unwrap();
    assert_eq!(written.tensors["w"].dtype, Dtype::BF16);
    close(
        &decode_all(Dtype::BF16, &written.raw(&written.tensors["w"]).unwrap()),
        &[2.0, 3.0],
    );
    close(
        &decode_all(Dtype::F64, &written.raw(&written.tensors["v"]).unwrap()),
        &[1.0],
    );
    for f in [
        "config.json",
        "tokenizer.json",
        "extra/t.jinja",
        PROVENANCE_FILE,
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let note: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(PROVENANCE_FILE)).unwrap()).unwrap();
    assert_eq!(note["label"], "linear-a0.5");
    // No temporary folder left; an existing non-empty output is refused.
    let left: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(left.is_empty());
    let e = write_merged(&m, &out, FilesFrom::Reference, &|_, _| {}).unwrap_err();
    assert!(e.to_string().contains("not empty"), "{e}");
}
