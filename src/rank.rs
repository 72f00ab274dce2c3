//! `cchc rank`: the yearly ranking computed from the published figures, its tables written and
//! published by `marts/_ranking.json`, and its report (HTML and Excel), in a writer session.

use std::path::Path;

use crate::base::error::{Error, Result};
use crate::config::units::Units;
use crate::config::Config;
use crate::ranking::{read_inputs, score, tables, year_results, Ranking, YearResults};
use crate::store::commits;
use crate::store::location::{read_units, Location};
use crate::store::lock::Writer;
use crate::store::publish::write_part;

/// What `cchc rank` produced.
pub struct RankOutcome {
    pub ranking: Ranking,
    pub results: YearResults,
    /// The units ranked and named: those valid on the year's as-of day.
    pub units: Units,
    pub html: String,
    pub xlsx: Vec<u8>,
    /// Warnings for the terminal: absent input files, unknown unit codes in them.
    pub warnings: Vec<String>,
}

/// Compute the ranking of `year` from the warehouse, write its tables (published by
/// `marts/_ranking.json`) and its report. Run under the warehouse lock.
pub async fn compute_and_publish(
    cfg: &Config,
    wh: &Location,
    landing: &Location,
    units: &Units,
    year: i32,
    run_id: &str,
) -> Result<RankOutcome> {
    let scheme = cfg.scheme_for(year).ok_or_else(|| {
        Error::Usage(format!(
            "no ranking scheme for {year}: add <plans>/{year}/ranking.yaml (or one of an earlier year)"
        ))
    })?;
    let results = year_results(wh, year).await?;
    if results.as_of.is_none() {
        return Err(Error::Usage(format!(
            "the warehouse has no target results for {year}: ingest the year first (cchc backfill)"
        )));
    }
    let inputs = read_inputs(scheme, year, landing).await?;
    let mut warnings = Vec::new();
    for i in &scheme.inputs {
        match inputs.get(&i.name).and_then(|t| t.as_ref()) {
            None => warnings.push(format!(
                "input `{}` ({}/reference/{}) is absent: every unit scores 0 there, flagged missing_input",
                i.name,
                landing.display,
                scheme.input_file(i, year)
            )),
            Some(t) => {
                let mut unknown: Vec<&str> = t
                    .points
                    .keys()
                    .map(|(u, _)| u.as_str())
                    .filter(|u| !units.codes.contains(*u))
                    .collect();
                unknown.sort();
                unknown.dedup();
                if !unknown.is_empty() {
                    warnings.push(format!(
                        "{}: unit codes not in units.csv, ignored: {}",
                        t.file,
                        unknown.join(", ")
                    ));
                }
            }
        }
    }
    // The ranking ranks and names the units valid on the year's as-of day (TARGETS.md).
    let units = units.on(results.as_of.expect("checked above"));
    let ranking = score(scheme, year, &units, &results, &inputs);
    let (scores_batch, ranking_batch) = tables::batches(&ranking)?;
    let html = crate::report::html::report_html(scheme, &ranking, &results, &units);
    let xlsx = crate::report::xlsx::report_xlsx(scheme, &ranking, &units)?;
    // Write, then publish (see `crate::store::publish`); the writer session removes the
    // superseded version.
    for (table, batch) in [
        ("par_scores", &scores_batch),
        ("par_ranking", &ranking_batch),
    ] {
        write_part(
            wh,
            &format!("marts/{table}/year={year}"),
            run_id,
            batch,
            true,
        )
        .await?;
    }
    wh.put(
        &wh.path(&format!("reports/par_{year}.html")),
        html.clone().into(),
    )
    .await?;
    wh.put(
        &wh.path(&format!("reports/par_{year}.xlsx")),
        xlsx.clone().into(),
    )
    .await?;
    commits::commit_ranking(wh, year, run_id).await?;
    Ok(RankOutcome {
        ranking,
        results,
        units,
        html,
        xlsx,
        warnings,
    })
}

/// `cchc rank`: compute, write and publish the ranking of `year` under the warehouse lock; also
/// write the report files into `out`. Prints the ranking unless `quiet`.
pub fn rank(cfg: &Config, year: i32, out: Option<&Path>, quiet: bool) -> Result<u8> {
    let rt = crate::run::runtime()?;
    let units = rt.block_on(read_units(&cfg.units))?;
    let wh = Location::open(&cfg.warehouse, true)?;
    let landing = Location::open(&cfg.landing, false)?;
    let run_id = crate::run::new_run_id();
    let outcome = rt.block_on(Writer::run(
        &wh,
        &run_id,
        "rank",
        compute_and_publish(cfg, &wh, &landing, &units, year, &run_id),
    ))?;
    for w in &outcome.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(dir) = out {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        for (name, bytes) in [
            (format!("par_{year}.html"), outcome.html.as_bytes()),
            (format!("par_{year}.xlsx"), &outcome.xlsx[..]),
        ] {
            let p = dir.join(name);
            std::fs::write(&p, bytes)
                .map_err(|e| Error::io(format!("cannot write {}", p.display()), e))?;
        }
    }
    if !quiet {
        print!(
            "{}",
            crate::report::terminal::ranking(
                cfg,
                &outcome.ranking,
                &outcome.results,
                &outcome.units,
                year
            )
        );
        let wh_name = cfg.warehouse.trim_end_matches('/');
        println!("report: {wh_name}/reports/par_{year}.html, {wh_name}/reports/par_{year}.xlsx");
    }
    Ok(0)
}
