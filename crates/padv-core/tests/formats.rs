//! Reads the real datasets in `shared/data` and checks the counts documented in their
//! READMEs (`tau2_bench_leaderboard/README.md`, `who_and_when/README.md`) and in
//! `shared/docs/formats-and-formulas.md`. Skips with a note when the data folder is absent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use padv_core::formats::{read_file, read_inputs, Format, ReadOptions, ReadReport};
use padv_core::Trajectory;

#[path = "support/shared_data.rs"]
mod shared_data;

/// The shared data folder (see `support/shared_data.rs`: required in CI).
fn data_dir() -> Option<PathBuf> {
    shared_data::shared_data(env!("CARGO_MANIFEST_DIR"))
}

fn strict() -> ReadOptions {
    ReadOptions {
        strict: true,
        ..ReadOptions::default()
    }
}

fn all(reports: &[ReadReport]) -> Vec<&Trajectory> {
    reports.iter().flat_map(|r| &r.trajectories).collect()
}

fn successes(ts: &[Trajectory]) -> usize {
    ts.iter().filter(|t| t.is_success() == Some(true)).count()
}

#[test]
fn tau2_leaderboard_counts_match_the_readme() {
    let Some(data) = data_dir() else { return };
    let dir = data.join("tau2_bench_leaderboard");
    // (file, simulations, reward-1 count, min and max messages per simulation), from the
    // README's count table.
    let expected = [
        (
            "airline__gpt-oss-120b__langchain_agent__1trial.json",
            50,
            19,
            2,
            208,
        ),
        (
            "airline__claude-sonnet-4-5__aide-platform__1trial.json",
            50,
            36,
            8,
            51,
        ),
        ("airline__gpt-5.4__ironshell__1trial.json", 50, 28, 8, 59),
        ("airline__toolorchestra_nvidia__1trial.json", 50, 28, 8, 127),
        (
            "airline__claude-opus-4-6__button_distyl__1trial.json",
            50,
            38,
            8,
            57,
        ),
        ("retail__toolorchestra_nvidia__1trial.json", 114, 96, 10, 64),
    ];
    let mut airline_tasks: Vec<BTreeSet<String>> = Vec::new();
    let mut total = 0;
    for (file, sims, ok, min_msgs, max_msgs) in expected {
        let report = read_file(&dir.join(file), &strict()).unwrap();
        assert_eq!(report.format, Some(Format::Tau2), "{file}");
        let ts = &report.trajectories;
        assert_eq!(ts.len(), sims, "{file}");
        assert_eq!(successes(ts), ok, "{file}");
        // Every reward is 0 or 1, so failures are the rest.
        assert!(
            ts.iter()
                .all(|t| t.reward == Some(0.0) || t.reward == Some(1.0)),
            "{file}"
        );
        let lens: Vec<usize> = ts.iter().map(|t| t.messages.len()).collect();
        assert_eq!(lens.iter().min(), Some(&min_msgs), "{file}");
        assert_eq!(lens.iter().max(), Some(&max_msgs), "{file}");
        // num_trials = 1: one rollout per task, and ids are unique.
        let tasks: BTreeSet<String> = ts.iter().map(|t| t.task_id.clone()).collect();
        assert_eq!(tasks.len(), sims, "{file}");
        // Task ids are qualified by the domain named in the file.
        let domain = file.split("__").next().unwrap_or_default();
        assert!(
            ts.iter()
                .all(|t| t.task_id.starts_with(&format!("{domain}/"))),
            "{file}"
        );
        let ids: BTreeSet<&str> = ts.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids.len(), sims, "{file}");
        for t in ts {
            for m in &t.messages {
                assert_eq!(m.is_action, m.role == "assistant");
                if m.role == "tool" {
                    assert!(
                        m.tool_call_id.is_some(),
                        "{file} {}: tool message without id",
                        t.id
                    );
                }
            }
        }
        if file.starts_with("airline") {
            airline_tasks.push(tasks);
        }
        total += ts.len();
    }
    assert_eq!(total, 364);
    // The five airline files share one 50-task set (cross-agent best-of-N).
    assert_eq!(airline_tasks.len(), 5);
    assert!(airline_tasks.iter().all(|t| *t == airline_tasks[0]));
}

#[test]
fn tau2_tool_calls_resolve_to_tool_results() {
    let Some(data) = data_dir() else { return };
    let dir = data.join("tau2_bench_leaderboard");
    let reports = read_inputs(&[dir], &strict()).unwrap();
    assert_eq!(reports.len(), 6);
    // Assistant messages per file, counted with Python's json module: 474 + 517 + 525 + 937 +
    // 505 (airline) + 1141 (retail) = 4099.
    let actions: usize = all(&reports).iter().map(|t| t.num_actions()).sum();
    assert_eq!(actions, 4099);
    // Every tool result answers a call made earlier in the same trajectory.
    for t in all(&reports) {
        let mut calls = BTreeSet::new();
        for m in &t.messages {
            calls.extend(m.tool_calls.iter().filter_map(|c| c.id.clone()));
            if let Some(id) = &m.tool_call_id {
                assert!(calls.contains(id), "{}: result for unknown call {id}", t.id);
            }
        }
    }
}

fn who_and_when(data: &Path, split: &str) -> Vec<Trajectory> {
    let reports = read_inputs(&[data.join("who_and_when").join(split)], &strict()).unwrap();
    assert!(reports.iter().all(|r| r.format == Some(Format::WhoAndWhen)));
    reports.into_iter().flat_map(|r| r.trajectories).collect()
}

