//! One JSON object per line. Position = line number counting non-blank lines only.
//! A line that is not a JSON object is a bad record (the other lines still load), so a file cut
//! off mid-line loses only its last record to quarantine.

use super::{text_of, Emit};
use crate::ingest::value::parse_record;

pub fn read(bytes: &[u8], emit: &mut Emit) -> Result<(), String> {
    let text = text_of(bytes)?;
    let mut slots = vec![None; emit.slot_count()];
    let mut order = Vec::new();
    let mut position = 0;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        position += 1;
        let parsed =
            parse_record(line, emit.index, &mut slots, &mut order).map(|_| slots.as_slice());
        emit.record(position, parsed, || line.to_string());
    }
    Ok(())
}
