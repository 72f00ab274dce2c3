//! Every figure of `target_results` on a small hand-made landing, against results written out
//! by hand with their reasoning (TARGETS.md). Units (tests/common UNITS): D = 000.00.15.H40 (a
//! department), H = 000.00.21.H40 (a district), X = 000.01.21.H40 (a commune of H).
//!
//! Ingested days: 2022-01-10, 01-20, 01-31, 02-05. So January is final (as of 01-31); February and
//! the year are provisional, as of 02-05.

use std::collections::BTreeMap;

use crate::common::Harness;
use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use serde_json::{json, Value};

const D: &str = "000.00.15.H40";
const H: &str = "000.00.21.H40";
const X: &str = "000.01.21.H40";

/// A dossier with the required fields and `fields` (yyyyMMddHHmmss dates).
pub(crate) fn hs(id: &str, unit: &str, status: &str, fields: Value) -> Value {
    let mut d = json!({"MaHoSo": id, "MaTTHC": "1.000001", "TenTTHC": "Thủ tục mẫu",
        "DonViXuLy": unit, "TrangThaiHoSo": status, "TrangThaiDongBoDVC": "1",
        "MucDo": "2", "KenhThucHien": "1"});
    for (k, v) in fields.as_object().unwrap() {
        d[k] = v.clone();
    }
    d
}

pub(crate) fn batch(records: Vec<Value>) -> String {
    json!({"service": "DongBoHoSoMC", "isUpdating": false, "data": records}).to_string()
}

fn catalog(entries: Value) -> String {
    json!({"service": "LayThuTuc", "data": entries}).to_string()
}

pub(crate) const DOC_HEADER: &str = "Mã văn bản,Số ký hiệu,Loại văn bản,Là VBQPPL,Hạn ban hành theo kế hoạch,Chiều,Đơn vị,Trích yếu,Ngày ban hành,Ngày đến,Hạn xử lý,Ngày hoàn thành,Độ khẩn,Độ mật,Người ký,Gửi liên thông,Trạng thái";

/// A document row: id, VBQPPL, deadline, direction, unit, issued, due, completed, sent, state.
#[allow(clippy::too_many_arguments)]
pub(crate) fn doc(
    id: &str,
    vbqppl: &str,
    deadline: &str,
    dir: &str,
    unit: &str,
    issued: &str,
    due: &str,
    done: &str,
    sent: &str,
    state: &str,
) -> String {
    format!("{id},1/QĐ,Quyết định,{vbqppl},{deadline},{dir},{unit},\"Trích yếu, có dấu phẩy\",{issued},,{due},{done},Thường,Thường,,{sent},{state}")
}

/// A signing event; `doc: None` leaves `doc_id` out (optional; a JSON null would be bad).
#[allow(clippy::too_many_arguments)]
pub(crate) fn sig(
    id: &str,
    doc: Option<&str>,
    unit: &str,
    nb: &str,
    na: &str,
    revoked: Option<&str>,
    signing: &str,
    tsa: Option<&str>,
) -> String {
    let mut e = json!({"event_id": id, "doc_id": doc, "unit_code": unit, "signer": "CN=Người ký",
        "sig_type": "PERSONAL", "cert_serial": "01", "issuer": "CN=Ban Cơ yếu",
        "cert_not_before": nb, "cert_not_after": na, "cert_revoked_at": revoked,
        "signing_time": signing, "tsa_time": tsa, "doc_sha256": "00"});
    if doc.is_none() {
        e.as_object_mut().unwrap().remove("doc_id");
    }
    e.to_string()
}

