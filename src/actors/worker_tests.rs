//! The worker's decisions, with in-memory fakes for the job store (a small
//! state machine with the same guards as the real one), the render pool and
//! object storage.
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use chrono::Utc;
use uuid::Uuid;

use super::*;
use crate::job::{JobStatus, ReportFormat, SealedPayload};
use crate::render::RenderError;
use crate::job::report::{ParamValue, ReportDefinition};
use crate::storage::{ByteStream, LinkError};
use crate::warehouse::QueryOutput;

struct FakeStore {
    job: Mutex<Job>,
    ops: Mutex<Vec<&'static str>>,
    down: AtomicBool,
    lose_lease: AtomicBool,
    /// The job's row is gone (deleted by its owner) by the time it completes.
    erased: AtomicBool,
}

impl FakeStore {
    fn new(job: Job) -> Arc<Self> {
        Arc::new(Self {
            job: Mutex::new(job),
            ops: Mutex::default(),
            down: AtomicBool::new(false),
            lose_lease: AtomicBool::new(false),
            erased: AtomicBool::new(false),
        })
    }

    fn ops(&self) -> Vec<&'static str> {
        self.ops.lock().unwrap().clone()
    }

    fn job(&self) -> Job {
        self.job.lock().unwrap().clone()
    }
}

#[async_trait]
impl Transitions for FakeStore {
    async fn apply(&self, op: StatusOp) -> Result<OpOutcome, StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable("connection refused"));
        }
        let now = Utc::now();
        let mut job = self.job.lock().unwrap();
        let held = |j: &Job, owner: &str| j.status == JobStatus::Processing && j.lease_owner.as_deref() == Some(owner);
        let (name, applied) = match op {
            StatusOp::Claim { owner, lease, .. } => {
                let expired = job.lease_until.is_some_and(|t| t < now);
                let ok = job.status == JobStatus::Queued || (job.status == JobStatus::Processing && expired);
                if ok {
                    job.status = JobStatus::Processing;
                    job.attempts += 1;
                    job.lease_owner = Some(owner);
                    job.lease_until = Some(now + chrono::Duration::from_std(lease).unwrap());
                }
                ("claim", ok)
            }
            StatusOp::Heartbeat { owner, .. } => ("heartbeat", held(&job, &owner) && !self.lose_lease.load(Ordering::SeqCst)),
            StatusOp::Complete { owner, report_key, report_bytes, keep_for, .. } => {
                if self.erased.load(Ordering::SeqCst) {
                    self.ops.lock().unwrap().push("complete");
                    return Ok(OpOutcome::Gone);
                }
                let ok = held(&job, &owner);
                if ok {
                    job.status = JobStatus::Done;
                    job.report_key = Some(report_key);
                    job.report_bytes = Some(report_bytes);
                    job.expires_at = Some(Utc::now() + chrono::Duration::from_std(keep_for).unwrap());
                    job.renders += 1;
                }
                ("complete", ok)
            }
            StatusOp::Requeue { owner, error, .. } => {
                let ok = held(&job, &owner);
                if ok {
                    job.status = JobStatus::Queued;
                    job.error = Some(error);
                }
                ("requeue", ok)
            }
            StatusOp::DeadLetter { owner, error, .. } => {
                let ok = owner.is_some_and(|o| held(&job, &o));
                if ok {
                    job.status = JobStatus::Error;
                    job.error = Some(error);
                }
                ("dead_letter", ok)
            }
            other => panic!("the worker does not send {other:?}"),
        };
        self.ops.lock().unwrap().push(name);
        Ok(OpOutcome::Updated(applied.then(|| job.clone())))
    }
}

#[derive(Clone, Copy)]
enum Rendering {
    Works,
    /// A corrupt payload: permanent.
    Corrupt,
    /// Scratch space trouble: transient.
    DiskFull,
    Panics,
    /// Works, but the store takes the lease away meanwhile (the worker stalled).
    LosesLease,
}

