//! End to end: a generated week with every defect → ingest → reconciliation against an
//! independent count of the landing files, no clear personal data in staging, and a re-run that
//! replaces instead of duplicating.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use crate::common::{all_strings, parquet_files, read_parquet, KEY};
use arrow::array::Array;
use cchc::config::{self, Overrides};
use cchc::synth::{generate, GenOptions};
use unicode_normalization::UnicodeNormalization;

const DAYS: [&str; 7] = [
    "2022-03-01",
    "2022-03-02",
    "2022-03-03",
    "2022-03-04",
    "2022-03-05",
    "2022-03-06",
    "2022-03-07",
];

struct Week {
    dir: tempfile::TempDir,
    cfg: cchc::config::Config,
}

fn week() -> Week {
    let dir = tempfile::tempdir().unwrap();
    let landing = dir.path().join("landing");
    generate(&GenOptions {
        out: landing.clone(),
        from: crate::common::day(DAYS[0]),
        to: crate::common::day(DAYS[6]),
        scale: 0.03,
        seed: 7,
        defects: 0.02,
        reorganise: None,
    })
    .unwrap();
    let cfg = config::load(
        &crate::common::repo().join("configs/local.yaml"),
        &Overrides {
            landing: Some(landing.display().to_string()),
            warehouse: Some(dir.path().join("warehouse").display().to_string()),
            units: None,
            ..Default::default()
        },
    )
    .unwrap();
    Week { dir, cfg }
}

/// Records in a landing file, counted without the pipeline's code: `None` when the file is
/// unreadable under the contract.
fn independent_count(path: &Path) -> Option<u64> {
    let bytes = std::fs::read(path).unwrap();
    let text = String::from_utf8(bytes).ok()?;
    let text = text.trim_start_matches('\u{feff}');
    if text.trim().is_empty() {
        return None;
    }
    let name = path.file_name().unwrap().to_str().unwrap();
    if name.ends_with(".json") {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        let expected = if name.starts_with("hoso_") {
            "DongBoHoSoMC"
        } else {
            "LayThuTuc"
        };
        if v.get("service")
            .and_then(|s| s.as_str())
            .is_some_and(|s| s != expected)
        {
            return None;
        }
        return v.get("data")?.as_array().map(|a| a.len() as u64);
    }
    if name.ends_with(".ndjson") {
        return Some(text.lines().filter(|l| !l.trim().is_empty()).count() as u64);
    }
    // CSV: the header must name every contract column.
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = rdr
        .headers()
        .ok()?
        .iter()
        .map(|h| h.nfc().collect())
        .collect();
    if !headers.iter().any(|h| h == "Trạng thái") {
        return None;
    }
    Some(rdr.records().count() as u64)
}

