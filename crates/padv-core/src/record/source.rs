//! The one way in for record files, whatever their format: JSONL or Parquet, told apart by
//! content (a Parquet file starts with the magic bytes `PAR1`), not by extension — so a
//! Parquet file named `records.jsonl` is still read as Parquet, and a JSONL file named
//! `x.parquet` as JSONL.

use std::io::Read;
use std::path::Path;

use super::io::{write_records_atomic, JsonlRecords};
use super::parquet::{write_records_parquet_atomic, ParquetRecords};
use super::{LogprobRecord, RecordError};
use crate::score::names::named_enum;

named_enum! {
    /// The format of a record file.
    #[serde(rename_all = "snake_case")]
    pub enum RecordFormat ("record format") {
        /// One JSON object per line ([`crate::record`]).
        Jsonl = "jsonl",
        /// One row per trajectory, steps as list columns ([`crate::record::parquet`]).
        Parquet = "parquet",
    }
}

impl RecordFormat {
    /// The file extension padv gives this format (`jsonl`, `parquet`).
    pub fn extension(self) -> &'static str {
        self.name()
    }

    /// `records.<extension>`: the record file `padv score` writes in its output folder.
    pub fn records_file_name(self) -> String {
        format!("records.{}", self.extension())
    }
}

/// The format of `path`, from its first four bytes: Parquet when they are `PAR1`, else JSONL.
pub fn detect_format(path: &Path) -> Result<RecordFormat, RecordError> {
    let io = |source| RecordError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < magic.len() {
        match file.read(&mut magic[got..]).map_err(io)? {
            0 => break,
            n => got += n,
        }
    }
    Ok(if got == 4 && &magic == b"PAR1" {
        RecordFormat::Parquet
    } else {
        RecordFormat::Jsonl
    })
}

/// Read every record of a file, JSONL or Parquet ([`detect_format`]); every record is
/// validated ([`super::validate`]) and an error names the file, the record and the field.
pub fn read_records(path: &Path) -> Result<Vec<LogprobRecord>, RecordError> {
    let mut out = Vec::new();
    for batch in RecordBatches::open(path)? {
        out.extend(batch?);
    }
    Ok(out)
}

/// Write records atomically in `format`.
pub fn write_records_as(
    path: &Path,
    records: &[LogprobRecord],
    format: RecordFormat,
) -> Result<(), RecordError> {
    match format {
        RecordFormat::Jsonl => write_records_atomic(path, records),
        RecordFormat::Parquet => write_records_parquet_atomic(path, records),
    }
}

/// The records of a file, JSONL or Parquet, a batch (at most 8192 records) at a time, each
/// record validated: only one batch is in memory, so a reduction over the batches (e.g.
/// [`crate::score::ScoreTableBuilder`]) never holds the file's token arrays.
pub enum RecordBatches {
    /// A JSONL file.
    Jsonl(JsonlRecords),
    /// A Parquet file.
    Parquet(ParquetRecords),
}

impl RecordBatches {
    /// Open a record file of either format.
    pub fn open(path: &Path) -> Result<Self, RecordError> {
        Ok(match detect_format(path)? {
            RecordFormat::Jsonl => RecordBatches::Jsonl(JsonlRecords::open(path)?),
            RecordFormat::Parquet => RecordBatches::Parquet(ParquetRecords::open(path)?),
        })
    }

    /// The file's format.
    pub fn format(&self) -> RecordFormat {
        match self {
            RecordBatches::Jsonl(_) => RecordFormat::Jsonl,
            RecordBatches::Parquet(_) => RecordFormat::Parquet,
        }
    }
}

impl Iterator for RecordBatches {
    type Item = Result<Vec<LogprobRecord>, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            RecordBatches::Jsonl(r) => r.next(),
            RecordBatches::Parquet(r) => r.next(),
        }
    }
}
