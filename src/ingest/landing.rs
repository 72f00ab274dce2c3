//! The landing area as the ingest sees it: the files of a source for a day (by the source's
//! pattern), their checksums, and the state of each source-day against the ledger (what `status`
//! shows and what a backfill plans from).

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Serialize;
use sha2::{Digest, Sha256};

use object_store::path::Path;

use crate::base::dates::serde_day;
use crate::base::error::{Error, Result};
use crate::config::{Config, Source};
use crate::store::ledger::LedgerEntry;
use crate::store::location::Location;
pub use crate::store::runs::UnmatchedFile;

/// An entry of a day folder: a file, or something that cannot be read as one (`problem`: a link
/// that loops or leads out of the landing area, a subfolder). An entry with a problem whose name
/// a source takes is quarantined as an unreadable file of that source; the others are reported.
#[derive(Debug, Clone)]
pub struct DayEntry {
    pub name: String,
    pub location: Path,
    pub problem: Option<String>,
    /// Bytes of the file, as the listing says (0 when unknown or unreadable).
    pub size: u64,
    /// The file on a local landing (read by the calling thread, see [`checksum_blocking`]).
    pub file: Option<std::path::PathBuf>,
}

/// Every entry of the day folder `<system>/<day>/`, in byte-wise name order. On a local landing
/// the folder is read entry by entry, so one bad entry does not hide the others, and links are
/// followed only to files inside the landing area.
pub async fn day_entries(
    landing: &Location,
    system: &str,
    day: NaiveDate,
) -> Result<Vec<DayEntry>> {
    let folder = format!("{system}/{day}");
    let mut out = match landing.local_root() {
        Some(root) => local_entries(landing, &root, &folder)?,
        None => {
            let prefix_len = landing.path(&folder).parts().count();
            landing
                .list(&folder)
                .await?
                .into_iter()
                .map(|o| {
                    let nested = o.location.parts().count() > prefix_len + 1;
                    DayEntry {
                        name: landing.relative(&o.location)[folder.len() + 1..].to_string(),
                        problem: nested.then(|| "in a subfolder of the day folder".to_string()),
                        location: o.location,
                        size: o.size,
                        file: None,
                    }
                })
                .collect()
        }
    };
    out.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    Ok(out)
}

fn local_entries(
    landing: &Location,
    root: &std::path::Path,
    folder: &str,
) -> Result<Vec<DayEntry>> {
    let dir = root.join(folder);
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("cannot list {}", dir.display()), e)),
    };
    // The landing root resolved once a day folder holds a link (a backfill lists ≈ 1,100 day
    // folders without one: resolving it for each cost 20 k `readlink` calls).
    let mut real_root: Option<std::path::PathBuf> = None;
    let mut out = Vec::new();
    for e in rd {
        let e = match e {
            Ok(e) => e,
            Err(err) => {
                tracing::warn!(folder = %dir.display(), error = %err, "unreadable entry in a day folder");
                out.push(DayEntry {
                    name: "(unreadable entry)".into(),
                    location: landing.path(&format!("{folder}/(unreadable entry)")),
                    problem: Some(format!("unreadable entry: {err}")),
                    size: 0,
                    file: None,
                });
                continue;
            }
        };
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        // A regular file's size is the one of its own metadata; a link's, its target's.
        let (problem, size) = match std::fs::symlink_metadata(&path) {
            Err(err) => (Some(format!("unreadable entry: {err}")), 0),
            Ok(m) if m.file_type().is_symlink() => {
                let real_root = real_root.get_or_insert_with(|| {
                    std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf())
                });
                match std::fs::canonicalize(&path) {
                    Err(err) => (Some(format!("a link that cannot be followed: {err}")), 0),
                    Ok(t) if !t.starts_with(&*real_root) => (
                        Some("a link out of the landing area (not followed)".into()),
                        0,
                    ),
                    Ok(t) if t.is_dir() => (Some("a folder, not a file".into()), 0),
                    Ok(_) => (None, std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)),
                }
            }
            Ok(m) if m.is_dir() => (Some("a folder, not a file".into()), 0),
            Ok(m) => (None, m.len()),
        };
        out.push(DayEntry {
            location: landing.path(&format!("{folder}/{name}")),
            name,
            file: problem.is_none().then_some(path),
            problem,
            size,
        });
    }
    Ok(out)
}

/// The landing files of a source for a day (the entries its pattern takes), in byte-wise name
/// order.
pub async fn day_files(
    landing: &Location,
    source: &Source,
    day: NaiveDate,
) -> Result<Vec<DayEntry>> {
    Ok(day_entries(landing, &source.system, day)
        .await?
        .into_iter()
        .filter(|e| !e.name.contains('/') && source.pattern.matches(&e.name))
        .collect())
}

/// How a landing file's checksum is computed. The ledger hashes every byte the ingest reads:
/// BLAKE3 reads 5.3 GB/s a core on this project's benchmark machine, SHA-256 (with the CPU's SHA
/// instructions) 1.4 GB/s, 0.8 s of CPU for a province-year's 1.1 GB. SHA-256 remains for
/// comparing with ledger entries written before checksums were BLAKE3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    Blake3,
    Sha256,
}

impl Checksum {
    /// The checksum of `bytes`, lower-case hex.
    pub fn hex(self, bytes: &[u8]) -> String {
        match self {
            Checksum::Blake3 => blake3::hash(bytes).to_hex().to_string(),
            Checksum::Sha256 => hex::encode(Sha256::digest(bytes)),
        }
    }

