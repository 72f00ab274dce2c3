//! The yearly ranking (src/ranking.rs) on a hand-made year, with the shipped 2022 scheme
//! (configs/plans/2022/ranking.yaml): three departments (two tied within 0.001, one without
//! dossiers) and three districts (one missing from the survey, one with appraisal points above
//! the maximum, one whose own figures differ from its district roll-up). Every expected point is
//! worked out below by hand.
//!
//! Criteria and maxima: dossier_on_time 6 (linear, goal 0.98), overdue_apology 3 (goal 1),
//! no_backlog 3 (0.5 a dossier, floor 0), portal_sync 3 (goal 1), online_share 4 (goal 0.5),
//! satisfaction 5 (goal 0.85), outgoing_signed 3 (goal 0.9), e_exchange 3 (goal 0.9),
//! appraisal 42 (par_inputs), survey 28 (survey). Points are kept to 4 decimals.

use std::collections::HashMap;

use cchc::config::units::{Unit, Units};
use cchc::ranking::{score, Flag, InputTable, Measured, YearResults};

fn unit(code: &str, tier: &str, parent: &str) -> Unit {
    Unit::new(code, &format!("Đơn vị {code}"), tier, parent)
}

fn ratio(n: i64, d: i64) -> Measured {
    Measured {
        numerator: n,
        denominator: d,
        value: (d > 0).then(|| n as f64 / d as f64),
        status: if d > 0 { "pass" } else { "no_data" }.into(),
        sample_keys: vec![],
    }
}

fn count(n: i64, in_progress: i64) -> Measured {
    Measured {
        numerator: n,
        denominator: in_progress,
        value: Some(n as f64),
        status: if n == 0 { "pass" } else { "fail" }.into(),
        sample_keys: vec![],
    }
}

/// The eight measured figures of a unit, in scheme order.
fn figures(map: &mut HashMap<(String, String), Measured>, unit: &str, v: [Option<Measured>; 8]) {
    let ids = [
        "dossier_on_time",
        "overdue_apology",
        "no_backlog",
        "portal_sync",
        "online_share",
        "satisfaction",
        "outgoing_signed",
        "e_exchange",
    ];
    for (id, m) in ids.iter().zip(v) {
        if let Some(m) = m {
            map.insert((id.to_string(), unit.to_string()), m);
        }
    }
}

fn input(rows: &[(&str, Option<&str>, f64)]) -> Option<InputTable> {
    Some(InputTable {
        file: "hand".into(),
        points: rows
            .iter()
            .map(|(u, c, p)| ((u.to_string(), c.map(str::to_string)), *p))
            .collect(),
    })
}

