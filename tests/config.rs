//! Golden tests of configuration diagnostics: every pipeline file in `tests/fixtures/invalid/`
//! is validated alone, and its diagnostics (code, file:line:column, message, did-you-mean) are
//! compared with the committed snapshot.

mod common;

use std::path::Path;

use cchc::config::{self, Overrides};
use cchc::error::Error;

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
    let dir = common::repo().join("tests/fixtures/invalid");
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
    let dir = common::repo().join("tests/fixtures/invalid");
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
        &common::repo().join("configs/local.yaml"),
        &Overrides::default(),
    )
    .unwrap();
    let names: Vec<_> = cfg.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["documents", "dossiers", "procedures", "signature_events"]
    );
}
