//! `cchc test`: the pipeline's own tests, beside the pipeline YAML (`<pipelines>/tests/`).
//!
//! - `*.yaml`: unit tests of models and targets, in dbt's shape: `given` rows of staging tables
//!   (and units) → `expect` rows of marts, views or `target_results`. Each test runs in a fresh
//!   in-memory session through the same code as a run (state views, models, checks).
//! - `*.slt`: sqllogictest files. Each file gets a fresh session with empty staging tables,
//!   `periods` and `units` (insert rows with `INSERT INTO`), and every model as a view.
//!
//! Comparison of `expect` rows: the columns are those the expected rows name; the actual rows
//! compared are all rows of the table, restricted to the `target_id`s and `period`s the expected
//! rows mention when they name those columns. Both sides are rendered as text (null as `null`,
//! lists as `[a, b]`) and compared as sorted lists: a missing or an extra row fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::base::error::{Diagnostic, Error, Result};
use crate::config::units::Units;
use crate::config::{self, Config};
use crate::warehouse::periods::{periods_of, Period};
use crate::warehouse::{checks, models};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    tests: Vec<UnitTest>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitTest {
    name: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    /// The ingested days; the periods (and their as-of days) follow from them.
    ingested_days: Vec<String>,
    /// Units of the test; default: every `unit_code` of the given rows, as departments.
    #[serde(default)]
    units: Option<Vec<Map<String, Value>>>,
    /// Unit changes of the test (`effective_date`, `old_code`, `new_code`), as unit_changes.csv.
    #[serde(default)]
    unit_changes: Vec<Map<String, Value>>,
    /// Rows of staging tables, by table. Missing columns are null; `extract_date` defaults to
    /// the first ingested day, `source_file` to `given`, `source_position` to the row number.
    given: BTreeMap<String, Vec<Map<String, Value>>>,
    expect: BTreeMap<String, Vec<Map<String, Value>>>,
}

/// The outcome of `cchc test`.
#[derive(Debug, Default)]
pub struct Report {
    pub passed: Vec<String>,
    pub failed: Vec<(String, String)>,
}

/// Run every test file under `<pipelines>/tests/`.
pub async fn run_all(cfg: &Config, dir: &Path, filter: Option<&str>) -> Result<Report> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            return Err(Error::Usage(format!(
                "no test folder {}: {e}",
                dir.display()
            )))
        }
    };
    files.sort();
    let mut report = Report::default();
    for f in files {
        let name = config::clean_path(&f).display().to_string();
        if let Some(filt) = filter {
            if !name.contains(filt) {
                continue;
            }
        }
        match f.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => run_yaml(cfg, &f, &name, &mut report).await?,
            Some("slt") => match run_slt(cfg, &f).await {
                Ok(()) => report.passed.push(name),
                Err(msg) => report.failed.push((name, msg)),
            },
            _ => {}
        }
    }
    Ok(report)
}

async fn run_yaml(cfg: &Config, path: &Path, name: &str, report: &mut Report) -> Result<()> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::io(format!("cannot read {name}"), e))?;
    let file: TestFile = serde_saphyr::from_str(&text).map_err(|e| {
        Error::Config(vec![Diagnostic {
            code: "C002",
            file: name.to_string(),
            line: e.location().map(|l| l.line()).unwrap_or(0),
            column: e.location().map(|l| l.column()).unwrap_or(0),
            message: e.to_string().lines().next().unwrap_or("").to_string(),
        }])
    })?;
    for t in &file.tests {
        let id = format!("{name}: {}", t.name);
        match run_unit_test(cfg, t).await {
            Ok(()) => report.passed.push(id),
            Err(msg) => report.failed.push((id, msg)),
        }
    }
    Ok(())
}

fn parse_day(s: &str) -> std::result::Result<NaiveDate, String> {
    s.parse()
        .map_err(|_| format!("`{s}` is not a day (YYYY-MM-DD)"))
}

