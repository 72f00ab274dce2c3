//! `valid_to` of a `latest` source's versions over all of staging, without sorting them.
//!
//! The rule ([`super::state::versions_sql`]): a version's `valid_to` is the extract day of the
//! next version of its key in version order (extract day, file, position), null for the newest
//! and for a null key. The SQL form sorts every version by key (a window over 1.56 M dossier
//! versions in a year: the sort spills ≈ 200 MB and costs ≈ 1 s of CPU). Staging already holds
//! the versions in version order: one part per source-day (its folder names the day), and the
//! ingest appends a day's files in name order, each file's records in position order. So one
//! pass over the key columns in that order, with the newest version of each key in a hash map,
//! gives every version's `valid_to`: when a key is seen again, its previous version ends on the
//! new one's extract day. The pass checks the order it relies on (strictly increasing extract
//! day, file, position); a staging it does not find in that order keeps the SQL form.
//!
//! A refresh that reads a `latest` source's versions from all of staging (a backfill,
//! `refresh --full`, the periods before the first month-end snapshot) registers the result as
//! `cchc_valid_to_<source>(extract_date, source_file, source_position)` and redefines
//! `<source>_versions` with it ([`super::state::indexed_versions_sql`]); `cchc sql`, `cchc serve` and a
//! cluster session keep the SQL form. A test compares both over the same staging.
//!
//! A run's ingest hands each staged part to a [`Feed`], whose thread passes the parts in day
//! order while the ingest goes on (its workers take the source-days in day order); the refresh
//! after it uses that index for a source whose published parts are exactly the ones passed (a
//! backfill into a new warehouse), and decodes staging otherwise.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Date32Array, RecordBatch};
use arrow::datatypes::{DataType, Date32Type, Int64Type};
use arrow::row::{RowConverter, SortField};
use datafusion::common::{exec_err, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use object_store::ObjectMeta;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use super::state::{versions_view_sql_with, Branch};
use crate::base::error::{Error, Result};
use crate::base::text::ident;
use crate::config::sources::versions_view;
use crate::config::{Config, Source, Versioning};
use crate::store::location::Location;
use crate::store::publish::Published;

/// A version without a successor (`valid_to` null).
const CURRENT: i32 = i32::MIN;

/// Files of staging decoded at once while the pass consumes them in order.
const READ_AHEAD: usize = 4;

/// The `valid_to` of every staged version of one source, by extract day, file and position.
pub struct VersionIndex {
    source: String,
    /// Per extract day (days since the epoch): its files in name order.
    days: HashMap<i32, Vec<FileVersions>>,
    versions: usize,
}

/// The versions of one landing file of one extract day.
struct FileVersions {
    name: Box<str>,
    /// The position of `valid_to[0]`.
    first: i64,
    /// Per position from `first` ([`CURRENT`] also where a position was not staged).
    valid_to: Vec<i32>,
}

impl std::fmt::Debug for VersionIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VersionIndex({}: {} versions, {} days)",
            self.source,
            self.versions,
            self.days.len()
        )
    }
}

/// Why the pass gives up: staging not in version order (the SQL form then applies).
struct Unordered(String);

impl VersionIndex {
    /// The index of `source` over its staging files `parts` (any order: they are read by path,
    /// which orders them by extract day). `None` when staging is not in version order.
    pub async fn build(
        wh: &Location,
        source: &Source,
        mut parts: Vec<ObjectMeta>,
    ) -> Result<Option<Self>> {
        parts.sort_by(|a, b| a.location.cmp(&b.location));
        let mut pass = Pass::new(source)?;
        let keys: Vec<String> = source.key.clone();
        let mut batches = futures::stream::iter(
            parts
                .into_iter()
                .map(|meta| tokio::spawn(read_identities(wh.clone(), meta, keys.clone()))),
        )
        .buffered(READ_AHEAD);
        while let Some(file) = batches.next().await {
            let file = file.map_err(|e| Error::Internal(format!("version index: {e}")))??;
            for b in file {
                if let Err(Unordered(why)) = pass.push(&b) {
                    tracing::debug!(source = %source.name, why = %why, "staging not in version order: valid_to by the window");
                    return Ok(None);
                }
            }
        }
        Ok(Some(pass.finish()))
    }

