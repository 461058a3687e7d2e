//! The failure-attribution section: per trajectory, the step-score trace of PA and of the
//! best baseline with the predicted and the annotated mistake step, a sortable table of the
//! trajectories linking to each trace, and (with trajectories) each step's text.

use std::collections::HashMap;
use std::str::FromStr;

use maud::{html, Markup};
use padv_core::eval::report::FaMethod;
use padv_core::eval::FaPredictor;
use padv_core::rng::SplitMix64;
use padv_core::score::{Method, ScoreSpec, Scorer};
use padv_core::{is_success_reward, Trajectory};
use plotters::style::RGBColor;

use crate::colors;
use crate::page::{figure, int_cell, method_cell, note, num_cell};
use crate::plots::{stacked, LineChart, Mark, Series, Stroke};
use crate::text::{clean, clean_cut, score};
use crate::{Ctx, ReportError};

/// Traces with more steps than this are drawn without a dot per step.
const MAX_DOTTED_STEPS: usize = 30;

/// A method whose step scores are traced, with the predictor that turns them into a step.
struct Traced {
    method: Method,
    spec: ScoreSpec,
    predictor: FaPredictor,
    color: RGBColor,
}

/// One method's trace of one trajectory.
struct Trace {
    /// `(message_index, score)` of each scored step.
    steps: Vec<(usize, f64)>,
    /// The step its predictor picks.
    predicted: Option<usize>,
}

/// One traced trajectory.
struct Row {
    record: usize,
    gold: Option<usize>,
    /// One trace per traced method.
    steps: Vec<Trace>,
}

pub(crate) fn section(ctx: &Ctx<'_>, max_traces: usize) -> Result<Markup, ReportError> {
    let traced = traced_methods(ctx);
    let fa_intro = fa_summary(ctx);
    if traced.is_empty() {
        return Ok(html! {
            section #fa { h2 { "Failure attribution" } (fa_intro) (note("no step traces: neither a failure-attribution nor a UQ report was given")) }
        });
    }
    let scorers: Vec<Scorer<'_>> = traced
        .iter()
        .map(|t| ctx.table.scorer(&t.spec))
        .collect::<Result<_, _>>()?;
    let (candidates, annotated) = candidates(ctx, &scorers[0]);
    let sample = sample(&candidates, max_traces, ctx.opts.seed);
    let rows: Vec<Row> = sample
        .iter()
        .map(|&r| Row {
            record: r,
            gold: ctx.table.mistake_steps()[r],
            steps: traced
                .iter()
                .zip(&scorers)
                .map(|(t, s)| {
                    let steps = s.step_scores(r);
                    let predicted = t.predictor.predict(&steps);
                    Trace { steps, predicted }
                })
                .collect(),
        })
        .collect();
    let by_id: HashMap<&str, &Trajectory> = ctx
        .input
        .trajectories
        .iter()
        .map(|t| (t.id.as_str(), t))
        .collect();
    let mut traces = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        traces.push(trace(
            ctx,
            i,
            row,
            &traced,
            by_id.get(ctx.table.ids()[row.record].as_str()).copied(),
        )?);
    }
    let what = if annotated {
        "failed trajectories with an annotated mistake step"
    } else {
        "failed trajectories (no record has an annotated mistake step: only the predicted step is marked)"
    };
    let names: Vec<String> = traced
        .iter()
        .map(|t| format!("{} ({}, {})", t.method, t.spec.label(), t.predictor))
        .collect();
    Ok(html! {
        section #fa {
            h2 { "Failure attribution: where does the trajectory go wrong?" }
            (fa_intro)
            h3 #fa-table { "Trajectories" }
            p {
                "Traced: " (names.join(" and ")) ". "
                @if sample.len() < candidates.len() {
                    strong { "Traces for a seeded random sample of " (sample.len()) " of the " (candidates.len()) " " (what) " (at most " (ctx.opts.max_traces) ", fewer when the page would pass " (format!("{:.1}", ctx.opts.max_bytes as f64 / 1e6)) " MB); the table lists the same sample." }
                } @else {
                    "Traces for all " (candidates.len()) " " (what) "."
                }
                @if ctx.input.trajectories.is_empty() { " Step texts: not shown (give the trajectory files to show them under each trace)." }
                " Click a column to sort; the id links to the trace."
            }
            @if rows.is_empty() {
                (note("nothing to trace: no failed trajectory with a scored step"))
            } @else {
                div.scroll { (table(ctx, &rows, &traced)) }
            }
            @for t in &traces { (t) }
        }
    })
}

