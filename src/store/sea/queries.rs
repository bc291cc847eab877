//! Reads: single jobs, pages, counts, and what the sweeper looks for.
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::classify;
use super::entity::{dead_letter, job, outbox, payload, webhook_delivery};
use super::mapping::jobs;
use crate::job::{DeadLetter, Job, JobStatus};
use crate::store::{JobFilter, JobPage, StatusCounts, StoreError};

use job::Column as C;

pub(super) async fn get(db: &DatabaseConnection, id: Uuid) -> Result<Option<Job>, StoreError> {
    job::Entity::find_by_id(id).one(db).await.map_err(classify)?.map(Job::try_from).transpose()
}

pub(super) async fn list(db: &DatabaseConnection, filter: JobFilter) -> Result<JobPage, StoreError> {
    let JobFilter { tenant, status, limit, after } = filter;
    let mut q = job::Entity::find().filter(C::ErasedAt.is_null()).order_by(C::Id, Order::Asc).limit(limit + 1);
    if let Some(t) = tenant {
        q = q.filter(C::Tenant.eq(t));
    }
    if let Some(s) = status {
        q = q.filter(C::Status.eq(s.as_str()));
    }
    if let Some(a) = after {
        q = q.filter(C::Id.gt(a));
    }
    let mut jobs = jobs(q.all(db).await.map_err(classify)?)?;
    let next_cursor = if jobs.len() as u64 > limit {
        jobs.truncate(limit as usize);
        jobs.last().map(|j| j.id)
    } else {
        None
    };
    Ok(JobPage { jobs, next_cursor })
}

pub(super) async fn dead_letters(db: &DatabaseConnection, limit: u64) -> Result<Vec<DeadLetter>, StoreError> {
    let rows = dead_letter::Entity::find()
        .order_by(dead_letter::Column::Id, Order::Asc)
        .limit(limit)
        .all(db)
        .await
        .map_err(classify)?;
    Ok(rows.into_iter().map(DeadLetter::from).collect())
}

pub(super) async fn counts(db: &DatabaseConnection) -> Result<StatusCounts, StoreError> {
    let rows: Vec<(String, i64)> = job::Entity::find()
        .select_only()
        .column(C::Status)
        .column_as(C::Id.count(), "n")
        .group_by(C::Status)
        .into_tuple()
        .all(db)
        .await
        .map_err(classify)?;
    let mut c = StatusCounts::default();
    for (status, n) in rows {
        let n = u64::try_from(n).unwrap_or(0);
        match JobStatus::parse(&status) {
            Some(JobStatus::Queued) => c.queued = n,
            Some(JobStatus::Processing) => c.processing = n,
            Some(JobStatus::Done) => c.done = n,
            Some(JobStatus::Error) => c.error = n,
            None => {}
        }
    }
    Ok(c)
}

pub(super) async fn expired_leases(db: &DatabaseConnection, now: DateTime<Utc>, limit: u64) -> Result<Vec<Job>, StoreError> {
    let rows = job::Entity::find()
        .filter(C::Status.eq(JobStatus::Processing.as_str()))
        .filter(C::LeaseUntil.lt(now))
        .order_by(C::Id, Order::Asc)
        .limit(limit)
        .all(db)
        .await
        .map_err(classify)?;
    jobs(rows)
}

pub(super) async fn stale_queued(db: &DatabaseConnection, before: DateTime<Utc>, limit: u64) -> Result<Vec<Job>, StoreError> {
    let waiting = Query::select()
        .column(outbox::Column::JobId)
        .from(outbox::Entity)
        .and_where(outbox::Column::SentAt.is_null())
        .to_owned();
    let rows = job::Entity::find()
        .filter(C::Status.eq(JobStatus::Queued.as_str()))
        .filter(C::UpdatedAt.lt(before))
        .filter(C::Id.not_in_subquery(waiting))
        .order_by(C::Id, Order::Asc)
        .limit(limit)
        .all(db)
        .await
        .map_err(classify)?;
    jobs(rows)
}

pub(super) async fn unfinished(db: &DatabaseConnection, limit: u64, after: Option<Uuid>) -> Result<Vec<Job>, StoreError> {
    let mut q = job::Entity::find()
        .filter(C::Status.is_in([JobStatus::Queued.as_str(), JobStatus::Processing.as_str()]))
        .order_by(C::Id, Order::Asc)
        .limit(limit);
    if let Some(a) = after {
        q = q.filter(C::Id.gt(a));
    }
    jobs(q.all(db).await.map_err(classify)?)
}

