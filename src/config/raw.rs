//! Raw configuration as written in YAML: nothing here is trusted yet. `deny_unknown_fields`
//! everywhere; locations are kept (`Spanned`) wherever a later semantic check may point.

use serde::Deserialize;
use serde_saphyr::Spanned;

/// `configs/<env>.yaml`: where things are for one environment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnv {
    /// Folder of pipeline YAML files, relative to this file.
    pub pipelines: Option<Spanned<String>>,
    /// Landing area: local path (relative to this file) or URL.
    pub landing: Option<Spanned<String>>,
    /// Warehouse root: local path (relative to this file) or URL.
    pub warehouse: Option<Spanned<String>>,
    /// units.csv; default `<landing>/reference/units.csv`.
    pub units: Option<Spanned<String>>,
    /// Name of the environment variable that holds the pseudonymisation key.
    pub pii_key_env: Option<Spanned<String>>,
    /// Folder of the reform plans, one sub-folder per plan year (`plans/2022/targets.yaml`),
    /// relative to this file; default `plans`.
    pub plans: Option<Spanned<String>>,
    /// `local` (default) or `ballista://HOST:PORT`: where marts, checks and SQL run.
    pub engine: Option<Spanned<String>>,
    /// Memory the query engine may use before it spills to `temp_dir` (`1GiB`, `512MiB`);
    /// default 1 GiB.
    pub memory_limit: Option<Spanned<String>>,
    /// Folder of the engine's spill files, relative to this file; default the system's.
    pub temp_dir: Option<Spanned<String>>,
    /// Marts computed at once (1 to 16); default 2 from all of staging, 1 from snapshots.
    pub threads: Option<Spanned<i64>>,
    /// Keep month-end state snapshots so that a daily run reads one snapshot and the versions
    /// after it instead of all of staging; default true.
    pub state_snapshots: Option<bool>,
    /// `cchc serve`: the SQL endpoint.
    pub serve: Option<RawServe>,
}

/// The `serve:` section of an environment config.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawServe {
    /// `ADDR:PORT`; default `127.0.0.1:5433`.
    pub listen: Option<String>,
    /// File of SCRAM-SHA-256 verifiers (`cchc serve add-user`), relative to this file.
    pub users_file: Option<String>,
    /// PEM certificate chain and PKCS#8 key for TLS, relative to this file.
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    /// Most connections served at once; default 64.
    pub max_connections: Option<usize>,
    /// A query running longer fails (SQLSTATE 57014); default 300.
    pub query_timeout_s: Option<u64>,
    /// Memory one statement may use before it spills, then fails (SQLSTATE 53200); default
    /// 256MiB.
    pub query_memory_limit: Option<Spanned<String>>,
}

/// `pipelines/<name>.yaml`: the sources of one source system, and/or models (SQL views and
/// marts) over the staging tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    /// Folder name of the system in the landing area (`one_stop`, `ioffice`, …); required
    /// when the file declares sources.
    #[serde(default)]
    pub system: Option<Spanned<String>>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub sources: Vec<RawSource>,
    #[serde(default)]
    pub models: Vec<RawModel>,
}

