//! Fault injection with real processes and real services: workers killed,
//! paused and stopped, the broker, PostgreSQL, Redis and the S3 server taken
//! away mid-run. After each fault every accepted job must end done or error,
//! every done job must have one stored report and one recorded render, no job
//! may sit in processing past its lease, and the metrics must show the retries.
//!
//! The tests take turns (they restart shared services): each holds
//! `harness::serial()`. Run with the services up (scripts/test.sh does):
//!   cargo test --features fault-injection,service-tests --test faults
// The tests hold `harness::serial()` across awaits on purpose: they take turns.
#![allow(clippy::await_holding_lock)]

#[path = "../common/mod.rs"]
mod helpers;

mod harness;

mod broker;
mod database;
mod poison;
mod webhooks;
mod redis;
mod storage;
mod workers;
