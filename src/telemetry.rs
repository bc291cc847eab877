//! Logs (tracing) and metrics (Prometheus). Every metric name lives here, and
//! every label has a small, fixed set of values.
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

pub(crate) const JOBS_SUBMITTED: &str = "reportd_jobs_submitted_total";
pub(crate) const JOBS_REJECTED: &str = "reportd_jobs_rejected_total";
pub(crate) const JOBS_COMPLETED: &str = "reportd_jobs_completed_total";
pub(crate) const JOBS_FAILED: &str = "reportd_jobs_failed_total";
pub(crate) const JOB_RETRIES: &str = "reportd_job_retries_total";
pub(crate) const JOBS_SKIPPED: &str = "reportd_jobs_skipped_total";
pub(crate) const CLAIMS: &str = "reportd_claims_total";
pub(crate) const DUPLICATE_RENDERS: &str = "reportd_duplicate_renders_total";
pub(crate) const RENDER_SECONDS: &str = "reportd_render_duration_seconds";
pub(crate) const QUEUE_WAIT_SECONDS: &str = "reportd_queue_wait_seconds";
pub(crate) const JOB_SECONDS: &str = "reportd_job_duration_seconds";
pub(crate) const RENDER_ROWS: &str = "reportd_render_rows_total";
pub(crate) const QUEUE_DEPTH: &str = "reportd_queue_depth";
pub(crate) const JOBS_BY_STATUS: &str = "reportd_jobs";
pub(crate) const RENDER_BUSY: &str = "reportd_render_busy";
pub(crate) const IN_FLIGHT: &str = "reportd_jobs_in_flight";
pub(crate) const HTTP_REQUESTS: &str = "reportd_http_requests_total";
pub(crate) const HTTP_SECONDS: &str = "reportd_http_request_duration_seconds";
pub(crate) const CACHE_REQUESTS: &str = "reportd_cache_requests_total";
pub(crate) const CACHE_ERRORS: &str = "reportd_cache_errors_total";
pub(crate) const CACHE_UP: &str = "reportd_cache_up";
pub(crate) const STATUS_BATCH_SIZE: &str = "reportd_status_batch_size";
pub(crate) const OUTBOX_PUBLISHED: &str = "reportd_outbox_published_total";
pub(crate) const OUTBOX_ERRORS: &str = "reportd_outbox_publish_errors_total";
pub(crate) const OUTBOX_PENDING: &str = "reportd_outbox_pending";
pub(crate) const OUTBOX_LAG_SECONDS: &str = "reportd_outbox_lag_seconds";
pub(crate) const DEAD_LETTERS: &str = "reportd_dead_letters_total";
pub(crate) const DLQ_SIZE: &str = "reportd_dlq_size";
pub(crate) const LEASES_RECLAIMED: &str = "reportd_leases_reclaimed_total";
pub(crate) const JOBS_REPUBLISHED: &str = "reportd_jobs_republished_total";
pub(crate) const POISON_MESSAGES: &str = "reportd_poison_messages_total";
pub(crate) const SHUTDOWN_DRAINS: &str = "reportd_shutdown_drains_total";
pub(crate) const KAFKA_COMMITS: &str = "reportd_kafka_commits_total";
pub(crate) const KAFKA_PARTITIONS: &str = "reportd_kafka_partitions_assigned";
pub(crate) const STORE_RETRIES: &str = "reportd_store_retries_total";
pub(crate) const BACKEND_UP: &str = "reportd_backend_up";
pub(crate) const BUILD_INFO: &str = "reportd_build_info";
pub(crate) const DIRECT_CLAIMS: &str = "reportd_direct_claims_total";
pub(crate) const RETENTION_DELETIONS: &str = "reportd_retention_deletions_total";
pub(crate) const STORAGE_REQUESTS: &str = "reportd_storage_requests_total";
pub(crate) const WEBHOOK_ATTEMPTS: &str = "reportd_webhook_attempts_total";
pub(crate) const WEBHOOKS_ABANDONED: &str = "reportd_webhooks_abandoned_total";

