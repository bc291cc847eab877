//! reportd: asynchronous XLSX/PDF report generation.
//!
//! The path of a job, by folder: `http/` accepts and validates it (`job/`),
//! stores its rows in `storage/` and its row plus an outbox message in `store/`
//! (through `actors/status`); `actors/relay` publishes the message to `queue/`;
//! a source actor (`actors/local_source`, `actors/kafka_source`) hands it to
//! `worker`, which claims it, renders it with `render/` on the render pool
//! (`actors/render`), uploads the file and records the outcome through
//! `actors/status`, or through `actors/retry` when it failed. `actors/sweeper`
//! brings back jobs whose worker or message was lost.
pub mod actors;
pub mod bench;
pub mod cache;
pub mod config;
pub mod dlq;
pub mod faults;
pub mod http;
pub mod job;
pub mod queue;
pub mod render;
pub mod startup;
pub mod storage;
pub mod store;
pub mod telemetry;
pub mod worker;
