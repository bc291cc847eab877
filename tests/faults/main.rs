//! Fault injection with real processes and real services: workers killed,
//! paused and stopped, the broker, PostgreSQL, Redis and the S3 server taken
//! away mid-run. After each fault every accepted job must end done or error,
//! every done job must have one stored report and one recorded render, no job
//! may sit in processing past its lease, and the metrics must show the retries.
//!
//! Run alone and one test at a time (they restart shared services):
//!   cargo test --features fault-injection --test faults -- --test-threads=1
#[path = "../common/mod.rs"]
mod helpers;

mod harness;

mod broker;
mod database;
mod poison;
mod redis;
mod storage;
mod workers;
