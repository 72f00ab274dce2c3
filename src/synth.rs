//! `cchc gen`: a synthetic landing area in the contract's exact formats, deterministic for a seed.
//!
//! Shape of a province: 20 departments, 21 districts, 460 communes. At scale 1 about 1,400
//! dossiers are received a day (≈ 1.5 million dossier versions a year), each appearing on every
//! day its status moves: received → in progress → maybe supplementation → done → returned; some
//! late, some with apology letters, ratings and portal-sync flags. Documents incoming and outgoing,
//! legal normative ones with plan deadlines, and signing events, some with expired, not-yet-valid
//! or revoked certificates. About one applicant name in twenty is written in decomposed Unicode.
//!
//! `--defects RATE` corrupts that share of records with each defect of the contract and adds the
//! file-level ones (truncated, non-JSON and empty files, re-delivered days, a missing day folder,
//! CSV without byte-order mark or with Windows line ends, a stray column, duplicates in a day).
//!
//! Three independent streams (dossiers, documents with signatures, catalog) each have their own
//! generator seeded from `--seed`, so they can be written in parallel and stay deterministic.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use unicode_normalization::UnicodeNormalization;

use crate::base::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct GenOptions {
    pub out: PathBuf,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub scale: f64,
    pub seed: u64,
    pub defects: f64,
    /// A reorganisation on this day (`--reorganise`): see [`reorganise`].
    pub reorganise: Option<NaiveDate>,
}

#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct GenSummary {
    pub days: u64,
    pub dossiers: u64,
    pub dossier_versions: u64,
    pub documents: u64,
    pub document_versions: u64,
    pub signature_events: u64,
    pub files: u64,
    pub bytes: u64,
}

impl std::ops::AddAssign for GenSummary {
    fn add_assign(&mut self, o: Self) {
        self.days = self.days.max(o.days);
        self.dossiers += o.dossiers;
        self.dossier_versions += o.dossier_versions;
        self.documents += o.documents;
        self.document_versions += o.document_versions;
        self.signature_events += o.signature_events;
        self.files += o.files;
        self.bytes += o.bytes;
    }
}

const DEPARTMENTS: [&str; 20] = [
    "Sở Tư pháp",
    "Sở Kế hoạch và Đầu tư",
    "Sở Tài chính",
    "Sở Công Thương",
    "Sở Nông nghiệp và Phát triển nông thôn",
    "Sở Giao thông vận tải",
    "Sở Xây dựng",
    "Sở Tài nguyên và Môi trường",
    "Sở Thông tin và Truyền thông",
    "Sở Lao động - Thương binh và Xã hội",
    "Sở Văn hóa và Thể thao",
    "Sở Khoa học và Công nghệ",
    "Sở Giáo dục và Đào tạo",
    "Sở Y tế",
    "Sở Nội vụ",
    "Sở Ngoại vụ",
    "Sở Du lịch",
    "Ban Dân tộc",
    "Ban Quản lý Khu kinh tế Đông Nam",
    "Thanh tra tỉnh",
];
const DISTRICTS: [&str; 21] = [
    "Thành phố Vinh",
    "Thị xã Cửa Lò",
    "Thị xã Thái Hòa",
    "Thị xã Hoàng Mai",
    "Huyện Quỳnh Lưu",
    "Huyện Diễn Châu",
    "Huyện Yên Thành",
    "Huyện Nghi Lộc",
    "Huyện Hưng Nguyên",
    "Huyện Nam Đàn",
    "Huyện Thanh Chương",
    "Huyện Đô Lương",
    "Huyện Anh Sơn",
    "Huyện Con Cuông",
    "Huyện Tương Dương",
    "Huyện Kỳ Sơn",
    "Huyện Quế Phong",
    "Huyện Quỳ Châu",
    "Huyện Quỳ Hợp",
    "Huyện Nghĩa Đàn",
    "Huyện Tân Kỳ",
];
const COMMUNE_WORDS: [&str; 12] = [
    "Hưng", "Phúc", "Thịnh", "Lộc", "Sơn", "Thành", "Đông", "Tây", "Nam", "Bắc", "Trung", "Hòa",
];
const SURNAMES: [&str; 10] = [
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Vũ", "Đặng", "Bùi", "Đỗ",
];
const MIDDLE: [&str; 6] = ["Văn", "Thị", "Đức", "Hữu", "Minh", "Ngọc"];
const GIVEN: [&str; 12] = [
    "Ánh", "Bình", "Cường", "Dũng", "Hà", "Hương", "Khánh", "Lan", "Long", "Nga", "Phương", "Tuấn",
];
/// Officials' given names: a pool apart from applicants', so a signer's name (public, in
/// iOffice) never equals an applicant's (pseudonymised), and a scan for clear applicant data in
/// staging is exact.
const OFFICIAL_GIVEN: [&str; 6] = [
    "Quang Hải",
    "Đình Thắng",
    "Xuân Trường",
    "Thanh Tùng",
    "Hồng Sơn",
    "Bá Thịnh",
];
const SECTORS: [(&str, &str); 8] = [
    ("G01", "Hộ tịch"),
    ("G02", "Đất đai"),
    ("G03", "Xây dựng"),
    ("G04", "Đăng ký kinh doanh"),
    ("G05", "Lao động"),
    ("G06", "Y tế"),
    ("G07", "Giáo dục"),
    ("G08", "Giao thông"),
];
const DOC_TYPES: [&str; 6] = [
    "Quyết định",
    "Công văn",
    "Tờ trình",
    "Kế hoạch",
    "Báo cáo",
    "Thông báo",
];

/// Number of communes per district: 460 in all.
fn communes_of(district: usize) -> usize {
    if district < 19 {
        22
    } else {
        21
    }
}

#[derive(Debug, Clone)]
pub struct SynthUnit {
    pub code: String,
    pub name: String,
    pub tier: &'static str,
    pub parent: String,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
}

