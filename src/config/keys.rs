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
pub enum FileKind {
    Env,
    Serve,
    Pipeline,
    Source,
    Format,
    Column,
    Derived,
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

impl FileKind {
    fn keys(self) -> &'static [&'static str] {
        match self {
            FileKind::Env => &[
                "pipelines",
                "landing",
                "warehouse",
                "units",
                "pii_key_env",
                "plans",
                "engine",
                "memory_limit",
                "temp_dir",
                "threads",
                "state_snapshots",
                "serve",
            ],
            FileKind::Serve => &[
                "listen",
                "users_file",
                "tls_cert",
                "tls_key",
                "max_connections",
                "query_timeout_s",
                "query_memory_limit",
            ],
            FileKind::Pipeline => &["system", "description", "sources", "models"],
            FileKind::Source => &[
                "name",
                "description",
                "files",
                "format",
                "key",
                "versioning",
                "columns",
                "rules",
                "missing_day",
                "derived",
            ],
            FileKind::Derived => &["name", "sql", "description"],
            FileKind::Format => &["type", "service"],
            FileKind::Column => &[
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
            FileKind::Rule => &["when", "require_any", "reason"],
            FileKind::When => &["column", "in"],
            FileKind::Model => &["name", "description", "materialized", "sql", "columns"],
            FileKind::ModelColumn => &["name", "description"],
            FileKind::Plan => &["plan", "targets", "unmeasurable"],
            FileKind::Target => &[
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
            FileKind::Unmeasurable => &["id", "plan_text", "reason"],
            FileKind::Scheme => &["title", "inputs", "bands", "tiers"],
            FileKind::SchemeInput => &["name", "file", "description"],
            FileKind::Band => &["band", "min"],
            FileKind::Tier => &["tier", "label", "criteria"],
            FileKind::Criterion => &["id", "label", "max_points", "rule"],
            FileKind::RankRule => &[
                "kind", "target", "goal", "per_case", "floor", "steps", "input",
            ],
            FileKind::Step => &["min", "points"],
        }
    }

    fn what(self) -> &'static str {
        match self {
            FileKind::Env => "environment config",
            FileKind::Serve => "serve",
            FileKind::Pipeline => "pipeline",
            FileKind::Source => "source",
            FileKind::Format => "format",
            FileKind::Column => "column",
            FileKind::Derived => "derived column",
            FileKind::Rule => "rule",
            FileKind::When => "rule condition",
            FileKind::Model => "model",
            FileKind::ModelColumn => "model column",
            FileKind::Plan => "plan",
            FileKind::Target => "target",
            FileKind::Unmeasurable => "unmeasurable target",
            FileKind::Scheme => "ranking scheme",
            FileKind::SchemeInput => "ranking input",
            FileKind::Band => "band",
            FileKind::Tier => "tier",
            FileKind::Criterion => "criterion",
            FileKind::RankRule => "scoring rule",
            FileKind::Step => "step",
        }
    }

    /// The kind of the mapping(s) under `key` of this kind.
    fn child(self, key: &str) -> Option<FileKind> {
        match (self, key) {
            (FileKind::Env, "serve") => Some(FileKind::Serve),
            (FileKind::Pipeline, "sources") => Some(FileKind::Source),
            (FileKind::Source, "format") => Some(FileKind::Format),
            (FileKind::Source, "columns") | (FileKind::Column, "fields") => Some(FileKind::Column),
            (FileKind::Source, "rules") => Some(FileKind::Rule),
            (FileKind::Source, "derived") => Some(FileKind::Derived),
            (FileKind::Rule, "when") => Some(FileKind::When),
            (FileKind::Pipeline, "models") => Some(FileKind::Model),
            (FileKind::Model, "columns") => Some(FileKind::ModelColumn),
            (FileKind::Plan, "targets") => Some(FileKind::Target),
            (FileKind::Plan, "unmeasurable") => Some(FileKind::Unmeasurable),
            (FileKind::Scheme, "inputs") => Some(FileKind::SchemeInput),
            (FileKind::Scheme, "bands") => Some(FileKind::Band),
            (FileKind::Scheme, "tiers") => Some(FileKind::Tier),
            (FileKind::Tier, "criteria") => Some(FileKind::Criterion),
            (FileKind::Criterion, "rule") => Some(FileKind::RankRule),
            (FileKind::RankRule, "steps") => Some(FileKind::Step),
            _ => None,
        }
    }
}

fn walk(node: &Node, kind: FileKind, file: &str, diags: &mut Diagnostics) {
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
pub fn report_unknown_keys(
    text: &str,
    kind: FileKind,
    file: &str,
    diags: &mut Diagnostics,
) -> bool {
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
        RawColumn, RawDerived, RawEnv, RawModel, RawModelColumn, RawPipeline, RawPlan, RawRule,
        RawServe, RawSource, RawTarget, RawUnmeasurable, RawWhen,
    };
    use super::FileKind;

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

    fn listed(kind: FileKind) -> Vec<String> {
        let mut v: Vec<String> = kind.keys().iter().map(|k| k.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn key_lists_match_the_raw_structs() {
        assert_eq!(listed(FileKind::Env), serde_fields::<RawEnv>());
        assert_eq!(listed(FileKind::Serve), serde_fields::<RawServe>());
        assert_eq!(listed(FileKind::Pipeline), serde_fields::<RawPipeline>());
        assert_eq!(listed(FileKind::Source), serde_fields::<RawSource>());
        assert_eq!(listed(FileKind::Column), serde_fields::<RawColumn>());
        assert_eq!(listed(FileKind::Derived), serde_fields::<RawDerived>());
        assert_eq!(listed(FileKind::Rule), serde_fields::<RawRule>());
        assert_eq!(listed(FileKind::When), serde_fields::<RawWhen>());
        assert_eq!(listed(FileKind::Model), serde_fields::<RawModel>());
        assert_eq!(
            listed(FileKind::ModelColumn),
            serde_fields::<RawModelColumn>()
        );
        assert_eq!(listed(FileKind::Plan), serde_fields::<RawPlan>());
        assert_eq!(listed(FileKind::Target), serde_fields::<RawTarget>());
        assert_eq!(
            listed(FileKind::Unmeasurable),
            serde_fields::<RawUnmeasurable>()
        );
        use super::super::scheme::{
            RawBand, RawCriterion, RawInput, RawScheme, RawScoreRule as RawRankRule, RawStep,
            RawTier,
        };
        assert_eq!(listed(FileKind::Scheme), serde_fields::<RawScheme>());
        assert_eq!(listed(FileKind::SchemeInput), serde_fields::<RawInput>());
        assert_eq!(listed(FileKind::Band), serde_fields::<RawBand>());
        assert_eq!(listed(FileKind::Tier), serde_fields::<RawTier>());
        assert_eq!(listed(FileKind::Criterion), serde_fields::<RawCriterion>());
        assert_eq!(listed(FileKind::RankRule), serde_fields::<RawRankRule>());
        assert_eq!(listed(FileKind::Step), serde_fields::<RawStep>());
    }
}
