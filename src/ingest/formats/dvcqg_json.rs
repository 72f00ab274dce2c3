//! The national portal's envelope: `{"service": "...", "data": [ {record}, … ]}`.
//! Position = 1-based index in `data`.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{text_of, Emit};
use crate::ingest::value::parse_record;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    service: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<Vec<&'a RawValue>>,
}

pub fn read(bytes: &[u8], service: &str, emit: &mut Emit) -> Result<(), String> {
    let text = text_of(bytes)?;
    // First the envelope, keeping each record's raw text (for quarantine); a file that is not
    // whole JSON fails here, before any record is emitted.
    let env: Envelope = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    if let Some(s) = &env.service {
        if s != service {
            return Err(format!("envelope service is `{s}`, expected `{service}`"));
        }
    }
    let data = env
        .data
        .ok_or_else(|| "the envelope has no `data` array".to_string())?;
    let mut slots = vec![None; emit.slot_count()];
    for (i, raw) in data.iter().enumerate() {
        let raw = raw.get();
        let parsed = parse_record(raw, emit.index, &mut slots).map(|_| slots.as_slice());
        emit.record(i as i64 + 1, parsed, raw);
    }
    Ok(())
}
