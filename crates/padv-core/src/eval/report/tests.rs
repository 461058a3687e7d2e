//! Report tests: validation of every spec and record, "nothing to evaluate" in words, the
//! table's yardsticks, and the cross-validated headline.

use super::common::{cross_validate_means, item_folds};
use super::*;
use crate::record::StepLogprobs;
use crate::score::{synthetic_records, PaMode, ScoreError, StepAgg, TokenAgg};

fn cfg(grid: bool) -> EvalConfig {
    EvalConfig {
        grid,
        bootstrap: 50,
        ..EvalConfig::default()
    }
}

/// A one-step record whose PA score is `policy − reference` = `score`.
fn rec(id: &str, task: &str, label: Option<f64>, score: f32) -> LogprobRecord {
    LogprobRecord {
        id: id.into(),
        task_id: task.into(),
        label,
        steps: vec![StepLogprobs {
            message_index: 1,
            policy: vec![-1.0 + score.min(0.0)],
            reference: Some(vec![-1.0 - score.max(0.0)]),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn every_spec_is_validated_grid_included() {
    let recs = synthetic_records(40, 4, 3, 1);
    for beta in [-1.0, 0.0, f64::NAN, f64::INFINITY] {
        for grid in [false, true] {
            let mut c = cfg(grid);
            c.spec.beta = beta;
            let e = evaluate(&recs, EvalKind::Uq, &c).unwrap_err();
            assert!(
                matches!(e, EvalError::Score(ScoreError::InvalidSpec(_))),
                "beta {beta}, grid {grid}: {e}"
            );
        }
    }
    // β is carried into every grid cell.
    let mut c = cfg(true);
    c.spec.beta = 2.5;
    c.methods = vec![Method::Pa];
    let r = evaluate(&recs, EvalKind::Uq, &c).unwrap();
    let ReportBody::Uq(u) = &r.results else {
        panic!("not a UQ report")
    };
    assert!(u.cells.iter().all(|c| c.spec.beta == 2.5));
}

#[test]
fn grids_need_two_folds() {
    let recs = synthetic_records(40, 4, 3, 1);
    let c = EvalConfig {
        folds: 1,
        ..cfg(true)
    };
    assert!(matches!(
        evaluate(&recs, EvalKind::Bon, &c),
        Err(EvalError::InvalidConfig(_))
    ));
}

#[test]
fn duplicate_ids_are_refused_naming_both_positions() {
    let mut recs = synthetic_records(10, 3, 2, 1);
    recs[5].id = recs[2].id.clone();
    let e = evaluate(&recs, EvalKind::Bon, &cfg(false)).unwrap_err();
    assert_eq!(
        e,
        EvalError::DuplicateId {
            id: recs[2].id.clone(),
            first: 2,
            second: 5
        }
    );
    assert!(e.to_string().contains(&recs[2].id));
}

#[test]
fn non_finite_values_are_refused_naming_the_position() {
    let mut recs = synthetic_records(10, 3, 2, 1);
    recs[4].steps[1].reference.as_mut().unwrap()[0] = f32::NEG_INFINITY;
    let e = evaluate(&recs, EvalKind::Uq, &cfg(false)).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("steps[1].reference[0]"), "{text}");
    assert!(text.contains(&recs[4].id), "{text}");
    assert!(matches!(
        evaluate(&[], EvalKind::Uq, &cfg(false)),
        Err(EvalError::NoRecords)
    ));
}

#[test]
fn failure_attribution_without_annotations_says_so_and_reports_no_zeros() {
    let mut recs = synthetic_records(30, 4, 3, 2);
    for r in &mut recs {
        r.mistake_step = None;
    }
    for grid in [false, true] {
        let r = evaluate(&recs, EvalKind::Fa, &cfg(grid)).unwrap();
        let note = r.note.clone().unwrap_or_default();
        assert!(note.contains("nothing to evaluate"), "{note}");
        let ReportBody::Fa(fa) = &r.results else {
            panic!("not an FA report")
        };
        assert_eq!(fa.n_annotated, 0);
        for m in &fa.methods {
            assert_eq!(m.headline.metrics.n, 0);
            assert_eq!(m.headline.metrics.accuracy, None);
            assert_eq!(m.headline.metrics.mae, None);
            assert_eq!(m.headline.cv_accuracy, None);
        }
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("\"accuracy\":0.0"), "{json}");
        assert!(json.contains("\"accuracy\":null"), "{json}");
        assert!(r.to_table().contains("nothing to evaluate"));
    }
}

#[test]
fn uq_with_one_class_says_so() {
    let mut recs = synthetic_records(30, 4, 3, 2);
    for r in &mut recs {
        r.label = Some(1.0);
    }
    let r = evaluate(&recs, EvalKind::Uq, &cfg(false)).unwrap();
    assert!(
        r.note.as_deref().unwrap_or("").contains("one class"),
        "{:?}",
        r.note
    );
    let ReportBody::Uq(u) = &r.results else {
        panic!("not a UQ report")
    };
    assert_eq!(u.methods[0].headline.result.auroc, None);
    let json = serde_json::to_value(&r).unwrap();
    assert!(json["note"].as_str().is_some());
    // Calibration cannot be judged either: said in words, metrics null, never 0.
    let cal = &u.methods[0].calibration;
    assert!(cal.platt.is_none() && cal.isotonic.is_none());
    assert!(cal
        .note
        .as_deref()
        .unwrap_or("")
        .contains("nothing to evaluate"));
    assert!(json["results"]["methods"][0]["calibration"]["platt"].is_null());
    assert!(
        r.to_table().contains("calibration NOTE"),
        "{}",
        r.to_table()
    );
}

#[test]
fn uq_reports_heldout_calibration_for_every_method_on_the_cv_folds() {
    let recs = synthetic_records(200, 4, 3, 6);
    for grid in [false, true] {
        let c = EvalConfig {
            methods: vec![Method::Pa, Method::PolicyLogprob],
            ..cfg(grid)
        };
        let r = evaluate(&recs, EvalKind::Uq, &c).unwrap();
        let ReportBody::Uq(u) = &r.results else {
            panic!("not a UQ report")
        };
        assert_eq!(u.calibration_settings.folds, 5);
        for m in &u.methods {
            let cal = &m.calibration;
            assert_eq!((cal.folds, cal.n, cal.note.as_deref()), (5, 200, None));
            for metrics in [cal.platt.as_ref().unwrap(), cal.isotonic.as_ref().unwrap()] {
                assert!((0.0..=1.0).contains(&metrics.brier) && metrics.log_loss > 0.0);
                assert_eq!(metrics.reliability.iter().map(|b| b.n).sum::<usize>(), 200);
            }
        }
        // PA carries signal on these records: its held-out Brier beats the base rate's.
        let base = r
            .chance
            .iter()
            .find(|c| c.metric == "Brier")
            .unwrap()
            .value
            .unwrap();
        assert!(u.methods[0].calibration.platt.as_ref().unwrap().brier < base);
        let table = r.to_table();
        assert!(
            table.contains("Brier Platt") && table.contains("ECE iso"),
            "{table}"
        );
        assert!(table.contains("10 equal-width bins"), "{table}");
        assert!(table.contains("Brier ↓, log-loss ↓, ECE ↓"), "{table}");
        let spec = u.headline_spec(Method::Pa).unwrap();
        assert_eq!(spec.label(), u.methods[0].headline.label);
    }
}

#[test]
fn tables_state_chance_direction_and_n() {
    let recs = synthetic_records(60, 4, 3, 5);
    let uq = evaluate(&recs, EvalKind::Uq, &cfg(false))
        .unwrap()
        .to_table();
    assert!(uq.contains("better: AUROC ↑, AUPRC ↑"), "{uq}");
    assert!(uq.contains("AUROC = 0.500"), "{uq}");
    assert!(uq.contains("base rate"), "{uq}");
    assert!(uq.contains("95% CI") && uq.contains(" n"), "{uq}");
    let bon = evaluate(&recs, EvalKind::Bon, &cfg(true))
        .unwrap()
        .to_table();
    assert!(bon.contains("success ↑"), "{bon}");
    assert!(bon.contains("Mean@N") && bon.contains("Pass@N"), "{bon}");
    assert!(bon.contains("real choice"), "{bon}");
    assert!(
        bon.contains("cross-validation") && bon.contains("optimistic"),
        "{bon}"
    );
    let fa = evaluate(&recs, EvalKind::Fa, &cfg(true))
        .unwrap()
        .to_table();
    assert!(fa.contains("accuracy ↑") && fa.contains("MAE ↓"), "{fa}");
    assert!(
        fa.contains("first_action") && fa.contains("most_common_step"),
        "{fa}"
    );
    for t in [&uq, &bon, &fa] {
        assert!(t.contains("chance:"), "{t}");
        assert!(!t.contains('\u{1b}'), "no colour codes");
        assert!(
            t.lines().all(|l| !l.ends_with(' ')),
            "trailing space in {t}"
        );
    }
}

#[test]
fn best_of_n_counts_real_choices_and_labels_k() {
    // Task a: success (score 2) and failure (score 1): a real choice, picked right.
    // Task b: two failures: no real choice. Task c: one success. Task d: unlabelled.
    let recs = vec![
        rec("a1", "a", Some(0.0), 1.0),
        rec("a2", "a", Some(1.0), 2.0),
        rec("b1", "b", Some(0.0), 1.0),
        rec("b2", "b", Some(0.0), 3.0),
        rec("c1", "c", Some(1.0), 0.5),
        rec("d1", "d", None, 0.5),
    ];
    let r = evaluate(&recs, EvalKind::Bon, &cfg(false)).unwrap();
    let ReportBody::Bon(b) = &r.results else {
        panic!("not a BoN report")
    };
    assert_eq!(
        (b.n_tasks, b.n_tasks_with_choice, b.n_rollouts, b.n_no_label),
        (3, 1, 5, 1)
    );
    let h = &b.methods[0].headline;
    // picks: a2 (success), b2 (failure), c1 (success) -> 2/3
    assert!((h.cell.success_rate.unwrap() - 2.0 / 3.0).abs() < 1e-12);
    // random pick: (1/2 + 0 + 1) / 3 = 1/2; oracle: 2/3
    assert!((b.random_pick_success_rate.unwrap() - 0.5).abs() < 1e-12);
    assert!((b.pass_at_n.unwrap() - 2.0 / 3.0).abs() < 1e-12);
    let ks: Vec<usize> = h.cell.bon_at_k.iter().map(|p| p.k).collect();
    assert_eq!(ks, vec![1, 2]);
    let ci = h.cell.success_ci.unwrap();
    assert!(ci.low <= 2.0 / 3.0 && 2.0 / 3.0 <= ci.high && ci.low >= 0.0 && ci.high <= 1.0);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(
        json["results"]["methods"][0]["headline"]["bon_at_k"][1]["k"],
        2
    );
}

#[test]
fn headline_intervals_do_not_depend_on_bootstrapping_every_cell() {
    let recs = synthetic_records(150, 4, 3, 8);
    for kind in [EvalKind::Uq, EvalKind::Bon] {
        let all = evaluate(&recs, kind, &cfg(true)).unwrap();
        let some = evaluate(
            &recs,
            kind,
            &EvalConfig {
                cell_intervals: false,
                ..cfg(true)
            },
        )
        .unwrap();
        match (&all.results, &some.results) {
            (ReportBody::Uq(a), ReportBody::Uq(b)) => {
                for (x, y) in a.methods.iter().zip(&b.methods) {
                    assert!(x.headline.result.auroc_ci.is_some());
                    assert_eq!(x.headline, y.headline);
                }
                // Other cells go without.
                assert!(
                    b.cells
                        .iter()
                        .filter(|c| c.result.auroc_ci.is_some())
                        .count()
                        <= b.methods.len()
                );
            }
            (ReportBody::Bon(a), ReportBody::Bon(b)) => {
                for (x, y) in a.methods.iter().zip(&b.methods) {
                    assert!(x.headline.cell.success_ci.is_some());
                    assert_eq!(x.headline, y.headline);
                }
                assert!(
                    b.cells.iter().filter(|c| c.success_ci.is_some()).count() <= b.methods.len()
                );
            }
            _ => panic!("wrong report kinds"),
        }
    }
}

#[test]
fn mean_at_n_is_the_random_picks_mean_reward_beside_its_success_rate() {
    // Non-binary rewards. Task a: rewards 1, 0.5, 0 (one success); task b: 0.25, 1.
    // Random pick's success rate: (1/3 + 1/2) / 2 = 5/12.
    // Mean@N (mean reward, the reference's): ((1 + 0.5 + 0) / 3 + (0.25 + 1) / 2) / 2
    //   = (0.5 + 0.625) / 2 = 0.5625.
    let recs = vec![
        rec("a1", "a", Some(1.0), 0.1),
        rec("a2", "a", Some(0.5), 0.2),
        rec("a3", "a", Some(0.0), 0.3),
        rec("b1", "b", Some(0.25), 0.4),
        rec("b2", "b", Some(1.0), 0.5),
    ];
    let r = evaluate(&recs, EvalKind::Bon, &cfg(false)).unwrap();
    let ReportBody::Bon(b) = &r.results else {
        panic!("not a BoN report")
    };
    assert!((b.random_pick_success_rate.unwrap() - 5.0 / 12.0).abs() < 1e-12);
    assert!((b.random_pick_mean_reward.unwrap() - 0.5625).abs() < 1e-12);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["results"]["random_pick_mean_reward"], 0.5625);
    let chance = |m: &str| r.chance.iter().find(|c| c.metric == m).unwrap().value;
    assert_eq!(chance("mean reward"), Some(0.5625));
    assert!((chance("success").unwrap() - 5.0 / 12.0).abs() < 1e-12);
    let table = r.to_table();
    assert!(
        table.contains("success 0.417, mean reward 0.562 (Mean@N"),
        "{table}"
    );
    // Picks: a3 (score 0.3, reward 0) and b2 (0.5, reward 1): mean reward 0.5.
    assert_eq!(b.methods[0].headline.cell.mean_reward, Some(0.5));
}

#[test]
fn cv_choice_can_differ_from_the_best_cell_in_the_grid() {
    // Three folds of four items. A is right on 3 of 4 items of folds 0 and 1, never on
    // fold 2 (6 of 12); B on 1, 1 and 3 (5 of 12). Best in grid: A. Fold 0 trains on
    // folds 1 + 2: A 3, B 4 -> B; fold 1 likewise -> B; fold 2 trains on 0 + 1: A 6, B 2
    // -> A. The folds choose B twice: the headline is B, not the best-in-grid A.
    let folds = vec![0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2];
    let bits = |v: [u8; 12]| v.iter().map(|&x| [f64::from(x), 0.0]).collect::<Vec<_>>();
    let a = bits([1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0]);
    let b = bits([1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0]);
    let cv = cross_validate_means(&[a, b], &folds, 3);
    assert_eq!(cv.per_fold, vec![Some(1), Some(1), Some(0)]);
    assert_eq!(cv.modal(), Some((1, 2)));
    // Held-out: fold 0 with B (1 of 4), fold 1 with B (1 of 4), fold 2 with A (0 of 4).
    let per_item: Vec<usize> = cv.per_item.iter().map(|c| c.unwrap()).collect();
    assert_eq!(per_item, vec![1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0]);
}

#[test]
fn cv_ties_take_the_first_candidate_then_the_tie_breaker() {
    let folds = vec![0, 1];
    let a = vec![[1.0, -2.0], [1.0, -2.0]];
    let b = vec![[1.0, -1.0], [1.0, -1.0]];
    let c = vec![[1.0, -1.0], [1.0, -1.0]];
    let cv = cross_validate_means(&[a, b, c], &folds, 2);
    assert_eq!(cv.per_fold, vec![Some(1), Some(1)]);
}

#[test]
fn folds_without_held_out_items_do_not_vote() {
    // Two items, three folds: fold 2 holds nothing, so it must not add a vote for A.
    let a = vec![[1.0, 0.0], [0.0, 0.0]];
    let b = vec![[0.0, 0.0], [1.0, 0.0]];
    let cv = cross_validate_means(&[a, b], &[0, 1], 3);
    // Fold 0 trains on item 1 -> B; fold 1 trains on item 0 -> A.
    assert_eq!(cv.per_fold, vec![Some(1), Some(0), None]);
    assert_eq!(cv.modal(), Some((0, 1)));
}

#[test]
fn item_folds_are_balanced_and_seeded() {
    let f = item_folds(11, 3, 4);
    let sizes: Vec<usize> = (0..3)
        .map(|k| f.iter().filter(|&&x| x == k).count())
        .collect();
    assert_eq!(sizes, vec![4, 4, 3]);
    assert_eq!(f, item_folds(11, 3, 4));
    assert!(item_folds(11, 1, 4).is_empty());
}

#[test]
fn grid_headlines_are_cross_validated_and_consistent() {
    let recs = synthetic_records(120, 5, 3, 4);
    let c = EvalConfig {
        methods: vec![Method::Pa, Method::PolicyLogprob],
        ..cfg(true)
    };
    let r = evaluate(&recs, EvalKind::Uq, &c).unwrap();
    let ReportBody::Uq(u) = &r.results else {
        panic!("not a UQ report")
    };
    assert_eq!(u.methods.len(), 2);
    for m in &u.methods {
        let h = &m.headline;
        assert_eq!(h.selection, Selection::CrossValidated);
        let cv = m.cv.as_ref().unwrap();
        let chose = cv.choices.iter().filter(|x| x.chosen == h.label).count();
        assert_eq!(Some(chose), h.chosen_in_folds);
        assert!(cv.choices.iter().all(|x| cv
            .choices
            .iter()
            .filter(|y| y.chosen == x.chosen)
            .count()
            <= chose));
        assert_eq!(h.cv_auroc, cv.mean_heldout_auroc);
    }
    // A single spec is the given cell, reported as such.
    let spec = ScoreSpec::builder()
        .token_agg(TokenAgg::Min)
        .step_agg(StepAgg::Last)
        .pa_mode(PaMode::AggOfDiff)
        .build()
        .unwrap();
    let r = evaluate(&recs, EvalKind::Fa, &EvalConfig { spec, ..cfg(false) }).unwrap();
    let ReportBody::Fa(f) = &r.results else {
        panic!("not an FA report")
    };
    assert_eq!(f.methods[0].headline.label, spec.label());
    assert_eq!(f.methods[0].headline.selection, Selection::Given);
}

#[test]
fn fa_priors_by_hand() {
    // Annotated records (in order) with gold steps 3, 3, 5 and first actions at 1.
    let mut recs: Vec<LogprobRecord> = Vec::new();
    for (i, gold) in [3usize, 3, 5].into_iter().enumerate() {
        let mut r = rec(&format!("r{i}"), "t", Some(0.0), -1.0);
        r.mistake_step = Some(gold);
        // The gold steps lie after the record's one action step: say the trajectory has them.
        r.num_messages = Some(6);
        recs.push(r);
    }
    let c = EvalConfig {
        folds: 3,
        ..cfg(true)
    };
    let r = evaluate(&recs, EvalKind::Fa, &c).unwrap();
    let ReportBody::Fa(fa) = &r.results else {
        panic!("not an FA report")
    };
    let prior = |name: &str| {
        fa.priors
            .iter()
            .find(|p| p.metrics.predictor == name)
            .unwrap()
            .clone()
    };
    // first_action predicts 1 every time: errors 2, 2, 4.
    let first = prior("first_action");
    assert_eq!(
        (first.metrics.accuracy, first.metrics.mae),
        (Some(0.0), Some(8.0 / 3.0))
    );
    // most_common_step is 3 (seen twice): errors 0, 0, 2.
    let mode = prior("most_common_step");
    assert!(mode.optimistic);
    assert_eq!(
        (mode.metrics.accuracy, mode.metrics.mae),
        (Some(2.0 / 3.0), Some(2.0 / 3.0))
    );
    // Three folds of one record each: leaving out a 3 leaves {3, 5}, a tie -> 3 (right);
    // leaving out the 5 leaves {3, 3} -> 3 (wrong by 2).
    let cv = prior("most_common_step_cv");
    assert!(!cv.optimistic);
    assert_eq!(
        (cv.metrics.accuracy, cv.metrics.mae),
        (Some(2.0 / 3.0), Some(2.0 / 3.0))
    );
}

#[test]
#[ignore = "prints sample tables for a human to read"]
fn print_sample_tables() {
    let recs = synthetic_records(400, 5, 3, 4);
    for kind in EvalKind::ALL {
        for grid in [false, true] {
            println!("{}", evaluate(&recs, *kind, &cfg(grid)).unwrap().to_table());
        }
    }
}

/// A record with an outcome judge `rm` (trajectory value) and a PRM `prm` (step values).
fn judged(
    id: &str,
    label: f64,
    rm: Option<f64>,
    prm: &[(usize, f64)],
    mistake: Option<usize>,
) -> LogprobRecord {
    use crate::judge::{JudgeScores, JudgeStep};
    let mut r = rec(id, id, Some(label), 0.0);
    r.mistake_step = mistake;
    if let Some(v) = rm {
        r.judges.insert(
            "rm".into(),
            JudgeScores {
                trajectory: Some(v),
                steps: vec![],
            },
        );
    }
    if !prm.is_empty() {
        r.judges.insert(
            "prm".into(),
            JudgeScores {
                trajectory: None,
                steps: prm
                    .iter()
                    .map(|&(m, s)| JudgeStep {
                        message_index: m,
                        score: s,
                    })
                    .collect(),
            },
        );
    }
    r
}

#[test]
fn judges_are_evaluated_beside_the_methods() {
    // rm ranks the two successes above the failures except one pair; prm's min step
    // separates them perfectly; record e has no rm value (dropped from rm's UQ).
    let recs = vec![
        judged("a", 1.0, Some(4.0), &[(1, 0.9), (3, 0.8)], None),
        judged("b", 1.0, Some(2.0), &[(1, 0.7), (3, 0.9)], None),
        judged("c", 0.0, Some(3.0), &[(1, 0.6), (3, 0.2)], Some(3)),
        judged("d", 0.0, Some(1.0), &[(1, 0.3), (3, 0.9)], Some(1)),
        judged("e", 0.0, None, &[(1, 0.4), (3, 0.45)], Some(3)),
    ];
    let mut c = cfg(true);
    c.bootstrap = 0;
    c.folds = 2;
    let r = evaluate(&recs, EvalKind::Uq, &c).unwrap();
    let ReportBody::Uq(u) = &r.results else {
        panic!()
    };
    let cell = |label: &str| u.cells.iter().find(|c| c.label == label).unwrap().clone();
    // rm: positives {4, 2}, negatives {3, 1}: pairs won 3 of 4.
    let rm = cell("judge:rm");
    assert_eq!((rm.result.n, rm.result.n_no_score), (4, 1));
    assert_eq!(rm.result.auroc, Some(0.75));
    // prm/min: positives {0.8, 0.7}, negatives {0.2, 0.3, 0.4}: perfect.
    assert_eq!(cell("judge:prm/min").result.auroc, Some(1.0));
    // prm/last: positives {0.8, 0.9}, negatives {0.2, 0.9, 0.45}: 2 + 2.5 (a tie) of 6.
    assert!((cell("judge:prm/last").result.auroc.unwrap() - 4.5 / 6.0).abs() < 1e-12);
    // One row per judge, named, next to PA.
    let names: Vec<String> = u
        .methods
        .iter()
        .map(|m| MethodGroup_name(m.method, m.judge))
        .collect();
    assert!(names.contains(&"judge:rm".to_string()), "{names:?}");
    assert!(names.contains(&"judge:prm".to_string()), "{names:?}");
    assert!(names.contains(&"pa".to_string()), "{names:?}");
    let prm_row = u
        .methods
        .iter()
        .find(|m| m.judge.map(|j| j.as_str()) == Some("prm"))
        .unwrap();
    assert_eq!(prm_row.n_cells, 6);
    let table = r.to_table();
    assert!(table.contains("judge:prm"), "{table}");

    // FA: PRM predictors (lowest step, sharpest absolute drop, earliest below 0.5).
    // c: 0.6, 0.2 (gold 3): min 3, drop 3, earliest 3 -> all exact.
    // d: 0.3, 0.9 (gold 1): min 1, drop: no drop -> first 1, earliest 1 -> exact.
    // e: 0.4, 0.45 (gold 3): min 1, drop: none -> 1, earliest 1 -> all miss by 2.
    let mut c1 = cfg(false);
    c1.bootstrap = 0;
    c1.spec = ScoreSpec::builder()
        .method(Method::Judge)
        .judge(Some(crate::score::JudgeRef {
            name: crate::judge::JudgeName::new("prm").unwrap(),
            level: crate::score::JudgeLevel::Steps,
        }))
        .build()
        .unwrap();
    let r = evaluate(&recs, EvalKind::Fa, &c1).unwrap();
    let ReportBody::Fa(f) = &r.results else {
        panic!()
    };
    let rows = &f.cells[0].result.rows;
    let names: Vec<&str> = rows.iter().map(|m| m.predictor.as_str()).collect();
    assert_eq!(
        &names[..6],
        [
            "lowest_step",
            "sharpest_abs_drop",
            "earliest_below_half",
            "min_cumulative",
            "first_action",
            "last_action"
        ]
    );
    for m in &rows[..3] {
        assert!((m.accuracy.unwrap() - 2.0 / 3.0).abs() < 1e-12, "{m:?}");
        assert!((m.mae.unwrap() - 2.0 / 3.0).abs() < 1e-12, "{m:?}");
    }
    // A judge the records do not have is an error naming the ones they do.
    let mut c2 = c1.clone();
    c2.spec.judge = Some(crate::score::JudgeRef {
        name: crate::judge::JudgeName::new("nope").unwrap(),
        level: crate::score::JudgeLevel::Steps,
    });
    let e = evaluate(&recs, EvalKind::Uq, &c2).unwrap_err().to_string();
    assert!(e.contains("\"nope\"") && e.contains("prm, rm"), "{e}");
    // Trajectory-level judges have no steps: not in the FA grid.
    let r = evaluate(&recs, EvalKind::Fa, &c).unwrap();
    let ReportBody::Fa(f) = &r.results else {
        panic!()
    };
    assert!(f.cells.iter().all(|c| c.label != "judge:rm"));
    assert!(f.cells.iter().any(|c| c.label == "judge:prm/min"));
}

#[allow(non_snake_case)]
fn MethodGroup_name(method: Method, judge: Option<crate::judge::JudgeName>) -> String {
    crate::score::MethodGroup { method, judge }.name()
}

/// Synthetic records, judges attached to some of them only (and first in a later batch).
fn records_with_judges(n: usize) -> Vec<LogprobRecord> {
    use crate::judge::{JudgeScores, JudgeStep};
    let mut recs = synthetic_records(n, 3, 4, 11);
    for (i, r) in recs.iter_mut().enumerate().skip(n / 3) {
        if i % 3 == 0 {
            continue;
        }
        let q = r.label.unwrap_or(0.0) + (i % 7) as f64 * 0.1;
        r.judges.insert(
            "rm".into(),
            JudgeScores {
                trajectory: Some(q),
                steps: vec![],
            },
        );
        r.judges.insert(
            "prm".into(),
            JudgeScores {
                trajectory: None,
                steps: r
                    .steps
                    .iter()
                    .enumerate()
                    .map(|(k, s)| JudgeStep {
                        message_index: s.message_index,
                        score: q - 0.2 * k as f64,
                    })
                    .collect(),
            },
        );
    }
    recs
}

#[test]
fn jsonl_to_parquet_to_evaluation_gives_identical_reports() {
    use crate::record::{write_records_as, RecordFormat};
    use crate::score::ScoreTableBuilder;
    let recs = records_with_judges(600);
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("r.jsonl");
    let parquet = dir.path().join("r.parquet");
    write_records_as(&jsonl, &recs, RecordFormat::Jsonl).unwrap();
    // JSONL → records → Parquet, as a user converting a file would.
    // The baseline is the evaluation of the records as JSONL gives them: serde_json's default
    // float parser may move an f64 (a judge score) by one ulp (1.4000000000000001 reads as
    // 1.4), so JSONL → records is not exact for f64; Parquet then keeps them bit for bit.
    let read_back = crate::record::read_records(&jsonl).unwrap();
    write_records_as(&parquet, &read_back, RecordFormat::Parquet).unwrap();
    let mut c = cfg(true);
    c.bootstrap = 30;
    c.folds = 3;
    for kind in [EvalKind::Uq, EvalKind::Bon, EvalKind::Fa] {
        let want = serde_json::to_string(&evaluate(&read_back, kind, &c).unwrap()).unwrap();
        for path in [&jsonl, &parquet] {
            let table = table_from_files(std::slice::from_ref(path), &[]).unwrap();
            let got = serde_json::to_string(&evaluate_table(&table, kind, &c).unwrap()).unwrap();
            if got != want {
                let (g, w) = (got.as_bytes(), want.as_bytes());
                let at = g.iter().zip(w).position(|(a, b)| a != b).unwrap_or(0);
                let lo = at.saturating_sub(300);
                panic!(
                    "{kind} from {}: got …{}… want …{}…",
                    path.display(),
                    &got[lo..(at + 200).min(got.len())],
                    &want[lo..(at + 200).min(want.len())]
                );
            }
        }
        // Batches of any size build the same table, so the same report (in memory, no file).
        let want = serde_json::to_string(&evaluate(&recs, kind, &c).unwrap()).unwrap();
        let mut b = ScoreTableBuilder::new();
        for chunk in recs.chunks(77) {
            b.push(chunk).unwrap();
        }
        let got = evaluate_table(&b.finish().unwrap(), kind, &c).unwrap();
        assert_eq!(serde_json::to_string(&got).unwrap(), want, "{kind}");
        // A table keeping only the columns PA and deepconf read: the same report as the
        // full table restricted to those methods.
        let some = EvalConfig {
            methods: vec![Method::Pa, Method::Deepconf, Method::Judge],
            ..c.clone()
        };
        let want = serde_json::to_string(&evaluate(&read_back, kind, &some).unwrap()).unwrap();
        let table =
            table_from_files(std::slice::from_ref(&parquet), &some.methods_evaluated()).unwrap();
        let got = serde_json::to_string(&evaluate_table(&table, kind, &some).unwrap()).unwrap();
        assert!(got == want, "{kind} with some methods");
        // Scoring a method whose arrays were not kept is an error, not a number.
        let spec = ScoreSpec::builder()
            .method(Method::NegEntropy)
            .build()
            .unwrap();
        let e = table.trajectory_scores(&spec).unwrap_err().to_string();
        assert!(e.contains("policy_entropy") && e.contains("without"), "{e}");
    }
    // One score, no grid, with a calibration fitted from the table as from the records.
    let single = cfg(false);
    let report = evaluate(&read_back, EvalKind::Uq, &single).unwrap();
    let table =
        table_from_files(std::slice::from_ref(&parquet), &single.methods_evaluated()).unwrap();
    assert_eq!(
        evaluate_table(&table, EvalKind::Uq, &single).unwrap(),
        report
    );
    use crate::eval::calibration::{fit_headline, fit_headline_table, CalibrationKind};
    assert_eq!(
        fit_headline_table(&table, &report, Method::Pa, CalibrationKind::Isotonic).unwrap(),
        fit_headline(&read_back, &report, Method::Pa, CalibrationKind::Isotonic).unwrap()
    );
}

#[test]
fn table_evaluation_refuses_what_evaluate_refuses() {
    let mut recs = synthetic_records(30, 2, 2, 1);
    recs[17].id = recs[4].id.clone();
    recs[25].id = recs[2].id.clone();
    recs[9].id = recs[2].id.clone();
    let want = evaluate(&recs, EvalKind::Bon, &cfg(false)).unwrap_err();
    let table = ScoreTable::precompute(&recs).unwrap();
    assert_eq!(
        evaluate_table(&table, EvalKind::Bon, &cfg(false)).unwrap_err(),
        want
    );
    assert_eq!(
        want,
        EvalError::DuplicateId {
            id: recs[2].id.clone(),
            first: 2,
            second: 9
        }
    );
    let empty = ScoreTable::precompute(&[]).unwrap();
    assert_eq!(
        evaluate_table(&empty, EvalKind::Uq, &cfg(false)).unwrap_err(),
        EvalError::NoRecords
    );
    let dir = tempfile::tempdir().unwrap();
    let blank = dir.path().join("blank.jsonl");
    std::fs::write(&blank, "\n\n").unwrap();
    assert_eq!(
        table_from_files(&[blank], &[]).unwrap_err(),
        EvalError::NoRecords
    );
}

#[test]
fn uq_streamed_from_files_equals_the_table_evaluation() {
    use crate::eval::source::{scan, Scan};
    use crate::record::{read_records, write_records_as, RecordFormat};
    let mut recs = records_with_judges(600);
    // A record without one optional array: its method is skipped with the table's message,
    // which names this record.
    recs[450].steps[1].policy_entropy = None;
    let dir = tempfile::tempdir().unwrap();
    // Two files, two formats. The first holds no judge value at all (judges start at record
    // 200), so its batch lacks the judges the second carries.
    let a = dir.path().join("a.parquet");
    let b = dir.path().join("b.jsonl");
    write_records_as(&a, &recs[..200], RecordFormat::Parquet).unwrap();
    write_records_as(&b, &recs[200..], RecordFormat::Jsonl).unwrap();
    let paths = vec![a.clone(), b.clone()];
    // The baseline is the records as the files give them (JSONL may move a judge's f64 by
    // an ulp; see the test above).
    let read_back: Vec<LogprobRecord> = paths
        .iter()
        .flat_map(|p| read_records(p).unwrap())
        .collect();
    let judge_spec = ScoreSpec::builder()
        .method(Method::Judge)
        .judge(Some(crate::score::JudgeRef {
            name: crate::judge::JudgeName::new("prm").unwrap(),
            level: crate::score::JudgeLevel::Steps,
        }))
        .step_agg(StepAgg::Min)
        .build()
        .unwrap();
    let mut configs = vec![
        EvalConfig {
            bootstrap: 30,
            folds: 3,
            ..cfg(true)
        },
        EvalConfig {
            bootstrap: 20,
            cell_intervals: false,
            methods: vec![Method::Pa, Method::NegEntropy, Method::Judge],
            ..cfg(true)
        },
        cfg(false),
    ];
    configs.push(EvalConfig {
        spec: judge_spec,
        ..cfg(false)
    });
    let n = read_back.len();
    for c in &configs {
        let want = serde_json::to_string(&evaluate(&read_back, EvalKind::Uq, c).unwrap()).unwrap();
        // 0: one cell per pass; 3 cells' scores per pass; everything in the table.
        for budget in [0, 3 * n * 16, usize::MAX] {
            let got = evaluate_files(&paths, EvalKind::Uq, c, budget).unwrap();
            let got = serde_json::to_string(&got).unwrap();
            assert!(got == want, "budget {budget}, config {c:?}");
        }
    }
    // The skipped method's message names the record, as the table's does.
    let report = evaluate_files(&paths, EvalKind::Uq, &configs[1], 0).unwrap();
    let why = &report.skipped_methods["neg_entropy"];
    assert!(why.contains(&recs[450].id), "{why}");
    // Budget 0 really streams; a file changed between passes is an error, not scores.
    let found = scan(&paths, &[], &[], 0).unwrap();
    let Scan::Files(files) = &found.scan else {
        panic!("a zero budget must not keep the table")
    };
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_records_as(&b, &recs[201..], RecordFormat::Jsonl).unwrap();
    let e = ScoreSource::Files(files)
        .with_scores(&[vec![ScoreSpec::default()]], |_, s| Ok(s.len()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("b.jsonl") && e.contains("changed"), "{e}");
    // Duplicate ids and no records: the table evaluation's errors.
    let mut dup = recs[..40].to_vec();
    dup[31].id = dup[7].id.clone();
    write_records_as(&a, &dup, RecordFormat::Parquet).unwrap();
    assert_eq!(
        evaluate_files(&paths[..1], EvalKind::Uq, &cfg(true), 0).unwrap_err(),
        evaluate(&dup, EvalKind::Uq, &cfg(true)).unwrap_err()
    );
    let blank = dir.path().join("blank.jsonl");
    std::fs::write(&blank, "\n").unwrap();
    assert_eq!(
        evaluate_files(&[blank], EvalKind::Uq, &cfg(true), 0).unwrap_err(),
        EvalError::NoRecords
    );
}
