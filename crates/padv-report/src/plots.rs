//! The page's charts, drawn with plotters' SVG backend into strings.
//!
//! Titles live in the HTML (`<figcaption>`), not in the SVG, so they wrap and print like the
//! rest of the page; the SVG carries axes, data and legends. Text inside a chart is ours
//! (numbers, method names, axis names), and plotters' SVG backend escapes it anyway.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::ReportError;

/// A chart as SVG markup, with the number of data points it draws.
#[derive(Debug, Clone)]
pub(crate) struct Plot {
    pub svg: String,
    pub points: usize,
    /// Width in pixels (the figure is never stretched beyond it).
    pub width: u32,
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Stroke {
    /// A solid line of this width, with a dot on each point when `dots`.
    Line { width: u32, dots: bool },
    /// A dashed line (reference levels).
    Dashed,
}

/// One data series; its label is for the HTML legend beside the chart (legends drawn
/// inside a chart cover data and shrink with it).
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub label: Option<String>,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
    pub stroke: Stroke,
}

/// A shaded band between two curves sampled at the same x.
#[derive(Debug, Clone)]
pub(crate) struct Band {
    pub color: RGBColor,
    pub lower: Vec<(f64, f64)>,
    pub upper: Vec<(f64, f64)>,
}

/// A highlighted point (a predicted step) or a vertical line (an annotated step).
#[derive(Debug, Clone)]
pub(crate) enum Mark {
    Point {
        x: f64,
        y: f64,
        color: RGBColor,
    },
    Vertical {
        x: f64,
        color: RGBColor,
    },
    /// A dot whose size carries a weight (e.g. how many predictions a bin holds).
    Dot {
        x: f64,
        y: f64,
        radius: u32,
        color: RGBColor,
    },
}

/// A line chart: axes, series, bands and marks.
#[derive(Debug, Clone)]
pub(crate) struct LineChart {
    pub size: (u32, u32),
    pub x: (f64, f64),
    pub y: (f64, f64),
    pub x_desc: String,
    pub y_desc: String,
    /// Label the x axis with integers (k, message index).
    pub x_integer: bool,
    pub series: Vec<Series>,
    pub bands: Vec<Band>,
    pub marks: Vec<Mark>,
}

impl LineChart {
    /// An empty chart of `size` over the given ranges.
    pub fn new(size: (u32, u32), x: (f64, f64), y: (f64, f64), x_desc: &str, y_desc: &str) -> Self {
        LineChart {
            size,
            x: widen(x),
            y: widen(y),
            x_desc: x_desc.to_string(),
            y_desc: y_desc.to_string(),
            x_integer: false,
            series: Vec::new(),
            bands: Vec::new(),
            marks: Vec::new(),
        }
    }
}

/// A range that plotters can draw: finite, and not empty.
fn widen((lo, hi): (f64, f64)) -> (f64, f64) {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() {
        (lo.min(hi), lo.max(hi))
    } else {
        (0.0, 1.0)
    };
    if hi - lo < 1e-12 {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    }
}

/// An axis label: 2 decimals, or scientific notation for very small or large values.
fn axis_number(v: &f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(0.01..10_000.0).contains(&a) {
        format!("{v:.1e}")
    } else {
        format!("{v:.2}")
    }
}

fn plot_err<E: std::fmt::Display>(e: E) -> ReportError {
    ReportError::Plot(e.to_string())
}

const GRID_BOLD: RGBColor = RGBColor(214, 214, 214);
const FONT: &str = "sans-serif";

