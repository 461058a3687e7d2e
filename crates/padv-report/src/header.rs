//! The page header: what was evaluated (inputs with hashes, models, β, padv version, the
//! evaluation settings) and the chance level of every metric.

use maud::{html, Markup};
use padv_core::is_success_reward;

use crate::text::{clean, num};
use crate::Ctx;

pub(crate) fn section(ctx: &Ctx<'_>) -> Markup {
    let input = ctx.input;
    let labels = ctx.table.labels();
    let labelled = labels.iter().flatten().count();
    let successes = labels
        .iter()
        .flatten()
        .filter(|&&r| is_success_reward(r))
        .count();
    let annotated = ctx.table.mistake_steps().iter().flatten().count();
    let cfg = input.reports.first().map(|r| &r.config);
    html! {
        header #inputs {
            h1 { "padv report: " (clean(&input.title)) }
            p {
                "padv " (env!("CARGO_PKG_VERSION")) " · "
                (input.records.len()) " records (" (labelled) " labelled, " (successes)
                " successes, " (annotated) " with an annotated mistake step) in "
                (ctx.table.n_tasks()) " tasks"
                @if let Some(b) = ctx.beta() { " · β = " (b) }
                @if let Some(c) = cfg {
                    " · " (if c.grid { "grid of every method × aggregation" } else { "one score cell" })
                    ", " (c.folds) "-fold cross-validation, " (c.bootstrap)
                    " bootstrap resamples, seed " (c.seed)
                }
            }
            @if input.sources.is_empty() {
                p.muted { "Input files: not given." }
            } @else if input.sources.len() > 8 {
                details {
                    summary { (input.sources.len()) " input files (" (roles(&input.sources)) "): sizes and xxh3-64 hashes" }
                    (sources(&input.sources))
                }
            } @else {
                (sources(&input.sources))
            }
            @match &input.run {
                Some(run) => {
                    p {
                        "Models (from " span.mono { (clean(&run.path)) } "): "
                        @for (i, m) in run.models.iter().enumerate() {
                            @if i > 0 { "; " }
                            strong { (m.role) } " " span.mono { (clean(&m.spec)) }
                            @if let Some(f) = &m.fingerprint { " (fingerprint " span.mono { (clean(f)) } ")" }
                        }
                        @if let Some(r) = &run.renderer { " · renderer " (clean(r)) }
                        @if let Some(l) = run.max_length { " · max length " (l) " tokens" }
                        @if let Some(v) = &run.padv_version { " · scored by padv " (clean(v)) }
                    }
                }
                None => { p.muted { "Models: unknown (no run.json next to the records)." } }
            }
            h3 { "Chance levels (what a score-free predictor achieves on these records)" }
            @for r in &input.reports {
                p.chance {
                    strong { (r.evaluation.name()) ": " }
                    @for (i, c) in r.chance.iter().enumerate() {
                        @if i > 0 { "; " }
                        (c.metric) " = " strong { (num(c.value)) } " (" (c.meaning) ")"
                    }
                }
            }
            @if input.reports.is_empty() { p.muted { "No evaluation given." } }
        }
    }
}

/// The input files with sizes and hashes.
fn sources(files: &[crate::SourceFile]) -> Markup {
    html! {
        table {
            thead { tr { th { "input" } th { "file" } th { "bytes" } th { "xxh3-64" } } }
            tbody {
                @for s in files {
                    tr {
                        td { (s.role) }
                        td.mono { (clean(&s.path)) }
                        td.n { (s.bytes) }
                        td.mono { (s.xxh3_64) }
                    }
                }
            }
        }
    }
}

/// "3 records, 181 trajectories": how many files of each role.
fn roles(files: &[crate::SourceFile]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for f in files {
        match counts.iter_mut().find(|c| c.0 == f.role) {
            Some(c) => c.1 += 1,
            None => counts.push((&f.role, 1)),
        }
    }
    counts
        .iter()
        .map(|(r, n)| format!("{n} {r}"))
        .collect::<Vec<_>>()
        .join(", ")
}
