//! The ranking report as an Excel workbook (sheets `Xếp hạng` and `Điểm chi tiết`).

use super::vi::{flag_text, unit_name};
use crate::base::error::{Error, Result};
use crate::config::units::Units;
use crate::config::Scheme;
use crate::ranking::Ranking;

/// The same tables as a workbook: one ranking sheet and one breakdown sheet.
pub fn report_xlsx(scheme: &Scheme, r: &Ranking, units: &Units) -> Result<Vec<u8>> {
    use rust_xlsxwriter::{Format, Workbook};
    let x = |e: rust_xlsxwriter::XlsxError| Error::Internal(format!("xlsx: {e}"));
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let two = Format::new().set_num_format("0.00");
    let label = |tier: &str| {
        scheme
            .tiers
            .iter()
            .find(|t| t.tier == tier)
            .map(|t| t.label.clone())
            .unwrap_or_default()
    };
    {
        let ws = wb.add_worksheet().set_name("Xếp hạng").map_err(x)?;
        ws.write_row_with_format(
            0,
            0,
            [
                "Năm",
                "Khối",
                "Hạng",
                "Mã đơn vị",
                "Đơn vị",
                "Tổng điểm",
                "Xếp loại",
                "Số tiêu chí cần lưu ý",
            ],
            &bold,
        )
        .map_err(x)?;
        for (i, k) in r.ranking.iter().enumerate() {
            let row = i as u32 + 1;
            ws.write(row, 0, r.year).map_err(x)?;
            ws.write(row, 1, label(&k.tier)).map_err(x)?;
            ws.write(row, 2, k.rank).map_err(x)?;
            ws.write(row, 3, &k.unit_code).map_err(x)?;
            ws.write(row, 4, unit_name(units, &k.unit_code))
                .map_err(x)?;
            ws.write_with_format(row, 5, k.total, &two).map_err(x)?;
            ws.write(row, 6, &k.band).map_err(x)?;
            ws.write(row, 7, k.flagged as u32).map_err(x)?;
        }
        ws.autofit();
    }
    {
        let ws = wb.add_worksheet().set_name("Điểm chi tiết").map_err(x)?;
        ws.write_row_with_format(
            0,
            0,
            [
                "Năm",
                "Khối",
                "Mã đơn vị",
                "Đơn vị",
                "Mã tiêu chí",
                "Tiêu chí",
                "Giá trị đo",
                "Tử số",
                "Mẫu số",
                "Điểm",
                "Tối đa",
                "Ghi chú",
            ],
            &bold,
        )
        .map_err(x)?;
        for (i, s) in r.scores.iter().enumerate() {
            let row = i as u32 + 1;
            let crit = scheme
                .tiers
                .iter()
                .find(|t| t.tier == s.tier)
                .and_then(|t| t.criteria.iter().find(|c| c.id == s.criterion_id));
            ws.write(row, 0, r.year).map_err(x)?;
            ws.write(row, 1, label(&s.tier)).map_err(x)?;
            ws.write(row, 2, &s.unit_code).map_err(x)?;
            ws.write(row, 3, unit_name(units, &s.unit_code))
                .map_err(x)?;
            ws.write(row, 4, &s.criterion_id).map_err(x)?;
            ws.write(row, 5, crit.map(|c| c.label.as_str()).unwrap_or(""))
                .map_err(x)?;
            if let Some(v) = s.value {
                ws.write(row, 6, v).map_err(x)?;
            }
            if let Some(m) = &s.measured {
                ws.write(row, 7, m.numerator as f64).map_err(x)?;
                ws.write(row, 8, m.denominator as f64).map_err(x)?;
            }
            ws.write_with_format(row, 9, s.points, &two).map_err(x)?;
            ws.write(row, 10, s.max_points).map_err(x)?;
            if let Some(f) = s.flag {
                ws.write(row, 11, flag_text(f)).map_err(x)?;
            }
        }
        ws.autofit();
    }
    wb.save_to_buffer().map_err(x)
}
