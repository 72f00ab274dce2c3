//! Regression tests, each named after the issue it fixes.

use crate::common::*;

/// Issue 10: `rank` and `refresh` returned before releasing the lock when the vacuum closing their
/// writer session failed, so `_lock.json` stayed until another run took it over.
#[test]
fn issue_10_a_failing_closing_vacuum_still_releases_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let (landing, wh) = small_warehouse(dir.path());
    let whs = wh.display().to_string();
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

/// A writer that follows one whose closing vacuum succeeded skips its own opening vacuum (the
/// marker `_vacuumed.json`); without the marker (a killed or failed writer) it searches as
/// always, and removes what no record publishes.
#[test]
fn a_writer_after_a_clean_one_skips_the_opening_vacuum_and_not_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let (landing, wh) = small_warehouse(dir.path());
    let whs = wh.display().to_string();
    let marker = wh.join("_vacuumed.json");
    assert!(marker.exists(), "a clean backfill leaves the marker");
    let refresh = || {
        let out = bin(&landing, &whs)
            .args(["refresh", "--full"])
            .env("CCHC_LOG", "cchc=debug")
            .output()
            .unwrap();
        assert!(matches!(out.status.code(), Some(0 | 1)), "{:?}", out.status);
        String::from_utf8_lossy(&out.stderr)
            .matches("vacuum done")
            .count()
    };
    assert_eq!(
        refresh(),
        1,
        "after a clean writer: the closing vacuum only"
    );
    assert!(marker.exists(), "the refresh leaves the marker again");

    // A file no record publishes, as a killed writer leaves, and no marker.
    let folder = parquet_files(&wh.join("staging"))[0]
        .parent()
        .unwrap()
        .to_path_buf();
    let stray = folder.join("part-19700101T000000000Z-1.parquet");
    std::fs::write(&stray, b"not published").unwrap();
    // And what a put killed before its rename leaves, in a part area and in another.
    let temps = [
        folder.join("part-19700101T000000000Z-2.parquet#12"),
        wh.join("ledger").join("entry.json#345"),
    ];
    for t in &temps {
        std::fs::create_dir_all(t.parent().unwrap()).unwrap();
        std::fs::write(t, b"half written").unwrap();
    }
    let parts = parquet_files(&wh).len();
    std::fs::remove_file(&marker).unwrap();
    assert_eq!(refresh(), 2, "without the marker: the opening vacuum too");
    assert!(!stray.exists(), "the unpublished file was removed");
    for t in &temps {
        assert!(!t.exists(), "{} was removed", t.display());
    }
    assert_eq!(
        parquet_files(&wh).len(),
        parts - 1,
        "only the unpublished part went"
    );
    assert!(marker.exists());
}

/// A small warehouse built by the binary: three days at a tiny scale.
fn small_warehouse(dir: &std::path::Path) -> (String, std::path::PathBuf) {
    let landing = generate(dir, "2022-01-01", "2022-01-03", "0.01")
        .display()
        .to_string();
    let wh = dir.join("wh");
    backfill_ok(
        &landing,
        &wh.display().to_string(),
        "2022-01-01",
        "2022-01-03",
        &[],
    );
    (landing, wh)
}