/// The units of a test: its `units` rows (with optional `valid_from`/`valid_to`) and
/// `unit_changes`, read as units.csv and unit_changes.csv are, so the same checks apply; without
/// `units`, every `unit_code` of the given rows as a department.
fn test_units(t: &UnitTest) -> std::result::Result<Units, String> {
    let csv_of =
        |header: &[&str], rows: Vec<Vec<String>>| -> std::result::Result<Vec<u8>, String> {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(header).map_err(|e| e.to_string())?;
            for r in rows {
                w.write_record(&r).map_err(|e| e.to_string())?;
            }
            w.into_inner().map_err(|e| e.to_string())
        };
    let rows: Vec<Vec<String>> = match &t.units {
        Some(list) => list
            .iter()
            .map(|m| {
                let get = |k: &str| m.get(k).map(text_of).unwrap_or_default();
                let code = get("unit_code");
                let name = m
                    .get("unit_name")
                    .map(text_of)
                    .unwrap_or_else(|| code.clone());
                let tier = m.get("tier").map(text_of);
                let tier = tier.unwrap_or_else(|| "so-ban-nganh".into());
                let (parent, from, to) = (get("parent_code"), get("valid_from"), get("valid_to"));
                vec![code, name, tier, parent, from, to]
            })
            .collect(),
        None => {
            let codes: BTreeSet<String> = t
                .given
                .values()
                .flatten()
                .filter_map(|r| r.get("unit_code").map(text_of))
                .collect();
            codes
                .into_iter()
                .map(|c| {
                    vec![
                        c.clone(),
                        c,
                        "so-ban-nganh".into(),
                        String::new(),
                        String::new(),
                        String::new(),
                    ]
                })
                .collect()
        }
    };
    let header = [
        "unit_code",
        "unit_name",
        "tier",
        "parent_code",
        "valid_from",
        "valid_to",
    ];
    let units = Units::parse(&csv_of(&header, rows)?, "units").map_err(|e| e.to_string())?;
    if t.unit_changes.is_empty() {
        return Ok(units);
    }
    let changes = t
        .unit_changes
        .iter()
        .map(|m| {
            ["effective_date", "old_code", "new_code"]
                .iter()
                .map(|k| m.get(*k).map(text_of).unwrap_or_default())
                .collect()
        })
        .collect();
    let bytes = csv_of(&["effective_date", "old_code", "new_code"], changes)?;
    units
        .with_changes(&bytes, "unit_changes")
        .map_err(|e| e.to_string())
}

