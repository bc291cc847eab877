//! The actor tree. One actor per file, with its messages beside it:
//! `supervisor` starts the others; `source` takes deliveries from the queue
//! port and runs each through `worker`, which renders on the `render` pool;
//! `status` is the one writer of job state; `relay` publishes the outbox;
//! `sweeper` recovers lost jobs; `janitor` deletes what retention and
//! deletions say must go; `webhooks` delivers the events jobs asked for;
//! `presence` reports a worker process's activity for the dashboard. Actors know ports only: startup hands them
//! the adapters.
pub(crate) mod janitor;
pub(crate) mod presence;
pub(crate) mod relay;
pub(crate) mod render;
pub(crate) mod source;
pub(crate) mod status;
pub mod supervisor;
pub(crate) mod sweeper;
pub(crate) mod webhooks;
pub(crate) mod worker;

use std::time::Duration;

use actix::Message;

/// Stop taking new messages and wait up to `deadline` for those in flight.
#[derive(Message)]
#[rtype(result = "DrainReport")]
pub(crate) struct Drain {
    pub(crate) deadline: Duration,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    pub finished: usize,
    pub abandoned: usize,
}
