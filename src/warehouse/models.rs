//! Models: the SQL views and marts of the pipeline YAML, over the state tables.
//!
//! A session (see [`Session`]) registers, in this order: the staging tables, each source's
//! `<source>_files`, `<source>_versions` and `<source>_state` views ([`super::state`]), `periods`,
//! `units` and `unit_groups`, then every model in declaration order: a `view` model becomes a view,
//! a `table` model (a mart) is either computed (a run) or read from the warehouse (`cchc sql`).
//!
//! A run computes the marts for the periods it must refresh only (`periods` then holds just
//! those), and writes each period of each mart as one partition,
//! `<warehouse>/marts/<mart>/period=<P>/part-<run_id>.parquet`, published by `marts/_periods.json`
//! (see `crate::store::publish`).

use std::num::NonZeroUsize;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, Date32Array, RecordBatch, StringArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use object_store::ObjectMeta;

use super::periods::Period;
use super::state;
use crate::base::dates::date_to_days;
use crate::base::error::{Error, Result};
use crate::base::failpoint;
use crate::base::text::ident;
use crate::config::sources::files_table;
use crate::config::units::Units;
use crate::config::{Config, EngineConfig, Materialized, Model, Versioning};
use crate::ingest::typing::staging_schema;
use crate::store::ledger::LedgerEntry;
use crate::store::location::Location;
use crate::store::publish::{write_part, Published};

/// The catalog (database) name of every session: what `current_database()` returns and what a
/// PostgreSQL client names when it connects to `cchc serve`.
pub const CATALOG: &str = "cchc";

/// A DataFusion session with the settings every cchc session uses, within `engine`'s memory:
/// sorts, aggregations and joins spill to its temp folder beyond the limit; what cannot spill
/// fails, naming the biggest consumers. Spilling operators share the pool fairly (each must
/// spill beyond its share, so one sort cannot starve a merge: the year at scale 10 failed at
/// 1 GiB with a first-come pool, one sort holding 490 MB). Limits below
/// `config::MIN_MEMORY_LIMIT` are refused: there both pools were seen to stall (no progress, no
/// error) instead of failing. With `engine: ballista://…` the session plans here
/// and runs on the cluster (see [`super::engine`]).
pub fn new_context(engine: &EngineConfig) -> Result<SessionContext> {
    let config = session_config(engine);
    let runtime = runtime_env(engine, engine.memory_limit)?;
    let ctx = match &engine.cluster {
        None => SessionContext::new_with_config_rt(config, runtime),
        Some(addr) => {
            SessionContext::new_with_state(super::engine::client_state(addr, config, runtime)?)
        }
    };
    for f in super::engine::functions() {
        ctx.register_udf(f.as_ref().clone());
    }
    if engine.cluster.is_none() {
        // Local sessions only: a cluster's executors would need the function too.
        ctx.register_udf(super::local_date::LocalDate::udf());
        ctx.add_optimizer_rule(Arc::new(super::local_date::LocalDateRule::default()));
    }
    Ok(ctx)
}

/// A session in this process whatever the config's engine (planning checks, the pipeline's
/// tests, the SQL endpoint).
pub fn local_context(engine: &EngineConfig) -> Result<SessionContext> {
    new_context(&EngineConfig {
        cluster: None,
        ..engine.clone()
    })
}

fn session_config(engine: &EngineConfig) -> SessionConfig {
    let mut config = SessionConfig::new()
        .with_default_catalog_and_schema(CATALOG, "public")
        .with_target_partitions(2)
        .with_information_schema(true);
    fit_to_memory(&mut config, engine.memory_limit);
    config
}

/// Settings that depend on the memory limit, so that a small limit spills rather than fails.
/// Each sort sets aside memory for merging its spill files (10 MiB by default), and what is left
/// of the limit must still hold a batch of every operator that runs at once: with a dozen sorts
/// and windows at once, both are a share of the limit (unchanged from 512 MiB up).
pub fn fit_to_memory(config: &mut SessionConfig, limit: u64) {
    let reserve = (limit / 64).clamp(64 << 10, 10 << 20);
    let options = config.options_mut();
    options.execution.sort_spill_reservation_bytes = reserve as usize;
    let batch = (limit / (64 << 10)).clamp(512, 8192);
    let _ = options.set("datafusion.execution.batch_size", &batch.to_string());
}

