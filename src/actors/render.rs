//! Render actors: a `SyncArbiter` pool of threads, off the async runtime,
//! each rendering one job at a time. A panic becomes a recorded failure and the
//! actor is replaced by a fresh one.
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use async_trait::async_trait;
use uuid::Uuid;

use super::worker::Renderer;
use crate::faults::{FaultPoint, Faults};
use crate::job::ReportFormat;
use crate::render::{RenderControl, RenderError, RenderOptions, RenderStats, render_file};
use crate::telemetry;

#[derive(Debug, thiserror::Error)]
pub(crate) enum RenderFailure {
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("injected failure: {0}")]
    Injected(String),
    #[error("the renderer panicked: {0}")]
    Panicked(String),
    #[error("render pool: {0}")]
    Pool(String),
}

/// Render one payload file into one report file.
#[derive(Message)]
#[rtype(result = "Result<RenderStats, RenderFailure>")]
pub(crate) struct Render {
    pub(crate) job_id: Uuid,
    pub(crate) format: ReportFormat,
    pub(crate) title: String,
    pub(crate) payload: PathBuf,
    pub(crate) output: PathBuf,
    pub(crate) options: RenderOptions,
    /// Cancelled when the job stops being this worker's (the render stops at
    /// its next checkpoint); the render's progress, for the job's status.
    pub(crate) control: Arc<RenderControl>,
}

pub(crate) struct RenderActor {
    faults: Faults,
}

impl RenderActor {
    /// Starts `threads` render actors.
    pub(crate) fn start_pool(threads: usize, faults: Faults) -> Addr<RenderActor> {
        SyncArbiter::start(threads, move || RenderActor { faults: faults.clone() })
    }
}

impl Actor for RenderActor {
    type Context = SyncContext<Self>;
}

impl Handler<Render> for RenderActor {
    type Result = Result<RenderStats, RenderFailure>;

    fn handle(&mut self, msg: Render, ctx: &mut Self::Context) -> Self::Result {
        let _span = tracing::info_span!("render", job_id = %msg.job_id, format = %msg.format).entered();
        let busy = metrics::gauge!(telemetry::RENDER_BUSY);
        busy.increment(1.0);
        let started = Instant::now();
        let faults = self.faults.clone();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            faults.trigger(FaultPoint::Render, &msg.title).map_err(RenderFailure::Injected)?;
            render_file(&msg.payload, &msg.output, &msg.options, &msg.control).map_err(RenderFailure::from)
        }));
        busy.decrement(1.0);
        let format = msg.format.as_str();
        match outcome {
            Ok(Ok(stats)) => {
                metrics::histogram!(telemetry::RENDER_SECONDS, "format" => format).record(started.elapsed().as_secs_f64());
                metrics::counter!(telemetry::RENDER_ROWS, "format" => format).increment(stats.rows);
                Ok(stats)
            }
            Ok(Err(e)) => Err(e),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                tracing::error!(panic = %message, "render panicked; replacing the render actor");
                // SyncContext::stop makes the arbiter build a fresh actor.
                ctx.stop();
                Err(RenderFailure::Panicked(message))
            }
        }
    }
}

#[async_trait(?Send)]
impl Renderer for Addr<RenderActor> {
    async fn render(&self, job: Render) -> Result<RenderStats, RenderFailure> {
        self.send(job).await.unwrap_or_else(|e| Err(RenderFailure::Pool(e.to_string())))
    }
}
