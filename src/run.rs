//! A run: in a writer session, ingest every source for each requested extract day (source-days in
//! parallel, each recorded in the ledger), refresh the marts and checks of the periods that
//! changed, then write the run record (`crate::store::runs`).

use std::time::Instant;

use chrono::{NaiveDate, Utc};

use crate::base::error::{Error, Result};
use crate::base::PROGRESS;
use crate::config::Config;
use crate::ingest::landing::{source_day_states, unmatched_files, DayState};
use crate::ingest::pseudonymise::Pseudonymiser;
use crate::ingest::{ingest_days, Env};
use crate::store::location::{read_units, Location};
use crate::store::lock::Writer;
use crate::store::runs::{self, MissingDay, PeriodRecord, RunRecord, Stage, Totals};
use crate::warehouse::checks::{Status, TargetRow};
use crate::warehouse::refresh::refresh_marts;
use crate::warehouse::version_index::Feed;

/// A new run id: UTC time to the millisecond plus the process id, sortable and unique enough
/// for one warehouse (two concurrent runs are refused by the warehouse lock).
pub fn new_run_id() -> String {
    format!(
        "{}-{}",
        Utc::now().format("%Y%m%dT%H%M%S%3fZ"),
        std::process::id()
    )
}

/// The runtime of the commands: two workers, as many as the machine's cores are meant for.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the runtime", e))
}

/// Open the landing area, the warehouse and the units seed of a config.
pub fn open_env(
    cfg: &Config,
    rt: &tokio::runtime::Runtime,
    key: &[u8],
    run_id: &str,
) -> Result<Env> {
    crate::store::location::check_locations(&cfg.landing, &cfg.warehouse)?;
    let landing = Location::open(&cfg.landing, false).map_err(|e| match e {
        Error::Io { context, source } => Error::Io {
            context: format!("landing area {context}"),
            source,
        },
        e => e,
    })?;
    let warehouse = Location::open(&cfg.warehouse, true)?;
    let units = rt.block_on(read_units(&cfg.units))?;
    Ok(Env {
        landing,
        warehouse,
        units,
        pii: Pseudonymiser::new(key),
        run_id: run_id.to_string(),
        rt: rt.handle().clone(),
        budget: crate::ingest::Budget::new(cfg.engine.memory_limit),
        sizes: Default::default(),
    })
}

/// Run `f` as a stage: a spinner on a terminal, a log line with its duration, and its entry in
/// `stages`.
fn stage<T>(
    stages: &mut Vec<Stage>,
    name: &'static str,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    use tracing_indicatif::span_ext::IndicatifSpanExt;
    let started_at = Utc::now().to_rfc3339();
    let t0 = Instant::now();
    let span = tracing::info_span!(target: PROGRESS, "stage", name);
    if let Ok(style) = tracing_indicatif::style::ProgressStyle::with_template(
        "{spinner} {span_fields} ({elapsed})",
    ) {
        span.pb_set_style(&style);
    }
    let r = span.in_scope(f);
    let duration_ms = t0.elapsed().as_millis();
    let error = r.as_ref().err().map(|e| e.to_string());
    match &error {
        None => tracing::info!(stage = name, duration_ms, "stage done"),
        Some(e) => tracing::error!(stage = name, duration_ms, error = %e, "stage failed"),
    }
    stages.push(Stage {
        name,
        started_at,
        duration_ms,
        error,
    });
    r
}

/// Run the ingest of `dates`, refresh the marts and checks of the periods that changed, and write
/// the run record; returns the record (also on failure, with the error filled in) and the error,
/// if any.
pub fn run(
    cfg: &Config,
    command: &str,
    dates: Vec<NaiveDate>,
    key: &[u8],
) -> (RunRecord, Option<Error>) {
    let (record, _, err) = run_days(cfg, command, dates, key, false);
    (record, err)
}