#[test]
fn a_week_with_defects_reconciles_and_keeps_no_clear_personal_data() {
    let w = week();
    let dates: Vec<_> = DAYS.iter().map(|d| crate::common::day(d)).collect();
    let (rec, err) = cchc::run::run(&w.cfg, "test", dates.clone(), KEY);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(rec.sources.len(), 7 * 4);
    let landing = w.dir.path().join("landing");
    let wh = w.dir.path().join("warehouse");

    let mut total_quarantined = 0;
    let mut total_unreadable = 0;
    for sd in &rec.sources {
        // read = staged + quarantined, and each agrees with an independent count.
        assert_eq!(
            sd.read,
            sd.staged + sd.quarantined,
            "{} {}",
            sd.source,
            sd.extract_date
        );
        let mut read = 0;
        let mut unreadable = 0;
        for f in &sd.files {
            match independent_count(
                &landing
                    .join(&sd.system)
                    .join(sd.extract_date.to_string())
                    .join(&f.name),
            ) {
                Some(n) => {
                    assert!(f.unreadable.is_none(), "{} should be readable", f.name);
                    read += n;
                }
                None => {
                    assert!(f.unreadable.is_some(), "{} should be unreadable", f.name);
                    unreadable += 1;
                }
            }
        }
        assert_eq!(
            (sd.read, sd.unreadable_files),
            (read, unreadable),
            "{} {}",
            sd.source,
            sd.extract_date
        );
        // What is on disk agrees with the record.
        let part = |area: &str| {
            wh.join(area)
                .join(&sd.source)
                .join(format!("extract_date={}", sd.extract_date))
        };
        let staged: usize = parquet_files(&part("staging"))
            .iter()
            .flat_map(|p| read_parquet(p))
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(staged as u64, sd.staged);
        let q: Vec<_> = parquet_files(&part("quarantine"))
            .iter()
            .flat_map(|p| read_parquet(p))
            .collect();
        let (mut with_pos, mut without) = (0u64, 0u64);
        for b in &q {
            let pos = b.column_by_name("position").unwrap();
            without += pos.null_count() as u64;
            with_pos += (pos.len() - pos.null_count()) as u64;
        }
        assert_eq!((with_pos, without), (sd.quarantined, sd.unreadable_files));
        total_quarantined += sd.quarantined;
        total_unreadable += sd.unreadable_files;
    }
    assert!(
        total_quarantined > 0 && total_unreadable > 0,
        "the defects must have been exercised"
    );
    assert!(
        rec.sources.iter().any(|s| !s.present),
        "a missing day folder was generated"
    );

    // Clear personal data of every applicant in the landing area...
    let mut clear: HashSet<String> = HashSet::new();
    for p in walk(&landing.join("one_stop")) {
        if !p
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("hoso_")
        {
            continue;
        }
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&std::fs::read(&p).unwrap()) else {
            continue;
        };
        for d in v["data"].as_array().into_iter().flatten() {
            for k in ["ChuHoSo", "MaDoiTuong", "SoDienThoai", "Email"] {
                if let Some(s) = d[k].as_str().filter(|s| !s.is_empty()) {
                    clear.insert(s.to_string());
                    clear.insert(s.nfc().collect());
                }
            }
        }
    }
    assert!(
        clear.len() > 100,
        "the landing must hold personal data to look for"
    );
    // ...appears nowhere in staging or the marts, in any string column, nested ones included.
    let mut seen = 0;
    let marts = parquet_files(&wh.join("marts"));
    assert!(marts.len() > 5, "the run wrote marts");
    for p in parquet_files(&wh.join("staging")).into_iter().chain(marts) {
        for b in read_parquet(&p) {
            let mut strings = Vec::new();
            for c in b.columns() {
                all_strings(c.as_ref(), &mut strings);
            }
            seen += strings.len();
            for s in strings {
                assert!(
                    !clear.contains(&s),
                    "clear personal data `{s}` in {}",
                    p.display()
                );
            }
        }
    }
    assert!(seen > 1000);

    // The run record is on disk and says the same.
    let rec_file = wh.join("runs").join(format!("{}.json", rec.run_id));
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rec_file).unwrap()).unwrap();
    assert_eq!(on_disk["totals"]["read"], rec.totals.read);
    // Synthetic data misses targets of severity error: exit code 1, with the counts behind it.
    assert_eq!(on_disk["exit_code"], 1);
    assert_eq!(
        on_disk["targets"]["failing_error"],
        rec.targets.failing_error
    );
    assert!(rec.targets.failing_error > 0);
    let stages: Vec<&str> = on_disk["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["ingest", "marts"]);
    assert!(on_disk["stages"][0]["started_at"]
        .as_str()
        .unwrap()
        .starts_with("20"));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Staging content of one partition, as sorted debug lines (file name of the Parquet excluded).
fn partition_rows(wh: &Path, table: &str, day: &str) -> (usize, Vec<String>) {
    let dir = wh
        .join("staging")
        .join(table)
        .join(format!("extract_date={day}"));
    let files = parquet_files(&dir);
    let mut rows = BTreeMap::new();
    for p in &files {
        for b in read_parquet(p) {
            let s = arrow::util::pretty::pretty_format_batches(&[b])
                .unwrap()
                .to_string();
            for (i, l) in s.lines().enumerate() {
                rows.insert(format!("{l}{i}"), ());
            }
        }
    }
    (files.len(), rows.into_keys().collect())
}

#[test]
fn rerunning_a_day_replaces_its_partition() {
    let w = week();
    let wh = w.dir.path().join("warehouse");
    let d = crate::common::day(DAYS[2]);
    let (r1, e1) = cchc::run::run(&w.cfg, "test", vec![d], KEY);
    assert!(e1.is_none());
    let before = partition_rows(&wh, "dossiers", DAYS[2]);
    std::thread::sleep(std::time::Duration::from_millis(5)); // a distinct run id
    let (r2, e2) = cchc::run::run(&w.cfg, "test", vec![d], KEY);
    assert!(e2.is_none());
    assert_ne!(r1.run_id, r2.run_id);
    let after = partition_rows(&wh, "dossiers", DAYS[2]);
    assert_eq!(before.0, 1);
    assert_eq!(after.0, 1, "one file per partition after a re-run");
    assert_eq!(before.1, after.1, "same rows");
    assert_eq!(r1.totals, r2.totals);
}

#[test]
fn generation_is_deterministic_for_a_seed() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let o = |out: &Path| GenOptions {
        out: out.to_path_buf(),
        from: crate::common::day(DAYS[0]),
        to: crate::common::day(DAYS[1]),
        scale: 0.01,
        seed: 3,
        defects: 0.05,
        reorganise: None,
    };
    let sa = generate(&o(a.path())).unwrap();
    let sb = generate(&o(b.path())).unwrap();
    assert_eq!(sa.bytes, sb.bytes);
    let fa = walk(a.path());
    let fb = walk(b.path());
    assert_eq!(fa.len(), fb.len());
    for (x, y) in fa.iter().zip(&fb) {
        assert_eq!(
            std::fs::read(x).unwrap(),
            std::fs::read(y).unwrap(),
            "{}",
            x.display()
        );
    }
}
