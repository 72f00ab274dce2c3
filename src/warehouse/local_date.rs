//! `CAST(t AS DATE)` of a timestamp in the extracts' zone, computed by the zone's fixed offset.
//!
//! Arrow casts a zone-aware timestamp to its local date through the time-zone database, a search
//! of the zone's transitions for every value: in a backfill of the year, the derived columns'
//! four local dates per dossier version (6 M casts) were ≈ 2% of the CPU. Since 1976 local time in
//! Asia/Ho_Chi_Minh is UTC+7 all year (the same rule as the ingest's, tested against the database
//! there), so its local date is a division. [`LocalDateRule`], an optimizer rule of every session
//! (`cchc sql`, `cchc serve` and the refresh alike), replaces such casts by `cchc_local_date(t)`,
//! which takes the fixed offset when every value of a batch is from 1976 on and Arrow's own cast
//! otherwise: the same dates, and the same column names (the cast's name is kept as an alias).

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Date32Array};
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{exec_err, DFSchema, Result as DfResult};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    Cast, ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use crate::ingest::typing::{FIXED_OFFSET_SINCE_UTC_MICROS, OFFSET_MICROS, TZ};

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// `cchc_local_date(t)`: the local date of a `timestamp(µs, 'Asia/Ho_Chi_Minh')`, as
/// `CAST(t AS DATE)` gives it.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct LocalDate {
    signature: Signature,
}

impl LocalDate {
    pub const NAME: &'static str = "cchc_local_date";

    pub fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(Self {
            signature: Signature::exact(
                vec![DataType::Timestamp(
                    TimeUnit::Microsecond,
                    Some(Arc::from(TZ)),
                )],
                Volatility::Immutable,
            ),
        })
    }

    fn dates(values: &ArrayRef) -> DfResult<ArrayRef> {
        let Some(t) = values.as_primitive_opt::<TimestampMicrosecondType>() else {
            return exec_err!("{}: expects a timestamp in microseconds", Self::NAME);
        };
        let fixed = t
            .iter()
            .flatten()
            .all(|v| v >= FIXED_OFFSET_SINCE_UTC_MICROS);
        if !fixed {
            // Some value before the zone's offset became fixed: the database decides.
            return Ok(arrow::compute::cast(values, &DataType::Date32)?);
        }
        let out: Date32Array = t.unary(|v| ((v + OFFSET_MICROS).div_euclid(MICROS_PER_DAY)) as i32);
        Ok(Arc::new(out))
    }
}

impl ScalarUDFImpl for LocalDate {
    fn name(&self) -> &str {
        Self::NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Date32)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("{}() takes one value", Self::NAME);
        };
        match arg {
            ColumnarValue::Array(a) => Ok(ColumnarValue::Array(Self::dates(a)?)),
            ColumnarValue::Scalar(s) => {
                let a = Self::dates(&s.to_array()?)?;
                Ok(ColumnarValue::Scalar(
                    datafusion::common::ScalarValue::try_from_array(&a, 0)?,
                ))
            }
        }
    }
}

/// Rewrites `CAST(t AS DATE)` of a `timestamp(µs, 'Asia/Ho_Chi_Minh')` into
/// `cchc_local_date(t)` ([`LocalDate`]), keeping the expression's name.
#[derive(Debug)]
pub struct LocalDateRule {
    udf: Arc<ScalarUDF>,
}

impl Default for LocalDateRule {
    fn default() -> Self {
        Self {
            udf: Arc::new(LocalDate::udf()),
        }
    }
}