impl SynthUnit {
    fn valid_on(&self, day: NaiveDate) -> bool {
        crate::config::units::holds_on(self.valid_from, self.valid_to, day)
    }
}

/// The province reorganised on `day`, as in 2025: the district level is abolished (every
/// district ceases, without a successor: its late-synced records count for the province only)
/// and each district's communes merge two by two (an odd last one joins the pair before it) into
/// new communes without a district. Returns the units (old rows closed on `day`, new rows opened
/// on it) and the changes (`effective_date, old_code, new_code`).
pub fn reorganise(
    mut units: Vec<SynthUnit>,
    day: NaiveDate,
) -> (Vec<SynthUnit>, Vec<(NaiveDate, String, String)>) {
    let mut changes = Vec::new();
    let mut merged = Vec::new();
    for (d, _) in DISTRICTS.iter().enumerate() {
        let n = communes_of(d);
        let pairs = n / 2;
        for c in 0..n {
            let k = (c / 2).min(pairs - 1);
            let old = format!("000.{:02}.{:02}.H40", c + 1, 21 + d);
            let new = format!("000.{:02}.{:02}.H40", 51 + k, 21 + d);
            if c % 2 == 0 && k == c / 2 {
                merged.push(SynthUnit {
                    code: new.clone(),
                    name: format!(
                        "Xã {} {}",
                        COMMUNE_WORDS[(k + d + 5) % 12],
                        COMMUNE_WORDS[(k / 12 + d + 7) % 12]
                    ),
                    tier: "xa-phuong",
                    parent: String::new(),
                    valid_from: Some(day),
                    valid_to: None,
                });
            }
            changes.push((day, old, new));
        }
    }
    for u in units.iter_mut().filter(|u| u.tier != "so-ban-nganh") {
        u.valid_to = Some(day);
    }
    units.extend(merged);
    (units, changes)
}

pub fn units() -> Vec<SynthUnit> {
    let mut v = Vec::new();
    for (i, n) in DEPARTMENTS.iter().enumerate() {
        v.push(SynthUnit {
            code: format!("000.00.{:02}.H40", i + 1),
            name: n.to_string(),
            tier: "so-ban-nganh",
            parent: String::new(),
            valid_from: None,
            valid_to: None,
        });
    }
    for (d, n) in DISTRICTS.iter().enumerate() {
        let dcode = format!("000.00.{:02}.H40", 21 + d);
        v.push(SynthUnit {
            code: dcode.clone(),
            name: n.to_string(),
            tier: "quan-huyen",
            parent: String::new(),
            valid_from: None,
            valid_to: None,
        });
        for c in 0..communes_of(d) {
            let name = format!(
                "Xã {} {}",
                COMMUNE_WORDS[(c + d) % 12],
                COMMUNE_WORDS[(c / 12 + d) % 12]
            );
            v.push(SynthUnit {
                code: format!("000.{:02}.{:02}.H40", c + 1, 21 + d),
                name,
                tier: "xa-phuong",
                parent: dcode.clone(),
                valid_from: None,
                valid_to: None,
            });
        }
    }
    v
}

#[derive(Debug, Clone)]
struct Procedure {
    code: String,
    name: String,
    level: &'static str,
    days: i64,
    sector: usize,
}

fn procedures() -> Vec<Procedure> {
    (0..300)
        .map(|i| Procedure {
            code: format!("1.{:06}", 1000 + i * 7),
            name: format!("Thủ tục {} số {}", SECTORS[i % 8].1.to_lowercase(), i + 1),
            level: ["tinh", "huyen", "xa"][i % 3],
            days: [1, 3, 5, 7, 10, 15, 20, 30][i % 8],
            sector: i % 8,
        })
        .collect()
}

fn ymdhms(t: NaiveDateTime) -> String {
    t.format("%Y%m%d%H%M%S").to_string()
}

fn at(day: NaiveDate, rng: &mut ChaCha8Rng) -> NaiveDateTime {
    day.and_time(
        NaiveTime::from_hms_opt(
            rng.random_range(7..17),
            rng.random_range(0..60),
            rng.random_range(0..60),
        )
        .unwrap(),
    )
}

fn person(rng: &mut ChaCha8Rng) -> String {
    let n = format!(
        "{} {} {}",
        SURNAMES[rng.random_range(0..10)],
        MIDDLE[rng.random_range(0..6)],
        GIVEN[rng.random_range(0..12)]
    );
    if rng.random_bool(0.05) {
        n.nfd().collect()
    } else {
        n
    }
}

fn official(rng: &mut ChaCha8Rng) -> String {
    format!(
        "{} {}",
        SURNAMES[rng.random_range(0..10)],
        OFFICIAL_GIVEN[rng.random_range(0..6)]
    )
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON object written field by field.
struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    fn new(out: &'a mut String) -> Self {
        out.push('{');
        Self { out, first: true }
    }
    fn key(&mut self, k: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        json_str(self.out, k);
        self.out.push(':');
        self.out
    }
    fn s(&mut self, k: &str, v: &str) -> &mut Self {
        let o = self.key(k);
        json_str(o, v);
        self
    }
    fn raw(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k).push_str(v);
        self
    }
    fn end(self) {
        self.out.push('}');
    }
}

/// The whole life of one dossier, decided when it is received.
struct Dossier {
    id: String,
    proc_idx: usize,
    unit: usize,
    channel: &'static str,
    level: &'static str,
    name: String,
    citizen_id: String,
    phone: String,
    email: String,
    kind: &'static str,
    submitted: NaiveDateTime,
    received: Option<NaiveDateTime>,
    due: Option<NaiveDateTime>,
    finished: Option<NaiveDateTime>,
    returned: Option<NaiveDateTime>,
    /// (requested, supplied, due before, due after)
    supplement: Option<(NaiveDateTime, NaiveDateTime, NaiveDateTime, NaiveDateTime)>,
    apology: Option<(NaiveDateTime, NaiveDateTime)>,
    rating: &'static str,
    synced_from: Option<NaiveDate>,
    /// (day, status) of each version.
    versions: Vec<(NaiveDate, u8)>,
}

