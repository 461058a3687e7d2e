//! Parquet records: round trips, files other writers make, and hostile files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    Float64Builder, Int32Builder, Int64Builder, LargeListBuilder, LargeStringBuilder, ListBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;

use super::parquet::{
    read_records_parquet, read_records_parquet_bytes, records_schema, write_records_parquet_atomic,
};
use super::{
    read_records, read_records_jsonl, write_records_as, write_records_atomic, LogprobRecord,
    RecordFormat, StepLogprobs,
};
use crate::judge::{JudgeScores, JudgeStep};

fn step(mi: usize, policy: Vec<f32>) -> StepLogprobs {
    StepLogprobs {
        message_index: mi,
        policy,
        ..Default::default()
    }
}

/// Every optional field absent and present, judges, empty steps, a record with no step.
fn varied_records() -> Vec<LogprobRecord> {
    let mut judges = std::collections::BTreeMap::new();
    judges.insert(
        "prm".to_string(),
        JudgeScores {
            trajectory: Some(0.25),
            steps: vec![
                JudgeStep {
                    message_index: 1,
                    score: 0.9,
                },
                JudgeStep {
                    message_index: 3,
                    score: -1.5,
                },
            ],
        },
    );
    judges.insert(
        "rm".to_string(),
        JudgeScores {
            trajectory: Some(3.5),
            steps: vec![],
        },
    );
    let full = StepLogprobs {
        message_index: 1,
        policy: vec![-0.5, -1.25, -0.0],
        reference: Some(vec![-0.75, -1.0, -2.0]),
        policy_topk_mean: Some(vec![-9.5, -7.0, -8.0]),
        policy_entropy: Some(vec![0.5, 1.5, 0.0]),
        policy_vocab_mean: Some(vec![-17.0, -16.5, -18.0]),
    };
    vec![
        LogprobRecord {
            id: "all".into(),
            task_id: "t1".into(),
            label: Some(1.0),
            mistake_step: Some(3),
            vocab_size: Some(151_936),
            num_messages: Some(5),
            steps: vec![
                full.clone(),
                // Only the reference on this step; the empty step has nothing.
                StepLogprobs {
                    message_index: 3,
                    policy: vec![-2.0],
                    reference: Some(vec![-1.0]),
                    ..Default::default()
                },
                step(4, vec![]),
            ],
            judges,
        },
        LogprobRecord {
            id: "bare".into(),
            task_id: "t1".into(),
            steps: vec![step(1, vec![-0.25, -3.0])],
            ..Default::default()
        },
        LogprobRecord {
            id: "no-steps".into(),
            task_id: "t2".into(),
            label: Some(0.0),
            ..Default::default()
        },
        LogprobRecord {
            id: "ünïcode \"quoted\"".into(),
            task_id: "t2".into(),
            label: Some(0.5),
            steps: vec![StepLogprobs {
                message_index: 7,
                ..full
            }],
            ..Default::default()
        },
    ]
}

#[test]
fn round_trip_is_record_for_record_equal() {
    let dir = tempfile::tempdir().unwrap();
    let records = varied_records();
    let path = dir.path().join("r.parquet");
    write_records_parquet_atomic(&path, &records).unwrap();
    assert_eq!(read_records_parquet(&path).unwrap(), records);
    // The format-blind reader detects it; the bytes reader reads the same.
    assert_eq!(read_records(&path).unwrap(), records);
    let bytes = Bytes::from(std::fs::read(&path).unwrap());
    assert_eq!(
        read_records_parquet_bytes(Path::new("buffer"), bytes).unwrap(),
        records
    );
    // Atomic: nothing but the file is left in the folder.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn jsonl_to_parquet_to_jsonl_is_lossless_over_many_batches() {
    // More rows than one read batch (8192) and one row group is not needed for that.
    let records = crate::synthetic::synthetic_records(20_000, 2, 3, 7);
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("r.jsonl");
    let parquet = dir.path().join("r.parquet");
    write_records_atomic(&jsonl, &records).unwrap();
    let from_jsonl = read_records(&jsonl).unwrap();
    write_records_as(&parquet, &from_jsonl, RecordFormat::Parquet).unwrap();
    let from_parquet = read_records(&parquet).unwrap();
    assert_eq!(from_parquet, from_jsonl);
    assert_eq!(from_parquet, records);
}

