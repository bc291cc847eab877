//! The domain: what a report job is, how its input is validated and encoded,
//! and what a failed attempt becomes. It depends on nothing else in the crate.
pub mod cell;
pub mod failure;
pub mod message;
pub mod model;
pub mod payload;
pub mod retry;
pub mod validate;

pub use cell::{CellRef, Column, ColumnType};
pub use failure::{Failure, FailureKind};
pub use message::{DeadLetterMessage, JobMessage, Topic};
pub use model::{DeadLetter, Job, JobStatus, ReportFormat};
pub use payload::{PayloadHeader, PayloadReader, PayloadWriter, SealedPayload, SheetHeader};
pub use retry::{Decision, RetryPolicy};
