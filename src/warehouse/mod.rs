//! The warehouse as an engine sees it: DataFusion sessions over the published staging, the
//! version and state views of each source ([`state`]), the reporting periods ([`periods`]), the
//! marts of the pipeline YAML ([`models`]), the plan's checks ([`checks`]), a refresh of the
//! stale periods ([`refresh`]) and the engine-side validation of the configuration ([`validate`]);
//! the engine itself, local or a Ballista cluster ([`engine`]), whose local sessions compute the
//! local date of a timestamp in the extracts' zone by its fixed offset ([`local_date`]).

pub mod checks;
pub mod engine;
pub mod local_date;
pub mod models;
pub mod periods;
pub mod refresh;
pub mod snapshots;
pub mod state;
pub mod validate;
pub mod version_index;