pub(super) async fn in_flight_by_tenant(db: &DatabaseConnection) -> Result<Vec<(String, u64)>, StoreError> {
    let rows: Vec<(String, i64)> = job::Entity::find()
        .select_only()
        .column(C::Tenant)
        .column_as(C::Id.count(), "n")
        .filter(C::Status.is_in([JobStatus::Queued.as_str(), JobStatus::Processing.as_str()]))
        .group_by(C::Tenant)
        .into_tuple()
        .all(db)
        .await
        .map_err(classify)?;
    Ok(rows.into_iter().map(|(t, n)| (t, u64::try_from(n).unwrap_or(0))).collect())
}

pub(super) async fn expired(db: &DatabaseConnection, now: DateTime<Utc>, limit: u64) -> Result<Vec<Job>, StoreError> {
    let rows = job::Entity::find()
        .filter(C::ExpiresAt.lt(now))
        .filter(C::Status.is_in([JobStatus::Done.as_str(), JobStatus::Error.as_str()]))
        .filter(sea_orm::Condition::any().add(C::ReportKey.is_not_null()).add(C::PayloadKey.ne("")))
        .order_by(C::ExpiresAt, Order::Asc)
        .limit(limit)
        .all(db)
        .await
        .map_err(classify)?;
    jobs(rows)
}

pub(super) async fn erased(db: &DatabaseConnection, limit: u64) -> Result<Vec<Job>, StoreError> {
    jobs(job::Entity::find().filter(C::ErasedAt.is_not_null()).limit(limit).all(db).await.map_err(classify)?)
}

pub(super) async fn finished_before(db: &DatabaseConnection, before: DateTime<Utc>, limit: u64) -> Result<Vec<Job>, StoreError> {
    let rows = job::Entity::find()
        .filter(C::FinishedAt.lt(before))
        .filter(C::Status.is_in([JobStatus::Done.as_str(), JobStatus::Error.as_str()]))
        .limit(limit)
        .all(db)
        .await
        .map_err(classify)?;
    jobs(rows)
}

pub(super) async fn purge(db: &DatabaseConnection, ids: &[Uuid]) -> Result<u64, StoreError> {
    use sea_orm::TransactionTrait;
    if ids.is_empty() {
        return Ok(0);
    }
    let txn = db.begin().await.map_err(classify)?;
    outbox::Entity::delete_many().filter(outbox::Column::JobId.is_in(ids.iter().copied())).exec(&txn).await.map_err(classify)?;
    dead_letter::Entity::delete_many()
        .filter(dead_letter::Column::JobId.is_in(ids.iter().copied()))
        .exec(&txn)
        .await
        .map_err(classify)?;
    webhook_delivery::Entity::delete_many()
        .filter(webhook_delivery::Column::JobId.is_in(ids.iter().copied()))
        .exec(&txn)
        .await
        .map_err(classify)?;
    payload::Entity::delete_many().filter(payload::Column::JobId.is_in(ids.iter().copied())).exec(&txn).await.map_err(classify)?;
    let deleted = job::Entity::delete_many().filter(C::Id.is_in(ids.iter().copied())).exec(&txn).await.map_err(classify)?;
    txn.commit().await.map_err(classify)?;
    Ok(deleted.rows_affected)
}

pub(super) async fn stuck_queued(db: &DatabaseConnection, before: DateTime<Utc>, limit: u64) -> Result<Vec<Job>, StoreError> {
    // A retry waiting out its backoff has an unsent message due later: not stuck.
    let backing_off = Query::select()
        .column(outbox::Column::JobId)
        .from(outbox::Entity)
        .and_where(outbox::Column::SentAt.is_null())
        .and_where(outbox::Column::AvailableAt.gte(before))
        .to_owned();
    let rows = job::Entity::find()
        .filter(C::Status.eq(JobStatus::Queued.as_str()))
        .filter(C::UpdatedAt.lt(before))
        .filter(C::Id.not_in_subquery(backing_off))
        .order_by(C::Id, Order::Asc)
        .limit(limit)
        .all(db)
        .await
        .map_err(classify)?;
    jobs(rows)
}
