//! The bottom layer: what every stage uses and that knows nothing of the pipeline. Errors,
//! crash points for the tests, text rules (NFC, SQL identifiers), day conversions and their serde,
//! byte sizes.

pub mod dates;
pub mod error;
pub mod failpoint;
pub mod interrupt;
pub mod size;
pub mod text;

/// The tracing target of the spans that draw progress bars on a terminal.
pub const PROGRESS: &str = "cchc::progress";
