//! Test harness: a temporary landing area and warehouse, the shipped pipeline YAML, and helpers
//! to read back what a run staged and quarantined.

use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use cchc::config::{self, Config, Overrides};
use cchc::run;
use cchc::store::runs::RunRecord;
use chrono::NaiveDate;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

pub const KEY: &[u8] = b"test-key-0123456789abcdef";

pub const UNITS: &str = "unit_code,unit_name,tier,parent_code
000.00.15.H40,Sở Nội vụ,so-ban-nganh,
000.00.21.H40,Thành phố Vinh,quan-huyen,
000.01.21.H40,Phường Hưng Bình,xa-phuong,000.00.21.H40
";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub cfg: Config,
}

impl Harness {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let landing = dir.path().join("landing");
        std::fs::create_dir_all(landing.join("reference")).unwrap();
        std::fs::write(landing.join("reference/units.csv"), UNITS).unwrap();
        let cfg = config::load(
            &repo().join("configs/local.yaml"),
            &Overrides {
                landing: Some(landing.display().to_string()),
                warehouse: Some(dir.path().join("warehouse").display().to_string()),
                units: None,
                ..Default::default()
            },
        )
        .expect("shipped config is valid");
        Harness { dir, cfg }
    }

    pub fn landing(&self) -> PathBuf {
        self.dir.path().join("landing")
    }

    pub fn warehouse(&self) -> PathBuf {
        self.dir.path().join("warehouse")
    }

    /// Write a landing file `<system>/<day>/<name>`.
    pub fn file(&self, system: &str, day: &str, name: &str, bytes: impl AsRef<[u8]>) {
        let d = self.landing().join(system).join(day);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), bytes).unwrap();
    }

    pub fn run(&self, days: &[&str]) -> RunRecord {
        let (rec, err) = run::run(
            &self.cfg,
            "test",
            days.iter().map(|d| day(d)).collect(),
            KEY,
        );
        if let Some(e) = err {
            panic!("run failed: {e}");
        }
        rec
    }

    /// All rows of every Parquet file under `<warehouse>/<area>/<table>`.
    pub fn read(&self, area: &str, table: &str) -> Vec<RecordBatch> {
        parquet_files(&self.warehouse().join(area).join(table))
            .iter()
            .flat_map(|p| read_parquet(p))
            .collect()
    }

    /// (file, position, reason) of every quarantined entry of a source, ordered.
    pub fn quarantine(&self, source: &str) -> Vec<(String, Option<i64>, String)> {
        let mut out = Vec::new();
        for b in self.read("quarantine", source) {
            let f = b.column_by_name("source_file").unwrap().as_string::<i32>();
            let p = b
                .column_by_name("position")
                .unwrap()
                .as_primitive::<arrow::datatypes::Int64Type>();
            let r = b.column_by_name("reason").unwrap().as_string::<i32>();
            for i in 0..b.num_rows() {
                out.push((
                    f.value(i).to_string(),
                    (!p.is_null(i)).then(|| p.value(i)),
                    r.value(i).to_string(),
                ));
            }
        }
        out.sort();
        out
    }

    /// Values of one string column of a staging table, in (file, position) order.
    pub fn staged_strings(&self, table: &str, column: &str) -> Vec<Option<String>> {
        let mut rows: Vec<(String, i64, Option<String>)> = Vec::new();
        for b in self.read("staging", table) {
            let f = b.column_by_name("source_file").unwrap().as_string::<i32>();
            let p = b
                .column_by_name("source_position")
                .unwrap()
                .as_primitive::<arrow::datatypes::Int64Type>();
            let c =
                arrow::compute::cast(b.column_by_name(column).unwrap(), &DataType::Utf8).unwrap();
            let c = c.as_string::<i32>();
            for i in 0..b.num_rows() {
                rows.push((
                    f.value(i).to_string(),
                    p.value(i),
                    (!c.is_null(i)).then(|| c.value(i).to_string()),
                ));
            }
        }
        rows.sort();
        rows.into_iter().map(|r| r.2).collect()
    }

    pub fn staged_count(&self, table: &str) -> usize {
        self.read("staging", table)
            .iter()
            .map(|b| b.num_rows())
            .sum()
    }
}

pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(parquet_files(&p));
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

pub fn read_parquet(p: &Path) -> Vec<RecordBatch> {
    let f = std::fs::File::open(p).unwrap();
    ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

/// Every string value in a batch, nested lists and structs included.
pub fn all_strings(a: &dyn Array, out: &mut Vec<String>) {
    match a.data_type() {
        DataType::Utf8 => {
            let s = a.as_string::<i32>();
            out.extend(
                (0..s.len())
                    .filter(|i| !s.is_null(*i))
                    .map(|i| s.value(i).to_string()),
            );
        }
        DataType::List(_) => all_strings(a.as_list::<i32>().values().as_ref(), out),
        DataType::Struct(_) => {
            for c in a.as_struct().columns() {
                all_strings(c.as_ref(), out);
            }
        }
        _ => {}
    }
}

/// A dossier record of the sync envelope with every field filled; `set` replaces fields
/// (a JSON value per key; `null` in `remove` deletes the key).
pub fn dossier(id: &str, set: serde_json::Value) -> serde_json::Value {
    let mut d = serde_json::json!({
        "MaHoSo": id, "MaTTHC": "1.005129", "TenTTHC": "Đăng ký khai sinh",
        "MaLinhVuc": "G01", "TenLinhVuc": "Hộ tịch", "DonViXuLy": "000.01.21.H40",
        "KenhThucHien": "2", "MucDo": "4", "ChuHoSo": "Nguyễn Văn Ánh", "LoaiDoiTuong": "1",
        "MaDoiTuong": "040090001234", "SoDienThoai": "0912345678", "Email": "anh.nv@example.vn",
        "TrichYeuHoSo": "Đăng ký khai sinh cho con", "NgayNopHoSo": "20220301080000",
        "NgayTiepNhan": "20220301090000", "NgayHenTra": "20220304170000", "TrangThaiHoSo": "4",
        "NgayKetThucXuLy": "", "NgayTra": "", "TrangThaiDongBoDVC": "1", "KetQuaDanhGia": ""
    });
    let obj = d.as_object_mut().unwrap();
    for (k, v) in set.as_object().unwrap() {
        if v.as_str() == Some("<absent>") {
            obj.remove(k);
        } else {
            obj.insert(k.clone(), v.clone());
        }
    }
    d
}

pub fn envelope(service: &str, records: &[serde_json::Value]) -> String {
    serde_json::json!({"service": service, "isUpdating": false, "data": records}).to_string()
}

/// The staging tables, marts and results a warehouse session offers, for whole-warehouse
/// comparisons.
pub const TABLES: &[&str] = &[
    "dossiers",
    "documents",
    "signature_events",
    "procedures",
    "mart_dossiers",
    "mart_documents",
    "mart_signatures",
    "mart_procedures",
    "target_results",
    "target_results_district",
    "plan_targets",
];

/// The binary on the shipped pipelines with `landing` and `warehouse` (paths or URLs), the test
/// key, and `info` log lines on stderr.
pub fn bin(landing: &str, warehouse: &str) -> std::process::Command {
    bin_with(&repo().join("configs/local.yaml"), landing, warehouse)
}

/// [`bin`] with another config file.
pub fn bin_with(config: &Path, landing: &str, warehouse: &str) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_cchc"));
    for v in [
        "CCHC_CONFIG",
        "CCHC_LANDING",
        "CCHC_WAREHOUSE",
        "CCHC_UNITS",
        "CCHC_FAILPOINT",
    ] {
        c.env_remove(v);
    }
    c.arg("--config")
        .arg(config)
        .arg("--landing")
        .arg(landing)
        .arg("--warehouse")
        .arg(warehouse)
        .env("CCHC_PII_KEY", std::str::from_utf8(KEY).unwrap())
        .env("CCHC_LOG", "info");
    c
}

