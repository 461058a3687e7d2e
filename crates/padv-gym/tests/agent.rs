//! Agent side of the gym: checkpoints load in the engine with the same numbers, sampled
//! trajectories re-tokenise to exactly the sampled ids, sampling and training are
//! deterministic for a seed.

use std::path::Path;

use candle_core::{Device, Tensor};
use padv_core::LogprobBackend;
use padv_core::StatsRequest;
use padv_engine::logprobs::{EngineOptions, LocalEngine};
use padv_engine::tokenize::TextTokenizer;
use padv_gym::agent::{Agent, AgentConfig};
use padv_gym::lake::{Lake, LakeConfig};
use padv_gym::sample::{rollout_batch, Job, SampleConfig, Sampler};
use padv_gym::train::batch::{pad_batch, token_logprobs};
use padv_gym::train::{train_pair, TrainConfig};

fn tokenizer(dir: &Path) -> TextTokenizer {
    padv_gym::tokenizer::write_tokenizer_files(dir).unwrap();
    TextTokenizer::from_dir(dir).unwrap()
}

/// Random-enough weights (the init's 0.02 scale makes every distribution nearly uniform,
/// which would hide indexing mistakes).
fn spread(agent: &Agent) {
    for (i, v) in agent.varmap.all_vars().iter().enumerate() {
        let t = v.as_tensor();
        let r = Tensor::randn(0f32, 0.3, t.shape(), &Device::Cpu).unwrap();
        let r = if t.rank() == 1 { (r + 1.0).unwrap() } else { r };
        let _ = i;
        v.set(&r).unwrap();
    }
}

#[test]
fn saved_checkpoint_scores_like_the_training_model() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(&dir.path().join("tok"));
    let agent = Agent::init(&AgentConfig::tiny(tok.vocab_size()), &tok, 3).unwrap();
    spread(&agent);
    let ckpt = dir.path().join("ckpt");
    agent.save(&ckpt, &tok).unwrap();

    let ids: Vec<u32> = tok.encode("at 1,2 | up . down H").unwrap();
    assert!(ids.len() > 5);
    let targets: Vec<usize> = (1..ids.len()).collect();
    let mut engine = LocalEngine::load(&ckpt, EngineOptions::default()).unwrap();
    let got = engine
        .score(&ids, &targets, StatsRequest::default())
        .unwrap()
        .logprob;
    let model = agent.trainable_model().unwrap();
    let (batch, _) = pad_batch(&[ids.as_slice()], 0).unwrap();
    let want = token_logprobs(&model, &batch)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    assert_eq!(got.len(), want[0].len());
    for (g, w) in got.iter().zip(&want[0]) {
        assert!((g - w).abs() < 1e-4, "{g} vs {w}");
    }
    // And it loads back for training with identical parameters.
    let back = Agent::load(&ckpt, &tok).unwrap();
    assert_eq!(back.parameters().unwrap(), agent.parameters().unwrap());
}

#[test]
fn rollouts_are_exact_and_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    let agent = Agent::init(&AgentConfig::tiny(tok.vocab_size()), &tok, 5).unwrap();
    spread(&agent);
    let sampler = Sampler::new(&tok, padv_gym::tokenizer::END_OF_TURN).unwrap();
    let cfg = LakeConfig::default();
    let lakes: Vec<Lake> = (0..3).map(|s| Lake::generate(&cfg, s).unwrap()).collect();
    let jobs: Vec<Job> = (0..6)
        .map(|i| Job {
            lake: &lakes[i % 3],
            id: format!("t{i}"),
            task_id: format!("m{}", i % 3),
            seed: 100 + i as u64,
        })
        .collect();
    let model = agent.inference_model().unwrap();
    let sc = SampleConfig::default();
    // rollout_batch itself verifies that the scorer's tokenisation reproduces the fed ids
    // and that the action spans are exactly the sampled positions.
    let a = rollout_batch(&model, &sampler, &jobs, &sc).unwrap();
    let b = rollout_batch(&model, &sampler, &jobs, &sc).unwrap();
    assert_eq!(a.len(), 6);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.tokens.ids, y.tokens.ids);
        assert_eq!(x.trajectory, y.trajectory);
        assert!(!x.episode.turns.is_empty());
        assert_eq!(x.trajectory.messages.len(), 1 + 2 * x.episode.turns.len());
    }
    // The sampler's log-probs are the engine's teacher-forced log-probs.
    let ckpt = dir.path().join("ckpt");
    agent.save(&ckpt, &tok).unwrap();
    let mut engine = LocalEngine::load(&ckpt, EngineOptions::default()).unwrap();
    let r = &a[0];
    let targets: Vec<usize> = (0..r.tokens.ids.len()).filter(|&p| r.sampled[p]).collect();
    let got = engine
        .score(&r.tokens.ids, &targets[..1], StatsRequest::default())
        .unwrap()
        .logprob;
    assert!((got[0] - r.logprob[targets[0]]).abs() < 1e-4);
}

#[test]
fn training_is_deterministic() {
    let mut cfg = TrainConfig::new(11, LakeConfig::default(), 0.1);
    cfg.sft.episodes = 8;
    cfg.sft.steps = 2;
    cfg.sft.batch = 4;
    cfg.sft.micro_batch = 2;
    cfg.rl.iterations = 2;
    cfg.rl.maps_per_iteration = 2;
    cfg.rl.group = 2;
    cfg.save_at = vec![1];
    let run = |dir: &Path| {
        train_pair(&cfg, dir, serde_json::Value::Null).unwrap();
        std::fs::read(dir.join("policy/model.safetensors")).unwrap()
    };
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let wa = run(a.path());
    let wb = run(b.path());
    assert_eq!(wa, wb, "same seed, different policy weights");
    assert!(a.path().join("policy-iter-0001/model.safetensors").exists());
    let ra = std::fs::read(a.path().join("reference/model.safetensors")).unwrap();
    assert_ne!(ra, wa, "RL did not change the policy");
    let log = std::fs::read_to_string(a.path().join("train_log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 2 + 2);
}
