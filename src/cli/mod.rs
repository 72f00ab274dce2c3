//! The command line: parse, set up logging, dispatch. Each command returns a typed result; `main`
//! only maps it to an exit code (0 success, 1 a target failed, 2 bad configuration or usage, 3
//! runtime failure). What a command prints is made in `crate::report::terminal`.

pub mod args;
pub mod logging;

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{Datelike, NaiveDate};
use clap::Parser;

use crate::base::error::{Error, Result};
use crate::config::{self, Config, Overrides};
use crate::ingest::pseudonymise::key_from_env;
use crate::report::terminal;
use crate::run::{self, runtime};
// The most days one command takes (ten years): a bigger range is a typo, and would list and hold
// millions of source-days.
use crate::status::MAX_DAYS;
use crate::store::location::{read_units, Location};
use crate::store::lock::Writer;
use crate::synth::{self, GenOptions};
use crate::warehouse::refresh::refresh_marts;
pub use args::{Cli, ClusterRole, Command, GenArgs, LogFormat, Rerun, ServeAction, DEMO_PII_KEY};

fn overrides(cli: &Cli) -> Overrides {
    Overrides {
        landing: cli.landing.clone(),
        warehouse: cli.warehouse.clone(),
        units: cli.units.clone(),
        memory_limit: cli.memory_limit,
        temp_dir: cli.temp_dir.clone(),
        threads: cli.threads,
        engine: cli
            .engine
            .as_deref()
            .map(|e| config::parse_engine(e).unwrap_or_default()),
        explain_analyze: cli.explain_analyze,
    }
}

/// Load the configuration; a warehouse placed where it would damage the landing or the disk is
/// refused here, before any command writes.
fn load(cli: &Cli) -> Result<Config> {
    let cfg = config::load(&cli.config, &overrides(cli))?;
    crate::store::location::check_locations(&cfg.landing, &cfg.warehouse)?;
    Ok(cfg)
}

