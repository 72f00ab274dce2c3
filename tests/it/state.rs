//! Version intervals and the state as of a day, on a hand-made landing whose expected states are
//! written out below (EXTRACTS.md "Reading rules", TARGETS.md "State as of a day").

use crate::common::{dossier, envelope, Harness};
use cchc::sql::{query, session, OutputFormat};
use serde_json::json;

fn sql(h: &Harness, q: &str) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ctx = session(&h.cfg, None).await.unwrap();
        query(&ctx, q, OutputFormat::Csv).await.unwrap()
    })
}

/// A query's rows as `cchc sql` computes `<source>_versions` (the rule's window), and as a
/// refresh does (`latest` sources by the version index): both must hold the same versions.
fn both_ways(cfg: &cchc::config::Config, q: &str) -> (String, String) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (ctx, published, wh) = cchc::sql::snapshot_session(cfg, None).await.unwrap();
        let window = query(&ctx, q, OutputFormat::Csv).await.unwrap();
        let mut branches = Default::default();
        let indexed = cchc::warehouse::version_index::use_version_indexes(
            &ctx,
            cfg,
            (&wh, &published),
            &mut branches,
            &mut Default::default(),
        )
        .await
        .unwrap();
        assert!(
            indexed.contains(&"dossiers".to_string()),
            "the dossiers' versions come from the index: {indexed:?}"
        );
        (window, query(&ctx, q, OutputFormat::Csv).await.unwrap())
    })
}

const AS_OF: &str = "valid_from <= DATE '{d}' AND (valid_to IS NULL OR valid_to > DATE '{d}')";

fn state(h: &Harness, view: &str, cols: &str, key: &str, day: &str) -> String {
    let cond = AS_OF.replace("{d}", day);
    sql(
        h,
        &format!("SELECT {cols} FROM {view} WHERE {cond} ORDER BY {key}"),
    )
}

#[test]
fn dossier_versions_and_state_as_of_each_day() {
    let h = Harness::new();
    let d = |id: &str, st: &str| {
        dossier(
            id,
            json!({"TrangThaiHoSo": st, "NgayKetThucXuLy": if st == "9" { "20220304100000" } else { "" }}),
        )
    };
    h.file(
        "one_stop",
        "2022-03-01",
        "hoso_1.json",
        envelope("DongBoHoSoMC", &[d("H1", "2")]),
    );
    // Day 2: H1 twice in file 1 (array order), then again in a later file, which wins the day.
    h.file(
        "one_stop",
        "2022-03-02",
        "hoso_1.json",
        envelope("DongBoHoSoMC", &[d("H1", "4"), d("H2", "2"), d("H1", "6")]),
    );
    h.file(
        "one_stop",
        "2022-03-02",
        "hoso_2.json",
        envelope("DongBoHoSoMC", &[d("H1", "5")]),
    );
    // Day 3: no extract. Day 4: H1 done.
    h.file(
        "one_stop",
        "2022-03-04",
        "hoso_1.json",
        envelope("DongBoHoSoMC", &[d("H1", "9")]),
    );
    h.run(&["2022-03-01", "2022-03-02", "2022-03-03", "2022-03-04"]);

    let (versions, indexed) = both_ways(
        &h.cfg,
        "SELECT dossier_id, status, source_file, source_position, valid_from, valid_to FROM dossiers_versions \
         ORDER BY dossier_id, valid_from, source_file, source_position",
    );
    assert_eq!(versions, indexed, "the window and the version index differ");
    assert_eq!(
        versions,
        "dossier_id,status,source_file,source_position,valid_from,valid_to\n\
         H1,2,hoso_1.json,1,2022-03-01,2022-03-02\n\
         H1,4,hoso_1.json,1,2022-03-02,2022-03-02\n\
         H1,6,hoso_1.json,3,2022-03-02,2022-03-02\n\
         H1,5,hoso_2.json,1,2022-03-02,2022-03-04\n\
         H1,9,hoso_1.json,1,2022-03-04,\n\
         H2,2,hoso_1.json,2,2022-03-02,\n"
    );
    let st = |day| {
        state(
            &h,
            "dossiers_versions",
            "dossier_id, status",
            "dossier_id",
            day,
        )
    };
    assert_eq!(st("2022-02-28"), "dossier_id,status\n");
    assert_eq!(st("2022-03-01"), "dossier_id,status\nH1,2\n");
    assert_eq!(st("2022-03-02"), "dossier_id,status\nH1,5\nH2,2\n");
    assert_eq!(
        st("2022-03-03"),
        "dossier_id,status\nH1,5\nH2,2\n",
        "a missing day keeps the state"
    );
    assert_eq!(st("2022-03-04"), "dossier_id,status\nH1,9\nH2,2\n");
}

