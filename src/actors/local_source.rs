//! The job source of the embedded default: takes messages from the in-process
//! queue and runs them through the worker, at most `in_flight` at a time.
use std::rc::Rc;
use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{Drain, DrainReport};
use crate::worker::{Outcome, Worker};

pub struct LocalSource {
    // Behind an Arc: the receiver is !Unpin, and actors must be Unpin.
    rx: Arc<async_channel::Receiver<Vec<u8>>>,
    worker: Rc<Worker>,
    slots: Arc<Semaphore>,
    in_flight: usize,
    stop: CancellationToken,
}

impl LocalSource {
    pub fn new(rx: async_channel::Receiver<Vec<u8>>, worker: Rc<Worker>, in_flight: usize) -> Self {
        Self { rx: Arc::new(rx), worker, slots: Arc::new(Semaphore::new(in_flight)), in_flight, stop: CancellationToken::new() }
    }
}

impl Actor for LocalSource {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let (rx, worker, slots, stop) = (self.rx.clone(), self.worker.clone(), self.slots.clone(), self.stop.clone());
        ctx.spawn(
            Box::pin(async move {
                loop {
                    let permit = tokio::select! {
                        _ = stop.cancelled() => return,
                        p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                    };
                    let raw = tokio::select! {
                        _ = stop.cancelled() => return,
                        m = rx.recv() => match m { Ok(m) => m, Err(_) => return },
                    };
                    let worker = worker.clone();
                    actix_rt::spawn(async move {
                        if let Outcome::Poison(e) = worker.handle(&raw).await {
                            tracing::error!(error = %e, "dropping an undecodable message from the local queue");
                        }
                        drop(permit);
                    });
                }
            })
            .into_actor(self),
        );
    }
}

impl Supervised for LocalSource {}

impl Handler<Drain> for LocalSource {
    type Result = ResponseFuture<DrainReport>;

    fn handle(&mut self, msg: Drain, _: &mut Self::Context) -> Self::Result {
        self.stop.cancel();
        let (slots, n) = (self.slots.clone(), self.in_flight as u32);
        Box::pin(async move {
            let busy = n as usize - slots.available_permits();
            match tokio::time::timeout(msg.deadline, slots.acquire_many(n)).await {
                Ok(_) => DrainReport { finished: busy, abandoned: 0 },
                Err(_) => {
                    let left = n as usize - slots.available_permits();
                    DrainReport { finished: busy.saturating_sub(left), abandoned: left }
                }
            }
        })
    }
}
