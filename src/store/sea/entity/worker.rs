use sea_orm::entity::prelude::*;

/// A worker process, as it last reported itself.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub owner: String,
    pub host: String,
    pub started_at: DateTimeUtc,
    pub seen_at: DateTimeUtc,
    pub in_flight: i32,
    pub jobs_done: i64,
    pub jobs_failed: i64,
    pub version: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
