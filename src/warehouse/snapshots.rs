//! Month-end state snapshots: so that a daily run does not recompute every entity's state from
//! all of its history.
//!
//! The snapshot of a source at the end of month M holds, with the staging columns, the versions
//! in the state as of M's last day (what `<source>_state` holds for M once M is over): one row per
//! entity. For any day E ≥ M's last day, the versions computed by the source's one rule
//! ([`super::state::versions_sql`]) over *the snapshot plus every staged version after M* give the
//! same state as of E as over all of staging: for `latest`, an entity's newest version on or
//! before E is either after M or its newest on or before M's end (the snapshot's row), and the
//! version after it (its `valid_to`) is the first after M; for `first_seen`, the first version of
//! an entity is the snapshot's row when it was seen by M's end. `snapshot`-versioned sources (a
//! catalog replaced whole by each file) are small and keep reading all of staging.
//!
//! Storage: `state/<source>/period=<YYYY-MM>/part-<run_id>.parquet`, published by its entry in
//! `state/_snapshots.json` (see `crate::store::publish`). A snapshot is usable while no day on or
//! before its month's end has been ingested since it was written (the rule that makes a period
//! stale). A refresh writes at most one month's snapshots (see [`Plan::new`]), from the newest
//! usable snapshot before it, streamed to the store; the records keep the newest two per source.
//!
//! Which versions each period reads: the newest usable snapshot that ends on or before its
//! as-of day, plus the versions after it; periods that share it form one branch of the state
//! view ([`super::state::Branch`]); periods without one read all of staging, as before.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::RecordBatch;
use chrono::NaiveDate;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use object_store::buffered::BufWriter;
use object_store::ObjectStoreExt;
use parquet::arrow::async_writer::AsyncArrowWriter;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::models::{
    local_context, mem_table, model_error, print_executed, register_listing, register_state,
};
use super::periods::{changed_since, Period};
use super::state::{
    holds_on, indexed_versions_sql, key_list, same_key, versions_sql, Branch, SnapshotInput,
};
use crate::base::error::{Error, Result};
use crate::base::text::ident;
use crate::config::{Config, PeriodKind, Source, Versioning, META_COLUMNS};
use crate::ingest::typing::staging_schema;
use crate::store::commits::{self, SnapshotCommit};
use crate::store::ledger::LedgerEntry;
use crate::store::location::Location;
use crate::store::publish::{part_name, Published};

/// Rows per row group of a snapshot file: the writer holds one row group at a time.
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Whether a source keeps month-end snapshots.
pub fn kept(source: &Source) -> bool {
    matches!(
        source.versioning,
        Versioning::Latest | Versioning::FirstSeen
    )
}

/// The folder of a source's snapshot at the end of `month` (a period id `YYYY-MM`).
pub fn folder(source: &str, month: &str) -> String {
    format!("state/{source}/period={month}")
}

/// A usable snapshot: its month and the file that holds it (relative to the warehouse root).
#[derive(Debug, Clone)]
struct Snapshot {
    month: String,
    file: String,
}

/// The snapshots a refresh can use, per source by the last day of their month, and the month
/// whose snapshots it writes.
pub struct Plan {
    usable: BTreeMap<String, BTreeMap<NaiveDate, Snapshot>>,
    commits: Vec<SnapshotCommit>,
    /// The columns a snapshot of each source keeps ([`columns_read`]), once planned.
    columns: Option<BTreeMap<String, Vec<String>>>,
    /// [`models_digest`] of the configuration.
    digest: String,
    /// The month whose snapshots this refresh writes (see [`Self::new`]).
    pub write: Option<Period>,
}

