//! The outbox: messages committed in the same transaction as the change they
//! announce, claimed by relays with a hold (so two relays do not publish the
//! same row at once) and marked sent with where the queue put them.
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, LockBehavior, LockType, Query};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait, Order, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement,
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

/// Marks published rows sent, with where the queue put them: one statement for
/// the rows without a position and one for those with (a `VALUES` list joined
/// on the id), so a batch costs two round trips at most, not one per row. No
/// transaction: a row left unsent is published again, a duplicate the worker's
/// claim absorbs, never a loss.
pub(super) async fn mark_sent(db: &DatabaseConnection, sent: &[(i64, Option<(i32, i64)>)]) -> Result<(), StoreError> {
    let now = Utc::now();
    let plain: Vec<i64> = sent.iter().filter(|(_, p)| p.is_none()).map(|(id, _)| *id).collect();
    if !plain.is_empty() {
        outbox::Entity::update_many()
            .col_expr(C::SentAt, Expr::value(Some(now)))
            .filter(C::Id.is_in(plain))
            .exec(db)
            .await
            .map_err(classify)?;
    }
    let placed: Vec<(i64, i32, i64)> =
        sent.iter().filter_map(|(id, p)| p.map(|(partition, offset)| (*id, partition, offset))).collect();
    for chunk in placed.chunks(MARK_SENT_CHUNK) {
        db.execute_raw(mark_placed(db.get_database_backend(), now, chunk)).await.map_err(classify)?;
    }
    Ok(())
}

/// Rows per statement when marking positioned rows sent (three parameters each).
const MARK_SENT_CHUNK: usize = 256;

/// `UPDATE … FROM (VALUES …)`, which PostgreSQL and SQLite (3.33+) both read;
/// a `VALUES` list's columns are `column1…` in both.
fn mark_placed(backend: DbBackend, now: DateTime<Utc>, rows: &[(i64, i32, i64)]) -> Statement {
    let mut sql = String::from(
        "UPDATE outbox SET sent_at = $1, queue_partition = v.column2, queue_offset = v.column3 FROM (VALUES ",
    );
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(1 + rows.len() * 3);
    values.push(now.into());
    for (i, (id, partition, offset)) in rows.iter().enumerate() {
        let n = 2 + i * 3;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(${n}, ${}, ${})", n + 1, n + 2));
        values.extend([(*id).into(), (*partition).into(), (*offset).into()]);
    }
    sql.push_str(") AS v WHERE outbox.id = v.column1");
    Statement::from_sql_and_values(backend, sql, values)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use uuid::Uuid;

    use super::super::SeaStore;
    use crate::job::{ReportFormat, Topic};
    use crate::store::{JobStore, NewJob, StatusOp};

    fn new_job(id: Uuid) -> NewJob {
        NewJob {
            id,
            tenant: "t".into(),
            format: ReportFormat::Xlsx,
            title: "outbox".into(),
            max_attempts: 3,
            row_count: 1,
            payload_key: format!("payloads/{id}"),
            idempotency_key: None,
            request_hash: None,
            request_id: None,
            callback_url: None,
            inline_payload: None,
        }
    }

    /// Rows marked sent with and without a queue position, in one batch: each
    /// is sent, and the positions read back per job.
    async fn marks_a_batch_sent_with_positions(store: SeaStore) {
        let ids: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
        for created in store.apply(ids.iter().map(|&id| StatusOp::Create(new_job(id))).collect()).await {
            created.expect("job created");
        }
        let rows = store.claim_outbox(&[Topic::Jobs], 10, Duration::from_secs(60)).await.expect("claim");
        assert_eq!(rows.len(), 4);
        let sent: Vec<(i64, Option<(i32, i64)>)> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id, (i != 3).then_some((i as i32, 100 + i as i64))))
            .collect();
        store.mark_sent(&sent).await.expect("mark sent");
        let (_, unsent) = store.outbox_backlog().await.expect("backlog");
        assert_eq!(unsent, 0, "every row is marked sent");
        let mut positions = store.last_positions(&ids).await.expect("positions");
        positions.sort();
        let mut want: Vec<(Uuid, (i32, i64))> =
            rows.iter().take(3).enumerate().map(|(i, r)| (r.job_id, (i as i32, 100 + i as i64))).collect();
        want.sort();
        assert_eq!(positions, want, "each positioned row keeps its own partition and offset");
    }

    #[tokio::test]
    async fn sqlite_marks_a_batch_sent_with_positions() {
        let store = SeaStore::connect("sqlite::memory:", 1, Duration::from_secs(5)).await.expect("sqlite");
        store.migrate().await.expect("migrate");
        marks_a_batch_sent_with_positions(store).await;
    }

    #[cfg(feature = "service-tests")]
    #[tokio::test]
    async fn postgres_marks_a_batch_sent_with_positions() {
        use sea_orm::{ConnectionTrait, Database};
        let admin_url = std::env::var("REPORTD_TEST_PG_ADMIN_URL").expect("REPORTD_TEST_PG_ADMIN_URL");
        let name = format!("reportd_u_{}", Uuid::now_v7().simple());
        let admin = Database::connect(&admin_url).await.expect("PostgreSQL");
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create database");
        let base = admin_url.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(admin_url.clone());
        let store = SeaStore::connect(&format!("{base}/{name}"), 2, Duration::from_secs(5)).await.expect("connect");
        store.migrate().await.expect("migrate");
        marks_a_batch_sent_with_positions(store).await;
        admin.execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)")).await.expect("drop database");
    }
}