impl Dossier {
    fn render(&self, v: usize, procs: &[Procedure], units: &[SynthUnit], out: &mut String) {
        let (day, status) = self.versions[v];
        let p = &procs[self.proc_idx];
        let mut o = Obj::new(out);
        o.s("MaHoSo", &self.id)
            .s("MaTTHC", &p.code)
            .s("TenTTHC", &p.name);
        o.s("MaLinhVuc", SECTORS[p.sector].0)
            .s("TenLinhVuc", SECTORS[p.sector].1);
        o.s("DonViXuLy", &units[self.unit].code)
            .s("KenhThucHien", self.channel)
            .s("MucDo", self.level);
        o.s("ChuHoSo", &self.name)
            .s("LoaiDoiTuong", self.kind)
            .s("MaDoiTuong", &self.citizen_id);
        o.s("SoDienThoai", &self.phone).s("Email", &self.email);
        o.s("TrichYeuHoSo", &format!("Đề nghị giải quyết: {}", p.name));
        o.s("NgayNopHoSo", &ymdhms(self.submitted));
        let shown = |t: Option<NaiveDateTime>| {
            t.filter(|t| t.date() <= day)
                .map(ymdhms)
                .unwrap_or_default()
        };
        o.s("NgayTiepNhan", &shown(self.received));
        // The appointment date is moved by a supplementation round once the applicant supplies.
        let due = match (self.due, self.supplement) {
            (Some(_), Some((_, sup, _, after))) if sup.date() <= day => Some(after),
            (d, _) => d,
        };
        o.s(
            "NgayHenTra",
            &due.filter(|_| self.received.is_some_and(|r| r.date() <= day))
                .map(ymdhms)
                .unwrap_or_default(),
        );
        o.s("TrangThaiHoSo", &status.to_string());
        o.s(
            "NgayKetThucXuLy",
            &if status >= 9 {
                shown(self.finished)
            } else {
                String::new()
            },
        );
        o.s(
            "NgayTra",
            &if status == 10 {
                shown(self.returned)
            } else {
                String::new()
            },
        );
        o.s(
            "TrangThaiDongBoDVC",
            if self.synced_from.is_some_and(|d| d <= day) {
                "1"
            } else {
                "0"
            },
        );
        o.s("KetQuaDanhGia", if status == 10 { self.rating } else { "" });
        if let Some((req, sup, before, after)) = self.supplement.filter(|s| s.0.date() <= day) {
            let o2 = o.key("DanhSachHoSoBoSung");
            o2.push('[');
            let mut it = Obj::new(o2);
            it.s("NgayYeuCauBoSung", &ymdhms(req));
            it.s(
                "NgayCongDanBoSung",
                &if sup.date() <= day {
                    ymdhms(sup)
                } else {
                    String::new()
                },
            );
            it.s("NgayHenTraTruoc", &ymdhms(before));
            it.s(
                "NgayHenTraMoi",
                &if sup.date() <= day {
                    ymdhms(after)
                } else {
                    String::new()
                },
            );
            it.end();
            o2.push(']');
        }
        if let Some((when, new_due)) = self.apology.filter(|a| a.0.date() <= day) {
            let o2 = o.key("DanhSachPhieuXinLoi");
            o2.push('[');
            let mut it = Obj::new(o2);
            it.s("NgayXinLoi", &ymdhms(when))
                .s("NgayHenTraMoi", &ymdhms(new_due))
                .s("LyDo", "Hồ sơ cần xác minh thêm, thẩm định phức tạp");
            it.end();
            o2.push(']');
        }
        o.end();
    }
}

/// Pick a handling unit valid on `day` whose tier matches the procedure level (after a
/// reorganisation, the communes take the district level's procedures).
fn unit_for(level: &str, units: &[SynthUnit], day: NaiveDate, rng: &mut ChaCha8Rng) -> usize {
    let no_districts = units
        .iter()
        .find(|u| u.tier == "quan-huyen")
        .is_some_and(|u| !u.valid_on(day));
    let tier = match level {
        "tinh" => "so-ban-nganh",
        "huyen" if !no_districts => "quan-huyen",
        _ => "xa-phuong",
    };
    loop {
        let i = rng.random_range(0..units.len());
        if units[i].tier == tier && units[i].valid_on(day) {
            return i;
        }
    }
}

