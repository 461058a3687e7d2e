//! `padv report` and `padv score --report` on the real tau2-bench and Who&When data scored
//! with the tiny fixture pair (random weights: the numbers mean nothing, the page must still
//! be complete and well-formed), and `padv eval uq --calibrate-out`.
//!
//! Needs `../shared/data` (or `$PADV_DATA_DIR`): skipped with a note when it is missing,
//! a failure when `PADV_REQUIRE_DATA=1` (as CI sets it).

#[path = "../../padv-report/tests/support/html_check.rs"]
mod html_check;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use padv_core::eval::calibration::{Calibration, CalibrationMap};

fn padv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_padv"))
        .args(args)
        .output()
        .expect("running padv")
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "padv failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[path = "../../padv-core/tests/support/shared_data.rs"]
mod shared_data;

fn data_dir() -> Option<PathBuf> {
    shared_data::shared_data(env!("CARGO_MANIFEST_DIR"))
}

fn model(name: &str) -> String {
    repo()
        .join("crates/padv-engine/tests/fixtures/models")
        .join(name)
        .display()
        .to_string()
}

fn check_report(path: &Path) -> html_check::PageSummary {
    let html = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        html.len() < 5_000_000,
        "{} is {} bytes",
        path.display(),
        html.len()
    );
    html_check::check_page(&html)
}

#[test]
fn tau2_report_from_padv_score_and_a_calibration_map() {
    let Some(data) = data_dir() else { return };
    let tau2 = data.join("tau2_bench_leaderboard");
    // Two airline agents on the same 50 tasks: 2 rollouts per task, so best-of-N has choices.
    let a = tau2.join("airline__gpt-5.4__ironshell__1trial.json");
    let b = tau2.join("airline__claude-opus-4-6__button_distyl__1trial.json");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tau2");
    let (policy, reference) = (model("qwen2"), model("qwen2_ref"));
    let run = padv(&[
        "score",
        "--policy",
        &policy,
        "--reference",
        &reference,
        "--input",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--max-length",
        "384",
        "--out",
        out.to_str().unwrap(),
        "--eval",
        "uq,bon,fa",
        "--grid",
        "--bootstrap",
        "50",
        "--report",
    ]);
    ok(&run);
    let page = check_report(&out.join("report.html"));
    assert!(page.figures >= 20, "{page:?}");
    // The header names both inputs and the models from run.json.
    for name in [a.file_name().unwrap(), b.file_name().unwrap()] {
        assert!(
            page.text.contains(name.to_str().unwrap()),
            "input {name:?} not named"
        );
    }
    assert!(page.text.contains("qwen2_ref") && page.text.contains("xxh3-64"));
    // tau2 has no annotated mistakes: traces of the failures, predicted step only.
    assert!(
        page.traces > 0
            && page
                .text
                .contains("no record has an annotated mistake step")
    );
    // The trajectories were at hand in padv score: every trace has its step texts.
    assert_eq!(page.step_texts, page.traces);
    assert!(page
        .text
        .contains("Mean@N as the reference implementation defines it"));

    // The headline cell's calibration map, fitted on all records and loaded back.
    let cal_path = dir.path().join("cal.json");
    let cal_run = padv(&[
        "eval",
        "uq",
        "--input",
        out.to_str().unwrap(),
        "--grid",
        "--bootstrap",
        "0",
        "--calibrate-out",
        cal_path.to_str().unwrap(),
        "--calibration-kind",
        "isotonic",
    ]);
    ok(&cal_run);
    let table = String::from_utf8_lossy(&cal_run.stdout);
    assert!(
        table.contains("Brier Platt") && table.contains("ECE iso"),
        "{table}"
    );
    let cal = Calibration::load(&cal_path).unwrap();
    assert_eq!(cal.method, padv_core::score::Method::Pa);
    assert_eq!(cal.fitted.n, 100);
    assert!(cal.fitted.cell_selection.contains("cross-validation"));
    let CalibrationMap::Isotonic { x, .. } = &cal.map else {
        panic!("not isotonic: {:?}", cal.map)
    };
    for s in [x[0] - 1.0, x[0], x[x.len() - 1] + 1.0] {
        let p = cal.predict(s);
        assert!((0.0..=1.0).contains(&p), "{p}");
    }
    // A broken map is refused by `padv serve` before any model is loaded, naming the file.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"format": "padv-calibration/1"}"#).unwrap();
    let serve = padv(&[
        "serve",
        "--policy",
        &policy,
        "--reference",
        &reference,
        "--port",
        "0",
        "--calibration",
        bad.to_str().unwrap(),
    ]);
    assert!(!serve.status.success());
    let err = String::from_utf8_lossy(&serve.stderr);
    assert!(
        err.contains("bad.json") && err.contains("not a padv calibration file"),
        "{err}"
    );
    // --calibrate-out belongs to uq only.
    let wrong = padv(&[
        "eval",
        "bon",
        "--input",
        out.to_str().unwrap(),
        "--calibrate-out",
        "x.json",
    ]);
    assert!(!wrong.status.success());
}

#[test]
fn who_and_when_report_with_step_texts() {
    let Some(data) = data_dir() else { return };
    let hand = data.join("who_and_when/Hand-Crafted");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&hand)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files.truncate(24);
    let dir = tempfile::tempdir().unwrap();
    let scored = dir.path().join("ww");
    let (policy, reference) = (model("qwen2"), model("qwen2_ref"));
    let mut args = vec![
        "score",
        "--policy",
        &policy,
        "--reference",
        &reference,
        "--max-length",
        "384",
    ];
    args.extend(["--out", scored.to_str().unwrap(), "--input"]);
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    ok(&padv(&args));
    let report_dir = dir.path().join("report");
    let mut args = vec![
        "report",
        "--input",
        scored.to_str().unwrap(),
        "--bootstrap",
        "50",
    ];
    args.extend(["--out", report_dir.to_str().unwrap(), "--trajectories"]);
    args.extend(names.iter().map(String::as_str));
    let run = padv(&args);
    ok(&run);
    let path = report_dir.join("report.html");
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        path.display().to_string()
    );
    let page = check_report(&path);
    // Every annotated failure has a trace, with its steps' text.
    assert_eq!(page.traces, files.len(), "{page:?}");
    assert_eq!(page.step_texts, page.traces);
    assert!(page.text.contains("annotated mistake"));
    // Only failures: UQ and best-of-N have nothing to evaluate, and say so in words.
    assert!(page.text.contains("nothing to evaluate"));
}
