//! How a write becomes visible: write under a unique name, then publish by a commit record.
//!
//! Every partition folder of the warehouse (`staging|quarantine/<source>/extract_date=<day>/`,
//! `marts/<table>/period=<P>/`, `marts/plan_targets/`) holds files named `part-<run_id>.parquet`,
//! each written whole with one put. A file is *published* only when a commit record names its run:
//!
//! - a staging or quarantine partition: the ledger entry of its source and day
//!   (`ledger/<source>/<day>.json`, one put, written after both partitions are complete);
//! - a mart or result partition of period P: P's entry in `marts/_periods.json` (one put, written
//!   after every mart and result of the refreshed periods is complete);
//! - a month-end state snapshot (`state/<source>/period=<YYYY-MM>/`): its entry in
//!   `state/_snapshots.json` (one put, after the snapshot is complete);
//! - `plan_targets`: the newest run in `marts/_periods.json`;
//! - a ranking partition of year Y (`marts/par_scores|par_ranking/year=<Y>/`): Y's entry in
//!   `marts/_ranking.json`.
//!
//! Readers read only published files, so a run killed at any moment leaves every table in its
//! previous complete version: what it wrote before its commit records is not read. Files that are
//! not published (a dead run's, or a version superseded during the run) are removed by [`vacuum`]
//! when a run starts and when it ends, under the warehouse lock (at the start only when the
//! previous writer did not record its own closing vacuum: `crate::store::lock::VACUUMED`).
//! Removing superseded files only at the end of a run, not after each commit, keeps a reader's
//! files in place while a backfill rewrites day after day. No step relies on renaming a folder, so this holds on an S3-compatible
//! store as on a local disk.
//!
//! The write half is here too: [`write_part`] writes a run's file of a partition folder.
//!
//! A reader (`crate::sql::query_warehouse`) lists a table, takes in each partition folder the file
//! its record names, and after its query checks that every such file still exists: DataFusion
//! skips a listed file that has disappeared instead of failing, and a file is never recreated
//! under the same name, so if they all exist after the query, the query read them all. A folder
//! whose named file is missing while another file is there was vacuumed under the reader's feet
//! (it is *torn*); either way the reader lists again and reruns the query.

use std::collections::HashMap;

use arrow::array::RecordBatch;
use bytes::Bytes;
use chrono::NaiveDate;
use object_store::ObjectMeta;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::commits::{PeriodCommit, RankingCommit, SnapshotCommit};
use super::ledger::LedgerEntry;
use super::location::{file_name, Location};
use crate::base::error::Result;

/// The file name a run writes in a partition folder.
pub fn part_name(run_id: &str) -> String {
    format!("part-{run_id}.parquet")
}

/// Parquet bytes of one batch. Snappy: measured 10% less CPU than ZSTD level 1 on a
/// province-quarter, for files about 1.6 times as large.
pub fn parquet_bytes(batch: &RecordBatch) -> Result<Bytes> {
    parquet_bytes_with(batch, default_props().build())
}

/// The writer settings of every file the warehouse writes, before a table's own per column.
pub fn default_props() -> parquet::file::properties::WriterPropertiesBuilder {
    WriterProperties::builder().set_compression(Compression::SNAPPY)
}

/// Parquet bytes of one batch, with the given writer settings.
pub fn parquet_bytes_with(batch: &RecordBatch, props: WriterProperties) -> Result<Bytes> {
    parquet_bytes_of(batch.schema(), std::slice::from_ref(batch), props)
}

/// Parquet bytes of batches of one schema, in order, as one file (a day's files, each typed on
/// its own, written without first concatenating them).
pub fn parquet_bytes_of(
    schema: arrow::datatypes::SchemaRef,
    batches: &[RecordBatch],
    props: WriterProperties,
) -> Result<Bytes> {
    let mut w = ArrowWriter::try_new(Vec::with_capacity(1 << 20), schema, Some(props))?;
    for batch in batches {
        w.write(batch)?;
    }
    Ok(Bytes::from(w.into_inner()?))
}

/// Partition folder of a table for one day.
pub fn partition(area: &str, table: &str, day: NaiveDate) -> String {
    format!("{area}/{table}/extract_date={day}")
}

