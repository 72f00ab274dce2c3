//! Checks: every target of the plan in force → `target_results`, one row per target × unit ×
//! period (the public contract of DESIGN.md), plus the province roll-up `ALL`.
//!
//! Numerators and denominators come from the marts (SQL); this module only sums them per group
//! and judges them, exactly: a ratio n/d against a threshold p/q holds when n·q compares with p·d
//! as the comparator says, in integers (49/50 ≥ 0.98 holds). A roll-up sums numerators and
//! denominators, never rates. Denominator 0 gives `no_data` (value null); a target without
//! threshold is an indicator (`info`); a `count` target's value is its numerator and it is never
//! `no_data`.
//!
//! Also written: `target_results_district` (same columns; each district counted with its
//! communes, for the ranking) and `plan_targets` (every target of every plan, measurable or not,
//! with its plan text, so the unmeasurable ones are reported, never faked).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array,
    ListBuilder, RecordBatch, StringArray, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::prelude::SessionContext;

use super::periods::Period;
use crate::base::dates::date_to_days;
use crate::base::error::{Error, Result};
use crate::base::text::ident;
use crate::config::units::Units;
use crate::config::{Config, Grouping, Measure, Severity, Target};
use crate::store::location::Location;
use crate::store::publish::write_part;

/// Keys kept in `sample_keys` (the marts keep the same number per unit, smallest first).
pub const SAMPLE_SIZE: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Pass,
    Fail,
    NoData,
    Info,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::NoData => "no_data",
            Status::Info => "info",
        }
    }
}

/// One row of `target_results`.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetRow {
    pub target_id: String,
    pub unit_code: String,
    pub period: String,
    pub as_of: chrono::NaiveDate,
    pub is_final: bool,
    pub numerator: i64,
    pub denominator: i64,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub status: Status,
    pub sample_keys: Vec<String>,
    pub severity: Severity,
}

impl TargetRow {
    /// The number of offending cases: the numerator of a count, else denominator − numerator.
    pub fn offending(&self, measure: Measure) -> i64 {
        match measure {
            Measure::Count => self.numerator,
            Measure::Ratio => self.denominator - self.numerator,
        }
    }
}

/// Judge a target on summed figures.
pub fn judge(t: &Target, n: i64, d: i64) -> (Option<f64>, Status) {
    let (value, lhs, rhs_scale) = match t.measure {
        Measure::Ratio if d == 0 => return (None, Status::NoData),
        Measure::Ratio => (n as f64 / d as f64, n as i128, d as i128),
        Measure::Count => (n as f64, n as i128, 1),
    };
    match t.pass_when {
        None => (Some(value), Status::Info),
        Some((cmp, th)) => {
            let ord = (lhs * th.den).cmp(&(th.num * rhs_scale));
            let status = if cmp.holds(ord) {
                Status::Pass
            } else {
                Status::Fail
            };
            (Some(value), status)
        }
    }
}

/// Figures of one mart row.
#[derive(Debug, Default, Clone)]
struct Figures {
    n: i64,
    d: i64,
    /// At most [`SAMPLE_SIZE`] distinct keys, in order.
    keys: Vec<String>,
}

impl Figures {
    /// The sum of `parts`. Only the [`SAMPLE_SIZE`] smallest distinct keys are ever reported,
    /// and those of a sum are among the smallest of its parts, so each figure keeps just those,
    /// in order, and a sum merges them without copying more (a province's `ALL` row sums every
    /// unit's): a part's keys are read only while they are smaller than the largest kept.
    fn sum<'a>(parts: impl IntoIterator<Item = &'a Figures>) -> Figures {
        let (mut n, mut d) = (0, 0);
        let mut best: Vec<&str> = Vec::with_capacity(SAMPLE_SIZE + 1);
        for p in parts {
            n += p.n;
            d += p.d;
            for k in &p.keys {
                if best.len() == SAMPLE_SIZE && k.as_str() >= best[SAMPLE_SIZE - 1] {
                    break;
                }
                if let Err(at) = best.binary_search(&k.as_str()) {
                    best.insert(at, k);
                    best.truncate(SAMPLE_SIZE);
                }
            }
        }
        Figures {
            n,
            d,
            keys: best.into_iter().map(str::to_string).collect(),
        }
    }
}

/// Keeps the [`SAMPLE_SIZE`] smallest distinct keys, in order.
fn smallest<T: Ord>(keys: &mut Vec<T>) {
    keys.sort_unstable();
    keys.dedup();
    keys.truncate(SAMPLE_SIZE);
}

/// A target's figures: period → unit (or "") → figures of its mart, for the periods in the
/// session.
type PeriodFigures = HashMap<String, HashMap<String, Figures>>;

