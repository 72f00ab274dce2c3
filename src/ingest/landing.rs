//! The landing area as the ingest sees it: the files of a source for a day (by the source's
//! pattern), their checksums, and the state of each source-day against the ledger (what `status`
//! shows and what a backfill plans from).

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::base::dates::serde_day;
use crate::base::error::Result;
use crate::config::{Config, Source};
use crate::store::ledger::LedgerEntry;
use crate::store::location::{file_name, Location};

/// The landing files of a source for a day, in byte-wise name order.
pub async fn day_files(
    landing: &Location,
    source: &Source,
    day: NaiveDate,
) -> Result<Vec<object_store::ObjectMeta>> {
    let folder = format!("{}/{}", source.system, day);
    let objects = landing.list(&folder).await?;
    let prefix_len = landing.path(&folder).parts().count();
    let mut files: Vec<_> = objects
        .into_iter()
        .filter(|o| {
            o.location.parts().count() == prefix_len + 1
                && source.pattern.matches(file_name(&o.location))
        })
        .collect();
    files.sort_by(|a, b| {
        file_name(&a.location)
            .as_bytes()
            .cmp(file_name(&b.location).as_bytes())
    });
    Ok(files)
}

/// (name, SHA-256) of the landing files of a source-day, as the ledger records them.
pub async fn day_checksums(
    landing: &Location,
    source: &Source,
    day: NaiveDate,
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for f in day_files(landing, source, day).await? {
        let bytes = landing.get(&f.location).await?;
        out.push((
            file_name(&f.location).to_string(),
            hex::encode(Sha256::digest(&bytes)),
        ));
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
                    let now = day_checksums(landing, source, day).await?;
                    let then: Vec<(String, String)> = e
                        .day
                        .files
                        .iter()
                        .map(|f| (f.name.clone(), f.sha256.clone()))
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
