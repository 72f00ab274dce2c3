//! CSV as the iOffice report screen exports it: optional byte-order mark, comma, double-quote
//! quoting (fields may hold commas, quotes and line breaks), `\n` or `\r\n`, Vietnamese headers.
//! Columns are matched by header name (NFC), in any order; extra columns are ignored; a missing
//! contract header makes the file unreadable. Position = data-record number (header excluded; a
//! quoted multi-line record counts once).

use std::borrow::Cow;

use super::{text_of, Emit};
use crate::base::text::nfc;
use crate::ingest::value::Val;

pub fn read(bytes: &[u8], emit: &mut Emit) -> Result<(), String> {
    let text = text_of(bytes)?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rec = csv::ByteRecord::new();
    let read_err = |e: csv::Error| format!("CSV: {e}");
    if !rdr.read_byte_record(&mut rec).map_err(read_err)? {
        return Err("no header row".into());
    }
    let header: Vec<String> = rec
        .iter()
        .map(|h| nfc(std::str::from_utf8(h).unwrap_or_default().trim()))
        .collect();
    // slot i ← CSV column map[i]
    let mut map = Vec::with_capacity(emit.slot_count());
    let mut missing = Vec::new();
    for col in &emit.source.columns {
        match header.iter().position(|h| *h == col.from) {
            Some(i) => map.push(i),
            None => missing.push(format!("`{}`", col.from)),
        }
    }
    if !missing.is_empty() && header.len() == 1 {
        if let Some(d) = header[0].chars().find(|c| matches!(c, ';' | '\t' | '|')) {
            return Err(format!(
                "the header is separated by `{}`, not by commas: not the report screen's CSV export",
                d.escape_default()
            ));
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "missing contract header{} {}",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", ")
        ));
    }
    let mut position = 0;
    let mut start = rdr.position().byte() as usize;
    loop {
        let more = match rdr.read_byte_record(&mut rec) {
            Ok(m) => m,
            Err(e) => {
                // The csv crate only fails on I/O or UTF-8 here; keep the rest of the file out of
                // staging but account for it as one bad record.
                position += 1;
                let raw = &text[start..];
                emit.record(position, Err(read_err(e)), || raw.trim_end().to_string());
                break;
            }
        };
        if !more {
            break;
        }
        position += 1;
        let end = (rdr.position().byte() as usize).min(text.len());
        let raw = text[start..end].trim_end_matches(['\r', '\n']);
        start = end;
        let slots: Vec<Option<Val>>;
        let parsed = if rec.len() != header.len() {
            Err(format!(
                "record has {} fields, the header has {}",
                rec.len(),
                header.len()
            ))
        } else {
            // The whole file is valid UTF-8, so is each field.
            slots = map
                .iter()
                .map(|&i| {
                    Some(Val::Str(Cow::Borrowed(
                        std::str::from_utf8(&rec[i]).unwrap_or_default(),
                    )))
                })
                .collect();
            Ok(slots.as_slice())
        };
        emit.record(position, parsed, || raw.to_string());
    }
    Ok(())
}
