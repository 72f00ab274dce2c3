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

use crate::config::{Source, Versioning};

use crate::base::text::ident;
use crate::config::sources::{files_table, state_view, versions_view};

/// Columns of the `periods` table, in order.
pub const PERIOD_COLUMNS: [&str; 6] = [
    "period",
    "period_kind",
    "period_start",
    "period_end",
    "as_of",
    "final",
];

/// `CREATE VIEW <source>_state AS …`: the state as of each period's as-of day.
pub fn state_view_sql(source: &Source) -> String {
    let p = PERIOD_COLUMNS
        .iter()
        .map(|c| format!("p.{}", ident(c)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "CREATE VIEW {} AS SELECT {p}, v.* FROM periods p JOIN {} v \
         ON v.valid_from <= p.as_of AND (v.valid_to IS NULL OR v.valid_to > p.as_of)",
        ident(&state_view(source)),
        ident(&versions_view(source))
    )
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

/// `CREATE VIEW <source>_versions AS …` for a source.
pub fn versions_view_sql(source: &Source) -> String {
    let t = ident(&source.name);
    let key = source
        .key
        .iter()
        .map(|k| ident(k))
        .collect::<Vec<_>>()
        .join(", ");
    let order = "extract_date, source_file, source_position";
    let body = match source.versioning {
        Versioning::Latest => format!(
            "SELECT *, extract_date AS valid_from, \
             lead(extract_date) OVER (PARTITION BY {key} ORDER BY {order}) AS valid_to FROM {t}"
        ),
        Versioning::FirstSeen => {
            let cols = all_columns(source, "");
            format!(
                "SELECT {cols}, extract_date AS valid_from, CAST(NULL AS DATE) AS valid_to FROM (\
                 SELECT *, row_number() OVER (PARTITION BY {key} ORDER BY {order}) AS version_rank FROM {t}) \
                 WHERE version_rank = 1"
            )
        }
        Versioning::Snapshot => {
            let cols = all_columns(source, "v.");
            let files = ident(&files_table(source));
            format!(
                "SELECT {cols}, v.extract_date AS valid_from, s.next_day AS valid_to FROM {t} v JOIN (\
                 SELECT extract_date, source_file, \
                 lead(extract_date) OVER (ORDER BY extract_date, source_file) AS next_day \
                 FROM {files}) s \
                 ON v.extract_date = s.extract_date AND v.source_file = s.source_file"
            )
        }
    };
    format!("CREATE VIEW {} AS {body}", ident(&versions_view(source)))
}

fn all_columns(source: &Source, prefix: &str) -> String {
    source
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .chain(crate::config::META_COLUMNS)
        .map(|c| format!("{prefix}{}", ident(c)))
        .collect::<Vec<_>>()
        .join(", ")
}
