//! `padv demo --quick` end to end on the committed gym pair: the summary has every field the
//! issue asks for, and its numbers agree with the files it wrote; `padv report` on its
//! records gives a complete, well-formed page.

#[path = "../../padv-report/tests/support/html_check.rs"]
mod html_check;

use std::path::Path;
use std::process::Command;

fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("JSONL line"))
        .collect()
}

#[test]
fn quick_demo_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let run = Command::new(env!("CARGO_BIN_EXE_padv"))
        .args(["demo", "--quick", "--seed", "3", "--out"])
        .arg(&out)
        .output()
        .expect("running padv demo");
    assert!(
        run.status.success(),
        "padv demo failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("AUROC"), "no table: {stdout}");

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let trajs = read_jsonl(&out.join("trajectories.jsonl"));
    let truth = read_jsonl(&out.join("ground_truth.jsonl"));
    let records = read_jsonl(&out.join("records.jsonl"));
    assert_eq!(trajs.len(), 16 * 8);
    assert_eq!(truth.len(), trajs.len());
    assert_eq!(records.len(), trajs.len());

    // Success rate recomputed from the written trajectories.
    let successes = trajs
        .iter()
        .filter(|t| t["reward"].as_f64().unwrap_or(0.0) > 0.0)
        .count();
    let policy_success = summary["success"]["policy"].as_f64().unwrap();
    assert!((policy_success - successes as f64 / trajs.len() as f64).abs() < 1e-12);
    let reference = read_jsonl(&out.join("reference_trajectories.jsonl"));
    let ref_successes = reference
        .iter()
        .filter(|t| t["reward"].as_f64().unwrap_or(0.0) > 0.0)
        .count();
    let ref_success = summary["success"]["reference"].as_f64().unwrap();
    assert!((ref_success - ref_successes as f64 / reference.len() as f64).abs() < 1e-12);

    // Decisive-mistake counts agree with the trajectories' labels.
    let labelled = trajs
        .iter()
        .filter(|t| !t["mistake_step"].is_null())
        .count();
    assert_eq!(
        summary["ground_truth"]["failures_with_decisive_mistake"].as_u64(),
        Some(labelled as u64)
    );
    let failures = trajs.len() - successes;
    assert_eq!(
        summary["ground_truth"]["failures"].as_u64(),
        Some(failures as u64)
    );

    // Every method has the required fields, and values are in range.
    let methods = summary["methods"].as_object().unwrap();
    for name in [
        "pa",
        "policy_logprob",
        "neg_entropy",
        "self_certainty",
        "deepconf",
    ] {
        let m = methods
            .get(name)
            .unwrap_or_else(|| panic!("method {name} missing: {methods:?}"));
        let auroc = m["uq"]["auroc"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&auroc));
        let ci = m["uq"]["auroc_ci"].as_array().unwrap();
        assert!(ci[0].as_f64().unwrap() <= auroc && auroc <= ci[1].as_f64().unwrap());
        let bon = &m["bon"];
        let b = bon["bon_success_rate"].as_f64().unwrap();
        let oracle = bon["pass_at_n_oracle"].as_f64().unwrap();
        assert!(b <= oracle + 1e-12);
        assert!((bon["mean_at_n"].as_f64().unwrap() - policy_success).abs() < 1e-9);
        assert!(m["fa"]["min_cumulative"]["accuracy"].as_f64().is_some());
        assert!(m["theory"]
            .as_object()
            .unwrap()
            .contains_key("spearman_pa_vs_true_advantage"));
        assert!(m["headline"].as_str().unwrap().starts_with(name));
    }
    assert!(summary["setup"]["slip"].as_f64().is_some());
    assert!(summary["setup"]["beta"].as_f64().is_some());
    assert!(summary["lengths"]["mean_steps"].as_f64().unwrap() >= 1.0);

    // The written trajectories are ordinary chat JSONL that `padv inspect` reads.
    let inspect = Command::new(env!("CARGO_BIN_EXE_padv"))
        .args(["inspect", "--input"])
        .arg(out.join("trajectories.jsonl"))
        .output()
        .unwrap();
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );

    // The HTML report of the demo's records (real signal: PA and the baselines differ).
    let report = Command::new(env!("CARGO_BIN_EXE_padv"))
        .args(["report", "--bootstrap", "100", "--input"])
        .arg(out.join("records.jsonl"))
        .arg("--trajectories")
        .arg(out.join("trajectories.jsonl"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.len() < 5_000_000);
    let page = html_check::check_page(&html);
    assert_eq!(
        page.traces, labelled,
        "one trace per failure with a decisive mistake"
    );
    assert_eq!(page.step_texts, page.traces);
    assert!(page.figures > page.traces + 20, "{page:?}");
    assert!(
        !page.text.contains("nothing to evaluate"),
        "the demo has both classes and choices"
    );
}

#[test]
fn demo_is_deterministic_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str| {
        let out = dir.path().join(name);
        let r = Command::new(env!("CARGO_BIN_EXE_padv"))
            .args(["demo", "--quick", "--maps", "4", "--seed", "9", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        (
            std::fs::read(out.join("trajectories.jsonl")).unwrap(),
            std::fs::read(out.join("records.jsonl")).unwrap(),
        )
    };
    assert_eq!(run("a"), run("b"));
}

/// `padv gym search --quick --json`: the summary's success rates agree with the episodes it
/// wrote, and the oracle row behaves as an oracle must.
#[test]
fn quick_guided_search_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("search");
    let run = Command::new(env!("CARGO_BIN_EXE_padv"))
        .args(["gym", "search", "--quick", "--json", "--out"])
        .arg(&out)
        .output()
        .expect("running padv gym search");
    assert!(
        run.status.success(),
        "padv gym search failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).expect("--json output");
    let (maps, k, episodes) = (12, 4, 2);
    assert_eq!(summary["maps"], maps);
    assert_eq!(summary["k"], k);
    let method = |name: &str| {
        summary["methods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["method"] == name)
            .unwrap_or_else(|| panic!("no method {name}"))
            .clone()
    };
    for (name, file, per_map) in [
        ("sample", "search_sample.jsonl", k),
        ("step_pa", "search_pa.jsonl", episodes),
        ("step_logprob", "search_logprob.jsonl", episodes),
        ("step_oracle", "search_oracle.jsonl", episodes),
    ] {
        let trajs = read_jsonl(&out.join(file));
        assert_eq!(trajs.len(), maps * per_map, "{file}");
        // Every map has the same number of episodes, so the mean over maps is the mean.
        let wins = trajs
            .iter()
            .filter(|t| t["reward"].as_f64().unwrap() > 0.0)
            .count();
        let got = method(name)["success"].as_f64().unwrap();
        assert!(
            (got - wins as f64 / trajs.len() as f64).abs() < 1e-12,
            "{name}: {got} vs {wins}/{}",
            trajs.len()
        );
    }
    let oracle = method("step_oracle");
    assert_eq!(oracle["available"], false);
    assert_eq!(oracle["regret"].as_f64(), Some(0.0));
    assert_eq!(oracle["best_pick_rate"].as_f64(), Some(1.0));
    let pa = method("step_pa");
    let chance = pa["regret_chance"].as_f64().unwrap();
    assert!(chance > 0.0, "no contested step in the quick run");
    assert!(method("sample")["regret"].is_null());
}
