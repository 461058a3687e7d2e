//! End-to-end tests of the `padv` binary: real data in, JSON out, errors that name the file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn padv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_padv"))
        .args(args)
        .output()
        .expect("running padv")
}

fn stdout_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "padv failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[path = "../../padv-core/tests/support/shared_data.rs"]
mod shared_data;

/// The shared data folder (required in CI, see `shared_data.rs`).
fn data_dir() -> Option<PathBuf> {
    shared_data::shared_data(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(rel: &str) -> String {
    repo()
        .join("crates/padv-engine/tests/fixtures")
        .join(rel)
        .display()
        .to_string()
}

#[test]
fn inspect_counts_the_real_data() {
    let Some(data) = data_dir() else { return };
    let out = padv(&["inspect", data.join("who_and_when").to_str().unwrap()]);
    let v = stdout_json(&out);
    assert_eq!(v["total"]["trajectories"], 184);
    assert_eq!(v["total"]["with_mistake_step"], 184);
    assert_eq!(v["total"]["messages"], 2993 + 1099);
    let out = padv(&[
        "inspect",
        data.join("tau2_bench_leaderboard").to_str().unwrap(),
    ]);
    let v = stdout_json(&out);
    assert_eq!(v["total"]["trajectories"], 364);
    assert_eq!(
        v["total"]["labels"]["successes"],
        19 + 36 + 28 + 28 + 38 + 96
    );
    // 50 airline tasks with 5 rollouts each and 114 retail tasks with one.
    assert_eq!(v["total"]["tasks"], 164);
    assert_eq!(v["total"]["rollouts_per_task"]["max"], 5);
}

#[test]
fn bad_input_names_the_file_and_record_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(
        &path,
        "{\"id\": \"a\", \"messages\": [{\"role\": \"assistant\", \"content\": \"x\"}]}\n\
         {\"id\": \"b\", \"messages\": [{\"role\": 7}]}\n",
    )
    .unwrap();
    let report_dir = dir.path().join("report");
    let out = padv(&[
        "inspect",
        path.to_str().unwrap(),
        "--strict",
        "--out",
        report_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.jsonl"), "{err}");
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains("role"), "{err}");
    assert!(
        !report_dir.join("inspect.json").exists(),
        "no partial output on error"
    );
    // Without --strict the bad record is skipped and counted.
    let v = stdout_json(&padv(&["inspect", path.to_str().unwrap()]));
    assert_eq!(v["skipped_records"], 1);
    assert_eq!(v["total"]["trajectories"], 1);
}

#[test]
fn render_marks_actions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    std::fs::write(
        &path,
        r#"{"id": "a", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{\"x\": true, \"y\": null}"}}]}]}"#,
    )
    .unwrap();
    let v = stdout_json(&padv(&[
        "render",
        "--input",
        path.to_str().unwrap(),
        "--json",
    ]));
    let spans = v[0]["spans"].as_array().unwrap();
    assert_eq!(spans[0]["text"], "[user]: hi");
    assert_eq!(spans[0]["is_action"], false);
    // Python's str(dict) of the parsed arguments.
    assert_eq!(
        spans[1]["text"],
        "\n[assistant]: tool_call(f, {'x': True, 'y': None})"
    );
    assert_eq!(spans[1]["is_action"], true);
}

/// `padv score` on a trajectory whose expected log-probs transformers computed
/// (`models/qwen2/expected.json`, case `edge_empty`): the record's policy values at the action
/// positions must match, then the evaluations run on the records, and a rerun resumes from the
/// cache.
#[test]
fn score_matches_transformers_end_to_end_and_resumes() {
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("render_cases.json")).unwrap())
            .unwrap();
    let case = cases
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "edge_empty")
        .unwrap();
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("models/qwen2/expected.json")).unwrap(),
    )
    .unwrap();
    let hf = expected["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "edge_empty")
        .unwrap();
    assert_eq!(hf["ids"], case["paper"]["ids"], "fixture consistency");

    // The trajectory as chat JSONL (tool calls in tau2's flat form), twice under two tasks.
    let traj = &case["trajectory"];
    let messages: Vec<serde_json::Value> = traj["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let mut m = m.clone();
            m.as_object_mut().unwrap().remove("is_action");
            m
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let line = |id: &str, task: &str, reward: f64| {
        serde_json::json!({"id": id, "task_id": task, "messages": messages, "reward": reward, "mistake_step": 5})
            .to_string()
    };
    std::fs::write(
        &input,
        format!("{}\n{}\n", line("a", "t1", 0.0), line("b", "t2", 1.0)),
    )
    .unwrap();
    let out = dir.path().join("out");
    let args = [
        "score",
        "--policy",
        &fixture("models/qwen2"),
        "--reference",
        &fixture("models/qwen2_ref"),
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--eval",
        "uq,bon,fa",
    ];
    let run = padv(&args);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let records = padv_core::record::read_records(&out.join("records.jsonl")).unwrap();
    assert_eq!(records.len(), 2);
    // logprob[t-1] in expected.json is log p(ids[t] | ids[..t]).
    let hf_lp: Vec<f64> = hf["logprob"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    let spans = case["paper"]["token_spans"].as_array().unwrap();
    let action_spans: Vec<(usize, usize, usize)> = spans
        .iter()
        .filter(|s| s[3] == true)
        .map(|s| {
            (
                s[0].as_u64().unwrap() as usize,
                s[1].as_u64().unwrap() as usize,
                s[2].as_u64().unwrap() as usize,
            )
        })
        .collect();
    let rec = &records[0];
    assert_eq!(rec.steps.len(), action_spans.len());
    let mut max_err = 0.0f64;
    for (step, &(start, end, mi)) in rec.steps.iter().zip(&action_spans) {
        assert_eq!(step.message_index, mi);
        let want: Vec<f64> = (start.max(1)..end).map(|t| hf_lp[t - 1]).collect();
        assert_eq!(step.policy.len(), want.len());
        for (got, want) in step.policy.iter().zip(&want) {
            max_err = max_err.max((f64::from(*got) - want).abs());
        }
    }
    assert!(max_err <= 1e-4, "max |Δ log-prob| = {max_err}");
    // The reference is a different model: PA is not identically zero.
    assert!(rec
        .steps
        .iter()
        .any(|s| s.reference.as_ref().unwrap() != &s.policy));
    for kind in ["uq", "bon", "fa"] {
        let v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("eval-{kind}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(v["records"], 2, "{kind}");
    }
    let first: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    // Both trajectories are scored in one batch (one score_batch call per model), so the
    // second, which repeats the first's tokens, is computed alongside it, not read back.
    assert_eq!(first["cache_hits"], 0);

    // Rerun: every model result comes from the cache, the records are identical.
    let again = padv(&args);
    assert!(again.status.success());
    let run2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run2["cache_hits"], 4);
    assert_eq!(
        padv_core::record::read_records(&out.join("records.jsonl")).unwrap(),
        records
    );

    // Grid evaluations over the records.
    let uq_grid = |input: &Path| {
        stdout_json(&padv(&[
            "eval",
            "uq",
            "--input",
            input.to_str().unwrap(),
            "--grid",
            "--bootstrap",
            "50",
            "--folds",
            "2",
            "--json",
        ]))
    };
    let v = uq_grid(&out.join("records.jsonl"));
    assert!(v["cells"].as_u64().unwrap() > 100);
    assert!(v["skipped_methods"].as_object().unwrap().is_empty());

    // The same run writing Parquet: it resumes from the same cache, replaces records.jsonl
    // by records.parquet (never both in one folder), and every evaluation of the folder gives
    // the report the JSONL gave.
    let mut parquet_args = args.to_vec();
    parquet_args.extend(["--records-format", "parquet"]);
    let run3 = padv(&parquet_args);
    assert!(
        run3.status.success(),
        "{}",
        String::from_utf8_lossy(&run3.stderr)
    );
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(info["cache_hits"], 4);
    assert_eq!(info["records_file"], "records.parquet");
    assert!(!out.join("records.jsonl").exists());
    let parquet = out.join("records.parquet");
    assert_eq!(&std::fs::read(&parquet).unwrap()[..4], b"PAR1");
    assert_eq!(padv_core::record::read_records(&parquet).unwrap(), records);
    assert_eq!(uq_grid(&out), v);
}

#[test]
fn eval_reads_parquet_as_jsonl_and_names_a_bad_parquet_file() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = write_records(dir.path());
    let records = padv_core::record::read_records(&jsonl).unwrap();
    let pq_dir = dir.path().join("pq");
    let parquet = pq_dir.join("records.parquet");
    padv_core::record::write_records_as(
        &parquet,
        &records,
        padv_core::record::RecordFormat::Parquet,
    )
    .unwrap();
    for kind in ["uq", "bon", "fa"] {
        let run_with = |input: &Path, budget: &str| {
            stdout_json(&padv(&[
                "eval",
                kind,
                "--input",
                input.to_str().unwrap(),
                "--grid",
                "--folds",
                "2",
                "--bootstrap",
                "20",
                "--table-budget-mib",
                budget,
                "--json",
            ]))
        };
        let run = |input: &Path| run_with(input, "512");
        // A file and a folder holding it.
        assert_eq!(run(&parquet), run(&jsonl), "{kind}");
        assert_eq!(run(&pq_dir), run(&jsonl), "{kind}");
        // No table budget: UQ re-reads the files per group of cells; the same report.
        assert_eq!(run_with(&pq_dir, "0"), run(&jsonl), "{kind}");
    }
    // --calibrate-out from the passes over the files: the same map as from the table.
    let cal = |budget: &str| {
        let path = dir.path().join(format!("cal-{budget}.json"));
        let out = padv(&[
            "eval",
            "uq",
            "--input",
            jsonl.to_str().unwrap(),
            "--grid",
            "--folds",
            "2",
            "--bootstrap",
            "0",
            "--table-budget-mib",
            budget,
            "--calibrate-out",
            path.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(path).unwrap()
    };
    assert_eq!(cal("0"), cal("512"));
    // A damaged Parquet file: an error naming it, exit 2, no panic.
    let bytes = std::fs::read(&parquet).unwrap();
    let bad = dir.path().join("bad.parquet");
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    let out = padv(&["eval", "uq", "--input", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.parquet"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn mismatched_tokenizers_are_refused_with_the_difference() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        r#"{"id": "a", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]}"#,
    )
    .unwrap();
    // gemma2's fixture uses the BOS tokenizer; qwen2's does not.
    let out = padv(&[
        "score",
        "--policy",
        &fixture("models/qwen2"),
        "--reference",
        &fixture("models/gemma2"),
        "--input",
        input.to_str().unwrap(),
        "--out",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tokenizers differ"), "{err}");
    assert!(!dir.path().join("o/records.jsonl").exists());
}

/// Hand-written records: two tasks with two rollouts each, PA = policy − reference per token.
/// Rollouts "a1" and "b1" succeed and have the larger PA, so every direction is visible.
fn write_records(dir: &Path) -> PathBuf {
    let rec = |id: &str, task: &str, label: f64, pol: f32, refr: f32| {
        serde_json::json!({
            "id": id, "task_id": task, "label": label, "mistake_step": 1,
            "steps": [
                {"message_index": 1, "policy": [pol, pol - 0.1], "reference": [refr, refr]},
                {"message_index": 3, "policy": [pol], "reference": [refr - 0.2]}
            ]
        })
        .to_string()
    };
    let lines = [
        rec("a1", "A", 1.0, -0.1, -0.5),
        rec("a2", "A", 0.0, -0.9, -0.4),
        rec("b1", "B", 1.0, -0.2, -0.6),
        rec("b2", "B", 0.0, -1.0, -0.3),
    ];
    let path = dir.join("records.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[test]
fn eval_prints_a_table_with_chance_and_direction_or_one_json_document() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path());
    let folder = dir.path().to_str().unwrap();
    for kind in ["uq", "bon", "fa"] {
        let out = padv(&["eval", kind, "--input", folder, "--bootstrap", "20"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("chance"), "{kind}: {text}");
        assert!(text.contains("better"), "{kind}: {text}");
        assert!(text.contains("4 records"), "{kind}: {text}");
        assert!(
            serde_json::from_str::<serde_json::Value>(&text).is_err(),
            "the default output is a table, not JSON"
        );
    }
    // --json: exactly one document (from_slice rejects trailing content), the same one
    // --out writes.
    let results = dir.path().join("results");
    let out = padv(&[
        "eval",
        "uq",
        "--input",
        folder,
        "--bootstrap",
        "20",
        "--json",
        "--out",
        results.to_str().unwrap(),
    ]);
    let v = stdout_json(&out);
    assert_eq!(v["evaluation"], "uq");
    assert_eq!(v["records"], 4);
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(results.join("eval-uq.json")).unwrap()).unwrap();
    assert_eq!(written, v);
}

#[test]
fn flags_parse_alike_and_bad_values_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let records = write_records(dir.path());
    let records = records.to_str().unwrap();
    // A negative β parses as a number and is then refused by validation.
    let out = padv(&["eval", "uq", "--input", records, "--beta", "-1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("beta must be finite and > 0, got -1"), "{err}");
    // A finite β too large for finite scores is refused too (1e308 made every PA score −∞
    // and AUROC a silent 0.5).
    let out = padv(&["eval", "uq", "--input", records, "--beta", "1e308"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("beta 1e308 is above"), "{err}");
    // --grid evaluates every method: a --method with it is a usage error, not ignored.
    let out = padv(&[
        "eval", "uq", "--input", records, "--grid", "--method", "deepconf",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--methods deepconf"), "{err}");
    // --max-length 0 would score nothing: refused before any model loads.
    let out = padv(&[
        "score",
        "--policy",
        "nowhere",
        "--reference",
        "nowhere",
        "--input",
        records,
        "--out",
        dir.path().join("o").to_str().unwrap(),
        "--max-length",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--max-length 0"), "{err}");
    // snake_case (as in the JSON) and kebab-case both work.
    for mode in ["agg_of_diff", "agg-of-diff"] {
        let v = stdout_json(&padv(&[
            "eval",
            "fa",
            "--input",
            records,
            "--pa-mode",
            mode,
            "--token-agg",
            "min",
            "--json",
        ]));
        assert_eq!(v["config"]["spec"]["pa_mode"], "agg_of_diff");
    }
    let out = padv(&["eval", "uq", "--input", records, "--pa-mode", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("diff_of_agg, agg_of_diff"), "{err}");
    // A missing file is named once, not once per layer of context.
    let missing = dir.path().join("missing.jsonl");
    let out = padv(&["eval", "uq", "--input", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("missing.jsonl").count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // Every command's help has an example.
    for cmd in [
        &["inspect", "--help"][..],
        &["render", "--help"],
        &["score", "--help"],
        &["eval", "uq", "--help"],
    ] {
        let out = padv(cmd);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Example"),
            "{cmd:?}"
        );
    }
}

#[test]
fn a_closed_pipe_ends_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    // Far more output than a pipe buffers (64 KiB), so padv is still writing when the reader
    // goes away.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.jsonl");
    let long = "word ".repeat(200);
    let lines: Vec<String> = (0..400)
        .map(|i| {
            serde_json::json!({"id": format!("t{i}"), "messages": [
                {"role": "user", "content": long},
                {"role": "assistant", "content": long}
            ]})
            .to_string()
        })
        .collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    // inspect --per-file writes an entry per file: many files make a long report.
    let many = dir.path().join("many");
    std::fs::create_dir_all(&many).unwrap();
    for i in 0..400 {
        std::fs::write(many.join(format!("{i}.jsonl")), &lines[0]).unwrap();
    }
    for args in [
        vec![
            "render",
            "--input",
            input.to_str().unwrap(),
            "--limit",
            "400",
        ],
        vec!["inspect", many.to_str().unwrap(), "--per-file"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_padv"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 16];
        stdout.read_exact(&mut first).unwrap();
        drop(stdout);
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {err}", out.status);
        assert!(!err.contains("panicked"), "{err}");
        assert!(err.is_empty(), "nothing to say about a closed pipe: {err}");
    }
}

/// `padv score` with the fixture models: a malformed input record is a skip with its reason;
/// stale evaluation files go; run.json says what made the output; an output folder inside
/// the input folder is not read back.
#[test]
fn score_reports_skips_run_metadata_and_removes_stale_evaluations() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    let good = r#"{"id": "a", "task_id": "t", "reward": 1.0, "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there"}]}"#;
    let good2 = good.replace("\"a\"", "\"b\"").replace("1.0", "0.0");
    std::fs::write(
        inputs.join("runs.jsonl"),
        format!("{good}\n{{\"id\": \"c\", \"messages\": [{{\"role\": 7}}]}}\n{good2}\n"),
    )
    .unwrap();
    // The output folder sits inside the input folder and holds an evaluation from "before".
    let out = inputs.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("eval-fa.json"), "{}").unwrap();
    let args = |eval: &str| {
        let mut v = vec![
            "score".to_string(),
            "--policy".into(),
            fixture("models/qwen2"),
            "--reference".into(),
            fixture("models/qwen2_ref"),
            "--input".into(),
            inputs.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ];
        if !eval.is_empty() {
            v.extend([
                "--eval".into(),
                eval.into(),
                "--bootstrap".into(),
                "10".into(),
            ]);
        }
        v
    };
    let run = Command::new(env!("CARGO_BIN_EXE_padv"))
        .args(args("uq"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{err}");
    assert!(err.contains("malformed_input: 1 skipped"), "{err}");
    assert!(err.contains("runs.jsonl"), "{err}");
    assert!(err.contains("scored 2 of 2 trajectories"), "{err}");
    assert!(
        !out.join("eval-fa.json").exists(),
        "stale evaluation removed"
    );
    assert!(out.join("eval-uq.json").exists());
    let table = String::from_utf8_lossy(&run.stdout);
    assert!(table.contains("chance"), "{table}");

    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(info["padv_version"], env!("CARGO_PKG_VERSION"));
    let argv: Vec<&str> = info["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        &argv[1..4],
        &["score", "--policy", &fixture("models/qwen2")]
    );
    assert_eq!(info["skips"]["malformed_input"]["count"], 1);
    assert_eq!(info["records"], 2);
    assert_eq!(info["skipped"], 1, "run.json's count agrees with its skips");
    let files = info["inputs"].as_array().unwrap();
    assert_eq!(
        files.len(),
        1,
        "nothing from the output folder was read: {files:?}"
    );
    assert_eq!(
        files[0]["bytes"],
        std::fs::metadata(inputs.join("runs.jsonl")).unwrap().len()
    );
    assert_eq!(files[0]["fnv1a64"].as_str().unwrap().len(), 16);
    assert!(!info["policy"]["fingerprint"].as_str().unwrap().is_empty());

    // A rerun (records.jsonl and run.json now lie in the input folder) reads the same input.
    let again = Command::new(env!("CARGO_BIN_EXE_padv"))
        .args(args(""))
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(
        !out.join("eval-uq.json").exists(),
        "stale evaluation removed"
    );
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(info["inputs"].as_array().unwrap().len(), 1);
    assert_eq!(info["cache_hits"], 4);

    // Nothing scorable: the error gives the reasons.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"id\": \"c\", \"messages\": [{\"role\": 7}]}\n").unwrap();
    let fail = padv(&[
        "score",
        "--policy",
        &fixture("models/qwen2"),
        "--reference",
        &fixture("models/qwen2_ref"),
        "--input",
        bad.to_str().unwrap(),
        "--out",
        dir.path().join("o2").to_str().unwrap(),
    ]);
    assert_eq!(fail.status.code(), Some(2));
    let err = String::from_utf8_lossy(&fail.stderr);
    assert!(err.contains("no trajectories in the input"), "{err}");
    assert!(err.contains("malformed_input: 1 skipped"), "{err}");
    assert!(err.contains("role"), "{err}");
}

/// Two checkpoints with the same architecture but different weights (the normal PA case: an
/// RL policy and its reference) must not share a fingerprint, or the cache serves one model's
/// log-probs for the other. Known bug: `Checkpoint::fingerprint` hashes config, file sizes
/// and safetensors headers but no weight values, so qwen2 and its perturbed copy collide.
#[test]
fn different_weights_give_different_fingerprints() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        r#"{"id": "a", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]}"#,
    )
    .unwrap();
    let out = dir.path().join("o");
    let run = padv(&[
        "score",
        "--policy",
        &fixture("models/qwen2"),
        "--reference",
        &fixture("models/qwen2_ref"),
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_ne!(
        info["policy"]["fingerprint"],
        info["reference"]["fingerprint"]
    );
}

/// `padv serve` takes `padv score`'s rendering flags through the same parser: a bad
/// `--chat-date` or an unknown `--chat-template` is refused before the server listens, naming
/// the flag (what a valid set does to ids and records is `padv-serve/tests/one_path.rs`).
#[test]
fn serve_takes_the_rendering_flags_of_score() {
    let pair = [
        "--policy",
        &fixture("models/qwen2"),
        "--reference",
        &fixture("models/qwen2_ref"),
        "--port",
        "0",
    ];
    let out = padv(
        &[
            &["serve"][..],
            &pair,
            &["--renderer", "chat-template", "--chat-date", "2023-02-29"],
        ]
        .concat(),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--chat-date") && err.contains("2023-02-29") && !err.contains("unexpected"),
        "{err}"
    );
    let out = padv(
        &[
            &["serve"][..],
            &pair,
            &[
                "--renderer",
                "chat-template",
                "--chat-template",
                "no_such_template",
            ],
        ]
        .concat(),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no_such_template") && !err.contains("unexpected"),
        "{err}"
    );
}
