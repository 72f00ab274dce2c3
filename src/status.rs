//! `cchc status`: the ledger against the landing, per source and day, and the stale periods.

use chrono::NaiveDate;
use serde::Serialize;

use crate::base::error::{Error, Result};
use crate::config::Config;
use crate::ingest::landing::{
    source_day_states, unmatched_files, DayState, SourceDayState, UnmatchedFile,
};

/// The most days `status` lists at once (ten years).
pub const MAX_DAYS: i64 = 3660;
use crate::store::location::Location;
use crate::store::{commits, ledger};
use crate::warehouse::periods::{periods_of, stale};

#[derive(Serialize)]
struct Report<'a> {
    from: Option<String>,
    to: Option<String>,
    source_days: &'a [SourceDayState],
    /// Files of the day folders that no source takes (not ingested).
    unmatched_files: &'a [UnmatchedFile],
    /// Periods whose marts and checks are missing or out of date.
    stale_periods: Vec<String>,
}

/// The status report, as a table or JSON.
pub async fn status(
    cfg: &Config,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    json: bool,
) -> Result<String> {
    let wh = Location::open(&cfg.warehouse, true)?;
    let landing = Location::open(&cfg.landing, false)?;
    let entries = ledger::read_all(&wh).await?;
    let first = from.or_else(|| entries.first().map(|e| e.day.extract_date));
    let last = to.or_else(|| entries.last().map(|e| e.day.extract_date));
    let days: Vec<NaiveDate> = match (first, last) {
        (Some(a), Some(b)) if (b - a).num_days() >= MAX_DAYS => {
            return Err(Error::Usage(format!(
                "status from {a} to {b} spans more than {MAX_DAYS} days: give a shorter --from/--to"
            )))
        }
        (Some(a), Some(b)) if a <= b => a.iter_days().take_while(|d| *d <= b).collect(),
        (Some(a), Some(b)) => return Err(Error::Usage(format!("--to {b} is before --from {a}"))),
        _ => Vec::new(),
    };
    let states = source_day_states(cfg, &landing, &entries, &days).await?;
    let mut unmatched = Vec::new();
    for d in &days {
        unmatched.extend(unmatched_files(cfg, &landing, *d).await?);
    }
    let all = periods_of(&ledger::ingested_days(&entries));
    let computed = commits::read_periods(&wh).await?;
    let stale: Vec<String> = stale(&all, &computed, &entries)
        .into_iter()
        .map(|p| p.id.clone())
        .collect();
    if json {
        let r = Report {
            from: first.map(|d| d.to_string()),
            to: last.map(|d| d.to_string()),
            source_days: &states,
            unmatched_files: &unmatched,
            stale_periods: stale,
        };
        let mut s = serde_json::to_string_pretty(&r).map_err(|e| Error::Internal(e.to_string()))?;
        s.push('\n');
        return Ok(s);
    }
    let mut out = format!(
        "{:<10} {:<18} {:<9} {:>5} {:>9} {:>9} {:>6} {:>5}  {:<30} {}\n",
        "day", "source", "state", "files", "read", "staged", "quar", "unrd", "run", "ingested_at"
    );
    for s in &states {
        let (read, staged, quar, unrd, run, at) = match &s.ledger {
            Some(e) => (
                e.day.read.to_string(),
                e.day.staged.to_string(),
                e.day.quarantined.to_string(),
                e.day.unreadable_files.to_string(),
                e.run_id.clone(),
                e.ingested_at.clone(),
            ),
            None => Default::default(),
        };
        out.push_str(&format!(
            "{:<10} {:<18} {:<9} {:>5} {:>9} {:>9} {:>6} {:>5}  {:<30} {}\n",
            s.day.to_string(),
            s.source,
            s.state.name(),
            s.landing_files,
            read,
            staged,
            quar,
            unrd,
            run,
            at
        ));
    }
    let count = |st: DayState| states.iter().filter(|s| s.state == st).count();
    out.push_str(&format!(
        "{} source-day(s): {} ingested, {} changed since, {} pending, {} missing\n",
        states.len(),
        count(DayState::Ingested),
        count(DayState::Changed),
        count(DayState::Pending),
        count(DayState::Missing)
    ));
    for u in &unmatched {
        out.push_str(&format!(
            "not ingested: {}/{}/{}: no source takes it (patterns: {})\n",
            u.system,
            u.day,
            u.file,
            u.patterns.join(", ")
        ));
    }
    out.push_str(&if stale.is_empty() {
        "stale periods: none\n".to_string()
    } else {
        format!("stale periods: {} (cchc refresh)\n", stale.join(", "))
    });
    Ok(out)
}
