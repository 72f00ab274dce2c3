//! cchc: batch ETL and compliance pipeline for a province's administrative-reform programme.
//!
//! The code is in layers; a module imports only from the layers below it (a test,
//! `tests/it/layers.rs`, keeps it so):
//!
//! 1. [`base`]: errors, crash points, text rules (NFC), days.
//! 2. [`config`]: raw YAML → validated pipeline, plans, ranking schemes, the units seed.
//! 3. [`store`]: locations (local or S3), the writer lock, the commit protocol (write and read
//!    halves), the ledger, the commit records and the run record.
//! 4. [`ingest`]: extract files → typed, versioned Parquet staging and quarantine.
//! 5. [`warehouse`]: DataFusion sessions over the published tables: state views, periods, marts,
//!    checks, refresh, engine-side validation.
//! 6. [`ranking`]: the yearly ranking, computed.
//! 7. [`report`]: what people read (Vietnamese wording, HTML, xlsx, terminal summaries).
//! 8. The application: [`run`], [`rank`], [`status`], [`sql`], [`serve`], [`shell`], [`docs`], [`testing`],
//!    [`synth`] (synthetic extracts) and [`cli`].

pub mod base;
pub mod config;
pub mod ingest;
pub mod ranking;
pub mod report;
pub mod store;
pub mod warehouse;

pub mod cli;
pub mod cluster;
pub mod docs;
pub mod rank;
pub mod run;
pub mod serve;
pub mod shell;
pub mod sql;
pub mod status;
pub mod synth;
pub mod testing;
