//! Plain-text rendering of an [`EvalReport`] (no colour: the caller decides).
//!
//! Every table states the chance level, which direction is better, intervals and `n`, so a
//! number is never read without its yardstick; "nothing to evaluate" is written out.

use std::fmt::Write;

use super::common::{fmt_ci, fmt_opt};
use super::{BonReport, EvalReport, FaReport, ReportBody, Selection, UqReport};
use crate::judge::JudgeName;
use crate::score::{Method, MethodGroup};

/// A method row's name: the method, or `judge:NAME`.
fn row_name(method: Method, judge: Option<JudgeName>) -> String {
    MethodGroup { method, judge }.name()
}

impl EvalReport {
    /// A compact, plain-text table of the report (no colour, no trailing spaces).
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let what = if self.config.grid {
            format!("grid of {} cells", self.cells)
        } else {
            format!("score {}", self.config.spec.label())
        };
        let _ = writeln!(
            out,
            "{} evaluation: {} records, {what}, β = {}",
            self.evaluation.name(),
            self.records,
            self.config.spec.beta
        );
        let better: Vec<String> = self.better.iter().map(|d| d.arrow()).collect();
        let _ = writeln!(out, "better: {}", better.join(", "));
        let chance: Vec<String> = self
            .chance
            .iter()
            .map(|c| format!("{} = {} ({})", c.metric, fmt_opt(c.value, 3), c.meaning))
            .collect();
        let _ = writeln!(out, "chance: {}", chance.join("; "));
        if self.config.grid {
            let _ = writeln!(
                out,
                "headline per method: the aggregation chosen by {}-fold cross-validation \
                 (CV = held-out value of each fold's own choice); best-in-grid is tuned on \
                 these records (optimistic)",
                self.config.folds
            );
        }
        for (m, why) in &self.skipped_methods {
            let _ = writeln!(out, "skipped {m}: {why}");
        }
        if let Some(note) = &self.note {
            let _ = writeln!(out, "NOTE: {note}");
        }
        out.push('\n');
        match &self.results {
            ReportBody::Uq(r) => uq_table(r, &mut out),
            ReportBody::Bon(r) => bon_table(r, &mut out),
            ReportBody::Fa(r) => fa_table(r, &mut out),
        }
        out
    }
}

fn chosen(sel: Selection, n: Option<usize>, folds: usize) -> String {
    match (sel, n) {
        (Selection::CrossValidated, Some(n)) => format!("{n}/{folds} folds"),
        _ => "given".to_string(),
    }
}

fn uq_table(r: &UqReport, out: &mut String) {
    let _ = writeln!(
        out,
        "{} labelled records, {} successes (base rate {})",
        r.n_labelled,
        r.n_pos,
        fmt_opt(
            (r.n_labelled > 0).then(|| r.n_pos as f64 / r.n_labelled as f64),
            3
        )
    );
    let mut rows = vec![vec![
        "method".to_string(),
        "headline cell".to_string(),
        "chosen".to_string(),
        "CV AUROC".to_string(),
        "AUROC".to_string(),
        "95% CI".to_string(),
        "AUPRC".to_string(),
        "Spearman".to_string(),
        "n".to_string(),
        "best in grid (optimistic)".to_string(),
    ]];
    for m in &r.methods {
        let h = &m.headline;
        rows.push(vec![
            row_name(m.method, m.judge),
            h.label.clone(),
            chosen(h.selection, h.chosen_in_folds, h.folds),
            fmt_opt(h.cv_auroc, 3),
            fmt_opt(h.result.auroc, 3),
            fmt_ci(h.result.auroc_ci.as_ref(), 3),
            fmt_opt(h.result.auprc, 3),
            fmt_opt(h.result.spearman, 3),
            h.result.n.to_string(),
            m.best_in_grid_optimistic
                .as_ref()
                .map_or_else(String::new, |b| format!("{} {:.3}", b.label, b.auroc)),
        ]);
    }
    align(&rows, out);
    calibration_table(r, out);
}

/// The held-out calibration block: Brier, log-loss and ECE of both maps next to AUROC.
fn calibration_table(r: &UqReport, out: &mut String) {
    let s = &r.calibration_settings;
    let _ = writeln!(
        out,
        "\ncalibration: score -> P(success) maps fitted on the other {} folds, judged on the \
         held-out fold (pooled); Platt = logistic on the standardised score (C = 1), isotonic = \
         PAV; log-loss clips p to [{:e}, 1 - {:e}]; ECE over {} equal-width bins of p",
        s.folds.saturating_sub(1),
        s.log_loss_eps,
        s.log_loss_eps,
        s.ece_bins
    );
    let mut rows = vec![vec![
        "method".to_string(),
        "AUROC".to_string(),
        "CV AUROC".to_string(),
        "Brier Platt".to_string(),
        "Brier iso".to_string(),
        "log-loss Platt".to_string(),
        "log-loss iso".to_string(),
        "ECE Platt".to_string(),
        "ECE iso".to_string(),
        "n".to_string(),
    ]];
    for m in &r.methods {
        let c = &m.calibration;
        let (p, i) = (c.platt.as_ref(), c.isotonic.as_ref());
        rows.push(vec![
            m.method.to_string(),
            fmt_opt(m.headline.result.auroc, 3),
            fmt_opt(m.headline.cv_auroc, 3),
            fmt_opt(p.map(|x| x.brier), 3),
            fmt_opt(i.map(|x| x.brier), 3),
            fmt_opt(p.map(|x| x.log_loss), 3),
            fmt_opt(i.map(|x| x.log_loss), 3),
            fmt_opt(p.map(|x| x.ece), 3),
            fmt_opt(i.map(|x| x.ece), 3),
            c.n.to_string(),
        ]);
    }
    align(&rows, out);
    for (method, note) in r.calibration_notes() {
        match method {
            Some(m) => writeln!(out, "calibration NOTE {m}: {note}"),
            None => writeln!(out, "calibration NOTE (every method): {note}"),
        }
        .ok();
    }
}

