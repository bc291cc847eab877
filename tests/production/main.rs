//! Production mode against real services: PostgreSQL, Redis, a Kafka-protocol
//! broker (tansu) and an S3 server (Garage), brought up by scripts/test.sh.
#[path = "../common/mod.rs"]
mod helpers;

mod dashboard;
mod dlq;
mod lifecycle;
mod poison;
mod redis_outage;
mod reports;
mod scale;
mod tenancy;
mod tls;
