//! One writer per warehouse: `<warehouse>/_lock.json`, created with a conditional put (create
//! only if absent), so it holds on an S3-compatible store as on a local disk.
//!
//! A second run finds the lock and refuses, naming the holder (run id, command, host, pid, start).
//! A lock left by a dead process is taken over: when the holder ran on this host and its process
//! no longer exists, the lock is deleted and created again, conditionally, so of two runs taking
//! over at once only one wins. A lock of another host cannot be checked; the message says which
//! file to remove once that run is known to be gone.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::Location;

const LOCK: &str = "_lock.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holder {
    pub run_id: String,
    pub command: String,
    pub host: String,
    pub pid: u32,
    pub started_at: String,
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// Whether the holder is known to be dead: same host and no such process.
fn is_dead(h: &Holder) -> bool {
    h.host == host()
        && h.pid != std::process::id()
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{}", h.pid)).exists()
}

/// A held lock; `release` removes it (a crash leaves it for the next run to take over).
pub struct Lock {
    wh: Location,
    holder: Holder,
}

impl Lock {
    /// Take the warehouse lock for `run_id`.
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
        for attempt in 0..2 {
            if wh.create_new(&path, body.clone()).await? {
                return Ok(Lock {
                    wh: wh.clone(),
                    holder,
                });
            }
            let current = match wh.get_opt(&path).await? {
                Some(b) => serde_json::from_slice::<Holder>(&b).ok(),
                None => continue, // released meanwhile: try again
            };
            match current {
                Some(h) if attempt == 0 && is_dead(&h) => {
                    tracing::warn!(holder_run = %h.run_id, pid = h.pid, "taking over the lock of a dead run");
                    wh.delete(&path).await?;
                }
                Some(h) => {
                    return Err(Error::Locked(format!(
                        "the warehouse {} is locked by run {} (`{}`, pid {} on {}, since {}); \
                         if that run is gone, remove {}/{LOCK}",
                        wh.display,
                        h.run_id,
                        h.command,
                        h.pid,
                        h.host,
                        h.started_at,
                        wh.display
                    )))
                }
                None => {
                    return Err(Error::Locked(format!(
                        "the warehouse {} holds an unreadable lock {}/{LOCK}; remove it if no run is going on",
                        wh.display, wh.display
                    )))
                }
            }
        }
        Err(Error::Locked(format!(
            "could not take the lock of {} (another run took it over first)",
            wh.display
        )))
    }

    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// Remove the lock if it is still ours.
    pub async fn release(self) -> Result<()> {
        let path = self.wh.path(LOCK);
        if let Some(b) = self.wh.get_opt(&path).await? {
            if serde_json::from_slice::<Holder>(&b).ok().as_ref() == Some(&self.holder) {
                self.wh.delete(&path).await?;
            }
        }
        Ok(())
    }
}
