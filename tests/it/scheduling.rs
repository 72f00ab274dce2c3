//! Scheduling: backfill skips days already ingested from the same files, the warehouse lock
//! refuses a second run and takes over the lock of a dead one, and re-runs are idempotent.

use crate::common::{day, Harness, KEY};
use cchc::base::error::Error;
use cchc::run;

fn dossiers(ids: &[&str]) -> String {
    let data: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| crate::common::dossier(id, serde_json::json!({})))
        .collect();
    serde_json::json!({"service": "DongBoHoSoMC", "isUpdating": false, "data": data}).to_string()
}

fn backfill(h: &Harness, from: &str, to: &str, skip: bool) -> cchc::store::runs::RunRecord {
    let days: Vec<_> = day(from)
        .iter_days()
        .take_while(|d| *d <= day(to))
        .collect();
    let (rec, _, err) = run::run_days(&h.cfg, "test backfill", days, KEY, skip);
    if let Some(e) = err {
        panic!("backfill failed: {e}");
    }
    rec
}

#[test]
fn backfill_runs_new_and_changed_days_only() {
    let h = Harness::new();
    h.file(
        "one_stop",
        "2022-03-01",
        "hoso_1.json",
        dossiers(&["A", "B"]),
    );
    h.file("one_stop", "2022-03-02", "hoso_1.json", dossiers(&["C"]));
    let rec = backfill(&h, "2022-03-01", "2022-03-03", true);
    // 03-03 has no file of any source and was never run: a total outage, run and reported.
    assert_eq!(
        rec.dates,
        [day("2022-03-01"), day("2022-03-02"), day("2022-03-03")]
    );
    assert!(rec.skipped_dates.is_empty());
    assert!(rec
        .missing
        .iter()
        .any(|m| m.source == "dossiers" && m.day == day("2022-03-03")));

    let rec = backfill(&h, "2022-03-01", "2022-03-03", true);
    assert!(rec.dates.is_empty(), "{:?}", rec.dates);
    let stages: Vec<&str> = rec.stages.iter().map(|s| s.name).collect();
    assert_eq!(stages, ["plan", "ingest", "marts"]);

    // 03-02 re-delivered (same name, new content) and 03-03 arrives late.
    h.file(
        "one_stop",
        "2022-03-02",
        "hoso_1.json",
        dossiers(&["C", "D"]),
    );
    h.file("one_stop", "2022-03-03", "hoso_1.json", dossiers(&["E"]));
    let rec = backfill(&h, "2022-03-01", "2022-03-03", true);
    assert_eq!(rec.dates, [day("2022-03-02"), day("2022-03-03")]);
    assert_eq!(h.staged_count("dossiers"), 2 + 2 + 1);

    // --rerun all: every day.
    let rec = backfill(&h, "2022-03-01", "2022-03-03", false);
    assert_eq!(rec.dates.len(), 3);
    assert_eq!(h.staged_count("dossiers"), 5);
}

/// A ledger entry written before checksums were BLAKE3 records SHA-256: it is compared by
/// SHA-256, so the same files are not re-ingested after an upgrade, and a changed file still is
/// (then recorded by BLAKE3).
#[test]
fn ledger_entries_with_sha256_are_compared_by_sha256() {
    use sha2::Digest;
    let h = Harness::new();
    let body = dossiers(&["A", "B"]);
    h.file("one_stop", "2022-03-01", "hoso_1.json", &body);
    backfill(&h, "2022-03-01", "2022-03-01", true);
    let entry = h.warehouse().join("ledger/dossiers/2022-03-01.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&entry).unwrap()).unwrap();
    let file = &mut v["files"][0];
    assert_eq!(
        file["blake3"].as_str().unwrap(),
        blake3::hash(body.as_bytes()).to_hex().as_str()
    );
    assert!(file.get("sha256").is_none(), "{file}");
    // The entry as the previous version wrote it.
    let file = file.as_object_mut().unwrap();
    file.remove("blake3");
    file.insert(
        "sha256".into(),
        hex::encode(sha2::Sha256::digest(body.as_bytes())).into(),
    );
    std::fs::write(&entry, v.to_string()).unwrap();

    let rec = backfill(&h, "2022-03-01", "2022-03-01", true);
    assert!(rec.dates.is_empty(), "re-ingested: {:?}", rec.dates);

    // A wrong SHA-256 in the old entry: the day counts as changed (the comparison is real).
    let mut bad = v.clone();
    bad["files"][0]["sha256"] = "00".repeat(32).into();
    std::fs::write(&entry, bad.to_string()).unwrap();
    let rec = backfill(&h, "2022-03-01", "2022-03-01", true);
    assert_eq!(rec.dates, [day("2022-03-01")]);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&entry).unwrap()).unwrap();
    assert!(v["files"][0].get("sha256").is_none());
    assert_eq!(v["files"][0]["blake3"].as_str().unwrap().len(), 64);
}

