//! The table names a source takes in a query session besides its own: its versions view, its
//! state view and the table of its readable files (the SQL of each is in
//! `crate::warehouse::state`). The config reserves them so that no model can take one.

use super::Source;

/// Columns of the `periods` table, in order (the state views start with them).
pub const PERIOD_COLUMNS: [&str; 6] = [
    "period",
    "period_kind",
    "period_start",
    "period_end",
    "as_of",
    "final",
];

/// Name of the versions view of a source.
pub fn versions_view(source: &Source) -> String {
    format!("{}_versions", source.name)
}

/// Name of the state view of a source.
pub fn state_view(source: &Source) -> String {
    format!("{}_state", source.name)
}

/// Name of the table of a snapshot source's readable files.
pub fn files_table(source: &Source) -> String {
    format!("{}_files", source.name)
}

/// Table names a source takes besides its own.
pub fn reserved_names(source: &Source) -> [String; 3] {
    [
        versions_view(source),
        state_view(source),
        files_table(source),
    ]
}