/// Write `batch` as this run's file of a partition folder (`part-<run_id>.parquet`, one put).
/// Readers do not see it until a commit record publishes it. A batch with no rows writes nothing
/// unless `keep_empty`: staging and quarantine days know their row counts from the ledger, so a
/// published day without rows needs no file; marts always write one.
pub async fn write_part(
    wh: &Location,
    folder: &str,
    run_id: &str,
    batch: &RecordBatch,
    keep_empty: bool,
) -> Result<()> {
    if batch.num_rows() == 0 && !keep_empty {
        return Ok(());
    }
    wh.put(&part_path(wh, folder, run_id), parquet_bytes(batch)?)
        .await
}

pub fn part_path(wh: &Location, folder: &str, run_id: &str) -> object_store::path::Path {
    wh.path(&format!("{folder}/{}", part_name(run_id)))
}

/// [`write_part`] with the given writer settings, from a thread that may block (the ingest's
/// workers, see `Location::put_blocking`).
pub fn write_part_blocking(
    wh: &Location,
    rt: &tokio::runtime::Handle,
    folder: &str,
    run_id: &str,
    batch: &RecordBatch,
    props: WriterProperties,
) -> Result<()> {
    write_parts_blocking(wh, rt, folder, run_id, std::slice::from_ref(batch), props)
}

/// [`write_part_blocking`] of batches of one schema, as one file.
pub fn write_parts_blocking(
    wh: &Location,
    rt: &tokio::runtime::Handle,
    folder: &str,
    run_id: &str,
    batches: &[RecordBatch],
    props: WriterProperties,
) -> Result<()> {
    let Some(first) = batches.first() else {
        return Ok(());
    };
    if batches.iter().all(|b| b.num_rows() == 0) {
        return Ok(());
    }
    let path = part_path(wh, folder, run_id);
    wh.put_blocking(rt, &path, parquet_bytes_of(first.schema(), batches, props)?)
}

/// The commit records of a warehouse: which run's file of each partition folder is published.
#[derive(Debug, Default)]
pub struct Published {
    /// (source, day) → (run, staged rows): no staging file is written for 0 rows.
    days: HashMap<(String, NaiveDate), (String, u64)>,
    periods: HashMap<String, String>,
    newest_refresh: Option<String>,
    years: HashMap<String, String>,
    /// (source, month) → run: the month-end state snapshots.
    snapshots: HashMap<(String, String), String>,
    /// Every file [`Self::current`] handed out: what a session reads (see [`Self::intact`]).
    handed_out: std::sync::Mutex<Vec<object_store::path::Path>>,
    /// A folder's named file was missing while another file was there.
    torn: std::sync::atomic::AtomicBool,
}

impl Published {
    pub fn new(ledger: &[LedgerEntry], computed: &[PeriodCommit]) -> Self {
        Self {
            days: ledger
                .iter()
                .map(|e| {
                    (
                        (e.day.source.clone(), e.day.extract_date),
                        (e.run_id.clone(), e.day.staged),
                    )
                })
                .collect(),
            periods: computed
                .iter()
                .map(|c| (c.period.clone(), c.run_id.clone()))
                .collect(),
            newest_refresh: computed.iter().map(|c| c.run_id.clone()).max(),
            years: HashMap::new(),
            snapshots: HashMap::new(),
            handed_out: Default::default(),
            torn: Default::default(),
        }
    }

    /// With the ranking commits of `marts/_ranking.json`.
    pub fn with_rankings(mut self, commits: &[RankingCommit]) -> Self {
        self.years = commits
            .iter()
            .map(|c| (c.year.to_string(), c.run_id.clone()))
            .collect();
        self
    }

    /// With the snapshot commits of `state/_snapshots.json`.
    pub fn with_snapshots(mut self, commits: &[SnapshotCommit]) -> Self {
        self.snapshots = commits
            .iter()
            .map(|c| ((c.source.clone(), c.month.clone()), c.run_id.clone()))
            .collect();
        self
    }

    /// Read the commit records of a warehouse.
    pub async fn load(wh: &Location) -> Result<Self> {
        let ledger = super::ledger::read_all(wh).await?;
        Self::with_ledger(wh, &ledger).await
    }

