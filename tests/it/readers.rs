//! Reader tests on small hand-written fixtures: one per defect of the extract contract
//! (shared/domain/EXTRACTS.md), each checking where the record went and why.

use crate::common::{dossier, envelope, Harness, KEY};
use cchc::ingest::pseudonymise::{Pseudonymiser, FULL_DIGITS};
use serde_json::json;
use unicode_normalization::UnicodeNormalization;

const D: &str = "2022-03-01";

fn reasons(h: &Harness, source: &str) -> Vec<String> {
    h.quarantine(source).into_iter().map(|q| q.2).collect()
}

#[test]
fn good_dossier_is_typed_and_pseudonymised() {
    let h = Harness::new();
    let rec = dossier(
        "H1",
        json!({"TrangThaiHoSo": "10", "NgayKetThucXuLy": "20220303100000", "NgayTra": "20220303150000", "KetQuaDanhGia": "1"}),
    );
    h.file(
        "one_stop",
        D,
        "hoso_1.json",
        envelope("DongBoHoSoMC", &[rec]),
    );
    let r = h.run(&[D]);
    let s = r.sources.iter().find(|s| s.source == "dossiers").unwrap();
    assert_eq!((s.read, s.staged, s.quarantined), (1, 1, 0));
    assert_eq!(
        h.staged_strings("dossiers", "status"),
        vec![Some("10".into())]
    );
    // Local time: 2022-03-04 17:00 in Asia/Ho_Chi_Minh.
    assert_eq!(
        h.staged_strings("dossiers", "due_at"),
        vec![Some("2022-03-04T17:00:00+07:00".into())]
    );
    let name = h.staged_strings("dossiers", "applicant_name")[0]
        .clone()
        .unwrap();
    // The first 128 bits of the name's HMAC under the key, in hex.
    assert_eq!(name, Pseudonymiser::new(KEY).token("Nguyễn Văn Ánh"));
    assert_eq!(name.len(), 32);
    assert!(name.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(
        h.staged_strings("dossiers", "applicant_id")[0].as_deref(),
        Some("040090001234")
    );
    assert_eq!(
        h.staged_strings("dossiers", "extract_date"),
        vec![Some(D.into())]
    );
    assert_eq!(
        h.staged_strings("dossiers", "source_position"),
        vec![Some("1".into())]
    );
}

#[test]
fn each_bad_dossier_is_quarantined_with_its_reason_and_the_rest_loads() {
    let h = Harness::new();
    let records = vec![
        dossier("OK1", json!({})),                              // 1 good
        dossier("X", json!({"MaHoSo": "<absent>"})),            // 2 key missing
        dossier("X3", json!({"DonViXuLy": ""})),                // 3 required empty
        dossier("X4", json!({"TrangThaiHoSo": 4})),             // 4 number for string
        dossier("X5", json!({"TenTTHC": null})),                // 5 null
        dossier("X6", json!({"NgayHenTra": "20220231000000"})), // 6 impossible date
        dossier("X7", json!({"TrangThaiHoSo": "11"})),          // 7 unknown status
        dossier("X8", json!({"DonViXuLy": "000.99.99.H40"})),   // 8 unknown unit
        dossier("X9", json!({"TrangThaiHoSo": "9"})),           // 9 done without dates
        dossier(
            "X10",
            json!({"DanhSachPhieuXinLoi": [{"NgayXinLoi": "20221301000000"}]}),
        ), // 10 bad date in list
        dossier(
            "X11",
            json!({"DanhSachHoSoBoSung": [{"NgayYeuCauBoSung": 5}]}),
        ), // 11 non-string in list
        dossier("X12", json!({"DanhSachHoSoBoSung": "none"})),  // 12 list is a string
        json!(["not", "an", "object"]),                         // 13 not an object
        dossier("X14", json!({"KenhThucHien": true})),          // 14 boolean
        dossier(
            "OK15",
            json!({"TrangThaiHoSo": "9", "NgayTra": "20220302100000"}),
        ), // 15 good: NgayTra suffices
        dossier(
            "OK16",
            json!({"DanhSachPhieuXinLoi": [{"NgayXinLoi": "20220303080000", "NgayHenTraMoi": "", "LyDo": "Chờ xác minh"}], "Extra": 1}),
        ), // 16 good
    ];
    h.file(
        "one_stop",
        D,
        "hoso_1.json",
        envelope("DongBoHoSoMC", &records),
    );
    let r = h.run(&[D]);
    let s = r.sources.iter().find(|s| s.source == "dossiers").unwrap();
    assert_eq!((s.read, s.staged, s.quarantined), (16, 3, 13));
    let q = h.quarantine("dossiers");
    let positions: Vec<i64> = q.iter().map(|x| x.1.unwrap()).collect();
    assert_eq!(positions, vec![2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    let rs = reasons(&h, "dossiers");
    let expect = [
        "required field `MaHoSo` is missing",
        "required field `DonViXuLy` is empty",
        "field `TrangThaiHoSo` is a number, expected a string",
        "field `TenTTHC` is null, expected a string",
        "field `NgayHenTra` = `20220231000000` is not a date (no such day or time)",
        "field `TrangThaiHoSo` = `11` is not one of 1, 2, 3, 4, 5, 6, 7, 8, 9, 10",
        "field `DonViXuLy` = `000.99.99.H40` is not a unit code of units.csv",
        "status 9 or 10 with neither NgayKetThucXuLy nor NgayTra",
        "field `DanhSachPhieuXinLoi` item 1: field `NgayXinLoi` = `20221301000000` is not a date (no such day or time)",
        "field `DanhSachHoSoBoSung` item 1: `NgayYeuCauBoSung` is a number, expected a string",
        "field `DanhSachHoSoBoSung` is a string, expected an array of objects",
        "record is not a JSON object",
        "field `KenhThucHien` is a boolean, expected a string",
    ];
    // Quarantine is sorted by (file, position); positions 2..14 are in input order.
    assert_eq!(rs, expect);
    assert_eq!(
        h.staged_strings("dossiers", "dossier_id"),
        vec![Some("OK1".into()), Some("OK15".into()), Some("OK16".into())]
    );
}

#[test]
fn quarantine_keeps_the_raw_record() {
    let h = Harness::new();
    let bad = dossier("RAW1", json!({"TrangThaiHoSo": "0"}));
    h.file(
        "one_stop",
        D,
        "hoso_1.json",
        envelope("DongBoHoSoMC", std::slice::from_ref(&bad)),
    );
    h.run(&[D]);
    let b = h.read("quarantine", "dossiers");
    use arrow::array::AsArray;
    let raw = b[0]
        .column_by_name("raw")
        .unwrap()
        .as_string::<i32>()
        .value(0)
        .to_string();
    let parsed: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(parsed, bad);
}

#[test]
fn unreadable_files_are_quarantined_whole_and_the_others_still_load() {
    let h = Harness::new();
    let good = envelope(
        "DongBoHoSoMC",
        &[dossier("G1", json!({})), dossier("G2", json!({}))],
    );
    h.file("one_stop", D, "hoso_1.json", &good);
    let mut cut = good.len() / 2;
    while !good.is_char_boundary(cut) {
        cut -= 1;
    }
    h.file("one_stop", D, "hoso_2.json", &good[..cut]); // truncated
    let mid_char = good.find('ễ').unwrap() + 1;
    h.file("one_stop", D, "hoso_8.json", &good.as_bytes()[..mid_char]); // cut inside a character
    h.file("one_stop", D, "hoso_3.json", ""); // 0 bytes
    h.file("one_stop", D, "hoso_4.json", " \n\t "); // white space only
    h.file("one_stop", D, "hoso_5.json", "<html>502</html>"); // not JSON
    h.file(
        "one_stop",
        D,
        "hoso_6.json",
        r#"{"service":"DongBoHoSoMC"}"#,
    ); // no data array
    h.file("one_stop", D, "hoso_7.json", envelope("LayThuTuc", &[])); // wrong service
                                                                      // Records are typed as they are read: what was read before the file turned out unreadable
                                                                      // (a good record, a bad one) is dropped with it.
    let wrong_after_data = format!(
        r#"{{"data":[{},42],"service":"LayThuTuc"}}"#,
        dossier("G3", json!({}))
    );
    h.file("one_stop", D, "hoso_9.json", &wrong_after_data);
    let two_arrays = format!(
        r#"{{"service":"DongBoHoSoMC","data":[{}],"data":[]}}"#,
        dossier("G4", json!({}))
    );
    h.file("one_stop", D, "hoso_a.json", &two_arrays);
    h.file(
        "one_stop",
        D,
        "other.json",
        "ignored: does not match hoso_*.json",
    );
    let r = h.run(&[D]);
    let s = r.sources.iter().find(|s| s.source == "dossiers").unwrap();
    assert_eq!(
        (s.read, s.staged, s.quarantined, s.unreadable_files),
        (2, 2, 0, 9)
    );
    assert_eq!(s.files.len(), 10);
    let q = h.quarantine("dossiers");
    assert_eq!(q.len(), 9);
    assert!(
        q.iter().all(|x| x.1.is_none()),
        "whole-file entries have no position"
    );
    let by_file: Vec<(&str, &str)> = q.iter().map(|x| (x.0.as_str(), x.2.as_str())).collect();
    assert!(
        by_file[0].0 == "hoso_2.json" && by_file[0].1.starts_with("invalid JSON: EOF"),
        "{by_file:?}"
    );
    assert_eq!(by_file[1], ("hoso_3.json", "empty file (0 bytes)"));
    assert_eq!(by_file[2], ("hoso_4.json", "empty file (only white space)"));
    assert!(by_file[3].1.starts_with("invalid JSON"));
    assert_eq!(
        by_file[4],
        ("hoso_6.json", "the envelope has no `data` array")
    );
    // Another service, named before `data` (hoso_7) or after it, once records were read (hoso_9).
    for (i, file) in [(5, "hoso_7.json"), (7, "hoso_9.json")] {
        assert_eq!(
            by_file[i],
            (
                file,
                "envelope service is `LayThuTuc`, expected `DongBoHoSoMC`"
            )
        );
    }
    assert_eq!(by_file[6].0, "hoso_8.json");
    assert!(
        by_file[6]
            .1
            .starts_with("truncated: the file ends inside a UTF-8 character"),
        "{}",
        by_file[6].1
    );
    assert_eq!(by_file[8].0, "hoso_a.json");
    assert!(
        by_file[8]
            .1
            .starts_with("invalid JSON: the envelope has two `data` arrays"),
        "{}",
        by_file[8].1
    );
    assert!(s.files[8..].iter().all(|f| (f.read, f.staged) == (0, 0)));
    let mut ids = h.staged_strings("dossiers", "dossier_id");
    ids.sort();
    assert_eq!(ids, [Some("G1".to_string()), Some("G2".to_string())]);
    let f = &s.files[0];
    let bytes = std::fs::read(h.landing().join("one_stop").join(D).join(&f.name)).unwrap();
    assert_eq!(f.blake3, blake3::hash(&bytes).to_hex().as_str());
    assert_eq!(f.sha256, None);
    assert!(f.unreadable.is_none());
}

#[test]
fn every_version_of_a_day_is_kept_with_file_and_position() {
    let h = Harness::new();
    let v1 = dossier("H1", json!({"TrangThaiHoSo": "2"}));
    let v2 = dossier("H1", json!({"TrangThaiHoSo": "4"}));
    h.file(
        "one_stop",
        D,
        "hoso_1.json",
        envelope("DongBoHoSoMC", &[v1.clone(), v2.clone()]),
    );
    // A re-delivery of the day under a later name.
    h.file(
        "one_stop",
        D,
        "hoso_2.json",
        envelope("DongBoHoSoMC", &[v2]),
    );
    h.run(&[D]);
    assert_eq!(
        h.staged_strings("dossiers", "status"),
        vec![Some("2".into()), Some("4".into()), Some("4".into())]
    );
    assert_eq!(
        h.staged_strings("dossiers", "source_file"),
        vec![
            Some("hoso_1.json".into()),
            Some("hoso_1.json".into()),
            Some("hoso_2.json".into())
        ]
    );
}

/// A warehouse whose key record was written before tokens were shortened (it has no
/// `token_digits`) keeps whole 64-digit tokens, so an applicant keeps one token in it; a new
/// warehouse records 32.
#[test]
fn a_warehouse_recorded_with_whole_digests_keeps_them() {
    let name = |h: &Harness| {
        h.file(
            "one_stop",
            D,
            "hoso_1.json",
            envelope("DongBoHoSoMC", &[dossier("H1", json!({}))]),
        );
        h.run(&[D]);
        h.staged_strings("dossiers", "applicant_name")[0]
            .clone()
            .unwrap()
    };
    let key_record = |h: &Harness| {
        serde_json::from_slice::<serde_json::Value>(
            &std::fs::read(h.warehouse().join("_pii_key.json")).unwrap(),
        )
        .unwrap()
    };
    let pii = Pseudonymiser::new(KEY);

    let old = Harness::new();
    std::fs::create_dir_all(old.warehouse()).unwrap();
    let legacy = json!({
        "fingerprint": pii.fingerprint(),
        "recorded_at": "2026-11-01T00:00:00+00:00",
        "run_id": "20261101T000000Z-0000",
    });
    std::fs::write(
        old.warehouse().join("_pii_key.json"),
        serde_json::to_vec_pretty(&legacy).unwrap(),
    )
    .unwrap();
    let whole = pii.clone().with_digits(FULL_DIGITS).token("Nguyễn Văn Ánh");
    assert_eq!(name(&old), whole);
    assert_eq!(whole.len(), 64);
    assert_eq!(key_record(&old), legacy, "the old record is left as it was");

    let new = Harness::new();
    assert_eq!(name(&new), whole[..32]);
    assert_eq!(key_record(&new)["token_digits"], 32);

    // A warehouse with ingested days but no record (staged before key records existed) gets a
    // record of whole digests.
    std::fs::remove_file(new.warehouse().join("_pii_key.json")).unwrap();
    new.file(
        "one_stop",
        "2022-03-02",
        "hoso_1.json",
        envelope("DongBoHoSoMC", &[dossier("H1", json!({}))]),
    );
    new.run(&["2022-03-02"]);
    assert_eq!(key_record(&new)["token_digits"], 64);
    let names = new.staged_strings("dossiers", "applicant_name");
    assert!(names.contains(&Some(whole.clone())), "{names:?}");
}

#[test]
fn composed_and_decomposed_names_get_the_same_token() {
    let h = Harness::new();
    let nfd: String = "Nguyễn Văn Ánh".nfd().collect();
    let a = dossier("H1", json!({}));
    let b = dossier(
        "H2",
        json!({"ChuHoSo": nfd, "TenTTHC": "Đăng ký khai sinh".nfd().collect::<String>()}),
    );
    h.file(
        "one_stop",
        D,
        "hoso_1.json",
        envelope("DongBoHoSoMC", &[a, b]),
    );
    h.run(&[D]);
    let names = h.staged_strings("dossiers", "applicant_name");
    assert_eq!(names[0], names[1]);
    let procs = h.staged_strings("dossiers", "procedure_name");
    assert_eq!(
        procs,
        vec![
            Some("Đăng ký khai sinh".into()),
            Some("Đăng ký khai sinh".into())
        ]
    );
}

const HEADER: &str = "Mã văn bản,Số ký hiệu,Loại văn bản,Là VBQPPL,Hạn ban hành theo kế hoạch,Chiều,Đơn vị,Trích yếu,Ngày ban hành,Ngày đến,Hạn xử lý,Ngày hoàn thành,Độ khẩn,Độ mật,Người ký,Gửi liên thông,Trạng thái";

fn doc_row(id: &str, unit: &str, issued: &str, state: &str) -> String {
    format!("{id},1/QĐ-UBND,Quyết định,Có,15/03/2022,Đi,{unit},\"Về việc \"\"A\"\", B\nC\",{issued},,,,Thường,Thường,Lê Văn A,Có,{state}")
}

#[test]
fn csv_dialect_bom_quotes_multiline_and_positions() {
    let h = Harness::new();
    let body = format!(
        "\u{feff}{HEADER}\n{}\n{}\n{}\n",
        doc_row("VB1", "000.00.15.H40", "01/03/2022 09:30", "Đã ban hành"),
        doc_row("VB2", "000.00.15.H40", "01/03/2022", "Đã ban hành"),
        doc_row("VB3", "000.00.15.H40", "", "Đang xử lý"),
    );
    h.file("ioffice", D, "vanban_1.csv", body);
    let r = h.run(&[D]);
    let s = r.sources.iter().find(|s| s.source == "documents").unwrap();
    assert_eq!((s.read, s.staged, s.quarantined), (3, 3, 0));
    assert_eq!(
        h.staged_strings("documents", "source_position"),
        vec![Some("1".into()), Some("2".into()), Some("3".into())]
    );
    assert_eq!(
        h.staged_strings("documents", "summary")[0].as_deref(),
        Some("Về việc \"A\", B\nC")
    );
    assert_eq!(
        h.staged_strings("documents", "issued_at"),
        vec![
            Some("2022-03-01T09:30:00+07:00".into()),
            Some("2022-03-01T00:00:00+07:00".into()),
            None
        ]
    );
    assert_eq!(
        h.staged_strings("documents", "plan_deadline")[0].as_deref(),
        Some("2022-03-15")
    );
}

#[test]
fn csv_tolerates_no_bom_crlf_reordered_and_extra_columns() {
    let h = Harness::new();
    // Columns reversed, an extra column, CRLF, no BOM, decomposed enumerations.
    let cols: Vec<&str> = HEADER.split(',').rev().collect();
    let header = format!("Ghi chú,{}", cols.join(","));
    let mut vals: Vec<String> = vec![
        "VB9",
        "9/CV",
        "Công văn",
        "Không",
        "",
        "Đi",
        "000.00.21.H40",
        "x",
        "02/03/2022 10:00",
        "",
        "",
        "",
        "Khẩn",
        "Thường",
        "B",
        "Có",
        "Đã ban hành",
    ]
    .into_iter()
    .map(|s| s.nfd().collect())
    .collect();
    vals.reverse();
    let row = format!("note,{}", vals.join(","));
    h.file(
        "ioffice",
        D,
        "vanban_1.csv",
        format!("{header}\r\n{row}\r\n"),
    );
    let r = h.run(&[D]);
    let s = r.sources.iter().find(|s| s.source == "documents").unwrap();
    assert_eq!(
        (s.read, s.staged, s.quarantined),
        (1, 1, 0),
        "{:?}",
        h.quarantine("documents")
    );
    assert_eq!(
        h.staged_strings("documents", "direction"),
        vec![Some("Đi".into())]
    );
    assert_eq!(
        h.staged_strings("documents", "state"),
        vec![Some("Đã ban hành".into())]
    );
}

#[test]
fn bad_documents_are_quarantined_and_header_problems_make_the_file_unreadable() {
    let h = Harness::new();
    let body = format!(
        "{HEADER}\n{}\n{}\n{}\n{}\n{}\n{}\n",
        doc_row("VB1", "000.00.15.H40", "01/03/2022", "Đã ban hành"),
        doc_row("VB2", "000.00.15.H40", "01/03/2022", "Đã ban hành") + ",extra",
        doc_row("", "000.00.15.H40", "01/03/2022", "Đã ban hành"),
        doc_row("VB4", "000.77.77.H40", "01/03/2022", "Đã ban hành"),
        doc_row("VB5", "000.00.15.H40", "2022-03-01", "Đã ban hành"),
        doc_row("VB6", "000.00.15.H40", "01/03/2022", "Đã hủy"),
    );
    h.file("ioffice", D, "vanban_1.csv", body);
    h.file(
        "ioffice",
        D,
        "vanban_2.csv",
        "\u{feff}Mã văn bản,Trích yếu\nVB1,x\n",
    );
    h.file("ioffice", D, "vanban_3.csv", format!("\u{feff}{HEADER}\n")); // header only: 0 records, fine
    let r = h.run(&[D]);
    let s = r.sources.iter().find(|s| s.source == "documents").unwrap();
    assert_eq!(
        (s.read, s.staged, s.quarantined, s.unreadable_files),
        (6, 1, 5, 1)
    );
    let q = h.quarantine("documents");
    let rs: Vec<&str> = q.iter().map(|x| x.2.as_str()).collect();
    assert_eq!(rs[0], "record has 18 fields, the header has 17");
    assert_eq!(rs[1], "required field `Mã văn bản` is empty");
    assert_eq!(
        rs[2],
        "field `Đơn vị` = `000.77.77.H40` is not a unit code of units.csv"
    );
    assert_eq!(
        rs[3],
        "field `Ngày ban hành` = `2022-03-01` is not dd/MM/yyyy or dd/MM/yyyy HH:mm"
    );
    assert_eq!(
        rs[4],
        "field `Trạng thái` = `Đã hủy` is not one of Chưa xử lý, Đang xử lý, Đã xử lý, Đã ban hành"
    );
    assert_eq!(q[5].0, "vanban_2.csv");
    assert_eq!(q[5].1, None);
    assert!(
        rs[5].starts_with("missing contract headers `Số ký hiệu`"),
        "{}",
        rs[5]
    );
    assert_eq!(
        q.iter().map(|x| x.1).take(5).collect::<Vec<_>>(),
        vec![Some(2), Some(3), Some(4), Some(5), Some(6)]
    );
}

fn event(id: &str) -> serde_json::Value {
    json!({"event_id": id, "doc_id": "VB1", "unit_code": "000.00.15.H40", "signer": "CN=Lê Văn A", "sig_type": "PERSONAL",
           "cert_serial": "0a1b", "issuer": "CN=CA G2", "cert_not_before": "2021-01-01T00:00:00+07:00",
           "cert_not_after": "2023-01-01T00:00:00+07:00", "cert_revoked_at": null, "signing_time": "2022-03-01T09:00:00+07:00",
           "tsa_time": "2022-03-01T02:00:05Z", "doc_sha256": "ab"})
}

fn with(mut v: serde_json::Value, k: &str, x: serde_json::Value) -> serde_json::Value {
    if x.as_str() == Some("<absent>") {
        v.as_object_mut().unwrap().remove(k);
    } else {
        v[k] = x;
    }
    v
}

#[test]
fn signing_events_ndjson_rules() {
    let h = Harness::new();
    let lines = [
        event("E1").to_string(),                                      // 1 good
        String::new(),                                                // blank: skipped
        with(event("E2"), "tsa_time", json!("<absent>")).to_string(), // 2 good: absent = null
        with(event("E3"), "doc_id", json!("<absent>")).to_string(),   // 3 good: doc_id optional
        with(event("E4"), "event_id", json!("")).to_string(),         // 4 bad
        with(event("E5"), "signing_time", json!("2022-03-01T09:00:00")).to_string(), // 5 bad: no offset
        with(event("E6"), "cert_revoked_at", json!("yesterday")).to_string(),        // 6 bad
        with(event("E7"), "unit_code", json!("<absent>")).to_string(),               // 7 bad
        with(event("E8"), "sig_type", json!(null)).to_string(), // 8 bad: null only for two fields
        with(event("E9"), "cert_not_after", json!("<absent>")).to_string(), // 9 bad
        "{\"event_id\":\"E10\",\"unit_co".to_string(),          // 10 bad: cut off
    ];
    h.file("signatures", D, "kyso_1.ndjson", lines.join("\r\n"));
    let r = h.run(&[D]);
    let s = r
        .sources
        .iter()
        .find(|s| s.source == "signature_events")
        .unwrap();
    assert_eq!((s.read, s.staged, s.quarantined), (10, 3, 7));
    let q = h.quarantine("signature_events");
    assert_eq!(
        q.iter().map(|x| x.1.unwrap()).collect::<Vec<_>>(),
        vec![4, 5, 6, 7, 8, 9, 10]
    );
    let rs: Vec<&str> = q.iter().map(|x| x.2.as_str()).collect();
    assert_eq!(rs[0], "required field `event_id` is empty");
    assert_eq!(
        rs[1],
        "field `signing_time` = `2022-03-01T09:00:00` is not RFC 3339 with an offset"
    );
    assert_eq!(
        rs[2],
        "field `cert_revoked_at` = `yesterday` is not RFC 3339 with an offset"
    );
    assert_eq!(rs[3], "required field `unit_code` is missing");
    assert_eq!(rs[4], "field `sig_type` is null, expected a string");
    assert_eq!(rs[5], "required field `cert_not_after` is missing");
    assert!(rs[6].starts_with("invalid JSON"), "{}", rs[6]);
    assert_eq!(
        h.staged_strings("signature_events", "tsa_time"),
        vec![
            Some("2022-03-01T09:00:05+07:00".into()),
            None,
            Some("2022-03-01T09:00:05+07:00".into())
        ]
    );
}

#[test]
fn catalog_entries() {
    let h = Harness::new();
    let e = |code: serde_json::Value, days: serde_json::Value, reviewed_at: &str| {
        json!({"MaTTHC": code, "TenTTHC": "Thủ tục", "CapThucHien": "tinh", "ThoiHanGiaiQuyet": days,
               "CoTheRutNgan": "1", "DaRaSoat": "1", "NgayRaSoat": reviewed_at})
    };
    let recs = [
        e(json!("1.1"), json!(10), "20220105000000"), // good: integer
        e(json!("1.2"), json!("15"), ""),             // good: digits
        e(json!("1.3"), json!("mười"), ""),           // bad
        e(json!("1.4"), json!(true), ""),             // bad
        e(json!("1.5"), json!(5), "05/01/2022"),      // bad date
        with(e(json!("x"), json!(5), ""), "MaTTHC", json!("<absent>")), // bad: no key
    ];
    h.file("one_stop", D, "thutuc_1.json", envelope("LayThuTuc", &recs));
    let r = h.run(&[D]);
    let s = r.sources.iter().find(|s| s.source == "procedures").unwrap();
    assert_eq!((s.read, s.staged, s.quarantined), (6, 2, 4));
    assert_eq!(
        h.staged_strings("procedures", "legal_days"),
        vec![Some("10".into()), Some("15".into())]
    );
    let rs = reasons(&h, "procedures");
    assert_eq!(rs[0], "field `ThoiHanGiaiQuyet` = `mười` is not an integer");
    assert_eq!(
        rs[1],
        "field `ThoiHanGiaiQuyet` is a boolean, expected an integer or a string of digits"
    );
    assert_eq!(
        rs[2],
        "field `NgayRaSoat` = `05/01/2022` is not yyyyMMddHHmmss"
    );
    assert_eq!(rs[3], "required field `MaTTHC` is missing");
}

#[test]
fn a_missing_day_folder_is_reported_not_failed() {
    let h = Harness::new();
    let r = h.run(&[D]);
    assert_eq!(r.sources.len(), 4);
    assert!(r.sources.iter().all(|s| !s.present && s.read == 0));
}