/// Issue 11.1: `cchc sql` and `cchc shell` could write any file (`COPY … TO` over a ledger entry)
/// and read any (`CREATE EXTERNAL TABLE` over quarantine or /etc/passwd).
#[test]
fn issue_11_1_analysts_sql_is_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let (landing, wh) = small_warehouse(dir.path());
    let whs = wh.display().to_string();
    let before = tree(&wh);
    let refused = [
        format!("COPY (SELECT 1 AS x) TO '{whs}/ledger/dossiers/2022-01-02.json' STORED AS JSON"),
        format!("CREATE EXTERNAL TABLE q STORED AS PARQUET LOCATION '{whs}/quarantine/dossiers/'"),
        "CREATE EXTERNAL TABLE p (line TEXT) STORED AS CSV LOCATION '/etc/passwd'".to_string(),
        "CREATE TABLE t AS SELECT 1".to_string(),
        "CREATE VIEW v AS SELECT 1".to_string(),
        "INSERT INTO target_results SELECT * FROM target_results".to_string(),
        "DROP TABLE target_results".to_string(),
        "DELETE FROM target_results".to_string(),
        format!("EXPLAIN COPY (SELECT 1) TO '{whs}/x.json' STORED AS JSON"),
        "SELECT 1; DROP TABLE target_results".to_string(),
    ];
    for sql in &refused {
        let out = bin(&landing, &whs).args(["sql", sql]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{sql}: {stderr}");
        assert!(stderr.contains("read-only"), "{sql}: {stderr}");
    }
    for sql in [
        "SELECT count(*) AS n FROM target_results",
        "EXPLAIN SELECT 1",
        "SHOW TABLES",
        "SET datafusion.execution.batch_size = 1024",
    ] {
        let out = bin(&landing, &whs).args(["sql", sql]).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        before == tree(&wh),
        "the warehouse changed under refused statements"
    );
    // The shell runs its statements through the same guard.
    let cfg = config_for(&landing, &whs);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt
        .block_on(async {
            let ctx = cchc::sql::session(&cfg, None).await?;
            cchc::sql::query(&ctx, &refused[1], cchc::sql::OutputFormat::Csv).await
        })
        .unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    assert_eq!(before, tree(&wh));
}

