//! A run: ingest every source for each requested extract day, then write the run record
//! `<warehouse>/runs/<run_id>.json` (like dbt's run_results.json). Source-days run in parallel.

use std::time::Instant;

use chrono::{NaiveDate, Utc};
use rayon::prelude::*;
use serde::Serialize;

use crate::checks::TargetRow;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::ingest::{self, text::Pseudonymiser, units::Units, Env, SourceDay};
use crate::periods::{periods_of, Computed, Period};
use crate::storage::Location;

/// The machine-readable record of one run.
#[derive(Debug, Serialize)]
pub struct RunRecord {
    pub run_id: String,
    pub command: String,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u128,
    pub landing: String,
    pub warehouse: String,
    /// The extract days ingested.
    #[serde(serialize_with = "date_serde::many")]
    pub dates: Vec<NaiveDate>,
    /// Days of a backfill skipped: already ingested from the same landing files.
    #[serde(serialize_with = "date_serde::many")]
    pub skipped_dates: Vec<NaiveDate>,
    pub totals: Totals,
    pub sources: Vec<SourceDay>,
    /// The periods whose marts and target results this run (re)computed.
    pub periods: Vec<PeriodRecord>,
    /// Target results of those periods, by status (units and `ALL`).
    pub targets: TargetCounts,
    /// Source-days of this run without any file (freshness), with the source's severity.
    pub missing: Vec<MissingDay>,
    /// Each stage that ran: `plan` (which days a backfill runs), `ingest`, `marts` (marts and
    /// checks of the stale periods), with start and duration; counts and results are above.
    pub stages: Vec<Stage>,
    pub exit_code: u8,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Stage {
    pub name: &'static str,
    pub started_at: String,
    pub duration_ms: u128,
    /// `None` when the stage succeeded; the error otherwise (the run stops there).
    pub error: Option<String>,
}

/// Run `f` as a stage of `record`.
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

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MissingDay {
    pub source: String,
    #[serde(serialize_with = "date_serde::one")]
    pub day: NaiveDate,
    /// `warn` or `error` (an error makes the exit code 1).
    pub severity: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PeriodRecord {
    pub period: String,
    pub as_of: String,
    #[serde(rename = "final")]
    pub is_final: bool,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct TargetCounts {
    pub pass: u64,
    pub fail: u64,
    pub no_data: u64,
    pub info: u64,
    /// Failing rows of targets with severity `error` (they make the exit code 1).
    pub failing_error: u64,
}

#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Totals {
    pub files: u64,
    pub bytes: u64,
    pub read: u64,
    pub staged: u64,
    pub quarantined: u64,
    pub unreadable_files: u64,
}

impl Totals {
    pub fn of(days: &[SourceDay]) -> Self {
        let mut t = Totals::default();
        for d in days {
            t.files += d.files.len() as u64;
            t.bytes += d.files.iter().map(|f| f.bytes).sum::<u64>();
            t.read += d.read;
            t.staged += d.staged;
            t.quarantined += d.quarantined;
            t.unreadable_files += d.unreadable_files;
        }
        t
    }
}

/// A new run id: UTC time to the millisecond plus the process id, sortable and unique enough
/// for one warehouse (two concurrent runs are refused by the lock of the scheduling work).
pub fn new_run_id() -> String {
    format!(
        "{}-{}",
        Utc::now().format("%Y%m%dT%H%M%S%3fZ"),
        std::process::id()
    )
}

/// The pseudonymisation key from the environment variable the config names.
pub fn pii_key(cfg: &Config) -> Result<Vec<u8>> {
    match std::env::var(&cfg.pii_key_env) {
        Ok(k) if k.len() >= 16 => Ok(k.into_bytes()),
        Ok(_) => Err(Error::Usage(format!("{} must hold at least 16 characters", cfg.pii_key_env))),
        Err(_) => Err(Error::Usage(format!(
            "{} is not set: personal data is pseudonymised with a keyed HMAC and the key comes from the environment",
            cfg.pii_key_env
        ))),
    }
}

/// Open the landing area, the warehouse and the units seed of a config.
pub fn open_env(
    cfg: &Config,
    rt: &tokio::runtime::Runtime,
    key: &[u8],
    run_id: &str,
) -> Result<Env> {
    let landing = Location::open(&cfg.landing, false).map_err(|e| match e {
        Error::Io { context, source } => Error::Io {
            context: format!("landing area {context}"),
            source,
        },
        e => e,
    })?;
    let warehouse = Location::open(&cfg.warehouse, true)?;
    let units = read_units(&cfg.units, rt)?;
    Ok(Env {
        landing,
        warehouse,
        units,
        pii: Pseudonymiser::new(key),
        run_id: run_id.to_string(),
        rt: rt.handle().clone(),
    })
}

/// Read units.csv from a local path or URL.
pub fn read_units(path: &str, rt: &tokio::runtime::Runtime) -> Result<Units> {
    let (dir, name) = match path.rsplit_once('/') {
        Some((d, n)) => (if d.is_empty() { "/" } else { d }, n),
        None => (".", path),
    };
    let loc =
        Location::open(dir, false).map_err(|e| Error::Usage(format!("units seed {path}: {e}")))?;
    let bytes = rt.block_on(loc.get(&loc.path(name)))?;
    Units::parse(&bytes, path)
}

/// The tracing target of the spans that draw progress bars on a terminal.
pub const PROGRESS: &str = "cchc::progress";

/// Ingest every source for every day in `dates`; the per-source-day reports in (day, source) order.
/// On a terminal, a bar counts the source-days done with the records read and records/s, and
/// each source-day in progress has a line of its own.
pub fn ingest_days(cfg: &Config, env: &Env, dates: &[NaiveDate]) -> Result<Vec<SourceDay>> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use tracing_indicatif::span_ext::IndicatifSpanExt;
    let tasks: Vec<(NaiveDate, usize)> = dates
        .iter()
        .flat_map(|d| (0..cfg.sources.len()).map(move |s| (*d, s)))
        .collect();
    let bar = tracing::info_span!(target: PROGRESS, "ingest");
    if let Ok(style) = tracing_indicatif::style::ProgressStyle::with_template(
        "{spinner} ingest [{bar:30}] {pos}/{len} source-days, {msg} ({elapsed})",
    ) {
        bar.pb_set_style(&style.progress_chars("=> "));
    }
    bar.pb_set_length(tasks.len() as u64);
    let _shown = bar.enter();
    let t0 = Instant::now();
    let records = AtomicU64::new(0);
    tasks
        .par_iter()
        .map(|(d, s)| {
            let source = &cfg.sources[*s];
            let span = tracing::info_span!(target: PROGRESS, parent: &bar, "source-day", source = %source.name, day = %d);
            let _in = span.enter();
            let day = ingest::ingest_source_day(env, source, *d)?;
            env.rt
                .block_on(crate::ledger::record(&env.warehouse, &env.run_id, &day))?;
            crate::failpoint::hit("ingest.committed");
            let total = records.fetch_add(day.read, Ordering::Relaxed) + day.read;
            bar.pb_inc(1);
            bar.pb_set_message(&format!(
                "{total} records, {:.0} records/s",
                total as f64 / t0.elapsed().as_secs_f64().max(1e-3)
            ));
            Ok(day)
        })
        .collect()
}

/// What a refresh of the marts computed.
pub struct Refresh {
    pub periods: Vec<Period>,
    pub rows: Vec<TargetRow>,
}

const PERIODS_STATE: &str = "marts/_periods.json";

/// Recompute the marts and target results of every stale period (see `crate::periods`), then
/// record what was computed. Run after the ingest of a run's days (once, also for a backfill).
pub fn refresh(env: &Env, cfg: &Config) -> Result<Refresh> {
    env.rt.block_on(refresh_marts(
        cfg,
        &env.warehouse,
        &env.units,
        &env.run_id,
        false,
    ))
}

/// Recompute the stale periods (every period with `full`) of a warehouse.
pub async fn refresh_marts(
    cfg: &Config,
    wh: &Location,
    units: &Units,
    run_id: &str,
    full: bool,
) -> Result<Refresh> {
    let ledger = crate::ledger::read_all(wh).await?;
    let all = periods_of(&crate::ledger::ingested_days(&ledger));
    let computed = read_computed(wh).await?;
    let stale: Vec<&Period> = if full {
        all.iter().collect()
    } else {
        crate::periods::stale(&all, &computed, &ledger)
    };
    if stale.is_empty() {
        return Ok(Refresh {
            periods: Vec::new(),
            rows: Vec::new(),
        });
    }
    let ctx = crate::models::new_context();
    let published = crate::publish::Published::new(&ledger, &computed);
    crate::models::register_state(
        &ctx,
        cfg,
        Some((wh, &published)),
        Some(&ledger),
        &stale,
        Some(units),
    )
    .await?;
    let marts = crate::models::compute(&ctx, cfg).await?;
    for m in &marts {
        crate::models::write_periods(wh, run_id, &m.model.name, &m.schema, &m.batches, &stale)
            .await?;
    }
    let ev = crate::checks::evaluate(&ctx, cfg, &stale, units).await?;
    crate::checks::write(wh, run_id, cfg, &ev, &stale).await?;
    // Record what was computed, last: a crash before this only makes the next run redo it.
    let mut state: Vec<Computed> = computed
        .into_iter()
        .filter(|c| !stale.iter().any(|p| p.id == c.period))
        .collect();
    state.extend(stale.iter().map(|p| Computed {
        period: p.id.clone(),
        as_of: p.as_of.to_string(),
        run_id: run_id.to_string(),
    }));
    state.sort_by(|a, b| a.period.cmp(&b.period));
    let json = serde_json::to_vec_pretty(&state).map_err(|e| Error::Internal(e.to_string()))?;
    wh.put(&wh.path(PERIODS_STATE), json.into()).await?;
    crate::failpoint::hit("marts.committed");
    Ok(Refresh {
        periods: stale.into_iter().cloned().collect(),
        rows: ev.rows,
    })
}

/// The state of a source-day, comparing the landing with the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DayState {
    /// Ingested from the files the landing holds now.
    Ingested,
    /// Ingested, but the landing files changed since (added, removed or different content).
    Changed,
    /// Files in the landing, never ingested (new, arrived late, or the run failed).
    Pending,
    /// No file in the landing for that source and day.
    Missing,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceDayState {
    pub source: String,
    #[serde(serialize_with = "date_serde::one")]
    pub day: NaiveDate,
    pub state: DayState,
    pub landing_files: usize,
    /// What the ledger holds for the day, if anything.
    pub ledger: Option<crate::ledger::LedgerEntry>,
}

/// Compare the landing with the ledger for every source and day. Checksums are computed only
/// where the ledger has an entry to compare with; elsewhere the listing says enough.
pub async fn source_day_states(
    cfg: &Config,
    landing: &Location,
    ledger: &[crate::ledger::LedgerEntry],
    days: &[NaiveDate],
) -> Result<Vec<SourceDayState>> {
    let by_key: std::collections::HashMap<(NaiveDate, &str), &crate::ledger::LedgerEntry> = ledger
        .iter()
        .map(|e| ((e.day.extract_date, e.day.source.as_str()), e))
        .collect();
    let mut out = Vec::new();
    for &day in days {
        for source in &cfg.sources {
            let entry = by_key
                .get(&(day, source.name.as_str()))
                .map(|e| (*e).clone());
            let files = ingest::day_files(landing, source, day).await?;
            let state = match &entry {
                None if files.is_empty() => DayState::Missing,
                None => DayState::Pending,
                Some(e) => {
                    let now = ingest::day_checksums(landing, source, day).await?;
                    let then: Vec<(String, String)> = e
                        .day
                        .files
                        .iter()
                        .map(|f| (f.name.clone(), f.sha256.clone()))
                        .collect();
                    match (now == then, now.is_empty()) {
                        (true, true) => DayState::Missing,
                        (true, false) => DayState::Ingested,
                        (false, _) => DayState::Changed,
                    }
                }
            };
            out.push(SourceDayState {
                source: source.name.clone(),
                day,
                state,
                landing_files: files.len(),
                ledger: entry,
            });
        }
    }
    Ok(out)
}

/// What `marts/_periods.json` says was computed.
pub async fn read_computed(wh: &Location) -> Result<Vec<Computed>> {
    Ok(match wh.get_opt(&wh.path(PERIODS_STATE)).await? {
        Some(b) => serde_json::from_slice(&b)
            .map_err(|e| Error::Internal(format!("{PERIODS_STATE} is corrupt: {e}")))?,
        None => Vec::new(),
    })
}

/// The periods known to the warehouse (from its ledger), for query sessions.
pub async fn known_periods(
    wh: &Location,
) -> Result<(Vec<crate::ledger::LedgerEntry>, Vec<Period>)> {
    let ledger = crate::ledger::read_all(wh).await?;
    let all = periods_of(&crate::ledger::ingested_days(&ledger));
    Ok((ledger, all))
}

/// Run the ingest of `dates`, refresh the marts and checks of the periods that changed, and write
/// the run record; returns the record (also on failure, with the error filled in), the target
/// rows computed, and the error, if any.
pub fn run(
    cfg: &Config,
    command: &str,
    dates: Vec<NaiveDate>,
    key: &[u8],
) -> (RunRecord, Option<Error>) {
    let (record, _, err) = run_with_results(cfg, command, dates, key);
    (record, err)
}

pub fn run_with_results(
    cfg: &Config,
    command: &str,
    dates: Vec<NaiveDate>,
    key: &[u8],
) -> (RunRecord, Vec<TargetRow>, Option<Error>) {
    run_days(cfg, command, dates, key, false)
}

/// A run over `dates`. With `skip_unchanged` (a backfill), days already ingested from the same
/// landing files (names and SHA-256, per the ledger) are skipped; the others run, in date order.
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
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return (
                empty_record(cfg, command, &run_id, dates),
                Vec::new(),
                Some(Error::io("cannot start the I/O runtime", e)),
            )
        }
    };
    let mut record = empty_record(cfg, command, &run_id, dates);
    let mut rows = Vec::new();
    let mut lock = None;
    let (err, env) = match open_env(cfg, &rt, key, &run_id).and_then(|env| {
        lock = Some(rt.block_on(crate::lock::Lock::acquire(&env.warehouse, &run_id, command))?);
        // Repair: what a killed run wrote but never published.
        rt.block_on(crate::publish::vacuum(&env.warehouse))?;
        Ok(env)
    }) {
        Err(e) => (Some(e), None),
        Ok(env) => {
            let res = (|| {
                let mut stages = Vec::new();
                if skip_unchanged {
                    let statuses = stage(&mut stages, "plan", || {
                        rt.block_on(async {
                            let ledger = crate::ledger::read_all(&env.warehouse).await?;
                            source_day_states(cfg, &env.landing, &ledger, &record.dates).await
                        })
                    })?;
                    let (run, skip): (Vec<NaiveDate>, Vec<NaiveDate>) =
                        record.dates.iter().partition(|d| {
                            statuses.iter().any(|s| {
                                s.day == **d
                                    && matches!(s.state, DayState::Changed | DayState::Pending)
                            })
                        });
                    record.dates = run;
                    record.skipped_dates = skip;
                }
                let days = stage(&mut stages, "ingest", || {
                    ingest_days(cfg, &env, &record.dates)
                });
                record.stages = std::mem::take(&mut stages);
                let days = days?;
                for d in days.iter().filter(|d| !d.present) {
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
                record.totals = Totals::of(&days);
                record.sources = days;
                let r = stage(&mut stages, "marts", || refresh(&env, cfg));
                record.stages.append(&mut stages);
                r
            })();
            match res {
                Ok(r) => {
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
                            crate::checks::Status::Pass => c.pass += 1,
                            crate::checks::Status::Fail => c.fail += 1,
                            crate::checks::Status::NoData => c.no_data += 1,
                            crate::checks::Status::Info => c.info += 1,
                        }
                        if row.status == crate::checks::Status::Fail
                            && row.severity == crate::config::Severity::Error
                        {
                            c.failing_error += 1;
                        }
                    }
                    rows = r.rows;
                    (None, Some(env))
                }
                Err(e) => (Some(e), Some(env)),
            }
        }
    };
    if let (Some(_), Some(env)) = (&lock, &env) {
        // The versions this run superseded (and anything a failed stage left unpublished).
        if let Err(e) = rt.block_on(crate::publish::vacuum(&env.warehouse)) {
            tracing::warn!(error = %e, "could not remove superseded files");
        }
    }
    if let Some(lock) = lock {
        if let Err(e) = rt.block_on(lock.release()) {
            tracing::warn!(error = %e, "could not release the warehouse lock");
        }
    }
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
        if let Err(e) = write_record(&env.warehouse, &record, &rt) {
            err.get_or_insert(e);
        }
    } else if let Ok(wh) = Location::open(&cfg.warehouse, true) {
        // Also record failed runs where the warehouse is reachable.
        let _ = write_record(&wh, &record, &rt);
    }
    (record, rows, err)
}

