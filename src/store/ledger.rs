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
    /// BLAKE3 of the file's bytes, lower-case hex; empty when the file could not be read, and in
    /// entries written before checksums were BLAKE3 (which carry `sha256` instead).
    #[serde(default)]
    pub blake3: String,
    /// SHA-256 of the file, in entries written before checksums were BLAKE3 (2026-12): such an
    /// entry is compared with the landing by SHA-256, so upgrading re-ingests nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub bytes: u64,
    /// Why the whole file was quarantined; `None` when it was readable.
    pub unreadable: Option<String>,
    pub read: u64,
    pub staged: u64,
    pub quarantined: u64,
}

impl FileReport {
    /// The checksum recorded: the SHA-256 of an entry written before checksums were BLAKE3,
    /// else the BLAKE3 (see `crate::ingest::landing::Checksum`).
    pub fn checksum(&self) -> &str {
        self.sha256.as_deref().unwrap_or(&self.blake3)
    }
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
    let mut entries = match wh.local_root() {
        // One task of the blocking pool reads them all: a task per file (two, with the open) cost
        // more than reading a year's 1,460 small files.
        Some(root) => tokio::task::spawn_blocking(move || read_local(&root))
            .await
            .map_err(|e| Error::Internal(format!("reading the ledger: {e}")))??,
        None => read_store(wh).await?,
    };
    entries.sort_by(|a, b| {
        (a.day.extract_date, &a.day.source).cmp(&(b.day.extract_date, &b.day.source))
    });
    Ok(entries)
}

fn corrupt(name: &str, e: serde_json::Error) -> Error {
    Error::Internal(format!("ledger entry {name} is corrupt: {e}"))
}

/// The entries of a local warehouse: `ledger/<source>/<day>.json` (what `list` would give: the
/// object store's files being written, `….json#<digits>`, do not end in `.json`).
fn read_local(root: &std::path::Path) -> Result<Vec<LedgerEntry>> {
    use rayon::prelude::*;
    let io = |what: &std::path::Path, e| Error::io(format!("cannot read {}", what.display()), e);
    let dir = root.join("ledger");
    let sources = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(&dir, e)),
    };
    // The files first (their types from the folders' listings, no `stat` each), then read and
    // parsed on the pool's threads: a year is 1,460 small files.
    let mut files = Vec::new();
    for source in sources {
        let source = source.map_err(|e| io(&dir, e))?;
        if !source.file_type().map_err(|e| io(&dir, e))?.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(source.path()).map_err(|e| io(&source.path(), e))? {
            let file = file.map_err(|e| io(&source.path(), e))?;
            let name = file.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".json") || !file.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let rel = format!("ledger/{}/{name}", source.file_name().to_string_lossy());
            files.push((file.path(), rel));
        }
    }
    files
        .par_iter()
        .map(|(path, rel)| {
            let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
            serde_json::from_slice(&bytes).map_err(|e| corrupt(rel, e))
        })
        .collect()
}

async fn read_store(wh: &Location) -> Result<Vec<LedgerEntry>> {
    let objects = wh.list("ledger").await?;
    let reads = objects
        .iter()
        .filter(|o| o.location.as_ref().ends_with(".json"))
        .map(|o| async move {
            let bytes = wh.get(&o.location).await?;
            serde_json::from_slice::<LedgerEntry>(&bytes)
                .map_err(|e| corrupt(o.location.as_ref(), e))
        });
    try_join_all(reads).await
}

/// The ingested days: those for which any source's folder held at least one file.
pub fn ingested_days(entries: &[LedgerEntry]) -> std::collections::BTreeSet<NaiveDate> {
    entries
        .iter()
        .filter(|e| e.has_files())
        .map(|e| e.day.extract_date)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

    fn day(source: &str, d: u32) -> SourceDay {
        SourceDay {
            source: source.into(),
            system: "one_stop".into(),
            extract_date: NaiveDate::from_ymd_opt(2022, 1, d).unwrap(),
            present: true,
            files: Vec::new(),
            read: d as u64,
            staged: d as u64,
            quarantined: 0,
            unreadable_files: 0,
        }
    }

    #[test]
    fn a_local_ledger_reads_as_the_object_store_lists_it() {
        let dir = tempfile::tempdir().unwrap();
        let wh = Location::open(dir.path().to_str().unwrap(), false).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        for (s, d) in [("dossiers", 2), ("documents", 1), ("dossiers", 1)] {
            record_blocking(&wh, rt.handle(), "r1", &day(s, d)).unwrap();
        }
        // Neither a file being written nor anything else is an entry.
        std::fs::write(
            dir.path()
                .join("ledger/dossiers/x.json#00000000010000000002"),
            "{",
        )
        .unwrap();
        std::fs::write(dir.path().join("ledger/dossiers/notes.txt"), "{").unwrap();
        let local = rt.block_on(read_all(&wh)).unwrap();
        let mut listed = rt.block_on(read_store(&wh)).unwrap();
        listed.sort_by(|a, b| {
            (a.day.extract_date, &a.day.source).cmp(&(b.day.extract_date, &b.day.source))
        });
        assert_eq!(local, listed);
        let order: Vec<(&str, u32)> = local
            .iter()
            .map(|e| (e.day.source.as_str(), e.day.extract_date.day0() + 1))
            .collect();
        assert_eq!(order, [("documents", 1), ("dossiers", 1), ("dossiers", 2)]);
        std::fs::write(dir.path().join("ledger/dossiers/2022-01-03.json"), "{").unwrap();
        let err = rt.block_on(read_all(&wh)).unwrap_err().to_string();
        assert!(
            err.contains("ledger entry ledger/dossiers/2022-01-03.json is corrupt"),
            "{err}"
        );
    }
}