/// A SQL model over the state tables: a view, or a mart materialised per period.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// `table` (default: written per period under `marts/<name>/period=…`) or `view`.
    #[serde(default)]
    pub materialized: Option<Spanned<String>>,
    pub sql: Spanned<String>,
    /// Every output column, in order, with its meaning (the data dictionary).
    pub columns: Vec<RawModelColumn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModelColumn {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// `plans/<year>/targets.yaml`: the targets of one year's reform plan.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlan {
    /// The plan document (decision number and date).
    pub plan: String,
    pub targets: Vec<RawTarget>,
    /// Targets the plan names that no extract can measure: reported as such.
    #[serde(default)]
    pub unmeasurable: Vec<RawUnmeasurable>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// Stable id (the ranking and the marts refer to it).
    pub id: Spanned<String>,
    /// The plan's own words (Vietnamese).
    pub plan_text: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The mart that holds numerator and denominator.
    pub mart: Spanned<String>,
    pub numerator: Spanned<String>,
    pub denominator: Spanned<String>,
    /// A list column of the mart with a sample of the offending keys.
    #[serde(default)]
    pub offending: Option<Spanned<String>>,
    /// `ratio` (default): numerator / denominator; `count`: the numerator itself.
    #[serde(default)]
    pub measure: Option<Spanned<String>>,
    /// `unit` (default: every unit plus the province roll-up `ALL`) or `province` (`ALL` only).
    #[serde(default)]
    pub grouping: Option<Spanned<String>>,
    /// `month` and/or `year` (default both).
    #[serde(default)]
    pub periods: Option<Vec<Spanned<String>>>,
    /// `>=`, `>`, `=`, `<=` or `<`; with no threshold the target is an indicator.
    #[serde(default)]
    pub comparator: Option<Spanned<String>>,
    #[serde(default)]
    pub threshold: Option<Spanned<f64>>,
    /// `error` (a failure makes `cchc run` exit 1) or `warn`.
    #[serde(default)]
    pub severity: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUnmeasurable {
    pub id: Spanned<String>,
    pub plan_text: String,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// File-name pattern inside a day folder, one `*` wildcard at most: `hoso_*.json`.
    pub files: Spanned<String>,
    pub format: RawFormat,
    /// Staging column(s) identifying an entity; its versions share the key.
    pub key: Vec<Spanned<String>>,
    /// How versions of an entity succeed each other (default `latest`).
    #[serde(default)]
    pub versioning: Option<Spanned<String>>,
    pub columns: Vec<RawColumn>,
    #[serde(default)]
    pub rules: Vec<RawRule>,
    /// Severity of a day with no file of this source: `warn` (default), `error` (the run exits
    /// 1, like a failed target) or `ignore` (a source that does not deliver every day).
    #[serde(default)]
    pub missing_day: Option<Spanned<String>>,
    /// Columns computed from each version's staging columns, before the state-as-of rule.
    #[serde(default)]
    pub derived: Vec<RawDerived>,
}

/// A derived column of a source: `{ name, sql, description }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDerived {
    pub name: Spanned<String>,
    /// A SQL expression over the source's staging columns (one version's row).
    pub sql: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawFormat {
    /// `{"service": "...", "data": [ {record}, … ]}` (the national portal's envelope).
    DvcqgJson { service: String },
    /// CSV with a header row, optional byte-order mark, RFC 4180 quoting.
    Csv,
    /// One JSON object per line.
    Ndjson,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawColumn {
    /// Staging column name (snake_case English).
    pub name: Spanned<String>,
    /// Field name in the extract (JSON key or CSV header), as the system spells it.
    pub from: Spanned<String>,
    #[serde(rename = "type")]
    pub ty: Spanned<String>,
    /// Text format of a timestamp or date.
    #[serde(default)]
    pub format: Option<Spanned<String>>,
    /// Missing or empty makes the record bad.
    #[serde(default)]
    pub required: bool,
    /// JSON `null` is accepted (as an absent value) instead of making the record bad.
    #[serde(default)]
    pub nullable: bool,
    /// Personal data: replaced by a keyed HMAC at ingest.
    #[serde(default)]
    pub pii: bool,
    /// Allowed values (after NFC); any other non-empty value makes the record bad.
    #[serde(default)]
    pub allowed: Option<Vec<String>>,
    /// `units`: the value must be a unit code of units.csv.
    #[serde(default)]
    pub references: Option<Spanned<String>>,
    /// Item fields of a `list` column (a JSON array of objects).
    #[serde(default)]
    pub fields: Option<Vec<RawColumn>>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub when: RawWhen,
    /// At least one of these columns must be present.
    pub require_any: Vec<Spanned<String>>,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWhen {
    pub column: Spanned<String>,
    #[serde(rename = "in")]
    pub values: Vec<String>,
}
