//! The national portal's envelope: `{"service": "...", "data": [ {record}, … ]}`.
//! Position = 1-based index in `data`.
//!
//! One pass: each record of `data` is parsed into the field slots (reused from record to record)
//! and handed to the [`Emit`] as soon as it is read, so no file's records are held as a tree. A
//! file found unreadable later (cut off, another service named after `data`) returns `Err`, and
//! the ingest drops what it emitted (see [`super::read_file`]). The raw text of a record is only
//! needed when it is quarantined; it is then recovered by a second, cheaper parse of that one file
//! into raw slices.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{text_of, Emit};
use crate::ingest::value::{FieldIndex, KeyOrder, RecordSeed, Val, NOT_AN_OBJECT};

/// The raw text of record `i` (0-based) of `data`.
type RawOf<'r> = &'r dyn Fn(usize) -> String;

struct EnvelopeSeed<'e, 'a, 's, 'r> {
    emit: &'e mut Emit<'a, 's>,
    raw_of: RawOf<'r>,
}

struct Envelope<'a> {
    service: Option<Cow<'a, str>>,
    data: bool,
}

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_, '_, '_, '_> {
    type Value = Envelope<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_, '_, '_, '_> {
    type Value = Envelope<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the envelope object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut env = Envelope {
            service: None,
            data: false,
        };
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "service" => env.service = map.next_value()?,
                "data" if env.data => {
                    return Err(serde::de::Error::custom(
                        "the envelope has two `data` arrays",
                    ))
                }
                "data" => {
                    map.next_value_seed(DataSeed {
                        emit: &mut *self.emit,
                        raw_of: self.raw_of,
                    })?;
                    env.data = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(env)
    }
}

struct DataSeed<'e, 'a, 's, 'r> {
    emit: &'e mut Emit<'a, 's>,
    raw_of: RawOf<'r>,
}

impl<'de> DeserializeSeed<'de> for DataSeed<'_, '_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_, '_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the `data` array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut slots: Vec<Option<Val<'de>>> = vec![None; self.emit.slot_count()];
        let mut order = KeyOrder::new();
        let mut i = 0;
        loop {
            slots.iter_mut().for_each(|s| *s = None);
            let Some(object) = seq.next_element_seed(RecSeed {
                index: self.emit.index,
                slots: &mut slots,
                order: &mut order,
            })?
            else {
                return Ok(());
            };
            let parsed = match object {
                true => Ok(slots.as_slice()),
                false => Err(NOT_AN_OBJECT.to_string()),
            };
            self.emit.record(i as i64 + 1, parsed, || (self.raw_of)(i));
            i += 1;
        }
    }
}

/// One record: parsed into the slots (`true`), or not an object (`false`, consumed).
struct RecSeed<'i, 'x, 'de> {
    index: &'i FieldIndex,
    slots: &'x mut [Option<Val<'de>>],
    order: &'x mut KeyOrder<'de>,
}

impl<'de> DeserializeSeed<'de> for RecSeed<'_, '_, 'de> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecSeed<'_, '_, 'de> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a record")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        RecordSeed {
            index: self.index,
            slots: self.slots,
            order: self.order,
        }
        .visit_map(map)?;
        Ok(true)
    }
    // Anything else is a record that is not an object: consumed, then quarantined.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
}

/// The raw text of each record, for quarantine.
#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(borrow)]
    data: Vec<&'a RawValue>,
}

pub fn read(bytes: &[u8], service: &str, emit: &mut Emit) -> Result<(), String> {
    let text = text_of(bytes)?;
    let raws: OnceCell<Vec<&RawValue>> = OnceCell::new();
    let raw_of = |i: usize| -> String {
        let raws = raws.get_or_init(|| {
            serde_json::from_str::<RawEnvelope>(text)
                .map(|e| e.data)
                .unwrap_or_default()
        });
        raws.get(i).map(|r| r.get().to_string()).unwrap_or_default()
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let env = EnvelopeSeed {
        emit,
        raw_of: &raw_of,
    }
    .deserialize(&mut de)
    .and_then(|env| de.end().map(|_| env))
    .map_err(|e| format!("invalid JSON: {e}"))?;
    if let Some(s) = &env.service {
        if s != service {
            return Err(format!("envelope service is `{s}`, expected `{service}`"));
        }
    }
    if !env.data {
        return Err("the envelope has no `data` array".to_string());
    }
    Ok(())
}
