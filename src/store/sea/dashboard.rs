//! The dashboard's reads: latency quantiles over a window, the oldest queued
//! job, and the newest jobs. All from the job rows, so every process (and
//! every API replica) shows the same figures.
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};

use super::classify;
use super::entity::job;
use super::mapping::jobs;
use crate::job::{Job, JobStatus};
use crate::store::{Latency, StoreError};

use job::Column as C;

/// Seconds from submit to finish, in each dialect (SQLite keeps timestamps as text).
fn seconds(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "extract(epoch FROM finished_at - created_at)::float8",
        _ => "(julianday(finished_at) - julianday(created_at)) * 86400.0",
    }
}

/// Nearest-rank quantiles, each one indexed read of the sorted window: exact
/// on both dialects (SQLite has no percentile function) without moving the
/// window's rows out of the database.
pub(super) async fn latency(db: &DatabaseConnection, since: DateTime<Utc>) -> Result<Latency, StoreError> {
    let done = job::Entity::find()
        .filter(C::Status.eq(JobStatus::Done.as_str()))
        .filter(C::FinishedAt.gte(since))
        .filter(C::ErasedAt.is_null())
        .select_only()
        .column_as(C::Id.count(), "n")
        .into_tuple::<i64>()
        .one(db)
        .await
        .map_err(classify)?
        .map_or(0, |n| u64::try_from(n).unwrap_or(0));
    if done == 0 {
        return Ok(Latency::default());
    }
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT {} AS s FROM jobs WHERE status = 'done' AND finished_at >= $1 AND erased_at IS NULL \
         ORDER BY s LIMIT 1 OFFSET $2",
        seconds(backend)
    );
    let p50_seconds = nth(db, &sql, since, rank(0.5, done)).await?;
    let p95_seconds = nth(db, &sql, since, rank(0.95, done)).await?;
    Ok(Latency { done, p50_seconds, p95_seconds })
}

/// Nearest rank: the offset of the ceil(q·n)-th smallest of n values.
fn rank(q: f64, n: u64) -> i64 {
    let rank = ((q * n as f64).ceil() as u64).clamp(1, n.max(1));
    i64::try_from(rank - 1).unwrap_or(i64::MAX)
}

async fn nth(db: &DatabaseConnection, sql: &str, since: DateTime<Utc>, offset: i64) -> Result<Option<f64>, StoreError> {
    let stmt = Statement::from_sql_and_values(db.get_database_backend(), sql, [since.into(), offset.into()]);
    let row = db.query_one_raw(stmt).await.map_err(classify)?;
    Ok(row.and_then(|r| r.try_get::<f64>("", "s").ok()))
}

pub(super) async fn oldest_queued(db: &DatabaseConnection) -> Result<Option<DateTime<Utc>>, StoreError> {
    let oldest = job::Entity::find()
        .filter(C::Status.eq(JobStatus::Queued.as_str()))
        .filter(C::ErasedAt.is_null())
        .order_by(C::UpdatedAt, Order::Asc)
        .one(db)
        .await
        .map_err(classify)?;
    Ok(oldest.map(|j| j.updated_at))
}

pub(super) async fn recent(db: &DatabaseConnection, status: Option<JobStatus>, limit: u64) -> Result<Vec<Job>, StoreError> {
    // Ids are UUIDv7: newest id, newest job.
    let mut q = job::Entity::find().filter(C::ErasedAt.is_null()).order_by(C::Id, Order::Desc).limit(limit);
    if let Some(s) = status {
        q = q.filter(C::Status.eq(s.as_str()));
    }
    jobs(q.all(db).await.map_err(classify)?)
}

#[cfg(test)]
mod tests {
    use super::rank;

    #[test]
    fn ranks_are_nearest_rank_offsets() {
        assert_eq!(rank(0.5, 1), 0);
        assert_eq!(rank(0.95, 1), 0);
        assert_eq!(rank(0.5, 4), 1, "the 2nd of 4");
        assert_eq!(rank(0.95, 20), 18, "the 19th of 20");
        assert_eq!(rank(0.95, 21), 19, "the 20th of 21");
        assert_eq!(rank(0.5, 0), 0);
    }
}
