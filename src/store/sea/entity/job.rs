use sea_orm::entity::prelude::*;

/// One row of `jobs`: the source of truth for a job.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant: String,
    /// `xlsx` or `pdf`.
    pub format: String,
    pub title: String,
    /// `queued`, `processing`, `done` or `error`.
    pub status: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub renders: i32,
    pub row_count: i64,
    pub error: Option<String>,
    pub payload_key: String,
    pub report_key: Option<String>,
    pub idempotency_key: Option<String>,
    pub request_hash: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
    pub expires_at: Option<DateTimeUtc>,
    pub erased_at: Option<DateTimeUtc>,
    pub report_bytes: Option<i64>,
    pub request_id: Option<String>,
    pub rows_written: i64,
    pub callback_url: Option<String>,
    /// The payload is in `payloads`, not object storage.
    pub payload_inline: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
