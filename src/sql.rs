//! The analysts' SQL surface: a DataFusion session in which every staging table is registered by
//! its source name, with its versions and state views (see `state`), the marts and the target
//! results (see `models`). Quarantine holds raw personal data and is never registered.

use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::ingest::units::Units;
use crate::storage::Location;

/// A session with the warehouse's tables registered: staging and its `_versions`/`_state`
/// views, `periods` (every period of the ingested days), `units`, `unit_groups`, the view models,
/// the marts, `target_results`, `target_results_district` and `plan_targets`.
pub async fn session(cfg: &Config, units: Option<&Units>) -> Result<SessionContext> {
    let ctx = crate::models::new_context();
    let wh = Location::open(&cfg.warehouse, true)?;
    let (ledger, periods) = crate::run::known_periods(&wh).await?;
    let refs: Vec<&crate::periods::Period> = periods.iter().collect();
    crate::models::register_state(&ctx, cfg, Some(&wh), Some(&ledger), &refs, units).await?;
    crate::models::register_warehouse_models(&ctx, cfg, &wh).await?;
    Ok(ctx)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

/// Run one statement and render its result.
pub async fn query(ctx: &SessionContext, sql: &str, format: OutputFormat) -> Result<String> {
    let df = ctx.sql(sql).await?;
    let schema: arrow::datatypes::SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let mut batches = df.collect().await?;
    if batches.is_empty() {
        // An empty result still has its columns (a CSV header, a table frame).
        batches.push(RecordBatch::new_empty(schema));
    }
    render(&batches, format)
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
                    w.write(b)?;
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
