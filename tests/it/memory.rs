//! The engine's memory limit (`memory_limit`, `--memory-limit`, `CCHC_MEMORY_LIMIT`): marts
//! spill to `temp_dir` and give the same rows; a limit below the smallest accepted is refused.
//! Below what a plan needs (a model that holds every dossier's text in one group, added to a
//! copy of the shipped pipelines), a refresh fails with exit 3 naming the model and the limit,
//! and the published version stays.

use crate::common::*;

#[test]
fn a_small_memory_limit_spills_and_a_too_small_one_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let landing = generate(dir.path(), "2022-01-01", "2022-12-31", "0.02")
        .display()
        .to_string();
    let wh = dir.path().join("wh");
    let whs = wh.display().to_string();
    backfill_ok(&landing, &whs, "2022-01-01", "2022-12-31", &[]);
    let cfg = config_for(&landing, &whs);
    let expected = dump(&cfg);

    // Below the smallest limit (where the engine was seen to stall): refused, nothing written.
    let before = tree(&wh);
    let out = bin(&landing, &whs)
        .args(["--memory-limit", "1MiB", "refresh", "--full"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("below the smallest memory limit, 16 MiB"),
        "{stderr}"
    );
    assert!(
        before == tree(&wh),
        "a refused refresh changed the warehouse"
    );

    // Small enough to spill (into the configured folder), large enough to finish: same rows.
    // The shipped marts sort nothing large (a refresh computes the versions' intervals without
    // a sort), so a model ranking the year's state rows, with the pseudonyms, is added.
    let project = dir.path().join("project");
    let config = shipped_project(&project);
    std::fs::write(
        project.join("pipelines/ranked.yaml"),
        "description: A sort of every state row, for the memory test.\n\
         models:\n\
         \x20 - name: mart_ranked\n\
         \x20   description: Each unit's dossiers ranked by id, per period.\n\
         \x20   sql: SELECT period, unit_code, dossier_id, applicant_name, applicant_id, applicant_phone, applicant_email, row_number() OVER (PARTITION BY period, unit_code ORDER BY dossier_id, applicant_name) AS n FROM dossiers_state\n\
         \x20   columns:\n\
         \x20     - { name: period, description: Period id. }\n\
         \x20     - { name: unit_code, description: Unit. }\n\
         \x20     - { name: dossier_id, description: Dossier. }\n\
         \x20     - { name: applicant_name, description: Pseudonym. }\n\
         \x20     - { name: applicant_id, description: Pseudonym. }\n\
         \x20     - { name: applicant_phone, description: Pseudonym. }\n\
         \x20     - { name: applicant_email, description: Pseudonym. }\n\
         \x20     - { name: n, description: Rank. }\n",
    )
    .unwrap();
    let spill = dir.path().join("spill");
    let out = bin_with(&config, &landing, &whs)
        .args(["refresh", "--full"])
        .env("CCHC_MEMORY_LIMIT", "16MiB")
        .env("CCHC_TEMP_DIR", &spill)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    let spills: usize = stderr
        .lines()
        .filter(|l| l.contains("mart computed"))
        .filter_map(|l| l.split("spills=").nth(1))
        .filter_map(|r| r.split(' ').next()?.parse::<usize>().ok())
        .sum();
    assert!(spills > 0, "nothing spilled at 16 MiB: {stderr}");
    assert!(spill.is_dir(), "temp_dir was not used");
    assert!(dump(&cfg) == expected, "spilling changed the figures");

    // A model no limit of 16 MiB can hold, even spilling: a year's dossier texts in one group.
    std::fs::write(
        project.join("pipelines/hungry.yaml"),
        "description: One group per period holding every dossier's text, for the memory test.\n\
         models:\n\
         \x20 - name: mart_hungry\n\
         \x20   description: Every dossier of the period, its id repeated, in one list.\n\
         \x20   sql: SELECT period, array_agg(repeat(dossier_id, 400)) AS everything FROM dossiers_state GROUP BY period\n\
         \x20   columns:\n\
         \x20     - { name: period, description: Period id. }\n\
         \x20     - { name: everything, description: The ids. }\n",
    )
    .unwrap();
    let before = dump(&cfg);
    let out = bin_with(&config, &landing, &whs)
        .args(["--memory-limit", "16MiB", "refresh", "--full"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("model `mart_hungry`")
            && stderr.contains("needs more memory than memory_limit (16 MiB) allows"),
        "{stderr}"
    );
    assert!(
        dump(&cfg) == before,
        "a failed refresh changed the published tables"
    );

    // A bad size is a usage error.
    let out = bin(&landing, &whs)
        .args(["--memory-limit", "lots", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`lots` is not a size"));
}
