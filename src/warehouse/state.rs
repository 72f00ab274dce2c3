//! Versions and the state as of a day: one reusable piece, as SQL views over staging, so that
//! every mart reads the same logic.
//!
//! For each source, `<source>_versions` is its staging table plus `valid_from` (the version's
//! extract day) and `valid_to` (the extract day of the version that replaced it; null while
//! current), like dbt snapshots. The state as of day D is then a filter, not a window:
//!
//! ```sql
//! WHERE valid_from <= D AND (valid_to IS NULL OR valid_to > D)
//! ```
//!
//! A version replaced on its own extract day (a later file or position of the same day) has
//! `valid_to = valid_from`: an empty interval, never part of any day's state. The rule per source
//! is its `versioning` in the pipeline YAML (EXTRACTS.md, "Reading rules"):
//! - `latest`: each record is the whole current state; newer = later (extract day, file, position);
//! - `first_seen`: events are appended, never updated; the first one seen of a key is kept forever;
//! - `snapshot`: each file is a whole snapshot, which replaces every older one (extract day, file).
//!
//! - `snapshot`: each readable file is a whole snapshot, which replaces every older one (extract
//!   day, file). The files come from `<source>_files` (the ledger's readable files), so a snapshot
//!   whose entries were all bad still replaces the previous one, as the contract says.
//!
//! `<source>_state` joins the versions with `periods` (one row per reporting period with its
//! as-of day): one row per period and entity, the entity's state as of the period's as-of day.
//! Every mart reads these views; none re-implements the rule.

use std::collections::BTreeSet;

use chrono::NaiveDate;

use super::periods::Period;
use crate::config::{Source, Versioning};

use crate::base::text::ident;
use crate::config::sources::{files_table, state_view, versions_view};

pub use crate::config::sources::PERIOD_COLUMNS;

/// Where a state view reads the versions of some of its periods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    /// The periods it serves; `None`: every period of the `periods` table.
    pub periods: Option<Vec<String>>,
    /// The versions it reads: `None`, the source's `<source>_versions` view (all of staging);
    /// `Some(input)`, a month-end snapshot and every staged version after it (see
    /// [`super::snapshots`] and [`versions_after_snapshot_sql`]).
    pub input: Option<SnapshotInput>,
}

/// A month-end snapshot of a source and the versions staged after its month, as two tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInput {
    /// The snapshot's rows: the staging columns of the versions in the state as of the month's
    /// last day, one per entity.
    pub snapshot: String,
    /// Every staged version with an extract day after the month.
    pub after: String,
}

impl Branch {
    /// Every period over all of staging: the state view of a session without snapshots.
    pub fn all() -> Vec<Branch> {
        vec![Branch {
            periods: None,
            input: None,
        }]
    }
}

/// The state-as-of rule on an interval: version `v` is the state of its entity on day `day`.
pub fn holds_on(v: &str, day: &str) -> String {
    format!("{v}.valid_from <= {day} AND ({v}.valid_to IS NULL OR {v}.valid_to > {day})")
}

/// `FROM … JOIN …` of a branch: periods `p` × versions `v` in the state as of `p.as_of`;
/// `periods` are the rows of the `periods` table (see [`state_from`]).
pub fn branch_from(source: &Source, b: &Branch, periods: &[&Period]) -> String {
    let versions = match &b.input {
        None => ident(&versions_view(source)),
        Some(input) => format!("({})", versions_after_snapshot_sql(source, input)),
    };
    let days: BTreeSet<NaiveDate> = periods
        .iter()
        .filter(|p| b.periods.as_ref().is_none_or(|ids| ids.contains(&p.id)))
        .map(|p| p.as_of)
        .collect();
    state_from(b.periods.as_deref(), &versions, &days)
}

/// The most as-of days a state view's versions are filtered on before its join (see
/// [`state_from`]); with more, the join alone decides.
const PREFILTER_DAYS: usize = 32;