    /// `valid_to` of the version at (`day`, `file`, `position`): `Some(None)` while current,
    /// `None` when no such version was indexed.
    fn get(&self, day: i32, file: &str, position: i64) -> Option<Option<i32>> {
        let f = self.days.get(&day)?.iter().find(|f| &*f.name == file)?;
        let at = usize::try_from(position.checked_sub(f.first)?).ok()?;
        let v = *f.valid_to.get(at)?;
        Some((v != CURRENT).then_some(v))
    }

    fn valid_to(&self, day: &ArrayRef, file: &ArrayRef, position: &ArrayRef) -> DfResult<ArrayRef> {
        let day = day.as_primitive_opt::<Date32Type>();
        let position = position.as_primitive_opt::<Int64Type>();
        let file = arrow::compute::cast(file, &DataType::Utf8)?;
        let (Some(day), Some(position)) = (day, position) else {
            return exec_err!(
                "cchc_valid_to_{}: expects (date, text, bigint)",
                self.source
            );
        };
        let file = file.as_string::<i32>();
        let mut out = Vec::with_capacity(day.len());
        for i in 0..day.len() {
            if day.is_null(i) || file.is_null(i) || position.is_null(i) {
                return exec_err!(
                    "cchc_valid_to_{}: a version without its identity",
                    self.source
                );
            }
            let (d, f, p) = (day.value(i), file.value(i), position.value(i));
            match self.get(d, f, p) {
                Some(v) => out.push(v),
                None => {
                    return exec_err!(
                        "cchc_valid_to_{}: no indexed version at extract day {d}, file `{f}`, position {p} (staging changed during the refresh?)",
                        self.source
                    )
                }
            }
        }
        Ok(Arc::new(Date32Array::from(out)))
    }
}

/// The identities (key columns, extract day, file, position) of one staging file, decoded: a
/// local file read by its column chunks, an object store's fetched whole.
async fn read_identities(
    wh: Location,
    meta: ObjectMeta,
    keys: Vec<String>,
) -> Result<Vec<RecordBatch>> {
    enum Input {
        Local(std::path::PathBuf),
        Fetched(bytes::Bytes),
    }
    let name = meta.location.to_string();
    let input = match wh.local_root() {
        Some(root) => Input::Local(root.join(meta.location.as_ref())),
        None => Input::Fetched(wh.get(&meta.location).await?),
    };
    tokio::task::spawn_blocking(move || match input {
        Input::Fetched(bytes) => decode(
            ParquetRecordBatchReaderBuilder::try_new(bytes)?,
            &keys,
            &name,
        ),
        Input::Local(path) => {
            let file = std::fs::File::open(&path)
                .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
            decode(
                ParquetRecordBatchReaderBuilder::try_new(file)?,
                &keys,
                &name,
            )
        }
    })
    .await
    .map_err(|e| Error::Internal(format!("version index: {e}")))?
}

fn decode<T: parquet::file::reader::ChunkReader + 'static>(
    builder: ParquetRecordBatchReaderBuilder<T>,
    keys: &[String],
    name: &str,
) -> Result<Vec<RecordBatch>> {
    let roots = identity_columns(builder.schema(), keys, name)?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(64 * 1024)
        .build()?;
    Ok(reader.collect::<std::result::Result<Vec<_>, _>>()?)
}

/// The newest version of each key seen by a pass: an open-addressing table (linear probing) of
/// 24-byte slots, each a key's 128-bit keyed hash with its newest version, so that a lookup
/// reads one slot (a general hash map reads its control bytes, then a bucket of the key's bytes
/// elsewhere: two cache misses per version, 3% of a backfill's CPU) and the pass can fetch a
/// row's slot while it handles the rows before it ([`Newest::prefetch`]).
///
/// A key is its hash: SipHash-1-3 with 128 bits of output under a key drawn for the process, so
/// two keys could only be confused by a collision of 128-bit hashes (≈ 10⁻²⁸ for a year's
/// 400 k dossiers; no one can aim for one without the process's key).
struct Newest {
    slots: Vec<Slot>,
    len: usize,
    sip: siphasher::sip128::SipHasher13,
}

#[derive(Clone, Copy)]
struct Slot {
    hash: [u64; 2],
    /// (index in the pass's `files`, offset in its `valid_to`); `file` is [`EMPTY`] in a free
    /// slot.
    file: u32,
    at: u32,
}

const EMPTY: u32 = u32::MAX;
const FREE: Slot = Slot {
    hash: [0; 2],
    file: EMPTY,
    at: 0,
};
/// Rows ahead of the current one whose slot is fetched.
const AHEAD: usize = 8;

