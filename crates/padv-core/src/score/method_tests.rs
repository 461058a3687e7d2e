//! Hand-worked checks of every scoring method through the public entry points
//! ([`step_scores`], [`trajectory_score`], [`ScoreTable`]).

use super::*;
use crate::record::{LogprobRecord, StepLogprobs};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12 * (1.0 + b.abs())
}

fn spec(method: Method, token: TokenAgg, step: StepAgg) -> ScoreSpec {
    ScoreSpec {
        method,
        token_agg: token,
        step_agg: step,
        ..ScoreSpec::default()
    }
}

fn record(steps: Vec<StepLogprobs>) -> LogprobRecord {
    LogprobRecord {
        num_messages: None,
        id: "r1".into(),
        task_id: "t".into(),
        label: Some(1.0),
        mistake_step: None,
        vocab_size: None,
        steps,
        judges: Default::default(),
    }
}

/// Two steps with policy/reference chosen so min and max differ between PA modes.
/// Step A (message 1): policy (-1, -3), reference (-2, -2.5)
/// Step B (message 3): policy (-0.5), reference (-1.5)
fn pa_record() -> LogprobRecord {
    record(vec![
        StepLogprobs {
            message_index: 1,
            policy: vec![-1.0, -3.0],
            reference: Some(vec![-2.0, -2.5]),
            ..Default::default()
        },
        StepLogprobs {
            message_index: 3,
            policy: vec![-0.5],
            reference: Some(vec![-1.5]),
            ..Default::default()
        },
    ])
}

#[test]
fn pa_diff_of_agg_every_token_agg() {
    let r = pa_record();
    // Step A: mean -2 - (-2.25) = 0.25; sum -4 - (-4.5) = 0.5; last -3 - (-2.5) = -0.5;
    //         min -3 - (-2.5) = -0.5; max -1 - (-2) = 1.
    // Step B (one token): every aggregate is -0.5 - (-1.5) = 1.
    let want_a = [
        (TokenAgg::Mean, 0.25),
        (TokenAgg::Sum, 0.5),
        (TokenAgg::Last, -0.5),
        (TokenAgg::Min, -0.5),
        (TokenAgg::Max, 1.0),
    ];
    for (agg, a) in want_a {
        let got = step_scores(&r, &spec(Method::Pa, agg, StepAgg::Mean)).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].0, got[1].0), (1, 3));
        assert!(close(got[0].1, a) && close(got[1].1, 1.0), "{agg}: {got:?}");
    }
}

#[test]
fn pa_agg_of_diff_differs_for_min_and_max() {
    // One step: policy (-1, -3), reference (-3, -2.5); token advantages (2, -0.5).
    // diff-of-agg min: min(p) - min(r) = -3 - (-3) = 0;   agg-of-diff min: -0.5.
    // diff-of-agg max: max(p) - max(r) = -1 - (-2.5) = 1.5; agg-of-diff max: 2.
    let r = record(vec![StepLogprobs {
        message_index: 1,
        policy: vec![-1.0, -3.0],
        reference: Some(vec![-3.0, -2.5]),
        ..Default::default()
    }]);
    let with = |agg, mode| {
        let s = ScoreSpec {
            pa_mode: mode,
            ..spec(Method::Pa, agg, StepAgg::Mean)
        };
        trajectory_score(&r, &s).unwrap().unwrap()
    };
    assert!(close(with(TokenAgg::Min, PaMode::DiffOfAgg), 0.0));
    assert!(close(with(TokenAgg::Min, PaMode::AggOfDiff), -0.5));
    assert!(close(with(TokenAgg::Max, PaMode::DiffOfAgg), 1.5));
    assert!(close(with(TokenAgg::Max, PaMode::AggOfDiff), 2.0));
    // mean: (2 + -0.5)/2 = 0.75 both ways; sum 1.5; last -0.5
    for (agg, want) in [
        (TokenAgg::Mean, 0.75),
        (TokenAgg::Sum, 1.5),
        (TokenAgg::Last, -0.5),
    ] {
        assert!(close(with(agg, PaMode::DiffOfAgg), want));
        assert!(close(with(agg, PaMode::AggOfDiff), want));
    }
}