fn bon_table(r: &BonReport, out: &mut String) {
    let _ = writeln!(
        out,
        "{} tasks ({} with a real choice: ≥ 2 rollouts, different outcomes), {} rollouts; \
         random pick: success {}, mean reward {} (Mean@N, as the reference implementation \
         defines it); oracle (Pass@N) = {}",
        r.n_tasks,
        r.n_tasks_with_choice,
        r.n_rollouts,
        fmt_opt(r.random_pick_success_rate, 3),
        fmt_opt(r.random_pick_mean_reward, 3),
        fmt_opt(r.pass_at_n, 3)
    );
    let mut rows = vec![vec![
        "method".to_string(),
        "headline cell".to_string(),
        "chosen".to_string(),
        "CV success".to_string(),
        "95% CI".to_string(),
        "success".to_string(),
        "95% CI".to_string(),
        "mean reward".to_string(),
        "BoN@k (k = 1, 2, ...)".to_string(),
        "best in grid (optimistic)".to_string(),
    ]];
    for m in &r.methods {
        let h = &m.headline;
        let curve: Vec<String> = h
            .cell
            .bon_at_k
            .iter()
            .map(|p| format!("{}:{:.3}", p.k, p.value))
            .collect();
        rows.push(vec![
            row_name(m.method, m.judge),
            h.cell.label.clone(),
            chosen(h.selection, h.chosen_in_folds, h.folds),
            fmt_opt(h.cv_success_rate, 3),
            fmt_ci(h.cv_success_ci.as_ref(), 3),
            fmt_opt(h.cell.success_rate, 3),
            fmt_ci(h.cell.success_ci.as_ref(), 3),
            fmt_opt(h.cell.mean_reward, 3),
            curve.join(" "),
            m.best_in_grid_optimistic
                .as_ref()
                .map_or_else(String::new, |b| {
                    format!("{} {}", b.label, fmt_opt(b.success_rate, 3))
                }),
        ]);
    }
    align(&rows, out);
}

fn fa_table(r: &FaReport, out: &mut String) {
    let _ = writeln!(
        out,
        "{} annotated records ({} without a mistake_step, not evaluated)",
        r.n_annotated, r.n_no_mistake
    );
    let mut rows = vec![vec![
        "method / prior".to_string(),
        "headline cell".to_string(),
        "predictor".to_string(),
        "chosen".to_string(),
        "CV acc".to_string(),
        "95% CI".to_string(),
        "CV MAE".to_string(),
        "accuracy".to_string(),
        "95% CI".to_string(),
        "±1".to_string(),
        "±2".to_string(),
        "MAE".to_string(),
        "n".to_string(),
        "best in grid (optimistic)".to_string(),
    ]];
    for p in &r.priors {
        let m = &p.metrics;
        rows.push(vec![
            format!("prior{}", if p.optimistic { " (optimistic)" } else { "" }),
            String::new(),
            m.predictor.clone(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            fmt_opt(m.accuracy, 3),
            String::new(),
            fmt_opt(m.acc_within_1, 3),
            fmt_opt(m.acc_within_2, 3),
            fmt_opt(m.mae, 2),
            m.n.to_string(),
            String::new(),
        ]);
    }
    for m in &r.methods {
        let h = &m.headline;
        rows.push(vec![
            row_name(m.method, m.judge),
            h.label.clone(),
            h.metrics.predictor.clone(),
            chosen(h.selection, h.chosen_in_folds, h.folds),
            match &h.same_as_prior {
                Some(p) => format!("{} (= {p} prior)", fmt_opt(h.cv_accuracy, 3)),
                None => fmt_opt(h.cv_accuracy, 3),
            },
            fmt_ci(h.cv_accuracy_ci.as_ref(), 3),
            fmt_opt(h.cv_mae, 2),
            fmt_opt(h.metrics.accuracy, 3),
            fmt_ci(h.accuracy_ci.as_ref(), 3),
            fmt_opt(h.metrics.acc_within_1, 3),
            fmt_opt(h.metrics.acc_within_2, 3),
            fmt_opt(h.metrics.mae, 2),
            h.metrics.n.to_string(),
            m.best_in_grid_optimistic
                .as_ref()
                .map_or_else(String::new, |b| {
                    format!(
                        "{} {} {}",
                        b.label,
                        b.metrics.predictor,
                        fmt_opt(b.metrics.accuracy, 3)
                    )
                }),
        ]);
    }
    align(&rows, out);
}

/// Left-aligned columns separated by two spaces, widths in characters; columns that are
/// empty in every data row are dropped.
fn align(rows: &[Vec<String>], out: &mut String) {
    let n_cols = rows.first().map_or(0, Vec::len);
    let keep: Vec<usize> = (0..n_cols)
        .filter(|&c| {
            rows.iter()
                .skip(1)
                .any(|r| r.get(c).is_some_and(|s| !s.is_empty()))
        })
        .collect();
    let width = |c: usize| {
        rows.iter()
            .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = keep.iter().map(|&c| width(c)).collect();
    for r in rows {
        let mut line = String::new();
        for (k, &c) in keep.iter().enumerate() {
            let cell = r.get(c).map_or("", String::as_str);
            if k > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = widths[k].saturating_sub(cell.chars().count());
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}
