//! Tests of the public reading API: format names, dispatch, forced formats, files and
//! directories (fixtures in `tests/fixtures/formats/`).

use super::*;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/formats")
        .join(rel)
}

#[test]
fn format_names_round_trip_through_display_fromstr_and_serde() {
    for (format, name) in [
        (Format::Tau2, "tau2"),
        (Format::WhoAndWhen, "who_and_when"),
        (Format::ChatJsonl, "chat_jsonl"),
    ] {
        assert_eq!(format.to_string(), name);
        assert_eq!(name.parse::<Format>().unwrap(), format);
        assert_eq!(
            serde_json::to_string(&format).unwrap(),
            format!("\"{name}\"")
        );
        let back: Format = serde_json::from_str(&format!("\"{name}\"")).unwrap();
        assert_eq!(back, format);
    }
    assert_eq!(
        "Who-And-When".parse::<Format>().unwrap(),
        Format::WhoAndWhen
    );
    let err = "jsonl".parse::<Format>().unwrap_err();
    assert!(
        err.to_string().contains("tau2, who_and_when, chat_jsonl"),
        "{err}"
    );
}

#[test]
fn read_options_default_detects_and_is_lenient() {
    let opts = ReadOptions::default();
    assert_eq!(opts.format, None);
    assert!(!opts.strict);
}

#[test]
fn tau2_fixture_keeps_good_simulations_and_reports_the_bad_one() {
    let report = read_file(&fixture("tau2_small.json"), &ReadOptions::default()).unwrap();
    assert_eq!(report.format, Some(Format::Tau2));
    let ids: Vec<&str> = report.trajectories.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["sim-a", "sim-c"]);
    assert_eq!(report.skipped.len(), 1);
    let msg = report.skipped[0].to_string();
    assert!(msg.contains("tau2_small.json"), "{msg}");
    assert!(msg.contains("simulations[1] (id \"sim-b\")"), "{msg}");
    assert!(msg.contains("field `reward_info.reward`"), "{msg}");
    let a = &report.trajectories[0];
    assert_eq!(a.action_indices(), vec![0, 2, 4]);
    // Argument keys keep file order: reservation_id before verbose.
    let args = a.messages[2].tool_calls[0].arguments.as_object().unwrap();
    assert_eq!(
        args.keys().collect::<Vec<_>>(),
        ["reservation_id", "verbose"]
    );
    assert_eq!(report.trajectories[1].reward, Some(0.0));

    let strict = ReadOptions {
        format: None,
        strict: true,
        ..ReadOptions::default()
    };
    let err = read_file(&fixture("tau2_small.json"), &strict).unwrap_err();
    assert!(matches!(err, FormatError::Field { ref field, .. } if field == "reward_info.reward"));
}

#[test]
fn who_and_when_fixture_gets_folder_id() {
    let report = read_file(&fixture("Hand-Crafted/7.json"), &ReadOptions::default()).unwrap();
    assert_eq!(report.format, Some(Format::WhoAndWhen));
    let t = &report.trajectories[0];
    assert_eq!(t.id, "Hand-Crafted/7");
    assert_eq!(t.task_id, "mars-moons");
    assert_eq!(t.mistake_step, Some(3));
    assert_eq!(t.messages[3].role, "WebSurfer");
    assert!(!t.messages[0].is_action);
    assert_eq!(t.num_actions(), 4);
}

#[test]
fn chat_fixture_skips_the_bad_line() {
    let report = read_file(&fixture("chats/chat.jsonl"), &ReadOptions::default()).unwrap();
    assert_eq!(report.format, Some(Format::ChatJsonl));
    let ids: Vec<&str> = report.trajectories.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["c1", "line-4"]);
    assert!(matches!(
        &report.skipped[..],
        [FormatError::Json { line: 2, .. }]
    ));
    let t = &report.trajectories[1];
    assert_eq!(t.task_id, "line-4");
    assert_eq!(t.messages[3].content.as_deref(), Some("It is 4."));
    assert_eq!(
        t.messages[1].tool_calls[0].arguments,
        serde_json::json!({"expr": "2+2"})
    );
    assert_eq!(report.trajectories[0].reward, Some(1.0));
}

#[test]
fn unknown_fixture_is_an_error_naming_the_file() {
    let err = read_file(&fixture("unknown.json"), &ReadOptions::default()).unwrap_err();
    assert!(matches!(err, FormatError::UnknownFormat { .. }));
    assert!(err.to_string().contains("unknown.json"), "{err}");
}