#[test]
fn the_format_is_told_by_content_not_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let records = varied_records();
    let parquet_named_jsonl = dir.path().join("records.jsonl");
    write_records_as(&parquet_named_jsonl, &records, RecordFormat::Parquet).unwrap();
    assert_eq!(read_records(&parquet_named_jsonl).unwrap(), records);
    let jsonl_named_parquet = dir.path().join("records.parquet");
    write_records_as(&jsonl_named_parquet, &records, RecordFormat::Jsonl).unwrap();
    assert_eq!(read_records(&jsonl_named_parquet).unwrap(), records);
    assert_eq!(read_records_jsonl(&jsonl_named_parquet).unwrap(), records);
}

/// Writes one batch with the given columns (any schema) as a Parquet file.
fn write_batch(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn strings(values: &[&str]) -> ArrayRef {
    Arc::new(arrow_array::StringArray::from(values.to_vec()))
}

/// `list<int64>` with one list per row.
fn int_lists(rows: &[&[i64]]) -> ArrayRef {
    let mut b = ListBuilder::new(Int64Builder::new());
    for r in rows {
        b.values().append_slice(r);
        b.append(true);
    }
    Arc::new(b.finish())
}

/// `list<list<float64>>`: per row, per step, the tokens (a `None` step is null).
fn f64_token_lists(rows: &[Vec<Option<Vec<f64>>>]) -> ArrayRef {
    let mut b = ListBuilder::new(ListBuilder::new(Float64Builder::new()));
    for r in rows {
        for s in r {
            match s {
                Some(v) => {
                    b.values().values().append_slice(v);
                    b.values().append(true);
                }
                None => b.values().append(false),
            }
        }
        b.append(true);
    }
    Arc::new(b.finish())
}

fn read_err(path: &Path) -> String {
    read_records(path).unwrap_err().to_string()
}

#[test]
fn files_of_other_writers_read_float64_int32_and_large_types() {
    // What pandas/pyarrow (float64, int32) and polars (large lists, large strings, with the
    // Arrow schema embedded) write.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pyarrow.parquet");
    let mut id = LargeStringBuilder::new();
    id.append_value("a");
    let mut mistake = Int32Builder::new();
    mistake.append_value(1);
    let mut mi = LargeListBuilder::new(Int32Builder::new());
    mi.values().append_slice(&[1]);
    mi.append(true);
    let mut policy = LargeListBuilder::new(LargeListBuilder::new(Float64Builder::new()));
    policy.values().values().append_slice(&[-0.1, -2.5]);
    policy.values().append(true);
    policy.append(true);
    write_batch(
        &path,
        vec![
            ("id", Arc::new(id.finish()) as ArrayRef),
            ("task_id", strings(&["t"])),
            ("mistake_step", Arc::new(mistake.finish())),
            ("message_index", Arc::new(mi.finish())),
            ("policy", Arc::new(policy.finish())),
            (
                "reference",
                f64_token_lists(&[vec![Some(vec![-0.5, -2.0])]]),
            ),
        ],
    );
    let got = read_records(&path).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, "a");
    assert_eq!(got[0].mistake_step, Some(1));
    assert_eq!(got[0].steps[0].policy, vec![-0.1f32, -2.5]);
    assert_eq!(got[0].steps[0].reference, Some(vec![-0.5f32, -2.0]));
    assert_eq!(got[0].label, None);
}

/// A file with `id`, `task_id`, `message_index`, `policy` plus `extra`, for hostile cases.
fn minimal_with(
    path: &Path,
    ids: &[&str],
    mi: &[&[i64]],
    policy: &[Vec<Option<Vec<f64>>>],
    extra: Vec<(&str, ArrayRef)>,
) {
    let tasks: Vec<&str> = ids.iter().map(|_| "t").collect();
    let mut cols = vec![
        ("id", strings(ids)),
        ("task_id", strings(&tasks)),
        ("message_index", int_lists(mi)),
        ("policy", f64_token_lists(policy)),
    ];
    cols.extend(extra);
    write_batch(path, cols);
}