fn landing(h: &Harness) {
    // ---- one-stop dossiers ----
    h.file(
        "one_stop",
        "2022-01-10",
        "hoso_001.json",
        batch(vec![
            // D01: done early (finished 01-07, due 01-10), level 4 online, very satisfied.
            hs(
                "D01",
                D,
                "10",
                json!({"NgayTiepNhan": "20220103080000", "NgayHenTra": "20220110170000",
            "NgayKetThucXuLy": "20220107100000", "NgayTra": "20220108090000", "MucDo": "4",
            "KenhThucHien": "2", "KetQuaDanhGia": "1"}),
            ),
            // D06: in progress, due 01-25: overdue in January, no apology; backlog at 01-31.
            hs(
                "D06",
                D,
                "4",
                json!({"NgayTiepNhan": "20220110080000", "NgayHenTra": "20220125170000"}),
            ),
            // D09: withdrawn (7): received, not synced; never overdue although its due date passed.
            hs(
                "D09",
                D,
                "7",
                json!({"NgayTiepNhan": "20220105080000", "NgayHenTra": "20220115170000",
            "TrangThaiDongBoDVC": "0"}),
            ),
            // D10: refused at the desk (3); D11: registered online, not accepted (1): not received.
            hs("D10", D, "3", json!({"NgayHenTra": "20220112170000"})),
            hs("D11", D, "1", json!({})),
            // D12, first version: in progress, due 01-28 (replaced on 01-31).
            hs(
                "D12",
                D,
                "4",
                json!({"NgayTiepNhan": "20220110090000", "NgayHenTra": "20220128170000"}),
            ),
            // X01: done on time (01-10 <= 01-12), level 4 online, very satisfied.
            hs(
                "X01",
                X,
                "10",
                json!({"NgayTiepNhan": "20220104080000", "NgayHenTra": "20220112170000",
            "NgayKetThucXuLy": "20220110150000", "MucDo": "4", "KenhThucHien": "2",
            "KetQuaDanhGia": "1"}),
            ),
            // An unknown unit: quarantined, counted nowhere.
            hs(
                "Q01",
                "999.99.99.H40",
                "10",
                json!({"NgayKetThucXuLy": "20220105080000"}),
            ),
        ]),
    );
    h.file(
        "one_stop",
        "2022-01-20",
        "hoso_001.json",
        batch(vec![
            // D02: done on its due day (23:59 on 01-12), level 3 at the desk, satisfied, NOT synced.
            hs(
                "D02",
                D,
                "10",
                json!({"NgayTiepNhan": "20220104080000", "NgayHenTra": "20220112170000",
            "NgayKetThucXuLy": "20220112235900", "MucDo": "3", "KenhThucHien": "1",
            "KetQuaDanhGia": "2", "TrangThaiDongBoDVC": "0"}),
            ),
            // D03: finished (9) one day late (01-14 > 01-13), apology dated the due day: timely.
            hs(
                "D03",
                D,
                "9",
                json!({"NgayTiepNhan": "20220105080000", "NgayHenTra": "20220113170000",
            "NgayKetThucXuLy": "20220114100000", "MucDo": "3", "KenhThucHien": "2",
            "KetQuaDanhGia": "3", "DanhSachPhieuXinLoi": [{"NgayXinLoi": "20220113160000",
            "NgayHenTraMoi": "20220114170000", "LyDo": "Chờ xác minh"}]}),
            ),
            // D04: no NgayKetThucXuLy, returned (NgayTra) 01-15, due 01-14: late; apology after the
            // due day (01-15): not timely. Rated "" (not rated).
            hs(
                "D04",
                D,
                "10",
                json!({"NgayTiepNhan": "20220106080000", "NgayHenTra": "20220114170000",
            "NgayTra": "20220115090000", "KetQuaDanhGia": "", "DanhSachPhieuXinLoi":
            [{"NgayXinLoi": "20220115080000", "NgayHenTraMoi": "20220115170000", "LyDo": "Trễ"}]}),
            ),
            // D05: done without a due date: on time, never overdue.
            hs(
                "D05",
                D,
                "10",
                json!({"NgayTiepNhan": "20220107080000", "NgayHenTra": "",
            "NgayKetThucXuLy": "20220118080000"}),
            ),
            // D08: paused for supplementation (5); the round moved the due date 01-18 -> 01-20;
            // paused dossiers are neither overdue nor in progress.
            hs(
                "D08",
                D,
                "5",
                json!({"NgayTiepNhan": "20220108080000", "NgayHenTra": "20220120170000",
            "DanhSachHoSoBoSung": [{"NgayYeuCauBoSung": "20220112080000", "NgayCongDanBoSung": "",
            "NgayHenTraTruoc": "20220118170000", "NgayHenTraMoi": "20220120170000"}]}),
            ),
            // D13, first version: finished 01-19, due 01-18: late (corrected on 02-05).
            hs(
                "D13",
                D,
                "10",
                json!({"NgayTiepNhan": "20220111080000", "NgayHenTra": "20220118170000",
            "NgayKetThucXuLy": "20220119080000", "KetQuaDanhGia": "1"}),
            ),
            // H01: done on its due day, satisfied.
            hs(
                "H01",
                H,
                "10",
                json!({"NgayTiepNhan": "20220112080000", "NgayHenTra": "20220120170000",
            "NgayKetThucXuLy": "20220120100000", "KetQuaDanhGia": "2"}),
            ),
        ]),
    );
    h.file(
        "one_stop",
        "2022-01-31",
        "hoso_001.json",
        batch(vec![
            // D07: accepted (2), due 02-10: in progress at 01-31, not backlog.
            hs(
                "D07",
                D,
                "2",
                json!({"NgayTiepNhan": "20220125080000", "NgayHenTra": "20220210170000"}),
            ),
            // D12, second version: done 01-27, due 01-28: early.
            hs(
                "D12",
                D,
                "10",
                json!({"NgayTiepNhan": "20220110090000", "NgayHenTra": "20220128170000",
            "NgayKetThucXuLy": "20220127080000", "KetQuaDanhGia": "2"}),
            ),
            // H02: in progress, due 01-31 (the last day): overdue and backlog at 01-31; apology on
            // the due day: timely.
            hs(
                "H02",
                H,
                "4",
                json!({"NgayTiepNhan": "20220114080000", "NgayHenTra": "20220131170000",
            "DanhSachPhieuXinLoi": [{"NgayXinLoi": "20220131080000", "NgayHenTraMoi":
            "20220207170000", "LyDo": "Chờ ý kiến"}]}),
            ),
        ]),
    );
    h.file(
        "one_stop",
        "2022-02-05",
        "hoso_001.json",
        batch(vec![
            // D13 corrected: finished 01-18, on its due day: on time from 02-05 on.
            hs(
                "D13",
                D,
                "10",
                json!({"NgayTiepNhan": "20220111080000", "NgayHenTra": "20220118170000",
            "NgayKetThucXuLy": "20220118160000", "KetQuaDanhGia": "1"}),
            ),
            // D07 done 02-04, due 02-10: early, in February.
            hs(
                "D07",
                D,
                "10",
                json!({"NgayTiepNhan": "20220125080000", "NgayHenTra": "20220210170000",
            "NgayKetThucXuLy": "20220204080000"}),
            ),
        ]),
    );
    // ---- procedure catalog ----
    h.file("one_stop", "2022-01-10", "thutuc_001.json", catalog(json!([
        {"MaTTHC": "P1", "TenTTHC": "A", "CapThucHien": "tinh", "ThoiHanGiaiQuyet": 10, "CoTheRutNgan": "1", "DaRaSoat": "0", "NgayRaSoat": ""},
        {"MaTTHC": "P2", "TenTTHC": "B", "CapThucHien": "tinh", "ThoiHanGiaiQuyet": "5", "CoTheRutNgan": "1", "DaRaSoat": "1", "NgayRaSoat": "20220105000000"},
        {"MaTTHC": "P3", "TenTTHC": "C", "CapThucHien": "xa", "ThoiHanGiaiQuyet": 3, "CoTheRutNgan": "0", "DaRaSoat": "0", "NgayRaSoat": ""}])));
    // The newest snapshot as of 01-31 replaces the first: P1 now reviewed, P3 gone, P4 new.
    h.file("one_stop", "2022-01-31", "thutuc_001.json", catalog(json!([
        {"MaTTHC": "P1", "TenTTHC": "A", "CapThucHien": "tinh", "ThoiHanGiaiQuyet": 10, "CoTheRutNgan": "1", "DaRaSoat": "1", "NgayRaSoat": "20220120000000"},
        {"MaTTHC": "P2", "TenTTHC": "B", "CapThucHien": "tinh", "ThoiHanGiaiQuyet": 5, "CoTheRutNgan": "1", "DaRaSoat": "1", "NgayRaSoat": "20220105000000"},
        {"MaTTHC": "P4", "TenTTHC": "D", "CapThucHien": "huyen", "ThoiHanGiaiQuyet": 7, "CoTheRutNgan": "1", "DaRaSoat": "0", "NgayRaSoat": ""}])));
    // 02-05: a readable snapshot whose only entry is bad (no MaTTHC): it still replaces the
    // older ones, so as of 02-05 the catalog is empty.
    h.file(
        "one_stop",
        "2022-02-05",
        "thutuc_001.json",
        catalog(json!([
        {"TenTTHC": "no code", "CoTheRutNgan": "1", "DaRaSoat": "0"}])),
    );
    // ---- iOffice documents ----
    let docs = |rows: &[String]| format!("\u{feff}{DOC_HEADER}\n{}\n", rows.join("\n"));
    h.file(
        "ioffice",
        "2022-01-20",
        "vanban_001.csv",
        docs(&[
            // V01: legal normative, deadline 15/01, issued 14/01: on time; sent electronically.
            doc(
                "V01",
                "Có",
                "15/01/2022",
                "Đi",
                D,
                "14/01/2022",
                "",
                "",
                "Có",
                "Đã ban hành",
            ),
            // V02, first version: not issued yet (issued on 21/01, see 01-31).
            doc(
                "V02",
                "Có",
                "20/01/2022",
                "Đi",
                D,
                "",
                "",
                "",
                "Không",
                "Đang xử lý",
            ),
            // V03: deadline 25/01, never issued: counts against the unit.
            doc(
                "V03",
                "Có",
                "25/01/2022",
                "Đi",
                D,
                "",
                "",
                "",
                "",
                "Đang xử lý",
            ),
            // V04: deadline in February, after every as-of day: not due in any period.
            doc(
                "V04",
                "Có",
                "10/02/2022",
                "Đi",
                D,
                "",
                "",
                "",
                "",
                "Chưa xử lý",
            ),
            // V05: incoming, due 18/01, completed 18/01 17:00: on time.
            doc(
                "V05",
                "Không",
                "",
                "Đến",
                H,
                "10/01/2022",
                "18/01/2022",
                "18/01/2022 17:00",
                "",
                "Đã xử lý",
            ),
            // V06: incoming, due 19/01, completed 20/01: late. V07: due 21/01, not completed.
            doc(
                "V06",
                "Không",
                "",
                "Đến",
                H,
                "10/01/2022",
                "19/01/2022",
                "20/01/2022 08:00",
                "",
                "Đã xử lý",
            ),
            doc(
                "V07",
                "Không",
                "",
                "Đến",
                H,
                "11/01/2022",
                "21/01/2022",
                "",
                "",
                "Đang xử lý",
            ),
            // V08: outgoing, not normative, issued 12/01, sent electronically; its only signature
            // is invalid (revoked at the signing instant).
            doc(
                "V08",
                "Không",
                "",
                "Đi",
                D,
                "12/01/2022 15:30",
                "",
                "",
                "Có",
                "Đã ban hành",
            ),
        ]),
    );
    h.file(
        "ioffice",
        "2022-01-31",
        "vanban_001.csv",
        docs(&[
            // V02 issued 21/01, after its deadline 20/01: late; not sent electronically.
            doc(
                "V02",
                "Có",
                "20/01/2022",
                "Đi",
                D,
                "21/01/2022",
                "",
                "",
                "Không",
                "Đã ban hành",
            ),
        ]),
    );
    // ---- signing events ----
    h.file(
        "signatures",
        "2022-01-20",
        "kyso_001.ndjson",
        [
            // S1: valid signature of V01 (signing day 01-14).
            sig(
                "S1",
                Some("V01"),
                D,
                "2021-01-01T00:00:00+07:00",
                "2023-01-01T00:00:00+07:00",
                None,
                "2022-01-14T09:00:00+07:00",
                None,
            ),
            // S3: V08, certificate revoked exactly at the signing instant: invalid.
            sig(
                "S3",
                Some("V08"),
                D,
                "2021-01-01T00:00:00+07:00",
                "2023-01-01T00:00:00+07:00",
                Some("2022-01-12T08:00:00+07:00"),
                "2022-01-12T08:00:00+07:00",
                None,
            ),
            // S5: V01 again; the timestamp authority's time (01-15 10:00) is after the certificate
            // expired (01-14 23:59:59): invalid although the machine said 01-10.
            sig(
                "S5",
                Some("V01"),
                D,
                "2021-01-01T00:00:00+07:00",
                "2022-01-14T23:59:59+07:00",
                None,
                "2022-01-10T09:00:00+07:00",
                Some("2022-01-15T10:00:00+07:00"),
            ),
        ]
        .join("\n"),
    );
    h.file(
        "signatures",
        "2022-01-31",
        "kyso_001.ndjson",
        [
            // S2: V02 signed by a signer of H at the instant the certificate expires: valid; the
            // document's row goes to its own unit D.
            sig(
                "S2",
                Some("V02"),
                H,
                "2021-01-01T00:00:00+07:00",
                "2022-01-21T10:00:00+07:00",
                None,
                "2022-01-21T10:00:00+07:00",
                None,
            ),
            // S1 re-sent with another unit: the first one seen is kept.
            sig(
                "S1",
                Some("V01"),
                H,
                "2021-01-01T00:00:00+07:00",
                "2023-01-01T00:00:00+07:00",
                None,
                "2022-01-14T09:00:00+07:00",
                None,
            ),
            // S4: no document; 18:00 UTC on 01-31 is 01:00 on 02-01 local: a February signature.
            sig(
                "S4",
                None,
                H,
                "2021-01-01T00:00:00+07:00",
                "2023-01-01T00:00:00+07:00",
                None,
                "2022-01-31T18:00:00Z",
                None,
            ),
        ]
        .join("\n"),
    );
}

