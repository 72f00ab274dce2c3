//! Units that change (TARGETS.md "Units that change", EXTRACTS.md "Administrative units"): a
//! hand-made landing across a merge of two communes in the middle of a month, a district that
//! ceases (its work folded into another), a chain of changes and a late-synced dossier of a
//! ceased unit, every figure written out by hand with its reasoning; the reference files'
//! validation errors; a generated landing across the 2025 reorganisation, ranked by the 2025
//! scheme.
//!
//! Units (units.csv with validity):
//! - D  = 000.00.15.H40, a department, forever.
//! - H1 = 000.00.21.H40, a district, until 2024-03-01 (then folded into H2).
//! - H2 = 000.00.22.H40, a district, forever.
//! - C  = 000.01.21.H40, a commune of H1 until 2024-03-01, of H2 from then (two rows).
//! - A  = 000.01.22.H40, B = 000.02.22.H40: communes of H2 until 2024-02-15, merged into M.
//! - M  = 000.03.22.H40, a commune of H2 from 2024-02-15 until 2024-03-20, then renamed N.
//! - N  = 000.04.22.H40, a commune of H2 from 2024-03-20.
//!
//! Changes: 2024-02-15 A→M and B→M; 2024-03-01 H1→H2; 2024-03-20 M→N (so A→M→N, B→M→N).
//! Ingested days: 01-31, 02-10, 02-29, 03-25, 03-31. January, February and March are final
//! (as of 01-31, 02-29, 03-31); the year 2024 is provisional as of 03-31.

use std::collections::BTreeSet;

use serde_json::json;

use crate::common::{Harness, UNITS};
use crate::targets::{batch, doc, expect, hs, r, results, sig, DOC_HEADER};

const D: &str = "000.00.15.H40";
const H1: &str = "000.00.21.H40";
const H2: &str = "000.00.22.H40";
const C: &str = "000.01.21.H40";
const A: &str = "000.01.22.H40";
const B: &str = "000.02.22.H40";
const M: &str = "000.03.22.H40";
const N: &str = "000.04.22.H40";

const CHANGING_UNITS: &str = "unit_code,unit_name,tier,parent_code,valid_from,valid_to
000.00.15.H40,Sở Nội vụ,so-ban-nganh,,,
000.00.21.H40,Thị xã Cửa Lò,quan-huyen,,,2024-03-01
000.00.22.H40,Thành phố Vinh,quan-huyen,,,
000.01.21.H40,Phường Nghi Thu,xa-phuong,000.00.21.H40,,2024-03-01
000.01.21.H40,Phường Nghi Thu,xa-phuong,000.00.22.H40,2024-03-01,
000.01.22.H40,Phường Hưng Bình,xa-phuong,000.00.22.H40,,2024-02-15
000.02.22.H40,Phường Hưng Phúc,xa-phuong,000.00.22.H40,,2024-02-15
000.03.22.H40,Phường Hưng Bình Phúc,xa-phuong,000.00.22.H40,2024-02-15,2024-03-20
000.04.22.H40,Phường Trung Đô,xa-phuong,000.00.22.H40,2024-03-20,
";

const CHANGES: &str = "effective_date,old_code,new_code
2024-02-15,000.01.22.H40,000.03.22.H40
2024-02-15,000.02.22.H40,000.03.22.H40
2024-03-01,000.00.21.H40,000.00.22.H40
2024-03-20,000.03.22.H40,000.04.22.H40
";

/// A dossier done on `done` (status 10), or in progress (status 4) when `done` is empty;
/// received `rcv`, due `due` (yyyyMMdd), synced to the portal when `synced`.
fn done(id: &str, unit: &str, rcv: &str, due: &str, done: &str, synced: bool) -> serde_json::Value {
    let mut f = json!({"NgayTiepNhan": format!("{rcv}080000"), "NgayHenTra": format!("{due}170000"),
        "TrangThaiDongBoDVC": if synced { "1" } else { "0" }});
    let status = if done.is_empty() {
        "4"
    } else {
        f["NgayKetThucXuLy"] = json!(format!("{done}100000"));
        "10"
    };
    hs(id, unit, status, f)
}

