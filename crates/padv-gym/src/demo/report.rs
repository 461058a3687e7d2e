//! The demo's compact human-readable table.

use super::eval::DemoSummary;

fn f(x: Option<f64>) -> String {
    x.map_or_else(|| "   -  ".into(), |v| format!("{v:6.3}"))
}

/// Formats the summary as a short text report (what `padv demo` prints).
pub fn print_table(s: &DemoSummary) -> String {
    let mut out = String::new();
    let g = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_f64());
    out.push_str(&format!(
        "held-out maps: {} x {} rollouts | size {} slip {} beta {}\n",
        s.setup["held_out_maps"],
        s.setup["samples_per_map"],
        s.setup["map_size"],
        s.setup["slip"],
        s.setup["beta"],
    ));
    out.push_str(&format!(
        "success: policy {} | reference {} | optimal V*(s0) {}\n",
        f(g(&s.success, "policy")),
        f(g(&s.success, "reference")),
        f(g(&s.success, "optimal_mean_v_star")),
    ));
    out.push_str(&format!(
        "failures: {} ({} with a decisive mistake, {} bad luck only) | mean steps {} | mean action tokens {}\n\n",
        s.ground_truth["failures"],
        s.ground_truth["failures_with_decisive_mistake"],
        s.ground_truth["failures_bad_luck_only"],
        f(g(&s.lengths, "mean_steps")),
        f(g(&s.lengths, "mean_action_tokens")),
    ));
    out.push_str(&format!(
        "{:<18} {:>7} {:>15} {:>7} {:>7} {:>7} {:>7} {:>7}  {}\n",
        "method",
        "AUROC",
        "95% CI",
        "CV-AUC",
        "BoN",
        "FA-cum",
        "rho A*",
        "rho len",
        "headline cell"
    ));
    out.push_str(&format!(
        "{:<18} {:>7} {:>15} {:>7} {:>7} {:>7} {:>7} {:>7}\n",
        "(better)", "high", "", "high", "high", "high", "high", "~0"
    ));
    for (name, m) in &s.methods {
        let ci =
            m.uq.auroc_ci
                .map_or_else(|| "-".into(), |[a, b]| format!("[{a:.3},{b:.3}]"));
        let fa = m.fa.get("min_cumulative").and_then(|x| x.accuracy);
        out.push_str(&format!(
            "{:<18} {} {:>15} {} {} {} {} {}  {}\n",
            name,
            f(m.uq.auroc),
            ci,
            f(m.uq.cv_heldout_auroc),
            f(Some(m.bon.bon_success_rate)),
            f(fa),
            f(m.theory.spearman_pa_vs_true_advantage),
            f(m.spearman_with_steps),
            m.headline
        ));
    }
    let bon = s
        .methods
        .values()
        .next()
        .map(|m| (m.bon.mean_at_n, m.bon.pass_at_n_oracle));
    out.push_str(&format!(
        "\nchance: AUROC 0.500 | fewer-steps prior AUROC {} | BoN random {} oracle {} | FA most-common-step {} last-step {}\n",
        f(g(&s.priors, "uq_fewer_steps_auroc")),
        f(bon.map(|b| b.0)),
        f(bon.map(|b| b.1)),
        f(g(&s.priors, "fa_most_common_step_accuracy")),
        f(g(&s.priors, "fa_last_step_accuracy")),
    ));
    out.push_str(&format!(
        "theory: Spearman(step PA = beta*log pi/pi_ref of the action, A*) = {} over {} steps\n",
        f(g(&s.theory, "spearman_step_pa_vs_true_advantage")),
        s.theory["alignment"]["n_steps"],
    ));
    out.push_str(&format!(
        "time: rollouts {:.1} s, scoring {:.1} s, total {:.1} s\n",
        s.timings.rollout_s, s.timings.score_s, s.timings.total_s
    ));
    out
}
