//! The ledger: which source-days were ingested, from which files (with checksums), by which run
//! and when. One object per source and day, `<warehouse>/ledger/<source>/<YYYY-MM-DD>.json`,
//! written with a single put after the day's staging partition is complete, so an entry never
//! names data that is not there. A re-run of the day overwrites it.
//!
//! The ledger is what says a day is *ingested* (periods, as-of days) and which files a snapshot
//! source delivered (a readable catalog file with no valid entry still replaces the previous one).

use chrono::{NaiveDate, Utc};
use futures::future::try_join_all;
use serde::{Deserialize, Serialize};

use super::location::Location;
use crate::base::dates::serde_day;
use crate::base::error::{Error, Result};

/// One landing file of a source-day, as the ledger and the run record keep it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileReport {
    pub name: String,
    pub sha256: String,
    pub bytes: u64,
    /// Why the whole file was quarantined; `None` when it was readable.
    pub unreadable: Option<String>,
    pub read: u64,
    pub staged: u64,
    pub quarantined: u64,
}

/// The outcome of one source × day: the ledger entry's payload, and a line of the run record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SourceDay {
    pub source: String,
    pub system: String,
    #[serde(
        serialize_with = "serde_day::one",
        deserialize_with = "serde_day::de_one"
    )]
    pub extract_date: NaiveDate,
    /// Whether the day folder exists and holds files of this source.
    pub present: bool,
    pub files: Vec<FileReport>,
    pub read: u64,
    pub staged: u64,
    pub quarantined: u64,
    pub unreadable_files: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LedgerEntry {
    pub run_id: String,
    pub ingested_at: String,
    #[serde(flatten)]
    pub day: SourceDay,
}

impl LedgerEntry {
    /// The day counts as ingested for this source: its folder held at least one file.
    pub fn has_files(&self) -> bool {
        !self.day.files.is_empty()
    }
}

fn entry_path(source: &str, day: NaiveDate) -> String {
    format!("ledger/{source}/{day}.json")
}

/// Record one ingested source-day.
pub async fn record(wh: &Location, run_id: &str, day: &SourceDay) -> Result<()> {
    let (path, json) = entry_file(wh, run_id, day)?;
    wh.put(&path, json).await
}

/// [`record`] from a thread that may block (the ingest's workers, see `Location::put_blocking`).
pub fn record_blocking(
    wh: &Location,
    rt: &tokio::runtime::Handle,
    run_id: &str,
    day: &SourceDay,
) -> Result<()> {
    let (path, json) = entry_file(wh, run_id, day)?;
    wh.put_blocking(rt, &path, json)
}

fn entry_file(
    wh: &Location,
    run_id: &str,
    day: &SourceDay,
) -> Result<(object_store::path::Path, bytes::Bytes)> {
    let entry = LedgerEntry {
        run_id: run_id.to_string(),
        ingested_at: Utc::now().to_rfc3339(),
        day: day.clone(),
    };
    let json = serde_json::to_vec_pretty(&entry).map_err(|e| Error::Internal(e.to_string()))?;
    Ok((
        wh.path(&entry_path(&day.source, day.extract_date)),
        json.into(),
    ))
}

/// Every ledger entry of the warehouse, in (day, source) order.
pub async fn read_all(wh: &Location) -> Result<Vec<LedgerEntry>> {
    let objects = wh.list("ledger").await?;
    let reads = objects
        .iter()
        .filter(|o| o.location.as_ref().ends_with(".json"))
        .map(|o| async move {
            let bytes = wh.get(&o.location).await?;
            serde_json::from_slice::<LedgerEntry>(&bytes).map_err(|e| {
                Error::Internal(format!("ledger entry {} is corrupt: {e}", o.location))
            })
        });
    let mut entries = try_join_all(reads).await?;
    entries.sort_by(|a, b| {
        (a.day.extract_date, &a.day.source).cmp(&(b.day.extract_date, &b.day.source))
    });
    Ok(entries)
}

/// The ingested days: those for which any source's folder held at least one file.
pub fn ingested_days(entries: &[LedgerEntry]) -> std::collections::BTreeSet<NaiveDate> {
    entries
        .iter()
        .filter(|e| e.has_files())
        .map(|e| e.day.extract_date)
        .collect()
}
