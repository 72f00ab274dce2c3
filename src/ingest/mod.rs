//! Ingest: one source × one extract day → a staging partition and a quarantine partition.
//!
//! For each file of the day folder that matches the source's pattern (byte-wise name order): read
//! it, checksum it, parse it with its format's reader, type each record (NFC, dates in local time,
//! personal data pseudonymised) or quarantine it with file, position, reason and raw text. A file
//! that cannot be read at all is quarantined whole (position null) and its records are not counted.
//! Every version of every record is kept, with its extract day, file and position, so the state of
//! any entity as of any day can be derived later. Counts reconcile: read = staged + quarantined.

pub mod formats;
pub mod landing;
pub mod pseudonymise;
pub mod typing;
pub mod value;

use std::sync::Arc;

use std::time::Instant;

use arrow::array::{ArrayRef, Date32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use chrono::NaiveDate;

use crate::base::dates::date_to_days;
use crate::base::error::{Error, Result};
use crate::base::failpoint;
use crate::config::units::Units;
use crate::config::{Config, Source};
use crate::store::ledger::{FileReport, SourceDay};
use crate::store::location::Location;
use crate::store::publish::{
    default_props, part_path, partition, write_part_blocking, write_parts_blocking,
};
use formats::{field_index, read_file, BadRecord, Counts, Emit};
use landing::day_files;
use pseudonymise::Pseudonymiser;
use typing::{Context, Typer};

/// Everything a source-day ingest needs besides the source and the day.
pub struct Env {
    pub landing: Location,
    pub warehouse: Location,
    pub units: Units,
    pub pii: Pseudonymiser,
    pub run_id: String,
    pub rt: tokio::runtime::Handle,
    /// The ingest's share of `memory_limit` (see [`Budget`]).
    pub budget: Budget,
    /// The sizes of the batches typed so far, per source (see [`typing::SizeHints`]).
    pub sizes: typing::SizeHints,
}

/// What a source-day holds while it is ingested, per byte of its files: the file, the records
/// parsed from it, the Arrow columns and the Parquet pages being written. An estimate from the
/// shape of the pipeline (each stage holds about one copy of the day), kept on the safe side.
pub const HELD_PER_INPUT_BYTE: u64 = 4;

/// The ingest's share of the engine's `memory_limit`: half of it (the marts run after the ingest,
/// in the other half and then in all of it). Source-days are ingested in parallel only while
/// their estimated holdings ([`HELD_PER_INPUT_BYTE`] × their files' bytes) fit the share
/// together; a source-day larger than the share runs alone. So a landing of large days runs them
/// one at a time instead of outgrowing the limit, and a province-day (a few MB) never waits.
pub struct Budget {
    share: u64,
    used: std::sync::Mutex<(u64, usize)>,
    freed: std::sync::Condvar,
}

/// Bytes of a [`Budget`] held by one source-day, given back when dropped.
pub struct Held<'a> {
    budget: &'a Budget,
    bytes: u64,
}

impl Budget {
    pub fn new(memory_limit: u64) -> Self {
        Budget {
            share: memory_limit / 2,
            used: std::sync::Mutex::new((0, 0)),
            freed: std::sync::Condvar::new(),
        }
    }

    /// Wait until `bytes` fit in the share beside what the others hold (at once when nobody
    /// holds anything), then hold them.
    pub fn take(&self, bytes: u64) -> Held<'_> {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while used.1 > 0 && used.0 + bytes > self.share {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        used.0 += bytes;
        used.1 += 1;
        Held {
            budget: self,
            bytes,
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut used = self.budget.used.lock().unwrap_or_else(|e| e.into_inner());
        used.0 -= self.bytes;
        used.1 -= 1;
        self.budget.freed.notify_all();
    }
}

/// Told of each staged part as the ingest writes it (the refresh's version indexes are passed
/// from them while the ingest goes on: `crate::warehouse::version_index::Feed`).
pub trait StagedParts: Sync {
    /// The part staged for `source` on `day` and the batches written to it; `None` when the day
    /// staged no row.
    fn part(
        &self,
        source: &Source,
        day: NaiveDate,
        part: Option<(object_store::path::Path, &[RecordBatch])>,
    ) -> Result<()>;
}