fn plan_dossier(
    n: u64,
    day: NaiveDate,
    procs: &[Procedure],
    units: &[SynthUnit],
    rng: &mut ChaCha8Rng,
) -> Dossier {
    let proc_idx = rng.random_range(0..procs.len());
    let p = &procs[proc_idx];
    let unit = unit_for(p.level, units, day, rng);
    let online = rng.random_bool(0.45);
    let channel = if online {
        "2"
    } else if rng.random_bool(0.09) {
        "3"
    } else {
        "1"
    };
    let level = if rng.random_bool(0.1) {
        "2"
    } else if rng.random_bool(0.45) {
        "3"
    } else {
        "4"
    };
    let submitted = at(day, rng);
    let mut versions = Vec::new();
    let mut d = Dossier {
        id: format!("H40.{}-{:07}", day.format("%y%m%d"), n),
        proc_idx,
        unit,
        channel,
        level,
        name: person(rng),
        citizen_id: format!("0{:011}", rng.random_range(0..100_000_000_000u64)),
        phone: format!("09{:08}", rng.random_range(0..100_000_000u32)),
        email: format!("nguoidan{}@example.vn", rng.random_range(0..1_000_000u32)),
        kind: if rng.random_bool(0.85) { "1" } else { "2" },
        submitted,
        received: None,
        due: None,
        finished: None,
        returned: None,
        supplement: None,
        apology: None,
        rating: "",
        synced_from: None,
        versions: Vec::new(),
    };
    let mut accept_day = day;
    if online && rng.random_bool(0.3) {
        versions.push((day, 1));
        accept_day = day + Duration::days(1);
        if rng.random_bool(0.05) {
            versions.push((accept_day, 3));
            d.versions = versions;
            return d;
        }
    } else if rng.random_bool(0.02) {
        versions.push((day, 3));
        d.versions = versions;
        return d;
    }
    let received = at(accept_day, rng).max(submitted);
    let legal = (p.days as f64 * 1.4).ceil() as i64;
    let due = at(accept_day + Duration::days(legal), rng);
    d.received = Some(received);
    d.due = Some(due);
    d.synced_from = if rng.random_bool(0.985) {
        Some(accept_day + Duration::days(rng.random_range(0..2)))
    } else {
        None
    };
    versions.push((accept_day, 2));
    let mut cur = accept_day + Duration::days(1);
    versions.push((cur, 4));
    let mut due_now = due;
    if legal > 3 && rng.random_bool(0.15) {
        let req = cur + Duration::days(rng.random_range(0..(legal / 2).max(1)));
        let k = rng.random_range(1..8);
        let sup = req + Duration::days(k);
        let after = due + Duration::days(k);
        d.supplement = Some((at(req, rng), at(sup, rng), due, after));
        versions.push((req, 5));
        versions.push((sup, 4));
        due_now = after;
        cur = sup;
    }
    let r: f64 = rng.random();
    if r < 0.02 {
        versions.push((cur + Duration::days(1), 7));
    } else if r < 0.03 {
        versions.push((cur + Duration::days(1), 8));
    } else {
        // ~93% finish on or before the appointment date; the rest 1–10 days late.
        let late = rng.random_bool(0.07);
        let finish_day = if late {
            due_now.date() + Duration::days(rng.random_range(1..11))
        } else {
            let span = (due_now.date() - cur).num_days().max(0);
            cur + Duration::days(rng.random_range(0..=span))
        };
        let finish_day = finish_day.max(cur);
        if late && rng.random_bool(0.8) {
            // Most late dossiers get an apology letter, usually before the due date.
            let before = rng.random_bool(0.85);
            let when = if before {
                due_now.date() - Duration::days(rng.random_range(0..3))
            } else {
                due_now.date() + Duration::days(1)
            };
            let when = when.max(cur);
            d.apology = Some((at(when, rng), at(finish_day + Duration::days(1), rng)));
            if when < finish_day {
                versions.push((when, 4));
            }
        }
        let finished = at(finish_day, rng);
        d.finished = Some(finished);
        versions.push((finish_day, 9));
        let ret_day = finish_day + Duration::days(rng.random_range(0..4));
        d.returned = Some(at(ret_day, rng).max(finished));
        versions.push((ret_day, 10));
        d.rating = if rng.random_bool(0.6) {
            ["1", "1", "1", "1", "1", "2", "2", "2", "2", "3"][rng.random_range(0..10)]
        } else {
            ""
        };
    }
    // One version a day: a later status of the same day replaces an earlier one.
    versions.sort_by_key(|v| v.0);
    let mut dedup: Vec<(NaiveDate, u8)> = Vec::new();
    for v in versions {
        match dedup.last_mut() {
            Some(last) if last.0 == v.0 => *last = v,
            _ => dedup.push(v),
        }
    }
    d.versions = dedup;
    d
}

fn daily_volume(base: f64, day: NaiveDate, rng: &mut ChaCha8Rng) -> u64 {
    let wd = day.weekday().num_days_from_monday();
    let f = if wd >= 5 { 0.25 } else { 1.0 };
    let v = base * f * rng.random_range(0.85..1.15);
    v.round() as u64
}

fn write(path: &Path, data: &[u8], sum: &mut GenSummary) -> Result<()> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p)
            .map_err(|e| Error::io(format!("cannot create {}", p.display()), e))?;
    }
    std::fs::write(path, data)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    sum.files += 1;
    sum.bytes += data.len() as u64;
    Ok(())
}

fn days(o: &GenOptions) -> impl Iterator<Item = NaiveDate> + '_ {
    o.from.iter_days().take_while(move |d| *d <= o.to)
}

/// Corrupt a serialized dossier with one of the contract's record defects.
fn corrupt_dossier(rec: &str, rng: &mut ChaCha8Rng) -> String {
    let replace_field = |rec: &str, key: &str, val: &str| -> String {
        let pat = format!("\"{key}\":\"");
        match rec.find(&pat) {
            Some(i) => {
                let start = i + pat.len() - 1;
                let end = start + 1 + rec[start + 1..].find('"').unwrap_or(0) + 1;
                format!("{}{}{}", &rec[..start], val, &rec[end..])
            }
            None => rec.to_string(),
        }
    };
    match rng.random_range(0..8) {
        0 => replace_field(rec, "MaHoSo", "\"\""),
        1 => replace_field(rec, "NgayNopHoSo", "\"20220231000000\""),
        2 => replace_field(rec, "TrangThaiHoSo", "\"11\""),
        3 => replace_field(rec, "DonViXuLy", "\"000.99.99.H40\""),
        4 => replace_field(rec, "KenhThucHien", "2"),
        5 => replace_field(rec, "TenTTHC", "null"),
        6 => replace_field(rec, "MaTTHC", "\"\""),
        _ => replace_field(rec, "NgayTiepNhan", "\"2022-03-01\""),
    }
}

