//! reportd: asynchronous XLSX/PDF report generation.
//!
//! The path of a job, by folder: `http/` accepts and validates it (`job/`),
//! stores its rows in `storage/` and its row plus an outbox message in `store/`;
//! `actors/relay` publishes the message to `queue/`; `actors/*_source` hands it
//! to `worker/`, which claims it, renders it with `render/` on the render pool
//! (`actors/render`), uploads the file and records the outcome through
//! `actors/status` (or `actors/retry` on failure).
pub mod config;
pub mod job;
pub mod render;
pub mod store;