impl Newest {
    fn new() -> Self {
        let random = std::collections::hash_map::RandomState::new();
        let key = |i: u64| std::hash::BuildHasher::hash_one(&random, i);
        Self {
            slots: vec![FREE; 1 << 12],
            len: 0,
            sip: siphasher::sip128::SipHasher13::new_with_keys(key(0), key(1)),
        }
    }

    fn hash(&self, key: &[u8]) -> [u64; 2] {
        use siphasher::sip128::Hasher128;
        let mut h = self.sip;
        h.write(key);
        let h = h.finish128();
        [h.h1, h.h2]
    }

    fn home(&self, hash: [u64; 2]) -> usize {
        hash[0] as usize & (self.slots.len() - 1)
    }

    /// Asks the CPU for the slot `hash` starts at, to be read a few rows later.
    fn prefetch(&self, hash: [u64; 2]) {
        #[cfg(target_arch = "x86_64")]
        {
            let slot = &self.slots[self.home(hash)];
            // SAFETY: a prefetch has no effect on memory; the address is a live slot.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    (slot as *const Slot).cast(),
                )
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = hash;
    }

    /// Records `version` as the newest of the key hashed to `hash`; returns the one it replaces.
    fn replace(&mut self, hash: [u64; 2], version: (u32, u32)) -> Option<(u32, u32)> {
        // At most seven eighths full, so that a probe stays short.
        if (self.len + 1) * 8 > self.slots.len() * 7 {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(hash);
        loop {
            let slot = &mut self.slots[i];
            if slot.file == EMPTY {
                *slot = Slot {
                    hash,
                    file: version.0,
                    at: version.1,
                };
                self.len += 1;
                return None;
            }
            if slot.hash == hash {
                let previous = (slot.file, slot.at);
                (slot.file, slot.at) = version;
                return Some(previous);
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let bigger = vec![FREE; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, bigger);
        let mask = self.slots.len() - 1;
        for s in old.into_iter().filter(|s| s.file != EMPTY) {
            let mut i = self.home(s.hash);
            while self.slots[i].file != EMPTY {
                i = (i + 1) & mask;
            }
            self.slots[i] = s;
        }
    }
}

/// The pass in version order.
struct Pass {
    source: String,
    keys: usize,
    converter: RowConverter,
    files: Vec<(i32, FileVersions)>,
    /// Key → the newest version seen: (index in `files`, offset in its `valid_to`). A key is its
    /// text's bytes when the key is one text column, else its row format.
    newest: Newest,
    last_position: i64,
    versions: usize,
}

impl Pass {
    fn new(source: &Source) -> Result<Self> {
        let schema = crate::ingest::typing::staging_schema(source);
        let types = source
            .key
            .iter()
            .map(|k| {
                schema
                    .field_with_name(k)
                    .map(|f| f.data_type().clone())
                    .map_err(|_| Error::Internal(format!("{}: no key column `{k}`", source.name)))
            })
            .collect::<Result<Vec<_>>>()?;
        Self::with_key_types(&source.name, types)
    }

    fn with_key_types(source: &str, types: Vec<DataType>) -> Result<Self> {
        Ok(Self {
            source: source.to_string(),
            keys: types.len(),
            converter: RowConverter::new(types.into_iter().map(SortField::new).collect())?,
            files: Vec::new(),
            newest: Newest::new(),
            last_position: 0,
            versions: 0,
        })
    }

    /// Columns: the key columns, `extract_date`, `source_file`, `source_position`.
    fn push(&mut self, b: &RecordBatch) -> std::result::Result<(), Unordered> {
        let cols = b.columns();
        let keys = &cols[..self.keys];
        let day = cols[self.keys].as_primitive::<Date32Type>();
        let file = arrow::compute::cast(&cols[self.keys + 1], &DataType::Utf8)
            .map_err(|e| Unordered(e.to_string()))?;
        let file = file.as_string::<i32>();
        let position = cols[self.keys + 2].as_primitive::<Int64Type>();
        // One text column (a code): its bytes; otherwise the row format of all key columns.
        let text = match keys {
            [k] => k.as_string_opt::<i32>(),
            _ => None,
        };
        let rows = match text {
            Some(_) => None,
            None => Some(
                self.converter
                    .convert_columns(keys)
                    .map_err(|e| Unordered(e.to_string()))?,
            ),
        };
        // Each row's key hashed first (none for a null key, never the same entity as another
        // version, as `=` in the window), so that a row's slot is fetched while the rows before
        // it are passed.
        let hashes: Vec<Option<[u64; 2]>> = (0..b.num_rows())
            .map(|i| {
                if keys.iter().any(|k| k.is_null(i)) {
                    return None;
                }
                let key: &[u8] = match (&rows, text) {
                    (Some(rows), _) => rows.row(i).data(),
                    (None, Some(text)) => text.value(i).as_bytes(),
                    (None, None) => unreachable!("a key is text or rows"),
                };
                Some(self.newest.hash(key))
            })
            .collect();
        for (i, hash) in hashes.iter().enumerate() {
            if let Some(Some(ahead)) = hashes.get(i + AHEAD) {
                self.newest.prefetch(*ahead);
            }
            let (d, f, p) = (day.value(i), file.value(i), position.value(i));
            let same_file =
                matches!(self.files.last(), Some((ld, lf)) if *ld == d && &*lf.name == f);
            if same_file {
                if p <= self.last_position {
                    return Err(Unordered(format!(
                        "position {p} after {}",
                        self.last_position
                    )));
                }
            } else {
                if let Some((ld, lf)) = self.files.last() {
                    if (d, f) <= (*ld, &*lf.name) {
                        return Err(Unordered(format!(
                            "file `{f}` of day {d} after `{}`",
                            lf.name
                        )));
                    }
                }
                self.files.push((
                    d,
                    FileVersions {
                        name: f.into(),
                        first: p,
                        valid_to: Vec::new(),
                    },
                ));
            }
            self.last_position = p;
            let fi = self.files.len() - 1;
            let fv = &mut self.files[fi].1;
            let at = usize::try_from(p - fv.first)
                .ok()
                .filter(|&at| at < u32::MAX as usize)
                .ok_or_else(|| Unordered(format!("position {p} out of range")))?;
            fv.valid_to.resize(at + 1, CURRENT);
            self.versions += 1;
            let Some(hash) = *hash else {
                continue;
            };
            if let Some((pf, pa)) = self.newest.replace(hash, (fi as u32, at as u32)) {
                self.files[pf as usize].1.valid_to[pa as usize] = d;
            }
        }
        Ok(())
    }

    fn finish(self) -> VersionIndex {
        let mut days: HashMap<i32, Vec<FileVersions>> = HashMap::new();
        for (d, f) in self.files {
            days.entry(d).or_default().push(f);
        }
        VersionIndex {
            source: self.source,
            days,
            versions: self.versions,
        }
    }
}

/// The passes of a run's ingest: each `latest` source's staged parts are handed over as they are
/// written (as [`crate::ingest::StagedParts`]) and passed in version order by a thread of their
/// own while the ingest goes on, so that a refresh over exactly those parts (a backfill into a new warehouse) neither
/// decodes staging again nor waits for the pass ([`Indexes::with_ingested`]). A refresh whose
/// staging holds other parts too builds its indexes from the files as before.
pub struct Feed {
    tx: Option<std::sync::mpsc::Sender<Fed>>,
    collector: Option<std::thread::JoinHandle<Ingested>>,
    /// The rank of each of the run's days (version order is day order).
    days: HashMap<chrono::NaiveDate, usize>,
    /// Source name → its slot in the collector.
    slots: HashMap<String, usize>,
}

/// One source-day of the ingest: its staged part and the part's identities (the key columns,
/// `extract_date`, `source_file`, `source_position`), or none when it staged no row.
struct Fed {
    slot: usize,
    day: usize,
    part: Option<(object_store::path::Path, Vec<RecordBatch>)>,
}

/// The indexes passed during an ingest, per source: the parts passed, in order, and the index
/// (`None` when the parts were not in version order, or some day of the run never came).
#[derive(Default)]
pub struct Ingested(HashMap<String, (Vec<object_store::path::Path>, Option<VersionIndex>)>);

impl Feed {
    /// A collector for the `latest` sources of `cfg` over the run's `days`.
    pub fn start(cfg: &Config, days: &[chrono::NaiveDate]) -> Result<Self> {
        let latest: Vec<&Source> = cfg
            .sources
            .iter()
            .filter(|s| s.versioning == Versioning::Latest)
            .collect();
        let mut sorted = days.to_vec();
        sorted.sort();
        sorted.dedup();
        let n_days = sorted.len();
        let passes = latest
            .iter()
            .map(|s| Pass::new(s).map(|p| (s.name.clone(), p)))
            .collect::<Result<Vec<_>>>()?;
        let (tx, rx) = std::sync::mpsc::channel::<Fed>();
        let collector = std::thread::Builder::new()
            .name("cchc-version-index".into())
            .spawn(move || collect(rx, passes, n_days))
            .map_err(|e| Error::Internal(format!("version index thread: {e}")))?;
        Ok(Self {
            tx: Some(tx),
            collector: Some(collector),
            days: sorted
                .into_iter()
                .enumerate()
                .map(|(i, d)| (d, i))
                .collect(),
            slots: latest
                .iter()
                .enumerate()
                .map(|(i, s)| (s.name.clone(), i))
                .collect(),
        })
    }

    /// The indexes passed, once the ingest is over.
    pub fn finish(mut self) -> Ingested {
        drop(self.tx.take());
        self.collector
            .take()
            .and_then(|c| c.join().ok())
            .unwrap_or_default()
    }
}

impl crate::ingest::StagedParts for Feed {
    /// Only `latest` sources are passed.
    fn part(
        &self,
        source: &Source,
        day: chrono::NaiveDate,
        part: Option<(object_store::path::Path, &[RecordBatch])>,
    ) -> Result<()> {
        let (Some(&slot), Some(&day), Some(tx)) =
            (self.slots.get(&source.name), self.days.get(&day), &self.tx)
        else {
            return Ok(());
        };
        let part = match part {
            None => None,
            Some((path, batches)) => Some((path, identities(source, batches)?)),
        };
        // A collector that is gone only loses the head start.
        let _ = tx.send(Fed { slot, day, part });
        Ok(())
    }
}

/// The identities of staged batches ([`identity_columns`]).
fn identities(source: &Source, batches: &[RecordBatch]) -> Result<Vec<RecordBatch>> {
    batches
        .iter()
        .filter(|b| b.num_rows() > 0)
        .map(|b| Ok(b.project(&identity_columns(&b.schema(), &source.key, &source.name)?)?))
        .collect()
}

/// Where the identities are in `schema` (of the staged batches or file `name`): the key columns,
/// `extract_date`, `source_file`, `source_position`, in the order [`Pass::push`] reads them.
fn identity_columns(
    schema: &arrow::datatypes::Schema,
    keys: &[String],
    name: &str,
) -> Result<Vec<usize>> {
    keys.iter()
        .map(String::as_str)
        .chain(["extract_date", "source_file", "source_position"])
        .map(|col| {
            schema
                .index_of(col)
                .map_err(|_| Error::Internal(format!("{name}: no column `{col}`")))
        })
        .collect()
}

/// The collector's loop: each source's parts passed in day order as they arrive.
fn collect(
    rx: std::sync::mpsc::Receiver<Fed>,
    passes: Vec<(String, Pass)>,
    days: usize,
) -> Ingested {
    struct Slot {
        name: String,
        pass: Option<Pass>,
        next: usize,
        waiting:
            std::collections::BTreeMap<usize, Option<(object_store::path::Path, Vec<RecordBatch>)>>,
        parts: Vec<object_store::path::Path>,
    }
    let mut slots: Vec<Slot> = passes
        .into_iter()
        .map(|(name, pass)| Slot {
            name,
            pass: Some(pass),
            next: 0,
            waiting: Default::default(),
            parts: Vec::new(),
        })
        .collect();
    for fed in rx {
        let s = &mut slots[fed.slot];
        s.waiting.insert(fed.day, fed.part);
        while let Some(part) = s.waiting.remove(&s.next) {
            s.next += 1;
            let Some((path, batches)) = part else {
                continue;
            };
            s.parts.push(path);
            if let Some(pass) = &mut s.pass {
                if let Some(Unordered(why)) = batches.iter().find_map(|b| pass.push(b).err()) {
                    tracing::debug!(source = %s.name, why = %why, "ingested parts not in version order");
                    s.pass = None;
                }
            }
        }
    }
    Ingested(
        slots
            .into_iter()
            .map(|s| {
                let index = s.pass.filter(|_| s.next == days).map(Pass::finish);
                (s.name, (s.parts, index))
            })
            .collect(),
    )
}

/// `cchc_valid_to_<source>(extract_date, source_file, source_position)`: a staged version's
/// `valid_to` from the [`VersionIndex`] of its source.
#[derive(Debug)]
struct ValidTo {
    name: String,
    signature: Signature,
    index: Arc<VersionIndex>,
}

impl PartialEq for ValidTo {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.index, &other.index)
    }
}
impl Eq for ValidTo {}
impl Hash for ValidTo {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

impl ScalarUDFImpl for ValidTo {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Date32)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [day, file, position] = arrays.as_slice() else {
            return exec_err!("{}() takes three values", self.name);
        };
        Ok(ColumnarValue::Array(
            self.index.valid_to(day, file, position)?,
        ))
    }
}

