//! reportd: asynchronous XLSX/PDF report generation.
//!
//! The layers (ARCHITECTURE.md states the rule; `tests/layers.rs` holds it):
//! `job/` is the domain and depends on nothing else here; `render/` knows only
//! the domain; `store/`, `queue/`, `cache/`, `storage/`, `notify/` and `warehouse/` declare ports
//! (traits) beside their adapters; `http/` and `actors/` know ports only; and
//! `startup` alone builds adapters and wires them in.
//!
//! The path of a job: `http/generate` validates it (`job::validate`), stores
//! its rows in `storage`, and records the job with its outbox message through
//! `actors/status`; `actors/relay` publishes the message to the queue; the
//! `actors/source` hands it to `actors/worker`, which claims it, renders it on
//! the `actors/render` pool, uploads the report and records the outcome;
//! `actors/sweeper` brings back jobs whose worker or message was lost.
pub mod actors;
mod cache;
pub mod cli;
pub mod config;
pub mod faults;
mod http;
mod notify;
pub mod job;
mod queue;
pub mod render;
pub mod startup;
pub mod storage;
pub mod store;
mod telemetry;
mod warehouse;

/// The codes of the API's error bodies: the tests check the README and the
/// OpenAPI document against this list.
pub use http::error::ErrorCode;
