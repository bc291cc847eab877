//! The Kafka consumer actor: reads the jobs topic as part of the workers'
//! consumer group and runs each message through the worker, at most
//! `in_flight` at a time. A message's offset is stored for commit only once
//! its outcome is durable: done, re-queued with backoff, or dead-lettered.
//! Undecodable messages go to the dead-letter topic and consumption goes on.
//!
//! When every broker connection is lost, the consumer is replaced by a fresh
//! one. A broker that comes back without its state (a restart with memory
//! storage) otherwise meets librdkafka 2.12's cached topic ids, and its
//! leader-discovery path dereferences a missing topic name and crashes.
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use super::{Drain, DrainReport};
use crate::config::QueueSettings;
use crate::job::DeadLetterMessage;
use crate::queue::QueueError;
use crate::queue::kafka::{self, ConsumerHandle, KafkaPublisher, Offsets};
use crate::worker::{Outcome, Worker};

/// The consumer in use; swapped when it is replaced.
type Current = Rc<RefCell<Arc<ConsumerHandle>>>;

pub struct KafkaSource {
    settings: QueueSettings,
    consumer: Current,
    brokers_lost: Arc<Notify>,
    offsets: Arc<Mutex<Offsets>>,
    publisher: Arc<KafkaPublisher>,
    worker: Rc<Worker>,
    slots: Arc<Semaphore>,
    in_flight: usize,
    stop: CancellationToken,
}

impl KafkaSource {
    pub fn new(
        settings: &QueueSettings,
        publisher: Arc<KafkaPublisher>,
        worker: Rc<Worker>,
        in_flight: usize,
    ) -> Result<Self, QueueError> {
        let offsets = Arc::new(Mutex::new(Offsets::default()));
        let brokers_lost = Arc::new(Notify::new());
        let consumer = ConsumerHandle::new(kafka::consumer(settings, offsets.clone(), brokers_lost.clone())?);
        Ok(Self {
            settings: settings.clone(),
            consumer: Rc::new(RefCell::new(Arc::new(consumer))),
            brokers_lost,
            offsets,
            publisher,
            worker,
            slots: Arc::new(Semaphore::new(in_flight)),
            in_flight,
            stop: CancellationToken::new(),
        })
    }
}

impl Actor for KafkaSource {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let (settings, current, offsets) = (self.settings.clone(), self.consumer.clone(), self.offsets.clone());
        let brokers_lost = self.brokers_lost.clone();
        let (publisher, worker, slots, stop) =
            (self.publisher.clone(), self.worker.clone(), self.slots.clone(), self.stop.clone());
        ctx.spawn(
            Box::pin(async move {
                let (mut errors, mut replaced_at) = (0u32, None::<Instant>);
                // Only a consumer that has fetched something holds metadata worth discarding.
                let mut fetched = false;
                loop {
                    let permit = tokio::select! {
                        _ = stop.cancelled() => return,
                        p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                    };
                    let consumer = current.borrow().clone();
                    let Some(c) = consumer.get() else { return };
                    let received = tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = brokers_lost.notified() => {
                            if fetched && replaced_at.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                                replaced_at = Some(Instant::now());
                                fetched = false;
                                replace(&settings, &current, &offsets, &brokers_lost);
                            }
                            drop(permit);
                            continue;
                        }
                        m = c.recv() => m.map(|m| m.detach()),
                    };
                    let msg = match received {
                        Ok(m) => {
                            errors = 0;
                            fetched = true;
                            m
                        }
                        Err(e) => {
                            errors += 1;
                            if errors == 1 || errors % 60 == 0 {
                                tracing::warn!(error = %e, "kafka consumer error");
                            }
                            if fetched && kafka::lost_all_brokers(&e) && replaced_at.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                                replaced_at = Some(Instant::now());
                                fetched = false;
                                replace(&settings, &current, &offsets, &brokers_lost);
                            }
                            drop(permit);
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            continue;
                        }
                    };
                    let (topic, partition, offset) = (msg.topic().to_string(), msg.partition(), msg.offset());
                    if let Ok(mut o) = offsets.lock() {
                        o.begin(&topic, partition, offset);
                    }
                    let (offsets, publisher, worker) = (offsets.clone(), publisher.clone(), worker.clone());
                    let dlq = settings.dlq_topic.clone();
                    actix_rt::spawn(async move {
                        let payload = msg.payload().unwrap_or_default();
                        let outcome = worker.handle(payload).await;
                        let durable = match &outcome {
                            Outcome::Poison(e) => dead_letter_raw(&publisher, &dlq, &msg, e).await,
                            other => other.is_final(),
                        };
                        if durable {
                            let position = offsets.lock().ok().and_then(|mut o| o.done(&topic, partition, offset));
                            if let (Some(pos), Some(c)) = (position, consumer.get())
                                && let Err(e) = c.store_offset(&topic, partition, pos)
                            {
                                // The partition moved to another worker; it will redeliver, and the claim skips it.
                                tracing::debug!(error = %e, partition, offset = pos, "could not store offset");
                            }
                        }
                        drop(permit);
                    });
                }
            })
            .into_actor(self),
        );
    }
}

