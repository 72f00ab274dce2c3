//! The year's published target results, as the ranking reads them.

use std::collections::HashMap;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::Int64Type;
use chrono::NaiveDate;

use crate::base::dates::days_to_date;
use crate::base::error::{Error, Result};
use crate::store::location::Location;
use crate::store::publish::{part_name, Published};

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

/// Read one published results table of period `year` into figures by (target, unit).
async fn read_results(
    wh: &Location,
    published: &Published,
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
    let path = wh.path(&format!("{folder}/{}", part_name(run)));
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
                meta = Some((days_to_date(as_of.value(i)), fin.value(i)));
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
    let published = Published::load(wh).await?;
    let (units, meta) = read_results(wh, &published, "target_results", year).await?;
    let (districts, _) = read_results(wh, &published, "target_results_district", year).await?;
    Ok(YearResults {
        as_of: meta.map(|m| m.0),
        is_final: meta.is_some_and(|m| m.1),
        units,
        districts,
    })
}
