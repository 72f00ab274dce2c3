//! The analysts' SQL surface: a DataFusion session in which every staging table is registered by
//! its source name, with its versions and state views (see `crate::warehouse::state`), the marts,
//! the target results (see `crate::warehouse::models`) and the ranking tables. Quarantine holds raw personal data and is never registered.

use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParser, Statement as DFStatement};

use crate::base::error::{Error, Result};
use crate::config::units::Units;
use crate::config::Config;
use crate::store::location::Location;
use crate::store::publish::Published;
use crate::warehouse::models::{
    new_context, register_files, register_state, register_warehouse_models,
};
use crate::warehouse::periods::{known_periods, Period};

/// A session with the warehouse's tables registered: staging and its `_versions`/`_state`
/// views, `periods` (every period of the ingested days), `units`, `unit_groups`, the view models,
/// the marts, `target_results`, `target_results_district` and `plan_targets`.
pub async fn session(cfg: &Config, units: Option<&Units>) -> Result<SessionContext> {
    Ok(snapshot_session(cfg, units).await?.0)
}

/// A session and the commit records it was listed under (which know every file it reads).
pub async fn snapshot_session(
    cfg: &Config,
    units: Option<&Units>,
) -> Result<(SessionContext, Published, Location)> {
    let wh = Location::open(&cfg.warehouse, true)?;
    let ctx = new_context(&cfg.engine)?;
    let (ledger, periods) = known_periods(&wh).await?;
    let published = Published::with_ledger(&wh, &ledger).await?;
    let refs: Vec<&Period> = periods.iter().collect();
    register_state(
        &ctx,
        cfg,
        Some((&wh, &published)),
        Some(&ledger),
        &refs,
        units,
    )
    .await?;
    register_warehouse_models(&ctx, cfg, (&wh, &published)).await?;
    for (name, schema) in [
        ("par_scores", crate::ranking::tables::scores_schema()),
        ("par_ranking", crate::ranking::tables::ranking_schema()),
    ] {
        register_files(
            &ctx,
            (&wh, &published),
            name,
            &format!("marts/{name}"),
            Some(schema),
        )
        .await?;
    }
    Ok((ctx, published, wh))
}

