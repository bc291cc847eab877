//! sea-orm entities, one per table of `migrations/`. Enums are stored as
//! their names; `super::mapping` turns rows into domain types.
pub(crate) mod api_key;
pub(crate) mod dead_letter;
pub(crate) mod job;
pub(crate) mod outbox;
pub(crate) mod payload;
pub(crate) mod webhook_delivery;
pub(crate) mod worker;
pub(crate) mod ui_session;