fn landing(h: &Harness) {
    let reference = h.landing().join("reference");
    std::fs::write(reference.join("units.csv"), CHANGING_UNITS).unwrap();
    std::fs::write(reference.join("unit_changes.csv"), CHANGES).unwrap();
    let day = |d: &str, records: Vec<serde_json::Value>| {
        h.file("one_stop", d, "hoso_001.json", batch(records))
    };
    day(
        "2024-01-31",
        vec![
            done("a1", A, "20240105", "20240120", "20240115", true),
            done("b1", B, "20240108", "20240118", "20240125", false),
            done("h1a", H1, "20240110", "20240130", "20240129", true),
            done("c1", C, "20240112", "20240122", "20240122", true),
            done("h2a", H2, "20240115", "20240125", "20240120", true),
        ],
    );
    day(
        "2024-02-10",
        vec![
            done("a2", A, "20240201", "20240208", "20240209", true),
            // b2, first version: in progress, due 02-20.
            done("b2", B, "20240202", "20240220", "", true),
        ],
    );
    day(
        "2024-02-29",
        vec![
            done("m1", M, "20240216", "20240226", "20240226", true),
            // b2 again after the merge, still under its old code B: done late (02-27 > 02-20).
            done("b2", B, "20240202", "20240220", "20240227", true),
            done("h1b", H1, "20240205", "20240215", "20240214", false),
            // c2, first version: in progress, due 03-05 (after E = 02-29: no backlog).
            done("c2", C, "20240220", "20240305", "", true),
        ],
    );
    day(
        "2024-03-25",
        vec![
            // a3: a dossier of A (ceased 02-15) first synced on 03-25: done 02-20 on time.
            done("a3", A, "20240212", "20240222", "20240220", true),
            // h1c: a dossier of H1 received after H1 ceased (03-02), done on time.
            done("h1c", H1, "20240302", "20240312", "20240310", true),
            done("m2", M, "20240305", "20240315", "20240316", true),
            done("c2", C, "20240220", "20240305", "20240304", true),
        ],
    );
    day(
        "2024-03-31",
        vec![
            done("n1", N, "20240321", "20240328", "20240327", true),
            done("d1", D, "20240301", "20240310", "20240308", true),
        ],
    );
    // Documents: V1 of B issued in January and sent electronically; V2 of B (after the merge,
    // under its old code) issued in February, not sent.
    let docs = |rows: &[String]| format!("\u{feff}{DOC_HEADER}\n{}\n", rows.join("\n"));
    let outgoing = |id: &str, issued: &str, sent: &str| {
        doc(
            id,
            "Không",
            "",
            "Đi",
            B,
            issued,
            "",
            "",
            sent,
            "Đã ban hành",
        )
    };
    h.file(
        "ioffice",
        "2024-01-31",
        "vanban_001.csv",
        docs(&[outgoing("V1", "20/01/2024", "Có")]),
    );
    h.file(
        "ioffice",
        "2024-02-29",
        "vanban_001.csv",
        docs(&[outgoing("V2", "20/02/2024", "Không")]),
    );
    // A signing event of a signer of A on 02-20 (after A merged), valid.
    h.file(
        "signatures",
        "2024-02-29",
        "kyso_001.ndjson",
        sig(
            "S1",
            Some("V2"),
            A,
            "2023-01-01T00:00:00+07:00",
            "2025-01-01T00:00:00+07:00",
            None,
            "2024-02-20T09:00:00+07:00",
            None,
        ) + "\n",
    );
}

/// The units with a row of `target` in `period`.
fn units_of(
    got: &std::collections::BTreeMap<(String, String, String), crate::targets::Row>,
    target: &str,
    period: &str,
) -> BTreeSet<String> {
    got.keys()
        .filter(|k| k.0 == target && k.1 == period)
        .map(|k| k.2.clone())
        .collect()
}

fn set(codes: &[&str]) -> BTreeSet<String> {
    codes.iter().map(|c| c.to_string()).collect()
}

