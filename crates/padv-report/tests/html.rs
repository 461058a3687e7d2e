//! The page on synthetic records: well-formed HTML (parsed by html5ever), charts with data,
//! a trace behind every table row, hostile text escaped, the size limit kept.

#[path = "support/html_check.rs"]
mod html_check;

use padv_core::eval::{evaluate, EvalConfig, EvalKind, EvalReport};
use padv_core::score::synthetic_records;
use padv_core::{LogprobRecord, Message, Trajectory};
use padv_report::{render_html, write_report, ReportInput, ReportOptions};

fn reports(records: &[LogprobRecord], grid: bool) -> Vec<EvalReport> {
    let cfg = EvalConfig {
        grid,
        bootstrap: 30,
        ..EvalConfig::default()
    };
    EvalKind::ALL
        .iter()
        .map(|k| evaluate(records, *k, &cfg).unwrap())
        .collect()
}

#[test]
fn a_grid_report_is_well_formed_with_data_in_every_chart() {
    let records = synthetic_records(120, 5, 3, 11);
    let reports = reports(&records, true);
    let input = ReportInput::new("synthetic", &records, reports.iter().collect());
    let html = render_html(&input, &ReportOptions::default()).unwrap();
    let page = html_check::check_page(&html);
    // ROC, 11 distributions, 11 reliability diagrams, BoN overview + 11, traces, heat maps.
    assert!(page.figures > 40, "{page:?}");
    let failures_annotated = records.iter().filter(|r| r.mistake_step.is_some()).count();
    assert_eq!(page.traces, failures_annotated);
    for heading in [
        "Uncertainty quantification",
        "Best-of-N",
        "Failure attribution",
        "Aggregation grid",
    ] {
        assert!(page.text.contains(heading), "no {heading}");
    }
    // The reference implementation's Mean@N is named for what it is.
    assert!(page
        .text
        .contains("Mean@N as the reference implementation defines it"));
    assert!(page.text.contains("Pass@N"));
    // No step texts without trajectories, and the page says so.
    assert_eq!(page.step_texts, 0);
    assert!(page.text.contains("Step texts: not shown"));
}

#[test]
fn hostile_ids_and_step_texts_are_escaped() {
    let mut records = synthetic_records(40, 3, 2, 5);
    let evil = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>\u{1b}[31m&amp;";
    for (i, r) in records.iter_mut().enumerate() {
        r.id = format!("{evil}{i}");
    }
    let trajectories: Vec<Trajectory> = records
        .iter()
        .map(|r| Trajectory {
            id: r.id.clone(),
            task_id: r.task_id.clone(),
            messages: (0..8)
                .map(|m| Message {
                    role: if m % 2 == 1 { "assistant" } else { "user" }.into(),
                    content: Some(format!("{evil} step {m} </pre></details></div>")),
                    is_action: m % 2 == 1,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    let reports = reports(&records, false);
    let input = ReportInput {
        trajectories: &trajectories,
        ..ReportInput::new(evil, &records, reports.iter().collect())
    };
    let html = render_html(&input, &ReportOptions::default()).unwrap();
    let page = html_check::check_page(&html);
    assert!(page.step_texts > 0, "{page:?}");
    // The text survives as text (control character replaced), never as markup.
    assert!(page.text.contains("<script>alert('x')</script>"));
    assert!(page.text.contains("\u{FFFD}[31m&amp;"));
    assert!(!html.contains("<img"));
}

#[test]
fn the_size_limit_thins_the_traces_and_says_so() {
    let records = synthetic_records(400, 12, 2, 3);
    let reports = reports(&records, false);
    let input = ReportInput::new("big", &records, reports.iter().collect());
    let full = render_html(&input, &ReportOptions::default()).unwrap();
    let limit = full.len() * 2 / 3;
    let opts = ReportOptions {
        max_bytes: limit,
        ..ReportOptions::default()
    };
    let small = render_html(&input, &opts).unwrap();
    assert!(small.len() <= limit, "{} > {limit}", small.len());
    let page = html_check::check_page(&small);
    let annotated = records.iter().filter(|r| r.mistake_step.is_some()).count();
    assert!(page.traces < ReportOptions::default().max_traces.min(annotated));
    assert!(
        page.text.contains(&format!(
            "seeded random sample of {} of the {annotated}",
            page.traces
        )),
        "the page must say it shows a sample"
    );
}

#[test]
fn reports_of_other_records_are_refused_and_the_file_is_written_atomically() {
    let records = synthetic_records(40, 3, 2, 5);
    let reports = reports(&records, false);
    let input = ReportInput::new("x", &records[..20], reports.iter().collect());
    let e = render_html(&input, &ReportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("40 records") && e.contains("20 records"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let good = ReportInput::new("x", &records, reports.iter().collect());
    let path = write_report(&dir.path().join("out"), &good, &ReportOptions::default()).unwrap();
    assert_eq!(path.file_name().unwrap(), "report.html");
    let names: Vec<_> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("report.html")],
        "no temporary left"
    );
}

/// The checker itself can fail: a stray end tag is a parse error, an empty chart is refused.
#[test]
#[should_panic(expected = "HTML parse errors")]
fn the_checker_refuses_broken_markup() {
    html_check::check_page("<!DOCTYPE html><html><head><title>t</title></head><body><div></span></div><script></script></body></html>");
}

#[test]
#[should_panic(expected = "chart without data points")]
fn the_checker_refuses_a_chart_without_data() {
    html_check::check_page(
        "<!DOCTYPE html><html><head><title>t</title></head><body><figure class=\"plot\" data-points=\"0\">\
         <svg><polyline points=\"1,1 2,2\"/></svg><figcaption>c</figcaption></figure><script></script></body></html>",
    );
}