/// Issue 11.2: a day on which every source is silent was skipped by `backfill` as "already
/// ingested", and its exit code ignored the dossiers' `missing_day: error`.
#[test]
fn issue_11_2_a_total_outage_is_reported_like_a_missing_day() {
    let dir = tempfile::tempdir().unwrap();
    let landing = generate(dir.path(), "2022-01-01", "2022-01-03", "0.01");
    std::fs::remove_dir_all(landing.join("one_stop/2022-01-02")).unwrap();
    for system in ["ioffice", "signatures"] {
        let _ = std::fs::remove_dir_all(landing.join(system).join("2022-01-02"));
    }
    let landing = landing.display().to_string();
    let wh = dir.path().join("wh");
    let whs = wh.display().to_string();
    let out = bin(&landing, &whs)
        .args(["backfill", "--from", "2022-01-01", "--to", "2022-01-03"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no file for this source and day") && stderr.contains("2022-01-02"),
        "{stderr}"
    );
    let record = newest_run_record(&wh);
    assert!(
        record["missing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["source"] == "dossiers"
                && m["day"] == "2022-01-02"
                && m["severity"] == "error"),
        "{record}"
    );
    assert!(record["skipped_dates"].as_array().unwrap().is_empty());
    assert_eq!(record["exit_code"], 1);
}

fn newest_run_record(wh: &std::path::Path) -> serde_json::Value {
    let mut runs: Vec<_> = std::fs::read_dir(wh.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    runs.sort();
    serde_json::from_slice(&std::fs::read(runs.last().unwrap()).unwrap()).unwrap()
}

/// Issue 11.3: landing files that no source's pattern takes (`.JSON`, names with spaces) were
/// dropped without a word, and `status` said `ingested`.
#[test]
fn issue_11_3_files_no_source_takes_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let landing = generate(dir.path(), "2022-01-01", "2022-01-02", "0.01");
    let day = landing.join("one_stop/2022-01-02");
    let first = std::fs::read_dir(&day)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("hoso_")
        })
        .unwrap();
    std::fs::rename(&first, day.join("HOSO_1.JSON")).unwrap();
    std::fs::write(day.join("hoso 2.json"), "{}").unwrap();
    let landing = landing.display().to_string();
    let wh = dir.path().join("wh");
    let whs = wh.display().to_string();
    backfill_ok(&landing, &whs, "2022-01-01", "2022-01-02", &[]);
    let record = newest_run_record(&wh);
    let unmatched: Vec<String> = record["unmatched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            format!(
                "{}/{} {}",
                u["day"].as_str().unwrap(),
                u["file"].as_str().unwrap(),
                u["patterns"]
            )
        })
        .collect();
    assert_eq!(
        unmatched,
        [
            "2022-01-02/HOSO_1.JSON [\"hoso_*.json\",\"thutuc_*.json\"]",
            "2022-01-02/hoso 2.json [\"hoso_*.json\",\"thutuc_*.json\"]"
        ],
        "{record}"
    );
    let out = bin(&landing, &whs).args(["status"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("not ingested: one_stop/2022-01-02/HOSO_1.JSON: no source takes it"),
        "{stdout}"
    );
    let out = bin(&landing, &whs)
        .args(["status", "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["unmatched_files"].as_array().unwrap().len(), 2);
}

/// Issue 11.4: a second key went unnoticed and gave the same applicant two tokens; the key's
/// length counted bytes and accepted whitespace.
#[test]
fn issue_11_4_one_key_per_warehouse() {
    let dir = tempfile::tempdir().unwrap();
    let (landing, wh) = small_warehouse(dir.path());
    let whs = wh.display().to_string();
    let recorded = std::fs::read_to_string(wh.join("_pii_key.json")).unwrap();
    assert!(!recorded.contains(std::str::from_utf8(KEY).unwrap()));
    let out = bin(&landing, &whs)
        .args(["run", "--date", "2022-01-03"])
        .env("CCHC_PII_KEY", "another-key-0123456789")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("not the key this warehouse was pseudonymised with"),
        "{stderr}"
    );
    assert!(!wh.join("_lock.json").exists());
    // The same key still runs.
    let out = bin(&landing, &whs)
        .args(["run", "--date", "2022-01-03"])
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (key, says) in [
        ("                    ", "only whitespace"),
        ("khóa-bí-mật-ơi", "at least 16 characters"),
    ] {
        let out = bin(&landing, &whs)
            .args(["run", "--date", "2022-01-03"])
            .env("CCHC_PII_KEY", key)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key:?}: {stderr}");
        assert!(stderr.contains(says), "{key:?}: {stderr}");
    }
    let out = bin(&landing, &whs).args(["rekey"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("new, empty warehouse"), "{stderr}");
}

/// Issue 11.5: `warehouse: /` wrote the warehouse into the root of the file system; a warehouse
/// inside the landing area, or containing it, was accepted too.
#[test]
fn issue_11_5_dangerous_warehouse_locations_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let landing = generate(dir.path(), "2022-01-01", "2022-01-01", "0.01");
    let ls = landing.display().to_string();
    let cases = [
        ("/".to_string(), "root of the file system"),
        (ls.clone(), "is the landing area"),
        (
            landing.join("wh").display().to_string(),
            "inside the landing area",
        ),
        (
            dir.path().display().to_string(),
            "contains the landing area",
        ),
        (format!("{ls}/../landing/./"), "is the landing area"),
    ];
    let before = tree(dir.path());
    for (wh, says) in &cases {
        for args in [&["status"][..], &["run", "--date", "2022-01-01"]] {
            let out = bin(&ls, wh).args(args).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{wh} {args:?}: {stderr}");
            assert!(stderr.contains(says), "{wh}: {stderr}");
        }
    }
    assert!(before == tree(dir.path()), "a refused run wrote something");
    assert!(!std::path::Path::new("/_lock.json").exists());
}