#[test]
fn figures_follow_merges_ceased_units_and_chains() {
    let h = Harness::new();
    landing(&h);
    let rec = h.run(&[
        "2024-01-31",
        "2024-02-10",
        "2024-02-29",
        "2024-03-25",
        "2024-03-31",
    ]);
    assert_eq!(rec.exit_code, 1, "error targets fail");
    assert!(
        h.quarantine("dossiers").is_empty(),
        "records of ceased units are valid: {:?}",
        h.quarantine("dossiers")
    );
    let got = results(&h, "target_results");
    let district = results(&h, "target_results_district");

    // ---- Which units each period reports: those valid on its as-of day ----
    // January (E 01-31): before every change. February (E 02-29): A and B ceased on 02-15, M
    // began; H1 still there (until 03-01). March and the year (E 03-31): H1 and M gone, N began.
    let rows = |p: &str| units_of(&got, "dossier_on_time", p);
    assert_eq!(rows("2024-01"), set(&[D, H1, H2, C, A, B, "ALL"]));
    assert_eq!(rows("2024-02"), set(&[D, H1, H2, C, M, "ALL"]));
    assert_eq!(rows("2024-03"), set(&[D, H2, C, N, "ALL"]));
    assert_eq!(rows("2024"), set(&[D, H2, C, N, "ALL"]));
    for target in [
        "portal_sync",
        "no_backlog",
        "satisfaction",
        "signature_valid",
    ] {
        for p in ["2024-01", "2024-02", "2024-03", "2024"] {
            assert_eq!(units_of(&got, target, p), rows(p), "{target} {p}");
        }
    }
    // Districts with their communes as of E: C belongs to H1 until 03-01, then to H2.
    let drows = |p: &str| units_of(&district, "dossier_on_time", p);
    assert_eq!(drows("2024-01"), set(&[H1, H2]));
    assert_eq!(drows("2024-02"), set(&[H1, H2]));
    assert_eq!(drows("2024-03"), set(&[H2]));
    assert_eq!(drows("2024"), set(&[H2]));

    // ---- January (final, E 01-31): nothing changed yet, every record counts for its unit ----
    // Done in January: a1 (A, on time), b1 (B, 01-25 > 01-18: late), h1a (H1), c1 (C, on its
    // due day), h2a (H2). D has none.
    expect(
        &got,
        "dossier_on_time",
        "2024-01",
        &[
            (A, r(1, 1, "pass", &[])),
            (B, r(0, 1, "fail", &["b1"])),
            (H1, r(1, 1, "pass", &[])),
            (C, r(1, 1, "pass", &[])),
            (H2, r(1, 1, "pass", &[])),
            (D, r(0, 0, "no_data", &[])),
            ("ALL", r(4, 5, "fail", &["b1"])),
        ],
    );
    // Received in January: the same five; only b1 not synced.
    expect(
        &got,
        "portal_sync",
        "2024-01",
        &[
            (A, r(1, 1, "pass", &[])),
            (B, r(0, 1, "fail", &["b1"])),
            (H1, r(1, 1, "pass", &[])),
            ("ALL", r(4, 5, "fail", &["b1"])),
        ],
    );
    // Districts: H1 = H1 + C (h1a, c1); H2 = H2 + A + B (h2a, a1, b1).
    expect(
        &district,
        "dossier_on_time",
        "2024-01",
        &[(H1, r(2, 2, "pass", &[])), (H2, r(2, 3, "fail", &["b1"]))],
    );
    // V1 (B, issued 01-20, sent electronically).
    expect(
        &got,
        "e_exchange",
        "2024-01",
        &[(B, r(1, 1, "info", &[])), ("ALL", r(1, 1, "info", &[]))],
    );

    // ---- February (final, E 02-29): the month of the merge A, B → M (02-15) ----
    // State as of 02-29. Done in February: a2 (A → M, 02-09 > 02-08: late), b2's second
    // version (B → M, synced on 02-29 under its old code: 02-27 > 02-20: late), m1 (M, on its
    // due day), h1b (H1, on time). a3 (done 02-20) is not known before 03-25: not counted.
    expect(
        &got,
        "dossier_on_time",
        "2024-02",
        &[
            (M, r(1, 3, "fail", &["a2", "b2"])),
            (H1, r(1, 1, "pass", &[])),
            (C, r(0, 0, "no_data", &[])),
            (H2, r(0, 0, "no_data", &[])),
            (D, r(0, 0, "no_data", &[])),
            ("ALL", r(2, 4, "fail", &["a2", "b2"])),
        ],
    );
    // Received in February: a2, b2, m1 (→ M, all synced), h1b (H1, not synced), c2 (C).
    expect(
        &got,
        "portal_sync",
        "2024-02",
        &[
            (M, r(3, 3, "pass", &[])),
            (H1, r(0, 1, "fail", &["h1b"])),
            (C, r(1, 1, "pass", &[])),
            (H2, r(0, 0, "no_data", &[])),
            ("ALL", r(4, 5, "fail", &["h1b"])),
        ],
    );
    // In progress at 02-29 (the denominator): c2 only, due 03-05, after E: no backlog. b2's
    // version of 02-29 is done, so M has none in progress.
    expect(
        &got,
        "no_backlog",
        "2024-02",
        &[
            (C, r(0, 1, "pass", &[])),
            (M, r(0, 0, "pass", &[])),
            ("ALL", r(0, 1, "pass", &[])),
        ],
    );
    // Districts: H1 = H1 + C (C's row valid on 02-29 has parent H1); H2 = H2 + M.
    expect(
        &district,
        "dossier_on_time",
        "2024-02",
        &[
            (H1, r(1, 1, "pass", &[])),
            (H2, r(1, 3, "fail", &["a2", "b2"])),
        ],
    );
    expect(
        &district,
        "portal_sync",
        "2024-02",
        &[(H1, r(1, 2, "fail", &["h1b"])), (H2, r(3, 3, "pass", &[]))],
    );
    // V2 (B, issued 02-20, not sent) counts for M; S1 (a signer of A, 02-20, valid) too.
    expect(
        &got,
        "e_exchange",
        "2024-02",
        &[
            (M, r(0, 1, "info", &["V2"])),
            ("ALL", r(0, 1, "info", &["V2"])),
        ],
    );
    expect(
        &got,
        "signature_valid",
        "2024-02",
        &[(M, r(1, 1, "pass", &[])), ("ALL", r(1, 1, "pass", &[]))],
    );

    // ---- March (final, E 03-31): H1 ceased (→ H2, 03-01), M became N (03-20) ----
    // Done in March: h1c (H1 → H2, on time), m2 (M → N, 03-16 > 03-15: late), c2 (C, 03-04 ≤
    // 03-05), n1 (N), d1 (D). a3 was done in February: not March.
    expect(
        &got,
        "dossier_on_time",
        "2024-03",
        &[
            (D, r(1, 1, "pass", &[])),
            (H2, r(1, 1, "pass", &[])),
            (C, r(1, 1, "pass", &[])),
            (N, r(1, 2, "fail", &["m2"])),
            ("ALL", r(4, 5, "fail", &["m2"])),
        ],
    );
    // Received in March: h1c (→ H2), m2 and n1 (→ N), d1 (D); all synced.
    expect(
        &got,
        "portal_sync",
        "2024-03",
        &[
            (D, r(1, 1, "pass", &[])),
            (H2, r(1, 1, "pass", &[])),
            (C, r(0, 0, "no_data", &[])),
            (N, r(2, 2, "pass", &[])),
            ("ALL", r(4, 4, "pass", &[])),
        ],
    );
    // H2 = H2 + C (its row from 03-01) + N.
    expect(
        &district,
        "dossier_on_time",
        "2024-03",
        &[(H2, r(3, 4, "fail", &["m2"]))],
    );

    // ---- The year 2024 (provisional, E 03-31): every record to its final successor ----
    // N: a1 ✓, b1 ✗, a2 ✗, b2 ✗, m1 ✓, a3 ✓ (the late-synced dossier of ceased A), m2 ✗, n1 ✓
    // = 4/8. H2: h1a, h2a, h1b, h1c = 4/4. C: c1, c2 = 2/2. D: d1 = 1/1. ALL 11/15.
    expect(
        &got,
        "dossier_on_time",
        "2024",
        &[
            (N, r(4, 8, "fail", &["a2", "b1", "b2", "m2"])),
            (H2, r(4, 4, "pass", &[])),
            (C, r(2, 2, "pass", &[])),
            (D, r(1, 1, "pass", &[])),
            ("ALL", r(11, 15, "fail", &["a2", "b1", "b2", "m2"])),
        ],
    );
    // Received in the year: all fifteen; not synced b1 (→ N) and h1b (→ H2).
    expect(
        &got,
        "portal_sync",
        "2024",
        &[
            (N, r(7, 8, "fail", &["b1"])),
            (H2, r(3, 4, "fail", &["h1b"])),
            (C, r(2, 2, "pass", &[])),
            (D, r(1, 1, "pass", &[])),
            ("ALL", r(13, 15, "fail", &["b1", "h1b"])),
        ],
    );
    expect(
        &district,
        "dossier_on_time",
        "2024",
        &[(H2, r(10, 14, "fail", &["a2", "b1", "b2", "m2"]))],
    );
    expect(
        &district,
        "portal_sync",
        "2024",
        &[(H2, r(12, 14, "fail", &["b1", "h1b"]))],
    );
    expect(
        &got,
        "e_exchange",
        "2024",
        &[
            (N, r(1, 2, "info", &["V2"])),
            ("ALL", r(1, 2, "info", &["V2"])),
        ],
    );

    // The marts count for the same units: mart_dossiers of March has rows for D, H2, C, N only.
    let cfg = &h.cfg;
    let lines = crate::common::query_lines(
        cfg,
        "SELECT unit_code, done, done_on_time FROM mart_dossiers WHERE period = '2024-03'",
    )
    .unwrap();
    let mut rows: Vec<(String, i64, i64)> = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["unit_code"].as_str().unwrap().to_string(),
                v["done"].as_i64().unwrap(),
                v["done_on_time"].as_i64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    let want = |u: &str, d: i64, t: i64| (u.to_string(), d, t);
    assert_eq!(
        rows,
        [want(D, 1, 1), want(H2, 1, 1), want(C, 1, 1), want(N, 2, 1)]
    );
    // The state views carry the attributed unit; staging keeps the recorded one.
    let staged: BTreeSet<String> = h
        .staged_strings("dossiers", "unit_code")
        .into_iter()
        .flatten()
        .collect();
    assert!(staged.contains(A) && staged.contains(B) && staged.contains(H1));
}