    /// Read the commit records of a warehouse whose ledger was read already.
    pub async fn with_ledger(wh: &Location, ledger: &[LedgerEntry]) -> Result<Self> {
        let computed = super::commits::read_periods(wh).await?;
        let rankings = super::commits::read_rankings(wh).await?;
        let snapshots = super::commits::read_snapshots(wh).await?;
        Ok(Self::new(ledger, &computed)
            .with_rankings(&rankings)
            .with_snapshots(&snapshots))
    }

    /// The run whose file is published in `folder` (relative to the warehouse root).
    pub fn run_of(&self, folder: &str) -> Option<&str> {
        let parts: Vec<&str> = folder.split('/').collect();
        match parts.as_slice() {
            ["staging" | "quarantine", source, part] => {
                let day: NaiveDate = part.strip_prefix("extract_date=")?.parse().ok()?;
                self.days
                    .get(&(source.to_string(), day))
                    .map(|(run, _)| run.as_str())
            }
            ["marts", "plan_targets"] => self.newest_refresh.as_deref(),
            ["marts", "par_scores" | "par_ranking", part] => self
                .years
                .get(part.strip_prefix("year=")?)
                .map(String::as_str),
            ["state", source, part] => self
                .snapshots
                .get(&(
                    source.to_string(),
                    part.strip_prefix("period=")?.to_string(),
                ))
                .map(String::as_str),
            ["marts", _, part] => self
                .periods
                .get(part.strip_prefix("period=")?)
                .map(String::as_str),
            _ => None,
        }
    }

    /// The published files among `objects` (listed from `wh`): in each partition folder that a
    /// record names, the file of the named run. A named file that is missing while its folder
    /// holds another file marks this listing torn (see [`Self::intact`]).
    pub fn current(&self, wh: &Location, objects: Vec<ObjectMeta>) -> Vec<ObjectMeta> {
        let mut by_folder: std::collections::BTreeMap<String, Vec<ObjectMeta>> = Default::default();
        for o in objects.into_iter().filter(is_part) {
            let rel = wh.relative(&o.location);
            if let Some((folder, _)) = rel.rsplit_once('/') {
                by_folder.entry(folder.to_string()).or_default().push(o);
            }
        }
        let mut files = Vec::new();
        for (folder, objs) in by_folder {
            let Some(run) = self.run_of(&folder) else {
                continue;
            };
            let want = part_name(run);
            match objs.into_iter().find(|o| file_name(&o.location) == want) {
                Some(o) => files.push(o),
                None if self.expects_file(&folder) => {
                    self.torn.store(true, std::sync::atomic::Ordering::SeqCst)
                }
                None => {}
            }
        }
        if let Ok(mut h) = self.handed_out.lock() {
            h.extend(files.iter().map(|o| o.location.clone()));
        }
        files
    }

    /// Whether the published run of `folder` wrote a file there: a staging day with rows, every
    /// mart, result and ranking partition (written even when empty).
    fn expects_file(&self, folder: &str) -> bool {
        let parts: Vec<&str> = folder.split('/').collect();
        match parts.as_slice() {
            ["staging", source, part] => part
                .strip_prefix("extract_date=")
                .and_then(|d| d.parse::<NaiveDate>().ok())
                .and_then(|d| self.days.get(&(source.to_string(), d)))
                .is_some_and(|(_, staged)| *staged > 0),
            ["quarantine", ..] => false,
            _ => true,
        }
    }

