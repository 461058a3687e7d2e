//! Log-prob records as Parquet: one row per trajectory, the steps as list columns.
//!
//! | column | type | null means |
//! |---|---|---|
//! | `id` | string | — (required) |
//! | `task_id` | string | — (required) |
//! | `label` | float64 | no reward |
//! | `mistake_step` | int64 | not annotated |
//! | `vocab_size` | int64 | unknown |
//! | `num_messages` | int64 | unknown |
//! | `message_index` | list\<int64\> | — (one entry per step; required) |
//! | `policy` | list\<list\<float32\>\> | — (one token list per step; required) |
//! | `reference` | list\<list\<float32\>\> | whole row: no step has it; one step's list: that step lacks it |
//! | `policy_topk_mean` | list\<list\<float32\>\> | as `reference` |
//! | `policy_entropy` | list\<list\<float32\>\> | as `reference` |
//! | `policy_vocab_mean` | list\<list\<float32\>\> | as `reference` |
//! | `judges` | string (JSON) | no judge: the record's `judges` map as JSON, e.g. `{"rm":{"trajectory":3.5}}` |
//!
//! Step `k` of a row is `message_index[k]`, `policy[k]`, `reference[k]`, …: every present
//! step list has as many entries as `message_index`, and every token list of a step as many
//! as its `policy` list. The optional columns (`label` … `num_messages`, the four optional
//! arrays, `judges`) may be left out of a file altogether.
//!
//! Files written here use snappy compression and row groups of [`ROW_GROUP_ROWS`] rows.
//! Files written by other tools (pyarrow, polars, pandas) are read when their columns have
//! these names: integers may be any of int32/int64/uint32/uint64, floats float32 or float64
//! (a float64 value is rounded to float32, as the JSONL reader does), and large lists or
//! strings are read as lists and strings (the embedded Arrow schema is ignored; the Parquet
//! types decide). Uncompressed and snappy-compressed files are read; another codec (zstd,
//! gzip, …) is refused with the codec's name.
//!
//! Every row is validated exactly as a JSONL line is ([`super::validate`]), and every error
//! names the file, the row (1-based, counted over the whole file, so "record N" means the
//! same as in JSONL without blank lines), the id when it could be read, and the field.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    Float32Builder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, GenericListArray, ListArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, FieldRef, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::arrow_reader::{
    ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::ChunkReader;

use super::{validate, LogprobRecord, RecordError, StepLogprobs};

/// Rows per row group of the files written here (and records per batch when reading): a
/// reader holds about one row group's decoded columns at a time.
pub const ROW_GROUP_ROWS: usize = 65_536;

/// Rows decoded at a time by [`ParquetRecords`].
const READ_BATCH_ROWS: usize = 8_192;

/// The four optional per-token arrays, in schema order.
const OPTIONAL_ARRAYS: [&str; 4] = [
    "reference",
    "policy_topk_mean",
    "policy_entropy",
    "policy_vocab_mean",
];

fn f32_item() -> FieldRef {
    Arc::new(Field::new("item", DataType::Float32, false))
}

fn token_lists(steps_nullable: bool) -> DataType {
    DataType::List(Arc::new(Field::new(
        "item",
        DataType::List(f32_item()),
        steps_nullable,
    )))
}

/// The schema of the files [`ParquetRecordWriter`] writes (see the module docs).
pub fn records_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("task_id", DataType::Utf8, false),
        Field::new("label", DataType::Float64, true),
        Field::new("mistake_step", DataType::Int64, true),
        Field::new("vocab_size", DataType::Int64, true),
        Field::new("num_messages", DataType::Int64, true),
        Field::new(
            "message_index",
            DataType::List(Arc::new(Field::new("item", DataType::Int64, false))),
            false,
        ),
        Field::new("policy", token_lists(false), false),
    ];
    for name in OPTIONAL_ARRAYS {
        fields.push(Field::new(name, token_lists(true), true));
    }
    fields.push(Field::new("judges", DataType::Utf8, true));
    Arc::new(Schema::new(fields))
}

