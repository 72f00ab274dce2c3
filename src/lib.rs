//! cchc: batch ETL and compliance pipeline for a province's administrative-reform programme.
//!
//! Stages: [`config`] (YAML → validated pipeline), [`ingest`] (extract files → typed, versioned
//! Parquet staging and quarantine), [`run`] (a run over days, and its run record), [`sql`] (the
//! analysts' query surface), [`synth`] (synthetic extracts), [`cli`].

pub mod cli;
pub mod config;
pub mod error;
pub mod ingest;
pub mod run;
pub mod sql;
pub mod state;
pub mod storage;
pub mod synth;