/// Given rows of a staging table → one batch of its schema (through the JSON reader, which
/// reads timestamps without offset in the column's time zone).
fn given_batch(
    schema: SchemaRef,
    rows: &[Map<String, Value>],
    first_day: NaiveDate,
) -> std::result::Result<RecordBatch, String> {
    let mut lines = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let mut r = r.clone();
        for k in r.keys() {
            if schema.field_with_name(k).is_err() {
                return Err(format!(
                    "`{k}` is not a column of the table (columns: {})",
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        r.entry("extract_date")
            .or_insert_with(|| Value::String(first_day.to_string()));
        r.entry("source_file")
            .or_insert_with(|| Value::String("given".into()));
        r.entry("source_position")
            .or_insert_with(|| Value::from(i as i64 + 1));
        lines.push(serde_json::to_string(&Value::Object(r)).map_err(|e| e.to_string())?);
    }
    let text = lines.join("\n");
    let mut reader = arrow::json::ReaderBuilder::new(schema.clone())
        .build(std::io::Cursor::new(text.into_bytes()))
        .map_err(|e| e.to_string())?;
    let mut batches = Vec::new();
    for b in reader.by_ref() {
        batches.push(b.map_err(|e| e.to_string())?);
    }
    arrow::compute::concat_batches(&schema, &batches).map_err(|e| e.to_string())
}

async fn run_unit_test(cfg: &Config, t: &UnitTest) -> std::result::Result<(), String> {
    let days: BTreeSet<NaiveDate> = t
        .ingested_days
        .iter()
        .map(|d| parse_day(d))
        .collect::<std::result::Result<_, _>>()?;
    let first = *days.iter().next().ok_or("`ingested_days` is empty")?;
    let periods = periods_of(&days);
    let refs: Vec<&Period> = periods.iter().collect();
    let units = test_units(t)?;
    let ctx = models::local_context(&cfg.engine).map_err(|e| e.to_string())?;
    for table in t.given.keys() {
        if cfg.source(table).is_none() {
            return Err(format!(
                "given `{table}` is not a staging table{}",
                config::did_you_mean(table, cfg.sources.iter().map(|s| s.name.as_str()))
            ));
        }
    }
    for source in &cfg.sources {
        let schema = crate::ingest::typing::staging_schema(source);
        let batches = match t.given.get(&source.name) {
            Some(rows) => vec![given_batch(schema.clone(), rows, first)
                .map_err(|e| format!("given `{}`: {e}", source.name))?],
            None => vec![],
        };
        ctx.register_table(
            source.name.as_str(),
            models::mem_table(schema, batches).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
    }
    models::register_views(&ctx, cfg, None, &refs, Some(&units))
        .await
        .map_err(|e| e.to_string())?;
    models::compute(&ctx, cfg, cfg.engine.marts_at_once())
        .await
        .map_err(|e| e.to_string())?;
    let ev = checks::evaluate(&ctx, cfg, &refs, &units)
        .await
        .map_err(|e| e.to_string())?;
    for (name, rows) in [
        ("target_results", &ev.rows),
        ("target_results_district", &ev.district_rows),
    ] {
        let b = checks::results_batch(rows).map_err(|e| e.to_string())?;
        ctx.register_table(
            name,
            models::mem_table(b.schema(), vec![b]).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
    }
    let mut problems = Vec::new();
    for (table, expected) in &t.expect {
        if let Err(p) = compare(&ctx, table, expected).await {
            problems.push(p);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(text_of).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

async fn compare(
    ctx: &SessionContext,
    table: &str,
    expected: &[Map<String, Value>],
) -> std::result::Result<(), String> {
    let df = ctx
        .table(table)
        .await
        .map_err(|e| format!("expect `{table}`: {}", e.strip_backtrace()))?;
    let batches = df.collect().await.map_err(|e| e.to_string())?;
    let cols: Vec<String> = match expected.first() {
        Some(r) => r.keys().cloned().collect(),
        None => Vec::new(),
    };
    for r in expected {
        let keys: Vec<String> = r.keys().cloned().collect();
        if keys != cols {
            return Err(format!(
                "expect `{table}`: every row must name the same columns ({})",
                cols.join(", ")
            ));
        }
    }
    let restrict = |c: &str| -> Option<BTreeSet<String>> {
        cols.iter()
            .any(|x| x == c)
            .then(|| expected.iter().map(|r| text_of(&r[c])).collect())
    };
    let (targets, periods) = (restrict("target_id"), restrict("period"));
    let opts = FormatOptions::default().with_null("null");
    let mut actual: Vec<Vec<String>> = Vec::new();
    for b in &batches {
        let mut fmts = Vec::new();
        for c in &cols {
            let a = b
                .column_by_name(c)
                .ok_or_else(|| format!("expect `{table}`: no column `{c}`"))?;
            fmts.push(ArrayFormatter::try_new(a.as_ref(), &opts).map_err(|e| e.to_string())?);
        }
        let text = |name: &str, i: usize| -> Option<String> {
            let a = b.column_by_name(name)?;
            let f = ArrayFormatter::try_new(a.as_ref(), &opts).ok()?;
            Some(f.value(i).to_string())
        };
        for i in 0..b.num_rows() {
            if let (Some(ts), Some(v)) = (&targets, text("target_id", i)) {
                if !ts.contains(&v) {
                    continue;
                }
            }
            if let (Some(ps), Some(v)) = (&periods, text("period", i)) {
                if !ps.contains(&v) {
                    continue;
                }
            }
            actual.push(fmts.iter().map(|f| f.value(i).to_string()).collect());
        }
    }
    let mut want: Vec<Vec<String>> = expected
        .iter()
        .map(|r| cols.iter().map(|c| text_of(&r[c])).collect())
        .collect();
    actual.sort();
    want.sort();
    if actual == want {
        return Ok(());
    }
    let show = |r: &Vec<String>| {
        format!(
            "{{{}}}",
            cols.iter()
                .zip(r)
                .map(|(c, v)| format!("{c}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mut msg = format!("expect `{table}`: rows differ");
    for r in want.iter().filter(|r| !actual.contains(r)) {
        msg.push_str(&format!("\n  - expected, missing: {}", show(r)));
    }
    for r in actual.iter().filter(|r| !want.contains(r)) {
        msg.push_str(&format!("\n  + actual, unexpected: {}", show(r)));
    }
    Err(msg)
}

/// One `.slt` file against a fresh session.
async fn run_slt(cfg: &Config, path: &Path) -> std::result::Result<(), String> {
    let cfg = Arc::new(cfg.clone());
    let mut runner = sqllogictest::Runner::new(move || {
        let cfg = cfg.clone();
        async move {
            let ctx = models::local_context(&cfg.engine).map_err(SltError::from)?;
            models::register_state(&ctx, &cfg, None, None, &[], None)
                .await
                .map_err(SltError::from)?;
            for m in &cfg.models {
                // Marts too are views here: the file inserts rows and queries them.
                models::create_view(&ctx, m).await.map_err(SltError::from)?;
            }
            Ok::<_, SltError>(SltDb { ctx })
        }
    });
    runner
        .run_file_async(path)
        .await
        .map_err(|e| e.display(false).to_string())
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SltError(String);

impl From<Error> for SltError {
    fn from(e: Error) -> Self {
        SltError(e.to_string())
    }
}

struct SltDb {
    ctx: SessionContext,
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for SltDb {
    type Error = SltError;
    type ColumnType = sqllogictest::DefaultColumnType;

    async fn run(
        &mut self,
        sql: &str,
    ) -> std::result::Result<sqllogictest::DBOutput<Self::ColumnType>, SltError> {
        let df = self
            .ctx
            .sql(sql)
            .await
            .map_err(|e| SltError(e.strip_backtrace()))?;
        let is_query = !matches!(
            df.logical_plan(),
            datafusion::logical_expr::LogicalPlan::Dml(_)
                | datafusion::logical_expr::LogicalPlan::Ddl(_)
                | datafusion::logical_expr::LogicalPlan::EmptyRelation(_)
        );
        let schema = df.schema().as_arrow().clone();
        let batches = df
            .collect()
            .await
            .map_err(|e| SltError(e.strip_backtrace()))?;
        if !is_query {
            return Ok(sqllogictest::DBOutput::StatementComplete(0));
        }
        let opts = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for b in &batches {
            let fmts = b
                .columns()
                .iter()
                .map(|a| ArrayFormatter::try_new(a.as_ref(), &opts))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| SltError(e.to_string()))?;
            for i in 0..b.num_rows() {
                rows.push(
                    fmts.iter()
                        .map(|f| {
                            let s = f.value(i).to_string();
                            if s.is_empty() {
                                "(empty)".to_string()
                            } else {
                                s
                            }
                        })
                        .collect(),
                );
            }
        }
        Ok(sqllogictest::DBOutput::Rows {
            types: vec![sqllogictest::DefaultColumnType::Any; schema.fields().len()],
            rows,
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "cchc"
    }
}
