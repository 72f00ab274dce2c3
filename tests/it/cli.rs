//! CLI snapshots: arguments, exit code, stdout and stderr. Each test runs the binary in a copy of
//! the project's configs and pipelines in a temporary folder, so every path is relative and stable.

use std::path::Path;
use std::process::Command;

use insta_cmd::{assert_cmd_snapshot, get_cargo_bin};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &crate::common::repo().join("configs"),
        &dir.path().join("configs"),
    );
    copy_dir(
        &crate::common::repo().join("pipelines"),
        &dir.path().join("pipelines"),
    );
    dir
}

fn cchc(dir: &Path) -> Command {
    let mut c = Command::new(get_cargo_bin("cchc"));
    c.current_dir(dir);
    for v in [
        "CCHC_PII_KEY",
        "CCHC_CONFIG",
        "CCHC_LANDING",
        "CCHC_WAREHOUSE",
        "CCHC_UNITS",
    ] {
        c.env_remove(v);
    }
    // Off a terminal the default is `info` lines with timings; snapshots keep warnings only.
    c.env("CCHC_LOG", "warn");
    c
}

#[test]
fn validate_ok() {
    let p = project();
    assert_cmd_snapshot!(cchc(p.path()).arg("validate"));
}

#[test]
fn validate_reports_problems_with_exit_2() {
    let p = project();
    std::fs::copy(
        crate::common::repo().join("tests/fixtures/invalid/unknown_names.yaml"),
        p.path().join("pipelines/one_stop.yaml"),
    )
    .unwrap();
    assert_cmd_snapshot!(cchc(p.path()).arg("validate"));
}

#[test]
fn run_without_a_key_is_a_usage_error() {
    let p = project();
    assert_cmd_snapshot!(cchc(p.path()).args(["run", "--date", "2022-03-01"]));
}

#[test]
fn run_on_a_missing_landing_is_a_runtime_failure() {
    let p = project();
    assert_cmd_snapshot!(cchc(p.path())
        .args(["run", "--date", "2022-03-01"])
        .env("CCHC_PII_KEY", "0123456789abcdef0123"));
}

#[test]
fn bad_date_is_a_usage_error() {
    let p = project();
    assert_cmd_snapshot!(cchc(p.path()).args(["run", "--date", "2022-02-30"]));
}