#[test]
fn beta_scales_log_prob_methods_only() {
    let r = pa_record();
    let s = ScoreSpec {
        beta: 2.0,
        ..spec(Method::Pa, TokenAgg::Mean, StepAgg::Sum)
    };
    // beta 2 x (0.25 + 1) = 2.5
    assert!(close(trajectory_score(&r, &s).unwrap().unwrap(), 2.5));
    // policy_logprob, token sum, step sum: 2 x ((-4) + (-0.5)) = -9
    let s = ScoreSpec {
        beta: 2.0,
        ..spec(Method::PolicyLogprob, TokenAgg::Sum, StepAgg::Sum)
    };
    assert!(close(trajectory_score(&r, &s).unwrap().unwrap(), -9.0));
    // reference_logprob, token mean, step last: 2 x (-1.5) = -3
    let s = ScoreSpec {
        beta: 2.0,
        ..spec(Method::ReferenceLogprob, TokenAgg::Mean, StepAgg::Last)
    };
    assert!(close(trajectory_score(&r, &s).unwrap().unwrap(), -3.0));
}

#[test]
fn every_step_agg_on_pa() {
    // Step values (token mean): 0.25 and 1 (see pa_diff_of_agg_every_token_agg).
    // mean 0.625, sum 1.25, last 1, min 0.25, max 1, bottom10 (k = 1) 0.25.
    let r = pa_record();
    for (agg, want) in [
        (StepAgg::Mean, 0.625),
        (StepAgg::Sum, 1.25),
        (StepAgg::Last, 1.0),
        (StepAgg::Min, 0.25),
        (StepAgg::Max, 1.0),
        (StepAgg::Bottom10, 0.25),
    ] {
        let got = trajectory_score(&r, &spec(Method::Pa, TokenAgg::Mean, agg)).unwrap();
        assert!(close(got.unwrap(), want), "{agg}: {got:?}");
    }
}

/// One step of certainty statistics, two tokens.
fn certainty_step(mi: usize, topk: [f32; 2], entropy: [f32; 2], vocab: [f32; 2]) -> StepLogprobs {
    StepLogprobs {
        message_index: mi,
        policy: vec![-0.1, -0.2],
        policy_topk_mean: Some(topk.to_vec()),
        policy_entropy: Some(entropy.to_vec()),
        policy_vocab_mean: Some(vocab.to_vec()),
        ..Default::default()
    }
}

#[test]
fn certainty_methods_hand_worked() {
    let mut r = record(vec![certainty_step(
        2,
        [-10.0, -14.0],
        [0.5, 1.5],
        [-16.0, -18.0],
    )]);
    let one = |r: &LogprobRecord, m, t| {
        trajectory_score(r, &spec(m, t, StepAgg::Mean))
            .unwrap()
            .unwrap()
    };
    // deepconf: C = -topk = (10, 14): mean 12, sum 24, last 14, min 10, max 14
    for (t, want) in [
        (TokenAgg::Mean, 12.0),
        (TokenAgg::Sum, 24.0),
        (TokenAgg::Last, 14.0),
        (TokenAgg::Min, 10.0),
        (TokenAgg::Max, 14.0),
    ] {
        assert!(close(one(&r, Method::Deepconf, t), want), "deepconf {t}");
        // refimpl: raw topk (-10, -14): mean -12, sum -24, last -14, min -14, max -10
        let raw = match t {
            TokenAgg::Min => -14.0,
            TokenAgg::Max => -10.0,
            _ => -want,
        };
        assert!(
            close(one(&r, Method::SelfCertaintyRefimpl, t), raw),
            "refimpl {t}"
        );
    }
    // neg_entropy: (-0.5, -1.5): min -1.5, max -0.5, mean -1
    assert!(close(one(&r, Method::NegEntropy, TokenAgg::Min), -1.5));
    assert!(close(one(&r, Method::NegEntropy, TokenAgg::Max), -0.5));
    assert!(close(one(&r, Method::NegEntropy, TokenAgg::Mean), -1.0));
    // self_certainty without vocab_size: -vocab_mean = (16, 18): mean 17, sum 34, min 16
    assert!(close(one(&r, Method::SelfCertainty, TokenAgg::Mean), 17.0));
    assert!(close(one(&r, Method::SelfCertainty, TokenAgg::Min), 16.0));
    // with V = 1000: per token KL = -vm - ln(1000) -> (16 - 6.907755..., 18 - 6.907755...)
    r.vocab_size = Some(1000);
    let ln_v = 1000f64.ln();
    assert!(close(
        one(&r, Method::SelfCertainty, TokenAgg::Mean),
        17.0 - ln_v
    ));
    assert!(close(
        one(&r, Method::SelfCertainty, TokenAgg::Sum),
        34.0 - 2.0 * ln_v
    ));
    assert!(close(
        one(&r, Method::SelfCertainty, TokenAgg::Max),
        18.0 - ln_v
    ));
    assert!(close(
        one(&r, Method::SelfCertainty, TokenAgg::Last),
        18.0 - ln_v
    ));
}

