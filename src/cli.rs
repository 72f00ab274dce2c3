//! The command line. Each command returns a typed result; `main` only maps it to an exit code
//! (0 success, 1 a target failed, 2 bad configuration or usage, 3 runtime failure).

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{Datelike, NaiveDate};
use clap::{Args, Parser, Subcommand};

use crate::config::{self, Config, Overrides};
use crate::error::{Error, Result};
use crate::run::{self, RunRecord};
use crate::sql::OutputFormat;
use crate::synth::{self, GenOptions};

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
    /// Only errors on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
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
        #[arg(long)]
        date: NaiveDate,
    },
    /// Ingest the days of a range that are new, failed or whose landing files changed (by
    /// checksum); skip the days already ingested from the same files. Marts and checks are
    /// recomputed once at the end.
    Backfill {
        #[arg(long)]
        from: NaiveDate,
        #[arg(long)]
        to: NaiveDate,
        /// `all`: run every day of the range, changed or not.
        #[arg(long, value_enum, default_value = "changed")]
        rerun: Rerun,
    },
    /// The ledger: per source and day, its state (ingested, changed, pending, missing), files,
    /// counts, run and time; and the periods whose figures are stale.
    Status {
        #[arg(long)]
        from: Option<NaiveDate>,
        #[arg(long)]
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
    /// Interactive SQL over the warehouse (history, multi-line statements, `\d`).
    Shell,
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
    /// Write a synthetic landing area.
    Gen(GenArgs),
    /// Generate a province-quarter of synthetic extracts and ingest every day of it.
    Demo {
        #[arg(long, default_value = "2022-01-01")]
        from: NaiveDate,
        #[arg(long, default_value = "2022-03-31")]
        to: NaiveDate,
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        #[arg(long, default_value_t = 0.001)]
        defects: f64,
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
    #[arg(long)]
    pub from: NaiveDate,
    #[arg(long)]
    pub to: NaiveDate,
    /// 1.0 ≈ a province: ~1,400 dossiers received a working day, ~1.5 M versions a year.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Share of records to corrupt with the contract's defects (0 = a clean landing).
    #[arg(long, default_value_t = 0.0)]
    pub defects: f64,
}

fn overrides(cli: &Cli) -> Overrides {
    Overrides {
        landing: cli.landing.clone(),
        warehouse: cli.warehouse.clone(),
        units: cli.units.clone(),
    }
}

fn load(cli: &Cli) -> Result<Config> {
    config::load(&cli.config, &overrides(cli))
}

/// Load the configuration and plan every model's SQL (the checks a run needs before it starts).
fn load_checked(cli: &Cli) -> Result<Config> {
    let cfg = load(cli)?;
    let diags = runtime()?.block_on(crate::models::check_sql(&cfg));
    if diags.is_empty() {
        Ok(cfg)
    } else {
        Err(Error::Config(diags))
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the runtime", e))
}

/// Logging. On a terminal (text format, not `--quiet`): warnings and errors as lines, and progress
/// bars for long runs (per source and day, records/s). Otherwise (a scheduler, a pipe): structured
/// lines at `info` (one per source-day with its counts and rate, one per stage), as text or JSON
/// (`--log-format json`). `--quiet`: errors only. `CCHC_LOG` (an `EnvFilter`) overrides the level.
fn init_tracing(cli: &Cli) {
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    let terminal = std::io::stderr().is_terminal();
    let progress = terminal && !cli.quiet && cli.log_format == LogFormat::Text;
    let default = match (cli.quiet, terminal) {
        (true, _) => "error",
        (false, true) => "warn",
        (false, false) => "info",
    };
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("CCHC_LOG").unwrap_or_else(|_| default.into())
    };
    let _ = if progress {
        let bars = tracing_indicatif::IndicatifLayer::new();
        let lines = tracing_subscriber::fmt::layer()
            .with_writer(bars.get_stderr_writer())
            .with_filter(filter());
        let only_progress = tracing_subscriber::filter::Targets::new()
            .with_target(crate::run::PROGRESS, tracing::Level::INFO);
        tracing_subscriber::registry()
            .with(lines)
            .with(bars.with_filter(only_progress))
            .try_init()
    } else {
        let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
        match cli.log_format {
            LogFormat::Json => tracing_subscriber::registry()
                .with(lines.json().with_filter(filter()))
                .try_init(),
            LogFormat::Text => tracing_subscriber::registry()
                .with(lines.with_filter(filter()))
                .try_init(),
        }
    };
}

/// `cchc rank`: compute, write and publish the ranking of `year`, under the warehouse lock.
fn rank(cli: &Cli, cfg: &Config, year: i32, out: Option<&std::path::Path>) -> Result<u8> {
    let rt = runtime()?;
    let units = run::read_units(&cfg.units, &rt)?;
    let wh = crate::storage::Location::open(&cfg.warehouse, true)?;
    let landing = crate::storage::Location::open(&cfg.landing, false)?;
    let run_id = run::new_run_id();
    let outcome = rt.block_on(async {
        let lock = crate::lock::Lock::acquire(&wh, &run_id, "rank").await?;
        let r = match crate::publish::vacuum(&wh).await {
            Ok(_) => crate::ranking::rank(cfg, &wh, &landing, &units, year, &run_id).await,
            Err(e) => Err(e),
        };
        crate::publish::vacuum(&wh).await?;
        lock.release().await?;
        r
    })?;
    for w in &outcome.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(dir) = out {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        for (name, bytes) in [
            (format!("par_{year}.html"), outcome.html.as_bytes()),
            (format!("par_{year}.xlsx"), &outcome.xlsx[..]),
        ] {
            let p = dir.join(name);
            std::fs::write(&p, bytes)
                .map_err(|e| Error::io(format!("cannot write {}", p.display()), e))?;
        }
    }
    if !cli.quiet {
        print!("{}", rank_summary(cfg, &outcome, &units, year));
        let wh_name = cfg.warehouse.trim_end_matches('/');
        println!("report: {wh_name}/reports/par_{year}.html, {wh_name}/reports/par_{year}.xlsx");
    }
    Ok(0)
}

/// The ranking per tier for the terminal: rank, total, band, unit, flags.
fn rank_summary(
    cfg: &Config,
    o: &crate::ranking::RankOutcome,
    units: &crate::ingest::units::Units,
    year: i32,
) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let as_of = o.results.as_of.map(|d| d.to_string()).unwrap_or_default();
    let _ = writeln!(
        s,
        "ranking {year} (figures as of {as_of}{})",
        if o.results.is_final {
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
        for r in o.ranking.ranking.iter().filter(|r| r.tier == tier.tier) {
            let name = crate::ranking::unit_name(units, &r.unit_code);
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

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    init_tracing(&cli);
    match dispatch(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e @ Error::Config(_)) => {
            // Each diagnostic line already says `error[code]`.
            eprintln!("{e}");
            ExitCode::from(e.exit_code())
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn summary(r: &RunRecord) -> String {
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

fn totals_line(r: &RunRecord) -> String {
    let t = &r.totals;
    format!(
        "{} day(s), {} file(s), {:.1} MB: read {} = staged {} + quarantined {}; {} unreadable file(s); {:.2} s\nrun record: {}/runs/{}.json",
        r.dates.len(), t.files, t.bytes as f64 / 1e6, t.read, t.staged, t.quarantined, t.unreadable_files,
        r.duration_ms as f64 / 1000.0, r.warehouse.trim_end_matches('/'), r.run_id
    )
}

fn days_between(from: NaiveDate, to: NaiveDate) -> Result<Vec<NaiveDate>> {
    if to < from {
        return Err(Error::Usage(format!("--to {to} is before --from {from}")));
    }
    Ok(from.iter_days().take_while(|d| *d <= to).collect())
}

fn ingest(
    cli: &Cli,
    cfg: &Config,
    command: &str,
    dates: Vec<NaiveDate>,
    key: &[u8],
    per_day: bool,
    skip_unchanged: bool,
) -> Result<u8> {
    let (record, rows, err) = run::run_days(cfg, command, dates, key, skip_unchanged);
    if let Some(e) = err {
        return Err(e);
    }
    if !cli.quiet {
        if per_day {
            print!("{}", summary(&record));
        }
        if !record.skipped_dates.is_empty() {
            println!(
                "skipped {} day(s) already ingested from the same files (--rerun all to force)",
                record.skipped_dates.len()
            );
        }
        println!("{}", totals_line(&record));
        if record.periods.is_empty() {
            println!("marts: no period changed");
        } else {
            println!(
                "marts and checks recomputed for {} period(s): {}",
                record.periods.len(),
                record
                    .periods
                    .iter()
                    .map(|p| format!(
                        "{}{}",
                        p.period,
                        if p.is_final { "" } else { " (provisional)" }
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            print!("{}", crate::checks::summary(cfg, &rows));
        }
        let errors: Vec<String> = record
            .missing
            .iter()
            .filter(|m| m.severity == "error")
            .map(|m| format!("{} {}", m.source, m.day))
            .collect();
        if !errors.is_empty() {
            println!(
                "no file for {} source-day(s) whose source requires one (missing_day: error): {}: exit code 1",
                errors.len(),
                errors.join(", ")
            );
        }
        let t = &record.targets;
        if t.failing_error > 0 {
            println!(
                "{} target result(s) of severity error fail: exit code 1",
                t.failing_error
            );
        }
    }
    Ok(record.exit_code)
}

fn dispatch(cli: &Cli) -> Result<u8> {
    match &cli.command {
        Command::Validate => {
            let cfg = load_checked(cli)?;
            if !cli.quiet {
                let names = |v: Vec<&str>| v.join(", ");
                println!(
                    "{}: ok ({} sources: {}; {} models: {}; {} plan(s): {})",
                    cli.config.display(),
                    cfg.sources.len(),
                    names(cfg.sources.iter().map(|s| s.name.as_str()).collect()),
                    cfg.models.len(),
                    names(cfg.models.iter().map(|m| m.name.as_str()).collect()),
                    cfg.plans.len(),
                    names(cfg.plans.iter().map(|p| p.file.as_str()).collect()),
                );
                if !cfg.schemes.is_empty() {
                    println!(
                        "ranking scheme(s): {}",
                        names(cfg.schemes.iter().map(|s| s.file.as_str()).collect())
                    );
                }
            }
            // The manual inputs of each scheme's year: present and well-formed, or reported.
            let rt = runtime()?;
            if let Ok(landing) = crate::storage::Location::open(&cfg.landing, false) {
                for scheme in &cfg.schemes {
                    let inputs =
                        rt.block_on(crate::ranking::read_inputs(scheme, scheme.year, &landing))?;
                    for i in &scheme.inputs {
                        if inputs.get(&i.name).is_some_and(|t| t.is_none()) {
                            eprintln!(
                                "note: ranking {}: input `{}` ({}/reference/{}) is absent; `cchc rank` would score 0 there for every unit, flagged",
                                scheme.year,
                                i.name,
                                landing.display,
                                scheme.input_file(i, scheme.year)
                            );
                        }
                    }
                }
            } else {
                eprintln!(
                    "note: landing area {} not found: the ranking input files were not checked",
                    cfg.landing
                );
            }
            Ok(0)
        }
        Command::Rank { year, out } => {
            let cfg = load_checked(cli)?;
            rank(cli, &cfg, *year, out.as_deref())
        }
        Command::Run { date } => {
            let cfg = load_checked(cli)?;
            let key = run::pii_key(&cfg)?;
            ingest(
                cli,
                &cfg,
                &format!("run --date {date}"),
                vec![*date],
                &key,
                true,
                false,
            )
        }
        Command::Backfill { from, to, rerun } => {
            let cfg = load_checked(cli)?;
            let key = run::pii_key(&cfg)?;
            let dates = days_between(*from, *to)?;
            ingest(
                cli,
                &cfg,
                &format!("backfill --from {from} --to {to}"),
                dates,
                &key,
                false,
                *rerun == Rerun::Changed,
            )
        }
        Command::Status { from, to, json } => {
            let cfg = load(cli)?;
            let rt = runtime()?;
            let out = rt.block_on(crate::status::status(&cfg, *from, *to, *json))?;
            print!("{out}");
            Ok(0)
        }
        Command::Sql { query, format } => {
            let cfg = load(cli)?;
            let rt = runtime()?;
            let units = run::read_units(&cfg.units, &rt).ok();
            let out = rt.block_on(crate::sql::query_warehouse(
                &cfg,
                units.as_ref(),
                query,
                *format,
            ))?;
            println!("{}", out.trim_end());
            Ok(0)
        }
        Command::Refresh { full } => {
            let cfg = load_checked(cli)?;
            let rt = runtime()?;
            let units = run::read_units(&cfg.units, &rt)?;
            let wh = crate::storage::Location::open(&cfg.warehouse, true)?;
            let t0 = std::time::Instant::now();
            let run_id = run::new_run_id();
            let r = rt.block_on(async {
                let lock = crate::lock::Lock::acquire(&wh, &run_id, "refresh").await?;
                let r = match crate::publish::vacuum(&wh).await {
                    Ok(_) => run::refresh_marts(&cfg, &wh, &units, &run_id, *full).await,
                    Err(e) => Err(e),
                };
                // The versions it superseded.
                crate::publish::vacuum(&wh).await?;
                lock.release().await?;
                r
            })?;
            if !cli.quiet {
                println!(
                    "marts and checks recomputed for {} period(s) in {:.2} s",
                    r.periods.len(),
                    t0.elapsed().as_secs_f64()
                );
                print!("{}", crate::checks::summary(&cfg, &r.rows));
            }
            Ok(if crate::checks::any_error_fails(&r.rows) {
                1
            } else {
                0
            })
        }
        Command::Shell => {
            let cfg = load(cli)?;
            let rt = runtime()?;
            let units = run::read_units(&cfg.units, &rt).ok();
            rt.block_on(async {
                let ctx = crate::sql::session(&cfg, units.as_ref()).await?;
                crate::shell::run(&ctx).await
            })?;
            Ok(0)
        }
        Command::Test { filter } => {
            let cfg = load_checked(cli)?;
            let dir = cfg.pipelines_dir.join("tests");
            let report =
                runtime()?.block_on(crate::testing::run_all(&cfg, &dir, filter.as_deref()))?;
            for (name, msg) in &report.failed {
                println!("FAIL {name}\n{}", indent(msg));
            }
            if !cli.quiet {
                for name in &report.passed {
                    println!("ok   {name}");
                }
            }
            println!(
                "{} passed, {} failed",
                report.passed.len(),
                report.failed.len()
            );
            Ok(if report.failed.is_empty() { 0 } else { 1 })
        }
        Command::Docs { out } => {
            let cfg = load_checked(cli)?;
            let text = crate::docs::render(&cfg);
            match out {
                Some(path) => {
                    std::fs::write(path, &text)
                        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
                    if !cli.quiet {
                        println!("wrote {}", path.display());
                    }
                }
                None => {
                    let wh = crate::storage::Location::open(&cfg.warehouse, true)?;
                    runtime()?
                        .block_on(wh.put(&wh.path("docs/data_dictionary.md"), text.into()))?;
                    if !cli.quiet {
                        println!(
                            "wrote {}/docs/data_dictionary.md",
                            cfg.warehouse.trim_end_matches('/')
                        );
                    }
                }
            }
            Ok(0)
        }
        Command::Gen(a) => {
            let o = GenOptions {
                out: a.out.clone(),
                from: a.from,
                to: a.to,
                scale: a.scale,
                seed: a.seed,
                defects: a.defects,
            };
            let s = synth::generate(&o)?;
            if !cli.quiet {
                println!("{}", gen_line(&o, &s));
            }
            Ok(0)
        }
        Command::Demo {
            from,
            to,
            scale,
            defects,
        } => {
            let cfg = load_checked(cli)?;
            let o = GenOptions {
                out: PathBuf::from(&cfg.landing),
                from: *from,
                to: *to,
                scale: *scale,
                seed: 42,
                defects: *defects,
            };
            let t0 = std::time::Instant::now();
            let s = synth::generate(&o)?;
            println!(
                "generated in {:.2} s: {}",
                t0.elapsed().as_secs_f64(),
                gen_line(&o, &s)
            );
            let key = match run::pii_key(&cfg) {
                Ok(k) => k,
                Err(_) => {
                    println!("note: {} is not set; the demo pseudonymises with its built-in key (synthetic data only)", cfg.pii_key_env);
                    DEMO_PII_KEY.as_bytes().to_vec()
                }
            };
            let code = ingest(
                cli,
                &cfg,
                "demo",
                days_between(*from, *to)?,
                &key,
                false,
                false,
            )?;
            let exe = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "cchc".into());
            if code == 1 {
                println!(
                    "(the demo exits 0; `cchc run` exits 1 when a target of severity error fails)"
                );
            }
            if cfg.scheme_for(to.year()).is_some() {
                println!();
                rank(cli, &cfg, to.year(), None)?;
            }
            println!(
                "try: {exe} sql \"SELECT target_id, value, status FROM target_results WHERE unit_code = 'ALL' AND period = '2022'\"\n     {exe} shell"
            );
            Ok(0)
        }
    }
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("     {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn gen_line(o: &GenOptions, s: &synth::GenSummary) -> String {
    format!(
        "{} day(s) into {}: {} dossiers in {} versions, {} documents in {} versions, {} signing events; {} files, {:.1} MB",
        s.days, o.out.display(), s.dossiers, s.dossier_versions, s.documents, s.document_versions, s.signature_events,
        s.files, s.bytes as f64 / 1e6
    )
}
