//! Configuration: raw YAML (`raw`) → validated, typed pipeline (`Pipeline`) → used by ingest.
//!
//! Validation is a separate step that returns *every* problem it finds: each YAML file's parse
//! error (serde stops at the first one inside a file) plus every semantic problem across all files,
//! each with a stable code, `file:line:column` and, for unknown names, a "did you mean".
//!
//! Codes: C001 unreadable file, C002 YAML syntax or shape (unknown key, wrong type),
//! C003 unknown column type, C004 bad or missing format, C005 unknown column, C006 duplicate name,
//! C007 bad name or pattern, C008 bad reference, C009 list without item fields,
//! C010 unknown versioning.
//!
//! Precedence of runtime settings: built-in defaults < config file < environment < flags.

pub mod keys;
pub mod plan;
pub mod raw;
pub mod scheme;
pub mod sources;
pub mod units;

use std::path::{Path, PathBuf};

use serde_saphyr::{Location, Spanned};

use crate::base::error::{Diagnostic, Error, Result};
pub use plan::{
    Comparator, Grouping, Materialized, Measure, Model, PeriodKind, Plan, Severity, Target,
};
use raw::{RawColumn, RawDerived, RawEnv, RawFormat, RawPipeline, RawPlan, RawSource};
pub use scheme::Scheme;

/// Default config file of the embedded local environment.
pub const DEFAULT_CONFIG: &str = "configs/local.yaml";
/// Environment variable holding the pseudonymisation key, unless the config names another.
pub const DEFAULT_PII_KEY_ENV: &str = "CCHC_PII_KEY";

/// A validated source: one kind of file of one source system, landing in one staging table.
#[derive(Debug, Clone)]
pub struct Source {
    pub system: String,
    /// Staging table name, unique across pipelines.
    pub name: String,
    pub description: String,
    pub pattern: FilePattern,
    pub format: Format,
    pub key: Vec<String>,
    pub versioning: Versioning,
    pub columns: Vec<Column>,
    pub rules: Vec<Rule>,
    /// Severity of a day without any file of this source (freshness); `None`: expected (a
    /// source that does not deliver every day, like the procedure catalog).
    pub missing_day: Option<Severity>,
    /// Columns computed from each version's staging columns (see [`Derived`]).
    pub derived: Vec<Derived>,
    /// The pipeline file that declared it.
    pub file: String,
}

/// A derived column of a source: a SQL expression over one version's staging columns, computed
/// by `<source>_versions` before the state-as-of rule and listed by `<source>_state` after the
/// staging columns. What every model would compute off each state row (a local date, a field of
/// a list) is computed once per version instead of once per period and entity, and the staging
/// columns it reads need not travel through the window and the periods join.
#[derive(Debug, Clone)]
pub struct Derived {
    pub name: String,
    pub sql: String,
    pub description: String,
    /// Line and column of its `sql` in [`Source::file`].
    pub sql_at: (u64, u64),
}

/// How the versions of an entity succeed each other (EXTRACTS.md, "Reading rules").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    /// Each record is the whole current state; the newest one (extract day, file, position) wins.
    Latest,
    /// Events are appended, never updated: the first one seen of a key is kept.
    FirstSeen,
    /// Each file is a whole snapshot; the newest snapshot (extract day, file name) replaces all.
    Snapshot,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    DvcqgJson { service: String },
    Csv,
    Ndjson,
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub from: String,
    pub kind: Kind,
    pub required: bool,
    pub nullable: bool,
    pub pii: bool,
    pub allowed: Option<Vec<String>>,
    pub references_units: bool,
    pub description: String,
}

#[derive(Debug, Clone)]
pub enum Kind {
    String,
    Int,
    Timestamp(TsFormat),
    Date(DateFormat),
    List(Vec<Column>),
}

/// Timestamp text formats of the extracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsFormat {
    /// `yyyyMMddHHmmss`, local time.
    Compact,
    /// `dd/MM/yyyy` or `dd/MM/yyyy HH:mm`, local time.
    DayFirst,
    /// RFC 3339 with an offset.
    Rfc3339,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateFormat {
    /// `dd/MM/yyyy`.
    DayFirst,
}

/// "When `column` is one of `values`, at least one of `require_any` must be present."
#[derive(Debug, Clone)]
pub struct Rule {
    pub column: usize,
    pub values: Vec<String>,
    pub require_any: Vec<usize>,
    pub reason: String,
}

/// A file-name pattern with at most one `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePattern {
    pub prefix: String,
    pub suffix: Option<String>,
}

