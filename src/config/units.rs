//! The administrative units: `units.csv` (`unit_code,unit_name,tier,parent_code`, optionally
//! `valid_from,valid_to`) and, beside it, the optional `unit_changes.csv`
//! (`effective_date,old_code,new_code`). See EXTRACTS.md "Administrative units" and TARGETS.md
//! "Units that change".
//!
//! The two rules every figure follows are written here once: [`Units::valid_on`] (the rows of a
//! day) and [`Units::successor`] (where a unit's work went as of a day). The warehouse turns them
//! into the per-period tables `units_as_of` and `unit_attribution` that the state views join
//! (see `crate::warehouse::models`).

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::Deserialize;

use crate::base::error::{Diagnostic, Error, Result};

/// One row of units.csv: a unit as it was during `[valid_from, valid_to)` (`None`: open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub unit_code: String,
    pub unit_name: String,
    pub tier: String,
    pub parent_code: String,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
}

impl Unit {
    /// A unit valid forever.
    pub fn new(code: &str, name: &str, tier: &str, parent: &str) -> Self {
        Unit {
            unit_code: code.into(),
            unit_name: name.into(),
            tier: tier.into(),
            parent_code: parent.into(),
            valid_from: None,
            valid_to: None,
        }
    }

    /// Whether the row holds on `day`.
    pub fn valid_on(&self, day: NaiveDate) -> bool {
        holds_on(self.valid_from, self.valid_to, day)
    }
}

/// Whether a validity `[from, to)` holds on `day` (`to` is the first day it no longer holds;
/// `None` is open).
pub fn holds_on(from: Option<NaiveDate>, to: Option<NaiveDate>, day: NaiveDate) -> bool {
    from.is_none_or(|f| f <= day) && to.is_none_or(|t| day < t)
}

/// A line of unit_changes.csv: from `effective`, the work of `old_code` continues in `new_code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub effective: NaiveDate,
    pub old_code: String,
    pub new_code: String,
    pub line: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Units {
    pub rows: Vec<Unit>,
    /// Every code of any row, whatever its dates: a record of one of these is a known unit.
    pub codes: foldhash::HashSet<String>,
    pub changes: Vec<Change>,
}

pub const TIERS: [&str; 3] = ["so-ban-nganh", "quan-huyen", "xa-phuong"];

/// The file of unit changes, beside units.csv.
pub const CHANGES_FILE: &str = "unit_changes.csv";

#[derive(Deserialize)]
struct RawUnit {
    unit_code: String,
    unit_name: String,
    tier: String,
    parent_code: String,
    #[serde(default)]
    valid_from: Option<String>,
    #[serde(default)]
    valid_to: Option<String>,
}

fn diagnostic(code: &'static str, file: &str, line: u64, message: String) -> Diagnostic {
    Diagnostic {
        code,
        file: file.to_string(),
        line,
        column: 0,
        message,
    }
}

/// An optional ISO day of a reference file; `Err` with the message.
fn day(s: Option<&str>, what: &str) -> std::result::Result<Option<NaiveDate>, String> {
    match s.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| format!("{what} `{s}` is not a date (yyyy-MM-dd)")),
    }
}

/// The records of a reference CSV with their lines; a record that cannot be read is a problem.
fn records(
    rdr: &mut csv::Reader<&[u8]>,
    problems: &mut Vec<Diagnostic>,
    at: &dyn Fn(u64, String) -> Diagnostic,
) -> Vec<(u64, csv::StringRecord)> {
    let mut out = Vec::new();
    for r in rdr.records() {
        match r {
            Ok(rec) => out.push((rec.position().map(|p| p.line()).unwrap_or(0), rec)),
            Err(e) => problems.push(at(
                e.position().map(|p| p.line()).unwrap_or(0),
                e.to_string(),
            )),
        }
    }
    out
}