fn parquet_error(path: &Path, message: impl std::fmt::Display) -> RecordError {
    RecordError::Parquet {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// Writing

/// Writes records to any `Write + Send` as one Parquet file, a batch at a time (memory is
/// bounded by one row group). Call [`ParquetRecordWriter::finish`] to write the footer; a
/// writer dropped before it leaves an incomplete file, which is why the file functions
/// ([`write_records_parquet_atomic`]) write to a temporary and rename.
pub struct ParquetRecordWriter<W: Write + Send> {
    writer: ArrowWriter<W>,
    schema: SchemaRef,
    path: PathBuf,
}

impl<W: Write + Send> ParquetRecordWriter<W> {
    /// A writer of the schema [`records_schema`]; `path` is only named in errors.
    pub fn new(path: &Path, sink: W) -> Result<Self, RecordError> {
        let schema = records_schema();
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let writer = ArrowWriter::try_new(sink, schema.clone(), Some(props))
            .map_err(|e| parquet_error(path, e))?;
        Ok(ParquetRecordWriter {
            writer,
            schema,
            path: path.to_path_buf(),
        })
    }

    /// Append `records` (any number; row groups are cut at [`ROW_GROUP_ROWS`]).
    pub fn write(&mut self, records: &[LogprobRecord]) -> Result<(), RecordError> {
        if records.is_empty() {
            return Ok(());
        }
        let batch = to_batch(&self.schema, records).map_err(|e| parquet_error(&self.path, e))?;
        self.writer
            .write(&batch)
            .map_err(|e| parquet_error(&self.path, e))
    }

    /// Write the footer and return the sink.
    pub fn finish(self) -> Result<W, RecordError> {
        self.writer
            .into_inner()
            .map_err(|e| parquet_error(&self.path, e))
    }
}

/// Write records as Parquet atomically (temporary file beside `path`, then renamed).
pub fn write_records_parquet_atomic(
    path: &Path,
    records: &[LogprobRecord],
) -> Result<(), RecordError> {
    write_parquet_atomic_with(path, |w| {
        for chunk in records.chunks(ROW_GROUP_ROWS) {
            w.write(chunk)?;
        }
        Ok(())
    })
}

/// Write a Parquet record file atomically from batches `fill` hands to the writer, so a
/// producer never holds all records at once (e.g. 10^7 synthetic trajectories).
pub fn write_parquet_atomic_with<F>(path: &Path, fill: F) -> Result<(), RecordError>
where
    F: FnOnce(&mut ParquetRecordWriter<&mut (dyn Write + Send)>) -> Result<(), RecordError>,
{
    // The closure's own error is kept aside so it comes back as it was, not as an io error.
    let mut inner: Option<RecordError> = None;
    let result = crate::atomic::write_atomic(path, |w| {
        let run = || -> Result<(), RecordError> {
            let mut writer = ParquetRecordWriter::new(path, w)?;
            fill(&mut writer)?;
            writer.finish()?;
            Ok(())
        };
        run().map_err(|e| {
            let io = std::io::Error::other(e.to_string());
            inner = Some(e);
            io
        })
    });
    match (result, inner) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(e)) => Err(e),
        (Err(source), None) => Err(RecordError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn to_batch(
    schema: &SchemaRef,
    records: &[LogprobRecord],
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let n = records.len();
    let mut id = StringBuilder::with_capacity(n, n * 16);
    let mut task_id = StringBuilder::with_capacity(n, n * 8);
    let mut label = Float64Builder::with_capacity(n);
    let mut mistake_step = Int64Builder::with_capacity(n);
    let mut vocab_size = Int64Builder::with_capacity(n);
    let mut num_messages = Int64Builder::with_capacity(n);
    let mut message_index = ListBuilder::new(Int64Builder::new()).with_field(Arc::new(Field::new(
        "item",
        DataType::Int64,
        false,
    )));
    let token_builder = |steps_nullable: bool| {
        ListBuilder::new(ListBuilder::new(Float32Builder::new()).with_field(f32_item())).with_field(
            Arc::new(Field::new(
                "item",
                DataType::List(f32_item()),
                steps_nullable,
            )),
        )
    };
    let mut policy = token_builder(false);
    let mut optional: Vec<_> = (0..OPTIONAL_ARRAYS.len())
        .map(|_| token_builder(true))
        .collect();
    let mut judges = StringBuilder::new();
    let int = |v: Option<usize>| v.map(|x| i64::try_from(x).unwrap_or(i64::MAX));
    for r in records {
        id.append_value(&r.id);
        task_id.append_value(&r.task_id);
        label.append_option(r.label);
        mistake_step.append_option(int(r.mistake_step));
        vocab_size.append_option(int(r.vocab_size));
        num_messages.append_option(int(r.num_messages));
        for s in &r.steps {
            message_index
                .values()
                .append_value(i64::try_from(s.message_index).unwrap_or(i64::MAX));
        }
        message_index.append(true);
        for s in &r.steps {
            policy.values().values().append_slice(&s.policy);
            policy.values().append(true);
        }
        policy.append(true);
        for (k, b) in optional.iter_mut().enumerate() {
            if r.steps.iter().all(|s| optional_array(s, k).is_none()) {
                b.append(false);
                continue;
            }
            for s in &r.steps {
                match optional_array(s, k) {
                    Some(a) => {
                        b.values().values().append_slice(a);
                        b.values().append(true);
                    }
                    None => b.values().append(false),
                }
            }
            b.append(true);
        }
        if r.judges.is_empty() {
            judges.append_null();
        } else {
            let json = serde_json::to_string(&r.judges)
                .map_err(|e| arrow_schema::ArrowError::ExternalError(Box::new(e)))?;
            judges.append_value(json);
        }
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(task_id.finish()),
        Arc::new(label.finish()),
        Arc::new(mistake_step.finish()),
        Arc::new(vocab_size.finish()),
        Arc::new(num_messages.finish()),
        Arc::new(message_index.finish()),
        Arc::new(policy.finish()),
    ];
    for mut b in optional {
        columns.push(Arc::new(b.finish()));
    }
    columns.push(Arc::new(judges.finish()));
    RecordBatch::try_new(schema.clone(), columns)
}

/// The `k`-th optional array of a step, in [`OPTIONAL_ARRAYS`] order.
fn optional_array(s: &StepLogprobs, k: usize) -> Option<&[f32]> {
    match k {
        0 => s.reference.as_deref(),
        1 => s.policy_topk_mean.as_deref(),
        2 => s.policy_entropy.as_deref(),
        _ => s.policy_vocab_mean.as_deref(),
    }
}

// ---------------------------------------------------------------------------------------
// Reading

/// Read every record of a Parquet file (see the module docs for the schema).
pub fn read_records_parquet(path: &Path) -> Result<Vec<LogprobRecord>, RecordError> {
    ParquetRecords::open(path)?.collect_all()
}

/// Read every record of an in-memory Parquet file (e.g. a buffer pyarrow wrote); `name` is
/// only used in error messages.
pub fn read_records_parquet_bytes(
    name: &Path,
    bytes: Bytes,
) -> Result<Vec<LogprobRecord>, RecordError> {
    ParquetRecords::from_bytes(name, bytes)?.collect_all()
}

/// The records of a Parquet file, a batch at a time: an iterator of `Vec<LogprobRecord>`
/// of at most 8192 records each, every record validated. Only the batch being decoded is in
/// memory.
pub struct ParquetRecords {
    reader: ParquetRecordBatchReader,
    path: PathBuf,
    /// Rows returned so far (the next row's 0-based number).
    row: usize,
    /// Set after the first error: the iterator then ends.
    failed: bool,
}

impl ParquetRecords {
    /// Open a Parquet record file.
    pub fn open(path: &Path) -> Result<Self, RecordError> {
        let file = File::open(path).map_err(|source| RecordError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::new(path, file)
    }

    /// Read an in-memory Parquet file; `name` is only used in error messages.
    pub fn from_bytes(name: &Path, bytes: Bytes) -> Result<Self, RecordError> {
        Self::new(name, bytes)
    }

    fn new<T: ChunkReader + 'static>(path: &Path, source: T) -> Result<Self, RecordError> {
        // The Parquet types decide the Arrow types, whatever Arrow schema a writer embedded
        // (polars embeds large lists and string views): one set of types to accept.
        let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
        let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(source, options)
            .map_err(|e| parquet_error(path, format!("not a readable Parquet file: {e}")))?;
        let schema = reader.schema().clone();
        check_schema(&schema).map_err(|m| parquet_error(path, m))?;
        let reader = reader
            .with_batch_size(READ_BATCH_ROWS)
            .build()
            .map_err(|e| parquet_error(path, e))?;
        Ok(ParquetRecords {
            reader,
            path: path.to_path_buf(),
            row: 0,
            failed: false,
        })
    }

    fn collect_all(self) -> Result<Vec<LogprobRecord>, RecordError> {
        let mut out = Vec::new();
        for batch in self {
            out.extend(batch?);
        }
        Ok(out)
    }

    fn decode(&mut self, batch: &RecordBatch) -> Result<Vec<LogprobRecord>, RecordError> {
        let out = records_from_arrow(&self.path, batch, self.row)?;
        self.row += batch.num_rows();
        Ok(out)
    }
}

/// The records of one Arrow record batch in this module's schema — e.g. a batch of a
/// pyarrow table handed over in memory — each validated as the file readers do. `name` and
/// `first_row` (the batch's first row in its table, 0-based) only serve the messages.
///
/// The batch's own types count here (no Parquet file decides them): lists are `list` (32-bit
/// offsets) and strings `string`/`utf8`, as pyarrow builds them by default; integer and float
/// widths are as for files.
pub fn records_from_arrow(
    name: &Path,
    batch: &RecordBatch,
    first_row: usize,
) -> Result<Vec<LogprobRecord>, RecordError> {
    let cols = Columns::of(batch).map_err(|m| parquet_error(name, m))?;
    let mut out = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let invalid = |id: Option<String>, message: String| RecordError::InvalidRow {
            path: name.to_path_buf(),
            row: first_row + i + 1,
            id,
            message,
        };
        let id = cols.id.is_valid(i).then(|| cols.id.value(i).to_string());
        let record = cols.record(i).map_err(|m| invalid(id.clone(), m))?;
        validate(&record).map_err(|m| invalid(id, m))?;
        out.push(record);
    }
    Ok(out)
}

impl Iterator for ParquetRecords {
    type Item = Result<Vec<LogprobRecord>, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let result = match self.reader.next()? {
            Ok(batch) => self.decode(&batch),
            Err(e) => Err(parquet_error(
                &self.path,
                format!("after record {}: {e}", self.row),
            )),
        };
        self.failed = result.is_err();
        Some(result)
    }
}

/// Required columns present, and every present column of a type this reader knows.
fn check_schema(schema: &Schema) -> Result<(), String> {
    for name in ["id", "task_id", "message_index", "policy"] {
        if schema.field_with_name(name).is_err() {
            return Err(format!(
                "column {name} is missing (a record file needs id, task_id, message_index \
                 and policy)"
            ));
        }
    }
    Ok(())
}

/// Integer columns: the widths other writers choose.
enum Ints<'a> {
    I32(&'a arrow_array::Int32Array),
    I64(&'a arrow_array::Int64Array),
    U32(&'a arrow_array::UInt32Array),
    U64(&'a arrow_array::UInt64Array),
}

impl<'a> Ints<'a> {
    fn of(name: &str, a: &'a dyn Array) -> Result<Ints<'a>, String> {
        Ok(match a.data_type() {
            DataType::Int32 => Ints::I32(a.as_primitive::<Int32Type>()),
            DataType::Int64 => Ints::I64(a.as_primitive::<Int64Type>()),
            DataType::UInt32 => Ints::U32(a.as_primitive::<UInt32Type>()),
            DataType::UInt64 => Ints::U64(a.as_primitive::<UInt64Type>()),
            other => return Err(format!("column {name}: expected integers, found {other}")),
        })
    }

    /// Value `i` as a `usize`; `None` when null; an error for a negative value.
    fn get(&self, i: usize, field: &dyn Fn() -> String) -> Result<Option<usize>, String> {
        let v: Option<i128> = match self {
            Ints::I32(a) => a.is_valid(i).then(|| a.value(i).into()),
            Ints::I64(a) => a.is_valid(i).then(|| a.value(i).into()),
            Ints::U32(a) => a.is_valid(i).then(|| a.value(i).into()),
            Ints::U64(a) => a.is_valid(i).then(|| a.value(i).into()),
        };
        match v {
            None => Ok(None),
            Some(v) => usize::try_from(v)
                .map(Some)
                .map_err(|_| format!("field {}: {v} is not a non-negative integer", field())),
        }
    }

    fn len(&self) -> usize {
        match self {
            Ints::I32(a) => a.len(),
            Ints::I64(a) => a.len(),
            Ints::U32(a) => a.len(),
            Ints::U64(a) => a.len(),
        }
    }
}

/// Float values: float32, or float64 rounded to float32.
enum Floats<'a> {
    F32(&'a arrow_array::Float32Array),
    F64(&'a arrow_array::Float64Array),
}

impl<'a> Floats<'a> {
    fn of(name: &str, a: &'a dyn Array) -> Result<Floats<'a>, String> {
        Ok(match a.data_type() {
            DataType::Float32 => Floats::F32(a.as_primitive::<Float32Type>()),
            DataType::Float64 => Floats::F64(a.as_primitive::<Float64Type>()),
            other => return Err(format!("column {name}: expected floats, found {other}")),
        })
    }

    fn null_count(&self) -> usize {
        match self {
            Floats::F32(a) => a.null_count(),
            Floats::F64(a) => a.null_count(),
        }
    }

    fn is_null(&self, i: usize) -> bool {
        match self {
            Floats::F32(a) => a.is_null(i),
            Floats::F64(a) => a.is_null(i),
        }
    }

    /// Values `range`, or `None` when the range lies outside the array (a corrupt file).
    fn slice(&self, range: std::ops::Range<usize>) -> Option<Vec<f32>> {
        match self {
            Floats::F32(a) => a.values().get(range).map(<[f32]>::to_vec),
            // Rounding to f32 is the JSONL reader's behaviour too (serde reads an f64, then
            // casts); a value beyond f32's range becomes infinite and validation refuses it.
            #[allow(clippy::cast_possible_truncation)]
            Floats::F64(a) => a
                .values()
                .get(range)
                .map(|v| v.iter().map(|&x| x as f32).collect()),
        }
    }
}

/// A `list<list<float>>` column: per row, per step, the tokens.
struct TokenColumn<'a> {
    name: &'static str,
    outer: &'a ListArray,
    inner: &'a ListArray,
    values: Floats<'a>,
}

impl<'a> TokenColumn<'a> {
    fn of(name: &'static str, a: &'a dyn Array) -> Result<TokenColumn<'a>, String> {
        let wrong = || {
            format!(
                "column {name}: expected list<list<float>> (per step, per token), found {}",
                a.data_type()
            )
        };
        let outer = a.as_list_opt::<i32>().ok_or_else(wrong)?;
        let inner = outer.values().as_list_opt::<i32>().ok_or_else(wrong)?;
        let values = Floats::of(name, inner.values().as_ref())?;
        Ok(TokenColumn {
            name,
            outer,
            inner,
            values,
        })
    }

    /// Row `row`'s step lists (`None` for a null row); each step `None` when null.
    fn row(&self, row: usize, n_steps: usize) -> Result<Option<Vec<Option<Vec<f32>>>>, String> {
        let name = self.name;
        if self.outer.is_null(row) {
            return Ok(None);
        }
        let steps = list_range(self.outer, row)
            .ok_or_else(|| format!("field {name}: list offsets outside the column"))?;
        if steps.len() != n_steps {
            return Err(format!(
                "field {name}: {} steps, but message_index has {n_steps}",
                steps.len()
            ));
        }
        let mut out = Vec::with_capacity(n_steps);
        for (k, s) in steps.enumerate() {
            if self.inner.is_null(s) {
                out.push(None);
                continue;
            }
            let tokens = list_range(self.inner, s)
                .ok_or_else(|| format!("field steps[{k}].{name}: offsets outside the column"))?;
            if self.values.null_count() > 0 {
                if let Some(t) = tokens.clone().position(|t| self.values.is_null(t)) {
                    return Err(format!("field steps[{k}].{name}[{t}]: null"));
                }
            }
            let values = self
                .values
                .slice(tokens)
                .ok_or_else(|| format!("field steps[{k}].{name}: offsets outside the column"))?;
            out.push(Some(values));
        }
        Ok(Some(out))
    }
}

/// The value range of list `i`, checked against the child's length.
fn list_range(list: &GenericListArray<i32>, i: usize) -> Option<std::ops::Range<usize>> {
    let offsets = list.value_offsets();
    let a = usize::try_from(*offsets.get(i)?).ok()?;
    let b = usize::try_from(*offsets.get(i + 1)?).ok()?;
    (a <= b && b <= list.values().len()).then_some(a..b)
}

/// One batch's columns, type-checked.
struct Columns<'a> {
    id: &'a StringArray,
    task_id: &'a StringArray,
    label: Option<Floats<'a>>,
    mistake_step: Option<Ints<'a>>,
    vocab_size: Option<Ints<'a>>,
    num_messages: Option<Ints<'a>>,
    message_index: &'a ListArray,
    message_values: Ints<'a>,
    policy: TokenColumn<'a>,
    optional: Vec<TokenColumn<'a>>,
    judges: Option<&'a StringArray>,
}

impl<'a> Columns<'a> {
    fn of(batch: &'a RecordBatch) -> Result<Columns<'a>, String> {
        let get = |name: &str| batch.column_by_name(name).map(|c| c.as_ref());
        let required = |name: &str| get(name).ok_or_else(|| format!("column {name} is missing"));
        let string = |name: &str, a: &'a dyn Array| {
            a.as_string_opt::<i32>()
                .ok_or_else(|| format!("column {name}: expected strings, found {}", a.data_type()))
        };
        let message_index = required("message_index")?;
        let message_list = message_index.as_list_opt::<i32>().ok_or_else(|| {
            format!(
                "column message_index: expected list<int>, found {}",
                message_index.data_type()
            )
        })?;
        let optional = OPTIONAL_ARRAYS
            .iter()
            .filter_map(|&name| get(name).map(|a| TokenColumn::of(name, a)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Columns {
            id: string("id", required("id")?)?,
            task_id: string("task_id", required("task_id")?)?,
            label: get("label").map(|a| Floats::of("label", a)).transpose()?,
            mistake_step: get("mistake_step")
                .map(|a| Ints::of("mistake_step", a))
                .transpose()?,
            vocab_size: get("vocab_size")
                .map(|a| Ints::of("vocab_size", a))
                .transpose()?,
            num_messages: get("num_messages")
                .map(|a| Ints::of("num_messages", a))
                .transpose()?,
            message_values: Ints::of("message_index", message_list.values().as_ref())?,
            message_index: message_list,
            policy: TokenColumn::of("policy", required("policy")?)?,
            optional,
            judges: get("judges").map(|a| string("judges", a)).transpose()?,
        })
    }

    /// Row `i` as a record (not yet validated).
    fn record(&self, i: usize) -> Result<LogprobRecord, String> {
        let text = |a: &StringArray, name: &str| {
            a.is_valid(i)
                .then(|| a.value(i).to_string())
                .ok_or_else(|| format!("field {name}: null"))
        };
        let int = |c: &Option<Ints<'_>>, name: &'static str| match c {
            Some(c) => c.get(i, &|| name.to_string()),
            None => Ok(None),
        };
        let label = match &self.label {
            Some(Floats::F64(a)) => a.is_valid(i).then(|| a.value(i)),
            Some(Floats::F32(a)) => a.is_valid(i).then(|| f64::from(a.value(i))),
            None => None,
        };
        if self.message_index.is_null(i) {
            return Err("field message_index: null (a record with no step has [])".into());
        }
        let range = list_range(self.message_index, i)
            .filter(|r| r.end <= self.message_values.len())
            .ok_or("field message_index: list offsets outside the column")?;
        let mut message_index = Vec::with_capacity(range.len());
        for (k, v) in range.enumerate() {
            let field = || format!("steps[{k}].message_index");
            message_index.push(
                self.message_values
                    .get(v, &field)?
                    .ok_or_else(|| format!("field {}: null", field()))?,
            );
        }
        let n = message_index.len();
        let policy = self
            .policy
            .row(i, n)?
            .ok_or("field policy: null (a record with no step has [])")?;
        let mut steps: Vec<StepLogprobs> = Vec::with_capacity(n);
        for (k, (mi, p)) in message_index.into_iter().zip(policy).enumerate() {
            steps.push(StepLogprobs {
                message_index: mi,
                policy: p.ok_or_else(|| format!("field steps[{k}].policy: null"))?,
                ..Default::default()
            });
        }
        for col in &self.optional {
            let Some(arrays) = col.row(i, n)? else {
                continue;
            };
            for (step, a) in steps.iter_mut().zip(arrays) {
                let slot = match col.name {
                    "reference" => &mut step.reference,
                    "policy_topk_mean" => &mut step.policy_topk_mean,
                    "policy_entropy" => &mut step.policy_entropy,
                    _ => &mut step.policy_vocab_mean,
                };
                *slot = a;
            }
        }
        let judges = match self.judges {
            Some(a) if a.is_valid(i) => {
                serde_json::from_str(a.value(i)).map_err(|e| format!("field judges: {e}"))?
            }
            _ => Default::default(),
        };
        Ok(LogprobRecord {
            id: text(self.id, "id")?,
            task_id: text(self.task_id, "task_id")?,
            label,
            mistake_step: int(&self.mistake_step, "mistake_step")?,
            vocab_size: int(&self.vocab_size, "vocab_size")?,
            num_messages: int(&self.num_messages, "num_messages")?,
            steps,
            judges,
        })
    }
}
