//! Presentation: what people read, made from finished records and tables. Vietnamese wording
//! ([`vi`]), the ranking report as a page ([`html`]) and a workbook ([`xlsx`]), and the
//! terminal summaries of the commands ([`terminal`]). Nothing here computes a figure.

pub mod html;
pub mod terminal;
pub mod vi;
pub mod xlsx;
