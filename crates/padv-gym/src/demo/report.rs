//! The demo's human-readable table.

use std::fmt::Write;

use super::eval::{DemoSummary, Headline, PlayerSummary};
use super::Player;

pub(crate) fn f(x: Option<f64>, digits: usize) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "-".to_string(),
    }
}

fn with_ci(h: &Headline) -> String {
    let ci =
        h.ci.map_or_else(String::new, |[a, b]| format!(" [{a:.2},{b:.2}]"));
    let prior = h
        .same_as_prior
        .as_ref()
        .map_or_else(String::new, |p| format!(" (= {p} prior)"));
    format!("{}{ci}{prior}", f(h.cv, 3))
}

/// Left-aligned columns separated by two spaces.
pub(crate) fn columns(rows: &[Vec<String>], out: &mut String) {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(
                ' ',
                widths[c].saturating_sub(cell.chars().count()),
            ));
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

fn player_block(name: &str, p: &PlayerSummary, samples: &serde_json::Value, out: &mut String) {
    let _ = writeln!(
        out,
        "\n== {name}: {} | success {} | {} steps, {} failures ({} with a decisive mistake) | KL(π ‖ π_o) {} nats/step",
        p.what,
        f(Some(p.success), 3),
        p.steps,
        p.failures,
        p.failures_with_mistake,
        f(Some(p.kl_to_oracle_per_step), 3),
    );
    let mut rows = vec![
        vec![
            "method".into(),
            "UQ AUROC [95% CI]".into(),
            format!("BoN@{samples} success [95% CI]"),
            "FA accuracy [95% CI]".into(),
            "ρ A_soft".into(),
            "ρ A*".into(),
        ],
        vec![
            "(better)".into(),
            "high, CV".into(),
            "high, CV".into(),
            "high, CV".into(),
            "high".into(),
            "high".into(),
        ],
    ];
    for (m, r) in &p.methods {
        rows.push(vec![
            m.clone(),
            with_ci(&r.uq),
            with_ci(&r.bon),
            format!(
                "{} {}",
                with_ci(&r.fa),
                r.fa.predictor.clone().unwrap_or_default()
            ),
            f(r.rho_soft, 3),
            f(r.rho_hard, 3),
        ]);
    }
    columns(&rows, out);
    let pr = |k: &str| p.priors.get(k).copied().flatten();
    let _ = writeln!(
        out,
        "chance: UQ AUROC 0.500 (fewer-steps prior {}) | BoN random pick {}, pass@N {} | FA last action {}, first action {}, most common step (CV) {}",
        f(pr("uq_fewer_steps_auroc"), 3),
        f(pr("bon_random"), 3),
        f(pr("bon_oracle"), 3),
        f(pr("fa_last_action"), 3),
        f(pr("fa_first_action"), 3),
        f(pr("fa_most_common_step_cv"), 3),
    );
    let _ = writeln!(
        out,
        "theory: step PA = β·Σ log π/π_ref vs A_soft ρ {} (within trajectories {}), vs A* ρ {}; step log-prob vs A_soft ρ {}; ρ(A_soft, A*) {} (a perfect soft judge's ceiling against A*)",
        f(p.step_pa_vs_soft.spearman_pooled, 3),
        f(p.step_pa_vs_soft.spearman_within_mean, 3),
        f(p.step_pa_vs_hard.spearman_pooled, 3),
        f(p.step_logprob_vs_soft.spearman_pooled, 3),
        f(p.rho_soft_hard, 3),
    );
    let cells: Vec<String> = p
        .methods
        .iter()
        .map(|(m, r)| format!("{m}: {} | {} | {}", r.uq.cell, r.bon.cell, r.fa.cell))
        .collect();
    let _ = writeln!(
        out,
        "headline cells (UQ | BoN | FA), each chosen by its own 5-fold CV:"
    );
    for c in cells {
        let _ = writeln!(out, "  {c}");
    }
}

/// The warning printed when the pair's policy is its reference (RL not run, or no iterate
/// kept).
pub(crate) const POLICY_IS_REFERENCE: &str = "NOTE: this pair's policy is its reference, byte for byte (RL has not run, or no RL iterate came closer to the optimum: see the pair's manifest): PA is 0 on every action of the policy and reference players, whose PA rows mean nothing; the oracle rows are the test of the method";

/// Formats the summary as the text report `padv demo` prints.
pub fn print_table(s: &DemoSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "padv demo: {} actions | held-out maps: {} x {} rollouts | size {} slip {} beta {} | seed {}",
        s.setup["style"].as_str().unwrap_or("?"),
        s.setup["held_out_maps"],
        s.setup["samples_per_map"],
        s.setup["map_size"],
        s.setup["slip"],
        s.setup["beta"],
        s.setup["seed"],
    );
    if s.setup["policy_is_reference"].as_bool() == Some(true) {
        let _ = writeln!(out, "{POLICY_IS_REFERENCE}");
    }
    let st = &s.soft_truth;
    let _ = writeln!(
        out,
        "soft truth: the reference measured after one canonical history per state ({} states, {} tokens of histories, {} computed); at the players' own histories π_ref(·|h) differs from it by TV {} on average (p90 {}), |V_h − V(s)| {}",
        st.cost.states,
        st.cost.tokens,
        st.cost.computed_tokens,
        f(Some(st.gap.mean_tv), 4),
        f(Some(st.gap.p90_tv), 4),
        f(Some(st.gap.mean_abs_value_gap), 4),
    );
    let _ = writeln!(
        out,
        "oracle identity |β·log π_o/π_ref − A_soft|: max {:.1e} over {} actions (f64, as sampled); {:.1e} from its f32 records",
        st.oracle_identity_max_error, st.oracle_identity_actions, st.oracle_record_identity_max_error,
    );
    let _ = writeln!(
        out,
        "optimum: mean V*(s0) {} (hard, success probability), soft V(s0) {}",
        f(s.optimum.get("mean_hard_v_star_s0").copied(), 3),
        f(s.optimum.get("mean_soft_v_s0").copied(), 3),
    );
    for p in Player::ALL {
        if let Some(ps) = s.players.get(p.name()) {
            player_block(p.name(), ps, &s.setup["samples_per_map"], &mut out);
        }
    }
    let t = &s.timings;
    let _ = writeln!(
        out,
        "\ntime: projection {:.1} s (beside the rollouts), projection + rollouts {:.1} s, soft truth {:.1} s and scoring {:.1} s (side by side), evaluation {:.1} s, total {:.1} s",
        t.projection_s, t.rollout_s, t.soft_truth_s, t.score_s, t.eval_s, t.total_s
    );
    out
}
