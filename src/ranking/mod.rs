//! The yearly ranking of departments and districts (the province's PAR index), as
//! `shared/domain/TARGETS.md` ("The yearly ranking") describes it: computation only. The
//! application (`crate::rank`) writes and publishes its tables; `crate::report` presents it.
//!
//! Inputs: the year's scheme (`<plans>/<YYYY>/ranking.yaml`, see `crate::config::scheme`), the
//! year's published target results ([`results`]; departments: `target_results`; districts:
//! `target_results_district`, each district counted with its communes), and the manual input files
//! ([`inputs`], in `<landing>/reference/`: `par_inputs_<Y>.csv`: `unit_code,criterion_id,points`;
//! `survey_<Y>.csv`: `unit_code,points`).
//!
//! Per unit of a tier and criterion ([`score`]): the measured value behind it (a ratio, or a count
//! for a count rule), its points by the rule, and a flag: `no_data` (no figure for the unit: 0
//! points), `missing_input` (the unit, or the whole file, is missing from the input: 0 points),
//! `capped` (input points above the maximum: the maximum). Points are kept to 4 decimals, totals
//! are their sum. Rank: competition ranking within the tier by total, descending, totals within
//! 0.001 tied (rank = 1 + the number of units whose total is more than 0.001 higher). Band: the
//! first band from the top whose minimum the total reaches. [`tables`]: `par_scores` and
//! `par_ranking` as Arrow tables.

pub mod inputs;
pub mod results;
pub mod score;
pub mod tables;

pub use inputs::{parse_input, read_inputs, InputTable};
pub use results::{year_results, Measured, YearResults};
pub use score::{score, Flag, Ranked, Ranking, Score};