#[test]
fn a_second_run_is_refused_and_a_dead_runs_lock_taken_over() {
    let h = Harness::new();
    h.file("one_stop", "2022-03-01", "hoso_1.json", dossiers(&["A"]));
    let lock = h.warehouse().join("_lock.json");
    std::fs::create_dir_all(h.warehouse()).unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    // Held by a live process of this host (pid 1).
    let holder = |pid: u32| {
        serde_json::json!({"run_id": "20220301T000000000Z-1", "command": "run --date 2022-03-01",
            "host": host, "pid": pid, "started_at": "2022-03-01T00:00:00+00:00"})
        .to_string()
    };
    std::fs::write(&lock, holder(1)).unwrap();
    let (_, _, err) = run::run_days(&h.cfg, "run", vec![day("2022-03-01")], KEY, false);
    match err {
        Some(e @ Error::Locked(_)) => {
            let msg = e.to_string();
            assert!(
                msg.contains("20220301T000000000Z-1") && msg.contains("pid 1"),
                "{msg}"
            );
            assert_eq!(e.exit_code(), 3);
        }
        other => panic!("expected a lock error, got {other:?}"),
    }
    assert_eq!(
        h.staged_count("dossiers"),
        0,
        "the refused run wrote nothing"
    );

    // Held by a process that has exited: taken over, and released at the end.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    std::fs::write(&lock, holder(dead)).unwrap();
    let (rec, _, err) = run::run_days(&h.cfg, "run", vec![day("2022-03-01")], KEY, false);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(rec.totals.staged, 1);
    assert!(!lock.exists(), "the lock is released");

    // Held by a run of another host: refused while its heartbeat is fresh...
    let other = |run_id: &str, started: &str| {
        serde_json::json!({"run_id": run_id, "command": "backfill", "host": "other-host",
            "pid": 1, "started_at": started})
        .to_string()
    };
    let now = chrono::Utc::now().to_rfc3339();
    std::fs::write(&lock, other("R-other-1", "2022-03-01T00:00:00+00:00")).unwrap();
    std::fs::create_dir_all(h.warehouse().join("_lock")).unwrap();
    std::fs::write(
        h.warehouse().join("_lock/heartbeat-R-other-1.json"),
        serde_json::json!({"run_id": "R-other-1", "at": now}).to_string(),
    )
    .unwrap();
    let (_, _, err) = run::run_days(&h.cfg, "run", vec![day("2022-03-01")], KEY, false);
    let msg = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.contains("R-other-1") && msg.contains("other-host"),
        "{msg}"
    );
    // ...and taken over once it has been silent longer than the stale limit (600 s).
    std::fs::write(
        h.warehouse().join("_lock/heartbeat-R-other-1.json"),
        serde_json::json!({"run_id": "R-other-1", "at": "2022-03-01T00:00:00+00:00"}).to_string(),
    )
    .unwrap();
    let (_, _, err) = run::run_days(&h.cfg, "run", vec![day("2022-03-01")], KEY, false);
    assert!(err.is_none(), "{err:?}");
    assert!(!lock.exists());
    assert!(h.warehouse().join("_lock/takeover-R-other-1").exists());
    assert!(!h
        .warehouse()
        .join("_lock/heartbeat-R-other-1.json")
        .exists());

    // Two runs finding the same dead holder: the takeover marker lets exactly one through.
    std::fs::write(&lock, other("R-other-2", "2022-03-01T00:00:00+00:00")).unwrap();
    std::fs::write(
        h.warehouse().join("_lock/takeover-R-other-2"),
        "someone else\n",
    )
    .unwrap();
    let (_, _, err) = run::run_days(&h.cfg, "run", vec![day("2022-03-01")], KEY, false);
    let msg = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("being taken over"), "{msg}");
}

#[test]
fn running_a_day_twice_gives_the_same_staging_and_marts() {
    let h = Harness::new();
    h.file(
        "one_stop",
        "2022-03-01",
        "hoso_1.json",
        dossiers(&["A", "B", "C"]),
    );
    h.file("one_stop", "2022-03-02", "hoso_1.json", dossiers(&["B"]));
    let read_all = |h: &Harness| {
        let mut out = Vec::new();
        for (area, table) in [
            ("staging", "dossiers"),
            ("marts", "mart_dossiers"),
            ("marts", "target_results"),
        ] {
            let mut rows: Vec<String> = Vec::new();
            for b in h.read(area, table) {
                let s = arrow::util::pretty::pretty_format_batches(&[b])
                    .unwrap()
                    .to_string();
                rows.extend(
                    s.lines()
                        .filter(|l| l.starts_with("| "))
                        .map(str::to_string),
                );
            }
            rows.sort();
            out.push(rows);
        }
        out
    };
    backfill(&h, "2022-03-01", "2022-03-02", false);
    let first = read_all(&h);
    backfill(&h, "2022-03-01", "2022-03-02", false);
    assert_eq!(read_all(&h), first);
    assert!(first.iter().all(|t| t.len() > 1));
}

#[test]
fn a_day_without_dossiers_is_reported_with_its_sources_severity() {
    let h = Harness::new();
    // Only a signing event on 03-05: dossiers (missing_day: error) and documents (warn) are
    // missing; the procedure catalog (ignore) is not reported.
    h.file(
        "signatures",
        "2022-03-05",
        "kyso_1.ndjson",
        r#"{"event_id":"E1","unit_code":"000.00.15.H40","cert_not_before":"2021-01-01T00:00:00+07:00","cert_not_after":"2023-01-01T00:00:00+07:00","signing_time":"2022-03-05T09:00:00+07:00"}"#,
    );
    let rec = h.run(&["2022-03-05"]);
    let missing: Vec<(&str, &str)> = rec
        .missing
        .iter()
        .map(|m| (m.source.as_str(), m.severity))
        .collect();
    assert_eq!(missing, [("documents", "warn"), ("dossiers", "error")]);
    assert_eq!(rec.exit_code, 1);
}
