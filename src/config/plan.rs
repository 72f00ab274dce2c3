//! Validated models (SQL views and marts over the state tables) and reform-plan targets.
//!
//! What can be checked without a query engine is checked here (names, kinds, comparators,
//! thresholds, references between targets and marts). `crate::warehouse::validate::check_sql` then plans every
//! model's SQL and checks declared columns and the targets' columns against what the SQL
//! returns (codes C011–C013).

use serde_saphyr::Spanned;

use super::raw::{RawModel, RawPlan, RawTarget};
use super::{did_you_mean, is_identifier, Diagnostics};

/// The kinds of reporting period a target is checked over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeriodKind {
    Month,
    Year,
}

impl PeriodKind {
    pub const NAMES: [&'static str; 2] = ["month", "year"];

    pub fn name(self) -> &'static str {
        match self {
            PeriodKind::Month => "month",
            PeriodKind::Year => "year",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "month" => Some(PeriodKind::Month),
            "year" => Some(PeriodKind::Year),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Materialized {
    /// Written per period under `marts/<name>/period=<P>/`.
    Table,
    /// A view in every session, computed when read.
    View,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub name: String,
    pub description: String,
    pub materialized: Materialized,
    /// The SQL, in Unicode NFC like the data it compares with.
    pub sql: String,
    pub columns: Vec<(String, String)>,
    pub file: String,
    /// Where the SQL starts in its file (line, column), for error messages.
    pub sql_at: (u64, u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// value = numerator / denominator; `no_data` when the denominator is 0.
    Ratio,
    /// value = numerator (a count of offending cases); never `no_data`.
    Count,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// One row per unit of units.csv, plus the province roll-up `ALL`.
    Unit,
    /// The province roll-up `ALL` only.
    Province,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    Ge,
    Gt,
    Eq,
    Le,
    Lt,
}

impl Comparator {
    const NAMES: [&'static str; 5] = [">=", ">", "=", "<=", "<"];

    pub fn symbol(self) -> &'static str {
        match self {
            Comparator::Ge => ">=",
            Comparator::Gt => ">",
            Comparator::Eq => "=",
            Comparator::Le => "<=",
            Comparator::Lt => "<",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            ">=" => Comparator::Ge,
            ">" => Comparator::Gt,
            "=" | "==" => Comparator::Eq,
            "<=" => Comparator::Le,
            "<" => Comparator::Lt,
            _ => return None,
        })
    }

    /// Whether `a` (compared with) `b` holds, for an ordering of `a` against `b`.
    pub fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Comparator::Ge => ord != Less,
            Comparator::Gt => ord == Greater,
            Comparator::Eq => ord == Equal,
            Comparator::Le => ord != Greater,
            Comparator::Lt => ord == Less,
        }
    }
}

/// A threshold as an exact fraction `num / den`, from its decimal text (0.98 → 98/100), so a
/// ratio n/d is compared as n·den against num·d in integers, never in floating point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub num: i128,
    pub den: i128,
    pub value: f64,
}

