//! What travels on the queue: a reference to the job, never its rows.
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The logical topics of the outbox; the queue adapter maps them to real ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    Jobs,
    DeadLetters,
    /// Webhook events, delivered over HTTP rather than through the queue.
    Webhooks,
}

impl Topic {
    /// The name stored in the outbox and used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Jobs => "jobs",
            Topic::DeadLetters => "dlq",
            Topic::Webhooks => "webhook",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        [Topic::Jobs, Topic::DeadLetters, Topic::Webhooks].into_iter().find(|t| t.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JobMessage {
    pub id: Uuid,
    /// The delivery this message announces (1 for the first). Informational:
    /// the job store's `attempts` is what the retry budget is checked against.
    pub attempt: i32,
    /// Object-store key of the claim-check payload (unused when it is inline).
    pub payload: String,
    /// The submission's request id, so the worker's log lines carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// A small job's whole payload, so the worker needs no object-store round trip.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "inline_bytes")]
    pub inline: Option<Vec<u8>>,
}

/// Inline payloads as base64 in the JSON message.
mod inline_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => s.serialize_str(&STANDARD.encode(b)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => STANDARD.decode(text).map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

impl JobMessage {
    /// The message announcing `job`'s next attempt.
    pub(crate) fn for_attempt(job: &super::Job, inline: Option<Vec<u8>>) -> Self {
        JobMessage {
            id: job.id,
            attempt: job.attempts + 1,
            payload: job.payload_key.clone(),
            request_id: job.request_id.clone(),
            inline,
        }
    }

    pub(crate) fn to_json(&self) -> String {
        // A struct of a UUID, an integer and a string always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub(crate) fn from_slice(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// What goes to the dead-letter topic: the job reference and why it died.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeadLetterMessage {
    /// The job, when the message could be read at all.
    pub id: Option<Uuid>,
    pub attempts: i32,
    pub error: String,
    /// The job's claim-check payload key.
    pub payload: Option<String>,
    /// An undecodable message's original value (lossy UTF-8, truncated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

impl DeadLetterMessage {
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A webhook event waiting in the outbox: which job, what happened, and the
/// id every retry of the event carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WebhookMessage {
    pub webhook_id: Uuid,
    pub job_id: Uuid,
    pub done: bool,
}

impl WebhookMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
