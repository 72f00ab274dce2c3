//! From field values to typed Arrow columns, applying the contract's record rules. A record is
//! either fully converted and appended, or rejected with a reason (and nothing appended).

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Builder, Int64Builder, ListArray, RecordBatch, StringBuilder,
    StructArray, TimestampMicrosecondBuilder,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::pseudonymise::{Pseudonymiser, Token, TokenMemo};
use super::value::Val;
use crate::base::dates::date_to_days;
use crate::base::text::nfc_cow;
use crate::config::{Column, DateFormat, Kind, Source, TsFormat};

/// Time zone of every local timestamp in the extracts.
pub const TZ: &str = "Asia/Ho_Chi_Minh";

pub fn arrow_type(kind: &Kind) -> DataType {
    match kind {
        Kind::String => DataType::Utf8,
        Kind::Int => DataType::Int64,
        Kind::Timestamp(_) => DataType::Timestamp(TimeUnit::Microsecond, Some(TZ.into())),
        Kind::Date(_) => DataType::Date32,
        Kind::List(fields) => DataType::List(Arc::new(Field::new(
            "item",
            DataType::Struct(struct_fields(fields)),
            true,
        ))),
    }
}

fn struct_fields(cols: &[Column]) -> Fields {
    cols.iter()
        .map(|c| Field::new(&c.name, arrow_type(&c.kind), true))
        .collect()
}

/// The staging schema of a source: its declared columns, then the ingest metadata.
pub fn staging_schema(source: &Source) -> SchemaRef {
    let mut fields: Vec<Field> = source
        .columns
        .iter()
        .map(|c| Field::new(&c.name, arrow_type(&c.kind), !c.required))
        .collect();
    fields.push(Field::new("extract_date", DataType::Date32, false));
    fields.push(Field::new("source_file", DataType::Utf8, false));
    fields.push(Field::new("source_position", DataType::Int64, false));
    Arc::new(Schema::new(fields))
}

/// Writer settings of a source's staging files: the pseudonym columns plain
/// ([`plain_pseudonyms`]); without a dictionary the columns whose values hardly repeat in a day
/// (timestamps, the key, the record's position: a dictionary of unique values is larger than
/// the values, and costs a hash and a comparison per value to build and a lookup per value to
/// read); everything else the warehouse's defaults (Snappy, dictionaries, statistics).
pub fn staging_props(source: &Source) -> WriterProperties {
    use parquet::schema::types::ColumnPath;
    let mut props = plain_pseudonyms(crate::store::publish::default_props(), source);
    let unique = source
        .columns
        .iter()
        .filter(|c| !c.pii)
        .filter(|c| matches!(c.kind, Kind::Timestamp(_)) || source.key == [c.name.as_str()])
        .map(|c| c.name.as_str())
        .chain(["source_position"]);
    for name in unique {
        props = props.set_column_dictionary_enabled(ColumnPath::from(name), false);
    }
    props.build()
}

/// A source's pseudonym columns, wherever they are written (staging, month-end snapshots): a
/// pseudonym is 32 hex digits of a digest (64 in warehouses recorded before), so no dictionary
/// (nearly every value differs), no compression (Snappy saved < 1% of those columns in staging,
/// ≈ 9% in a snapshot, for the cost of compressing three quarters of a dossier row) and no
/// statistics (no query prunes by a token).
pub fn plain_pseudonyms(
    mut props: parquet::file::properties::WriterPropertiesBuilder,
    source: &Source,
) -> parquet::file::properties::WriterPropertiesBuilder {
    use parquet::file::properties::EnabledStatistics;
    use parquet::schema::types::ColumnPath;
    for c in source.columns.iter().filter(|c| c.pii) {
        let path = ColumnPath::from(c.name.as_str());
        props = props
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_compression(path.clone(), Compression::UNCOMPRESSED)
            .set_column_statistics_enabled(path, EnabledStatistics::None);
    }
    props
}

/// A converted value, before it is appended.
#[derive(Debug, Clone, PartialEq)]
pub enum Typed<'a> {
    Null,
    Str(Cow<'a, str>),
    /// Personal data, pseudonymised: staged as its digest's hex.
    Token(Token),
    Int(i64),
    Micros(i64),
    Date(i32),
    List(Vec<Vec<Typed<'a>>>),
}

/// What a conversion needs besides the column: the unit codes, the pseudonymiser and the
/// source-day's memo of tokens.
pub struct Context<'c> {
    pub units: &'c foldhash::HashSet<String>,
    pub pii: &'c Pseudonymiser,
    memo: TokenMemo,
}