#[test]
fn hostile_files_give_errors_naming_file_row_id_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| -> PathBuf { dir.path().join(name) };
    let ok_row = vec![Some(vec![-1.0])];

    // Not Parquet after the magic bytes.
    std::fs::write(p("junk.parquet"), b"PAR1 this is not a parquet file").unwrap();
    let e = read_err(&p("junk.parquet"));
    assert!(
        e.contains("junk.parquet") && e.contains("not a readable Parquet file"),
        "{e}"
    );

    // Truncated: the footer is gone.
    let good = p("good.parquet");
    write_records_parquet_atomic(&good, &varied_records()).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    for cut in [bytes.len() / 2, bytes.len() - 3, 5] {
        std::fs::write(p("cut.parquet"), &bytes[..cut]).unwrap();
        let e = read_err(&p("cut.parquet"));
        assert!(e.contains("cut.parquet"), "{e}");
    }
    // Damaged in the middle: an error (or, where the damage hits only padding, the records),
    // never a panic.
    let mut damaged = bytes.clone();
    let mid = damaged.len() / 2;
    for b in &mut damaged[mid..mid + 16] {
        *b ^= 0xA5;
    }
    std::fs::write(p("damaged.parquet"), &damaged).unwrap();
    if let Err(e) = read_records(&p("damaged.parquet")) {
        assert!(e.to_string().contains("damaged.parquet"), "{e}");
    }

    // A required column missing.
    write_batch(
        &p("nopolicy.parquet"),
        vec![
            ("id", strings(&["a"])),
            ("task_id", strings(&["t"])),
            ("message_index", int_lists(&[&[1]])),
        ],
    );
    let e = read_err(&p("nopolicy.parquet"));
    assert!(e.contains("column policy is missing"), "{e}");

    // A column of the wrong type.
    write_batch(
        &p("intid.parquet"),
        vec![
            (
                "id",
                Arc::new(arrow_array::Int64Array::from(vec![5])) as ArrayRef,
            ),
            ("task_id", strings(&["t"])),
            ("message_index", int_lists(&[&[1]])),
            ("policy", f64_token_lists(std::slice::from_ref(&ok_row))),
        ],
    );
    let e = read_err(&p("intid.parquet"));
    assert!(e.contains("column id: expected strings"), "{e}");
    write_batch(
        &p("flatpolicy.parquet"),
        vec![
            ("id", strings(&["a"])),
            ("task_id", strings(&["t"])),
            ("message_index", int_lists(&[&[1]])),
            ("policy", int_lists(&[&[1]])),
        ],
    );
    let e = read_err(&p("flatpolicy.parquet"));
    assert!(
        e.contains("column policy: expected list<list<float>>"),
        "{e}"
    );

    // Step lists that disagree with message_index, on the third row.
    let rows = vec![ok_row.clone(), ok_row.clone(), ok_row.clone()];
    minimal_with(
        &p("steps.parquet"),
        &["a", "b", "c"],
        &[&[1], &[1], &[1, 3]],
        &rows,
        vec![],
    );
    let e = read_err(&p("steps.parquet"));
    assert!(
        e.contains("steps.parquet")
            && e.contains("record 3")
            && e.contains("id \"c\"")
            && e.contains("field policy: 1 steps, but message_index has 2"),
        "{e}"
    );

    // A token list whose length differs from the policy's (validation, as in JSONL).
    minimal_with(
        &p("tokens.parquet"),
        &["a"],
        &[&[1]],
        &[vec![Some(vec![-1.0, -2.0])]],
        vec![("reference", f64_token_lists(&[vec![Some(vec![-1.0])]]))],
    );
    let e = read_err(&p("tokens.parquet"));
    assert!(
        e.contains("steps[0].reference: 1 values, but policy has 2"),
        "{e}"
    );

    // NaN, and a float64 beyond f32's range.
    minimal_with(
        &p("nan.parquet"),
        &["a"],
        &[&[1]],
        &[vec![Some(vec![-1.0, f64::NAN])]],
        vec![],
    );
    let e = read_err(&p("nan.parquet"));
    assert!(
        e.contains("steps[0].policy[1]") && e.contains("not a finite number"),
        "{e}"
    );
    minimal_with(
        &p("huge.parquet"),
        &["a"],
        &[&[1]],
        &[vec![Some(vec![-1e39])]],
        vec![],
    );
    let e = read_err(&p("huge.parquet"));
    assert!(e.contains("steps[0].policy[0]") && e.contains("inf"), "{e}");

    // A null step of the required policy, a negative integer, a null id, bad judges JSON.
    minimal_with(
        &p("nullstep.parquet"),
        &["a"],
        &[&[1]],
        &[vec![None]],
        vec![],
    );
    let e = read_err(&p("nullstep.parquet"));
    assert!(e.contains("field steps[0].policy: null"), "{e}");
    minimal_with(
        &p("negative.parquet"),
        &["a"],
        &[&[1]],
        std::slice::from_ref(&ok_row),
        vec![(
            "mistake_step",
            Arc::new(arrow_array::Int64Array::from(vec![-1])) as ArrayRef,
        )],
    );
    let e = read_err(&p("negative.parquet"));
    assert!(
        e.contains("field mistake_step: -1 is not a non-negative integer"),
        "{e}"
    );
    write_batch(
        &p("nullid.parquet"),
        vec![
            (
                "id",
                Arc::new(arrow_array::StringArray::from(vec![None::<&str>])) as ArrayRef,
            ),
            ("task_id", strings(&["t"])),
            ("message_index", int_lists(&[&[1]])),
            ("policy", f64_token_lists(std::slice::from_ref(&ok_row))),
        ],
    );
    let e = read_err(&p("nullid.parquet"));
    assert!(
        e.contains("record 1") && e.contains("field id: null"),
        "{e}"
    );
    minimal_with(
        &p("judges.parquet"),
        &["a"],
        &[&[1]],
        std::slice::from_ref(&ok_row),
        vec![("judges", strings(&["{\"rm\": {\"trajectry\": 1}}"]))],
    );
    let e = read_err(&p("judges.parquet"));
    assert!(e.contains("field judges") && e.contains("trajectry"), "{e}");
    // Out-of-order steps: the record validation of JSONL.
    minimal_with(
        &p("order.parquet"),
        &["a"],
        &[&[3, 1]],
        &[vec![Some(vec![-1.0]), Some(vec![-1.0])]],
        vec![],
    );
    let e = read_err(&p("order.parquet"));
    assert!(e.contains("steps[1].message_index"), "{e}");
}

