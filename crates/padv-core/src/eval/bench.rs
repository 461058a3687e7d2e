//! Timing of a full-grid evaluation on synthetic data (what `padv bench-eval` runs).
//!
//! Phases are timed separately so a regression can be located: generating records,
//! precomputing the [`ScoreTable`], UQ over the grid (with bootstrap and CV folds), the CV
//! summary, best-of-N and failure attribution.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{bon_grid, cross_validate_by_method, fa_grid, uq_grid, EvalError, UqOptions};
use crate::record::LogprobRecord;
use crate::score::{grid, synthetic_records, Method, ScoreTable};

/// Benchmark settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchOptions {
    /// Trajectories (default 100 000).
    pub n_traj: usize,
    /// Steps per trajectory (default 20).
    pub n_steps: usize,
    /// Tokens per step (default 50).
    pub n_tokens: usize,
    /// Data seed (default 0).
    pub seed: u64,
    /// Methods whose full grid is evaluated (default: all 11, 260 cells).
    pub methods: Vec<Method>,
    /// UQ settings (default [`UqOptions::default`]: 1000 resamples, 5 folds).
    pub uq: UqOptions,
    /// Bootstrap every grid cell inside the UQ phase (default false). A percentile bootstrap
    /// costs `n_boot` passes over the records per cell, about a second per cell at 10^5
    /// records and 1000 resamples on one core, so by default the UQ phase runs without it and
    /// the `bootstrap` phase times it on one cell, from which the full-grid cost follows.
    pub bootstrap_all_cells: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            n_traj: 100_000,
            n_steps: 20,
            n_tokens: 50,
            seed: 0,
            methods: Method::ALL.to_vec(),
            uq: UqOptions::default(),
            bootstrap_all_cells: false,
        }
    }
}

/// Wall-clock seconds per phase, and what was measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// Records evaluated.
    pub n_records: usize,
    /// Steps over all records.
    pub n_steps: usize,
    /// Tokens per array over all records.
    pub n_tokens: usize,
    /// Grid cells evaluated by each of UQ, best-of-N and FA.
    pub n_cells: usize,
    /// Rayon worker threads.
    pub threads: usize,
    /// Bootstrap resamples per bootstrapped cell.
    pub n_boot: usize,
    /// Cells bootstrapped: all of them, or 1 (in the `bootstrap` phase).
    pub bootstrap_cells: usize,
    /// Generating the synthetic records (0 when records were given).
    pub generate_s: f64,
    /// [`ScoreTable::precompute`].
    pub precompute_s: f64,
    /// [`uq_grid`] over all cells: scores, AUROC, AUPRC, Spearman, fold AUROCs (and the
    /// bootstrap when `bootstrap_all_cells`).
    pub uq_s: f64,
    /// One cell's UQ with its bootstrap (0 when `bootstrap_all_cells` or `n_boot == 0`).
    pub bootstrap_s: f64,
    /// [`cross_validate_by_method`] on the UQ rows.
    pub cv_s: f64,
    /// [`bon_grid`].
    pub bon_s: f64,
    /// [`fa_grid`].
    pub fa_s: f64,
    /// Everything after generation.
    pub total_eval_s: f64,
    /// Best UQ cell: label and AUROC (a sanity check that the data carry signal).
    pub best_uq: Option<(String, f64)>,
}

/// Generate synthetic records as configured and time the full-grid evaluation of them.
pub fn run_full_grid_benchmark(opts: &BenchOptions) -> Result<BenchReport, EvalError> {
    let t = Instant::now();
    let records = synthetic_records(opts.n_traj, opts.n_steps, opts.n_tokens, opts.seed);
    let generate_s = t.elapsed().as_secs_f64();
    let mut report = bench_records(&records, opts)?;
    report.generate_s = generate_s;
    Ok(report)
}

