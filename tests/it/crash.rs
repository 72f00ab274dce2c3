//! Crash safety of the commit protocol (`src/store/publish.rs`), on the real binary.
//!
//! A warehouse holds a complete backfill of 2022-01-01..01-20 (version A). A second backfill over
//! 01-01..02-05 (`--rerun all`, so the ingested days are rewritten too) is killed with SIGKILL:
//! at each crash point of `CCHC_FAILPOINT`, and from outside (`kill -9`) at moments read off its
//! log. After each kill:
//! - every table is readable, its marts and results are exactly version A, and each staging table
//!   holds exactly what its ledger entries count (no half-published day);
//! - the next backfill repairs the warehouse: every table then equals that of an uninterrupted
//!   backfill, and no partition folder keeps a file of the dead run.
//!
//! A reader querying in another thread while a backfill rewrites every day always gets the same
//! complete answer.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;

use crate::common::*;

const FROM: &str = "2022-01-01";
const MID: &str = "2022-01-20";
const TO: &str = "2022-02-05";

struct Fixture {
    dir: tempfile::TempDir,
    landing: String,
    /// After the backfill FROM..MID.
    version_a: Vec<(String, Vec<String>)>,
    /// After an uninterrupted backfill FROM..TO.
    reference: Vec<(String, Vec<String>)>,
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let landing = s(&generate(dir.path(), FROM, TO, "0.03"));
        let wh_a = dir.path().join("wh_a");
        backfill_ok(&landing, &s(&wh_a), FROM, MID, &[]);
        let version_a = dump(&config_for(&landing, &s(&wh_a)));
        let wh_ref = dir.path().join("wh_ref");
        copy_tree(&wh_a, &wh_ref);
        backfill_ok(&landing, &s(&wh_ref), FROM, TO, &["--rerun", "all"]);
        let reference = dump(&config_for(&landing, &s(&wh_ref)));
        assert_ne!(
            version_a, reference,
            "the second backfill must change the marts, or the test proves nothing"
        );
        Fixture {
            dir,
            landing,
            version_a,
            reference,
        }
    }

    /// A copy of version A to crash a run on.
    fn warehouse(&self, name: &str) -> std::path::PathBuf {
        let wh = self.dir.path().join(name);
        copy_tree(&self.dir.path().join("wh_a"), &wh);
        wh
    }

    /// What every check after a kill asserts, then the repair. `published`: whether the killed
    /// run had published its marts (killed after `_periods.json`); `None` when either may be.
    fn check_after_kill(&self, wh: &Path, what: &str, published: Option<bool>) {
        let cfg = config_for(&self.landing, &s(wh));
        let after = dump(&cfg);
        // Marts and results: all of version A (the killed run never published its own), or all
        // of the new version (killed after publishing them), never a mix.
        let marts = |d: &[(String, Vec<String>)]| -> Vec<(String, Vec<String>)> {
            d.iter()
                .filter(|(t, _)| {
                    t.starts_with("mart_") || t.starts_with("target_") || t == "plan_targets"
                })
                .cloned()
                .collect()
        };
        let expect = match published {
            Some(false) => &self.version_a,
            Some(true) => &self.reference,
            None if marts(&after) == marts(&self.reference) => &self.reference,
            None => &self.version_a,
        };
        assert_same(
            &marts(&after),
            &marts(expect),
            &format!("{what}: marts after the kill"),
        );
        // Staging: exactly what the ledger's published entries count.
        for (source, staged) in ledger_staged(wh) {
            let n = query_lines(&cfg, &format!("SELECT count(*) AS n FROM {source}")).unwrap();
            assert_eq!(
                n,
                vec![format!("{{\"n\":{staged}}}")],
                "{what}: {source} vs its ledger"
            );
        }
        // Repair.
        backfill_ok(&self.landing, &s(wh), FROM, TO, &[]);
        assert_same(
            &dump(&cfg),
            &self.reference,
            &format!("{what}: after the repair"),
        );
        assert!(
            !wh.join("_lock.json").exists(),
            "{what}: lock left after the repair"
        );
        for f in parquet_files(wh) {
            let folder = f.parent().unwrap();
            let n = std::fs::read_dir(folder)
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("part-"))
                .count();
            assert_eq!(
                n,
                1,
                "{what}: {} keeps more than one file",
                folder.display()
            );
        }
    }
}

