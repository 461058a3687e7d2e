//! End to end through the binary: `padv merge`, `padv score --reference-merge`, `padv judge`
//! (a local reward model, a PRM and an LLM judge behind a mock server on 127.0.0.1, import)
//! and the judges in `padv eval`.

#[path = "../../padv-remote/tests/support/mock_judge.rs"]
mod mock_judge;
#[path = "../../padv-remote/tests/support/server.rs"]
mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use padv_core::record::read_records;

fn padv(args: &[&str]) -> Output {
    padv_env(args, &[])
}

fn padv_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_padv"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("running padv")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "padv failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn err(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "expected an error");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn model(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../padv-engine/tests/fixtures/models")
        .join(name)
        .display()
        .to_string()
}

/// `padv score` of `runs` with the fixture pair into `out`.
fn score(runs: &Path, out: &Path) {
    ok(&padv(&[
        "score",
        "--policy",
        &model("qwen2"),
        "--reference",
        &model("qwen2_ref"),
        "-i",
        runs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
}

/// Ten two-action trajectories of five tasks, half of them failures with a mistake step.
fn trajectories(dir: &Path) -> PathBuf {
    let mut lines = Vec::new();
    for i in 0..10 {
        let fail = i % 2 == 1;
        let t = serde_json::json!({
            "id": format!("t{i}"),
            "task_id": format!("k{}", i / 2),
            "reward": if fail { 0.0 } else { 1.0 },
            "mistake_step": if fail { serde_json::json!(3) } else { serde_json::Value::Null },
            "messages": [
                {"role": "user", "content": format!("Book flight {i} to Paris.")},
                {"role": "assistant", "content": "Searching the flights."},
                {"role": "tool", "content": if fail { "error: no seats" } else { "3 seats" }},
                {"role": "assistant", "content": if fail { "Sorry, I cannot book it." } else { "Booked seat 2." }},
            ]
        });
        lines.push(t.to_string());
    }
    let p = dir.join("runs.jsonl");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

#[test]
fn merge_writes_a_checkpoint_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let o = out.to_str().unwrap();
    let args = [
        "merge",
        "--policy",
        &model("qwen2"),
        "--reference",
        &model("qwen2_ref"),
        "--method",
        "dare_ties",
        "--alpha",
        "0.5",
        "--density",
        "0.3",
        "--seed",
        "4",
        "--out",
        o,
    ];
    ok(&padv(&args));
    for f in [
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "padv_merge.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let note: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("padv_merge.json")).unwrap()).unwrap();
    assert_eq!(note["label"], "dare_ties-a0.5-d0.3-s4");
    let e = err(&padv(&args));
    assert!(e.contains("not empty"), "{e}");
    let e = err(&padv(&[
        "merge",
        "--policy",
        &model("llama"),
        "--reference",
        &model("qwen2_ref"),
        "--method",
        "linear",
        "--alpha",
        "0.5",
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]));
    assert!(e.contains("tensor `") && e.contains("llama"), "{e}");
    assert!(!dir.path().join("x").exists(), "nothing written on error");
    let e = err(&padv(&[
        "merge",
        "--policy",
        &model("qwen2"),
        "--reference",
        &model("qwen2_ref"),
        "--method",
        "ties",
        "--alpha",
        "0.5",
        "--density",
        "1.5",
        "--out",
        dir.path().join("y").to_str().unwrap(),
    ]));
    assert!(e.contains("density"), "{e}");
}

#[test]
fn reference_merge_sweep_writes_one_folder_per_alpha() {
    let dir = tempfile::tempdir().unwrap();
    let runs = trajectories(dir.path());
    let out = dir.path().join("sweep");
    let stdout = ok(&padv(&[
        "score",
        "--policy",
        &model("qwen2"),
        "--reference",
        &model("qwen2_ref"),
        "-i",
        runs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--reference-merge",
        "linear:0,1",
        "--reference-merge",
        "ties:0.5",
        "--eval",
        "uq",
    ]));
    assert!(
        stdout.contains("reference sweep") && stdout.contains("ties-a0.5-d0.2"),
        "{stdout}"
    );
    let plain = dir.path().join("plain");
    score(&runs, &plain);
    let read = |p: PathBuf| read_records(&p.join("records.jsonl")).unwrap();
    let base = read(plain.clone());
    let a0 = read(out.join("ref-linear-a0"));
    let a1 = read(out.join("ref-linear-a1"));
    assert_eq!(a0.len(), 10);
    for ((b, r0), r1) in base.iter().zip(&a0).zip(&a1) {
        for ((sb, s0), s1) in b.steps.iter().zip(&r0.steps).zip(&r1.steps) {
            // alpha 0: the reference's log-probs; alpha 1: the policy's, exactly.
            assert_eq!(sb.reference, s0.reference);
            assert_eq!(Some(&s1.policy), s1.reference.as_ref());
        }
    }
    let sweep: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("sweep.json")).unwrap()).unwrap();
    let labels: Vec<&str> = sweep
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["linear-a0", "linear-a1", "ties-a0.5-d0.2"]);
    let fps: Vec<&str> = sweep
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["fingerprint"].as_str().unwrap())
        .collect();
    assert!(fps[0] != fps[1] && fps[1] != fps[2]);
    // Each folder is a plain `padv eval` input.
    ok(&padv(&[
        "eval",
        "uq",
        "-i",
        out.join("ref-ties-a0.5-d0.2").to_str().unwrap(),
    ]));
    let e = err(&padv(&[
        "score",
        "--policy",
        &model("qwen2"),
        "--reference",
        &model("qwen2_ref"),
        "-i",
        runs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--reference-merge",
        "linear:0.5,x",
    ]));
    assert!(e.contains("\"x\" is not a number"), "{e}");
}

