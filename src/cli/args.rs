//! The command line's arguments (clap types only; what they do is in `super`).

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use crate::config;
use crate::sql::OutputFormat;

/// Key used by `cchc demo` only, on synthetic data; real runs must set CCHC_PII_KEY.
pub const DEMO_PII_KEY: &str = "cchc-demo-key-not-for-real-data";

#[derive(Parser, Debug)]
#[command(
    name = "cchc",
    version,
    about = "Administrative-reform (CCHC) extracts → Parquet staging, checks and marts"
)]
pub struct Cli {
    /// Environment config file.
    #[arg(long, global = true, env = "CCHC_CONFIG", default_value = config::DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Landing area (local path or file:// URL); overrides the config file.
    #[arg(long, global = true, env = "CCHC_LANDING")]
    pub landing: Option<String>,
    /// Warehouse root (local path or file:// URL); overrides the config file.
    #[arg(long, global = true, env = "CCHC_WAREHOUSE")]
    pub warehouse: Option<String>,
    /// units.csv (local path or file:// URL); overrides the config file.
    #[arg(long, global = true, env = "CCHC_UNITS")]
    pub units: Option<String>,
    /// Where marts, checks and SQL run: `local` or `ballista://HOST:PORT`; overrides the
    /// config's `engine`.
    #[arg(long, global = true, env = "CCHC_ENGINE", value_parser = engine)]
    pub engine: Option<String>,
    /// Memory the query engine may hold before it spills (`512MiB`, `1GiB`); overrides the
    /// config's `memory_limit` (default 1 GiB).
    #[arg(long, global = true, env = "CCHC_MEMORY_LIMIT", value_parser = size)]
    pub memory_limit: Option<u64>,
    /// Marts computed at once (1 to 16); overrides the config's `threads` (default: 2 from all
    /// of staging, 1 from month-end snapshots).
    #[arg(long, global = true, env = "CCHC_THREADS", value_parser = threads)]
    pub threads: Option<usize>,
    /// Folder of the engine's spill files; overrides the config's `temp_dir`.
    #[arg(long, global = true, env = "CCHC_TEMP_DIR")]
    pub temp_dir: Option<String>,
    /// Only errors on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Print each mart's executed plan with every operator's rows, time, memory and spills
    /// (stderr), after computing it: where a slow model spends its time.
    #[arg(long, global = true)]
    pub explain_analyze: bool,
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check the configuration and pipeline YAML; report every problem.
    Validate,
    /// Ingest one extract day of every source.
    Run {
        /// Extract day (YYYY-MM-DD).
        #[arg(long, value_parser = day)]
        date: NaiveDate,
    },
    /// Ingest the days of a range that are new, failed or whose landing files changed (by
    /// checksum); skip the days already ingested from the same files. Marts and checks are
    /// recomputed once at the end.
    Backfill {
        #[arg(long, value_parser = day)]
        from: NaiveDate,
        #[arg(long, value_parser = day)]
        to: NaiveDate,
        /// `all`: run every day of the range, changed or not.
        #[arg(long, value_enum, default_value = "changed")]
        rerun: Rerun,
    },
    /// The ledger: per source and day, its state (ingested, changed, pending, missing), files,
    /// counts, run and time; and the periods whose figures are stale.
    Status {
        #[arg(long, value_parser = day)]
        from: Option<NaiveDate>,
        #[arg(long, value_parser = day)]
        to: Option<NaiveDate>,
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Recompute the marts and target results of the periods whose inputs changed (all with
    /// `--full`), without ingesting.
    Refresh {
        #[arg(long)]
        full: bool,
    },
    /// Run a SQL query over staging, state views, marts and target results.
    Sql {
        query: String,
        #[arg(long, value_enum, default_value = "table")]
        format: OutputFormat,
    },
    /// The yearly ranking of departments and districts: `par_scores`, `par_ranking` and the
    /// report (HTML and Excel) under `<warehouse>/reports/`.
    Rank {
        #[arg(long)]
        year: i32,
        /// Also write the report files into this local folder.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// A read-only SQL endpoint over the warehouse for BI tools and notebooks (PostgreSQL wire
    /// protocol): the tables and views of `cchc sql`, always the newest published version.
    Serve {
        #[command(subcommand)]
        action: Option<ServeAction>,
        /// ADDR:PORT; overrides the config's `serve.listen` (default 127.0.0.1:5433).
        #[arg(long, env = "CCHC_LISTEN")]
        listen: Option<String>,
        /// Check the settings (address, users file, TLS files) and exit.
        #[arg(long)]
        check: bool,
    },
    /// Interactive SQL over the warehouse (history, multi-line statements, `\d`).
    Shell,
    /// The processes of a Ballista cluster that runs marts, checks and SQL (`engine:
    /// ballista://HOST:PORT`); each reads the warehouse of its own config.
    Cluster {
        #[command(subcommand)]
        role: ClusterRole,
    },
    /// Run the pipeline's tests: YAML unit tests and .slt files in `<pipelines>/tests/`.
    Test {
        /// Only the files or tests whose name contains this text.
        filter: Option<String>,
    },
    /// Write the data dictionary (Markdown) of staging, models, marts and targets.
    Docs {
        /// Output file; default `<warehouse>/docs/data_dictionary.md`.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Change the pseudonymisation key of a warehouse: refused, with the reason and what to do
    /// instead (tokens cannot be converted without the clear values, which are not kept).
    Rekey,
    /// Write a synthetic landing area.
    Gen(GenArgs),
    /// Generate a province-quarter of synthetic extracts and ingest every day of it.
    Demo {
        #[arg(long, value_parser = day, default_value = "2022-01-01")]
        from: NaiveDate,
        #[arg(long, value_parser = day, default_value = "2022-03-31")]
        to: NaiveDate,
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        #[arg(long, default_value_t = 0.001)]
        defects: f64,
    },
}

#[derive(Subcommand, Debug)]
pub enum ServeAction {
    /// Add (or replace) a user of the SQL endpoint in the users file: a SCRAM-SHA-256 verifier of
    /// a password read without echo, or from stdin when stdin is not a terminal.
    AddUser { name: String },
}

#[derive(Subcommand, Debug)]
pub enum ClusterRole {
    /// The scheduler: plans jobs into stages and hands tasks to executors.
    Scheduler {
        /// ADDR:PORT (port 0: any free one, printed).
        #[arg(long, default_value = crate::cluster::DEFAULT_SCHEDULER)]
        listen: String,
        /// Seconds without a heartbeat after which an executor is taken as dead and its tasks
        /// run elsewhere (at least three of the executors' heartbeat intervals).
        #[arg(long, default_value_t = crate::cluster::DEFAULT_EXECUTOR_TIMEOUT_S)]
        executor_timeout: u64,
    },
    /// An executor: runs tasks of the scheduler's jobs.
    Executor {
        /// HOST:PORT of the scheduler.
        #[arg(long)]
        scheduler: String,
        /// Tasks run at once (default: one per core).
        #[arg(long, default_value_t = 0)]
        slots: usize,
        /// ADDR:PORT of its data service (port 0: any free one).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// Folder of its shuffle and spill files.
        #[arg(long)]
        work_dir: PathBuf,
        /// Seconds between its heartbeats to the scheduler.
        #[arg(long, default_value_t = crate::cluster::DEFAULT_HEARTBEAT_S)]
        heartbeat: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Rerun {
    /// Days not ingested yet, failed, or whose landing files changed.
    Changed,
    /// Every day of the range.
    All,
}

#[derive(Args, Debug)]
pub struct GenArgs {
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_parser = day)]
    pub from: NaiveDate,
    #[arg(long, value_parser = day)]
    pub to: NaiveDate,
    /// 1.0 ≈ a province: ~1,400 dossiers received a working day, ~1.5 M versions a year.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Share of records to corrupt with the contract's defects (0 = a clean landing).
    #[arg(long, default_value_t = 0.0)]
    pub defects: f64,
    /// Reorganise the units on this day, as the 2025 reform did: every district ceases and
    /// each district's communes merge two by two; writes units.csv with validity columns and
    /// reference/unit_changes.csv, and keeps syncing older dossiers under their old codes.
    #[arg(long, value_parser = day, value_name = "DATE")]
    pub reorganise: Option<NaiveDate>,
}

/// A day as `YYYY-MM-DD` with a four-digit year (chrono alone reads `22-01-03` as the year 22).
pub fn day(s: &str) -> Result<NaiveDate, String> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return Err(format!(
            "`{s}` is not a day as YYYY-MM-DD (a four-digit year)"
        ));
    }
    s.parse()
        .map_err(|_| format!("`{s}` is not a date (no such day)"))
}

fn size(text: &str) -> Result<u64, String> {
    config::memory_size(text)
}

fn threads(text: &str) -> Result<usize, String> {
    config::parse_threads(text)
}

fn engine(text: &str) -> Result<String, String> {
    config::parse_engine(text).map(|_| text.to_string())
}