/// Draws one line chart into `c.size`.
pub(crate) fn line_chart(c: &LineChart) -> Result<Plot, ReportError> {
    let mut svg = String::new();
    let points;
    {
        let root = SVGBackend::with_string(&mut svg, c.size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        points = draw_line_chart(&root, c)?;
        root.present().map_err(plot_err)?;
    }
    Ok(Plot {
        svg,
        points,
        width: c.size.0,
    })
}

/// Draws charts stacked vertically, sharing the width of `size` evenly in height.
pub(crate) fn stacked(charts: &[LineChart], size: (u32, u32)) -> Result<Plot, ReportError> {
    let mut svg = String::new();
    let mut points = 0;
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let areas = root.split_evenly((charts.len().max(1), 1));
        for (area, c) in areas.iter().zip(charts) {
            points += draw_line_chart(area, c)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(Plot {
        svg,
        points,
        width: size.0,
    })
}

fn draw_line_chart(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    c: &LineChart,
) -> Result<usize, ReportError> {
    let mut chart = ChartBuilder::on(area)
        .margin(6)
        .margin_right(20)
        .x_label_area_size(32)
        .y_label_area_size(56)
        .build_cartesian_2d(c.x.0..c.x.1, c.y.0..c.y.1)
        .map_err(plot_err)?;
    let integer = |v: &f64| format!("{}", v.round() as i64);
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(c.x_desc.as_str())
        .y_desc(c.y_desc.as_str())
        // Bold grid lines only: light lines would be most of the SVG's bytes.
        .max_light_lines(0)
        .bold_line_style(GRID_BOLD)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 14))
        .y_label_formatter(&axis_number)
        .x_labels(if c.x_integer { 12 } else { 8 })
        .y_labels(6);
    if c.x_integer {
        mesh.x_label_formatter(&integer);
    } else {
        mesh.x_label_formatter(&axis_number);
    }
    mesh.draw().map_err(plot_err)?;

    for b in &c.bands {
        let mut poly = b.lower.clone();
        poly.extend(b.upper.iter().rev());
        if poly.len() >= 3 {
            chart
                .draw_series(std::iter::once(Polygon::new(
                    poly,
                    b.color.mix(0.16).filled(),
                )))
                .map_err(plot_err)?;
        }
    }
    let mut points = 0;
    for m in &c.marks {
        if let Mark::Vertical { x, color } = m {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(*x, c.y.0), (*x, c.y.1)],
                    6,
                    4,
                    color.stroke_width(2),
                ))
                .map_err(plot_err)?;
        }
    }
    for s in &c.series {
        if s.points.is_empty() {
            continue;
        }
        points += s.points.len();
        let color = s.color;
        match s.stroke {
            Stroke::Line { width, dots } => {
                chart
                    .draw_series(LineSeries::new(
                        s.points.iter().copied(),
                        color.stroke_width(width),
                    ))
                    .map_err(plot_err)?;
                if dots {
                    chart
                        .draw_series(s.points.iter().map(|&p| Circle::new(p, 2, color.filled())))
                        .map_err(plot_err)?;
                }
            }
            Stroke::Dashed => {
                chart
                    .draw_series(DashedLineSeries::new(
                        s.points.iter().copied(),
                        7,
                        5,
                        color.stroke_width(2),
                    ))
                    .map_err(plot_err)?;
            }
        }
    }
    for m in &c.marks {
        match m {
            Mark::Point { x, y, color } => {
                points += 1;
                chart
                    .draw_series([
                        Circle::new((*x, *y), 6, color.filled()),
                        Circle::new((*x, *y), 6, BLACK.stroke_width(1)),
                    ])
                    .map_err(plot_err)?;
            }
            Mark::Dot {
                x,
                y,
                radius,
                color,
            } => {
                points += 1;
                chart
                    .draw_series([Circle::new((*x, *y), *radius, color.mix(0.55).filled())])
                    .map_err(plot_err)?;
            }
            Mark::Vertical { .. } => {}
        }
    }
    Ok(points)
}

/// Two overlaid histograms (fractions of each class per bin) of `a` and `b` on shared bins;
/// the caller names the colours in the caption.
pub(crate) fn two_histograms(
    size: (u32, u32),
    a: (&str, RGBColor, &[f64]),
    b: (&str, RGBColor, &[f64]),
    bins: usize,
    x_desc: &str,
) -> Result<Plot, ReportError> {
    let all = a.2.iter().chain(b.2).copied().filter(|v| v.is_finite());
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
        (l.min(v), h.max(v))
    });
    let (lo, hi) = widen((lo, hi));
    let width = (hi - lo) / bins as f64;
    let fractions = |values: &[f64]| {
        let mut counts = vec![0usize; bins];
        let mut n = 0usize;
        for &v in values.iter().filter(|v| v.is_finite()) {
            let i = (((v - lo) / width) as usize).min(bins - 1);
            counts[i] += 1;
            n += 1;
        }
        counts
            .into_iter()
            .map(|c| if n == 0 { 0.0 } else { c as f64 / n as f64 })
            .collect::<Vec<f64>>()
    };
    let (fa, fb) = (fractions(a.2), fractions(b.2));
    let top = fa.iter().chain(&fb).copied().fold(0.0, f64::max).max(1e-9) * 1.12;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(6)
            .margin_right(20)
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d(lo..hi, 0.0..top)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("fraction of class")
            .max_light_lines(0)
            .bold_line_style(GRID_BOLD)
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 13))
            .x_labels(6)
            .y_labels(5)
            .x_label_formatter(&axis_number)
            .y_label_formatter(&axis_number)
            .draw()
            .map_err(plot_err)?;
        for (color, fr) in [(a.1, &fa), (b.1, &fb)] {
            chart
                .draw_series(
                    fr.iter()
                        .enumerate()
                        .filter(|(_, f)| **f > 0.0)
                        .map(|(i, f)| {
                            let x0 = lo + i as f64 * width;
                            Rectangle::new([(x0, 0.0), (x0 + width, *f)], color.mix(0.45).filled())
                        }),
                )
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(Plot {
        svg,
        points: a.2.len() + b.2.len(),
        width: size.0,
    })
}

