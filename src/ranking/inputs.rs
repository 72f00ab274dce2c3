//! The manual input files of a scheme (`<landing>/reference/`): points given by the reform office.

use std::collections::HashMap;

use crate::base::error::{Error, Result};
use crate::config::Scheme;
use crate::store::location::Location;

/// A manual input file: points by (unit, criterion) or, for a file without `criterion_id`, by
/// unit (`None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputTable {
    pub file: String,
    pub points: HashMap<(String, Option<String>), f64>,
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
