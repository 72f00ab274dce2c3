//! The analysts' SQL surface: a DataFusion session in which every staging table is registered by
//! its source name, with its versions view (`<source>_versions`, see `state`), plus `units`. Quarantine holds raw personal data and is never registered.

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::ingest::typing::staging_schema;
use crate::ingest::units::Units;
use crate::storage::Location;

/// A session with the warehouse's tables registered.
pub async fn session(cfg: &Config, units: Option<&Units>) -> Result<SessionContext> {
    let config = SessionConfig::new()
        .with_target_partitions(2)
        .with_information_schema(true);
    let ctx = SessionContext::new_with_config(config);
    let wh = Location::open(&cfg.warehouse, true)?;
    for source in &cfg.sources {
        // Only the newest file of each partition is current (see `ingest::current_files`): a
        // re-run that crashed before removing the older file does not double a day.
        let files =
            crate::ingest::current_files(wh.list(&format!("staging/{}", source.name)).await?);
        let schema = staging_schema(source);
        if files.is_empty() {
            ctx.register_table(
                source.name.as_str(),
                Arc::new(MemTable::try_new(schema, vec![vec![]])?),
            )?;
        } else {
            let urls = files
                .iter()
                .map(|f| ListingTableUrl::parse(format!("{}{}", wh.url, f.location)))
                .collect::<datafusion::error::Result<Vec<_>>>()?;
            let opts = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet");
            let table_cfg = ListingTableConfig::new_with_multi_paths(urls)
                .with_listing_options(opts)
                .with_schema(schema);
            ctx.register_table(
                source.name.as_str(),
                Arc::new(ListingTable::try_new(table_cfg)?),
            )?;
        }
        ctx.sql(&crate::state::versions_view_sql(source)).await?;
    }
    if let Some(units) = units {
        let schema = Arc::new(Schema::new(
            ["unit_code", "unit_name", "tier", "parent_code"]
                .map(|n| Field::new(n, DataType::Utf8, false))
                .to_vec(),
        ));
        let col = |f: fn(&crate::ingest::units::Unit) -> &str| -> Arc<StringArray> {
            Arc::new(StringArray::from_iter_values(units.rows.iter().map(f)))
        };
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                col(|u| &u.unit_code),
                col(|u| &u.unit_name),
                col(|u| &u.tier),
                col(|u| &u.parent_code),
            ],
        )?;
        ctx.register_table(
            "units",
            Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
        )?;
    }
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
