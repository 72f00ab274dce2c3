//! Every read and write of the landing area and the warehouse goes through `object_store`, so a
//! local folder and an S3-compatible bucket are the same code path. A location is a local path
//! (absolute or relative to the working directory) or a URL: `file://…`, or `s3://bucket/prefix`
//! for an S3-compatible store, configured by the usual `AWS_*` environment variables
//! (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint). Conditional puts (create only if absent) are
//! what the warehouse lock relies on; S3 and S3-compatible servers offer them (`If-None-Match`).

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};

use crate::base::error::{Error, Result};
use crate::config::units::Units;

/// A store and the prefix inside it that a location names.
#[derive(Clone, Debug)]
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: Path,
    /// As the user wrote it, for messages.
    pub display: String,
    /// The root of the store (`file:///abs/path/`, `s3://bucket/`): object paths appended to it
    /// make the URLs DataFusion reads.
    pub url: url::Url,
}

impl Location {
    /// Open a location; a local folder is created when `create` is set.
    pub fn open(location: &str, create: bool) -> Result<Self> {
        let is_url = location.contains("://");
        if location.starts_with("s3://") {
            return Self::open_s3(location);
        }
        if is_url && !location.starts_with("file://") {
            let scheme = location.split("://").next().unwrap_or("");
            return Err(Error::Usage(format!(
                "`{location}`: the `{scheme}://` store is not supported; use a local path, a file:// or an s3:// URL"
            )));
        }
        let path = if is_url {
            url::Url::parse(location)
                .ok()
                .and_then(|u| u.to_file_path().ok())
                .ok_or_else(|| Error::Usage(format!("`{location}` is not a valid file:// URL")))?
        } else {
            std::path::PathBuf::from(location)
        };
        if create {
            std::fs::create_dir_all(&path)
                .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
        }
        let abs = std::path::absolute(&path)
            .map_err(|e| Error::io(format!("bad path {}", path.display()), e))?;
        if !abs.is_dir() {
            return Err(Error::io(
                location.to_string(),
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder"),
            ));
        }
        let store = LocalFileSystem::new_with_prefix(&abs)?;
        let url = url::Url::from_directory_path(&abs)
            .map_err(|_| Error::Internal(format!("cannot make a URL of {}", abs.display())))?;
        Ok(Self {
            store: Arc::new(store),
            prefix: Path::default(),
            display: location.to_string(),
            url,
        })
    }

