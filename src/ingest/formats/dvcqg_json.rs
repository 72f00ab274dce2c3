//! The national portal's envelope: `{"service": "...", "data": [ {record}, … ]}`.
//! Position = 1-based index in `data`.
//!
//! One pass: the envelope is parsed straight into each record's field slots (nothing is emitted
//! before the whole file has parsed, so a truncated file stays out of staging). The raw text of a
//! record is only needed when it is quarantined; it is then recovered by a second, cheaper parse
//! of that one file into raw slices.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{text_of, Emit};
use crate::ingest::value::{FieldIndex, RecordSeed, Val, NOT_AN_OBJECT};

/// A record of `data`: its slots, or not an object.
type Rec<'a> = Option<Vec<Option<Val<'a>>>>;

struct EnvelopeSeed<'i> {
    index: &'i FieldIndex,
    slots: usize,
}

struct Envelope<'a> {
    service: Option<Cow<'a, str>>,
    data: Option<Vec<Rec<'a>>>,
}

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_> {
    type Value = Envelope<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_> {
    type Value = Envelope<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the envelope object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut env = Envelope {
            service: None,
            data: None,
        };
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "service" => env.service = map.next_value()?,
                "data" => {
                    env.data = Some(map.next_value_seed(DataSeed {
                        index: self.index,
                        slots: self.slots,
                    })?)
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(env)
    }
}

struct DataSeed<'i> {
    index: &'i FieldIndex,
    slots: usize,
}

impl<'de> DeserializeSeed<'de> for DataSeed<'_> {
    type Value = Vec<Rec<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_> {
    type Value = Vec<Rec<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the `data` array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(1024));
        while let Some(r) = seq.next_element_seed(RecSeed {
            index: self.index,
            slots: self.slots,
        })? {
            out.push(r);
        }
        Ok(out)
    }
}

struct RecSeed<'i> {
    index: &'i FieldIndex,
    slots: usize,
}

impl<'de> DeserializeSeed<'de> for RecSeed<'_> {
    type Value = Rec<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecSeed<'_> {
    type Value = Rec<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a record")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let mut slots = vec![None; self.slots];
        RecordSeed {
            index: self.index,
            slots: &mut slots,
        }
        .visit_map(map)?;
        Ok(Some(slots))
    }
    // Anything else is a record that is not an object: consumed, then quarantined.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
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
    let mut de = serde_json::Deserializer::from_str(text);
    let env = EnvelopeSeed {
        index: emit.index,
        slots: emit.slot_count(),
    }
    .deserialize(&mut de)
    .and_then(|env| de.end().map(|_| env))
    .map_err(|e| format!("invalid JSON: {e}"))?;
    if let Some(s) = &env.service {
        if s != service {
            return Err(format!("envelope service is `{s}`, expected `{service}`"));
        }
    }
    let data = env
        .data
        .ok_or_else(|| "the envelope has no `data` array".to_string())?;
    let raws: OnceCell<Vec<&RawValue>> = OnceCell::new();
    let raw_of = |i: usize| -> String {
        let raws = raws.get_or_init(|| {
            serde_json::from_str::<RawEnvelope>(text)
                .map(|e| e.data)
                .unwrap_or_default()
        });
        raws.get(i).map(|r| r.get().to_string()).unwrap_or_default()
    };
    for (i, rec) in data.iter().enumerate() {
        let parsed = match rec {
            Some(slots) => Ok(slots.as_slice()),
            None => Err(NOT_AN_OBJECT.to_string()),
        };
        emit.record(i as i64 + 1, parsed, || raw_of(i));
    }
    Ok(())
}