impl<'c> Context<'c> {
    /// A context for one source-day (one thread): its memo of tokens starts empty.
    pub fn new(units: &'c foldhash::HashSet<String>, pii: &'c Pseudonymiser) -> Self {
        Self {
            units,
            pii,
            memo: TokenMemo::default(),
        }
    }

    /// The token of a personal value (already NFC) of `col`.
    fn token(&self, col: &Column, value: &str) -> Token {
        // The column's address identifies it: the source outlives the context.
        self.memo
            .digest(self.pii, col as *const Column as usize, value)
    }
}

/// From this year on, local time in Asia/Ho_Chi_Minh is UTC+7 all year: its last change of offset
/// was on 1975-06-13 (no daylight saving since). A test compares with the time-zone database.
const FIXED_OFFSET_SINCE_YEAR: i32 = 1976;
/// The zone's offset from UTC since 1976.
pub const OFFSET_MICROS: i64 = 7 * 3600 * 1_000_000;
/// The first instant of 1976 in the zone, in microseconds since the epoch
/// (1976-01-01T00:00+07:00: 2,191 days after 1970-01-01, less the offset).
pub const FIXED_OFFSET_SINCE_UTC_MICROS: i64 = 2_191 * 86_400 * 1_000_000 - OFFSET_MICROS;

fn local_micros(dt: NaiveDateTime) -> Option<i64> {
    if dt.year() >= FIXED_OFFSET_SINCE_YEAR {
        // The extracts' timestamps: a subtraction instead of the database's search of the
        // zone's transitions (a fifth of the typing of a dossier version).
        return Some(dt.and_utc().timestamp_micros() - OFFSET_MICROS);
    }
    chrono_tz::Asia::Ho_Chi_Minh
        .from_local_datetime(&dt)
        .single()
        .map(|t| t.timestamp_micros())
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn num(s: &str) -> u32 {
    s.bytes().fold(0, |a, b| a * 10 + (b - b'0') as u32)
}

/// `yyyyMMddHHmmss`, local time.
pub fn parse_compact(s: &str) -> Option<i64> {
    if s.len() != 14 || !digits(s) {
        return None;
    }
    let d = NaiveDate::from_ymd_opt(num(&s[0..4]) as i32, num(&s[4..6]), num(&s[6..8]))?;
    let t = NaiveTime::from_hms_opt(num(&s[8..10]), num(&s[10..12]), num(&s[12..14]))?;
    local_micros(d.and_time(t))
}

/// `dd/MM/yyyy`.
pub fn parse_day_first_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if s.len() != 10
        || b[2] != b'/'
        || b[5] != b'/'
        || !digits(&s[0..2])
        || !digits(&s[3..5])
        || !digits(&s[6..10])
    {
        return None;
    }
    NaiveDate::from_ymd_opt(num(&s[6..10]) as i32, num(&s[3..5]), num(&s[0..2]))
}

/// `dd/MM/yyyy` or `dd/MM/yyyy HH:mm`, local time.
pub fn parse_day_first(s: &str) -> Option<i64> {
    let (d, t) = match s.len() {
        10 => (parse_day_first_date(s)?, NaiveTime::MIN),
        16 if s.as_bytes()[10] == b' '
            && s.as_bytes()[13] == b':'
            && digits(&s[11..13])
            && digits(&s[14..16]) =>
        {
            (
                parse_day_first_date(&s[..10])?,
                NaiveTime::from_hms_opt(num(&s[11..13]), num(&s[14..16]), 0)?,
            )
        }
        _ => return None,
    };
    local_micros(d.and_time(t))
}

/// RFC 3339 with an offset (`Z` counts as one).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_micros())
}

fn format_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Timestamp(TsFormat::Compact) => "yyyyMMddHHmmss",
        Kind::Timestamp(TsFormat::DayFirst) => "dd/MM/yyyy or dd/MM/yyyy HH:mm",
        Kind::Timestamp(TsFormat::Rfc3339) => "RFC 3339 with an offset",
        Kind::Date(DateFormat::DayFirst) => "dd/MM/yyyy",
        Kind::Int => "an integer",
        _ => "",
    }
}