fn show(d: Option<NaiveDate>) -> String {
    d.map(|d| d.to_string()).unwrap_or_else(|| "…".into())
}

impl Units {
    /// Units from rows already checked (tests), without changes.
    pub fn from_rows(rows: Vec<Unit>) -> Self {
        let codes = rows.iter().map(|u| u.unit_code.clone()).collect();
        Units {
            rows,
            codes,
            changes: Vec::new(),
        }
    }

    /// The rows that hold on `day`, in file order.
    pub fn valid_on(&self, day: NaiveDate) -> impl Iterator<Item = &Unit> {
        self.rows.iter().filter(move |u| u.valid_on(day))
    }

    /// The units as they were on `day`: the rows valid that day (what a ranking of a year
    /// ranks and names, as of the year's as-of day), with every change.
    pub fn on(&self, day: NaiveDate) -> Units {
        let mut u = Units::from_rows(self.valid_on(day).cloned().collect());
        u.changes = self.changes.clone();
        u
    }

    /// The unit a record of `code` counts for as of `day`: follow the changes effective on or
    /// before `day` (for each code the newest such change) to the end of the chain. The changes
    /// are checked acyclic when read; the walk is bounded all the same.
    pub fn successor<'a>(&'a self, code: &'a str, day: NaiveDate) -> &'a str {
        let mut at = code;
        for _ in 0..=self.changes.len() {
            let next = self
                .changes
                .iter()
                .filter(|c| c.old_code == at && c.effective <= day)
                .max_by_key(|c| c.effective);
            match next {
                Some(c) => at = &c.new_code,
                None => break,
            }
        }
        at
    }

    /// A district with its communes, from the rows valid on `day`: (district, members, the
    /// district first).
    pub fn districts_on(&self, day: NaiveDate) -> Vec<(&str, Vec<&str>)> {
        let valid: Vec<&Unit> = self.valid_on(day).collect();
        valid
            .iter()
            .filter(|u| u.tier == "quan-huyen")
            .map(|d| {
                let mut members = vec![d.unit_code.as_str()];
                members.extend(
                    valid
                        .iter()
                        .filter(|c| c.tier == "xa-phuong" && c.parent_code == d.unit_code)
                        .map(|c| c.unit_code.as_str()),
                );
                (d.unit_code.as_str(), members)
            })
            .collect()
    }