    /// The checksum a ledger entry's files were recorded with.
    pub fn of_entry(e: &LedgerEntry) -> Self {
        match e.day.files.iter().any(|f| f.sha256.is_some()) {
            true => Checksum::Sha256,
            false => Checksum::Blake3,
        }
    }
}

/// A landing file's bytes and BLAKE3, or why it cannot be read.
pub async fn checksum(
    landing: &Location,
    entry: &DayEntry,
) -> std::result::Result<(bytes::Bytes, String), String> {
    checksum_with(landing, entry, Checksum::Blake3).await
}

async fn checksum_with(
    landing: &Location,
    entry: &DayEntry,
    sum: Checksum,
) -> std::result::Result<(bytes::Bytes, String), String> {
    if let Some(p) = &entry.problem {
        return Err(p.clone());
    }
    let bytes = landing
        .get(&entry.location)
        .await
        .map_err(|e| format!("cannot read the file: {e}"))?;
    Ok(hashed(bytes, sum))
}

/// The bytes read and their checksum.
fn hashed(bytes: bytes::Bytes, sum: Checksum) -> (bytes::Bytes, String) {
    let hex = sum.hex(&bytes);
    (bytes, hex)
}

/// [`checksum`] from a thread that may block (the ingest's workers): a local file is read by the
/// calling thread instead of the runtime's blocking pool (see `Location::put_blocking`).
pub fn checksum_blocking(
    rt: &tokio::runtime::Handle,
    landing: &Location,
    entry: &DayEntry,
) -> std::result::Result<(bytes::Bytes, String), String> {
    // `file` is set only for an entry without a problem.
    match &entry.file {
        Some(file) => std::fs::read(file)
            .map(|b| hashed(b.into(), Checksum::Blake3))
            .map_err(|e| format!("cannot read the file: {e}")),
        None => rt.block_on(checksum(landing, entry)),
    }
}

/// (name, checksum by `sum`) of the landing files of a source-day, as the ledger records them
/// (an empty checksum for an entry that cannot be read).
pub async fn day_checksums(
    landing: &Location,
    source: &Source,
    day: NaiveDate,
    sum: Checksum,
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for f in day_files(landing, source, day).await? {
        let hex = checksum_with(landing, &f, sum)
            .await
            .map(|(_, s)| s)
            .unwrap_or_default();
        out.push((f.name, hex));
    }
    Ok(out)
}

/// The entries of the day folders of `day` that no source takes, each with the patterns of its
/// system's sources.
pub async fn unmatched_files(
    cfg: &Config,
    landing: &Location,
    day: NaiveDate,
) -> Result<Vec<UnmatchedFile>> {
    let mut systems: Vec<&str> = cfg.sources.iter().map(|s| s.system.as_str()).collect();
    systems.sort();
    systems.dedup();
    let mut out = Vec::new();
    for system in systems {
        let sources: Vec<&Source> = cfg.sources.iter().filter(|s| s.system == system).collect();
        for e in day_entries(landing, system, day).await? {
            let taken = !e.name.contains('/') && sources.iter().any(|s| s.pattern.matches(&e.name));
            if !taken {
                out.push(UnmatchedFile {
                    system: system.to_string(),
                    day,
                    file: e.name,
                    patterns: sources.iter().map(|s| s.pattern.to_string()).collect(),
                });
            }
        }
    }
    Ok(out)
}

/// The state of a source-day, comparing the landing with the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DayState {
    /// Ingested from the files the landing holds now.
    Ingested,
    /// Ingested, but the landing files changed since (added, removed or different content).
    Changed,
    /// Files in the landing, never ingested (new, arrived late, or the run failed).
    Pending,
    /// No file in the landing for that source and day.
    Missing,
}

impl DayState {
    pub fn name(self) -> &'static str {
        match self {
            DayState::Ingested => "ingested",
            DayState::Changed => "changed",
            DayState::Pending => "pending",
            DayState::Missing => "missing",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceDayState {
    pub source: String,
    #[serde(serialize_with = "serde_day::one")]
    pub day: NaiveDate,
    pub state: DayState,
    pub landing_files: usize,
    /// What the ledger holds for the day, if anything.
    pub ledger: Option<LedgerEntry>,
}

/// Compare the landing with the ledger for every source and day. Checksums are computed only
/// where the ledger has an entry to compare with; elsewhere the listing says enough.
pub async fn source_day_states(
    cfg: &Config,
    landing: &Location,
    ledger: &[LedgerEntry],
    days: &[NaiveDate],
) -> Result<Vec<SourceDayState>> {
    let by_key: HashMap<(NaiveDate, &str), &LedgerEntry> = ledger
        .iter()
        .map(|e| ((e.day.extract_date, e.day.source.as_str()), e))
        .collect();
    let mut out = Vec::new();
    for &day in days {
        for source in &cfg.sources {
            let entry = by_key
                .get(&(day, source.name.as_str()))
                .map(|e| (*e).clone());
            let files = day_files(landing, source, day).await?;
            let state = match &entry {
                None if files.is_empty() => DayState::Missing,
                None => DayState::Pending,
                Some(e) => {
                    let now = day_checksums(landing, source, day, Checksum::of_entry(e)).await?;
                    let then: Vec<(String, String)> = e
                        .day
                        .files
                        .iter()
                        .map(|f| (f.name.clone(), f.checksum().to_string()))
                        .collect();
                    match (now == then, now.is_empty()) {
                        (true, true) => DayState::Missing,
                        (true, false) => DayState::Ingested,
                        (false, _) => DayState::Changed,
                    }
                }
            };
            out.push(SourceDayState {
                source: source.name.clone(),
                day,
                state,
                landing_files: files.len(),
                ledger: entry,
            });
        }
    }
    Ok(out)
}