/// Convert one field. `Err` is the reason that makes the record bad.
pub fn convert<'a>(col: &Column, v: Option<&Val<'a>>, ctx: &Context) -> Result<Typed<'a>, String> {
    let missing = |what: &str| -> Result<Typed<'a>, String> {
        if col.required {
            Err(format!("required field `{}` is {what}", col.from))
        } else {
            Ok(Typed::Null)
        }
    };
    let s: &Cow<'a, str> = match v {
        None => return missing("missing"),
        Some(Val::Str(s)) if s.is_empty() => return missing("empty"),
        Some(Val::Null) if col.nullable && !col.required => return Ok(Typed::Null),
        Some(Val::Int(i)) if matches!(col.kind, Kind::Int) => return Ok(Typed::Int(*i)),
        Some(Val::Arr(items)) if matches!(col.kind, Kind::List(_)) => {
            let Kind::List(fields) = &col.kind else {
                unreachable!()
            };
            return convert_list(col, fields, items, ctx);
        }
        Some(Val::Str(s)) => s,
        Some(other) => {
            let expected = match col.kind {
                Kind::List(_) => "an array of objects",
                Kind::Int => "an integer or a string of digits",
                _ => "a string",
            };
            return Err(format!(
                "field `{}` is {}, expected {expected}",
                col.from,
                other.kind()
            ));
        }
    };
    if matches!(col.kind, Kind::List(_)) {
        return Err(format!(
            "field `{}` is a string, expected an array of objects",
            col.from
        ));
    }
    let text: Cow<'a, str> = match s {
        Cow::Borrowed(b) => nfc_cow(b),
        Cow::Owned(o) => Cow::Owned(nfc_cow(o).into_owned()),
    };
    let bad_value = || {
        if has_date_shape(&col.kind, &text) {
            // The right digits in the right places, but no such day or time (31/02/2022).
            format!(
                "field `{}` = `{}` is not a date (no such day or time)",
                col.from, text
            )
        } else {
            format!(
                "field `{}` = `{}` is not {}",
                col.from,
                text,
                format_name(&col.kind)
            )
        }
    };
    match &col.kind {
        Kind::String => {
            if let Some(allowed) = &col.allowed {
                if !allowed.iter().any(|a| a == text.as_ref()) {
                    return Err(format!(
                        "field `{}` = `{}` is not one of {}",
                        col.from,
                        text,
                        allowed.join(", ")
                    ));
                }
            }
            if col.references_units && !ctx.units.contains(text.as_ref()) {
                return Err(format!(
                    "field `{}` = `{}` is not a unit code of units.csv",
                    col.from, text
                ));
            }
            if col.pii {
                return Ok(Typed::Token(ctx.token(col, &text)));
            }
            Ok(Typed::Str(text))
        }
        Kind::Int => {
            if digits(&text) {
                text.parse::<i64>().map(Typed::Int).map_err(|_| bad_value())
            } else {
                Err(bad_value())
            }
        }
        Kind::Timestamp(f) => {
            let micros = match f {
                TsFormat::Compact => parse_compact(&text),
                TsFormat::DayFirst => parse_day_first(&text),
                TsFormat::Rfc3339 => parse_rfc3339(&text),
            };
            micros.map(Typed::Micros).ok_or_else(bad_value)
        }
        Kind::Date(DateFormat::DayFirst) => parse_day_first_date(&text)
            .map(|d| Typed::Date(date_to_days(d)))
            .ok_or_else(bad_value),
        Kind::List(_) => unreachable!(),
    }
}

/// Whether `text` has the form of the column's day-first or compact date (digits where digits go),
/// so that a failed parse means an impossible day rather than another format.
fn has_date_shape(kind: &Kind, text: &str) -> bool {
    let shape: String = text
        .chars()
        .map(|c| if c.is_ascii_digit() { 'd' } else { c })
        .collect();
    match kind {
        Kind::Timestamp(TsFormat::Compact) => shape == "dddddddddddddd",
        Kind::Timestamp(TsFormat::DayFirst) => shape == "dd/dd/dddd" || shape == "dd/dd/dddd dd:dd",
        Kind::Date(DateFormat::DayFirst) => shape == "dd/dd/dddd",
        _ => false,
    }
}

