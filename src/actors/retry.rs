//! The retry actor decides what a failed attempt becomes: another attempt
//! after a capped, jittered exponential backoff, or a dead letter (a permanent
//! failure, or the last attempt used up). The backoff lives in the outbox row,
//! not in a timer, so a crash during it loses nothing.
use std::time::Duration;

use actix::prelude::*;
use backon::{BackoffBuilder, ExponentialBuilder};

use super::status::{StatusActor, apply};
use crate::config::RetrySettings;
use crate::store::{Job, OpOutcome, StatusOp, StoreError};
use crate::telemetry;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    pub fn from_settings(s: &RetrySettings) -> Self {
        Self { base: s.base_delay, max: s.max_delay }
    }

    /// Delay before attempt `attempt + 1`, after `attempt` failures.
    pub fn delay(&self, attempt: i32) -> Duration {
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(self.base)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build();
        let d = backoff.nth(attempt.saturating_sub(1).max(0) as usize).unwrap_or(self.max);
        d.min(self.max)
    }
}

/// Why an attempt failed; `reason` is a metric label from a fixed set.
#[derive(Debug, Clone)]
pub struct Failure {
    pub message: String,
    pub permanent: bool,
    pub reason: &'static str,
}

#[derive(Message)]
#[rtype(result = "Result<Decision, StoreError>")]
pub struct JobFailed {
    pub job: Job,
    pub owner: String,
    pub failure: Failure,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Retry { delay: Duration },
    DeadLettered,
    /// The job was no longer ours (its lease was taken over): nothing recorded.
    Stale,
}

pub struct RetryActor {
    status: Addr<StatusActor>,
    policy: RetryPolicy,
}

impl RetryActor {
    pub fn new(status: Addr<StatusActor>, policy: RetryPolicy) -> Self {
        Self { status, policy }
    }
}

impl Actor for RetryActor {
    type Context = Context<Self>;
}

impl Supervised for RetryActor {}

impl Handler<JobFailed> for RetryActor {
    type Result = ResponseFuture<Result<Decision, StoreError>>;

    fn handle(&mut self, msg: JobFailed, _: &mut Self::Context) -> Self::Result {
        let JobFailed { job, owner, failure } = msg;
        let status = self.status.clone();
        let exhausted = job.attempts >= job.max_attempts;
        let delay = self.policy.delay(job.attempts);
        Box::pin(async move {
            let format = job.format.as_str();
            let (op, decision) = if failure.permanent || exhausted {
                let error = if failure.permanent {
                    failure.message.clone()
                } else {
                    format!("{} (gave up after {} attempts)", failure.message, job.attempts)
                };
                (StatusOp::DeadLetter { id: job.id, owner: Some(owner), error }, Decision::DeadLettered)
            } else {
                let op = StatusOp::Requeue { id: job.id, owner, error: failure.message.clone(), delay };
                (op, Decision::Retry { delay })
            };
            match apply(&status, op).await? {
                OpOutcome::Updated(Some(_)) => {
                    match &decision {
                        Decision::Retry { delay } => {
                            metrics::counter!(telemetry::JOB_RETRIES, "reason" => failure.reason).increment(1);
                            tracing::warn!(job_id = %job.id, attempt = job.attempts, delay_ms = delay.as_millis() as u64,
                                error = %failure.message, "attempt failed; retrying");
                        }
                        _ => {
                            let kind = if failure.permanent { "permanent" } else { "exhausted" };
                            metrics::counter!(telemetry::DEAD_LETTERS, "reason" => kind).increment(1);
                            metrics::counter!(telemetry::JOBS_FAILED, "format" => format, "reason" => failure.reason).increment(1);
                            tracing::error!(job_id = %job.id, attempts = job.attempts, error = %failure.message,
                                kind, "job failed; moved to the dead-letter store");
                        }
                    }
                    Ok(decision)
                }
                _ => Ok(Decision::Stale),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let p = RetryPolicy { base: Duration::from_millis(100), max: Duration::from_secs(1) };
        for _ in 0..50 {
            let d1 = p.delay(1);
            assert!(d1 >= Duration::from_millis(100) && d1 < Duration::from_millis(200), "{d1:?}");
            let d3 = p.delay(3);
            assert!(d3 >= Duration::from_millis(400) && d3 < Duration::from_millis(800), "{d3:?}");
            assert!(p.delay(20) <= Duration::from_secs(1));
        }
    }
}
