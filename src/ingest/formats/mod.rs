//! One reader per file format, not per source: a reader turns a file's bytes into records of
//! field slots and hands each to an [`Emit`], which types it or quarantines it.
//!
//! Adding a new format: add a variant to `config::raw::RawFormat` and `config::Format`, a module
//! here with a `read(bytes, emit) -> Result<(), String>` (the `Err` makes the whole file
//! unreadable: the ingest then drops whatever the reader emitted from it), a match arm in [`read_file`], and a
//! fixture test per defect in `tests/readers.rs`.

pub mod csv;
pub mod dvcqg_json;
pub mod ndjson;

use super::typing::{Context, Typer};
use super::value::{FieldIndex, Val};
use crate::config::{Format, Source};

/// A quarantined record (or, with `position: None`, a whole unreadable file).
#[derive(Debug, Clone, PartialEq)]
pub struct BadRecord {
    pub file: String,
    pub position: Option<i64>,
    pub reason: String,
    pub raw: Option<String>,
}

/// Counts of one readable file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub read: u64,
    pub staged: u64,
    pub quarantined: u64,
}

/// Where a reader sends records.
pub struct Emit<'a, 's> {
    pub source: &'s Source,
    pub index: &'a FieldIndex,
    pub typer: &'a mut Typer<'s>,
    pub quarantine: &'a mut Vec<BadRecord>,
    pub ctx: &'a Context<'a>,
    pub extract_day: i32,
    pub file: &'a str,
    pub counts: Counts,
}

impl Emit<'_, '_> {
    /// A record parsed into slots (`Ok`) or that could not be parsed (`Err(reason)`).
    /// `raw` gives the record's text; it is called only when the record is quarantined.
    pub fn record(
        &mut self,
        position: i64,
        parsed: Result<&[Option<Val<'_>>], String>,
        raw: impl FnOnce() -> String,
    ) {
        self.counts.read += 1;
        let res = parsed.and_then(|slots| {
            self.typer
                .push(slots, self.ctx, self.extract_day, self.file, position)
        });
        match res {
            Ok(()) => self.counts.staged += 1,
            Err(reason) => {
                self.counts.quarantined += 1;
                self.quarantine.push(BadRecord {
                    file: self.file.to_string(),
                    position: Some(position),
                    reason,
                    raw: Some(raw()),
                });
            }
        }
    }

    /// Where this file's emitted records start: [`Self::restart`] goes back to it.
    pub fn mark(&self) -> usize {
        self.quarantine.len()
    }

    /// Forget every record emitted since `mark`: the file's typed rows, quarantine entries and
    /// counts (a reader that reads the file again; the ingest, for a file found unreadable).
    pub fn restart(&mut self, mark: usize) {
        *self.typer = Typer::new(self.source);
        self.quarantine.truncate(mark);
        self.counts = Counts::default();
    }

    pub fn slot_count(&self) -> usize {
        self.source.columns.len()
    }
}

/// Field name in the extract → column slot.
pub fn field_index(source: &Source) -> FieldIndex {
    source
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.from.clone(), i))
        .collect()
}

/// Text of a file, or why it is unreadable (not UTF-8, empty or only white space).
pub fn text_of(bytes: &[u8]) -> Result<&str, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // SIMD validation (every byte of the landing passes here: 4-7 GB/s a core against the
    // standard library's 1.5 GB/s on Vietnamese text); the standard library's only to say where
    // a file is not UTF-8.
    let text = match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => std::str::from_utf8(bytes).map_err(|e| match e.error_len() {
            // An incomplete sequence at the very end: the file was cut off.
            None => format!(
                "truncated: the file ends inside a UTF-8 character (byte {})",
                e.valid_up_to() + 1
            ),
            Some(_) => format!("not UTF-8 text: {e}"),
        })?,
    };
    if text.trim().is_empty() {
        return Err(if bytes.is_empty() {
            "empty file (0 bytes)".into()
        } else {
            "empty file (only white space)".into()
        });
    }
    Ok(text)
}

/// Read one file of `source`; `Err` is why the whole file is unreadable (then nothing was emitted).
pub fn read_file(source: &Source, bytes: &[u8], emit: &mut Emit) -> Result<(), String> {
    match &source.format {
        Format::DvcqgJson { service } => dvcqg_json::read(bytes, service, emit),
        Format::Csv => csv::read(bytes, emit),
        Format::Ndjson => ndjson::read(bytes, emit),
    }
}