impl std::fmt::Display for FilePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.suffix {
            None => f.write_str(&self.prefix),
            Some(s) => write!(f, "{}*{s}", self.prefix),
        }
    }
}

impl FilePattern {
    pub fn matches(&self, name: &str) -> bool {
        match &self.suffix {
            None => name == self.prefix,
            Some(s) => {
                name.len() >= self.prefix.len() + s.len()
                    && name.starts_with(&self.prefix)
                    && name.ends_with(s.as_str())
            }
        }
    }
}

/// The whole validated configuration of one environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub config_file: PathBuf,
    /// The folder of the pipeline YAML (its `tests/` holds the pipeline's tests).
    pub pipelines_dir: PathBuf,
    pub landing: String,
    pub warehouse: String,
    pub units: String,
    pub pii_key_env: String,
    pub sources: Vec<Source>,
    /// SQL views and marts, in declaration order (a model may read the ones before it).
    pub models: Vec<Model>,
    /// The reform plans, by year.
    pub plans: Vec<Plan>,
    /// The ranking schemes, by year.
    pub schemes: Vec<Scheme>,
    /// The query engine's resources.
    pub engine: EngineConfig,
    /// `cchc serve`.
    pub serve: ServeConfig,
}

/// What the query engine may use: memory before it spills, and where it spills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Bytes the engine's operators may hold at once (sorts, aggregations and joins spill to
    /// `temp_dir` beyond it; what cannot spill fails naming the limit).
    pub memory_limit: u64,
    /// Folder of spill files; `None` for the system's temporary folder.
    pub temp_dir: Option<PathBuf>,
    /// `engine: ballista://HOST:PORT`: the scheduler that runs the marts, checks and SQL;
    /// `None` (`engine: local`, the default) for this process.
    pub cluster: Option<String>,
    /// `--explain-analyze`: print each mart's executed plan with its operators' rows, times,
    /// memory and spills (to stderr), so a slow model is found without a profiler.
    pub explain_analyze: bool,
    /// `threads`: marts computed at once, like dbt's `threads` (see
    /// `crate::warehouse::models::compute`); `None`: two ([`EngineConfig::marts_at_once`]).
    pub threads: Option<usize>,
    /// `state_snapshots` (default true): refreshes keep and read month-end state snapshots
    /// (`crate::warehouse::snapshots`); false: every refresh reads all of staging.
    pub state_snapshots: bool,
}

impl EngineConfig {
    /// Marts computed at once: `threads` when set, else two. A mart's query keeps both cores
    /// busy only part of the time and a second one fills the gaps: the year's marts 3.2–3.6 →
    /// 2.9–3.1 s when they read all of staging. Daily runs, which read month-end snapshots, were
    /// once faster one at a time (beside each other the marts split the memory pool's fair
    /// shares and spilled: 0.87–0.93 s against 0.99–1.05 s); since each mart aggregates only the
    /// rows its figures count, none spills and two at a time is faster there too (a month's
    /// first day: marts computed 282–315 → 246–248 ms, peak 307 → 335 MB; the year's last day
    /// run again 460–471 → 413–430 ms). On a Ballista cluster, one at a time unless `threads`
    /// says otherwise: a job that lost an executor while another job ran beside it returned
    /// some rows twice (the cluster test's executor kill, `mart_dossiers` of the year), which
    /// one job at a time had not shown.
    pub fn marts_at_once(&self) -> usize {
        match (self.threads, &self.cluster) {
            (Some(n), _) => n,
            (None, Some(_)) => 1,
            (None, None) => 2,
        }
    }
}

/// A `threads` value (config key, `CCHC_THREADS`, `--threads`): 1 to 16.
pub fn parse_threads(text: &str) -> std::result::Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n @ 1..=16) => Ok(n),
        _ => Err(format!(
            "`{}` is not a number of marts computed at once: 1 to 16",
            text.trim()
        )),
    }
}

/// The scheduler address of an `engine` value: `local` → `None`, `ballista://HOST:PORT` →
/// `HOST:PORT`; anything else is not an engine.
pub fn parse_engine(text: &str) -> std::result::Result<Option<String>, String> {
    let t = text.trim();
    if t == "local" {
        return Ok(None);
    }
    match t.strip_prefix("ballista://") {
        Some(addr) if addr.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()) => {
            Ok(Some(addr.trim_end_matches('/').to_string()))
        }
        _ => Err(format!(
            "`{t}` is not an engine: `local` or `ballista://HOST:PORT` (a scheduler of `cchc cluster scheduler`)"
        )),
    }
}