#[test]
fn forced_step_aggs_for_tail_and_bottom10() {
    // Three steps with deepconf token-mean values 12, 8, 10 (topk means -12, -8, -10).
    let step = |mi, t: f32| certainty_step(mi, [t, t], [1.0, 1.0], [-17.0, -17.0]);
    let r = record(vec![step(1, -12.0), step(3, -8.0), step(5, -10.0)]);
    let score = |m| {
        // The spec asks for mean; the forced aggregation must win.
        trajectory_score(&r, &spec(m, TokenAgg::Mean, StepAgg::Mean))
            .unwrap()
            .unwrap()
    };
    assert!(close(score(Method::Deepconf), 10.0)); // (12 + 8 + 10) / 3
    assert!(close(score(Method::DeepconfTail), 10.0)); // last
    assert!(close(score(Method::DeepconfBottom10), 8.0)); // k = 1: the lowest
    assert!(close(score(Method::DeepconfTailRefimpl), -10.0)); // raw last
    assert!(close(score(Method::DeepconfBottom10Refimpl), -12.0)); // raw lowest
}

#[test]
fn peaked_scores_higher_than_flat_except_refimpl() {
    // Peaked distribution: top token ~1, the other top-20 very unlikely -> mean top-20
    // log-prob is low (-19); entropy low; vocabulary mean very low.
    // Flat distribution over V: every log-prob = -ln V ~ -11.93; entropy ln V.
    let ln_v = (151_936f64).ln() as f32;
    let peaked = certainty_step(1, [-19.0, -19.0], [0.05, 0.05], [-30.0, -30.0]);
    let flat = certainty_step(1, [-ln_v, -ln_v], [ln_v, ln_v], [-ln_v, -ln_v]);
    let score = |step: &StepLogprobs, m| {
        let mut r = record(vec![step.clone()]);
        r.vocab_size = Some(151_936);
        trajectory_score(&r, &spec(m, TokenAgg::Mean, StepAgg::Mean))
            .unwrap()
            .unwrap()
    };
    for m in [
        Method::Deepconf,
        Method::DeepconfTail,
        Method::DeepconfBottom10,
        Method::SelfCertainty,
        Method::NegEntropy,
    ] {
        assert!(score(&peaked, m) > score(&flat, m), "{m}");
    }
    // Kang et al.: KL(U || uniform) = 0 exactly for the flat distribution.
    assert!(score(&flat, Method::SelfCertainty).abs() < 1e-5);
    for m in [
        Method::SelfCertaintyRefimpl,
        Method::DeepconfTailRefimpl,
        Method::DeepconfBottom10Refimpl,
    ] {
        assert!(score(&peaked, m) < score(&flat, m), "{m}");
    }
}