#[test]
fn a_hand_made_year_is_scored_and_ranked_as_worked_out_by_hand() {
    let cfg = crate::common::config_for("/nonexistent", "/nonexistent");
    let scheme = cfg.scheme_for(2022).expect("the shipped 2022 scheme");
    let units = Units::from_rows(vec![
        unit("D1", "so-ban-nganh", ""),
        unit("D2", "so-ban-nganh", ""),
        unit("D3", "so-ban-nganh", ""),
        unit("H1", "quan-huyen", ""),
        unit("H1X", "xa-phuong", "H1"),
        unit("H2", "quan-huyen", ""),
        unit("H3", "quan-huyen", ""),
    ]);
    let mut r = YearResults {
        as_of: "2022-12-31".parse().ok(),
        is_final: true,
        ..Default::default()
    };
    // D1: 6 (49/50 = 0.98) + 3 + 3 (no backlog) + 3 + 4 (0.6 ≥ 0.5) + 5 (40/45 ≥ 0.85) + 3 (0.9)
    //     + 2.6667 (3 × 0.8 / 0.9) + appraisal 40 + survey 25 = 94.6667.
    figures(
        &mut r.units,
        "D1",
        [
            Some(ratio(49, 50)),
            Some(ratio(2, 2)),
            Some(count(0, 4)),
            Some(ratio(50, 50)),
            Some(ratio(30, 50)),
            Some(ratio(40, 45)),
            Some(ratio(9, 10)),
            Some(ratio(8, 10)),
        ],
    );
    // D2: every measured criterion full (30) + appraisal 39.666 + survey 25 = 94.666:
    //     0.0007 below D1, within 0.001, so tied at rank 1.
    figures(
        &mut r.units,
        "D2",
        [
            Some(ratio(50, 50)),
            Some(ratio(1, 1)),
            Some(count(0, 0)),
            Some(ratio(7, 7)),
            Some(ratio(5, 5)),
            Some(ratio(9, 10)),
            Some(ratio(10, 10)),
            Some(ratio(9, 10)),
        ],
    );
    // D3 has no dossiers: on time, apology, portal, online, satisfaction have no data (0,
    // flagged; the first two have no row at all); no backlog holds (3: nothing in progress, as
    // the check says); outgoing 5/10 → 3 × 0.5 / 0.9 = 1.6667; e_exchange 0/10 → 0 (measured,
    // not flagged); appraisal 30, survey 20. Total 54.6667, rank 3.
    figures(
        &mut r.units,
        "D3",
        [
            None,
            None,
            Some(count(0, 0)),
            Some(ratio(0, 0)),
            Some(ratio(0, 0)),
            Some(ratio(0, 0)),
            Some(ratio(5, 10)),
            Some(ratio(0, 10)),
        ],
    );
    // H1, counted with its commune (the district roll-up): 6 × 0.9 / 0.98 = 5.5102; 1/2 → 1.5;
    // 3 backlog → 3 − 1.5 = 1.5; 48/50 → 2.88; 10/50 = 0.2 → 4 × 0.4 = 1.6; 34/40 = 0.85 → 5;
    // 3; 3; appraisal 35; survey 22.5. Total 81.4902, band B.
    figures(
        &mut r.districts,
        "H1",
        [
            Some(ratio(45, 50)),
            Some(ratio(1, 2)),
            Some(count(3, 10)),
            Some(ratio(48, 50)),
            Some(ratio(10, 50)),
            Some(ratio(34, 40)),
            Some(ratio(9, 10)),
            Some(ratio(9, 10)),
        ],
    );
    // H1's own figures alone (without its commune) must not be read for the district tier.
    figures(
        &mut r.units,
        "H1",
        [
            Some(ratio(0, 50)),
            Some(ratio(0, 2)),
            Some(count(9, 10)),
            Some(ratio(0, 50)),
            Some(ratio(0, 50)),
            Some(ratio(0, 40)),
            Some(ratio(0, 10)),
            Some(ratio(0, 10)),
        ],
    );
    // H2: measured full but 7 backlog → 3 − 3.5 → floor 0; appraisal 45 → capped at 42
    //     (flagged); missing from the survey → 0 (flagged). Total 27 + 42 = 69, band D.
    figures(
        &mut r.districts,
        "H2",
        [
            Some(ratio(10, 10)),
            Some(ratio(1, 1)),
            Some(count(7, 20)),
            Some(ratio(10, 10)),
            Some(ratio(10, 20)),
            Some(ratio(9, 10)),
            Some(ratio(9, 10)),
            Some(ratio(10, 10)),
        ],
    );
    // H3: measured full (30) + appraisal 41 + survey 27.99 = 98.99, band A, rank 1.
    figures(
        &mut r.districts,
        "H3",
        [
            Some(ratio(98, 100)),
            Some(ratio(3, 3)),
            Some(count(0, 5)),
            Some(ratio(100, 100)),
            Some(ratio(60, 100)),
            Some(ratio(85, 100)),
            Some(ratio(9, 10)),
            Some(ratio(9, 10)),
        ],
    );
    let mut inputs = HashMap::new();
    inputs.insert(
        "appraisal".to_string(),
        input(&[
            ("D1", Some("appraisal"), 40.0),
            ("D2", Some("appraisal"), 39.666),
            ("D3", Some("appraisal"), 30.0),
            ("H1", Some("appraisal"), 35.0),
            ("H2", Some("appraisal"), 45.0),
            ("H3", Some("appraisal"), 41.0),
        ]),
    );
    inputs.insert(
        "survey".to_string(),
        input(&[
            ("D1", None, 25.0),
            ("D2", None, 25.0),
            ("D3", None, 20.0),
            ("H1", None, 22.5),
            ("H3", None, 27.99),
        ]),
    );

    let out = score(scheme, 2022, &units, &r, &inputs);

    let ranking: Vec<(&str, &str, f64, u32, &str)> = out
        .ranking
        .iter()
        .map(|x| {
            (
                x.tier.as_str(),
                x.unit_code.as_str(),
                x.total,
                x.rank,
                x.band.as_str(),
            )
        })
        .collect();
    let expected = [
        ("quan-huyen", "H3", 98.99, 1, "A"),
        ("quan-huyen", "H1", 81.4902, 2, "B"),
        ("quan-huyen", "H2", 69.0, 3, "D"),
        ("so-ban-nganh", "D1", 94.6667, 1, "A"),
        ("so-ban-nganh", "D2", 94.666, 1, "A"),
        ("so-ban-nganh", "D3", 54.6667, 3, "D"),
    ];
    assert_eq!(ranking.len(), expected.len(), "{ranking:?}");
    for (got, want) in ranking.iter().zip(expected) {
        assert_eq!(
            (got.0, got.1, got.3, got.4),
            (want.0, want.1, want.3, want.4),
            "{got:?}"
        );
        assert!(
            (got.2 - want.2).abs() < 1e-9,
            "{} total {} != {}",
            got.1,
            got.2,
            want.2
        );
    }

    let points = |u: &str, c: &str| {
        let s = out
            .scores
            .iter()
            .find(|s| s.unit_code == u && s.criterion_id == c)
            .unwrap_or_else(|| panic!("no score {u} {c}"));
        (s.points, s.flag)
    };
    let close = |got: (f64, Option<Flag>), want: (f64, Option<Flag>), what: &str| {
        assert!(
            (got.0 - want.0).abs() < 1e-9 && got.1 == want.1,
            "{what}: {got:?} != {want:?}"
        );
    };
    close(points("D1", "e_exchange"), (2.6667, None), "D1 e_exchange");
    close(
        points("D1", "online_share"),
        (4.0, None),
        "D1 online_share capped at max",
    );
    close(
        points("D3", "dossier_on_time"),
        (0.0, Some(Flag::NoData)),
        "D3 on time",
    );
    close(
        points("D3", "satisfaction"),
        (0.0, Some(Flag::NoData)),
        "D3 satisfaction",
    );
    close(points("D3", "no_backlog"), (3.0, None), "D3 backlog");
    close(
        points("D3", "outgoing_signed"),
        (1.6667, None),
        "D3 outgoing",
    );
    close(points("D3", "e_exchange"), (0.0, None), "D3 e_exchange");
    close(
        points("H1", "dossier_on_time"),
        (5.5102, None),
        "H1 on time",
    );
    close(points("H1", "no_backlog"), (1.5, None), "H1 backlog");
    close(points("H1", "portal_sync"), (2.88, None), "H1 portal");
    close(points("H1", "online_share"), (1.6, None), "H1 online");
    close(points("H2", "no_backlog"), (0.0, None), "H2 backlog floor");
    close(
        points("H2", "appraisal"),
        (42.0, Some(Flag::Capped)),
        "H2 appraisal",
    );
    close(
        points("H2", "survey"),
        (0.0, Some(Flag::MissingInput)),
        "H2 survey",
    );
    // Each unit has one row per criterion, and the points add up to its total.
    for x in &out.ranking {
        let rows: Vec<_> = out
            .scores
            .iter()
            .filter(|s| s.unit_code == x.unit_code)
            .collect();
        assert_eq!(rows.len(), 10, "{}", x.unit_code);
        let sum: f64 = rows.iter().map(|s| s.points).sum();
        assert!(
            (sum - x.total).abs() < 1e-6,
            "{}: {sum} vs {}",
            x.unit_code,
            x.total
        );
    }
    let flagged = |u: &str| {
        out.ranking
            .iter()
            .find(|x| x.unit_code == u)
            .unwrap()
            .flagged
    };
    assert_eq!((flagged("D1"), flagged("D3"), flagged("H2")), (0, 5, 2));
    // The commune itself is not ranked.
    assert!(!out.ranking.iter().any(|x| x.unit_code == "H1X"));
}