/// The smallest memory limit accepted: below it DataFusion 55 was measured to stall on our
/// marts (no progress, no error: the 2022 test year at 1–6 MiB) instead of spilling or failing.
pub const MIN_MEMORY_LIMIT: u64 = 16 << 20;

/// A size for a memory limit, or why not.
pub fn memory_size(text: &str) -> std::result::Result<u64, String> {
    match crate::base::size::parse_size(text) {
        None => Err(format!("`{text}` is not a size (e.g. 512MiB, 1GiB)")),
        Some(n) if n < MIN_MEMORY_LIMIT => Err(format!(
            "`{text}` is below the smallest memory limit, 16 MiB (smaller ones stall the engine)"
        )),
        Some(n) => Ok(n),
    }
}

/// The engine's memory unless the config says otherwise.
pub const DEFAULT_MEMORY_LIMIT: u64 = 1 << 30;

/// What one statement of `cchc serve` may hold unless the config says otherwise.
pub const DEFAULT_QUERY_MEMORY_LIMIT: u64 = 256 << 20;

/// The SQL endpoint's settings (`serve:` of the environment config), paths resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    pub listen: String,
    pub users_file: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub max_connections: usize,
    pub query_timeout_s: u64,
    /// Bytes one statement may hold before it spills, then fails.
    pub query_memory_limit: u64,
}

/// Where `cchc serve` listens unless told otherwise (5432 is left to a real PostgreSQL).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5433";

impl Config {
    pub fn source(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name == name)
    }

    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.name == name)
    }

    /// The plan whose targets apply to periods of `year`: that year's plan, else the newest
    /// earlier one (a plan stays in force until the next is written).
    pub fn plan_for(&self, year: i32) -> Option<&Plan> {
        in_force(&self.plans, year, |p| p.year)
    }

    /// The ranking scheme of `year`: that year's, else the newest earlier one.
    pub fn scheme_for(&self, year: i32) -> Option<&Scheme> {
        in_force(&self.schemes, year, |s| s.year)
    }
}

/// Of yearly documents, the one in force in `year`: that year's, else the newest earlier one.
fn in_force<T>(items: &[T], year: i32, year_of: impl Fn(&T) -> i32) -> Option<&T> {
    items
        .iter()
        .filter(|x| year_of(x) <= year)
        .max_by_key(|x| year_of(x))
}

/// Runtime overrides (environment, then flags) applied over the config file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub landing: Option<String>,
    pub warehouse: Option<String>,
    pub units: Option<String>,
    pub memory_limit: Option<u64>,
    pub temp_dir: Option<String>,
    pub threads: Option<usize>,
    /// `Some(None)`: local; `Some(Some(addr))`: a Ballista scheduler.
    pub engine: Option<Option<String>>,
    pub explain_analyze: bool,
}

/// Collects diagnostics so validation can go on after the first problem.
#[derive(Default)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(
        &mut self,
        code: &'static str,
        file: &str,
        loc: Option<Location>,
        message: impl Into<String>,
    ) {
        let at = loc.map(|l| (l.line(), l.column())).unwrap_or((0, 0));
        self.push_at(code, file, at, message);
    }
    pub fn push_at(
        &mut self,
        code: &'static str,
        file: &str,
        (line, column): (u64, u64),
        message: impl Into<String>,
    ) {
        self.items.push(Diagnostic {
            code,
            file: file.to_string(),
            line,
            column,
            message: message.into(),
        });
    }
    pub(crate) fn at<T>(
        &mut self,
        code: &'static str,
        file: &str,
        s: &Spanned<T>,
        message: impl Into<String>,
    ) {
        self.push(code, file, Some(s.referenced), message);
    }
}

/// "did you mean `x`?" for a misspelt name, when one candidate is close enough.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let best = candidates
        .into_iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&name.to_lowercase(), &c.to_lowercase()),
                c,
            )
        })
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((_, c)) => format!("; did you mean `{c}`?"),
        None => String::new(),
    }
}

/// Parse one YAML file into `T`, turning a parse error into located diagnostics: every unknown
/// key of the file when that is what stopped the parse, else the one error.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(
    path: &Path,
    kind: keys::FileKind,
    diags: &mut Diagnostics,
) -> Option<T> {
    let file = clean_path(path).display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            diags.push("C001", &file, None, format!("cannot read: {e}"));
            return None;
        }
    };
    match serde_saphyr::from_str::<T>(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            let before = diags.items.len();
            if yaml_message(&e).starts_with("unknown field `") {
                keys::report_unknown_keys(&text, kind, &file, diags);
            }
            if diags.items.len() == before {
                diags.push("C002", &file, e.location(), yaml_message(&e));
            }
            None
        }
    }
}