/// PA (or the first method) and the best baseline: from the FA report's cross-validated
/// headlines when given, else from the UQ report's headline cells with `min_cumulative`.
fn traced_methods(ctx: &Ctx<'_>) -> Vec<Traced> {
    let mut out: Vec<Traced> = Vec::new();
    if let Some((_, fa)) = ctx.fa {
        let to_traced = |m: &FaMethod| -> Option<Traced> {
            let spec = fa.cells.iter().find(|c| c.label == m.headline.label)?.spec;
            Some(Traced {
                method: m.method,
                spec,
                predictor: FaPredictor::from_str(&m.headline.metrics.predictor)
                    .unwrap_or(FaPredictor::MinCumulative),
                color: colors::method(m.method),
            })
        };
        let primary = fa
            .methods
            .iter()
            .find(|m| m.method == Method::Pa)
            .or(fa.methods.first());
        if let Some(p) = primary.and_then(to_traced) {
            let key = |m: &FaMethod| {
                (
                    m.headline
                        .cv_accuracy
                        .or(m.headline.metrics.accuracy)
                        .unwrap_or(-1.0),
                    -m.headline.metrics.mae.unwrap_or(f64::INFINITY),
                )
            };
            let base = fa.methods.iter().filter(|m| m.method != p.method).fold(
                None::<&FaMethod>,
                |best, m| match best {
                    Some(b) if key(b) >= key(m) => Some(b),
                    _ => Some(m),
                },
            );
            out.push(p);
            out.extend(base.and_then(to_traced));
        }
    } else if let Some((_, uq)) = ctx.uq {
        let spec_of = |m: Method| uq.headline_spec(m);
        let primary = uq
            .methods
            .iter()
            .find(|m| m.method == Method::Pa)
            .or(uq.methods.first());
        if let Some(p) = primary {
            let base = uq
                .methods
                .iter()
                .filter(|m| m.method != p.method)
                .max_by(|a, b| {
                    let k = |m: &&padv_core::eval::report::UqMethod| {
                        m.headline
                            .cv_auroc
                            .or(m.headline.result.auroc)
                            .unwrap_or(-1.0)
                    };
                    k(a).total_cmp(&k(b))
                });
            for m in std::iter::once(p).chain(base) {
                if let Some(spec) = spec_of(m.method) {
                    out.push(Traced {
                        method: m.method,
                        spec,
                        predictor: FaPredictor::MinCumulative,
                        color: colors::method(m.method),
                    });
                }
            }
        }
    }
    out
}

/// Records worth a trace: annotated ones with a scored step; without any annotation, the
/// labelled failures with a scored step. Also says which of the two it is.
fn candidates(ctx: &Ctx<'_>, scorer: &Scorer<'_>) -> (Vec<usize>, bool) {
    let has_steps = |r: usize| !scorer.step_scores(r).is_empty();
    let annotated: Vec<usize> = (0..ctx.table.len())
        .filter(|&r| ctx.table.mistake_steps()[r].is_some() && has_steps(r))
        .collect();
    if !annotated.is_empty() {
        return (annotated, true);
    }
    let failures = (0..ctx.table.len())
        .filter(|&r| ctx.table.labels()[r].is_some_and(|l| !is_success_reward(l)) && has_steps(r))
        .collect();
    (failures, false)
}

/// At most `max` of `items`: all of them, or a seeded random sample kept in input order.
fn sample(items: &[usize], max: usize, seed: u64) -> Vec<usize> {
    if items.len() <= max {
        return items.to_vec();
    }
    let mut shuffled = items.to_vec();
    SplitMix64::new(seed ^ 0x7ACE).shuffle(&mut shuffled);
    shuffled.truncate(max);
    shuffled.sort_unstable();
    shuffled
}

fn outcome(label: Option<f64>) -> String {
    match label {
        None => "unlabelled".to_string(),
        Some(r) if is_success_reward(r) => "success".to_string(),
        Some(0.0) => "failure".to_string(),
        Some(r) => format!("failure (reward {r})"),
    }
}

fn error(pred: Option<usize>, gold: Option<usize>) -> Option<usize> {
    Some(pred?.abs_diff(gold?))
}

