//! One writer per warehouse: `<warehouse>/_lock.json`, created with a conditional put (create
//! only if absent), so it holds on an S3-compatible store as on a local disk.
//!
//! A second run finds the lock and refuses, naming the holder (run id, command, host, pid, start).
//! The holder writes a heartbeat (`_lock/heartbeat-<run_id>.json`, its own object, every 30 s)
//! while it runs. A lock is taken over when its holder is known to be gone:
//! - on this host: its process no longer exists;
//! - on another host: its last heartbeat (or its start, before any) is older than
//!   `CCHC_LOCK_STALE_AFTER` seconds (default 600: twenty missed heartbeats).
//!
//! Taking over is a race between the runs that found the same dead holder; it is settled by a
//! second conditional put, `_lock/takeover-<dead run_id>`, which exactly one of them creates. The
//! winner deletes the dead lock and creates its own (conditionally again, so a new run that slipped
//! in first keeps it); the others refuse. Takeover markers are left in place, so a late runner-up
//! that still holds the dead lock's contents cannot delete a newer lock.

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::location::Location;
use crate::base::error::{Error, Result};

const LOCK: &str = "_lock.json";
const HEARTBEAT_EVERY: Duration = Duration::from_secs(30);
const DEFAULT_STALE_AFTER_S: i64 = 600;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holder {
    pub run_id: String,
    pub command: String,
    pub host: String,
    pub pid: u32,
    pub started_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Heartbeat {
    run_id: String,
    at: String,
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

fn heartbeat_path(run_id: &str) -> String {
    format!("_lock/heartbeat-{run_id}.json")
}

fn stale_after() -> chrono::Duration {
    let s = std::env::var("CCHC_LOCK_STALE_AFTER")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_STALE_AFTER_S);
    chrono::Duration::seconds(s)
}

/// Why the holder is known to be gone, or `None` while it may be alive.
async fn gone(wh: &Location, h: &Holder) -> Result<Option<String>> {
    if h.host == host() {
        let dead = h.pid != std::process::id()
            && std::path::Path::new("/proc/self").exists()
            && !std::path::Path::new(&format!("/proc/{}", h.pid)).exists();
        return Ok(dead.then(|| format!("process {} of this host no longer exists", h.pid)));
    }
    let last = match wh.get_opt(&wh.path(&heartbeat_path(&h.run_id))).await? {
        Some(b) => serde_json::from_slice::<Heartbeat>(&b)
            .ok()
            .map(|hb| hb.at)
            .unwrap_or_else(|| h.started_at.clone()),
        None => h.started_at.clone(),
    };
    let Ok(last) = chrono::DateTime::parse_from_rfc3339(&last) else {
        return Ok(None);
    };
    let silent = chrono::Utc::now().signed_duration_since(last);
    Ok((silent > stale_after()).then(|| {
        format!(
            "no heartbeat from {} for {} s",
            h.host,
            silent.num_seconds()
        )
    }))
}

/// A held lock; `release` removes it (a crash leaves it for the next run to take over).
pub struct Lock {
    wh: Location,
    holder: Holder,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

impl Lock {
    /// Take the warehouse lock for `run_id`, and start its heartbeat on the current runtime.
    pub async fn acquire(wh: &Location, run_id: &str, command: &str) -> Result<Lock> {
        let holder = Holder {
            run_id: run_id.to_string(),
            command: command.to_string(),
            host: host(),
            pid: std::process::id(),
            started_at: chrono::Utc::now().to_rfc3339(),
        };
        let body = Bytes::from(
            serde_json::to_vec_pretty(&holder).map_err(|e| Error::Internal(e.to_string()))?,
        );
        let path = wh.path(LOCK);
        for attempt in 0..3 {
            if wh.create_new(&path, body.clone()).await? {
                let mut lock = Lock {
                    wh: wh.clone(),
                    holder,
                    heartbeat: None,
                };
                lock.start_heartbeat().await?;
                return Ok(lock);
            }
            let current = match wh.get_opt(&path).await? {
                Some(b) => serde_json::from_slice::<Holder>(&b).ok(),
                None => continue, // released meanwhile: try again
            };
            let Some(h) = current else {
                return Err(Error::Locked(format!(
                    "the warehouse {} holds an unreadable lock {}/{LOCK}; remove it if no run is going on",
                    wh.display, wh.display
                )));
            };
            if attempt < 2 {
                if let Some(why) = gone(wh, &h).await? {
                    let marker = wh.path(&format!("_lock/takeover-{}", h.run_id));
                    let claim = Bytes::from(format!("{run_id}\n"));
                    if wh.create_new(&marker, claim).await? {
                        tracing::warn!(holder_run = %h.run_id, reason = %why, "taking over the lock of a dead run");
                        wh.delete(&path).await?;
                        wh.delete(&wh.path(&heartbeat_path(&h.run_id))).await?;
                        continue;
                    }
                    return Err(Error::Locked(format!(
                        "the lock of dead run {} on {} is being taken over by another run",
                        h.run_id, wh.display
                    )));
                }
            }
            return Err(Error::Locked(format!(
                "the warehouse {} is locked by run {} (`{}`, pid {} on {}, since {}); \
                 if that run is gone, remove {}/{LOCK} (a lock of another host is taken over \
                 after {} s without heartbeat)",
                wh.display,
                h.run_id,
                h.command,
                h.pid,
                h.host,
                h.started_at,
                wh.display,
                stale_after().num_seconds()
            )));
        }
        Err(Error::Locked(format!(
            "could not take the lock of {} (other runs kept taking it)",
            wh.display
        )))
    }

    async fn start_heartbeat(&mut self) -> Result<()> {
        let wh = self.wh.clone();
        let run_id = self.holder.run_id.clone();
        let beat = move || {
            let hb = Heartbeat {
                run_id: run_id.clone(),
                at: chrono::Utc::now().to_rfc3339(),
            };
            Bytes::from(serde_json::to_vec(&hb).unwrap_or_default())
        };
        let path = wh.path(&heartbeat_path(&self.holder.run_id));
        wh.put(&path, beat()).await?;
        self.heartbeat = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT_EVERY).await;
                if let Err(e) = wh.put(&path, beat()).await {
                    tracing::warn!(error = %e, "could not write the lock heartbeat");
                }
            }
        }));
        Ok(())
    }

    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// Stop the heartbeat and remove the lock if it is still ours.
    pub async fn release(mut self) -> Result<()> {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        let path = self.wh.path(LOCK);
        if let Some(b) = self.wh.get_opt(&path).await? {
            if serde_json::from_slice::<Holder>(&b).ok().as_ref() == Some(&self.holder) {
                self.wh.delete(&path).await?;
            }
        }
        self.wh
            .delete(&self.wh.path(&heartbeat_path(&self.holder.run_id)))
            .await
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}

