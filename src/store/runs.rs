//! The run record `<warehouse>/runs/<run_id>.json` (like dbt's run_results.json): what a run
//! did, for people and schedulers. Written at the end of every run that reached the warehouse,
//! failed or not; nothing reads it back to decide anything (the ledger and the commit records do).

use chrono::NaiveDate;
use serde::Serialize;

use super::ledger::SourceDay;
use super::location::Location;
use crate::base::dates::serde_day;
use crate::base::error::{Error, Result};

/// The machine-readable record of one run.
#[derive(Debug, Serialize)]
pub struct RunRecord {
    pub run_id: String,
    pub command: String,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u128,
    pub landing: String,
    pub warehouse: String,
    /// The extract days ingested.
    #[serde(serialize_with = "serde_day::many")]
    pub dates: Vec<NaiveDate>,
    /// Days of a backfill skipped: already ingested from the same landing files.
    #[serde(serialize_with = "serde_day::many")]
    pub skipped_dates: Vec<NaiveDate>,
    pub totals: Totals,
    pub sources: Vec<SourceDay>,
    /// The periods whose marts and target results this run (re)computed.
    pub periods: Vec<PeriodRecord>,
    /// Target results of those periods, by status (units and `ALL`).
    pub targets: TargetCounts,
    /// Source-days of this run without any file (freshness), with the source's severity.
    pub missing: Vec<MissingDay>,
    /// Entries of this run's day folders that no source takes (a name no pattern matches, a
    /// subfolder): not ingested, so reported.
    pub unmatched: Vec<UnmatchedFile>,
    /// Each stage that ran: `plan` (which days a backfill runs), `ingest`, `marts` (marts and
    /// checks of the stale periods), with start and duration; counts and results are above.
    pub stages: Vec<Stage>,
    pub exit_code: u8,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Stage {
    pub name: &'static str,
    pub started_at: String,
    pub duration_ms: u128,
    /// `None` when the stage succeeded; the error otherwise (the run stops there).
    pub error: Option<String>,
}

/// An entry of a day folder that no source takes, with the patterns of its system's sources.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UnmatchedFile {
    pub system: String,
    #[serde(serialize_with = "serde_day::one")]
    pub day: NaiveDate,
    pub file: String,
    pub patterns: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MissingDay {
    pub source: String,
    #[serde(serialize_with = "serde_day::one")]
    pub day: NaiveDate,
    /// `warn` or `error` (an error makes the exit code 1).
    pub severity: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PeriodRecord {
    pub period: String,
    pub as_of: String,
    #[serde(rename = "final")]
    pub is_final: bool,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct TargetCounts {
    pub pass: u64,
    pub fail: u64,
    pub no_data: u64,
    pub info: u64,
    /// Failing rows of targets with severity `error` (they make the exit code 1).
    pub failing_error: u64,
}

#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Totals {
    pub files: u64,
    pub bytes: u64,
    pub read: u64,
    pub staged: u64,
    pub quarantined: u64,
    pub unreadable_files: u64,
}

impl Totals {
    pub fn of(days: &[SourceDay]) -> Self {
        let mut t = Totals::default();
        for d in days {
            t.files += d.files.len() as u64;
            t.bytes += d.files.iter().map(|f| f.bytes).sum::<u64>();
            t.read += d.read;
            t.staged += d.staged;
            t.quarantined += d.quarantined;
            t.unreadable_files += d.unreadable_files;
        }
        t
    }
}

impl RunRecord {
    /// A record of a run about to start.
    pub fn new(
        command: &str,
        run_id: &str,
        landing: &str,
        warehouse: &str,
        dates: Vec<NaiveDate>,
    ) -> RunRecord {
        RunRecord {
            run_id: run_id.to_string(),
            command: command.to_string(),
            started_at: String::new(),
            finished_at: String::new(),
            duration_ms: 0,
            landing: landing.to_string(),
            warehouse: warehouse.to_string(),
            dates,
            skipped_dates: Vec::new(),
            totals: Totals::default(),
            sources: Vec::new(),
            periods: Vec::new(),
            targets: TargetCounts::default(),
            missing: Vec::new(),
            unmatched: Vec::new(),
            stages: Vec::new(),
            exit_code: 0,
            error: None,
        }
    }
}

/// Write the record of a run, `runs/<run_id>.json`.
pub async fn write(wh: &Location, record: &RunRecord) -> Result<()> {
    let json = serde_json::to_vec_pretty(record).map_err(|e| Error::Internal(e.to_string()))?;
    wh.put(
        &wh.path(&format!("runs/{}.json", record.run_id)),
        json.into(),
    )
    .await
}
