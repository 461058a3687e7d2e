//! `padv gym search`: step-level guided search against plain sampling and best-of-N over
//! whole trajectories, on held-out maps, with bootstrap intervals over maps.
//!
//! Every method plays the same maps with the same per-episode seeds (common random numbers:
//! episode `e` of map `i` draws its slips and samples from one seed whatever the chooser), so
//! differences between methods are paired by map and their intervals are tight.
//!
//! * **plain sampling**: one action per step (K = 1), N = K episodes per map.
//! * **step-level, PA / policy log-prob**: K candidates per step, the one with the highest
//!   score executed; E episodes per map.
//! * **best-of-N trajectories** (N = K): of the plain episodes of a map, the one with the
//!   highest trajectory score (PA or log-prob, summed or averaged over steps); ties count as
//!   a uniform pick among the tied.
//! * not available to an agent: the step-level A* oracle (the ceiling with these K
//!   candidates) and pass@N (some plain episode succeeded).
//!
//! A step-level search samples about K actions per executed step; best-of-N samples N whole
//! episodes per answer, so both spend ~K × steps sampled actions per answer, and the table
//! shows what each actually spent. Best-of-N also *executes* all N episodes in the
//! environment; step-level search executes one.

use std::path::PathBuf;
use std::time::Instant;

use padv_core::eval::{MeanBootstrap, SplitMix64};
use padv_core::Trajectory;
use serde::Serialize;

use super::{search_batch, Chooser, SearchConfig, SearchRollout};
use crate::agent::{AgentError, Result};
use crate::demo::{heldout_lakes, open_pair};
use crate::sample::{Job, SampleConfig, Sampler};
use crate::solver::{solve, Values};

/// Options of the guided-search experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOptions {
    /// Pair directory (`reference/`, `policy/`, `manifest.json`).
    pub pair: PathBuf,
    /// Policy checkpoint instead of `pair/policy`.
    pub policy: Option<PathBuf>,
    /// Output directory.
    pub out: PathBuf,
    /// Held-out maps.
    pub maps: usize,
    /// Candidates per step, and N of best-of-N.
    pub k: usize,
    /// Guided episodes per map and chooser.
    pub episodes: usize,
    /// Seed of the maps, sampling and slips.
    pub seed: u64,
    /// Bootstrap resamples of the intervals.
    pub bootstrap: usize,
}

impl SearchOptions {
    /// The full experiment (100 maps, K = 8, 4 guided episodes per map) or the quick one
    /// (12 maps, K = 4, 2 episodes).
    pub fn new(quick: bool, out: PathBuf, seed: u64) -> Self {
        SearchOptions {
            pair: crate::demo::default_pair_dir(),
            policy: None,
            out,
            maps: if quick { 12 } else { 100 },
            k: if quick { 4 } else { 8 },
            episodes: if quick { 2 } else { 4 },
            seed,
            bootstrap: if quick { 200 } else { 2000 },
        }
    }
}

/// A success rate with its bootstrap interval over maps, and the paired difference from
/// plain sampling.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodResult {
    /// Machine name (`step_pa`, `bon_logprob_mean`, …).
    pub method: String,
    /// What a person reads.
    pub label: String,
    /// Whether a real agent could use it (the oracle and pass@N cannot).
    pub available: bool,
    /// Success of the answer (the executed episode, or the picked one), mean over maps.
    pub success: f64,
    /// 95 % bootstrap interval over maps.
    pub ci: [f64; 2],
    /// Success minus plain sampling's, paired by map.
    pub vs_sample: f64,
    /// 95 % bootstrap interval of `vs_sample`.
    pub vs_sample_ci: [f64; 2],
    /// Actions sampled per answer (all candidates, or all N episodes).
    pub sampled_actions: f64,
    /// Tokens sampled per answer.
    pub sampled_tokens: f64,
    /// Step-level only: among decisions whose candidates differ in A*, the share where the
    /// chosen one has the best A*; `None` when no decision was contested.
    pub best_pick_rate: Option<f64>,
    /// Step-level only: what a uniformly random pick among the same candidates would score
    /// on `best_pick_rate` (mean share of best-A* candidates over contested decisions).
    pub best_pick_chance: Option<f64>,
    /// Step-level only: contested decisions.
    pub contested: usize,
    /// Step-level only: mean over all decisions of max A* − A* of the executed candidate
    /// (success probability given away by the choice, given these candidates).
    pub regret: Option<f64>,
    /// Step-level only: the same for a uniformly random pick (max A* − mean A*).
    pub regret_chance: Option<f64>,
    /// Episodes behind the figure (for best-of-N: the maps' plain episodes).
    pub episodes: usize,
}