fn envelope(service: &str, records: &[String]) -> String {
    let mut s = String::with_capacity(records.iter().map(|r| r.len() + 1).sum::<usize>() + 64);
    let _ = write!(
        s,
        "{{\"service\":\"{service}\",\"isUpdating\":false,\"data\":["
    );
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(r);
    }
    s.push_str("]}");
    s
}

fn gen_dossiers(o: &GenOptions, units: &[SynthUnit], procs: &[Procedure]) -> Result<GenSummary> {
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed ^ 0x0D05_51E5);
    let mut sum = GenSummary::default();
    let mut pending: BTreeMap<NaiveDate, Vec<(usize, usize)>> = BTreeMap::new();
    let mut live: Vec<Option<Dossier>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut remaining: Vec<usize> = Vec::new();
    let mut serial = 0u64;
    let missing_day =
        (o.defects > 0.0).then(|| o.from + Duration::days(((o.to - o.from).num_days() / 2).max(0)));
    for day in days(o) {
        sum.days += 1;
        for _ in 0..daily_volume(1400.0 * o.scale, day, &mut rng) {
            serial += 1;
            let d = plan_dossier(serial, day, procs, units, &mut rng);
            sum.dossiers += 1;
            let slot = free.pop().unwrap_or_else(|| {
                live.push(None);
                remaining.push(0);
                live.len() - 1
            });
            for (vi, (vd, _)) in d.versions.iter().enumerate() {
                pending.entry(*vd).or_default().push((slot, vi));
            }
            remaining[slot] = d.versions.len();
            live[slot] = Some(d);
        }
        let todays = pending.remove(&day).unwrap_or_default();
        let mut records = Vec::with_capacity(todays.len() + 8);
        for (slot, vi) in todays {
            let d = live[slot].as_ref().expect("live dossier");
            let mut s = String::with_capacity(900);
            d.render(vi, procs, units, &mut s);
            if o.defects > 0.0 && rng.random_bool(o.defects.min(1.0)) {
                s = corrupt_dossier(&s, &mut rng);
            }
            // The same dossier twice in one day: an earlier state, then the current one.
            if o.defects > 0.0 && vi > 0 && rng.random_bool((o.defects / 2.0).min(1.0)) {
                let mut earlier = String::new();
                d.render(vi - 1, procs, units, &mut earlier);
                records.push(earlier);
            }
            records.push(s);
            remaining[slot] -= 1;
            if remaining[slot] == 0 {
                live[slot] = None;
                free.push(slot);
            }
        }
        if missing_day == Some(day) {
            continue; // the system was down: no folder at all
        }
        sum.dossier_versions += records.len() as u64;
        let dir = o.out.join("one_stop").join(day.to_string());
        let stamp = day.format("%Y%m%d");
        let mut batch_no = 0;
        for chunk in records.chunks(2000) {
            batch_no += 1;
            let text = envelope("DongBoHoSoMC", chunk);
            write(
                &dir.join(format!("hoso_{stamp}_{batch_no:03}.json")),
                text.as_bytes(),
                &mut sum,
            )?;
        }
        if records.is_empty() {
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        }
        if o.defects > 0.0 {
            let p = (o.defects * 20.0).min(1.0);
            if rng.random_bool(p) && !records.is_empty() {
                // A re-delivery of the day's first batch under a later name: the union wins nothing new.
                let n = records.len().min(2000);
                write(
                    &dir.join(format!("hoso_{stamp}_{:03}_r.json", 1)),
                    envelope("DongBoHoSoMC", &records[..n]).as_bytes(),
                    &mut sum,
                )?;
            }
            if rng.random_bool(p) {
                let text = envelope("DongBoHoSoMC", &records[..records.len().min(50)]);
                write(
                    &dir.join(format!("hoso_{stamp}_zz_truncated.json")),
                    &text.as_bytes()[..text.len() / 2],
                    &mut sum,
                )?;
            }
            if rng.random_bool(p) {
                write(
                    &dir.join(format!("hoso_{stamp}_zz_empty.json")),
                    b"",
                    &mut sum,
                )?;
            }
            if rng.random_bool(p) {
                write(
                    &dir.join(format!("hoso_{stamp}_zz_error.json")),
                    b"<html><body>502 Bad Gateway</body></html>",
                    &mut sum,
                )?;
            }
        }
    }
    Ok(sum)
}

fn gen_catalog(o: &GenOptions, procs: &[Procedure]) -> Result<GenSummary> {
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed ^ 0xCA7A_1060);
    let mut sum = GenSummary::default();
    for (i, day) in days(o).enumerate() {
        if i % 30 != 0 {
            continue; // a snapshot every 30 days, not every day
        }
        let mut recs = Vec::new();
        for p in procs {
            let mut s = String::new();
            let mut ob = Obj::new(&mut s);
            let can = p.days >= 5 && rng.random_bool(0.4);
            let reviewed = can && rng.random_bool(0.3 + 0.6 * (i as f64 / 365.0).min(1.0));
            ob.s("MaTTHC", &p.code)
                .s("TenTTHC", &p.name)
                .s("CapThucHien", p.level);
            if rng.random_bool(0.5) {
                ob.raw("ThoiHanGiaiQuyet", &p.days.to_string())
            } else {
                ob.s("ThoiHanGiaiQuyet", &p.days.to_string())
            };
            ob.s("CoTheRutNgan", if can { "1" } else { "0" })
                .s("DaRaSoat", if reviewed { "1" } else { "0" });
            ob.s(
                "NgayRaSoat",
                &if reviewed {
                    ymdhms(at(day, &mut rng))
                } else {
                    String::new()
                },
            );
            ob.end();
            if o.defects > 0.0 && rng.random_bool(o.defects.min(1.0)) {
                s = s.replace(
                    &format!("\"ThoiHanGiaiQuyet\":\"{}\"", p.days),
                    "\"ThoiHanGiaiQuyet\":\"mười\"",
                );
                s = s.replace(
                    &format!("\"ThoiHanGiaiQuyet\":{}", p.days),
                    "\"ThoiHanGiaiQuyet\":true",
                );
            }
            recs.push(s);
        }
        let dir = o.out.join("one_stop").join(day.to_string());
        write(
            &dir.join(format!("thutuc_{}.json", day.format("%Y%m%d"))),
            envelope("LayThuTuc", &recs).as_bytes(),
            &mut sum,
        )?;
    }
    Ok(sum)
}

