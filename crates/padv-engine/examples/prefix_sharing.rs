//! What prefix sharing in `LocalEngine::score_batch` saves: K continuations (candidate
//! actions) after one long history, scored as one batch versus K independent passes.
//!
//! Run (release):
//!   cargo run --release -p padv-engine --example prefix_sharing -- \
//!       [--model DIR] [--prefix 2000] [--k 8] [--suffix 64] [--repeats 3] [--out FILE.json]
//!
//! The model defaults to the tiny test fixture `tests/fixtures/models/qwen2`. Ids are
//! pseudo-random; each continuation's tokens are its targets. Prints the best wall time of
//! each mode over the repeats, their ratio shared / independent (below 1 = sharing is
//! faster), the positions each ran, and the largest difference between the two modes'
//! log-probs; `--out` also writes them as JSON. `scripts/bench/prefix_sharing.sh` runs it.

#[cfg(feature = "decoder")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    bench::main()
}

#[cfg(not(feature = "decoder"))]
fn main() {
    eprintln!("prefix_sharing needs the `decoder` feature (on by default)");
}

#[cfg(feature = "decoder")]
mod bench {
    use std::path::PathBuf;
    use std::time::Instant;

    use padv_core::{LogprobBackend, ScoreRequest, StatsRequest};
    use padv_engine::logprobs::{EngineOptions, LocalEngine};

    fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    fn ids(seed: u64, n: usize, vocab: u64) -> Vec<u32> {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 33) % vocab) as u32
            })
            .collect()
    }

    pub fn main() -> Result<(), Box<dyn std::error::Error>> {
        let args: Vec<String> = std::env::args().collect();
        let model: PathBuf = arg(
            &args,
            "--model",
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/qwen2"),
        );
        let prefix: usize = arg(&args, "--prefix", 2000);
        let k: usize = arg(&args, "--k", 8);
        let suffix: usize = arg(&args, "--suffix", 64);
        let repeats: usize = arg(&args, "--repeats", 3).max(1);
        let out: Option<PathBuf> = args
            .iter()
            .position(|a| a == "--out")
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from);
        let engine = LocalEngine::load(&model, EngineOptions::default())?;
        let vocab = engine.vocab_size() as u64;
        let history = ids(1, prefix, vocab);
        let seqs: Vec<Vec<u32>> = (0..k)
            .map(|j| {
                let mut s = history.clone();
                s.extend(ids(100 + j as u64, suffix, vocab));
                s
            })
            .collect();
        let targets: Vec<usize> = (prefix..prefix + suffix).collect();
        let requests: Vec<ScoreRequest> = seqs
            .iter()
            .map(|s| ScoreRequest {
                ids: s,
                targets: &targets,
            })
            .collect();
        let stats = StatsRequest {
            distribution_stats: true,
        };
        let (mut shared_s, mut indep_s) = (f64::INFINITY, f64::INFINITY);
        let (mut cost, mut max_diff) = (Default::default(), 0f32);
        for _ in 0..repeats {
            let t0 = Instant::now();
            let (batch, c) = engine.score_batch_shared(&requests, stats);
            shared_s = shared_s.min(t0.elapsed().as_secs_f64());
            cost = c;
            let t0 = Instant::now();
            let indep: Vec<_> = requests
                .iter()
                .map(|r| engine.score(r.ids, r.targets, stats))
                .collect::<Result<_, _>>()?;
            indep_s = indep_s.min(t0.elapsed().as_secs_f64());
            for (b, i) in batch.into_iter().zip(&indep) {
                for (x, y) in b?.logprob.iter().zip(&i.logprob) {
                    max_diff = max_diff.max((x - y).abs());
                }
            }
        }
        let ratio = shared_s / indep_s;
        println!(
            "model {} | K={k} continuations of {suffix} tokens after a {prefix}-token prefix | best of {repeats}",
            model.display()
        );
        println!(
            "shared batch {shared_s:.3} s, independent {indep_s:.3} s, shared/independent {ratio:.2}x"
        );
        println!(
            "positions run: shared {}, independent {} | {} requests in fan-out passes | max |Δ log-prob| {max_diff:.2e}",
            cost.computed_positions, cost.independent_positions, cost.fanout_requests
        );
        if let Some(path) = out {
            let report = serde_json::json!({
                "model": model.display().to_string(),
                "k": k,
                "prefix_tokens": prefix,
                "suffix_tokens": suffix,
                "repeats": repeats,
                "shared_s": shared_s,
                "independent_s": indep_s,
                "ratio_shared_over_independent": ratio,
                "positions_shared": cost.computed_positions,
                "positions_independent": cost.independent_positions,
                "fanout_requests": cost.fanout_requests,
                "max_abs_logprob_diff": max_diff,
            });
            std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
        }
        Ok(())
    }
}