/// A writer's session on a warehouse: the lock taken, then the files a killed run left unpublished
/// removed. [`Writer::finish`] removes what this run superseded and always releases the lock, also
/// when that removal fails (superseded files are harmless: the next run removes them).
pub struct Writer {
    lock: Lock,
    wh: Location,
    run_id: String,
}

/// The marker a writer session leaves at the warehouse root once its closing vacuum succeeded:
/// then no unpublished file is left, and the next session skips its opening vacuum (which reads
/// every record and lists every file: ≈ 55 ms on a year's warehouse). The next session removes
/// the marker before it writes anything, so a session killed after that leaves none, and the one
/// after it vacuums. A warehouse without the marker (a killed or failed session, or one written
/// before it) is vacuumed as always.
pub const VACUUMED: &str = "_vacuumed.json";

impl Writer {
    /// Take the lock of `wh` for `run_id` and vacuum under it, unless the session before recorded
    /// its own closing vacuum ([`VACUUMED`]).
    pub async fn begin(wh: &Location, run_id: &str, command: &str) -> Result<Writer> {
        let lock = Lock::acquire(wh, run_id, command).await?;
        let writer = Writer {
            lock,
            wh: wh.clone(),
            run_id: run_id.to_string(),
        };
        // Repair: what a killed run wrote but never published. Nothing, when the session before
        // left its marker (see [`VACUUMED`]); the marker goes before this session writes anything.
        let marker = wh.path(VACUUMED);
        let repaired = match wh.get_opt(&marker).await {
            Ok(Some(_)) => wh.delete(&marker).await,
            Ok(None) => super::publish::vacuum(wh).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = repaired {
            if let Err(r) = writer.lock.release().await {
                tracing::warn!(error = %r, "could not release the warehouse lock");
            }
            return Err(e);
        }
        Ok(writer)
    }

    /// Remove the versions this run superseded (a failure is logged, not returned), then release
    /// the lock; the error is the release's.
    pub async fn finish(self) -> Result<()> {
        let vacuumed = match crate::base::failpoint::error("vacuum.closing") {
            Some(e) => Err(e),
            None => super::publish::vacuum(&self.wh).await.map(|_| ()),
        };
        match vacuumed {
            Ok(()) => {
                let marker = serde_json::json!({ "run_id": self.run_id }).to_string();
                let put = self.wh.put(&self.wh.path(VACUUMED), marker.into()).await;
                if let Err(e) = put {
                    tracing::warn!(error = %e, "could not record the closing vacuum; the next run vacuums");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not remove superseded files; the next run will");
            }
        }
        self.lock.release().await
    }

    /// Run `work` in a writer session: [`Self::begin`], `work`, [`Self::finish`]. The work's
    /// error comes first, then the release's.
    pub async fn run<T>(
        wh: &Location,
        run_id: &str,
        command: &str,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let writer = Writer::begin(wh, run_id, command).await?;
        let r = work.await;
        let released = writer.finish().await;
        let v = r?;
        released?;
        Ok(v)
    }
}
