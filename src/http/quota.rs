//! Per-tenant limits on submissions: a rate with a burst (GCRA, through
//! governor) and a cap on jobs queued or processing. The in-flight counts come
//! from the job store at most once a second and are topped up by this
//! process's own submissions in between, so the cap holds across several API
//! processes, give or take what they accept within that second.
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};

use super::error::ApiError;
use crate::config::LimitSettings;
use crate::store::JobStore;

type Limiter = RateLimiter<String, governor::state::keyed::HashMapStateStore<String>, DefaultClock>;

/// How stale the in-flight counts may get.
const REFRESH: Duration = Duration::from_secs(1);

pub(crate) struct TenantLimits {
    /// Keyed tenants get the limits unless configured otherwise; open mode
    /// (no keys) gets only what is set explicitly.
    keyed: Option<Arc<Limiter>>,
    open: Option<Arc<Limiter>>,
    max_in_flight_keyed: u64,
    max_in_flight_open: Option<u64>,
    store: Arc<dyn JobStore>,
    counts: tokio::sync::Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    at: Option<Instant>,
    /// Per tenant: queued + processing as of `at`, plus what this process accepted since.
    in_flight: HashMap<String, u64>,
}

fn limiter(rate: f64, burst: u32) -> Option<Arc<Limiter>> {
    let period = Duration::from_secs_f64(1.0 / rate);
    let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::new(burst)?);
    Some(Arc::new(RateLimiter::hashmap(quota)))
}

impl TenantLimits {
    pub(crate) fn new(l: &LimitSettings, store: Arc<dyn JobStore>) -> Self {
        let keyed_rate = l.tenant_submit_rate.unwrap_or(LimitSettings::KEYED_SUBMIT_RATE);
        let keyed_burst = l.tenant_submit_burst.unwrap_or(LimitSettings::KEYED_SUBMIT_BURST);
        let open = match (l.tenant_submit_rate, l.tenant_submit_burst) {
            (None, None) => None,
            _ => limiter(keyed_rate, keyed_burst),
        };
        Self {
            keyed: limiter(keyed_rate, keyed_burst),
            open,
            max_in_flight_keyed: l.tenant_max_in_flight.unwrap_or(LimitSettings::KEYED_MAX_IN_FLIGHT),
            max_in_flight_open: l.tenant_max_in_flight,
            store,
            counts: tokio::sync::Mutex::new(Counts::default()),
        }
    }

    /// Admits one submission of `tenant` (`open`: no keys exist), or says which limit it is over.
    pub(crate) async fn admit(&self, tenant: &str, open: bool) -> Result<(), ApiError> {
        let limiter = if open { self.open.as_ref() } else { self.keyed.as_ref() };
        if let Some(limiter) = limiter
            && let Err(not_until) = limiter.check_key(&tenant.to_string())
        {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(ApiError::RateLimited { limit: "tenant_submit_rate", retry_after: wait.as_secs().max(1) });
        }
        let max = if open { self.max_in_flight_open } else { Some(self.max_in_flight_keyed) };
        let Some(max) = max else { return Ok(()) };
        let mut counts = self.counts.lock().await;
        if counts.at.is_none_or(|t| t.elapsed() >= REFRESH) {
            let fresh = self.store.in_flight_by_tenant().await.map_err(|e| ApiError::unavailable("the job store", e))?;
            *counts = Counts { at: Some(Instant::now()), in_flight: fresh.into_iter().collect() };
        }
        let n = counts.in_flight.entry(tenant.to_string()).or_default();
        if *n >= max {
            return Err(ApiError::RateLimited { limit: "tenant_max_in_flight", retry_after: 5 });
        }
        *n += 1;
        Ok(())
    }
}
