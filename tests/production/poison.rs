//! A message that is not a job goes to the dead-letter topic; work goes on.
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use reportd::actors::supervisor::Roles;

use crate::helpers::*;

#[actix_rt::test]
async fn an_undecodable_message_is_dead_lettered_and_consumption_goes_on() {
    let iso = isolate().await;
    let app = spawn_production_app(&iso, |_| {}, Roles::SERVE, Default::default()).await;
    // A first job proves the consumer is in its group.
    let first = app.submit(&report("xlsx", "first", 2)).await;
    app.wait_until_done(&first).await;

    let brokers = std::env::var("REPORTD__QUEUE__BROKERS").unwrap();
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    producer
        .send(FutureRecord::to(&iso.topic).key("junk").payload(&b"\xff\xfe not a job"[..]), Duration::from_secs(10))
        .await
        .unwrap();

    let next = app.submit(&report("pdf", "after the poison", 2)).await;
    app.wait_until_done(&next).await;

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", format!("{}-dlq-reader", iso.group))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&iso.dlq_topic]).unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await.expect("a dead letter").unwrap();
    let letter: serde_json::Value = serde_json::from_slice(msg.payload().unwrap()).unwrap();
    assert!(letter["error"].as_str().unwrap().contains("undecodable"), "{letter}");
    assert!(letter["raw"].as_str().unwrap().contains("not a job"));
    assert!(sum_metric(&app.metrics().await, "reportd_poison_messages_total") >= 1.0);
    app.stop().await;
    iso.cleanup().await;
}