struct FakeRenderer {
    how: Rendering,
    calls: AtomicUsize,
    store: Arc<FakeStore>,
}

#[async_trait(?Send)]
impl Renderer for FakeRenderer {
    async fn render(&self, job: Render) -> Result<RenderStats, RenderFailure> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        assert!(job.payload.exists(), "the payload was fetched before rendering");
        match self.how {
            Rendering::Works | Rendering::LosesLease => {
                std::fs::write(&job.output, b"report").unwrap();
                if matches!(self.how, Rendering::LosesLease) {
                    self.store.lose_lease.store(true, Ordering::SeqCst);
                }
                Ok(RenderStats { rows: 3, parts: 1 })
            }
            Rendering::Corrupt => Err(RenderFailure::Render(RenderError::Shape("fewer rows than announced".into()))),
            Rendering::DiskFull => Err(RenderFailure::Render(RenderError::Io(std::io::Error::other("no space left")))),
            Rendering::Panics => Err(RenderFailure::Panicked("index out of bounds".into())),
        }
    }
}

#[derive(Default)]
struct FakeStorage {
    objects: Mutex<HashMap<String, Vec<u8>>>,
    uploads_fail: AtomicBool,
}

#[async_trait]
impl Storage for FakeStorage {
    fn prefix(&self) -> &str {
        ""
    }
    async fn put_payload(&self, _: &str, _: SealedPayload) -> Result<u64, StorageError> {
        unreachable!("workers do not store payloads")
    }
    async fn put_report(&self, key: &str, file: &Path, _: ReportFormat, _: &str) -> Result<u64, StorageError> {
        if self.uploads_fail.load(Ordering::SeqCst) {
            return Err(StorageError::Unavailable("connection reset".into()));
        }
        let bytes = std::fs::read(file)?;
        let n = bytes.len() as u64;
        self.objects.lock().unwrap().insert(key.to_string(), bytes);
        Ok(n)
    }
    async fn fetch_to(&self, key: &str, dest: &Path) -> Result<u64, StorageError> {
        let bytes = self.objects.lock().unwrap().get(key).cloned().ok_or_else(|| StorageError::NotFound(key.into()))?;
        std::fs::write(dest, &bytes)?;
        Ok(bytes.len() as u64)
    }
    async fn open(&self, _: &str) -> Result<(u64, ByteStream), StorageError> {
        unreachable!()
    }
    async fn size(&self, _: &str) -> Result<u64, StorageError> {
        unreachable!("workers do not serve downloads")
    }
    async fn open_range(&self, _: &str, _: std::ops::Range<u64>) -> Result<ByteStream, StorageError> {
        unreachable!("workers do not serve downloads")
    }
    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.objects.lock().unwrap().remove(key);
        Ok(())
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        Ok(self.objects.lock().unwrap().keys().filter(|k| k.starts_with(prefix)).cloned().collect())
    }
    async fn ping(&self) -> Result<(), StorageError> {
        Ok(())
    }
    async fn download_url(&self, _: Uuid, key: &str) -> Result<String, StorageError> {
        Ok(key.into())
    }
    fn verify_link(&self, _: Uuid, _: i64, _: &str) -> Result<(), LinkError> {
        Ok(())
    }
}

fn queued_job(max_attempts: i32) -> Job {
    Job { max_attempts, ..Job::for_tests() }
}

struct Harness {
    worker: Worker,
    store: Arc<FakeStore>,
    storage: Arc<FakeStorage>,
    renderer: Rc<FakeRenderer>,
    message: Bytes,
    _scratch: tempfile::TempDir,
}

/// These tests render tables only.
struct NoWarehouse;