/// The function's name for a source.
pub fn function_name(source: &Source) -> String {
    format!("cchc_valid_to_{}", source.name)
}

/// The version indexes of a refresh's session, each built and registered on first use.
#[derive(Default)]
pub struct Indexes {
    /// Per source: its function's name, or `None` (no staging, or not in version order).
    built: HashMap<String, Option<String>>,
    /// Indexes passed during the run's ingest ([`Feed`]), used for a source whose published
    /// parts are exactly the ones passed.
    ingested: Ingested,
}

impl Indexes {
    /// With the indexes passed during the run's ingest.
    pub fn with_ingested(ingested: Ingested) -> Self {
        Self {
            built: HashMap::new(),
            ingested,
        }
    }

    /// The name of `source`'s `valid_to` function in `ctx` (quoted), its index built and the
    /// function registered on first use; `None` for a source that is not `latest`, without
    /// staging, or whose staging is not in version order.
    pub async fn function(
        &mut self,
        ctx: &SessionContext,
        at: (&Location, &Published),
        source: &Source,
    ) -> Result<Option<String>> {
        self.build(ctx, at, &[source]).await?;
        Ok(self.name(source))
    }

    /// The function's name of a source whose index was built ([`Self::build`]), if it has one.
    fn name(&self, source: &Source) -> Option<String> {
        self.built.get(&source.name).cloned().flatten()
    }

