//! The yearly ranking scheme (`<plans>/<YYYY>/ranking.yaml`): per tier, criteria with their
//! maximum points and a named scoring rule, the manual input files, and the bands. A scheme stays
//! in force until a later year's replaces it, like a plan. Validation (code C015) checks what can
//! be checked without data: points add up to 100 per tier, every measured criterion names a target
//! of the year's plan that is measured per unit, every manual criterion names a declared input,
//! rule parameters are in range, bands descend to 0.

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::plan::{Grouping, Plan};
use super::{did_you_mean, is_identifier, Diagnostics};

/// The tiers a scheme may rank, as units.csv names them: a scheme's tiers are its own (from
/// 2025, a province without districts ranks departments and communes, `xa-phuong`).
pub use super::units::TIERS;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScheme {
    /// The report's title.
    pub title: String,
    /// Manual input files by name, in `<landing>/reference/`.
    pub inputs: Vec<RawInput>,
    pub bands: Vec<RawBand>,
    pub tiers: Vec<RawTier>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInput {
    pub name: Spanned<String>,
    /// `unit_code,criterion_id,points` or `unit_code,points`.
    pub file: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBand {
    pub band: Spanned<String>,
    /// The lowest total of the band.
    pub min: Spanned<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTier {
    pub tier: Spanned<String>,
    pub label: String,
    pub criteria: Vec<RawCriterion>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCriterion {
    pub id: Spanned<String>,
    pub label: String,
    pub max_points: Spanned<f64>,
    pub rule: RawScoreRule,
}

/// A scoring rule; `kind` selects which of the other keys apply.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScoreRule {
    pub kind: Spanned<String>,
    #[serde(default)]
    pub target: Option<Spanned<String>>,
    #[serde(default)]
    pub goal: Option<Spanned<f64>>,
    #[serde(default)]
    pub per_case: Option<Spanned<f64>>,
    #[serde(default)]
    pub floor: Option<Spanned<f64>>,
    #[serde(default)]
    pub steps: Option<Vec<RawStep>>,
    #[serde(default)]
    pub input: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub min: Spanned<f64>,
    pub points: Spanned<f64>,
}

/// How a criterion turns into points (max = the criterion's `max_points`).
#[derive(Debug, Clone, PartialEq)]
pub enum ScoreRule {
    /// max × min(1, value / goal), value the target's yearly ratio.
    Linear { target: String, goal: f64 },
    /// max − per_case × count, at least `floor`; count the target's yearly count.
    CountPenalty {
        target: String,
        per_case: f64,
        floor: f64,
    },
    /// The points of the highest step whose `min` ≤ value; 0 below every step.
    Steps {
        target: String,
        /// (min, points), by descending min.
        steps: Vec<(f64, f64)>,
    },
    /// The points an input file gives the unit (for this criterion), capped at max.
    Manual { input: String },
}

impl ScoreRule {
    pub const KINDS: [&'static str; 4] = ["linear", "count_penalty", "steps", "manual"];

    /// The target a measured rule reads.
    pub fn target(&self) -> Option<&str> {
        match self {
            ScoreRule::Linear { target, .. }
            | ScoreRule::CountPenalty { target, .. }
            | ScoreRule::Steps { target, .. } => Some(target),
            ScoreRule::Manual { .. } => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    pub id: String,
    pub label: String,
    pub max_points: f64,
    pub rule: ScoreRule,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    pub tier: String,
    pub label: String,
    pub criteria: Vec<Criterion>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub name: String,
    pub file: String,
    pub description: String,
}

/// A validated ranking scheme.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheme {
    pub year: i32,
    pub file: String,
    pub title: String,
    pub inputs: Vec<Input>,
    /// (band, lowest total), by descending lowest total; the last is 0.
    pub bands: Vec<(String, f64)>,
    pub tiers: Vec<Tier>,
}

impl Scheme {
    /// The input files of year `year` (a `{year}` in a file name is replaced).
    pub fn input_file(&self, input: &Input, year: i32) -> String {
        input.file.replace("{year}", &year.to_string())
    }

    pub fn band(&self, total: f64) -> &str {
        self.bands
            .iter()
            .find(|(_, min)| total + 1e-9 >= *min)
            .map(|(b, _)| b.as_str())
            .unwrap_or("")
    }
}

fn number<T>(v: &Option<Spanned<T>>) -> Option<&Spanned<T>> {
    v.as_ref()
}

pub(super) fn validate_scheme(
    year: i32,
    raw: RawScheme,
    file: &str,
    plan: Option<&Plan>,
    diags: &mut Diagnostics,
) -> Option<Scheme> {
    let before = diags.items.len();
    let mut inputs: Vec<Input> = Vec::new();
    for i in raw.inputs {
        if inputs.iter().any(|x| x.name == i.name.value) {
            diags.at(
                "C006",
                file,
                &i.name,
                format!("input `{}` is declared twice", i.name.value),
            );
        }
        if !i.file.value.ends_with(".csv") || i.file.value.contains('/') {
            diags.at(
                "C015",
                file,
                &i.file,
                format!(
                    "input file `{}` must be a .csv file name (it is read from <landing>/reference/)",
                    i.file.value
                ),
            );
        }
        inputs.push(Input {
            name: i.name.value,
            file: i.file.value,
            description: i.description.unwrap_or_default(),
        });
    }
    let mut bands: Vec<(String, f64)> = Vec::new();
    for b in &raw.bands {
        if let Some((_, prev)) = bands.last() {
            if b.min.value >= *prev {
                diags.at(
                    "C015",
                    file,
                    &b.min,
                    format!(
                        "band `{}` must start below the band before it ({prev})",
                        b.band.value
                    ),
                );
            }
        }
        bands.push((b.band.value.clone(), b.min.value));
    }
    if bands.last().map(|b| b.1) != Some(0.0) {
        diags.push_at(
            "C015",
            file,
            (0, 0),
            "the last band must start at 0, so every total has a band",
        );
    }
    let mut tiers: Vec<Tier> = Vec::new();
    for t in raw.tiers {
        if !TIERS.contains(&t.tier.value.as_str()) {
            diags.at(
                "C015",
                file,
                &t.tier,
                format!(
                    "unknown tier `{}`{} (one of: {})",
                    t.tier.value,
                    did_you_mean(&t.tier.value, TIERS),
                    TIERS.join(", ")
                ),
            );
        }
        if tiers.iter().any(|x| x.tier == t.tier.value) {
            diags.at(
                "C006",
                file,
                &t.tier,
                format!("tier `{}` is declared twice", t.tier.value),
            );
        }
        let mut criteria: Vec<Criterion> = Vec::new();
        let mut sum = 0.0;
        for c in t.criteria {
            if !is_identifier(&c.id.value) {
                diags.at(
                    "C007",
                    file,
                    &c.id,
                    format!(
                        "criterion id `{}` must be a lower-case identifier",
                        c.id.value
                    ),
                );
            }
            if criteria.iter().any(|x| x.id == c.id.value) {
                diags.at(
                    "C006",
                    file,
                    &c.id,
                    format!(
                        "criterion `{}` is declared twice in tier `{}`",
                        c.id.value, t.tier.value
                    ),
                );
            }
            let max = c.max_points.value;
            if !(max > 0.0 && max.is_finite()) {
                diags.at(
                    "C015",
                    file,
                    &c.max_points,
                    format!("max_points of `{}` must be above 0", c.id.value),
                );
            }
            sum += max;
            if let Some(rule) = validate_rule(&c.rule, max, &inputs, plan, file, diags) {
                criteria.push(Criterion {
                    id: c.id.value,
                    label: c.label,
                    max_points: max,
                    rule,
                });
            }
        }
        if (sum - 100.0).abs() > 1e-9 {
            diags.at(
                "C015",
                file,
                &t.tier,
                format!(
                    "the criteria of tier `{}` add up to {sum} points, not 100",
                    t.tier.value
                ),
            );
        }
        tiers.push(Tier {
            tier: t.tier.value,
            label: t.label,
            criteria,
        });
    }
    if diags.items.len() > before {
        return None;
    }
    Some(Scheme {
        year,
        file: file.to_string(),
        title: raw.title,
        inputs,
        bands,
        tiers,
    })
}

fn validate_rule(
    r: &RawScoreRule,
    max: f64,
    inputs: &[Input],
    plan: Option<&Plan>,
    file: &str,
    diags: &mut Diagnostics,
) -> Option<ScoreRule> {
    let kind = r.kind.value.as_str();
    if !ScoreRule::KINDS.contains(&kind) {
        diags.at(
            "C015",
            file,
            &r.kind,
            format!(
                "unknown rule kind `{kind}`{} (one of: {})",
                did_you_mean(kind, ScoreRule::KINDS),
                ScoreRule::KINDS.join(", ")
            ),
        );
        return None;
    }
    // Keys that do not belong to this kind.
    let allowed: &[&str] = match kind {
        "linear" => &["target", "goal"],
        "count_penalty" => &["target", "per_case", "floor"],
        "steps" => &["target", "steps"],
        _ => &["input"],
    };
    let present = [
        ("target", r.target.is_some()),
        ("goal", r.goal.is_some()),
        ("per_case", r.per_case.is_some()),
        ("floor", r.floor.is_some()),
        ("steps", r.steps.is_some()),
        ("input", r.input.is_some()),
    ];
    for (key, is) in present {
        if is && !allowed.contains(&key) {
            diags.at(
                "C015",
                file,
                &r.kind,
                format!(
                    "a `{kind}` rule takes {}; `{key}` does not apply",
                    allowed.join(", ")
                ),
            );
        }
    }
    let missing = |key: &str, diags: &mut Diagnostics| {
        diags.at(
            "C015",
            file,
            &r.kind,
            format!("a `{kind}` rule needs `{key}`"),
        );
    };
    let target = if kind == "manual" {
        None
    } else {
        let Some(t) = &r.target else {
            missing("target", diags);
            return None;
        };
        if let Some(plan) = plan {
            match plan.targets.iter().find(|x| x.id == t.value) {
                None => {
                    diags.at(
                        "C015",
                        file,
                        t,
                        format!(
                            "unknown target `{}`{} (the targets of {})",
                            t.value,
                            did_you_mean(&t.value, plan.targets.iter().map(|x| x.id.as_str())),
                            plan.file
                        ),
                    );
                    return None;
                }
                Some(x) if x.grouping == Grouping::Province => {
                    diags.at(
                        "C015",
                        file,
                        t,
                        format!(
                            "target `{}` is measured province-wide only; it cannot score a unit",
                            t.value
                        ),
                    );
                    return None;
                }
                Some(_) => {}
            }
        } else {
            diags.at(
                "C015",
                file,
                t,
                "no plan of this year or before: measured criteria have no targets to read",
            );
            return None;
        }
        Some(t.value.clone())
    };
    let positive = |v: &Spanned<f64>, what: &str, diags: &mut Diagnostics| -> f64 {
        if !(v.value > 0.0 && v.value.is_finite()) {
            diags.at("C015", file, v, format!("`{what}` must be above 0"));
        }
        v.value
    };
    let rule = match kind {
        "linear" => {
            let Some(g) = number(&r.goal) else {
                missing("goal", diags);
                return None;
            };
            ScoreRule::Linear {
                target: target?,
                goal: positive(g, "goal", diags),
            }
        }
        "count_penalty" => {
            let Some(p) = number(&r.per_case) else {
                missing("per_case", diags);
                return None;
            };
            let floor = r.floor.as_ref().map(|f| f.value).unwrap_or(0.0);
            if let Some(f) = &r.floor {
                if !(0.0..=max).contains(&f.value) {
                    diags.at("C015", file, f, format!("`floor` must be within 0..{max}"));
                }
            }
            ScoreRule::CountPenalty {
                target: target?,
                per_case: positive(p, "per_case", diags),
                floor,
            }
        }
        "steps" => {
            let Some(steps) = &r.steps else {
                missing("steps", diags);
                return None;
            };
            let mut v: Vec<(f64, f64)> = Vec::new();
            for s in steps {
                if !(0.0..=max).contains(&s.points.value) {
                    diags.at(
                        "C015",
                        file,
                        &s.points,
                        format!("step points must be within 0..{max}"),
                    );
                }
                v.push((s.min.value, s.points.value));
            }
            if v.is_empty() {
                missing("steps", diags);
            }
            v.sort_by(|a, b| b.0.total_cmp(&a.0));
            ScoreRule::Steps {
                target: target?,
                steps: v,
            }
        }
        _ => {
            let Some(i) = &r.input else {
                missing("input", diags);
                return None;
            };
            if !inputs.iter().any(|x| x.name == i.value) {
                diags.at(
                    "C015",
                    file,
                    i,
                    format!(
                        "unknown input `{}`{} (declared under `inputs:`)",
                        i.value,
                        did_you_mean(&i.value, inputs.iter().map(|x| x.name.as_str()))
                    ),
                );
            }
            ScoreRule::Manual {
                input: i.value.clone(),
            }
        }
    };
    Some(rule)
}
