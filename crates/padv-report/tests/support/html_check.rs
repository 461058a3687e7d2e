//! Checks of a generated report page, shared by the padv-report and padv tests (included
//! with `#[path]`): the page is parsed by html5ever (through scraper), a real HTML5 parser.

use std::collections::HashSet;

use scraper::{ElementRef, Html, Selector};

/// What a checked page holds.
#[derive(Debug)]
#[allow(dead_code)] // each test file that includes this module reads a different subset
pub struct PageSummary {
    /// Charts (`figure.plot`).
    pub figures: usize,
    /// Rows of the trajectory table.
    pub rows: usize,
    /// Step traces (`div.trace`).
    pub traces: usize,
    /// `<details>` blocks of step texts under traces.
    pub step_texts: usize,
    /// The page's text, for content checks.
    pub text: String,
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap_or_else(|e| panic!("selector {s}: {e:?}"))
}

/// Whether an SVG draws data: a line of at least 3 points, a dot, or a filled rectangle
/// beyond the white background (axes and ticks are 2-point polylines).
fn draws_data(svg: ElementRef<'_>) -> bool {
    let long_line = svg.select(&sel("polyline")).any(|p| {
        p.value()
            .attr("points")
            .is_some_and(|pts| pts.split_whitespace().count() >= 3)
    });
    let dots = svg.select(&sel("circle")).next().is_some();
    let rects = svg.select(&sel("rect")).count() >= 2;
    long_line || dots || rects
}

/// Panics with a message naming what is wrong unless the page is well-formed HTML (no
/// parse error), runs no script but its own, every chart has data points, and every row
/// of the trajectory table links to a trace that exists and holds a chart.
pub fn check_page(html: &str) -> PageSummary {
    let doc = Html::parse_document(html);
    assert!(
        doc.errors.is_empty(),
        "HTML parse errors ({}): {:?}",
        doc.errors.len(),
        doc.errors.iter().take(5).collect::<Vec<_>>()
    );
    assert!(html.starts_with("<!DOCTYPE html>"), "no doctype");
    let scripts = doc.select(&sel("script")).count();
    assert_eq!(scripts, 1, "exactly the page's own script");
    let mut ids = HashSet::new();
    for el in doc.select(&sel("*")) {
        for (name, _) in el.value().attrs() {
            assert!(
                !name.to_ascii_lowercase().starts_with("on"),
                "event-handler attribute {name} on <{}>",
                el.value().name()
            );
        }
        if let Some(id) = el.value().id() {
            assert!(ids.insert(id.to_string()), "duplicate id {id}");
        }
    }
    let mut figures = 0;
    for fig in doc.select(&sel("figure.plot")) {
        figures += 1;
        let points: usize = fig
            .value()
            .attr("data-points")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let caption = fig
            .select(&sel("figcaption"))
            .next()
            .map(|c| c.text().collect::<String>())
            .unwrap_or_default();
        assert!(points > 0, "chart without data points: {caption}");
        let svgs: Vec<ElementRef<'_>> = fig.select(&sel("svg")).collect();
        assert_eq!(svgs.len(), 1, "one SVG per chart: {caption}");
        assert!(draws_data(svgs[0]), "the SVG draws no data: {caption}");
    }
    let rows: Vec<ElementRef<'_>> = doc.select(&sel("#trajectories tbody tr")).collect();
    for row in &rows {
        let link = row
            .select(&sel("a"))
            .next()
            .unwrap_or_else(|| panic!("row without a link: {}", row.html()));
        let href = link.value().attr("href").unwrap_or("");
        let target = href
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("not an anchor: {href}"));
        let trace = doc
            .select(&sel(&format!("[id=\"{target}\"]")))
            .next()
            .unwrap_or_else(|| panic!("row links to {href}, which does not exist"));
        assert!(
            trace.select(&sel("figure.plot")).next().is_some(),
            "trace {href} holds no chart"
        );
    }
    let traces = doc.select(&sel("div.trace")).count();
    assert_eq!(rows.len(), traces, "one table row per trace");
    PageSummary {
        figures,
        rows: rows.len(),
        traces,
        step_texts: doc.select(&sel("div.trace details")).count(),
        text: doc.root_element().text().collect(),
    }
}
