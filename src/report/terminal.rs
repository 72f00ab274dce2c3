//! What the terminal shows after a command: the run's source-days and totals, the targets of
//! the newest periods, the ranking. Each reads finished records and tables; nothing is computed
//! here.

use std::collections::BTreeMap;

use super::vi::unit_name;
use crate::config::units::Units;
use crate::config::{Config, Measure};
use crate::ranking::{Ranking, YearResults};
use crate::store::runs::RunRecord;
use crate::warehouse::checks::{Status, TargetRow};

/// The run's source-days, one line each.
pub fn source_days(r: &RunRecord) -> String {
    let mut s = format!(
        "{:<18} {:>10} {:>6} {:>10} {:>10} {:>11} {:>10}\n",
        "source", "day", "files", "read", "staged", "quarantined", "unreadable"
    );
    for d in &r.sources {
        s.push_str(&format!(
            "{:<18} {:>10} {:>6} {:>10} {:>10} {:>11} {:>10}{}\n",
            d.source,
            d.extract_date.to_string(),
            d.files.len(),
            d.read,
            d.staged,
            d.quarantined,
            d.unreadable_files,
            if d.present { "" } else { "  (no files)" }
        ));
    }
    s
}

/// The run's totals and where its record is.
pub fn totals(r: &RunRecord) -> String {
    let t = &r.totals;
    format!(
        "{} day(s), {} file(s), {:.1} MB: read {} = staged {} + quarantined {}; {} unreadable file(s); {:.2} s\nrun record: {}/runs/{}.json",
        r.dates.len(), t.files, t.bytes as f64 / 1e6, t.read, t.staged, t.quarantined, t.unreadable_files,
        r.duration_ms as f64 / 1000.0, r.warehouse.trim_end_matches('/'), r.run_id
    )
}

/// A short summary for the terminal: for the newest month and year evaluated, per target the
/// province figure and how many units pass, fail or have no data; then the worst units.
pub fn targets(cfg: &Config, rows: &[TargetRow]) -> String {
    let mut out = String::new();
    let newest = |len: usize| {
        rows.iter()
            .filter(|r| r.period.len() == len)
            .map(|r| r.period.as_str())
            .max()
    };
    for period in [newest(7), newest(4)].into_iter().flatten() {
        let prs: Vec<&TargetRow> = rows.iter().filter(|r| r.period == period).collect();
        let Some(first) = prs.first() else { continue };
        out.push_str(&format!(
            "targets {period} (as of {}{}):\n",
            first.as_of,
            if first.is_final {
                ", final"
            } else {
                ", provisional"
            }
        ));
        out.push_str(&format!(
            "  {:<18} {:>10} {:>9} {:>8} {:>6} {:>6} {:>8} {:>10}\n",
            "target", "pass when", "ALL", "status", "pass", "fail", "no_data", "offending"
        ));
        let mut ids: Vec<&str> = Vec::new();
        for r in &prs {
            if !ids.contains(&r.target_id.as_str()) {
                ids.push(&r.target_id);
            }
        }
        for id in ids {
            let t = cfg
                .plans
                .iter()
                .flat_map(|p| &p.targets)
                .find(|t| t.id == id);
            let of: Vec<&&TargetRow> = prs.iter().filter(|r| r.target_id == id).collect();
            let units: Vec<&&&TargetRow> = of.iter().filter(|r| r.unit_code != "ALL").collect();
            let count = |s: Status| units.iter().filter(|r| r.status == s).count();
            let Some(all) = of.iter().find(|r| r.unit_code == "ALL") else {
                continue;
            };
            let pass_when = t
                .and_then(|t| {
                    t.pass_when
                        .map(|(c, th)| format!("{} {}", c.symbol(), th.value))
                })
                .unwrap_or_else(|| "indicator".into());
            let value = match (all.value, t.map(|t| t.measure)) {
                (None, _) => "-".to_string(),
                (Some(v), Some(Measure::Count)) => format!("{v}"),
                (Some(v), _) => format!("{:.2}%", v * 100.0),
            };
            out.push_str(&format!(
                "  {:<18} {:>10} {:>9} {:>8} {:>6} {:>6} {:>8} {:>10}\n",
                id,
                pass_when,
                value,
                all.status.name(),
                count(Status::Pass),
                count(Status::Fail),
                count(Status::NoData),
                match t {
                    Some(t) if t.offending.is_some() => all.offending(t.measure).to_string(),
                    _ => "-".into(),
                }
            ));
        }
        let mut worst: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for r in prs
            .iter()
            .filter(|r| r.unit_code != "ALL" && r.status == Status::Fail)
        {
            worst.entry(&r.unit_code).or_default().push(&r.target_id);
        }
        let mut worst: Vec<_> = worst.into_iter().collect();
        worst.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
        if !worst.is_empty() {
            out.push_str(&format!(
                "  units failing a target: {}; worst first:\n",
                worst.len()
            ));
            for (u, ts) in worst.iter().take(5) {
                out.push_str(&format!(
                    "    {u}  {} failed: {}\n",
                    ts.len(),
                    ts.join(", ")
                ));
            }
        }
    }
    let unmeasurable: Vec<&str> = cfg
        .plans
        .iter()
        .flat_map(|p| &p.unmeasurable)
        .map(|u| u.id.as_str())
        .collect();
    if !unmeasurable.is_empty() {
        out.push_str(&format!(
            "not measurable from the extracts (see plan_targets): {}\n",
            unmeasurable.join(", ")
        ));
    }
    out
}

/// The ranking per tier for the terminal: rank, total, band, unit, flags.
pub fn ranking(
    cfg: &Config,
    ranking: &Ranking,
    results: &YearResults,
    units: &Units,
    year: i32,
) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let as_of = results.as_of.map(|d| d.to_string()).unwrap_or_default();
    let _ = writeln!(
        s,
        "ranking {year} (figures as of {as_of}{})",
        if results.is_final {
            ", final"
        } else {
            ", provisional"
        }
    );
    let Some(scheme) = cfg.scheme_for(year) else {
        return s;
    };
    for tier in &scheme.tiers {
        let _ = writeln!(s, "\n{} ({})", tier.label, tier.tier);
        for r in ranking.ranking.iter().filter(|r| r.tier == tier.tier) {
            let name = unit_name(units, &r.unit_code);
            let _ = writeln!(
                s,
                "  {:>3}  {:>7.2}  {}  {} {}{}",
                r.rank,
                r.total,
                r.band,
                r.unit_code,
                name,
                if r.flagged > 0 {
                    format!("  [{} flagged]", r.flagged)
                } else {
                    String::new()
                }
            );
        }
    }
    s
}
