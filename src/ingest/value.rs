//! A JSON value that borrows its strings from the input, and a schema-driven visitor that parses a
//! record object straight into the slots of the declared fields, skipping unknown ones. This keeps
//! the typed-parse speed (no `serde_json::Value` tree) while still seeing a number or a `null`
//! where a string belongs, which makes a record bad instead of failing the whole file.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    Str(Cow<'a, str>),
    Null,
    Bool,
    Int(i64),
    Float,
    Obj(Vec<(Cow<'a, str>, Val<'a>)>),
    Arr(Vec<Val<'a>>),
}

impl Val<'_> {
    /// What the value is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Val::Str(_) => "a string",
            Val::Null => "null",
            Val::Bool => "a boolean",
            Val::Int(_) | Val::Float => "a number",
            Val::Obj(_) => "an object",
            Val::Arr(_) => "an array",
        }
    }
}

/// How many arrays and objects a declared field's value may nest, in a reader that must refuse
/// deeper values before serde_json would: sonic-rs allows 255 levels, serde_json 128 counting the
/// envelope's (the portal's record values start at level 4), so the portal reader's sonic-rs
/// pass refuses values deeper than this and the file is read again by serde_json, whose outcome
/// stands (see `formats::dvcqg_json`). serde_json's own readers set no limit of theirs.
pub const SONIC_NESTING: usize = 100;

#[derive(Clone, Copy)]
struct ValVisitor {
    depth: usize,
    limit: usize,
}

impl<'de> DeserializeSeed<'de> for ValVisitor {
    type Value = Val<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl ValVisitor {
    fn inner<E: de::Error>(self) -> Result<Self, E> {
        match self.depth < self.limit {
            true => Ok(ValVisitor {
                depth: self.depth + 1,
                limit: self.limit,
            }),
            false => Err(E::custom("a value nested too deep")),
        }
    }
}

impl<'de> Visitor<'de> for ValVisitor {
    type Value = Val<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Owned(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Val::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Val::Null)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Val::Bool)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Val::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).map(Val::Int).unwrap_or(Val::Float))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Val::Float)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let inner = self.inner()?;
        let mut v = Vec::new();
        while let Some(x) = seq.next_element_seed(inner)? {
            v.push(x);
        }
        Ok(Val::Arr(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let inner = self.inner()?;
        let mut v = Vec::new();
        while let Some(Text(k)) = map.next_key::<Text<'de>>()? {
            v.push((k, map.next_value_seed(inner)?));
        }
        Ok(Val::Obj(v))
    }
}

/// A string that borrows from the input when it has no escapes. (`Cow<str>`'s own `Deserialize`
/// always allocates: every key of every record would be a new `String`.)
pub struct Text<'de>(pub Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(v)))
    }
}

/// The quarantine reason of a record that is not a JSON object (every JSON reader uses it).
pub const NOT_AN_OBJECT: &str = "record is not a JSON object";

/// Maps a field name of the extract to its slot.
pub type FieldIndex = foldhash::HashMap<String, usize>;

/// The keys of the previous record of a file, in order, each with its slot (`None`: not a
/// declared field). An extract writes its records' keys in one order, so a key is first compared
/// with the one at the same place in the previous record, and looked up only when they differ.
pub type KeyOrder<'de> = Vec<(&'de str, Option<usize>)>;

/// Parses one record object into `slots` (one per declared field; absent fields stay `None`).
pub struct RecordSeed<'s, 'de> {
    pub index: &'s FieldIndex,
    pub slots: &'s mut [Option<Val<'de>>],
    pub order: &'s mut KeyOrder<'de>,
    /// Nesting allowed in a field's value (`usize::MAX`: the parser's own limit only).
    pub nesting: usize,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut at = 0;
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            let slot = match self.order.get(at) {
                Some(&(k, slot)) if k == key.as_ref() => slot,
                _ => {
                    let slot = self.index.get(key.as_ref()).copied();
                    if let Cow::Borrowed(k) = key {
                        self.order.truncate(at);
                        self.order.push((k, slot));
                    }
                    slot
                }
            };
            at += 1;
            match slot {
                Some(i) => {
                    self.slots[i] = Some(map.next_value_seed(ValVisitor {
                        depth: 0,
                        limit: self.nesting,
                    })?)
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Parse `text` as one record object into `slots`; `Err` is the reason the record is bad.
pub fn parse_record<'de>(
    text: &'de str,
    index: &FieldIndex,
    slots: &mut [Option<Val<'de>>],
    order: &mut KeyOrder<'de>,
) -> Result<(), String> {
    slots.iter_mut().for_each(|s| *s = None);
    let mut de = serde_json::Deserializer::from_str(text);
    RecordSeed {
        index,
        slots,
        order,
        nesting: usize::MAX,
    }
    .deserialize(&mut de)
    .and_then(|_| de.end())
    .map_err(|e| {
        let msg = e.to_string();
        if msg.starts_with("invalid type") {
            NOT_AN_OBJECT.to_string()
        } else {
            format!("invalid JSON: {msg}")
        }
    })
}
