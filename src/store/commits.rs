//! The commit records of the marts and the ranking (see [`crate::store::publish`]):
//! `marts/_periods.json` (which run computed each period, as of which day) and
//! `marts/_ranking.json` (which run ranked each year), `state/_snapshots.json` (which run wrote
//! each month-end state snapshot). Each is one object written with one put,
//! after every file it publishes is complete.

use serde::{Deserialize, Serialize};

use super::location::Location;
use crate::base::error::{Error, Result};

/// What was computed for a period, and by which run (an entry of `marts/_periods.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PeriodCommit {
    pub period: String,
    pub as_of: String,
    pub run_id: String,
}

/// Which run's files are the ranking of a year (an entry of `marts/_ranking.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RankingCommit {
    pub year: i32,
    pub run_id: String,
}

/// Which run's file is the snapshot of a source's state at a month's end (an entry of
/// `state/_snapshots.json`, see `crate::warehouse::snapshots`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SnapshotCommit {
    pub source: String,
    pub month: String,
    pub run_id: String,
    /// The staging columns the file holds (the ones the models read when it was written, see
    /// `crate::warehouse::snapshots::columns_read`); absent in records written before snapshots
    /// kept only those: every staging column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// A digest of what decided `columns` (`crate::warehouse::snapshots::models_digest`): while
    /// it is the configuration's, they are the columns the models read, without planning them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<String>,
}

pub const PERIODS: &str = "marts/_periods.json";
pub const SNAPSHOTS: &str = "state/_snapshots.json";
pub const RANKINGS: &str = "marts/_ranking.json";

async fn read<T: serde::de::DeserializeOwned>(wh: &Location, name: &str) -> Result<Vec<T>> {
    Ok(match wh.get_opt(&wh.path(name)).await? {
        Some(b) => serde_json::from_slice(&b)
            .map_err(|e| Error::Internal(format!("{name} is corrupt: {e}")))?,
        None => Vec::new(),
    })
}

async fn write<T: Serialize>(wh: &Location, name: &str, records: &[T]) -> Result<()> {
    let json = serde_json::to_vec_pretty(records).map_err(|e| Error::Internal(e.to_string()))?;
    wh.put(&wh.path(name), json.into()).await
}

/// What `marts/_periods.json` says was computed.
pub async fn read_periods(wh: &Location) -> Result<Vec<PeriodCommit>> {
    read(wh, PERIODS).await
}

/// Publish the periods `run_id` computed (each as of its day), keeping the other periods'
/// records. Written last: a crash before this only makes the next run redo the periods.
pub async fn commit_periods(
    wh: &Location,
    before: Vec<PeriodCommit>,
    computed: impl IntoIterator<Item = (String, String)>,
    run_id: &str,
) -> Result<()> {
    let computed: Vec<(String, String)> = computed.into_iter().collect();
    let mut state: Vec<PeriodCommit> = before
        .into_iter()
        .filter(|c| !computed.iter().any(|(p, _)| *p == c.period))
        .collect();
    state.extend(computed.into_iter().map(|(period, as_of)| PeriodCommit {
        period,
        as_of,
        run_id: run_id.to_string(),
    }));
    state.sort_by(|a, b| a.period.cmp(&b.period));
    write(wh, PERIODS, &state).await
}

/// What `state/_snapshots.json` says was written.
pub async fn read_snapshots(wh: &Location) -> Result<Vec<SnapshotCommit>> {
    read(wh, SNAPSHOTS).await
}

/// Publish the snapshots of `commits` (all of them: the record is replaced).
pub async fn write_snapshots(wh: &Location, mut commits: Vec<SnapshotCommit>) -> Result<()> {
    commits.sort_by(|a, b| (&a.source, &a.month).cmp(&(&b.source, &b.month)));
    write(wh, SNAPSHOTS, &commits).await
}

/// What `marts/_ranking.json` says was ranked.
pub async fn read_rankings(wh: &Location) -> Result<Vec<RankingCommit>> {
    read(wh, RANKINGS).await
}

/// Publish the ranking of `year` written by `run_id`, keeping the other years'.
pub async fn commit_ranking(wh: &Location, year: i32, run_id: &str) -> Result<()> {
    let mut commits: Vec<RankingCommit> = read_rankings(wh)
        .await?
        .into_iter()
        .filter(|c| c.year != year)
        .collect();
    commits.push(RankingCommit {
        year,
        run_id: run_id.to_string(),
    });
    commits.sort_by_key(|c| c.year);
    write(wh, RANKINGS, &commits).await
}