    /// `s3://bucket/prefix`: the bucket's store, configured from the environment; the prefix is
    /// the folder inside it. A bucket has no folders to create.
    fn open_s3(location: &str) -> Result<Self> {
        let parsed = url::Url::parse(location)
            .map_err(|e| Error::Usage(format!("`{location}` is not a valid s3:// URL: {e}")))?;
        let bucket = parsed
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| Error::Usage(format!("`{location}` names no bucket")))?
            .to_string();
        let store = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .build()
            .map_err(|e| Error::Usage(format!("`{location}`: {e}")))?;
        let prefix = Path::from_iter(parsed.path().split('/').filter(|s| !s.is_empty()));
        let url = url::Url::parse(&format!("s3://{bucket}/"))
            .map_err(|e| Error::Usage(format!("`{location}`: {e}")))?;
        Ok(Self {
            store: Arc::new(store),
            prefix,
            display: location.trim_end_matches('/').to_string(),
            url,
        })
    }

    /// The local folder of a `file://` location.
    pub fn local_root(&self) -> Option<std::path::PathBuf> {
        (self.url.scheme() == "file")
            .then(|| self.url.to_file_path().ok())
            .flatten()
    }

    /// The path of an object relative to this location's prefix.
    pub fn relative<'a>(&self, p: &'a Path) -> &'a str {
        let full = p.as_ref();
        let prefix = self.prefix.as_ref();
        if prefix.is_empty() {
            return full;
        }
        full.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('/'))
            .unwrap_or(full)
    }

    pub fn path(&self, rel: &str) -> Path {
        let mut p = self.prefix.clone();
        for part in rel.split('/').filter(|s| !s.is_empty()) {
            p = p.clone().join(part);
        }
        p
    }

    /// Objects directly or indirectly below `rel`, sorted by path.
    pub async fn list(&self, rel: &str) -> Result<Vec<ObjectMeta>> {
        let p = self.path(rel);
        let mut v: Vec<ObjectMeta> = match self.store.list(Some(&p)).try_collect().await {
            Ok(v) => v,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(Error::io(format!("cannot list {}/{rel}", self.display), e)),
        };
        v.sort_by(|a, b| a.location.as_ref().cmp(b.location.as_ref()));
        Ok(v)
    }

    pub async fn get(&self, path: &Path) -> Result<Bytes> {
        let r = self
            .store
            .get(path)
            .await
            .map_err(|e| Error::io(format!("cannot read {}/{path}", self.display), e))?;
        r.bytes()
            .await
            .map_err(|e| Error::io(format!("cannot read {}/{path}", self.display), e))
    }

    /// Like `get`, but `None` when the object does not exist.
    pub async fn get_opt(&self, path: &Path) -> Result<Option<Bytes>> {
        match self.store.get(path).await {
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::io(format!("cannot read {}/{path}", self.display), e)),
            Ok(r) => r
                .bytes()
                .await
                .map(Some)
                .map_err(|e| Error::io(format!("cannot read {}/{path}", self.display), e)),
        }
    }

    pub async fn put(&self, path: &Path, data: Bytes) -> Result<()> {
        self.store
            .put(path, PutPayload::from_bytes(data))
            .await
            .map_err(|e| Error::io(format!("cannot write {}/{path}", self.display), e))?;
        Ok(())
    }

    /// The file of `path` on a local location whose object names are plain (ours: partition
    /// folders, `part-<run>.parquet`, ledger entries; not a landing file's name, which the object
    /// store escapes).
    fn plain_local_file(&self, path: &Path) -> Option<std::path::PathBuf> {
        let rel = self.relative(path);
        let plain = rel
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.=".contains(&b));
        self.local_root()
            .filter(|_| plain && !rel.split('/').any(|p| p.starts_with('.')))
            .map(|root| root.join(rel))
    }

    /// [`Self::put`] from a thread that may block (the ingest's workers). On a local location
    /// the calling thread writes the file itself, as the object store does (parent folders
    /// created, a temporary file renamed over the name) but without handing the work to the
    /// runtime's blocking pool and waiting for it: three hand-overs per source-day kept a
    /// quarter of the ingest's two cores idle. Elsewhere, the store's put on `rt`.
    pub fn put_blocking(
        &self,
        rt: &tokio::runtime::Handle,
        path: &Path,
        data: Bytes,
    ) -> Result<()> {
        let Some(file) = self.plain_local_file(path) else {
            return rt.block_on(self.put(path, data));
        };
        // Unbuffered: the whole file is one write.
        let mut out = LocalFile::create(self, path, file, 0)?;
        std::io::Write::write_all(&mut out, &data).map_err(|e| out.fail(e))?;
        out.commit()
    }

    /// A file of a local location written as it is produced (through a buffer of 1 MiB),
    /// published under `path` by [`LocalFile::commit`] (as [`Self::put_blocking`] does); `None`
    /// elsewhere.
    pub fn local_file(&self, path: &Path) -> Option<Result<LocalFile>> {
        self.plain_local_file(path)
            .map(|file| LocalFile::create(self, path, file, 1 << 20))
    }

    /// Create `path` only if it does not exist (a conditional put, which S3-compatible stores and
    /// the local file system both offer); `Ok(false)` when it already exists.
    pub async fn create_new(&self, path: &Path, data: Bytes) -> Result<bool> {
        let opts = object_store::PutOptions::from(object_store::PutMode::Create);
        match self
            .store
            .put_opts(path, PutPayload::from_bytes(data), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(Error::io(
                format!("cannot create {}/{path}", self.display),
                e,
            )),
        }
    }

    pub async fn delete(&self, path: &Path) -> Result<()> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::io(
                format!("cannot delete {}/{path}", self.display),
                e,
            )),
        }
    }
}

/// The last segment of an object path.
pub fn file_name(p: &Path) -> &str {
    p.filename().unwrap_or("")
}

