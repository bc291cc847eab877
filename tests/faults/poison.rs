//! Poison messages in the middle of real work: dead-lettered, not looped on.
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::harness::*;

#[actix_rt::test]
async fn poison_messages_among_real_jobs_go_to_the_dlq_and_work_goes_on() {
    let _serial = serial();
    let c = Cluster::start(2, &[]).await;
    let mut ids = c.submit(8, "slow before").await;
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", std::env::var("REPORTD__QUEUE__BROKERS").unwrap()).create().unwrap();
    for junk in [&b"{not json"[..], &b"{\"id\": 42}"[..], &b"\x00\x01\x02"[..]] {
        producer.send(FutureRecord::to(&c.iso.topic).key("junk").payload(junk), Duration::from_secs(10)).await.unwrap();
    }
    ids.extend(c.submit(8, "slow after").await);
    c.wait_finished(&ids, Duration::from_secs(180)).await;
    let (_, error) = c.check_invariants(&ids).await;
    assert_eq!(error, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while c.metric("reportd_poison_messages_total").await < 3.0 {
        assert!(std::time::Instant::now() < deadline, "three poison messages dead-lettered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.finish().await;
}
