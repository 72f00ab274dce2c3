//! Crash points for the crash-safety tests: with `CCHC_FAILPOINT=<name>` (or `<name>:<n>`, the
//! n-th time it is reached), the process kills itself with SIGKILL at that point, as `kill -9`
//! from outside would, so no destructor, flush or clean-up runs. With `<name>:error`, an
//! [`error`] point fails with an injected I/O error instead (a failing disk or store, without
//! killing); with `<name>:error:<n>`, from its n-th hit on. Unset, a point costs one environment lookup the first time and nothing after.
//!
//! Kill points: `ingest.staged` (a staging file written, its quarantine file and ledger entry
//! not), `ingest.committed` (a ledger entry written, the next source-day not),
//! `snapshots.written` (month-end state snapshots written and published, no mart), `marts.written`
//! (one mart partition written, the rest and `_periods.json` not), `marts.committed`
//! (`_periods.json` written, superseded files not removed). Error points: `vacuum.closing` (the
//! removal of superseded files at the end of a writer session), `ingest.write` (the write of a
//! source-day's staging file).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use super::error::Error;

enum Action {
    /// Kill at the n-th hit.
    Kill(u64),
    /// Fail every hit from the n-th on with an I/O error.
    Fail(u64),
}

static TARGET: OnceLock<Option<(String, Action)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

fn target() -> &'static Option<(String, Action)> {
    TARGET.get_or_init(|| {
        let v = std::env::var("CCHC_FAILPOINT").ok()?;
        Some(match v.split_once(':') {
            Some((n, "error")) => (n.to_string(), Action::Fail(1)),
            Some((n, rest)) if rest.starts_with("error:") => (
                n.to_string(),
                Action::Fail(rest["error:".len()..].parse().unwrap_or(1)),
            ),
            Some((n, c)) => (n.to_string(), Action::Kill(c.parse().unwrap_or(1))),
            None => (v, Action::Kill(1)),
        })
    })
}

/// A kill point.
pub fn hit(name: &str) {
    let Some((target, Action::Kill(count))) = target() else {
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

/// An error point: the injected error when `CCHC_FAILPOINT=<name>:error`.
pub fn error(name: &str) -> Option<Error> {
    match target() {
        Some((target, Action::Fail(from)))
            if target == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 >= *from =>
        {
            Some(Error::io(
                format!("failpoint {name}"),
                std::io::Error::other("injected failure"),
            ))
        }
        _ => None,
    }
}
