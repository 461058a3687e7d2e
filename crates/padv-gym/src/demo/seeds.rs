//! `padv demo --seeds 1,2,3`: the demo on several seeds (other held-out maps, other
//! rollouts, same pair), each into `OUT/seed-N/`, and the mean and spread of every headline
//! number over the seeds — a claim about the method should survive a new seed.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::eval::mean_of;
use super::report::{columns, f};
use super::{run, DemoOptions, DemoSummary, Player};
use crate::agent::{AgentError, Result};

/// Mean, sample standard deviation, minimum and maximum of one number over seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spread {
    /// Mean over the seeds where it is defined.
    pub mean: f64,
    /// Sample standard deviation (NaN for fewer than two values).
    pub sd: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Every seed's value, in seed order (`null` where undefined).
    pub values: Vec<Option<f64>>,
}

impl Spread {
    /// The spread of `values` (undefined and non-finite ones are left out of the moments).
    pub fn of(values: Vec<Option<f64>>) -> Spread {
        let xs: Vec<f64> = values
            .iter()
            .flatten()
            .copied()
            .filter(|x| x.is_finite())
            .collect();
        let mean = mean_of(&xs);
        let sd = if xs.len() >= 2 {
            (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
        } else {
            f64::NAN
        };
        Spread {
            mean,
            sd,
            min: xs.iter().copied().fold(f64::INFINITY, f64::min),
            max: xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            values,
        }
    }

    /// `mean ± sd` (just the mean for one value).
    pub fn show(&self) -> String {
        // A mean that rounds to zero prints as 0.000, not -0.000 (the oracle's KL to itself).
        let mean = if (self.mean * 1000.0).round() == 0.0 {
            0.0
        } else {
            self.mean
        };
        if self.sd.is_finite() {
            format!("{} ± {}", f(Some(mean), 3), f(Some(self.sd), 3))
        } else {
            f(Some(mean), 3)
        }
    }
}

/// The demo over several seeds.
#[derive(Debug, Clone, Serialize)]
pub struct SeedsSummary {
    /// The seeds, in order.
    pub seeds: Vec<u64>,
    /// Per player: success, KL to the oracle per step, and per method and application the
    /// cross-validated headline (`uq`, `bon`, `fa`) and `rho_soft`.
    pub aggregate: BTreeMap<String, BTreeMap<String, Spread>>,
    /// The oracle's largest identity error over all seeds (f64, as sampled).
    pub oracle_identity_max_error: f64,
    /// Every seed's summary.
    pub per_seed: Vec<DemoSummary>,
}

/// Runs the demo for each seed into `opts.out/seed-N` and aggregates.
pub fn run_seeds(opts: &DemoOptions, seeds: &[u64]) -> Result<SeedsSummary> {
    if seeds.is_empty() {
        return Err(AgentError::Invalid("no seeds given".into()));
    }
    let mut per_seed = Vec::with_capacity(seeds.len());
    for &seed in seeds {
        let o = DemoOptions {
            seed,
            out: opts.out.join(format!("seed-{seed}")),
            ..opts.clone()
        };
        tracing::info!("demo seed {seed} into {}", o.out.display());
        per_seed.push(run(&o)?);
    }
    let mut aggregate: BTreeMap<String, BTreeMap<String, Spread>> = BTreeMap::new();
    for p in Player::ALL {
        let name = p.name();
        let get =
            |g: &dyn Fn(&DemoSummary) -> Option<f64>| Spread::of(per_seed.iter().map(g).collect());
        let mut row = BTreeMap::new();
        row.insert(
            "success".to_string(),
            get(&|s| s.players.get(name).map(|x| x.success)),
        );
        row.insert(
            "kl_to_oracle_per_step".to_string(),
            get(&|s| s.players.get(name).map(|x| x.kl_to_oracle_per_step)),
        );
        row.insert(
            "step_pa_rho_soft".to_string(),
            get(&|s| {
                s.players
                    .get(name)
                    .and_then(|x| x.step_pa_vs_soft.spearman_pooled)
            }),
        );
        let methods: Vec<String> = per_seed
            .first()
            .and_then(|s| s.players.get(name))
            .map(|x| x.methods.keys().cloned().collect())
            .unwrap_or_default();
        for m in methods {
            let cell =
                |s: &DemoSummary| s.players.get(name).and_then(|x| x.methods.get(&m).cloned());
            row.insert(format!("{m}/uq"), get(&|s| cell(s).and_then(|r| r.uq.cv)));
            row.insert(format!("{m}/bon"), get(&|s| cell(s).and_then(|r| r.bon.cv)));
            row.insert(format!("{m}/fa"), get(&|s| cell(s).and_then(|r| r.fa.cv)));
            row.insert(
                format!("{m}/rho_soft"),
                get(&|s| cell(s).and_then(|r| r.rho_soft)),
            );
        }
        for k in [
            "uq_fewer_steps_auroc",
            "bon_random",
            "bon_oracle",
            "fa_last_action",
        ] {
            row.insert(
                format!("prior/{k}"),
                get(&|s| {
                    s.players
                        .get(name)
                        .and_then(|x| x.priors.get(k).copied().flatten())
                }),
            );
        }
        aggregate.insert(name.to_string(), row);
    }
    let oracle_identity_max_error = per_seed
        .iter()
        .map(|s| s.soft_truth.oracle_identity_max_error)
        .fold(0.0, f64::max);
    let out = SeedsSummary {
        seeds: seeds.to_vec(),
        aggregate,
        oracle_identity_max_error,
        per_seed,
    };
    crate::agent::write_json(
        &opts.out.join("summary.json"),
        &serde_json::to_value(&out).map_err(|source| AgentError::Json {
            path: opts.out.join("summary.json"),
            source,
        })?,
    )?;
    Ok(out)
}

/// The aggregate table: per player and method, mean ± sd over the seeds of each
/// application's cross-validated headline.
pub fn print_seeds_table(s: &SeedsSummary) -> String {
    let mut out = String::new();
    let first = s.per_seed.first();
    let _ = writeln!(
        out,
        "padv demo over seeds {:?}: {} actions, {} held-out maps x {} rollouts per seed; mean ± sd over seeds (each seed: other maps, other rollouts, same pair)",
        s.seeds,
        first.map_or("?", |x| x.setup["style"].as_str().unwrap_or("?")),
        first.map_or(serde_json::Value::Null, |x| x.setup["held_out_maps"].clone()),
        first.map_or(serde_json::Value::Null, |x| x.setup["samples_per_map"].clone()),
    );
    if first.is_some_and(|x| x.setup["policy_is_reference"].as_bool() == Some(true)) {
        let _ = writeln!(out, "{}", super::report::POLICY_IS_REFERENCE);
    }
    let _ = writeln!(
        out,
        "oracle identity |β·log π_o/π_ref − A_soft|: max {:.1e} over all seeds",
        s.oracle_identity_max_error
    );
    for p in Player::ALL {
        let Some(row) = s.aggregate.get(p.name()) else {
            continue;
        };
        let g = |k: &str| row.get(k).map_or_else(|| "-".into(), Spread::show);
        let _ = writeln!(
            out,
            "\n== {}: success {} | KL(π ‖ π_o) {} nats/step | step PA vs A_soft ρ {}",
            p.name(),
            g("success"),
            g("kl_to_oracle_per_step"),
            g("step_pa_rho_soft"),
        );
        let mut rows = vec![vec![
            "method".to_string(),
            "UQ AUROC (CV)".into(),
            "BoN success (CV)".into(),
            "FA accuracy (CV)".into(),
            "ρ A_soft".into(),
        ]];
        let methods: Vec<String> = row
            .keys()
            .filter_map(|k| k.strip_suffix("/uq").map(str::to_string))
            .collect();
        for m in methods {
            rows.push(vec![
                m.clone(),
                g(&format!("{m}/uq")),
                g(&format!("{m}/bon")),
                g(&format!("{m}/fa")),
                g(&format!("{m}/rho_soft")),
            ]);
        }
        rows.push(vec![
            "chance / priors".into(),
            format!("0.5 (fewer steps {})", g("prior/uq_fewer_steps_auroc")),
            format!(
                "random {} | pass@N {}",
                g("prior/bon_random"),
                g("prior/bon_oracle")
            ),
            format!("last action {}", g("prior/fa_last_action")),
            String::new(),
        ]);
        columns(&rows, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::Spread;

    #[test]
    fn a_mean_that_rounds_to_zero_prints_without_a_sign() {
        let s = Spread::of(vec![Some(-1e-10), Some(-3e-10)]);
        assert_eq!(s.show(), "0.000 ± 0.000");
        let s = Spread::of(vec![Some(-0.25), Some(-0.35)]);
        assert!(s.show().starts_with("-0.300 ± "), "{}", s.show());
    }
}
