//! Marts are computed `threads` at a time: one that reads another mart, directly or through a view,
//! starts once that mart is computed, whatever the order its neighbours finish in; one at a time
//! gives the same figures; a `threads` out of range is refused.

use crate::common::*;

const CHAIN: &str = "description: Marts reading marts, for the order test.
models:
  - name: mart_a
    description: Dossiers in the state per period.
    sql: SELECT period, count(*) AS n FROM dossiers_state GROUP BY period
    columns:
      - { name: period, description: Period id. }
      - { name: n, description: Dossiers. }
  - name: twice_a
    materialized: view
    description: mart_a doubled.
    sql: SELECT period, n * 2 AS n2 FROM mart_a
    columns:
      - { name: period, description: Period id. }
      - { name: n2, description: Twice n. }
  - name: mart_c
    description: Through the view.
    sql: SELECT period, n2 FROM twice_a
    columns:
      - { name: period, description: Period id. }
      - { name: n2, description: Twice n. }
  - name: mart_d
    description: Two marts joined, one of them computed through a view.
    sql: SELECT a.period, a.n + c.n2 AS n3 FROM mart_a a JOIN mart_c c ON a.period = c.period
    columns:
      - { name: period, description: Period id. }
      - { name: n3, description: Three times n. }
";

#[test]
fn a_mart_reading_another_is_computed_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let landing = generate(dir.path(), "2022-01-01", "2022-03-31", "0.02")
        .display()
        .to_string();
    let project = dir.path().join("project");
    let config = shipped_project(&project);
    std::fs::write(project.join("pipelines/chain.yaml"), CHAIN).unwrap();
    let whs = dir.path().join("wh").display().to_string();
    let out = bin_with(&config, &landing, &whs)
        .args(["backfill", "--from", "2022-01-01", "--to", "2022-03-31"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    // From all of staging (a backfill of more than two months writes no snapshot): two at a
    // time by default.
    assert!(stderr.contains("marts computed 2 at a time"), "{stderr}");
    let figures = || -> Vec<Vec<i64>> {
        let out = bin_with(&config, &landing, &whs)
            .args([
                "sql",
                "--format",
                "csv",
                "SELECT a.period, a.n, c.n2, d.n3 FROM mart_a a JOIN mart_c c USING (period) \
                 JOIN mart_d d USING (period) ORDER BY a.period",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .map(|l| l.split(',').skip(1).map(|v| v.parse().unwrap()).collect())
            .collect()
    };
    let rows = figures();
    // January to March and the year.
    assert_eq!(rows.len(), 4, "{rows:?}");
    for r in &rows {
        assert!(r[0] > 0, "{rows:?}");
        assert_eq!((r[1], r[2]), (2 * r[0], 3 * r[0]), "{rows:?}");
    }

    // A daily run reads month-end snapshots (this one writes February's): two at a time by
    // default too, the same figures.
    let out = bin_with(&config, &landing, &whs)
        .args(["run", "--date", "2022-03-31"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    assert!(stderr.contains("marts computed 2 at a time"), "{stderr}");
    assert!(stderr.contains("state snapshot written"), "{stderr}");
    assert_eq!(figures(), rows);

    // One at a time (`--threads 1`): the same figures.
    let out = bin_with(&config, &landing, &whs)
        .args(["--threads", "1", "refresh", "--full"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    assert!(stderr.contains("marts computed 1 at a time"), "{stderr}");
    assert_eq!(figures(), rows);

    // Out of range, as a flag or a config key: refused, naming the range.
    let out = bin_with(&config, &landing, &whs)
        .args(["--threads", "0", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 to 16"));
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}threads: 17\n")).unwrap();
    let out = bin_with(&config, &landing, &whs)
        .arg("validate")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "error[C002]: `threads`: `17` is not a number of marts computed at once: 1 to 16"
        ),
        "{stderr}"
    );
}
