//! The domain: what a report job is, how its input is validated and encoded,
//! and which status changes are legal.
pub mod cell;
pub mod message;
pub mod payload;
pub mod status;
pub mod validate;

pub use cell::{CellRef, Column, ColumnType};
pub use message::{DeadLetterMessage, JobMessage};
pub use payload::{PayloadHeader, PayloadReader, PayloadWriter, SealedPayload, SheetHeader};
pub use status::{JobStatus, ReportFormat};
