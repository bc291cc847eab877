//! What a failed attempt becomes: another attempt after a capped, jittered
//! exponential backoff, or a dead letter. Pure: the caller records the
//! decision (the backoff lives in an outbox row, not in a timer).
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use super::failure::Failure;
use super::model::Job;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Queue the job again, published after `delay`.
    Retry { delay: Duration },
    /// Give up: the job ends in error with this message.
    DeadLetter { error: String, exhausted: bool },
}

impl RetryPolicy {
    /// The decision for `job` (as claimed: `attempts` counts this attempt) after `failure`.
    pub(crate) fn decide(&self, job: &Job, failure: &Failure) -> Decision {
        if failure.is_permanent() {
            return Decision::DeadLetter { error: failure.message.clone(), exhausted: false };
        }
        if job.attempts_exhausted() {
            let error = format!("{} (gave up after {} attempts)", failure.message, job.attempts);
            return Decision::DeadLetter { error, exhausted: true };
        }
        Decision::Retry { delay: self.delay(job.attempts) }
    }

    /// Delay before attempt `attempt + 1`, after `attempt` failures.
    pub(crate) fn delay(&self, attempt: i32) -> Duration {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::failure::FailureKind;
    use crate::job::model::JobStatus;

    fn job(attempts: i32, max_attempts: i32) -> Job {
        Job {
            status: JobStatus::Processing,
            attempts,
            max_attempts,
            row_count: 1,
            lease_owner: Some("w".into()),
            lease_until: Some(chrono::Utc::now()),
            ..Job::for_tests()
        }
    }

    const POLICY: RetryPolicy = RetryPolicy { base: Duration::from_millis(100), max: Duration::from_secs(1) };

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        for _ in 0..50 {
            let d1 = POLICY.delay(1);
            assert!(d1 >= Duration::from_millis(100) && d1 < Duration::from_millis(200), "{d1:?}");
            let d3 = POLICY.delay(3);
            assert!(d3 >= Duration::from_millis(400) && d3 < Duration::from_millis(800), "{d3:?}");
            assert!(POLICY.delay(20) <= Duration::from_secs(1));
        }
    }

    #[test]
    fn transient_failures_retry_until_the_budget_is_spent() {
        let storage = Failure::new(FailureKind::Storage, "S3 down");
        assert!(matches!(POLICY.decide(&job(1, 3), &storage), Decision::Retry { .. }));
        assert!(matches!(POLICY.decide(&job(2, 3), &storage), Decision::Retry { .. }));
        match POLICY.decide(&job(3, 3), &storage) {
            Decision::DeadLetter { error, exhausted } => {
                assert!(exhausted);
                assert_eq!(error, "S3 down (gave up after 3 attempts)");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn permanent_failures_dead_letter_at_once_with_their_own_message() {
        let corrupt = Failure::new(FailureKind::Payload, "corrupt payload");
        assert_eq!(
            POLICY.decide(&job(1, 5), &corrupt),
            Decision::DeadLetter { error: "corrupt payload".into(), exhausted: false }
        );
        for kind in FailureKind::ALL {
            let d = POLICY.decide(&job(1, 5), &Failure::new(kind, "x"));
            assert_eq!(matches!(d, Decision::DeadLetter { .. }), kind.is_permanent(), "{kind:?}");
        }
    }
}
