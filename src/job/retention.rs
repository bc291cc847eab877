//! How long reports and job rows are kept. A report (or a failed job's
//! payload, kept so the job can be retried) expires `reports` after the job
//! finished, per tenant if configured; the job's row goes `jobs` after that.
use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    pub reports: Duration,
    pub jobs: Duration,
    /// Tenants whose reports are kept for another time than `reports`.
    pub tenant_reports: HashMap<String, Duration>,
}

impl Retention {
    /// How long a report of `tenant`'s is kept once its job finished.
    pub fn reports_for(&self, tenant: &str) -> Duration {
        self.tenant_reports.get(tenant).copied().unwrap_or(self.reports)
    }

    /// Jobs finished before this are deleted.
    pub fn jobs_cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let keep = chrono::Duration::from_std(self.jobs).unwrap_or(chrono::Duration::MAX);
        now.checked_sub_signed(keep).unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_may_keep_reports_for_another_time() {
        let r = Retention {
            reports: Duration::from_secs(7 * 86_400),
            jobs: Duration::from_secs(30 * 86_400),
            tenant_reports: HashMap::from([("brief".to_string(), Duration::from_secs(5))]),
        };
        let t = Utc::now();
        assert_eq!(r.reports_for("brief"), Duration::from_secs(5));
        assert_eq!(r.reports_for("other"), Duration::from_secs(7 * 86_400));
        assert_eq!(r.jobs_cutoff(t), t - chrono::Duration::days(30));
    }
}
