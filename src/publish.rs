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
//! - `plan_targets`: the newest run in `marts/_periods.json`;
//! - a ranking partition of year Y (`marts/par_scores|par_ranking/year=<Y>/`): Y's entry in
//!   `marts/_ranking.json`.
//!
//! Readers read only published files, so a run killed at any moment leaves every table in its
//! previous complete version: what it wrote before its commit records is not read. Files that are
//! not published (a dead run's, or a previous version) are removed by [`prune`] after each commit
//! and by [`vacuum`] when a run starts, under the warehouse lock. No step relies on renaming a
//! folder, so this holds on an S3-compatible store as on a local disk.
//!
//! Readers (`crate::sql::session`) read the commit records, list, and read the records again,
//! listing anew if a run published meanwhile; a query that still finds a listed file pruned is run
//! again on a fresh listing (`crate::sql::query_warehouse`).

use std::collections::HashMap;

use chrono::NaiveDate;
use object_store::ObjectMeta;

use crate::error::Result;
use crate::ledger::LedgerEntry;
use crate::periods::Computed;
use crate::storage::{file_name, Location};

/// The file name a run writes in a partition folder.
pub fn part_name(run_id: &str) -> String {
    format!("part-{run_id}.parquet")
}

/// The commit records of a warehouse: which run's file of each partition folder is published.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Published {
    days: HashMap<(String, NaiveDate), String>,
    periods: HashMap<String, String>,
    newest_refresh: Option<String>,
    years: HashMap<String, String>,
}

impl Published {
    pub fn new(ledger: &[LedgerEntry], computed: &[Computed]) -> Self {
        Self {
            days: ledger
                .iter()
                .map(|e| ((e.day.source.clone(), e.day.extract_date), e.run_id.clone()))
                .collect(),
            periods: computed
                .iter()
                .map(|c| (c.period.clone(), c.run_id.clone()))
                .collect(),
            newest_refresh: computed.iter().map(|c| c.run_id.clone()).max(),
            years: HashMap::new(),
        }
    }

    /// With the ranking commits of `marts/_ranking.json`.
    pub fn with_rankings(mut self, commits: &[crate::ranking::RankingCommit]) -> Self {
        self.years = commits
            .iter()
            .map(|c| (c.year.to_string(), c.run_id.clone()))
            .collect();
        self
    }

    /// Read the commit records of a warehouse.
    pub async fn load(wh: &Location) -> Result<Self> {
        let ledger = crate::ledger::read_all(wh).await?;
        let computed = crate::run::read_computed(wh).await?;
        let rankings = crate::ranking::read_commits(wh).await?;
        Ok(Self::new(&ledger, &computed).with_rankings(&rankings))
    }

    /// The run whose file is published in `folder` (relative to the warehouse root).
    pub fn run_of(&self, folder: &str) -> Option<&str> {
        let parts: Vec<&str> = folder.split('/').collect();
        match parts.as_slice() {
            ["staging" | "quarantine", source, part] => {
                let day: NaiveDate = part.strip_prefix("extract_date=")?.parse().ok()?;
                self.days
                    .get(&(source.to_string(), day))
                    .map(String::as_str)
            }
            ["marts", "plan_targets"] => self.newest_refresh.as_deref(),
            ["marts", "par_scores" | "par_ranking", part] => self
                .years
                .get(part.strip_prefix("year=")?)
                .map(String::as_str),
            ["marts", _, part] => self
                .periods
                .get(part.strip_prefix("period=")?)
                .map(String::as_str),
            _ => None,
        }
    }

    /// The published files among `objects` (listed from `wh`).
    pub fn current(&self, wh: &Location, objects: Vec<ObjectMeta>) -> Vec<ObjectMeta> {
        objects
            .into_iter()
            .filter(|o| self.is_published(wh, o))
            .collect()
    }

    fn is_published(&self, wh: &Location, o: &ObjectMeta) -> bool {
        let rel = wh.relative(&o.location);
        let Some((folder, name)) = rel.rsplit_once('/') else {
            return false;
        };
        self.run_of(folder)
            .is_some_and(|run| name == part_name(run))
    }
}

fn is_part(o: &ObjectMeta) -> bool {
    let n = file_name(&o.location);
    n.starts_with("part-") && n.ends_with(".parquet")
}

/// Remove the files of `folder` other than `keep_run`'s (after `keep_run` was published there).
pub async fn prune(wh: &Location, folder: &str, keep_run: &str) -> Result<()> {
    let keep = part_name(keep_run);
    for o in wh.list(folder).await? {
        if is_part(&o) && file_name(&o.location) != keep {
            wh.delete(&o.location).await?;
        }
    }
    Ok(())
}

/// Remove every unpublished file of the warehouse (a dead run's, or a superseded version); run
/// under the warehouse lock. Returns how many files were removed.
pub async fn vacuum(wh: &Location) -> Result<usize> {
    let published = Published::load(wh).await?;
    let mut removed = 0;
    for area in ["staging", "quarantine", "marts"] {
        for o in wh.list(area).await? {
            if is_part(&o) && !published.is_published(wh, &o) {
                wh.delete(&o.location).await?;
                removed += 1;
            }
        }
    }
    if removed > 0 {
        tracing::info!(files = removed, "removed unpublished files of earlier runs");
    }
    Ok(removed)
}
