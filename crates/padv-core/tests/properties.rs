//! Property tests of the metrics and aggregations.

use padv_core::eval::auroc;
use padv_core::score::{trajectory_score, Method, PaMode, ScoreSpec, StepAgg, TokenAgg};
use padv_core::{LogprobRecord, StepLogprobs};
use proptest::prelude::*;

/// Scores on a coarse grid (k/8, k in -40..40) so ties are frequent and any strictly
/// increasing transform below maps distinct values to distinct values exactly.
fn scores_and_labels() -> impl Strategy<Value = (Vec<f64>, Vec<bool>)> {
    (2usize..60).prop_flat_map(|n| {
        (
            prop::collection::vec((-40i32..40).prop_map(|k| f64::from(k) / 8.0), n),
            prop::collection::vec(any::<bool>(), n),
        )
    })
}

proptest! {
    #[test]
    fn auroc_invariant_under_increasing_transforms((s, l) in scores_and_labels()) {
        prop_assume!(l.iter().any(|&x| x) && l.iter().any(|&x| !x));
        let base = auroc(&s, &l).unwrap();
        let transforms: [fn(f64) -> f64; 3] = [
            |x| 3.0 * x - 7.0,
            |x| x.exp(),
            |x| x * x * x + x,
        ];
        for f in transforms {
            let t: Vec<f64> = s.iter().map(|&x| f(x)).collect();
            prop_assert_eq!(auroc(&t, &l).unwrap(), base);
        }
    }

    #[test]
    fn auroc_of_negated_scores_is_complement((s, l) in scores_and_labels()) {
        prop_assume!(l.iter().any(|&x| x) && l.iter().any(|&x| !x));
        let a = auroc(&s, &l).unwrap();
        let neg: Vec<f64> = s.iter().map(|x| -x).collect();
        prop_assert!((auroc(&neg, &l).unwrap() - (1.0 - a)).abs() < 1e-12);
    }

    #[test]
    fn diff_of_agg_equals_agg_of_diff_for_mean_sum_last(
        steps in prop::collection::vec(
            prop::collection::vec((-20.0f32..0.0, -20.0f32..0.0), 0..12),
            1..8,
        ),
        beta in 0.1f64..4.0,
    ) {
        let record = LogprobRecord {
            num_messages: None,
            id: "p".into(),
            task_id: "t".into(),
            label: None,
            mistake_step: None,
            vocab_size: None,
            steps: steps
                .iter()
                .enumerate()
                .map(|(i, toks)| StepLogprobs {
                    message_index: 2 * i + 1,
                    policy: toks.iter().map(|t| t.0).collect(),
                    reference: Some(toks.iter().map(|t| t.1).collect()),
                    ..Default::default()
                })
                .collect(),
            judges: Default::default(),
        };
        for token_agg in [TokenAgg::Mean, TokenAgg::Sum, TokenAgg::Last] {
            for &step_agg in StepAgg::ALL {
                let spec = |pa_mode| ScoreSpec {
                    method: Method::Pa, token_agg, step_agg, pa_mode, beta, judge: None,
                };
                let a = trajectory_score(&record, &spec(PaMode::DiffOfAgg)).unwrap().unwrap();
                let b = trajectory_score(&record, &spec(PaMode::AggOfDiff)).unwrap().unwrap();
                // relative 1e-9, with an absolute floor for values that cancel to ~0
                let scale = a.abs().max(b.abs()).max(1.0);
                prop_assert!((a - b).abs() <= 1e-9 * scale,
                    "{token_agg}/{step_agg}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn bottom10_never_exceeds_mean(values in prop::collection::vec(-1e3f64..1e3, 1..80)) {
        let mean = StepAgg::Mean.apply(&mut values.clone());
        let b10 = StepAgg::Bottom10.apply(&mut values.clone());
        let min = StepAgg::Min.apply(&mut values.clone());
        prop_assert!(b10 <= mean + 1e-9 * mean.abs().max(1.0), "{b10} > {mean}");
        prop_assert!(b10 >= min - 1e-9 * min.abs().max(1.0), "{b10} < {min}");
    }
}