/// Schema of quarantine partitions.
pub fn quarantine_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("extract_date", DataType::Date32, false),
        Field::new("source_file", DataType::Utf8, false),
        Field::new("position", DataType::Int64, true),
        Field::new("reason", DataType::Utf8, false),
        Field::new("raw", DataType::Utf8, true),
    ]))
}

fn quarantine_batch(day: i32, rows: &[BadRecord]) -> Result<RecordBatch> {
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from(vec![day; rows.len()])),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.file.as_str()),
        )),
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.position))),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.reason.as_str()),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.raw.as_deref()),
        )),
    ];
    Ok(RecordBatch::try_new(quarantine_schema(), cols)?)
}

/// Ingest one source for one extract day.
pub fn ingest_source_day(
    env: &Env,
    source: &Source,
    day: NaiveDate,
    feed: Option<&dyn StagedParts>,
) -> Result<SourceDay> {
    let t0 = std::time::Instant::now();
    let files = env.rt.block_on(day_files(&env.landing, source, day))?;
    let input: u64 = files.iter().map(|f| f.size).sum();
    let _held = env.budget.take(input.saturating_mul(HELD_PER_INPUT_BYTE));

    let index = field_index(source);
    let ctx = Context::new(&env.units.codes, &env.pii);
    let mut batches = Vec::new();
    let mut quarantine = Vec::new();
    let day_num = date_to_days(day);
    let mut report = SourceDay {
        source: source.name.clone(),
        system: source.system.clone(),
        extract_date: day,
        present: !files.is_empty(),
        files: Vec::new(),
        read: 0,
        staged: 0,
        quarantined: 0,
        unreadable_files: 0,
    };
    for entry in &files {
        let name = entry.name.clone();
        let (bytes, blake3, problem) =
            match landing::checksum_blocking(&env.rt, &env.landing, entry) {
                Ok((b, sum)) => (b, sum, None),
                Err(reason) => (bytes::Bytes::new(), String::new(), Some(reason)),
            };
        // Each file is typed on its own, so that what a reader emitted before it found the file
        // unreadable (a cut-off JSON file) is dropped (`Emit::restart`).
        let mut typer =
            Typer::with_capacity(source, &env.sizes.for_file(&source.name, bytes.len()));
        let mut emit = Emit {
            source,
            index: &index,
            typer: &mut typer,
            quarantine: &mut quarantine,
            ctx: &ctx,
            extract_day: day_num,
            file: &name,
            counts: Counts::default(),
        };
        let mark = emit.mark();
        let outcome = match problem {
            Some(reason) => Err(reason),
            None => read_file(source, &bytes, &mut emit),
        };
        if outcome.is_err() {
            emit.restart(mark);
        }
        let counts = emit.counts;
        let unreadable = outcome.err();
        match &unreadable {
            Some(reason) => {
                tracing::warn!(source = %source.name, day = %day, file = %name, reason = %reason, "unreadable file quarantined");
                quarantine.push(BadRecord {
                    file: name.clone(),
                    position: None,
                    reason: reason.clone(),
                    raw: None,
                });
                report.unreadable_files += 1;
            }
            None => {
                env.sizes.observe(&source.name, bytes.len(), &typer.sizes());
                batches.push(typer.finish()?)
            }
        }
        report.read += counts.read;
        report.staged += counts.staged;
        report.quarantined += counts.quarantined;
        report.files.push(FileReport {
            name,
            blake3,
            sha256: None,
            bytes: bytes.len() as u64,
            unreadable,
            read: counts.read,
            staged: counts.staged,
            quarantined: counts.quarantined,
        });
    }
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    if report.read != report.staged + report.quarantined || rows as u64 != report.staged {
        return Err(Error::Internal(format!(
            "{} {day}: read {} != staged {} + quarantined {}",
            source.name, report.read, report.staged, report.quarantined
        )));
    }
    let q = quarantine_batch(day_num, &quarantine)?;
    if let Some(e) = failpoint::error("ingest.write") {
        return Err(e);
    }
    let folder = partition("staging", &source.name, day);
    write_parts_blocking(
        &env.warehouse,
        &env.rt,
        &folder,
        &env.run_id,
        &batches,
        typing::staging_props(source),
    )?;
    if let Some(feed) = feed {
        let part = (rows > 0).then(|| {
            (
                part_path(&env.warehouse, &folder, &env.run_id),
                &batches[..],
            )
        });
        feed.part(source, day, part)?;
    }
    failpoint::hit("ingest.staged");
    write_part_blocking(
        &env.warehouse,
        &env.rt,
        &partition("quarantine", &source.name, day),
        &env.run_id,
        &q,
        default_props().build(),
    )?;
    tracing::info!(
        source = %source.name, day = %day, files = report.files.len(), read = report.read,
        staged = report.staged, quarantined = report.quarantined, unreadable_files = report.unreadable_files,
        seconds = t0.elapsed().as_secs_f64(),
        records_per_s = (report.read as f64 / t0.elapsed().as_secs_f64().max(1e-6)).round(),
        "source-day ingested"
    );
    Ok(report)
}

