//! Kafka consumer actor (production backends).
