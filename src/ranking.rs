//! The yearly ranking of departments and districts (the province's PAR index), as
//! `shared/domain/TARGETS.md` ("The yearly ranking") describes it.
//!
//! Inputs: the year's scheme (`<plans>/<YYYY>/ranking.yaml`, see `crate::config::ranking`), the
//! year's published target results (departments: `target_results`; districts:
//! `target_results_district`, each district counted with its communes), and the manual input files
//! in `<landing>/reference/` (`par_inputs_<Y>.csv`: `unit_code,criterion_id,points`;
//! `survey_<Y>.csv`: `unit_code,points`).
//!
//! Per unit of a tier and criterion: the measured value behind it (a ratio, or a count for a
//! count rule), its points by the rule, and a flag: `no_data` (no figure for the unit: 0 points),
//! `missing_input` (the unit, or the whole file, is missing from the input: 0 points), `capped`
//! (input points above the maximum: the maximum). Points are kept to 4 decimals, totals are their
//! sum. Rank: competition ranking within the tier by total, descending, totals within 0.001 tied
//! (rank = 1 + the number of units whose total is more than 0.001 higher). Band: the first band
//! from the top whose minimum the total reaches.
//!
//! Written: `marts/par_scores/year=<Y>/` and `marts/par_ranking/year=<Y>/` (published by
//! `marts/_ranking.json`, see `crate::publish`; the caller vacuums the version it supersedes), and
//! the report `reports/par_<Y>.html` (one
//! self-contained page, Vietnamese labels) and `reports/par_<Y>.xlsx`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::config::ranking::{Rule, Scheme};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::ingest::units::Units;
use crate::storage::Location;

/// One target figure of one unit for the year.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub numerator: i64,
    pub denominator: i64,
    /// The ratio (or the count of a count target); `None` without data.
    pub value: Option<f64>,
    pub status: String,
    pub sample_keys: Vec<String>,
}

/// The year's figures the ranking reads.
#[derive(Debug, Clone, Default)]
pub struct YearResults {
    pub as_of: Option<NaiveDate>,
    pub is_final: bool,
    /// (target_id, unit_code) → figure, each unit alone (departments).
    pub units: HashMap<(String, String), Measured>,
    /// (target_id, district code) → figure, the district with its communes.
    pub districts: HashMap<(String, String), Measured>,
}

/// A manual input file: points by (unit, criterion) or, for a file without `criterion_id`, by
/// unit (`None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputTable {
    pub file: String,
    pub points: HashMap<(String, Option<String>), f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    NoData,
    MissingInput,
    Capped,
}

impl Flag {
    pub fn name(self) -> &'static str {
        match self {
            Flag::NoData => "no_data",
            Flag::MissingInput => "missing_input",
            Flag::Capped => "capped",
        }
    }

    pub fn vi(self) -> &'static str {
        match self {
            Flag::NoData => "Không có dữ liệu: 0 điểm",
            Flag::MissingInput => "Không có trong tệp đầu vào: 0 điểm",
            Flag::Capped => "Điểm vượt mức tối đa: tính bằng mức tối đa",
        }
    }
}

/// A row of `par_scores`, with what the report shows beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub tier: String,
    pub unit_code: String,
    pub criterion_id: String,
    pub value: Option<f64>,
    pub points: f64,
    pub max_points: f64,
    pub flag: Option<Flag>,
    /// The figure behind a measured criterion.
    pub measured: Option<Measured>,
}

