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
    for needle in [
        "== oracle",
        "== policy",
        "== reference",
        "UQ AUROC",
        "KL(π ‖ π_o)",
    ] {
        assert!(
            stdout.contains(needle),
            "no {needle:?} in the table: {stdout}"
        );
    }

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let truth = read_jsonl(&out.join("ground_truth.jsonl"));
    assert_eq!(truth.len(), 3 * 16 * 8);
    // Every step carries the hard and the soft truth.
    for t in &truth {
        let steps = t["truth"]["steps"].as_array().unwrap().len();
        assert_eq!(
            t["soft"].as_array().map_or(0, Vec::len),
            steps,
            "{}",
            t["id"]
        );
    }
    let st = &summary["soft_truth"];
    // The oracle's identity holds to 1e-9 as it sampled, and to f32 precision in its records.
    assert!(st["oracle_identity_max_error"].as_f64().unwrap() <= 1e-9);
    assert!(st["oracle_identity_actions"].as_u64().unwrap() > 100);
    assert!(st["oracle_record_identity_max_error"].as_f64().unwrap() < 1e-4);
    assert!(st["cost"]["states"].as_u64().unwrap() > 16 * 50);
    assert!(st["gap"]["mean_tv"].as_f64().unwrap() >= 0.0);

    for player in ["oracle", "policy", "reference"] {
        let p = &summary["players"][player];
        let trajs = read_jsonl(&out.join(player).join("trajectories.jsonl"));
        let records = read_jsonl(&out.join(player).join("records.jsonl"));
        assert_eq!(trajs.len(), 16 * 8);
        assert_eq!(records.len(), trajs.len());
        for kind in ["uq", "bon", "fa"] {
            assert!(out.join(player).join(format!("eval-{kind}.json")).exists());
        }
        // Success rate recomputed from the written trajectories.
        let successes = trajs
            .iter()
            .filter(|t| t["reward"].as_f64().unwrap_or(0.0) > 0.0)
            .count();
        let success = p["success"].as_f64().unwrap();
        assert!((success - successes as f64 / trajs.len() as f64).abs() < 1e-12);
        // Decisive-mistake counts agree with the trajectories' labels.
        let labelled = trajs
            .iter()
            .filter(|t| !t["mistake_step"].is_null())
            .count();
        assert_eq!(p["failures_with_mistake"].as_u64(), Some(labelled as u64));
        assert_eq!(
            p["failures"].as_u64(),
            Some((trajs.len() - successes) as u64)
        );
        // Every method has its own headline cell per application, each from that
        // application's cross-validation; reference_logprob is among them.
        let methods = p["methods"].as_object().unwrap();
        for name in [
            "pa",
            "policy_logprob",
            "reference_logprob",
            "neg_entropy",
            "deepconf",
        ] {
            let m = methods
                .get(name)
                .unwrap_or_else(|| panic!("{player}: method {name} missing"));
            for kind in ["uq", "bon", "fa"] {
                let cell = m[kind]["cell"].as_str().unwrap();
                assert!(cell.starts_with(name), "{player} {name} {kind}: {cell}");
                let cv = m[kind]["cv"].as_f64();
                assert!(cv.is_none_or(|v| (0.0..=1.0).contains(&v)));
            }
            assert!(m["fa"]["predictor"].as_str().is_some());
        }
        assert_eq!(p["priors"]["bon_random"].as_f64(), Some(success));
    }
    // The oracle's step PA is its soft advantage: rank correlation 1, KL to itself 0.
    let oracle = &summary["players"]["oracle"];
    assert!(
        oracle["step_pa_vs_soft"]["spearman_pooled"]
            .as_f64()
            .unwrap()
            > 0.999
    );
    assert!(oracle["kl_to_oracle_per_step"].as_f64().unwrap().abs() < 1e-4);
    assert!(
        summary["players"]["policy"]["kl_to_oracle_per_step"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(summary["setup"]["slip"].as_f64().is_some());
    assert_eq!(summary["setup"]["style"].as_str(), Some("terse"));

    // The written trajectories are ordinary chat JSONL that `padv inspect` reads.
    let inspect = Command::new(env!("CARGO_BIN_EXE_padv"))
        .args(["inspect", "--input"])
        .arg(out.join("policy").join("trajectories.jsonl"))
        .output()
        .unwrap();
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );

    // The demo writes each player's HTML page (padv report's), and `padv report` on the
    // written files gives a page too.
    for player in ["oracle", "policy", "reference"] {
        let html = std::fs::read_to_string(out.join(player).join("report.html")).unwrap();
        assert!(html.len() < 5_000_000);
        let page = html_check::check_page(&html);
        let labelled = summary["players"][player]["failures_with_mistake"]
            .as_u64()
            .unwrap() as usize;
        assert_eq!(
            page.traces, labelled,
            "{player}: one trace per failure with a decisive mistake"
        );
        assert_eq!(page.step_texts, page.traces);
        assert!(page.figures > page.traces + 20, "{player}: {page:?}");
    }
    let report = Command::new(env!("CARGO_BIN_EXE_padv"))
        .args(["report", "--bootstrap", "100", "--input"])
        .arg(out.join("policy").join("records.jsonl"))
        .arg("--trajectories")
        .arg(out.join("policy").join("trajectories.jsonl"))
        .arg("--out")
        .arg(out.join("cli-report"))
        .output()
        .unwrap();
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let html = std::fs::read_to_string(out.join("cli-report").join("report.html")).unwrap();
    let page = html_check::check_page(&html);
    assert!(
        !page.text.contains("nothing to evaluate"),
        "the demo's policy has both classes and choices"
    );
}

