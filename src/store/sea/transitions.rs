//! Job transitions as conditional `UPDATE … RETURNING`: the database, not the
//! caller, decides whether a claim or a completion holds. Every transition
//! goes through `transition`, which adds the guard on the job's id and stamps
//! `updated_at`; what a transition announces goes into the outbox in the same
//! transaction (`super::outbox`).
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, DatabaseTransaction, EntityTrait, ExprTrait, QueryFilter, TransactionTrait, UpdateMany,
};

use super::entity::{dead_letter, job, payload};
use super::mapping::first_job;
use super::outbox::{enqueue, insert_outbox};
use super::{classify, is_unique_violation, later};
use crate::job::{DeadLetterMessage, Job, JobStatus, Topic, WebhookMessage};
use crate::store::{NewJob, OpOutcome, StatusOp, StoreError};

use job::Column as C;

fn status(s: JobStatus) -> SimpleExpr {
    Expr::value(s.as_str())
}

fn is(s: JobStatus) -> SimpleExpr {
    C::Status.eq(s.as_str())
}

/// Sets `changes` on job `id` where `guard` holds; returns the job after it,
/// or `None` when the guard did not hold.
async fn transition(
    txn: &DatabaseTransaction,
    id: uuid::Uuid,
    now: DateTime<Utc>,
    guard: Condition,
    changes: impl FnOnce(UpdateMany<job::Entity>) -> UpdateMany<job::Entity>,
) -> Result<Option<Job>, StoreError> {
    let update = job::Entity::update_many().col_expr(C::UpdatedAt, Expr::value(now)).filter(C::Id.eq(id)).filter(guard);
    first_job(changes(update).exec_with_returning(txn).await.map_err(classify)?)
}