#[test]
fn without_unit_changes_the_units_table_is_the_plain_seed() {
    // The seed of every other test: one row per code, no dates, no changes file.
    let u = cchc::config::units::Units::parse(UNITS.as_bytes(), "units.csv").unwrap();
    assert!(u.changes.is_empty());
    assert!(u
        .rows
        .iter()
        .all(|r| r.valid_from.is_none() && r.valid_to.is_none()));
    let day = crate::common::day("2030-01-01");
    assert_eq!(u.valid_on(day).count(), u.rows.len());
    assert_eq!(u.successor("000.01.21.H40", day), "000.01.21.H40");
}

/// The first line of the configuration error of reading `units` and `changes`.
fn problems(units: &str, changes: &str) -> Vec<String> {
    let err = cchc::config::units::Units::parse(units.as_bytes(), "units.csv")
        .and_then(|u| u.with_changes(changes.as_bytes(), "unit_changes.csv"))
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    err.to_string().lines().map(str::to_string).collect()
}

#[test]
fn bad_reference_files_are_reported_with_file_and_line() {
    // Overlapping rows of one code.
    let overlap = "unit_code,unit_name,tier,parent_code,valid_from,valid_to
A,A,xa-phuong,,2024-01-01,2024-06-01
A,A2,xa-phuong,,2024-05-01,
";
    let err = cchc::config::units::Units::parse(overlap.as_bytes(), "units.csv").unwrap_err();
    assert_eq!(
        err.to_string().lines().next().unwrap(),
        "units.csv:3:0: error[C016]: unit `A` is valid 2024-05-01..… here and 2024-01-01..2024-06-01 on line 2: the rows of a code must not overlap"
    );
    let bad_dates = "unit_code,unit_name,tier,parent_code,valid_from,valid_to
A,A,xa-phuong,,2024-06-01,2024-01-01
B,B,xa-phuong,,01/02/2024,
";
    let err = cchc::config::units::Units::parse(bad_dates.as_bytes(), "units.csv").unwrap_err();
    let lines: Vec<String> = err.to_string().lines().map(str::to_string).collect();
    assert!(
        lines[0].starts_with(
            "units.csv:2:0: error[C016]: valid_to 2024-01-01 is not after valid_from 2024-06-01"
        ),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with(
            "units.csv:3:0: error[C016]: valid_from `01/02/2024` is not a date (yyyy-MM-dd)"
        ),
        "{lines:?}"
    );

    let units = "unit_code,unit_name,tier,parent_code,valid_from,valid_to
A,A,xa-phuong,,,2024-03-01
B,B,xa-phuong,,,
C,C,xa-phuong,,2024-06-01,
";
    // A split: one old code, one date, two successors; both lines named.
    let p = problems(
        units,
        "effective_date,old_code,new_code\n2024-03-01,A,B\n2024-03-01,A,C\n",
    );
    assert!(p.iter().any(|l| l.starts_with(
        "unit_changes.csv:3:0: error[C017]: unit `A` would continue both in `B` (line 2) and in `C` on 2024-03-01"
    )), "{p:?}");
    // A successor without a row valid on the effective date (C begins 2024-06-01).
    let p = problems(units, "effective_date,old_code,new_code\n2024-03-01,A,C\n");
    assert_eq!(
        p[0],
        "unit_changes.csv:2:0: error[C017]: successor `C` has no row of units.csv valid on 2024-03-01, the day it takes over `A`"
    );
    // An unknown code.
    let p = problems(units, "effective_date,old_code,new_code\n2024-03-01,A,Z\n");
    assert_eq!(
        p[0],
        "unit_changes.csv:2:0: error[C017]: new_code `Z` is not a unit of units.csv"
    );
    // A cycle: A → B, then B → A.
    let p = problems(
        units,
        "effective_date,old_code,new_code\n2024-03-01,A,B\n2024-07-01,B,A\n",
    );
    assert!(
        p.iter().any(|l| {
            l
            == "unit_changes.csv:2:0: error[C017]: the changes form a cycle A → B → A (lines 2, 3)"
        }),
        "{p:?}"
    );
    // A bad date and a bad header.
    let p = problems(units, "effective_date,old_code,new_code\n1/3/2024,A,B\n");
    assert_eq!(
        p[0],
        "unit_changes.csv:2:0: error[C017]: effective_date `1/3/2024` is not a date (yyyy-MM-dd)"
    );
    let p = problems(units, "date,from,to\n2024-03-01,A,B\n");
    assert!(
        p[0].starts_with("unit_changes.csv:1:0: error[C017]: the header must be effective_date,old_code,new_code"),
        "{p:?}"
    );
}