fn crash_run(landing: &str, wh: &Path, failpoint: Option<&str>) -> std::process::Command {
    let mut c = bin(landing, &s(wh));
    c.args(["backfill", "--from", FROM, "--to", TO, "--rerun", "all"]);
    if let Some(f) = failpoint {
        c.env("CCHC_FAILPOINT", f);
    }
    c
}

#[test]
fn a_run_killed_at_any_point_leaves_the_previous_version_and_the_next_run_repairs_it() {
    let fx = Fixture::new();

    // At each crash point of the commit protocol.
    for (point, published) in [
        ("ingest.staged:7", false),
        ("ingest.committed:30", false),
        ("snapshots.written", false),
        ("marts.written:5", false),
        ("marts.committed", true),
    ] {
        let wh = fx.warehouse(&format!("wh_{}", point.replace([':', '.'], "_")));
        let out = crash_run(&fx.landing, &wh, Some(point)).output().unwrap();
        assert_eq!(
            out.status.signal(),
            Some(9),
            "{point}: the run was not killed: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            wh.join("_lock.json").exists(),
            "{point}: a killed run leaves its lock"
        );
        fx.check_after_kill(&wh, point, Some(published));
    }

    // From outside, at moments read off the log: mid-ingest, and as the marts stage begins.
    for (what, line, nth) in [
        ("kill -9 mid-ingest", "source-day ingested", 40),
        ("kill -9 in the marts stage", "stage done", 2),
    ] {
        let wh = fx.warehouse(&format!("wh_kill_{nth}"));
        let mut child = crash_run(&fx.landing, &wh, None)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut seen = 0;
        for l in BufReader::new(stderr).lines() {
            if l.unwrap().contains(line) {
                seen += 1;
                if seen == nth {
                    child.kill().unwrap(); // SIGKILL
                    break;
                }
            }
        }
        let st = child.wait().unwrap();
        assert_eq!(seen, nth, "{what}: the log never said `{line}` {nth} times");
        assert_eq!(
            st.signal(),
            Some(9),
            "{what}: the run ended before the kill: {st:?}"
        );
        fx.check_after_kill(&wh, what, None);
    }
}

#[test]
fn a_reader_during_a_rewrite_always_sees_one_complete_version() {
    let dir = tempfile::tempdir().unwrap();
    let landing = s(&generate(dir.path(), FROM, MID, "0.03"));
    let wh = dir.path().join("wh");
    backfill_ok(&landing, &s(&wh), FROM, MID, &[]);
    let cfg = config_for(&landing, &s(&wh));
    let sql = "SELECT (SELECT count(*) FROM dossiers) AS staged, \
               (SELECT count(*) FROM mart_dossiers) AS marted, \
               (SELECT count(*) FROM target_results) AS results";
    let before = query_lines(&cfg, sql).unwrap();
    let mut writer = bin(&landing, &s(&wh))
        .args(["backfill", "--from", FROM, "--to", MID, "--rerun", "all"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reads = 0;
    loop {
        let done = writer.try_wait().unwrap();
        let now = query_lines(&cfg, sql).unwrap_or_else(|e| panic!("read {reads} failed: {e}"));
        assert_eq!(now, before, "read {reads} saw another version");
        reads += 1;
        if let Some(st) = done {
            assert!(matches!(st.code(), Some(0 | 1)), "writer: {st:?}");
            break;
        }
    }
    assert!(reads >= 2, "only {reads} reads overlapped the rewrite");
}
