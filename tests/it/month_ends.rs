//! Month-end state snapshots (`state_snapshots`, src/warehouse/snapshots.rs): a warehouse that
//! keeps them and one that does not (`state_snapshots: false`), fed the same days in the same
//! order, hold the same rows in every table after every run: the marts, the target results, and
//! a mart of every state row of every source that keeps snapshots (all columns, `valid_from` and
//! `valid_to` included), added to a copy of the shipped pipelines. Along the way, which snapshot
//! each run writes is checked against the rule (`Plan::new`), and a snapshot whose month got a
//! day again stops being used.

use std::path::Path;

use cchc::config::{self, Config, Overrides};

use crate::common::*;

const STATE_MARTS: &str = "description: Every state row, for the snapshot test.\nmodels:\n";

/// A copy of the shipped configs and pipelines, plus a mart of every state row of each source
/// with versions kept in snapshots; `snapshots: false` turns them off.
fn project(dir: &Path, snapshots: bool) -> std::path::PathBuf {
    let env = shipped(dir, snapshots);
    let shipped = config_for("/nowhere", "/nowhere");
    let mut yaml = STATE_MARTS.to_string();
    for s in ["dossiers", "documents", "signature_events"] {
        yaml.push_str(&format!(
            "  - name: state_{s}\n    description: The state of {s} per period.\n    sql: SELECT * FROM {s}_state\n    columns:\n"
        ));
        let source = shipped.sources.iter().find(|x| x.name == s).unwrap();
        let names = cchc::warehouse::state::PERIOD_COLUMNS
            .into_iter()
            .chain(cchc::warehouse::state::version_columns(source));
        for c in names {
            yaml.push_str(&format!(
                "      - {{ name: {c}, description: The view's column. }}\n"
            ));
        }
    }
    std::fs::write(dir.join("pipelines/state_marts.yaml"), yaml).unwrap();
    env
}

/// A copy of the shipped configs and pipelines; `snapshots: false` turns snapshots off.
fn shipped(dir: &Path, snapshots: bool) -> std::path::PathBuf {
    let env = shipped_project(dir);
    let mut text = std::fs::read_to_string(&env).unwrap();
    text.push_str(&format!("state_snapshots: {snapshots}\n"));
    std::fs::write(&env, text).unwrap();
    env
}

fn load(env: &Path, landing: &str, wh: &str) -> Config {
    config::load(
        env,
        &Overrides {
            landing: Some(landing.to_string()),
            warehouse: Some(wh.to_string()),
            ..Default::default()
        },
    )
    .expect("the test project is valid")
}

fn tables(cfg: &Config) -> Vec<(String, Vec<String>)> {
    let mut out = dump(cfg);
    for s in ["dossiers", "documents", "signature_events"] {
        let rows = query_lines(cfg, &format!("SELECT * FROM state_{s}"))
            .unwrap_or_else(|e| panic!("state_{s}: {e}"));
        out.push((format!("state_{s}"), rows));
    }
    out
}

/// Run `args` on each (environment config, warehouse): the stderr of each, once it exited 0 or
/// 1 (targets failing).
fn run_both(runs: [(&Path, &str); 2], landing: &str, args: &[&str]) -> [String; 2] {
    runs.map(|(env, wh)| {
        let out = bin_with(env, landing, wh).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{args:?} failed: {stderr}"
        );
        stderr
    })
}

/// The months of `state/_snapshots.json`, per source (`source:month`), sorted.
fn snapshots(wh: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(wh.join("state/_snapshots.json")) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}:{}",
                c["source"].as_str().unwrap(),
                c["month"].as_str().unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

fn months(m: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = m
        .iter()
        .flat_map(|m| ["documents", "dossiers", "signature_events"].map(|s| format!("{s}:{m}")))
        .collect();
    out.sort();
    out
}