pub(crate) type Row = (i64, i64, String, Vec<String>);

/// (target, period, unit) → (numerator, denominator, status, sample keys).
pub(crate) fn results(h: &Harness, table: &str) -> BTreeMap<(String, String, String), Row> {
    let mut out = BTreeMap::new();
    for b in h.read("marts", table) {
        let s = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
        let i64s = |n: &str| {
            b.column_by_name(n)
                .unwrap()
                .as_primitive::<Int64Type>()
                .clone()
        };
        let (t, p, u, st) = (s("target_id"), s("period"), s("unit_code"), s("status"));
        let (n, d) = (i64s("numerator"), i64s("denominator"));
        let keys = b
            .column_by_name("sample_keys")
            .unwrap()
            .as_list::<i32>()
            .clone();
        for i in 0..b.num_rows() {
            let k = keys.value(i);
            let k: Vec<String> = k
                .as_string::<i32>()
                .iter()
                .flatten()
                .map(str::to_string)
                .collect();
            out.insert(
                (t.value(i).into(), p.value(i).into(), u.value(i).into()),
                (n.value(i), d.value(i), st.value(i).into(), k),
            );
        }
    }
    out
}

pub(crate) fn r(n: i64, d: i64, status: &str, keys: &[&str]) -> Row {
    (
        n,
        d,
        status.into(),
        keys.iter().map(|k| k.to_string()).collect(),
    )
}

