//! Scoring: every unit of every tier of a scheme, by its rules, then ranked and banded.

use std::collections::HashMap;

use super::inputs::InputTable;
use super::results::{Measured, YearResults};
use crate::config::scheme::{Scheme, ScoreRule};
use crate::config::units::Units;

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
                    ScoreRule::Manual { input } => {
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
                                    ScoreRule::Linear { goal, .. } => max * (v / goal).min(1.0),
                                    ScoreRule::CountPenalty {
                                        per_case, floor, ..
                                    } => (max - per_case * v).max(*floor),
                                    ScoreRule::Steps { steps, .. } => steps
                                        .iter()
                                        .find(|(min, _)| v + 1e-12 >= *min)
                                        .map(|s| s.1)
                                        .unwrap_or(0.0),
                                    ScoreRule::Manual { .. } => 0.0,
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