#[test]
fn forced_format_overrides_detection() {
    // Detection would call this chat (it has `messages`); forced tau2 looks for simulations.
    let text = r#"{"messages": []}"#;
    let opts = ReadOptions {
        format: Some(Format::Tau2),
        strict: false,
        ..ReadOptions::default()
    };
    let err = read_str(Path::new("m.json"), text, &opts).unwrap_err();
    assert!(matches!(err, FormatError::Field { ref field, .. } if field == "simulations"));
    // Forced Who&When on a tau2 document: the one record lacks `history`, so it is skipped.
    let opts = ReadOptions {
        format: Some(Format::WhoAndWhen),
        strict: false,
        ..ReadOptions::default()
    };
    let report = read_str(Path::new("HC/1.json"), r#"{"simulations": []}"#, &opts).unwrap();
    assert!(report.trajectories.is_empty());
    assert!(
        matches!(&report.skipped[..], [FormatError::Field { field, .. }] if field == "history")
    );
    // Forced chat on JSONL whose first line has no `messages` (detection would refuse it).
    let opts = ReadOptions {
        format: Some(Format::ChatJsonl),
        strict: false,
        ..ReadOptions::default()
    };
    let text = "{\"id\": \"a\"}\n{\"id\": \"b\", \"messages\": []}\n";
    let report = read_str(Path::new("c.jsonl"), text, &opts).unwrap();
    assert_eq!(report.trajectories.len(), 1);
    assert_eq!(report.trajectories[0].id, "b");
    assert_eq!(report.skipped.len(), 1);
}

#[test]
fn whole_file_json_errors_are_errors_of_read_str_even_when_lenient() {
    for format in [None, Some(Format::Tau2), Some(Format::WhoAndWhen)] {
        let opts = ReadOptions {
            format,
            ..ReadOptions::default()
        };
        let err = read_str(Path::new("b.json"), "{\n\"simulations\": [,]\n}", &opts).unwrap_err();
        assert!(
            matches!(err, FormatError::Json { line: 2, .. }),
            "{format:?}: {err}"
        );
    }
}

#[test]
fn byte_order_mark_is_ignored() {
    let text = "\u{feff}{\"simulations\": []}";
    let report = read_str(Path::new("bom.json"), text, &ReadOptions::default()).unwrap();
    assert_eq!(report.format, Some(Format::Tau2));
}

#[test]
fn read_inputs_expands_directories_and_skips_unknown_files_unless_strict() {
    let opts = ReadOptions::default();
    let reports = read_inputs(&[fixture("chats"), fixture("Hand-Crafted/7.json")], &opts).unwrap();
    let formats: Vec<Option<Format>> = reports.iter().map(|r| r.format).collect();
    assert_eq!(formats, [Some(Format::ChatJsonl), Some(Format::WhoAndWhen)]);
    // The fixture root holds unknown.json: skipped with its reason, not silently dropped...
    let reports = read_inputs(&[fixture("")], &opts).unwrap();
    let unknown = reports
        .iter()
        .find(|r| r.path.ends_with("unknown.json"))
        .unwrap();
    assert_eq!(unknown.format, None);
    assert!(matches!(
        &unknown.skipped[..],
        [FormatError::UnknownFormat { .. }]
    ));
    // ...and fatal when strict.
    let strict = ReadOptions {
        strict: true,
        ..ReadOptions::default()
    };
    let err = read_inputs(&[fixture("unknown.json")], &strict).unwrap_err();
    assert!(matches!(err, FormatError::UnknownFormat { .. }), "{err}");
    assert!(read_inputs(&[fixture("")], &strict).is_err());
}

const WHO_AND_WHEN: &str = r#"{"history": [{"role": "user", "content": "q"},
    {"role": "Orchestrator (thought)", "content": "a"}], "mistake_step": "1",
    "mistake_agent": "Orchestrator", "question": "q"}"#;

#[test]
fn a_truncated_log_in_a_folder_is_skipped_and_counted_unless_strict() {
    let dir = tempfile::tempdir().unwrap();
    let split = dir.path().join("Hand-Crafted");
    std::fs::create_dir(&split).unwrap();
    std::fs::write(split.join("1.json"), WHO_AND_WHEN).unwrap();
    // Cut mid-document, as a killed download leaves it.
    std::fs::write(split.join("2.json"), &WHO_AND_WHEN[..40]).unwrap();
    std::fs::write(split.join("3.json"), WHO_AND_WHEN).unwrap();
    let reports = read_inputs(std::slice::from_ref(&split), &ReadOptions::default()).unwrap();
    assert_eq!(reports.len(), 3);
    let ids: Vec<&str> = reports
        .iter()
        .flat_map(|r| r.trajectories.iter().map(|t| t.id.as_str()))
        .collect();
    assert_eq!(ids, ["Hand-Crafted/1", "Hand-Crafted/3"]);
    assert_eq!(reports[1].format, None);
    assert!(
        matches!(&reports[1].skipped[..], [FormatError::Json { path, .. }] if path.ends_with("2.json"))
    );
    let strict = ReadOptions {
        strict: true,
        ..ReadOptions::default()
    };
    assert!(matches!(
        read_inputs(&[split], &strict),
        Err(FormatError::Json { .. })
    ));
}