#[test]
fn gen_run_then_sql() {
    let p = project();
    assert_cmd_snapshot!(cchc(p.path()).args([
        "gen",
        "--out",
        ".cchc/landing",
        "--from",
        "2022-03-01",
        "--to",
        "2022-03-02",
        "--scale",
        "0.01",
        "--seed",
        "1"
    ]));
    let out = cchc(p.path())
        .args(["run", "--date", "2022-03-02", "--quiet"])
        .env("CCHC_PII_KEY", "0123456789abcdef0123")
        .output()
        .unwrap();
    // The synthetic province misses some targets of severity error: the run succeeds, exit 1.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "--quiet prints nothing");
    assert_cmd_snapshot!(cchc(p.path()).args([
        "sql",
        "SELECT target_id, period, as_of, final, numerator, denominator, status \
         FROM target_results WHERE unit_code = 'ALL' ORDER BY target_id, period"
    ]));
    assert_cmd_snapshot!(cchc(p.path()).args([
        "sql",
        "SELECT extract_date, status, count(*) AS n FROM dossiers GROUP BY 1, 2 ORDER BY 1, 2"
    ]));
    assert_cmd_snapshot!(cchc(p.path()).args([
        "sql",
        "--format",
        "csv",
        "SELECT tier, count(*) AS n FROM units GROUP BY tier ORDER BY tier"
    ]));
    // Lists in CSV are written as text (the arrow CSV writer has no nested types).
    let out = cchc(p.path())
        .args([
            "sql",
            "--format",
            "csv",
            "SELECT period, sample_keys FROM target_results \
             WHERE cardinality(sample_keys) > 1 ORDER BY 1 LIMIT 1",
        ])
        .output()
        .unwrap();
    let csv = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{csv}");
    let row = csv.lines().nth(1).unwrap_or_default();
    assert!(
        csv.starts_with("period,sample_keys\n") && row.contains(",\"[") && row.ends_with("]\""),
        "{csv}"
    );
    // Quarantine is not exposed.
    let out = cchc(p.path())
        .args(["sql", "SELECT * FROM quarantine"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn cchc_test_runs_the_pipeline_tests_and_fails_on_a_wrong_expectation() {
    let p = project();
    let out = cchc(p.path()).arg("test").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    assert!(
        stdout.contains("ok   pipelines/tests/marts.slt"),
        "{stdout}"
    );

    // A wrong count in a YAML expectation and in a .slt result: both reported, exit 1.
    let yaml = p.path().join("pipelines/tests/targets.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    std::fs::write(&yaml, text.replace("numerator: 49, denominator: 50, value: 0.98, status: pass, sample_keys: [D00] }\n        - { target_id: dossier_on_time, unit_code: ALL", "numerator: 48, denominator: 50, value: 0.98, status: pass, sample_keys: [D00] }\n        - { target_id: dossier_on_time, unit_code: ALL")).unwrap();
    let slt = p.path().join("pipelines/tests/marts.slt");
    let text = std::fs::read_to_string(&slt).unwrap();
    std::fs::write(&slt, text.replace("U1 3 0 2 1 1", "U1 3 0 3 0 1")).unwrap();
    let out = cchc(p.path()).arg("test").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("5 passed, 2 failed"), "{stdout}");
    assert!(
        stdout.contains("expected, missing: {denominator: 50, numerator: 48, period: 2022-01"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL pipelines/tests/marts.slt"),
        "{stdout}"
    );
}

#[test]
fn docs_describe_every_mart_column_and_target() {
    let p = project();
    let out = cchc(p.path())
        .args(["docs", "--out", "dictionary.md"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(p.path().join("dictionary.md")).unwrap();
    for needle in [
        "### `mart_dossiers` (mart, one partition per period)",
        "| `overdue_apologised` |",
        "| `dossier_on_time` | Phấn đấu trên 98% hồ sơ được giải quyết trước và đúng hạn |",
        "`iso_9001`",
        "Personal data: HMAC-SHA256",
    ] {
        assert!(text.contains(needle), "missing {needle}");
    }
}

#[test]
fn schedulers_get_json_log_lines_and_quiet_gets_none() {
    let p = project();
    let gen = cchc(p.path())
        .args([
            "gen",
            "--out",
            ".cchc/landing",
            "--from",
            "2022-03-01",
            "--to",
            "2022-03-02",
        ])
        .args(["--scale", "0.01", "--seed", "1"])
        .output()
        .unwrap();
    assert!(gen.status.success());
    let out = cchc(p.path())
        .env_remove("CCHC_LOG")
        .env("CCHC_PII_KEY", "0123456789abcdef0123")
        .args([
            "--log-format",
            "json",
            "backfill",
            "--from",
            "2022-03-01",
            "--to",
            "2022-03-02",
        ])
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let with = |msg: &str| -> Vec<&serde_json::Value> {
        lines
            .iter()
            .filter(|l| l["fields"]["message"] == msg)
            .collect()
    };
    // One line per source × day (4 sources, 2 days), with counts and rate.
    let days = with("source-day ingested");
    assert_eq!(days.len(), 8, "{stderr}");
    for d in &days {
        let f = &d["fields"];
        assert_eq!(d["level"], "INFO");
        assert!(
            f["read"].as_u64().unwrap()
                == f["staged"].as_u64().unwrap() + f["quarantined"].as_u64().unwrap()
        );
        assert!(f["records_per_s"].is_number() && f["source"].is_string() && f["day"].is_string());
    }
    let stages: Vec<&str> = with("stage done")
        .iter()
        .map(|l| l["fields"]["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["plan", "ingest", "marts"]);

    let quiet = cchc(p.path())
        .env_remove("CCHC_LOG")
        .env("CCHC_PII_KEY", "0123456789abcdef0123")
        .args([
            "--quiet",
            "backfill",
            "--from",
            "2022-03-01",
            "--to",
            "2022-03-02",
            "--rerun",
            "all",
        ])
        .output()
        .unwrap();
    assert!(matches!(quiet.status.code(), Some(0 | 1)));
    assert!(
        quiet.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
}
