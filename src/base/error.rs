//! One error type for the engine, split by fault so the binary can map each kind to an exit code
//! (DESIGN.md: 2 = bad configuration or usage, 3 = runtime failure). Bad *records* are not errors:
//! they are data and go to quarantine.

use std::fmt;

/// A configuration problem with a stable code and a place in a file, so a user can jump to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Stable code, e.g. `C001`; listed in README.md.
    pub code: &'static str,
    pub file: String,
    /// 1-based; 0 when the problem is about the file as a whole.
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: error[{}]: {}",
                self.file, self.line, self.column, self.code, self.message
            )
        } else {
            write!(f, "{}: error[{}]: {}", self.file, self.code, self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration or pipeline YAML is invalid: every problem found, not just the first.
    #[error("{}", render_diagnostics(.0))]
    Config(Vec<Diagnostic>),
    /// The command line or environment asks for something impossible.
    #[error("{0}")]
    Usage(String),
    /// A SQL statement or plan failed.
    #[error("query failed: {0}")]
    Plan(String),
    /// Reading or writing the landing area or the warehouse failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Another run holds the warehouse lock.
    #[error("{0}")]
    Locked(String),
    /// A signal asked the command to stop (SIGINT: exit 130; SIGTERM: exit 3).
    #[error("interrupted by {0}: stopped before the next step")]
    Interrupted(&'static str),
    /// A bug: an invariant of the engine does not hold.
    #[error("internal error (a bug): {0}")]
    Internal(String),
}

fn render_diagnostics(d: &[Diagnostic]) -> String {
    let mut s = String::new();
    for (i, diag) in d.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        s.push_str(&diag.to_string());
    }
    s.push_str(&format!(
        "\n{} configuration problem{} found",
        d.len(),
        if d.len() == 1 { "" } else { "s" }
    ));
    s
}

impl Error {
    pub fn io(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Io {
            context: context.into(),
            source: Box::new(source),
        }
    }

    /// Exit code of the process for this error (DESIGN.md, "Exit codes").
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) | Error::Usage(_) => 2,
            Error::Interrupted("SIGINT") => 130,
            Error::Plan(_)
            | Error::Io { .. }
            | Error::Internal(_)
            | Error::Locked(_)
            | Error::Interrupted(_) => 3,
        }
    }
}

impl From<datafusion::error::DataFusionError> for Error {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        Error::Plan(e.to_string())
    }
}

impl From<object_store::Error> for Error {
    fn from(e: object_store::Error) -> Self {
        Error::io("object store", e)
    }
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Error::Internal(format!("arrow: {e}"))
    }
}

impl From<parquet::errors::ParquetError> for Error {
    fn from(e: parquet::errors::ParquetError) -> Self {
        Error::Internal(format!("parquet: {e}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
