//! The integration tests, as one test binary (each binary would link DataFusion again): a module
//! per area. Tests that need a real process (crash, CLI, S3, report) start the `cchc` binary.

#[allow(dead_code)]
mod common;

mod cli;
mod cluster;
mod config;
mod crash;
mod e2e;
mod layers;
mod marts_order;
mod memory;
mod month_ends;
mod ranking;
mod readers;
mod regression;
mod report;
mod s3;
mod scheduling;
mod serve;
mod state;
mod targets;
mod units;