/// A row of `par_ranking`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub tier: String,
    pub unit_code: String,
    pub total: f64,
    pub rank: u32,
    pub band: String,
    /// How many of the unit's criteria are flagged.
    pub flagged: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Ranking {
    pub year: i32,
    pub scores: Vec<Score>,
    pub ranking: Vec<Ranked>,
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Read an input file: `unit_code,criterion_id,points` or `unit_code,points`. A bad row is an
/// error naming the file, line and reason (the office fixes the file; nothing is guessed).
pub fn parse_input(bytes: &[u8], file: &str) -> Result<InputTable> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let bad = |line: u64, msg: String| Error::Usage(format!("{file}:{line}: {msg}"));
    let headers = rdr.headers().map_err(|e| bad(1, e.to_string()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(u), Some(p)) = (col("unit_code"), col("points")) else {
        return Err(bad(
            1,
            "the header must be `unit_code,criterion_id,points` or `unit_code,points`".into(),
        ));
    };
    let c = col("criterion_id");
    let mut points = HashMap::new();
    for rec in rdr.records() {
        let rec =
            rec.map_err(|e| bad(e.position().map(|p| p.line()).unwrap_or(0), e.to_string()))?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let unit = rec.get(u).unwrap_or("").to_string();
        if unit.is_empty() {
            return Err(bad(line, "empty unit_code".into()));
        }
        let criterion = c.map(|i| rec.get(i).unwrap_or("").to_string());
        let text = rec.get(p).unwrap_or("");
        let v: f64 = text
            .replace(',', ".")
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| bad(line, format!("points `{text}` is not a number ≥ 0")))?;
        if points
            .insert((unit.clone(), criterion.clone()), v)
            .is_some()
        {
            return Err(bad(
                line,
                format!(
                    "unit {unit}{} is given points twice",
                    criterion
                        .map(|c| format!(", criterion {c}"))
                        .unwrap_or_default()
                ),
            ));
        }
    }
    Ok(InputTable {
        file: file.to_string(),
        points,
    })
}

/// Score every unit of every tier of the scheme and rank them.
pub fn score(
    scheme: &Scheme,
    year: i32,
    units: &Units,
    results: &YearResults,
    inputs: &HashMap<String, Option<InputTable>>,
) -> Ranking {
    let mut scores = Vec::new();
    let mut ranking = Vec::new();
    for tier in &scheme.tiers {
        let figures = if tier.tier == "quan-huyen" {
            &results.districts
        } else {
            &results.units
        };
        let mut members: Vec<&str> = units
            .rows
            .iter()
            .filter(|u| u.tier == tier.tier)
            .map(|u| u.unit_code.as_str())
            .collect();
        members.sort();
        let mut totals: Vec<(String, f64, usize)> = Vec::new();
        for unit in members {
            let mut total = 0.0;
            let mut flagged = 0;
            for c in &tier.criteria {
                let max = c.max_points;
                let (value, points, flag, measured) = match &c.rule {
                    Rule::Manual { input } => {
                        let given = inputs.get(input).and_then(|t| t.as_ref()).and_then(|t| {
                            t.points
                                .get(&(unit.to_string(), Some(c.id.clone())))
                                .or_else(|| t.points.get(&(unit.to_string(), None)))
                        });
                        match given {
                            None => (None, 0.0, Some(Flag::MissingInput), None),
                            Some(&v) if v > max => (Some(v), max, Some(Flag::Capped), None),
                            Some(&v) => (Some(v), v, None, None),
                        }
                    }
                    rule => {
                        let target = rule.target().unwrap_or_default();
                        let m = figures.get(&(target.to_string(), unit.to_string()));
                        match m.and_then(|m| m.value.map(|v| (v, m))) {
                            None => (None, 0.0, Some(Flag::NoData), m.cloned()),
                            Some((v, m)) => {
                                let p = match rule {
                                    Rule::Linear { goal, .. } => max * (v / goal).min(1.0),
                                    Rule::CountPenalty {
                                        per_case, floor, ..
                                    } => (max - per_case * v).max(*floor),
                                    Rule::Steps { steps, .. } => steps
                                        .iter()
                                        .find(|(min, _)| v + 1e-12 >= *min)
                                        .map(|s| s.1)
                                        .unwrap_or(0.0),
                                    Rule::Manual { .. } => 0.0,
                                };
                                (Some(v), p.clamp(0.0, max), None, Some(m.clone()))
                            }
                        }
                    }
                };
                let points = round4(points);
                total += points;
                flagged += usize::from(flag.is_some());
                scores.push(Score {
                    tier: tier.tier.clone(),
                    unit_code: unit.to_string(),
                    criterion_id: c.id.clone(),
                    value,
                    points,
                    max_points: max,
                    flag,
                    measured,
                });
            }
            totals.push((unit.to_string(), round4(total), flagged));
        }
        for (unit, total, flagged) in &totals {
            let above = totals
                .iter()
                .filter(|(_, t, _)| *t - *total > 0.001 + 1e-9)
                .count();
            ranking.push(Ranked {
                tier: tier.tier.clone(),
                unit_code: unit.clone(),
                total: *total,
                rank: above as u32 + 1,
                band: scheme.band(*total).to_string(),
                flagged: *flagged,
            });
        }
    }
    ranking.sort_by(|a, b| {
        (a.tier.as_str(), a.rank, a.unit_code.as_str()).cmp(&(
            b.tier.as_str(),
            b.rank,
            b.unit_code.as_str(),
        ))
    });
    Ranking {
        year,
        scores,
        ranking,
    }
}

