//! Benchmark of record files: writes synthetic records as JSONL and Parquet, a batch at a time,
//! and evaluates a file the way `padv eval` does (read in batches into the score table, then
//! the evaluation), timing each phase. Run by `scripts/bench/parquet_eval.sh`:
//!
//! ```text
//! records_bench write --trajectories 10000000 --steps 2 --tokens 4 --arrays policy,reference \
//!     --jsonl bench-out/r.jsonl --parquet bench-out/r.parquet
//! records_bench eval --input bench-out/r.parquet --kind uq --methods pa --bootstrap 0 \
//!     --out bench-out/uq-parquet.json
//! ```
//!
//! `eval` prints one JSON line of timings; `--out` gets the evaluation's report (the same
//! document `padv eval --json` prints), so the two formats' reports can be compared byte for
//! byte.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use padv_core::eval::{scan_record_files, EvalConfig, EvalKind, DEFAULT_TABLE_BUDGET};
use padv_core::record::parquet::{write_parquet_atomic_with, ROW_GROUP_ROWS};
use padv_core::score::Method;
use padv_core::synthetic::synthetic_records_range;
use padv_core::LogprobRecord;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let mut flags: HashMap<String, String> = HashMap::new();
    while let Some(name) = args.next() {
        let name = name
            .strip_prefix("--")
            .ok_or_else(|| format!("expected --flag, got {name:?}"))?
            .to_string();
        let value = args
            .next()
            .ok_or_else(|| format!("--{name} needs a value"))?;
        flags.insert(name, value);
    }
    let get = |name: &str| {
        flags
            .get(name)
            .cloned()
            .ok_or_else(|| format!("--{name} is required"))
    };
    let number = |name: &str, default: usize| -> Result<usize> {
        Ok(match flags.get(name) {
            Some(v) => v.parse()?,
            None => default,
        })
    };
    match command.as_str() {
        "write" => {
            let n = number("trajectories", 1_000_000)?;
            let steps = number("steps", 2)?;
            let tokens = number("tokens", 4)?;
            let all_arrays = match flags.get("arrays").map(String::as_str) {
                None | Some("all") => true,
                Some("policy,reference") => false,
                Some(other) => {
                    return Err(format!("--arrays all|policy,reference, not {other}").into())
                }
            };
            let batch = |start: usize| -> Vec<LogprobRecord> {
                let end = (start + ROW_GROUP_ROWS).min(n);
                let mut records = synthetic_records_range(start..end, steps, tokens, 0);
                if !all_arrays {
                    for s in records.iter_mut().flat_map(|r| r.steps.iter_mut()) {
                        s.policy_topk_mean = None;
                        s.policy_entropy = None;
                        s.policy_vocab_mean = None;
                    }
                }
                records
            };
            if let Ok(path) = get("jsonl") {
                let t = Instant::now();
                padv_core::atomic::write_atomic(&PathBuf::from(&path), |w| {
                    for start in (0..n).step_by(ROW_GROUP_ROWS) {
                        for r in batch(start) {
                            serde_json::to_writer(&mut *w, &r)?;
                            w.write_all(b"\n")?;
                        }
                    }
                    Ok(())
                })?;
                println!(
                    "{{\"wrote\": {path:?}, \"records\": {n}, \"seconds\": {:.2}}}",
                    t.elapsed().as_secs_f64()
                );
            }
            if let Ok(path) = get("parquet") {
                let t = Instant::now();
                write_parquet_atomic_with(&PathBuf::from(&path), |w| {
                    for start in (0..n).step_by(ROW_GROUP_ROWS) {
                        w.write(&batch(start))?;
                    }
                    Ok(())
                })?;
                println!(
                    "{{\"wrote\": {path:?}, \"records\": {n}, \"seconds\": {:.2}}}",
                    t.elapsed().as_secs_f64()
                );
            }
        }
        "eval" => {
            let input = PathBuf::from(get("input")?);
            let kind: EvalKind = flags.get("kind").map_or("uq", String::as_str).parse()?;
            let methods = match flags.get("methods") {
                Some(m) => m
                    .split(',')
                    .map(str::parse)
                    .collect::<std::result::Result<Vec<Method>, _>>()?,
                None => Vec::new(),
            };
            let cfg = EvalConfig {
                grid: true,
                methods,
                bootstrap: number("bootstrap", 0)?,
                folds: number("folds", 5)?,
                ..EvalConfig::default()
            };
            let budget = number("table-budget-mib", DEFAULT_TABLE_BUDGET >> 20)? << 20;
            let t = Instant::now();
            let scan = scan_record_files(std::slice::from_ref(&input), kind, &cfg, budget)?;
            let read_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let report = scan.evaluate(kind, &cfg)?;
            let eval_s = t.elapsed().as_secs_f64();
            if let Ok(out) = get("out") {
                padv_core::atomic::write_bytes_atomic(
                    &PathBuf::from(out),
                    serde_json::to_string_pretty(&report)?.as_bytes(),
                )?;
            }
            println!(
                "{{\"input\": {:?}, \"records\": {}, \"cells\": {}, \
                 \"table_kept\": {}, \"scan_s\": {read_s:.2}, \"evaluate_s\": {eval_s:.2}}}",
                input.display().to_string(),
                scan.len(),
                report.cells,
                scan.table().is_some()
            );
        }
        _ => return Err("usage: records_bench write|eval --flag value ...".into()),
    }
    Ok(())
}