/// The one-line message of a YAML error, without the location the diagnostic already carries,
/// and with a did-you-mean for an unknown key.
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let full = e.to_string();
    // The library's Display may append a source snippet; the first line is the message.
    let mut msg = full.lines().next().unwrap_or("").trim();
    msg = msg.strip_prefix("error: ").unwrap_or(msg);
    if msg.starts_with("line ") {
        if let Some((_, rest)) = msg.split_once(": ") {
            msg = rest;
        }
    }
    if let Some(rest) = msg
        .strip_prefix("unknown field `")
        .or_else(|| msg.strip_prefix("unknown variant `"))
    {
        if let Some((unknown, tail)) = rest.split_once('`') {
            let expected = tail
                .split_once("expected one of ")
                .map(|x| x.1)
                .unwrap_or("");
            let candidates = expected.split(',').map(|c| c.trim().trim_matches('`'));
            return format!("{msg}{}", did_you_mean(unknown, candidates));
        }
    }
    msg.to_string()
}

/// `a/b/../c` → `a/c`, for messages (no file-system access).
pub fn clean_path(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Resolve a path of a config file: URLs stay as they are, relative paths are relative to the
/// config file's folder.
fn resolve(base: &Path, value: &str) -> String {
    if value.contains("://") || Path::new(value).is_absolute() {
        value.to_string()
    } else {
        clean_path(&base.join(value)).display().to_string()
    }
}

/// Load and validate the configuration: the environment file, then every pipeline it names.
pub fn load(config_file: &Path, overrides: &Overrides) -> Result<Config> {
    let mut diags = Diagnostics::default();
    let cfg = load_collecting(config_file, overrides, &mut diags);
    match cfg {
        Some(c) if diags.items.is_empty() => Ok(c),
        _ => Err(Error::Config(diags.items)),
    }
}

fn load_collecting(
    config_file: &Path,
    overrides: &Overrides,
    diags: &mut Diagnostics,
) -> Option<Config> {
    let env: RawEnv = parse_yaml(config_file, keys::FileKind::Env, diags)?;
    let base = config_file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let file = clean_path(config_file).display().to_string();
    let pipelines_dir = clean_path(
        &base.join(
            env.pipelines
                .as_ref()
                .map(|s| s.value.as_str())
                .unwrap_or("../pipelines"),
        ),
    );
    let landing = overrides
        .landing
        .clone()
        .or_else(|| env.landing.as_ref().map(|s| resolve(&base, &s.value)))
        .unwrap_or_else(|| resolve(&base, "../.cchc/landing"));
    let warehouse = overrides
        .warehouse
        .clone()
        .or_else(|| env.warehouse.as_ref().map(|s| resolve(&base, &s.value)))
        .unwrap_or_else(|| resolve(&base, "../.cchc/warehouse"));
    let units = overrides
        .units
        .clone()
        .or_else(|| env.units.as_ref().map(|s| resolve(&base, &s.value)))
        .unwrap_or_else(|| format!("{}/reference/units.csv", landing.trim_end_matches('/')));
    let pii_key_env = env
        .pii_key_env
        .as_ref()
        .map(|s| s.value.clone())
        .unwrap_or_else(|| DEFAULT_PII_KEY_ENV.into());
    if let Some(k) = &env.pii_key_env {
        if k.value.is_empty()
            || !k
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            diags.at(
                "C007",
                &file,
                k,
                format!("`{}` is not an environment variable name", k.value),
            );
        }
    }

    let mut files: Vec<PathBuf> = match std::fs::read_dir(&pipelines_dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
            .collect(),
        Err(e) => {
            let loc = env.pipelines.as_ref().map(|s| s.referenced);
            diags.push(
                "C001",
                &file,
                loc,
                format!(
                    "cannot read pipeline folder {}: {e}",
                    pipelines_dir.display()
                ),
            );
            Vec::new()
        }
    };
    files.sort();
    let mut sources = Vec::new();
    let mut models: Vec<Model> = Vec::new();
    let mut seen_systems: Vec<String> = Vec::new();
    let mut all_parsed = true;
    for path in &files {
        let Some(p) = parse_yaml::<RawPipeline>(path, keys::FileKind::Pipeline, diags) else {
            all_parsed = false;
            continue;
        };
        let pfile = clean_path(path).display().to_string();
        if let Some(system) = &p.system {
            if !is_identifier(&system.value) {
                diags.at(
                    "C007",
                    &pfile,
                    system,
                    format!(
                        "system `{}` must be a lower-case identifier (it names a landing folder)",
                        system.value
                    ),
                );
            }
            if seen_systems.contains(&system.value) {
                diags.at(
                    "C006",
                    &pfile,
                    system,
                    format!(
                        "system `{}` is declared by another pipeline file too",
                        system.value
                    ),
                );
            }
            seen_systems.push(system.value.clone());
        } else if !p.sources.is_empty() {
            diags.push(
                "C005",
                &pfile,
                None,
                "a pipeline with sources needs `system` (the landing folder of the source system)",
            );
        }
        let system = p
            .system
            .as_ref()
            .map(|s| s.value.clone())
            .unwrap_or_default();
        for s in p.sources {
            if let Some(src) = validate_source(&system, s, &pfile, diags) {
                if sources.iter().any(|o: &Source| o.name == src.name) {
                    diags.push("C006", &pfile, None, format!("source `{}` is declared twice; source names are table names and must be unique", src.name));
                }
                sources.push(src);
            }
        }
        for m in p.models {
            let name = m.name.clone();
            if let Some(model) = plan::validate_model(m, &pfile, diags) {
                if models.iter().any(|o| o.name == model.name) {
                    diags.at(
                        "C006",
                        &pfile,
                        &name,
                        format!("model `{}` is declared twice", model.name),
                    );
                }
                models.push(model);
            }
        }
    }
    for m in &models {
        if sources
            .iter()
            .any(|s| s.name == m.name || sources::reserved_names(s).contains(&m.name))
        {
            diags.push_at(
                "C006",
                &m.file,
                m.sql_at,
                format!(
                    "model `{}` has the name of a staging table or one of its views",
                    m.name
                ),
            );
        }
    }
    // References from targets to marts are checked only when every model could be read.
    let (plans, schemes) = load_plans(&base, &env, &file, all_parsed.then_some(&models[..]), diags);
    if files.is_empty() && diags.items.is_empty() {
        diags.push(
            "C001",
            &file,
            None,
            format!("no pipeline YAML in {}", pipelines_dir.display()),
        );
    }
    let mut size = |key: &str, s: &Option<Spanned<String>>, default: u64| match s {
        None => default,
        Some(v) => memory_size(&v.value).unwrap_or_else(|why| {
            diags.at("C002", &file, v, format!("`{key}`: {why}"));
            default
        }),
    };
    let memory_limit = overrides
        .memory_limit
        .unwrap_or_else(|| size("memory_limit", &env.memory_limit, DEFAULT_MEMORY_LIMIT));
    let raw_serve = env.serve.unwrap_or_default();
    let query_memory_limit = size(
        "serve.query_memory_limit",
        &raw_serve.query_memory_limit,
        DEFAULT_QUERY_MEMORY_LIMIT,
    );
    let cluster = match (&overrides.engine, &env.engine) {
        (Some(e), _) => e.clone(),
        (None, Some(v)) => parse_engine(&v.value).unwrap_or_else(|why| {
            diags.at("C002", &file, v, why);
            None
        }),
        (None, None) => None,
    };
    let threads = overrides.threads.or_else(|| match &env.threads {
        None => None,
        Some(v) => match parse_threads(&v.value.to_string()) {
            Ok(n) => Some(n),
            Err(why) => {
                diags.at("C002", &file, v, format!("`threads`: {why}"));
                None
            }
        },
    });
    let engine = EngineConfig {
        cluster,
        memory_limit,
        threads,
        explain_analyze: overrides.explain_analyze,
        state_snapshots: env.state_snapshots.unwrap_or(true),
        temp_dir: overrides
            .temp_dir
            .clone()
            .or_else(|| env.temp_dir.as_ref().map(|s| resolve(&base, &s.value)))
            .map(PathBuf::from),
    };
    let serve = ServeConfig {
        listen: raw_serve.listen.unwrap_or_else(|| DEFAULT_LISTEN.into()),
        users_file: raw_serve.users_file.map(|p| resolve(&base, &p)),
        tls_cert: raw_serve.tls_cert.map(|p| resolve(&base, &p)),
        tls_key: raw_serve.tls_key.map(|p| resolve(&base, &p)),
        max_connections: raw_serve.max_connections.unwrap_or(64),
        query_timeout_s: raw_serve.query_timeout_s.unwrap_or(300),
        query_memory_limit,
    };
    Some(Config {
        engine,
        serve,
        config_file: config_file.to_path_buf(),
        pipelines_dir,
        landing,
        warehouse,
        units,
        pii_key_env,
        sources,
        models,
        plans,
        schemes,
    })
}