pub fn scores_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("year", DataType::Int32, false),
        Field::new("tier", DataType::Utf8, false),
        Field::new("unit_code", DataType::Utf8, false),
        Field::new("criterion_id", DataType::Utf8, false),
        Field::new("value", DataType::Float64, true),
        Field::new("points", DataType::Float64, false),
        Field::new("max_points", DataType::Float64, false),
        Field::new("flag", DataType::Utf8, true),
    ]))
}

pub fn ranking_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("year", DataType::Int32, false),
        Field::new("tier", DataType::Utf8, false),
        Field::new("unit_code", DataType::Utf8, false),
        Field::new("total", DataType::Float64, false),
        Field::new("rank", DataType::Int32, false),
        Field::new("band", DataType::Utf8, false),
    ]))
}

fn strings<'a>(v: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(v))
}

pub fn batches(r: &Ranking) -> Result<(RecordBatch, RecordBatch)> {
    let s = &r.scores;
    let scores = RecordBatch::try_new(
        scores_schema(),
        vec![
            Arc::new(Int32Array::from(vec![r.year; s.len()])),
            strings(s.iter().map(|x| x.tier.as_str())),
            strings(s.iter().map(|x| x.unit_code.as_str())),
            strings(s.iter().map(|x| x.criterion_id.as_str())),
            Arc::new(Float64Array::from_iter(s.iter().map(|x| x.value))),
            Arc::new(Float64Array::from_iter_values(s.iter().map(|x| x.points))),
            Arc::new(Float64Array::from_iter_values(
                s.iter().map(|x| x.max_points),
            )),
            Arc::new(StringArray::from_iter(
                s.iter().map(|x| x.flag.map(Flag::name)),
            )),
        ],
    )?;
    let k = &r.ranking;
    let ranking = RecordBatch::try_new(
        ranking_schema(),
        vec![
            Arc::new(Int32Array::from(vec![r.year; k.len()])),
            strings(k.iter().map(|x| x.tier.as_str())),
            strings(k.iter().map(|x| x.unit_code.as_str())),
            Arc::new(Float64Array::from_iter_values(k.iter().map(|x| x.total))),
            Arc::new(Int32Array::from_iter_values(
                k.iter().map(|x| x.rank as i32),
            )),
            strings(k.iter().map(|x| x.band.as_str())),
        ],
    )?;
    Ok((scores, ranking))
}

/// What `marts/_ranking.json` records: which run's files are the ranking of each year.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RankingCommit {
    pub year: i32,
    pub run_id: String,
}

pub const RANKING_STATE: &str = "marts/_ranking.json";

pub async fn read_commits(wh: &Location) -> Result<Vec<RankingCommit>> {
    Ok(match wh.get_opt(&wh.path(RANKING_STATE)).await? {
        Some(b) => serde_json::from_slice(&b)
            .map_err(|e| Error::Internal(format!("{RANKING_STATE} is corrupt: {e}")))?,
        None => Vec::new(),
    })
}