impl Threshold {
    /// From a YAML number. Rust prints the shortest decimal that reads back as the same f64,
    /// which is the decimal the author wrote.
    pub fn from_f64(v: f64) -> Option<Self> {
        if !v.is_finite() {
            return None;
        }
        let text = format!("{v}");
        let (neg, digits) = match text.strip_prefix('-') {
            Some(t) => (true, t),
            None => (false, text.as_str()),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if frac.len() > 12 || int.len() > 15 {
            return None;
        }
        let den = 10i128.pow(frac.len() as u32);
        let num: i128 = format!("{int}{frac}").parse().ok()?;
        Some(Threshold {
            num: if neg { -num } else { num },
            den,
            value: v,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warn,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warn => "warn",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Target {
    pub id: String,
    pub plan_text: String,
    pub description: String,
    pub mart: String,
    pub numerator: String,
    pub denominator: String,
    pub offending: Option<String>,
    pub measure: Measure,
    pub grouping: Grouping,
    pub periods: Vec<PeriodKind>,
    /// `None`: an indicator (status `info`).
    pub pass_when: Option<(Comparator, Threshold)>,
    pub severity: Severity,
    /// Where it is declared, for messages.
    pub at: (String, u64, u64),
}

#[derive(Debug, Clone)]
pub struct Unmeasurable {
    pub id: String,
    pub plan_text: String,
    pub reason: String,
}

/// The targets of one plan year.
#[derive(Debug, Clone)]
pub struct Plan {
    pub year: i32,
    pub plan: String,
    pub file: String,
    pub targets: Vec<Target>,
    pub unmeasurable: Vec<Unmeasurable>,
}

pub(super) fn validate_model(m: RawModel, file: &str, diags: &mut Diagnostics) -> Option<Model> {
    let before = diags.items.len();
    if !is_identifier(&m.name.value) {
        diags.at(
            "C007",
            file,
            &m.name,
            format!(
                "model name `{}` must be a lower-case identifier (it names a table)",
                m.name.value
            ),
        );
    }
    let materialized = match m.materialized.as_ref().map(|s| s.value.as_str()) {
        None | Some("table") => Materialized::Table,
        Some("view") => Materialized::View,
        Some(other) => {
            diags.at(
                "C014",
                file,
                m.materialized.as_ref().unwrap(),
                format!(
                    "unknown materialization `{other}`{} (table or view)",
                    did_you_mean(other, ["table", "view"])
                ),
            );
            Materialized::Table
        }
    };
    let mut columns: Vec<(String, String)> = Vec::new();
    for c in &m.columns {
        if columns.iter().any(|(n, _)| *n == c.name.value) {
            diags.at(
                "C006",
                file,
                &c.name,
                format!("column `{}` is declared twice", c.name.value),
            );
        }
        columns.push((
            c.name.value.clone(),
            c.description.clone().unwrap_or_default(),
        ));
    }
    if materialized == Materialized::Table && !columns.iter().any(|(n, _)| n == "period") {
        diags.at(
            "C005",
            file,
            &m.name,
            format!(
                "mart `{}` needs a `period` column: marts are written per period",
                m.name.value
            ),
        );
    }
    if diags.items.len() > before {
        return None;
    }
    Some(Model {
        name: m.name.value,
        description: m.description.unwrap_or_default(),
        materialized,
        sql: crate::base::text::nfc(&m.sql.value),
        columns,
        file: file.to_string(),
        sql_at: (m.sql.referenced.line(), m.sql.referenced.column()),
    })
}

fn choose<T: Copy>(
    v: Option<&Spanned<String>>,
    default: T,
    known: &[(&'static str, T)],
    what: &str,
    file: &str,
    diags: &mut Diagnostics,
) -> T {
    let Some(s) = v else { return default };
    match known.iter().find(|(n, _)| *n == s.value) {
        Some((_, t)) => *t,
        None => {
            let names: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
            diags.at(
                "C014",
                file,
                s,
                format!(
                    "unknown {what} `{}`{} (one of: {})",
                    s.value,
                    did_you_mean(&s.value, names.iter().copied()),
                    names.join(", ")
                ),
            );
            default
        }
    }
}

fn validate_target(t: RawTarget, file: &str, diags: &mut Diagnostics) -> Option<Target> {
    let before = diags.items.len();
    if !is_identifier(&t.id.value) {
        diags.at(
            "C007",
            file,
            &t.id,
            format!("target id `{}` must be a lower-case identifier", t.id.value),
        );
    }
    let measure = choose(
        t.measure.as_ref(),
        Measure::Ratio,
        &[("ratio", Measure::Ratio), ("count", Measure::Count)],
        "measure",
        file,
        diags,
    );
    let grouping = choose(
        t.grouping.as_ref(),
        Grouping::Unit,
        &[("unit", Grouping::Unit), ("province", Grouping::Province)],
        "grouping",
        file,
        diags,
    );
    let severity = choose(
        t.severity.as_ref(),
        Severity::Error,
        &[("error", Severity::Error), ("warn", Severity::Warn)],
        "severity",
        file,
        diags,
    );
    let mut periods = Vec::new();
    for p in t.periods.iter().flatten() {
        match PeriodKind::parse(&p.value) {
            Some(k) if !periods.contains(&k) => periods.push(k),
            Some(_) => diags.at(
                "C006",
                file,
                p,
                format!("period `{}` is listed twice", p.value),
            ),
            None => diags.at(
                "C014",
                file,
                p,
                format!(
                    "unknown period `{}`{} (month or year)",
                    p.value,
                    did_you_mean(&p.value, PeriodKind::NAMES)
                ),
            ),
        }
    }
    if t.periods.is_none() {
        periods = vec![PeriodKind::Month, PeriodKind::Year];
    } else if periods.is_empty() && diags.items.len() == before {
        diags.at(
            "C014",
            file,
            &t.id,
            "`periods` is empty (month and/or year)",
        );
    }
    let comparator = match &t.comparator {
        None => None,
        Some(c) => match Comparator::parse(&c.value) {
            Some(c) => Some(c),
            None => {
                diags.at(
                    "C014",
                    file,
                    c,
                    format!(
                        "unknown comparator `{}` (one of: {})",
                        c.value,
                        Comparator::NAMES.join(", ")
                    ),
                );
                None
            }
        },
    };
    let threshold = match &t.threshold {
        None => None,
        Some(v) => match Threshold::from_f64(v.value) {
            Some(th) => Some(th),
            None => {
                diags.at(
                    "C014",
                    file,
                    v,
                    format!("threshold {} is not a plain decimal number", v.value),
                );
                None
            }
        },
    };
    let pass_when = match (comparator, threshold, &t.comparator, &t.threshold) {
        (Some(c), Some(th), _, _) => Some((c, th)),
        (_, _, None, None) => None,
        (_, _, Some(c), None) => {
            diags.at(
                "C014",
                file,
                c,
                "a comparator needs a threshold (leave both out for an indicator)",
            );
            None
        }
        (_, _, None, Some(v)) => {
            diags.at(
                "C014",
                file,
                v,
                "a threshold needs a comparator (`>=`, `>`, `=`, `<=`, `<`)",
            );
            None
        }
        _ => None, // already reported
    };
    if diags.items.len() > before {
        return None;
    }
    Some(Target {
        at: (
            file.to_string(),
            t.id.referenced.line(),
            t.id.referenced.column(),
        ),
        id: t.id.value,
        plan_text: t.plan_text,
        description: t.description.unwrap_or_default(),
        mart: t.mart.value,
        numerator: t.numerator.value,
        denominator: t.denominator.value,
        offending: t.offending.map(|o| o.value),
        measure,
        grouping,
        periods,
        pass_when,
        severity,
    })
}

/// Validate one plan file; `models` are the validated models, for references.
pub(super) fn validate_plan(
    year: i32,
    raw: RawPlan,
    file: &str,
    models: Option<&[Model]>,
    diags: &mut Diagnostics,
) -> Option<Plan> {
    let before = diags.items.len();
    let mut targets: Vec<Target> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let marts: Vec<&str> = models
        .unwrap_or_default()
        .iter()
        .filter(|m| m.materialized == Materialized::Table)
        .map(|m| m.name.as_str())
        .collect();
    for t in raw.targets {
        if ids.contains(&t.id.value) {
            diags.at(
                "C006",
                file,
                &t.id,
                format!("target `{}` is declared twice", t.id.value),
            );
        }
        ids.push(t.id.value.clone());
        let mart_ref = t.mart.clone();
        let refs: Vec<Spanned<String>> = [
            Some(t.numerator.clone()),
            Some(t.denominator.clone()),
            t.offending.clone(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let v = validate_target(t, file, diags);
        let Some(models) = models else {
            targets.extend(v);
            continue;
        };
        match models.iter().find(|m| m.name == mart_ref.value) {
            Some(m) if m.materialized == Materialized::Table => {
                let cols: Vec<&str> = m.columns.iter().map(|(n, _)| n.as_str()).collect();
                for r in &refs {
                    if !cols.contains(&r.value.as_str()) {
                        diags.at(
                            "C013",
                            file,
                            r,
                            format!(
                                "`{}` is not a column of mart `{}`{}",
                                r.value,
                                m.name,
                                did_you_mean(&r.value, cols.iter().copied())
                            ),
                        );
                    }
                }
                let grouping = v.as_ref().map(|v| v.grouping).unwrap_or(Grouping::Unit);
                let needed: &[&str] = match grouping {
                    Grouping::Unit => &["period", "unit_code"],
                    Grouping::Province => &["period"],
                };
                for n in needed {
                    if !cols.contains(n) {
                        diags.at(
                            "C013",
                            file,
                            &mart_ref,
                            format!(
                                "mart `{}` has no `{n}` column, which grouping `{}` needs",
                                m.name,
                                if grouping == Grouping::Unit {
                                    "unit"
                                } else {
                                    "province"
                                }
                            ),
                        );
                    }
                }
            }
            _ => diags.at(
                "C013",
                file,
                &mart_ref,
                format!(
                    "`{}` is not a mart{} (marts: {})",
                    mart_ref.value,
                    did_you_mean(&mart_ref.value, marts.iter().copied()),
                    marts.join(", ")
                ),
            ),
        }
        targets.extend(v);
    }
    let mut unmeasurable = Vec::new();
    for u in raw.unmeasurable {
        if ids.contains(&u.id.value) {
            diags.at(
                "C006",
                file,
                &u.id,
                format!("target `{}` is declared twice", u.id.value),
            );
        }
        ids.push(u.id.value.clone());
        unmeasurable.push(super::plan::Unmeasurable {
            id: u.id.value,
            plan_text: u.plan_text,
            reason: u.reason,
        });
    }
    if diags.items.len() > before {
        return None;
    }
    Some(Plan {
        year,
        plan: raw.plan,
        file: file.to_string(),
        targets,
        unmeasurable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn thresholds_are_exact_fractions() {
        let t = Threshold::from_f64(0.98).unwrap();
        assert_eq!((t.num, t.den), (98, 100));
        // 49/50 meets 0.98 exactly: 49·100 = 98·50.
        assert_eq!((49i128 * t.den).cmp(&(t.num * 50)), Ordering::Equal);
        assert_eq!(
            Threshold::from_f64(0.85).map(|t| (t.num, t.den)),
            Some((85, 100))
        );
        assert_eq!(
            Threshold::from_f64(1.0).map(|t| (t.num, t.den)),
            Some((1, 1))
        );
        assert_eq!(
            Threshold::from_f64(0.0).map(|t| (t.num, t.den)),
            Some((0, 1))
        );
        assert!(Comparator::Ge.holds(Ordering::Equal));
        assert!(!Comparator::Gt.holds(Ordering::Equal));
    }
}