/// The snapshot lines of a run's log: (source, month, base).
fn written(stderr: &str) -> Vec<String> {
    let mut out: Vec<String> = stderr
        .lines()
        .filter(|l| l.contains("state snapshot written"))
        .map(|l| {
            let field = |k: &str| {
                l.split(&format!("{k}="))
                    .nth(1)
                    .and_then(|r| r.split(' ').next())
                    .unwrap_or("")
                    .trim_matches('"')
                    .to_string()
            };
            format!(
                "{}:{} from {}",
                field("source"),
                field("month"),
                field("base")
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn daily_runs_over_snapshots_give_the_rows_of_runs_over_all_of_staging() {
    let dir = tempfile::tempdir().unwrap();
    let landing = generate(dir.path(), "2022-01-01", "2022-05-02", "0.02")
        .display()
        .to_string();
    let on_env = project(&dir.path().join("on"), true);
    let off_env = project(&dir.path().join("off"), false);
    let (on_wh, off_wh) = (dir.path().join("wh-on"), dir.path().join("wh-off"));
    let (on_whs, off_whs) = (on_wh.display().to_string(), off_wh.display().to_string());
    let on = load(&on_env, &landing, &on_whs);
    let off = load(&off_env, &landing, &off_whs);

    let step = |args: &[&str]| -> String {
        let [log, off_log] = run_both(
            [(&on_env, &on_whs), (&off_env, &off_whs)].map(|(e, w)| (e.as_path(), w.as_str())),
            &landing,
            args,
        );
        assert!(written(&off_log).is_empty(), "snapshots written while off");
        assert_same(&tables(&on), &tables(&off), &format!("after {args:?}"));
        log
    };

    // A backfill writes none: from all of staging, a snapshot costs as much as the marts.
    let log = step(&["backfill", "--from", "2022-01-01", "--to", "2022-03-31"]);
    assert!(written(&log).is_empty(), "{log}");
    assert!(snapshots(&on_wh).is_empty());

    // The first daily run of April writes March (the newest month over with a later day
    // ingested), from all of staging, and reads it for April and the year.
    let log = step(&["run", "--date", "2022-04-01"]);
    assert_eq!(
        written(&log),
        [
            "documents:2022-03 from -",
            "dossiers:2022-03 from -",
            "signature_events:2022-03 from -"
        ]
    );
    assert_eq!(snapshots(&on_wh), months(&["2022-03"]));

    // Later days: March is usable, nothing is written.
    for d in ["2022-04-02", "2022-04-03"] {
        let log = step(&["run", "--date", d]);
        assert!(written(&log).is_empty(), "{d}: {log}");
    }

    // March's last day again (a late file): March's snapshot is out of date and is written
    // again, from all of staging (there is none before it).
    let log = step(&["run", "--date", "2022-03-31"]);
    assert_eq!(written(&log).len(), 3, "{log}");
    assert!(written(&log).iter().all(|l| l.contains(":2022-03 from -")));

    // A February day again: March's snapshot is out of date; the run recomputes February and
    // March (two months) and writes March again.
    let log = step(&["run", "--date", "2022-02-10"]);
    assert_eq!(written(&log).len(), 3, "{log}");
    assert!(written(&log).iter().all(|l| l.contains(":2022-03 from -")));
    assert_eq!(snapshots(&on_wh), months(&["2022-03"]));

    // A January day again: January's figures and everything after change; March's snapshot is
    // out of date and the run recomputes three months: the snapshot is left to the next run.
    let log = step(&["run", "--date", "2022-01-20"]);
    assert!(written(&log).is_empty(), "{log}");
    let log = step(&["run", "--date", "2022-04-04"]);
    assert_eq!(written(&log).len(), 3, "{log}");

    // The first day of May writes April from March's snapshot and April's versions, and keeps
    // both; the days after read April's.
    let log = step(&["backfill", "--from", "2022-04-05", "--to", "2022-04-30"]);
    assert!(written(&log).is_empty(), "{log}");
    let log = step(&["run", "--date", "2022-05-01"]);
    assert_eq!(
        written(&log),
        [
            "documents:2022-04 from 2022-03",
            "dossiers:2022-04 from 2022-03",
            "signature_events:2022-04 from 2022-03"
        ]
    );
    assert_eq!(snapshots(&on_wh), months(&["2022-03", "2022-04"]));
    let log = step(&["run", "--date", "2022-05-02"]);
    assert!(written(&log).is_empty(), "{log}");

    // Only published snapshot files stay after a run's vacuum.
    let mut files: Vec<String> = parquet_files(&on_wh.join("state"))
        .iter()
        .map(|p| p.strip_prefix(&on_wh).unwrap().display().to_string())
        .collect();
    files.sort();
    assert_eq!(files.len(), 6, "{files:?}");
    for (i, f) in files.iter().enumerate() {
        let month = if i % 2 == 0 { "2022-03" } else { "2022-04" };
        assert!(f.contains(&format!("period={month}")), "{files:?}");
    }

    // A snapshot stores the pseudonym columns without compression (the hex of a digest, which
    // Snappy hardly shrinks), every other column with Snappy.
    use parquet::basic::Compression;
    use parquet::file::reader::FileReader;
    let dossiers = on.sources.iter().find(|s| s.name == "dossiers").unwrap();
    let pii: Vec<&str> = dossiers
        .columns
        .iter()
        .filter(|c| c.pii)
        .map(|c| c.name.as_str())
        .collect();
    assert!(!pii.is_empty());
    let file = files
        .iter()
        .find(|f| f.starts_with("state/dossiers/"))
        .unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(
        std::fs::File::open(on_wh.join(file)).unwrap(),
    )
    .unwrap();
    let meta = reader.metadata();
    assert!(meta.num_row_groups() > 0);
    let chunks = meta.row_group(0).columns();
    assert!(chunks.len() > pii.len());
    for c in chunks {
        let name = c.column_path().string();
        let expected = if pii.contains(&name.as_str()) {
            Compression::UNCOMPRESSED
        } else {
            Compression::SNAPPY
        };
        assert_eq!(c.compression(), expected, "{file}: {name}");
    }
}

/// The `columns` of each record of `state/_snapshots.json` (`source:month` → columns; `None`:
/// every staging column).
fn recorded_columns(wh: &Path) -> Vec<(String, Option<Vec<String>>)> {
    let text = std::fs::read_to_string(wh.join("state/_snapshots.json")).unwrap();
    let v: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    v.iter()
        .map(|c| {
            let cols = c.get("columns").map(|cols| {
                cols.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap().to_string())
                    .collect()
            });
            (
                format!(
                    "{}:{}",
                    c["source"].as_str().unwrap(),
                    c["month"].as_str().unwrap()
                ),
                cols,
            )
        })
        .collect()
}

/// The column names of the published snapshot file of `source` for `month`.
fn file_columns(wh: &Path, source: &str, month: &str) -> Vec<String> {
    use parquet::file::reader::FileReader;
    let files = parquet_files(&wh.join(format!("state/{source}/period={month}")));
    assert_eq!(files.len(), 1, "{files:?}");
    let reader =
        parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&files[0]).unwrap())
            .unwrap();
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    schema
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect()
}

/// A mart of the applicants seen per period: it reads a pseudonym column no shipped mart reads.
const APPLICANTS: &str = "description: Applicants per period, for the snapshot test.
models:
  - name: applicants
    description: Distinct applicants in the state per period.
    sql: SELECT period, as_of, \"final\", count(DISTINCT applicant_id) AS applicants FROM dossiers_state GROUP BY period, as_of, \"final\"
    columns:
      - { name: period, description: The period. }
      - { name: as_of, description: Its as-of day. }
      - { name: final, description: Whether it is over. }
      - { name: applicants, description: Distinct applicant ids. }
";

#[test]
fn a_snapshot_keeps_the_columns_the_models_read_and_a_model_reading_another_makes_it_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let landing = generate(dir.path(), "2022-02-01", "2022-04-03", "0.02")
        .display()
        .to_string();
    let (on_dir, off_dir) = (dir.path().join("on"), dir.path().join("off"));
    let on_env = shipped(&on_dir, true);
    let off_env = shipped(&off_dir, false);
    let (on_wh, off_wh) = (dir.path().join("wh-on"), dir.path().join("wh-off"));
    let (on_whs, off_whs) = (on_wh.display().to_string(), off_wh.display().to_string());
    let step = |args: &[&str]| -> String {
        let [log, _] = run_both(
            [(&on_env, &on_whs), (&off_env, &off_whs)].map(|(e, w)| (e.as_path(), w.as_str())),
            &landing,
            args,
        );
        let (on, off) = (
            load(&on_env, &landing, &on_whs),
            load(&off_env, &landing, &off_whs),
        );
        assert_same(&dump(&on), &dump(&off), &format!("after {args:?}"));
        log
    };
    step(&["backfill", "--from", "2022-02-01", "--to", "2022-03-31"]);
    let log = step(&["run", "--date", "2022-04-01"]);
    assert_eq!(written(&log).len(), 3, "{log}");

    // The shipped marts read none of the pseudonyms, nor the summary: the dossiers' snapshot
    // holds what the record says, which is the key, the metadata and some columns, not those.
    let cfg = load(&on_env, &landing, &on_whs);
    let dossiers = cfg.sources.iter().find(|s| s.name == "dossiers").unwrap();
    let records = recorded_columns(&on_wh);
    let (_, kept) = records
        .iter()
        .find(|(k, _)| k == "dossiers:2022-03")
        .unwrap();
    let kept = kept.clone().expect("a new record lists its columns");
    assert_eq!(file_columns(&on_wh, "dossiers", "2022-03"), kept);
    for c in [
        "dossier_id",
        "unit_code",
        "due_at",
        "extract_date",
        "source_file",
        "source_position",
    ] {
        assert!(kept.iter().any(|k| k == c), "{c} not in {kept:?}");
    }
    for c in dossiers
        .columns
        .iter()
        .filter(|c| c.pii)
        .map(|c| c.name.as_str())
        .chain(["summary"])
    {
        assert!(!kept.iter().any(|k| k == c), "{c} in {kept:?}");
    }

    // A mart that reads `applicant_id` through the state: the dossiers' snapshots (February's,
    // written by the backfill, and March's) cannot serve it, so the next run writes March's
    // again (from all of staging) with that column too, and February's record goes; the other
    // sources' snapshots stay in use, and every table still equals the warehouse's without
    // snapshots, the new mart's too.
    assert_eq!(snapshots(&on_wh), months(&["2022-02", "2022-03"]));
    for d in [&on_dir, &off_dir] {
        std::fs::write(d.join("pipelines/applicants.yaml"), APPLICANTS).unwrap();
    }
    let log = step(&["run", "--date", "2022-04-02"]);
    assert_eq!(written(&log), ["dossiers:2022-03 from -"], "{log}");
    let mut left = months(&["2022-02", "2022-03"]);
    left.retain(|m| m != "dossiers:2022-02");
    assert_eq!(snapshots(&on_wh), left);
    let cols = file_columns(&on_wh, "dossiers", "2022-03");
    assert!(cols.iter().any(|c| c == "applicant_id"), "{cols:?}");
    let applicants = |wh: &str, env: &Path| {
        let cfg = load(env, &landing, wh);
        query_lines(&cfg, "SELECT * FROM applicants ORDER BY period").unwrap()
    };
    let on_rows = applicants(&on_whs, &on_env);
    assert!(!on_rows.is_empty());
    assert_eq!(on_rows, applicants(&off_whs, &off_env));

    // The next day reads it: nothing is written.
    let log = step(&["run", "--date", "2022-04-03"]);
    assert!(written(&log).is_empty(), "{log}");
    assert_eq!(applicants(&on_whs, &on_env), applicants(&off_whs, &off_env));
}