/// The unit codes valid on a day, and that day's districts with their member codes.
type UnitsOn<'a> = (Vec<&'a str>, Vec<(&'a str, Vec<&'a str>)>);

/// The figures of a target's mart (see [`PeriodFigures`]).
async fn figures(ctx: &SessionContext, t: &Target) -> Result<PeriodFigures> {
    let unit = match t.grouping {
        Grouping::Unit => "unit_code",
        Grouping::Province => "''",
    };
    let keys = t
        .offending
        .as_deref()
        .map(ident)
        .unwrap_or_else(|| "NULL".into());
    let sql = format!(
        "SELECT period, {unit}, {}, {}, {keys} FROM {}",
        ident(&t.numerator),
        ident(&t.denominator),
        ident(&t.mart)
    );
    let batches = ctx
        .sql(&sql)
        .await?
        .collect()
        .await
        .map_err(|e| Error::Plan(format!("target `{}`: {}", t.id, e.strip_backtrace())))?;
    let mut out = PeriodFigures::new();
    for b in &batches {
        // Cast here, not in SQL: DataFusion may read VARCHAR as a string view.
        let text = |i: usize| arrow::compute::cast(b.column(i), &DataType::Utf8);
        let int = |i: usize| arrow::compute::cast(b.column(i), &DataType::Int64);
        let (period, unit, n, d) = (text(0)?, text(1)?, int(2)?, int(3)?);
        let (period, unit) = (period.as_string::<i32>(), unit.as_string::<i32>());
        let (n, d) = (n.as_primitive::<Int64Type>(), d.as_primitive::<Int64Type>());
        let keys = b.column(4);
        for i in 0..b.num_rows() {
            let mut f = Figures {
                n: if n.is_null(i) { 0 } else { n.value(i) },
                d: if d.is_null(i) { 0 } else { d.value(i) },
                keys: Vec::new(),
            };
            if let DataType::List(_) = keys.data_type() {
                let l = keys.as_list::<i32>();
                if !l.is_null(i) {
                    let v = l.value(i);
                    let v = arrow::compute::cast(&v, &DataType::Utf8)?;
                    let mut keys: Vec<&str> = v.as_string::<i32>().iter().flatten().collect();
                    smallest(&mut keys);
                    f.keys = keys.into_iter().map(str::to_string).collect();
                }
            }
            let of_period = match out.get_mut(period.value(i)) {
                Some(m) => m,
                None => out.entry(period.value(i).to_string()).or_default(),
            };
            match of_period.get_mut(unit.value(i)) {
                Some(u) => *u = Figures::sum([&*u, &f]),
                None => {
                    of_period.insert(unit.value(i).to_string(), f);
                }
            }
        }
    }
    Ok(out)
}

/// The rows of `target_results` and `target_results_district` for the periods of the session.
pub struct Evaluation {
    pub rows: Vec<TargetRow>,
    pub district_rows: Vec<TargetRow>,
}

