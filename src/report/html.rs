//! The ranking report as one self-contained HTML page in Vietnamese.

use std::fmt::Write as _;

use super::vi::{anchor, esc, flag_text, rule_text, shown_value, unit_name, vi_number};
use crate::config::scheme::{Scheme, ScoreRule};
use crate::config::units::Units;
use crate::ranking::{Ranked, Ranking, YearResults};

const CSS: &str = "body{font-family:'Segoe UI',Roboto,Arial,sans-serif;margin:2em auto;max-width:70em;color:#1d2733;padding:0 1em}\
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:2px solid #1f5fa8;padding-bottom:.2em}\
table{border-collapse:collapse;margin:.6em 0 1.2em;width:100%}th,td{border:1px solid #c9d2dc;padding:.3em .5em;text-align:left;vertical-align:top}\
th{background:#eef3f8}td.num{text-align:right;font-variant-numeric:tabular-nums}\
tr.flagged td{background:#fff6e0}.flag{color:#9a5b00;font-weight:600}.meta{color:#566270}\
svg text{font-size:12px;fill:#1d2733}details{margin:.3em 0 1em}code{font-size:.95em}";

/// The report: per tier the ranking, a bar chart of totals, and each unit's breakdown by
/// criterion with the measured value behind each measured point and a link to its offending
/// cases. Self-contained: inline CSS and SVG, no script, no external resource.
pub fn report_html(scheme: &Scheme, r: &Ranking, results: &YearResults, units: &Units) -> String {
    let mut h = String::new();
    let as_of = results
        .as_of
        .map(|d| d.format("%d/%m/%Y").to_string())
        .unwrap_or_default();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"vi\">\n<head>\n<meta charset=\"utf-8\">\n<title>{t}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{t}</h1>\n<p class=\"meta\">Số liệu đo từ các hệ thống đến ngày <span id=\"as-of\">{as_of}</span> ({kind}). Thang điểm 100; xếp hạng trong từng khối, các đơn vị có tổng điểm chênh nhau không quá 0,001 đồng hạng.</p>\n",
        t = esc(&scheme.title),
        kind = if results.is_final { "số liệu chính thức cả năm" } else { "số liệu tạm tính" },
    );
    for tier in &scheme.tiers {
        let ranked: Vec<&Ranked> = r.ranking.iter().filter(|x| x.tier == tier.tier).collect();
        let _ = write!(
            h,
            "<section id=\"{id}\">\n<h2>{label}</h2>\n",
            id = anchor(&["tier", &tier.tier]),
            label = esc(&tier.label)
        );
        // Bar chart of totals.
        let row_h = 22;
        let height = row_h * ranked.len() + 10;
        let _ = writeln!(
            h,
            "<svg class=\"chart\" role=\"img\" aria-label=\"Biểu đồ tổng điểm: {label}\" width=\"760\" height=\"{height}\" viewBox=\"0 0 760 {height}\">",
            label = esc(&tier.label)
        );
        for (i, x) in ranked.iter().enumerate() {
            let y = 5 + i * row_h;
            let w = (x.total.clamp(0.0, 100.0) * 4.0).round();
            let _ = writeln!(
                h,
                "<text x=\"0\" y=\"{ty}\">{name}</text><rect class=\"bar\" data-unit=\"{code}\" x=\"260\" y=\"{y}\" width=\"{w}\" height=\"{bh}\" fill=\"#1f5fa8\"/><text x=\"{tx}\" y=\"{ty}\">{total}</text>",
                ty = y + 14,
                name = esc(&truncate(unit_name(units, &x.unit_code), 38)),
                code = esc(&x.unit_code),
                bh = row_h - 6,
                tx = 266.0 + w,
                total = vi_number(x.total, 2),
            );
        }
        h.push_str("</svg>\n");
        // Ranking table.
        h.push_str("<table class=\"ranking\">\n<thead><tr><th>Hạng</th><th>Đơn vị</th><th>Mã đơn vị</th><th>Tổng điểm</th><th>Xếp loại</th><th>Ghi chú</th></tr></thead>\n<tbody>\n");
        for x in &ranked {
            let note = if x.flagged > 0 {
                format!(
                    "<span class=\"flag\">⚠ {} tiêu chí được tính 0 điểm hoặc điều chỉnh</span>",
                    x.flagged
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                h,
                "<tr{cls} data-unit=\"{code}\"><td class=\"num\">{rank}</td><td><a href=\"#{a}\">{name}</a></td><td><code>{code}</code></td><td class=\"num\">{total}</td><td>{band}</td><td>{note}</td></tr>",
                cls = if x.flagged > 0 { " class=\"flagged\"" } else { "" },
                code = esc(&x.unit_code),
                rank = x.rank,
                a = anchor(&["unit", &x.unit_code]),
                name = esc(unit_name(units, &x.unit_code)),
                total = vi_number(x.total, 2),
                band = esc(&x.band),
            );
        }
        h.push_str("</tbody>\n</table>\n");
        // Breakdown per unit.
        for x in &ranked {
            let _ = write!(
                h,
                "<h3 id=\"{a}\">{rank}. {name} <span class=\"meta\">({code}): {total} điểm, loại {band}</span></h3>\n<table class=\"breakdown\" data-unit=\"{code}\">\n<thead><tr><th>Tiêu chí</th><th>Cách tính</th><th>Giá trị đo</th><th>Điểm</th><th>Tối đa</th><th>Ghi chú</th></tr></thead>\n<tbody>\n",
                a = anchor(&["unit", &x.unit_code]),
                rank = x.rank,
                name = esc(unit_name(units, &x.unit_code)),
                code = esc(&x.unit_code),
                total = vi_number(x.total, 2),
                band = esc(&x.band),
            );
            let mut cases = String::new();
            for c in &tier.criteria {
                let Some(s) = r.scores.iter().find(|s| {
                    s.tier == tier.tier && s.unit_code == x.unit_code && s.criterion_id == c.id
                }) else {
                    continue;
                };
                let value = match (&c.rule, &s.measured, s.value) {
                    (ScoreRule::Manual { .. }, _, Some(v)) => vi_number(v, 2),
                    (ScoreRule::Manual { .. }, _, None) => String::new(),
                    (rule, Some(m), _) => {
                        let offending = match rule {
                            ScoreRule::CountPenalty { .. } => m.numerator,
                            _ => m.denominator - m.numerator,
                        };
                        let shown = esc(&shown_value(rule, m));
                        if offending > 0 && !m.sample_keys.is_empty() {
                            let id = anchor(&["cases", &x.unit_code, &c.id]);
                            let _ = writeln!(
                                cases,
                                "<details id=\"{id}\" open><summary>{label}: {offending} trường hợp chưa đạt</summary><p>Mã hồ sơ/văn bản ({n} mã đầu tiên): {keys}</p></details>",
                                label = esc(&c.label),
                                n = m.sample_keys.len(),
                                keys = m
                                    .sample_keys
                                    .iter()
                                    .map(|k| format!("<code>{}</code>", esc(k)))
                                    .collect::<Vec<_>>()
                                    .join(", "),
                            );
                            format!("{shown} <a class=\"cases\" href=\"#{id}\">xem {offending} trường hợp</a>")
                        } else {
                            shown
                        }
                    }
                    (_, None, _) => String::new(),
                };
                let _ = writeln!(
                    h,
                    "<tr{cls} data-criterion=\"{cid}\"><td>{label}</td><td>{how}</td><td>{value}</td><td class=\"num\">{points}</td><td class=\"num\">{max}</td><td>{flag}</td></tr>",
                    cls = if s.flag.is_some() { " class=\"flagged\"" } else { "" },
                    cid = esc(&c.id),
                    label = esc(&c.label),
                    how = esc(&rule_text(&c.rule, c.max_points)),
                    points = vi_number(s.points, 2),
                    max = vi_number(c.max_points, 0),
                    flag = s
                        .flag
                        .map(|f| format!("<span class=\"flag\">⚠ {}</span>", flag_text(f)))
                        .unwrap_or_default(),
                );
            }
            h.push_str("</tbody>\n</table>\n");
            h.push_str(&cases);
        }
        h.push_str("</section>\n");
    }
    h.push_str("</body>\n</html>\n");
    h
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}