/// One cell of a heat map.
#[derive(Debug, Clone)]
pub(crate) struct HeatCell {
    pub value: Option<f64>,
    pub chosen: bool,
}

/// A heat map of `cells[row][col]` with row and column names; colours span `range`
/// (viridis), the chosen cell is outlined and starred.
pub(crate) fn heat_map(
    rows: &[String],
    cols: &[String],
    cells: &[Vec<HeatCell>],
    range: (f64, f64),
) -> Result<Plot, ReportError> {
    let (nr, nc) = (rows.len() as f64, cols.len() as f64);
    let cell_w = 50.0;
    let size = ((96.0 + cell_w * nc) as u32, (30.0 + 26.0 * nr) as u32);
    let (lo, hi) = widen(range);
    let mut svg = String::new();
    let mut points = 0;
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        // Coordinates: columns 0..nc to the right of the row names, rows counted from the
        // top; the margins inside the range hold the names.
        let left = -96.0 / cell_w;
        let mut chart = ChartBuilder::on(&root)
            .build_cartesian_2d(left..nc, 0.0..nr + 30.0 / 26.0)
            .map_err(plot_err)?;
        let y_of = |r: usize| nr - r as f64;
        let label = |s: &str, pos: (f64, f64), h: HPos, color: &RGBColor| {
            Text::new(
                s.to_string(),
                pos,
                (FONT, 15)
                    .into_font()
                    .color(color)
                    .pos(Pos::new(h, VPos::Center)),
            )
        };
        for (j, name) in cols.iter().enumerate() {
            chart
                .draw_series(std::iter::once(label(
                    name,
                    (j as f64 + 0.5, nr + 0.55),
                    HPos::Center,
                    &BLACK,
                )))
                .map_err(plot_err)?;
        }
        for (i, name) in rows.iter().enumerate() {
            chart
                .draw_series(std::iter::once(label(
                    name,
                    (-0.1, y_of(i) - 0.5),
                    HPos::Right,
                    &BLACK,
                )))
                .map_err(plot_err)?;
            for (j, cell) in cells.get(i).into_iter().flatten().enumerate() {
                let (x0, y0) = (j as f64, y_of(i) - 1.0);
                let rect = [(x0 + 0.03, y0 + 0.04), (x0 + 0.97, y0 + 0.96)];
                let (fill, text, ink) = match cell.value {
                    Some(v) if v.is_finite() => {
                        points += 1;
                        let t = ((v - lo) / (hi - lo)).clamp(0.0, 1.0);
                        let ink = if t < 0.55 { WHITE } else { BLACK };
                        let star = if cell.chosen { "★" } else { "" };
                        (ViridisRGB::get_color(t), format!("{star}{v:.3}"), ink)
                    }
                    _ => (
                        RGBColor(238, 238, 238),
                        "–".to_string(),
                        RGBColor(120, 120, 120),
                    ),
                };
                chart
                    .draw_series(std::iter::once(Rectangle::new(rect, fill.filled())))
                    .map_err(plot_err)?;
                if cell.chosen {
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            rect,
                            RGBColor(220, 20, 60).stroke_width(3),
                        )))
                        .map_err(plot_err)?;
                }
                chart
                    .draw_series(std::iter::once(label(
                        &text,
                        (x0 + 0.5, y0 + 0.5),
                        HPos::Center,
                        &ink,
                    )))
                    .map_err(plot_err)?;
            }
        }
        root.present().map_err(plot_err)?;
    }
    Ok(Plot {
        svg,
        points,
        width: size.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_chart_draws_its_points() {
        let mut c = LineChart::new((300, 200), (0.0, 1.0), (0.0, 1.0), "x", "y");
        c.series.push(Series {
            label: Some("a <b> & c".into()),
            color: RGBColor(200, 0, 0),
            points: vec![(0.0, 0.0), (0.5, 0.7), (1.0, 1.0)],
            stroke: Stroke::Line {
                width: 2,
                dots: true,
            },
        });
        c.x_desc = "x <i> & y".into();
        let p = line_chart(&c).unwrap();
        assert_eq!(p.points, 3);
        assert!(p.svg.contains("<polyline"), "{}", p.svg);
        // Text is escaped by the SVG backend.
        assert!(p.svg.contains("x &lt;i&gt; &amp; y"));
    }

    #[test]
    fn degenerate_ranges_are_widened_not_refused() {
        assert_eq!(widen((2.0, 2.0)), (1.5, 2.5));
        assert_eq!(widen((f64::NAN, 1.0)), (0.0, 1.0));
        let h = two_histograms(
            (300, 200),
            ("s", BLUE, &[1.0, 1.0]),
            ("f", RED, &[]),
            10,
            "score",
        )
        .unwrap();
        assert!(h.svg.contains("<rect"));
    }
}