struct Doc {
    id: String,
    notation: String,
    doc_type: &'static str,
    legal: bool,
    plan_deadline: Option<NaiveDate>,
    outgoing: bool,
    unit: usize,
    summary: String,
    issued: Option<NaiveDateTime>,
    arrived: Option<NaiveDateTime>,
    process_due: Option<NaiveDateTime>,
    completed: Option<NaiveDateTime>,
    urgency: &'static str,
    signer: String,
    electronic: bool,
}

const DOC_HEADERS: [&str; 17] = [
    "Mã văn bản",
    "Số ký hiệu",
    "Loại văn bản",
    "Là VBQPPL",
    "Hạn ban hành theo kế hoạch",
    "Chiều",
    "Đơn vị",
    "Trích yếu",
    "Ngày ban hành",
    "Ngày đến",
    "Hạn xử lý",
    "Ngày hoàn thành",
    "Độ khẩn",
    "Độ mật",
    "Người ký",
    "Gửi liên thông",
    "Trạng thái",
];

fn dmy_hm(t: Option<NaiveDateTime>) -> String {
    t.map(|t| t.format("%d/%m/%Y %H:%M").to_string())
        .unwrap_or_default()
}

impl Doc {
    fn row(&self, day: NaiveDate, units: &[SynthUnit]) -> Vec<String> {
        let done = |t: Option<NaiveDateTime>| t.filter(|t| t.date() <= day);
        let state = if self.outgoing {
            if done(self.issued).is_some() {
                "Đã ban hành"
            } else {
                "Đang xử lý"
            }
        } else if done(self.completed).is_some() {
            "Đã xử lý"
        } else {
            "Đang xử lý"
        };
        vec![
            self.id.clone(),
            self.notation.clone(),
            self.doc_type.to_string(),
            if self.legal { "Có" } else { "Không" }.to_string(),
            self.plan_deadline
                .map(|d| d.format("%d/%m/%Y").to_string())
                .unwrap_or_default(),
            if self.outgoing { "Đi" } else { "Đến" }.to_string(),
            units[self.unit].code.clone(),
            self.summary.clone(),
            if self.outgoing {
                dmy_hm(done(self.issued))
            } else {
                dmy_hm(self.issued)
            },
            dmy_hm(self.arrived),
            dmy_hm(self.process_due),
            dmy_hm(done(self.completed)),
            self.urgency.to_string(),
            "Thường".to_string(),
            if self.outgoing {
                self.signer.clone()
            } else {
                String::new()
            },
            if self.outgoing && self.electronic {
                "Có"
            } else {
                "Không"
            }
            .to_string(),
            state.to_string(),
        ]
    }
}

fn rfc(t: NaiveDateTime) -> String {
    format!("{}+07:00", t.format("%Y-%m-%dT%H:%M:%S"))
}