/// `FROM … JOIN …`: the periods `ids` (`None`: all) `p` × the relation `versions` `v` (with
/// `valid_from` and `valid_to`), the versions in the state as of each `p.as_of`.
///
/// `days`, the as-of days of those periods (empty: unknown), also filter the versions before
/// the join: a version in the state as of none of them cannot meet any period, so the join's
/// result is the same, and most versions are replaced before the next as-of day (of a year's
/// 1.56 M dossier versions, 0.54 M are in the state at some month's end).
pub fn state_from(ids: Option<&[String]>, versions: &str, days: &BTreeSet<NaiveDate>) -> String {
    let periods = match ids {
        None => String::new(),
        Some(ids) => format!(
            " WHERE period IN ({})",
            ids.iter()
                .map(|id| format!("'{}'", id.replace('\'', "''")))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    // In the state as of some day of `days` ⟺ in the state as of the first of them on or after
    // `valid_from` (null when there is none): then `valid_to` (a function of the version index,
    // evaluated once here) is compared once.
    let in_some_state = match days.len() {
        1..=PREFILTER_DAYS => format!(
            " WHERE coalesce(x.valid_to, DATE '9999-12-31') > CASE {} END",
            days.iter()
                .map(|d| format!("WHEN x.valid_from <= DATE '{d}' THEN DATE '{d}'"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        _ => String::new(),
    };
    // A hash join on a constant key, the range as its filter: with the few periods as the
    // build side this is a vectorised filter over each batch of versions, several times cheaper
    // than the nested-loop join DataFusion plans for a join on a range alone.
    format!(
        "FROM (SELECT *, 0 AS all_rows FROM periods{periods}) p \
         JOIN (SELECT *, 0 AS all_rows FROM {versions} x{in_some_state}) v \
         ON p.all_rows = v.all_rows AND {}",
        holds_on("v", "p.as_of")
    )
}

/// `CREATE VIEW <source>_state AS …`: the state as of each period's as-of day, one `UNION ALL`
/// branch per group of periods that read the same versions.
///
/// With `attribute` (the units changed: `unit_changes.csv` has lines), every column that
/// references units holds the unit the record counts for as of the period's as-of day, from
/// `unit_attribution` (TARGETS.md "Units that change"): so every model, ours or an analyst's,
/// follows the one rule. Without it the join would map every code to itself, and is left out.
pub fn state_view_sql(
    source: &Source,
    attribute: bool,
    branches: &[Branch],
    periods: &[&Period],
) -> String {
    let p = PERIOD_COLUMNS
        .iter()
        .map(|c| format!("p.{}", ident(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let name = ident(&state_view(source));
    let unit_columns: Vec<&str> = source
        .columns
        .iter()
        .filter(|c| c.references_units)
        .map(|c| c.name.as_str())
        .collect();
    let mut joins = String::new();
    let mut cols = Vec::new();
    let attribute = attribute && !unit_columns.is_empty();
    for c in version_columns(source) {
        match unit_columns.iter().position(|u| *u == c) {
            Some(i) if attribute => {
                joins.push_str(&format!(
                    " LEFT JOIN unit_attribution a{i} ON a{i}.period = p.period AND a{i}.unit_code = v.{c}",
                    c = ident(c)
                ));
                cols.push(format!(
                    "coalesce(a{i}.attributed_code, v.{c}) AS {c}",
                    c = ident(c)
                ));
            }
            _ => cols.push(format!("v.{}", ident(c))),
        }
    }
    let cols = cols.join(", ");
    let body = branches
        .iter()
        .map(|b| {
            let from = branch_from(source, b, periods);
            format!("SELECT {p}, {cols} {from}{joins}")
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    format!("CREATE VIEW {name} AS {body}")
}

/// The columns of `<source>_versions`, in order, which `<source>_state` lists after the period
/// columns: the staging and metadata columns, the derived ones, `valid_from` and `valid_to`.
pub fn version_columns(source: &Source) -> impl Iterator<Item = &str> {
    source
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .chain(crate::config::META_COLUMNS)
        .chain(source.derived.iter().map(|d| d.name.as_str()))
        .chain(["valid_from", "valid_to"])
}

/// `CREATE VIEW <source>_files AS …` from staging itself, for sessions without a ledger (unit
/// tests): every file that staged at least one row.
pub fn files_view_sql(source: &Source) -> String {
    format!(
        "CREATE VIEW {} AS SELECT DISTINCT extract_date, source_file FROM {}",
        ident(&files_table(source)),
        ident(&source.name)
    )
}

/// `CREATE VIEW <source>_versions AS …` for a source: its versions over all of staging.
pub fn versions_view_sql(source: &Source) -> String {
    versions_view_sql_with(source, None)
}

/// [`versions_view_sql`]; with `valid_to`, a `latest` source's `valid_to` comes from that
/// function of (`extract_date`, `source_file`, `source_position`), the same rule computed
/// without sorting the versions (see [`super::version_index`]).
pub fn versions_view_sql_with(source: &Source, valid_to: Option<&str>) -> String {
    let t = ident(&source.name);
    let body = match valid_to {
        Some(f) if source.versioning == Versioning::Latest => {
            indexed_versions_sql(&with_derived_columns(source, &t), f)
        }
        _ => versions_sql(source, &t, true),
    };
    format!("CREATE VIEW {} AS {body}", ident(&versions_view(source)))
}

/// The versions of a `latest` source over `t` (staged rows, all of a key's versions with them),
/// `valid_to` from the source's version index function `f` (see [`super::version_index`]).
pub fn indexed_versions_sql(t: &str, f: &str) -> String {
    format!(
        "SELECT *, extract_date AS valid_from, \
         {f}(extract_date, source_file, source_position) AS valid_to FROM {t}"
    )
}

/// The versions of a source over `t` (a table with the staging columns), by its `versioning`:
/// the rule written once, for all of staging and for a snapshot with the versions after it.
/// A local refresh computes a `latest` source's `valid_to` over all of staging by one pass in
/// version order instead of this window ([`super::version_index`]; a test compares the two).
/// With `derived`, each row also gets the source's derived columns, computed under the window
/// (so the staging columns they read are not carried through it unless a query wants them);
/// without, `t` may hold only the key and metadata columns (a snapshot's identities).
pub fn versions_sql(source: &Source, t: &str, derived: bool) -> String {
    let with_derived;
    let t = if derived {
        with_derived = with_derived_columns(source, t);
        with_derived.as_str()
    } else {
        t
    };
    let key = key_list(source);
    let order = "extract_date, source_file, source_position";
    let first = ident(&source.key[0]);
    match source.versioning {
        // The next version of the same key, in a window partitioned by a bucket of the key
        // and ordered by key then version: one partition per entity costs several times more
        // (see `crate::warehouse::engine::BUCKETS`).
        Versioning::Latest => {
            let same_key = neighbour_has_key(source, "lead", "=");
            format!(
                "SELECT *, extract_date AS valid_from, \
                 CASE WHEN {same_key} THEN lead(extract_date) OVER w END AS valid_to FROM {t} \
                 WINDOW w AS (PARTITION BY cchc_bucket({first}) ORDER BY {key}, {order})"
            )
        }
        // The first version of each key: in the same bucketed window, a row whose predecessor
        // has the same key (null keys alike, as one entity) is a later version.
        Versioning::FirstSeen => {
            let same_key = neighbour_has_key(source, "lag", "IS NOT DISTINCT FROM");
            format!(
                "SELECT * EXCLUDE (later_version), extract_date AS valid_from, CAST(NULL AS DATE) AS valid_to FROM (\
                 SELECT *, row_number() OVER w > 1 AND {same_key} AS later_version FROM {t} \
                 WINDOW w AS (PARTITION BY cchc_bucket({first}) ORDER BY {key}, {order})) \
                 WHERE NOT later_version"
            )
        }
        Versioning::Snapshot => {
            let mut cols = all_columns(source, "v.");
            if derived {
                for d in &source.derived {
                    cols.push_str(&format!(", v.{}", ident(&d.name)));
                }
            }
            let files = ident(&files_table(source));
            format!(
                "SELECT {cols}, v.extract_date AS valid_from, s.next_day AS valid_to FROM {t} v JOIN (\
                 SELECT extract_date, source_file, \
                 lead(extract_date) OVER (ORDER BY extract_date, source_file) AS next_day \
                 FROM {files}) s \
                 ON v.extract_date = s.extract_date AND v.source_file = s.source_file"
            )
        }
    }
}

/// The versions of a source over a month-end snapshot and the versions staged after it: the
/// rows [`versions_sql`] gives over the union of both tables, without sorting the snapshot.
///
/// For `latest`, every version after the month follows every snapshot row, so the rule over the
/// versions after the month alone gives them their `valid_to`, and a snapshot row's `valid_to`
/// (the extract day of the next version of its entity) is the earliest extract day of its
/// entity after the month (null keys never equal, as in the rule's window). This reads the
/// snapshot once and sorts only the versions after it: a daily run's snapshot is most of the
/// rows. Other versionings apply their rule to the union.
pub fn versions_after_snapshot_sql(source: &Source, input: &SnapshotInput) -> String {
    let (snap, after) = (ident(&input.snapshot), ident(&input.after));
    if source.versioning != Versioning::Latest {
        let union = format!("(SELECT * FROM {snap} UNION ALL SELECT * FROM {after})");
        return versions_sql(source, &union, true);
    }
    let keys = key_list(source);
    format!(
        "SELECT s.*, s.extract_date AS valid_from, n._next_day AS valid_to \
         FROM {} s LEFT JOIN \
         (SELECT {keys}, min(extract_date) AS _next_day FROM {after} GROUP BY {keys}) n \
         ON {} UNION ALL {rest}",
        with_derived_columns(source, &snap),
        same_key(source, "s", "n"),
        rest = versions_sql(source, &after, true)
    )
}

/// `(SELECT *, <derived columns> FROM t)`: the rows of `t` with the source's derived columns, or
/// `t` itself when it has none.
fn with_derived_columns(source: &Source, t: &str) -> String {
    if source.derived.is_empty() {
        return t.to_string();
    }
    let cols = source
        .derived
        .iter()
        .map(|d| format!("{} AS {}", d.sql, ident(&d.name)))
        .collect::<Vec<_>>()
        .join(", ");
    format!("(SELECT *, {cols} FROM {t})")
}

/// `part(k)` for every quoted key column `k` of a source, joined by `sep`.
fn each_key(source: &Source, sep: &str, part: impl Fn(&str) -> String) -> String {
    source
        .key
        .iter()
        .map(|k| part(&ident(k)))
        .collect::<Vec<_>>()
        .join(sep)
}

/// The key columns of a source, quoted and comma-separated.
pub fn key_list(source: &Source) -> String {
    each_key(source, ", ", str::to_string)
}

/// `a.k = b.k` for every key column `k`, joined by `AND` (null keys never equal).
pub fn same_key(source: &Source, a: &str, b: &str) -> String {
    each_key(source, " AND ", |k| format!("{a}.{k} = {b}.{k}"))
}

/// `<f>(k) OVER w <op> k` for every key column `k`, joined by `AND`: whether the row before
/// (`lag`) or after (`lead`) in window `w` has the same key.
fn neighbour_has_key(source: &Source, f: &str, op: &str) -> String {
    each_key(source, " AND ", |k| format!("{f}({k}) OVER w {op} {k}"))
}

/// The staging and metadata columns of a source, quoted, each after `prefix`, comma-separated.
pub fn all_columns(source: &Source, prefix: &str) -> String {
    source
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .chain(crate::config::META_COLUMNS)
        .map(|c| format!("{prefix}{}", ident(c)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PeriodKind;
    use arrow::array::{Date32Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::prelude::SessionContext;
    use std::sync::Arc;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn period(id: &str, start: &str, as_of: &str) -> Period {
        Period {
            id: id.to_string(),
            kind: PeriodKind::Month,
            start: day(start),
            end: day(as_of),
            as_of: day(as_of),
            is_final: true,
        }
    }

    /// The rows of `state_from` over versions with every edge of the interval rule, with the
    /// pre-filter on the as-of days and without it, for all periods and for some.
    #[tokio::test]
    async fn the_filter_on_the_as_of_days_keeps_the_state() {
        let ctx = SessionContext::new();
        let periods = [
            period("2022-01", "2022-01-01", "2022-01-31"),
            period("2022-02", "2022-02-01", "2022-02-28"),
            period("2022-03", "2022-03-01", "2022-03-15"),
        ];
        let refs: Vec<&Period> = periods.iter().collect();
        let batch = crate::warehouse::models::periods_batch(&refs).unwrap();
        let table = crate::warehouse::models::mem_table(batch.schema(), vec![batch]).unwrap();
        ctx.register_table("periods", table).unwrap();
        // (key, valid_from, valid_to): replaced the same day, ending on an as-of day, the day
        // after, current, starting on an as-of day, after every as-of day, between two.
        let rows = [
            ("same_day", "2022-01-10", Some("2022-01-10")),
            ("ends_on_as_of", "2022-01-10", Some("2022-01-31")),
            ("ends_after", "2022-01-10", Some("2022-02-01")),
            ("current", "2022-01-31", None),
            ("from_as_of", "2022-02-28", Some("2022-03-01")),
            ("after_all", "2022-03-16", None),
            ("between", "2022-02-01", Some("2022-02-20")),
            ("long", "2021-12-01", Some("2022-03-15")),
        ];
        let date = |s: &str| crate::base::dates::date_to_days(day(s));
        let versions = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("k", DataType::Utf8, false),
                Field::new("valid_from", DataType::Date32, false),
                Field::new("valid_to", DataType::Date32, true),
            ])),
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(Date32Array::from_iter_values(
                    rows.iter().map(|r| date(r.1)),
                )),
                Arc::new(Date32Array::from_iter(rows.iter().map(|r| r.2.map(date)))),
            ],
        )
        .unwrap();
        let table = crate::warehouse::models::mem_table(versions.schema(), vec![versions]).unwrap();
        ctx.register_table("vers", table).unwrap();
        let state = |ids: Option<&[String]>, days: &BTreeSet<NaiveDate>| {
            let sql = format!(
                "SELECT p.period, v.k {} ORDER BY 1, 2",
                state_from(ids, "vers", days)
            );
            let ctx = ctx.clone();
            async move {
                let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
                arrow::util::pretty::pretty_format_batches(&batches)
                    .unwrap()
                    .to_string()
            }
        };
        let all: BTreeSet<NaiveDate> = periods.iter().map(|p| p.as_of).collect();
        let unfiltered = state(None, &BTreeSet::new()).await;
        assert_eq!(state(None, &all).await, unfiltered);
        for k in ["ends_after", "current", "from_as_of", "long"] {
            assert!(
                unfiltered.contains(k),
                "{k} is in some state:\n{unfiltered}"
            );
        }
        for k in ["same_day", "ends_on_as_of", "after_all", "between"] {
            assert!(!unfiltered.contains(k), "{k} is in no state:\n{unfiltered}");
        }
        let ids = ["2022-02".to_string()];
        let feb: BTreeSet<NaiveDate> = [day("2022-02-28")].into();
        assert_eq!(
            state(Some(&ids), &feb).await,
            state(Some(&ids), &BTreeSet::new()).await
        );
    }
}