/// Read one published results table of period `year` into figures by (target, unit).
async fn read_results(
    wh: &Location,
    published: &crate::publish::Published,
    table: &str,
    year: i32,
) -> Result<(
    HashMap<(String, String), Measured>,
    Option<(NaiveDate, bool)>,
)> {
    let folder = format!("marts/{table}/period={year}");
    let mut out = HashMap::new();
    let mut meta = None;
    let Some(run) = published.run_of(&folder) else {
        return Ok((out, meta));
    };
    let path = wh.path(&format!("{folder}/{}", crate::publish::part_name(run)));
    let Some(bytes) = wh.get_opt(&path).await? else {
        return Ok((out, meta));
    };
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
    for batch in reader {
        let b = batch?;
        let col = |n: &str| -> Result<&ArrayRef> {
            b.column_by_name(n)
                .ok_or_else(|| Error::Internal(format!("{table} has no column {n}")))
        };
        let target = col("target_id")?.as_string::<i32>();
        let unit = col("unit_code")?.as_string::<i32>();
        let num = col("numerator")?.as_primitive::<Int64Type>();
        let den = col("denominator")?.as_primitive::<Int64Type>();
        let value = col("value")?.as_primitive::<arrow::datatypes::Float64Type>();
        let status = col("status")?.as_string::<i32>();
        let as_of = col("as_of")?.as_primitive::<arrow::datatypes::Date32Type>();
        let fin = col("final")?.as_boolean();
        let keys = col("sample_keys")?.as_list::<i32>();
        for i in 0..b.num_rows() {
            if meta.is_none() {
                meta = Some((
                    crate::ingest::typing::days_to_date(as_of.value(i)),
                    fin.value(i),
                ));
            }
            let k = keys.value(i);
            let k = k.as_string::<i32>();
            out.insert(
                (target.value(i).to_string(), unit.value(i).to_string()),
                Measured {
                    numerator: num.value(i),
                    denominator: den.value(i),
                    value: (!value.is_null(i)).then(|| value.value(i)),
                    status: status.value(i).to_string(),
                    sample_keys: (0..k.len())
                        .filter(|j| !k.is_null(*j))
                        .map(|j| k.value(j).to_string())
                        .collect(),
                },
            );
        }
    }
    Ok((out, meta))
}

/// The year's published figures.
pub async fn year_results(wh: &Location, year: i32) -> Result<YearResults> {
    let published = crate::publish::Published::load(wh).await?;
    let (units, meta) = read_results(wh, &published, "target_results", year).await?;
    let (districts, _) = read_results(wh, &published, "target_results_district", year).await?;
    Ok(YearResults {
        as_of: meta.map(|m| m.0),
        is_final: meta.is_some_and(|m| m.1),
        units,
        districts,
    })
}

/// Which input files of the scheme are present in `<landing>/reference/` (`None`: absent).
pub async fn read_inputs(
    scheme: &Scheme,
    year: i32,
    landing: &Location,
) -> Result<HashMap<String, Option<InputTable>>> {
    let mut out = HashMap::new();
    for i in &scheme.inputs {
        let name = scheme.input_file(i, year);
        let path = landing.path(&format!("reference/{name}"));
        let table = match landing.get_opt(&path).await? {
            Some(b) => Some(parse_input(
                &b,
                &format!("{}/reference/{name}", landing.display),
            )?),
            None => None,
        };
        out.insert(i.name.clone(), table);
    }
    Ok(out)
}

/// What `cchc rank` produced.
pub struct RankOutcome {
    pub ranking: Ranking,
    pub results: YearResults,
    pub html: String,
    pub xlsx: Vec<u8>,
    /// Warnings for the terminal: absent input files, unknown unit codes in them.
    pub warnings: Vec<String>,
}