#[test]
fn a_bad_first_jsonl_line_does_not_hide_the_rest() {
    let text = "{\"id\": \"a\", \"messages\": [\n{\"id\": \"b\", \"messages\": []}\n";
    let report = read_str(Path::new("c.jsonl"), text, &ReadOptions::default()).unwrap();
    assert_eq!(report.format, Some(Format::ChatJsonl));
    assert_eq!(report.trajectories.len(), 1);
    assert_eq!(report.trajectories[0].id, "b");
    assert!(matches!(
        &report.skipped[..],
        [FormatError::Json { line: 1, .. }]
    ));
    let strict = ReadOptions {
        strict: true,
        ..ReadOptions::default()
    };
    assert!(read_str(Path::new("c.jsonl"), text, &strict).is_err());
}

#[test]
fn repeated_trajectory_ids_are_skipped_and_named_unless_strict() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("1.jsonl"),
        "{\"id\": \"a\", \"messages\": []}\n{\"id\": \"b\", \"messages\": []}\n{\"id\": \"a\", \"messages\": []}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("2.jsonl"),
        "{\"id\": \"b\", \"messages\": []}\n",
    )
    .unwrap();
    let reports = read_inputs(&[dir.path().to_path_buf()], &ReadOptions::default()).unwrap();
    let ids: Vec<&str> = reports
        .iter()
        .flat_map(|r| r.trajectories.iter().map(|t| t.id.as_str()))
        .collect();
    assert_eq!(ids, ["a", "b"]);
    let skipped: Vec<String> = reports
        .iter()
        .flat_map(|r| r.skipped.iter().map(|e| e.to_string()))
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped[0].contains("trajectory 2")
            && skipped[0].contains("\"a\"")
            && skipped[0].contains("trajectory 0"),
        "{skipped:?}"
    );
    assert!(
        skipped[1].contains("2.jsonl") && skipped[1].contains("1.jsonl"),
        "{skipped:?}"
    );
    let strict = ReadOptions {
        strict: true,
        ..ReadOptions::default()
    };
    assert!(matches!(
        read_inputs(&[dir.path().to_path_buf()], &strict),
        Err(FormatError::DuplicateId { .. })
    ));
}

#[test]
fn an_output_folder_inside_an_input_folder_is_not_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let out = input.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(input.join("a.jsonl"), "{\"id\": \"a\", \"messages\": []}\n").unwrap();
    // A previous run's records: not trajectories.
    std::fs::write(
        out.join("records.jsonl"),
        "{\"id\": \"a\", \"task_id\": \"a\", \"steps\": []}\n",
    )
    .unwrap();
    let strict = ReadOptions {
        strict: true,
        ..ReadOptions::default()
    };
    assert!(read_inputs(std::slice::from_ref(&input), &strict).is_err());
    let opts = ReadOptions {
        exclude: vec![out.join("../out")],
        ..strict
    };
    let reports = read_inputs(std::slice::from_ref(&input), &opts).unwrap();
    assert_eq!(reports.len(), 1);
    assert!(reports[0].path.ends_with("a.jsonl"));
    assert_eq!(
        expand_inputs_excluding(std::slice::from_ref(&input), &[out]).unwrap(),
        vec![input.join("a.jsonl")]
    );
}

#[test]
fn unreadable_file_is_an_io_error_naming_it() {
    let err = read_file(&fixture("does-not-exist.json"), &ReadOptions::default()).unwrap_err();
    assert!(matches!(err, FormatError::Io { .. }));
    assert!(err.to_string().contains("does-not-exist.json"), "{err}");
}

#[cfg(feature = "clap")]
#[test]
fn clap_value_names_match_display_and_accept_dashes() {
    use clap::ValueEnum;
    for format in Format::ALL {
        let value = format.to_possible_value().unwrap();
        assert_eq!(value.get_name(), format.name());
    }
    assert_eq!(
        <Format as ValueEnum>::from_str("who-and-when", false).unwrap(),
        Format::WhoAndWhen
    );
    assert_eq!(
        <Format as ValueEnum>::from_str("chat_jsonl", false).unwrap(),
        Format::ChatJsonl
    );
}