/// The engine's memory pool and spill folder, with `limit` bytes of memory.
pub fn runtime_env(engine: &EngineConfig, limit: u64) -> Result<Arc<RuntimeEnv>> {
    let pool = TrackConsumersPool::new(
        FairSpillPool::new(usize::try_from(limit).unwrap_or(usize::MAX)),
        NonZeroUsize::new(3).expect("3 is not zero"),
    );
    let mode = match &engine.temp_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("cannot create temp_dir {}", dir.display()), e))?;
            DiskManagerMode::Directories(vec![dir.clone()])
        }
        None => DiskManagerMode::OsTmpDirectory,
    };
    Ok(RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(pool))
        .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(mode))
        .build_arc()?)
}

/// Spill files written by a plan and everything below it: (count, bytes).
pub fn spilled(plan: &Arc<dyn ExecutionPlan>) -> (usize, usize) {
    let own = plan.metrics().map_or((0, 0), |m| {
        (m.spill_count().unwrap_or(0), m.spilled_bytes().unwrap_or(0))
    });
    plan.children().into_iter().fold(own, |(c, b), child| {
        let (cc, cb) = spilled(child);
        (c + cc, b + cb)
    })
}

/// `--explain-analyze`: print an executed plan with its operators' metrics (stderr).
pub fn print_executed(
    what: &str,
    rows: usize,
    t0: std::time::Instant,
    plan: &Arc<dyn ExecutionPlan>,
) {
    eprintln!(
        "-- {what}: {rows} rows in {} ms\n{}",
        t0.elapsed().as_millis(),
        datafusion::physical_plan::display::DisplayableExecutionPlan::with_metrics(plan.as_ref())
            .set_show_statistics(false)
            .indent(true)
    );
}

/// Whether a query failed for want of memory (beyond what spilling could free).
pub fn out_of_memory(e: &DataFusionError) -> bool {
    matches!(e.find_root(), DataFusionError::ResourcesExhausted(_))
}

pub fn periods_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("period", DataType::Utf8, false),
        Field::new("period_kind", DataType::Utf8, false),
        Field::new("period_start", DataType::Date32, false),
        Field::new("period_end", DataType::Date32, false),
        Field::new("as_of", DataType::Date32, false),
        Field::new("final", DataType::Boolean, false),
    ]))
}

pub fn periods_batch(periods: &[&Period]) -> Result<RecordBatch> {
    let dates = |f: fn(&Period) -> chrono::NaiveDate| -> ArrayRef {
        Arc::new(Date32Array::from_iter_values(
            periods.iter().map(|p| date_to_days(f(p))),
        ))
    };
    Ok(RecordBatch::try_new(
        periods_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(
                periods.iter().map(|p| p.id.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                periods.iter().map(|p| p.kind.name()),
            )),
            dates(|p| p.start),
            dates(|p| p.end),
            dates(|p| p.as_of),
            Arc::new(BooleanArray::from_iter(
                periods.iter().map(|p| Some(p.is_final)),
            )),
        ],
    )?)
}

pub fn units_schema() -> SchemaRef {
    let mut fields: Vec<Field> = ["unit_code", "unit_name", "tier", "parent_code"]
        .map(|n| Field::new(n, DataType::Utf8, false))
        .to_vec();
    fields.push(Field::new("valid_from", DataType::Date32, true));
    fields.push(Field::new("valid_to", DataType::Date32, true));
    Arc::new(Schema::new(fields))
}

pub fn units_batch(units: &Units) -> Result<RecordBatch> {
    let col = |f: fn(&crate::config::units::Unit) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(units.rows.iter().map(f)))
    };
    let day = |f: fn(&crate::config::units::Unit) -> Option<chrono::NaiveDate>| -> ArrayRef {
        Arc::new(Date32Array::from_iter(
            units.rows.iter().map(|u| f(u).map(date_to_days)),
        ))
    };
    Ok(RecordBatch::try_new(
        units_schema(),
        vec![
            col(|u| &u.unit_code),
            col(|u| &u.unit_name),
            col(|u| &u.tier),
            col(|u| &u.parent_code),
            day(|u| u.valid_from),
            day(|u| u.valid_to),
        ],
    )?)
}