    /// Parse units.csv; `name` is used in messages. Every problem is a configuration error
    /// (C016, with the line): the seed is reference data, and a wrong seed would quarantine good
    /// records.
    pub fn parse(bytes: &[u8], name: &str) -> Result<Self> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut rdr = csv::Reader::from_reader(bytes);
        let mut problems = Vec::new();
        let at = |line: u64, message: String| diagnostic("C016", name, line, message);
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
        for (line, rec) in records(&mut rdr, &mut problems, &at) {
            let raw = match rec.deserialize::<RawUnit>(Some(&header)) {
                Ok(u) => u,
                Err(e) => {
                    problems.push(at(line, e.to_string()));
                    continue;
                }
            };
            if !TIERS.contains(&raw.tier.as_str()) {
                problems.push(at(
                    line,
                    format!("unknown tier `{}` (one of {})", raw.tier, TIERS.join(", ")),
                ));
            }
            let (from, to) = match (
                day(raw.valid_from.as_deref(), "valid_from"),
                day(raw.valid_to.as_deref(), "valid_to"),
            ) {
                (Ok(f), Ok(t)) => (f, t),
                (f, t) => {
                    for e in [f.err(), t.err()].into_iter().flatten() {
                        problems.push(at(line, e));
                    }
                    continue;
                }
            };
            if let (Some(f), Some(t)) = (from, to) {
                if t <= f {
                    problems.push(at(
                        line,
                        format!("valid_to {t} is not after valid_from {f}"),
                    ));
                }
            }
            rows.push((
                line,
                Unit {
                    unit_code: raw.unit_code.trim().to_string(),
                    unit_name: crate::base::text::nfc(&raw.unit_name),
                    tier: raw.tier,
                    parent_code: raw.parent_code.trim().to_string(),
                    valid_from: from,
                    valid_to: to,
                },
            ));
        }
        // Rows of one code must not overlap; without validity columns that is one row per code.
        let mut by_code: HashMap<&str, Vec<(u64, &Unit)>> = HashMap::new();
        for (line, u) in &rows {
            by_code
                .entry(u.unit_code.as_str())
                .or_default()
                .push((*line, u));
        }
        for (line, u) in &rows {
            let earlier = by_code[u.unit_code.as_str()]
                .iter()
                .take_while(|(l, _)| l < line)
                .find(|(_, o)| overlap(o, u));
            if let Some((prev, o)) = earlier {
                let message = match (o.valid_from, o.valid_to, u.valid_from, u.valid_to) {
                    (None, None, None, None) => format!(
                        "duplicate unit code `{}` (first on line {prev})",
                        u.unit_code
                    ),
                    _ => format!(
                        "unit `{}` is valid {}..{} here and {}..{} on line {prev}: the rows of a code must not overlap",
                        u.unit_code,
                        show(u.valid_from),
                        show(u.valid_to),
                        show(o.valid_from),
                        show(o.valid_to)
                    ),
                };
                problems.push(at(*line, message));
            }
        }
        for (line, u) in &rows {
            if !u.parent_code.is_empty() && !by_code.contains_key(u.parent_code.as_str()) {
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

    /// Read unit_changes.csv (`effective_date,old_code,new_code`) against these units; `name` is
    /// used in messages. Problems are C017 with the line: a bad date, a code no row of units.csv
    /// has, a split (one old code, one date, two successors: both lines named), a successor
    /// without a row valid on the effective date, a cycle.
    pub fn with_changes(mut self, bytes: &[u8], name: &str) -> Result<Self> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut rdr = csv::Reader::from_reader(bytes);
        let at = |line: u64, message: String| diagnostic("C017", name, line, message);
        let mut problems = Vec::new();
        let header: Vec<String> = rdr
            .headers()
            .map(|h| h.iter().map(|s| s.trim().to_string()).collect())
            .unwrap_or_default();
        let expected = ["effective_date", "old_code", "new_code"];
        let col = |n: &str| header.iter().position(|h| h == n);
        let (Some(ie), Some(io), Some(inew)) =
            (col(expected[0]), col(expected[1]), col(expected[2]))
        else {
            return Err(Error::Config(vec![at(
                1,
                format!(
                    "the header must be {} (found `{}`)",
                    expected.join(","),
                    header.join(",")
                ),
            )]));
        };
        let mut changes = Vec::new();
        for (line, rec) in records(&mut rdr, &mut problems, &at) {
            let field = |i: usize| rec.get(i).unwrap_or("").trim().to_string();
            let (old_code, new_code) = (field(io), field(inew));
            let effective = match day(Some(&field(ie)), "effective_date") {
                Ok(Some(d)) => d,
                Ok(None) => {
                    problems.push(at(line, "effective_date is empty".into()));
                    continue;
                }
                Err(e) => {
                    problems.push(at(line, e));
                    continue;
                }
            };
            let mut known = true;
            for (what, code) in [("old_code", &old_code), ("new_code", &new_code)] {
                if !self.codes.contains(code.as_str()) {
                    known = false;
                    problems.push(at(
                        line,
                        format!("{what} `{code}` is not a unit of units.csv"),
                    ));
                }
            }
            if old_code == new_code {
                problems.push(at(line, format!("unit `{old_code}` is its own successor")));
                continue;
            }
            if known && !self.valid_on(effective).any(|u| u.unit_code == new_code) {
                problems.push(at(
                    line,
                    format!(
                        "successor `{new_code}` has no row of units.csv valid on {effective}, the day it takes over `{old_code}`"
                    ),
                ));
            }
            changes.push(Change {
                effective,
                old_code,
                new_code,
                line,
            });
        }
        // Splits: one old code, one date, two successors.
        let mut first: BTreeMap<(&str, NaiveDate), &Change> = BTreeMap::new();
        for c in &changes {
            match first.get(&(c.old_code.as_str(), c.effective)) {
                Some(f) if f.new_code != c.new_code => problems.push(at(
                    c.line,
                    format!(
                        "unit `{}` would continue both in `{}` (line {}) and in `{}` on {}: a unit has one successor per date (splits are not supported)",
                        c.old_code, f.new_code, f.line, c.new_code, c.effective
                    ),
                )),
                Some(_) => {}
                None => {
                    first.insert((c.old_code.as_str(), c.effective), c);
                }
            }
        }
        // Cycles: following successors (whatever the dates) comes back to a code.
        let mut reported = std::collections::HashSet::new();
        for c in &changes {
            let mut path = vec![c];
            let mut at_code = c.new_code.as_str();
            while let Some(next) = changes
                .iter()
                .find(|n| n.old_code == at_code && !path.iter().any(|p| std::ptr::eq(*p, *n)))
            {
                path.push(next);
                if next.new_code == c.old_code {
                    let lines: Vec<u64> = path.iter().map(|p| p.line).collect();
                    let mut key = lines.clone();
                    key.sort();
                    if reported.insert(key) {
                        let codes: Vec<&str> = std::iter::once(c.old_code.as_str())
                            .chain(path.iter().map(|p| p.new_code.as_str()))
                            .collect();
                        problems.push(at(
                            c.line,
                            format!(
                                "the changes form a cycle {} (lines {})",
                                codes.join(" → "),
                                lines
                                    .iter()
                                    .map(u64::to_string)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ));
                    }
                    break;
                }
                at_code = next.new_code.as_str();
                if path.len() > changes.len() {
                    break;
                }
            }
        }
        if !problems.is_empty() {
            problems.sort_by_key(|d| d.line);
            return Err(Error::Config(problems));
        }
        self.changes = changes;
        Ok(self)
    }
}

fn overlap(a: &Unit, b: &Unit) -> bool {
    let starts_before_end = |x: &Unit, y: &Unit| match (x.valid_from, y.valid_to) {
        (Some(f), Some(t)) => f < t,
        _ => true,
    };
    starts_before_end(a, b) && starts_before_end(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    const UNITS: &str = "unit_code,unit_name,tier,parent_code,valid_from,valid_to\n\
        A,A,xa-phuong,H,,2024-03-15\n\
        B,B,xa-phuong,H,,\n\
        C,C,xa-phuong,H,2024-06-01,\n\
        H,H,quan-huyen,,,2025-07-01\n";

    #[test]
    fn successors_follow_the_chain_as_of_the_day() {
        let u = Units::parse(UNITS.as_bytes(), "units.csv")
            .unwrap()
            .with_changes(
                b"effective_date,old_code,new_code\n2024-03-15,A,B\n2024-06-01,B,C\n",
                "unit_changes.csv",
            )
            .unwrap();
        assert_eq!(u.successor("A", d("2024-03-14")), "A");
        assert_eq!(u.successor("A", d("2024-03-15")), "B");
        assert_eq!(u.successor("A", d("2024-06-01")), "C");
        assert_eq!(u.successor("B", d("2024-05-31")), "B");
        assert_eq!(u.successor("H", d("2030-01-01")), "H");
        let on: Vec<&str> = u
            .valid_on(d("2024-04-01"))
            .map(|u| u.unit_code.as_str())
            .collect();
        assert_eq!(on, ["B", "H"]);
        assert_eq!(
            u.districts_on(d("2024-06-01")),
            [("H", vec!["H", "B", "C"])]
        );
        assert!(u.districts_on(d("2025-07-01")).is_empty());
    }
}
