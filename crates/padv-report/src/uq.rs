//! The uncertainty-quantification section: ROC curves of every method's headline cell,
//! score distributions of successes and failures, held-out reliability diagrams, and the
//! numbers (AUROC with CI, cross-validated AUROC, Brier, log-loss, ECE).

use maud::{html, Markup};
use padv_core::eval::calibration::CalibrationMetrics;
use padv_core::eval::report::UqMethod;
use padv_core::is_success_reward;

use crate::colors;
use crate::page::{figure, legend, method_cell, note, num_cell};
use crate::plots::{line_chart, two_histograms, LineChart, Mark, Series, Stroke};
use crate::text::num;
use crate::{Ctx, ReportError};

/// Most points drawn per ROC curve; denser curves are thinned evenly (the curve is
/// monotone, so the shape is kept to within 1/400 of the axis).
const MAX_ROC_POINTS: usize = 400;

pub(crate) fn section(ctx: &Ctx<'_>) -> Result<Markup, ReportError> {
    let Some((report, uq)) = ctx.uq else {
        return Ok(html! {
            section #uq { h2 { "Uncertainty quantification" } (note("not evaluated (no UQ report given)")) }
        });
    };
    let labels = ctx.table.labels();
    // Charts need both classes; otherwise the table's dashes and the note say it all.
    let two_classes = uq.n_pos > 0 && uq.n_pos < uq.n_labelled;
    let mut roc = LineChart::new(
        (600, 540),
        (0.0, 1.0),
        (0.0, 1.0),
        "false positive rate",
        "true positive rate",
    );
    roc.series.push(Series {
        label: Some("chance (AUROC 0.5)".into()),
        color: colors::CHANCE,
        points: vec![(0.0, 0.0), (1.0, 1.0)],
        stroke: Stroke::Dashed,
    });
    let mut distributions = Vec::new();
    for m in &uq.methods {
        let Some(spec) = uq.headline_spec(m.method) else {
            continue;
        };
        let scores = ctx.table.trajectory_scores(&spec)?;
        let color = colors::method(m.method);
        if let Some(points) = roc_points(&scores, labels) {
            let h = &m.headline;
            let ci = h
                .result
                .auroc_ci
                .map_or(String::new(), |c| format!(" [{:.3}, {:.3}]", c.low, c.high));
            roc.series.push(Series {
                label: Some(format!("{} {}{ci}", m.method, num(h.result.auroc))),
                color,
                points,
                stroke: Stroke::Line {
                    width: if m.method == padv_core::score::Method::Pa {
                        3
                    } else {
                        2
                    },
                    dots: false,
                },
            });
        }
        let (mut pos, mut neg) = (Vec::new(), Vec::new());
        for (s, l) in scores.iter().zip(labels) {
            if let (Some(s), Some(l)) = (s, l) {
                if s.is_finite() {
                    if is_success_reward(*l) {
                        pos.push(*s)
                    } else {
                        neg.push(*s)
                    }
                }
            }
        }
        if !pos.is_empty() || !neg.is_empty() {
            let plot = two_histograms(
                (370, 250),
                ("successes", colors::SUCCESS, &pos),
                ("failures", colors::FAILURE, &neg),
                30,
                &format!("{} score", m.method),
            )?;
            let swatch = |c| format!("--c:{}", colors::hex(c));
            distributions.push(figure(&plot, html! {
                strong { (m.method) } " — " (m.headline.label) ": "
                span.swatch style=(swatch(colors::SUCCESS)) {} "successes (" (pos.len()) ") "
                span.swatch style=(swatch(colors::FAILURE)) {} "failures (" (neg.len()) "), each as a fraction of its class"
            }));
        }
    }
    let has_roc = roc.series.len() > 1;
    let roc_plot = if has_roc {
        Some(line_chart(&roc)?)
    } else {
        None
    };
    let reliability = reliability_figures(&uq.methods)?;
    let s = &uq.calibration_settings;
    Ok(html! {
        section #uq {
            h2 { "Uncertainty quantification: does the score predict success?" }
            p {
                (uq.n_labelled) " labelled records, " (uq.n_pos) " successes (base rate "
                (num((uq.n_labelled > 0).then(|| uq.n_pos as f64 / uq.n_labelled as f64))) "). "
                "Each method is shown with its headline cell (" (headline_rule(report)) "). "
                "Chance: AUROC 0.5; Brier and log-loss of always predicting the base rate are in the header."
            }
            @if let Some(n) = &report.note { (note(n)) }
            (summary_table(&uq.methods))
            @for (method, n) in uq.calibration_notes() {
                p.muted { "calibration" @if let Some(m) = method { " of " (m) } @else { " (every method)" } ": " (n) }
            }
            @if two_classes {
            div.pair {
                @if let Some(p) = &roc_plot {
                    (figure(p, html! { "ROC curves of each method's headline cell on all labelled records. Further up and left is better." }))
                } @else {
                    (note("no ROC curve: both successes and failures are needed"))
                }
                div {
                    h3 { "Legend: method, AUROC [95 % bootstrap CI]" }
                    (legend(&roc.series))
                    h3 { "Calibration (held-out)" }
                    p.muted {
                        "Score → P(success) maps fitted on " (s.folds.saturating_sub(1)) " of " (s.folds)
                        " folds and applied to the held-out fold (" (s.cells) "). Platt: " (s.platt)
                        ". Isotonic: " (s.isotonic) ". Log-loss clips p to [" (format!("{:e}", s.log_loss_eps)) ", 1 − "
                        (format!("{:e}", s.log_loss_eps)) "]; ECE over " (s.ece_bins) " equal-width bins of p (closed on the right). Lower is better for all three."
                    }
                }
            }
            h3 { "Score distributions: successes vs failures" }
            div.cols3 { @for d in &distributions { (d) } }
            h3 { "Reliability diagrams (held-out predictions)" }
            div.cols3 { (reliability) }
            }
        }
    })
}

