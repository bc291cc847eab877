//! The domain: what a report job is, how its input is validated and encoded,
//! and what a failed attempt becomes. It depends on nothing else in the crate.
pub mod access;
pub mod cell;
pub(crate) mod failure;
pub mod message;
pub mod model;
pub mod payload;
pub mod report;
pub(crate) mod retention;
pub(crate) mod retry;
pub mod validate;
pub mod view;
pub mod webhook;

pub use access::{ApiKey, Caller, DEFAULT_TENANT, Role, valid_tenant};
pub use cell::{CellRef, Column, ColumnType};
pub(crate) use failure::{Failure, FailureKind};
pub(crate) use message::{DeadLetterMessage, JobMessage, WebhookMessage};
pub use message::Topic;
pub use model::{DeadLetter, Job, JobStatus, ReportFormat};
pub use payload::{PayloadHeader, PayloadReader, PayloadWriter, SealedPayload, SheetHeader, read_header};
pub(crate) use retention::Retention;
pub(crate) use retry::{Decision, RetryPolicy};