/// Installs the global Prometheus recorder once per process (tests build many apps).
pub(crate) fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let seconds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(STATUS_BATCH_SIZE.into()), &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]));
            let recorder = match builder {
                Ok(b) => b.build_recorder(),
                Err(_) => PrometheusBuilder::new().build_recorder(),
            };
            let handle = recorder.handle();
            // Another recorder may already be installed (an embedding program): keep ours local then.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            register_at_zero();
            process().describe();
            metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "commit" => option_env!("REPORTD_COMMIT").unwrap_or("unknown"))
                .set(1.0);
            handle
        })
        .clone()
}

fn process() -> &'static metrics_process::Collector {
    static PROCESS: OnceLock<metrics_process::Collector> = OnceLock::new();
    PROCESS.get_or_init(metrics_process::Collector::default)
}

/// The Prometheus text, with the process's own figures (CPU, memory, file
/// descriptors, threads) read fresh.
pub(crate) fn render(handle: &PrometheusHandle) -> String {
    process().collect();
    handle.render()
}

/// Counters start at zero with every label value they can take, so a rate or
/// an alert works before the first failure happens.
fn register_at_zero() {
    use crate::job::{FailureKind, ReportFormat};
    for format in [ReportFormat::Xlsx, ReportFormat::Pdf] {
        let f = format.as_str();
        metrics::counter!(JOBS_SUBMITTED, "format" => f).absolute(0);
        metrics::counter!(JOBS_COMPLETED, "format" => f).absolute(0);
        for kind in FailureKind::ALL {
            metrics::counter!(JOBS_FAILED, "format" => f, "reason" => kind.label()).absolute(0);
        }
    }
    for kind in FailureKind::ALL {
        metrics::counter!(JOB_RETRIES, "reason" => kind.label()).absolute(0);
    }
    for reason in ["permanent", "exhausted"] {
        metrics::counter!(DEAD_LETTERS, "reason" => reason).absolute(0);
    }
    for attempt in ["first", "retry"] {
        metrics::counter!(CLAIMS, "attempt" => attempt).absolute(0);
    }
    for reason in ["overdue", "queue_lost", "stalled"] {
        metrics::counter!(JOBS_REPUBLISHED, "reason" => reason).absolute(0);
    }
    for reason in ["stalled", "queue_down"] {
        metrics::counter!(DIRECT_CLAIMS, "reason" => reason).absolute(0);
    }
    for what in ["files", "jobs"] {
        metrics::counter!(RETENTION_DELETIONS, "what" => what).absolute(0);
    }
    for op in ["put", "get", "head", "delete", "multipart", "list", "copy"] {
        metrics::counter!(STORAGE_REQUESTS, "op" => op).absolute(0);
    }
    for outcome in ["delivered", "failed"] {
        metrics::counter!(WEBHOOK_ATTEMPTS, "outcome" => outcome).absolute(0);
    }
    for name in [DUPLICATE_RENDERS, LEASES_RECLAIMED, POISON_MESSAGES, STORE_RETRIES, OUTBOX_ERRORS, WEBHOOKS_ABANDONED] {
        metrics::counter!(name).absolute(0);
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(JOBS_SUBMITTED, "Jobs accepted by POST /generate, by format");
    describe_counter!(JOBS_REJECTED, "Submissions refused, by reason");
    describe_counter!(JOBS_COMPLETED, "Jobs rendered and recorded done, by format");
    describe_counter!(JOBS_FAILED, "Jobs that ended in error, by format and reason");
    describe_counter!(JOB_RETRIES, "Failed attempts scheduled for a retry, by reason");
    describe_counter!(JOBS_SKIPPED, "Deliveries skipped because the job was not claimable, by reason");
    describe_counter!(CLAIMS, "Jobs claimed for an attempt, by attempt (first, retry)");
    describe_counter!(DUPLICATE_RENDERS, "Renders that finished after their lease was taken over");
    describe_histogram!(RENDER_SECONDS, "Time to render a report on the render pool, by format");
    describe_histogram!(QUEUE_WAIT_SECONDS, "Time from submit to the first claim, by format");
    describe_histogram!(JOB_SECONDS, "Time from claim to done (download, render, upload), by format");
    describe_counter!(RENDER_ROWS, "Rows rendered, by format");
    describe_gauge!(QUEUE_DEPTH, "Jobs waiting to be claimed (status queued); cluster-wide, exported by the sweeping process only (0 elsewhere), so sum() is right");
    describe_gauge!(JOBS_BY_STATUS, "Jobs in the store, by status");
    describe_gauge!(RENDER_BUSY, "Render actors currently rendering");
    describe_gauge!(IN_FLIGHT, "Jobs this process is working on");
    describe_counter!(HTTP_REQUESTS, "HTTP requests, by route, method and status");
    describe_histogram!(HTTP_SECONDS, "HTTP request duration, by route and method");
    describe_counter!(CACHE_REQUESTS, "Status cache lookups, by result (hit, miss, skipped)");
    describe_counter!(CACHE_ERRORS, "Status cache operations that failed, by operation");
    describe_gauge!(CACHE_UP, "1 while the status cache answers, 0 while status is served from the database");
    describe_histogram!(STATUS_BATCH_SIZE, "Status writes committed per transaction by the status actor");
    describe_counter!(OUTBOX_PUBLISHED, "Outbox messages published, by topic");
    describe_counter!(OUTBOX_ERRORS, "Outbox publish attempts that failed");
    describe_gauge!(OUTBOX_PENDING, "Outbox messages not yet published");
    describe_gauge!(OUTBOX_LAG_SECONDS, "Age of the oldest due outbox message");
    describe_counter!(DEAD_LETTERS, "Jobs moved to the dead-letter store, by reason");
    describe_gauge!(DLQ_SIZE, "Jobs in status error");
    describe_counter!(LEASES_RECLAIMED, "Jobs re-enqueued because their worker's lease expired");
    describe_counter!(JOBS_REPUBLISHED, "Queued jobs published again after their message went missing");
    describe_counter!(POISON_MESSAGES, "Queue messages that could not be decoded");
    describe_counter!(SHUTDOWN_DRAINS, "Jobs at shutdown, by outcome (finished, abandoned)");
    describe_counter!(KAFKA_COMMITS, "Kafka offset commits, by result");
    describe_gauge!(KAFKA_PARTITIONS, "Partitions of the jobs topic this worker consumes (0 while the group rebalances)");
    describe_counter!(STORE_RETRIES, "Job-store writes retried after a connection failure");
    describe_gauge!(BUILD_INFO, "Always 1; the labels say which build this process runs");
    describe_counter!(DIRECT_CLAIMS, "Jobs a worker took straight from the job store because their queue message was stuck, by reason");
    describe_gauge!(BACKEND_UP, "1 when the backend answered the last readiness check, by backend");
    describe_counter!(STORAGE_REQUESTS, "Requests to the object store, by kind (put, get, head, delete, multipart, list, copy)");
    describe_counter!(WEBHOOK_ATTEMPTS, "Webhook delivery attempts, by outcome (delivered: a 2xx answer)");
    describe_counter!(WEBHOOKS_ABANDONED, "Webhook events given up after webhooks.max_attempts failed attempts");
    describe_counter!(RETENTION_DELETIONS, "Deletions by the janitor, by what (files of expired reports, job rows)");
}

/// Text or JSON logs; `RUST_LOG` overrides the configured level.
pub(crate) fn init_logging(settings: &LogSettings) {
    // sqlx reports PostgreSQL notices ("already exists, skipping") at info: quiet them.
    let configured = if settings.level.contains("sqlx") { settings.level.clone() } else { format!("{},sqlx=warn", settings.level) };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&configured))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr, so command output (`reportd dlq list`) stays clean on
    // stdout; colours only on a terminal, so log files hold plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_target(true).with_ansi(ansi).with_writer(std::io::stderr);
    let _ = match settings.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
