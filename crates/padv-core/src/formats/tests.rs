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
    assert_eq!(report.format, Format::Tau2);
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
    };
    let err = read_file(&fixture("tau2_small.json"), &strict).unwrap_err();
    assert!(matches!(err, FormatError::Field { ref field, .. } if field == "reward_info.reward"));
}

#[test]
fn who_and_when_fixture_gets_folder_id() {
    let report = read_file(&fixture("Hand-Crafted/7.json"), &ReadOptions::default()).unwrap();
    assert_eq!(report.format, Format::WhoAndWhen);
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
    assert_eq!(report.format, Format::ChatJsonl);
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
    };
    let err = read_str(Path::new("m.json"), text, &opts).unwrap_err();
    assert!(matches!(err, FormatError::Field { ref field, .. } if field == "simulations"));
    // Forced Who&When on a tau2 document: the one record lacks `history`, so it is skipped.
    let opts = ReadOptions {
        format: Some(Format::WhoAndWhen),
        strict: false,
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
    };
    let text = "{\"id\": \"a\"}\n{\"id\": \"b\", \"messages\": []}\n";
    let report = read_str(Path::new("c.jsonl"), text, &opts).unwrap();
    assert_eq!(report.trajectories.len(), 1);
    assert_eq!(report.trajectories[0].id, "b");
    assert_eq!(report.skipped.len(), 1);
}

#[test]
fn whole_file_json_errors_are_fatal_even_when_lenient() {
    for format in [None, Some(Format::Tau2), Some(Format::WhoAndWhen)] {
        let opts = ReadOptions {
            format,
            strict: false,
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
    assert_eq!(report.format, Format::Tau2);
}

#[test]
fn read_inputs_expands_directories_and_fails_on_unknown_files() {
    let opts = ReadOptions::default();
    let reports = read_inputs(&[fixture("chats"), fixture("Hand-Crafted/7.json")], &opts).unwrap();
    let formats: Vec<Format> = reports.iter().map(|r| r.format).collect();
    assert_eq!(formats, [Format::ChatJsonl, Format::WhoAndWhen]);
    // The fixture root holds unknown.json, which must stop the read rather than vanish.
    let err = read_inputs(&[fixture("")], &opts).unwrap_err();
    assert!(matches!(err, FormatError::UnknownFormat { .. }), "{err}");
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
