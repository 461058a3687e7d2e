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

fn data_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("PADV_DATA_DIR") {
        Some(d) => PathBuf::from(d),
        None => repo().join("../shared/data"),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "note: {} not found; skipping a real-data test",
            dir.display()
        );
        None
    }
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
    let report = dir.path().join("report.json");
    let out = padv(&[
        "inspect",
        path.to_str().unwrap(),
        "--strict",
        "--out",
        report.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.jsonl"), "{err}");
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains("role"), "{err}");
    assert!(!report.exists(), "no partial output on error");
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
    assert_eq!(
        first["cache_hits"], 2,
        "the second trajectory repeats the first's tokens"
    );

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
    let records_path = out.join("records.jsonl");
    let v = stdout_json(&padv(&[
        "eval",
        "uq",
        "--input",
        records_path.to_str().unwrap(),
        "--grid",
        "--bootstrap",
        "50",
        "--folds",
        "2",
    ]));
    assert!(v["cells"].as_u64().unwrap() > 100);
    assert!(v["skipped_methods"].as_object().unwrap().is_empty());
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
