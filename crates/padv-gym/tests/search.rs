//! Step-level guided search on the committed pair: the numbers each chooser sees equal what
//! the scoring pipeline computes for the executed trajectory, every chooser picks its argmax,
//! and a run is deterministic for its seeds.

use padv_engine::tokenize::TextTokenizer;
use padv_gym::agent::Agent;
use padv_gym::demo::{default_pair_dir, read_manifest, score_trajectories};
use padv_gym::lake::Lake;
use padv_gym::sample::{Job, SampleConfig, Sampler};
use padv_gym::search::{search_batch, Chooser, SearchConfig, SearchRollout};
use padv_gym::solver::{solve, Values};
use padv_gym::train::heldout_map_seed;

struct Setup {
    tok: TextTokenizer,
    lakes: Vec<Lake>,
    values: Vec<Values>,
    beta: f64,
}

fn setup(maps: usize) -> Setup {
    let pair = default_pair_dir();
    let (cfg, _) = read_manifest(&pair).unwrap();
    let tok = TextTokenizer::from_dir(&pair.join("policy")).unwrap();
    let lakes: Vec<Lake> = (0..maps)
        .map(|i| Lake::generate(&cfg.lake, heldout_map_seed(77, i)).unwrap())
        .collect();
    let values = lakes.iter().map(solve).collect();
    Setup {
        tok,
        lakes,
        values,
        beta: cfg.beta,
    }
}

fn play(s: &Setup, chooser: Chooser, k: usize, seed: u64) -> Vec<SearchRollout> {
    let pair = default_pair_dir();
    let sampler = Sampler::new(
        &s.tok,
        padv_gym::tokenizer::END_OF_TURN,
        padv_gym::protocol::ActionStyle::Terse,
    )
    .unwrap();
    let policy = Agent::load(&pair.join("policy"), &s.tok)
        .unwrap()
        .inference_model()
        .unwrap();
    let reference = Agent::load(&pair.join("reference"), &s.tok)
        .unwrap()
        .inference_model()
        .unwrap();
    let jobs: Vec<Job> = s
        .lakes
        .iter()
        .enumerate()
        .map(|(i, lake)| Job {
            lake,
            id: format!("{}-{i}", chooser.name()),
            task_id: format!("map-{i}"),
            seed: seed + i as u64,
        })
        .collect();
    let values: Vec<&Values> = s.values.iter().collect();
    let cfg = SearchConfig {
        k,
        beta: s.beta,
        sample: SampleConfig::for_style(padv_gym::protocol::ActionStyle::Terse),
    };
    search_batch(&policy, &reference, &sampler, &jobs, &values, chooser, &cfg).unwrap()
}

#[test]
fn chosen_actions_carry_the_log_probs_the_scoring_pipeline_computes() {
    let s = setup(4);
    let eps = play(&s, Chooser::Pa, 4, 5);
    let pair = default_pair_dir();
    let trajs: Vec<_> = eps.iter().map(|e| e.rollout.trajectory.clone()).collect();
    let records =
        score_trajectories(&pair.join("policy"), &pair.join("reference"), &trajs).unwrap();
    let mut compared = 0;
    let mut shorter_than_longest = 0;
    for (e, r) in eps.iter().zip(&records) {
        assert_eq!(e.decisions.len(), r.steps.len(), "{}", r.id);
        for (d, step) in e.decisions.iter().zip(&r.steps) {
            let pol: f64 = step.policy.iter().map(|&x| x as f64).sum();
            let reference: f64 = step
                .reference
                .as_ref()
                .unwrap()
                .iter()
                .map(|&x| x as f64)
                .sum();
            assert_eq!(step.policy.len(), d.tokens[d.chosen], "{}", r.id);
            assert!((pol - d.logprob[d.chosen]).abs() < 1e-4, "{pol} vs {d:?}");
            assert!(
                (reference - d.ref_logprob[d.chosen]).abs() < 1e-4,
                "{reference} vs {d:?}"
            );
            if d.tokens[d.chosen] < *d.tokens.iter().max().unwrap() {
                shorter_than_longest += 1;
            }
            compared += 1;
        }
    }
    assert!(compared >= 8, "only {compared} steps compared");
    // The padding of shorter candidates in the reference's batched pass was exercised.
    assert!(shorter_than_longest > 0, "no padded candidate was executed");
}

#[test]
fn each_chooser_takes_its_argmax_and_runs_are_deterministic() {
    let s = setup(3);
    for chooser in [Chooser::Pa, Chooser::Logprob, Chooser::Oracle] {
        let eps = play(&s, chooser, 4, 11);
        let mut decisions = 0;
        for d in eps.iter().flat_map(|e| &e.decisions) {
            assert_eq!(d.tokens.len(), 4);
            let score = |i: usize| match chooser {
                Chooser::Pa => d.pa(i, s.beta),
                Chooser::Logprob => d.logprob[i],
                _ => d.advantage[i],
            };
            for i in 0..4 {
                assert!(score(d.chosen) >= score(i), "{chooser:?} {d:?}");
            }
            if chooser == Chooser::Oracle {
                assert!(d.chose_best());
            }
            decisions += 1;
        }
        assert!(decisions > 0);
        let again = play(&s, chooser, 4, 11);
        let ids = |v: &[SearchRollout]| {
            v.iter()
                .map(|e| e.rollout.tokens.ids.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&eps), ids(&again), "{chooser:?} is not deterministic");
    }
    // K = 1 samples exactly one candidate per step.
    let plain = play(&s, Chooser::Sample, 1, 11);
    assert!(plain
        .iter()
        .flat_map(|e| &e.decisions)
        .all(|d| d.tokens.len() == 1 && d.chosen == 0));
}

/// `padv gym search --style verbose` samples actions as long as the demo does: a verbose
/// action (remark line, then the move) is not cut at the terse limit of 16 tokens, which
/// made every guided episode a string of invalid actions.
#[test]
fn verbose_search_samples_whole_verbose_actions() {
    let out = tempfile::tempdir().unwrap();
    let mut opts = padv_gym::search::eval::SearchOptions::new(true, out.path().to_path_buf(), 5);
    opts.pair = padv_gym::demo::verbose_pair_dir();
    opts.maps = 1;
    opts.k = 2;
    opts.episodes = 1;
    opts.bootstrap = 10;
    padv_gym::search::eval::run(&opts).unwrap();
    let text = std::fs::read_to_string(out.path().join("search_sample.jsonl")).unwrap();
    let mut longest = 0;
    let mut moves = 0;
    for line in text.lines() {
        let traj: serde_json::Value = serde_json::from_str(line).unwrap();
        for m in traj["messages"].as_array().unwrap() {
            if m["role"] == "assistant" {
                let a = m["content"].as_str().unwrap();
                longest = longest.max(a.len());
                moves += usize::from(a.contains("\ngo "));
            }
        }
    }
    assert!(longest > 16, "longest verbose action {longest} characters");
    assert!(moves > 0, "no verbose action reached its move line");
}