#[async_trait::async_trait]
impl Warehouse for NoWarehouse {
    async fn run(
        &self,
        _: &ReportDefinition,
        _: &[ParamValue],
        _: &mut PayloadWriter,
        _: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<QueryOutput, WarehouseError> {
        Err(WarehouseError::Unavailable("no data source in these tests".into()))
    }
}

fn harness(job: Job, how: Rendering) -> Harness {
    let store = FakeStore::new(job.clone());
    let storage = Arc::new(FakeStorage::default());
    storage.objects.lock().unwrap().insert(job.payload_key.clone(), b"payload".to_vec());
    let renderer = Rc::new(FakeRenderer { how, calls: AtomicUsize::new(0), store: store.clone() });
    let scratch = tempfile::tempdir().unwrap();
    let worker = Worker {
        transitions: store.clone(),
        renderer: renderer.clone(),
        storage: storage.clone(),
        reports: Arc::new(Catalog::default()),
        warehouse: Arc::new(NoWarehouse),
        policy: RetryPolicy { base: Duration::from_millis(10), max: Duration::from_millis(100) },
        retention: Retention {
            reports: Duration::from_secs(3600),
            jobs: Duration::from_secs(7200),
            tenant_reports: Default::default(),
        },
        owner: "worker-a".into(),
        lease: Duration::from_secs(30),
        heartbeat: Duration::from_secs(10),
        progress_every: Duration::from_secs(10),
        activity: Default::default(),
        scratch: scratch.path().to_path_buf(),
        render: RenderOptions::default(),
        faults: Faults::default(),
        shutdown: CancellationToken::new(),
    };
    let message = Bytes::from(JobMessage::for_attempt(&job, None).to_json());
    Harness { worker, store, storage, renderer, message, _scratch: scratch }
}

#[actix_rt::test]
async fn a_claimed_job_is_rendered_uploaded_and_recorded_done() {
    let h = harness(queued_job(3), Rendering::Works);
    assert_eq!(h.worker.handle(&h.message).await, Outcome::Done);
    assert_eq!(h.store.ops(), ["claim", "heartbeat", "complete"]);
    let job = h.store.job();
    assert_eq!((job.status, job.renders), (JobStatus::Done, 1));
    let key = job.report_key.unwrap();
    assert_eq!(h.storage.objects.lock().unwrap().get(&key).map(Vec::as_slice), Some(&b"report"[..]));
    assert!(!h.storage.objects.lock().unwrap().contains_key(&job.payload_key), "a done job's payload is deleted");
}

#[actix_rt::test]
async fn a_job_leased_to_another_worker_is_skipped_without_rendering() {
    let mut job = queued_job(3);
    job.status = JobStatus::Processing;
    job.lease_owner = Some("worker-b".into());
    job.lease_until = Some(Utc::now() + chrono::Duration::seconds(30));
    let h = harness(job, Rendering::Works);
    assert_eq!(h.worker.handle(&h.message).await, Outcome::Skipped);
    assert_eq!(h.renderer.calls.load(Ordering::SeqCst), 0);
    assert_eq!(h.store.ops(), ["claim"]);
}

#[actix_rt::test]
async fn a_render_whose_lease_was_taken_over_is_dropped_not_uploaded() {
    let h = harness(queued_job(3), Rendering::LosesLease);
    assert_eq!(h.worker.handle(&h.message).await, Outcome::Skipped);
    assert_eq!(h.store.ops(), ["claim", "heartbeat"], "no completion, no failure recorded");
    assert!(h.storage.list("reports/").await.unwrap().is_empty(), "nothing uploaded");
    assert_eq!(h.store.job().renders, 0);
}

#[actix_rt::test]
async fn a_transient_render_failure_is_requeued() {
    let h = harness(queued_job(3), Rendering::DiskFull);
    assert_eq!(h.worker.handle(&h.message).await, Outcome::Retried);
    assert_eq!(h.store.ops(), ["claim", "requeue"]);
    let job = h.store.job();
    assert_eq!(job.status, JobStatus::Queued);
    assert!(job.error.unwrap().contains("no space left"));
}

#[actix_rt::test]
async fn a_corrupt_payload_is_dead_lettered_at_once() {
    let h = harness(queued_job(3), Rendering::Corrupt);
    assert_eq!(h.worker.handle(&h.message).await, Outcome::DeadLettered);
    assert_eq!(h.store.ops(), ["claim", "dead_letter"]);
    assert_eq!(h.store.job().status, JobStatus::Error);
}

#[actix_rt::test]
async fn the_last_transient_failure_is_dead_lettered() {
    let mut job = queued_job(2);
    job.attempts = 1;
    let h = harness(job, Rendering::DiskFull);
    assert_eq!(h.worker.handle(&h.message).await, Outcome::DeadLettered);
    assert!(h.store.job().error.unwrap().contains("gave up after 2 attempts"));
}

#[actix_rt::test]
async fn an_upload_failure_is_requeued() {
    let h = harness(queued_job(3), Rendering::Works);
    h.storage.uploads_fail.store(true, Ordering::SeqCst);
    assert_eq!(h.worker.handle(&h.message).await, Outcome::Retried);
    assert_eq!(h.store.ops(), ["claim", "heartbeat", "requeue"]);
    assert!(h.store.job().error.unwrap().contains("uploading the report"));
}

#[actix_rt::test]
async fn a_panicking_renderer_is_a_transient_failure() {
    let h = harness(queued_job(3), Rendering::Panics);
    assert_eq!(h.worker.handle(&h.message).await, Outcome::Retried);
    assert!(h.store.job().error.unwrap().contains("panicked"));
}

#[actix_rt::test]
async fn a_missing_payload_is_permanent() {
    let h = harness(queued_job(3), Rendering::Works);
    h.storage.objects.lock().unwrap().clear();
    assert_eq!(h.worker.handle(&h.message).await, Outcome::DeadLettered);
    assert_eq!(h.renderer.calls.load(Ordering::SeqCst), 0);
}

#[actix_rt::test]
async fn a_job_whose_workers_all_died_is_dead_lettered_without_rendering() {
    let mut job = queued_job(2);
    job.attempts = 2;
    let h = harness(job, Rendering::Works);
    assert_eq!(h.worker.handle(&h.message).await, Outcome::DeadLettered);
    assert_eq!(h.renderer.calls.load(Ordering::SeqCst), 0);
    assert!(h.store.job().error.unwrap().contains("lost during each of 2 attempts"));
}

#[actix_rt::test]
async fn nothing_durable_when_the_store_is_down_at_shutdown() {
    let h = harness(queued_job(3), Rendering::Works);
    h.store.down.store(true, Ordering::SeqCst);
    h.worker.shutdown.cancel();
    assert_eq!(h.worker.handle(&h.message).await, Outcome::Abandoned);
    assert!(!Outcome::Abandoned.is_final(), "the message is left for redelivery");
}

#[actix_rt::test]
async fn an_undecodable_message_is_poison() {
    let h = harness(queued_job(3), Rendering::Works);
    assert!(matches!(h.worker.handle(b"{not json").await, Outcome::Poison(_)));
    assert!(h.store.ops().is_empty());
}

#[actix_rt::test]
async fn a_report_of_a_job_deleted_while_it_rendered_is_taken_back() {
    let h = harness(queued_job(3), Rendering::Works);
    h.store.erased.store(true, Ordering::SeqCst);
    assert_eq!(h.worker.handle(&h.message).await, Outcome::Skipped);
    assert_eq!(h.store.ops(), ["claim", "heartbeat", "complete"]);
    assert!(h.storage.list("reports/").await.unwrap().is_empty(), "the uploaded report was deleted again");
}

#[actix_rt::test]
async fn a_done_job_records_its_size_and_when_its_report_expires() {
    let h = harness(queued_job(3), Rendering::Works);
    let before = Utc::now();
    assert_eq!(h.worker.handle(&h.message).await, Outcome::Done);
    let job = h.store.job();
    assert_eq!(job.report_bytes, Some(b"report".len() as i64));
    let expires = job.expires_at.unwrap();
    assert!(expires >= before + chrono::Duration::seconds(3600) && expires <= Utc::now() + chrono::Duration::seconds(3600));
}