/// Generate synthetic extracts for `from..=to` into `<dir>/landing`.
pub fn generate(dir: &Path, from: &str, to: &str, scale: &str) -> PathBuf {
    let landing = dir.join("landing");
    let st = std::process::Command::new(env!("CARGO_BIN_EXE_cchc"))
        .args(["gen", "--from", from, "--to", to, "--scale", scale, "--out"])
        .arg(&landing)
        .output()
        .unwrap();
    assert!(st.status.success(), "gen failed: {st:?}");
    landing
}

/// A backfill whose exit code must be 0 or 1 (1: a target fails, which synthetic data may do).
pub fn backfill_ok(landing: &str, warehouse: &str, from: &str, to: &str, extra: &[&str]) {
    let out = bin(landing, warehouse)
        .args(["backfill", "--from", from, "--to", to])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "backfill failed: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Config of the shipped pipelines on `landing` and `warehouse`, for in-process reads.
pub fn config_for(landing: &str, warehouse: &str) -> Config {
    config::load(
        &repo().join("configs/local.yaml"),
        &Overrides {
            landing: Some(landing.to_string()),
            warehouse: Some(warehouse.to_string()),
            units: None,
            ..Default::default()
        },
    )
    .expect("shipped config is valid")
}

/// One query's rows as JSON lines, sorted (row order is not part of any contract).
pub fn query_lines(cfg: &Config, sql: &str) -> Result<Vec<String>, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let units = rt
        .block_on(cchc::store::location::read_units(&cfg.units))
        .ok();
    let out = rt
        .block_on(cchc::sql::query_warehouse(
            cfg,
            units.as_ref(),
            sql,
            cchc::sql::OutputFormat::Json,
        ))
        .map_err(|e| e.to_string())?;
    let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
    lines.sort();
    Ok(lines)
}

/// Every row of every table of [`TABLES`], per table.
pub fn dump(cfg: &Config) -> Vec<(String, Vec<String>)> {
    TABLES
        .iter()
        .map(|t| {
            let rows = query_lines(cfg, &format!("SELECT * FROM {t}"))
                .unwrap_or_else(|e| panic!("{t} is not readable: {e}"));
            (t.to_string(), rows)
        })
        .collect()
}

/// Assert two dumps are equal table by table, naming the first table and row that differ.
pub fn assert_same(a: &[(String, Vec<String>)], b: &[(String, Vec<String>)], what: &str) {
    for ((t, ra), (_, rb)) in a.iter().zip(b) {
        if ra != rb {
            let first = ra
                .iter()
                .zip(rb)
                .find(|(x, y)| x != y)
                .map(|(x, y)| format!("\n  {x}\n  {y}"))
                .unwrap_or_default();
            panic!(
                "{what}: table {t} differs ({} rows vs {} rows){first}",
                ra.len(),
                rb.len()
            );
        }
    }
}

/// Per source, the staged count the ledger records (what the published staging must hold).
pub fn ledger_staged(warehouse: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for source in ["dossiers", "documents", "signature_events", "procedures"] {
        let mut n = 0;
        if let Ok(rd) = std::fs::read_dir(warehouse.join("ledger").join(source)) {
            // Only entries: a killed put may leave the store's temporary file beside them.
            for e in rd
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            {
                let v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
                n += v["staged"].as_u64().unwrap();
            }
        }
        out.push((source.to_string(), n));
    }
    out
}

/// A copy of the shipped configs and pipelines in `dir`, for a test to add a pipeline or a key
/// to; the path of its environment config.
pub fn shipped_project(dir: &Path) -> PathBuf {
    copy_tree(&repo().join("configs"), &dir.join("configs"));
    copy_tree(&repo().join("pipelines"), &dir.join("pipelines"));
    dir.join("configs/local.yaml")
}

/// Copy a folder tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Every file of a tree with its content, to tell that nothing changed.
pub fn tree(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Spawn a long-running `cmd` (a server, a cluster node) with its log in `log`, and wait for the
/// first line it prints on stdout (where it says its address).
pub fn spawn_until_first_line(
    cmd: &mut std::process::Command,
    log: &Path,
) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().to_string())
}