pub(crate) fn expect(
    got: &BTreeMap<(String, String, String), Row>,
    target: &str,
    period: &str,
    cases: &[(&str, Row)],
) {
    for (unit, want) in cases {
        let key = (target.to_string(), period.to_string(), unit.to_string());
        assert_eq!(got.get(&key), Some(want), "{target} {period} {unit}");
    }
}

#[test]
fn every_target_matches_the_hand_count() {
    let h = Harness::new();
    landing(&h);
    let rec = h.run(&["2022-01-10", "2022-01-20", "2022-01-31", "2022-02-05"]);
    assert_eq!(rec.exit_code, 1, "error targets fail");
    let got = results(&h, "target_results");

    // Row set: 3 units + ALL for each unit-level target; ALL only for tthc_reviewed (yearly).
    let count = |t: &str, p: &str| got.keys().filter(|k| k.0 == t && k.1 == p).count();
    assert_eq!(count("dossier_on_time", "2022-01"), 4);
    assert_eq!(count("tthc_reviewed", "2022"), 1);
    assert_eq!(count("tthc_reviewed", "2022-01"), 0);

    // ---- January (final, as of 01-31) ----
    // Done in January (status 9/10, done_date in Jan), state as of 01-31:
    // D: D01, D02, D03, D04 (by NgayTra), D05, D12 (2nd version), D13 (1st version) = 7;
    //    on time: D01 (early), D02 (due day), D05 (no due date), D12 = 4; late D03, D04, D13.
    // H: H01 on its due day = 1/1. X: X01 = 1/1. ALL = 6/9 (0.667 < 0.98).
    expect(
        &got,
        "dossier_on_time",
        "2022-01",
        &[
            (D, r(4, 7, "fail", &["D03", "D04", "D13"])),
            (H, r(1, 1, "pass", &[])),
            (X, r(1, 1, "pass", &[])),
            ("ALL", r(6, 9, "fail", &["D03", "D04", "D13"])),
        ],
    );
    // Overdue in January (due in Jan and <= 01-31, not paused/withdrawn/refused, not done by
    // due date): D: D03, D04, D06, D13 (D08 paused, D09 withdrawn, D12 done early); timely
    // apology only D03 (on its due day; D04's came a day late). H: H02 (due on 01-31, still in
    // progress), apologised on its due day. X: none -> no_data.
    expect(
        &got,
        "overdue_apology",
        "2022-01",
        &[
            (D, r(1, 4, "fail", &["D04", "D06", "D13"])),
            (H, r(1, 1, "pass", &[])),
            (X, r(0, 0, "no_data", &[])),
            ("ALL", r(2, 5, "fail", &["D04", "D06", "D13"])),
        ],
    );
    // In progress at 01-31 (status 2/4): D: D06 (due 01-25: backlog), D07 (due 02-10);
    // H: H02 (due 01-31 = E: backlog). value = backlog count, 0 passes.
    expect(
        &got,
        "no_backlog",
        "2022-01",
        &[
            (D, r(1, 2, "fail", &["D06"])),
            (H, r(1, 1, "fail", &["H02"])),
            (X, r(0, 0, "pass", &[])),
            ("ALL", r(2, 3, "fail", &["D06", "H02"])),
        ],
    );
    // Received in January (status not 1/3): D: D01-D09 but D10 (3) and D11 (1), plus D12, D13
    // = 11, of which D02 and D09 not synced; H: 2; X: 1.
    expect(
        &got,
        "portal_sync",
        "2022-01",
        &[
            (D, r(9, 11, "fail", &["D02", "D09"])),
            (H, r(2, 2, "pass", &[])),
            (X, r(1, 1, "pass", &[])),
            ("ALL", r(12, 14, "fail", &["D02", "D09"])),
        ],
    );
    // Level 3/4 received: D01 (4, online), D02 (3, desk), D03 (3, online); X01 (4, online).
    expect(
        &got,
        "online_share",
        "2022-01",
        &[
            (D, r(2, 3, "info", &[])),
            (H, r(0, 0, "no_data", &[])),
            (X, r(1, 1, "info", &[])),
            ("ALL", r(3, 4, "info", &[])),
        ],
    );
    // Rated among done: D: D01 1, D02 2, D03 3, D12 2, D13 1 (D04 "", D05 absent) -> 4/5 = 0.8;
    // H01 2; X01 1. ALL 6/7 = 0.857 >= 0.85: 600 >= 595, passes although D fails.
    expect(
        &got,
        "satisfaction",
        "2022-01",
        &[
            (D, r(4, 5, "fail", &["D03"])),
            (H, r(1, 1, "pass", &[])),
            (X, r(1, 1, "pass", &[])),
            ("ALL", r(6, 7, "pass", &["D03"])),
        ],
    );
    // Legal normative, deadline in January: V01 (on time), V02 (issued 21/01 > 20/01, seen on
    // 01-31), V03 (never issued). V04's deadline is in February.
    expect(
        &got,
        "vbqppl_on_time",
        "2022-01",
        &[
            (D, r(1, 3, "fail", &["V02", "V03"])),
            (H, r(0, 0, "no_data", &[])),
            ("ALL", r(1, 3, "fail", &["V02", "V03"])),
        ],
    );
    // Incoming with deadline in January (H): V05 on time; V06 late; V07 not completed.
    expect(
        &got,
        "incoming_on_time",
        "2022-01",
        &[
            (D, r(0, 0, "no_data", &[])),
            (H, r(1, 3, "info", &["V06", "V07"])),
            ("ALL", r(1, 3, "info", &["V06", "V07"])),
        ],
    );
    // Outgoing issued in January (D): V01, V02 (as of 01-31), V08; sent: V01, V08.
    expect(
        &got,
        "e_exchange",
        "2022-01",
        &[
            (D, r(2, 3, "info", &["V02"])),
            ("ALL", r(2, 3, "info", &["V02"])),
        ],
    );
    // With a valid signature by 01-31: V01 (S1), V02 (S2, by a signer of H); V08's only one
    // (S3) is invalid.
    expect(
        &got,
        "outgoing_signed",
        "2022-01",
        &[
            (D, r(2, 3, "info", &["V08"])),
            (H, r(0, 0, "no_data", &[])),
            ("ALL", r(2, 3, "info", &["V08"])),
        ],
    );
    // Events with signing day in January, by the signer's unit: D: S1 valid, S3 revoked at
    // the instant, S5 expired by the TSA time; H: S2 valid at the instant of expiry (S4 is a
    // February signature; S1's re-sent copy is the same event, kept under D).
    expect(
        &got,
        "signature_valid",
        "2022-01",
        &[
            (D, r(1, 3, "fail", &["S3", "S5"])),
            (H, r(1, 1, "pass", &[])),
            (X, r(0, 0, "no_data", &[])),
            ("ALL", r(2, 4, "fail", &["S3", "S5"])),
        ],
    );

    // ---- February (provisional, as of 02-05) ----
    // Done in February: D07 (02-04, due 02-10). Still in progress: D06, H02 (backlog).
    expect(
        &got,
        "dossier_on_time",
        "2022-02",
        &[
            (D, r(1, 1, "pass", &[])),
            (H, r(0, 0, "no_data", &[])),
            ("ALL", r(1, 1, "pass", &[])),
        ],
    );
    expect(
        &got,
        "no_backlog",
        "2022-02",
        &[
            (D, r(1, 1, "fail", &["D06"])),
            (H, r(1, 1, "fail", &["H02"])),
            (X, r(0, 0, "pass", &[])),
        ],
    );
    // Nothing received in February; nothing due in February by 02-05 (D07 due 02-10, done).
    expect(
        &got,
        "portal_sync",
        "2022-02",
        &[("ALL", r(0, 0, "no_data", &[]))],
    );
    expect(
        &got,
        "overdue_apology",
        "2022-02",
        &[("ALL", r(0, 0, "no_data", &[]))],
    );
    expect(
        &got,
        "signature_valid",
        "2022-02",
        &[(H, r(1, 1, "pass", &[])), ("ALL", r(1, 1, "pass", &[]))],
    );

    // ---- 2022 (provisional, as of 02-05) ----
    // D13's correction of 02-05 counts: done 01-18 on its due day. D: done D01-D05, D07, D12,
    // D13 = 8, on time 6 (late D03, D04); overdue D03, D04, D06 (D13 no longer), timely D03.
    expect(
        &got,
        "dossier_on_time",
        "2022",
        &[
            (D, r(6, 8, "fail", &["D03", "D04"])),
            ("ALL", r(8, 10, "fail", &["D03", "D04"])),
        ],
    );
    expect(
        &got,
        "overdue_apology",
        "2022",
        &[
            (D, r(1, 3, "fail", &["D04", "D06"])),
            ("ALL", r(2, 4, "fail", &["D04", "D06"])),
        ],
    );
    expect(
        &got,
        "signature_valid",
        "2022",
        &[
            (D, r(1, 3, "fail", &["S3", "S5"])),
            (H, r(2, 2, "pass", &[])),
            ("ALL", r(3, 5, "fail", &["S3", "S5"])),
        ],
    );
    // The newest catalog as of 02-05 is the all-bad snapshot: empty, so no data.
    expect(
        &got,
        "tthc_reviewed",
        "2022",
        &[("ALL", r(0, 0, "no_data", &[]))],
    );

    // District roll-up (H with its commune X), January.
    let district = results(&h, "target_results_district");
    expect(
        &district,
        "dossier_on_time",
        "2022-01",
        &[(H, r(2, 2, "pass", &[]))],
    );
    expect(
        &district,
        "no_backlog",
        "2022-01",
        &[(H, r(1, 1, "fail", &["H02"]))],
    );
    expect(
        &district,
        "portal_sync",
        "2022-01",
        &[(H, r(3, 3, "pass", &[]))],
    );
    assert!(!district.keys().any(|k| k.2 == D || k.2 == "ALL"));
}

