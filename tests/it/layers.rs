//! The shape of `src/`: folders are layers and imports run one way, downward (see `src/lib.rs`).
//! A file may name (`crate::<module>`) only modules of its own layer or below; the application's
//! files (the top-level modules) may name each other but never in a circle; DataFusion is named
//! only where the engine is used.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, bottom first. Every other top-level module is the application, above them all.
const LAYERS: [&str; 7] = [
    "base",
    "config",
    "store",
    "ingest",
    "warehouse",
    "ranking",
    "report",
];

/// Where DataFusion may be named: the engine's layer, the query commands, the cluster's
/// processes, and the one error enum that converts its errors.
const ENGINE: [&str; 8] = [
    "warehouse/",
    "cluster.rs",
    "sql.rs",
    "serve.rs",
    "serve/",
    "shell.rs",
    "testing.rs",
    "base/error.rs",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`src/store/lock.rs` → `store`).
fn module_of(rel: &str) -> String {
    let first = rel.split('/').next().unwrap();
    first.trim_end_matches(".rs").to_string()
}

fn rank(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| *l == module)
        .unwrap_or(LAYERS.len())
}

/// The modules a file names as `crate::<module>`, code only (comments skipped).
fn named_modules(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let tail = &rest[i + "crate::".len()..];
            let name: String = tail
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
            rest = tail;
        }
    }
    out
}

/// Every (file, module it names) edge of `src/`.
fn edges(src: &Path) -> Vec<(String, String, String)> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut out = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if rel == "lib.rs" || rel == "main.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let from = module_of(&rel);
        for to in named_modules(&text) {
            if to != from {
                out.push((rel.clone(), from.clone(), to));
            }
        }
    }
    out
}

/// The violations of the layer rule among `edges`.
fn upward(edges: &[(String, String, String)]) -> Vec<String> {
    edges
        .iter()
        .filter(|(_, from, to)| rank(to) > rank(from))
        .map(|(file, from, to)| format!("src/{file} ({from}) imports {to}, a higher layer"))
        .collect()
}

/// A circle among the application's modules, if any.
fn app_cycle(edges: &[(String, String, String)]) -> Option<Vec<String>> {
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (_, from, to) in edges {
        if rank(from) == LAYERS.len() && rank(to) == LAYERS.len() {
            graph.entry(from).or_default().insert(to);
        }
    }
    fn visit<'a>(
        n: &'a str,
        graph: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| *p == n) {
            let mut c: Vec<String> = path[i..].iter().map(|s| s.to_string()).collect();
            c.push(n.to_string());
            return Some(c);
        }
        if !done.insert(n) {
            return None;
        }
        path.push(n);
        for m in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        if let Some(c) = visit(n, &graph, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

fn src() -> PathBuf {
    crate::common::repo().join("src")
}

#[test]
fn no_file_imports_a_higher_layer() {
    let e = edges(&src());
    assert!(
        e.iter().any(|(_, from, _)| from == "warehouse"),
        "the scan found no import at all"
    );
    let bad = upward(&e);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_application_modules_import_each_other_without_a_circle() {
    assert_eq!(app_cycle(&edges(&src())), None);
}

#[test]
fn datafusion_is_named_only_where_the_engine_is_used() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut bad = Vec::new();
    for f in files {
        let rel = f.strip_prefix(src()).unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&f).unwrap();
        if text.contains("datafusion::") && !ENGINE.iter().any(|e| rel.starts_with(e)) {
            bad.push(rel);
        }
    }
    assert!(bad.is_empty(), "DataFusion named in {bad:?}");
}

#[test]
fn the_checks_catch_an_upward_import_and_a_circle() {
    // What the scan would report for a store file reaching up into the warehouse, and for two
    // application modules importing each other.
    let e = vec![
        (
            "store/publish.rs".into(),
            "store".into(),
            "warehouse".into(),
        ),
        ("run.rs".into(), "run".into(), "rank".into()),
        ("rank.rs".into(), "rank".into(), "run".into()),
    ];
    assert_eq!(upward(&e).len(), 1);
    assert!(app_cycle(&e).is_some());
    assert_eq!(
        named_modules(
            "use crate::store::lock; // crate::report\nlet x = crate::base::text::nfc(s);"
        ),
        ["base", "store"].into_iter().map(String::from).collect()
    );
}