fn convert_list<'a>(
    col: &Column,
    fields: &[Column],
    items: &[Val<'a>],
    ctx: &Context,
) -> Result<Typed<'a>, String> {
    let mut out = Vec::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        let Val::Obj(pairs) = item else {
            return Err(format!(
                "field `{}` item {} is {}, expected an object",
                col.from,
                n + 1,
                item.kind()
            ));
        };
        if let Some((k, v)) = pairs.iter().find(|(_, v)| !matches!(v, Val::Str(_))) {
            return Err(format!(
                "field `{}` item {}: `{k}` is {}, expected a string",
                col.from,
                n + 1,
                v.kind()
            ));
        }
        let mut row = Vec::with_capacity(fields.len());
        for f in fields {
            let v = pairs
                .iter()
                .rev()
                .find(|(k, _)| k.as_ref() == f.from)
                .map(|(_, v)| v);
            row.push(
                convert(f, v, ctx)
                    .map_err(|e| format!("field `{}` item {}: {e}", col.from, n + 1))?,
            );
        }
        out.push(row);
    }
    Ok(Typed::List(out))
}

/// Column buffers of one staging batch.
enum ColBuf {
    Str(StringBuilder),
    Int(Int64Builder),
    Ts(TimestampMicrosecondBuilder),
    Date(Date32Builder),
    List {
        offsets: Vec<i32>,
        valid: Vec<bool>,
        children: Vec<ColBuf>,
        fields: Fields,
    },
}

impl ColBuf {
    fn new(kind: &Kind) -> Self {
        Self::with_capacity(kind, 0, 0)
    }

    /// Room for `rows` values, and `bytes` of text in a text column.
    fn with_capacity(kind: &Kind, rows: usize, bytes: usize) -> Self {
        match kind {
            Kind::String => ColBuf::Str(StringBuilder::with_capacity(rows, bytes)),
            Kind::Int => ColBuf::Int(Int64Builder::with_capacity(rows)),
            Kind::Timestamp(_) => {
                ColBuf::Ts(TimestampMicrosecondBuilder::with_capacity(rows).with_timezone(TZ))
            }
            Kind::Date(_) => ColBuf::Date(Date32Builder::with_capacity(rows)),
            Kind::List(cols) => ColBuf::List {
                offsets: vec![0],
                valid: Vec::new(),
                children: cols.iter().map(|c| ColBuf::new(&c.kind)).collect(),
                fields: struct_fields(cols),
            },
        }
    }

    fn push(&mut self, v: &Typed) {
        match (self, v) {
            (ColBuf::Str(b), Typed::Str(s)) => b.append_value(s),
            (ColBuf::Str(b), Typed::Token(t)) => b.append_value(t.hex(&mut [0; 64])),
            (ColBuf::Str(b), _) => b.append_null(),
            (ColBuf::Int(b), Typed::Int(i)) => b.append_value(*i),
            (ColBuf::Int(b), _) => b.append_null(),
            (ColBuf::Ts(b), Typed::Micros(t)) => b.append_value(*t),
            (ColBuf::Ts(b), _) => b.append_null(),
            (ColBuf::Date(b), Typed::Date(d)) => b.append_value(*d),
            (ColBuf::Date(b), _) => b.append_null(),
            (
                ColBuf::List {
                    offsets,
                    valid,
                    children,
                    ..
                },
                v,
            ) => {
                let last = *offsets.last().unwrap();
                match v {
                    Typed::List(rows) => {
                        for row in rows {
                            for (c, x) in children.iter_mut().zip(row) {
                                c.push(x);
                            }
                        }
                        offsets.push(last + rows.len() as i32);
                        valid.push(true);
                    }
                    _ => {
                        offsets.push(last);
                        valid.push(false);
                    }
                }
            }
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColBuf::Str(b) => Arc::new(b.finish()),
            ColBuf::Int(b) => Arc::new(b.finish()),
            ColBuf::Ts(b) => Arc::new(b.finish()),
            ColBuf::Date(b) => Arc::new(b.finish()),
            ColBuf::List {
                offsets,
                valid,
                children,
                fields,
            } => {
                let arrays: Vec<ArrayRef> = children.iter_mut().map(|c| c.finish()).collect();
                let len = *offsets.last().unwrap() as usize;
                let values = if fields.is_empty() {
                    StructArray::new_empty_fields(len, None)
                } else {
                    StructArray::new(fields.clone(), arrays, None)
                };
                let item = Arc::new(Field::new("item", DataType::Struct(fields.clone()), true));
                let offs = OffsetBuffer::new(std::mem::replace(offsets, vec![0]).into());
                let nulls = NullBuffer::from(std::mem::take(valid));
                Arc::new(ListArray::new(item, offs, Arc::new(values), Some(nulls)))
            }
        }
    }
}

