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
    /// Object-store key of the claim-check payload.
    pub payload: String,
    /// The submission's request id, so the worker's log lines carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl JobMessage {
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