#[test]
fn empty_steps_zero_for_logprob_methods_skipped_for_certainty() {
    let empty = StepLogprobs {
        message_index: 5,
        ..Default::default()
    };
    let mut steps = pa_record().steps;
    steps[0].policy_topk_mean = Some(vec![-10.0, -12.0]);
    steps[1].policy_topk_mean = Some(vec![-20.0]);
    steps.push(empty);
    let r = record(steps);
    // PA keeps the empty step as 0.0: values 0.25, 1, 0 -> mean 1.25 / 3
    let pa = step_scores(&r, &spec(Method::Pa, TokenAgg::Mean, StepAgg::Mean)).unwrap();
    assert_eq!(pa.last(), Some(&(5, 0.0)));
    let t = trajectory_score(&r, &spec(Method::Pa, TokenAgg::Mean, StepAgg::Mean)).unwrap();
    assert!(close(t.unwrap(), 1.25 / 3.0));
    // deepconf skips it: values 11, 20 -> mean 15.5
    let dc = step_scores(&r, &spec(Method::Deepconf, TokenAgg::Mean, StepAgg::Mean)).unwrap();
    assert_eq!(dc, vec![(1, 11.0), (3, 20.0)]);
    // the empty step does not need the arrays the method reads (none given above)
}

#[test]
fn no_steps_means_no_score() {
    let r = record(vec![]);
    assert_eq!(trajectory_score(&r, &ScoreSpec::default()).unwrap(), None);
    // only empty steps: PA scores 0.0, certainty methods have nothing left -> None
    let r = record(vec![StepLogprobs {
        message_index: 1,
        ..Default::default()
    }]);
    assert_eq!(
        trajectory_score(&r, &ScoreSpec::default()).unwrap(),
        Some(0.0)
    );
    let s = spec(Method::NegEntropy, TokenAgg::Mean, StepAgg::Mean);
    assert_eq!(trajectory_score(&r, &s).unwrap(), None);
}

#[test]
fn missing_field_error_names_record_step_and_field() {
    let mut r = pa_record();
    r.steps[1].reference = None;
    let e = trajectory_score(&r, &ScoreSpec::default()).unwrap_err();
    assert_eq!(
        e,
        ScoreError::MissingField {
            record: "r1".into(),
            step: 1,
            message_index: 3,
            method: Method::Pa,
            field: "reference",
        }
    );
    let msg = e.to_string();
    assert!(
        msg.contains("\"r1\"") && msg.contains("reference") && msg.contains("step 1"),
        "{msg}"
    );
    // policy_logprob does not need it
    let s = spec(Method::PolicyLogprob, TokenAgg::Mean, StepAgg::Mean);
    assert!(trajectory_score(&r, &s).is_ok());
    for (m, field) in [
        (Method::SelfCertainty, "policy_vocab_mean"),
        (Method::DeepconfTail, "policy_topk_mean"),
        (Method::NegEntropy, "policy_entropy"),
    ] {
        match trajectory_score(&r, &spec(m, TokenAgg::Mean, StepAgg::Mean)) {
            Err(ScoreError::MissingField {
                field: f, step: 0, ..
            }) => assert_eq!(f, field),
            other => panic!("{m}: {other:?}"),
        }
    }
}

#[test]
fn nan_score_becomes_none() {
    // -inf in both models: -inf - (-inf) = NaN
    let r = record(vec![StepLogprobs {
        message_index: 1,
        policy: vec![f32::NEG_INFINITY],
        reference: Some(vec![f32::NEG_INFINITY]),
        ..Default::default()
    }]);
    assert_eq!(trajectory_score(&r, &ScoreSpec::default()).unwrap(), None);
}

#[test]
fn table_matches_single_record_path_and_checks_index() {
    let records = synthetic_records(30, 4, 3, 2);
    let table = ScoreTable::precompute(&records).unwrap();
    for s in grid(Method::ALL) {
        let all = table.trajectory_scores(&s).unwrap();
        for (i, rec) in records.iter().enumerate().step_by(7) {
            assert_eq!(all[i], trajectory_score(rec, &s).unwrap(), "{}", s.label());
            assert_eq!(
                table.step_scores(i, &s).unwrap(),
                step_scores(rec, &s).unwrap()
            );
        }
    }
    assert!(matches!(
        table.step_scores(30, &ScoreSpec::default()),
        Err(ScoreError::RecordOutOfRange { index: 30, len: 30 })
    ));
}
