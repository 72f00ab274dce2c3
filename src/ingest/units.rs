//! The administrative units seed (`units.csv`: `unit_code,unit_name,tier,parent_code`).

use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Unit {
    pub unit_code: String,
    pub unit_name: String,
    pub tier: String,
    pub parent_code: String,
}

#[derive(Debug, Clone, Default)]
pub struct Units {
    pub rows: Vec<Unit>,
    pub codes: foldhash::HashSet<String>,
}

pub const TIERS: [&str; 3] = ["so-ban-nganh", "quan-huyen", "xa-phuong"];

impl Units {
    /// Units from rows already checked (tests).
    pub fn from_rows(rows: Vec<Unit>) -> Self {
        let codes = rows.iter().map(|u| u.unit_code.clone()).collect();
        Units { rows, codes }
    }

    /// Parse units.csv; `name` is used in messages. Every problem is an error: the seed is
    /// reference data, and a wrong seed would quarantine good records.
    pub fn parse(bytes: &[u8], name: &str) -> Result<Self> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut rdr = csv::Reader::from_reader(bytes);
        let mut rows = Vec::new();
        let mut problems = Vec::new();
        for (i, r) in rdr.deserialize::<Unit>().enumerate() {
            match r {
                Ok(mut u) => {
                    u.unit_code = u.unit_code.trim().to_string();
                    u.unit_name = super::text::nfc(&u.unit_name);
                    if !TIERS.contains(&u.tier.as_str()) {
                        problems.push(format!(
                            "{name}: record {}: unknown tier `{}`",
                            i + 1,
                            u.tier
                        ));
                    }
                    rows.push(u);
                }
                Err(e) => problems.push(format!("{name}: record {}: {e}", i + 1)),
            }
        }
        let codes: foldhash::HashSet<String> = rows.iter().map(|u| u.unit_code.clone()).collect();
        if codes.len() != rows.len() {
            problems.push(format!("{name}: duplicate unit codes"));
        }
        for u in &rows {
            if !u.parent_code.is_empty() && !codes.contains(&u.parent_code) {
                problems.push(format!(
                    "{name}: unit {} has unknown parent {}",
                    u.unit_code, u.parent_code
                ));
            }
        }
        if rows.is_empty() {
            problems.push(format!("{name}: no units"));
        }
        if !problems.is_empty() {
            return Err(Error::io(
                format!("bad units seed {name}"),
                std::io::Error::new(std::io::ErrorKind::InvalidData, problems.join("; ")),
            ));
        }
        Ok(Units { rows, codes })
    }
}