/// Time the full-grid evaluation of given records (e.g. a real record file); the data
/// fields of `opts` (`n_traj`, `n_steps`, `n_tokens`, `seed`) are not used.
pub fn bench_records(
    records: &[LogprobRecord],
    opts: &BenchOptions,
) -> Result<BenchReport, EvalError> {
    let specs = grid(&opts.methods);
    let start = Instant::now();

    let t = Instant::now();
    let table = ScoreTable::precompute(records)?;
    let precompute_s = t.elapsed().as_secs_f64();

    let grid_uq = if opts.bootstrap_all_cells {
        opts.uq
    } else {
        UqOptions {
            n_boot: 0,
            ..opts.uq
        }
    };
    let t = Instant::now();
    let uq_rows = uq_grid(&table, &specs, &grid_uq)?;
    let uq_s = t.elapsed().as_secs_f64();

    let probe = !opts.bootstrap_all_cells && opts.uq.n_boot > 0 && !specs.is_empty();
    let t = Instant::now();
    if probe {
        std::hint::black_box(uq_grid(&table, &specs[..1], &opts.uq)?);
    }
    let bootstrap_s = if probe {
        t.elapsed().as_secs_f64()
    } else {
        0.0
    };

    let t = Instant::now();
    let cv = cross_validate_by_method(&uq_rows);
    let cv_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let bon = bon_grid(&table, &specs)?;
    let bon_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let fa = fa_grid(&table, &specs)?;
    let fa_s = t.elapsed().as_secs_f64();

    let total_eval_s = start.elapsed().as_secs_f64();
    // The timed results are otherwise unused here: keep the optimiser from eliding them.
    std::hint::black_box((&cv, &bon, &fa));
    let best_uq = uq_rows
        .iter()
        .filter_map(|r| r.result.auroc.map(|a| (r.label.clone(), a)))
        .fold(None, |best: Option<(String, f64)>, cur| match best {
            Some(b) if b.1 >= cur.1 => Some(b),
            _ => Some(cur),
        });
    Ok(BenchReport {
        n_records: records.len(),
        n_steps: table.n_steps(),
        n_tokens: records
            .iter()
            .flat_map(|r| r.steps.iter().map(|s| s.len()))
            .sum(),
        n_cells: specs.len(),
        threads: rayon::current_num_threads(),
        n_boot: opts.uq.n_boot,
        bootstrap_cells: match (opts.uq.n_boot, opts.bootstrap_all_cells) {
            (0, _) => 0,
            (_, true) => specs.len(),
            (_, false) => usize::from(probe),
        },
        generate_s: 0.0,
        precompute_s,
        uq_s,
        bootstrap_s,
        cv_s,
        bon_s,
        fa_s,
        total_eval_s,
        best_uq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_benchmark_runs_and_finds_signal() {
        let opts = BenchOptions {
            n_traj: 400,
            n_steps: 6,
            n_tokens: 5,
            seed: 1,
            methods: vec![Method::Pa, Method::Deepconf],
            uq: UqOptions {
                n_boot: 20,
                ..UqOptions::default()
            },
            bootstrap_all_cells: false,
        };
        let r = run_full_grid_benchmark(&opts).unwrap();
        assert_eq!((r.n_records, r.n_steps, r.n_tokens), (400, 2400, 12_000));
        assert_eq!((r.n_cells, r.bootstrap_cells), (90, 1));
        let (label, auroc) = r.best_uq.unwrap();
        assert!(auroc > 0.7, "{label}: {auroc}");
        let all = run_full_grid_benchmark(&BenchOptions {
            bootstrap_all_cells: true,
            ..opts
        })
        .unwrap();
        assert_eq!((all.bootstrap_cells, all.bootstrap_s), (90, 0.0));
    }

    /// The full-size benchmark (100k x 20 x 50, all 260 cells). Run in release:
    /// `cargo test --release -p padv-core --lib full_grid_benchmark -- --ignored --nocapture`.
    /// Environment overrides: `PADV_BENCH_NTRAJ` (trajectories), `PADV_BENCH_NBOOT`
    /// (resamples), `PADV_BENCH_ALLBOOT=1` (bootstrap every cell).
    #[test]
    #[ignore]
    fn full_grid_benchmark() {
        let env = |name: &str, default: usize| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let opts = BenchOptions {
            n_traj: env("PADV_BENCH_NTRAJ", 100_000),
            uq: UqOptions {
                n_boot: env("PADV_BENCH_NBOOT", 1000),
                ..UqOptions::default()
            },
            bootstrap_all_cells: env("PADV_BENCH_ALLBOOT", 0) == 1,
            ..BenchOptions::default()
        };
        let r = run_full_grid_benchmark(&opts).unwrap();
        println!("{}", serde_json::to_string_pretty(&r).unwrap());
    }
}