/// Read units.csv from a local path or URL, with the unit changes beside it when present.
pub async fn read_units(path: &str) -> Result<Units> {
    let (dir, name) = match path.rsplit_once('/') {
        Some((d, n)) => (if d.is_empty() { "/" } else { d }, n),
        None => (".", path),
    };
    let loc =
        Location::open(dir, false).map_err(|e| Error::Usage(format!("units seed {path}: {e}")))?;
    let bytes = loc.get(&loc.path(name)).await?;
    let units = Units::parse(&bytes, path)?;
    // The unit changes, when present, live beside units.csv (`<reference>/unit_changes.csv`).
    let changes = crate::config::units::CHANGES_FILE;
    match loc.get_opt(&loc.path(changes)).await? {
        Some(b) => {
            let shown = match path.rsplit_once('/') {
                Some((d, _)) => format!("{d}/{changes}"),
                None => changes.to_string(),
            };
            units.with_changes(&b, &shown)
        }
        None => Ok(units),
    }
}

/// Where a location is, for comparing two: a local absolute path (links resolved as far as the
/// path exists), or a bucket and the path segments inside it.
enum Place {
    Local(std::path::PathBuf),
    Bucket(String, Vec<String>),
    Other,
}

fn place(location: &str) -> Place {
    if let Some(rest) = location.strip_prefix("s3://") {
        let mut parts = rest.split('/').filter(|s| !s.is_empty()).map(String::from);
        let bucket = parts.next().unwrap_or_default();
        return Place::Bucket(bucket, parts.collect());
    }
    let path = if location.starts_with("file://") {
        match url::Url::parse(location)
            .ok()
            .and_then(|u| u.to_file_path().ok())
        {
            Some(p) => p,
            None => return Place::Other,
        }
    } else if location.contains("://") {
        return Place::Other;
    } else {
        std::path::PathBuf::from(location)
    };
    let Ok(abs) = std::path::absolute(&path) else {
        return Place::Other;
    };
    // Resolve links in the part that exists, keep the rest as written.
    let mut existing = abs.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.file_name(), existing.parent()) {
            (Some(n), Some(p)) => {
                rest.push(n.to_os_string());
                existing = p.to_path_buf();
            }
            _ => break,
        }
    }
    let mut real = std::fs::canonicalize(&existing).unwrap_or(existing);
    for n in rest.into_iter().rev() {
        real.push(n);
    }
    Place::Local(crate::config::clean_path(&real))
}