/// Every `<plans>/<YYYY>/targets.yaml` and `ranking.yaml`. A missing default folder means no
/// targets; a folder named in the config must exist.
fn load_plans(
    base: &Path,
    env: &RawEnv,
    file: &str,
    models: Option<&[Model]>,
    diags: &mut Diagnostics,
) -> (Vec<Plan>, Vec<Scheme>) {
    let dir = clean_path(
        &base.join(
            env.plans
                .as_ref()
                .map(|s| s.value.as_str())
                .unwrap_or("plans"),
        ),
    );
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) => {
            if let Some(p) = &env.plans {
                diags.at(
                    "C001",
                    file,
                    p,
                    format!("cannot read plans folder {}: {e}", dir.display()),
                );
            }
            return (Vec::new(), Vec::new());
        }
    };
    let mut years: Vec<(i32, PathBuf)> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let y = p.file_name()?.to_str()?.parse::<i32>().ok()?;
            (1900..=9999).contains(&y).then_some((y, p))
        })
        .collect();
    years.sort();
    let mut plans = Vec::new();
    for (year, folder) in &years {
        let path = folder.join("targets.yaml");
        if !path.exists() {
            continue;
        }
        let Some(raw) = parse_yaml::<RawPlan>(&path, keys::FileKind::Plan, diags) else {
            continue;
        };
        let pfile = clean_path(&path).display().to_string();
        if let Some(p) = plan::validate_plan(*year, raw, &pfile, models, diags) {
            plans.push(p);
        }
    }
    let mut schemes = Vec::new();
    for (year, folder) in &years {
        let path = folder.join("ranking.yaml");
        if !path.exists() {
            continue;
        }
        let Some(raw) = parse_yaml::<scheme::RawScheme>(&path, keys::FileKind::Scheme, diags)
        else {
            continue;
        };
        let sfile = clean_path(&path).display().to_string();
        let plan = in_force(&plans, *year, |p| p.year);
        if let Some(s) = scheme::validate_scheme(*year, raw, &sfile, plan, diags) {
            schemes.push(s);
        }
    }
    (plans, schemes)
}