/// `units_as_of(period, unit_code, unit_name, tier, parent_code)`: the rows of units.csv valid
/// on each period's as-of day (the units a period reports, with that day's names, tiers and
/// districts).
pub fn units_as_of_schema() -> SchemaRef {
    Arc::new(Schema::new(
        ["period", "unit_code", "unit_name", "tier", "parent_code"]
            .map(|n| Field::new(n, DataType::Utf8, false))
            .to_vec(),
    ))
}

fn units_as_of_batch(units: &Units, periods: &[&Period]) -> Result<RecordBatch> {
    let rows: Vec<(&str, &crate::config::units::Unit)> = periods
        .iter()
        .flat_map(|p| units.valid_on(p.as_of).map(move |u| (p.id.as_str(), u)))
        .collect();
    let col = |f: &dyn Fn(&(&str, &crate::config::units::Unit)) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    Ok(RecordBatch::try_new(
        units_as_of_schema(),
        vec![
            col(&|r| r.0.to_string()),
            col(&|r| r.1.unit_code.clone()),
            col(&|r| r.1.unit_name.clone()),
            col(&|r| r.1.tier.clone()),
            col(&|r| r.1.parent_code.clone()),
        ],
    )?)
}

/// `unit_attribution(period, unit_code, attributed_code)`: for each period and each code of
/// units.csv, the unit its records count for as of the period's as-of day (its final successor,
/// see `Units::successor`). The state views join it, so every model follows one rule.
pub fn unit_attribution_schema() -> SchemaRef {
    Arc::new(Schema::new(
        ["period", "unit_code", "attributed_code"]
            .map(|n| Field::new(n, DataType::Utf8, false))
            .to_vec(),
    ))
}

fn unit_attribution_batch(units: &Units, periods: &[&Period]) -> Result<RecordBatch> {
    let mut codes: Vec<&str> = units.codes.iter().map(String::as_str).collect();
    codes.sort_unstable();
    let (mut period, mut code, mut to) = (Vec::new(), Vec::new(), Vec::new());
    for p in periods {
        for c in &codes {
            period.push(p.id.as_str());
            code.push(*c);
            to.push(units.successor(c, p.as_of));
        }
    }
    Ok(RecordBatch::try_new(
        unit_attribution_schema(),
        vec![
            Arc::new(StringArray::from(period)),
            Arc::new(StringArray::from(code)),
            Arc::new(StringArray::from(to)),
        ],
    )?)
}

/// `unit_groups(period, group_level, group_code, unit_code)`: which units a group counts, as of
/// each period's as-of day. Level `unit`: every unit alone; level `district`: a district with its
/// communes (parent codes of the rows valid that day), the grouping the ranking of districts uses.
pub const UNIT_GROUPS_SQL: &str = "CREATE VIEW unit_groups AS \
    SELECT period, 'unit' AS group_level, unit_code AS group_code, unit_code FROM units_as_of \
    UNION ALL \
    SELECT period, 'district' AS group_level, CASE WHEN tier = 'xa-phuong' THEN parent_code ELSE unit_code END AS group_code, unit_code \
    FROM units_as_of WHERE tier = 'quan-huyen' OR (tier = 'xa-phuong' AND parent_code <> '')";

/// `unit_periods(period, period_start, as_of, final, unit_code)`: each period with every unit it
/// reports (`units_as_of`): the rows a mart per unit and period has even where nothing counts.
pub const UNIT_PERIODS_SQL: &str = "CREATE VIEW unit_periods AS \
    SELECT p.period, p.period_start, p.as_of, p.\"final\", u.unit_code \
    FROM units_as_of u JOIN periods p ON p.period = u.period";

