//! A run: ingest every source for each requested extract day, then write the run record
//! `<warehouse>/runs/<run_id>.json` (like dbt's run_results.json). Source-days run in parallel.

use std::time::Instant;

use chrono::{NaiveDate, Utc};
use rayon::prelude::*;
use serde::Serialize;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::ingest::{self, text::Pseudonymiser, units::Units, Env, SourceDay};
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
    #[serde(serialize_with = "date_serde::many")]
    pub dates: Vec<NaiveDate>,
    pub totals: Totals,
    pub sources: Vec<SourceDay>,
    pub exit_code: u8,
    pub error: Option<String>,
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

/// Ingest every source for every day in `dates`; the per-source-day reports in (day, source) order.
pub fn ingest_days(cfg: &Config, env: &Env, dates: &[NaiveDate]) -> Result<Vec<SourceDay>> {
    let tasks: Vec<(NaiveDate, usize)> = dates
        .iter()
        .flat_map(|d| (0..cfg.sources.len()).map(move |s| (*d, s)))
        .collect();
    tasks
        .par_iter()
        .map(|(d, s)| ingest::ingest_source_day(env, &cfg.sources[*s], *d))
        .collect()
}

/// Run the ingest of `dates` and write the run record; returns the record (also on failure, with
/// the error filled in) and the error, if any.
pub fn run(
    cfg: &Config,
    command: &str,
    dates: Vec<NaiveDate>,
    key: &[u8],
) -> (RunRecord, Option<Error>) {
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
                Some(Error::io("cannot start the I/O runtime", e)),
            )
        }
    };
    let mut record = empty_record(cfg, command, &run_id, dates);
    let res = open_env(cfg, &rt, key, &run_id).and_then(|env| {
        let days = ingest_days(cfg, &env, &record.dates)?;
        Ok((env, days))
    });
    let (err, env) = match res {
        Ok((env, days)) => {
            record.totals = Totals::of(&days);
            record.sources = days;
            (None, Some(env))
        }
        Err(e) => (Some(e), None),
    };
    record.started_at = started.to_rfc3339();
    record.finished_at = Utc::now().to_rfc3339();
    record.duration_ms = t0.elapsed().as_millis();
    record.exit_code = err.as_ref().map(|e| e.exit_code()).unwrap_or(0);
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
    (record, err)
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
        totals: Totals::default(),
        sources: Vec::new(),
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
}
