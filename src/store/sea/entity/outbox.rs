use sea_orm::entity::prelude::*;

/// A message committed with the state change it announces, published later by the relay.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub job_id: Uuid,
    pub topic: String,
    pub key: String,
    pub value: String,
    pub created_at: DateTimeUtc,
    /// Not published before this time (retry backoff), and held back while a relay publishes it.
    pub available_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
    /// Where the queue put the message (Kafka), once sent.
    pub queue_partition: Option<i32>,
    pub queue_offset: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