/// Evaluate every target of the plan in force for each period, from the marts of `ctx`.
pub async fn evaluate(
    ctx: &SessionContext,
    cfg: &Config,
    periods: &[&Period],
    units: &Units,
) -> Result<Evaluation> {
    let mut rows = Vec::new();
    let mut district_rows = Vec::new();
    // Targets of every plan in force for some period, evaluated once per target id and plan.
    let mut by_plan: BTreeMap<i32, Vec<&Period>> = BTreeMap::new();
    for p in periods {
        if let Some(plan) = cfg.plan_for(p.year()) {
            by_plan.entry(plan.year).or_default().push(p);
        } else {
            tracing::warn!(period = %p.id, "no reform plan in force for this period: no targets checked");
        }
    }
    for (year, ps) in by_plan {
        let plan = cfg.plans.iter().find(|p| p.year == year).expect("plan");
        // The targets' queries at once (each reads a small mart held in memory); an error is
        // reported for the first target in the plan's order.
        let tasks = plan.targets.iter().map(|t| {
            let (ctx, t) = (ctx.clone(), t.clone());
            tokio::spawn(async move { figures(&ctx, &t).await })
        });
        let all_figures = futures::future::join_all(tasks)
            .await
            .into_iter()
            .map(|r| r.map_err(|e| Error::Internal(format!("a target's query: {e}")))?)
            .collect::<Result<Vec<_>>>()?;
        // The units valid on each period's as-of day, with that day's districts.
        let units_of: Vec<UnitsOn> = ps
            .iter()
            .map(|p| {
                let valid = units.valid_on(p.as_of).map(|u| u.unit_code.as_str());
                (valid.collect(), units.districts_on(p.as_of))
            })
            .collect();
        // The rows pushed below: per target and period, a row per valid unit and `ALL`.
        rows.reserve(
            plan.targets
                .iter()
                .flat_map(|t| {
                    ps.iter()
                        .zip(&units_of)
                        .filter(|(p, _)| t.periods.contains(&p.kind))
                        .map(move |(_, (valid, _))| match t.grouping {
                            Grouping::Unit => valid.len() + 1,
                            Grouping::Province => 1,
                        })
                })
                .sum(),
        );
        for (t, mut figs) in plan.targets.iter().zip(all_figures) {
            for (p, (valid, districts)) in ps.iter().zip(&units_of) {
                if !t.periods.contains(&p.kind) {
                    continue;
                }
                let row = |unit: &str, f: Figures| {
                    let (value, status) = judge(t, f.n, f.d);
                    TargetRow {
                        target_id: t.id.clone(),
                        unit_code: unit.to_string(),
                        period: p.id.clone(),
                        as_of: p.as_of,
                        is_final: p.is_final,
                        numerator: f.n,
                        denominator: f.d,
                        value,
                        threshold: t.pass_when.map(|(_, th)| th.value),
                        status,
                        sample_keys: f.keys,
                        severity: t.severity,
                    }
                };
                // Each period is visited once per target: its figures are moved into the rows.
                let mut of_period = figs.remove(&p.id).unwrap_or_default();
                let all = Figures::sum(of_period.values());
                if t.grouping == Grouping::Unit {
                    // The marts already count each record for its unit's successor as of the
                    // period's as-of day.
                    for (code, members) in districts {
                        let f = Figures::sum(members.iter().filter_map(|m| of_period.get(*m)));
                        district_rows.push(row(code, f));
                    }
                    // A code is valid once on a day, so each unit's figures are taken once.
                    for u in valid {
                        rows.push(row(u, of_period.remove(*u).unwrap_or_default()));
                    }
                }
                rows.push(row("ALL", all));
            }
        }
    }
    Ok(Evaluation {
        rows,
        district_rows,
    })
}

/// The `target_results` contract.
pub fn results_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("target_id", DataType::Utf8, false),
        Field::new("unit_code", DataType::Utf8, false),
        Field::new("period", DataType::Utf8, false),
        Field::new("as_of", DataType::Date32, false),
        Field::new("final", DataType::Boolean, false),
        Field::new("numerator", DataType::Int64, false),
        Field::new("denominator", DataType::Int64, false),
        Field::new("value", DataType::Float64, true),
        Field::new("threshold", DataType::Float64, true),
        Field::new("status", DataType::Utf8, false),
        Field::new(
            "sample_keys",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            false,
        ),
    ]))
}

pub fn plan_targets_schema() -> SchemaRef {
    let s = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    Arc::new(Schema::new(vec![
        Field::new("plan_year", DataType::Int32, false),
        s("target_id", false),
        s("plan", false),
        s("plan_text", false),
        s("description", true),
        Field::new("measurable", DataType::Boolean, false),
        s("reason", true),
        s("mart", true),
        s("numerator", true),
        s("denominator", true),
        s("measure", true),
        s("grouping", true),
        s("periods", true),
        s("comparator", true),
        Field::new("threshold", DataType::Float64, true),
        s("severity", true),
    ]))
}

/// The tables the checks write, with their schemas (registered in every warehouse session).
pub fn result_tables() -> [(&'static str, SchemaRef); 3] {
    [
        ("target_results", results_schema()),
        ("target_results_district", results_schema()),
        ("plan_targets", plan_targets_schema()),
    ]
}

pub fn results_batch(rows: &[TargetRow]) -> Result<RecordBatch> {
    let mut keys = ListBuilder::new(StringBuilder::new());
    for r in rows {
        for k in &r.sample_keys {
            keys.values().append_value(k);
        }
        keys.append(true);
    }
    let s = |f: fn(&TargetRow) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let cols: Vec<ArrayRef> = vec![
        s(|r| &r.target_id),
        s(|r| &r.unit_code),
        s(|r| &r.period),
        Arc::new(Date32Array::from_iter_values(
            rows.iter().map(|r| date_to_days(r.as_of)),
        )),
        Arc::new(BooleanArray::from_iter(
            rows.iter().map(|r| Some(r.is_final)),
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.numerator),
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.denominator),
        )),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.value))),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.threshold))),
        s(|r| r.status.name()),
        Arc::new(keys.finish()),
    ];
    Ok(RecordBatch::try_new(results_schema(), cols)?)
}

