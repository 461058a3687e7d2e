//! The oracle on the committed pair: its identity `β·log π_o/π_ref = A_h` holds on every
//! action it takes (to 1e-9, in f64), the log-probs it samples with are the ones the scoring
//! pipeline computes through [`OracleBackend`], and the soft truth of a player's steps is
//! consistent with the projection.

use std::time::Instant;

use padv_core::render::RendererKind;
use padv_engine::logprobs::{EngineOptions, LocalEngine};
use padv_engine::pipeline::{self, PipelineOptions};
use padv_engine::tokenize::{TextTokenizer, TokenizeOptions};
use padv_gym::agent::Agent;
use padv_gym::demo::{default_pair_dir, read_manifest};
use padv_gym::lake::Lake;
use padv_gym::oracle::{oracle_rollouts, project, rollout_truth, MoveTrie, OracleBackend};
use padv_gym::protocol::ActionStyle;
use padv_gym::sample::{rollout_batch, Job, SampleConfig, Sampler};
use padv_gym::train::heldout_map_seed;

#[test]
fn oracle_identity_and_scoring() {
    let (pair, cfg, tok, reference, policy) = open_terse_pair();
    let style = cfg.style;
    let lakes: Vec<Lake> = (0..4)
        .map(|i| Lake::generate(&cfg.lake, heldout_map_seed(91, i)).unwrap())
        .collect();
    let trie = MoveTrie::new();
    let t0 = Instant::now();
    let (maps, cost) = project(&reference, &lakes, style, cfg.beta, &trie).unwrap();
    eprintln!(
        "projection: {cost:?} in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    let sampler = Sampler::new(&tok, padv_gym::tokenizer::END_OF_TURN, style).unwrap();
    let jobs: Vec<Job> = (0..lakes.len() * 3)
        .map(|i| Job {
            lake: &lakes[i / 3],
            id: format!("oracle-{i}"),
            task_id: format!("map-{}", i / 3),
            seed: 1000 + i as u64,
        })
        .collect();
    let job_maps: Vec<_> = (0..jobs.len()).map(|i| &maps[i / 3]).collect();
    let sc = SampleConfig::for_style(style);
    let t0 = Instant::now();
    let (rollouts, steps) =
        oracle_rollouts(&reference, &sampler, &jobs, &job_maps, cfg.beta, &trie, &sc).unwrap();
    eprintln!("oracle rollouts in {:.2} s", t0.elapsed().as_secs_f64());
    // The identity, exactly, on every action with a decision point.
    let mut n = 0;
    for (r, st) in rollouts.iter().zip(&steps) {
        assert_eq!(st.len(), r.episode.turns.len(), "{}", r.trajectory.id);
        for s in st {
            assert!(
                (s.beta_log_ratio - s.advantage).abs() <= 1e-9,
                "{}: {} vs {}",
                r.trajectory.id,
                s.beta_log_ratio,
                s.advantage
            );
            n += 1;
        }
    }
    assert!(n > 10);

    // The pipeline, with the oracle as the policy backend, gives the sampler's log-probs.
    let records = oracle_records(
        &pair, &tok, &reference, cfg.beta, style, &lakes, &maps, &rollouts,
    );
    for ((rec, r), st) in records.iter().zip(&rollouts).zip(&steps) {
        let sampled: Vec<f32> = (0..r.tokens.ids.len())
            .filter(|&p| r.sampled[p])
            .map(|p| r.logprob[p])
            .collect();
        let scored: Vec<f32> = rec.steps.iter().flat_map(|s| s.policy.clone()).collect();
        assert_eq!(sampled.len(), scored.len());
        for (a, b) in sampled.iter().zip(&scored) {
            assert!((a - b).abs() < 1e-4, "{}: {a} vs {b}", rec.id);
        }
        // Record-level PA is the soft advantage (f32 records, so 1e-4).
        for (step, s) in rec.steps.iter().zip(st) {
            let pa = step_pa(step, cfg.beta);
            assert!((pa - s.advantage).abs() < 1e-4, "{pa} vs {}", s.advantage);
        }
    }

    // Soft truth of the policy's steps: A_h = Q − V_h, with V_h ≥ min Q and ≤ max Q.
    let prs = rollout_batch(&policy, &sampler, &jobs, &sc).unwrap();
    let truth = rollout_truth(&reference, &prs, &job_maps, &sampler, &trie).unwrap();
    for st in &truth {
        for s in st {
            assert!(s.exact);
            let (lo, hi) =
                s.q.iter()
                    .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
            assert!(s.v_history >= lo - 1e-12 && s.v_history <= hi + 1e-12);
            assert!((s.reference.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        }
    }
    // Where the policy's history is the canonical one (the first step: every history starts
    // with the task), the projection and the history agree.
    for st in &truth {
        let s = &st[0];
        assert!(
            (s.v_history - s.v_state).abs() < 1e-5,
            "{} vs {}",
            s.v_history,
            s.v_state
        );
    }
    // The oracle's own steps: same soft truth whether measured while sampling or after.
    let otruth = rollout_truth(&reference, &rollouts, &job_maps, &sampler, &trie).unwrap();
    for (st, os) in steps.iter().zip(&otruth) {
        for (a, b) in st.iter().zip(os) {
            assert!((a.advantage - b.advantage).abs() < 1e-5);
            assert!((a.v_history - b.v_history).abs() < 1e-5);
        }
    }
    let _ = ActionStyle::Terse;
}

/// Verbose actions: a remark that runs to the action's token limit has no decision point.
/// Its remark determines the action, so its soft truth given that history is `A_h = 0`
/// (reference = the action with probability 1), and the oracle, which tilts only at decision
/// points, carries exactly that in its records: record-level PA equals `A_h` on every step,
/// cut remarks included (seeds chosen so that some are cut; the test says how many).
#[test]
fn verbose_oracle_records_equal_the_soft_truth_on_every_step() {
    let pair = padv_gym::demo::verbose_pair_dir();
    let (cfg, _) = read_manifest(&pair).unwrap();
    assert_eq!(cfg.style, ActionStyle::Verbose);
    let tok = TextTokenizer::from_dir(&pair.join("reference")).unwrap();
    let reference = Agent::load(&pair.join("reference"), &tok)
        .unwrap()
        .inference_model()
        .unwrap();
    let lakes: Vec<Lake> = (0..2)
        .map(|i| Lake::generate(&cfg.lake, heldout_map_seed(7, i)).unwrap())
        .collect();
    let trie = MoveTrie::new();
    let (maps, _) = project(&reference, &lakes, cfg.style, cfg.beta, &trie).unwrap();
    let sampler = Sampler::new(&tok, padv_gym::tokenizer::END_OF_TURN, cfg.style).unwrap();
    let per_map = 6;
    let jobs: Vec<Job> = (0..lakes.len() * per_map)
        .map(|i| Job {
            lake: &lakes[i / per_map],
            id: format!("oracle-{i}"),
            task_id: format!("map-{}", i / per_map),
            seed: 500 + i as u64,
        })
        .collect();
    let job_maps: Vec<_> = (0..jobs.len()).map(|i| &maps[i / per_map]).collect();
    let sc = SampleConfig::for_style(cfg.style);
    let (rollouts, _) =
        oracle_rollouts(&reference, &sampler, &jobs, &job_maps, cfg.beta, &trie, &sc).unwrap();
    let truth = rollout_truth(&reference, &rollouts, &job_maps, &sampler, &trie).unwrap();

    let records = oracle_records(
        &pair, &tok, &reference, cfg.beta, cfg.style, &lakes, &maps, &rollouts,
    );
    let (mut cut, mut steps) = (0, 0);
    for (rec, st) in records.iter().zip(&truth) {
        assert_eq!(rec.steps.len(), st.len(), "{}", rec.id);
        for (step, s) in rec.steps.iter().zip(st) {
            let pa = step_pa(step, cfg.beta);
            assert!(
                (pa - s.advantage).abs() < 1e-4,
                "{}: PA {pa} vs A_h {} (decision point: {})",
                rec.id,
                s.advantage,
                s.exact
            );
            if !s.exact {
                cut += 1;
                assert_eq!(s.advantage, 0.0);
                assert_eq!(s.reference[s.action.index()], 1.0);
            }
            steps += 1;
        }
    }
    eprintln!("{steps} verbose oracle steps, {cut} with a remark cut at the token limit");
    assert!(
        cut > 0,
        "no remark was cut: the test does not exercise the case"
    );
}

/// The committed terse pair: its directory, training config, tokenizer, reference and
/// policy.
fn open_terse_pair() -> (
    std::path::PathBuf,
    padv_gym::train::TrainConfig,
    TextTokenizer,
    padv_engine::decoder::DecoderModel,
    padv_engine::decoder::DecoderModel,
) {
    let pair = default_pair_dir();
    let (cfg, _) = read_manifest(&pair).unwrap();
    let tok = TextTokenizer::from_dir(&pair.join("reference")).unwrap();
    let load = |name: &str| {
        Agent::load(&pair.join(name), &tok)
            .unwrap()
            .inference_model()
            .unwrap()
    };
    let (reference, policy) = (load("reference"), load("policy"));
    (pair, cfg, tok, reference, policy)
}

/// The oracle player's rollouts scored by the pipeline, with the oracle as the policy backend
/// and the pair's reference engine.
#[allow(clippy::too_many_arguments)]
fn oracle_records(
    pair: &std::path::Path,
    tok: &TextTokenizer,
    reference: &padv_engine::decoder::DecoderModel,
    beta: f64,
    style: ActionStyle,
    lakes: &[Lake],
    maps: &[padv_gym::oracle::MapTruth],
    rollouts: &[padv_gym::sample::Rollout],
) -> Vec<padv_core::LogprobRecord> {
    let encoder = tok
        .encoder(&TokenizeOptions {
            renderer: RendererKind::ChatTemplate,
            ..TokenizeOptions::default()
        })
        .unwrap();
    let ref_engine = LocalEngine::load(&pair.join("reference"), EngineOptions::default()).unwrap();
    let oracle = OracleBackend::new(
        reference,
        &padv_core::LogprobBackend::fingerprint(&ref_engine),
        style,
        beta,
        lakes,
        &maps.iter().collect::<Vec<_>>(),
    )
    .unwrap();
    let trajs: Vec<_> = rollouts.iter().map(|r| r.trajectory.clone()).collect();
    pipeline::score_trajectories(
        &trajs,
        &encoder,
        &oracle,
        &ref_engine,
        &PipelineOptions {
            strict: true,
            ..PipelineOptions::default()
        },
        &mut |_| {},
    )
    .unwrap()
    .records
}

/// β·Σ (log π − log π_ref) over a record step's tokens.
fn step_pa(step: &padv_core::StepLogprobs, beta: f64) -> f64 {
    step.policy
        .iter()
        .zip(step.reference.as_ref().unwrap())
        .map(|(p, q)| (p - q) as f64)
        .sum::<f64>()
        * beta
}

/// The demo scores the reference's and the oracle's sides from the soft-truth pass's kept
/// logits and probes instead of running the reference again. Those records must equal what
/// the pair's engine and the oracle backend compute on their own (a separate forward pass in
/// another batch layout, so to float rounding), the soft truth must not change for being
/// kept, and a sequence the pass did not see is an error, not a number.
#[test]
fn prefilled_scoring_equals_the_engines() {
    let (pair, cfg, tok, reference, policy) = open_terse_pair();
    let lakes: Vec<Lake> = (0..3)
        .map(|i| Lake::generate(&cfg.lake, heldout_map_seed(57, i)).unwrap())
        .collect();
    let trie = MoveTrie::new();
    let (maps, _) = project(&reference, &lakes, cfg.style, cfg.beta, &trie).unwrap();
    let sampler = Sampler::new(&tok, padv_gym::tokenizer::END_OF_TURN, cfg.style).unwrap();
    let jobs: Vec<Job> = (0..lakes.len() * 2)
        .map(|i| Job {
            lake: &lakes[i / 2],
            id: format!("r-{i}"),
            task_id: format!("map-{}", i / 2),
            seed: 300 + i as u64,
        })
        .collect();
    let job_maps: Vec<_> = (0..jobs.len()).map(|i| &maps[i / 2]).collect();
    let sc = SampleConfig::for_style(cfg.style);
    let mut rollouts = rollout_batch(&policy, &sampler, &jobs, &sc).unwrap();
    let (orc, _) =
        oracle_rollouts(&reference, &sampler, &jobs, &job_maps, cfg.beta, &trie, &sc).unwrap();
    let n_policy = rollouts.len();
    rollouts.extend(orc);
    let all_maps: Vec<_> = job_maps.iter().chain(&job_maps).copied().collect();

    let plain = rollout_truth(&reference, &rollouts, &all_maps, &sampler, &trie).unwrap();
    let (kept, prefilled) = padv_gym::oracle::rollout_truth_prefilled(
        &reference, &rollouts, &all_maps, &sampler, &trie,
    )
    .unwrap();
    assert_eq!(plain, kept);
    // Identical rollouts (two quick falls into one hole) share an entry.
    let distinct: std::collections::HashSet<&[u32]> =
        rollouts.iter().map(|r| r.tokens.ids.as_slice()).collect();
    assert_eq!(prefilled.len(), distinct.len());

    let encoder = tok
        .encoder(&TokenizeOptions {
            renderer: RendererKind::ChatTemplate,
            ..TokenizeOptions::default()
        })
        .unwrap();
    let score = |pol: &dyn padv_core::LogprobBackend,
                 refr: &dyn padv_core::LogprobBackend,
                 rs: &[padv_gym::sample::Rollout]| {
        let trajs: Vec<_> = rs.iter().map(|r| r.trajectory.clone()).collect();
        let opts = PipelineOptions {
            strict: true,
            ..PipelineOptions::default()
        };
        pipeline::score_trajectories(&trajs, &encoder, pol, refr, &opts, &mut |_| {})
            .unwrap()
            .records
    };
    let pol_engine = LocalEngine::load(&pair.join("policy"), EngineOptions::default()).unwrap();
    let ref_engine = LocalEngine::load(&pair.join("reference"), EngineOptions::default()).unwrap();
    let fp = padv_core::LogprobBackend::fingerprint(&ref_engine);
    let ref_prefilled = padv_gym::oracle::PrefilledBackend::new(&prefilled, fp.clone());
    let map_refs: Vec<_> = maps.iter().collect();
    let oracle =
        || OracleBackend::new(&reference, &fp, cfg.style, cfg.beta, &lakes, &map_refs).unwrap();
    let (pol_part, orc_part) = rollouts.split_at(n_policy);
    let checks = [
        (
            score(&pol_engine, &ref_engine, pol_part),
            score(&pol_engine, &ref_prefilled, pol_part),
        ),
        (
            score(&oracle(), &ref_engine, orc_part),
            score(
                &oracle().with_prefilled(&prefilled),
                &ref_prefilled,
                orc_part,
            ),
        ),
    ];
    let mut compared = 0;
    for (engine, reused) in &checks {
        assert_eq!(engine.len(), reused.len());
        for (a, b) in engine.iter().zip(reused) {
            assert_eq!(a.id, b.id);
            assert_eq!(a.steps.len(), b.steps.len());
            for (sa, sb) in a.steps.iter().zip(&b.steps) {
                let fields = [
                    (Some(&sa.policy), Some(&sb.policy)),
                    (sa.reference.as_ref(), sb.reference.as_ref()),
                    (sa.policy_entropy.as_ref(), sb.policy_entropy.as_ref()),
                    (sa.policy_topk_mean.as_ref(), sb.policy_topk_mean.as_ref()),
                    (sa.policy_vocab_mean.as_ref(), sb.policy_vocab_mean.as_ref()),
                ];
                for (x, y) in fields {
                    let (x, y) = (x.expect("engine field"), y.expect("reused field"));
                    assert_eq!(x.len(), y.len());
                    for (u, v) in x.iter().zip(y) {
                        assert!((u - v).abs() < 1e-4, "{}: {u} vs {v}", a.id);
                        compared += 1;
                    }
                }
            }
        }
    }
    assert!(compared > 500, "only {compared} numbers compared");

    // A sequence the pass did not prefill.
    let mut ids = rollouts[0].tokens.ids.clone();
    ids.push(ids[ids.len() - 1]);
    let err = padv_core::LogprobBackend::score(
        &ref_prefilled,
        &ids,
        &[1],
        padv_core::StatsRequest::default(),
    );
    assert!(err.is_err());
}