#[test]
fn the_written_schema_is_the_documented_one() {
    let schema: Arc<Schema> = records_schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "id",
            "task_id",
            "label",
            "mistake_step",
            "vocab_size",
            "num_messages",
            "message_index",
            "policy",
            "reference",
            "policy_topk_mean",
            "policy_entropy",
            "policy_vocab_mean",
            "judges"
        ]
    );
    let policy = schema.field_with_name("policy").unwrap();
    assert!(!policy.is_nullable());
    let DataType::List(steps) = policy.data_type() else {
        panic!("{policy:?}")
    };
    assert_eq!(
        steps.data_type(),
        &DataType::List(Arc::new(Field::new("item", DataType::Float32, false)))
    );
    assert!(schema.field_with_name("reference").unwrap().is_nullable());
}

#[test]
fn corrupted_bytes_anywhere_give_an_error_or_the_records_never_a_panic() {
    // Seeded single-byte and short-run corruptions over the whole file (footer, page
    // headers, data pages, dictionary).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("good.parquet");
    let mut records = varied_records();
    records.extend(crate::synthetic::synthetic_records(40, 2, 3, 3));
    write_records_parquet_atomic(&path, &records).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let mut rng = crate::rng::SplitMix64::new(19);
    for trial in 0..400 {
        let mut b = bytes.clone();
        let at = rng.below(b.len());
        let run = 1 + rng.below(4);
        for x in b.iter_mut().skip(at).take(run) {
            *x = (rng.next_u64() & 0xFF) as u8;
        }
        let name = PathBuf::from(format!("corrupt-{trial}.parquet"));
        let result =
            std::panic::catch_unwind(|| read_records_parquet_bytes(&name, Bytes::from(b.clone())));
        match result {
            Ok(Ok(got)) => assert_eq!(got.len(), records.len(), "trial {trial}"),
            Ok(Err(e)) => assert!(e.to_string().contains(&format!("corrupt-{trial}")), "{e}"),
            Err(_) => panic!("trial {trial}: reading panicked (byte {at}, {run} bytes)"),
        }
    }
}

#[test]
fn an_in_memory_arrow_batch_reads_like_a_file() {
    let ok = vec![Some(vec![-1.0, -0.5])];
    let batch = RecordBatch::try_from_iter(vec![
        ("id", strings(&["a", "b"])),
        ("task_id", strings(&["t", "t"])),
        ("message_index", int_lists(&[&[1], &[2]])),
        (
            "policy",
            f64_token_lists(&[ok.clone(), vec![Some(vec![0.5])]]),
        ),
    ])
    .unwrap();
    // Row numbers continue from the batch's first row in its table.
    let e = super::records_from_arrow(Path::new("table"), &batch, 10)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("table: record 12") && e.contains("positive log-probability"),
        "{e}"
    );
    let got = super::records_from_arrow(Path::new("table"), &batch.slice(0, 1), 0).unwrap();
    assert_eq!(got[0].steps, vec![step(1, vec![-1.0, -0.5])]);
}