#[test]
fn the_catalog_of_january_is_the_newest_snapshot_as_of_its_last_day() {
    let h = Harness::new();
    landing(&h);
    h.run(&["2022-01-10", "2022-01-20", "2022-01-31", "2022-02-05"]);
    // mart_procedures, January (as of 01-31): P1 (reviewed on 01-20), P2, P4 can be shortened;
    // P4 is not reviewed.
    let mut found = false;
    for b in h.read("marts", "mart_procedures") {
        let p = b.column_by_name("period").unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            if p.value(i) == "2022-01" {
                let n = |c: &str| {
                    b.column_by_name(c)
                        .unwrap()
                        .as_primitive::<Int64Type>()
                        .value(i)
                };
                assert_eq!((n("can_shorten"), n("can_shorten_reviewed")), (3, 2));
                let k = b
                    .column_by_name("unreviewed_keys")
                    .unwrap()
                    .as_list::<i32>()
                    .value(i);
                assert_eq!(k.as_string::<i32>().value(0), "P4");
                assert_eq!(k.len(), 1);
                found = true;
            }
        }
    }
    assert!(found);
}

/// Current file of each period partition of `target_results`.
fn partition_files(h: &Harness) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let dir = h.warehouse().join("marts/target_results");
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let mut files: Vec<String> = std::fs::read_dir(e.path())
            .unwrap()
            .flatten()
            .map(|f| f.file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        out.insert(
            e.file_name().to_string_lossy().into_owned(),
            files.pop().unwrap(),
        );
    }
    out
}