fn gen_documents(o: &GenOptions, units: &[SynthUnit]) -> Result<GenSummary> {
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed ^ 0x10FF_1CE5);
    let mut sum = GenSummary::default();
    let mut pending: BTreeMap<NaiveDate, Vec<usize>> = BTreeMap::new();
    let mut docs: Vec<Doc> = Vec::new();
    let mut serial = 0u64;
    let mut event_serial = 0u64;
    let missing_day =
        (o.defects > 0.0).then(|| o.from + Duration::days(((o.to - o.from).num_days() / 3).max(0)));
    let mut pending_events: BTreeMap<NaiveDate, Vec<String>> = BTreeMap::new();
    for day in days(o) {
        for _ in 0..daily_volume(600.0 * o.scale, day, &mut rng) {
            serial += 1;
            let outgoing = rng.random_bool(0.45);
            let unit = loop {
                let i = rng.random_range(0..units.len());
                if units[i].valid_on(day) {
                    break i;
                }
            };
            let legal = outgoing && rng.random_bool(0.03);
            let t = at(day, &mut rng);
            let mut summary = format!(
                "V/v triển khai kế hoạch cải cách hành chính năm {}",
                day.year()
            );
            if rng.random_bool(0.1) {
                summary.push_str(", \"khẩn\"\ntheo chỉ đạo của UBND tỉnh");
            }
            let mut d = Doc {
                id: format!("VB{:08}", serial),
                notation: format!(
                    "{}/{}-UBND",
                    serial % 9000 + 1,
                    if outgoing { "QĐ" } else { "CV" }
                ),
                doc_type: if legal {
                    "Quyết định"
                } else {
                    DOC_TYPES[rng.random_range(0..6)]
                },
                legal,
                plan_deadline: None,
                outgoing,
                unit,
                summary,
                issued: None,
                arrived: None,
                process_due: None,
                completed: None,
                urgency: [
                    "Thường",
                    "Thường",
                    "Thường",
                    "Khẩn",
                    "Thượng khẩn",
                    "Hỏa tốc",
                ][rng.random_range(0..6)],
                signer: official(&mut rng),
                electronic: rng.random_bool(0.85),
            };
            let mut vdays = vec![day];
            if outgoing {
                let issue_day = day + Duration::days(rng.random_range(0..3));
                d.issued = Some(at(issue_day, &mut rng).max(t));
                if legal {
                    let slack = rng.random_range(-5..20);
                    d.plan_deadline = Some(issue_day + Duration::days(slack));
                }
                if issue_day != day {
                    vdays.push(issue_day);
                }
                // Signing events on the issue day.
                if rng.random_bool(0.9) {
                    event_serial += 1;
                    let signing = d.issued.unwrap() - Duration::minutes(rng.random_range(1..120));
                    let r: f64 = rng.random();
                    let (nb, na, revoked) = if r < 0.01 {
                        (
                            signing - Duration::days(800),
                            signing - Duration::days(5),
                            None,
                        )
                    } else if r < 0.015 {
                        (
                            signing + Duration::days(2),
                            signing + Duration::days(700),
                            None,
                        )
                    } else if r < 0.02 {
                        (
                            signing - Duration::days(300),
                            signing + Duration::days(400),
                            Some(signing - Duration::days(3)),
                        )
                    } else {
                        (
                            signing - Duration::days(300),
                            signing + Duration::days(400),
                            None,
                        )
                    };
                    let tsa = rng.random_bool(0.2).then(|| signing + Duration::seconds(2));
                    let mut s = String::with_capacity(600);
                    let mut ob = Obj::new(&mut s);
                    ob.s("event_id", &format!("EV{:09}", event_serial))
                        .s("doc_id", &d.id)
                        .s("unit_code", &units[unit].code);
                    ob.s(
                        "signer",
                        &format!("CN={}, O={}, C=VN", d.signer, units[unit].name),
                    );
                    ob.s(
                        "sig_type",
                        if rng.random_bool(0.7) {
                            "PERSONAL"
                        } else {
                            "ORGANIZATION"
                        },
                    );
                    ob.s("cert_serial", &format!("{:016x}", rng.random::<u64>()));
                    ob.s(
                        "issuer",
                        "CN=CA phục vụ các cơ quan Nhà nước G2, O=Ban Cơ yếu Chính phủ, C=VN",
                    );
                    ob.s("cert_not_before", &rfc(nb))
                        .s("cert_not_after", &rfc(na));
                    match revoked {
                        Some(r) => ob.s("cert_revoked_at", &rfc(r)),
                        None => ob.raw("cert_revoked_at", "null"),
                    };
                    ob.s("signing_time", &rfc(signing));
                    if let Some(t) = tsa {
                        ob.s(
                            "tsa_time",
                            &format!("{}Z", (t - Duration::hours(7)).format("%Y-%m-%dT%H:%M:%S")),
                        );
                    }
                    ob.s(
                        "doc_sha256",
                        &format!(
                            "{:016x}{:016x}{:016x}{:016x}",
                            rng.random::<u64>(),
                            rng.random::<u64>(),
                            rng.random::<u64>(),
                            rng.random::<u64>()
                        ),
                    );
                    ob.end();
                    if o.defects > 0.0 && rng.random_bool(o.defects.min(1.0)) {
                        s = match rng.random_range(0..4) {
                            0 => s.replacen(
                                &format!("\"event_id\":\"EV{:09}\"", event_serial),
                                "\"event_id\":\"\"",
                                1,
                            ),
                            1 => s.replacen(
                                &format!("\"signing_time\":\"{}\"", rfc(signing)),
                                &format!(
                                    "\"signing_time\":\"{}\"",
                                    signing.format("%Y-%m-%dT%H:%M:%S")
                                ),
                                1,
                            ),
                            2 => s.replacen(
                                &format!("\"unit_code\":\"{}\"", units[unit].code),
                                "\"unit_code\":\"000.99.99.H40\"",
                                1,
                            ),
                            _ => s.replacen("\"sig_type\":\"", "\"sig_type\":1,\"x\":\"", 1),
                        };
                    }
                    pending_events.entry(signing.date()).or_default().push(s);
                }
            } else {
                d.arrived = Some(t);
                d.issued = Some(t - Duration::days(rng.random_range(1..5)));
                if rng.random_bool(0.7) {
                    let due = day + Duration::days(rng.random_range(5..16));
                    d.process_due = Some(at(due, &mut rng));
                    let finish = if rng.random_bool(0.9) {
                        day + Duration::days(rng.random_range(0..((due - day).num_days() + 1)))
                    } else {
                        due + Duration::days(rng.random_range(1..10))
                    };
                    d.completed = Some(at(finish, &mut rng));
                    if finish != day {
                        vdays.push(finish);
                    }
                }
            }
            let idx = docs.len();
            for vd in vdays {
                pending.entry(vd).or_default().push(idx);
            }
            docs.push(d);
            sum.documents += 1;
        }
        let todays = pending.remove(&day).unwrap_or_default();
        let events = pending_events.remove(&day).unwrap_or_default();
        if missing_day == Some(day) {
            continue;
        }
        let stray = o.defects > 0.0 && rng.random_bool((o.defects * 10.0).min(1.0));
        let crlf = o.defects > 0.0 && rng.random_bool((o.defects * 10.0).min(1.0));
        let no_bom = o.defects > 0.0 && rng.random_bool((o.defects * 10.0).min(1.0));
        let mut w = csv::WriterBuilder::new()
            .terminator(if crlf {
                csv::Terminator::CRLF
            } else {
                csv::Terminator::Any(b'\n')
            })
            .flexible(true)
            .from_writer(Vec::new());
        let mut header: Vec<&str> = DOC_HEADERS.to_vec();
        if stray {
            header.push("Ghi chú");
        }
        w.write_record(&header)
            .map_err(|e| Error::Internal(e.to_string()))?;
        for idx in todays {
            let mut row = docs[idx].row(day, units);
            if stray {
                row.push("ghi chú thêm".into());
            }
            if o.defects > 0.0 && rng.random_bool(o.defects.min(1.0)) {
                match rng.random_range(0..5) {
                    0 => {
                        row.pop();
                    }
                    1 => row[0] = String::new(),
                    2 => row[6] = "000.99.99.H40".into(),
                    3 => row[8] = "31/02/2022".into(),
                    _ => row[16] = "Đã hủy".into(),
                }
            }
            w.write_record(&row)
                .map_err(|e| Error::Internal(e.to_string()))?;
            sum.document_versions += 1;
        }
        let body = w.into_inner().map_err(|e| Error::Internal(e.to_string()))?;
        let mut data = if no_bom {
            Vec::new()
        } else {
            b"\xEF\xBB\xBF".to_vec()
        };
        data.extend_from_slice(&body);
        let dir = o.out.join("ioffice").join(day.to_string());
        write(
            &dir.join(format!("vanban_{}.csv", day.format("%Y%m%d"))),
            &data,
            &mut sum,
        )?;
        if o.defects > 0.0 && rng.random_bool((o.defects * 10.0).min(1.0)) {
            write(
                &dir.join(format!("vanban_{}_zz_header.csv", day.format("%Y%m%d"))),
                "\u{feff}Mã văn bản,Trích yếu\nVB1,x\n".as_bytes(),
                &mut sum,
            )?;
        }
        let sdir = o.out.join("signatures").join(day.to_string());
        let mut nd = String::new();
        for (i, e) in events.iter().enumerate() {
            nd.push_str(e);
            nd.push('\n');
            if i % 500 == 499 {
                nd.push('\n'); // blank lines are skipped
            }
        }
        sum.signature_events += events.len() as u64;
        if o.defects > 0.0 && rng.random_bool((o.defects * 10.0).min(1.0)) {
            nd.push_str("{\"event_id\":\"EV-trunc\",\"unit_co");
        }
        write(
            &sdir.join(format!("kyso_{}.ndjson", day.format("%Y%m%d"))),
            nd.as_bytes(),
            &mut sum,
        )?;
    }
    Ok(sum)
}