fn table(ctx: &Ctx<'_>, rows: &[Row], traced: &[Traced]) -> Markup {
    html! {
        table.sortable #trajectories {
            thead { tr {
                th { "#" } th { "trajectory" } th { "outcome" } th { "steps" } th { "annotated step" }
                @for t in traced { th { (t.method) " predicted" } th { (t.method) " |error|" } }
            } }
            tbody {
                @for (i, row) in rows.iter().enumerate() {
                    tr data-trace=(format!("trace-{i}")) {
                        td.n { (i + 1) }
                        td.mono data-v=(clean(&ctx.table.ids()[row.record])) { a href=(format!("#trace-{i}")) { (clean(&ctx.table.ids()[row.record])) } }
                        td { (outcome(ctx.table.labels()[row.record])) }
                        td.n { (row.steps.first().map_or(0, |t| t.steps.len())) }
                        (int_cell(row.gold))
                        @for t in &row.steps {
                            (int_cell(t.predicted))
                            (int_cell(error(t.predicted, row.gold)))
                        }
                    }
                }
            }
        }
    }
}

fn trace(
    ctx: &Ctx<'_>,
    i: usize,
    row: &Row,
    traced: &[Traced],
    t: Option<&Trajectory>,
) -> Result<Markup, ReportError> {
    let all_x = row
        .steps
        .iter()
        .flat_map(|t| t.steps.iter().map(|p| p.0 as f64))
        .chain(row.gold.map(|g| g as f64));
    let (x0, x1) = all_x.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let charts: Vec<LineChart> = traced
        .iter()
        .zip(&row.steps)
        .map(
            |(
                tm,
                Trace {
                    steps,
                    predicted: pred,
                },
            )| {
                let ys = steps.iter().map(|p| p.1);
                let (y0, y1) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
                    (a.min(y), b.max(y))
                });
                let pad = ((y1 - y0) * 0.08).max(1e-6);
                let mut c = LineChart::new(
                    (760, 130),
                    (x0 - 0.5, x1 + 0.5),
                    (y0 - pad, y1 + pad),
                    "message index",
                    &format!("{} step score", tm.method),
                );
                c.x_integer = true;
                // A dot per step while they can be told apart; beyond, the line alone.
                let dots = steps.len() <= MAX_DOTTED_STEPS;
                c.series.push(Series {
                    label: None,
                    color: tm.color,
                    points: steps.iter().map(|&(m, v)| (m as f64, v)).collect(),
                    stroke: Stroke::Line { width: 2, dots },
                });
                if let Some(g) = row.gold {
                    c.marks.push(Mark::Vertical {
                        x: g as f64,
                        color: colors::ANNOTATED,
                    });
                }
                if let Some(p) = pred {
                    if let Some(&(_, v)) = steps.iter().find(|s| s.0 == *p) {
                        c.marks.push(Mark::Point {
                            x: *p as f64,
                            y: v,
                            color: tm.color,
                        });
                    }
                }
                c
            },
        )
        .collect();
    let plot = stacked(&charts, (760, 130 * charts.len() as u32))?;
    let id = clean(&ctx.table.ids()[row.record]);
    let preds: Vec<String> = traced
        .iter()
        .zip(&row.steps)
        .map(|(tm, Trace { predicted: p, .. })| {
            format!(
                "{} predicts {}",
                tm.method,
                p.map_or("–".to_string(), |p| p.to_string())
            )
        })
        .collect();
    let caption = html! {
        "Step scores by message index. "
        span style=(format!("color:{}", colors::hex(colors::ANNOTATED))) { "Dashed green: the annotated mistake step" }
        @if row.gold.is_none() { " (none annotated)" }
        "; large dot: the predicted step (" (preds.join(", ")) ")."
    };
    let step_rows: Vec<(usize, Vec<Option<f64>>)> = {
        let mut mis: Vec<usize> = row
            .steps
            .iter()
            .flat_map(|t| t.steps.iter().map(|p| p.0))
            .collect();
        mis.sort_unstable();
        mis.dedup();
        mis.into_iter()
            .map(|mi| {
                (
                    mi,
                    row.steps
                        .iter()
                        .map(|t| t.steps.iter().find(|p| p.0 == mi).map(|p| p.1))
                        .collect(),
                )
            })
            .collect()
    };
    let predicted: Vec<usize> = row.steps.iter().filter_map(|t| t.predicted).collect();
    Ok(html! {
        div.trace id=(format!("trace-{i}")) {
            h3 { a href="#fa-table" title="back to the table" { "↑" } " " span.mono { (id) } " — " (outcome(ctx.table.labels()[row.record])) ", annotated step " (row.gold.map_or("–".to_string(), |g| g.to_string())) }
            (figure(&plot, caption))
            @if let Some(t) = t {
                details {
                    summary { "step texts (" (step_rows.len()) " action steps)" }
                    @for (mi, scores) in &step_rows {
                        @let m = t.messages.get(*mi);
                        div class=(step_class(*mi, row.gold, &predicted)) {
                            strong { "message " (mi) }
                            @if let Some(m) = m { " · " (clean(&m.role)) @if let Some(n) = &m.name { " (" (clean(n)) ")" } }
                            @for (tm, s) in traced.iter().zip(scores) { " · " (tm.method) " " (score(*s)) }
                            @if Some(*mi) == row.gold { " · " strong { "annotated mistake" } }
                            @if predicted.contains(mi) { " · " strong { "predicted" } }
                            pre { (m.map_or("(message not in the trajectory file)".to_string(), |m| clean_cut(&message_text(m), ctx.opts.max_step_chars))) }
                        }
                    }
                }
            }
        }
    })
}