pub fn mem_table(schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<Arc<MemTable>> {
    Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
}

/// Make a location's store readable by DataFusion under its URL (the local file system is known
/// to every session already).
pub fn register_store(ctx: &SessionContext, loc: &Location) {
    if loc.url.scheme() != "file" {
        ctx.runtime_env()
            .register_object_store(&loc.url, loc.store.clone());
    }
}

/// Register a table read from the current files of a warehouse folder (or an empty table of
/// `schema` when there are none).
pub async fn register_files(
    ctx: &SessionContext,
    (wh, published): (&Location, &Published),
    name: &str,
    folder: &str,
    schema: Option<SchemaRef>,
) -> Result<bool> {
    let files = published.current(wh, wh.list(folder).await?);
    register_store(ctx, wh);
    if files.is_empty() {
        if let Some(schema) = schema {
            ctx.register_table(name, mem_table(schema, vec![])?)?;
        }
        return Ok(false);
    }
    let mut table_cfg = listing_config(wh, &files)?;
    table_cfg = match schema {
        Some(s) => table_cfg.with_schema(s),
        None => table_cfg.infer_schema(&ctx.state()).await?,
    };
    ctx.register_table(name, Arc::new(ListingTable::try_new(table_cfg)?))?;
    Ok(true)
}

fn listing_config(wh: &Location, files: &[ObjectMeta]) -> Result<ListingTableConfig> {
    let urls = files
        .iter()
        .map(|f| ListingTableUrl::parse(format!("{}{}", wh.url, f.location)))
        .collect::<datafusion::error::Result<Vec<_>>>()?;
    let opts =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    Ok(ListingTableConfig::new_with_multi_paths(urls).with_listing_options(opts))
}

/// Register a table of the given Parquet files of a warehouse (not empty), with `schema`.
pub fn register_listing(
    ctx: &SessionContext,
    wh: &Location,
    name: &str,
    files: Vec<ObjectMeta>,
    schema: SchemaRef,
) -> Result<()> {
    register_store(ctx, wh);
    let table_cfg = listing_config(wh, &files)?.with_schema(schema);
    ctx.register_table(name, Arc::new(ListingTable::try_new(table_cfg)?))?;
    Ok(())
}

fn files_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("extract_date", DataType::Date32, false),
        Field::new("source_file", DataType::Utf8, false),
    ]))
}

/// Register staging, files, versions, periods, state views, units and unit groups.
///
/// `wh`: the warehouse whose staging is read (`None`: empty staging tables). `ledger`: `Some` in a
/// warehouse session (the readable files of each source-day come from it), `None` in a unit-test
/// session (files are derived from staging rows).
pub async fn register_state(
    ctx: &SessionContext,
    cfg: &Config,
    wh: Option<(&Location, &Published)>,
    ledger: Option<&[LedgerEntry]>,
    periods: &[&Period],
    units: Option<&Units>,
) -> Result<()> {
    for source in &cfg.sources {
        let schema = staging_schema(source);
        match wh {
            Some(wh) => {
                let folder = format!("staging/{}", source.name);
                register_files(ctx, wh, &source.name, &folder, Some(schema)).await?;
            }
            None => {
                ctx.register_table(source.name.as_str(), mem_table(schema, vec![])?)?;
            }
        }
    }
    register_views(ctx, cfg, ledger, periods, units).await
}

