//! The grid evaluations must agree with the single-cell functions on every cell, including
//! records the cells drop (no reward, no steps, empty steps skipped by certainty methods).

use super::*;
use crate::record::{LogprobRecord, StepLogprobs};
use crate::score::{grid, step_scores, synthetic_records, trajectory_score, Method, ScoreTable};

fn records() -> Vec<LogprobRecord> {
    let mut recs = synthetic_records(120, 5, 3, 4);
    // no reward
    recs[3].label = None;
    // no steps at all
    recs[10].steps.clear();
    // only empty steps: PA scores 0.0, certainty methods drop it
    for s in &mut recs[20].steps {
        *s = StepLogprobs {
            message_index: s.message_index,
            ..Default::default()
        };
    }
    // a failure with a mistake step but an empty first step
    recs[31].steps[0] = StepLogprobs {
        message_index: 1,
        ..Default::default()
    };
    recs[31].mistake_step = Some(3);
    recs
}

#[test]
fn uq_grid_rows_equal_uq_per_cell() {
    let recs = records();
    let table = ScoreTable::precompute(&recs).unwrap();
    let specs = grid(Method::ALL);
    let opts = UqOptions {
        n_boot: 30,
        ..UqOptions::default()
    };
    let rows = uq_grid(&table, &specs, &opts).unwrap();
    assert_eq!(rows.len(), specs.len());
    let rewards: Vec<Option<f64>> = recs.iter().map(|r| r.label).collect();
    let mut saw_dropped_scores = false;
    for (row, spec) in rows.iter().zip(&specs) {
        let scores: Vec<Option<f64>> = recs
            .iter()
            .map(|r| trajectory_score(r, spec).unwrap())
            .collect();
        let single = uq(&scores, &rewards, &opts).unwrap();
        assert_eq!(row.result, single, "{}", row.label);
        assert_eq!(row.folds.len(), 5);
        saw_dropped_scores |= single.n_no_score > 0;
    }
    assert!(
        saw_dropped_scores,
        "the shared-rank shortcut must also be bypassed somewhere"
    );
}

#[test]
fn bon_grid_rows_equal_best_of_n_per_cell() {
    let recs = records();
    let table = ScoreTable::precompute(&recs).unwrap();
    let specs = grid(&[Method::Pa, Method::NegEntropy]);
    let rows = bon_grid(&table, &specs).unwrap();
    let tasks: Vec<&str> = recs.iter().map(|r| r.task_id.as_str()).collect();
    let rewards: Vec<Option<f64>> = recs.iter().map(|r| r.label).collect();
    for (row, spec) in rows.iter().zip(&specs) {
        let scores: Vec<Option<f64>> = recs
            .iter()
            .map(|r| trajectory_score(r, spec).unwrap())
            .collect();
        assert_eq!(
            row.result,
            best_of_n(&tasks, &scores, &rewards).unwrap(),
            "{}",
            row.label
        );
        assert_eq!(row.result.bon_at_k.len(), 8);
    }
}

#[test]
fn fa_grid_rows_equal_attribution_per_cell() {
    let recs = records();
    let table = ScoreTable::precompute(&recs).unwrap();
    let specs = grid(&[Method::Pa, Method::Deepconf, Method::DeepconfTail]);
    let rows = fa_grid(&table, &specs).unwrap();
    let mistakes: Vec<Option<usize>> = recs.iter().map(|r| r.mistake_step).collect();
    for (row, spec) in rows.iter().zip(&specs) {
        let steps: Vec<Vec<(usize, f64)>> =
            recs.iter().map(|r| step_scores(r, spec).unwrap()).collect();
        assert_eq!(row.label, spec.label());
        assert_eq!(
            row.result,
            attribution(&steps, &mistakes).unwrap(),
            "{}",
            row.label
        );
    }
}

#[test]
fn grids_report_missing_fields() {
    let mut recs = records();
    recs[7].steps[2].policy_entropy = None;
    let table = ScoreTable::precompute(&recs).unwrap();
    let specs = grid(&[Method::NegEntropy]);
    for e in [
        uq_grid(&table, &specs, &UqOptions::default()).map(|_| ()),
        bon_grid(&table, &specs).map(|_| ()),
        fa_grid(&table, &specs).map(|_| ()),
    ] {
        let msg = e.unwrap_err().to_string();
        assert!(
            msg.contains("traj-7") && msg.contains("policy_entropy"),
            "{msg}"
        );
    }
}

#[test]
fn synthetic_data_carry_signal_for_every_evaluation() {
    let recs = synthetic_records(800, 8, 4, 9);
    let table = ScoreTable::precompute(&recs).unwrap();
    let pa = [crate::score::ScoreSpec::default()];
    let uq_row = &uq_grid(&table, &pa, &UqOptions::default()).unwrap()[0];
    assert!(uq_row.result.auroc.unwrap() > 0.75, "{:?}", uq_row.result);
    let ci = uq_row.result.auroc_ci.unwrap();
    assert!(ci.low < uq_row.result.auroc.unwrap() && ci.high > uq_row.result.auroc.unwrap());
    let bon = &bon_grid(&table, &pa).unwrap()[0].result;
    assert!(bon.bon_success_rate > bon.mean_at_n + 0.05, "{bon:?}");
    assert!(bon.pass_at_n_oracle >= bon.bon_success_rate);
    // the curve rises from mean success to the best-of-N rate
    assert!(bon.bon_at_k.windows(2).all(|w| w[1] >= w[0] - 1e-12));
    let fa = &fa_grid(
        &table,
        &[crate::score::ScoreSpec {
            token_agg: crate::score::TokenAgg::Sum,
            ..crate::score::ScoreSpec::default()
        }],
    )
    .unwrap()[0]
        .result;
    let sharp = fa
        .rows
        .iter()
        .find(|r| r.predictor == "sharpest_drop")
        .unwrap();
    let first = fa
        .rows
        .iter()
        .find(|r| r.predictor == "first_action")
        .unwrap();
    // 8 steps: a uniform guess is right 1 time in 8; the planted -1.5 drop is findable
    assert!(
        sharp.accuracy.unwrap_or(0.0) > first.accuracy.unwrap_or(1.0) + 0.1,
        "{sharp:?} vs {first:?}"
    );
}