    /// Build the indexes of `sources` not built yet, at once (each pass is one thread's work,
    /// and a source's files are decoded while the others' passes run), and register their
    /// functions in `ctx`.
    pub async fn build(
        &mut self,
        ctx: &SessionContext,
        (wh, published): (&Location, &Published),
        sources: &[&Source],
    ) -> Result<()> {
        let todo: Vec<&Source> = sources
            .iter()
            .copied()
            .filter(|s| s.versioning == Versioning::Latest && !self.built.contains_key(&s.name))
            .collect();
        let builds = todo.iter().map(|source| {
            let (wh, source) = (wh.clone(), (*source).clone());
            let ingested = self.ingested.0.remove(&source.name);
            async move {
                let listed = wh.list(&format!("staging/{}", source.name)).await?;
                let mut parts = published.current(&wh, listed);
                parts.sort_by(|a, b| a.location.cmp(&b.location));
                if let Some((passed, Some(index))) = ingested {
                    if passed.iter().eq(parts.iter().map(|p| &p.location)) {
                        tracing::debug!(source = %source.name, index = ?index, "version index passed during the ingest");
                        return Ok(Some(index));
                    }
                }
                // A task each: the passes run on the runtime's workers side by side.
                tokio::spawn(async move {
                    let t0 = std::time::Instant::now();
                    let index = match parts.is_empty() {
                        true => None,
                        false => VersionIndex::build(&wh, &source, parts).await?,
                    };
                    if let Some(index) = &index {
                        tracing::debug!(source = %source.name, index = ?index, ms = t0.elapsed().as_millis() as u64, "version index built");
                    }
                    Ok::<_, Error>(index)
                })
                .await
                .map_err(|e| Error::Internal(format!("version index: {e}")))?
            }
        });
        let indexes = futures::future::try_join_all(builds).await?;
        for (source, index) in todo.into_iter().zip(indexes) {
            let f = index.map(|index| {
                let name = function_name(source);
                ctx.register_udf(ScalarUDF::new_from_impl(ValidTo {
                    name: name.clone(),
                    signature: Signature::any(3, Volatility::Immutable),
                    index: Arc::new(index),
                }));
                ident(&name)
            });
            self.built.insert(source.name.clone(), f);
        }
        Ok(())
    }
}