/// Compute the ranking of `year` from the warehouse, write its tables (published by
/// `marts/_ranking.json`) and its report. Run under the warehouse lock.
pub async fn rank(
    cfg: &Config,
    wh: &Location,
    landing: &Location,
    units: &Units,
    year: i32,
    run_id: &str,
) -> Result<RankOutcome> {
    let scheme = cfg.scheme_for(year).ok_or_else(|| {
        Error::Usage(format!(
            "no ranking scheme for {year}: add <plans>/{year}/ranking.yaml (or one of an earlier year)"
        ))
    })?;
    let results = year_results(wh, year).await?;
    if results.as_of.is_none() {
        return Err(Error::Usage(format!(
            "the warehouse has no target results for {year}: ingest the year first (cchc backfill)"
        )));
    }
    let inputs = read_inputs(scheme, year, landing).await?;
    let mut warnings = Vec::new();
    for i in &scheme.inputs {
        match inputs.get(&i.name).and_then(|t| t.as_ref()) {
            None => warnings.push(format!(
                "input `{}` ({}/reference/{}) is absent: every unit scores 0 there, flagged missing_input",
                i.name,
                landing.display,
                scheme.input_file(i, year)
            )),
            Some(t) => {
                let mut unknown: Vec<&str> = t
                    .points
                    .keys()
                    .map(|(u, _)| u.as_str())
                    .filter(|u| !units.codes.contains(*u))
                    .collect();
                unknown.sort();
                unknown.dedup();
                if !unknown.is_empty() {
                    warnings.push(format!(
                        "{}: unit codes not in units.csv, ignored: {}",
                        t.file,
                        unknown.join(", ")
                    ));
                }
            }
        }
    }
    let ranking = score(scheme, year, units, &results, &inputs);
    let (scores_batch, ranking_batch) = batches(&ranking)?;
    let html = report_html(scheme, &ranking, &results, units);
    let xlsx = report_xlsx(scheme, &ranking, units)?;
    // Write, then publish (see `crate::publish`); the caller removes the superseded version.
    for (table, batch) in [
        ("par_scores", &scores_batch),
        ("par_ranking", &ranking_batch),
    ] {
        crate::ingest::write_part(
            wh,
            &format!("marts/{table}/year={year}"),
            run_id,
            batch,
            true,
        )
        .await?;
    }
    wh.put(
        &wh.path(&format!("reports/par_{year}.html")),
        html.clone().into(),
    )
    .await?;
    wh.put(
        &wh.path(&format!("reports/par_{year}.xlsx")),
        xlsx.clone().into(),
    )
    .await?;
    let mut commits: Vec<RankingCommit> = read_commits(wh)
        .await?
        .into_iter()
        .filter(|c| c.year != year)
        .collect();
    commits.push(RankingCommit {
        year,
        run_id: run_id.to_string(),
    });
    commits.sort_by_key(|c| c.year);
    let json = serde_json::to_vec_pretty(&commits).map_err(|e| Error::Internal(e.to_string()))?;
    wh.put(&wh.path(RANKING_STATE), json.into()).await?;
    Ok(RankOutcome {
        ranking,
        results,
        html,
        xlsx,
        warnings,
    })
}