impl Plan {
    /// The usable snapshots: published (`state/_snapshots.json`), and no day on or before their
    /// month's end ingested since (the rule that makes a period stale). And the month to write:
    /// the newest month that is over with a later day ingested (M), unless M's snapshot is
    /// usable; so the first run of a month writes the month before it, and the month's other
    /// days read it and their own month's versions. A month's last day does not write its own
    /// month: it is the day most often run again (late files), which would make the snapshot
    /// out of date at once. Not when M would come from all of staging in a refresh that
    /// recomputes more than two months (a backfill, a repair): there it would cost as much as
    /// the marts; the next daily run writes it.
    /// Without `state_snapshots`, nothing is usable and nothing is written.
    pub async fn new(
        cfg: &Config,
        wh: &Location,
        (published, commits): (&Published, Vec<SnapshotCommit>),
        ledger: &[LedgerEntry],
        all: &[Period],
        stale: &[&Period],
    ) -> Result<Self> {
        if !cfg.engine.state_snapshots {
            return Ok(Self {
                usable: BTreeMap::new(),
                commits,
                columns: None,
                digest: String::new(),
                write: None,
            });
        }
        let digest = models_digest(cfg);
        let mut columns = None;
        let mut usable: BTreeMap<String, BTreeMap<NaiveDate, Snapshot>> = BTreeMap::new();
        for o in published.current(wh, wh.list("state").await?) {
            let rel = wh.relative(&o.location).to_string();
            let parts: Vec<&str> = rel.split('/').collect();
            let ["state", source, part, _] = parts.as_slice() else {
                continue;
            };
            let Some(month) = part.strip_prefix("period=") else {
                continue;
            };
            let Some(end) = month_end(month) else {
                continue;
            };
            let Some(c) = commits
                .iter()
                .find(|c| c.source == *source && c.month == month)
            else {
                continue;
            };
            if changed_since(ledger, end, &c.run_id) {
                continue;
            }
            // Without a column the models read now (a model changed since it was written).
            if let Some(have) = c
                .columns
                .as_ref()
                .filter(|_| c.models.as_deref() != Some(digest.as_str()))
            {
                let need = columns_of(&mut columns, cfg).await?;
                if !need
                    .get(*source)
                    .is_none_or(|need| need.iter().all(|n| have.contains(n)))
                {
                    continue;
                }
            }
            usable.entry(source.to_string()).or_default().insert(
                end,
                Snapshot {
                    month: month.to_string(),
                    file: rel.clone(),
                },
            );
        }
        let mut plan = Self {
            usable,
            commits,
            columns,
            digest,
            write: None,
        };
        // M: the newest month that is over with a later day ingested. Its last day (the one
        // most often run again, for late files) is behind, and the next month's daily runs
        // read M's snapshot and their own month's versions.
        let newest = all.iter().map(|p| p.as_of).max();
        let m = all
            .iter()
            .filter(|p| p.kind == PeriodKind::Month && p.is_final && Some(p.end) < newest)
            .max_by_key(|p| p.end);
        if let Some(m) = m {
            let usable = cfg
                .sources
                .iter()
                .filter(|s| kept(s))
                .all(|s| plan.has(&s.name, m.end));
            let from_all = plan
                .usable
                .values()
                .all(|u| u.range(..=m.end).next().is_none());
            let recomputed = stale
                .iter()
                .filter(|p| p.kind == PeriodKind::Month && p.is_final)
                .count();
            if !(usable || from_all && recomputed > 2) {
                plan.write = Some(m.clone());
            }
        }
        Ok(plan)
    }

    /// Whether `source` has a usable snapshot that ends on `end`.
    fn has(&self, source: &str, end: NaiveDate) -> bool {
        self.usable
            .get(source)
            .is_some_and(|u| u.contains_key(&end))
    }

    /// The newest usable snapshot of `source` that ends on or before `day`.
    fn base(&self, source: &str, day: NaiveDate) -> Option<&Snapshot> {
        self.usable
            .get(source)?
            .range(..=day)
            .next_back()
            .map(|(_, s)| s)
    }