/// Builds the staging batch of one source and day.
///
/// Each field is appended to its column as soon as it is converted; a record found bad (a field
/// that does not convert, a rule) gets nulls in its remaining columns and is marked rejected, and
/// [`Typer::finish`] drops the rejected rows. Bad records are rare, so converting straight into
/// the columns (no per-record vector of converted values to allocate, fill and free) costs less
/// than keeping each record aside until it is known good: the filter runs only for a file that
/// had a bad record.
pub struct Typer<'s> {
    source: &'s Source,
    schema: SchemaRef,
    cols: Vec<ColBuf>,
    extract_date: Date32Builder,
    file: StringBuilder,
    position: Int64Builder,
    /// Per row: kept (`true`) or rejected.
    keep: Vec<bool>,
    /// Per column, whether the current record's value is null (for the rules).
    null: Vec<bool>,
}

impl<'s> Typer<'s> {
    pub fn new(source: &'s Source) -> Self {
        Self::with_capacity(source, &Sizes::default())
    }

    /// A typer whose columns start with room for `sizes` (see [`SizeHints`]).
    pub fn with_capacity(source: &'s Source, sizes: &Sizes) -> Self {
        let rows = sizes.rows;
        Self {
            source,
            schema: staging_schema(source),
            cols: source
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    ColBuf::with_capacity(&c.kind, rows, sizes.bytes.get(i).map_or(0, |b| *b))
                })
                .collect(),
            extract_date: Date32Builder::with_capacity(rows),
            file: StringBuilder::with_capacity(rows, 0),
            position: Int64Builder::with_capacity(rows),
            keep: Vec::with_capacity(rows),
            null: vec![false; source.columns.len()],
        }
    }

    /// The rows and the bytes of text per column appended so far.
    pub fn sizes(&self) -> Sizes {
        Sizes {
            rows: self.keep.len(),
            bytes: self
                .cols
                .iter()
                .map(|c| match c {
                    ColBuf::Str(b) => b.values_slice().len(),
                    _ => 0,
                })
                .collect(),
        }
    }

    /// Convert and append one record, or return why it is bad (the row is then dropped by
    /// [`Self::finish`]).
    pub fn push(
        &mut self,
        slots: &[Option<Val<'_>>],
        ctx: &Context,
        extract_day: i32,
        file: &str,
        position: i64,
    ) -> Result<(), String> {
        let mut bad = None;
        for (((col, v), b), null) in self
            .source
            .columns
            .iter()
            .zip(slots)
            .zip(&mut self.cols)
            .zip(&mut self.null)
        {
            if bad.is_some() {
                b.push(&Typed::Null);
                continue;
            }
            match convert(col, v.as_ref(), ctx) {
                Ok(t) => {
                    *null = t == Typed::Null;
                    b.push(&t);
                }
                Err(reason) => {
                    bad = Some(reason);
                    b.push(&Typed::Null);
                }
            }
        }
        if bad.is_none() {
            bad = self.broken_rule();
        }
        self.extract_date.append_value(extract_day);
        self.file.append_value(file);
        self.position.append_value(position);
        self.keep.push(bad.is_none());
        bad.map_or(Ok(()), Err)
    }

    /// The reason of the first rule the record just appended breaks.
    fn broken_rule(&self) -> Option<String> {
        self.source.rules.iter().find_map(|rule| {
            let value = match &self.cols[rule.column] {
                ColBuf::Str(b) if !self.null[rule.column] => last_value(b),
                _ => return None,
            };
            let broken = rule.values.iter().any(|x| x.as_bytes() == value)
                && rule.require_any.iter().all(|&i| self.null[i]);
            broken.then(|| rule.reason.clone())
        })
    }

    pub fn finish(&mut self) -> arrow::error::Result<RecordBatch> {
        let mut arrays: Vec<ArrayRef> = self.cols.iter_mut().map(|c| c.finish()).collect();
        arrays.push(Arc::new(self.extract_date.finish()));
        arrays.push(Arc::new(self.file.finish()));
        arrays.push(Arc::new(self.position.finish()));
        let keep = std::mem::take(&mut self.keep);
        if keep.iter().all(|&k| k) {
            return RecordBatch::try_new(self.schema.clone(), arrays);
        }
        // The rejected rows hold nulls where their record stopped converting: the columns are
        // filtered as nullable ones, then checked against the staging schema.
        let loose = Schema::new(
            self.schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        );
        let all = RecordBatch::try_new(Arc::new(loose), arrays)?;
        let kept = arrow::compute::filter_record_batch(&all, &BooleanArray::from(keep))?;
        RecordBatch::try_new(self.schema.clone(), kept.columns().to_vec())
    }
}

