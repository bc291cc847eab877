//! The Kafka consumer actor: reads the jobs topic as part of the workers'
//! consumer group and runs each message through the worker, at most
//! `in_flight` at a time. A message's offset is stored for commit only once
//! its outcome is durable: done, re-queued with backoff, or dead-lettered.
//! Undecodable messages go to the dead-letter topic and consumption goes on.
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{Drain, DrainReport};
use crate::job::DeadLetterMessage;
use crate::queue::kafka::{JobConsumer, KafkaPublisher, Offsets};
use crate::worker::{Outcome, Worker};

pub struct KafkaSource {
    consumer: Arc<JobConsumer>,
    offsets: Arc<Mutex<Offsets>>,
    publisher: Arc<KafkaPublisher>,
    dlq_topic: String,
    worker: Rc<Worker>,
    slots: Arc<Semaphore>,
    in_flight: usize,
    stop: CancellationToken,
}

impl KafkaSource {
    pub fn new(
        consumer: Arc<JobConsumer>,
        offsets: Arc<Mutex<Offsets>>,
        publisher: Arc<KafkaPublisher>,
        dlq_topic: String,
        worker: Rc<Worker>,
        in_flight: usize,
    ) -> Self {
        Self {
            consumer,
            offsets,
            publisher,
            dlq_topic,
            worker,
            slots: Arc::new(Semaphore::new(in_flight)),
            in_flight,
            stop: CancellationToken::new(),
        }
    }
}

impl Actor for KafkaSource {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let consumer = self.consumer.clone();
        let offsets = self.offsets.clone();
        let publisher = self.publisher.clone();
        let dlq = self.dlq_topic.clone();
        let worker = self.worker.clone();
        let slots = self.slots.clone();
        let stop = self.stop.clone();
        ctx.spawn(
            Box::pin(async move {
                let mut errors = 0u32;
                loop {
                    let permit = tokio::select! {
                        _ = stop.cancelled() => return,
                        p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                    };
                    let received = tokio::select! {
                        _ = stop.cancelled() => return,
                        m = consumer.recv() => m.map(|m| m.detach()),
                    };
                    let msg = match received {
                        Ok(m) => {
                            errors = 0;
                            m
                        }
                        Err(e) => {
                            errors += 1;
                            if errors == 1 || errors % 60 == 0 {
                                tracing::warn!(error = %e, "kafka consumer error");
                            }
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            continue;
                        }
                    };
                    let (topic, partition, offset) = (msg.topic().to_string(), msg.partition(), msg.offset());
                    if let Ok(mut o) = offsets.lock() {
                        o.begin(&topic, partition, offset);
                    }
                    let (consumer, offsets, publisher, dlq, worker) =
                        (consumer.clone(), offsets.clone(), publisher.clone(), dlq.clone(), worker.clone());
                    actix_rt::spawn(async move {
                        let payload = msg.payload().unwrap_or_default();
                        let outcome = worker.handle(payload).await;
                        let durable = match &outcome {
                            Outcome::Poison(e) => dead_letter_raw(&publisher, &dlq, &msg, e).await,
                            other => other.is_final(),
                        };
                        if durable {
                            let position = offsets.lock().ok().and_then(|mut o| o.done(&topic, partition, offset));
                            if let Some(pos) = position
                                && let Err(e) = consumer.store_offset(&topic, partition, pos)
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

/// Copies an undecodable message to the dead-letter topic, retrying until the
/// broker takes it (or shutdown); only then may its offset be committed.
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
        let (slots, n, consumer) = (self.slots.clone(), self.in_flight as u32, self.consumer.clone());
        Box::pin(async move {
            let busy = n as usize - slots.available_permits();
            let report = match tokio::time::timeout(msg.deadline, slots.acquire_many(n)).await {
                Ok(_) => DrainReport { finished: busy, abandoned: 0 },
                Err(_) => {
                    let left = n as usize - slots.available_permits();
                    DrainReport { finished: busy.saturating_sub(left), abandoned: left }
                }
            };
            // Commit what is done; the rest is redelivered to whoever gets the partitions.
            let commit = tokio::task::spawn_blocking(move || {
                let r = consumer.commit_consumer_state(CommitMode::Sync);
                consumer.unsubscribe();
                r
            })
            .await;
            if let Ok(Err(e)) = commit {
                tracing::debug!(error = %e, "final kafka commit");
            }
            report
        })
    }
}