/// The committed verbose pair's policy is its reference (same weights, config, dtype,
/// device): the demo scores it from the reference's pass, says so, and PA is exactly 0 on
/// every token of the policy's and the reference's rollouts (two passes would round apart
/// where their attention takes different kernel paths). The terse pair's policy is its own
/// engine.
#[test]
fn a_policy_that_is_its_reference_has_pa_exactly_zero() {
    let dir = tempfile::tempdir().unwrap();
    for (style, same) in [("verbose", true), ("terse", false)] {
        let out = dir.path().join(style);
        let run = Command::new(env!("CARGO_BIN_EXE_padv"))
            .args(["demo", "--quick", "--maps", "2", "--style", style, "--out"])
            .arg(&out)
            .output()
            .expect("running padv demo");
        assert!(
            run.status.success(),
            "padv demo --style {style} failed: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
        let numbers = summary["setup"]["policy_numbers"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(
            numbers.starts_with("the reference's pass"),
            same,
            "{style}: {numbers}"
        );
        assert_eq!(summary["setup"]["policy_is_reference"], same, "{style}");
        let (mut tokens, mut equal) = (0usize, 0usize);
        for player in ["policy", "reference"] {
            for r in read_jsonl(&out.join(player).join("records.jsonl")) {
                for step in r["steps"].as_array().unwrap() {
                    let p = step["policy"].as_array().unwrap();
                    let q = step["reference"].as_array().unwrap();
                    tokens += p.len();
                    equal += p.iter().zip(q).filter(|(a, b)| a == b).count();
                }
            }
        }
        assert!(tokens > 1000, "{style}: only {tokens} action tokens");
        if same {
            assert_eq!(equal, tokens, "{style}: PA is not exactly 0 on every token");
        } else {
            assert!(
                equal < tokens / 2,
                "{style}: {equal} of {tokens} tokens with PA = 0"
            );
        }
    }
}

#[test]
fn demo_is_deterministic_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str| {
        let out = dir.path().join(name);
        let r = Command::new(env!("CARGO_BIN_EXE_padv"))
            .args(["demo", "--quick", "--maps", "2", "--seed", "9", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        ["oracle", "policy", "reference"]
            .iter()
            .flat_map(|p| {
                ["trajectories.jsonl", "records.jsonl"]
                    .map(|f| std::fs::read(out.join(p).join(f)).unwrap())
            })
            .chain([std::fs::read(out.join("ground_truth.jsonl")).unwrap()])
            .collect::<Vec<_>>()
    };
    assert_eq!(run("a"), run("b"));
}

/// `padv demo --seeds`: one directory per seed, and the aggregate is the mean of the
/// seeds' own numbers.
#[test]
fn demo_over_seeds_aggregates_each_seed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("seeds");
    let r = Command::new(env!("CARGO_BIN_EXE_padv"))
        .args(["demo", "--quick", "--maps", "2", "--seeds", "4,5", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let mut successes = Vec::new();
    for seed in [4, 5] {
        let s: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.join(format!("seed-{seed}")).join("summary.json")).unwrap(),
        )
        .unwrap();
        successes.push(s["players"]["policy"]["success"].as_f64().unwrap());
    }
    let agg = &summary["aggregate"]["policy"]["success"];
    let mean = (successes[0] + successes[1]) / 2.0;
    assert!((agg["mean"].as_f64().unwrap() - mean).abs() < 1e-12);
    assert_eq!(agg["values"].as_array().unwrap().len(), 2);
    assert!(String::from_utf8_lossy(&r.stdout).contains("±"));
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
