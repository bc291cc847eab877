//! sea-orm entities, one per table of `migrations/`.
pub mod dead_letter;
pub mod job;
pub mod outbox;