/// Everything of [`register_state`] but the staging tables, which must be registered already.
pub async fn register_views(
    ctx: &SessionContext,
    cfg: &Config,
    ledger: Option<&[LedgerEntry]>,
    periods: &[&Period],
    units: Option<&Units>,
) -> Result<()> {
    for source in &cfg.sources {
        match ledger {
            Some(entries) if source.versioning == Versioning::Snapshot => {
                let mut days = Vec::new();
                let mut names = Vec::new();
                for e in entries.iter().filter(|e| e.day.source == source.name) {
                    for f in e.day.files.iter().filter(|f| f.unreadable.is_none()) {
                        days.push(date_to_days(e.day.extract_date));
                        names.push(f.name.clone());
                    }
                }
                let batch = RecordBatch::try_new(
                    files_schema(),
                    vec![
                        Arc::new(Date32Array::from(days)),
                        Arc::new(StringArray::from(names)),
                    ],
                )?;
                ctx.register_table(
                    files_table(source).as_str(),
                    mem_table(files_schema(), vec![batch])?,
                )?;
            }
            _ => {
                ctx.sql(&state::files_view_sql(source)).await?;
            }
        }
        ctx.sql(&state::versions_view_sql(source)).await?;
    }
    ctx.register_table(
        "periods",
        mem_table(periods_schema(), vec![periods_batch(periods)?])?,
    )?;
    let empty = Units::default();
    let units = units.unwrap_or(&empty);
    ctx.register_table(
        "units",
        mem_table(units_schema(), vec![units_batch(units)?])?,
    )?;
    ctx.register_table(
        "units_as_of",
        mem_table(
            units_as_of_schema(),
            vec![units_as_of_batch(units, periods)?],
        )?,
    )?;
    ctx.register_table(
        "unit_attribution",
        mem_table(
            unit_attribution_schema(),
            vec![unit_attribution_batch(units, periods)?],
        )?,
    )?;
    ctx.sql(UNIT_GROUPS_SQL).await?;
    ctx.sql(UNIT_PERIODS_SQL).await?;
    for source in &cfg.sources {
        ctx.sql(&state::state_view_sql(
            source,
            !units.changes.is_empty(),
            &state::Branch::all(),
            periods,
        ))
        .await?;
    }
    Ok(())
}

/// Replace the state views of the sources in `branches` by views over those branches (see
/// [`super::snapshots`]); `attribute` as for [`state::state_view_sql`], `periods` those of the
/// session's `periods` table.
pub async fn replace_state_views(
    ctx: &SessionContext,
    cfg: &Config,
    attribute: bool,
    branches: &std::collections::BTreeMap<String, Vec<state::Branch>>,
    periods: &[&Period],
) -> Result<()> {
    for source in &cfg.sources {
        if let Some(b) = branches.get(&source.name) {
            ctx.deregister_table(crate::config::sources::state_view(source).as_str())?;
            ctx.sql(&state::state_view_sql(source, attribute, b, periods))
                .await?;
        }
    }
    Ok(())
}

/// Create a view model in the session.
pub async fn create_view(ctx: &SessionContext, m: &Model) -> Result<()> {
    ctx.sql(&format!("CREATE VIEW {} AS {}", ident(&m.name), m.sql))
        .await
        .map_err(|e| model_error(m, e))?;
    Ok(())
}

pub(crate) fn model_error(m: &Model, e: datafusion::error::DataFusionError) -> Error {
    Error::Plan(format!(
        "model `{}` ({}:{}): {}",
        m.name,
        m.file,
        m.sql_at.0,
        e.strip_backtrace()
    ))
}

/// A mart that needs more memory than the engine may use, even spilling.
fn memory_error(m: &Model, engine: &EngineConfig, e: DataFusionError) -> Error {
    Error::Plan(format!(
        "model `{}` ({}:{}) needs more memory than memory_limit ({}) allows, even spilling to {}; raise `memory_limit` (or CCHC_MEMORY_LIMIT). The engine said: {}",
        m.name,
        m.file,
        m.sql_at.0,
        crate::base::size::show_size(engine.memory_limit),
        engine
            .temp_dir
            .as_ref()
            .map_or("the system's temp folder".to_string(), |d| d.display().to_string()),
        e.strip_backtrace()
    ))
}