/// Refuse (a usage error, before anything is written) a warehouse that is a filesystem root, is
/// the landing area, lies inside it or contains it: vacuuming and publishing would then touch the
/// landing's files or the whole disk.
pub fn check_locations(landing: &str, warehouse: &str) -> Result<()> {
    let refuse = |why: &str| {
        Err(Error::Usage(format!(
            "the warehouse `{warehouse}` {why}; choose a folder of its own, apart from the landing area `{landing}`"
        )))
    };
    match (place(landing), place(warehouse)) {
        (_, Place::Local(w)) if w.parent().is_none() => refuse("is the root of the file system"),
        (Place::Local(l), Place::Local(w)) => {
            if w == l {
                refuse("is the landing area")
            } else if w.starts_with(&l) {
                refuse("lies inside the landing area")
            } else if l.starts_with(&w) {
                refuse("contains the landing area")
            } else {
                Ok(())
            }
        }
        (Place::Bucket(lb, lp), Place::Bucket(wb, wp)) if lb == wb => {
            if wp == lp {
                refuse("is the landing area")
            } else if wp.starts_with(&lp) {
                refuse("lies inside the landing area")
            } else if lp.starts_with(&wp) {
                refuse("contains the landing area")
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// A local file being written under a temporary name (`<name>#<digits>`, the object store's own
/// name for a file being written, which its listings skip and the vacuum removes), renamed over
/// its name by [`Self::commit`]; removed if dropped before.
pub struct LocalFile {
    file: Option<std::io::BufWriter<std::fs::File>>,
    tmp: std::path::PathBuf,
    target: std::path::PathBuf,
    what: String,
    committed: bool,
}

impl LocalFile {
    fn create(
        loc: &Location,
        path: &Path,
        target: std::path::PathBuf,
        buffer: usize,
    ) -> Result<Self> {
        let what = format!("{}/{path}", loc.display);
        let fail = |e| Error::io(format!("cannot write {what}"), e);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut tmp = target.clone().into_os_string();
        tmp.push(format!("#{:010}{n:010}", std::process::id()));
        let tmp = std::path::PathBuf::from(tmp);
        let file = std::fs::File::create(&tmp).map_err(fail)?;
        Ok(Self {
            file: Some(std::io::BufWriter::with_capacity(buffer, file)),
            tmp,
            target,
            what,
            committed: false,
        })
    }

    /// The error of a failed write.
    pub fn fail(&self, e: std::io::Error) -> Error {
        Error::io(format!("cannot write {}", self.what), e)
    }

    /// Flush the file and rename it over its name.
    pub fn commit(mut self) -> Result<()> {
        let file = self.file.take().expect("a file not yet committed");
        file.into_inner()
            .map_err(|e| e.into_error())
            .and_then(|_| std::fs::rename(&self.tmp, &self.target))
            .map_err(|e| self.fail(e))?;
        self.committed = true;
        Ok(())
    }
}

impl std::io::Write for LocalFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.as_mut().expect("an open file").write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().expect("an open file").flush()
    }
}

impl Drop for LocalFile {
    fn drop(&mut self) {
        // Not committed (an error, or a commit whose rename failed): no file is left behind.
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocking_put_writes_the_file_and_a_stray_temporary_file_is_not_listed() {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::open(dir.path().to_str().unwrap(), false).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let path = loc.path("staging/t/extract_date=2022-01-01/part-r1.parquet");
        loc.put_blocking(rt.handle(), &path, Bytes::from_static(b"one"))
            .unwrap();
        loc.put_blocking(rt.handle(), &path, Bytes::from_static(b"two"))
            .unwrap();
        let folder = dir.path().join("staging/t/extract_date=2022-01-01");
        let names = |f: &std::path::Path| -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(f)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(&folder), ["part-r1.parquet"]);
        assert_eq!(rt.block_on(loc.get(&path)).unwrap().as_ref(), b"two");
        // What a run killed between writing and renaming leaves: the object store skips it.
        std::fs::write(folder.join("part-r2.parquet#00000012340000000007"), b"x").unwrap();
        let listed = rt.block_on(loc.list("staging")).unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        // A name the object store escapes goes through the store.
        let odd = loc.path("landing/a b%.json");
        assert!(loc.plain_local_file(&odd).is_none());
        loc.put_blocking(rt.handle(), &odd, Bytes::from_static(b"x"))
            .unwrap();
        assert_eq!(rt.block_on(loc.get(&odd)).unwrap().as_ref(), b"x");
    }

    #[test]
    fn a_local_file_appears_only_when_committed_and_leaves_nothing_when_dropped() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::open(dir.path().to_str().unwrap(), false).unwrap();
        let folder = dir.path().join("state/s/period=2022-11");
        let files = || -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(&folder)
                .map(|rd| {
                    rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            v.sort();
            v
        };
        let path = loc.path("state/s/period=2022-11/part-r1.parquet");
        let mut f = loc.local_file(&path).unwrap().unwrap();
        f.write_all(b"rows").unwrap();
        // Being written: only the temporary name, which the store does not list.
        assert_eq!(files().len(), 1);
        assert!(files()[0].starts_with("part-r1.parquet#"), "{:?}", files());
        f.commit().unwrap();
        assert_eq!(files(), ["part-r1.parquet"]);
        assert_eq!(
            std::fs::read(folder.join("part-r1.parquet")).unwrap(),
            b"rows"
        );
        // Dropped before its commit (a failed query): nothing is left, the old file stays.
        let mut f = loc.local_file(&path).unwrap().unwrap();
        f.write_all(b"half").unwrap();
        drop(f);
        assert_eq!(files(), ["part-r1.parquet"]);
        assert_eq!(
            std::fs::read(folder.join("part-r1.parquet")).unwrap(),
            b"rows"
        );
        // Not a local location's plain name: the caller uses the store.
        assert!(loc.local_file(&loc.path("state/a b%.parquet")).is_none());
    }
}
