//! The outbox: messages committed in the same transaction as the change they
//! announce, claimed by relays with a hold (so two relays do not publish the
//! same row at once) and marked sent with where the queue put them.
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, LockBehavior, LockType, Query};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, Order, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use super::entity::{outbox, payload};
use super::{classify, earlier, later};
use crate::job::{Job, JobMessage, Topic};
use crate::store::{OutboxRow, StoreError};

use outbox::Column as C;

/// Announces the job's next attempt, keyed by the job id (one partition per
/// job). An inline payload goes in the message, read from the store unless
/// the caller has it at hand (a job being created).
pub(super) async fn enqueue(
    txn: &DatabaseTransaction,
    job: &Job,
    available_at: DateTime<Utc>,
    inline: Option<Vec<u8>>,
) -> Result<(), StoreError> {
    let inline = match inline {
        Some(bytes) => Some(bytes),
        None if job.payload_inline => inline_payload(txn, job.id).await?,
        None => None,
    };
    let msg = JobMessage::for_attempt(job, inline);
    insert_outbox(txn, job.id, Topic::Jobs, msg.to_json(), available_at, job.id.to_string()).await
}

/// A job's inline payload, if it has one (still).
pub(super) async fn inline_payload(db: &impl ConnectionTrait, job: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(payload::Entity::find_by_id(job).one(db).await.map_err(classify)?.map(|p| p.body))
}

pub(super) async fn insert_outbox(
    txn: &DatabaseTransaction,
    job_id: Uuid,
    topic: Topic,
    value: String,
    available_at: DateTime<Utc>,
    key: String,
) -> Result<(), StoreError> {
    let row = outbox::ActiveModel {
        id: NotSet,
        job_id: Set(job_id),
        topic: Set(topic.as_str().to_owned()),
        key: Set(key),
        value: Set(value),
        created_at: Set(Utc::now()),
        available_at: Set(available_at),
        sent_at: Set(None),
        queue_partition: Set(None),
        queue_offset: Set(None),
    };
    outbox::Entity::insert(row).exec_without_returning(txn).await.map(|_| ()).map_err(classify)
}

pub(super) async fn claim(db: &DatabaseConnection, topics: &[Topic], limit: u64, hold: Duration) -> Result<Vec<OutboxRow>, StoreError> {
    let now = Utc::now();
    let due = Query::select()
        .column(C::Id)
        .from(outbox::Entity)
        .and_where(C::SentAt.is_null())
        .and_where(C::AvailableAt.lte(now))
        .and_where(C::Topic.is_in(topics.iter().map(|t| t.as_str())))
        .order_by(C::Id, Order::Asc)
        .limit(limit)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .to_owned();
    let mut rows = outbox::Entity::update_many()
        .col_expr(C::AvailableAt, Expr::value(later(now, hold)))
        .filter(C::Id.in_subquery(due))
        .exec_with_returning(db)
        .await
        .map_err(classify)?;
    rows.sort_by_key(|r| r.id);
    rows.into_iter().map(OutboxRow::try_from).collect()
}

pub(super) async fn mark_sent(db: &DatabaseConnection, sent: &[(i64, Option<(i32, i64)>)]) -> Result<(), StoreError> {
    if sent.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let plain: Vec<i64> = sent.iter().filter(|(_, p)| p.is_none()).map(|(id, _)| *id).collect();
    let txn = db.begin().await.map_err(classify)?;
    if !plain.is_empty() {
        outbox::Entity::update_many()
            .col_expr(C::SentAt, Expr::value(Some(now)))
            .filter(C::Id.is_in(plain))
            .exec(&txn)
            .await
            .map_err(classify)?;
    }
    for (id, position) in sent {
        if let Some((partition, offset)) = position {
            outbox::Entity::update_many()
                .col_expr(C::SentAt, Expr::value(Some(now)))
                .col_expr(C::QueuePartition, Expr::value(Some(*partition)))
                .col_expr(C::QueueOffset, Expr::value(Some(*offset)))
                .filter(C::Id.eq(*id))
                .exec(&txn)
                .await
                .map_err(classify)?;
        }
    }
    txn.commit().await.map_err(classify)
}

pub(super) async fn last_positions(db: &DatabaseConnection, jobs: &[Uuid]) -> Result<Vec<(Uuid, (i32, i64))>, StoreError> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let rows = outbox::Entity::find()
        .filter(C::JobId.is_in(jobs.iter().copied()))
        .filter(C::Topic.eq(Topic::Jobs.as_str()))
        .filter(C::SentAt.is_not_null())
        .order_by(C::Id, Order::Desc)
        .all(db)
        .await
        .map_err(classify)?;
    let mut seen = std::collections::HashSet::new();
    Ok(rows
        .into_iter()
        .filter(|r| seen.insert(r.job_id))
        .filter_map(|r| Some((r.job_id, (r.queue_partition?, r.queue_offset?))))
        .collect())
}

pub(super) async fn reschedule(db: &DatabaseConnection, ids: &[i64], delay: Duration) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    outbox::Entity::update_many()
        .col_expr(C::AvailableAt, Expr::value(later(Utc::now(), delay)))
        .filter(C::Id.is_in(ids.iter().copied()))
        .filter(C::SentAt.is_null())
        .exec(db)
        .await
        .map(|_| ())
        .map_err(classify)
}

pub(super) async fn backlog(db: &DatabaseConnection) -> Result<(Option<Duration>, u64), StoreError> {
    let now = Utc::now();
    let oldest: Option<Option<DateTime<Utc>>> = outbox::Entity::find()
        .select_only()
        .column_as(C::AvailableAt.min(), "oldest")
        .filter(C::SentAt.is_null())
        .filter(C::AvailableAt.lte(now))
        .into_tuple()
        .one(db)
        .await
        .map_err(classify)?;
    let pending = outbox::Entity::find().filter(C::SentAt.is_null()).count(db).await.map_err(classify)?;
    let lag = oldest.flatten().and_then(|t| (now - t).to_std().ok());
    Ok((lag, pending))
}

pub(super) async fn prune(db: &DatabaseConnection, age: Duration) -> Result<u64, StoreError> {
    outbox::Entity::delete_many()
        .filter(C::SentAt.lt(earlier(Utc::now(), age)))
        .exec(db)
        .await
        .map(|r| r.rows_affected)
        .map_err(classify)
}