/// A number the Vietnamese way: decimal comma.
pub fn vi_number(x: f64, decimals: usize) -> String {
    format!("{x:.decimals$}").replace('.', ",")
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A unit's name from units.csv (its code when unknown).
pub fn unit_name<'a>(units: &'a Units, code: &'a str) -> &'a str {
    units
        .rows
        .iter()
        .find(|u| u.unit_code == code)
        .map(|u| u.unit_name.as_str())
        .unwrap_or(code)
}

/// An id usable in a URL fragment.
fn anchor(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| {
            p.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("_")
}

/// A measured value as the report shows it: `45/50 = 90,00%`, or the count.
fn shown_value(rule: &Rule, m: &Measured) -> String {
    match (rule, m.value) {
        (_, None) => format!("{}/{}", m.numerator, m.denominator),
        (Rule::CountPenalty { .. }, Some(v)) => format!("{} hồ sơ", v as i64),
        (_, Some(v)) => format!(
            "{}/{} = {}%",
            m.numerator,
            m.denominator,
            vi_number(v * 100.0, 2)
        ),
    }
}

const CSS: &str = "body{font-family:'Segoe UI',Roboto,Arial,sans-serif;margin:2em auto;max-width:70em;color:#1d2733;padding:0 1em}\
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:2px solid #1f5fa8;padding-bottom:.2em}\
table{border-collapse:collapse;margin:.6em 0 1.2em;width:100%}th,td{border:1px solid #c9d2dc;padding:.3em .5em;text-align:left;vertical-align:top}\
th{background:#eef3f8}td.num{text-align:right;font-variant-numeric:tabular-nums}\
tr.flagged td{background:#fff6e0}.flag{color:#9a5b00;font-weight:600}.meta{color:#566270}\
svg text{font-size:12px;fill:#1d2733}details{margin:.3em 0 1em}code{font-size:.95em}";

/// The report: per tier the ranking, a bar chart of totals, and each unit's breakdown by
/// criterion with the measured value behind each measured point and a link to its offending
/// cases. Self-contained: inline CSS and SVG, no script, no external resource.
pub fn report_html(scheme: &Scheme, r: &Ranking, results: &YearResults, units: &Units) -> String {
    let mut h = String::new();
    let as_of = results
        .as_of
        .map(|d| d.format("%d/%m/%Y").to_string())
        .unwrap_or_default();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"vi\">\n<head>\n<meta charset=\"utf-8\">\n<title>{t}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{t}</h1>\n<p class=\"meta\">Số liệu đo từ các hệ thống đến ngày <span id=\"as-of\">{as_of}</span> ({kind}). Thang điểm 100; xếp hạng trong từng khối, các đơn vị có tổng điểm chênh nhau không quá 0,001 đồng hạng.</p>\n",
        t = esc(&scheme.title),
        kind = if results.is_final { "số liệu chính thức cả năm" } else { "số liệu tạm tính" },
    );
    for tier in &scheme.tiers {
        let ranked: Vec<&Ranked> = r.ranking.iter().filter(|x| x.tier == tier.tier).collect();
        let _ = write!(
            h,
            "<section id=\"{id}\">\n<h2>{label}</h2>\n",
            id = anchor(&["tier", &tier.tier]),
            label = esc(&tier.label)
        );
        // Bar chart of totals.
        let row_h = 22;
        let height = row_h * ranked.len() + 10;
        let _ = writeln!(
            h,
            "<svg class=\"chart\" role=\"img\" aria-label=\"Biểu đồ tổng điểm: {label}\" width=\"760\" height=\"{height}\" viewBox=\"0 0 760 {height}\">",
            label = esc(&tier.label)
        );
        for (i, x) in ranked.iter().enumerate() {
            let y = 5 + i * row_h;
            let w = (x.total.clamp(0.0, 100.0) * 4.0).round();
            let _ = writeln!(
                h,
                "<text x=\"0\" y=\"{ty}\">{name}</text><rect class=\"bar\" data-unit=\"{code}\" x=\"260\" y=\"{y}\" width=\"{w}\" height=\"{bh}\" fill=\"#1f5fa8\"/><text x=\"{tx}\" y=\"{ty}\">{total}</text>",
                ty = y + 14,
                name = esc(&truncate(unit_name(units, &x.unit_code), 38)),
                code = esc(&x.unit_code),
                bh = row_h - 6,
                tx = 266.0 + w,
                total = vi_number(x.total, 2),
            );
        }
        h.push_str("</svg>\n");
        // Ranking table.
        h.push_str("<table class=\"ranking\">\n<thead><tr><th>Hạng</th><th>Đơn vị</th><th>Mã đơn vị</th><th>Tổng điểm</th><th>Xếp loại</th><th>Ghi chú</th></tr></thead>\n<tbody>\n");
        for x in &ranked {
            let note = if x.flagged > 0 {
                format!(
                    "<span class=\"flag\">⚠ {} tiêu chí được tính 0 điểm hoặc điều chỉnh</span>",
                    x.flagged
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                h,
                "<tr{cls} data-unit=\"{code}\"><td class=\"num\">{rank}</td><td><a href=\"#{a}\">{name}</a></td><td><code>{code}</code></td><td class=\"num\">{total}</td><td>{band}</td><td>{note}</td></tr>",
                cls = if x.flagged > 0 { " class=\"flagged\"" } else { "" },
                code = esc(&x.unit_code),
                rank = x.rank,
                a = anchor(&["unit", &x.unit_code]),
                name = esc(unit_name(units, &x.unit_code)),
                total = vi_number(x.total, 2),
                band = esc(&x.band),
            );
        }
        h.push_str("</tbody>\n</table>\n");
        // Breakdown per unit.
        for x in &ranked {
            let _ = write!(
                h,
                "<h3 id=\"{a}\">{rank}. {name} <span class=\"meta\">({code}): {total} điểm, loại {band}</span></h3>\n<table class=\"breakdown\" data-unit=\"{code}\">\n<thead><tr><th>Tiêu chí</th><th>Cách tính</th><th>Giá trị đo</th><th>Điểm</th><th>Tối đa</th><th>Ghi chú</th></tr></thead>\n<tbody>\n",
                a = anchor(&["unit", &x.unit_code]),
                rank = x.rank,
                name = esc(unit_name(units, &x.unit_code)),
                code = esc(&x.unit_code),
                total = vi_number(x.total, 2),
                band = esc(&x.band),
            );
            let mut cases = String::new();
            for c in &tier.criteria {
                let Some(s) = r.scores.iter().find(|s| {
                    s.tier == tier.tier && s.unit_code == x.unit_code && s.criterion_id == c.id
                }) else {
                    continue;
                };
                let value = match (&c.rule, &s.measured, s.value) {
                    (Rule::Manual { .. }, _, Some(v)) => vi_number(v, 2),
                    (Rule::Manual { .. }, _, None) => String::new(),
                    (rule, Some(m), _) => {
                        let offending = match rule {
                            Rule::CountPenalty { .. } => m.numerator,
                            _ => m.denominator - m.numerator,
                        };
                        let shown = esc(&shown_value(rule, m));
                        if offending > 0 && !m.sample_keys.is_empty() {
                            let id = anchor(&["cases", &x.unit_code, &c.id]);
                            let _ = writeln!(
                                cases,
                                "<details id=\"{id}\" open><summary>{label}: {offending} trường hợp chưa đạt</summary><p>Mã hồ sơ/văn bản ({n} mã đầu tiên): {keys}</p></details>",
                                label = esc(&c.label),
                                n = m.sample_keys.len(),
                                keys = m
                                    .sample_keys
                                    .iter()
                                    .map(|k| format!("<code>{}</code>", esc(k)))
                                    .collect::<Vec<_>>()
                                    .join(", "),
                            );
                            format!("{shown} <a class=\"cases\" href=\"#{id}\">xem {offending} trường hợp</a>")
                        } else {
                            shown
                        }
                    }
                    (_, None, _) => String::new(),
                };
                let _ = writeln!(
                    h,
                    "<tr{cls} data-criterion=\"{cid}\"><td>{label}</td><td>{how}</td><td>{value}</td><td class=\"num\">{points}</td><td class=\"num\">{max}</td><td>{flag}</td></tr>",
                    cls = if s.flag.is_some() { " class=\"flagged\"" } else { "" },
                    cid = esc(&c.id),
                    label = esc(&c.label),
                    how = esc(&c.rule.describe(c.max_points)),
                    points = vi_number(s.points, 2),
                    max = vi_number(c.max_points, 0),
                    flag = s
                        .flag
                        .map(|f| format!("<span class=\"flag\">⚠ {}</span>", f.vi()))
                        .unwrap_or_default(),
                );
            }
            h.push_str("</tbody>\n</table>\n");
            h.push_str(&cases);
        }
        h.push_str("</section>\n");
    }
    h.push_str("</body>\n</html>\n");
    h
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// The same tables as a workbook: one ranking sheet and one breakdown sheet.
pub fn report_xlsx(scheme: &Scheme, r: &Ranking, units: &Units) -> Result<Vec<u8>> {
    use rust_xlsxwriter::{Format, Workbook};
    let x = |e: rust_xlsxwriter::XlsxError| Error::Internal(format!("xlsx: {e}"));
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let two = Format::new().set_num_format("0.00");
    let label = |tier: &str| {
        scheme
            .tiers
            .iter()
            .find(|t| t.tier == tier)
            .map(|t| t.label.clone())
            .unwrap_or_default()
    };
    {
        let ws = wb.add_worksheet().set_name("Xếp hạng").map_err(x)?;
        ws.write_row_with_format(
            0,
            0,
            [
                "Năm",
                "Khối",
                "Hạng",
                "Mã đơn vị",
                "Đơn vị",
                "Tổng điểm",
                "Xếp loại",
                "Số tiêu chí cần lưu ý",
            ],
            &bold,
        )
        .map_err(x)?;
        for (i, k) in r.ranking.iter().enumerate() {
            let row = i as u32 + 1;
            ws.write(row, 0, r.year).map_err(x)?;
            ws.write(row, 1, label(&k.tier)).map_err(x)?;
            ws.write(row, 2, k.rank).map_err(x)?;
            ws.write(row, 3, &k.unit_code).map_err(x)?;
            ws.write(row, 4, unit_name(units, &k.unit_code))
                .map_err(x)?;
            ws.write_with_format(row, 5, k.total, &two).map_err(x)?;
            ws.write(row, 6, &k.band).map_err(x)?;
            ws.write(row, 7, k.flagged as u32).map_err(x)?;
        }
        ws.autofit();
    }
    {
        let ws = wb.add_worksheet().set_name("Điểm chi tiết").map_err(x)?;
        ws.write_row_with_format(
            0,
            0,
            [
                "Năm",
                "Khối",
                "Mã đơn vị",
                "Đơn vị",
                "Mã tiêu chí",
                "Tiêu chí",
                "Giá trị đo",
                "Tử số",
                "Mẫu số",
                "Điểm",
                "Tối đa",
                "Ghi chú",
            ],
            &bold,
        )
        .map_err(x)?;
        for (i, s) in r.scores.iter().enumerate() {
            let row = i as u32 + 1;
            let crit = scheme
                .tiers
                .iter()
                .find(|t| t.tier == s.tier)
                .and_then(|t| t.criteria.iter().find(|c| c.id == s.criterion_id));
            ws.write(row, 0, r.year).map_err(x)?;
            ws.write(row, 1, label(&s.tier)).map_err(x)?;
            ws.write(row, 2, &s.unit_code).map_err(x)?;
            ws.write(row, 3, unit_name(units, &s.unit_code))
                .map_err(x)?;
            ws.write(row, 4, &s.criterion_id).map_err(x)?;
            ws.write(row, 5, crit.map(|c| c.label.as_str()).unwrap_or(""))
                .map_err(x)?;
            if let Some(v) = s.value {
                ws.write(row, 6, v).map_err(x)?;
            }
            if let Some(m) = &s.measured {
                ws.write(row, 7, m.numerator as f64).map_err(x)?;
                ws.write(row, 8, m.denominator as f64).map_err(x)?;
            }
            ws.write_with_format(row, 9, s.points, &two).map_err(x)?;
            ws.write(row, 10, s.max_points).map_err(x)?;
            if let Some(f) = s.flag {
                ws.write(row, 11, f.vi()).map_err(x)?;
            }
        }
        ws.autofit();
    }
    wb.save_to_buffer().map_err(x)
}
