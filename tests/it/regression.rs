//! Regression tests, each named after the issue it fixes.

use crate::common::*;

/// Issue 10: `rank` and `refresh` returned before releasing the lock when the vacuum closing their
/// writer session failed, so `_lock.json` stayed until another run took it over.
#[test]
fn issue_10_a_failing_closing_vacuum_still_releases_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let landing = generate(dir.path(), "2022-01-01", "2022-01-03", "0.01")
        .display()
        .to_string();
    let wh = dir.path().join("wh");
    let whs = wh.display().to_string();
    backfill_ok(&landing, &whs, "2022-01-01", "2022-01-03", &[]);
    for args in [
        &["refresh", "--full"][..],
        &["rank", "--year", "2022"],
        &[
            "backfill",
            "--from",
            "2022-01-01",
            "--to",
            "2022-01-03",
            "--rerun",
            "all",
        ],
    ] {
        let out = bin(&landing, &whs)
            .args(args)
            .env("CCHC_FAILPOINT", "vacuum.closing:error")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{args:?}: {:?}\n{stderr}",
            out.status
        );
        assert!(
            stderr.contains("could not remove superseded files"),
            "{args:?}: the injected failure was not reached:\n{stderr}"
        );
        assert!(
            !wh.join("_lock.json").exists(),
            "{args:?} left the warehouse lock behind"
        );
    }
}