/// Issue 11.6: one bad entry in a day folder (a link that loops) stopped the whole run; a link
/// out of the landing area was followed.
#[test]
fn issue_11_6_a_bad_entry_is_an_unreadable_file_and_the_rest_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let landing = generate(dir.path(), "2022-01-01", "2022-01-02", "0.01");
    let day = landing.join("one_stop/2022-01-02");
    std::os::unix::fs::symlink(day.join("hoso_loop.json"), day.join("hoso_loop.json")).unwrap();
    let secret = dir.path().join("secret.json");
    std::fs::write(&secret, "{\"service\":\"DongBoHoSoMC\",\"data\":[]}").unwrap();
    std::os::unix::fs::symlink(&secret, day.join("hoso_outside.json")).unwrap();
    let landing = landing.display().to_string();
    let wh = dir.path().join("wh");
    let whs = wh.display().to_string();
    backfill_ok(&landing, &whs, "2022-01-01", "2022-01-02", &[]);
    let record = newest_run_record(&wh);
    let day_report = record["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["source"] == "dossiers" && d["extract_date"] == "2022-01-02")
        .unwrap()
        .clone();
    let unreadable: Vec<(String, String)> = day_report["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| !f["unreadable"].is_null())
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["unreadable"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(unreadable.len(), 2, "{day_report}");
    assert!(
        unreadable[0].0 == "hoso_loop.json" && unreadable[0].1.contains("cannot be followed"),
        "{unreadable:?}"
    );
    assert!(
        unreadable[1].0 == "hoso_outside.json" && unreadable[1].1.contains("out of the landing"),
        "{unreadable:?}"
    );
    assert!(
        day_report["staged"].as_u64().unwrap() > 0,
        "the other files of the day load"
    );
    assert_eq!(day_report["unreadable_files"], 2);
    // Every source of every day ran.
    assert_eq!(record["sources"].as_array().unwrap().len(), 2 * 4);
}

/// Issue 11.7: after a failure mid-ingest the run record had no sources and zero totals, while
/// ledger entries named that run; SIGTERM/SIGINT left no record and kept the lock.
#[test]
fn issue_11_7_a_failed_or_stopped_run_records_what_it_committed() {
    let dir = tempfile::tempdir().unwrap();
    let landing = generate(dir.path(), "2022-01-01", "2022-01-10", "0.02")
        .display()
        .to_string();
    let wh = dir.path().join("wh");
    let whs = wh.display().to_string();
    let out = bin(&landing, &whs)
        .args(["backfill", "--from", "2022-01-01", "--to", "2022-01-10"])
        .env("CCHC_FAILPOINT", "ingest.write:error:8")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record = newest_run_record(&wh);
    let run_id = record["run_id"].as_str().unwrap().to_string();
    let committed = ledger_of_run(&wh, &run_id);
    let recorded = record["sources"].as_array().unwrap().len();
    assert!(
        committed >= 7 && recorded == committed,
        "ledger {committed}, record {recorded}"
    );
    assert_eq!(
        record["totals"]["read"].as_u64().unwrap(),
        record["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["read"].as_u64().unwrap())
            .sum::<u64>()
    );
    assert!(record["error"]
        .as_str()
        .unwrap()
        .contains("injected failure"));
    assert!(!wh.join("_lock.json").exists());

    for (signal, code) in [("TERM", 3), ("INT", 130)] {
        let mut child = bin(&landing, &whs)
            .args([
                "backfill",
                "--from",
                "2022-01-01",
                "--to",
                "2022-01-10",
                "--rerun",
                "all",
            ])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines =
            std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
        // Stop it once the ingest is under way.
        let mut seen = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("source-day ingested") {
                break;
            }
        }
        std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        for line in lines {
            seen.push_str(&line.unwrap());
            seen.push('\n');
        }
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "SIG{signal}:\n{seen}");
        let record = newest_run_record(&wh);
        assert_eq!(record["exit_code"], code);
        assert!(
            record["error"].as_str().unwrap().contains("interrupted"),
            "{record}"
        );
        let run_id = record["run_id"].as_str().unwrap();
        assert_eq!(
            record["sources"].as_array().unwrap().len(),
            ledger_of_run(&wh, run_id)
        );
        assert!(!wh.join("_lock.json").exists(), "SIG{signal} kept the lock");
    }
}

/// How many ledger entries name `run_id`.
fn ledger_of_run(wh: &std::path::Path, run_id: &str) -> usize {
    let mut n = 0;
    for source in std::fs::read_dir(wh.join("ledger")).unwrap() {
        for e in std::fs::read_dir(source.unwrap().path()).unwrap() {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
            n += usize::from(v["run_id"] == run_id);
        }
    }
    n
}

/// Issue 11.8: unbounded ranges and scales ran for minutes or took gigabytes; `22-01-03` was read
/// as the year 22.
#[test]
fn issue_11_8_ranges_scales_and_years_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let ls = dir.path().join("landing").display().to_string();
    let whs = dir.path().join("wh").display().to_string();
    for (args, says) in [
        (
            &["status", "--from", "0001-01-01", "--to", "9999-12-31"][..],
            "at most 3660",
        ),
        (
            &["backfill", "--from", "0001-01-01", "--to", "9999-12-31"],
            "at most 3660",
        ),
        (&["run", "--date", "22-01-03"], "four-digit year"),
        (
            &[
                "gen",
                "--out",
                "x",
                "--from",
                "2022-01-01",
                "--to",
                "2022-01-02",
                "--scale",
                "1e9",
            ],
            "at most 20",
        ),
        (
            &[
                "gen",
                "--out",
                "x",
                "--from",
                "2022-01-01",
                "--to",
                "2022-01-02",
                "--scale",
                "0",
            ],
            "above 0",
        ),
    ] {
        let out = bin(&ls, &whs)
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// Issue 11.9: duplicate unit codes gave no code, line nor the configuration exit code; an
/// impossible day read as the wrong format; a `;`-separated CSV listed every header as missing;
/// logs to a file carried colour codes.
#[test]
fn issue_11_9_messages_name_the_problem() {
    let units = "unit_code,unit_name,tier,parent_code\nA,Sở A,so-ban-nganh,\nB,Sở B,so-ban-nganh,\nA,Sở A lần hai,so-ban-nganh,\n";
    let err = cchc::config::units::Units::parse(units.as_bytes(), "units.csv").unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert_eq!(
        err.to_string().lines().next().unwrap(),
        "units.csv:4:0: error[C016]: duplicate unit code `A` (first on line 2)"
    );
    let err = cchc::config::units::Units::parse(
        b"unit_code;unit_name;tier;parent_code\nA;X;so-ban-nganh;\n",
        "units.csv",
    )
    .unwrap_err();
    assert!(err.to_string().contains("separated by `;`"), "{err}");

    let h = Harness::new();
    let mut d = dossier("A", serde_json::json!({}));
    d["NgayTiepNhan"] = serde_json::json!("20220231090000");
    h.file(
        "one_stop",
        "2022-03-01",
        "hoso_1.json",
        envelope("DongBoHoSoMC", &[d]),
    );
    h.file(
        "ioffice",
        "2022-03-01",
        "vanban_1.csv",
        "Số ký hiệu;Trích yếu;Ngày ban hành\nA;B;01/03/2022\n",
    );
    h.run(&["2022-03-01"]);
    let reasons: Vec<String> = h.quarantine("dossiers").into_iter().map(|q| q.2).collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("`20220231090000` is not a date")),
        "{reasons:?}"
    );
    let reasons: Vec<String> = h.quarantine("documents").into_iter().map(|q| q.2).collect();
    assert!(
        reasons.iter().any(|r| r.contains("separated by `;`")),
        "{reasons:?}"
    );

    // Logs into a pipe: no colour codes.
    let dir = tempfile::tempdir().unwrap();
    let landing = generate(dir.path(), "2022-01-01", "2022-01-01", "0.01")
        .display()
        .to_string();
    let out = bin(&landing, &dir.path().join("wh").display().to_string())
        .args(["run", "--date", "2022-01-01"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("source-day ingested"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a pipe: {stderr}"
    );
}