/// Load the configuration and plan every model's SQL (the checks a run needs before it starts).
fn load_checked(cli: &Cli) -> Result<Config> {
    let cfg = load(cli)?;
    let diags = runtime()?.block_on(crate::warehouse::validate::check_sql(&cfg));
    if diags.is_empty() {
        Ok(cfg)
    } else {
        Err(Error::Config(diags))
    }
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
    logging::init(&cli);
    if matches!(
        cli.command,
        Command::Run { .. }
            | Command::Backfill { .. }
            | Command::Refresh { .. }
            | Command::Rank { .. }
            | Command::Demo { .. }
    ) {
        // Writers stop between steps on SIGTERM/SIGINT, write their run record and release the
        // lock (see `crate::base::interrupt`).
        crate::base::interrupt::install();
    }
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

fn days_between(from: NaiveDate, to: NaiveDate) -> Result<Vec<NaiveDate>> {
    if to < from {
        return Err(Error::Usage(format!("--to {to} is before --from {from}")));
    }
    let n = (to - from).num_days() + 1;
    if n > MAX_DAYS {
        return Err(Error::Usage(format!(
            "--from {from} --to {to} spans {n} days; a command takes at most {MAX_DAYS} (ten years): split the range"
        )));
    }
    Ok(from.iter_days().take_while(|d| *d <= to).collect())
}

/// The largest `--scale` of the generator: 20 provinces (~30 M dossier versions a year).
pub const MAX_SCALE: f64 = 20.0;

fn check_scale(scale: f64) -> Result<()> {
    if scale.is_finite() && scale > 0.0 && scale <= MAX_SCALE {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "--scale {scale}: give a number above 0 and at most {MAX_SCALE} (1 = one province)"
        )))
    }
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
            print!("{}", terminal::source_days(&record));
        }
        if !record.skipped_dates.is_empty() {
            println!(
                "skipped {} day(s) already ingested from the same files (--rerun all to force)",
                record.skipped_dates.len()
            );
        }
        println!("{}", terminal::totals(&record));
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
            print!("{}", terminal::targets(cfg, &rows));
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
            let rt = runtime()?;
            let landing = Location::open(&cfg.landing, false);
            // The units and their changes (units.csv, unit_changes.csv beside it): a bad file
            // is a configuration error; an absent one is reported (the landing may not exist
            // where the config is validated).
            match rt.block_on(read_units(&cfg.units)) {
                Ok(units) => {
                    if !units.changes.is_empty() && !cli.quiet {
                        println!(
                            "units: {} rows, {} unit changes",
                            units.rows.len(),
                            units.changes.len()
                        );
                    }
                }
                Err(e @ Error::Config(_)) => return Err(e),
                // Without a landing area its note below says enough.
                Err(e) if landing.is_ok() => {
                    eprintln!("note: units were not checked: {e}")
                }
                Err(_) => {}
            }
            // The manual inputs of each scheme's year: present and well-formed, or reported.
            if let Ok(landing) = landing {
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
            crate::rank::rank(&cfg, *year, out.as_deref(), cli.quiet)
        }
        Command::Run { date } => {
            let cfg = load_checked(cli)?;
            let key = key_from_env(&cfg)?;
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
            let key = key_from_env(&cfg)?;
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
            if let (Some(f), Some(t)) = (from, to) {
                days_between(*f, *t)?;
            }
            let cfg = load(cli)?;
            let rt = runtime()?;
            let out = rt.block_on(crate::status::status(&cfg, *from, *to, *json))?;
            print!("{out}");
            Ok(0)
        }
        Command::Sql { query, format } => {
            let cfg = load(cli)?;
            let rt = runtime()?;
            let units = rt.block_on(read_units(&cfg.units)).ok();
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
            let units = rt.block_on(read_units(&cfg.units))?;
            let wh = Location::open(&cfg.warehouse, true)?;
            let t0 = std::time::Instant::now();
            let run_id = run::new_run_id();
            let r = rt.block_on(Writer::run(
                &wh,
                &run_id,
                "refresh",
                refresh_marts(&cfg, &wh, &units, &run_id, *full, Default::default()),
            ))?;
            if !cli.quiet {
                println!(
                    "marts and checks recomputed for {} period(s) in {:.2} s",
                    r.periods.len(),
                    t0.elapsed().as_secs_f64()
                );
                print!("{}", terminal::targets(&cfg, &r.rows));
            }
            Ok(if crate::warehouse::checks::any_error_fails(&r.rows) {
                1
            } else {
                0
            })
        }
        Command::Cluster { role } => {
            let cfg = load(cli)?;
            match role {
                ClusterRole::Scheduler {
                    listen,
                    executor_timeout,
                } => crate::cluster::scheduler(&cfg, listen, *executor_timeout)?,
                ClusterRole::Executor {
                    scheduler,
                    slots,
                    listen,
                    work_dir,
                    heartbeat,
                } => crate::cluster::executor(
                    &cfg,
                    crate::cluster::ExecutorOptions {
                        scheduler: scheduler.clone(),
                        slots: *slots,
                        listen: listen.clone(),
                        work_dir: work_dir.clone(),
                        heartbeat_s: *heartbeat,
                    },
                )?,
            }
            Ok(0)
        }
        Command::Serve {
            action,
            listen,
            check,
        } => {
            let cfg = load(cli)?;
            if let Some(ServeAction::AddUser { name }) = action {
                crate::serve::add_user(&cfg, name)?;
                if !cli.quiet {
                    println!(
                        "user {name} written to {}",
                        cfg.serve.users_file.as_deref().unwrap_or_default()
                    );
                }
                return Ok(0);
            }
            let plan = crate::serve::check(&cfg, listen.as_deref())?;
            if *check {
                println!(
                    "{}: serve settings ok (listen {})",
                    cli.config.display(),
                    plan.listen
                );
                return Ok(0);
            }
            let units = runtime()?.block_on(read_units(&cfg.units)).ok();
            crate::serve::serve(&cfg, units, plan)?;
            Ok(0)
        }
        Command::Shell => {
            let cfg = load(cli)?;
            let rt = runtime()?;
            let units = rt.block_on(read_units(&cfg.units)).ok();
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
                    let wh = Location::open(&cfg.warehouse, true)?;
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
        Command::Rekey => {
            let cfg = load(cli)?;
            Err(Error::Usage(format!(
                "refused: the warehouse {} cannot be re-keyed in place. A token is an HMAC of the clear value, which cchc keeps nowhere outside quarantine, so a token cannot be converted to another key's. To use a new key, set {} to it and ingest the landing area into a new, empty warehouse (cchc backfill --warehouse NEW ...); keep the old one until the new one is complete",
                cfg.warehouse, cfg.pii_key_env
            )))
        }
        Command::Gen(a) => {
            check_scale(a.scale)?;
            days_between(a.from, a.to)?;
            let o = GenOptions {
                out: a.out.clone(),
                from: a.from,
                to: a.to,
                scale: a.scale,
                seed: a.seed,
                defects: a.defects,
                reorganise: a.reorganise,
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
            check_scale(*scale)?;
            days_between(*from, *to)?;
            let cfg = load_checked(cli)?;
            let o = GenOptions {
                out: PathBuf::from(&cfg.landing),
                from: *from,
                to: *to,
                scale: *scale,
                seed: 42,
                defects: *defects,
                reorganise: None,
            };
            let t0 = std::time::Instant::now();
            let s = synth::generate(&o)?;
            println!(
                "generated in {:.2} s: {}",
                t0.elapsed().as_secs_f64(),
                gen_line(&o, &s)
            );
            let key = match key_from_env(&cfg) {
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
                crate::rank::rank(&cfg, to.year(), None, cli.quiet)?;
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
