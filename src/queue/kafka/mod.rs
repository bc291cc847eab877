//! The Kafka adapter (rdkafka): `publisher` (the idempotent producer and topic
//! creation), `consumer` (the workers' `JobSource`), `inspector` (what became
//! of a published message) and `dead_letters` (reading the DLQ topic). Every
//! client is built by `client_config`, so `queue.librdkafka` (TLS, SASL,
//! protocol pins) applies to all of them alike.
mod consumer;
mod dead_letters;
mod inspector;
mod publisher;

use std::sync::atomic::{AtomicU64, Ordering};

use rdkafka::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

pub(crate) use consumer::KafkaSource;
pub(crate) use dead_letters::KafkaDeadLetters;
pub(crate) use inspector::KafkaInspector;
pub(crate) use publisher::KafkaPublisher;

use crate::config::QueueSettings;

/// The base of every client: brokers, our defaults, then the operator's
/// `queue.librdkafka` pairs, which win.
pub(crate) fn client_config(s: &QueueSettings) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &s.brokers)
        // Notice topics recreated after a broker restart within seconds.
        .set("topic.metadata.refresh.interval.ms", "5000")
        .set("reconnect.backoff.max.ms", "2000")
        .set("log_level", "4");
    // Validated when the settings were loaded.
    for (k, v) in s.librdkafka_properties().unwrap_or_default() {
        c.set(k, v);
    }
    c
}

/// librdkafka reports every failed connection attempt; while a broker is down
/// that is many lines a second. This keeps one line per client every 30 seconds,
/// and remembers a refused login whether or not its line was shown.
#[derive(Default)]
pub(crate) struct Quiet {
    last: AtomicU64,
    auth_failure: std::sync::Mutex<Option<String>>,
}

impl Quiet {
    /// Why the broker refused this client's credentials, if it did.
    pub(crate) fn auth_failure(&self) -> Option<String> {
        self.auth_failure.lock().ok()?.clone()
    }

    fn allow(&self) -> bool {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let last = self.last.load(Ordering::Relaxed);
        now >= last + 30 && self.last.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

impl ClientContext for Quiet {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let serious = matches!(
            level,
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error | RDKafkaLogLevel::Warning
        );
        if serious && self.allow() {
            tracing::warn!(target: "librdkafka", facility = fac, "{message} (similar messages muted for 30s)");
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if is_auth_failure(&error)
            && let Ok(mut slot) = self.auth_failure.lock()
        {
            *slot = Some(reason.to_string());
        }
        if self.allow() {
            tracing::warn!(target: "librdkafka", %error, "{reason} (similar messages muted for 30s)");
        }
    }
}

impl ConsumerContext for Quiet {}

/// Whether the broker refused the client's credentials (SASL or SSL).
fn is_auth_failure(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed)
    )
}

/// Whether a client error means every broker connection is gone.
fn lost_all_brokers(e: &KafkaError) -> bool {
    matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::AllBrokersDown))
}

fn kafka_error(what: &str, e: KafkaError) -> crate::queue::QueueError {
    crate::queue::QueueError::unavailable(format!("{what}: {e}"))
}