/// The stages of a run inside its writer session; fills `record` as they go.
fn run_stages(
    cfg: &Config,
    env: &Env,
    record: &mut RunRecord,
    skip_unchanged: bool,
) -> Result<Vec<TargetRow>> {
    let rt = &env.rt;
    let mut stages = Vec::new();
    // Whether the warehouse had no staged day before this run (known from the plan's ledger).
    let mut fresh = false;
    if skip_unchanged {
        let statuses = stage(&mut stages, "plan", || {
            rt.block_on(async {
                let ledger = crate::store::ledger::read_all(&env.warehouse).await?;
                fresh = ledger.is_empty();
                source_day_states(cfg, &env.landing, &ledger, &record.dates).await
            })
        });
        let statuses = match statuses {
            Ok(s) => s,
            Err(e) => {
                record.stages = stages;
                return Err(e);
            }
        };
        // A day runs when a source has files never ingested or changed since, and also when no
        // source of it was ever run: a day on which every source is silent is a total outage,
        // reported as missing like any silent source-day, never skipped unseen.
        let (run, skip): (Vec<NaiveDate>, Vec<NaiveDate>) = record.dates.iter().partition(|d| {
            let of_day = || statuses.iter().filter(|s| s.day == **d);
            of_day().any(|s| matches!(s.state, DayState::Changed | DayState::Pending))
                || of_day().all(|s| s.ledger.is_none())
        });
        record.dates = run;
        record.skipped_dates = skip;
    }
    // Version indexes passed as the ingest stages each day: the refresh uses them only when the
    // staging is exactly this run's, so only for a backfill into a new warehouse (a daily run
    // or a backfill adding to staging would pass its days for nothing).
    let feed = match cfg.engine.cluster {
        None if fresh => Some(Feed::start(cfg, &record.dates)?),
        _ => None,
    };
    let ingested = stage(&mut stages, "ingest", || {
        let (days, err) = ingest_days(
            cfg,
            env,
            &record.dates,
            feed.as_ref().map(|f| f as &dyn crate::ingest::StagedParts),
        );
        // What the ledger now holds from this run, also when it failed part way.
        record.totals = Totals::of(&days);
        record.sources = days;
        match err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    });
    record.stages = std::mem::take(&mut stages);
    ingested?;
    for d in record.sources.iter().filter(|d| !d.present) {
        let Some(sev) = cfg.source(&d.source).and_then(|s| s.missing_day) else {
            continue;
        };
        tracing::warn!(source = %d.source, day = %d.extract_date, severity = sev.name(), "no file for this source and day");
        record.missing.push(MissingDay {
            source: d.source.clone(),
            day: d.extract_date,
            severity: sev.name(),
        });
    }
    for day in record.dates.clone() {
        for u in rt.block_on(unmatched_files(cfg, &env.landing, day))? {
            tracing::warn!(system = %u.system, day = %u.day, file = %u.file, patterns = %u.patterns.join(", "), "a file of the landing that no source takes was not ingested");
            record.unmatched.push(u);
        }
    }
    crate::base::interrupt::check()?;
    let passed = feed.map(Feed::finish).unwrap_or_default();
    let r = stage(&mut stages, "marts", || {
        rt.block_on(refresh_marts(
            cfg,
            &env.warehouse,
            &env.units,
            &env.run_id,
            false,
            passed,
        ))
    });
    record.stages.append(&mut stages);
    let r = r?;
    record.periods = r
        .periods
        .iter()
        .map(|p| PeriodRecord {
            period: p.id.clone(),
            as_of: p.as_of.to_string(),
            is_final: p.is_final,
        })
        .collect();
    for row in &r.rows {
        let c = &mut record.targets;
        match row.status {
            Status::Pass => c.pass += 1,
            Status::Fail => c.fail += 1,
            Status::NoData => c.no_data += 1,
            Status::Info => c.info += 1,
        }
        if row.status == Status::Fail && row.severity == crate::config::Severity::Error {
            c.failing_error += 1;
        }
    }
    Ok(r.rows)
}

/// A run over `dates`. With `skip_unchanged` (a backfill), days already ingested from the same
/// landing files (names and SHA-256, per the ledger) are skipped; the others run, in date order.
/// Returns the run record, the target rows computed, and the error, if any.
pub fn run_days(
    cfg: &Config,
    command: &str,
    dates: Vec<NaiveDate>,
    key: &[u8],
    skip_unchanged: bool,
) -> (RunRecord, Vec<TargetRow>, Option<Error>) {
    let started = Utc::now();
    let t0 = Instant::now();
    let run_id = new_run_id();
    let mut record = RunRecord::new(command, &run_id, &cfg.landing, &cfg.warehouse, dates);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return (record, Vec::new(), Some(e)),
    };
    let mut rows = Vec::new();
    let (err, env) = match open_env(cfg, &rt, key, &run_id).and_then(|mut env| {
        let writer = rt.block_on(Writer::begin(&env.warehouse, &run_id, command))?;
        let keyed = rt.block_on(crate::store::pii_key::check_or_record(
            &env.warehouse,
            (&env.pii.fingerprint(), env.pii.digits()),
            &run_id,
            &cfg.pii_key_env,
        ));
        match keyed {
            Ok(digits) => env.pii = env.pii.clone().with_digits(digits),
            Err(e) => {
                if let Err(r) = rt.block_on(writer.finish()) {
                    tracing::warn!(error = %r, "could not release the warehouse lock");
                }
                return Err(e);
            }
        }
        Ok((env, writer))
    }) {
        Err(e) => (Some(e), None),
        Ok((env, writer)) => {
            let err = match run_stages(cfg, &env, &mut record, skip_unchanged) {
                Ok(r) => {
                    rows = r;
                    None
                }
                Err(e) => Some(e),
            };
            if let Err(e) = rt.block_on(writer.finish()) {
                tracing::warn!(error = %e, "could not release the warehouse lock");
            }
            (err, Some(env))
        }
    };
    record.started_at = started.to_rfc3339();
    record.finished_at = Utc::now().to_rfc3339();
    record.duration_ms = t0.elapsed().as_millis();
    record.exit_code = match &err {
        Some(e) => e.exit_code(),
        None if record.targets.failing_error > 0 => 1,
        None if record.missing.iter().any(|m| m.severity == "error") => 1,
        None => 0,
    };
    record.error = err.as_ref().map(|e| e.to_string());
    let mut err = err;
    if let Some(env) = env {
        if let Err(e) = rt.block_on(runs::write(&env.warehouse, &record)) {
            err.get_or_insert(e);
        }
    } else if let Ok(wh) = Location::open(&cfg.warehouse, true) {
        // Also record failed runs where the warehouse is reachable.
        let _ = rt.block_on(runs::write(&wh, &record));
    }
    // Nothing is left to run: the workers exit on their own while the caller prints the summary,
    // instead of the caller waiting for each to hand its memory back (≈ 15 ms after a backfill).
    rt.shutdown_background();
    (record, rows, err)
}
