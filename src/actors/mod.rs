//! The actor tree. One actor per file, with its messages beside it:
//! `supervisor` starts the others; a source (`local_source` or `kafka_source`)
//! feeds jobs to the `render` pool through `crate::worker`; `status` is the
//! one writer of job state; `retry` turns failures into retries or dead
//! letters; `relay` publishes the outbox; `sweeper` recovers lost jobs.
pub mod kafka_source;
pub mod local_source;
pub mod relay;
pub mod render;
pub mod retry;
pub mod status;
pub mod supervisor;
pub mod sweeper;

use std::time::Duration;

use actix::Message;

/// Stop taking new messages and wait up to `deadline` for those in flight.
#[derive(Message)]
#[rtype(result = "DrainReport")]
pub struct Drain {
    pub deadline: Duration,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    pub finished: usize,
    pub abandoned: usize,
}