/// Wall-clock seconds per phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchTimings {
    /// Per chooser: (name, seconds).
    pub play_s: Vec<(String, f64)>,
    /// Everything.
    pub total_s: f64,
}

/// What `padv gym search` reports (`search_summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchSummary {
    /// The policy checkpoint.
    pub policy: String,
    /// Held-out maps.
    pub maps: usize,
    /// Candidates per step and N of best-of-N.
    pub k: usize,
    /// Guided episodes per map and chooser.
    pub episodes: usize,
    /// β of the pair (scales PA; the choices do not depend on it).
    pub beta: f64,
    /// Seed.
    pub seed: u64,
    /// Mean over maps of V*(s0): the success of the optimal policy.
    pub v_star: f64,
    /// One row per method, plain sampling first.
    pub methods: Vec<MethodResult>,
    /// Timings.
    pub timings: SearchTimings,
}

/// Seed of episode `e` on map `i`, shared by every chooser.
fn episode_seed(seed: u64, i: usize, e: usize) -> u64 {
    let mut r = SplitMix64::new(seed ^ 0x5EA2_C4ED ^ ((i as u64) << 20) ^ e as u64);
    r.next_u64()
}

/// Runs the experiment; returns the summary (also written to `out/search_summary.json`,
/// with the executed episodes of each chooser as chat JSONL).
pub fn run(opts: &SearchOptions) -> Result<SearchSummary> {
    if opts.maps == 0 || opts.k == 0 || opts.episodes == 0 {
        return Err(AgentError::Invalid(format!(
            "guided search needs maps, k and episodes ≥ 1 (got {}, {}, {})",
            opts.maps, opts.k, opts.episodes
        )));
    }
    let started = Instant::now();
    let pair = open_pair(&opts.pair, opts.policy.as_deref(), &opts.out)?;
    let (train_cfg, policy_dir) = (&pair.train, &pair.policy_dir);
    let sampler = Sampler::new(&pair.tok, crate::tokenizer::END_OF_TURN, pair.train.style)?;
    let policy = pair.policy.inference_model()?;
    let reference = pair.reference.inference_model()?;
    let lakes = heldout_lakes(train_cfg, opts.seed, opts.maps)?;
    let values: Vec<Values> = lakes.iter().map(solve).collect();
    let beta = train_cfg.beta;

    let play = |chooser: Chooser, k: usize, per_map: usize| -> Result<Vec<SearchRollout>> {
        let jobs: Vec<Job> = lakes
            .iter()
            .enumerate()
            .flat_map(|(i, lake)| (0..per_map).map(move |e| (i, e, lake)))
            .map(|(i, e, lake)| Job {
                lake,
                id: format!("{}-{i:03}-{e}", chooser.name()),
                task_id: format!("map-{i:03}"),
                seed: episode_seed(opts.seed, i, e),
            })
            .collect();
        let vals: Vec<&Values> = (0..opts.maps)
            .flat_map(|i| std::iter::repeat_n(&values[i], per_map))
            .collect();
        let cfg = SearchConfig {
            k,
            beta,
            sample: SampleConfig::for_style(sampler.style()),
        };
        search_batch(&policy, &reference, &sampler, &jobs, &vals, chooser, &cfg)
    };

    let mut play_s = Vec::new();
    let mut timed = |name: &str, chooser, k, per_map| -> Result<Vec<SearchRollout>> {
        let t = Instant::now();
        let out = play(chooser, k, per_map)?;
        play_s.push((name.to_string(), t.elapsed().as_secs_f64()));
        Ok(out)
    };
    let plain = timed("sample", Chooser::Sample, 1, opts.k)?;
    let step_pa = timed("pa", Chooser::Pa, opts.k, opts.episodes)?;
    let step_lp = timed("logprob", Chooser::Logprob, opts.k, opts.episodes)?;
    let step_oracle = timed("oracle", Chooser::Oracle, opts.k, opts.episodes)?;

    for (name, eps) in [
        ("sample", &plain),
        ("pa", &step_pa),
        ("logprob", &step_lp),
        ("oracle", &step_oracle),
    ] {
        let trajs: Vec<Trajectory> = eps.iter().map(|e| e.rollout.trajectory.clone()).collect();
        crate::episode::write_chat_jsonl(&opts.out.join(format!("search_{name}.jsonl")), &trajs)?;
    }

    let m = opts.maps;
    let boot = Bootstrap::new(m, opts.bootstrap, opts.seed);
    let plain_per_map = per_map_success(&plain, m, opts.k);
    let mut methods = Vec::new();
    let k = opts.k;
    let mut add = |method: &str,
                   label: String,
                   available: bool,
                   per_map: Vec<f64>,
                   eps: &[&SearchRollout],
                   answers: usize| {
        let (ci, vs, vs_ci) = boot.intervals(&per_map, &plain_per_map);
        let all_steps: Vec<_> = eps.iter().flat_map(|e| &e.decisions).collect();
        let step: Vec<_> = eps
            .iter()
            .flat_map(|e| &e.decisions)
            .filter(|d| d.contested())
            .collect();
        let step_level = eps
            .iter()
            .any(|e| e.decisions.iter().any(|d| d.tokens.len() > 1));
        methods.push(MethodResult {
            method: method.into(),
            label,
            available,
            success: mean(&per_map),
            ci,
            vs_sample: vs,
            vs_sample_ci: vs_ci,
            sampled_actions: eps.iter().map(|e| e.sampled_actions()).sum::<usize>() as f64
                / answers as f64,
            sampled_tokens: eps.iter().map(|e| e.sampled_tokens()).sum::<usize>() as f64
                / answers as f64,
            best_pick_rate: (step_level && !step.is_empty())
                .then(|| step.iter().filter(|d| d.chose_best()).count() as f64 / step.len() as f64),
            best_pick_chance: (step_level && !step.is_empty())
                .then(|| step.iter().map(|d| d.best_share()).sum::<f64>() / step.len() as f64),
            contested: if step_level { step.len() } else { 0 },
            regret: step_level
                .then(|| mean(&all_steps.iter().map(|d| d.regret()).collect::<Vec<_>>())),
            regret_chance: step_level.then(|| {
                mean(
                    &all_steps
                        .iter()
                        .map(|d| d.random_regret())
                        .collect::<Vec<_>>(),
                )
            }),
            episodes: eps.len(),
        });
    };
    add(
        "sample",
        "plain sampling (1 action per step)".into(),
        true,
        plain_per_map.clone(),
        &refs(&plain),
        plain.len(),
    );
    for (name, label, eps) in [
        ("step_pa", format!("step-level best-of-{k}, PA"), &step_pa),
        (
            "step_logprob",
            format!("step-level best-of-{k}, policy log-prob"),
            &step_lp,
        ),
    ] {
        add(
            name,
            label,
            true,
            per_map_success(eps, m, opts.episodes),
            &refs(eps),
            eps.len(),
        );
    }
    let traj_scores: [(&str, &str, TrajectoryScore); 4] = [
        ("bon_pa_sum", "PA, sum over steps", |e, b| {
            e.step_pa(b).iter().sum()
        }),
        ("bon_pa_mean", "PA, mean over steps", |e, b| {
            mean(&e.step_pa(b))
        }),
        ("bon_logprob_sum", "policy log-prob, sum", |e, _| {
            e.step_logprob().iter().sum()
        }),
        ("bon_logprob_mean", "policy log-prob, mean", |e, _| {
            mean(&e.step_logprob())
        }),
    ];
    for (name, what, f) in traj_scores {
        let per_map = best_of_n(&plain, m, k, |e| f(e, beta));
        add(
            name,
            format!("best-of-{k} episodes, {what}"),
            true,
            per_map,
            &refs(&plain),
            m,
        );
    }
    add(
        "step_oracle",
        format!("step-level best-of-{k}, true A* (oracle)"),
        false,
        per_map_success(&step_oracle, m, opts.episodes),
        &refs(&step_oracle),
        step_oracle.len(),
    );
    let pass: Vec<f64> = plain
        .chunks(k)
        .map(|c| {
            if c.iter().any(|e| e.success()) {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    add(
        "pass_at_n",
        format!("pass@{k} (some plain episode succeeds)"),
        false,
        pass,
        &refs(&plain),
        m,
    );

    let v_star = mean(
        &lakes
            .iter()
            .zip(&values)
            .map(|(l, v)| v.v(l.initial()))
            .collect::<Vec<_>>(),
    );
    let summary = SearchSummary {
        policy: policy_dir.display().to_string(),
        maps: m,
        k,
        episodes: opts.episodes,
        beta,
        seed: opts.seed,
        v_star,
        methods,
        timings: SearchTimings {
            play_s,
            total_s: started.elapsed().as_secs_f64(),
        },
    };
    let path = opts.out.join("search_summary.json");
    crate::agent::write_json(
        &path,
        &serde_json::to_value(&summary).map_err(|source| AgentError::Json {
            path: path.clone(),
            source,
        })?,
    )?;
    Ok(summary)
}

/// A whole episode's score for best-of-N, given β.
type TrajectoryScore = fn(&SearchRollout, f64) -> f64;

fn refs(v: &[SearchRollout]) -> Vec<&SearchRollout> {
    v.iter().collect()
}

/// Mean; NaN for an empty list (never a plausible 0.0). Every list averaged here has an
/// element: maps ≥ 1, and an episode has at least one step.
fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Per map, the success rate of its `per_map` consecutive episodes.
fn per_map_success(eps: &[SearchRollout], maps: usize, per_map: usize) -> Vec<f64> {
    debug_assert_eq!(eps.len(), maps * per_map);
    eps.chunks(per_map)
        .map(|c| c.iter().filter(|e| e.success()).count() as f64 / c.len() as f64)
        .collect()
}

/// Per map, the expected success of picking uniformly among its episodes with the highest
/// `score` (exact ties only).
fn best_of_n(
    eps: &[SearchRollout],
    maps: usize,
    n: usize,
    score: impl Fn(&SearchRollout) -> f64,
) -> Vec<f64> {
    debug_assert_eq!(eps.len(), maps * n);
    eps.chunks(n)
        .map(|c| {
            let s: Vec<f64> = c.iter().map(&score).collect();
            let best = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let tied: Vec<_> = c.iter().zip(&s).filter(|(_, &x)| x == best).collect();
            tied.iter().filter(|(e, _)| e.success()).count() as f64 / tied.len() as f64
        })
        .collect()
}

/// Percentile bootstrap over maps, the same resamples for every method (so paired): core's
/// [`MeanBootstrap`], the bootstrap every evaluation uses.
struct Bootstrap(MeanBootstrap);

impl Bootstrap {
    fn new(maps: usize, n: usize, seed: u64) -> Self {
        Bootstrap(MeanBootstrap::new(maps, n, 0.95, seed ^ 0xB0075))
    }

    /// (95 % interval of mean(x), mean(x − base), its 95 % interval).
    fn intervals(&self, x: &[f64], base: &[f64]) -> ([f64; 2], f64, [f64; 2]) {
        let diff: Vec<f64> = x.iter().zip(base).map(|(a, b)| a - b).collect();
        (self.ci(x), mean(&diff), self.ci(&diff))
    }

    fn ci(&self, x: &[f64]) -> [f64; 2] {
        self.0.ci(x).map_or([f64::NAN; 2], |c| [c.low, c.high])
    }
}

/// The summary as a table for a terminal.
pub fn print_table(s: &SearchSummary) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Guided search with the gym pair: {} held-out maps, K = N = {}, {} guided episodes per map and chooser (seed {})",
        s.maps, s.k, s.episodes, s.seed
    );
    let _ = writeln!(
        out,
        "success of the answer, higher is better; intervals: 95 % bootstrap over maps; \"vs plain\" is paired by map"
    );
    let _ = writeln!(
        out,
        "{:<46} {:>7} {:>17} {:>8} {:>17} {:>9} {:>9} {:>15} {:>16}",
        "method",
        "success",
        "95% CI",
        "vs plain",
        "95% CI",
        "actions",
        "tokens",
        "best-A* (rand)",
        "regret (rand)"
    );
    let row = |out: &mut String, m: &MethodResult| {
        let _ = writeln!(
            out,
            "{:<46} {:>7.3} {:>17} {:>8} {:>17} {:>9.1} {:>9.1} {:>15} {:>16}",
            m.label,
            m.success,
            format!("[{:.3}, {:.3}]", m.ci[0], m.ci[1]),
            if m.method == "sample" {
                "-".to_string()
            } else {
                format!("{:+.3}", m.vs_sample)
            },
            if m.method == "sample" {
                "-".to_string()
            } else {
                format!("[{:+.3}, {:+.3}]", m.vs_sample_ci[0], m.vs_sample_ci[1])
            },
            m.sampled_actions,
            m.sampled_tokens,
            match (m.best_pick_rate, m.best_pick_chance) {
                (Some(r), Some(c)) => format!("{r:.3} ({c:.3})"),
                _ => "-".to_string(),
            },
            match (m.regret, m.regret_chance) {
                (Some(r), Some(c)) => format!("{r:.4} ({c:.4})"),
                _ => "-".to_string(),
            },
        );
    };
    for m in s.methods.iter().filter(|m| m.available) {
        row(&mut out, m);
    }
    let _ = writeln!(out, "not available to an agent (ceilings):");
    for m in s.methods.iter().filter(|m| !m.available) {
        row(&mut out, m);
    }
    let _ = writeln!(out, "{:<46} {:>7.3}", "optimal policy, V*(s0)", s.v_star);
    let _ = writeln!(
        out,
        "actions/tokens: sampled per answer (best-of-N: all N episodes, each also executed). \
         best-A*: share of contested steps (candidates differing in A*) where the chosen action had the best A*; regret: mean over steps of max A* − chosen A* \
         (lower is better); in brackets what a random pick among the same candidates gets."
    );
    out
}

/// Guided search over several seeds.
#[derive(Debug, Clone, Serialize)]
pub struct SearchSeedsSummary {
    /// The seeds, in order.
    pub seeds: Vec<u64>,
    /// Per method: success, its paired difference from plain sampling, and the regret per
    /// step, over the seeds.
    pub aggregate: Vec<(
        String,
        std::collections::BTreeMap<String, crate::demo::Spread>,
    )>,
    /// Every seed's summary.
    pub per_seed: Vec<SearchSummary>,
}

/// Runs the experiment for each seed into `opts.out/seed-N` and aggregates.
pub fn run_seeds(opts: &SearchOptions, seeds: &[u64]) -> Result<SearchSeedsSummary> {
    if seeds.is_empty() {
        return Err(AgentError::Invalid("no seeds given".into()));
    }
    let mut per_seed = Vec::with_capacity(seeds.len());
    for &seed in seeds {
        let o = SearchOptions {
            seed,
            out: opts.out.join(format!("seed-{seed}")),
            ..opts.clone()
        };
        per_seed.push(run(&o)?);
    }
    let mut aggregate = Vec::new();
    for m in per_seed
        .first()
        .map(|s| s.methods.clone())
        .unwrap_or_default()
    {
        let pick = |f: &dyn Fn(&MethodResult) -> Option<f64>| {
            crate::demo::Spread::of(
                per_seed
                    .iter()
                    .map(|s| s.methods.iter().find(|x| x.method == m.method).and_then(f))
                    .collect(),
            )
        };
        let mut row = std::collections::BTreeMap::new();
        row.insert("success".to_string(), pick(&|x| Some(x.success)));
        row.insert("vs_sample".to_string(), pick(&|x| Some(x.vs_sample)));
        row.insert(
            "vs_sample_ci_excludes_zero".to_string(),
            pick(&|x| {
                Some(f64::from(u8::from(
                    x.vs_sample_ci[0] > 0.0 || x.vs_sample_ci[1] < 0.0,
                )))
            }),
        );
        row.insert("regret".to_string(), pick(&|x| x.regret));
        aggregate.push((m.label.clone(), row));
    }
    let out = SearchSeedsSummary {
        seeds: seeds.to_vec(),
        aggregate,
        per_seed,
    };
    crate::agent::write_json(
        &opts.out.join("search_summary.json"),
        &serde_json::to_value(&out).map_err(|source| AgentError::Json {
            path: opts.out.join("search_summary.json"),
            source,
        })?,
    )?;
    Ok(out)
}

/// The table over seeds: mean ± sd of each method's success, its difference from plain
/// sampling, and the share of seeds whose interval of that difference excludes 0.
pub fn print_seeds_table(s: &SearchSeedsSummary) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let first = s.per_seed.first();
    let _ = writeln!(
        out,
        "Guided search over seeds {:?}: {} held-out maps per seed, K = N = {}; mean ± sd over seeds",
        s.seeds,
        first.map_or(0, |x| x.maps),
        first.map_or(0, |x| x.k),
    );
    let mut rows = vec![vec![
        "method".to_string(),
        "success".into(),
        "vs plain (paired)".into(),
        "seeds with CI excluding 0".into(),
        "regret / step".into(),
        "per seed vs plain".into(),
    ]];
    for (label, row) in &s.aggregate {
        let g = |k: &str| row.get(k).map_or_else(|| "-".into(), |x| x.show());
        let per = row.get("vs_sample").map_or_else(String::new, |x| {
            x.values
                .iter()
                .map(|v| v.map_or("-".into(), |v| format!("{v:+.3}")))
                .collect::<Vec<_>>()
                .join(" ")
        });
        let excl = row
            .get("vs_sample_ci_excludes_zero")
            .map_or_else(String::new, |x| {
                format!(
                    "{}/{}",
                    x.values.iter().flatten().filter(|v| **v > 0.5).count(),
                    x.values.len()
                )
            });
        rows.push(vec![
            label.clone(),
            g("success"),
            g("vs_sample"),
            excl,
            g("regret"),
            per,
        ]);
    }
    crate::demo::columns(&rows, &mut out);
    out
}
