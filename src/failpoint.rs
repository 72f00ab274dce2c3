//! Crash points for the crash-safety tests: with `CCHC_FAILPOINT=<name>` (or `<name>:<n>`, the
//! n-th time it is reached), the process kills itself with SIGKILL at that point, as `kill -9`
//! from outside would, so no destructor, flush or clean-up runs. Unset, a point costs one
//! environment lookup the first time and nothing after.
//!
//! Points: `ingest.staged` (a staging file written, its quarantine file and ledger entry not),
//! `ingest.committed` (a ledger entry written, the next source-day not), `marts.written` (one
//! mart partition written, the rest and `_periods.json` not), `marts.committed` (`_periods.json`
//! written, superseded files not removed).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

pub fn hit(name: &str) {
    let target = TARGET.get_or_init(|| {
        let v = std::env::var("CCHC_FAILPOINT").ok()?;
        let (n, count) = match v.split_once(':') {
            Some((n, c)) => (n.to_string(), c.parse().unwrap_or(1)),
            None => (v, 1),
        };
        Some((n, count))
    });
    let Some((target, count)) = target else {
        return;
    };
    if target == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *count {
        tracing::warn!(point = name, "failpoint reached: killing this process");
        let _ = std::process::Command::new("kill")
            .args(["-9", &std::process::id().to_string()])
            .status();
        // `kill` should not return; make sure the process still ends abruptly.
        std::process::abort();
    }
}