/// The rows of a staging batch and the bytes of text of each of its columns (0 for the others).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sizes {
    pub rows: usize,
    pub bytes: Vec<usize>,
}

/// The largest size of each source's staging batches so far per byte of landing file, so that
/// a file's columns start with the room it is expected to need instead of growing by copying
/// (growing them was 0.8% of a province-year's CPU). A source's first file has no hint.
#[derive(Default)]
pub struct SizeHints(std::sync::Mutex<foldhash::HashMap<String, (f64, Vec<f64>)>>);

impl SizeHints {
    /// What a file of `file_bytes` of `source` is expected to need, with a margin.
    pub fn for_file(&self, source: &str, file_bytes: usize) -> Sizes {
        let hints = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some((rows, bytes)) = hints.get(source) else {
            return Sizes::default();
        };
        let scale = |ratio: f64| (ratio * file_bytes as f64 * 1.1) as usize + 16;
        Sizes {
            rows: scale(*rows),
            bytes: bytes.iter().map(|r| scale(*r)).collect(),
        }
    }

    /// Record the sizes of a batch typed from a file of `file_bytes`.
    pub fn observe(&self, source: &str, file_bytes: usize, sizes: &Sizes) {
        if file_bytes == 0 {
            return;
        }
        let per_byte = |n: usize| n as f64 / file_bytes as f64;
        let mut hints = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (rows, bytes) = hints.entry(source.to_string()).or_default();
        *rows = rows.max(per_byte(sizes.rows));
        bytes.resize(sizes.bytes.len(), 0.0);
        for (b, n) in bytes.iter_mut().zip(&sizes.bytes) {
            *b = b.max(per_byte(*n));
        }
    }
}