#[test]
fn judges_are_scored_attached_and_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    let runs = trajectories(dir.path());
    let scored = dir.path().join("scored");
    score(&runs, &scored);

    // A local outcome reward model.
    let rm = dir.path().join("rm");
    ok(&padv(&[
        "judge",
        "--kind",
        "outcome-rm",
        "--model",
        &model("qwen2_cls"),
        "-i",
        runs.to_str().unwrap(),
        "--out",
        rm.to_str().unwrap(),
        "--name",
        "rm",
        "--attach",
        scored.to_str().unwrap(),
    ]));
    // A PRM and an LLM judge behind the mock server, with an API key from the environment.
    let mock = server::Server::start(mock_judge::MockJudge {
        name: "mock".into(),
        logprobs: true,
    });
    let prm = dir.path().join("prm");
    ok(&padv_env(
        &[
            "judge",
            "--kind",
            "prm",
            "--endpoint",
            &mock.url,
            "--model",
            "mock",
            "--api-key-env",
            "JUDGE_KEY",
            "-i",
            runs.to_str().unwrap(),
            "--out",
            prm.to_str().unwrap(),
            "--attach",
            scored.to_str().unwrap(),
        ],
        &[("JUDGE_KEY", "sk-secret-9")],
    ));
    assert_eq!(
        mock.last_authorization().as_deref(),
        Some("Bearer sk-secret-9")
    );
    let info = std::fs::read_to_string(prm.join("judge.json")).unwrap();
    assert!(!info.contains("sk-secret-9"), "the key must not be written");
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["counts"]["prm_steps_from_logprobs"], 20);
    ok(&padv(&[
        "judge",
        "--kind",
        "llm-judge",
        "--endpoint",
        &mock.url,
        "--model",
        "mock",
        "--api",
        "completions",
        "-i",
        runs.to_str().unwrap(),
        "--out",
        dir.path().join("llm").to_str().unwrap(),
        "--attach",
        scored.to_str().unwrap(),
    ]));

    let records = read_records(&scored.join("records.jsonl")).unwrap();
    assert!(records.iter().all(|r| r.judges.len() == 3));
    assert_eq!(records[1].judges["prm"].steps.len(), 2);
    // The mock fails the apology step of the failures and passes the others: PRM min and the
    // LLM judge separate successes from failures perfectly; FA finds message 3.
    let uq = ok(&padv(&[
        "eval",
        "uq",
        "-i",
        scored.to_str().unwrap(),
        "--grid",
        "--methods",
        "pa,judge",
        "--folds",
        "2",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&uq).unwrap();
    let cell = |label: &str| {
        v["results"]["cells"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["label"] == label)
            .unwrap()
            .clone()
    };
    assert_eq!(cell("judge:prm/min")["auroc"], 1.0);
    assert_eq!(cell("judge:llm_judge")["auroc"], 1.0);
    assert!(cell("judge:rm")["auroc"].is_number());
    let fa = ok(&padv(&[
        "eval",
        "fa",
        "-i",
        scored.to_str().unwrap(),
        "--method",
        "judge",
        "--judge",
        "prm",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&fa).unwrap();
    let rows = &v["results"]["cells"][0]["rows"];
    assert_eq!(rows[0]["predictor"], "lowest_step");
    assert_eq!(rows[0]["accuracy"], 1.0);
    let table = ok(&padv(&[
        "eval",
        "bon",
        "-i",
        scored.to_str().unwrap(),
        "--grid",
        "--methods",
        "pa,judge",
        "--folds",
        "2",
    ]));
    assert!(
        table.contains("judge:prm") && table.contains("judge:rm"),
        "{table}"
    );

    // https is refused at start-up; a missing key variable is named.
    let e = err(&padv(&[
        "judge",
        "--kind",
        "prm",
        "--endpoint",
        "https://api.example.com",
        "--model",
        "m",
        "-i",
        runs.to_str().unwrap(),
        "--out",
        dir.path().join("h").to_str().unwrap(),
    ]));
    assert!(e.contains("https is not supported"), "{e}");
    let e = err(&padv(&[
        "judge",
        "--kind",
        "prm",
        "--endpoint",
        &mock.url,
        "--model",
        "m",
        "--api-key-env",
        "PADV_NO_SUCH_VAR_17",
        "-i",
        runs.to_str().unwrap(),
        "--out",
        dir.path().join("k").to_str().unwrap(),
    ]));
    assert!(e.contains("PADV_NO_SUCH_VAR_17"), "{e}");
}

#[test]
fn import_checks_ids_and_leaves_records_untouched_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let runs = trajectories(dir.path());
    let scored = dir.path().join("scored");
    score(&runs, &scored);
    let before = std::fs::read(scored.join("records.jsonl")).unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"id\": \"t1\", \"score\": 0.5}\n{\"id\": \"t1\", \"score\": 0.7}\n",
    )
    .unwrap();
    let e = err(&padv(&[
        "judge",
        "import",
        "--scores",
        bad.to_str().unwrap(),
        "--name",
        "ext",
        "--attach",
        scored.to_str().unwrap(),
    ]));
    assert!(
        e.contains("bad.jsonl: line 2: duplicate score for trajectory \"t1\""),
        "{e}"
    );
    std::fs::write(&bad, "{\"id\": \"t99\", \"score\": 0.5}\n").unwrap();
    let e = err(&padv(&[
        "judge",
        "import",
        "--scores",
        bad.to_str().unwrap(),
        "--name",
        "ext",
        "--attach",
        scored.to_str().unwrap(),
    ]));
    assert!(e.contains("unknown trajectory id \"t99\""), "{e}");
    assert_eq!(std::fs::read(scored.join("records.jsonl")).unwrap(), before);
    let good = dir.path().join("good.jsonl");
    std::fs::write(&good, "{\"id\": \"t1\", \"message_index\": 3, \"score\": 0.1}\n{\"id\": \"t0\", \"score\": 0.9}\n").unwrap();
    ok(&padv(&[
        "judge",
        "import",
        "--scores",
        good.to_str().unwrap(),
        "--name",
        "ext",
        "--attach",
        scored.to_str().unwrap(),
    ]));
    let records = read_records(&scored.join("records.jsonl")).unwrap();
    assert_eq!(records[0].judges["ext"].trajectory, Some(0.9));
    assert_eq!(records[1].judges["ext"].steps[0].message_index, 3);

    // A folder holding records.parquet: the scores are attached there, and the file stays
    // Parquet.
    let pq = dir.path().join("pq");
    let parquet = pq.join("records.parquet");
    let mut bare = records.clone();
    for r in &mut bare {
        r.judges.clear();
    }
    padv_core::record::write_records_as(&parquet, &bare, padv_core::record::RecordFormat::Parquet)
        .unwrap();
    ok(&padv(&[
        "judge",
        "import",
        "--scores",
        good.to_str().unwrap(),
        "--name",
        "ext",
        "--attach",
        pq.to_str().unwrap(),
    ]));
    assert_eq!(&std::fs::read(&parquet).unwrap()[..4], b"PAR1");
    assert!(!pq.join("records.jsonl").exists());
    assert_eq!(read_records(&parquet).unwrap(), records);
}
