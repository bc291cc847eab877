//! Rows to domain types. The columns hold enum names as text; a value the
//! domain does not know means the row was written by something else.
use super::entity::{api_key, dead_letter, job, outbox, webhook_delivery};
use crate::job::webhook::WebhookDelivery;
use crate::job::{ApiKey, DeadLetter, Job, JobStatus, ReportFormat, Role, Topic};
use crate::store::{OutboxRow, StoreError};

fn corrupt(table: &str, column: &str, value: &str) -> StoreError {
    StoreError::Failed(std::sync::Arc::from(Box::<dyn std::error::Error + Send + Sync>::from(format!(
        "{table}.{column} holds an unknown value {value:?}"
    ))))
}

impl TryFrom<job::Model> for Job {
    type Error = StoreError;

    fn try_from(m: job::Model) -> Result<Self, StoreError> {
        let status = JobStatus::parse(&m.status).ok_or_else(|| corrupt("jobs", "status", &m.status))?;
        let format = ReportFormat::parse(&m.format).ok_or_else(|| corrupt("jobs", "format", &m.format))?;
        Ok(Job {
            id: m.id,
            tenant: m.tenant,
            format,
            title: m.title,
            status,
            attempts: m.attempts,
            max_attempts: m.max_attempts,
            renders: m.renders,
            row_count: m.row_count,
            error: m.error,
            payload_key: m.payload_key,
            report_key: m.report_key,
            idempotency_key: m.idempotency_key,
            request_hash: m.request_hash,
            lease_owner: m.lease_owner,
            lease_until: m.lease_until,
            created_at: m.created_at,
            updated_at: m.updated_at,
            finished_at: m.finished_at,
            expires_at: m.expires_at,
            erased_at: m.erased_at,
            report_bytes: m.report_bytes,
            request_id: m.request_id,
            rows_written: m.rows_written,
            callback_url: m.callback_url,
            payload_inline: m.payload_inline,
        })
    }
}

impl TryFrom<outbox::Model> for OutboxRow {
    type Error = StoreError;

    fn try_from(m: outbox::Model) -> Result<Self, StoreError> {
        let topic = Topic::parse(&m.topic).ok_or_else(|| corrupt("outbox", "topic", &m.topic))?;
        Ok(OutboxRow { id: m.id, job_id: m.job_id, topic, key: m.key, value: m.value })
    }
}

impl From<webhook_delivery::Model> for WebhookDelivery {
    fn from(m: webhook_delivery::Model) -> Self {
        WebhookDelivery { event: m.webhook_id, attempt: m.attempt, at: m.at, status_code: m.status_code, error: m.error }
    }
}

impl From<dead_letter::Model> for DeadLetter {
    fn from(m: dead_letter::Model) -> Self {
        DeadLetter { id: m.id, job_id: m.job_id, error: m.error, attempts: m.attempts, at: m.at }
    }
}

impl TryFrom<api_key::Model> for ApiKey {
    type Error = StoreError;

    fn try_from(m: api_key::Model) -> Result<Self, StoreError> {
        let role = Role::parse(&m.role).ok_or_else(|| corrupt("api_keys", "role", &m.role))?;
        Ok(ApiKey { id: m.id, tenant: m.tenant, role, created_at: m.created_at, revoked_at: m.revoked_at })
    }
}

pub(super) fn jobs(rows: Vec<job::Model>) -> Result<Vec<Job>, StoreError> {
    rows.into_iter().map(Job::try_from).collect()
}

pub(super) fn first_job(rows: Vec<job::Model>) -> Result<Option<Job>, StoreError> {
    rows.into_iter().next().map(Job::try_from).transpose()
}