pub fn plan_targets_batch(cfg: &Config) -> Result<RecordBatch> {
    let mut year = Vec::new();
    let mut cols: Vec<Vec<Option<String>>> = vec![Vec::new(); 14];
    let mut measurable = Vec::new();
    let mut threshold = Vec::new();
    for plan in &cfg.plans {
        for t in &plan.targets {
            year.push(plan.year);
            measurable.push(Some(true));
            threshold.push(t.pass_when.map(|(_, th)| th.value));
            let vals = [
                Some(t.id.clone()),
                Some(plan.plan.clone()),
                Some(t.plan_text.clone()),
                Some(t.description.clone()),
                None,
                Some(t.mart.clone()),
                Some(t.numerator.clone()),
                Some(t.denominator.clone()),
                Some(match t.measure {
                    Measure::Ratio => "ratio".into(),
                    Measure::Count => "count".into(),
                }),
                Some(match t.grouping {
                    Grouping::Unit => "unit".into(),
                    Grouping::Province => "province".into(),
                }),
                Some(
                    t.periods
                        .iter()
                        .map(|k| k.name())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                t.pass_when.map(|(c, _)| c.symbol().to_string()),
                Some(t.severity.name().to_string()),
                None,
            ];
            for (c, v) in cols.iter_mut().zip(vals) {
                c.push(v);
            }
        }
        for u in &plan.unmeasurable {
            year.push(plan.year);
            measurable.push(Some(false));
            threshold.push(None);
            let mut vals: Vec<Option<String>> = vec![None; 14];
            vals[0] = Some(u.id.clone());
            vals[1] = Some(plan.plan.clone());
            vals[2] = Some(u.plan_text.clone());
            vals[4] = Some(u.reason.clone());
            for (c, v) in cols.iter_mut().zip(vals) {
                c.push(v);
            }
        }
    }
    let text = |i: usize| -> ArrayRef { Arc::new(StringArray::from(cols[i].clone())) };
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from(year)),
        text(0),
        text(1),
        text(2),
        text(3),
        Arc::new(BooleanArray::from(measurable)),
        text(4),
        text(5),
        text(6),
        text(7),
        text(8),
        text(9),
        text(10),
        text(11),
        Arc::new(Float64Array::from(threshold)),
        text(12),
    ];
    Ok(RecordBatch::try_new(plan_targets_schema(), arrays)?)
}

/// Write the results of the evaluated periods, and the plan catalogue.
pub async fn write(
    wh: &Location,
    run_id: &str,
    cfg: &Config,
    ev: &Evaluation,
    periods: &[&Period],
) -> Result<()> {
    let batches = [
        ("target_results", results_batch(&ev.rows)?),
        ("target_results_district", results_batch(&ev.district_rows)?),
    ]
    .map(|(table, batch)| (table, batch.schema(), batch));
    let plan_targets = plan_targets_batch(cfg)?;
    let results = batches.iter().map(|(table, schema, batch)| {
        super::models::write_periods(
            wh,
            run_id,
            table,
            schema,
            std::slice::from_ref(batch),
            periods,
        )
    });
    let (results, plan) = futures::future::join(
        futures::future::try_join_all(results),
        write_part(wh, "marts/plan_targets", run_id, &plan_targets, true),
    )
    .await;
    results?;
    plan
}

/// Whether some target of severity `error` fails in `rows`.
pub fn any_error_fails(rows: &[TargetRow]) -> bool {
    rows.iter()
        .any(|r| r.status == Status::Fail && r.severity == Severity::Error)
}

#[cfg(test)]
mod tests {
    use super::{smallest, Figures, SAMPLE_SIZE};

    fn figures(n: i64, keys: &[&str]) -> Figures {
        let mut keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        smallest(&mut keys);
        Figures { n, d: 2 * n, keys }
    }

    #[test]
    fn a_sum_keeps_the_smallest_distinct_keys_of_all_its_parts() {
        // Parts whose keys overlap, repeat and interleave; more keys than a sample in all.
        let parts: Vec<Vec<String>> = (0..40)
            .map(|i| {
                (0..(i % 13))
                    .map(|j| format!("k{:03}", (i * 7 + j * 11) % 97))
                    .collect()
            })
            .collect();
        let figs: Vec<Figures> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| figures(i as i64, &p.iter().map(String::as_str).collect::<Vec<_>>()))
            .collect();
        let sum = Figures::sum(&figs);
        let mut union: Vec<String> = parts.concat();
        union.sort();
        union.dedup();
        union.truncate(SAMPLE_SIZE);
        assert_eq!(sum.keys, union);
        assert_eq!((sum.n, sum.d), (780, 1560));
        // Nothing to sum: zeros and no keys; a part without keys changes nothing.
        let none = Figures::sum([]);
        assert_eq!((none.n, none.d, none.keys.len()), (0, 0, 0));
        let one = figures(3, &["b", "a", "b"]);
        let with_empty = Figures::sum([&one, &Figures::default()]);
        assert_eq!(with_empty.keys, ["a", "b"]);
        assert_eq!(with_empty.n, 3);
    }
}
