//! `par_scores` and `par_ranking` as Arrow tables.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::score::{Flag, Ranking};
use crate::base::error::Result;

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