    /// Whether every file handed out still exists. DataFusion skips a listed file that has
    /// disappeared instead of failing, so a reader checks this after its query: files are never
    /// recreated under the same name, so if they all exist now, the query read them all.
    pub async fn intact(&self, wh: &Location) -> Result<bool> {
        use futures::StreamExt;
        if self.torn.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(false);
        }
        use object_store::ObjectStoreExt;
        let files = self
            .handed_out
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default();
        let mut heads = futures::stream::iter(files)
            .map(|p| async move { wh.store.head(&p).await })
            .buffer_unordered(16);
        while let Some(r) = heads.next().await {
            match r {
                Ok(_) => {}
                Err(object_store::Error::NotFound { .. }) => return Ok(false),
                Err(e) => {
                    return Err(crate::base::error::Error::io(
                        format!("cannot read {}", wh.display),
                        e,
                    ))
                }
            }
        }
        Ok(true)
    }

    fn is_published(&self, wh: &Location, o: &ObjectMeta) -> bool {
        self.is_published_at(wh.relative(&o.location))
    }

    /// Whether the part at `rel` (relative to the warehouse root) is its folder's published one.
    fn is_published_at(&self, rel: &str) -> bool {
        let Some((folder, name)) = rel.rsplit_once('/') else {
            return false;
        };
        self.run_of(folder)
            .is_some_and(|run| name == part_name(run))
    }
}

fn is_part(o: &ObjectMeta) -> bool {
    is_part_name(file_name(&o.location))
}

/// Whether a file's name is a part's (`part-*.parquet`).
fn is_part_name(name: &str) -> bool {
    name.starts_with("part-") && name.ends_with(".parquet")
}

/// The areas whose `part-*.parquet` files are published by a record, and the other areas a
/// run writes to.
const PART_AREAS: [&str; 4] = ["staging", "quarantine", "marts", "state"];
const OTHER_AREAS: [&str; 3] = ["ledger", "reports", "runs"];

/// Remove every unpublished file of the warehouse (a dead run's, or a superseded version); run
/// under the warehouse lock. Returns how many files were removed.
pub async fn vacuum(wh: &Location) -> Result<usize> {
    let t0 = std::time::Instant::now();
    let published = Published::load(wh).await?;
    let loaded = t0.elapsed().as_millis() as u64;
    let removed = match wh.local_root() {
        // A local warehouse: one walk of each area, the areas in parallel and no `stat` per
        // entry, finds both the unpublished parts and the temporaries of a killed put (which the
        // store's listing does not show).
        Some(root) => {
            use rayon::prelude::*;
            let areas: Vec<(&str, bool)> = PART_AREAS
                .iter()
                .map(|a| (*a, true))
                .chain(OTHER_AREAS.iter().map(|a| (*a, false)))
                .collect();
            areas
                .par_iter()
                .map(|(area, parts)| sweep(&root, area, parts.then_some(&published)))
                .try_reduce(|| 0, |a, b| Ok(a + b))?
        }
        None => {
            let listed =
                futures::future::try_join_all(PART_AREAS.map(|area| wh.list(area))).await?;
            let mut removed = 0;
            for o in listed.into_iter().flatten() {
                if is_part(&o) && !published.is_published(wh, &o) {
                    wh.delete(&o.location).await?;
                    removed += 1;
                }
            }
            removed
        }
    };
    if removed > 0 {
        tracing::info!(files = removed, "removed unpublished files of earlier runs");
    }
    tracing::debug!(
        records_ms = loaded,
        ms = t0.elapsed().as_millis() as u64,
        "vacuum done"
    );
    Ok(removed)
}

/// Remove, in `root`'s folder `rel` and the folders in it, what a local warehouse must not keep:
/// the temporaries of a killed put (a put writes `<name>#<n>` and renames it; under the lock no
/// put is in flight) and, with `published`, every `part-*.parquet` that is not its folder's
/// published part. Entry types come from the folders' listings: no `stat` per file.
fn sweep(root: &std::path::Path, rel: &str, published: Option<&Published>) -> Result<usize> {
    let Ok(rd) = std::fs::read_dir(root.join(rel)) else {
        return Ok(0);
    };
    let mut removed = 0;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let at = format!("{rel}/{name}");
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            removed += sweep(root, &at, published)?;
            continue;
        }
        let staged = name
            .rsplit_once('#')
            .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if staged {
            removed += usize::from(std::fs::remove_file(e.path()).is_ok());
            continue;
        }
        if is_part_name(&name) && published.is_some_and(|p| !p.is_published_at(&at)) {
            match std::fs::remove_file(e.path()) {
                Ok(()) => removed += 1,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    return Err(crate::base::error::Error::io(
                        format!("cannot remove {}", e.path().display()),
                        err,
                    ))
                }
            }
        }
    }
    Ok(removed)
}