fn headline_rule(report: &padv_core::eval::EvalReport) -> String {
    if report.config.grid {
        format!(
            "the token × step aggregation chosen by {}-fold cross-validation of AUROC",
            report.config.folds
        )
    } else {
        format!("the one cell evaluated, {}", report.config.spec.label())
    }
}

fn summary_table(methods: &[UqMethod]) -> Markup {
    let metric = |c: Option<&CalibrationMetrics>, f: fn(&CalibrationMetrics) -> f64| c.map(f);
    html! {
        table.sortable {
            thead { tr {
                th { "method" } th { "headline cell" } th { "AUROC ↑" } th { "95 % CI" } th { "CV AUROC ↑" }
                th { "AUPRC ↑" } th { "Brier Platt ↓" } th { "Brier iso ↓" } th { "log-loss Platt ↓" }
                th { "log-loss iso ↓" } th { "ECE Platt ↓" } th { "ECE iso ↓" } th { "n" }
            } }
            tbody {
                @for m in methods {
                    @let h = &m.headline;
                    @let (p, i) = (m.calibration.platt.as_ref(), m.calibration.isotonic.as_ref());
                    tr {
                        (method_cell(m.method))
                        td.mono { (h.label) }
                        (num_cell(h.result.auroc))
                        td.n { (h.result.auroc_ci.map_or("–".to_string(), |c| format!("[{:.3}, {:.3}]", c.low, c.high))) }
                        (num_cell(h.cv_auroc))
                        (num_cell(h.result.auprc))
                        (num_cell(metric(p, |x| x.brier)))
                        (num_cell(metric(i, |x| x.brier)))
                        (num_cell(metric(p, |x| x.log_loss)))
                        (num_cell(metric(i, |x| x.log_loss)))
                        (num_cell(metric(p, |x| x.ece)))
                        (num_cell(metric(i, |x| x.ece)))
                        td.n { (h.result.n) }
                    }
                }
            }
        }
    }
}

