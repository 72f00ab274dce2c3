//! Every unknown key of a YAML file, with its location. Serde stops at the first unknown key
//! (`deny_unknown_fields`); when it does, this walk reads the file again as a generic tree whose
//! keys keep their spans, and reports each key that the schema below does not know.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::{did_you_mean, Diagnostics};

/// A YAML value whose mapping keys keep their locations.
enum Node {
    Map(Vec<(Spanned<String>, Node)>),
    Seq(Vec<Node>),
    Scalar,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut v = Vec::new();
        while let Some(k) = map.next_key::<Spanned<String>>()? {
            v.push((k, map.next_value()?));
        }
        Ok(Node::Map(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = seq.next_element()? {
            v.push(x);
        }
        Ok(Node::Seq(v))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
}

/// Which mapping a key belongs to, by where it stands. The key lists mirror the structs of
/// `raw.rs`; a test below compares them with the fields serde itself expects.
#[derive(Clone, Copy)]
pub enum Kind {
    Env,
    Pipeline,
    Source,
    Format,
    Column,
    Rule,
    When,
    Model,
    ModelColumn,
    Plan,
    Target,
    Unmeasurable,
    Scheme,
    SchemeInput,
    Band,
    Tier,
    Criterion,
    RankRule,
    Step,
}

impl Kind {
    fn keys(self) -> &'static [&'static str] {
        match self {
            Kind::Env => &[
                "pipelines",
                "landing",
                "warehouse",
                "units",
                "pii_key_env",
                "plans",
            ],
            Kind::Pipeline => &["system", "description", "sources", "models"],
            Kind::Source => &[
                "name",
                "description",
                "files",
                "format",
                "key",
                "versioning",
                "columns",
                "rules",
                "missing_day",
            ],
            Kind::Format => &["type", "service"],
            Kind::Column => &[
                "name",
                "from",
                "type",
                "format",
                "required",
                "nullable",
                "pii",
                "allowed",
                "references",
                "fields",
                "description",
            ],
            Kind::Rule => &["when", "require_any", "reason"],
            Kind::When => &["column", "in"],
            Kind::Model => &["name", "description", "materialized", "sql", "columns"],
            Kind::ModelColumn => &["name", "description"],
            Kind::Plan => &["plan", "targets", "unmeasurable"],
            Kind::Target => &[
                "id",
                "plan_text",
                "description",
                "mart",
                "numerator",
                "denominator",
                "offending",
                "measure",
                "grouping",
                "periods",
                "comparator",
                "threshold",
                "severity",
            ],
            Kind::Unmeasurable => &["id", "plan_text", "reason"],
            Kind::Scheme => &["title", "inputs", "bands", "tiers"],
            Kind::SchemeInput => &["name", "file", "description"],
            Kind::Band => &["band", "min"],
            Kind::Tier => &["tier", "label", "criteria"],
            Kind::Criterion => &["id", "label", "max_points", "rule"],
            Kind::RankRule => &[
                "kind", "target", "goal", "per_case", "floor", "steps", "input",
            ],
            Kind::Step => &["min", "points"],
        }
    }

    fn what(self) -> &'static str {
        match self {
            Kind::Env => "environment config",
            Kind::Pipeline => "pipeline",
            Kind::Source => "source",
            Kind::Format => "format",
            Kind::Column => "column",
            Kind::Rule => "rule",
            Kind::When => "rule condition",
            Kind::Model => "model",
            Kind::ModelColumn => "model column",
            Kind::Plan => "plan",
            Kind::Target => "target",
            Kind::Unmeasurable => "unmeasurable target",
            Kind::Scheme => "ranking scheme",
            Kind::SchemeInput => "ranking input",
            Kind::Band => "band",
            Kind::Tier => "tier",
            Kind::Criterion => "criterion",
            Kind::RankRule => "scoring rule",
            Kind::Step => "step",
        }
    }

    /// The kind of the mapping(s) under `key` of this kind.
    fn child(self, key: &str) -> Option<Kind> {
        match (self, key) {
            (Kind::Pipeline, "sources") => Some(Kind::Source),
            (Kind::Source, "format") => Some(Kind::Format),
            (Kind::Source, "columns") | (Kind::Column, "fields") => Some(Kind::Column),
            (Kind::Source, "rules") => Some(Kind::Rule),
            (Kind::Rule, "when") => Some(Kind::When),
            (Kind::Pipeline, "models") => Some(Kind::Model),
            (Kind::Model, "columns") => Some(Kind::ModelColumn),
            (Kind::Plan, "targets") => Some(Kind::Target),
            (Kind::Plan, "unmeasurable") => Some(Kind::Unmeasurable),
            (Kind::Scheme, "inputs") => Some(Kind::SchemeInput),
            (Kind::Scheme, "bands") => Some(Kind::Band),
            (Kind::Scheme, "tiers") => Some(Kind::Tier),
            (Kind::Tier, "criteria") => Some(Kind::Criterion),
            (Kind::Criterion, "rule") => Some(Kind::RankRule),
            (Kind::RankRule, "steps") => Some(Kind::Step),
            _ => None,
        }
    }
}