fn step_class(mi: usize, gold: Option<usize>, predicted: &[usize]) -> String {
    let mut c = "step".to_string();
    if Some(mi) == gold {
        c.push_str(" mistake");
    }
    if predicted.contains(&mi) {
        c.push_str(" predicted");
    }
    c
}

/// What a message says: its content, then one line per tool call.
fn message_text(m: &padv_core::Message) -> String {
    let mut s = m.content.clone().unwrap_or_default();
    for c in &m.tool_calls {
        if !s.is_empty() {
            s.push('\n');
        }
        s.push_str(&format!("tool_call({}, {})", c.name, c.arguments));
    }
    s
}

/// The FA numbers: chance priors and each method's cross-validated headline.
fn fa_summary(ctx: &Ctx<'_>) -> Markup {
    let Some((report, fa)) = ctx.fa else {
        return note("failure attribution not evaluated (no FA report given); traces below use the UQ headline cells and the min_cumulative predictor");
    };
    html! {
        p { (fa.n_annotated) " records with an annotated mistake step (" (fa.n_no_mistake) " without, not evaluated). Exact-step accuracy ↑, within ±1 ↑, MAE ↓ (messages)." }
        @if let Some(n) = &report.note { (note(n)) }
        table.sortable {
            thead { tr { th { "method / prior" } th { "headline cell" } th { "predictor" } th { "CV accuracy ↑" } th { "95 % CI" } th { "accuracy ↑" } th { "±1 ↑" } th { "±2 ↑" } th { "MAE ↓" } th { "n" } } }
            tbody {
                @for p in &fa.priors {
                    tr {
                        td { "prior" @if p.optimistic { " (optimistic)" } }
                        td {} td.mono { (p.metrics.predictor) } td.n { "–" } td.n { "–" }
                        (num_cell(p.metrics.accuracy)) (num_cell(p.metrics.acc_within_1)) (num_cell(p.metrics.acc_within_2)) (num_cell(p.metrics.mae))
                        td.n { (p.metrics.n) }
                    }
                }
                @for m in &fa.methods {
                    @let h = &m.headline;
                    tr {
                        (method_cell(m.method))
                        td.mono { (h.label) } td.mono { (h.metrics.predictor) }
                        (num_cell(h.cv_accuracy))
                        td.n { (h.cv_accuracy_ci.map_or("–".to_string(), |c| format!("[{:.3}, {:.3}]", c.low, c.high))) }
                        (num_cell(h.metrics.accuracy)) (num_cell(h.metrics.acc_within_1)) (num_cell(h.metrics.acc_within_2)) (num_cell(h.metrics.mae))
                        td.n { (h.metrics.n) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_seeded_subsets_in_input_order() {
        let items: Vec<usize> = (0..50).collect();
        let s = sample(&items, 10, 3);
        assert_eq!(s.len(), 10);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(s, sample(&items, 10, 3));
        assert_ne!(s, sample(&items, 10, 4));
        assert_eq!(sample(&items[..5], 10, 3), vec![0, 1, 2, 3, 4]);
        assert_eq!(outcome(Some(0.5)), "failure (reward 0.5)");
        assert_eq!(error(Some(3), Some(7)), Some(4));
    }
}