/// Models that read columns in the ways that are easy to miss: through a view model, in a
/// correlated subquery's condition, and all of them at once.
const READERS: &str = "description: Readers of unusual columns, for the snapshot columns test.
models:
  - name: contacts
    description: A view over the state, read by the mart below.
    materialized: view
    sql: SELECT period, as_of, \"final\", dossier_id, applicant_email FROM dossiers_state
    columns:
      - { name: period, description: The period. }
      - { name: as_of, description: Its as-of day. }
      - { name: final, description: Whether it is over. }
      - { name: dossier_id, description: The dossier. }
      - { name: applicant_email, description: The pseudonym. }
  - name: emails
    description: E-mails per period, through the view.
    sql: SELECT period, as_of, \"final\", count(DISTINCT applicant_email) AS emails FROM contacts GROUP BY period, as_of, \"final\"
    columns:
      - { name: period, description: The period. }
      - { name: as_of, description: Its as-of day. }
      - { name: final, description: Whether it is over. }
      - { name: emails, description: Distinct e-mails. }
  - name: repeat_applicants
    description: Dossiers whose applicant has another dossier in the state.
    sql: SELECT period, as_of, \"final\", count(*) AS repeats FROM dossiers_state s WHERE EXISTS (SELECT 1 FROM dossiers_state t WHERE t.period = s.period AND t.applicant_phone = s.applicant_phone AND t.dossier_id <> s.dossier_id) GROUP BY period, as_of, \"final\"
    columns:
      - { name: period, description: The period. }
      - { name: as_of, description: Its as-of day. }
      - { name: final, description: Whether it is over. }
      - { name: repeats, description: Dossiers with a repeat applicant. }
  - name: signing_rows
    description: Every state row of the signing events.
    sql: SELECT * FROM signature_events_state
    columns:
