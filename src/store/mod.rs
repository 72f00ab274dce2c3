//! Storage: where the landing area and the warehouse live ([`location`]: a local folder or an
//! S3-compatible bucket through `object_store`), the one-writer lock and the writer session
//! ([`lock`]), and the commit protocol that makes a write visible: the write and read halves
//! ([`publish`]) and the commit records it reads, the ledger of source-days ([`ledger`]) and the
//! records of computed periods and rankings ([`commits`]).
//!
//! This layer knows files and records, not SQL: DataFusion is not used here.

pub mod commits;
pub mod ledger;
pub mod location;
pub mod lock;
pub mod pii_key;
pub mod publish;
pub mod runs;