/// A computed mart: its batches for the periods of the session.
pub struct MartBatches {
    pub model: Model,
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

/// Compute every model: views are created in declaration order, marts are computed (up to
/// `threads` at once, each as soon as the marts it reads, directly or through views, are
/// done) and registered as in-memory tables for the models after them. Returns the marts in
/// declaration order. A mart that runs out of memory beside another is computed again alone
/// before it is reported; when several fail, the first in declaration order is reported.
pub async fn compute(
    ctx: &SessionContext,
    cfg: &Config,
    threads: usize,
) -> Result<Vec<MartBatches>> {
    let models = &cfg.models;
    // For each model, the marts it reads (through views too).
    let mut reads: Vec<std::collections::BTreeSet<usize>> = Vec::new();
    let mut running: std::collections::BTreeMap<usize, tokio::task::JoinHandle<MartRun>> =
        Default::default();
    let mut done: std::collections::BTreeMap<usize, MartBatches> = Default::default();
    let alone = threads <= 1;
    tracing::info!(threads, "marts computed {threads} at a time");
    let threads = Arc::new(tokio::sync::Semaphore::new(threads.max(1)));
    for (i, m) in models.iter().enumerate() {
        let mut need = std::collections::BTreeSet::new();
        for name in referenced_tables(ctx, m)? {
            if let Some(j) = models[..i].iter().position(|x| x.name == name) {
                match models[j].materialized {
                    Materialized::Table => {
                        need.insert(j);
                    }
                    Materialized::View => need.extend(reads[j].iter().copied()),
                }
            }
        }
        for j in &need {
            if let Some(h) = running.remove(j) {
                finish(ctx, (cfg, alone), (*j, h), &mut running, &mut done).await?;
            }
        }
        reads.push(need);
        match m.materialized {
            Materialized::View => create_view(ctx, m).await?,
            Materialized::Table => {
                // Started in declaration order: the permit is taken here, as soon as a running
                // mart (any) has finished, and released when this one has.
                let permit = threads
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|e| Error::Internal(format!("the marts' semaphore: {e}")))?;
                let task = run_mart(ctx.clone(), cfg.engine.explain_analyze, m.clone());
                let task = async move {
                    let _permit = permit;
                    task.await
                };
                let span = tracing::Span::current();
                running.insert(i, tokio::spawn(tracing::Instrument::instrument(task, span)));
            }
        }
    }
    while let Some(first) = running.pop_first() {
        finish(ctx, (cfg, alone), first, &mut running, &mut done).await?;
    }
    Ok(done.into_values().collect())
}

/// What computing a mart gave: the mart, or its model and the engine's error.
type MartRun = std::result::Result<MartBatches, (Model, DataFusionError)>;

/// The tables a model's SQL names (for the order of [`compute`]).
fn referenced_tables(ctx: &SessionContext, m: &Model) -> Result<Vec<String>> {
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let statement = state
        .sql_to_statement(&m.sql, &dialect)
        .map_err(|e| model_error(m, e))?;
    let refs = state
        .resolve_table_references(&statement)
        .map_err(|e| model_error(m, e))?;
    Ok(refs.iter().map(|r| r.table().to_string()).collect())
}

/// Plan and compute one mart (a task of [`compute`]).
async fn run_mart(ctx: SessionContext, explain: bool, m: Model) -> MartRun {
    let t0 = std::time::Instant::now();
    let computed = async {
        let df = ctx.sql(&m.sql).await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let plan = df.create_physical_plan().await?;
        let batches = datafusion::physical_plan::collect(plan.clone(), ctx.task_ctx()).await?;
        Ok::<_, DataFusionError>((schema, plan, batches))
    }
    .await;
    let (schema, plan, batches) = match computed {
        Ok(c) => c,
        Err(e) => return Err((m, e)),
    };
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let (spills, spilled_bytes) = spilled(&plan);
    if explain {
        let what = format!("model `{}` ({}:{})", m.name, m.file, m.sql_at.0);
        print_executed(&what, rows, t0, &plan);
    }
    tracing::info!(
        mart = %m.name,
        rows,
        ms = t0.elapsed().as_millis() as u64,
        spills,
        spilled_bytes,
        "mart computed"
    );
    Ok(MartBatches {
        model: m,
        schema,
        batches,
    })
}

/// Wait for the mart `i` of [`compute`] and register it. On an error, every other running mart
/// is awaited first, and the failed ones are taken in declaration order: one out of memory
/// beside others is computed again alone; the first that still fails is reported.
async fn finish(
    ctx: &SessionContext,
    (cfg, alone): (&Config, bool),
    (i, task): (usize, tokio::task::JoinHandle<MartRun>),
    running: &mut std::collections::BTreeMap<usize, tokio::task::JoinHandle<MartRun>>,
    done: &mut std::collections::BTreeMap<usize, MartBatches>,
) -> Result<()> {
    let mut outcomes = vec![(i, joined(task).await?)];
    if outcomes[0].1.is_err() {
        while let Some((j, t)) = running.pop_first() {
            outcomes.push((j, joined(t).await?));
        }
        outcomes.sort_by_key(|(j, _)| *j);
    }
    for (j, outcome) in outcomes {
        let outcome = match outcome {
            Err((m, e)) if out_of_memory(&e) && !alone => {
                tracing::info!(mart = %m.name, "out of memory beside other marts: computed again alone");
                run_mart(ctx.clone(), cfg.engine.explain_analyze, m).await
            }
            other => other,
        };
        match outcome {
            Ok(mart) => register_mart(ctx, j, mart, done)?,
            Err((m, e)) if out_of_memory(&e) => return Err(memory_error(&m, &cfg.engine, e)),
            Err((m, e)) => return Err(model_error(&m, e)),
        }
    }
    Ok(())
}