fn empty_record(cfg: &Config, command: &str, run_id: &str, dates: Vec<NaiveDate>) -> RunRecord {
    RunRecord {
        run_id: run_id.to_string(),
        command: command.to_string(),
        started_at: String::new(),
        finished_at: String::new(),
        duration_ms: 0,
        landing: cfg.landing.clone(),
        warehouse: cfg.warehouse.clone(),
        dates,
        skipped_dates: Vec::new(),
        totals: Totals::default(),
        sources: Vec::new(),
        periods: Vec::new(),
        targets: TargetCounts::default(),
        missing: Vec::new(),
        stages: Vec::new(),
        exit_code: 0,
        error: None,
    }
}

fn write_record(wh: &Location, record: &RunRecord, rt: &tokio::runtime::Runtime) -> Result<()> {
    let json = serde_json::to_vec_pretty(record).map_err(|e| Error::Internal(e.to_string()))?;
    rt.block_on(wh.put(
        &wh.path(&format!("runs/{}.json", record.run_id)),
        json.into(),
    ))
}

/// Serialize dates as `YYYY-MM-DD` (chrono's own serde feature would rebuild the whole
/// arrow/DataFusion tree with another feature set).
pub mod date_serde {
    use chrono::NaiveDate;
    use serde::Serializer;

    pub fn one<S: Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(d)
    }

    pub fn many<S: Serializer>(d: &[NaiveDate], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(d.iter().map(|x| x.to_string()))
    }

    pub fn de_one<'de, D: serde::Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