#[test]
fn rerunning_a_day_recomputes_the_periods_it_changes_and_no_other() {
    let h = Harness::new();
    landing(&h);
    h.run(&["2022-01-10", "2022-01-20", "2022-01-31", "2022-02-05"]);
    let before = results(&h, "target_results");
    let files = partition_files(&h);
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        ["period=2022", "period=2022-01", "period=2022-02"]
    );

    // Re-running 02-05 recomputes February and the year (as of 02-05), not January, and gives
    // the same figures.
    let rec = h.run(&["2022-02-05"]);
    let periods: Vec<&str> = rec.periods.iter().map(|p| p.period.as_str()).collect();
    assert_eq!(periods, ["2022-02", "2022"]);
    let again = partition_files(&h);
    assert_eq!(again["period=2022-01"], files["period=2022-01"]);
    assert_ne!(again["period=2022-02"], files["period=2022-02"]);
    assert_eq!(results(&h, "target_results"), before);

    // 01-31 re-delivered with D06 finished on 01-26 (due 01-25): January changes, and so do the
    // later periods; re-run, they are all recomputed.
    h.file(
        "one_stop",
        "2022-01-31",
        "hoso_002.json",
        batch(vec![hs(
            "D06",
            D,
            "10",
            json!({"NgayTiepNhan": "20220110080000", "NgayHenTra": "20220125170000",
            "NgayKetThucXuLy": "20220126080000"}),
        )]),
    );
    let rec = h.run(&["2022-01-31"]);
    let periods: Vec<&str> = rec.periods.iter().map(|p| p.period.as_str()).collect();
    assert_eq!(periods, ["2022-01", "2022-02", "2022"]);
    let after = results(&h, "target_results");
    let key = |t: &str, p: &str, u: &str| (t.to_string(), p.to_string(), u.to_string());
    // January, D: D06 is now done late (4/8) and no longer in progress (no backlog).
    assert_eq!(
        after[&key("dossier_on_time", "2022-01", D)],
        r(4, 8, "fail", &["D03", "D04", "D06", "D13"])
    );
    assert_eq!(
        after[&key("no_backlog", "2022-01", D)],
        r(0, 1, "pass", &[])
    );
    // Untouched figures stay: H in January.
    assert_eq!(
        after[&key("no_backlog", "2022-01", H)],
        before[&key("no_backlog", "2022-01", H)]
    );
}
