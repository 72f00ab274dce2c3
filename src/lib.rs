//! cchc: batch ETL and compliance pipeline for a province's administrative-reform programme.
//!
//! Stages: [`config`] (YAML → validated pipeline), [`ingest`] (extract files → typed, versioned
//! Parquet staging and quarantine), [`run`] (a run over days, and its run record), [`ledger`] (which
//! source-days were ingested), [`periods`], [`models`] (views and marts over the state tables of
//! [`state`]), [`checks`] (plan targets → `target_results`), [`sql`] (the analysts' query surface), [`synth`] (synthetic extracts), [`cli`].

pub mod checks;
pub mod cli;
pub mod config;
pub mod docs;
pub mod error;
pub mod failpoint;
pub mod ingest;
pub mod ledger;
pub mod lock;
pub mod models;
pub mod periods;
pub mod publish;
pub mod ranking;
pub mod run;
pub mod shell;
pub mod sql;
pub mod state;
pub mod status;
pub mod storage;
pub mod synth;
pub mod testing;