fn clear_lease(u: UpdateMany<job::Entity>) -> UpdateMany<job::Entity> {
    u.col_expr(C::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(C::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
}

fn held_by(owner: String) -> Condition {
    Condition::all().add(is(JobStatus::Processing)).add(C::LeaseOwner.eq(owner))
}

pub(super) async fn apply_one(txn: &DatabaseTransaction, op: StatusOp) -> Result<OpOutcome, StoreError> {
    let now = Utc::now();
    let job = match op {
        StatusOp::Create(new) => return create(txn, new, now).await,
        StatusOp::Claim { id, owner, lease } => {
            let claimable = Condition::any()
                .add(is(JobStatus::Queued))
                .add(Condition::all().add(is(JobStatus::Processing)).add(C::LeaseUntil.lt(now)));
            transition(txn, id, now, claimable, |u| {
                u.col_expr(C::Status, status(JobStatus::Processing))
                    .col_expr(C::LeaseOwner, Expr::value(owner))
                    .col_expr(C::LeaseUntil, Expr::value(later(now, lease)))
                    .col_expr(C::Attempts, Expr::col(C::Attempts).add(1))
            })
            .await?
        }
        StatusOp::Heartbeat { id, owner, lease } => {
            transition(txn, id, now, held_by(owner), |u| u.col_expr(C::LeaseUntil, Expr::value(later(now, lease)))).await?
        }
        StatusOp::Progress { id, owner, rows_written } => {
            transition(txn, id, now, held_by(owner), |u| u.col_expr(C::RowsWritten, Expr::value(rows_written))).await?
        }
        StatusOp::Complete { id, owner, report_key, report_bytes, rows, keep_for } => {
            let done = transition(txn, id, now, held_by(owner), |u| {
                clear_lease(u)
                    .col_expr(C::Status, status(JobStatus::Done))
                    .col_expr(C::ReportKey, Expr::value(Some(report_key)))
                    .col_expr(C::ReportBytes, Expr::value(Some(report_bytes)))
                    .col_expr(C::ExpiresAt, Expr::value(Some(later(now, keep_for))))
                    .col_expr(C::Renders, Expr::col(C::Renders).add(1))
                    .col_expr(C::RowCount, Expr::value(rows))
                    .col_expr(C::RowsWritten, Expr::value(rows))
                    .col_expr(C::Error, Expr::value(Option::<String>::None))
                    .col_expr(C::FinishedAt, Expr::value(Some(now)))
            })
            .await?;
            if let Some(job) = &done {
                // The rows are in the report now; a done job is never rendered again.
                drop_payload(txn, job).await?;
                webhook_event(txn, job, true, now).await?;
            }
            if done.is_none() {
                // The lease was lost, yet a render finished: count it, so a
                // duplicate render is visible rather than silent. No row at
                // all means the job was erased meanwhile.
                let counted = job::Entity::update_many()
                    .col_expr(C::Renders, Expr::col(C::Renders).add(1))
                    .filter(C::Id.eq(id))
                    .exec(txn)
                    .await
                    .map_err(classify)?;
                if counted.rows_affected == 0 {
                    return Ok(OpOutcome::Gone);
                }
            }
            done
        }
        StatusOp::Requeue { id, owner, error, delay } => {
            let job = transition(txn, id, now, held_by(owner), |u| {
                clear_lease(u).col_expr(C::Status, status(JobStatus::Queued)).col_expr(C::Error, Expr::value(Some(error)))
            })
            .await?;
            if let Some(job) = &job {
                enqueue(txn, job, later(now, delay), None).await?;
            }
            job
        }
        StatusOp::DeadLetter { id, owner, error, keep_for } => {
            let guard = match owner {
                Some(owner) => held_by(owner),
                None => Condition::all().add(is(JobStatus::Processing)).add(C::LeaseUntil.lt(now)),
            };
            let job = transition(txn, id, now, guard, |u| {
                clear_lease(u)
                    .col_expr(C::Status, status(JobStatus::Error))
                    .col_expr(C::Error, Expr::value(Some(error.clone())))
                    .col_expr(C::FinishedAt, Expr::value(Some(now)))
                    .col_expr(C::ExpiresAt, Expr::value(Some(later(now, keep_for))))
            })
            .await?;
            if let Some(job) = &job {
                dead_letter(txn, job, error, now).await?;
                webhook_event(txn, job, false, now).await?;
            }
            job
        }
        StatusOp::Reclaim { id, force } => {
            let mut guard = Condition::all().add(is(JobStatus::Processing));
            if !force {
                guard = guard.add(C::LeaseUntil.lt(now));
            }
            let job = transition(txn, id, now, guard, |u| clear_lease(u).col_expr(C::Status, status(JobStatus::Queued))).await?;
            if let Some(job) = &job {
                enqueue(txn, job, now, None).await?;
            }
            job
        }
        StatusOp::Republish { id, older_than } => {
            let cutoff = now - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::zero());
            let guard = Condition::all().add(is(JobStatus::Queued)).add(C::UpdatedAt.lt(cutoff));
            let job = transition(txn, id, now, guard, |u| u).await?;
            if let Some(job) = &job {
                enqueue(txn, job, now, None).await?;
            }
            job
        }
        StatusOp::Retry { id } => {
            // Only while its payload is kept: not erased, not expired.
            let guard = Condition::all()
                .add(is(JobStatus::Error))
                .add(C::ErasedAt.is_null())
                .add(Condition::any().add(C::ExpiresAt.is_null()).add(C::ExpiresAt.gt(now)));
            let job = transition(txn, id, now, guard, |u| {
                u.col_expr(C::Status, status(JobStatus::Queued))
                    .col_expr(C::Attempts, Expr::value(0))
                    .col_expr(C::Error, Expr::value(Option::<String>::None))
                    .col_expr(C::FinishedAt, Expr::value(Option::<DateTime<Utc>>::None))
                    .col_expr(C::ExpiresAt, Expr::value(Option::<DateTime<Utc>>::None))
            })
            .await?;
            if let Some(job) = &job {
                enqueue(txn, job, now, None).await?;
            }
            job
        }
        StatusOp::Erase { id } => {
            // A job still queued or processing is cancelled: it ends in error,
            // its lease is cleared (so its worker loses it), and nothing claims it.
            let unfinished = Condition::any().add(is(JobStatus::Queued)).add(is(JobStatus::Processing));
            let cancelled = transition(txn, id, now, Condition::all().add(unfinished).add(C::ErasedAt.is_null()), |u| {
                clear_lease(u)
                    .col_expr(C::Status, status(JobStatus::Error))
                    .col_expr(C::Error, Expr::value(Some("deleted by its owner")))
                    .col_expr(C::FinishedAt, Expr::value(Some(now)))
                    .col_expr(C::ErasedAt, Expr::value(Some(now)))
            })
            .await?;
            let erased = match cancelled {
                Some(job) => Some(job),
                None => transition(txn, id, now, Condition::all().add(C::ErasedAt.is_null()), |u| {
                    u.col_expr(C::ErasedAt, Expr::value(Some(now)))
                })
                .await?,
            };
            if let Some(job) = &erased {
                drop_payload(txn, job).await?;
            }
            erased
        }
        StatusOp::Expire { id } => {
            let expired = transition(txn, id, now, Condition::all(), |u| {
                u.col_expr(C::ReportKey, Expr::value(Option::<String>::None)).col_expr(C::PayloadKey, Expr::value(""))
            })
            .await?;
            if let Some(job) = &expired {
                drop_payload(txn, job).await?;
            }
            expired
        }
    };
    Ok(OpOutcome::Updated(job))
}

/// Announces a finished job's webhook, if it asked for one: an outbox row
/// the webhook deliverer sends, in the same transaction as the outcome.
async fn webhook_event(txn: &DatabaseTransaction, job: &Job, done: bool, now: DateTime<Utc>) -> Result<(), StoreError> {
    if job.callback_url.is_none() {
        return Ok(());
    }
    let msg = WebhookMessage { webhook_id: uuid::Uuid::now_v7(), job_id: job.id, done };
    insert_outbox(txn, job.id, Topic::Webhooks, msg.to_json(), now, job.id.to_string()).await
}

/// Records the dead letter and announces it on the dead-letter topic.
async fn dead_letter(txn: &DatabaseTransaction, job: &Job, error: String, now: DateTime<Utc>) -> Result<(), StoreError> {
    let letter = dead_letter::ActiveModel {
        id: NotSet,
        job_id: Set(job.id),
        error: Set(error.clone()),
        attempts: Set(job.attempts),
        at: Set(now),
    };
    dead_letter::Entity::insert(letter).exec_without_returning(txn).await.map_err(classify)?;
    let msg = DeadLetterMessage { id: Some(job.id), attempts: job.attempts, error, payload: Some(job.payload_key.clone()), raw: None };
    insert_outbox(txn, job.id, Topic::DeadLetters, msg.to_json(), now, job.id.to_string()).await
}

async fn create(txn: &DatabaseTransaction, mut new: NewJob, now: DateTime<Utc>) -> Result<OpOutcome, StoreError> {
    if let Some(found) = existing(txn, &new).await? {
        return Ok(found);
    }
    let inline = new.inline_payload.take();
    let row = job::ActiveModel {
        id: Set(new.id),
        tenant: Set(new.tenant.clone()),
        format: Set(new.format.as_str().to_owned()),
        title: Set(new.title.clone()),
        status: Set(JobStatus::Queued.as_str().to_owned()),
        attempts: Set(0),
        max_attempts: Set(new.max_attempts),
        renders: Set(0),
        row_count: Set(new.row_count),
        error: Set(None),
        payload_key: Set(new.payload_key.clone()),
        report_key: Set(None),
        idempotency_key: Set(new.idempotency_key.clone()),
        request_hash: Set(new.request_hash.clone()),
        lease_owner: Set(None),
        lease_until: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        finished_at: Set(None),
        expires_at: Set(None),
        erased_at: Set(None),
        report_bytes: Set(None),
        request_id: Set(new.request_id.clone()),
        rows_written: Set(0),
        callback_url: Set(new.callback_url.clone()),
        payload_inline: Set(inline.is_some()),
    };
    let created = if new.idempotency_key.is_none() {
        job::Entity::insert(row).exec_with_returning(txn).await.map_err(classify)?
    } else {
        // A concurrent request with the same Idempotency-Key may win the insert;
        // the savepoint keeps the transaction usable so we can read its job.
        let sp = txn.begin().await.map_err(classify)?;
        match job::Entity::insert(row).exec_with_returning(&sp).await {
            Ok(model) => {
                sp.commit().await.map_err(classify)?;
                model
            }
            Err(e) if is_unique_violation(&e) => {
                sp.rollback().await.map_err(classify)?;
                return existing(txn, &new).await?.ok_or_else(|| classify(e));
            }
            Err(e) => return Err(classify(e)),
        }
    };
    let job = Job::try_from(created)?;
    if let Some(body) = &inline {
        let row = payload::ActiveModel { job_id: Set(job.id), body: Set(body.clone()) };
        payload::Entity::insert(row).exec_without_returning(txn).await.map_err(classify)?;
    }
    enqueue(txn, &job, now, inline).await?;
    Ok(OpOutcome::Created { job, existing: false })
}

/// Deletes an inline payload: the job is done, erased or expired.
async fn drop_payload(txn: &DatabaseTransaction, job: &Job) -> Result<(), StoreError> {
    if job.payload_inline {
        payload::Entity::delete_by_id(job.id).exec(txn).await.map_err(classify)?;
    }
    Ok(())
}

/// The job already created under this tenant's Idempotency-Key, if any.
async fn existing(txn: &DatabaseTransaction, new: &NewJob) -> Result<Option<OpOutcome>, StoreError> {
    let Some(key) = &new.idempotency_key else { return Ok(None) };
    let found = job::Entity::find()
        .filter(C::Tenant.eq(new.tenant.as_str()))
        .filter(C::IdempotencyKey.eq(key.as_str()))
        .one(txn)
        .await
        .map_err(classify)?;
    match found.map(Job::try_from).transpose()? {
        Some(job) if job.request_hash == new.request_hash => Ok(Some(OpOutcome::Created { job, existing: true })),
        Some(_) => Err(StoreError::IdempotencyConflict),
        None => Ok(None),
    }
}