    /// Write the snapshots of [`Self::write`] for every source that keeps them and has no usable
    /// one of that month (a snapshot without a column a changed model reads), publish them
    /// (their content depends only on staging, which is published already), and make them
    /// usable for the rest of the refresh.
    /// With `indexes` (a local session), a `latest` source's snapshot without a snapshot before
    /// it is one filtered scan of staging by its version index ([`indexed_write_sql`]) instead
    /// of the rule's window over every version's identity.
    pub async fn write(
        &mut self,
        ctx: &SessionContext,
        cfg: &Config,
        (wh, published): (&Location, &Published),
        run_id: &str,
        mut indexes: Option<&mut super::version_index::Indexes>,
    ) -> Result<()> {
        let Some(month) = self.write.clone() else {
            return Ok(());
        };
        let kept_columns = columns_of(&mut self.columns, cfg).await?.clone();
        // Planned one after another (planning flips a setting of the shared session), then
        // computed and written at once: each is a scan, a join and a file, and the dossiers'
        // alone would otherwise leave a core idle.
        let mut planned = Vec::new();
        for source in cfg.sources.iter().filter(|s| kept(s)) {
            if self.has(&source.name, month.end) {
                continue;
            }
            let t0 = std::time::Instant::now();
            let columns = kept_columns.get(&source.name).cloned().unwrap_or_default();
            let base = self.base(&source.name, month.end).cloned();
            let input = register_input(ctx, wh, published, source, base.as_ref()).await?;
            let function = match (&input, indexes.as_deref_mut()) {
                (None, Some(ix)) => ix.function(ctx, (wh, published), source).await?,
                _ => None,
            };
            let sql = match &function {
                Some(f) => indexed_write_sql(source, month.end, f, &columns),
                None => write_sql(source, month.end, input.as_ref(), &columns),
            };
            // The identities (or a month's keys) are the hash join's build side, whole, and the
            // whole rows stream past them: not reordered, nor repartitioned by key (moving every
            // row of the snapshot between threads cost more than the join).
            set_joins(ctx, false).await?;
            let plan = ctx.sql(&sql).await?.create_physical_plan().await;
            set_joins(ctx, true).await?;
            let write = SnapshotWrite {
                source: source.clone(),
                base,
                plan: plan?,
                file: format!("{}/{}", folder(&source.name, &month.id), part_name(run_id)),
                columns,
                explain: cfg.engine.explain_analyze,
                month: month.id.clone(),
                t0,
            };
            let (ctx, wh) = (ctx.clone(), wh.clone());
            planned.push(tokio::spawn(async move { write.run(&ctx, &wh).await }));
        }
        let mut written = Vec::new();
        let mut first_error = None;
        for task in planned {
            let outcome = task
                .await
                .map_err(|e| Error::Internal(format!("a snapshot's task failed: {e}")))
                .and_then(|r| r);
            match outcome {
                Ok((source, file)) => {
                    let columns = kept_columns.get(&source).cloned().unwrap_or_default();
                    self.usable.entry(source.clone()).or_default().insert(
                        month.end,
                        Snapshot {
                            month: month.id.clone(),
                            file,
                        },
                    );
                    written.push(SnapshotCommit {
                        source,
                        month: month.id.clone(),
                        run_id: run_id.to_string(),
                        columns: Some(columns),
                        models: Some(self.digest.clone()),
                    });
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        // Keep the records of the newest two usable snapshots of each source: this month's
        // and the one before it (the others' files go at the next vacuum).
        let mut keep = Vec::new();
        for (source, m) in &self.usable {
            for s in m.values().rev().take(2) {
                let of = |c: &&SnapshotCommit| c.source == *source && c.month == s.month;
                match written.iter().find(of) {
                    Some(new) => keep.push(new.clone()),
                    None => keep.extend(self.commits.iter().filter(of).cloned()),
                }
            }
        }
        commits::write_snapshots(wh, keep).await?;
        crate::base::failpoint::hit("snapshots.written");
        Ok(())
    }

    /// The branches of each source's state view for `periods`: the periods that share the
    /// newest usable snapshot on or before their as-of day read it and the versions after it;
    /// the others read all of staging. Registers the inputs the branches name.
    pub async fn branches(
        &self,
        ctx: &SessionContext,
        cfg: &Config,
        wh: &Location,
        published: &Published,
        periods: &[&Period],
    ) -> Result<BTreeMap<String, Vec<Branch>>> {
        let mut out = BTreeMap::new();
        for source in cfg.sources.iter().filter(|s| kept(s)) {
            let mut groups: BTreeMap<Option<NaiveDate>, Vec<String>> = BTreeMap::new();
            for p in periods {
                let base = self
                    .usable
                    .get(&source.name)
                    .and_then(|m| m.range(..=p.as_of).next_back())
                    .map(|(end, _)| *end);
                groups.entry(base).or_default().push(p.id.clone());
            }
            if groups.keys().all(Option::is_none) {
                continue;
            }
            let mut branches = Vec::new();
            for (end, ids) in groups {
                let base = end.and_then(|e| self.base(&source.name, e)).cloned();
                let input = register_input(ctx, wh, published, source, base.as_ref()).await?;
                branches.push(Branch {
                    periods: Some(ids),
                    input,
                });
            }
            out.insert(source.name.clone(), branches);
        }
        Ok(out)
    }
}

/// A snapshot planned by [`Plan::write`], to compute and write.
struct SnapshotWrite {
    source: Source,
    base: Option<Snapshot>,
    plan: std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    /// Relative to the warehouse root.
    file: String,
    /// The staging columns it keeps, in staging order.
    columns: Vec<String>,
    explain: bool,
    month: String,
    t0: std::time::Instant,
}

impl SnapshotWrite {
    /// Stream the plan's rows to the file; returns the source and the file.
    async fn run(self, ctx: &SessionContext, wh: &Location) -> Result<(String, String)> {
        let staging = staging_schema(&self.source);
        let kept: Vec<usize> = self
            .columns
            .iter()
            .map(|c| staging.index_of(c))
            .collect::<std::result::Result<_, _>>()?;
        let schema = Arc::new(staging.project(&kept)?);
        let props = writer_props(&self.source);
        let mut stream =
            datafusion::physical_plan::execute_stream(self.plan.clone(), ctx.task_ctx())?;
        let mut rows = 0;
        let path = wh.path(&self.file);
        // A local warehouse: the row groups go straight to the file (the store's writer copies
        // each into a buffer of its own and then into its upload's parts: ≈ 20% of a month's
        // first daily run was copying memory). Elsewhere the store's writer.
        enum Out {
            Local(ArrowWriter<crate::store::location::LocalFile>),
            Store(AsyncArrowWriter<BufWriter>),
        }
        let mut out = match wh.local_file(&path) {
            Some(file) => Out::Local(ArrowWriter::try_new(file?, schema.clone(), Some(props))?),
            None => Out::Store(AsyncArrowWriter::try_new(
                BufWriter::new(wh.store.clone(), path),
                schema.clone(),
                Some(props),
            )?),
        };
        while let Some(batch) = stream.next().await {
            let batch = RecordBatch::try_new(schema.clone(), batch?.columns().to_vec())?;
            rows += batch.num_rows();
            match &mut out {
                Out::Local(w) => w.write(&batch)?,
                Out::Store(w) => w.write(&batch).await?,
            }
        }
        match out {
            Out::Local(w) => w.into_inner()?.commit()?,
            Out::Store(w) => {
                w.close().await?;
            }
        }
        if self.explain {
            let what = format!("state snapshot of `{}` ({})", self.source.name, self.month);
            print_executed(&what, rows, self.t0, &self.plan);
        }
        tracing::info!(
            source = %self.source.name,
            month = %self.month,
            base = self.base.as_ref().map_or("-", |b| b.month.as_str()),
            rows,
            columns = self.columns.len(),
            ms = self.t0.elapsed().as_millis() as u64,
            "state snapshot written"
        );
        Ok((self.source.name, self.file))
    }
}

/// Writer settings of a snapshot file: row groups of [`ROW_GROUP_ROWS`], no dictionaries or
/// statistics (it is read whole), Snappy but for the pseudonym columns, plain as in staging.
fn writer_props(source: &Source) -> WriterProperties {
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::None);
    crate::ingest::typing::plain_pseudonyms(props, source).build()
}

/// The query of a snapshot at `end` over `input` (`None`: all of staging), of `columns` (the
/// staging columns it keeps, key and metadata among them): the source's rule
/// over the versions' identities alone (key and version order), whose state as of `end` picks
/// the whole rows of `input`. Sorting only the identities costs a fraction of sorting whole rows.
/// Versions after `end` cannot change the state as of `end` (they only give the newest version
/// a `valid_to` after it), so they are not read.
fn write_sql(
    source: &Source,
    end: NaiveDate,
    input: Option<&SnapshotInput>,
    columns: &[String],
) -> String {
    let identity: Vec<String> = source
        .key
        .iter()
        .map(String::as_str)
        .chain(META_COLUMNS)
        .map(ident)
        .collect();
    let until = |t: &str| format!("(SELECT * FROM {t} WHERE extract_date <= DATE '{end}')");
    let narrow = |t: &str| format!("(SELECT {} FROM {t})", identity.join(", "));
    let cols = column_list(columns, "i.");
    // The whole rows of `t` whose identities are in the state as of `end` by `versions`.
    let picked = |versions: &str, t: &str| {
        let on = identity
            .iter()
            .map(|c| format!("i.{c} = s.{c}"))
            .collect::<Vec<_>>()
            .join(" AND ");
        format!(
            "SELECT {cols} FROM (SELECT {} FROM ({versions}) v WHERE {}) s JOIN {t} i ON {on}",
            identity.join(", "),
            holds_on("v", &format!("DATE '{end}'"))
        )
    };
    match input {
        None => {
            let t = until(&ident(&source.name));
            picked(&versions_sql(source, &narrow(&t), false), &t)
        }
        // `latest`: a snapshot row stays the state unless its entity has a version after the
        // month (null keys never equal, as in the rule's window), so the snapshot's rows pass
        // an anti-join on the key instead of a join on their whole identity; the versions after
        // the month go through the rule alone (they all follow every snapshot row).
        Some(i) if source.versioning == Versioning::Latest => {
            let (snap, after) = (ident(&i.snapshot), until(&ident(&i.after)));
            // The keys after the month are the build side, the snapshot's rows stream past.
            format!(
                "SELECT {cols} FROM (SELECT DISTINCT {} FROM {after}) a RIGHT ANTI JOIN {snap} i \
                 ON {} UNION ALL {}",
                key_list(source),
                same_key(source, "a", "i"),
                picked(&versions_sql(source, &narrow(&after), false), &after)
            )
        }
        Some(i) => {
            let (snap, after) = (ident(&i.snapshot), until(&ident(&i.after)));
            let versions = versions_sql(
                source,
                &format!(
                    "(SELECT * FROM {} UNION ALL SELECT * FROM {})",
                    narrow(&snap),
                    narrow(&after)
                ),
                false,
            );
            picked(
                &versions,
                &format!("(SELECT * FROM {snap} UNION ALL SELECT * FROM {after})"),
            )
        }
    }
}

/// The query of a `latest` source's snapshot at `end` of `columns` from all of staging, with `valid_to`
/// from its version index's function `f`: the staged rows in the state as of `end`, one
/// filtered scan (the index already knows each version's successor, also after `end`, which
/// does not change the state as of `end`).
fn indexed_write_sql(source: &Source, end: NaiveDate, f: &str, columns: &[String]) -> String {
    let until = format!(
        "(SELECT * FROM {} WHERE extract_date <= DATE '{end}')",
        ident(&source.name)
    );
    format!(
        "SELECT {} FROM ({}) x WHERE {}",
        column_list(columns, "x."),
        indexed_versions_sql(&until, f),
        holds_on("x", &format!("DATE '{end}'"))
    )
}

/// Let the optimizer reorder and repartition joins (a session's default), or not.
async fn set_joins(ctx: &SessionContext, on: bool) -> Result<()> {
    for option in ["join_reordering", "repartition_joins"] {
        ctx.sql(&format!("SET datafusion.optimizer.{option} = {on}"))
            .await?;
    }
    Ok(())
}

/// `columns`, each quoted after `prefix`, comma-separated.
fn column_list(columns: &[String], prefix: &str) -> String {
    columns
        .iter()
        .map(|c| format!("{prefix}{}", ident(c)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The staging columns a snapshot of each source keeps: the ones the models read through the
/// source's views, found as `cchc validate` plans them (each model in declaration order on
/// empty tables, optimised: the columns of every scan of the source's staging table), with the
/// key, the metadata columns (the rule's version order) and the columns that reference units
/// (the state view joins them when units change); in staging order. A model that reads every
/// column (`SELECT *` of a state view) keeps them all. Most of a dossier's bytes are columns no
/// mart reads (the four pseudonyms are two thirds of a snapshot file), and copying them in and
/// out was most of a month's first daily run.
pub async fn columns_read(cfg: &Config) -> Result<BTreeMap<String, Vec<String>>> {
    let ctx = local_context(&cfg.engine)?;
    register_state(&ctx, cfg, None, None, &[], None).await?;
    // Only the rule that narrows each scan to the columns read: the others cost most of the
    // planning and cannot make a scan read a column it does not need.
    let narrow = datafusion::execution::SessionStateBuilder::new_from_existing(ctx.state())
        .with_optimizer_rules(vec![Arc::new(
            datafusion::optimizer::optimize_projections::OptimizeProjections::new(),
        )])
        .build();
    let mut read: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for m in &cfg.models {
        let df = ctx.sql(&m.sql).await.map_err(|e| model_error(m, e))?;
        let plan = narrow
            .optimize(df.logical_plan())
            .map_err(|e| model_error(m, e))?;
        plan.apply_with_subqueries(|node| {
            let LogicalPlan::TableScan(scan) = node else {
                return Ok(TreeNodeRecursion::Continue);
            };
            let Some(source) = cfg
                .sources
                .iter()
                .find(|s| scan.table_name.table() == s.name)
            else {
                return Ok(TreeNodeRecursion::Continue);
            };
            let cols = read.entry(source.name.as_str()).or_default();
            match scan.projection {
                None => cols.extend(source.columns.iter().map(|c| c.name.clone())),
                Some(_) => cols.extend(
                    scan.projected_schema
                        .fields()
                        .iter()
                        .map(|f| f.name().clone()),
                ),
            }
            for f in &scan.filters {
                cols.extend(f.column_refs().into_iter().map(|c| c.name.clone()));
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        let schema = Arc::new(df.schema().as_arrow().clone());
        super::validate::register_planned(&ctx, m, schema).await?;
    }
    let kept_columns = |s: &Source| -> Vec<String> {
        let read = read.get(s.name.as_str());
        s.columns
            .iter()
            .filter(|c| {
                s.key.contains(&c.name)
                    || c.references_units
                    || read.is_some_and(|r| r.contains(&c.name))
            })
            .map(|c| c.name.clone())
            .chain(META_COLUMNS.iter().map(|c| c.to_string()))
            .collect()
    };
    Ok(cfg
        .sources
        .iter()
        .filter(|s| kept(s))
        .map(|s| (s.name.clone(), kept_columns(s)))
        .collect())
}

/// [`columns_read`], planned the first time it is asked for.
async fn columns_of<'a>(
    planned: &'a mut Option<BTreeMap<String, Vec<String>>>,
    cfg: &Config,
) -> Result<&'a BTreeMap<String, Vec<String>>> {
    if planned.is_none() {
        let t0 = std::time::Instant::now();
        *planned = Some(columns_read(cfg).await?);
        tracing::debug!(
            ms = t0.elapsed().as_millis() as u64,
            "the columns the models read planned"
        );
    }
    Ok(planned.get_or_insert_default())
}

/// A digest of everything [`columns_read`] depends on: the sources' keys, versioning, columns and
/// derived columns, the models, and the version of cchc (its optimiser decides what a plan
/// reads). A snapshot records the one it was written under; while the configuration's is the
/// same, the snapshot's columns are what the models read, and a daily run needs not plan them.
/// Anything else that changes it (a line moved) only costs planning them once per run.
pub fn models_digest(cfg: &Config) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut put = |s: &str| {
        h.update(s.len().to_le_bytes());
        h.update(s.as_bytes());
    };
    put(env!("CARGO_PKG_VERSION"));
    for s in &cfg.sources {
        put(&s.name);
        put(&format!("{:?} {:?}", s.versioning, s.key));
        for c in &s.columns {
            put(&format!(
                "{} {:?} {} {}",
                c.name, c.kind, c.required, c.references_units
            ));
        }
        for d in &s.derived {
            put(&d.name);
            put(&d.sql);
        }
    }
    for m in &cfg.models {
        put(&m.name);
        put(&format!("{:?}", m.materialized));
        put(&m.sql);
    }
    hex::encode(h.finalize())
}

/// The last day of month `YYYY-MM`.
fn month_end(month: &str) -> Option<NaiveDate> {
    let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").ok()?;
    first.checked_add_months(chrono::Months::new(1))?.pred_opt()
}

/// Register the input of a branch from `base`: the snapshot's rows and the source's staged
/// versions after its month, as two tables. `None` (no snapshot): all of staging.
async fn register_input(
    ctx: &SessionContext,
    wh: &Location,
    published: &Published,
    source: &Source,
    base: Option<&Snapshot>,
) -> Result<Option<SnapshotInput>> {
    let Some(base) = base else {
        return Ok(None);
    };
    let end = month_end(&base.month)
        .ok_or_else(|| Error::Internal(format!("bad snapshot month {}", base.month)))?;
    let input = SnapshotInput {
        snapshot: format!("_snapshot_{}_{}", source.name, base.month),
        after: format!("_after_{}_{}", source.name, base.month),
    };
    if ctx.table_exist(input.snapshot.as_str())? {
        return Ok(Some(input));
    }
    let schema = staging_schema(source);
    let file = wh.path(&base.file);
    let meta = wh
        .store
        .head(&file)
        .await
        .map_err(|e| Error::io(format!("cannot read {}/{}", wh.display, base.file), e))?;
    let staged: Vec<_> = published
        .current(wh, wh.list(&format!("staging/{}", source.name)).await?)
        .into_iter()
        .filter(|o| {
            wh.relative(&o.location)
                .split('/')
                .find_map(|p| p.strip_prefix("extract_date="))
                .and_then(|d| d.parse::<NaiveDate>().ok())
                .is_some_and(|d| d > end)
        })
        .collect();
    if staged.is_empty() {
        ctx.register_table(input.after.as_str(), mem_table(schema.clone(), vec![])?)?;
    } else {
        register_listing(ctx, wh, &input.after, staged, schema.clone())?;
    }
    // The snapshot last: its name says the input is registered.
    register_listing(ctx, wh, &input.snapshot, vec![meta], schema)?;
    Ok(Some(input))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_ends() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(month_end("2024-02"), Some(d("2024-02-29")));
        assert_eq!(month_end("2022-12"), Some(d("2022-12-31")));
        assert_eq!(month_end("2022-13"), None);
    }
}
