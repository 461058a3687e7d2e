//! `padv score` with a policy whose weights hold NaN for one token: the trajectories that use
//! that token are skipped as non-finite, each named with its model, message and position; the
//! others keep the records they get alone, whatever the batch size.

use std::path::Path;
use std::process::Command;

#[path = "../../padv-engine/tests/support/nan_model.rs"]
mod nan_model;

fn reference() -> String {
    nan_model::models_dir()
        .join("qwen2_ref")
        .display()
        .to_string()
}

/// Six rollouts of one task (a long shared system prompt, so the engine fans them out as one
/// batch); `b` and `e` contain `<|endoftext|>` (id 0) in their answer.
fn write_inputs(path: &Path) {
    let system = "You are a careful assistant. Answer briefly and check every number twice.";
    let mut lines = Vec::new();
    for (k, id) in ["a", "b", "c", "d", "e", "f"].iter().enumerate() {
        let bad = *id == "b" || *id == "e";
        let answer = if bad {
            format!("The sum is {k}<|endoftext|> done.")
        } else {
            format!("The sum is {} and that is all.", k * 3)
        };
        let doc = serde_json::json!({
            "id": id, "task_id": "t", "reward": (k % 2) as f64,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": "Add the numbers please."},
                {"role": "assistant", "content": answer},
            ]
        });
        lines.push(doc.to_string());
    }
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn score(policy: &Path, input: &Path, out: &Path, batch: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_padv"))
        .args(["score", "--policy"])
        .arg(policy)
        .args(["--reference", &reference(), "--input"])
        .arg(input)
        .arg("--out")
        .arg(out)
        .args(["--batch-size", batch])
        .output()
        .expect("padv runs")
}

fn records(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("records.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_nan_trajectory_is_skipped_alone_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let policy = nan_model::nan_embedding_model("qwen2", &dir.path().join("nan_policy"), 0);
    let input = dir.path().join("runs.jsonl");
    write_inputs(&input);
    let mut by_batch = Vec::new();
    for batch in ["32", "1"] {
        let out = dir.path().join(format!("out{batch}"));
        let run = score(&policy, &input, &out, batch);
        let err = String::from_utf8_lossy(&run.stderr).into_owned();
        assert!(run.status.success(), "{err}");
        assert!(
            err.contains("non_finite: 2 skipped"),
            "batch {batch}: {err}"
        );
        assert!(err.contains("scored 4 of 6"), "batch {batch}: {err}");
        assert!(err.contains("message 2"), "the message is named: {err}");
        let recs = records(&out);
        let ids: Vec<&str> = recs.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["a", "c", "d", "f"], "batch {batch}");
        let info: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
        assert_eq!(info["skips"]["non_finite"]["count"], 2);
        by_batch.push(recs);
    }
    // The clean trajectories get the same numbers in a batch with the bad ones as alone.
    for (a, b) in by_batch[0].iter().zip(&by_batch[1]) {
        let (pa, pb) = (&a["steps"][0]["policy"], &b["steps"][0]["policy"]);
        for (x, y) in pa.as_array().unwrap().iter().zip(pb.as_array().unwrap()) {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-5, "{}: {x} vs {y}", a["id"]);
        }
    }
}