/// For every `latest` source whose state some period reads from all of staging (no branch in
/// `branches`, or a branch without a snapshot), redefine `<source>_versions` with its index's
/// function ([`Indexes::function`]); such a source gets a branch over all of staging in
/// `branches` if it had none, so that [`super::models::replace_state_views`] rebuilds its state
/// view over the new versions view. Returns the sources redefined.
pub async fn use_version_indexes(
    ctx: &SessionContext,
    cfg: &Config,
    (wh, published): (&Location, &Published),
    branches: &mut std::collections::BTreeMap<String, Vec<Branch>>,
    indexes: &mut Indexes,
) -> Result<Vec<String>> {
    let reads_all: Vec<&Source> = cfg
        .sources
        .iter()
        .filter(|s| s.versioning == Versioning::Latest)
        .filter(|s| match branches.get(&s.name) {
            None => true,
            Some(b) => b.iter().any(|b| b.input.is_none()),
        })
        .collect();
    indexes.build(ctx, (wh, published), &reads_all).await?;
    let mut done = Vec::new();
    for source in reads_all {
        let Some(f) = indexes.name(source) else {
            continue;
        };
        ctx.deregister_table(versions_view(source).as_str())?;
        ctx.sql(&versions_view_sql_with(source, Some(&f))).await?;
        branches
            .entry(source.name.clone())
            .or_insert_with(Branch::all);
        done.push(source.name.clone());
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, RecordBatch, StringArray};

    /// A batch of identities: the key columns given, then (extract day, file, position) per row.
    fn with_keys(keys: Vec<(&str, ArrayRef)>, rows: &[(i32, &str, i64)]) -> RecordBatch {
        let mut cols = keys;
        cols.extend([
            (
                "extract_date",
                Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| r.0))) as ArrayRef,
            ),
            (
                "source_file",
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            ),
            (
                "source_position",
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
            ),
        ]);
        RecordBatch::try_from_iter(cols).unwrap()
    }

    /// A batch of identities: (key, extract day, file, position).
    fn batch(rows: &[(Option<&str>, i32, &str, i64)]) -> RecordBatch {
        let key = Arc::new(StringArray::from_iter(rows.iter().map(|r| r.0))) as ArrayRef;
        let rest: Vec<_> = rows.iter().map(|r| (r.1, r.2, r.3)).collect();
        with_keys(vec![("k", key)], &rest)
    }

    fn pass() -> Pass {
        Pass::with_key_types("t", vec![DataType::Utf8]).unwrap()
    }

    #[test]
    fn each_version_ends_at_the_next_of_its_key() {
        let mut p = pass();
        // Day 10: A twice in file a (the second replaces the first on its own day), B, then A in
        // a later file; position 3 of file a was not staged. Day 12: A again. A null key never
        // ends nor is ended.
        p.push(&batch(&[
            (Some("A"), 10, "a", 1),
            (Some("B"), 10, "a", 2),
            (None, 10, "a", 4),
            (Some("A"), 10, "a", 5),
            (Some("A"), 10, "b", 1),
        ]))
        .ok()
        .unwrap();
        p.push(&batch(&[(None, 12, "a", 1), (Some("A"), 12, "a", 2)]))
            .ok()
            .unwrap();
        let ix = p.finish();
        assert_eq!(ix.get(10, "a", 1), Some(Some(10)));
        assert_eq!(ix.get(10, "a", 2), Some(None));
        assert_eq!(ix.get(10, "a", 4), Some(None));
        assert_eq!(ix.get(10, "a", 5), Some(Some(10)));
        assert_eq!(ix.get(10, "b", 1), Some(Some(12)));
        assert_eq!(ix.get(12, "a", 1), Some(None));
        assert_eq!(ix.get(12, "a", 2), Some(None));
        assert_eq!(ix.get(11, "a", 1), None, "no such day");
        assert_eq!(ix.get(10, "c", 1), None, "no such file");
        assert_eq!(ix.get(10, "a", 6), None, "no such position");
        assert_eq!(ix.versions, 7);
    }

    #[test]
    fn parts_handed_over_out_of_order_are_passed_in_day_order() {
        let day10 = batch(&[(Some("A"), 10, "a", 1), (Some("B"), 10, "a", 2)]);
        let day12 = batch(&[(Some("B"), 12, "a", 1), (Some("A"), 12, "b", 1)]);
        let path = |d: u32| object_store::path::Path::from(format!("staging/t/d={d}/part.parquet"));
        let run = |fed: Vec<(usize, Option<(u32, RecordBatch)>)>| {
            let (tx, rx) = std::sync::mpsc::channel();
            for (day, part) in fed {
                let part = part.map(|(d, b)| (path(d), vec![b]));
                tx.send(Fed { slot: 0, day, part }).unwrap();
            }
            drop(tx);
            let mut out = collect(rx, vec![("t".into(), pass())], 3);
            out.0.remove("t").unwrap()
        };
        // The last day first, the day without a staged row between.
        let (parts, index) = run(vec![
            (2, Some((12, day12.clone()))),
            (1, None),
            (0, Some((10, day10.clone()))),
        ]);
        assert_eq!(parts, vec![path(10), path(12)]);
        let index = index.expect("every day came");
        let mut plain = pass();
        plain.push(&day10).ok().unwrap();
        plain.push(&day12).ok().unwrap();
        let plain = plain.finish();
        for (d, f, p) in [(10, "a", 1), (10, "a", 2), (12, "a", 1), (12, "b", 1)] {
            assert_eq!(index.get(d, f, p), plain.get(d, f, p), "{d} {f} {p}");
        }
        assert_eq!(index.get(10, "a", 1), Some(Some(12)));
        // A day that never came (a failed ingest): no index.
        let (parts, index) = run(vec![(2, Some((12, day12))), (0, Some((10, day10)))]);
        assert_eq!(parts, vec![path(10)]);
        assert!(index.is_none());
    }

    #[test]
    fn long_keys_and_keys_of_two_columns_are_matched_whole() {
        // Long text keys differing only at their end.
        let long = |c: char| format!("{}{c}", "x".repeat(40));
        let (a, b) = (long('a'), long('b'));
        let mut p = pass();
        p.push(&batch(&[(Some(&a), 10, "f", 1), (Some(&b), 10, "f", 2)]))
            .ok()
            .unwrap();
        p.push(&batch(&[(Some(&a), 11, "f", 1)])).ok().unwrap();
        let ix = p.finish();
        assert_eq!(ix.get(10, "f", 1), Some(Some(11)));
        assert_eq!(ix.get(10, "f", 2), Some(None));
        // A key of two columns (text, number): (A, 1) and (A, 2) are different entities.
        let two = |rows: &[(&str, i64, i32, i64)]| {
            let k = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))) as ArrayRef;
            let n = Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))) as ArrayRef;
            let rest: Vec<_> = rows.iter().map(|r| (r.2, "f", r.3)).collect();
            with_keys(vec![("k", k), ("n", n)], &rest)
        };
        let mut p = Pass::with_key_types("t", vec![DataType::Utf8, DataType::Int64]).unwrap();
        p.push(&two(&[("A", 1, 10, 1), ("A", 2, 10, 2)]))
            .ok()
            .unwrap();
        p.push(&two(&[("A", 1, 12, 1)])).ok().unwrap();
        let ix = p.finish();
        assert_eq!(ix.get(10, "f", 1), Some(Some(12)));
        assert_eq!(ix.get(10, "f", 2), Some(None));
        assert_eq!(ix.get(12, "f", 1), Some(None));
    }

    #[test]
    fn many_keys_grow_the_table_and_each_version_ends_at_the_next_of_its_own_key() {
        // 20,000 keys (the table starts with 4,096 slots and grows three times), each seen on a
        // pseudo-random subset of 6 days, checked against the next day of the same key.
        let keys: Vec<String> = (0..20_000).map(|k| format!("H40.{k:06}")).collect();
        let seen = |k: usize, d: i32| (k * 7 + d as usize * 13) % 5 < 3;
        let mut p = pass();
        for d in 10..16 {
            let rows: Vec<_> = (0..keys.len())
                .filter(|&k| seen(k, d))
                .enumerate()
                .map(|(pos, k)| (Some(keys[k].as_str()), d, "f", pos as i64 + 1))
                .collect();
            p.push(&batch(&rows)).ok().unwrap();
        }
        let ix = p.finish();
        for d in 10..16 {
            for (pos, k) in (0..keys.len()).filter(|&k| seen(k, d)).enumerate() {
                let next = (d + 1..16).find(|&n| seen(k, n));
                assert_eq!(
                    ix.get(d, "f", pos as i64 + 1),
                    Some(next),
                    "key {k} day {d}"
                );
            }
        }
    }

    #[test]
    fn versions_out_of_order_are_refused() {
        for rows in [
            vec![(Some("A"), 10, "a", 2), (Some("A"), 10, "a", 2)],
            vec![(Some("A"), 10, "b", 1), (Some("A"), 10, "a", 1)],
            vec![(Some("A"), 11, "a", 1), (Some("A"), 10, "a", 1)],
        ] {
            assert!(pass().push(&batch(&rows)).is_err(), "{rows:?}");
        }
    }
}