impl Supervised for KafkaSource {}

/// Stops the old consumer fetching and starts a fresh one. Messages in flight
/// finish; their offsets are no longer stored, so they are redelivered and skipped.
fn replace(settings: &QueueSettings, current: &Current, offsets: &Arc<Mutex<Offsets>>, brokers_lost: &Arc<Notify>) {
    if let Ok(mut o) = offsets.lock() {
        *o = Offsets::default();
    }
    let fresh = match kafka::consumer(settings, offsets.clone(), brokers_lost.clone()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "could not start a new kafka consumer");
            return;
        }
    };
    let old = std::mem::replace(&mut *current.borrow_mut(), Arc::new(ConsumerHandle::new(fresh)));
    if let Some(c) = old.get() {
        c.unsubscribe();
    }
    tracing::warn!("lost every kafka broker: started a fresh consumer so no stale metadata outlives the outage");
}

/// Copies an undecodable message to the dead-letter topic, retrying until the
/// broker takes it; only then may its offset be committed.
async fn dead_letter_raw(publisher: &KafkaPublisher, dlq: &str, msg: &rdkafka::message::OwnedMessage, error: &str) -> bool {
    let raw = String::from_utf8_lossy(msg.payload().unwrap_or_default());
    let letter = DeadLetterMessage {
        id: None,
        attempts: 0,
        error: format!("undecodable message at {}[{}]@{}: {error}", msg.topic(), msg.partition(), msg.offset()),
        payload: None,
        raw: Some(raw.chars().take(64 * 1024).collect()),
    };
    let key = msg.key().map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default();
    for attempt in 0..20u32 {
        match publisher.send(dlq, &key, letter.to_json().as_bytes()).await {
            Ok(_) => {
                tracing::error!(partition = msg.partition(), offset = msg.offset(), error, "poison message moved to the dead-letter topic");
                return true;
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, "could not dead-letter a poison message yet");
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt.min(8) + 1))).await;
            }
        }
    }
    false
}

impl Handler<Drain> for KafkaSource {
    type Result = ResponseFuture<DrainReport>;

    fn handle(&mut self, msg: Drain, _: &mut Self::Context) -> Self::Result {
        self.stop.cancel();
        let (slots, n, current) = (self.slots.clone(), self.in_flight as u32, self.consumer.clone());
        Box::pin(async move {
            let busy = n as usize - slots.available_permits();
            let report = match tokio::time::timeout(msg.deadline, slots.acquire_many(n)).await {
                Ok(_) => DrainReport { finished: busy, abandoned: 0 },
                Err(_) => {
                    let left = n as usize - slots.available_permits();
                    DrainReport { finished: busy.saturating_sub(left), abandoned: left }
                }
            };
            // Commit what is done, then leave the group, so the partitions (and
            // whatever is not done) go to the other workers without waiting for
            // a session timeout.
            let consumer = std::mem::replace(
                &mut *current.borrow_mut(),
                Arc::new(ConsumerHandle::new_closed()),
            );
            let closed = tokio::task::spawn_blocking(move || {
                if let Some(c) = consumer.get()
                    && let Err(e) = c.commit_consumer_state(CommitMode::Sync)
                {
                    tracing::debug!(error = %e, "final kafka commit");
                }
                if let Ok(handle) = Arc::try_unwrap(consumer) {
                    handle.close();
                }
            });
            let _ = tokio::time::timeout(Duration::from_secs(10), closed).await;
            report
        })
    }
}
