"""The peer of `make bench`: DuckDB loads the same landing files into Parquet with the same typing
(dates parsed in local time, codes as strings, lists as lists of structs), on 2 threads. It does
no validation, quarantine or pseudonymisation: it is the floor a loader pays for parse + write."""
import sys
import duckdb

landing, out = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute("SET threads = 2")
con.execute("SET TimeZone = 'Asia/Ho_Chi_Minh'")

V = "VARCHAR"
dossier_fields = ["MaHoSo", "MaTTHC", "TenTTHC", "MaLinhVuc", "TenLinhVuc", "DonViXuLy", "KenhThucHien", "MucDo",
                  "ChuHoSo", "LoaiDoiTuong", "MaDoiTuong", "SoDienThoai", "Email", "TrichYeuHoSo", "NgayNopHoSo",
                  "NgayTiepNhan", "NgayHenTra", "TrangThaiHoSo", "NgayKetThucXuLy", "NgayTra", "TrangThaiDongBoDVC",
                  "KetQuaDanhGia"]
sup = "STRUCT(NgayYeuCauBoSung VARCHAR, NgayCongDanBoSung VARCHAR, NgayHenTraTruoc VARCHAR, NgayHenTraMoi VARCHAR)[]"
apo = "STRUCT(NgayXinLoi VARCHAR, NgayHenTraMoi VARCHAR, LyDo VARCHAR)[]"
rec = "STRUCT(" + ", ".join(f"{f} {V}" for f in dossier_fields) + f", DanhSachHoSoBoSung {sup}, DanhSachPhieuXinLoi {apo})"


def ts(col, fmt="%Y%m%d%H%M%S"):
    return f"strptime(nullif({col}, ''), '{fmt}')::TIMESTAMPTZ"


dates = {"NgayNopHoSo", "NgayTiepNhan", "NgayHenTra", "NgayKetThucXuLy", "NgayTra"}
sel = ", ".join(ts(f"d.{f}") + f" AS {f}" if f in dates else f"d.{f} AS {f}" for f in dossier_fields)
sel += (", list_transform(d.DanhSachHoSoBoSung, lambda x: {'requested_at': " + ts("x.NgayYeuCauBoSung")
        + ", 'supplied_at': " + ts("x.NgayCongDanBoSung") + ", 'due_before_at': " + ts("x.NgayHenTraTruoc")
        + ", 'due_after_at': " + ts("x.NgayHenTraMoi") + "}) AS supplements")
sel += (", list_transform(d.DanhSachPhieuXinLoi, lambda x: {'apologised_at': " + ts("x.NgayXinLoi")
        + ", 'new_due_at': " + ts("x.NgayHenTraMoi") + ", 'reason': x.LyDo}) AS apologies")
con.execute(f"""
COPY (SELECT {sel}, filename FROM (
  SELECT unnest(data) AS d, filename FROM read_json('{landing}/one_stop/*/hoso_*.json',
    columns = {{service: 'VARCHAR', isUpdating: 'BOOLEAN', data: '{rec}[]'}}, filename = true,
    maximum_object_size = 1000000000)))
TO '{out}/dossiers.parquet' (FORMAT parquet, COMPRESSION zstd)""")

doc_dates = ["Ngày ban hành", "Ngày đến", "Hạn xử lý", "Ngày hoàn thành"]
dsel = ", ".join(
    f"coalesce(try_strptime(nullif(\"{c}\", ''), '%d/%m/%Y %H:%M'), try_strptime(nullif(\"{c}\", ''), '%d/%m/%Y'))::TIMESTAMPTZ AS \"{c}\""
    for c in doc_dates)
con.execute(f"""
COPY (SELECT * EXCLUDE ("{'", "'.join(doc_dates)}", "Hạn ban hành theo kế hoạch"),
             strptime(nullif("Hạn ban hành theo kế hoạch", ''), '%d/%m/%Y')::DATE AS plan_deadline, {dsel}
      FROM read_csv('{landing}/ioffice/*/vanban_*.csv', header = true, all_varchar = true, union_by_name = true,
                    filename = true))
TO '{out}/documents.parquet' (FORMAT parquet, COMPRESSION zstd)""")

ev = ["event_id", "doc_id", "unit_code", "signer", "sig_type", "cert_serial", "issuer", "cert_not_before",
      "cert_not_after", "cert_revoked_at", "signing_time", "tsa_time", "doc_sha256"]
tsf = {"cert_not_before", "cert_not_after", "cert_revoked_at", "signing_time", "tsa_time"}
cols = "{" + ", ".join(f"{f}: '{'TIMESTAMPTZ' if f in tsf else 'VARCHAR'}'" for f in ev) + "}"
con.execute(f"""
COPY (SELECT * FROM read_json('{landing}/signatures/*/kyso_*.ndjson', format = 'newline_delimited',
                              columns = {cols}, filename = true))
TO '{out}/signature_events.parquet' (FORMAT parquet, COMPRESSION zstd)""")

cat = "STRUCT(MaTTHC VARCHAR, TenTTHC VARCHAR, CapThucHien VARCHAR, ThoiHanGiaiQuyet VARCHAR, CoTheRutNgan VARCHAR, DaRaSoat VARCHAR, NgayRaSoat VARCHAR)"
con.execute(f"""
COPY (SELECT d.* REPLACE (d.ThoiHanGiaiQuyet::BIGINT AS ThoiHanGiaiQuyet, {ts('d.NgayRaSoat')} AS NgayRaSoat), filename
      FROM (SELECT unnest(data) AS d, filename FROM read_json('{landing}/one_stop/*/thutuc_*.json',
            columns = {{service: 'VARCHAR', data: '{cat}[]'}}, filename = true, maximum_object_size = 1000000000)))
TO '{out}/procedures.parquet' (FORMAT parquet, COMPRESSION zstd)""")
