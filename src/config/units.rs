//! The administrative units seed (`units.csv`: `unit_code,unit_name,tier,parent_code`).

use serde::Deserialize;

use crate::base::error::{Diagnostic, Error, Result};

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

    /// Parse units.csv; `name` is used in messages. Every problem is a configuration error
    /// (C016, with the line): the seed is reference data, and a wrong seed would quarantine good
    /// records.
    pub fn parse(bytes: &[u8], name: &str) -> Result<Self> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut rdr = csv::Reader::from_reader(bytes);
        let mut problems = Vec::new();
        let at = |line: u64, message: String| Diagnostic {
            code: "C016",
            file: name.to_string(),
            line,
            column: 0,
            message,
        };
        let header = rdr.headers().cloned().unwrap_or_default();
        let expected = ["unit_code", "unit_name", "tier", "parent_code"];
        if header.len() == 1 && expected.iter().filter(|e| header[0].contains(*e)).count() > 1 {
            let delimiter = header[0]
                .chars()
                .find(|c| matches!(c, ';' | '\t' | '|'))
                .map(|c| format!("`{}`", c.escape_default()))
                .unwrap_or_else(|| "another character".into());
            return Err(Error::Config(vec![at(
                1,
                format!(
                    "the header is separated by {delimiter}; units.csv is comma-separated: {}",
                    expected.join(",")
                ),
            )]));
        }
        let mut rows: Vec<(u64, Unit)> = Vec::new();
        for r in rdr.records() {
            let rec = match r {
                Ok(rec) => rec,
                Err(e) => {
                    let line = e.position().map(|p| p.line()).unwrap_or(0);
                    problems.push(at(line, e.to_string()));
                    continue;
                }
            };
            let line = rec.position().map(|p| p.line()).unwrap_or(0);
            match rec.deserialize::<Unit>(Some(&header)) {
                Ok(mut u) => {
                    u.unit_code = u.unit_code.trim().to_string();
                    u.unit_name = crate::base::text::nfc(&u.unit_name);
                    if !TIERS.contains(&u.tier.as_str()) {
                        problems.push(at(
                            line,
                            format!("unknown tier `{}` (one of {})", u.tier, TIERS.join(", ")),
                        ));
                    }
                    rows.push((line, u));
                }
                Err(e) => problems.push(at(line, e.to_string())),
            }
        }
        let mut first: std::collections::HashMap<&str, u64> = Default::default();
        for (line, u) in &rows {
            if let Some(prev) = first.insert(u.unit_code.as_str(), *line) {
                first.insert(u.unit_code.as_str(), prev);
                problems.push(at(
                    *line,
                    format!(
                        "duplicate unit code `{}` (first on line {prev})",
                        u.unit_code
                    ),
                ));
            }
        }
        for (line, u) in &rows {
            if !u.parent_code.is_empty() && !first.contains_key(u.parent_code.as_str()) {
                problems.push(at(
                    *line,
                    format!("unit {} has unknown parent {}", u.unit_code, u.parent_code),
                ));
            }
        }
        if rows.is_empty() && problems.is_empty() {
            problems.push(at(0, "no units".into()));
        }
        if !problems.is_empty() {
            return Err(Error::Config(problems));
        }
        let rows: Vec<Unit> = rows.into_iter().map(|(_, u)| u).collect();
        Ok(Self::from_rows(rows))
    }
}
