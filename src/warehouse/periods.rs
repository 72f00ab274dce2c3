//! Reporting periods and their as-of days (TARGETS.md, "Common rules").
//!
//! A day is *ingested* when a folder of any source held at least one file for it (readable or
//! not): the ledger says so. The periods are every month that contains an ingested day and the
//! years that contain them. A period is *over* when its last day, or any later day, has been
//! ingested; its figures are then computed as of its last day (`final`). A period not yet over is
//! computed as of the newest ingested day in it, provisionally.
//!
//! Which periods a run recomputes: every period that was never computed, whose as-of day moved,
//! or for which a day on or before its as-of day was ingested after its last computation (a new
//! day, or an old day re-delivered and re-run). Nothing else moves.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate};

use crate::base::error::Result;
use crate::config::PeriodKind;
use crate::store::commits::PeriodCommit;
use crate::store::ledger::{self, LedgerEntry};
use crate::store::location::Location;

/// One reporting period with its as-of day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// `YYYY-MM` or `YYYY`.
    pub id: String,
    pub kind: PeriodKind,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub as_of: NaiveDate,
    /// `as_of == end`: the period is over and its figures are final.
    pub is_final: bool,
}

impl Period {
    pub fn year(&self) -> i32 {
        self.start.year()
    }
}

fn month_end(y: i32, m: u32) -> NaiveDate {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    NaiveDate::from_ymd_opt(ny, nm, 1)
        .unwrap()
        .pred_opt()
        .unwrap()
}

/// The period of `kind` that contains `day`, with `as_of` still to be set.
fn containing(kind: PeriodKind, day: NaiveDate) -> (String, NaiveDate, NaiveDate) {
    match kind {
        PeriodKind::Month => (
            format!("{:04}-{:02}", day.year(), day.month()),
            NaiveDate::from_ymd_opt(day.year(), day.month(), 1).unwrap(),
            month_end(day.year(), day.month()),
        ),
        PeriodKind::Year => (
            format!("{:04}", day.year()),
            NaiveDate::from_ymd_opt(day.year(), 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(day.year(), 12, 31).unwrap(),
        ),
    }
}

/// Every period of the ingested days, months first then years, each in date order.
pub fn periods_of(ingested: &BTreeSet<NaiveDate>) -> Vec<Period> {
    let Some(&newest) = ingested.iter().next_back() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for kind in [PeriodKind::Month, PeriodKind::Year] {
        let mut seen: BTreeMap<String, (NaiveDate, NaiveDate, NaiveDate)> = BTreeMap::new();
        for &d in ingested {
            let (id, start, end) = containing(kind, d);
            let e = seen.entry(id).or_insert((start, end, d));
            e.2 = e.2.max(d);
        }
        for (id, (start, end, newest_in)) in seen {
            let over = newest >= end;
            let as_of = if over { end } else { newest_in };
            out.push(Period {
                id,
                kind,
                start,
                end,
                as_of,
                is_final: over,
            });
        }
    }
    out
}

/// The periods among `all` that must be (re)computed, given what was computed before and the
/// ledger.
pub fn stale<'a>(
    all: &'a [Period],
    computed: &[PeriodCommit],
    ledger: &[LedgerEntry],
) -> Vec<&'a Period> {
    let by_id: BTreeMap<&str, &PeriodCommit> =
        computed.iter().map(|c| (c.period.as_str(), c)).collect();
    all.iter()
        .filter(|p| match by_id.get(p.id.as_str()) {
            None => true,
            Some(c) => c.as_of != p.as_of.to_string() || changed_since(ledger, p.as_of, &c.run_id),
        })
        .collect()
}

/// Whether a day on or before `day` was ingested by a run after `run_id`: what was computed
/// from staging up to `day` by `run_id` is out of date.
pub fn changed_since(ledger: &[LedgerEntry], day: NaiveDate, run_id: &str) -> bool {
    ledger
        .iter()
        .any(|e| e.day.extract_date <= day && e.run_id.as_str() > run_id)
}

/// The ledger of a warehouse and every period of its ingested days.
pub async fn known_periods(wh: &Location) -> Result<(Vec<LedgerEntry>, Vec<Period>)> {
    let entries = ledger::read_all(wh).await?;
    let all = periods_of(&ledger::ingested_days(&entries));
    Ok((entries, all))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn ids(ps: &[Period]) -> Vec<(String, String, bool)> {
        ps.iter()
            .map(|p| (p.id.clone(), p.as_of.to_string(), p.is_final))
            .collect()
    }

    #[test]
    fn a_month_in_progress_is_provisional_and_a_later_day_closes_it() {
        let days: BTreeSet<_> = [d("2022-01-30"), d("2022-01-29")].into();
        assert_eq!(
            ids(&periods_of(&days)),
            [
                ("2022-01".into(), "2022-01-30".into(), false),
                ("2022".into(), "2022-01-30".into(), false)
            ]
        );
        // 31 January missing, 1 February ingested: January is over, as of its last day.
        let days: BTreeSet<_> = [d("2022-01-30"), d("2022-02-01")].into();
        assert_eq!(
            ids(&periods_of(&days)),
            [
                ("2022-01".into(), "2022-01-31".into(), true),
                ("2022-02".into(), "2022-02-01".into(), false),
                ("2022".into(), "2022-02-01".into(), false)
            ]
        );
        let days: BTreeSet<_> = [d("2022-12-31")].into();
        assert_eq!(
            ids(&periods_of(&days)),
            [
                ("2022-12".into(), "2022-12-31".into(), true),
                ("2022".into(), "2022-12-31".into(), true)
            ]
        );
    }

    #[test]
    fn leap_february_ends_on_the_29th() {
        let days: BTreeSet<_> = [d("2024-02-29")].into();
        let p = &periods_of(&days)[0];
        assert_eq!((p.end, p.is_final), (d("2024-02-29"), true));
    }
}
