//! What the dashboard and the status view show besides jobs: webhook
//! deliveries, workers' reports, and jobs finished per minute.
use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Order, QueryFilter, QueryOrder, Statement,
};
use uuid::Uuid;

use super::classify;
use super::entity::{webhook_delivery, worker};
use crate::job::webhook::WebhookDelivery;
use crate::store::{MinuteStats, StoreError, WorkerInfo};

pub(super) async fn deliveries(db: &DatabaseConnection, job: Uuid) -> Result<Vec<WebhookDelivery>, StoreError> {
    let rows = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::JobId.eq(job))
        .order_by(webhook_delivery::Column::Id, Order::Asc)
        .all(db)
        .await
        .map_err(classify)?;
    Ok(rows.into_iter().map(WebhookDelivery::from).collect())
}

pub(super) async fn record_delivery(db: &DatabaseConnection, job: Uuid, d: &WebhookDelivery) -> Result<(), StoreError> {
    let row = webhook_delivery::ActiveModel {
        id: NotSet,
        job_id: Set(job),
        webhook_id: Set(d.event),
        attempt: Set(d.attempt),
        at: Set(d.at),
        status_code: Set(d.status_code),
        error: Set(d.error.clone()),
    };
    webhook_delivery::Entity::insert(row).exec_without_returning(db).await.map(|_| ()).map_err(classify)
}

pub(super) async fn report_worker(db: &DatabaseConnection, w: &WorkerInfo) -> Result<(), StoreError> {
    use worker::Column as C;
    let row = worker::ActiveModel {
        owner: Set(w.owner.clone()),
        host: Set(w.host.clone()),
        started_at: Set(w.started_at),
        seen_at: Set(w.seen_at),
        in_flight: Set(w.in_flight),
        jobs_done: Set(w.jobs_done),
        jobs_failed: Set(w.jobs_failed),
        version: Set(w.version.clone()),
    };
    let upsert = OnConflict::column(C::Owner).update_columns([C::SeenAt, C::InFlight, C::JobsDone, C::JobsFailed]).to_owned();
    worker::Entity::insert(row).on_conflict(upsert).exec_without_returning(db).await.map(|_| ()).map_err(classify)
}

pub(super) async fn workers(db: &DatabaseConnection, since: DateTime<Utc>) -> Result<Vec<WorkerInfo>, StoreError> {
    let rows = worker::Entity::find()
        .filter(worker::Column::SeenAt.gte(since))
        .order_by(worker::Column::StartedAt, Order::Asc)
        .all(db)
        .await
        .map_err(classify)?;
    Ok(rows
        .into_iter()
        .map(|w| WorkerInfo {
            owner: w.owner,
            host: w.host,
            started_at: w.started_at,
            seen_at: w.seen_at,
            in_flight: w.in_flight,
            jobs_done: w.jobs_done,
            jobs_failed: w.jobs_failed,
            version: w.version,
        })
        .collect())
}

pub(super) async fn forget_workers(db: &DatabaseConnection, before: DateTime<Utc>) -> Result<u64, StoreError> {
    let gone = worker::Entity::delete_many().filter(worker::Column::SeenAt.lt(before)).exec(db).await.map_err(classify)?;
    Ok(gone.rows_affected)
}

pub(super) async fn minutes(db: &DatabaseConnection, since: DateTime<Utc>) -> Result<Vec<MinuteStats>, StoreError> {
    let backend = db.get_database_backend();
    // Grouping by minute is written in each dialect: the one query that is.
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT to_char(date_trunc('minute', finished_at), 'YYYY-MM-DD\"T\"HH24:MI:00Z') AS minute, \
             count(*) FILTER (WHERE status = 'done') AS done, count(*) FILTER (WHERE status = 'error') AS failed, \
             avg(extract(epoch FROM finished_at - created_at))::float8 AS mean_seconds \
             FROM jobs WHERE finished_at >= $1 AND erased_at IS NULL GROUP BY 1 ORDER BY 1"
        }
        _ => {
            "SELECT strftime('%Y-%m-%dT%H:%M:00Z', finished_at) AS minute, \
             sum(status = 'done') AS done, sum(status = 'error') AS failed, \
             avg((julianday(finished_at) - julianday(created_at)) * 86400.0) AS mean_seconds \
             FROM jobs WHERE finished_at >= $1 AND erased_at IS NULL GROUP BY 1 ORDER BY 1"
        }
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, [since.into()]))
        .await
        .map_err(classify)?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let minute: String = r.try_get("", "minute").ok()?;
            Some(MinuteStats {
                minute: minute.parse().ok()?,
                done: r.try_get::<i64>("", "done").unwrap_or(0).max(0) as u64,
                failed: r.try_get::<i64>("", "failed").unwrap_or(0).max(0) as u64,
                mean_seconds: r.try_get::<f64>("", "mean_seconds").unwrap_or(0.0),
            })
        })
        .collect())
}
