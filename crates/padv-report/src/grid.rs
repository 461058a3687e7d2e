//! The aggregation grid as heat maps: per method (and PA mode), token aggregation × step
//! aggregation, coloured by the evaluation's metric on all records, with the cell the
//! cross-validation chose starred and outlined — so a reader sees whether the headline sits
//! on a plateau or on a lucky peak.

use maud::{html, Markup};
use padv_core::eval::report::ReportBody;
use padv_core::eval::EvalReport;
use padv_core::score::{Method, PaMode, ScoreSpec, StepAgg, TokenAgg};

use crate::page::{figure, note};
use crate::plots::{heat_map, HeatCell};
use crate::{Ctx, ReportError};

/// One evaluation's cells: (spec, label, value) and the chosen label of each method.
struct Metric {
    key: &'static str,
    name: &'static str,
    cells: Vec<(ScoreSpec, Option<f64>)>,
    chosen: Vec<(Method, String)>,
}

pub(crate) fn section(ctx: &Ctx<'_>) -> Result<Markup, ReportError> {
    let metrics: Vec<Metric> = ctx
        .input
        .reports
        .iter()
        .filter(|r| r.config.grid)
        .filter_map(|r| metric(r))
        .collect();
    if metrics.is_empty() {
        return Ok(html! {
            section #grid { h2 { "Aggregation grid" } (note("no grid report given (evaluate with --grid): nothing to map")) }
        });
    }
    let mut blocks = Vec::new();
    for m in &metrics {
        let values = m.cells.iter().filter_map(|c| c.1).filter(|v| v.is_finite());
        let range = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        if !range.0.is_finite() {
            blocks.push(html! {
                div.heat data-metric=(m.key) {
                    h3 { (m.name) }
                    (note("no cell has a value (nothing to evaluate, see the section above): nothing to map"))
                }
            });
            continue;
        }
        let mut figures = Vec::new();
        for (method, mode, cells) in groups(&m.cells) {
            let chosen = m
                .chosen
                .iter()
                .find(|c| c.0 == method)
                .map(|c| c.1.as_str());
            let tokens: Vec<TokenAgg> = TokenAgg::ALL
                .iter()
                .copied()
                .filter(|t| cells.iter().any(|c| c.0.token_agg == *t))
                .collect();
            let steps: Vec<StepAgg> = StepAgg::ALL
                .iter()
                .copied()
                .filter(|s| cells.iter().any(|c| c.0.effective_step_agg() == *s))
                .collect();
            let grid: Vec<Vec<HeatCell>> = tokens
                .iter()
                .map(|t| {
                    steps
                        .iter()
                        .map(|s| {
                            let cell = cells
                                .iter()
                                .find(|c| c.0.token_agg == *t && c.0.effective_step_agg() == *s);
                            HeatCell {
                                value: cell.and_then(|c| c.1),
                                chosen: cell.is_some_and(|c| Some(c.0.label().as_str()) == chosen),
                            }
                        })
                        .collect()
                })
                .collect();
            let plot = heat_map(
                &tokens
                    .iter()
                    .map(|t| format!("token {t}"))
                    .collect::<Vec<_>>(),
                &steps.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                &grid,
                range,
            )?;
            let title = match mode {
                Some(mode) => format!("{method} ({mode})"),
                None => method.to_string(),
            };
            figures.push(figure(&plot, html! { strong { (title) } }));
        }
        blocks.push(html! {
            div.heat data-metric=(m.key) {
                h3 { (m.name) }
                div.flow { @for f in &figures { (f) } }
            }
        });
    }
    Ok(html! {
        section #grid {
            h2 { "Aggregation grid: how robust is each headline?" }
            p {
                "Rows: token aggregation; columns: step aggregation (methods with a fixed step aggregation have one column). Every cell evaluated on all records; colours span the lowest to the highest value of the metric over all methods (viridis: dark = low). "
                "★ and the red outline mark the cell chosen by cross-validation (the headline); a headline on a plateau of similar cells is robust, one on an isolated peak is not. "
                "The FA maps show each cell's exact-step accuracy with the method's headline predictor."
            }
            p { @for m in &metrics { button.metric type="button" data-metric=(m.key) { (m.name) } } }
            @for b in &blocks { (b) }
        }
    })
}

fn metric(r: &EvalReport) -> Option<Metric> {
    Some(match &r.results {
        ReportBody::Uq(u) => Metric {
            key: "uq",
            name: "UQ: AUROC ↑",
            cells: u.cells.iter().map(|c| (c.spec, c.result.auroc)).collect(),
            chosen: u
                .methods
                .iter()
                .map(|m| (m.method, m.headline.label.clone()))
                .collect(),
        },
        ReportBody::Bon(b) => Metric {
            key: "bon",
            name: "best-of-N: success rate ↑",
            cells: b.cells.iter().map(|c| (c.spec, c.success_rate)).collect(),
            chosen: b
                .methods
                .iter()
                .map(|m| (m.method, m.headline.cell.label.clone()))
                .collect(),
        },
        ReportBody::Fa(f) => {
            let predictor_of = |m: Method| {
                f.methods
                    .iter()
                    .find(|x| x.method == m)
                    .map(|x| x.headline.metrics.predictor.clone())
            };
            Metric {
                key: "fa",
                name: "failure attribution: accuracy ↑",
                cells: f
                    .cells
                    .iter()
                    .map(|c| {
                        let p = predictor_of(c.spec.method);
                        let v = c
                            .result
                            .rows
                            .iter()
                            .find(|row| Some(&row.predictor) == p.as_ref())
                            .and_then(|row| row.accuracy);
                        (c.spec, v)
                    })
                    .collect(),
                chosen: f
                    .methods
                    .iter()
                    .map(|m| (m.method, m.headline.label.clone()))
                    .collect(),
            }
        }
    })
}

/// Cells grouped by method, and for PA by mode, in first-appearance order.
#[allow(clippy::type_complexity)]
fn groups(
    cells: &[(ScoreSpec, Option<f64>)],
) -> Vec<(Method, Option<PaMode>, Vec<(ScoreSpec, Option<f64>)>)> {
    let mut out: Vec<(Method, Option<PaMode>, Vec<(ScoreSpec, Option<f64>)>)> = Vec::new();
    for c in cells {
        let mode = c.0.method.uses_pa_mode().then_some(c.0.pa_mode);
        match out.iter_mut().find(|g| g.0 == c.0.method && g.1 == mode) {
            Some(g) => g.2.push(*c),
            None => out.push((c.0.method, mode, vec![*c])),
        }
    }
    out
}
