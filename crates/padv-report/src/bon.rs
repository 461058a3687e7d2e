//! The best-of-N section: the expected best-of-k curve of each method's headline cell for
//! k = 1..N with its bootstrap band, against the random pick and the oracle (Pass@N).

use maud::{html, Markup};

use crate::colors;
use crate::page::{figure, legend, method_cell, note, num_cell};
use crate::plots::{line_chart, Band, LineChart, Series, Stroke};
use crate::text::num;
use crate::{Ctx, ReportError};

pub(crate) fn section(ctx: &Ctx<'_>) -> Result<Markup, ReportError> {
    let Some((report, bon)) = ctx.bon else {
        return Ok(html! {
            section #bon { h2 { "Best-of-N" } (note("not evaluated (no best-of-N report given)")) }
        });
    };
    let max_k = bon
        .methods
        .iter()
        .map(|m| m.headline.cell.bon_at_k.len())
        .max()
        .unwrap_or(0);
    let mut overview = None;
    let mut per_method = Vec::new();
    let mut overview_legend = Vec::new();
    // Without a task that offers a real choice every curve is flat: the note says so.
    if max_k > 0 && bon.n_tasks_with_choice > 0 {
        let mut values: Vec<f64> = bon
            .methods
            .iter()
            .flat_map(|m| {
                let h = &m.headline;
                h.cell
                    .bon_at_k
                    .iter()
                    .map(|p| p.value)
                    .chain(h.bon_at_k_band.iter().flat_map(|b| [b.low, b.high]))
            })
            .collect();
        values.extend(bon.random_pick_success_rate);
        values.extend(bon.pass_at_n);
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let x = (1.0, (max_k as f64).max(2.0));
        let y = ((lo - 0.03).max(0.0), (hi + 0.03).min(1.0));
        // Chance and ceiling as dashed levels, in every chart.
        let levels: Vec<Series> = [
            (bon.pass_at_n, "oracle pick (Pass@N)", colors::CEILING),
            (bon.random_pick_success_rate, "random pick", colors::CHANCE),
        ]
        .into_iter()
        .filter_map(|(level, label, color)| {
            level.map(|v| Series {
                label: Some(format!("{label} {v:.3}")),
                color,
                points: vec![(x.0, v), (x.1, v)],
                stroke: Stroke::Dashed,
            })
        })
        .collect();
        let mut all = LineChart::new(
            (720, 440),
            x,
            y,
            "k (rollouts the pick chooses from)",
            "expected success rate",
        );
        all.x_integer = true;
        all.series.extend(levels.iter().cloned());
        for m in &bon.methods {
            let h = &m.headline;
            let color = colors::method(m.method);
            let curve = Series {
                label: Some(format!(
                    "{} (BoN@{} {})",
                    m.method,
                    h.cell.bon_at_k.len(),
                    num(h.cell.bon_at_k.last().map(|p| p.value))
                )),
                color,
                points: h
                    .cell
                    .bon_at_k
                    .iter()
                    .map(|p| (p.k as f64, p.value))
                    .collect(),
                stroke: Stroke::Line {
                    width: if m.method == padv_core::score::Method::Pa {
                        3
                    } else {
                        2
                    },
                    dots: true,
                },
            };
            let mut one = LineChart::new((370, 260), x, y, "k", "expected success");
            one.x_integer = true;
            one.series.extend(levels.iter().cloned());
            if !h.bon_at_k_band.is_empty() {
                one.bands.push(Band {
                    color,
                    lower: h
                        .bon_at_k_band
                        .iter()
                        .map(|b| (b.k as f64, b.low))
                        .collect(),
                    upper: h
                        .bon_at_k_band
                        .iter()
                        .map(|b| (b.k as f64, b.high))
                        .collect(),
                });
            }
            one.series.push(curve.clone());
            per_method.push(figure(&line_chart(&one)?, html! {
                strong { (m.method) } " — " (h.cell.label) "; band: 95 % bootstrap over tasks; dashed: oracle and random pick"
            }));
            all.series.push(curve);
        }
        overview_legend = all.series.clone();
        overview = Some(line_chart(&all)?);
    }
    Ok(html! {
        section #bon {
            h2 { "Best-of-N: pick the highest-scored rollout of each task" }
            p {
                (bon.n_tasks) " tasks (" (bon.n_tasks_with_choice) " with a real choice: ≥ 2 rollouts with different outcomes), "
                (bon.n_rollouts) " rollouts. Random pick: success rate " strong { (num(bon.random_pick_success_rate)) }
                ", mean reward " strong { (num(bon.random_pick_mean_reward)) } " (Mean@N as the reference implementation defines it). "
                "Oracle pick (Pass@N): " strong { (num(bon.pass_at_n)) } "."
            }
            @if let Some(n) = &report.note { (note(n)) }
            @if let Some(p) = &overview {
                div.pair {
                    (figure(p, html! {
                        "Expected success of the best-scored of a random k-subset of each task's rollouts (exact, over all subsets), each method's headline cell. "
                        "Every curve starts at the random pick (k = 1) and ends at the method's best-of-N."
                    }))
                    div { h3 { "Legend" } (legend(&overview_legend)) }
                }
                h3 { "Per method, with the 95 % bootstrap band" }
                div.cols3 { @for f in &per_method { (f) } }
            }
            table.sortable {
                thead { tr {
                    th { "method" } th { "headline cell" } th { "CV success ↑" } th { "95 % CI" } th { "success ↑" }
                    th { "95 % CI" } th { "mean reward ↑" } th { "n without score" }
                } }
                tbody {
                    @for m in &bon.methods {
                        @let h = &m.headline;
                        tr {
                            (method_cell(m.method))
                            td.mono { (h.cell.label) }
                            (num_cell(h.cv_success_rate))
                            td.n { (h.cv_success_ci.map_or("–".to_string(), |c| format!("[{:.3}, {:.3}]", c.low, c.high))) }
                            (num_cell(h.cell.success_rate))
                            td.n { (h.cell.success_ci.map_or("–".to_string(), |c| format!("[{:.3}, {:.3}]", c.low, c.high))) }
                            (num_cell(h.cell.mean_reward))
                            td.n { (h.cell.n_no_score) }
                        }
                    }
                }
            }
        }
    })
}