#[test]
fn who_and_when_hand_crafted() {
    let Some(data) = data_dir() else { return };
    let ts = who_and_when(&data, "Hand-Crafted");
    assert_eq!(ts.len(), 58);
    // Natural order: 1, 2, ..., 58.
    let want: Vec<String> = (1..=58).map(|i| format!("Hand-Crafted/{i}")).collect();
    let got: Vec<&str> = ts.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(got, want);
    assert_eq!(ts.iter().map(|t| t.messages.len()).sum::<usize>(), 2993);
    for t in &ts {
        assert_eq!(t.messages[0].role, "human", "{}", t.id);
        assert!(!t.messages[0].is_action, "{}", t.id);
        assert_eq!(t.reward, Some(0.0), "{}", t.id);
        assert!(t.messages.iter().all(|m| m.name.is_none()));
    }
    // No Hand-Crafted message is empty, so every message but the question is an action:
    // 2993 - 58 = 2935.
    assert_eq!(ts.iter().map(|t| t.num_actions()).sum::<usize>(), 2935);
    // Annotations read from the files (34, 53 and 54 carry the July 2025 corrections).
    let step = |i: usize| ts[i - 1].mistake_step;
    assert_eq!(step(1), Some(12));
    assert_eq!(step(34), Some(4));
    assert_eq!(step(53), Some(24));
    assert_eq!(step(54), Some(15));
    assert_eq!(
        ts[0].task_id,
        "6e3be83d1949fa52cba03fb1ce4b5b3bf7e37a83fd7d67694b10b2e439d90cf8"
    );
    let steps: Vec<usize> = ts.iter().map(|t| t.mistake_step.unwrap()).collect();
    assert_eq!(
        (steps.iter().min(), steps.iter().max()),
        (Some(&1), Some(&82))
    );
    // 0-based indexing check from the README: the speaker (role before " (") at the mistake
    // step is the annotated agent in 55 of 58 logs; 20, 22 and 49 disagree.
    let mismatches: Vec<&str> = ts
        .iter()
        .filter(|t| {
            let role = &t.messages[t.mistake_step.unwrap()].role;
            let agent = role.split(" (").next().unwrap();
            Some(agent) != t.mistake_agent.as_deref()
        })
        .map(|t| t.id.as_str())
        .collect();
    assert_eq!(
        mismatches,
        ["Hand-Crafted/20", "Hand-Crafted/22", "Hand-Crafted/49"]
    );
}

#[test]
fn who_and_when_algorithm_generated() {
    let Some(data) = data_dir() else { return };
    let ts = who_and_when(&data, "Algorithm-Generated");
    assert_eq!(ts.len(), 126);
    assert_eq!(ts.iter().map(|t| t.messages.len()).sum::<usize>(), 1099);
    // Two messages have empty content (counted with Python): 1099 - 2 = 1097 actions.
    assert_eq!(ts.iter().map(|t| t.num_actions()).sum::<usize>(), 1097);
    assert!(ts.iter().all(|t| t.reward == Some(0.0)));
    assert!(ts
        .iter()
        .flat_map(|t| &t.messages)
        .all(|m| m.name.is_some()));
    // mistake_step histogram from formats-and-formulas.md.
    let mut hist = BTreeMap::new();
    for t in &ts {
        *hist.entry(t.mistake_step.unwrap()).or_insert(0) += 1;
    }
    let want: BTreeMap<usize, i32> = [
        (0, 20),
        (1, 34),
        (2, 11),
        (3, 13),
        (4, 11),
        (5, 14),
        (6, 6),
        (7, 4),
        (8, 12),
        (9, 1),
    ]
    .into();
    assert_eq!(hist, want);
    let t1 = &ts[0];
    assert_eq!(t1.id, "Algorithm-Generated/1");
    assert_eq!(t1.mistake_step, Some(0));
    assert_eq!(t1.messages[0].name.as_deref(), Some("Excel_Expert"));
    assert_eq!(t1.messages[0].role, "assistant");
    let t126 = &ts[125];
    assert_eq!(t126.mistake_step, Some(5));
    assert_eq!(
        t126.mistake_agent.as_deref(),
        Some("CorporateHistory_IPOs_MondayCom_Expert")
    );
    // The speaker `name` at the mistake step matches the agent (ignoring `_` and case) in
    // 123 of 126 logs; 14, 15 and 59 disagree (README).
    let norm = |s: &str| s.replace('_', "").to_lowercase();
    let mismatches: Vec<&str> = ts
        .iter()
        .filter(|t| {
            let name = t.messages[t.mistake_step.unwrap()].name.as_deref().unwrap();
            norm(name) != norm(t.mistake_agent.as_deref().unwrap())
        })
        .map(|t| t.id.as_str())
        .collect();
    assert_eq!(
        mismatches,
        [
            "Algorithm-Generated/14",
            "Algorithm-Generated/15",
            "Algorithm-Generated/59"
        ]
    );
}

#[test]
fn whole_who_and_when_folder_reads_both_splits() {
    let Some(data) = data_dir() else { return };
    let reports = read_inputs(&[data.join("who_and_when")], &strict()).unwrap();
    // README.md and LICENSE are ignored by extension; 58 + 126 = 184 logs.
    assert_eq!(reports.len(), 184);
    let ts = all(&reports);
    let ids: BTreeSet<&str> = ts.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids.len(), 184);
    // Algorithm-Generated sorts before Hand-Crafted.
    assert_eq!(ts[0].id, "Algorithm-Generated/1");
    assert_eq!(ts[126].id, "Hand-Crafted/1");
}