/// Reserved staging column names added by ingest.
pub const META_COLUMNS: [&str; 3] = ["extract_date", "source_file", "source_position"];

fn validate_source(
    system: &str,
    s: RawSource,
    file: &str,
    diags: &mut Diagnostics,
) -> Option<Source> {
    let before = diags.items.len();
    if !is_identifier(&s.name.value) {
        diags.at(
            "C007",
            file,
            &s.name,
            format!(
                "source name `{}` must be a lower-case identifier (it names a table)",
                s.name.value
            ),
        );
    }
    let pattern = parse_pattern(&s.files.value);
    if pattern.is_none() {
        diags.at(
            "C007",
            file,
            &s.files,
            format!(
                "file pattern `{}` must be a file name with at most one `*` and no `/`",
                s.files.value
            ),
        );
    }
    let columns = validate_columns(&s.columns, file, diags);
    // Names as declared (a column whose type is wrong is still a column, reported once).
    let names: Vec<&str> = s.columns.iter().map(|c| c.name.value.as_str()).collect();
    let find = |n: &Spanned<String>, diags: &mut Diagnostics, what: &str| -> Option<usize> {
        let pos = names.iter().position(|c| *c == n.value);
        if pos.is_none() {
            diags.at(
                "C005",
                file,
                n,
                format!(
                    "{what} `{}` is not a column of source `{}`{}",
                    n.value,
                    s.name.value,
                    did_you_mean(&n.value, names.iter().copied())
                ),
            );
        }
        pos
    };
    if s.key.is_empty() {
        diags.at(
            "C005",
            file,
            &s.name,
            "a source needs a key (the column(s) that identify an entity)",
        );
    }
    let key: Vec<String> = s
        .key
        .iter()
        .filter_map(|k| find(k, diags, "key column").map(|_| k.value.clone()))
        .collect();
    let mut rules = Vec::new();
    for r in &s.rules {
        let col = find(&r.when.column, diags, "rule column");
        let req: Vec<Option<usize>> = r
            .require_any
            .iter()
            .map(|c| find(c, diags, "rule column"))
            .collect();
        if let (Some(col), true) = (col, req.iter().all(Option::is_some)) {
            rules.push(Rule {
                column: col,
                values: r
                    .when
                    .values
                    .iter()
                    .map(|v| crate::base::text::nfc(v))
                    .collect(),
                require_any: req.into_iter().flatten().collect(),
                reason: r.reason.clone(),
            });
        }
    }
    const VERSIONINGS: [&str; 3] = ["latest", "first_seen", "snapshot"];
    let versioning = match s.versioning.as_ref().map(|v| v.value.as_str()) {
        None | Some("latest") => Versioning::Latest,
        Some("first_seen") => Versioning::FirstSeen,
        Some("snapshot") => Versioning::Snapshot,
        Some(other) => {
            let v = s.versioning.as_ref().unwrap();
            diags.at(
                "C010",
                file,
                v,
                format!(
                    "unknown versioning `{other}`{} (one of: {})",
                    did_you_mean(other, VERSIONINGS),
                    VERSIONINGS.join(", ")
                ),
            );
            Versioning::Latest
        }
    };
    let missing_day = match s.missing_day.as_ref().map(|v| v.value.as_str()) {
        None | Some("warn") => Some(Severity::Warn),
        Some("error") => Some(Severity::Error),
        Some("ignore") => None,
        Some(other) => {
            diags.at(
                "C014",
                file,
                s.missing_day.as_ref().unwrap(),
                format!(
                    "unknown severity `{other}`{} (ignore, warn or error)",
                    did_you_mean(other, ["ignore", "warn", "error"])
                ),
            );
            None
        }
    };
    let derived = validate_derived(&s.derived, &names, file, diags);
    let format = match s.format {
        RawFormat::DvcqgJson { service } => Format::DvcqgJson { service },
        RawFormat::Csv => Format::Csv,
        RawFormat::Ndjson => Format::Ndjson,
    };
    if diags.items.len() > before {
        return None;
    }
    Some(Source {
        system: system.to_string(),
        name: s.name.value,
        description: s.description.unwrap_or_default(),
        pattern: pattern?,
        format,
        key,
        versioning,
        columns,
        rules,
        missing_day,
        derived,
        file: file.to_string(),
    })
}