/// Write the landing area.
/// The ranking's manual inputs of every year the range touches, in `reference/`: the appraisal
/// council's points (`par_inputs_<Y>.csv`, criterion `appraisal`, 24 to 42) and the survey's
/// (`survey_<Y>.csv`, 15 to 28) for each department and district. The last district is left out
/// of the survey, as happens when a survey round misses a unit, so the report shows its flag.
fn gen_par_inputs(o: &GenOptions, units: &[SynthUnit], sum: &mut GenSummary) -> Result<()> {
    for year in o.from.year()..=o.to.year() {
        // The units a scheme of that year ranks: departments and districts, or, once the
        // districts are gone, departments and communes (as of the year's last day).
        let end = NaiveDate::from_ymd_opt(year, 12, 31).expect("a year's last day");
        let two_tier = o.reorganise.is_some_and(|r| r <= end);
        let ranked: Vec<&SynthUnit> = units
            .iter()
            .filter(|u| match u.tier {
                "so-ban-nganh" => true,
                "quan-huyen" => !two_tier,
                _ => two_tier && u.valid_on(end),
            })
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(o.seed ^ 0x0050_A000 ^ year as u64);
        let mut par = String::from("unit_code,criterion_id,points\n");
        let mut survey = String::from("unit_code,points\n");
        let last_district = ranked
            .iter()
            .rev()
            .find(|u| u.tier == "quan-huyen")
            .map(|u| &u.code);
        for u in &ranked {
            let _ = writeln!(
                par,
                "{},appraisal,{:.2}",
                u.code,
                rng.random_range(24.0..42.0)
            );
            if Some(&u.code) != last_district {
                let _ = writeln!(survey, "{},{:.2}", u.code, rng.random_range(15.0..28.0));
            }
        }
        let dir = o.out.join("reference");
        write(
            &dir.join(format!("par_inputs_{year}.csv")),
            par.as_bytes(),
            sum,
        )?;
        write(
            &dir.join(format!("survey_{year}.csv")),
            survey.as_bytes(),
            sum,
        )?;
    }
    Ok(())
}

pub fn generate(o: &GenOptions) -> Result<GenSummary> {
    if o.to < o.from {
        return Err(Error::Usage(format!(
            "--to {} is before --from {}",
            o.to, o.from
        )));
    }
    if o.scale.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
        || !(0.0..=1.0).contains(&o.defects)
    {
        return Err(Error::Usage(
            "--scale must be > 0 and --defects within 0..1".into(),
        ));
    }
    let procs = procedures();
    let mut sum = GenSummary::default();
    let (units, changes) = match o.reorganise {
        None => (units(), Vec::new()),
        Some(day) => reorganise(units(), day),
    };
    // Validity columns only across a reorganisation: the plain landing keeps the plain seed.
    let dated = o.reorganise.is_some();
    let mut csv = String::from("unit_code,unit_name,tier,parent_code");
    csv.push_str(if dated {
        ",valid_from,valid_to\n"
    } else {
        "\n"
    });
    let show = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    for u in &units {
        let _ = write!(csv, "{},{},{},{}", u.code, u.name, u.tier, u.parent);
        if dated {
            let _ = write!(csv, ",{},{}", show(u.valid_from), show(u.valid_to));
        }
        csv.push('\n');
    }
    let reference = o.out.join("reference");
    write(&reference.join("units.csv"), csv.as_bytes(), &mut sum)?;
    if dated {
        let mut csv = String::from("effective_date,old_code,new_code\n");
        for (d, old, new) in &changes {
            let _ = writeln!(csv, "{d},{old},{new}");
        }
        let path = reference.join(crate::config::units::CHANGES_FILE);
        write(&path, csv.as_bytes(), &mut sum)?;
    }
    gen_par_inputs(o, &units, &mut sum)?;
    let ((a, b), c) = rayon::join(
        || {
            rayon::join(
                || gen_dossiers(o, &units, &procs),
                || gen_catalog(o, &procs),
            )
        },
        || gen_documents(o, &units),
    );
    sum += a?;
    sum += b?;
    sum += c?;
    Ok(sum)
}
