//! `cchc rank` end to end on a synthetic month (20 departments, 21 districts; `cchc gen` leaves
//! the last district out of the survey): the tables obey their own rules when recomputed in SQL
//! from `target_results_district` and `par_scores`, and the HTML report is opened in headless
//! Chromium (Debian's package, which `.ci/run` installs) and what it shows is checked against the
//! tables; the workbook is opened as the zip it is.

use std::path::Path;
use std::process::Command;

use crate::common::*;

fn chromium() -> String {
    for c in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(c).exists() {
            return c.to_string();
        }
    }
    panic!("Chromium is not installed: `apt-get install chromium` (.ci/run does)");
}

fn headless(profile: &Path) -> Command {
    let mut c = Command::new(chromium());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// The values of attribute `attr` on the elements of `dom` whose opening tag starts with `tag`.
fn attrs<'a>(dom: &'a str, tag: &str, attr: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    for piece in dom.split(tag).skip(1) {
        let head = &piece[..piece.find('>').unwrap_or(piece.len())];
        if let Some(i) = head.find(&format!("{attr}=\"")) {
            let rest = &head[i + attr.len() + 2..];
            out.push(&rest[..rest.find('"').unwrap()]);
        }
    }
    out
}

#[test]
fn rank_writes_consistent_tables_and_a_report_a_browser_shows() {
    let dir = tempfile::tempdir().unwrap();
    let landing = generate(dir.path(), "2022-01-01", "2022-01-31", "0.05")
        .display()
        .to_string();
    let wh = dir.path().join("wh").display().to_string();
    backfill_ok(&landing, &wh, "2022-01-01", "2022-01-31", &[]);
    let out_dir = dir.path().join("report");
    let out = bin(&landing, &wh)
        .args(["rank", "--year", "2022", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("ranking 2022 (figures as of 2022-01-31, provisional)"),
        "{stdout}"
    );

    let cfg = config_for(&landing, &wh);
    let q = |sql: &str| query_lines(&cfg, sql).unwrap();
    assert_eq!(
        q("SELECT tier, count(*) AS n FROM par_ranking GROUP BY tier"),
        vec![
            r#"{"tier":"quan-huyen","n":21}"#.to_string(),
            r#"{"tier":"so-ban-nganh","n":20}"#.to_string()
        ]
    );
    assert_eq!(
        q("SELECT count(*) AS n FROM par_scores"),
        vec![r#"{"n":410}"#]
    );
    // Points add up to the totals.
    assert!(q(
        "SELECT r.unit_code FROM par_ranking r JOIN par_scores s USING (year, tier, unit_code) \
               GROUP BY r.unit_code, r.total HAVING abs(sum(s.points) - r.total) > 1e-6"
    )
    .is_empty());
    // Competition ranking with the 0.001 tie rule, recomputed in SQL.
    assert!(q(
        "SELECT a.unit_code FROM par_ranking a LEFT JOIN par_ranking b \
                 ON b.tier = a.tier AND b.total - a.total > 0.001 + 1e-9 \
               GROUP BY a.unit_code, a.rank HAVING a.rank <> 1 + count(b.unit_code)"
    )
    .is_empty());
    // Districts are scored on their roll-up with their communes.
    let mismatched = q(
        "SELECT s.unit_code FROM par_scores s JOIN target_results_district t \
           ON t.unit_code = s.unit_code AND t.target_id = 'dossier_on_time' AND t.period = '2022' \
         WHERE s.tier = 'quan-huyen' AND s.criterion_id = 'dossier_on_time' \
           AND (abs(s.points - round(least(6.0, 6.0 * coalesce(t.value, 0) / 0.98) * 10000) / 10000) > 1e-9 \
             OR (t.value IS NULL) <> (s.flag IS NOT DISTINCT FROM 'no_data'))",
    );
    assert!(mismatched.is_empty(), "{mismatched:?}");
    assert_eq!(
        q("SELECT count(*) AS n FROM par_scores WHERE tier = 'quan-huyen' AND criterion_id = 'dossier_on_time'"),
        vec![r#"{"n":21}"#]
    );
    // The district left out of the survey: 0 points, flagged.
    let missing = q("SELECT unit_code, points FROM par_scores WHERE flag = 'missing_input'");
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(missing[0].contains(r#""points":0.0"#), "{missing:?}");
    let missing_unit = missing[0].split('"').nth(3).unwrap().to_string();
    // In rank order (query_lines sorts, so ask for CSV in the query's order).
    let dept_order: Vec<String> = {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let units = rt
            .block_on(cchc::store::location::read_units(&cfg.units))
            .ok();
        let csv = rt
            .block_on(cchc::sql::query_warehouse(
                &cfg,
                units.as_ref(),
                "SELECT unit_code FROM par_ranking WHERE tier = 'so-ban-nganh' ORDER BY rank, unit_code",
                cchc::sql::OutputFormat::Csv,
            ))
            .unwrap();
        csv.lines().skip(1).map(str::to_string).collect()
    };

    // The report, as a real browser parses and lays it out.
    let html = out_dir.join("par_2022.html");
    assert!(Path::new(&format!("{wh}/reports/par_2022.html")).exists());
    let profile = dir.path().join("chromium");
    let dom = headless(&profile)
        .arg("--dump-dom")
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8(dom.stdout).unwrap();
    assert!(
        dom.contains("<h1>Chỉ số cải cách hành chính năm 2022</h1>"),
        "{}",
        &dom[..dom.len().min(2000)]
    );
    assert!(dom.contains("Sở, ban, ngành") && dom.contains("UBND cấp huyện"));
    assert_eq!(dom.matches("<section").count(), 2);
    assert_eq!(
        dom.matches("<rect class=\"bar\"").count(),
        41,
        "one bar per unit"
    );
    // The department ranking table lists the units in rank order.
    let dept = &dom[dom.find("id=\"tier_so-ban-nganh\"").unwrap()..];
    let dept = &dept[dept.find("<table class=\"ranking\"").unwrap()..];
    let dept = &dept[..dept.find("</table>").unwrap()];
    let shown: Vec<&str> = attrs(dept, "<tr", "data-unit");
    assert_eq!(
        shown,
        dept_order.iter().map(String::as_str).collect::<Vec<_>>()
    );
    // The unit left out of the survey is flagged in its breakdown and its ranking row.
    let row_start = dom
        .find(&format!(
            "<tr class=\"flagged\" data-unit=\"{missing_unit}\""
        ))
        .expect("flagged ranking row");
    assert!(dom[row_start..].starts_with("<tr class=\"flagged\""));
    let breakdown = &dom[dom
        .find(&format!(
            "<table class=\"breakdown\" data-unit=\"{missing_unit}\""
        ))
        .unwrap()..];
    let breakdown = &breakdown[..breakdown.find("</table>").unwrap()];
    let survey_row = &breakdown[breakdown.find("data-criterion=\"survey\"").unwrap()..];
    assert!(survey_row[..survey_row.find("</tr>").unwrap()].contains("Không có trong tệp đầu vào"));
    // Every link leads somewhere in the page, and offending cases are linked.
    let ids: std::collections::HashSet<&str> = attrs(&dom, "<", "id").into_iter().collect();
    let links = attrs(&dom, "<a ", "href");
    assert!(
        links.iter().filter(|h| h.starts_with("#cases_")).count() > 0,
        "no link to offending cases"
    );
    for h in &links {
        let target = h.strip_prefix('#').expect("only in-page links");
        assert!(ids.contains(target), "link {h} leads nowhere");
    }
    // Laid out and painted: a screenshot of the page.
    let png = dir.path().join("report.png");
    let shot = headless(&profile)
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1280,2400")
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    assert!(
        std::fs::metadata(&png).unwrap().len() > 20_000,
        "the screenshot is blank"
    );
    if let Ok(keep) = std::env::var("CCHC_KEEP_REPORT") {
        std::fs::copy(&png, Path::new(&keep).join("report.png")).unwrap();
        std::fs::copy(&html, Path::new(&keep).join("par_2022.html")).unwrap();
    }

    // The workbook: a zip with the two sheets and the units.
    let xlsx = out_dir.join("par_2022.xlsx");
    let py = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, zipfile\n\
             z = zipfile.ZipFile(sys.argv[1])\n\
             print(z.read('xl/workbook.xml').decode())\n\
             print(z.read('xl/sharedStrings.xml').decode())\n",
        )
        .arg(&xlsx)
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let text = String::from_utf8(py.stdout).unwrap();
    assert!(
        text.contains("name=\"Xếp hạng\"") && text.contains("name=\"Điểm chi tiết\""),
        "{text}"
    );
    for u in &dept_order {
        assert!(text.contains(u.as_str()), "{u} not in the workbook");
    }
}