/// The bytes of the value last appended to `b`.
fn last_value(b: &StringBuilder) -> &[u8] {
    let offsets = b.offsets_slice();
    let (start, end) = (offsets[offsets.len() - 2], offsets[offsets.len() - 1]);
    &b.values_slice()[start as usize..end as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_dates_reject_impossible_days() {
        assert!(parse_compact("20220228235959").is_some());
        assert!(parse_compact("20220231000000").is_none());
        assert!(parse_compact("2022022800000").is_none());
        assert!(parse_compact("20220228240000").is_none());
    }

    #[test]
    fn compact_is_local_time() {
        // 2022-03-01 07:00 in Hanoi/Ho Chi Minh City is 00:00 UTC.
        assert_eq!(parse_compact("20220301070000"), Some(1_646_092_800_000_000));
    }

    #[test]
    fn day_first_with_and_without_time() {
        assert_eq!(
            parse_day_first("01/03/2022 07:00"),
            Some(1_646_092_800_000_000)
        );
        assert_eq!(
            parse_day_first("01/03/2022"),
            Some(1_646_092_800_000_000 - 7 * 3600 * 1_000_000)
        );
        assert!(parse_day_first("31/02/2022").is_none());
        assert!(parse_day_first("2022-03-01").is_none());
        assert!(parse_day_first("01/03/2022 7:00").is_none());
    }

    #[test]
    fn the_fixed_offset_agrees_with_the_time_zone_database() {
        let zone = |dt: NaiveDateTime| {
            chrono_tz::Asia::Ho_Chi_Minh
                .from_local_datetime(&dt)
                .single()
                .map(|t| t.timestamp_micros())
        };
        // Every day from a year before the fixed offset applies to 2100, at times that cross
        // midnight UTC, and the days around the zone's last change.
        let mut day = NaiveDate::from_ymd_opt(FIXED_OFFSET_SINCE_YEAR - 1, 1, 1).unwrap();
        let mut days = 0;
        while day.year() < 2100 {
            for (h, m, s) in [(0, 0, 0), (6, 59, 59), (7, 0, 0), (12, 30, 1), (23, 59, 59)] {
                let dt = day.and_time(NaiveTime::from_hms_opt(h, m, s).unwrap());
                assert_eq!(local_micros(dt), zone(dt), "{dt}");
            }
            day = day.succ_opt().unwrap();
            days += 1;
        }
        assert!(days > 45_000);
        let first = NaiveDate::from_ymd_opt(FIXED_OFFSET_SINCE_YEAR, 1, 1)
            .unwrap()
            .and_time(NaiveTime::MIN);
        assert_eq!(local_micros(first), Some(FIXED_OFFSET_SINCE_UTC_MICROS));
        // Before it, the database decides (UTC+8 in 1975 until June 13th).
        let before = NaiveDate::from_ymd_opt(1975, 1, 1)
            .unwrap()
            .and_time(NaiveTime::MIN);
        assert_eq!(local_micros(before), zone(before));
        assert_ne!(
            local_micros(before),
            Some(before.and_utc().timestamp_micros() - OFFSET_MICROS)
        );
    }

    #[test]
    fn rfc3339_needs_an_offset() {
        assert!(parse_rfc3339("2022-03-01T00:00:00Z").is_some());
        assert!(parse_rfc3339("2022-03-01T07:00:00+07:00").is_some());
        assert!(parse_rfc3339("2022-03-01T07:00:00").is_none());
    }

    #[test]
    fn size_hints_scale_the_largest_sizes_per_byte_seen() {
        let hints = SizeHints::default();
        assert_eq!(hints.for_file("s", 1000), Sizes::default());
        let seen = |rows, bytes: &[usize]| Sizes {
            rows,
            bytes: bytes.to_vec(),
        };
        hints.observe("s", 1000, &seen(10, &[100, 0]));
        // A smaller file per byte changes nothing; a larger text column raises its hint only.
        hints.observe("s", 1000, &seen(5, &[50, 0]));
        hints.observe("s", 500, &seen(4, &[10, 0]));
        // 2000 bytes: 10 rows and 100 bytes per 1000, with a tenth more and 16.
        assert_eq!(hints.for_file("s", 2000), seen(38, &[236, 16]));
        assert_eq!(hints.for_file("other", 2000), Sizes::default());
    }

    #[test]
    fn a_typer_with_room_types_the_same_batch() {
        let cfg = crate::config::load(
            std::path::Path::new("configs/local.yaml"),
            &crate::config::Overrides::default(),
        )
        .unwrap();
        let source = cfg.source("procedures").unwrap();
        let units = foldhash::HashSet::default();
        let pii = super::super::pseudonymise::Pseudonymiser::new(b"a key of sixteen chars");
        let ctx = Context::new(&units, &pii);
        let slots: Vec<Option<Val>> = source
            .columns
            .iter()
            .map(|c| match c.kind {
                Kind::String => Some(Val::Str(Cow::Borrowed("1"))),
                _ => None,
            })
            .collect();
        let typed = |mut t: Typer| {
            for i in 0..3 {
                let _ = t.push(&slots, &ctx, 19_000, "f", i);
            }
            let sizes = t.sizes();
            (sizes, t.finish().unwrap())
        };
        let (sizes, plain) = typed(Typer::new(source));
        assert_eq!((sizes.rows, plain.num_rows()), (3, 3));
        assert_eq!(sizes.bytes[0], 3, "three codes of one byte");
        let room = Sizes {
            rows: 1000,
            bytes: vec![4096; source.columns.len()],
        };
        let (_, roomy) = typed(Typer::with_capacity(source, &room));
        assert_eq!(plain, roomy);
    }
}