/// Derived columns: identifiers that name no staging, metadata, version or period column, once
/// each. Their SQL is planned by the engine-side validation (`crate::warehouse::validate`).
fn validate_derived(
    raw: &[RawDerived],
    columns: &[&str],
    file: &str,
    diags: &mut Diagnostics,
) -> Vec<Derived> {
    let taken = |n: &str| {
        columns.contains(&n)
            || META_COLUMNS.contains(&n)
            || ["valid_from", "valid_to"].contains(&n)
            || sources::PERIOD_COLUMNS.contains(&n)
    };
    let mut out: Vec<Derived> = Vec::new();
    for d in raw {
        let name = d.name.value.as_str();
        if !is_identifier(name) {
            diags.at(
                "C007",
                file,
                &d.name,
                format!("derived column name `{name}` must be a lower-case identifier"),
            );
        } else if taken(name) || out.iter().any(|o| o.name == name) {
            diags.at(
                "C006",
                file,
                &d.name,
                format!("derived column `{name}` names a column the state view already has"),
            );
        }
        out.push(Derived {
            name: name.to_string(),
            sql: d.sql.value.clone(),
            description: d.description.clone().unwrap_or_default(),
            sql_at: (d.sql.referenced.line(), d.sql.referenced.column()),
        });
    }
    out
}

fn parse_pattern(p: &str) -> Option<FilePattern> {
    if p.is_empty()
        || p.contains('/')
        || p.contains('\\')
        || p == "."
        || p == ".."
        || p.matches('*').count() > 1
    {
        return None;
    }
    Some(match p.split_once('*') {
        Some((a, b)) => FilePattern {
            prefix: a.to_string(),
            suffix: Some(b.to_string()),
        },
        None => FilePattern {
            prefix: p.to_string(),
            suffix: None,
        },
    })
}

const TYPES: [&str; 5] = ["string", "int", "timestamp", "date", "list"];
const TS_FORMATS: [&str; 3] = ["yyyyMMddHHmmss", "dd/MM/yyyy[ HH:mm]", "rfc3339"];
const DATE_FORMATS: [&str; 1] = ["dd/MM/yyyy"];