";

#[test]
fn the_columns_a_snapshot_keeps_include_every_column_a_model_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let env = shipped(dir.path(), true);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let columns = |cfg: &Config| {
        rt.block_on(cchc::warehouse::snapshots::columns_read(cfg))
            .unwrap()
    };
    let names = |cfg: &Config, source: &str| -> Vec<String> {
        let s = cfg.sources.iter().find(|s| s.name == source).unwrap();
        s.columns
            .iter()
            .map(|c| c.name.clone())
            .chain(cchc::config::META_COLUMNS.map(String::from))
            .collect()
    };

    // The shipped marts: the key, the metadata, the unit and the columns the figures use, in
    // staging order; no pseudonym.
    let shipped = load(&env, "/nowhere", "/nowhere");
    let kept = columns(&shipped);
    assert_eq!(
        kept.keys().collect::<Vec<_>>(),
        ["documents", "dossiers", "signature_events"]
    );
    let dossiers = &kept["dossiers"];
    for c in [
        "dossier_id",
        "unit_code",
        "received_at",
        "due_at",
        "status",
        "apologies",
    ] {
        assert!(dossiers.iter().any(|k| k == c), "{c} not in {dossiers:?}");
    }
    for c in [
        "applicant_name",
        "applicant_id",
        "applicant_phone",
        "applicant_email",
        "summary",
    ] {
        assert!(!dossiers.iter().any(|k| k == c), "{c} in {dossiers:?}");
    }
    let order = names(&shipped, "dossiers");
    let mut sorted = dossiers.clone();
    sorted.sort_by_key(|c| order.iter().position(|o| o == c));
    assert_eq!(&sorted, dossiers);
    assert!(dossiers.ends_with(&cchc::config::META_COLUMNS.map(String::from)));

    // A column read through a view model, one read only in a correlated subquery, and a state
    // view read whole.
    let mut yaml = READERS.to_string();
    let signing = shipped
        .sources
        .iter()
        .find(|s| s.name == "signature_events")
        .unwrap();
    for c in cchc::warehouse::state::PERIOD_COLUMNS
        .into_iter()
        .chain(cchc::warehouse::state::version_columns(signing))
    {
        yaml.push_str(&format!(
            "      - {{ name: {c}, description: The view's column. }}\n"
        ));
    }
    std::fs::write(dir.path().join("pipelines/readers.yaml"), yaml).unwrap();
    let cfg = load(&env, "/nowhere", "/nowhere");
    let kept = columns(&cfg);
    for c in ["applicant_email", "applicant_phone"] {
        assert!(
            kept["dossiers"].iter().any(|k| k == c),
            "{c} not in {:?}",
            kept["dossiers"]
        );
    }
    assert_eq!(kept["signature_events"], names(&cfg, "signature_events"));
}