#[test]
fn validate_reads_the_unit_changes_and_reports_their_problems() {
    let h = Harness::new();
    let reference = h.landing().join("reference");
    std::fs::write(reference.join("units.csv"), CHANGING_UNITS).unwrap();
    std::fs::write(reference.join("unit_changes.csv"), CHANGES).unwrap();
    let landing = h.landing().display().to_string();
    let wh = h.warehouse().display().to_string();
    let out = crate::common::bin(&landing, &wh)
        .arg("validate")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("units: 9 rows, 4 unit changes"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::write(
        reference.join("unit_changes.csv"),
        format!("{CHANGES}2024-03-20,{M},{A}\n"),
    )
    .unwrap();
    let out = crate::common::bin(&landing, &wh)
        .arg("validate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unit_changes.csv:6:0: error[C017]: unit `000.03.22.H40` would continue both in `000.04.22.H40` (line 5) and in `000.01.22.H40` on 2024-03-20"),
        "{err}"
    );
}

#[test]
fn a_generated_reorganisation_is_attributed_and_ranked_by_the_2025_scheme() {
    let dir = tempfile::tempdir().unwrap();
    let landing = dir.path().join("landing");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cchc"))
        .args(["gen", "--from", "2025-06-26", "--to", "2025-07-05"])
        .args(["--scale", "0.02", "--reorganise", "2025-07-01", "--out"])
        .arg(&landing)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let changes = std::fs::read_to_string(landing.join("reference/unit_changes.csv")).unwrap();
    // 460 communes merge into 229 (two by two per district, an odd last one into the pair before).
    assert_eq!(changes.lines().count(), 1 + 460);
    let (l, w) = (
        landing.display().to_string(),
        dir.path().join("wh").display().to_string(),
    );
    let validate = crate::common::bin(&l, &w).arg("validate").output().unwrap();
    assert!(validate.status.success(), "{validate:?}");
    crate::common::backfill_ok(&l, &w, "2025-06-26", "2025-07-05", &[]);
    let cfg = crate::common::config_for(&l, &w);
    let q = |sql: &str| -> Vec<serde_json::Value> {
        crate::common::query_lines(&cfg, sql)
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let count = |sql: &str| q(sql)[0]["n"].as_i64().unwrap();
    // Old codes keep coming after the reorganisation (dossiers received before it).
    let old_after = count(
        "SELECT count(*) AS n FROM dossiers d JOIN units u ON u.unit_code = d.unit_code \
         WHERE d.extract_date >= DATE '2025-07-01' AND u.valid_to = DATE '2025-07-01'",
    );
    assert!(
        old_after > 0,
        "no record of an old code after the reorganisation"
    );
    // June (as of 06-30) reports districts and the old communes; July (as of 07-05) only the
    // departments and the new communes, which count the old communes' dossiers.
    let tiers = |period: &str| -> Vec<(String, i64)> {
        q(&format!(
            "SELECT coalesce(u.tier, 'ALL') AS tier, count(*) AS n FROM target_results t \
             LEFT JOIN units_as_of u ON u.period = t.period AND u.unit_code = t.unit_code \
             WHERE t.target_id = 'dossier_on_time' AND t.period = '{period}' GROUP BY 1 ORDER BY 1"
        ))
        .iter()
        .map(|v| {
            (
                v["tier"].as_str().unwrap().to_string(),
                v["n"].as_i64().unwrap(),
            )
        })
        .collect()
    };
    let t = |x: &str, n: i64| (x.to_string(), n);
    assert_eq!(
        tiers("2025-06"),
        [
            t("ALL", 1),
            t("quan-huyen", 21),
            t("so-ban-nganh", 20),
            t("xa-phuong", 460)
        ]
    );
    assert_eq!(
        tiers("2025-07"),
        [t("ALL", 1), t("so-ban-nganh", 20), t("xa-phuong", 229)]
    );
    // The ALL row is the sum over the marts whatever the attribution: done in July.
    let all = q(
        "SELECT denominator AS n FROM target_results WHERE target_id = 'dossier_on_time' \
                 AND period = '2025-07' AND unit_code = 'ALL'",
    )[0]["n"]
        .as_i64()
        .unwrap();
    let units = count(
        "SELECT sum(denominator) AS n FROM target_results WHERE target_id = 'dossier_on_time' \
         AND period = '2025-07' AND unit_code <> 'ALL'",
    );
    let done = count("SELECT sum(done) AS n FROM mart_dossiers WHERE period = '2025-07'");
    assert_eq!(all, done);
    // Districts' late records (no successor) count for the province only.
    assert!(units <= all, "{units} > {all}");
    // The 2025 scheme ranks departments and the communes valid on the year's as-of day.
    let rank = crate::common::bin(&l, &w)
        .args(["rank", "--year", "2025"])
        .output()
        .unwrap();
    assert!(rank.status.success(), "{rank:?}");
    let ranked: Vec<(String, i64)> =
        q("SELECT tier, count(*) AS n FROM par_ranking GROUP BY tier ORDER BY tier")
            .iter()
            .map(|v| {
                (
                    v["tier"].as_str().unwrap().to_string(),
                    v["n"].as_i64().unwrap(),
                )
            })
            .collect();
    assert_eq!(ranked, [t("so-ban-nganh", 20), t("xa-phuong", 229)]);
    let new_communes = count(
        "SELECT count(*) AS n FROM par_ranking r JOIN units u ON u.unit_code = r.unit_code \
         WHERE r.tier = 'xa-phuong' AND u.valid_from = DATE '2025-07-01'",
    );
    assert_eq!(new_communes, 229);
}