async fn joined(task: tokio::task::JoinHandle<MartRun>) -> Result<MartRun> {
    task.await
        .map_err(|e| Error::Internal(format!("a mart's task failed: {e}")))
}

fn register_mart(
    ctx: &SessionContext,
    i: usize,
    mart: MartBatches,
    done: &mut std::collections::BTreeMap<usize, MartBatches>,
) -> Result<()> {
    ctx.register_table(
        mart.model.name.as_str(),
        mem_table(mart.schema.clone(), mart.batches.clone())?,
    )?;
    done.insert(i, mart);
    Ok(())
}

/// Split `batches` by the value of their `period` column and write each period's file of
/// `table` (an empty one for a period without rows); `_periods.json` publishes them (see
/// `crate::store::publish`).
pub async fn write_periods(
    wh: &Location,
    run_id: &str,
    table: &str,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    periods: &[&Period],
) -> Result<()> {
    let all = arrow::compute::concat_batches(schema, batches)?;
    let col = all
        .column_by_name("period")
        .ok_or_else(|| Error::Plan(format!("`{table}` has no `period` column")))?;
    let ids = arrow::compute::cast(col, &DataType::Utf8)?;
    let ids = ids
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| Error::Internal("period is not text".into()))?;
    // The periods' files at once, each a task of its own: they are small, the store's writes wait
    // on the file system, and their encoding then shares the runtime's workers instead of
    // running one after another on the caller's thread.
    let parts = periods
        .iter()
        .map(|p| {
            let mask = BooleanArray::from_iter(ids.iter().map(|v| Some(v == Some(p.id.as_str()))));
            Ok((
                format!("marts/{table}/period={}", p.id),
                filter_record_batch(&all, &mask)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let tasks = parts.into_iter().map(|(folder, part)| {
        let (wh, run_id) = (wh.clone(), run_id.to_string());
        tokio::spawn(async move {
            write_part(&wh, &folder, &run_id, &part, true).await?;
            failpoint::hit("marts.written");
            Ok::<_, Error>(())
        })
    });
    // Every task ends before this returns, so that no file is written after an error is reported.
    for r in futures::future::join_all(tasks).await {
        r.map_err(|e| Error::Internal(format!("writing `{table}`: {e}")))??;
    }
    let unknown = ids
        .iter()
        .flatten()
        .find(|v| !periods.iter().any(|p| p.id == *v));
    if let Some(v) = unknown {
        return Err(Error::Plan(format!(
            "`{table}` returned rows of period `{v}`, which is not being computed"
        )));
    }
    Ok(())
}

/// Register the marts as the warehouse holds them (and create the view models), for `cchc sql`.
pub async fn register_warehouse_models(
    ctx: &SessionContext,
    cfg: &Config,
    wh: (&Location, &Published),
) -> Result<()> {
    for m in &cfg.models {
        match m.materialized {
            Materialized::View => create_view(ctx, m).await?,
            Materialized::Table => {
                let found =
                    register_files(ctx, wh, &m.name, &format!("marts/{}", m.name), None).await?;
                if !found {
                    // Not computed yet: an empty table with the mart's own columns.
                    let df = ctx.sql(&m.sql).await.map_err(|e| model_error(m, e))?;
                    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
                    ctx.register_table(m.name.as_str(), mem_table(schema, vec![])?)?;
                }
            }
        }
    }
    for (name, schema) in super::checks::result_tables() {
        register_files(ctx, wh, name, &format!("marts/{name}"), Some(schema)).await?;
    }
    Ok(())
}