#[test]
fn signing_events_keep_the_first_seen() {
    let h = Harness::new();
    let ev = |id: &str, unit: &str| {
        json!({"event_id": id, "unit_code": unit, "cert_not_before": "2021-01-01T00:00:00+07:00",
               "cert_not_after": "2023-01-01T00:00:00+07:00", "signing_time": "2022-03-01T09:00:00+07:00"})
        .to_string()
    };
    h.file(
        "signatures",
        "2022-03-01",
        "kyso_1.ndjson",
        ev("E1", "000.00.15.H40"),
    );
    h.file(
        "signatures",
        "2022-03-02",
        "kyso_1.ndjson",
        format!(
            "{}\n{}",
            ev("E1", "000.00.21.H40"),
            ev("E2", "000.00.21.H40")
        ),
    );
    h.run(&["2022-03-01", "2022-03-02"]);
    assert_eq!(
        sql(&h, "SELECT event_id, unit_code, valid_from, valid_to FROM signature_events_versions ORDER BY event_id"),
        "event_id,unit_code,valid_from,valid_to\nE1,000.00.15.H40,2022-03-01,\nE2,000.00.21.H40,2022-03-02,\n"
    );
}

#[test]
fn the_newest_catalog_snapshot_replaces_older_ones() {
    let h = Harness::new();
    let p = |code: &str| {
        json!({"MaTTHC": code, "TenTTHC": "T", "CapThucHien": "tinh", "ThoiHanGiaiQuyet": 5,
                               "CoTheRutNgan": "1", "DaRaSoat": "0", "NgayRaSoat": ""})
    };
    h.file(
        "one_stop",
        "2022-03-01",
        "thutuc_1.json",
        envelope("LayThuTuc", &[p("P1"), p("P2")]),
    );
    h.file(
        "one_stop",
        "2022-03-03",
        "thutuc_1.json",
        envelope("LayThuTuc", &[p("P1")]),
    );
    h.run(&["2022-03-01", "2022-03-02", "2022-03-03"]);
    let st = |day| {
        state(
            &h,
            "procedures_versions",
            "procedure_code",
            "procedure_code",
            day,
        )
    };
    assert_eq!(st("2022-03-02"), "procedure_code\nP1\nP2\n");
    assert_eq!(
        st("2022-03-03"),
        "procedure_code\nP1\n",
        "P2 left the catalog with the new snapshot"
    );
}

/// Regression for the re-run rule of issue 2 ("never duplicates"): a re-run that died after
/// writing its file but before removing the older one must not double the day.
#[test]
fn a_leftover_older_partition_file_is_not_read() {
    let h = Harness::new();
    let day = "2022-03-01";
    h.file(
        "one_stop",
        day,
        "hoso_1.json",
        envelope("DongBoHoSoMC", &[dossier("H1", json!({}))]),
    );
    h.run(&[day]);
    let part = h
        .warehouse()
        .join("staging/dossiers/extract_date=2022-03-01");
    let first = crate::common::parquet_files(&part);
    assert_eq!(first.len(), 1);
    let first_bytes = std::fs::read(&first[0]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    h.file(
        "one_stop",
        day,
        "hoso_2.json",
        envelope("DongBoHoSoMC", &[dossier("H2", json!({}))]),
    );
    h.run(&[day]);
    // Put the first run's file back, as if the second run had died before removing it.
    std::fs::write(&first[0], first_bytes).unwrap();
    assert_eq!(crate::common::parquet_files(&part).len(), 2);
    assert_eq!(
        sql(&h, "SELECT dossier_id FROM dossiers ORDER BY dossier_id"),
        "dossier_id\nH1\nH2\n"
    );

    // A re-delivery that empties the day: the newest file is an empty one, and wins.
    std::fs::remove_file(h.landing().join("one_stop").join(day).join("hoso_1.json")).unwrap();
    std::fs::write(
        h.landing().join("one_stop").join(day).join("hoso_2.json"),
        envelope("DongBoHoSoMC", &[]),
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    h.run(&[day]);
    assert_eq!(sql(&h, "SELECT count(*) AS n FROM dossiers"), "n\n0\n");
}

/// The version index gives every version of generated extracts (same-day replacements, late
/// and duplicate files, quarantined records between staged ones) the `valid_to` of the window.
#[test]
fn the_version_index_agrees_with_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let landing = crate::common::generate(dir.path(), "2022-01-01", "2022-02-15", "0.02");
    let (landing, wh) = (
        landing.to_str().unwrap().to_string(),
        dir.path().join("wh").to_str().unwrap().to_string(),
    );
    crate::common::backfill_ok(&landing, &wh, "2022-01-01", "2022-02-15", &[]);
    let cfg = crate::common::config_for(&landing, &wh);
    for (view, key) in [
        ("dossiers_versions", "dossier_id"),
        ("documents_versions", "doc_id"),
    ] {
        let q = format!(
            "SELECT {key}, extract_date, source_file, source_position, valid_from, valid_to, \
             count(*) OVER () AS versions, count(valid_to) OVER () AS replaced FROM {view} \
             ORDER BY {key}, extract_date, source_file, source_position"
        );
        let (window, indexed) = both_ways(&cfg, &q);
        assert!(
            window.lines().count() > 100,
            "{view}: too few versions to compare"
        );
        assert_eq!(
            window, indexed,
            "{view}: the window and the version index differ"
        );
    }
}
