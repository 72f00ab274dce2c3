//! Vietnamese wording shared by the report's pages and sheets: numbers with a decimal comma,
//! flags and rules in words, unit names, and HTML escaping.

use crate::config::scheme::ScoreRule;
use crate::config::units::Units;
use crate::ranking::{Flag, Measured};

/// A number the Vietnamese way: decimal comma.
pub fn vi_number(x: f64, decimals: usize) -> String {
    format!("{x:.decimals$}").replace('.', ",")
}

pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A unit's name from units.csv (its code when unknown).
pub fn unit_name<'a>(units: &'a Units, code: &'a str) -> &'a str {
    units
        .rows
        .iter()
        .find(|u| u.unit_code == code)
        .map(|u| u.unit_name.as_str())
        .unwrap_or(code)
}

/// An id usable in a URL fragment.
pub fn anchor(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| {
            p.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("_")
}

/// A measured value as the report shows it: `45/50 = 90,00%`, or the count.
pub fn shown_value(rule: &ScoreRule, m: &Measured) -> String {
    match (rule, m.value) {
        (_, None) => format!("{}/{}", m.numerator, m.denominator),
        (ScoreRule::CountPenalty { .. }, Some(v)) => format!("{} hồ sơ", v as i64),
        (_, Some(v)) => format!(
            "{}/{} = {}%",
            m.numerator,
            m.denominator,
            vi_number(v * 100.0, 2)
        ),
    }
}

/// What a flag means, for the reader of the report.
pub fn flag_text(f: Flag) -> &'static str {
    match f {
        Flag::NoData => "Không có dữ liệu: 0 điểm",
        Flag::MissingInput => "Không có trong tệp đầu vào: 0 điểm",
        Flag::Capped => "Điểm vượt mức tối đa: tính bằng mức tối đa",
    }
}

/// How a rule reads, in Vietnamese.
pub fn rule_text(rule: &ScoreRule, max: f64) -> String {
    let n = vi_number;
    match rule {
        ScoreRule::Linear { goal, .. } => {
            format!("{} × min(1; giá trị / {})", n(max, 2), n(*goal, 2))
        }
        ScoreRule::CountPenalty {
            per_case, floor, ..
        } => format!(
            "{} − {} điểm/hồ sơ, tối thiểu {}",
            n(max, 2),
            n(*per_case, 2),
            n(*floor, 2)
        ),
        ScoreRule::Steps { steps, .. } => steps
            .iter()
            .map(|(m, p)| format!("≥ {}: {}", n(*m, 2), n(*p, 2)))
            .collect::<Vec<_>>()
            .join("; "),
        ScoreRule::Manual { .. } => format!("điểm chấm, tối đa {}", n(max, 2)),
    }
}