fn reliability_figures(methods: &[UqMethod]) -> Result<Markup, ReportError> {
    let mut out = Vec::new();
    for m in methods {
        let (Some(p), Some(i)) = (&m.calibration.platt, &m.calibration.isotonic) else {
            continue;
        };
        let mut c = LineChart::new(
            (370, 300),
            (0.0, 1.0),
            (0.0, 1.0),
            "predicted P(success)",
            "observed success rate",
        );
        c.series.push(Series {
            label: Some("perfect calibration".into()),
            color: colors::CHANCE,
            points: vec![(0.0, 0.0), (1.0, 1.0)],
            stroke: Stroke::Dashed,
        });
        for (name, metrics, dark) in [("Platt", p, false), ("isotonic", i, true)] {
            let mut color = colors::method(m.method);
            if dark {
                color = plotters::style::RGBColor(color.0 / 2, color.1 / 2, color.2 / 2);
            }
            let points: Vec<(f64, f64)> = metrics
                .reliability
                .iter()
                .filter_map(|b| Some((b.mean_predicted?, b.success_rate?)))
                .collect();
            // Dot area in proportion to the bin's predictions: a bin of 3 weighs little.
            let most = metrics
                .reliability
                .iter()
                .map(|b| b.n)
                .max()
                .unwrap_or(1)
                .max(1);
            for b in &metrics.reliability {
                if let (Some(x), Some(y)) = (b.mean_predicted, b.success_rate) {
                    let radius = 2 + (9.0 * (b.n as f64 / most as f64).sqrt()).round() as u32;
                    c.marks.push(Mark::Dot {
                        x,
                        y,
                        radius,
                        color,
                    });
                }
            }
            c.series.push(Series {
                label: Some(format!(
                    "{name}: Brier {:.3}, ECE {:.3}",
                    metrics.brier, metrics.ece
                )),
                color,
                points,
                stroke: Stroke::Line {
                    width: 2,
                    dots: true,
                },
            });
        }
        let plot = line_chart(&c)?;
        out.push(figure(&plot, html! {
            strong { (m.method) } " — " (m.calibration.n) " held-out predictions; a dot per non-empty bin of 10 at (mean prediction, success rate), its area in proportion to the bin's predictions"
            (legend(&c.series))
        }));
    }
    Ok(html! {
        @for f in &out { (f) }
        @if out.is_empty() { (note("no reliability diagram: calibration could not be evaluated (see the notes above)")) }
    })
}

/// ROC points `(FPR, TPR)` from (0, 0) to (1, 1) over the labelled records with a finite
/// score, tied scores entering together (a diagonal segment); `None` without both classes.
pub(crate) fn roc_points(
    scores: &[Option<f64>],
    labels: &[Option<f64>],
) -> Option<Vec<(f64, f64)>> {
    let mut pairs: Vec<(f64, bool)> = scores
        .iter()
        .zip(labels)
        .filter_map(|(s, l)| match (s, l) {
            (Some(s), Some(l)) if s.is_finite() => Some((*s, is_success_reward(*l))),
            _ => None,
        })
        .collect();
    let n_pos = pairs.iter().filter(|p| p.1).count();
    let n_neg = pairs.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut points = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut i = 0;
    while i < pairs.len() {
        let s = pairs[i].0;
        while i < pairs.len() && pairs[i].0 == s {
            if pairs[i].1 {
                tp += 1
            } else {
                fp += 1
            }
            i += 1;
        }
        points.push((fp as f64 / n_neg as f64, tp as f64 / n_pos as f64));
    }
    Some(thin(points, MAX_ROC_POINTS))
}

/// At most `max` points, evenly spaced along the sequence, first and last kept.
fn thin(points: Vec<(f64, f64)>, max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max < 2 {
        return points;
    }
    let last = points.len() - 1;
    (0..max).map(|j| points[j * last / (max - 1)]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roc_by_hand_with_a_tie() {
        // scores 3 (pos), 2 (neg), 2 (pos), 1 (neg): thresholds 3 -> (0, 1/2); 2 -> (1/2, 1)
        // (the tie enters together); 1 -> (1, 1).
        let p = roc_points(
            &[Some(3.0), Some(2.0), Some(2.0), Some(1.0)],
            &[Some(1.0), Some(0.0), Some(1.0), Some(0.0)],
        )
        .unwrap();
        assert_eq!(p, vec![(0.0, 0.0), (0.0, 0.5), (0.5, 1.0), (1.0, 1.0)]);
        assert!(roc_points(&[Some(1.0)], &[Some(1.0)]).is_none());
    }

    #[test]
    fn thinning_keeps_the_ends() {
        let pts: Vec<(f64, f64)> = (0..1000).map(|i| (i as f64, i as f64)).collect();
        let t = thin(pts, 400);
        assert_eq!(t.len(), 400);
        assert_eq!((t[0], t[399]), ((0.0, 0.0), (999.0, 999.0)));
    }
}
