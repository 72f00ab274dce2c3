//! A refresh: recompute the marts and target results of every stale period (see
//! [`super::periods`]), write them with the state snapshots of the months that ended (see
//! [`super::snapshots`]), then publish them with one record (`marts/_periods.json`).

use super::periods::{periods_of, stale, Period};
use crate::base::error::Result;
use crate::base::failpoint;
use crate::config::units::Units;
use crate::config::Config;
use crate::store::location::Location;
use crate::store::publish::Published;
use crate::store::{commits, ledger};

/// What a refresh of the marts computed.
pub struct Refresh {
    pub periods: Vec<Period>,
    pub rows: Vec<super::checks::TargetRow>,
}

/// Recompute the stale periods (every period with `full`) of a warehouse, under its lock. Run
/// after the ingest of a run's days (once, also for a backfill), or alone (`cchc refresh`).
pub async fn refresh_marts(
    cfg: &Config,
    wh: &Location,
    units: &Units,
    run_id: &str,
    full: bool,
    ingested: super::version_index::Ingested,
) -> Result<Refresh> {
    let entries = ledger::read_all(wh).await?;
    let all = periods_of(&ledger::ingested_days(&entries));
    let computed = commits::read_periods(wh).await?;
    let stale: Vec<&Period> = if full {
        all.iter().collect()
    } else {
        stale(&all, &computed, &entries)
    };
    if stale.is_empty() {
        return Ok(Refresh {
            periods: Vec::new(),
            rows: Vec::new(),
        });
    }
    let mut steps = Steps::new();
    let ctx = super::models::new_context(&cfg.engine)?;
    let snapshot_commits = commits::read_snapshots(wh).await?;
    let published = Published::new(&entries, &computed).with_snapshots(&snapshot_commits);
    super::models::register_state(
        &ctx,
        cfg,
        Some((wh, &published)),
        Some(&entries),
        &stale,
        Some(units),
    )
    .await?;
    steps.done("state registered");
    let mut snapshots = super::snapshots::Plan::new(
        cfg,
        wh,
        (&published, snapshot_commits),
        &entries,
        &all,
        &stale,
    )
    .await?;
    // Version indexes in local sessions only: a cluster's executors do not have their functions.
    let local = cfg.engine.cluster.is_none();
    let mut indexes = super::version_index::Indexes::with_ingested(ingested);
    snapshots
        .write(
            &ctx,
            cfg,
            (wh, &published),
            run_id,
            local.then_some(&mut indexes),
        )
        .await?;
    steps.done("snapshots written");
    let mut branches = snapshots
        .branches(&ctx, cfg, wh, &published, &stale)
        .await?;
    if local {
        super::version_index::use_version_indexes(
            &ctx,
            cfg,
            (wh, &published),
            &mut branches,
            &mut indexes,
        )
        .await?;
        steps.done("version indexes used");
    }
    super::models::replace_state_views(&ctx, cfg, !units.changes.is_empty(), &branches, &stale)
        .await?;
    steps.done("state views planned");
    let marts = super::models::compute(&ctx, cfg, cfg.engine.marts_at_once()).await?;
    steps.done("marts computed");
    // The marts' files written while the targets are evaluated (their queries read the marts
    // held in the session, not the files).
    let written = async {
        futures::future::try_join_all(marts.iter().map(|m| {
            super::models::write_periods(wh, run_id, &m.model.name, &m.schema, &m.batches, &stale)
        }))
        .await
    };
    let (_, ev) = tokio::try_join!(written, super::checks::evaluate(&ctx, cfg, &stale, units))?;
    steps.done("marts written, checks evaluated");
    super::checks::write(wh, run_id, cfg, &ev, &stale).await?;
    steps.done("checks written");
    // Publish what was computed, last: a crash before this only makes the next run redo it.
    commits::commit_periods(
        wh,
        computed,
        stale.iter().map(|p| (p.id.clone(), p.as_of.to_string())),
        run_id,
    )
    .await?;
    steps.done("periods committed");
    failpoint::hit("marts.committed");
    Ok(Refresh {
        periods: stale.into_iter().cloned().collect(),
        rows: ev.rows,
    })
}

/// The time of each step of a refresh, logged at debug level: where the marts stage spends the
/// time that is not the marts' own (`CCHC_LOG=cchc=debug`).
struct Steps(std::time::Instant);

impl Steps {
    fn new() -> Self {
        Self(std::time::Instant::now())
    }

    fn done(&mut self, step: &str) {
        tracing::debug!(
            step,
            ms = self.0.elapsed().as_millis() as u64,
            "refresh step done"
        );
        self.0 = std::time::Instant::now();
    }
}