fn walk(node: &Node, kind: Kind, file: &str, diags: &mut Diagnostics) {
    match node {
        Node::Seq(items) => items.iter().for_each(|n| walk(n, kind, file, diags)),
        Node::Map(pairs) => {
            for (k, v) in pairs {
                if !kind.keys().contains(&k.value.as_str()) {
                    diags.at(
                        "C002",
                        file,
                        k,
                        format!(
                            "unknown {} key `{}`{} (keys: {})",
                            kind.what(),
                            k.value,
                            did_you_mean(&k.value, kind.keys().iter().copied()),
                            kind.keys().join(", ")
                        ),
                    );
                } else if let Some(child) = kind.child(&k.value) {
                    walk(v, child, file, diags);
                }
            }
        }
        Node::Scalar => {}
    }
}

/// Report every unknown key of `text`; false when the text is not even YAML (nothing reported).
pub fn report_unknown_keys(text: &str, kind: Kind, file: &str, diags: &mut Diagnostics) -> bool {
    match serde_saphyr::from_str::<Node>(text) {
        Ok(root) => {
            walk(&root, kind, file, diags);
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::raw::{
        RawColumn, RawEnv, RawModel, RawModelColumn, RawPipeline, RawPlan, RawRule, RawSource,
        RawTarget, RawUnmeasurable, RawWhen,
    };
    use super::Kind;

    /// The fields serde expects for `T`, read from its "unknown field" message.
    fn serde_fields<T: serde::de::DeserializeOwned>() -> Vec<String> {
        let err = serde_saphyr::from_str::<T>("zz_not_a_key: 1")
            .err()
            .expect("an unknown key fails");
        let msg = err.to_string();
        let list = msg
            .split("expected one of ")
            .nth(1)
            .unwrap_or_else(|| panic!("no field list in: {msg}"));
        let list = list.lines().next().unwrap();
        let mut v: Vec<String> = list
            .split(',')
            .map(|f| f.trim().trim_matches('`').to_string())
            .collect();
        v.sort();
        v
    }

    fn listed(kind: Kind) -> Vec<String> {
        let mut v: Vec<String> = kind.keys().iter().map(|k| k.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn key_lists_match_the_raw_structs() {
        assert_eq!(listed(Kind::Env), serde_fields::<RawEnv>());
        assert_eq!(listed(Kind::Pipeline), serde_fields::<RawPipeline>());
        assert_eq!(listed(Kind::Source), serde_fields::<RawSource>());
        assert_eq!(listed(Kind::Column), serde_fields::<RawColumn>());
        assert_eq!(listed(Kind::Rule), serde_fields::<RawRule>());
        assert_eq!(listed(Kind::When), serde_fields::<RawWhen>());
        assert_eq!(listed(Kind::Model), serde_fields::<RawModel>());
        assert_eq!(listed(Kind::ModelColumn), serde_fields::<RawModelColumn>());
        assert_eq!(listed(Kind::Plan), serde_fields::<RawPlan>());
        assert_eq!(listed(Kind::Target), serde_fields::<RawTarget>());
        assert_eq!(
            listed(Kind::Unmeasurable),
            serde_fields::<RawUnmeasurable>()
        );
        use super::super::ranking::{
            RawBand, RawCriterion, RawInput, RawRule as RawRankRule, RawScheme, RawStep, RawTier,
        };
        assert_eq!(listed(Kind::Scheme), serde_fields::<RawScheme>());
        assert_eq!(listed(Kind::SchemeInput), serde_fields::<RawInput>());
        assert_eq!(listed(Kind::Band), serde_fields::<RawBand>());
        assert_eq!(listed(Kind::Tier), serde_fields::<RawTier>());
        assert_eq!(listed(Kind::Criterion), serde_fields::<RawCriterion>());
        assert_eq!(listed(Kind::RankRule), serde_fields::<RawRankRule>());
        assert_eq!(listed(Kind::Step), serde_fields::<RawStep>());
    }
}