fn validate_columns(cols: &[RawColumn], file: &str, diags: &mut Diagnostics) -> Vec<Column> {
    let mut out: Vec<Column> = Vec::new();
    for c in cols {
        if !is_identifier(&c.name.value) {
            diags.at(
                "C007",
                file,
                &c.name,
                format!(
                    "column name `{}` must be a lower-case identifier",
                    c.name.value
                ),
            );
        }
        if META_COLUMNS.contains(&c.name.value.as_str()) {
            diags.at(
                "C006",
                file,
                &c.name,
                format!(
                    "column name `{}` is reserved for ingest metadata",
                    c.name.value
                ),
            );
        }
        if out.iter().any(|o| o.name == c.name.value) {
            diags.at(
                "C006",
                file,
                &c.name,
                format!("column `{}` is declared twice", c.name.value),
            );
        }
        let fmt = c.format.as_ref();
        let kind = match c.ty.value.as_str() {
            "string" => Some(Kind::String),
            "int" => Some(Kind::Int),
            "timestamp" => match fmt.map(|f| f.value.as_str()) {
                Some("yyyyMMddHHmmss") => Some(Kind::Timestamp(TsFormat::Compact)),
                Some("dd/MM/yyyy[ HH:mm]") => Some(Kind::Timestamp(TsFormat::DayFirst)),
                Some("rfc3339") => Some(Kind::Timestamp(TsFormat::Rfc3339)),
                other => {
                    bad_format(diags, file, c, other, &TS_FORMATS);
                    None
                }
            },
            "date" => match fmt.map(|f| f.value.as_str()) {
                Some("dd/MM/yyyy") => Some(Kind::Date(DateFormat::DayFirst)),
                other => {
                    bad_format(diags, file, c, other, &DATE_FORMATS);
                    None
                }
            },
            "list" => match &c.fields {
                Some(f) if !f.is_empty() => Some(Kind::List(validate_columns(f, file, diags))),
                _ => {
                    diags.at(
                        "C009",
                        file,
                        &c.ty,
                        format!(
                            "list column `{}` needs `fields` (its item fields)",
                            c.name.value
                        ),
                    );
                    None
                }
            },
            other => {
                diags.at(
                    "C003",
                    file,
                    &c.ty,
                    format!(
                        "unknown column type `{other}`{} (types: {})",
                        did_you_mean(other, TYPES),
                        TYPES.join(", ")
                    ),
                );
                None
            }
        };
        if c.fields.is_some() && c.ty.value != "list" {
            diags.at(
                "C009",
                file,
                &c.ty,
                format!(
                    "`fields` is only for list columns; `{}` is a {}",
                    c.name.value, c.ty.value
                ),
            );
        }
        if let Some(f) = fmt.filter(|_| !matches!(c.ty.value.as_str(), "timestamp" | "date")) {
            diags.at(
                "C004",
                file,
                f,
                format!(
                    "`format` is only for timestamp and date columns; `{}` is a {}",
                    c.name.value, c.ty.value
                ),
            );
        }
        let references_units = match &c.references {
            None => false,
            Some(r) if r.value == "units" => true,
            Some(r) => {
                diags.at(
                    "C008",
                    file,
                    r,
                    format!(
                        "unknown reference `{}`{} (known: units)",
                        r.value,
                        did_you_mean(&r.value, ["units"])
                    ),
                );
                false
            }
        };
        if let Some(kind) = kind {
            out.push(Column {
                name: c.name.value.clone(),
                from: crate::base::text::nfc(&c.from.value),
                kind,
                required: c.required,
                nullable: c.nullable,
                pii: c.pii,
                allowed: c
                    .allowed
                    .as_ref()
                    .map(|v| v.iter().map(|s| crate::base::text::nfc(s)).collect()),
                references_units,
                description: c.description.clone().unwrap_or_default(),
            });
        }
    }
    out
}

fn bad_format(
    diags: &mut Diagnostics,
    file: &str,
    c: &RawColumn,
    got: Option<&str>,
    known: &[&str],
) {
    match (got, c.format.as_ref()) {
        (Some(g), Some(f)) => diags.at(
            "C004",
            file,
            f,
            format!(
                "unknown {} format `{g}`{} (formats: {})",
                c.ty.value,
                did_you_mean(g, known.iter().copied()),
                known.join(", ")
            ),
        ),
        _ => diags.at(
            "C004",
            file,
            &c.ty,
            format!(
                "{} column `{}` needs a `format` (one of: {})",
                c.ty.value,
                c.name.value,
                known.join(", ")
            ),
        ),
    }
}
