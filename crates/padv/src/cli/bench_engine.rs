//! `padv bench engine`: time the local engine on real tau2 trajectories at several lengths,
//! and compare with the PyTorch reference path timed by `scripts/bench_pytorch.py`.
//!
//! Each length runs in a fresh child process so that its peak RSS (VmHWM) is its own.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use padv_core::formats::{read_inputs, ReadOptions};
use padv_core::StatsRequest;
use padv_engine::tokenize::TextTokenizer;
use serde::{Deserialize, Serialize};

use super::engine_opts::{load_engine, EngineArgs};

/// Arguments of `padv bench engine`.
#[derive(Debug, Clone, Args)]
pub struct BenchEngineArgs {
    /// Checkpoint folder (e.g. made by scripts/make_bench_checkpoint.py).
    #[arg(long)]
    model: String,
    /// tau2 results file whose trajectories are concatenated to each length.
    #[arg(long = "input", short = 'i')]
    input: Option<PathBuf>,
    /// Token sequences written by scripts/bench_pytorch.py (`<out>.ids.json`): scores exactly
    /// the ids PyTorch scored. Takes precedence over --input.
    #[arg(long)]
    ids: Option<PathBuf>,
    /// Sequence lengths.
    #[arg(long, value_delimiter = ',', default_value = "512,2048,8192")]
    lengths: Vec<usize>,
    /// PyTorch results (scripts/bench_pytorch.py --out) to report padv/PyTorch ratios against.
    #[arg(long)]
    pytorch: Option<PathBuf>,
    #[command(flatten)]
    engine: EngineArgs,
    /// Folder to also write the JSON report into, as bench-engine.json (created if missing).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Internal: run one length in this process and print one JSON line.
    #[arg(long, hide = true)]
    worker: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct LengthResult {
    tokens: usize,
    action_targets: usize,
    load_s: f64,
    score_s: f64,
    tokens_per_s: f64,
    peak_rss_mib: f64,
    action_logprob_sum: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pytorch_score_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pytorch_peak_rss_mib: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pytorch_action_logprob_sum: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ratio_padv_over_pytorch: Option<f64>,
}

#[derive(Deserialize)]
struct IdsFile {
    sequences: Vec<IdsSeq>,
}

#[derive(Deserialize)]
struct IdsSeq {
    #[serde(rename = "T")]
    t: usize,
    ids: Vec<u32>,
    action_mask: Vec<u8>,
}

/// Run `padv bench engine`.
pub fn run(args: BenchEngineArgs) -> anyhow::Result<()> {
    if args.worker {
        let length = *args.lengths.first().context("--lengths is empty")?;
        let r = run_one(&args, length)?;
        return super::output::print_text(&serde_json::to_string(&r)?);
    }
    let pytorch: Option<serde_json::Value> = match &args.pytorch {
        Some(p) => Some(
            serde_json::from_slice(
                &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
            )
            .with_context(|| format!("parsing {}", p.display()))?,
        ),
        None => None,
    };
    let exe = std::env::current_exe().context("locating the padv binary")?;
    let mut results = Vec::new();
    for &length in &args.lengths {
        let mut cmd = Command::new(&exe);
        cmd.args(["bench", "engine", "--worker", "--model", &args.model])
            .args(["--lengths", &length.to_string()])
            .args([
                "--dtype",
                &format!("{:?}", args.engine.dtype).to_lowercase(),
            ])
            .args(["--device", &args.engine.device])
            .args(["--chunk-rows", &args.engine.chunk_rows.to_string()]);
        if let Some(ids) = &args.ids {
            cmd.arg("--ids").arg(ids);
        }
        if let Some(input) = &args.input {
            cmd.arg("--input").arg(input);
        }
        let out = cmd.output().context("running the benchmark worker")?;
        if !out.status.success() {
            anyhow::bail!(
                "benchmark worker for T={length} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let line = String::from_utf8_lossy(&out.stdout);
        let mut r: LengthResult =
            serde_json::from_str(line.trim()).context("parsing worker output")?;
        if let Some(pt) = pytorch.as_ref().and_then(|v| v["results"].as_array()) {
            if let Some(row) = pt
                .iter()
                .find(|row| row["T"].as_u64() == Some(length as u64))
            {
                r.pytorch_score_s = row["score_s"].as_f64();
                r.pytorch_peak_rss_mib = row["peak_rss_mib"].as_f64();
                r.pytorch_action_logprob_sum = row["action_logprob_sum"].as_f64();
                r.ratio_padv_over_pytorch = r.pytorch_score_s.map(|p| r.score_s / p);
            }
        }
        eprintln!(
            "T={length}: {:.2} s, peak RSS {:.0} MiB",
            r.score_s, r.peak_rss_mib
        );
        results.push(r);
    }
    let report = serde_json::json!({"model": args.model, "results": results});
    if let Some(dir) = &args.out {
        super::output::write_json(&super::output::out_file(dir, "bench-engine.json")?, &report)?;
    }
    super::output::print_text(&super::output::to_json(&report)?)
}

fn run_one(args: &BenchEngineArgs, length: usize) -> anyhow::Result<LengthResult> {
    let (ids, mask) = sequence(args, length)?;
    let targets: Vec<usize> = (1..ids.len()).filter(|&t| mask[t] != 0).collect();
    let t0 = Instant::now();
    let (_, engine) = load_engine(&args.model, &args.engine)?;
    let load_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let out = engine
        .score(
            &ids,
            &targets,
            StatsRequest {
                distribution_stats: true,
            },
        )
        .context("scoring")?;
    let score_s = t1.elapsed().as_secs_f64();
    Ok(LengthResult {
        tokens: ids.len(),
        action_targets: targets.len(),
        load_s,
        score_s,
        tokens_per_s: ids.len() as f64 / score_s,
        peak_rss_mib: peak_rss_mib(),
        action_logprob_sum: out.logprob.iter().map(|&x| f64::from(x)).sum(),
        pytorch_score_s: None,
        pytorch_peak_rss_mib: None,
        pytorch_action_logprob_sum: None,
        ratio_padv_over_pytorch: None,
    })
}

/// The ids and action mask for one length: from the PyTorch script's file, or built the same
/// way from a tau2 file (paper rendering, trajectories concatenated, cut to `length`).
fn sequence(args: &BenchEngineArgs, length: usize) -> anyhow::Result<(Vec<u32>, Vec<u8>)> {
    if let Some(path) = &args.ids {
        let file: IdsFile = serde_json::from_slice(
            &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("parsing {}", path.display()))?;
        let seq = file
            .sequences
            .into_iter()
            .find(|s| s.t == length)
            .with_context(|| format!("{} has no sequence of length {length}", path.display()))?;
        return Ok((seq.ids, seq.action_mask));
    }
    let input = args
        .input
        .as_ref()
        .context("give --input (a tau2 file) or --ids")?;
    let dir = padv_engine::checkpoint::resolve_model_path(&args.model)?;
    let tok = TextTokenizer::from_dir(&dir)?;
    let reports = read_inputs(std::slice::from_ref(input), &ReadOptions::default())?;
    let (mut ids, mut mask) = (Vec::new(), Vec::new());
    for t in reports.iter().flat_map(|r| r.trajectories.iter()) {
        let toks = tok.tokenize_paper(t, usize::MAX)?;
        for seg in &toks.segments {
            let base = ids.len();
            ids.extend_from_slice(&seg.ids);
            mask.resize(ids.len(), 0u8);
            for s in seg.spans.iter().filter(|s| s.is_action) {
                for m in &mut mask[base + s.start..base + s.end] {
                    *m = 1;
                }
            }
        }
        if ids.len() >= length {
            break;
        }
    }
    if ids.len() < length {
        anyhow::bail!(
            "{}: only {} tokens in all trajectories, {length} requested",
            input.display(),
            ids.len()
        );
    }
    ids.truncate(length);
    mask.truncate(length);
    Ok((ids, mask))
}

/// Peak resident set size of this process (Linux VmHWM), in MiB; 0 where unavailable.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
