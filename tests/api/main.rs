//! End-to-end tests of the embedded default: real HTTP against an app on
//! port 0, with a fresh data directory (SQLite, local objects) per test.
#[path = "../common/mod.rs"]
mod helpers;

mod auth;
mod cli;
mod client;
mod cors;
mod downloads;
mod failures;
mod grafana;
mod idempotency;
mod limits;
mod memory;
mod progress;
mod lifecycle;
mod openapi;
mod openapi_schemathesis;
mod restart;
mod retention;
mod ui;
mod validation;
mod webhooks;
