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
use crate::ingest::value::{
    FieldIndex, KeyOrder, RecordSeed, Text, Val, NOT_AN_OBJECT, SONIC_NESTING,
};

/// The raw text of record `i` (0-based) of `data`.
type RawOf<'r> = &'r dyn Fn(usize) -> String;

struct EnvelopeSeed<'e, 'a, 's, 'r> {
    emit: &'e mut Emit<'a, 's>,
    raw_of: RawOf<'r>,
    /// See [`RecordSeed::nesting`].
    nesting: usize,
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
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            match key.as_ref() {
                "service" => env.service = map.next_value::<Option<Text<'de>>>()?.map(|t| t.0),
                "data" if env.data => {
                    return Err(serde::de::Error::custom(
                        "the envelope has two `data` arrays",
                    ))
                }
                "data" => {
                    map.next_value_seed(DataSeed {
                        emit: &mut *self.emit,
                        raw_of: self.raw_of,
                        nesting: self.nesting,
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
    nesting: usize,
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
                nesting: self.nesting,
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
    nesting: usize,
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
            nesting: self.nesting,
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
    read_with(bytes, service, emit, true)
}

/// [`read`], with sonic-rs first (`quick`) or serde_json alone.
fn read_with(bytes: &[u8], service: &str, emit: &mut Emit, quick: bool) -> Result<(), String> {
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
    // First with sonic-rs (SIMD: finding a string's end, skipping white space), which accepts
    // and rejects what serde_json does (a test compares them on every defect of the contract and
    // more). Should it fail, serde_json reads the file again from the start, from a clean slate,
    // and its outcome stands: a file's quarantine reason keeps serde_json's words and position.
    let mark = emit.mark();
    let first = match quick {
        true => {
            let mut de = sonic_rs::Deserializer::from_str(text);
            EnvelopeSeed {
                emit: &mut *emit,
                raw_of: &raw_of,
                nesting: SONIC_NESTING,
            }
            .deserialize(&mut de)
            .and_then(|env| de.end().map(|_| env))
            .ok()
        }
        false => None,
    };
    let env = match first {
        Some(env) => env,
        None => {
            emit.restart(mark);
            let mut de = serde_json::Deserializer::from_str(text);
            EnvelopeSeed {
                emit,
                raw_of: &raw_of,
                nesting: usize::MAX,
            }
            .deserialize(&mut de)
            .and_then(|env| de.end().map(|_| env))
            .map_err(|e| format!("invalid JSON: {e}"))?
        }
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load, Overrides};
    use crate::ingest::formats::{field_index, BadRecord, Counts};
    use crate::ingest::pseudonymise::Pseudonymiser;
    use crate::ingest::typing::{Context, Typer};

    type Outcome = (
        Result<(), String>,
        Counts,
        Vec<BadRecord>,
        Option<arrow::array::RecordBatch>,
    );

    /// What reading `text` gives: the outcome, the counts, the quarantine and the staged rows.
    fn outcome(text: &str, quick: bool) -> Outcome {
        let cfg = load(
            std::path::Path::new("configs/local.yaml"),
            &Overrides::default(),
        )
        .unwrap();
        let source = cfg.source("dossiers").unwrap();
        let units: foldhash::HashSet<String> = ["000.00.01.H40".to_string()].into_iter().collect();
        let pii = Pseudonymiser::new(b"a key of sixteen chars");
        let ctx = Context::new(&units, &pii);
        let index = field_index(source);
        let mut typer = Typer::new(source);
        let mut quarantine = vec![BadRecord {
            file: "an earlier file".into(),
            position: None,
            reason: "kept".into(),
            raw: None,
        }];
        let mut emit = Emit {
            source,
            index: &index,
            typer: &mut typer,
            quarantine: &mut quarantine,
            ctx: &ctx,
            extract_day: 19_052,
            file: "hoso_1.json",
            counts: Counts::default(),
        };
        let r = read_with(text.as_bytes(), "DongBoHoSoMC", &mut emit, quick);
        let counts = emit.counts;
        let batch = r.is_ok().then(|| typer.finish().unwrap());
        (r, counts, quarantine, batch)
    }

    #[test]
    fn sonic_rs_then_serde_json_read_every_file_as_serde_json_alone() {
        let good = r#"{"MaHoSo":"H1","MaTTHC":"1.0001","TenTTHC":"Cấp phép","DonViXuLy":"000.00.01.H40",
            "TrangThaiHoSo":"4","ChuHoSo":"Nguyễn Văn Ánh","NgayHenTra":"20220304170000",
            "DanhSachPhieuXinLoi":[{"NgayXinLoi":"20220303100000","LyDo":"Tr\u1ec5 h\u1ea1n"}]}"#;
        let escaped = r#"{"MaHoSo":"H\"2\\\/","MaTTHC":"1.0001","TenTTHC":"a\tb\u00e0\ud83d\ude00","DonViXuLy":"000.00.01.H40","TrangThaiHoSo":"4","X":[1,-0,1e5,18446744073709551616,true,null,{"a":[]}]}"#;
        let bad = r#"{"MaHoSo":"H3","MaTTHC":5,"TenTTHC":null,"DonViXuLy":"000.00.01.H40","TrangThaiHoSo":"4"}"#;
        let envelope = |records: &[&str]| {
            format!(
                "{{\"service\":\"DongBoHoSoMC\",\"data\":[{}]}}",
                records.join(",")
            )
        };
        let whole = envelope(&[good, escaped, bad, "\"a string\"", "[1,2]", "7"]);
        let with = |from: &str, to: &str| envelope(&[&good.replace(from, to)]);
        let nested = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        let mut cases: Vec<String> = vec![
            whole.clone(),
            format!(" \n\t{whole}\r\n "),
            envelope(&[]),
            r#"{"data":[],"service":null,"other":{"x":[1,{}]}}"#.into(),
            r#"{"service":"LayThuTuc","data":[]}"#.into(),
            r#"{"service":"DongBoHoSoMC"}"#.into(),
            r#"{"data":[],"data":[]}"#.into(),
            r#"{"service":5,"data":[]}"#.into(),
            "[]".into(),
            "null".into(),
            format!("{whole} x"),
            format!("{whole}}}"),
            envelope(&[good, ""]),
            with("\"H1\"", r#""H\x""#),
            with("\"H1\"", r#""H\ud800""#),
            with("\"H1\"", r#""H\udc00x""#),
            with("\"H1\"", r#""H\u12""#),
            with("\"H1\"", "\"H\u{1}\""),
            with("\"H1\"", "\"H\t1\""),
            with("\"H1\"", "\"H\n1\""),
            with("\"4\"", "01"),
            with("\"4\"", "1."),
            with("\"4\"", "1e400"),
            with("\"4\"", "-"),
            with("\"4\"", "tru"),
            with("\"4\"", "NaN"),
            with("}]}", "},]}"),
            with("\"MaHoSo\":", "\"MaHoSo\" "),
            with("\"MaHoSo\":", "MaHoSo:"),
            with("\"MaHoSo\":", "'MaHoSo':"),
            envelope(&[&format!("{good}/* c */")]),
            format!("{}{}", "[".repeat(200), "]".repeat(200)),
            envelope(&[&format!("{{\"X\":{}}}", nested(200))]),
            // Nested deeper than serde_json allows but not sonic-rs, in a declared field (and
            // an unclosed object as deep).
            with("\"Cấp phép\"", &nested(150)),
            with("\"Cấp phép\"", &nested(110)),
            with("\"Cấp phép\"", &nested(90)),
            with("\"Cấp phép\"", &"{\"a\":".repeat(150)),
        ];
        // Every cut of the whole file: each a file that ends early.
        cases.extend((1..whole.len()).filter_map(|n| whole.get(..n).map(str::to_string)));
        let mut failed = 0;
        for text in &cases {
            let (quick, plain) = (outcome(text, true), outcome(text, false));
            assert_eq!(quick, plain, "{text}");
            failed += quick.0.is_err() as usize;
        }
        // The cases reach both outcomes and every kind of record.
        assert!(failed > cases.len() / 2);
        let (r, counts, quarantine, batch) = outcome(&whole, true);
        assert_eq!(r, Ok(()));
        assert_eq!((counts.read, counts.staged, counts.quarantined), (6, 2, 4));
        assert_eq!(quarantine.len(), 5);
        assert_eq!(batch.unwrap().num_rows(), 2);
    }
}