/// Ingest every source for every day in `dates`, recording each source-day in the ledger as it
/// completes. Returns the source-days committed, in (day, source) order, and the first error: after
/// an error (or a stop asked by a signal) no new source-day starts, and those already committed
/// are still returned, so the run record tells what the ledger holds. On a terminal, a bar counts
/// the source-days done with the records read and records/s, and each source-day in progress has
/// a line of its own.
pub fn ingest_days(
    cfg: &Config,
    env: &Env,
    dates: &[NaiveDate],
    feed: Option<&dyn StagedParts>,
) -> (Vec<SourceDay>, Option<Error>) {
    use crate::base::PROGRESS;
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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
    let failed = AtomicBool::new(false);
    let one = |(d, s): &(NaiveDate, usize)| -> Result<Option<SourceDay>> {
        if failed.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let r = (|| {
            crate::base::interrupt::check()?;
            let source = &cfg.sources[*s];
            let span = tracing::info_span!(target: PROGRESS, parent: &bar, "source-day", source = %source.name, day = %d);
            let _in = span.enter();
            let day = ingest_source_day(env, source, *d, feed)?;
            crate::store::ledger::record_blocking(&env.warehouse, &env.rt, &env.run_id, &day)?;
            failpoint::hit("ingest.committed");
            let total = records.fetch_add(day.read, Ordering::Relaxed) + day.read;
            bar.pb_inc(1);
            bar.pb_set_message(&format!(
                "{total} records, {:.0} records/s",
                total as f64 / t0.elapsed().as_secs_f64().max(1e-3)
            ));
            Ok(day)
        })();
        if r.is_err() {
            failed.store(true, Ordering::SeqCst);
        }
        r.map(Some)
    };
    // Each worker takes the next source-day in (day, source) order, so that days are staged
    // roughly in order and the version-index passes (`StagedParts`) keep up with the ingest (a
    // parallel iterator would give each worker a half of the year).
    let next = AtomicUsize::new(0);
    let done: std::sync::Mutex<Vec<(usize, Result<Option<SourceDay>>)>> = Default::default();
    rayon::scope(|scope| {
        for _ in 0..rayon::current_num_threads().min(tasks.len()) {
            scope.spawn(|_| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(task) = tasks.get(i) else {
                    break;
                };
                let r = one(task);
                done.lock().unwrap_or_else(|e| e.into_inner()).push((i, r));
            });
        }
    });
    let mut results = done.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, _)| *i);
    let mut days = Vec::new();
    let mut first = None;
    for (_, r) in results {
        match r {
            Ok(Some(d)) => days.push(d),
            Ok(None) => {}
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    (days, first)
}

#[cfg(test)]
mod tests {
    use super::Budget;

    #[test]
    fn the_budget_admits_what_fits_and_a_lone_task_always() {
        let budget = Budget::new(200); // a share of 100
        let first = budget.take(80);
        let order = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            // 30 more do not fit beside 80: this waits until the first is given back.
            s.spawn(|| {
                let _held = budget.take(30);
                order.lock().unwrap().push("second");
            });
            std::thread::sleep(std::time::Duration::from_millis(50));
            order.lock().unwrap().push("first done");
            drop(first);
        });
        assert_eq!(*order.lock().unwrap(), ["first done", "second"]);
        // 60 and 40 fit together; more than the whole share runs when it is alone.
        let (a, b) = (budget.take(60), budget.take(40));
        drop((a, b));
        drop(budget.take(1_000));
        assert_eq!(*budget.used.lock().unwrap(), (0, 0));
    }
}