#[test]
fn a_missing_input_file_scores_zero_and_flags_every_unit() {
    let cfg = crate::common::config_for("/nonexistent", "/nonexistent");
    let scheme = cfg.scheme_for(2022).unwrap();
    let units = Units::from_rows(vec![unit("D1", "so-ban-nganh", "")]);
    let r = YearResults::default();
    let mut inputs = HashMap::new();
    inputs.insert("appraisal".to_string(), None);
    inputs.insert("survey".to_string(), input(&[("D1", None, 30.0)]));
    let out = score(scheme, 2022, &units, &r, &inputs);
    let s = |c: &str| {
        out.scores
            .iter()
            .find(|s| s.criterion_id == c)
            .unwrap()
            .clone()
    };
    assert_eq!(
        (s("appraisal").points, s("appraisal").flag),
        (0.0, Some(Flag::MissingInput))
    );
    assert_eq!(
        (s("survey").points, s("survey").flag),
        (28.0, Some(Flag::Capped))
    );
    assert_eq!(out.ranking[0].total, 28.0);
}

#[test]
fn input_files_with_bad_rows_are_refused_with_file_and_line() {
    let e = cchc::ranking::parse_input(b"unit_code,points\nD1,12\nD2,abc\n", "survey_2022.csv")
        .unwrap_err()
        .to_string();
    assert!(e.contains("survey_2022.csv:3") && e.contains("abc"), "{e}");
    let e = cchc::ranking::parse_input(b"unit_code,points\nD1,12\nD1,13\n", "s.csv")
        .unwrap_err()
        .to_string();
    assert!(e.contains("s.csv:3") && e.contains("twice"), "{e}");
    let e = cchc::ranking::parse_input(b"unit,score\nD1,12\n", "s.csv")
        .unwrap_err()
        .to_string();
    assert!(e.contains("s.csv:1"), "{e}");
    let ok = cchc::ranking::parse_input(
        "\u{feff}unit_code,criterion_id,points\nD1,appraisal,\"40,5\"\n".as_bytes(),
        "p.csv",
    )
    .unwrap();
    assert_eq!(
        ok.points
            .get(&("D1".to_string(), Some("appraisal".to_string()))),
        Some(&40.5)
    );
}