impl OptimizerRule for LocalDateRule {
    fn name(&self) -> &str {
        "cchc_local_date"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> DfResult<Transformed<LogicalPlan>> {
        let schema = match &plan {
            LogicalPlan::TableScan(scan) => {
                DFSchema::try_from_qualified_schema(scan.table_name.clone(), &scan.source.schema())?
            }
            p if !p.inputs().is_empty() => merge_schema(&p.inputs()),
            _ => return Ok(Transformed::no(plan)),
        };
        let zone = DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from(TZ)));
        let names = NamePreserver::new(&plan);
        plan.map_expressions(|expr| {
            let name = names.save(&expr);
            let out = expr.transform_up(|e| match e {
                Expr::Cast(Cast {
                    ref expr,
                    ref field,
                }) if *field.data_type() == DataType::Date32
                    && expr.get_type(&schema).is_ok_and(|t| t == zone) =>
                {
                    Ok(Transformed::yes(Expr::ScalarFunction(
                        ScalarFunction::new_udf(self.udf.clone(), vec![expr.as_ref().clone()]),
                    )))
                }
                e => Ok(Transformed::no(e)),
            })?;
            Ok(out.update_data(|e| name.restore(e)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::TimestampMicrosecondArray;

    fn cast(a: &ArrayRef) -> ArrayRef {
        arrow::compute::cast(a, &DataType::Date32).unwrap()
    }

    #[test]
    fn the_local_date_is_the_casts() {
        // Every hour of days from 1975 (before the offset was fixed, UTC+8 until June 13th) to
        // 2100, around local and UTC midnight; and nulls.
        let mut values = Vec::new();
        let (start, end) = (
            chrono::NaiveDate::from_ymd_opt(1974, 12, 1).unwrap(),
            chrono::NaiveDate::from_ymd_opt(2100, 1, 1).unwrap(),
        );
        let mut day = start;
        while day < end {
            let midnight = day
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp_micros();
            for s in [
                -3_600,
                -1,
                0,
                1,
                16 * 3_600,
                17 * 3_600 - 1,
                17 * 3_600,
                23 * 3_600,
            ] {
                values.push(Some(midnight + s * 1_000_000));
            }
            values.push(None);
            day += chrono::Duration::days(7);
        }
        let all: ArrayRef = Arc::new(TimestampMicrosecondArray::from(values).with_timezone(TZ));
        // In batches of days after 1976 only (the fixed offset) and with earlier days (the cast).
        for chunk in [0usize, 200, 5_000] {
            let part = all.slice(chunk, all.len() - chunk);
            assert_eq!(
                LocalDate::dates(&part).unwrap().as_ref(),
                cast(&part).as_ref()
            );
        }
        let late = all.slice(all.len() - 1_000, 1_000);
        assert!(late
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .flatten()
            .all(|v| v >= FIXED_OFFSET_SINCE_UTC_MICROS));
        assert_eq!(
            LocalDate::dates(&late).unwrap().as_ref(),
            cast(&late).as_ref()
        );
    }

    #[tokio::test]
    async fn casts_in_the_zone_are_rewritten_under_their_own_names() {
        use arrow::array::RecordBatch;
        let ctx = crate::warehouse::models::local_context(&crate::config::EngineConfig {
            memory_limit: 1 << 30,
            temp_dir: None,
            cluster: None,
            explain_analyze: false,
            threads: None,
            state_snapshots: true,
        })
        .unwrap();
        let t: ArrayRef = Arc::new(
            TimestampMicrosecondArray::from(vec![Some(1_640_970_000_000_000), None])
                .with_timezone(TZ),
        );
        let utc: ArrayRef = Arc::new(
            TimestampMicrosecondArray::from(vec![Some(1_640_970_000_000_000), None])
                .with_timezone("UTC"),
        );
        let batch = RecordBatch::try_from_iter([("at", t), ("utc", utc)]).unwrap();
        ctx.register_batch("t", batch.clone()).unwrap();
        let sql = "SELECT CAST(at AS DATE), CAST(at AS DATE) AS d, CAST(utc AS DATE) AS u FROM t WHERE CAST(at AS DATE) > DATE '2000-01-01'";
        let df = ctx.sql(sql).await.unwrap();
        let plan = format!(
            "{}",
            df.clone().into_optimized_plan().unwrap().display_indent()
        );
        assert!(plan.contains("cchc_local_date(t.at)"), "{plan}");
        assert!(!plan.contains("CAST(t.at"), "{plan}");
        assert!(plan.contains("CAST(t.utc AS Date32)"), "{plan}");
        let batches = df.collect().await.unwrap();
        // The names a session without the rule gives.
        let plain = datafusion::prelude::SessionContext::new();
        plain.register_batch("t", batch).unwrap();
        let names = |b: &RecordBatch| -> Vec<String> {
            b.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        };
        let expected = plain.sql(sql).await.unwrap().collect().await.unwrap();
        assert_eq!(names(&batches[0]), names(&expected[0]));
        assert_eq!(
            arrow::util::pretty::pretty_format_batches(&batches)
                .unwrap()
                .to_string(),
            arrow::util::pretty::pretty_format_batches(&expected)
                .unwrap()
                .to_string()
        );
        // 2021-12-31T17:00Z is January 1st, 2022 in the zone, December 31st in UTC.
        let text = arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        assert!(
            text.contains("| 2022-01-01 | 2022-01-01 | 2021-12-31 |"),
            "{text}"
        );
    }
}
