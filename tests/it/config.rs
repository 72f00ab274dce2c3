//! Golden tests of configuration diagnostics: every pipeline file in `tests/fixtures/invalid/`
//! is validated alone, and its diagnostics (code, file:line:column, message, did-you-mean) are
//! compared with the committed snapshot.

use std::path::Path;

use cchc::base::error::Error;
use cchc::config::{self, Overrides};

/// Validate a config whose only pipeline is `fixture`; the rendered diagnostics.
fn diagnostics_of(pipelines: &[&Path], env_yaml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("configs")).unwrap();
    std::fs::create_dir_all(dir.path().join("pipelines")).unwrap();
    for p in pipelines {
        std::fs::copy(p, dir.path().join("pipelines").join(p.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.path().join("configs/local.yaml"), env_yaml).unwrap();
    let res = config::load(
        &dir.path().join("configs/local.yaml"),
        &Overrides::default(),
    );
    let text = match res {
        Ok(_) => "valid".to_string(),
        Err(e @ Error::Config(_)) => e.to_string(),
        Err(e) => panic!("not a config error: {e}"),
    };
    text.replace(&dir.path().display().to_string(), "<dir>")
}

const ENV: &str = "pipelines: ../pipelines\nlanding: ../landing\nwarehouse: ../warehouse\n";

#[test]
fn every_invalid_fixture_has_its_golden_diagnostics() {
    let dir = crate::common::repo().join("tests/fixtures/invalid");
    let mut fixtures: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 6);
    for f in fixtures {
        let name = f.file_stem().unwrap().to_str().unwrap().to_string();
        let text = diagnostics_of(&[&f], ENV);
        assert_ne!(text, "valid", "{name} must be invalid");
        insta::assert_snapshot!(name, text);
    }
}

#[test]
fn problems_in_several_files_are_all_reported() {
    let dir = crate::common::repo().join("tests/fixtures/invalid");
    let text = diagnostics_of(
        &[
            &dir.join("unknown_names.yaml"),
            &dir.join("bad_formats.yaml"),
        ],
        ENV,
    );
    assert!(
        text.contains("unknown_names.yaml") && text.contains("bad_formats.yaml"),
        "{text}"
    );
    assert!(text.ends_with("9 configuration problems found"), "{text}");
}

#[test]
fn unknown_key_in_the_environment_file() {
    let text = diagnostics_of(&[], "pipelines: ../pipelines\nwarehose: ../wh\n");
    insta::assert_snapshot!(text);
}

#[test]
fn shipped_configuration_is_valid() {
    let cfg = config::load(
        &crate::common::repo().join("configs/local.yaml"),
        &Overrides::default(),
    )
    .unwrap();
    let names: Vec<_> = cfg.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["documents", "dossiers", "procedures", "signature_events"]
    );
}

/// Diagnostics of the shipped pipelines plus `extra` pipeline files and a plan file for 2022,
/// including the SQL planning checks.
fn plan_diagnostics(extra: &[&Path], targets: Option<&Path>) -> String {
    plan_and_scheme_diagnostics(extra, targets, None)
}

/// The same with a ranking scheme for 2022 too.
fn plan_and_scheme_diagnostics(
    extra: &[&Path],
    targets: Option<&Path>,
    ranking: Option<&Path>,
) -> String {
    let dir = tempfile::tempdir().unwrap();
    let pipelines = dir.path().join("pipelines");
    std::fs::create_dir_all(&pipelines).unwrap();
    for e in std::fs::read_dir(crate::common::repo().join("pipelines")).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, pipelines.join(p.file_name().unwrap())).unwrap();
        }
    }
    for p in extra {
        std::fs::copy(p, pipelines.join(p.file_name().unwrap())).unwrap();
    }
    std::fs::create_dir_all(dir.path().join("configs/plans/2022")).unwrap();
    if let Some(t) = targets {
        std::fs::copy(t, dir.path().join("configs/plans/2022/targets.yaml")).unwrap();
    }
    if let Some(r) = ranking {
        std::fs::copy(r, dir.path().join("configs/plans/2022/ranking.yaml")).unwrap();
    }
    std::fs::write(dir.path().join("configs/local.yaml"), ENV).unwrap();
    let text = match config::load(
        &dir.path().join("configs/local.yaml"),
        &Overrides::default(),
    ) {
        Err(e @ Error::Config(_)) => e.to_string(),
        Err(e) => panic!("not a config error: {e}"),
        Ok(cfg) => {
            let rt = tokio::runtime::Runtime::new().unwrap();
            let diags = rt.block_on(cchc::warehouse::validate::check_sql(&cfg));
            if diags.is_empty() {
                "valid".to_string()
            } else {
                Error::Config(diags).to_string()
            }
        }
    };
    text.replace(&dir.path().display().to_string(), "<dir>")
}

#[test]
fn every_problem_of_a_plan_file_is_reported() {
    let f = crate::common::repo().join("tests/fixtures/invalid_plans/targets.yaml");
    insta::assert_snapshot!(plan_diagnostics(&[], Some(&f)));
}

#[test]
fn model_sql_is_planned_and_its_columns_checked() {
    let f = crate::common::repo().join("tests/fixtures/invalid_plans/bad_sql.yaml");
    insta::assert_snapshot!(plan_diagnostics(&[&f], None));
}

#[test]
fn derived_column_sql_is_planned_where_it_is_written() {
    let f = crate::common::repo().join("tests/fixtures/invalid_plans/bad_derived_sql.yaml");
    let text = plan_diagnostics(&[&f], None);
    assert!(text.contains("derived column `late`"), "{text}");
    assert!(!text.contains("derived column `day`"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn the_shipped_plan_is_valid_with_its_sql() {
    let f = crate::common::repo().join("configs/plans/2022/targets.yaml");
    assert_eq!(plan_diagnostics(&[], Some(&f)), "valid");
}

#[test]
fn every_problem_of_a_ranking_scheme_is_reported() {
    let t = crate::common::repo().join("configs/plans/2022/targets.yaml");
    let r = crate::common::repo().join("tests/fixtures/invalid_plans/ranking.yaml");
    insta::assert_snapshot!(plan_and_scheme_diagnostics(&[], Some(&t), Some(&r)));
}

#[test]
fn the_shipped_ranking_scheme_is_valid() {
    let t = crate::common::repo().join("configs/plans/2022/targets.yaml");
    let r = crate::common::repo().join("configs/plans/2022/ranking.yaml");
    assert_eq!(
        plan_and_scheme_diagnostics(&[], Some(&t), Some(&r)),
        "valid"
    );
}