/// Open a session and run one statement. A run that publishes new files removes the superseded
/// ones (see `crate::store::publish`); a query that listed a table just before may find a file gone (an
/// error, or a file DataFusion skips), and is then run again on a fresh listing (up to five
/// times), so it answers from complete versions only.
pub async fn query_warehouse(
    cfg: &Config,
    units: Option<&Units>,
    sql: &str,
    format: OutputFormat,
) -> Result<String> {
    let mut attempt = 0;
    loop {
        let (ctx, published, wh) = match snapshot_session(cfg, units).await {
            // Reading a mart's schema from a file that was just vacuumed fails: list again.
            Err(e) if attempt < 5 => {
                attempt += 1;
                tracing::debug!(error = %e, attempt, "listing the warehouse failed: listing again");
                continue;
            }
            r => r?,
        };
        let r = query(&ctx, sql, format).await;
        let vanished = !published.intact(&wh).await?;
        if vanished && attempt < 5 {
            attempt += 1;
            tracing::debug!(attempt, "a file was replaced while reading: listing again");
            continue;
        }
        if vanished {
            return Err(Error::Internal(format!(
                "the warehouse {} kept replacing files while the query read them; try again",
                wh.display
            )));
        }
        return r;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

/// Why a statement of analysts' SQL is refused, or `None` when it may run. Analysts' SQL is
/// read-only: queries, `EXPLAIN` of an allowed statement, `SHOW`, `SET` and `RESET` of session
/// settings. Everything else (`COPY`, `CREATE [EXTERNAL] TABLE|VIEW`, `INSERT`, `DROP`, …) could
/// write into the warehouse or register a file outside it (quarantine, `/etc`), and is refused.
pub fn refusal(statement: &DFStatement) -> Option<String> {
    match statement {
        DFStatement::Statement(s) => statement_refusal(s),
        DFStatement::Explain(e) => refusal(&e.statement),
        DFStatement::Reset(_) => None,
        DFStatement::CopyTo(_) => Some("COPY".into()),
        DFStatement::CreateExternalTable(_) => Some("CREATE EXTERNAL TABLE".into()),
    }
}

/// [`refusal`] of a statement of the SQL grammar (what `cchc serve` parses).
pub fn statement_refusal(statement: &datafusion::sql::sqlparser::ast::Statement) -> Option<String> {
    use datafusion::sql::sqlparser::ast::{SetExpr, Statement as S};
    match statement {
        S::Query(q) => match q.body.as_ref() {
            SetExpr::Insert(_) => Some("INSERT".into()),
            SetExpr::Update(_) => Some("UPDATE".into()),
            SetExpr::Delete(_) => Some("DELETE".into()),
            SetExpr::Merge(_) => Some("MERGE".into()),
            _ => None,
        },
        S::Explain { statement, .. } => statement_refusal(statement),
        S::ExplainTable { .. }
        | S::Set(_)
        | S::ShowVariable { .. }
        | S::ShowVariables { .. }
        | S::ShowTables { .. }
        | S::ShowColumns { .. }
        | S::ShowFunctions { .. }
        | S::ShowViews { .. }
        | S::ShowSchemas { .. } => None,
        other => Some(leading_words(&other.to_string())),
    }
}

/// The keywords a statement starts with (`CREATE TABLE`, `DROP VIEW`, `INSERT`), for messages.
fn leading_words(sql: &str) -> String {
    let words: Vec<String> = sql
        .split_whitespace()
        .take(4)
        .map(|w| w.to_uppercase())
        .collect();
    // A verb, then the kind of object for the verbs that take one (`CREATE OR REPLACE VIEW`).
    let mut out = Vec::new();
    for w in words {
        let more = out.is_empty()
            || matches!(
                out.last().map(String::as_str),
                Some(
                    "CREATE"
                        | "DROP"
                        | "ALTER"
                        | "OR"
                        | "REPLACE"
                        | "EXTERNAL"
                        | "TEMPORARY"
                        | "TEMP"
                )
            );
        if !more || !w.chars().all(|c| c.is_ascii_alphabetic()) {
            break;
        }
        out.push(w);
    }
    if out.is_empty() {
        "this statement".into()
    } else {
        out.join(" ")
    }
}

/// Check that `sql` is read-only (see [`refusal`]), before anything is planned; returns the
/// planner options that enforce the same again on the plan (no DDL, no DML, and statements only
/// for `SET`).
pub fn read_only(sql: &str) -> Result<SQLOptions> {
    let statements = DFParser::parse_sql(sql)?;
    let mut settings = false;
    for st in &statements {
        if let Some(what) = refusal(st) {
            return Err(Error::Usage(format!(
                "refused: `{what}` is not allowed here; analysts' SQL is read-only (queries, EXPLAIN, SHOW, SET)"
            )));
        }
        settings |= matches!(st, DFStatement::Statement(s) if matches!(s.as_ref(), datafusion::sql::sqlparser::ast::Statement::Set(_)));
    }
    Ok(SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(settings))
}

/// Run one read-only statement and render its result.
pub async fn query(ctx: &SessionContext, sql: &str, format: OutputFormat) -> Result<String> {
    let options = read_only(sql)?;
    let df = ctx.sql_with_options(sql, options).await?;
    let schema: arrow::datatypes::SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let mut batches = df.collect().await?;
    if batches.is_empty() {
        // An empty result still has its columns (a CSV header, a table frame).
        batches.push(RecordBatch::new_empty(schema));
    }
    render(&batches, format)
}

/// CSV has no lists or records: their columns are written as text, as the table format shows
/// them (`[000.01, 000.02]`, `{a: 1}`); the other columns are unchanged.
fn nested_as_text(b: &RecordBatch) -> Result<RecordBatch> {
    use arrow::array::{Array, ArrayRef, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    if !b.columns().iter().any(|c| c.data_type().is_nested()) {
        return Ok(b.clone());
    }
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (f, c) in b.schema().fields().iter().zip(b.columns()) {
        if !c.data_type().is_nested() {
            fields.push(f.as_ref().clone());
            columns.push(c.clone());
            continue;
        }
        let fmt = ArrayFormatter::try_new(c.as_ref(), &FormatOptions::default())?;
        let text: StringArray = (0..c.len())
            .map(|i| (!c.is_null(i)).then(|| fmt.value(i).to_string()))
            .collect();
        fields.push(Field::new(f.name(), DataType::Utf8, true));
        columns.push(std::sync::Arc::new(text));
    }
    Ok(RecordBatch::try_new(
        std::sync::Arc::new(Schema::new(fields)),
        columns,
    )?)
}

pub fn render(batches: &[RecordBatch], format: OutputFormat) -> Result<String> {
    match format {
        OutputFormat::Table => Ok(arrow::util::pretty::pretty_format_batches(batches)?.to_string()),
        OutputFormat::Csv => {
            let mut buf = Vec::new();
            {
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut buf);
                for b in batches {
                    w.write(&nested_as_text(b)?)?;
                }
            }
            String::from_utf8(buf).map_err(|e| Error::Internal(e.to_string()))
        }
        OutputFormat::Json => {
            let mut buf = Vec::new();
            {
                let mut w = arrow::json::LineDelimitedWriter::new(&mut buf);
                for b in batches {
                    w.write(b)?;
                }
                w.finish()?;
            }
            String::from_utf8(buf).map_err(|e| Error::Internal(e.to_string()))
        }
    }
}
