//! `reportd dlq list|replay`: operator commands over the dead-letter queue.
//! With Kafka the DLQ is its topic, read from the beginning without joining
//! any group; in embedded mode it is the `dead_letters` table. A replay gives
//! the job a fresh attempt budget through the same transition as
//! `POST /jobs/{id}/retry`; the running service's relay then publishes it.
//! Every client comes from the startup builders, so the same settings
//! (`queue.librdkafka` among them) apply as in the service.
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use uuid::Uuid;

use crate::config::Settings;
use crate::job::JobStatus;
use crate::startup;
use crate::store::{JobStore, OpOutcome, StatusOp};

#[derive(Subcommand)]
pub(super) enum DlqAction {
    /// Print every dead letter (Kafka: the DLQ topic; embedded: the dead_letters table).
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Re-enqueue dead-lettered jobs with a fresh attempt budget.
    Replay {
        /// The job to replay (repeatable).
        #[arg(long = "id", required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<Uuid>,
        /// Every job in the dead-letter queue that is still in error.
        #[arg(long)]
        all: bool,
    },
}

pub(super) async fn run(action: DlqAction, settings: &Settings) -> anyhow::Result<()> {
    let store = startup::connect_store(settings).await?.jobs;
    let log = startup::dead_letter_log(settings, store.clone());
    match action {
        DlqAction::List { json } => {
            let entries = log.list().await?;
            if json {
                for e in &entries {
                    println!("{}", serde_json::to_string(e)?);
                }
            } else {
                println!("{:<32} {:<36} {:>8}  ERROR", "POSITION", "JOB", "ATTEMPTS");
                for e in &entries {
                    let job = e.job.map(|j| j.to_string()).unwrap_or_else(|| "-".into());
                    println!("{:<32} {:<36} {:>8}  {}", e.position, job, e.attempts, e.error);
                }
                eprintln!("{} dead letter(s)", entries.len());
            }
        }
        DlqAction::Replay { ids, all } => {
            let ids = if all { log.list().await?.into_iter().filter_map(|e| e.job).collect() } else { ids };
            for (job, outcome) in replay(settings, store, &ids).await? {
                println!("{job} {outcome}");
            }
        }
    }
    Ok(())
}

/// The API a replay goes through, so the service's status actor updates its cache too.
fn api_base(settings: &Settings) -> String {
    if !settings.http.public_url.is_empty() {
        return settings.http.public_url.trim_end_matches('/').to_string();
    }
    let host = if settings.http.host.is_unspecified() { "127.0.0.1".to_string() } else { settings.http.host.to_string() };
    format!("http://{host}:{}", settings.http.port)
}

/// Re-enqueues these jobs (each once) with a fresh attempt budget, if still in
/// error: through `POST /jobs/{id}/retry` on the running API, or, when no API
/// answers, straight in the job store (and the shared cache, if Redis).
async fn replay(settings: &Settings, store: Arc<dyn JobStore>, jobs: &[Uuid]) -> anyhow::Result<Vec<(Uuid, &'static str)>> {
    let unique: BTreeSet<Uuid> = jobs.iter().copied().collect();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let base = api_base(settings);
    let mut out = Vec::new();
    for id in unique {
        let outcome = match client.post(format!("{base}/jobs/{id}/retry")).send().await {
            Ok(r) if r.status() == 202 => "requeued",
            Ok(r) if r.status() == 404 => "no such job",
            Ok(r) if r.status() == 409 => not_in_error(&*store, id).await?,
            Ok(_) | Err(_) => directly(settings, &*store, id).await?,
        };
        out.push((id, outcome));
    }
    Ok(out)
}

async fn not_in_error(store: &dyn JobStore, id: Uuid) -> anyhow::Result<&'static str> {
    Ok(match store.get(id).await? {
        Some(job) if job.status == JobStatus::Done => "already done",
        Some(_) => "not in error (skipped)",
        None => "no such job",
    })
}

async fn directly(settings: &Settings, store: &dyn JobStore, id: Uuid) -> anyhow::Result<&'static str> {
    match store.apply(vec![StatusOp::Retry { id }]).await.into_iter().next() {
        Some(Ok(OpOutcome::Updated(Some(job)))) => {
            // The service's in-memory cache went with it; a shared one must learn the change.
            startup::cache(settings)?.put(&[job]).await;
            Ok("requeued")
        }
        Some(Ok(_)) => not_in_error(store, id).await,
        Some(Err(e)) => Err(e.into()),
        None => Ok("no answer"),
    }
}
